//! The system under test, behind one seam.
//!
//! Everything the run, the clients and the nemesis need from "the cluster" goes
//! through [`SystemUnderTest`]: start, stop, `kill -9`, restart, pause and
//! resume a node; its client and peer addresses; membership changes; and a
//! status probe used to find the leader and its term. Our own Raft node
//! ([`NodeCluster`]) is the first implementation; another system (etcd,
//! openraft, a Maelstrom-protocol node) only has to implement the same trait.
//!
//! Process control lives in [`supervisor`] (process groups, parent-death
//! signal, logs appended across restarts, no orphans); the network between
//! the nodes is the [`crate::proxy::ProxyMesh`], one TCP proxy per directed
//! link, so that the nemesis can cut any link on its own.
//!
//! Typical use:
//! ```ignore
//! let cluster = NodeCluster::launch(ClusterConfig::new(node_bin, run_dir, 5)).await?;
//! let leader = wait_for_leader(&cluster, Instant::now() + Duration::from_secs(10)).await?;
//! // … traffic, nemesis …
//! cluster.shutdown().await;
//! ```
//!
//! The asynchronous methods return boxed futures so that the trait stays
//! usable as `Arc<dyn SystemUnderTest>`.

pub mod node;
pub mod supervisor;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

pub use node::{ClusterConfig, NodeCluster};
pub use supervisor::{Pipes, ProcessSpec, ProcessState, Supervisor};

/// A node's identity, as in the node's `--id` and in membership entries.
pub type NodeId = u64;

/// Errors of the cluster seam. A harness failure (could not start a node, a
/// port was in use) is an error of the run, never a verdict on the system.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    #[error("could not spawn node {id} ({program}): {source}")]
    Spawn {
        id: NodeId,
        program: String,
        source: std::io::Error,
    },
    #[error("node {id} is {state:?}; cannot {action}")]
    BadState {
        id: NodeId,
        state: ProcessState,
        action: &'static str,
    },
    #[error("signal {signal} to node {id} failed: {source}")]
    Signal {
        id: NodeId,
        signal: &'static str,
        source: nix::Error,
    },
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("could not reserve a free port: {0}")]
    Port(std::io::Error),
    #[error("proxy error: {0}")]
    Proxy(#[from] crate::proxy::ProxyError),
    #[error("HTTP request to node {id} failed: {message}")]
    Http { id: NodeId, message: String },
    #[error("membership change {action} of node {id} failed: {message}")]
    Membership {
        action: &'static str,
        id: NodeId,
        message: String,
    },
    #[error("no leader within {waited_ms} ms: {detail}")]
    NoLeader { waited_ms: u128, detail: String },
}

/// The body of the node's `GET /status` (docs/node.md, "HTTP API").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub id: NodeId,
    pub term: u64,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: String,
    pub leader: Option<NodeId>,
    pub commit_index: u64,
    pub last_applied: u64,
    pub members: Vec<NodeId>,
    /// Non-voting members catching up (an added node is a learner until the
    /// leader promotes it). Optional: a system under test may not report them.
    #[serde(default)]
    pub learners: Vec<NodeId>,
}

/// A leader confirmed by a majority of its own configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LeaderInfo {
    pub leader: NodeId,
    pub term: u64,
}

/// The control surface of a cluster under test. Process operations act on the
/// real processes; membership and status talk to the nodes over their client
/// API. Implementations must be cheap to call concurrently (the nemesis and
/// the progress line probe while clients run).
pub trait SystemUnderTest: Send + Sync {
    /// A short name for reports ("raft-node", "etcd", …).
    fn name(&self) -> &str;
    /// Every node the harness manages, including ones currently removed.
    fn node_ids(&self) -> Vec<NodeId>;
    /// Where clients talk to node `id`.
    fn client_addr(&self, id: NodeId) -> Option<SocketAddr>;
    /// Where node `id` listens for its peers (the proxies dial this).
    fn peer_addr(&self, id: NodeId) -> Option<SocketAddr>;
    /// The process state the harness believes node `id` is in (reaps exits).
    fn state(&self, id: NodeId) -> Option<ProcessState>;
    /// Starts a stopped node on its existing data directory.
    fn start(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// Graceful stop: SIGTERM, then SIGKILL after a grace period.
    fn stop(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// `kill -9` of the node's whole process group.
    fn kill(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// SIGSTOP of the node's process group.
    fn pause(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// SIGCONT of the node's process group.
    fn resume(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// Kill -9 then start again on the same data.
    fn restart(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            self.kill(id).await?;
            self.start(id).await
        })
    }
    /// Kills node `id`, discards its data, and starts it again as an empty
    /// node that waits to be added (the membership fault with
    /// `member_wipe`, like Jepsen's etcd tests).
    fn reset_node(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// `GET /status` of one node, with a short timeout.
    fn status(&self, id: NodeId) -> BoxFuture<'_, Result<NodeStatus, ClusterError>>;
    /// Adds `id` through the leader; resolves once `id` is a voter (an added
    /// node may first be a learner that the leader promotes once caught up).
    fn add_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// Removes `id` from the voters through the leader; resolves once committed.
    fn remove_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// Resumes paused nodes, then stops every node (SIGTERM, then SIGKILL).
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// One probe of every node: what each answered (or why it did not), and the
/// leader if one is confirmed by a majority of its configuration.
#[derive(Debug, Clone)]
pub struct LeaderProbe {
    pub statuses: BTreeMap<NodeId, Result<NodeStatus, String>>,
    pub leader: Option<LeaderInfo>,
}

impl LeaderProbe {
    /// The highest term any node reported.
    pub fn max_term(&self) -> Option<u64> {
        self.statuses
            .values()
            .filter_map(|s| s.as_ref().ok().map(|s| s.term))
            .max()
    }

    /// A one-line description for error messages and progress output.
    pub fn describe(&self) -> String {
        self.statuses
            .iter()
            .map(|(id, s)| match s {
                Ok(s) => format!("n{id}: {} term {} leader {:?}", s.role, s.term, s.leader),
                Err(e) => format!("n{id}: {e}"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Probes `GET /status` on every running node concurrently.
///
/// A leader is reported only when some node says it is leader in term T and a
/// majority of the members in *its* configuration report term T with that
/// leader (itself included): a deposed leader that has not noticed yet, or a
/// candidate's view, is not enough.
pub async fn probe_leader<S: SystemUnderTest + ?Sized>(sut: &S) -> LeaderProbe {
    let ids = sut.node_ids();
    let futs = ids.iter().map(|&id| async move {
        let running = matches!(sut.state(id), Some(ProcessState::Running));
        let r = if running {
            sut.status(id).await.map_err(|e| e.to_string())
        } else {
            Err(format!(
                "{:?}",
                sut.state(id).unwrap_or(ProcessState::Stopped)
            ))
        };
        (id, r)
    });
    let statuses: BTreeMap<_, _> = futures::future::join_all(futs).await.into_iter().collect();
    let leader = confirmed_leader(&statuses);
    LeaderProbe { statuses, leader }
}

fn confirmed_leader(statuses: &BTreeMap<NodeId, Result<NodeStatus, String>>) -> Option<LeaderInfo> {
    let mut best: Option<LeaderInfo> = None;
    for s in statuses.values().filter_map(|s| s.as_ref().ok()) {
        if s.role != "leader" || s.members.is_empty() {
            continue;
        }
        let agree = s
            .members
            .iter()
            .filter(|m| {
                matches!(statuses.get(m), Some(Ok(o)) if o.term == s.term && o.leader == Some(s.id))
            })
            .count();
        if agree * 2 > s.members.len() && best.is_none_or(|b| b.term < s.term) {
            best = Some(LeaderInfo {
                leader: s.id,
                term: s.term,
            });
        }
    }
    best
}

/// Polls [`probe_leader`] until a confirmed leader exists or `deadline`
/// passes; the error says what every node answered last, so that a run that
/// does not recover fails with a clear message instead of hanging.
pub async fn wait_for_leader<S: SystemUnderTest + ?Sized>(
    sut: &S,
    deadline: Instant,
) -> Result<LeaderInfo, ClusterError> {
    let started = Instant::now();
    loop {
        let probe = probe_leader(sut).await;
        if let Some(l) = probe.leader {
            return Ok(l);
        }
        if Instant::now() >= deadline {
            return Err(ClusterError::NoLeader {
                waited_ms: started.elapsed().as_millis(),
                detail: probe.describe(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Picks a free TCP port on 127.0.0.1 for a node to listen on.
///
/// The node binds it later, so the port is checked free (by binding it) and
/// released. Plain `bind(0)` hands out ports from the kernel's ephemeral
/// range, which every outgoing connection and every other `bind(0)` draws
/// from too; in the window before the node binds, such a port was seen taken
/// under load (the node then exits). So ports are taken first from below the
/// ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`), which the
/// kernel never assigns by itself, in sequence from a per-process random
/// start, so one harness never hands out the same port twice; `bind(0)` is
/// the fallback.
pub fn free_port() -> Result<SocketAddr, ClusterError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let (eph_lo, _) = ephemeral_range().unwrap_or((32768, 60999));
    const LOW: u32 = 10_000;
    if eph_lo > LOW + 1000 {
        let span = eph_lo - LOW;
        if NEXT.load(Ordering::Relaxed) == u32::MAX {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let start = (std::process::id().wrapping_mul(7919) ^ nanos) % span;
            let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
        }
        for _ in 0..span.min(4096) {
            let port = LOW + NEXT.fetch_add(1, Ordering::Relaxed) % span;
            if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
                return l.local_addr().map_err(ClusterError::Port);
            }
        }
    }
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(ClusterError::Port)?;
    l.local_addr().map_err(ClusterError::Port)
}

fn ephemeral_range() -> Option<(u32, u32)> {
    let s = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut it = s.split_whitespace().map(|x| x.parse::<u32>().ok());
    Some((it.next()??, it.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: NodeId, term: u64, role: &str, leader: Option<NodeId>) -> Result<NodeStatus, String> {
        Ok(NodeStatus {
            id,
            term,
            role: role.into(),
            leader,
            commit_index: 0,
            last_applied: 0,
            members: vec![1, 2, 3],
            learners: vec![],
        })
    }

    #[test]
    fn free_ports_are_distinct_bindable_and_outside_the_ephemeral_range() {
        let (eph_lo, eph_hi) = ephemeral_range().unwrap_or((32768, 60999));
        let ports: Vec<u16> = (0..200).map(|_| free_port().unwrap().port()).collect();
        let distinct: std::collections::BTreeSet<_> = ports.iter().collect();
        assert_eq!(distinct.len(), ports.len());
        for p in &ports {
            if eph_lo > 11_000 {
                assert!(!(eph_lo..=eph_hi).contains(&(*p as u32)), "{p}");
            }
            std::net::TcpListener::bind(("127.0.0.1", *p)).unwrap();
        }
    }

    #[test]
    fn leader_needs_a_majority_that_agrees_on_term_and_leader() {
        let mut m = BTreeMap::new();
        m.insert(1, st(1, 3, "leader", Some(1)));
        m.insert(2, st(2, 4, "candidate", None));
        m.insert(3, Err("down".into()));
        assert_eq!(confirmed_leader(&m), None);
        m.insert(3, st(3, 3, "follower", Some(1)));
        assert_eq!(
            confirmed_leader(&m),
            Some(LeaderInfo { leader: 1, term: 3 })
        );
    }

    #[test]
    fn stale_leader_loses_to_newer_confirmed_one() {
        let mut m = BTreeMap::new();
        m.insert(1, st(1, 3, "leader", Some(1)));
        m.insert(2, st(2, 5, "leader", Some(2)));
        m.insert(3, st(3, 5, "follower", Some(2)));
        assert_eq!(
            confirmed_leader(&m),
            Some(LeaderInfo { leader: 2, term: 5 })
        );
    }
}
