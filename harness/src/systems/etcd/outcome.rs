//! What a failed gateway call proves: the classification of the module docs'
//! table, in code.

use crate::history::EventType;

/// Whether a call could change the store: a read that did not answer
/// changed nothing, a write that did not answer may still happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Read,
    Write,
}

/// A gateway call that did not produce a decoded answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No connection to the member: the request never left.
    #[error("connect: {0}")]
    NotSent(String),
    /// The client's deadline passed: the request may have been received.
    #[error("timeout")]
    Timeout,
    /// The connection broke after the request may have left.
    #[error("connection lost: {0}")]
    Lost(String),
    /// A grpc-gateway error body (any non-200 status with JSON).
    #[error("HTTP {status}: {message} (gRPC code {code:?})")]
    Server {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// An answer that is not what the gateway sends: a wrong status without
    /// an error body, or a 200 whose body does not decode.
    #[error("HTTP {status}: {detail}")]
    Malformed { status: u16, detail: String },
}

/// The gRPC code etcd and grpc-gateway use for a request they rejected on
/// validation, before proposing anything (`InvalidArgument`).
const INVALID_ARGUMENT: i64 = 3;

/// Server messages that prove the request was rejected before Raft took it,
/// or had no effect when applied. See the module docs' table.
const DEFINITE_MESSAGES: &[&str] = &[
    "etcdserver: too many requests",
    "etcdserver: mvcc: database space exceeded",
    "raft proposal dropped",
];

impl CallError {
    /// Whether the error proves that the request had no effect.
    pub fn is_definite(&self) -> bool {
        match self {
            CallError::NotSent(_) => true,
            CallError::Timeout | CallError::Lost(_) => false,
            CallError::Server {
                status,
                code,
                message,
            } => {
                *status == 404
                    || *code == Some(INVALID_ARGUMENT)
                    || DEFINITE_MESSAGES.contains(&message.as_str())
            }
            CallError::Malformed { status, .. } => *status == 404,
        }
    }

    /// `fail` when nothing happened (always for a read), `info` when a
    /// write may still take effect.
    pub fn outcome(&self, effect: Effect) -> EventType {
        match effect {
            Effect::Read => EventType::Fail,
            Effect::Write if self.is_definite() => EventType::Fail,
            Effect::Write => EventType::Info,
        }
    }

    /// A short error name for histories: `timeout`, `unreachable`, `lost`,
    /// or the server's message.
    pub fn short(&self) -> String {
        match self {
            CallError::NotSent(_) => "unreachable".into(),
            CallError::Timeout => "timeout".into(),
            CallError::Lost(_) => "lost".into(),
            CallError::Server { message, .. } => message.clone(),
            CallError::Malformed { status, .. } => format!("malformed-{status}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: u16, code: i64, message: &str) -> CallError {
        CallError::Server {
            status,
            code: Some(code),
            message: message.into(),
        }
    }

    #[test]
    fn writes_are_unknown_unless_the_error_proves_nothing_happened() {
        use EventType::{Fail, Info};
        let cases = [
            (CallError::NotSent("refused".into()), Fail),
            (CallError::Timeout, Info),
            (CallError::Lost("reset".into()), Info),
            // Bodies and statuses as etcd 3.4.23 sent them.
            (server(503, 14, "etcdserver: request timed out"), Info),
            (server(500, 2, "context deadline exceeded"), Info),
            (server(400, 3, "etcdserver: key is not provided"), Fail),
            (
                server(
                    400,
                    3,
                    "invalid character 'g' looking for beginning of value",
                ),
                Fail,
            ),
            (server(500, 2, "raft proposal dropped"), Fail),
            (server(429, 8, "etcdserver: too many requests"), Fail),
            (server(503, 14, "etcdserver: server stopped"), Info),
            (
                server(
                    503,
                    14,
                    "etcdserver: request timed out, possibly due to previous leader failure",
                ),
                Info,
            ),
            (
                CallError::Malformed {
                    status: 404,
                    detail: "Not Found".into(),
                },
                Fail,
            ),
            (
                CallError::Malformed {
                    status: 200,
                    detail: "not JSON".into(),
                },
                Info,
            ),
        ];
        for (e, want) in cases {
            assert_eq!(e.outcome(Effect::Write), want, "{e}");
            assert_eq!(e.outcome(Effect::Read), Fail, "{e}");
        }
    }
}
