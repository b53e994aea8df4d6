//! One TCP socket's inode by its exact address pair, asked of the kernel over
//! netlink `sock_diag` (what `ss` uses).
//!
//! `/proc/net/tcp` lists every socket by walking the whole connection hash
//! table, which took 5-7 ms per read on a machine with 200 sockets; an
//! exact `sock_diag` request looks one socket up in that table instead.
//! Where netlink is not available (some sandboxes), [`super::identify`]
//! falls back to reading the tables.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{FromRawFd, OwnedFd};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_HDR_LEN: usize = 16;
/// `struct inet_diag_req_v2`.
const REQ_LEN: usize = 56;
/// Offset of `idiag_inode` in `struct inet_diag_msg`.
const MSG_INODE_AT: usize = 68;

/// The inode of the TCP socket whose local address is `local` and remote
/// address is `remote`: `Ok(None)` if there is none (or it is in
/// TIME_WAIT, which no process holds), `Err` if netlink itself failed.
pub(super) fn socket_inode(local: SocketAddr, remote: SocketAddr) -> std::io::Result<Option<u64>> {
    let mut sock = open()?;
    sock.write_all(&request(local, remote))?;
    let mut buf = [0u8; 8192];
    let n = sock.read(&mut buf)?;
    parse_reply(&buf[..n])
}

fn open() -> std::io::Result<File> {
    // SAFETY: socket(2) has no memory-safety preconditions; the result is
    // checked before use.
    #[allow(unsafe_code)]
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            libc::NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a socket this function just opened and owns alone.
    // A netlink socket with no destination sends to the kernel, so write
    // and read are send and receive.
    #[allow(unsafe_code)]
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(File::from(owned))
}

/// An exact-lookup request. In `inet_diag_sockid`, `src` is the socket's
/// local end and `dst` its remote end; ports and addresses are in network
/// order, the rest in host order.
fn request(local: SocketAddr, remote: SocketAddr) -> Vec<u8> {
    let v4 = |a: SocketAddr| match a.ip() {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(ip) => ip.to_ipv4_mapped(),
    };
    let (family, src, dst) = match (v4(local), v4(remote)) {
        (Some(l), Some(r)) => (libc::AF_INET as u8, pad16(&l.octets()), pad16(&r.octets())),
        _ => {
            let six = |a: SocketAddr| match a.ip() {
                IpAddr::V4(ip) => ip.to_ipv6_mapped().octets(),
                IpAddr::V6(ip) => ip.octets(),
            };
            (libc::AF_INET6 as u8, six(local), six(remote))
        }
    };
    let mut m = Vec::with_capacity(NLMSG_HDR_LEN + REQ_LEN);
    m.extend(((NLMSG_HDR_LEN + REQ_LEN) as u32).to_ne_bytes());
    m.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m.extend(NLM_F_REQUEST.to_ne_bytes());
    m.extend(1u32.to_ne_bytes()); // sequence
    m.extend(0u32.to_ne_bytes()); // port id: the kernel fills it in
    m.extend([family, libc::IPPROTO_TCP as u8, 0, 0]);
    m.extend(u32::MAX.to_ne_bytes()); // every state
    m.extend(local.port().to_be_bytes());
    m.extend(remote.port().to_be_bytes());
    m.extend(src);
    m.extend(dst);
    m.extend(0u32.to_ne_bytes()); // any interface
    m.extend(u32::MAX.to_ne_bytes()); // INET_DIAG_NOCOOKIE
    m.extend(u32::MAX.to_ne_bytes());
    debug_assert_eq!(m.len(), NLMSG_HDR_LEN + REQ_LEN);
    m
}

fn pad16(v4: &[u8; 4]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a[..4].copy_from_slice(v4);
    a
}

fn parse_reply(buf: &[u8]) -> std::io::Result<Option<u64>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    if buf.len() < NLMSG_HDR_LEN {
        return Err(bad("short sock_diag reply"));
    }
    let ty = u16::from_ne_bytes([buf[4], buf[5]]);
    let body = &buf[NLMSG_HDR_LEN..];
    match ty {
        NLMSG_ERROR => {
            let errno = body
                .get(..4)
                .map(|b| -i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| bad("short sock_diag error"))?;
            if errno == libc::ENOENT {
                Ok(None)
            } else {
                Err(std::io::Error::from_raw_os_error(errno))
            }
        }
        SOCK_DIAG_BY_FAMILY => {
            let b = body
                .get(MSG_INODE_AT..MSG_INODE_AT + 4)
                .ok_or_else(|| bad("short inet_diag_msg"))?;
            let inode = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as u64;
            Ok((inode != 0).then_some(inode))
        }
        other => Err(bad(&format!("unexpected sock_diag message type {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_live_socket_and_nothing_for_a_closed_one() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let dialer = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (accepted, peer) = l.accept().unwrap();
        let local = accepted.local_addr().unwrap();
        let inode = socket_inode(peer, local)
            .unwrap()
            .expect("the dialer's socket");
        // The same socket as /proc/self/fd names it.
        let fd_inode = std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .any(|t| t.to_string_lossy() == format!("socket:[{inode}]"));
        assert!(
            fd_inode,
            "inode {inode} is not one of this process's sockets"
        );
        // The proxy's own end is another socket.
        let other = socket_inode(local, peer).unwrap().unwrap();
        assert_ne!(other, inode);
        drop((dialer, accepted));
        let nobody = SocketAddr::from(([127, 0, 0, 1], 1));
        assert_eq!(socket_inode(nobody, local).unwrap(), None);
    }
}
