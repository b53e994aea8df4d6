//! A report must stay light at any run length: the page holds aggregates
//! drawn at pixel resolution and the counterexample's window, not the ops
//! (those go to the detail view's files next to it). Sizes are asserted
//! here; memory and time are measured by `cargo bench -p harness --bench
//! report_long` (docs/report.md, "Figures").

#[path = "common/synthetic.rs"]
mod synthetic;

use std::fs;
use std::path::Path;

use harness::report::render_run;
use synthetic::SyntheticRun;

/// Page bytes, detail files' bytes, and history bytes of a rendered run.
fn sizes(dir: &Path) -> (u64, u64, u64) {
    let page = fs::metadata(dir.join("report.html")).unwrap().len();
    let files: u64 = fs::read_dir(dir.join("report"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let history = fs::metadata(dir.join("history.jsonl")).unwrap().len();
    (page, files, history)
}

fn render(dir: &Path, run: SyntheticRun) -> String {
    run.write(dir).unwrap();
    let out = render_run(dir).unwrap();
    fs::read_to_string(out).unwrap()
}

#[test]
fn the_page_holds_drawings_not_ops() {
    let tmp = tempfile::tempdir().unwrap();
    let mut pages = Vec::new();
    let mut files_bytes = Vec::new();
    // Ten times the ops in the same time: the op files grow tenfold, the
    // page only as its scatter plot fills in (it is bounded by one mark per
    // 2 × 2 px of each series).
    for ops in [20_000, 200_000] {
        let dir = tmp.path().join(format!("synthetic-{ops}/20260101T000000"));
        let html = render(
            &dir,
            SyntheticRun {
                ops,
                rate: ops as u64 / 40,
                concurrency: 20,
                ..SyntheticRun::default()
            },
        );
        let (page, files, history) = sizes(&dir);
        println!(
            "{ops} ops over 40 s: history {history} B, report.html {page} B, report/ {files} B"
        );
        // The drawings are aggregated: far fewer shapes than ops.
        assert!(html.matches("<g class=\"op ").count() <= 1500);
        assert!(html.matches("<path").count() < 2_000);
        assert!(html.contains("id=\"counterexample\""));
        pages.push(page);
        files_bytes.push(files);
    }
    assert!(
        pages[1] < pages[0] * 4,
        "page {} B at 200k ops against {} B at 20k",
        pages[1],
        pages[0]
    );
    assert!(files_bytes[1] > files_bytes[0] * 9, "{files_bytes:?}");
}

#[test]
fn report_of_a_100k_op_run_stays_under_1_mb() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("synthetic/20260101T000000");
    render(
        &dir,
        SyntheticRun {
            ops: 100_000,
            concurrency: 20,
            ..SyntheticRun::default()
        },
    );
    let (page, files, history) = sizes(&dir);
    println!("100000 ops: history {history} B, report.html {page} B, report/ {files} B");
    assert!(page <= 1 << 20, "report is {page} bytes");
}
