//! Headless Chromium for the tests of pages (the run report, the suite
//! summary): find it, run it on a page, check a screenshot is a drawn page.

#![allow(dead_code)] // Not every test binary uses every helper.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Kills the browser and every process it started (its renderers, GPU and
/// zygote processes, in the group [`browser_command`] gives it) when the
/// test ends, panics or times out. Killing the main process alone leaves
/// the others running long enough to write into the profile after the
/// test removed it, which leaves a profile folder in the temp dir.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.0.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `chromium` in a process group of its own (see [`ChildGuard`]).
pub fn browser_command(browser: &Path) -> Command {
    let mut cmd = Command::new(browser);
    cmd.process_group(0);
    cmd
}

/// Finds chromium; a test that needs it fails without it.
pub fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM));
    assert!(
        path.exists(),
        "{} is missing: the browser tests need Debian's chromium \
         (apt-get install -y chromium; .ci/run installs it)",
        path.display()
    );
    path
}

/// Runs headless chromium with `args` on `page`, returning its stdout.
pub fn run_chromium(browser: &Path, profile: &Path, args: &[String], page: &Path) -> String {
    let mut cmd = browser_command(browser);
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
    // Chromium keeps its singleton socket in a folder under TMPDIR, left
    // behind when it is killed: put it in the profile instead.
    .env("TMPDIR", profile)
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
pub fn assert_not_blank(png_path: &Path, width: u32, height: u32) {
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
