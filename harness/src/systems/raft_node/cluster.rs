//! Our Raft node's cluster: N processes of the node program, started with
//! the flags of docs/node.md, every peer link through the proxy mesh.
//!
//! Layout under the run folder (docs/formats.md, "Results folder"): `nodes/nN/node.log` (stdout and
//! stderr, appended across restarts), `nodes/nN/data/` (`--data-dir`) and
//! `nodes/nN/trace.jsonl` (`--trace`). Node ids are `1..=nodes`.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use formats::trace::Role;
use futures::future::BoxFuture;
use serde::Deserialize;
use tokio::time::Instant;

use super::client::NodeClient;
use crate::client::Client;
use crate::cluster::{
    reserve_addrs, ClusterError, NodeAddrs, NodeId, ProcessSpec, ProcessState, Supervisor,
};
use crate::proxy::ProxyMesh;
use crate::systems::{
    node_seed, probe_leader, ClientSpec, Cluster, LogPosition, Network, NodeStatus,
};

/// How to launch the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The node binary (or the harness binary itself, with `program_args = ["node"]`).
    pub program: PathBuf,
    /// Arguments placed before the node flags.
    pub program_args: Vec<OsString>,
    /// Number of nodes; ids are `1..=nodes`, all voters initially.
    pub nodes: usize,
    /// The run folder; node files go to `nodes/nN/` under it.
    pub run_dir: PathBuf,
    /// Flags appended for every node (timing, `--no-pre-vote`, …).
    pub extra_args: Vec<OsString>,
    /// Route peer traffic through the proxy mesh (needed for partitions;
    /// off only to measure what the proxies cost).
    pub proxies: bool,
    /// Seeds the proxies' delay jitter and, with `node_seeds`, the nodes.
    pub seed: u64,
    /// Give node `i` `--seed` [`node_seed`]`(seed, i)`.
    pub node_seeds: bool,
    /// SIGTERM → SIGKILL grace period of a graceful stop.
    pub stop_grace: Duration,
    /// Timeout of one HTTP call to a node (status, membership).
    pub http_timeout: Duration,
    /// How long a membership change may take, retries included.
    pub membership_timeout: Duration,
}

impl ClusterConfig {
    /// Defaults for `nodes` nodes of `program` writing under `run_dir`.
    pub fn new(program: impl Into<PathBuf>, run_dir: impl Into<PathBuf>, nodes: usize) -> Self {
        ClusterConfig {
            program: program.into(),
            program_args: Vec::new(),
            nodes,
            run_dir: run_dir.into(),
            extra_args: Vec::new(),
            proxies: true,
            seed: 0,
            node_seeds: false,
            stop_grace: Duration::from_secs(3),
            http_timeout: Duration::from_secs(1),
            membership_timeout: Duration::from_secs(10),
        }
    }
}

/// A cluster of our node processes. Dropping it kills every node (the
/// supervisor) and closes the proxies.
///
/// Nodes removed and wiped by the membership fault restart without
/// `--members`, as empty nodes that wait to be added.
pub struct NodeCluster {
    config: ClusterConfig,
    supervisor: Arc<Supervisor>,
    mesh: Option<Arc<ProxyMesh>>,
    addrs: BTreeMap<NodeId, NodeAddrs>,
    /// Nodes that were reset to an empty data dir and must be started
    /// without `--members` (they wait to be added).
    joiners: Mutex<BTreeSet<NodeId>>,
    http: reqwest::Client,
}

impl NodeCluster {
    /// Reserves ports, binds the proxy mesh and starts every node. Does not
    /// wait for a leader: see [`super::wait_for_leader`].
    pub async fn launch(config: ClusterConfig) -> Result<Self, ClusterError> {
        let cluster = Self::prepare(config).await?;
        for id in cluster.node_ids() {
            cluster.supervisor.start(id)?;
        }
        Ok(cluster)
    }

    /// Like [`NodeCluster::launch`] but starts nothing.
    pub async fn prepare(config: ClusterConfig) -> Result<Self, ClusterError> {
        let addrs = reserve_addrs(config.nodes)?;
        let mesh = if config.proxies {
            let targets = addrs.iter().map(|(&id, a)| (id, a.peer)).collect();
            Some(Arc::new(ProxyMesh::bind(&targets, config.seed).await?))
        } else {
            None
        };
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .pool_max_idle_per_host(2)
            .build()
            .map_err(|e| ClusterError::Http {
                id: 0,
                message: e.to_string(),
            })?;
        let cluster = NodeCluster {
            config,
            supervisor: Arc::new(Supervisor::new()),
            mesh,
            addrs,
            joiners: Mutex::new(BTreeSet::new()),
            http,
        };
        for id in cluster.node_ids() {
            std::fs::create_dir_all(cluster.data_dir(id)).map_err(|e| ClusterError::Io {
                path: cluster.data_dir(id).display().to_string(),
                source: e,
            })?;
            cluster.supervisor.register(id, cluster.spec(id, false));
        }
        Ok(cluster)
    }

    /// Where clients talk to node `id`.
    pub fn client_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.addrs.get(&id).map(|a| a.client)
    }

    /// Where node `id` listens for its peers (the proxies dial this).
    pub fn peer_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.addrs.get(&id).map(|a| a.peer)
    }

    /// The proxy mesh, when peers talk through proxies.
    pub fn mesh(&self) -> Option<Arc<ProxyMesh>> {
        self.mesh.clone()
    }

    /// The process supervisor (pids, start counts, exit statuses).
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
    }

    /// Whether node `id` was reset to an empty node that joins by being added.
    pub fn is_joiner(&self, id: NodeId) -> bool {
        self.joiners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&id)
    }

    /// The launch configuration.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// `run_dir/nodes/nN`.
    pub fn node_dir(&self, id: NodeId) -> PathBuf {
        self.config.run_dir.join("nodes").join(format!("n{id}"))
    }

    /// `run_dir/nodes/nN/data`.
    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.node_dir(id).join("data")
    }

    /// Where node `id` dials peer `to` (a proxy, or the peer itself without proxies).
    pub fn dial_addr(&self, id: NodeId, to: NodeId) -> Option<SocketAddr> {
        match &self.mesh {
            Some(m) => m.listen_addr(id, to),
            None => self.addrs.get(&to).map(|a| a.peer),
        }
    }

    /// The full command line of node `id` (without the program).
    pub fn node_args(&self, id: NodeId, joiner: bool) -> Vec<OsString> {
        let a = self.addrs[&id];
        let dir = self.node_dir(id);
        let mut args: Vec<OsString> = self.config.program_args.clone();
        let mut push = |k: &str, v: String| {
            args.push(k.into());
            args.push(v.into());
        };
        push("--id", id.to_string());
        push("--data-dir", self.data_dir(id).display().to_string());
        push("--client-listen", a.client.to_string());
        push("--peer-listen", a.peer.to_string());
        for &to in self.addrs.keys().filter(|&&to| to != id) {
            let dial = self.dial_addr(id, to).expect("every peer has an address");
            push("--peer", format!("{to}={dial}"));
        }
        if !joiner {
            let members: Vec<String> = self.addrs.keys().map(|m| m.to_string()).collect();
            push("--members", members.join(","));
        }
        push("--trace", dir.join("trace.jsonl").display().to_string());
        if self.config.node_seeds {
            push("--seed", node_seed(self.config.seed, id).to_string());
        }
        args.extend(self.config.extra_args.iter().cloned());
        args
    }

    fn spec(&self, id: NodeId, joiner: bool) -> ProcessSpec {
        ProcessSpec {
            program: self.config.program.clone(),
            args: self.node_args(id, joiner),
            log_path: self.node_dir(id).join("node.log"),
            env: Vec::new(),
        }
    }

    fn url(&self, id: NodeId, path: &str) -> Result<String, ClusterError> {
        let a = self.addrs.get(&id).ok_or(ClusterError::UnknownNode(id))?;
        Ok(format!("http://{}{}", a.client, path))
    }

    /// Node `id`'s whole `GET /status` (commit and apply progress included).
    pub async fn status_body(&self, id: NodeId) -> Result<StatusBody, ClusterError> {
        let url = self.url(id, "/status")?;
        let http = |e: reqwest::Error| ClusterError::Http {
            id,
            message: e.to_string(),
        };
        let resp = self.http.get(url).send().await.map_err(http)?;
        let resp = resp.error_for_status().map_err(http)?;
        resp.json::<StatusBody>().await.map_err(http)
    }

    async fn get_status(&self, id: NodeId) -> Result<NodeStatus, ClusterError> {
        let s = self.status_body(id).await?;
        if s.id != id {
            return Err(ClusterError::Http {
                id,
                message: format!("answered as node {}", s.id),
            });
        }
        Ok(NodeStatus {
            id: s.id,
            term: s.term,
            role: s.role,
            leader: s.leader,
            members: s.members,
            learners: s.learners,
            log: s.last_index.map(|last_index| LogPosition {
                last_index,
                commit_index: s.commit_index,
            }),
        })
    }

    /// Sends one membership change to whichever node looks like the leader
    /// and waits for its effect: for a removal, the committed change; for an
    /// addition, the node being a voter (it is a learner until the leader
    /// promotes it). Retries (leader changes, 409 while another change is
    /// pending) until the membership timeout. Idempotent: a retry after a
    /// lost reply sees the change already made and stops.
    async fn change_membership(&self, id: NodeId, add: bool) -> Result<(), ClusterError> {
        let action = if add { "add" } else { "remove" };
        if !self.addrs.contains_key(&id) {
            return Err(ClusterError::UnknownNode(id));
        }
        let deadline = Instant::now() + self.config.membership_timeout;
        let mut sent = false;
        let fail = |message: String| ClusterError::Membership {
            action,
            id,
            message,
        };
        loop {
            let probe = probe_leader(self).await;
            let last = match probe.leader_status().cloned() {
                None => format!("no confirmed leader ({})", probe.describe()),
                Some(leader) => {
                    let voter = leader.members.contains(&id);
                    let learner = leader.learners.contains(&id);
                    match (add, voter, learner) {
                        (true, true, _) => return Ok(()),
                        (true, false, true) => format!("n{id} is still a learner"),
                        (false, false, false) if sent => return Ok(()),
                        (false, false, false) => return Err(fail("not a member".into())),
                        _ => {
                            let url = self.url(leader.id, &format!("/members/{id}"))?;
                            let req = if add {
                                self.http.post(url)
                            } else {
                                self.http.delete(url)
                            };
                            sent = true;
                            match req.send().await {
                                Ok(r) if r.status().is_success() && !add => return Ok(()),
                                Ok(r) if r.status().is_success() => {
                                    format!("n{id} added, not yet promoted")
                                }
                                // 409: another change pending; 421: leadership moved.
                                Ok(r) => {
                                    let code = r.status();
                                    let body = r.text().await.unwrap_or_default();
                                    format!("leader n{} answered {code}: {body}", leader.id)
                                }
                                Err(e) => format!("leader n{}: {e}", leader.id),
                            }
                        }
                    }
                }
            };
            if Instant::now() >= deadline {
                return Err(fail(last));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The body of `GET /status` (docs/node.md, "HTTP API").
#[derive(Debug, Clone, Deserialize)]
pub struct StatusBody {
    pub id: NodeId,
    pub term: u64,
    pub role: Role,
    pub leader: Option<NodeId>,
    pub commit_index: u64,
    pub last_applied: u64,
    /// Absent from nodes older than the field (a `--node-bin` of one).
    #[serde(default)]
    pub last_index: Option<u64>,
    pub members: Vec<NodeId>,
    #[serde(default)]
    pub learners: Vec<NodeId>,
}

impl Cluster for NodeCluster {
    fn node_ids(&self) -> Vec<NodeId> {
        self.addrs.keys().copied().collect()
    }

    fn state(&self, id: NodeId) -> Option<ProcessState> {
        self.supervisor.state(id)
    }

    fn last_exit(&self, id: NodeId) -> Option<String> {
        self.supervisor.last_exit(id).map(|s| s.to_string())
    }

    fn start(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move { self.supervisor.start(id).map(|_| ()) })
    }

    fn stop(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        let sup = self.supervisor.clone();
        let grace = self.config.stop_grace;
        Box::pin(async move {
            tokio::task::spawn_blocking(move || sup.terminate(id, grace))
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        })
    }

    fn kill(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move { self.supervisor.kill(id) })
    }

    fn pause(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move { self.supervisor.pause(id) })
    }

    fn resume(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move { self.supervisor.resume(id) })
    }

    fn wipe(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            self.supervisor.kill(id)?;
            let data = self.data_dir(id);
            match std::fs::remove_dir_all(&data) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ClusterError::Io {
                        path: data.display().to_string(),
                        source: e,
                    })
                }
            }
            std::fs::create_dir_all(&data).map_err(|e| ClusterError::Io {
                path: data.display().to_string(),
                source: e,
            })?;
            self.joiners
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id);
            self.supervisor.register(id, self.spec(id, true));
            Ok(())
        })
    }

    fn status(&self, id: NodeId) -> BoxFuture<'_, Result<NodeStatus, ClusterError>> {
        Box::pin(self.get_status(id))
    }

    /// A node that is down (wiped, or it exited) is started first: a wiped
    /// one as an empty node that waits to be added.
    fn add_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            if self.supervisor.state(id) == Some(ProcessState::Stopped) {
                self.supervisor.start(id)?;
            }
            self.change_membership(id, true).await
        })
    }

    fn remove_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(self.change_membership(id, false))
    }

    fn network(&self) -> Option<Arc<dyn Network>> {
        self.mesh.clone().map(|m| m as Arc<dyn Network>)
    }

    fn set_clock(
        &self,
        id: NodeId,
        change: super::super::ClockChange,
    ) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            let url = self.url(id, "/debug/clock")?;
            let http = |message: String| ClusterError::Http { id, message };
            let resp = self
                .http
                .post(url)
                .json(&change)
                .send()
                .await
                .map_err(|e| http(e.to_string()))?;
            if resp.status().is_success() {
                Ok(())
            } else {
                let code = resp.status();
                let body = resp.text().await.unwrap_or_default();
                Err(http(format!("POST /debug/clock: {code} {body}")))
            }
        })
    }

    fn client(&self, spec: ClientSpec) -> Result<Arc<dyn Client>, ClusterError> {
        let addrs = self.addrs.iter().map(|(&id, a)| (id, a.client)).collect();
        let c = NodeClient::new(addrs, spec.op_timeout, spec.reads).map_err(|e| {
            ClusterError::Node {
                id: 0,
                message: e.to_string(),
            }
        })?;
        Ok(Arc::new(c))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        let sup = self.supervisor.clone();
        let grace = self.config.stop_grace;
        Box::pin(async move {
            let _ = tokio::task::spawn_blocking(move || sup.shutdown(grace)).await;
        })
    }
}
