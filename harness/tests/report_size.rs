//! A 100k-op run's report must stay small enough to mail and open quickly:
//! at most 20 MB (porcupine's visualization reached 1.5 GB for 3k ops).

use std::fs;

use harness::report::render_run;
use harness::report::synthetic::SyntheticRun;

const OPS: usize = 100_000;
const MAX_BYTES: u64 = 20 * 1024 * 1024;

#[test]
fn report_of_a_100k_op_run_stays_under_20_mb() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("synthetic/20260101T000000");
    SyntheticRun {
        ops: OPS,
        concurrency: 20,
        ..SyntheticRun::default()
    }
    .write(&dir)
    .unwrap();
    let out = render_run(&dir).unwrap();
    let bytes = fs::metadata(&out).unwrap().len();
    let history = fs::metadata(dir.join("history.jsonl")).unwrap().len();
    println!("{OPS} ops: history.jsonl {history} bytes, report.html {bytes} bytes");
    assert!(bytes <= MAX_BYTES, "report is {bytes} bytes");

    let html = fs::read_to_string(&out).unwrap();
    // Every op is in the embedded data for the detail view…
    assert!(html.contains("\"ops\":[["));
    // …but the static drawings are aggregated: far fewer drawn shapes than ops.
    let drawn_ops = html.matches("<g class=\"op ").count();
    assert!(drawn_ops <= 1500, "{drawn_ops} ops drawn one by one");
    assert!(html.matches("<path").count() < 2_000);
    assert!(html.contains("id=\"counterexample\""));
}
