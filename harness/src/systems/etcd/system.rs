//! etcd as a system of the seam: its descriptor and options, and
//! [`EtcdCluster`] as a [`Cluster`].
//!
//! - start after a kill: on the same data dir, once its ports are free;
//! - status: `/debug/vars`' `raft.status` (the real Raft term and role),
//!   member ids mapped to harness nodes (each member's own status names its
//!   id; the member list names the rest);
//! - membership: `member remove` (etcd then stops the removed member by
//!   itself), and adding back as a new member on a fresh data dir
//!   (`member add`, then `--initial-cluster-state existing`), which is what
//!   etcd requires of a member that comes back;
//! - wipe: kill and discard the data dir; only adding the member back
//!   starts it again (an empty member started alone would bootstrap);
//! - `--strict-reconfig-check` is off unless asked for: with it, etcd
//!   refuses `member add` unless every voter has been connected to the
//!   member asked for the last 5 s, so adding a member back while another
//!   is paused, killed or cut off fails; the nemesis, which undoes one fault
//!   at a time, would wait for an add that waits for the other undo. It is
//!   an admission check for operators, not part of Raft: with it off, etcd
//!   still only adds a member through a committed configuration change.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use workloads::WorkloadKind;

use super::kv::EtcdKv;
use super::member::Timing;
use super::{EtcdBinary, EtcdCluster, EtcdClusterConfig, EtcdError};
use crate::client::{Client, ReadConsistency};
use crate::cluster::{ClusterError, NodeId, ProcessState};
use crate::nemesis::FaultKind;
use crate::systems::{
    Capabilities, ClientSpec, Cluster, Descriptor, LaunchSpec, Network, NodeStatus, OptSpec,
    System, SystemError, SystemKind, SystemRecord, SystemSetup,
};

/// What etcd declares.
pub static DESCRIPTOR: Descriptor = Descriptor {
    name: "etcd",
    about: "etcd 3.4 (`etcd` on PATH, or --node-bin; Debian: apt-get install -y etcd-server)",
    capabilities: Capabilities {
        faults: &FaultKind::ALL,
        reads: &[
            (ReadConsistency::Linearizable, "linearizable"),
            (ReadConsistency::Stale, "serializable"),
        ],
        workloads: &WorkloadKind::ALL,
        traces: false,
        clock: false,
        concurrent_members: false,
        gated: &[],
        append_batch: None,
    },
    // Elections of 1 s by default.
    nemesis_interval: 1.0,
    routed: false,
    options: &[
        OptSpec {
            key: "pre-vote",
            value: "BOOL",
            default: "false",
            help: "--pre-vote (off by default in etcd 3.4)",
        },
        OptSpec {
            key: "heartbeat-interval",
            value: "MS",
            default: "100",
            help: "--heartbeat-interval, ms",
        },
        OptSpec {
            key: "election-timeout",
            value: "MS",
            default: "1000",
            help: "--election-timeout, ms (at least 5 heartbeat intervals)",
        },
        OptSpec {
            key: "strict-reconfig-check",
            value: "BOOL",
            default: "false",
            help: "--strict-reconfig-check (on, etcd refuses to add a member back while another is down)",
        },
    ],
    configure,
};

/// etcd, found and configured.
#[derive(Debug, Clone)]
pub struct Etcd {
    pub binary: EtcdBinary,
    /// Whether `--node-bin` chose the program.
    pub explicit_bin: bool,
    pub timing: Timing,
}

fn configure(setup: &SystemSetup) -> Result<Box<dyn System>, SystemError> {
    Ok(Box::new(Etcd::configure(setup)?))
}

impl Etcd {
    pub fn configure(setup: &SystemSetup) -> Result<Self, SystemError> {
        let o = &setup.opts;
        let heartbeat = o.positive("heartbeat-interval", 100)?;
        let election = o.positive("election-timeout", 1000)?;
        // etcd refuses to start otherwise; say so before anything starts.
        if election < 5 * heartbeat {
            return Err(SystemError::Option(format!(
                "--system-opt election-timeout={election} for etcd: etcd needs at least 5 \
                 heartbeat intervals ({} ms)",
                5 * heartbeat
            )));
        }
        let timing = Timing {
            heartbeat_ms: Some(heartbeat),
            election_timeout_ms: Some(election),
            pre_vote: o.bool("pre-vote", false)?,
            // etcd's default is on; see the option's help and the module docs.
            strict_reconfig_check: o.bool("strict-reconfig-check", false)?,
        };
        let binary = EtcdBinary::locate(setup.node_bin.as_deref())
            .map_err(|e| SystemError::Program(e.to_string()))?;
        Ok(Etcd {
            binary,
            explicit_bin: setup.node_bin.is_some(),
            timing,
        })
    }
}

impl System for Etcd {
    fn kind(&self) -> SystemKind {
        SystemKind::Etcd
    }

    fn record(&self) -> SystemRecord {
        let t = &self.timing;
        let opts: BTreeMap<String, String> = [
            ("pre-vote", t.pre_vote.to_string()),
            (
                "heartbeat-interval",
                t.heartbeat_ms.unwrap_or(100).to_string(),
            ),
            (
                "election-timeout",
                t.election_timeout_ms.unwrap_or(1000).to_string(),
            ),
            ("strict-reconfig-check", t.strict_reconfig_check.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        SystemRecord {
            name: DESCRIPTOR.name.into(),
            version: self.binary.version.clone(),
            opts,
            bin: self
                .explicit_bin
                .then(|| self.binary.path.display().to_string()),
        }
    }

    fn describe(&self) -> String {
        let t = &self.timing;
        format!(
            "etcd {} ({})  pre-vote {}  heartbeat {} ms  election {} ms",
            self.binary.version,
            self.binary.path.display(),
            if t.pre_vote { "on" } else { "off" },
            t.heartbeat_ms.unwrap_or(100),
            t.election_timeout_ms.unwrap_or(1000)
        )
    }

    fn launch(&self, spec: LaunchSpec) -> BoxFuture<'_, Result<Arc<dyn Cluster>, ClusterError>> {
        let mut config = EtcdClusterConfig::new(self.binary.clone(), &spec.run_dir, spec.nodes);
        config.timing = self.timing;
        config.proxies = spec.proxies;
        config.seed = spec.seed;
        Box::pin(async move {
            let c = EtcdCluster::launch(config)
                .await
                .map_err(|e| cluster_error(0, e))?;
            let c: Arc<dyn Cluster> = Arc::new(c);
            Ok(c)
        })
    }
}

/// An etcd failure as the seam's error (`n0`: the cluster as a whole).
fn cluster_error(id: NodeId, e: EtcdError) -> ClusterError {
    match e {
        EtcdError::Cluster(c) => c,
        other => ClusterError::Node {
            id,
            message: other.to_string(),
        },
    }
}

impl EtcdCluster {
    /// Member `id`'s status in the harness's terms.
    async fn node_status(&self, id: NodeId) -> Result<NodeStatus, ClusterError> {
        let s = EtcdCluster::status(self, id)
            .await
            .map_err(|e| cluster_error(id, e))?;
        self.remember(s.id, id);
        let node_of = |etcd_id: u64| async move {
            self.node_of_etcd_id(etcd_id)
                .await
                .ok_or_else(|| ClusterError::Node {
                    id,
                    message: format!(
                        "reports member {etcd_id:x}, which is no member the harness knows"
                    ),
                })
        };
        let leader = match s.lead {
            Some(l) => Some(node_of(l).await?),
            None => None,
        };
        let mut members = Vec::new();
        for &p in &s.progress {
            members.push(node_of(p).await?);
        }
        members.sort_unstable();
        Ok(NodeStatus {
            id,
            term: s.term,
            role: s.state.role(),
            leader,
            members,
            learners: Vec::new(),
            log: None,
        })
    }
}

impl Cluster for EtcdCluster {
    fn node_ids(&self) -> Vec<NodeId> {
        EtcdCluster::node_ids(self)
    }

    fn state(&self, id: NodeId) -> Option<ProcessState> {
        EtcdCluster::state(self, id)
    }

    fn last_exit(&self, id: NodeId) -> Option<String> {
        self.supervisor().last_exit(id).map(|s| s.to_string())
    }

    fn start(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            self.start_when_free(id)
                .await
                .map(|_| ())
                .map_err(|e| cluster_error(id, e))
        })
    }

    fn stop(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            EtcdCluster::stop(self, id)
                .await
                .map_err(|e| cluster_error(id, e))
        })
    }

    fn kill(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move { EtcdCluster::kill(self, id).map_err(|e| cluster_error(id, e)) })
    }

    fn pause(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move { EtcdCluster::pause(self, id).map_err(|e| cluster_error(id, e)) })
    }

    fn resume(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move { EtcdCluster::resume(self, id).map_err(|e| cluster_error(id, e)) })
    }

    fn wipe(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            EtcdCluster::kill(self, id).map_err(|e| cluster_error(id, e))?;
            let data = self.data_dir(id);
            match std::fs::remove_dir_all(&data) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(ClusterError::Io {
                    path: data.display().to_string(),
                    source: e,
                }),
            }
        })
    }

    fn status(&self, id: NodeId) -> BoxFuture<'_, Result<NodeStatus, ClusterError>> {
        Box::pin(self.node_status(id))
    }

    fn remove_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            EtcdCluster::remove_member(self, id)
                .await
                .map_err(|e| cluster_error(id, e))
        })
    }

    fn add_member(&self, id: NodeId) -> BoxFuture<'_, Result<(), ClusterError>> {
        Box::pin(async move {
            EtcdCluster::add_member(self, id)
                .await
                .map(|_| ())
                .map_err(|e| cluster_error(id, e))
        })
    }

    fn network(&self) -> Option<Arc<dyn Network>> {
        self.mesh().map(|m| m as Arc<dyn Network>)
    }

    fn client(&self, spec: ClientSpec) -> Result<Arc<dyn Client>, ClusterError> {
        let addrs = EtcdCluster::node_ids(self)
            .into_iter()
            .filter_map(|id| self.client_addr(id).map(|a| (id, a)))
            .collect();
        let kv =
            EtcdKv::new(addrs, spec.op_timeout, spec.reads).map_err(|e| ClusterError::Node {
                id: 0,
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        Ok(Arc::new(kv))
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(EtcdCluster::shutdown(self))
    }
}
