//! The proxy mesh: one TCP proxy per directed link i→j between the nodes.
//!
//! Node i is started with `--peer j=<proxy i→j>` (docs/node.md), so every
//! connection node i opens to node j goes through the proxy of link i→j, and
//! the replies come back on the same connection. Cutting link i→j therefore
//! stops node i from reaching node j (its requests and their replies) while
//! j can still reach i over link j→i: that is how asymmetric partitions are
//! made.
//!
//! Each link has a [`LinkMode`]:
//! - `pass`: forward both ways;
//! - `stall`: accept connections but forward nothing (no new connection to
//!   the target, no bytes on open ones; bytes already read are held and
//!   delivered after the heal, as TCP would retransmit them);
//! - `reset`: cut every open connection with an RST (SO_LINGER 0) and reset
//!   new ones as soon as they are accepted (the dialer sees a refused link);
//! - `delay`: deliver every chunk after `latency_ms` plus a uniform jitter in
//!   `0..=jitter_ms`, in order.
//!
//! Bytes are never dropped in the middle of a stream: faults cut whole
//! connections. [`ProxyMesh::apply`] sets a whole link matrix at once (the
//! nemesis's partitions), [`ProxyMesh::heal`] sets every link back to `pass`.
//! The mesh runs on a current-thread runtime on a thread of its own, not on
//! the harness's: with one client every write waits for proxied replication
//! round trips, and proxy tasks queued behind client and nemesis work on the
//! shared workers added latency. Dropping the mesh stops that thread, which
//! closes every listener and connection.

mod link;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use link::{LinkCounters, LinkStats};

use crate::cluster::NodeId;

/// How one directed link treats its traffic. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "mode")]
pub enum LinkMode {
    Pass,
    Stall,
    Reset,
    Delay { latency_ms: u64, jitter_ms: u64 },
}

impl LinkMode {
    /// The name used in nemesis event values: `pass`, `stall`, `reset`, `delay`.
    pub fn name(&self) -> &'static str {
        match self {
            LinkMode::Pass => "pass",
            LinkMode::Stall => "stall",
            LinkMode::Reset => "reset",
            LinkMode::Delay { .. } => "delay",
        }
    }

    /// Whether traffic can get through at all (possibly late).
    pub fn passes(&self) -> bool {
        matches!(self, LinkMode::Pass | LinkMode::Delay { .. })
    }
}

/// Errors of the proxy mesh.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("could not bind proxy for link {from}->{to}: {source}")]
    Bind {
        from: NodeId,
        to: NodeId,
        source: std::io::Error,
    },
    #[error("no proxy for link {from}->{to}")]
    UnknownLink { from: NodeId, to: NodeId },
    #[error("could not start the proxies' runtime: {source}")]
    Runtime { source: std::io::Error },
}

struct Link {
    listen: SocketAddr,
    upstream: SocketAddr,
    mode: watch::Sender<LinkMode>,
    counters: Arc<LinkCounters>,
    task: JoinHandle<()>,
}

/// One proxy per ordered pair of distinct nodes.
pub struct ProxyMesh {
    links: BTreeMap<(NodeId, NodeId), Link>,
    /// Tells the proxies' thread to drop its runtime (and with it every
    /// connection); `None` once sent.
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProxyMesh {
    /// Binds a proxy on 127.0.0.1 (a free port) for every ordered pair of
    /// distinct nodes in `targets` (node id → where that node listens for
    /// peers), all in `pass` mode. `seed` seeds the delay jitter.
    pub async fn bind(
        targets: &BTreeMap<NodeId, SocketAddr>,
        seed: u64,
    ) -> Result<Self, ProxyError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| ProxyError::Runtime { source })?;
        let handle = runtime.handle().clone();
        let (shutdown, done) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("proxy".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = done.await;
                });
            })
            .map_err(|source| ProxyError::Runtime { source })?;
        let mut links = BTreeMap::new();
        for &from in targets.keys() {
            for (&to, &upstream) in targets {
                if from == to {
                    continue;
                }
                // Bound here, registered with the proxies' runtime in `serve`.
                let listener = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.set_nonblocking(true).map(|()| l))
                    .map_err(|source| ProxyError::Bind { from, to, source })?;
                let listen = listener.local_addr().map_err(|source| ProxyError::Bind {
                    from,
                    to,
                    source,
                })?;
                let (tx, rx) = watch::channel(LinkMode::Pass);
                let counters = Arc::new(LinkCounters::default());
                let link_seed = seed ^ (from << 32 | to).wrapping_mul(0xA24B_AED4_963E_E407);
                let task = handle.spawn(link::serve(
                    listener,
                    upstream,
                    rx,
                    counters.clone(),
                    link_seed,
                ));
                links.insert(
                    (from, to),
                    Link {
                        listen,
                        upstream,
                        mode: tx,
                        counters,
                        task,
                    },
                );
            }
        }
        tracing::debug!(links = links.len(), "proxy mesh up");
        Ok(ProxyMesh {
            links,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Where node `from` must dial to reach node `to`.
    pub fn listen_addr(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        self.links.get(&(from, to)).map(|l| l.listen)
    }

    /// Where the proxy of link `from`→`to` connects to.
    pub fn upstream_addr(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        self.links.get(&(from, to)).map(|l| l.upstream)
    }

    /// Every node the mesh connects.
    pub fn nodes(&self) -> Vec<NodeId> {
        let mut v: Vec<_> = self.links.keys().map(|(f, _)| *f).collect();
        v.dedup();
        v
    }

    /// Sets the mode of one link; open connections follow at once.
    pub fn set_mode(&self, from: NodeId, to: NodeId, mode: LinkMode) -> Result<(), ProxyError> {
        let link = self
            .links
            .get(&(from, to))
            .ok_or(ProxyError::UnknownLink { from, to })?;
        link.mode.send_replace(mode);
        Ok(())
    }

    /// The mode of one link.
    pub fn mode(&self, from: NodeId, to: NodeId) -> Option<LinkMode> {
        self.links.get(&(from, to)).map(|l| *l.mode.borrow())
    }

    /// Sets every link named in `links`; links not named are left as they are.
    /// Validates all links before changing any.
    pub fn apply(&self, links: &[(NodeId, NodeId, LinkMode)]) -> Result<(), ProxyError> {
        for &(from, to, _) in links {
            if !self.links.contains_key(&(from, to)) {
                return Err(ProxyError::UnknownLink { from, to });
            }
        }
        for &(from, to, mode) in links {
            self.set_mode(from, to, mode)?;
        }
        Ok(())
    }

    /// Every link back to `pass`.
    pub fn heal(&self) {
        for link in self.links.values() {
            link.mode.send_replace(LinkMode::Pass);
        }
    }

    /// The whole link matrix, ordered by (from, to).
    pub fn matrix(&self) -> Vec<(NodeId, NodeId, LinkMode)> {
        self.links
            .iter()
            .map(|(&(f, t), l)| (f, t, *l.mode.borrow()))
            .collect()
    }

    /// Counters of one link.
    pub fn stats(&self, from: NodeId, to: NodeId) -> Option<LinkStats> {
        self.links.get(&(from, to)).map(|l| l.counters.snapshot())
    }
}

impl Drop for ProxyMesh {
    fn drop(&mut self) {
        for link in self.links.values() {
            link.task.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Brief: the thread only drops its tasks and sockets.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
