//! Command-level tests of the Raft core: one event in, the exact `Ready` out.

#[path = "sim/util.rs"]
mod util;

use node::raft::*;
use util::{node, node_with_log, noop};

fn msg(from: NodeId, to: NodeId, term: Term, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

fn vote_req(from: NodeId, to: NodeId, term: Term, pre: bool, li: Index, lt: Term) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::RequestVote {
            pre_vote: pre,
            last_log_index: li,
            last_log_term: lt,
            transfer: false,
        },
    )
}

fn vote_resp(from: NodeId, to: NodeId, term: Term, pre: bool, granted: bool) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::RequestVoteResponse {
            pre_vote: pre,
            granted,
        },
    )
}

fn append(
    from: NodeId,
    to: NodeId,
    term: Term,
    prev: (Index, Term),
    entries: Vec<Entry>,
    commit: Index,
) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::AppendEntries {
            prev_log_index: prev.0,
            prev_log_term: prev.1,
            entries,
            leader_commit: commit,
            round: 0,
        },
    )
}

fn append_ok(from: NodeId, to: NodeId, term: Term, match_index: Index, round: u64) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::AppendEntriesResponse {
            success: true,
            match_index,
            conflict_term: None,
            conflict_index: 0,
            round,
        },
    )
}

fn cmd(term: Term, index: Index, data: &[u8]) -> Entry {
    Entry {
        term,
        index,
        payload: EntryPayload::Command(data.to_vec()),
    }
}

/// Node 1 of {1, 2, 3}, elected in term 1 with its NO_OP committed; output drained.
fn leader() -> Raft {
    let mut r = node(1, &[1, 2, 3], false, false);
    for _ in 0..10 {
        r.tick();
    }
    r.ready();
    r.step(vote_resp(2, 1, 1, false, true));
    r.ready();
    r.step(append_ok(2, 1, 1, 1, 0));
    r.ready();
    r.advance();
    assert_eq!(r.status().commit_index, 1);
    r
}

#[test]
fn quiet_follower_has_no_output() {
    let mut r = node(1, &[1, 2, 3], false, false);
    for _ in 0..9 {
        r.tick();
    }
    assert!(r.ready().is_empty());
}

#[test]
fn election_timeout_without_prevote_bumps_term_votes_for_self_and_requests_votes() {
    let mut r = node(1, &[1, 2, 3], false, false);
    for _ in 0..10 {
        r.tick();
    }
    assert_eq!(
        r.ready(),
        Ready {
            hard_state: Some(HardState {
                term: 1,
                vote: Some(1)
            }),
            messages: vec![
                vote_req(1, 2, 1, false, 0, 0),
                vote_req(1, 3, 1, false, 0, 0)
            ],
            role_changed: true,
            ..Ready::default()
        }
    );
    assert_eq!(r.status().role, Role::Candidate);
}

#[test]
fn election_timeout_with_prevote_keeps_term_and_persists_nothing() {
    let mut r = node(1, &[1, 2, 3], true, false);
    for _ in 0..10 {
        r.tick();
    }
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![vote_req(1, 2, 1, true, 0, 0), vote_req(1, 3, 1, true, 0, 0)],
            role_changed: true,
            ..Ready::default()
        }
    );
    assert_eq!(r.status().role, Role::PreCandidate);
    assert_eq!(r.status().term, 0);
}

#[test]
fn prevote_majority_starts_the_real_election() {
    let mut r = node(1, &[1, 2, 3], true, false);
    for _ in 0..10 {
        r.tick();
    }
    r.ready();
    r.step(vote_resp(2, 1, 1, true, true));
    assert_eq!(
        r.ready(),
        Ready {
            hard_state: Some(HardState {
                term: 1,
                vote: Some(1)
            }),
            messages: vec![
                vote_req(1, 2, 1, false, 0, 0),
                vote_req(1, 3, 1, false, 0, 0)
            ],
            role_changed: true,
            ..Ready::default()
        }
    );
}

#[test]
fn vote_is_granted_once_per_term_and_persisted_before_the_reply() {
    let mut r = node(1, &[1, 2, 3], false, false);
    r.step(vote_req(2, 1, 1, false, 0, 0));
    assert_eq!(
        r.ready(),
        Ready {
            hard_state: Some(HardState {
                term: 1,
                vote: Some(2)
            }),
            messages: vec![vote_resp(1, 2, 1, false, true)],
            role_changed: true,
            ..Ready::default()
        }
    );
    r.step(vote_req(3, 1, 1, false, 0, 0));
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![vote_resp(1, 3, 1, false, false)],
            ..Ready::default()
        }
    );
    // The same candidate asking again (a duplicate) is granted again.
    r.step(vote_req(2, 1, 1, false, 0, 0));
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![vote_resp(1, 2, 1, false, true)],
            ..Ready::default()
        }
    );
}

#[test]
fn vote_is_refused_to_a_candidate_with_an_older_log() {
    let mut r = node_with_log(1, &[1, 2, 3], 2, &[1, 2], false);
    r.step(vote_req(2, 1, 3, false, 5, 1));
    assert_eq!(
        r.ready(),
        Ready {
            hard_state: Some(HardState {
                term: 3,
                vote: None
            }),
            messages: vec![vote_resp(1, 2, 3, false, false)],
            role_changed: true,
            ..Ready::default()
        }
    );
}

#[test]
fn stale_vote_request_gets_the_current_term() {
    let mut r = node_with_log(1, &[1, 2, 3], 5, &[1], false);
    r.step(vote_req(2, 1, 4, false, 9, 4));
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![vote_resp(1, 2, 5, false, false)],
            ..Ready::default()
        }
    );
}

#[test]
fn winning_candidate_appends_a_noop_and_probes_every_follower() {
    let mut r = node(1, &[1, 2, 3], false, false);
    for _ in 0..10 {
        r.tick();
    }
    r.ready();
    r.step(vote_resp(2, 1, 1, false, true));
    assert_eq!(
        r.ready(),
        Ready {
            entries: vec![noop(1, 1)],
            messages: vec![
                append(1, 2, 1, (0, 0), vec![noop(1, 1)], 0),
                append(1, 3, 1, (0, 0), vec![noop(1, 1)], 0)
            ],
            role_changed: true,
            ..Ready::default()
        }
    );
    assert_eq!(r.status().role, Role::Leader);
}

#[test]
fn majority_ack_commits_the_noop_and_hands_it_out_for_apply() {
    let mut r = node(1, &[1, 2, 3], false, false);
    for _ in 0..10 {
        r.tick();
    }
    r.ready();
    r.step(vote_resp(2, 1, 1, false, true));
    r.ready();
    r.step(append_ok(2, 1, 1, 1, 0));
    assert_eq!(
        r.ready(),
        Ready {
            committed: vec![noop(1, 1)],
            commit_index: Some(1),
            ..Ready::default()
        }
    );
    r.advance();
    assert_eq!(r.status().last_applied, 1);
}

#[test]
fn rejected_vote_majority_returns_candidate_to_follower() {
    let mut r = node(1, &[1, 2, 3], false, false);
    for _ in 0..10 {
        r.tick();
    }
    r.ready();
    r.step(vote_resp(2, 1, 1, false, false));
    r.step(vote_resp(3, 1, 1, false, false));
    assert_eq!(
        r.ready(),
        Ready {
            role_changed: true,
            ..Ready::default()
        }
    );
    assert_eq!(r.status().role, Role::Follower);
}

#[test]
fn follower_appends_and_acknowledges_the_last_new_entry() {
    let mut r = node(1, &[1, 2, 3], false, false);
    r.step(append(
        2,
        1,
        1,
        (0, 0),
        vec![cmd(1, 1, b"a"), cmd(1, 2, b"b")],
        1,
    ));
    assert_eq!(
        r.ready(),
        Ready {
            hard_state: Some(HardState {
                term: 1,
                vote: None
            }),
            entries: vec![cmd(1, 1, b"a"), cmd(1, 2, b"b")],
            messages: vec![append_ok(1, 2, 1, 2, 0)],
            committed: vec![cmd(1, 1, b"a")],
            role_changed: true,
            commit_index: Some(1),
            ..Ready::default()
        }
    );
}

#[test]
fn follower_truncates_a_conflicting_suffix_and_persists_the_replacement() {
    let mut r = node_with_log(1, &[1, 2, 3], 2, &[1, 1, 2], false);
    r.step(append(
        2,
        1,
        3,
        (1, 1),
        vec![cmd(3, 2, b"x"), cmd(3, 3, b"y")],
        0,
    ));
    assert_eq!(
        r.ready(),
        Ready {
            hard_state: Some(HardState {
                term: 3,
                vote: None
            }),
            entries: vec![cmd(3, 2, b"x"), cmd(3, 3, b"y")],
            messages: vec![append_ok(1, 2, 3, 3, 0)],
            role_changed: true,
            ..Ready::default()
        }
    );
    assert_eq!(r.status().last_index, 3);
}

#[test]
fn consistency_check_failure_returns_the_conflicting_term_and_its_first_index() {
    let mut r = node_with_log(1, &[1, 2, 3], 3, &[1, 1, 2, 2], false);
    r.step(append(2, 1, 3, (4, 3), vec![], 0));
    let expected = msg(
        1,
        2,
        3,
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 4,
            conflict_term: Some(2),
            conflict_index: 3,
            round: 0,
        },
    );
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![expected],
            role_changed: true,
            ..Ready::default()
        }
    );
}

#[test]
fn consistency_check_failure_past_the_end_returns_the_next_free_index() {
    let mut r = node_with_log(1, &[1, 2, 3], 3, &[1, 1], false);
    r.step(append(2, 1, 3, (9, 3), vec![], 0));
    let expected = msg(
        1,
        2,
        3,
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 9,
            conflict_term: None,
            conflict_index: 3,
            round: 0,
        },
    );
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![expected],
            role_changed: true,
            ..Ready::default()
        }
    );
}

#[test]
fn append_from_an_older_term_is_refused_with_the_current_term() {
    let mut r = node_with_log(1, &[1, 2, 3], 5, &[1], false);
    r.step(append(2, 1, 4, (1, 1), vec![cmd(4, 2, b"z")], 1));
    let expected = msg(
        1,
        2,
        5,
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 1,
            conflict_term: None,
            conflict_index: 0,
            round: 0,
        },
    );
    assert_eq!(
        r.ready(),
        Ready {
            messages: vec![expected],
            ..Ready::default()
        }
    );
    assert_eq!(r.status().last_index, 1);
}

#[test]
fn leader_uses_the_conflict_hint_to_skip_a_whole_term() {
    // Leader log: terms [1, 1, 1, 4, 4]; follower has [1, 1, 2, 2, 2, 2].
    let mut r = node_with_log(1, &[1, 2], 4, &[1, 1, 1, 4, 4], false);
    for _ in 0..10 {
        r.tick();
    }
    r.ready();
    r.step(vote_resp(2, 1, 5, false, true));
    let rd = r.ready();
    assert_eq!(rd.entries, vec![noop(5, 6)]);
    // Follower rejects prev (5, 4) saying it has term 2 from index 3.
    r.step(msg(
        2,
        1,
        5,
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 5,
            conflict_term: Some(2),
            conflict_index: 3,
            round: 0,
        },
    ));
    // The leader has no term-2 entry: it resumes right at index 3 (prev = 2).
    let rd = r.ready();
    assert_eq!(rd.messages.len(), 1);
    match &rd.messages[0].body {
        MessageBody::AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            ..
        } => {
            assert_eq!((*prev_log_index, *prev_log_term), (2, 1));
            assert_eq!(entries.first().map(|e| e.index), Some(3));
        }
        other => panic!("expected AppendEntries, got {other:?}"),
    }
}

#[test]
fn rejection_showing_a_log_shorter_than_the_match_resets_the_probe_to_the_hint() {
    let mut r = leader();
    r.propose(b"a".to_vec()).unwrap();
    r.propose(b"b".to_vec()).unwrap();
    r.ready();
    r.step(append_ok(2, 1, 1, 3, 0));
    r.ready();
    r.advance();
    assert_eq!(r.status().commit_index, 3);
    // Node 2 comes back with an empty log (say wiped): it rejects the
    // heartbeat at its recorded match 3, hinting that its log ends at 0.
    r.step(msg(
        2,
        1,
        1,
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 3,
            conflict_term: None,
            conflict_index: 1,
            round: 0,
        },
    ));
    // The leader forgets the match and resends everything from index 1.
    assert_eq!(
        r.ready().messages,
        vec![append(
            1,
            2,
            1,
            (0, 0),
            vec![noop(1, 1), cmd(1, 2, b"a"), cmd(1, 3, b"b")],
            3
        )]
    );
    // The commit index never moves back; the new ack restores the match.
    assert_eq!(r.status().commit_index, 3);
    r.step(append_ok(2, 1, 1, 3, 0));
    r.propose(b"c".to_vec()).unwrap();
    r.step(append_ok(2, 1, 1, 4, 0));
    assert_eq!(r.status().commit_index, 4);
}

#[test]
fn proposal_on_a_follower_is_refused_with_a_leader_hint() {
    let mut r = node(1, &[1, 2, 3], false, false);
    r.step(append(2, 1, 1, (0, 0), vec![], 0));
    assert_eq!(
        r.propose(b"x".to_vec()),
        Err(ProposeError::NotLeader { leader: Some(2) })
    );
    assert_eq!(
        r.read_index(1),
        Err(ReadError::NotLeader { leader: Some(2) })
    );
}

#[test]
fn proposal_is_persisted_and_replicated_in_one_batch() {
    let mut r = leader();
    assert_eq!(r.propose(b"a".to_vec()), Ok((2, 1)));
    assert_eq!(r.propose(b"b".to_vec()), Ok((3, 1)));
    // Follower 2 pipelines (Replicate); follower 3 was probed and is paused.
    assert_eq!(
        r.ready(),
        Ready {
            entries: vec![cmd(1, 2, b"a"), cmd(1, 3, b"b")],
            messages: vec![append(
                1,
                2,
                1,
                (1, 1),
                vec![cmd(1, 2, b"a"), cmd(1, 3, b"b")],
                1
            )],
            ..Ready::default()
        }
    );
}

#[test]
fn read_index_waits_for_a_heartbeat_round_acknowledged_by_a_majority() {
    let mut r = leader();
    assert_eq!(r.read_index(7), Ok(()));
    let rd = r.ready();
    assert!(rd.read_states.is_empty());
    let rounds: Vec<u64> = rd
        .messages
        .iter()
        .map(|m| match m.body {
            MessageBody::AppendEntries { round, .. } => round,
            ref b => panic!("unexpected {b:?}"),
        })
        .collect();
    assert_eq!(rounds, vec![1, 1]);
    // An answer to an older round does not confirm the read.
    r.step(append_ok(3, 1, 1, 1, 0));
    assert!(r.ready().read_states.is_empty());
    r.step(append_ok(2, 1, 1, 1, 1));
    assert_eq!(
        r.ready(),
        Ready {
            read_states: vec![ReadState { ctx: 7, index: 1 }],
            ..Ready::default()
        }
    );
}

#[test]
fn a_read_after_its_round_was_sent_waits_for_the_next_round() {
    let mut r = leader();
    assert_eq!(r.read_index(1), Ok(()));
    r.ready();
    // Round 1 is on the wire: answers to it may have left the followers
    // before read 2 arrived, so they cannot confirm it.
    assert_eq!(r.read_index(2), Ok(()));
    r.step(append_ok(2, 1, 1, 1, 1));
    r.step(append_ok(3, 1, 1, 1, 1));
    let rd = r.ready();
    assert_eq!(rd.read_states, vec![ReadState { ctx: 1, index: 1 }]);
    let rounds: Vec<(NodeId, u64)> = rd
        .messages
        .iter()
        .map(|m| match m.body {
            MessageBody::AppendEntries { round, .. } => (m.to, round),
            ref b => panic!("unexpected {b:?}"),
        })
        .collect();
    assert_eq!(rounds, vec![(2, 2), (3, 2)]);
    r.step(append_ok(2, 1, 1, 1, 2));
    assert_eq!(r.ready().read_states, vec![ReadState { ctx: 2, index: 1 }]);
}

#[test]
fn a_read_rides_on_the_appends_of_its_batch() {
    let mut r = leader();
    // Follower 3 never answered its probe; follower 2 pipelines.
    assert_eq!(r.propose(b"a".to_vec()), Ok((2, 1)));
    assert_eq!(r.read_index(9), Ok(()));
    let rd = r.ready();
    // One message per follower: the entry to 2 carries the read's round,
    // 3 gets a bare heartbeat for it (its probe is still outstanding).
    assert_eq!(
        rd.messages,
        vec![
            msg(
                1,
                2,
                1,
                MessageBody::AppendEntries {
                    prev_log_index: 1,
                    prev_log_term: 1,
                    entries: vec![cmd(1, 2, b"a")],
                    leader_commit: 1,
                    round: 1,
                }
            ),
            msg(
                1,
                3,
                1,
                MessageBody::AppendEntries {
                    prev_log_index: 0,
                    prev_log_term: 0,
                    entries: vec![],
                    leader_commit: 1,
                    round: 1,
                }
            ),
        ]
    );
    r.advance();
    // The answer to the entry confirms the read (and commits the entry).
    r.step(append_ok(2, 1, 1, 2, 1));
    let rd = r.ready();
    assert_eq!(rd.read_states, vec![ReadState { ctx: 9, index: 1 }]);
    assert_eq!(rd.commit_index, Some(2));
}

#[test]
fn read_rounds_do_not_restart_replication_that_is_in_flight() {
    let mut r = leader();
    assert_eq!(r.propose(b"a".to_vec()), Ok((2, 1)));
    r.ready();
    r.advance();
    // Two reads in quick succession, each in a round of its own, while the
    // entry sent to follower 2 is still unacknowledged: that is a busy
    // pipeline, not a lost message, so follower 2 gets bare heartbeats and
    // no second copy of the entry.
    for ctx in [1, 2] {
        assert_eq!(r.read_index(ctx), Ok(()));
        let rd = r.ready();
        r.advance();
        for m in rd.messages.iter().filter(|m| m.to == 2) {
            match &m.body {
                MessageBody::AppendEntries { entries, .. } => {
                    assert!(entries.is_empty(), "entries re-sent to 2: {m:?}")
                }
                b => panic!("unexpected {b:?}"),
            }
        }
    }
    // A heartbeat interval without progress does count as a stall: the
    // entry is sent again from the match.
    let mut resent = false;
    for _ in 0..10 {
        r.tick();
        let rd = r.ready();
        r.advance();
        resent |= rd.messages.iter().any(|m| {
            m.to == 2
                && matches!(&m.body, MessageBody::AppendEntries { entries, .. } if !entries.is_empty())
        });
    }
    assert!(resent, "a stalled follower is never probed again");
}

#[test]
fn reads_and_membership_changes_wait_for_the_leaders_own_commit() {
    let mut r = node(1, &[1, 2, 3], false, false);
    for _ in 0..10 {
        r.tick();
    }
    r.step(vote_resp(2, 1, 1, false, true));
    assert_eq!(r.read_index(1), Err(ReadError::NotReady));
    assert_eq!(r.lease_read(), Err(ReadError::NotReady));
    assert_eq!(
        r.propose_conf_change(ConfChange::AddNode(4)),
        Err(ProposeError::NotReady)
    );
}

#[test]
fn second_membership_change_is_refused_while_one_is_uncommitted() {
    let mut r = leader();
    assert_eq!(r.propose_conf_change(ConfChange::AddNode(4)), Ok((2, 1)));
    assert_eq!(
        r.propose_conf_change(ConfChange::RemoveNode(3)),
        Err(ProposeError::ChangePending { pending_index: 2 })
    );
    // The configuration took effect on append.
    assert_eq!(
        r.status()
            .membership
            .learners
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![4]
    );
}

#[test]
fn bad_membership_changes_are_refused_with_a_reason() {
    let mut r = leader();
    assert!(matches!(
        r.propose_conf_change(ConfChange::AddNode(2)),
        Err(ProposeError::BadChange(_))
    ));
    assert!(matches!(
        r.propose_conf_change(ConfChange::RemoveNode(9)),
        Err(ProposeError::BadChange(_))
    ));
}

#[test]
fn lease_is_granted_by_a_majority_heartbeat_and_expires() {
    let mut r = node(1, &[1, 2, 3], false, true);
    // Stickiness: followers at boot; elect via TimeoutNow-free path: tick past the lease of others.
    for _ in 0..10 {
        r.tick();
    }
    r.ready();
    r.step(vote_resp(2, 1, 1, false, true));
    r.ready();
    r.step(append_ok(2, 1, 1, 1, 0));
    r.ready();
    assert_eq!(r.lease_read(), Err(ReadError::LeaseExpired));
    r.tick();
    r.tick(); // heartbeat round 1 starts at leader tick 12
    r.ready();
    r.step(append_ok(2, 1, 1, 1, 1));
    assert_eq!(r.lease_read(), Ok(1));
    for _ in 0..7 {
        r.tick();
        r.step(append_ok(2, 1, 1, 1, 1)); // acks of an old round do not extend it
    }
    assert_eq!(r.lease_read(), Ok(1));
    r.tick(); // 8 ticks after the round started
    assert_eq!(r.lease_read(), Err(ReadError::LeaseExpired));
}

#[test]
fn compaction_keeps_the_snapshot_and_drops_the_prefix() {
    let mut r = leader();
    r.propose(b"a".to_vec()).unwrap();
    r.ready();
    r.step(append_ok(2, 1, 1, 2, 0));
    let rd = r.ready();
    assert_eq!(rd.committed, vec![cmd(1, 2, b"a")]);
    r.advance();
    r.compact(2, b"state".to_vec());
    let snap = r.snapshot().expect("snapshot kept");
    assert_eq!((snap.meta.last_index, snap.meta.last_term), (2, 1));
    assert_eq!(snap.meta.membership, Membership::new([1, 2, 3]));
    assert_eq!(r.first_index(), 3);
    assert_eq!(r.entry(2), None);
    // Compacting beyond the applied index is ignored.
    r.compact(3, vec![]);
    assert_eq!(r.first_index(), 3);
}

#[test]
fn follower_behind_the_log_start_gets_the_snapshot_in_chunks() {
    let mut r = leader();
    r.propose(b"a".to_vec()).unwrap();
    r.ready();
    r.step(append_ok(2, 1, 1, 2, 0));
    r.ready();
    r.advance();
    r.compact(2, b"0123456789".to_vec()); // chunk size 4
                                          // Follower 3 rejects the probe: it has nothing.
    r.step(msg(
        3,
        1,
        1,
        MessageBody::AppendEntriesResponse {
            success: false,
            match_index: 0,
            conflict_term: None,
            conflict_index: 1,
            round: 0,
        },
    ));
    let meta = r.snapshot().unwrap().meta.clone();
    let chunk = |offset: u64, data: &[u8], done: bool| {
        msg(
            1,
            3,
            1,
            MessageBody::InstallSnapshot {
                meta: meta.clone(),
                offset,
                data: data.to_vec(),
                done,
                round: 0,
            },
        )
    };
    assert_eq!(r.ready().messages, vec![chunk(0, b"0123", false)]);
    let ack = |next_offset: u64, done: bool| {
        msg(
            3,
            1,
            1,
            MessageBody::InstallSnapshotResponse {
                next_offset,
                last_index: 2,
                done,
                round: 0,
            },
        )
    };
    r.step(ack(4, false));
    assert_eq!(r.ready().messages, vec![chunk(4, b"4567", false)]);
    r.step(ack(8, false));
    assert_eq!(r.ready().messages, vec![chunk(8, b"89", true)]);

    // The follower side: chunks in, one snapshot out.
    let mut f = node(3, &[1, 2, 3], false, false);
    f.step(chunk(0, b"0123", false));
    assert_eq!(
        f.ready().messages,
        vec![msg(
            3,
            1,
            1,
            MessageBody::InstallSnapshotResponse {
                next_offset: 4,
                last_index: 2,
                done: false,
                round: 0
            }
        )]
    );
    f.step(chunk(8, b"89", true)); // a gap: ask again for offset 4
    assert_eq!(
        f.ready().messages,
        vec![msg(
            3,
            1,
            1,
            MessageBody::InstallSnapshotResponse {
                next_offset: 4,
                last_index: 2,
                done: false,
                round: 0
            }
        )]
    );
    f.step(chunk(4, b"4567", false));
    f.ready();
    f.step(chunk(8, b"89", true));
    let rd = f.ready();
    assert_eq!(
        rd.snapshot,
        Some(Snapshot {
            meta: meta.clone(),
            data: b"0123456789".to_vec()
        })
    );
    assert!(rd.committed.is_empty());
    assert_eq!(rd.commit_index, Some(2));
    assert_eq!(
        rd.messages,
        vec![msg(
            3,
            1,
            1,
            MessageBody::InstallSnapshotResponse {
                next_offset: 0,
                last_index: 2,
                done: true,
                round: 0
            }
        )]
    );
    assert_eq!(f.status().last_index, 2);
}

#[test]
fn messages_for_another_node_are_ignored() {
    let mut r = node(1, &[1, 2, 3], false, false);
    r.step(vote_req(2, 3, 1, false, 0, 0));
    assert!(r.ready().is_empty());
    assert_eq!(r.status().term, 0);
}

#[test]
fn timeout_now_starts_an_election_at_once_that_overrides_stickiness() {
    let mut r = node(2, &[1, 2, 3], true, true);
    r.step(append(1, 2, 1, (0, 0), vec![], 0));
    r.ready();
    r.step(msg(1, 2, 1, MessageBody::TimeoutNow));
    let rd = r.ready();
    assert_eq!(
        rd.hard_state,
        Some(HardState {
            term: 2,
            vote: Some(2)
        })
    );
    let transfer_vote = |to| {
        msg(
            2,
            to,
            2,
            MessageBody::RequestVote {
                pre_vote: false,
                last_log_index: 0,
                last_log_term: 0,
                transfer: true,
            },
        )
    };
    assert_eq!(rd.messages, vec![transfer_vote(1), transfer_vote(3)]);
}

#[test]
fn follower_with_a_live_leader_ignores_vote_requests_under_check_quorum() {
    let mut r = node(1, &[1, 2, 3], false, true);
    r.step(append(2, 1, 1, (0, 0), vec![], 0));
    r.ready();
    // A disruptive candidate of a higher term is ignored outright: no reply,
    // no term change (this stickiness is what makes the leader lease sound).
    r.step(vote_req(3, 1, 2, false, 0, 0));
    assert!(r.ready().is_empty());
    assert_eq!(r.status().term, 1);
    for _ in 0..9 {
        r.tick();
    }
    r.step(vote_req(3, 1, 2, false, 0, 0));
    assert!(
        r.ready().is_empty(),
        "still within the minimum election timeout"
    );
    // Once a whole minimum election timeout passes in silence, it may vote.
    r.tick();
    r.ready();
    r.step(vote_req(3, 1, 3, false, 0, 0));
    assert_eq!(
        r.ready(),
        Ready {
            hard_state: Some(HardState {
                term: 3,
                vote: Some(3)
            }),
            messages: vec![vote_resp(1, 3, 3, false, true)],
            role_changed: true,
            ..Ready::default()
        }
    );
}

#[test]
fn heartbeat_never_commits_past_the_entries_it_verified() {
    // The follower's entries 3 and 4 (term 2) are stale; the leader of term 3
    // has verified only index 2 and has committed up to 4 in its own log.
    let mut r = node_with_log(1, &[1, 2, 3], 2, &[1, 1, 2, 2], false);
    r.step(append(2, 1, 3, (2, 1), vec![], 4));
    let rd = r.ready();
    assert_eq!(rd.messages, vec![append_ok(1, 2, 3, 2, 0)]);
    assert_eq!(rd.commit_index, Some(2));
    assert_eq!(
        rd.committed.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![1, 2]
    );
}
