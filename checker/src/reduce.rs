//! Exact reductions of a register history before the search: the reduced
//! history is linearizable iff the original is, and it is much easier to
//! search when many writes ended `info`.
//!
//! They apply per key to the register models (register, cas-register, kv),
//! whose ops each read or write their own key alone; "a value" below means a
//! value of that key, and "the state" that key's register. A value `v` is
//! *unique* when it is not the initial value and exactly one op may set the
//! register to it (a write of `v`, or a cas `a -> v` with `a != v`): its
//! *writer*. Each rule with the argument for why it keeps the verdict:
//!
//! 1. **Effective return.** If an ok read of a unique `v` returned at `r`,
//!    or an op that must take effect did a cas from `v` and must be placed
//!    before `r`, then `v`'s writer must be placed before `r`: the register
//!    held `v` at the reader's point, only the writer can have put it there,
//!    so every linearization places the writer first. The writer's return
//!    becomes `min(its return, r)`. For an `info` writer this turns "may
//!    take effect at any time, or never" into an op that must take effect
//!    before `r`, the time its first observer returned; an `info` cas whose
//!    target value someone observed must then have succeeded. Conversely a
//!    linearization of the reduced history respects every original
//!    real-time constraint (returns only moved earlier), so it is one of the
//!    original. The constraints propagate backwards along chains of cas
//!    (Dijkstra order over returns, O(n log n)).
//! 2. **Failed cas that cannot fail.** A failed cas from `x`, where nobody
//!    writes `x` and `x` is not the initial value, is legal in every state
//!    and changes nothing: it fits anywhere in its interval, so it is dropped.
//!    So is a read whose result was not recorded.
//! 3. **Values nobody looks at.** If no op reads `v`, does a cas from `v`
//!    (ok, info or failed), and `v` is not the initial value, then every op
//!    behaves the same in a state holding `v` as in one holding any other
//!    such value `w`: reads and cas of other values fail in both, failed cas
//!    hold in both, writes replace both. So all such values are one state,
//!    [`DEAD`](crate::history::DEAD) (a bisimulation: the memo merges the
//!    configurations, and writes of them become interchangeable, see
//!    [`crate::search`]).
//! 4. **Unobserved `info` ops.** An `info` op left open by rule 1 whose value
//!    no remaining op reads or does a cas from is *unobserved*. Remove it
//!    from a linearization: the ops placed while it held the register saw
//!    its value and now see the one before; no read of its value and no cas
//!    from it exist, so they are writes, unknown reads and failed cas, and
//!    only a failed cas from the previous value can break. So on a key
//!    without failed cas the op is dropped (and, iterating, an `info` cas
//!    dropped this way no longer observes its `from`). With failed cas the
//!    op stays (it may be what made a failed cas fail); the first, relaxed
//!    pass without failed-cas observations (see [`crate::linear`]) drops it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::history::{History, Op, OpF, Val, DEAD, INF, UNKNOWN};
use crate::ModelKind;

/// Never needed (rules 2 and 4 on a key without failed cas).
const DROP: u8 = 1;
/// Unobserved `info` op (rule 4): needed only to make a failed cas hold.
const UNOBSERVED: u8 = 2;

/// A reduced copy of a register history: same op indices, returns
/// tightened, values nobody looks at merged, and which ops the search may
/// leave out.
pub struct Reduced {
    pub history: History,
    flags: Vec<u8>,
}

impl Reduced {
    /// The ops of `part` the search needs; `relaxed` for the pass without
    /// failed-cas observations, which needs no unobserved `info` op either.
    pub fn search_ops(&self, part: &[u32], relaxed: bool) -> Vec<u32> {
        part.iter()
            .copied()
            .filter(|&i| {
                let f = self.flags[i as usize];
                f & DROP == 0
                    && !(relaxed
                        && (f & UNOBSERVED != 0
                            || matches!(self.history.ops[i as usize].f, OpF::CasFailed(_))))
            })
            .collect()
    }

    /// Bytes this copy holds (charged to the memory budget).
    pub fn bytes(&self) -> u64 {
        bytes_for(&self.history)
    }
}

/// Bytes a reduced copy of `history` will hold.
pub fn bytes_for(history: &History) -> u64 {
    (history.ops.len() * (std::mem::size_of::<Op>() + 1)) as u64
}

/// Reduces a register history (see the module docs); `None` for other models.
pub fn reduce(history: &History) -> Option<Reduced> {
    if !matches!(
        history.model,
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv
    ) {
        return None;
    }
    let mut ops = history.ops.clone();
    let mut flags = vec![0u8; ops.len()];
    let mut by_key: Vec<Vec<u32>> = vec![Vec::new(); history.keys.len() + 1];
    for (i, op) in ops.iter().enumerate() {
        let slot = op.key.map_or(history.keys.len(), |k| k as usize);
        by_key[slot].push(i as u32);
    }
    for part in by_key.iter().filter(|p| !p.is_empty()) {
        reduce_key(history.init, &mut ops, &mut flags, part);
    }
    Some(Reduced {
        history: History {
            file: history.file.clone(),
            format: history.format,
            model: history.model,
            values: Arc::clone(&history.values),
            init: history.init,
            keys: history.keys.clone(),
            registers: history.registers.clone(),
            register_init: history.register_init.clone(),
            ops,
            invocations: history.invocations,
            events: history.events,
        },
        flags,
    })
}

/// The value an op may set the register to (a cas `a -> a` sets nothing).
fn target(f: &OpF) -> Option<Val> {
    match *f {
        OpF::Write(v) => Some(v),
        OpF::Cas(a, b) if a != b => Some(b),
        _ => None,
    }
}

/// Who may set each value: `Some(op)` for exactly one op, `None` for several.
fn writers(ops: &[Op], part: &[u32]) -> FxHashMap<Val, Option<u32>> {
    let mut w: FxHashMap<Val, Option<u32>> = FxHashMap::default();
    for &i in part {
        if let Some(v) = target(&ops[i as usize].f) {
            w.entry(v).and_modify(|e| *e = None).or_insert(Some(i));
        }
    }
    w
}

fn reduce_key(init: Val, ops: &mut [Op], flags: &mut [u8], part: &[u32]) {
    let writer = writers(ops, part);
    let unique_writer = |v: Val| {
        if v == init {
            None
        } else {
            writer.get(&v).copied().flatten()
        }
    };
    // Rule 2.
    for &i in part {
        match ops[i as usize].f {
            OpF::CasFailed(x) if x != init && !writer.contains_key(&x) => {
                flags[i as usize] |= DROP;
            }
            OpF::Read(UNKNOWN) => flags[i as usize] |= DROP,
            _ => {}
        }
    }
    // Rule 1: reads bound their writer, then cas chains carry it back.
    for &i in part {
        let op = &ops[i as usize];
        if let (OpF::Read(v), true) = (op.f.clone(), op.ret != INF) {
            if let Some(w) = unique_writer(v) {
                let r = op.ret;
                let w = &mut ops[w as usize];
                w.ret = w.ret.min(r);
            }
        }
    }
    let mut heap: BinaryHeap<Reverse<(u64, u32)>> = part
        .iter()
        .filter(|&&i| {
            let op = &ops[i as usize];
            op.ret != INF && matches!(op.f, OpF::Cas(..))
        })
        .map(|&i| Reverse((ops[i as usize].ret, i)))
        .collect();
    while let Some(Reverse((r, c))) = heap.pop() {
        if r != ops[c as usize].ret {
            continue; // superseded by an earlier bound
        }
        let OpF::Cas(a, _) = ops[c as usize].f else {
            continue;
        };
        let Some(w) = unique_writer(a) else { continue };
        if r < ops[w as usize].ret {
            ops[w as usize].ret = r;
            if matches!(ops[w as usize].f, OpF::Cas(..)) {
                heap.push(Reverse((r, w)));
            }
        }
    }
    // Rule 3: who looks at each value (reads and cas from it; failed cas
    // separately, they matter to rule 3 but not to rule 4).
    let mut looks: FxHashMap<Val, u32> = FxHashMap::default();
    let mut failed_from: FxHashMap<Val, u32> = FxHashMap::default();
    let mut has_failed = false;
    for &i in part {
        if flags[i as usize] & DROP != 0 {
            continue;
        }
        match ops[i as usize].f {
            OpF::Read(v) | OpF::Cas(v, _) => *looks.entry(v).or_default() += 1,
            OpF::CasFailed(v) => {
                *failed_from.entry(v).or_default() += 1;
                has_failed = true;
            }
            _ => {}
        }
    }
    for &i in part {
        let op = &mut ops[i as usize];
        let Some(v) = target(&op.f) else { continue };
        if v == init || looks.contains_key(&v) || failed_from.contains_key(&v) {
            continue;
        }
        op.f = match op.f {
            OpF::Cas(a, _) => OpF::Cas(a, DEAD),
            _ => OpF::Write(DEAD),
        };
    }
    // Rule 4, to a fixpoint: dropping an info cas may leave its `from`
    // unobserved.
    let mut info_writers: FxHashMap<Val, Vec<u32>> = FxHashMap::default();
    for &i in part {
        let op = &ops[i as usize];
        if op.ret == INF && flags[i as usize] & DROP == 0 {
            if let Some(v) = target(&op.f) {
                info_writers.entry(v).or_default().push(i);
            }
        }
    }
    let mut work: Vec<u32> = info_writers
        .iter()
        .filter(|(v, _)| **v != init && !looks.contains_key(v))
        .flat_map(|(_, ws)| ws.iter().copied())
        .collect();
    while let Some(i) = work.pop() {
        if flags[i as usize] & UNOBSERVED != 0 {
            continue;
        }
        flags[i as usize] |= UNOBSERVED;
        if !has_failed {
            flags[i as usize] |= DROP;
        }
        if let OpF::Cas(a, _) = ops[i as usize].f {
            let n = looks.get_mut(&a).expect("counted above");
            *n -= 1;
            if *n == 0 && a != init {
                looks.remove(&a);
                if let Some(ws) = info_writers.get(&a) {
                    work.extend(ws.iter().copied());
                }
            }
        }
    }
}
