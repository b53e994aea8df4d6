//! etcd 3.4 through the identified proxy mesh, measured (needs `etcd` on
//! PATH: `apt-get install -y etcd-server`):
//!
//! 1. put throughput and latency at 1, 16 and 64 clients, through the mesh
//!    and with members dialling each other directly;
//! 2. the time from `kill -9` of the leader to the next acknowledged write;
//! 3. identification: accept-to-identified latency over every peer
//!    connection of a 3-member cluster whose links are reset again and
//!    again (etcd dials again each time), and how many connections went
//!    unidentified.
//!
//! `cargo bench -p harness --bench etcd`; `PARTS=throughput,kill,identify`
//! (default all), `SECONDS_PER_LOAD=N` (default 5), `KILLS=N` (default 7),
//! `RESETS=N` (default 40). The load generator
//! shares the machine with the three members: compare figures with each
//! other, not with other machines.

use std::time::Duration;

use harness::cluster::NodeId;
use harness::proxy::LinkMode;
use harness::systems::etcd::{EtcdBinary, EtcdCluster, EtcdClusterConfig, RaftState};
use tokio::time::Instant;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let binary = match EtcdBinary::locate(None) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!("etcd {} at {}", binary.version, binary.path.display());
    let parts = std::env::var("PARTS").unwrap_or_else(|_| "throughput,kill,identify".into());
    let want = |p: &str| parts.split(',').any(|x| x == p);
    rt.block_on(async move {
        if want("throughput") {
            throughput(&binary, env("SECONDS_PER_LOAD", 5)).await;
        }
        if want("kill") {
            kill_leader(&binary, env("KILLS", 7) as usize).await;
        }
        if want("identify") {
            identification(&binary, env("RESETS", 40) as usize).await;
        }
    });
}

async fn launch(binary: &EtcdBinary, proxies: bool) -> (EtcdCluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = EtcdClusterConfig::new(binary.clone(), dir.path(), 3);
    config.proxies = proxies;
    let c = EtcdCluster::launch(config).await.expect("launch");
    (c, dir)
}

/// The leader every running member follows, polled until there is one.
async fn leader(c: &EtcdCluster, ids: &[NodeId], within: Duration) -> (NodeId, u64) {
    let deadline = Instant::now() + within;
    loop {
        let mut st = Vec::new();
        for &id in ids {
            if let Ok(s) = c.status(id).await {
                st.push((id, s));
            }
        }
        if let Some((lid, l)) = st.iter().find(|(_, s)| s.state == RaftState::Leader) {
            if st.len() == ids.len()
                && st
                    .iter()
                    .all(|(_, s)| s.term == l.term && s.lead == Some(l.id))
            {
                return (*lid, l.term);
            }
        }
        assert!(Instant::now() < deadline, "no leader: {st:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pct(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn throughput(binary: &EtcdBinary, seconds: u64) {
    println!("\nput throughput, {seconds} s per load, every client → the leader");
    println!(
        "{:<8} {:>8} {:>9} {:>9} {:>9} {:>9} {:>7}",
        "mesh", "clients", "ok/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    for proxies in [true, false] {
        let (c, _dir) = launch(binary, proxies).await;
        let ids = c.node_ids();
        let (l, _) = leader(&c, &ids, Duration::from_secs(20)).await;
        for clients in [1usize, 16, 64] {
            let stop = Instant::now() + Duration::from_secs(seconds);
            let mut tasks = Vec::new();
            for w in 0..clients {
                let client = c.client(l).with_timeout(Duration::from_secs(5));
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut errors = 0u64;
                    let mut n = 0u64;
                    while Instant::now() < stop {
                        n += 1;
                        let key = format!("k{}", w % 8);
                        let value = format!("{w}.{n}");
                        let t = Instant::now();
                        match client.put(key.as_bytes(), value.as_bytes()).await {
                            Ok(_) => lat.push(t.elapsed()),
                            Err(_) => errors += 1,
                        }
                    }
                    (lat, errors)
                }));
            }
            let started = Instant::now();
            let mut lat = Vec::new();
            let mut errors = 0;
            for t in tasks {
                let (l, e) = t.await.expect("client task");
                lat.extend(l);
                errors += e;
            }
            let took = started.elapsed();
            lat.sort();
            println!(
                "{:<8} {:>8} {:>9.0} {:>9.2} {:>9.2} {:>9.2} {:>7}",
                if proxies { "proxied" } else { "direct" },
                clients,
                lat.len() as f64 / took.as_secs_f64(),
                ms(pct(&lat, 0.5)),
                ms(pct(&lat, 0.99)),
                ms(lat.last().copied().unwrap_or_default()),
                errors
            );
        }
        c.shutdown().await;
    }
}

/// Kill -9 of the leader while one writer per survivor puts in a loop;
/// the time to the first ok of a put invoked after the kill.
async fn kill_leader(binary: &EtcdBinary, kills: usize) {
    println!("\nkill -9 of the leader → next acknowledged write (through the identified mesh)");
    let (c, _dir) = launch(binary, true).await;
    let ids = c.node_ids();
    let mut gaps = Vec::new();
    for trial in 0..kills {
        let (l, term) = leader(&c, &ids, Duration::from_secs(30)).await;
        // Settle: a member restarted by the previous trial has caught up.
        c.client(l).put(b"k", b"settle").await.expect("settle put");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let survivors: Vec<NodeId> = ids.iter().copied().filter(|&i| i != l).collect();
        let killed_at = Instant::now();
        c.kill(l).expect("kill");
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Instant>(4);
        let mut writers = Vec::new();
        // Short timeouts, staggered: a put sent while there is no leader
        // waits out its timeout, so the first ok is late by up to the
        // timeout divided by the writers per member (25 ms here).
        for (&s, stagger) in survivors.iter().flat_map(|s| [(s, 0u64), (s, 25)]) {
            let client = c.client(s).with_timeout(Duration::from_millis(50));
            let tx = tx.clone();
            writers.push(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(stagger)).await;
                let mut n = 0u64;
                loop {
                    n += 1;
                    let v = format!("{trial}.{s}.{stagger}.{n}");
                    if client.put(b"k", v.as_bytes()).await.is_ok() {
                        let _ = tx.send(Instant::now()).await;
                        return;
                    }
                }
            }));
        }
        let acked = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a write within 30 s")
            .expect("writer");
        for w in writers {
            w.abort();
        }
        let gap = acked - killed_at;
        let (nl, nt) = leader(&c, &survivors, Duration::from_secs(10)).await;
        println!(
            "  trial {trial}: killed n{l} (term {term}), first ok after {:.0} ms; new leader n{nl} term {nt}",
            ms(gap)
        );
        gaps.push(gap);
        c.restart(l).expect("restart");
    }
    gaps.sort();
    println!(
        "  {} trials: median {:.0} ms, min {:.0} ms, max {:.0} ms",
        gaps.len(),
        ms(pct(&gaps, 0.5)),
        ms(gaps[0]),
        ms(*gaps.last().expect("trials"))
    );
    c.shutdown().await;
}

/// Resets every link for a moment, again and again: etcd dials its peers
/// again each time, and each dial is identified.
async fn identification(binary: &EtcdBinary, resets: usize) {
    println!(
        "\nidentification of peer connections (real etcd, {resets} rounds of reset-all then heal)"
    );
    let (c, _dir) = launch(binary, true).await;
    let ids = c.node_ids();
    leader(&c, &ids, Duration::from_secs(20)).await;
    let mesh = c.mesh().expect("mesh");
    for _ in 0..resets {
        let all: Vec<_> = mesh
            .matrix()
            .into_iter()
            .map(|(f, t, _)| (f, t, LinkMode::Reset))
            .collect();
        mesh.apply(&all).expect("apply");
        tokio::time::sleep(Duration::from_millis(100)).await;
        mesh.heal();
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    leader(&c, &ids, Duration::from_secs(30)).await;
    let st = mesh.identify_stats().expect("identified mesh");
    println!(
        "  identified {} connections, unidentified {}",
        st.identified, st.unidentified
    );
    for (what, samples) in [
        ("accept-to-identified", &st.latency_us),
        ("of which the lookup", &st.lookup_us),
    ] {
        let mut lat: Vec<Duration> = samples
            .iter()
            .map(|&us| Duration::from_micros(us as u64))
            .collect();
        lat.sort();
        println!(
            "  {what:<22} median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            ms(pct(&lat, 0.5)),
            ms(pct(&lat, 0.99)),
            ms(lat.last().copied().unwrap_or_default())
        );
    }
    let mut per_link = Vec::new();
    for (f, t, _) in mesh.matrix() {
        let s = mesh.stats(f, t).expect("link");
        per_link.push(format!("{f}->{t}: {} accepted", s.accepted));
    }
    println!("  {}", per_link.join(", "));
    c.shutdown().await;
}
