//! End-to-end runs of the real `harness` binary against real node processes
//! on 127.0.0.1 (ports picked by binding port 0).
//!
//! The node program is `$NODE_BIN` if set, else the default of `harness
//! run`: the harness under test re-executed as `harness node`. The runs are serialized: each one is a
//! whole cluster and the machine may have few cores.

mod common;

use common::ChildGuard;
use formats::trace::{Role, TraceEvent, TraceKind};
use harness::cluster::NodeId;
use harness::nemesis::{FaultKinds, Schedule, ScheduleConfig};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static ONE_CLUSTER_AT_A_TIME: Mutex<()> = Mutex::new(());

fn harness_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_harness"))
}

/// `--node-bin` for the runs: `$NODE_BIN` if set; else none, so the runs
/// use their default node, this harness re-executed as `harness node`.
fn node_bin_args() -> Vec<std::ffi::OsString> {
    match std::env::var_os("NODE_BIN") {
        Some(p) => vec!["--node-bin".into(), p],
        None => Vec::new(),
    }
}

/// Starts `harness run`; its stdout and stderr go to files in `results`
/// (a pipe nobody reads could fill up and block the harness).
fn spawn_run(results: &Path, args: &[&str]) -> ChildGuard {
    std::fs::create_dir_all(results).unwrap();
    let stdout = std::fs::File::create(results.join("stdout.txt")).unwrap();
    let stderr = std::fs::File::create(results.join("stderr.txt")).unwrap();
    let child = Command::new(harness_bin())
        .arg("run")
        .args(node_bin_args())
        .arg("--results-dir")
        .arg(results)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("spawn harness");
    ChildGuard(Some(child))
}

/// Runs to completion; returns (exit code, stdout, the run folder).
fn run(results: &Path, args: &[&str], limit: Duration) -> (i32, String, PathBuf) {
    let mut g = spawn_run(results, args);
    let code = g
        .wait_timeout(limit)
        .code()
        .expect("harness exited normally");
    let out = std::fs::read_to_string(results.join("stdout.txt")).unwrap();
    (code, out, only_run_dir(results))
}

fn only_run_dir(results: &Path) -> PathBuf {
    let mut dirs = Vec::new();
    for test in std::fs::read_dir(results).unwrap().flatten() {
        if !test.path().is_dir() {
            continue;
        }
        for run in std::fs::read_dir(test.path()).unwrap().flatten() {
            let p = run.path();
            if p.is_dir() && !p.is_symlink() {
                dirs.push(p);
            }
        }
    }
    assert_eq!(dirs.len(), 1, "expected one run folder, found {dirs:?}");
    dirs.pop().unwrap()
}

fn results_json(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("results.json")).expect("results.json");
    serde_json::from_str(&text).unwrap()
}

/// The history as `formats` reads it, each event in its JSON form.
fn history(dir: &Path) -> Vec<Value> {
    formats::history::Reader::open(&dir.join("history.jsonl"))
        .unwrap()
        .map(|e| serde_json::to_value(e.unwrap().event).unwrap())
        .collect()
}

/// Processes whose command line mentions `needle` (our nodes name their
/// data dir, which is inside the run folder).
fn processes_mentioning(needle: &str) -> Vec<(i32, String)> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(needle) && pid != std::process::id() as i32 {
            found.push((pid, cmd));
        }
    }
    found
}

/// The first seed whose fault schedule (the same pure schedule the run
/// uses) reaches every fault kind well within `within`.
fn seed_with_every_fault(nodes: u64, interval: Duration, within: Duration) -> u64 {
    let ids: Vec<NodeId> = (1..=nodes).collect();
    let kinds = FaultKinds::all();
    (0..10_000u64)
        .find(|&seed| {
            let mut s = Schedule::new(ScheduleConfig::new(ids.clone(), &kinds, interval), seed);
            let mut t = Duration::ZERO;
            let mut seen = BTreeSet::new();
            while let Some(step) = s.next_step() {
                t += step.delay;
                if t > within {
                    break;
                }
                seen.insert(step.action.f());
            }
            ["kill", "pause", "start-partition", "remove-member"]
                .iter()
                .all(|f| seen.contains(f))
        })
        .expect("some seed schedules every fault kind")
}

#[test]
fn run_with_every_nemesis_is_valid_and_records_every_fault_kind() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let results = tempfile::tempdir().unwrap();
    let interval = Duration::from_millis(700);
    // Leave a margin: faults planned in the last seconds may not happen
    // before the time limit.
    let seed = seed_with_every_fault(5, interval, Duration::from_secs(7));
    let (code, out, dir) = run(
        results.path(),
        &[
            "--nodes",
            "5",
            "--time-limit",
            "10",
            "--nemesis",
            "all",
            "--nemesis-interval",
            "0.7",
            "--seed",
            &seed.to_string(),
        ],
        Duration::from_secs(120),
    );
    let r = results_json(&dir);
    assert_eq!(code, 0, "seed {seed}: {out}\nresults.json: {r:#}");
    assert!(
        out.starts_with(&format!("seed {seed}")),
        "the seed is printed first: {out}"
    );
    assert!(out.contains("VALID"), "{out}");
    assert_eq!(r["valid"], Value::Bool(true));
    assert!(r["error"].is_null());
    let h = history(&dir);
    let faults: BTreeSet<String> = h
        .iter()
        .filter(|e| e["process"] == "nemesis" && e["value"].get("error").is_none())
        .map(|e| e["f"].as_str().unwrap().to_string())
        .collect();
    for f in [
        "kill",
        "start",
        "pause",
        "resume",
        "start-partition",
        "stop-partition",
        "remove-member",
        "add-member",
    ] {
        assert!(
            faults.contains(f),
            "seed {seed}: no successful {f} in {faults:?}"
        );
    }
    // Every key got its final linearizable read.
    let test: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("test.json")).unwrap()).unwrap();
    assert_eq!(test["seed"], seed);
    let last_fault = h.iter().rposition(|e| e["process"] == "nemesis").unwrap();
    let last_oks: BTreeSet<&str> = h[last_fault..]
        .iter()
        .filter(|e| e["type"] == "ok" && e["f"] == "read")
        .filter_map(|e| e["key"].as_str())
        .collect();
    for k in test["keys"].as_array().unwrap() {
        assert!(
            last_oks.contains(k.as_str().unwrap()),
            "no final read of {k}"
        );
    }
    assert!(dir.join("report.html").exists());
    assert!(processes_mentioning(dir.to_str().unwrap()).is_empty());
}

#[test]
fn stale_reads_under_partitions_are_caught_as_not_linearizable() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // One register, many clients on every node, reads answered by whatever
    // node the client is bound to: an isolated (or merely lagging) node
    // keeps answering an old value after a newer write completed.
    let results = tempfile::tempdir().unwrap();
    let (code, _, dir) = run(
        results.path(),
        &[
            "--nodes",
            "5",
            "--time-limit",
            "6",
            "-w",
            "register",
            "--read-consistency",
            "stale",
            "--nemesis",
            "partition",
            "--nemesis-interval",
            "0.5",
            "--seed",
            "3",
        ],
        Duration::from_secs(120),
    );
    let r = results_json(&dir);
    assert_eq!(code, 1, "results.json: {r:#}");
    assert_eq!(r["valid"], Value::Bool(false));
    assert_eq!(
        r["checkers"]["linearizability"]["valid"],
        Value::Bool(false)
    );
    assert!(!r["counterexample"].is_null());
    // Raft itself stayed safe: only the reads were allowed to be stale.
    assert_eq!(r["checkers"]["raft_safety"]["valid"], Value::Bool(true));
}

#[test]
fn ctrl_c_mid_run_leaves_no_process_and_a_checkable_partial_history() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let results = tempfile::tempdir().unwrap();
    let mut g = spawn_run(
        results.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "60",
            "--nemesis",
            "kill,pause,partition",
            "--nemesis-interval",
            "0.4",
            "--seed",
            "11",
        ],
    );
    // Wait until traffic and faults are under way.
    let started = Instant::now();
    let dir = wait_until_busy(results.path(), started);
    assert!(
        !processes_mentioning(dir.to_str().unwrap()).is_empty(),
        "nodes should be running"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(g.pid()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let st = g.wait_timeout(Duration::from_secs(60));
    let code = st.code().expect("exited, not killed");
    assert!((0..=2).contains(&code), "a verdict, got exit {code}");
    assert!(
        started.elapsed() < Duration::from_secs(55),
        "the run ended by Ctrl-C, not its time limit"
    );
    let left = processes_mentioning(dir.to_str().unwrap());
    assert!(left.is_empty(), "orphans: {left:?}");
    let r = results_json(&dir);
    assert_eq!(r["interrupted"], Value::Bool(true));
    assert_eq!(r["exit_code"], code);
    // Nothing stays paused or partitioned in the record: the nemesis healed.
    let h = history(&dir);
    assert!(h.len() > 200);
    let check = Command::new(harness_bin())
        .arg("check")
        .arg(&dir)
        .arg("--json")
        .output()
        .unwrap();
    let out: Value = serde_json::from_slice(&check.stdout).unwrap_or_else(|e| {
        panic!(
            "harness check output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        )
    });
    assert_eq!(
        check.status.code(),
        Some(code),
        "check agrees with the run: {out:#}"
    );
    assert!(out["ops"].as_u64().unwrap() > 50);
}

#[test]
fn the_same_seed_replays_the_same_ops_and_the_same_faults() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let args = [
        "--nodes",
        "3",
        "--time-limit",
        "4",
        "--nemesis",
        "kill,pause",
        "--nemesis-interval",
        "0.4",
        "--seed",
        "424242",
        "--no-check",
    ];
    let runs: Vec<Vec<Value>> = (0..2)
        .map(|_| {
            let results = tempfile::tempdir().unwrap();
            let (code, out, dir) = run(results.path(), &args, Duration::from_secs(60));
            assert_eq!(code, 0, "{out}");
            history(&dir)
        })
        .collect();
    // Worker 0's ops as process 0 (what it asks, not what it observes: the
    // `from` of a cas follows the values it read).
    let ops = |h: &[Value]| -> Vec<(String, String, Value)> {
        h.iter()
            .filter(|e| e["process"] == 0 && e["type"] == "invoke")
            .map(|e| {
                let v = if e["f"] == "cas" {
                    e["value"][1].clone()
                } else {
                    e["value"].clone()
                };
                (e["f"].to_string(), e["key"].to_string(), v)
            })
            .collect()
    };
    let (a, b) = (ops(&runs[0]), ops(&runs[1]));
    let n = a.len().min(b.len());
    assert!(n > 20, "too few ops to compare: {n}");
    assert_eq!(a[..n], b[..n]);
    // The fault schedule: the same faults on the same nodes, in order (the
    // final heal-all may cut either run's schedule at a different step).
    let faults = |h: &[Value]| -> Vec<(String, Value)> {
        h.iter()
            .filter(|e| e["process"] == "nemesis")
            .map(|e| (e["f"].to_string(), e["value"]["node"].clone()))
            .collect()
    };
    let (fa, fb) = (faults(&runs[0]), faults(&runs[1]));
    assert!(fa.len() >= 4 && fb.len() >= 4, "{fa:?} {fb:?}");
    assert_eq!(fa[..3], fb[..3]);
}

/// Waits until the run under `results` has traffic and at least one fault
/// in its history; returns the run folder.
fn wait_until_busy(results: &Path, started: Instant) -> PathBuf {
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(200));
        let Ok(test_dirs) = std::fs::read_dir(results) else {
            continue;
        };
        let Some(dir) = test_dirs
            .flatten()
            .map(|t| t.path().join("latest"))
            .find(|l| l.exists())
        else {
            continue;
        };
        let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap_or_default();
        if text.lines().count() > 200 && text.contains("\"nemesis\"") {
            return std::fs::canonicalize(dir).unwrap();
        }
    }
}

#[test]
fn a_harness_killed_with_sigkill_leaves_no_node_behind() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let results = tempfile::tempdir().unwrap();
    let mut g = spawn_run(
        results.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "60",
            "--nemesis",
            "pause,kill",
            "--nemesis-interval",
            "0.3",
            "--seed",
            "5",
        ],
    );
    let dir = wait_until_busy(results.path(), Instant::now());
    assert!(!processes_mentioning(dir.to_str().unwrap()).is_empty());
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(g.pid()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = g.wait_timeout(Duration::from_secs(10));
    // The parent-death signal reaches the nodes (paused ones included) at
    // once; give the kernel a moment to reap them.
    let started = Instant::now();
    loop {
        let left = processes_mentioning(dir.to_str().unwrap());
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "orphans: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // What was recorded up to the kill is still a readable history.
    let check = Command::new(harness_bin())
        .arg("check")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        (0..=2).contains(&check.status.code().unwrap()),
        "{}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn primaries_targeting_aims_kills_pauses_and_partitions_at_the_leader() {
    let _one = ONE_CLUSTER_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let results = tempfile::tempdir().unwrap();
    let (code, _, dir) = run(
        results.path(),
        &[
            "--nodes",
            "3",
            "--time-limit",
            "6",
            "-w",
            "register",
            "--nemesis",
            "kill,pause,partition",
            "--nemesis-targets",
            "primaries",
            "--nemesis-interval",
            "0.4",
            "--seed",
            "11",
        ],
        Duration::from_secs(120),
    );
    let r = results_json(&dir);
    assert_eq!(code, 0, "results.json: {r:#}");
    let test: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("test.json")).unwrap()).unwrap();
    assert_eq!(test["nemesis_targets"], "primaries");
    let start = test["start_unix_ns"].as_u64().unwrap();

    // Each node's role changes, from its own trace: (unix ns, role).
    let roles = |node: u64| -> Vec<(u64, Role)> {
        let path = dir.join(format!("nodes/n{node}/trace.jsonl"));
        formats::trace::Reader::open(&path)
            .unwrap()
            .filter_map(|e| match e.unwrap().event {
                TraceEvent {
                    time,
                    kind: TraceKind::Role { role, .. },
                    ..
                } => Some((time, role)),
                _ => None,
            })
            .collect()
    };
    let was_leader = |node: u64, at: u64| {
        roles(node)
            .into_iter()
            .rfind(|(t, _)| *t <= at)
            .is_some_and(|(_, role)| role == Role::Leader)
    };
    let faults: Vec<Value> = history(&dir)
        .into_iter()
        .filter(|e| {
            e["process"] == "nemesis"
                && ["kill", "pause", "start-partition"].contains(&e["f"].as_str().unwrap())
        })
        .collect();
    let aimed: Vec<&Value> = faults
        .iter()
        .filter(|e| e["value"]["primary"] == true)
        .collect();
    let aimed_kinds: BTreeSet<&str> = aimed.iter().map(|e| e["f"].as_str().unwrap()).collect();
    assert!(
        aimed_kinds.len() >= 2 && aimed.len() * 2 >= faults.len(),
        "too few faults aimed at the leader: {aimed:?} of {faults:?}"
    );
    // The node each of them hit was the leader, by its own account: the
    // last role it reported before the fault.
    for e in aimed {
        let at = start + e["time"].as_u64().unwrap();
        let v = &e["value"];
        if e["f"] == "start-partition" {
            // The leader is in the smallest group (the bridge of `bridge`).
            let groups: Vec<Vec<u64>> = serde_json::from_value(v["groups"].clone()).unwrap();
            let spot: Vec<u64> = if v["shape"] == "bridge" {
                groups[0]
                    .iter()
                    .copied()
                    .filter(|n| groups.iter().all(|g| g.contains(n)))
                    .collect()
            } else {
                groups.iter().min_by_key(|g| g.len()).unwrap().clone()
            };
            assert!(spot.iter().any(|&n| was_leader(n, at)), "{e}");
        } else {
            assert!(was_leader(v["node"].as_u64().unwrap(), at), "{e}");
        }
    }
}
