//! The Wing & Gong / Lowe linearization search over one window of one part.
//!
//! Operations sit in a doubly linked list of call and return entries sorted by
//! position (real time). The candidates to linearize next are the calls before
//! the first remaining return: they were invoked before any pending operation
//! returned. Choosing one lifts its entries out of the list (dancing links, so
//! undo is O(1) and nothing is allocated per step); a dead end pops it back.
//!
//! Lowe's memoization: a configuration (set of linearized operations, model
//! state) is explored once. The set is hashed incrementally, Zobrist style:
//! every operation has a random 128-bit key and the set's hash is the XOR of
//! its members', so adding or removing an operation is one XOR. Collisions
//! are negligible at 128 bits (a false hit needs ~2^64 configurations).
//!
//! `info` operations (outcome unknown) may be linearized at any point after
//! their call, or never: they have no return entry and are not required for
//! success. Two sound pruning rules keep them from exploding the search:
//! an `info` op is only placed if it changes the state, and it must be
//! followed by an operation whose outcome it changes (otherwise removing it
//! gives an equivalent linearization that consumes fewer unknown ops, which is
//! never worse). The pre-state of the last `info` op is therefore part of the
//! configuration key.
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

use crate::budget::{Abort, Budget};
use crate::history::{History, OpF, INF};
use crate::model::{Space, State};

const NIL: u32 = u32::MAX;
const NO_OBL: u32 = u32::MAX;

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

#[derive(Debug, Clone, Copy)]
struct Frame {
    op: u32,
    state: State,
    obl: u32,
    /// Placed as a forced move (a legal observer): no alternatives to try.
    forced: bool,
}

/// A resumable search over one window.
pub struct WindowSearch {
    hops: Vec<u32>,
    info: Vec<bool>,
    observer: Vec<bool>,
    put: Vec<bool>,
    /// Append-kv without resets ahead: states only grow, so the earliest
    /// pending read must see an extension of the current string.
    prefix_prune: bool,
    /// Append-kv: per key, the value of a read in a later window that the
    /// state must still be able to grow into (no put can come before it).
    future: FxHashMap<Option<u32>, crate::history::Val>,
    z: Vec<u128>,
    call_entry: Vec<u32>,
    ret_entry: Vec<u32>,
    next: Vec<u32>,
    prev: Vec<u32>,
    entry_op: Vec<u32>,
    entry_call: Vec<bool>,
    local_of: FxHashMap<u32, u32>,
    required: u32,
    // dynamic
    stack: Vec<Frame>,
    base_lifted: Vec<u32>,
    start_consumed: Vec<u32>,
    state: State,
    obl: u32,
    hash: u128,
    remaining: u32,
    cursor: u32,
    need_backtrack: bool,
    trivial_pending: bool,
    memo: FxHashSet<u128>,
    /// Key blame on (see module docs): only for tuple states whose ops each touch one slot.
    cbj: bool,
    /// Tuple slot of each local op.
    slot: Vec<u8>,
    /// Per slot: Zobrist hash of the placed local ops of that slot.
    slot_hash: Vec<u128>,
    /// Per node on the path (root first): blame gathered from its dead
    /// children, and whether it is final (a backjump or a forced move).
    acc: Vec<(Blame, bool)>,
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
    /// Deepest progress, for counterexamples.
    pub progress: Progress,
    /// Number of times a start configuration was exhausted without an end.
    pub exhausted: u32,
}

const HEAD: u32 = 0;

impl WindowSearch {
    /// Builds the list for `pending` info ops (from earlier windows) and the
    /// window's own ops (history indices, sorted by call).
    pub fn new(history: &History, pending: &[u32], window: &[u32]) -> WindowSearch {
        let mut hops = Vec::with_capacity(pending.len() + window.len());
        hops.extend_from_slice(pending);
        hops.extend_from_slice(window);
        let n = hops.len();
        let mut info = Vec::with_capacity(n);
        let mut observer = Vec::with_capacity(n);
        let mut put = Vec::with_capacity(n);
        let mut z = Vec::with_capacity(n);
        // (position, local op, is_call)
        let mut evs: Vec<(u64, u32, bool)> = Vec::with_capacity(2 * n);
        let mut required = 0;
        let mut local_of = FxHashMap::default();
        for (l, &h) in hops.iter().enumerate() {
            let op = &history.ops[h as usize];
            let is_info = op.ret == INF;
            info.push(is_info);
            let is_put = matches!(op.f, OpF::Write(_));
            put.push(is_put);
            observer.push(
                !is_info
                    && match &op.f {
                        OpF::Read(_) | OpF::CasFailed(_) => true,
                        OpF::Txn(m) => m.iter().all(|m| !m.write),
                        _ => false,
                    },
            );
            z.push(zobrist(h));
            local_of.insert(h, l as u32);
            evs.push((op.call, l as u32, true));
            if !is_info {
                required += 1;
                evs.push((op.ret, l as u32, false));
            }
        }
        evs.sort_unstable_by_key(|e| (e.0, !e.2));
        let m = evs.len() + 1;
        let mut next = vec![NIL; m];
        let mut prev = vec![NIL; m];
        let mut entry_op = vec![NIL; m];
        let mut entry_call = vec![false; m];
        let mut call_entry = vec![NIL; n];
        let mut ret_entry = vec![NIL; n];
        for (i, &(_, l, is_call)) in evs.iter().enumerate() {
            let e = (i + 1) as u32;
            entry_op[e as usize] = l;
            entry_call[e as usize] = is_call;
            if is_call {
                call_entry[l as usize] = e;
            } else {
                ret_entry[l as usize] = e;
            }
            prev[e as usize] = e - 1;
            next[(e - 1) as usize] = e;
        }
        WindowSearch {
            hops,
            info,
            observer,
            put,
            prefix_prune: history.model == crate::ModelKind::AppendKv,
            future: FxHashMap::default(),
            z,
            call_entry,
            ret_entry,
            next,
            prev,
            entry_op,
            entry_call,
            local_of,
            required,
            stack: Vec::new(),
            base_lifted: Vec::new(),
            start_consumed: Vec::new(),
            state: 0,
            obl: NO_OBL,
            hash: 0,
            remaining: required,
            cursor: NIL,
            need_backtrack: false,
            trivial_pending: false,
            memo: FxHashSet::default(),
            cbj: false,
            slot: Vec::new(),
            slot_hash: Vec::new(),
            acc: Vec::new(),
            blames: FxHashMap::default(),
            nogoods: FxHashSet::default(),
            masks_by_slot: Vec::new(),
            root_blame: ALL,
            counted_bytes: 0,
            steps: 0,
            progress: Progress::default(),
            exhausted: 0,
        }
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
        self.slot = self
            .hops
            .iter()
            .map(|&h| {
                let k = history.ops[h as usize].key;
                k.map_or(slots - 1, |k| (k as usize).min(slots - 1)) as u8
            })
            .collect();
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
            if let Some(top) = self.acc.last_mut() {
                *top = (b, true);
            }
        }
    }

    /// Sets the later-window reads each key's state must grow into (append-kv).
    pub fn set_future(&mut self, future: FxHashMap<Option<u32>, crate::history::Val>) {
        self.future = future;
    }

    /// Required (non-info) operations of this window, as history indices.
    pub fn required_ops(&self) -> Vec<u32> {
        self.hops
            .iter()
            .zip(&self.info)
            .filter(|(_, &i)| !i)
            .map(|(&h, _)| h)
            .collect()
    }

    #[inline]
    fn unlink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = n;
        if n != NIL {
            self.prev[n as usize] = p;
        }
    }

    #[inline]
    fn relink(&mut self, e: u32) {
        let (p, n) = (self.prev[e as usize], self.next[e as usize]);
        self.next[p as usize] = e;
        if n != NIL {
            self.prev[n as usize] = e;
        }
    }

    #[inline]
    fn lift(&mut self, l: u32) {
        self.unlink(self.call_entry[l as usize]);
        let r = self.ret_entry[l as usize];
        if r != NIL {
            self.unlink(r);
        }
    }

    #[inline]
    fn unlift(&mut self, l: u32) {
        let r = self.ret_entry[l as usize];
        if r != NIL {
            self.relink(r);
        }
        self.relink(self.call_entry[l as usize]);
    }

    /// Starts (or restarts, after exhaustion) from a configuration.
    pub fn start(&mut self, cfg: &Config) {
        debug_assert!(self.stack.is_empty());
        while let Some(l) = self.base_lifted.pop() {
            self.unlift(l);
        }
        let mut hash = 0u128;
        self.slot_hash.iter_mut().for_each(|x| *x = 0);
        for &h in &cfg.consumed {
            hash ^= zobrist(h);
            if let Some(&l) = self.local_of.get(&h) {
                self.lift(l);
                self.base_lifted.push(l);
                if self.cbj {
                    self.slot_hash[self.slot[l as usize] as usize] ^= self.z[l as usize];
                }
            }
        }
        self.acc.clear();
        self.acc.push((0, false));
        self.start_consumed.clone_from(&cfg.consumed);
        self.state = cfg.state;
        self.obl = NO_OBL;
        self.hash = hash;
        self.remaining = self.required;
        self.cursor = self.next[HEAD as usize];
        self.need_backtrack = false;
        self.trivial_pending = self.required == 0;
        if self.progress.prefix.is_empty() && self.progress.states.len() < 8 {
            if !self.progress.states.contains(&cfg.state) {
                self.progress.states.push(cfg.state);
            }
            if self.progress.stuck.is_none() {
                self.progress.stuck = self.first_pending_return();
            }
        }
    }

    fn first_pending_return(&self) -> Option<u32> {
        let mut e = self.next[HEAD as usize];
        while e != NIL {
            if !self.entry_call[e as usize] {
                return Some(self.hops[self.entry_op[e as usize] as usize]);
            }
            e = self.next[e as usize];
        }
        None
    }

    /// True if no other unplaced op of `l`'s key was invoked before `l` returned.
    fn alone_on_key(&self, history: &History, l: u32) -> bool {
        let key = history.ops[self.hops[l as usize] as usize].key;
        let stop = self.ret_entry[l as usize];
        let mut e = self.next[HEAD as usize];
        while e != NIL && e != stop {
            let o = self.entry_op[e as usize];
            if o != l
                && self.entry_call[e as usize]
                && history.ops[self.hops[o as usize] as usize].key == key
            {
                return false;
            }
            e = self.next[e as usize];
        }
        true
    }

    /// The value the state of `l`'s key must still be able to grow into: the
    /// unplaced read of that key with the earliest return (other than `l`),
    /// else the key's first read in a later window; `None` when an unplaced
    /// put on the key (other than `l`) that could come first explains it.
    fn read_to_check(
        &self,
        history: &History,
        space: &mut Space<'_>,
        l: u32,
    ) -> Option<crate::history::Val> {
        let mut e = self.next[HEAD as usize];
        let mut r = None;
        let lkey = history.ops[self.hops[l as usize] as usize].key;
        while e != NIL {
            let o = self.entry_op[e as usize];
            if o != l
                && !self.entry_call[e as usize]
                && self.observer[o as usize]
                && history.ops[self.hops[o as usize] as usize].key == lkey
            {
                r = Some(e);
                break;
            }
            e = self.next[e as usize];
        }
        let (rv, stop) = match r {
            Some(re) => {
                match history.ops[self.hops[self.entry_op[re as usize] as usize] as usize].f {
                    OpF::Read(v) => (v, re),
                    _ => return None,
                }
            }
            None => (*self.future.get(&lkey)?, NIL),
        };
        let mut e = self.next[HEAD as usize];
        while e != stop {
            let o = self.entry_op[e as usize];
            if o != l && self.put[o as usize] && self.entry_call[e as usize] {
                let p = &history.ops[self.hops[o as usize] as usize];
                if let (true, OpF::Write(pv)) = (p.key == lkey, &p.f) {
                    if stop == NIL || space.value_is_prefix(*pv, rv) {
                        return None;
                    }
                }
            }
            e = self.next[e as usize];
        }
        Some(rv)
    }

    /// The blame of the node on top of the path, which just died (module
    /// docs): pops its accumulator.
    fn node_blame(&mut self) -> Blame {
        let Some((mut b, fin)) = self.acc.pop() else {
            return ALL;
        };
        if fin || b & ALL != 0 {
            return b;
        }
        if self.obl != NO_OBL {
            return ALL;
        }
        // The earliest remaining return R. K = b is enough if, scanning on
        // from R, a return of K comes before any call of K: then K has a
        // required op left, and every op of K that could come first among
        // K's ops was invoked before R, i.e. is a candidate here.
        let mut r = self.next[HEAD as usize];
        while r != NIL && self.entry_call[r as usize] {
            r = self.next[r as usize];
        }
        if r == NIL {
            return ALL;
        }
        let rbit = 1u128 << self.slot[self.entry_op[r as usize] as usize];
        if b & rbit != 0 {
            return b;
        }
        let mut e = self.next[r as usize];
        while e != NIL {
            let bit = 1u128 << self.slot[self.entry_op[e as usize] as usize];
            if b & bit != 0 {
                if self.entry_call[e as usize] {
                    break;
                }
                return b;
            }
            e = self.next[e as usize];
        }
        b |= rbit;
        b
    }

    /// Takes in the blame of a dead child reached by placing local op `l`.
    /// Returns true when the parent is dead too (a backjump, or a forced move).
    fn absorb(&mut self, child: Blame, l: u32, forced: bool) -> bool {
        let Some(top) = self.acc.last_mut() else {
            return true;
        };
        let bit = 1u128 << self.slot[l as usize];
        if child & ALL == 0 && child & bit == 0 {
            // The child has the parent's projection on `child`: dead as well.
            *top = (child, true);
            return true;
        }
        if forced {
            *top = (child, true);
            return true;
        }
        top.0 |= child;
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
            if self.info[f.op as usize] {
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
            self.progress.prefix = self
                .stack
                .iter()
                .map(|f| self.hops[f.op as usize])
                .collect();
            self.progress.states.clear();
            self.progress.states.push(self.state);
            self.progress.stuck = self.first_pending_return();
        } else if depth == self.progress.depth
            && self.progress.states.len() < 8
            && !self.progress.states.contains(&self.state)
        {
            self.progress.states.push(self.state);
        }
    }

    /// Steps taken so far (diagnostics).
    pub fn steps_taken(&self) -> u64 {
        self.steps
    }

    /// Configurations memoized so far (diagnostics).
    pub fn memo_len(&self) -> usize {
        self.memo.len()
    }

    /// Memory this search holds (memo table and lists), in bytes.
    pub fn bytes(&self) -> u64 {
        (self.memo.capacity() * 17
            + self.blames.capacity() * 33
            + self.nogoods.capacity() * 17
            + self.acc.capacity() * 32
            + self.stack.capacity() * 12
            + self.next.len() * 14
            + self.hops.len() * 24) as u64
    }

    fn check_budget(&mut self, space: &Space<'_>, budget: &Budget<'_>) -> Result<(), Abort> {
        if budget.stop.load(Ordering::Relaxed) {
            return Err(Abort::Stopped);
        }
        if std::time::Instant::now() >= budget.deadline {
            return Err(Abort::Time);
        }
        let now = self.bytes() + space.bytes();
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
        if budget.used.load(Ordering::Relaxed) > budget.memory_limit {
            return Err(Abort::Memory);
        }
        Ok(())
    }

    /// Gives back the bytes this search counted against the budget.
    pub fn release(&mut self, budget: &Budget<'_>) {
        budget.used.fetch_sub(self.counted_bytes, Ordering::Relaxed);
        self.counted_bytes = 0;
        self.memo = FxHashSet::default();
        self.blames = FxHashMap::default();
        self.nogoods = FxHashSet::default();
        self.masks_by_slot.iter_mut().for_each(Vec::clear);
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
            self.need_backtrack = true;
            if let Some(top) = self.acc.last_mut() {
                // Until the later windows say which keys failed.
                *top = (ALL, true);
            }
            return Step::End(self.end_config());
        }
        loop {
            self.steps += 1;
            if self.steps & 0xFFF == 1 {
                if let Err(a) = self.check_budget(space, budget) {
                    return Step::Abort(a);
                }
            }
            let e = self.cursor;
            if self.need_backtrack || e == NIL || !self.entry_call[e as usize] {
                self.need_backtrack = false;
                let blame = if self.cbj {
                    let b = self.node_blame();
                    self.record(space, b);
                    b
                } else {
                    ALL
                };
                let Some(fr) = self.stack.pop() else {
                    self.root_blame = blame;
                    self.exhausted += 1;
                    self.cursor = NIL;
                    // Account small windows too (they may never reach a periodic check).
                    if let Err(a) = self.check_budget(space, budget) {
                        return Step::Abort(a);
                    }
                    return Step::Exhausted;
                };
                self.unlift(fr.op);
                self.hash ^= self.z[fr.op as usize];
                self.state = fr.state;
                self.obl = fr.obl;
                if !self.info[fr.op as usize] {
                    self.remaining += 1;
                }
                self.cursor = self.next[self.call_entry[fr.op as usize] as usize];
                if fr.forced {
                    // The observer was the only move worth trying here.
                    self.need_backtrack = true;
                }
                if self.cbj {
                    self.slot_hash[self.slot[fr.op as usize] as usize] ^= self.z[fr.op as usize];
                    if self.absorb(blame, fr.op, fr.forced) {
                        self.need_backtrack = true;
                    }
                }
                continue;
            }
            let l = self.entry_op[e as usize];
            let h = self.hops[l as usize];
            let op = &history.ops[h as usize];
            let is_info = self.info[l as usize];
            if let Some(ns) = space.step(self.state, h, &op.f, op.key) {
                let useful = !is_info || ns != self.state;
                let obliged =
                    self.obl == NO_OBL || space.step(self.obl, h, &op.f, op.key) != Some(ns);
                let reachable = !self.prefix_prune
                    || match self.read_to_check(history, space, l) {
                        Some(v) => space.may_extend_to(ns, v, op.key),
                        None => true,
                    };
                if useful && obliged && reachable {
                    let nobl = if is_info { self.state } else { NO_OBL };
                    let nh = self.hash ^ self.z[l as usize];
                    // A legal observer (leaves the state as it is) can be placed
                    // now in some valid order if any valid order exists: every op
                    // that must precede it in real time is already placed.
                    // Likewise any legal required op that no other unplaced op
                    // of its key could precede: it is next on its key in every
                    // valid order, and ops of other keys commute with it.
                    let forced = self.obl == NO_OBL
                        && !is_info
                        && ((ns == self.state && self.observer[l as usize])
                            || self.alone_on_key(history, l));
                    let ck = config_key(nh, ns, nobl);
                    if self.cbj {
                        let sl = self.slot[l as usize] as usize;
                        let mut dead = None;
                        for j in 0..self.masks_by_slot[sl].len() {
                            let m = self.masks_by_slot[sl][j];
                            let k = self.projection_key(space, ns, m, sl, self.z[l as usize]);
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
                            if self.absorb(b, l, forced) {
                                self.need_backtrack = true;
                            } else {
                                self.cursor = self.next[e as usize];
                            }
                            continue;
                        }
                    }
                    if self.memo.insert(ck) {
                        if self.cbj {
                            self.slot_hash[self.slot[l as usize] as usize] ^= self.z[l as usize];
                            self.acc.push((0, false));
                        }
                        self.stack.push(Frame {
                            op: l,
                            state: self.state,
                            obl: self.obl,
                            forced,
                        });
                        self.lift(l);
                        self.state = ns;
                        self.obl = nobl;
                        self.hash = nh;
                        self.cursor = self.next[HEAD as usize];
                        if !is_info {
                            self.remaining -= 1;
                            if self.remaining + self.progress.depth <= self.required {
                                self.note_progress();
                            }
                            if self.remaining == 0 {
                                self.need_backtrack = true;
                                if let Some(top) = self.acc.last_mut() {
                                    // Until the later windows say which keys failed.
                                    *top = (ALL, true);
                                }
                                if let Err(a) = self.check_budget(space, budget) {
                                    return Step::Abort(a);
                                }
                                return Step::End(self.end_config());
                            }
                        }
                        continue;
                    } else if forced {
                        // Explored before from here: this node has nothing new.
                        self.need_backtrack = true;
                        continue;
                    }
                }
            }
            self.cursor = self.next[e as usize];
        }
    }
}
