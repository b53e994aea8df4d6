//! A crash-safe Raft key-value server.
//!
//! [`raft`] is the pure consensus core; everything else is the runtime around
//! it: [`storage`] (segment log, hard state, snapshots), [`transport`] (peer
//! TCP), [`api`] (HTTP client API), [`kv`] (the state machine) and [`trace`]
//! (the JSON-lines consensus trace read by the safety checker). [`runtime`]
//! holds the Raft loop; [`maelstrom`] runs the same loop over Maelstrom's
//! stdin/stdout protocol (`--maelstrom`).
//! [`clock`] is the loop's notion of elapsed time, skewable for clock faults.
//!
//! With the cargo feature `bugs`, [`bugs`] holds a catalogue of classic Raft
//! bugs that `--bug NAME` plants in this node (docs/bugs.md).

pub mod api;
#[cfg(feature = "bugs")]
pub mod bugs;
pub mod cli;
pub mod clock;
pub mod kv;
pub mod maelstrom;
pub mod raft;
pub mod runtime;
pub mod storage;
pub mod trace;
pub mod transport;
pub use runtime::run;

/// The whole `node` program after flag parsing: logging to stderr
/// (`RUST_LOG`, default `info`, no colors since it usually goes to a file),
/// then [`run`]. Shared by the `node` binary and `harness node …`, so the two
/// are the same program. Call it outside any tokio runtime: [`run`] builds
/// its own.
pub fn main_with(args: cli::NodeArgs) -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    match run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("node: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
