//! Raft messages as Maelstrom JSON bodies, and Maelstrom node names as our
//! numeric ids.
//!
//! The names follow Maelstrom's Raft tutorial, so that a router can observe
//! election safety from the wire without knowing our node:
//! `request_vote {term, candidate_id, last_log_index, last_log_term}` /
//! `request_vote_res {term, vote_granted}` and
//! `append_entries {term, leader_id, prev_log_index, prev_log_term, entries,
//! leader_commit}` / `append_entries_res {term, success, …}`. PreVote rounds
//! grant no vote, so they travel under other names (`pre_vote`,
//! `pre_vote_res`) that an observer of `request_vote_res` never mistakes for
//! votes; snapshots and leadership transfer have names of their own
//! (`install_snapshot`, `install_snapshot_res`, `timeout_now`). Fields the
//! tutorial does not have (`round`, `match_index`, the back-off hint, …) are
//! extra fields of the same bodies.
//!
//! The sender of a message is the envelope's `src`, never a body field.

use crate::raft::{Entry, EntryPayload, Index, Membership, Message, MessageBody, NodeId, Term};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("node_ids is empty")]
    NoNodes,
    #[error("node id {0:?} appears twice in node_ids")]
    Duplicate(String),
    #[error("node_id {0:?} is not in node_ids")]
    NotAMember(String),
    #[error("unknown node {0:?}")]
    UnknownNode(String),
    #[error("bad {kind} body: {reason}")]
    BadBody { kind: String, reason: String },
}

/// The mapping between Maelstrom node names and our numeric ids.
///
/// Names `n1, n2, …` map to their number (so logs, traces and the harness
/// agree on ids); any other naming maps to the position in `node_ids` plus
/// one, which is the same on every node because Maelstrom hands every node
/// the same list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ids {
    me: NodeId,
    names: HashMap<NodeId, String>,
    ids: HashMap<String, NodeId>,
}

impl Ids {
    pub fn new(node_ids: &[String], me: &str) -> Result<Ids, WireError> {
        if node_ids.is_empty() {
            return Err(WireError::NoNodes);
        }
        let numbered: Option<Vec<NodeId>> = node_ids
            .iter()
            .map(|n| {
                n.strip_prefix('n')
                    .filter(|d| !d.starts_with('0') && d.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|d| d.parse().ok())
            })
            .collect();
        let numbers = numbered.unwrap_or_else(|| (1..=node_ids.len() as NodeId).collect());
        let mut names = HashMap::new();
        let mut ids = HashMap::new();
        for (name, id) in node_ids.iter().zip(numbers) {
            if ids.insert(name.clone(), id).is_some() || names.insert(id, name.clone()).is_some() {
                return Err(WireError::Duplicate(name.clone()));
            }
        }
        let me = *ids
            .get(me)
            .ok_or_else(|| WireError::NotAMember(me.to_string()))?;
        Ok(Ids { me, names, ids })
    }

    /// Our own id.
    pub fn me(&self) -> NodeId {
        self.me
    }

    /// Every node's id, ascending.
    pub fn all(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self.names.keys().copied().collect();
        v.sort_unstable();
        v
    }

    pub fn name(&self, id: NodeId) -> Option<&str> {
        self.names.get(&id).map(String::as_str)
    }

    pub fn id(&self, name: &str) -> Option<NodeId> {
        self.ids.get(name).copied()
    }
}

/// One log entry on the wire. Commands are opaque bytes to the core; they
/// travel as hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct WireEntry {
    term: Term,
    index: Index,
    #[serde(flatten)]
    payload: WirePayload,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WirePayload {
    Noop,
    Command {
        data: String,
    },
    Config {
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
    },
}

/// The bodies, tagged by Maelstrom's `type`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBody {
    RequestVote {
        term: Term,
        candidate_id: String,
        last_log_index: Index,
        last_log_term: Term,
        #[serde(default)]
        transfer: bool,
    },
    RequestVoteRes {
        term: Term,
        vote_granted: bool,
    },
    PreVote {
        term: Term,
        candidate_id: String,
        last_log_index: Index,
        last_log_term: Term,
        #[serde(default)]
        transfer: bool,
    },
    PreVoteRes {
        term: Term,
        vote_granted: bool,
    },
    AppendEntries {
        term: Term,
        leader_id: String,
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<WireEntry>,
        leader_commit: Index,
        round: u64,
    },
    AppendEntriesRes {
        term: Term,
        success: bool,
        match_index: Index,
        conflict_term: Option<Term>,
        conflict_index: Index,
        round: u64,
    },
    InstallSnapshot {
        term: Term,
        leader_id: String,
        last_included_index: Index,
        last_included_term: Term,
        voters: BTreeSet<NodeId>,
        learners: BTreeSet<NodeId>,
        offset: u64,
        data: String,
        done: bool,
        round: u64,
    },
    InstallSnapshotRes {
        term: Term,
        next_offset: u64,
        last_index: Index,
        done: bool,
        round: u64,
    },
    TimeoutNow {
        term: Term,
    },
}

/// The Maelstrom `type` names of the Raft messages (every other `type` is a
/// client request or something we do not speak).
pub const RAFT_TYPES: [&str; 9] = [
    "request_vote",
    "request_vote_res",
    "pre_vote",
    "pre_vote_res",
    "append_entries",
    "append_entries_res",
    "install_snapshot",
    "install_snapshot_res",
    "timeout_now",
];

/// The JSON body of a core message (without `msg_id`, which the writer adds).
pub fn encode(m: &Message, ids: &Ids) -> Result<serde_json::Value, WireError> {
    let from = || {
        ids.name(m.from)
            .map(String::from)
            .ok_or_else(|| WireError::UnknownNode(format!("id {}", m.from)))
    };
    let term = m.term;
    let body = match &m.body {
        MessageBody::RequestVote {
            pre_vote,
            last_log_index,
            last_log_term,
            transfer,
        } => {
            let (candidate_id, last_log_index, last_log_term, transfer) =
                (from()?, *last_log_index, *last_log_term, *transfer);
            if *pre_vote {
                WireBody::PreVote {
                    term,
                    candidate_id,
                    last_log_index,
                    last_log_term,
                    transfer,
                }
            } else {
                WireBody::RequestVote {
                    term,
                    candidate_id,
                    last_log_index,
                    last_log_term,
                    transfer,
                }
            }
        }
        MessageBody::RequestVoteResponse { pre_vote, granted } => {
            let vote_granted = *granted;
            if *pre_vote {
                WireBody::PreVoteRes { term, vote_granted }
            } else {
                WireBody::RequestVoteRes { term, vote_granted }
            }
        }
        MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            round,
        } => WireBody::AppendEntries {
            term,
            leader_id: from()?,
            prev_log_index: *prev_log_index,
            prev_log_term: *prev_log_term,
            entries: entries.iter().map(entry_to_wire).collect(),
            leader_commit: *leader_commit,
            round: *round,
        },
        MessageBody::AppendEntriesResponse {
            success,
            match_index,
            conflict_term,
            conflict_index,
            round,
        } => WireBody::AppendEntriesRes {
            term,
            success: *success,
            match_index: *match_index,
            conflict_term: *conflict_term,
            conflict_index: *conflict_index,
            round: *round,
        },
        MessageBody::InstallSnapshot {
            meta,
            offset,
            data,
            done,
            round,
        } => WireBody::InstallSnapshot {
            term,
            leader_id: from()?,
            last_included_index: meta.last_index,
            last_included_term: meta.last_term,
            voters: meta.membership.voters.clone(),
            learners: meta.membership.learners.clone(),
            offset: *offset,
            data: hex(data),
            done: *done,
            round: *round,
        },
        MessageBody::InstallSnapshotResponse {
            next_offset,
            last_index,
            done,
            round,
        } => WireBody::InstallSnapshotRes {
            term,
            next_offset: *next_offset,
            last_index: *last_index,
            done: *done,
            round: *round,
        },
        MessageBody::TimeoutNow => WireBody::TimeoutNow { term },
    };
    Ok(serde_json::to_value(body).expect("wire bodies always serialize"))
}

/// The core message of a body that `src` sent to us.
pub fn decode(body: &serde_json::Value, src: &str, ids: &Ids) -> Result<Message, WireError> {
    let kind = body
        .get("type")
        .and_then(|t| t.as_str())
        .unwrap_or("?")
        .to_string();
    let bad = |reason: String| WireError::BadBody {
        kind: kind.clone(),
        reason,
    };
    let from = ids
        .id(src)
        .ok_or_else(|| WireError::UnknownNode(src.to_string()))?;
    let wire: WireBody = serde_json::from_value(body.clone()).map_err(|e| bad(e.to_string()))?;
    let (term, body) = match wire {
        WireBody::RequestVote {
            term,
            last_log_index,
            last_log_term,
            transfer,
            ..
        }
        | WireBody::PreVote {
            term,
            last_log_index,
            last_log_term,
            transfer,
            ..
        } => (
            term,
            MessageBody::RequestVote {
                pre_vote: kind == "pre_vote",
                last_log_index,
                last_log_term,
                transfer,
            },
        ),
        WireBody::RequestVoteRes { term, vote_granted } => (
            term,
            MessageBody::RequestVoteResponse {
                pre_vote: false,
                granted: vote_granted,
            },
        ),
        WireBody::PreVoteRes { term, vote_granted } => (
            term,
            MessageBody::RequestVoteResponse {
                pre_vote: true,
                granted: vote_granted,
            },
        ),
        WireBody::AppendEntries {
            term,
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit,
            round,
            ..
        } => {
            let entries = entries
                .into_iter()
                .map(entry_from_wire)
                .collect::<Result<Vec<_>, String>>()
                .map_err(bad)?;
            (
                term,
                MessageBody::AppendEntries {
                    prev_log_index,
                    prev_log_term,
                    entries,
                    leader_commit,
                    round,
                },
            )
        }
        WireBody::AppendEntriesRes {
            term,
            success,
            match_index,
            conflict_term,
            conflict_index,
            round,
        } => (
            term,
            MessageBody::AppendEntriesResponse {
                success,
                match_index,
                conflict_term,
                conflict_index,
                round,
            },
        ),
        WireBody::InstallSnapshot {
            term,
            last_included_index,
            last_included_term,
            voters,
            learners,
            offset,
            data,
            done,
            round,
            ..
        } => (
            term,
            MessageBody::InstallSnapshot {
                meta: crate::raft::SnapshotMeta {
                    last_index: last_included_index,
                    last_term: last_included_term,
                    membership: Membership { voters, learners },
                },
                offset,
                data: unhex(&data).map_err(bad)?,
                done,
                round,
            },
        ),
        WireBody::InstallSnapshotRes {
            term,
            next_offset,
            last_index,
            done,
            round,
        } => (
            term,
            MessageBody::InstallSnapshotResponse {
                next_offset,
                last_index,
                done,
                round,
            },
        ),
        WireBody::TimeoutNow { term } => (term, MessageBody::TimeoutNow),
    };
    Ok(Message {
        from,
        to: ids.me(),
        term,
        body,
    })
}

fn entry_to_wire(e: &Entry) -> WireEntry {
    let payload = match &e.payload {
        EntryPayload::Noop => WirePayload::Noop,
        EntryPayload::Command(data) => WirePayload::Command { data: hex(data) },
        EntryPayload::Config(m) => WirePayload::Config {
            voters: m.voters.clone(),
            learners: m.learners.clone(),
        },
    };
    WireEntry {
        term: e.term,
        index: e.index,
        payload,
    }
}

fn entry_from_wire(e: WireEntry) -> Result<Entry, String> {
    let payload = match e.payload {
        WirePayload::Noop => EntryPayload::Noop,
        WirePayload::Command { data } => EntryPayload::Command(unhex(&data)?),
        WirePayload::Config { voters, learners } => {
            EntryPayload::Config(Membership { voters, learners })
        }
    };
    Ok(Entry {
        term: e.term,
        index: e.index,
        payload,
    })
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if s.len() % 2 == 1 {
        return Err("hex data of odd length".into());
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        _ => Err(format!("bad hex digit {:?}", c as char)),
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::SnapshotMeta;
    use serde_json::json;

    fn ids(me: &str) -> Ids {
        Ids::new(&["n1".into(), "n2".into(), "n3".into()], me).unwrap()
    }

    fn round_trip(body: MessageBody) -> serde_json::Value {
        let m = Message {
            from: 2,
            to: 1,
            term: 7,
            body,
        };
        let v = encode(&m, &ids("n2")).unwrap();
        assert_eq!(decode(&v, "n2", &ids("n1")).unwrap(), m, "{v}");
        v
    }

    #[test]
    fn every_core_message_round_trips_under_the_tutorial_names() {
        let v = round_trip(MessageBody::RequestVote {
            pre_vote: false,
            last_log_index: 3,
            last_log_term: 2,
            transfer: false,
        });
        assert_eq!(v["type"], "request_vote");
        assert_eq!(v["candidate_id"], "n2");
        assert_eq!(v["last_log_index"], 3);
        let v = round_trip(MessageBody::RequestVote {
            pre_vote: true,
            last_log_index: 3,
            last_log_term: 2,
            transfer: true,
        });
        assert_eq!(v["type"], "pre_vote");
        let v = round_trip(MessageBody::RequestVoteResponse {
            pre_vote: false,
            granted: true,
        });
        assert_eq!(
            v,
            json!({"type": "request_vote_res", "term": 7, "vote_granted": true})
        );
        let v = round_trip(MessageBody::RequestVoteResponse {
            pre_vote: true,
            granted: true,
        });
        assert_eq!(v["type"], "pre_vote_res");
        let mut m = Membership::new([1, 2]);
        m.learners.insert(3);
        let v = round_trip(MessageBody::AppendEntries {
            prev_log_index: 4,
            prev_log_term: 6,
            entries: vec![
                Entry {
                    term: 7,
                    index: 5,
                    payload: EntryPayload::Noop,
                },
                Entry {
                    term: 7,
                    index: 6,
                    payload: EntryPayload::Command(vec![0, 1, 0xab, 0xff]),
                },
                Entry {
                    term: 7,
                    index: 7,
                    payload: EntryPayload::Config(m.clone()),
                },
            ],
            leader_commit: 4,
            round: 9,
        });
        assert_eq!(v["type"], "append_entries");
        assert_eq!(v["leader_id"], "n2");
        assert_eq!(v["entries"][1]["data"], "0001abff");
        round_trip(MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 4,
            conflict_term: Some(3),
            conflict_index: 2,
            round: 9,
        });
        round_trip(MessageBody::InstallSnapshot {
            meta: SnapshotMeta {
                last_index: 10,
                last_term: 6,
                membership: m,
            },
            offset: 0,
            data: b"snap".to_vec(),
            done: true,
            round: 1,
        });
        round_trip(MessageBody::InstallSnapshotResponse {
            next_offset: 4,
            last_index: 10,
            done: true,
            round: 1,
        });
        let v = round_trip(MessageBody::TimeoutNow);
        assert_eq!(v["type"], "timeout_now");
    }

    #[test]
    fn bad_bodies_and_unknown_senders_are_errors_not_panics() {
        let me = ids("n1");
        let ok = json!({"type": "timeout_now", "term": 1});
        assert!(matches!(
            decode(&ok, "n9", &me),
            Err(WireError::UnknownNode(_))
        ));
        for bad in [
            json!({"type": "append_entries", "term": 1}),
            json!({"type": "request_vote_res", "term": "x", "vote_granted": true}),
            json!({"type": "install_snapshot", "term": 1, "leader_id": "n2", "last_included_index": 1,
                   "last_included_term": 1, "voters": [1], "learners": [], "offset": 0,
                   "data": "zz", "done": true, "round": 0}),
        ] {
            assert!(
                matches!(decode(&bad, "n2", &me), Err(WireError::BadBody { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn node_names_map_to_their_numbers_or_to_their_positions() {
        let i = Ids::new(&["n3".into(), "n1".into(), "n2".into()], "n3").unwrap();
        assert_eq!((i.me(), i.id("n1"), i.name(2)), (3, Some(1), Some("n2")));
        let i = Ids::new(&["a".into(), "b".into()], "b").unwrap();
        assert_eq!((i.me(), i.all()), (2, vec![1, 2]));
        assert_eq!(
            Ids::new(&["n1".into(), "n1".into()], "n1"),
            Err(WireError::Duplicate("n1".into()))
        );
        assert!(matches!(
            Ids::new(&["n1".into()], "n2"),
            Err(WireError::NotAMember(_))
        ));
        assert_eq!(Ids::new(&[], "n1"), Err(WireError::NoNodes));
        // "n01" is not the number 1: fall back to positions for every name.
        let i = Ids::new(&["n01".into(), "n5".into()], "n5").unwrap();
        assert_eq!(i.me(), 2);
    }
}
