//! Command-line flags of the node (docs/node.md, "Command line"). The same [`NodeArgs`]
//! is flattened into the `node` binary and into `harness node …`, so both
//! accept exactly the same flags.
//!
//! With `--maelstrom` the node learns its id and its peers from Maelstrom's
//! `init` message and talks over stdin/stdout, so the flags that name them
//! (and the listen addresses) are then not allowed; `--data-dir` becomes
//! optional (without it the node keeps its state in memory only).

use crate::raft::NodeId;
use clap::Args;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// Flags of one node process.
#[derive(Args, Clone, Debug)]
pub struct NodeArgs {
    /// Speak Maelstrom's protocol: JSON lines on stdin/stdout carry both the
    /// peer messages and the lin-kv client requests; logs go to stderr.
    #[arg(long, conflicts_with_all = ["id", "client_listen", "peer_listen", "peers", "members"])]
    pub maelstrom: bool,

    /// This node's ID (a positive integer, unique in the cluster).
    #[arg(long, required_unless_present = "maelstrom")]
    pub id: Option<NodeId>,

    /// Directory holding the log segments, hard state and snapshot.
    #[arg(long, required_unless_present = "maelstrom")]
    pub data_dir: Option<PathBuf>,

    /// Address of the HTTP client API.
    #[arg(long, required_unless_present = "maelstrom")]
    pub client_listen: Option<SocketAddr>,

    /// Address on which peers' connections are accepted.
    #[arg(long, required_unless_present = "maelstrom")]
    pub peer_listen: Option<SocketAddr>,

    /// Where this node dials peer ID (`ID=HOST:PORT`, repeatable).
    #[arg(long = "peer", value_name = "ID=ADDR")]
    pub peers: Vec<PeerAddr>,

    /// Initial voting configuration of a brand-new cluster (`1,2,3`). Without it
    /// a node with an empty data dir waits to be added.
    #[arg(long, value_delimiter = ',')]
    pub members: Vec<NodeId>,

    /// Election timeout range in milliseconds (`MIN-MAX`, or one value `MIN`
    /// meaning `MIN-2*MIN`).
    #[arg(long, default_value = "150-300")]
    pub election_timeout_ms: MsRange,

    /// Interval between leader heartbeats in milliseconds.
    #[arg(long, default_value_t = 50)]
    pub heartbeat_ms: u64,

    /// Trace file (JSON lines); defaults to `DATA_DIR/trace.jsonl`.
    #[arg(long)]
    pub trace: Option<PathBuf>,

    /// Disable the pre-vote phase (Raft thesis §9.6).
    #[arg(long)]
    pub no_pre_vote: bool,

    /// Disable CheckQuorum (a leader that hears from no majority steps down).
    #[arg(long)]
    pub no_check_quorum: bool,

    /// Take a snapshot and compact the log after this many applied entries.
    #[arg(long, default_value_t = 1000)]
    pub snapshot_threshold: u64,

    /// Start a new log segment once the current one exceeds this size.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub segment_max_bytes: u64,

    /// How long a client request may wait for commit/apply before the node
    /// answers 503 with `outcome: unknown` (writes) or `failed` (reads).
    #[arg(long, default_value_t = 3000)]
    pub request_timeout_ms: u64,

    /// Length of one core tick in milliseconds; all timeouts are rounded to ticks.
    #[arg(long, default_value_t = 10)]
    pub tick_ms: u64,

    /// Seed of the Raft core's RNG (its randomized election timeouts), so that
    /// a run's elections can be replayed as far as process scheduling allows.
    /// Random when absent.
    #[arg(long)]
    pub seed: Option<u64>,

    /// Serve `GET|POST /debug/clock`, which skews this node's notion of
    /// elapsed time (rate, jumps) for clock-fault tests. Off by default.
    #[arg(long)]
    pub clock_control: bool,

    /// Plant a bug of the catalogue (docs/bugs.md), repeatable. Only builds
    /// with the cargo feature `bugs` have the catalogue; others refuse.
    #[arg(long = "bug", value_name = "NAME")]
    #[cfg_attr(not(feature = "bugs"), arg(hide = true))]
    pub bugs: Vec<BugName>,
}

/// A `--bug` value: a bug of the catalogue.
#[cfg(feature = "bugs")]
pub use crate::bugs::Bug as BugName;

/// A `--bug` value in a build without the catalogue: there is none, so every
/// name is refused with a message saying how to get one.
#[cfg(not(feature = "bugs"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BugName {}

#[cfg(not(feature = "bugs"))]
impl FromStr for BugName {
    type Err = String;

    fn from_str(_: &str) -> Result<Self, Self::Err> {
        Err(
            "this build has no bug catalogue; rebuild with the cargo feature `bugs` \
             (`cargo build --release -p node --features bugs`, or `-p harness --features bugs`)"
                .into(),
        )
    }
}

/// This build's bug catalogue as (name, class) pairs, in catalogue order;
/// empty in a build without the cargo feature `bugs`. What a harness that
/// runs every bug (`harness selftest`) enumerates.
pub fn bug_catalogue() -> Vec<(&'static str, &'static str)> {
    #[cfg(feature = "bugs")]
    {
        crate::bugs::Bug::ALL
            .iter()
            .map(|b| (b.name(), b.class().as_str()))
            .collect()
    }
    #[cfg(not(feature = "bugs"))]
    {
        Vec::new()
    }
}

impl NodeArgs {
    /// The address book as a map (the last `--peer` for an ID wins).
    pub fn peer_map(&self) -> BTreeMap<NodeId, SocketAddr> {
        self.peers.iter().map(|p| (p.id, p.addr)).collect()
    }

    /// The bugs `--bug` planted.
    #[cfg(feature = "bugs")]
    pub fn bug_set(&self) -> crate::bugs::BugSet {
        crate::bugs::BugSet::of(self.bugs.iter().copied())
    }

    /// The trace path, defaulting to `DATA_DIR/trace.jsonl`; none for a
    /// Maelstrom node that keeps its state in memory and was given no `--trace`.
    pub fn trace_path(&self) -> Option<PathBuf> {
        self.trace
            .clone()
            .or_else(|| self.data_dir.as_ref().map(|d| d.join("trace.jsonl")))
    }
}

/// One `--peer ID=ADDR` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr {
    pub id: NodeId,
    pub addr: SocketAddr,
}

impl FromStr for PeerAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (id, addr) = s
            .split_once('=')
            .ok_or_else(|| format!("expected ID=HOST:PORT, got {s:?}"))?;
        let id = id
            .trim()
            .parse()
            .map_err(|e| format!("bad peer id {id:?}: {e}"))?;
        let addr = addr
            .trim()
            .parse()
            .map_err(|e| format!("bad peer address {addr:?}: {e}"))?;
        Ok(PeerAddr { id, addr })
    }
}

/// A millisecond range such as `150-300`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsRange {
    pub min_ms: u64,
    pub max_ms: u64,
}

impl FromStr for MsRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parse = |x: &str| {
            x.trim()
                .parse::<u64>()
                .map_err(|e| format!("bad milliseconds {x:?}: {e}"))
        };
        let (min_ms, max_ms) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let a = parse(s)?;
                (a, a.saturating_mul(2))
            }
        };
        if min_ms == 0 || max_ms < min_ms {
            return Err(format!("need 0 < MIN <= MAX, got {s:?}"));
        }
        Ok(MsRange { min_ms, max_ms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_and_range_flags_parse() {
        let p: PeerAddr = "2=127.0.0.1:9012".parse().unwrap();
        assert_eq!(p.id, 2);
        assert_eq!(p.addr.port(), 9012);
        assert!("2:127.0.0.1:9".parse::<PeerAddr>().is_err());
        let r: MsRange = "150-300".parse().unwrap();
        assert_eq!((r.min_ms, r.max_ms), (150, 300));
        let r: MsRange = "100".parse().unwrap();
        assert_eq!((r.min_ms, r.max_ms), (100, 200));
        assert!("300-150".parse::<MsRange>().is_err());
    }

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: NodeArgs,
    }

    fn parse(extra: &[&str]) -> Result<NodeArgs, clap::Error> {
        use clap::Parser;
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
        Cli::try_parse_from(argv).map(|c| c.args)
    }

    #[test]
    fn seed_and_clock_control_are_optional() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.seed, a.clock_control), (None, false));
        assert!(a.bugs.is_empty());
        let a = parse(&["--seed", "42", "--clock-control"]).unwrap();
        assert_eq!((a.seed, a.clock_control), (Some(42), true));
        assert!(parse(&["--seed", "-1"]).is_err());
    }

    #[cfg(feature = "bugs")]
    #[test]
    fn bugs_are_named_from_the_catalogue() {
        use crate::bugs::Bug;
        let a = parse(&["--bug", "commit-old-term", "--bug", "ack-before-fsync"]).unwrap();
        assert_eq!(a.bugs, vec![Bug::CommitOldTerm, Bug::AckBeforeFsync]);
        assert!(a.bug_set().has(Bug::AckBeforeFsync));
        let err = parse(&["--bug", "commit-everything"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown bug") && err.contains("vote-without-log-check"),
            "{err}"
        );
    }

    #[cfg(not(feature = "bugs"))]
    #[test]
    fn a_build_without_the_catalogue_refuses_bugs_and_says_why() {
        let err = parse(&["--bug", "commit-old-term"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no bug catalogue") && err.contains("--features bugs"),
            "{err}"
        );
    }
}
