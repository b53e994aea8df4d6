//! Hosting Maelstrom-protocol nodes: any program that speaks Maelstrom's
//! node protocol (JSON lines on stdin/stdout; hundreds of Raft
//! implementations do), run as real processes with the harness as their
//! network.
//!
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
pub mod faults;
pub mod host;
pub mod observe;
pub mod router;

pub use client::MaelstromClient;
pub use faults::MessageFaults;
pub use host::{Host, HostError};
pub use observe::{Observation, ObservationKind, ObserveConfig, Violation};
pub use router::{CallError, ClientMessage, Router, RouterConfig, RouterError, RouterStats};

use crate::cluster::NodeId;

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
