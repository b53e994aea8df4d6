//! The node process: the Raft loop around the pure core, plus the tokio side
//! (peer transport, HTTP API, signals).
//!
//! ## Threads
//! The Raft loop runs on the calling thread and owns the core, the storage,
//! the state machine and the trace; it blocks on fsync, which is exactly
//! what group commit wants: while one batch is being fsynced, new client
//! requests and peer messages queue up in the inbox and all go into the next
//! batch, so many writes share one fsync. A small tokio runtime runs the
//! transport and the HTTP server; they talk to the loop only through the
//! bounded inbox (dropping peer messages when it is full, rejecting client
//! requests with 503 `failed`).
//!
//! ## One iteration
//! 1. wait for an event or the next tick, then drain the inbox;
//! 2. tick (as many ticks as the node's clock demands, capped, so that a
//!    process resumed after SIGSTOP sees its lease and election timer
//!    expire; the clock is monotonic wall time unless `--clock-control`
//!    skews it, see [`crate::clock`]), then feed the events to the core;
//! 3. take the core's `Ready` and handle it strictly in the order
//!    persist (snapshot, hard state, entries) → fsync → send → apply → answer
//!    clients and reads; then `advance`;
//! 4. compact when `--snapshot-threshold` entries were applied since the last snapshot.
//!
//! Nothing is acknowledged before it is fsynced: replies to peers leave in
//! step 3 after the fsync, client replies after apply.

use crate::api::{self, ErrorOutcome, ReadMode, Request, Response, StatusBody};
use crate::cli::NodeArgs;
use crate::clock::{Clock, Ticker};
use crate::kv::{ApplyOutcome, Command, Kv};
use crate::raft::{
    ConfChange, Config, Entry, EntryPayload, Index, Membership, NodeId, Persisted, ProposeError,
    Raft, ReadError, Ready, Snapshot, SnapshotMeta, Term,
};
use crate::storage::Storage;
use crate::trace::Trace;
use crate::transport::{self, Transport};
use anyhow::{bail, Context};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::Instrument;

/// Events queued for the Raft loop before new ones are dropped/rejected.
const INBOX_EVENTS: usize = 16 * 1024;
/// Events handled per iteration at most (bounds the latency of one batch).
const MAX_EVENTS_PER_BATCH: usize = 4096;
/// How often abandoned client waiters are swept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

enum Event {
    Peer(crate::raft::Message),
    Client(Request, oneshot::Sender<Response>),
    Shutdown,
}

/// Converts the millisecond flags into a core configuration of `tick_ms` ticks.
pub fn raft_config(args: &NodeArgs) -> anyhow::Result<Config> {
    if args.tick_ms == 0 {
        bail!("--tick-ms must be positive");
    }
    let ticks = |ms: u64| ms.div_ceil(args.tick_ms).max(1);
    let mut c = Config::new(args.id);
    c.election_ticks_min = ticks(args.election_timeout_ms.min_ms);
    c.election_ticks_max = ticks(args.election_timeout_ms.max_ms).max(c.election_ticks_min + 1);
    c.heartbeat_ticks = ticks(args.heartbeat_ms);
    if c.heartbeat_ticks >= c.election_ticks_min {
        bail!(
            "--heartbeat-ms {} must be shorter than the election timeout {} ms (in {} ms ticks)",
            args.heartbeat_ms,
            args.election_timeout_ms.min_ms,
            args.tick_ms
        );
    }
    // The lease must end before any other node can time out and win an
    // election; leave a fifth of the minimum timeout for clock-rate drift.
    c.lease_ticks = (c.election_ticks_min * 4 / 5).clamp(1, c.election_ticks_min - 1);
    c.pre_vote = !args.no_pre_vote;
    c.check_quorum = !args.no_check_quorum;
    #[cfg(feature = "bugs")]
    {
        c.bugs = args.bug_set();
    }
    Ok(c)
}

/// Runs a node until SIGTERM/SIGINT. Errors are fatal: unrecoverable storage
/// (damaged data dir, failed fsync) or bad flags.
///
/// Call it from a plain thread (not from inside a tokio runtime): it builds
/// its own runtime for the network side and runs the Raft loop on the caller.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    if args.id == 0 {
        bail!("--id must be a positive integer");
    }
    let config = raft_config(&args)?;
    let span = tracing::info_span!("node", id = args.id);
    let _enter = span.enter();

    #[cfg(feature = "bugs")]
    crate::bugs::announce(config.bugs);
    #[cfg(not(feature = "bugs"))]
    let opened = Storage::open(&args.data_dir, args.segment_max_bytes);
    #[cfg(feature = "bugs")]
    let opened = Storage::open_with_bugs(&args.data_dir, args.segment_max_bytes, config.bugs);
    let (storage, recovered) =
        opened.with_context(|| format!("recovering data dir {}", args.data_dir.display()))?;
    let fresh = recovered.is_fresh();
    let mut kv = Kv::new();
    let mut applied = 0;
    let mut membership = Membership::new(args.members.iter().copied());
    if let Some(s) = &recovered.snapshot {
        kv.restore(&s.data)
            .with_context(|| format!("restoring the snapshot in {}", args.data_dir.display()))?;
        applied = s.meta.last_index;
        membership = s.meta.membership.clone();
    }
    tracing::info!(
        term = recovered.hard_state.term,
        vote = ?recovered.hard_state.vote,
        snapshot_index = applied,
        log_entries = recovered.entries.len(),
        "recovered storage"
    );
    if fresh && args.members.is_empty() {
        tracing::info!("empty data dir and no --members: waiting to be added to a cluster");
    } else if fresh && !args.members.contains(&args.id) {
        tracing::warn!(members = ?args.members, "--members does not include this node");
    }
    let seed: u64 = args.seed.unwrap_or_else(rand::random);
    tracing::info!(seed, "starting Raft core");
    let raft = Raft::new(
        config.clone(),
        Persisted {
            hard_state: recovered.hard_state,
            snapshot: recovered.snapshot,
            entries: recovered.entries,
            initial_membership: Membership::new(args.members.iter().copied()),
        },
        seed,
    );
    let trace_path = args.trace_path();
    let mut trace = Trace::open(&trace_path, args.id)
        .with_context(|| format!("opening trace {}", trace_path.display()))?;
    trace.start(raft.status().term, applied);
    trace.flush();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("node-io")
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let client_listener = std::net::TcpListener::bind(args.client_listen)
        .with_context(|| format!("binding --client-listen {}", args.client_listen))?;
    let peer_listener = std::net::TcpListener::bind(args.peer_listen)
        .with_context(|| format!("binding --peer-listen {}", args.peer_listen))?;
    client_listener.set_nonblocking(true)?;
    peer_listener.set_nonblocking(true)?;
    tracing::info!(
        client = %client_listener.local_addr()?,
        peer = %peer_listener.local_addr()?,
        "listening"
    );

    let clock = Clock::new();
    let (tx, rx) = mpsc::sync_channel::<Event>(INBOX_EVENTS);
    let shutdown = Arc::new(AtomicBool::new(false));
    let transport = Transport::start(args.id, &args.peer_map(), rt.handle());
    {
        let _guard = rt.enter();
        let peer_listener = tokio::net::TcpListener::from_std(peer_listener)?;
        let client_listener = tokio::net::TcpListener::from_std(client_listener)?;
        let ptx = tx.clone();
        let deliver: transport::Deliver = Arc::new(move |m| {
            // A full inbox drops the message: Raft retransmits.
            let _ = ptx.try_send(Event::Peer(m));
        });
        rt.spawn(transport::serve(peer_listener, deliver).instrument(span.clone()));
        let ctx = tx.clone();
        let submit: api::Submit =
            Arc::new(
                move |req, reply| match ctx.try_send(Event::Client(req, reply)) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(_)) => Err("node overloaded".into()),
                    Err(TrySendError::Disconnected(_)) => Err("node shutting down".into()),
                },
            );
        let app = api::router(submit, Duration::from_millis(args.request_timeout_ms));
        let app = if args.clock_control {
            app.merge(api::clock_router(clock.clone()))
        } else {
            app
        };
        rt.spawn(
            async move {
                if let Err(e) = axum::serve(client_listener, app).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }
            .instrument(span.clone()),
        );
        let stx = tx.clone();
        let flag = shutdown.clone();
        let signal_task = async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down");
            flag.store(true, Ordering::SeqCst);
            let _ = stx.try_send(Event::Shutdown);
        };
        rt.spawn(signal_task.instrument(span.clone()));
    }
    drop(tx);

    let mut node = Node {
        id: args.id,
        raft,
        storage,
        kv,
        trace,
        transport,
        applied,
        membership,
        last_snapshot_index: applied,
        snapshot_threshold: args.snapshot_threshold.max(1),
        writes: BTreeMap::new(),
        reads_by_ctx: HashMap::new(),
        reads_waiting_apply: Vec::new(),
        next_read_ctx: 1,
    };
    let tick = Duration::from_millis(args.tick_ms);
    let ticker = Ticker::new(clock, tick, config.election_ticks_max + 1);
    let result = node.run_loop(&rx, ticker, &shutdown);
    node.trace.flush();
    drop(node);
    rt.shutdown_timeout(Duration::from_millis(500));
    if result.is_ok() {
        tracing::info!("stopped cleanly");
    }
    result
}

enum WriteKind {
    Kv,
    Member,
}

struct PendingWrite {
    term: Term,
    kind: WriteKind,
    reply: oneshot::Sender<Response>,
}

struct PendingRead {
    key: String,
    reply: oneshot::Sender<Response>,
}

struct Node {
    id: NodeId,
    raft: Raft,
    storage: Storage,
    kv: Kv,
    trace: Trace,
    transport: Transport,
    applied: Index,
    /// The configuration as of `applied` (what a snapshot taken now records).
    membership: Membership,
    last_snapshot_index: Index,
    snapshot_threshold: u64,
    /// Client writes by log index, waiting for their entry to be applied.
    writes: BTreeMap<Index, PendingWrite>,
    /// Linearizable reads waiting for the core's ReadIndex answer.
    reads_by_ctx: HashMap<u64, PendingRead>,
    /// Reads whose read index is known, waiting until it is applied.
    reads_waiting_apply: Vec<(Index, PendingRead)>,
    next_read_ctx: u64,
}

impl Node {
    fn run_loop(
        &mut self,
        rx: &mpsc::Receiver<Event>,
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
            self.trace.flush();
            if now >= next_sweep {
                self.sweep();
                next_sweep = now + SWEEP_EVERY;
            }
        }
    }

    fn leader_hint(&self) -> Option<NodeId> {
        self.raft.status().leader
    }

    fn on_client(&mut self, req: Request, reply: oneshot::Sender<Response>) {
        match req {
            Request::Status => {
                let s = self.raft.status();
                let _ = reply.send(Response::Status(StatusBody {
                    id: s.id,
                    term: s.term,
                    role: s.role.as_str().to_string(),
                    leader: s.leader,
                    commit_index: s.commit_index,
                    last_applied: self.applied,
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

    fn on_proposed(
        &mut self,
        r: Result<(Index, Term), ProposeError>,
        kind: WriteKind,
        reply: oneshot::Sender<Response>,
    ) {
        let fail = |error: &str| Response::Unavailable {
            error: error.into(),
            outcome: ErrorOutcome::Failed,
        };
        let resp = match r {
            Ok((index, term)) => {
                #[cfg(feature = "bugs")]
                let reply = crate::bugs::ack_before_commit(
                    self.raft.bugs(),
                    matches!(kind, WriteKind::Kv),
                    reply,
                );
                let w = PendingWrite { term, kind, reply };
                if let Some(old) = self.writes.insert(index, w) {
                    // Our earlier entry at this index was overwritten by another
                    // leader's entry and can never commit.
                    let _ = old.reply.send(fail("overwritten"));
                }
                return;
            }
            Err(ProposeError::NotLeader { leader }) => Response::NotLeader { leader },
            Err(ProposeError::NotReady) => fail("not-ready"),
            Err(ProposeError::Transferring) => fail("transferring"),
            Err(ProposeError::ChangePending { .. }) => Response::ChangePending,
            Err(ProposeError::BadChange(m)) => Response::BadRequest(m),
        };
        let _ = reply.send(resp);
    }

    fn on_read(&mut self, key: String, mode: ReadMode, reply: oneshot::Sender<Response>) {
        let read_err = |e: ReadError, hint: Option<NodeId>| match e {
            ReadError::NotLeader { leader } => Response::NotLeader {
                leader: leader.or(hint),
            },
            ReadError::NotReady => Response::Unavailable {
                error: "not-ready".into(),
                outcome: ErrorOutcome::Failed,
            },
            ReadError::LeaseExpired => Response::Unavailable {
                error: "lease-expired".into(),
                outcome: ErrorOutcome::Failed,
            },
        };
        match mode {
            ReadMode::Stale => {
                let _ = reply.send(Response::Value(self.kv.get(&key).map(String::from)));
            }
            ReadMode::Lease => match self.raft.lease_read() {
                Ok(index) => self.read_at(index, PendingRead { key, reply }),
                // The lease lapsed (e.g. just after an election): confirm
                // leadership the slow way rather than fail the read.
                Err(ReadError::LeaseExpired) => self.read_index(key, reply),
                Err(e) => {
                    let _ = reply.send(read_err(e, None));
                }
            },
            ReadMode::Linearizable => self.read_index(key, reply),
        }
    }

    fn read_index(&mut self, key: String, reply: oneshot::Sender<Response>) {
        let ctx = self.next_read_ctx;
        self.next_read_ctx += 1;
        match self.raft.read_index(ctx) {
            Ok(()) => {
                self.reads_by_ctx.insert(ctx, PendingRead { key, reply });
            }
            Err(ReadError::NotLeader { leader }) => {
                let _ = reply.send(Response::NotLeader { leader });
            }
            Err(e) => {
                let _ = reply.send(Response::Unavailable {
                    error: match e {
                        ReadError::NotReady => "not-ready".into(),
                        other => other.to_string(),
                    },
                    outcome: ErrorOutcome::Failed,
                });
            }
        }
    }

    fn read_at(&mut self, index: Index, read: PendingRead) {
        if index <= self.applied {
            let v = self.kv.get(&read.key).map(String::from);
            let _ = read.reply.send(Response::Value(v));
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
            self.storage
                .install_snapshot(snap)
                .context("persisting a snapshot from the leader")?;
        }
        if let Some(hs) = &hard_state {
            self.storage
                .save_hard_state(hs)
                .context("persisting hard state")?;
        }
        self.storage
            .append(&entries)
            .context("appending to the log")?;
        self.storage.sync().context("fsyncing the log")?;
        // 2. Only now may anything that depends on it leave the node.
        for m in messages {
            self.transport.send(m);
        }
        if role_changed {
            let s = self.raft.status();
            tracing::info!(term = s.term, role = s.role.as_str(), leader = ?s.leader, "role changed");
            self.trace.role(s.term, s.role.as_str(), s.leader);
        }
        if let Some(c) = commit_index {
            let term = committed
                .iter()
                .rev()
                .find(|e| e.index == c)
                .map(|e| e.term)
                .or_else(|| self.storage.term(c));
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
                    let _ = r.reply.send(Response::NotLeader { leader });
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
            let _ = w.reply.send(Response::Unavailable {
                error: "superseded-by-snapshot".into(),
                outcome: ErrorOutcome::Unknown,
            });
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
                Response::Unavailable {
                    error: "overwritten".into(),
                    outcome: ErrorOutcome::Failed,
                }
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
            let _ = w.reply.send(resp);
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
            let _ = r.reply.send(Response::Value(v));
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
        self.storage
            .save_snapshot(snap)
            .context("persisting a snapshot")?;
        tracing::info!(
            index = self.applied,
            bytes = snap.data.len(),
            segments = self.storage.segment_count(),
            "took a snapshot and compacted the log"
        );
        self.last_snapshot_index = self.applied;
        Ok(())
    }

    /// Forgets waiters whose HTTP request already gave up (timed out).
    fn sweep(&mut self) {
        self.writes.retain(|_, w| !w.reply.is_closed());
        self.reads_by_ctx.retain(|_, r| !r.reply.is_closed());
        self.reads_waiting_apply
            .retain(|(_, r)| !r.reply.is_closed());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        tracing::debug!(
            node = self.id,
            pending_writes = self.writes.len(),
            "Raft loop stopped; pending requests end with outcome unknown"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: NodeArgs,
    }

    fn args(extra: &[&str]) -> NodeArgs {
        let mut argv = vec![
            "node",
            "--id",
            "1",
            "--data-dir",
            "/tmp/x",
            "--client-listen",
            "127.0.0.1:1",
            "--peer-listen",
            "127.0.0.1:2",
        ];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn millisecond_flags_map_to_ticks_with_a_lease_inside_the_election_timeout() {
        let c = raft_config(&args(&[])).unwrap();
        assert_eq!((c.election_ticks_min, c.election_ticks_max), (15, 30));
        assert_eq!(c.heartbeat_ticks, 5);
        assert!(c.lease_ticks < c.election_ticks_min && c.lease_ticks >= 10);
        assert!(c.pre_vote && c.check_quorum);

        let c = raft_config(&args(&[
            "--election-timeout-ms",
            "1000-1000",
            "--heartbeat-ms",
            "105",
            "--no-pre-vote",
            "--no-check-quorum",
        ]))
        .unwrap();
        assert_eq!((c.election_ticks_min, c.election_ticks_max), (100, 101));
        assert_eq!(c.heartbeat_ticks, 11);
        assert!(!c.pre_vote && !c.check_quorum);

        assert!(raft_config(&args(&["--heartbeat-ms", "200"])).is_err());
        assert!(raft_config(&args(&["--tick-ms", "0"])).is_err());
        let a = args(&["--peer", "2=127.0.0.1:9", "--members", "1,2,3"]);
        assert_eq!(a.members, vec![1, 2, 3]);
        assert_eq!(a.peer_map().len(), 1);
        assert_eq!(a.trace_path(), std::path::Path::new("/tmp/x/trace.jsonl"));
    }
}
