//! The client half of the seam (Jepsen's `client`): one workload [`Op`]
//! against one node, ended `ok`, `fail` or `info` **by the system's own
//! semantics**, which only the system's module knows (our node's 421 and
//! 409, etcd's failed txn compare, Maelstrom's error codes).
//!
//! The three outcomes, as every implementation must decide them:
//! - `ok`: the operation happened (for a read: it returned this value);
//! - `fail`: it definitely did not happen: the request never left, or the
//!   system says it had no effect (a cas precondition is such a failure,
//!   with error `precondition`: an observation the checker verifies);
//! - `info`: it may have happened, now or later: a write, cas or append
//!   that timed out, lost its connection, or was left in doubt by the
//!   system. A read that got no answer is `fail`: it changed nothing.

use futures::future::BoxFuture;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;
use workloads::Op;

use crate::cluster::NodeId;
use crate::history::EventType;

/// Performs workload ops against a running cluster. Cheap to share between
/// workers: one client serves every worker of a run.
pub trait Client: Send + Sync {
    /// Performs `op`, starting at `node` (a system with redirects may end
    /// at another node: the completion says which), within the client's
    /// op timeout.
    fn invoke<'a>(&'a self, op: &'a Op, node: NodeId) -> BoxFuture<'a, Completion>;
}

/// How reads are served (`--read-consistency`). Each system maps these
/// levels to its own, or refuses the ones it does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadConsistency {
    /// Always linearizable (our node: ReadIndex on the leader; etcd: its
    /// default linearizable range).
    Linearizable,
    /// The leader answers within its lease: linearizable while clocks behave.
    Lease,
    /// Whatever node was asked answers from its own state: not linearizable
    /// under faults (etcd: a serializable range).
    Stale,
}

impl ReadConsistency {
    /// Every level.
    pub const ALL: [ReadConsistency; 3] = [
        ReadConsistency::Linearizable,
        ReadConsistency::Lease,
        ReadConsistency::Stale,
    ];

    /// The name in `--read-consistency` and `test.json`.
    pub fn name(self) -> &'static str {
        match self {
            ReadConsistency::Linearizable => "linearizable",
            ReadConsistency::Lease => "lease",
            ReadConsistency::Stale => "stale",
        }
    }
}

impl fmt::Display for ReadConsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ReadConsistency {
    type Err = String;
    /// Also takes the names other systems use for the same levels: Consul's
    /// `consistent` and `default`, etcd's `serializable`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "linearizable" | "consistent" => Ok(ReadConsistency::Linearizable),
            "lease" | "default" => Ok(ReadConsistency::Lease),
            "stale" | "serializable" => Ok(ReadConsistency::Stale),
            _ => Err(format!(
                "unknown read consistency {s:?} (expected linearizable, lease or stale)"
            )),
        }
    }
}

/// How an op ended, ready to become the completion event.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// ok, fail or info.
    pub kind: EventType,
    /// The completion's `value` (a read's result, otherwise the invoke value).
    pub value: Value,
    /// The node that answered last (after redirects).
    pub node: NodeId,
    /// Why it failed or is unknown.
    pub error: Option<String>,
    /// Whether the node could not serve anything right now (unreachable,
    /// or no leader known), so the worker should back off a little before
    /// its next op instead of spinning through failures.
    pub backoff: bool,
}

impl Completion {
    /// An answered op (ok, or fail/info with a reason).
    pub fn new(kind: EventType, value: Value, node: NodeId, error: Option<String>) -> Self {
        Completion {
            kind,
            value,
            node,
            error,
            backoff: false,
        }
    }

    /// An op that never reached a node able to serve it: `fail`, and the
    /// worker backs off.
    pub fn unreachable(value: Value, node: NodeId, error: String) -> Self {
        Completion {
            kind: EventType::Fail,
            value,
            node,
            error: Some(error),
            backoff: true,
        }
    }
}
