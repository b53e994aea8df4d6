//! The harness's teeth, in CI: a short `harness selftest` of planted bugs
//! that the suite settings catch within seconds, and the correct node under
//! the same settings. A change that blunts the harness (clients that stop
//! observing, a nemesis that stops making logs diverge, a check that stops
//! looking) makes a bug pass here; a change that makes it cry wolf makes
//! the correct node fail here.
//!
//! The test build of the `harness` binary carries the bug catalogue (the
//! harness's dev-dependency on `node` turns the feature `bugs` on).

mod common;

use common::ChildGuard;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn selftest(results: &Path, args: &[&str], limit: Duration) -> (i32, String) {
    std::fs::create_dir_all(results).unwrap();
    let stdout = std::fs::File::create(results.join("stdout.txt")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("selftest")
        .arg("--results-dir")
        .arg(results)
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn harness selftest");
    let code = ChildGuard(Some(child))
        .wait_timeout(limit)
        .code()
        .expect("selftest exited normally");
    (
        code,
        std::fs::read_to_string(results.join("stdout.txt")).unwrap(),
    )
}

/// Reads `selftest.json`: every one of the `bugs` chosen was caught, by a
/// named check, and the correct node ran without a false alarm.
fn assert_all_caught_without_alarm(results: &Path, out: &str, bugs: usize) {
    let report: Value =
        serde_json::from_slice(&std::fs::read(results.join("selftest.json")).unwrap()).unwrap();
    let rows = report["bugs"].as_array().unwrap();
    assert_eq!(rows.len(), bugs, "{report}");
    for b in rows {
        assert_eq!(b["caught"], true, "{b}");
        assert!(!b["caught_by"].as_array().unwrap().is_empty(), "{b}");
    }
    let control = &report["control"];
    assert!(control["runs"].as_u64().unwrap() >= 1, "{control}");
    assert_eq!(
        control["false_alarms"].as_array().unwrap().len(),
        0,
        "{out}"
    );
    assert!(out.contains(&format!("caught {bugs}/{bugs}")), "{out}");
}

/// `harness selftest` of `bugs` (a comma list), 60 s each, then the
/// correct node for `control` seconds, with `run_args` for every run:
/// every bug caught, no false alarm, exit 0, within `limit`.
fn catches_all_without_alarm(bugs: &str, control: u32, run_args: &str, limit: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("selftest");
    let control = control.to_string();
    let (code, out) = selftest(
        &results,
        &[
            "--bugs",
            bugs,
            "--budget",
            "60",
            "--control-budget",
            &control,
            "--run-args",
            run_args,
        ],
        limit,
    );
    assert_eq!(code, 0, "{out}");
    assert_all_caught_without_alarm(&results, &out, bugs.split(',').count());
}

#[test]
fn quick_bugs_are_caught_and_the_correct_node_raises_no_alarm() {
    catches_all_without_alarm(
        "apply-past-leader-commit,ack-before-commit",
        20,
        "--time-limit 8",
        Duration::from_secs(240),
    );
}

/// The packages that aim at one class each: two membership changes in
/// flight (`member-overlap`), learners with a cut-off leader
/// (`member-learners`), a follower that campaigns early under a deaf leader
/// (`early-campaign`). Their bugs are caught in the first episode; the
/// correct node takes the same episodes (with leases and without
/// CheckQuorum, the lease bug's profile) without an alarm.
#[test]
fn membership_and_lease_bugs_are_caught_by_their_packages() {
    // The lease bug first: the correct node's first run takes its
    // profile (leases without CheckQuorum under early-campaign).
    catches_all_without_alarm(
        "lease-without-check-quorum,concurrent-conf-changes,counts-non-voters",
        30,
        "--time-limit 8 --nemesis member-overlap,member-learners,early-campaign",
        Duration::from_secs(300),
    );
}

/// `crash-voters` kills the voters of an election before their votes
/// arrive and lets the old leader ask them again in the same term: a vote
/// lost in the crash, or granted twice, elects two leaders of one term.
/// The correct node takes the same episodes without an alarm.
#[test]
fn votes_lost_in_a_crash_or_granted_twice_are_caught_by_crash_voters() {
    catches_all_without_alarm(
        "vote-not-persisted,double-vote",
        20,
        "--time-limit 8 --nodes 3 --nemesis crash-voters --nemesis-interval 0.5",
        Duration::from_secs(240),
    );
}

/// `stale-suffix` leaves a follower with the start of its uncommitted
/// suffix overwritten by a new leader that reached no one else, then lets
/// it or the old leader lead: a follower that kept the rest of its
/// conflicting suffix ends up applying other entries than the old leader
/// at the same indexes. `figure-8` brings an old leader back to a lagging
/// follower whose first batch ends inside the old-term suffix: a leader
/// that counts those entries commits what the next leader overwrites.
/// Five nodes: the old side of two, and three that elect.
#[test]
fn a_kept_conflicting_suffix_and_an_old_term_commit_are_caught_by_their_packages() {
    catches_all_without_alarm(
        "keep-conflicting-suffix,commit-old-term",
        20,
        "--time-limit 8 --nodes 5 --nemesis stale-suffix,figure-8 --nemesis-interval 0.5",
        Duration::from_secs(300),
    );
}

#[test]
fn an_unknown_bug_is_refused_with_the_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let (code, out) = selftest(
        dir.path(),
        &["--bugs", "no-such-bug"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 3, "{out}");
    assert!(
        out.contains("unknown bug \"no-such-bug\"") && out.contains("double-vote"),
        "{out}"
    );
}
