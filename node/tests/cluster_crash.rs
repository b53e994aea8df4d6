//! Crash safety with real processes: `kill -9` the leader, SIGSTOP/SIGCONT the
//! leader (also past its lease, with a lease read waiting), and SIGTERM for a
//! clean stop.

mod common;

use common::proxy::Mode;
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
    let mut leader = c.wait_leader(Duration::from_secs(5)).await;
    for (k, v) in writes {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let (code, body) = c.get(leader, k, "linearizable").await;
            if code == 200 {
                assert_eq!(body["value"], json!(v), "acknowledged write {k} lost");
                break;
            }
            assert!(Instant::now() < deadline, "cannot read {k}: {code} {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
            leader = c.wait_leader(Duration::from_secs(5)).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_writes_under_concurrent_load_survive_repeated_leader_kills() {
    use std::sync::{Arc, Mutex};
    let c = Arc::new(tokio::sync::Mutex::new(Cluster::start(3, 3, &[])));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let (http, urls) = {
        let g = c.lock().await;
        g.wait_leader(Duration::from_secs(5)).await;
        let urls: Vec<String> = (1..=3).map(|i| g.url(i, "/kv/")).collect();
        (g.http.clone(), urls)
    };
    let mut workers = Vec::new();
    for w in 0..8 {
        let (stop, acked, http, urls) = (stop.clone(), acked.clone(), http.clone(), urls.clone());
        workers.push(tokio::spawn(async move {
            let mut target = w % 3;
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (k, v) = (format!("w{w}-{n}"), format!("{n}"));
                let r = http
                    .put(format!("{}{k}", urls[target]))
                    .timeout(Duration::from_secs(2))
                    .json(&json!({ "value": v }))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().as_u16() == 200 => {
                        acked.lock().unwrap().push((k, v));
                        n += 1;
                    }
                    Ok(r) if r.status().as_u16() == 421 => {
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        target = match body["leader"].as_u64() {
                            Some(l) => (l - 1) as usize,
                            None => (target + 1) % 3,
                        };
                        n += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    _ => {
                        // Unknown outcome or node down: move on with a fresh key.
                        target = (target + 1) % 3;
                        n += 1;
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }));
    }
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut g = c.lock().await;
        let leader = g.wait_leader(Duration::from_secs(5)).await;
        g.kill9(leader);
        tokio::time::sleep(Duration::from_millis(300)).await;
        g.spawn(leader, Some("1,2,3"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let g = c.lock().await;
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 50,
        "too few writes acknowledged: {}",
        acked.len()
    );
    eprintln!("verifying {} acknowledged writes", acked.len());
    assert_all_present(&g, 0, &acked).await;
}

/// The lease's classic failure: a leader paused (a GC pause, SIGSTOP) for
/// longer than its lease, cut off from the others, wakes up with a read
/// already waiting and answers it from the lease although a new leader has
/// since committed a write. Nothing from its peers can warn it (its links
/// are stalled): only the clock can. Our loop catches up the ticks of the
/// wall time it missed before it looks at any request, so the read is
/// refused, never served stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_read_waiting_at_a_leader_paused_past_its_lease_is_never_stale() {
    let c = Cluster::with_proxies(3, &[]);
    let old = c.wait_leader(Duration::from_secs(5)).await;
    c.put_acked("x", "1", Duration::from_secs(5)).await;
    let (code, body) = c.get(old, "x", "lease").await;
    assert_eq!((code, &body["value"]), (200, &json!("1")), "{body}");

    c.signal(old, Signal::SIGSTOP);
    c.set_links_of(old, Mode::Stall);
    let others: Vec<u64> = c.running().into_iter().filter(|&i| i != old).collect();
    let new = c.wait_leader_among(&others, Duration::from_secs(5)).await;
    let (code, body) = c.put(new, "x", "2").await;
    assert_eq!(code, 200, "{body}");

    // The read reaches the paused node's socket, then the node resumes.
    let read = c.get(old, "x", "lease");
    let resume = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        c.signal(old, Signal::SIGCONT);
    };
    let ((code, body), ()) = tokio::join!(read, resume);
    assert_ne!(body["value"], json!("1"), "stale lease read after a pause");
    assert!(
        [421, 503].contains(&code),
        "unexpected answer {code}: {body}"
    );
}
