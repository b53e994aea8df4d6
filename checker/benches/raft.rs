//! `cargo bench -p checker --bench raft`: time and peak RSS of the
//! Raft-safety check on generated traces of a long run (5 nodes; 5 M and
//! 50 M events by default).
//!
//! For each size the traces are written as a run folder
//! (`nodes/nN/trace.jsonl`, through `formats`' writer) and checked with
//! `checker::raft::check_run_dir`, the call `harness check` makes. The
//! same events are also checked straight from the generator (no files, no
//! parsing), to show what the check itself costs; and once with a divergent
//! apply planted in a restarted node's replay, to show it is found.
//!
//! "CPU" is user plus system time of all the process's threads during the
//! check (`/proc/self/stat`), less sensitive than wall time to other
//! processes sharing the cores. "peak RSS" is VmHWM after resetting it (`/proc/self/clear_refs` 5) just
//! before the check, so it is the check's own peak. The machine's load
//! average is printed before and after, since the 2 cores may be shared.
//!
//! Environment: `RAFT_BENCH_EVENTS=5000000,50000000` (total events per
//! size), `RAFT_BENCH_DIR=PATH` (write the run folders there and keep
//! them; default: a temporary folder, removed).

#[path = "../tests/support/soak.rs"]
mod soak;

use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::Instant;

use checker::raft::{self, Event, RaftOptions, Stamped, Stream};
use checker::{CheckError, RaftSafetyResult};
use formats::trace::{EntryKind, TraceEvent, TraceKind};
use soak::Soak;

const NODES: u64 = 5;

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// User plus system CPU seconds of this process (all threads) so far.
fn cpu_s() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which ends with ')'): utime and stime
    // are the 12th and 13th, in clock ticks of 1/100 s.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    f.iter().sum::<u64>() as f64 / 100.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// A restarted node's replay writes another digest at one index (see
/// `tests/raft_stream.rs`: node 3 is down for 130 000..150 000).
fn plant(e: TraceEvent) -> TraceEvent {
    match e.kind {
        TraceKind::Apply { index: 140_000, .. } => TraceEvent {
            kind: TraceKind::Apply {
                index: 140_000,
                term: soak::term_of(140_000),
                digest: "planted".into(),
                kind: EntryKind::Command,
            },
            ..e
        },
        _ => e,
    }
}

/// Writes the run folder; returns the bytes written.
fn write_run(dir: &Path, s: Soak, planted: bool) -> u64 {
    let mut bytes = 0;
    for n in 1..=s.nodes {
        let d = dir.join(format!("nodes/n{n}"));
        std::fs::create_dir_all(&d).expect("mkdir");
        let path = d.join(formats::trace::FILE_NAME);
        let file = std::fs::File::create(&path).expect("create");
        let mut w = formats::trace::Writer::new(BufWriter::with_capacity(1 << 20, file));
        for e in soak::node_trace(s, n) {
            let e = if planted && n == 3 { plant(e) } else { e };
            w.write(&e).expect("write");
        }
        w.flush().expect("flush");
        bytes += std::fs::metadata(&path).expect("stat").len();
    }
    bytes
}

struct Measured {
    ms: f64,
    cpu_s: f64,
    peak_mib: f64,
    result: RaftSafetyResult,
}

fn measure(f: impl FnOnce() -> Result<RaftSafetyResult, CheckError>) -> Measured {
    reset_hwm();
    let cpu = cpu_s();
    let t = Instant::now();
    let result = f().expect("check");
    let ms = t.elapsed().as_secs_f64() * 1e3;
    Measured {
        ms,
        cpu_s: cpu_s() - cpu,
        peak_mib: mib(status_kib("VmHWM:")),
        result,
    }
}

fn verdict(r: &RaftSafetyResult) -> String {
    match r.violations.first() {
        None => format!("{:?}", r.valid).to_lowercase(),
        Some(v) => format!(
            "{:?}: {} violation(s), first: {}",
            r.valid,
            r.violations.len(),
            v.message
        )
        .to_lowercase(),
    }
}

fn row(what: &str, s: Soak, m: &Measured, notes: &str) {
    println!(
        "| {what} | {} | {:.0} ms | {:.1} s | {:.0} MiB | {} | {notes} |",
        m.result.events,
        m.ms,
        m.cpu_s,
        m.peak_mib,
        verdict(&m.result)
    );
    assert_eq!(m.result.events as u64, s.nodes * s.events_per_node);
}

fn generated(s: Soak) -> impl Fn() -> Result<Vec<Stream<'static>>, CheckError> {
    move || {
        Ok((1..=s.nodes)
            .map(|n| Stream {
                name: format!("generated node {n}"),
                events: Box::new(soak::node_trace(s, n).enumerate().map(move |(k, e)| {
                    Ok(Stamped {
                        tiebreak: (n << 40) | k as u64,
                        event: Event::Trace(e),
                    })
                })),
            })
            .collect())
    }
}

fn main() {
    let sizes: Vec<u64> = std::env::var("RAFT_BENCH_EVENTS")
        .unwrap_or_else(|_| "5000000,50000000".into())
        .split(',')
        .map(|x| x.trim().parse().expect("RAFT_BENCH_EVENTS: numbers"))
        .collect();
    let keep = std::env::var_os("RAFT_BENCH_DIR").map(PathBuf::from);
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = keep.clone().unwrap_or_else(|| tmp.path().to_path_buf());

    println!("load average at start: {}", loadavg());
    println!(
        "| input | events | check time | CPU (all threads) | check peak RSS | verdict | notes |"
    );
    println!("|---|---:|---:|---:|---:|---|---|");
    for total in sizes {
        let s = Soak {
            nodes: NODES,
            events_per_node: total / NODES,
        };
        let m = measure(|| raft::check_inputs(&generated(s), &RaftOptions::default()));
        row(
            "generated in memory (no files)",
            s,
            &m,
            "the check without reading or parsing",
        );

        let dir = root.join(format!("raft-{total}"));
        let t = Instant::now();
        let bytes = write_run(&dir, s, false);
        let write_s = t.elapsed().as_secs_f64();
        let load = loadavg();
        let m = measure(|| raft::check_run_dir(&dir).map(|r| r.expect("traces")));
        row(
            "run folder, 5 trace files",
            s,
            &m,
            &format!(
                "{:.0} MiB of traces (written in {write_s:.0} s); load average before: {load}",
                bytes as f64 / 1048576.0
            ),
        );
        if keep.is_none() {
            std::fs::remove_dir_all(&dir).expect("cleanup");
        }

        let dir = root.join(format!("raft-{total}-planted"));
        write_run(&dir, s, true);
        let m = measure(|| raft::check_run_dir(&dir).map(|r| r.expect("traces")));
        row(
            "same, one divergent apply planted in a replay",
            s,
            &m,
            &format!("load average before: {}", loadavg()),
        );
        if keep.is_none() {
            std::fs::remove_dir_all(&dir).expect("cleanup");
        }
    }
    println!("load average at end: {}", loadavg());
}
