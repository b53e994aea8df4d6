//! `harness suite` end to end: a suite file of three tiny runs, one of
//! them invalid by construction (stale reads under partitions), gives the
//! right `suite.json`, a `junit.xml` that holds to the JUnit schema's
//! structure, a `summary.html` that draws in headless Chromium with the
//! failure first, a results index that links the suite, and exit 1;
//! `--fail-fast` stops after the invalid run. The invalid run is then
//! minimized (`harness check --minimize`): still invalid, and smaller.
//!
//! Needs Debian's `chromium` (`.ci/run` installs it).

#[path = "common/browser.rs"]
mod browser;
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::Value;

/// One suite at a time: the machine has few cores.
static ONE_SUITE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Valid, invalid by construction, valid: a few seconds of traffic each.
const SUITE: &str = r#"
name = "tiny"
time-limit = 2
seeds = [3]

[options]
nemesis-interval = 0.5

[[run]]
workload = "register"
nemesis = "none"
nodes = 3

[[run]]
workload = "register"
nemesis = "partition"
read-consistency = "stale"
nodes = 5
time-limit = 5

[[run]]
workload = "kv"
nemesis = "kill"
nodes = 3
"#;

fn harness(args: &[&str], cwd: &Path) -> (i32, String) {
    common::run_to_end(
        Command::new(env!("CARGO_BIN_EXE_harness"))
            .args(args)
            .current_dir(cwd),
        Duration::from_secs(240),
    )
}

/// Runs the suite; returns the exit code, the output and the suite folder.
fn run_suite(tmp: &Path, extra: &[&str]) -> (i32, String, PathBuf) {
    std::fs::write(tmp.join("tiny.toml"), SUITE).unwrap();
    let mut args = vec!["suite", "tiny.toml", "--results-dir", "results"];
    args.extend(extra);
    let (code, out) = harness(&args, tmp);
    let dir = suite_folder(tmp, "tiny", &out);
    (code, out, dir)
}

/// The one timestamped folder of suite `name` under `cwd/results`.
fn suite_folder(cwd: &Path, name: &str, out: &str) -> PathBuf {
    let suites = cwd.join("results/suites").join(name);
    std::fs::read_dir(&suites)
        .unwrap_or_else(|e| panic!("{}: {e}\n{out}", suites.display()))
        .next()
        .expect("a suite folder")
        .unwrap()
        .path()
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_suite_with_an_invalid_run_reports_it_everywhere_and_exits_1() {
    let _one = ONE_SUITE_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, dir) = run_suite(tmp.path(), &[]);
    assert_eq!(code, 1, "an invalid run makes the suite invalid:\n{out}");
    assert_eq!(
        out.lines().filter(|l| l.starts_with('[')).count(),
        3,
        "a line per run:\n{out}"
    );

    // suite.json: the matrix and every run.
    let s = json(&dir.join("suite.json"));
    assert_eq!(s["name"], "tiny");
    assert_eq!(s["finished"], true);
    assert_eq!(s["exit_code"], 1);
    assert_eq!(s["matrix"]["cells"].as_array().unwrap().len(), 3);
    assert_eq!(s["matrix"]["seeds"], serde_json::json!([3]));
    assert_eq!(
        s["counts"],
        serde_json::json!({"runs": 3, "valid": 2, "invalid": 1, "unknown": 0, "error": 0, "not_run": 0}),
        "{out}"
    );
    let runs = s["runs"].as_array().unwrap();
    let outcomes: Vec<&str> = runs
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["valid", "invalid", "valid"], "in run order");
    for r in runs {
        let run_dir = PathBuf::from(r["dir"].as_str().unwrap());
        let run_dir = if run_dir.is_absolute() {
            run_dir
        } else {
            tmp.path().join(run_dir)
        };
        assert_eq!(
            json(&run_dir.join("results.json"))["exit_code"],
            r["exit_code"]
        );
        assert_eq!(json(&run_dir.join("test.json"))["seed"], 3);
        assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
        let report = dir.join(r["report"].as_str().unwrap());
        assert!(
            report.is_file(),
            "{} from the suite folder",
            report.display()
        );
        assert_eq!(r["command"][1], "run");
    }
    let invalid = &runs[1];
    assert_eq!(invalid["test"], "register-partition-stale");
    assert_eq!(invalid["exit_code"], 1);
    assert!(invalid["faults"].as_u64().unwrap() > 0);
    let explanation = invalid["message"].as_str().unwrap();
    assert!(explanation.contains("read of r"), "{explanation}");

    check_junit(
        &std::fs::read_to_string(dir.join("junit.xml")).unwrap(),
        explanation,
    );
    check_summary_in_browser(&dir, tmp.path());

    // The results index links the suite.
    let index = std::fs::read_to_string(tmp.path().join("results/index.html")).unwrap();
    let stamp = dir.file_name().unwrap().to_string_lossy();
    assert!(
        index.contains(&format!("suites/tiny/{stamp}/summary.html")),
        "index.html links the suite"
    );

    // The invalid run, minimized: still invalid, and smaller.
    let run_dir = PathBuf::from(invalid["dir"].as_str().unwrap());
    let run_dir = tmp.path().join(run_dir);
    let (code, out) = harness(
        &["check", run_dir.to_str().unwrap(), "--minimize"],
        tmp.path(),
    );
    assert_eq!(code, 1, "{out}");
    let minimal = run_dir.join("minimal.jsonl");
    let ops = |p: &Path| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .filter(|l| l.contains("\"type\":\"invoke\"") && !l.contains("\"nemesis\""))
            .count()
    };
    let (before, after) = (ops(&run_dir.join("history.jsonl")), ops(&minimal));
    assert!(
        after >= 2 && after * 10 < before,
        "{after} of {before} ops:\n{out}"
    );
    let (code, out) = harness(&["check", minimal.to_str().unwrap()], tmp.path());
    assert_eq!(code, 1, "the minimal history is still invalid:\n{out}");
    assert!(out.contains("read of r"), "{out}");
    let minimal_report = run_dir.join("minimal/report.html");
    assert!(
        minimal_report.is_file(),
        "the report draws the minimal history"
    );
    let r = json(&run_dir.join("minimal/results.json"));
    assert_eq!(
        (r["valid"].clone(), r["ops"].as_u64()),
        (Value::Bool(false), Some(after as u64))
    );
}

/// The JUnit XML of Ant/Surefire, checked the way its schema constrains
/// it: the elements, where each may appear, their required attributes and
/// numbers, and the totals against the test cases.
fn check_junit(xml: &str, explanation: &str) {
    let doc = roxmltree::Document::parse(xml).expect("junit.xml is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let num = |n: roxmltree::Node, a: &str| -> f64 {
        n.attribute(a)
            .unwrap_or_else(|| panic!("<{}> has no {a}", n.tag_name().name()))
            .parse()
            .unwrap_or_else(|_| panic!("<{}> {a} is not a number", n.tag_name().name()))
    };
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(suites.len(), 1);
    let suite = suites[0];
    assert_eq!(suite.tag_name().name(), "testsuite");
    assert_eq!(suite.attribute("name"), Some("tiny"));
    let stamp = suite.attribute("timestamp").expect("a timestamp");
    assert!(
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H:%M:%S").is_ok(),
        "ISO 8601 without zone, as the schema's timestamp: {stamp}"
    );
    let mut cases = Vec::new();
    for child in suite.children().filter(|n| n.is_element()) {
        match child.tag_name().name() {
            "properties" => {
                for p in child.children().filter(|n| n.is_element()) {
                    assert_eq!(p.tag_name().name(), "property");
                    assert!(p.attribute("name").is_some() && p.attribute("value").is_some());
                }
            }
            "testcase" => cases.push(child),
            other => panic!("<testsuite> cannot hold <{other}>"),
        }
    }
    let (mut failures, mut errors, mut skipped) = (0, 0, 0);
    for c in &cases {
        assert!(c.attribute("name").is_some_and(|n| !n.is_empty()));
        assert!(c
            .attribute("classname")
            .is_some_and(|n| n.starts_with("tiny.")));
        assert!(num(*c, "time") >= 0.0);
        for r in c.children().filter(|n| n.is_element()) {
            match r.tag_name().name() {
                "failure" => {
                    failures += 1;
                    assert_eq!(r.attribute("type"), Some("invalid"));
                    assert_eq!(r.attribute("message"), Some(explanation));
                    assert!(r.text().unwrap_or("").contains("run alone: harness run"));
                }
                "error" => errors += 1,
                "skipped" => skipped += 1,
                other => panic!("<testcase> cannot hold <{other}>"),
            }
        }
    }
    assert_eq!(cases.len(), 3);
    assert_eq!((failures, errors, skipped), (1, 0, 0));
    for n in [root, suite] {
        assert_eq!(num(n, "tests"), cases.len() as f64);
        assert_eq!(num(n, "failures"), failures as f64);
        assert_eq!(num(n, "errors"), errors as f64);
        assert_eq!(num(n, "skipped"), skipped as f64);
        assert!(num(n, "time") > 0.0);
    }
}

/// The summary draws (a screenshot that is not blank), lists a row per
/// run with the invalid one first, and its links reach the reports.
fn check_summary_in_browser(dir: &Path, tmp: &Path) {
    let browser = browser::chromium();
    let page = dir.join("summary.html");
    let shot = tmp.join("summary.png");
    let p1 = tempfile::tempdir().unwrap();
    browser::run_chromium(
        &browser,
        p1.path(),
        &[
            "--window-size=1200,500".into(),
            format!("--screenshot={}", shot.display()),
        ],
        &page,
    );
    browser::assert_not_blank(&shot, 1200, 500);
    let p2 = tempfile::tempdir().unwrap();
    let dom = browser::run_chromium(&browser, p2.path(), &["--dump-dom".into()], &page);
    let rows: Vec<&str> = dom
        .split("data-outcome=\"")
        .skip(1)
        .map(|r| &r[..r.find('"').unwrap()])
        .collect();
    assert_eq!(rows, ["invalid", "valid", "valid"], "failures first");
    assert!(dom.contains("1 invalid"), "the counts are at the top");
    let hrefs: Vec<&str> = dom
        .split("href=\"")
        .skip(1)
        .map(|r| &r[..r.find('"').unwrap()])
        .collect();
    assert_eq!(hrefs.len(), 3, "a report link per run");
    for h in hrefs {
        assert!(dir.join(h).is_file(), "{h} resolves from the summary");
    }
}

#[test]
fn fail_fast_stops_after_the_invalid_run() {
    let _one = ONE_SUITE_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, dir) = run_suite(tmp.path(), &["--fail-fast"]);
    assert_eq!(code, 1, "{out}");
    let s = json(&dir.join("suite.json"));
    let outcomes: Vec<&str> = s["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["valid", "invalid", "not-run"], "{out}");
    assert!(s["stopped"].as_str().unwrap().contains("--fail-fast"));
    assert!(s["runs"][2]["dir"].is_null(), "the third run never started");
    assert!(!tmp.path().join("results/kv-kill").exists());
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<skipped message=\"not run: --fail-fast"),
        "{junit}"
    );
}

#[test]
fn a_bad_suite_file_is_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("bad.toml"),
        "[[run]]\nworkload = \"queue\"\n",
    )
    .unwrap();
    let (code, out) = harness(
        &["suite", "bad.toml", "--results-dir", "results"],
        tmp.path(),
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("bad.toml, run 1 (queue)") && out.contains("unknown workload"),
        "{out}"
    );
    assert!(!tmp.path().join("results").exists(), "nothing ran");
}

#[test]
fn rounds_draw_new_seeds_and_until_fail_stops_at_the_first_invalid_round() {
    let _one = ONE_SUITE_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let suite = |name: &str, extra: &str| {
        let text = format!(
            "name = \"{name}\"\ntime-limit = 1\nseeds = 1\n[[run]]\nworkload = \"register\"\n{extra}"
        );
        std::fs::write(tmp.path().join(format!("{name}.toml")), text).unwrap();
    };
    let record = |name: &str| json(&suite_folder(tmp.path(), name, "").join("suite.json"));

    suite("rounds", "nemesis = \"none\"\nnodes = 3");
    let args = [
        "suite",
        "rounds.toml",
        "--results-dir",
        "results",
        "--count",
        "2",
        "--seed",
        "100",
    ];
    let (code, out) = harness(&args, tmp.path());
    assert_eq!(code, 0, "{out}");
    let s = record("rounds");
    let rounds: Vec<(u64, u64)> = s["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["round"].as_u64().unwrap(), r["seed"].as_u64().unwrap()))
        .collect();
    assert_eq!(rounds, [(1, 100), (2, 101)], "a new seed each round");

    suite(
        "untilfail",
        "nemesis = \"partition\"\nread-consistency = \"stale\"\nnodes = 5\nnemesis-interval = 0.3\ntime-limit = 3",
    );
    let args = [
        "suite",
        "untilfail.toml",
        "--results-dir",
        "results",
        "--until-fail",
        "--count",
        "3",
        "--seed",
        "3",
    ];
    let (code, out) = harness(&args, tmp.path());
    let s = record("untilfail");
    let outcomes: Vec<&str> = s["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(code, 1, "{out}");
    assert_eq!(outcomes.last(), Some(&"invalid"), "{out}");
    assert!(outcomes[..outcomes.len() - 1].iter().all(|o| *o == "valid"));
    assert!(s["stopped"].as_str().unwrap().contains("--until-fail"));
    assert_eq!(s["matrix"]["rounds"], 3);
}

#[test]
fn the_budget_keeps_runs_from_starting_past_it() {
    let _one = ONE_SUITE_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("b.toml"),
        "time-limit = 2\nseeds = [1, 2]\n[matrix]\nworkloads = [\"register\"]\nnemesis = [\"none\"]\nnodes = [3]\n",
    )
    .unwrap();
    let args = [
        "suite",
        "b.toml",
        "--results-dir",
        "results",
        "--budget",
        "3",
    ];
    let (code, out) = harness(&args, tmp.path());
    assert_eq!(code, 0, "{out}");
    let s = json(&suite_folder(tmp.path(), "b", &out).join("suite.json"));
    assert_eq!(s["counts"]["runs"], 1, "{out}");
    assert_eq!(s["counts"]["not_run"], 1);
    assert_eq!(s["runs"][1]["message"], "the budget would be exceeded");
    assert_eq!(s["runs"][1]["test"], "register-none");
}

/// `parallel = 2`: two short runs at once, each in its own run folder (its
/// own ports: both complete valid), overlapping in time (the suite took
/// less than the two runs one after the other), and every record says the
/// runs shared the machine, as docs/suite.md promises: the printed header,
/// `suite.json` (`parallel`, `timing_note`), the summary and `junit.xml`
/// (`parallel` property).
#[test]
fn parallel_runs_overlap_in_their_own_folders_and_the_records_say_so() {
    let _one = ONE_SUITE_AT_A_TIME
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("par.toml"),
        "name = \"par\"\ntime-limit = 3\nseeds = [5]\nparallel = 2\n\
         [[run]]\nworkload = \"register\"\nnemesis = \"none\"\nnodes = 3\n\
         [[run]]\nworkload = \"kv\"\nnemesis = \"none\"\nnodes = 3\n",
    )
    .unwrap();
    let (code, out) = harness(
        &["suite", "par.toml", "--results-dir", "results"],
        tmp.path(),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 at a time"), "{out}");
    let dir = suite_folder(tmp.path(), "par", &out);
    let s = json(&dir.join("suite.json"));
    assert_eq!(s["parallel"], 2);
    let note = s["timing_note"].as_str().expect("a timing note");
    assert!(
        note.contains("2 at a time") && note.contains("differs from runs made one at a time"),
        "{note}"
    );
    assert_eq!(s["counts"]["runs"], 2, "{out}");
    assert_eq!(s["counts"]["valid"], 2, "{out}");
    let runs = s["runs"].as_array().unwrap();
    let dirs: Vec<PathBuf> = runs
        .iter()
        .map(|r| tmp.path().join(r["dir"].as_str().unwrap()))
        .collect();
    assert_ne!(dirs[0], dirs[1], "each run has its own folder");
    let mut tests = Vec::new();
    for (r, d) in runs.iter().zip(&dirs) {
        let results = json(&d.join("results.json"));
        assert_eq!(results["exit_code"], 0, "{}", d.display());
        assert!(r["ops"].as_u64().unwrap() > 0, "{r}");
        tests.push(json(&d.join("test.json"))["workload"].clone());
    }
    tests.sort_by_key(|t| t.to_string());
    assert_eq!(tests, ["kv", "register"], "one run of each cell");
    let sum: f64 = runs.iter().map(|r| r["duration_s"].as_f64().unwrap()).sum();
    let total = s["duration_s"].as_f64().unwrap();
    assert!(
        total < sum,
        "the runs overlapped: suite {total} s, runs {sum} s in all\n{out}"
    );
    let summary = std::fs::read_to_string(dir.join("summary.html")).unwrap();
    assert!(summary.contains("2 at a time"), "the summary has the note");
    let junit = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    assert!(
        junit.contains("<property name=\"parallel\" value=\"2\"/>"),
        "{junit}"
    );
}
