//! What a run cost the harness itself: its peak memory while traffic ran and
//! after the checks, and how long the verdict and the report took once the
//! traffic had stopped. These are the figures a nightly soak is judged by
//! (docs/benchmarks.md, "Soak"), so every run records them in
//! `results.json` instead of leaving them to an outside profiler.

use serde::{Deserialize, Serialize};
use std::time::Instant;

/// The harness's own resource use in one run (`results.json`, `resources`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Resources {
    /// The harness process's peak resident memory when the traffic had
    /// stopped (VmHWM). With `--test-count` it is the process's peak so far,
    /// earlier runs included.
    pub peak_rss_traffic_bytes: Option<u64>,
    /// Peak resident memory once the checks had run.
    pub peak_rss_checked_bytes: Option<u64>,
    /// Peak resident memory once the report had been written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_report_bytes: Option<u64>,
    /// Seconds from the end of the traffic (cluster torn down) to the
    /// verdict: reading the history back, statistics and every checker.
    pub verdict_s: f64,
    /// Seconds the report took after the verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_s: Option<f64>,
}

/// Measures the stretch of a run after its traffic.
pub struct Meter {
    start: Instant,
    traffic_peak: Option<u64>,
}

impl Meter {
    /// Starts measuring when the traffic has stopped.
    pub fn after_traffic() -> Self {
        Meter {
            traffic_peak: peak_rss_bytes(),
            start: Instant::now(),
        }
    }

    /// The figures once the verdict is known.
    pub fn verdict(&self) -> Resources {
        Resources {
            peak_rss_traffic_bytes: self.traffic_peak,
            peak_rss_checked_bytes: peak_rss_bytes(),
            peak_rss_report_bytes: None,
            verdict_s: self.start.elapsed().as_secs_f64(),
            report_s: None,
        }
    }

    /// Adds the report's share to figures taken at the verdict.
    pub fn report(&self, at_verdict: &mut Resources) {
        let total = self.start.elapsed().as_secs_f64();
        at_verdict.report_s = Some((total - at_verdict.verdict_s).max(0.0));
        at_verdict.peak_rss_report_bytes = peak_rss_bytes();
    }
}

/// This process's peak resident memory (`VmHWM`), where Linux reports it.
pub fn peak_rss_bytes() -> Option<u64> {
    status_kib(
        &std::fs::read_to_string("/proc/self/status").ok()?,
        "VmHWM:",
    )
    .map(|k| k * 1024)
}

/// A `kB` field of a `/proc/<pid>/status` text.
pub fn status_kib(status: &str, field: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_kib_field() {
        let text = "Name:\tharness\nVmPeak:\t  20000 kB\nVmHWM:\t    1234 kB\n";
        assert_eq!(status_kib(text, "VmHWM:"), Some(1234));
        assert_eq!(status_kib(text, "VmRSS:"), None);
    }

    #[test]
    fn own_peak_is_known_on_linux() {
        let peak = peak_rss_bytes().expect("VmHWM on Linux");
        assert!(peak > 1024 * 1024, "{peak}");
    }

    #[test]
    fn the_report_share_follows_the_verdict() {
        let meter = Meter::after_traffic();
        let mut r = meter.verdict();
        meter.report(&mut r);
        assert!(r.report_s.unwrap() >= 0.0);
        assert!(r.peak_rss_report_bytes >= r.peak_rss_traffic_bytes);
    }
}
