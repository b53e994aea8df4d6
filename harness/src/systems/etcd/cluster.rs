//! N etcd members on loopback: processes under one supervisor, peer traffic
//! through an identified proxy mesh, and the operations a test or a nemesis
//! needs (kill -9, restart on the same data dir, graceful stop, status,
//! membership changes).
//!
//! Layout under the run folder, as for our own node: `nodes/nN/node.log`
//! (stdout and stderr, appended across restarts) and `nodes/nN/data/`
//! (`--data-dir`). Member `n<i>` is harness node `i`, ids `1..=nodes`.
//!
//! Dropping the cluster SIGKILLs every member's process group (the
//! supervisor) and closes the proxies.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{http_client, EtcdClient};
use super::member::{url, wait_ports_free, InitialState, MemberConfig, Timing};
use super::status::RaftStatus;
use super::wire::Member;
use super::{EtcdBinary, EtcdError};
use crate::cluster::{reserve_addrs, NodeAddrs, NodeId, ProcessState, Supervisor};
use crate::proxy::{MemberPids, ProxyMesh};

/// How to launch the cluster.
#[derive(Debug, Clone)]
pub struct EtcdClusterConfig {
    pub binary: EtcdBinary,
    /// Number of members; ids are `1..=nodes`, all in the initial cluster.
    pub nodes: usize,
    /// The run folder; member files go to `nodes/nN/` under it.
    pub run_dir: PathBuf,
    pub timing: Timing,
    /// Route peer traffic through the identified proxy mesh (needed for
    /// partitions; off only to measure what the proxies cost).
    pub proxies: bool,
    /// Seeds the proxies' delay jitter.
    pub seed: u64,
    /// `--initial-cluster-token`; unique per cluster by default.
    pub token: String,
    /// Timeout of one status or membership call.
    pub http_timeout: Duration,
    /// How long a membership change may take, retries included.
    pub membership_timeout: Duration,
    /// SIGTERM → SIGKILL grace period of a graceful stop.
    pub stop_grace: Duration,
}

impl EtcdClusterConfig {
    /// Defaults: etcd's timing, proxies on, a fresh token.
    pub fn new(binary: EtcdBinary, run_dir: impl Into<PathBuf>, nodes: usize) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        EtcdClusterConfig {
            binary,
            nodes,
            run_dir: run_dir.into(),
            timing: Timing::default(),
            proxies: true,
            seed: 0,
            token: format!("raft-chaos-{}-{nanos:x}", std::process::id()),
            http_timeout: Duration::from_secs(1),
            membership_timeout: Duration::from_secs(15),
            stop_grace: Duration::from_secs(5),
        }
    }
}

/// A cluster of etcd members. See the module docs.
pub struct EtcdCluster {
    config: EtcdClusterConfig,
    supervisor: Arc<Supervisor>,
    mesh: Option<Arc<ProxyMesh>>,
    addrs: BTreeMap<NodeId, NodeAddrs>,
    /// The command line each member runs (changed by membership changes).
    members: Mutex<BTreeMap<NodeId, MemberConfig>>,
    /// etcd member id → harness node, for every member seen so far.
    known_ids: Mutex<BTreeMap<u64, NodeId>>,
    /// Every peer URL a member has advertised → its harness node (a member
    /// added back advertises a new one).
    peer_urls: Mutex<BTreeMap<String, NodeId>>,
    http: reqwest::Client,
}

impl EtcdCluster {
    /// Reserves ports, binds the proxies and starts every member. Does not
    /// wait for a leader.
    pub async fn launch(config: EtcdClusterConfig) -> Result<Self, EtcdError> {
        let cluster = Self::prepare(config).await?;
        for id in cluster.node_ids() {
            cluster.start(id)?;
        }
        Ok(cluster)
    }

    /// Like [`EtcdCluster::launch`] but starts nothing.
    pub async fn prepare(config: EtcdClusterConfig) -> Result<Self, EtcdError> {
        let addrs = reserve_addrs(config.nodes)?;
        let supervisor = Arc::new(Supervisor::new());
        let mesh = if config.proxies {
            let targets = addrs.iter().map(|(&id, a)| (id, a.peer)).collect();
            let pids: Arc<dyn MemberPids> = supervisor.clone();
            Some(Arc::new(
                ProxyMesh::bind_identified(&targets, pids, config.seed).await?,
            ))
        } else {
            None
        };
        let http = http_client(config.http_timeout)?;
        let cluster = EtcdCluster {
            config,
            supervisor,
            mesh,
            addrs,
            members: Mutex::new(BTreeMap::new()),
            known_ids: Mutex::new(BTreeMap::new()),
            peer_urls: Mutex::new(BTreeMap::new()),
            http,
        };
        for id in cluster.node_ids() {
            cluster.note_peer_url(id);
        }
        let initial: Vec<(String, SocketAddr)> = cluster
            .node_ids()
            .into_iter()
            .map(|id| (name(id), cluster.advertised_peer(id)))
            .collect();
        for id in cluster.node_ids() {
            let m = cluster.member_config(id, initial.clone(), InitialState::New);
            cluster.set_member(id, m)?;
        }
        Ok(cluster)
    }

    pub fn config(&self) -> &EtcdClusterConfig {
        &self.config
    }

    /// Every member the harness manages, including removed ones.
    pub fn node_ids(&self) -> Vec<NodeId> {
        self.addrs.keys().copied().collect()
    }

    /// The identified proxy mesh, when peers talk through proxies.
    pub fn mesh(&self) -> Option<Arc<ProxyMesh>> {
        self.mesh.clone()
    }

    /// The process supervisor (pids, start counts, exit statuses).
    pub fn supervisor(&self) -> &Arc<Supervisor> {
        &self.supervisor
    }

    /// `run_dir/nodes/nN`.
    pub fn node_dir(&self, id: NodeId) -> PathBuf {
        self.config.run_dir.join("nodes").join(name(id))
    }

    /// `run_dir/nodes/nN/data`.
    pub fn data_dir(&self, id: NodeId) -> PathBuf {
        self.node_dir(id).join("data")
    }

    pub fn client_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.addrs.get(&id).map(|a| a.client)
    }

    /// Where member `id` listens for peers (the proxy dials this).
    pub fn peer_addr(&self, id: NodeId) -> Option<SocketAddr> {
        self.addrs.get(&id).map(|a| a.peer)
    }

    /// The peer address member `id` advertises: the newest proxy listener
    /// in front of it, or its own listener without proxies.
    pub fn advertised_peer(&self, id: NodeId) -> SocketAddr {
        self.mesh
            .as_ref()
            .and_then(|m| m.destination_addr(id))
            .unwrap_or(self.addrs[&id].peer)
    }

    /// The harness node that advertises, or once advertised, `peer_url`.
    pub fn node_of_peer_url(&self, peer_url: &str) -> Option<NodeId> {
        self.peer_urls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(peer_url)
            .copied()
    }

    fn note_peer_url(&self, id: NodeId) {
        self.peer_urls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url(self.advertised_peer(id)), id);
    }

    /// A gateway client of member `id` with the cluster's HTTP timeout.
    pub fn client(&self, id: NodeId) -> EtcdClient {
        EtcdClient::new(
            self.http.clone(),
            self.addrs[&id].client,
            self.config.http_timeout,
        )
    }

    /// The command line member `id` runs at its next start.
    pub fn member(&self, id: NodeId) -> Option<MemberConfig> {
        self.lock().get(&id).cloned()
    }

    pub fn state(&self, id: NodeId) -> Option<ProcessState> {
        self.supervisor.state(id)
    }

    /// Starts member `id` on its data dir; returns its pid.
    pub fn start(&self, id: NodeId) -> Result<u32, EtcdError> {
        Ok(self.supervisor.start(id)?)
    }

    /// `kill -9` of the member's process group; returns once it is reaped.
    pub fn kill(&self, id: NodeId) -> Result<(), EtcdError> {
        Ok(self.supervisor.kill(id)?)
    }

    /// Starts member `id` once its ports can be bound again (a member just
    /// killed may still hold them for a moment); waits on a blocking thread,
    /// at most 5 s.
    pub async fn start_when_free(&self, id: NodeId) -> Result<u32, EtcdError> {
        let a = *self.addrs.get(&id).ok_or(EtcdError::Cluster(
            crate::cluster::ClusterError::UnknownNode(id),
        ))?;
        let deadline = Instant::now() + Duration::from_secs(5);
        tokio::task::spawn_blocking(move || wait_ports_free(&[a.client, a.peer], deadline))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        self.start(id)
    }

    /// Kill -9, wait until its ports can be bound again, start on the same
    /// data dir. Blocks for as long as the ports stay busy (at most 5 s).
    pub fn restart(&self, id: NodeId) -> Result<u32, EtcdError> {
        self.kill(id)?;
        self.wait_ports(id)?;
        self.start(id)
    }

    /// SIGSTOP of the member's process group.
    pub fn pause(&self, id: NodeId) -> Result<(), EtcdError> {
        Ok(self.supervisor.pause(id)?)
    }

    /// SIGCONT of the member's process group.
    pub fn resume(&self, id: NodeId) -> Result<(), EtcdError> {
        Ok(self.supervisor.resume(id)?)
    }

    /// SIGTERM, then SIGKILL after the grace period.
    pub async fn stop(&self, id: NodeId) -> Result<(), EtcdError> {
        let sup = self.supervisor.clone();
        let grace = self.config.stop_grace;
        tokio::task::spawn_blocking(move || sup.terminate(id, grace))
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
        Ok(())
    }

    /// Stops every member at the end of a run: `kill -9`. A graceful stop
    /// of all members at once is slow for nothing: a leader that gets
    /// SIGTERM first tries to hand its leadership to a member, which is
    /// stopping too, and waits for etcd's request timeout (7 s with the
    /// default timing) before it gives up.
    pub async fn shutdown(&self) {
        for id in self.node_ids() {
            let _ = self.supervisor.kill(id);
        }
    }

    /// Member `id`'s Raft state from `/debug/vars`.
    pub async fn status(&self, id: NodeId) -> Result<RaftStatus, EtcdError> {
        self.client(id)
            .raft_status()
            .await
            .map_err(|source| EtcdError::Call {
                id,
                what: "status",
                source,
            })
    }

    /// The member list as the leader reports it, else as the first running
    /// member that answers does. Each member answers from what it has
    /// applied, so a member that was paused or cut off may still list a
    /// member removed since; the leader has applied every change it
    /// acknowledged.
    pub async fn member_list(&self) -> Result<Vec<Member>, EtcdError> {
        let mut last = None;
        let mut order = self.running();
        if let Some(l) = self.local_leader().await {
            order.retain(|&id| id != l);
            order.insert(0, l);
        }
        for id in order {
            match self.client(id).member_list().await {
                Ok(m) => return Ok(m),
                Err(source) => {
                    last = Some(EtcdError::Call {
                        id,
                        what: "member list",
                        source,
                    })
                }
            }
        }
        Err(last.unwrap_or(EtcdError::Membership {
            id: 0,
            message: "no member is running".into(),
        }))
    }

    /// A running member that reports itself leader (of the highest term,
    /// if several do), by `/debug/vars`.
    async fn local_leader(&self) -> Option<NodeId> {
        let mut best: Option<(u64, NodeId)> = None;
        for id in self.running() {
            if let Ok(s) = self.client(id).raft_status().await {
                if s.state == super::RaftState::Leader && best.is_none_or(|(t, _)| t < s.term) {
                    best = Some((s.term, id));
                }
            }
        }
        best.map(|(_, id)| id)
    }

    /// Waits until every running member (paused ones cannot answer anyone)
    /// lists `peer_url` in its own member list, for at most `within`. A new
    /// member learns its id from the first member that answers it, and a
    /// member that has not applied the addition yet would make it refuse to
    /// start. Returns the members that still do not list it.
    async fn wait_applied_everywhere(&self, peer_url: &str, within: Duration) -> Vec<NodeId> {
        let deadline = Instant::now() + within;
        loop {
            let mut behind = Vec::new();
            for id in self.running() {
                let knows = self
                    .client(id)
                    .member_list()
                    .await
                    .is_ok_and(|l| l.iter().any(|m| m.peer_urls.iter().any(|u| u == peer_url)));
                if !knows {
                    behind.push(id);
                }
            }
            if behind.is_empty() || Instant::now() >= deadline {
                return behind;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// etcd's member id of each harness node that is a member now.
    pub async fn etcd_ids(&self) -> Result<BTreeMap<NodeId, u64>, EtcdError> {
        let ids: BTreeMap<NodeId, u64> = self
            .member_list()
            .await?
            .into_iter()
            .filter_map(|m| {
                let id = m.peer_urls.iter().find_map(|u| self.node_of_peer_url(u))?;
                Some((id, m.id))
            })
            .collect();
        let mut known = self.known_ids.lock().unwrap_or_else(|e| e.into_inner());
        for (&node, &etcd) in &ids {
            known.insert(etcd, node);
        }
        Ok(ids)
    }

    /// Records that `etcd_id` is harness node `node` (a member's own
    /// status names its id).
    pub fn remember(&self, etcd_id: u64, node: NodeId) {
        self.known_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(etcd_id, node);
    }

    /// The harness node of an etcd member id (as `/debug/vars` reports a
    /// leader or a vote). Ids seen before are answered from memory, so a
    /// status probe of a partitioned cluster needs no member list; an
    /// unknown id asks for one. Removed members keep their entry: an id
    /// never comes back.
    pub async fn node_of_etcd_id(&self, etcd_id: u64) -> Option<NodeId> {
        let cached = self
            .known_ids
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&etcd_id)
            .copied();
        if cached.is_some() {
            return cached;
        }
        let ids = self.etcd_ids().await.ok()?;
        ids.into_iter().find(|&(_, e)| e == etcd_id).map(|(n, _)| n)
    }

    /// Removes member `id` from the cluster through the other running
    /// members, retrying until it is gone from the member list or the
    /// membership timeout passes. Once it learns of its removal, etcd
    /// stops the removed member's process by itself.
    pub async fn remove_member(&self, id: NodeId) -> Result<(), EtcdError> {
        let deadline = Instant::now() + self.config.membership_timeout;
        let mut sent = false;
        loop {
            let last = match self.etcd_ids().await {
                Ok(ids) => match ids.get(&id) {
                    // Gone after we asked: done (a retry after a lost answer
                    // lands here too).
                    None if sent => return Ok(()),
                    None => {
                        return Err(EtcdError::Membership {
                            id,
                            message: "not a member".into(),
                        })
                    }
                    Some(&etcd_id) => {
                        sent = true;
                        match self.try_remove(id, etcd_id).await {
                            Ok(()) => return Ok(()),
                            Err(e) => e,
                        }
                    }
                },
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(EtcdError::Membership { id, message: last });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// One round of `member remove` through each other running member.
    async fn try_remove(&self, id: NodeId, etcd_id: u64) -> Result<(), String> {
        let mut errors = Vec::new();
        for via in self.running().into_iter().filter(|&v| v != id) {
            match self.client(via).member_remove(etcd_id).await {
                Ok(_) => return Ok(()),
                Err(e) => errors.push(format!("via n{via}: {e}")),
            }
        }
        if errors.is_empty() {
            errors.push("no other member is running".into());
        }
        Err(errors.join("; "))
    }

    /// Adds member `id` back as a new, empty member: kills it if it runs,
    /// wipes its data dir, gives it a new peer URL (a new proxy listener),
    /// `member add`s that URL, and starts it with `--initial-cluster-state
    /// existing` and the member list as its initial cluster. etcd 3.4 adds
    /// voters directly, so the member counts towards the quorum from the
    /// moment it is added: start it at once (this does).
    ///
    /// Why a new URL: the new member learns its id by asking the others for
    /// the member list and taking the entry with its peer URL. A member
    /// that has not applied the removal yet still lists the removed member
    /// under the old URL, and the newcomer would take the removed member's
    /// id, be refused by everyone as removed, and exit (seen on 3.4.23).
    pub async fn add_member(&self, id: NodeId) -> Result<u32, EtcdError> {
        if !self.addrs.contains_key(&id) {
            return Err(EtcdError::Cluster(
                crate::cluster::ClusterError::UnknownNode(id),
            ));
        }
        self.forget_unstarted(id).await?;
        self.kill(id)?;
        self.wait_ports(id)?;
        let data = self.data_dir(id);
        match std::fs::remove_dir_all(&data) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(EtcdError::Io {
                    path: data.display().to_string(),
                    source,
                })
            }
        }
        if let Some(mesh) = &self.mesh {
            mesh.add_destination(id)?;
            self.note_peer_url(id);
        }
        let members = self.member_add(id).await?;
        let mut initial = Vec::new();
        for m in &members {
            let Some(url) = m.peer_urls.first() else {
                continue;
            };
            let member_name = match self.node_of_peer_url(url) {
                Some(n) => name(n),
                None if !m.name.is_empty() => m.name.clone(),
                None => {
                    return Err(EtcdError::Membership {
                        id,
                        message: format!("member {} at {url} is unknown to the harness", m.id),
                    })
                }
            };
            let addr = url
                .strip_prefix("http://")
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| EtcdError::Membership {
                    id,
                    message: format!("peer URL {url:?} is not http://ip:port"),
                })?;
            initial.push((member_name, addr));
        }
        let behind = self
            .wait_applied_everywhere(&url(self.advertised_peer(id)), Duration::from_secs(10))
            .await;
        if !behind.is_empty() {
            tracing::warn!(
                node = id,
                ?behind,
                "members still without the added member; starting it anyway"
            );
        }
        let m = self.member_config(id, initial, InitialState::Existing);
        self.set_member(id, m)?;
        let pid = self.start(id)?;
        self.joined(id).await?;
        Ok(pid)
    }

    /// Waits (at most 10 s) until the member just started follows a leader;
    /// fails if it exited instead (etcd refuses to start a member whose
    /// view of the cluster does not match, and says why in its log).
    async fn joined(&self, id: NodeId) -> Result<(), EtcdError> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.supervisor.state(id) == Some(ProcessState::Stopped) {
                return Err(EtcdError::Membership {
                    id,
                    message: format!(
                        "n{id} exited right after it started ({}); see its node.log",
                        self.supervisor
                            .last_exit(id)
                            .map_or("no status".to_string(), |s| s.to_string())
                    ),
                });
            }
            let follows = self
                .client(id)
                .raft_status()
                .await
                .is_ok_and(|s| s.lead.is_some());
            if follows || Instant::now() >= deadline {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Refuses to add `id` while it is a started member; removes an entry
    /// for it that was added but never started (an earlier attempt that
    /// failed half way), so that it is added once, under its new URL.
    async fn forget_unstarted(&self, id: NodeId) -> Result<(), EtcdError> {
        let list = self.member_list().await?;
        let mine = list.iter().filter(|m| {
            m.peer_urls
                .iter()
                .any(|u| self.node_of_peer_url(u) == Some(id))
        });
        for m in mine {
            if !m.name.is_empty() {
                return Err(EtcdError::Membership {
                    id,
                    message: format!("n{id} is still a member (etcd id {})", m.id),
                });
            }
            self.try_remove(id, m.id)
                .await
                .map_err(|message| EtcdError::Membership { id, message })?;
        }
        Ok(())
    }

    /// `member add` through the running members, retried until the
    /// deadline; returns the member list that includes `id`. A retry after
    /// an unanswered add finds it already listed (not yet started) and
    /// stops there.
    async fn member_add(&self, id: NodeId) -> Result<Vec<Member>, EtcdError> {
        let peer_url = url(self.advertised_peer(id));
        let deadline = Instant::now() + self.config.membership_timeout;
        loop {
            let mut errors = Vec::new();
            match self.member_list().await {
                Ok(list) => {
                    if let Some(m) = list.iter().find(|m| m.peer_urls.contains(&peer_url)) {
                        if !m.name.is_empty() {
                            return Err(EtcdError::Membership {
                                id,
                                message: format!("n{id} is still a member (etcd id {})", m.id),
                            });
                        }
                        return Ok(list);
                    }
                    for via in self.running() {
                        match self
                            .client(via)
                            .member_add(std::slice::from_ref(&peer_url))
                            .await
                        {
                            Ok(r) => return Ok(r.members),
                            Err(e) => errors.push(format!("via n{via}: {e}")),
                        }
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
            if Instant::now() >= deadline {
                return Err(EtcdError::Membership {
                    id,
                    message: errors.join("; "),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn member_config(
        &self,
        id: NodeId,
        initial_cluster: Vec<(String, SocketAddr)>,
        state: InitialState,
    ) -> MemberConfig {
        let a = self.addrs[&id];
        MemberConfig {
            name: name(id),
            data_dir: self.data_dir(id),
            client: a.client,
            peer_listen: a.peer,
            peer_advertise: self.advertised_peer(id),
            initial_cluster,
            state,
            token: self.config.token.clone(),
            timing: self.config.timing,
        }
    }

    fn set_member(&self, id: NodeId, m: MemberConfig) -> Result<(), EtcdError> {
        let dir = self.node_dir(id);
        std::fs::create_dir_all(&dir).map_err(|source| EtcdError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let spec = m.process_spec(&self.config.binary, &dir.join("node.log"));
        self.supervisor.register(id, spec);
        self.lock().insert(id, m);
        Ok(())
    }

    fn wait_ports(&self, id: NodeId) -> Result<(), EtcdError> {
        let a = self.addrs[&id];
        wait_ports_free(&[a.client, a.peer], Instant::now() + Duration::from_secs(5))
    }

    fn running(&self) -> Vec<NodeId> {
        self.node_ids()
            .into_iter()
            .filter(|&id| self.supervisor.state(id) == Some(ProcessState::Running))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<NodeId, MemberConfig>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The etcd `--name` of harness node `id`.
pub fn name(id: NodeId) -> String {
    format!("n{id}")
}
