//! Our node's client: one workload [`Op`] against the node's HTTP API
//! (docs/node.md, "HTTP API"), ended by the node's own answers:
//! - `ok`: a 200;
//! - `fail`: the op definitely did not happen: the request never left
//!   (connection refused), a not-leader answer without a usable hint, an
//!   error body with `"outcome": "failed"`, a cas precondition (409), or a
//!   read that did not answer (a read changes nothing, so it cannot be
//!   pending);
//! - `info`: a write, cas or append whose fate is unknown: a timeout, a
//!   connection dropped after sending, `"outcome": "unknown"`.
//!
//! A 421 not-leader answer is followed to the hinted leader within the same
//! op, with the same overall deadline: the refusing node did nothing.

use futures::future::BoxFuture;
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;
use workloads::Op;

use crate::client::{Client, Completion, ReadConsistency};
use crate::history::EventType;

/// How many not-leader redirects one op follows before giving up (fail).
const MAX_REDIRECTS: usize = 3;
/// How many read+cas rounds an append tries when another client keeps
/// changing the key between its read and its cas.
const MAX_APPEND_ATTEMPTS: usize = 8;

/// Errors building a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// The result of one HTTP exchange.
enum Reply {
    /// The request was answered.
    Answered(StatusCode, Value),
    /// The request never reached the node (connect error).
    NotSent(String),
    /// Sent (or maybe sent), no answer: timeout or broken connection.
    Lost(String),
}

/// A cheaply cloned client for a fixed set of nodes.
#[derive(Clone, Debug)]
pub struct NodeClient {
    http: reqwest::Client,
    addrs: BTreeMap<u64, SocketAddr>,
    op_timeout: Duration,
    consistency: ReadConsistency,
}

impl NodeClient {
    /// A client for the nodes in `addrs` (node id → client address). An op
    /// gives up after `op_timeout` in total, redirects included.
    pub fn new(
        addrs: BTreeMap<u64, SocketAddr>,
        op_timeout: Duration,
        consistency: ReadConsistency,
    ) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_millis(500).min(op_timeout))
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(NodeClient {
            http,
            addrs,
            op_timeout,
            consistency,
        })
    }

    /// The nodes this client knows.
    pub fn node_ids(&self) -> Vec<u64> {
        self.addrs.keys().copied().collect()
    }

    async fn call(
        &self,
        node: u64,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        deadline: Instant,
    ) -> Reply {
        let Some(addr) = self.addrs.get(&node) else {
            return Reply::NotSent(format!("unknown node {node}"));
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Reply::Lost("timeout".into());
        }
        let mut req = self
            .http
            .request(method, format!("http://{addr}{path}"))
            .timeout(remaining);
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                match resp.bytes().await {
                    Ok(bytes) => {
                        let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
                            json!({"error": String::from_utf8_lossy(&bytes).trim().to_string()})
                        });
                        Reply::Answered(status, v)
                    }
                    Err(e) if e.is_timeout() => Reply::Lost("timeout".into()),
                    Err(e) => Reply::Lost(format!("body: {e}")),
                }
            }
            Err(e) if e.is_connect() => Reply::NotSent(format!("connect: {}", root_cause(&e))),
            Err(e) if e.is_timeout() => Reply::Lost("timeout".into()),
            Err(e) => Reply::Lost(root_cause(&e)),
        }
    }

    /// Performs one op starting at `node`, following not-leader hints.
    pub async fn invoke(&self, op: &Op, node: u64) -> Completion {
        let deadline = Instant::now() + self.op_timeout;
        match op {
            Op::Read { key } => self.read(key, node, self.consistency, deadline).await,
            Op::Write { key, value } => {
                let body = json!({ "value": value });
                self.mutate(
                    node,
                    reqwest::Method::PUT,
                    &format!("/kv/{key}"),
                    body,
                    op,
                    deadline,
                )
                .await
            }
            Op::Cas { key, from, to } => {
                let body = json!({ "from": from, "to": to });
                self.mutate(
                    node,
                    reqwest::Method::POST,
                    &format!("/kv/{key}/cas"),
                    body,
                    op,
                    deadline,
                )
                .await
            }
            Op::Append { key, value } => self.append(key, value, node, op, deadline).await,
        }
    }

    /// A read with an explicit consistency (the final reads are always
    /// linearizable, whatever the run's reads are).
    pub async fn read(
        &self,
        key: &str,
        mut node: u64,
        consistency: ReadConsistency,
        deadline: Instant,
    ) -> Completion {
        let path = format!("/kv/{key}?consistency={}", consistency.name());
        for hop in 0..=MAX_REDIRECTS {
            match self
                .call(node, reqwest::Method::GET, &path, None, deadline)
                .await
            {
                Reply::Answered(s, body) if s == StatusCode::OK => {
                    return done(
                        EventType::Ok,
                        body.get("value").cloned().unwrap_or(Value::Null),
                        node,
                        None,
                    );
                }
                Reply::Answered(s, body) if s == StatusCode::MISDIRECTED_REQUEST => {
                    match redirect_target(&body, node, &self.addrs) {
                        Some(next) if hop < MAX_REDIRECTS => node = next,
                        _ => return not_reached(Value::Null, node, "not-leader".into()),
                    }
                }
                // A read changes nothing: whatever went wrong, it did not
                // happen as far as the history is concerned.
                Reply::Answered(s, body) => {
                    return done(
                        EventType::Fail,
                        Value::Null,
                        node,
                        Some(error_text(s, &body)),
                    );
                }
                Reply::NotSent(e) => return not_reached(Value::Null, node, e),
                Reply::Lost(e) => return done(EventType::Fail, Value::Null, node, Some(e)),
            }
        }
        unreachable!("the loop returns on its last hop")
    }

    async fn mutate(
        &self,
        mut node: u64,
        method: reqwest::Method,
        path: &str,
        body: Value,
        op: &Op,
        deadline: Instant,
    ) -> Completion {
        let value = op.invoke_value();
        for hop in 0..=MAX_REDIRECTS {
            match self
                .call(node, method.clone(), path, Some(body.clone()), deadline)
                .await
            {
                Reply::Answered(s, _) if s == StatusCode::OK => {
                    return done(EventType::Ok, value, node, None)
                }
                Reply::Answered(s, b) if s == StatusCode::MISDIRECTED_REQUEST => {
                    match redirect_target(&b, node, &self.addrs) {
                        Some(next) if hop < MAX_REDIRECTS => node = next,
                        _ => return not_reached(value, node, "not-leader".into()),
                    }
                }
                Reply::Answered(s, b) => {
                    let kind = match b.get("outcome").and_then(Value::as_str) {
                        Some("failed") => EventType::Fail,
                        // No outcome, or "unknown": it may have happened.
                        _ if s == StatusCode::BAD_REQUEST => EventType::Fail,
                        _ => EventType::Info,
                    };
                    let error = if s == StatusCode::CONFLICT && kind == EventType::Fail {
                        "precondition".to_string()
                    } else {
                        error_text(s, &b)
                    };
                    return done(kind, value, node, Some(error));
                }
                Reply::NotSent(e) => return not_reached(value, node, e),
                Reply::Lost(e) => return done(EventType::Info, value, node, Some(e)),
            }
        }
        unreachable!("the loop returns on its last hop")
    }

    /// Append as read + cas on the client: linearizable at the cas, which
    /// only succeeds if nothing changed since the read; retried while
    /// another client wins the race.
    async fn append(
        &self,
        key: &str,
        suffix: &str,
        node: u64,
        op: &Op,
        deadline: Instant,
    ) -> Completion {
        let value = op.invoke_value();
        let mut last_error = String::from("precondition");
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let read = self
                .read(key, node, ReadConsistency::Linearizable, deadline)
                .await;
            if read.kind != EventType::Ok {
                // Nothing was written yet: the append definitely did not happen.
                return Completion { value, ..read };
            }
            let current = read.value.as_str().map(str::to_string);
            let to = format!("{}{suffix}", current.as_deref().unwrap_or(""));
            let cas = Op::Cas {
                key: key.to_string(),
                from: current,
                to,
            };
            let body = json!({ "from": cas.invoke_value()[0], "to": cas.invoke_value()[1] });
            let res = self
                .mutate(
                    read.node,
                    reqwest::Method::POST,
                    &format!("/kv/{key}/cas"),
                    body,
                    &cas,
                    deadline,
                )
                .await;
            match (res.kind, res.error.as_deref()) {
                (EventType::Fail, Some("precondition")) => {
                    last_error = "precondition".into();
                    continue;
                }
                _ => return Completion { value, ..res },
            }
        }
        done(
            EventType::Fail,
            value,
            node,
            Some(format!("gave up: {last_error}")),
        )
    }
}

impl Client for NodeClient {
    fn invoke<'a>(&'a self, op: &'a Op, node: u64) -> BoxFuture<'a, Completion> {
        Box::pin(NodeClient::invoke(self, op, node))
    }
}

fn done(kind: EventType, value: Value, node: u64, error: Option<String>) -> Completion {
    Completion::new(kind, value, node, error)
}

fn not_reached(value: Value, node: u64, error: String) -> Completion {
    Completion::unreachable(value, node, error)
}

/// The hinted leader of a 421, if it is another node we can reach.
fn redirect_target(body: &Value, from: u64, addrs: &BTreeMap<u64, SocketAddr>) -> Option<u64> {
    let leader = body.get("leader")?.as_u64()?;
    (leader != from && addrs.contains_key(&leader)).then_some(leader)
}

fn error_text(status: StatusCode, body: &Value) -> String {
    match body.get("error").and_then(Value::as_str) {
        Some(e) if !e.is_empty() => e.to_string(),
        _ => format!("http {}", status.as_u16()),
    }
}

/// The innermost error message (reqwest wraps hyper wraps io).
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// A tiny scripted HTTP server: answers the n-th request with the n-th
    /// canned (status, body), recording the request lines.
    pub(crate) fn scripted(
        replies: Vec<(u16, &'static str)>,
    ) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        let n = Arc::new(AtomicUsize::new(0));
        std::thread::spawn(move || {
            for stream in l.incoming() {
                let Ok(mut s) = stream else { return };
                let seen = seen2.clone();
                let replies = replies.clone();
                let n = n.clone();
                std::thread::spawn(move || loop {
                    let mut buf = vec![0u8; 8192];
                    let Ok(k) = s.read(&mut buf) else { return };
                    if k == 0 {
                        return;
                    }
                    let req = String::from_utf8_lossy(&buf[..k]).to_string();
                    seen.lock()
                        .unwrap()
                        .push(req.lines().next().unwrap_or("").to_string());
                    let i = n.fetch_add(1, Ordering::SeqCst);
                    let Some((code, body)) = replies.get(i).copied() else {
                        return;
                    };
                    if code == 0 {
                        // Simulate a hang: never answer.
                        std::thread::sleep(Duration::from_secs(5));
                        return;
                    }
                    let resp = format!(
                        "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if s.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                });
            }
        });
        (addr, seen)
    }

    fn client(addrs: &[(u64, SocketAddr)]) -> NodeClient {
        NodeClient::new(
            addrs.iter().copied().collect(),
            Duration::from_millis(400),
            ReadConsistency::Linearizable,
        )
        .unwrap()
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn not_leader_is_followed_to_the_hinted_leader_within_the_op() {
        let (a1, seen1) = scripted(vec![(
            421,
            r#"{"error":"not-leader","leader":2,"outcome":"failed"}"#,
        )]);
        let (a2, seen2) = scripted(vec![(200, r#"{}"#)]);
        let c = client(&[(1, a1), (2, a2)]);
        let op = Op::Write {
            key: "k1".into(),
            value: "0.1".into(),
        };
        let r = rt().block_on(c.invoke(&op, 1));
        assert_eq!(r.kind, EventType::Ok);
        assert_eq!(r.node, 2);
        assert_eq!(r.value, json!("0.1"));
        assert!(seen1.lock().unwrap()[0].starts_with("PUT /kv/k1"));
        assert!(seen2.lock().unwrap()[0].starts_with("PUT /kv/k1"));
    }

    #[test]
    fn outcomes_follow_the_error_body() {
        let (a, _) = scripted(vec![
            (409, r#"{"error":"precondition","outcome":"failed"}"#),
            (503, r#"{"error":"timeout","outcome":"unknown"}"#),
            (200, r#"{"value":"x"}"#),
            (
                421,
                r#"{"error":"not-leader","leader":null,"outcome":"failed"}"#,
            ),
        ]);
        let c = client(&[(1, a)]);
        let rt = rt();
        let cas = Op::Cas {
            key: "r".into(),
            from: Some("a".into()),
            to: "1.2".into(),
        };
        let r = rt.block_on(c.invoke(&cas, 1));
        assert_eq!(
            (r.kind, r.error.as_deref()),
            (EventType::Fail, Some("precondition"))
        );
        assert_eq!(r.value, json!(["a", "1.2"]));
        let w = Op::Write {
            key: "r".into(),
            value: "1.3".into(),
        };
        let r = rt.block_on(c.invoke(&w, 1));
        assert_eq!(r.kind, EventType::Info);
        let read = Op::Read { key: "r".into() };
        let r = rt.block_on(c.invoke(&read, 1));
        assert_eq!((r.kind, r.value.clone()), (EventType::Ok, json!("x")));
        let r = rt.block_on(c.invoke(&read, 1));
        assert_eq!(
            (r.kind, r.error.as_deref()),
            (EventType::Fail, Some("not-leader"))
        );
    }

    #[test]
    fn a_hung_write_is_info_and_a_hung_read_is_fail() {
        let (a, seen) = scripted(vec![(0, ""), (0, "")]);
        let c = client(&[(1, a)]);
        let rt = rt();
        let w = Op::Write {
            key: "r".into(),
            value: "1.3".into(),
        };
        let r = rt.block_on(c.invoke(&w, 1));
        assert_eq!(
            (r.kind, r.error.as_deref()),
            (EventType::Info, Some("timeout"))
        );
        let r = rt.block_on(c.invoke(&Op::Read { key: "r".into() }, 1));
        assert_eq!(r.kind, EventType::Fail);
        assert_eq!(seen.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_refused_connection_is_fail_and_unreachable() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let c = client(&[(1, addr)]);
        let w = Op::Write {
            key: "r".into(),
            value: "1.3".into(),
        };
        let r = rt().block_on(c.invoke(&w, 1));
        assert_eq!(r.kind, EventType::Fail);
        assert!(r.backoff);
    }

    #[test]
    fn append_reads_then_cases_and_retries_on_a_lost_race() {
        let (a, seen) = scripted(vec![
            (200, r#"{"value":"0.1;"}"#),
            (409, r#"{"error":"precondition","outcome":"failed"}"#),
            (200, r#"{"value":"0.1;2.0;"}"#),
            (200, r#"{}"#),
        ]);
        let c = client(&[(1, a)]);
        let op = Op::Append {
            key: "k0".into(),
            value: "1.5;".into(),
        };
        let r = rt().block_on(c.invoke(&op, 1));
        assert_eq!(r.kind, EventType::Ok);
        assert_eq!(r.value, json!("1.5;"));
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 4);
        assert!(seen[0].starts_with("GET /kv/k0?consistency=linearizable"));
        assert!(seen[3].starts_with("POST /kv/k0/cas"));
    }
}
