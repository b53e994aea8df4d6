//! The Raft consensus core: a pure, synchronous, deterministic state machine.
//!
//! Messages, ticks and proposals go in; a [`Ready`] batch of work comes out. The
//! core never touches a socket, a disk, a clock or a global RNG (randomness is
//! a seeded RNG passed in at construction), so a simulator can drive thousands
//! of seeded clusters and replay any one of them exactly.
//!
//! The runtime loop is:
//! 1. feed inputs: [`Raft::tick`], [`Raft::step`], [`Raft::propose`], …
//! 2. `let rd = raft.ready();`
//! 3. persist `rd.snapshot` (if any), then `rd.hard_state` and `rd.entries`
//!    (an entry whose index is ≤ the stored last index truncates the stored
//!    log from that index first), and fsync;
//! 4. only then send `rd.messages`;
//! 5. apply `rd.committed` in order (and restore `rd.snapshot` into the state
//!    machine before them), answer `rd.read_states` once applied up to their index;
//! 6. call [`Raft::advance`] once all of that is done: it takes no
//!    arguments, because `ready()` already handed out (and stopped tracking)
//!    everything in the batch; `advance` only marks the committed entries it
//!    handed out as applied.
//!
//! ### API contract (stable: the node runtime and the simulator depend on it)
//! ```ignore
//! Raft::new(config: Config, persisted: Persisted, rng_seed: u64) -> Raft
//! raft.tick()
//! raft.step(msg: Message)                       // ignores messages not for us
//! raft.propose(data: Vec<u8>) -> Result<(Index, Term), ProposeError>
//! raft.propose_conf_change(cc: ConfChange) -> Result<(Index, Term), ProposeError>
//! raft.read_index(ctx: u64) -> Result<(), ReadError>   // answer later in Ready::read_states
//! raft.lease_read() -> Result<Index, ReadError>        // read index valid under the lease now
//! raft.compact(index: Index, data: Vec<u8>)            // app took a snapshot at applied index
//! raft.transfer_leadership(to: NodeId) -> Result<(), ProposeError>
//! raft.ready() -> Ready                                // take all pending output
//! raft.advance()                                       // the Ready was fully handled
//! raft.status() -> Status                              // id, term, role, leader, commit, applied, membership
//! raft.has_ready() -> bool                             // whether ready() would return work
//! raft.snapshot() -> Option<&Snapshot>                 // latest snapshot (after compact: persist it)
//! raft.entry(index) / raft.log_term(index) / raft.first_index()   // read-only log access
//! ```
//!
//! Notes for the runtime:
//! * `compact` does not go through `Ready`: after calling it, persist
//!   `raft.snapshot()` and drop stored entries up to its index.
//! * `Raft::new` panics on inconsistent timings: `1 <= heartbeat_ticks <
//!   election_ticks_min < election_ticks_max` and `lease_ticks < election_ticks_min`.
//! * `lease_read` needs `check_quorum` (its vote stickiness is what makes the
//!   lease sound); without it every lease read answers `LeaseExpired`.
//! * A node restarting honours a lease it may have granted: it refuses votes
//!   for `election_ticks_min` ticks after boot (under CheckQuorum).

mod core;
mod log;
mod progress;
mod read_only;
pub mod types;

pub use self::core::Raft;
pub use types::*;

use thiserror::Error;

/// Tunables of one core. Times are in ticks; the runtime decides how long a tick is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub id: NodeId,
    /// Election timeout drawn uniformly from `[election_ticks_min, election_ticks_max)`,
    /// anew at every reset (both for a follower's wait and a candidate's retry).
    pub election_ticks_min: u64,
    pub election_ticks_max: u64,
    pub heartbeat_ticks: u64,
    pub pre_vote: bool,
    pub check_quorum: bool,
    /// Leader lease length. Must be < `election_ticks_min`; it is valid only
    /// under the assumption that clocks of all nodes advance at about the same
    /// rate (bounded drift), never on wall-clock agreement.
    pub lease_ticks: u64,
    /// Cap on entries in one AppendEntries message.
    pub max_entries_per_msg: usize,
    /// Cap on AppendEntries messages in flight to one follower (pipelining).
    pub max_inflight_msgs: usize,
    pub snapshot_chunk_bytes: usize,
    /// Planted bugs of the catalogue (docs/bugs.md) that live in the core.
    #[cfg(feature = "bugs")]
    pub bugs: crate::bugs::BugSet,
}

/// [`Config::max_entries_per_msg`]'s default: bounds a message to a
/// lagging follower; the harness's `figure-8` nemesis lines a lagging
/// follower's first batch up with an old-term suffix by it.
pub const MAX_ENTRIES_PER_MSG: usize = 256;

impl Config {
    /// Defaults for a 10 ms tick: election timeout 150–300 ms, heartbeat 50 ms.
    pub fn new(id: NodeId) -> Self {
        Config {
            id,
            election_ticks_min: 15,
            election_ticks_max: 30,
            heartbeat_ticks: 5,
            pre_vote: true,
            check_quorum: true,
            lease_ticks: 12,
            max_entries_per_msg: MAX_ENTRIES_PER_MSG,
            max_inflight_msgs: 64,
            snapshot_chunk_bytes: 64 * 1024,
            #[cfg(feature = "bugs")]
            bugs: crate::bugs::BugSet::none(),
        }
    }
}

/// What a node recovered from its storage at start-up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Persisted {
    pub hard_state: HardState,
    /// The latest snapshot (log entries at or below its index are gone).
    pub snapshot: Option<Snapshot>,
    /// Log entries after the snapshot, contiguous and ascending.
    pub entries: Vec<Entry>,
    /// Configuration to use for a brand-new cluster when neither the snapshot
    /// nor the log holds one (`--members`); empty for a node waiting to be added.
    pub initial_membership: Membership,
}

/// One batch of work for the runtime; see the module docs for the order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ready {
    pub hard_state: Option<HardState>,
    /// A snapshot received from the leader: persist it, drop the whole stored
    /// log (the core's log now starts right after the snapshot; any later
    /// entries arrive in `entries`), and restore the state machine from it
    /// before applying `committed`.
    pub snapshot: Option<Snapshot>,
    /// Entries to append (may overwrite a conflicting stored suffix).
    pub entries: Vec<Entry>,
    pub messages: Vec<Message>,
    /// Committed entries to apply, in order, each exactly once.
    pub committed: Vec<Entry>,
    pub read_states: Vec<ReadState>,
    /// ReadIndex requests that can no longer be answered (leadership lost).
    pub dropped_reads: Vec<u64>,
    /// Role/term/leader changed during this batch (for traces and status).
    pub role_changed: bool,
    /// A new commit index, when it advanced (for the trace).
    pub commit_index: Option<Index>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.hard_state.is_none()
            && self.snapshot.is_none()
            && self.entries.is_empty()
            && self.messages.is_empty()
            && self.committed.is_empty()
            && self.read_states.is_empty()
            && self.dropped_reads.is_empty()
            && !self.role_changed
            && self.commit_index.is_none()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub term: Term,
    pub role: Role,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub last_applied: Index,
    pub last_index: Index,
    pub membership: Membership,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ProposeError {
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("the leader has not yet committed an entry of its term")]
    NotReady,
    #[error("a membership change is already pending at index {pending_index}")]
    ChangePending { pending_index: Index },
    #[error("bad membership change: {0}")]
    BadChange(String),
    #[error("leadership transfer in progress")]
    Transferring,
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum ReadError {
    #[error("not the leader (leader hint: {leader:?})")]
    NotLeader { leader: Option<NodeId> },
    #[error("the leader has not yet committed an entry of its term")]
    NotReady,
    #[error("the leader lease has expired")]
    LeaseExpired,
}
