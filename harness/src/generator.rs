//! The traffic: one worker per concurrency slot, each a Jepsen "process".
//!
//! Worker `s` is bound to node `nodes[s % n]` (round-robin) and draws its ops
//! from its own seeded [`workloads::Generator`], so the ops of a slot depend
//! only on the seed. With `follow_leader` it sends each op to the node that
//! answered its previous one instead (back to its own node after anything
//! but an answer). Each op is an `invoke` event, a call through the system's
//! [`Client`], and an `ok` / `fail` / `info` event. After an `info` the
//! process may still be in flight from the system's point of view, so it
//! never invokes again: the worker takes a fresh process number and goes on.
//!
//! The total `rate` is shared evenly between the workers; each waits a
//! seeded random delay (uniform in `[0, 2 × concurrency / rate]`, Jepsen's
//! stagger) between ops, so that the ops are spread rather than in lockstep.
//!
//! Besides them, `readers` workers per node only read, always starting at
//! their own node and without a rate limit, so that every node is watched
//! all the time: a write to a cut-off or paused leader can block a mixed
//! worker for its whole op timeout, which is exactly when a deposed leader
//! or a lagging follower may answer a read it should not. A reader whose
//! read timed out goes on at once; one whose node knows no leader tries
//! again after 5 ms (a mixed worker after 50 ms), so that a new leader is
//! read from within its first milliseconds.

use crate::client::{Client, Completion};
use crate::cluster::NodeId;
use crate::history::{EventType, HistoryError, NewEvent, Process, Recorder};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use workloads::{Generator, Op, OpMix, WorkloadConfig, WorkloadError};

/// Errors of the traffic.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The workload configuration is invalid.
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    /// The history could not be written: the run cannot be trusted.
    #[error(transparent)]
    History(#[from] HistoryError),
    /// No node to talk to.
    #[error("no nodes to send traffic to")]
    NoNodes,
}

/// Hands out process numbers: `0..concurrency` first, then fresh ones for
/// workers whose process ended `info` and for the final reads.
#[derive(Debug, Clone)]
pub struct ProcessIds {
    next: Arc<AtomicU64>,
}

impl ProcessIds {
    /// Numbers from `first` on (`first` = the concurrency).
    pub fn starting_at(first: u64) -> Self {
        ProcessIds {
            next: Arc::new(AtomicU64::new(first)),
        }
    }

    /// A number never used before in this run.
    pub fn fresh(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed)
    }
}

/// What the workers need to know.
#[derive(Debug, Clone)]
pub struct TrafficConfig {
    /// The workload (with the run seed).
    pub workload: WorkloadConfig,
    /// Number of workers.
    pub concurrency: usize,
    /// Total ops per second; `None` = as fast as the workers go.
    pub rate: Option<f64>,
    /// The node ids, in the order workers are bound to them.
    pub nodes: Vec<u64>,
    /// Whether a worker sends its next op to the node that last answered it
    /// (`--follow-leader`) rather than to its own node.
    pub follow_leader: bool,
    /// When the workers stop starting new ops.
    pub deadline: Instant,
    /// Read-only workers per node, on top of `concurrency`.
    pub readers: usize,
}

/// Records `op` as invoked by `process`, runs it, records its completion.
pub async fn perform(
    client: &dyn Client,
    recorder: &Recorder,
    process: u64,
    op: &Op,
    node: NodeId,
) -> Result<Completion, HistoryError> {
    recorder.record(NewEvent {
        process: Process::Client(process),
        kind: EventType::Invoke,
        f: op.kind().name().to_string(),
        key: Some(op.key().to_string()),
        value: op.invoke_value(),
        node: Some(node),
        error: None,
    })?;
    let c = client.invoke(op, node).await;
    recorder.record(NewEvent {
        process: Process::Client(process),
        kind: c.kind,
        f: op.kind().name().to_string(),
        key: Some(op.key().to_string()),
        value: c.value.clone(),
        node: Some(c.node),
        error: c.error.clone(),
    })?;
    Ok(c)
}

/// Runs every worker until the deadline or until `stop` turns true, and
/// returns when all have finished their current op. An op in flight when
/// `stop` fires is abandoned: its invoke stays open, which the checker
/// reads as `info`.
pub async fn run_traffic(
    cfg: TrafficConfig,
    client: Arc<dyn Client>,
    recorder: Recorder,
    ids: ProcessIds,
    stop: watch::Receiver<bool>,
) -> Result<(), TrafficError> {
    if cfg.nodes.is_empty() {
        return Err(TrafficError::NoNodes);
    }
    cfg.workload.validate()?;
    let mut tasks = tokio::task::JoinSet::new();
    let reads = cfg
        .workload
        .kind
        .allowed_ops()
        .contains(&workloads::OpKind::Read);
    let readers = if reads {
        cfg.readers * cfg.nodes.len()
    } else {
        0
    };
    let mut reading = cfg.workload.clone();
    reading.mix = OpMix::new(1, 0, 0, 0);
    for slot in 0..cfg.concurrency + readers {
        let reader = slot >= cfg.concurrency;
        let generator = if reader {
            Generator::new(&reading, slot)?
        } else {
            Generator::new(&cfg.workload, slot)?
        };
        let worker = Worker {
            slot,
            process: if reader { ids.fresh() } else { slot as u64 },
            node: cfg.nodes[slot % cfg.nodes.len()],
            target: cfg.nodes[slot % cfg.nodes.len()],
            follow_leader: cfg.follow_leader && !reader,
            reader,
            generator,
            stagger: ChaCha8Rng::seed_from_u64(
                cfg.workload.seed ^ (0x5747_u64 << 32 | slot as u64),
            ),
            mean_gap: cfg
                .rate
                .filter(|r| *r > 0.0 && !reader)
                .map(|r| Duration::from_secs_f64(cfg.concurrency as f64 / r)),
        };
        let client = client.clone();
        let recorder = recorder.clone();
        let ids = ids.clone();
        let stop = stop.clone();
        let deadline = cfg.deadline;
        tasks.spawn(async move { worker.run(client, recorder, ids, stop, deadline).await });
    }
    let mut first_error = None;
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
            Err(_) => {}
        }
    }
    match first_error {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// How long a worker waits after an op that reached no node able to serve
/// it (node down, no leader known).
const WORKER_BACKOFF: Duration = Duration::from_millis(50);
/// The same for a reader.
const READER_BACKOFF: Duration = Duration::from_millis(5);

struct Worker {
    slot: usize,
    /// A read-only worker of `readers`.
    reader: bool,
    process: u64,
    /// The worker's own node.
    node: u64,
    /// Where its next op goes: its own node, or with `follow_leader` the
    /// node that answered its last ok op.
    target: u64,
    follow_leader: bool,
    generator: Generator,
    stagger: ChaCha8Rng,
    mean_gap: Option<Duration>,
}

impl Worker {
    async fn run(
        mut self,
        client: Arc<dyn Client>,
        recorder: Recorder,
        ids: ProcessIds,
        mut stop: watch::Receiver<bool>,
        deadline: Instant,
    ) -> Result<(), HistoryError> {
        tracing::debug!(slot = self.slot, node = self.node, "worker starts");
        loop {
            if *stop.borrow() || Instant::now() >= deadline {
                return Ok(());
            }
            let op = self.generator.next_op();
            let completion = tokio::select! {
                c = perform(&*client, &recorder, self.process, &op, self.target) => c?,
                _ = stop.wait_for(|s| *s) => return Ok(()),
            };
            self.learn(&op, &completion);
            if self.follow_leader {
                // Anything but an answer (node down, no leader, timeout)
                // sends the worker back to its own node to start over.
                self.target = if completion.kind == EventType::Ok {
                    completion.node
                } else {
                    self.node
                };
            }
            if completion.kind == EventType::Info {
                self.process = ids.fresh();
            }
            let mut pause = match self.mean_gap {
                Some(gap) => gap.mul_f64(self.stagger.gen_range(0.0..2.0)),
                None => Duration::ZERO,
            };
            if completion.backoff {
                // Node down or no leader: do not spin through failures. A
                // reader comes back sooner: a new leader's first
                // milliseconds are when it may answer too early.
                pause = pause.max(if self.reader {
                    READER_BACKOFF
                } else {
                    WORKER_BACKOFF
                });
            }
            if !pause.is_zero() {
                let until = (Instant::now() + pause).min(deadline);
                tokio::select! {
                    _ = tokio::time::sleep_until(until) => {}
                    _ = stop.wait_for(|s| *s) => return Ok(()),
                }
            }
        }
    }

    /// Feeds what the op revealed about its key back to the generator, so
    /// that the next cas names a plausible `from`.
    fn learn(&mut self, op: &Op, c: &Completion) {
        if c.kind != EventType::Ok {
            return;
        }
        match op {
            Op::Read { key } => self.generator.observe(key, c.value.as_str()),
            Op::Write { key, value } => self.generator.observe(key, Some(value)),
            Op::Cas { key, to, .. } => self.generator.observe(key, Some(to)),
            Op::Append { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ReadConsistency;
    use crate::systems::raft_node::client::tests::scripted;
    use crate::systems::raft_node::NodeClient;
    use std::collections::BTreeMap;
    use std::net::SocketAddr;
    use workloads::WorkloadKind;

    /// Node 1 always refuses with a hint to node 2, which answers: how many
    /// requests each got in a short run of one worker bound to node 1.
    fn hits_with(follow_leader: bool) -> (u64, u64) {
        // More canned answers than a 300 ms run can use: it made
        // more than 10,000 ops on the 2-core dev VM, and a server out of
        // answers closes the connection.
        let (a1, seen1) = scripted(vec![
            (
                421,
                r#"{"error":"not-leader","leader":2,"outcome":"failed"}"#
            );
            100_000
        ]);
        let (a2, seen2) = scripted(vec![(200, r#"{"value":null}"#); 100_000]);
        let addrs: BTreeMap<u64, SocketAddr> = [(1, a1), (2, a2)].into();
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client: Arc<dyn Client> = Arc::new(
                NodeClient::new(
                    addrs,
                    Duration::from_millis(500),
                    ReadConsistency::Linearizable,
                )
                .unwrap(),
            );
            let recorder = Recorder::create(&dir.path().join("history.jsonl")).unwrap();
            let (_stop_tx, stop) = watch::channel(false);
            let cfg = TrafficConfig {
                workload: WorkloadConfig::new(WorkloadKind::Register, 7),
                concurrency: 1,
                rate: None,
                nodes: vec![1, 2],
                follow_leader,
                deadline: Instant::now() + Duration::from_millis(300),
                readers: 0,
            };
            run_traffic(cfg, client, recorder, ProcessIds::starting_at(1), stop)
                .await
                .unwrap();
        });
        let hits = |seen: &std::sync::Mutex<Vec<String>>| seen.lock().unwrap().len() as u64;
        (hits(&seen1), hits(&seen2))
    }

    #[test]
    fn a_bound_worker_starts_every_op_at_its_own_node() {
        let (own, leader) = hits_with(false);
        assert!(leader > 5, "too few ops to judge: {leader}");
        assert_eq!(own, leader, "every op is refused once, then redirected");
    }

    #[test]
    fn a_leader_following_worker_stays_with_the_node_that_answered() {
        let (own, leader) = hits_with(true);
        assert!(leader > 5, "too few ops to judge: {leader}");
        assert_eq!(own, 1, "only the first op goes to the worker's own node");
    }
}
