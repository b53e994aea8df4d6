//! Partition shapes, as Jepsen users know them, turned into an exact link
//! matrix for the [`crate::proxy::ProxyMesh`].
//!
//! A partition is a list of groups; link a→b passes when a and b share a
//! group and is cut (with the chosen cut mode, `stall` or `reset`) otherwise.
//! Groups may overlap (`bridge`, `majorities-ring`). `one-way` is the only
//! asymmetric shape: it is given as groups plus an explicit direction.
//!
//! | shape | groups (5 nodes, after a seeded shuffle) |
//! |---|---|
//! | `one` | `[[3], [1, 2, 4, 5]]`: one node isolated |
//! | `majority` | `[[2, 5], [1, 3, 4]]`: two halves, one a majority |
//! | `majorities-ring` | `[[1, 2, 5], [1, 2, 3], …]`: node k's view (k = 1, 2, …), its ring neighbours: a majority each, no two the same |
//! | `bridge` | `[[1, 2, 3], [3, 4, 5]]`: two halves joined only by node 3 |
//! | `one-way` | `[[4], [1, 2, 3, 5]]`, node 4 cannot dial the others (or they it) but the other direction passes |
//! | `random` | a random majority group, the rest split into random groups |

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::cluster::NodeId;
use crate::proxy::LinkMode;

/// The kinds of partition the nemesis can make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    One,
    Majority,
    MajoritiesRing,
    Bridge,
    OneWay,
    Random,
}

impl Shape {
    pub const ALL: [Shape; 6] = [
        Shape::One,
        Shape::Majority,
        Shape::MajoritiesRing,
        Shape::Bridge,
        Shape::OneWay,
        Shape::Random,
    ];

    /// The name in event values and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Shape::One => "one",
            Shape::Majority => "majority",
            Shape::MajoritiesRing => "majorities-ring",
            Shape::Bridge => "bridge",
            Shape::OneWay => "one-way",
            Shape::Random => "random",
        }
    }

    /// Parses a name of [`Shape::name`].
    pub fn parse(s: &str) -> Option<Shape> {
        Shape::ALL.into_iter().find(|sh| sh.name() == s)
    }

    /// Whether the shape makes sense for `n` nodes (a ring needs at least 4
    /// nodes to differ from a full mesh, every shape needs at least 3).
    pub fn applies_to(&self, n: usize) -> bool {
        match self {
            Shape::MajoritiesRing => n >= 4,
            _ => n >= 3,
        }
    }
}

/// A concrete partition: its shape, its groups and the full link matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub shape: Shape,
    pub groups: Vec<Vec<NodeId>>,
    /// Every ordered pair of distinct nodes, sorted by (from, to).
    pub links: Vec<(NodeId, NodeId, LinkMode)>,
}

impl Partition {
    /// The same partition with every node renamed by `f` (a permutation).
    pub fn relabel(&self, f: impl Fn(NodeId) -> NodeId) -> Partition {
        let groups: Vec<Vec<NodeId>> = self
            .groups
            .iter()
            .map(|g| {
                let mut g: Vec<NodeId> = g.iter().map(|&n| f(n)).collect();
                g.sort_unstable();
                g
            })
            .collect();
        let mut links: Vec<(NodeId, NodeId, LinkMode)> = self
            .links
            .iter()
            .map(|&(a, b, m)| (f(a), f(b), m))
            .collect();
        links.sort_by_key(|&(a, b, _)| (a, b));
        Partition {
            shape: self.shape,
            groups,
            links,
        }
    }

    /// The node that a partition aimed at the leader puts the leader on:
    /// the isolated node of `one` and `one-way`, a node of the smallest
    /// group of `majority` and `random`, the bridge of `bridge`. None for
    /// `majorities-ring`, where every node sees a majority.
    pub fn leader_spot(&self) -> Option<NodeId> {
        match self.shape {
            Shape::MajoritiesRing => None,
            Shape::Bridge => {
                let first = self.groups.first()?;
                first
                    .iter()
                    .copied()
                    .find(|n| self.groups.iter().all(|g| g.contains(n)))
            }
            _ => self
                .groups
                .iter()
                .min_by_key(|g| g.len())
                .and_then(|g| g.first().copied()),
        }
    }

    /// Whether swapping `a` and `b` leaves every link as it is: then the
    /// two are interchangeable for anything that looks at the partition.
    pub fn symmetric_in(&self, a: NodeId, b: NodeId) -> bool {
        let swap = |n: NodeId| match n {
            n if n == a => b,
            n if n == b => a,
            n => n,
        };
        self.relabel(swap).links == self.links
    }

    /// The event value: `{"shape", "groups", "links": [[from, to, mode]…]}`
    /// (plus `"delay"` when a link delays).
    pub fn to_value(&self) -> serde_json::Value {
        let links: Vec<serde_json::Value> = self
            .links
            .iter()
            .map(|(f, t, m)| serde_json::json!([f, t, m.name()]))
            .collect();
        let mut v = serde_json::json!({
            "shape": self.shape.name(),
            "groups": self.groups,
            "links": links,
        });
        if let Some(LinkMode::Delay {
            latency_ms,
            jitter_ms,
        }) = self
            .links
            .iter()
            .map(|l| l.2)
            .find(|m| matches!(m, LinkMode::Delay { .. }))
        {
            v["delay"] = serde_json::json!({"latency_ms": latency_ms, "jitter_ms": jitter_ms});
        }
        v
    }

    /// Whether link from→to lets traffic through.
    pub fn passes(&self, from: NodeId, to: NodeId) -> bool {
        from == to
            || self
                .links
                .iter()
                .find(|l| l.0 == from && l.1 == to)
                .is_none_or(|l| l.2.passes())
    }

    /// The largest set of nodes among `alive` whose links all pass both ways,
    /// by exhaustive search (clusters are small); `None` above 16 nodes.
    pub fn largest_clique(&self, alive: &BTreeSet<NodeId>) -> Option<usize> {
        let nodes: Vec<NodeId> = alive.iter().copied().collect();
        if nodes.len() > 16 {
            return None;
        }
        let mut best = 0;
        for mask in 0u32..(1u32 << nodes.len()) {
            let size = mask.count_ones() as usize;
            if size <= best {
                continue;
            }
            let members: Vec<NodeId> = (0..nodes.len())
                .filter(|i| mask & (1 << i) != 0)
                .map(|i| nodes[i])
                .collect();
            let connected = members
                .iter()
                .all(|&a| members.iter().all(|&b| self.passes(a, b)));
            if connected {
                best = size;
            }
        }
        Some(best)
    }
}

/// Every ordered pair of distinct `nodes`, sorted by (from, to), with
/// `Pass` where `pass(from, to)` holds and `cut` elsewhere: the link matrix
/// of every partition.
fn link_matrix(
    nodes: &[NodeId],
    cut: LinkMode,
    pass: impl Fn(NodeId, NodeId) -> bool,
) -> Vec<(NodeId, NodeId, LinkMode)> {
    links_by(
        nodes,
        |from, to| {
            if pass(from, to) {
                LinkMode::Pass
            } else {
                cut
            }
        },
    )
}

/// Every ordered pair of distinct `nodes`, sorted by (from, to), each with
/// the mode `mode(from, to)` gives it.
fn links_by(
    nodes: &[NodeId],
    mode: impl Fn(NodeId, NodeId) -> LinkMode,
) -> Vec<(NodeId, NodeId, LinkMode)> {
    let mut all = nodes.to_vec();
    all.sort_unstable();
    let mut links = Vec::new();
    for &from in &all {
        for &to in &all {
            if from != to {
                links.push((from, to, mode(from, to)));
            }
        }
    }
    links
}

/// A partition of explicit `groups` over `nodes` (a link passes when both
/// ends share a group; groups may overlap, as a bridge's do): what a
/// nemesis package builds once it knows which node plays which role.
pub fn of_groups(
    shape: Shape,
    groups: Vec<Vec<NodeId>>,
    nodes: &[NodeId],
    cut: LinkMode,
) -> Partition {
    let groups: Vec<Vec<NodeId>> = groups
        .into_iter()
        .map(|mut g| {
            g.sort_unstable();
            g
        })
        .collect();
    let links = link_matrix(nodes, cut, |from, to| {
        groups.iter().any(|g| g.contains(&from) && g.contains(&to))
    });
    Partition {
        shape,
        groups,
        links,
    }
}

/// `deaf` hears no node (every link into it is cut); every other link
/// passes. A `one-way` shape with groups `[deaf]` and the rest: a leader
/// that keeps sending, so the others keep hearing from it, while it hears
/// nothing back (not even of a newer term).
pub fn deafened(deaf: NodeId, nodes: &[NodeId], cut: LinkMode) -> Partition {
    of_links(
        Shape::OneWay,
        side_and_rest(&[deaf], nodes),
        nodes,
        cut,
        |_, to| to != deaf,
    )
}

/// The groups `[side, every other node]`, each sorted.
pub(super) fn side_and_rest(side: &[NodeId], nodes: &[NodeId]) -> Vec<Vec<NodeId>> {
    let mut side = side.to_vec();
    side.sort_unstable();
    let mut rest: Vec<NodeId> = nodes
        .iter()
        .copied()
        .filter(|n| !side.contains(n))
        .collect();
    rest.sort_unstable();
    vec![side, rest]
}

/// `side` cut off from the others both ways (its own links pass), and
/// every link among the others slowed down by `slow` (a
/// [`LinkMode::Delay`]): a `one` or `majority` shape whose bigger side
/// elects over slow links, so that a vote stays in flight for a while
/// after the voter cast it.
pub fn cut_and_slow(side: &[NodeId], nodes: &[NodeId], cut: LinkMode, slow: LinkMode) -> Partition {
    let links = links_by(nodes, |from, to| {
        match (side.contains(&from), side.contains(&to)) {
            (true, true) => LinkMode::Pass,
            (false, false) => slow,
            _ => cut,
        }
    });
    Partition {
        shape: if side.len() == 1 {
            Shape::One
        } else {
            Shape::Majority
        },
        groups: side_and_rest(side, nodes),
        links,
    }
}

/// A partition whose link from `from` to `to` is `mode(from, to)`, recorded
/// with `shape` and `groups` for the reader: for a step that also slows
/// some links down.
pub fn of_modes(
    shape: Shape,
    groups: Vec<Vec<NodeId>>,
    nodes: &[NodeId],
    mode: impl Fn(NodeId, NodeId) -> LinkMode,
) -> Partition {
    Partition {
        shape,
        groups,
        links: links_by(nodes, mode),
    }
}

/// A partition whose links pass where `pass(from, to)` says so, recorded
/// with `shape` and `groups` for the reader (a package's step that no
/// group structure describes exactly, such as one-way links of a few
/// nodes).
pub fn of_links(
    shape: Shape,
    groups: Vec<Vec<NodeId>>,
    nodes: &[NodeId],
    cut: LinkMode,
    pass: impl Fn(NodeId, NodeId) -> bool,
) -> Partition {
    Partition {
        shape,
        groups,
        links: link_matrix(nodes, cut, pass),
    }
}

/// `muted` reach no node (every link out of them cut); every other link
/// passes, so they keep hearing the others. A `one-way` shape with groups
/// `muted` and the rest: a node elected leader that can tell no one.
pub fn muted(muted: &[NodeId], nodes: &[NodeId], cut: LinkMode) -> Partition {
    of_links(
        Shape::OneWay,
        side_and_rest(muted, nodes),
        nodes,
        cut,
        |from, _| !muted.contains(&from),
    )
}

/// Builds a partition of `shape` over `nodes` with a seeded RNG; cut links get `cut`.
pub fn generate<R: Rng>(shape: Shape, nodes: &[NodeId], cut: LinkMode, rng: &mut R) -> Partition {
    let mut order: Vec<NodeId> = nodes.to_vec();
    order.sort_unstable();
    order.shuffle(rng);
    let n = order.len();
    let sorted = |mut v: Vec<NodeId>| {
        v.sort_unstable();
        v
    };
    // `views[a]` = the nodes a can dial, when groups do not say it alone.
    let mut views: Option<std::collections::BTreeMap<NodeId, BTreeSet<NodeId>>> = None;
    let mut one_way: Option<(NodeId, bool)> = None;
    let groups: Vec<Vec<NodeId>> = match shape {
        Shape::One => vec![vec![order[0]], sorted(order[1..].to_vec())],
        Shape::Majority => {
            let minority = n / 2;
            vec![
                sorted(order[..minority].to_vec()),
                sorted(order[minority..].to_vec()),
            ]
        }
        Shape::MajoritiesRing => {
            // Each node sees its ring neighbours within `reach`: a majority,
            // a different one for every node.
            let majority = n / 2 + 1;
            let reach = majority / 2;
            let v: std::collections::BTreeMap<NodeId, BTreeSet<NodeId>> = (0..n)
                .map(|i| {
                    let view = (0..=2 * reach)
                        .map(|d| order[(i + n + d - reach) % n])
                        .collect();
                    (order[i], view)
                })
                .collect();
            let groups = v.values().map(|g| g.iter().copied().collect()).collect();
            views = Some(v);
            groups
        }
        Shape::Bridge => {
            let bridge = order[0];
            let rest = &order[1..];
            let half = rest.len() / 2;
            let mut a = rest[..half].to_vec();
            let mut b = rest[half..].to_vec();
            a.push(bridge);
            b.push(bridge);
            vec![sorted(a), sorted(b)]
        }
        Shape::OneWay => {
            let x = order[0];
            one_way = Some((x, rng.gen_bool(0.5)));
            vec![vec![x], sorted(order[1..].to_vec())]
        }
        Shape::Random => {
            let majority = rng.gen_range(n / 2 + 1..n);
            let rest = &order[majority..];
            let k = rng.gen_range(1..=rest.len());
            let mut others = vec![Vec::new(); k];
            for &node in rest {
                others[rng.gen_range(0..k)].push(node);
            }
            let mut groups = vec![sorted(order[..majority].to_vec())];
            groups.extend(others.into_iter().filter(|g| !g.is_empty()).map(sorted));
            groups
        }
    };
    let links = link_matrix(&order, cut, |from, to| match (one_way, &views) {
        // Only links leaving x (outbound) or entering x are cut.
        (Some((x, true)), _) => from != x,
        (Some((x, false)), _) => to != x,
        (None, Some(v)) => v[&from].contains(&to),
        (None, None) => groups.iter().any(|g| g.contains(&from) && g.contains(&to)),
    });
    Partition {
        shape,
        groups,
        links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn relabelling_renames_groups_and_links_and_finds_symmetries() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let p = generate(Shape::Majority, &[1, 2, 3, 4, 5], LinkMode::Stall, &mut rng);
        let (a, b) = (p.groups[0][0], p.groups[1][0]);
        let swap = |n: NodeId| match n {
            n if n == a => b,
            n if n == b => a,
            n => n,
        };
        let q = p.relabel(swap);
        assert_eq!(q.links.len(), p.links.len());
        for &(f, t, m) in &p.links {
            assert!(q.links.contains(&(swap(f), swap(t), m)));
        }
        assert!(q.groups[0].contains(&b) && q.groups[1].contains(&a));
        // Two nodes on the same side are interchangeable; across the cut
        // they are not.
        assert!(!p.symmetric_in(a, b));
        if let Some(&c) = p.groups[0].get(1) {
            assert!(p.symmetric_in(a, c));
        }
        assert!(p.symmetric_in(a, a));
    }

    fn cut_pairs(p: &Partition) -> BTreeSet<(NodeId, NodeId)> {
        p.links
            .iter()
            .filter(|l| !l.2.passes())
            .map(|l| (l.0, l.1))
            .collect()
    }

    #[test]
    fn one_isolates_exactly_one_node_both_ways() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let p = generate(Shape::One, &[1, 2, 3, 4, 5], LinkMode::Stall, &mut rng);
        let x = p.groups[0][0];
        let expected: BTreeSet<_> = (1..=5)
            .filter(|&o| o != x)
            .flat_map(|o| [(x, o), (o, x)])
            .collect();
        assert_eq!(cut_pairs(&p), expected);
        assert_eq!(p.links.len(), 20);
    }

    #[test]
    fn majority_leaves_one_side_with_a_majority() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let p = generate(Shape::Majority, &[1, 2, 3, 4, 5], LinkMode::Reset, &mut rng);
        assert_eq!(p.groups[0].len(), 2);
        assert_eq!(p.groups[1].len(), 3);
        assert_eq!(p.largest_clique(&(1..=5).collect()), Some(3));
        assert_eq!(cut_pairs(&p).len(), 12);
    }

    #[test]
    fn majorities_ring_gives_every_node_a_distinct_majority_and_no_majority_clique() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let p = generate(
            Shape::MajoritiesRing,
            &[1, 2, 3, 4, 5],
            LinkMode::Stall,
            &mut rng,
        );
        let views: BTreeSet<_> = p.groups.iter().cloned().collect();
        assert_eq!(views.len(), 5);
        assert!(p.groups.iter().all(|g| g.len() == 3));
        assert_eq!(p.largest_clique(&(1..=5).collect()), Some(2));
        // Symmetric: a ring distance is the same both ways.
        for &(f, t, m) in &p.links {
            assert_eq!(p.passes(t, f), m.passes());
        }
    }

    #[test]
    fn bridge_node_reaches_everyone_and_the_halves_do_not_meet() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let p = generate(Shape::Bridge, &[1, 2, 3, 4, 5], LinkMode::Stall, &mut rng);
        let bridge: Vec<_> = p.groups[0]
            .iter()
            .filter(|n| p.groups[1].contains(n))
            .copied()
            .collect();
        assert_eq!(bridge.len(), 1);
        let b = bridge[0];
        assert!((1..=5).all(|o| p.passes(b, o) && p.passes(o, b)));
        assert_eq!(cut_pairs(&p).len(), 8);
    }

    #[test]
    fn one_way_cuts_a_single_direction() {
        for seed in 0..8 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let p = generate(Shape::OneWay, &[1, 2, 3], LinkMode::Stall, &mut rng);
            let cut = cut_pairs(&p);
            assert_eq!(cut.len(), 2);
            for (f, t) in &cut {
                assert!(!cut.contains(&(*t, *f)), "{p:?}");
            }
        }
    }

    #[test]
    fn random_always_keeps_a_connected_majority() {
        for seed in 0..50 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let p = generate(
                Shape::Random,
                &[1, 2, 3, 4, 5, 6, 7],
                LinkMode::Stall,
                &mut rng,
            );
            assert!(p.largest_clique(&(1..=7).collect()).unwrap() >= 4, "{p:?}");
            assert!(p.groups.len() >= 2);
            let all: BTreeSet<_> = p.groups.iter().flatten().copied().collect();
            assert_eq!(all.len(), 7);
        }
    }

    #[test]
    fn an_isolated_node_is_cut_both_ways_and_the_others_are_slow() {
        let slow = LinkMode::Delay {
            latency_ms: 40,
            jitter_ms: 0,
        };
        let p = cut_and_slow(&[2], &[3, 1, 2], LinkMode::Reset, slow);
        assert_eq!(p.shape, Shape::One);
        assert_eq!(p.groups, vec![vec![2], vec![1, 3]]);
        for &(from, to, mode) in &p.links {
            let expect = if from == 2 || to == 2 {
                LinkMode::Reset
            } else {
                slow
            };
            assert_eq!(mode, expect, "{from}->{to}");
        }
        assert_eq!(p.links.len(), 6);
        assert_eq!(p.to_value()["delay"]["latency_ms"], 40);
        let p = cut_and_slow(&[4, 1], &[1, 2, 3, 4, 5], LinkMode::Stall, slow);
        assert_eq!(p.shape, Shape::Majority);
        assert_eq!(p.groups, vec![vec![1, 4], vec![2, 3, 5]]);
        assert_eq!(p.links.iter().filter(|l| l.2 == slow).count(), 6);
        assert_eq!(p.links.iter().filter(|l| l.2 == LinkMode::Pass).count(), 2);
        assert!(p.passes(1, 4) && !p.passes(4, 2) && !p.passes(3, 1));
    }

    #[test]
    fn muted_nodes_reach_no_one_and_hear_everyone() {
        let p = muted(&[4, 2], &[1, 2, 3, 4], LinkMode::Stall);
        assert_eq!(p.shape, Shape::OneWay);
        assert_eq!(p.groups, vec![vec![2, 4], vec![1, 3]]);
        for a in 1..=4 {
            for b in (1..=4).filter(|&b| b != a) {
                assert_eq!(p.passes(a, b), a != 2 && a != 4, "{a}->{b}");
            }
        }
    }

    #[test]
    fn a_deafened_node_hears_no_one_and_is_heard_by_all() {
        let p = deafened(2, &[1, 2, 3], LinkMode::Stall);
        assert_eq!(p.shape, Shape::OneWay);
        for &(from, to, mode) in &p.links {
            let want = if to == 2 {
                LinkMode::Stall
            } else {
                LinkMode::Pass
            };
            assert_eq!(mode, want, "{from}->{to}");
        }
        assert_eq!(p.links.len(), 6);
        assert_eq!(p.groups, vec![vec![2], vec![1, 3]]);
    }
}
