//! The precedence-graph fast path for unique-value register histories.
//!
//! When every write of a key writes a distinct value (our harness does), each
//! read names the write it reads from. Group each write with its reads into a
//! *cluster*: in any linearization a cluster is contiguous (write, then its
//! reads, before the next write). So the part is linearizable iff
//! (1) every read reads a value that was written (or the initial value),
//! (2) no read returned before its write was invoked, and
//! (3) the graph of clusters, with an edge A → B whenever some op of A
//! returned before some op of B was invoked (real-time + reads-from +
//! write-order in one relation), has no cycle through two clusters.
//!
//! The edge relation is "min return of A < max call of B", so it is built
//! with O(n) edges through a chain of suffix nodes (clusters sorted by max
//! call) instead of O(n²), and cycles are found as strongly connected
//! components with petgraph (Kosaraju, iterative: no recursion depth limit on a million ops). Any such cycle implies a 2-cycle A ⇄ B through
//! the component's cluster with the smallest min-return, which is the
//! counterexample reported ("17 was overwritten by 22 before the read began").
//!
//! `info` writes nobody read are dropped (they may never have happened);
//! `info` writes that were read joined their cluster with an infinite return.
//! Parts with cas, duplicate values or a write of the initial value are not
//! eligible and go to the search.

use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use rustc_hash::{FxHashMap, FxHashSet};

use crate::explain::{at_call, at_ret};
use crate::history::{History, OpF, Val, INF, UNKNOWN};
use crate::verdict::{Failure, PartOutcome};
use crate::ModelKind;

#[derive(Debug, Clone)]
struct Cluster {
    value: Val,
    writer: Option<u32>,
    /// Smallest return (+1; 0 for the initial value) and the op holding it.
    x: u64,
    x_op: Option<u32>,
    /// Largest call (+1) and the op holding it.
    y: u64,
    y_op: Option<u32>,
}

impl Cluster {
    fn add(&mut self, op: u32, call: u64, ret: u64) {
        let r = if ret == INF { INF } else { ret + 1 };
        if r < self.x {
            self.x = r;
            self.x_op = Some(op);
        }
        if call + 1 > self.y {
            self.y = call + 1;
            self.y_op = Some(op);
        }
    }
}

/// Decides a part with the graph, or `None` if the part is not eligible.
pub fn check(history: &History, key: Option<u32>, ops: &[u32]) -> Option<PartOutcome> {
    decide(history, key, ops, false)
}

/// A quick refutation for unique-value parts with cas: each cas that took
/// effect is read as a read of its `from` and a write of its `to` over the
/// same interval, and failed cas are left out. Any linearization of the part
/// gives one of this relaxed history (the read right before the write), so
/// a cycle found here is a violation of the part; `None` when the relaxed
/// history is linearizable or the part is not eligible (the search decides).
pub fn refute(history: &History, key: Option<u32>, ops: &[u32]) -> Option<PartOutcome> {
    match decide(history, key, ops, true)? {
        PartOutcome::Valid => None,
        other => Some(other),
    }
}

fn decide(
    history: &History,
    key: Option<u32>,
    ops: &[u32],
    split_cas: bool,
) -> Option<PartOutcome> {
    if !matches!(
        history.model,
        ModelKind::Register | ModelKind::CasRegister | ModelKind::Kv
    ) {
        return None;
    }
    let mut writer: FxHashMap<Val, u32> = FxHashMap::default();
    let mut read_values: FxHashSet<Val> = FxHashSet::default();
    for &i in ops {
        let op = &history.ops[i as usize];
        let (read, written) = match op.f {
            OpF::Write(v) => (None, Some(v)),
            OpF::Read(v) => (Some(v), None),
            OpF::Cas(a, b) if split_cas && a != b => ((op.ret != INF).then_some(a), Some(b)),
            OpF::CasFailed(_) if split_cas => (None, None),
            _ => return None,
        };
        if let Some(v) = written {
            if v == history.init || writer.insert(v, i).is_some() {
                return None;
            }
        }
        if let Some(v) = read.filter(|&v| v != UNKNOWN) {
            read_values.insert(v);
        }
    }
    let mut clusters: Vec<Cluster> = vec![Cluster {
        value: history.init,
        writer: None,
        x: 0,
        x_op: None,
        y: 0,
        y_op: None,
    }];
    let mut cluster_of: FxHashMap<Val, u32> = FxHashMap::default();
    cluster_of.insert(history.init, 0);
    for (&v, &w) in &writer {
        let op = &history.ops[w as usize];
        if op.ret == INF && !read_values.contains(&v) {
            continue; // an unread info write may never have happened
        }
        let mut c = Cluster {
            value: v,
            writer: Some(w),
            x: INF,
            x_op: None,
            y: 0,
            y_op: None,
        };
        c.add(w, op.call, op.ret);
        cluster_of.insert(v, clusters.len() as u32);
        clusters.push(c);
    }
    for &i in ops {
        let op = &history.ops[i as usize];
        let v = match op.f {
            OpF::Read(v) => v,
            OpF::Cas(a, b) if split_cas && a != b && op.ret != INF => a,
            _ => continue,
        };
        if v == UNKNOWN {
            continue;
        }
        let Some(&c) = cluster_of.get(&v) else {
            let explanation = format!(
                "{} at {}, but no operation ever wrote {} (and it is not the initial value)",
                history.describe_op(op),
                at_call(op),
                history.values.show(v)
            );
            return Some(invalid(history, key, vec![i], i, vec![], explanation));
        };
        let cl = &mut clusters[c as usize];
        if let Some(w) = cl.writer {
            let wop = &history.ops[w as usize];
            if op.ret < wop.call {
                let explanation = format!(
                    "{} completed at {}, before the {} began at {}",
                    history.describe_op(op),
                    at_ret(op),
                    history.describe_op(wop),
                    at_call(wop)
                );
                return Some(invalid(history, key, vec![w, i], i, vec![], explanation));
            }
        }
        cl.add(i, op.call, op.ret);
    }

    if split_cas {
        // A refutation only needs one pair of clusters that must each
        // precede the other.
        return Some(match two_cycle_pair(&clusters) {
            Some((a, b)) => two_cycle(history, key, &clusters[a], &clusters[b]),
            None => PartOutcome::Valid,
        });
    }
    // Clusters sorted by y; suffix node j reaches every cluster at rank >= j.
    let k = clusters.len();
    let mut order: Vec<u32> = (0..k as u32).collect();
    order.sort_unstable_by_key(|&c| clusters[c as usize].y);
    let mut g: DiGraph<(), ()> = DiGraph::with_capacity(2 * k, 3 * k);
    for _ in 0..2 * k {
        g.add_node(());
    }
    let cnode = |c: usize| NodeIndex::new(c);
    let snode = |j: usize| NodeIndex::new(k + j);
    for (j, &c) in order.iter().enumerate() {
        if j + 1 < k {
            g.add_edge(snode(j), snode(j + 1), ());
        }
        g.add_edge(snode(j), cnode(c as usize), ());
    }
    for (a, c) in clusters.iter().enumerate() {
        let j = order.partition_point(|&b| clusters[b as usize].y <= c.x);
        if j < k {
            g.add_edge(cnode(a), snode(j), ());
        }
    }
    for scc in kosaraju_scc(&g) {
        let members: Vec<usize> = scc.iter().map(|n| n.index()).filter(|&i| i < k).collect();
        if members.len() < 2 {
            continue;
        }
        let a = *members
            .iter()
            .min_by_key(|&&c| clusters[c].x)
            .expect("non-empty");
        let ca = &clusters[a];
        // A cycle through two clusters implies a 2-cycle with the min-return
        // cluster; should that ever not hold, let the search decide.
        let b = members
            .iter()
            .copied()
            .find(|&b| b != a && clusters[b].x < ca.y && ca.x < clusters[b].y)?;
        return Some(two_cycle(history, key, &clusters[a], &clusters[b]));
    }
    Some(PartOutcome::Valid)
}

/// A cluster's last call and its index.
type LastCall = (u64, usize);

/// Two clusters A, B with an edge each way (some op of A returned before
/// some op of B was invoked, and the other way round), if any: for each B,
/// the cluster with the latest last call among those whose first return
/// comes before B's last call (sorted by first return, prefix maxima).
fn two_cycle_pair(clusters: &[Cluster]) -> Option<(usize, usize)> {
    let mut by_x: Vec<usize> = (0..clusters.len()).collect();
    by_x.sort_unstable_by_key(|&c| clusters[c].x);
    // Prefix maxima of y over by_x: the best and the runner-up (another cluster).
    let mut best: Vec<(LastCall, Option<LastCall>)> = Vec::with_capacity(by_x.len());
    for &c in &by_x {
        let e = (clusters[c].y, c);
        let next = match best.last() {
            None => (e, None),
            Some(&(top, _)) if e.0 > top.0 => (e, Some(top)),
            Some(&(top, second)) => (
                top,
                Some(second.map_or(e, |s| if e.0 > s.0 { e } else { s })),
            ),
        };
        best.push(next);
    }
    for (b, cb) in clusters.iter().enumerate() {
        let j = by_x.partition_point(|&a| clusters[a].x < cb.y);
        let Some(&(top, second)) = j.checked_sub(1).map(|j| &best[j]) else {
            continue;
        };
        let a = if top.1 != b { Some(top) } else { second };
        if let Some((ya, a)) = a {
            if ya > cb.x {
                return Some((a, b));
            }
        }
    }
    None
}

fn invalid(
    history: &History,
    key: Option<u32>,
    mut window: Vec<u32>,
    stuck: u32,
    states: Vec<Val>,
    explanation: String,
) -> PartOutcome {
    window.sort_by_key(|&i| history.ops[i as usize].call);
    window.dedup();
    let prefix = window.iter().copied().filter(|&i| i != stuck).collect();
    PartOutcome::Invalid(Box::new(Failure {
        key,
        window,
        prefix,
        stuck: Some(stuck),
        states: states.iter().map(|&v| history.values.get(v)).collect(),
        explanation,
        // The graph's window already holds every op of its story.
        witnesses: Vec::new(),
        found_by: "graph",
    }))
}

/// Builds the counterexample for clusters A and B that must each precede the other.
fn two_cycle(history: &History, key: Option<u32>, ca: &Cluster, cb: &Cluster) -> PartOutcome {
    let show = |v: Val| history.values.show(v);
    // a (in A) returned before b (in B) was invoked; b2 (in B) returned before a2 (in A) was invoked.
    let (a, b, b2, a2) = (ca.x_op, cb.y_op, cb.x_op, ca.y_op);
    let mut window: Vec<u32> = [ca.writer, cb.writer, a, b, b2, a2]
        .into_iter()
        .flatten()
        .collect();
    window.sort_unstable();
    window.dedup();
    let stuck = a2.or(b).or(b2).or(a).unwrap_or(window[0]);
    let op = |i: u32| &history.ops[i as usize];
    let value_a = if ca.writer.is_none() {
        format!("the initial value {}", show(ca.value))
    } else {
        show(ca.value)
    };
    let explanation = match (a2, b2) {
        (Some(r), Some(w)) if matches!(op(r).f, OpF::Read(_)) && Some(w) == cb.writer => {
            let mut s = format!(
                "{} at {}, but {} was overwritten by {} which completed at {} before the read began",
                history.describe_op(op(r)),
                at_call(op(r)),
                value_a,
                overwrite(history, op(w)),
                at_ret(op(w))
            );
            if let (Some(a), Some(b)) = (a, b) {
                if Some(b) == cb.writer {
                    s.push_str(&format!(
                        " (and {} began at {}, after {} completed at {})",
                        overwrite(history, op(b)),
                        at_call(op(b)),
                        history.describe_op(op(a)),
                        at_ret(op(a))
                    ));
                } else {
                    s.push_str(&format!(
                        " (and {} began at {}, after {} completed at {})",
                        history.describe_op(op(b)),
                        at_call(op(b)),
                        history.describe_op(op(a)),
                        at_ret(op(a))
                    ));
                }
            }
            s
        }
        _ => {
            let d = |o: Option<u32>, ret: bool| match o {
                Some(i) if ret => format!(
                    "{} (completed at {})",
                    history.describe_op(op(i)),
                    at_ret(op(i))
                ),
                Some(i) => format!(
                    "{} (invoked at {})",
                    history.describe_op(op(i)),
                    at_call(op(i))
                ),
                None => "the initial state".to_string(),
            };
            format!(
                "{} precedes {}, yet {} precedes {}: value {} and value {} would each have to be overwritten by the other",
                d(a, true),
                d(b, false),
                d(b2, true),
                d(a2, false),
                value_a,
                show(cb.value)
            )
        }
    };
    invalid(history, key, window, stuck, vec![cb.value], explanation)
}

/// "write 22" for a write, "cas of k 17 -> 22" for a cas.
fn overwrite(history: &History, op: &crate::history::Op) -> String {
    match op.f {
        OpF::Write(v) => format!("write {}", history.values.show(v)),
        _ => history.describe_op(op),
    }
}
