//! What a decision procedure may spend, and why it stopped when it ran out.
//!
//! One [`Budget`] is shared by every part of a check: the time limit, the
//! memory limit of the memo tables (summed over the parts running in
//! parallel) and the flag that stops the others once one part found a
//! violation. The procedures ([`graph`](crate::graph),
//! [`search`](crate::search)) only read it; [`linear`](crate::linear) sets
//! it up.

use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

/// Why a search stopped without a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    Time,
    Memory,
    /// Another part already found a violation.
    Stopped,
}

/// Budget shared by all parts of one check (a part may get an earlier
/// `deadline`, a time slice, before the check's own `global_deadline`).
#[derive(Debug, Clone, Copy)]
pub struct Budget<'a> {
    pub deadline: Instant,
    pub global_deadline: Instant,
    pub memory_limit: u64,
    pub used: &'a AtomicU64,
    pub stop: &'a AtomicBool,
}

/// Bytes a table of `len` entries and usable capacity `cap` may need at
/// once over the next few inserts: the grown table when it is nearly full.
pub fn grow_bytes(len: usize, cap: usize, entry: usize) -> usize {
    if len + 64 < cap {
        0
    } else {
        table_bytes((cap * 2).max(64), entry)
    }
}

/// Bytes of a hash table with `cap` usable slots of `entry` bytes
/// (hashbrown: buckets are the next power of two above cap·8/7, one
/// control byte each).
pub fn table_bytes(cap: usize, entry: usize) -> usize {
    if cap == 0 {
        return 0;
    }
    let buckets = (cap * 8 / 7).next_power_of_two();
    buckets * (entry + 1)
}
