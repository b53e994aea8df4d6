//! `harness bench`: our node's throughput and latency through the harness
//! (the same clients, history recorder and cluster as `harness run`, no
//! nemesis, no checking) at several client counts and cluster sizes, with
//! and without the proxy mesh, printed as one table.
//!
//! Each cell is a fresh cluster running `--time-limit` seconds of the
//! workload with unlimited rate; its run folder is kept under
//! `RESULTS_DIR/bench/` so that any figure can be traced to its history.

use crate::cli::{BenchArgs, Cli, Command};
use crate::history::read_history;
use crate::run::{run_once, RunMode, EXIT_ERROR, EXIT_VALID};
use crate::stats::{ok_latency, Latency};
use clap::Parser;
use std::io::Write;
use tokio::sync::watch;

/// One measured cell of the table.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchRow {
    /// Peer traffic through the proxies.
    pub proxy: bool,
    /// Cluster size.
    pub nodes: u64,
    /// Client workers.
    pub clients: u64,
    /// Ok ops per second.
    pub ops_s: f64,
    /// Latency of ok ops, all kinds together.
    pub latency_ms: Option<Latency>,
    /// Failed ops.
    pub fail: u64,
    /// Unknown ops.
    pub info: u64,
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
        "bench: workload {} ({}), {}s per cell, seed {}, no nemesis, unlimited rate",
        args.workload, args.mix, args.time_limit, args.seed
    );
    let _ = writeln!(out, "{}", header());
    let mut rows = Vec::new();
    let mut code = EXIT_VALID;
    // The mesh is the innermost loop so that the two cells compared for the
    // proxy cost run back to back, under the same machine load; which one
    // goes first alternates, so that neither always inherits the previous
    // cluster's leftovers (page-cache writeback, sockets in TIME_WAIT).
    let mut pair = 0usize;
    for &nodes in &args.nodes {
        for &clients in &args.clients {
            let mut order = meshes.to_vec();
            if pair % 2 == 1 {
                order.reverse();
            }
            pair += 1;
            for proxy in order {
                if *stop.borrow() {
                    return EXIT_ERROR;
                }
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
                    Err(e) => {
                        let _ = writeln!(out, "error: bad bench cell: {e}");
                        return EXIT_ERROR;
                    }
                };
                let mode = RunMode {
                    check: false,
                    report: false,
                    verbose: false,
                };
                let o = run_once(&run_args, args.seed, 1, argv, mode, out, stop.clone()).await;
                if let Some(e) = &o.error {
                    let _ = writeln!(
                        out,
                        "error in cell proxy={proxy} nodes={nodes} clients={clients}: {e}"
                    );
                    code = EXIT_ERROR;
                    continue;
                }
                let events = read_history(&o.dir.join("history.jsonl")).unwrap_or_default();
                let s = o.stats.as_ref();
                let row = BenchRow {
                    proxy,
                    nodes,
                    clients,
                    ops_s: s.map(|s| s.throughput_ops_s).unwrap_or(0.0),
                    latency_ms: ok_latency(&events),
                    fail: s
                        .map(|s| s.by_f.values().map(|o| o.fail).sum())
                        .unwrap_or(0),
                    info: s
                        .map(|s| s.by_f.values().map(|o| o.info).sum())
                        .unwrap_or(0),
                    dir: o.dir.display().to_string(),
                };
                let _ = writeln!(out, "{}", format_row(&row));
                let _ = out.flush();
                rows.push(row);
            }
        }
    }
    if meshes.len() == 2 {
        let _ = writeln!(out, "\nproxy cost (throughput with proxies / without):");
        for &nodes in &args.nodes {
            for &clients in &args.clients {
                let find = |p: bool| {
                    rows.iter()
                        .find(|r| r.proxy == p && r.nodes == nodes && r.clients == clients)
                        .map(|r| r.ops_s)
                };
                if let (Some(a), Some(b)) = (find(true), find(false)) {
                    if b > 0.0 {
                        let _ = writeln!(
                            out,
                            "  {nodes} nodes {clients:>3} clients: {:.0} / {:.0} ops/s = {:+.1} %",
                            a,
                            b,
                            (a / b - 1.0) * 100.0
                        );
                    }
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

fn header() -> String {
    format!(
        "{:<6} {:>5} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>5}",
        "mesh",
        "nodes",
        "clients",
        "ok ops/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "fail",
        "info"
    )
}

fn format_row(r: &BenchRow) -> String {
    let l = r.latency_ms.unwrap_or_default();
    format!(
        "{:<6} {:>5} {:>7} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>5}",
        if r.proxy { "proxy" } else { "direct" },
        r.nodes,
        r.clients,
        r.ops_s,
        l.p50,
        l.p90,
        l.p99,
        l.max,
        r.fail,
        r.info
    )
}
