//! The accept loop of a listener per destination: every member dials member
//! j at one address, and each accepted connection is named by
//! [`identify`](super::identify) before it is routed through the link matrix.
//!
//! A connection dialled by member i to member j carries i→j bytes (the
//! dialer's requests) and j→i bytes (what j sends back on it). Each
//! direction obeys its own link: i→j bytes the mode of link i→j, j→i bytes
//! the mode of link j→i. The connection is counted on link i→j (the link
//! its dialer used), as in a mesh with a listener per link.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::identify::{identify, IdentifyCounters, MemberPids};
use super::link::{connection, connection_rng, rst, LinkCounters};
use super::LinkMode;
use crate::cluster::NodeId;

/// The two links between the destination and one other member.
#[derive(Clone)]
pub(super) struct Pair {
    /// Link other→destination: the dialer's bytes.
    pub inbound: watch::Receiver<LinkMode>,
    /// Link destination→other: the bytes sent back to the dialer.
    pub outbound: watch::Receiver<LinkMode>,
    /// Counters of link other→destination.
    pub counters: Arc<LinkCounters>,
}

/// Everything the listener of one destination needs.
pub(super) struct Destination {
    pub to: NodeId,
    pub upstream: SocketAddr,
    pub pairs: BTreeMap<NodeId, Pair>,
    pub members: Arc<dyn MemberPids>,
    pub stats: Arc<IdentifyCounters>,
    /// A member dialling itself has no link to obey; its connection gets
    /// this always-`pass` mode. The sender lives here so that the receivers
    /// never see it closed.
    pub own: watch::Sender<LinkMode>,
    pub own_counters: Arc<LinkCounters>,
    pub seed: u64,
}

/// Accepts connections forever; each is identified on a blocking thread,
/// then proxied. Dropping (aborting) this future aborts every connection.
pub(super) async fn serve(listener: std::net::TcpListener, dest: Destination) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "proxy listener unusable");
            return;
        }
    };
    let dest = Arc::new(dest);
    let mut conns = JoinSet::new();
    let mut conn_no: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (client, peer) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "proxy accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                conn_no += 1;
                conns.spawn(route(client, peer, dest.clone(), conn_no));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn route(client: TcpStream, peer: SocketAddr, dest: Arc<Destination>, conn_no: u64) {
    let accepted_at = Instant::now();
    let (from, lookup) = match client.local_addr() {
        Ok(local) => {
            let members = dest.members.clone();
            tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                (identify(&*members, peer, local), started.elapsed())
            })
            .await
            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
        }
        Err(source) => (
            Err(super::identify::Unidentified::Proc {
                path: "getsockname".into(),
                source,
            }),
            Duration::ZERO,
        ),
    };
    let took = accepted_at.elapsed();
    let rng = connection_rng(
        dest.seed ^ dest.to.wrapping_mul(0xA24B_AED4_963E_E407),
        conn_no,
    );
    let pair = match &from {
        Ok(from) if *from == dest.to => None,
        Ok(from) => match dest.pairs.get(from) {
            Some(p) => Some(p.clone()),
            None => {
                dest.stats.record(false, took, lookup);
                tracing::warn!(to = dest.to, from, %peer, "dialer is a member with no link to this one; connection reset");
                rst(client);
                return;
            }
        },
        Err(e) => {
            // Fail closed: traffic that cannot be put on a link must not
            // cross a partition. The dialer sees a refused connection and, if
            // it is a member after all, dials again.
            dest.stats.record(false, took, lookup);
            tracing::warn!(to = dest.to, %peer, error = %e, "unidentified connection reset");
            rst(client);
            return;
        }
    };
    dest.stats.record(true, took, lookup);
    match pair {
        Some(p) => {
            if *p.inbound.borrow() == LinkMode::Reset {
                p.counters.refused.fetch_add(1, Ordering::Relaxed);
                rst(client);
                return;
            }
            p.counters.accepted.fetch_add(1, Ordering::Relaxed);
            connection(
                client,
                dest.upstream,
                p.inbound,
                p.outbound,
                p.counters,
                rng,
            )
            .await;
        }
        None => {
            dest.own_counters.accepted.fetch_add(1, Ordering::Relaxed);
            let own = dest.own.subscribe();
            connection(
                client,
                dest.upstream,
                own.clone(),
                own,
                dest.own_counters.clone(),
                rng,
            )
            .await;
        }
    }
}
