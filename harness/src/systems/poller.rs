//! The status poller: asks every node for its status at a fixed short
//! interval, for as long as the cluster runs, and writes every answer to
//! `observations.jsonl` (docs/formats.md, "Observations"). That is how the
//! Raft-safety checker sees elections in systems that write no trace (two
//! nodes reporting `leader` in the same term is a violation); for our own
//! node it complements the traces. The progress line's leader comes from
//! the same answers.
//!
//! Each node has its own polling task, so a paused node, whose answer only
//! comes at the status call's timeout, delays nobody else's observations.
//! A node that is not running is not asked.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use formats::observations::{Observation, ObservationKind, Writer};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::status::{confirmed_leader, LeaderInfo, NodeStatus};
use super::Cluster;
use crate::cluster::{NodeId, ProcessState};

/// The default interval between two polls of one node.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(100);

type Latest = BTreeMap<NodeId, Result<NodeStatus, String>>;

struct Shared {
    latest: Mutex<Latest>,
    leader: Mutex<Option<LeaderInfo>>,
    out: Option<Mutex<Sink>>,
}

struct Sink {
    writer: Writer<File>,
    written: u64,
    /// The first write error; polling goes on, the run reports it.
    error: Option<String>,
}

/// A running poller; [`StatusPoller::stop`] ends it.
pub struct StatusPoller {
    tasks: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

/// What a poller did, once stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollSummary {
    /// Lines written to the observations file.
    pub observations: u64,
    /// Why the file could not be written, if it could not.
    pub error: Option<String>,
}

impl StatusPoller {
    /// Starts polling every node of `cluster` each `interval`, writing
    /// observations to `file` (created, or truncated) if given.
    pub fn start(
        cluster: Arc<dyn Cluster>,
        interval: Duration,
        file: Option<&Path>,
    ) -> std::io::Result<Self> {
        let out = match file {
            Some(p) => Some(Mutex::new(Sink {
                writer: Writer::new(File::create(p)?),
                written: 0,
                error: None,
            })),
            None => None,
        };
        let shared = Arc::new(Shared {
            latest: Mutex::new(BTreeMap::new()),
            leader: Mutex::new(None),
            out,
        });
        let tasks = cluster
            .node_ids()
            .into_iter()
            .map(|id| tokio::spawn(poll(cluster.clone(), id, interval, shared.clone())))
            .collect();
        Ok(StatusPoller { tasks, shared })
    }

    /// The leader confirmed by the latest answers (see
    /// [`confirmed_leader`]), with its term.
    pub fn leader(&self) -> Option<LeaderInfo> {
        *lock(&self.shared.leader)
    }

    /// A handle for the progress line.
    pub fn leader_fn(&self) -> impl Fn() -> Option<(NodeId, u64)> + Send + Sync + 'static {
        let shared = self.shared.clone();
        move || lock(&shared.leader).map(|l| (l.leader, l.term))
    }

    /// Stops polling and hands the observations to stable storage.
    pub fn stop(self) -> PollSummary {
        for t in &self.tasks {
            t.abort();
        }
        let Some(out) = &self.shared.out else {
            return PollSummary {
                observations: 0,
                error: None,
            };
        };
        let mut sink = lock(out);
        if let Err(e) = sink.writer.get_ref().sync_data() {
            sink.error
                .get_or_insert_with(|| format!("cannot sync observations: {e}"));
        }
        PollSummary {
            observations: sink.written,
            error: sink.error.clone(),
        }
    }
}

impl Drop for StatusPoller {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn poll(cluster: Arc<dyn Cluster>, id: NodeId, interval: Duration, shared: Arc<Shared>) {
    loop {
        let next = Instant::now() + interval;
        let answer = match cluster.state(id) {
            Some(ProcessState::Running) => cluster.status(id).await.map_err(|e| e.to_string()),
            other => Err(format!("{:?}", other.unwrap_or(ProcessState::Stopped)).to_lowercase()),
        };
        if let (Ok(s), Some(out)) = (&answer, &shared.out) {
            record(out, id, s);
        }
        let leader = {
            let mut latest = lock(&shared.latest);
            latest.insert(id, answer);
            confirmed_leader(&latest)
        };
        *lock(&shared.leader) = leader;
        tokio::time::sleep_until(next).await;
    }
}

/// Writes one observation, timed under the file's lock so that times never
/// go back down the file.
fn record(out: &Mutex<Sink>, id: NodeId, s: &NodeStatus) {
    let mut sink = lock(out);
    let time = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let obs = Observation {
        time,
        node: id,
        kind: ObservationKind::Status {
            term: s.term,
            role: s.role,
            leader: s.leader,
        },
    };
    match sink.writer.write(&obs) {
        Ok(()) => sink.written += 1,
        Err(e) => {
            sink.error
                .get_or_insert_with(|| format!("cannot write observations: {e}"));
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
