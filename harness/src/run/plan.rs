//! Everything decided before a run starts: the configuration checked, the
//! system configured, the workload seeded, `test.json` filled in.

use std::io::Write;
use std::path::Path;

use workloads::WorkloadConfig;

use super::{RunConfig, RunError};
use crate::nemesis::RecordedSchedule;
use crate::store::TestConfig;
use crate::systems::{System, SystemOpts, SystemSetup};

/// A run, decided.
pub struct Plan {
    pub config: RunConfig,
    pub system: Box<dyn System>,
    pub workload: WorkloadConfig,
    /// `test.json` (its `start_unix_ns` is set when the history starts).
    pub test: TestConfig,
    /// The faults of an earlier run to carry out again instead of drawing
    /// them (`harness replay`).
    pub recorded: Option<RecordedSchedule>,
}

impl Plan {
    /// Checks `config` and configures its system; fails before anything
    /// starts (exit 3, no run folder).
    pub fn new(
        config: &RunConfig,
        seed: u64,
        test_index: usize,
        argv: Vec<String>,
    ) -> Result<Self, RunError> {
        config.validate().map_err(RunError::Config)?;
        let descriptor = config.system.descriptor();
        let setup = SystemSetup {
            opts: SystemOpts::new(descriptor, &config.system_opts)?,
            node_bin: config.node_bin.clone(),
            nemesis: config.nemesis.clone(),
        };
        let system = (descriptor.configure)(&setup)?;
        let workload = config.workload_config(seed);
        let test = TestConfig {
            name: config.test_name(),
            start_unix_ns: 0,
            seed,
            system: system.record(),
            nodes: config.nodes,
            time_limit_s: config.time_limit,
            concurrency: config.concurrency,
            rate: config.rate,
            workload: config.workload.name().to_string(),
            keys: workload.keys(),
            key_dist: workload.key_dist.name(),
            mix: workload.mix.to_string(),
            nemesis: config.nemesis_spec().names(),
            nemesis_interval_s: config.nemesis_interval,
            nemesis_targets: config.nemesis_targets,
            read_consistency: config.read_consistency.name().to_string(),
            proxy: config.proxies,
            op_timeout_ms: config.op_timeout_ms,
            follow_leader: config.follow_leader,
            readers: config.readers,
            status_interval_ms: config.status_interval_ms,
            argv,
            test_index,
        };
        Ok(Plan {
            config: config.clone(),
            system,
            workload,
            test,
            recorded: None,
        })
    }

    /// The configuration printout, seed first.
    pub fn print(&self, out: &mut dyn Write, dir: &Path) {
        let t = &self.test;
        let rate = t
            .rate
            .map(|r| format!("{r} ops/s"))
            .unwrap_or_else(|| "unlimited".into());
        let nemesis = if t.nemesis.is_empty() {
            "none".to_string()
        } else {
            let targets = match t.nemesis_targets {
                crate::nemesis::Targets::One => String::new(),
                other => format!(", aimed at {}", other.name()),
            };
            format!(
                "{} every ~{}s{targets}",
                t.nemesis.join(","),
                t.nemesis_interval_s
            )
        };
        let reads = match self
            .config
            .system
            .descriptor()
            .capabilities
            .read_name(self.config.read_consistency)
        {
            Some(own) if own != t.read_consistency => format!("{} ({own})", t.read_consistency),
            _ => t.read_consistency.clone(),
        };
        let _ = writeln!(out, "seed {}  (replay with --seed {})", t.seed, t.seed);
        let rows = [
            ("test", t.name.clone()),
            ("system", self.system.describe()),
            (
                "nodes",
                if self.config.system.descriptor().routed {
                    format!("{}  (messages through the harness's router)", t.nodes)
                } else {
                    format!(
                        "{}  (proxies {})",
                        t.nodes,
                        if t.proxy { "on" } else { "off" }
                    )
                },
            ),
            ("time limit", format!("{}s", t.time_limit_s)),
            (
                "concurrency",
                format!("{}  (+ {} reader(s) per node)", t.concurrency, t.readers),
            ),
            ("rate", rate),
            (
                "workload",
                format!(
                    "{}  keys {}  dist {}  mix {}",
                    t.workload,
                    t.keys.len(),
                    t.key_dist,
                    t.mix
                ),
            ),
            ("nemesis", nemesis),
            ("reads", reads),
            ("op timeout", format!("{} ms", t.op_timeout_ms)),
            ("status poll", format!("every {} ms", t.status_interval_ms)),
            ("results", dir.display().to_string()),
        ];
        for (k, v) in rows {
            let _ = writeln!(out, "  {k:<12} {v}");
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    #[test]
    fn the_plan_carries_the_whole_configuration_into_test_json() {
        let Command::Run(args) = Cli::try_parse_from([
            "harness",
            "run",
            "--nodes",
            "3",
            "--rate",
            "50",
            "-w",
            "append",
            "--key-count",
            "4",
            "--system-opt",
            "pre-vote=false",
        ])
        .unwrap()
        .command
        else {
            unreachable!()
        };
        let p = Plan::new(&args.config(), 99, 1, vec!["harness".into()]).unwrap();
        assert_eq!(p.test.seed, 99);
        assert_eq!(p.test.concurrency, 6);
        assert_eq!(p.test.rate, Some(50.0));
        assert_eq!(p.test.keys, vec!["k0", "k1", "k2", "k3"]);
        assert_eq!(
            p.test.nemesis,
            vec![
                "kill",
                "pause",
                "partition",
                "member",
                "isolate-leader",
                "diverge",
                "lagging",
                "lagging-majority",
                "pause-leader",
                "kill-majority",
                "kill-all",
                "crash-voters",
                "stale-suffix",
                "figure-8",
                "member-overlap",
                "member-learners"
            ]
        );
        assert_eq!(p.test.system.name, "raft-node");
        assert_eq!(p.test.system.opts["pre-vote"], "false");
        assert_eq!(
            p.test.system.bin, None,
            "the default node command is not a --node-bin"
        );
        let json = serde_json::to_value(&p.test).unwrap();
        assert_eq!(json["system"]["version"], env!("CARGO_PKG_VERSION"));
        assert_eq!(json["nemesis_targets"], "one");
    }
}
