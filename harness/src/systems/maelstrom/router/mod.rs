//! The network of Maelstrom-protocol nodes: every line a node writes to its
//! stdout is read here and routed by its `dest`.
//!
//! - To a node: through the directed link (emitting process → dest). The
//!   emitting process decides the link, never the `src` field: a node may
//!   forward a client's request unchanged, and a partition must still cut it.
//!   Each link has a [`LinkMode`] with the proxy mesh's meaning (`pass`;
//!   `stall`: held, delivered in order after the heal; `reset`: dropped, as
//!   the messages of a cut connection are; `delay`: latency plus jitter, in
//!   order) and [`MessageFaults`] on single messages (seeded drop,
//!   duplicate, reorder, delay).
//! - To a client (`c…`): completes that client's pending call with the same
//!   `in_reply_to`, whichever node answers (a follower may have forwarded the
//!   request to the leader, which answers directly). Replies nobody waits
//!   for go to the client's mailbox if it has one, else they are counted late.
//!
//! Lines that are not JSON, have no `dest`, or name an unknown node are
//! logged and counted, never fatal. A message in flight to a node that dies
//! (or restarts) before delivery is lost, as it would be on a TCP
//! connection. Clients talk to nodes directly, outside the link matrix (as
//! in Maelstrom, partitions are between nodes).
//!
//! Every queue is bounded ([`RouterConfig::queue_limit`] messages per link
//! and per node's stdin): when full, its oldest message is dropped and
//! counted (`overflow`), never the sender blocked (see [`queue`] for why).
//!
//! Every routed message can be logged to a JSON-lines file (`nodes/net.jsonl`
//! in a run folder): `{time, from, to, type, action}`, one line per fate
//! (`deliver`, `drop`, `cut`, `hold`, `delay`, `duplicate`, `reorder`, `dead`,
//! `overflow`, `client`, `late`, `malformed`, `unknown-dest`). The [`Observer`] watches
//! every message a node sends for election safety.
//!
//! The router spawns no process: it is handed each node's stdin and stdout
//! ([`Router::attach`]), sends `init` first and waits for `init_ok`. Its
//! tasks run on a current-thread runtime on a thread of its own (like the
//! proxy mesh), so that client and nemesis work never queues in front of a
//! message. Dropping the router stops that thread and closes every node's
//! stdin.

mod link;
mod netlog;
mod pipes;
mod queue;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::faults::{BadProbability, Fate, MessageFaults, REORDER_WINDOW};
use super::observe::{Observation, ObserveConfig, Observer, Violation, WireStatus};
use super::{node_name, ROUTER_CLIENT};
use crate::cluster::NodeId;
use crate::proxy::LinkMode;
use link::{Item, Link};
use netlog::{unix_ns, Action, NetLog};
use queue::{Pushed, Queue};
pub use stats::RouterStats;
use stats::{bump, Counters};

/// Messages a queue holds before it drops its oldest: a link stalled for
/// seconds under a busy leader, a node paused as long.
pub const DEFAULT_QUEUE_LIMIT: usize = 4096;

/// How to build a router.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// The nodes (named `n<id>` on the wire); links connect every ordered pair.
    pub nodes: Vec<NodeId>,
    /// Seeds every random decision (message faults, delay jitter).
    pub seed: u64,
    /// Where to log every message's fate (JSON lines), if anywhere.
    pub net_log: Option<PathBuf>,
    pub observe: ObserveConfig,
    /// How long a node may take to answer `init`.
    pub init_timeout: Duration,
    /// Longer lines are counted malformed and skipped.
    pub max_line_bytes: usize,
    /// Messages each link, and each node's stdin, may hold before the
    /// oldest is dropped.
    pub queue_limit: usize,
}

impl RouterConfig {
    pub fn new(nodes: Vec<NodeId>, seed: u64) -> Self {
        RouterConfig {
            nodes,
            seed,
            net_log: None,
            observe: ObserveConfig::default(),
            init_timeout: Duration::from_secs(10),
            max_line_bytes: 64 * 1024 * 1024,
            queue_limit: DEFAULT_QUEUE_LIMIT,
        }
    }
}

/// Errors of the router.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("unknown node {0}")]
    UnknownNode(NodeId),
    #[error("no link {from}->{to}")]
    UnknownLink { from: NodeId, to: NodeId },
    #[error("cannot start the router's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot create the message log {path}: {source}")]
    NetLog {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot use the pipes of node {id}: {source}")]
    Pipes { id: NodeId, source: std::io::Error },
    #[error("node {id} did not answer init within {waited_ms} ms")]
    InitTimeout { id: NodeId, waited_ms: u128 },
    #[error("node {id} answered init with {body}")]
    InitRefused { id: NodeId, body: String },
    #[error(transparent)]
    Faults(#[from] BadProbability),
}

/// A client call that got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The request never reached a node (it is not running).
    NotSent(String),
    /// No reply within the timeout.
    Timeout,
}

/// A message a node sent to a client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientMessage {
    /// The node that wrote it (not necessarily the one the client asked).
    pub node: NodeId,
    pub body: Value,
}

#[derive(Default)]
struct Slot {
    generation: u64,
    writer: Option<Arc<Queue<Bytes>>>,
}

impl Slot {
    /// Forgets the writer; its task ends and the node's stdin closes.
    fn close(&mut self) {
        if let Some(w) = self.writer.take() {
            w.close();
        }
    }
}

type PendingKey = (String, u64);

struct Shared {
    names: BTreeMap<NodeId, String>,
    ids: HashMap<String, NodeId>,
    slots: Mutex<HashMap<NodeId, Slot>>,
    links: HashMap<(NodeId, NodeId), Link>,
    pending: Mutex<HashMap<PendingKey, oneshot::Sender<ClientMessage>>>,
    mailboxes: Mutex<HashMap<String, mpsc::UnboundedSender<ClientMessage>>>,
    observer: Mutex<Observer>,
    counters: Counters,
    net_log: Option<NetLog>,
    handle: tokio::runtime::Handle,
    next_control_id: AtomicU64,
    init_timeout: Duration,
    max_line_bytes: usize,
    queue_limit: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking task must not take the whole network down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The router. See the module docs.
pub struct Router {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Router {
    /// Starts the router's thread and one link per ordered pair of nodes,
    /// all in `pass` mode without message faults.
    pub fn new(cfg: RouterConfig) -> Result<Router, RouterError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RouterError::Runtime)?;
        let handle = runtime.handle().clone();
        let (shutdown, done) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("maelstrom-router".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = done.await;
                });
            })
            .map_err(RouterError::Runtime)?;
        let net_log = match &cfg.net_log {
            Some(path) => Some(NetLog::create(path).map_err(|source| RouterError::NetLog {
                path: path.display().to_string(),
                source,
            })?),
            None => None,
        };
        let names: BTreeMap<NodeId, String> =
            cfg.nodes.iter().map(|&id| (id, node_name(id))).collect();
        let ids = names.iter().map(|(&id, n)| (n.clone(), id)).collect();
        let queue_limit = cfg.queue_limit.max(1);
        let mut links = HashMap::new();
        let mut receivers = Vec::new();
        for &from in names.keys() {
            for &to in names.keys() {
                if from == to {
                    continue;
                }
                let link_seed = cfg.seed ^ (from << 32 | to).wrapping_mul(0xA24B_AED4_963E_E407);
                let (link, mode_rx) = Link::new(link_seed, queue_limit);
                receivers.push((
                    from,
                    to,
                    link.queue.clone(),
                    mode_rx,
                    link_seed.rotate_left(17),
                ));
                links.insert((from, to), link);
            }
        }
        let shared = Arc::new(Shared {
            names,
            ids,
            slots: Mutex::new(HashMap::new()),
            links,
            pending: Mutex::new(HashMap::new()),
            mailboxes: Mutex::new(HashMap::new()),
            observer: Mutex::new(Observer::new(cfg.observe.clone())),
            counters: Counters::default(),
            net_log,
            handle: handle.clone(),
            next_control_id: AtomicU64::new(1),
            init_timeout: cfg.init_timeout,
            max_line_bytes: cfg.max_line_bytes.max(1024),
            queue_limit,
        });
        for (from, to, queue_rx, mode_rx, seed) in receivers {
            handle.spawn(link::run_link(
                shared.clone(),
                from,
                to,
                queue_rx,
                mode_rx,
                seed,
            ));
        }
        if shared.net_log.is_some() {
            let s = Arc::downgrade(&shared);
            handle.spawn(async move {
                let mut every = tokio::time::interval(Duration::from_millis(200));
                loop {
                    every.tick().await;
                    let Some(s) = s.upgrade() else { return };
                    s.flush_log();
                }
            });
        }
        Ok(Router {
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Every node of the network.
    pub fn nodes(&self) -> Vec<NodeId> {
        self.shared.names.keys().copied().collect()
    }

    /// Takes over a freshly started node's pipes: sends `init` (from the
    /// router's own client id) before anything else, starts routing what
    /// the node writes, and resolves once the node answered `init_ok`.
    /// Attaching again (after a restart) replaces the previous incarnation.
    pub async fn attach(
        &self,
        id: NodeId,
        stdin: std::process::ChildStdin,
        stdout: std::process::ChildStdout,
    ) -> Result<(), RouterError> {
        let s = &self.shared;
        let name = s.names.get(&id).ok_or(RouterError::UnknownNode(id))?;
        let (stdin, stdout) = {
            let _ctx = s.handle.enter();
            let pipes = |source| RouterError::Pipes { id, source };
            (
                tokio::process::ChildStdin::from_std(stdin).map_err(pipes)?,
                tokio::process::ChildStdout::from_std(stdout).map_err(pipes)?,
            )
        };
        let msg_id = s.next_control_id.fetch_add(1, Ordering::Relaxed);
        let init = json!({
            "type": "init",
            "msg_id": msg_id,
            "node_id": name,
            "node_ids": s.names.values().collect::<Vec<_>>(),
        });
        let (reply_tx, reply_rx) = oneshot::channel();
        lock(&s.pending).insert((ROUTER_CLIENT.to_string(), msg_id), reply_tx);
        let writer = Arc::new(Queue::new(s.queue_limit));
        // Queued before the slot is published, so init is the first line.
        writer.push(envelope(ROUTER_CLIENT, name, &init));
        let generation = {
            let mut slots = lock(&s.slots);
            let slot = slots.entry(id).or_default();
            slot.close();
            slot.generation += 1;
            slot.writer = Some(writer.clone());
            slot.generation
        };
        s.handle.spawn(pipes::write_node(id, writer, stdin));
        s.handle
            .spawn(pipes::read_node(s.clone(), id, generation, stdout));
        let started = Instant::now();
        match tokio::time::timeout(s.init_timeout, reply_rx).await {
            Ok(Ok(m)) if m.body.get("type").and_then(Value::as_str) == Some("init_ok") => Ok(()),
            Ok(Ok(m)) => Err(RouterError::InitRefused {
                id,
                body: m.body.to_string(),
            }),
            Ok(Err(_)) | Err(_) => {
                lock(&s.pending).remove(&(ROUTER_CLIENT.to_string(), msg_id));
                Err(RouterError::InitTimeout {
                    id,
                    waited_ms: started.elapsed().as_millis(),
                })
            }
        }
    }

    /// Forgets node `id`'s pipes (it was killed): its stdin closes and
    /// messages to it are lost until it is attached again.
    pub fn detach(&self, id: NodeId) {
        if let Some(slot) = lock(&self.shared.slots).get_mut(&id) {
            slot.generation += 1;
            slot.close();
        }
    }

    /// Whether node `id` has pipes attached (it is running, or paused).
    pub fn is_attached(&self, id: NodeId) -> bool {
        lock(&self.shared.slots)
            .get(&id)
            .and_then(|s| s.writer.as_ref())
            .is_some_and(|w| !w.is_closed())
    }

    /// Sends a client request to node `id` and waits for the reply with the
    /// same `in_reply_to` from any node. `body` must carry a `msg_id` unique
    /// for this client.
    pub async fn call(
        &self,
        client: &str,
        node: NodeId,
        body: Value,
        timeout: Duration,
    ) -> Result<ClientMessage, CallError> {
        let s = &self.shared;
        let Some(msg_id) = body.get("msg_id").and_then(Value::as_u64) else {
            return Err(CallError::NotSent("a request needs a msg_id".into()));
        };
        let name = s
            .names
            .get(&node)
            .ok_or_else(|| CallError::NotSent(format!("unknown node {node}")))?;
        let key = (client.to_string(), msg_id);
        let (tx, rx) = oneshot::channel();
        lock(&s.pending).insert(key.clone(), tx);
        let line = envelope(client, name, &body);
        if !s.write_line(node, line, None) {
            lock(&s.pending).remove(&key);
            bump(&s.counters.dead);
            return Err(CallError::NotSent(format!("{name} is not running")));
        }
        s.log_event(client, name, kind_of(&body), Action::Deliver);
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) | Err(_) => {
                lock(&s.pending).remove(&key);
                Err(CallError::Timeout)
            }
        }
    }

    /// Messages to `client` that no call waits for (the previous mailbox of
    /// that client, if any, is replaced).
    pub fn mailbox(&self, client: &str) -> mpsc::UnboundedReceiver<ClientMessage> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.shared.mailboxes).insert(client.to_string(), tx);
        rx
    }

    /// Sets the mode of one link; messages already held by a `stall` follow
    /// the new mode at once.
    pub fn set_mode(&self, from: NodeId, to: NodeId, mode: LinkMode) -> Result<(), RouterError> {
        self.link(from, to)?.mode.send_replace(mode);
        Ok(())
    }

    /// The mode of one link.
    pub fn mode(&self, from: NodeId, to: NodeId) -> Option<LinkMode> {
        self.shared.links.get(&(from, to)).map(|l| *l.mode.borrow())
    }

    /// Sets every link named (validated first, as the proxy mesh does).
    pub fn apply(&self, links: &[(NodeId, NodeId, LinkMode)]) -> Result<(), RouterError> {
        for &(from, to, _) in links {
            self.link(from, to)?;
        }
        for &(from, to, mode) in links {
            self.set_mode(from, to, mode)?;
        }
        Ok(())
    }

    /// The whole link matrix, ordered by (from, to).
    pub fn matrix(&self) -> Vec<(NodeId, NodeId, LinkMode)> {
        let mut m: Vec<_> = self
            .shared
            .links
            .iter()
            .map(|(&(f, t), l)| (f, t, *l.mode.borrow()))
            .collect();
        m.sort_by_key(|&(f, t, _)| (f, t));
        m
    }

    /// Sets the message faults of one link.
    pub fn set_faults(
        &self,
        from: NodeId,
        to: NodeId,
        faults: MessageFaults,
    ) -> Result<(), RouterError> {
        faults.validate()?;
        lock(&self.link(from, to)?.faults).faults = faults;
        Ok(())
    }

    /// Sets the same message faults on every link.
    pub fn set_all_faults(&self, faults: MessageFaults) -> Result<(), RouterError> {
        faults.validate()?;
        for link in self.shared.links.values() {
            lock(&link.faults).faults = faults;
        }
        Ok(())
    }

    /// Every link back to `pass`. Message faults stay: they are the
    /// network's weather for the whole run, not a fault the nemesis undoes
    /// (`set_all_faults(MessageFaults::none())` clears them).
    pub fn heal(&self) {
        for link in self.shared.links.values() {
            link.mode.send_replace(LinkMode::Pass);
        }
    }

    /// Node `id`'s Raft state as its messages show it (see
    /// [`Observer::status`]).
    pub fn status(&self, id: NodeId) -> Option<WireStatus> {
        let name = self.shared.names.get(&id)?;
        lock(&self.shared.observer).status(name)
    }

    /// The node id of a wire name (`n3` → 3), if it is one of the network's.
    pub fn node_id(&self, name: &str) -> Option<NodeId> {
        self.shared.ids.get(name).copied()
    }

    /// Election-safety observations so far.
    pub fn observations(&self) -> Vec<Observation> {
        lock(&self.shared.observer).observations().to_vec()
    }

    /// Election-safety violations so far.
    pub fn violations(&self) -> Vec<Violation> {
        lock(&self.shared.observer).violations().to_vec()
    }

    /// The node that sent leader messages in the highest term seen, and the term.
    pub fn latest_leader(&self) -> Option<(NodeId, u64)> {
        let (name, term) = lock(&self.shared.observer).latest_leader()?;
        Some((*self.shared.ids.get(&name)?, term))
    }

    pub fn stats(&self) -> RouterStats {
        self.shared.counters.snapshot()
    }

    /// Hands the message log to the kernel.
    pub fn flush_log(&self) {
        self.shared.flush_log();
    }

    fn link(&self, from: NodeId, to: NodeId) -> Result<&Link, RouterError> {
        self.shared
            .links
            .get(&(from, to))
            .ok_or(RouterError::UnknownLink { from, to })
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.shared.flush_log();
        for slot in lock(&self.shared.slots).values_mut() {
            slot.close();
        }
        lock(&self.shared.slots).clear();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Brief: the thread only drops its tasks and pipes.
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn envelope(src: &str, dest: &str, body: &Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"src": src, "dest": dest, "body": body}))
        .expect("a JSON value always serializes");
    line.push(b'\n');
    Bytes::from(line)
}

fn kind_of(body: &Value) -> &str {
    body.get("type").and_then(Value::as_str).unwrap_or("?")
}

impl Shared {
    fn log_event(&self, from: &str, to: &str, kind: &str, action: Action) {
        if let Some(log) = &self.net_log {
            log.write(from, to, kind, action);
        }
    }

    fn flush_log(&self) {
        if let Some(log) = &self.net_log {
            log.flush();
        }
    }

    fn name(&self, id: NodeId) -> &str {
        self.names.get(&id).map_or("?", String::as_str)
    }

    /// Queues a line for node `id`'s stdin, if it is running (and, when
    /// given, still the incarnation the line was meant for).
    fn write_line(&self, id: NodeId, line: Bytes, generation: Option<u64>) -> bool {
        let slots = lock(&self.slots);
        let Some(slot) = slots.get(&id) else {
            return false;
        };
        if generation.is_some_and(|g| g != slot.generation) {
            return false;
        }
        let Some(writer) = slot.writer.as_ref() else {
            return false;
        };
        match writer.push(line) {
            Pushed::Queued => {}
            Pushed::Overflow(_) => {
                bump(&self.counters.overflow);
                self.log_event("?", self.name(id), "?", Action::Overflow);
            }
            Pushed::Closed(_) => return false,
        }
        bump(&self.counters.delivered);
        true
    }

    fn generation(&self, id: NodeId) -> u64 {
        lock(&self.slots).get(&id).map_or(0, |s| s.generation)
    }

    /// One line read from node `from`'s stdout.
    fn route(self: &Arc<Self>, from: NodeId, line: &[u8]) {
        let text = line.trim_ascii();
        if text.is_empty() {
            return;
        }
        let from_name = self.name(from).to_string();
        let v: Value = match serde_json::from_slice(text) {
            Ok(v) => v,
            Err(e) => return self.malformed(&from_name, &format!("not JSON: {e}"), text),
        };
        let Some(dest) = v.get("dest").and_then(Value::as_str) else {
            return self.malformed(&from_name, "no \"dest\" string", text);
        };
        let body = v.get("body").unwrap_or(&Value::Null);
        let kind = kind_of(body);
        let leader_term = lock(&self.observer).observe(unix_ns(), &from_name, dest, body);
        if let Some(&to) = self.ids.get(dest) {
            bump(&self.counters.routed);
            let mut line = Vec::with_capacity(text.len() + 1);
            line.extend_from_slice(text);
            line.push(b'\n');
            self.to_node(from, to, Bytes::from(line), kind, leader_term);
        } else if dest.starts_with('c') {
            self.to_client(from, &from_name, dest, body);
        } else {
            bump(&self.counters.unknown_dest);
            tracing::warn!(from = %from_name, dest, "message to an unknown destination: dropped");
            self.log_event(&from_name, dest, kind, Action::UnknownDest);
        }
    }

    fn malformed(&self, from: &str, why: &str, text: &[u8]) {
        bump(&self.counters.malformed);
        let shown = String::from_utf8_lossy(&text[..text.len().min(200)]).into_owned();
        tracing::warn!(node = from, why, line = %shown, "malformed line from a node: skipped");
        self.log_event(from, "?", "?", Action::Malformed);
    }

    fn to_client(&self, from: NodeId, from_name: &str, client: &str, body: &Value) {
        let reply = ClientMessage {
            node: from,
            body: body.clone(),
        };
        let waiter = body
            .get("in_reply_to")
            .and_then(Value::as_u64)
            .and_then(|irt| lock(&self.pending).remove(&(client.to_string(), irt)));
        let kind = kind_of(body);
        if let Some(tx) = waiter {
            bump(&self.counters.client_replies);
            self.log_event(from_name, client, kind, Action::Client);
            let _ = tx.send(reply);
        } else if let Some(mb) = lock(&self.mailboxes).get(client) {
            self.log_event(from_name, client, kind, Action::Client);
            let _ = mb.send(reply);
        } else {
            bump(&self.counters.late);
            tracing::debug!(from = from_name, client, kind, "reply nobody waits for");
            self.log_event(from_name, client, kind, Action::Late);
        }
    }

    fn to_node(
        self: &Arc<Self>,
        from: NodeId,
        to: NodeId,
        line: Bytes,
        kind: &str,
        leader_term: Option<u64>,
    ) {
        let (from_name, to_name) = (self.name(from), self.name(to));
        let item = Item {
            line,
            kind: Arc::from(kind),
            enqueued: Instant::now(),
            dest_generation: self.generation(to),
            leader_term,
        };
        if from == to {
            return self.deliver(from, to, &item);
        }
        let Some(link) = self.links.get(&(from, to)) else {
            return;
        };
        if *link.mode.borrow() == LinkMode::Stall {
            bump(&self.counters.held);
            self.log_event(from_name, to_name, kind, Action::Hold);
        }
        let mut lf = lock(&link.faults);
        let fate = if lf.faults.is_none() {
            Fate::Deliver {
                copies: 1,
                delay: None,
                reorder: false,
            }
        } else {
            let faults = lf.faults;
            faults.decide(&mut lf.rng)
        };
        let Fate::Deliver {
            copies,
            delay,
            reorder,
        } = fate
        else {
            bump(&self.counters.dropped);
            return self.log_event(from_name, to_name, kind, Action::Drop);
        };
        if copies > 1 {
            bump(&self.counters.duplicated);
            self.log_event(from_name, to_name, kind, Action::Duplicate);
        }
        for copy in 0..copies {
            if let Some(d) = delay {
                bump(&self.counters.delayed);
                self.log_event(from_name, to_name, kind, Action::Delay);
                let (shared, item) = (self.clone(), item.clone());
                self.handle.spawn(async move {
                    tokio::time::sleep(d).await;
                    let item = Item {
                        enqueued: Instant::now(),
                        ..item
                    };
                    shared.enqueue(from, to, item);
                });
            } else if let Some((held, _)) = lf.held.take() {
                self.enqueue(from, to, item.clone());
                self.enqueue(from, to, held);
            } else if reorder && copy == 0 {
                bump(&self.counters.reordered);
                self.log_event(from_name, to_name, kind, Action::Reorder);
                let token = lf.next_token;
                lf.next_token += 1;
                lf.held = Some((item.clone(), token));
                let shared = self.clone();
                self.handle.spawn(async move {
                    tokio::time::sleep(REORDER_WINDOW).await;
                    shared.release_held(from, to, token);
                });
            } else {
                self.enqueue(from, to, item.clone());
            }
        }
    }

    /// Queues a message on its link; a full link loses its oldest.
    fn enqueue(&self, from: NodeId, to: NodeId, item: Item) {
        let Some(link) = self.links.get(&(from, to)) else {
            return;
        };
        if let Pushed::Overflow(old) = link.queue.push(item) {
            bump(&self.counters.overflow);
            self.log_event(self.name(from), self.name(to), &old.kind, Action::Overflow);
        }
    }

    /// The reorder window passed with no successor: send the held message.
    fn release_held(&self, from: NodeId, to: NodeId, token: u64) {
        let Some(link) = self.links.get(&(from, to)) else {
            return;
        };
        let mut lf = lock(&link.faults);
        if lf.held.as_ref().is_some_and(|(_, t)| *t == token) {
            if let Some((item, _)) = lf.held.take() {
                drop(lf);
                self.enqueue(from, to, item);
            }
        }
    }

    fn deliver(&self, from: NodeId, to: NodeId, item: &Item) {
        let action = if self.write_line(to, item.line.clone(), Some(item.dest_generation)) {
            if let Some(term) = item.leader_term {
                lock(&self.observer).delivered(self.name(to), self.name(from), term);
            }
            Action::Deliver
        } else {
            bump(&self.counters.dead);
            Action::Dead
        };
        self.log_event(self.name(from), self.name(to), &item.kind, action);
    }
}
