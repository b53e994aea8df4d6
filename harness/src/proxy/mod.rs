//! The proxy mesh: a TCP proxy on every directed link i→j between the
//! nodes, so that the nemesis can cut any link on its own, without root.
//!
//! Two kinds of mesh share one link matrix, one [`LinkMode`] per ordered
//! pair, and every method (`apply`, `heal`, `matrix`, `stats`), so
//! partition shapes and nemesis events are the same for both:
//!
//! - **A listener per link** ([`ProxyMesh::bind`]), for systems that let us
//!   say where each member dials each peer. Node i is started with
//!   `--peer j=<proxy i→j>` (docs/node.md), so every connection node i opens
//!   to node j goes through the proxy of link i→j, and the replies come back
//!   on the same connection. Link i→j governs both directions of those
//!   connections: cutting it stops node i from reaching node j (its requests
//!   and their replies) while j can still reach i over link j→i.
//! - **A listener per destination** ([`ProxyMesh::bind_identified`]), for
//!   systems whose members all dial one advertised peer URL per member
//!   (etcd). Member j advertises the proxy's listener for j; on accept, the
//!   proxy names the dialing member from `/proc` ([`identify`]) and routes
//!   the connection through the matrix. Here link a→b governs the **bytes
//!   flowing from a to b on any connection between them, whichever of the
//!   two dialled it**: a connection dialled by a to b sends its request
//!   bytes through link a→b and its response bytes through link b→a. That is
//!   what a one-way fault means at the level of messages, and it is the only
//!   rule that holds for etcd, whose long-lived streams are dialled by the
//!   *receiver* (member a dials b to read b's messages to a), while its
//!   pipeline POSTs are dialled by the sender.
//!   A member that comes back as a new member gets a listener of its own
//!   ([`ProxyMesh::add_destination`]): a peer URL nobody has seen, under
//!   the same links.
//!
//! Each link has a [`LinkMode`]:
//! - `pass`: forward;
//! - `stall`: forward nothing (no new connection to the target when the
//!   dialer's own direction is stalled, no bytes on open ones; bytes already
//!   read are held and delivered after the heal, as TCP would retransmit
//!   them);
//! - `reset`: cut every open connection with an RST (SO_LINGER 0) and reset
//!   new ones as soon as they are accepted (the dialer sees a refused link).
//!   An RST cuts both directions of a connection, so in a mesh per
//!   destination a connection is cut when *either* of its links resets;
//! - `delay`: deliver every chunk after `latency_ms` plus a uniform jitter in
//!   `0..=jitter_ms`, in order.
//!
//! Bytes are never dropped in the middle of a stream: faults cut whole
//! connections. [`ProxyMesh::apply`] sets a whole link matrix at once (the
//! nemesis's partitions), [`ProxyMesh::heal`] sets every link back to `pass`.
//! A connection's counters ([`LinkStats`]) belong to the link its dialer
//! used, in both kinds of mesh.
//!
//! # One-way partitions of etcd
//!
//! With every link out of member a stalled (a→x for all x) and the links
//! into it passing, nothing a sends reaches anyone: its heartbeats, votes,
//! appends and responses, and its HTTP requests that would open new streams.
//! What the others send still reaches a: on the streams a opened before the
//! cut, and on pipeline POSTs they dial to a (a's HTTP response is held, so
//! their POST waits; the message itself has arrived). In Raft terms, if a
//! led, the others elect a new leader; a hears it, steps down and follows
//! the new leader in its term (with `--pre-vote`; without it, a may first
//! campaign into a higher term nobody hears), yet a's proposals and read
//! index requests never get out: writes and linearizable reads through a
//! time out. (Seen on etcd 3.4.23 with `--pre-vote`: the test
//! `a_leader_cut_one_way_hears_the_new_leader_but_cannot_be_heard`.) The new
//! leader never hears a's acknowledgements either, so it does not advance
//! a's commit index: a's serializable reads stay stale. A stall of a single
//! link a→b does the same to that one pair.
//!
//! # Connections nobody can name
//!
//! A mesh per destination fails closed: a connection whose dialer is not a
//! member (another program dialled the proxy) or no longer exists (it closed
//! or exited before the lookup) is reset at once, counted in
//! [`IdentifyStats::unidentified`] and logged at `warn`. Letting it through
//! could carry a member's traffic across a partition; a member that was
//! refused by mistake only dials again. Identification runs on a blocking
//! thread after accept; bytes the dialer sends meanwhile wait in the socket.
//!
//! How long it takes, measured by `cargo bench -p harness --bench etcd` on
//! 2 cores shared with other builds (load average about 8): over 1123 peer
//! connections of a 3-member etcd cluster whose links were all reset 40
//! times, 0 went unidentified; accept to identified took a median of
//! 0.788 ms (p99 11.149 ms, max 19.634 ms), of which the lookup itself
//! 0.174 ms (p99 1.660 ms, max 2.890 ms); the rest is waiting for threads.
//! etcd's connections are long-lived, so this is paid once per connection.
//!
//! The mesh runs on a current-thread runtime on a thread of its own, not on
//! the harness's: with one client every write waits for proxied replication
//! round trips, and proxy tasks queued behind client and nemesis work on the
//! shared workers added latency. Dropping the mesh stops that thread, which
//! closes every listener and connection.

mod destination;
pub mod identify;
mod link;
mod sockdiag;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use identify::{IdentifyStats, MemberPids, Unidentified};
pub use link::{LinkCounters, LinkStats};

use identify::IdentifyCounters;

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
    #[error("could not bind the proxy in front of node {to}: {source}")]
    BindDestination { to: NodeId, source: std::io::Error },
    #[error("no proxy for link {from}->{to}")]
    UnknownLink { from: NodeId, to: NodeId },
    #[error("no listener in front of node {to} to add to (only a mesh with a listener per destination has them)")]
    UnknownDestination { to: NodeId },
    #[error("could not start the proxies' runtime: {source}")]
    Runtime { source: std::io::Error },
}

struct Link {
    /// Where the dialer connects: the link's own listener, or the
    /// destination's in an identified mesh.
    listen: SocketAddr,
    upstream: SocketAddr,
    mode: watch::Sender<LinkMode>,
    counters: Arc<LinkCounters>,
}

/// The proxies between the nodes: one [`Link`] per ordered pair of distinct
/// nodes, served by a listener per link or a listener per destination.
pub struct ProxyMesh {
    links: BTreeMap<(NodeId, NodeId), Link>,
    /// The accept loops; aborted on drop.
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Per-destination listeners: where every member dials member j (the
    /// newest listener of j, see [`ProxyMesh::add_destination`]).
    destinations: Mutex<BTreeMap<NodeId, SocketAddr>>,
    /// What a new listener per destination needs; `None` in a mesh with a
    /// listener per link.
    identified: Option<Identified>,
    identify: Option<Arc<IdentifyCounters>>,
    /// Tells the proxies' thread to drop its runtime (and with it every
    /// connection); `None` once sent.
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// The parts of an identified mesh from which another listener for a
/// destination is made.
struct Identified {
    handle: tokio::runtime::Handle,
    pairs: BTreeMap<NodeId, BTreeMap<NodeId, destination::Pair>>,
    upstreams: BTreeMap<NodeId, SocketAddr>,
    members: Arc<dyn MemberPids>,
    stats: Arc<IdentifyCounters>,
    seed: u64,
}

impl Identified {
    /// Binds a listener for `to` and serves it on the proxies' runtime.
    fn listen(&self, to: NodeId) -> Result<(SocketAddr, JoinHandle<()>), ProxyError> {
        let bind = |source| ProxyError::BindDestination { to, source };
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(bind)?;
        l.set_nonblocking(true).map_err(bind)?;
        let addr = l.local_addr().map_err(bind)?;
        let (own, _) = watch::channel(LinkMode::Pass);
        let task = self.handle.spawn(destination::serve(
            l,
            destination::Destination {
                to,
                upstream: self.upstreams[&to],
                pairs: self.pairs[&to].clone(),
                members: self.members.clone(),
                stats: self.stats.clone(),
                own,
                own_counters: Arc::new(LinkCounters::default()),
                seed: self.seed,
            },
        ));
        Ok((addr, task))
    }
}

/// The proxies' own runtime, on a thread of its own (see the module docs).
struct ProxyThread {
    handle: tokio::runtime::Handle,
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

fn proxy_thread() -> Result<ProxyThread, ProxyError> {
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
    Ok(ProxyThread {
        handle,
        shutdown,
        thread,
    })
}

/// A non-blocking listener on a free port of 127.0.0.1, registered with the
/// proxies' runtime later, in `serve`.
fn listener(from: NodeId, to: NodeId) -> Result<(std::net::TcpListener, SocketAddr), ProxyError> {
    let bind = |source| ProxyError::Bind { from, to, source };
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(bind)?;
    l.set_nonblocking(true).map_err(bind)?;
    let addr = l.local_addr().map_err(bind)?;
    Ok((l, addr))
}

fn link_seed(seed: u64, from: NodeId, to: NodeId) -> u64 {
    seed ^ (from << 32 | to).wrapping_mul(0xA24B_AED4_963E_E407)
}

impl ProxyMesh {
    /// Binds a proxy on 127.0.0.1 (a free port) for every ordered pair of
    /// distinct nodes in `targets` (node id → where that node listens for
    /// peers), all in `pass` mode. `seed` seeds the delay jitter.
    pub async fn bind(
        targets: &BTreeMap<NodeId, SocketAddr>,
        seed: u64,
    ) -> Result<Self, ProxyError> {
        let rt = proxy_thread()?;
        let mut links = BTreeMap::new();
        let mut tasks = Vec::new();
        for &from in targets.keys() {
            for (&to, &upstream) in targets {
                if from == to {
                    continue;
                }
                let (l, listen) = listener(from, to)?;
                let (tx, rx) = watch::channel(LinkMode::Pass);
                let counters = Arc::new(LinkCounters::default());
                tasks.push(rt.handle.spawn(link::serve(
                    l,
                    upstream,
                    rx,
                    counters.clone(),
                    link_seed(seed, from, to),
                )));
                links.insert(
                    (from, to),
                    Link {
                        listen,
                        upstream,
                        mode: tx,
                        counters,
                    },
                );
            }
        }
        tracing::debug!(links = links.len(), "proxy mesh up");
        Ok(ProxyMesh {
            links,
            tasks: Mutex::new(tasks),
            destinations: Mutex::new(BTreeMap::new()),
            identified: None,
            identify: None,
            shutdown: Some(rt.shutdown),
            thread: Some(rt.thread),
        })
    }

    /// Binds one listener per node in `targets`, where every other node
    /// dials it (etcd's advertised peer URL), and names the dialer of each
    /// connection from `/proc` among the processes `members` reports (see
    /// [`identify`]). The links, their modes and every method below are
    /// those of [`ProxyMesh::bind`]; see the module docs for what a link
    /// governs here and what happens to a connection nobody can name.
    pub async fn bind_identified(
        targets: &BTreeMap<NodeId, SocketAddr>,
        members: Arc<dyn MemberPids>,
        seed: u64,
    ) -> Result<Self, ProxyError> {
        let rt = proxy_thread()?;
        let mut links = BTreeMap::new();
        let mut receivers = BTreeMap::new();
        for &from in targets.keys() {
            for (&to, &upstream) in targets {
                if from == to {
                    continue;
                }
                let (tx, rx) = watch::channel(LinkMode::Pass);
                let counters = Arc::new(LinkCounters::default());
                receivers.insert((from, to), (rx, counters.clone()));
                links.insert(
                    (from, to),
                    Link {
                        // Set below, once the destination's listener is bound.
                        listen: upstream,
                        upstream,
                        mode: tx,
                        counters,
                    },
                );
            }
        }
        let pairs = targets
            .keys()
            .map(|&to| {
                let of_to = targets
                    .keys()
                    .filter(|&&o| o != to)
                    .map(|&other| {
                        let (inbound, counters) = receivers[&(other, to)].clone();
                        let outbound = receivers[&(to, other)].0.clone();
                        (
                            other,
                            destination::Pair {
                                inbound,
                                outbound,
                                counters,
                            },
                        )
                    })
                    .collect();
                (to, of_to)
            })
            .collect();
        let stats = Arc::new(IdentifyCounters::default());
        let identified = Identified {
            handle: rt.handle.clone(),
            pairs,
            upstreams: targets.clone(),
            members,
            stats: stats.clone(),
            seed,
        };
        let mut tasks = Vec::new();
        let mut destinations = BTreeMap::new();
        for &to in targets.keys() {
            let (addr, task) = identified.listen(to)?;
            tasks.push(task);
            destinations.insert(to, addr);
            for ((_, t), link) in links.iter_mut() {
                if *t == to {
                    link.listen = addr;
                }
            }
        }
        tracing::debug!(
            links = links.len(),
            listeners = destinations.len(),
            "identified proxy mesh up"
        );
        Ok(ProxyMesh {
            links,
            tasks: Mutex::new(tasks),
            destinations: Mutex::new(destinations),
            identified: Some(identified),
            identify: Some(stats),
            shutdown: Some(rt.shutdown),
            thread: Some(rt.thread),
        })
    }

    /// In a mesh bound with [`ProxyMesh::bind_identified`], another listener
    /// for node `to`, with the same links, which becomes the address
    /// [`ProxyMesh::destination_addr`] gives; the older ones keep serving.
    /// A member that comes back as a new member advertises a peer address
    /// no member has ever seen (etcd matches members by peer URL, so a
    /// member that still lists the removed one under its old address would
    /// otherwise hand the newcomer the removed member's identity).
    pub fn add_destination(&self, to: NodeId) -> Result<SocketAddr, ProxyError> {
        let identified = self
            .identified
            .as_ref()
            .ok_or(ProxyError::UnknownDestination { to })?;
        if !identified.upstreams.contains_key(&to) {
            return Err(ProxyError::UnknownDestination { to });
        }
        let (addr, task) = identified.listen(to)?;
        lock(&self.tasks).push(task);
        lock(&self.destinations).insert(to, addr);
        Ok(addr)
    }

    /// In a mesh bound with [`ProxyMesh::bind_identified`], where every node
    /// dials node `to` (the peer URL to advertise for `to`); `None` in a mesh
    /// with a listener per link.
    pub fn destination_addr(&self, to: NodeId) -> Option<SocketAddr> {
        lock(&self.destinations).get(&to).copied()
    }

    /// Whether the mesh names dialers from `/proc` (a listener per destination).
    pub fn is_identified(&self) -> bool {
        self.identify.is_some()
    }

    /// How many connections were named or not, and how long naming took;
    /// `None` in a mesh with a listener per link.
    pub fn identify_stats(&self) -> Option<IdentifyStats> {
        self.identify.as_ref().map(|c| c.snapshot())
    }

    /// Where node `from` must dial to reach node `to` (in an identified mesh,
    /// the same address for every `from`: the newest listener of `to`).
    pub fn listen_addr(&self, from: NodeId, to: NodeId) -> Option<SocketAddr> {
        let link = self.links.get(&(from, to))?;
        Some(self.destination_addr(to).unwrap_or(link.listen))
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
        for task in lock(&self.tasks).iter() {
            task.abort();
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
