//! The `harness check` surface: exit codes, JSON report, errors naming file and line,
//! history validation, cas precondition observations and budgets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use checker::cli::{run, CheckArgs};
use checker::{check_path, CheckError, CheckOptions, Validity};
use serde_json::{json, Value};

fn write(dir: &Path, name: &str, lines: &[Value]) -> PathBuf {
    let p = dir.join(name);
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&p, text).expect("write");
    p
}

fn ev(index: u64, process: u64, ty: &str, f: &str, value: Value) -> Value {
    json!({"index": index, "time": index * 1_000_000, "process": process, "type": ty, "f": f, "key": "k3", "value": value})
}

fn args(path: PathBuf, json: bool) -> CheckArgs {
    CheckArgs {
        path,
        json,
        format: None,
        model: None,
        init: None,
        time_limit: Duration::from_secs(10),
        memory_limit: 1 << 30,
        no_split: false,
        minimize: false,
    }
}

/// write 17, then write 22, then a read that still returns 17.
fn stale_read() -> Vec<Value> {
    vec![
        ev(0, 1, "invoke", "write", json!("17")),
        ev(1, 1, "ok", "write", json!("17")),
        ev(2, 2, "invoke", "write", json!("22")),
        ev(3, 2, "ok", "write", json!("22")),
        ev(4, 3, "invoke", "read", json!(null)),
        ev(5, 3, "ok", "read", json!("17")),
    ]
}

#[test]
fn stale_read_is_invalid_with_a_readable_explanation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = write(dir.path(), "history.jsonl", &stale_read());
    let mut out = Vec::new();
    let code = run(&args(p.clone(), true), &mut out).expect("run");
    assert_eq!(code, 1);
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["valid"], json!(false));
    assert_eq!(v["model"], json!("kv"));
    assert_eq!(v["ops"], json!(3));
    assert!(v["parse_ms"].is_number() && v["check_ms"].is_number());
    assert_eq!(v["checkers"]["linearizability"]["valid"], json!(false));
    let cx = &v["counterexample"];
    assert_eq!(cx["key"], json!("k3"));
    assert_eq!(cx["op"], json!(4));
    let text = cx["explanation"].as_str().expect("explanation");
    assert!(
        text.contains("returning 17")
            && text.contains("overwritten by write 22")
            && text.contains("before the read began"),
        "{text}"
    );
    // The human summary says the same in a few lines.
    let mut out = Vec::new();
    assert_eq!(run(&args(p, false), &mut out).expect("run"), 1);
    let s = String::from_utf8(out).expect("utf8");
    assert!(s.contains("INVALID") && s.contains("overwritten"), "{s}");
    assert!(s.lines().count() < 30, "{s}");
}

/// `--minimize` on a file writes `<name>.minimal.jsonl` beside it: the
/// stale read among unrelated traffic on another key shrinks to its three
/// ops, which `harness check` reads back as invalid; a valid history has
/// nothing to minimize.
#[test]
fn minimize_writes_the_smallest_invalid_history_beside_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = Vec::new();
    for (n, mut e) in stale_read().into_iter().enumerate() {
        e["index"] = json!(2 * n);
        h.push(e);
        let mut other = ev(
            2 * n as u64 + 1,
            9,
            if n % 2 == 0 { "invoke" } else { "ok" },
            "write",
            json!(format!("v{}", n / 2)),
        );
        other["key"] = json!("k4");
        h.push(other);
    }
    let p = write(dir.path(), "h.jsonl", &h);
    let mut a = args(p.clone(), false);
    a.minimize = true;
    let mut out = Vec::new();
    assert_eq!(run(&a, &mut out).expect("run"), 1);
    let s = String::from_utf8(out).expect("utf8");
    assert!(s.contains("3 of 6 ops, still not linearizable"), "{s}");
    let minimal = dir.path().join("h.minimal.jsonl");
    let r = check_path(&minimal, &CheckOptions::default()).expect("check");
    assert_eq!((r.valid, r.ops), (Validity::Invalid, 3));

    let valid = write(dir.path(), "v.jsonl", &stale_read()[..4]);
    let mut a = args(valid, false);
    a.minimize = true;
    let mut out = Vec::new();
    assert_eq!(run(&a, &mut out).expect("run"), 0);
    assert!(String::from_utf8(out)
        .unwrap()
        .contains("nothing to minimize"));
    assert!(!dir.path().join("v.minimal.jsonl").exists());
}

/// A stale read decided by the search (a cas that writes back the value it
/// expects keeps the key off the graph path): the writes that explain it lie
/// in earlier quiescent windows, so the counterexample must name them as
/// witnesses.
#[test]
fn counterexample_names_the_writes_its_explanation_relies_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut h = stale_read();
    h.truncate(4); // write 17, write 22: each its own quiescent window
    h.extend([
        ev(4, 3, "invoke", "read", json!(null)),
        ev(5, 4, "invoke", "cas", json!(["22", "22"])),
        ev(6, 4, "ok", "cas", json!(["22", "22"])),
        ev(7, 3, "ok", "read", json!("17")),
    ]);
    let p = write(dir.path(), "history.jsonl", &h);
    let mut out = Vec::new();
    assert_eq!(run(&args(p, true), &mut out).expect("run"), 1);
    let v: Value = serde_json::from_slice(&out).expect("json");
    let cx = &v["counterexample"];
    assert_eq!(cx["op"], json!(4), "{cx}");
    let text = cx["explanation"].as_str().expect("explanation");
    assert!(text.contains("overwritten by write of k3 of 22"), "{text}");
    assert_eq!(cx["witnesses"], json!([0, 2]), "{cx}");
    let shown: Vec<u64> = cx["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["index"].as_u64().expect("index"))
        .collect();
    assert_eq!(
        shown,
        vec![0, 2, 4, 5],
        "witnesses and window, in invoke order"
    );
}

#[test]
fn the_same_history_without_the_overwrite_is_valid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = stale_read();
    lines[5]["value"] = json!("22");
    let p = write(dir.path(), "h.jsonl", &lines);
    let mut out = Vec::new();
    assert_eq!(run(&args(p, true), &mut out).expect("run"), 0);
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["valid"], json!(true));
    assert_eq!(v["counterexample"], Value::Null);
}

#[test]
fn cas_precondition_failure_is_an_observation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut lines = vec![
        ev(0, 1, "invoke", "write", json!("5")),
        ev(1, 1, "ok", "write", json!("5")),
        ev(2, 2, "invoke", "cas", json!(["5", "9"])),
        json!({"index": 3, "time": 3, "process": 2, "type": "fail", "f": "cas", "key": "k3", "value": ["5", "9"], "error": "precondition"}),
    ];
    let p = write(dir.path(), "h.jsonl", &lines);
    let r = check_path(&p, &CheckOptions::default()).expect("check");
    assert_eq!(
        r.valid,
        Validity::Invalid,
        "the value was 5, so the precondition could not fail"
    );
    // Any other failure simply did not happen.
    lines[3]["error"] = json!("not-leader");
    let p = write(dir.path(), "h2.jsonl", &lines);
    let r = check_path(&p, &CheckOptions::default()).expect("check");
    assert_eq!(r.valid, Validity::Valid);
}

#[test]
fn info_write_may_take_effect_late_or_never() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = vec![
        ev(0, 1, "invoke", "write", json!("1")),
        ev(1, 1, "info", "write", json!("1")),
        ev(2, 2, "invoke", "read", json!(null)),
        ev(3, 2, "ok", "read", json!(null)),
        ev(4, 3, "invoke", "read", json!(null)),
        ev(5, 3, "ok", "read", json!("1")),
        ev(6, 4, "invoke", "read", json!(null)),
        ev(7, 4, "ok", "read", json!("1")),
    ];
    let p = write(dir.path(), "h.jsonl", &base);
    assert_eq!(
        check_path(&p, &CheckOptions::default())
            .expect("check")
            .valid,
        Validity::Valid
    );
    // But once seen, it cannot be unseen.
    let mut bad = base.clone();
    bad[7]["value"] = json!(null);
    let p = write(dir.path(), "bad.jsonl", &bad);
    assert_eq!(
        check_path(&p, &CheckOptions::default())
            .expect("check")
            .valid,
        Validity::Invalid
    );
}

#[test]
fn malformed_input_names_file_line_and_expectation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("broken.jsonl");
    std::fs::write(
        &p,
        "{\"index\": 0, \"process\": 1, \"type\": \"invoke\", \"f\": \"read\"}\n{not json\n",
    )
    .expect("write");
    match check_path(&p, &CheckOptions::default()) {
        Err(e @ CheckError::Parse { line: 2, .. }) => {
            let s = e.to_string();
            assert!(
                s.contains("broken.jsonl:2") && s.contains("expected"),
                "{s}"
            );
            assert_eq!(e.exit_code(), 3);
        }
        other => panic!("expected a parse error on line 2, got {other:?}"),
    }
    let p = dir.path().join("bad-type.jsonl");
    std::fs::write(
        &p,
        "{\"index\": 0, \"process\": 1, \"type\": \"begin\", \"f\": \"read\"}\n",
    )
    .expect("write");
    assert!(matches!(
        check_path(&p, &CheckOptions::default()),
        Err(CheckError::Parse { line: 1, .. })
    ));
}

#[test]
fn a_torn_last_line_is_skipped_but_a_damaged_line_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("history.jsonl");
    let whole: String = stale_read().iter().map(|l| format!("{l}\n")).collect();
    // A crash mid-write: the last line is cut short, without its newline.
    let torn = format!("{whole}{{\"index\": 6, \"time\": 6000000, \"proc");
    std::fs::write(&p, &torn).expect("write");
    let r = check_path(&p, &CheckOptions::default()).expect("a torn last line is no error");
    assert_eq!(r.valid, Validity::Invalid, "the stale read is still found");
    assert_eq!(r.ops, 3);
    // The same line ended by a newline was written whole: the file is damaged.
    std::fs::write(&p, format!("{torn}\n")).expect("write");
    match check_path(&p, &CheckOptions::default()) {
        Err(e @ CheckError::Parse { line: 7, .. }) => {
            assert!(e.to_string().contains("history.jsonl:7"), "{e}")
        }
        other => panic!("expected a parse error on line 7, got {other:?}"),
    }
}

#[test]
fn history_assumptions_are_validated_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let orphan = write(
        dir.path(),
        "orphan.jsonl",
        &[ev(0, 1, "ok", "read", json!("1"))],
    );
    let e = check_path(&orphan, &CheckOptions::default()).expect_err("orphan completion");
    assert!(
        matches!(e, CheckError::InvalidHistory { line: 1, .. }),
        "{e}"
    );
    assert!(e.to_string().contains("without an invocation"), "{e}");

    let twice = write(
        dir.path(),
        "twice.jsonl",
        &[
            ev(0, 1, "invoke", "read", json!(null)),
            ev(1, 1, "invoke", "write", json!("2")),
        ],
    );
    let e = check_path(&twice, &CheckOptions::default()).expect_err("two open ops");
    assert!(e.to_string().contains("one open op per process"), "{e}");

    let mismatch = write(
        dir.path(),
        "mismatch.jsonl",
        &[
            ev(0, 1, "invoke", "read", json!(null)),
            ev(1, 1, "ok", "write", json!("2")),
        ],
    );
    let e = check_path(&mismatch, &CheckOptions::default()).expect_err("mismatch");
    assert!(e.to_string().contains("does not match"), "{e}");
}

#[test]
fn an_exhausted_budget_gives_unknown_naming_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    // cas ops force the search (no graph): with no time at all it cannot finish.
    let mut lines = Vec::new();
    for i in 0..20u64 {
        lines.push(ev(
            2 * i,
            i,
            "invoke",
            "cas",
            json!([i.to_string(), (i + 1).to_string()]),
        ));
    }
    for i in 0..20u64 {
        lines.push(ev(
            2 * i + 1,
            i,
            "info",
            "cas",
            json!([i.to_string(), (i + 1).to_string()]),
        ));
    }
    lines.push(ev(100, 50, "invoke", "read", json!(null)));
    lines.push(ev(101, 50, "ok", "read", json!("7")));
    let p = write(dir.path(), "h.jsonl", &lines);
    let mut a = args(p, true);
    a.time_limit = Duration::ZERO;
    let mut out = Vec::new();
    assert_eq!(run(&a, &mut out).expect("run"), 2);
    let v: Value = serde_json::from_slice(&out).expect("json");
    assert_eq!(v["valid"], json!("unknown"));
    let reason = v["checkers"]["linearizability"]["reason"]
        .as_str()
        .expect("reason");
    assert!(
        reason.contains("time limit") && reason.contains("key k3"),
        "{reason}"
    );
}

#[test]
fn formats_are_detected_from_content() {
    let dir = tempfile::tempdir().expect("tempdir");
    let edn = dir.path().join("history.edn");
    std::fs::write(
        &edn,
        "; a comment\n[{:process 0, :type :invoke, :f :write, :value 1}\n {:process 0, :type :ok, :f :write, :value 1}\n {:process :nemesis, :type :info, :f :start}\n {:process 1, :type :invoke, :f :read, :value nil}\n {:process 1, :type :ok, :f :read, :value 2}]\n",
    )
    .expect("write");
    let r = check_path(&edn, &CheckOptions::default()).expect("check");
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(
        r.checkers
            .linearizability
            .as_ref()
            .map(|l| l.format.as_str()),
        Some("edn")
    );

    let log = dir.path().join("x.log");
    std::fs::write(
        &log,
        "INFO  jepsen.util - 0\t:invoke\t:cas\t[nil 1]\nINFO  jepsen.util - 0\t:ok\t:cas\t[nil 1]\nINFO  jepsen.util - 1\t:invoke\t:read\tnil\nINFO  jepsen.util - 1\t:ok\t:read\t1\n",
    )
    .expect("write");
    let r = check_path(&log, &CheckOptions::default()).expect("check");
    assert_eq!(r.valid, Validity::Valid);
    assert_eq!(r.model, "cas-register");
}
