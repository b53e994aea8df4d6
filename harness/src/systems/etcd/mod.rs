//! etcd 3.4 as a system under test.
//!
//! - [`system`]: etcd's descriptor (capabilities, `--system-opt`s) and
//!   [`EtcdCluster`] as the seam's [`Cluster`](crate::systems::Cluster);
//! - [`kv`]: the seam's [`Client`](crate::client::Client): workload ops as
//!   gateway calls, ended by the table below;
//!
//! and the parts they are made of:
//!
//! - [`binary`]: find `etcd` (Debian: `apt-get install -y etcd-server`) and
//!   check its version;
//! - [`member`]: one member's command line (name `n<i>`, its own data dir,
//!   client and peer URLs on loopback, the advertised peer URL pointing at
//!   the proxy in front of it, initial cluster and state, Raft timing,
//!   pre-vote) and waiting for its ports after a kill;
//! - [`client`]: a typed client of the v3 JSON gateway (put, range, cas and
//!   put-if-absent txns, member list/add/remove) and of `/debug/vars`, with
//!   [`wire`] decoding grpc-gateway's proto3 JSON and [`status`] the Raft
//!   state;
//! - [`outcome`]: what a failed call proves (the table below);
//! - [`cluster`]: N members under one [`Supervisor`](crate::cluster::Supervisor)
//!   behind an identified [`ProxyMesh`](crate::proxy::ProxyMesh), with kill,
//!   restart on the same data dir, and membership changes.
//!
//! Every member's peer traffic goes through a proxy mesh with a listener per
//! destination: etcd members dial one advertised peer URL per member, so
//! the proxy names the dialer from `/proc` (see [`crate::proxy`] for what a
//! link, and a one-way cut, means for etcd).
//!
//! # Outcomes of client calls
//!
//! A read that got no answer changed nothing: it is `fail`, whatever the
//! error. A write (put, cas txn) is `ok` when answered, `fail` when the
//! answer or the error proves it was not applied, and `info` (unknown: it
//! may still take effect) otherwise. "Seen" means observed on etcd 3.4.23;
//! the code paths are etcd 3.4's `processInternalRaftRequestOnce` (checks,
//! then `Propose`, then wait for apply with a request timeout of 5 s + 2 ×
//! the election timeout) and raft's `Step`.
//!
//! | answer or error | write | evidence |
//! |---|---|---|
//! | 200, decoded | ok | |
//! | 200 txn without `succeeded` (compare false) | fail: precondition observation | proto3 omits `false`; the failure branch ran instead (its range shows the current value). Seen. |
//! | connect error: refused, connect timeout | fail | no byte of the request left |
//! | client timeout | info | the proposal may be in the log and commit later |
//! | connection lost after sending | info | same |
//! | 400, gRPC code 3 (InvalidArgument) | fail | request validation (`etcdserver: key is not provided`, too many ops, duplicate key, request too large) or the gateway's JSON decoding (`invalid character 'g' …`), all before any proposal. Both seen. |
//! | 429, code 8, `etcdserver: too many requests` | fail | returned before proposing, when commit runs too far ahead of apply |
//! | code 8, `etcdserver: mvcc: database space exceeded` | fail | the NOSPACE alarm: rejected by the quota check before proposing, or by the capped applier when applied |
//! | 500, code 2, `raft proposal dropped` | fail | raft's `Step` refuses the proposal before appending it (no leader at the raft level, leadership transfer) |
//! | 404 | fail | the gateway has no such path; nothing was called |
//! | 503, code 14, `etcdserver: request timed out` (and `…, possibly due to previous leader failure`, `…, possibly due to connection lost`) | info | the proposal was accepted and not applied within the request timeout; it may still commit. Seen on a linearizable range without quorum, after 7.0 s. |
//! | 500, code 2, `context deadline exceeded` | info | seen on a put to a member without a leader, after 7.0 s: `Propose` waited for the raft node until the deadline; raft's `stepWait` also returns it after the node took the proposal, so it proves nothing |
//! | 503, code 14, `etcdserver: server stopped` | info | returned while waiting for an accepted proposal |
//! | any other error, or a 200 that does not decode | info | unknown, so not assumed harmless |
//!
//! Member ids are the same numbers in two spellings: decimal strings in the
//! v3 JSON (`"ID": "957839736802308543"`), hexadecimal without leading
//! zeros in `/debug/vars` (`"d4aee2a6fdaf1bf"`); both decode to `u64`.

pub mod binary;
pub mod client;
pub mod cluster;
pub mod kv;
pub mod member;
pub mod outcome;
pub mod status;
pub mod system;
pub mod wire;

use std::net::SocketAddr;

pub use binary::EtcdBinary;
pub use client::{Cas, EtcdClient, Read};
pub use cluster::{EtcdCluster, EtcdClusterConfig};
pub use kv::EtcdKv;
pub use member::{InitialState, MemberConfig, Timing};
pub use outcome::{CallError, Effect};
pub use status::{RaftState, RaftStatus};
pub use system::Etcd;

use crate::cluster::{ClusterError, NodeId};

/// Errors of the etcd parts. A harness failure (no binary, a busy port, a
/// member that cannot be started) is an error of the run, never a verdict
/// on etcd.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    #[error("etcd not found on PATH ({path}); install it with `apt-get install -y etcd-server` (Debian) or give the binary's path")]
    NotFound { path: String },
    #[error("{path} is not an executable file; install etcd with `apt-get install -y etcd-server` (Debian) or give the binary's path")]
    NotExecutable { path: String },
    #[error("cannot read the version of {path}: {detail}")]
    Version { path: String, detail: String },
    #[error("{path} is etcd {version}; etcd 3.4 or later is needed (Debian: `apt-get install -y etcd-server`)")]
    Unsupported { path: String, version: String },
    #[error("port {addr} is still in use: {detail}")]
    PortBusy { addr: SocketAddr, detail: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("proxy: {0}")]
    Proxy(#[from] crate::proxy::ProxyError),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    #[error("i/o error on {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{what} on n{id} failed: {source}")]
    Call {
        id: NodeId,
        what: &'static str,
        source: CallError,
    },
    #[error("membership change of n{id}: {message}")]
    Membership { id: NodeId, message: String },
}
