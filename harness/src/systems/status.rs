//! A node's own account of its Raft state, and finding the leader from
//! every node's account.

use std::collections::BTreeMap;
use std::time::Duration;

use formats::trace::Role;
use serde::Serialize;
use tokio::time::Instant;

use super::Cluster;
use crate::cluster::{ClusterError, NodeId, ProcessState};

/// What a node says about itself, in the harness's terms (each system maps
/// its own status to this: our `GET /status`, etcd's `/debug/vars`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub id: NodeId,
    pub term: u64,
    pub role: Role,
    /// The leader it follows (or itself), if it knows one.
    pub leader: Option<NodeId>,
    /// The voters of its configuration, where it knows them (a leader
    /// always should: a leader is confirmed by a majority of these).
    pub members: Vec<NodeId>,
    /// Members that do not vote yet (a node added is a learner until the
    /// leader promotes it); empty where the system has none.
    pub learners: Vec<NodeId>,
    /// Where its log stands, where the system says (our node does; the
    /// nemesis moves that line faults up with log indexes need it).
    pub log: Option<LogPosition>,
}

/// How far a node's log reaches, and how much of it it knows committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LogPosition {
    pub last_index: u64,
    pub commit_index: u64,
}

/// A leader confirmed by a majority of its own configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LeaderInfo {
    pub leader: NodeId,
    pub term: u64,
}

/// One probe of every node: what each answered (or why it did not), and the
/// leader if one is confirmed by a majority of its configuration.
#[derive(Debug, Clone)]
pub struct LeaderProbe {
    pub statuses: BTreeMap<NodeId, Result<NodeStatus, String>>,
    pub leader: Option<LeaderInfo>,
}

impl LeaderProbe {
    /// The highest term any node reported.
    pub fn max_term(&self) -> Option<u64> {
        self.statuses
            .values()
            .filter_map(|s| s.as_ref().ok().map(|s| s.term))
            .max()
    }

    /// The status the confirmed leader gave, if there is one.
    pub fn leader_status(&self) -> Option<&NodeStatus> {
        let l = self.leader?;
        self.statuses.get(&l.leader)?.as_ref().ok()
    }

    /// A one-line description for error messages.
    pub fn describe(&self) -> String {
        self.statuses
            .iter()
            .map(|(id, s)| match s {
                Ok(s) => format!(
                    "n{id}: {} term {} leader {}",
                    s.role.name(),
                    s.term,
                    s.leader.map_or("none".to_string(), |l| format!("n{l}"))
                ),
                Err(e) => format!("n{id}: {e}"),
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Asks every running node for its status, concurrently.
pub async fn probe_leader(cluster: &dyn Cluster) -> LeaderProbe {
    let ids = cluster.node_ids();
    let futs = ids.iter().map(|&id| async move {
        let r = match cluster.state(id) {
            Some(ProcessState::Running) => cluster.status(id).await.map_err(|e| e.to_string()),
            other => Err(format!("{:?}", other.unwrap_or(ProcessState::Stopped)).to_lowercase()),
        };
        (id, r)
    });
    let statuses: BTreeMap<_, _> = futures::future::join_all(futs).await.into_iter().collect();
    let leader = confirmed_leader(&statuses);
    LeaderProbe { statuses, leader }
}

/// The leader of the highest term that a majority of the members of its
/// *own* configuration follow in that term (itself included): a deposed
/// leader that has not noticed yet, or a candidate's view, is not enough.
pub fn confirmed_leader(
    statuses: &BTreeMap<NodeId, Result<NodeStatus, String>>,
) -> Option<LeaderInfo> {
    let mut best: Option<LeaderInfo> = None;
    for s in statuses.values().filter_map(|s| s.as_ref().ok()) {
        if s.role != Role::Leader || s.members.is_empty() {
            continue;
        }
        let agree = s
            .members
            .iter()
            .filter(|m| {
                matches!(statuses.get(m), Some(Ok(o)) if o.term == s.term && o.leader == Some(s.id))
            })
            .count();
        if agree * 2 > s.members.len() && best.is_none_or(|b| b.term < s.term) {
            best = Some(LeaderInfo {
                leader: s.id,
                term: s.term,
            });
        }
    }
    best
}

/// Polls [`probe_leader`] until a confirmed leader exists or `deadline`
/// passes; the error says what every node answered last, so that a run
/// that does not recover fails with a clear message instead of hanging.
pub async fn wait_for_leader(
    cluster: &dyn Cluster,
    deadline: Instant,
) -> Result<LeaderInfo, ClusterError> {
    let started = Instant::now();
    loop {
        let probe = probe_leader(cluster).await;
        if let Some(l) = probe.leader {
            return Ok(l);
        }
        if Instant::now() >= deadline {
            return Err(ClusterError::NoLeader {
                waited_ms: started.elapsed().as_millis(),
                detail: probe.describe(),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(id: NodeId, term: u64, role: Role, leader: Option<NodeId>) -> Result<NodeStatus, String> {
        Ok(NodeStatus {
            id,
            term,
            role,
            leader,
            members: vec![1, 2, 3],
            learners: vec![],
            log: None,
        })
    }

    #[test]
    fn leader_needs_a_majority_that_agrees_on_term_and_leader() {
        let mut m = BTreeMap::new();
        m.insert(1, st(1, 3, Role::Leader, Some(1)));
        m.insert(2, st(2, 4, Role::Candidate, None));
        m.insert(3, Err("down".into()));
        assert_eq!(confirmed_leader(&m), None);
        m.insert(3, st(3, 3, Role::Follower, Some(1)));
        assert_eq!(
            confirmed_leader(&m),
            Some(LeaderInfo { leader: 1, term: 3 })
        );
    }

    #[test]
    fn stale_leader_loses_to_newer_confirmed_one() {
        let mut m = BTreeMap::new();
        m.insert(1, st(1, 3, Role::Leader, Some(1)));
        m.insert(2, st(2, 5, Role::Leader, Some(2)));
        m.insert(3, st(3, 5, Role::Follower, Some(2)));
        assert_eq!(
            confirmed_leader(&m),
            Some(LeaderInfo { leader: 2, term: 5 })
        );
    }
}
