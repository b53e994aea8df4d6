//! `harness run --system maelstrom` end to end, through the binary, with real
//! processes: our node in `--maelstrom` mode stays valid under partitions,
//! pauses and message faults (and, persistent, under kills); a deliberately
//! broken node is caught every time, and so are two leaders in a term and a
//! double vote seen on the wire; `kill` of an in-memory node is refused before anything starts; a node
//! that answers nonsense gets a clear error and loses no history.
//!
//! The Python test nodes need `python3` (CI installs it).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::ChildGuard;
use serde_json::Value;

/// Runs share two cores: one cluster at a time keeps their timing sane.
static ONE_RUN_AT_A_TIME: Mutex<()> = Mutex::new(());

fn python3() {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "python3 is required by the Maelstrom tests (the test nodes are Python scripts); install it"
    );
}

/// `--node-bin` for a test node script, with its arguments.
fn script_bin(name: &str, args: &[&str]) -> String {
    python3();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/maelstrom")
        .join(name);
    let path = path.to_str().unwrap();
    let words = ["python3", path].into_iter().chain(args.iter().copied());
    shlex::try_join(words).unwrap()
}

struct Run {
    code: i32,
    stdout: String,
    /// The run folders, in the order of their seeds.
    dirs: Vec<PathBuf>,
    _results: tempfile::TempDir,
}

impl Run {
    fn dir(&self) -> &Path {
        assert_eq!(self.dirs.len(), 1, "{:?}", self.dirs);
        &self.dirs[0]
    }
}

/// `harness run --system maelstrom ARGS`, to completion.
fn run(args: &[&str], limit: Duration) -> Run {
    let _one = ONE_RUN_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let results = tempfile::tempdir().unwrap();
    let stdout = results.path().join("stdout.txt");
    let child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--system", "maelstrom", "--results-dir"])
        .arg(results.path().join("r"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(results.path().join("stderr.txt")).unwrap())
        .spawn()
        .expect("spawn harness");
    let code = ChildGuard(Some(child))
        .wait_timeout(limit)
        .code()
        .expect("harness exited normally");
    let mut text = std::fs::read_to_string(&stdout).unwrap();
    text.push_str(&std::fs::read_to_string(results.path().join("stderr.txt")).unwrap());
    let mut dirs = Vec::new();
    if let Ok(tests) = std::fs::read_dir(results.path().join("r")) {
        for test in tests.flatten().filter(|t| t.path().is_dir()) {
            for r in std::fs::read_dir(test.path()).unwrap().flatten() {
                if r.path().is_dir() && !r.path().is_symlink() {
                    dirs.push(r.path());
                }
            }
        }
    }
    dirs.sort_by_key(|d| test_json(d)["seed"].as_u64());
    Run {
        code,
        stdout: text,
        dirs,
        _results: results,
    }
}

fn json_file(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn test_json(dir: &Path) -> Value {
    json_file(&dir.join("test.json"))
}

fn results(dir: &Path) -> Value {
    json_file(&dir.join("results.json"))
}

fn history(dir: &Path) -> Vec<Value> {
    formats::history::Reader::open(&dir.join("history.jsonl"))
        .unwrap()
        .map(|e| serde_json::to_value(e.unwrap().event).unwrap())
        .collect()
}

fn nemesis_fs(h: &[Value]) -> BTreeSet<String> {
    h.iter()
        .filter(|e| e["process"] == "nemesis")
        .map(|e| e["f"].as_str().unwrap().to_string())
        .collect()
}

fn observation_events(dir: &Path) -> BTreeSet<String> {
    formats::observations::Reader::open(&dir.join("observations.jsonl"))
        .unwrap()
        .map(|o| {
            let v = serde_json::to_value(o.unwrap().event).unwrap();
            v["event"].as_str().unwrap().to_string()
        })
        .collect()
}

/// Every client op that was invoked has exactly one completion.
fn assert_complete(h: &[Value]) {
    let mut open: BTreeSet<u64> = BTreeSet::new();
    for e in h.iter().filter(|e| e["process"] != "nemesis") {
        let p = e["process"].as_u64().unwrap();
        if e["type"] == "invoke" {
            assert!(
                open.insert(p),
                "process {p} invoked twice without completing"
            );
        } else {
            assert!(
                open.remove(&p),
                "a completion of process {p} without an invoke"
            );
        }
    }
    assert!(open.is_empty(), "ops never completed: {open:?}");
}

fn common_args<'a>(seed: &'a str, time: &'a str) -> Vec<&'a str> {
    vec![
        "--nodes",
        "3",
        "--seed",
        seed,
        "--time-limit",
        time,
        "--nemesis-interval",
        "0.7",
        "--rate",
        "200",
        "--key-count",
        "3",
    ]
}

#[test]
fn our_node_is_valid_under_partitions_pauses_and_message_faults() {
    let mut args = common_args("11", "7");
    args.extend([
        "--nemesis",
        "partition,pause",
        "--system-opt",
        "net-log=true",
    ]);
    for f in ["drop=0.02", "duplicate=0.02", "reorder=0.02", "delay=0.05"] {
        args.extend(["--system-opt", f]);
    }
    let r = run(&args, Duration::from_secs(90));
    assert_eq!(r.code, 0, "{}", r.stdout);
    let dir = r.dir();
    let res = results(dir);
    assert_eq!(res["valid"], true, "{res}");
    assert_eq!(res["checkers"]["raft_safety"]["valid"], true, "{res}");
    let h = history(dir);
    assert_complete(&h);
    let fs = nemesis_fs(&h);
    for f in ["start-partition", "stop-partition", "pause", "resume"] {
        assert!(fs.contains(f), "no {f} in {fs:?}");
    }
    let oks = h.iter().filter(|e| e["type"] == "ok").count();
    assert!(oks > 100, "only {oks} ops succeeded");
    // Partitions are recorded as the router's exact link matrix.
    let cut = h
        .iter()
        .find(|e| e["f"] == "start-partition")
        .expect("a partition");
    assert_eq!(cut["value"]["links"].as_array().unwrap().len(), 6, "{cut}");
    // Election facts came from the wire, next to the statuses derived from it.
    let kinds = observation_events(dir);
    for k in ["status", "leader-message", "vote"] {
        assert!(kinds.contains(k), "no {k} observation: {kinds:?}");
    }
    let t = test_json(dir);
    assert_eq!(t["system"]["name"], "maelstrom");
    assert_eq!(t["system"]["opts"]["persistent"], "false");
    assert_eq!(t["system"]["opts"]["drop"], "0.02");
    // Every message's fate is in the log, message faults included.
    let net = std::fs::read_to_string(dir.join("nodes/net.jsonl")).unwrap();
    assert!(net.lines().count() > 100);
    assert!(net.contains("\"action\":\"cut\"") || net.contains("\"action\":\"hold\""));
    for a in ["drop", "duplicate", "reorder", "delay"] {
        assert!(
            net.contains(&format!("\"action\":\"{a}\"")),
            "no {a} in net.jsonl"
        );
    }
}

#[test]
fn with_persistent_state_our_node_is_valid_under_kills() {
    let mut args = common_args("12", "7");
    args.extend([
        "--nemesis",
        "kill,partition,pause",
        "--system-opt",
        "persistent=true",
    ]);
    let r = run(&args, Duration::from_secs(90));
    assert_eq!(r.code, 0, "{}", r.stdout);
    let dir = r.dir();
    assert_eq!(results(dir)["valid"], true);
    let h = history(dir);
    assert_complete(&h);
    let fs = nemesis_fs(&h);
    assert!(fs.contains("kill") && fs.contains("start"), "{fs:?}");
    for e in h.iter().filter(|e| e["process"] == "nemesis") {
        assert!(e["value"].get("error").is_none(), "a fault failed: {e}");
    }
    assert!(
        dir.join("nodes/n1/data").is_dir(),
        "our node kept its state"
    );
}

#[test]
fn kill_of_an_in_memory_node_is_refused_before_anything_starts() {
    let r = run(
        &["--nemesis", "kill,partition", "--time-limit", "1"],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(
        r.stdout
            .contains("maelstrom takes the kill fault only with --system-opt persistent=true")
            && r.stdout.contains("may legally break Raft's guarantees"),
        "{}",
        r.stdout
    );
    assert!(r.dirs.is_empty(), "nothing started: {:?}", r.dirs);
    // Membership changes are not in the protocol at all.
    let r = run(&["--nemesis", "member"], Duration::from_secs(30));
    assert_eq!(r.code, 3);
    assert!(
        r.stdout.contains("maelstrom cannot take the member fault"),
        "{}",
        r.stdout
    );
}

#[test]
fn the_broken_node_is_caught_every_time() {
    let bin = script_bin("broken_kv.py", &[]);
    let mut args = common_args("21", "4");
    args.extend([
        "--nemesis",
        "partition",
        "--node-bin",
        &bin,
        "--test-count",
        "3",
        "-w",
        "register",
    ]);
    let r = run(&args, Duration::from_secs(120));
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert_eq!(r.dirs.len(), 3, "{:?}", r.dirs);
    for dir in &r.dirs {
        let res = results(dir);
        assert_eq!(res["valid"], false, "{}: {res}", dir.display());
        assert_eq!(
            res["checkers"]["linearizability"]["valid"],
            false,
            "{}: {res}",
            dir.display()
        );
        assert_eq!(test_json(dir)["system"]["bin"], bin.as_str());
    }
}

#[test]
fn two_leaders_and_a_double_vote_on_the_wire_make_the_run_invalid() {
    let bin = script_bin("broken_kv.py", &["--leaders", "n1,n2", "--double-vote"]);
    let mut args = common_args("31", "2");
    args.extend(["--nemesis", "none", "--node-bin", &bin]);
    let r = run(&args, Duration::from_secs(60));
    assert_eq!(r.code, 1, "{}", r.stdout);
    let res = results(r.dir());
    let raft = &res["checkers"]["raft_safety"];
    assert_eq!(raft["valid"], false, "{res}");
    let kinds: BTreeSet<&str> = raft["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["kind"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains("two-leaders") && kinds.contains("double-vote"),
        "{raft}"
    );
}

#[test]
fn a_node_answering_nonsense_gets_a_clear_error_and_loses_no_history() {
    let bin = script_bin("garbage_node.py", &[]);
    let mut args = common_args("41", "2");
    args.extend([
        "--nemesis",
        "none",
        "--node-bin",
        &bin,
        "--op-timeout-ms",
        "300",
        "--recovery-timeout",
        "2",
        "--concurrency",
        "3",
    ]);
    let r = run(&args, Duration::from_secs(60));
    assert_eq!(r.code, 3, "{}", r.stdout);
    let dir = r.dir();
    let res = results(dir);
    assert!(
        res["error"]
            .as_str()
            .is_some_and(|e| e.contains("final linearizable reads did not succeed")),
        "{res}"
    );
    let h = history(dir);
    assert_complete(&h);
    let errors: BTreeSet<String> = h
        .iter()
        .filter_map(|e| e["error"].as_str().map(String::from))
        .collect();
    for want in [
        "error without a code",
        "read_ok without a \"value\"",
        "timeout",
    ] {
        assert!(errors.contains(want), "no {want:?} in {errors:?}");
    }
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("unexpected reply \"frobnicate_ok\"")),
        "{errors:?}"
    );
    assert!(h
        .iter()
        .all(|e| e["type"] != "ok" || e["process"] == "nemesis"));

    // A node that refuses init: the run says which node and what it said.
    let bin = script_bin("garbage_node.py", &["--bad-init"]);
    let r = run(
        &["--nodes", "3", "--node-bin", &bin, "--nemesis", "none"],
        Duration::from_secs(60),
    );
    assert_eq!(r.code, 3, "{}", r.stdout);
    assert!(
        r.stdout.contains("node 1 answered init with") && r.stdout.contains("I do not do init"),
        "{}",
        r.stdout
    );
}
