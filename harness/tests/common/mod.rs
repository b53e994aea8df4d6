//! Shared by the tests that spawn the `harness` binary.

use std::process::{Child, ExitStatus};
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
