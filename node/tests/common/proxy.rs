//! A TCP proxy per directed link, so a test can cut one direction of one
//! peer link: pass, stall (stop reading: the sender's socket buffers fill),
//! blackhole (read and discard: bytes vanish mid-frame) or reset (close every
//! connection and refuse new ones). Modeled on etcd's `pkg/proxy`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    Pass = 0,
    Stall = 1,
    Blackhole = 2,
    Reset = 3,
}

pub struct Proxy {
    pub listen: SocketAddr,
    mode: Arc<AtomicU8>,
    /// Bumped on every reset; a connection of an older generation closes.
    generation: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts forwarding `listen` → `target` (must run inside a tokio runtime).
    pub fn start(listen: SocketAddr, target: SocketAddr) -> Proxy {
        let std_l = std::net::TcpListener::bind(listen).expect("bind proxy");
        std_l.set_nonblocking(true).expect("nonblocking");
        let listener = TcpListener::from_std(std_l).expect("tokio listener");
        let mode = Arc::new(AtomicU8::new(Mode::Pass as u8));
        let generation = Arc::new(AtomicU64::new(0));
        let (m, g) = (mode.clone(), generation.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                if m.load(Ordering::SeqCst) == Mode::Reset as u8 {
                    drop(client);
                    continue;
                }
                let (m, g) = (m.clone(), g.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(target).await else {
                        return;
                    };
                    let gen = g.load(Ordering::SeqCst);
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    let a = tokio::spawn(pump(cr, sw, m.clone(), g.clone(), gen));
                    let b = tokio::spawn(pump(sr, cw, m, g, gen));
                    let _ = a.await;
                    b.abort();
                });
            }
        });
        Proxy {
            listen,
            mode,
            generation,
            task,
        }
    }

    pub fn set(&self, mode: Mode) {
        if mode == Mode::Reset {
            self.generation.fetch_add(1, Ordering::SeqCst);
        }
        self.mode.store(mode as u8, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mode: Arc<AtomicU8>,
    generation: Arc<AtomicU64>,
    gen: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if generation.load(Ordering::SeqCst) != gen {
            return; // reset: dropping both halves closes the connection
        }
        let m = mode.load(Ordering::SeqCst);
        if m == Mode::Stall as u8 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let n = match tokio::time::timeout(Duration::from_millis(20), from.read(&mut buf)).await {
            Err(_) => continue,
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(n)) => n,
        };
        if mode.load(Ordering::SeqCst) == Mode::Blackhole as u8 {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
