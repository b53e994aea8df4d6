//! A seeded, in-memory network simulator that runs whole clusters of Raft cores.
//!
//! One `u64` seed determines everything: cluster size, PreVote/CheckQuorum
//! settings, timings, and every fault and client action. The simulator drives
//! the cores exactly as the runtime must (persist → send → apply → advance),
//! with a network that drops, delays, reorders and duplicates messages, cuts
//! links (partitions of any grouping, one-way cuts), crashes nodes (losing
//! everything a core held that was not yet persisted) and restarts them from
//! their persisted state, while membership changes, compactions, snapshot
//! transfers, leadership transfers and reads go on. A removed node may come
//! back wiped: restarted with empty storage and added again under its old id
//! (what an operator does after replacing a disk), see [`Sim::conf_change`].
//!
//! Checked continuously (a panic names the broken property):
//! * Election Safety: at most one leader per term.
//! * Log Matching: an (index, term) pair identifies one entry and its
//!   predecessor's term, across all nodes and all time.
//! * Leader Completeness: a new leader holds every entry committed before
//!   its term began.
//! * State Machine Safety: every node applies the same entry at each index,
//!   in order, exactly once per incarnation; snapshots carry the same state.
//! * Read linearizability: a ReadIndex answer or a lease read is at least the
//!   highest index applied anywhere when the read was requested.
//! * Exactly once: every client command (each is unique, and the simulated
//!   clients never retry) is applied at one index only.
//!
//! After the chaos phase the network heals and every node restarts; a leader
//! must then commit a new entry within a bounded number of ticks (liveness).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use node::raft::{
    ConfChange, Config, Entry, EntryPayload, HardState, Index, Membership, Message, NodeId,
    Persisted, Raft, Ready, Role, Snapshot, Term,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Ticks allowed after healing for a leader to commit a new entry.
pub const LIVENESS_TICKS: u64 = 400;

/// Ticks allowed after that commit for every member to apply it too.
pub const CATCH_UP_TICKS: u64 = 3_000;

/// Deliberately vulnerable behaviour of the *simulated runtime* (never of the
/// core): used only to show that the checks catch a runtime that breaks the
/// persistence contract.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeFaults {
    /// Do not persist the vote of the hard state (only the term).
    pub forget_vote: bool,
    /// Recovery drops the last log entry.
    pub lose_last_entry: bool,
    /// Log entries count as persisted (and are acknowledged) at once, but a
    /// crash loses those persisted within this many ticks (0: none).
    pub unsynced_ticks: u64,
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub nodes: usize,
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub chaos_ticks: u64,
    pub max_entries_per_msg: usize,
    pub max_inflight_msgs: usize,
    pub snapshot_chunk_bytes: usize,
    pub drop_p: f64,
    pub dup_p: f64,
    pub max_delay: u64,
    /// Share of client turns that write (idle clusters elect differently).
    pub write_share: f64,
    pub faults: RuntimeFaults,
    /// Planted bugs of the core (docs/bugs.md), given to every node.
    #[cfg(feature = "bugs")]
    pub bugs: node::bugs::BugSet,
}

impl Scenario {
    /// Derives every option from the seed (printed on failure).
    pub fn from_seed(seed: u64) -> Scenario {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_0f5c_e0a7_1000);
        Scenario {
            seed,
            nodes: if rng.gen_bool(0.6) { 3 } else { 5 },
            pre_vote: seed % 4 < 2,
            check_quorum: seed & 1 == 0,
            chaos_ticks: rng.gen_range(150..350),
            max_entries_per_msg: if rng.gen_bool(0.5) {
                1
            } else {
                rng.gen_range(2..6)
            },
            max_inflight_msgs: rng.gen_range(1..5),
            snapshot_chunk_bytes: rng.gen_range(8..80),
            drop_p: [0.0, 0.02, 0.1, 0.25][rng.gen_range(0..4)],
            dup_p: [0.0, 0.02, 0.1][rng.gen_range(0..3)],
            max_delay: [1, 3, 8, 20][rng.gen_range(0..4)],
            write_share: [0.05, 0.3, 1.0][rng.gen_range(0..3)],
            faults: RuntimeFaults::default(),
            #[cfg(feature = "bugs")]
            bugs: node::bugs::BugSet::none(),
        }
    }
}

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    let mut h = h ^ 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn payload_hash(p: &EntryPayload) -> u64 {
    match p {
        EntryPayload::Noop => 1,
        EntryPayload::Command(d) => fnv(2, d),
        EntryPayload::Config(m) => {
            let mut h = 3;
            for v in &m.voters {
                h = fnv(h, &v.to_le_bytes());
            }
            h = fnv(h, b"|");
            for l in &m.learners {
                h = fnv(h, &l.to_le_bytes());
            }
            h
        }
    }
}

/// What a node keeps on its (simulated) disk.
#[derive(Clone, Debug, Default)]
struct Durable {
    hard_state: HardState,
    snapshot: Option<Snapshot>,
    entries: Vec<Entry>,
    initial: Membership,
    /// Tick at which each entry of `entries` was persisted.
    persisted_at: Vec<u64>,
}

impl Durable {
    fn term_at(&self, index: Index) -> Option<Term> {
        let (si, st) = self
            .snapshot
            .as_ref()
            .map_or((0, 0), |s| (s.meta.last_index, s.meta.last_term));
        if index == si {
            return Some(st);
        }
        if index < si {
            return None;
        }
        self.entries.get((index - si - 1) as usize).map(|e| e.term)
    }
}

/// The replicated state machine: a hash chain over applied entries.
#[derive(Clone, Copy, Debug, Default)]
struct StateMachine {
    applied: Index,
    chain: u64,
}

impl StateMachine {
    fn encode(&self) -> Vec<u8> {
        // Pad so that snapshots span several chunks.
        let mut v = Vec::with_capacity(96);
        v.extend_from_slice(&self.applied.to_le_bytes());
        v.extend_from_slice(&self.chain.to_le_bytes());
        let mut x = self.chain;
        while v.len() < 96 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            v.push((x >> 56) as u8);
        }
        v
    }

    fn decode(data: &[u8]) -> StateMachine {
        assert!(
            data.len() >= 16,
            "snapshot data truncated ({} bytes)",
            data.len()
        );
        let applied = u64::from_le_bytes(data[0..8].try_into().unwrap());
        let chain = u64::from_le_bytes(data[8..16].try_into().unwrap());
        let sm = StateMachine { applied, chain };
        assert_eq!(sm.encode(), data, "snapshot data corrupted in transfer");
        sm
    }
}

struct SimNode {
    id: NodeId,
    raft: Option<Raft>,
    durable: Durable,
    sm: StateMachine,
    /// A committed configuration once included it.
    was_member: bool,
    /// Removed by a committed configuration: shut down (until re-added wiped).
    retired: bool,
    /// Highest term this node's incarnations ever held (a vote it gave can
    /// only be in a term at or below it).
    max_term: Term,
    /// Index of the committed configuration that removed it (when retired).
    removed_at: Index,
    incarnation: u64,
    /// Term in which this incarnation was last seen as leader.
    seen_leader_term: Option<Term>,
}

impl SimNode {
    /// The term this node is in now (its durable one while it is down).
    fn current_term(&self) -> Term {
        self.raft
            .as_ref()
            .map_or(self.durable.hard_state.term, |r| r.status().term)
    }

    /// Where its log starts: the last index of its snapshot (0 without one).
    fn snapshot_index(&self) -> Index {
        match &self.raft {
            Some(r) => r.first_index() - 1,
            None => self
                .durable
                .snapshot
                .as_ref()
                .map_or(0, |s| s.meta.last_index),
        }
    }

    /// Folds the current term into `max_term` (before the core goes away).
    fn note_term(&mut self) {
        self.max_term = self.max_term.max(self.current_term());
    }
}

#[derive(Debug)]
struct InFlight {
    at: u64,
    seq: u64,
    msg: Message,
}

pub struct Sim {
    pub sc: Scenario,
    rng: ChaCha8Rng,
    now: u64,
    nodes: BTreeMap<NodeId, SimNode>,
    next_id: NodeId,
    net: Vec<InFlight>,
    seq: u64,
    /// Directed links that drop everything.
    cut: BTreeSet<(NodeId, NodeId)>,
    drop_p: f64,
    max_delay: u64,
    /// Index of the newest configuration applied anywhere.
    latest_config: Index,
    /// Faults are injected (false once healed).
    chaos: bool,

    // Checker state.
    leaders: BTreeMap<Term, NodeId>,
    /// (index, term) → (payload hash, previous entry's term).
    entries: BTreeMap<(Index, Term), (u64, Term)>,
    /// index → (term, payload hash, chain after applying it).
    applied: BTreeMap<Index, (Term, u64, u64)>,
    max_applied: Index,
    /// Payload hash of every client command applied → its index.
    applied_commands: BTreeMap<u64, Index>,
    /// (index, term, highest term in the cluster when we learned it committed).
    committed: Vec<(Index, Term, Term)>,
    /// Pending ReadIndex requests: ctx → (node, minimum acceptable index).
    reads: BTreeMap<u64, (NodeId, Index)>,
    next_ctx: u64,
    pub stats: Stats,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub elections: u64,
    pub commits: u64,
    pub snapshots_installed: u64,
    pub reads: u64,
    pub lease_reads: u64,
    pub conf_changes: u64,
    /// Removed nodes added back with wiped storage.
    pub wiped_rejoins: u64,
    pub crashes: u64,
    pub liveness_ticks: u64,
}

impl Sim {
    pub fn new(sc: Scenario) -> Sim {
        let rng = ChaCha8Rng::seed_from_u64(sc.seed);
        let ids: Vec<NodeId> = (1..=sc.nodes as u64).collect();
        let initial = Membership::new(ids.iter().copied());
        let mut sim = Sim {
            drop_p: sc.drop_p,
            max_delay: sc.max_delay,
            latest_config: 0,
            chaos: true,
            rng,
            now: 0,
            nodes: BTreeMap::new(),
            next_id: sc.nodes as u64 + 1,
            net: Vec::new(),
            seq: 0,
            cut: BTreeSet::new(),
            leaders: BTreeMap::new(),
            entries: BTreeMap::new(),
            applied: BTreeMap::new(),
            max_applied: 0,
            applied_commands: BTreeMap::new(),
            committed: Vec::new(),
            reads: BTreeMap::new(),
            next_ctx: 1,
            stats: Stats::default(),
            sc,
        };
        for id in ids {
            sim.add_node(id, initial.clone(), true);
        }
        sim
    }

    fn config(&self, id: NodeId) -> Config {
        let mut c = Config::new(id);
        c.election_ticks_min = 10;
        c.election_ticks_max = 20;
        c.heartbeat_ticks = 3;
        c.lease_ticks = 8;
        c.pre_vote = self.sc.pre_vote;
        c.check_quorum = self.sc.check_quorum;
        c.max_entries_per_msg = self.sc.max_entries_per_msg;
        c.max_inflight_msgs = self.sc.max_inflight_msgs;
        c.snapshot_chunk_bytes = self.sc.snapshot_chunk_bytes;
        #[cfg(feature = "bugs")]
        {
            c.bugs = self.sc.bugs;
        }
        c
    }

    fn add_node(&mut self, id: NodeId, initial: Membership, member: bool) {
        let durable = Durable {
            initial,
            ..Durable::default()
        };
        self.nodes.insert(
            id,
            SimNode {
                id,
                raft: None,
                durable,
                sm: StateMachine::default(),
                was_member: member,
                retired: false,
                max_term: 0,
                removed_at: 0,
                incarnation: 0,
                seen_leader_term: None,
            },
        );
        self.start(id);
    }

    /// (Re)starts a node from its durable state.
    fn start(&mut self, id: NodeId) {
        let cfg = self.config(id);
        let seed = self.rng.gen();
        let n = self.nodes.get_mut(&id).unwrap();
        assert!(n.raft.is_none() && !n.retired);
        n.incarnation += 1;
        if self.sc.faults.lose_last_entry && n.durable.entries.pop().is_some() {
            n.durable.persisted_at.pop();
        }
        let persisted = Persisted {
            hard_state: n.durable.hard_state,
            snapshot: n.durable.snapshot.clone(),
            entries: n.durable.entries.clone(),
            initial_membership: n.durable.initial.clone(),
        };
        n.sm = match &n.durable.snapshot {
            Some(s) => StateMachine::decode(&s.data),
            None => StateMachine::default(),
        };
        n.raft = Some(Raft::new(cfg, persisted, seed));
        n.seen_leader_term = None;
    }

    /// Crash: the core and everything it had not handed out are lost.
    fn crash(&mut self, id: NodeId) {
        tracing::info!(node = id, tick = self.now, "sim: crash");
        let n = self.nodes.get_mut(&id).unwrap();
        n.note_term();
        if n.raft.take().is_some() {
            self.stats.crashes += 1;
        }
        let unsynced = self.sc.faults.unsynced_ticks;
        if unsynced > 0 {
            let since = self.now.saturating_sub(unsynced);
            let keep = n.durable.persisted_at.partition_point(|&t| t < since);
            n.durable.entries.truncate(keep);
            n.durable.persisted_at.truncate(keep);
        }
    }

    /// A retired node that may come back with wiped storage: its removal
    /// committed (it is retired); every node that is not retired, up or
    /// down, is at least at the highest term the old incarnation ever held;
    /// and every such node has compacted its log past the removal. That
    /// allows the common case the fault tester runs: the same leader, in the
    /// same term, removes a node and adds it back wiped.
    ///
    /// Why the compaction: a wiped node fed the log from the start would
    /// replay old configurations in which it was a voter and campaign on
    /// their authority, with a log that lacks committed entries; two such
    /// nodes (or one and a lagging voter) make a majority of an old
    /// configuration and elect a leader that breaks Leader Completeness
    /// (seed 2938 found exactly that). Raft assumes a server id is never
    /// reused with lost state; with every log starting past the removal,
    /// the wiped node only ever sees configurations in which it is new, so
    /// it is as safe as a fresh id.
    ///
    /// Why that is the safety condition: the wiped node has forgotten its
    /// votes, and its old incarnation voted only in terms ≤ its `max_term`.
    /// In-flight messages to the old incarnation are lost with its process
    /// (see `rejoin_wiped`), and retired nodes send nothing, so every
    /// RequestVote the new incarnation can ever receive is sent after the
    /// rejoin by a node whose term is already ≥ `max_term`; a campaign
    /// asks for votes in its term + 1 (a pre-vote binds nothing). So the
    /// new incarnation votes only in terms above any its old one voted in,
    /// and no term gets two votes from it. (A restarted node resumes from
    /// its durable term, which is why down nodes count too.)
    fn wiped_rejoin_candidate(&mut self) -> Option<NodeId> {
        let floor = self
            .nodes
            .values()
            .filter(|n| !n.retired)
            .map(|n| n.current_term())
            .min()?;
        let compacted = self
            .nodes
            .values()
            .filter(|n| !n.retired)
            .map(|n| n.snapshot_index())
            .min()?;
        let ready: Vec<NodeId> = self
            .nodes
            .values()
            .filter(|n| n.retired && n.max_term <= floor && n.removed_at <= compacted)
            .map(|n| n.id)
            .collect();
        ready.choose(&mut self.rng).copied()
    }

    /// Restarts retired node `id` with empty storage, waiting to be added
    /// (no initial membership), as after a disk replacement.
    fn rejoin_wiped(&mut self, id: NodeId) {
        tracing::info!(node = id, tick = self.now, "sim: wiped node rejoins");
        // The old process is gone, and with it whatever was on the way to it.
        self.net.retain(|m| m.msg.to != id);
        let n = self.nodes.get_mut(&id).unwrap();
        assert!(n.retired && n.raft.is_none());
        n.durable = Durable::default();
        n.sm = StateMachine::default();
        n.was_member = false;
        n.retired = false;
        self.stats.wiped_rejoins += 1;
        self.start(id);
    }

    fn live(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| n.raft.is_some())
            .map(|n| n.id)
            .collect()
    }

    fn max_term(&self) -> Term {
        self.nodes
            .values()
            .map(|n| {
                n.raft
                    .as_ref()
                    .map_or(n.durable.hard_state.term, |r| r.status().term)
            })
            .max()
            .unwrap_or(0)
    }

    fn leader_nodes(&self) -> Vec<NodeId> {
        self.nodes
            .values()
            .filter(|n| {
                n.raft
                    .as_ref()
                    .is_some_and(|r| r.status().role == Role::Leader)
            })
            .map(|n| n.id)
            .collect()
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "seed {}: tick {}: {what}\nscenario: {:?}",
            self.sc.seed, self.now, self.sc
        )
    }

    /// Runs the whole scenario: chaos, heal, liveness.
    pub fn run(&mut self) {
        for _ in 0..self.sc.chaos_ticks {
            self.chaos_step();
        }
        self.heal();
        let start = self.now;
        let mut marker: Option<(NodeId, Index, Term)> = None;
        loop {
            if self.now - start > LIVENESS_TICKS {
                self.fail(&format!(
                    "liveness: no new entry committed within {LIVENESS_TICKS} ticks after healing"
                ));
            }
            self.deliver_due();
            self.tick_all();
            self.flush_all(1.0);
            if let Some((id, index, term)) = marker {
                if self.applied.get(&index).is_some_and(|(t, _, _)| *t == term) {
                    self.stats.liveness_ticks = self.now - start;
                    let _ = id;
                    break;
                }
            }
            let leaders = self.leader_nodes();
            if let Some(&l) = leaders.first() {
                let stale = match marker {
                    None => true,
                    Some((id, _, t)) => id != l || self.status(l).term != t,
                };
                if stale {
                    let marker_data = format!("liveness-{}", self.now).into_bytes();
                    if let Ok((index, term)) = self.raft(l).propose(marker_data) {
                        marker = Some((l, index, term));
                    }
                }
            }
            self.now += 1;
        }
        if let Some((_, index, _)) = marker {
            self.catch_up(index);
        }
        self.check_all_logs();
    }

    /// Liveness for every member: each node of the leader's configuration,
    /// learners and nodes re-added with wiped storage included, must apply
    /// up to `index` within [`CATCH_UP_TICKS`].
    fn catch_up(&mut self, index: Index) {
        let start = self.now;
        loop {
            let lagging: Vec<NodeId> = match self.leader_nodes().first() {
                Some(&l) => {
                    let m = self.status(l).membership;
                    m.voters
                        .iter()
                        .chain(m.learners.iter())
                        .copied()
                        .filter(|id| self.nodes[id].sm.applied < index)
                        .collect()
                }
                None => vec![0],
            };
            if lagging.is_empty() {
                return;
            }
            if self.now - start > CATCH_UP_TICKS {
                let detail: Vec<String> = lagging
                    .iter()
                    .filter(|id| self.nodes.contains_key(id))
                    .map(|&id| {
                        format!(
                            "{id}: {:?}",
                            self.nodes[&id].raft.as_ref().map(|r| r.status())
                        )
                    })
                    .collect();
                self.fail(&format!(
                    "liveness: members did not apply index {index} within {CATCH_UP_TICKS} ticks: {detail:?}"
                ));
            }
            self.deliver_due();
            self.tick_all();
            self.flush_all(1.0);
            self.now += 1;
        }
    }

    fn raft(&mut self, id: NodeId) -> &mut Raft {
        self.nodes.get_mut(&id).unwrap().raft.as_mut().unwrap()
    }

    fn status(&self, id: NodeId) -> node::raft::Status {
        self.nodes[&id].raft.as_ref().unwrap().status()
    }

    fn heal(&mut self) {
        tracing::info!(tick = self.now, "sim: heal");
        self.chaos = false;
        self.cut.clear();
        self.drop_p = 0.0;
        self.max_delay = 2;
        for id in self.nodes.keys().copied().collect::<Vec<_>>() {
            let n = &self.nodes[&id];
            if n.raft.is_none() && !n.retired {
                self.start(id);
            }
        }
    }

    fn chaos_step(&mut self) {
        self.faults();
        self.client_actions();
        self.deliver_due();
        self.tick_all();
        self.flush_all(0.85);
        self.now += 1;
    }

    fn faults(&mut self) {
        let live = self.live();
        let r: f64 = self.rng.gen();
        if r < 0.012 && !live.is_empty() {
            let id = *live.choose(&mut self.rng).unwrap();
            self.crash(id);
        } else if r < 0.02 {
            // Leaders are where divergent logs come from: crash one.
            if let Some(&l) = self.leader_nodes().choose(&mut self.rng) {
                self.crash(l);
            }
        } else if r < 0.06 {
            let down: Vec<NodeId> = self
                .nodes
                .values()
                .filter(|n| n.raft.is_none() && !n.retired)
                .map(|n| n.id)
                .collect();
            if let Some(&id) = down.choose(&mut self.rng) {
                self.start(id);
            }
        } else if r < 0.075 {
            self.partition();
        } else if r < 0.082 {
            // Cut a leader off (with its proposals) from everyone.
            if let Some(&l) = self.leader_nodes().choose(&mut self.rng) {
                self.cut.clear();
                for &o in self.nodes.keys() {
                    if o != l {
                        self.cut.insert((l, o));
                        self.cut.insert((o, l));
                    }
                }
            }
        } else if r < 0.1 {
            self.cut.clear();
        } else if r < 0.105 {
            self.drop_p = [0.0, 0.05, 0.2, 0.5][self.rng.gen_range(0..4)];
        }
    }

    fn partition(&mut self) {
        let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
        self.cut.clear();
        if self.rng.gen_bool(0.6) {
            // Random grouping: each node joins one of 2–3 groups.
            let groups = self.rng.gen_range(2..4);
            let g: BTreeMap<NodeId, u32> = ids
                .iter()
                .map(|&i| (i, self.rng.gen_range(0..groups)))
                .collect();
            for &a in &ids {
                for &b in &ids {
                    if g[&a] != g[&b] {
                        self.cut.insert((a, b));
                    }
                }
            }
        } else {
            // One-way cuts of random directed links.
            let k = self.rng.gen_range(1..=ids.len());
            for _ in 0..k {
                let a = *ids.choose(&mut self.rng).unwrap();
                let b = *ids.choose(&mut self.rng).unwrap();
                if a != b {
                    self.cut.insert((a, b));
                }
            }
        }
    }

    fn client_actions(&mut self) {
        let leaders = self.leader_nodes();
        let Some(&l) = leaders.choose(&mut self.rng) else {
            return;
        };
        let r: f64 = self.rng.gen();
        if r < 0.35 {
            if self.rng.gen_bool(self.sc.write_share) {
                let data = format!("cmd-{}-{}", self.sc.seed, self.now).into_bytes();
                let _ = self.raft(l).propose(data);
            }
        } else if r < 0.40 {
            self.conf_change(l);
        } else if r < 0.47 {
            let ctx = self.next_ctx;
            self.next_ctx += 1;
            let floor = self.max_applied;
            if self.raft(l).read_index(ctx).is_ok() {
                self.reads.insert(ctx, (l, floor));
            }
        } else if r < 0.54 {
            let floor = self.max_applied;
            if let Ok(index) = self.raft(l).lease_read() {
                self.stats.lease_reads += 1;
                if index < floor {
                    self.fail(&format!(
                        "lease read on {l} at index {index} misses applied index {floor}"
                    ));
                }
            }
        } else if r < 0.60 {
            let live = self.live();
            let id = *live.choose(&mut self.rng).unwrap();
            self.compact(id);
        } else if r < 0.605 {
            let voters: Vec<NodeId> = self.status(l).membership.voters.into_iter().collect();
            let to = *voters.choose(&mut self.rng).unwrap();
            let _ = self.raft(l).transfer_leadership(to);
        }
    }

    fn conf_change(&mut self, l: NodeId) {
        let m = self.status(l).membership;
        let members = m.voters.len() + m.learners.len();
        let add = members < 5 && (m.voters.len() <= 2 || self.rng.gen_bool(0.5));
        if add {
            let rejoin = if self.rng.gen_bool(0.5) {
                self.wiped_rejoin_candidate()
            } else {
                None
            };
            let id = rejoin.unwrap_or(self.next_id);
            if self
                .raft(l)
                .propose_conf_change(ConfChange::AddNode(id))
                .is_ok()
            {
                self.stats.conf_changes += 1;
                if rejoin.is_some() {
                    self.rejoin_wiped(id);
                } else {
                    self.next_id += 1;
                    self.add_node(id, Membership::default(), false);
                }
            }
        } else if m.voters.len() > 2 {
            let all: Vec<NodeId> = m.voters.iter().chain(m.learners.iter()).copied().collect();
            let victim = *all.choose(&mut self.rng).unwrap();
            if self
                .raft(l)
                .propose_conf_change(ConfChange::RemoveNode(victim))
                .is_ok()
            {
                self.stats.conf_changes += 1;
            }
        }
    }

    fn compact(&mut self, id: NodeId) {
        let n = self.nodes.get_mut(&id).unwrap();
        let raft = n.raft.as_mut().unwrap();
        let applied = raft.status().last_applied;
        if applied < raft.first_index() || n.sm.applied != applied {
            return;
        }
        raft.compact(applied, n.sm.encode());
        let snap = raft
            .snapshot()
            .cloned()
            .expect("compact keeps the snapshot");
        assert_eq!(snap.meta.last_index, applied);
        let covered = n.durable.entries.partition_point(|e| e.index <= applied);
        n.durable.entries.drain(..covered);
        n.durable.persisted_at.drain(..covered);
        n.durable.snapshot = Some(snap);
    }

    fn deliver_due(&mut self) {
        let now = self.now;
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.net.len() {
            if self.net[i].at <= now {
                due.push(self.net.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|m| m.seq);
        due.shuffle(&mut self.rng);
        for m in due {
            let to = m.msg.to;
            if self.cut.contains(&(m.msg.from, to)) {
                continue;
            }
            let Some(n) = self.nodes.get_mut(&to) else {
                continue;
            };
            let Some(raft) = n.raft.as_mut() else {
                continue;
            };
            raft.step(m.msg);
            self.after_input(to);
            if self.rng.gen_bool(0.7) {
                self.handle_ready(to);
                // Crash right after answering: the window where only what
                // was persisted survives matters most (votes, acks).
                if self.chaos && self.rng.gen_bool(0.004) {
                    self.crash(to);
                }
            }
        }
    }

    fn tick_all(&mut self) {
        for id in self.live() {
            self.raft(id).tick();
            self.after_input(id);
        }
    }

    fn flush_all(&mut self, p: f64) {
        for id in self.live() {
            if p >= 1.0 || self.rng.gen_bool(p) {
                self.handle_ready(id);
            }
        }
    }

    /// Election Safety and Leader Completeness, checked as soon as a node
    /// becomes leader.
    fn after_input(&mut self, id: NodeId) {
        let n = &self.nodes[&id];
        let raft = n.raft.as_ref().unwrap();
        let st = raft.status();
        if st.role != Role::Leader || n.seen_leader_term == Some(st.term) {
            return;
        }
        match self.leaders.get(&st.term) {
            Some(&other) if other != id => self.fail(&format!(
                "election safety: nodes {other} and {id} both leaders in term {}",
                st.term
            )),
            _ => {}
        }
        self.leaders.insert(st.term, id);
        self.stats.elections += 1;
        // Every entry known committed before this term began must be here.
        if let Some(&(index, term, _)) = self
            .committed
            .iter()
            .rev()
            .find(|(_, _, seen)| *seen < st.term)
        {
            let ok = index < raft.first_index() || raft.log_term(index) == Some(term);
            if !ok {
                self.fail(&format!(
                    "leader completeness: leader {id} of term {} lacks committed entry {index} (term {term}); has term {:?}",
                    st.term,
                    raft.log_term(index)
                ));
            }
        }
        self.nodes.get_mut(&id).unwrap().seen_leader_term = Some(st.term);
    }

    /// The runtime contract: persist, then send, then apply, then advance.
    fn handle_ready(&mut self, id: NodeId) {
        let rd: Ready = {
            let Some(raft) = self.nodes.get_mut(&id).unwrap().raft.as_mut() else {
                return; // retired meanwhile
            };
            if !raft.has_ready() {
                return;
            }
            raft.ready()
        };
        // 1. persist
        let faults = self.sc.faults;
        {
            let n = self.nodes.get_mut(&id).unwrap();
            if let Some(s) = &rd.snapshot {
                n.durable.snapshot = Some(s.clone());
                n.durable.entries.clear();
                n.durable.persisted_at.clear();
            }
            if let Some(hs) = rd.hard_state {
                if faults.forget_vote {
                    // Only the term reaches the disk.
                    if hs.term != n.durable.hard_state.term {
                        n.durable.hard_state = HardState {
                            term: hs.term,
                            vote: None,
                        };
                    }
                } else {
                    n.durable.hard_state = hs;
                }
            }
            if let Some(first) = rd.entries.first() {
                let first = first.index;
                n.durable.entries.retain(|e| e.index < first);
                n.durable.persisted_at.truncate(n.durable.entries.len());
                let si = n.durable.snapshot.as_ref().map_or(0, |s| s.meta.last_index);
                let expect = si + n.durable.entries.len() as u64 + 1;
                assert_eq!(
                    first, expect,
                    "seed {}: node {id}: entries not contiguous with storage",
                    self.sc.seed
                );
                n.durable.entries.extend(rd.entries.iter().cloned());
                let stored = n.durable.entries.len();
                n.durable.persisted_at.resize(stored, self.now);
            }
        }
        for e in &rd.entries {
            let prev = self.nodes[&id].durable.term_at(e.index - 1).unwrap_or(0);
            let key = (e.index, e.term);
            let val = (payload_hash(&e.payload), prev);
            match self.entries.get(&key) {
                Some(v) if *v != val => self.fail(&format!(
                    "log matching: node {id} holds a different entry at index {} term {} (or a different predecessor)",
                    e.index, e.term
                )),
                Some(_) => {}
                None => {
                    self.entries.insert(key, val);
                }
            }
        }
        // 2. send
        for m in rd.messages {
            assert_eq!(m.from, id);
            if self.rng.gen_bool(self.drop_p) {
                continue;
            }
            let copies = if self.rng.gen_bool(self.sc.dup_p) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let delay = self.rng.gen_range(0..=self.max_delay);
                self.seq += 1;
                self.net.push(InFlight {
                    at: self.now + delay,
                    seq: self.seq,
                    msg: m.clone(),
                });
            }
        }
        // 3. apply
        if let Some(s) = &rd.snapshot {
            let sm = StateMachine::decode(&s.data);
            if let Some(&(_, _, chain)) = self.applied.get(&s.meta.last_index) {
                if chain != sm.chain {
                    self.fail(&format!(
                        "state machine safety: snapshot at {} differs",
                        s.meta.last_index
                    ));
                }
            }
            self.stats.snapshots_installed += 1;
            self.nodes.get_mut(&id).unwrap().sm = sm;
        }
        for e in &rd.committed {
            self.apply(id, e);
        }
        if self.nodes[&id].raft.is_none() {
            // Retired by the configuration it just applied.
            return;
        }
        for rs in &rd.read_states {
            if let Some((node, floor)) = self.reads.remove(&rs.ctx) {
                assert_eq!(node, id, "read answered by another node");
                self.stats.reads += 1;
                if rs.index < floor {
                    self.fail(&format!(
                        "read index {} on {id} misses applied index {floor}",
                        rs.index
                    ));
                }
                if rs.index > self.status(id).commit_index {
                    self.fail("read index beyond the commit index");
                }
            }
        }
        for ctx in &rd.dropped_reads {
            self.reads.remove(ctx);
        }
        // 4. advance
        self.raft(id).advance();
        self.after_input(id);
    }

    fn apply(&mut self, id: NodeId, e: &Entry) {
        let n = self.nodes.get_mut(&id).unwrap();
        if e.index != n.sm.applied + 1 {
            let applied = n.sm.applied;
            self.fail(&format!(
                "node {id} applies index {} after {applied}",
                e.index
            ));
        }
        let ph = payload_hash(&e.payload);
        let mut chain = fnv(n.sm.chain, &e.term.to_le_bytes());
        chain = fnv(chain, &ph.to_le_bytes());
        n.sm = StateMachine {
            applied: e.index,
            chain,
        };
        match self.applied.get(&e.index) {
            Some(&v) if v != (e.term, ph, chain) => self.fail(&format!(
                "state machine safety: node {id} applied a different entry at index {} (term {} vs {})",
                e.index, e.term, v.0
            )),
            Some(_) => {}
            None => {
                self.applied.insert(e.index, (e.term, ph, chain));
                self.stats.commits += 1;
                if matches!(e.payload, EntryPayload::Command(_)) {
                    if let Some(&first) = self.applied_commands.get(&ph) {
                        self.fail(&format!(
                            "exactly once: the command applied at index {first} is applied again at index {}",
                            e.index
                        ));
                    }
                    self.applied_commands.insert(ph, e.index);
                }
            }
        }
        if e.index > self.max_applied {
            self.max_applied = e.index;
            let mt = self.max_term();
            self.committed.push((e.index, e.term, mt));
        }
        if let EntryPayload::Config(m) = &e.payload {
            if e.index <= self.latest_config {
                return; // a lagging node applying an old configuration
            }
            self.latest_config = e.index;
            let ids: Vec<NodeId> = self.nodes.keys().copied().collect();
            for nid in ids {
                let n = self.nodes.get_mut(&nid).unwrap();
                if m.contains(nid) {
                    n.was_member = true;
                } else if n.was_member && !n.retired {
                    tracing::info!(
                        node = nid,
                        index = e.index,
                        applier = id,
                        "sim: retiring removed node"
                    );
                    n.note_term();
                    n.removed_at = e.index;
                    n.retired = true;
                    n.raft = None;
                }
            }
        }
    }

    /// Final cross-check of every durable log against the applied history.
    fn check_all_logs(&self) {
        for n in self.nodes.values() {
            for e in &n.durable.entries {
                if let Some(&(t, ph, _)) = self.applied.get(&e.index) {
                    if e.index <= n.sm.applied && (t != e.term || ph != payload_hash(&e.payload)) {
                        self.fail(&format!(
                            "node {} holds a committed index {} that differs",
                            n.id, e.index
                        ));
                    }
                }
            }
        }
    }
}

/// Runs one scenario; panics with the seed and the broken property on failure.
pub fn run_scenario(sc: Scenario) -> Stats {
    let mut sim = Sim::new(sc);
    sim.run();
    sim.stats
}

/// Runs one seed; panics with the seed and the broken property on failure.
pub fn run_seed(seed: u64, faults: RuntimeFaults) -> Stats {
    let mut sc = Scenario::from_seed(seed);
    sc.faults = faults;
    run_scenario(sc)
}

/// Runs `seeds` and returns the first failing seed with its message.
pub fn find_failure(
    seeds: impl IntoIterator<Item = u64>,
    faults: RuntimeFaults,
) -> Option<(u64, String)> {
    find_failing_scenario(seeds, |seed| {
        let mut sc = Scenario::from_seed(seed);
        sc.faults = faults;
        sc
    })
}

/// Runs the scenario `scenario` makes of each seed and returns the first
/// failing seed with its message.
pub fn find_failing_scenario(
    seeds: impl IntoIterator<Item = u64>,
    scenario: impl Fn(u64) -> Scenario,
) -> Option<(u64, String)> {
    for seed in seeds {
        let sc = scenario(seed);
        let r = std::panic::catch_unwind(move || run_scenario(sc));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            return Some((seed, msg));
        }
    }
    None
}
