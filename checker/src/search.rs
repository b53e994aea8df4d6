//! The Wing & Gong / Lowe linearization search over one window of one part.
//!
//! Required operations (those that must have happened: every op that is not
//! `info`) sit in a doubly linked list of call and return entries sorted by
//! position (real time). The candidates to linearize next are the calls
//! before the first remaining return: they were invoked before any pending
//! operation returned. Choosing one lifts its entries out of the list
//! (dancing links, so undo is O(1)); a dead end pops it back. Each node of
//! the search computes its candidates once, in the order below, into an
//! arena that grows and shrinks with the path.
//!
//! Lowe's memoization: a configuration (set of linearized operations, model
//! state) is explored once. The set is hashed incrementally, Zobrist style:
//! every operation has a random 128-bit key and the set's hash is the XOR of
//! its members', so adding or removing an operation is one XOR. Collisions
//! are negligible at 128 bits (a false hit needs ~2^64 configurations).
//!
//! Sound rules that cut the tree, each with why no verdict changes:
//!
//! - **Forced moves first.** A legal required observer (an op that leaves the
//!   state as it is) can be placed now in some valid order if any valid order
//!   exists: every op that must precede it in real time is already placed,
//!   and moving it to the front changes no other op's state. Likewise a legal
//!   required op that no other unplaced required op of its key could precede
//!   (for the register models, whatever `info` ops might come first can be
//!   moved after it or dropped: an observer commutes with them, a write
//!   overwrites them, a cas that fits now ends in the same state). When a
//!   node has such a move, it is the node's only candidate.
//! - **Earliest deadline first.** The other candidates are tried in the
//!   order of their returns (an order only; every one is tried).
//! - **Symmetry.** Two unplaced candidates with the same key and the same
//!   effect, `a` returning no later than `b`: if some valid order starts with
//!   `b`, swapping `a` and `b` in it gives a valid order starting with `a`
//!   (same states throughout; `b` takes `a`'s later place, which respects
//!   `b`'s later return). So `b` is skipped. `info` ops with the same key
//!   and effect are interchangeable outright (neither has a return), so only
//!   the earliest invoked unplaced one of each such class is a candidate.
//! - **`info` ops** (outcome unknown) may be linearized at any point after
//!   their call, or never: they have no return entry and are not required
//!   for success. One is only placed if it changes the state, and the op
//!   placed right after it must be one whose outcome it changes (otherwise
//!   moving it later or removing it gives an equivalent linearization); the
//!   pre-state of the last `info` op is part of the configuration key. For
//!   the register models the rule is stronger: the next op must be illegal
//!   without it (if that op is legal before it, it is an observer, which can
//!   go first, or a write, which makes it useless; a cas legal in two
//!   different states does not exist), so an `info` op is a candidate only
//!   when it enables an op that is illegal now. A class of `info` ops whose
//!   value no op reads ([`DEAD`](crate::history::DEAD)) can then only enable
//!   a failed cas, so at most as many of them as the window has failed cas
//!   on their key are ever candidates.
//! - **Observers first** (single registers, see
//!   [`WindowSearch::enable_register_rules`]): while the state holds a value
//!   that no unplaced op can write again, and some unplaced required op
//!   still needs that value (a read of it, or a cas from it), changing the
//!   state dooms that op, so only moves that keep the value (or the last cas
//!   from it) are candidates.
//!
//! The search is resumable: [`WindowSearch::next_end`] returns each reachable
//! end configuration in turn, so the caller can chain quiescent windows
//! depth-first and come back for another end state when a later window fails.
//!
//! Conflict-directed backjumping over keys ([`WindowSearch::enable_key_blame`],
//! for a whole map searched as one state, i.e. key splitting disabled): every
//! op touches one component, and by locality (Herlihy & Wing) a configuration
//! can be completed iff, for every set of keys K, its projection on K (the
//! placed ops of K, the values of K) can be completed with K's remaining ops
//! alone. A dead configuration therefore gets a *blame*: a set of keys K whose
//! projection is already dead. At a node whose children all died, K is the
//! union of the children's blames, plus the key of the remaining op with the
//! earliest return when needed so that every op that could come first among
//! K's ops is one of the node's candidates (and K has a required op left);
//! illegal candidates and the pruning rules need nothing (a linearization of
//! K cannot start with them, or starts equally well without them). A forced
//! move passes its child's blame up. A child placed an op of key k and died
//! with a blame without k: the parent has the same projection on the blame, so
//! it is dead too and its other candidates are skipped (the backjump: a wrong
//! choice on one key is retried at once instead of under every combination of
//! the other keys' choices). Dead projections on up to [`MAX_NOGOOD_KEYS`]
//! keys are remembered, so a configuration with the same placed ops and values
//! on those keys is cut on sight. An end configuration that the later windows
//! cannot extend takes the blame the next window computed for its start
//! ([`WindowSearch::resume_blame`]). Nodes under an `info` obligation are
//! blamed on all keys (no claim about a projection is made for them).

use std::sync::atomic::Ordering;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::budget::{grow_bytes, table_bytes};
use crate::budget::{Abort, Budget};
use crate::history::{History, OpF, Val, DEAD, INF, UNKNOWN};
use crate::model::{Space, State};
use crate::ModelKind;

const NIL: u32 = u32::MAX;
const NO_OBL: u32 = u32::MAX;
const HEAD: u32 = 0;

/// A set of tuple slots (keys) as a bit set; [`ALL`] means "the whole
/// configuration", no claim about any projection.
pub type Blame = u128;
pub const ALL: Blame = 1 << 127;
/// Most slots (keys plus the no-key slot) the key blame supports.
pub const MAX_BLAME_SLOTS: usize = 127;
/// Dead projections on at most this many keys are remembered (larger key
/// sets still drive backjumps; checking them would cost more than it saves).
pub const MAX_NOGOOD_KEYS: u32 = 3;

/// A starting or ending configuration of a window: a model state plus the
/// `info` operations (history op indices) already linearized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub state: State,
    pub consumed: Vec<u32>,
}

/// What a window search reports next.
#[derive(Debug)]
pub enum Step {
    End(Config),
    Exhausted,
    Abort(Abort),
}

/// How far the search got in a window: for counterexamples.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Most required ops ever linearized at once.
    pub depth: u32,
    /// History op indices linearized at that point, in order.
    pub prefix: Vec<u32>,
    /// The required op with the earliest return that was still unplaced.
    pub stuck: Option<u32>,
    /// Model states seen at that depth.
    pub states: Vec<State>,
}

#[inline]
fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The Zobrist key of history operation `i`.
#[inline]
pub fn zobrist(i: u32) -> u128 {
    let a = splitmix64(u64::from(i).wrapping_mul(2).wrapping_add(0x1234_5678));
    let b = splitmix64(a ^ 0xDEAD_BEEF_CAFE_F00D);
    (u128::from(a) << 64) | u128::from(b)
}

/// Memo key of a one-slot projection: the slot, the hash of its placed ops, its value.
#[inline]
fn proj_key(slot: usize, hash: u128, val: u32) -> u128 {
    let s = ((slot as u64) << 32) | u64::from(val);
    let a = splitmix64(s ^ 0x7A7A_7A7A_0000_0001);
    let b = splitmix64(a.rotate_left(23) ^ s ^ 0x0F0F);
    hash ^ ((u128::from(a) << 64) | u128::from(b))
}

#[inline]
fn config_key(hash: u128, state: State, obl: u32) -> u128 {
    let s = (u64::from(state) << 32) | u64::from(obl);
    let a = splitmix64(s ^ 0x5151_5151);
    let b = splitmix64(a.rotate_left(17) ^ s);
    hash ^ ((u128::from(a) << 64) | u128::from(b))
}

/// One move on the path: the op placed and what it replaced.
#[derive(Debug, Clone, Copy)]
struct Frame {
    op: u32,
    state: State,
    obl: u32,
}

/// A candidate move: the local op and the state it leads to.
#[derive(Debug, Clone, Copy)]
struct Cand {
    l: u32,
    ns: State,
}

/// A node on the path: its candidates (a range of the arena), the next one
/// to try, and the blame gathered from its dead children.
#[derive(Debug, Clone, Copy)]
struct Node {
    start: u32,
    end: u32,
    cursor: u32,
    acc: Blame,
    /// The blame is final (a backjump, a forced move, or set by a later window).
    fin: bool,
    /// The only candidate is a forced move.
    forced: bool,
}

/// Interchangeable `info` ops (same key, same effect), in call order: a
/// range of `class_members`.
#[derive(Debug, Clone, Copy)]
struct InfoClass {
    start: u32,
    len: u32,
    /// Index (within the class) of the first unplaced member.
    next: u32,
    /// Members from this index on are never candidates in this run.
    limit: u32,
    /// At most this many members may be placed in one run (see module docs).
    cap: u32,
}

/// What the search knows of one op of its window.
#[derive(Debug, Clone, Copy)]
struct Local {
    z: u128,
    key: Option<u32>,
    /// Its call and return entries (NIL: no return, an info op).
    call: u32,
    ret: u32,
    /// Its info class and position there, or its class of required ops
    /// with the same effect (NIL: none).
    iclass: u32,
    class_pos: u32,
    rclass: u32,
    /// Register rules: dense ids of the value it needs (a required read, or
    /// a required cas from it) and of the value it may set (NIL: none).
    need: u32,
    sets: u32,
    /// Key blame: its tuple slot.
    slot: u8,
    info: bool,
    /// Required and never changes the state (a read, a failed cas).
    observer: bool,
    put: bool,
    placed: bool,
}

/// One entry of the list.
#[derive(Debug, Clone, Copy)]
struct Entry {
    next: u32,
    prev: u32,
    op: u32,
    call: bool,
}

/// What one search holds, by size class, for the memory budget.
const BYTES_PER_OP: usize = 96;

/// A resumable search over one window.
pub struct WindowSearch {
    hops: Vec<u32>,
    /// Per local op (pending info ops first, then the window's).
    lo: Vec<Local>,
    /// The list entries: index 0 is the head, then calls and returns in
    /// real-time order; only required ops' entries are linked.
    ent: Vec<Entry>,
    /// Append-kv without resets ahead: states only grow, so the earliest
    /// pending read must see an extension of the current string.
    prefix_prune: bool,
    /// Append-kv: per key, the value of a read in a later window that the
    /// state must still be able to grow into (no put can come before it).
    future: FxHashMap<Option<u32>, Val>,
    /// Entries of every op (positions in real-time order); only required
    /// ops' entries are linked into the list.
    required: u32,
    single_key: bool,
    /// Register models: an `info` op must enable the op after it.
    strict_info: bool,
    classes: Vec<InfoClass>,
    class_members: Vec<u32>,
    /// Classes tried at every node (all of them unless the register rules index cas by value).
    free_classes: Vec<u32>,
    /// Register rules: `info` cas classes by the value they need, sorted.
    cas_index: Vec<(Val, u32)>,
    /// Required ops with the same key and effect: a range of `rmembers`,
    /// sorted by return.
    rranges: Vec<(u32, u32)>,
    rmembers: Vec<u32>,
    /// Scratch for building: (position, local op, is call) and effect groups.
    evs: Vec<(u64, u32, bool)>,
    groups: Vec<(u64, u32)>,
    failed_keys: Vec<(Option<u32>, u32)>,
    /// Per node, per key: [`WindowSearch::read_to_check`] without exceptions.
    #[allow(clippy::type_complexity)]
    rtc_cache: Vec<(Option<u32>, (Option<Val>, u32, u32))>,
    rtc_ready: bool,
    obs_rule: bool,
    /// Per local op: dense id of the value it needs (a required read, or a
    /// required cas from it), or NIL.
    /// Per local op: dense id of the value it may set, or NIL.
    /// The values some required op needs, sorted: a value's dense id is its position.
    dense: Vec<Val>,
    /// The dense id of the current state during an expansion (NIL: none).
    state_dense: u32,
    obs_init: Vec<u32>,
    writers_init: Vec<u32>,
    obs_left: Vec<u32>,
    writers_left: Vec<u32>,
    // dynamic
    stack: Vec<Frame>,
    nodes: Vec<Node>,
    arena: Vec<Cand>,
    scratch: Vec<u32>,
    illegal: Vec<u32>,
    base_lifted: Vec<u32>,
    start_consumed: Vec<u32>,
    state: State,
    obl: u32,
    hash: u128,
    remaining: u32,
    trivial_pending: bool,
    memo: FxHashSet<u128>,
    /// Key blame on (see module docs): only for tuple states whose ops each touch one slot.
    cbj: bool,
    /// Tuple slot of each local op.
    /// Per slot: Zobrist hash of the placed local ops of that slot.
    slot_hash: Vec<u128>,
    /// Blames of dead configurations whose blame is not [`ALL`].
    blames: FxHashMap<u128, Blame>,
    /// Dead one-slot projections ([`proj_key`]).
    nogoods: FxHashSet<u128>,
    /// Per slot: the key sets (of at most [`MAX_NOGOOD_KEYS`]) with a
    /// remembered dead projection that include the slot.
    masks_by_slot: Vec<Vec<Blame>>,
    /// Blame of the start configuration after the last exhaustion.
    root_blame: Blame,
    counted_bytes: u64,
    steps: u64,
    /// How many moves of the path agree with `progress.prefix`.
    prefix_agree: usize,
    /// `progress.stuck` is to be set by the next expansion.
    stuck_pending: bool,
    /// The state this run started from.
    start_state: State,
    /// Deepest progress, for counterexamples.
    pub progress: Progress,
    /// Number of times a start configuration was exhausted without an end.
    pub exhausted: u32,
}

/// The value an op may set a register to.
fn target(f: &OpF) -> Option<Val> {
    match *f {
        OpF::Write(v) | OpF::Cas(_, v) => Some(v),
        _ => None,
    }
}

impl WindowSearch {
    /// Builds the list for `pending` info ops (from earlier windows) and the
    /// window's own ops (history indices, sorted by call).
    pub fn new(history: &History, pending: &[u32], window: &[u32]) -> WindowSearch {
        let mut s = WindowSearch::blank();
        s.reset(history, pending, window);
        s
    }

    fn blank() -> WindowSearch {
        WindowSearch {
            hops: Vec::new(),
            lo: Vec::new(),
            ent: Vec::new(),
            prefix_prune: false,
            future: FxHashMap::default(),
            required: 0,
            single_key: true,
            strict_info: false,
            classes: Vec::new(),
            class_members: Vec::new(),
            free_classes: Vec::new(),
            cas_index: Vec::new(),
            rranges: Vec::new(),
            rmembers: Vec::new(),
            evs: Vec::new(),
            groups: Vec::new(),
            failed_keys: Vec::new(),
            rtc_cache: Vec::new(),
            rtc_ready: false,
            obs_rule: false,
            dense: Vec::new(),
            state_dense: NIL,
            obs_init: Vec::new(),
            writers_init: Vec::new(),
            obs_left: Vec::new(),
            writers_left: Vec::new(),
            stack: Vec::new(),
            nodes: Vec::new(),
            arena: Vec::new(),
            scratch: Vec::new(),
            illegal: Vec::new(),
            base_lifted: Vec::new(),
            start_consumed: Vec::new(),
            state: 0,
            obl: NO_OBL,
            hash: 0,
            remaining: 0,
            trivial_pending: false,
            memo: FxHashSet::default(),
            cbj: false,
            slot_hash: Vec::new(),
            blames: FxHashMap::default(),
            nogoods: FxHashSet::default(),
            masks_by_slot: Vec::new(),
            root_blame: ALL,
            counted_bytes: 0,
            steps: 0,
            prefix_agree: 0,
            stuck_pending: false,
            start_state: 0,
            progress: Progress::default(),
            exhausted: 0,
        }
    }

    /// Rebuilds this search for another window, keeping its allocations
    /// (a part has thousands of small windows). Call [`WindowSearch::release`]
    /// first.
    pub fn reset(&mut self, history: &History, pending: &[u32], window: &[u32]) {
        debug_assert_eq!(self.counted_bytes, 0, "released before reuse");
        self.hops.clear();
        self.hops.extend_from_slice(pending);
        self.hops.extend_from_slice(window);
        self.lo.clear();
        self.evs.clear();
        self.failed_keys.clear();
        let mut required = 0;
        for (l, &h) in self.hops.iter().enumerate() {
            let op = &history.ops[h as usize];
            let is_info = op.ret == INF;
            self.lo.push(Local {
                z: zobrist(h),
                key: op.key,
                call: NIL,
                ret: NIL,
                iclass: NIL,
                class_pos: NIL,
                rclass: NIL,
                need: NIL,
                sets: NIL,
                slot: 0,
                info: is_info,
                observer: !is_info
                    && match &op.f {
                        OpF::Read(_) | OpF::CasFailed(_) => true,
                        OpF::Txn(m) => m.iter().all(|m| !m.write),
                        _ => false,
                    },
                put: matches!(op.f, OpF::Write(_)),
                placed: false,
            });
            self.evs.push((op.call, l as u32, true));
            if !is_info {
                required += 1;
                self.evs.push((op.ret, l as u32, false));
            }
            if !is_info && matches!(op.f, OpF::CasFailed(_)) {
                // Failed cas per key: how many DEAD info ops a run can use.
                match self.failed_keys.iter_mut().find(|(k, _)| *k == op.key) {
                    Some((_, c)) => *c += 1,
                    None => self.failed_keys.push((op.key, 1)),
                }
            }
        }
        self.required = required;
        self.evs.sort_unstable_by_key(|e| (e.0, !e.2));
        let m = self.evs.len() + 1;
        self.ent.clear();
        self.ent.resize(
            m,
            Entry {
                next: NIL,
                prev: NIL,
                op: NIL,
                call: false,
            },
        );
        let mut last = HEAD;
        for (i, &(_, l, is_call)) in self.evs.iter().enumerate() {
            let e = (i + 1) as u32;
            self.ent[e as usize].op = l;
            self.ent[e as usize].call = is_call;
            if is_call {
                self.lo[l as usize].call = e;
            } else {
                self.lo[l as usize].ret = e;
            }
            if !self.lo[l as usize].info {
                self.ent[e as usize].prev = last;
                self.ent[last as usize].next = e;
                last = e;
            }
        }
        self.single_key = self.lo.windows(2).all(|w| w[0].key == w[1].key);
        self.strict_info = matches!(
            history.model,
            ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv
        );
        self.prefix_prune = history.model == ModelKind::AppendKv;
        self.build_classes(history);
        // Dynamic state.
        self.future.clear();
        self.obs_rule = false;
        self.dense.clear();
        self.cas_index.clear();
        self.stack.clear();
        self.nodes.clear();
        self.arena.clear();
        self.base_lifted.clear();
        self.start_consumed.clear();
        self.state = 0;
        self.obl = NO_OBL;
        self.hash = 0;
        self.remaining = required;
        self.trivial_pending = false;
        // Clearing costs the table's size: a big one goes, a small one stays.
        if self.memo.capacity() > 1 << 10 {
            self.memo = FxHashSet::default();
        } else {
            self.memo.clear();
        }
        self.cbj = false;
        self.slot_hash.clear();
        self.blames = FxHashMap::default();
        self.nogoods = FxHashSet::default();
        self.masks_by_slot.clear();
        self.root_blame = ALL;
        self.steps = 0;
        self.prefix_agree = 0;
        self.stuck_pending = false;
        self.progress.depth = 0;
        self.progress.prefix.clear();
        self.progress.stuck = None;
        self.progress.states.clear();
        self.exhausted = 0;
    }

    /// Groups the `info` ops into classes of interchangeable ops and the
    /// required ops with the same key and effect (module docs: symmetry).
    fn build_classes(&mut self, history: &History) {
        use std::hash::{Hash, Hasher};
        let n = self.hops.len();
        self.groups.clear();
        for l in 0..n {
            // Observers are forced moves whenever they fit: no symmetry to use.
            if self.lo[l].observer {
                continue;
            }
            let op = &history.ops[self.hops[l] as usize];
            let mut hasher = rustc_hash::FxHasher::default();
            (self.lo[l].info, op.key, &op.f).hash(&mut hasher);
            self.groups.push((hasher.finish(), l as u32));
        }
        self.groups.sort_unstable();
        self.classes.clear();
        self.class_members.clear();
        self.rranges.clear();
        self.rmembers.clear();
        let same = |a: u32, b: u32| {
            let (x, y) = (
                &history.ops[self.hops[a as usize] as usize],
                &history.ops[self.hops[b as usize] as usize],
            );
            x.key == y.key && x.f == y.f
        };
        let mut i = 0;
        while i < self.groups.len() {
            let (h, first) = self.groups[i];
            let mut j = i + 1;
            while j < self.groups.len()
                && self.groups[j].0 == h
                && self.lo[self.groups[j].1 as usize].info == self.lo[first as usize].info
                && same(first, self.groups[j].1)
            {
                j += 1;
            }
            let info = self.lo[first as usize].info;
            if info {
                let start = self.class_members.len();
                self.class_members
                    .extend(self.groups[i..j].iter().map(|g| g.1));
                let lo = &self.lo;
                self.class_members[start..].sort_unstable_by_key(|&l| lo[l as usize].call);
                let op = &history.ops[self.hops[first as usize] as usize];
                let cap = if self.strict_info && target(&op.f) == Some(DEAD) {
                    self.failed_keys
                        .iter()
                        .find(|(k, _)| *k == op.key)
                        .map_or(0, |(_, c)| *c)
                } else {
                    u32::MAX
                };
                let c = self.classes.len() as u32;
                for (pos, &l) in self.class_members[start..].iter().enumerate() {
                    self.lo[l as usize].iclass = c;
                    self.lo[l as usize].class_pos = pos as u32;
                }
                self.classes.push(InfoClass {
                    start: start as u32,
                    len: (j - i) as u32,
                    next: 0,
                    limit: (j - i) as u32,
                    cap,
                });
            } else if j - i > 1 {
                let start = self.rmembers.len();
                self.rmembers.extend(self.groups[i..j].iter().map(|g| g.1));
                let lo = &self.lo;
                self.rmembers[start..].sort_unstable_by_key(|&l| lo[l as usize].ret);
                let c = self.rranges.len() as u32;
                for &l in &self.rmembers[start..] {
                    self.lo[l as usize].rclass = c;
                }
                self.rranges
                    .push((start as u32, self.rmembers.len() as u32));
            }
            i = j;
        }
        self.free_classes.clear();
        self.free_classes.extend(0..self.classes.len() as u32);
    }

    /// The member at index `i` of info class `c`.
    #[inline]
    fn member(&self, c: &InfoClass, i: u32) -> u32 {
        self.class_members[(c.start + i) as usize]
    }

    /// Turns on the rules of a single register (module docs: observers
    /// first; `info` cas looked up by the value they need). Sound only for
    /// a register part searched with the value itself as the state.
    pub fn enable_register_rules(&mut self, history: &History) {
        if !self.strict_info || !self.single_key {
            return;
        }
        let n = self.hops.len();
        // Dense ids: positions in the sorted list of needed values.
        let mut dense = std::mem::take(&mut self.dense);
        dense.clear();
        let needs = |f: &OpF| match *f {
            OpF::Read(v) if v != UNKNOWN => Some(v),
            OpF::Cas(a, _) => Some(a),
            _ => None,
        };
        for l in 0..n {
            if !self.lo[l].info {
                dense.extend(needs(&history.ops[self.hops[l] as usize].f));
            }
        }
        dense.sort_unstable();
        dense.dedup();
        let mut obs = std::mem::take(&mut self.obs_init);
        obs.clear();
        obs.resize(dense.len(), 0);
        let mut writers = std::mem::take(&mut self.writers_init);
        writers.clear();
        writers.resize(dense.len(), 0);
        for l in 0..n {
            let f = &history.ops[self.hops[l] as usize].f;
            if !self.lo[l].info {
                if let Some(d) = needs(f).and_then(|v| dense.binary_search(&v).ok()) {
                    self.lo[l].need = d as u32;
                    obs[d] += 1;
                }
            }
            if let Some(d) = target(f).and_then(|v| dense.binary_search(&v).ok()) {
                self.lo[l].sets = d as u32;
                writers[d] += 1;
            }
        }
        self.dense = dense;
        self.obs_left.clone_from(&obs);
        self.obs_init = obs;
        self.writers_left.clone_from(&writers);
        self.writers_init = writers;
        self.obs_rule = true;
        // Info cas only fit the state they expect: look them up by it.
        self.free_classes.clear();
        for c in 0..self.classes.len() as u32 {
            let l = self.member(&self.classes[c as usize], 0);
            match history.ops[self.hops[l as usize] as usize].f {
                OpF::Cas(a, _) => self.cas_index.push((a, c)),
                _ => self.free_classes.push(c),
            }
        }
        self.cas_index.sort_unstable();
    }

    /// Turns on conflict-directed backjumping over keys (module docs). Sound
    /// only when the model state is a tuple with one slot per key (plus the
    /// no-key slot, `slots` in all) and every op reads or writes its own
    /// key's slot alone: the per-key models searched with splitting disabled.
    /// Does nothing beyond [`MAX_BLAME_SLOTS`] slots.
    pub fn enable_key_blame(&mut self, history: &History, slots: usize) {
        if slots > MAX_BLAME_SLOTS || slots == 0 {
            return;
        }
        for (l, &h) in self.hops.iter().enumerate() {
            let k = history.ops[h as usize].key;
            self.lo[l].slot = k.map_or(slots - 1, |k| (k as usize).min(slots - 1)) as u8;
        }
        self.slot_hash = vec![0; slots];
        self.masks_by_slot = vec![Vec::new(); slots];
        self.cbj = true;
    }

    /// After [`Step::Exhausted`]: the keys whose projection of the start
    /// configuration is dead ([`ALL`] when no projection is claimed).
    pub fn exhausted_blame(&self) -> Blame {
        self.root_blame
    }

    /// Before resuming after a [`Step::End`] whose configuration the later
    /// windows could not extend: the keys to blame for that (from
    /// [`WindowSearch::exhausted_blame`] of the next window), so this window
    /// backjumps over choices on other keys.
    pub fn resume_blame(&mut self, b: Blame) {
        if self.cbj {
            if let Some(top) = self.nodes.last_mut() {
                top.acc = b;
                top.fin = true;
            }
        }
    }

    /// Sets the later-window reads each key's state must grow into (append-kv).
    pub fn set_future(&mut self, future: FxHashMap<Option<u32>, Val>) {
        self.future = future;
    }

    /// Required (non-info) operations of this window, as history indices.
    pub fn required_ops(&self) -> Vec<u32> {
        self.hops
            .iter()
            .zip(&self.lo)
            .filter(|(_, o)| !o.info)
            .map(|(&h, _)| h)
            .collect()
    }

    #[inline]
    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.ent[e as usize].prev, self.ent[e as usize].next);
        self.ent[p as usize].next = n;
        if n != NIL {
            self.ent[n as usize].prev = p;
        }
    }

    #[inline]
    fn relink(&mut self, e: u32) {
        let (p, n) = (self.ent[e as usize].prev, self.ent[e as usize].next);
        self.ent[p as usize].next = e;
        if n != NIL {
            self.ent[n as usize].prev = e;
        }
    }

    /// Marks local op `l` placed: out of the list, counters and class updated.
    fn place(&mut self, l: u32) {
        let u = l as usize;
        self.lo[u].placed = true;
        if self.lo[u].info {
            let ci = self.lo[u].iclass as usize;
            let mut c = self.classes[ci];
            while c.next < c.len && self.lo[self.member(&c, c.next) as usize].placed {
                c.next += 1;
            }
            self.classes[ci] = c;
        } else {
            self.unlink(self.lo[u].call);
            self.unlink(self.lo[u].ret);
        }
        if self.obs_rule {
            if self.lo[u].need != NIL {
                self.obs_left[self.lo[u].need as usize] -= 1;
            }
            if self.lo[u].sets != NIL {
                self.writers_left[self.lo[u].sets as usize] -= 1;
            }
        }
    }

    /// Undoes [`WindowSearch::place`] (in reverse order of placing).
    fn unplace(&mut self, l: u32) {
        let u = l as usize;
        self.lo[u].placed = false;
        if self.lo[u].info {
            let c = &mut self.classes[self.lo[u].iclass as usize];
            c.next = c.next.min(self.lo[u].class_pos);
        } else {
            self.relink(self.lo[u].ret);
            self.relink(self.lo[u].call);
        }
        if self.obs_rule {
            if self.lo[u].need != NIL {
                self.obs_left[self.lo[u].need as usize] += 1;
            }
            if self.lo[u].sets != NIL {
                self.writers_left[self.lo[u].sets as usize] += 1;
            }
        }
    }

    /// Starts (or restarts, after exhaustion) from a configuration.
    pub fn start(&mut self, history: &History, space: &mut Space<'_>, cfg: &Config) {
        debug_assert!(self.stack.is_empty());
        while let Some(l) = self.base_lifted.pop() {
            self.unplace(l);
        }
        self.nodes.clear();
        self.arena.clear();
        let mut hash = 0u128;
        self.slot_hash.iter_mut().for_each(|x| *x = 0);
        for &h in &cfg.consumed {
            hash ^= zobrist(h);
        }
        if !cfg.consumed.is_empty() {
            // Consumed ops are info ops invoked earlier: only pending ones
            // can be among this search's ops.
            for l in 0..self.hops.len() as u32 {
                let h = self.hops[l as usize];
                if self.lo[l as usize].info && cfg.consumed.binary_search(&h).is_ok() {
                    self.place(l);
                    self.base_lifted.push(l);
                    if self.cbj {
                        self.slot_hash[self.lo[l as usize].slot as usize] ^= self.lo[l as usize].z;
                    }
                }
            }
        }
        for c in &mut self.classes {
            c.limit = c.len.min(c.next.saturating_add(c.cap));
        }
        self.start_consumed.clone_from(&cfg.consumed);
        self.start_state = cfg.state;
        self.state = cfg.state;
        self.obl = NO_OBL;
        self.hash = hash;
        self.remaining = self.required;
        self.trivial_pending = self.required == 0;
        if self.progress.prefix.is_empty() && self.progress.states.len() < 8 {
            if !self.progress.states.contains(&cfg.state) {
                self.progress.states.push(cfg.state);
            }
            if self.progress.stuck.is_none() {
                self.progress.stuck = self.first_pending_return();
            }
        }
        if self.trivial_pending {
            let at = self.arena.len() as u32;
            self.nodes.push(Node {
                start: at,
                end: at,
                cursor: at,
                acc: ALL,
                fin: true,
                forced: false,
            });
        } else {
            self.expand(history, space);
        }
    }

    fn first_pending_return(&self) -> Option<u32> {
        let mut e = self.ent[HEAD as usize].next;
        while e != NIL {
            if !self.ent[e as usize].call {
                return Some(self.hops[self.ent[e as usize].op as usize]);
            }
            e = self.ent[e as usize].next;
        }
        None
    }

    /// The range of `cas_index` of the classes that expect value `v`.
    fn cas_range(&self, v: Val) -> std::ops::Range<usize> {
        let a = self.cas_index.partition_point(|x| x.0 < v);
        let b = self.cas_index.partition_point(|x| x.0 <= v);
        a..b
    }

    /// The first unplaced member of an info class that may still be placed
    /// and was invoked before `cutoff` (an entry; NIL: no return is left).
    fn class_head(&self, c: u32, cutoff: u32) -> Option<u32> {
        let cl = &self.classes[c as usize];
        if cl.next >= cl.limit {
            return None;
        }
        let l = self.member(cl, cl.next);
        (cutoff == NIL || self.lo[l as usize].call < cutoff).then_some(l)
    }

    /// True if no other unplaced op of `l`'s key could precede it: none was
    /// invoked before `l` returned (for the register models, required ops
    /// only; see the module docs).
    fn alone_on_key(&self, l: u32) -> bool {
        let stop = self.lo[l as usize].ret;
        let c = self.lo[l as usize].call;
        let mut alone = if self.single_key {
            self.ent[c as usize].prev == HEAD && self.ent[c as usize].next == stop
        } else {
            let key = self.lo[l as usize].key;
            let mut e = self.ent[HEAD as usize].next;
            let mut ok = true;
            while e != NIL && e != stop {
                let o = self.ent[e as usize].op;
                if o != l && self.ent[e as usize].call && self.lo[o as usize].key == key {
                    ok = false;
                    break;
                }
                e = self.ent[e as usize].next;
            }
            ok
        };
        if alone && !self.strict_info {
            let key = self.lo[l as usize].key;
            alone = !(0..self.classes.len() as u32).any(|c| {
                self.class_head(c, stop)
                    .is_some_and(|o| self.lo[o as usize].key == key)
            });
        }
        alone
    }

    /// The value the state of `key` must still be able to grow into: the
    /// unplaced read of that key with the earliest return (other than
    /// `skip`), else the key's first read in a later window; `None` when an
    /// unplaced put on the key (other than `skip`) that could come first
    /// explains it. Also returns the read and the put it relied on (NIL if
    /// none), so that a node can reuse the answer for candidates that are
    /// neither.
    fn read_to_check(
        &self,
        history: &History,
        space: &mut Space<'_>,
        key: Option<u32>,
        skip: u32,
    ) -> (Option<Val>, u32, u32) {
        let mut e = self.ent[HEAD as usize].next;
        let mut r = None;
        while e != NIL {
            let o = self.ent[e as usize].op;
            if o != skip
                && !self.ent[e as usize].call
                && self.lo[o as usize].observer
                && self.lo[o as usize].key == key
            {
                r = Some(e);
                break;
            }
            e = self.ent[e as usize].next;
        }
        let (rv, stop, reader) = match r {
            Some(re) => {
                let o = self.ent[re as usize].op;
                match history.ops[self.hops[o as usize] as usize].f {
                    OpF::Read(v) => (v, re, o),
                    _ => return (None, o, NIL),
                }
            }
            None => match self.future.get(&key) {
                Some(&v) => (v, NIL, NIL),
                None => return (None, NIL, NIL),
            },
        };
        let explains = |o: u32, space: &mut Space<'_>| {
            let p = &history.ops[self.hops[o as usize] as usize];
            match (&p.f, o != skip && self.lo[o as usize].put && p.key == key) {
                (OpF::Write(pv), true) => stop == NIL || space.value_is_prefix(*pv, rv),
                _ => false,
            }
        };
        let mut e = self.ent[HEAD as usize].next;
        while e != stop && e != NIL {
            let o = self.ent[e as usize].op;
            if self.ent[e as usize].call && explains(o, space) {
                return (None, reader, o);
            }
            e = self.ent[e as usize].next;
        }
        for c in 0..self.classes.len() as u32 {
            if let Some(o) = self.class_head(c, stop) {
                if explains(o, space) {
                    return (None, reader, o);
                }
            }
        }
        (Some(rv), reader, NIL)
    }

    /// [`WindowSearch::read_to_check`] without exceptions for every key
    /// with a pending read, in two passes over the list (a node asks for
    /// many keys when the whole map is one state).
    fn read_to_check_all(&mut self, history: &History, space: &mut Space<'_>) {
        self.rtc_ready = true;
        self.rtc_cache.clear();
        // The first return of an observer per key.
        let mut e = self.ent[HEAD as usize].next;
        while e != NIL {
            let x = self.ent[e as usize];
            let o = &self.lo[x.op as usize];
            if !x.call && o.observer && !self.rtc_cache.iter().any(|c| c.0 == o.key) {
                let v = match history.ops[self.hops[x.op as usize] as usize].f {
                    OpF::Read(v) => Some(v),
                    _ => None,
                };
                // (value, the read's return entry for now, no put yet)
                self.rtc_cache.push((o.key, (v, e, NIL)));
            }
            e = x.next;
        }
        // Keys with no pending read: the first read of a later window.
        for (&k, &v) in &self.future {
            if !self.rtc_cache.iter().any(|c| c.0 == k) {
                self.rtc_cache.push((k, (Some(v), NIL, NIL)));
            }
        }
        // A put that could come first explains the read.
        let explain = |o: u32, at: u32, this: &mut Self, space: &mut Space<'_>| {
            let p = &history.ops[this.hops[o as usize] as usize];
            let OpF::Write(pv) = p.f else { return };
            if let Some(c) = this.rtc_cache.iter_mut().find(|c| c.0 == p.key) {
                let (v, stop, put) = c.1;
                if let (Some(rv), NIL) = (v, put) {
                    if stop == NIL || (at < stop && space.value_is_prefix(pv, rv)) {
                        c.1 = (None, stop, o);
                    }
                }
            }
        };
        let mut e = self.ent[HEAD as usize].next;
        while e != NIL {
            let x = self.ent[e as usize];
            if x.call && self.lo[x.op as usize].put {
                explain(x.op, e, self, space);
            }
            e = x.next;
        }
        for c in 0..self.classes.len() as u32 {
            if let Some(o) = self.class_head(c, NIL) {
                if self.lo[o as usize].put {
                    let at = self.lo[o as usize].call;
                    explain(o, at, self, space);
                }
            }
        }
        // Report the read op, not its entry.
        for c in &mut self.rtc_cache {
            let (v, stop, put) = c.1;
            let reader = if stop == NIL {
                NIL
            } else {
                self.ent[stop as usize].op
            };
            c.1 = (v, reader, put);
        }
    }

    /// After an `info` op: may `l` (leading to `ns`) come next? (module docs)
    #[inline]
    fn obliged(&self, history: &History, space: &mut Space<'_>, l: u32, ns: State) -> bool {
        if self.obl == NO_OBL {
            return true;
        }
        let h = self.hops[l as usize];
        let op = &history.ops[h as usize];
        let before = space.step(self.obl, h, &op.f, op.key);
        if self.strict_info {
            before.is_none()
        } else {
            before != Some(ns)
        }
    }

    /// Observers first (module docs): may the state change to `ns` by `l`?
    #[inline]
    fn keeps_observers(&self, l: u32, ns: State) -> bool {
        if !self.obs_rule || ns == self.state || self.state_dense == NIL {
            return true;
        }
        let d = self.state_dense as usize;
        self.writers_left[d] > 0
            || self.obs_left[d] == 0
            || (self.obs_left[d] == 1 && self.lo[l as usize].need == d as u32)
    }

    /// Symmetry (module docs): is an unplaced candidate with the same key and
    /// effect as `l`, and an earlier return, there to try instead?
    fn dominated(&self, l: u32, cutoff: u32) -> bool {
        let c = self.lo[l as usize].rclass;
        if c == NIL || cutoff == NIL {
            return false;
        }
        let (a, b) = self.rranges[c as usize];
        let members = &self.rmembers[a as usize..b as usize];
        let from = members.partition_point(|&m| self.lo[m as usize].ret < cutoff);
        for &m in &members[from..] {
            if m == l {
                return false;
            }
            if !self.lo[m as usize].placed && self.lo[m as usize].call < cutoff {
                return true;
            }
        }
        false
    }

    /// Is the move reachable under append-kv's prefix pruning?
    #[inline]
    fn reachable(&mut self, history: &History, space: &mut Space<'_>, l: u32, ns: State) -> bool {
        if !self.prefix_prune {
            return true;
        }
        let key = self.lo[l as usize].key;
        // The answer without exceptions holds for every candidate of this
        // node but the read and the put it relied on.
        if !self.rtc_ready {
            self.read_to_check_all(history, space);
        }
        let cached = self.rtc_cache.iter().find(|c| c.0 == key).map(|c| c.1);
        let (v, reader, put) = match cached {
            Some(c) => c,
            None => (self.future.get(&key).copied(), NIL, NIL),
        };
        let v = if l == reader || l == put {
            self.read_to_check(history, space, key, l).0
        } else {
            v
        };
        match v {
            Some(v) => space.may_extend_to(ns, v, key),
            None => true,
        }
    }

    /// Computes the candidates of the current configuration and pushes its node.
    fn expand(&mut self, history: &History, space: &mut Space<'_>) {
        let start = self.arena.len() as u32;
        self.rtc_ready = false;
        self.state_dense = if self.obs_rule {
            self.dense
                .binary_search(&self.state)
                .map_or(NIL, |d| d as u32)
        } else {
            NIL
        };
        self.scratch.clear();
        let mut e = self.ent[HEAD as usize].next;
        while e != NIL && self.ent[e as usize].call {
            self.scratch.push(self.ent[e as usize].op);
            e = self.ent[e as usize].next;
        }
        let cutoff = e;
        if self.stuck_pending {
            self.stuck_pending = false;
            self.progress.stuck =
                (cutoff != NIL).then(|| self.hops[self.ent[cutoff as usize].op as usize]);
        }
        self.illegal.clear();
        let mut forced = None;
        for i in 0..self.scratch.len() {
            let l = self.scratch[i];
            let h = self.hops[l as usize];
            let op = &history.ops[h as usize];
            let Some(ns) = space.step(self.state, h, &op.f, op.key) else {
                self.illegal.push(l);
                continue;
            };
            if !self.obliged(history, space, l, ns)
                || !self.keeps_observers(l, ns)
                || !self.reachable(history, space, l, ns)
            {
                continue;
            }
            if self.obl == NO_OBL
                && ((ns == self.state && self.lo[l as usize].observer) || self.alone_on_key(l))
            {
                forced = Some(Cand { l, ns });
                break;
            }
            if !self.dominated(l, cutoff) {
                self.arena.push(Cand { l, ns });
            }
        }
        if let Some(c) = forced {
            self.arena.truncate(start as usize);
            self.arena.push(c);
        } else {
            let lo = &self.lo;
            self.arena[start as usize..].sort_unstable_by_key(|c| lo[c.l as usize].ret);
            self.info_candidates(history, space, cutoff);
        }
        self.nodes.push(Node {
            start,
            end: self.arena.len() as u32,
            cursor: start,
            acc: 0,
            fin: false,
            forced: forced.is_some(),
        });
    }

    /// Appends the `info` candidates of the current configuration.
    fn info_candidates(&mut self, history: &History, space: &mut Space<'_>, cutoff: u32) {
        let first = self.arena.len();
        let by_value = self.cas_range(self.state);
        let free = self.free_classes.len();
        for i in 0..free + by_value.len() {
            let c = if i < free {
                self.free_classes[i]
            } else {
                self.cas_index[by_value.start + i - free].1
            };
            let Some(l) = self.class_head(c, cutoff) else {
                continue;
            };
            let h = self.hops[l as usize];
            let op = &history.ops[h as usize];
            let Some(ns) = space.step(self.state, h, &op.f, op.key) else {
                continue;
            };
            if ns != self.state
                && self.obliged(history, space, l, ns)
                && self.keeps_observers(l, ns)
                && self.reachable(history, space, l, ns)
            {
                self.arena.push(Cand { l, ns });
            }
        }
        if !self.strict_info {
            return;
        }
        // Register models: keep an info op only if some op illegal now
        // becomes legal after it (module docs).
        let mut keep = first;
        for i in first..self.arena.len() {
            let w = self.arena[i];
            if self.enables(history, space, w, cutoff) {
                self.arena[keep] = w;
                keep += 1;
            }
        }
        self.arena.truncate(keep);
    }

    /// Does some candidate illegal now become legal after `w`?
    fn enables(&self, history: &History, space: &mut Space<'_>, w: Cand, cutoff: u32) -> bool {
        let legal_after = |o: u32, space: &mut Space<'_>| {
            let h = self.hops[o as usize];
            let op = &history.ops[h as usize];
            space.step(w.ns, h, &op.f, op.key).is_some()
        };
        if self.illegal.iter().any(|&o| legal_after(o, space)) {
            return true;
        }
        // An info op illegal now (another class) that fits after `w`.
        let fits = |c: u32, space: &mut Space<'_>| {
            self.class_head(c, cutoff).is_some_and(|o| {
                if o == w.l {
                    return false;
                }
                let h = self.hops[o as usize];
                let op = &history.ops[h as usize];
                space.step(self.state, h, &op.f, op.key).is_none() && legal_after(o, space)
            })
        };
        if self.obs_rule {
            self.cas_index[self.cas_range(w.ns)]
                .iter()
                .any(|x| fits(x.1, space))
        } else {
            self.free_classes.iter().any(|&c| fits(c, space))
        }
    }

    /// The blame of the node on top of the path, which just died (module docs).
    fn node_blame(&self) -> Blame {
        let Some(node) = self.nodes.last() else {
            return ALL;
        };
        let mut b = node.acc;
        if node.fin || b & ALL != 0 {
            return b;
        }
        if self.obl != NO_OBL {
            return ALL;
        }
        // The earliest remaining return R. K = b is enough if, scanning on
        // from R, a return of K comes before any call of K: then K has a
        // required op left, and every op of K that could come first among
        // K's ops was invoked before R, i.e. is a candidate here.
        let mut r = self.ent[HEAD as usize].next;
        while r != NIL && self.ent[r as usize].call {
            r = self.ent[r as usize].next;
        }
        if r == NIL {
            return ALL;
        }
        let rbit = 1u128 << self.lo[self.ent[r as usize].op as usize].slot;
        if b & rbit != 0 {
            return b;
        }
        let mut e = self.ent[r as usize].next;
        while e != NIL {
            let bit = 1u128 << self.lo[self.ent[e as usize].op as usize].slot;
            if b & bit != 0 {
                if self.ent[e as usize].call {
                    break;
                }
                // An info op of K invoked between R and this return could
                // come first among K's ops too.
                let late_info = (0..self.classes.len() as u32).any(|c| {
                    self.class_head(c, e).is_some_and(|o| {
                        self.lo[o as usize].call > r && b & (1u128 << self.lo[o as usize].slot) != 0
                    })
                });
                if late_info {
                    break;
                }
                return b;
            }
            e = self.ent[e as usize].next;
        }
        b |= rbit;
        b
    }

    /// Takes in the blame of a dead child reached by placing local op `l`.
    /// Returns true when the parent is dead too (a backjump, or a forced move).
    fn absorb(&mut self, child: Blame, l: u32) -> bool {
        let bit = 1u128 << self.lo[l as usize].slot;
        let Some(top) = self.nodes.last_mut() else {
            return true;
        };
        if (child & ALL == 0 && child & bit == 0) || top.forced {
            // Same projection on `child` as the child (or the only move): dead as well.
            top.acc = child;
            top.fin = true;
            return true;
        }
        top.acc |= child;
        false
    }

    /// Records the blame of the node on top of the path (before it is popped).
    fn record(&mut self, space: &Space<'_>, b: Blame) {
        if b & ALL != 0 {
            return;
        }
        self.blames
            .insert(config_key(self.hash, self.state, self.obl), b);
        if b.count_ones() <= MAX_NOGOOD_KEYS {
            let k = self.projection_key(space, self.state, b, usize::MAX, 0);
            self.nogoods.insert(k);
            let s0 = b.trailing_zeros() as usize;
            if !self.masks_by_slot[s0].contains(&b) {
                let mut m = b;
                while m != 0 {
                    let s = m.trailing_zeros() as usize;
                    m &= m - 1;
                    self.masks_by_slot[s].push(b);
                }
            }
        }
    }

    /// Memo key of the projection of `state` (with `flip` XORed into the
    /// placed-ops hash of slot `fslot`) on the key set `mask`.
    fn projection_key(
        &self,
        space: &Space<'_>,
        state: State,
        mask: Blame,
        fslot: usize,
        flip: u128,
    ) -> u128 {
        let mut k = 0u128;
        let mut m = mask;
        while m != 0 {
            let s = m.trailing_zeros() as usize;
            m &= m - 1;
            let h = self.slot_hash[s] ^ if s == fslot { flip } else { 0 };
            k ^= proj_key(s, h, space.component(state, s));
        }
        k
    }

    fn end_config(&self) -> Config {
        let mut consumed = self.start_consumed.clone();
        for f in &self.stack {
            if self.lo[f.op as usize].info {
                consumed.push(self.hops[f.op as usize]);
            }
        }
        consumed.sort_unstable();
        Config {
            state: self.state,
            consumed,
        }
    }

    fn note_progress(&mut self) {
        let depth = self.required - self.remaining;
        if depth > self.progress.depth {
            self.progress.depth = depth;
            // The path shares its first `prefix_agree` moves with the
            // recorded prefix: copy only the rest (a deepening search would
            // otherwise copy its whole path at every step).
            let keep = self.prefix_agree.min(self.progress.prefix.len());
            self.progress.prefix.truncate(keep);
            let hops = &self.hops;
            self.progress
                .prefix
                .extend(self.stack[keep..].iter().map(|f| hops[f.op as usize]));
            self.prefix_agree = self.stack.len();
            self.progress.states.clear();
            self.progress.states.push(self.state);
            // The earliest remaining return: the next expansion finds it.
            self.stuck_pending = true;
        } else if depth == self.progress.depth
            && self.progress.states.len() < 8
            && !self.progress.states.contains(&self.state)
        {
            self.progress.states.push(self.state);
        }
    }

    /// The configuration this run started from.
    pub fn start_config(&self) -> Config {
        Config {
            state: self.start_state,
            consumed: self.start_consumed.clone(),
        }
    }

    /// After an end: true when resuming could only report exhaustion (no
    /// node on the path has a candidate left to try).
    pub fn finished(&self) -> bool {
        self.nodes.iter().all(|n| n.cursor == n.end)
    }

    /// Steps taken so far (diagnostics).
    pub fn steps_taken(&self) -> u64 {
        self.steps
    }

    /// Configurations memoized so far (diagnostics).
    pub fn memo_len(&self) -> usize {
        self.memo.len()
    }

    /// Memory this search holds (tables, lists, path), in bytes.
    pub fn bytes(&self) -> u64 {
        let classes = self.classes.capacity() * std::mem::size_of::<InfoClass>()
            + self.class_members.capacity() * 4
            + self.cas_index.capacity() * 8;
        let rclasses = self.rranges.capacity() * 8 + self.rmembers.capacity() * 4;
        (table_bytes(self.memo.capacity(), 16)
            + table_bytes(self.blames.capacity(), 32)
            + table_bytes(self.nogoods.capacity(), 16)
            + self.evs.capacity() * 16
            + self.groups.capacity() * 16
            + self.dense.capacity() * 4
            + self.nodes.capacity() * std::mem::size_of::<Node>()
            + self.arena.capacity() * std::mem::size_of::<Cand>()
            + self.stack.capacity() * std::mem::size_of::<Frame>()
            + self.ent.capacity() * std::mem::size_of::<Entry>()
            + self.lo.capacity() * std::mem::size_of::<Local>()
            + self.hops.len() * BYTES_PER_OP
            + classes
            + rclasses
            + self.progress.prefix.capacity() * 4) as u64
    }

    /// Charges what this search holds now to the shared budget; fails when
    /// the budget is spent, or the time is up, or another part stopped us.
    fn check_budget(&mut self, space: &Space<'_>, budget: &Budget<'_>) -> Result<(), Abort> {
        if budget.stop.load(Ordering::Relaxed) {
            return Err(Abort::Stopped);
        }
        if std::time::Instant::now() >= budget.deadline {
            return Err(Abort::Time);
        }
        let now = self.bytes();
        let space_fits = space.charge(budget);
        if now > self.counted_bytes {
            budget
                .used
                .fetch_add(now - self.counted_bytes, Ordering::Relaxed);
        } else {
            budget
                .used
                .fetch_sub(self.counted_bytes - now, Ordering::Relaxed);
        }
        self.counted_bytes = now;
        if !space_fits || budget.used.load(Ordering::Relaxed) > budget.memory_limit {
            return Err(Abort::Memory);
        }
        Ok(())
    }

    /// Do the tables that may grow in the next steps (the memo, the blame
    /// tables, the space's caches) fit the budget while they grow? Checked
    /// before they grow, so that the old and the new table, held together
    /// while one grows, both fit.
    fn room_to_grow(&self, space: &Space<'_>, budget: &Budget<'_>) -> bool {
        let need = grow_bytes(self.memo.len(), self.memo.capacity(), 16)
            + grow_bytes(self.blames.len(), self.blames.capacity(), 32)
            + grow_bytes(self.nogoods.len(), self.nogoods.capacity(), 16);
        let need = need as u64 + space.headroom();
        need == 0 || budget.used.load(Ordering::Relaxed) + need <= budget.memory_limit
    }

    /// Gives back the bytes this search counted against the budget.
    pub fn release(&mut self, budget: &Budget<'_>) {
        budget.used.fetch_sub(self.counted_bytes, Ordering::Relaxed);
        self.counted_bytes = 0;
        self.memo = FxHashSet::default();
        self.blames = FxHashMap::default();
        self.nogoods = FxHashSet::default();
        self.masks_by_slot.iter_mut().for_each(Vec::clear);
        self.arena = Vec::new();
        self.nodes = Vec::new();
        self.stack = Vec::new();
    }

    /// Pops the node on top of the path (dead), undoing the move into it.
    /// Returns the blame when the root itself died.
    fn backtrack(&mut self, space: &Space<'_>) -> Option<Blame> {
        let blame = if self.cbj {
            let b = self.node_blame();
            self.record(space, b);
            b
        } else {
            ALL
        };
        let node = self.nodes.pop().expect("a node on the path");
        self.arena.truncate(node.start as usize);
        let Some(fr) = self.stack.pop() else {
            return Some(blame);
        };
        self.prefix_agree = self.prefix_agree.min(self.stack.len());
        self.unplace(fr.op);
        self.hash ^= self.lo[fr.op as usize].z;
        self.state = fr.state;
        self.obl = fr.obl;
        if !self.lo[fr.op as usize].info {
            self.remaining += 1;
        }
        let parent = self.nodes.len() - 1;
        if self.cbj {
            self.slot_hash[self.lo[fr.op as usize].slot as usize] ^= self.lo[fr.op as usize].z;
            if self.absorb(blame, fr.op) {
                self.nodes[parent].cursor = self.nodes[parent].end;
            }
        } else if self.nodes[parent].forced {
            self.nodes[parent].cursor = self.nodes[parent].end;
        }
        None
    }

    /// Continues the search to the next reachable end configuration.
    pub fn next_end(
        &mut self,
        history: &History,
        space: &mut Space<'_>,
        budget: &Budget<'_>,
    ) -> Step {
        if self.trivial_pending {
            self.trivial_pending = false;
            return Step::End(self.end_config());
        }
        loop {
            self.steps += 1;
            if self.steps & 0xFFF == 1 {
                if let Err(a) = self.check_budget(space, budget) {
                    return Step::Abort(a);
                }
            }
            let Some(&node) = self.nodes.last() else {
                return Step::Exhausted;
            };
            if node.cursor == node.end {
                if let Some(blame) = self.backtrack(space) {
                    self.root_blame = blame;
                    self.exhausted += 1;
                    // Account small windows too (they may never reach a periodic check).
                    if let Err(a) = self.check_budget(space, budget) {
                        return Step::Abort(a);
                    }
                    return Step::Exhausted;
                }
                continue;
            }
            let top = self.nodes.len() - 1;
            self.nodes[top].cursor += 1;
            let Cand { l, ns } = self.arena[node.cursor as usize];
            let is_info = self.lo[l as usize].info;
            let nobl = if is_info { self.state } else { NO_OBL };
            let nh = self.hash ^ self.lo[l as usize].z;
            let ck = config_key(nh, ns, nobl);
            if self.cbj {
                let sl = self.lo[l as usize].slot as usize;
                let mut dead = None;
                for j in 0..self.masks_by_slot[sl].len() {
                    let m = self.masks_by_slot[sl][j];
                    let k = self.projection_key(space, ns, m, sl, self.lo[l as usize].z);
                    if self.nogoods.contains(&k) {
                        dead = Some(m);
                        break;
                    }
                }
                let known = if dead.is_some() {
                    dead
                } else if self.memo.contains(&ck) {
                    Some(self.blames.get(&ck).copied().unwrap_or(ALL))
                } else {
                    None
                };
                if let Some(b) = known {
                    if self.absorb(b, l) {
                        self.nodes[top].cursor = self.nodes[top].end;
                    }
                    continue;
                }
            }
            if !self.room_to_grow(space, budget) {
                return Step::Abort(Abort::Memory);
            }
            if !self.memo.insert(ck) {
                continue;
            }
            if self.cbj {
                self.slot_hash[self.lo[l as usize].slot as usize] ^= self.lo[l as usize].z;
            }
            if self.prefix_agree == self.stack.len()
                && self.progress.prefix.get(self.stack.len()) == Some(&self.hops[l as usize])
            {
                self.prefix_agree += 1;
            }
            self.stack.push(Frame {
                op: l,
                state: self.state,
                obl: self.obl,
            });
            self.place(l);
            self.state = ns;
            self.obl = nobl;
            self.hash = nh;
            if !is_info {
                self.remaining -= 1;
                if self.remaining + self.progress.depth <= self.required {
                    self.note_progress();
                }
                if self.remaining == 0 {
                    if self.stuck_pending {
                        self.stuck_pending = false;
                        self.progress.stuck = None;
                    }
                    // An end: a node without candidates, blamed on all keys
                    // until the later windows say which keys failed.
                    let at = self.arena.len() as u32;
                    self.nodes.push(Node {
                        start: at,
                        end: at,
                        cursor: at,
                        acc: ALL,
                        fin: true,
                        forced: false,
                    });
                    if let Err(a) = self.check_budget(space, budget) {
                        return Step::Abort(a);
                    }
                    return Step::End(self.end_config());
                }
            }
            self.expand(history, space);
        }
    }
}
