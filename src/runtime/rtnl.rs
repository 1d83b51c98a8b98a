//! A minimal NETLINK_ROUTE client for the runtime: requests with an ack, and dumps. A socket
//! talks to the network namespace it was opened in; `open_in` opens one in another namespace
//! from a short-lived thread, so hull itself never changes namespace.

use anyhow::{bail, Context, Result};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

pub const RTM_NEWLINK: u16 = 16;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_GETADDR: u16 = 22;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const HDR: usize = 16;

pub struct Rtnl {
    fd: OwnedFd,
    seq: u32,
}

/// Appends a route attribute (padded to 4 bytes).
pub fn put_attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    buf.extend_from_slice(&((4 + data.len()) as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// The attributes in `buf` (what follows a message's fixed header).
pub fn attrs(mut buf: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while buf.len() >= 4 {
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let typ = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            break;
        }
        out.push((typ, &buf[4..len]));
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
    }
    out
}

/// A C string attribute's text.
pub fn attr_str(data: &[u8]) -> String {
    let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    String::from_utf8_lossy(&data[..end]).into_owned()
}

/// struct ifinfomsg.
pub fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

fn u32_at(buf: &[u8], off: usize) -> u32 {
    buf.get(off..off + 4)
        .and_then(|s| s.try_into().ok())
        .map_or(0, u32::from_ne_bytes)
}

impl Rtnl {
    pub fn open() -> Result<Rtnl> {
        use nix::sys::socket::{socket, AddressFamily, SockFlag, SockProtocol, SockType};
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )
        .context("netlink: socket")?;
        Ok(Rtnl { fd, seq: 0 })
    }

    /// A socket in the network namespace `ns` (an open /proc/PID/ns/net).
    pub fn open_in(ns: &std::fs::File) -> Result<Rtnl> {
        let ns = ns.try_clone().context("netlink: dup the netns fd")?;
        std::thread::spawn(move || -> Result<Rtnl> {
            nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                .context("setns into the container's network namespace")?;
            Rtnl::open()
        })
        .join()
        .map_err(|_| anyhow::anyhow!("netlink: the netns thread panicked"))?
    }

    fn send(&mut self, typ: u16, flags: u16, payload: &[u8]) -> Result<()> {
        self.seq += 1;
        let mut msg = Vec::with_capacity(HDR + payload.len());
        msg.extend_from_slice(&((HDR + payload.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&typ.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(payload);
        nix::sys::socket::send(
            self.fd.as_raw_fd(),
            &msg,
            nix::sys::socket::MsgFlags::empty(),
        )
        .context("netlink: send")?;
        Ok(())
    }

    /// Reads replies to the last request, handing each (type, body) to `each`, until the ack
    /// or the end of a dump.
    fn replies(&mut self, mut each: impl FnMut(u16, &[u8])) -> Result<()> {
        let mut buf = vec![0u8; 32768];
        loop {
            let n = match nix::sys::socket::recv(
                self.fd.as_raw_fd(),
                &mut buf,
                nix::sys::socket::MsgFlags::empty(),
            ) {
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e).context("netlink: recv"),
            };
            let mut off = 0;
            while off + HDR <= n {
                let len = u32_at(&buf, off) as usize;
                let typ = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let seq = u32_at(&buf, off + 8);
                if len < HDR || off + len > n {
                    bail!("netlink: truncated reply");
                }
                let body = &buf[off + HDR..off + len];
                if seq == self.seq {
                    match typ {
                        NLMSG_DONE => return Ok(()),
                        NLMSG_ERROR => {
                            let code = u32_at(body, 0) as i32;
                            if code == 0 {
                                return Ok(());
                            }
                            return Err(std::io::Error::from_raw_os_error(-code).into());
                        }
                        _ => each(typ, body),
                    }
                }
                off += len.next_multiple_of(4);
            }
        }
    }

    /// A request the kernel acknowledges; its error comes back as an io::Error.
    pub fn request(&mut self, typ: u16, flags: u16, payload: &[u8]) -> Result<()> {
        self.send(typ, flags | NLM_F_ACK, payload)?;
        self.replies(|_, _| {})
    }

    /// A dump: the body of every message in the answer.
    pub fn dump(&mut self, typ: u16, payload: &[u8]) -> Result<Vec<Vec<u8>>> {
        self.send(typ, NLM_F_DUMP, payload)?;
        let mut out = Vec::new();
        self.replies(|_, body| out.push(body.to_vec()))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip() {
        let mut b = Vec::new();
        put_attr(&mut b, 3, b"eth0\0");
        put_attr(&mut b, 28, &7u32.to_ne_bytes());
        assert_eq!(b.len() % 4, 0);
        let a = attrs(&b);
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].0, attr_str(a[0].1).as_str()), (3, "eth0"));
        assert_eq!(a[1], (28, &7u32.to_ne_bytes()[..]));
    }
}
