//! Command-line interface of the `harness` binary.
//!
//! Option names follow Jepsen's where Jepsen has one (`--time-limit`,
//! `--concurrency`, `--rate`, `-w/--workload`, `--nemesis`,
//! `--nemesis-interval`, `--test-count`). Every option has a default chosen so
//! that `harness run` alone is a short, real chaos test of our node.
//!
//! Exit codes (docs/formats.md, "Exit codes"): 0 valid, 1 invalid, 2 unknown, 3 error. Bad
//! flags are an error (3), not clap's usual 2, which would read as
//! "unknown".

use crate::client::ReadConsistency;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use workloads::{KeyDist, OpMix, WorkloadKind};

/// The fault kinds of `--nemesis`.
pub const FAULT_KINDS: [&str; 4] = ["kill", "pause", "partition", "member"];

/// Jepsen-style chaos testing of a Raft cluster.
#[derive(Parser, Debug)]
#[command(name = "harness", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a chaos test: start a cluster, drive clients, inject faults, check.
    Run(RunArgs),
    /// Check a saved run folder or a history file (JSONL, Jepsen EDN, porcupine).
    Check(checker::cli::CheckArgs),
    /// Re-render the report of a run folder, or the index of a results folder.
    Report(ReportArgs),
    /// Measure throughput and latency at 1/16/64 clients, 3/5 nodes, with and without proxies.
    Bench(BenchArgs),
    /// Run one Raft node (the same flags and code as the `node` binary).
    Node(node::cli::NodeArgs),
}

/// `harness report`.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A run folder (`results/<test>/<time>`) or a results folder (`results`).
    pub path: PathBuf,
}

/// `harness run`.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Number of nodes in the cluster.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,

    /// Seconds of client traffic (faults run during this time).
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = positive_f64)]
    pub time_limit: f64,

    /// Number of client workers (default: 2 × nodes).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: Option<u64>,

    /// Total ops per second over all clients (default: unlimited, every
    /// client busy all the time).
    #[arg(long, value_name = "OPS_PER_S", value_parser = positive_f64)]
    pub rate: Option<f64>,

    /// The workload: register, kv, cas-register or append.
    #[arg(short = 'w', long, default_value = "kv", value_parser = parse_workload)]
    pub workload: WorkloadKind,

    /// Keys of the many-key workloads (kv, append).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub key_count: u64,

    /// Key popularity of the many-key workloads: uniform, zipfian or zipfian:S.
    #[arg(long, default_value = "uniform", value_parser = parse_key_dist)]
    pub key_dist: KeyDist,

    /// Op weights, e.g. read=2,write=1,cas=1 (default: the workload's own).
    #[arg(long, value_parser = parse_mix)]
    pub mix: Option<OpMix>,

    /// Faults: a comma list of kill, pause, partition, member; or all; or none.
    #[arg(long, default_value = "all", value_parser = parse_nemesis)]
    pub nemesis: NemesisList,

    /// Which nodes faults hit: `one` (the nodes the seeded schedule picked)
    /// or `primaries` (kills, pauses and removals hit the current leader,
    /// partitions put it on the losing side, whenever the schedule's gates
    /// allow it; Jepsen's target name).
    #[arg(long, default_value = "one", value_parser = ["one", "primaries"])]
    pub nemesis_targets: String,

    /// Mean seconds between fault decisions (start one, or undo one).
    #[arg(long, value_name = "SECONDS", default_value_t = 2.0, value_parser = positive_f64)]
    pub nemesis_interval: f64,

    /// Consistency of client reads: linearizable, lease or stale.
    #[arg(long, default_value = "linearizable", value_parser = parse_consistency)]
    pub read_consistency: ReadConsistency,

    /// Seed of every random decision (default: random, printed first).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Run the test this many times (seeds seed, seed+1, …).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub test_count: u64,

    /// Where run folders go.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,

    /// The node program (default: this binary as `harness node`).
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,

    /// Start the nodes with pre-vote disabled.
    #[arg(long)]
    pub no_pre_vote: bool,

    /// Start the nodes with CheckQuorum disabled.
    #[arg(long)]
    pub no_check_quorum: bool,

    /// Connect the nodes directly, without the proxy mesh (benchmarks; no
    /// partitions possible).
    #[arg(long)]
    pub no_proxy: bool,

    /// Each worker sends its next op to the node that last answered it
    /// (after a not-leader redirect: the leader) instead of going back to
    /// its own node, as a leader-aware client library would. Fewer redirects,
    /// so throughput no longer depends on where the leader lands (`harness
    /// bench` uses it); but reads then rarely reach followers, so leave it
    /// off to hunt stale reads.
    #[arg(long)]
    pub follow_leader: bool,

    /// Give up on one client op after this many milliseconds (a write then
    /// ends `info`).
    #[arg(long, default_value_t = 4000, value_parser = clap::value_parser!(u64).range(50..))]
    pub op_timeout_ms: u64,

    /// Seconds to wait for a leader after the faults are healed; no leader
    /// by then fails the run (exit 3) instead of hanging.
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = positive_f64)]
    pub recovery_timeout: f64,

    /// Node election timeout range in ms (`MIN-MAX`), passed to every node.
    #[arg(long, value_name = "MIN-MAX", value_parser = parse_range)]
    pub election_timeout_ms: Option<(u64, u64)>,

    /// Node heartbeat interval in ms, passed to every node.
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,

    /// Skip the checkers (the history is still written; `harness check` later).
    #[arg(long)]
    pub no_check: bool,
}

/// `harness bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Seconds per measurement.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0, value_parser = positive_f64)]
    pub time_limit: f64,

    /// Runs of each cell; the table reports the median run. Single-client
    /// cells in particular swing from run to run (where the leader lands,
    /// disk flush times), so one run per cell cannot separate a few percent
    /// of proxy cost from noise.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub repeat: u32,

    /// Client counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<u64>,

    /// Cluster sizes to measure.
    #[arg(long, value_delimiter = ',', default_value = "3,5")]
    pub nodes: Vec<u64>,

    /// The workload measured.
    #[arg(short = 'w', long, default_value = "kv", value_parser = parse_workload)]
    pub workload: WorkloadKind,

    /// Op weights of the measured workload (reads and writes only by
    /// default, so every op is a plain request: no cas preconditions).
    #[arg(long, default_value = "read=1,write=1", value_parser = parse_mix)]
    pub mix: OpMix,

    /// Where the bench runs' folders go.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,

    /// The node program (default: this binary as `harness node`).
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,

    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Measure only with proxies (`proxy`), only without (`direct`), or both.
    #[arg(long, default_value = "both", value_parser = ["both", "proxy", "direct"])]
    pub mesh: String,
}

/// The parsed `--nemesis` list (empty = none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NemesisList(pub Vec<String>);

fn positive_f64(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("{s} must be a positive number"))
    }
}

fn parse_workload(s: &str) -> Result<WorkloadKind, String> {
    s.parse()
        .map_err(|e: workloads::WorkloadError| e.to_string())
}

fn parse_key_dist(s: &str) -> Result<KeyDist, String> {
    s.parse()
        .map_err(|e: workloads::WorkloadError| e.to_string())
}

fn parse_mix(s: &str) -> Result<OpMix, String> {
    OpMix::parse(s).map_err(|e| e.to_string())
}

fn parse_consistency(s: &str) -> Result<ReadConsistency, String> {
    s.parse()
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let bad = || format!("{s:?} is not MIN-MAX in milliseconds (e.g. 150-300)");
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// Parses `kill,pause`, `all` or `none`.
pub fn parse_nemesis(s: &str) -> Result<NemesisList, String> {
    match s.trim() {
        "none" | "" => return Ok(NemesisList(Vec::new())),
        "all" => {
            return Ok(NemesisList(
                FAULT_KINDS.iter().map(|k| k.to_string()).collect(),
            ))
        }
        _ => {}
    }
    let mut out: Vec<String> = Vec::new();
    for part in s.split(',').map(str::trim) {
        if !FAULT_KINDS.contains(&part) {
            return Err(format!(
                "unknown fault {part:?} (expected a comma list of {}, or all, or none)",
                FAULT_KINDS.join(", ")
            ));
        }
        if !out.iter().any(|k| k == part) {
            out.push(part.to_string());
        }
    }
    Ok(NemesisList(out))
}

impl RunArgs {
    /// The number of client workers.
    pub fn concurrency(&self) -> usize {
        self.concurrency.unwrap_or(2 * self.nodes) as usize
    }

    /// Checks combinations clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.no_proxy && self.nemesis.0.iter().any(|k| k == "partition") {
            return Err(
                "--no-proxy leaves no way to partition the nodes: drop partition from --nemesis"
                    .into(),
            );
        }
        if self.nemesis.0.iter().any(|k| k == "member") && self.nodes < 3 {
            return Err("the member fault needs at least 3 nodes".into());
        }
        if let Some(mix) = self.mix {
            let mut cfg = workloads::WorkloadConfig::new(self.workload, 0);
            cfg.mix = mix;
            cfg.validate().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("harness").chain(args.iter().copied()))
    }

    #[test]
    fn run_defaults_are_a_short_chaos_test() {
        let Command::Run(a) = parse(&["run"]).unwrap().command else {
            panic!()
        };
        assert_eq!(a.nodes, 5);
        assert_eq!(a.concurrency(), 10);
        assert_eq!(a.time_limit, 20.0);
        assert_eq!(a.nemesis.0, FAULT_KINDS.to_vec());
        assert_eq!(a.workload, WorkloadKind::Kv);
        assert_eq!(a.read_consistency, ReadConsistency::Linearizable);
        assert!(a.validate().is_ok());
    }

    #[test]
    fn nemesis_lists_parse_and_reject_unknown_faults() {
        assert_eq!(parse_nemesis("none").unwrap().0, Vec::<String>::new());
        assert_eq!(
            parse_nemesis("kill,pause,kill").unwrap().0,
            vec!["kill", "pause"]
        );
        let e = parse_nemesis("kill,explode").unwrap_err();
        assert!(e.contains("explode"), "{e}");
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let e = parse(&["run", "-w", "queue"]).unwrap_err().to_string();
        assert!(e.contains("unknown workload"), "{e}");
        let e = parse(&["run", "--time-limit", "0"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("time-limit"), "{e}");
        let e = parse(&["run", "--read-consistency", "eventual"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("linearizable, lease or stale"), "{e}");
        let Command::Run(a) = parse(&["run", "--no-proxy"]).unwrap().command else {
            panic!()
        };
        assert!(a.validate().unwrap_err().contains("--no-proxy"));
        let Command::Run(a) = parse(&["run", "-w", "register", "--mix", "cas=1"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert!(a.validate().unwrap_err().contains("cas"));
    }

    #[test]
    fn node_takes_the_node_binarys_flags() {
        let Command::Node(n) = parse(&[
            "node",
            "--id",
            "1",
            "--data-dir",
            "d",
            "--client-listen",
            "127.0.0.1:7001",
            "--peer-listen",
            "127.0.0.1:8001",
            "--members",
            "1,2,3",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(n.id, Some(1));
        assert!(
            parse(&["node", "--id", "1"]).is_err(),
            "--data-dir and the listen addresses are required"
        );
        let Ok(Command::Node(m)) = parse(&["node", "--maelstrom"]).map(|c| c.command) else {
            panic!("harness node --maelstrom parses")
        };
        assert!(m.maelstrom);
    }
}
