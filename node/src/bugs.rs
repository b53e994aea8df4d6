//! The catalogue of classic Raft bugs planted in this node, so that a chaos
//! harness can prove it catches each one (etcd keeps patches that re-introduce
//! its past bugs for the same reason). Compiled only with the cargo feature
//! `bugs`; `node --bug NAME` turns one on at run time.
//!
//! A bug is configuration, never a global: the core reads its [`BugSet`] from
//! `raft::Config`, storage and runtime from their own options, and each bug is
//! checked at the one spot of the code where the real mistake would be.
//! `docs/bugs.md` says, for each, which real-world bug it imitates and what
//! fault and client behaviour expose it.

use std::fmt;
use std::str::FromStr;

/// The part of Raft a bug breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BugClass {
    Election,
    Commit,
    Log,
    Reads,
    Persistence,
    Membership,
    Client,
}

impl BugClass {
    pub fn as_str(self) -> &'static str {
        match self {
            BugClass::Election => "election",
            BugClass::Commit => "commit",
            BugClass::Log => "log",
            BugClass::Reads => "reads",
            BugClass::Persistence => "persistence",
            BugClass::Membership => "membership",
            BugClass::Client => "client",
        }
    }
}

/// Defines [`Bug`] from one list, so that a variant, its name, its class and
/// its doc paragraph cannot drift apart.
macro_rules! catalogue {
    ($( $(#[doc = $doc:literal])+ $variant:ident = $name:literal, $class:ident; )+) => {
        /// One planted bug. The doc paragraph of each variant is also what
        /// [`Bug::doc`] returns.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Bug {
            $( $(#[doc = $doc])+ $variant, )+
        }

        impl Bug {
            /// Every bug, in catalogue order.
            pub const ALL: &'static [Bug] = &[$(Bug::$variant),+];

            /// The name `--bug` takes (kebab-case).
            pub fn name(self) -> &'static str {
                match self { $(Bug::$variant => $name,)+ }
            }

            pub fn class(self) -> BugClass {
                match self { $(Bug::$variant => BugClass::$class,)+ }
            }

            /// What the bug does, in one paragraph.
            pub fn doc(self) -> &'static str {
                match self { $(Bug::$variant => concat!($($doc, "\n"),+),)+ }
            }
        }
    };
}

catalogue! {
    /// A voter grants its vote without the up-to-date check of §5.4.1, so a
    /// candidate whose log lacks committed entries can win and overwrite them.
    VoteWithoutLogCheck = "vote-without-log-check", Election;
    /// A voter grants its vote to every candidate of the current term, not only
    /// to the first one (it ignores the vote it already cast): two leaders can
    /// be elected in one term.
    DoubleVote = "double-vote", Election;
    /// Storage writes the hard state without the vote (the term is kept): a node
    /// that crashes and restarts may vote a second time in the same term.
    VoteNotPersisted = "vote-not-persisted", Election;
    /// The leader commits an entry of an earlier term as soon as a majority
    /// stores it (the Figure 8 rule is missing): a later leader can overwrite it.
    CommitOldTerm = "commit-old-term", Commit;
    /// The commit quorum is `voters / 2` instead of `voters / 2 + 1` (an
    /// off-by-one): in three nodes the leader commits what only it stores.
    CommitWithoutQuorum = "commit-without-quorum", Commit;
    /// A follower overwrites a conflicting entry in place but keeps the rest of
    /// its conflicting suffix, so entries of a deposed leader stay in its log
    /// after the new leader's.
    KeepConflictingSuffix = "keep-conflicting-suffix", Log;
    /// A follower truncates its log after the last entry of every AppendEntries,
    /// even a stale or duplicated one whose entries all match: it takes back
    /// entries it already acknowledged, which the leader may have committed.
    TruncateAcked = "truncate-acked", Log;
    /// A follower commits (and applies) every entry an AppendEntries verified,
    /// ignoring the leader's commit index: it applies entries that may never
    /// commit and are later replaced.
    ApplyPastLeaderCommit = "apply-past-leader-commit", Log;
    /// The leader answers a ReadIndex read at once with its commit index,
    /// without a heartbeat round proving it is still the leader: a deposed
    /// leader serves stale reads.
    ReadIndexNoHeartbeat = "read-index-no-heartbeat", Reads;
    /// A new leader serves ReadIndex reads before its NO_OP commits, at a commit
    /// index that may lag what the previous leader committed (and acknowledged).
    ReadBeforeNoop = "read-before-noop", Reads;
    /// Lease reads are served even without CheckQuorum, whose vote stickiness is
    /// what keeps other nodes from electing a new leader while the lease runs.
    LeaseWithoutCheckQuorum = "lease-without-check-quorum", Reads;
    /// The leader lease lasts twice the longest election timeout instead of less
    /// than the shortest: a partitioned leader keeps serving lease reads after
    /// the others elected a new leader and committed writes.
    LeasePastBound = "lease-past-bound", Reads;
    /// A follower answers a linearizable read from its own state at its own
    /// commit index instead of redirecting it to the leader.
    StaleFollowerRead = "stale-follower-read", Reads;
    /// Appended entries are acknowledged before they are durable: storage keeps
    /// them in process memory and writes and fsyncs them a second later, so a
    /// `kill -9` loses entries the node already acknowledged.
    AckBeforeFsync = "ack-before-fsync", Persistence;
    /// Recovery drops the last entry of the log (a complete, fsynced record
    /// taken for a torn one): every restart loses an acknowledged entry.
    LoseLastEntry = "lose-last-entry", Persistence;
    /// The leader accepts a membership change while another one is still
    /// uncommitted: two single-server changes in flight can form majorities
    /// that do not overlap.
    ConcurrentConfChanges = "concurrent-conf-changes", Membership;
    /// Nodes that are not voters of the configuration in effect (learners, a
    /// node whose removal is pending) are counted toward commit and election
    /// quorums.
    CountsNonVoters = "counts-non-voters", Membership;
    /// The leader acknowledges a key-value write as soon as it appended it to
    /// its own log, before a majority stores it (a cas is reported done without
    /// being evaluated).
    AckBeforeCommit = "ack-before-commit", Client;
    /// A new leader re-proposes the client commands left uncommitted in its log
    /// from earlier terms, which then commit too: each is applied twice.
    DuplicateApply = "duplicate-apply", Client;
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Bug {
    type Err = String;

    fn from_str(s: &str) -> Result<Bug, String> {
        Bug::ALL
            .iter()
            .copied()
            .find(|b| b.name() == s)
            .ok_or_else(|| format!("unknown bug {s:?}; the catalogue is:\n{}", catalogue_list()))
    }
}

/// Every bug name with its class, one per line (for error messages).
pub fn catalogue_list() -> String {
    Bug::ALL
        .iter()
        .map(|b| format!("  {:<28} {}", b.name(), b.class().as_str()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A set of bugs that are on. `Copy`, so that configurations holding it stay cheap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct BugSet(u32);

const _: () = assert!(Bug::ALL.len() <= 32, "BugSet holds at most 32 bugs");

impl BugSet {
    pub const fn none() -> BugSet {
        BugSet(0)
    }

    pub fn of(bugs: impl IntoIterator<Item = Bug>) -> BugSet {
        bugs.into_iter().fold(BugSet(0), |s, b| s.with(b))
    }

    pub fn with(self, bug: Bug) -> BugSet {
        BugSet(self.0 | Self::bit(bug))
    }

    pub fn has(self, bug: Bug) -> bool {
        self.0 & Self::bit(bug) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Bug> {
        Bug::ALL.iter().copied().filter(move |&b| self.has(b))
    }

    fn bit(bug: Bug) -> u32 {
        1 << Bug::ALL
            .iter()
            .position(|&b| b == bug)
            .expect("every bug is in the catalogue")
    }
}

impl fmt::Display for BugSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Bug::name).collect();
        f.write_str(&names.join(","))
    }
}

/// Says loudly, at start-up, which bugs this node runs with.
pub fn announce(bugs: BugSet) {
    if !bugs.is_empty() {
        tracing::warn!(bugs = %bugs, "PLANTED BUGS ON: this node is deliberately incorrect");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for &b in Bug::ALL {
            assert_eq!(b.name().parse::<Bug>(), Ok(b));
            assert!(seen.insert(b.name()), "duplicate name {}", b.name());
            assert!(b.name().chars().all(|c| c.is_ascii_lowercase() || c == '-'));
            assert!(b.doc().len() > 40, "{} needs its paragraph", b.name());
        }
        let err = "no-such-bug".parse::<Bug>().unwrap_err();
        assert!(err.contains("commit-old-term") && err.contains("persistence"));
    }

    #[test]
    fn every_class_has_a_bug_and_sets_hold_what_was_put_in() {
        use BugClass::*;
        for class in [
            Election,
            Commit,
            Log,
            Reads,
            Persistence,
            Membership,
            Client,
        ] {
            assert!(Bug::ALL.iter().any(|b| b.class() == class), "{class:?}");
        }
        let s = BugSet::of([Bug::DoubleVote, Bug::LoseLastEntry]);
        assert!(s.has(Bug::DoubleVote) && s.has(Bug::LoseLastEntry));
        assert!(!s.has(Bug::CommitOldTerm));
        assert_eq!(s.to_string(), "double-vote,lose-last-entry");
        assert!(BugSet::none().is_empty());
    }
}
