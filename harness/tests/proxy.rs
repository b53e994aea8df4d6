//! The proxy mesh against real TCP echo servers on 127.0.0.1: every link
//! mode, and that a partition stops exactly the links it should.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::nemesis::partition::{generate, Shape};
use harness::proxy::{LinkMode, ProxyMesh};
use rand::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// An echo server that counts the connections it accepted; aborted on drop.
struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo() -> Echo {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicU64::new(0));
    let count = accepted.clone();
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            conns.spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    Echo {
        addr,
        accepted,
        task,
    }
}

/// Three echo "nodes" 1..=3 and a full mesh of proxies in front of them.
async fn mesh3() -> (Vec<Echo>, ProxyMesh) {
    let mut echoes = Vec::new();
    let mut targets = BTreeMap::new();
    for id in 1..=3u64 {
        let e = echo().await;
        targets.insert(id, e.addr);
        echoes.push(e);
    }
    let mesh = ProxyMesh::bind(&targets, 1).await.unwrap();
    (echoes, mesh)
}

async fn roundtrip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(msg).await?;
    let mut buf = vec![0u8; msg.len()];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Whether a message sent over link from→to comes back within `wait`.
async fn link_works(mesh: &ProxyMesh, from: u64, to: u64, wait: Duration) -> bool {
    let addr = mesh.listen_addr(from, to).unwrap();
    let attempt = async {
        let mut s = TcpStream::connect(addr).await?;
        roundtrip(&mut s, format!("{from}->{to}").as_bytes()).await
    };
    matches!(timeout(wait, attempt).await, Ok(Ok(b)) if b == format!("{from}->{to}").as_bytes())
}

#[tokio::test]
async fn pass_forwards_both_ways_on_every_link() {
    let (_echoes, mesh) = mesh3().await;
    assert_eq!(mesh.matrix().len(), 6);
    for from in 1..=3 {
        for to in 1..=3 {
            if from != to {
                assert!(link_works(&mesh, from, to, Duration::from_secs(5)).await);
                // The proxy thread counts a chunk just after writing it, so
                // the echo can reach us a moment before its count is in.
                let deadline = std::time::Instant::now() + Duration::from_secs(1);
                let mut st = mesh.stats(from, to).unwrap();
                while st.bytes_backward < 4 && std::time::Instant::now() < deadline {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    st = mesh.stats(from, to).unwrap();
                }
                assert_eq!(st.accepted, 1);
                assert_eq!(st.bytes_forward, 4);
                assert_eq!(st.bytes_backward, 4);
            }
        }
    }
}

#[tokio::test]
async fn stall_holds_bytes_and_delivers_them_in_order_after_heal() {
    let (echoes, mesh) = mesh3().await;
    let mut s = TcpStream::connect(mesh.listen_addr(1, 2).unwrap())
        .await
        .unwrap();
    assert_eq!(roundtrip(&mut s, b"before").await.unwrap(), b"before");

    mesh.set_mode(1, 2, LinkMode::Stall).unwrap();
    s.write_all(b"during").await.unwrap();
    let mut buf = [0u8; 6];
    assert!(
        timeout(Duration::from_millis(300), s.read_exact(&mut buf))
            .await
            .is_err(),
        "nothing may come back through a stalled link"
    );
    // A new connection is accepted but not carried to the target.
    let mut s2 = TcpStream::connect(mesh.listen_addr(1, 2).unwrap())
        .await
        .unwrap();
    s2.write_all(b"new").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(echoes[1].accepted.load(Ordering::SeqCst), 1);

    mesh.set_mode(1, 2, LinkMode::Pass).unwrap();
    timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"during");
    let mut buf2 = [0u8; 3];
    timeout(Duration::from_secs(5), s2.read_exact(&mut buf2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf2, b"new");
    assert_eq!(echoes[1].accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn reset_cuts_open_connections_and_refuses_new_ones() {
    let (echoes, mesh) = mesh3().await;
    let mut s = TcpStream::connect(mesh.listen_addr(2, 3).unwrap())
        .await
        .unwrap();
    assert_eq!(roundtrip(&mut s, b"hello").await.unwrap(), b"hello");

    mesh.set_mode(2, 3, LinkMode::Reset).unwrap();
    let mut buf = [0u8; 16];
    let r = timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap();
    assert_eq!(
        r.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset),
        "an open connection ends with an RST, not a FIN"
    );

    // New connections are reset at once and never reach the target.
    let accepted_before = echoes[2].accepted.load(Ordering::SeqCst);
    // The proxies run on their own thread: the RST may arrive before the
    // dialer's connect completes (connect fails) or just after (read fails).
    let r = match TcpStream::connect(mesh.listen_addr(2, 3).unwrap()).await {
        Ok(mut s2) => timeout(Duration::from_secs(5), s2.read(&mut buf))
            .await
            .unwrap(),
        Err(e) => Err(e),
    };
    assert_eq!(
        r.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    assert_eq!(echoes[2].accepted.load(Ordering::SeqCst), accepted_before);
    let st = mesh.stats(2, 3).unwrap();
    assert_eq!((st.resets, st.refused), (1, 1));

    mesh.heal();
    assert!(link_works(&mesh, 2, 3, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn delay_adds_latency_and_keeps_every_byte_in_order() {
    let (_echoes, mesh) = mesh3().await;
    mesh.set_mode(
        3,
        1,
        LinkMode::Delay {
            latency_ms: 100,
            jitter_ms: 50,
        },
    )
    .unwrap();
    let mut s = TcpStream::connect(mesh.listen_addr(3, 1).unwrap())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    assert_eq!(roundtrip(&mut s, b"ping").await.unwrap(), b"ping");
    // The delay applies to each direction: at least 2 × latency.
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );

    // Many small writes with jitter still arrive intact and in order.
    let sent: Vec<u8> = (0..2000u32).flat_map(|i| i.to_be_bytes()).collect();
    let (mut r, mut w) = s.into_split();
    let payload = sent.clone();
    let writer = tokio::spawn(async move {
        for chunk in payload.chunks(40) {
            w.write_all(chunk).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        w
    });
    let mut got = vec![0u8; sent.len()];
    timeout(Duration::from_secs(20), r.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, sent);
    drop(writer.await.unwrap());
}

/// A node killed while its message sits in a delayed link: its kernel
/// closes the connection with a FIN, and the message must still arrive
/// (as it would over a slow network), after the delay.
#[tokio::test]
async fn a_delayed_message_arrives_after_its_sender_closed_the_connection() {
    let recorder = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut targets = BTreeMap::new();
    targets.insert(1u64, echo().await.addr);
    targets.insert(2u64, recorder.local_addr().unwrap());
    let mesh = ProxyMesh::bind(&targets, 1).await.unwrap();
    let received = tokio::spawn(async move {
        let (mut s, _) = recorder.accept().await.unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        (got, std::time::Instant::now())
    });
    mesh.set_mode(
        1,
        2,
        LinkMode::Delay {
            latency_ms: 150,
            jitter_ms: 0,
        },
    )
    .unwrap();
    let mut s = TcpStream::connect(mesh.listen_addr(1, 2).unwrap())
        .await
        .unwrap();
    s.write_all(b"vote").await.unwrap();
    let sent = std::time::Instant::now();
    drop(s);
    let (got, at) = timeout(Duration::from_secs(10), received)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"vote");
    assert!(at - sent >= Duration::from_millis(100), "{:?}", at - sent);
}

#[tokio::test]
async fn mode_changes_mid_stream_never_lose_or_reorder_bytes() {
    let (_echoes, mesh) = mesh3().await;
    let s = TcpStream::connect(mesh.listen_addr(1, 3).unwrap())
        .await
        .unwrap();
    let (mut r, mut w) = s.into_split();
    let sent: Vec<u8> = (0..50_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let payload = sent.clone();
    let writer = tokio::spawn(async move {
        for chunk in payload.chunks(1000) {
            w.write_all(chunk).await.unwrap();
            tokio::task::yield_now().await;
        }
        w
    });
    let modes = [
        LinkMode::Stall,
        LinkMode::Delay {
            latency_ms: 5,
            jitter_ms: 5,
        },
        LinkMode::Pass,
    ];
    let reader = tokio::spawn(async move {
        let mut got = vec![0u8; sent.len()];
        r.read_exact(&mut got).await.unwrap();
        assert!(got == sent, "bytes were lost or reordered");
    });
    for i in 0..30 {
        mesh.set_mode(1, 3, modes[i % modes.len()]).unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    mesh.heal();
    timeout(Duration::from_secs(20), reader)
        .await
        .unwrap()
        .unwrap();
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn partition_stops_exactly_the_links_it_cuts() {
    let (_echoes, mesh) = mesh3().await;
    let nodes = [1, 2, 3];
    for (seed, shape, cut) in [
        (1, Shape::One, LinkMode::Stall),
        (2, Shape::Majority, LinkMode::Reset),
        (3, Shape::OneWay, LinkMode::Stall),
        (4, Shape::Bridge, LinkMode::Reset),
    ] {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let p = generate(shape, &nodes, cut, &mut rng);
        mesh.apply(&p.links).unwrap();
        assert_eq!(mesh.matrix(), p.links);
        let mut checks = Vec::new();
        let mesh = &mesh;
        for &(from, to, mode) in &p.links {
            checks.push(async move {
                // A cut link is watched for 400 ms; a passing one may take
                // longer on a loaded machine.
                let wait = if mode.passes() { 5000 } else { 400 };
                let works = link_works(mesh, from, to, Duration::from_millis(wait)).await;
                (from, to, mode, works)
            });
        }
        for (from, to, mode, works) in futures::future::join_all(checks).await {
            assert_eq!(
                works,
                mode.passes(),
                "{shape:?}: link {from}->{to} is {mode:?} but works={works}"
            );
        }
        mesh.heal();
        assert!(mesh.matrix().iter().all(|l| l.2 == LinkMode::Pass));
    }
}
