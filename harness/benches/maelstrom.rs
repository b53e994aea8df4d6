//! Maelstrom-protocol nodes through the router, two measurements:
//!
//! 1. **Our node** (`harness node --maelstrom`, 3 nodes, state in memory)
//!    under the `kv` workload with 1 and 10 clients, each client bound to
//!    one node round-robin (followers forward to the leader) and, again,
//!    with every client asking the leader. Prints ok ops/s, the ok latency
//!    percentiles and the router's own CPU per line it routed.
//! 2. **The router alone**: two trivial nodes (`tests/maelstrom/relay_node.py`
//!    copies stdin to stdout in whole chunks, readdressing each line to the
//!    other node), so that 64 lines bounce between them through the links
//!    as fast as the router and the pipes go. Prints routed lines per
//!    second and the router thread's CPU per line.
//!
//! The router's CPU is its thread's user + system time from
//! `/proc/self/task/*/stat` (clock-tick resolution), divided by the lines it
//! read from the nodes (node-to-node messages plus replies to clients).
//!
//! `cargo bench -p harness --bench maelstrom` (`SECONDS=N` per measurement,
//! default 5).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use harness::cluster::ProcessSpec;
use harness::history::EventType;
use harness::systems::maelstrom::{Host, MaelstromClient, Router, RouterConfig};
use serde_json::json;
use tokio::time::Instant;
use workloads::{Generator, Op, WorkloadConfig, WorkloadKind};

fn main() {
    let seconds: u64 = std::env::var("SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    println!("our node ×3 (in memory) through the router, kv workload, {seconds} s each");
    println!(
        "{:<8} {:<12} {:>9} {:>8} {:>8} {:>8} {:>8} {:>14}",
        "clients", "target", "ok ops/s", "fail", "info", "p50 ms", "p99 ms", "router µs/line"
    );
    for clients in [1, 10] {
        for to_leader in [false, true] {
            let sub = dir.path().join(format!("c{clients}-{to_leader}"));
            rt.block_on(our_node(&sub, clients, to_leader, seconds));
        }
    }
    println!();
    println!("router alone: 64 lines bouncing between two relay nodes, {seconds} s");
    rt.block_on(bounce(&dir.path().join("bounce"), seconds));
}

fn router_cpu_s() -> f64 {
    let tck: f64 = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0);
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    for t in tasks.flatten() {
        let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
        if comm.trim() != "maelstrom-route" {
            continue;
        }
        let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
        let after = stat.rsplit_once(") ").map_or("", |(_, a)| a);
        let f: Vec<f64> = after
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0.0))
            .collect();
        // utime and stime are fields 14 and 15 of stat, 12 and 13 after "comm) ".
        return (f[11] + f[12]) / tck;
    }
    panic!("no router thread found");
}

fn lines_read(r: &Router) -> u64 {
    let s = r.stats();
    s.routed + s.client_replies + s.late
}

async fn launch(dir: &Path, spec: impl Fn(u64) -> ProcessSpec) -> Arc<Host> {
    let router = Arc::new(Router::new(RouterConfig::new(vec![1, 2, 3], 1)).expect("router"));
    let host = Host::new(router);
    for id in 1..=3 {
        let mut s = spec(id);
        s.log_path = dir.join(format!("n{id}/node.log"));
        host.register(id, s);
    }
    host.start_all().await.expect("start");
    Arc::new(host)
}

async fn our_node(dir: &Path, clients: u64, to_leader: bool, seconds: u64) {
    let host = launch(dir, |_| ProcessSpec {
        program: env!("CARGO_BIN_EXE_harness").into(),
        args: vec!["node".into(), "--maelstrom".into()],
        log_path: Default::default(),
        env: Vec::new(),
    })
    .await;
    let router = host.router().clone();
    let warm = MaelstromClient::new(router.clone(), 99, Duration::from_secs(2));
    let ready = Instant::now() + Duration::from_secs(15);
    while warm.invoke(&write_op(), 1).await.kind != EventType::Ok {
        assert!(Instant::now() < ready, "no leader");
    }
    let leader = router.latest_leader().expect("leader").0;
    let workload = WorkloadConfig::new(WorkloadKind::Kv, 3);
    let (cpu0, lines0) = (router_cpu_s(), lines_read(&router));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for k in 0..clients {
        let client = MaelstromClient::new(router.clone(), k + 1, Duration::from_secs(2));
        let mut gen = Generator::new(&workload, k as usize).expect("generator");
        let node = if to_leader { leader } else { 1 + k % 3 };
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut fail, mut info) = (Vec::new(), Fails::new(), 0u64);
            while Instant::now() < deadline {
                let op = gen.next_op();
                let t = Instant::now();
                let c = client.invoke(&op, node).await;
                match c.kind {
                    EventType::Ok => {
                        lat.push(t.elapsed());
                        let seen = match &op {
                            Op::Read { .. } => c.value.as_str().map(String::from),
                            Op::Write { value, .. } => Some(value.clone()),
                            Op::Cas { to, .. } => Some(to.clone()),
                            Op::Append { .. } => None,
                        };
                        gen.observe(op.key(), seen.as_deref());
                    }
                    EventType::Fail => {
                        let why = format!("{} {}", op.kind().name(), c.error.unwrap_or_default());
                        *fail.entry(why).or_default() += 1;
                    }
                    _ => info += 1,
                }
            }
            (lat, fail, info)
        }));
    }
    let (mut lat, mut fail, mut info) = (Vec::new(), 0, 0);
    let mut reasons: std::collections::BTreeMap<String, u64> = Default::default();
    for t in tasks {
        let (l, f, i) = t.await.expect("worker");
        lat.extend(l);
        fail += f.values().sum::<u64>();
        info += i;
        for (k, v) in f {
            *reasons.entry(k).or_default() += v;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let (cpu, lines) = (router_cpu_s() - cpu0, lines_read(&router) - lines0);
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{:<8} {:<12} {:>9.0} {:>8} {:>8} {:>8.2} {:>8.2} {:>14.2}",
        clients,
        if to_leader { "leader" } else { "round-robin" },
        lat.len() as f64 / elapsed,
        fail,
        info,
        pct(0.5),
        pct(0.99),
        cpu * 1e6 / lines.max(1) as f64
    );
    if !reasons.is_empty() {
        println!("         fails: {reasons:?}");
    }
    let h = host.clone();
    tokio::task::spawn_blocking(move || h.shutdown(Duration::from_secs(2)))
        .await
        .expect("shutdown");
}

type Fails = std::collections::BTreeMap<String, u64>;

fn write_op() -> Op {
    Op::Write {
        key: "bench-ready".into(),
        value: "1".into(),
    }
}

async fn bounce(dir: &Path, seconds: u64) {
    let spec = |id: u64| ProcessSpec {
        program: "python3".into(),
        args: vec![
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/maelstrom/relay_node.py")
                .into(),
            format!("n{}", 3 - id).into(),
        ],
        log_path: Default::default(),
        env: Vec::new(),
    };
    let router = Arc::new(Router::new(RouterConfig::new(vec![1, 2], 1)).expect("router"));
    let host = Host::new(router.clone());
    for id in 1..=2 {
        let mut s = spec(id);
        s.log_path = dir.join(format!("n{id}/node.log"));
        host.register(id, s);
    }
    host.start_all().await.expect("start");
    // Each line is a request nobody answers: it enters n1 and bounces forever.
    let entries = json!([{"term": 1, "index": 1, "kind": "command", "data": "00".repeat(40)}]);
    for i in 0..64u64 {
        let body = json!({"type": "append_entries", "msg_id": i + 1, "term": 1,
                          "leader_id": "n1", "prev_log_index": 0, "prev_log_term": 0,
                          "entries": entries, "leader_commit": 0});
        let _ = router.call("c1", 1, body, Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu0, lines0, t0) = (router_cpu_s(), router.stats().routed, Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (cpu, lines) = (router_cpu_s() - cpu0, router.stats().routed - lines0);
    let elapsed = t0.elapsed().as_secs_f64();
    println!(
        "{:.0} lines/s routed, router thread CPU {:.2} µs/line ({:.0}% of a core)",
        lines as f64 / elapsed,
        cpu * 1e6 / lines.max(1) as f64,
        cpu / elapsed * 100.0
    );
    tokio::task::spawn_blocking(move || host.shutdown(Duration::from_secs(1)))
        .await
        .expect("shutdown");
}
