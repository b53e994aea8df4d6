//! The `node` binary: parse flags, set up logging, run the node (all logic is in the library).

use clap::Parser;
use node::cli::NodeArgs;
use std::process::ExitCode;

/// A crash-safe Raft key-value server (see DESIGN.md for the flags and the HTTP API).
#[derive(Parser, Debug)]
#[command(name = "node", version, about)]
struct Cli {
    #[command(flatten)]
    args: NodeArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match node::run(cli.args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
