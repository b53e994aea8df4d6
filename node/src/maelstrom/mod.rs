//! `node --maelstrom`: our Raft node speaking Maelstrom's protocol, so that a
//! Maelstrom-style host (Maelstrom itself, or the harness's router) can run
//! it like any of the hundreds of nodes written for Maelstrom.
//!
//! One JSON object per line on stdin (in) and stdout (out); logs go to
//! stderr, nothing else to stdout. The first line is `init`, which names this
//! node and all nodes (`n1…` become our ids 1…); the node answers `init_ok`
//! once its storage is recovered. After that, stdin carries
//! - lin-kv client requests `read`, `write`, `cas`. A leader serves them
//!   through the Raft loop (linearizable reads by ReadIndex). A follower
//!   forwards a request unchanged to the leader it knows, keeping `src` = the
//!   client, so the leader answers the client directly (it only adds a hop
//!   count, `forward_hops`: a request forwarded [`MAX_FORWARD_HOPS`] times
//!   is answered 11 instead of going round nodes with stale views of the
//!   leader); with no leader known it answers error 11 (temporarily
//!   unavailable, definite);
//! - Raft messages from the other nodes ([`wire`] has the names).
//!
//! Error codes: 20 key-does-not-exist (a read of a missing key, a cas on a
//! missing key), 22 precondition-failed (a cas whose `from` is not the
//! current value), 11 when the request definitely did not take effect
//! (no leader, leadership lost before the entry was appended, overloaded),
//! 0 timeout when the request waited longer than `--request-timeout-ms` and
//! 1000 when a write's fate is otherwise unknown (both indefinite: the write
//! may still commit). Keys and values may be any JSON; a cas `from` of
//! `null` means "the key is absent", so a cas can create a key.
//!
//! The Raft loop is [`crate::runtime::raft_loop`], the same as in TCP mode;
//! only the transport (stdout), the client source (stdin) and, without
//! `--data-dir`, the storage (none: state in memory) differ. The node stops
//! when stdin closes, or on SIGTERM/SIGINT.

pub mod wire;

use crate::api::{ErrorOutcome, ReadMode, Request, Response};
use crate::cli::NodeArgs;
use crate::clock::Clock;
use crate::runtime::raft_loop::{Booted, Event, Network, RaftLoop, Reply, INBOX_EVENTS};
use anyhow::Context;
use serde::Serialize;
use serde_json::{json, Value};
use std::io::{BufRead, BufWriter, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wire::Ids;

/// Maelstrom's error codes that this node answers with.
pub mod code {
    /// Indefinite: the request timed out.
    pub const TIMEOUT: u64 = 0;
    pub const NOT_SUPPORTED: u64 = 10;
    /// Definite: nothing happened; try again later (or elsewhere).
    pub const TEMPORARILY_UNAVAILABLE: u64 = 11;
    pub const MALFORMED_REQUEST: u64 = 12;
    pub const KEY_DOES_NOT_EXIST: u64 = 20;
    pub const PRECONDITION_FAILED: u64 = 22;
    /// Indefinite, ours: a write whose fate is unknown for another reason.
    pub const UNKNOWN_OUTCOME: u64 = 1000;
}

/// The one writer of stdout: whole lines only, each with a fresh `msg_id`.
/// Lines are buffered and flushed once per Raft-loop batch.
struct Out {
    w: Mutex<BufWriter<std::io::Stdout>>,
    next_msg_id: AtomicU64,
    broken: AtomicBool,
}

#[derive(Serialize)]
struct Envelope<'a> {
    src: &'a str,
    dest: &'a str,
    body: &'a Value,
}

impl Out {
    fn new() -> Out {
        Out {
            w: Mutex::new(BufWriter::with_capacity(256 * 1024, std::io::stdout())),
            next_msg_id: AtomicU64::new(1),
            broken: AtomicBool::new(false),
        }
    }

    /// Writes `body` (as is) in an envelope from `src` to `dest`.
    fn line(&self, src: &str, dest: &str, body: &Value) {
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        let r = serde_json::to_writer(&mut *w, &Envelope { src, dest, body })
            .map_err(std::io::Error::from)
            .and_then(|()| w.write_all(b"\n"));
        if let Err(e) = r {
            self.note_broken(&e);
        }
    }

    /// Sends a message of our own: adds a fresh `msg_id` (and `in_reply_to`).
    fn send(&self, src: &str, dest: &str, mut body: Value, in_reply_to: Option<u64>) {
        if let Value::Object(map) = &mut body {
            let id = self.next_msg_id.fetch_add(1, Ordering::Relaxed);
            map.insert("msg_id".into(), id.into());
            if let Some(r) = in_reply_to {
                map.insert("in_reply_to".into(), r.into());
            }
        }
        self.line(src, dest, &body);
    }

    fn flush(&self) {
        let mut w = self.w.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = w.flush() {
            self.note_broken(&e);
        }
    }

    fn note_broken(&self, e: &std::io::Error) {
        if !self.broken.swap(true, Ordering::Relaxed) {
            tracing::error!(error = %e, "cannot write to stdout (host gone?); messages are lost");
        }
    }
}

fn error_body(code: u64, text: impl Into<String>) -> Value {
    json!({"type": "error", "code": code, "text": text.into()})
}

/// The three lin-kv requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientOp {
    Read,
    Write,
    Cas,
}

/// Keys and values may be any JSON: they are stored as their JSON text, so
/// what a read returns is exactly what was written (an integer stays one).
fn stored(v: &Value) -> String {
    v.to_string()
}

fn from_stored(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_string()))
}

/// The request a lin-kv body asks for, or the error 12 text.
fn client_request(kind: &str, body: &Value) -> Result<(ClientOp, Request), String> {
    let field = |name: &str| {
        body.get(name)
            .ok_or_else(|| format!("{kind} needs a {name:?} field"))
    };
    let key = stored(field("key")?);
    Ok(match kind {
        "read" => (
            ClientOp::Read,
            Request::Read {
                key,
                mode: ReadMode::Linearizable,
            },
        ),
        "write" => (
            ClientOp::Write,
            Request::Put {
                key,
                value: stored(field("value")?),
            },
        ),
        "cas" => {
            let from = field("from")?;
            (
                ClientOp::Cas,
                Request::Cas {
                    key,
                    from: (!from.is_null()).then(|| stored(from)),
                    to: stored(field("to")?),
                },
            )
        }
        other => return Err(format!("{other} is not a lin-kv request")),
    })
}

/// The body that answers `op` with the loop's response (a not-leader with a
/// known leader is forwarded instead, before this is reached).
fn answer(op: ClientOp, resp: Response) -> Value {
    match (op, resp) {
        (ClientOp::Read, Response::Value(Some(v))) => {
            json!({"type": "read_ok", "value": from_stored(&v)})
        }
        (ClientOp::Read, Response::Value(None)) => {
            error_body(code::KEY_DOES_NOT_EXIST, "key does not exist")
        }
        (ClientOp::Write, Response::Done) => json!({"type": "write_ok"}),
        (ClientOp::Cas, Response::Done) => json!({"type": "cas_ok"}),
        (ClientOp::Cas, Response::Precondition { current: None }) => {
            error_body(code::KEY_DOES_NOT_EXIST, "key does not exist")
        }
        (ClientOp::Cas, Response::Precondition { current: Some(c) }) => error_body(
            code::PRECONDITION_FAILED,
            format!("current value is {}", from_stored(&c)),
        ),
        (_, Response::NotLeader { .. }) => error_body(
            code::TEMPORARILY_UNAVAILABLE,
            "not the leader; no leader known",
        ),
        (_, Response::Unavailable { error, outcome }) => match outcome {
            _ if error == "timeout" => error_body(code::TIMEOUT, error),
            ErrorOutcome::Failed => error_body(code::TEMPORARILY_UNAVAILABLE, error),
            ErrorOutcome::Unknown => error_body(code::UNKNOWN_OUTCOME, error),
        },
        (op, other) => {
            tracing::error!(?op, response = ?other, "response does not fit the request");
            error_body(code::UNKNOWN_OUTCOME, "internal error: unexpected response")
        }
    }
}

/// What the stdin reader, the network and the replies share.
struct Ctx {
    out: Out,
    ids: Ids,
    me: String,
    request_timeout: Duration,
}

/// How many times one client request may be forwarded. Nodes whose views
/// of the leader are stale (a partition, an election in flight) can send a
/// request around in a circle; past this many hops it is answered 11
/// (temporarily unavailable) instead, and the client tries again.
pub const MAX_FORWARD_HOPS: u64 = 3;

/// The field of a forwarded request that counts its hops.
pub const HOPS_FIELD: &str = "forward_hops";

/// The request to forward (with one more hop counted), or `None` when it
/// was forwarded [`MAX_FORWARD_HOPS`] times already.
fn forwarded(body: &Value) -> Option<Value> {
    let hops = body.get(HOPS_FIELD).and_then(Value::as_u64).unwrap_or(0);
    if hops >= MAX_FORWARD_HOPS {
        return None;
    }
    let mut body = body.clone();
    if let Value::Object(map) = &mut body {
        map.insert(HOPS_FIELD.into(), (hops + 1).into());
    }
    Some(body)
}

/// A client request waiting in the Raft loop; answers on stdout.
struct ClientReply {
    ctx: Arc<Ctx>,
    client: String,
    msg_id: Option<u64>,
    op: ClientOp,
    /// The request as received, forwarded unchanged to the leader.
    body: Value,
    deadline: Instant,
}

impl Reply for ClientReply {
    fn send(self, resp: Response) {
        if let Response::NotLeader {
            leader: Some(leader),
        } = resp
        {
            if let Some(name) = self
                .ctx
                .ids
                .name(leader)
                .filter(|_| leader != self.ctx.ids.me())
            {
                if let Some(body) = forwarded(&self.body) {
                    tracing::debug!(client = %self.client, leader = name, "forwarding to the leader");
                    self.ctx.out.line(&self.client, name, &body);
                    return;
                }
                // Bounced between nodes with stale views of the leader: no
                // node proposed it, so the answer below (11) is definite.
            }
        }
        let Some(msg_id) = self.msg_id else {
            return; // Nobody waits for an answer without a msg_id.
        };
        let body = answer(self.op, resp);
        self.ctx
            .out
            .send(&self.ctx.me, &self.client, body, Some(msg_id));
    }

    fn expired(&self, now: Instant) -> bool {
        now >= self.deadline
    }
}

/// Peer messages leave as JSON lines on stdout; the host routes them.
struct StdoutNet {
    ctx: Arc<Ctx>,
}

impl Network for StdoutNet {
    fn send(&mut self, m: crate::raft::Message) {
        let Some(dest) = self.ctx.ids.name(m.to) else {
            tracing::warn!(
                to = m.to,
                "message to a node that is not in node_ids: dropped"
            );
            return;
        };
        match wire::encode(&m, &self.ctx.ids) {
            Ok(body) => self.ctx.out.send(&self.ctx.me, dest, body, None),
            Err(e) => tracing::error!(error = %e, "cannot encode a message: dropped"),
        }
    }

    fn flush(&mut self) {
        self.ctx.out.flush();
    }
}

/// The parts of an incoming line that routing needs.
struct Incoming {
    src: String,
    dest: String,
    body: Value,
}

fn parse_line(line: &str) -> Result<Incoming, String> {
    let mut v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let text = |v: &Value, f: &str| {
        v.get(f)
            .and_then(Value::as_str)
            .map(String::from)
            .ok_or_else(|| format!("no {f:?} string"))
    };
    let src = text(&v, "src")?;
    let dest = text(&v, "dest")?;
    let body = v
        .get_mut("body")
        .filter(|b| b.get("type").is_some_and(Value::is_string))
        .map(Value::take)
        .ok_or("no body with a \"type\"")?;
    Ok(Incoming { src, dest, body })
}

fn msg_id(body: &Value) -> Option<u64> {
    body.get("msg_id").and_then(Value::as_u64)
}

fn kind(body: &Value) -> &str {
    body.get("type").and_then(Value::as_str).unwrap_or("")
}

/// A valid `init`: who we are and who the others are.
struct Init {
    src: String,
    msg_id: Option<u64>,
    node_id: String,
    ids: Ids,
}

/// Reads stdin until a valid `init`; `None` when stdin closes first. Every
/// other request is answered "not initialized" (11); a bad init gets 12 and
/// the node keeps waiting for a good one.
fn wait_for_init(out: &Out) -> anyhow::Result<Option<Init>> {
    let stdin = std::io::stdin();
    let mut line = String::new();
    loop {
        line.clear();
        if stdin.lock().read_line(&mut line).context("reading stdin")? == 0 {
            return Ok(None);
        }
        let m = match parse_line(line.trim_end()) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, line = line.trim_end(), "ignoring a malformed line");
                continue;
            }
        };
        let id = msg_id(&m.body);
        if kind(&m.body) != "init" {
            if let Some(id) = id.filter(|_| m.body.get("in_reply_to").is_none()) {
                let err = error_body(code::TEMPORARILY_UNAVAILABLE, "not initialized yet");
                out.send(&m.dest, &m.src, err, Some(id));
                out.flush();
            }
            continue;
        }
        let node_id = m.body.get("node_id").and_then(Value::as_str);
        let node_ids: Option<Vec<String>> = m
            .body
            .get("node_ids")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().map(|n| n.as_str().map(String::from)).collect());
        let parsed = match (node_id, node_ids) {
            (Some(me), Some(all)) => Ids::new(&all, me)
                .map(|ids| (me.to_string(), ids))
                .map_err(|e| e.to_string()),
            _ => Err("init needs node_id and node_ids (strings)".to_string()),
        };
        match parsed {
            Ok((node_id, ids)) => {
                return Ok(Some(Init {
                    src: m.src,
                    msg_id: id,
                    node_id,
                    ids,
                }))
            }
            Err(e) => {
                tracing::error!(error = %e, "bad init");
                out.send(&m.dest, &m.src, error_body(code::MALFORMED_REQUEST, e), id);
                out.flush();
            }
        }
    }
}

/// Handles one line after init: a Raft message or a client request into the
/// loop, anything else answered or logged. Never blocks on a full inbox.
fn on_line(ctx: &Arc<Ctx>, line: &str, tx: &SyncSender<Event<ClientReply>>) {
    let m = match parse_line(line) {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, line, "ignoring a malformed line");
            return;
        }
    };
    if m.dest != ctx.me {
        tracing::warn!(dest = %m.dest, "ignoring a message addressed to another node");
        return;
    }
    let kind = kind(&m.body).to_string();
    let id = msg_id(&m.body);
    let answer_now = |body: Value| {
        if let Some(id) = id {
            ctx.out.send(&ctx.me, &m.src, body, Some(id));
            ctx.out.flush();
        }
    };
    if wire::RAFT_TYPES.contains(&kind.as_str()) {
        match wire::decode(&m.body, &m.src, &ctx.ids) {
            // A full inbox drops the message: Raft retransmits.
            Ok(msg) => {
                let _ = tx.try_send(Event::Peer(msg));
            }
            Err(e) => tracing::warn!(error = %e, src = %m.src, "dropping a bad Raft message"),
        }
        return;
    }
    match kind.as_str() {
        "read" | "write" | "cas" => match client_request(&kind, &m.body) {
            Ok((op, req)) => {
                let reply = ClientReply {
                    ctx: ctx.clone(),
                    client: m.src.clone(),
                    msg_id: id,
                    op,
                    body: m.body.clone(),
                    deadline: Instant::now() + ctx.request_timeout,
                };
                match tx.try_send(Event::Client(req, reply)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        answer_now(error_body(code::TEMPORARILY_UNAVAILABLE, "node overloaded"))
                    }
                    Err(TrySendError::Disconnected(_)) => answer_now(error_body(
                        code::TEMPORARILY_UNAVAILABLE,
                        "node shutting down",
                    )),
                }
            }
            Err(e) => answer_now(error_body(code::MALFORMED_REQUEST, e)),
        },
        "init" => {
            let same = m.body.get("node_id").and_then(Value::as_str) == Some(ctx.me.as_str());
            answer_now(if same {
                json!({"type": "init_ok"})
            } else {
                error_body(
                    code::MALFORMED_REQUEST,
                    format!("already initialized as {}", ctx.me),
                )
            });
        }
        // Replies to something we sent (we send no requests but forwards,
        // whose replies go to the client): nothing to do.
        _ if m.body.get("in_reply_to").is_some() => {
            tracing::debug!(kind, src = %m.src, "ignoring a reply");
        }
        _ => answer_now(error_body(
            code::NOT_SUPPORTED,
            format!("{kind} is not supported (this node speaks lin-kv)"),
        )),
    }
}

/// Runs the node in Maelstrom mode until stdin closes or SIGTERM/SIGINT.
pub fn run(args: &NodeArgs) -> anyhow::Result<()> {
    let out = Out::new();
    // Until init, SIGTERM/SIGINT simply end the process: nothing to flush.
    let Some(init) = wait_for_init(&out)? else {
        tracing::info!("stdin closed before init: nothing to do");
        return Ok(());
    };
    // Block the signals before any thread exists, so that every thread
    // inherits the mask and only the waiter below ever receives them.
    let mut signals = nix::sys::signal::SigSet::empty();
    signals.add(nix::sys::signal::Signal::SIGTERM);
    signals.add(nix::sys::signal::Signal::SIGINT);
    signals.thread_block().context("blocking SIGTERM/SIGINT")?;
    let me = init.ids.me();
    let span = tracing::info_span!("node", id = me, name = %init.node_id);
    let _enter = span.enter();
    let members = init.ids.all();
    tracing::info!(?members, "init");
    let booted = Booted::open(crate::runtime::boot_config(args, me, members)?)?;
    let ctx = Arc::new(Ctx {
        out,
        ids: init.ids,
        me: init.node_id,
        request_timeout: Duration::from_millis(args.request_timeout_ms),
    });
    ctx.out
        .send(&ctx.me, &init.src, json!({"type": "init_ok"}), init.msg_id);
    ctx.out.flush();

    let (tx, rx) = mpsc::sync_channel::<Event<ClientReply>>(INBOX_EVENTS);
    let shutdown = Arc::new(AtomicBool::new(false));
    {
        let (ctx, tx, flag) = (ctx.clone(), tx.clone(), shutdown.clone());
        let span = span.clone();
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                let _enter = span.enter();
                for line in std::io::stdin().lock().lines() {
                    match line {
                        Ok(line) if line.trim().is_empty() => {}
                        Ok(line) => on_line(&ctx, &line, &tx),
                        Err(e) => {
                            tracing::error!(error = %e, "reading stdin failed");
                            break;
                        }
                    }
                }
                tracing::info!("stdin closed: shutting down");
                flag.store(true, Ordering::SeqCst);
                let _ = tx.send(Event::Shutdown);
            })
            .context("spawning the stdin reader")?;
    }
    {
        let (tx, flag) = (tx.clone(), shutdown.clone());
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                if let Ok(sig) = signals.wait() {
                    tracing::info!(signal = %sig, "shutting down");
                    flag.store(true, Ordering::SeqCst);
                    let _ = tx.try_send(Event::Shutdown);
                }
            })
            .context("spawning the signal waiter")?;
    }
    drop(tx);
    let ticker = booted.ticker(Clock::new(), Duration::from_millis(args.tick_ms));
    let mut node = RaftLoop::new(booted, Box::new(StdoutNet { ctx: ctx.clone() }));
    let result = node.run(&rx, ticker, &shutdown);
    drop(node);
    if result.is_ok() {
        tracing::info!("stopped cleanly");
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forwarded_request_counts_its_hops_and_stops_bouncing() {
        let mut body = json!({"type": "read", "key": 1, "msg_id": 7});
        for hop in 1..=MAX_FORWARD_HOPS {
            body = forwarded(&body).expect("may hop on");
            assert_eq!(body[HOPS_FIELD], hop);
            assert_eq!(
                (body["msg_id"].clone(), body["key"].clone()),
                (json!(7), json!(1))
            );
        }
        assert_eq!(forwarded(&body), None);
    }

    #[test]
    fn lin_kv_requests_store_json_text_and_answers_follow_maelstrom_codes() {
        let (op, req) = client_request(
            "cas",
            &json!({"type": "cas", "key": 1, "from": null, "to": 5}),
        )
        .unwrap();
        assert_eq!(op, ClientOp::Cas);
        assert_eq!(
            req,
            Request::Cas {
                key: "1".into(),
                from: None,
                to: "5".into()
            }
        );
        let (_, req) =
            client_request("write", &json!({"type": "write", "key": "k", "value": "v"})).unwrap();
        assert_eq!(
            req,
            Request::Put {
                key: "\"k\"".into(),
                value: "\"v\"".into()
            }
        );
        assert!(client_request("write", &json!({"type": "write", "key": 1})).is_err());
        assert!(client_request("cas", &json!({"type": "cas", "key": 1, "to": 2})).is_err());

        let code_of = |b: Value| b["code"].as_u64();
        assert_eq!(
            answer(ClientOp::Read, Response::Value(Some("5".into()))),
            json!({"type": "read_ok", "value": 5})
        );
        assert_eq!(
            code_of(answer(ClientOp::Read, Response::Value(None))),
            Some(20)
        );
        assert_eq!(
            code_of(answer(
                ClientOp::Cas,
                Response::Precondition {
                    current: Some("3".into())
                }
            )),
            Some(22)
        );
        assert_eq!(
            code_of(answer(
                ClientOp::Cas,
                Response::Precondition { current: None }
            )),
            Some(20)
        );
        assert_eq!(answer(ClientOp::Write, Response::Done)["type"], "write_ok");
        assert_eq!(answer(ClientOp::Cas, Response::Done)["type"], "cas_ok");
        let unavailable = |e: &str, outcome| Response::Unavailable {
            error: e.into(),
            outcome,
        };
        assert_eq!(
            code_of(answer(
                ClientOp::Write,
                unavailable("timeout", ErrorOutcome::Unknown)
            )),
            Some(0)
        );
        assert_eq!(
            code_of(answer(
                ClientOp::Write,
                unavailable("superseded-by-snapshot", ErrorOutcome::Unknown)
            )),
            Some(1000)
        );
        assert_eq!(
            code_of(answer(
                ClientOp::Write,
                unavailable("overwritten", ErrorOutcome::Failed)
            )),
            Some(11)
        );
        assert_eq!(
            code_of(answer(ClientOp::Read, Response::NotLeader { leader: None })),
            Some(11)
        );
    }

    #[test]
    fn lines_without_dest_or_typed_body_are_rejected() {
        assert!(parse_line("nonsense").is_err());
        assert!(parse_line(r#"{"src":"c1","body":{"type":"read"}}"#).is_err());
        assert!(parse_line(r#"{"src":"c1","dest":"n1","body":{}}"#).is_err());
        let m = parse_line(r#"{"src":"c1","dest":"n1","body":{"type":"read","key":1,"msg_id":4}}"#)
            .unwrap();
        assert_eq!(
            (m.src.as_str(), m.dest.as_str(), msg_id(&m.body)),
            ("c1", "n1", Some(4))
        );
    }
}
