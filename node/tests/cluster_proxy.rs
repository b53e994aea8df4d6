//! The peer transport through misbehaving TCP proxies (one per directed
//! link): a leader cut off by blackholing loses leadership and rejoins after
//! the heal; stalled and reset links are survived; no acknowledged write is lost.

mod common;

use common::proxy::Mode;
use common::Cluster;
use serde_json::json;
use std::time::{Duration, Instant};

/// Waits until all three nodes agree on one leader in one term.
async fn one_agreed_leader(c: &Cluster) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut st = Vec::new();
        for id in c.running() {
            if let Some(s) = c.status(id).await {
                st.push(s);
            }
        }
        let leaders: Vec<u64> = st
            .iter()
            .filter(|s| s["role"] == "leader")
            .map(|s| s["id"].as_u64().unwrap())
            .collect();
        if st.len() == 3
            && leaders.len() == 1
            && st
                .iter()
                .all(|s| s["leader"] == leaders[0] && s["term"] == st[0]["term"])
        {
            return leaders[0];
        }
        assert!(Instant::now() < deadline, "no agreed leader: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn check_all(c: &Cluster, writes: &[(String, String)]) {
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
async fn blackholed_stalled_and_reset_links_are_survived() {
    let c = Cluster::with_proxies(3, &[]);
    let old = one_agreed_leader(&c).await;
    let mut writes = Vec::new();
    for i in 0..10 {
        let (k, v) = (format!("a{i}"), format!("v{i}"));
        c.put_acked(&k, &v, Duration::from_secs(5)).await;
        writes.push((k, v));
    }

    // Blackhole every link of the leader, both directions: bytes vanish mid-frame.
    c.set_links_of(old, Mode::Blackhole);
    let others: Vec<u64> = c.running().into_iter().filter(|&i| i != old).collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    let new = loop {
        let l = c.wait_leader_among(&others, Duration::from_secs(5)).await;
        let (code, _) = c.put(l, "b0", "w0").await;
        if code == 200 {
            break l;
        }
        assert!(
            Instant::now() < deadline,
            "majority side never accepted a write"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    writes.push(("b0".into(), "w0".into()));
    // The isolated ex-leader cannot commit (an acknowledged write there would be a bug).
    let (code, body) = c.put(old, "isolated", "x").await;
    assert_ne!(code, 200, "isolated node acknowledged a write: {body}");

    // Heal: the stream of every link resynchronizes (redial) and one leader remains.
    c.set_all_links(Mode::Pass);
    let leader = one_agreed_leader(&c).await;
    check_all(&c, &writes).await;
    c.wait_stale_value(old, "b0", "w0", Duration::from_secs(5))
        .await;

    // Stall the leader's outbound links long enough for writes to time out, then reset everything.
    c.set_links_of(leader, Mode::Stall);
    tokio::time::sleep(Duration::from_millis(600)).await;
    c.set_all_links(Mode::Reset);
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.set_all_links(Mode::Pass);
    one_agreed_leader(&c).await;
    for i in 0..5 {
        let (k, v) = (format!("c{i}"), format!("v{i}"));
        c.put_acked(&k, &v, Duration::from_secs(5)).await;
        writes.push((k, v));
    }
    check_all(&c, &writes).await;
    let _ = new;
}
