//! The report model: what a run folder says, turned into things a page can
//! draw (paired ops, lanes, fault bands, leader spans) and a list of what is
//! missing. It reads only files, and reads them defensively, because a
//! report is most needed for runs that went wrong: interrupted by Ctrl-C,
//! with a truncated last line, no `results.json` or no traces. The history
//! and the traces are read by `formats` like everywhere else; a line it
//! rejects is skipped and counted here instead of failing the page.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use formats::history::{Event, EventType, Process};
use formats::trace::{Role, TraceKind};
use formats::ReadError;
use serde_json::Value;

use super::ReportError;

/// How an op ended, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// Happened.
    Ok,
    /// Definitely did not happen.
    Fail,
    /// Unknown: may take effect at any later time, so it stays open to the
    /// end of the run.
    Info,
    /// No completion in the history at all (the run was interrupted); the
    /// checker treats it like `Info`, and so do the drawings.
    Pending,
}

impl Outcome {
    /// The CSS class / legend name.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
            Outcome::Pending => "pending",
        }
    }

    /// Ok and fail ops have a real interval; the others stay open.
    pub fn is_open(self) -> bool {
        matches!(self, Outcome::Info | Outcome::Pending)
    }

    /// Small integer used in the page's embedded data.
    pub fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
            Outcome::Pending => 3,
        }
    }
}

/// One client operation: its invoke paired with its completion.
#[derive(Debug, Clone)]
pub struct Op {
    /// `index` of the invoke event: the op's identity everywhere (checker
    /// counterexamples name ops by it).
    pub index: u64,
    pub process: Process,
    pub f: String,
    pub key: Option<String>,
    /// Run-relative nanoseconds.
    pub invoke_ns: i64,
    /// When the completion was observed (also for `info`), if at all.
    pub complete_ns: Option<i64>,
    pub outcome: Outcome,
    pub invoke_value: Value,
    pub complete_value: Value,
    pub error: Option<String>,
    pub node: Option<u64>,
}

impl Op {
    /// Short label for lane headings and tooltips: `p3` for client 3.
    pub fn process_label(&self) -> String {
        process_label(&self.process)
    }

    /// End of the op's interval in the model: its completion for ok/fail,
    /// the end of the run for info and pending ops (they may take effect at
    /// any later time).
    pub fn end_ns(&self, run_end_ns: i64) -> i64 {
        match (self.outcome.is_open(), self.complete_ns) {
            (false, Some(c)) => c,
            _ => run_end_ns.max(self.invoke_ns),
        }
    }

    /// Client-observed latency; only meaningful for ok and fail ops.
    pub fn latency_ns(&self) -> Option<i64> {
        match self.outcome {
            Outcome::Ok | Outcome::Fail => self.complete_ns.map(|c| (c - self.invoke_ns).max(0)),
            _ => None,
        }
    }

    /// Time until the client gave up (info) — drawn but not counted as latency.
    pub fn observed_ns(&self) -> Option<i64> {
        self.complete_ns.map(|c| (c - self.invoke_ns).max(0))
    }

    /// One-line human description, e.g. `#12 p3 cas k2 ["5","9"] → fail (precondition)`.
    pub fn describe(&self) -> String {
        let mut s = format!("#{} {} {}", self.index, self.process_label(), self.f);
        if let Some(k) = &self.key {
            s.push(' ');
            s.push_str(k);
        }
        let inv = short_json(&self.invoke_value, 40);
        if inv != "null" || self.f != "read" {
            s.push(' ');
            s.push_str(&inv);
        }
        s.push_str(" → ");
        s.push_str(self.outcome.name());
        if matches!(self.outcome, Outcome::Ok) && self.f == "read" {
            s.push(' ');
            s.push_str(&short_json(&self.complete_value, 40));
        }
        if let Some(e) = &self.error {
            s.push_str(&format!(" ({e})"));
        }
        s
    }
}

/// `p3` for client 3; other processes by name.
fn process_label(p: &Process) -> String {
    match p {
        Process::Client(n) => format!("p{n}"),
        Process::Nemesis => "nemesis".into(),
        Process::Named(s) => s.clone(),
    }
}

/// Compact JSON text of a value, cut to `max` characters for display.
pub fn short_json(v: &Value, max: usize) -> String {
    let s = match v {
        Value::String(s) => format!("{s:?}"),
        other => other.to_string(),
    };
    if s.chars().count() <= max {
        s
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// Kind of fault, which decides the band's color.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    Kill,
    Pause,
    Partition,
    Member,
    Other,
}

impl FaultKind {
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Partition => "partition",
            FaultKind::Member => "member",
            FaultKind::Other => "other",
        }
    }
}

/// A nemesis interval: from the fault to its undo (or to the end of the run
/// when it was never undone).
#[derive(Debug, Clone)]
pub struct Band {
    pub kind: FaultKind,
    pub label: String,
    /// More than the label holds (a partition's cut links), for tooltips.
    pub detail: String,
    pub start_ns: i64,
    /// `None`: still in force when the history ends.
    pub end_ns: Option<i64>,
    pub nodes: Vec<String>,
}

impl Band {
    pub fn end_or(&self, run_end_ns: i64) -> i64 {
        self.end_ns.unwrap_or(run_end_ns).max(self.start_ns)
    }
}

/// A one-off nemesis event without an undo (membership changes, unknown fs).
#[derive(Debug, Clone)]
pub struct Marker {
    pub time_ns: i64,
    pub label: String,
}

/// One node's leadership in one term, from its trace.
#[derive(Debug, Clone)]
pub struct LeaderSpan {
    pub node: String,
    pub term: Option<u64>,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Still leader when its trace ends.
    pub open: bool,
}

/// A Raft-safety violation event placed on the leader lanes.
#[derive(Debug, Clone)]
pub struct TraceMark {
    pub node: Option<String>,
    pub time_ns: i64,
    pub label: String,
}

/// Which lane each op is drawn in.
#[derive(Debug, Clone, Default)]
pub struct Lanes {
    pub labels: Vec<String>,
    /// Parallel to `RunModel::ops`.
    pub lane_of_op: Vec<u32>,
    /// Processes were folded into worker lanes (too many to draw one each).
    pub folded: bool,
}

/// Everything the page draws, with times relative to the run start.
#[derive(Debug, Clone, Default)]
pub struct RunModel {
    pub dir: PathBuf,
    pub test: Option<Value>,
    pub results: Option<Value>,
    /// Sorted by invoke time (history order).
    pub ops: Vec<Op>,
    pub lanes: Lanes,
    pub bands: Vec<Band>,
    pub markers: Vec<Marker>,
    pub leaders: Vec<LeaderSpan>,
    /// Node names with a trace, sorted.
    pub trace_nodes: Vec<String>,
    pub trace_marks: Vec<TraceMark>,
    pub run_end_ns: i64,
    /// Human sentences about what is missing or odd in the folder.
    pub notes: Vec<String>,
}

/// The most processes drawn one lane each; more are folded into workers.
pub const MAX_LANES: usize = 32;

impl RunModel {
    /// Reads a run folder. Fails only if nothing of a run is there at all.
    pub fn load(dir: &Path) -> Result<RunModel, ReportError> {
        let test_path = dir.join("test.json");
        let hist_path = dir.join("history.jsonl");
        let res_path = dir.join("results.json");
        if !test_path.exists() && !hist_path.exists() && !res_path.exists() {
            return Err(ReportError::NotARunDir(dir.to_path_buf()));
        }
        let mut notes = Vec::new();
        let test = read_json_file(&test_path, "test.json", &mut notes);
        let results = read_json_file(&res_path, "results.json", &mut notes);
        if results.is_none() && res_path.exists() {
            // read_json_file already explained.
        } else if results.is_none() {
            notes.push(
                "results.json is missing: the run did not reach its checkers (interrupted?); \
                 no verdict is shown."
                    .into(),
            );
        }
        let events = if hist_path.exists() {
            let events = read_history(&hist_path, &mut notes)?;
            if events.is_empty() {
                notes.push("history.jsonl is empty: no op or fault was recorded.".into());
            }
            events
        } else {
            notes.push("history.jsonl is missing: no ops to draw.".into());
            Vec::new()
        };
        let mut model = RunModel::from_events(&events, test.as_ref(), &mut notes);
        // Through a `latest` link, the run's own folder name is the stamp.
        model.dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        model.test = test;
        model.results = results;
        if model
            .results
            .as_ref()
            .and_then(|r| r.get("interrupted"))
            .and_then(Value::as_bool)
            == Some(true)
        {
            notes.push(
                "The run was interrupted (Ctrl-C): the history ends early and ops left open count as info."
                    .into(),
            );
        }
        if let Some(err) = model
            .results
            .as_ref()
            .and_then(|r| r.get("error"))
            .and_then(Value::as_str)
        {
            notes.push(format!("The harness reported an error: {err}"));
        }
        let start_unix_ns = model
            .test
            .as_ref()
            .and_then(|t| t.get("start_unix_ns"))
            .and_then(Value::as_i64);
        let traces = read_traces(&dir.join("nodes"), &mut notes)?;
        model.add_traces(&traces, start_unix_ns, &mut notes);
        model.add_safety_marks(start_unix_ns);
        model.notes = notes;
        Ok(model)
    }

    /// Builds ops, lanes and bands from parsed history events.
    pub fn from_events(
        events: &[Event],
        test: Option<&Value>,
        notes: &mut Vec<String>,
    ) -> RunModel {
        let mut ops: Vec<Op> = Vec::new();
        let mut open: HashMap<&Process, usize> = HashMap::new();
        let mut nemesis: Vec<(i64, String, Value)> = Vec::new();
        let mut orphans = 0usize;
        let mut double_invokes = 0usize;
        let mut max_time = 0i64;
        for ev in events {
            let time = ev.time.map_or(0, |t| t as i64);
            max_time = max_time.max(time);
            if ev.process == Process::Nemesis {
                // Faults are logged as `info` when they took effect; an
                // `invoke` (if a harness writes one) is only the intent and a
                // `fail` did not happen.
                if ev.kind == EventType::Info || ev.kind == EventType::Ok {
                    nemesis.push((time, ev.f.clone(), ev.value.clone()));
                }
                continue;
            }
            if ev.kind == EventType::Invoke {
                if open.contains_key(&ev.process) {
                    double_invokes += 1;
                }
                open.insert(&ev.process, ops.len());
                ops.push(Op {
                    index: ev.index,
                    process: ev.process.clone(),
                    f: ev.f.clone(),
                    key: ev.key.clone(),
                    invoke_ns: time,
                    complete_ns: None,
                    outcome: Outcome::Pending,
                    invoke_value: ev.value.clone(),
                    complete_value: Value::Null,
                    error: None,
                    node: ev.node,
                });
                continue;
            }
            let Some(i) = open.remove(&ev.process) else {
                orphans += 1;
                continue;
            };
            let op = &mut ops[i];
            op.complete_ns = Some(time.max(op.invoke_ns));
            op.outcome = match ev.kind {
                EventType::Ok => Outcome::Ok,
                EventType::Fail => Outcome::Fail,
                _ => Outcome::Info,
            };
            op.complete_value = ev.value.clone();
            op.error = ev.error.clone();
            if op.node.is_none() {
                op.node = ev.node;
            }
        }
        if orphans > 0 {
            notes.push(format!(
                "{orphans} completion event(s) had no matching invoke and were ignored."
            ));
        }
        if double_invokes > 0 {
            notes.push(format!(
                "{double_invokes} invoke(s) came while the same process still had an op open; \
                 the earlier op is shown as pending."
            ));
        }
        let pending = ops.iter().filter(|o| o.outcome == Outcome::Pending).count();
        if pending > 0 {
            notes.push(format!(
                "{pending} op(s) never completed in the history (run interrupted?): \
                 shown open to the end, like info ops."
            ));
        }
        let run_end_ns = max_time.max(ops.iter().map(|o| o.invoke_ns).max().unwrap_or(0));
        let concurrency = test
            .and_then(|t| t.get("concurrency"))
            .and_then(Value::as_u64);
        let lanes = assign_lanes(&ops, concurrency, MAX_LANES);
        let (bands, markers) = build_bands(&nemesis);
        RunModel {
            ops,
            lanes,
            bands,
            markers,
            run_end_ns,
            ..RunModel::default()
        }
    }

    /// Adds leader spans from `(node name, role events)` traces.
    pub fn add_traces(
        &mut self,
        traces: &[NodeTrace],
        start_unix_ns: Option<i64>,
        notes: &mut Vec<String>,
    ) {
        if traces.is_empty() {
            notes.push("No node traces (nodes/*/trace.jsonl): the leader lane is empty.".into());
            return;
        }
        let Some(start) = start_unix_ns else {
            notes.push(
                "test.json has no start_unix_ns: trace times cannot be placed on the timeline, \
                 the leader lane is empty."
                    .into(),
            );
            return;
        };
        self.trace_nodes = traces.iter().map(|t| t.node.clone()).collect();
        self.trace_nodes.sort_by_key(|n| node_sort_key(n));
        self.trace_nodes.dedup();
        let mut spans = Vec::new();
        for t in traces {
            let mut roles: Vec<&RoleEvent> = t.roles.iter().collect();
            roles.sort_by_key(|r| r.time_unix_ns);
            for (i, r) in roles.iter().enumerate() {
                if r.role != Role::Leader {
                    continue;
                }
                let start_ns = r.time_unix_ns - start;
                let next = roles[i + 1..]
                    .iter()
                    .find(|n| n.role != Role::Leader || n.term != r.term);
                let kill = self
                    .bands
                    .iter()
                    .filter(|b| matches!(b.kind, FaultKind::Kill) && b.start_ns >= start_ns)
                    .filter(|b| b.nodes.contains(&t.node))
                    .map(|b| b.start_ns)
                    .min();
                let (end_ns, open) = match (next.map(|n| n.time_unix_ns - start), kill) {
                    (Some(a), Some(b)) => (a.min(b), false),
                    (Some(a), None) => (a, false),
                    (None, Some(b)) => (b, false),
                    (None, None) => (self.run_end_ns.max(start_ns), true),
                };
                spans.push(LeaderSpan {
                    node: t.node.clone(),
                    term: Some(r.term),
                    start_ns,
                    end_ns: end_ns.max(start_ns),
                    open,
                });
            }
        }
        spans.sort_by_key(|s| (s.start_ns, node_sort_key(&s.node)));
        self.leaders = spans;
    }

    /// Places Raft-safety violations that carry a time on the leader lanes.
    fn add_safety_marks(&mut self, start_unix_ns: Option<i64>) {
        let Some(violations) = self
            .results
            .as_ref()
            .and_then(|r| r.pointer("/checkers/raft_safety/violations"))
            .and_then(Value::as_array)
        else {
            return;
        };
        for v in violations {
            let kind = v.get("kind").and_then(Value::as_str).unwrap_or("violation");
            let events = v
                .get("events")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            for e in events {
                let Some(t) = e.get("time").and_then(Value::as_i64) else {
                    continue;
                };
                // Trace times are Unix ns; history-like times are already relative.
                let rel = match start_unix_ns {
                    Some(s) if t > s / 2 => t - s,
                    _ => t,
                };
                self.trace_marks.push(TraceMark {
                    node: e.get("node").map(node_name),
                    time_ns: rel,
                    label: kind.to_string(),
                });
            }
        }
    }

    /// Invoke indices the checker named in its counterexample: the window,
    /// the op it could not place, and the witnesses its explanation relies on
    /// (such as the write that overwrote the value a stale read returned).
    pub fn counterexample_ops(&self) -> Vec<u64> {
        let Some(cex) = self.counterexample() else {
            return Vec::new();
        };
        let mut out: Vec<u64> = Vec::new();
        for field in ["ops", "witnesses"] {
            if let Some(ops) = cex.get(field).and_then(Value::as_array) {
                out.extend(ops.iter().filter_map(Value::as_u64));
            }
        }
        if let Some(op) = cex.get("op").and_then(Value::as_u64) {
            out.push(op);
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The checker's counterexample object, if the run is invalid.
    pub fn counterexample(&self) -> Option<&Value> {
        self.results
            .as_ref()
            .and_then(|r| r.get("counterexample"))
            .filter(|c| c.is_object())
    }

    /// Position in `ops` of each invoke index.
    pub fn op_positions(&self) -> HashMap<u64, usize> {
        self.ops
            .iter()
            .enumerate()
            .map(|(i, o)| (o.index, i))
            .collect()
    }
}

/// Node names are `n1`, `n2`…: numbers get the prefix, strings stay.
pub fn node_name(v: &Value) -> String {
    match v {
        Value::Number(n) => format!("n{n}"),
        Value::String(s) if s.parse::<i64>().is_ok() => format!("n{s}"),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sorts `n2` before `n10`.
pub fn node_sort_key(n: &str) -> (u64, String) {
    let digits: String = n.chars().filter(|c| c.is_ascii_digit()).collect();
    (digits.parse().unwrap_or(u64::MAX), n.to_string())
}

/// Nodes named by a nemesis value: `2`, `[1, 3]`, `"n2"`, `{"nodes": […]}` or `{"node": 2}`.
pub fn nodes_of(v: &Value) -> Vec<String> {
    let mut out = match v {
        Value::Number(_) | Value::String(_) => vec![node_name(v)],
        Value::Array(a) => a.iter().flat_map(nodes_of).collect(),
        Value::Object(o) => ["nodes", "node", "targets", "id"]
            .iter()
            .filter_map(|k| o.get(*k))
            .flat_map(nodes_of)
            .collect(),
        _ => Vec::new(),
    };
    out.sort_by_key(|n| node_sort_key(n));
    out.dedup();
    out
}

/// `("partition [n1 n2] [n3 n4 n5]", "stall: n1→n3 n1→n4 …")`: the groups
/// for the label (or the shape when there are none), the links that do not
/// pass for the tooltip.
fn partition_label(v: &Value) -> (String, String) {
    let mut label = String::from("partition");
    let groups = v.get("groups").and_then(Value::as_array).or(v.as_array());
    match groups {
        Some(groups) if !groups.is_empty() => {
            for g in groups {
                label.push_str(&format!(" [{}]", nodes_of(g).join(" ")));
            }
        }
        _ => {
            if let Some(shape) = v.get("shape").and_then(Value::as_str) {
                label.push(' ');
                label.push_str(shape);
            }
        }
    }
    let mut detail = Vec::new();
    if let Some(shape) = v.get("shape").and_then(Value::as_str) {
        detail.push(format!("shape {shape}"));
    }
    if let Some(links) = v.get("links").and_then(Value::as_array) {
        let mut modes: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for l in links {
            let Some(a) = l.as_array() else { continue };
            if a.len() < 3 {
                continue;
            }
            let mode = a[2].as_str().unwrap_or("?").to_string();
            if mode == "pass" {
                continue;
            }
            modes.entry(mode).or_default().push(format!(
                "{}→{}",
                node_name(&a[0]),
                node_name(&a[1])
            ));
        }
        for (mode, ls) in modes {
            detail.push(format!("{mode}: {}", ls.join(" ")));
        }
    }
    (label, detail.join("; "))
}

/// Pairs fault events with their undo into bands; one-off events become markers.
pub fn build_bands(events: &[(i64, String, Value)]) -> (Vec<Band>, Vec<Marker>) {
    let mut bands: Vec<Band> = Vec::new();
    let mut markers = Vec::new();
    // Open bands with the nodes still faulty in each.
    let mut open: Vec<(usize, Vec<String>)> = Vec::new();
    for (time, f, value) in events {
        let (opens, kind) = match f.as_str() {
            "kill" | "crash" => (Some(true), FaultKind::Kill),
            "start" | "restart" | "recover" => (Some(false), FaultKind::Kill),
            "pause" | "stop" => (Some(true), FaultKind::Pause),
            "resume" | "cont" => (Some(false), FaultKind::Pause),
            "start-partition" | "partition" => (Some(true), FaultKind::Partition),
            "stop-partition" | "heal" => (Some(false), FaultKind::Partition),
            // A removed member is out of the cluster until it is added back.
            "remove-member" => (Some(true), FaultKind::Member),
            "add-member" => (Some(false), FaultKind::Member),
            _ => (None, FaultKind::Other),
        };
        let nodes = nodes_of(value);
        // A step that failed says so in its value: the fault did not happen
        // (or an undo did not undo it), so no band opens or closes.
        if let Some(err) = value.get("error").filter(|e| !e.is_null()) {
            let what = if nodes.is_empty() {
                f.clone()
            } else {
                format!("{f} {}", nodes.join(","))
            };
            markers.push(Marker {
                time_ns: *time,
                label: format!("{what} failed: {}", short_json(err, 60)),
            });
            continue;
        }
        match opens {
            Some(true) => {
                let (label, detail) = match kind {
                    FaultKind::Partition => partition_label(value),
                    FaultKind::Member => (format!("removed {}", nodes.join(",")), String::new()),
                    _ if nodes.is_empty() => (f.clone(), String::new()),
                    _ => (
                        format!("{} {}", kind.name(), nodes.join(",")),
                        String::new(),
                    ),
                };
                // `--nemesis-targets primaries` aimed it at the leader.
                let label = if value.get("primary") == Some(&Value::Bool(true)) {
                    format!("{label} (leader)")
                } else {
                    label
                };
                open.push((bands.len(), nodes.clone()));
                bands.push(Band {
                    kind,
                    label,
                    detail,
                    start_ns: *time,
                    end_ns: None,
                    nodes,
                });
            }
            Some(false) => {
                // Close the open bands of this kind once every node they
                // faulted is restored (all of them when the undo names no
                // nodes, and always for a heal).
                open.retain_mut(|(i, remaining)| {
                    let b = &mut bands[*i];
                    if b.kind != kind {
                        return true;
                    }
                    if kind == FaultKind::Partition || nodes.is_empty() {
                        remaining.clear();
                    } else {
                        remaining.retain(|n| !nodes.contains(n));
                    }
                    if remaining.is_empty() {
                        b.end_ns = Some(*time);
                        return false;
                    }
                    true
                });
            }
            None => {
                let label = if nodes.is_empty() {
                    f.clone()
                } else {
                    format!("{f} {}", nodes.join(","))
                };
                markers.push(Marker {
                    time_ns: *time,
                    label,
                });
            }
        }
    }
    for b in &mut bands {
        if b.end_ns.is_none() {
            b.label.push_str(" (not undone)");
        }
    }
    (bands, markers)
}

/// Greedy interval coloring: the row of each `(start, end)` extent such
/// that extents in one row do not overlap (used to stack fault labels).
pub fn assign_rows(extents: &[(f64, f64)]) -> Vec<usize> {
    let mut row_end: Vec<f64> = Vec::new();
    let mut order: Vec<usize> = (0..extents.len()).collect();
    order.sort_by(|&a, &b| extents[a].0.total_cmp(&extents[b].0));
    let mut rows = vec![0; extents.len()];
    for i in order {
        let (start, end) = extents[i];
        let row = match row_end.iter().position(|&e| e <= start) {
            Some(r) => r,
            None => {
                row_end.push(f64::NEG_INFINITY);
                row_end.len() - 1
            }
        };
        row_end[row] = end;
        rows[i] = row;
    }
    rows
}

/// One lane per process while that stays readable; otherwise fold numeric
/// processes into worker lanes (`process mod concurrency`, the Jepsen
/// convention: a worker whose op ended `info` continues as process `p + c`).
pub fn assign_lanes(ops: &[Op], concurrency: Option<u64>, max_lanes: usize) -> Lanes {
    let mut procs: Vec<&Process> = ops.iter().map(|o| &o.process).collect();
    procs.sort();
    procs.dedup();
    if procs.len() <= max_lanes {
        let index: HashMap<&Process, u32> = procs
            .iter()
            .enumerate()
            .map(|(i, p)| (*p, i as u32))
            .collect();
        return Lanes {
            labels: procs.iter().map(|p| process_label(p)).collect(),
            lane_of_op: ops.iter().map(|o| index[&o.process]).collect(),
            folded: false,
        };
    }
    let workers = concurrency
        .filter(|c| *c > 0)
        .map_or(max_lanes as u64, |c| c.min(256));
    let mut labels: Vec<String> = (0..workers).map(|w| format!("w{w}")).collect();
    let other = workers as u32;
    let mut has_other = false;
    let lane_of_op = ops
        .iter()
        .map(|o| match o.process {
            Process::Client(p) => (p % workers) as u32,
            Process::Nemesis | Process::Named(_) => {
                has_other = true;
                other
            }
        })
        .collect();
    if has_other {
        labels.push("other".into());
    }
    Lanes {
        labels,
        lane_of_op,
        folded: true,
    }
}

/// Reads one JSON file; a missing or broken file becomes a note.
fn read_json_file(path: &Path, name: &str, notes: &mut Vec<String>) -> Option<Value> {
    match fs::read_to_string(path) {
        Ok(text) => match serde_json::from_str(&text) {
            Ok(v) => Some(v),
            Err(e) => {
                notes.push(format!("{name} could not be parsed ({e}); it is ignored."));
                None
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if name != "results.json" {
                notes.push(format!("{name} is missing."));
            }
            None
        }
        Err(e) => {
            notes.push(format!("{name} could not be read ({e})."));
            None
        }
    }
}

/// Reads `history.jsonl`; lines `formats` rejects (typically a truncated
/// last line after Ctrl-C) are skipped and counted.
fn read_history(path: &Path, notes: &mut Vec<String>) -> Result<Vec<Event>, ReportError> {
    let mut reader = formats::history::Reader::open(path).map_err(|e| io_error(path, e))?;
    let mut events = Vec::new();
    let mut bad = 0usize;
    for item in reader.by_ref() {
        match item {
            Ok(ev) => events.push(ev.event),
            Err(ReadError::Malformed { .. }) => bad += 1,
            Err(e) => return Err(io_error(path, e)),
        }
    }
    bad += usize::from(reader.torn_line().is_some());
    if bad > 0 {
        notes.push(format!(
            "{bad} line(s) of history.jsonl could not be parsed and were skipped (truncated by an interrupt?)."
        ));
    }
    Ok(events)
}

fn io_error(path: &Path, e: ReadError) -> ReportError {
    let source = match e {
        ReadError::Io { source, .. } => source,
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, other.to_string()),
    };
    ReportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A role change from a node trace.
#[derive(Debug, Clone)]
pub struct RoleEvent {
    pub time_unix_ns: i64,
    pub term: u64,
    pub role: Role,
}

/// What the report needs from one node's trace.
#[derive(Debug, Clone)]
pub struct NodeTrace {
    pub node: String,
    pub roles: Vec<RoleEvent>,
}

/// Reads the role events of every `nodes/*/trace.jsonl`; unreadable lines
/// are skipped and counted.
fn read_traces(nodes_dir: &Path, notes: &mut Vec<String>) -> Result<Vec<NodeTrace>, ReportError> {
    let Ok(entries) = fs::read_dir(nodes_dir) else {
        return Ok(Vec::new());
    };
    let mut dirs: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    dirs.sort();
    let mut out = Vec::new();
    for d in dirs {
        let path = d.join(formats::trace::FILE_NAME);
        let Ok(mut reader) = formats::trace::Reader::open(&path) else {
            continue;
        };
        let dir_name = d
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut node = dir_name.clone();
        let mut roles = Vec::new();
        let mut bad = 0usize;
        for item in reader.by_ref() {
            let e = match item {
                Ok(e) => e.event,
                Err(ReadError::Malformed { .. }) => {
                    bad += 1;
                    continue;
                }
                Err(e) => return Err(io_error(&path, e)),
            };
            if let TraceKind::Role { term, role, .. } = e.kind {
                node = format!("n{}", e.node);
                roles.push(RoleEvent {
                    time_unix_ns: e.time as i64,
                    term,
                    role,
                });
            }
        }
        bad += usize::from(reader.torn_line().is_some());
        if bad > 0 {
            notes.push(format!(
                "{bad} unreadable line(s) in nodes/{dir_name}/trace.jsonl were skipped."
            ));
        }
        out.push(NodeTrace { node, roles });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(index: u64, time: i64, process: Value, ty: &str, f: &str, value: Value) -> Event {
        read(
            json!({"index": index, "time": time, "process": process, "type": ty, "f": f, "key": "k1", "value": value}),
        )
    }

    /// An event as `formats` reads it from a line.
    fn read(v: Value) -> Event {
        Event::from_json(v, 0).expect("a history event")
    }

    #[test]
    fn invoke_and_completion_pair_by_process() {
        let events = vec![
            ev(0, 10, json!(1), "invoke", "write", json!("a")),
            ev(1, 20, json!(2), "invoke", "read", Value::Null),
            ev(2, 30, json!(2), "ok", "read", json!("a")),
            ev(3, 40, json!(1), "fail", "write", json!("a")),
        ];
        let mut notes = Vec::new();
        let m = RunModel::from_events(&events, None, &mut notes);
        assert_eq!(m.ops.len(), 2);
        assert_eq!(m.ops[0].index, 0);
        assert_eq!(m.ops[0].outcome, Outcome::Fail);
        assert_eq!(m.ops[0].complete_ns, Some(40));
        assert_eq!(m.ops[1].index, 1);
        assert_eq!(m.ops[1].outcome, Outcome::Ok);
        assert_eq!(m.ops[1].latency_ns(), Some(10));
        assert_eq!(m.ops[1].complete_value, json!("a"));
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn info_and_pending_ops_stay_open_to_the_end_of_the_run() {
        let events = vec![
            ev(0, 10, json!(1), "invoke", "write", json!("a")),
            ev(1, 20, json!(1), "info", "write", json!("a")),
            ev(2, 30, json!(11), "invoke", "write", json!("b")),
            ev(3, 50, json!(2), "invoke", "read", Value::Null),
            ev(4, 90, json!(2), "ok", "read", json!("a")),
        ];
        let mut notes = Vec::new();
        let m = RunModel::from_events(&events, None, &mut notes);
        assert_eq!(m.run_end_ns, 90);
        let info = &m.ops[0];
        assert_eq!(info.outcome, Outcome::Info);
        assert_eq!(info.end_ns(m.run_end_ns), 90);
        assert_eq!(info.latency_ns(), None);
        assert_eq!(info.observed_ns(), Some(10));
        let pending = &m.ops[1];
        assert_eq!(pending.outcome, Outcome::Pending);
        assert_eq!(pending.end_ns(m.run_end_ns), 90);
        assert!(
            notes.iter().any(|n| n.contains("never completed")),
            "{notes:?}"
        );
    }

    #[test]
    fn completion_without_invoke_is_reported_not_drawn() {
        let events = vec![ev(0, 10, json!(1), "ok", "write", json!("a"))];
        let mut notes = Vec::new();
        let m = RunModel::from_events(&events, None, &mut notes);
        assert!(m.ops.is_empty());
        assert!(notes[0].contains("no matching invoke"));
    }

    #[test]
    fn lanes_are_one_per_process_sorted_numerically() {
        let events = vec![
            ev(0, 1, json!(10), "invoke", "read", Value::Null),
            ev(1, 2, json!(2), "invoke", "read", Value::Null),
            ev(2, 3, json!(2), "ok", "read", Value::Null),
            ev(3, 4, json!(2), "invoke", "read", Value::Null),
        ];
        let mut notes = Vec::new();
        let m = RunModel::from_events(&events, None, &mut notes);
        assert_eq!(m.lanes.labels, vec!["p2", "p10"]);
        assert_eq!(m.lanes.lane_of_op, vec![1, 0, 0]);
        assert!(!m.lanes.folded);
    }

    #[test]
    fn many_processes_fold_into_worker_lanes_by_concurrency() {
        let mut events = Vec::new();
        for p in 0..200i64 {
            events.push(ev(
                p as u64 * 2,
                p * 10,
                json!(p),
                "invoke",
                "write",
                json!(p),
            ));
            events.push(ev(
                p as u64 * 2 + 1,
                p * 10 + 5,
                json!(p),
                "info",
                "write",
                json!(p),
            ));
        }
        let test = json!({"concurrency": 5});
        let mut notes = Vec::new();
        let m = RunModel::from_events(&events, Some(&test), &mut notes);
        assert!(m.lanes.folded);
        assert_eq!(m.lanes.labels.len(), 5);
        assert_eq!(m.lanes.lane_of_op[7], 2);
        assert_eq!(m.lanes.lane_of_op[199], 4);
    }

    fn nem(time: i64, f: &str, value: Value) -> (i64, String, Value) {
        (time, f.to_string(), value)
    }

    #[test]
    fn kill_and_start_make_one_band_per_fault_with_node_labels() {
        let (bands, markers) = build_bands(&[
            nem(100, "kill", json!([2])),
            nem(150, "pause", json!({"nodes": [1, 3]})),
            nem(200, "start", json!([2])),
            nem(220, "resume", json!([1])),
            nem(260, "resume", json!([3])),
            nem(300, "rebalance", json!(4)),
            nem(400, "kill", json!(5)),
        ]);
        assert_eq!(bands.len(), 3);
        assert_eq!(bands[0].label, "kill n2");
        assert_eq!((bands[0].start_ns, bands[0].end_ns), (100, Some(200)));
        assert_eq!(bands[1].label, "pause n1,n3");
        assert_eq!(
            bands[1].end_ns,
            Some(260),
            "band lasts until every paused node resumed"
        );
        assert_eq!(bands[2].end_ns, None);
        assert!(bands[2].label.ends_with("(not undone)"));
        assert_eq!(markers.len(), 1);
        assert_eq!(markers[0].label, "rebalance n4");
    }

    #[test]
    fn overlapping_extents_get_different_rows() {
        let rows = assign_rows(&[
            (0.0, 10.0),
            (5.0, 20.0),
            (12.0, 30.0),
            (25.0, 26.0),
            (31.0, 40.0),
        ]);
        assert_eq!(rows, vec![0, 1, 0, 1, 0]);
    }

    #[test]
    fn partition_band_names_groups_and_link_modes() {
        let (bands, _) = build_bands(&[
            nem(
                10,
                "start-partition",
                json!({"groups": [[1, 2], [3, 4, 5]], "links": [[1, 3, "stall"], [1, 2, "pass"]]}),
            ),
            nem(90, "stop-partition", Value::Null),
        ]);
        assert_eq!(bands.len(), 1);
        assert_eq!(bands[0].label, "partition [n1 n2] [n3 n4 n5]");
        assert_eq!(bands[0].detail, "stall: n1→n3");
        assert_eq!(bands[0].end_ns, Some(90));
        assert_eq!(bands[0].kind, FaultKind::Partition);
    }

    #[test]
    fn harness_nemesis_values_make_bands_and_failed_steps_make_markers() {
        // The shapes `harness run` writes (see harness::nemesis).
        let (bands, markers) = build_bands(&[
            nem(10, "kill", json!({"node": 3, "primary": true})),
            nem(20, "start", json!({"node": 3})),
            nem(
                30,
                "remove-member",
                json!({"node": 2, "members": [1, 3, 4, 5]}),
            ),
            nem(40, "pause", json!({"node": 1, "error": "no such process"})),
            nem(
                50,
                "resume",
                json!({"node": 1, "error": "nothing to resume"}),
            ),
            nem(
                60,
                "add-member",
                json!({"node": 2, "members": [1, 2, 3, 4, 5]}),
            ),
            nem(
                70,
                "start-partition",
                json!({"shape": "bridge", "groups": [], "links": [[1, 2, "stall"]]}),
            ),
        ]);
        let got: Vec<(&str, i64, Option<i64>)> = bands
            .iter()
            .map(|b| (b.label.as_str(), b.start_ns, b.end_ns))
            .collect();
        assert_eq!(
            got,
            vec![
                ("kill n3 (leader)", 10, Some(20)),
                ("removed n2", 30, Some(60)),
                ("partition bridge (not undone)", 70, None),
            ]
        );
        assert_eq!(bands[2].detail, "shape bridge; stall: n1→n2");
        let labels: Vec<&str> = markers.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(
            labels,
            vec![
                "pause n1 failed: \"no such process\"",
                "resume n1 failed: \"nothing to resume\""
            ]
        );
    }

    #[test]
    fn nemesis_invokes_and_failures_are_not_faults() {
        let events = vec![
            read(
                json!({"index": 0, "time": 5, "process": "nemesis", "type": "invoke", "f": "kill", "value": [1]}),
            ),
            read(
                json!({"index": 1, "time": 6, "process": "nemesis", "type": "info", "f": "kill", "value": [1]}),
            ),
            read(
                json!({"index": 2, "time": 7, "process": "nemesis", "type": "fail", "f": "pause", "value": [2]}),
            ),
        ];
        let mut notes = Vec::new();
        let m = RunModel::from_events(&events, None, &mut notes);
        assert_eq!(m.bands.len(), 1);
        assert_eq!(m.bands[0].start_ns, 6);
        assert!(m.ops.is_empty());
    }

    #[test]
    fn leader_spans_end_at_next_role_change_or_kill() {
        let events = vec![
            read(
                json!({"index": 0, "time": 500, "process": "nemesis", "type": "info", "f": "kill", "value": [2]}),
            ),
            read(json!({"index": 1, "time": 900, "process": 1, "type": "invoke", "f": "read"})),
        ];
        let mut notes = Vec::new();
        let mut m = RunModel::from_events(&events, None, &mut notes);
        let start = 1_000_000;
        let role = |t: i64, term: u64, role: Role| RoleEvent {
            time_unix_ns: start + t,
            term,
            role,
        };
        let traces = vec![
            NodeTrace {
                node: "n1".into(),
                roles: vec![
                    role(100, 1, Role::Leader),
                    role(300, 2, Role::Follower),
                    role(600, 3, Role::Leader),
                ],
            },
            NodeTrace {
                node: "n2".into(),
                roles: vec![role(320, 2, Role::Leader), role(800, 3, Role::Follower)],
            },
        ];
        m.add_traces(&traces, Some(start), &mut notes);
        let got: Vec<(String, Option<u64>, i64, i64, bool)> = m
            .leaders
            .iter()
            .map(|s| (s.node.clone(), s.term, s.start_ns, s.end_ns, s.open))
            .collect();
        assert_eq!(
            got,
            vec![
                ("n1".to_string(), Some(1), 100, 300, false),
                ("n2".to_string(), Some(2), 320, 500, false),
                ("n1".to_string(), Some(3), 600, 900, true),
            ]
        );
        assert_eq!(m.trace_nodes, vec!["n1", "n2"]);
    }

    #[test]
    fn missing_traces_and_start_time_are_said() {
        let mut notes = Vec::new();
        let mut m = RunModel::from_events(&[], None, &mut notes);
        m.add_traces(&[], None, &mut notes);
        assert!(notes.iter().any(|n| n.contains("No node traces")));
        let t = NodeTrace {
            node: "n1".into(),
            roles: vec![],
        };
        m.add_traces(&[t], None, &mut notes);
        assert!(notes.iter().any(|n| n.contains("start_unix_ns")));
    }

    #[test]
    fn counterexample_ops_include_the_window_the_stuck_op_and_the_witnesses() {
        let mut notes = Vec::new();
        let mut m = RunModel::from_events(&[], None, &mut notes);
        assert!(
            m.counterexample_ops().is_empty(),
            "a valid run names no ops"
        );
        m.results = Some(serde_json::json!({
            "valid": false,
            "counterexample": {"ops": [1151, 1161], "op": 1161, "witnesses": [1033, 1123]}
        }));
        assert_eq!(m.counterexample_ops(), vec![1033, 1123, 1151, 1161]);
    }
}
