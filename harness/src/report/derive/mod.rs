//! Stage two of a report: from events to what the page draws. Everything
//! here is pure (no files) and takes its input one event at a time, so the
//! history streams through in one pass and memory holds only aggregates:
//! pixel columns per lane, occupied latency cells, throughput bins,
//! histograms, fault bands, leader intervals, the counterexample's ops.

pub mod counterexample;
pub mod faults;
pub mod lanes;
pub mod leaders;
pub mod ops;
pub mod plots;

use std::path::PathBuf;

use formats::history::{Event, EventType, Process};
use serde_json::Value;

use crate::store::RunResults;

use counterexample::named_ops;
use faults::{build_bands, Band, Marker};
use lanes::{Columns, LaneBuilder, Lanes, MAX_LANES};
use leaders::{LeaderSource, LeaderSpan};
use ops::{event_time, Op, Pairer};
use plots::{LatencyScatter, OpTable, Throughput};

/// Throughput bins across the run, about.
pub const THROUGHPUT_BINS: usize = 200;

/// A Raft-safety violation event placed on the leader lanes.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceMark {
    pub node: Option<String>,
    pub time_ns: i64,
    pub label: String,
}

/// What the history pass aggregates.
#[derive(Debug)]
pub struct HistoryAggregates {
    pub run_end_ns: i64,
    /// Client invokes.
    pub ops: u64,
    /// Op types, sorted.
    pub fs: Vec<String>,
    pub lanes: Lanes,
    pub bands: Vec<Band>,
    pub markers: Vec<Marker>,
    pub scatter: LatencyScatter,
    pub throughput: Throughput,
    pub table: OpTable,
    /// The counterexample's named ops found in the history.
    pub named: Vec<Op>,
    /// The longest time from an op's invoke to its completion (ns): how far
    /// before a window an op overlapping it may start.
    pub max_solid_ns: i64,
    pub pairer_notes: Vec<String>,
}

/// Consumes the history, one event at a time.
pub struct Aggregator {
    run_end_ns: i64,
    pairer: Pairer,
    lanes: LaneBuilder,
    scatter_cols: Columns,
    scatter: LatencyScatter,
    throughput: Throughput,
    table: OpTable,
    nemesis: Vec<(i64, String, Value)>,
    wanted: Vec<u64>,
    named: Vec<Op>,
    max_solid_ns: i64,
    ops: u64,
    max_time: i64,
}

impl Aggregator {
    /// `scale` maps the run (its end must be known: the history's last
    /// event) to the overview's columns; `concurrency` folds lanes; `named`
    /// are the counterexample's ops to keep whole.
    pub fn new(scale: Columns, concurrency: Option<u64>, named: Vec<u64>) -> Aggregator {
        Aggregator {
            run_end_ns: scale.end_ns,
            pairer: Pairer::default(),
            lanes: LaneBuilder::new(scale, concurrency, MAX_LANES),
            scatter_cols: LatencyScatter::columns(&scale),
            scatter: LatencyScatter::default(),
            throughput: Throughput::new(scale.end_ns, THROUGHPUT_BINS),
            table: OpTable::default(),
            nemesis: Vec::new(),
            wanted: named,
            named: Vec::new(),
            max_solid_ns: 0,
            ops: 0,
            max_time: 0,
        }
    }

    /// Takes the next history event; `sink` gets every finished op (for the
    /// detail view's files).
    pub fn event(&mut self, ev: &Event, sink: &mut dyn FnMut(&Op)) {
        let t = event_time(ev);
        self.max_time = self.max_time.max(t);
        if ev.process == Process::Nemesis {
            // Faults are logged as `info` when they took effect; an `invoke`
            // (if a harness writes one) is only the intent and a `fail` did
            // not happen.
            if matches!(ev.kind, EventType::Info | EventType::Ok) {
                self.nemesis.push((t, ev.f.clone(), ev.value.clone()));
            }
            return;
        }
        if ev.kind == EventType::Invoke {
            self.ops += 1;
        }
        if let Some(op) = self.pairer.event(ev) {
            self.op(op, sink);
        }
    }

    fn op(&mut self, op: Op, sink: &mut dyn FnMut(&Op)) {
        self.lanes.add(&op);
        self.scatter.add(&op, &self.scatter_cols);
        self.throughput.add(&op);
        self.table.add(&op);
        self.max_solid_ns = self.max_solid_ns.max(op.solid_end_ns() - op.invoke_ns);
        sink(&op);
        if self.wanted.binary_search(&op.index).is_ok() {
            self.named.push(op);
        }
    }

    /// Ends the pass: open ops become pending, faults become bands.
    pub fn finish(mut self, sink: &mut dyn FnMut(&Op)) -> HistoryAggregates {
        let mut left = Vec::new();
        self.pairer.finish(|op| left.push(op));
        for op in left {
            self.op(op, sink);
        }
        let mut pairer_notes = Vec::new();
        self.pairer.notes(&mut pairer_notes);
        let (bands, markers) = build_bands(&self.nemesis);
        let mut fs: Vec<String> = self.table.counts.keys().cloned().collect();
        fs.sort();
        self.named.sort_by_key(|o| o.index);
        HistoryAggregates {
            run_end_ns: self.run_end_ns.max(self.max_time),
            ops: self.ops,
            fs,
            lanes: self.lanes.finish(),
            bands,
            markers,
            scatter: self.scatter,
            throughput: self.throughput,
            table: self.table,
            named: self.named,
            max_solid_ns: self.max_solid_ns,
            pairer_notes,
        }
    }
}

/// The counterexample as the page shows it.
#[derive(Debug, Clone, Default)]
pub struct CounterexampleView {
    /// Every op the checker named, found in the history or not.
    pub named: Vec<u64>,
    /// The op no order can explain.
    pub op: Option<u64>,
    pub key: Option<String>,
    /// The named ops found in the history.
    pub named_ops: Vec<Op>,
    pub window: Option<(i64, i64)>,
    /// Ops of the window (all of them if `complete`), in invoke order.
    pub window_ops: Vec<Op>,
    pub complete: bool,
}

impl CounterexampleView {
    /// The counterexample named in `results`, if any.
    pub fn named_in(results: Option<&RunResults>) -> Option<CounterexampleView> {
        let cex = counterexample::counterexample(results)?;
        Some(CounterexampleView {
            named: named_ops(cex),
            op: cex.op,
            key: cex.key.clone(),
            ..CounterexampleView::default()
        })
    }
}

/// One file of ops for the detail view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    /// Earliest and latest solid end (completion, or invoke of an op that
    /// never completed) of its ops, ns.
    pub end_min: i64,
    pub end_max: i64,
    /// Earliest invoke of its ops, ns.
    pub invoke_min: i64,
    pub ops: u32,
}

/// Where the leader lanes come from and what they hold.
#[derive(Debug, Clone, Default)]
pub struct LeaderLanes {
    pub source: Option<LeaderSource>,
    /// One row per node, sorted.
    pub nodes: Vec<String>,
    pub spans: Vec<LeaderSpan>,
}

/// Everything the page draws, with times relative to the run start.
#[derive(Debug)]
pub struct RunModel {
    pub dir: PathBuf,
    pub test: Option<Value>,
    pub results: Option<RunResults>,
    /// Human sentences about what is missing or odd in the folder.
    pub notes: Vec<String>,
    pub history: HistoryAggregates,
    pub leaders: LeaderLanes,
    pub trace_marks: Vec<TraceMark>,
    pub counterexample: Option<CounterexampleView>,
    /// The detail view's op files, in order, and the op types they name by
    /// position.
    pub chunks: Vec<ChunkMeta>,
    pub chunk_fs: Vec<String>,
}

impl RunModel {
    pub fn run_end_ns(&self) -> i64 {
        self.history.run_end_ns
    }
}

/// Raft-safety violations that carry a time, to mark on the leader lanes.
pub fn safety_marks(results: Option<&RunResults>, start_unix_ns: Option<i64>) -> Vec<TraceMark> {
    let Some(raft) = results
        .and_then(|r| r.checkers.as_ref())
        .and_then(|c| c.raft_safety.as_ref())
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for v in &raft.violations {
        let kind = v.kind.as_str();
        for e in &v.events {
            let Some(t) = e.get("time").and_then(Value::as_i64) else {
                continue;
            };
            // Trace times are Unix ns; history-like times are already relative.
            let rel = match start_unix_ns {
                Some(s) if t > s / 2 => t - s,
                _ => t,
            };
            out.push(TraceMark {
                node: e.get("node").map(faults::node_name),
                time_ns: rel,
                label: kind.to_string(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::ops::tests::ev;
    use super::*;
    use serde_json::json;

    fn aggregate(events: &[Event], end: i64, named: Vec<u64>) -> (HistoryAggregates, Vec<Op>) {
        let mut a = Aggregator::new(Columns::new(end, 100), None, named);
        let mut sunk = Vec::new();
        for e in events {
            a.event(e, &mut |op| sunk.push(op.clone()));
        }
        (a.finish(&mut |op| sunk.push(op.clone())), sunk)
    }

    #[test]
    fn nemesis_invokes_and_failures_are_not_faults() {
        let events: Vec<Event> = [
            json!({"index": 0, "time": 5, "process": "nemesis", "type": "invoke", "f": "kill", "value": [1]}),
            json!({"index": 1, "time": 6, "process": "nemesis", "type": "info", "f": "kill", "value": [1]}),
            json!({"index": 2, "time": 7, "process": "nemesis", "type": "fail", "f": "pause", "value": [2]}),
        ]
        .into_iter()
        .map(|v| Event::from_json(v, 0).unwrap())
        .collect();
        let (h, sunk) = aggregate(&events, 7, vec![]);
        assert_eq!(h.bands.len(), 1);
        assert_eq!(h.bands[0].start_ns, 6);
        assert_eq!(h.ops, 0);
        assert!(sunk.is_empty());
    }

    #[test]
    fn every_op_reaches_the_sink_once_and_named_ops_are_kept() {
        let events = vec![
            ev(0, 10, json!(1), "invoke", "write", json!("a")),
            ev(1, 20, json!(2), "invoke", "read", Value::Null),
            ev(2, 30, json!(2), "ok", "read", json!("a")),
            ev(3, 40, json!(1), "info", "write", json!("a")),
            ev(4, 50, json!(3), "invoke", "read", Value::Null),
        ];
        let (h, sunk) = aggregate(&events, 50, vec![0, 4]);
        let mut idx: Vec<u64> = sunk.iter().map(|o| o.index).collect();
        idx.sort_unstable();
        assert_eq!(idx, vec![0, 1, 4]);
        assert_eq!(h.ops, 3);
        assert_eq!(
            h.named.iter().map(|o| o.index).collect::<Vec<_>>(),
            vec![0, 4]
        );
        assert_eq!(h.max_solid_ns, 30, "the info op waited 30 ns");
        assert_eq!(h.fs, vec!["read", "write"]);
        assert_eq!(h.table.counts["read"], [1, 0, 0, 1]);
        assert_eq!(h.scatter.points, 2, "ok and info ops, not the pending one");
        assert_eq!(
            h.throughput
                .bins
                .iter()
                .map(|b| b[0] + b[1] + b[2])
                .sum::<u32>(),
            2
        );
        assert!(h.pairer_notes[0].contains("never completed"));
    }

    #[test]
    fn safety_marks_are_placed_relative_to_the_run_start() {
        let results: RunResults = serde_json::from_value(json!({"checkers": {"raft_safety": {
            "valid": false, "nodes": 3, "events": 9, "violations": [
            {"kind": "two-leaders", "message": "", "events": [{"time": 1_000_500, "node": 2}, {"node": 3}]}
        ]}}}))
        .unwrap();
        let marks = safety_marks(Some(&results), Some(1_000_000));
        assert_eq!(
            marks,
            vec![TraceMark {
                node: Some("n2".into()),
                time_ns: 500,
                label: "two-leaders".into()
            }]
        );
    }
}
