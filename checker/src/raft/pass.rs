//! One pass over the merged events: the three properties, event by event,
//! with only the state each needs.
//!
//! A main pass judges every event it can and marks the indexes of the rest
//! unchecked (an event about an index the window has forgotten, a commit
//! that waited too long for its index's first apply). An audit pass replays
//! the same events through the same window, so it meets the same unchecked
//! events, and judges exactly those against an [`Oracle`] built beforehand.

use std::collections::{BTreeMap, BTreeSet};

use formats::observations::{Observation, ObservationKind};
use formats::trace::{Role, TraceEvent, TraceKind};
use rustc_hash::{FxHashMap, FxHashSet};
use serde_json::Value;

use super::log::{ApplyFields, Entry, Lookup, Oracle, Pending, PendingCommit, Unchecked, Window};
use super::{json_of, Event, RaftOptions, MAX_VIOLATIONS};
use crate::report::Violation;

/// What a pass is for.
pub(super) enum Mode<'o> {
    /// Judge everything the window allows; collect what it does not.
    Main,
    /// Judge only what a main pass left unchecked, against first applies
    /// found by an earlier pass.
    Audit(&'o Oracle),
}

/// Where a leader claim came from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Trace,
    Status,
    Wire,
}

/// A leader claim (a role event, an observed status or leader message),
/// enough to print it again; the first of each term is kept.
struct Leader {
    time: u64,
    node: u64,
    leader: Option<u64>,
    source: Source,
}

impl Leader {
    fn json(&self, term: u64) -> Value {
        let observed = |kind| {
            json_of(&Observation {
                time: self.time,
                node: self.node,
                kind,
            })
        };
        if self.source == Source::Wire {
            observed(ObservationKind::LeaderMessage { term })
        } else if self.source == Source::Status {
            observed(ObservationKind::Status {
                term,
                role: Role::Leader,
                leader: self.leader,
            })
        } else {
            json_of(&TraceEvent {
                time: self.time,
                node: self.node,
                kind: TraceKind::Role {
                    term,
                    role: Role::Leader,
                    leader: self.leader,
                },
            })
        }
    }
}

/// A node's commit index in its current lifetime, with the event that set it.
#[derive(Clone, Copy)]
struct LastCommit {
    index: u64,
    term: u64,
    time: u64,
}

#[derive(Default)]
struct NodeState {
    /// How many of this node's events came before the current one.
    pos: u64,
    last_commit: Option<LastCommit>,
    max_applied: Option<u64>,
}

impl NodeState {
    /// Counts an event of the node, returning its position among the
    /// node's events, and ends the lifetime at a `start`, a `snapshot`, or
    /// an apply of an index already applied (a restarted node replaying).
    fn next_event(&mut self, kind: &TraceKind) -> u64 {
        match kind {
            TraceKind::Start { .. } | TraceKind::Snapshot { .. } => self.last_commit = None,
            TraceKind::Apply { index, .. } => {
                if self.max_applied.is_some_and(|m| *index <= m) {
                    self.last_commit = None;
                }
                self.max_applied = self.max_applied.max(Some(*index));
            }
            _ => {}
        }
        self.pos += 1;
        self.pos - 1
    }
}

/// Violations found so far, per property, each list keeping the
/// [`MAX_VIOLATIONS`] that come first in the report's order: two-leaders
/// by merged position; divergent applies by the apply's merged position;
/// per-node commit findings by node, then the node's own order (a
/// divergent commit before a regress of the same event).
#[derive(Default)]
pub(super) struct Found {
    leaders: Vec<Violation>,
    applies: BTreeMap<u64, Violation>,
    commits: BTreeMap<(u64, u64, u8), Violation>,
}

fn wants<K: Ord>(list: &BTreeMap<K, Violation>, key: &K) -> bool {
    list.len() < MAX_VIOLATIONS || list.last_key_value().is_some_and(|(k, _)| key < k)
}

fn keep<K: Ord>(list: &mut BTreeMap<K, Violation>, key: K, v: Violation) {
    list.insert(key, v);
    if list.len() > MAX_VIOLATIONS {
        list.pop_last();
    }
}

fn violation(kind: &str, message: String, events: Vec<Value>) -> Violation {
    Violation {
        kind: kind.into(),
        message,
        events,
    }
}

impl Found {
    /// Adds what an audit pass found.
    pub fn absorb(&mut self, other: Found) {
        for (k, v) in other.applies {
            if wants(&self.applies, &k) {
                keep(&mut self.applies, k, v);
            }
        }
        for (k, v) in other.commits {
            if wants(&self.commits, &k) {
                keep(&mut self.commits, k, v);
            }
        }
    }

    /// The report's list: two-leaders, divergent applies, then per-node
    /// commit findings, capped.
    pub fn into_list(self) -> Vec<Violation> {
        let mut all = self.leaders;
        all.extend(self.applies.into_values());
        all.extend(self.commits.into_values());
        all.truncate(MAX_VIOLATIONS);
        all
    }

    fn divergent_apply(&mut self, seq: u64, first: &Entry, e: &TraceEvent, a: &ApplyFields) {
        if !wants(&self.applies, &seq) {
            return;
        }
        let v = violation(
            "divergent-apply",
            format!(
                "node {} applied (term {}, digest {}) at index {}, but node {} applied (term {}, digest {}) there",
                a.node,
                a.term,
                a.digest,
                a.index,
                first.node(),
                first.term(),
                first.digest()
            ),
            vec![first.json(), json_of(e)],
        );
        keep(&mut self.applies, seq, v);
    }

    fn divergent_commit(&mut self, first: &Entry, index: u64, c: &PendingCommit) {
        let key = (c.node, c.pos, 0);
        if first.term() == c.term || !wants(&self.commits, &key) {
            return;
        }
        let v = violation(
            "divergent-apply",
            format!(
                "node {} committed index {index} in term {}, but node {} applied term {} there",
                c.node,
                c.term,
                first.node(),
                first.term()
            ),
            vec![first.json(), json_of(&c.event(index))],
        );
        keep(&mut self.commits, key, v);
    }
}

/// The state of one pass.
pub(super) struct Pass<'o> {
    mode: Mode<'o>,
    /// Merged position of the current event.
    seq: u64,
    events: usize,
    nodes: BTreeSet<u64>,
    leaders: FxHashMap<u64, Leader>,
    /// The first vote of each (node, term): the candidate and when.
    votes: FxHashMap<(u64, u64), (u64, u64)>,
    /// Pairs of nodes already reported for a term; empty once the
    /// two-leaders list is full.
    reported: FxHashSet<(u64, u64, u64)>,
    per_node: FxHashMap<u64, NodeState>,
    window: Window,
    pending: Pending,
    pub unchecked: Unchecked,
    pub found: Found,
}

impl<'o> Pass<'o> {
    pub fn new(mode: Mode<'o>, opts: &RaftOptions) -> Self {
        Pass {
            mode,
            seq: 0,
            events: 0,
            nodes: BTreeSet::new(),
            leaders: FxHashMap::default(),
            votes: FxHashMap::default(),
            reported: FxHashSet::default(),
            per_node: FxHashMap::default(),
            window: Window::new(opts.window),
            pending: Pending::new(opts.pending),
            unchecked: Unchecked::new(opts.unchecked_spans),
            found: Found::default(),
        }
    }

    fn main(&self) -> bool {
        matches!(self.mode, Mode::Main)
    }

    /// Events seen and distinct nodes among them.
    pub fn counts(&self) -> (usize, usize) {
        (self.events, self.nodes.len())
    }

    pub fn step(&mut self, event: &Event) {
        self.events += 1;
        match event {
            Event::Observation(o) => {
                self.nodes.insert(o.node);
                let who = |leader, source| Leader {
                    time: o.time,
                    node: o.node,
                    leader,
                    source,
                };
                match o.kind {
                    ObservationKind::Status { term, role, leader } => {
                        self.claim(term, role, who(leader, Source::Status), || json_of(o))
                    }
                    ObservationKind::LeaderMessage { term } => {
                        let w = who(Some(o.node), Source::Wire);
                        self.claim(term, Role::Leader, w, || json_of(o))
                    }
                    ObservationKind::Vote { term, candidate } => self.vote(o, term, candidate),
                }
            }
            Event::Trace(e) => self.trace(e),
        }
        self.seq += 1;
    }

    fn trace(&mut self, e: &TraceEvent) {
        self.nodes.insert(e.node);
        let pos = self.per_node.entry(e.node).or_default().next_event(&e.kind);
        match &e.kind {
            TraceKind::Role { term, role, leader } => {
                let who = Leader {
                    time: e.time,
                    node: e.node,
                    leader: *leader,
                    source: Source::Trace,
                };
                self.claim(*term, *role, who, || json_of(e));
            }
            TraceKind::Apply { .. } => {
                let a = ApplyFields::of(e).expect("an apply");
                self.apply(e, &a);
            }
            TraceKind::Commit { index, term } => {
                let c = PendingCommit {
                    time: e.time,
                    node: e.node,
                    term: *term,
                    pos,
                };
                self.commit(*index, c);
                self.regress(e, *index, *term, pos);
            }
            TraceKind::Start { .. } | TraceKind::Snapshot { .. } | TraceKind::Config { .. } => {}
        }
    }

    /// Election safety: the first leader of each term is remembered, and
    /// every other node claiming the term is reported once per pair.
    fn claim(&mut self, term: u64, role: Role, who: Leader, json: impl FnOnce() -> Value) {
        if role != Role::Leader || !self.main() {
            return;
        }
        let Some(first) = self.leaders.get(&term) else {
            self.leaders.insert(term, who);
            return;
        };
        let (a, b) = (first.node, who.node);
        if a == b || self.found.leaders.len() >= MAX_VIOLATIONS {
            return;
        }
        if self.reported.insert((term, a.min(b), a.max(b))) {
            let v = violation(
                "two-leaders",
                format!("nodes {a} and {b} were both leader of term {term}"),
                vec![first.json(term), json()],
            );
            self.found.leaders.push(v);
            if self.found.leaders.len() >= MAX_VIOLATIONS {
                self.reported = FxHashSet::default();
            }
        }
    }

    /// Election safety from votes: a node votes once per term; a second
    /// vote of the term for another candidate is reported (once per node
    /// and term, as it only keeps the first).
    fn vote(&mut self, o: &Observation, term: u64, candidate: u64) {
        if !self.main() {
            return;
        }
        let (first, at) = *self
            .votes
            .entry((o.node, term))
            .or_insert((candidate, o.time));
        if first == candidate || self.found.leaders.len() >= MAX_VIOLATIONS {
            return;
        }
        if self.reported.insert((term, o.node, u64::MAX)) {
            let earlier = Observation {
                time: at,
                node: o.node,
                kind: ObservationKind::Vote {
                    term,
                    candidate: first,
                },
            };
            let v = violation(
                "double-vote",
                format!(
                    "node {} voted for both {first} and {candidate} in term {term}",
                    o.node
                ),
                vec![json_of(&earlier), json_of(o)],
            );
            self.found.leaders.push(v);
        }
    }

    /// State-machine safety for an apply: the first apply of an index is
    /// the canonical entry; every later one must match it.
    fn apply(&mut self, e: &TraceEvent, a: &ApplyFields) {
        match self.window.lookup(a.index) {
            Lookup::First(first) => {
                if self.main() && !first.same(a.term, a.digest) {
                    self.found.divergent_apply(self.seq, &first, e, a);
                }
            }
            Lookup::Open => {
                let base = self.window.record(a);
                let waiting = self.pending.take(a.index);
                if self.main() {
                    let Lookup::First(first) = self.window.lookup(a.index) else {
                        unreachable!("just recorded");
                    };
                    for c in &waiting {
                        self.found.divergent_commit(&first, a.index, c);
                    }
                }
                for (i, c) in self.pending.below(base) {
                    self.unchecked_commit(i, &c);
                }
            }
            Lookup::Forgotten => self.unchecked_apply(e, a),
        }
    }

    /// State-machine safety for a commit: it names the term of its index's
    /// entry, which must be the canonical entry's term.
    fn commit(&mut self, index: u64, c: PendingCommit) {
        match self.window.lookup(index) {
            Lookup::First(first) => {
                if self.main() {
                    self.found.divergent_commit(&first, index, &c);
                }
            }
            Lookup::Open => {
                for (i, c) in self.pending.add(index, c) {
                    self.unchecked_commit(i, &c);
                }
            }
            Lookup::Forgotten => self.unchecked_commit(index, &c),
        }
    }

    /// Commit monotonicity within the node's current lifetime.
    fn regress(&mut self, e: &TraceEvent, index: u64, term: u64, pos: u64) {
        if !self.main() {
            return;
        }
        let st = self.per_node.get_mut(&e.node).expect("just inserted");
        match st.last_commit {
            Some(prev) if index < prev.index => {
                let key = (e.node, pos, 1);
                if wants(&self.found.commits, &key) {
                    let prev_event = TraceEvent {
                        time: prev.time,
                        node: e.node,
                        kind: TraceKind::Commit {
                            index: prev.index,
                            term: prev.term,
                        },
                    };
                    let v = violation(
                        "commit-regress",
                        format!(
                            "node {}'s commit index went back from {} to {index}",
                            e.node, prev.index
                        ),
                        vec![json_of(&prev_event), json_of(e)],
                    );
                    keep(&mut self.found.commits, key, v);
                }
            }
            _ => {
                st.last_commit = Some(LastCommit {
                    index,
                    term,
                    time: e.time,
                });
            }
        }
    }

    fn unchecked_apply(&mut self, e: &TraceEvent, a: &ApplyFields) {
        match self.mode {
            Mode::Main => self.unchecked.add(a.index),
            Mode::Audit(oracle) => {
                if let Some(first) = oracle.first(a.index) {
                    if !first.same(a.term, a.digest) {
                        self.found.divergent_apply(self.seq, &first, e, a);
                    }
                }
            }
        }
    }

    fn unchecked_commit(&mut self, index: u64, c: &PendingCommit) {
        match self.mode {
            Mode::Main => self.unchecked.add(index),
            Mode::Audit(oracle) => {
                if let Some(first) = oracle.first(index) {
                    self.found.divergent_commit(&first, index, c);
                }
            }
        }
    }
}
