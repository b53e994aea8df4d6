//! The vocabulary shared by the Raft core, its storage and its transport.
//!
//! These types are the contract between the pure core (`raft::Raft`) and the
//! runtime around it (storage, peer transport, client API). They derive serde so
//! that the runtime can persist and ship them without a second set of types.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

pub type NodeId = u64;
pub type Term = u64;
pub type Index = u64;

/// Voting and non-voting members. A configuration takes effect as soon as its
/// entry is appended to a log (not when committed), as in the Raft thesis §4.1.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub voters: BTreeSet<NodeId>,
    pub learners: BTreeSet<NodeId>,
}

impl Membership {
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Self {
        Membership {
            voters: voters.into_iter().collect(),
            learners: BTreeSet::new(),
        }
    }

    pub fn contains(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.learners.contains(&id)
    }

    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id)
    }

    /// Size of a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// A single-server membership change requested by the application.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfChange {
    /// Add a node: it first joins as a learner, and the leader promotes it to
    /// voter with a second configuration entry once it has caught up.
    AddNode(NodeId),
    /// Remove a voter or learner (the leader itself included).
    RemoveNode(NodeId),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntryPayload {
    /// Appended by every new leader so that it can commit an entry of its own term.
    Noop,
    /// Opaque application command (our KV state machine encodes its own ops).
    Command(Vec<u8>),
    /// The complete new configuration.
    Config(Membership),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub term: Term,
    pub index: Index,
    pub payload: EntryPayload,
}

/// What must be on stable storage before any message that depends on it is sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub vote: Option<NodeId>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub last_index: Index,
    pub last_term: Term,
    pub membership: Membership,
}

/// A state-machine image at `meta.last_index`. `data` is opaque to the core.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    RequestVote {
        pre_vote: bool,
        last_log_index: Index,
        last_log_term: Term,
        /// Set when the election was started by TimeoutNow (leadership
        /// transfer): voters then ignore their leader lease / CheckQuorum stickiness.
        transfer: bool,
    },
    RequestVoteResponse {
        pre_vote: bool,
        granted: bool,
    },
    AppendEntries {
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
        /// Heartbeat round number, echoed back; used by ReadIndex and the lease.
        round: u64,
    },
    AppendEntriesResponse {
        success: bool,
        /// On success: the index of the last entry known to match the leader
        /// (the last one this message verified, never a stale suffix).
        /// On rejection: the `prev_log_index` that was rejected, so that the
        /// leader can ignore stale rejections.
        match_index: Index,
        /// On rejection: the fast back-off hint (Raft paper §5.3, the
        /// "conflicting term and first index it stores for that term").
        conflict_term: Option<Term>,
        conflict_index: Index,
        round: u64,
    },
    InstallSnapshot {
        meta: SnapshotMeta,
        /// Byte offset of this chunk within the snapshot data.
        offset: u64,
        data: Vec<u8>,
        done: bool,
        round: u64,
    },
    InstallSnapshotResponse {
        /// Bytes received so far (the next offset the follower wants),
        /// or the snapshot's last index once it was installed.
        next_offset: u64,
        last_index: Index,
        done: bool,
        round: u64,
    },
    /// Leadership transfer: the receiver starts an election at once.
    TimeoutNow,
}

/// A ReadIndex answer: once the application has applied up to `index`, the read
/// identified by `ctx` may be served from local state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadState {
    pub ctx: u64,
    pub index: Index,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Follower,
    PreCandidate,
    Candidate,
    Leader,
    Learner,
}

impl Role {
    /// The role as the client API and the traces report it (docs/node.md,
    /// docs/formats.md): a pre-candidate is reported as a candidate.
    pub fn reported(self) -> formats::trace::Role {
        match self {
            Role::Follower => formats::trace::Role::Follower,
            Role::PreCandidate | Role::Candidate => formats::trace::Role::Candidate,
            Role::Leader => formats::trace::Role::Leader,
            Role::Learner => formats::trace::Role::Learner,
        }
    }

    /// The reported role's name.
    pub fn as_str(self) -> &'static str {
        self.reported().name()
    }
}
