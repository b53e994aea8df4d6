//! Forwarding of one proxied connection, and the accept loop of one directed
//! link i→j (node i dials the proxy, the proxy dials node j). A link's mode
//! is a `watch` channel, so a change reaches every open connection at once.
//!
//! Each byte direction of a connection obeys its own mode: in a mesh with a
//! listener per link both are the link's, in a mesh with a listener per
//! destination ([`super::destination`]) the reply direction obeys the
//! reverse link.
//!
//! Bytes are never dropped in the middle of a stream (that would corrupt the
//! node's framing and test the wrong thing): `stall` stops reading and
//! holds whatever was already read until the link passes again (as TCP would
//! after a partition heals), and `reset` cuts whole connections with an RST.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::LinkMode;

/// Counters of one link, for tests, stats and the report.
#[derive(Debug, Default)]
pub struct LinkCounters {
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
    pub resets: AtomicU64,
    /// Bytes delivered from the dialing node to the listening node.
    pub bytes_forward: AtomicU64,
    /// Bytes delivered back (replies).
    pub bytes_backward: AtomicU64,
    pub open: AtomicU64,
}

/// A copy of [`LinkCounters`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LinkStats {
    pub accepted: u64,
    pub refused: u64,
    pub resets: u64,
    pub bytes_forward: u64,
    pub bytes_backward: u64,
    pub open: u64,
}

impl LinkCounters {
    pub fn snapshot(&self) -> LinkStats {
        LinkStats {
            accepted: self.accepted.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            resets: self.resets.load(Ordering::Relaxed),
            bytes_forward: self.bytes_forward.load(Ordering::Relaxed),
            bytes_backward: self.bytes_backward.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
        }
    }
}

/// Accepts connections on `listener` forever, proxying each to `upstream`.
/// Dropping (aborting) this future aborts every connection it owns.
pub(super) async fn serve(
    listener: std::net::TcpListener,
    upstream: SocketAddr,
    mode: watch::Receiver<LinkMode>,
    counters: Arc<LinkCounters>,
    seed: u64,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "proxy listener unusable");
            return;
        }
    };
    let mut conns = JoinSet::new();
    let mut conn_no: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (client, _) = match accepted {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "proxy accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                if *mode.borrow() == LinkMode::Reset {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    rst(client);
                    continue;
                }
                counters.accepted.fetch_add(1, Ordering::Relaxed);
                conn_no += 1;
                let rng = connection_rng(seed, conn_no);
                conns.spawn(connection(client, upstream, mode.clone(), mode.clone(), counters.clone(), rng));
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// The delay jitter's generator of the `conn_no`-th connection of a listener.
pub(super) fn connection_rng(seed: u64, conn_no: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed ^ conn_no.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// Closes a socket with an RST instead of a FIN (SO_LINGER 0), so that the
/// peer sees a reset connection, as with a crashed host or a firewall reject.
pub(super) fn rst(stream: TcpStream) {
    // Deprecated because a *non-zero* linger blocks the thread in close();
    // a zero linger never waits: close() discards the buffer and sends RST.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

/// Proxies one accepted connection to `upstream`. Bytes from the dialer obey
/// `forward`, bytes back to it obey `backward`; `counters` are those of the
/// link the dialer used. The connection is refused, or later cut, as soon as
/// either mode is `reset`: an RST cuts both directions at once.
pub(super) async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut forward: watch::Receiver<LinkMode>,
    backward: watch::Receiver<LinkMode>,
    counters: Arc<LinkCounters>,
    rng: ChaCha8Rng,
) {
    // While the dialer's direction is stalled, not even the connection to the
    // target is made: nothing at all reaches the other side.
    let Ok(_) = forward.wait_for(|m| *m != LinkMode::Stall).await else {
        return;
    };
    if *forward.borrow() == LinkMode::Reset || *backward.borrow() == LinkMode::Reset {
        counters.refused.fetch_add(1, Ordering::Relaxed);
        rst(client);
        return;
    }
    let mut server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(e) => {
            // The target is down: the dialing node sees what it would see
            // without a proxy, a refused (reset) connection.
            tracing::trace!(%upstream, error = %e, "proxy upstream connect failed");
            rst(client);
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    counters.open.fetch_add(1, Ordering::Relaxed);
    let reset = {
        let (cr, cw) = client.split();
        let (sr, sw) = server.split();
        let fwd = pump(
            cr,
            sw,
            forward.clone(),
            &counters.bytes_forward,
            rng.clone(),
        );
        let back = pump(sr, cw, backward.clone(), &counters.bytes_backward, rng);
        let (mut fw, mut bw) = (forward, backward);
        tokio::select! {
            // A clean close passes each FIN on; an I/O error on either side
            // (a node was killed) cuts the whole connection.
            r = futures::future::try_join(fwd, back) => r.is_err(),
            r = fw.wait_for(|m| *m == LinkMode::Reset) => r.is_ok(),
            r = bw.wait_for(|m| *m == LinkMode::Reset) => r.is_ok(),
        }
    };
    counters.open.fetch_sub(1, Ordering::Relaxed);
    if reset {
        counters.resets.fetch_add(1, Ordering::Relaxed);
        rst(client);
        rst(server);
    }
}

/// Copies one direction of a connection, obeying the link mode: reads only
/// while passing or delaying, stamps each chunk with its delivery time, and
/// writes chunks in order once due and while the link is not stalled.
async fn pump(
    mut rd: tokio::net::tcp::ReadHalf<'_>,
    mut wr: tokio::net::tcp::WriteHalf<'_>,
    mode: watch::Receiver<LinkMode>,
    bytes: &AtomicU64,
    mut rng: ChaCha8Rng,
) -> Result<(), ()> {
    // A small bound keeps backpressure: a stalled or slow link stops reading
    // instead of buffering without limit.
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(16);
    let mut read_mode = mode.clone();
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let m = match read_mode
                .wait_for(|m| matches!(m, LinkMode::Pass | LinkMode::Delay { .. }))
                .await
            {
                Ok(m) => *m,
                Err(_) => return Ok(()),
            };
            let n = match rd.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(_) => return Err(()),
            };
            let due = Instant::now() + delay_of(m, &mut rng);
            if tx
                .send((due, Bytes::copy_from_slice(&buf[..n])))
                .await
                .is_err()
            {
                // The writer failed; it reports the error.
                return Ok(());
            }
        }
    };
    let mut write_mode = mode;
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            // A timer rounds up to the next millisecond tick even when the
            // deadline has passed: only sleep when there is a delay to wait.
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            if write_mode
                .wait_for(|m| *m != LinkMode::Stall)
                .await
                .is_err()
            {
                return Ok(());
            }
            wr.write_all(&chunk).await.map_err(|_| ())?;
            bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
        }
        // The source closed its sending side: pass the FIN on.
        let _ = wr.shutdown().await;
        Ok(())
    };
    futures::future::try_join(reader, writer).await.map(|_| ())
}

fn delay_of(mode: LinkMode, rng: &mut ChaCha8Rng) -> Duration {
    match mode {
        LinkMode::Delay {
            latency_ms,
            jitter_ms,
        } => {
            let jitter = if jitter_ms > 0 {
                rng.gen_range(0..=jitter_ms)
            } else {
                0
            };
            Duration::from_millis(latency_ms + jitter)
        }
        _ => Duration::ZERO,
    }
}
