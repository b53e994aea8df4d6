//! The results folder (docs/formats.md, "Results folder"):
//!
//! ```text
//! results/<test-name>/<YYYYMMDDTHHMMSS>/{test.json, history.jsonl, results.json, report.html, nodes/nN/}
//! results/<test-name>/latest → newest run
//! ```
//!
//! A run folder is created before anything else happens, so that even a run
//! that fails to start a node leaves its configuration and error behind.

use checker::{CheckReport, Checkers, Counterexample, Validity};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

use crate::nemesis::Targets;
use crate::stats::Stats;
use crate::systems::SystemRecord;

/// Errors handling the results folder.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file or folder operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was attempted.
        action: &'static str,
        /// On which path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A JSON document could not be encoded.
    #[error("cannot encode {0}: {1}")]
    Json(&'static str, serde_json::Error),
    /// A JSON document of a run could not be read back.
    #[error("{path} is not what the harness writes: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

/// The `test.json` of a run (docs/formats.md, "Run configuration"),
/// written before the run starts.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TestConfig {
    /// The test name (the folder under the results dir).
    pub name: String,
    /// When the history clock started, Unix nanoseconds.
    pub start_unix_ns: u64,
    /// The seed every random decision derives from.
    pub seed: u64,
    /// The system under test: name, version, every option's value.
    pub system: SystemRecord,
    /// Cluster size.
    pub nodes: usize,
    /// Seconds of traffic.
    pub time_limit_s: f64,
    /// Client workers.
    pub concurrency: usize,
    /// Total ops/s (`null`: unlimited).
    pub rate: Option<f64>,
    /// Workload name.
    pub workload: String,
    /// Keys used by the run.
    pub keys: Vec<String>,
    /// Key distribution (many-key workloads).
    pub key_dist: String,
    /// Op mix.
    pub mix: String,
    /// Fault kinds.
    pub nemesis: Vec<String>,
    /// Seconds between fault decisions.
    pub nemesis_interval_s: f64,
    /// Which nodes faults hit.
    pub nemesis_targets: Targets,
    /// Read consistency of client reads (our level's name).
    pub read_consistency: String,
    /// Whether peer traffic goes through the proxies.
    pub proxy: bool,
    /// Per-op client timeout, milliseconds.
    pub op_timeout_ms: u64,
    /// Whether workers stick to the last node that answered them
    /// (`--follow-leader`) instead of their own node.
    pub follow_leader: bool,
    /// Read-only workers per node, besides `concurrency` (`--readers`).
    #[serde(default)]
    pub readers: usize,
    /// How often every node's status was polled, milliseconds.
    pub status_interval_ms: u64,
    /// The command line, for replay.
    pub argv: Vec<String>,
    /// Index of this run among `--test-count` runs (1-based).
    pub test_index: usize,
}

/// The `results.json` of a run (docs/formats.md, "Results"): the checkers'
/// report (what `harness check --json` prints) plus the harness's part.
/// The run writes it once, when the run ends; the report, the index and
/// `harness bench` read it back with [`RunResults::read`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunResults {
    /// The verdict; `null` when the run failed (see `error`) or was not checked.
    #[serde(default)]
    pub valid: Option<Validity>,
    /// A failed run's verdict of the checkers on what was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_valid: Option<Validity>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Client invocations in the history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ops: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkers: Option<Checkers>,
    #[serde(default)]
    pub counterexample: Option<Counterexample>,
    /// Statistics of the history (absent when it could not be read).
    #[serde(default)]
    pub stats: Option<Stats>,
    /// Why the harness could not do its job; then there is no verdict.
    #[serde(default)]
    pub error: Option<String>,
    /// Nodes that exited on their own during the run (each a finding: the
    /// run is invalid), with the last lines of their logs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_exits: Vec<crate::run::exits::NodeExit>,
    /// Stopped by Ctrl-C.
    #[serde(default)]
    pub interrupted: bool,
    /// The run's exit code.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// What the run cost the harness after its traffic (absent in folders
    /// written before it was recorded, and in `harness check`'s results).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<crate::resources::Resources>,
}

impl RunResults {
    /// The checkers' report as the checker part of the results. Every field
    /// is taken (the destructuring fails to compile if the report grows one
    /// this does not carry), so the two stay the same document.
    pub fn checked(report: CheckReport) -> Self {
        let CheckReport {
            valid,
            model,
            ops,
            parse_ms,
            check_ms,
            checkers,
            counterexample,
        } = report;
        RunResults {
            valid: Some(valid),
            model: Some(model),
            ops: Some(ops),
            parse_ms: Some(parse_ms),
            check_ms: Some(check_ms),
            checkers: Some(checkers),
            counterexample,
            ..RunResults::default()
        }
    }

    /// Marks the run failed: no verdict, and what the checkers found in the
    /// recorded part moves to `recorded_valid`.
    pub fn fail(&mut self, error: String) {
        self.recorded_valid = self.valid.take().or(self.recorded_valid);
        self.error = Some(error);
    }

    /// Reads a `results.json`.
    pub fn read(path: &Path) -> Result<Self, StoreError> {
        let text = std::fs::read(path).map_err(io("read", path))?;
        serde_json::from_slice(&text).map_err(|e| StoreError::Parse {
            path: path.display().to_string(),
            source: e,
        })
    }
}

/// Creates `parent/<YYYYMMDDTHHMMSS>` (a suffix `-2`, `-3`, … if one of
/// the same second exists), and `parent` first if need be: a run folder,
/// or a suite's.
pub fn create_stamped(parent: &Path) -> Result<PathBuf, StoreError> {
    std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S").to_string();
    let mut path = parent.join(&stamp);
    let mut n = 1;
    loop {
        match std::fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                n += 1;
                path = parent.join(format!("{stamp}-{n}"));
            }
            Err(e) => return Err(io("create", &path)(e)),
        }
    }
}

/// One run's folder.
#[derive(Debug, Clone)]
pub struct RunDir {
    /// The run folder itself.
    pub path: PathBuf,
}

impl RunDir {
    /// Creates `results_dir/<test_name>/<timestamp>` (a suffix `-2`, `-3`, …
    /// if a run of the same second exists) with its `nodes/` folder.
    pub fn create(results_dir: &Path, test_name: &str) -> Result<Self, StoreError> {
        let path = create_stamped(&results_dir.join(test_name))?;
        let nodes = path.join("nodes");
        std::fs::create_dir_all(&nodes).map_err(io("create", &nodes))?;
        let run = RunDir { path };
        run.point_latest()?;
        Ok(run)
    }

    /// `history.jsonl`.
    pub fn history(&self) -> PathBuf {
        self.path.join("history.jsonl")
    }

    /// `nodes/`: the cluster puts `nN/{node.log, trace.jsonl, data/}` here.
    pub fn nodes(&self) -> PathBuf {
        self.path.join("nodes")
    }

    /// Writes `test.json`.
    pub fn write_test(&self, cfg: &TestConfig) -> Result<(), StoreError> {
        self.write_json("test.json", cfg)
    }

    /// `observations.jsonl`: the status poller's answers.
    pub fn observations(&self) -> PathBuf {
        self.path.join(formats::observations::FILE_NAME)
    }

    /// `results.json`.
    pub fn results(&self) -> PathBuf {
        self.path.join("results.json")
    }

    /// Writes `results.json`.
    pub fn write_results(&self, results: &RunResults) -> Result<(), StoreError> {
        self.write_json("results.json", results)
    }

    /// Writes `name` atomically (temp file + rename): a reader never sees a
    /// half-written document.
    fn write_json<T: Serialize>(&self, name: &'static str, v: &T) -> Result<(), StoreError> {
        let mut text = serde_json::to_vec_pretty(v).map_err(|e| StoreError::Json(name, e))?;
        text.push(b'\n');
        let tmp = self.path.join(format!(".{name}.tmp"));
        let dst = self.path.join(name);
        std::fs::write(&tmp, text).map_err(io("write", &tmp))?;
        std::fs::rename(&tmp, &dst).map_err(io("rename", &dst))
    }

    /// Points `<test>/latest` at this run (relative link, replaced atomically).
    fn point_latest(&self) -> Result<(), StoreError> {
        let parent = self.path.parent().expect("a run dir has a test dir");
        let target = self.path.file_name().expect("a run dir has a name");
        let tmp = parent.join(".latest.tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).map_err(io("symlink", &tmp))?;
        let latest = parent.join("latest");
        std::fs::rename(&tmp, &latest).map_err(io("rename", &latest))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dirs_are_unique_and_latest_points_at_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let a = RunDir::create(dir.path(), "kv-all").unwrap();
        let b = RunDir::create(dir.path(), "kv-all").unwrap();
        assert_ne!(a.path, b.path);
        assert!(a.nodes().is_dir() && b.nodes().is_dir());
        let latest = std::fs::canonicalize(dir.path().join("kv-all/latest")).unwrap();
        assert_eq!(latest, std::fs::canonicalize(&b.path).unwrap());
        let name = b.path.file_name().unwrap().to_str().unwrap();
        assert_eq!(&name[8..9], "T", "{name}");
        let mut r = RunResults {
            valid: Some(Validity::Valid),
            exit_code: Some(0),
            ..RunResults::default()
        };
        b.write_results(&r).unwrap();
        let text = std::fs::read_to_string(b.results()).unwrap();
        assert!(text.contains("\"valid\": true"), "{text}");
        assert!(!text.contains("recorded_valid"), "{text}");
        r.fail("no leader".into());
        b.write_results(&r).unwrap();
        let back = RunResults::read(&b.results()).unwrap();
        assert_eq!(back.valid, None);
        assert_eq!(back.recorded_valid, Some(Validity::Valid));
        assert_eq!(back.error.as_deref(), Some("no leader"));
    }
}
