//! The planted bugs of the runtime and its storage are really there, seen
//! from outside as a client sees them: real node processes, each scenario run
//! on correct nodes and on nodes started with `--bug NAME`.

#![cfg(feature = "bugs")]

mod common;

use common::proxy::Mode;
use common::Cluster;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SECOND: Duration = Duration::from_secs(1);

/// Reads `key` linearizably through whoever leads, retrying while a new
/// leader settles.
async fn read_through_leader(c: &Cluster, key: &str) -> Value {
    let deadline = Instant::now() + 5 * SECOND;
    loop {
        let leader = c.wait_leader(5 * SECOND).await;
        let (code, body) = c.get(leader, key, "linearizable").await;
        if code == 200 {
            return body["value"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "cannot read {key}: {code} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One node acknowledges a write, is killed with SIGKILL at once and
/// restarted: what it then holds for the key.
async fn acked_write_after_kill9(extra: &[&str]) -> Value {
    let mut c = Cluster::start(1, 1, extra);
    let leader = c.wait_leader(5 * SECOND).await;
    let (code, body) = c.put(leader, "k", "v").await;
    assert_eq!(code, 200, "{body}");
    c.kill9(1);
    c.spawn(1, Some("1"));
    read_through_leader(&c, "k").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_before_fsync_loses_an_acknowledged_write_to_kill9() {
    assert_eq!(acked_write_after_kill9(&[]).await, json!("v"));
    assert_eq!(
        acked_write_after_kill9(&["--bug", "ack-before-fsync"]).await,
        Value::Null,
        "the write was acknowledged, then lost"
    );
}

/// The leader is cut off (every link of it blackholed, so nothing it sends
/// arrives) and a write goes to it. Returns the write's HTTP status, and (for
/// a 200) what the cluster holds for the key once that leader is dead.
async fn write_without_a_majority(extra: &[&str]) -> (u16, Option<Value>) {
    let mut args = vec!["--request-timeout-ms", "500"];
    args.extend_from_slice(extra);
    let mut c = Cluster::with_proxies(3, &args);
    let leader = c.wait_leader(5 * SECOND).await;
    c.put_acked("warm", "up", 5 * SECOND).await;
    c.set_links_of(leader, Mode::Blackhole);
    let (code, body) = c.put(leader, "k", "v").await;
    if code != 200 {
        assert_eq!(body["outcome"], "unknown", "{body}");
        return (code, None);
    }
    c.kill9(leader);
    (code, Some(read_through_leader(&c, "k").await))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ack_before_commit_acknowledges_a_write_no_majority_stores() {
    assert_eq!(write_without_a_majority(&[]).await, (503, None));
    assert_eq!(
        write_without_a_majority(&["--bug", "ack-before-commit"]).await,
        (200, Some(Value::Null)),
        "acknowledged, never committed, lost with the leader"
    );
}

/// A follower is cut off (every link of it blackholed) after it applied
/// k=1; the others commit k=2. Returns its answer to a linearizable read.
async fn cut_off_follower_read(extra: &[&str]) -> (u16, Value) {
    let c = Cluster::with_proxies(3, extra);
    let leader = c.wait_leader(5 * SECOND).await;
    let follower = c.running().into_iter().find(|&i| i != leader).unwrap();
    c.put_acked("k", "1", 5 * SECOND).await;
    c.wait_stale_value(follower, "k", "1", 5 * SECOND).await;
    c.set_links_of(follower, Mode::Blackhole);
    let others: Vec<u64> = c.running().into_iter().filter(|&i| i != follower).collect();
    let deadline = Instant::now() + 5 * SECOND;
    loop {
        let l = c.wait_leader_among(&others, 5 * SECOND).await;
        if c.put(l, "k", "2").await.0 == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "k=2 never acknowledged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, body) = c.get(follower, "k", "linearizable").await;
    (code, body["value"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_follower_read_answers_from_a_cut_off_follower() {
    let (code, _) = cut_off_follower_read(&[]).await;
    assert_eq!(code, 421, "a follower redirects linearizable reads");
    assert_eq!(
        cut_off_follower_read(&["--bug", "stale-follower-read"]).await,
        (200, json!("1")),
        "k=2 was acknowledged before this read began"
    );
}

#[test]
fn unknown_bug_names_are_refused_with_the_catalogue() {
    let out = std::process::Command::new(common::NODE_BIN)
        .args([
            "--id",
            "1",
            "--data-dir",
            "/nonexistent",
            "--client-listen",
            "127.0.0.1:1",
            "--peer-listen",
            "127.0.0.1:2",
            "--bug",
            "commit-everything",
        ])
        .output()
        .expect("run node");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown bug")
            && err.contains("ack-before-fsync")
            && err.contains("persistence"),
        "{err}"
    );
}
