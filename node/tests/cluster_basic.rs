//! A healthy 3-node cluster: election, writes, reads at all three consistency
//! levels, CAS success and precondition failure, not-leader redirects, bad input.

mod common;

use common::Cluster;
use formats::trace::{self, TraceKind};
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_serve_reads_writes_and_cas() {
    let c = Cluster::start(3, 3, &[]);
    let leader = c.wait_leader(Duration::from_secs(5)).await;
    let follower = *c.running().iter().find(|&&i| i != leader).unwrap();

    // Every node agrees on the leader and the configuration.
    for id in c.running() {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        loop {
            let s = c.status(id).await.expect("status");
            if s["leader"] == leader {
                assert_eq!(s["members"], json!([1, 2, 3]));
                assert!(["leader", "follower"].contains(&s["role"].as_str().unwrap()));
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "node {id} never learned the leader: {s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    assert_eq!(c.put(leader, "x", "1").await, (200, json!({})));
    for level in ["linearizable", "lease", "stale", "consistent", "default"] {
        assert_eq!(
            c.get(leader, "x", level).await,
            (200, json!({"value": "1"})),
            "read at {level}"
        );
    }
    assert_eq!(
        c.get(leader, "missing", "linearizable").await,
        (200, json!({"value": null}))
    );

    // CAS: success, then a precondition failure that reports `failed`.
    assert_eq!(c.cas(leader, "x", Some("1"), "2").await, (200, json!({})));
    let (code, body) = c.cas(leader, "x", Some("1"), "3").await;
    assert_eq!(code, 409);
    assert_eq!(body["error"], "precondition");
    assert_eq!(body["outcome"], "failed");
    assert_eq!(c.cas(leader, "fresh", None, "a").await, (200, json!({})));
    assert_eq!(c.get(leader, "x", "linearizable").await.1["value"], "2");

    // A follower redirects writes and non-stale reads, but serves stale reads.
    for (code, body) in [
        c.put(follower, "x", "9").await,
        c.get(follower, "x", "linearizable").await,
        c.get(follower, "x", "lease").await,
        c.cas(follower, "x", Some("2"), "9").await,
    ] {
        assert_eq!(code, 421, "{body}");
        assert_eq!(body["error"], "not-leader");
        assert_eq!(body["leader"], leader);
        assert_eq!(body["outcome"], "failed");
    }
    c.wait_stale_value(follower, "x", "2", Duration::from_secs(3))
        .await;

    // Bad input: 400 with a message and outcome failed, never a crash.
    let (code, body) = c
        .send(c.http.put(c.url(leader, "/kv/x")).body("{not json"))
        .await;
    assert_eq!((code, body["outcome"].as_str()), (400, Some("failed")));
    let (code, _) = c
        .send(c.http.get(c.url(leader, "/kv/x?consistency=sometimes")))
        .await;
    assert_eq!(code, 400);
    let (code, _) = c
        .send(
            c.http
                .post(c.url(leader, "/kv/x/cas"))
                .json(&json!({"from": 1})),
        )
        .await;
    assert_eq!(code, 400);
    assert_eq!(c.get(leader, "x", "linearizable").await.1["value"], "2");

    // The trace records the election, commits and applies with digests.
    let events: Vec<TraceKind> = trace::Reader::open(&c.data_dir(leader).join("trace.jsonl"))
        .expect("trace")
        .map(|e| e.expect("a trace event").event.kind)
        .collect();
    assert!(matches!(events[0], TraceKind::Start { .. }));
    assert!(events.iter().any(|e| matches!(
        e,
        TraceKind::Role {
            role: trace::Role::Leader,
            ..
        }
    )));
    assert!(events.iter().any(|e| matches!(e, TraceKind::Commit { .. })));
    assert!(events
        .iter()
        .any(|e| matches!(e, TraceKind::Apply { digest, .. } if digest.len() == 16)));
}
