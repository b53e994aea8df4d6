//! `results/index.html`: every run, newest first, with its verdict and a
//! link to its report. Built from the run folders alone, so it can be
//! rebuilt at any time (`harness report RESULTS_DIR`).

use std::fmt::Write;
use std::fs;
use std::path::{Path, PathBuf};

use formats::history::{EventType, Process};
use serde_json::Value;

use super::render::svg::{dur, esc};
use super::verdict::Verdict;
use super::ReportError;

/// One run as listed in the index.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEntry {
    /// `<test>/<YYYYMMDDTHHMMSS>` relative to the results folder.
    pub rel: String,
    pub test: String,
    pub stamp: String,
    pub workload: Option<String>,
    pub nemesis: Vec<String>,
    pub duration_ns: Option<i64>,
    pub ops: Option<u64>,
    pub verdict: Verdict,
    pub has_report: bool,
    /// What is missing from the folder, for the index's notes column.
    pub missing: Vec<&'static str>,
}

/// Is `name` a run folder name: `YYYYMMDDTHHMMSS`, with a `-N` suffix
/// when several runs started in the same second?
pub fn is_run_stamp(name: &str) -> bool {
    let (stamp, suffix) = match name.split_once('-') {
        Some((s, n)) => (s, Some(n)),
        None => (name, None),
    };
    let b = stamp.as_bytes();
    b.len() == 15
        && b[8] == b'T'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit())
        && match suffix {
            None => true,
            Some(n) => !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()),
        }
}

/// `20261125T203149` → `2026-11-25 20:31:49` (and `-2` → ` #2`).
pub fn stamp_date(s: &str) -> String {
    if !is_run_stamp(s) {
        return s.to_string();
    }
    let mut out = format!(
        "{}-{}-{} {}:{}:{}",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    if let Some((_, n)) = s.split_once('-') {
        out.push_str(&format!(" #{n}"));
    }
    out
}

fn read_json(path: &Path) -> Option<Value> {
    serde_json::from_str(&fs::read_to_string(path).ok()?).ok()
}

/// Invokes and the last event time in a history, for runs without results
/// (lines `formats` rejects are skipped: the index shows what it can).
fn scan_history(path: &Path) -> Option<(u64, i64)> {
    let reader = formats::history::Reader::open(path).ok()?;
    let mut invokes = 0u64;
    let mut last = 0u64;
    for item in reader {
        let ev = match item {
            Ok(ev) => ev.event,
            Err(formats::ReadError::Malformed { .. }) => continue,
            Err(_) => break,
        };
        if ev.kind == EventType::Invoke && ev.process != Process::Nemesis {
            invokes += 1;
        }
        last = last.max(ev.time.unwrap_or(0));
    }
    Some((invokes, last as i64))
}

/// Reads what the index shows about one run folder.
pub fn run_entry(results_dir: &Path, dir: &Path) -> RunEntry {
    let stamp = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let folder_test = dir
        .parent()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let rel = dir
        .strip_prefix(results_dir)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_else(|_| format!("{folder_test}/{stamp}"));
    let test = read_json(&dir.join("test.json"));
    let results = crate::store::RunResults::read(&dir.join("results.json")).ok();
    let mut missing = Vec::new();
    if test.is_none() {
        missing.push("test.json");
    }
    if results.is_none() {
        missing.push("results.json");
    }
    let hist = dir.join("history.jsonl");
    if !hist.exists() {
        missing.push("history.jsonl");
    }
    let mut ops = results.as_ref().and_then(|r| r.ops).map(|n| n as u64);
    let mut duration_ns = results
        .as_ref()
        .and_then(|r| r.stats.as_ref())
        .map(|s| (s.duration_s * 1e9) as i64);
    if ops.is_none() || duration_ns.is_none() {
        if let Some((n, last)) = scan_history(&hist) {
            ops = ops.or(Some(n));
            duration_ns = duration_ns.or(Some(last));
        }
    }
    let t = |k: &str| test.as_ref().and_then(|t| t.get(k));
    RunEntry {
        rel,
        test: t("name")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or(folder_test),
        stamp,
        workload: t("workload").and_then(Value::as_str).map(str::to_string),
        nemesis: t("nemesis")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default(),
        duration_ns,
        ops,
        verdict: Verdict::of_results(results.as_ref()),
        has_report: dir.join("report.html").exists(),
        missing,
    }
}

/// The results folder a run folder belongs to, if it is one: the run
/// folder is named like a run (`YYYYMMDDTHHMMSS`), and its parent (the
/// test's folder) has the `latest` link every `harness run` makes, or its
/// grandparent already has an `index.html`. Only then does rendering a
/// run's report rebuild an index, so a run folder copied anywhere else
/// never gets an `index.html` written two levels above it.
pub fn results_dir_of(run_dir: &Path) -> Option<PathBuf> {
    let dir = run_dir.canonicalize().ok()?;
    let stamp = dir.file_name()?.to_string_lossy().to_string();
    let test_dir = dir.parent()?;
    let results = test_dir.parent()?;
    let has_latest =
        fs::symlink_metadata(test_dir.join("latest")).is_ok_and(|m| m.file_type().is_symlink());
    (is_run_stamp(&stamp) && (has_latest || results.join("index.html").is_file()))
        .then(|| results.to_path_buf())
}

/// Every run folder under `results_dir/<test>/<stamp>/`, newest first
/// (ties by test name). The `latest` links are skipped.
pub fn scan(results_dir: &Path) -> Result<Vec<RunEntry>, ReportError> {
    let rd = fs::read_dir(results_dir).map_err(|source| ReportError::Io {
        path: results_dir.to_path_buf(),
        source,
    })?;
    let mut dirs: Vec<PathBuf> = Vec::new();
    for test in rd.filter_map(|e| e.ok()) {
        let tp = test.path();
        if !tp.is_dir() {
            continue;
        }
        let Ok(runs) = fs::read_dir(&tp) else {
            continue;
        };
        for run in runs.filter_map(|e| e.ok()) {
            let name = run.file_name().to_string_lossy().to_string();
            let is_link = run.file_type().map(|t| t.is_symlink()).unwrap_or(false);
            if is_run_stamp(&name) && !is_link && run.path().is_dir() {
                dirs.push(run.path());
            }
        }
    }
    let mut entries: Vec<RunEntry> = dirs.iter().map(|d| run_entry(results_dir, d)).collect();
    entries.sort_by(|a, b| b.stamp.cmp(&a.stamp).then_with(|| a.test.cmp(&b.test)));
    Ok(entries)
}

/// One suite as listed in the index (from its `suite.json`).
#[derive(Debug, Clone)]
pub struct SuiteEntry {
    /// `suites/<name>/<YYYYMMDDTHHMMSS>` relative to the results folder.
    pub rel: String,
    pub stamp: String,
    pub record: crate::suite::record::SuiteRecord,
}

/// Every suite folder under `results_dir/suites/<name>/<stamp>/` with a
/// readable `suite.json`, newest first.
pub fn scan_suites(results_dir: &Path) -> Vec<SuiteEntry> {
    let mut v = Vec::new();
    let Ok(names) = fs::read_dir(results_dir.join("suites")) else {
        return v;
    };
    for name in names.filter_map(|e| e.ok()) {
        let Ok(stamps) = fs::read_dir(name.path()) else {
            continue;
        };
        for s in stamps.filter_map(|e| e.ok()) {
            let stamp = s.file_name().to_string_lossy().to_string();
            let path = s.path().join(crate::suite::record::FILE_NAME);
            if !is_run_stamp(&stamp) {
                continue;
            }
            if let Ok(record) = crate::suite::record::SuiteRecord::read(&path) {
                v.push(SuiteEntry {
                    rel: format!("suites/{}/{stamp}", name.file_name().to_string_lossy()),
                    stamp,
                    record,
                });
            }
        }
    }
    v.sort_by(|a, b| b.stamp.cmp(&a.stamp).then_with(|| a.rel.cmp(&b.rel)));
    v
}

fn render_suites(o: &mut String, suites: &[SuiteEntry]) {
    use crate::suite::record::Outcome;
    o.push_str(
        "<h2>Suites</h2><table class=\"runs\" id=\"suites\"><tr><th>date</th><th>suite</th><th>runs</th>\
         <th>invalid</th><th>error</th><th>unknown</th><th>valid</th><th>not run</th><th>verdict</th><th>summary</th></tr>",
    );
    for s in suites {
        let r = &s.record;
        let c = &r.counts;
        let verdict = match (r.finished, r.exit_code) {
            (true, Some(code)) => Outcome::of_exit(code).verdict().badge(),
            _ => "<span class=\"muted\">running or killed</span>".to_string(),
        };
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{verdict}</td><td><a href=\"{}/summary.html\">summary</a></td></tr>",
            esc(&stamp_date(&s.stamp)),
            esc(&r.name),
            c.runs,
            c.invalid,
            c.error,
            c.unknown,
            c.valid,
            c.not_run,
            esc(&s.rel)
        );
    }
    o.push_str("</table><h2>Runs</h2>");
}

/// Renders the index page for the given entries (and suites, if any).
pub fn render(entries: &[RunEntry], suites: &[SuiteEntry]) -> String {
    let mut o = String::new();
    let _ = write!(
        o,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Runs</title><style>{}</style></head><body>",
        super::render::css()
    );
    let count = |v: Verdict| entries.iter().filter(|e| e.verdict == v).count();
    let _ = write!(
        o,
        "<header><h1>Runs</h1><div class=\"sub\">{} runs · {} valid · {} invalid · {} unknown · {} error · {} without verdict</div></header>",
        entries.len(),
        count(Verdict::Valid),
        count(Verdict::Invalid),
        count(Verdict::Unknown),
        count(Verdict::Error),
        count(Verdict::Missing)
    );
    if !suites.is_empty() {
        render_suites(&mut o, suites);
    }
    if entries.is_empty() {
        o.push_str("<p class=\"muted\">No run folders (results/&lt;test&gt;/&lt;YYYYMMDDTHHMMSS&gt;/) yet.</p>");
    } else {
        o.push_str(
            "<table class=\"runs\" id=\"runs\"><tr><th>date</th><th>test</th><th>workload</th><th>nemesis</th>\
             <th>duration</th><th>ops</th><th>verdict</th><th>report</th><th>notes</th></tr>",
        );
        for e in entries {
            let report = if e.has_report {
                format!("<a href=\"{}/report.html\">report</a>", esc(&e.rel))
            } else {
                "<span class=\"muted\">not rendered</span>".to_string()
            };
            let notes = if e.missing.is_empty() {
                String::new()
            } else {
                format!("no {}", e.missing.join(", no "))
            };
            let _ = write!(
                o,
                "<tr class=\"r{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{report}</td><td class=\"muted\">{}</td></tr>",
                e.verdict.class().trim_start_matches('v'),
                esc(&stamp_date(&e.stamp)),
                esc(&e.test),
                esc(e.workload.as_deref().unwrap_or("?")),
                esc(&if e.nemesis.is_empty() {
                    "none".to_string()
                } else {
                    e.nemesis.join(", ")
                }),
                e.duration_ns.map(dur).unwrap_or_else(|| "?".into()),
                e.ops.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
                e.verdict.badge(),
                esc(&notes)
            );
        }
        o.push_str("</table>");
    }
    o.push_str("</body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_stamps_are_recognized() {
        assert!(is_run_stamp("20261125T203149"));
        assert!(!is_run_stamp("latest"));
        assert!(!is_run_stamp("20261125-203149"));
        assert!(!is_run_stamp("20261125T20314"));
        assert!(is_run_stamp("20261125T203149-2"));
        assert!(!is_run_stamp("20261125T203149-"));
        assert!(!is_run_stamp("20261125T203149-x"));
        assert_eq!(stamp_date("20261125T203149-2"), "2026-11-25 20:31:49 #2");
        assert_eq!(stamp_date("20261125T203149"), "2026-11-25 20:31:49");
    }

    #[test]
    fn only_run_folders_of_a_results_tree_have_a_results_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let run = root.join("results/kv/20261125T203149");
        fs::create_dir_all(&run).unwrap();
        assert_eq!(results_dir_of(&run), None, "no latest link, no index");
        #[cfg(unix)]
        std::os::unix::fs::symlink("20261125T203149", root.join("results/kv/latest")).unwrap();
        assert_eq!(results_dir_of(&run), Some(root.join("results")));
        assert_eq!(
            results_dir_of(&root.join("results/kv/latest")),
            Some(root.join("results")),
            "through the link too"
        );
        let other = root.join("elsewhere/copy/20261125T203149");
        fs::create_dir_all(&other).unwrap();
        assert_eq!(results_dir_of(&other), None);
        fs::write(root.join("elsewhere/index.html"), "").unwrap();
        assert_eq!(results_dir_of(&other), Some(root.join("elsewhere")));
        let named = root.join("results/kv/my-run");
        fs::create_dir_all(&named).unwrap();
        assert_eq!(results_dir_of(&named), None, "not named like a run");
    }
}
