//! The nemesis: faults on a seeded schedule, each one recorded in the history.
//!
//! [`fault`] names the fault kinds (one place for each kind's names, undo
//! and label); [`schedule::Schedule`] plans (seeded, weighted, gated: see
//! its docs), and so does [`package::PackagePlan`] for named episodes
//! (`election` holds the package moves that step into an election as it
//! happens); [`Nemesis`] carries the plan out against a [`Cluster`] and
//! its [`Network`], and reports every step to a [`NemesisSink`] as a
//! [`NemesisEvent`]. The history recorder turns each event into one history
//! line `{"process": "nemesis", "type": "info", "f": event.f, "value":
//! event.value}` timed at `event.at`.
//!
//! Events (`f`, then `value`):
//! - `kill` / `start`: `{"node": 3}` — SIGKILL of the node's process group /
//!   start again on the same data dir;
//! - `pause` / `resume`: `{"node": 3}` — SIGSTOP / SIGCONT;
//! - a kill, pause, removal or partition aimed at the leader
//!   ([`Targets::Primaries`]) adds `"primary": true`;
//! - `start-partition`: `{"shape": "majority", "groups": [[2, 5], [1, 3, 4]],
//!   "links": [[1, 2, "pass"], [1, 3, "stall"], …]}` — the exact matrix of
//!   every directed link (see [`partition`]); `stop-partition`: the same keys
//!   for the partition that was healed, with `"links"` now all `pass`;
//! - `remove-member`: `{"node": 3, "wiped": false, "members": [1, 2, 4, 5]}` —
//!   removed through the leader (once committed); the node keeps running
//!   outside the configuration (or stops, if the system stops removed
//!   members: etcd does) or, with [`ScheduleConfig::member_wipe`], is
//!   killed and wiped (`"wiped": true`); `add-member`: `{"node": 3,
//!   "members": [1, 2, 3, 4, 5]}` — added back as the system requires
//!   ([`Cluster::add_member`]); `members` is the leader's view when known.
//!
//! A `start` of a node the nemesis did not kill (it exited on its own, which
//! is a finding) carries `"note"`. A step that failed carries `"error": "…"`
//! in its value (the fault did not happen, or not fully); its undo is then
//! still reported, with `"error"` too when there was nothing to undo, so the
//! history follows the seeded plan. A membership step may take up to the
//! cluster's membership timeout (10 s by default), and [`Nemesis::run_until`]
//! only stops between steps.
//!
//! Usage:
//! ```ignore
//! let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
//! let mut nemesis = Nemesis::new(schedule_config, seed, cluster, Arc::new(tx))?;
//! nemesis.run_until(stop_signal).await;   // returns between steps
//! nemesis.heal_all().await;               // end of run or Ctrl-C
//! ```

mod election;
pub mod fault;
pub mod package;
pub mod partition;
pub mod recorded;
pub mod schedule;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::cluster::{NodeId, ProcessState};
use crate::systems::{wait_for_leader, ClockChange, Cluster, Network};
pub use fault::{Edge, FaultKind, FaultKinds, Targets};
pub use package::{Episode, Figure8, Move, NemesisSpec, Package, PackagePlan, Role};
pub use partition::{Partition, Shape};
pub use recorded::{RecordedSchedule, RecordedStep};
pub use schedule::{Action, FaultState, Schedule, ScheduleConfig, Step};

/// How long a fault aimed at the leader waits for one to be elected: a
/// few election timeouts of the systems we test (etcd's is 1 s), short
/// enough that the schedule keeps its rhythm.
const LEADER_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// One nemesis step as it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct NemesisEvent {
    /// Jepsen name: `kill`, `start`, `pause`, `resume`, `start-partition`,
    /// `stop-partition`, `remove-member`, `add-member`.
    pub f: &'static str,
    pub value: serde_json::Value,
    /// When the step took effect (after it completed).
    pub at: std::time::Instant,
}

/// Where nemesis events go (the history recorder). Must not block for long.
pub trait NemesisSink: Send + Sync {
    fn emit(&self, event: NemesisEvent);
}

impl NemesisSink for tokio::sync::mpsc::UnboundedSender<NemesisEvent> {
    fn emit(&self, event: NemesisEvent) {
        // The receiver is gone only when the run is over; nothing to record then.
        let _ = self.send(event);
    }
}

impl<F: Fn(NemesisEvent) + Send + Sync> NemesisSink for F {
    fn emit(&self, event: NemesisEvent) {
        self(event)
    }
}

/// Errors setting up a nemesis.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    #[error("the partition nemesis needs a network the harness controls (peers must talk through proxies)")]
    NoNetwork,
    #[error("schedule node {0} is not a node of the system under test")]
    UnknownNode(NodeId),
}

/// A snapshot of the faults in effect, for the progress line and for
/// whoever must tell a fault from a finding (a removed member that its
/// system stops is not a crash).
#[derive(Debug, Clone, Default)]
pub struct ActiveFaults(Arc<Mutex<(Vec<String>, BTreeSet<NodeId>)>>);

impl ActiveFaults {
    /// Short descriptions such as `kill n3`, `partition majority`.
    pub fn get(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }

    /// The nodes removed from the configuration now.
    pub fn removed(&self) -> BTreeSet<NodeId> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1.clone()
    }

    /// A removal about to be asked for: its system may stop the node
    /// before the change is confirmed.
    fn removing(&self, n: NodeId) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).1.insert(n);
    }

    fn set(&self, v: Vec<String>, removed: BTreeSet<NodeId>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = (v, removed);
    }
}

/// Carries out a [`Schedule`] and can heal everything it did.
pub struct Nemesis {
    schedule: Schedule,
    sut: Arc<dyn Cluster>,
    network: Option<Arc<dyn Network>>,
    sink: Arc<dyn NemesisSink>,
    /// What really happened (the schedule's bookkeeping assumes success).
    actual: FaultState,
    active: ActiveFaults,
    /// The node behind each label the schedule plans with: the identity,
    /// until aiming at the leader swaps two labels.
    labels: BTreeMap<NodeId, NodeId>,
    /// A schedule an earlier run realised, carried out instead of the
    /// drawn one (`harness replay`); the drawn schedule then only lends
    /// its gates' settings.
    recorded: Option<RecordedSchedule>,
    /// Episodes of nemesis packages, when `--nemesis` names any: then the
    /// generic schedule only plays inside "classic" episodes.
    packages: Option<PackagePlan>,
    /// The system's append batch ([`Nemesis::with_append_batch`]).
    append_batch: Option<u64>,
    /// Nodes whose clock the nemesis changed and has not reset.
    clocked: BTreeSet<NodeId>,
    /// Membership changes of a package asked for and not yet answered
    /// ([`Move::ChangeMembers`]): the node, whether it is a removal, and
    /// the task waiting for the answer.
    in_flight: Vec<MemberChange>,
}

/// A membership change in flight (see [`Nemesis::in_flight`]).
struct MemberChange {
    node: NodeId,
    remove: bool,
    task: tokio::task::JoinHandle<Result<(), crate::cluster::ClusterError>>,
}

impl Nemesis {
    /// Plans with `config` and `seed`; checks that the cluster has the
    /// nodes and, for partitions, a network to cut.
    pub fn new(
        config: ScheduleConfig,
        seed: u64,
        sut: Arc<dyn Cluster>,
        sink: Arc<dyn NemesisSink>,
    ) -> Result<Self, NemesisError> {
        let network = sut.network();
        let known: BTreeSet<NodeId> = sut.node_ids().into_iter().collect();
        if let Some(&n) = config.nodes.iter().find(|n| !known.contains(n)) {
            return Err(NemesisError::UnknownNode(n));
        }
        if network.is_none() && config.kinds.iter().any(|k| k.0 == FaultKind::Partition) {
            return Err(NemesisError::NoNetwork);
        }
        Ok(Nemesis {
            schedule: Schedule::new(config, seed),
            sut,
            network,
            sink,
            actual: FaultState::default(),
            active: ActiveFaults::default(),
            labels: known.iter().map(|&n| (n, n)).collect(),
            recorded: None,
            packages: None,
            append_batch: None,
            clocked: BTreeSet::new(),
            in_flight: Vec::new(),
        })
    }

    /// Plays episodes of `plan` instead of the bare schedule (which then
    /// runs inside its "classic" episodes).
    pub fn with_packages(mut self, plan: PackagePlan) -> Self {
        self.packages = Some(plan);
        self
    }

    /// Lets the `figure-8` package line a lagging follower up with the
    /// system's append batch (without it, its episodes do nothing).
    pub fn with_append_batch(mut self, batch: Option<u64>) -> Self {
        self.append_batch = batch;
        self
    }

    /// Publishes the faults in effect through `active` (a handle the caller
    /// already shares) instead of a handle of its own.
    pub fn sharing(mut self, active: ActiveFaults) -> Self {
        self.active = active;
        self
    }

    /// Carries out `recorded` instead of drawing steps: each step at its
    /// recorded time after [`Nemesis::run_until`] starts, on the very node
    /// it hit then (no aiming at the leader: the recording already says
    /// where it went). Everything else (events, healing) is as usual.
    pub fn replaying(mut self, recorded: RecordedSchedule) -> Self {
        self.recorded = Some(recorded);
        self
    }

    /// A handle on the faults in effect, updated after every step.
    pub fn active_faults(&self) -> ActiveFaults {
        self.active.clone()
    }

    /// What is really in effect now.
    pub fn state(&self) -> &FaultState {
        &self.actual
    }

    /// Runs steps until `stop` completes. A step in progress is finished
    /// first (never left half done), so the caller can then `heal_all`.
    pub async fn run_until<F: Future<Output = ()>>(&mut self, stop: F) {
        tokio::pin!(stop);
        if let Some(recorded) = self.recorded.take() {
            let start = tokio::time::Instant::now();
            for step in recorded.steps {
                tokio::select! {
                    _ = &mut stop => return,
                    _ = tokio::time::sleep_until(start + step.at) => {}
                }
                self.execute(step.action).await;
            }
            return stop.await;
        }
        if self.packages.is_some() {
            return self.run_episodes(stop).await;
        }
        while let Some(step) = self.schedule.next_step() {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(step.delay) => {}
            }
            let (action, primary) = self.bind(step.action).await;
            self.execute_noted(action, primary).await;
        }
        // No fault can ever happen (no kinds): just wait for the end.
        stop.await;
    }

    /// Plays package episodes until `stop`; an episode in progress is
    /// played to its end (its undos included), so nothing is left half done.
    async fn run_episodes<F: Future<Output = ()>>(&mut self, mut stop: std::pin::Pin<&mut F>) {
        loop {
            let Some(episode) = self.packages.as_mut().and_then(|p| p.next_episode()) else {
                stop.await;
                return;
            };
            match episode {
                Episode::Classic { delay } => {
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    self.play_classic().await;
                }
                Episode::Package {
                    package,
                    rotation,
                    steps,
                } => {
                    let mut steps = steps.into_iter();
                    let Some(first) = steps.next() else { continue };
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = tokio::time::sleep(first.delay) => {}
                    }
                    let all: Vec<&Move> = std::iter::once(&first.mv).collect();
                    let roles = roles_of(
                        all.into_iter()
                            .chain(steps.as_slice().iter().map(|s| &s.mv)),
                    );
                    let Some(bound) = self.bind_roles(&roles, rotation).await else {
                        tracing::warn!(
                            package = package.name(),
                            "no leader to aim at: episode skipped"
                        );
                        continue;
                    };
                    tracing::info!(package = package.name(), ?bound, "nemesis episode");
                    self.play_move(&first.mv, &bound).await;
                    for s in steps {
                        if !s.delay.is_zero() {
                            tokio::time::sleep(s.delay).await;
                        }
                        self.play_move(&s.mv, &bound).await;
                    }
                }
            }
        }
    }

    /// Steps of the generic schedule until no fault it started is active
    /// (at most 20 steps; then what is left is undone).
    async fn play_classic(&mut self) {
        for i in 0..20 {
            let Some(step) = self.schedule.next_step() else {
                return;
            };
            if i > 0 {
                tokio::time::sleep(step.delay).await;
            }
            let (action, primary) = self.bind(step.action).await;
            self.execute_noted(action, primary).await;
            if self.schedule.state().active() == 0 {
                return;
            }
        }
        for undo in self.schedule.state().undos() {
            let (action, primary) = self.bind(undo).await;
            self.execute_noted(action, primary).await;
        }
        self.schedule.reset_state();
    }

    /// Binds an episode's roles to nodes: the current leader, and followers
    /// from the healthy non-leader nodes in the episode's rotation. `None`
    /// when there is no leader (or too few followers) to aim at.
    async fn bind_roles(
        &self,
        roles: &BTreeSet<Role>,
        rotation: usize,
    ) -> Option<BTreeMap<Role, NodeId>> {
        let deadline = tokio::time::Instant::now() + 3 * LEADER_WAIT;
        let leader = wait_for_leader(&*self.sut, deadline).await.ok()?.leader;
        let impaired = self.actual.impaired();
        let mut followers: Vec<NodeId> = self
            .sut
            .node_ids()
            .into_iter()
            .filter(|&n| n != leader && !impaired.contains(&n))
            .collect();
        if followers.is_empty() {
            return None;
        }
        let r = rotation % followers.len();
        followers.rotate_left(r);
        let mut bound = BTreeMap::new();
        for &role in roles {
            let node = match role {
                Role::Leader => leader,
                Role::Follower(k) => *followers.get(k)?,
            };
            bound.insert(role, node);
        }
        Some(bound)
    }

    /// Sets node `n`'s clock; event `clock` with the change, or
    /// `reset-clock` when it goes back to real time.
    async fn clock(&mut self, n: NodeId, change: ClockChange, primary: bool) {
        let reset = change.rate == Some(1.0) && change.jump_ms.is_none();
        let mut value = json!({"node": n});
        if let Some(r) = change.rate {
            value["rate"] = json!(r);
        }
        if let Some(j) = change.jump_ms {
            value["jump_ms"] = json!(j);
        }
        match self.sut.set_clock(n, change).await {
            Ok(()) if reset => {
                self.clocked.remove(&n);
            }
            Ok(()) => {
                self.clocked.insert(n);
            }
            Err(e) => value["error"] = json!(e.to_string()),
        }
        if primary {
            value["primary"] = json!(true);
        }
        let f = if reset { "reset-clock" } else { "clock" };
        self.emit(f, value);
    }

    /// One move of an episode on its bound nodes.
    async fn play_move(&mut self, mv: &Move, bound: &BTreeMap<Role, NodeId>) {
        let node = |r: &Role| bound[r];
        let primary = |r: &Role| *r == Role::Leader;
        let (action, aimed) = match mv {
            Move::Cut { side, bridge, mode } => {
                let nodes = self.sut.node_ids();
                let side: Vec<NodeId> = side.iter().map(node).collect();
                let mut rest: Vec<NodeId> = nodes
                    .iter()
                    .copied()
                    .filter(|n| !side.contains(n))
                    .collect();
                let (shape, groups) = match bridge.map(|b| node(&b)) {
                    Some(b) => {
                        let mut a = side.clone();
                        a.push(b);
                        (Shape::Bridge, vec![a, rest])
                    }
                    None => {
                        rest.retain(|n| !side.contains(n));
                        let shape = if side.len() == 1 {
                            Shape::One
                        } else {
                            Shape::Majority
                        };
                        (shape, vec![side.clone(), rest])
                    }
                };
                let aimed = bound.get(&Role::Leader).is_some_and(|l| side.contains(l));
                let p = partition::of_groups(shape, groups, &nodes, *mode);
                (Action::StartPartition(p), aimed)
            }
            Move::Deafen { deaf, mode } => {
                let p = partition::deafened(node(deaf), &self.sut.node_ids(), *mode);
                (Action::StartPartition(p), primary(deaf))
            }
            Move::ChangeMembers { remove, roles } => {
                for r in roles {
                    self.ask_member_change(node(r), *remove);
                }
                return;
            }
            Move::AwaitMembers => {
                self.await_member_changes().await;
                return;
            }
            Move::SlowElection {
                side,
                latency,
                mode,
            } => {
                let slow = crate::proxy::LinkMode::Delay {
                    latency_ms: latency.as_millis() as u64,
                    jitter_ms: 0,
                };
                let nodes: Vec<NodeId> = side.iter().map(node).collect();
                let p = partition::cut_and_slow(&nodes, &self.sut.node_ids(), *mode, slow);
                (Action::StartPartition(p), side.contains(&Role::Leader))
            }
            Move::CrashVoters {
                old,
                within,
                fresh,
                mode,
            } => {
                self.crash_voters(node(old), (*within, *fresh), *mode).await;
                return;
            }
            Move::StaleSuffix {
                old,
                holder,
                within,
                fresh,
                relay,
                mode,
            } => {
                self.stale_suffix(node(old), node(holder), (*within, *fresh), *relay, *mode)
                    .await;
                return;
            }
            Move::Figure8(f) => {
                self.figure_eight(f.naming(node)).await;
                return;
            }
            // An episode that gave up before it cut anything (no election
            // seen, a system that cannot play it) has nothing to heal.
            Move::Heal if self.actual.partition.is_none() => return,
            Move::Heal => (Action::StopPartition, false),
            Move::Kill(r) => (Action::Kill(node(r)), primary(r)),
            Move::Start(r) => (Action::Start(node(r)), false),
            Move::Pause(r) => (Action::Pause(node(r)), primary(r)),
            Move::Resume(r) => (Action::Resume(node(r)), false),
            Move::Clock {
                role,
                rate,
                jump_ms,
            } => {
                let change = ClockChange {
                    rate: *rate,
                    jump_ms: *jump_ms,
                };
                self.clock(node(role), change, primary(role)).await;
                return;
            }
            Move::ResetClock(r) => {
                let reset = ClockChange {
                    rate: Some(1.0),
                    jump_ms: None,
                };
                self.clock(node(r), reset, false).await;
                return;
            }
        };
        self.execute_noted(action, aimed).await;
    }

    /// Asks for a membership change without waiting for its answer (see
    /// [`Move::ChangeMembers`]): a package that needs two changes in
    /// flight, or a change a cut-off leader cannot commit, must not stall
    /// the episode. No gate on the number of voters: the package plans
    /// what it removes and adds back.
    fn ask_member_change(&mut self, n: NodeId, remove: bool) {
        if remove {
            self.active.removing(n);
        }
        let sut = self.sut.clone();
        let task = tokio::spawn(async move {
            if remove {
                sut.remove_member(n).await
            } else {
                sut.add_member(n).await
            }
        });
        self.in_flight.push(MemberChange {
            node: n,
            remove,
            task,
        });
    }

    /// Waits for every membership change in flight; emits each one's
    /// `remove-member` / `add-member` event as it is answered.
    async fn await_member_changes(&mut self) {
        for change in std::mem::take(&mut self.in_flight) {
            let n = change.node;
            let result = change.task.await.unwrap_or_else(|e| {
                Err(crate::cluster::ClusterError::Membership {
                    action: if change.remove { "remove" } else { "add" },
                    id: n,
                    message: format!("the task asking for it failed: {e}"),
                })
            });
            let mut value = json!({"node": n});
            match result {
                Ok(()) if change.remove => {
                    self.actual.removed.insert(n);
                    value["wiped"] = json!(false);
                }
                Ok(()) => {
                    self.actual.removed.remove(&n);
                }
                Err(e) => value["error"] = json!(e.to_string()),
            }
            self.note_members(&mut value).await;
            let action = if change.remove {
                Action::RemoveMember(n)
            } else {
                Action::AddMember(n)
            };
            self.emit(action.f(), value);
        }
    }

    /// Turns a planned step into one on real nodes. With
    /// [`Targets::Primaries`], a kill, pause or removal of
    /// label `l` (or a partition's leader spot `l`, see
    /// [`Partition::leader_spot`]) goes to the current leader instead, by
    /// swapping `l` with the leader's label `m`, provided the swap changes
    /// nothing the schedule's gates looked at: neither label is impaired in
    /// its plan (before this step), and an active partition treats `l` and
    /// `m` alike. All later steps follow the swap (a resume goes to the node
    /// that was paused), so the plan stays consistent; only which node
    /// carries which label depends on the run. Returns the step and whether
    /// it is aimed at the leader.
    async fn bind(&mut self, planned: Action) -> (Action, bool) {
        let mut primary = false;
        if let (true, Some(l)) = (
            self.schedule.config().targets == Targets::Primaries,
            planned.leader_spot(),
        ) {
            // Between elections (the step before may have killed the
            // leader) there is briefly none: wait for the next rather than
            // hit whichever node the plan named.
            let deadline = tokio::time::Instant::now() + LEADER_WAIT;
            if let Ok(leader) = wait_for_leader(&*self.sut, deadline).await {
                let m = self
                    .labels
                    .iter()
                    .find(|&(_, &node)| node == leader.leader)
                    .map(|(&label, _)| label);
                if let Some(m) = m {
                    // The plan already holds this step: undo it to see the
                    // state its gate saw.
                    let mut before = self.schedule.state().clone();
                    match &planned {
                        Action::Kill(n) => before.apply(&Action::Start(*n)),
                        Action::Pause(n) => before.apply(&Action::Resume(*n)),
                        Action::RemoveMember(n) => before.apply(&Action::AddMember(*n)),
                        Action::StartPartition(_) => before.apply(&Action::StopPartition),
                        _ => {}
                    }
                    let impaired = before.impaired();
                    let swappable = m == l
                        || (!impaired.contains(&m)
                            && !impaired.contains(&l)
                            && before
                                .partition
                                .as_ref()
                                .is_none_or(|p| p.symmetric_in(l, m)));
                    if swappable {
                        let (nl, nm) = (self.labels[&l], self.labels[&m]);
                        self.labels.insert(l, nm);
                        self.labels.insert(m, nl);
                        primary = true;
                    }
                }
            }
        }
        let labels = &self.labels;
        (
            planned.map_nodes(|n| labels.get(&n).copied().unwrap_or(n)),
            primary,
        )
    }

    /// Carries out one action, updates the state and emits its event.
    pub async fn execute(&mut self, action: Action) -> NemesisEvent {
        self.execute_noted(action, false).await
    }

    /// [`Nemesis::execute`]; `primary` marks a step aimed at the leader
    /// (`"primary": true` in its value).
    async fn execute_noted(&mut self, action: Action, primary: bool) -> NemesisEvent {
        let f = action.f();
        let value = match &action {
            Action::Kill(n) => self.node_op(*n, self.sut.kill(*n).await, |s| {
                s.killed.insert(*n);
            }),
            Action::Start(n) => {
                let ours = self.actual.killed.contains(n);
                if ours || self.sut.state(*n) == Some(ProcessState::Stopped) {
                    let r = self.sut.start(*n).await;
                    let mut v = self.node_op(*n, r, |s| {
                        s.killed.remove(n);
                    });
                    if !ours {
                        // A crash is a finding: say so next to the restart.
                        v["note"] = json!(
                            "not killed by the nemesis: it exited on its own (see its node.log)"
                        );
                    }
                    v
                } else {
                    json!({"node": n, "error": "not killed"})
                }
            }
            Action::Pause(n) => self.node_op(*n, self.sut.pause(*n).await, |s| {
                s.paused.insert(*n);
            }),
            Action::Resume(n) => {
                if self.actual.paused.contains(n)
                    || self.sut.state(*n) == Some(ProcessState::Paused)
                {
                    let r = self.sut.resume(*n).await;
                    self.node_op(*n, r, |s| {
                        s.paused.remove(n);
                    })
                } else {
                    json!({"node": n, "error": "not paused"})
                }
            }
            Action::StartPartition(p) => self.start_partition(p),
            Action::StopPartition => self.stop_partition(),
            Action::RemoveMember(n) => self.remove_member(*n).await,
            Action::AddMember(n) => self.add_member(*n).await,
        };
        let mut value = value;
        if primary {
            value["primary"] = json!(true);
        }
        self.emit(f, value)
    }

    /// Publishes the faults in effect and reports one step.
    fn emit(&mut self, f: &'static str, value: serde_json::Value) -> NemesisEvent {
        self.publish_active();
        let event = NemesisEvent {
            f,
            value,
            at: std::time::Instant::now(),
        };
        match event.value.get("error") {
            Some(e) => tracing::warn!(f, value = %event.value, error = %e, "nemesis step failed"),
            None => tracing::info!(f, value = %event.value, "nemesis"),
        }
        self.sink.emit(event.clone());
        event
    }

    /// Undoes every fault in effect, whatever the schedule says: heals the
    /// network, resumes paused nodes, starts killed ones, adds removed ones
    /// back; also catches nodes found paused or stopped that the nemesis did
    /// not record. Emits an event per undo. Returns the events.
    pub async fn heal_all(&mut self) -> Vec<NemesisEvent> {
        self.await_member_changes().await;
        let mut events = Vec::new();
        let unhealed_links = self.network.as_ref().is_some_and(|m| {
            m.matrix()
                .iter()
                .any(|l| l.2 != crate::proxy::LinkMode::Pass)
        });
        if self.actual.partition.is_some() || unhealed_links {
            events.push(self.execute(Action::StopPartition).await);
        }
        let ids = self.sut.node_ids();
        for &n in &ids {
            if self.actual.paused.contains(&n) || self.sut.state(n) == Some(ProcessState::Paused) {
                events.push(self.execute(Action::Resume(n)).await);
            }
        }
        // A removed node may be down by design (wiped, or a system that
        // stops removed members): adding it back brings it up.
        for &n in &ids {
            let down = self.sut.state(n) == Some(ProcessState::Stopped);
            if self.actual.killed.contains(&n) || (down && !self.actual.removed.contains(&n)) {
                events.push(self.execute(Action::Start(n)).await);
            }
        }
        let removed: Vec<NodeId> = self.actual.removed.iter().copied().collect();
        for n in removed {
            events.push(self.execute(Action::AddMember(n)).await);
        }
        let clocked: Vec<NodeId> = self.clocked.iter().copied().collect();
        for n in clocked {
            let reset = ClockChange {
                rate: Some(1.0),
                jump_ms: None,
            };
            self.clock(n, reset, false).await;
        }
        self.schedule.reset_state();
        events
    }

    fn node_op(
        &mut self,
        n: NodeId,
        r: Result<(), crate::cluster::ClusterError>,
        update: impl FnOnce(&mut FaultState),
    ) -> serde_json::Value {
        match r {
            Ok(()) => {
                update(&mut self.actual);
                json!({"node": n})
            }
            Err(e) => json!({"node": n, "error": e.to_string()}),
        }
    }

    fn start_partition(&mut self, p: &Partition) -> serde_json::Value {
        let mut value = p.to_value();
        match &self.network {
            Some(net) => match net.apply(&p.links) {
                Ok(()) => self.actual.partition = Some(p.clone()),
                Err(e) => value["error"] = json!(e),
            },
            None => value["error"] = json!(NemesisError::NoNetwork.to_string()),
        }
        value
    }

    fn stop_partition(&mut self) -> serde_json::Value {
        let Some(net) = &self.network else {
            return json!({"error": NemesisError::NoNetwork.to_string()});
        };
        net.heal();
        let links: Vec<serde_json::Value> = net
            .matrix()
            .iter()
            .map(|(f, t, m)| json!([f, t, m.name()]))
            .collect();
        let mut value = match self.actual.partition.take() {
            Some(p) => json!({"shape": p.shape.name(), "groups": p.groups}),
            None => json!({}),
        };
        value["links"] = json!(links);
        value
    }

    /// The voters in the leader's configuration, waiting a little for a
    /// leader (a removed leader steps down, and an election follows).
    async fn leader_members(&self) -> Option<Vec<NodeId>> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let l = wait_for_leader(&*self.sut, deadline).await.ok()?;
        self.sut.status(l.leader).await.ok().map(|s| s.members)
    }

    /// Adds the leader's voters, when known, to a membership event.
    async fn note_members(&self, value: &mut serde_json::Value) {
        if let Some(m) = self.leader_members().await {
            value["members"] = json!(m);
        }
    }

    async fn remove_member(&mut self, n: NodeId) -> serde_json::Value {
        let min = self.schedule.config().min_voters;
        if let Some(members) = self.leader_members().await {
            if members.len() <= min && members.contains(&n) {
                return json!({"node": n, "members": members,
                    "error": format!("would leave fewer than {min} voters")});
            }
        }
        self.active.removing(n);
        if let Err(e) = self.sut.remove_member(n).await {
            return json!({"node": n, "error": e.to_string()});
        }
        self.actual.removed.insert(n);
        let wipe = self.schedule.config().member_wipe;
        // With `member_wipe`, the removed node rejoins later as an empty node;
        // otherwise it keeps its data, outside the configuration.
        let reset = if wipe { self.sut.wipe(n).await } else { Ok(()) };
        let mut value = json!({"node": n, "wiped": wipe});
        self.note_members(&mut value).await;
        if let Err(e) = reset {
            value["error"] = json!(format!("removed, but the wipe failed: {e}"));
        }
        value
    }

    async fn add_member(&mut self, n: NodeId) -> serde_json::Value {
        if !self.actual.removed.contains(&n) {
            return json!({"node": n, "error": "not removed"});
        }
        match self.sut.add_member(n).await {
            Ok(()) => {
                self.actual.removed.remove(&n);
                let mut value = json!({"node": n});
                self.note_members(&mut value).await;
                value
            }
            Err(e) => json!({"node": n, "error": e.to_string()}),
        }
    }

    fn publish_active(&self) {
        // A removal still in flight counts as removed: its system may stop
        // the node before the change is answered (etcd does).
        let mut removed = self.actual.removed.clone();
        removed.extend(self.in_flight.iter().filter(|c| c.remove).map(|c| c.node));
        let mut v = Vec::new();
        if let Some(p) = &self.actual.partition {
            v.push(format!("partition {}", p.shape.name()));
        }
        v.extend(self.actual.killed.iter().map(|n| format!("kill n{n}")));
        v.extend(self.actual.paused.iter().map(|n| format!("pause n{n}")));
        v.extend(self.actual.removed.iter().map(|n| format!("removed n{n}")));
        self.active.set(v, removed);
    }
}

/// Every role an episode's moves name.
fn roles_of<'a>(moves: impl Iterator<Item = &'a Move>) -> BTreeSet<Role> {
    let mut roles = BTreeSet::new();
    for m in moves {
        match m {
            Move::Cut { side, bridge, .. } => {
                roles.extend(side.iter().copied());
                roles.extend(bridge.iter().copied());
            }
            Move::Deafen { deaf, .. } => {
                roles.insert(*deaf);
            }
            Move::SlowElection { side, .. } => roles.extend(side.iter().copied()),
            Move::CrashVoters { old: r, .. } => {
                roles.insert(*r);
            }
            Move::StaleSuffix { old, holder, .. } => {
                roles.insert(*old);
                roles.insert(*holder);
            }
            Move::Figure8(f) => roles.extend(f.nodes().copied()),
            Move::ChangeMembers { roles: rs, .. } => roles.extend(rs.iter().copied()),
            Move::Heal | Move::AwaitMembers => {}
            Move::Kill(r)
            | Move::Start(r)
            | Move::Pause(r)
            | Move::Resume(r)
            | Move::Clock { role: r, .. }
            | Move::ResetClock(r) => {
                roles.insert(*r);
            }
        }
    }
    roles
}
