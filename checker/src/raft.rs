//! Raft safety from node traces (`nodes/*/trace.jsonl`, DESIGN.md "Trace").
//!
//! Checked, each violation reported with the events that show it:
//! - **Election safety**: at most one leader per term. Two leaders in
//!   different terms at the same moment are legal and not reported.
//! - **State-machine safety**: every node applies the same entry (term and
//!   digest) at each index. One canonical log is built from the first apply
//!   of each index (by time) and every apply is compared against it, the
//!   approach of tigerbeetle's `state_checker.zig`. A commit event whose term
//!   disagrees with the canonical entry is a divergence too.
//! - **Commit monotonicity**: a node's commit index never goes backwards
//!   within one process lifetime. A lifetime ends at a `{"event": "start"}`
//!   line, a `snapshot` line, or an apply that replays an index the node
//!   already applied (what a restarted node does), since a restarted node
//!   legitimately relearns its commit index from zero.
//!
//! Systems without traces can supply **external observations**: a JSONL file
//! of `{"time": <ns>, "node": <id>, "term": <n>, "role": "leader"|…}` lines,
//! e.g. from polling `GET /status`; they join the election-safety check. In a
//! run folder the file is `observations.jsonl`.
//!
//! A final line that does not parse is skipped: `kill -9` can cut the last
//! write of a trace short. Any other malformed line is an error.

use std::path::{Path, PathBuf};

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::report::{RaftSafetyResult, Validity, Violation};
use crate::CheckError;

/// One trace (or observation) event.
#[derive(Debug, Clone)]
pub struct TraceEvent {
    pub time: i64,
    pub node: u64,
    pub raw: Value,
}

impl TraceEvent {
    fn kind(&self) -> &str {
        self.raw
            .get("event")
            .and_then(Value::as_str)
            .unwrap_or("role")
    }
    fn u(&self, f: &str) -> Option<u64> {
        self.raw.get(f).and_then(Value::as_u64)
    }
}

/// Checks a run folder's traces; `None` when it has neither traces nor observations.
pub fn check_run_dir(dir: &Path) -> Result<Option<RaftSafetyResult>, CheckError> {
    let nodes = dir.join("nodes");
    let mut traces = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&nodes) {
        for e in rd.flatten() {
            let t = e.path().join("trace.jsonl");
            if t.is_file() {
                traces.push(t);
            }
        }
    }
    traces.sort();
    let obs = dir.join("observations.jsonl");
    let observations: Vec<PathBuf> = if obs.is_file() { vec![obs] } else { vec![] };
    if traces.is_empty() && observations.is_empty() {
        return Ok(None);
    }
    check_trace_files(&traces, &observations).map(Some)
}

/// Reads one JSONL file of trace events or observations.
pub fn read_events(path: &Path) -> Result<Vec<TraceEvent>, CheckError> {
    let text = std::fs::read(path).map_err(|source| CheckError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, l) in lines.iter().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let parsed: Result<Value, _> = serde_json::from_str(l);
        let file = path.display().to_string();
        let v = match parsed {
            Ok(v) => v,
            Err(_) if i + 1 == lines.len() => continue, // cut short by kill -9
            Err(e) => {
                return Err(CheckError::Parse {
                    file,
                    line: i + 1,
                    expected: format!("a JSON trace event ({e})"),
                    found: l.chars().take(60).collect(),
                })
            }
        };
        let (Some(time), Some(node)) = (
            v.get("time").and_then(Value::as_i64),
            v.get("node").and_then(Value::as_u64),
        ) else {
            return Err(CheckError::Parse {
                file,
                line: i + 1,
                expected: "an object with integer \"time\" and \"node\"".into(),
                found: l.chars().take(60).collect(),
            });
        };
        out.push(TraceEvent { time, node, raw: v });
    }
    Ok(out)
}

/// Checks trace files plus observation files.
pub fn check_trace_files(
    traces: &[PathBuf],
    observations: &[PathBuf],
) -> Result<RaftSafetyResult, CheckError> {
    let mut events = Vec::new();
    let mut nodes = std::collections::BTreeSet::new();
    for p in traces {
        let evs = read_events(p)?;
        nodes.extend(evs.iter().map(|e| e.node));
        events.extend(evs);
    }
    let mut obs = Vec::new();
    for p in observations {
        obs.extend(read_events(p)?);
    }
    let mut r = check_events(&events, &obs);
    r.nodes = r.nodes.max(nodes.len());
    Ok(r)
}

const MAX_VIOLATIONS: usize = 100;

/// The pure check over trace events (per node in file order) and observations.
pub fn check_events(trace: &[TraceEvent], observations: &[TraceEvent]) -> RaftSafetyResult {
    let mut violations = Vec::new();
    let mut nodes = std::collections::BTreeSet::new();

    // Election safety over trace role events and observations.
    let mut leader_of: FxHashMap<u64, &TraceEvent> = FxHashMap::default();
    let mut reported: std::collections::BTreeSet<(u64, u64, u64)> = Default::default();
    let mut roles: Vec<&TraceEvent> = trace
        .iter()
        .filter(|e| e.kind() == "role")
        .chain(observations.iter())
        .collect();
    roles.sort_by_key(|e| e.time);
    for e in roles {
        nodes.insert(e.node);
        if e.raw.get("role").and_then(Value::as_str) != Some("leader") {
            continue;
        }
        let Some(term) = e.u("term") else { continue };
        match leader_of.get(&term) {
            None => {
                leader_of.insert(term, e);
            }
            Some(first) if first.node != e.node => {
                let pair = (term, first.node.min(e.node), first.node.max(e.node));
                if reported.insert(pair) && violations.len() < MAX_VIOLATIONS {
                    violations.push(Violation {
                        kind: "two-leaders".into(),
                        message: format!(
                            "nodes {} and {} were both leader of term {term}",
                            first.node, e.node
                        ),
                        events: vec![first.raw.clone(), e.raw.clone()],
                    });
                }
            }
            Some(_) => {}
        }
    }

    // Canonical log: first apply of each index by time.
    let mut applies: Vec<&TraceEvent> = trace.iter().filter(|e| e.kind() == "apply").collect();
    applies.sort_by_key(|e| e.time);
    let mut canonical: FxHashMap<u64, (u64, String, &TraceEvent)> = FxHashMap::default();
    let entry_of = |e: &TraceEvent| -> Option<(u64, u64, String)> {
        Some((
            e.u("index")?,
            e.u("term")?,
            e.raw
                .get("digest")
                .map(|d| d.as_str().map_or_else(|| d.to_string(), str::to_string))
                .unwrap_or_default(),
        ))
    };
    for e in &applies {
        let Some((index, term, digest)) = entry_of(e) else {
            continue;
        };
        match canonical.get(&index) {
            None => {
                canonical.insert(index, (term, digest, e));
            }
            Some((t, d, first)) => {
                if (*t != term || *d != digest) && violations.len() < MAX_VIOLATIONS {
                    violations.push(Violation {
                        kind: "divergent-apply".into(),
                        message: format!(
                            "node {} applied (term {term}, digest {digest}) at index {index}, but node {} applied (term {t}, digest {d}) there",
                            e.node, first.node
                        ),
                        events: vec![first.raw.clone(), e.raw.clone()],
                    });
                }
            }
        }
    }

    // Per node, in trace order: commit monotonicity and commit terms.
    let mut per_node: FxHashMap<u64, Vec<&TraceEvent>> = FxHashMap::default();
    for e in trace {
        nodes.insert(e.node);
        per_node.entry(e.node).or_default().push(e);
    }
    let mut node_ids: Vec<u64> = per_node.keys().copied().collect();
    node_ids.sort_unstable();
    for n in node_ids {
        let mut last_commit: Option<&TraceEvent> = None;
        let mut max_applied: Option<u64> = None;
        for e in &per_node[&n] {
            match e.kind() {
                "start" | "snapshot" => last_commit = None,
                "apply" => {
                    let idx = e.u("index");
                    if let (Some(i), Some(m)) = (idx, max_applied) {
                        if i <= m {
                            last_commit = None; // a restarted node replays its log
                        }
                    }
                    max_applied = max_applied.max(idx);
                }
                "commit" => {
                    let Some(idx) = e.u("index") else { continue };
                    if let (Some(term), Some((t, _, first))) = (e.u("term"), canonical.get(&idx)) {
                        if term != *t && violations.len() < MAX_VIOLATIONS {
                            violations.push(Violation {
                                kind: "divergent-apply".into(),
                                message: format!(
                                    "node {n} committed index {idx} in term {term}, but node {} applied term {t} there",
                                    first.node
                                ),
                                events: vec![first.raw.clone(), e.raw.clone()],
                            });
                        }
                    }
                    if let Some(prev) = last_commit {
                        if prev.u("index").is_some_and(|p| idx < p)
                            && violations.len() < MAX_VIOLATIONS
                        {
                            violations.push(Violation {
                                kind: "commit-regress".into(),
                                message: format!(
                                    "node {n}'s commit index went back from {} to {idx}",
                                    prev.u("index").unwrap_or(0)
                                ),
                                events: vec![prev.raw.clone(), e.raw.clone()],
                            });
                        }
                    }
                    if last_commit.is_none_or(|p| p.u("index").is_none_or(|p| idx >= p)) {
                        last_commit = Some(e);
                    }
                }
                _ => {}
            }
        }
    }

    RaftSafetyResult {
        valid: if violations.is_empty() {
            Validity::Valid
        } else {
            Validity::Invalid
        },
        nodes: nodes.len(),
        events: trace.len() + observations.len(),
        violations,
    }
}
