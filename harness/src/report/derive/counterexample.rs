//! The counterexample view: which ops the checker named, the time window
//! around them, and which ops of that window are drawn one by one (and
//! embedded in the page, so the detail view opens on it without loading
//! anything). The named ops are caught during the history pass; the window
//! is known only after it, and its ops are then read again from the part
//! of the history that holds them.

use std::collections::{BTreeSet, BinaryHeap};

use checker::Counterexample;

use crate::store::RunResults;

use super::ops::Op;

/// Ops of the counterexample window kept at most (the detail view draws
/// at most this many anyway).
pub const WINDOW_MAX_OPS: usize = 4000;

/// The checker's counterexample, if the run is invalid.
pub fn counterexample(results: Option<&RunResults>) -> Option<&Counterexample> {
    results?.counterexample.as_ref()
}

/// Invoke indices the checker named in its counterexample: the window,
/// the op it could not place, and the witnesses its explanation relies on
/// (such as the write that overwrote the value a stale read returned).
pub fn named_ops(cex: &Counterexample) -> Vec<u64> {
    let mut out = BTreeSet::new();
    out.extend(cex.ops.iter().copied());
    out.extend(cex.witnesses.iter().copied());
    out.extend(cex.op);
    out.into_iter().collect()
}

/// The window around the named ops: from the first invoke to the last
/// completion, padded by a quarter on each side (at least 1 ms).
pub fn window(named: &[Op], run_end_ns: i64) -> Option<(i64, i64)> {
    let a = named.iter().map(|o| o.invoke_ns).min()?;
    let b = named.iter().map(Op::solid_end_ns).max()?.max(a + 1);
    let pad = ((b - a) / 4).max(1_000_000);
    Some(((a - pad).max(0), (b + pad).min(run_end_ns.max(b))))
}

/// Does the op show in window `[a, b]`? Open ops are drawn while the client
/// waited for them (their dashed tail says they stay open); an info op
/// from long before the window would only add an empty lane.
pub fn overlaps(op: &Op, a: i64, b: i64) -> bool {
    op.invoke_ns <= b && op.solid_end_ns() >= a
}

/// Rank of an op for the drawing when the window holds too many: named ops
/// first, then ops on the counterexample's key, then nearest the start.
type Rank = (bool, bool, i64, u64);

struct Ranked(Rank, Op);

impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

/// Keeps the best `max` ops of a window as they stream by.
pub struct WindowSelection {
    a: i64,
    b: i64,
    named: BTreeSet<u64>,
    key: Option<String>,
    max: usize,
    heap: BinaryHeap<Ranked>,
    /// Ops in the window, kept or not.
    pub seen: u64,
}

impl WindowSelection {
    pub fn new(
        (a, b): (i64, i64),
        named: &[u64],
        key: Option<String>,
        max: usize,
    ) -> WindowSelection {
        WindowSelection {
            a,
            b,
            named: named.iter().copied().collect(),
            key,
            max,
            heap: BinaryHeap::new(),
            seen: 0,
        }
    }

    pub fn add(&mut self, op: Op) {
        let named = self.named.contains(&op.index);
        if !overlaps(&op, self.a, self.b) && !named {
            return;
        }
        self.seen += 1;
        let rank = (
            !named,
            self.key.is_some() && op.key != self.key,
            (op.invoke_ns - self.a).abs(),
            op.index,
        );
        self.heap.push(Ranked(rank, op));
        if self.heap.len() > self.max {
            self.heap.pop();
        }
    }

    /// The kept ops in invoke order, and whether they are all of the window.
    pub fn finish(self) -> (Vec<Op>, bool) {
        let complete = self.seen as usize == self.heap.len();
        let mut ops: Vec<Op> = self.heap.into_iter().map(|r| r.1).collect();
        ops.sort_by_key(|o| (o.invoke_ns, o.index));
        (ops, complete)
    }
}

#[cfg(test)]
mod tests {
    use super::super::ops::tests::{ev, pair_all};
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn named_ops_include_the_window_the_stuck_op_and_the_witnesses() {
        let valid: RunResults =
            serde_json::from_value(json!({"valid": true, "counterexample": null})).unwrap();
        assert!(counterexample(Some(&valid)).is_none());
        let r: RunResults = serde_json::from_value(json!({
            "valid": false,
            "counterexample": {"key": null, "ops": [1151, 1161], "op": 1161, "prefix": [],
                "states": [], "explanation": "", "witnesses": [1033, 1123]}
        }))
        .unwrap();
        let cex = counterexample(Some(&r)).unwrap();
        assert_eq!(named_ops(cex), vec![1033, 1123, 1151, 1161]);
    }

    fn ops(spans: &[(i64, i64)]) -> Vec<Op> {
        let mut events = Vec::new();
        for (i, &(a, b)) in spans.iter().enumerate() {
            events.push(ev(2 * i as u64, a, json!(i), "invoke", "read", Value::Null));
            events.push(ev(2 * i as u64 + 1, b, json!(i), "ok", "read", Value::Null));
        }
        let mut ops = pair_all(&events).0;
        ops.sort_by_key(|o| o.index);
        ops
    }

    #[test]
    fn the_window_pads_the_named_ops_by_a_quarter_within_the_run() {
        let ms = 1_000_000;
        let named = ops(&[(100 * ms, 120 * ms), (140 * ms, 180 * ms)]);
        assert_eq!(window(&named, 1000 * ms), Some((80 * ms, 200 * ms)));
        let short = ops(&[(0, 10)]);
        assert_eq!(
            window(&short, 5_000_000),
            Some((0, 1_000_010)),
            "at least 1 ms of padding"
        );
        assert_eq!(window(&short, 5), Some((0, 10)), "never past the run's end");
        assert_eq!(window(&[], 5), None);
    }

    #[test]
    fn a_crowded_window_keeps_the_named_ops_and_those_nearest_its_start() {
        // 100 ops of 5 ns every 10 ns; window [200, 600]; op #1 is named
        // though outside it.
        let spans: Vec<(i64, i64)> = (0..100).map(|i| (i * 10, i * 10 + 5)).collect();
        let all = ops(&spans);
        let mut sel = WindowSelection::new((200, 600), &[2], None, 10);
        all.into_iter().for_each(|o| sel.add(o));
        assert_eq!(
            sel.seen, 42,
            "41 ops overlap the window, plus the named one"
        );
        let (kept, complete) = sel.finish();
        assert!(!complete);
        let idx: Vec<u64> = kept.iter().map(|o| o.index).collect();
        assert_eq!(idx, vec![2, 40, 42, 44, 46, 48, 50, 52, 54, 56]);
        assert!(overlaps(&kept[1], 200, 600) && !overlaps(&kept[0], 200, 600));
    }
}
