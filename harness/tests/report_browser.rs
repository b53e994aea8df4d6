//! Opens a rendered report in headless Chromium: the page must draw (a
//! screenshot that is not blank), its script must run without errors (the
//! script writes `#script-error` on any error and `data-js="ok"` when done)
//! and the detail view must be drawn by it.
//!
//! Needs Debian's `chromium` (`apt-get install -y chromium`; `.ci/run`
//! installs it). Without it the test fails under CI and is skipped with a
//! notice elsewhere. One test renders a real run made on the spot (this
//! build's harness and node; `REPORT_RUN_DIR` names an existing run folder
//! instead), the other a synthetic invalid run, to draw a counterexample.

#[path = "common/synthetic.rs"]
mod synthetic;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::report::render_run;
use synthetic::SyntheticRun;

const CHROMIUM: &str = "/usr/bin/chromium";

/// Kills the browser if the test panics or times out.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Finds chromium, or decides what a missing one means here.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM));
    if path.exists() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "{} is missing under CI: .ci/run must install chromium",
            path.display()
        );
    }
    eprintln!(
        "notice: {} not found, skipping the browser test (apt-get install -y chromium)",
        path.display()
    );
    None
}

/// Runs headless chromium with `args` on `page`, returning its stdout.
fn run_chromium(browser: &Path, profile: &Path, args: &[String], page: &Path) -> String {
    let mut cmd = Command::new(browser);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let child = cmd.spawn().expect("start chromium");
    let mut guard = ChildGuard(child);
    let stdout = guard.0.stdout.take().expect("stdout");
    let stderr = guard.0.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(s) = guard.0.try_wait().expect("wait for chromium") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "chromium did not finish within 90 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    assert!(status.success(), "chromium failed: {status}\n{stderr}");
    stdout
}

/// Decodes the PNG and checks it shows a page: the expected size, many
/// colors, and a real share of non-white pixels.
fn assert_not_blank(png_path: &Path, width: u32, height: u32) {
    let file = std::fs::File::open(png_path).expect("screenshot written");
    let decoder = png::Decoder::new(file);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).expect("PNG frame");
    assert_eq!((info.width, info.height), (width, height));
    let channels = info.color_type.samples();
    assert!(channels >= 3, "color screenshot, got {:?}", info.color_type);
    let mut colors = std::collections::HashSet::new();
    let mut non_white = 0usize;
    let pixels = buf[..info.buffer_size()].chunks(channels);
    let total = pixels.len();
    for p in pixels {
        colors.insert((p[0], p[1], p[2]));
        if p[0] < 240 || p[1] < 240 || p[2] < 240 {
            non_white += 1;
        }
    }
    assert!(
        colors.len() > 50,
        "only {} colors: a blank page?",
        colors.len()
    );
    assert!(
        non_white * 50 > total,
        "only {non_white} of {total} pixels are not white: nothing drawn?"
    );
}

/// A real run: this build's harness against its own node (3 nodes, a few
/// seconds of kills and partitions); returns the run folder.
fn real_run(results: &Path) -> PathBuf {
    let child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--nodes", "3", "--time-limit", "3", "--seed", "7"])
        .args(["--nemesis", "kill,partition", "--nemesis-interval", "0.5"])
        .arg("--results-dir")
        .arg(results)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start harness run");
    // The harness's nodes die with it (parent-death signal) if we kill it.
    let mut guard = ChildGuard(child);
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = guard.0.try_wait().expect("wait for harness") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "harness run did not finish in 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status.code(), Some(0), "a short run of our node is valid");
    let latest = results.join("kv-kill+partition/latest");
    std::fs::canonicalize(&latest).expect("the run folder")
}

#[test]
fn real_run_report_renders_in_headless_chromium_without_script_errors() {
    let Some(browser) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = match std::env::var_os("REPORT_RUN_DIR") {
        Some(d) => PathBuf::from(d),
        None => real_run(&tmp.path().join("results")),
    };
    check_report_in_browser(&browser, &run_dir, tmp.path(), false);
}

#[test]
fn counterexample_report_renders_in_headless_chromium_without_script_errors() {
    let Some(browser) = chromium() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = tmp.path().join("synthetic/20260101T000000");
    SyntheticRun {
        ops: 3000,
        ..SyntheticRun::default()
    }
    .write(&run_dir)
    .unwrap();
    check_report_in_browser(&browser, &run_dir, tmp.path(), true);
}

/// Renders the run's report, screenshots it and dumps its DOM.
fn check_report_in_browser(browser: &Path, run_dir: &Path, tmp: &Path, has_counterexample: bool) {
    let browser = browser.to_path_buf();
    let page = render_run(run_dir).unwrap();

    let shot = tmp.join("shot.png");
    let profile1 = tempfile::tempdir().unwrap();
    run_chromium(
        &browser,
        profile1.path(),
        &[
            "--window-size=1280,1600".into(),
            format!("--screenshot={}", shot.display()),
        ],
        &page,
    );
    assert_not_blank(&shot, 1280, 1600);

    let profile2 = tempfile::tempdir().unwrap();
    let dom = run_chromium(&browser, profile2.path(), &["--dump-dom".into()], &page);
    assert!(
        !dom.contains("id=\"script-error\""),
        "the page's script failed:\n{}",
        error_text(&dom)
    );
    assert!(
        dom.contains("data-js=\"ok\""),
        "the page's script did not finish"
    );
    for id in ["overview", "latency-plot", "throughput-plot", "zoom-svg"] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "#{id} missing from the rendered page"
        );
    }
    // The detail view was drawn by the script, op by op.
    let zoom = &dom[dom.find("id=\"zoom-svg\"").unwrap()..];
    let zoom = &zoom[..zoom.find("</svg>").unwrap()];
    assert!(
        zoom.matches("<g class=\"op ").count() > 5,
        "detail view has ops"
    );
    if has_counterexample {
        assert!(
            zoom.contains("cex-op"),
            "detail view opens on the counterexample"
        );
    }
}

fn error_text(dom: &str) -> &str {
    let Some(i) = dom.find("id=\"script-error\"") else {
        return "";
    };
    let rest = &dom[i..];
    &rest[..rest.find("</div>").unwrap_or(rest.len())]
}
