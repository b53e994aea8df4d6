//! A crash-safe Raft key-value server.
//!
//! [`raft`] is the pure consensus core; everything else is the runtime around
//! it: [`storage`] (segment log, hard state, snapshots), [`transport`] (peer
//! TCP), [`api`] (HTTP client API), [`kv`] (the state machine) and [`trace`]
//! (the JSON-lines consensus trace read by the safety checker).

pub mod api;
pub mod cli;
pub mod kv;
pub mod raft;
pub mod runtime;
pub mod storage;
pub mod trace;
pub mod transport;
pub use runtime::run;
