//! Each planted bug of the Raft core (docs/bugs.md) is really there: a
//! scenario at the level of single events gives the correct answer without
//! the bug and the bug's wrong answer with it. (The simulator shows the
//! safety property each one breaks: `bugs_sim.rs`.)

#![cfg(feature = "bugs")]

#[path = "sim/util.rs"]
mod util;

use node::bugs::{Bug, BugSet};
use node::raft::*;
use util::noop;

fn msg(from: NodeId, to: NodeId, term: Term, body: MessageBody) -> Message {
    Message {
        from,
        to,
        term,
        body,
    }
}

fn vote_req(from: NodeId, to: NodeId, term: Term, li: Index, lt: Term) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::RequestVote {
            pre_vote: false,
            last_log_index: li,
            last_log_term: lt,
            transfer: false,
        },
    )
}

fn vote_resp(from: NodeId, to: NodeId, term: Term) -> Message {
    msg(
        from,
        to,
        term,
        MessageBody::RequestVoteResponse {
            pre_vote: false,
            granted: true,
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

fn ack(from: NodeId, to: NodeId, term: Term, match_index: Index, round: u64) -> Message {
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

const NONE: BugSet = BugSet::none();

/// Node `id` of `voters` in `term` with a log of the given terms (entry `i`
/// holds the command `[i - 1]`), fixed timings (`util::config`) and `bugs`.
fn raft(id: NodeId, voters: &[NodeId], term: Term, terms: &[Term], cq: bool, bugs: BugSet) -> Raft {
    let mut cfg = util::config(id, false, cq);
    cfg.bugs = bugs;
    let entries = terms
        .iter()
        .enumerate()
        .map(|(i, &t)| cmd(t, i as u64 + 1, &[i as u8]))
        .collect();
    let persisted = Persisted {
        hard_state: HardState { term, vote: None },
        snapshot: None,
        entries,
        initial_membership: Membership::new(voters.iter().copied()),
    };
    Raft::new(cfg, persisted, id)
}

/// Runs `scenario` without and with `bug`; returns (correct, buggy).
fn both<T>(bug: Bug, scenario: impl Fn(BugSet) -> T) -> (T, T) {
    (scenario(NONE), scenario(BugSet::of([bug])))
}

/// Node 1 of {1, 2, 3} becomes leader (its election timeout is 10 ticks)
/// once node 2 grants its vote.
fn elect(r: &mut Raft) {
    for _ in 0..10 {
        r.tick();
    }
    let term = r.status().term;
    r.step(vote_resp(2, 1, term));
    assert_eq!(r.status().role, Role::Leader);
}

/// Node 1 of {1, 2, 3}, leader of term 1 with its NO_OP committed.
fn leader(cq: bool, bugs: BugSet) -> Raft {
    let mut r = raft(1, &[1, 2, 3], 0, &[], cq, bugs);
    elect(&mut r);
    r.ready();
    r.step(ack(2, 1, 1, 1, 0));
    r.ready();
    r.advance();
    assert_eq!(r.status().commit_index, 1);
    r
}

fn granted(rd: &Ready, to: NodeId) -> bool {
    rd.messages.iter().any(|m| {
        m.to == to
            && matches!(
                m.body,
                MessageBody::RequestVoteResponse { granted: true, .. }
            )
    })
}

// ------------------------------------------------------------ election

#[test]
fn vote_without_log_check_elects_a_candidate_missing_entries() {
    let (correct, buggy) = both(Bug::VoteWithoutLogCheck, |bugs| {
        // Our log ends in term 2; the candidate's in term 1.
        let mut r = raft(1, &[1, 2, 3], 2, &[1, 2], false, bugs);
        r.step(vote_req(2, 1, 3, 5, 1));
        granted(&r.ready(), 2)
    });
    assert!(!correct, "an out-of-date candidate must be refused");
    assert!(buggy);
}

#[test]
fn double_vote_grants_a_second_candidate_in_the_same_term() {
    let (correct, buggy) = both(Bug::DoubleVote, |bugs| {
        let mut r = raft(1, &[1, 2, 3], 0, &[], false, bugs);
        r.step(vote_req(2, 1, 1, 0, 0));
        assert!(granted(&r.ready(), 2));
        r.step(vote_req(3, 1, 1, 0, 0));
        granted(&r.ready(), 3)
    });
    assert!(!correct, "one vote per term");
    assert!(buggy);
}

// ------------------------------------------------------------ commit

#[test]
fn commit_old_term_commits_an_earlier_terms_entry_by_counting_replicas() {
    let (correct, buggy) = both(Bug::CommitOldTerm, |bugs| {
        // Figure 8: (2, term 2) is from node 1's earlier leadership; node 1
        // leads term 4 of five nodes, its NO_OP is (3, 4).
        let mut r = raft(1, &[1, 2, 3, 4, 5], 3, &[1, 2], false, bugs);
        for _ in 0..10 {
            r.tick();
        }
        r.step(vote_resp(2, 1, 4));
        r.step(vote_resp(3, 1, 4));
        r.ready();
        // Index 2 is now on the majority {1, 2, 3}; index 3 on 1 only.
        r.step(ack(2, 1, 4, 2, 0));
        r.step(ack(3, 1, 4, 2, 0));
        r.status().commit_index
    });
    assert_eq!(
        correct, 0,
        "an old-term entry waits for one of the leader's term"
    );
    assert_eq!(buggy, 2);
}

#[test]
fn commit_without_quorum_commits_what_only_the_leader_stores() {
    let (correct, buggy) = both(Bug::CommitWithoutQuorum, |bugs| {
        let mut r = raft(1, &[1, 2, 3], 0, &[], false, bugs);
        elect(&mut r);
        r.propose(b"x".to_vec()).unwrap();
        // No follower acknowledged anything.
        r.ready().committed.len()
    });
    assert_eq!(correct, 0);
    assert_eq!(buggy, 2, "the NO_OP and the command, on the leader alone");
}

// ------------------------------------------------------------ log

#[test]
fn keep_conflicting_suffix_leaves_a_deposed_leaders_entries_after_the_new_ones() {
    let (correct, buggy) = both(Bug::KeepConflictingSuffix, |bugs| {
        let mut r = raft(1, &[1, 2, 3], 2, &[1, 1, 2, 2, 2], false, bugs);
        r.step(append(2, 1, 3, (1, 1), vec![cmd(3, 2, b"x")], 0));
        let rd = r.ready();
        let persisted: Vec<(Index, Term)> = rd.entries.iter().map(|e| (e.index, e.term)).collect();
        (r.status().last_index, persisted)
    });
    assert_eq!(
        correct,
        (2, vec![(2, 3)]),
        "the suffix after the conflict is gone"
    );
    assert_eq!(buggy, (5, vec![(2, 3), (3, 2), (4, 2), (5, 2)]));
}

#[test]
fn truncate_acked_takes_back_entries_on_a_stale_append() {
    let (correct, buggy) = both(Bug::TruncateAcked, |bugs| {
        // Entries 1..=3 (term 1) are stored and were acknowledged; a delayed
        // copy of the leader's earlier message carries only entry 2.
        let mut r = raft(1, &[1, 2, 3], 1, &[1, 1, 1], false, bugs);
        r.step(append(2, 1, 1, (1, 1), vec![cmd(1, 2, &[1])], 0));
        r.ready();
        r.status().last_index
    });
    assert_eq!(correct, 3, "matching entries never truncate");
    assert_eq!(buggy, 2);
}

#[test]
fn apply_past_leader_commit_applies_entries_the_leader_has_not_committed() {
    let (correct, buggy) = both(Bug::ApplyPastLeaderCommit, |bugs| {
        let mut r = raft(1, &[1, 2, 3], 0, &[], false, bugs);
        r.step(append(
            2,
            1,
            1,
            (0, 0),
            vec![cmd(1, 1, b"a"), cmd(1, 2, b"b")],
            0,
        ));
        r.ready().committed.len()
    });
    assert_eq!(correct, 0, "leader_commit is 0");
    assert_eq!(buggy, 2);
}

// ------------------------------------------------------------ reads

#[test]
fn read_index_no_heartbeat_answers_without_confirming_leadership() {
    let (correct, buggy) = both(Bug::ReadIndexNoHeartbeat, |bugs| {
        let mut r = leader(false, bugs);
        r.read_index(7).unwrap();
        r.ready().read_states
    });
    assert!(correct.is_empty(), "the read waits for a round");
    assert_eq!(buggy, vec![ReadState { ctx: 7, index: 1 }]);
}

#[test]
fn read_before_noop_serves_reads_at_a_commit_index_that_may_lag() {
    let (correct, buggy) = both(Bug::ReadBeforeNoop, |bugs| {
        // Entries 1 and 2 may well be committed by the previous leader;
        // this new leader does not know yet (its commit index is 0).
        let mut r = raft(1, &[1, 2, 3], 1, &[1, 1], false, bugs);
        elect(&mut r);
        r.ready();
        let read = r.read_index(7);
        r.ready();
        r.step(ack(2, 1, 2, 2, 1)); // the round is confirmed, the NO_OP is not
        (read, r.ready().read_states)
    });
    assert_eq!(correct, (Err(ReadError::NotReady), vec![]));
    assert_eq!(buggy, (Ok(()), vec![ReadState { ctx: 7, index: 0 }]));
}

/// A leader whose heartbeat round (started at leader tick 12) was confirmed.
fn leased_leader(cq: bool, bugs: BugSet) -> Raft {
    let mut r = leader(cq, bugs);
    r.tick();
    r.tick();
    r.ready();
    r.step(ack(2, 1, 1, 1, 1));
    r
}

#[test]
fn lease_without_check_quorum_serves_lease_reads_without_stickiness() {
    let (correct, buggy) = both(Bug::LeaseWithoutCheckQuorum, |bugs| {
        leased_leader(false, bugs).lease_read()
    });
    assert_eq!(
        correct,
        Err(ReadError::LeaseExpired),
        "no lease without CheckQuorum"
    );
    assert_eq!(buggy, Ok(1));
}

#[test]
fn lease_past_bound_outlives_the_election_timeout() {
    let (correct, buggy) = both(Bug::LeasePastBound, |bugs| {
        let mut r = leased_leader(true, bugs);
        // 15 ticks after the round started: past the lease (8) and the
        // shortest election timeout (10), the others may have a new leader.
        // (Acks of the old round keep CheckQuorum content.)
        for _ in 0..15 {
            r.tick();
            r.step(ack(2, 1, 1, 1, 1));
        }
        r.lease_read()
    });
    assert_eq!(correct, Err(ReadError::LeaseExpired));
    assert_eq!(buggy, Ok(1));
}

#[test]
fn stale_follower_read_answers_a_linearizable_read_on_a_follower() {
    let (correct, buggy) = both(Bug::StaleFollowerRead, |bugs| {
        let mut r = raft(1, &[1, 2, 3], 0, &[], false, bugs);
        r.step(append(2, 1, 1, (0, 0), vec![cmd(1, 1, b"a")], 1));
        r.ready();
        (r.read_index(5), r.ready().read_states)
    });
    assert_eq!(
        correct,
        (Err(ReadError::NotLeader { leader: Some(2) }), vec![])
    );
    assert_eq!(buggy, (Ok(()), vec![ReadState { ctx: 5, index: 1 }]));
}

// ------------------------------------------------------------ membership

#[test]
fn concurrent_conf_changes_accepts_a_second_change_in_flight() {
    let (correct, buggy) = both(Bug::ConcurrentConfChanges, |bugs| {
        let mut r = leader(false, bugs);
        r.propose_conf_change(ConfChange::AddNode(4)).unwrap();
        r.propose_conf_change(ConfChange::RemoveNode(3))
    });
    assert_eq!(
        correct,
        Err(ProposeError::ChangePending { pending_index: 2 })
    );
    assert_eq!(buggy, Ok((3, 1)));
}

#[test]
fn counts_non_voters_commits_with_a_learners_acknowledgement() {
    let (correct, buggy) = both(Bug::CountsNonVoters, |bugs| {
        let mut r = leader(false, bugs);
        r.propose_conf_change(ConfChange::AddNode(4)).unwrap(); // learner 4 at index 2
        r.propose(b"x".to_vec()).unwrap(); // index 3
        r.ready();
        // Only the learner acknowledges: voters 2 and 3 store nothing new.
        r.step(ack(4, 1, 1, 3, 0));
        r.status().commit_index
    });
    assert_eq!(correct, 1, "a learner is no part of a quorum");
    assert_eq!(buggy, 3);
}

// ------------------------------------------------------------ client

#[test]
fn duplicate_apply_applies_an_earlier_terms_command_twice() {
    let (correct, buggy) = both(Bug::DuplicateApply, |bugs| {
        // Commands [0] and [1] were appended in term 1 and never seen committed.
        let mut r = raft(1, &[1, 2, 3], 1, &[1, 1], false, bugs);
        elect(&mut r);
        let last = r.status().last_index;
        r.ready();
        r.step(ack(2, 1, 2, last, 0));
        let applied: Vec<Entry> = r.ready().committed;
        applied
            .into_iter()
            .filter_map(|e| match e.payload {
                EntryPayload::Command(d) => Some(d),
                _ => None,
            })
            .collect::<Vec<_>>()
    });
    assert_eq!(correct, vec![vec![0], vec![1]]);
    assert_eq!(buggy, vec![vec![0], vec![1], vec![0], vec![1]]);
}

#[test]
fn duplicate_apply_copies_follow_the_new_leaders_noop() {
    let mut r = raft(
        1,
        &[1, 2, 3],
        1,
        &[1],
        false,
        BugSet::of([Bug::DuplicateApply]),
    );
    elect(&mut r);
    assert_eq!(r.ready().entries, vec![noop(2, 2), cmd(2, 3, &[0])]);
}
