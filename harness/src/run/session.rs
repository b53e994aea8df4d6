//! The part of a run with a live cluster, through the system's seam only:
//! launch, a first leader, traffic and the nemesis side by side, then
//! recovery and the final reads. The status poller runs from launch to the
//! end; the cluster is shut down on every path out of here.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::exits::{ExitWatch, NodeExit};
use super::plan::Plan;
use super::RunError;
use crate::client::ReadConsistency;
use crate::cluster::{NodeId, ProcessState};
use crate::generator::{perform, run_traffic, ProcessIds, TrafficConfig};
use crate::history::{EventType, Recorder};
use crate::nemesis::{ActiveFaults, Nemesis, NemesisEvent, PackagePlan, ScheduleConfig};
use crate::progress::Progress;
use crate::store::RunDir;
use crate::systems::poller::StatusPoller;
use crate::systems::{wait_for_leader, ClientSpec, Cluster, LaunchSpec, LeaderInfo};

/// How long the cluster gets to elect its first leader.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the healed nodes get to reach one state.
const CONVERGE_TIMEOUT: Duration = Duration::from_secs(10);

/// Launches the cluster, drives it, shuts it down.
/// Returns how the session ended, and every node that exited on its own
/// meanwhile (a finding, even when the session failed).
pub async fn run(
    plan: &Plan,
    dir: &RunDir,
    recorder: &Recorder,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> (Result<(), RunError>, Vec<NodeExit>) {
    let c = &plan.config;
    let cluster = match plan
        .system
        .launch(LaunchSpec {
            run_dir: dir.path.clone(),
            nodes: c.nodes,
            proxies: c.proxies,
            seed: plan.test.seed,
        })
        .await
    {
        Ok(c) => c,
        Err(e) => return (Err(e.into()), Vec::new()),
    };
    let faults = ActiveFaults::default();
    let exits = ExitWatch::start(cluster.clone(), &dir.path, faults.clone());
    let interval = Duration::from_millis(c.status_interval_ms);
    let poller = match StatusPoller::start(cluster.clone(), interval, Some(&dir.observations())) {
        Ok(p) => p,
        Err(e) => {
            let exits = exits.finish().await;
            cluster.shutdown().await;
            let e = RunError::Failed(format!(
                "cannot create {}: {e}",
                dir.observations().display()
            ));
            return (Err(e), exits);
        }
    };
    let session = Session {
        plan,
        dir: &dir.path,
        recorder,
        cluster: cluster.clone(),
        poller: &poller,
        faults,
        stop,
    };
    let result = session.drive(out).await;
    let exits = exits.finish().await;
    let polled = poller.stop();
    cluster.shutdown().await;
    let result = match (result, polled.error) {
        (Ok(()), Some(e)) => Err(RunError::Failed(e)),
        (result, _) => result,
    };
    (result, exits)
}

struct Session<'a> {
    plan: &'a Plan,
    dir: &'a Path,
    recorder: &'a Recorder,
    cluster: Arc<dyn Cluster>,
    poller: &'a StatusPoller,
    /// The nemesis's faults in effect (shared with the exit watch).
    faults: ActiveFaults,
    stop: watch::Receiver<bool>,
}

impl Session<'_> {
    async fn drive(mut self, out: &mut (dyn Write + Send)) -> Result<(), RunError> {
        let Some(first) = self.first_leader().await? else {
            return Ok(());
        };
        tracing::info!(leader = first.leader, term = first.term, "cluster is up");
        let ids = ProcessIds::starting_at(self.plan.config.concurrency as u64);
        let nemesis = NemesisTask::start(&self)?;
        let traffic = self
            .traffic(&ids, nemesis.as_ref().map(|n| n.active.clone()))
            .await;
        if let Some(n) = nemesis {
            n.finish().await?;
        }
        traffic?;
        if *self.stop.borrow() {
            if self.plan.config.verbose {
                let _ = writeln!(
                    out,
                    "interrupted: stopping the nodes and checking what was recorded"
                );
            }
            return Ok(());
        }
        self.recover(&ids).await
    }

    /// The first confirmed leader; `None` when interrupted first. Fails at
    /// once when every node exited (a program that cannot run at all).
    async fn first_leader(&mut self) -> Result<Option<LeaderInfo>, RunError> {
        let dir = self.dir.display();
        tokio::select! {
            l = wait_for_leader(&*self.cluster, Instant::now() + STARTUP_TIMEOUT) => l
                .map(Some)
                .map_err(|e| RunError::Failed(format!(
                    "the cluster did not elect a first leader (see {dir}/nodes/n*/node.log): {e}"
                ))),
            dead = all_nodes_exited(&*self.cluster) => Err(RunError::Failed(format!(
                "every node exited right after it started ({dead}); see {dir}/nodes/n*/node.log"
            ))),
            _ = self.stop.wait_for(|s| *s) => Ok(None),
        }
    }

    /// The workers until the time limit (or Ctrl-C), with the progress line.
    async fn traffic(
        &self,
        ids: &ProcessIds,
        faults: Option<ActiveFaults>,
    ) -> Result<(), RunError> {
        let c = &self.plan.config;
        let client = self.cluster.client(ClientSpec {
            reads: c.read_consistency,
            op_timeout: c.op_timeout(),
        })?;
        let limit = Duration::from_secs_f64(c.time_limit);
        let progress = c.verbose.then(|| {
            let rec = self.recorder.clone();
            Progress::start(
                limit,
                Box::new(self.poller.leader_fn()),
                Box::new(move || faults.as_ref().map(|f| f.get()).unwrap_or_default()),
                Box::new(move || rec.counts()),
            )
        });
        let config = TrafficConfig {
            workload: self.plan.workload.clone(),
            concurrency: c.concurrency,
            rate: c.rate,
            nodes: self.cluster.node_ids(),
            follow_leader: c.follow_leader,
            deadline: Instant::now() + limit,
            readers: c.readers,
        };
        let result = run_traffic(
            config,
            client,
            self.recorder.clone(),
            ids.clone(),
            self.stop.clone(),
        )
        .await;
        if let Some(p) = progress {
            p.finish();
        }
        Ok(result?)
    }

    /// After the heal: a leader within the recovery deadline, then one
    /// linearizable read of every key.
    async fn recover(&mut self, ids: &ProcessIds) -> Result<(), RunError> {
        let c = &self.plan.config;
        let deadline = Instant::now() + Duration::from_secs_f64(c.recovery_timeout);
        let leader = tokio::select! {
            l = wait_for_leader(&*self.cluster, deadline) => l.map_err(|e| RunError::Failed(format!(
                "the cluster did not recover within {}s after the faults were healed: {e}",
                c.recovery_timeout
            )))?,
            _ = self.stop.wait_for(|s| *s) => return Ok(()),
        };
        let mut stop = self.stop.clone();
        let missing = tokio::select! {
            m = self.final_reads(ids, leader.leader, deadline) => m?,
            _ = stop.wait_for(|s| *s) => return Ok(()),
        };
        if !missing.is_empty() {
            return Err(RunError::Failed(format!(
                "final linearizable reads did not succeed before the recovery deadline for keys {}",
                missing.join(", ")
            )));
        }
        tokio::select! {
            r = self.converge(ids, leader.leader) => r,
            _ = stop.wait_for(|s| *s) => Ok(()),
        }
    }

    /// The black-box convergence check: once healed, every node must hold
    /// the same state. Stale reads of every key on every node are polled
    /// (not recorded) until all nodes agree or [`CONVERGE_TIMEOUT`] passes;
    /// then one round of stale reads on every node goes into the history,
    /// followed by one more linearizable read of every key. No write runs
    /// any more, so on a converged cluster every one of them returns what
    /// the final reads returned; a node left with other state (it applied
    /// another entry, lost one, or applied one twice) makes the history
    /// non-linearizable, whatever the traffic happened to observe.
    /// Systems without stale reads skip it.
    async fn converge(&self, ids: &ProcessIds, leader: NodeId) -> Result<(), RunError> {
        let c = &self.plan.config;
        let caps = &c.system.descriptor().capabilities;
        if caps.read_name(ReadConsistency::Stale).is_none() {
            return Ok(());
        }
        let op_timeout = c.op_timeout().min(Duration::from_secs(1));
        let stale = self.cluster.client(ClientSpec {
            reads: ReadConsistency::Stale,
            op_timeout,
        })?;
        let nodes = self.cluster.node_ids();
        let keys = self.plan.workload.keys();
        let deadline = Instant::now() + CONVERGE_TIMEOUT;
        loop {
            let mut states = Vec::new();
            for &n in &nodes {
                let mut values = Vec::new();
                for key in &keys {
                    let op = workloads::Op::Read { key: key.clone() };
                    let r = stale.invoke(&op, n).await;
                    values.push((r.kind == EventType::Ok && r.node == n).then_some(r.value));
                }
                states.push(values);
            }
            let agreed = states.iter().flatten().all(Option::is_some)
                && states.windows(2).all(|w| w[0] == w[1]);
            if agreed {
                break;
            }
            if Instant::now() >= deadline {
                tracing::warn!(
                    "the nodes did not converge to one state within {CONVERGE_TIMEOUT:?} after the heal"
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        for &n in &nodes {
            for key in &keys {
                let op = workloads::Op::Read { key: key.clone() };
                perform(&*stale, self.recorder, ids.fresh(), &op, n).await?;
            }
        }
        let again = Instant::now() + Duration::from_secs(5);
        let missing = self.final_reads(ids, leader, again).await?;
        if missing.is_empty() {
            Ok(())
        } else {
            Err(RunError::Failed(format!(
                "the last linearizable reads did not succeed for keys {}",
                missing.join(", ")
            )))
        }
    }

    /// One linearizable read of every key, starting at the leader, retried
    /// on the next node until it succeeds or the deadline passes; every
    /// attempt is in the history. Returns the keys that could not be read.
    async fn final_reads(
        &self,
        ids: &ProcessIds,
        leader: NodeId,
        deadline: Instant,
    ) -> Result<Vec<String>, RunError> {
        let client = self.cluster.client(ClientSpec {
            reads: ReadConsistency::Linearizable,
            op_timeout: self.plan.config.op_timeout(),
        })?;
        let nodes = self.cluster.node_ids();
        let mut missing = Vec::new();
        for key in self.plan.workload.keys() {
            let mut node = leader;
            let mut attempt = 0usize;
            loop {
                let op = workloads::Op::Read { key: key.clone() };
                let c = perform(&*client, self.recorder, ids.fresh(), &op, node).await?;
                if c.kind == EventType::Ok {
                    break;
                }
                if Instant::now() >= deadline {
                    missing.push(key.clone());
                    break;
                }
                attempt += 1;
                node = nodes[attempt % nodes.len()];
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(missing)
    }
}

/// The nemesis in its own task: its schedule until told to stop, then a
/// heal of everything it did.
struct NemesisTask {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    active: ActiveFaults,
}

impl NemesisTask {
    /// `None` when the run has no faults.
    fn start(s: &Session<'_>) -> Result<Option<Self>, RunError> {
        let c = &s.plan.config;
        if c.nemesis_spec().is_empty() {
            return Ok(None);
        }
        let mut schedule = ScheduleConfig::new(
            s.cluster.node_ids(),
            &c.nemesis,
            Duration::from_secs_f64(c.nemesis_interval),
        );
        schedule.targets = c.nemesis_targets;
        let recorder = s.recorder.clone();
        let sink = Arc::new(move |ev: NemesisEvent| {
            if let Err(e) = recorder.nemesis(ev.f, ev.value) {
                tracing::error!(error = %e, "cannot record a nemesis event");
            }
        });
        let mut nemesis = Nemesis::new(schedule, s.plan.test.seed, s.cluster.clone(), sink)?
            .sharing(s.faults.clone())
            .with_append_batch(c.system.descriptor().capabilities.append_batch);
        if let Some(recorded) = &s.plan.recorded {
            // A replay carries out what was recorded, packages included.
            nemesis = nemesis.replaying(recorded.clone());
        } else if !c.packages.is_empty() {
            nemesis = nemesis.with_packages(PackagePlan::new(
                &c.packages,
                !c.nemesis.is_empty(),
                c.nodes,
                Duration::from_secs_f64(c.nemesis_interval),
                s.plan.test.seed,
            ));
        }
        let active = nemesis.active_faults();
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            nemesis
                .run_until(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
            nemesis.heal_all().await;
        });
        Ok(Some(NemesisTask { stop, task, active }))
    }

    /// Stops the schedule and waits for the heal.
    async fn finish(self) -> Result<(), RunError> {
        let _ = self.stop.send(true);
        self.task
            .await
            .map_err(|e| RunError::Failed(format!("the nemesis task failed: {e}")))
    }
}

/// Resolves once no node process is alive (a node program that cannot
/// run at all), with each node's exit status, so that the run fails at once
/// instead of waiting for a leader that cannot come.
async fn all_nodes_exited(cluster: &dyn Cluster) -> String {
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let ids = cluster.node_ids();
        if ids
            .iter()
            .all(|&id| cluster.state(id) == Some(ProcessState::Stopped))
        {
            return ids
                .iter()
                .map(|&id| match cluster.last_exit(id) {
                    Some(st) => format!("n{id}: {st}"),
                    None => format!("n{id}: not running"),
                })
                .collect::<Vec<_>>()
                .join(", ");
        }
    }
}
