//! `trace.jsonl`: what one node did, as evidence for the Raft-safety checker
//! and the report's leader lanes. The node appends a line per role change,
//! commit-index advance, applied entry, applied configuration and installed
//! snapshot, and one at every start. The contract is in `docs/formats.md`
//! ("Trace").

use serde::{Deserialize, Serialize};

use crate::jsonl::{self, Mismatch, Record};

/// The conventional file name, under `nodes/nN/` in a run folder.
pub const FILE_NAME: &str = "trace.jsonl";

/// Streams the events of a trace file.
pub type Reader<R> = jsonl::Reader<R, TraceEvent>;
/// Writes a trace file.
pub type Writer<W> = jsonl::Writer<W, TraceEvent>;

/// A node's role, as the client API and the traces name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Campaigning, including the pre-vote phase.
    Candidate,
    /// Leads its term.
    Leader,
    /// A non-voting member catching up.
    Learner,
}

impl Role {
    /// The on-disk name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Follower => "follower",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
            Role::Learner => "learner",
        }
    }
}

/// What kind of entry was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// The empty entry a new leader commits first.
    Noop,
    /// A client command.
    Command,
    /// A membership change.
    Config,
}

/// One line of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// Unix nanoseconds (wall clock of the node's machine).
    pub time: u64,
    /// The node that wrote it.
    pub node: u64,
    /// What happened.
    #[serde(flatten)]
    pub kind: TraceKind,
}

/// What a trace line says happened; on disk the `"event"` field names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum TraceKind {
    /// A process lifetime begins: the commit index is relearned from
    /// scratch and the log after the snapshot will be applied again.
    Start {
        /// The term recovered from disk.
        term: u64,
        /// The last index the recovered snapshot covers (0: none).
        snapshot_index: u64,
    },
    /// The node's role or its term changed.
    Role {
        /// The current term.
        term: u64,
        /// The new role.
        role: Role,
        /// The leader it knows of, if any.
        leader: Option<u64>,
    },
    /// The node's commit index advanced.
    Commit {
        /// The new commit index.
        index: u64,
        /// The term of the entry at that index.
        term: u64,
    },
    /// An entry was applied to the state machine.
    Apply {
        /// Its index.
        index: u64,
        /// Its term.
        term: u64,
        /// A digest of the entry, equal on every node applying the same one.
        digest: String,
        /// What the entry holds.
        kind: EntryKind,
    },
    /// A configuration entry was applied.
    Config {
        /// Its index.
        index: u64,
        /// The voters.
        members: Vec<u64>,
        /// The learners.
        learners: Vec<u64>,
    },
    /// The state machine was replaced by a snapshot.
    Snapshot {
        /// The last index the snapshot covers.
        index: u64,
        /// The term of that entry.
        term: u64,
    },
}

impl Record for TraceEvent {
    fn parse_line(line: &[u8], _seq: u64) -> Result<Self, Mismatch> {
        serde_json::from_slice(line).map_err(|e| {
            Mismatch::new(
                format!(
                    "a trace event: an object with integer \"time\" and \"node\" and an \"event\" \
                     of start, role, commit, apply, config or snapshot with its fields ({e})"
                ),
                line,
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<TraceEvent, Mismatch> {
        TraceEvent::parse_line(line.as_bytes(), 0)
    }

    #[test]
    fn every_kind_round_trips() {
        let lines = [
            r#"{"time":1,"node":1,"event":"start","term":0,"snapshot_index":0}"#,
            r#"{"time":2,"node":1,"event":"role","term":4,"role":"leader","leader":1}"#,
            r#"{"time":3,"node":1,"event":"role","term":5,"role":"candidate","leader":null}"#,
            r#"{"time":4,"node":1,"event":"commit","index":17,"term":4}"#,
            r#"{"time":5,"node":1,"event":"apply","index":17,"term":4,"digest":"3f9a000000000000","kind":"command"}"#,
            r#"{"time":6,"node":1,"event":"config","index":20,"members":[1,2,3],"learners":[4]}"#,
            r#"{"time":7,"node":1,"event":"snapshot","index":30,"term":5}"#,
        ];
        let mut w = Writer::new(Vec::new());
        for l in lines {
            w.write(&parse(l).expect(l)).unwrap();
        }
        let written = String::from_utf8(w.get_ref().clone()).unwrap();
        assert_eq!(written, lines.map(|l| format!("{l}\n")).concat());
    }

    #[test]
    fn traces_written_with_sorted_keys_still_read() {
        let e = parse(
            r#"{"digest":"ab","event":"apply","index":2,"kind":"noop","node":3,"term":1,"time":9}"#,
        )
        .unwrap();
        assert_eq!(e.node, 3);
        assert!(matches!(e.kind, TraceKind::Apply { index: 2, .. }));
        let e = parse(r#"{"event":"role","node":1,"role":"follower","term":2,"time":5}"#).unwrap();
        assert!(matches!(e.kind, TraceKind::Role { leader: None, .. }));
        let e = parse(r#"{"time":1,"node":1,"event":"commit","index":3,"term":1,"new":true}"#);
        assert!(e.is_ok(), "a field this reader does not know is ignored");
    }

    #[test]
    fn a_bad_event_names_what_was_expected() {
        let m = parse(r#"{"time":1,"node":1,"event":"vote"}"#).unwrap_err();
        assert!(m.expected.contains("unknown variant `vote`"), "{m:?}");
        let m = parse(r#"{"time":1,"event":"commit","index":1,"term":1}"#).unwrap_err();
        assert!(m.expected.contains("missing field `node`"), "{m:?}");
    }
}
