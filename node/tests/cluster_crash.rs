//! Crash safety with real processes: `kill -9` the leader, SIGSTOP/SIGCONT the
//! leader, and SIGTERM for a clean stop.

mod common;

use common::Cluster;
use nix::sys::signal::Signal;
use serde_json::json;
use std::time::{Duration, Instant};

/// Writes `n` keys through the leader and returns them (all acknowledged).
async fn acked_writes(c: &Cluster, prefix: &str, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for i in 0..n {
        let (k, v) = (format!("{prefix}{i}"), format!("v{i}"));
        c.put_acked(&k, &v, Duration::from_secs(5)).await;
        out.push((k, v));
    }
    out
}

/// Reads every key linearizably (retrying while the cluster settles: a new
/// leader answers 503 until it committed its first entry) and checks its value.
async fn assert_all_present(c: &Cluster, _leader: u64, writes: &[(String, String)]) {
    for (k, v) in writes {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let leader = c.wait_leader(Duration::from_secs(5)).await;
            let (code, body) = c.get(leader, k, "linearizable").await;
            if code == 200 {
                assert_eq!(body["value"], json!(v), "acknowledged write {k} lost");
                break;
            }
            assert!(Instant::now() < deadline, "cannot read {k}: {code} {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_leader_new_leader_fast_no_acked_write_lost_and_restart_catches_up() {
    let mut c = Cluster::start(3, 3, &[]);
    let old = c.wait_leader(Duration::from_secs(5)).await;
    let before = acked_writes(&c, "a", 30).await;

    let killed_at = Instant::now();
    c.kill9(old);
    let others: Vec<u64> = c.running();
    let new = c.wait_leader_among(&others, Duration::from_secs(5)).await;
    let failover = killed_at.elapsed();
    assert_ne!(new, old);
    assert!(
        failover < Duration::from_secs(2),
        "new leader took {failover:?}"
    );

    assert_all_present(&c, new, &before).await;
    let after = acked_writes(&c, "b", 20).await;

    // The killed node recovers from its data dir and catches up.
    c.spawn(old, Some("1,2,3"));
    let last = &after.last().unwrap();
    c.wait_stale_value(old, &last.0, &last.1, Duration::from_secs(5))
        .await;
    for (k, v) in before.iter().chain(&after) {
        assert_eq!(c.get(old, k, "stale").await.1["value"], json!(v));
    }
    let leader = c.wait_leader(Duration::from_secs(5)).await;
    assert_all_present(&c, leader, &after).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_leader_steps_down_after_sigcont_and_one_leader_remains() {
    let c = Cluster::start(3, 3, &[]);
    let old = c.wait_leader(Duration::from_secs(5)).await;
    let mut writes = acked_writes(&c, "p", 10).await;

    c.signal(old, Signal::SIGSTOP);
    let others: Vec<u64> = c.running().into_iter().filter(|&i| i != old).collect();
    let new = c.wait_leader_among(&others, Duration::from_secs(5)).await;
    assert_ne!(new, old);
    for i in 0..10 {
        let (k, v) = (format!("q{i}"), format!("w{i}"));
        let (code, body) = c.put(new, &k, &v).await;
        assert_eq!(code, 200, "{body}");
        writes.push((k, v));
    }
    // Longer than the election timeout (150-300 ms) in total.
    tokio::time::sleep(Duration::from_millis(400)).await;
    c.signal(old, Signal::SIGCONT);

    // Exactly one leader afterwards, and the ex-leader follows it.
    let deadline = Instant::now() + Duration::from_secs(5);
    let leader = loop {
        let mut leaders = Vec::new();
        let mut statuses = Vec::new();
        for id in c.running() {
            if let Some(s) = c.status(id).await {
                if s["role"] == "leader" {
                    leaders.push(id);
                }
                statuses.push(s);
            }
        }
        let agreed = statuses.len() == 3
            && statuses
                .iter()
                .all(|s| s["leader"] == statuses[0]["leader"] && s["term"] == statuses[0]["term"]);
        if leaders.len() == 1 && agreed {
            break leaders[0];
        }
        assert!(
            Instant::now() < deadline,
            "no single agreed leader: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_all_present(&c, leader, &writes).await;
    let last = writes.last().unwrap();
    c.wait_stale_value(old, &last.0, &last.1, Duration::from_secs(5))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_restart_keeps_state() {
    let mut c = Cluster::start(3, 3, &[]);
    c.wait_leader(Duration::from_secs(5)).await;
    let writes = acked_writes(&c, "t", 5).await;
    for id in [1, 2, 3] {
        assert!(c.stop(id), "node {id} did not exit cleanly on SIGTERM");
    }
    for id in [1, 2, 3] {
        c.spawn(id, Some("1,2,3"));
    }
    let leader = c.wait_leader(Duration::from_secs(5)).await;
    assert_all_present(&c, leader, &writes).await;
}
