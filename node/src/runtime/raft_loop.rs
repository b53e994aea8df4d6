//! The Raft loop shared by both ways of running a node (TCP + HTTP, and
//! Maelstrom's stdin/stdout): it owns the core, the storage, the state
//! machine and the trace, and differs between the modes only in where peer
//! messages go ([`Network`]), how a client is answered ([`Reply`]) and
//! whether state survives the process ([`LogStore`]).
//!
//! ## One iteration
//! 1. wait for an event or the next tick, then drain the inbox;
//! 2. tick (as many ticks as wall time demands, capped, so that a process
//!    resumed after SIGSTOP sees its lease and election timer expire), then
//!    feed the events to the core;
//! 3. take the core's `Ready` and handle it strictly in the order
//!    persist (snapshot, hard state, entries) → fsync → send → apply → answer
//!    clients and reads; then `advance`;
//! 4. compact when the snapshot threshold of entries was applied since the
//!    last snapshot; flush the trace and the network.
//!
//! Nothing is acknowledged before it is fsynced: replies to peers leave in
//! step 3 after the fsync, client replies after apply. The loop blocks on
//! fsync, which is exactly what group commit wants: while one batch is being
//! fsynced, new requests queue up in the inbox and all go into the next
//! batch, so many writes share one fsync.

use crate::api::{ErrorOutcome, ReadMode, Request, Response, StatusBody};
use crate::clock::Ticker;
use crate::kv::{ApplyOutcome, Command, Kv};
use crate::raft::{
    ConfChange, Entry, EntryPayload, HardState, Index, Membership, NodeId, Persisted, ProposeError,
    Raft, ReadError, Ready, Snapshot, SnapshotMeta, Term,
};
use crate::storage::{Storage, StorageError};
use crate::trace::Trace;
use anyhow::Context;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

/// Events queued for the Raft loop before new ones are dropped/rejected.
pub(crate) const INBOX_EVENTS: usize = 16 * 1024;
/// Events handled per iteration at most (bounds the latency of one batch).
const MAX_EVENTS_PER_BATCH: usize = 4096;
/// How often expired client waiters are answered and forgotten.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// What the transports hand to the loop.
pub(crate) enum Event<R> {
    Peer(crate::raft::Message),
    Client(Request, R),
    Shutdown,
}

/// How the loop answers one client request.
pub(crate) trait Reply: Send + 'static {
    fn send(self, resp: Response);
    /// The asker stopped waiting (went away, or its deadline passed): the
    /// sweep answers it with a timeout and forgets it.
    fn expired(&self, now: Instant) -> bool;
}

/// Where the core's messages to peers go. Must not block for long: Raft
/// tolerates loss, so a transport drops rather than waits.
pub(crate) trait Network {
    fn send(&mut self, m: crate::raft::Message);
    /// Called once per iteration, after everything of the batch was sent.
    fn flush(&mut self) {}
}

/// The durable side of the loop. [`Storage`] fsyncs to a data dir;
/// [`MemStore`] keeps nothing (the core holds the log in memory anyway).
pub(crate) trait LogStore {
    fn install_snapshot(&mut self, snap: &Snapshot) -> Result<(), StorageError>;
    fn save_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError>;
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError>;
    fn sync(&mut self) -> Result<(), StorageError>;
    fn save_snapshot(&mut self, snap: &Snapshot) -> Result<(), StorageError>;
    fn segment_count(&self) -> usize;
}

impl LogStore for Storage {
    fn install_snapshot(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        Storage::install_snapshot(self, snap)
    }
    fn save_hard_state(&mut self, hs: &HardState) -> Result<(), StorageError> {
        Storage::save_hard_state(self, hs)
    }
    fn append(&mut self, entries: &[Entry]) -> Result<(), StorageError> {
        Storage::append(self, entries)
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        Storage::sync(self)
    }
    fn save_snapshot(&mut self, snap: &Snapshot) -> Result<(), StorageError> {
        Storage::save_snapshot(self, snap)
    }
    fn segment_count(&self) -> usize {
        Storage::segment_count(self)
    }
}

/// No storage: a restart is an amnesiac node, as with most Maelstrom nodes.
pub(crate) struct MemStore;

impl LogStore for MemStore {
    fn install_snapshot(&mut self, _: &Snapshot) -> Result<(), StorageError> {
        Ok(())
    }
    fn save_hard_state(&mut self, _: &HardState) -> Result<(), StorageError> {
        Ok(())
    }
    fn append(&mut self, _: &[Entry]) -> Result<(), StorageError> {
        Ok(())
    }
    fn sync(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn save_snapshot(&mut self, _: &Snapshot) -> Result<(), StorageError> {
        Ok(())
    }
    fn segment_count(&self) -> usize {
        0
    }
}

/// Everything needed to bring up the loop's state, whatever the transport.
pub(crate) struct BootConfig {
    pub id: NodeId,
    pub config: crate::raft::Config,
    /// Initial voters of a brand-new cluster.
    pub members: Vec<NodeId>,
    /// `None`: state in memory only.
    pub data_dir: Option<PathBuf>,
    pub segment_max_bytes: u64,
    pub trace: Option<PathBuf>,
    pub snapshot_threshold: u64,
    /// Seed of the core's RNG (`--seed`); random when absent.
    pub seed: Option<u64>,
}

/// The loop's state: recovered from storage, before any transport exists.
pub(crate) struct Booted {
    id: NodeId,
    raft: Raft,
    store: Box<dyn LogStore>,
    kv: Kv,
    trace: Trace,
    applied: Index,
    membership: Membership,
    snapshot_threshold: u64,
    max_catch_up_ticks: u64,
}

impl Booted {
    /// Recovers storage (if any), restores the state machine from the
    /// snapshot and starts the core and the trace.
    pub fn open(b: BootConfig) -> anyhow::Result<Booted> {
        let (store, recovered): (Box<dyn LogStore>, _) = match &b.data_dir {
            Some(dir) => {
                #[cfg(not(feature = "bugs"))]
                let opened = Storage::open(dir, b.segment_max_bytes);
                #[cfg(feature = "bugs")]
                let opened = Storage::open_with_bugs(dir, b.segment_max_bytes, b.config.bugs);
                let (s, r) =
                    opened.with_context(|| format!("recovering data dir {}", dir.display()))?;
                (Box::new(s), r)
            }
            None => (Box::new(MemStore), Default::default()),
        };
        let fresh = recovered.is_fresh();
        let mut kv = Kv::new();
        let mut applied = 0;
        let mut membership = Membership::new(b.members.iter().copied());
        if let Some(s) = &recovered.snapshot {
            kv.restore(&s.data)
                .context("restoring the stored snapshot")?;
            applied = s.meta.last_index;
            membership = s.meta.membership.clone();
        }
        tracing::info!(
            term = recovered.hard_state.term,
            vote = ?recovered.hard_state.vote,
            snapshot_index = applied,
            log_entries = recovered.entries.len(),
            persistent = b.data_dir.is_some(),
            "recovered storage"
        );
        if fresh && b.members.is_empty() {
            tracing::info!("empty data dir and no --members: waiting to be added to a cluster");
        } else if fresh && !b.members.contains(&b.id) {
            tracing::warn!(members = ?b.members, "--members does not include this node");
        }
        #[cfg(feature = "bugs")]
        crate::bugs::announce(b.config.bugs);
        let seed: u64 = b.seed.unwrap_or_else(rand::random);
        tracing::info!(seed, "starting Raft core");
        let max_catch_up_ticks = b.config.election_ticks_max + 1;
        let raft = Raft::new(
            b.config,
            Persisted {
                hard_state: recovered.hard_state,
                snapshot: recovered.snapshot,
                entries: recovered.entries,
                initial_membership: Membership::new(b.members.iter().copied()),
            },
            seed,
        );
        let mut trace = match &b.trace {
            Some(path) => Trace::open(path, b.id)
                .with_context(|| format!("opening trace {}", path.display()))?,
            None => Trace::disabled(b.id),
        };
        trace.start(raft.status().term, applied);
        trace.flush();
        Ok(Booted {
            id: b.id,
            raft,
            store,
            kv,
            trace,
            applied,
            membership,
            snapshot_threshold: b.snapshot_threshold.max(1),
            max_catch_up_ticks,
        })
    }
}

impl Booted {
    /// The loop's ticks, from `clock`: at most a little over one election
    /// timeout is caught up after a stall (a paused process), enough for
    /// every timer to fire and no more.
    pub fn ticker(&self, clock: crate::clock::Clock, tick: Duration) -> Ticker {
        Ticker::new(clock, tick, self.max_catch_up_ticks)
    }
}

enum WriteKind {
    Kv,
    Member,
}

struct PendingWrite<R> {
    term: Term,
    kind: WriteKind,
    reply: R,
}

struct PendingRead<R> {
    key: String,
    reply: R,
}

/// The Raft loop around one core; see the module docs.
pub(crate) struct RaftLoop<R: Reply> {
    id: NodeId,
    raft: Raft,
    store: Box<dyn LogStore>,
    kv: Kv,
    trace: Trace,
    net: Box<dyn Network>,
    applied: Index,
    /// The configuration as of `applied` (what a snapshot taken now records).
    membership: Membership,
    last_snapshot_index: Index,
    snapshot_threshold: u64,
    /// Client writes by log index, waiting for their entry to be applied.
    writes: BTreeMap<Index, PendingWrite<R>>,
    /// Linearizable reads waiting for the core's ReadIndex answer.
    reads_by_ctx: HashMap<u64, PendingRead<R>>,
    /// Reads whose read index is known, waiting until it is applied.
    reads_waiting_apply: Vec<(Index, PendingRead<R>)>,
    next_read_ctx: u64,
}

fn unavailable(error: &str, outcome: ErrorOutcome) -> Response {
    Response::Unavailable {
        error: error.into(),
        outcome,
    }
}

impl<R: Reply> RaftLoop<R> {
    pub fn new(b: Booted, net: Box<dyn Network>) -> Self {
        RaftLoop {
            id: b.id,
            raft: b.raft,
            store: b.store,
            kv: b.kv,
            trace: b.trace,
            net,
            applied: b.applied,
            membership: b.membership,
            last_snapshot_index: b.applied,
            snapshot_threshold: b.snapshot_threshold,
            writes: BTreeMap::new(),
            reads_by_ctx: HashMap::new(),
            reads_waiting_apply: Vec::new(),
            next_read_ctx: 1,
        }
    }

    /// Runs until `shutdown` is set or every sender of `rx` is gone. Errors
    /// are fatal (storage).
    pub fn run(
        &mut self,
        rx: &mpsc::Receiver<Event<R>>,
        ticker: Ticker,
        shutdown: &AtomicBool,
    ) -> anyhow::Result<()> {
        let result = self.run_inner(rx, ticker, shutdown);
        self.trace.flush();
        self.net.flush();
        result
    }

    fn run_inner(
        &mut self,
        rx: &mpsc::Receiver<Event<R>>,
        mut ticker: Ticker,
        shutdown: &AtomicBool,
    ) -> anyhow::Result<()> {
        let mut next_sweep = Instant::now() + SWEEP_EVERY;
        let mut events = Vec::new();
        loop {
            match rx.recv_timeout(ticker.wait()) {
                Ok(ev) => events.push(ev),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            while events.len() < MAX_EVENTS_PER_BATCH {
                match rx.try_recv() {
                    Ok(ev) => events.push(ev),
                    Err(_) => break,
                }
            }
            let due = ticker.due();
            if due > 2 {
                tracing::debug!(ticks = due, "loop fell behind (paused?): catching up ticks");
            }
            for _ in 0..due {
                self.raft.tick();
            }
            let now = Instant::now();
            for ev in events.drain(..) {
                match ev {
                    Event::Peer(m) => self.raft.step(m),
                    Event::Client(req, reply) => self.on_client(req, reply),
                    Event::Shutdown => {}
                }
            }
            if shutdown.load(Ordering::SeqCst) {
                return Ok(());
            }
            let rd = self.raft.ready();
            self.handle_ready(rd)?;
            self.raft.advance();
            self.maybe_snapshot()?;
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP_EVERY;
            }
            self.trace.flush();
            self.net.flush();
        }
    }

    fn leader_hint(&self) -> Option<NodeId> {
        self.raft.status().leader
    }

    fn on_client(&mut self, req: Request, reply: R) {
        match req {
            Request::Status => {
                let s = self.raft.status();
                reply.send(Response::Status(StatusBody {
                    id: s.id,
                    term: s.term,
                    role: s.role.as_str().to_string(),
                    leader: s.leader,
                    commit_index: s.commit_index,
                    last_applied: self.applied,
                    last_index: s.last_index,
                    members: s.membership.voters.iter().copied().collect(),
                    learners: s.membership.learners.iter().copied().collect(),
                }));
            }
            Request::Read { key, mode } => self.on_read(key, mode, reply),
            Request::Put { key, value } => {
                let cmd = Command::Put { key, value };
                let r = self.raft.propose(cmd.encode());
                self.on_proposed(r, WriteKind::Kv, reply);
            }
            Request::Cas { key, from, to } => {
                let cmd = Command::Cas { key, from, to };
                let r = self.raft.propose(cmd.encode());
                self.on_proposed(r, WriteKind::Kv, reply);
            }
            Request::Member(cc) => {
                let r = self.raft.propose_conf_change(cc);
                if let Ok((index, _)) = r {
                    let (what, id) = match cc {
                        ConfChange::AddNode(id) => ("add", id),
                        ConfChange::RemoveNode(id) => ("remove", id),
                    };
                    tracing::info!(
                        change = what,
                        member = id,
                        index,
                        "proposed membership change"
                    );
                }
                self.on_proposed(r, WriteKind::Member, reply);
            }
        }
    }

    fn on_proposed(&mut self, r: Result<(Index, Term), ProposeError>, kind: WriteKind, reply: R) {
        let fail = |error: &str| unavailable(error, ErrorOutcome::Failed);
        let resp = match r {
            Ok((index, term)) => {
                #[cfg(feature = "bugs")]
                if matches!(kind, WriteKind::Kv)
                    && self.raft.bugs().has(crate::bugs::Bug::AckBeforeCommit)
                {
                    // The planted bug: the client hears "done" as soon as
                    // the entry is appended, before any majority stores it.
                    reply.send(Response::Done);
                    return;
                }
                let w = PendingWrite { term, kind, reply };
                if let Some(old) = self.writes.insert(index, w) {
                    // Our earlier entry at this index was overwritten by another
                    // leader's entry and can never commit.
                    old.reply.send(fail("overwritten"));
                }
                return;
            }
            Err(ProposeError::NotLeader { leader }) => Response::NotLeader { leader },
            Err(ProposeError::NotReady) => fail("not-ready"),
            Err(ProposeError::Transferring) => fail("transferring"),
            Err(ProposeError::ChangePending { .. }) => Response::ChangePending,
            Err(ProposeError::BadChange(m)) => Response::BadRequest(m),
        };
        reply.send(resp);
    }

    fn on_read(&mut self, key: String, mode: ReadMode, reply: R) {
        let read_err = |e: ReadError, hint: Option<NodeId>| match e {
            ReadError::NotLeader { leader } => Response::NotLeader {
                leader: leader.or(hint),
            },
            ReadError::NotReady => unavailable("not-ready", ErrorOutcome::Failed),
            ReadError::LeaseExpired => unavailable("lease-expired", ErrorOutcome::Failed),
        };
        match mode {
            ReadMode::Stale => {
                reply.send(Response::Value(self.kv.get(&key).map(String::from)));
            }
            ReadMode::Lease => match self.raft.lease_read() {
                Ok(index) => self.read_at(index, PendingRead { key, reply }),
                // The lease lapsed (e.g. just after an election): confirm
                // leadership the slow way rather than fail the read.
                Err(ReadError::LeaseExpired) => self.read_index(key, reply),
                Err(e) => reply.send(read_err(e, None)),
            },
            ReadMode::Linearizable => self.read_index(key, reply),
        }
    }

    fn read_index(&mut self, key: String, reply: R) {
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        match self.raft.read_index(ctx) {
            Ok(()) => {
                self.reads_by_ctx.insert(ctx, PendingRead { key, reply });
            }
            Err(ReadError::NotLeader { leader }) => reply.send(Response::NotLeader { leader }),
            Err(e) => {
                let error = match e {
                    ReadError::NotReady => "not-ready".into(),
                    other => other.to_string(),
                };
                reply.send(unavailable(&error, ErrorOutcome::Failed));
            }
        }
    }

    fn read_at(&mut self, index: Index, read: PendingRead<R>) {
        if index <= self.applied {
            let v = self.kv.get(&read.key).map(String::from);
            read.reply.send(Response::Value(v));
        } else {
            self.reads_waiting_apply.push((index, read));
        }
    }

    fn handle_ready(&mut self, rd: Ready) -> anyhow::Result<()> {
        let Ready {
            hard_state,
            snapshot,
            entries,
            messages,
            committed,
            read_states,
            dropped_reads,
            role_changed,
            commit_index,
        } = rd;
        // 1. Persist, then fsync once for the whole batch.
        if let Some(snap) = &snapshot {
            self.store
                .install_snapshot(snap)
                .context("persisting a snapshot from the leader")?;
        }
        if let Some(hs) = &hard_state {
            self.store
                .save_hard_state(hs)
                .context("persisting hard state")?;
        }
        self.store
            .append(&entries)
            .context("appending to the log")?;
        self.store.sync().context("fsyncing the log")?;
        // 2. Only now may anything that depends on it leave the node.
        for m in messages {
            self.net.send(m);
        }
        if role_changed {
            let s = self.raft.status();
            tracing::info!(term = s.term, role = s.role.as_str(), leader = ?s.leader, "role changed");
            self.trace.role(s.term, s.role, s.leader);
        }
        if let Some(c) = commit_index {
            let term = committed
                .iter()
                .rev()
                .find(|e| e.index == c)
                .map(|e| e.term)
                .or_else(|| self.raft.log_term(c));
            if let Some(term) = term {
                self.trace.commit(c, term);
            }
            tracing::debug!(commit = c, "commit index advanced");
        }
        // 3. Apply.
        if let Some(snap) = snapshot {
            self.restore_snapshot(snap)?;
        }
        for e in committed {
            self.apply(e);
        }
        for rs in read_states {
            if let Some(r) = self.reads_by_ctx.remove(&rs.ctx) {
                self.read_at(rs.index, r);
            }
        }
        if !dropped_reads.is_empty() {
            let leader = self.leader_hint();
            for ctx in dropped_reads {
                if let Some(r) = self.reads_by_ctx.remove(&ctx) {
                    r.reply.send(Response::NotLeader { leader });
                }
            }
        }
        self.serve_applied_reads();
        Ok(())
    }

    fn restore_snapshot(&mut self, snap: Snapshot) -> anyhow::Result<()> {
        let SnapshotMeta {
            last_index,
            last_term,
            membership,
        } = snap.meta;
        self.kv
            .restore(&snap.data)
            .context("restoring a snapshot received from the leader")?;
        tracing::info!(
            index = last_index,
            term = last_term,
            "installed snapshot from the leader"
        );
        self.trace.snapshot(last_index, last_term);
        self.applied = last_index;
        self.membership = membership;
        self.last_snapshot_index = last_index;
        // Writes at or below the snapshot were never applied here: their
        // fate is decided elsewhere and unknown to us.
        let rest = self.writes.split_off(&(last_index + 1));
        for (_, w) in std::mem::replace(&mut self.writes, rest) {
            w.reply
                .send(unavailable("superseded-by-snapshot", ErrorOutcome::Unknown));
        }
        Ok(())
    }

    fn apply(&mut self, e: Entry) {
        if e.index <= self.applied {
            tracing::warn!(
                index = e.index,
                applied = self.applied,
                "skipping an entry already applied"
            );
            return;
        }
        if e.index != self.applied + 1 {
            tracing::error!(
                index = e.index,
                applied = self.applied,
                "gap in applied entries"
            );
        }
        self.trace.apply(&e);
        let outcome = match &e.payload {
            EntryPayload::Command(data) => match Command::decode(data) {
                Ok(cmd) => Some(self.kv.apply(cmd)),
                Err(err) => {
                    tracing::error!(index = e.index, error = %err, "undecodable command: skipped");
                    None
                }
            },
            EntryPayload::Config(m) => {
                let voters: Vec<NodeId> = m.voters.iter().copied().collect();
                let learners: Vec<NodeId> = m.learners.iter().copied().collect();
                tracing::info!(
                    index = e.index,
                    term = e.term,
                    ?voters,
                    ?learners,
                    "configuration applied"
                );
                self.trace.config(e.index, &voters, &learners);
                self.membership = m.clone();
                None
            }
            EntryPayload::Noop => None,
        };
        self.applied = e.index;
        if let Some(w) = self.writes.remove(&e.index) {
            let resp = if w.term != e.term {
                // Log Matching: another entry was committed at our index, so ours never will be.
                unavailable("overwritten", ErrorOutcome::Failed)
            } else {
                match (w.kind, outcome) {
                    (WriteKind::Member, _) => Response::Members {
                        voters: self.membership.voters.iter().copied().collect(),
                        learners: self.membership.learners.iter().copied().collect(),
                    },
                    (WriteKind::Kv, Some(ApplyOutcome::Precondition { current })) => {
                        Response::Precondition { current }
                    }
                    (WriteKind::Kv, _) => Response::Done,
                }
            };
            w.reply.send(resp);
        }
    }

    fn serve_applied_reads(&mut self) {
        if self.reads_waiting_apply.is_empty() {
            return;
        }
        let applied = self.applied;
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_waiting_apply)
            .into_iter()
            .partition(|(i, _)| *i <= applied);
        self.reads_waiting_apply = waiting;
        for (_, r) in ready {
            let v = self.kv.get(&r.key).map(String::from);
            r.reply.send(Response::Value(v));
        }
    }

    fn maybe_snapshot(&mut self) -> anyhow::Result<()> {
        if self.applied < self.last_snapshot_index + self.snapshot_threshold {
            return Ok(());
        }
        // The core derives the metadata (term, configuration at the index);
        // persisting its copy keeps the file and the core in agreement.
        self.raft.compact(self.applied, self.kv.snapshot());
        let Some(snap) = self
            .raft
            .snapshot()
            .filter(|s| s.meta.last_index == self.applied)
        else {
            tracing::warn!(
                index = self.applied,
                "core declined to compact; retrying later"
            );
            self.last_snapshot_index = self.applied;
            return Ok(());
        };
        self.store
            .save_snapshot(snap)
            .context("persisting a snapshot")?;
        tracing::info!(
            index = self.applied,
            bytes = snap.data.len(),
            segments = self.store.segment_count(),
            "took a snapshot and compacted the log"
        );
        self.last_snapshot_index = self.applied;
        Ok(())
    }

    /// Answers the waiters that expired with a timeout and forgets them: a
    /// write's fate is then unknown (it may still commit), a read simply
    /// did not happen.
    fn sweep(&mut self, now: Instant) {
        let expired: Vec<Index> = self
            .writes
            .iter()
            .filter(|(_, w)| w.reply.expired(now))
            .map(|(i, _)| *i)
            .collect();
        for i in expired {
            if let Some(w) = self.writes.remove(&i) {
                w.reply.send(unavailable("timeout", ErrorOutcome::Unknown));
            }
        }
        let expired: Vec<u64> = self
            .reads_by_ctx
            .iter()
            .filter(|(_, r)| r.reply.expired(now))
            .map(|(c, _)| *c)
            .collect();
        for c in expired {
            if let Some(r) = self.reads_by_ctx.remove(&c) {
                r.reply.send(unavailable("timeout", ErrorOutcome::Failed));
            }
        }
        let (gone, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_waiting_apply)
            .into_iter()
            .partition(|(_, r)| r.reply.expired(now));
        self.reads_waiting_apply = waiting;
        for (_, r) in gone {
            r.reply.send(unavailable("timeout", ErrorOutcome::Failed));
        }
    }
}

impl<R: Reply> Drop for RaftLoop<R> {
    fn drop(&mut self) {
        tracing::debug!(
            node = self.id,
            pending_writes = self.writes.len(),
            "Raft loop stopped; pending requests end with outcome unknown"
        );
    }
}
