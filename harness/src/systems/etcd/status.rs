//! A member's Raft state from `GET /debug/vars` (key `raft.status`).
//!
//! This is the Raft node's own view (term, vote, role, leader), which is
//! what a one-leader-per-term check needs. The `raft_term` of response
//! headers and of `maintenance/status` is the term of the last applied
//! entry and lags behind: an isolated member campaigning at term 12 still
//! reported 2 there.
//!
//! Ids here are hexadecimal strings without leading zeros (`"d4aee2a6fdaf1bf"`),
//! the same numbers the v3 JSON API writes in decimal
//! (`"957839736802308543"`); no leader is `"0"`.

use std::collections::BTreeMap;

use formats::trace::Role;
use serde::{Deserialize, Serialize};

/// A Raft role, as etcd's raft names it (`StateLeader`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RaftState {
    #[serde(rename = "StateFollower")]
    Follower,
    #[serde(rename = "StateCandidate")]
    Candidate,
    #[serde(rename = "StateLeader")]
    Leader,
    #[serde(rename = "StatePreCandidate")]
    PreCandidate,
}

impl RaftState {
    /// The role of the harness's status probe and observations; a
    /// pre-candidate counts as a candidate (as in our node's traces).
    pub fn role(self) -> Role {
        match self {
            RaftState::Leader => Role::Leader,
            RaftState::Follower => Role::Follower,
            RaftState::Candidate | RaftState::PreCandidate => Role::Candidate,
        }
    }
}

/// The `raft.status` of one member, ids as numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RaftStatus {
    /// This member's id.
    pub id: u64,
    pub term: u64,
    /// Whom it voted for in `term`, if anyone.
    pub vote: Option<u64>,
    /// The leader it follows (or itself), if it knows one.
    pub lead: Option<u64>,
    pub state: RaftState,
    pub commit: u64,
    pub applied: u64,
    /// The members whose replication a leader tracks (every member of its
    /// configuration, itself included); empty on other members.
    pub progress: Vec<u64>,
}

/// Why a `/debug/vars` body is not a usable status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("/debug/vars is not JSON: {0}")]
    NotJson(String),
    /// The member's Raft node has not started yet (etcd publishes null).
    #[error("/debug/vars has no raft.status yet")]
    NotStarted,
    #[error("raft.status is malformed: {0}")]
    Malformed(String),
}

#[derive(Deserialize)]
struct Wire {
    id: String,
    term: u64,
    #[serde(default)]
    vote: Option<String>,
    #[serde(default)]
    lead: Option<String>,
    #[serde(rename = "raftState")]
    raft_state: RaftState,
    #[serde(default)]
    commit: u64,
    #[serde(default)]
    applied: u64,
    #[serde(default)]
    progress: BTreeMap<String, serde_json::Value>,
}

/// Parses a whole `/debug/vars` body.
pub fn parse_debug_vars(body: &[u8]) -> Result<RaftStatus, StatusError> {
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| StatusError::NotJson(e.to_string()))?;
    let raw = match v.get("raft.status") {
        None | Some(serde_json::Value::Null) => return Err(StatusError::NotStarted),
        Some(raw) => raw.clone(),
    };
    let w: Wire = serde_json::from_value(raw).map_err(|e| StatusError::Malformed(e.to_string()))?;
    let id = parse_hex_id(&w.id)?.ok_or_else(|| StatusError::Malformed("id is 0".into()))?;
    let opt = |s: Option<String>| match s {
        Some(s) => parse_hex_id(&s),
        None => Ok(None),
    };
    let mut progress = Vec::new();
    for k in w.progress.keys() {
        progress.extend(parse_hex_id(k)?);
    }
    Ok(RaftStatus {
        id,
        term: w.term,
        vote: opt(w.vote)?,
        lead: opt(w.lead)?,
        state: w.raft_state,
        commit: w.commit,
        applied: w.applied,
        progress,
    })
}

/// A hexadecimal member id; `"0"` means none.
pub fn parse_hex_id(s: &str) -> Result<Option<u64>, StatusError> {
    let n =
        u64::from_str_radix(s, 16).map_err(|e| StatusError::Malformed(format!("id {s:?}: {e}")))?;
    Ok((n != 0).then_some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_ids_are_the_decimal_ids_of_the_json_api() {
        // One member seen through both APIs of etcd 3.4.23.
        let body = br#"{"cmdline":["etcd"],"raft.status":{"id":"866b232794587293","term":2,"vote":"866b232794587293","commit":11,"lead":"866b232794587293","raftState":"StateLeader","applied":11,"progress":{"d4aee2a6fdaf1bf":{"match":0,"next":11,"state":"StateProbe"}},"leadtransferee":"0"}}"#;
        let s = parse_debug_vars(body).unwrap();
        assert_eq!(s.id, 9685874076489904787);
        assert_eq!(
            (s.term, s.state, s.lead),
            (2, RaftState::Leader, Some(s.id))
        );
        assert_eq!(
            parse_hex_id("d4aee2a6fdaf1bf").unwrap(),
            Some(957839736802308543)
        );
        assert_eq!(s.progress, vec![957839736802308543]);
    }

    #[test]
    fn no_leader_and_no_raft_yet() {
        let body = br#"{"raft.status":{"id":"866b232794587293","term":11,"vote":"866b232794587293","commit":11,"lead":"0","raftState":"StateCandidate","applied":11,"progress":{},"leadtransferee":"0"}}"#;
        let s = parse_debug_vars(body).unwrap();
        assert_eq!((s.lead, s.state.role()), (None, Role::Candidate));
        assert!(s.progress.is_empty());
        assert_eq!(
            parse_debug_vars(br#"{"raft.status":null}"#),
            Err(StatusError::NotStarted)
        );
        assert!(matches!(
            parse_debug_vars(b"<html>"),
            Err(StatusError::NotJson(_))
        ));
    }
}
