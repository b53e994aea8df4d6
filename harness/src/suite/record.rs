//! `suite.json`: the matrix and every run's outcome, rewritten after each
//! run (so an interrupted suite still says what it did). The summary page,
//! `junit.xml` and the results index are made from it alone.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::run::{CompletedRun, EXIT_INVALID, EXIT_UNKNOWN, EXIT_VALID};
use crate::store::RunResults;

/// The file name inside a suite folder.
pub const FILE_NAME: &str = "suite.json";

/// A run's outcome, as the suite counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    Invalid,
    Error,
    Unknown,
    Valid,
    NotRun,
}

impl Outcome {
    /// From a run's exit code.
    pub fn of_exit(code: i32) -> Outcome {
        match code {
            EXIT_VALID => Outcome::Valid,
            EXIT_INVALID => Outcome::Invalid,
            EXIT_UNKNOWN => Outcome::Unknown,
            _ => Outcome::Error,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Invalid => "invalid",
            Outcome::Error => "error",
            Outcome::Unknown => "unknown",
            Outcome::Valid => "valid",
            Outcome::NotRun => "not-run",
        }
    }

    /// The report's verdict style for it.
    pub fn verdict(self) -> crate::report::Verdict {
        use crate::report::Verdict;
        match self {
            Outcome::Invalid => Verdict::Invalid,
            Outcome::Error => Verdict::Error,
            Outcome::Unknown => Verdict::Unknown,
            Outcome::Valid => Verdict::Valid,
            Outcome::NotRun => Verdict::Missing,
        }
    }
}

/// The whole `suite.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SuiteRecord {
    pub name: String,
    /// The suite file, or `built-in nightly`.
    pub source: String,
    /// Local start time, `YYYY-MM-DDTHH:MM:SS±HH:MM`.
    pub started: String,
    pub duration_s: f64,
    /// False while it runs (or when it was killed).
    pub finished: bool,
    /// The suite's exit code once finished.
    pub exit_code: Option<i32>,
    /// Runs at once.
    pub parallel: usize,
    /// Said when runs shared the machine, which changes their timing.
    pub timing_note: Option<String>,
    /// Why it stopped before its planned end (fail-fast, until-fail,
    /// budget, interrupted).
    pub stopped: Option<String>,
    pub matrix: MatrixRecord,
    pub counts: Counts,
    pub runs: Vec<RunRecord>,
}

/// What the suite was asked to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatrixRecord {
    pub cells: Vec<CellRecord>,
    /// Seeds of the first round (later rounds draw new ones).
    pub seeds: Vec<u64>,
    /// Rounds asked for (`None`: until the first invalid run).
    pub rounds: Option<u64>,
    pub budget_s: Option<f64>,
}

/// One cell of the matrix.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CellRecord {
    pub id: usize,
    pub label: String,
    /// Its `harness run` flags.
    pub flags: Vec<String>,
    pub time_limit_s: f64,
}

/// Runs by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub runs: usize,
    pub valid: usize,
    pub invalid: usize,
    pub unknown: usize,
    pub error: usize,
    pub not_run: usize,
}

/// One run of the suite (or one it did not get to).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub cell: usize,
    pub label: String,
    pub round: u64,
    pub seed: u64,
    /// The test name (`register-partition-stale`).
    pub test: String,
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    /// Client invocations.
    pub ops: Option<usize>,
    /// Faults started.
    pub faults: u64,
    pub duration_s: f64,
    /// The run folder, as the harness wrote it.
    pub dir: Option<String>,
    /// Its `report.html`, relative to the suite folder.
    pub report: Option<String>,
    /// Invalid: the counterexample's explanation; error: the error;
    /// unknown: why; not run: why not.
    pub message: Option<String>,
    /// The command that runs it alone.
    pub command: Vec<String>,
}

impl RunRecord {
    /// The record of a finished run.
    #[allow(clippy::too_many_arguments)]
    pub fn finished(
        cell: usize,
        label: &str,
        round: u64,
        seed: u64,
        test: String,
        run: &CompletedRun,
        duration_s: f64,
        suite_dir: &Path,
        command: Vec<String>,
    ) -> RunRecord {
        let outcome = Outcome::of_exit(run.exit_code);
        let has_dir = !run.dir.as_os_str().is_empty();
        let report = run.dir.join("report.html");
        RunRecord {
            cell,
            label: label.to_string(),
            round,
            seed,
            test,
            outcome,
            exit_code: Some(run.exit_code),
            ops: run.results.ops,
            faults: crate::replay::fault_count(&run.results),
            duration_s,
            dir: has_dir.then(|| run.dir.display().to_string()),
            report: (has_dir && report.exists()).then(|| relative(suite_dir, &report)),
            message: message(outcome, &run.results),
            command,
        }
    }
}

/// What a person needs to know first about a run that did not pass.
fn message(outcome: Outcome, r: &RunResults) -> Option<String> {
    match outcome {
        Outcome::Invalid => r
            .counterexample
            .as_ref()
            .map(|c| c.explanation.clone())
            .or_else(|| {
                let v = r
                    .checkers
                    .as_ref()?
                    .raft_safety
                    .as_ref()?
                    .violations
                    .first()?;
                serde_json::to_string(v).ok()
            }),
        Outcome::Error => r.error.clone(),
        Outcome::Unknown => r
            .checkers
            .as_ref()
            .and_then(|c| c.linearizability.as_ref())
            .map(|l| l.reason.clone())
            .or_else(|| Some("a checker ran out of its budget".into())),
        Outcome::Valid | Outcome::NotRun => None,
    }
}

/// `to` as a path relative to the folder `from` (both made absolute), for
/// links that survive moving the results tree.
pub fn relative(from: &Path, to: &Path) -> String {
    let abs = |p: &Path| -> PathBuf {
        p.canonicalize().unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|d| d.join(p))
                .unwrap_or_else(|_| p.to_path_buf())
        })
    };
    let (from, to) = (abs(from), abs(to));
    let a: Vec<_> = from.components().collect();
    let b: Vec<_> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), a.len() - common).collect();
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().to_string()),
    );
    parts.join("/")
}

impl SuiteRecord {
    /// Recounts the runs.
    pub fn recount(&mut self) {
        let mut c = Counts::default();
        for r in &self.runs {
            match r.outcome {
                Outcome::Valid => c.valid += 1,
                Outcome::Invalid => c.invalid += 1,
                Outcome::Unknown => c.unknown += 1,
                Outcome::Error => c.error += 1,
                Outcome::NotRun => c.not_run += 1,
            }
        }
        c.runs = self.runs.len() - c.not_run;
        self.counts = c;
    }

    /// Reads a `suite.json`.
    pub fn read(path: &Path) -> Result<SuiteRecord, String> {
        let text = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Runs in the order a person reads them: failures first (invalid,
    /// error, unknown), then valid, then the ones not run; in run order
    /// within each.
    pub fn runs_failures_first(&self) -> Vec<&RunRecord> {
        let mut v: Vec<&RunRecord> = self.runs.iter().collect();
        v.sort_by_key(|r| r.outcome);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_links_climb_to_the_common_folder() {
        let t = tempfile::tempdir().unwrap();
        let suite = t.path().join("results/suites/s/20261201T010203");
        let run = t.path().join("results/kv-all/20261201T010204/report.html");
        std::fs::create_dir_all(&suite).unwrap();
        std::fs::create_dir_all(run.parent().unwrap()).unwrap();
        std::fs::write(&run, "").unwrap();
        assert_eq!(
            relative(&suite, &run),
            "../../../kv-all/20261201T010204/report.html"
        );
    }

    #[test]
    fn failures_sort_first() {
        let mut o = vec![
            Outcome::Valid,
            Outcome::NotRun,
            Outcome::Unknown,
            Outcome::Invalid,
            Outcome::Error,
        ];
        o.sort();
        assert_eq!(
            o,
            [
                Outcome::Invalid,
                Outcome::Error,
                Outcome::Unknown,
                Outcome::Valid,
                Outcome::NotRun
            ]
        );
    }
}
