//! Shared by the Raft-safety tests (and, for `soak`, the benchmark).

pub mod reference;
pub mod soak;
