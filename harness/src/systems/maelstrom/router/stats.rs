//! The router's counters.

use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the router, for tests, stats and the report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RouterStats {
    /// Node-to-node messages read from the nodes.
    pub routed: u64,
    /// Lines written to a node's stdin (node messages and client requests).
    pub delivered: u64,
    /// Lost to a `drop` message fault.
    pub dropped: u64,
    /// Lost to a `reset` link.
    pub cut: u64,
    /// Sent into a `stall` link (held until it heals, or lost if it resets).
    pub held: u64,
    pub delayed: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Lost because the destination was not running (or restarted).
    pub dead: u64,
    /// Dropped, oldest first, from a full queue (a link stalled for long, a
    /// paused node that reads nothing).
    pub overflow: u64,
    /// Replies that completed a pending client call.
    pub client_replies: u64,
    /// Messages to a client that nobody waited for.
    pub late: u64,
    /// Lines that were not a JSON message with a `dest`.
    pub malformed: u64,
    pub unknown_dest: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) routed: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) cut: AtomicU64,
    pub(super) held: AtomicU64,
    pub(super) delayed: AtomicU64,
    pub(super) duplicated: AtomicU64,
    pub(super) reordered: AtomicU64,
    pub(super) dead: AtomicU64,
    pub(super) overflow: AtomicU64,
    pub(super) client_replies: AtomicU64,
    pub(super) late: AtomicU64,
    pub(super) malformed: AtomicU64,
    pub(super) unknown_dest: AtomicU64,
}

pub(super) fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub(super) fn snapshot(&self) -> RouterStats {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RouterStats {
            routed: g(&self.routed),
            delivered: g(&self.delivered),
            dropped: g(&self.dropped),
            cut: g(&self.cut),
            held: g(&self.held),
            delayed: g(&self.delayed),
            duplicated: g(&self.duplicated),
            reordered: g(&self.reordered),
            dead: g(&self.dead),
            overflow: g(&self.overflow),
            client_replies: g(&self.client_replies),
            late: g(&self.late),
            malformed: g(&self.malformed),
            unknown_dest: g(&self.unknown_dest),
        }
    }
}
