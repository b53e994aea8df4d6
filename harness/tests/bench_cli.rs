//! `harness bench` end to end: real clusters, both meshes, repeated runs.

use serde_json::Value;
use std::path::PathBuf;
mod common;

use common::ChildGuard;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn bench_runs_every_cell_on_both_meshes_and_reports_medians() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let stdout_path = tmp.path().join("stdout.txt");
    let mut cmd = Command::new(PathBuf::from(env!("CARGO_BIN_EXE_harness")));
    cmd.args([
        "bench",
        "--time-limit",
        "1",
        "--clients",
        "1",
        "--nodes",
        "3",
    ])
    .args(["--repeat", "2", "--failovers", "1", "--results-dir"])
    .arg(&results);
    if let Some(p) = std::env::var_os("NODE_BIN") {
        cmd.arg("--node-bin").arg(p);
    }
    let child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = ChildGuard(Some(child)).wait_timeout(Duration::from_secs(120));
    let out = std::fs::read_to_string(&stdout_path).unwrap();
    assert_eq!(status.code(), Some(0), "{out}");

    let bench: Value =
        serde_json::from_slice(&std::fs::read(results.join("bench/bench.json")).unwrap()).unwrap();
    let rows = bench["runs"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for (proxy, rep) in [(true, 0), (false, 0), (true, 1), (false, 1)] {
        let row = rows
            .iter()
            .find(|r| r["proxy"] == proxy && r["rep"] == rep)
            .unwrap_or_else(|| panic!("no row proxy={proxy} rep={rep}: {rows:?}"));
        assert!(row["ops_s"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["answered_by"].as_u64().is_some(), "{row}");
        // Each figure can be traced to its run, made with leader-following
        // clients and the mesh the row claims.
        let dir = PathBuf::from(row["dir"].as_str().unwrap());
        assert!(dir.join("history.jsonl").is_file());
        let test: Value =
            serde_json::from_slice(&std::fs::read(dir.join("test.json")).unwrap()).unwrap();
        assert_eq!(test["follow_leader"], true);
        assert_eq!(test["proxy"], proxy);
        assert_eq!(test["system"]["name"], "raft-node");
        assert_eq!(row["system"], "raft-node");
    }
    // One failover of the leader, measured and traced to its folder.
    let failovers = bench["failovers"].as_array().unwrap();
    assert_eq!(failovers.len(), 1, "{failovers:?}");
    let f = &failovers[0];
    let samples = f["samples_ms"].as_array().unwrap();
    assert_eq!(samples.len(), 1, "{f}");
    assert!(samples[0].as_f64().unwrap() > 0.0, "{f}");
    assert_eq!(f["median_ms"], samples[0]);
    assert!(PathBuf::from(f["dir"].as_str().unwrap())
        .join("nodes/n1/node.log")
        .is_file());
    assert!(out.contains("failover: kill -9 of the leader"), "{out}");
    assert!(out.contains("median run of each cell"), "{out}");
    let cost = out
        .lines()
        .find(|l| l.contains("3 nodes   1 clients:"))
        .unwrap_or_else(|| panic!("no proxy cost line: {out}"));
    assert!(cost.contains("pairs"), "{cost}");
}
