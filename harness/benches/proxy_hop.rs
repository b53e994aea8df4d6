//! The latency one proxy hop adds, in isolation: two threads play ping-pong
//! with small frames over two one-way connections (as our nodes use them),
//! once dialing each other directly and once through a proxy mesh in `pass`
//! mode. The difference of the round trips is the cost of two hops, which
//! is what a single-client write pays on the leader-to-follower round trip.
//!
//! `cargo bench -p harness --bench proxy_hop` (`ROUNDS=N` to change the
//! count). Prints the mean and percentiles of each round-trip time.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use harness::proxy::ProxyMesh;

/// Bytes per ping: about an AppendEntries with one small entry.
const FRAME: usize = 128;

fn main() {
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("proxy hop: {rounds} round trips of {FRAME}-byte frames per mode");
    println!(
        "{:<7} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "mode", "mean µs", "p50 µs", "p90 µs", "p99 µs", "max µs"
    );
    // Alternate the modes so that neither always runs on a warmer machine.
    for pass in 0..2 {
        for proxied in [pass == 0, pass != 0] {
            let mut rtts = measure(&rt, proxied, rounds);
            print_row(if proxied { "proxy" } else { "direct" }, &mut rtts);
        }
    }
}

fn measure(rt: &tokio::runtime::Runtime, proxied: bool, rounds: usize) -> Vec<Duration> {
    let la = TcpListener::bind("127.0.0.1:0").expect("bind a");
    let lb = TcpListener::bind("127.0.0.1:0").expect("bind b");
    let targets: BTreeMap<u64, SocketAddr> = [
        (1, la.local_addr().expect("addr")),
        (2, lb.local_addr().expect("addr")),
    ]
    .into();
    let mesh = proxied.then(|| rt.block_on(ProxyMesh::bind(&targets, 1)).expect("mesh"));
    let dial = |from: u64, to: u64| -> SocketAddr {
        match &mesh {
            Some(m) => m.listen_addr(from, to).expect("link"),
            None => targets[&to],
        }
    };
    // A (node 1) writes on its link to B and reads B's link to it.
    let a_out = TcpStream::connect(dial(1, 2)).expect("dial 1→2");
    let (mut b_in, _) = lb.accept().expect("accept at b");
    let b_out = TcpStream::connect(dial(2, 1)).expect("dial 2→1");
    let (mut a_in, _) = la.accept().expect("accept at a");
    for s in [&a_out, &b_out] {
        s.set_nodelay(true).expect("nodelay");
    }
    let echo = std::thread::spawn(move || {
        let mut b_out = b_out;
        let mut buf = [0u8; FRAME];
        while b_in.read_exact(&mut buf).is_ok() {
            if b_out.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut a_out = a_out;
    let mut buf = [7u8; FRAME];
    let mut rtts = Vec::with_capacity(rounds);
    for i in 0..rounds + rounds / 10 {
        let t = Instant::now();
        a_out.write_all(&buf).expect("ping");
        a_in.read_exact(&mut buf).expect("pong");
        // The first tenth warms up connections and caches.
        if i >= rounds / 10 {
            rtts.push(t.elapsed());
        }
    }
    drop(a_out);
    echo.join().expect("echo thread");
    drop(mesh);
    rtts
}

fn print_row(mode: &str, rtts: &mut [Duration]) {
    rtts.sort_unstable();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let at = |q: f64| us(rtts[((rtts.len() - 1) as f64 * q).round() as usize]);
    let mean = rtts.iter().map(|d| us(*d)).sum::<f64>() / rtts.len() as f64;
    println!(
        "{:<7} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
        mode,
        mean,
        at(0.5),
        at(0.9),
        at(0.99),
        us(*rtts.last().expect("rounds > 0"))
    );
}
