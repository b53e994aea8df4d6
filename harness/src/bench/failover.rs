//! Failover time: from `kill -9` of the leader to the next acknowledged
//! write, through the seam only (the same for every system).
//!
//! A 3-node cluster runs behind the proxies with the system's default
//! timing. Probe writes go out open-loop, one every [`PROBE_EVERY`],
//! round-robin over the nodes still running, each with its own timeout, so
//! that how long a stuck write waits (our node refuses at once, an etcd
//! member holds a write until its timeout) does not decide when the next
//! one is sent. Each sample: kill the leader at `t0`, then take the first
//! write *sent* after `t0` that is acknowledged, and its acknowledgement
//! time minus `t0` (a write sent before the kill could be answered from
//! bytes already on their way). Then the killed node starts again, and
//! the next kill waits until every node follows one leader and writes go
//! through.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::cli::BenchArgs;
use crate::client::{Client, ReadConsistency};
use crate::cluster::{NodeId, ProcessState};
use crate::history::EventType;
use crate::store::RunDir;
use crate::systems::{
    probe_leader, ClientSpec, Cluster, LaunchSpec, SystemKind, SystemOpts, SystemSetup,
};

/// How often a probe write is sent.
pub const PROBE_EVERY: Duration = Duration::from_millis(5);
/// How long one probe write may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one failover (or one settling) may take before the
/// measurement fails.
const PATIENCE: Duration = Duration::from_secs(30);

/// The failover samples of one system.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FailoverRow {
    pub system: SystemKind,
    /// The system's configuration (timing).
    pub describe: String,
    /// Kill to next acknowledged write, ms, in the order measured.
    pub samples_ms: Vec<f64>,
    pub median_ms: f64,
    /// The measurement's run folder (node logs).
    pub dir: String,
}

impl FailoverRow {
    /// One line of the bench's table.
    pub fn line(&self) -> String {
        let samples: Vec<String> = self.samples_ms.iter().map(|s| format!("{s:.0}")).collect();
        format!(
            "  {:<9} median {:>7.1} ms  (samples {} ms)  {}",
            self.system.name(),
            self.median_ms,
            samples.join(" "),
            self.describe
        )
    }
}

/// A sent probe write and, if it was acknowledged, when.
#[derive(Debug, Clone, Copy)]
struct Probe {
    sent: Instant,
    acked: Option<Instant>,
}

/// Measures `args.failovers` failovers of `system`.
pub async fn measure(
    args: &BenchArgs,
    system: SystemKind,
    stop: watch::Receiver<bool>,
) -> Result<FailoverRow, String> {
    let d = system.descriptor();
    let setup = SystemSetup {
        opts: SystemOpts::new(d, &[]).map_err(|e| e.to_string())?,
        node_bin: args.node_bin.clone(),
        // The failover is a kill of the leader.
        nemesis: crate::nemesis::FaultKinds([crate::nemesis::FaultKind::Kill].into()),
    };
    let configured = (d.configure)(&setup).map_err(|e| e.to_string())?;
    let dir = RunDir::create(
        &args.results_dir.join("bench"),
        &format!("failover-{}", d.name),
    )
    .map_err(|e| e.to_string())?;
    let cluster = configured
        .launch(LaunchSpec {
            run_dir: dir.path.clone(),
            nodes: 3,
            proxies: true,
            seed: args.seed,
        })
        .await
        .map_err(|e| e.to_string())?;
    let result = samples(&cluster, args.failovers, stop).await;
    cluster.shutdown().await;
    let samples_ms = result?;
    let mut sorted = samples_ms.clone();
    sorted.sort_by(f64::total_cmp);
    let median_ms = sorted
        .get(sorted.len().saturating_sub(1) / 2)
        .copied()
        .unwrap_or(f64::NAN);
    Ok(FailoverRow {
        system,
        describe: configured.describe(),
        samples_ms,
        median_ms,
        dir: dir.path.display().to_string(),
    })
}

async fn samples(
    cluster: &Arc<dyn Cluster>,
    kills: u32,
    stop: watch::Receiver<bool>,
) -> Result<Vec<f64>, String> {
    let client = cluster
        .client(ClientSpec {
            reads: ReadConsistency::Linearizable,
            op_timeout: PROBE_TIMEOUT,
        })
        .map_err(|e| e.to_string())?;
    let probes: Arc<Mutex<Vec<Probe>>> = Arc::default();
    let prober = tokio::spawn(probe_forever(cluster.clone(), client, probes.clone()));
    let mut out = Vec::new();
    let mut result = Ok(());
    for _ in 0..kills {
        if *stop.borrow() {
            result = Err("interrupted".to_string());
            break;
        }
        match one_failover(&**cluster, &probes).await {
            Ok(ms) => out.push(ms),
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    prober.abort();
    result.map(|()| out)
}

/// Sends a probe write every [`PROBE_EVERY`] until aborted.
async fn probe_forever(
    cluster: Arc<dyn Cluster>,
    client: Arc<dyn Client>,
    probes: Arc<Mutex<Vec<Probe>>>,
) {
    let mut tick = tokio::time::interval(PROBE_EVERY);
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        let running: Vec<NodeId> = cluster
            .node_ids()
            .into_iter()
            .filter(|&id| cluster.state(id) == Some(ProcessState::Running))
            .collect();
        if running.is_empty() {
            continue;
        }
        let node = running[n as usize % running.len()];
        n += 1;
        let slot = {
            let mut p = probes.lock().unwrap_or_else(|e| e.into_inner());
            p.push(Probe {
                sent: Instant::now(),
                acked: None,
            });
            p.len() - 1
        };
        let (client, probes) = (client.clone(), probes.clone());
        tokio::spawn(async move {
            let op = workloads::Op::Write {
                key: format!("failover{}", n % 8),
                value: format!("p.{n}"),
            };
            let c = client.invoke(&op, node).await;
            if c.kind == EventType::Ok {
                probes.lock().unwrap_or_else(|e| e.into_inner())[slot].acked = Some(Instant::now());
            }
        });
    }
}

/// Waits for a settled cluster, kills its leader, and returns the time to
/// the first acknowledged write sent after the kill, in ms; then restarts
/// the killed node.
async fn one_failover(cluster: &dyn Cluster, probes: &Mutex<Vec<Probe>>) -> Result<f64, String> {
    let leader = settled_leader(cluster, probes).await?;
    let t0 = Instant::now();
    cluster.kill(leader).await.map_err(|e| e.to_string())?;
    let acked = first_ack_sent_after(probes, t0).await;
    cluster.start(leader).await.map_err(|e| e.to_string())?;
    let acked = acked.ok_or_else(|| {
        format!("no write was acknowledged within {PATIENCE:?} of killing leader n{leader}")
    })?;
    Ok((acked - t0).as_secs_f64() * 1e3)
}

/// The leader once every node follows it in one term and a write sent
/// after that went through.
async fn settled_leader(
    cluster: &dyn Cluster,
    probes: &Mutex<Vec<Probe>>,
) -> Result<NodeId, String> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let p = probe_leader(cluster).await;
        if let Some(l) = p.leader {
            let all = p.statuses.values().all(|s| {
                s.as_ref()
                    .is_ok_and(|s| s.term == l.term && s.leader == Some(l.leader))
            });
            if all {
                let since = Instant::now();
                if first_ack_sent_after(probes, since).await.is_some() {
                    return Ok(l.leader);
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "the cluster did not settle within {PATIENCE:?}: {}",
                p.describe()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The earliest acknowledgement of a probe sent at or after `t0`, waiting
/// up to [`PATIENCE`] for one. Once one is seen, a probe sent earlier may
/// still be in flight with an earlier answer on its way: two more probe
/// periods are given to it.
async fn first_ack_sent_after(probes: &Mutex<Vec<Probe>>, t0: Instant) -> Option<Instant> {
    let earliest = || {
        let p = probes.lock().unwrap_or_else(|e| e.into_inner());
        // Probes are pushed in the order they are sent.
        let from = p.partition_point(|x| x.sent < t0);
        p[from..].iter().filter_map(|x| x.acked).min()
    };
    let deadline = t0 + PATIENCE;
    loop {
        if earliest().is_some() {
            tokio::time::sleep(PROBE_EVERY * 2).await;
            return earliest();
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}
