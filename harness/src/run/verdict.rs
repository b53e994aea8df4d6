//! The end of a run: statistics, the checkers, `results.json`, the report,
//! the summary and the exit code.

use std::io::Write;
use std::path::Path;

use checker::Validity;

use super::exits::NodeExit;
use super::plan::Plan;
use super::{CompletedRun, EXIT_ERROR, EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID};
use crate::resources::Meter;
use crate::stats::{self, Stats};
use crate::store::{RunDir, RunResults};

/// Checks, stats, results.json, report, summary, exit code.
pub async fn finish(
    out: &mut (dyn Write + Send),
    dir: &RunDir,
    plan: &Plan,
    error: Option<String>,
    exits: Vec<NodeExit>,
    interrupted: bool,
) -> CompletedRun {
    let meter = Meter::after_traffic();
    let mut error = error;
    let stats = match stats::compute_file(&dir.history()) {
        Ok(s) => Some(s),
        Err(e) => {
            error.get_or_insert_with(|| format!("cannot read back the history: {e}"));
            None
        }
    };
    let mut results = if plan.config.check {
        match check(dir, plan).await {
            Ok(r) => r,
            Err(e) => {
                error.get_or_insert(e);
                RunResults::default()
            }
        }
    } else {
        RunResults::default()
    };
    results.stats = stats;
    results.interrupted = interrupted;
    // An invalid recorded history is a finding whatever the harness failed
    // to do afterwards (no later operation makes it linearizable, and a
    // Raft-safety violation stays one): a bug that wedges the cluster so
    // that the final reads never succeed must not pass as "no verdict".
    let found = results.valid == Some(Validity::Invalid);
    if let Some(e) = &error {
        if found {
            results.error = Some(e.clone());
        } else {
            // A harness failure is otherwise never a verdict.
            results.fail(e.clone());
        }
    }
    // A node that exited on its own is a finding of the run, whatever the
    // history shows, and even when the harness could not finish (its
    // error, often a consequence, stays recorded).
    results.node_exits = exits;
    let exit_code = match (&results.error, results.valid) {
        _ if !results.node_exits.is_empty() => {
            results.valid = Some(Validity::Invalid);
            EXIT_INVALID
        }
        _ if found => EXIT_INVALID,
        (Some(_), _) => EXIT_ERROR,
        (None, Some(v)) => v.exit_code(),
        (None, None) => EXIT_VALID,
    };
    results.exit_code = Some(exit_code);
    results.resources = Some(meter.verdict());
    if let Err(e) = dir.write_results(&results) {
        let _ = writeln!(out, "error: {e}");
    }
    if plan.config.report {
        render_reports(out, &dir.path);
        // The report reads the verdict, so its cost is added afterwards.
        if let Some(r) = results.resources.as_mut() {
            meter.report(r);
        }
        if let Err(e) = dir.write_results(&results) {
            let _ = writeln!(out, "error: {e}");
        }
    }
    if plan.config.verbose {
        print_summary(out, &results, dir, exit_code);
    }
    CompletedRun {
        dir: dir.path.clone(),
        exit_code,
        results,
    }
}

/// The checkers over the run folder (history, traces, observations), on a
/// blocking thread.
async fn check(dir: &RunDir, plan: &Plan) -> Result<RunResults, String> {
    let path = dir.path.clone();
    let model = plan.workload.kind.checker_model().parse().ok();
    let checked = tokio::task::spawn_blocking(move || {
        let opts = checker::CheckOptions {
            model,
            ..Default::default()
        };
        checker::check_path(&path, &opts)
    })
    .await;
    match checked {
        Ok(Ok(report)) => Ok(RunResults::checked(report)),
        Ok(Err(e)) => Err(format!("checker: {e}")),
        Err(e) => Err(format!("checker crashed: {e}")),
    }
}

/// Renders the run's `report.html` and the results folder's `index.html`;
/// a report failure is reported but never changes the verdict.
pub fn render_reports(out: &mut dyn Write, run_dir: &Path) {
    match crate::report::render_run(run_dir) {
        Ok(p) => {
            let _ = writeln!(out, "report: {}", p.display());
        }
        Err(e) => {
            let _ = writeln!(out, "warning: no report: {e}");
        }
    }
    // run_dir = RESULTS/<test>/<time>, when it is one (see results_dir_of).
    if let Some(results) = crate::report::results_dir_of(run_dir) {
        if let Err(e) = crate::report::render_index(&results) {
            let _ = writeln!(out, "warning: no results index: {e}");
        }
    }
}

fn print_summary(out: &mut dyn Write, results: &RunResults, dir: &RunDir, exit_code: i32) {
    let stats = results.stats.as_ref();
    if let Some(s) = stats.filter(|s| !s.by_f.is_empty()) {
        print_stats(out, s);
    }
    let ops = stats.map_or(0, |s| s.by_f.values().map(|o| o.total()).sum::<u64>());
    let failed = results.error.is_some();
    if failed && ops > 0 && exit_code != EXIT_INVALID {
        let _ = writeln!(
            out,
            "checks of what was recorded (no verdict, see the error):"
        );
    }
    if let Some(c) = results.checkers.as_ref().filter(|_| !failed || ops > 0) {
        if let Some(l) = &c.linearizability {
            let _ = writeln!(out, "linearizability: {}", verdict_text(l.valid));
        }
        if let Some(r) = &c.raft_safety {
            let _ = writeln!(out, "raft_safety: {}", verdict_text(r.valid));
        }
    }
    for e in &results.node_exits {
        let _ = writeln!(out, "node exit: {}", e.describe());
    }
    if let Some(cx) = &results.counterexample {
        let _ = writeln!(out, "counterexample: {}", cx.explanation);
    }
    if let Some(e) = &results.error {
        let _ = writeln!(out, "harness error: {e}");
    }
    let verdict = match exit_code {
        EXIT_VALID => "VALID",
        EXIT_INVALID => "INVALID",
        EXIT_UNKNOWN => "UNKNOWN",
        _ => "ERROR (no verdict)",
    };
    let _ = writeln!(out, "{verdict}  {}  (exit {exit_code})", dir.path.display());
    let _ = out.flush();
}

fn print_stats(out: &mut dyn Write, s: &Stats) {
    let _ = writeln!(
        out,
        "ops ok/fail/info: {}  ({:.0} ok/s over {:.1}s)",
        s.by_f
            .iter()
            .map(|(f, o)| format!("{f} {}/{}/{}", o.ok, o.fail, o.info))
            .collect::<Vec<_>>()
            .join("  "),
        s.throughput_ops_s,
        s.duration_s
    );
    if !s.nemesis_events.is_empty() {
        let _ = writeln!(
            out,
            "faults: {}",
            s.nemesis_events
                .iter()
                .map(|(f, n)| format!("{f} ×{n}"))
                .collect::<Vec<_>>()
                .join("  ")
        );
    }
}

fn verdict_text(v: Validity) -> &'static str {
    match v {
        Validity::Valid => "valid",
        Validity::Invalid => "INVALID",
        Validity::Unknown => "unknown",
    }
}
