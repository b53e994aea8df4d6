//! Our Raft node as a system under test: N processes of the node program
//! (this build's `harness node`, or `--node-bin`), started with the flags
//! of docs/node.md, every peer link through a proxy per directed link.
//!
//! - [`cluster`]: the processes, their addresses and the proxy mesh;
//!   status from `GET /status`, membership through `/members/{id}`;
//! - [`client`]: workload ops over the HTTP API, ended by the node's
//!   answers (421 redirects followed, 409 a precondition, `outcome`).
//!
//! Every node gets a seed derived from the run's (`--seed`, see
//! [`super::node_seed`]), so that its election timeouts repeat with the
//! run's seed as far as process scheduling allows.

pub mod client;
pub mod cluster;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use futures::future::BoxFuture;
use workloads::WorkloadKind;

pub use client::NodeClient;
pub use cluster::{ClusterConfig, NodeCluster};

use super::{
    Capabilities, Cluster, Descriptor, LaunchSpec, OptSpec, System, SystemError, SystemKind,
    SystemRecord, SystemSetup,
};
use crate::client::ReadConsistency;
use crate::cluster::ClusterError;
use crate::nemesis::FaultKind;

/// What our node declares.
pub static DESCRIPTOR: Descriptor = Descriptor {
    name: "raft-node",
    about: "our Raft node (this build's `harness node`, or --node-bin)",
    capabilities: Capabilities {
        faults: &FaultKind::ALL,
        reads: &[
            (ReadConsistency::Linearizable, "linearizable"),
            (ReadConsistency::Lease, "lease"),
            (ReadConsistency::Stale, "stale"),
        ],
        workloads: &WorkloadKind::ALL,
        traces: true,
        clock: true,
        concurrent_members: true,
        gated: &[],
        append_batch: Some(node::raft::MAX_ENTRIES_PER_MSG as u64),
    },
    // Elections of 150–300 ms: a 0.5 s hold outlasts one; measured, 0.5
    // caught 12 of the 19 planted bugs in one default run where 1 caught 9
    // (docs/bugs.md).
    nemesis_interval: 0.5,
    routed: false,
    options: &[
        OptSpec {
            key: "pre-vote",
            value: "BOOL",
            default: "true",
            help: "the pre-vote phase (false: --no-pre-vote)",
        },
        OptSpec {
            key: "check-quorum",
            value: "BOOL",
            default: "true",
            help: "CheckQuorum, and with it lease reads (false: --no-check-quorum)",
        },
        OptSpec {
            key: "election-timeout",
            value: "MIN-MAX",
            default: "150-300",
            help: "election timeout range, ms",
        },
        OptSpec {
            key: "heartbeat",
            value: "MS",
            default: "50",
            help: "leader heartbeat interval, ms",
        },
        OptSpec {
            key: "snapshot-threshold",
            value: "N",
            default: "1000",
            help: "applied entries between snapshots",
        },
        OptSpec {
            key: "seed",
            value: "BOOL",
            default: "true",
            help: "pass each node a seed derived from the run's (false: nodes draw their own)",
        },
        OptSpec {
            key: "bug",
            value: "NAME[,NAME]",
            default: "none",
            help: "plant bugs of docs/bugs.md (needs a build with the cargo feature `bugs`)",
        },
    ],
    configure,
};

/// The node's settings, from `--system-opt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSettings {
    pub pre_vote: bool,
    pub check_quorum: bool,
    pub election_timeout_ms: (u64, u64),
    pub heartbeat_ms: u64,
    pub snapshot_threshold: u64,
    /// Pass `--seed` derived from the run's seed.
    pub seeds: bool,
    pub bugs: Vec<String>,
}

impl NodeSettings {
    /// The node's own defaults (those of docs/node.md).
    pub fn defaults() -> Self {
        NodeSettings {
            pre_vote: true,
            check_quorum: true,
            election_timeout_ms: (150, 300),
            heartbeat_ms: 50,
            snapshot_threshold: 1000,
            seeds: true,
            bugs: Vec::new(),
        }
    }

    /// The flags every node gets (after its address flags).
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<String> = vec![
            "--election-timeout-ms".into(),
            format!(
                "{}-{}",
                self.election_timeout_ms.0, self.election_timeout_ms.1
            ),
            "--heartbeat-ms".into(),
            self.heartbeat_ms.to_string(),
            "--snapshot-threshold".into(),
            self.snapshot_threshold.to_string(),
            // The `clock` nemesis package drives `/debug/clock`.
            "--clock-control".into(),
        ];
        if !self.pre_vote {
            a.push("--no-pre-vote".into());
        }
        if !self.check_quorum {
            a.push("--no-check-quorum".into());
        }
        for b in &self.bugs {
            a.push("--bug".into());
            a.push(b.clone());
        }
        a.into_iter().map(OsString::from).collect()
    }
}

/// The program and leading arguments that run one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCommand {
    pub program: PathBuf,
    /// Arguments placed before the node's flags (e.g. `["node"]`).
    pub args: Vec<OsString>,
}

impl NodeCommand {
    /// The single place where the default node command is decided: this
    /// very binary re-executed as `harness node …`, so one build always has
    /// a matching node and harness.
    pub fn this_binary() -> Result<Self, SystemError> {
        let program = std::env::current_exe()
            .map_err(|e| SystemError::Program(format!("cannot locate the node program: {e}")))?;
        Ok(NodeCommand {
            program,
            args: vec![OsString::from("node")],
        })
    }

    /// `--node-bin` if given, else [`NodeCommand::this_binary`].
    pub fn resolve(node_bin: Option<&Path>) -> Result<Self, SystemError> {
        match node_bin {
            Some(p) => {
                let program = std::fs::canonicalize(p).map_err(|e| {
                    SystemError::Program(format!(
                        "cannot locate the node program: {}: {e}",
                        p.display()
                    ))
                })?;
                Ok(NodeCommand {
                    program,
                    args: Vec::new(),
                })
            }
            None => Self::this_binary(),
        }
    }

    /// How the command is shown in the configuration printout.
    pub fn display(&self) -> String {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().map(|a| a.to_string_lossy().to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Our node, configured.
#[derive(Debug, Clone)]
pub struct RaftNode {
    pub command: NodeCommand,
    /// Whether `--node-bin` chose the program.
    pub explicit_bin: bool,
    pub settings: NodeSettings,
}

fn configure(setup: &SystemSetup) -> Result<Box<dyn System>, SystemError> {
    Ok(Box::new(RaftNode::configure(setup)?))
}

impl RaftNode {
    pub fn configure(setup: &SystemSetup) -> Result<Self, SystemError> {
        let o = &setup.opts;
        let d = NodeSettings::defaults();
        let election_timeout_ms = match o.get("election-timeout") {
            None => d.election_timeout_ms,
            Some(v) => {
                let r = o.parsed("election-timeout", v, node::cli::MsRange::from_str)?;
                (r.min_ms, r.max_ms)
            }
        };
        let settings = NodeSettings {
            pre_vote: o.bool("pre-vote", d.pre_vote)?,
            check_quorum: o.bool("check-quorum", d.check_quorum)?,
            election_timeout_ms,
            heartbeat_ms: o.positive("heartbeat", d.heartbeat_ms)?,
            snapshot_threshold: o.positive("snapshot-threshold", d.snapshot_threshold)?,
            seeds: o.bool("seed", d.seeds)?,
            bugs: o.list("bug"),
        };
        if settings.heartbeat_ms >= settings.election_timeout_ms.0 {
            return Err(SystemError::Option(format!(
                "--system-opt heartbeat={} for raft-node: the heartbeat must be shorter than \
                 the election timeout's minimum ({} ms)",
                settings.heartbeat_ms, settings.election_timeout_ms.0
            )));
        }
        // This build's own node knows its bug catalogue (or that it has
        // none); another program's is its own business.
        if setup.node_bin.is_none() {
            for b in &settings.bugs {
                o.parsed("bug", b, |s| node::cli::BugName::from_str(s).map(|_| ()))?;
            }
        }
        Ok(RaftNode {
            command: NodeCommand::resolve(setup.node_bin.as_deref())?,
            explicit_bin: setup.node_bin.is_some(),
            settings,
        })
    }

    /// The cluster configuration of a launch.
    pub fn cluster_config(&self, spec: &LaunchSpec) -> ClusterConfig {
        let mut c = ClusterConfig::new(self.command.program.clone(), &spec.run_dir, spec.nodes);
        c.program_args = self.command.args.clone();
        c.extra_args = self.settings.args();
        c.proxies = spec.proxies;
        c.seed = spec.seed;
        c.node_seeds = self.settings.seeds;
        c
    }
}

impl System for RaftNode {
    fn kind(&self) -> SystemKind {
        SystemKind::RaftNode
    }

    fn record(&self) -> SystemRecord {
        let s = &self.settings;
        let opts: BTreeMap<String, String> = [
            ("pre-vote", s.pre_vote.to_string()),
            ("check-quorum", s.check_quorum.to_string()),
            (
                "election-timeout",
                format!("{}-{}", s.election_timeout_ms.0, s.election_timeout_ms.1),
            ),
            ("heartbeat", s.heartbeat_ms.to_string()),
            ("snapshot-threshold", s.snapshot_threshold.to_string()),
            ("seed", s.seeds.to_string()),
            (
                "bug",
                if s.bugs.is_empty() {
                    "none".to_string()
                } else {
                    s.bugs.join(",")
                },
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        SystemRecord {
            name: DESCRIPTOR.name.into(),
            version: env!("CARGO_PKG_VERSION").into(),
            opts,
            bin: self
                .explicit_bin
                .then(|| self.command.program.display().to_string()),
        }
    }

    fn describe(&self) -> String {
        let s = &self.settings;
        let on = |b: bool| if b { "on" } else { "off" };
        let mut d = format!(
            "raft-node ({})  pre-vote {}  check-quorum {}  election {}-{} ms  heartbeat {} ms",
            self.command.display(),
            on(s.pre_vote),
            on(s.check_quorum),
            s.election_timeout_ms.0,
            s.election_timeout_ms.1,
            s.heartbeat_ms
        );
        if !s.bugs.is_empty() {
            d.push_str(&format!("  bugs {}", s.bugs.join(",")));
        }
        d
    }

    fn launch(&self, spec: LaunchSpec) -> BoxFuture<'_, Result<Arc<dyn Cluster>, ClusterError>> {
        let config = self.cluster_config(&spec);
        Box::pin(async move {
            let c: Arc<dyn Cluster> = Arc::new(NodeCluster::launch(config).await?);
            Ok(c)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::systems::SystemOpts;

    fn setup(pairs: &[(&str, &str)]) -> SystemSetup {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SystemSetup {
            opts: SystemOpts::new(&DESCRIPTOR, &pairs).unwrap(),
            ..Default::default()
        }
    }

    #[test]
    fn options_become_node_flags_and_the_record_holds_every_value() {
        let n = RaftNode::configure(&setup(&[
            ("pre-vote", "false"),
            ("election-timeout", "300-600"),
        ]))
        .unwrap();
        let args: Vec<String> = n
            .settings
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(args.contains(&"--no-pre-vote".to_string()), "{args:?}");
        assert!(!args.contains(&"--no-check-quorum".to_string()), "{args:?}");
        assert!(args
            .windows(2)
            .any(|w| w == ["--election-timeout-ms", "300-600"]));
        let r = n.record();
        assert_eq!(r.name, "raft-node");
        assert_eq!(r.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(r.opts["pre-vote"], "false");
        assert_eq!(r.opts["heartbeat"], "50");
        assert_eq!(r.opts.len(), DESCRIPTOR.options.len());
        assert_eq!(r.bin, None);
    }

    #[test]
    fn bugs_are_checked_against_this_builds_catalogue() {
        // The harness's tests build the node with its bug catalogue.
        let n = RaftNode::configure(&setup(&[("bug", "commit-old-term")])).unwrap();
        let args: Vec<String> = n
            .settings
            .args()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        assert!(
            args.windows(2).any(|w| w == ["--bug", "commit-old-term"]),
            "{args:?}"
        );
        assert_eq!(n.record().opts["bug"], "commit-old-term");
        let e = RaftNode::configure(&setup(&[("bug", "no-such-bug")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bug=no-such-bug"), "{e}");
    }

    #[test]
    fn inconsistent_timing_is_refused() {
        let e = RaftNode::configure(&setup(&[("heartbeat", "200")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("shorter than the election timeout"), "{e}");
        let e = RaftNode::configure(&setup(&[("election-timeout", "300-100")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("election-timeout=300-100"), "{e}");
    }
}
