//! The live progress line of `harness run`:
//!
//! ```text
//! ⠙ [00:07/00:20] 812 ops/s  ok 5610 fail 23 info 4  faults: partition  leader n3 term 4
//! ```
//!
//! Drawn with indicatif on stderr's terminal only when stdout is a terminal,
//! so that piped or CI output stays a clean log.

use crate::history::Counts;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;
use tokio::time::Instant;

/// Where the line gets the leader and its term (the status poller's).
pub type LeaderFn = Box<dyn Fn() -> Option<(u64, u64)> + Send + Sync>;

/// Where the line gets the faults in effect (e.g. `["kill n3"]`).
pub type FaultsFn = Box<dyn Fn() -> Vec<String> + Send + Sync>;
/// Where the line gets the op counts.
pub type CountsFn = Box<dyn Fn() -> Counts + Send + Sync>;

/// A running progress line; [`Progress::finish`] clears it.
pub struct Progress {
    bar: ProgressBar,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    /// Starts the line (hidden unless stdout is a terminal).
    pub fn start(limit: Duration, leader: LeaderFn, faults: FaultsFn, counts: CountsFn) -> Self {
        let visible = std::io::stdout().is_terminal();
        let bar = ProgressBar::with_draw_target(
            None,
            if visible {
                ProgressDrawTarget::stderr_with_hz(4)
            } else {
                ProgressDrawTarget::hidden()
            },
        );
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .expect("a valid template")
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
        );
        let task = visible.then(|| {
            let bar = bar.clone();
            tokio::spawn(async move {
                let started = Instant::now();
                let mut last = (Instant::now(), 0u64);
                let mut rate = 0.0;
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    let c = counts();
                    let done = c.ok + c.fail + c.info;
                    let dt = last.0.elapsed().as_secs_f64();
                    if dt >= 1.0 {
                        rate = (done - last.1) as f64 / dt;
                        last = (Instant::now(), done);
                    } else if last.1 == 0 && dt > 0.0 {
                        // First second: the average so far.
                        rate = done as f64 / dt;
                    }
                    let faults = faults();
                    let leader = leader();
                    bar.set_message(line(
                        started.elapsed(),
                        limit,
                        rate,
                        (c.ok, c.fail, c.info),
                        &faults,
                        leader,
                    ));
                    bar.tick();
                }
            })
        });
        Progress { bar, task }
    }

    /// Stops and clears the line.
    pub fn finish(mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn mmss(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}", s / 60, s % 60)
}

/// The text of the line (separate so that it can be tested).
pub fn line(
    elapsed: Duration,
    limit: Duration,
    ops_per_s: f64,
    (ok, fail, info): (u64, u64, u64),
    faults: &[String],
    leader: Option<(u64, u64)>,
) -> String {
    let faults = if faults.is_empty() {
        "none".to_string()
    } else {
        faults.join(",")
    };
    let leader = match leader {
        Some((id, term)) => format!("leader n{id} term {term}"),
        None => "no leader".to_string(),
    };
    format!(
        "[{}/{}] {:.0} ops/s  ok {ok} fail {fail} info {info}  faults: {faults}  {leader}",
        mmss(elapsed.min(limit.max(elapsed))),
        mmss(limit),
        ops_per_s
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_time_counts_faults_and_leader() {
        let l = line(
            Duration::from_secs(7),
            Duration::from_secs(20),
            812.4,
            (5610, 23, 4),
            &["partition".into()],
            Some((3, 4)),
        );
        assert_eq!(
            l,
            "[00:07/00:20] 812 ops/s  ok 5610 fail 23 info 4  faults: partition  leader n3 term 4"
        );
        assert!(line(
            Duration::ZERO,
            Duration::from_secs(5),
            0.0,
            (0, 0, 0),
            &[],
            None
        )
        .ends_with("faults: none  no leader"));
    }
}
