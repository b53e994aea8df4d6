//! Aggregation that keeps a 100k-op report small without hiding anything a
//! person could see: everything is reduced to what a pixel can show
//! (segments merged at pixel resolution, scatter points deduplicated per
//! pixel cell, throughput per time bin), while rare outcomes are never
//! merged away under common ones.

use std::collections::{BTreeMap, HashSet};

use super::model::{Op, Outcome};

/// Nearest-rank percentile of sorted values (`q` in 0..=1).
pub fn percentile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// One row of the latency table.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRow {
    pub f: String,
    pub outcome: Outcome,
    pub count: usize,
    /// p50, p90, p99, p99.9, max in nanoseconds.
    pub p50: i64,
    pub p90: i64,
    pub p99: i64,
    pub p999: i64,
    pub max: i64,
}

/// Latency percentiles per op type for ok and fail ops (info ops have no
/// latency: they have not finished).
pub fn latency_table(ops: &[Op]) -> Vec<LatencyRow> {
    let mut by: BTreeMap<(String, Outcome), Vec<i64>> = BTreeMap::new();
    for op in ops {
        if let Some(l) = op.latency_ns() {
            by.entry((op.f.clone(), op.outcome)).or_default().push(l);
        }
    }
    by.into_iter()
        .map(|((f, outcome), mut v)| {
            v.sort_unstable();
            let p = |q| percentile(&v, q).unwrap_or(0);
            LatencyRow {
                f,
                outcome,
                count: v.len(),
                p50: p(0.5),
                p90: p(0.9),
                p99: p(0.99),
                p999: p(0.999),
                max: *v.last().unwrap_or(&0),
            }
        })
        .collect()
}

/// Counts per op type and outcome.
pub fn counts_by_f(ops: &[Op]) -> BTreeMap<String, [usize; 4]> {
    let mut out: BTreeMap<String, [usize; 4]> = BTreeMap::new();
    for op in ops {
        out.entry(op.f.clone()).or_default()[op.outcome.code() as usize] += 1;
    }
    out
}

/// A "nice" step (1, 2 or 5 times a power of ten) near `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let exp = raw.log10().floor();
    let base = 10f64.powf(exp);
    let m = raw / base;
    let n = if m <= 1.0 {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    };
    n * base
}

/// Completions per time bin, by outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    pub bin_ns: i64,
    /// `[ok, fail, info]` completions in each bin.
    pub bins: Vec<[u32; 3]>,
}

/// Throughput over time with about `target_bins` bins of a nice width.
pub fn throughput(ops: &[Op], run_end_ns: i64, target_bins: usize) -> Throughput {
    let span = run_end_ns.max(1) as f64;
    let bin_ns = (nice_step(span / target_bins.max(1) as f64) as i64).max(1_000_000);
    let n = (run_end_ns / bin_ns + 1) as usize;
    let mut bins = vec![[0u32; 3]; n];
    for op in ops {
        let Some(c) = op.complete_ns else { continue };
        let slot = match op.outcome {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
            Outcome::Pending => continue,
        };
        let b = ((c.max(0) / bin_ns) as usize).min(n - 1);
        bins[b][slot] += 1;
    }
    Throughput { bin_ns, bins }
}

/// A horizontal drawn piece of a lane, in pixels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    pub x0: f64,
    pub x1: f64,
    pub outcome: Outcome,
    /// How many ops it stands for.
    pub ops: u32,
}

/// Merges a lane's ops into segments at pixel resolution: consecutive ops
/// with the same outcome whose pixel spans touch become one segment. Every
/// op gets at least `min_px` so a 50 µs failure among 10 s of reads stays
/// visible. `open_solid_end` decides where info/pending ops end: their
/// observed completion (the dashed tail to the end is drawn separately).
pub fn lane_segments(ops: &[&Op], x_of: impl Fn(i64) -> f64, min_px: f64) -> Vec<Segment> {
    let mut by_outcome: BTreeMap<Outcome, Vec<(f64, f64)>> = BTreeMap::new();
    for op in ops {
        let end = op.complete_ns.unwrap_or(op.invoke_ns);
        let x0 = x_of(op.invoke_ns);
        let x1 = x_of(end).max(x0 + min_px);
        by_outcome.entry(op.outcome).or_default().push((x0, x1));
    }
    let mut out = Vec::new();
    for (outcome, mut spans) in by_outcome {
        spans.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut cur: Option<Segment> = None;
        for (x0, x1) in spans {
            match &mut cur {
                Some(s) if x0 <= s.x1 + 1.0 => {
                    s.x1 = s.x1.max(x1);
                    s.ops += 1;
                }
                _ => {
                    if let Some(s) = cur.take() {
                        out.push(s);
                    }
                    cur = Some(Segment {
                        x0,
                        x1,
                        outcome,
                        ops: 1,
                    });
                }
            }
        }
        out.extend(cur);
    }
    out
}

/// Keeps one point per `cell`-pixel square per series: what a scatter
/// plot of 100k points can show anyway, at a fraction of the size.
pub fn dedupe_points<K: Clone + Eq + std::hash::Hash>(
    points: impl IntoIterator<Item = (K, f64, f64)>,
    cell: f64,
) -> Vec<(K, f64, f64)> {
    let mut seen: HashSet<(K, i64, i64)> = HashSet::new();
    let mut out = Vec::new();
    for (k, x, y) in points {
        let c = (
            k.clone(),
            (x / cell).floor() as i64,
            (y / cell).floor() as i64,
        );
        if seen.insert(c) {
            out.push((k, x, y));
        }
    }
    out
}

/// Which ops to embed for the page's detail view when a run has more than
/// `budget` ops: whole `priority` windows first (the counterexample, the
/// edges of faults), in the given order and only if they fit whole, then
/// the run from its start until the budget is spent. Returns the chosen
/// positions (in `ops` order) and the time intervals whose ops are all in,
/// merged, so the page can say when a window is incomplete.
pub fn embed_selection(
    ops: &[Op],
    priority: &[(i64, i64)],
    budget: usize,
) -> (Vec<usize>, Vec<(i64, i64)>) {
    if ops.len() <= budget {
        return ((0..ops.len()).collect(), vec![(i64::MIN, i64::MAX)]);
    }
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| ops[i].invoke_ns);
    let mut chosen = vec![false; ops.len()];
    let mut n = 0usize;
    let mut covered = Vec::new();
    for &(a, b) in priority {
        let lo = order.partition_point(|&i| ops[i].invoke_ns < a);
        let hi = order.partition_point(|&i| ops[i].invoke_ns <= b).max(lo);
        let need = order[lo..hi].iter().filter(|&&i| !chosen[i]).count();
        if n + need > budget {
            continue;
        }
        for &i in &order[lo..hi] {
            chosen[i] = true;
        }
        n += need;
        covered.push((a, b));
    }
    let mut fill_end = None;
    for &i in &order {
        if n >= budget {
            break;
        }
        if !chosen[i] {
            chosen[i] = true;
            n += 1;
        }
        fill_end = Some(ops[i].invoke_ns);
    }
    if let Some(e) = fill_end {
        covered.push((i64::MIN, e));
    }
    covered.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::new();
    for (a, b) in covered {
        match merged.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    let positions = (0..ops.len()).filter(|&i| chosen[i]).collect();
    (positions, merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::history::Process;
    use serde_json::Value;

    fn op(index: u64, f: &str, start: i64, end: Option<i64>, outcome: Outcome) -> Op {
        Op {
            index,
            process: Process::Client(1),
            f: f.into(),
            key: None,
            invoke_ns: start,
            complete_ns: end,
            outcome,
            invoke_value: Value::Null,
            complete_value: Value::Null,
            error: None,
            node: None,
        }
    }

    #[test]
    fn percentile_is_nearest_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&v, 1.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn latency_table_separates_outcomes_and_skips_info() {
        let ops = vec![
            op(0, "read", 0, Some(10), Outcome::Ok),
            op(1, "read", 0, Some(30), Outcome::Ok),
            op(2, "read", 0, Some(1000), Outcome::Fail),
            op(3, "write", 0, Some(5000), Outcome::Info),
        ];
        let t = latency_table(&ops);
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].f.as_str(), t[0].outcome, t[0].count),
            ("read", Outcome::Ok, 2)
        );
        assert_eq!((t[0].p50, t[0].max), (10, 30));
        assert_eq!(
            (t[1].outcome, t[1].count, t[1].p99),
            (Outcome::Fail, 1, 1000)
        );
    }

    #[test]
    fn nice_steps_are_1_2_5() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(1.5), 2.0);
        assert_eq!(nice_step(3.0), 5.0);
        assert_eq!(nice_step(7.0), 10.0);
        assert_eq!(nice_step(230.0), 500.0);
    }

    #[test]
    fn throughput_counts_completions_per_bin_by_outcome() {
        let s = 1_000_000_000;
        let ops = vec![
            op(0, "read", 0, Some(s / 2), Outcome::Ok),
            op(1, "read", 0, Some(s + 1), Outcome::Fail),
            op(2, "read", 0, Some(s + 2), Outcome::Info),
            op(3, "read", 0, None, Outcome::Pending),
            op(4, "read", 0, Some(s + 3), Outcome::Ok),
        ];
        let t = throughput(&ops, 2 * s, 2);
        assert_eq!(t.bin_ns, s);
        assert_eq!(t.bins, vec![[1, 0, 0], [1, 1, 1], [0, 0, 0]]);
    }

    #[test]
    fn dense_ops_merge_into_one_segment_but_rare_failures_stay_visible() {
        // 1000 back-to-back ok ops over 100 px with one fail in the middle.
        let mut ops = Vec::new();
        for i in 0..1000 {
            let outcome = if i == 500 { Outcome::Fail } else { Outcome::Ok };
            ops.push(op(
                i,
                "read",
                i as i64 * 10,
                Some(i as i64 * 10 + 9),
                outcome,
            ));
        }
        let refs: Vec<&Op> = ops.iter().collect();
        let segs = lane_segments(&refs, |t| t as f64 / 100.0, 1.0);
        let ok: Vec<&Segment> = segs.iter().filter(|s| s.outcome == Outcome::Ok).collect();
        let fail: Vec<&Segment> = segs.iter().filter(|s| s.outcome == Outcome::Fail).collect();
        assert_eq!(ok.len(), 1, "{segs:?}");
        assert_eq!(ok[0].ops, 999);
        assert_eq!(fail.len(), 1);
        assert!((fail[0].x0 - 50.0).abs() < 1e-9);
    }

    #[test]
    fn segments_split_at_visible_gaps() {
        let ops = [
            op(0, "read", 0, Some(100), Outcome::Ok),
            op(1, "read", 1000, Some(1100), Outcome::Ok),
        ];
        let refs: Vec<&Op> = ops.iter().collect();
        let segs = lane_segments(&refs, |t| t as f64 / 10.0, 1.0);
        assert_eq!(segs.len(), 2);
    }

    #[test]
    fn small_runs_embed_every_op() {
        let ops: Vec<Op> = (0..10)
            .map(|i| op(i, "read", i as i64, Some(i as i64 + 1), Outcome::Ok))
            .collect();
        let (pos, covered) = embed_selection(&ops, &[], 10);
        assert_eq!(pos, (0..10).collect::<Vec<_>>());
        assert_eq!(covered, vec![(i64::MIN, i64::MAX)]);
    }

    #[test]
    fn large_runs_embed_priority_windows_then_the_start() {
        // 100 ops at t = 0, 10, 20, …; budget 30.
        let ops: Vec<Op> = (0..100)
            .map(|i| {
                op(
                    i,
                    "read",
                    i as i64 * 10,
                    Some(i as i64 * 10 + 5),
                    Outcome::Ok,
                )
            })
            .collect();
        // Window [500, 590] holds 10 ops; [0, 990] does not fit whole and is skipped.
        let (pos, covered) = embed_selection(&ops, &[(500, 590), (0, 990), (700, 740)], 30);
        assert_eq!(pos.len(), 30);
        assert!(pos.contains(&50) && pos.contains(&59) && pos.contains(&74));
        assert!(!pos.contains(&60) && !pos.contains(&75));
        // 15 priority ops, then the first 15 from the start.
        assert!(pos.contains(&0) && pos.contains(&14) && !pos.contains(&15));
        assert_eq!(covered, vec![(i64::MIN, 140), (500, 590), (700, 740)]);
    }

    #[test]
    fn dedupe_keeps_one_point_per_cell_per_series() {
        let pts = vec![
            ("a", 0.1, 0.1),
            ("a", 0.9, 0.2),
            ("b", 0.5, 0.5),
            ("a", 3.0, 0.1),
        ];
        let out = dedupe_points(pts, 2.0);
        assert_eq!(out, vec![("a", 0.1, 0.1), ("b", 0.5, 0.5), ("a", 3.0, 0.1)]);
    }
}
