//! Rendering reports from run folders: complete, invalid, interrupted,
//! leader lanes from traces or observations, the detail view's op files,
//! and the results index.

#[path = "common/synthetic.rs"]
mod synthetic;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use formats::history::EventType;
use harness::report::{render_index, render_run, render_run_with, RenderOptions, ReportError};
use serde_json::Value;
use synthetic::SyntheticRun;

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
    assert!(!html.contains(" src="), "no scripts or images by address");
    assert!(!html.contains("<link"), "no external stylesheets");
    assert!(!html.contains("http://") && !html.contains("https://"));

    let data = embedded_data(&html);
    assert_eq!(data["cexop"], cex["op"]);
    assert_eq!(data["cexComplete"], true);
    // The counterexample's window is embedded whole: every op of the
    // history overlapping it, and nothing else.
    let w = data["cexw"].as_array().unwrap();
    let (a, b) = (w[0].as_i64().unwrap(), w[1].as_i64().unwrap());
    let embedded: BTreeSet<u64> = data["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o[0].as_u64().unwrap())
        .collect();
    let expected: BTreeSet<u64> = history_ops(&dir)
        .into_iter()
        .filter(|o| o.1 <= b && o.2 >= a)
        .map(|o| o.0)
        .collect();
    assert_eq!(embedded, expected);
    for idx in cex["ops"].as_array().unwrap() {
        assert!(embedded.contains(&idx.as_u64().unwrap()));
    }
}

/// Every client op of a run folder's history as (invoke index, invoke µs,
/// solid end µs), the way the page counts time.
fn history_ops(dir: &Path) -> Vec<(u64, i64, i64)> {
    let mut open = std::collections::HashMap::new();
    let mut out = Vec::new();
    for item in formats::history::Reader::open(&dir.join("history.jsonl")).unwrap() {
        let e = item.unwrap().event;
        let Some(p) = e.process.client() else {
            continue;
        };
        let t = e.time.unwrap() as i64 / 1000;
        if e.kind == EventType::Invoke {
            open.insert(p, (e.index, t));
        } else if let Some((i, t0)) = open.remove(&p) {
            out.push((i, t0, t));
        }
    }
    out.extend(open.into_values().map(|(i, t0)| (i, t0, t0)));
    out
}

/// The op indexes in every file of the detail view, in file order.
fn chunk_indexes(dir: &Path) -> Vec<Vec<u64>> {
    let mut names: Vec<String> = fs::read_dir(dir.join("report"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    names
        .iter()
        .enumerate()
        .map(|(n, name)| {
            assert_eq!(name, &format!("ops-{n:04}.js"));
            let text = fs::read_to_string(dir.join("report").join(name)).unwrap();
            let body = text
                .trim_end()
                .strip_prefix(&format!("__reportOps({n},"))
                .and_then(|t| t.strip_suffix(");"))
                .expect("a call of __reportOps");
            let ops: Value = serde_json::from_str(body).unwrap();
            ops.as_array()
                .unwrap()
                .iter()
                .map(|o| o[0].as_u64().unwrap())
                .collect()
        })
        .collect()
}

#[test]
fn every_op_is_in_exactly_one_detail_file_and_the_page_knows_their_ranges() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("synthetic/20260101T000000");
    SyntheticRun {
        ops: 12_345,
        ..SyntheticRun::default()
    }
    .write(&dir)
    .unwrap();
    let html =
        fs::read_to_string(render_run_with(&dir, RenderOptions { chunk_ops: 1000 }).unwrap())
            .unwrap();
    let files = chunk_indexes(&dir);
    assert_eq!(files.len(), 13);
    assert!(files[..12].iter().all(|f| f.len() == 1000));
    let mut all: Vec<u64> = files.concat();
    all.sort_unstable();
    let mut ops = history_ops(&dir);
    ops.sort_unstable();
    assert_eq!(
        all,
        ops.iter().map(|o| o.0).collect::<Vec<_>>(),
        "each op once"
    );
    // The page's ranges hold: an op of file k ends in [end_min, end_max]
    // and starts at or after invoke_min.
    let data = embedded_data(&html);
    let chunks = data["chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), files.len());
    let by_index: std::collections::HashMap<u64, (i64, i64)> =
        ops.iter().map(|o| (o.0, (o.1, o.2))).collect();
    for (k, idx) in files.iter().enumerate() {
        let c: Vec<i64> = chunks[k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_i64().unwrap())
            .collect();
        assert_eq!(c[3] as usize, idx.len());
        for i in idx {
            let (t0, t1) = by_index[i];
            assert!(
                c[0] <= t1 && t1 <= c[1] && c[2] <= t0,
                "op #{i} in file {k}: {c:?}"
            );
        }
    }
    // Rendering again replaces the files, leaving none of the old ones.
    render_run_with(&dir, RenderOptions { chunk_ops: 5000 }).unwrap();
    assert_eq!(chunk_indexes(&dir).len(), 3);
    assert!(!fs::read_dir(&dir).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".tmp")));
}

#[test]
fn leader_lanes_come_from_observations_when_there_are_no_traces() {
    let tmp = tempfile::tempdir().unwrap();
    let observed = tmp.path().join("etcd/20260101T000000");
    SyntheticRun {
        traces: false,
        observations: true,
        ..SyntheticRun::default()
    }
    .write(&observed)
    .unwrap();
    let html = fs::read_to_string(render_run(&observed).unwrap()).unwrap();
    assert!(html.contains(">leaders</text>"));
    assert!(html.contains("Leaders as polled by an observer"));
    assert!(!html.contains("No node traces"));
    // n1 leads term 1 from 200 ms; its poll at 201 ms sees it first.
    assert!(
        html.contains("n1 leader in term 1 from 0.201 s"),
        "observed leadership drawn"
    );

    // With traces as well, the traces win: they have the exact changes.
    let both = tmp.path().join("kv/20260101T000000");
    SyntheticRun {
        traces: true,
        observations: true,
        ..SyntheticRun::default()
    }
    .write(&both)
    .unwrap();
    let html = fs::read_to_string(render_run(&both).unwrap()).unwrap();
    assert!(html.contains("n1 leader in term 1 from 0.200 s"));
    assert!(!html.contains("Leaders as polled by an observer"));
}

#[test]
fn harness_report_rebuilds_an_index_only_for_a_results_tree() {
    let tmp = tempfile::tempdir().unwrap();
    let report = |dir: &Path| {
        let out = Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg("report")
            .arg(dir)
            .stdin(Stdio::null())
            .output()
            .expect("run harness report");
        assert!(out.status.success(), "{out:?}");
    };
    // A run folder copied somewhere else: its report, and nothing above it.
    let loose = tmp.path().join("downloads/bug-report/20260101T000000");
    SyntheticRun {
        ops: 300,
        ..SyntheticRun::default()
    }
    .write(&loose)
    .unwrap();
    report(&loose);
    assert!(loose.join("report.html").is_file());
    assert!(!tmp.path().join("downloads/index.html").exists());
    assert!(!tmp.path().join("downloads/bug-report/index.html").exists());

    // A run of a results folder, as `harness run` leaves it.
    let results = tmp.path().join("results");
    let run = results.join("kv/20260101T000000");
    SyntheticRun {
        ops: 300,
        ..SyntheticRun::default()
    }
    .write(&run)
    .unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("20260101T000000", results.join("kv/latest")).unwrap();
    report(&run);
    let index = fs::read_to_string(results.join("index.html")).expect("the index rebuilt");
    assert!(index.contains("kv/20260101T000000/report.html"));
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
