//! Peer transport: Raft messages over TCP.
//!
//! ## Wire format
//! A connection starts with a 12-byte hello, `"RFT1"` then the sender's node ID
//! (u64 big-endian), followed by frames:
//!
//! ```text
//! | len u32 BE | body crc32c u32 BE | header crc32c (of the first 8 bytes) u32 BE | body: bincode(raft::Message) |
//! ```
//!
//! The checksums let a receiver notice at once when a misbehaving proxy lost
//! or mangled bytes mid-stream (it closes the connection and the sender
//! redials) instead of trusting a garbage length or decoding a garbage message. Connections are one-way: node *i* dials
//! peer *j* at *i*'s `--peer j=ADDR` and only writes; *j* answers over its own
//! connection to *i*. So each directed link i→j is one TCP connection, which is
//! what lets a proxy per directed link cut, stall or reset it on its own.
//!
//! ## Failure handling
//! Raft tolerates loss, so the transport never blocks the Raft loop: each peer
//! has a bounded queue and a message is dropped when it is full. A writer task
//! per peer dials lazily, batches whatever is queued into one write, drops the
//! connection when a write makes no progress for [`WRITE_TIMEOUT`] (a stalled
//! or blackholed proxy), and redials with capped exponential backoff plus
//! jitter. A reader drops a connection on a bad hello, an oversized or
//! undecodable frame (a proxy that lost bytes mid-stream) or long silence.

use crate::raft::{Message, NodeId};
use rand::Rng;
use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::Instrument;

const HELLO_MAGIC: &[u8; 4] = b"RFT1";
/// Largest frame accepted; anything larger is damage, not a message.
pub const MAX_FRAME_BYTES: u32 = 256 * 1024 * 1024;
/// Messages queued per peer before new ones are dropped.
pub const PEER_QUEUE_MSGS: usize = 512;
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// A write that makes no progress this long means the link is stalled.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// An inbound connection silent this long is closed (its sender redials).
const IDLE_READ_TIMEOUT: Duration = Duration::from_secs(30);
const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(1000);
/// Stop batching queued messages into one write beyond this many bytes.
const BATCH_BYTES: usize = 1024 * 1024;

/// Where received messages go (the Raft loop's inbox). Must not block.
pub type Deliver = Arc<dyn Fn(Message) + Send + Sync>;

/// Outbound side: one bounded queue and writer task per known peer.
pub struct Transport {
    queues: BTreeMap<NodeId, mpsc::Sender<Message>>,
}

impl Transport {
    /// Spawns one writer task per entry of the address book on `rt`.
    pub fn start(
        self_id: NodeId,
        peers: &BTreeMap<NodeId, SocketAddr>,
        rt: &tokio::runtime::Handle,
    ) -> Transport {
        let mut queues = BTreeMap::new();
        for (&id, &addr) in peers {
            if id == self_id {
                continue;
            }
            let (tx, rx) = mpsc::channel(PEER_QUEUE_MSGS);
            rt.spawn(peer_writer(self_id, id, addr, rx).instrument(tracing::Span::current()));
            queues.insert(id, tx);
        }
        Transport { queues }
    }

    /// Queues `msg` for its destination; never blocks. Returns false when the
    /// message was dropped (unknown peer or full queue).
    pub fn send(&self, msg: Message) -> bool {
        let to = msg.to;
        match self.queues.get(&to) {
            Some(q) => match q.try_send(msg) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    tracing::trace!(peer = to, "peer queue full: dropping message");
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            },
            None => {
                tracing::debug!(peer = to, "no --peer address for node: dropping message");
                false
            }
        }
    }
}

const FRAME_HEADER_BYTES: usize = 12;

fn encode_frame(msg: &Message, buf: &mut Vec<u8>) {
    let body = bincode::serialize(msg).expect("serializing a message cannot fail");
    let len = u32::try_from(body.len()).expect("message larger than 4 GiB");
    assert!(
        len <= MAX_FRAME_BYTES,
        "message of {len} bytes exceeds the frame cap"
    );
    let mut header = [0u8; FRAME_HEADER_BYTES];
    header[0..4].copy_from_slice(&len.to_be_bytes());
    header[4..8].copy_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    let hcrc = crc32c::crc32c(&header[0..8]);
    header[8..12].copy_from_slice(&hcrc.to_be_bytes());
    buf.extend_from_slice(&header);
    buf.extend_from_slice(&body);
}

fn jittered(d: Duration) -> Duration {
    let f: f64 = rand::thread_rng().gen_range(0.5..1.5);
    d.mul_f64(f)
}

async fn peer_writer(
    self_id: NodeId,
    peer: NodeId,
    addr: SocketAddr,
    mut rx: mpsc::Receiver<Message>,
) {
    let mut backoff = BACKOFF_MIN;
    // Dial lazily: an idle link costs nothing.
    while let Some(first) = rx.recv().await {
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await;
        let stream = match conn {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::debug!(peer, %addr, error = %e, "cannot connect to peer");
                backoff = wait_backoff(backoff, &mut rx).await;
                continue;
            }
            Err(_) => {
                tracing::debug!(peer, %addr, "connecting to peer timed out");
                backoff = wait_backoff(backoff, &mut rx).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let started = Instant::now();
        tracing::debug!(peer, %addr, "connected to peer");
        let res = write_loop(self_id, stream, first, &mut rx).await;
        match res {
            Ok(()) => return, // the queue closed: shutting down
            Err(e) => tracing::debug!(peer, %addr, error = %e, "peer connection lost"),
        }
        if started.elapsed() > Duration::from_secs(1) {
            backoff = BACKOFF_MIN;
        }
        backoff = wait_backoff(backoff, &mut rx).await;
    }
}

/// Sleeps for the jittered backoff, drops what queued up meanwhile (Raft
/// retransmits; stale messages would only delay fresh ones) and returns the next backoff.
async fn wait_backoff(backoff: Duration, rx: &mut mpsc::Receiver<Message>) -> Duration {
    tokio::time::sleep(jittered(backoff)).await;
    while rx.try_recv().is_ok() {}
    (backoff * 2).min(BACKOFF_MAX)
}

async fn write_loop(
    self_id: NodeId,
    mut stream: TcpStream,
    first: Message,
    rx: &mut mpsc::Receiver<Message>,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(64 * 1024);
    buf.extend_from_slice(HELLO_MAGIC);
    buf.extend_from_slice(&self_id.to_be_bytes());
    let mut next = Some(first);
    while let Some(msg) = next.take() {
        encode_frame(&msg, &mut buf);
        while buf.len() < BATCH_BYTES {
            match rx.try_recv() {
                Ok(m) => encode_frame(&m, &mut buf),
                Err(_) => break,
            }
        }
        match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&buf)).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "write made no progress (stalled link)",
                ))
            }
        }
        buf.clear();
        next = rx.recv().await;
    }
    Ok(())
}

/// Accepts peer connections forever, delivering every decoded message.
pub async fn serve(listener: TcpListener, deliver: Deliver) {
    loop {
        match listener.accept().await {
            Ok((stream, remote)) => {
                let _ = stream.set_nodelay(true);
                let deliver = deliver.clone();
                tokio::spawn(
                    async move {
                        if let Err(e) = read_loop(stream, deliver).await {
                            tracing::debug!(%remote, error = %e, "inbound peer connection closed");
                        }
                    }
                    .in_current_span(),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e, "accepting a peer connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

fn bad_data(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

async fn read_loop(stream: TcpStream, deliver: Deliver) -> io::Result<()> {
    let mut r = BufReader::with_capacity(64 * 1024, stream);
    let mut hello = [0u8; 12];
    timed(r.read_exact(&mut hello)).await?;
    if &hello[0..4] != HELLO_MAGIC {
        return Err(bad_data("bad hello: not a Raft peer".into()));
    }
    let from = u64::from_be_bytes(hello[4..12].try_into().expect("8 bytes"));
    loop {
        let mut header = [0u8; FRAME_HEADER_BYTES];
        timed(r.read_exact(&mut header)).await?;
        let word = |i: usize| u32::from_be_bytes(header[i..i + 4].try_into().expect("4 bytes"));
        let (len, body_crc, header_crc) = (word(0), word(4), word(8));
        if crc32c::crc32c(&header[0..8]) != header_crc {
            return Err(bad_data(format!(
                "frame header checksum mismatch from {from}"
            )));
        }
        if len > MAX_FRAME_BYTES {
            return Err(bad_data(format!("frame of {len} bytes from {from}")));
        }
        // Grow with the data instead of trusting the length with an allocation.
        let mut body = Vec::new();
        let got = timed((&mut r).take(u64::from(len)).read_to_end(&mut body)).await?;
        if got != len as usize {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "truncated frame",
            ));
        }
        if crc32c::crc32c(&body) != body_crc {
            return Err(bad_data(format!(
                "frame body checksum mismatch from {from}"
            )));
        }
        let msg: Message = bincode::deserialize(&body)
            .map_err(|e| bad_data(format!("undecodable frame from {from}: {e}")))?;
        deliver(msg);
    }
}

async fn timed<T>(f: impl std::future::Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(IDLE_READ_TIMEOUT, f).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "peer silent")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raft::MessageBody;
    use std::sync::Mutex;

    fn msg(from: NodeId, to: NodeId, term: u64) -> Message {
        Message {
            from,
            to,
            term,
            body: MessageBody::RequestVoteResponse {
                pre_vote: false,
                granted: true,
            },
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn messages_arrive_in_order_and_garbage_is_rejected() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        tokio::spawn(serve(
            listener,
            Arc::new(move |m: Message| sink.lock().unwrap().push(m.term)),
        ));
        // A client that is not a peer is dropped without delivering anything.
        let mut junk = TcpStream::connect(addr).await.unwrap();
        junk.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();

        let peers = BTreeMap::from([(2, addr)]);
        let t = Transport::start(1, &peers, &tokio::runtime::Handle::current());
        for term in 1..=100 {
            assert!(t.send(msg(1, 2, term)));
        }
        assert!(!t.send(msg(1, 9, 1)), "unknown peer must be dropped");
        for _ in 0..200 {
            if got.lock().unwrap().len() == 100 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(*got.lock().unwrap(), (1..=100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_stream_that_lost_bytes_is_closed_without_delivering_garbage() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        tokio::spawn(serve(
            listener,
            Arc::new(move |m: Message| sink.lock().unwrap().push(m.term)),
        ));
        let mut buf = Vec::new();
        buf.extend_from_slice(HELLO_MAGIC);
        buf.extend_from_slice(&1u64.to_be_bytes());
        for term in 1..=3 {
            encode_frame(&msg(1, 2, term), &mut buf);
        }
        let frame = (buf.len() - 12) / 3;
        // Drop 3 bytes inside the second frame, as a blackholing proxy might.
        let cut = 12 + frame + 5;
        buf.drain(cut..cut + 3);
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&buf).await.unwrap();
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut rest))
            .await
            .expect("the receiver must close the connection")
            .unwrap_or(0);
        assert_eq!(n, 0);
        assert_eq!(*got.lock().unwrap(), vec![1]);
    }

    #[tokio::test]
    async fn writer_redials_after_the_peer_comes_back() {
        // Reserve a port, then free it so the first dials fail.
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let t = Transport::start(
            1,
            &BTreeMap::from([(2, addr)]),
            &tokio::runtime::Handle::current(),
        );
        t.send(msg(1, 2, 1));
        tokio::time::sleep(Duration::from_millis(100)).await;
        let listener = TcpListener::bind(addr).await.unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        tokio::spawn(serve(
            listener,
            Arc::new(move |m: Message| sink.lock().unwrap().push(m.term)),
        ));
        for _ in 0..300 {
            t.send(msg(1, 2, 7));
            if !got.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(got.lock().unwrap().contains(&7));
    }
}
