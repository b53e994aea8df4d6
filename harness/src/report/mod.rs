//! Reports people can read: `report.html` for one run and `index.html` for
//! the results folder.
//!
//! A report is made only from the files of a run folder (`test.json`,
//! `history.jsonl`, `results.json`, `nodes/*/trace.jsonl`), so it can be
//! rendered again for old runs (`harness report RUN_DIR`) and for runs that
//! were interrupted; whatever is missing is said at the top of the page.
//!
//! The page is one self-contained HTML file (inline CSS, SVG and a small
//! script, no network): the verdict of each checker with the counterexample
//! zoomed in, a timeline of ops per process with fault bands and leader
//! lanes, latency and throughput plots with the same bands, and a latency
//! percentile table. Dense regions are aggregated at pixel resolution, so a
//! 100k-op run stays a few megabytes; the embedded op list lets the page
//! draw any window in full detail.
//!
//! [`synthetic::SyntheticRun`] writes a run folder in the same formats
//! without a cluster, for tests at scale and for the docs' screenshot.
//!
//! ```no_run
//! let html = harness::report::render_run(std::path::Path::new("results/kv/20261125T203149"))?;
//! let index = harness::report::render_index(std::path::Path::new("results"))?;
//! # Ok::<(), harness::report::ReportError>(())
//! ```

mod aggregate;
mod index;
mod model;
mod page;
mod svg;
pub mod synthetic;

use std::fs;
use std::path::{Path, PathBuf};

pub use index::{scan as scan_runs, RunEntry};
pub use model::{Band, FaultKind, LeaderSpan, Op, Outcome, RunModel};
pub use page::Verdict;

/// Why a report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The folder holds none of test.json, history.jsonl, results.json.
    #[error("{0} is not a run folder (no test.json, history.jsonl or results.json)")]
    NotARunDir(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Renders `run_dir/report.html` from the run's files and returns its path.
pub fn render_run(run_dir: &Path) -> Result<PathBuf, ReportError> {
    let started = std::time::Instant::now();
    let model = RunModel::load(run_dir)?;
    let html = page::render(&model);
    let out = run_dir.join("report.html");
    write_atomic(&out, html.as_bytes())?;
    tracing::info!(
        path = %out.display(),
        ops = model.ops.len(),
        bytes = html.len(),
        ms = started.elapsed().as_millis() as u64,
        "report written"
    );
    Ok(out)
}

/// Renders `results_dir/index.html` listing every run folder
/// (`results_dir/<test>/<YYYYMMDDTHHMMSS>/`), newest first.
pub fn render_index(results_dir: &Path) -> Result<PathBuf, ReportError> {
    let entries = index::scan(results_dir)?;
    let html = index::render(&entries);
    let out = results_dir.join("index.html");
    write_atomic(&out, html.as_bytes())?;
    tracing::info!(path = %out.display(), runs = entries.len(), "index written");
    Ok(out)
}

/// Writes via a temporary file and a rename, so a browser (or a concurrent
/// run updating the index) never sees half a page.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ReportError> {
    let io = |source| ReportError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension(format!("html.tmp{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(io)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(e)
    })
}
