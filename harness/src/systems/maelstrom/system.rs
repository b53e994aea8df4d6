//! The Maelstrom system's declaration, options and node command.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::future::BoxFuture;
use workloads::WorkloadKind;

use super::cluster::{MaelstromCluster, NodePlan};
use super::faults::MessageFaults;
use super::observe::ObserveConfig;
use crate::client::ReadConsistency;
use crate::cluster::ClusterError;
use crate::nemesis::FaultKind;
use crate::systems::{
    Capabilities, Cluster, Descriptor, LaunchSpec, OptSpec, System, SystemError, SystemKind,
    SystemOpts, SystemRecord, SystemSetup,
};

/// The environment variable that tells every node its own folder
/// (`nodes/nN` of the run), where a persistent node may keep its state.
pub const NODE_DIR_ENV: &str = "HARNESS_NODE_DIR";

/// What a Maelstrom node declares.
pub static DESCRIPTOR: Descriptor = Descriptor {
    name: "maelstrom",
    about: "any node speaking Maelstrom's protocol, lin-kv workload (--node-bin 'CMD ARGS…'; \
            default: this binary as `harness node --maelstrom`)",
    capabilities: Capabilities {
        // Kill only with persistent=true (checked when configuring);
        // Maelstrom's protocol has no membership changes.
        faults: &[FaultKind::Kill, FaultKind::Pause, FaultKind::Partition],
        reads: &[(ReadConsistency::Linearizable, "linearizable")],
        workloads: &WorkloadKind::ALL,
        traces: false,
        // The harness cannot change a foreign process's clock.
        clock: false,
        concurrent_members: false,
        gated: &[(FaultKind::Kill, "persistent")],
        append_batch: None,
    },
    nemesis_interval: 1.0,
    routed: true,
    options: &[
        OptSpec {
            key: "persistent",
            value: "BOOL",
            default: "false",
            help: "the node keeps its state across a restart, which the kill fault needs \
                   (our node: --data-dir nodes/nN/data; others: $HARNESS_NODE_DIR)",
        },
        OptSpec {
            key: "net-log",
            value: "BOOL",
            default: "false",
            help: "log every message's fate to nodes/net.jsonl",
        },
        OptSpec {
            key: "drop",
            value: "P",
            default: "0",
            help: "probability that a message between nodes is lost",
        },
        OptSpec {
            key: "duplicate",
            value: "P",
            default: "0",
            help: "probability that a message between nodes is delivered twice",
        },
        OptSpec {
            key: "reorder",
            value: "P",
            default: "0",
            help: "probability that a message is overtaken by the next one on its link",
        },
        OptSpec {
            key: "delay",
            value: "P",
            default: "0",
            help: "probability that a message is delayed by delay-ms plus jitter",
        },
        OptSpec {
            key: "delay-ms",
            value: "MS",
            default: "50",
            help: "the delay of a delayed message",
        },
        OptSpec {
            key: "jitter-ms",
            value: "MS",
            default: "50",
            help: "uniform extra delay, 0..=MS, of a delayed message",
        },
        OptSpec {
            key: "leader-type",
            value: "TYPE",
            default: "append_entries",
            help: "a message only the leader of its term sends",
        },
        OptSpec {
            key: "vote-type",
            value: "TYPE",
            default: "request_vote_res",
            help: "the reply that grants or refuses a vote",
        },
        OptSpec {
            key: "vote-request-type",
            value: "TYPE",
            default: "request_vote",
            help: "a candidate's request for votes",
        },
        OptSpec {
            key: "term-field",
            value: "FIELD",
            default: "term",
            help: "the term of those messages",
        },
        OptSpec {
            key: "granted-field",
            value: "FIELD",
            default: "vote_granted",
            help: "true when a vote reply grants the vote",
        },
        OptSpec {
            key: "candidate-field",
            value: "FIELD",
            default: "candidate_id",
            help: "the candidate a vote request names",
        },
    ],
    configure,
};

/// The node's settings, from `--system-opt`.
#[derive(Debug, Clone, PartialEq)]
pub struct MaelstromSettings {
    pub persistent: bool,
    pub net_log: bool,
    /// On every link between nodes, for the whole run.
    pub faults: MessageFaults,
    pub observe: ObserveConfig,
}

impl MaelstromSettings {
    pub fn from_opts(o: &SystemOpts) -> Result<Self, SystemError> {
        let probability = |key: &str| -> Result<f64, SystemError> {
            match o.get(key) {
                None => Ok(0.0),
                Some(v) => o.parsed(key, v, |s| match s.parse::<f64>() {
                    Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
                    _ => Err("a probability between 0 and 1".into()),
                }),
            }
        };
        let millis = |key: &str, default: u64| -> Result<u64, SystemError> {
            match o.get(key) {
                None => Ok(default),
                Some(v) => o.parsed(key, v, |s| {
                    s.parse::<u64>()
                        .map_err(|_| "a whole number of milliseconds".into())
                }),
            }
        };
        let name = |key: &str, default: &str| -> Result<String, SystemError> {
            match o.get(key) {
                None => Ok(default.to_string()),
                Some("") => Err(SystemError::Option(format!(
                    "--system-opt {key}= for maelstrom: expected a message type or field name"
                ))),
                Some(v) => Ok(v.to_string()),
            }
        };
        let d = ObserveConfig::default();
        Ok(MaelstromSettings {
            persistent: o.bool("persistent", false)?,
            net_log: o.bool("net-log", false)?,
            faults: MessageFaults {
                drop: probability("drop")?,
                duplicate: probability("duplicate")?,
                reorder: probability("reorder")?,
                delay: probability("delay")?,
                delay_ms: millis("delay-ms", 50)?,
                jitter_ms: millis("jitter-ms", 50)?,
            },
            observe: ObserveConfig {
                leader_type: name("leader-type", &d.leader_type)?,
                vote_type: name("vote-type", &d.vote_type)?,
                vote_request_type: name("vote-request-type", &d.vote_request_type)?,
                term_field: name("term-field", &d.term_field)?,
                granted_field: name("granted-field", &d.granted_field)?,
                candidate_field: name("candidate-field", &d.candidate_field)?,
            },
        })
    }

    /// Every option with the value used, as `test.json` records it.
    fn record(&self) -> BTreeMap<String, String> {
        let f = &self.faults;
        let c = &self.observe;
        [
            ("persistent", self.persistent.to_string()),
            ("net-log", self.net_log.to_string()),
            ("drop", f.drop.to_string()),
            ("duplicate", f.duplicate.to_string()),
            ("reorder", f.reorder.to_string()),
            ("delay", f.delay.to_string()),
            ("delay-ms", f.delay_ms.to_string()),
            ("jitter-ms", f.jitter_ms.to_string()),
            ("leader-type", c.leader_type.clone()),
            ("vote-type", c.vote_type.clone()),
            ("vote-request-type", c.vote_request_type.clone()),
            ("term-field", c.term_field.clone()),
            ("granted-field", c.granted_field.clone()),
            ("candidate-field", c.candidate_field.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// The command that runs one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// This build's own node (`harness node --maelstrom`), which takes
    /// `--data-dir` and `--seed`.
    pub ours: bool,
    /// `--node-bin` as given, for the printout and `test.json`.
    pub given: Option<String>,
}

impl NodeCommand {
    /// `--node-bin 'CMD ARGS…'` split as a shell would (quotes, escapes;
    /// no variables, no globs), its program found on PATH unless it names a
    /// path; without it, this very binary as `harness node --maelstrom`.
    pub fn resolve(node_bin: Option<&Path>) -> Result<Self, SystemError> {
        let Some(bin) = node_bin else {
            let program = std::env::current_exe().map_err(|e| {
                SystemError::Program(format!("cannot locate the node program: {e}"))
            })?;
            return Ok(NodeCommand {
                program,
                args: vec!["node".into(), "--maelstrom".into()],
                ours: true,
                given: None,
            });
        };
        let given = bin.to_string_lossy().to_string();
        let words = shlex::split(&given)
            .filter(|w| !w.is_empty())
            .ok_or_else(|| {
                SystemError::Program(format!(
                    "--node-bin {given:?}: expected a command and its arguments, e.g. \
                     --node-bin 'python3 raft.py' (check the quotes)"
                ))
            })?;
        let program = find_program(&words[0]).ok_or_else(|| {
            SystemError::Program(format!(
                "--node-bin {given:?}: cannot find the program {:?}{}",
                words[0],
                if words[0].contains('/') {
                    " (no such executable file)"
                } else {
                    " on PATH"
                }
            ))
        })?;
        Ok(NodeCommand {
            program,
            args: words[1..].iter().map(OsString::from).collect(),
            ours: false,
            given: Some(given),
        })
    }

    pub fn display(&self) -> String {
        match &self.given {
            Some(g) => g.clone(),
            None => std::iter::once(self.program.display().to_string())
                .chain(self.args.iter().map(|a| a.to_string_lossy().to_string()))
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// A program named by path, or found on PATH: an executable file.
fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = std::fs::canonicalize(name).ok()?;
        return executable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
}

/// A Maelstrom node, configured.
#[derive(Debug, Clone)]
pub struct Maelstrom {
    pub command: NodeCommand,
    pub settings: MaelstromSettings,
}

fn configure(setup: &SystemSetup) -> Result<Box<dyn System>, SystemError> {
    Ok(Box::new(Maelstrom::configure(setup)?))
}

impl Maelstrom {
    pub fn configure(setup: &SystemSetup) -> Result<Self, SystemError> {
        let settings = MaelstromSettings::from_opts(&setup.opts)?;
        if setup.nemesis.contains(FaultKind::Kill) && !settings.persistent {
            return Err(SystemError::Unsupported(
                "maelstrom takes the kill fault only with --system-opt persistent=true: a kill \
                 restarts the node with nothing but what it kept, most Maelstrom nodes keep \
                 their Raft state in memory, and a node that forgets its term, vote and log \
                 may legally break Raft's guarantees. Drop kill from --nemesis, or say \
                 persistent=true if your node keeps its state across restarts (in \
                 $HARNESS_NODE_DIR, for example)"
                    .into(),
            ));
        }
        Ok(Maelstrom {
            command: NodeCommand::resolve(setup.node_bin.as_deref())?,
            settings,
        })
    }

    /// What every node runs.
    pub fn plan(&self, spec: &LaunchSpec) -> NodePlan {
        NodePlan {
            command: self.command.clone(),
            run_dir: spec.run_dir.clone(),
            nodes: spec.nodes,
            seed: spec.seed,
            settings: self.settings.clone(),
        }
    }
}

impl System for Maelstrom {
    fn kind(&self) -> SystemKind {
        SystemKind::Maelstrom
    }

    fn record(&self) -> SystemRecord {
        SystemRecord {
            name: DESCRIPTOR.name.into(),
            version: if self.command.ours {
                env!("CARGO_PKG_VERSION").into()
            } else {
                "unknown (a Maelstrom node has no version)".into()
            },
            opts: self.settings.record(),
            bin: self.command.given.clone(),
        }
    }

    fn describe(&self) -> String {
        let s = &self.settings;
        let f = &s.faults;
        let faults = if f.is_none() {
            "none".to_string()
        } else {
            format!(
                "drop {} duplicate {} reorder {} delay {} ({}+0..{} ms)",
                f.drop, f.duplicate, f.reorder, f.delay, f.delay_ms, f.jitter_ms
            )
        };
        format!(
            "maelstrom ({})  state {}  message faults {faults}  net log {}",
            self.command.display(),
            if s.persistent {
                "persistent"
            } else {
                "in memory"
            },
            if s.net_log { "on" } else { "off" }
        )
    }

    fn launch(&self, spec: LaunchSpec) -> BoxFuture<'_, Result<Arc<dyn Cluster>, ClusterError>> {
        let plan = self.plan(&spec);
        Box::pin(async move {
            let c: Arc<dyn Cluster> = Arc::new(MaelstromCluster::launch(plan).await?);
            Ok(c)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::FaultKinds;

    fn setup(pairs: &[(&str, &str)], nemesis: &str, bin: Option<&str>) -> SystemSetup {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        SystemSetup {
            opts: SystemOpts::new(&DESCRIPTOR, &pairs).unwrap(),
            node_bin: bin.map(PathBuf::from),
            nemesis: FaultKind::parse_list(nemesis).unwrap(),
        }
    }

    #[test]
    fn kill_needs_a_persistent_node_and_says_why() {
        let e = Maelstrom::configure(&setup(&[], "partition,kill", None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("only with --system-opt persistent=true"), "{e}");
        assert!(e.contains("may legally break Raft's guarantees"), "{e}");
        let m = Maelstrom::configure(&setup(&[("persistent", "true")], "kill", None)).unwrap();
        assert!(m.command.ours);
        assert!(Maelstrom::configure(&setup(&[], "partition,pause", None)).is_ok());
        assert_eq!(FaultKinds::default(), setup(&[], "none", None).nemesis);
    }

    #[test]
    fn options_parse_into_faults_and_wire_names_and_all_are_recorded() {
        let m = Maelstrom::configure(&setup(
            &[
                ("drop", "0.1"),
                ("delay", "1"),
                ("jitter-ms", "5"),
                ("leader-type", "heartbeat"),
                ("net-log", "on"),
            ],
            "partition",
            Some("sh -c 'exec cat'"),
        ))
        .unwrap();
        let s = &m.settings;
        assert_eq!((s.faults.drop, s.faults.delay), (0.1, 1.0));
        assert_eq!((s.faults.delay_ms, s.faults.jitter_ms), (50, 5));
        assert_eq!(s.observe.leader_type, "heartbeat");
        assert_eq!(s.observe.vote_type, "request_vote_res");
        assert!(s.net_log && !s.persistent);
        assert_eq!(m.command.args, vec!["-c", "exec cat"]);
        assert!(m.command.program.ends_with("sh"), "{:?}", m.command.program);
        let r = m.record();
        assert_eq!(r.opts.len(), DESCRIPTOR.options.len());
        assert_eq!(r.bin.as_deref(), Some("sh -c 'exec cat'"));
        assert!(m.describe().contains("drop 0.1"), "{}", m.describe());

        for (k, v, want) in [
            ("drop", "1.5", "a probability between 0 and 1"),
            ("delay-ms", "soon", "a whole number of milliseconds"),
            ("term-field", "", "a message type or field name"),
        ] {
            let e = Maelstrom::configure(&setup(&[(k, v)], "none", None))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{k}={v}: {e}");
        }
    }

    #[test]
    fn a_node_bin_that_cannot_run_is_refused_before_anything_starts() {
        for (bin, want) in [
            (
                "no-such-program-xyz arg",
                "cannot find the program \"no-such-program-xyz\" on PATH",
            ),
            ("./nope/raft", "no such executable file"),
            ("python3 'unclosed", "check the quotes"),
            ("   ", "expected a command"),
        ] {
            let e = Maelstrom::configure(&setup(&[], "none", Some(bin)))
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{bin}: {e}");
        }
    }
}
