//! Reports people can read: `report.html` for one run and `index.html` for
//! the results folder.
//!
//! A report is made only from the files of a run folder (`test.json`,
//! `history.jsonl`, `results.json`, `nodes/*/trace.jsonl` or
//! `observations.jsonl`), so it can be rendered again for old runs
//! (`harness report RUN_DIR`) and for runs that were interrupted; whatever
//! is missing is said at the top of the page.
//!
//! It is made in three stages: `load` reads the files, `derive` turns
//! events into what the page draws, `render` writes the page. The history
//! and the traces stream through once, and memory holds only what is drawn
//! (pixel columns, latency cells, histograms, fault bands, leader
//! intervals), so an hour-long run takes no more memory than a minute-long
//! one, and its page is no larger. The page is one self-contained HTML file
//! (inline CSS, SVG and a small script, no network); beside it, `report/`
//! holds every op in small script files that the detail view loads for the
//! window it shows. `docs/report.md` describes the page and its figures.
//!
//! ```no_run
//! let html = harness::report::render_run(std::path::Path::new("results/kv/20261125T203149"))?;
//! let index = harness::report::render_index(std::path::Path::new("results"))?;
//! # Ok::<(), harness::report::ReportError>(())
//! ```

mod derive;
mod index;
mod load;
mod render;
mod verdict;

use std::fs;
use std::path::{Path, PathBuf};

use formats::history::Process;

pub use index::{results_dir_of, scan as scan_runs, scan_suites, RunEntry, SuiteEntry};
pub use render::css;
pub use render::detail::{CHUNK_DIR, DEFAULT_CHUNK_OPS};
pub use render::svg::{dur, esc};
pub use verdict::Verdict;

use derive::counterexample::{window, WindowSelection, WINDOW_MAX_OPS};
use derive::lanes::Columns;
use derive::leaders::{LeaderBuilder, LeaderSource};
use derive::ops::{Op, Pairer};
use derive::{
    safety_marks, Aggregator, CounterexampleView, HistoryAggregates, LeaderLanes, RunModel,
};
use load::history::HistoryScan;
use load::RunFiles;
use render::detail::ChunkWriter;

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

/// `harness report RUN_DIR|RESULTS_DIR`: re-renders a run's report (and the
/// index of its results folder), or the index of a results folder. Prints
/// what it wrote; returns the exit code (3 when nothing could be written).
pub fn command(path: &Path, out: &mut dyn std::io::Write) -> i32 {
    use crate::run::{EXIT_ERROR, EXIT_VALID};
    if !path.is_dir() {
        let _ = writeln!(out, "error: {} is not a folder", path.display());
        return EXIT_ERROR;
    }
    let is_run = ["test.json", "history.jsonl", "results.json"]
        .iter()
        .any(|f| path.join(f).exists());
    let written = if is_run {
        render_run(path).map(|p| {
            let _ = writeln!(out, "{}", p.display());
            if let Some(results) = results_dir_of(path) {
                if let Ok(p) = render_index(&results) {
                    let _ = writeln!(out, "{}", p.display());
                }
            }
        })
    } else {
        render_index(path).map(|p| {
            let _ = writeln!(out, "{}", p.display());
        })
    };
    match written {
        Ok(()) => EXIT_VALID,
        Err(e) => {
            let _ = writeln!(out, "error: {e}");
            EXIT_ERROR
        }
    }
}

/// How to render a run's report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenderOptions {
    /// Ops per file of the detail view (smaller files load faster when a
    /// window is dragged; more of them).
    pub chunk_ops: usize,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            chunk_ops: DEFAULT_CHUNK_OPS,
        }
    }
}

/// Renders `run_dir/report.html` (and the ops of its detail view into
/// `run_dir/report/`) from the run's files and returns the page's path.
pub fn render_run(run_dir: &Path) -> Result<PathBuf, ReportError> {
    render_run_with(run_dir, RenderOptions::default())
}

/// [`render_run`] with options.
pub fn render_run_with(run_dir: &Path, opts: RenderOptions) -> Result<PathBuf, ReportError> {
    let started = std::time::Instant::now();
    let files = RunFiles::read(run_dir)?;
    let tmp = run_dir.join(format!("{CHUNK_DIR}.tmp{}", std::process::id()));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ReportError::Io { path, source }
    };
    let mut chunks = ChunkWriter::create(&tmp, opts.chunk_ops).map_err(io(&tmp))?;
    let built = build_model(files, &mut chunks);
    let finished = chunks.finish().map_err(io(&tmp));
    let (mut model, (metas, fs_table)) = match (built, finished) {
        (Ok(m), Ok(c)) => (m, c),
        (Err(e), _) | (_, Err(e)) => {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    model.chunks = metas;
    model.chunk_fs = fs_table.names;
    let html = render::render(&model);
    let chunk_dir = run_dir.join(CHUNK_DIR);
    if chunk_dir.exists() {
        fs::remove_dir_all(&chunk_dir).map_err(io(&chunk_dir))?;
    }
    fs::rename(&tmp, &chunk_dir).map_err(io(&chunk_dir))?;
    let out = run_dir.join("report.html");
    write_atomic(&out, html.as_bytes())?;
    tracing::info!(
        path = %out.display(),
        ops = model.history.ops,
        bytes = html.len(),
        chunks = model.chunks.len(),
        ms = started.elapsed().as_millis() as u64,
        "report written"
    );
    Ok(out)
}

/// Reads the run folder in one pass over its history and one over its
/// traces (or observations), sending every op to `chunks`.
fn build_model(files: RunFiles, chunks: &mut ChunkWriter) -> Result<RunModel, ReportError> {
    let mut notes = files.notes.clone();
    let concurrency = files
        .test_field("concurrency")
        .and_then(serde_json::Value::as_u64);
    let mut cex = CounterexampleView::named_in(files.results.as_ref());
    let named = cex.as_ref().map(|c| c.named.clone()).unwrap_or_default();
    let mut sink = |op: &Op| chunks.add(op);
    let (history, scan) = match &files.history {
        Some(path) => {
            let end = load::history::end_time(path)?.unwrap_or(0);
            let mut agg = Aggregator::new(Columns::new(end, render::PLOT_COLS), concurrency, named);
            let scan = load::history::stream(path, |ev| agg.event(ev, &mut sink))?;
            if scan.events == 0 {
                notes.push("history.jsonl is empty: no op or fault was recorded.".into());
            }
            if scan.bad_lines > 0 {
                notes.push(format!(
                    "{} line(s) of history.jsonl could not be parsed and were skipped (truncated by an interrupt?).",
                    scan.bad_lines
                ));
            }
            (agg.finish(&mut sink), Some((path.clone(), scan)))
        }
        None => {
            let agg = Aggregator::new(Columns::new(0, render::PLOT_COLS), concurrency, named);
            (agg.finish(&mut sink), None)
        }
    };
    notes.extend(history.pairer_notes.iter().cloned());
    notes.extend(files.result_notes());
    if let Some(view) = &mut cex {
        view.named_ops = history.named.clone();
        view.window = window(&view.named_ops, history.run_end_ns);
        if let (Some(w), Some((path, scan))) = (view.window, &scan) {
            (view.window_ops, view.complete) = window_ops(path, scan, view, w, &history)?;
        }
    }
    let start = files.start_unix_ns();
    let leaders = leader_lanes(&files, &history, start, &mut notes)?;
    Ok(RunModel {
        dir: files.dir.clone(),
        trace_marks: safety_marks(files.results.as_ref(), start),
        test: files.test,
        results: files.results,
        notes,
        history,
        leaders,
        counterexample: cex,
        chunks: Vec::new(),
        chunk_fs: Vec::new(),
    })
}

/// The ops of the counterexample's window, read again from the stretch of
/// the history that holds them: an op overlapping `[a, b]` starts at most
/// the longest op duration before `a`.
fn window_ops(
    path: &Path,
    scan: &HistoryScan,
    view: &CounterexampleView,
    (a, b): (i64, i64),
    h: &HistoryAggregates,
) -> Result<(Vec<Op>, bool), ReportError> {
    let mut pairer = Pairer::default();
    let mut sel = WindowSelection::new((a, b), &view.named, view.key.clone(), WINDOW_MAX_OPS);
    load::history::stream_window(
        path,
        scan,
        a - h.max_solid_ns - 1,
        b + h.max_solid_ns,
        |ev| {
            if ev.process != Process::Nemesis {
                if let Some(op) = pairer.event(ev) {
                    sel.add(op);
                }
            }
        },
    )?;
    pairer.finish(|op| sel.add(op));
    Ok(sel.finish())
}

/// Leader lanes from the node traces; from `observations.jsonl` when the
/// run has no trace (traces win when there are both: they have every role
/// change, a poll only samples).
fn leader_lanes(
    files: &RunFiles,
    h: &HistoryAggregates,
    start_unix_ns: Option<i64>,
    notes: &mut Vec<String>,
) -> Result<LeaderLanes, ReportError> {
    let traces = load::roles::trace_files(&files.dir);
    let observations = files.dir.join(formats::observations::FILE_NAME);
    let source = if !traces.is_empty() {
        LeaderSource::Traces
    } else if observations.is_file() {
        LeaderSource::Observations
    } else {
        notes.push(
            "No node traces (nodes/*/trace.jsonl) and no observations.jsonl: the leader lane is empty."
                .into(),
        );
        return Ok(LeaderLanes::default());
    };
    let Some(start) = start_unix_ns else {
        notes.push(
            "test.json has no start_unix_ns: trace times cannot be placed on the timeline, \
             the leader lane is empty."
                .into(),
        );
        return Ok(LeaderLanes::default());
    };
    let mut b = LeaderBuilder::new(source, start, h.run_end_ns, &h.bands);
    match source {
        LeaderSource::Traces => {
            for (dir_name, path) in &traces {
                let (node, bad) = load::roles::stream_trace(dir_name, path, |r| {
                    b.role(&r.node, r.time_unix_ns, r.term, r.role)
                })?;
                b.node(&node);
                if bad > 0 {
                    notes.push(format!(
                        "{bad} unreadable line(s) in nodes/{dir_name}/trace.jsonl were skipped."
                    ));
                }
            }
        }
        LeaderSource::Observations => {
            let bad = load::roles::stream_observations(&observations, |r| {
                b.role(&r.node, r.time_unix_ns, r.term, r.role)
            })?;
            if bad > 0 {
                notes.push(format!(
                    "{bad} unreadable line(s) in observations.jsonl were skipped."
                ));
            }
        }
    }
    let (spans, nodes) = b.finish();
    Ok(LeaderLanes {
        source: Some(source),
        nodes,
        spans,
    })
}

/// Renders `results_dir/index.html` listing every run folder
/// (`results_dir/<test>/<YYYYMMDDTHHMMSS>/`), newest first.
pub fn render_index(results_dir: &Path) -> Result<PathBuf, ReportError> {
    let entries = index::scan(results_dir)?;
    let html = index::render(&entries, &index::scan_suites(results_dir));
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
    // Runs of one process may render at once (`harness suite --parallel`).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("html.tmp{}-{n}", std::process::id()));
    fs::write(&tmp, bytes).map_err(io)?;
    fs::rename(&tmp, path).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        io(e)
    })
}
