//! One etcd member's command line, and waiting for its ports after a kill.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::binary::EtcdBinary;
use super::EtcdError;
use crate::cluster::ProcessSpec;

/// `--initial-cluster-state`: whether the member bootstraps a new cluster
/// with the others of `--initial-cluster`, or joins a running one that
/// already added it (`member add`). etcd ignores it, like every
/// `--initial-*` flag, once the data dir holds a member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    New,
    Existing,
}

impl InitialState {
    pub fn flag(self) -> &'static str {
        match self {
            InitialState::New => "new",
            InitialState::Existing => "existing",
        }
    }
}

/// Raft timing, pre-vote and the reconfiguration check; `None` and the
/// default leave etcd's own (100 ms heartbeat, 1000 ms election timeout;
/// pre-vote off and the strict reconfiguration check on in 3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub heartbeat_ms: Option<u64>,
    pub election_timeout_ms: Option<u64>,
    pub pre_vote: bool,
    /// `--strict-reconfig-check`: etcd refuses to add a member unless every
    /// voter has been connected to the one asked for the last 5 s.
    pub strict_reconfig_check: bool,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_ms: None,
            election_timeout_ms: None,
            pre_vote: false,
            strict_reconfig_check: true,
        }
    }
}

/// Everything that makes one member's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberConfig {
    /// `--name`, `n<id>` in the harness.
    pub name: String,
    pub data_dir: PathBuf,
    /// Where clients talk to it (listened on and advertised).
    pub client: SocketAddr,
    /// Where it listens for peers.
    pub peer_listen: SocketAddr,
    /// The peer URL it advertises, and the one of `initial_cluster` for it:
    /// with proxies, the proxy listener in front of it.
    pub peer_advertise: SocketAddr,
    /// Every member's name and advertised peer address, itself included.
    pub initial_cluster: Vec<(String, SocketAddr)>,
    pub state: InitialState,
    /// `--initial-cluster-token`: unique per cluster, so that members of two
    /// clusters that meet on a reused port refuse each other.
    pub token: String,
    pub timing: Timing,
}

/// `http://addr`.
pub fn url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

impl MemberConfig {
    /// The arguments after the program name. Fsync and every setting not
    /// named here are etcd's defaults.
    pub fn args(&self) -> Vec<OsString> {
        let cluster: Vec<String> = self
            .initial_cluster
            .iter()
            .map(|(name, addr)| format!("{name}={}", url(*addr)))
            .collect();
        let mut args: Vec<String> = vec![
            "--name".into(),
            self.name.clone(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--listen-client-urls".into(),
            url(self.client),
            "--advertise-client-urls".into(),
            url(self.client),
            "--listen-peer-urls".into(),
            url(self.peer_listen),
            "--initial-advertise-peer-urls".into(),
            url(self.peer_advertise),
            "--initial-cluster".into(),
            cluster.join(","),
            "--initial-cluster-state".into(),
            self.state.flag().into(),
            "--initial-cluster-token".into(),
            self.token.clone(),
            // Structured logs; 3.4's default logger is deprecated and says so.
            "--logger".into(),
            "zap".into(),
        ];
        if let Some(h) = self.timing.heartbeat_ms {
            args.extend(["--heartbeat-interval".into(), h.to_string()]);
        }
        if let Some(e) = self.timing.election_timeout_ms {
            args.extend(["--election-timeout".into(), e.to_string()]);
        }
        if self.timing.pre_vote {
            args.push("--pre-vote".into());
        }
        if !self.timing.strict_reconfig_check {
            args.push("--strict-reconfig-check=false".into());
        }
        args.into_iter().map(OsString::from).collect()
    }

    /// What the supervisor runs for this member; output goes to `log_path`.
    pub fn process_spec(&self, binary: &EtcdBinary, log_path: &Path) -> ProcessSpec {
        ProcessSpec {
            program: binary.path.clone(),
            args: self.args(),
            log_path: log_path.to_path_buf(),
            env: Vec::new(),
        }
    }

    /// The ports this member binds.
    pub fn ports(&self) -> [SocketAddr; 2] {
        [self.client, self.peer_listen]
    }
}

/// Waits until every address in `addrs` can be bound again, as etcd will bind
/// it. After a kill the supervisor has reaped the process and the kernel has
/// closed its listeners, but a restart right after a *graceful* stop was seen
/// to fail with "address already in use" while the old process was still
/// shutting down; this turns that into a clear error instead of a member
/// that exits at once.
pub fn wait_ports_free(addrs: &[SocketAddr], deadline: Instant) -> Result<(), EtcdError> {
    for &addr in addrs {
        loop {
            // std sets SO_REUSEADDR on Unix listeners, as Go does: sockets in
            // TIME_WAIT do not count as busy, for us or for etcd.
            match std::net::TcpListener::bind(addr) {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => {
                    return Err(EtcdError::PortBusy {
                        addr,
                        detail: e.to_string(),
                    })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_names_every_flag_the_harness_relies_on() {
        let a = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let m = MemberConfig {
            name: "n2".into(),
            data_dir: "/tmp/d/n2".into(),
            client: a(1002),
            peer_listen: a(2002),
            peer_advertise: a(3002),
            initial_cluster: vec![("n1".into(), a(3001)), ("n2".into(), a(3002))],
            state: InitialState::Existing,
            token: "t1".into(),
            timing: Timing {
                heartbeat_ms: Some(50),
                election_timeout_ms: Some(500),
                pre_vote: true,
                strict_reconfig_check: false,
            },
        };
        let args: Vec<String> = m
            .args()
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let after = |flag: &str| {
            let i = args.iter().position(|x| x == flag).unwrap();
            args[i + 1].clone()
        };
        assert_eq!(
            after("--initial-advertise-peer-urls"),
            "http://127.0.0.1:3002"
        );
        assert_eq!(after("--listen-peer-urls"), "http://127.0.0.1:2002");
        assert_eq!(
            after("--initial-cluster"),
            "n1=http://127.0.0.1:3001,n2=http://127.0.0.1:3002"
        );
        assert_eq!(after("--initial-cluster-state"), "existing");
        assert_eq!(after("--heartbeat-interval"), "50");
        assert_eq!(after("--election-timeout"), "500");
        assert!(args.contains(&"--pre-vote".to_string()));
        assert!(args.contains(&"--strict-reconfig-check=false".to_string()));
        let defaults = MemberConfig {
            timing: Timing::default(),
            ..m
        };
        let args: Vec<_> = defaults.args();
        assert!(!args.iter().any(|a| a == "--pre-vote"
            || a == "--heartbeat-interval"
            || a.to_string_lossy().starts_with("--strict-reconfig-check")));
    }

    #[test]
    fn a_bound_port_is_reported_busy_after_the_deadline() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let e = wait_ports_free(&[addr], Instant::now() + Duration::from_millis(50)).unwrap_err();
        assert!(e.to_string().contains(&addr.to_string()), "{e}");
        drop(l);
        wait_ports_free(&[addr], Instant::now() + Duration::from_secs(5)).unwrap();
    }
}
