//! The consensus state machine itself: roles, elections, replication, commit,
//! membership, reads, compaction and leadership transfer.
//!
//! Every public method only mutates in-memory state and queues output; the
//! output leaves through [`Raft::ready`]. See the module docs of `raft` for the
//! runtime loop and the persist → send → apply order it relies on.

use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::{debug, info, warn};

use super::log::RaftLog;
use super::progress::{Progress, ProgressState};
use super::read_only::ReadOnly;
use super::types::*;
use super::{Config, Persisted, ProposeError, ReadError, Ready, Status};
#[cfg(feature = "bugs")]
use crate::bugs::Bug;

/// One Raft node's consensus core. See the `raft` module docs for the API contract.
#[derive(Debug)]
pub struct Raft {
    cfg: Config,
    id: NodeId,
    rng: ChaCha8Rng,

    term: Term,
    vote: Option<NodeId>,
    role: Role,
    leader: Option<NodeId>,
    log: RaftLog,

    /// The configuration in effect: the latest one in the log (committed or
    /// not), else the snapshot's, else the initial one.
    membership: Membership,
    /// Index of the log entry holding `membership` (0: snapshot or initial).
    membership_index: Index,
    initial_membership: Membership,

    /// Ticks since boot (a local, monotonic clock).
    now: u64,
    /// Follower/candidate: ticks since the election timer was reset.
    /// Leader: ticks since the last CheckQuorum sweep.
    election_elapsed: u64,
    randomized_timeout: u64,
    heartbeat_elapsed: u64,
    /// Ticks since we last heard from a leader (0 at boot, so that a node
    /// that restarts honours any lease it may have granted before the crash).
    since_leader: u64,

    /// Votes received in the current (pre-)election.
    votes: BTreeMap<NodeId, bool>,

    // Leader state.
    progress: BTreeMap<NodeId, Progress>,
    round: u64,
    /// Whether messages carrying the current round were already handed out.
    round_sent: bool,
    /// Reads wait for a round that `ready` starts: it rides on the
    /// AppendEntries going out anyway and heartbeats only the other peers,
    /// so a batch of writes and reads costs one message per follower.
    round_pending: bool,
    read_only: ReadOnly,
    /// Leadership transfer in progress: (target, start tick).
    transfer: Option<(NodeId, u64)>,
    /// A TimeoutNow was sent this term: the target may be elected at any
    /// moment without waiting out the voters' stickiness, so the lease is void.
    lease_revoked: bool,
    /// New entries were appended and not yet broadcast.
    needs_bcast: bool,

    // Follower state.
    /// Snapshot being received in chunks.
    incoming_snapshot: Option<(SnapshotMeta, Vec<u8>)>,

    // Output not yet taken by `ready`.
    msgs: Vec<Message>,
    ready_snapshot: Option<Snapshot>,
    read_states: Vec<ReadState>,
    dropped_reads: Vec<u64>,
    prev_hard_state: HardState,
    prev_soft: (Role, Term, Option<NodeId>),
    prev_commit: Index,
}

impl Raft {
    /// Builds a core from what storage recovered.
    ///
    /// # Panics
    /// When the timing configuration is inconsistent: `heartbeat_ticks` must be
    /// ≥ 1 and < `election_ticks_min`, `election_ticks_min` < `election_ticks_max`,
    /// and `lease_ticks` < `election_ticks_min` (the lease's safety margin).
    pub fn new(config: Config, persisted: Persisted, rng_seed: u64) -> Raft {
        assert!(config.heartbeat_ticks >= 1, "heartbeat_ticks must be >= 1");
        assert!(
            config.heartbeat_ticks < config.election_ticks_min,
            "heartbeat_ticks must be < election_ticks_min"
        );
        assert!(
            config.election_ticks_min < config.election_ticks_max,
            "election_ticks_min must be < election_ticks_max"
        );
        assert!(
            config.lease_ticks < config.election_ticks_min,
            "lease_ticks must be < election_ticks_min (lease safety margin)"
        );
        assert!(config.max_entries_per_msg >= 1 && config.max_inflight_msgs >= 1);
        let log = RaftLog::new(persisted.snapshot, persisted.entries);
        let id = config.id;
        let hs = persisted.hard_state;
        let mut raft = Raft {
            id,
            rng: ChaCha8Rng::seed_from_u64(rng_seed),
            term: hs.term,
            vote: hs.vote,
            role: Role::Follower,
            leader: None,
            log,
            membership: Membership::default(),
            membership_index: 0,
            initial_membership: persisted.initial_membership,
            now: 0,
            election_elapsed: 0,
            randomized_timeout: 0,
            heartbeat_elapsed: 0,
            since_leader: 0,
            votes: BTreeMap::new(),
            progress: BTreeMap::new(),
            round: 0,
            round_sent: false,
            round_pending: false,
            read_only: ReadOnly::default(),
            transfer: None,
            lease_revoked: false,
            needs_bcast: false,
            incoming_snapshot: None,
            msgs: Vec::new(),
            ready_snapshot: None,
            read_states: Vec::new(),
            dropped_reads: Vec::new(),
            prev_hard_state: hs,
            prev_soft: (Role::Follower, hs.term, None),
            prev_commit: 0,
            cfg: config,
        };
        raft.recompute_membership();
        raft.role = raft.follower_role();
        raft.prev_soft = (raft.role, raft.term, None);
        raft.prev_commit = raft.log.committed;
        raft.reset_randomized_timeout();
        info!(
            node = id,
            term = raft.term,
            last_index = raft.log.last_index(),
            "raft core started"
        );
        raft
    }

    // ------------------------------------------------------------------
    // Public API
    // ------------------------------------------------------------------

    /// Advances the logical clock by one tick.
    pub fn tick(&mut self) {
        self.now += 1;
        if self.role == Role::Leader {
            self.tick_leader();
        } else {
            self.since_leader = self.since_leader.saturating_add(1);
            self.election_elapsed += 1;
            if self.election_elapsed >= self.randomized_timeout {
                self.election_elapsed = 0;
                if self.promotable() {
                    self.campaign(self.cfg.pre_vote, false);
                }
            }
        }
    }

    /// Handles one message from a peer. Messages addressed to another node are ignored.
    pub fn step(&mut self, msg: Message) {
        if msg.to != self.id {
            debug!(
                node = self.id,
                term = self.term,
                to = msg.to,
                "ignoring message for another node"
            );
            return;
        }
        if msg.term > self.term {
            match &msg.body {
                MessageBody::RequestVote {
                    pre_vote, transfer, ..
                } => {
                    if !transfer && self.in_lease() {
                        debug!(
                            node = self.id,
                            term = self.term,
                            from = msg.from,
                            "ignoring vote request: leader lease"
                        );
                        return;
                    }
                    if !pre_vote {
                        self.become_follower(msg.term, None);
                    }
                }
                MessageBody::RequestVoteResponse {
                    pre_vote: true,
                    granted: true,
                } => {}
                MessageBody::AppendEntries { .. }
                | MessageBody::InstallSnapshot { .. }
                | MessageBody::TimeoutNow => {
                    self.become_follower(msg.term, Some(msg.from));
                }
                _ => self.become_follower(msg.term, None),
            }
        } else if msg.term < self.term {
            self.reply_stale(&msg);
            return;
        }
        let from = msg.from;
        let msg_term = msg.term;
        match msg.body {
            MessageBody::RequestVote {
                pre_vote,
                last_log_index,
                last_log_term,
                ..
            } => self.handle_vote_request(from, msg_term, pre_vote, last_log_index, last_log_term),
            MessageBody::RequestVoteResponse { pre_vote, granted } => {
                let pre_ok = pre_vote
                    && self.role == Role::PreCandidate
                    && (msg_term == self.term + 1 || !granted);
                let real_ok = !pre_vote && self.role == Role::Candidate && msg_term == self.term;
                if pre_ok || real_ok {
                    self.poll(from, granted);
                }
            }
            MessageBody::AppendEntries {
                prev_log_index,
                prev_log_term,
                entries,
                leader_commit,
                round,
            } => {
                if self.accept_leader(from) {
                    self.handle_append(
                        from,
                        prev_log_index,
                        prev_log_term,
                        entries,
                        leader_commit,
                        round,
                    );
                }
            }
            MessageBody::AppendEntriesResponse {
                success,
                match_index,
                conflict_term,
                conflict_index,
                round,
            } => {
                if self.role == Role::Leader {
                    self.handle_append_response(
                        from,
                        success,
                        match_index,
                        conflict_term,
                        conflict_index,
                        round,
                    );
                }
            }
            MessageBody::InstallSnapshot {
                meta,
                offset,
                data,
                done,
                round,
            } => {
                if self.accept_leader(from) {
                    self.handle_snapshot(from, meta, offset, data, done, round);
                }
            }
            MessageBody::InstallSnapshotResponse {
                next_offset,
                last_index,
                done,
                round,
            } => {
                if self.role == Role::Leader {
                    self.handle_snapshot_response(from, next_offset, last_index, done, round);
                }
            }
            MessageBody::TimeoutNow => {
                if self.role != Role::Leader && self.promotable() {
                    info!(
                        node = self.id,
                        term = self.term,
                        from,
                        "TimeoutNow: campaigning at once"
                    );
                    self.campaign(false, true);
                }
            }
        }
    }

    /// Appends an application command (leader only).
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(Index, Term), ProposeError> {
        self.check_can_propose()?;
        Ok(self.append_entry(EntryPayload::Command(data)))
    }

    /// Starts a single-server membership change (leader only). `AddNode` adds
    /// a learner; the leader promotes it to voter once it has caught up.
    pub fn propose_conf_change(&mut self, cc: ConfChange) -> Result<(Index, Term), ProposeError> {
        self.check_can_propose()?;
        if !self.committed_own_term() {
            return Err(ProposeError::NotReady);
        }
        let pending = self.membership_index > self.log.committed;
        #[cfg(feature = "bugs")]
        let pending = pending && !self.bug(Bug::ConcurrentConfChanges);
        if pending {
            return Err(ProposeError::ChangePending {
                pending_index: self.membership_index,
            });
        }
        let mut next = self.membership.clone();
        match cc {
            ConfChange::AddNode(n) => {
                if next.contains(n) {
                    return Err(ProposeError::BadChange(format!(
                        "node {n} is already a member"
                    )));
                }
                next.learners.insert(n);
                // Whatever we knew of a node by this id is void: it may be a
                // removed member restarted with empty storage. `sync_progress`
                // (run by `append_entry`) tracks it afresh: probe from our
                // last index + 1 with nothing known to match.
                self.progress.remove(&n);
            }
            ConfChange::RemoveNode(n) => {
                if !next.contains(n) {
                    return Err(ProposeError::BadChange(format!("node {n} is not a member")));
                }
                if next.voters.len() == 1 && next.is_voter(n) {
                    return Err(ProposeError::BadChange(format!(
                        "node {n} is the last voter"
                    )));
                }
                next.voters.remove(&n);
                next.learners.remove(&n);
            }
        }
        info!(node = self.id, term = self.term, change = ?cc, "proposing membership change");
        Ok(self.append_entry(EntryPayload::Config(next)))
    }

    /// Starts a ReadIndex read; its answer arrives in [`Ready::read_states`]
    /// (or `dropped_reads` if leadership is lost first).
    pub fn read_index(&mut self, ctx: u64) -> Result<(), ReadError> {
        if self.role != Role::Leader {
            #[cfg(feature = "bugs")]
            if self.bug(Bug::StaleFollowerRead) {
                self.read_states.push(ReadState {
                    ctx,
                    index: self.log.committed,
                });
                return Ok(());
            }
            return Err(ReadError::NotLeader {
                leader: self.leader,
            });
        }
        let ready = self.committed_own_term();
        #[cfg(feature = "bugs")]
        let ready = ready || self.bug(Bug::ReadBeforeNoop);
        if !ready {
            return Err(ReadError::NotReady);
        }
        #[cfg(feature = "bugs")]
        if self.bug(Bug::ReadIndexNoHeartbeat) {
            self.read_states.push(ReadState {
                ctx,
                index: self.log.committed,
            });
            return Ok(());
        }
        // A round whose messages are still unsent proves leadership after
        // now as well as a new one would; otherwise wait for the next.
        if self.round == 0 || self.round_sent {
            self.round_pending = true;
        }
        let round = self.round + u64::from(self.round_pending);
        self.read_only.add_request(ctx, self.log.committed, round);
        Ok(())
    }

    /// A read index that may be served locally right now under the leader
    /// lease (see `read_only` for the clock assumption). Requires CheckQuorum,
    /// whose vote stickiness is what makes the lease sound; without it every
    /// call answers `LeaseExpired`.
    pub fn lease_read(&self) -> Result<Index, ReadError> {
        if self.role != Role::Leader {
            return Err(ReadError::NotLeader {
                leader: self.leader,
            });
        }
        if !self.committed_own_term() {
            return Err(ReadError::NotReady);
        }
        let sticky = self.cfg.check_quorum;
        #[cfg(feature = "bugs")]
        let sticky = sticky || self.bug(Bug::LeaseWithoutCheckQuorum);
        let lease_ticks = self.cfg.lease_ticks;
        #[cfg(feature = "bugs")]
        let lease_ticks = if self.bug(Bug::LeasePastBound) {
            2 * self.cfg.election_ticks_max
        } else {
            lease_ticks
        };
        match self.read_only.lease_start {
            Some(start) if sticky && !self.lease_revoked && self.now < start + lease_ticks => {
                Ok(self.log.committed)
            }
            _ => Err(ReadError::LeaseExpired),
        }
    }

    /// The application took a snapshot of its state at `index` (≤ the applied
    /// index): drop the log prefix up to it and keep the snapshot to send to
    /// followers that fall behind. The runtime persists the snapshot itself
    /// (see [`Raft::snapshot`] for its metadata). Requests for an index not in
    /// `(snapshot index, applied]` are ignored with a warning.
    pub fn compact(&mut self, index: Index, data: Vec<u8>) {
        if index <= self.log.offset_index || index > self.log.applied {
            warn!(
                node = self.id,
                term = self.term,
                index,
                snapshot_index = self.log.offset_index,
                applied = self.log.applied,
                "compaction index out of range; ignored"
            );
            return;
        }
        let last_term = self.log.term(index).expect("applied entry is in the log");
        let membership = self.membership_at(index);
        self.log.compact(Snapshot {
            meta: SnapshotMeta {
                last_index: index,
                last_term,
                membership,
            },
            data,
        });
        info!(node = self.id, term = self.term, index, "log compacted");
    }

    /// Hands leadership to `to` (a voter): once it has caught up it is told to
    /// campaign at once (TimeoutNow). Proposals are refused meanwhile; the
    /// transfer is abandoned after a minimum election timeout.
    pub fn transfer_leadership(&mut self, to: NodeId) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if to == self.id {
            return Ok(());
        }
        if !self.membership.is_voter(to) {
            return Err(ProposeError::BadChange(format!("node {to} is not a voter")));
        }
        if self.transfer.is_some() {
            return Err(ProposeError::Transferring);
        }
        info!(
            node = self.id,
            term = self.term,
            to,
            "leadership transfer started"
        );
        self.transfer = Some((to, self.now));
        if self
            .progress
            .get(&to)
            .is_some_and(|p| p.match_index == self.log.last_index())
        {
            self.send_timeout_now(to);
        } else {
            self.send_append(to, true);
        }
        Ok(())
    }

    /// Takes all pending output. Handle it in the order of the module docs.
    pub fn ready(&mut self) -> Ready {
        if self.role == Role::Leader && self.needs_bcast {
            self.needs_bcast = false;
            self.bcast_append();
        }
        if self.role == Role::Leader && self.round_pending {
            self.round_pending = false;
            self.start_read_round();
        }
        let hs = self.hard_state();
        let hard_state = (hs != self.prev_hard_state).then_some(hs);
        self.prev_hard_state = hs;
        let soft = (self.role, self.term, self.leader);
        let role_changed = soft != self.prev_soft;
        self.prev_soft = soft;
        let commit_index = (self.log.committed != self.prev_commit).then_some(self.log.committed);
        self.prev_commit = self.log.committed;
        let messages = std::mem::take(&mut self.msgs);
        if self.role == Role::Leader && !messages.is_empty() {
            self.round_sent = true;
        }
        Ready {
            hard_state,
            snapshot: self.ready_snapshot.take(),
            entries: self.log.take_unstable(),
            messages,
            committed: self.log.take_committed(),
            read_states: std::mem::take(&mut self.read_states),
            dropped_reads: std::mem::take(&mut self.dropped_reads),
            role_changed,
            commit_index,
        }
    }

    /// Whether [`Raft::ready`] would return a non-empty batch.
    pub fn has_ready(&self) -> bool {
        (self.role == Role::Leader && (self.needs_bcast || self.round_pending))
            || self.hard_state() != self.prev_hard_state
            || (self.role, self.term, self.leader) != self.prev_soft
            || self.log.committed != self.prev_commit
            || !self.msgs.is_empty()
            || self.ready_snapshot.is_some()
            || self.log.unstable_from <= self.log.last_index()
            || self.log.committed > self.log.applied_handed
            || !self.read_states.is_empty()
            || !self.dropped_reads.is_empty()
    }

    /// The last `Ready` was fully handled (persisted, sent, applied).
    pub fn advance(&mut self) {
        self.log.applied = self.log.applied_handed;
    }

    pub fn status(&self) -> Status {
        Status {
            id: self.id,
            term: self.term,
            role: self.role,
            leader: self.leader,
            commit_index: self.log.committed,
            last_applied: self.log.applied,
            last_index: self.log.last_index(),
            membership: self.membership.clone(),
        }
    }

    /// The planted bugs this core runs with (the runtime's share of them
    /// lives where the runtime checks them).
    #[cfg(feature = "bugs")]
    pub fn bugs(&self) -> crate::bugs::BugSet {
        self.cfg.bugs
    }

    /// The latest snapshot (taken by [`Raft::compact`], received from the
    /// leader, or recovered at start-up).
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.log.snapshot.as_ref()
    }

    /// The log entry at `index`, if it is still in the log (not compacted).
    pub fn entry(&self, index: Index) -> Option<&Entry> {
        self.log.entry(index)
    }

    /// Term of the entry at `index` (the snapshot's last entry included).
    pub fn log_term(&self, index: Index) -> Option<Term> {
        self.log.term(index)
    }

    /// Index of the first entry still in the log.
    pub fn first_index(&self) -> Index {
        self.log.first_index()
    }

    // ------------------------------------------------------------------
    // Roles and elections (§5.2)
    // ------------------------------------------------------------------

    fn hard_state(&self) -> HardState {
        HardState {
            term: self.term,
            vote: self.vote,
        }
    }

    /// Whether a planted bug of the catalogue is on (docs/bugs.md).
    #[cfg(feature = "bugs")]
    fn bug(&self, bug: Bug) -> bool {
        self.cfg.bugs.has(bug)
    }

    /// Whether `id`'s vote or acknowledgement counts toward a quorum: only a
    /// voter's does.
    fn counts(&self, id: NodeId) -> bool {
        let voter = self.membership.is_voter(id);
        #[cfg(feature = "bugs")]
        let voter = voter || self.bug(Bug::CountsNonVoters);
        voter
    }

    /// May start elections: a voter of the latest configuration, or of the
    /// previous one while the latest is uncommitted (Raft thesis §4.2.2: a
    /// server removed by an uncommitted entry may still be needed, e.g. when
    /// only it holds that entry).
    fn promotable(&self) -> bool {
        self.membership.is_voter(self.id)
            || (self.membership_index > self.log.committed
                && self.membership_index > 0
                && self
                    .membership_at(self.membership_index - 1)
                    .is_voter(self.id))
    }

    fn follower_role(&self) -> Role {
        if self.membership.learners.contains(&self.id) {
            Role::Learner
        } else {
            Role::Follower
        }
    }

    /// CheckQuorum stickiness (Raft thesis §4.2.3): a node that heard from a
    /// leader within the minimum election timeout ignores vote requests, so a
    /// rejoining node cannot depose a healthy leader and the lease holds.
    fn in_lease(&self) -> bool {
        self.cfg.check_quorum && self.since_leader < self.cfg.election_ticks_min
    }

    fn reset_randomized_timeout(&mut self) {
        self.randomized_timeout = self
            .rng
            .gen_range(self.cfg.election_ticks_min..self.cfg.election_ticks_max);
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if self.role == Role::Leader {
            self.dropped_reads.extend(self.read_only.reset());
            self.progress.clear();
            self.transfer = None;
            self.needs_bcast = false;
        }
        if term != self.term {
            self.term = term;
            self.vote = None;
        }
        let role = self.follower_role();
        if role != self.role || leader != self.leader {
            info!(node = self.id, term, leader = ?leader, role = role.as_str(), "became follower");
        }
        self.role = role;
        self.leader = leader;
        self.votes.clear();
        self.election_elapsed = 0;
        self.reset_randomized_timeout();
    }

    fn campaign(&mut self, pre: bool, transfer: bool) {
        // Votes count only from the latest configuration, but while it is
        // uncommitted the voters of the previous one are asked too: they
        // learn our term, so candidates holding different configurations
        // cannot keep out-bidding each other's terms unseen.
        let mut voters: BTreeSet<NodeId> = self.membership.voters.clone();
        if self.membership_index > self.log.committed && self.membership_index > 0 {
            voters.extend(self.membership_at(self.membership_index - 1).voters);
        }
        voters.remove(&self.id);
        let (cand_term, last_index, last_term) =
            (self.term + 1, self.log.last_index(), self.log.last_term());
        if pre {
            self.role = Role::PreCandidate;
            self.leader = None;
        } else {
            self.term += 1;
            self.vote = Some(self.id);
            self.role = Role::Candidate;
            self.leader = None;
        }
        info!(
            node = self.id,
            term = self.term,
            pre_vote = pre,
            transfer,
            "campaigning"
        );
        self.election_elapsed = 0;
        self.reset_randomized_timeout();
        self.votes.clear();
        self.votes.insert(self.id, true);
        for v in voters {
            self.send_term(
                v,
                cand_term,
                MessageBody::RequestVote {
                    pre_vote: pre,
                    last_log_index: last_index,
                    last_log_term: last_term,
                    transfer,
                },
            );
        }
        self.tally();
    }

    fn handle_vote_request(
        &mut self,
        from: NodeId,
        msg_term: Term,
        pre: bool,
        last_index: Index,
        last_term: Term,
    ) {
        let can_vote = self.vote == Some(from)
            || (self.vote.is_none() && self.leader.is_none())
            || (pre && msg_term > self.term);
        #[cfg(feature = "bugs")]
        let can_vote = can_vote || (!pre && self.bug(Bug::DoubleVote));
        let up_to_date = self.log.is_up_to_date(last_index, last_term);
        #[cfg(feature = "bugs")]
        let up_to_date = up_to_date || self.bug(Bug::VoteWithoutLogCheck);
        let granted = can_vote && up_to_date;
        debug!(
            node = self.id,
            term = self.term,
            from,
            pre_vote = pre,
            granted,
            "vote request"
        );
        if granted && !pre {
            self.vote = Some(from);
            self.election_elapsed = 0;
        }
        let reply_term = if granted && pre { msg_term } else { self.term };
        self.send_term(
            from,
            reply_term,
            MessageBody::RequestVoteResponse {
                pre_vote: pre,
                granted,
            },
        );
    }

    fn poll(&mut self, from: NodeId, granted: bool) {
        if self.counts(from) {
            self.votes.entry(from).or_insert(granted);
        }
        self.tally();
    }

    fn tally(&mut self) {
        let quorum = self.membership.quorum();
        let granted = self
            .votes
            .iter()
            .filter(|(id, g)| **g && self.counts(**id))
            .count();
        let rejected = self
            .votes
            .iter()
            .filter(|(id, g)| !**g && self.counts(**id))
            .count();
        if granted >= quorum {
            if self.role == Role::PreCandidate {
                self.campaign(false, false);
            } else {
                self.become_leader();
            }
        } else if rejected >= quorum {
            info!(node = self.id, term = self.term, "election lost");
            self.become_follower(self.term, None);
        }
    }

    fn become_leader(&mut self) {
        info!(node = self.id, term = self.term, "became leader");
        self.role = Role::Leader;
        self.leader = Some(self.id);
        self.votes.clear();
        self.progress.clear();
        self.round = 0;
        self.round_sent = false;
        self.round_pending = false;
        self.dropped_reads.extend(self.read_only.reset());
        self.transfer = None;
        self.lease_revoked = false;
        self.heartbeat_elapsed = 0;
        self.election_elapsed = 0;
        self.since_leader = 0;
        self.sync_progress();
        self.append_entry(EntryPayload::Noop);
        #[cfg(feature = "bugs")]
        if self.bug(Bug::DuplicateApply) {
            self.repropose_uncommitted_commands();
        }
    }

    /// The duplicate-apply bug: a new leader takes the client commands left
    /// uncommitted in its log (before its NO_OP, the last entry) for lost, and
    /// proposes them again. They are not lost: its NO_OP commits them too.
    #[cfg(feature = "bugs")]
    fn repropose_uncommitted_commands(&mut self) {
        let commands: Vec<Vec<u8>> = (self.log.committed + 1..self.log.last_index())
            .filter_map(|i| match &self.log.entry(i)?.payload {
                EntryPayload::Command(data) => Some(data.clone()),
                _ => None,
            })
            .collect();
        for data in commands {
            self.append_entry(EntryPayload::Command(data));
        }
    }

    fn tick_leader(&mut self) {
        self.since_leader = 0;
        self.heartbeat_elapsed += 1;
        self.election_elapsed += 1;
        if self.election_elapsed >= self.cfg.election_ticks_min {
            self.election_elapsed = 0;
            if self.cfg.check_quorum && !self.quorum_active() {
                warn!(
                    node = self.id,
                    term = self.term,
                    "CheckQuorum failed: stepping down"
                );
                self.become_follower(self.term, None);
                return;
            }
            for p in self.progress.values_mut() {
                p.recent_active = false;
            }
        }
        if let Some((to, started)) = self.transfer {
            if self.now - started >= self.cfg.election_ticks_min {
                warn!(
                    node = self.id,
                    term = self.term,
                    to,
                    "leadership transfer timed out"
                );
                self.transfer = None;
            }
        }
        if self.heartbeat_elapsed >= self.cfg.heartbeat_ticks {
            self.heartbeat_elapsed = 0;
            self.bcast_heartbeat();
        }
    }

    fn quorum_active(&self) -> bool {
        let active = self
            .membership
            .voters
            .iter()
            .filter(|&&v| v == self.id || self.progress.get(&v).is_some_and(|p| p.recent_active))
            .count();
        active >= self.membership.quorum()
    }

    /// A message from the leader of our term: follow it.
    fn accept_leader(&mut self, from: NodeId) -> bool {
        if self.role == Role::Leader {
            warn!(
                node = self.id,
                term = self.term,
                from,
                "two leaders in one term; message ignored"
            );
            return false;
        }
        if self.role != Role::Follower && self.role != Role::Learner || self.leader != Some(from) {
            self.become_follower(self.term, Some(from));
        }
        self.leader = Some(from);
        self.since_leader = 0;
        self.election_elapsed = 0;
        true
    }

    /// A message of an older term: tell its sender the current term, so that a
    /// deposed leader or a stale candidate catches up.
    fn reply_stale(&mut self, msg: &Message) {
        match &msg.body {
            MessageBody::AppendEntries {
                prev_log_index,
                round,
                ..
            } => self.send(
                msg.from,
                MessageBody::AppendEntriesResponse {
                    success: false,
                    match_index: *prev_log_index,
                    conflict_term: None,
                    conflict_index: 0,
                    round: *round,
                },
            ),
            MessageBody::InstallSnapshot { round, .. } => self.send(
                msg.from,
                MessageBody::AppendEntriesResponse {
                    success: false,
                    match_index: 0,
                    conflict_term: None,
                    conflict_index: 0,
                    round: *round,
                },
            ),
            MessageBody::RequestVote { pre_vote, .. } => self.send(
                msg.from,
                MessageBody::RequestVoteResponse {
                    pre_vote: *pre_vote,
                    granted: false,
                },
            ),
            _ => debug!(
                node = self.id,
                term = self.term,
                from = msg.from,
                "ignoring stale message"
            ),
        }
    }

    // ------------------------------------------------------------------
    // Replication (§5.3) and commit (§5.4.2)
    // ------------------------------------------------------------------

    fn check_can_propose(&self) -> Result<(), ProposeError> {
        if self.role != Role::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader,
            });
        }
        if self.transfer.is_some() {
            return Err(ProposeError::Transferring);
        }
        Ok(())
    }

    fn committed_own_term(&self) -> bool {
        self.log.term(self.log.committed) == Some(self.term)
    }

    fn append_entry(&mut self, payload: EntryPayload) -> (Index, Term) {
        let index = self.log.last_index() + 1;
        let is_config = matches!(payload, EntryPayload::Config(_));
        self.log.append(Entry {
            term: self.term,
            index,
            payload,
        });
        if is_config {
            self.recompute_membership();
        }
        self.needs_bcast = true;
        self.maybe_commit();
        (index, self.term)
    }

    fn send(&mut self, to: NodeId, body: MessageBody) {
        self.send_term(to, self.term, body);
    }

    fn send_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        self.msgs.push(Message {
            from: self.id,
            to,
            term,
            body,
        });
    }

    fn bcast_append(&mut self) {
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for p in peers {
            self.send_append(p, false);
        }
    }

    /// Sends entries (or the snapshot) to `to` as far as its progress allows.
    /// `force` sends even an empty AppendEntries (a probe).
    fn send_append(&mut self, to: NodeId, force: bool) {
        let max_inflight = self.cfg.max_inflight_msgs;
        loop {
            let Some(pr) = self.progress.get(&to) else {
                return;
            };
            if !pr.can_send(max_inflight) {
                return;
            }
            let next = pr.next_index;
            let Some(prev_term) = self.log.term(next - 1) else {
                self.start_snapshot(to);
                return;
            };
            let last = self.log.last_index();
            if next > last && !force {
                return;
            }
            let hi = last.min(next + self.cfg.max_entries_per_msg as u64 - 1);
            let entries = self.log.slice(next, hi).to_vec();
            let pr = self.progress.get_mut(&to).expect("checked above");
            match &mut pr.state {
                ProgressState::Probe { paused } => *paused = true,
                ProgressState::Replicate { inflight } => {
                    if hi >= next {
                        inflight.push_back(hi);
                        pr.next_index = hi + 1;
                    }
                }
                ProgressState::Snapshot { .. } => {
                    unreachable!("can_send is false while sending a snapshot")
                }
            }
            let body = MessageBody::AppendEntries {
                prev_log_index: next - 1,
                prev_log_term: prev_term,
                entries,
                leader_commit: self.log.committed,
                round: self.round,
            };
            self.send(to, body);
            let replicate = matches!(self.progress[&to].state, ProgressState::Replicate { .. });
            if !replicate || hi < next || hi == last {
                return;
            }
        }
    }

    /// Opens a new round, started now, whose messages are not yet sent.
    fn next_round(&mut self) {
        self.round += 1;
        self.round_sent = false;
        self.read_only.start_round(self.round, self.now);
    }

    /// The heartbeat timer: a new round with a message to every peer, and
    /// retransmission of what seems lost (a pipeline without progress since
    /// the last heartbeat, a probe, a snapshot chunk).
    fn bcast_heartbeat(&mut self) {
        self.next_round();
        let peers: Vec<NodeId> = self.progress.keys().copied().collect();
        for to in peers {
            let pr = self.progress.get_mut(&to).expect("peer listed");
            let stalled = pr.match_index == pr.match_at_heartbeat;
            pr.match_at_heartbeat = pr.match_index;
            self.round_message(to, true, stalled);
        }
        self.check_rounds();
    }

    /// The message that carries the current round to `to`. Only the timer
    /// (`on_timer`) retransmits: read rounds can follow each other within a
    /// fraction of a round trip, and taking an entry still in flight for a
    /// lost one would drop the follower back to probing and send it the
    /// same entries again.
    fn round_message(&mut self, to: NodeId, on_timer: bool, stalled: bool) {
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        match &mut pr.state {
            ProgressState::Replicate { inflight } if !inflight.is_empty() && stalled => {
                // An AppendEntries was probably lost: probe from the match.
                pr.next_index = pr.match_index + 1;
                pr.state = ProgressState::Probe { paused: false };
                self.send_append(to, true);
            }
            ProgressState::Replicate { .. } => self.send_heartbeat(to),
            ProgressState::Probe { paused } if on_timer || !*paused => {
                *paused = false;
                self.send_append(to, true);
            }
            ProgressState::Probe { .. } => self.send_heartbeat(to),
            ProgressState::Snapshot { sent, .. } if on_timer => {
                *sent = false;
                self.send_snapshot_chunk(to);
            }
            ProgressState::Snapshot { .. } => {}
        }
    }

    /// Starts the round the pending reads wait for. Every AppendEntries not
    /// yet handed out joins it (its answer proves leadership after now just
    /// as well), and only the peers without one get a heartbeat.
    fn start_read_round(&mut self) {
        self.next_round();
        let mut covered = std::collections::BTreeSet::new();
        for m in &mut self.msgs {
            if let MessageBody::AppendEntries { round, .. } = &mut m.body {
                *round = self.round;
                covered.insert(m.to);
            }
        }
        let peers: Vec<NodeId> = self
            .progress
            .keys()
            .copied()
            .filter(|p| !covered.contains(p))
            .collect();
        for to in peers {
            self.round_message(to, false, false);
        }
        self.check_rounds();
    }

    /// An empty AppendEntries at the peer's match: it carries the round and
    /// the commit index and asks for nothing to be stored.
    fn send_heartbeat(&mut self, to: NodeId) {
        let m = self.progress[&to].match_index;
        let (prev, prev_term) = match self.log.term(m) {
            Some(t) => (m, t),
            None => (0, 0),
        };
        let body = MessageBody::AppendEntries {
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries: Vec::new(),
            leader_commit: self.log.committed,
            round: self.round,
        };
        self.send(to, body);
    }

    fn handle_append(
        &mut self,
        from: NodeId,
        mut prev_index: Index,
        mut prev_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: Index,
        round: u64,
    ) {
        // Everything up to our commit index is known to match the leader.
        let committed = self.log.committed;
        if prev_index < committed {
            let skip = ((committed - prev_index) as usize).min(entries.len());
            entries.drain(..skip);
            prev_index = committed;
            prev_term = self
                .log
                .term(committed)
                .expect("commit index is in the log or snapshot");
            if let Some(first) = entries.first() {
                assert_eq!(first.index, committed + 1);
            }
        }
        match self.log.term(prev_index) {
            Some(t) if t == prev_term => {}
            other => {
                let (conflict_term, conflict_index) = match other {
                    None => (None, self.log.last_index() + 1),
                    Some(t) => (Some(t), self.log.first_index_of_term(prev_index, t)),
                };
                debug!(
                    node = self.id,
                    term = self.term,
                    prev_index,
                    ?conflict_term,
                    conflict_index,
                    "append rejected"
                );
                self.send(
                    from,
                    MessageBody::AppendEntriesResponse {
                        success: false,
                        match_index: prev_index,
                        conflict_term,
                        conflict_index,
                        round,
                    },
                );
                return;
            }
        }
        let last_new = prev_index + entries.len() as u64;
        let mut config_changed = false;
        let mut appending = false;
        for e in entries {
            if !appending {
                match self.log.term(e.index) {
                    Some(t) if t == e.term => continue,
                    Some(_) => {
                        assert!(
                            e.index > self.log.committed,
                            "conflict at a committed index {}",
                            e.index
                        );
                        if self.membership_index >= e.index {
                            config_changed = true;
                        }
                        #[cfg(feature = "bugs")]
                        if self.bug(Bug::KeepConflictingSuffix) {
                            config_changed |= matches!(e.payload, EntryPayload::Config(_));
                            self.log.overwrite(e);
                            continue;
                        }
                        self.log.truncate_from(e.index);
                    }
                    None => {}
                }
                appending = true;
            }
            if matches!(e.payload, EntryPayload::Config(_)) {
                config_changed = true;
            }
            self.log.append(e);
        }
        #[cfg(feature = "bugs")]
        if self.bug(Bug::TruncateAcked) {
            // The message's entries all matched (a conflict would have cut
            // the log at `last_new` already): whatever follows is ours and
            // acknowledged, yet dropped.
            let from = last_new.max(self.log.committed) + 1;
            if from <= self.log.last_index() {
                config_changed |= self.membership_index >= from;
                self.log.truncate_from(from);
            }
        }
        if config_changed {
            self.recompute_membership();
        }
        let new_commit = leader_commit.min(last_new);
        #[cfg(feature = "bugs")]
        let new_commit = if self.bug(Bug::ApplyPastLeaderCommit) {
            last_new
        } else {
            new_commit
        };
        if new_commit > self.log.committed {
            self.log.committed = new_commit;
            debug!(
                node = self.id,
                term = self.term,
                commit = new_commit,
                "commit advanced"
            );
        }
        self.send(
            from,
            MessageBody::AppendEntriesResponse {
                success: true,
                match_index: last_new,
                conflict_term: None,
                conflict_index: 0,
                round,
            },
        );
    }

    fn note_round(&mut self, from: NodeId, round: u64) {
        if let Some(pr) = self.progress.get_mut(&from) {
            pr.recent_active = true;
            if round > pr.acked_round {
                pr.acked_round = round;
                self.check_rounds();
            }
        }
    }

    fn handle_append_response(
        &mut self,
        from: NodeId,
        success: bool,
        match_index: Index,
        conflict_term: Option<Term>,
        conflict_index: Index,
        round: u64,
    ) {
        self.note_round(from, round);
        if self.role != Role::Leader {
            return;
        }
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        if success {
            let advanced = pr.update_match(match_index);
            match pr.state {
                ProgressState::Probe { .. } => pr.become_replicate(),
                ProgressState::Snapshot { index, .. } if pr.match_index >= index => {
                    pr.become_probe()
                }
                _ => {}
            }
            if advanced {
                self.maybe_commit();
                self.maybe_promote();
            }
            if self.role != Role::Leader {
                return;
            }
            if let Some((to, _)) = self.transfer {
                if to == from && self.progress[&from].match_index == self.log.last_index() {
                    self.send_timeout_now(from);
                }
            }
            self.send_append(from, false);
        } else {
            let rejected = match_index;
            if conflict_term.is_none()
                && conflict_index >= 1
                && conflict_index <= pr.match_index
                && !matches!(pr.state, ProgressState::Snapshot { .. })
            {
                self.reset_lost_match(from, conflict_index);
                return;
            }
            let relevant = match &pr.state {
                ProgressState::Replicate { .. } => rejected > pr.match_index,
                ProgressState::Probe { .. } => rejected + 1 == pr.next_index,
                ProgressState::Snapshot { .. } => false,
            };
            if !relevant {
                return;
            }
            let hint = match conflict_term {
                None => conflict_index,
                Some(t) => self
                    .log
                    .last_index_of_term(t)
                    .map(|i| i + 1)
                    .unwrap_or(conflict_index),
            };
            let pr = self.progress.get_mut(&from).expect("checked");
            pr.next_index = hint.min(rejected).max(pr.match_index + 1);
            pr.state = ProgressState::Probe { paused: false };
            debug!(
                node = self.id,
                term = self.term,
                to = from,
                next = pr.next_index,
                "backing off"
            );
            self.send_append(from, true);
        }
    }

    /// A follower's rejection says its log ends at `conflict_index - 1`, below
    /// the match we recorded for it: our record is stale (say the node was
    /// removed, wiped and added back under the same id, or the rejection is a
    /// delayed answer to a message older than the match). Left alone, every
    /// later rejection would look older than the match and be ignored, and
    /// the follower would never catch up. So forget the match and probe from
    /// the follower's hint.
    ///
    /// This is safe: `match_index` is only ever lowered here, to 0, a value
    /// that claims nothing. The commit index never moves back and only counts
    /// matches, so a lower match can only delay a commit (or a promotion, or a
    /// leadership transfer) until the follower acknowledges again, never cause
    /// a wrong one. A stale rejection costs at most one extra probe round trip.
    fn reset_lost_match(&mut self, from: NodeId, conflict_index: Index) {
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        warn!(
            node = self.id,
            term = self.term,
            to = from,
            recorded_match = pr.match_index,
            follower_next = conflict_index,
            "follower's log is shorter than its recorded match: probing afresh"
        );
        pr.match_index = 0;
        pr.match_at_heartbeat = 0;
        pr.next_index = conflict_index;
        pr.state = ProgressState::Probe { paused: false };
        self.send_append(from, true);
    }

    /// Advances the commit index to the highest index stored on a majority of
    /// voters, but only by counting an entry of the current term (Figure 8).
    fn maybe_commit(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let mut matches: Vec<Index> = self
            .membership
            .voters
            .iter()
            .map(|&v| {
                if v == self.id {
                    self.log.last_index()
                } else {
                    self.progress.get(&v).map_or(0, |p| p.match_index)
                }
            })
            .collect();
        #[cfg(feature = "bugs")]
        if self.bug(Bug::CountsNonVoters) {
            let voters = &self.membership.voters;
            matches.extend(
                self.progress
                    .iter()
                    .filter(|(id, _)| !voters.contains(id))
                    .map(|(_, p)| p.match_index),
            );
        }
        if matches.is_empty() {
            return;
        }
        matches.sort_unstable_by(|a, b| b.cmp(a));
        let quorum = self.membership.quorum();
        #[cfg(feature = "bugs")]
        let quorum = if self.bug(Bug::CommitWithoutQuorum) {
            (self.membership.voters.len() / 2).max(1)
        } else {
            quorum
        };
        let n = matches[quorum - 1];
        let own_term = self.log.term(n) == Some(self.term);
        #[cfg(feature = "bugs")]
        let own_term = own_term || self.bug(Bug::CommitOldTerm);
        if n > self.log.committed && own_term {
            let old_commit = self.log.committed;
            self.log.committed = n;
            debug!(
                node = self.id,
                term = self.term,
                commit = n,
                "commit advanced"
            );
            self.needs_bcast = true;
            if self.membership_index > old_commit && self.membership_index <= n {
                // The change committed: forget the nodes it removed, so that
                // they get no more messages and, if one is added back later
                // (maybe with wiped storage), it starts from fresh progress.
                self.sync_progress();
            }
            if !self.membership.is_voter(self.id) && self.membership_index <= n {
                info!(
                    node = self.id,
                    term = self.term,
                    "removed from the configuration: stepping down"
                );
                self.become_follower(self.term, None);
            }
        }
    }

    // ------------------------------------------------------------------
    // Membership (§6, single-server changes)
    // ------------------------------------------------------------------

    fn membership_at(&self, index: Index) -> Membership {
        if let Some((_, m)) = self.log.last_config(index) {
            return m.clone();
        }
        match &self.log.snapshot {
            Some(s) => s.meta.membership.clone(),
            None => self.initial_membership.clone(),
        }
    }

    /// The configuration in effect is the latest one in the log.
    fn recompute_membership(&mut self) {
        let (index, m) = match self.log.last_config(self.log.last_index()) {
            Some((i, m)) => (i, m.clone()),
            None => match &self.log.snapshot {
                Some(s) => (s.meta.last_index, s.meta.membership.clone()),
                None => (0, self.initial_membership.clone()),
            },
        };
        if m != self.membership {
            info!(node = self.id, term = self.term, index, voters = ?m.voters, learners = ?m.learners, "configuration in effect");
        }
        self.membership = m;
        self.membership_index = index;
        match self.role {
            Role::Follower | Role::Learner => self.role = self.follower_role(),
            Role::Leader => self.sync_progress(),
            Role::PreCandidate | Role::Candidate => {
                if !self.promotable() {
                    self.become_follower(self.term, None);
                }
            }
        }
    }

    /// Tracks the members of the configuration (other than ourselves) and,
    /// while a change is uncommitted, those of the previous one too: a node
    /// being removed keeps receiving the log until it holds the entry that
    /// removes it, so it stops campaigning instead of disrupting the cluster.
    fn sync_progress(&mut self) {
        let pending = self.membership_index > self.log.committed && self.membership_index > 0;
        let previous = if pending {
            self.membership_at(self.membership_index - 1)
        } else {
            Membership::default()
        };
        let members: BTreeSet<NodeId> = self
            .membership
            .voters
            .iter()
            .chain(self.membership.learners.iter())
            .chain(previous.voters.iter())
            .chain(previous.learners.iter())
            .copied()
            .filter(|&n| n != self.id)
            .collect();
        self.progress.retain(|id, _| members.contains(id));
        let next = self.log.last_index() + 1;
        for m in members {
            self.progress.entry(m).or_insert_with(|| {
                let mut p = Progress::new(next);
                p.recent_active = true;
                p
            });
        }
    }

    /// Promotes the first caught-up learner to voter (one change at a time).
    fn maybe_promote(&mut self) {
        if self.role != Role::Leader
            || self.transfer.is_some()
            || !self.committed_own_term()
            || self.membership_index > self.log.committed
        {
            return;
        }
        let committed = self.log.committed;
        let ready = self.membership.learners.iter().copied().find(|l| {
            self.progress
                .get(l)
                .is_some_and(|p| p.match_index >= committed)
        });
        if let Some(l) = ready {
            let mut next = self.membership.clone();
            next.learners.remove(&l);
            next.voters.insert(l);
            info!(
                node = self.id,
                term = self.term,
                learner = l,
                "promoting caught-up learner to voter"
            );
            self.append_entry(EntryPayload::Config(next));
        }
    }

    // ------------------------------------------------------------------
    // Reads (§8)
    // ------------------------------------------------------------------

    /// The highest round echoed by a majority of voters (the leader counts
    /// itself at its current round).
    fn check_rounds(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        let mut rounds: Vec<u64> = self
            .membership
            .voters
            .iter()
            .map(|&v| {
                if v == self.id {
                    self.round
                } else {
                    self.progress.get(&v).map_or(0, |p| p.acked_round)
                }
            })
            .collect();
        if rounds.is_empty() {
            return;
        }
        rounds.sort_unstable_by(|a, b| b.cmp(a));
        let q = rounds[self.membership.quorum() - 1];
        if q > 0 {
            let released = self.read_only.confirm(q);
            self.read_states.extend(released);
        }
    }

    // ------------------------------------------------------------------
    // Snapshots (§7)
    // ------------------------------------------------------------------

    fn start_snapshot(&mut self, to: NodeId) {
        let index = self
            .log
            .snapshot
            .as_ref()
            .expect("a compacted log keeps its snapshot")
            .meta
            .last_index;
        info!(
            node = self.id,
            term = self.term,
            to,
            index,
            "sending snapshot"
        );
        if let Some(pr) = self.progress.get_mut(&to) {
            pr.state = ProgressState::Snapshot {
                index,
                offset: 0,
                sent: false,
            };
        }
        self.send_snapshot_chunk(to);
    }

    fn send_snapshot_chunk(&mut self, to: NodeId) {
        let Some(snap) = self.log.snapshot.as_ref() else {
            return;
        };
        let Some(pr) = self.progress.get_mut(&to) else {
            return;
        };
        let ProgressState::Snapshot {
            index,
            offset,
            sent,
        } = &mut pr.state
        else {
            return;
        };
        if *index != snap.meta.last_index {
            // We compacted again meanwhile: send the newer snapshot from the start.
            *index = snap.meta.last_index;
            *offset = 0;
        }
        if *sent {
            return;
        }
        let len = snap.data.len() as u64;
        let start = (*offset).min(len);
        let end = (start + self.cfg.snapshot_chunk_bytes.max(1) as u64).min(len);
        *sent = true;
        let body = MessageBody::InstallSnapshot {
            meta: snap.meta.clone(),
            offset: start,
            data: snap.data[start as usize..end as usize].to_vec(),
            done: end == len,
            round: self.round,
        };
        self.send(to, body);
    }

    fn handle_snapshot(
        &mut self,
        from: NodeId,
        meta: SnapshotMeta,
        offset: u64,
        data: Vec<u8>,
        done: bool,
        round: u64,
    ) {
        let reply = |next_offset: u64, last_index: Index, done: bool| {
            MessageBody::InstallSnapshotResponse {
                next_offset,
                last_index,
                done,
                round,
            }
        };
        if meta.last_index <= self.log.committed {
            self.incoming_snapshot = None;
            let body = reply(0, self.log.committed, true);
            self.send(from, body);
            return;
        }
        if self.log.term(meta.last_index) == Some(meta.last_term) {
            // We already hold that entry, hence the whole prefix: just commit it.
            self.incoming_snapshot = None;
            self.log.committed = meta.last_index;
            let body = reply(0, meta.last_index, true);
            self.send(from, body);
            return;
        }
        let fresh = !matches!(&self.incoming_snapshot, Some((m, _)) if *m == meta);
        if fresh {
            if offset != 0 {
                let body = reply(0, meta.last_index, false);
                self.send(from, body);
                return;
            }
            self.incoming_snapshot = Some((meta.clone(), Vec::new()));
        }
        let (_, buf) = self.incoming_snapshot.as_mut().expect("set above");
        if offset != buf.len() as u64 {
            // A duplicate or a gap: ask for what we need next.
            let body = reply(buf.len() as u64, meta.last_index, false);
            self.send(from, body);
            return;
        }
        buf.extend_from_slice(&data);
        if !done {
            let body = reply(buf.len() as u64, meta.last_index, false);
            self.send(from, body);
            return;
        }
        let (meta, data) = self.incoming_snapshot.take().expect("set above");
        info!(
            node = self.id,
            term = self.term,
            index = meta.last_index,
            "installing snapshot"
        );
        let last_index = meta.last_index;
        let snapshot = Snapshot { meta, data };
        self.log.restore(snapshot.clone());
        self.ready_snapshot = Some(snapshot);
        self.recompute_membership();
        let body = reply(0, last_index, true);
        self.send(from, body);
    }

    fn handle_snapshot_response(
        &mut self,
        from: NodeId,
        next_offset: u64,
        last_index: Index,
        done: bool,
        round: u64,
    ) {
        self.note_round(from, round);
        let Some(pr) = self.progress.get_mut(&from) else {
            return;
        };
        if done {
            let advanced = pr.update_match(last_index);
            if let ProgressState::Snapshot { index, .. } = pr.state {
                if pr.match_index >= index {
                    pr.become_probe();
                }
            }
            if advanced {
                self.maybe_commit();
                self.maybe_promote();
            }
            if self.role == Role::Leader {
                self.send_append(from, false);
            }
            return;
        }
        if let ProgressState::Snapshot {
            index,
            offset,
            sent,
        } = &mut pr.state
        {
            if *index == last_index {
                *offset = next_offset;
                *sent = false;
                self.send_snapshot_chunk(from);
            }
        }
    }

    // ------------------------------------------------------------------
    // Leadership transfer
    // ------------------------------------------------------------------

    fn send_timeout_now(&mut self, to: NodeId) {
        info!(
            node = self.id,
            term = self.term,
            to,
            "sending TimeoutNow; lease revoked for this term"
        );
        self.lease_revoked = true;
        self.send(to, MessageBody::TimeoutNow);
    }
}
