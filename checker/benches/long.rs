//! `cargo bench -p checker --bench long`: time and peak RSS of the
//! linearizability check of long kv histories (1.5 M and 15 M ops by
//! default), read from a file the way `harness check` reads a run's
//! `history.jsonl`.
//!
//! For each size the history is generated on the fly
//! (`tests/support/kv_soak.rs`: 8 keys, 10 processes, reads, writes and cas
//! 2:2:1 with unique values, 2 % of writes and cas timing out) and written
//! through `formats`' writer to a temporary file, then checked with
//! `checker::check_path`, once as generated (valid) and once with a stale
//! read planted at 90 % of the history (invalid). Sizes up to
//! `LONG_BENCH_IN_MEMORY` ops (default 1.5 M) are also checked in memory
//! (`parse::parse_file` then `check_history`, the path other formats take)
//! for comparison.
//!
//! "peak RSS" is VmHWM after resetting it (`/proc/self/clear_refs` 5) just
//! before the check, so it is the check's own peak; "CPU" is user plus
//! system time of the process during the check. The load average is
//! printed, since the 2 cores may be shared.
//!
//! Environment: `LONG_BENCH_OPS=1500000,15000000`,
//! `LONG_BENCH_CASES=valid,stale`, `LONG_BENCH_IN_MEMORY=1500000`,
//! `LONG_BENCH_TIME_LIMIT=60` (seconds,
//! the check's time limit; 60 is `harness check`'s default),
//! `LONG_BENCH_DIR=PATH` (write the histories there and keep them;
//! default: a temporary folder).

#[path = "../tests/support/kv_soak.rs"]
mod kv_soak;

use std::io::BufWriter;
use std::path::Path;
use std::time::Instant;

use checker::{check_history, check_path, parse, CheckOptions, CheckReport};
use kv_soak::{KvShape, KvSoak};

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
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of stat (11 and 12 after the name).
    (ticks(11) + ticks(12)) / 100.0
}

/// Writes the history; returns its size in bytes and the planted op, if any.
fn write(path: &Path, soak: KvSoak) -> (u64, Option<u64>) {
    let file = std::fs::File::create(path).expect("create history");
    let mut w = formats::history::Writer::new(BufWriter::with_capacity(1 << 20, file));
    let mut soak = soak;
    for e in soak.by_ref() {
        w.write(&e).expect("write history");
    }
    w.flush().expect("flush history");
    (std::fs::metadata(path).expect("stat").len(), soak.planted)
}

struct Measured {
    report: CheckReport,
    wall_s: f64,
    cpu_s: f64,
    peak_mib: f64,
}

fn measure(path: &Path, in_memory: bool) -> Measured {
    reset_hwm();
    let (t, c) = (Instant::now(), cpu_s());
    let opts = CheckOptions {
        time_limit: std::time::Duration::from_secs(
            std::env::var("LONG_BENCH_TIME_LIMIT")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(60),
        ),
        ..CheckOptions::default()
    };
    let report = if in_memory {
        let parsed = Instant::now();
        let h = parse::parse_file(path, &opts).expect("parse");
        let parse_ms = parsed.elapsed().as_secs_f64() * 1e3;
        let mut r = check_history(&h, &opts);
        r.parse_ms = parse_ms;
        r
    } else {
        check_path(path, &opts).expect("check")
    };
    Measured {
        report,
        wall_s: t.elapsed().as_secs_f64(),
        cpu_s: cpu_s() - c,
        peak_mib: status_kib("VmHWM:") as f64 / 1024.0,
    }
}

fn main() {
    let sizes: Vec<u64> = std::env::var("LONG_BENCH_OPS")
        .unwrap_or_else(|_| "1500000,15000000".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("LONG_BENCH_OPS: comma list of op counts")
        })
        .collect();
    let cases = std::env::var("LONG_BENCH_CASES").unwrap_or_else(|_| "valid,stale".into());
    let keep = std::env::var("LONG_BENCH_DIR").ok();
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = keep.as_deref().map(Path::new).unwrap_or(tmp.path());
    std::fs::create_dir_all(dir).expect("bench dir");
    println!("load average at start: {}", loadavg());
    println!();
    let in_memory_max: u64 = std::env::var("LONG_BENCH_IN_MEMORY")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_500_000);
    println!(
        "| ops | history | check | verdict | wall | parse (of wall) | CPU | peak RSS | load avg before |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for &ops in &sizes {
        for stale in [false, true] {
            let case = if stale { "stale" } else { "valid" };
            if !cases.split(',').any(|c| c.trim() == case) {
                continue;
            }
            let shape = KvShape {
                ops,
                ..KvShape::default()
            };
            let mut soak = KvSoak::new(shape);
            if stale {
                soak = soak.stale_at(ops / 10 * 9);
            }
            let path = dir.join(format!(
                "kv-{ops}{}.jsonl",
                if stale { "-stale" } else { "" }
            ));
            let (bytes, planted) = write(&path, soak);
            for in_memory in [false, true] {
                if in_memory && ops > in_memory_max {
                    continue;
                }
                let load = loadavg();
                let m = measure(&path, in_memory);
                let verdict = match (&m.report.counterexample, planted) {
                    (Some(c), Some(n)) => format!(
                        "{:?} (stale read planted at op {n}; counterexample op #{})",
                        m.report.valid,
                        c.op.map_or("?".into(), |o| o.to_string())
                    ),
                    _ => match &m.report.checkers.linearizability {
                        Some(l) if !l.reason.is_empty() => {
                            format!("{:?} ({})", m.report.valid, l.reason)
                        }
                        _ => format!("{:?}", m.report.valid),
                    },
                };
                println!(
                    "| {} | {:.0} MiB | {} | {} | {:.1} s | {:.1} s | {:.1} s | {:.0} MiB | {} |",
                    ops,
                    bytes as f64 / (1 << 20) as f64,
                    if in_memory { "in memory" } else { "streamed" },
                    verdict,
                    m.wall_s,
                    m.report.parse_ms / 1e3,
                    m.cpu_s,
                    m.peak_mib,
                    load
                );
            }
            if keep.is_none() {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    println!();
    println!("load average at end: {}", loadavg());
}
