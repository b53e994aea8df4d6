//! The report at any run length: writes a synthetic run folder (the test
//! helper `tests/common/synthetic.rs`, the on-disk formats of a real run),
//! renders its report as `harness report` does, and prints the page's and
//! the detail files' sizes, the render time and the peak memory of the
//! rendering alone. docs/report.md ("Figures") holds what it measured.
//!
//! `cargo bench -p harness --bench report_long`; `SYNTHETIC_OPS=N` (default
//! 14,400,000: an hour of our node's default run at 4,000 ops/s),
//! `SYNTHETIC_DIR=DIR` to write the run there and keep it (default: a
//! temporary folder, removed afterwards; the hour takes about 4 GB).

#[path = "../tests/common/synthetic.rs"]
mod synthetic;

use std::path::PathBuf;
use std::time::Instant;

use harness::bench::soak::disk_size;
use synthetic::SyntheticRun;

fn main() {
    let ops: usize = std::env::var("SYNTHETIC_OPS")
        .ok()
        .map(|s| s.parse().expect("SYNTHETIC_OPS: a number of ops"))
        .unwrap_or(14_400_000);
    let (dir, keep) = match std::env::var_os("SYNTHETIC_DIR") {
        Some(d) => (PathBuf::from(d), true),
        None => (
            std::env::temp_dir().join(format!("report-long-{}", std::process::id())),
            false,
        ),
    };
    println!("report_long: {ops} synthetic ops into {}", dir.display());
    let started = Instant::now();
    SyntheticRun {
        ops,
        rate: 4000,
        concurrency: 10,
        ..SyntheticRun::default()
    }
    .write(&dir)
    .expect("write the synthetic run");
    println!("written in {:.1} s", started.elapsed().as_secs_f64());

    reset_peak();
    let before = status_kib("VmRSS:");
    let started = Instant::now();
    let page = harness::report::render_run(&dir).expect("render the report");
    let secs = started.elapsed().as_secs_f64();
    let peak = status_kib("VmHWM:");
    println!("| ops | history.jsonl | report.html | report/ | render | peak RSS (rendering) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {ops} | {} | {} | {} | {secs:.1} s | {:.1} MB (RSS before: {:.1} MB) |",
        mb(disk_size(&dir.join("history.jsonl"))),
        mb(disk_size(&page)),
        mb(disk_size(&dir.join("report"))),
        peak as f64 / 1000.0 * 1.024,
        before as f64 / 1000.0 * 1.024,
    );
    if !keep {
        std::fs::remove_dir_all(&dir).expect("remove the synthetic run");
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` 5), so that the
/// peak measured is the rendering's, not the generator's.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn status_kib(field: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    harness::resources::status_kib(&text, field).unwrap_or(0)
}
