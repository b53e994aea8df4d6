//! `harness replay RUN_DIR`: a replay runs with the recorded run's whole
//! configuration and seed, carries out the faults the run recorded (same
//! steps, same nodes, at the same times after the traffic started, not a
//! fresh draw) and prints both verdicts side by side.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

fn harness(args: &[&str]) -> (i32, String) {
    common::run_to_end(
        Command::new(env!("CARGO_BIN_EXE_harness")).args(args),
        Duration::from_secs(120),
    )
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The faults of a run folder: each `(f, value, seconds after the first
/// client invocation)`.
fn faults(dir: &Path) -> Vec<(String, Value, f64)> {
    let events: Vec<Value> = std::fs::read_to_string(dir.join("history.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let origin = events
        .iter()
        .find(|e| e["process"] != "nemesis" && e["type"] == "invoke")
        .unwrap()["time"]
        .as_u64()
        .unwrap();
    events
        .iter()
        .filter(|e| e["process"] == "nemesis")
        .map(|e| {
            let t = e["time"].as_u64().unwrap();
            (
                e["f"].as_str().unwrap().to_string(),
                e["value"].clone(),
                (t as f64 - origin as f64) / 1e9,
            )
        })
        .collect()
}

/// The run folder a harness printed last (`VALID  <dir>  (exit 0)`; a
/// replay prints its own run's line before the side-by-side table).
fn printed_dir(out: &str) -> PathBuf {
    let line = out
        .lines()
        .rev()
        .find(|l| {
            ["VALID  ", "INVALID  ", "UNKNOWN  "]
                .iter()
                .any(|v| l.starts_with(v))
        })
        .unwrap_or_else(|| panic!("no verdict line:\n{out}"));
    PathBuf::from(line.split_whitespace().nth(1).unwrap())
}

#[test]
fn a_replay_has_the_recorded_configuration_and_fault_times() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let r = results.to_str().unwrap();
    let (code, out) = harness(&[
        "run",
        "--nodes",
        "3",
        "--time-limit",
        "4",
        "--seed",
        "11",
        "--nemesis",
        "kill,pause,partition",
        "--nemesis-interval",
        "0.4",
        "--rate",
        "300",
        "--key-count",
        "3",
        "--results-dir",
        r,
    ]);
    assert_eq!(code, 0, "{out}");
    let original = printed_dir(&out);

    let replays = tmp.path().join("replays");
    let (code, out) = harness(&[
        "replay",
        original.to_str().unwrap(),
        "--results-dir",
        replays.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let replay = std::fs::read_dir(replays.join("kv-kill+pause+partition"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| !p.ends_with("latest"))
        .expect("the replay's run folder");

    // The whole configuration, but for the clock and the command line.
    let strip = |mut t: Value| {
        for k in ["start_unix_ns", "argv"] {
            t.as_object_mut().unwrap().remove(k);
        }
        t
    };
    let (t0, t1) = (
        json(&original.join("test.json")),
        json(&replay.join("test.json")),
    );
    assert_eq!(strip(t0.clone()), strip(t1.clone()));
    assert_eq!(t1["argv"][1], "replay");
    assert_eq!(t1["rate"], 300.0);

    // The recorded faults, on the same nodes, at the same times.
    let (f0, f1) = (faults(&original), faults(&replay));
    let starts = f0
        .iter()
        .filter(|f| f.0 == "kill" || f.0 == "pause" || f.0 == "start-partition");
    assert!(starts.count() >= 3, "the run had faults to replay: {f0:?}");
    let limit = t0["time_limit_s"].as_f64().unwrap();
    let during = |f: &[(String, Value, f64)]| -> Vec<(String, Value, f64)> {
        f.iter().filter(|e| e.2 < limit - 0.2).cloned().collect()
    };
    let (d0, d1) = (during(&f0), during(&f1));
    assert_eq!(d0.len(), d1.len(), "original {f0:?}\nreplay {f1:?}");
    for (a, b) in d0.iter().zip(&d1) {
        assert_eq!((&a.0, &a.1), (&b.0, &b.1), "same step on the same node");
        assert!(
            (a.2 - b.2).abs() < 0.25,
            "{} at {:.3}s in the run, {:.3}s in the replay",
            a.0,
            a.2,
            b.2
        );
    }

    // Both verdicts, side by side.
    let table: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("original"))
        .collect();
    assert!(table[0].contains("replay 1"), "{out}");
    assert!(
        table[1].starts_with("verdict") && table[1].matches("valid").count() == 2,
        "{out}"
    );
}

#[test]
fn a_folder_without_test_json_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out) = harness(&["replay", tmp.path().to_str().unwrap()]);
    assert_eq!(code, 3);
    assert!(out.contains("test.json"), "{out}");
}

/// A package that times its faults by watching the cluster (`figure-8`)
/// misses its moment at recorded times: a plain replay says so, and
/// `--live` draws the same seeded plan again and plays it watching, with
/// the recorded configuration.
#[test]
fn a_live_replay_plays_the_seeded_plan_again() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path().join("results");
    let (code, out) = harness(&[
        "run",
        "--nodes",
        "3",
        "--time-limit",
        "4",
        "--seed",
        "5",
        "--nemesis",
        "figure-8",
        "--nemesis-interval",
        "0.5",
        "--results-dir",
        results.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}");
    let original = printed_dir(&out);

    let replays = tmp.path().join("replays");
    let replay = |live: bool| {
        let mut args = vec![
            "replay",
            original.to_str().unwrap(),
            "--results-dir",
            replays.to_str().unwrap(),
        ];
        if live {
            args.push("--live");
        }
        harness(&args)
    };
    let (code, out) = replay(false);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("recorded fault steps") && out.contains("note: figure-8 time their faults"),
        "{out}"
    );

    let (code, out) = replay(true);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("its nemesis plan played live"), "{out}");
    assert!(!out.contains("note:"), "{out}");
    let live = printed_dir(&out);
    let strip = |mut t: Value| {
        for k in ["start_unix_ns", "argv"] {
            t.as_object_mut().unwrap().remove(k);
        }
        t
    };
    assert_eq!(
        strip(json(&original.join("test.json"))),
        strip(json(&live.join("test.json")))
    );
    // The package played: the lagger cut off, stalled, first.
    let f = faults(&live);
    let first = f
        .iter()
        .find(|e| e.0 == "start-partition")
        .expect("a partition");
    assert_eq!(first.1["shape"], "one", "{f:?}");
}
