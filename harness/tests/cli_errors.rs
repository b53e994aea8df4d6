//! The `harness` command line: usage errors are clear and exit 3 (never
//! clap's 2, which would read as the verdict "unknown"); help exits 0.

use std::path::Path;
use std::process::{Command, Output};

fn harness(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run harness")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

#[test]
fn bad_flags_exit_3_with_a_message_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["run", "--nodes", "0"], "--nodes"),
        (
            &["run", "--nemesis", "kill,explode"],
            "unknown fault or package \"explode\"",
        ),
        (&["run", "-w", "queue"], "unknown workload \"queue\""),
        (
            &["run", "--read-consistency", "eventual"],
            "linearizable, lease or stale",
        ),
        (&["run", "--time-limit", "soon"], "not a number"),
        (&["run", "--system", "zookeeper"], "zookeeper"),
        (&["run", "--system-opt", "pre-vote"], "KEY=VALUE"),
        (&["run", "--nemesis-targets", "everyone"], "everyone"),
        (&["run", "--frobnicate"], "--frobnicate"),
        (&["frobnicate"], "frobnicate"),
        (&[], "Usage"),
    ];
    for (args, needle) in cases {
        let o = harness(args, dir.path());
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    assert!(
        !dir.path().join("results").exists(),
        "no run folder for a rejected command line"
    );
}

#[test]
fn inconsistent_options_are_rejected_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    // The default nemesis includes partitions, which need the proxies.
    let o = harness(&["run", "--no-proxy"], dir.path());
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("--no-proxy"), "{}", stdout(&o));
    let o = harness(&["run", "-w", "register", "--mix", "cas=1"], dir.path());
    assert_eq!(o.status.code(), Some(3));
    assert!(stdout(&o).contains("cas"), "{}", stdout(&o));
    let o = harness(
        &[
            "run",
            "--node-bin",
            "/nonexistent/node",
            "--nemesis",
            "none",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stdout(&o).contains("cannot locate the node program"),
        "{}",
        stdout(&o)
    );
    assert!(!dir.path().join("results").exists());
}

#[test]
fn what_a_system_cannot_take_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["run", "--system", "etcd", "--read-consistency", "lease"],
            "etcd has no lease reads: --read-consistency takes linearizable, stale (serializable) for etcd",
        ),
        (
            &["run", "--system-opt", "frobnicate=1"],
            "raft-node has no option \"frobnicate\"",
        ),
        (
            &["run", "--system", "etcd", "--system-opt", "check-quorum=false"],
            "etcd has no option \"check-quorum\"",
        ),
        (
            &["run", "--system-opt", "pre-vote=maybe"],
            "--system-opt pre-vote=maybe for raft-node: expected true or false",
        ),
        (
            &["run", "--system", "etcd", "--system-opt", "election-timeout=100"],
            "at least 5 heartbeat intervals",
        ),
        (
            &["run", "--system", "etcd", "--node-bin", "/nonexistent/etcd"],
            "apt-get install -y etcd-server",
        ),
    ];
    for (args, needle) in cases {
        let o = harness(args, dir.path());
        assert_eq!(o.status.code(), Some(3), "{args:?}: {}", stdout(&o));
        assert!(stdout(&o).contains(needle), "{args:?}: {}", stdout(&o));
    }
    // No etcd on PATH: the error says how to install it.
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--system", "etcd"])
        .env("PATH", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("etcd not found on PATH")
            && stdout(&o).contains("apt-get install -y etcd-server"),
        "{}",
        stdout(&o)
    );
    assert!(!dir.path().join("results").exists());
}

#[test]
fn help_and_version_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["--help"][..], &["run", "--help"], &["--version"]] {
        let o = harness(args, dir.path());
        assert_eq!(o.status.code(), Some(0), "{args:?}");
    }
    let o = harness(&["run", "--help"], dir.path());
    for flag in [
        "--nodes",
        "--time-limit",
        "--concurrency",
        "--rate",
        "--workload",
        "--nemesis",
        "--nemesis-interval",
        "--read-consistency",
        "--seed",
        "--test-count",
        "--results-dir",
        "--node-bin",
        "--key-count",
        "--no-proxy",
        "--system",
        "--system-opt",
        "--status-interval-ms",
        // Each system's options, under the system.
        "--system raft-node",
        "pre-vote=BOOL",
        "check-quorum=BOOL",
        "bug=NAME",
        "--system etcd",
        "heartbeat-interval=MS",
    ] {
        assert!(stdout(&o).contains(flag), "run --help lacks {flag}");
    }
}

#[test]
fn check_of_a_missing_path_is_an_error_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let o = harness(&["check", "/nonexistent/run"], dir.path());
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = harness(&["report", "/nonexistent/run"], dir.path());
    assert_eq!(o.status.code(), Some(3));
}
