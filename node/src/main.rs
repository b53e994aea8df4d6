//! The `node` binary: parse flags, hand over to the library.

use clap::Parser;
use node::cli::NodeArgs;
use std::process::ExitCode;

/// A crash-safe Raft key-value server (flags and HTTP API: docs/node.md).
#[derive(Parser, Debug)]
#[command(name = "node", version, about)]
struct Cli {
    #[command(flatten)]
    args: NodeArgs,
}

fn main() -> ExitCode {
    node::main_with(Cli::parse().args)
}
