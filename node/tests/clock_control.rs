//! `--clock-control`: `POST /debug/clock` really changes how fast the node's
//! Raft core is ticked (measured in ticks the node reports, not in wall-time
//! assertions), jumps hand out ticks at once, bad input is refused, and a
//! node without the flag has no such endpoint. Also `--seed`.

mod common;

use common::Cluster;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn clock(c: &Cluster, body: Option<Value>) -> (u16, Value) {
    let url = c.url(1, "/debug/clock");
    match body {
        None => c.send(c.http.get(url)).await,
        Some(b) => c.send(c.http.post(url).json(&b)).await,
    }
}

async fn ticks(c: &Cluster) -> u64 {
    let (code, body) = clock(c, None).await;
    assert_eq!(code, 200, "{body}");
    body["ticks"].as_u64().expect("ticks")
}

/// Ticks per second of real time over `span`.
async fn tick_rate(c: &Cluster, span: Duration) -> f64 {
    let (t0, n0) = (Instant::now(), ticks(c).await);
    tokio::time::sleep(span).await;
    let (t1, n1) = (Instant::now(), ticks(c).await);
    (n1 - n0) as f64 / (t1 - t0).as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_rate_and_jumps_change_the_ticks_the_core_gets() {
    let c = Cluster::start(1, 1, &["--clock-control", "--seed", "7"]);
    c.wait_leader(Duration::from_secs(5)).await;
    let normal = tick_rate(&c, Duration::from_millis(500)).await;
    let (code, body) = clock(&c, Some(json!({"rate": 4.0}))).await;
    assert_eq!((code, body["rate"].as_f64()), (200, Some(4.0)));
    let fast = tick_rate(&c, Duration::from_millis(500)).await;
    clock(&c, Some(json!({"rate": 0.25}))).await;
    let slow = tick_rate(&c, Duration::from_millis(500)).await;
    eprintln!("ticks/s: rate 1 {normal:.0}, rate 4 {fast:.0}, rate 0.25 {slow:.0}");
    // 10 ms ticks: about 100, 400 and 25 per second. The margins absorb a
    // loaded machine, where a late loop still catches its ticks up.
    assert!(fast > 2.5 * normal, "rate 4 gave {fast} vs {normal}");
    assert!(slow < 0.5 * normal, "rate 0.25 gave {slow} vs {normal}");

    clock(&c, Some(json!({"rate": 0.0}))).await;
    let before = ticks(&c).await;
    let (code, body) = clock(&c, Some(json!({"jump_ms": 200}))).await;
    assert_eq!(code, 200, "{body}");
    let deadline = Instant::now() + Duration::from_secs(2);
    while ticks(&c).await < before + 20 {
        assert!(Instant::now() < deadline, "a 200 ms jump gave no 20 ticks");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    for bad in [
        json!({"rate": -1}),
        json!({"rate": 1e9}),
        json!({"speed": 2}),
    ] {
        let (code, body) = clock(&c, Some(bad.clone())).await;
        assert_eq!(
            (code, body["outcome"].as_str()),
            (400, Some("failed")),
            "{bad}: {body}"
        );
    }
    assert!(
        c.log_text(1).contains("seed=7"),
        "the core was not seeded from --seed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_clock_control_there_is_no_clock_endpoint() {
    let c = Cluster::start(1, 1, &[]);
    c.wait_leader(Duration::from_secs(5)).await;
    let (code, _) = clock(&c, None).await;
    assert_eq!(code, 404);
    let (code, _) = clock(&c, Some(json!({"rate": 2.0}))).await;
    assert_eq!(code, 404);
}
