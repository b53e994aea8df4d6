//! `harness bench`: throughput and latency through the harness (the same
//! run configuration, clients, history recorder and cluster seam as
//! `harness run`; no nemesis, no checking) at several client counts and
//! cluster sizes, with and without the proxies, of one system or several
//! one after the other; then, per system, the failover time ([`failover`]).
//! Everything ends in one table.
//!
//! Each cell is a fresh cluster running `--time-limit` seconds of the
//! workload with unlimited rate; its run folder is kept under
//! `RESULTS_DIR/bench/` so that any figure can be traced to its history.

pub mod failover;
pub mod soak;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use tokio::sync::watch;
use workloads::KeyDist;

use crate::cli::BenchArgs;
use crate::client::ReadConsistency;
use crate::history::{EventType, Process};
use crate::nemesis::{FaultKinds, Targets};
use crate::run::{run_once, RunConfig, EXIT_ERROR, EXIT_VALID};
use crate::stats::{Latency, StatsBuilder};
use crate::systems::SystemKind;
use failover::FailoverRow;

/// One measured run of one cell.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchRow {
    /// The system measured.
    pub system: SystemKind,
    /// Peer traffic through the proxies.
    pub proxy: bool,
    /// Cluster size.
    pub nodes: u64,
    /// Client workers.
    pub clients: u64,
    /// Which repetition of the cell (0-based).
    pub rep: u32,
    /// Ok ops per second.
    pub ops_s: f64,
    /// Latency of ok ops, all kinds together.
    pub latency_ms: Option<Latency>,
    /// Failed ops.
    pub fail: u64,
    /// Unknown ops.
    pub info: u64,
    /// The node that answered most ok ops: the leader, as long as there was
    /// one (the workers follow it), so a run with an election in the middle
    /// stands out.
    pub answered_by: Option<u64>,
    /// The cell's run folder.
    pub dir: String,
}

/// What `bench.json` holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub runs: Vec<BenchRow>,
    pub failovers: Vec<FailoverRow>,
}

/// One cell: which system, mesh, size and load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cell {
    system: SystemKind,
    proxy: bool,
    nodes: u64,
    clients: u64,
}

/// Runs the benchmark, prints the table, returns the exit code (3 if any
/// cell could not run).
pub async fn run_bench(
    args: &BenchArgs,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> i32 {
    if args.node_bin.is_some() && args.system.len() > 1 {
        let _ = writeln!(
            out,
            "error: --node-bin names one program, but --system names {} systems",
            args.system.len()
        );
        return EXIT_ERROR;
    }
    if let Some(minutes) = &args.soak {
        return run_soak(args, minutes, out, stop).await;
    }
    let meshes: &[bool] = match args.mesh.as_str() {
        "proxy" => &[true],
        "direct" => &[false],
        _ => &[true, false],
    };
    let systems: Vec<&str> = args.system.iter().map(|s| s.name()).collect();
    let _ = writeln!(
        out,
        "bench: {}; workload {} ({}), {}s per run, {} run(s) per cell, seed {}, no nemesis, unlimited rate",
        systems.join(", "),
        args.workload,
        args.mix,
        args.time_limit,
        args.repeat,
        args.seed
    );
    let _ = writeln!(out, "{}", header());
    let mut report = BenchReport {
        runs: Vec::new(),
        failovers: Vec::new(),
    };
    let mut code = EXIT_VALID;
    for &system in &args.system {
        for &nodes in &args.nodes {
            for &clients in &args.clients {
                // The mesh is the innermost loop so that the two runs compared
                // for the proxy cost run back to back, under the same machine
                // load; which one goes first alternates, so that neither
                // always inherits the previous cluster's leftovers
                // (page-cache writeback, sockets in TIME_WAIT).
                for rep in 0..args.repeat {
                    let mut order = meshes.to_vec();
                    if rep % 2 == 1 {
                        order.reverse();
                    }
                    for proxy in order {
                        if *stop.borrow() {
                            return EXIT_ERROR;
                        }
                        let cell = Cell {
                            system,
                            proxy,
                            nodes,
                            clients,
                        };
                        match measure(args, cell, rep, out, stop.clone()).await {
                            Ok(row) => {
                                let _ = writeln!(out, "{}", format_row(&row));
                                let _ = out.flush();
                                report.runs.push(row);
                            }
                            Err(e) => {
                                let _ = writeln!(out, "error in cell {cell:?}: {e}");
                                code = EXIT_ERROR;
                            }
                        }
                    }
                }
            }
        }
    }
    print_summaries(args, meshes, &report.runs, out);
    if args.failovers > 0 {
        let _ = writeln!(
            out,
            "\nfailover: kill -9 of the leader to the next acknowledged write (3 nodes, proxies, {} kills per system)",
            args.failovers
        );
        for &system in &args.system {
            if *stop.borrow() {
                return EXIT_ERROR;
            }
            match failover::measure(args, system, stop.clone()).await {
                Ok(row) => {
                    let _ = writeln!(out, "{}", row.line());
                    report.failovers.push(row);
                }
                Err(e) => {
                    let _ = writeln!(out, "error in the failover of {}: {e}", system.name());
                    code = EXIT_ERROR;
                }
            }
        }
    }
    save(&args.results_dir, &report, out);
    code
}

/// The median tables, the proxy cost, and the systems side by side.
fn print_summaries(args: &BenchArgs, meshes: &[bool], rows: &[BenchRow], out: &mut dyn Write) {
    let cells = |f: &mut dyn FnMut(Cell)| {
        for &system in &args.system {
            for &nodes in &args.nodes {
                for &clients in &args.clients {
                    for &proxy in meshes {
                        f(Cell {
                            system,
                            proxy,
                            nodes,
                            clients,
                        });
                    }
                }
            }
        }
    };
    if args.repeat > 1 {
        let _ = writeln!(out, "\nmedian run of each cell:\n{}", header());
        cells(&mut |c| {
            if let Some(r) = median_run(rows, c) {
                let _ = writeln!(out, "{}", format_row(r));
            }
        });
    }
    if meshes.len() == 2 {
        let _ = writeln!(
            out,
            "\nproxy cost (median throughput with proxies / without; range of the back-to-back pairs):"
        );
        for &system in &args.system {
            for &nodes in &args.nodes {
                for &clients in &args.clients {
                    if let Some(line) = cost_line(rows, system, nodes, clients) {
                        let _ = writeln!(out, "{line}");
                    }
                }
            }
        }
    }
    if let [first, others @ ..] = args.system.as_slice() {
        for &other in others {
            let _ = writeln!(
                out,
                "\n{} / {} (median ok ops/s of each cell):",
                first.name(),
                other.name()
            );
            cells(&mut |c| {
                if c.system != *first {
                    return;
                }
                let theirs = Cell { system: other, ..c };
                if let (Some(a), Some(b)) = (median_run(rows, c), median_run(rows, theirs)) {
                    if b.ops_s > 0.0 {
                        let _ = writeln!(
                            out,
                            "  {:<6} {} nodes {:>3} clients: {:.0} / {:.0} ops/s = {:.2}×",
                            mesh_name(c.proxy),
                            c.nodes,
                            c.clients,
                            a.ops_s,
                            b.ops_s,
                            a.ops_s / b.ops_s
                        );
                    }
                }
            });
        }
    }
}

/// `--soak`: the system and program chosen pass on to each `harness run`.
async fn run_soak(
    args: &BenchArgs,
    minutes: &[f64],
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> i32 {
    let [system] = args.system.as_slice() else {
        let _ = writeln!(out, "error: --soak measures one system at a time");
        return EXIT_ERROR;
    };
    let mut extra = vec!["--system".to_string(), system.name().to_string()];
    if let Some(bin) = &args.node_bin {
        extra.extend(["--node-bin".to_string(), bin.display().to_string()]);
    }
    soak::run_soak(minutes, args.seed, &args.results_dir, &extra, out, stop).await
}

fn save(results_dir: &Path, report: &BenchReport, out: &mut dyn Write) {
    let dir = results_dir.join("bench");
    let summary = dir.join("bench.json");
    if let Ok(text) = serde_json::to_vec_pretty(report) {
        if std::fs::create_dir_all(&dir).is_ok() && std::fs::write(&summary, text).is_ok() {
            let _ = writeln!(out, "rows saved to {}", summary.display());
        }
    }
}

/// The run configuration of one cell: `harness run`'s, with no faults, no
/// rate limit, no checking, and leader-following clients (where the leader
/// lands would otherwise decide how many ops pay a redirect, which moves
/// single-client throughput by more than the proxies do).
pub fn cell_config(
    args: &BenchArgs,
    system: SystemKind,
    proxy: bool,
    nodes: u64,
    clients: u64,
) -> RunConfig {
    RunConfig {
        system,
        system_opts: Vec::new(),
        node_bin: args.node_bin.clone(),
        nodes: nodes as usize,
        time_limit: args.time_limit,
        concurrency: clients as usize,
        rate: None,
        workload: args.workload,
        key_count: 8,
        key_dist: KeyDist::Uniform,
        mix: Some(args.mix),
        nemesis: FaultKinds::default(),
        packages: Default::default(),
        readers: 0,
        nemesis_interval: 1.0,
        nemesis_targets: Targets::One,
        read_consistency: ReadConsistency::Linearizable,
        proxies: proxy,
        follow_leader: true,
        op_timeout_ms: 4000,
        recovery_timeout: 20.0,
        status_interval_ms: 100,
        results_dir: args.results_dir.join("bench"),
        check: false,
        report: false,
        verbose: false,
    }
}

/// Runs one cell once: a fresh cluster through the same path as `harness run`.
async fn measure(
    args: &BenchArgs,
    cell: Cell,
    rep: u32,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> Result<BenchRow, String> {
    let config = cell_config(args, cell.system, cell.proxy, cell.nodes, cell.clients);
    let argv = vec!["harness".to_string(), "bench".to_string()];
    let run = run_once(&config, args.seed, 1, argv, out, stop).await;
    if let Some(e) = &run.results.error {
        return Err(e.to_string());
    }
    let (latency_ms, answered_by) = scan_history(&run.dir.join(formats::history::FILE_NAME))?;
    let s = run.results.stats.as_ref();
    Ok(BenchRow {
        system: cell.system,
        proxy: cell.proxy,
        nodes: cell.nodes,
        clients: cell.clients,
        rep,
        ops_s: s.map_or(0.0, |s| s.throughput_ops_s),
        latency_ms,
        fail: s.map_or(0, |s| s.by_f.values().map(|o| o.fail).sum()),
        info: s.map_or(0, |s| s.by_f.values().map(|o| o.info).sum()),
        answered_by,
        dir: run.dir.display().to_string(),
    })
}

/// The latency of every ok op, and the node that completed most of them,
/// in one streaming pass over the history.
fn scan_history(path: &Path) -> Result<(Option<Latency>, Option<u64>), String> {
    let reader = formats::history::Reader::open(path).map_err(|e| e.to_string())?;
    let mut stats = StatsBuilder::new();
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for item in reader {
        let ev = item.map_err(|e| e.to_string())?.event;
        if ev.kind == EventType::Ok && matches!(ev.process, Process::Client(_)) {
            if let Some(n) = ev.node {
                *counts.entry(n).or_default() += 1;
            }
        }
        stats.push(&ev);
    }
    let busiest = counts
        .into_iter()
        .max_by_key(|&(n, c)| (c, std::cmp::Reverse(n)))
        .map(|(n, _)| n);
    Ok((stats.ok_latency(), busiest))
}

/// The run of a cell with the median throughput (the lower middle one for
/// an even count), so that its latencies are those of a real run.
fn median_run(rows: &[BenchRow], cell: Cell) -> Option<&BenchRow> {
    let mut runs: Vec<&BenchRow> = rows
        .iter()
        .filter(|r| {
            r.system == cell.system
                && r.proxy == cell.proxy
                && r.nodes == cell.nodes
                && r.clients == cell.clients
        })
        .collect();
    runs.sort_by(|a, b| a.ops_s.total_cmp(&b.ops_s));
    let mid = runs.len().checked_sub(1)? / 2;
    runs.get(mid).copied()
}

/// One line of the proxy-cost summary: the ratio of the medians, and the
/// lowest and highest ratio of the back-to-back pairs, which shows how
/// much of the difference is run-to-run noise.
fn cost_line(rows: &[BenchRow], system: SystemKind, nodes: u64, clients: u64) -> Option<String> {
    let cell = |proxy| Cell {
        system,
        proxy,
        nodes,
        clients,
    };
    let with = median_run(rows, cell(true))?.ops_s;
    let without = median_run(rows, cell(false))?.ops_s;
    if without <= 0.0 {
        return None;
    }
    let same = |r: &BenchRow| r.system == system && r.nodes == nodes && r.clients == clients;
    let mut pairs: Vec<f64> = Vec::new();
    for r in rows.iter().filter(|r| r.proxy && same(r)) {
        let direct = rows.iter().find(|d| !d.proxy && same(d) && d.rep == r.rep);
        if let Some(d) = direct.filter(|d| d.ops_s > 0.0) {
            pairs.push((r.ops_s / d.ops_s - 1.0) * 100.0);
        }
    }
    let mut line = format!(
        "  {:<9} {nodes} nodes {clients:>3} clients: {with:.0} / {without:.0} ops/s = {:+.1} %",
        system.name(),
        (with / without - 1.0) * 100.0
    );
    if pairs.len() > 1 {
        let lo = pairs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = pairs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        line.push_str(&format!(" (pairs {lo:+.1} % .. {hi:+.1} %)"));
    }
    Some(line)
}

fn mesh_name(proxy: bool) -> &'static str {
    if proxy {
        "proxy"
    } else {
        "direct"
    }
}

fn header() -> String {
    format!(
        "{:<9} {:<6} {:>5} {:>7} {:>3} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>5} {:>6}",
        "system",
        "mesh",
        "nodes",
        "clients",
        "run",
        "ok ops/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "fail",
        "info",
        "leader"
    )
}

fn format_row(r: &BenchRow) -> String {
    let l = r.latency_ms.unwrap_or_default();
    format!(
        "{:<9} {:<6} {:>5} {:>7} {:>3} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>5} {:>6}",
        r.system.name(),
        mesh_name(r.proxy),
        r.nodes,
        r.clients,
        r.rep + 1,
        r.ops_s,
        l.p50,
        l.p90,
        l.p99,
        l.max,
        r.fail,
        r.info,
        r.answered_by
            .map(|n| format!("n{n}"))
            .unwrap_or_else(|| "-".into())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(proxy: bool, rep: u32, ops_s: f64) -> BenchRow {
        BenchRow {
            system: SystemKind::RaftNode,
            proxy,
            nodes: 3,
            clients: 1,
            rep,
            ops_s,
            latency_ms: None,
            fail: 0,
            info: 0,
            answered_by: Some(1),
            dir: String::new(),
        }
    }

    fn cell(proxy: bool, nodes: u64) -> Cell {
        Cell {
            system: SystemKind::RaftNode,
            proxy,
            nodes,
            clients: 1,
        }
    }

    #[test]
    fn the_median_run_is_the_middle_one_by_throughput() {
        let rows = vec![
            row(true, 0, 900.0),
            row(true, 1, 1100.0),
            row(true, 2, 1000.0),
            row(false, 0, 1200.0),
        ];
        assert_eq!(median_run(&rows, cell(true, 3)).unwrap().rep, 2);
        assert_eq!(median_run(&rows, cell(false, 3)).unwrap().rep, 0);
        assert!(median_run(&rows, cell(true, 5)).is_none());
        assert!(median_run(
            &rows,
            Cell {
                system: SystemKind::Etcd,
                ..cell(true, 3)
            }
        )
        .is_none());
        // An even count takes the lower middle run.
        let two = vec![row(true, 0, 900.0), row(true, 1, 1100.0)];
        assert_eq!(median_run(&two, cell(true, 3)).unwrap().rep, 0);
    }

    #[test]
    fn the_cost_compares_medians_and_shows_the_spread_of_the_pairs() {
        let rows = vec![
            row(true, 0, 900.0),
            row(false, 0, 1000.0),
            row(true, 1, 950.0),
            row(false, 1, 1000.0),
            row(true, 2, 1000.0),
            row(false, 2, 1000.0),
        ];
        let raft = SystemKind::RaftNode;
        assert_eq!(
            cost_line(&rows, raft, 3, 1).unwrap(),
            "  raft-node 3 nodes   1 clients: 950 / 1000 ops/s = -5.0 % (pairs -10.0 % .. +0.0 %)"
        );
        // One pair: no range to show.
        assert_eq!(
            cost_line(&rows[..2], raft, 3, 1).unwrap(),
            "  raft-node 3 nodes   1 clients: 900 / 1000 ops/s = -10.0 %"
        );
        assert!(cost_line(&rows[..1], raft, 3, 1).is_none());
    }
}
