//! Command-line interface of the `harness` binary.
//!
//! Option names follow Jepsen's where Jepsen has one (`--time-limit`,
//! `--concurrency`, `--rate`, `-w/--workload`, `--nemesis`,
//! `--nemesis-interval`, `--nemesis-targets`, `--test-count`). Every option
//! has a default chosen so that `harness run` alone is a short, real chaos
//! test of our node. Settings of one system go through `--system-opt`,
//! declared by the system (`crate::systems`).
//!
//! Exit codes (docs/formats.md, "Exit codes"): 0 valid, 1 invalid, 2 unknown, 3 error. Bad
//! flags are an error (3), not clap's usual 2, which would read as
//! "unknown".

use crate::client::ReadConsistency;
use crate::nemesis::{NemesisSpec, Targets};
use crate::run::RunConfig;
use crate::systems::{opts::parse_pair, SystemKind};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use workloads::{KeyDist, OpMix, WorkloadKind};

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
    #[command(after_help = crate::systems::options_help(), args_override_self = true)]
    Run(RunArgs),
    /// Run a matrix of tests from a suite file (default: the built-in
    /// nightly suite); writes suite.json, summary.html and junit.xml.
    Suite(SuiteArgs),
    /// Run a recorded run again: its test.json, seed, client ops and
    /// realised fault schedule; prints both verdicts side by side.
    Replay(ReplayArgs),
    /// Check a saved run folder or a history file (JSONL, Jepsen EDN, porcupine).
    Check(checker::cli::CheckArgs),
    /// Re-render the report of a run folder, or the index of a results folder.
    Report(ReportArgs),
    /// Measure throughput, latency and failover time, of one system or several side by side.
    Bench(BenchArgs),
    /// Run one Raft node (the same flags and code as the `node` binary).
    Node(node::cli::NodeArgs),
    /// Run every planted bug of the catalogue (a build with `--features
    /// bugs`) until the harness catches it, and the correct node for false
    /// alarms; print the table.
    Selftest(crate::selftest::SelftestArgs),
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
    /// The system under test.
    #[arg(long, value_enum, default_value_t = SystemKind::RaftNode)]
    pub system: SystemKind,

    /// A setting of the system under test, KEY=VALUE (repeatable); each
    /// system's keys are listed below.
    #[arg(long = "system-opt", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub system_opts: Vec<(String, String)>,

    /// Number of nodes in the cluster.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=9))]
    pub nodes: u64,

    /// Seconds of client traffic (faults run during this time).
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = positive_f64)]
    pub time_limit: f64,

    /// Number of client workers (default: 2 × nodes).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub concurrency: Option<u64>,

    /// Read-only workers per node, besides --concurrency: each reads from
    /// its own node all the time (a deposed leader or a lagging follower
    /// included), at no rate limit; 0 for none.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=64))]
    pub readers: u64,

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

    /// Faults: a comma list of fault kinds (kill, pause, partition, member;
    /// or all) and packages (isolate-leader, diverge, lagging,
    /// lagging-majority, pause-leader, kill-majority, kill-all,
    /// crash-voters, stale-suffix, figure-8, or packages for these ten;
    /// member-overlap, member-learners, clock, early-campaign); or none.
    /// Default: all,packages,member-overlap,member-learners, limited to what
    /// the system takes.
    #[arg(long, value_parser = NemesisSpec::parse)]
    pub nemesis: Option<NemesisSpec>,

    /// Which nodes faults hit: `one` (the nodes the seeded schedule picked)
    /// or `primaries` (kills, pauses and removals hit the current leader,
    /// partitions put it on the losing side, whenever the schedule's gates
    /// allow it; Jepsen's target name).
    #[arg(long, value_enum, default_value_t = Targets::One)]
    pub nemesis_targets: Targets,

    /// Mean seconds between fault decisions (start one, or undo one);
    /// packages time their episodes by it [default: the system's, 0.5 for
    /// raft-node, 1 for etcd and maelstrom]
    #[arg(long, value_name = "SECONDS", value_parser = positive_f64)]
    pub nemesis_interval: Option<f64>,

    /// Consistency of client reads: linearizable, lease or stale (etcd:
    /// linearizable, or stale as its serializable reads).
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

    /// The system's program (raft-node: this binary as `harness node`;
    /// etcd: `etcd` on PATH; maelstrom: a command line, 'CMD ARGS…', by
    /// default this binary as `harness node --maelstrom`).
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,

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
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(50..))]
    pub op_timeout_ms: u64,

    /// Seconds to wait for a leader after the faults are healed; no leader
    /// by then fails the run (exit 3) instead of hanging.
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0, value_parser = positive_f64)]
    pub recovery_timeout: f64,

    /// How often every node is asked for its status (role, term, leader),
    /// in ms; each answer is an observation in `observations.jsonl`, which
    /// the Raft-safety checker reads.
    #[arg(long, value_name = "MS", default_value_t = 100, value_parser = clap::value_parser!(u64).range(10..=1000))]
    pub status_interval_ms: u64,

    /// Skip the checkers (the history is still written; `harness check` later).
    #[arg(long)]
    pub no_check: bool,
}

/// `harness suite`.
#[derive(Args, Debug, Clone)]
pub struct SuiteArgs {
    /// The suite file (TOML); without one, the built-in nightly suite.
    #[arg(value_name = "SUITE.toml")]
    pub file: Option<PathBuf>,

    /// Systems to run, replacing the file's (comma list).
    #[arg(long, value_delimiter = ',')]
    pub systems: Vec<String>,

    /// Workloads to run, replacing the file's (comma list).
    #[arg(long, value_delimiter = ',')]
    pub workloads: Vec<String>,

    /// Nemesis sets, replacing the file's: repeat the flag, or separate
    /// sets with ';' (each set is a `harness run --nemesis` list, e.g.
    /// `--nemesis kill,pause --nemesis partition`).
    #[arg(long = "nemesis", value_name = "SET", value_delimiter = ';')]
    pub nemesis: Vec<String>,

    /// Random seeds per cell, replacing the file's seeds.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub seeds: Option<u64>,

    /// Where the random seeds start (default: random; printed in suite.json).
    #[arg(long)]
    pub seed: Option<u64>,

    /// Seconds of traffic per run, replacing the file's.
    #[arg(long, value_name = "SECONDS", value_parser = positive_f64)]
    pub time_limit: Option<f64>,

    /// Total seconds: no run starts that would end past it.
    #[arg(long, value_name = "SECONDS", value_parser = positive_f64)]
    pub budget: Option<f64>,

    /// Runs at once (each cluster has its own ports and folders; they
    /// share the CPU, which changes timing, and the summary says so).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    pub parallel: Option<u64>,

    /// Rounds of the whole matrix, each with new seeds.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Repeat the matrix with new seeds until a run is invalid (at most
    /// --count rounds when given).
    #[arg(long)]
    pub until_fail: bool,

    /// Stop at the first invalid run.
    #[arg(long)]
    pub fail_fast: bool,

    /// Where run folders go; the suite's folder is `suites/<name>/<time>` in it.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,

    /// The system's program for every run.
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,

    /// Print the built-in nightly suite file and exit.
    #[arg(long)]
    pub print_nightly: bool,
}

impl SuiteArgs {
    /// The request these flags make.
    pub fn request(&self) -> crate::suite::SuiteRequest {
        let list = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        crate::suite::SuiteRequest {
            file: self.file.clone(),
            overrides: crate::suite::spec::Overrides {
                systems: list(&self.systems),
                workloads: list(&self.workloads),
                nemesis: list(&self.nemesis),
                seeds: self.seeds,
                time_limit: self.time_limit,
                budget: self.budget,
                parallel: self.parallel.map(|p| p as usize),
            },
            results_dir: self.results_dir.clone(),
            node_bin: self.node_bin.clone(),
            seed: self.seed,
            count: self.count,
            until_fail: self.until_fail,
            fail_fast: self.fail_fast,
        }
    }
}

/// `harness replay`.
#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The run folder to replay (`results/<test>/<time>`).
    pub run_dir: PathBuf,

    /// Another program for the system (e.g. a build with the fix).
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,

    /// Another system under test (with its default options).
    #[arg(long, value_enum)]
    pub system: Option<SystemKind>,

    /// Where the replays' run folders go (default: the original's results
    /// folder).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,

    /// Replays to run; the tally says how many were invalid.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub count: u32,

    /// Play the seeded nemesis plan again, watching the cluster as the
    /// original run did, instead of the recorded faults at their recorded
    /// times: for packages that act on what they see (crash-voters,
    /// stale-suffix, figure-8), whose recorded times no longer meet the
    /// election they were aimed at.
    #[arg(long)]
    pub live: bool,
}

impl ReplayArgs {
    /// The request these flags make.
    pub fn request(&self) -> crate::replay::ReplayRequest {
        crate::replay::ReplayRequest {
            run_dir: self.run_dir.clone(),
            node_bin: self.node_bin.clone(),
            system: self.system,
            results_dir: self.results_dir.clone(),
            count: self.count,
            live: self.live,
        }
    }
}

/// `harness bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// The systems to measure, one after the other under the same load
    /// (e.g. `raft-node,etcd`); their rows end in one table.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "raft-node")]
    pub system: Vec<SystemKind>,

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

    /// The program of the (single) system measured (raft-node: this
    /// binary as `harness node`; etcd: `etcd` on PATH).
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,

    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Measure only with proxies (`proxy`), only without (`direct`), or both.
    #[arg(long, default_value = "both", value_parser = ["both", "proxy", "direct"])]
    pub mesh: String,

    /// Leader kills per system for the failover time (kill -9 of the
    /// leader to the next acknowledged write), on 3 nodes through the
    /// proxies; 0 skips it.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub failovers: u32,

    /// Instead of throughput: soak runs of `harness run` at its defaults
    /// for these many minutes each (`--soak` alone: 5, 15 and 60), with
    /// the harness's peak memory, the time from the end of the traffic to
    /// the verdict, the files' sizes and a `harness check` of each run.
    #[arg(long, value_name = "MINUTES", value_delimiter = ',', num_args = 0..=1,
          default_missing_value = "5,15,60", value_parser = positive_f64)]
    pub soak: Option<Vec<f64>>,
}

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

/// `all,packages` and the membership packages, cut down to what `system`
/// takes with these options, so that a plain `harness run --system S` runs
/// every fault S supports instead of being refused for one it does not.
/// The membership packages are in the default (not in `packages`, which
/// must mean the same for every system) because a short default run is
/// where most users look, and two membership changes in flight or a
/// learner counted in a quorum only show under them.
fn default_nemesis(system: SystemKind, opts: &[(String, String)]) -> NemesisSpec {
    let caps = system.descriptor().capabilities;
    let faults = caps.faults_with(opts);
    let mut spec = NemesisSpec::parse("all,packages,member-overlap,member-learners")
        .expect("the default parses");
    spec.packages
        .retain(|p| caps.concurrent_members || !p.needs_concurrent_members());
    spec.kinds.0.retain(|k| faults.contains(k));
    let kinds = spec.kinds.clone();
    spec.packages
        .retain(|p| p.kinds().iter().all(|k| kinds.contains(*k)));
    spec
}

impl RunArgs {
    /// The run configuration these flags ask for (checked by
    /// [`RunConfig::validate`] when the run plans).
    pub fn config(&self) -> RunConfig {
        let nemesis = self
            .nemesis
            .clone()
            .unwrap_or_else(|| default_nemesis(self.system, &self.system_opts));
        RunConfig {
            system: self.system,
            system_opts: self.system_opts.clone(),
            node_bin: self.node_bin.clone(),
            nodes: self.nodes as usize,
            time_limit: self.time_limit,
            concurrency: self.concurrency.unwrap_or(2 * self.nodes) as usize,
            readers: self.readers as usize,
            rate: self.rate,
            workload: self.workload,
            key_count: self.key_count as usize,
            key_dist: self.key_dist,
            mix: self.mix,
            nemesis: nemesis.kinds,
            packages: nemesis.packages,
            nemesis_interval: self
                .nemesis_interval
                .unwrap_or(self.system.descriptor().nemesis_interval),
            nemesis_targets: self.nemesis_targets,
            read_consistency: self.read_consistency,
            proxies: !self.no_proxy,
            follow_leader: self.follow_leader,
            op_timeout_ms: self.op_timeout_ms,
            recovery_timeout: self.recovery_timeout,
            status_interval_ms: self.status_interval_ms,
            results_dir: self.results_dir.clone(),
            check: !self.no_check,
            report: true,
            verbose: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nemesis::Package;
    use std::collections::BTreeSet;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("harness").chain(args.iter().copied()))
    }

    fn run_config(args: &[&str]) -> RunConfig {
        let Command::Run(a) = parse(&[&["run"], args].concat()).unwrap().command else {
            panic!()
        };
        a.config()
    }

    #[test]
    fn soak_lengths_default_to_five_fifteen_and_sixty_minutes() {
        let soak = |args: &[&str]| {
            let Command::Bench(b) = parse(&[&["bench"], args].concat()).unwrap().command else {
                panic!()
            };
            b.soak
        };
        assert_eq!(soak(&[]), None);
        assert_eq!(soak(&["--soak"]), Some(vec![5.0, 15.0, 60.0]));
        assert_eq!(soak(&["--soak", "1,2.5"]), Some(vec![1.0, 2.5]));
        assert!(parse(&["bench", "--soak", "0"]).is_err());
    }

    #[test]
    fn default_faults_are_what_the_system_takes() {
        use crate::nemesis::FaultKind;
        let c = run_config(&["--system", "maelstrom"]);
        assert_eq!(
            c.nemesis,
            FaultKind::parse_list("pause,partition").unwrap(),
            "no member fault, and no kill for a node without state"
        );
        assert!(c
            .packages
            .iter()
            .all(|p| !p.kinds().contains(&FaultKind::Kill)));
        assert!(!c.packages.is_empty());
        let c = run_config(&["--system", "maelstrom", "--system-opt", "persistent=true"]);
        assert!(c.nemesis.contains(FaultKind::Kill));
        let c = run_config(&["--system", "maelstrom", "--nemesis", "member"]);
        assert!(
            c.nemesis.contains(FaultKind::Member),
            "an explicit list is kept"
        );
    }

    #[test]
    fn membership_packages_need_a_system_that_takes_changes_at_once() {
        let c = run_config(&["--system", "etcd"]);
        assert!(c.nemesis.contains(crate::nemesis::FaultKind::Member));
        assert!(!c.packages.iter().any(|p| p.needs_concurrent_members()));
        assert!(c.validate().is_ok());
        let e = run_config(&["--system", "etcd", "--nemesis", "member-overlap"])
            .validate()
            .unwrap_err();
        assert!(e.contains("at once") && e.contains("member-overlap"), "{e}");
        assert!(run_config(&["--nemesis", "member-overlap,member-learners"])
            .validate()
            .is_ok());
    }

    #[test]
    fn run_defaults_are_a_short_chaos_test_of_our_node() {
        let c = run_config(&[]);
        assert_eq!(c.system, SystemKind::RaftNode);
        assert_eq!(c.nodes, 5);
        assert_eq!(c.concurrency, 10);
        assert_eq!(c.time_limit, 20.0);
        assert_eq!(c.nemesis, crate::nemesis::FaultKinds::all());
        let mut packages: BTreeSet<Package> = Package::PACKAGES.into_iter().collect();
        packages.extend([Package::MemberOverlap, Package::MemberLearners]);
        assert_eq!(c.packages, packages);
        assert_eq!(c.op_timeout_ms, 1000);
        assert_eq!(c.nemesis_interval, 0.5);
        assert_eq!(run_config(&["--system", "etcd"]).nemesis_interval, 1.0);
        assert_eq!(
            run_config(&["--nemesis-interval", "2"]).nemesis_interval,
            2.0
        );
        assert_eq!(c.readers, 1);
        assert_eq!(c.nemesis_targets, Targets::One);
        assert_eq!(c.workload, WorkloadKind::Kv);
        assert_eq!(c.read_consistency, ReadConsistency::Linearizable);
        assert_eq!(c.status_interval_ms, 100);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn systems_and_their_options_parse() {
        let c = run_config(&[
            "--system",
            "etcd",
            "--system-opt",
            "pre-vote=true",
            "--system-opt",
            "election-timeout=500",
        ]);
        assert_eq!(c.system, SystemKind::Etcd);
        assert_eq!(
            c.system_opts,
            vec![
                ("pre-vote".to_string(), "true".to_string()),
                ("election-timeout".to_string(), "500".to_string())
            ]
        );
        let e = parse(&["run", "--system", "zookeeper"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("raft-node") && e.contains("etcd"), "{e}");
        let e = parse(&["run", "--system-opt", "pre-vote"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("KEY=VALUE"), "{e}");
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
        let e = parse(&["run", "--nemesis", "kill,explode"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown fault or package \"explode\""), "{e}");
        assert!(run_config(&["--no-proxy"])
            .validate()
            .unwrap_err()
            .contains("--no-proxy"));
        assert!(run_config(&["-w", "register", "--mix", "cas=1"])
            .validate()
            .unwrap_err()
            .contains("cas"));
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
