//! Stage one of a report: reading a run folder, defensively, because a
//! report is most needed for runs that went wrong (interrupted by Ctrl-C,
//! a truncated last line, no `results.json`, no traces). What is missing
//! or unreadable becomes a sentence for the page, never a failure, unless
//! nothing of a run is there at all.

pub mod history;
pub mod roles;

use std::fs;
use std::path::{Path, PathBuf};

use formats::ReadError;
use serde_json::Value;

use super::ReportError;
use crate::store::RunResults;

/// The small files of a run folder and what is missing from it.
#[derive(Debug)]
pub struct RunFiles {
    /// The folder, resolved (through a `latest` link its own name is the
    /// run's stamp).
    pub dir: PathBuf,
    pub test: Option<Value>,
    pub results: Option<RunResults>,
    /// `history.jsonl`, if the folder has one.
    pub history: Option<PathBuf>,
    pub notes: Vec<String>,
}

impl RunFiles {
    /// Reads a run folder's `test.json` and `results.json`. Fails only if
    /// the folder holds none of test.json, history.jsonl, results.json.
    pub fn read(dir: &Path) -> Result<RunFiles, ReportError> {
        let test_path = dir.join("test.json");
        let hist_path = dir.join(formats::history::FILE_NAME);
        let res_path = dir.join("results.json");
        if !test_path.exists() && !hist_path.exists() && !res_path.exists() {
            return Err(ReportError::NotARunDir(dir.to_path_buf()));
        }
        let mut notes = Vec::new();
        let test = read_json_file(&test_path, "test.json", &mut notes);
        let results = if res_path.exists() {
            match RunResults::read(&res_path) {
                Ok(r) => Some(r),
                Err(e) => {
                    notes.push(format!("results.json is ignored: {e}"));
                    None
                }
            }
        } else {
            notes.push(
                "results.json is missing: the run did not reach its checkers (interrupted?); \
                 no verdict is shown."
                    .into(),
            );
            None
        };
        if !hist_path.exists() {
            notes.push("history.jsonl is missing: no ops to draw.".into());
        }
        Ok(RunFiles {
            dir: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
            test,
            results,
            history: Some(hist_path).filter(|p| p.exists()),
            notes,
        })
    }

    /// `test.json`'s field, if any.
    pub fn test_field(&self, key: &str) -> Option<&Value> {
        self.test.as_ref()?.get(key)
    }

    /// When the history clock started, in Unix ns (trace times are Unix ns).
    pub fn start_unix_ns(&self) -> Option<i64> {
        self.test_field("start_unix_ns").and_then(Value::as_i64)
    }

    /// Sentences about how the run ended, from `results.json`.
    pub fn result_notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        let r = self.results.as_ref();
        if r.is_some_and(|r| r.interrupted) {
            notes.push(
                "The run was interrupted (Ctrl-C): the history ends early and ops left open count as info."
                    .into(),
            );
        }
        if let Some(err) = r.and_then(|r| r.error.as_deref()) {
            notes.push(format!("The harness reported an error: {err}"));
        }
        notes
    }
}

/// Reads one JSON file; a missing or broken file becomes a note.
fn read_json_file(path: &Path, name: &str, notes: &mut Vec<String>) -> Option<Value> {
    match fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                notes.push(format!("{name} could not be parsed ({e}); it is ignored."));
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notes.push(format!("{name} is missing."));
            None
        }
        Err(e) => {
            notes.push(format!("{name} could not be read ({e})."));
            None
        }
    }
}

fn io_error(path: &Path, e: ReadError) -> ReportError {
    let source = match e {
        ReadError::Io { source, .. } => source,
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
    };
    ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}
