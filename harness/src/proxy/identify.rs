//! Which member dialled a TCP connection, read from the kernel.
//!
//! A system whose members all dial one advertised peer URL per member (etcd)
//! gives the proxy in front of member j no way to tell, from the address
//! alone, which member is calling: every dialer comes from 127.0.0.1 and an
//! ephemeral port. The kernel knows, though. On accept, the proxy has the
//! dialer's address (`peer`) and its own (`local`); the dialer's end of the
//! connection is the socket whose local address is `peer` and whose remote
//! address is `local`. Its inode comes from an exact netlink `sock_diag`
//! lookup (the rows of `/proc/net/tcp` and `tcp6` where netlink is not
//! available). The process holding `socket:[inode]` among its
//! `/proc/<pid>/fd` links is the dialer.
//!
//! Only member processes are searched: the harness spawned them, so it knows
//! their pids ([`MemberPids`]). A member's top process is searched first
//! (the common case, and the cheap one); if it does not hold the socket,
//! every process in the member's process group or below it in the process
//! tree is searched too, so a wrapper (`sh -c`, `unshare`) that runs the
//! real server as a child still names the right member.
//!
//! There is no race with the dialer itself: its socket is in its fd table
//! before it connects, and its row is in `/proc/net/tcp` before the proxy's
//! accept returns. A connection goes unidentified only when the dialer is
//! not a member (another program dialled the proxy), or when it closed the
//! socket or exited between connecting and the lookup. Reading `/proc` of
//! another user's process needs root or the same uid, as the harness's own
//! children always are.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::cluster::{NodeId, Supervisor};

/// The pids of the member processes, as the harness spawned them.
pub trait MemberPids: Send + Sync {
    /// Every running (or paused) member's top process: the process the
    /// harness spawned, which leads its own process group.
    fn member_pids(&self) -> Vec<(NodeId, u32)>;
}

impl MemberPids for Supervisor {
    fn member_pids(&self) -> Vec<(NodeId, u32)> {
        self.ids()
            .into_iter()
            .filter_map(|id| self.pid(id).map(|pid| (id, pid)))
            .collect()
    }
}

/// A fixed table, for processes the harness did not start through a
/// [`Supervisor`].
impl MemberPids for BTreeMap<NodeId, u32> {
    fn member_pids(&self) -> Vec<(NodeId, u32)> {
        self.iter().map(|(&id, &pid)| (id, pid)).collect()
    }
}

/// Why a connection could not be named.
#[derive(Debug, thiserror::Error)]
pub enum Unidentified {
    #[error(
        "no socket {peer} -> {local} in /proc/net/tcp or tcp6 (the dialer closed it already?)"
    )]
    NoSocket { peer: SocketAddr, local: SocketAddr },
    #[error("socket inode {inode} ({peer} -> {local}) is held by no member process")]
    NotAMember {
        inode: u64,
        peer: SocketAddr,
        local: SocketAddr,
    },
    #[error("cannot read {path}: {source}")]
    Proc {
        path: String,
        source: std::io::Error,
    },
}

/// Names the member that dialled the connection the proxy accepted: `peer`
/// is the dialer's address (`accept`'s peer), `local` the proxy's end.
/// Blocking file I/O: call it from a blocking thread in async code.
pub fn identify(
    members: &dyn MemberPids,
    peer: SocketAddr,
    local: SocketAddr,
) -> Result<NodeId, Unidentified> {
    let inode = socket_inode(peer, local)?.ok_or(Unidentified::NoSocket { peer, local })?;
    let needle = format!("socket:[{inode}]");
    let roots = members.member_pids();
    for &(id, pid) in &roots {
        if holds(pid, &needle) {
            return Ok(id);
        }
    }
    for (pid, id) in member_families(&roots) {
        if holds(pid, &needle) {
            return Ok(id);
        }
    }
    Err(Unidentified::NotAMember { inode, peer, local })
}

/// The inode of the socket whose local address is `local` and remote address
/// is `remote`: asked of the kernel over netlink, or, where that fails,
/// read from `/proc/net/tcp` and `/proc/net/tcp6`. A socket in TIME_WAIT
/// (inode 0, no owner) is no socket.
pub fn socket_inode(local: SocketAddr, remote: SocketAddr) -> Result<Option<u64>, Unidentified> {
    match super::sockdiag::socket_inode(local, remote) {
        Ok(found) => Ok(found),
        Err(e) => {
            tracing::debug!(error = %e, "sock_diag lookup failed; reading /proc/net/tcp");
            proc_socket_inode(local, remote)
        }
    }
}

/// [`socket_inode`] from the `/proc/net/tcp{,6}` tables (slow: the kernel
/// walks its whole connection table to print them).
pub fn proc_socket_inode(
    local: SocketAddr,
    remote: SocketAddr,
) -> Result<Option<u64>, Unidentified> {
    if let (Some(l), Some(r)) = (v4_form(local), v4_form(remote)) {
        if let Some(inode) = scan_table("/proc/net/tcp", &l, &r)? {
            return Ok(Some(inode));
        }
    }
    scan_table("/proc/net/tcp6", &v6_form(local), &v6_form(remote))
}

fn scan_table(path: &str, local: &str, remote: &str) -> Result<Option<u64>, Unidentified> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        // A kernel without IPv6 has no tcp6 table: nothing to find there.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Unidentified::Proc {
                path: path.into(),
                source,
            })
        }
    };
    for line in BufReader::new(file).lines().skip(1) {
        let line = line.map_err(|source| Unidentified::Proc {
            path: path.into(),
            source,
        })?;
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
        let mut fields = line.split_whitespace();
        let (Some(_), Some(l), Some(r)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if l != local || r != remote {
            continue;
        }
        if let Some(inode) = fields.nth(6).and_then(|s| s.parse::<u64>().ok()) {
            if inode != 0 {
                return Ok(Some(inode));
            }
        }
    }
    Ok(None)
}

/// The kernel's `/proc/net/tcp` spelling of an IPv4 address: the address as
/// the 32-bit word it is in memory (network order bytes read as a host
/// integer), then the port in hex.
fn v4_form(addr: SocketAddr) -> Option<String> {
    let ip = match addr.ip() {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => ip.to_ipv4_mapped()?,
    };
    Some(format!(
        "{:08X}:{:04X}",
        u32::from_ne_bytes(ip.octets()),
        addr.port()
    ))
}

/// The `/proc/net/tcp6` spelling: four 32-bit words as in memory. An IPv4
/// address appears there in its mapped form (`::ffff:a.b.c.d`) when a
/// dual-stack socket carries it.
fn v6_form(addr: SocketAddr) -> String {
    let ip: Ipv6Addr = match addr.ip() {
        IpAddr::V4(ip) => ip.to_ipv6_mapped(),
        IpAddr::V6(ip) => ip,
    };
    let o = ip.octets();
    let mut s = String::with_capacity(38);
    for w in o.chunks_exact(4) {
        s.push_str(&format!(
            "{:08X}",
            u32::from_ne_bytes([w[0], w[1], w[2], w[3]])
        ));
    }
    s.push_str(&format!(":{:04X}", addr.port()));
    s
}

/// Whether process `pid` has an fd whose link is `needle`. A process that
/// exited or cannot be read holds nothing.
fn holds(pid: u32, needle: &str) -> bool {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    dir.flatten()
        .any(|e| std::fs::read_link(e.path()).is_ok_and(|target| target.as_os_str() == needle))
}

/// Every process other than the roots that belongs to a member: in a root's
/// process group, or a descendant of a root. One pass over `/proc`.
fn member_families(roots: &[(NodeId, u32)]) -> Vec<(u32, NodeId)> {
    let by_root: BTreeMap<u32, NodeId> = roots.iter().map(|&(id, pid)| (pid, id)).collect();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    // pid → (ppid, pgrp)
    let mut procs: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(pp) = parent_and_group(pid) {
            procs.insert(pid, pp);
        }
    }
    let mut found = Vec::new();
    for (&pid, &(_, pgrp)) in &procs {
        if by_root.contains_key(&pid) {
            continue;
        }
        let member = by_root.get(&pgrp).copied().or_else(|| {
            // Walk up the tree; the visited set guards against a pid reused
            // while we read.
            let mut seen = BTreeSet::new();
            let mut cur = pid;
            while let Some(&(ppid, _)) = procs.get(&cur) {
                if let Some(&id) = by_root.get(&ppid) {
                    return Some(id);
                }
                if ppid <= 1 || !seen.insert(ppid) {
                    break;
                }
                cur = ppid;
            }
            None
        });
        if let Some(id) = member {
            found.push((pid, id));
        }
    }
    found
}

/// Fields 4 (ppid) and 5 (pgrp) of `/proc/<pid>/stat`. The command name in
/// field 2 may hold spaces and parentheses, so parse after the last `)`.
fn parent_and_group(pid: u32) -> Option<(u32, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let _state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgrp = f.next()?.parse().ok()?;
    Some((ppid, pgrp))
}

/// At most this many latency samples are kept (the counts go on).
const MAX_SAMPLES: usize = 100_000;

/// Identification counters of one mesh.
#[derive(Debug, Default)]
pub struct IdentifyCounters {
    identified: AtomicU64,
    unidentified: AtomicU64,
    samples: Mutex<(Vec<u32>, Vec<u32>)>,
}

/// A copy of [`IdentifyCounters`] at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IdentifyStats {
    pub identified: u64,
    pub unidentified: u64,
    /// Accept-to-identified time of each identified connection (the first
    /// 100,000), in microseconds, in the order they happened.
    pub latency_us: Vec<u32>,
    /// Of that, the time the lookup itself took (the rest is waiting for a
    /// blocking thread and for the proxies' thread).
    pub lookup_us: Vec<u32>,
}

impl IdentifyCounters {
    pub(super) fn record(&self, identified: bool, took: Duration, lookup: Duration) {
        if !identified {
            self.unidentified.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.identified.fetch_add(1, Ordering::Relaxed);
        let us = |d: Duration| d.as_micros().min(u32::MAX as u128) as u32;
        let mut v = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if v.0.len() < MAX_SAMPLES {
            v.0.push(us(took));
            v.1.push(us(lookup));
        }
    }

    pub fn snapshot(&self) -> IdentifyStats {
        let v = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        IdentifyStats {
            identified: self.identified.load(Ordering::Relaxed),
            unidentified: self.unidentified.load(Ordering::Relaxed),
            latency_us: v.0.clone(),
            lookup_us: v.1.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, TcpListener, TcpStream};

    #[test]
    fn proc_spellings_match_the_kernels() {
        let a = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 1), 8080));
        // 127.0.0.1 is the bytes 7F 00 00 01; read as a little-endian word.
        if cfg!(target_endian = "little") {
            assert_eq!(v4_form(a).unwrap(), "0100007F:1F90");
            assert_eq!(
                v6_form(a),
                "0000000000000000FFFF00000100007F:1F90",
                "IPv4 in tcp6 is the mapped address"
            );
        }
        let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, 1));
        assert_eq!(v4_form(v6), None);
    }

    #[test]
    fn netlink_and_the_proc_tables_name_the_same_socket() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let _dialer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (accepted, peer) = l.accept().unwrap();
        let local = accepted.local_addr().unwrap();
        let netlink = super::super::sockdiag::socket_inode(peer, local).unwrap();
        assert!(netlink.is_some());
        assert_eq!(proc_socket_inode(peer, local).unwrap(), netlink);
    }

    #[test]
    fn a_connection_of_this_process_is_named_by_its_pid() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let dialer = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (accepted, peer) = l.accept().unwrap();
        let local = accepted.local_addr().unwrap();
        assert_eq!(peer, dialer.local_addr().unwrap());
        let me: BTreeMap<NodeId, u32> = [(7, std::process::id())].into();
        assert_eq!(identify(&me, peer, local).unwrap(), 7);

        // Another process as the only member: the socket is nobody's.
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let other: BTreeMap<NodeId, u32> = [(1, sleeper.id())].into();
        let r = identify(&other, peer, local);
        let _ = sleeper.kill();
        let _ = sleeper.wait();
        assert!(matches!(r, Err(Unidentified::NotAMember { .. })), "{r:?}");

        // Once the dialer has closed and the row is gone, nothing is found.
        drop(dialer);
        drop(accepted);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            match identify(&me, peer, local) {
                Err(Unidentified::NoSocket { .. }) => break,
                r => assert!(std::time::Instant::now() < deadline, "still found: {r:?}"),
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
