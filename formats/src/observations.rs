//! `observations.jsonl`: what an outside observer saw of the cluster, for
//! systems that write no trace of their own. Each line is one observation
//! of one node at one moment; the Raft-safety checker puts them on the same
//! timeline as the trace events. The contract is in `docs/formats.md`
//! ("Observations").
//!
//! Observations come in kinds (the `"event"` field): the polled status of a
//! node, and what a message router saw on the wire (a leader-only message
//! sent in a term, a vote cast in a term).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::jsonl::{self, Mismatch, Record};
use crate::trace::Role;

/// The conventional file name, at the top of a run folder.
pub const FILE_NAME: &str = "observations.jsonl";

/// Streams the observations of a file.
pub type Reader<R> = jsonl::Reader<R, Observation>;
/// Writes an observations file.
pub type Writer<W> = jsonl::Writer<W, Observation>;

/// One observation of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observation {
    /// Unix nanoseconds, the clock of the traces.
    pub time: u64,
    /// The node observed.
    pub node: u64,
    /// What was seen.
    #[serde(flatten)]
    pub kind: ObservationKind,
}

/// What was observed; on disk the `"event"` field names it (a line without
/// one is a status, the only kind the first version of the format had).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ObservationKind {
    /// The node's own account of itself (`GET /status` or the like).
    Status {
        /// Its current term.
        term: u64,
        /// Its role.
        role: Role,
        /// The leader it knows of, if any.
        leader: Option<u64>,
    },
    /// The node sent a message only the leader of `term` sends (an
    /// AppendEntries): it acted as leader of that term.
    LeaderMessage { term: u64 },
    /// The node cast its vote of `term` for `candidate` (granted it, or,
    /// as the candidate, asked for votes: a vote for itself).
    Vote { term: u64, candidate: u64 },
}

impl Record for Observation {
    fn parse_line(line: &[u8], _seq: u64) -> Result<Self, Mismatch> {
        let expected = |e: &dyn std::fmt::Display| {
            format!(
                "an observation: an object with integer \"time\" and \"node\", an \"event\" of \
                 status (the default), leader-message or vote, and its fields ({e})"
            )
        };
        let mut map: Map<String, Value> =
            serde_json::from_slice(line).map_err(|e| Mismatch::new(expected(&e), line))?;
        map.entry("event")
            .or_insert_with(|| Value::String("status".into()));
        serde_json::from_value(Value::Object(map)).map_err(|e| Mismatch::new(expected(&e), line))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_round_trips_and_the_kind_may_be_left_out() {
        let line = r#"{"time":1700000000123456789,"node":2,"event":"status","term":7,"role":"leader","leader":2}"#;
        let o = Observation::parse_line(line.as_bytes(), 0).unwrap();
        let mut w = Writer::new(Vec::new());
        w.write(&o).unwrap();
        assert_eq!(w.get_ref(), format!("{line}\n").as_bytes());

        let bare = r#"{"time": 5, "node": 3, "term": 2, "role": "follower", "polled_by": "x"}"#;
        let o = Observation::parse_line(bare.as_bytes(), 0).unwrap();
        assert_eq!(
            o.kind,
            ObservationKind::Status {
                term: 2,
                role: Role::Follower,
                leader: None
            }
        );
    }

    #[test]
    fn wire_kinds_round_trip() {
        for line in [
            r#"{"time":3,"node":1,"event":"leader-message","term":4}"#,
            r#"{"time":4,"node":2,"event":"vote","term":4,"candidate":1}"#,
        ] {
            let o = Observation::parse_line(line.as_bytes(), 0).unwrap();
            let mut w = Writer::new(Vec::new());
            w.write(&o).unwrap();
            assert_eq!(w.get_ref(), format!("{line}\n").as_bytes());
        }
        let m = Observation::parse_line(br#"{"time":1,"node":1,"event":"vote","term":1}"#, 0)
            .unwrap_err();
        assert!(m.expected.contains("candidate"), "{m:?}");
    }

    #[test]
    fn an_unknown_kind_or_role_is_an_error() {
        let m = Observation::parse_line(br#"{"time":1,"node":1,"event":"gossip"}"#, 0).unwrap_err();
        assert!(m.expected.contains("unknown variant `gossip`"), "{m:?}");
        let m = Observation::parse_line(br#"{"time":1,"node":1,"term":1,"role":"king"}"#, 0)
            .unwrap_err();
        assert!(m.expected.contains("king"), "{m:?}");
    }
}
