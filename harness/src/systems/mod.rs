//! Systems under test, behind one seam (Jepsen's `db` and `client`).
//!
//! A system is one module here (`raft_node/`, `etcd/`, `maelstrom/`) that
//! implements a few small traits, and nothing in the run loop, the generator, the
//! nemesis, the progress line or the report knows which system it drives:
//!
//! - [`System`]: a configured system (its binary found, its version read,
//!   its `--system-opt`s parsed) that can [`System::launch`] a cluster;
//! - [`Cluster`]: the running nodes: start, stop, `kill -9`, pause, resume
//!   and wipe a node (processes through the [`Supervisor`](crate::cluster::Supervisor)),
//!   a status probe (role, term and leader as the node reports them),
//!   membership changes where the system has them, the [`Network`] the
//!   nemesis may cut, and a [`Client`];
//! - [`Network`]: the links between the nodes, one [`LinkMode`] per
//!   ordered pair (our proxy meshes; a message router for Maelstrom nodes);
//! - [`Client`]: a workload op ended ok / fail / info by the system's own
//!   semantics.
//!
//! What a system can take is declared up front in its [`Descriptor`]: its
//! [`Capabilities`] (fault kinds, read levels, workloads, whether it writes
//! Raft traces) and its options ([`OptSpec`]). `harness run` refuses a
//! combination the system cannot take before anything starts (exit 3, with
//! a sentence that says what it supports). Adding a system is a new module
//! and one more [`SystemKind`]; the run loop does not change.

pub mod capabilities;
pub mod etcd;
pub mod maelstrom;
pub mod opts;
pub mod poller;
pub mod raft_node;
pub mod status;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

pub use crate::client::{Client, Completion, ReadConsistency};
use crate::cluster::{ClusterError, NodeId, ProcessState};
use crate::nemesis::FaultKinds;
use crate::proxy::LinkMode;
pub use capabilities::Capabilities;
pub use opts::{OptSpec, SystemOpts};
pub use status::{probe_leader, wait_for_leader, LeaderInfo, LeaderProbe, LogPosition, NodeStatus};

/// The systems `--system` can name.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum SystemKind {
    /// Our own Raft node (this build's `harness node`, or `--node-bin`).
    #[default]
    RaftNode,
    /// etcd 3.4 (`etcd` on PATH, or `--node-bin`).
    Etcd,
    /// Any program that speaks Maelstrom's node protocol (lin-kv), given
    /// as `--node-bin 'CMD ARGS…'`; by default our node in `--maelstrom` mode.
    Maelstrom,
}

impl SystemKind {
    pub const ALL: [SystemKind; 3] = [
        SystemKind::RaftNode,
        SystemKind::Etcd,
        SystemKind::Maelstrom,
    ];

    /// What the system declares about itself.
    pub fn descriptor(self) -> &'static Descriptor {
        match self {
            SystemKind::RaftNode => &raft_node::DESCRIPTOR,
            SystemKind::Etcd => &etcd::system::DESCRIPTOR,
            SystemKind::Maelstrom => &maelstrom::DESCRIPTOR,
        }
    }

    /// The name in `--system` and `test.json`.
    pub fn name(self) -> &'static str {
        self.descriptor().name
    }
}

/// What a system declares before anything runs: its name, what it can
/// take, its options, and how to configure it.
pub struct Descriptor {
    /// The name in `--system` and `test.json`.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    pub capabilities: Capabilities,
    /// The default `--nemesis-interval` in seconds: short enough that a
    /// 20 s run plays most nemesis packages, long enough that their holds
    /// (1–2 intervals) outlast an election of the system's default
    /// timeouts.
    pub nemesis_interval: f64,
    /// Whether its nodes' messages go through the harness's own router
    /// (Maelstrom's stdin/stdout protocol) rather than over TCP, where
    /// the proxy mesh (`--no-proxies` off) carries them.
    pub routed: bool,
    /// The keys `--system-opt` takes for this system.
    pub options: &'static [OptSpec],
    /// Finds the program, reads its version, parses the options.
    pub configure: fn(&SystemSetup) -> Result<Box<dyn System>, SystemError>,
}

/// What a run tells a system before it configures it.
#[derive(Debug, Clone, Default)]
pub struct SystemSetup {
    /// `--system-opt`s, keys already checked against the descriptor.
    pub opts: SystemOpts,
    /// `--node-bin`: the program to run instead of the system's default.
    pub node_bin: Option<PathBuf>,
    /// The run's fault kinds, for a system whose support of a kind depends
    /// on its options (a Maelstrom node takes `kill` only when persistent).
    pub nemesis: FaultKinds,
}

/// Errors configuring a system: all of them before anything starts, so the
/// run exits 3 without a run folder.
#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    /// A `--system-opt` the system does not have, or a value it cannot take.
    #[error("{0}")]
    Option(String),
    /// The system's program is missing or unusable (the message says how
    /// to install it).
    #[error("{0}")]
    Program(String),
    /// A combination the system cannot take (the message says what it can).
    #[error("{0}")]
    Unsupported(String),
}

/// What `test.json` records of the system, so that a run can be replayed:
/// the same system, version and options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemRecord {
    /// `raft-node`, `etcd`.
    pub name: String,
    /// Our crate version, or what `etcd --version` printed.
    pub version: String,
    /// Every option with the value the run used (defaults included).
    pub opts: BTreeMap<String, String>,
    /// The program, when `--node-bin` named one (`null`: the system's default).
    #[serde(default)]
    pub bin: Option<String>,
}

/// How to launch a cluster.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// The run folder: node files go to `nodes/nN/` under it.
    pub run_dir: PathBuf,
    /// Node ids are `1..=nodes`, all members at the start.
    pub nodes: usize,
    /// Peer traffic through the harness's network (needed for partitions;
    /// off only to measure what it costs).
    pub proxies: bool,
    /// The run's seed: proxies' jitter, and the nodes' own RNG where the
    /// system takes one.
    pub seed: u64,
}

/// A configured system, ready to launch clusters.
pub trait System: Send + Sync {
    fn kind(&self) -> SystemKind;
    /// What `test.json` records.
    fn record(&self) -> SystemRecord;
    /// One line for the configuration printout (program and settings).
    fn describe(&self) -> String;
    /// Starts the nodes (it does not wait for a leader).
    fn launch(&self, spec: LaunchSpec) -> BoxFuture<'_, Result<Arc<dyn Cluster>, ClusterError>>;
}

/// A change of one node's clock ([`Cluster::set_clock`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClockChange {
    /// How fast its time runs from now on (1: real time).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// A jump of its time, in ms (negative: back).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jump_ms: Option<i64>,
}

/// How the run's client should behave.
#[derive(Debug, Clone, Copy)]
pub struct ClientSpec {
    pub reads: ReadConsistency,
    /// An op gives up after this, redirects included.
    pub op_timeout: Duration,
}

/// A running cluster. Implementations must be cheap to call concurrently:
/// the nemesis, the status poller and the clients use it at once.
pub trait Cluster: Send + Sync {
    /// Every node the harness manages, including removed ones.
    fn node_ids(&self) -> Vec<NodeId>;
    /// The process state the harness believes node `id` is in (reaps exits).
    fn state(&self, id: NodeId) -> Option<ProcessState>;
    /// How node `id`'s last process ended, for error messages.
    fn last_exit(&self, id: NodeId) -> Option<String>;
    /// Starts a stopped node on its data.
    fn start(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// Graceful stop: SIGTERM, then SIGKILL after a grace period.
    fn stop(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// `kill -9` of the node's process group.
    fn kill(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// SIGSTOP of the node's process group.
    fn pause(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// SIGCONT of the node's process group.
    fn resume(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// Kills node `id` and discards its data: it comes back empty, as a new
    /// node that waits to be added.
    fn wipe(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// The node's own account of its Raft state, with a short timeout.
    fn status(&self, id: NodeId) -> BoxFuture<'_, Result<NodeStatus, ClusterError>>;
    /// Removes `id` from the configuration; resolves once committed.
    fn remove_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// Adds `id` back (starting it as the system requires); resolves once it
    /// is a voter again.
    fn add_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>>;
    /// Changes node `id`'s clock: its time runs `rate` times as fast from
    /// now on, and/or jumps by `jump_ms` (back: no timer is due until it
    /// catches up). Only systems whose capabilities say `clock` have it.
    fn set_clock(
        &self,
        id: NodeId,
        change: ClockChange,
    ) -> BoxFuture<'_, Result<(), ClusterError>> {
        let _ = (id, change);
        Box::pin(async {
            Err(ClusterError::Unsupported {
                system: "this system",
                action: "change a node's clock",
            })
        })
    }
    /// The links the nemesis may cut; `None` when the nodes talk directly.
    fn network(&self) -> Option<Arc<dyn Network>>;
    /// A client for the run's workers.
    fn client(&self, spec: ClientSpec) -> Result<Arc<dyn Client>, ClusterError>;
    /// Resumes paused nodes, then stops every node.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// The links between the nodes, one mode per ordered pair.
pub trait Network: Send + Sync {
    /// Sets every link named; the others stay as they are. Validates all
    /// before changing any.
    fn apply(&self, links: &[(NodeId, NodeId, LinkMode)]) -> Result<(), String>;
    /// Every link back to `pass`.
    fn heal(&self);
    /// The whole matrix, ordered by (from, to).
    fn matrix(&self) -> Vec<(NodeId, NodeId, LinkMode)>;
}

impl Network for crate::proxy::ProxyMesh {
    fn apply(&self, links: &[(NodeId, NodeId, LinkMode)]) -> Result<(), String> {
        crate::proxy::ProxyMesh::apply(self, links).map_err(|e| e.to_string())
    }
    fn heal(&self) {
        crate::proxy::ProxyMesh::heal(self)
    }
    fn matrix(&self) -> Vec<(NodeId, NodeId, LinkMode)> {
        crate::proxy::ProxyMesh::matrix(self)
    }
}

/// The seed node `id` gets from the run's seed: distinct per node, the same
/// in every run with the same seed (splitmix64 of the pair).
pub fn node_seed(run_seed: u64, id: NodeId) -> u64 {
    let mut z = run_seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `--help` text: the options of every system, grouped by system.
pub fn options_help() -> String {
    let mut s = String::from("System options (--system-opt KEY=VALUE, repeatable), by system:\n");
    for kind in SystemKind::ALL {
        let d = kind.descriptor();
        s.push_str(&format!("\n  --system {}: {}\n", d.name, d.about));
        for o in d.options {
            let key = format!("{}={}", o.key, o.value);
            s.push_str(&format!(
                "    {key:<24} {} [default: {}]\n",
                o.help, o.default
            ));
        }
        s.push_str(&format!("    supports: {}\n", d.capabilities.summary()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_seeds_differ_per_node_and_repeat_per_run_seed() {
        let a: Vec<u64> = (1..=5).map(|id| node_seed(7, id)).collect();
        let b: Vec<u64> = (1..=5).map(|id| node_seed(7, id)).collect();
        assert_eq!(a, b);
        let distinct: std::collections::BTreeSet<_> = a.iter().collect();
        assert_eq!(distinct.len(), 5);
        assert_ne!(node_seed(8, 1), node_seed(7, 1));
    }

    #[test]
    fn help_lists_every_system_with_its_options() {
        let h = options_help();
        for kind in SystemKind::ALL {
            let d = kind.descriptor();
            assert!(h.contains(&format!("--system {}", d.name)), "{h}");
            for o in d.options {
                assert!(h.contains(&format!("{}={}", o.key, o.value)), "{h}");
            }
        }
    }
}
