//! Shared by the tests that spawn the `harness` binary.

use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Kills the harness (and so, through the parent-death signal, its nodes)
/// if a test panics before it exits.
pub struct ChildGuard(pub Option<Child>);

impl ChildGuard {
    pub fn wait_timeout(&mut self, limit: Duration) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(st) = self.0.as_mut().unwrap().try_wait().unwrap() {
                self.0 = None;
                return st;
            }
            assert!(
                started.elapsed() < limit,
                "harness did not exit within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    #[allow(dead_code)] // Not every test binary signals the harness.
    pub fn pid(&self) -> i32 {
        self.0.as_ref().unwrap().id() as i32
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Runs `cmd` (stdin closed, stderr shown) to its end within `limit`, under a
/// guard; returns its exit code (-1: killed by a signal) and its stdout.
#[allow(dead_code)] // Not every test binary reads the harness's output.
pub fn run_to_end(cmd: &mut Command, limit: Duration) -> (i32, String) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start harness");
    let mut g = ChildGuard(Some(child));
    let mut stdout = g.0.as_mut().unwrap().stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(&mut stdout).unwrap());
    let status = g.wait_timeout(limit);
    (status.code().unwrap_or(-1), reader.join().unwrap())
}
