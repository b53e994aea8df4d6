//! Raft-safety checker scenarios: each violation kind is caught, a normal run is clean.

use std::path::Path;

use checker::raft::{check_events, check_trace_files};
use checker::{check_path, CheckOptions, Validity};
use formats::jsonl::Record;
use formats::observations::Observation;
use formats::trace::TraceEvent;
use serde_json::{json, Value};

/// A trace line, read the way the checker reads trace files.
fn ev(v: Value) -> TraceEvent {
    TraceEvent::parse_line(v.to_string().as_bytes(), 0).expect("a trace event")
}

/// Three nodes, node 1 leads term 2, everyone applies 1..=3 identically.
fn clean_run() -> Vec<Value> {
    let mut out = vec![
        json!({"time": 10, "node": 1, "event": "role", "term": 2, "role": "leader", "leader": 1}),
        json!({"time": 11, "node": 2, "event": "role", "term": 2, "role": "follower", "leader": 1}),
        json!({"time": 12, "node": 3, "event": "role", "term": 2, "role": "follower", "leader": 1}),
    ];
    let mut t = 20;
    for idx in 1..=3u64 {
        for node in 1..=3u64 {
            t += 1;
            out.push(json!({"time": t, "node": node, "event": "commit", "index": idx, "term": 2}));
            t += 1;
            out.push(json!({"time": t, "node": node, "event": "apply", "index": idx, "term": 2, "digest": format!("d{idx}"), "kind": "command"}));
        }
    }
    out
}

fn check(lines: Vec<Value>) -> checker::RaftSafetyResult {
    let evs: Vec<TraceEvent> = lines.into_iter().map(ev).collect();
    check_events(&evs, &[])
}

#[test]
fn normal_run_is_clean() {
    let r = check(clean_run());
    assert_eq!(r.valid, Validity::Valid, "{:?}", r.violations);
    assert_eq!(r.nodes, 3);
}

#[test]
fn two_leaders_in_one_term_are_caught() {
    let mut lines = clean_run();
    lines.push(
        json!({"time": 50, "node": 3, "event": "role", "term": 2, "role": "leader", "leader": 3}),
    );
    let r = check(lines);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.violations.len(), 1);
    assert_eq!(r.violations[0].kind, "two-leaders");
    assert_eq!(r.violations[0].events.len(), 2);
}

#[test]
fn leaders_of_different_terms_at_once_are_legal() {
    let mut lines = clean_run();
    lines.push(
        json!({"time": 13, "node": 2, "event": "role", "term": 3, "role": "leader", "leader": 2}),
    );
    assert_eq!(check(lines).valid, Validity::Valid);
}

#[test]
fn divergent_apply_is_caught() {
    let mut lines = clean_run();
    lines.push(
        json!({"time": 90, "node": 2, "event": "apply", "index": 4, "term": 2, "digest": "d4", "kind": "command"}),
    );
    lines.push(
        json!({"time": 91, "node": 3, "event": "apply", "index": 4, "term": 3, "digest": "other", "kind": "command"}),
    );
    let r = check(lines);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.violations[0].kind, "divergent-apply");
    assert!(
        r.violations[0].message.contains("index 4"),
        "{}",
        r.violations[0].message
    );
}

#[test]
fn commit_regress_is_caught() {
    let mut lines = clean_run();
    lines.push(json!({"time": 95, "node": 2, "event": "commit", "index": 2, "term": 2}));
    let r = check(lines);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.violations[0].kind, "commit-regress");
}

#[test]
fn a_restart_may_relearn_the_commit_index() {
    let mut lines = clean_run();
    // Node 2 restarts and replays its log from index 1, then learns commit 2 first.
    lines.push(
        json!({"time": 95, "node": 2, "event": "apply", "index": 1, "term": 2, "digest": "d1", "kind": "command"}),
    );
    lines.push(json!({"time": 96, "node": 2, "event": "commit", "index": 2, "term": 2}));
    lines.push(json!({"time": 97, "node": 2, "event": "start", "term": 2, "snapshot_index": 0}));
    lines.push(json!({"time": 98, "node": 2, "event": "commit", "index": 1, "term": 2}));
    assert_eq!(check(lines).valid, Validity::Valid);
}

#[test]
fn external_observations_join_the_leader_check() {
    let traces: Vec<TraceEvent> = clean_run().into_iter().map(ev).collect();
    // The first version of the format: no "event", no "leader".
    let obs = vec![Observation::parse_line(
        br#"{"time": 40, "node": 2, "term": 2, "role": "leader"}"#,
        0,
    )
    .expect("an observation")];
    let r = check_events(&traces, &obs);
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.violations[0].kind, "two-leaders");
}

fn write_lines(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(path, text).expect("write");
}

#[test]
fn run_folder_combines_history_and_traces() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path();
    for n in 1..=3u64 {
        let d = run.join(format!("nodes/n{n}"));
        std::fs::create_dir_all(&d).expect("mkdir");
        let mine: Vec<Value> = clean_run().into_iter().filter(|l| l["node"] == n).collect();
        write_lines(&d.join("trace.jsonl"), &mine);
    }
    // A truncated last line (kill -9) is tolerated.
    let t1 = run.join("nodes/n1/trace.jsonl");
    let mut text = std::fs::read_to_string(&t1).expect("read");
    text.push_str("{\"time\": 99, \"node\": 1, \"ev");
    std::fs::write(&t1, text).expect("write");
    write_lines(
        &run.join("history.jsonl"),
        &[
            json!({"index": 0, "time": 1, "process": 0, "type": "invoke", "f": "write", "key": "k", "value": "1"}),
            json!({"index": 1, "time": 2, "process": 0, "type": "ok", "f": "write", "key": "k", "value": "1"}),
            json!({"index": 2, "time": 3, "process": "nemesis", "type": "info", "f": "kill", "value": [1]}),
            json!({"index": 3, "time": 4, "process": 1, "type": "invoke", "f": "read", "key": "k", "value": null}),
            json!({"index": 4, "time": 5, "process": 1, "type": "ok", "f": "read", "key": "k", "value": "1"}),
        ],
    );
    let r = check_path(run, &CheckOptions::default()).expect("check");
    assert_eq!(r.valid, Validity::Valid);
    let raft = r.checkers.raft_safety.as_ref().expect("raft result");
    assert_eq!(raft.nodes, 3);

    // Now make node 3 diverge: the whole verdict turns invalid.
    let t3 = run.join("nodes/n3/trace.jsonl");
    let mut lines: Vec<Value> = clean_run().into_iter().filter(|l| l["node"] == 3).collect();
    lines.push(
        json!({"time": 200, "node": 3, "event": "apply", "index": 2, "term": 9, "digest": "x", "kind": "command"}),
    );
    write_lines(&t3, &lines);
    let r = check_path(run, &CheckOptions::default()).expect("check");
    assert_eq!(r.valid, Validity::Invalid);
    assert_eq!(r.exit_code(), 1);
    let files = vec![t1, t3];
    assert_eq!(
        check_trace_files(&files, &[]).expect("check").valid,
        Validity::Invalid
    );
}

fn observations(lines: &[&str]) -> Vec<Observation> {
    lines
        .iter()
        .map(|l| Observation::parse_line(l.as_bytes(), 0).expect("an observation"))
        .collect()
}

#[test]
fn wire_observations_catch_two_leaders_and_double_votes() {
    let fine = observations(&[
        r#"{"time": 1, "node": 1, "event": "vote", "term": 3, "candidate": 1}"#,
        r#"{"time": 2, "node": 2, "event": "vote", "term": 3, "candidate": 1}"#,
        r#"{"time": 3, "node": 1, "event": "leader-message", "term": 3}"#,
        r#"{"time": 4, "node": 2, "event": "vote", "term": 4, "candidate": 3}"#,
        r#"{"time": 5, "node": 3, "event": "leader-message", "term": 4}"#,
    ]);
    let r = check_events(&[], &fine);
    assert_eq!(r.valid, Validity::Valid, "{:?}", r.violations);

    let mut bad = fine.clone();
    bad.extend(observations(&[
        r#"{"time": 6, "node": 2, "event": "vote", "term": 3, "candidate": 3}"#,
        r#"{"time": 7, "node": 3, "event": "leader-message", "term": 3}"#,
    ]));
    let r = check_events(&[], &bad);
    assert_eq!(r.valid, Validity::Invalid);
    let kinds: Vec<&str> = r.violations.iter().map(|v| v.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec!["double-vote", "two-leaders"],
        "{:?}",
        r.violations
    );
    assert_eq!(
        r.violations[0].message,
        "node 2 voted for both 1 and 3 in term 3"
    );
    assert_eq!(r.violations[0].events[0]["event"], "vote");
    assert_eq!(r.violations[1].events[0]["event"], "leader-message");
}
