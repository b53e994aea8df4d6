//! One `harness run`, end to end (the folder it fills: docs/formats.md,
//! "Results folder"):
//!
//! 1. store: the run folder, `test.json`, the history file (its clock starts);
//! 2. cluster: proxies and node processes, then a leader;
//! 3. traffic (client workers) and the nemesis, until the time limit or Ctrl-C;
//! 4. end: stop the nemesis, heal and resume everything, restart the killed,
//!    wait for a leader (with a deadline: no recovery fails the run with a
//!    clear message), one linearizable read of every key, stop the nodes;
//! 5. checks: linearizability and Raft safety (checker crate), stats;
//! 6. `results.json`, the report, and the exit code.
//!
//! Ctrl-C (SIGINT or SIGTERM) skips to the end without the recovery and the
//! final reads: the nemesis stops and heals, the nodes stop, and what was
//! recorded is checked and reported like any other history.
//!
//! Exit codes: 0 valid, 1 invalid, 2 unknown, 3 harness error (a harness
//! failure is never reported as a verdict on the system).

use crate::cli::RunArgs;
use crate::client::{Client, ReadConsistency};
use crate::cluster::{
    probe_leader, wait_for_leader, ClusterConfig, ClusterError, NodeCluster, ProcessState,
    SystemUnderTest,
};
use crate::generator::{perform, run_traffic, ProcessIds, TrafficConfig};
use crate::history::{EventType, Recorder};
use crate::nemesis::{FaultKind, Nemesis, NemesisEvent, ScheduleConfig};
use crate::progress::{LeaderCell, Progress};
use crate::stats::{self, Stats};
use crate::store::{RunDir, TestConfig};
use serde_json::{json, Value};
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use workloads::WorkloadConfig;

/// Exit code: the history is linearizable and Raft was safe.
pub const EXIT_VALID: i32 = 0;
/// Exit code: a checker found a violation.
pub const EXIT_INVALID: i32 = 1;
/// Exit code: a checker ran out of budget.
pub const EXIT_UNKNOWN: i32 = 2;
/// Exit code: the harness could not do its job (no verdict).
pub const EXIT_ERROR: i32 = 3;

/// How long the cluster gets to elect its first leader.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

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
    /// The client could not be built.
    #[error(transparent)]
    Client(#[from] crate::client::ClientError),
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
    /// The node program could not be located.
    #[error("cannot locate the node program: {0}")]
    NodeProgram(std::io::Error),
}

/// The program and leading arguments that run one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCommand {
    /// The executable.
    pub program: PathBuf,
    /// Arguments placed before the node's flags (e.g. `["node"]`).
    pub args: Vec<OsString>,
}

impl NodeCommand {
    /// How the command is shown in the configuration printout.
    pub fn display(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().map(|a| a.to_string_lossy().to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The single place where the default node command is decided (no
/// `--node-bin`): this very binary re-executed as `harness node …`, so one
/// build always has a matching node and harness.
pub fn default_node_command() -> Result<NodeCommand, RunError> {
    let program = std::env::current_exe().map_err(RunError::NodeProgram)?;
    Ok(NodeCommand {
        program,
        args: vec![OsString::from("node")],
    })
}

/// The node command of a run: `--node-bin` if given, else the default.
pub fn node_command(node_bin: Option<&Path>) -> Result<NodeCommand, RunError> {
    match node_bin {
        Some(p) => {
            let program = std::fs::canonicalize(p).map_err(|e| {
                RunError::NodeProgram(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", p.display()),
                ))
            })?;
            Ok(NodeCommand {
                program,
                args: Vec::new(),
            })
        }
        None => default_node_command(),
    }
}

/// The test name: workload, faults, and the read consistency when it is
/// not the default (`kv-all`, `register-partition-stale`).
pub fn test_name(args: &RunArgs) -> String {
    let nemesis = match args.nemesis.0.as_slice() {
        [] => "none".to_string(),
        kinds if kinds.len() == crate::cli::FAULT_KINDS.len() => "all".to_string(),
        kinds => kinds.join("+"),
    };
    let mut name = format!("{}-{nemesis}", args.workload.name());
    if args.read_consistency != ReadConsistency::Linearizable {
        name.push('-');
        name.push_str(args.read_consistency.name());
    }
    name
}

/// What one run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// The run folder.
    pub dir: PathBuf,
    /// The exit code of the run.
    pub exit_code: i32,
    /// The checker verdict (`true`, `false`, `"unknown"`, or null when not checked).
    pub valid: Value,
    /// A harness failure, if any.
    pub error: Option<String>,
    /// The stats of the recorded history.
    pub stats: Option<Stats>,
    /// Whether the run was interrupted by Ctrl-C.
    pub interrupted: bool,
}

/// Knobs for callers other than `harness run` (the benchmark).
#[derive(Debug, Clone, Copy)]
pub struct RunMode {
    /// Run the checkers.
    pub check: bool,
    /// Render the report.
    pub report: bool,
    /// Print the configuration and the summary.
    pub verbose: bool,
}

impl Default for RunMode {
    fn default() -> Self {
        RunMode {
            check: true,
            report: true,
            verbose: true,
        }
    }
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
    args: &RunArgs,
    argv: Vec<String>,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> i32 {
    let seed = args.seed.unwrap_or_else(random_seed);
    let mut codes = Vec::new();
    for i in 0..args.test_count {
        if *stop.borrow() {
            break;
        }
        let outcome = run_once(
            args,
            seed.wrapping_add(i),
            i as usize + 1,
            argv.clone(),
            RunMode::default(),
            out,
            stop.clone(),
        )
        .await;
        codes.push(outcome.exit_code);
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

/// Everything decided before the run starts.
struct Plan {
    test: TestConfig,
    workload: WorkloadConfig,
    node: NodeCommand,
    kinds: std::collections::BTreeSet<FaultKind>,
}

fn plan(args: &RunArgs, seed: u64, test_index: usize, argv: Vec<String>) -> Result<Plan, RunError> {
    args.validate().map_err(RunError::Config)?;
    let node = node_command(args.node_bin.as_deref())?;
    let mut workload = WorkloadConfig::new(args.workload, seed);
    workload.key_count = args.key_count as usize;
    workload.key_dist = args.key_dist;
    if let Some(mix) = args.mix {
        workload.mix = mix;
    }
    workload
        .validate()
        .map_err(|e| RunError::Config(e.to_string()))?;
    let kinds = if args.nemesis.0.is_empty() {
        Default::default()
    } else {
        FaultKind::parse_list(&args.nemesis.0.join(",")).map_err(RunError::Config)?
    };
    let test = TestConfig {
        name: test_name(args),
        start_unix_ns: 0,
        seed,
        nodes: args.nodes as usize,
        time_limit_s: args.time_limit,
        concurrency: args.concurrency(),
        rate: args.rate,
        workload: args.workload.name().to_string(),
        keys: workload.keys(),
        key_dist: workload.key_dist.name(),
        mix: workload.mix.to_string(),
        nemesis: args.nemesis.0.clone(),
        nemesis_interval_s: args.nemesis_interval,
        nemesis_targets: args.nemesis_targets.clone(),
        read_consistency: args.read_consistency.name().to_string(),
        pre_vote: !args.no_pre_vote,
        check_quorum: !args.no_check_quorum,
        proxy: !args.no_proxy,
        op_timeout_ms: args.op_timeout_ms,
        follow_leader: args.follow_leader,
        node_bin: args
            .node_bin
            .as_ref()
            .map(|_| node.program.display().to_string()),
        argv,
        test_index,
    };
    Ok(Plan {
        test,
        workload,
        node,
        kinds,
    })
}

fn print_config(out: &mut dyn Write, t: &TestConfig, node: &NodeCommand, dir: &Path) {
    let rate = t
        .rate
        .map(|r| format!("{r} ops/s"))
        .unwrap_or_else(|| "unlimited".into());
    let nemesis = if t.nemesis.is_empty() {
        "none".to_string()
    } else {
        let targets = if t.nemesis_targets == "one" {
            String::new()
        } else {
            format!(", aimed at {}", t.nemesis_targets)
        };
        format!(
            "{} every ~{}s{targets}",
            t.nemesis.join(","),
            t.nemesis_interval_s
        )
    };
    let _ = writeln!(out, "seed {}  (replay with --seed {})", t.seed, t.seed);
    let rows = [
        ("test", t.name.clone()),
        ("nodes", format!("{}  ({})", t.nodes, node.display())),
        ("time limit", format!("{}s", t.time_limit_s)),
        ("concurrency", t.concurrency.to_string()),
        ("rate", rate),
        (
            "workload",
            format!(
                "{}  keys {}  dist {}  mix {}",
                t.workload,
                t.keys.len(),
                t.key_dist,
                t.mix
            ),
        ),
        ("nemesis", nemesis),
        ("reads", t.read_consistency.clone()),
        (
            "raft",
            format!(
                "pre-vote {}  check-quorum {}  proxies {}",
                on_off(t.pre_vote),
                on_off(t.check_quorum),
                on_off(t.proxy)
            ),
        ),
        ("op timeout", format!("{} ms", t.op_timeout_ms)),
        ("results", dir.display().to_string()),
    ];
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<12} {v}");
    }
    let _ = out.flush();
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

/// One run; never panics on a harness failure, which ends as exit 3 with
/// the error in `results.json`.
pub async fn run_once(
    args: &RunArgs,
    seed: u64,
    test_index: usize,
    argv: Vec<String>,
    mode: RunMode,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> RunOutcome {
    let plan = match plan(args, seed, test_index, argv) {
        Ok(p) => p,
        Err(e) => return fail_before_run_dir(out, &e),
    };
    let dir = match RunDir::create(&args.results_dir, &plan.test.name) {
        Ok(d) => d,
        Err(e) => return fail_before_run_dir(out, &e),
    };
    let recorder = match Recorder::create(&dir.history()) {
        Ok(r) => r,
        Err(e) => return fail_early(out, &dir, e.into()),
    };
    let mut test = plan.test.clone();
    test.start_unix_ns = recorder.start_unix_ns();
    if mode.verbose {
        print_config(out, &test, &plan.node, &dir.path);
    }
    if let Err(e) = dir.write_test(&test) {
        return fail_early(out, &dir, e.into());
    }

    let drive = drive(args, &plan, &dir, &recorder, mode, out, stop.clone()).await;
    let interrupted = *stop.borrow();
    let error = drive.err().map(|e| e.to_string());
    if let Some(e) = &error {
        let _ = writeln!(out, "error: {e}");
    }
    if let Err(e) = recorder.sync() {
        tracing::warn!(error = %e, "could not sync the history");
    }
    finish(out, &dir, &plan, mode, error, interrupted).await
}

/// A run that failed before it had a folder: nothing to record or check.
fn fail_before_run_dir(out: &mut (dyn Write + Send), e: &dyn std::fmt::Display) -> RunOutcome {
    let _ = writeln!(out, "error: {e}");
    RunOutcome {
        dir: PathBuf::new(),
        exit_code: EXIT_ERROR,
        valid: Value::Null,
        error: Some(e.to_string()),
        stats: None,
        interrupted: false,
    }
}

fn fail_early(out: &mut dyn Write, dir: &RunDir, e: RunError) -> RunOutcome {
    let _ = writeln!(out, "error: {e}");
    let _ = dir.write_results(&json!({"valid": null, "error": e.to_string()}));
    RunOutcome {
        dir: dir.path.clone(),
        exit_code: EXIT_ERROR,
        valid: Value::Null,
        error: Some(e.to_string()),
        stats: None,
        interrupted: false,
    }
}

/// Cluster, traffic, nemesis, end-of-run; the cluster is shut down on every
/// path out of here.
async fn drive(
    args: &RunArgs,
    plan: &Plan,
    dir: &RunDir,
    recorder: &Recorder,
    mode: RunMode,
    out: &mut (dyn Write + Send),
    mut stop: watch::Receiver<bool>,
) -> Result<(), RunError> {
    let mut cfg = ClusterConfig::new(plan.node.program.clone(), dir.path.clone(), plan.test.nodes);
    cfg.program_args = plan.node.args.clone();
    cfg.proxies = !args.no_proxy;
    cfg.seed = plan.test.seed;
    cfg.election_timeout_ms = args.election_timeout_ms;
    cfg.heartbeat_ms = args.heartbeat_ms;
    if args.no_pre_vote {
        cfg.extra_args.push("--no-pre-vote".into());
    }
    if args.no_check_quorum {
        cfg.extra_args.push("--no-check-quorum".into());
    }
    let cluster = Arc::new(NodeCluster::launch(cfg).await?);
    let result = drive_cluster(
        args, plan, &dir.path, recorder, &cluster, mode, out, &mut stop,
    )
    .await;
    cluster.shutdown().await;
    result
}

#[allow(clippy::too_many_arguments)]
async fn drive_cluster(
    args: &RunArgs,
    plan: &Plan,
    plan_dir: &Path,
    recorder: &Recorder,
    cluster: &Arc<NodeCluster>,
    mode: RunMode,
    out: &mut (dyn Write + Send),
    stop: &mut watch::Receiver<bool>,
) -> Result<(), RunError> {
    let sut: Arc<dyn SystemUnderTest> = cluster.clone();
    let first = tokio::select! {
        l = wait_for_leader(&*sut, Instant::now() + STARTUP_TIMEOUT) => l.map_err(|e| {
            RunError::Failed(format!(
                "the cluster did not elect a first leader (see {}/nodes/n*/node.log): {e}",
                plan_dir.display()
            ))
        })?,
        dead = all_nodes_exited(cluster) => {
            return Err(RunError::Failed(format!(
                "every node exited right after it started ({dead}); see {}/nodes/n*/node.log",
                plan_dir.display()
            )));
        }
        _ = stop.wait_for(|s| *s) => return Ok(()),
    };
    tracing::info!(leader = first.leader, term = first.term, "cluster is up");

    let addrs = sut
        .node_ids()
        .into_iter()
        .filter_map(|id| sut.client_addr(id).map(|a| (id, a)))
        .collect();
    let client = Client::new(
        addrs,
        Duration::from_millis(args.op_timeout_ms),
        args.read_consistency,
    )?;
    let ids = ProcessIds::starting_at(plan.test.concurrency as u64);

    // Leader probe for the progress line.
    let leader: LeaderCell = Arc::new(Mutex::new(Some((first.leader, first.term))));
    let prober = {
        let sut = sut.clone();
        let leader = leader.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let p = probe_leader(&*sut).await;
                *leader.lock().unwrap_or_else(|e| e.into_inner()) =
                    p.leader.map(|l| (l.leader, l.term));
            }
        })
    };

    // The nemesis, in its own task, stopped by `nemesis_stop`.
    let (nemesis_stop_tx, mut nemesis_stop_rx) = watch::channel(false);
    let mut active_faults = None;
    let nemesis_task = if plan.kinds.is_empty() {
        None
    } else {
        let mut schedule = ScheduleConfig::new(
            sut.node_ids(),
            &plan.kinds,
            Duration::from_secs_f64(args.nemesis_interval),
        );
        schedule.target_primaries = plan.test.nemesis_targets == "primaries";
        let sink_recorder = recorder.clone();
        let sink = Arc::new(move |ev: NemesisEvent| {
            if let Err(e) = sink_recorder.nemesis(ev.f, ev.value) {
                tracing::error!(error = %e, "cannot record a nemesis event");
            }
        });
        let mut nemesis =
            Nemesis::new(schedule, plan.test.seed, sut.clone(), cluster.mesh(), sink)?;
        active_faults = Some(nemesis.active_faults());
        Some(tokio::spawn(async move {
            nemesis
                .run_until(async move {
                    let _ = nemesis_stop_rx.wait_for(|s| *s).await;
                })
                .await;
            nemesis.heal_all().await;
        }))
    };

    let limit = Duration::from_secs_f64(args.time_limit);
    let progress = mode.verbose.then(|| {
        let faults = active_faults.clone();
        let rec = recorder.clone();
        Progress::start(
            limit,
            leader.clone(),
            Box::new(move || match &faults {
                Some(f) => f.get(),
                None => Vec::new(),
            }),
            Box::new(move || rec.counts()),
        )
    });
    let traffic = TrafficConfig {
        workload: plan.workload.clone(),
        concurrency: plan.test.concurrency,
        rate: plan.test.rate,
        nodes: sut.node_ids(),
        follow_leader: plan.test.follow_leader,
        deadline: Instant::now() + limit,
    };
    let traffic_result = run_traffic(
        traffic,
        client.clone(),
        recorder.clone(),
        ids.clone(),
        stop.clone(),
    )
    .await;
    if let Some(p) = progress {
        p.finish();
    }
    let _ = nemesis_stop_tx.send(true);
    if let Some(t) = nemesis_task {
        if let Err(e) = t.await {
            prober.abort();
            return Err(RunError::Failed(format!("the nemesis task failed: {e}")));
        }
    }
    prober.abort();
    traffic_result?;
    if *stop.borrow() {
        if mode.verbose {
            let _ = writeln!(
                out,
                "interrupted: stopping the nodes and checking what was recorded"
            );
        }
        return Ok(());
    }

    // Recovery: a leader within the deadline, then the final reads.
    let deadline = Instant::now() + Duration::from_secs_f64(args.recovery_timeout);
    let recovered = tokio::select! {
        l = wait_for_leader(&*sut, deadline) => l,
        _ = stop.wait_for(|s| *s) => return Ok(()),
    };
    let leader = recovered.map_err(|e| {
        RunError::Failed(format!(
            "the cluster did not recover within {}s after the faults were healed: {e}",
            args.recovery_timeout
        ))
    })?;
    let keys = plan.workload.keys();
    let missing = tokio::select! {
        m = final_reads(&client, recorder, &ids, &keys, leader.leader, deadline) => m?,
        _ = stop.wait_for(|s| *s) => return Ok(()),
    };
    if !missing.is_empty() {
        return Err(RunError::Failed(format!(
            "final linearizable reads did not succeed before the recovery deadline for keys {}",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Resolves once no node process is alive (a node program that cannot
/// run at all), with each node's exit status, so that the run fails at once
/// instead of waiting for a leader that cannot come.
async fn all_nodes_exited(cluster: &NodeCluster) -> String {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ids = cluster.node_ids();
        let sup = cluster.supervisor();
        if ids
            .iter()
            .all(|&id| cluster.state(id) == Some(ProcessState::Stopped))
        {
            return ids
                .iter()
                .map(|&id| match sup.last_exit(id) {
                    Some(st) => format!("n{id}: {st}"),
                    None => format!("n{id}: not running"),
                })
                .collect::<Vec<_>>()
                .join(", ");
        }
    }
}

/// One linearizable read of every key through the leader, retried until it
/// succeeds or the deadline passes; every attempt is in the history. Returns
/// the keys that could not be read.
async fn final_reads(
    client: &Client,
    recorder: &Recorder,
    ids: &ProcessIds,
    keys: &[String],
    leader: u64,
    deadline: Instant,
) -> Result<Vec<String>, RunError> {
    let mut missing = Vec::new();
    let nodes = client.node_ids();
    for key in keys {
        let mut node = leader;
        let mut attempt = 0usize;
        loop {
            let op = workloads::Op::Read { key: key.clone() };
            let final_client = client.with_consistency(ReadConsistency::Linearizable);
            let c = perform(&final_client, recorder, ids.fresh(), &op, node).await?;
            if c.kind == EventType::Ok {
                break;
            }
            if Instant::now() >= deadline {
                missing.push(key.clone());
                break;
            }
            attempt += 1;
            node = nodes[attempt % nodes.len()];
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(missing)
}

/// Checks, stats, results.json, report, summary, exit code.
async fn finish(
    out: &mut (dyn Write + Send),
    dir: &RunDir,
    plan: &Plan,
    mode: RunMode,
    error: Option<String>,
    interrupted: bool,
) -> RunOutcome {
    let stats = stats::compute_file(&dir.history());
    let mut error = error;
    if let Err(e) = &stats {
        error.get_or_insert_with(|| format!("cannot read back the history: {e}"));
    }
    let stats = stats.ok();
    let mut results = json!({"valid": null});
    let mut verdict_code = None;
    if mode.check {
        let path = dir.path.clone();
        let model = plan.workload.kind.checker_model().parse().ok();
        let checked = tokio::task::spawn_blocking(move || {
            let opts = checker::CheckOptions {
                model,
                ..Default::default()
            };
            checker::check_path(&path, &opts).map(|r| {
                let code = r.exit_code();
                (serde_json::to_value(&r), code)
            })
        })
        .await;
        match checked {
            Ok(Ok((Ok(v), code))) => {
                results = v;
                verdict_code = Some(code);
            }
            Ok(Ok((Err(e), _))) => {
                error.get_or_insert_with(|| format!("cannot encode the check report: {e}"));
            }
            Ok(Err(e)) => {
                error.get_or_insert_with(|| format!("checker: {e}"));
            }
            Err(e) => {
                error.get_or_insert_with(|| format!("checker crashed: {e}"));
            }
        }
    }
    if !results.is_object() {
        results = json!({"valid": null});
    }
    results["stats"] = serde_json::to_value(&stats).unwrap_or(Value::Null);
    results["error"] = json!(error);
    if error.is_some() {
        // A harness failure is never a verdict: the checkers' findings on
        // what was recorded stay under "checkers" and "recorded_valid".
        results["recorded_valid"] = results["valid"].take();
    }
    results["interrupted"] = json!(interrupted);
    let exit_code = match (&error, verdict_code) {
        (Some(_), _) => EXIT_ERROR,
        (None, Some(c)) => c,
        (None, None) => EXIT_VALID,
    };
    results["exit_code"] = json!(exit_code);
    if let Err(e) = dir.write_results(&results) {
        let _ = writeln!(out, "error: {e}");
    }
    if mode.report {
        render_reports(out, &dir.path);
    }
    let valid = results.get("valid").cloned().unwrap_or(Value::Null);
    if mode.verbose {
        print_summary(out, &results, stats.as_ref(), dir, exit_code);
    }
    RunOutcome {
        dir: dir.path.clone(),
        exit_code,
        valid,
        error,
        stats,
        interrupted,
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

/// `harness report RUN_DIR|RESULTS_DIR`: re-renders a run's report (and the
/// index of its results folder), or the index of a results folder.
pub fn report_command(path: &Path, out: &mut dyn Write) -> i32 {
    if !path.is_dir() {
        let _ = writeln!(out, "error: {} is not a folder", path.display());
        return EXIT_ERROR;
    }
    let is_run = ["test.json", "history.jsonl", "results.json"]
        .iter()
        .any(|f| path.join(f).exists());
    if is_run {
        match crate::report::render_run(path) {
            Ok(p) => {
                let _ = writeln!(out, "{}", p.display());
            }
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
                return EXIT_ERROR;
            }
        }
        if let Some(results) = crate::report::results_dir_of(path) {
            if let Ok(p) = crate::report::render_index(&results) {
                let _ = writeln!(out, "{}", p.display());
            }
        }
        EXIT_VALID
    } else {
        match crate::report::render_index(path) {
            Ok(p) => {
                let _ = writeln!(out, "{}", p.display());
                EXIT_VALID
            }
            Err(e) => {
                let _ = writeln!(out, "error: {e}");
                EXIT_ERROR
            }
        }
    }
}

fn print_summary(
    out: &mut dyn Write,
    results: &Value,
    stats: Option<&Stats>,
    dir: &RunDir,
    exit_code: i32,
) {
    if let Some(s) = stats.filter(|s| !s.by_f.is_empty()) {
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
    let ops = stats.map(|s| s.by_f.values().map(|o| o.total()).sum::<u64>());
    let failed = !results.get("error").is_none_or(Value::is_null);
    if failed && ops.unwrap_or(0) > 0 {
        let _ = writeln!(
            out,
            "checks of what was recorded (no verdict, see the error):"
        );
    }
    if let Some(checkers) = results
        .get("checkers")
        .and_then(Value::as_object)
        .filter(|_| !failed || ops.unwrap_or(0) > 0)
    {
        for (name, r) in checkers {
            if r.is_null() {
                continue;
            }
            let _ = writeln!(out, "{name}: {}", verdict_text(r.get("valid")));
        }
    }
    if let Some(cx) = results.get("counterexample").filter(|c| !c.is_null()) {
        if let Some(expl) = cx.get("explanation").and_then(Value::as_str) {
            let _ = writeln!(out, "counterexample: {expl}");
        }
    }
    if let Some(e) = results.get("error").and_then(Value::as_str) {
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

fn verdict_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Bool(true)) => "valid".into(),
        Some(Value::Bool(false)) => "INVALID".into(),
        Some(Value::String(s)) => s.clone(),
        _ => "not checked".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn run_args(args: &[&str]) -> RunArgs {
        match Cli::try_parse_from(["harness", "run"].iter().chain(args))
            .unwrap()
            .command
        {
            Command::Run(a) => a,
            _ => unreachable!(),
        }
    }

    #[test]
    fn test_names_say_workload_faults_and_weak_reads() {
        assert_eq!(test_name(&run_args(&[])), "kv-all");
        assert_eq!(
            test_name(&run_args(&["--nemesis", "none", "-w", "register"])),
            "register-none"
        );
        assert_eq!(
            test_name(&run_args(&[
                "--nemesis",
                "partition,kill",
                "--read-consistency",
                "stale"
            ])),
            "kv-partition+kill-stale"
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
    fn the_plan_carries_the_whole_configuration_into_test_json() {
        let args = run_args(&[
            "--nodes",
            "3",
            "--rate",
            "50",
            "-w",
            "append",
            "--key-count",
            "4",
        ]);
        let p = plan(&args, 99, 1, vec!["harness".into()]).unwrap();
        assert_eq!(p.test.seed, 99);
        assert_eq!(p.test.concurrency, 6);
        assert_eq!(p.test.rate, Some(50.0));
        assert_eq!(p.test.keys, vec!["k0", "k1", "k2", "k3"]);
        assert_eq!(p.test.nemesis, vec!["kill", "pause", "partition", "member"]);
        assert_eq!(p.kinds.len(), 4);
        assert!(
            p.test.node_bin.is_none(),
            "the default node command is not a --node-bin"
        );
        assert_eq!(p.node, default_node_command().unwrap());
    }
}
