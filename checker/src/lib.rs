//! Linearizability and Raft-safety checking of recorded histories.
//!
//! The checker answers one question about a run: could every operation the
//! clients saw have happened atomically, in an order that respects real time,
//! on the named sequential datatype? And, given node traces, did the Raft
//! cluster keep its safety promises? It reads our JSONL history
//! (`docs/formats.md`), Jepsen/Knossos `history.edn` and the two porcupine
//! log formats, detecting the format from the content.
//!
//! Use [`check_path`] on a run folder or a history file, or
//! [`check_history`] on an already parsed [`history::History`]. The result is
//! a [`CheckReport`]; its JSON form is what `harness check --json` prints.
//! A run's JSONL history of a register model is checked as it is read, in
//! memory bounded by the widths of its quiescent windows rather than its
//! length ([`stream`]); other inputs are parsed whole first.
//!
//! Three promises shape the design:
//! - **A verdict is never wrong.** `info` and never-completed operations may
//!   take effect at any time after their invocation or never; `fail` means
//!   "did not happen", except a `cas` that failed its precondition, which is
//!   checked as an observation (the value was not `from`).
//! - **Always within budget.** A time limit and a memory limit (memo-table
//!   bytes) turn an intractable search into the verdict `unknown`, naming the
//!   key and window that were too hard, instead of an OOM or a day-long run.
//! - **Readable violations.** An invalid verdict carries the smallest window
//!   that cannot be linearized, the longest linearizable prefix, the operation
//!   that could not be placed, the states it could have seen, and a sentence
//!   a person can follow.
//!
//! How it is fast: the history is split by key (P-compositionality) and each
//! key at quiescent points (no operation in flight), carrying the possible
//! states across each cut; keys are checked in parallel (rayon) and the first
//! violation stops the others. Unique-value register parts are decided by a
//! precedence graph ([`graph`]); everything else by a Wing & Gong / Lowe
//! search with memoization ([`search`]), after a cheap relaxed pass without
//! failed-cas observations when there are any ([`linear`]).

pub mod budget;
pub mod cli;
pub mod edn;
pub mod explain;
pub mod graph;
pub mod history;
pub mod linear;
pub mod minimize;
pub mod model;
pub mod parse;
pub mod pending;
pub mod raft;
pub mod reduce;
pub mod report;
pub mod search;
pub mod stream;
pub mod verdict;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use history::History;
pub use report::{
    CheckReport, Checkers, Counterexample, LinearizabilityResult, RaftSafetyResult, Validity,
    Violation,
};

/// Input formats the checker understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Our JSON-lines history (`history.jsonl`, docs/formats.md).
    Jsonl,
    /// Jepsen / Knossos `history.edn`.
    Edn,
    /// Porcupine's `jepsen/etcd_NNN.log` lines (`INFO  jepsen.util - …`).
    EtcdLog,
    /// Porcupine's `kv/cNN-*.txt` (one EDN map per line, get/put/append).
    PorcupineKv,
}

impl Format {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Edn => "edn",
            Format::EtcdLog => "etcd-log",
            Format::PorcupineKv => "porcupine-kv",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" | "json" => Ok(Format::Jsonl),
            "edn" | "knossos-edn" => Ok(Format::Edn),
            "etcd-log" | "jepsen-etcd-log" => Ok(Format::EtcdLog),
            "porcupine-kv" | "porcupine-kv-edn" | "kv-edn" => Ok(Format::PorcupineKv),
            other => Err(format!(
                "unknown format {other:?} (expected jsonl, edn, etcd-log or porcupine-kv)"
            )),
        }
    }
}

/// Sequential datatypes a history can be checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ModelKind {
    /// One register (or one per key): read / write.
    Register,
    /// One register (or one per key): read / write / cas.
    CasRegister,
    /// A map of registers with read / write / cas per key.
    Kv,
    /// Porcupine's key/value map of strings: get / put / append.
    AppendKv,
    /// Several registers updated by transactions of reads and writes.
    MultiRegister,
    /// A lock: acquire / release.
    Mutex,
}

impl ModelKind {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Register => "register",
            ModelKind::CasRegister => "cas-register",
            ModelKind::Kv => "kv",
            ModelKind::AppendKv => "append-kv",
            ModelKind::MultiRegister => "multi-register",
            ModelKind::Mutex => "mutex",
        }
    }
}

impl std::str::FromStr for ModelKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "register" => Ok(ModelKind::Register),
            "cas-register" | "cas" => Ok(ModelKind::CasRegister),
            "kv" => Ok(ModelKind::Kv),
            "append-kv" => Ok(ModelKind::AppendKv),
            "multi-register" => Ok(ModelKind::MultiRegister),
            "mutex" => Ok(ModelKind::Mutex),
            other => Err(format!(
                "unknown model {other:?} (expected register, cas-register, kv, append-kv, multi-register or mutex)"
            )),
        }
    }
}

/// How to check; `Default` gives the budgets used by `harness check`.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Force an input format instead of detecting it from the content.
    pub format: Option<Format>,
    /// Force a model instead of the one the format implies.
    pub model: Option<ModelKind>,
    /// The model's initial value (default: what the format implies, else null).
    pub init: Option<serde_json::Value>,
    /// Wall-clock budget of the linearizability check; past it the verdict is `unknown`.
    pub time_limit: Duration,
    /// Budget for the search's memo tables (bytes, summed over parallel parts).
    pub memory_limit_bytes: u64,
    /// Split the history by key (P-compositionality). Off only to measure the unsplit search.
    pub split_keys: bool,
    /// Cut each key's history at quiescent points. Off only for experiments.
    pub split_windows: bool,
    /// Use the precedence-graph fast path for unique-value register parts.
    pub use_graph: bool,
    /// Check append-kv parts on their reduced copy (see `reduce`). Off only
    /// to measure what the reduction saves.
    pub reduce: bool,
    /// Check parts in parallel on the rayon pool.
    pub parallel: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            format: None,
            model: None,
            init: None,
            time_limit: Duration::from_secs(60),
            memory_limit_bytes: 1 << 30,
            split_keys: true,
            split_windows: true,
            use_graph: true,
            reduce: true,
            parallel: true,
        }
    }
}

/// Why a check could not produce a verdict (exit code 3).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The input is malformed: names the file, the line and what was expected.
    #[error("{file}:{line}: expected {expected}, found {found}")]
    Parse {
        file: String,
        line: usize,
        expected: String,
        found: String,
    },
    /// The history breaks its own assumptions (not a linearizability verdict).
    #[error("{file}:{line}: invalid history: {message}")]
    InvalidHistory {
        file: String,
        line: usize,
        message: String,
    },
    /// The options do not fit the input (e.g. a model that cannot run these ops).
    #[error("{0}")]
    Usage(String),
}

/// A run file `formats` could not read: the same file, line and expectation.
impl From<formats::ReadError> for CheckError {
    fn from(e: formats::ReadError) -> Self {
        match e {
            formats::ReadError::Io { file, source } => CheckError::Io {
                path: file.into(),
                source,
            },
            formats::ReadError::Malformed {
                file,
                line,
                expected,
                found,
            } => CheckError::Parse {
                file,
                line,
                expected,
                found,
            },
        }
    }
}

impl CheckError {
    /// The process exit code for this error (always 3: could not run).
    pub fn exit_code(&self) -> i32 {
        3
    }
}

/// Checks a run folder (its `history.jsonl` and `nodes/*/trace.jsonl`) or a history file.
///
/// For a run folder the Raft-safety checker runs too when traces exist, and an
/// `observations.jsonl` of externally polled leader/term observations is read
/// if present (see [`raft`]).
pub fn check_path(path: &Path, opts: &CheckOptions) -> Result<CheckReport, CheckError> {
    let io = |source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        let hist_path = path.join(formats::history::FILE_NAME);
        let mut report = if hist_path.exists() {
            check_file(&hist_path, opts)?
        } else {
            CheckReport::empty_unknown("run folder has no history.jsonl")
        };
        let raft = raft::check_run_dir(path)?;
        if let Some(raft) = raft {
            report.set_raft(raft);
        }
        Ok(report)
    } else if path
        .file_name()
        .is_some_and(|n| n.to_string_lossy().ends_with(formats::trace::FILE_NAME))
    {
        let raft = raft::check_trace_files(&[path.to_path_buf()], &[])?;
        let mut report = CheckReport::empty_unknown("a trace file holds no client history");
        report.checkers.linearizability = None;
        report.set_raft(raft);
        Ok(report)
    } else {
        check_file(path, opts)
    }
}

fn check_file(path: &Path, opts: &CheckOptions) -> Result<CheckReport, CheckError> {
    // Our JSONL of a register model streams in bounded memory.
    if parse::detect_file(path, opts)? == Format::Jsonl {
        if let Some(report) = stream::check_file(path, opts)? {
            return Ok(report);
        }
    }
    let started = Instant::now();
    let history = parse::parse_file(path, opts)?;
    let parse_ms = started.elapsed().as_secs_f64() * 1e3;
    let mut report = check_history(&history, opts);
    report.parse_ms = parse_ms;
    Ok(report)
}

/// Checks an already parsed history for linearizability.
pub fn check_history(history: &History, opts: &CheckOptions) -> CheckReport {
    let started = Instant::now();
    let outcome = linear::check(history, opts);
    let check_ms = started.elapsed().as_secs_f64() * 1e3;
    report::build(history, outcome, check_ms)
}
