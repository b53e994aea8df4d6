//! Tests named after the section of the Raft paper (Ongaro & Ousterhout,
//! "In Search of an Understandable Consensus Algorithm", extended version) or
//! of Ongaro's thesis that they check.

#[path = "sim/util.rs"]
mod util;

use std::collections::BTreeMap;

use node::raft::*;
use util::{node, node_with_log, Net};

fn msg(from: NodeId, to: NodeId, term: Term, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

fn ack(from: NodeId, term: Term, match_index: Index) -> Message {
    msg(
        from,
        1,
        term,
        MessageBody::AppendEntriesResponse {
            success: true,
            match_index,
            conflict_term: None,
            conflict_index: 0,
            round: 0,
        },
    )
}

// ---------------------------------------------------------------- §5.2

#[test]
fn section_5_2_follower_without_heartbeats_campaigns_and_wins_a_majority() {
    let mut net = Net::new(&[1, 2, 3], false, false);
    net.elect(1);
    assert_eq!(net.leaders(), vec![1]);
    for id in [2, 3] {
        let st = net.raft(id).status();
        assert_eq!((st.term, st.leader, st.role), (1, Some(1), Role::Follower));
    }
}

#[test]
fn section_5_2_candidate_without_a_majority_retries_in_a_new_term() {
    let mut net = Net::new(&[1, 2, 3], false, false);
    net.isolate(1);
    net.tick_node(1, 10);
    assert_eq!(
        (net.raft(1).status().role, net.raft(1).status().term),
        (Role::Candidate, 1)
    );
    net.tick_node(1, 10);
    assert_eq!(
        (net.raft(1).status().role, net.raft(1).status().term),
        (Role::Candidate, 2)
    );
}

#[test]
fn section_5_2_leader_steps_down_on_seeing_a_higher_term() {
    let mut net = Net::new(&[1, 2, 3], false, false);
    net.elect(1);
    net.isolate(1);
    net.tick_node(2, 10);
    assert_eq!(net.raft(2).status().role, Role::Leader);
    net.heal();
    net.tick_node(2, 2); // a heartbeat of term 2 reaches node 1
    let st = net.raft(1).status();
    assert_eq!((st.role, st.term, st.leader), (Role::Follower, 2, Some(2)));
    assert_eq!(net.leaders(), vec![2]);
}

#[test]
fn section_5_2_heartbeats_keep_followers_from_campaigning() {
    let mut net = Net::new(&[1, 2, 3], false, false);
    net.elect(1);
    net.tick(50);
    assert_eq!(net.leaders(), vec![1]);
    assert_eq!(net.raft(2).status().term, 1);
}

// ---------------------------------------------------------------- §5.3

#[test]
fn section_5_3_leader_replicates_and_every_node_applies_in_order() {
    let mut net = Net::new(&[1, 2, 3], false, false);
    net.elect(1);
    for c in [b"a", b"b", b"c"] {
        net.raft(1).propose(c.to_vec()).unwrap();
    }
    net.pump();
    net.tick(2); // the next heartbeat carries the commit index
    for id in [1, 2, 3] {
        assert_eq!(
            net.applied_commands(id),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()],
            "node {id}"
        );
        assert_eq!(net.raft(id).status().commit_index, 4);
    }
}

#[test]
fn section_5_3_conflicting_follower_suffix_is_replaced_in_one_round_trip_per_term() {
    // Leader-to-be 1 and node 3: [1, 1, 1, 3 × 20]; node 2 diverged: [1, 1, 1, 2 × 25].
    let mut good = vec![1, 1, 1];
    good.extend([3; 20]);
    let mut stale = vec![1, 1, 1];
    stale.extend([2; 25]);
    let nodes: BTreeMap<NodeId, Raft> = [
        (1, node_with_log(1, &[1, 2, 3], 3, &good, false)),
        (2, node_with_log(2, &[1, 2, 3], 3, &stale, false)),
        (3, node_with_log(3, &[1, 2, 3], 3, &good, false)),
    ]
    .into_iter()
    .collect();
    let mut net = Net::from_nodes(nodes);
    net.elect(1);
    net.tick(4);
    let rejections = net
        .delivered
        .iter()
        .filter(|m| {
            m.from == 2
                && matches!(
                    m.body,
                    MessageBody::AppendEntriesResponse { success: false, .. }
                )
        })
        .count();
    assert!(
        rejections <= 2,
        "{rejections} rejections: back-off must skip whole terms"
    );
    // Node 2 now holds exactly the leader's log; the leader's own log is intact.
    for i in 1..=24 {
        assert_eq!(
            net.raft(2).log_term(i),
            net.raft(1).log_term(i),
            "index {i}"
        );
    }
    assert_eq!(net.raft(2).status().last_index, 24);
    assert_eq!(net.raft(1).log_term(23), Some(3));
}

// ---------------------------------------------------------------- §5.4.1

#[test]
fn section_5_4_1_candidate_with_an_out_of_date_log_cannot_be_elected() {
    let nodes: BTreeMap<NodeId, Raft> = [
        (1, node_with_log(1, &[1, 2, 3], 2, &[1], false)),
        (2, node_with_log(2, &[1, 2, 3], 2, &[1, 2], false)),
        (3, node_with_log(3, &[1, 2, 3], 2, &[1, 2], false)),
    ]
    .into_iter()
    .collect();
    let mut net = Net::from_nodes(nodes);
    net.tick_node(1, 10);
    assert_eq!(net.raft(1).status().term, 3, "node 1 did campaign");
    assert_ne!(net.raft(1).status().role, Role::Leader);
    assert!(net.leaders().is_empty());
    net.tick_node(2, 10);
    assert_eq!(net.leaders(), vec![2]);
}

// ---------------------------------------------------------------- §5.4.2

#[test]
fn section_5_4_2_figure_8_old_term_entry_is_not_committed_by_counting_replicas() {
    // Node 1 holds (index 2, term 2) from its earlier leadership and is now
    // leader of term 4 in a 5-node cluster. Its NO_OP is (3, 4).
    let mut r = node_with_log(1, &[1, 2, 3, 4, 5], 3, &[1, 2], false);
    for _ in 0..10 {
        r.tick();
    }
    r.ready();
    for v in [2, 3] {
        r.step(msg(
            v,
            1,
            4,
            MessageBody::RequestVoteResponse {
                pre_vote: false,
                granted: true,
            },
        ));
    }
    assert_eq!(r.status().role, Role::Leader);
    r.ready();
    // Index 2 (term 2) now sits on a majority {1, 2, 3}: still not committed.
    r.step(ack(2, 4, 2));
    r.step(ack(3, 4, 2));
    assert_eq!(r.status().commit_index, 0);
    assert!(r.ready().committed.is_empty());
    // Once the term-4 entry is on a majority, both commit together.
    r.step(ack(2, 4, 3));
    r.step(ack(3, 4, 3));
    assert_eq!(r.status().commit_index, 3);
    assert_eq!(
        r.ready()
            .committed
            .iter()
            .map(|e| (e.index, e.term))
            .collect::<Vec<_>>(),
        vec![(1, 1), (2, 2), (3, 4)]
    );
}

// ---------------------------------------------------------------- §6

#[test]
fn section_6_added_node_catches_up_as_learner_then_is_promoted_to_voter() {
    let mut nodes: BTreeMap<NodeId, Raft> = [1, 2, 3]
        .into_iter()
        .map(|i| (i, node(i, &[1, 2, 3], false, false)))
        .collect();
    nodes.insert(4, node(4, &[], false, false));
    let mut net = Net::from_nodes(nodes);
    net.elect(1);
    for i in 0..5u8 {
        net.raft(1).propose(vec![i]).unwrap();
    }
    net.pump();
    net.tick(2);
    // Node 4 waits to be added: it never campaigns.
    net.tick_node(4, 40);
    assert_eq!(
        (net.raft(4).status().term, net.raft(4).status().role),
        (0, Role::Follower)
    );
    let (idx, _) = net
        .raft(1)
        .propose_conf_change(ConfChange::AddNode(4))
        .unwrap();
    assert!(net.raft(1).status().membership.learners.contains(&4));
    net.tick(6);
    let m = net.raft(1).status().membership;
    assert_eq!(
        m,
        Membership::new([1, 2, 3, 4]),
        "learner promoted once caught up"
    );
    assert!(net.raft(1).status().commit_index > idx);
    assert_eq!(net.raft(4).status().role, Role::Follower);
    assert_eq!(net.applied_commands(4).len(), 5);
}

#[test]
fn section_6_removed_node_rejoining_with_an_empty_log_catches_up_and_is_promoted() {
    // The fault tester's scenario: remove node 4, commit, wipe its storage,
    // restart it empty (no initial membership), and add it back under the
    // same id. The leader must treat it as a brand-new learner.
    let mut net = Net::new(&[1, 2, 3, 4], false, false);
    net.elect(1);
    for i in 0..5u8 {
        net.raft(1).propose(vec![i]).unwrap();
    }
    net.pump();
    net.tick(2);
    let (rm, _) = net
        .raft(1)
        .propose_conf_change(ConfChange::RemoveNode(4))
        .unwrap();
    net.pump();
    net.tick(2);
    assert!(net.raft(1).status().commit_index >= rm);
    assert_eq!(net.raft(1).status().membership, Membership::new([1, 2, 3]));
    // The removal committed: the leader stops replicating to node 4.
    net.raft(1).ready();
    net.raft(1).advance();
    net.tick_node(1, 2);
    net.raft(1).tick();
    net.raft(1).tick();
    let rd = net.raft(1).ready();
    assert!(
        rd.messages.iter().all(|m| m.to != 4),
        "no message to a removed node: {:?}",
        rd.messages
    );
    net.raft(1).advance();
    for _ in 0..2u8 {
        net.raft(1).propose(vec![9]).unwrap();
    }
    net.pump();
    // Wipe node 4 and bring it back empty, waiting to be added.
    net.nodes.insert(4, node(4, &[], false, false));
    net.applied.remove(&4);
    let (add, _) = net
        .raft(1)
        .propose_conf_change(ConfChange::AddNode(4))
        .unwrap();
    net.tick(8);
    let st = net.raft(4).status();
    assert_eq!(st.last_index, net.raft(1).status().last_index);
    assert!(st.commit_index > add, "rejoined node caught up: {st:?}");
    assert_eq!(
        net.raft(1).status().membership,
        Membership::new([1, 2, 3, 4]),
        "rejoined learner promoted once caught up"
    );
    assert_eq!(net.raft(4).status().role, Role::Follower);
    assert_eq!(net.applied_commands(4).len(), 7);
}

#[test]
fn section_6_removed_leader_steps_down_once_the_change_commits_and_never_campaigns() {
    let mut net = Net::new(&[1, 2, 3], false, false);
    net.elect(1);
    net.tick(2);
    net.raft(1)
        .propose_conf_change(ConfChange::RemoveNode(1))
        .unwrap();
    net.pump();
    net.tick(1);
    assert_ne!(net.raft(1).status().role, Role::Leader);
    assert_eq!(net.raft(1).status().membership, Membership::new([2, 3]));
    net.tick_node(2, 10);
    net.tick(4);
    let leaders = net.leaders();
    assert_eq!(leaders, vec![2]);
    let term = net.raft(leaders[0]).status().term;
    // The removed node, left alone, stays quiet.
    net.isolate(1);
    net.tick_node(1, 100);
    assert_eq!(net.raft(1).status().role, Role::Follower);
    assert!(net.raft(1).status().term <= term);
}

#[test]
fn section_6_configuration_takes_effect_on_append_and_reverts_on_truncation() {
    let mut r = node(3, &[1, 2, 3], false, false);
    let cfg = Entry {
        term: 1,
        index: 2,
        payload: EntryPayload::Config(Membership::new([1, 2, 3, 4])),
    };
    let first = Entry {
        term: 1,
        index: 1,
        payload: EntryPayload::Noop,
    };
    r.step(msg(
        1,
        3,
        1,
        MessageBody::AppendEntries {
            prev_log_index: 0,
            prev_log_term: 0,
            entries: vec![first, cfg],
            leader_commit: 1,
            round: 0,
        },
    ));
    assert_eq!(
        r.status().membership,
        Membership::new([1, 2, 3, 4]),
        "in effect before commit"
    );
    // A new leader of term 2 overwrites index 2.
    r.step(msg(
        2,
        3,
        2,
        MessageBody::AppendEntries {
            prev_log_index: 1,
            prev_log_term: 1,
            entries: vec![Entry {
                term: 2,
                index: 2,
                payload: EntryPayload::Noop,
            }],
            leader_commit: 1,
            round: 0,
        },
    ));
    assert_eq!(
        r.status().membership,
        Membership::new([1, 2, 3]),
        "reverted with the truncated entry"
    );
}

// ---------------------------------------------------------------- §7

#[test]
fn section_7_follower_behind_the_snapshot_installs_it_and_catches_up() {
    let mut net = Net::new(&[1, 2, 3], false, false);
    net.elect(1);
    net.isolate(3);
    for i in 0..10u8 {
        net.raft(1).propose(vec![i]).unwrap();
    }
    net.pump();
    net.tick_node(1, 2);
    let applied = net.raft(1).status().last_applied;
    assert_eq!(applied, 11);
    net.raft(1)
        .compact(applied, b"the state machine image".to_vec());
    net.raft(1).propose(b"after".to_vec()).unwrap();
    net.heal();
    net.tick(4);
    let st = net.raft(3).status();
    assert_eq!(st.last_index, 12);
    assert_eq!(
        net.raft(3).snapshot().map(|s| s.data.clone()),
        Some(b"the state machine image".to_vec())
    );
    assert_eq!(net.raft(3).first_index(), 12);
    assert_eq!(st.commit_index, 12);
    assert_eq!(net.applied_commands(3), vec![b"after".to_vec()]);
}

#[test]
fn section_7_node_restarts_from_snapshot_and_log() {
    let snapshot = Snapshot {
        meta: SnapshotMeta {
            last_index: 5,
            last_term: 2,
            membership: Membership::new([1, 2, 3]),
        },
        data: b"img".to_vec(),
    };
    let persisted = Persisted {
        hard_state: HardState {
            term: 3,
            vote: Some(2),
        },
        snapshot: Some(snapshot),
        entries: vec![Entry {
            term: 3,
            index: 6,
            payload: EntryPayload::Noop,
        }],
        initial_membership: Membership::default(),
    };
    let r = Raft::new(util::config(1, true, true), persisted, 1);
    let st = r.status();
    assert_eq!(
        (st.term, st.commit_index, st.last_applied, st.last_index),
        (3, 5, 5, 6)
    );
    assert_eq!(st.membership, Membership::new([1, 2, 3]));
    assert_eq!(r.log_term(5), Some(2));
}

// ---------------------------------------------------------------- §8

#[test]
fn section_8_read_index_is_answered_after_a_majority_confirms_leadership() {
    let mut net = Net::new(&[1, 2, 3], false, false);
    net.elect(1);
    net.raft(1).read_index(42).unwrap();
    net.pump();
    assert_eq!(
        net.read_states.get(&1).cloned().unwrap_or_default(),
        vec![(42, 1)]
    );
}

#[test]
fn section_8_partitioned_leader_cannot_confirm_a_read_and_drops_it_on_stepping_down() {
    let mut net = Net::new(&[1, 2, 3], false, false);
    net.elect(1);
    net.isolate(1);
    net.raft(1).read_index(7).unwrap();
    net.tick_node(1, 4);
    assert!(!matches!(net.read_states.get(&1), Some(v) if !v.is_empty()));
    net.tick_node(2, 10);
    net.heal();
    net.tick_node(2, 2);
    assert_eq!(net.raft(1).status().role, Role::Follower);
    let rd = net.raft(1).ready();
    assert!(rd.read_states.is_empty());
}

#[test]
fn section_8_dropped_reads_are_reported_when_leadership_is_lost() {
    let mut r = node(1, &[1, 2, 3], false, false);
    for _ in 0..10 {
        r.tick();
    }
    r.step(msg(
        2,
        1,
        1,
        MessageBody::RequestVoteResponse {
            pre_vote: false,
            granted: true,
        },
    ));
    r.step(ack(2, 1, 1));
    r.read_index(9).unwrap();
    r.step(msg(
        3,
        1,
        2,
        MessageBody::RequestVote {
            pre_vote: false,
            last_log_index: 5,
            last_log_term: 1,
            transfer: false,
        },
    ));
    assert_eq!(r.ready().dropped_reads, vec![9]);
}

// ---------------------------------------------------- thesis §9.6 and §6.2

#[test]
fn prevote_and_check_quorum_rejoining_node_does_not_depose_a_healthy_leader() {
    let mut net = Net::new(&[1, 2, 3], true, true);
    net.elect(1);
    let term = net.raft(1).status().term;
    net.isolate(3);
    net.tick(40);
    assert_eq!(
        net.raft(3).status().term,
        term,
        "pre-vote keeps an isolated node's term"
    );
    net.heal();
    net.tick(20);
    assert_eq!(net.leaders(), vec![1]);
    assert_eq!(net.raft(1).status().term, term);
}

#[test]
fn without_prevote_a_rejoining_node_forces_a_new_term() {
    let mut net = Net::new(&[1, 2, 3], false, false);
    net.elect(1);
    net.isolate(3);
    net.tick_node(3, 40);
    let t3 = net.raft(3).status().term;
    assert!(t3 > 1);
    net.heal();
    net.tick(2);
    assert!(
        net.raft(1).status().term >= t3,
        "the leader learned the higher term"
    );
}

#[test]
fn check_quorum_leader_steps_down_without_a_majority() {
    let mut net = Net::new(&[1, 2, 3], true, true);
    net.elect(1);
    net.isolate(1);
    net.tick_node(1, 20);
    assert_eq!(net.raft(1).status().role, Role::Follower);
    assert_eq!(
        net.raft(1).lease_read(),
        Err(ReadError::NotLeader { leader: None })
    );
}

#[test]
fn leadership_transfer_hands_over_to_an_up_to_date_voter() {
    let mut net = Net::new(&[1, 2, 3], true, true);
    net.elect(1);
    net.tick(2);
    net.raft(1).transfer_leadership(3).unwrap();
    assert_eq!(
        net.raft(1).propose(b"x".to_vec()),
        Err(ProposeError::Transferring)
    );
    net.pump();
    assert_eq!(net.leaders(), vec![3]);
    net.tick(2);
    assert_eq!(net.raft(1).status().leader, Some(3));
}
