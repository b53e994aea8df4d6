//! The Raft-safety check as it was before it streamed: every event in
//! memory, claims and applies sorted by time, one canonical log of every
//! index. Kept here as the straightforward reference the streaming check
//! must agree with.

#![allow(dead_code)]

use std::collections::BTreeSet;

use checker::{RaftSafetyResult, Validity, Violation};
use formats::observations::{Observation, ObservationKind};
use formats::trace::{Role, TraceEvent, TraceKind};
use rustc_hash::FxHashMap;
use serde_json::Value;

const MAX_VIOLATIONS: usize = 100;

/// A claim about who led which term: a trace's role event or an observation.
#[derive(Clone, Copy)]
enum Claim<'a> {
    Trace(&'a TraceEvent, u64, Role),
    Observed(&'a Observation, u64, Role),
}

impl Claim<'_> {
    fn time(&self) -> u64 {
        match self {
            Claim::Trace(e, ..) => e.time,
            Claim::Observed(o, ..) => o.time,
        }
    }
    fn node(&self) -> u64 {
        match self {
            Claim::Trace(e, ..) => e.node,
            Claim::Observed(o, ..) => o.node,
        }
    }
    fn term_if_leader(&self) -> Option<u64> {
        match *self {
            Claim::Trace(_, term, Role::Leader) | Claim::Observed(_, term, Role::Leader) => {
                Some(term)
            }
            _ => None,
        }
    }
    /// The line as a violation shows it.
    fn json(&self) -> Value {
        match self {
            Claim::Trace(e, ..) => json_of(*e),
            Claim::Observed(o, ..) => json_of(*o),
        }
    }
}

fn json_of(e: &impl serde::Serialize) -> Value {
    serde_json::to_value(e).unwrap_or(Value::Null)
}

/// The pure check over trace events (per node in file order) and observations.
pub fn check(trace: &[TraceEvent], observations: &[Observation]) -> RaftSafetyResult {
    let mut violations = Vec::new();
    let mut nodes = BTreeSet::new();
    election_safety(trace, observations, &mut nodes, &mut violations);
    let canonical = canonical_log(trace, &mut violations);
    for e in trace {
        nodes.insert(e.node);
    }
    commits(trace, &canonical, &mut violations);
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

fn push(violations: &mut Vec<Violation>, kind: &str, message: String, events: Vec<Value>) {
    if violations.len() < MAX_VIOLATIONS {
        violations.push(Violation {
            kind: kind.into(),
            message,
            events,
        });
    }
}

/// At most one leader per term, over trace role events and observations.
fn election_safety(
    trace: &[TraceEvent],
    observations: &[Observation],
    nodes: &mut BTreeSet<u64>,
    violations: &mut Vec<Violation>,
) {
    let mut claims: Vec<Claim> = trace
        .iter()
        .filter_map(|e| match e.kind {
            TraceKind::Role { term, role, .. } => Some(Claim::Trace(e, term, role)),
            _ => None,
        })
        .chain(observations.iter().filter_map(|o| match o.kind {
            ObservationKind::Status { term, role, .. } => Some(Claim::Observed(o, term, role)),
            ObservationKind::LeaderMessage { term } => Some(Claim::Observed(o, term, Role::Leader)),
            ObservationKind::Vote { .. } => None,
        }))
        .collect();
    claims.sort_by_key(Claim::time);
    let mut leader_of: FxHashMap<u64, Claim> = FxHashMap::default();
    let mut reported: BTreeSet<(u64, u64, u64)> = BTreeSet::new();
    for c in claims {
        nodes.insert(c.node());
        let Some(term) = c.term_if_leader() else {
            continue;
        };
        match leader_of.get(&term) {
            None => {
                leader_of.insert(term, c);
            }
            Some(first) if first.node() != c.node() => {
                let (a, b) = (first.node(), c.node());
                if reported.insert((term, a.min(b), a.max(b))) {
                    push(
                        violations,
                        "two-leaders",
                        format!("nodes {a} and {b} were both leader of term {term}"),
                        vec![first.json(), c.json()],
                    );
                }
            }
            Some(_) => {}
        }
    }
}

/// The entry applied first (by time) at each index: `(term, digest, event)`.
type Canonical<'a> = FxHashMap<u64, (u64, &'a str, &'a TraceEvent)>;

/// Builds the canonical log and reports every apply that disagrees with it.
fn canonical_log<'a>(trace: &'a [TraceEvent], violations: &mut Vec<Violation>) -> Canonical<'a> {
    let mut applies: Vec<(&TraceEvent, u64, u64, &str)> = trace
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::Apply {
                index,
                term,
                digest,
                ..
            } => Some((e, *index, *term, digest.as_str())),
            _ => None,
        })
        .collect();
    applies.sort_by_key(|a| a.0.time);
    let mut canonical: Canonical = FxHashMap::default();
    for (e, index, term, digest) in applies {
        match canonical.get(&index) {
            None => {
                canonical.insert(index, (term, digest, e));
            }
            Some((t, d, first)) => {
                if *t != term || *d != digest {
                    push(
                        violations,
                        "divergent-apply",
                        format!(
                            "node {} applied (term {term}, digest {digest}) at index {index}, but node {} applied (term {t}, digest {d}) there",
                            e.node, first.node
                        ),
                        vec![json_of(*first), json_of(e)],
                    );
                }
            }
        }
    }
    canonical
}

/// Per node, in trace order: the commit index never goes back within a
/// lifetime, and a committed index holds the canonical entry's term.
fn commits(trace: &[TraceEvent], canonical: &Canonical, violations: &mut Vec<Violation>) {
    let mut per_node: FxHashMap<u64, Vec<&TraceEvent>> = FxHashMap::default();
    for e in trace {
        per_node.entry(e.node).or_default().push(e);
    }
    let mut node_ids: Vec<u64> = per_node.keys().copied().collect();
    node_ids.sort_unstable();
    for n in node_ids {
        let mut last_commit: Option<(u64, &TraceEvent)> = None;
        let mut max_applied: Option<u64> = None;
        for e in &per_node[&n] {
            match e.kind {
                TraceKind::Start { .. } | TraceKind::Snapshot { .. } => last_commit = None,
                TraceKind::Apply { index, .. } => {
                    if max_applied.is_some_and(|m| index <= m) {
                        last_commit = None; // a restarted node replays its log
                    }
                    max_applied = max_applied.max(Some(index));
                }
                TraceKind::Commit { index, term } => {
                    if let Some((t, _, first)) = canonical.get(&index) {
                        if term != *t {
                            push(
                                violations,
                                "divergent-apply",
                                format!(
                                    "node {n} committed index {index} in term {term}, but node {} applied term {t} there",
                                    first.node
                                ),
                                vec![json_of(*first), json_of(*e)],
                            );
                        }
                    }
                    if let Some((prev, prev_event)) = last_commit {
                        if index < prev {
                            push(
                                violations,
                                "commit-regress",
                                format!("node {n}'s commit index went back from {prev} to {index}"),
                                vec![json_of(prev_event), json_of(*e)],
                            );
                        }
                    }
                    if last_commit.is_none_or(|(prev, _)| index >= prev) {
                        last_commit = Some((index, e));
                    }
                }
                TraceKind::Role { .. } | TraceKind::Config { .. } => {}
            }
        }
    }
}
