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

/// The state space of one part of a history.
pub struct Space<'a> {
    values: &'a Values,
    model: ModelKind,
    shape: Shape,
    base: u32,
    strings: Vec<String>,
    str_index: FxHashMap<String, Val>,
    append_cache: FxHashMap<(Val, Val), Val>,
    tuples: Vec<Box<[Val]>>,
    tuple_index: FxHashMap<Box<[Val]>, State>,
    tuple_cache: FxHashMap<(State, u32), Option<State>>,
    /// Names of tuple components (keys or registers), for descriptions.
    names: Vec<String>,
    init: State,
    scratch: Vec<Val>,
}

impl<'a> Space<'a> {
    /// A scalar space starting at `init` (the history's initial value).
    pub fn scalar(history: &'a History) -> Space<'a> {
        let mut s = Space::empty(history, Shape::Scalar);
        s.init = history.init;
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
            vec![history.init; history.keys.len() + 1]
        };
        s.init = s.intern_tuple(&init);
        s
    }

    fn empty(history: &'a History, shape: Shape) -> Space<'a> {
        Space {
            values: &history.values,
            model: history.model,
            shape,
            base: history.values.len() as u32,
            strings: Vec::new(),
            str_index: FxHashMap::default(),
            append_cache: FxHashMap::default(),
            tuples: Vec::new(),
            tuple_index: FxHashMap::default(),
            tuple_cache: FxHashMap::default(),
            names: Vec::new(),
            init: 0,
            scratch: Vec::new(),
        }
    }

    /// The initial state.
    pub fn initial(&self) -> State {
        self.init
    }

    /// Approximate bytes held by interned states (counted against the memory budget).
    pub fn bytes(&self) -> u64 {
        let strings: usize = self.strings.iter().map(|s| s.len() * 2 + 48).sum();
        let tuples: usize = self.tuples.iter().map(|t| t.len() * 8 + 48).sum();
        (strings + tuples + self.append_cache.len() * 16 + self.tuple_cache.len() * 24) as u64
    }

    fn intern_tuple(&mut self, t: &[Val]) -> State {
        if let Some(&id) = self.tuple_index.get(t) {
            return id;
        }
        let id = self.tuples.len() as State;
        self.tuples.push(t.into());
        self.tuple_index.insert(t.into(), id);
        id
    }

    fn str_of(&self, v: Val) -> &str {
        if v < self.base {
            self.values.as_str(v).unwrap_or("")
        } else {
            &self.strings[(v - self.base) as usize]
        }
    }

    fn append(&mut self, s: Val, v: Val) -> Val {
        if let Some(&r) = self.append_cache.get(&(s, v)) {
            return r;
        }
        let mut joined = String::with_capacity(self.str_of(s).len() + self.str_of(v).len());
        joined.push_str(self.str_of(s));
        joined.push_str(self.str_of(v));
        let id = if let Some(id) = self.values.lookup_str(&joined) {
            id
        } else if let Some(&id) = self.str_index.get(&joined) {
            id
        } else {
            let id = self.base + self.strings.len() as Val;
            self.strings.push(joined.clone());
            self.str_index.insert(joined, id);
            id
        };
        self.append_cache.insert((s, v), id);
        id
    }

    /// One step on a single value (register-like component).
    #[inline]
    fn scalar_step(&mut self, s: Val, f: &OpF) -> Option<Val> {
        match *f {
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
                    let name = self.names.get(i).cloned().unwrap_or_else(|| format!("#{i}"));
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
        if v >= self.base {
            Value::String(self.strings[(v - self.base) as usize].clone())
        } else {
            self.values.get(v)
        }
    }

    /// Short human form of a state.
    pub fn show(&self, s: State) -> String {
        match self.describe(s) {
            Value::Null => "nil".into(),
            Value::String(x) if self.model != ModelKind::AppendKv => x,
            v => v.to_string(),
        }
    }
}
