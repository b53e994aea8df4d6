//! Nodes that exit on their own: a panic, a failed assertion, a fatal
//! error the node gave up on. The nemesis ends processes only with
//! `SIGKILL` (and the harness stops them with `SIGTERM` only after the
//! watch is over), so any other end of a node process during a run is a
//! finding, whatever the checkers say of the history: it fails the run,
//! with the last lines of the node's log, which say why.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::cluster::{NodeId, ProcessState};
use crate::nemesis::ActiveFaults;
use crate::systems::Cluster;

/// How many lines of the node's log a finding quotes.
const LOG_LINES: usize = 12;

/// One node process that ended without the nemesis ending it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeExit {
    pub node: NodeId,
    /// How the process ended (`exit status: 101`, `signal: 6 (SIGABRT)`).
    pub status: String,
    /// Seconds since the watch started (the cluster's launch).
    pub at_s: f64,
    /// The last lines the process wrote to its log.
    pub log: Vec<String>,
}

impl NodeExit {
    /// One line for the summary.
    pub fn describe(&self) -> String {
        let why = self
            .log
            .iter()
            .rev()
            .position(|l| l.contains(" panicked at "))
            .map(|p| self.log.len() - 1 - p)
            .map(|p| {
                self.log[p..]
                    .iter()
                    .take(2)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .or_else(|| {
                self.log
                    .iter()
                    .rev()
                    .find(|l| l.contains("ERROR"))
                    .or(self.log.last())
                    .cloned()
            })
            .unwrap_or_else(|| "(empty log)".into());
        format!(
            "n{} exited on its own at {:.1}s ({}): {}",
            self.node, self.at_s, self.status, why
        )
    }
}

/// Watches every node's process from launch until [`ExitWatch::finish`].
pub struct ExitWatch {
    stop: watch::Sender<bool>,
    task: JoinHandle<Vec<NodeExit>>,
}

impl ExitWatch {
    /// Starts watching. `faults` (the nemesis's faults in effect, when there
    /// is a nemesis) excuses removed members: a system may stop them on
    /// purpose (etcd does).
    pub fn start(cluster: Arc<dyn Cluster>, run_dir: &Path, faults: ActiveFaults) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let run_dir = run_dir.to_path_buf();
        let task = tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            let mut last: BTreeMap<NodeId, ProcessState> = BTreeMap::new();
            let mut exits = Vec::new();
            loop {
                for id in cluster.node_ids() {
                    let Some(state) = cluster.state(id) else {
                        continue;
                    };
                    let was = last.insert(id, state);
                    let ended = state == ProcessState::Stopped
                        && matches!(was, Some(ProcessState::Running | ProcessState::Paused));
                    if !ended || faults.removed().contains(&id) {
                        continue;
                    }
                    let status = cluster.last_exit(id).unwrap_or_default();
                    if status.contains("SIGKILL") || status.contains("signal: 9") {
                        continue;
                    }
                    let exit = NodeExit {
                        node: id,
                        status,
                        at_s: started.elapsed().as_secs_f64(),
                        log: log_tail(&node_log(&run_dir, id), LOG_LINES),
                    };
                    tracing::info!(finding = %exit.describe(), "a node exited on its own");
                    exits.push(exit);
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    _ = stopped.wait_for(|s| *s) => return exits,
                }
            }
        });
        ExitWatch { stop, task }
    }

    /// Stops watching (before the nodes are stopped on purpose) and returns
    /// what was found.
    pub async fn finish(self) -> Vec<NodeExit> {
        let _ = self.stop.send(true);
        self.task.await.unwrap_or_default()
    }
}

/// Where the harness writes node `id`'s output (docs/formats.md).
fn node_log(run_dir: &Path, id: NodeId) -> PathBuf {
    run_dir
        .join("nodes")
        .join(format!("n{id}"))
        .join("node.log")
}

/// `n` lines of the log's last start (the harness marks each start with a
/// `=== harness: start #k` line) that say why it ended: from its last
/// panic message on (the backtrace below it is cut), else its last lines.
fn log_tail(path: &Path, n: usize) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return vec![format!("(no log at {})", path.display())];
    };
    let last_start = text.rfind("=== harness: start #").unwrap_or(0);
    let lines: Vec<&str> = text[last_start..].lines().collect();
    let from = match lines.iter().rposition(|l| l.contains(" panicked at ")) {
        Some(p) => p.saturating_sub(2),
        None => lines.len().saturating_sub(n),
    };
    lines[from..(from + n).min(lines.len())]
        .iter()
        .map(|l| {
            let mut l = l.to_string();
            if l.len() > 400 {
                let mut cut = 400;
                while !l.is_char_boundary(cut) {
                    cut -= 1;
                }
                l.truncate(cut);
                l.push('…');
            }
            l
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_the_last_lines_of_the_last_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("node.log");
        std::fs::write(
            &p,
            "=== harness: start #1 of node 1\nold\n=== harness: start #2 of node 1\na\nthread 'main' panicked at core.rs:1:\nboom\nstack backtrace:\n   0: x\n",
        )
        .unwrap();
        let t = log_tail(&p, 12);
        assert_eq!(t.len(), 6, "{t:?}");
        assert!(t[0].starts_with("=== harness: start #2"));
        let e = NodeExit {
            node: 1,
            status: "exit status: 101".into(),
            at_s: 1.25,
            log: t,
        };
        assert_eq!(
            e.describe(),
            "n1 exited on its own at 1.2s (exit status: 101): thread 'main' panicked at core.rs:1: boom"
        );
        assert_eq!(log_tail(&p, 4)[3], "boom");
    }
}
