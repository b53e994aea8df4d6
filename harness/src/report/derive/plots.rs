//! What the latency and throughput plots and the percentile table draw,
//! aggregated while the ops stream by, in memory that does not grow with
//! the run:
//!
//! - the latency scatter keeps, per series (op type × outcome) and per
//!   2-pixel time column, which of 2,304 log-spaced latency cells (256 per
//!   decade, 1 µs to 1000 s) hold at least one op: a point per occupied
//!   cell is what a scatter of a million points shows anyway;
//! - throughput counts completions per time bin of a nice width;
//! - percentiles come from a [`LatencyHistogram`] per op type and outcome
//!   (within 0.2 % of the exact value, the maximum exact).

use std::collections::BTreeMap;

use crate::stats::LatencyHistogram;

use super::lanes::Columns;
use super::ops::{Op, OpOutcome};

/// Latency cells per decade.
pub const CELLS_PER_DECADE: usize = 256;
/// Decades from 1 µs: 1 µs … 1000 s.
pub const DECADES: usize = 9;
const CELLS: usize = CELLS_PER_DECADE * DECADES;
pub const WORDS: usize = CELLS / 64;
/// The lowest latency drawn: 1 µs (10^3 ns); shorter ones are drawn there.
pub const LOG10_FLOOR: f64 = 3.0;

/// A nice step (1, 2 or 5 times a power of ten) near `raw`.
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

/// The latency cell of `ns`.
pub fn latency_cell(ns: i64) -> usize {
    let l = (ns.max(1) as f64).log10();
    (((l - LOG10_FLOOR) * CELLS_PER_DECADE as f64)
        .floor()
        .max(0.0) as usize)
        .min(CELLS - 1)
}

/// The latency at the middle of a cell, in ns.
pub fn cell_latency(cell: usize) -> f64 {
    10f64.powf(LOG10_FLOOR + (cell as f64 + 0.5) / CELLS_PER_DECADE as f64)
}

/// The scatter plot's occupied cells, per series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatencyScatter {
    /// Per `f`, per outcome ([`OpOutcome::code`]): for each 2-px column, a
    /// bit per latency cell (empty until the series has a point).
    pub series: BTreeMap<String, [Vec<[u64; WORDS]>; 4]>,
    /// Ops drawn (ok, fail and info ops that completed).
    pub points: u64,
    /// Smallest and largest latency drawn (ns), for the axis.
    pub min_ns: i64,
    pub max_ns: i64,
}

impl LatencyScatter {
    /// Columns of the scatter: one per 2 pixels of the overview.
    pub fn columns(scale: &Columns) -> Columns {
        Columns::new(scale.end_ns, scale.cols.div_ceil(2))
    }

    /// Adds an op: ok and fail at their latency, info at the time until the
    /// client gave up; pending ops have none.
    pub fn add(&mut self, op: &Op, cols: &Columns) {
        let l = match op.outcome {
            OpOutcome::Ok | OpOutcome::Fail | OpOutcome::Info => op.observed_ns(),
            OpOutcome::Pending => None,
        };
        let Some(l) = l else { return };
        let l = l.max(1000);
        if self.points == 0 {
            (self.min_ns, self.max_ns) = (l, l);
        }
        self.min_ns = self.min_ns.min(l);
        self.max_ns = self.max_ns.max(l);
        self.points += 1;
        let col = cols.col(op.solid_end_ns());
        if !self.series.contains_key(op.f.as_str()) {
            self.series.insert(op.f.clone(), Default::default());
        }
        let per_outcome = self.series.get_mut(op.f.as_str()).expect("inserted");
        let series = &mut per_outcome[op.outcome.code() as usize];
        if series.is_empty() {
            *series = vec![[0; WORDS]; cols.cols];
        }
        let cell = latency_cell(l);
        series[col][cell / 64] |= 1 << (cell % 64);
    }

    /// The occupied `(column, cell)` pairs of one series, column-major.
    pub fn cells(bits: &[[u64; WORDS]]) -> impl Iterator<Item = (usize, usize)> + '_ {
        bits.iter().enumerate().flat_map(|(col, words)| {
            (0..CELLS)
                .filter(move |c| words[c / 64] & (1 << (c % 64)) != 0)
                .map(move |c| (col, c))
        })
    }
}

/// Completions per time bin, by outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Throughput {
    pub bin_ns: i64,
    /// `[ok, fail, info]` completions in each bin.
    pub bins: Vec<[u32; 3]>,
}

impl Throughput {
    /// About `target_bins` bins of a nice width over `0..=run_end_ns`.
    pub fn new(run_end_ns: i64, target_bins: usize) -> Throughput {
        let span = run_end_ns.max(1) as f64;
        let bin_ns = (nice_step(span / target_bins.max(1) as f64) as i64).max(1_000_000);
        let n = (run_end_ns.max(0) / bin_ns + 1) as usize;
        Throughput {
            bin_ns,
            bins: vec![[0; 3]; n],
        }
    }

    pub fn add(&mut self, op: &Op) {
        let Some(c) = op.complete_ns else { return };
        let slot = match op.outcome {
            OpOutcome::Ok => 0,
            OpOutcome::Fail => 1,
            OpOutcome::Info => 2,
            OpOutcome::Pending => return,
        };
        let b = ((c.max(0) / self.bin_ns) as usize).min(self.bins.len() - 1);
        self.bins[b][slot] += 1;
    }
}

/// One row of the latency table.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyRow {
    pub f: String,
    pub outcome: OpOutcome,
    pub count: u64,
    /// p50, p90, p99, p99.9 (within 0.2 %) and max (exact), in ns.
    pub p50: i64,
    pub p90: i64,
    pub p99: i64,
    pub p999: i64,
    pub max: i64,
}

/// Latency percentiles per op type for ok and fail ops (info ops have no
/// latency: they have not finished), and op counts per type and outcome.
#[derive(Debug, Clone, Default)]
pub struct OpTable {
    /// Per `f`, per outcome ([`OpOutcome::code`]).
    latency: BTreeMap<String, [LatencyHistogram; 4]>,
    /// Per `f`: ops by [`OpOutcome::code`].
    pub counts: BTreeMap<String, [u64; 4]>,
}

impl OpTable {
    pub fn add(&mut self, op: &Op) {
        let o = op.outcome.code() as usize;
        match self.counts.get_mut(op.f.as_str()) {
            Some(c) => c[o] += 1,
            None => {
                let mut c = [0; 4];
                c[o] = 1;
                self.counts.insert(op.f.clone(), c);
            }
        }
        if let Some(l) = op.latency_ns() {
            if !self.latency.contains_key(op.f.as_str()) {
                self.latency.insert(op.f.clone(), Default::default());
            }
            self.latency.get_mut(op.f.as_str()).expect("inserted")[o].record(l as u64);
        }
    }

    pub fn rows(&self) -> Vec<LatencyRow> {
        let mut out = Vec::new();
        for (f, per_outcome) in &self.latency {
            for outcome in OpOutcome::ALL {
                let h = &per_outcome[outcome.code() as usize];
                if h.count() == 0 {
                    continue;
                }
                let p = |q| h.percentile(q).unwrap_or(0) as i64;
                out.push(LatencyRow {
                    f: f.clone(),
                    outcome,
                    count: h.count(),
                    p50: p(0.5),
                    p90: p(0.9),
                    p99: p(0.99),
                    p999: p(0.999),
                    max: h.max() as i64,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::ops::tests::{ev, pair_all};
    use super::*;
    use serde_json::{json, Value};

    fn op(index: u64, f: &str, start: i64, end: Option<i64>, ty: &str) -> Op {
        let mut events = vec![ev(index, start, json!(1), "invoke", f, Value::Null)];
        if let Some(e) = end {
            events.push(ev(index + 1, e, json!(1), ty, f, Value::Null));
        }
        pair_all(&events).0.remove(0)
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
        let mut t = Throughput::new(2 * s, 2);
        for o in [
            op(0, "read", 0, Some(s / 2), "ok"),
            op(2, "read", 0, Some(s + 1), "fail"),
            op(4, "read", 0, Some(s + 2), "info"),
            op(6, "read", 0, None, ""),
            op(8, "read", 0, Some(s + 3), "ok"),
        ] {
            t.add(&o);
        }
        assert_eq!(t.bin_ns, s);
        assert_eq!(t.bins, vec![[1, 0, 0], [1, 1, 1], [0, 0, 0]]);
    }

    #[test]
    fn latency_table_separates_outcomes_and_skips_info() {
        let mut t = OpTable::default();
        for o in [
            op(0, "read", 0, Some(10_000), "ok"),
            op(2, "read", 0, Some(30_000), "ok"),
            op(4, "read", 0, Some(1_000_000), "fail"),
            op(6, "write", 0, Some(5_000_000), "info"),
        ] {
            t.add(&o);
        }
        let rows = t.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].f.as_str(), rows[0].outcome, rows[0].count),
            ("read", OpOutcome::Ok, 2)
        );
        assert_eq!((rows[0].p50, rows[0].max), (10_000, 30_000));
        assert_eq!(
            (rows[1].outcome, rows[1].count, rows[1].p99),
            (OpOutcome::Fail, 1, 1_000_000)
        );
        assert_eq!(t.counts["write"], [0, 0, 1, 0]);
        assert_eq!(t.counts["read"], [2, 1, 0, 0]);
    }

    #[test]
    fn scatter_keeps_one_mark_per_cell_and_series() {
        let cols = Columns::new(1_000_000_000, 10);
        let mut s = LatencyScatter::default();
        // Three ok reads of about 2 ms in the same column, one far slower,
        // and a fail at the same latency: three marks in all.
        for (i, l) in [2_000_000, 2_000_100, 2_000_200, 900_000_000]
            .into_iter()
            .enumerate()
        {
            s.add(&op(2 * i as u64, "read", 0, Some(l), "ok"), &cols);
        }
        s.add(&op(20, "read", 0, Some(2_000_000), "fail"), &cols);
        let marks: usize = s
            .series
            .values()
            .flat_map(|per| per.iter())
            .map(|b| LatencyScatter::cells(b).count())
            .sum();
        assert_eq!(marks, 3);
        assert_eq!((s.points, s.min_ns, s.max_ns), (5, 2_000_000, 900_000_000));
        let c = latency_cell(2_000_000);
        assert!((cell_latency(c) / 2e6 - 1.0).abs() < 0.01);
        assert_eq!(latency_cell(10), 0, "below 1 µs is drawn at 1 µs");
    }
}
