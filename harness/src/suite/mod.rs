//! `harness suite [SUITE.toml]`: a matrix of runs (systems × workloads ×
//! nemesis sets × read levels × cluster sizes × seeds), one after the other
//! by default, with a time limit per run and an optional total budget,
//! summarised for people (`summary.html`) and for CI servers (`junit.xml`)
//! in `RESULTS/suites/<name>/<YYYYMMDDTHHMMSS>/` beside `suite.json`.
//!
//! [`spec`] reads the suite file into cells (each a set of `harness run`
//! flags); this module runs every cell once per seed through
//! [`crate::run::run_once`], exactly as `harness run` would with those
//! flags, and records each outcome as it comes ([`record`]); [`junit`] and
//! [`summary`] render the record. Without a file, the built-in `nightly`
//! suite runs (`nightly.toml`, shown by `harness suite --print-nightly`).
//!
//! Exit code: 1 if any run was invalid, else 3 if any failed, else 2 if
//! any was unknown, else 0. `--fail-fast` stops at the first invalid run;
//! `--until-fail` repeats the matrix with new seeds until one is invalid
//! (or `--count N` rounds). `--parallel N` runs N at once: every cluster
//! has its own ports and folders, so runs cannot disturb each other's
//! state, but they share the CPU, which changes their timing (the summary
//! says so).

pub mod junit;
pub mod record;
pub mod spec;
pub mod summary;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use futures::stream::{FuturesUnordered, StreamExt};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::watch;

use crate::cli::{Cli, Command};
use crate::run::{self, CompletedRun, RunConfig, EXIT_ERROR, EXIT_INVALID};
use record::{CellRecord, Counts, MatrixRecord, Outcome, RunRecord, SuiteRecord};
use spec::{Cell, Overrides, Seeds, Suite};

/// The built-in suite: every workload under every fault kind, and the
/// combinations that find bugs, against our node.
pub const NIGHTLY: &str = include_str!("nightly.toml");

/// What `harness suite` was asked.
#[derive(Debug, Clone, Default)]
pub struct SuiteRequest {
    /// The suite file (`None`: the built-in nightly suite).
    pub file: Option<PathBuf>,
    pub overrides: Overrides,
    pub results_dir: PathBuf,
    /// The system's program for every run.
    pub node_bin: Option<PathBuf>,
    /// Where random seeds start (default: random).
    pub seed: Option<u64>,
    /// Rounds of the matrix (`None`: 1, or unbounded with `until_fail`).
    pub count: Option<u64>,
    pub until_fail: bool,
    pub fail_fast: bool,
}

/// Why a suite cannot start (exit 3; nothing ran).
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error("{file}, run {cell} ({label}): {message}")]
    Cell {
        file: String,
        cell: usize,
        label: String,
        message: String,
    },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Reads the suite the request names.
pub fn load(req: &SuiteRequest) -> Result<Suite, SuiteError> {
    match &req.file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| SuiteError::Io {
                path: path.clone(),
                source,
            })?;
            Ok(Suite::parse(
                &text,
                &path.display().to_string(),
                &req.overrides,
            )?)
        }
        None => Ok(Suite::parse(NIGHTLY, "built-in nightly", &req.overrides)?),
    }
}

/// The `harness run` command line of a cell with a seed.
fn argv(cell: &Cell, seed: u64, req: &SuiteRequest) -> Vec<String> {
    let mut a = vec!["harness".to_string(), "run".to_string()];
    a.extend(cell.flags.iter().cloned());
    a.extend([
        "--seed".into(),
        seed.to_string(),
        "--results-dir".into(),
        req.results_dir.display().to_string(),
    ]);
    if let Some(bin) = &req.node_bin {
        a.extend(["--node-bin".into(), bin.display().to_string()]);
    }
    a
}

/// A cell's run configuration, checked by `harness run`'s own parser and
/// rules.
fn config(suite: &Suite, cell: &Cell, req: &SuiteRequest) -> Result<RunConfig, SuiteError> {
    let fail = |message: String| SuiteError::Cell {
        file: suite.source.clone(),
        cell: cell.id,
        label: cell.label.clone(),
        message,
    };
    let args = match Cli::try_parse_from(argv(cell, 0, req)) {
        Ok(Cli {
            command: Command::Run(args),
        }) => args,
        Ok(_) => unreachable!("the argv names `run`"),
        Err(e) => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("error: ");
            return Err(fail(first.to_string()));
        }
    };
    let mut c = args.config();
    c.validate().map_err(fail)?;
    c.verbose = false;
    Ok(c)
}

/// `harness suite`: runs the suite, writes its folder, prints a line per
/// run; returns the exit code.
pub async fn command(
    req: &SuiteRequest,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> i32 {
    match run_suite(req, out, stop).await {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            EXIT_ERROR
        }
    }
}

/// One run to do.
#[derive(Clone)]
struct Job {
    cell: usize,
    round: u64,
    seed: u64,
    index: usize,
}

async fn run_suite(
    req: &SuiteRequest,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> Result<i32, SuiteError> {
    let suite = load(req)?;
    let configs = suite
        .cells
        .iter()
        .map(|c| config(&suite, c, req))
        .collect::<Result<Vec<_>, _>>()?;
    let dir = crate::store::create_stamped(&req.results_dir.join("suites").join(&suite.name))?;
    let rounds = match (req.count, req.until_fail) {
        (Some(n), _) => Some(n.max(1)),
        (None, true) => None,
        (None, false) => Some(1),
    };
    let base_seed = req.seed.unwrap_or_else(run::random_seed);
    let per_round = match &suite.seeds {
        Seeds::Count(n) => *n as usize,
        Seeds::List(l) => l.len(),
    };
    let seeds_of = |round: u64| -> Vec<u64> {
        match (&suite.seeds, round) {
            (Seeds::List(l), 1) => l.clone(),
            _ => (0..per_round as u64)
                .map(|i| base_seed.wrapping_add((round - 1) * per_round as u64 + i))
                .collect(),
        }
    };
    let mut record = SuiteRecord {
        name: suite.name.clone(),
        source: suite.source.clone(),
        started: chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%:z").to_string(),
        duration_s: 0.0,
        finished: false,
        exit_code: None,
        parallel: suite.parallel,
        timing_note: (suite.parallel > 1).then(|| {
            format!(
                "Runs shared the machine {} at a time: each cluster had its own ports and folders, \
                 but their timing (throughput, latency, elections) differs from runs made one at a time.",
                suite.parallel
            )
        }),
        stopped: None,
        matrix: MatrixRecord {
            cells: suite
                .cells
                .iter()
                .map(|c| CellRecord {
                    id: c.id,
                    label: c.label.clone(),
                    flags: c.flags.clone(),
                    time_limit_s: c.time_limit,
                })
                .collect(),
            seeds: seeds_of(1),
            rounds,
            budget_s: suite.budget,
        },
        counts: Counts::default(),
        runs: Vec::new(),
    };
    let per_round_runs = suite.cells.len() * per_round;
    let _ = writeln!(
        out,
        "suite {}: {} runs per round ({} cells × {} seeds){}, {} at a time  →  {}",
        suite.name,
        per_round_runs,
        suite.cells.len(),
        per_round,
        match rounds {
            Some(1) => String::new(),
            Some(n) => format!(", {n} rounds"),
            None => ", rounds until one is invalid".into(),
        },
        suite.parallel,
        dir.display()
    );
    let mut p = Progress::new(rounds.map(|r| r as usize * per_round_runs), &suite);
    let started = Instant::now();
    let mut halt: Option<String> = None;
    let mut round = 0u64;
    let mut index = 0usize;
    while halt.is_none() && rounds.is_none_or(|r| round < r) {
        round += 1;
        let mut jobs = Vec::new();
        for (ci, _) in suite.cells.iter().enumerate() {
            for &seed in &seeds_of(round) {
                index += 1;
                jobs.push(Job {
                    cell: ci,
                    round,
                    seed,
                    index,
                });
            }
        }
        let mut pending = jobs.into_iter();
        let mut running = FuturesUnordered::new();
        loop {
            while halt.is_none() && running.len() < suite.parallel {
                if *stop.borrow() {
                    halt = Some("interrupted".into());
                    break;
                }
                let Some(job) = pending.next() else { break };
                let cell = &suite.cells[job.cell];
                if let Some(b) = suite.budget {
                    if started.elapsed().as_secs_f64() + cell.time_limit > b {
                        record.runs.push(not_run(
                            &suite,
                            &configs[job.cell],
                            &job,
                            req,
                            "the budget would be exceeded",
                        ));
                        continue;
                    }
                }
                let config = configs[job.cell].clone();
                let args = argv(cell, job.seed, req);
                let stop = stop.clone();
                running.push(async move {
                    let t = Instant::now();
                    let mut sink = Vec::new();
                    let run =
                        run::run_once(&config, job.seed, job.index, args, &mut sink, stop).await;
                    (job, config.test_name(), run, t.elapsed())
                });
            }
            let Some((job, test, run, took)) = running.next().await else {
                break;
            };
            let cell = &suite.cells[job.cell];
            let rec = RunRecord::finished(
                cell.id,
                &cell.label,
                job.round,
                job.seed,
                test,
                &run,
                took.as_secs_f64(),
                &dir,
                argv(cell, job.seed, req),
            );
            p.finished(out, &rec, &run, started.elapsed());
            record.runs.push(rec);
            if run.exit_code == EXIT_INVALID && halt.is_none() {
                if req.fail_fast {
                    halt = Some("--fail-fast: stopped after the first invalid run".into());
                } else if req.until_fail {
                    halt = Some("--until-fail: an invalid run".into());
                }
            }
            if halt.is_none() && *stop.borrow() {
                halt = Some("interrupted".into());
            }
            write_outputs(&dir, &mut record, started, out);
        }
        let why = halt.clone().unwrap_or_else(|| "interrupted".into());
        for job in pending {
            record
                .runs
                .push(not_run(&suite, &configs[job.cell], &job, req, &why));
        }
    }
    p.done();
    let codes: Vec<i32> = record.runs.iter().filter_map(|r| r.exit_code).collect();
    let code = run::combine_exit_codes(&codes);
    record.finished = true;
    record.exit_code = Some(code);
    record.stopped = halt;
    write_outputs(&dir, &mut record, started, out);
    if let Err(e) = crate::report::render_index(&req.results_dir) {
        let _ = writeln!(out, "warning: no results index: {e}");
    }
    let c = &record.counts;
    let _ = writeln!(
        out,
        "{} runs: {} invalid, {} error, {} unknown, {} valid{}  in {:.0} s",
        c.runs,
        c.invalid,
        c.error,
        c.unknown,
        c.valid,
        if c.not_run > 0 {
            format!(", {} not run", c.not_run)
        } else {
            String::new()
        },
        record.duration_s
    );
    if let Some(s) = &record.stopped {
        let _ = writeln!(out, "stopped: {s}");
    }
    let _ = writeln!(
        out,
        "summary: {}\njunit:   {}\n{}  (exit {code})",
        dir.join("summary.html").display(),
        dir.join("junit.xml").display(),
        Outcome::of_exit(code).name().to_uppercase()
    );
    Ok(code)
}

fn not_run(
    suite: &Suite,
    config: &RunConfig,
    job: &Job,
    req: &SuiteRequest,
    why: &str,
) -> RunRecord {
    let cell = &suite.cells[job.cell];
    RunRecord {
        cell: cell.id,
        label: cell.label.clone(),
        round: job.round,
        seed: job.seed,
        test: config.test_name(),
        outcome: Outcome::NotRun,
        exit_code: None,
        ops: None,
        faults: 0,
        duration_s: 0.0,
        dir: None,
        report: None,
        message: Some(why.to_string()),
        command: argv(cell, job.seed, req),
    }
}

/// Rewrites `suite.json`, `summary.html` and `junit.xml` (each atomically).
fn write_outputs(dir: &Path, record: &mut SuiteRecord, started: Instant, out: &mut dyn Write) {
    record.duration_s = started.elapsed().as_secs_f64();
    record.recount();
    let json = serde_json::to_vec_pretty(&*record).map(|mut v| {
        v.push(b'\n');
        v
    });
    let files: [(&str, Vec<u8>); 3] = [
        (record::FILE_NAME, json.unwrap_or_default()),
        ("summary.html", summary::render(record).into_bytes()),
        ("junit.xml", junit::render(record).into_bytes()),
    ];
    for (name, bytes) in files {
        let tmp = dir.join(format!(".{name}.tmp"));
        let done =
            std::fs::write(&tmp, &bytes).and_then(|()| std::fs::rename(&tmp, dir.join(name)));
        if let Err(e) = done {
            let _ = writeln!(
                out,
                "warning: cannot write {}: {e}",
                dir.join(name).display()
            );
        }
    }
}

/// A line per finished run, and on a terminal a live bar with the runs
/// done, the time elapsed and an estimate of the time left.
struct Progress {
    total: Option<usize>,
    done: usize,
    bar: ProgressBar,
    /// Seconds one run is expected to take before any has finished.
    guess_s: f64,
    parallel: usize,
}

impl Progress {
    fn new(total: Option<usize>, suite: &Suite) -> Self {
        let visible = std::io::stdout().is_terminal();
        let bar = ProgressBar::with_draw_target(
            total.map(|t| t as u64),
            if visible {
                ProgressDrawTarget::stderr_with_hz(2)
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template("[{bar:30}] {pos}/{len} runs  elapsed {elapsed}  {msg}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        if visible {
            bar.enable_steady_tick(Duration::from_secs(1));
        }
        let mean_limit =
            suite.cells.iter().map(|c| c.time_limit).sum::<f64>() / suite.cells.len() as f64;
        Progress {
            total,
            done: 0,
            bar,
            // Startup, recovery, checks and the report add a few seconds.
            guess_s: mean_limit + 8.0,
            parallel: suite.parallel,
        }
    }

    /// Estimated time left, from the mean time per finished run.
    fn eta(&self, elapsed: Duration) -> String {
        let Some(total) = self.total else {
            return "until an invalid run".into();
        };
        if self.done >= total {
            return "done".into();
        }
        let per_run = if self.done == 0 {
            self.guess_s / self.parallel as f64
        } else {
            elapsed.as_secs_f64() / self.done as f64
        };
        let left = per_run * total.saturating_sub(self.done) as f64;
        format!("~{} left", crate::report::dur((left * 1e9) as i64))
    }

    fn finished(
        &mut self,
        out: &mut dyn Write,
        r: &RunRecord,
        run: &CompletedRun,
        elapsed: Duration,
    ) {
        self.done += 1;
        let eta = self.eta(elapsed);
        let total = self
            .total
            .map(|t| t.to_string())
            .unwrap_or_else(|| "?".into());
        let line = format!(
            "[{}/{total}] {:<8} {} seed {}  ops {}  faults {}  {:.1}s  {}  ({} elapsed, {eta})",
            self.done,
            r.outcome.name().to_uppercase(),
            r.label,
            r.seed,
            r.ops.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            r.faults,
            r.duration_s,
            if run.dir.as_os_str().is_empty() {
                r.message.clone().unwrap_or_default()
            } else {
                run.dir.display().to_string()
            },
            crate::report::dur(elapsed.as_nanos() as i64),
        );
        self.bar.suspend(|| {
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        });
        self.bar.set_position(self.done as u64);
        self.bar.set_message(eta);
    }

    fn done(&self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::nemesis::Package;

    /// The built-in nightly plans runs `harness run` accepts, and among them
    /// runs of every nemesis package that catches planted bugs
    /// (docs/bugs.md): a typo there would only show at night.
    #[test]
    fn the_nightly_suite_is_valid_and_plays_every_package() {
        let suite = Suite::parse(NIGHTLY, "built-in nightly", &Overrides::default()).unwrap();
        assert_eq!(suite.cells.len(), 26);
        let req = SuiteRequest {
            results_dir: "results".into(),
            ..SuiteRequest::default()
        };
        let mut played = BTreeSet::new();
        let mut lease = false;
        for cell in &suite.cells {
            let c = config(&suite, cell, &req).unwrap_or_else(|e| panic!("{e}"));
            played.extend(c.packages.iter().copied());
            lease |= c.read_consistency == crate::client::ReadConsistency::Lease
                && c.packages.contains(&Package::EarlyCampaign);
        }
        assert_eq!(played, Package::ALL.into_iter().collect(), "{played:?}");
        assert!(lease, "a run reads with leases under early-campaign");
    }
}
