//! The node process: the Raft loop around the pure core ([`raft_loop`]),
//! plus the two ways of connecting it to the world:
//! - TCP (this module's [`run`]): a small tokio runtime runs the peer
//!   transport and the HTTP API; they talk to the loop only through the
//!   bounded inbox (dropping peer messages when it is full, rejecting client
//!   requests with 503 `failed`);
//! - Maelstrom (`--maelstrom`, [`crate::maelstrom`]): JSON lines on stdin and
//!   stdout carry both the peer messages and the client requests.
//!
//! Both run the very same loop on the calling thread; only the [`Network`]
//! the core's messages go to, the [`Reply`] a client is answered through and
//! the [`raft_loop::LogStore`] differ.

pub(crate) mod raft_loop;

use crate::api::{self, Response};
use crate::cli::NodeArgs;
use crate::clock::Clock;
use crate::raft::{Config, NodeId};
use crate::transport::{self, Transport};
use anyhow::{bail, Context};
use raft_loop::{BootConfig, Booted, Event, Network, RaftLoop, Reply, INBOX_EVENTS};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::Instrument;

/// Converts the millisecond flags into a core configuration of `tick_ms` ticks.
pub fn raft_config(args: &NodeArgs, id: NodeId) -> anyhow::Result<Config> {
    if args.tick_ms == 0 {
        bail!("--tick-ms must be positive");
    }
    let ticks = |ms: u64| ms.div_ceil(args.tick_ms).max(1);
    let mut c = Config::new(id);
    c.election_ticks_min = ticks(args.election_timeout_ms.min_ms);
    c.election_ticks_max = ticks(args.election_timeout_ms.max_ms).max(c.election_ticks_min + 1);
    c.heartbeat_ticks = ticks(args.heartbeat_ms);
    if c.heartbeat_ticks >= c.election_ticks_min {
        bail!(
            "--heartbeat-ms {} must be shorter than the election timeout {} ms (in {} ms ticks)",
            args.heartbeat_ms,
            args.election_timeout_ms.min_ms,
            args.tick_ms
        );
    }
    // The lease must end before any other node can time out and win an
    // election; leave a fifth of the minimum timeout for clock-rate drift.
    c.lease_ticks = (c.election_ticks_min * 4 / 5).clamp(1, c.election_ticks_min - 1);
    c.pre_vote = !args.no_pre_vote;
    c.check_quorum = !args.no_check_quorum;
    #[cfg(feature = "bugs")]
    {
        c.bugs = args.bug_set();
    }
    Ok(c)
}

/// What the loop needs from the flags, once the node's id and initial
/// members are known (from the flags, or from Maelstrom's `init`).
pub(crate) fn boot_config(
    args: &NodeArgs,
    id: NodeId,
    members: Vec<NodeId>,
) -> anyhow::Result<BootConfig> {
    Ok(BootConfig {
        id,
        config: raft_config(args, id)?,
        members,
        data_dir: args.data_dir.clone(),
        segment_max_bytes: args.segment_max_bytes,
        trace: args.trace_path(),
        snapshot_threshold: args.snapshot_threshold,
        seed: args.seed,
    })
}

impl Reply for oneshot::Sender<Response> {
    fn send(self, resp: Response) {
        // The HTTP handler may have given up already; nothing to do then.
        let _ = oneshot::Sender::send(self, resp);
    }

    fn expired(&self, _now: Instant) -> bool {
        // The HTTP layer enforces the request timeout itself.
        self.is_closed()
    }
}

impl Network for Transport {
    fn send(&mut self, m: crate::raft::Message) {
        Transport::send(self, m);
    }
}

/// Runs a node until SIGTERM/SIGINT (or, with `--maelstrom`, until stdin
/// closes). Errors are fatal: unrecoverable storage (damaged data dir,
/// failed fsync) or bad flags.
///
/// Call it from a plain thread (not from inside a tokio runtime): it builds
/// its own runtime for the network side and runs the Raft loop on the caller.
pub fn run(args: NodeArgs) -> anyhow::Result<()> {
    if args.maelstrom {
        return crate::maelstrom::run(&args);
    }
    let (Some(id), Some(client_listen), Some(peer_listen)) =
        (args.id, args.client_listen, args.peer_listen)
    else {
        bail!(
            "--id, --data-dir, --client-listen and --peer-listen are required without --maelstrom"
        );
    };
    if id == 0 {
        bail!("--id must be a positive integer");
    }
    if args.data_dir.is_none() {
        bail!("--data-dir is required without --maelstrom");
    }
    let span = tracing::info_span!("node", id);
    let _enter = span.enter();
    let booted = Booted::open(boot_config(&args, id, args.members.clone())?)?;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("node-io")
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let client_listener = std::net::TcpListener::bind(client_listen)
        .with_context(|| format!("binding --client-listen {client_listen}"))?;
    let peer_listener = std::net::TcpListener::bind(peer_listen)
        .with_context(|| format!("binding --peer-listen {peer_listen}"))?;
    client_listener.set_nonblocking(true)?;
    peer_listener.set_nonblocking(true)?;
    tracing::info!(
        client = %client_listener.local_addr()?,
        peer = %peer_listener.local_addr()?,
        "listening"
    );

    let clock = Clock::new();
    let (tx, rx) = mpsc::sync_channel::<Event<oneshot::Sender<Response>>>(INBOX_EVENTS);
    let shutdown = Arc::new(AtomicBool::new(false));
    let transport = Transport::start(id, &args.peer_map(), rt.handle());
    {
        let _guard = rt.enter();
        let peer_listener = tokio::net::TcpListener::from_std(peer_listener)?;
        let client_listener = tokio::net::TcpListener::from_std(client_listener)?;
        let ptx = tx.clone();
        let deliver: transport::Deliver = Arc::new(move |m| {
            // A full inbox drops the message: Raft retransmits.
            let _ = ptx.try_send(Event::Peer(m));
        });
        rt.spawn(transport::serve(peer_listener, deliver).instrument(span.clone()));
        let ctx = tx.clone();
        let submit: api::Submit =
            Arc::new(
                move |req, reply| match ctx.try_send(Event::Client(req, reply)) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(_)) => Err("node overloaded".into()),
                    Err(TrySendError::Disconnected(_)) => Err("node shutting down".into()),
                },
            );
        let app = api::router(submit, Duration::from_millis(args.request_timeout_ms));
        let app = if args.clock_control {
            app.merge(api::clock_router(clock.clone()))
        } else {
            app
        };
        rt.spawn(
            async move {
                if let Err(e) = axum::serve(client_listener, app).await {
                    tracing::error!(error = %e, "HTTP server failed");
                }
            }
            .instrument(span.clone()),
        );
        let stx = tx.clone();
        let flag = shutdown.clone();
        let signal_task = async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            tracing::info!(signal = name, "shutting down");
            flag.store(true, Ordering::SeqCst);
            let _ = stx.try_send(Event::Shutdown);
        };
        rt.spawn(signal_task.instrument(span.clone()));
    }
    drop(tx);

    let ticker = booted.ticker(clock, Duration::from_millis(args.tick_ms));
    let mut node = RaftLoop::new(booted, Box::new(transport));
    let result = node.run(&rx, ticker, &shutdown);
    drop(node);
    rt.shutdown_timeout(Duration::from_millis(500));
    if result.is_ok() {
        tracing::info!("stopped cleanly");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: NodeArgs,
    }

    fn args(extra: &[&str]) -> NodeArgs {
        let mut argv = vec![
            "node",
            "--id",
            "1",
            "--data-dir",
            "/tmp/x",
            "--client-listen",
            "127.0.0.1:1",
            "--peer-listen",
            "127.0.0.1:2",
        ];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn millisecond_flags_map_to_ticks_with_a_lease_inside_the_election_timeout() {
        let c = raft_config(&args(&[]), 1).unwrap();
        assert_eq!((c.election_ticks_min, c.election_ticks_max), (15, 30));
        assert_eq!(c.heartbeat_ticks, 5);
        assert!(c.lease_ticks < c.election_ticks_min && c.lease_ticks >= 10);
        assert!(c.pre_vote && c.check_quorum);

        let c = raft_config(
            &args(&[
                "--election-timeout-ms",
                "1000-1000",
                "--heartbeat-ms",
                "105",
                "--no-pre-vote",
                "--no-check-quorum",
            ]),
            1,
        )
        .unwrap();
        assert_eq!((c.election_ticks_min, c.election_ticks_max), (100, 101));
        assert_eq!(c.heartbeat_ticks, 11);
        assert!(!c.pre_vote && !c.check_quorum);

        assert!(raft_config(&args(&["--heartbeat-ms", "200"]), 1).is_err());
        assert!(raft_config(&args(&["--tick-ms", "0"]), 1).is_err());
        let a = args(&["--peer", "2=127.0.0.1:9", "--members", "1,2,3"]);
        assert_eq!(a.members, vec![1, 2, 3]);
        assert_eq!(a.peer_map().len(), 1);
        assert_eq!(
            a.trace_path().as_deref(),
            Some(std::path::Path::new("/tmp/x/trace.jsonl"))
        );
    }

    #[test]
    fn maelstrom_mode_needs_no_id_or_addresses_and_refuses_them() {
        let m = Cli::try_parse_from(["node", "--maelstrom"]).unwrap().args;
        assert!(m.maelstrom && m.id.is_none() && m.data_dir.is_none());
        assert_eq!(m.trace_path(), None);
        let m = Cli::try_parse_from(["node", "--maelstrom", "--data-dir", "/tmp/d"])
            .unwrap()
            .args;
        assert_eq!(
            m.trace_path().as_deref(),
            Some(std::path::Path::new("/tmp/d/trace.jsonl"))
        );
        assert!(Cli::try_parse_from(["node", "--maelstrom", "--id", "1"]).is_err());
        assert!(Cli::try_parse_from(["node", "--maelstrom", "--members", "1,2"]).is_err());
        assert!(Cli::try_parse_from(["node", "--id", "1"]).is_err());
    }
}
