//! Shared scaffolding for the cluster tests: real `node` processes on
//! 127.0.0.1, free ports picked by binding port 0, a temp dir per cluster,
//! and a guard that kills every child on drop (also when a test panics, in
//! which case the tail of each node's log is printed to help debugging).

#![allow(dead_code)]

pub mod proxy;

use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const NODE_BIN: &str = env!("CARGO_BIN_EXE_node");

/// Picks a free loopback port (bind port 0, read it, release it). Ports are
/// never handed out twice in one test process, since tests run in parallel
/// and the kernel may offer a just-released port again.
pub fn free_addr() -> SocketAddr {
    static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = l.local_addr().expect("local addr");
        let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
        if taken.get_or_insert_with(HashSet::new).insert(addr.port()) {
            return addr;
        }
    }
}

pub struct NodeProc {
    pub id: u64,
    pub client: SocketAddr,
    pub peer: SocketAddr,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
}

pub struct Cluster {
    pub tmp: tempfile::TempDir,
    pub nodes: BTreeMap<u64, NodeProc>,
    pub http: reqwest::Client,
    /// Extra flags given to every node.
    pub extra: Vec<String>,
    /// With [`Cluster::with_proxies`]: the proxy of each directed link (from, to).
    pub proxies: BTreeMap<(u64, u64), proxy::Proxy>,
}

impl Cluster {
    /// Reserves addresses and directories for nodes `1..=total` (none started).
    pub fn new(total: u64, extra: &[&str]) -> Cluster {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut nodes = BTreeMap::new();
        for id in 1..=total {
            let dir = tmp.path().join(format!("n{id}"));
            nodes.insert(
                id,
                NodeProc {
                    id,
                    client: free_addr(),
                    peer: free_addr(),
                    log: tmp.path().join(format!("n{id}.log")),
                    dir,
                    child: None,
                },
            );
        }
        Cluster {
            tmp,
            nodes,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .expect("http client"),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            proxies: BTreeMap::new(),
        }
    }

    /// Like [`Cluster::start`], but every directed peer link i→j goes through
    /// its own proxy (must be called inside a tokio runtime).
    pub fn with_proxies(n: u64, extra: &[&str]) -> Cluster {
        let mut c = Cluster::new(n, extra);
        for i in 1..=n {
            for j in 1..=n {
                if i != j {
                    let p = proxy::Proxy::start(free_addr(), c.nodes[&j].peer);
                    c.proxies.insert((i, j), p);
                }
            }
        }
        let members = (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        for id in 1..=n {
            c.spawn(id, Some(&members));
        }
        c
    }

    /// Sets the mode of every link from or to `id`.
    pub fn set_links_of(&self, id: u64, mode: proxy::Mode) {
        for ((a, b), p) in &self.proxies {
            if *a == id || *b == id {
                p.set(mode);
            }
        }
    }

    pub fn set_all_links(&self, mode: proxy::Mode) {
        for p in self.proxies.values() {
            p.set(mode);
        }
    }

    /// Starts `n` nodes with `--members 1..=n`, reserving addresses for `total`.
    pub fn start(n: u64, total: u64, extra: &[&str]) -> Cluster {
        let mut c = Cluster::new(total, extra);
        let members = (1..=n).map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        for id in 1..=n {
            c.spawn(id, Some(&members));
        }
        c
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.nodes[&id].dir.join("data")
    }

    /// Starts node `id` (with `--members` when given) and returns immediately.
    pub fn spawn(&mut self, id: u64, members: Option<&str>) {
        let mut cmd = Command::new(NODE_BIN);
        let n = &self.nodes[&id];
        std::fs::create_dir_all(&n.dir).expect("node dir");
        cmd.arg("--id")
            .arg(id.to_string())
            .arg("--data-dir")
            .arg(n.dir.join("data"))
            .arg("--client-listen")
            .arg(n.client.to_string())
            .arg("--peer-listen")
            .arg(n.peer.to_string());
        for (pid, p) in &self.nodes {
            if *pid != id {
                let addr = match self.proxies.get(&(id, *pid)) {
                    Some(proxy) => proxy.listen,
                    None => p.peer,
                };
                cmd.arg("--peer").arg(format!("{pid}={addr}"));
            }
        }
        if let Some(m) = members {
            cmd.arg("--members").arg(m);
        }
        cmd.args(&self.extra);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&n.log)
            .expect("log file");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .env(
                "RUST_LOG",
                std::env::var("NODE_TEST_LOG").unwrap_or_else(|_| "info".into()),
            );
        let child = cmd.spawn().expect("spawn node");
        self.nodes.get_mut(&id).expect("node").child = Some(child);
    }

    pub fn pid(&self, id: u64) -> nix::unistd::Pid {
        let c = self.nodes[&id].child.as_ref().expect("node is running");
        nix::unistd::Pid::from_raw(c.id() as i32)
    }

    pub fn signal(&self, id: u64, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(id), sig).expect("signal node");
    }

    /// `kill -9` and reap.
    pub fn kill9(&mut self, id: u64) {
        if let Some(mut c) = self.nodes.get_mut(&id).expect("node").child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns whether the exit status was success.
    pub fn stop(&mut self, id: u64) -> bool {
        self.signal(id, nix::sys::signal::Signal::SIGTERM);
        let mut c = self
            .nodes
            .get_mut(&id)
            .expect("node")
            .child
            .take()
            .expect("running");
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(st) = c.try_wait().expect("wait") {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn running(&self) -> Vec<u64> {
        self.nodes
            .values()
            .filter(|n| n.child.is_some())
            .map(|n| n.id)
            .collect()
    }

    pub fn log_text(&self, id: u64) -> String {
        std::fs::read_to_string(&self.nodes[&id].log).unwrap_or_default()
    }

    pub fn url(&self, id: u64, path: &str) -> String {
        format!("http://{}{}", self.nodes[&id].client, path)
    }

    pub async fn status(&self, id: u64) -> Option<Value> {
        let r = self
            .http
            .get(self.url(id, "/status"))
            .timeout(Duration::from_millis(500))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }

    /// Waits until exactly one running node (among `among`) claims leadership
    /// in the highest term seen and returns it.
    pub async fn wait_leader_among(&self, among: &[u64], timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let mut leaders = Vec::new();
            for &id in among {
                if let Some(s) = self.status(id).await {
                    if s["role"] == "leader" {
                        leaders.push((s["term"].as_u64().unwrap_or(0), id));
                    }
                }
            }
            leaders.sort();
            if let Some(&(_, id)) = leaders.last() {
                return id;
            }
            if Instant::now() > deadline {
                panic!("no leader among {among:?} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_leader(&self, timeout: Duration) -> u64 {
        let among = self.running();
        self.wait_leader_among(&among, timeout).await
    }

    pub async fn put(&self, id: u64, key: &str, value: &str) -> (u16, Value) {
        self.send(
            self.http
                .put(self.url(id, &format!("/kv/{key}")))
                .json(&json!({ "value": value })),
        )
        .await
    }

    pub async fn cas(&self, id: u64, key: &str, from: Option<&str>, to: &str) -> (u16, Value) {
        self.send(
            self.http
                .post(self.url(id, &format!("/kv/{key}/cas")))
                .json(&json!({ "from": from, "to": to })),
        )
        .await
    }

    pub async fn get(&self, id: u64, key: &str, consistency: &str) -> (u16, Value) {
        self.send(
            self.http
                .get(self.url(id, &format!("/kv/{key}?consistency={consistency}"))),
        )
        .await
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        match req.send().await {
            Ok(r) => {
                let code = r.status().as_u16();
                let body = r.json().await.unwrap_or(Value::Null);
                (code, body)
            }
            Err(e) => (0, json!({ "transport-error": e.to_string() })),
        }
    }

    /// Writes `key=value` through whoever is leader, retrying until acknowledged.
    pub async fn put_acked(&self, key: &str, value: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let leader = self.wait_leader(timeout).await;
            let (code, body) = self.put(leader, key, value).await;
            if code == 200 {
                return;
            }
            if Instant::now() > deadline {
                panic!("write {key}={value} not acknowledged: {code} {body}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until node `id` serves `key` = `value` from its own state.
    pub async fn wait_stale_value(&self, id: u64, key: &str, value: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let (code, body) = self.get(id, key, "stale").await;
            if code == 200 && body["value"] == value {
                return;
            }
            if Instant::now() > deadline {
                panic!("node {id} never served {key}={value}: last {code} {body}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        for n in self.nodes.values_mut() {
            if let Some(mut c) = n.child.take() {
                // A SIGSTOPped child still dies of SIGKILL.
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if panicking {
            for n in self.nodes.values() {
                let text = std::fs::read_to_string(&n.log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(30)..];
                eprintln!("---- node {} log tail ----\n{}", n.id, tail.join("\n"));
            }
        }
    }
}

/// The last segment file of a node's log.
pub fn last_segment(data_dir: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(data_dir.join("log"))
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs.pop().expect("a segment")
}

/// Waits for a child to exit on its own; returns its exit status.
pub fn wait_exit(c: &mut Cluster, id: u64, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        let child = c.nodes.get_mut(&id)?.child.as_mut()?;
        if let Some(st) = child.try_wait().ok()? {
            c.nodes.get_mut(&id)?.child = None;
            return Some(st);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
