//! `harness selftest`: does the harness catch the planted bugs of our node
//! (docs/bugs.md)? Each bug of the catalogue runs under the suite settings
//! ([`SUITE_ARGS`], plus what its class needs: [`profile`]), one run after
//! another with seeds `seed, seed+1, …`, until a run is invalid or the
//! bug's budget of wall time is spent. Then the correct node runs the same
//! settings for its own budget: any invalid run there is a false alarm.
//! The table says, per bug, whether it was caught, after how many runs and
//! how much traffic, and which check caught it.
//!
//! It needs a build with the catalogue (`--features bugs`); without it,
//! it refuses with the command that builds one. Runs go through the very
//! code of `harness run` ([`crate::run::run_once`]), configured by parsing
//! `harness run` flags, so the suite settings are flags a user can replay.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use clap::Parser;
use serde::Serialize;
use tokio::sync::watch;

use crate::cli::{Cli, Command};
use crate::run::{self, RunConfig, EXIT_ERROR, EXIT_INVALID, EXIT_VALID};
use crate::store::RunResults;

/// The suite's `harness run` flags: every nemesis package (clock faults
/// included) plus plain kills and partitions, short intervals, short op
/// timeouts (no worker sits blind in a write to a cut-off leader), 20 s of
/// traffic.
pub const SUITE_ARGS: &[&str] = &[
    "--nodes",
    "5",
    "--time-limit",
    "20",
    "--nemesis",
    "packages,clock,kill,partition",
    "--nemesis-interval",
    "1",
    "--op-timeout-ms",
    "1000",
];

/// What a bug's class needs on top of the suite settings: lease reads for
/// the lease bugs (and no CheckQuorum, plus a follower that campaigns
/// early, for the one that is only wrong without it), without the `clock`
/// package (a correct lease assumes a leader's clock runs at about the
/// right rate); membership changes, with the packages that put two in
/// flight or add learners to a cut-off leader, for the membership bugs.
/// The correct node runs every profile.
pub fn profile(bug: &str) -> &'static [&'static str] {
    match bug {
        "lease-past-bound" => &[
            "--read-consistency",
            "lease",
            "--nemesis",
            "packages,kill,partition",
        ],
        "lease-without-check-quorum" => &[
            "--read-consistency",
            "lease",
            "--nemesis",
            "packages,early-campaign,kill,partition",
            "--system-opt",
            "check-quorum=false",
        ],
        "concurrent-conf-changes" | "counts-non-voters" => &[
            "--nemesis",
            "packages,clock,kill,partition,member,member-overlap,member-learners",
        ],
        _ => &[],
    }
}

/// `harness selftest`.
#[derive(clap::Args, Debug, Clone)]
pub struct SelftestArgs {
    /// Bugs to run (comma list; default: the whole catalogue).
    #[arg(long, value_delimiter = ',')]
    pub bugs: Vec<String>,

    /// Wall-clock seconds per bug before it counts as not caught.
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    pub budget: f64,

    /// Wall-clock seconds of runs of the correct node (0: none).
    #[arg(long, value_name = "SECONDS", default_value_t = 600.0)]
    pub control_budget: f64,

    /// First seed (each run takes the next one).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Where the runs' folders go (one subfolder per bug, `correct` for
    /// the correct node), and `selftest.json`.
    #[arg(long, default_value = "results/selftest")]
    pub results_dir: PathBuf,

    /// More `harness run` flags, after the suite's (a later flag wins),
    /// e.g. `--run-args "--time-limit 10 --nodes 3"`.
    #[arg(long, allow_hyphen_values = true, default_value = "")]
    pub run_args: String,
}

/// One row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct BugRow {
    pub bug: String,
    pub class: String,
    pub caught: bool,
    /// Runs made (the last one caught it, when caught).
    pub runs: u32,
    /// Seconds of client traffic until the first invalid run ended (or in
    /// all runs, when not caught).
    pub traffic_s: f64,
    /// Wall-clock seconds until then.
    pub wall_s: f64,
    /// The checks that found the invalid run: `linearizability`,
    /// `raft-safety`, `node-exit`.
    pub caught_by: Vec<String>,
    /// The run folder of the first invalid run.
    pub run_dir: Option<String>,
    /// Runs that failed (exit 3) on the way: not a verdict either way.
    pub errors: u32,
    pub seed_first: u64,
}

/// The correct node's runs.
#[derive(Debug, Clone, Serialize)]
pub struct ControlRow {
    pub runs: u32,
    pub traffic_s: f64,
    pub wall_s: f64,
    /// Invalid runs of the correct node: false alarms (their folders).
    pub false_alarms: Vec<String>,
    pub errors: u32,
}

/// `selftest.json`.
#[derive(Debug, Clone, Serialize)]
pub struct SelftestReport {
    pub suite_args: Vec<String>,
    pub budget_s: f64,
    pub bugs: Vec<BugRow>,
    pub control: Option<ControlRow>,
}

/// Runs the selftest; the exit code is 0 when every bug was caught and the
/// correct node raised no alarm, 1 otherwise, 3 when it could not run.
pub async fn run(
    args: &SelftestArgs,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> i32 {
    let catalogue = node::cli::bug_catalogue();
    if catalogue.is_empty() {
        let _ = writeln!(
            out,
            "error: harness selftest needs the bug catalogue, and this build has none: \
             build with `cargo build --release -p harness --features bugs`"
        );
        return EXIT_ERROR;
    }
    let chosen: Vec<(&str, &str)> = if args.bugs.is_empty() {
        catalogue.clone()
    } else {
        let mut v = Vec::new();
        for b in &args.bugs {
            match catalogue.iter().find(|(n, _)| n == b) {
                Some(&pair) => v.push(pair),
                None => {
                    let names: Vec<&str> = catalogue.iter().map(|(n, _)| *n).collect();
                    let _ = writeln!(
                        out,
                        "error: unknown bug {b:?}; the catalogue is: {}",
                        names.join(", ")
                    );
                    return EXIT_ERROR;
                }
            }
        }
        v
    };
    let extra: Vec<String> = args.run_args.split_whitespace().map(String::from).collect();
    // Every configuration is checked before anything runs.
    for (bug, _) in &chosen {
        if let Err(e) = config_for(Some(bug), &extra, args) {
            let _ = writeln!(out, "error: {e}");
            return EXIT_ERROR;
        }
    }
    let suite: Vec<String> = SUITE_ARGS
        .iter()
        .map(|s| s.to_string())
        .chain(extra.iter().cloned())
        .collect();
    let _ = writeln!(
        out,
        "selftest: {} bug(s), budget {}s each, suite: harness run {}",
        chosen.len(),
        args.budget,
        suite.join(" ")
    );
    let mut report = SelftestReport {
        suite_args: suite,
        budget_s: args.budget,
        bugs: Vec::new(),
        control: None,
    };
    let mut seed = args.seed;
    for (bug, class) in &chosen {
        if *stop.borrow() {
            break;
        }
        let Ok(config) = config_for(Some(bug), &extra, args) else {
            return EXIT_ERROR;
        };
        let row = hunt(bug, class, &config, &mut seed, args.budget, &stop).await;
        let _ = writeln!(out, "{}", row_line(&row));
        let _ = out.flush();
        report.bugs.push(row);
    }
    if args.control_budget > 0.0 && !*stop.borrow() {
        let control = control(&chosen, &extra, args, &mut seed, &stop).await;
        report.control = Some(control);
    }
    print_table(out, &report);
    let path = args.results_dir.join("selftest.json");
    if let Err(e) = std::fs::create_dir_all(&args.results_dir).and_then(|_| {
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&report).unwrap_or_default(),
        )
    }) {
        let _ = writeln!(out, "warning: cannot write {}: {e}", path.display());
    }
    let all_caught = report.bugs.iter().all(|r| r.caught);
    let clean = report
        .control
        .as_ref()
        .is_none_or(|c| c.false_alarms.is_empty());
    if all_caught && clean && !*stop.borrow() {
        EXIT_VALID
    } else {
        EXIT_INVALID
    }
}

/// The run configuration of `bug` (or of the correct node under `bug`'s
/// profile), parsed from `harness run` flags: the suite's, the bug's
/// profile, the user's extra flags, then the bug itself.
fn config_for(
    bug: Option<&str>,
    extra: &[String],
    args: &SelftestArgs,
) -> Result<RunConfig, String> {
    let profile_of = bug.map(profile).unwrap_or(&[]);
    let mut argv: Vec<String> = vec!["harness".into(), "run".into()];
    argv.extend(SUITE_ARGS.iter().map(|s| s.to_string()));
    argv.extend(profile_of.iter().map(|s| s.to_string()));
    argv.extend(extra.iter().cloned());
    let parsed = Cli::try_parse_from(&argv).map_err(|e| format!("bad --run-args: {e}"))?;
    let Command::Run(run_args) = parsed.command else {
        return Err("bad --run-args".into());
    };
    let mut config = run_args.config();
    config.verbose = false;
    config.report = false;
    let folder = bug.unwrap_or("correct");
    config.results_dir = args.results_dir.join(folder);
    config.validate()?;
    Ok(config)
}

/// Runs `bug` until a run is invalid or `budget` seconds have passed.
async fn hunt(
    bug: &str,
    class: &str,
    config: &RunConfig,
    seed: &mut u64,
    budget: f64,
    stop: &watch::Receiver<bool>,
) -> BugRow {
    let mut config = config.clone();
    config.system_opts.push(("bug".into(), bug.into()));
    let started = Instant::now();
    let mut row = BugRow {
        bug: bug.into(),
        class: class.into(),
        caught: false,
        runs: 0,
        traffic_s: 0.0,
        wall_s: 0.0,
        caught_by: Vec::new(),
        run_dir: None,
        errors: 0,
        seed_first: *seed,
    };
    while started.elapsed().as_secs_f64() < budget && !*stop.borrow() {
        let done = one_run(&config, *seed, stop).await;
        *seed += 1;
        if done.results.interrupted {
            // Cut short by Ctrl-C: no verdict on the bug either way.
            break;
        }
        row.runs += 1;
        row.traffic_s += traffic_of(&done.results, config.time_limit);
        row.wall_s = started.elapsed().as_secs_f64();
        if done.exit_code == EXIT_ERROR {
            row.errors += 1;
        }
        if done.exit_code == EXIT_INVALID {
            row.caught = true;
            row.caught_by = caught_by(&done.results);
            row.run_dir = Some(done.dir.display().to_string());
            break;
        }
    }
    row
}

/// The correct node under every profile of the chosen bugs, in turn,
/// until its budget is spent.
async fn control(
    chosen: &[(&str, &str)],
    extra: &[String],
    args: &SelftestArgs,
    seed: &mut u64,
    stop: &watch::Receiver<bool>,
) -> ControlRow {
    let mut profiles: Vec<&[&str]> = Vec::new();
    for (bug, _) in chosen {
        let p = profile(bug);
        if !profiles.contains(&p) {
            profiles.push(p);
        }
    }
    let started = Instant::now();
    let mut row = ControlRow {
        runs: 0,
        traffic_s: 0.0,
        wall_s: 0.0,
        false_alarms: Vec::new(),
        errors: 0,
    };
    let mut i = 0;
    while started.elapsed().as_secs_f64() < args.control_budget && !*stop.borrow() {
        // A bug name that has this profile stands for it.
        let p = profiles[i % profiles.len()];
        let stand_in = chosen
            .iter()
            .find(|(b, _)| profile(b) == p)
            .map(|(b, _)| *b);
        let Ok(mut config) = config_for(stand_in, extra, args) else {
            break;
        };
        config.results_dir = args.results_dir.join("correct");
        let done = one_run(&config, *seed, stop).await;
        *seed += 1;
        if done.results.interrupted {
            break;
        }
        i += 1;
        row.runs += 1;
        row.traffic_s += traffic_of(&done.results, config.time_limit);
        row.wall_s = started.elapsed().as_secs_f64();
        match done.exit_code {
            EXIT_INVALID => row.false_alarms.push(done.dir.display().to_string()),
            EXIT_ERROR => row.errors += 1,
            _ => {}
        }
    }
    row
}

async fn one_run(config: &RunConfig, seed: u64, stop: &watch::Receiver<bool>) -> run::CompletedRun {
    let argv = vec!["harness".to_string(), "selftest".to_string()];
    let mut sink = std::io::sink();
    run::run_once(config, seed, 1, argv, &mut sink, stop.clone()).await
}

/// Seconds of traffic a run had (its measured duration, else its limit).
fn traffic_of(r: &RunResults, limit: f64) -> f64 {
    r.stats
        .as_ref()
        .map(|s| s.duration_s.min(limit))
        .filter(|d| *d > 0.0)
        .unwrap_or(limit)
}

/// Which checks found the run invalid.
fn caught_by(r: &RunResults) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(c) = &r.checkers {
        if c.linearizability
            .as_ref()
            .is_some_and(|l| l.valid == checker::Validity::Invalid)
        {
            v.push("linearizability".to_string());
        }
        if c.raft_safety
            .as_ref()
            .is_some_and(|l| l.valid == checker::Validity::Invalid)
        {
            v.push("raft-safety".to_string());
        }
    }
    if !r.node_exits.is_empty() {
        v.push("node-exit".to_string());
    }
    v
}

fn row_line(r: &BugRow) -> String {
    format!(
        "{:<28} {:<12} {:<6} {:>4} {:>9.0} {:>8.0}  {}{}",
        r.bug,
        r.class,
        if r.caught { "yes" } else { "NO" },
        r.runs,
        r.traffic_s,
        r.wall_s,
        if r.caught_by.is_empty() {
            "-".to_string()
        } else {
            r.caught_by.join("+")
        },
        if r.errors > 0 {
            format!("  ({} run(s) failed)", r.errors)
        } else {
            String::new()
        }
    )
}

fn print_table(out: &mut dyn Write, report: &SelftestReport) {
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<28} {:<12} {:<6} {:>4} {:>9} {:>8}  caught by",
        "bug", "class", "caught", "runs", "traffic_s", "wall_s"
    );
    for r in &report.bugs {
        let _ = writeln!(out, "{}", row_line(r));
    }
    let caught: Vec<&BugRow> = report.bugs.iter().filter(|r| r.caught).collect();
    let mut times: Vec<f64> = caught.iter().map(|r| r.traffic_s).collect();
    times.sort_by(f64::total_cmp);
    let median = match times.len() {
        0 => None,
        n if n % 2 == 1 => Some(times[n / 2]),
        n => Some((times[n / 2 - 1] + times[n / 2]) / 2.0),
    };
    let _ = writeln!(
        out,
        "caught {}/{} within {}s each; median traffic to catch {}",
        caught.len(),
        report.bugs.len(),
        report.budget_s,
        median.map_or("-".to_string(), |m| format!("{m:.0}s (of the caught)"))
    );
    if let Some(c) = &report.control {
        let _ = writeln!(
            out,
            "correct node: {} run(s), {:.0}s of traffic, {} false alarm(s){}{}",
            c.runs,
            c.traffic_s,
            c.false_alarms.len(),
            if c.errors > 0 {
                format!(", {} run(s) failed", c.errors)
            } else {
                String::new()
            },
            if c.false_alarms.is_empty() {
                String::new()
            } else {
                format!(": {}", c.false_alarms.join(", "))
            }
        );
    }
    let _ = out.flush();
}
