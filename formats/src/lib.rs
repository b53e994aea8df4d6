//! The files a run leaves behind, each defined once: its types, its reader
//! and its writer. Every crate that writes or reads one of them goes through
//! this crate, so the format cannot drift between the writer (harness, node)
//! and the readers (checker, report).
//!
//! - [`history`]: `history.jsonl`, the client operations and faults.
//! - [`trace`]: `nodes/nN/trace.jsonl`, what each node did.
//! - [`observations`]: `observations.jsonl`, what an outside observer saw.
//!
//! All three are JSON lines ([`jsonl`]): readers stream (a history of a long
//! run holds millions of events), every error names the file, the line and
//! what was expected, and a last line torn by a crash mid-write is skipped,
//! not an error. The contracts, in prose, are in `docs/formats.md`.

pub mod history;
pub mod jsonl;
pub mod observations;
pub mod trace;

pub use jsonl::{Numbered, ReadError};
