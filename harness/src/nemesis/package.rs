//! Nemesis packages: named fault scenarios a user asks for with
//! `--nemesis` (as Jepsen's nemesis packages), each the shape of fault that
//! a class of Raft bugs needs to show itself. The generic schedule
//! ([`super::Schedule`]) draws faults at random; a package instead plays an
//! *episode* aimed at roles (the leader, one of its followers) with holds
//! long enough for the cluster to move on under it:
//!
//! | package | episode |
//! |---|---|
//! | `isolate-leader` | the leader and a minority (itself alone on 3 nodes) cut off from the majority for 1–2 intervals while its clients keep writing to it; then healed |
//! | `diverge` | the leader can reach only one follower for 0.15–0.4 s (entries appended on it reach only some followers), then it is killed as the network heals, and restarted 0.5–1 interval later |
//! | `lagging` | a follower cut off for 1–2 intervals under writes, healed, and the leader killed at once: the lagging node campaigns among nodes whose logs are longer; the leader restarts 0.5–1 interval later |
//! | `lagging-majority` | a minority of followers cut off for 1–2 intervals under writes, healed, and at once the leader and every up-to-date follower but one killed: every majority left needs a lagging node, so the new leader commits its first entry only once one of them has caught up (a window of milliseconds, not microseconds, for reads that come too early), and a lagging node may campaign with two of the three votes it needs already lagging; the killed nodes restart 0.5–1 interval later |
//! | `pause-leader` | the leader SIGSTOPped for 0.3–0.9 interval (past the election timeout, within the op timeout) with its clients' requests queued behind it, then resumed: they are answered by a node that has not yet heard of the new leader |
//! | `kill-majority` | `kill -9` of the leader and enough followers to lose a majority, all restarted 0.2–1 s later (entries acknowledged just before the kill must survive) |
//! | `kill-all` | `kill -9` of every node, all restarted 0.2–1 s later: nothing survives but what each node made durable |
//! | `crash-voters` | the leader cut off while the others elect over links slowed down by 5–10 % of an interval; once enough nodes to elect a candidate have moved to a new term without a leader (they voted, and their votes are still on their way) they are `kill -9`ed and restarted, the other nodes (the candidates) muted (their links out cut, so a won election reaches no one), and the old leader, whose log is the longest, can reach the restarted voters: a voter that forgot its vote in the crash votes again in the same term, for it. Healed 1–2 intervals later |
//! | `stale-suffix` | the leader and one follower (the holder) cut off from the rest, whose links are slowed as in `crash-voters`, while clients keep writing to the leader: the two hold an uncommitted suffix. Once the rest elect (their voters are seen), the candidates and the holder can reach only each other for 10–40 ms, so the new leader's first entries overwrite the start of the holder's suffix and reach no one else; then the candidates are cut off, and the old leader and the holder can reach every other node, which cannot reach each other: one of the two leads the next term. A follower that kept the rest of its conflicting suffix now matches the old leader at its last entry with different entries before it. Healed 1–2 intervals later; needs 5 nodes or more |
//! | `figure-8` | the Raft paper's Figure 8, played live: a follower (the lagger) cut off while clients write until it lags the leader by about one message's worth of entries (the system's append batch, less 1–6), then the leader and a minority-less-one of followers (the holders) cut off instead, holding an uncommitted suffix. The rest elect over slowed links; once their voters are seen the candidates are muted, so the winner's first entry stays on it alone. Then the old side comes back to the lagger alone, over a link 30–60 ms slow: it (or a holder) wins the next term and its first message to the lagger ends inside the old-term suffix. The moment it advances its commit index, its links to the lagger are reset (the next message, with its own term's entry, never arrives) and the lagger and the rest reach each other only: the muted winner, whose log ends in a newer term than the lagger's, wins again and overwrites what a leader that counts old-term entries committed. Healed 1–2 intervals later. Needs a system that reports its log indexes and append batch (our node) |
//! | `clock` | the leader cut off alone while its clock runs slow (0.05–0.3 × real time) or jumps back 1–3 intervals, so that its timers (CheckQuorum, its lease) lag while the others elect a leader; healed and its clock reset after 1–2 intervals. Needs a system whose clock the harness controls (capability `clock`), and is not in `packages`: a correct leader lease assumes bounded clock drift, which this breaks on purpose |
//! | `early-campaign` | the leader goes deaf (every link into it cut, so it never hears of a newer term) while one follower's clock runs 10–30 times too fast: that follower campaigns between two of the leader's heartbeats, again until the others vote for it, while the leader's lease, renewed by a majority until the cut, still runs; healed and the clock reset after 0.5–1 interval. Only CheckQuorum's vote stickiness keeps the others from electing it, so a lease kept without it serves stale reads. Needs capability `clock`; not in `packages` |
//! | `member-overlap` | the leader and a minority cut off, then two members on the majority side removed at once (the second without waiting for the first): a leader that accepts the second change before the first commits has a configuration whose majority is its own side, while the other side still elects by the old one; healed after 1–2 intervals, the members added back |
//! | `member-learners` | a minority of followers removed (one change at a time), then the leader cut off with them and them added back at once: they are learners until they catch up, and a leader that counts learners commits with its side alone while the voters elect another; healed after 1–2 intervals (needs 5 nodes or more to matter) |
//!
//! Episodes are separated by a quiet time of 0.3–1 interval. The plan is
//! a pure function of the seed (which package, which follower slot, every
//! delay); which node is the leader is only known when a step runs, so
//! roles are bound to nodes then, once per episode, and every later step of
//! the episode follows the same node. When plain fault kinds are listed
//! next to packages, "classic" is one more episode: steps of the generic
//! schedule until every fault it started is undone.

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::fault::{FaultKind, FaultKinds};
use crate::proxy::LinkMode;

/// A named fault scenario of `--nemesis`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Package {
    IsolateLeader,
    Diverge,
    Lagging,
    LaggingMajority,
    PauseLeader,
    KillMajority,
    KillAll,
    CrashVoters,
    StaleSuffix,
    Figure8,
    Clock,
    EarlyCampaign,
    MemberOverlap,
    MemberLearners,
}

impl Package {
    /// Every package, in the order `--nemesis` lists them.
    pub const ALL: [Package; 14] = [
        Package::IsolateLeader,
        Package::Diverge,
        Package::Lagging,
        Package::LaggingMajority,
        Package::PauseLeader,
        Package::KillMajority,
        Package::KillAll,
        Package::CrashVoters,
        Package::StaleSuffix,
        Package::Figure8,
        Package::Clock,
        Package::EarlyCampaign,
        Package::MemberOverlap,
        Package::MemberLearners,
    ];

    /// What `--nemesis packages` means, the same for every system: the
    /// packages that need only kills, pauses and partitions (not the
    /// membership ones, which need membership changes, nor `clock` and
    /// `early-campaign`, which need a clock the harness controls; `clock`
    /// also breaks the bounded drift a leader lease relies on).
    pub const PACKAGES: [Package; 10] = [
        Package::IsolateLeader,
        Package::Diverge,
        Package::Lagging,
        Package::LaggingMajority,
        Package::PauseLeader,
        Package::KillMajority,
        Package::KillAll,
        Package::CrashVoters,
        Package::StaleSuffix,
        Package::Figure8,
    ];

    /// The name in `--nemesis` and `test.json`.
    pub fn name(self) -> &'static str {
        match self {
            Package::IsolateLeader => "isolate-leader",
            Package::Diverge => "diverge",
            Package::Lagging => "lagging",
            Package::LaggingMajority => "lagging-majority",
            Package::PauseLeader => "pause-leader",
            Package::KillMajority => "kill-majority",
            Package::KillAll => "kill-all",
            Package::Clock => "clock",
            Package::EarlyCampaign => "early-campaign",
            Package::MemberOverlap => "member-overlap",
            Package::MemberLearners => "member-learners",
            Package::CrashVoters => "crash-voters",
            Package::StaleSuffix => "stale-suffix",
            Package::Figure8 => "figure-8",
        }
    }

    /// The fault kinds its episodes use: what the system must be able to
    /// take (its capabilities) for the package to run.
    pub fn kinds(self) -> &'static [FaultKind] {
        match self {
            Package::IsolateLeader | Package::Clock | Package::EarlyCampaign => {
                &[FaultKind::Partition]
            }
            Package::MemberOverlap | Package::MemberLearners => {
                &[FaultKind::Partition, FaultKind::Member]
            }
            Package::Diverge
            | Package::Lagging
            | Package::LaggingMajority
            | Package::CrashVoters => &[FaultKind::Partition, FaultKind::Kill],
            Package::StaleSuffix | Package::Figure8 => &[FaultKind::Partition],
            Package::PauseLeader => &[FaultKind::Pause],
            Package::KillMajority | Package::KillAll => &[FaultKind::Kill],
        }
    }

    /// Whether its episodes ask for membership changes at once
    /// (capability `concurrent_members`).
    pub fn needs_concurrent_members(self) -> bool {
        matches!(self, Package::MemberOverlap | Package::MemberLearners)
    }

    /// Whether its episodes time their faults by watching the nodes
    /// (an election, a commit), so that a replay at recorded times misses.
    pub fn watches(self) -> bool {
        matches!(
            self,
            Package::CrashVoters | Package::StaleSuffix | Package::Figure8
        )
    }

    /// Whether its episodes change a node's clock (capability `clock`).
    pub fn needs_clock(self) -> bool {
        matches!(self, Package::Clock | Package::EarlyCampaign)
    }

    fn parse(s: &str) -> Option<Package> {
        Package::ALL.into_iter().find(|p| p.name() == s)
    }
}

impl fmt::Display for Package {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `--nemesis` asks for: plain fault kinds for the generic schedule,
/// and packages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NemesisSpec {
    pub kinds: FaultKinds,
    pub packages: BTreeSet<Package>,
}

impl NemesisSpec {
    /// Parses `--nemesis`: a comma list of fault kinds (`kill`, `pause`,
    /// `partition`, `member`) and packages (`isolate-leader`, …), or `all`
    /// (every kind), `packages` (every package), `none`.
    pub fn parse(s: &str) -> Result<NemesisSpec, String> {
        let mut spec = NemesisSpec::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "packages" {
                spec.packages.extend(Package::PACKAGES);
            } else if let Some(p) = Package::parse(part) {
                spec.packages.insert(p);
            } else {
                let kinds = FaultKind::parse_list(part).map_err(|_| {
                    format!(
                        "unknown fault or package {part:?} (expected a comma list of {}, all, \
                         {}, packages, or none)",
                        super::fault::names(&FaultKind::ALL),
                        Package::ALL.map(Package::name).join(", ")
                    )
                })?;
                spec.kinds.0.extend(kinds.0);
            }
        }
        Ok(spec)
    }

    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.packages.is_empty()
    }

    /// Every fault kind the run may inject: the listed kinds and those the
    /// packages use (what a system's capabilities are checked against).
    pub fn needed_kinds(&self) -> FaultKinds {
        let mut k = self.kinds.clone();
        for p in &self.packages {
            k.0.extend(p.kinds().iter().copied());
        }
        k
    }

    /// The names, kinds first (`test.json`'s `nemesis`).
    pub fn names(&self) -> Vec<String> {
        let mut v = self.kinds.names();
        v.extend(self.packages.iter().map(|p| p.name().to_string()));
        v
    }

    /// How test names say it: `all`, `kill+partition`, `packages`,
    /// `all+isolate-leader`.
    pub fn short_name(&self) -> String {
        let all = Package::PACKAGES.iter().all(|p| self.packages.contains(p));
        let packages = self
            .packages
            .iter()
            .filter(|p| !all || !Package::PACKAGES.contains(p))
            .map(|p| p.name())
            .chain(all.then_some("packages"))
            .collect::<Vec<_>>()
            .join("+");
        match (self.kinds.is_empty(), self.packages.is_empty()) {
            (_, true) => self.kinds.short_name(),
            (true, false) => packages,
            (false, false) => format!("{}+{packages}", self.kinds.short_name()),
        }
    }
}

/// A node by its role when the step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The leader when the episode binds it.
    Leader,
    /// A follower: slot `k` of the healthy non-leader nodes in a seeded
    /// rotation, distinct from the other followers of the episode.
    Follower(usize),
}

/// One move of an episode, on roles.
#[derive(Debug, Clone, PartialEq)]
pub enum Move {
    /// `side` on one side, every other node on the other; with `bridge`,
    /// that follower is on both sides (the side can reach it, and it the
    /// rest), so the side's messages reach only it.
    Cut {
        side: Vec<Role>,
        bridge: Option<Role>,
        mode: LinkMode,
    },
    /// `deaf` hears no one (every link into it cut); every other link
    /// passes, so the others keep hearing from it.
    Deafen {
        deaf: Role,
        mode: LinkMode,
    },
    Heal,
    Kill(Role),
    Start(Role),
    Pause(Role),
    Resume(Role),
    /// The role's clock runs at `rate` (1: real time) and/or jumps.
    Clock {
        role: Role,
        rate: Option<f64>,
        jump_ms: Option<i64>,
    },
    /// The role's clock back to real time.
    ResetClock(Role),
    /// Membership changes asked for at once, without waiting for each
    /// other (the answers are awaited by [`Move::AwaitMembers`]): a removal
    /// or an addition of each role.
    ChangeMembers {
        remove: bool,
        roles: Vec<Role>,
    },
    /// Waits for the membership changes in flight to be answered.
    AwaitMembers,
    /// `side` cut off from the others both ways (`mode`), and every link
    /// among the others delayed by `latency`: they elect without it,
    /// slowly.
    SlowElection {
        side: Vec<Role>,
        latency: Duration,
        mode: LinkMode,
    },
    /// Watches every node but `old` for up to `within`: once nodes have
    /// moved to a newer term than the one the move started in without
    /// knowing a leader (voters, whose votes are still in flight), mutes
    /// every other node but `old` (links out of it cut, `mode`) and
    /// `kill -9`s and restarts those voters, all at once.
    /// Voters count only if they moved to their term within `fresh`
    /// (the slow links' latency): older ones voted in an election that
    /// failed, or whose winner they would have heard of by now.
    CrashVoters {
        old: Role,
        within: Duration,
        fresh: Duration,
        mode: LinkMode,
    },
    /// Watches every node but `old` and `holder` like
    /// [`Move::CrashVoters`]; once the voters are seen, lets the other
    /// nodes (the candidates) and `holder` reach only each other for
    /// `relay`, then cuts the candidates off and lets `old` and `holder`
    /// reach everyone else, who cannot reach each other.
    StaleSuffix {
        old: Role,
        holder: Role,
        within: Duration,
        fresh: Duration,
        relay: Duration,
        mode: LinkMode,
    },
    /// See [`Figure8`].
    Figure8(Figure8<Role>),
}

/// The `figure-8` move, its nodes named by `N` (roles in the plan, nodes
/// once bound): cuts `lagger` off (stalled) and waits up to `within` until
/// `old`'s log is `short` entries short of the lagger's plus one append
/// batch; then cuts off `old` with `holders` (the rest elect over links
/// `latency` slow), mutes the candidates once the voters are seen, lets
/// the old side reach the lagger over a link `delay` slow until one of
/// them advances its commit index, and then lets only the lagger and the
/// rest reach each other. All cuts stall (a reset link is redialled after
/// up to a second), but the last cut of the old side from the lagger
/// resets, dropping the message still on its way.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure8<N> {
    pub old: N,
    pub holders: Vec<N>,
    pub lagger: N,
    pub short: u64,
    pub within: Duration,
    pub latency: Duration,
    pub delay: Duration,
}

impl<N> Figure8<N> {
    /// The same move with each node named by `name`.
    pub fn naming<M>(&self, name: impl Fn(&N) -> M) -> Figure8<M> {
        Figure8 {
            old: name(&self.old),
            holders: self.holders.iter().map(&name).collect(),
            lagger: name(&self.lagger),
            short: self.short,
            within: self.within,
            latency: self.latency,
            delay: self.delay,
        }
    }

    /// Every node it names.
    pub fn nodes(&self) -> impl Iterator<Item = &N> {
        [&self.old, &self.lagger].into_iter().chain(&self.holders)
    }
}

/// A move after a delay.
#[derive(Debug, Clone, PartialEq)]
pub struct PackageStep {
    pub delay: Duration,
    pub mv: Move,
}

/// The leader and followers `0..k`: the side of a cut, or the victims of
/// a kill, that the leader belongs to.
fn leader_and_followers(k: usize) -> Vec<Role> {
    std::iter::once(Role::Leader)
        .chain((0..k).map(Role::Follower))
        .collect()
}

/// `moves` one right after the other, the first after `first`.
fn at_once(first: Duration, moves: impl IntoIterator<Item = Move>) -> Vec<PackageStep> {
    moves
        .into_iter()
        .enumerate()
        .map(|(i, mv)| PackageStep {
            delay: if i == 0 { first } else { Duration::ZERO },
            mv,
        })
        .collect()
}

/// A planned episode: a package's moves, or a stretch of the generic
/// schedule.
#[derive(Debug, Clone, PartialEq)]
pub enum Episode {
    Package {
        package: Package,
        /// Rotation of the follower slots (seeded).
        rotation: usize,
        steps: Vec<PackageStep>,
    },
    /// Steps of the generic schedule until no fault it started is active,
    /// after a quiet time.
    Classic { delay: Duration },
}

/// The seeded sequence of episodes.
#[derive(Debug, Clone)]
pub struct PackagePlan {
    packages: Vec<Package>,
    classic: bool,
    nodes: usize,
    interval: Duration,
    rng: ChaCha8Rng,
}

impl PackagePlan {
    /// Episodes of `packages` (and of the generic schedule when `classic`)
    /// on `nodes` nodes, timed by `interval`.
    pub fn new(
        packages: &BTreeSet<Package>,
        classic: bool,
        nodes: usize,
        interval: Duration,
        seed: u64,
    ) -> Self {
        PackagePlan {
            packages: packages.iter().copied().collect(),
            classic,
            nodes,
            interval,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x7061_636b_6167_6573),
        }
    }

    fn times(&mut self, lo: f64, hi: f64) -> Duration {
        self.interval.mul_f64(self.rng.gen_range(lo..=hi))
    }

    /// A watched election's timing: its links' latency (5–10 % of an
    /// interval: several round trips, a pre-vote and a vote, still fit in
    /// an election timeout) and how long to watch for it (2–3 intervals).
    fn watched_election(&mut self) -> (Duration, Duration) {
        let latency = self.times(0.05, 0.1);
        let within = self.times(2.0, 3.0);
        (latency, within)
    }

    fn secs(&mut self, lo: f64, hi: f64) -> Duration {
        Duration::from_secs_f64(self.rng.gen_range(lo..=hi))
    }

    /// The next episode; `None` when there is nothing to play.
    pub fn next_episode(&mut self) -> Option<Episode> {
        let choices = self.packages.len() + usize::from(self.classic);
        if choices == 0 {
            return None;
        }
        let pick = self.rng.gen_range(0..choices);
        let quiet = self.times(0.3, 1.0);
        let Some(&package) = self.packages.get(pick) else {
            return Some(Episode::Classic { delay: quiet });
        };
        let rotation = self.rng.gen_range(0..self.nodes.max(1));
        let mode = *[LinkMode::Stall, LinkMode::Reset]
            .choose(&mut self.rng)
            .unwrap_or(&LinkMode::Reset);
        // A minority with the leader: itself and `minority - 1` followers.
        let minority = (self.nodes.saturating_sub(1) / 2).max(1);
        let step = |delay, mv| PackageStep { delay, mv };
        let steps = match package {
            Package::IsolateLeader => {
                let side = leader_and_followers(minority - 1);
                let hold = self.times(1.0, 2.0);
                vec![
                    step(
                        quiet,
                        Move::Cut {
                            side,
                            bridge: None,
                            mode,
                        },
                    ),
                    step(hold, Move::Heal),
                ]
            }
            Package::Diverge => {
                let window = self.secs(0.15, 0.4);
                let down = self.times(0.5, 1.0);
                vec![
                    step(
                        quiet,
                        Move::Cut {
                            side: vec![Role::Leader],
                            bridge: Some(Role::Follower(0)),
                            mode: LinkMode::Reset,
                        },
                    ),
                    step(window, Move::Kill(Role::Leader)),
                    step(Duration::ZERO, Move::Heal),
                    step(down, Move::Start(Role::Leader)),
                ]
            }
            Package::Lagging => {
                let hold = self.times(1.0, 2.0);
                let down = self.times(0.5, 1.0);
                vec![
                    step(
                        quiet,
                        Move::Cut {
                            side: vec![Role::Follower(0)],
                            bridge: None,
                            mode,
                        },
                    ),
                    step(hold, Move::Heal),
                    step(Duration::ZERO, Move::Kill(Role::Leader)),
                    step(down, Move::Start(Role::Leader)),
                ]
            }
            Package::LaggingMajority => {
                let lagging: Vec<Role> = (0..minority).map(Role::Follower).collect();
                // Up to date: the leader and followers `minority..`; all but
                // the first of those followers die with the leader, so the
                // survivors are a bare majority, all lagging but one.
                let up_to_date = self.nodes.saturating_sub(1 + minority);
                let victims: Vec<Role> = std::iter::once(Role::Leader)
                    .chain((minority + 1..minority + up_to_date).map(Role::Follower))
                    .collect();
                let hold = self.times(1.0, 2.0);
                let down = self.times(0.5, 1.0);
                let mut steps = vec![
                    step(
                        quiet,
                        Move::Cut {
                            side: lagging,
                            bridge: None,
                            mode,
                        },
                    ),
                    step(hold, Move::Heal),
                ];
                steps.extend(at_once(
                    Duration::ZERO,
                    victims.iter().map(|&r| Move::Kill(r)),
                ));
                steps.extend(at_once(down, victims.iter().map(|&r| Move::Start(r))));
                steps
            }
            Package::PauseLeader => {
                // Past the election timeout, yet short enough that the
                // clients' queued requests (op timeout ≥ 1 s) still wait
                // for the answer the resumed leader gives them.
                let hold = self.times(0.3, 0.9);
                vec![
                    step(quiet, Move::Pause(Role::Leader)),
                    step(hold, Move::Resume(Role::Leader)),
                ]
            }
            Package::KillMajority | Package::KillAll => {
                let majority = if package == Package::KillAll {
                    self.nodes
                } else {
                    self.nodes / 2 + 1
                };
                let victims = leader_and_followers(majority - 1);
                let down = self.secs(0.2, 1.0);
                let mut steps = at_once(quiet, victims.iter().map(|&r| Move::Kill(r)));
                steps.extend(at_once(down, victims.iter().map(|&r| Move::Start(r))));
                steps
            }
            Package::Clock => {
                let hold = self.times(1.0, 2.0);
                let (rate, jump_ms) = if self.rng.gen_bool(0.5) {
                    (Some(self.rng.gen_range(0.05..=0.3)), None)
                } else {
                    (None, Some(-(self.times(1.0, 3.0).as_millis() as i64)))
                };
                vec![
                    step(
                        quiet,
                        Move::Clock {
                            role: Role::Leader,
                            rate,
                            jump_ms,
                        },
                    ),
                    step(
                        Duration::ZERO,
                        Move::Cut {
                            side: vec![Role::Leader],
                            bridge: None,
                            mode,
                        },
                    ),
                    step(hold, Move::Heal),
                    step(Duration::ZERO, Move::ResetClock(Role::Leader)),
                ]
            }
            Package::EarlyCampaign => {
                let hold = self.times(0.5, 1.0);
                // Its election timer then fires between two heartbeats of
                // the leader, again and again, until its log is up to date
                // enough for the others' votes.
                let rate = self.rng.gen_range(10.0..=30.0);
                vec![
                    step(
                        quiet,
                        Move::Deafen {
                            deaf: Role::Leader,
                            mode,
                        },
                    ),
                    step(
                        Duration::ZERO,
                        Move::Clock {
                            role: Role::Follower(0),
                            rate: Some(rate),
                            jump_ms: None,
                        },
                    ),
                    step(hold, Move::Heal),
                    step(Duration::ZERO, Move::ResetClock(Role::Follower(0))),
                ]
            }
            Package::MemberOverlap => {
                // The leader's side: itself and `minority - 1` followers;
                // without two members of the other side, it is a majority.
                let side = leader_and_followers(minority - 1);
                let gone = vec![Role::Follower(minority - 1), Role::Follower(minority)];
                let hold = self.times(1.0, 2.0);
                let change = |remove, roles: &Vec<Role>| Move::ChangeMembers {
                    remove,
                    roles: roles.clone(),
                };
                vec![
                    step(
                        quiet,
                        Move::Cut {
                            side,
                            bridge: None,
                            mode,
                        },
                    ),
                    step(Duration::ZERO, change(true, &gone)),
                    step(hold, Move::Heal),
                    step(Duration::ZERO, Move::AwaitMembers),
                    step(Duration::ZERO, change(false, &gone)),
                    step(Duration::ZERO, Move::AwaitMembers),
                ]
            }
            Package::CrashVoters => {
                let (latency, within) = self.watched_election();
                let hold = self.times(1.0, 2.0);
                vec![
                    step(
                        quiet,
                        Move::SlowElection {
                            side: vec![Role::Leader],
                            latency,
                            mode,
                        },
                    ),
                    step(
                        Duration::ZERO,
                        Move::CrashVoters {
                            old: Role::Leader,
                            within,
                            fresh: latency,
                            mode: LinkMode::Reset,
                        },
                    ),
                    step(hold, Move::Heal),
                ]
            }
            Package::StaleSuffix => {
                // The leader's side must keep clients writing long enough
                // for a suffix longer than what the new leader sends in
                // `relay` (its first entry and what its clients write).
                // Stalled links, not reset ones: a node redials a reset
                // link with a backoff of up to a second, longer than the
                // relay; a stalled one delivers the moment it passes.
                let (latency, within) = self.watched_election();
                // The winner hears its votes up to `latency` after they
                // are seen, then has 10–40 ms to reach the holder.
                let relay = latency + self.secs(0.01, 0.04);
                let hold = self.times(1.0, 2.0);
                vec![
                    step(
                        quiet,
                        Move::SlowElection {
                            side: leader_and_followers(1),
                            latency,
                            mode: LinkMode::Stall,
                        },
                    ),
                    step(
                        Duration::ZERO,
                        Move::StaleSuffix {
                            old: Role::Leader,
                            holder: Role::Follower(0),
                            within,
                            fresh: latency,
                            relay,
                            mode: LinkMode::Stall,
                        },
                    ),
                    step(hold, Move::Heal),
                ]
            }
            Package::Figure8 => {
                // The old side: the leader and holders, one short of a
                // majority with the lagger, which the rest need too.
                let holders: Vec<Role> = (0..minority - 1).map(Role::Follower).collect();
                let lagger = Role::Follower(minority - 1);
                let short = self.rng.gen_range(1..=6);
                let (latency, within) = self.watched_election();
                let delay = self.secs(0.03, 0.06);
                let hold = self.times(1.0, 2.0);
                vec![
                    step(
                        quiet,
                        Move::Figure8(Figure8 {
                            old: Role::Leader,
                            holders,
                            lagger,
                            short,
                            within,
                            latency,
                            delay,
                        }),
                    ),
                    step(hold, Move::Heal),
                ]
            }
            Package::MemberLearners => {
                let learners: Vec<Role> = (0..minority).map(Role::Follower).collect();
                let side = leader_and_followers(minority);
                let hold = self.times(1.0, 2.0);
                // One removal at a time, each answered before the next.
                let mut steps = at_once(
                    quiet,
                    learners.iter().flat_map(|&r| {
                        [
                            Move::ChangeMembers {
                                remove: true,
                                roles: vec![r],
                            },
                            Move::AwaitMembers,
                        ]
                    }),
                );
                steps.extend([
                    step(
                        Duration::ZERO,
                        Move::Cut {
                            side,
                            bridge: None,
                            mode,
                        },
                    ),
                    step(
                        Duration::ZERO,
                        Move::ChangeMembers {
                            remove: false,
                            roles: learners,
                        },
                    ),
                    step(hold, Move::Heal),
                    step(Duration::ZERO, Move::AwaitMembers),
                ]);
                steps
            }
        };
        Some(Episode::Package {
            package,
            rotation,
            steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(spec: &str, seed: u64) -> PackagePlan {
        let s = NemesisSpec::parse(spec).unwrap();
        PackagePlan::new(
            &s.packages,
            !s.kinds.is_empty(),
            5,
            Duration::from_secs(2),
            seed,
        )
    }

    #[test]
    fn nemesis_lists_mix_kinds_and_packages() {
        let s = NemesisSpec::parse("kill,isolate-leader, lagging").unwrap();
        assert_eq!(s.kinds.names(), vec!["kill"]);
        assert_eq!(s.names(), vec!["kill", "isolate-leader", "lagging"]);
        assert_eq!(s.short_name(), "kill+isolate-leader+lagging");
        assert_eq!(
            NemesisSpec::parse("packages").unwrap().short_name(),
            "packages"
        );
        assert_eq!(
            NemesisSpec::parse("clock,packages").unwrap().short_name(),
            "clock+packages"
        );
        assert_eq!(NemesisSpec::parse("all").unwrap().short_name(), "all");
        let needed = NemesisSpec::parse("pause-leader,diverge")
            .unwrap()
            .needed_kinds();
        assert_eq!(needed.names(), vec!["kill", "pause", "partition"]);
        let e = NemesisSpec::parse("kill,boom").unwrap_err();
        assert!(
            e.contains("\"boom\"") && e.contains("isolate-leader"),
            "{e}"
        );
        assert!(NemesisSpec::parse("none").unwrap().is_empty());
    }

    #[test]
    fn the_same_seed_plans_the_same_episodes() {
        let a: Vec<Episode> = {
            let mut p = plan("packages,kill", 4);
            (0..50).filter_map(|_| p.next_episode()).collect()
        };
        let b: Vec<Episode> = {
            let mut p = plan("packages,kill", 4);
            (0..50).filter_map(|_| p.next_episode()).collect()
        };
        let c: Vec<Episode> = {
            let mut p = plan("packages,kill", 5);
            (0..50).filter_map(|_| p.next_episode()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        let played: BTreeSet<String> = a
            .iter()
            .map(|e| match e {
                Episode::Package { package, .. } => package.name().to_string(),
                Episode::Classic { .. } => "classic".into(),
            })
            .collect();
        assert_eq!(played.len(), Package::PACKAGES.len() + 1, "{played:?}");
    }

    #[test]
    fn every_episode_undoes_what_it_does() {
        let mut p = plan(
            "packages,clock,early-campaign,member-overlap,member-learners",
            9,
        );
        for _ in 0..200 {
            let Some(Episode::Package { steps, package, .. }) = p.next_episode() else {
                panic!("packages only")
            };
            let mut cut = false;
            let mut down: BTreeSet<Role> = BTreeSet::new();
            for s in &steps {
                match &s.mv {
                    Move::Cut { .. }
                    | Move::Deafen { .. }
                    | Move::SlowElection { .. }
                    | Move::Figure8(_) => cut = true,
                    // Its kills come with their restarts.
                    Move::CrashVoters { .. } | Move::StaleSuffix { .. } => assert!(cut),
                    Move::Heal => cut = false,
                    Move::ChangeMembers {
                        remove: true,
                        roles,
                    } => {
                        for r in roles {
                            assert!(down.insert(*r))
                        }
                    }
                    Move::ChangeMembers {
                        remove: false,
                        roles,
                    } => {
                        for r in roles {
                            assert!(down.remove(r))
                        }
                    }
                    Move::AwaitMembers => {}
                    Move::Kill(r) | Move::Pause(r) | Move::Clock { role: r, .. } => {
                        assert!(down.insert(*r))
                    }
                    Move::Start(r) | Move::Resume(r) | Move::ResetClock(r) => {
                        assert!(down.remove(r))
                    }
                }
            }
            assert!(!cut && down.is_empty(), "{package}: {steps:?}");
        }
    }

    /// The steps of the first episode of `package` alone on `nodes` nodes.
    fn first_steps(package: &str, nodes: usize, seed: u64) -> Vec<PackageStep> {
        let s = NemesisSpec::parse(package).unwrap();
        let mut p = PackagePlan::new(&s.packages, false, nodes, Duration::from_secs(1), seed);
        let Some(Episode::Package { steps, .. }) = p.next_episode() else {
            panic!("a package episode")
        };
        steps
    }

    /// The side a cut leaves the leader on, and the roles removed or added.
    fn member_episode(package: &str, nodes: usize) -> (Vec<Role>, Vec<Vec<Role>>) {
        let steps = first_steps(package, nodes, 3);
        let mut side = Vec::new();
        let mut changes = Vec::new();
        for s in steps {
            match s.mv {
                Move::Cut { side: s, .. } => side = s,
                Move::ChangeMembers { roles, .. } => changes.push(roles),
                _ => {}
            }
        }
        (side, changes)
    }

    #[test]
    fn member_overlap_removes_two_so_that_the_leaders_side_is_a_majority_of_what_is_left() {
        for nodes in [3, 5, 7] {
            let (side, changes) = member_episode("member-overlap", nodes);
            let removed = &changes[0];
            assert_eq!(removed.len(), 2, "two changes in flight");
            assert!(removed.iter().all(|r| !side.contains(r)));
            let left = nodes - removed.len();
            assert!(side.len() * 2 > left, "{nodes} nodes: {side:?} of {left}");
            // ...while the other side is a majority of the old configuration.
            assert!((nodes - side.len()) * 2 > nodes);
            assert_eq!(&changes[1], removed, "the same members are added back");
        }
    }

    #[test]
    fn member_learners_leaves_the_voters_a_majority_without_the_leaders_side() {
        for nodes in [5, 7] {
            let (side, changes) = member_episode("member-learners", nodes);
            let learners = changes.last().unwrap();
            assert!(learners.iter().all(|r| side.contains(r)));
            let voters = nodes - learners.len();
            // The voters outside the leader's side elect without it, and
            // the leader's side commits only by counting its learners.
            assert!((voters - 1) * 2 > voters, "{nodes}");
            assert!(side.len() * 2 > voters && 2 <= voters, "{nodes}");
        }
    }

    #[test]
    fn lagging_majority_leaves_a_bare_majority_with_one_node_up_to_date() {
        for nodes in [3, 5, 7] {
            let steps = first_steps("lagging-majority", nodes, 2);
            let Move::Cut { side: lagging, .. } = &steps[0].mv else {
                panic!("{steps:?}")
            };
            let killed: Vec<Role> = steps
                .iter()
                .filter_map(|s| match s.mv {
                    Move::Kill(r) => Some(r),
                    _ => None,
                })
                .collect();
            assert!(killed.contains(&Role::Leader));
            assert!(killed.iter().all(|r| !lagging.contains(r)));
            let survivors = nodes - killed.len();
            assert_eq!(survivors, nodes / 2 + 1, "{nodes}: {killed:?}");
            assert_eq!(survivors - lagging.len(), 1, "{nodes}");
        }
    }

    #[test]
    fn early_campaign_deafens_the_leader_and_speeds_up_a_followers_clock() {
        let steps = first_steps("early-campaign", 5, 1);
        assert!(matches!(
            steps[0].mv,
            Move::Deafen {
                deaf: Role::Leader,
                ..
            }
        ));
        let Move::Clock {
            role: Role::Follower(0),
            rate: Some(rate),
            jump_ms: None,
        } = steps[1].mv
        else {
            panic!("{steps:?}")
        };
        assert!((10.0..=30.0).contains(&rate));
        assert!(Package::EarlyCampaign.needs_clock() && Package::Clock.needs_clock());
        assert!(!Package::PACKAGES.iter().any(|p| p.needs_clock()));
    }

    #[test]
    fn crash_voters_isolates_the_leader_slows_the_election_and_watches_the_voters() {
        for seed in 0..20 {
            let steps = first_steps("crash-voters", 3, seed);
            let Move::SlowElection {
                ref side, latency, ..
            } = steps[0].mv
            else {
                panic!("{steps:?}")
            };
            assert_eq!(side, &vec![Role::Leader]);
            // A pre-vote and a vote round trip within a 150 ms election
            // timeout at our node's 0.5 s interval (the plan here: 1 s).
            assert!(latency >= Duration::from_millis(50) && latency <= Duration::from_millis(100));
            assert!(matches!(
                steps[1].mv,
                Move::CrashVoters {
                    old: Role::Leader,
                    mode: LinkMode::Reset,
                    ..
                }
            ));
            assert_eq!(steps[1].delay, Duration::ZERO);
            assert_eq!(steps.last().map(|s| &s.mv), Some(&Move::Heal));
        }
        assert!(Package::PACKAGES.contains(&Package::CrashVoters));
    }

    #[test]
    fn stale_suffix_cuts_the_leader_with_its_holder_and_stalls_instead_of_resetting() {
        for seed in 0..20 {
            let steps = first_steps("stale-suffix", 5, seed);
            let Move::SlowElection {
                ref side,
                latency,
                mode: LinkMode::Stall,
            } = steps[0].mv
            else {
                panic!("{steps:?}")
            };
            assert_eq!(side, &vec![Role::Leader, Role::Follower(0)]);
            let Move::StaleSuffix {
                old: Role::Leader,
                holder: Role::Follower(0),
                fresh,
                relay,
                mode: LinkMode::Stall,
                ..
            } = steps[1].mv
            else {
                panic!("{steps:?}")
            };
            // The votes arrive within `fresh` of being seen; the relay
            // outlasts them by 10–40 ms.
            assert_eq!(fresh, latency);
            assert!(relay >= latency + Duration::from_millis(10));
            assert!(relay <= latency + Duration::from_millis(40));
            assert_eq!(steps.last().map(|s| &s.mv), Some(&Move::Heal));
        }
        assert!(Package::PACKAGES.contains(&Package::StaleSuffix));
    }

    #[test]
    fn figure_8_leaves_the_old_side_one_short_of_a_majority_with_its_lagger() {
        for (nodes, holders, lagger) in [
            (3, vec![], Role::Follower(0)),
            (5, vec![Role::Follower(0)], Role::Follower(1)),
        ] {
            for seed in 0..20 {
                let steps = first_steps("figure-8", nodes, seed);
                let [first, heal] = &steps[..] else {
                    panic!("{steps:?}")
                };
                let Move::Figure8(Figure8 {
                    old: Role::Leader,
                    holders: ref h,
                    lagger: l,
                    short,
                    latency,
                    delay,
                    within,
                }) = first.mv
                else {
                    panic!("{steps:?}")
                };
                assert_eq!((h, l), (&holders, lagger));
                // With the lagger, the old side is a bare majority; without
                // it, the rest are one.
                assert_eq!(2 * (h.len() + 2), nodes + 1);
                assert!((1..=6).contains(&short));
                assert!(delay >= Duration::from_millis(30) && delay <= Duration::from_millis(60));
                assert!(
                    latency >= Duration::from_millis(50) && latency <= Duration::from_millis(100)
                );
                assert!(within >= Duration::from_secs(2));
                assert_eq!(heal.mv, Move::Heal);
            }
        }
        assert!(Package::PACKAGES.contains(&Package::Figure8));
    }

    #[test]
    fn kill_majority_kills_a_majority_and_isolate_leader_keeps_a_minority() {
        let mut p = plan("kill-majority,isolate-leader", 1);
        for _ in 0..50 {
            match p.next_episode() {
                Some(Episode::Package {
                    package: Package::KillMajority,
                    steps,
                    ..
                }) => {
                    let kills = steps
                        .iter()
                        .filter(|s| matches!(s.mv, Move::Kill(_)))
                        .count();
                    assert_eq!(kills, 3);
                }
                Some(Episode::Package {
                    package: Package::IsolateLeader,
                    steps,
                    ..
                }) => {
                    let Move::Cut { side, .. } = &steps[0].mv else {
                        panic!("{steps:?}")
                    };
                    assert_eq!(side, &vec![Role::Leader, Role::Follower(0)]);
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
