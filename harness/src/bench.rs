//! `harness bench`: our node's throughput and latency through the harness
//! (the same clients, history recorder and cluster as `harness run`, no
//! nemesis, no checking) at several client counts and cluster sizes, with
//! and without the proxy mesh, printed as one table.
//!
//! Each cell is a fresh cluster running `--time-limit` seconds of the
//! workload with unlimited rate; its run folder is kept under
//! `RESULTS_DIR/bench/` so that any figure can be traced to its history.

use crate::cli::{BenchArgs, Cli, Command};
use crate::history::{read_history, Event, EventType, Process};
use crate::run::{run_once, RunMode, EXIT_ERROR, EXIT_VALID};
use crate::stats::{ok_latency, Latency};
use clap::Parser;
use std::collections::BTreeMap;
use std::io::Write;
use tokio::sync::watch;

/// One measured run of one cell.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchRow {
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

/// Runs the benchmark, prints the table, returns the exit code (3 if any
/// cell could not run).
pub async fn run_bench(
    args: &BenchArgs,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> i32 {
    let meshes: &[bool] = match args.mesh.as_str() {
        "proxy" => &[true],
        "direct" => &[false],
        _ => &[true, false],
    };
    let _ = writeln!(
        out,
        "bench: workload {} ({}), {}s per run, {} run(s) per cell, seed {}, no nemesis, unlimited rate",
        args.workload, args.mix, args.time_limit, args.repeat, args.seed
    );
    let _ = writeln!(out, "{}", header());
    let mut rows = Vec::new();
    let mut code = EXIT_VALID;
    // The mesh is the innermost loop so that the two runs compared for the
    // proxy cost run back to back, under the same machine load; which one
    // goes first alternates, so that neither always inherits the previous
    // cluster's leftovers (page-cache writeback, sockets in TIME_WAIT).
    let mut pair = 0usize;
    for &nodes in &args.nodes {
        for &clients in &args.clients {
            for rep in 0..args.repeat {
                let mut order = meshes.to_vec();
                if pair % 2 == 1 {
                    order.reverse();
                }
                pair += 1;
                for proxy in order {
                    if *stop.borrow() {
                        return EXIT_ERROR;
                    }
                    match measure(args, proxy, nodes, clients, rep, out, stop.clone()).await {
                        Ok(row) => {
                            let _ = writeln!(out, "{}", format_row(&row));
                            let _ = out.flush();
                            rows.push(row);
                        }
                        Err(e) => {
                            let _ = writeln!(
                                out,
                                "error in cell proxy={proxy} nodes={nodes} clients={clients}: {e}"
                            );
                            code = EXIT_ERROR;
                        }
                    }
                }
            }
        }
    }
    if args.repeat > 1 {
        let _ = writeln!(out, "\nmedian run of each cell:\n{}", header());
        for &nodes in &args.nodes {
            for &clients in &args.clients {
                for &proxy in meshes {
                    if let Some(r) = median_run(&rows, proxy, nodes, clients) {
                        let _ = writeln!(out, "{}", format_row(r));
                    }
                }
            }
        }
    }
    if meshes.len() == 2 {
        let _ = writeln!(
            out,
            "\nproxy cost (median throughput with proxies / without; range of the back-to-back pairs):"
        );
        for &nodes in &args.nodes {
            for &clients in &args.clients {
                if let Some(line) = cost_line(&rows, nodes, clients) {
                    let _ = writeln!(out, "{line}");
                }
            }
        }
    }
    let summary = args.results_dir.join("bench").join("bench.json");
    if let Ok(text) = serde_json::to_vec_pretty(&rows) {
        if std::fs::create_dir_all(args.results_dir.join("bench")).is_ok() {
            let _ = std::fs::write(&summary, text);
            let _ = writeln!(out, "rows saved to {}", summary.display());
        }
    }
    code
}

/// Runs one cell once: a fresh cluster through the same path as `harness
/// run`, without nemesis, checking or report.
async fn measure(
    args: &BenchArgs,
    proxy: bool,
    nodes: u64,
    clients: u64,
    rep: u32,
    out: &mut (dyn Write + Send),
    stop: watch::Receiver<bool>,
) -> Result<BenchRow, String> {
    let mut argv = vec![
        "harness".to_string(),
        "run".into(),
        "--nodes".into(),
        nodes.to_string(),
        "--concurrency".into(),
        clients.to_string(),
        "--time-limit".into(),
        args.time_limit.to_string(),
        "-w".into(),
        args.workload.name().into(),
        "--nemesis".into(),
        "none".into(),
        "--mix".into(),
        args.mix.to_string(),
        "--seed".into(),
        args.seed.to_string(),
        "--results-dir".into(),
        args.results_dir.join("bench").display().to_string(),
        // Where the leader lands would otherwise decide how many ops pay a
        // redirect, which moves single-client throughput by more than the
        // proxies do.
        "--follow-leader".into(),
    ];
    if let Some(bin) = &args.node_bin {
        argv.push("--node-bin".into());
        argv.push(bin.display().to_string());
    }
    if !proxy {
        argv.push("--no-proxy".into());
    }
    let run_args = match Cli::try_parse_from(&argv) {
        Ok(Cli {
            command: Command::Run(a),
        }) => a,
        Ok(_) => unreachable!("argv starts with run"),
        Err(e) => return Err(format!("bad bench cell: {e}")),
    };
    let mode = RunMode {
        check: false,
        report: false,
        verbose: false,
    };
    let o = run_once(&run_args, args.seed, 1, argv, mode, out, stop).await;
    if let Some(e) = &o.error {
        return Err(e.to_string());
    }
    let events = read_history(&o.dir.join("history.jsonl")).unwrap_or_default();
    let s = o.stats.as_ref();
    Ok(BenchRow {
        proxy,
        nodes,
        clients,
        rep,
        ops_s: s.map(|s| s.throughput_ops_s).unwrap_or(0.0),
        latency_ms: ok_latency(&events),
        fail: s
            .map(|s| s.by_f.values().map(|o| o.fail).sum())
            .unwrap_or(0),
        info: s
            .map(|s| s.by_f.values().map(|o| o.info).sum())
            .unwrap_or(0),
        answered_by: busiest_node(&events),
        dir: o.dir.display().to_string(),
    })
}

/// The node that completed most ok client ops.
fn busiest_node(events: &[Event]) -> Option<u64> {
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    for e in events {
        if e.kind == EventType::Ok && matches!(e.process, Process::Client(_)) {
            if let Some(n) = e.node {
                *counts.entry(n).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .max_by_key(|&(n, c)| (c, std::cmp::Reverse(n)))
        .map(|(n, _)| n)
}

/// The run of a cell with the median throughput (the lower middle one for
/// an even count), so that its latencies are those of a real run.
fn median_run(rows: &[BenchRow], proxy: bool, nodes: u64, clients: u64) -> Option<&BenchRow> {
    let mut runs: Vec<&BenchRow> = rows
        .iter()
        .filter(|r| r.proxy == proxy && r.nodes == nodes && r.clients == clients)
        .collect();
    runs.sort_by(|a, b| a.ops_s.total_cmp(&b.ops_s));
    let mid = runs.len().checked_sub(1)? / 2;
    runs.get(mid).copied()
}

/// One line of the proxy-cost summary: the ratio of the medians, and the
/// lowest and highest ratio of the back-to-back pairs, which shows how
/// much of the difference is run-to-run noise.
fn cost_line(rows: &[BenchRow], nodes: u64, clients: u64) -> Option<String> {
    let with = median_run(rows, true, nodes, clients)?.ops_s;
    let without = median_run(rows, false, nodes, clients)?.ops_s;
    if without <= 0.0 {
        return None;
    }
    let mut pairs: Vec<f64> = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.proxy && r.nodes == nodes && r.clients == clients)
    {
        let direct = rows
            .iter()
            .find(|d| !d.proxy && d.nodes == nodes && d.clients == clients && d.rep == r.rep);
        if let Some(d) = direct.filter(|d| d.ops_s > 0.0) {
            pairs.push((r.ops_s / d.ops_s - 1.0) * 100.0);
        }
    }
    let mut line = format!(
        "  {nodes} nodes {clients:>3} clients: {with:.0} / {without:.0} ops/s = {:+.1} %",
        (with / without - 1.0) * 100.0
    );
    if pairs.len() > 1 {
        let lo = pairs.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = pairs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        line.push_str(&format!(" (pairs {lo:+.1} % .. {hi:+.1} %)"));
    }
    Some(line)
}

fn header() -> String {
    format!(
        "{:<6} {:>5} {:>7} {:>3} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>5} {:>6}",
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
        "{:<6} {:>5} {:>7} {:>3} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>5} {:>6}",
        if r.proxy { "proxy" } else { "direct" },
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

    #[test]
    fn the_median_run_is_the_middle_one_by_throughput() {
        let rows = vec![
            row(true, 0, 900.0),
            row(true, 1, 1100.0),
            row(true, 2, 1000.0),
            row(false, 0, 1200.0),
        ];
        assert_eq!(median_run(&rows, true, 3, 1).unwrap().rep, 2);
        assert_eq!(median_run(&rows, false, 3, 1).unwrap().rep, 0);
        assert!(median_run(&rows, true, 5, 1).is_none());
        // An even count takes the lower middle run.
        let two = vec![row(true, 0, 900.0), row(true, 1, 1100.0)];
        assert_eq!(median_run(&two, true, 3, 1).unwrap().rep, 0);
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
        assert_eq!(
            cost_line(&rows, 3, 1).unwrap(),
            "  3 nodes   1 clients: 950 / 1000 ops/s = -5.0 % (pairs -10.0 % .. +0.0 %)"
        );
        // One pair: no range to show.
        assert_eq!(
            cost_line(&rows[..2], 3, 1).unwrap(),
            "  3 nodes   1 clients: 900 / 1000 ops/s = -10.0 %"
        );
        assert!(cost_line(&rows[..1], 3, 1).is_none());
    }
}
