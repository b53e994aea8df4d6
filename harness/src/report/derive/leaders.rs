//! Leader lanes: which node led in which term, merged to one interval per
//! node and term. From the nodes' own traces when the run has them (every
//! role change is there), otherwise from `observations.jsonl`, a poll of
//! each node's status every ≤ 100 ms by an outside observer (systems that
//! write no trace, such as etcd). Both arrive one event at a time; only the
//! open interval of each node is held.

use std::collections::BTreeMap;

use formats::trace::Role;

use super::faults::{node_sort_key, Band, FaultKind};

/// Where the leader lanes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaderSource {
    Traces,
    Observations,
}

/// One node's leadership in one term.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderSpan {
    pub node: String,
    pub term: Option<u64>,
    pub start_ns: i64,
    pub end_ns: i64,
    /// Still leader when its trace (or the run) ends.
    pub open: bool,
}

/// Two polls of a node further apart than this mean the observer lost
/// sight of it (paused, killed, cut off): a leadership seen before the gap
/// is not assumed to have lasted through it.
pub const OBSERVATION_GAP_NS: i64 = 1_000_000_000;

/// A node's leadership being followed.
#[derive(Debug, Clone, Copy)]
struct Open {
    term: u64,
    start_ns: i64,
    /// The last time it was seen leading (observations only).
    seen_ns: i64,
}

/// Builds leader spans from role reports in each node's time order.
#[derive(Debug)]
pub struct LeaderBuilder<'a> {
    source: LeaderSource,
    start_unix_ns: i64,
    run_end_ns: i64,
    bands: &'a [Band],
    open: BTreeMap<String, Open>,
    spans: Vec<LeaderSpan>,
    nodes: Vec<String>,
}

impl<'a> LeaderBuilder<'a> {
    /// `bands` end a leadership at a kill of its node; times in the input
    /// are Unix ns, made run-relative with `start_unix_ns`.
    pub fn new(
        source: LeaderSource,
        start_unix_ns: i64,
        run_end_ns: i64,
        bands: &'a [Band],
    ) -> LeaderBuilder<'a> {
        LeaderBuilder {
            source,
            start_unix_ns,
            run_end_ns,
            bands,
            open: BTreeMap::new(),
            spans: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// A node with a trace or observations gets a row even if it never led.
    pub fn node(&mut self, node: &str) {
        if !self.nodes.iter().any(|n| n == node) {
            self.nodes.push(node.to_string());
        }
    }

    /// The node's role in `term` as of `time_unix_ns` (a trace's role
    /// change, or a status poll).
    pub fn role(&mut self, node: &str, time_unix_ns: i64, term: u64, role: Role) {
        self.node(node);
        let t = time_unix_ns - self.start_unix_ns;
        let leading = role == Role::Leader;
        if let Some(o) = self.open.get(node).copied() {
            let gap =
                self.source == LeaderSource::Observations && t - o.seen_ns > OBSERVATION_GAP_NS;
            if leading && o.term == term && !gap {
                self.open.get_mut(node).expect("open").seen_ns = t;
                return;
            }
            let end = match self.source {
                LeaderSource::Observations if gap => o.seen_ns,
                _ => t,
            };
            self.close(node, o, end, false);
        }
        if leading {
            self.open.insert(
                node.to_string(),
                Open {
                    term,
                    start_ns: t,
                    seen_ns: t,
                },
            );
        }
    }

    fn close(&mut self, node: &str, o: Open, end_ns: i64, open: bool) {
        self.open.remove(node);
        let kill = self
            .bands
            .iter()
            .filter(|b| b.kind == FaultKind::Kill && b.start_ns >= o.start_ns)
            .filter(|b| b.nodes.iter().any(|n| n == node))
            .map(|b| b.start_ns)
            .min();
        let (end_ns, open) = match kill {
            Some(k) if k < end_ns => (k, false),
            _ => (end_ns, open),
        };
        self.spans.push(LeaderSpan {
            node: node.to_string(),
            term: Some(o.term),
            start_ns: o.start_ns,
            end_ns: end_ns.max(o.start_ns),
            open,
        });
    }

    /// The spans in time order and the nodes sorted (`n2` before `n10`).
    /// A trace that ends with its node leading leads to the end of the run;
    /// observations end where the node was last seen leading.
    pub fn finish(mut self) -> (Vec<LeaderSpan>, Vec<String>) {
        let open: Vec<(String, Open)> = std::mem::take(&mut self.open).into_iter().collect();
        for (node, o) in open {
            match self.source {
                LeaderSource::Traces => {
                    let end = self.run_end_ns.max(o.start_ns);
                    self.close(&node, o, end, true)
                }
                LeaderSource::Observations => self.close(&node, o, o.seen_ns, false),
            }
        }
        self.spans
            .sort_by_key(|s| (s.start_ns, node_sort_key(&s.node)));
        self.nodes.sort_by_key(|n| node_sort_key(n));
        (self.spans, self.nodes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kill_band(node: &str, start_ns: i64) -> Band {
        Band {
            kind: FaultKind::Kill,
            label: format!("kill {node}"),
            detail: String::new(),
            start_ns,
            end_ns: None,
            nodes: vec![node.into()],
        }
    }

    type Got = Vec<(String, Option<u64>, i64, i64, bool)>;

    fn got(spans: &[LeaderSpan]) -> Got {
        spans
            .iter()
            .map(|s| (s.node.clone(), s.term, s.start_ns, s.end_ns, s.open))
            .collect()
    }

    #[test]
    fn trace_spans_end_at_next_role_change_or_kill_or_run_end() {
        let start = 1_000_000;
        let bands = [kill_band("n2", 500)];
        let mut b = LeaderBuilder::new(LeaderSource::Traces, start, 900, &bands);
        // Node order is per node; nodes interleave freely.
        b.role("n1", start + 100, 1, Role::Leader);
        b.role("n2", start + 320, 2, Role::Leader);
        b.role("n1", start + 300, 2, Role::Follower);
        b.role("n1", start + 600, 3, Role::Leader);
        b.role("n1", start + 650, 3, Role::Leader);
        b.role("n2", start + 800, 3, Role::Follower);
        b.node("n3");
        let (spans, nodes) = b.finish();
        assert_eq!(
            got(&spans),
            vec![
                ("n1".to_string(), Some(1), 100, 300, false),
                ("n2".to_string(), Some(2), 320, 500, false),
                ("n1".to_string(), Some(3), 600, 900, true),
            ]
        );
        assert_eq!(nodes, vec!["n1", "n2", "n3"]);
    }

    #[test]
    fn observed_leadership_merges_polls_and_stops_at_gaps_and_changes() {
        let ms = 1_000_000;
        let mut b = LeaderBuilder::new(LeaderSource::Observations, 0, 10_000 * ms, &[]);
        // n1 leads term 2, polled every 100 ms, then unseen for 3 s.
        for i in 0..10 {
            b.role("n1", 1000 * ms + i * 100 * ms, 2, Role::Leader);
            b.role("n2", 1000 * ms + i * 100 * ms + ms, 2, Role::Follower);
        }
        b.role("n1", 4900 * ms, 2, Role::Leader);
        b.role("n1", 5000 * ms, 3, Role::Follower);
        // n2 leads term 3 until the observations end.
        b.role("n2", 5100 * ms, 3, Role::Leader);
        b.role("n2", 5200 * ms, 3, Role::Leader);
        let (spans, nodes) = b.finish();
        assert_eq!(
            got(&spans),
            vec![
                ("n1".to_string(), Some(2), 1000 * ms, 1900 * ms, false),
                ("n1".to_string(), Some(2), 4900 * ms, 5000 * ms, false),
                ("n2".to_string(), Some(3), 5100 * ms, 5200 * ms, false),
            ]
        );
        assert_eq!(nodes, vec!["n1", "n2"]);
    }
}
