//! Rendering reports from run folders: complete, invalid, interrupted, and
//! the results index.

use std::fs;
use std::path::Path;

use harness::report::synthetic::SyntheticRun;
use harness::report::{render_index, render_run, ReportError};
use serde_json::Value;

/// The JSON embedded for the page's script.
fn embedded_data(html: &str) -> Value {
    let start_tag = "<script type=\"application/json\" id=\"report-data\">";
    let start = html.find(start_tag).expect("embedded data") + start_tag.len();
    let end = start + html[start..].find("</script>").expect("end of data");
    serde_json::from_str(&html[start..end].replace("<\\/", "</")).expect("embedded data is JSON")
}

#[test]
fn invalid_run_report_shows_verdict_counterexample_bands_and_leaders() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("synthetic/20260101T000000");
    SyntheticRun {
        ops: 3000,
        ..SyntheticRun::default()
    }
    .write(&dir)
    .unwrap();
    let out = render_run(&dir).unwrap();
    assert_eq!(out, dir.join("report.html"));
    let html = fs::read_to_string(&out).unwrap();

    let results: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    let cex = &results["counterexample"];
    assert!(cex.is_object(), "the synthetic run has a counterexample");
    assert!(html.contains("<span class=\"badge v-invalid\">INVALID</span>"));
    assert!(html.contains("id=\"counterexample\""));
    assert!(html.contains("id=\"cex-svg\""));
    let explanation = cex["explanation"].as_str().unwrap();
    assert!(
        html.contains(&harness_escape(explanation)),
        "explanation shown"
    );
    for idx in cex["ops"].as_array().unwrap() {
        assert!(
            html.contains(&format!("<td>#{idx}</td>")),
            "op #{idx} listed"
        );
    }
    // Highlighted on the overview and drawn in the zoomed window.
    assert_eq!(html.matches("class=\"cex-mark").count(), 3);
    assert!(html.contains("class=\"op o-ok cex cex-op\""));
    // Fault bands with labels, leader lanes with terms.
    assert!(html.contains("class=\"band-label b-"));
    assert!(html.contains(">leaders</text>"));
    assert!(html.contains("leader in term 1"));
    // Plots and table.
    for id in ["overview", "latency-plot", "throughput-plot"] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}");
    }
    assert!(html.contains("<th>p99.9</th>"));
    // Self-contained: nothing loaded from elsewhere.
    assert!(!html.contains(" src="), "no external scripts or images");
    assert!(!html.contains("<link"), "no external stylesheets");
    assert!(!html.contains("http://") && !html.contains("https://"));

    let data = embedded_data(&html);
    let invokes = formats::history::Reader::open(&dir.join("history.jsonl"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().event.kind == formats::history::EventType::Invoke)
        .count();
    assert_eq!(data["ops"].as_array().unwrap().len(), invokes);
    assert_eq!(data["cexop"], cex["op"]);
    assert!(data["cexw"].is_array());
}

/// The page escapes text the way `report::svg::esc` does.
fn harness_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[test]
fn interrupted_run_without_results_or_traces_says_what_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("kv/20260101T000000");
    SyntheticRun {
        ops: 500,
        violation: false,
        traces: false,
        results: false,
        ..SyntheticRun::default()
    }
    .write(&dir)
    .unwrap();
    // Ctrl-C mid-write: a truncated last line and an invoke without completion.
    let mut hist = fs::read_to_string(dir.join("history.jsonl")).unwrap();
    hist.push_str("{\"index\": 99999, \"time\": 1, \"process\": 777, \"type\": \"invoke\", \"f\": \"read\"}\n");
    hist.push_str("{\"index\": 100000, \"time\": 2, \"proc");
    fs::write(dir.join("history.jsonl"), hist).unwrap();

    let html = fs::read_to_string(render_run(&dir).unwrap()).unwrap();
    assert!(html.contains("id=\"missing\""));
    assert!(html.contains("results.json is missing"));
    assert!(html.contains("No node traces"));
    assert!(html.contains("1 line(s) of history.jsonl could not be parsed"));
    assert!(html.contains("1 op(s) never completed"));
    assert!(html.contains("badge v-missing"));
    assert!(!html.contains("id=\"counterexample\""));
}

#[test]
fn history_alone_is_enough_for_a_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("x/20260101T000000");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("history.jsonl"),
        "{\"index\":0,\"time\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":\"1\"}\n\
         {\"index\":1,\"time\":5000000,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"value\":\"1\"}\n",
    )
    .unwrap();
    let html = fs::read_to_string(render_run(&dir).unwrap()).unwrap();
    assert!(html.contains("test.json is missing"));
    assert!(html.contains("results.json is missing"));
    assert!(
        html.contains("5.00 ms"),
        "latency of the one op is in the table"
    );
}

#[test]
fn a_folder_without_run_files_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    match render_run(tmp.path()) {
        Err(ReportError::NotARunDir(p)) => assert_eq!(p, tmp.path()),
        other => panic!("expected NotARunDir, got {other:?}"),
    }
    assert!(!tmp.path().join("report.html").exists());
}

fn write_run(results: &Path, test: &str, stamp: &str, run: SyntheticRun) {
    let dir = results.join(test).join(stamp);
    run.write(&dir).unwrap();
    render_run(&dir).unwrap();
}

#[test]
fn index_lists_runs_newest_first_with_verdicts_and_links() {
    let tmp = tempfile::tempdir().unwrap();
    let results = tmp.path();
    let small = SyntheticRun {
        ops: 200,
        ..SyntheticRun::default()
    };
    write_run(
        results,
        "kv",
        "20260101T000000",
        SyntheticRun {
            violation: false,
            ..small.clone()
        },
    );
    write_run(results, "kv", "20260103T101500", small.clone());
    // An interrupted run: no results, no report.
    SyntheticRun {
        results: false,
        ..small.clone()
    }
    .write(&results.join("bank/20260102T080000"))
    .unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("20260103T101500", results.join("kv/latest")).unwrap();
    fs::create_dir_all(results.join("kv/not-a-run")).unwrap();

    let out = render_index(results).unwrap();
    assert_eq!(out, results.join("index.html"));
    let html = fs::read_to_string(out).unwrap();
    let rows: Vec<&str> = html.split("<tr class=\"r-").skip(1).collect();
    assert_eq!(
        rows.len(),
        3,
        "three runs, the latest link and other folders skipped"
    );
    assert!(rows[0].starts_with("invalid") && rows[0].contains("2026-01-03 10:15:00"));
    assert!(rows[0].contains("href=\"kv/20260103T101500/report.html\""));
    assert!(rows[1].starts_with("missing") && rows[1].contains("2026-01-02 08:00:00"));
    assert!(rows[1].contains("not rendered") && rows[1].contains("no results.json"));
    assert!(rows[2].starts_with("valid") && rows[2].contains("badge v-valid"));
    assert!(rows[2].contains("kill, pause, partition"));
    assert!(html.contains("3 runs · 1 valid · 1 invalid"));
}

#[test]
fn index_of_an_empty_results_folder_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let html = fs::read_to_string(render_index(tmp.path()).unwrap()).unwrap();
    assert!(html.contains("No run folders"));
}
