//! Traces of a long, healthy run, generated on the fly: each node's events
//! come from an iterator that computes them from the index, so millions of
//! events cost no memory. Shared by `tests/raft_stream.rs` and
//! `benches/raft.rs`.
//!
//! The cluster commits one entry per [`STEP_NS`]; the leader changes every
//! [`TERM_LEN`] indexes. Every node commits and applies each index (two
//! events), except while it is down or cut off. Each node is down once
//! every [`OUTAGE_EVERY`] indexes for [`OUTAGE_LEN`] of them, then restarts
//! from its last snapshot (a multiple of [`SNAPSHOT_EVERY`]) and replays
//! the log from there; and cut off as often, for as long, after which the
//! leader's snapshot brings it up to date. Outages and cuts of different
//! nodes are staggered so a majority always applies.

#![allow(dead_code)]

use formats::trace::{EntryKind, Role, TraceEvent, TraceKind};

/// Nanoseconds between consecutive indexes (10 000 entries a second).
pub const STEP_NS: u64 = 100_000;
/// Indexes per term.
pub const TERM_LEN: u64 = 10_000;
/// Indexes between two snapshots of a node.
pub const SNAPSHOT_EVERY: u64 = 1000;
/// Each node is down (and, separately, cut off) once per this many indexes.
pub const OUTAGE_EVERY: u64 = 200_000;
/// Indexes an outage or a cut lasts.
pub const OUTAGE_LEN: u64 = 20_000;
/// Start of the traces' clock (2026-01-01).
pub const EPOCH_NS: u64 = 1_767_225_600_000_000_000;

/// The shape of a generated run.
#[derive(Debug, Clone, Copy)]
pub struct Soak {
    pub nodes: u64,
    /// Events each node's trace holds.
    pub events_per_node: u64,
}

pub fn term_of(index: u64) -> u64 {
    1 + index / TERM_LEN
}

/// A new leader's first entry (a no-op) is at this index.
fn term_starts_at(index: u64) -> bool {
    term_of(index) != term_of(index - 1)
}

pub fn leader_of(term: u64, nodes: u64) -> u64 {
    1 + (term * 7) % nodes
}

/// The digest every node writes for the entry at `index`.
pub fn digest_of(index: u64) -> String {
    let mut x = index.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ term_of(index);
    x ^= x >> 31;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    format!("{:016x}", x ^ (x >> 29))
}

/// Where node `n` is at `index`: down until the end of an outage, cut off
/// until the end of a cut, or up.
fn phase(s: &Soak, node: u64, index: u64) -> (u64, bool) {
    let offset = OUTAGE_EVERY / s.nodes * (node - 1) + OUTAGE_EVERY / 4;
    let k = (index + OUTAGE_EVERY - offset % OUTAGE_EVERY) % OUTAGE_EVERY;
    // k in [0, OUTAGE_LEN): down; [OUTAGE_EVERY/2, +OUTAGE_LEN): cut off.
    let down = k < OUTAGE_LEN && index > OUTAGE_LEN;
    let cut = (OUTAGE_EVERY / 2..OUTAGE_EVERY / 2 + OUTAGE_LEN).contains(&k);
    (k, down || cut)
}

/// The events node `node` writes while the cluster commits `index`.
pub fn events_at(s: &Soak, node: u64, index: u64) -> Vec<TraceEvent> {
    let (k, away) = phase(s, node, index);
    if away {
        return Vec::new();
    }
    let mut time = EPOCH_NS + index * STEP_NS + node * 100;
    let mut out = Vec::new();
    let mut push = |kind: TraceKind| {
        out.push(TraceEvent { time, node, kind });
        time += 1;
    };
    let term = term_of(index);
    let back = index > OUTAGE_LEN && (k == OUTAGE_LEN || k == OUTAGE_EVERY / 2 + OUTAGE_LEN);
    if back && k == OUTAGE_LEN {
        // Restarted: replay from the last snapshot before the outage.
        let down_at = index - OUTAGE_LEN;
        let snap = down_at / SNAPSHOT_EVERY * SNAPSHOT_EVERY;
        push(TraceKind::Start {
            term: term_of(down_at),
            snapshot_index: snap,
        });
        push(role(term, node, s.nodes));
        push(TraceKind::Commit {
            index: index - 1,
            term: term_of(index - 1),
        });
        for i in snap + 1..index {
            push(apply(i));
        }
    } else if back {
        push(role(term, node, s.nodes));
        push(TraceKind::Snapshot {
            index: index - 1,
            term: term_of(index - 1),
        });
    } else if index == 1 || term_starts_at(index) {
        push(role(term, node, s.nodes));
    }
    push(TraceKind::Commit { index, term });
    push(apply(index));
    out
}

fn role(term: u64, node: u64, nodes: u64) -> TraceKind {
    let leader = leader_of(term, nodes);
    TraceKind::Role {
        term,
        role: if leader == node {
            Role::Leader
        } else {
            Role::Follower
        },
        leader: Some(leader),
    }
}

fn apply(index: u64) -> TraceKind {
    TraceKind::Apply {
        index,
        term: term_of(index),
        digest: digest_of(index),
        kind: if term_starts_at(index) {
            EntryKind::Noop
        } else {
            EntryKind::Command
        },
    }
}

/// Node `node`'s trace, `events_per_node` events long.
pub fn node_trace(s: Soak, node: u64) -> impl Iterator<Item = TraceEvent> + Send {
    (1..)
        .flat_map(move |i| events_at(&s, node, i))
        .take(s.events_per_node as usize)
}
