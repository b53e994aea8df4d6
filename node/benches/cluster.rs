//! Write throughput of one 3-node cluster at 1, 16 and 64 concurrent clients
//! (measures group commit: many writes share one fsync). It asserts nothing
//! about speed; docs/node.md holds what it measured.
//!
//! ```text
//! cargo bench -p node --bench cluster          # BENCH_SECS=N per level (default 5)
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use common::Cluster;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(write_throughput_at_1_16_64_clients());
}

async fn write_throughput_at_1_16_64_clients() {
    let c = Cluster::start(3, 3, &[]);
    let leader = c.wait_leader(Duration::from_secs(5)).await;
    let url = c.url(leader, "/kv/");
    let run_for = Duration::from_secs(
        std::env::var("BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(5),
    );
    for clients in [1usize, 16, 64] {
        let ok = Arc::new(AtomicU64::new(0));
        let errors = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for w in 0..clients {
            let (ok, errors, url) = (ok.clone(), errors.clone(), url.clone());
            let http = reqwest::Client::new();
            tasks.push(tokio::spawn(async move {
                let mut i = 0u64;
                while start.elapsed() < run_for {
                    let r = http
                        .put(format!("{url}c{w}-{}", i % 100))
                        .json(&serde_json::json!({"value": i.to_string()}))
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => ok.fetch_add(1, Ordering::Relaxed),
                        _ => errors.fetch_add(1, Ordering::Relaxed),
                    };
                    i += 1;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let n = ok.load(Ordering::Relaxed);
        println!(
            "clients={clients:3}  writes/s={:8.0}  ok={n}  errors={}  mean latency={:.2} ms",
            n as f64 / secs,
            errors.load(Ordering::Relaxed),
            secs * 1000.0 * clients as f64 / n.max(1) as f64
        );
    }
}
