//! The results folder (docs/formats.md, "Results folder"):
//!
//! ```text
//! results/<test-name>/<YYYYMMDDTHHMMSS>/{test.json, history.jsonl, results.json, report.html, nodes/nN/}
//! results/<test-name>/latest → newest run
//! ```
//!
//! A run folder is created before anything else happens, so that even a run
//! that fails to start a node leaves its configuration and error behind.

use serde::Serialize;
use std::path::{Path, PathBuf};

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
}

fn io<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}

fn default_targets() -> String {
    "one".into()
}

/// The `test.json` of a run (internal-contracts.md), written before the run.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct TestConfig {
    /// The test name (the folder under the results dir).
    pub name: String,
    /// When the history clock started, Unix nanoseconds.
    pub start_unix_ns: u64,
    /// The seed every random decision derives from.
    pub seed: u64,
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
    /// Read consistency of client reads.
    pub read_consistency: String,
    /// Whether the nodes run pre-vote.
    pub pre_vote: bool,
    /// Whether the nodes run CheckQuorum.
    pub check_quorum: bool,
    /// Whether peer traffic goes through the proxy mesh.
    pub proxy: bool,
    /// Per-op client timeout, milliseconds.
    pub op_timeout_ms: u64,
    /// `one` or `primaries` (`--nemesis-targets`).
    #[serde(default = "default_targets")]
    pub nemesis_targets: String,
    /// Whether workers stick to the last node that answered them
    /// (`--follow-leader`) instead of their own node.
    #[serde(default)]
    pub follow_leader: bool,
    /// The node program (`null`: this binary as `harness node`).
    pub node_bin: Option<String>,
    /// The command line, for replay.
    pub argv: Vec<String>,
    /// Index of this run among `--test-count` runs (1-based).
    pub test_index: usize,
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
        let test_dir = results_dir.join(test_name);
        std::fs::create_dir_all(&test_dir).map_err(io("create", &test_dir))?;
        let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S").to_string();
        let mut path = test_dir.join(&stamp);
        let mut n = 1;
        loop {
            match std::fs::create_dir(&path) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    n += 1;
                    path = test_dir.join(format!("{stamp}-{n}"));
                }
                Err(e) => return Err(io("create", &path)(e)),
            }
        }
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

    /// Writes `results.json`.
    pub fn write_results(&self, results: &serde_json::Value) -> Result<(), StoreError> {
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
        b.write_results(&serde_json::json!({"valid": true}))
            .unwrap();
        let text = std::fs::read_to_string(b.path.join("results.json")).unwrap();
        assert!(text.contains("\"valid\": true"));
    }
}
