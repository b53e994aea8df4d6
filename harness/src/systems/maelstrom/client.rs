//! A lin-kv client of Maelstrom-protocol nodes, through the [`Router`]: one
//! workload [`Op`] becomes one request from client `cK` and ends as the same
//! [`Completion`] the HTTP client produces, decided by Maelstrom's error codes
//! (as Maelstrom's own client does):
//! - `ok`: `read_ok` / `write_ok` / `cas_ok`; and a read answered 20
//!   (key does not exist), which reads "nothing" (`null`);
//! - `fail` (definitely did not happen): the definite codes 1, 10, 11, 12,
//!   14, 20, 21, 22, 30; a cas answered 22 (or 20 when it expected a value)
//!   fails with error `precondition`, an observation the checker verifies
//!   (the value was not `from`); a request that reached no node; any read
//!   that got no answer, or a reply it cannot use (a read changes nothing);
//! - `info` (fate unknown): a write or cas answered 0 (timeout), 13 (crash),
//!   any code ≥ 1000 or an unknown code, a reply of the wrong type, or not
//!   answered within the op timeout.
//!
//! A reply the client cannot use says so in the op's `error` (e.g.
//! `unexpected reply "frob" to write`); a line that is not a message at all
//! never reaches a client (the router counts and logs it), so its op ends
//! at the timeout.
//!
//! There is no not-leader redirect in the protocol: a follower forwards the
//! request to its leader itself (the reply then comes from the leader, which
//! is the completion's `node`) or answers 11.

use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use workloads::Op;

use super::router::{CallError, ClientMessage, Router};
use crate::client::Completion;
use crate::cluster::NodeId;
use crate::history::EventType;

/// How many read+cas rounds an append tries when another client keeps
/// changing the key between its read and its cas.
const MAX_APPEND_ATTEMPTS: usize = 8;

/// Maelstrom's definite error codes: the request did not take effect.
pub const DEFINITE_CODES: [u64; 9] = [1, 10, 11, 12, 14, 20, 21, 22, 30];

/// Maelstrom's name of an error code.
pub fn error_name(code: u64) -> String {
    match code {
        0 => "timeout".into(),
        1 => "node-not-found".into(),
        10 => "not-supported".into(),
        11 => "temporarily-unavailable".into(),
        12 => "malformed-request".into(),
        13 => "crash".into(),
        14 => "abort".into(),
        20 => "key-does-not-exist".into(),
        21 => "key-already-exists".into(),
        22 => "precondition-failed".into(),
        30 => "txn-conflict".into(),
        c => format!("error-{c}"),
    }
}

/// One client id (`cK`, K ≥ 1; `c0` is the router's own).
pub struct MaelstromClient {
    router: Arc<Router>,
    name: String,
    next_msg_id: AtomicU64,
    op_timeout: Duration,
}

/// The seam's client: a Maelstrom system hands this to the run's workers.
impl crate::client::Client for MaelstromClient {
    fn invoke<'a>(
        &'a self,
        op: &'a Op,
        node: NodeId,
    ) -> futures::future::BoxFuture<'a, Completion> {
        Box::pin(MaelstromClient::invoke(self, op, node))
    }
}

impl MaelstromClient {
    pub fn new(router: Arc<Router>, client: u64, op_timeout: Duration) -> Self {
        assert!(client >= 1, "client id c0 is reserved for the router");
        MaelstromClient {
            router,
            name: super::client_name(client),
            next_msg_id: AtomicU64::new(1),
            op_timeout,
        }
    }

    /// The client id on the wire.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Performs one op, asking `node`.
    pub async fn invoke(&self, op: &Op, node: NodeId) -> Completion {
        let deadline = Instant::now() + self.op_timeout;
        match op {
            Op::Read { key } => {
                let r = self
                    .rpc(node, json!({"type": "read", "key": key}), deadline)
                    .await;
                completion(op, node, r)
            }
            Op::Write { key, value } => {
                let body = json!({"type": "write", "key": key, "value": value});
                completion(op, node, self.rpc(node, body, deadline).await)
            }
            Op::Cas { key, from, to } => {
                let body = json!({"type": "cas", "key": key, "from": from, "to": to});
                completion(op, node, self.rpc(node, body, deadline).await)
            }
            Op::Append { key, value } => self.append(op, key, value, node, deadline).await,
        }
    }

    async fn rpc(
        &self,
        node: NodeId,
        mut body: Value,
        deadline: Instant,
    ) -> Result<ClientMessage, CallError> {
        let msg_id = self.next_msg_id.fetch_add(1, Ordering::Relaxed);
        body["msg_id"] = msg_id.into();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(CallError::Timeout);
        }
        self.router.call(&self.name, node, body, left).await
    }

    /// Append as read + cas: linearizable at the cas, which only succeeds if
    /// nothing changed since the read; retried while another client wins.
    async fn append(
        &self,
        op: &Op,
        key: &str,
        suffix: &str,
        node: NodeId,
        deadline: Instant,
    ) -> Completion {
        let value = op.invoke_value();
        for _ in 0..MAX_APPEND_ATTEMPTS {
            let read_op = Op::Read {
                key: key.to_string(),
            };
            let body = json!({"type": "read", "key": key});
            let read = completion(&read_op, node, self.rpc(node, body, deadline).await);
            if read.kind != EventType::Ok {
                // Nothing was written yet: the append definitely did not happen.
                return Completion { value, ..read };
            }
            let current = match &read.value {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => {
                    return Completion {
                        kind: EventType::Fail,
                        value,
                        node: read.node,
                        error: Some(format!("cannot append to the non-string value {other}")),
                        backoff: false,
                    }
                }
            };
            let cas = Op::Cas {
                key: key.to_string(),
                to: format!("{}{suffix}", current.as_deref().unwrap_or("")),
                from: current,
            };
            let Op::Cas { from, to, .. } = &cas else {
                unreachable!()
            };
            let body = json!({"type": "cas", "key": key, "from": from, "to": to});
            let res = completion(&cas, read.node, self.rpc(read.node, body, deadline).await);
            if res.kind == EventType::Fail && res.error.as_deref() == Some("precondition") {
                continue;
            }
            return Completion { value, ..res };
        }
        Completion {
            kind: EventType::Fail,
            value,
            node,
            error: Some("gave up: precondition".into()),
            backoff: false,
        }
    }
}

fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Read { .. } => "read",
        Op::Write { .. } => "write",
        Op::Cas { .. } => "cas",
        Op::Append { .. } => "append",
    }
}

/// The completion of `op` (sent to `asked`) given what came back. Pure: the
/// whole outcome table of the module docs.
pub fn completion(op: &Op, asked: NodeId, reply: Result<ClientMessage, CallError>) -> Completion {
    let is_read = matches!(op, Op::Read { .. });
    let invoke_value = op.invoke_value();
    let end = |kind, value, node, error: Option<String>, backoff| Completion {
        kind,
        value,
        node,
        error,
        backoff,
    };
    let unknown = if is_read {
        EventType::Fail
    } else {
        EventType::Info
    };
    let m = match reply {
        Ok(m) => m,
        Err(CallError::NotSent(e)) => {
            return end(EventType::Fail, invoke_value, asked, Some(e), true)
        }
        Err(CallError::Timeout) => {
            return end(unknown, invoke_value, asked, Some("timeout".into()), false)
        }
    };
    let node = m.node;
    let kind = m.body.get("type").and_then(Value::as_str).unwrap_or("");
    let expected = match op {
        Op::Read { .. } => "read_ok",
        Op::Write { .. } | Op::Append { .. } => "write_ok",
        Op::Cas { .. } => "cas_ok",
    };
    if kind == expected {
        let value = if is_read {
            match m.body.get("value") {
                Some(v) => v.clone(),
                // Not a read of nothing (that is error 20): a broken reply.
                None => {
                    let error = "read_ok without a \"value\"".to_string();
                    return end(EventType::Fail, invoke_value, node, Some(error), false);
                }
            }
        } else {
            invoke_value
        };
        return end(EventType::Ok, value, node, None, false);
    }
    if kind != "error" {
        let error = format!("unexpected reply {kind:?} to {}", op_name(op));
        return end(unknown, invoke_value, node, Some(error), false);
    }
    let Some(code) = m.body.get("code").and_then(Value::as_u64) else {
        return end(
            unknown,
            invoke_value,
            node,
            Some("error without a code".into()),
            false,
        );
    };
    match (op, code) {
        // A read of a missing key read nothing.
        (Op::Read { .. }, 20) => end(EventType::Ok, Value::Null, node, None, false),
        // The value was not `from`: absent (20) or another one (22).
        (Op::Cas { from: Some(_), .. }, 20) | (Op::Cas { .. }, 22) => end(
            EventType::Fail,
            invoke_value,
            node,
            Some("precondition".into()),
            false,
        ),
        (_, c) if DEFINITE_CODES.contains(&c) => end(
            EventType::Fail,
            invoke_value,
            node,
            Some(error_name(c)),
            c == 1 || c == 11,
        ),
        (_, c) => end(unknown, invoke_value, node, Some(error_name(c)), false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(node: NodeId, body: Value) -> Result<ClientMessage, CallError> {
        Ok(ClientMessage { node, body })
    }

    fn err(code: u64) -> Value {
        json!({"type": "error", "code": code, "text": "x precondition y"})
    }

    fn read() -> Op {
        Op::Read { key: "k".into() }
    }

    fn write() -> Op {
        Op::Write {
            key: "k".into(),
            value: "1.1".into(),
        }
    }

    fn cas(from: Option<&str>) -> Op {
        Op::Cas {
            key: "k".into(),
            from: from.map(String::from),
            to: "1.2".into(),
        }
    }

    fn outcome(op: &Op, r: Result<ClientMessage, CallError>) -> (EventType, Value, Option<String>) {
        let c = completion(op, 1, r);
        (c.kind, c.value, c.error)
    }

    #[test]
    fn oks_carry_the_read_value_or_the_invoke_value_and_the_answering_node() {
        let c = completion(
            &read(),
            1,
            reply(3, json!({"type": "read_ok", "value": "a"})),
        );
        assert_eq!((c.kind, c.value, c.node), (EventType::Ok, json!("a"), 3));
        let c = completion(&write(), 1, reply(2, json!({"type": "write_ok"})));
        assert_eq!((c.kind, c.value, c.node), (EventType::Ok, json!("1.1"), 2));
        let c = completion(&cas(Some("a")), 1, reply(1, json!({"type": "cas_ok"})));
        assert_eq!((c.kind, c.value), (EventType::Ok, json!(["a", "1.2"])));
        assert_eq!(
            outcome(&read(), reply(1, err(20))),
            (EventType::Ok, Value::Null, None)
        );
    }

    #[test]
    fn precondition_failures_are_observations_and_other_definite_codes_plain_fails() {
        let p = Some("precondition".to_string());
        assert_eq!(outcome(&cas(Some("a")), reply(1, err(22))).2, p);
        assert_eq!(outcome(&cas(None), reply(1, err(22))).2, p);
        assert_eq!(outcome(&cas(Some("a")), reply(1, err(20))).2, p);
        // Expecting "absent" and told "absent": not a precondition failure.
        assert_eq!(
            outcome(&cas(None), reply(1, err(20))),
            (
                EventType::Fail,
                json!([null, "1.2"]),
                Some("key-does-not-exist".into())
            )
        );
        for code in DEFINITE_CODES {
            let (kind, _, error) = outcome(&write(), reply(1, err(code)));
            assert_eq!(kind, EventType::Fail, "code {code}");
            // The node's text never leaks into the error: a text that says
            // "precondition" must not turn a failure into an observation.
            assert_ne!(error.as_deref(), Some("precondition"));
        }
        assert!(completion(&write(), 1, reply(1, err(11))).backoff);
    }

    #[test]
    fn indefinite_codes_and_timeouts_are_info_for_writes_and_fail_for_reads() {
        for code in [0, 13, 1000, 1234, 5] {
            assert_eq!(outcome(&write(), reply(1, err(code))).0, EventType::Info);
            assert_eq!(
                outcome(&cas(Some("a")), reply(1, err(code))).0,
                EventType::Info
            );
            assert_eq!(outcome(&read(), reply(1, err(code))).0, EventType::Fail);
        }
        assert_eq!(
            outcome(&write(), Err(CallError::Timeout)),
            (EventType::Info, json!("1.1"), Some("timeout".into()))
        );
        assert_eq!(outcome(&read(), Err(CallError::Timeout)).0, EventType::Fail);
        let c = completion(&write(), 2, Err(CallError::NotSent("down".into())));
        assert_eq!((c.kind, c.node, c.backoff), (EventType::Fail, 2, true));
        assert_eq!(
            outcome(&write(), reply(1, json!({"type": "read_ok"}))),
            (
                EventType::Info,
                json!("1.1"),
                Some("unexpected reply \"read_ok\" to write".into())
            )
        );
        assert_eq!(
            outcome(&read(), reply(1, json!({"type": "read_ok"}))),
            (
                EventType::Fail,
                Value::Null,
                Some("read_ok without a \"value\"".into())
            )
        );
        assert_eq!(
            outcome(&write(), reply(1, json!({"type": "error"}))).0,
            EventType::Info
        );
    }
}
