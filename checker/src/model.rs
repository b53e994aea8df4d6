//! Sequential models over interned states.
//!
//! A model is an initial state plus a pure `step(state, op) -> Option<state>`
//! (porcupine's `model.go`, stateright's `semantics.rs`). The search calls
//! `step` millions of times, so states are small integers: for registers the
//! state *is* the interned value; appended strings and whole maps/transactions
//! (tuples) are interned on first sight and their transitions cached, so a
//! step in the hot loop compares integers and never allocates.

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::history::{History, OpF, Val, Values, UNKNOWN};
use crate::ModelKind;

/// An interned model state.
pub type State = u32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// State is one value (register, cas-register, kv per key, append-kv per key, mutex).
    Scalar,
    /// State is a tuple of values: the whole map (unsplit kv) or a multi-register.
    Tuple,
}

const NO_PARENT: State = State::MAX;
const P: u64 = (1 << 61) - 1;
const B1: u64 = 1_000_003;
const B2: u64 = 911_382_323;

#[inline]
fn mulmod(a: u64, b: u64) -> u64 {
    let r = u128::from(a) * u128::from(b);
    let lo = (r as u64) & P;
    let hi = (r >> 61) as u64;
    let s = lo + hi;
    if s >= P {
        s - P
    } else {
        s
    }
}

#[inline]
fn addmod(a: u64, b: u64) -> u64 {
    let s = a + b;
    if s >= P {
        s - P
    } else {
        s
    }
}

fn powmod(mut b: u64, mut e: u64) -> u64 {
    let mut r = 1;
    while e > 0 {
        if e & 1 == 1 {
            r = mulmod(r, b);
        }
        b = mulmod(b, b);
        e >>= 1;
    }
    r
}

/// Two independent polynomial hashes mod 2^61-1 plus the length: equal
/// strings always hash equal; distinct strings collide with probability
/// about len/2^122, so append-kv states compare in O(1) without building strings.
fn str_hash(s: &str) -> (u64, u64, u64) {
    let (mut h1, mut h2) = (0u64, 0u64);
    for &c in s.as_bytes() {
        h1 = addmod(mulmod(h1, B1), u64::from(c) + 1);
        h2 = addmod(mulmod(h2, B2), u64::from(c) + 1);
    }
    (h1, h2, s.len() as u64)
}

/// An append-kv state: a string known by its hash and how it was built.
#[derive(Debug, Clone, Copy)]
struct Seq {
    h1: u64,
    h2: u64,
    len: u64,
    parent: State,
    val: Val,
}

/// The state space of one part of a history.
pub struct Space<'a> {
    values: &'a Values,
    model: ModelKind,
    shape: Shape,
    seqs: Vec<Seq>,
    seq_index: FxHashMap<(u64, u64, u64), State>,
    append_cache: FxHashMap<(State, Val), State>,
    val_hash: Vec<Option<(u64, u64, u64)>>,
    prefixes: FxHashMap<Val, Box<[(u64, u64)]>>,
    /// Append-kv: put/append values no read of the part contains.
    dead_vals: rustc_hash::FxHashSet<Val>,
    dead: Option<State>,
    tuples: Vec<Box<[Val]>>,
    tuple_index: FxHashMap<Box<[Val]>, State>,
    tuple_cache: FxHashMap<(State, u32), Option<State>>,
    /// Names of tuple components (keys or registers), for descriptions.
    names: Vec<String>,
    init: State,
    scratch: Vec<Val>,
    /// Bytes held in boxed tuples and prefix tables (not in the tables' own slots).
    heap_bytes: u64,
    /// Bytes counted against the budget by [`Space::charge`].
    counted: std::cell::Cell<u64>,
}

impl<'a> Space<'a> {
    /// A scalar space starting at `init` (the history's initial value).
    pub fn scalar(history: &'a History) -> Space<'a> {
        let mut s = Space::empty(history, Shape::Scalar);
        s.init = s.lift_val(history.init);
        s
    }

    /// A tuple space: the whole map (kv models unsplit) or the registers of a
    /// multi-register history.
    pub fn tuple(history: &'a History) -> Space<'a> {
        let mut s = Space::empty(history, Shape::Tuple);
        let init: Vec<Val> = if history.model == ModelKind::MultiRegister {
            s.names = history.registers.clone();
            history.register_init.clone()
        } else {
            s.names = history.keys.clone();
            s.names.push("(no key)".into());
            let init = s.lift_val(history.init);
            vec![init; history.keys.len() + 1]
        };
        s.init = s.intern_tuple(&init);
        s
    }

    fn empty(history: &'a History, shape: Shape) -> Space<'a> {
        Space {
            values: &history.values,
            model: history.model,
            shape,
            seqs: Vec::new(),
            seq_index: FxHashMap::default(),
            append_cache: FxHashMap::default(),
            // Only append-kv hashes values (lazily sized: other models never do).
            val_hash: Vec::new(),
            prefixes: FxHashMap::default(),
            dead_vals: Default::default(),
            dead: None,
            tuples: Vec::new(),
            tuple_index: FxHashMap::default(),
            tuple_cache: FxHashMap::default(),
            names: Vec::new(),
            init: 0,
            scratch: Vec::new(),
            heap_bytes: 0,
            counted: std::cell::Cell::new(0),
        }
    }

    /// The initial state.
    pub fn initial(&self) -> State {
        self.init
    }

    /// Approximate bytes held by interned states and cached steps (counted
    /// against the memory budget).
    pub fn bytes(&self) -> u64 {
        use crate::budget::table_bytes;
        (self.seqs.capacity() * std::mem::size_of::<Seq>()
            + table_bytes(self.seq_index.capacity(), 28)
            + self.tuples.capacity() * 16
            + table_bytes(self.tuple_index.capacity(), 20)
            + table_bytes(self.append_cache.capacity(), 12)
            + table_bytes(self.tuple_cache.capacity(), 16)
            + table_bytes(self.prefixes.capacity(), 24)
            + self.val_hash.capacity() * 32) as u64
            + self.heap_bytes
    }

    /// Bytes the next inserts may need at once: a table that is (nearly)
    /// full doubles, holding the old and the new table while it moves.
    pub fn headroom(&self) -> u64 {
        use crate::budget::grow_bytes;
        (grow_bytes(self.tuple_cache.len(), self.tuple_cache.capacity(), 16)
            + grow_bytes(self.tuple_index.len(), self.tuple_index.capacity(), 20)
            + grow_bytes(self.append_cache.len(), self.append_cache.capacity(), 12)
            + grow_bytes(self.seq_index.len(), self.seq_index.capacity(), 28)) as u64
    }

    /// Charges what this space holds now to the shared budget (the space of
    /// a part is shared by its windows' searches, so it is counted here,
    /// once); true while the budget holds.
    pub fn charge(&self, budget: &crate::budget::Budget<'_>) -> bool {
        use std::sync::atomic::Ordering;
        let now = self.bytes();
        let before = self.counted.replace(now);
        if now > before {
            budget.used.fetch_add(now - before, Ordering::Relaxed);
        } else {
            budget.used.fetch_sub(before - now, Ordering::Relaxed);
        }
        budget.used.load(Ordering::Relaxed) <= budget.memory_limit
    }

    /// Gives back what [`Space::charge`] counted.
    pub fn release(&self, budget: &crate::budget::Budget<'_>) {
        let before = self.counted.replace(0);
        budget
            .used
            .fetch_sub(before, std::sync::atomic::Ordering::Relaxed);
    }

    fn intern_tuple(&mut self, t: &[Val]) -> State {
        if let Some(&id) = self.tuple_index.get(t) {
            return id;
        }
        let id = self.tuples.len() as State;
        self.tuples.push(t.into());
        self.tuple_index.insert(t.into(), id);
        // Two boxed copies, each with the allocator's header.
        self.heap_bytes += 2 * (t.len() as u64 * 4 + 16).next_multiple_of(16);
        id
    }

    /// Polynomial hash (two 61-bit moduli) and length of a string value.
    fn hash_val(&mut self, v: Val) -> (u64, u64, u64) {
        if let Some(Some(h)) = self.val_hash.get(v as usize) {
            return *h;
        }
        let st = self.values.as_str(v).unwrap_or("");
        let h = str_hash(st);
        if (v as usize) < self.values.len() {
            if self.val_hash.len() <= v as usize {
                self.val_hash.resize(self.values.len(), None);
            }
            self.val_hash[v as usize] = Some(h);
        }
        h
    }

    /// The append-kv state of a whole value (a put, or the initial value).
    fn lift_val(&mut self, v: Val) -> State {
        if self.model != ModelKind::AppendKv {
            return v;
        }
        if self.dead_vals.contains(&v) {
            return self.dead_state();
        }
        let h = self.hash_val(v);
        self.intern_seq(h, NO_PARENT, v)
    }

    fn intern_seq(&mut self, h: (u64, u64, u64), parent: State, val: Val) -> State {
        if let Some(&id) = self.seq_index.get(&h) {
            return id;
        }
        let id = self.seqs.len() as State;
        self.seqs.push(Seq {
            h1: h.0,
            h2: h.1,
            len: h.2,
            parent,
            val,
        });
        self.seq_index.insert(h, id);
        id
    }

    /// The state "holds a put or append no read ever contains": no read can
    /// succeed until a put replaces it, so all such strings are equivalent.
    fn dead_state(&mut self) -> State {
        if let Some(d) = self.dead {
            return d;
        }
        let id = self.seqs.len() as State;
        self.seqs.push(Seq {
            h1: u64::MAX,
            h2: u64::MAX,
            len: u64::MAX,
            parent: NO_PARENT,
            val: crate::history::NIL,
        });
        self.dead = Some(id);
        id
    }

    /// Append-kv: finds the put/append values of `part` that no read of it
    /// contains, so states holding them collapse into one dead state.
    pub fn prepare_dead_values(&mut self, history: &History, part: &[u32]) {
        if self.model != ModelKind::AppendKv {
            return;
        }
        let mut reads: Vec<Val> = Vec::new();
        let mut cands: Vec<Val> = Vec::new();
        for &i in part {
            match history.ops[i as usize].f {
                OpF::Read(v) if v != UNKNOWN => reads.push(v),
                OpF::Append(v) | OpF::Write(v) => cands.push(v),
                _ => {}
            }
        }
        reads.sort_unstable();
        reads.dedup();
        cands.sort_unstable();
        cands.dedup();
        let mut lens: Vec<u64> = cands.iter().map(|&v| self.hash_val(v).2).collect();
        lens.sort_unstable();
        lens.dedup();
        let mut windows: rustc_hash::FxHashSet<(u64, u64, u64)> = Default::default();
        for &r in &reads {
            let pre: Vec<(u64, u64)> = self.prefix_hash(r).to_vec();
            let n = pre.len() as u64 - 1;
            for &l in lens.iter().filter(|&&l| l <= n) {
                let (p1, p2) = (powmod(B1, l), powmod(B2, l));
                for i in 0..=(n - l) {
                    let (a, b) = (pre[i as usize], pre[(i + l) as usize]);
                    let h1 = addmod(b.0, P - mulmod(a.0, p1));
                    let h2 = addmod(b.1, P - mulmod(a.1, p2));
                    windows.insert((h1, h2, l));
                }
            }
        }
        for v in cands {
            let h = self.hash_val(v);
            if h.2 > 0 && !windows.contains(&h) {
                self.dead_vals.insert(v);
            }
        }
    }

    fn append(&mut self, s: State, v: Val) -> State {
        if let Some(&r) = self.append_cache.get(&(s, v)) {
            return r;
        }
        if self.dead == Some(s) || self.dead_vals.contains(&v) {
            let d = self.dead_state();
            self.append_cache.insert((s, v), d);
            return d;
        }
        let (a1, a2, alen) = {
            let q = &self.seqs[s as usize];
            (q.h1, q.h2, q.len)
        };
        let (b1, b2, blen) = self.hash_val(v);
        let h = (
            addmod(mulmod(a1, powmod(B1, blen)), b1),
            addmod(mulmod(a2, powmod(B2, blen)), b2),
            alen + blen,
        );
        let id = self.intern_seq(h, s, v);
        self.append_cache.insert((s, v), id);
        id
    }

    /// Append-kv: can a read of `v` still be satisfied from state `s` by
    /// appends alone, i.e. is the state's string a prefix of `v`?
    pub fn may_extend_to(&mut self, s: State, v: Val, key: Option<u32>) -> bool {
        if self.model != ModelKind::AppendKv || v == UNKNOWN {
            return true;
        }
        let s = match self.shape {
            Shape::Scalar => s,
            Shape::Tuple => {
                let t = &self.tuples[s as usize];
                t[key.map_or(t.len() - 1, |k| k as usize)]
            }
        };
        let q = self.seqs[s as usize];
        self.prefix_hash(v).get(q.len as usize) == Some(&(q.h1, q.h2))
    }

    /// Append-kv: is value `p` a prefix of value `r` (could a put of `p`,
    /// followed by appends, end in `r`)?
    pub fn value_is_prefix(&mut self, p: Val, r: Val) -> bool {
        if r == UNKNOWN {
            return true;
        }
        let h = self.hash_val(p);
        self.prefix_hash(r).get(h.2 as usize) == Some(&(h.0, h.1))
    }

    fn prefix_hash(&mut self, v: Val) -> &[(u64, u64)] {
        let values = self.values;
        let heap = &mut self.heap_bytes;
        self.prefixes.entry(v).or_insert_with(|| {
            let st = values.as_str(v).unwrap_or("").as_bytes();
            let mut out = Vec::with_capacity(st.len() + 1);
            let (mut h1, mut h2) = (0u64, 0u64);
            out.push((0, 0));
            for &c in st {
                h1 = addmod(mulmod(h1, B1), u64::from(c) + 1);
                h2 = addmod(mulmod(h2, B2), u64::from(c) + 1);
                out.push((h1, h2));
            }
            *heap += (out.len() as u64 * 16 + 16).next_multiple_of(16);
            out.into_boxed_slice()
        })
    }

    /// The string of an append-kv state (rebuilt from its chain of appends).
    fn seq_string(&self, s: State) -> String {
        if self.dead == Some(s) {
            return "(a value holding a put or append that no read ever returned)".into();
        }
        let mut parts = Vec::new();
        let mut cur = s;
        loop {
            let q = &self.seqs[cur as usize];
            parts.push(self.values.as_str(q.val).unwrap_or(""));
            if q.parent == NO_PARENT {
                break;
            }
            cur = q.parent;
        }
        parts.iter().rev().copied().collect()
    }

    /// One step on a single value (register-like component).
    #[inline]
    fn scalar_step(&mut self, s: Val, f: &OpF) -> Option<Val> {
        match *f {
            OpF::Read(v) if self.model == ModelKind::AppendKv => {
                if v == UNKNOWN {
                    return Some(s);
                }
                let h = self.hash_val(v);
                let q = &self.seqs[s as usize];
                ((q.h1, q.h2, q.len) == h).then_some(s)
            }
            OpF::Write(v) if self.model == ModelKind::AppendKv => Some(self.lift_val(v)),
            OpF::Read(v) => (v == UNKNOWN || v == s).then_some(s),
            OpF::Write(v) => Some(v),
            OpF::Cas(a, b) => (s == a).then_some(b),
            OpF::CasFailed(a) => (s != a).then_some(s),
            OpF::Append(v) => Some(self.append(s, v)),
            OpF::Acquire => (s == 0).then_some(1),
            OpF::Release => (s == 1).then_some(0),
            OpF::Txn(_) => None,
        }
    }

    /// Applies op number `op` (an index stable within this space, used to cache
    /// tuple transitions) with effect `f` on component `key` to state `s`.
    #[inline]
    pub fn step(&mut self, s: State, op: u32, f: &OpF, key: Option<u32>) -> Option<State> {
        match self.shape {
            Shape::Scalar => self.scalar_step(s, f),
            Shape::Tuple => {
                if let Some(&r) = self.tuple_cache.get(&(s, op)) {
                    return r;
                }
                let r = self.tuple_step(s, f, key);
                self.tuple_cache.insert((s, op), r);
                r
            }
        }
    }

    fn tuple_step(&mut self, s: State, f: &OpF, key: Option<u32>) -> Option<State> {
        let mut t = std::mem::take(&mut self.scratch);
        t.clear();
        t.extend_from_slice(&self.tuples[s as usize]);
        let ok = match f {
            OpF::Txn(micro) => micro.iter().all(|m| {
                let slot = m.reg as usize;
                if slot >= t.len() {
                    t.resize(slot + 1, self.init_component());
                }
                if m.write {
                    t[slot] = m.val;
                    true
                } else {
                    m.val == UNKNOWN || t[slot] == m.val
                }
            }),
            f => {
                let slot = key.map_or(t.len() - 1, |k| k as usize);
                match self.scalar_step(t[slot], f) {
                    Some(v) => {
                        t[slot] = v;
                        true
                    }
                    None => false,
                }
            }
        };
        let r = ok.then(|| self.intern_tuple(&t));
        self.scratch = t;
        r
    }

    /// Component `slot` of a tuple state (the whole state for a scalar
    /// space): the projection the search's per-key conflict analysis
    /// memoizes, so two maps that agree on a key share what was learned
    /// about that key.
    #[inline]
    pub fn component(&self, s: State, slot: usize) -> Val {
        match self.shape {
            Shape::Scalar => s,
            Shape::Tuple => self.tuples[s as usize]
                .get(slot)
                .copied()
                .unwrap_or(crate::history::NIL),
        }
    }

    fn init_component(&self) -> Val {
        crate::history::NIL
    }

    /// A JSON rendering of a state, for counterexamples.
    pub fn describe(&self, s: State) -> Value {
        match self.shape {
            Shape::Scalar => self.describe_val(s),
            Shape::Tuple => {
                let t = &self.tuples[s as usize];
                let mut m = serde_json::Map::new();
                for (i, v) in t.iter().enumerate() {
                    let name = self
                        .names
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| format!("#{i}"));
                    if name == "(no key)" && *v == self.tuples[self.init as usize][i] {
                        continue;
                    }
                    m.insert(name, self.describe_val(*v));
                }
                Value::Object(m)
            }
        }
    }

    fn describe_val(&self, v: Val) -> Value {
        if self.model == ModelKind::Mutex {
            return Value::String(if v == 1 { "locked" } else { "unlocked" }.into());
        }
        if self.model == ModelKind::AppendKv {
            Value::String(self.seq_string(v))
        } else {
            self.values.get(v)
        }
    }

    /// Short human form of a state.
    pub fn show(&self, s: State) -> String {
        crate::history::abbreviate(&match self.describe(s) {
            Value::Null => "nil".into(),
            Value::String(x) if self.model != ModelKind::AppendKv => x,
            Value::String(x) => format!("{x:?}"),
            v => v.to_string(),
        })
    }
}
