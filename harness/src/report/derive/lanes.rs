//! The timeline's lanes, aggregated at pixel resolution while the history
//! streams by: for every lane and outcome, which pixel columns some op
//! covers, and where the first open op's dashed tail begins. That is all
//! the overview draws, and it costs a few hundred bytes per lane however
//! many ops a lane holds.
//!
//! A lane is a process while there are at most [`MAX_LANES`] of them.
//! Past that (a worker whose op ended `info` goes on as a new process, so
//! long runs have thousands), processes fold into worker lanes,
//! `process mod concurrency`, the Jepsen convention; coverage is a union, so
//! folding what was already drawn per process loses nothing.

use std::collections::BTreeMap;

use formats::history::Process;

use super::ops::{process_label, Op, OpOutcome};

/// The most processes drawn one lane each; more are folded into workers.
pub const MAX_LANES: usize = 32;

/// Maps run time to the overview's pixel columns, `0..cols`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Columns {
    pub end_ns: i64,
    pub cols: usize,
}

impl Columns {
    pub fn new(end_ns: i64, cols: usize) -> Columns {
        Columns {
            end_ns: end_ns.max(1),
            cols: cols.max(1),
        }
    }

    /// The (fractional) column of time `t`, clamped to the plot.
    pub fn x(&self, t: i64) -> f64 {
        (t as f64 / self.end_ns as f64 * self.cols as f64).clamp(0.0, self.cols as f64)
    }

    /// The column holding time `t`.
    pub fn col(&self, t: i64) -> usize {
        (self.x(t) as usize).min(self.cols - 1)
    }
}

/// A fixed-size set of columns.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnSet {
    words: Vec<u64>,
    cols: usize,
}

impl ColumnSet {
    pub fn new(cols: usize) -> ColumnSet {
        ColumnSet {
            words: vec![0; cols.div_ceil(64)],
            cols,
        }
    }

    pub fn insert_range(&mut self, from: usize, to: usize) {
        for c in from..=to.min(self.cols - 1) {
            self.words[c / 64] |= 1 << (c % 64);
        }
    }

    pub fn contains(&self, c: usize) -> bool {
        c < self.cols && self.words[c / 64] & (1 << (c % 64)) != 0
    }

    pub fn union(&mut self, other: &ColumnSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// Runs of covered columns as `[first, last]`, a gap of one column
    /// bridged (what 1 px of white between two bars would show anyway).
    pub fn runs(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for c in (0..self.cols).filter(|&c| self.contains(c)) {
            match out.last_mut() {
                Some(last) if c <= last.1 + 2 => last.1 = c,
                _ => out.push((c, c)),
            }
        }
        out
    }
}

/// One lane: covered columns per outcome and the start of its tail.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneCoverage {
    /// Indexed by [`OpOutcome::code`].
    pub outcomes: [ColumnSet; 4],
    /// Column where the earliest open op's dashed tail starts: open ops stay
    /// open to the end of the run, so their tails overlap from there on.
    pub tail_from: Option<f64>,
}

impl LaneCoverage {
    fn new(cols: usize) -> LaneCoverage {
        LaneCoverage {
            outcomes: std::array::from_fn(|_| ColumnSet::new(cols)),
            tail_from: None,
        }
    }

    fn add(&mut self, op: &Op, scale: &Columns) {
        let x0 = scale.x(op.invoke_ns);
        let x1 = scale.x(op.solid_end_ns()).max(x0);
        self.outcomes[op.outcome.code() as usize].insert_range(
            scale.col(op.invoke_ns),
            x1.min(scale.cols as f64 - 1.0) as usize,
        );
        if op.outcome.is_open() {
            self.tail_from = Some(self.tail_from.map_or(x1, |t| t.min(x1)));
        }
    }

    fn union(&mut self, other: &LaneCoverage) {
        for (a, b) in self.outcomes.iter_mut().zip(&other.outcomes) {
            a.union(b);
        }
        self.tail_from = match (self.tail_from, other.tail_from) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Covered runs of one outcome.
    pub fn runs(&self, outcome: OpOutcome) -> Vec<(usize, usize)> {
        self.outcomes[outcome.code() as usize].runs()
    }
}

/// The lanes being built during the history pass.
#[derive(Debug)]
pub struct LaneBuilder {
    scale: Columns,
    concurrency: Option<u64>,
    max_lanes: usize,
    per_process: BTreeMap<Process, LaneCoverage>,
    /// Set once folded: worker lanes, then "other" for named processes.
    workers: Option<Vec<LaneCoverage>>,
    max_client: Option<u64>,
}

impl LaneBuilder {
    pub fn new(scale: Columns, concurrency: Option<u64>, max_lanes: usize) -> LaneBuilder {
        LaneBuilder {
            scale,
            concurrency,
            max_lanes,
            per_process: BTreeMap::new(),
            workers: None,
            max_client: None,
        }
    }

    fn worker_count(&self) -> u64 {
        self.concurrency
            .filter(|c| *c > 0)
            .map_or(self.max_lanes as u64, |c| c.min(256))
    }

    fn fold(&mut self) {
        let n = self.worker_count();
        let mut workers = vec![LaneCoverage::new(self.scale.cols); n as usize + 1];
        for (p, cov) in std::mem::take(&mut self.per_process) {
            workers[worker_of(&p, n)].union(&cov);
        }
        self.workers = Some(workers);
    }

    /// Draws one finished op in its lane.
    pub fn add(&mut self, op: &Op) {
        if let Some(c) = op.process.client() {
            self.max_client = Some(self.max_client.map_or(c, |m| m.max(c)));
        }
        if self.workers.is_none()
            && !self.per_process.contains_key(&op.process)
            && self.per_process.len() >= self.max_lanes
        {
            self.fold();
        }
        let cols = self.scale.cols;
        let lane = match &mut self.workers {
            Some(w) => {
                let n = w.len() as u64 - 1;
                &mut w[worker_of(&op.process, n)]
            }
            None => self
                .per_process
                .entry(op.process.clone())
                .or_insert_with(|| LaneCoverage::new(cols)),
        };
        lane.add(op, &self.scale);
    }

    pub fn finish(self) -> Lanes {
        match self.workers {
            None => {
                let processes: Vec<Process> = self.per_process.keys().cloned().collect();
                Lanes {
                    labels: processes.iter().map(process_label).collect(),
                    coverage: self.per_process.into_values().collect(),
                    map: LaneMap::PerProcess(processes),
                    max_client: self.max_client,
                }
            }
            Some(mut workers) => {
                let n = workers.len() - 1;
                let mut labels: Vec<String> = (0..n).map(|w| format!("w{w}")).collect();
                let other = &workers[n];
                if other.outcomes.iter().all(|s| s.runs().is_empty()) && other.tail_from.is_none() {
                    workers.pop();
                } else {
                    labels.push("other".into());
                }
                Lanes {
                    labels,
                    coverage: workers,
                    map: LaneMap::Workers(n as u64),
                    max_client: self.max_client,
                }
            }
        }
    }
}

/// The worker lane of a process among `n` workers; lane `n` is "other".
fn worker_of(p: &Process, n: u64) -> usize {
    match p {
        Process::Client(c) => (c % n) as usize,
        Process::Nemesis | Process::Named(_) => n as usize,
    }
}

/// Which lane a process is drawn in.
#[derive(Debug, Clone, PartialEq)]
pub enum LaneMap {
    /// One lane per process, in this order.
    PerProcess(Vec<Process>),
    /// Folded: client `p` in lane `p mod n`, others in lane `n`.
    Workers(u64),
}

/// The finished lanes.
#[derive(Debug, Clone, PartialEq)]
pub struct Lanes {
    pub labels: Vec<String>,
    pub coverage: Vec<LaneCoverage>,
    pub map: LaneMap,
    /// The highest client process number seen.
    pub max_client: Option<u64>,
}

impl Default for Lanes {
    fn default() -> Self {
        Lanes {
            labels: Vec::new(),
            coverage: Vec::new(),
            map: LaneMap::PerProcess(Vec::new()),
            max_client: None,
        }
    }
}

impl Lanes {
    pub fn folded(&self) -> bool {
        matches!(self.map, LaneMap::Workers(_))
    }

    /// The lane of a process, if it has one.
    pub fn lane_of(&self, p: &Process) -> Option<usize> {
        match &self.map {
            LaneMap::PerProcess(ps) => ps.binary_search(p).ok(),
            LaneMap::Workers(n) => Some(worker_of(p, *n)).filter(|l| *l < self.labels.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::ops::tests::{ev, pair_all};
    use super::*;
    use serde_json::{json, Value};

    fn lanes_of(events: &[formats::history::Event], concurrency: Option<u64>) -> Lanes {
        let (ops, _) = pair_all(events);
        let mut b = LaneBuilder::new(Columns::new(1000, 100), concurrency, MAX_LANES);
        ops.iter().for_each(|op| b.add(op));
        b.finish()
    }

    #[test]
    fn lanes_are_one_per_process_sorted_numerically() {
        let lanes = lanes_of(
            &[
                ev(0, 1, json!(10), "invoke", "read", Value::Null),
                ev(1, 2, json!(2), "invoke", "read", Value::Null),
                ev(2, 3, json!(2), "ok", "read", Value::Null),
                ev(3, 4, json!(2), "invoke", "read", Value::Null),
            ],
            None,
        );
        assert_eq!(lanes.labels, vec!["p2", "p10"]);
        assert_eq!(lanes.lane_of(&Process::Client(10)), Some(1));
        assert!(!lanes.folded());
    }

    #[test]
    fn many_processes_fold_into_worker_lanes_by_concurrency_without_losing_coverage() {
        let mut events = Vec::new();
        for p in 0..200i64 {
            events.push(ev(
                p as u64 * 2,
                p * 5,
                json!(p),
                "invoke",
                "write",
                json!(p),
            ));
            events.push(ev(
                p as u64 * 2 + 1,
                p * 5 + 2,
                json!(p),
                "info",
                "write",
                json!(p),
            ));
        }
        let lanes = lanes_of(&events, Some(5));
        assert!(lanes.folded());
        assert_eq!(lanes.labels, vec!["w0", "w1", "w2", "w3", "w4"]);
        assert_eq!(lanes.lane_of(&Process::Client(7)), Some(2));
        // Process 3 (drawn before folding) and 198 (after) both land in w3.
        let info = &lanes.coverage[3].outcomes[OpOutcome::Info.code() as usize];
        assert!(info.contains(1) && info.contains(99), "{:?}", info.runs());
        assert!((lanes.coverage[3].tail_from.unwrap() - 1.7).abs() < 1e-9);
    }

    #[test]
    fn coverage_marks_columns_and_bridges_one_column_gaps() {
        let mut s = ColumnSet::new(20);
        s.insert_range(2, 3);
        s.insert_range(5, 5);
        s.insert_range(9, 30);
        assert_eq!(s.runs(), vec![(2, 5), (9, 19)]);
    }

    #[test]
    fn a_rare_failure_among_dense_ok_ops_keeps_its_own_column() {
        let mut events = Vec::new();
        for i in 0..1000i64 {
            let ty = if i == 500 { "fail" } else { "ok" };
            events.push(ev(
                2 * i as u64,
                i * 10,
                json!(1),
                "invoke",
                "read",
                Value::Null,
            ));
            events.push(ev(
                2 * i as u64 + 1,
                i * 10 + 9,
                json!(1),
                ty,
                "read",
                Value::Null,
            ));
        }
        let (ops, _) = pair_all(&events);
        let mut b = LaneBuilder::new(Columns::new(10_000, 100), None, MAX_LANES);
        ops.iter().for_each(|op| b.add(op));
        let lanes = b.finish();
        assert_eq!(lanes.coverage[0].runs(OpOutcome::Ok), vec![(0, 99)]);
        assert_eq!(lanes.coverage[0].runs(OpOutcome::Fail), vec![(50, 50)]);
    }
}
