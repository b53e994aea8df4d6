//! Exact reductions of an append-kv history before the search (the
//! append-kv half of [`super`]): the reduced history is
//! linearizable iff the original is.
//!
//! Why they are needed: the `append` workload ends many puts and appends
//! `info` under faults (a timed-out cas of the client-side read + cas). An
//! `info` op may take effect at any time after its call or never, so the
//! search keeps every one of them pending to the end of the part: no
//! quiescent cut ever closes them, each window's configurations multiply by
//! the subsets of pending ops placed, and 60 s of faults exhaust the memo
//! budget. Most of them are decided by the reads, which show the key's
//! whole value.
//!
//! They apply per key. A key is *eligible* when its ops are reads, puts and
//! appends only; every put and append carries a non-empty string; no two
//! puts and no two appends carry the same string, and no put carries the
//! initial value; and every read's value (a string; `null` is the empty
//! string, as in [`crate::model`]) can be split in at most one way into a
//! *base* (the initial value or a put's string) followed by append strings
//! (counted allowing an append to repeat, which can only count more). That
//! split is the read's *decomposition*; an op in it is *observed* by the
//! read. The argument, for any linearization of the key: the key's value at
//! a read is the string of the last put placed before it (or the initial
//! value if none) followed by the appends placed since, in order, each op
//! at most once. That is a split of the read's value, so it is *the*
//! decomposition: the read's decomposition is exactly the last base placed
//! before it and the appends placed since.
//!
//! 1. **Effective return.** An op observed by a completed read that returned
//!    at `r` is placed before that read in every linearization, so before
//!    `r`: its return becomes `min(its return, r)`. For an `info` op this
//!    turns "at any time, or never" into "before `r`": it must have taken
//!    effect. A linearization of the reduced history respects every original
//!    real-time constraint (returns only moved earlier), so it is one of the
//!    original.
//! 2. **Unobserved `info` ops.** An `info` put or append that no read (not
//!    even an incomplete one with a recorded value) observes is dropped.
//!    Take a linearization that places it, at `p`. Every read placed after
//!    `p` and before the next put (or the end) would see the op in its
//!    value's decomposition, so there is no such read. Remove the op: only
//!    the values between `p` and that next put change, nobody reads them,
//!    and puts and appends are legal in every state; every other read sees
//!    the same value as before. So the history without the op is
//!    linearizable iff the original is.
//! 3. **Reads whose value was not recorded** are legal in every state and
//!    change nothing, so they are dropped (as for registers).
//!
//! A key that is not eligible gets rule 3 only. A read with no
//! decomposition cannot be satisfied in either history, so whatever the
//! rules do to the other ops, both are invalid; the search reports it.

use rustc_hash::FxHashMap;

use super::DROP;
use crate::history::{History, Op, OpF, INF, UNKNOWN};

const NONE: u32 = u32::MAX;

/// Applies the rules to every key of `history`, writing the tightened
/// returns into `ops` (a copy of the history's ops) and the dropped ops
/// into `flags`.
pub fn reduce_append(history: &History, ops: &mut [Op], flags: &mut [u8]) {
    let slots = history.keys.len() + 1;
    let mut by_key: Vec<Vec<u32>> = vec![Vec::new(); slots];
    for (i, op) in history.ops.iter().enumerate() {
        if matches!(op.f, OpF::Read(UNKNOWN)) {
            flags[i] |= DROP;
            continue;
        }
        let slot = op.key.map_or(slots - 1, |k| (k as usize).min(slots - 1));
        by_key[slot].push(i as u32);
    }
    for part in &by_key {
        if let Some(bounds) = observations(history, part) {
            for (&i, &(observed, bound)) in part.iter().zip(&bounds) {
                if !observed {
                    continue;
                }
                let op = &mut ops[i as usize];
                op.ret = op.ret.min(bound);
            }
            for (&i, &(observed, _)) in part.iter().zip(&bounds) {
                let op = &history.ops[i as usize];
                let mutation = matches!(op.f, OpF::Write(_) | OpF::Append(_));
                if mutation && op.ret == INF && !observed {
                    flags[i as usize] |= DROP;
                }
            }
        }
    }
}

/// For an eligible key, per op of `part`: whether some read observes it and
/// the earliest return of a completed read that does (`INF` if none);
/// `None` when the key is not eligible.
fn observations(history: &History, part: &[u32]) -> Option<Vec<(bool, u64)>> {
    let values = &*history.values;
    let text = |v| values.as_str(v).unwrap_or("").as_bytes();
    let init = text(history.init);
    let mut bases: FxHashMap<&[u8], u32> = FxHashMap::default();
    let mut appends: FxHashMap<&[u8], u32> = FxHashMap::default();
    bases.insert(init, NONE);
    let mut reads: Vec<u32> = Vec::new();
    for (j, &i) in part.iter().enumerate() {
        let (table, v) = match history.ops[i as usize].f {
            OpF::Read(_) => {
                reads.push(i);
                continue;
            }
            OpF::Write(v) => (&mut bases, v),
            OpF::Append(v) => (&mut appends, v),
            _ => return None,
        };
        let s = text(v);
        if s.is_empty() || table.insert(s, j as u32).is_some() {
            return None; // empty, a duplicate, or a put of the initial value
        }
    }
    let lens = |t: &FxHashMap<&[u8], u32>| {
        let mut l: Vec<usize> = t.keys().map(|s| s.len()).collect();
        l.sort_unstable();
        l.dedup();
        l
    };
    let (base_lens, append_lens) = (lens(&bases), lens(&appends));
    let mut out = vec![(false, INF); part.len()];
    // Per position of the read's string: number of splits (capped at 2),
    // and for a single one the op ending there and where it starts.
    let mut ways: Vec<u8> = Vec::new();
    let mut back: Vec<(u32, usize)> = Vec::new();
    for r in reads {
        let op = &history.ops[r as usize];
        let OpF::Read(v) = op.f else { continue };
        let s = text(v);
        let n = s.len();
        ways.clear();
        ways.resize(n + 1, 0);
        back.clear();
        back.resize(n + 1, (NONE, usize::MAX));
        for &l in base_lens.iter().take_while(|&&l| l <= n) {
            if let Some(&b) = bases.get(&s[..l]) {
                ways[l] = (ways[l] + 1).min(2);
                back[l] = (b, usize::MAX);
            }
        }
        for i in 0..n {
            if ways[i] == 0 {
                continue;
            }
            for &l in append_lens.iter().take_while(|&&l| i + l <= n) {
                if let Some(&a) = appends.get(&s[i..i + l]) {
                    ways[i + l] = (ways[i + l] + ways[i]).min(2);
                    back[i + l] = (a, i);
                }
            }
        }
        match ways[n] {
            0 => continue, // no decomposition: the search finds the read impossible
            1 => {}
            _ => return None, // ambiguous: not eligible
        }
        let mut at = n;
        loop {
            let (j, from) = back[at];
            if j != NONE {
                let o = &mut out[j as usize];
                o.0 = true;
                if op.ret != INF {
                    o.1 = o.1.min(op.ret);
                }
            }
            if from == usize::MAX {
                break;
            }
            at = from;
        }
    }
    Some(out)
}
