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
