//! The proxy mesh with a listener per destination, against real processes:
//! each "member" is a bash process that dials the proxy in front of another
//! member (as etcd members dial one advertised peer URL) and relays that
//! connection to a control socket of the test. The proxy must name the
//! dialer from /proc and route each byte direction through its own link.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use harness::cluster::{ProcessSpec, Supervisor};
use harness::proxy::{LinkMode, MemberPids, ProxyMesh};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// An echo server that counts connections and bytes received; aborted on drop.
struct Echo {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
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
    let received = Arc::new(AtomicU64::new(0));
    let (count, bytes) = (accepted.clone(), received.clone());
    let task = tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            count.fetch_add(1, Ordering::SeqCst);
            let bytes = bytes.clone();
            conns.spawn(async move {
                let mut buf = [0u8; 4096];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            bytes.fetch_add(n as u64, Ordering::SeqCst);
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    Echo {
        addr,
        accepted,
        received,
        task,
    }
}

/// Three echo "members" and an identified mesh whose member pids come from
/// a supervisor (the bash dialers the test starts).
struct World {
    echoes: BTreeMap<u64, Echo>,
    sup: Arc<Supervisor>,
    mesh: ProxyMesh,
    logs: tempfile::TempDir,
}

async fn world() -> World {
    let mut echoes = BTreeMap::new();
    let mut targets = BTreeMap::new();
    for id in 1..=3u64 {
        let e = echo().await;
        targets.insert(id, e.addr);
        echoes.insert(id, e);
    }
    let sup = Arc::new(Supervisor::new());
    let pids: Arc<dyn MemberPids> = sup.clone();
    let mesh = ProxyMesh::bind_identified(&targets, pids, 1).await.unwrap();
    World {
        echoes,
        sup,
        mesh,
        logs: tempfile::tempdir().unwrap(),
    }
}

/// The bash program of a member: dial the proxy (fd 3), dial the test's
/// control port (fd 4), relay both ways; when the proxied connection ends,
/// end the control connection too.
fn relay_script(proxy: SocketAddr, control: SocketAddr) -> String {
    format!(
        "exec 3<>/dev/tcp/127.0.0.1/{} || exit 1\n\
         exec 4<>/dev/tcp/127.0.0.1/{} || exit 1\n\
         cat <&4 >&3 & up=$!\n\
         cat <&3 >&4\n\
         kill $up\n",
        proxy.port(),
        control.port()
    )
}

impl World {
    /// Starts member `from` as a process that dials the proxy in front of
    /// member `to`; returns the test's end of the relayed connection. With
    /// `wrapper`, the dialing bash is a child of the process the supervisor
    /// started, as under `sh -c` or `unshare`.
    async fn dial_as(&self, from: u64, to: u64, wrapper: bool) -> TcpStream {
        let control = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let script = relay_script(
            self.mesh.listen_addr(from, to).unwrap(),
            control.local_addr().unwrap(),
        );
        let args = if wrapper {
            // The outer bash forks the inner one (a command follows it).
            vec!["-c".into(), "bash -c \"$0\"; exit $?".into(), script.into()]
        } else {
            vec!["-c".into(), script.into()]
        };
        if self.sup.ids().contains(&from) {
            self.sup.kill(from).unwrap();
        }
        self.sup.register(
            from,
            ProcessSpec {
                program: "bash".into(),
                args,
                log_path: self.logs.path().join(format!("n{from}.log")),
                env: Vec::new(),
            },
        );
        self.sup.start(from).unwrap();
        let (s, _) = timeout(Duration::from_secs(10), control.accept())
            .await
            .expect("the member's relay dials the control port")
            .unwrap();
        s
    }
}

async fn roundtrip(s: &mut TcpStream, msg: &[u8], wait: Duration) -> Option<Vec<u8>> {
    s.write_all(msg).await.ok()?;
    let mut buf = vec![0u8; msg.len()];
    match timeout(wait, s.read_exact(&mut buf)).await {
        Ok(Ok(_)) => Some(buf),
        _ => None,
    }
}

/// Waits until `f` holds (the proxy thread updates counters just after the
/// bytes it counts have moved on).
async fn eventually(what: &str, f: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn every_dialer_is_named_and_counted_on_its_own_link() {
    let w = world().await;
    for from in 1..=3 {
        for to in 1..=3 {
            if from == to {
                continue;
            }
            assert_eq!(
                w.mesh.listen_addr(from, to),
                w.mesh.destination_addr(to),
                "every member dials one address per destination"
            );
            let mut s = w.dial_as(from, to, false).await;
            let msg = format!("{from}->{to}");
            let got = roundtrip(&mut s, msg.as_bytes(), Duration::from_secs(5)).await;
            assert_eq!(got.as_deref(), Some(msg.as_bytes()));
            eventually("counted on the dialer's link", || {
                w.mesh.stats(from, to).unwrap().bytes_backward == 4
            })
            .await;
            let st = w.mesh.stats(from, to).unwrap();
            assert_eq!((st.accepted, st.bytes_forward), (1, 4), "{from}->{to}");
        }
    }
    let ids = w.mesh.identify_stats().unwrap();
    assert_eq!((ids.identified, ids.unidentified), (6, 0));
    assert_eq!(ids.latency_us.len(), 6);
}

#[tokio::test]
async fn each_byte_direction_obeys_its_own_link() {
    let w = world().await;
    let mut s = w.dial_as(1, 2, false).await;
    let wait = Duration::from_millis(300);
    assert_eq!(
        roundtrip(&mut s, b"a", Duration::from_secs(5))
            .await
            .as_deref(),
        Some(&b"a"[..])
    );
    let received = &w.echoes[&2].received;

    // 1→2 stalled: the dialer's bytes do not reach member 2.
    w.mesh.set_mode(1, 2, LinkMode::Stall).unwrap();
    assert_eq!(roundtrip(&mut s, b"b", wait).await, None);
    assert_eq!(received.load(Ordering::SeqCst), 1);
    w.mesh.heal();
    let mut buf = [0u8; 1];
    timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"b");

    // 2→1 stalled: member 2 gets the bytes on the connection 1 dialled,
    // but what it sends back is held until the heal.
    w.mesh.set_mode(2, 1, LinkMode::Stall).unwrap();
    assert_eq!(roundtrip(&mut s, b"c", wait).await, None);
    eventually("member 2 received c", || {
        received.load(Ordering::SeqCst) == 3
    })
    .await;
    w.mesh.heal();
    timeout(Duration::from_secs(5), s.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"c");

    // A reset of the reverse link cuts the connection (an RST has no
    // direction), and new connections from 1 are refused.
    w.mesh.set_mode(2, 1, LinkMode::Reset).unwrap();
    let r = timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(r, Ok(0) | Err(_)),
        "the relay's connection must end, got {r:?}"
    );
    let st = w.mesh.stats(1, 2).unwrap();
    assert_eq!(st.resets, 1);
    let accepted = w.echoes[&2].accepted.load(Ordering::SeqCst);
    let mut s2 = w.dial_as(1, 2, false).await;
    assert_eq!(roundtrip(&mut s2, b"d", wait).await, None);
    eventually("the new connection was refused", || {
        w.mesh.stats(1, 2).unwrap().refused == 1
    })
    .await;
    assert_eq!(w.echoes[&2].accepted.load(Ordering::SeqCst), accepted);
}

#[tokio::test]
async fn a_wrapped_member_is_named_by_its_childs_socket() {
    let w = world().await;
    let mut s = w.dial_as(3, 1, true).await;
    assert_eq!(
        roundtrip(&mut s, b"wrapped", Duration::from_secs(5))
            .await
            .as_deref(),
        Some(&b"wrapped"[..])
    );
    assert_eq!(w.mesh.stats(3, 1).unwrap().accepted, 1);
    // The supervisor's pid is the wrapper's; the dialer is another process.
    let wrapper = w.sup.pid(3).unwrap();
    assert!(w.sup.member_pids().contains(&(3, wrapper)));
    w.mesh.set_mode(3, 1, LinkMode::Stall).unwrap();
    assert_eq!(
        roundtrip(&mut s, b"x", Duration::from_millis(300)).await,
        None
    );
}

#[tokio::test]
async fn a_connection_from_a_non_member_is_reset_and_counted() {
    let w = world().await;
    // The test process itself is no member.
    let mut s = TcpStream::connect(w.mesh.destination_addr(2).unwrap())
        .await
        .unwrap();
    let _ = s.write_all(b"hello").await;
    let mut buf = [0u8; 8];
    let r = timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap();
    assert_eq!(
        r.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionReset)
    );
    let ids = w.mesh.identify_stats().unwrap();
    assert_eq!((ids.identified, ids.unidentified), (0, 1));
    assert_eq!(w.echoes[&2].accepted.load(Ordering::SeqCst), 0);
    // Nothing was counted on any link.
    assert!(w
        .mesh
        .matrix()
        .iter()
        .all(|&(f, t, _)| w.mesh.stats(f, t).unwrap().accepted == 0));
}

#[tokio::test]
async fn an_added_destination_listener_serves_the_same_links() {
    let w = world().await;
    let old = w.mesh.destination_addr(2).unwrap();
    let new = w.mesh.add_destination(2).unwrap();
    assert_ne!(old, new, "a member added back advertises a new address");
    assert_eq!(w.mesh.destination_addr(2), Some(new));
    assert_eq!(w.mesh.listen_addr(1, 2), Some(new));
    let mut s = w.dial_as(1, 2, false).await;
    assert_eq!(
        roundtrip(&mut s, b"new", Duration::from_secs(5))
            .await
            .as_deref(),
        Some(&b"new"[..])
    );
    assert_eq!(w.mesh.stats(1, 2).unwrap().accepted, 1);
    // The new listener obeys the link 1->2 as the old one does.
    w.mesh.set_mode(1, 2, LinkMode::Stall).unwrap();
    assert_eq!(
        roundtrip(&mut s, b"x", Duration::from_millis(300)).await,
        None
    );
    assert_eq!(w.echoes[&2].received.load(Ordering::SeqCst), 3);
    // Only a mesh with a listener per destination has any to add to.
    assert!(matches!(
        w.mesh.add_destination(9),
        Err(harness::proxy::ProxyError::UnknownDestination { to: 9 })
    ));
}
