//! `harness replay RUN_DIR`: runs a recorded run again, to see whether a
//! failure comes back (or, against a fixed build, no longer does).
//!
//! What is the same: the whole configuration of `test.json` (system and its
//! options, nodes, workload, keys, mix, rates, timeouts, read level), the
//! seed, hence the very ops each client issues in the same order, and the
//! faults as the recorded run realised them: the nemesis events of its
//! history, on the same nodes, at the same times after the traffic started
//! ([`RecordedSchedule`]), not a fresh draw. What cannot be the same:
//! process scheduling, network timing, elections, so which op meets which
//! fault and which node leads differ from run to run. A replay reproduces
//! the conditions, not the interleaving; `--count N` says how often those
//! conditions bring the verdict back.
//!
//! Packages that time their faults by watching the cluster (a vote in
//! flight, a commit index that moved) are the exception: at recorded
//! times they miss what they were aimed at. `--live` draws the same seeded
//! plan again and plays it as the original run did, watching included.

use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::sync::watch;

use crate::client::ReadConsistency;
use crate::nemesis::{FaultKind, NemesisSpec, RecordedSchedule};
use crate::run::{self, CompletedRun, RunConfig, EXIT_ERROR};
use crate::store::{RunResults, TestConfig};
use crate::systems::SystemKind;

/// Why a run folder cannot be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a test.json the harness writes: {source}")]
    Test {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error(transparent)]
    History(#[from] formats::ReadError),
    #[error("{0}")]
    Schedule(#[from] crate::nemesis::recorded::RecordedError),
}

/// What to replay, and against what.
#[derive(Debug, Clone)]
pub struct ReplayRequest {
    pub run_dir: PathBuf,
    /// Another program for the system (a fixed build).
    pub node_bin: Option<PathBuf>,
    /// Another system under test (its options are then its defaults).
    pub system: Option<SystemKind>,
    /// Where the replays' run folders go (default: beside the original's
    /// test folder when it is in a results tree, else `results`).
    pub results_dir: Option<PathBuf>,
    /// Replays to run, one after the other.
    pub count: u32,
    /// The seeded nemesis plan, played live, instead of the recorded steps.
    pub live: bool,
}

/// A recorded run, ready to run again.
#[derive(Debug, Clone)]
pub struct Recording {
    pub test: TestConfig,
    pub results: Option<RunResults>,
    pub schedule: RecordedSchedule,
}

impl Recording {
    /// Reads `test.json`, the history's fault schedule and, if present,
    /// `results.json`.
    pub fn read(run_dir: &Path) -> Result<Self, ReplayError> {
        let path = run_dir.join("test.json");
        let text = std::fs::read(&path).map_err(|source| ReplayError::Io {
            path: path.clone(),
            source,
        })?;
        let test: TestConfig =
            serde_json::from_slice(&text).map_err(|source| ReplayError::Test { path, source })?;
        let history = run_dir.join(formats::history::FILE_NAME);
        let events = formats::history::Reader::open(&history)?
            .map(|e| e.map(|n| n.event))
            .collect::<Result<Vec<_>, _>>()?;
        let schedule = RecordedSchedule::from_events(events)?;
        let results = RunResults::read(&run_dir.join("results.json")).ok();
        Ok(Recording {
            test,
            results,
            schedule,
        })
    }

    /// The run configuration of `test.json`, with the request's changes.
    pub fn config(&self, req: &ReplayRequest) -> Result<RunConfig, ReplayError> {
        let t = &self.test;
        let bad = |message: String| ReplayError::Config {
            path: req.run_dir.join("test.json"),
            message,
        };
        let recorded_system = SystemKind::ALL
            .into_iter()
            .find(|s| s.name() == t.system.name)
            .ok_or_else(|| bad(format!("unknown system {:?}", t.system.name)))?;
        let system = req.system.unwrap_or(recorded_system);
        // `test.json` holds every option's value, defaults included; only
        // the ones that differ are set again (a default such as `bug=none`
        // would be refused by a build that has no bug catalogue).
        let options = system.descriptor().options;
        let system_opts = if system == recorded_system {
            t.system
                .opts
                .iter()
                .filter(|(k, v)| {
                    options
                        .iter()
                        .find(|o| o.key == *k)
                        .is_none_or(|o| o.default != *v)
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        } else {
            Vec::new()
        };
        let node_bin = req.node_bin.clone().or_else(|| {
            (system == recorded_system)
                .then(|| t.system.bin.clone().map(PathBuf::from))
                .flatten()
        });
        let spec = NemesisSpec::parse(&t.nemesis.join(",")).map_err(bad)?;
        let mut nemesis = spec.kinds;
        // Whatever the recording holds must be allowed (it always is for
        // our own runs). A live replay draws the plan again, which must
        // see the kinds the original saw, no more.
        if !req.live {
            nemesis.0.extend(self.schedule.kinds());
        }
        let results_dir = req.results_dir.clone().unwrap_or_else(|| {
            crate::report::results_dir_of(&req.run_dir).unwrap_or_else(|| PathBuf::from("results"))
        });
        Ok(RunConfig {
            system,
            system_opts,
            node_bin,
            nodes: t.nodes,
            time_limit: t.time_limit_s,
            concurrency: t.concurrency,
            rate: t.rate,
            workload: t
                .workload
                .parse()
                .map_err(|e: workloads::WorkloadError| bad(e.to_string()))?,
            key_count: t.keys.len().max(1),
            key_dist: t
                .key_dist
                .parse()
                .map_err(|e: workloads::WorkloadError| bad(e.to_string()))?,
            mix: Some(workloads::OpMix::parse(&t.mix).map_err(|e| bad(e.to_string()))?),
            nemesis,
            // Kept so the configuration reads as recorded; the recorded
            // steps, not a new draw of episodes, are what the replay runs.
            packages: spec.packages,
            readers: t.readers,
            nemesis_interval: t.nemesis_interval_s,
            nemesis_targets: t.nemesis_targets,
            read_consistency: t.read_consistency.parse::<ReadConsistency>().map_err(bad)?,
            proxies: t.proxy,
            follow_leader: t.follow_leader,
            op_timeout_ms: t.op_timeout_ms,
            recovery_timeout: 20.0,
            status_interval_ms: t.status_interval_ms,
            results_dir,
            check: true,
            report: true,
            verbose: true,
        })
    }
}

/// `harness replay`: runs the recording again `count` times, then prints
/// the original's verdict beside each replay's. The exit code is the
/// replays' (a fixed build exits 0).
pub async fn command(
    req: &ReplayRequest,
    argv: Vec<String>,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> i32 {
    let (rec, config) = match Recording::read(&req.run_dir).and_then(|r| {
        let c = r.config(req)?;
        Ok((r, c))
    }) {
        Ok(x) => x,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            return EXIT_ERROR;
        }
    };
    if req.live {
        let _ = writeln!(
            out,
            "replaying {} (seed {}, its nemesis plan played live)",
            req.run_dir.display(),
            rec.test.seed,
        );
    } else {
        let _ = writeln!(
            out,
            "replaying {} (seed {}, {} recorded fault steps)",
            req.run_dir.display(),
            rec.test.seed,
            rec.schedule.steps.len()
        );
        let watching: Vec<&str> = config
            .packages
            .iter()
            .filter(|p| p.watches())
            .map(|p| p.name())
            .collect();
        if !watching.is_empty() {
            let _ = writeln!(
                out,
                "note: {} time their faults by watching the cluster; at recorded times they \
                 rarely meet the same election again (--live plays the plan as the run did)",
                watching.join(", ")
            );
        }
    }
    let recorded = (!req.live).then(|| rec.schedule.clone());
    let mut runs = Vec::new();
    for i in 0..req.count.max(1) {
        if *stop.borrow() {
            break;
        }
        let run = run::run_with_faults(
            &config,
            rec.test.seed,
            i as usize + 1,
            argv.clone(),
            recorded.clone(),
            out,
            stop.clone(),
        )
        .await;
        runs.push(run);
    }
    print_side_by_side(out, &req.run_dir, rec.results.as_ref(), &runs);
    run::combine_exit_codes(&runs.iter().map(|r| r.exit_code).collect::<Vec<_>>())
}

/// The original's verdict, ops and faults beside the replay's: in
/// columns for one replay, a row per run for several.
fn print_side_by_side(
    out: &mut dyn Write,
    original_dir: &Path,
    original: Option<&RunResults>,
    replays: &[CompletedRun],
) {
    let mut runs: Vec<(String, Vec<String>)> =
        vec![("original".into(), column(original, original_dir))];
    for (i, r) in replays.iter().enumerate() {
        runs.push((
            format!("replay {}", i + 1),
            column(Some(&r.results), &r.dir),
        ));
    }
    let fields = [
        "verdict",
        "linearizable",
        "raft safety",
        "ops",
        "faults",
        "folder",
    ];
    let _ = writeln!(out);
    if replays.len() <= 1 {
        let width = |c: &(String, Vec<String>)| {
            c.1.iter()
                .map(|s| s.chars().count())
                .chain([c.0.len()])
                .max()
                .unwrap_or(0)
        };
        let _ = write!(out, "{:<13}", "");
        for c in &runs {
            let _ = write!(out, "  {:<w$}", c.0, w = width(c));
        }
        let _ = writeln!(out);
        for (i, name) in fields.iter().enumerate() {
            let _ = write!(out, "{name:<13}");
            for c in &runs {
                let _ = write!(out, "  {:<w$}", c.1[i], w = width(c));
            }
            let _ = writeln!(out);
        }
    } else {
        let widths: Vec<usize> = (0..fields.len())
            .map(|i| {
                runs.iter()
                    .map(|r| r.1[i].chars().count())
                    .chain([fields[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let _ = write!(out, "{:<10}", "");
        for (f, w) in fields.iter().zip(&widths) {
            let _ = write!(out, "  {f:<w$}");
        }
        let _ = writeln!(out);
        for (name, col) in &runs {
            let _ = write!(out, "{name:<10}");
            for (v, w) in col.iter().zip(&widths) {
                let _ = write!(out, "  {v:<w$}");
            }
            let _ = writeln!(out);
        }
        let invalid = replays
            .iter()
            .filter(|r| r.exit_code == run::EXIT_INVALID)
            .count();
        let _ = writeln!(out, "{invalid} of {} replays were invalid", replays.len());
    }
}

fn column(r: Option<&RunResults>, dir: &Path) -> Vec<String> {
    let Some(r) = r else {
        return vec![
            "no results.json".into(),
            "?".into(),
            "?".into(),
            "?".into(),
            "?".into(),
            dir.display().to_string(),
        ];
    };
    let verdict = crate::report::Verdict::of_results(Some(r))
        .text()
        .to_string();
    let code = r
        .exit_code
        .map(|c| format!(" (exit {c})"))
        .unwrap_or_default();
    let checker = |v: Option<checker::Validity>| match v {
        Some(checker::Validity::Valid) => "valid".to_string(),
        Some(checker::Validity::Invalid) => "INVALID".to_string(),
        Some(checker::Validity::Unknown) => "unknown".to_string(),
        None => "-".to_string(),
    };
    let c = r.checkers.as_ref();
    vec![
        format!("{verdict}{code}"),
        checker(c.and_then(|c| c.linearizability.as_ref()).map(|l| l.valid)),
        checker(c.and_then(|c| c.raft_safety.as_ref()).map(|l| l.valid)),
        r.ops.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
        fault_count(r).to_string(),
        dir.display().to_string(),
    ]
}

/// Faults started in a run (undos not counted), from its statistics.
pub fn fault_count(r: &RunResults) -> u64 {
    r.stats.as_ref().map_or(0, |s| {
        s.nemesis_events
            .iter()
            .filter(|(f, _)| {
                FaultKind::of_event(f).is_some_and(|(_, e)| e == crate::nemesis::Edge::Starts)
            })
            .map(|(_, n)| n)
            .sum()
    })
}
