//! Membership changes with real processes: a fourth node with an empty data
//! dir and no `--members` is added, catches up through a snapshot (the log it
//! would need was compacted), is removed again; then the leader removes itself.

mod common;

use common::Cluster;
use formats::trace::{self, TraceKind};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// Sends a membership change to the current leader until it is accepted.
async fn change(c: &Cluster, among: &[u64], method: reqwest::Method, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let leader = c.wait_leader_among(among, Duration::from_secs(5)).await;
        let (code, body) = c
            .send(
                c.http
                    .request(method.clone(), c.url(leader, &format!("/members/{id}"))),
            )
            .await;
        if code == 200 {
            return body;
        }
        assert!(
            [409, 421, 503, 0].contains(&code),
            "unexpected answer to {method} /members/{id}: {code} {body}"
        );
        assert!(
            Instant::now() < deadline,
            "{method} /members/{id} never succeeded: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_members(c: &Cluster, id: u64, want: Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = c.status(id).await.unwrap_or(Value::Null);
        if s["members"] == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "node {id} never reached members {want}: {s}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_member_catches_up_via_snapshot_then_remove_it_and_the_leader() {
    let mut c = Cluster::start(
        3,
        4,
        &["--snapshot-threshold", "20", "--segment-max-bytes", "2048"],
    );
    let leader = c.wait_leader(Duration::from_secs(5)).await;
    for i in 0..60 {
        c.put_acked(&format!("k{i}"), &format!("v{i}"), Duration::from_secs(5))
            .await;
    }
    // The leader compacted: a snapshot exists and the first segment is gone.
    let data = c.data_dir(leader);
    assert!(data.join("snapshot").exists());
    assert!(!data.join("log/00000000000000000001.seg").exists());

    // A fresh node without --members waits to be added.
    c.spawn(4, None);
    let deadline = Instant::now() + Duration::from_secs(5);
    let s = loop {
        if let Some(s) = c.status(4).await {
            break s;
        }
        assert!(Instant::now() < deadline, "node 4 never answered /status");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_ne!(s["role"], "leader");
    assert_eq!(c.get(4, "k0", "stale").await, (200, json!({"value": null})));

    change(&c, &[1, 2, 3], reqwest::Method::POST, 4).await;
    c.wait_stale_value(4, "k59", "v59", Duration::from_secs(10))
        .await;
    assert_eq!(c.get(4, "k0", "stale").await.1["value"], "v0");
    let trace: Vec<TraceKind> = trace::Reader::open(&c.data_dir(4).join("trace.jsonl"))
        .expect("trace")
        .map(|e| e.expect("a trace event").event.kind)
        .collect();
    assert!(
        trace
            .iter()
            .any(|e| matches!(e, TraceKind::Snapshot { .. })),
        "node 4 did not install a snapshot:\n{trace:?}"
    );
    // Promoted to voter once caught up; writes still commit with four voters.
    wait_members(&c, leader, json!([1, 2, 3, 4])).await;
    c.put_acked("after-add", "yes", Duration::from_secs(5))
        .await;
    c.wait_stale_value(4, "after-add", "yes", Duration::from_secs(5))
        .await;

    change(&c, &[1, 2, 3, 4], reqwest::Method::DELETE, 4).await;
    wait_members(&c, leader, json!([1, 2, 3])).await;
    c.kill9(4);

    // The leader removes itself; the other two carry on.
    let leader = c
        .wait_leader_among(&[1, 2, 3], Duration::from_secs(5))
        .await;
    change(&c, &[1, 2, 3], reqwest::Method::DELETE, leader).await;
    let rest: Vec<u64> = [1, 2, 3].into_iter().filter(|&i| i != leader).collect();
    let new = c.wait_leader_among(&rest, Duration::from_secs(5)).await;
    let want = json!(rest);
    wait_members(&c, new, want).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let new = c.wait_leader_among(&rest, Duration::from_secs(5)).await;
        let (code, body) = c.put(new, "after-remove", "yes").await;
        if code == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "two-node cluster cannot write: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for id in &rest {
        c.wait_stale_value(*id, "after-remove", "yes", Duration::from_secs(5))
            .await;
    }
}
