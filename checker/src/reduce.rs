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
//!
//! Append-kv histories get their own exact reductions, argued in
//! [`append`].

pub mod append;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use crate::history::{History, Op, OpF, Val, DEAD, INF, UNKNOWN};
use crate::ModelKind;

/// Never needed (rules 2 and 4 on a key without failed cas).
pub(crate) const DROP: u8 = 1;
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

/// Reduces a register or append-kv history (see the module docs); `None`
/// for other models.
pub fn reduce(history: &History) -> Option<Reduced> {
    let mut ops = history.ops.clone();
    let mut flags = vec![0u8; ops.len()];
    match history.model {
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv => reduce_ops(
            history.init,
            history.keys.len() + 1,
            history.values.len(),
            &mut ops,
            &mut flags,
        ),
        ModelKind::AppendKv => append::reduce_append(history, &mut ops, &mut flags),
        _ => return None,
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

const NONE: u32 = u32::MAX;
const SEVERAL: u32 = u32::MAX - 1;

/// Applies the rules to all keys at once, in a few sequential passes.
/// The tables are indexed by value, shared by the keys: a value written on
/// two keys counts as written by several ops, and what looks at a value on
/// one key counts for every key, which only ever keeps more (the rules need
/// a unique writer, and no look, to apply).
fn reduce_ops(init: Val, slots: usize, values: usize, ops: &mut [Op], flags: &mut [u8]) {
    let slot = |op: &Op| op.key.map_or(slots - 1, |k| (k as usize).min(slots - 1));
    let mut writer = vec![NONE; values];
    let mut looks = vec![0u32; values];
    let mut failed_from = vec![false; values];
    for (i, op) in ops.iter().enumerate() {
        if let Some(v) = target(&op.f).filter(|&v| (v as usize) < values) {
            let w = &mut writer[v as usize];
            *w = if *w == NONE { i as u32 } else { SEVERAL };
        }
        match op.f {
            OpF::Read(v) | OpF::Cas(v, _) if (v as usize) < values => looks[v as usize] += 1,
            OpF::CasFailed(v) if (v as usize) < values => failed_from[v as usize] = true,
            _ => {}
        }
    }
    let unique_writer = |v: Val, key: Option<u32>, ops: &[Op]| {
        if v == init {
            return None;
        }
        let w = *writer.get(v as usize)?;
        (w != NONE && w != SEVERAL && ops[w as usize].key == key).then_some(w)
    };
    let written = |v: Val| v == init || writer.get(v as usize).is_some_and(|&w| w != NONE);
    // Rules 2 and 1 (reads bound their writer), and the failed cas per key.
    let mut has_failed = vec![false; slots];
    let mut cas: Vec<Reverse<(u64, u32)>> = Vec::new();
    for i in 0..ops.len() {
        let op = &ops[i];
        match op.f {
            OpF::CasFailed(x) if !written(x) => flags[i] |= DROP,
            OpF::CasFailed(_) => has_failed[slot(op)] = true,
            OpF::Read(UNKNOWN) => flags[i] |= DROP,
            OpF::Read(v) if op.ret != INF => {
                if let Some(w) = unique_writer(v, op.key, ops) {
                    let r = op.ret;
                    let w = &mut ops[w as usize];
                    w.ret = w.ret.min(r);
                }
            }
            OpF::Cas(..) if op.ret != INF => cas.push(Reverse((op.ret, i as u32))),
            _ => {}
        }
    }
    // Rule 1 along cas chains, earliest bound first.
    let mut heap = BinaryHeap::from(cas);
    while let Some(Reverse((r, c))) = heap.pop() {
        if r != ops[c as usize].ret {
            continue; // superseded by an earlier bound
        }
        let OpF::Cas(a, _) = ops[c as usize].f else {
            continue;
        };
        let Some(w) = unique_writer(a, ops[c as usize].key, ops) else {
            continue;
        };
        if r < ops[w as usize].ret {
            ops[w as usize].ret = r;
            if matches!(ops[w as usize].f, OpF::Cas(..)) {
                heap.push(Reverse((r, w)));
            }
        }
    }
    // Rule 3, and the info writers for rule 4.
    let looked = |looks: &[u32], v: Val| looks.get(v as usize).is_some_and(|&n| n > 0);
    let mut info_writers: Vec<(Val, u32)> = Vec::new();
    for (i, op) in ops.iter_mut().enumerate() {
        let Some(v) = target(&op.f) else { continue };
        let seen =
            v == init || looked(&looks, v) || failed_from.get(v as usize).copied().unwrap_or(true);
        if !seen {
            op.f = match op.f {
                OpF::Cas(a, _) => OpF::Cas(a, DEAD),
                _ => OpF::Write(DEAD),
            };
        }
        if op.ret == INF {
            info_writers.push((target(&op.f).unwrap_or(DEAD), i as u32));
        }
    }
    // Rule 4, to a fixpoint: dropping an info cas may leave its `from`
    // unobserved.
    info_writers.sort_unstable();
    let writers_of = |v: Val| {
        let a = info_writers.partition_point(|x| x.0 < v);
        let b = info_writers.partition_point(|x| x.0 <= v);
        &info_writers[a..b]
    };
    let mut work: Vec<u32> = info_writers
        .iter()
        .filter(|(v, _)| *v != init && !looked(&looks, *v))
        .map(|&(_, i)| i)
        .collect();
    while let Some(i) = work.pop() {
        if flags[i as usize] & UNOBSERVED != 0 {
            continue;
        }
        flags[i as usize] |= UNOBSERVED;
        if !has_failed[slot(&ops[i as usize])] {
            flags[i as usize] |= DROP;
        }
        if let OpF::Cas(a, _) = ops[i as usize].f {
            if let Some(n) = looks.get_mut(a as usize) {
                *n -= 1;
                if *n == 0 && a != init {
                    work.extend(writers_of(a).iter().map(|x| x.1));
                }
            }
        }
    }
}
