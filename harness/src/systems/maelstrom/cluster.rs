//! Maelstrom nodes as the seam's [`Cluster`]: supervised processes behind
//! one [`Router`].
//!
//! - status: a Maelstrom node cannot be asked for its Raft state, so its
//!   status is what its messages show ([`Router::status`]): the term it
//!   speaks in, `leader` while it sends leader messages, and the leader
//!   whose messages reach it. The status poller records these like any
//!   system's, and a leader is confirmed the usual way (a majority follow it);
//! - the network is the router (partitions as its link matrix), with the
//!   run's message faults on every link from the start;
//! - kill restarts the process (`init` again) only for a persistent node;
//!   there are no membership changes in Maelstrom's protocol;
//! - at shutdown the router's wire observations (leader messages, votes)
//!   are merged by time into `observations.jsonl`, next to the polled
//!   statuses, for the Raft-safety checker.

use std::ffi::OsString;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use formats::observations::{self as obs, Observation, ObservationKind};
use formats::trace::Role;
use futures::future::BoxFuture;

use super::client::MaelstromClient;
use super::host::{Host, HostError};
use super::observe::{self, ObservationKind as Wire};
use super::router::{Router, RouterConfig};
use super::system::{MaelstromSettings, NodeCommand, NODE_DIR_ENV};
use crate::client::Client;
use crate::cluster::{ClusterError, NodeId, ProcessSpec, ProcessState};
use crate::systems::{node_seed, ClientSpec, Cluster, Network, NodeStatus};

/// How long a node gets to stop after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// What a launch needs.
#[derive(Debug, Clone)]
pub struct NodePlan {
    pub command: NodeCommand,
    pub run_dir: PathBuf,
    pub nodes: usize,
    pub seed: u64,
    pub settings: MaelstromSettings,
}

impl NodePlan {
    fn node_dir(&self, id: NodeId) -> PathBuf {
        self.run_dir.join("nodes").join(format!("n{id}"))
    }

    /// Node `id`'s process: the command, and for our own node its data
    /// dir (when persistent) and seed; every node learns its folder from
    /// the environment.
    pub fn spec(&self, id: NodeId) -> ProcessSpec {
        let dir = self.node_dir(id);
        let mut args = self.command.args.clone();
        if self.command.ours {
            if self.settings.persistent {
                args.push("--data-dir".into());
                args.push(dir.join("data").into());
            }
            args.push("--seed".into());
            args.push(node_seed(self.seed, id).to_string().into());
        }
        ProcessSpec {
            program: self.command.program.clone(),
            args,
            log_path: dir.join("node.log"),
            env: vec![(OsString::from(NODE_DIR_ENV), dir.into_os_string())],
        }
    }
}

/// The running nodes and their network.
pub struct MaelstromCluster {
    host: Host,
    ids: Vec<NodeId>,
    persistent: bool,
    observations: PathBuf,
    observe: observe::ObserveConfig,
    next_client: AtomicU64,
}

fn host_error(id: NodeId) -> impl Fn(HostError) -> ClusterError {
    move |e| match e {
        HostError::Cluster(c) => c,
        HostError::Router(r) => ClusterError::Node {
            id,
            message: r.to_string(),
        },
    }
}

impl MaelstromCluster {
    /// Starts every node and sends each its `init`; fails (killing what
    /// started) if a node cannot start or does not answer `init_ok`.
    pub async fn launch(plan: NodePlan) -> Result<Self, ClusterError> {
        let ids: Vec<NodeId> = (1..=plan.nodes as NodeId).collect();
        let mut cfg = RouterConfig::new(ids.clone(), plan.seed);
        cfg.observe = plan.settings.observe.clone();
        if plan.settings.net_log {
            cfg.net_log = Some(plan.run_dir.join("nodes").join("net.jsonl"));
        }
        let router = Router::new(cfg).map_err(|e| ClusterError::Node {
            id: 0,
            message: e.to_string(),
        })?;
        router
            .set_all_faults(plan.settings.faults)
            .map_err(|e| ClusterError::Node {
                id: 0,
                message: e.to_string(),
            })?;
        let host = Host::new(Arc::new(router));
        for &id in &ids {
            host.register(id, plan.spec(id));
        }
        for &id in &ids {
            // Dropping the host on error kills what already started.
            host.start(id).await.map_err(|e| {
                let e = host_error(id)(e);
                ClusterError::Node {
                    id,
                    message: format!("{e} (see {})", plan.node_dir(id).join("node.log").display()),
                }
            })?;
        }
        Ok(MaelstromCluster {
            host,
            ids,
            persistent: plan.settings.persistent,
            observations: plan.run_dir.join(obs::FILE_NAME),
            observe: plan.settings.observe.clone(),
            next_client: AtomicU64::new(1),
        })
    }

    pub fn router(&self) -> &Arc<Router> {
        self.host.router()
    }

    fn wire_status(&self, id: NodeId) -> Result<NodeStatus, ClusterError> {
        let router = self.router();
        let Some(s) = router.status(id) else {
            let c = &self.observe;
            return Err(ClusterError::Node {
                id,
                message: format!(
                    "no {:?}, {:?} or {:?} message with a {:?} field from it on the wire yet \
                     (other names: --system-opt leader-type=…, term-field=…)",
                    c.leader_type, c.vote_request_type, c.vote_type, c.term_field
                ),
            });
        };
        Ok(NodeStatus {
            id,
            term: s.term,
            role: if s.leading {
                Role::Leader
            } else {
                Role::Follower
            },
            leader: s.leader.as_deref().and_then(|l| router.node_id(l)),
            members: self.ids.clone(),
            learners: Vec::new(),
            log: None,
        })
    }

    /// The router's wire observations, in the file's terms, by time.
    fn wire_observations(&self) -> Vec<Observation> {
        let router = self.router();
        let mut out: Vec<Observation> = router
            .observations()
            .into_iter()
            .filter_map(|o| {
                let node = router.node_id(&o.node)?;
                let kind = match o.kind {
                    Wire::LeaderMessage => ObservationKind::LeaderMessage { term: o.term },
                    Wire::Vote { candidate } => ObservationKind::Vote {
                        term: o.term,
                        candidate: router.node_id(&candidate)?,
                    },
                };
                Some(Observation {
                    time: o.time,
                    node,
                    kind,
                })
            })
            .collect();
        out.sort_by_key(|o| o.time);
        out
    }
}

/// Merges `wire` (sorted by time) into the observations file at `path`
/// (sorted by time, or absent), keeping it sorted: streamed into a file
/// beside it and renamed over it, so the polled lines are never lost.
pub fn merge_observations(path: &Path, wire: &[Observation]) -> std::io::Result<()> {
    let exists = path.exists();
    if wire.is_empty() && exists {
        return Ok(());
    }
    let mut polled = match exists {
        true => Some(obs::Reader::open(path).map_err(std::io::Error::other)?),
        false => None,
    }
    .into_iter()
    .flatten()
    .map(|r| r.map(|n| n.event).map_err(std::io::Error::other))
    .peekable();
    let tmp = path.with_extension("jsonl.tmp");
    let merged = (|| {
        let mut w = obs::Writer::new(BufWriter::new(File::create(&tmp)?));
        let mut wire = wire.iter().peekable();
        loop {
            let polled_first = match (polled.peek(), wire.peek()) {
                (Some(Err(_)), _) => return Err(polled.next().expect("peeked").unwrap_err()),
                (Some(Ok(p)), Some(o)) => p.time <= o.time,
                (Some(Ok(_)), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            if polled_first {
                w.write(&polled.next().expect("peeked")?)?;
            } else {
                w.write(wire.next().expect("peeked"))?;
            }
        }
        w.flush()?;
        w.get_ref().get_ref().sync_data()
    })();
    match merged {
        Ok(()) => std::fs::rename(&tmp, path),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

impl Cluster for MaelstromCluster {
    fn node_ids(&self) -> Vec<NodeId> {
        self.ids.clone()
    }

    fn state(&self, id: NodeId) -> Option<ProcessState> {
        self.host.state(id)
    }

    fn last_exit(&self, id: NodeId) -> Option<String> {
        self.host.supervisor().last_exit(id).map(|s| s.to_string())
    }

    fn start(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move { self.host.start(id).await.map_err(host_error(id)) })
    }

    fn stop(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        self.router().detach(id);
        let sup = self.host.supervisor().clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || sup.terminate(id, STOP_GRACE))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        })
    }

    fn kill(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            if !self.persistent {
                return Err(ClusterError::Unsupported {
                    system: "maelstrom",
                    action: "kill a node that keeps no state (--system-opt persistent=true)",
                });
            }
            self.host.kill(id)
        })
    }

    fn pause(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move { self.host.pause(id) })
    }

    fn resume(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move { self.host.resume(id) })
    }

    fn wipe(&self, _id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async {
            Err(ClusterError::Unsupported {
                system: "maelstrom",
                action: "wipe a node (no membership changes in Maelstrom's protocol)",
            })
        })
    }

    fn status(&self, id: NodeId) -> BoxFuture<'_, Result<NodeStatus, ClusterError>> {
        Box::pin(async move { self.wire_status(id) })
    }

    fn remove_member(&self, _id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async {
            Err(ClusterError::Unsupported {
                system: "maelstrom",
                action: "remove a member (no membership changes in Maelstrom's protocol)",
            })
        })
    }

    fn add_member(&self, _id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async {
            Err(ClusterError::Unsupported {
                system: "maelstrom",
                action: "add a member (no membership changes in Maelstrom's protocol)",
            })
        })
    }

    fn network(&self) -> Option<Arc<dyn Network>> {
        Some(self.router().clone() as Arc<dyn Network>)
    }

    fn client(&self, spec: ClientSpec) -> Result<Arc<dyn Client>, ClusterError> {
        let k = self.next_client.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(MaelstromClient::new(
            self.router().clone(),
            k,
            spec.op_timeout,
        )))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        for &id in &self.ids {
            self.router().detach(id);
        }
        let sup = self.host.supervisor().clone();
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || sup.shutdown(STOP_GRACE)).await;
            self.router().flush_log();
            let wire = self.wire_observations();
            if let Err(e) = merge_observations(&self.observations, &wire) {
                tracing::error!(
                    error = %e,
                    path = %self.observations.display(),
                    "cannot add the wire observations to the observations file"
                );
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(time: u64, node: u64) -> Observation {
        Observation {
            time,
            node,
            kind: ObservationKind::Status {
                term: 1,
                role: Role::Follower,
                leader: None,
            },
        }
    }

    fn lead(time: u64, node: u64) -> Observation {
        Observation {
            time,
            node,
            kind: ObservationKind::LeaderMessage { term: 1 },
        }
    }

    #[test]
    fn wire_observations_merge_into_the_polled_file_by_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("observations.jsonl");
        let mut w = obs::Writer::new(File::create(&path).unwrap());
        for o in [status(1, 1), status(5, 2), status(9, 3)] {
            w.write(&o).unwrap();
        }
        drop(w);
        merge_observations(&path, &[lead(0, 1), lead(5, 1), lead(10, 2)]).unwrap();
        let got: Vec<(u64, u64)> = obs::Reader::open(&path)
            .unwrap()
            .map(|r| {
                let o = r.unwrap().event;
                (o.time, o.node)
            })
            .collect();
        assert_eq!(got, vec![(0, 1), (1, 1), (5, 2), (5, 1), (9, 3), (10, 2)]);
        assert!(!path.with_extension("jsonl.tmp").exists());

        let fresh = dir.path().join("none-yet.jsonl");
        merge_observations(&fresh, &[lead(3, 1)]).unwrap();
        assert_eq!(obs::Reader::open(&fresh).unwrap().count(), 1);
    }

    #[test]
    fn a_damaged_file_is_left_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("observations.jsonl");
        let text = "{\"time\":1,\"node\":1,\"event\":\"gossip\"}\n{\"time\":2,\"node\":1,\"term\":1,\"role\":\"leader\"}\n";
        std::fs::write(&path, text).unwrap();
        let e = merge_observations(&path, &[lead(0, 1)]).unwrap_err();
        assert!(e.to_string().contains("gossip"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert!(!path.with_extension("jsonl.tmp").exists());
    }
}
