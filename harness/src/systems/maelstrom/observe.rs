//! Election safety seen from the wire, for nodes we know nothing about.
//!
//! A Raft node written after Maelstrom's tutorial sends `append_entries`
//! only as the leader of the term in the message, and grants a vote with
//! `request_vote_res {vote_granted: true}` to the candidate it sends it to.
//! So two different senders of `append_entries` in one term are two leaders
//! of that term, and one node granting two different candidates in one term
//! has voted twice: both break election safety, whatever the node's code.
//! The sender is the process that wrote the line, never its `src` field.
//!
//! A candidate's own `request_vote` is its vote for itself: granting
//! another candidate the same term is a double vote too.
//!
//! Message types and field names are configurable ([`ObserveConfig`]) for
//! nodes that name them differently. Observations are kept once per fact
//! (the first heartbeat of a leader in a term, the first grant of a node to
//! a candidate in a term), not once per message.
//!
//! The same messages give each node's Raft state as the wire shows it
//! ([`Observer::status`]): the term it speaks in, whether it leads, and the
//! leader whose `append_entries` last reached it. That is the status a
//! Maelstrom node cannot be asked for.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

/// How long a leader message keeps its sender a leader (and its receiver
/// that leader's follower) in [`Observer::status`]: far above any heartbeat
/// interval, far below a run.
pub const LEADER_FRESH: Duration = Duration::from_secs(1);

/// Which messages and fields carry leadership and votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObserveConfig {
    /// A message only the leader of its term sends.
    pub leader_type: String,
    /// The reply that grants (or refuses) a vote.
    pub vote_type: String,
    /// A candidate's request for votes (it votes for itself).
    pub vote_request_type: String,
    pub term_field: String,
    pub granted_field: String,
    /// The field of a vote request that names the candidate.
    pub candidate_field: String,
}

impl Default for ObserveConfig {
    fn default() -> Self {
        ObserveConfig {
            leader_type: "append_entries".into(),
            vote_type: "request_vote_res".into(),
            vote_request_type: "request_vote".into(),
            term_field: "term".into(),
            granted_field: "vote_granted".into(),
            candidate_field: "candidate_id".into(),
        }
    }
}

/// What a node showed about itself on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ObservationKind {
    /// It sent a leader-only message: it was leader of the term.
    LeaderMessage,
    /// It granted its vote of the term to `candidate`.
    Vote { candidate: String },
}

/// One observed fact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Unix nanoseconds when the router read the message.
    pub time: u64,
    /// The node that sent it.
    pub node: String,
    pub term: u64,
    #[serde(flatten)]
    pub kind: ObservationKind,
}

/// A broken election-safety rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Violation {
    /// Two nodes acted as leader in the same term.
    TwoLeaders {
        term: u64,
        first: String,
        second: String,
        /// Unix nanoseconds of the second node's first leader message.
        time: u64,
    },
    /// One node granted its vote to two candidates in the same term.
    DoubleVote {
        term: u64,
        node: String,
        first: String,
        second: String,
        time: u64,
    },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::TwoLeaders {
                term,
                first,
                second,
                ..
            } => write!(
                f,
                "two leaders in term {term}: {first} and {second} both sent leader messages"
            ),
            Violation::DoubleVote {
                term,
                node,
                first,
                second,
                ..
            } => write!(
                f,
                "{node} voted twice in term {term}: for {first} and for {second}"
            ),
        }
    }
}

/// A node's Raft state as its messages show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireStatus {
    /// The highest term of a Raft message it sent, or of a leader message
    /// that reached it.
    pub term: u64,
    /// It sent a leader message of `term` within [`LEADER_FRESH`].
    pub leading: bool,
    /// The sender of the last leader message of `term` that reached it
    /// within [`LEADER_FRESH`] (itself when leading).
    pub leader: Option<String>,
}

/// What one node showed lately.
#[derive(Debug, Default)]
struct NodeView {
    term: u64,
    /// The term and moment of its last leader message.
    led: Option<(u64, Instant)>,
    /// The sender, term and moment of the last leader message delivered to it.
    heard: Option<(String, u64, Instant)>,
}

/// Collects observations and violations from the messages a router reads.
#[derive(Debug, Default)]
pub struct Observer {
    cfg: ObserveConfig,
    observations: Vec<Observation>,
    seen: HashSet<(String, u64, ObservationKind)>,
    /// The first leader seen for each term.
    leaders: BTreeMap<u64, String>,
    /// The first candidate each (node, term) granted.
    votes: BTreeMap<(String, u64), String>,
    violations: Vec<Violation>,
    views: HashMap<String, NodeView>,
}

impl Observer {
    pub fn new(cfg: ObserveConfig) -> Self {
        Observer {
            cfg,
            ..Default::default()
        }
    }

    /// Looks at one message `sender` wrote to `dest`; returns the term of a
    /// leader message (for [`Observer::delivered`]).
    pub fn observe(&mut self, time: u64, sender: &str, dest: &str, body: &Value) -> Option<u64> {
        let kind = body.get("type").and_then(Value::as_str)?;
        let c = &self.cfg;
        let raft = kind == c.leader_type || kind == c.vote_type || kind == c.vote_request_type;
        if !raft {
            return None;
        }
        let term = body.get(&c.term_field).and_then(Value::as_u64)?;
        let view = self.views.entry(sender.to_string()).or_default();
        view.term = view.term.max(term);
        if kind == self.cfg.leader_type {
            view.led = Some((term, Instant::now()));
            self.record(time, sender, term, ObservationKind::LeaderMessage);
            return Some(term);
        }
        if kind == self.cfg.vote_request_type {
            let named = body.get(&self.cfg.candidate_field).and_then(Value::as_str);
            // A vote request forwarded for someone else is not a self-vote.
            if named.is_none_or(|n| n == sender) {
                let candidate = sender.to_string();
                self.record(time, sender, term, ObservationKind::Vote { candidate });
            }
        } else if body.get(&self.cfg.granted_field).and_then(Value::as_bool) == Some(true) {
            let candidate = dest.to_string();
            self.record(time, sender, term, ObservationKind::Vote { candidate });
        }
        None
    }

    /// A leader message of `term` from `leader` reached `node`.
    pub fn delivered(&mut self, node: &str, leader: &str, term: u64) {
        let view = self.views.entry(node.to_string()).or_default();
        view.term = view.term.max(term);
        view.heard = Some((leader.to_string(), term, Instant::now()));
    }

    /// `node`'s state as its messages show it; `None` before it sent or
    /// received any Raft message with a term.
    pub fn status(&self, node: &str) -> Option<WireStatus> {
        let v = self.views.get(node)?;
        let fresh = |t: &Instant| t.elapsed() < LEADER_FRESH;
        let leading = v.led.is_some_and(|(term, at)| term == v.term && fresh(&at));
        let leader = if leading {
            Some(node.to_string())
        } else {
            v.heard
                .as_ref()
                .filter(|(_, term, at)| *term == v.term && fresh(at))
                .map(|(l, _, _)| l.clone())
        };
        Some(WireStatus {
            term: v.term,
            leading,
            leader,
        })
    }

    fn record(&mut self, time: u64, node: &str, term: u64, kind: ObservationKind) {
        let key = (node.to_string(), term, kind);
        if self.seen.contains(&key) {
            return;
        }
        let (node, term, kind) = key.clone();
        self.seen.insert(key);
        let violation = match &kind {
            ObservationKind::LeaderMessage => {
                let first = self.leaders.entry(term).or_insert_with(|| node.clone());
                (*first != node).then(|| Violation::TwoLeaders {
                    term,
                    first: first.clone(),
                    second: node.clone(),
                    time,
                })
            }
            ObservationKind::Vote { candidate } => {
                let first = self
                    .votes
                    .entry((node.clone(), term))
                    .or_insert_with(|| candidate.clone());
                (first != candidate).then(|| Violation::DoubleVote {
                    term,
                    node: node.clone(),
                    first: first.clone(),
                    second: candidate.clone(),
                    time,
                })
            }
        };
        // Each (node, term, fact) is recorded once, so each violation is too.
        if let Some(v) = violation {
            tracing::warn!(violation = %v, "election safety violated on the wire");
            self.violations.push(v);
        }
        self.observations.push(Observation {
            time,
            node,
            term,
            kind,
        });
    }

    pub fn observations(&self) -> &[Observation] {
        &self.observations
    }

    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The node that sent leader messages in the highest term seen, and that term.
    pub fn latest_leader(&self) -> Option<(String, u64)> {
        self.leaders
            .iter()
            .next_back()
            .map(|(t, n)| (n.clone(), *t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ae(term: u64) -> Value {
        json!({"type": "append_entries", "term": term, "entries": []})
    }

    fn granted(term: u64, yes: bool) -> Value {
        json!({"type": "request_vote_res", "term": term, "vote_granted": yes})
    }

    #[test]
    fn one_leader_per_term_and_one_vote_per_node_and_term_is_safe() {
        let mut o = Observer::new(ObserveConfig::default());
        for _ in 0..3 {
            o.observe(1, "n1", "n2", &ae(1));
            o.observe(1, "n1", "n3", &ae(1));
        }
        o.observe(2, "n2", "n1", &granted(2, true));
        o.observe(2, "n2", "n1", &granted(2, true));
        o.observe(2, "n3", "n2", &granted(2, false));
        o.observe(
            3,
            "n1",
            "n2",
            &json!({"type": "pre_vote_res", "term": 2, "vote_granted": true}),
        );
        o.observe(3, "n2", "n1", &ae(2));
        assert!(o.violations().is_empty());
        assert_eq!(o.observations().len(), 3, "{:?}", o.observations());
        assert_eq!(o.latest_leader(), Some(("n2".into(), 2)));
        let line = serde_json::to_value(&o.observations()[1]).unwrap();
        assert_eq!(
            line,
            json!({"time": 2, "node": "n2", "term": 2, "kind": "vote", "candidate": "n1"})
        );
    }

    #[test]
    fn two_leaders_in_a_term_and_a_double_vote_are_reported_once_each() {
        let mut o = Observer::new(ObserveConfig::default());
        o.observe(1, "n1", "n2", &ae(4));
        o.observe(2, "n2", "n3", &ae(4));
        o.observe(3, "n2", "n1", &ae(4));
        o.observe(4, "n3", "n1", &granted(5, true));
        o.observe(5, "n3", "n2", &granted(5, true));
        assert_eq!(o.violations().len(), 2, "{:?}", o.violations());
        assert!(matches!(
            &o.violations()[0],
            Violation::TwoLeaders { term: 4, first, second, .. } if first == "n1" && second == "n2"
        ));
        assert!(o.violations()[1]
            .to_string()
            .contains("n3 voted twice in term 5"));
    }

    #[test]
    fn type_and_field_names_are_configurable() {
        let mut o = Observer::new(ObserveConfig {
            leader_type: "heartbeat".into(),
            vote_type: "vote".into(),
            vote_request_type: "ask".into(),
            term_field: "t".into(),
            granted_field: "ok".into(),
            candidate_field: "who".into(),
        });
        o.observe(1, "a", "b", &json!({"type": "heartbeat", "t": 1}));
        o.observe(1, "b", "c", &json!({"type": "heartbeat", "t": 1}));
        o.observe(1, "c", "a", &json!({"type": "append_entries", "term": 1}));
        assert_eq!(o.violations().len(), 1);
        o.observe(2, "c", "a", &json!({"type": "ask", "t": 2, "who": "c"}));
        o.observe(2, "c", "b", &json!({"type": "vote", "t": 2, "ok": true}));
        assert_eq!(o.violations().len(), 2, "{:?}", o.violations());
    }

    #[test]
    fn a_candidate_that_grants_another_the_same_term_voted_twice() {
        let mut o = Observer::new(ObserveConfig::default());
        let ask = |c: &str| json!({"type": "request_vote", "term": 3, "candidate_id": c});
        o.observe(1, "n1", "n2", &ask("n1"));
        o.observe(1, "n1", "n3", &ask("n1"));
        // Relaying another candidate's request is not a vote.
        o.observe(1, "n3", "n2", &ask("n2"));
        assert!(o.violations().is_empty());
        o.observe(2, "n1", "n2", &granted(3, true));
        assert!(o.violations()[0]
            .to_string()
            .contains("n1 voted twice in term 3: for n1 and for n2"));
    }

    #[test]
    fn status_follows_the_last_leader_message_sent_and_received() {
        let mut o = Observer::new(ObserveConfig::default());
        assert_eq!(o.status("n1"), None);
        o.observe(1, "n1", "n2", &json!({"type": "request_vote", "term": 2}));
        let s = o.status("n1").unwrap();
        assert_eq!((s.term, s.leading, s.leader), (2, false, None));
        assert_eq!(o.observe(2, "n1", "n2", &ae(2)), Some(2));
        o.delivered("n2", "n1", 2);
        let s = o.status("n1").unwrap();
        assert_eq!(
            (s.term, s.leading, s.leader.as_deref()),
            (2, true, Some("n1"))
        );
        let s = o.status("n2").unwrap();
        assert_eq!(
            (s.term, s.leading, s.leader.as_deref()),
            (2, false, Some("n1"))
        );
        // n2 moves to a later term: n1's leadership of term 2 is not its leader.
        o.observe(3, "n2", "n3", &json!({"type": "request_vote", "term": 3}));
        let s = o.status("n2").unwrap();
        assert_eq!((s.term, s.leader), (3, None));
        // Messages that are not Raft's, or carry no term, change nothing.
        assert_eq!(
            o.observe(4, "n3", "n1", &json!({"type": "pre_vote", "term": 9})),
            None
        );
        assert_eq!(o.status("n3"), None);
    }
}
