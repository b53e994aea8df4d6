//! etcd's side of the client seam: workload ops as v3 gateway calls, ended
//! by etcd's own semantics (the table of [`super`]):
//!
//! - `read`: a range of the key, `linearizable` (etcd's default: a read
//!   index round through the leader) or, for our `stale` level,
//!   `serializable` (the member's own state, possibly stale);
//! - `write`: a put;
//! - `cas`: a txn comparing the value (or, from `null`, that the key does
//!   not exist) and putting the new value; a compare that did not hold is
//!   `fail` with error `precondition`, an observation the checker verifies;
//! - `append`: a linearizable read, then a cas from what it read, retried
//!   while other clients win the race.
//!
//! Every member forwards proposals to its leader itself, so there is no
//! redirect: the member asked is the member that answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;
use tokio::time::Instant;
use workloads::Op;

use super::client::{http_client, Cas, EtcdClient};
use super::outcome::{CallError, Effect};
use crate::client::{Client, Completion, ReadConsistency};
use crate::cluster::NodeId;
use crate::history::EventType;

/// How many read+cas rounds an append tries when another client keeps
/// changing the key between its read and its cas.
const MAX_APPEND_ATTEMPTS: usize = 8;

/// The workload client of an etcd cluster.
#[derive(Debug, Clone)]
pub struct EtcdKv {
    members: BTreeMap<NodeId, EtcdClient>,
    op_timeout: Duration,
    serializable: bool,
}

impl EtcdKv {
    /// A client of the members at `addrs` (node → client address); an op
    /// gives up after `op_timeout`. `Lease` reads do not exist in etcd: the
    /// system's capabilities refuse them before a client is made.
    pub fn new(
        addrs: BTreeMap<NodeId, SocketAddr>,
        op_timeout: Duration,
        reads: ReadConsistency,
    ) -> Result<Self, reqwest::Error> {
        let http = http_client(op_timeout)?;
        let members = addrs
            .into_iter()
            .map(|(id, a)| (id, EtcdClient::new(http.clone(), a, op_timeout)))
            .collect();
        Ok(EtcdKv {
            members,
            op_timeout,
            serializable: reads == ReadConsistency::Stale,
        })
    }

    /// Performs one op on member `node`.
    pub async fn perform(&self, op: &Op, node: NodeId) -> Completion {
        let deadline = Instant::now() + self.op_timeout;
        let Some(member) = self.members.get(&node) else {
            return Completion::unreachable(
                op.invoke_value(),
                node,
                format!("unknown node {node}"),
            );
        };
        match op {
            Op::Read { key } => read(member, key, self.serializable, node, deadline).await,
            Op::Write { key, value } => {
                let c = within(member, deadline);
                match c.put(key.as_bytes(), value.as_bytes()).await {
                    Ok(_) => Completion::new(EventType::Ok, op.invoke_value(), node, None),
                    Err(e) => failed(&e, Effect::Write, op.invoke_value(), node),
                }
            }
            Op::Cas { key, from, to } => {
                cas(
                    member,
                    key,
                    from.as_deref(),
                    to,
                    node,
                    deadline,
                    op.invoke_value(),
                )
                .await
            }
            Op::Append { key, value } => append(member, key, value, node, deadline, op).await,
        }
    }
}

impl Client for EtcdKv {
    fn invoke<'a>(&'a self, op: &'a Op, node: NodeId) -> BoxFuture<'a, Completion> {
        Box::pin(self.perform(op, node))
    }
}

/// The member's client with what is left of the op's time.
fn within(member: &EtcdClient, deadline: Instant) -> EtcdClient {
    let left = deadline.saturating_duration_since(Instant::now());
    member.with_timeout(left.max(Duration::from_millis(1)))
}

/// A call that did not answer: its outcome by the table of [`super`]; an
/// unreachable member makes the worker back off.
fn failed(e: &CallError, effect: Effect, value: Value, node: NodeId) -> Completion {
    match e {
        CallError::NotSent(_) => Completion::unreachable(value, node, e.short()),
        _ => Completion::new(e.outcome(effect), value, node, Some(e.short())),
    }
}

async fn read(
    member: &EtcdClient,
    key: &str,
    serializable: bool,
    node: NodeId,
    deadline: Instant,
) -> Completion {
    match within(member, deadline)
        .get(key.as_bytes(), serializable)
        .await
    {
        Ok(r) => {
            let value =
                r.kv.map(|kv| Value::String(String::from_utf8_lossy(&kv.value).into_owned()))
                    .unwrap_or(Value::Null);
            Completion::new(EventType::Ok, value, node, None)
        }
        Err(e) => failed(&e, Effect::Read, Value::Null, node),
    }
}

async fn cas(
    member: &EtcdClient,
    key: &str,
    from: Option<&str>,
    to: &str,
    node: NodeId,
    deadline: Instant,
    value: Value,
) -> Completion {
    let c = within(member, deadline);
    let r = match from {
        Some(f) => c.cas(key.as_bytes(), f.as_bytes(), to.as_bytes()).await,
        None => c.put_if_absent(key.as_bytes(), to.as_bytes()).await,
    };
    match r {
        Ok(Cas::Swapped { .. }) => Completion::new(EventType::Ok, value, node, None),
        Ok(Cas::Mismatch { .. }) => {
            Completion::new(EventType::Fail, value, node, Some("precondition".into()))
        }
        Err(e) => failed(&e, Effect::Write, value, node),
    }
}

async fn append(
    member: &EtcdClient,
    key: &str,
    suffix: &str,
    node: NodeId,
    deadline: Instant,
    op: &Op,
) -> Completion {
    let value = op.invoke_value();
    for _ in 0..MAX_APPEND_ATTEMPTS {
        let r = read(member, key, false, node, deadline).await;
        if r.kind != EventType::Ok {
            // Nothing was written yet: the append definitely did not happen.
            return Completion { value, ..r };
        }
        let current = r.value.as_str().map(str::to_string);
        let to = format!("{}{suffix}", current.as_deref().unwrap_or(""));
        let c = cas(
            member,
            key,
            current.as_deref(),
            &to,
            node,
            deadline,
            value.clone(),
        )
        .await;
        if !(c.kind == EventType::Fail && c.error.as_deref() == Some("precondition")) {
            return c;
        }
    }
    Completion::new(
        EventType::Fail,
        value,
        node,
        Some("gave up: precondition".into()),
    )
}
