//! One `harness run`, end to end (the folder it fills: docs/formats.md,
//! "Results folder"):
//!
//! 1. plan ([`plan`]): check the configuration against what the system can
//!    take, configure the system (find its program, read its version);
//!    nothing starts if either fails;
//! 2. store: the run folder, `test.json`, the history file (its clock starts);
//! 3. session ([`session`]): the cluster through the system's seam, the
//!    status poller, a leader; traffic (client workers) and the nemesis
//!    until the time limit or Ctrl-C; then heal everything, wait for a
//!    leader (with a deadline: no recovery fails the run with a clear
//!    message), one linearizable read of every key, stop the nodes;
//! 4. verdict ([`verdict`]): linearizability and Raft safety (checker
//!    crate), stats, `results.json`, the report, the exit code.
//!
//! Ctrl-C (SIGINT or SIGTERM) skips to the end without the recovery and the
//! final reads: the nemesis stops and heals, the nodes stop, and what was
//! recorded is checked and reported like any other history.
//!
//! Exit codes: 0 valid, 1 invalid, 2 unknown, 3 harness error (a harness
//! failure is never reported as a verdict on the system).

pub mod exits;
pub mod plan;
pub mod session;
pub mod verdict;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::watch;
use workloads::{KeyDist, OpMix, WorkloadKind};

use crate::client::ReadConsistency;
use crate::cluster::ClusterError;
use crate::history::Recorder;
use crate::nemesis::{FaultKind, FaultKinds, NemesisSpec, Package, RecordedSchedule, Targets};
use crate::store::{RunDir, RunResults};
use crate::systems::capabilities::Request;
use crate::systems::{SystemError, SystemKind};

/// Exit code: the history is linearizable and Raft was safe.
pub const EXIT_VALID: i32 = 0;
/// Exit code: a checker found a violation.
pub const EXIT_INVALID: i32 = 1;
/// Exit code: a checker ran out of budget.
pub const EXIT_UNKNOWN: i32 = 2;
/// Exit code: the harness could not do its job (no verdict).
pub const EXIT_ERROR: i32 = 3;

/// Errors that stop a run before it has a history worth checking.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The results folder could not be written.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The history file could not be created or written.
    #[error(transparent)]
    History(#[from] crate::history::HistoryError),
    /// The cluster could not be started or controlled.
    #[error("cluster: {0}")]
    Cluster(#[from] ClusterError),
    /// The system cannot be configured as asked.
    #[error(transparent)]
    System(#[from] SystemError),
    /// The traffic failed.
    #[error(transparent)]
    Traffic(#[from] crate::generator::TrafficError),
    /// The nemesis could not be set up.
    #[error("nemesis: {0}")]
    Nemesis(#[from] crate::nemesis::NemesisError),
    /// The configuration is inconsistent.
    #[error("{0}")]
    Config(String),
    /// The run could not go on (no leader, no recovery, a task died).
    #[error("{0}")]
    Failed(String),
}

/// Everything a run is asked to do: what `harness run`'s flags say, and
/// what `harness bench` builds for each of its cells.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub system: SystemKind,
    /// `--system-opt`s, checked against the system's options when planning.
    pub system_opts: Vec<(String, String)>,
    /// The system's program instead of its default.
    pub node_bin: Option<PathBuf>,
    pub nodes: usize,
    /// Seconds of client traffic.
    pub time_limit: f64,
    /// Client workers.
    pub concurrency: usize,
    /// Read-only workers per node, besides `concurrency`.
    pub readers: usize,
    /// Total ops/s (`None`: unlimited).
    pub rate: Option<f64>,
    pub workload: WorkloadKind,
    pub key_count: usize,
    pub key_dist: KeyDist,
    /// Op weights (`None`: the workload's own).
    pub mix: Option<OpMix>,
    /// Fault kinds of the generic schedule.
    pub nemesis: FaultKinds,
    /// Nemesis packages (named fault scenarios); when any is set, the
    /// generic schedule plays as one more kind of episode among them.
    pub packages: BTreeSet<Package>,
    /// Mean seconds between fault steps.
    pub nemesis_interval: f64,
    pub nemesis_targets: Targets,
    pub read_consistency: ReadConsistency,
    /// Peer traffic through the harness's network.
    pub proxies: bool,
    pub follow_leader: bool,
    pub op_timeout_ms: u64,
    /// Seconds to wait for a leader after the faults are healed.
    pub recovery_timeout: f64,
    /// How often every node's status is polled.
    pub status_interval_ms: u64,
    pub results_dir: PathBuf,
    /// Run the checkers.
    pub check: bool,
    /// Render the report.
    pub report: bool,
    /// Print the configuration and the summary.
    pub verbose: bool,
}

impl RunConfig {
    /// Checks combinations that flags alone cannot express, and what the
    /// system can take (its capabilities): every refusal is a sentence, and
    /// nothing has started yet.
    pub fn validate(&self) -> Result<(), String> {
        let faults = self.nemesis_spec().needed_kinds();
        if !self.proxies && faults.contains(FaultKind::Partition) {
            return Err(
                "--no-proxy leaves no way to partition the nodes: drop partition from --nemesis"
                    .into(),
            );
        }
        if faults.contains(FaultKind::Member) && self.nodes < 3 {
            return Err("the member fault needs at least 3 nodes".into());
        }
        self.workload_config(0)
            .validate()
            .map_err(|e| e.to_string())?;
        let d = self.system.descriptor();
        if let Some(p) = self.packages.iter().find(|p| p.needs_concurrent_members()) {
            if !d.capabilities.concurrent_members {
                return Err(format!(
                    "{} cannot take membership changes asked for at once: drop {p} from --nemesis",
                    d.name
                ));
            }
        }
        if let Some(p) = self.packages.iter().find(|p| p.needs_clock()) {
            if !d.capabilities.clock {
                return Err(format!(
                    "{} has no clock the harness can change: drop {p} from --nemesis",
                    d.name
                ));
            }
        }
        d.capabilities
            .check(
                d.name,
                &Request {
                    faults: &faults,
                    reads: self.read_consistency,
                    workload: self.workload,
                },
            )
            .map_err(|e| e.to_string())
    }

    /// `--nemesis` as given: the kinds and the packages.
    pub fn nemesis_spec(&self) -> NemesisSpec {
        NemesisSpec {
            kinds: self.nemesis.clone(),
            packages: self.packages.clone(),
        }
    }

    /// The workload of a run with `seed`.
    pub fn workload_config(&self, seed: u64) -> workloads::WorkloadConfig {
        let mut w = workloads::WorkloadConfig::new(self.workload, seed);
        w.key_count = self.key_count;
        w.key_dist = self.key_dist;
        if let Some(mix) = self.mix {
            w.mix = mix;
        }
        w
    }

    /// The test name: the system when it is not our node, the workload, the
    /// faults, and the read consistency when it is not linearizable
    /// (`kv-all`, `register-partition-stale`, `etcd-kv-all`).
    pub fn test_name(&self) -> String {
        let mut name = String::new();
        if self.system != SystemKind::RaftNode {
            name.push_str(self.system.name());
            name.push('-');
        }
        name.push_str(&format!(
            "{}-{}",
            self.workload.name(),
            self.nemesis_spec().short_name()
        ));
        if self.read_consistency != ReadConsistency::Linearizable {
            name.push('-');
            name.push_str(self.read_consistency.name());
        }
        name
    }

    fn op_timeout(&self) -> Duration {
        Duration::from_millis(self.op_timeout_ms)
    }
}

/// What one run left: its folder, exit code and `results.json`.
#[derive(Debug, Clone)]
pub struct CompletedRun {
    /// The run folder (empty when the run failed before it had one).
    pub dir: PathBuf,
    pub exit_code: i32,
    pub results: RunResults,
}

/// Resolves a fresh random seed (printed first, so any run can be replayed).
pub fn random_seed() -> u64 {
    use rand::RngCore;
    rand::rngs::OsRng.next_u64() >> 1
}

/// `harness run`: `--test-count` runs with seeds `seed, seed+1, …`; the exit
/// code is invalid if any run was invalid, else error if any failed, else
/// unknown if any was unknown, else valid.
pub async fn run_tests(
    config: &RunConfig,
    seed: Option<u64>,
    test_count: u64,
    argv: Vec<String>,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> i32 {
    let seed = seed.unwrap_or_else(random_seed);
    let mut codes = Vec::new();
    for i in 0..test_count {
        if *stop.borrow() {
            break;
        }
        let run = run_once(
            config,
            seed.wrapping_add(i),
            i as usize + 1,
            argv.clone(),
            out,
            stop.clone(),
        )
        .await;
        codes.push(run.exit_code);
    }
    combine_exit_codes(&codes)
}

/// The exit code of several runs.
pub fn combine_exit_codes(codes: &[i32]) -> i32 {
    [EXIT_INVALID, EXIT_ERROR, EXIT_UNKNOWN]
        .into_iter()
        .find(|c| codes.contains(c))
        .unwrap_or(EXIT_VALID)
}

/// One run; never panics on a harness failure, which ends as exit 3 with
/// the error in `results.json`.
pub async fn run_once(
    config: &RunConfig,
    seed: u64,
    test_index: usize,
    argv: Vec<String>,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> CompletedRun {
    run_with_faults(config, seed, test_index, argv, None, out, stop).await
}

/// [`run_once`], with the fault schedule an earlier run realised instead of
/// a fresh draw when `recorded` is given (`harness replay`).
pub async fn run_with_faults(
    config: &RunConfig,
    seed: u64,
    test_index: usize,
    argv: Vec<String>,
    recorded: Option<RecordedSchedule>,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> CompletedRun {
    let mut plan = match plan::Plan::new(config, seed, test_index, argv) {
        Ok(p) => p,
        Err(e) => return failed_before_run_dir(out, &e),
    };
    plan.recorded = recorded;
    let dir = match RunDir::create(&config.results_dir, &plan.test.name) {
        Ok(d) => d,
        Err(e) => return failed_before_run_dir(out, &e),
    };
    let recorder = match Recorder::create(&dir.history()) {
        Ok(r) => r,
        Err(e) => return failed_early(out, &dir, e.into()),
    };
    plan.test.start_unix_ns = recorder.start_unix_ns();
    if config.verbose {
        plan.print(out, &dir.path);
    }
    if let Err(e) = dir.write_test(&plan.test) {
        return failed_early(out, &dir, e.into());
    }

    let (session, exits) = session::run(&plan, &dir, &recorder, out, stop.clone()).await;
    let interrupted = *stop.borrow();
    let error = session.err().map(|e| e.to_string());
    if let Some(e) = &error {
        let _ = writeln!(out, "error: {e}");
    }
    if let Err(e) = recorder.sync() {
        tracing::warn!(error = %e, "could not sync the history");
    }
    verdict::finish(out, &dir, &plan, error, exits, interrupted).await
}

/// A run that failed before it had a folder: nothing to record or check.
fn failed_before_run_dir(out: &mut (dyn Write + Send), e: &dyn std::fmt::Display) -> CompletedRun {
    let _ = writeln!(out, "error: {e}");
    let mut results = RunResults::default();
    results.fail(e.to_string());
    results.exit_code = Some(EXIT_ERROR);
    CompletedRun {
        dir: PathBuf::new(),
        exit_code: EXIT_ERROR,
        results,
    }
}

fn failed_early(out: &mut dyn Write, dir: &RunDir, e: RunError) -> CompletedRun {
    let _ = writeln!(out, "error: {e}");
    let mut results = RunResults::default();
    results.fail(e.to_string());
    results.exit_code = Some(EXIT_ERROR);
    let _ = dir.write_results(&results);
    CompletedRun {
        dir: dir.path.clone(),
        exit_code: EXIT_ERROR,
        results,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn config(args: &[&str]) -> RunConfig {
        match Cli::try_parse_from(["harness", "run"].iter().chain(args))
            .unwrap()
            .command
        {
            Command::Run(a) => a.config(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn test_names_say_system_workload_faults_and_weak_reads() {
        assert_eq!(
            config(&[]).test_name(),
            "kv-all+member-overlap+member-learners+packages"
        );
        assert_eq!(config(&["--nemesis", "all"]).test_name(), "kv-all");
        assert_eq!(
            config(&["--nemesis", "none", "-w", "register"]).test_name(),
            "register-none"
        );
        assert_eq!(
            config(&["--nemesis", "partition,kill", "--read-consistency", "stale"]).test_name(),
            "kv-kill+partition-stale"
        );
        assert_eq!(
            config(&["--system", "etcd", "--nemesis", "kill"]).test_name(),
            "etcd-kv-kill"
        );
    }

    #[test]
    fn an_invalid_run_outweighs_errors_and_unknowns() {
        assert_eq!(combine_exit_codes(&[0, 0]), EXIT_VALID);
        assert_eq!(combine_exit_codes(&[0, 2]), EXIT_UNKNOWN);
        assert_eq!(combine_exit_codes(&[2, 3, 0]), EXIT_ERROR);
        assert_eq!(combine_exit_codes(&[3, 1, 2]), EXIT_INVALID);
        assert_eq!(combine_exit_codes(&[]), EXIT_VALID);
    }

    #[test]
    fn what_a_system_cannot_take_is_refused_with_what_it_can() {
        let e = config(&["--system", "etcd", "--read-consistency", "lease"])
            .validate()
            .unwrap_err();
        assert_eq!(
            e,
            "etcd has no lease reads: --read-consistency takes linearizable, stale \
             (serializable) for etcd"
        );
        assert!(config(&["--system", "etcd", "--read-consistency", "stale"])
            .validate()
            .is_ok());
    }
}
