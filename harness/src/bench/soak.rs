//! `harness bench --soak`: long default runs of `harness run`, each in a
//! child process of its own, so that what a nightly soak costs the harness
//! is measured on exactly the program a user runs. For every length it
//! reports the traffic (ok ops), what the run left on disk (history,
//! traces, report), the harness's peak memory during and after the traffic
//! and the time from the end of the traffic to the verdict (all recorded by
//! the run itself in `results.json`, see [`crate::resources`]), then the
//! time and peak memory of `harness check` over the same folder.
//!
//! Peak memory of `harness check` is polled from `/proc/<pid>/status`
//! (VmHWM never decreases, so the last sample before the exit is the peak
//! up to the polling interval).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::resources::{status_kib, Resources};
use crate::run::{EXIT_ERROR, EXIT_VALID};
use crate::store::RunResults;

/// One soak length's figures (`soak.json`).
#[derive(Debug, Clone, Serialize)]
pub struct SoakRow {
    /// Traffic time asked for, minutes.
    pub minutes: f64,
    /// The run's exit code (0 valid, 1 invalid, 2 unknown, 3 error).
    pub exit_code: Option<i32>,
    /// Ok client ops.
    pub ok_ops: u64,
    /// All client ops.
    pub ops: u64,
    /// `history.jsonl`, bytes.
    pub history_bytes: u64,
    /// Every node's `trace.jsonl` together, bytes.
    pub trace_bytes: u64,
    /// `report.html`, bytes (the page the browser loads).
    pub report_html_bytes: u64,
    /// `report/` (the detail windows loaded on demand), bytes.
    pub report_dir_bytes: u64,
    /// The run's own figures.
    pub resources: Option<Resources>,
    /// Wall time of the whole `harness run`, seconds.
    pub run_wall_s: f64,
    /// Wall time of `harness check RUN_DIR`, seconds.
    pub check_s: Option<f64>,
    /// Its exit code.
    pub check_exit: Option<i32>,
    /// Its peak resident memory, bytes.
    pub check_peak_rss_bytes: Option<u64>,
    /// The run folder.
    pub dir: String,
}

/// Runs `harness run --time-limit M×60` for each of `minutes`, then
/// `harness check` on each run folder; prints the table and saves
/// `RESULTS/bench/soak/soak.json`. Returns 0, or 3 if a run could not be
/// measured.
pub async fn run_soak(
    minutes: &[f64],
    seed: u64,
    results_dir: &Path,
    extra: &[String],
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> i32 {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            let _ = writeln!(out, "error: cannot find this program: {e}");
            return EXIT_ERROR;
        }
    };
    let soak_dir = results_dir.join("bench").join("soak");
    let _ = writeln!(
        out,
        "soak: harness run at its defaults for {} minute(s), seed {seed}; runs under {}",
        minutes
            .iter()
            .map(|m| format!("{m}"))
            .collect::<Vec<_>>()
            .join(", "),
        soak_dir.display()
    );
    let mut rows = Vec::new();
    let mut code = EXIT_VALID;
    for &m in minutes {
        if *stop.borrow() {
            break;
        }
        match soak_one(&exe, m, seed, &soak_dir, extra, stop.clone()).await {
            Ok(row) => {
                let _ = writeln!(out, "{}", format_row(&row));
                rows.push(row);
            }
            Err(e) => {
                let _ = writeln!(out, "{m} min: error: {e}");
                code = EXIT_ERROR;
            }
        }
    }
    let _ = writeln!(out, "{}", header());
    for r in &rows {
        let _ = writeln!(out, "{}", format_row(r));
    }
    let path = soak_dir.join("soak.json");
    match serde_json::to_vec_pretty(&rows) {
        Ok(text) if std::fs::write(&path, &text).is_ok() => {
            let _ = writeln!(out, "rows saved to {}", path.display());
        }
        _ => {
            let _ = writeln!(out, "warning: could not save {}", path.display());
        }
    }
    code
}

async fn soak_one(
    exe: &Path,
    minutes: f64,
    seed: u64,
    soak_dir: &Path,
    extra: &[String],
    stop: watch::Receiver<bool>,
) -> Result<SoakRow, String> {
    // A folder per length, so that its one run folder is found without
    // parsing the run's output.
    let results = soak_dir.join(format!("{minutes}min"));
    let mut args = vec![
        "run".to_string(),
        "--time-limit".into(),
        format!("{}", minutes * 60.0),
        "--seed".into(),
        seed.to_string(),
        "--results-dir".into(),
        results.display().to_string(),
    ];
    args.extend(extra.iter().cloned());
    std::fs::create_dir_all(&results).map_err(|e| format!("{}: {e}", results.display()))?;
    let log = results.join("run.log");
    let started = Instant::now();
    let (run_exit, _) = run_child(exe, &args, &log, stop.clone()).await?;
    let run_wall_s = started.elapsed().as_secs_f64();
    let dir = newest_run(&results)?;
    let res = RunResults::read(&dir.join("results.json")).map_err(|e| e.to_string())?;
    let (ok_ops, ops) = res.stats.as_ref().map_or((0, 0), |s| {
        (
            s.by_f.values().map(|o| o.ok).sum(),
            s.by_f.values().map(|o| o.total()).sum(),
        )
    });
    let mut row = SoakRow {
        minutes,
        exit_code: res.exit_code.or(run_exit),
        ok_ops,
        ops,
        history_bytes: disk_size(&dir.join("history.jsonl")),
        trace_bytes: traces_size(&dir.join("nodes")),
        report_html_bytes: disk_size(&dir.join("report.html")),
        report_dir_bytes: disk_size(&dir.join("report")),
        resources: res.resources,
        run_wall_s,
        check_s: None,
        check_exit: None,
        check_peak_rss_bytes: None,
        dir: dir.display().to_string(),
    };
    if *stop.borrow() {
        return Ok(row);
    }
    let started = Instant::now();
    let check_args = vec!["check".to_string(), dir.display().to_string()];
    let (exit, peak) = run_child(exe, &check_args, &results.join("check.log"), stop).await?;
    row.check_s = Some(started.elapsed().as_secs_f64());
    row.check_exit = exit;
    row.check_peak_rss_bytes = peak;
    Ok(row)
}

/// Runs this program with `args`, its output into `log`, polling its peak
/// memory; an interrupt is passed on as SIGINT, so that a run stops the way
/// Ctrl-C stops it (nodes down, history kept). Returns the exit code and
/// the last peak seen.
async fn run_child(
    exe: &Path,
    args: &[String],
    log: &Path,
    mut stop: watch::Receiver<bool>,
) -> Result<(Option<i32>, Option<u64>), String> {
    let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| e.to_string())?;
    let mut child = tokio::process::Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let pid = child.id().ok_or("the child exited at once")?;
    let status_path = PathBuf::from(format!("/proc/{pid}/status"));
    let mut peak = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            status = child.wait() => {
                let status = status.map_err(|e| e.to_string())?;
                return Ok((status.code(), peak));
            }
            _ = tick.tick() => {
                if let Ok(text) = std::fs::read_to_string(&status_path) {
                    if let Some(k) = status_kib(&text, "VmHWM:") {
                        peak = Some(k * 1024);
                    }
                }
            }
            _ = stop.changed() => {
                // SIGINT: the run's own interrupt handling tears its
                // cluster down and keeps the history.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGINT,
                );
            }
        }
    }
}

/// The newest run folder under a results folder (`<test>/latest`).
fn newest_run(results: &Path) -> Result<PathBuf, String> {
    let entries = std::fs::read_dir(results).map_err(|e| format!("{}: {e}", results.display()))?;
    entries
        .flatten()
        .map(|e| e.path().join("latest"))
        .filter(|p| p.join("results.json").is_file())
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .max()
        .ok_or_else(|| {
            format!(
                "no run folder with results.json under {}",
                results.display()
            )
        })
}

fn traces_size(nodes: &Path) -> u64 {
    std::fs::read_dir(nodes).map_or(0, |rd| {
        rd.flatten()
            .map(|e| disk_size(&e.path().join("trace.jsonl")))
            .sum()
    })
}

/// A file's size, or a folder's total (0 for what does not exist).
pub fn disk_size(p: &Path) -> u64 {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            std::fs::read_dir(p).map_or(0, |rd| rd.flatten().map(|e| disk_size(&e.path())).sum())
        }
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

fn mib(b: u64) -> String {
    format!("{:.1}", b as f64 / (1024.0 * 1024.0))
}

fn opt_mib(b: Option<u64>) -> String {
    b.map_or("-".into(), mib)
}

fn header() -> String {
    format!(
        "{:>6} {:>5} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9} {:>8} {:>9}",
        "min",
        "exit",
        "ok ops",
        "hist MiB",
        "trace MiB",
        "rss run",
        "rss chk",
        "rss rep",
        "verdict s",
        "report s",
        "page MiB",
        "rep/ MiB",
        "check s",
        "check rss"
    )
}

fn format_row(r: &SoakRow) -> String {
    let res = r.resources.clone().unwrap_or_default();
    format!(
        "{:>6} {:>5} {:>10} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9.1} {:>8} {:>8} {:>9} {:>8} {:>9}",
        r.minutes,
        r.exit_code.map_or("-".into(), |c| c.to_string()),
        r.ok_ops,
        mib(r.history_bytes),
        mib(r.trace_bytes),
        opt_mib(res.peak_rss_traffic_bytes),
        opt_mib(res.peak_rss_checked_bytes),
        opt_mib(res.peak_rss_report_bytes),
        res.verdict_s,
        res.report_s.map_or("-".into(), |s| format!("{s:.1}")),
        mib(r.report_html_bytes),
        mib(r.report_dir_bytes),
        r.check_s.map_or("-".into(), |s| format!("{s:.1}")),
        opt_mib(r.check_peak_rss_bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_run_is_found_through_latest() {
        let tmp = std::env::temp_dir().join(format!("soak-newest-{}", std::process::id()));
        let run = tmp.join("kv").join("20260101T000000");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("results.json"), "{}").unwrap();
        std::os::unix::fs::symlink("20260101T000000", tmp.join("kv").join("latest")).unwrap();
        assert_eq!(
            newest_run(&tmp).unwrap(),
            std::fs::canonicalize(&run).unwrap()
        );
        assert!(newest_run(&tmp.join("kv").join("20260101T000000")).is_err());
        std::fs::remove_dir_all(&tmp).unwrap();
    }

    #[test]
    fn sizes_add_up_over_a_tree() {
        let tmp = std::env::temp_dir().join(format!("soak-sizes-{}", std::process::id()));
        std::fs::create_dir_all(tmp.join("nodes/n1")).unwrap();
        std::fs::create_dir_all(tmp.join("nodes/n2")).unwrap();
        std::fs::write(tmp.join("nodes/n1/trace.jsonl"), b"abc").unwrap();
        std::fs::write(tmp.join("nodes/n2/trace.jsonl"), b"defg").unwrap();
        std::fs::write(tmp.join("nodes/n2/node.log"), b"xx").unwrap();
        assert_eq!(traces_size(&tmp.join("nodes")), 7);
        assert_eq!(disk_size(&tmp.join("nodes")), 9);
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
