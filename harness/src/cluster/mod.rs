//! Processes and ports: the plumbing every system's cluster is built on.
//!
//! [`supervisor`] starts, `kill -9`s, pauses, resumes and stops OS
//! processes (process groups, parent-death signal, logs appended across
//! restarts, no orphans); [`free_port`] hands out loopback ports. The seam
//! a run drives a system through is [`crate::systems`].

pub mod supervisor;

use std::collections::BTreeMap;
use std::net::SocketAddr;

pub use supervisor::{Pipes, ProcessSpec, ProcessState, Supervisor};

/// A node's identity, as in the node's `--id` and in membership entries.
pub type NodeId = u64;

/// Errors controlling a cluster. A harness failure (could not start a node, a
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
    #[error("{system} cannot {action}")]
    Unsupported {
        system: &'static str,
        action: &'static str,
    },
    /// A system-specific failure on one node (`n0`: the cluster as a whole).
    #[error("n{id}: {message}")]
    Node { id: NodeId, message: String },
}

/// Where a node listens: clients on one port, its peers on another.
#[derive(Debug, Clone, Copy)]
pub struct NodeAddrs {
    pub client: SocketAddr,
    pub peer: SocketAddr,
}

/// Free client and peer ports for nodes `1..=nodes`, reserved before any
/// node starts so that every node's peer list can name them all.
pub fn reserve_addrs(nodes: usize) -> Result<BTreeMap<NodeId, NodeAddrs>, ClusterError> {
    (1..=nodes as NodeId)
        .map(|id| {
            Ok((
                id,
                NodeAddrs {
                    client: free_port()?,
                    peer: free_port()?,
                },
            ))
        })
        .collect()
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
}
