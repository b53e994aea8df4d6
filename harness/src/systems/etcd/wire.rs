//! etcd's v3 JSON gateway on the wire: grpc-gateway's proto3 JSON.
//!
//! What the decoding has to cope with (each seen on etcd 3.4.23):
//! - default values are left out: `succeeded: false`, an empty `kvs`,
//!   `count: 0`, an empty `value`, a member's `name` before it started;
//! - 64-bit integers are JSON strings (`"revision": "2"`), member ids too,
//!   in decimal (`"ID": "9685874076489904787"`);
//! - keys and values are base64;
//! - responses use the proto field names (`cluster_id`, `create_revision`,
//!   `response_range`), except where the proto itself says `ID`,
//!   `peerURLs`, `clientURLs`, `isLearner`; requests may use either
//!   spelling;
//! - errors are a non-200 status with `{"error", "code", "message"}`.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Deserializer};

/// Base64 of bytes, as requests carry keys and values.
pub fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// A 64-bit integer that proto3 JSON writes as a string (or, from some
/// encoders, a number); absent means 0.
pub fn de_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Str(String),
        Int(u64),
    }
    match Num::deserialize(d)? {
        Num::Int(n) => Ok(n),
        Num::Str(s) => s.parse().map_err(serde::de::Error::custom),
    }
}

/// Base64 bytes; absent means empty.
pub fn de_b64<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = String::deserialize(d)?;
    B64.decode(s.as_bytes()).map_err(serde::de::Error::custom)
}

/// The header every response carries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct ResponseHeader {
    #[serde(default, deserialize_with = "de_u64")]
    pub cluster_id: u64,
    /// The answering member's id (decimal on the wire).
    #[serde(default, deserialize_with = "de_u64")]
    pub member_id: u64,
    /// The store's revision after the request.
    #[serde(default, deserialize_with = "de_u64")]
    pub revision: u64,
    /// Note: the term of the last *applied* entry, which lags behind the
    /// Raft term; use `/debug/vars` for the term.
    #[serde(default, deserialize_with = "de_u64")]
    pub raft_term: u64,
}

/// One key-value pair.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Kv {
    #[serde(default, deserialize_with = "de_b64")]
    pub key: Vec<u8>,
    #[serde(default, deserialize_with = "de_b64")]
    pub value: Vec<u8>,
    #[serde(default, deserialize_with = "de_u64")]
    pub create_revision: u64,
    #[serde(default, deserialize_with = "de_u64")]
    pub mod_revision: u64,
    #[serde(default, deserialize_with = "de_u64")]
    pub version: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct PutResponse {
    #[serde(default)]
    pub header: ResponseHeader,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct RangeResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default)]
    pub kvs: Vec<Kv>,
    #[serde(default, deserialize_with = "de_u64")]
    pub count: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct TxnResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default)]
    pub succeeded: bool,
    #[serde(default)]
    pub responses: Vec<ResponseOp>,
}

/// One branch result of a txn; only the kinds we send are decoded.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseOp {
    pub response_range: Option<RangeResponse>,
    pub response_put: Option<PutResponse>,
}

/// A cluster member as `member/list|add|remove` report it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Member {
    #[serde(rename = "ID", default, deserialize_with = "de_u64")]
    pub id: u64,
    /// Empty until the member has started and published its name.
    #[serde(default)]
    pub name: String,
    #[serde(rename = "peerURLs", default)]
    pub peer_urls: Vec<String>,
    #[serde(rename = "clientURLs", default)]
    pub client_urls: Vec<String>,
    #[serde(rename = "isLearner", default)]
    pub is_learner: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MemberListResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    #[serde(default)]
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct MemberAddResponse {
    #[serde(default)]
    pub header: ResponseHeader,
    pub member: Option<Member>,
    #[serde(default)]
    pub members: Vec<Member>,
}

/// grpc-gateway's error body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: String,
    /// The gRPC status code.
    pub code: Option<i64>,
    #[serde(default)]
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    // Bodies as etcd 3.4.23 sent them.
    #[test]
    fn omitted_defaults_decode_as_defaults() {
        let missing: RangeResponse = serde_json::from_str(
            r#"{"header":{"cluster_id":"6964728607212473779","member_id":"9685874076489904787","revision":"2","raft_term":"2"}}"#,
        )
        .unwrap();
        assert_eq!((missing.kvs.len(), missing.count), (0, 0));
        assert_eq!(missing.header.member_id, 9685874076489904787);
        assert_eq!(missing.header.revision, 2);

        let empty_value: RangeResponse = serde_json::from_str(
            r#"{"header":{"revision":"5"},"kvs":[{"key":"ZQ==","create_revision":"5","mod_revision":"5","version":"1"}],"count":"1"}"#,
        )
        .unwrap();
        assert_eq!(empty_value.kvs[0].key, b"e");
        assert_eq!(empty_value.kvs[0].value, b"");

        let failed: TxnResponse = serde_json::from_str(
            r#"{"header":{"revision":"2"},"responses":[{"response_range":{"header":{"revision":"2"},"kvs":[{"key":"azE=","create_revision":"2","mod_revision":"2","version":"1","value":"djE="}],"count":"1"}}]}"#,
        )
        .unwrap();
        assert!(!failed.succeeded);
        let current = &failed.responses[0].response_range.as_ref().unwrap().kvs[0];
        assert_eq!(current.value, b"v1");
    }

    #[test]
    fn members_and_errors_decode() {
        let add: MemberAddResponse = serde_json::from_str(
            r#"{"header":{"raft_term":"2"},"member":{"ID":"957839736802308543","peerURLs":["http://127.0.0.1:17390"]},"members":[{"ID":"957839736802308543","peerURLs":["http://127.0.0.1:17390"]},{"ID":"9685874076489904787","name":"n1","peerURLs":["http://127.0.0.1:17380"],"clientURLs":["http://127.0.0.1:17379"]}]}"#,
        )
        .unwrap();
        let new = add.member.unwrap();
        assert_eq!((new.id, new.name.as_str()), (957839736802308543, ""));
        assert_eq!(add.members[1].name, "n1");

        let e: ErrorBody = serde_json::from_str(
            r#"{"error":"etcdserver: request timed out","message":"etcdserver: request timed out","code":14}"#,
        )
        .unwrap();
        assert_eq!(
            (e.code, e.message.as_str()),
            (Some(14), "etcdserver: request timed out")
        );
    }
}
