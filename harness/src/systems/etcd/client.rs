//! A typed client of one member's v3 JSON gateway (and its `/debug/vars`).
//!
//! Every call either decodes the answer or returns a [`CallError`] whose
//! [`CallError::outcome`] says whether the op failed or is unknown; a cas
//! whose compare did not hold is an answer, [`Cas::Mismatch`], whose
//! outcome is `fail` (a precondition observation). See the module docs of
//! [`super`] for the table and its evidence.

use std::net::SocketAddr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::outcome::CallError;
use super::status::{parse_debug_vars, RaftStatus};
use super::wire::{
    b64, ErrorBody, Kv, Member, MemberAddResponse, MemberListResponse, PutResponse, RangeResponse,
    ResponseHeader, TxnResponse,
};
use crate::history::EventType;

/// The answer to a read of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Read {
    pub header: ResponseHeader,
    /// `None` when the key does not exist.
    pub kv: Option<Kv>,
}

/// The answer to a compare-and-set transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cas {
    /// The compare held and the put was applied.
    Swapped { header: ResponseHeader },
    /// The compare did not hold; nothing was written. `current` is the key
    /// as the transaction saw it (`None`: absent).
    Mismatch {
        header: ResponseHeader,
        current: Option<Kv>,
    },
}

impl Cas {
    /// `ok` when swapped, `fail` (precondition) when not.
    pub fn outcome(&self) -> EventType {
        match self {
            Cas::Swapped { .. } => EventType::Ok,
            Cas::Mismatch { .. } => EventType::Fail,
        }
    }
}

/// A client of one member. Cheap to clone (the HTTP pool is shared).
#[derive(Debug, Clone)]
pub struct EtcdClient {
    http: reqwest::Client,
    addr: SocketAddr,
    timeout: Duration,
}

/// An HTTP client suited to the gateway: no proxy, no Nagle, a short
/// connect timeout (a member that does not accept is down).
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_millis(500).min(timeout))
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
}

impl EtcdClient {
    /// A client of the member whose client URL is `http://addr`; each call
    /// gives up after `timeout`.
    pub fn new(http: reqwest::Client, addr: SocketAddr, timeout: Duration) -> Self {
        EtcdClient {
            http,
            addr,
            timeout,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The same member with another per-call timeout.
    pub fn with_timeout(&self, timeout: Duration) -> Self {
        EtcdClient {
            timeout,
            ..self.clone()
        }
    }

    /// `kv/put`.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<ResponseHeader, CallError> {
        let r: PutResponse = self
            .post("/v3/kv/put", json!({"key": b64(key), "value": b64(value)}))
            .await?;
        Ok(r.header)
    }

    /// `kv/range` of one key: linearizable (a read index round through the
    /// leader), or `serializable` (this member's own state, possibly stale).
    pub async fn get(&self, key: &[u8], serializable: bool) -> Result<Read, CallError> {
        let mut body = json!({"key": b64(key)});
        if serializable {
            body["serializable"] = json!(true);
        }
        let r: RangeResponse = self.post("/v3/kv/range", body).await?;
        Ok(Read {
            header: r.header,
            kv: r.kvs.into_iter().find(|kv| kv.key == key),
        })
    }

    /// A txn that puts `new` if the key's value is `expected` (a missing key
    /// never matches), and otherwise reads the key.
    pub async fn cas(&self, key: &[u8], expected: &[u8], new: &[u8]) -> Result<Cas, CallError> {
        let compare = json!({
            "key": b64(key), "target": "VALUE", "result": "EQUAL", "value": b64(expected)
        });
        self.txn(key, compare, new).await
    }

    /// A txn that puts `value` only if the key does not exist (its create
    /// revision is 0), and otherwise reads it.
    pub async fn put_if_absent(&self, key: &[u8], value: &[u8]) -> Result<Cas, CallError> {
        let compare = json!({
            "key": b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": "0"
        });
        self.txn(key, compare, value).await
    }

    async fn txn(&self, key: &[u8], compare: Value, new: &[u8]) -> Result<Cas, CallError> {
        let body = json!({
            "compare": [compare],
            "success": [{"request_put": {"key": b64(key), "value": b64(new)}}],
            "failure": [{"request_range": {"key": b64(key)}}],
        });
        let r: TxnResponse = self.post("/v3/kv/txn", body).await?;
        if r.succeeded {
            return Ok(Cas::Swapped { header: r.header });
        }
        let range = r
            .responses
            .into_iter()
            .find_map(|op| op.response_range)
            .ok_or_else(|| CallError::Malformed {
                status: 200,
                detail: "failed txn without the failure branch's range".into(),
            })?;
        Ok(Cas::Mismatch {
            header: r.header,
            current: range.kvs.into_iter().find(|kv| kv.key == key),
        })
    }

    /// The member's Raft state from `GET /debug/vars`.
    pub async fn raft_status(&self) -> Result<RaftStatus, CallError> {
        let req = self
            .http
            .get(format!("http://{}/debug/vars", self.addr))
            .timeout(self.timeout);
        let (status, bytes) = self.exchange(req).await?;
        if status != 200 {
            return Err(CallError::Malformed {
                status,
                detail: snippet(&bytes),
            });
        }
        parse_debug_vars(&bytes).map_err(|e| CallError::Malformed {
            status,
            detail: e.to_string(),
        })
    }

    /// `cluster/member/list`, as this member knows it.
    pub async fn member_list(&self) -> Result<Vec<Member>, CallError> {
        let r: MemberListResponse = self.post("/v3/cluster/member/list", json!({})).await?;
        Ok(r.members)
    }

    /// `cluster/member/add` of a voter that will advertise `peer_urls`.
    pub async fn member_add(&self, peer_urls: &[String]) -> Result<MemberAddResponse, CallError> {
        self.post("/v3/cluster/member/add", json!({"peerURLs": peer_urls}))
            .await
    }

    /// `cluster/member/remove`; returns the members left.
    pub async fn member_remove(&self, id: u64) -> Result<Vec<Member>, CallError> {
        // A uint64 in proto3 JSON is a string: a number above 2^53 would
        // lose precision in some decoders.
        let r: MemberListResponse = self
            .post("/v3/cluster/member/remove", json!({"ID": id.to_string()}))
            .await?;
        Ok(r.members)
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: Value) -> Result<T, CallError> {
        let req = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .timeout(self.timeout)
            .json(&body);
        let (status, bytes) = self.exchange(req).await?;
        if status == 200 {
            return serde_json::from_slice(&bytes).map_err(|e| CallError::Malformed {
                status,
                detail: format!("{e}: {}", snippet(&bytes)),
            });
        }
        match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(e) if !e.message.is_empty() || !e.error.is_empty() => Err(CallError::Server {
                status,
                code: e.code,
                message: if e.message.is_empty() {
                    e.error
                } else {
                    e.message
                },
            }),
            _ => Err(CallError::Malformed {
                status,
                detail: snippet(&bytes),
            }),
        }
    }

    async fn exchange(&self, req: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), CallError> {
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.map_err(transport)?;
        Ok((status, bytes.to_vec()))
    }
}

fn transport(e: reqwest::Error) -> CallError {
    // A connect timeout is both: the request never left.
    if e.is_connect() {
        CallError::NotSent(root_cause(&e))
    } else if e.is_timeout() {
        CallError::Timeout
    } else {
        CallError::Lost(root_cause(&e))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

/// The start of a body, for error messages.
fn snippet(bytes: &[u8]) -> String {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim();
    match s.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}
