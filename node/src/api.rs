//! The HTTP client API (docs/node.md, "HTTP API" and "Errors"), a thin layer that validates
//! input, hands a [`Request`] to the Raft loop and maps its [`Response`] to a
//! status code and a JSON body. Every error body carries `"outcome"`:
//! `"failed"` when the request definitely had no effect, `"unknown"` when a
//! write may still commit (leadership lost after append, commit wait timed out).

use crate::clock::Clock;
use crate::raft::{ConfChange, NodeId};
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Longest accepted key.
pub const MAX_KEY_BYTES: usize = 1024;

/// How a read is served (docs/node.md, "HTTP API").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadMode {
    /// ReadIndex: leadership confirmed by a majority, then wait for apply.
    Linearizable,
    /// The leader answers within its lease (falls back to ReadIndex when the lease lapsed).
    Lease,
    /// Any node answers from its own state.
    Stale,
}

impl ReadMode {
    /// Parses `consistency=`; Consul's names are aliases.
    pub fn parse(s: &str) -> Option<ReadMode> {
        match s {
            "linearizable" | "consistent" => Some(ReadMode::Linearizable),
            "lease" | "default" => Some(ReadMode::Lease),
            "stale" => Some(ReadMode::Stale),
            _ => None,
        }
    }
}

/// A client request for the Raft loop.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Read {
        key: String,
        mode: ReadMode,
    },
    Put {
        key: String,
        value: String,
    },
    Cas {
        key: String,
        from: Option<String>,
        to: String,
    },
    Status,
    Member(ConfChange),
}

impl Request {
    /// Whether this request may change state (its fate can be unknown).
    fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Put { .. } | Request::Cas { .. } | Request::Member(_)
        )
    }
}

/// `GET /status` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusBody {
    pub id: NodeId,
    pub term: u64,
    pub role: String,
    pub leader: Option<NodeId>,
    pub commit_index: u64,
    pub last_applied: u64,
    /// The index of its last log entry, committed or not: how far a
    /// follower lags, or how long a leader's uncommitted suffix is, which
    /// the harness's `figure-8` nemesis lines up.
    pub last_index: u64,
    pub members: Vec<NodeId>,
    pub learners: Vec<NodeId>,
}

/// What an error answer tells the client about its request: it definitely
/// had no effect (`failed`, Jepsen's fail), or it may still take effect
/// (`unknown`, Jepsen's info). Sent as `"outcome"` in every error body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorOutcome {
    Failed,
    Unknown,
}

impl ErrorOutcome {
    fn as_str(self) -> &'static str {
        match self {
            ErrorOutcome::Failed => "failed",
            ErrorOutcome::Unknown => "unknown",
        }
    }
}

/// The Raft loop's answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    Value(Option<String>),
    Done,
    Status(StatusBody),
    Members {
        voters: Vec<NodeId>,
        learners: Vec<NodeId>,
    },
    NotLeader {
        leader: Option<NodeId>,
    },
    Precondition {
        current: Option<String>,
    },
    /// A membership change is already in flight.
    ChangePending,
    BadRequest(String),
    Unavailable {
        error: String,
        outcome: ErrorOutcome,
    },
}

/// Hands a request to the Raft loop; `Err` when the loop cannot take it
/// (overloaded or shutting down), in which case it had no effect.
pub type Submit =
    Arc<dyn Fn(Request, oneshot::Sender<Response>) -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
struct ApiState {
    submit: Submit,
    timeout: Duration,
}

/// Builds the router. `timeout` bounds how long a request waits for the Raft loop.
pub fn router(submit: Submit, timeout: Duration) -> Router {
    Router::new()
        .route("/kv/{key}", get(get_kv).put(put_kv))
        .route("/kv/{key}/cas", post(cas_kv))
        .route("/status", get(status))
        .route("/members/{id}", post(add_member).delete(remove_member))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(ApiState { submit, timeout })
}

/// `GET /debug/clock` (the node's clock: rate, elapsed time, ticks) and
/// `POST /debug/clock` with `{"rate": R}` and/or `{"jump_ms": MS}`, which
/// skew it (clock faults). Served only with `--clock-control`.
pub fn clock_router(clock: Clock) -> Router {
    Router::new()
        .route("/debug/clock", get(clock_status).post(clock_skew))
        .with_state(clock)
}

async fn clock_status(State(clock): State<Clock>) -> HttpResponse {
    (StatusCode::OK, Json(clock.status())).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClockSkew {
    rate: Option<f64>,
    jump_ms: Option<i64>,
}

async fn clock_skew(
    State(clock): State<Clock>,
    body: Result<Bytes, BytesRejection>,
) -> HttpResponse {
    let skew: ClockSkew = match parse_body(body) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if let Some(rate) = skew.rate {
        if let Err(e) = clock.set_rate(rate) {
            return bad_request(e);
        }
    }
    if let Some(ms) = skew.jump_ms {
        clock.jump_ms(ms);
    }
    clock_status(State(clock)).await
}

fn error(code: StatusCode, error: &str, outcome: ErrorOutcome, extra: Value) -> HttpResponse {
    let mut body = json!({"error": error, "outcome": outcome.as_str()});
    if let (Value::Object(b), Value::Object(x)) = (&mut body, extra) {
        b.extend(x);
    }
    (code, Json(body)).into_response()
}

fn bad_request(msg: impl Into<String>) -> HttpResponse {
    error(
        StatusCode::BAD_REQUEST,
        "bad-request",
        ErrorOutcome::Failed,
        json!({"message": msg.into()}),
    )
}

async fn not_found(uri: axum::http::Uri) -> HttpResponse {
    if uri.path().starts_with("/kv/") || uri.path() == "/kv" {
        // `/kv/`, `/kv/a/b`: an empty key or one with an unescaped '/'.
        return bad_input("bad key: must be non-empty, with '/' percent-encoded").into_response();
    }
    error(
        StatusCode::NOT_FOUND,
        "not-found",
        ErrorOutcome::Failed,
        json!({}),
    )
}

/// A request rejected before it reached the Raft loop (400 or 413).
struct BadInput(StatusCode, String);

impl IntoResponse for BadInput {
    fn into_response(self) -> HttpResponse {
        error(
            self.0,
            "bad-request",
            ErrorOutcome::Failed,
            json!({"message": self.1}),
        )
    }
}

fn bad_input(msg: impl Into<String>) -> BadInput {
    BadInput(StatusCode::BAD_REQUEST, msg.into())
}

fn check_key(key: Result<Path<String>, PathRejection>) -> Result<String, BadInput> {
    let Path(key) = key.map_err(|e| bad_input(format!("bad key: {e}")))?;
    if key.is_empty() {
        return Err(bad_input("empty key"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(bad_input(format!("key longer than {MAX_KEY_BYTES} bytes")));
    }
    if key.chars().any(char::is_control) {
        return Err(bad_input("key contains control characters"));
    }
    Ok(key)
}

fn parse_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, BadInput> {
    let body = body.map_err(|e| {
        let code = e.status();
        let code = if code == StatusCode::PAYLOAD_TOO_LARGE {
            code
        } else {
            StatusCode::BAD_REQUEST
        };
        BadInput(code, e.body_text())
    })?;
    serde_json::from_slice(&body).map_err(|e| bad_input(format!("bad JSON body: {e}")))
}

async fn call(st: &ApiState, req: Request) -> HttpResponse {
    let write = req.is_write();
    let (tx, rx) = oneshot::channel();
    if let Err(why) = (st.submit)(req, tx) {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            ErrorOutcome::Failed,
            json!({"message": why}),
        );
    }
    let maybe = if write {
        ErrorOutcome::Unknown
    } else {
        ErrorOutcome::Failed
    };
    match tokio::time::timeout(st.timeout, rx).await {
        Ok(Ok(resp)) => render(resp),
        Ok(Err(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting-down",
            maybe,
            json!({}),
        ),
        Err(_) => error(StatusCode::SERVICE_UNAVAILABLE, "timeout", maybe, json!({})),
    }
}

fn render(resp: Response) -> HttpResponse {
    match resp {
        Response::Value(v) => (StatusCode::OK, Json(json!({"value": v}))).into_response(),
        Response::Done => (StatusCode::OK, Json(json!({}))).into_response(),
        Response::Status(s) => (StatusCode::OK, Json(s)).into_response(),
        Response::Members { voters, learners } => (
            StatusCode::OK,
            Json(json!({"members": voters, "learners": learners})),
        )
            .into_response(),
        Response::NotLeader { leader } => error(
            StatusCode::MISDIRECTED_REQUEST,
            "not-leader",
            ErrorOutcome::Failed,
            json!({"leader": leader}),
        ),
        Response::Precondition { current } => error(
            StatusCode::CONFLICT,
            "precondition",
            ErrorOutcome::Failed,
            json!({"current": current}),
        ),
        Response::ChangePending => error(
            StatusCode::CONFLICT,
            "change-pending",
            ErrorOutcome::Failed,
            json!({}),
        ),
        Response::BadRequest(m) => bad_request(m),
        Response::Unavailable { error: e, outcome } => {
            error(StatusCode::SERVICE_UNAVAILABLE, &e, outcome, json!({}))
        }
    }
}

async fn get_kv(
    State(st): State<ApiState>,
    key: Result<Path<String>, PathRejection>,
    Query(q): Query<HashMap<String, String>>,
) -> HttpResponse {
    let key = match check_key(key) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    let mode = match q.get("consistency") {
        None => ReadMode::Linearizable,
        Some(c) => match ReadMode::parse(c) {
            Some(m) => m,
            None => {
                return bad_request(format!(
                    "consistency must be linearizable, lease or stale (or consistent, default), got {c:?}"
                ))
            }
        },
    };
    call(&st, Request::Read { key, mode }).await
}

#[derive(Deserialize)]
struct PutBody {
    value: String,
}

async fn put_kv(
    State(st): State<ApiState>,
    key: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> HttpResponse {
    write(&st, key, body, |key, b: PutBody| Request::Put {
        key,
        value: b.value,
    })
    .await
}

#[derive(Deserialize)]
struct CasBody {
    #[serde(default)]
    from: Option<String>,
    to: String,
}

async fn cas_kv(
    State(st): State<ApiState>,
    key: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> HttpResponse {
    write(&st, key, body, |key, b: CasBody| Request::Cas {
        key,
        from: b.from,
        to: b.to,
    })
    .await
}

/// A write: a valid key and a JSON body of type `B`, or a 400 saying which
/// is wrong (the key is checked first), then the request `make` builds.
async fn write<B: serde::de::DeserializeOwned>(
    st: &ApiState,
    key: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
    make: impl FnOnce(String, B) -> Request,
) -> HttpResponse {
    let key = match check_key(key) {
        Ok(k) => k,
        Err(r) => return r.into_response(),
    };
    match parse_body::<B>(body) {
        Ok(b) => call(st, make(key, b)).await,
        Err(r) => r.into_response(),
    }
}

async fn status(State(st): State<ApiState>) -> HttpResponse {
    call(&st, Request::Status).await
}

fn parse_id(id: Result<Path<String>, PathRejection>) -> Result<NodeId, BadInput> {
    let Path(id) = id.map_err(|e| bad_input(format!("bad node id: {e}")))?;
    match id.parse::<NodeId>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(bad_input(format!(
            "node id must be a positive integer, got {id:?}"
        ))),
    }
}

async fn add_member(
    State(st): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> HttpResponse {
    match parse_id(id) {
        Ok(id) => call(&st, Request::Member(ConfChange::AddNode(id))).await,
        Err(r) => r.into_response(),
    }
}

async fn remove_member(
    State(st): State<ApiState>,
    id: Result<Path<String>, PathRejection>,
) -> HttpResponse {
    match parse_id(id) {
        Ok(id) => call(&st, Request::Member(ConfChange::RemoveNode(id))).await,
        Err(r) => r.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Serves the router with a fixed answer per request kind and records the requests.
    async fn serve(answer: fn(&Request) -> Option<Response>) -> (String, Arc<Mutex<Vec<Request>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let submit: Submit = Arc::new(move |req, tx| {
            log.lock().unwrap().push(req.clone());
            if let Some(r) = answer(&req) {
                let _ = tx.send(r);
            } else {
                // Never answered: the handler must time out.
                std::mem::forget(tx);
            }
            Ok(())
        });
        let app = router(submit, Duration::from_millis(200));
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
        (format!("http://{addr}"), seen)
    }

    async fn body(r: reqwest::Response) -> (u16, Value) {
        let code = r.status().as_u16();
        (code, r.json().await.unwrap())
    }

    #[tokio::test]
    async fn requests_are_validated_and_mapped() {
        let (base, seen) = serve(|req| match req {
            Request::Read { key, .. } if key == "k" => Some(Response::Value(Some("v".into()))),
            Request::Read { .. } => Some(Response::NotLeader { leader: Some(2) }),
            Request::Cas { .. } => Some(Response::Precondition { current: None }),
            Request::Put { key, .. } if key == "slow" => None,
            Request::Put { .. } => Some(Response::Done),
            _ => Some(Response::ChangePending),
        })
        .await;
        let c = reqwest::Client::new();
        let (code, v) = body(
            c.get(format!("{base}/kv/k?consistency=stale"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((code, v["value"].as_str()), (200, Some("v")));
        let (code, v) = body(c.get(format!("{base}/kv/other")).send().await.unwrap()).await;
        assert_eq!(code, 421);
        assert_eq!(v["leader"], 2);
        assert_eq!(v["outcome"], "failed");
        let (code, v) = body(
            c.get(format!("{base}/kv/k?consistency=bogus"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((code, v["outcome"].as_str()), (400, Some("failed")));
        let (code, _) = body(
            c.put(format!("{base}/kv/k"))
                .body("{\"value\": 3}")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, 400);
        let (code, _) = body(
            c.put(format!("{base}/kv/k"))
                .body("not json")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, 400);
        let big = format!("{{\"value\": \"{}\"}}", "x".repeat(MAX_BODY_BYTES + 10));
        let (code, _) = body(
            c.put(format!("{base}/kv/k"))
                .body(big)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(code, 413);
        let (code, v) = body(
            c.put(format!("{base}/kv/k"))
                .body("{\"value\": \"w\"}")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((code, v), (200, json!({})));
        let (code, v) = body(
            c.put(format!("{base}/kv/slow"))
                .body("{\"value\": \"w\"}")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((code, v["outcome"].as_str()), (503, Some("unknown")));
        let (code, v) = body(
            c.post(format!("{base}/kv/k/cas"))
                .body("{\"from\": null, \"to\": \"x\"}")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!((code, v["error"].as_str()), (409, Some("precondition")));
        let (code, _) = body(c.post(format!("{base}/members/abc")).send().await.unwrap()).await;
        assert_eq!(code, 400);
        let (code, v) = body(c.delete(format!("{base}/members/3")).send().await.unwrap()).await;
        assert_eq!((code, v["error"].as_str()), (409, Some("change-pending")));
        let (code, _) = body(c.get(format!("{base}/nope")).send().await.unwrap()).await;
        assert_eq!(code, 404);
        let (code, _) = body(c.get(format!("{base}/kv/")).send().await.unwrap()).await;
        assert_eq!(code, 400);
        let (code, _) = body(c.get(format!("{base}/kv/a/b")).send().await.unwrap()).await;
        assert_eq!(code, 400);
        let seen = seen.lock().unwrap();
        assert!(seen.contains(&Request::Read {
            key: "k".into(),
            mode: ReadMode::Stale
        }));
        assert!(seen.contains(&Request::Cas {
            key: "k".into(),
            from: None,
            to: "x".into()
        }));
        assert!(seen.contains(&Request::Member(ConfChange::RemoveNode(3))));
        assert_eq!(
            seen.len(),
            6,
            "invalid requests must not reach the Raft loop"
        );
    }

    #[test]
    fn consistency_aliases() {
        assert_eq!(ReadMode::parse("consistent"), Some(ReadMode::Linearizable));
        assert_eq!(ReadMode::parse("default"), Some(ReadMode::Lease));
        assert_eq!(ReadMode::parse("stale"), Some(ReadMode::Stale));
        assert_eq!(ReadMode::parse("STALE"), None);
    }
}
