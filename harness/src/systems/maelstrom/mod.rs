//! Maelstrom-protocol nodes as a system under test (`--system maelstrom
//! --node-bin 'CMD ARGS…'`): any program that speaks Maelstrom's node
//! protocol (JSON lines on stdin/stdout; hundreds of Raft implementations
//! do) and serves its lin-kv workload, run as real processes with the
//! harness as their network.
//!
//! - [`system`]: the descriptor's options, the node command, the refusal
//!   of `kill` for a node that keeps no state across restarts;
//! - [`cluster`]: the processes and their router as the seam's
//!   [`Cluster`](crate::systems::Cluster): status from the wire, the
//!   router as the [`Network`](crate::systems::Network) the nemesis cuts,
//!   wire observations into `observations.jsonl`;
//! - [`router`]: reads every node's stdout and routes each message by its
//!   `dest`, through a link matrix with the proxy mesh's modes plus faults
//!   on single messages ([`faults`]); completes client calls; logs every
//!   message's fate; feeds the [`observe`] election-safety observer.
//! - [`client`]: a workload op as a lin-kv request, ended ok / fail / info
//!   by Maelstrom's error codes, as the same [`crate::client::Completion`]
//!   as the HTTP client.
//! - [`host`]: supervised processes with piped stdin/stdout, attached to
//!   the router.
//!
//! Node `id` is `n<id>` on the wire, client `k` is `c<k>` (`c0` is the
//! router itself, which sends `init`).

pub mod client;
pub mod cluster;
pub mod faults;
pub mod host;
pub mod observe;
pub mod router;
pub mod system;

pub use client::MaelstromClient;
pub use cluster::MaelstromCluster;
pub use faults::MessageFaults;
pub use host::{Host, HostError};
pub use observe::{Observation, ObservationKind, ObserveConfig, Violation, WireStatus};
pub use router::{CallError, ClientMessage, Router, RouterConfig, RouterError, RouterStats};
pub use system::{Maelstrom, MaelstromSettings, DESCRIPTOR};

use crate::cluster::NodeId;
use crate::proxy::LinkMode;

/// The client id the router sends `init` from.
pub const ROUTER_CLIENT: &str = "c0";

/// Node `id`'s name on the wire.
pub fn node_name(id: NodeId) -> String {
    format!("n{id}")
}

/// Client `k`'s name on the wire.
pub fn client_name(k: u64) -> String {
    format!("c{k}")
}

/// Maelstrom nodes' network is their message router: the same matrix as
/// the proxy mesh, so partitions are planned and recorded the same way.
impl crate::systems::Network for Router {
    fn apply(&self, links: &[(NodeId, NodeId, LinkMode)]) -> Result<(), String> {
        Router::apply(self, links).map_err(|e| e.to_string())
    }
    fn heal(&self) {
        Router::heal(self)
    }
    fn matrix(&self) -> Vec<(NodeId, NodeId, LinkMode)> {
        Router::matrix(self)
    }
}
