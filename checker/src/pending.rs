//! Which `info` ops from earlier windows a window's search needs.
//!
//! An `info` op invoked in an earlier window and not yet placed on the way to
//! a window's start configuration may still take effect in that window. By
//! the rules of [`crate::search`], a placed `info` op must enable the op
//! placed right after it. For the register models that op reads or does a
//! cas from the value the `info` op writes, or it is a failed cas that
//! needs the value before it gone. So, with `t` the value an `info` op
//! writes:
//!
//! - if some op of the part reads `t` or does a cas from it, the op stays;
//! - otherwise it only serves failed cas: none is needed in a window without
//!   failed cas, and ops with the same effect are interchangeable (the
//!   earliest invoked are used first, see [`crate::search`]), so at most as
//!   many of each as the window has failed cas;
//! - among those, a write of a value nobody reads or compares against
//!   ([`DEAD`]) does whatever any other of them can do: it fits every state,
//!   and every op behaves at least as well after it (only a failed cas can
//!   tell the values apart, and no failed cas expects `DEAD`). So when
//!   enough of them are pending, the others are left out; otherwise a cas is
//!   kept only if the state can hold its `from`: the start state, or a value
//!   something in the window or among these ops writes.
//!
//! The pool is built once per part, so a window's selection costs what the
//! window and its selection hold, not every `info` op seen so far.

use rustc_hash::{FxHashMap, FxHashSet};

use crate::history::{History, OpF, Val, DEAD, INF};
use crate::search::Config;

/// The `info` ops of one part, sorted for the selection of each window.
pub struct Pool {
    registers: bool,
    /// Every `info` op of the part, in call order (other models keep them all).
    all: Vec<u32>,
    /// Ops whose value some op of the part reads or does a cas from.
    observed: Vec<u32>,
    /// Writes of [`DEAD`], in call order.
    dead_writes: Vec<u32>,
    /// The other unobserved writes, in call order.
    other_writes: Vec<u32>,
    /// Unobserved cas by the value they expect, each list in call order.
    cas_from: FxHashMap<Val, Vec<u32>>,
    dead: FxHashSet<u32>,
}

fn target(f: &OpF) -> Option<Val> {
    match *f {
        OpF::Write(v) | OpF::Cas(_, v) => Some(v),
        _ => None,
    }
}

impl Pool {
    /// Sorts the `info` ops of `part` (history indices in call order).
    pub fn new(history: &History, part: &[u32], registers: bool) -> Pool {
        let all: Vec<u32> = part
            .iter()
            .copied()
            .filter(|&i| history.ops[i as usize].ret == INF)
            .collect();
        let mut pool = Pool {
            registers,
            all: Vec::new(),
            observed: Vec::new(),
            dead_writes: Vec::new(),
            other_writes: Vec::new(),
            cas_from: FxHashMap::default(),
            dead: FxHashSet::default(),
        };
        if !registers {
            pool.all = all;
            return pool;
        }
        let mut looked: FxHashSet<Val> = FxHashSet::default();
        for &i in part {
            if let OpF::Read(v) | OpF::Cas(v, _) = history.ops[i as usize].f {
                looked.insert(v);
            }
        }
        for i in all {
            let f = &history.ops[i as usize].f;
            match (target(f), f) {
                (Some(t), _) if looked.contains(&t) => pool.observed.push(i),
                (_, OpF::Write(DEAD)) => {
                    pool.dead_writes.push(i);
                    pool.dead.insert(i);
                }
                (_, OpF::Write(_)) => pool.other_writes.push(i),
                (_, OpF::Cas(a, _)) => pool.cas_from.entry(*a).or_default().push(i),
                _ => pool.observed.push(i),
            }
        }
        pool
    }

    /// The pending `info` ops the search of `window` needs from `start`:
    /// those invoked before the window's first op and not consumed.
    pub fn select(&self, history: &History, window: &[u32], start: &Config) -> Vec<u32> {
        let Some(&first) = window.first() else {
            return Vec::new();
        };
        let begin = history.ops[first as usize].call;
        let fresh = |i: &u32| start.consumed.binary_search(i).is_err();
        let called = |list: &[u32]| -> usize {
            list.partition_point(|&i| history.ops[i as usize].call < begin)
        };
        if !self.registers {
            let all = &self.all[..called(&self.all)];
            return all.iter().copied().filter(fresh).collect();
        }
        let mut out: Vec<u32> = self.observed[..called(&self.observed)]
            .iter()
            .copied()
            .filter(fresh)
            .collect();
        let cap = window
            .iter()
            .filter(|&&i| matches!(history.ops[i as usize].f, OpF::CasFailed(_)))
            .count();
        if cap == 0 {
            return out;
        }
        let take = |list: &[u32], out: &mut Vec<u32>| {
            // Interchangeable ops: the earliest fresh ones, `cap` of each effect.
            let mut kept: FxHashMap<&OpF, usize> = FxHashMap::default();
            for &i in &list[..called(list)] {
                if !fresh(&i) {
                    continue;
                }
                let n = kept.entry(&history.ops[i as usize].f).or_default();
                if *n < cap {
                    *n += 1;
                    out.push(i);
                }
            }
        };
        // The consumed ones are the earliest (search's symmetry rule), so
        // the fresh ones start right after them.
        let used = start
            .consumed
            .iter()
            .filter(|i| self.dead.contains(i))
            .count();
        let pending_dead = called(&self.dead_writes);
        let from = used.min(pending_dead);
        let dead: Vec<u32> = self.dead_writes[from..pending_dead]
            .iter()
            .copied()
            .filter(fresh)
            .take(cap)
            .collect();
        let enough = dead.len() >= cap;
        out.extend(dead);
        if enough {
            return out;
        }
        take(&self.other_writes, &mut out);
        let mut states: FxHashSet<Val> = FxHashSet::default();
        states.insert(start.state);
        for &i in window
            .iter()
            .chain(&self.other_writes[..called(&self.other_writes)])
        {
            if let Some(t) = target(&history.ops[i as usize].f) {
                states.insert(t);
            }
        }
        for a in states {
            if let Some(list) = self.cas_from.get(&a) {
                take(list, &mut out);
            }
        }
        out.sort_unstable_by_key(|&i| history.ops[i as usize].call);
        out
    }
}
