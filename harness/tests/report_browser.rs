//! Opens a rendered report in headless Chromium: the page must draw (a
//! screenshot that is not blank), its script must run without errors (the
//! script writes `#script-error` on any error and `data-js="ok"` when done)
//! and the detail view must be drawn by it. On a real run made on the spot
//! (this build's harness and node; `REPORT_RUN_DIR` names an existing run
//! folder instead), the test then drags across the timeline as a person
//! would, through the DevTools protocol, and checks that the detail view
//! loaded the op files it needed and drew exactly the ops of the history
//! in that window. A synthetic invalid run checks the counterexample.
//!
//! Needs Debian's `chromium` (`apt-get install -y chromium`; `.ci/run`
//! installs it): without it the tests fail, saying so.

#[path = "common/browser.rs"]
mod browser;
mod common;
#[path = "common/synthetic.rs"]
mod synthetic;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use browser::{assert_not_blank, browser_command, chromium, run_chromium, ChildGuard};
use harness::report::{render_run, render_run_with, RenderOptions};
use serde_json::{json, Value};
use synthetic::SyntheticRun;

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
    let status = common::ChildGuard(Some(child)).wait_timeout(Duration::from_secs(120));
    assert_eq!(status.code(), Some(0), "a short run of our node is valid");
    let latest = results.join("kv-kill+partition/latest");
    std::fs::canonicalize(&latest).expect("the run folder")
}

#[test]
fn real_run_report_renders_in_headless_chromium_without_script_errors() {
    let browser = chromium();
    let tmp = tempfile::tempdir().unwrap();
    let run_dir = match std::env::var_os("REPORT_RUN_DIR") {
        Some(d) => PathBuf::from(d),
        None => real_run(&tmp.path().join("results")),
    };
    check_report_in_browser(&browser, &run_dir, tmp.path(), false);
    // Small op files (a fortieth of the run each), so that a window of 7 %
    // of the run needs several of them.
    let ops = history_ops_in(&run_dir, 0, i64::MAX).len();
    let chunk_ops = (ops / 40).max(10);
    let page = render_run_with(&run_dir, RenderOptions { chunk_ops }).unwrap();
    drag_draws_the_window_from_the_op_files(&browser, &page, &run_dir);
}

#[test]
fn counterexample_report_renders_in_headless_chromium_without_script_errors() {
    let browser = chromium();
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

/// A headless Chromium driven through the DevTools protocol over its
/// websocket, with one page attached.
struct Devtools {
    _browser: ChildGuard,
    _profile: tempfile::TempDir,
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
    session: String,
    next_id: u64,
}

impl Devtools {
    fn launch(browser: &Path) -> Devtools {
        let profile = tempfile::tempdir().unwrap();
        let mut child = browser_command(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--hide-scrollbars",
                "--window-size=1280,1600",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            // Chromium keeps its singleton socket in a folder under TMPDIR,
            // left behind when it is killed: put it in the profile, which
            // goes with the test.
            .env("TMPDIR", profile.path())
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let stderr = child.stderr.take().expect("stderr");
        let guard = ChildGuard(child);
        // Chromium says where its DevTools listen on stderr.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
            }
        });
        let url = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("chromium printed its DevTools address within 30 s");
        let (ws, _) = tungstenite::connect(url.as_str()).expect("connect to DevTools");
        if let tungstenite::stream::MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        }
        let mut d = Devtools {
            _browser: guard,
            _profile: profile,
            ws,
            session: String::new(),
            next_id: 0,
        };
        let target = d.call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = d.call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        d.session = attached["sessionId"].as_str().unwrap().to_string();
        d
    }

    /// Sends a command (to the page once attached) and waits for its answer.
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if !self.session.is_empty() {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(tungstenite::Message::text(msg.to_string()))
            .expect("send to DevTools");
        loop {
            let m = self.ws.read().expect("an answer from DevTools");
            let Ok(text) = m.to_text() else { continue };
            let v: Value = serde_json::from_str(text).expect("DevTools speaks JSON");
            if v["id"] == json!(id) {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page, by value.
    fn eval(&mut self, expr: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "returnByValue": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expr}: {r}");
        r["result"]["value"].clone()
    }

    /// Waits until `expr` is true in the page.
    fn wait_for(&mut self, expr: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.eval(expr) != json!(true) {
            let err =
                self.eval("(document.getElementById('script-error') || {}).textContent || ''");
            assert_eq!(err, json!(""), "the page's script failed");
            assert!(Instant::now() < deadline, "{what} within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn mouse(&mut self, kind: &str, x: f64, y: f64) {
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1}),
        );
    }
}

/// Drags across 40–47 % of the overview and checks the detail view: it
/// loaded op files for the window, and drew exactly the history's ops that
/// overlap it (by their invoke index).
fn drag_draws_the_window_from_the_op_files(browser: &Path, page: &Path, run_dir: &Path) {
    let mut d = Devtools::launch(browser);
    // A 7 % window of a real run may fall where a fault left the cluster
    // without a leader and hardly any op completed; such a window shows
    // nothing about drawing from the op files, so the next place is tried,
    // each on a freshly opened page (no files cached by an earlier drag).
    let mut tried = Vec::new();
    for start in [0.40, 0.47, 0.54, 0.33, 0.61, 0.26] {
        d.call(
            "Page.navigate",
            json!({"url": format!("file://{}?try={start}", page.display())}),
        );
        d.wait_for(
            &format!(
                "document.body != null && document.URL.indexOf('try={start}') >= 0 \
                 && document.body.getAttribute('data-js') === 'ok' \
                 && document.body.getAttribute('data-detail') === 'ready'"
            ),
            "the report opens with its detail view drawn",
        );
        let box_ = d.eval(
            "(function () { var o = document.getElementById('overview'); o.scrollIntoView(); \
              var r = o.getBoundingClientRect(); \
              return [r.left, r.top, r.width, r.height, +o.getAttribute('data-x0'), \
                      +o.getAttribute('data-x1'), +o.getAttribute('data-w')]; })()",
        );
        let b: Vec<f64> = box_
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let (left, top, width, height, x0, x1, vw) = (b[0], b[1], b[2], b[3], b[4], b[5], b[6]);
        let at = |f: f64| left + (x0 + f * (x1 - x0)) * width / vw;
        let y = top + height * 0.55;
        let before = d.eval(&files_loaded());
        let prev_a = d.eval(
            "(document.getElementById('zoom-svg') || {getAttribute: function () { return -1; }}).getAttribute('data-a')",
        );
        d.mouse("mousePressed", at(start), y);
        d.mouse("mouseMoved", at(start + 0.04), y);
        d.mouse("mouseMoved", at(start + 0.07), y);
        d.mouse("mouseReleased", at(start + 0.07), y);
        d.wait_for(
            &format!(
                "document.body.getAttribute('data-detail') === 'ready' && \
                 (function () {{ var s = document.getElementById('zoom-svg'); \
                   return !!s && s.getAttribute('data-a') > 0 && \
                     JSON.stringify(s.getAttribute('data-a')) !== {prev}; }})()",
                prev = serde_json::to_string(&prev_a.to_string()).unwrap()
            ),
            "the dragged window is drawn",
        );
        let shown = d.eval(
            "(function () { var s = document.getElementById('zoom-svg'); \
              return [+s.getAttribute('data-a'), +s.getAttribute('data-b'), +s.getAttribute('data-files'), \
                      Array.prototype.map.call(s.querySelectorAll('g.op > title'), \
                        function (t) { return +t.textContent.slice(1).split(' ')[0]; })]; })()",
        );
        let (a, bb) = (shown[0].as_i64().unwrap(), shown[1].as_i64().unwrap());
        let mut expected = history_ops_in(run_dir, a, bb);
        expected.sort_unstable();
        let files = shown[2].as_u64().unwrap();
        // A window inside one op file shows nothing about joining files:
        // the next place is tried, as for a sparse one.
        if expected.len() <= 20 || files < 2 {
            tried.push((a, bb, expected.len(), files));
            continue;
        }
        let mut drawn: Vec<u64> = shown[3]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        drawn.sort_unstable();
        let after = d.eval(&files_loaded());
        assert!(
            after.as_u64().unwrap() > before.as_u64().unwrap(),
            "the drag loaded op files ({before} before, {after} after)"
        );
        assert_eq!(drawn, expected, "ops drawn for [{a}, {bb}] µs");
        return;
    }
    panic!(
        "no dragged window held more than 20 ops over 2 or more op files: \
         (from µs, to µs, ops, files) {tried:?}"
    );
}

/// How many op files the page has loaded so far (it counts them).
fn files_loaded() -> String {
    "+(document.body.getAttribute('data-files-loaded') || 0)".to_string()
}

/// Invoke indexes of the history's client ops overlapping `[a, b]` µs: an
/// op is drawn from its invoke to its completion (its invoke if none).
fn history_ops_in(run_dir: &Path, a: i64, b: i64) -> Vec<u64> {
    let mut open = std::collections::HashMap::new();
    let mut spans = Vec::new();
    let path = run_dir.join("history.jsonl");
    for item in formats::history::Reader::open(&path).unwrap() {
        let e = item.unwrap().event;
        let Some(p) = e.process.client() else {
            continue;
        };
        let t = e.time.unwrap() as i64 / 1000;
        if e.kind == formats::history::EventType::Invoke {
            if let Some((i, t0)) = open.insert(p, (e.index, t)) {
                spans.push((i, t0, t0));
            }
        } else if let Some((i, t0)) = open.remove(&p) {
            spans.push((i, t0, t));
        }
    }
    spans.extend(open.into_values().map(|(i, t0)| (i, t0, t0)));
    spans
        .into_iter()
        .filter(|&(_, t0, t1)| t0 <= b && t1 >= a)
        .map(|s| s.0)
        .collect()
}
