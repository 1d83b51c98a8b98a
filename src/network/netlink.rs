//! Raw NETLINK_ROUTE requests: links (bridge, veth), addresses, routes.
//! A socket talks to the network namespace it was opened in.

use anyhow::{bail, Context, Result};
use std::ffi::CString;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLMSG_ERROR: u16 = 2;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const IFF_UP: u32 = 1;

pub struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

fn attr(buf: &mut Vec<u8>, typ: u16, data: &[u8]) {
    let len = 4 + data.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&typ.to_ne_bytes());
    buf.extend_from_slice(data);
    while !buf.len().is_multiple_of(4) {
        buf.push(0);
    }
}

fn nest_start(buf: &mut Vec<u8>, typ: u16) -> usize {
    let off = buf.len();
    buf.extend_from_slice(&[0, 0]);
    buf.extend_from_slice(&typ.to_ne_bytes());
    off
}

fn nest_end(buf: &mut [u8], off: usize) {
    let len = (buf.len() - off) as u16;
    buf[off..off + 2].copy_from_slice(&len.to_ne_bytes());
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

fn ifinfomsg(index: i32, flags: u32, change: u32) -> Vec<u8> {
    let mut b = vec![libc::AF_UNSPEC as u8, 0, 0, 0];
    b.extend_from_slice(&index.to_ne_bytes());
    b.extend_from_slice(&flags.to_ne_bytes());
    b.extend_from_slice(&change.to_ne_bytes());
    b
}

pub fn ifindex(name: &str) -> Option<i32> {
    let c = CString::new(name).ok()?;
    // SAFETY: a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i as i32)
}

fn index_of(name: &str) -> Result<i32> {
    ifindex(name).with_context(|| format!("no network interface {name}"))
}

impl Netlink {
    pub fn open() -> Result<Netlink> {
        // SAFETY: plain socket(2).
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_ROUTE,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("opening a netlink socket");
        }
        // SAFETY: fd was just created and is owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a zeroed sockaddr_nl with the family set is a valid address.
        let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        sa.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: sa is a valid sockaddr_nl of the given size.
        let r = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if r < 0 {
            return Err(std::io::Error::last_os_error()).context("binding a netlink socket");
        }
        Ok(Netlink { fd, seq: 1 })
    }

    fn request(&mut self, typ: u16, flags: u16, payload: &[u8], what: &str) -> Result<()> {
        self.seq += 1;
        let mut msg = Vec::with_capacity(16 + payload.len());
        msg.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&typ.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(payload);
        // SAFETY: sending a buffer we own.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("netlink: {what}"));
        }
        let mut buf = vec![0u8; 16384];
        loop {
            // SAFETY: receiving into a buffer we own.
            let n =
                unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).with_context(|| format!("netlink: {what}"));
            }
            let mut off = 0usize;
            let n = n as usize;
            while off + 16 <= n {
                let len =
                    u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap_or([0; 4])) as usize;
                let t = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                let seq = u32::from_ne_bytes(buf[off + 8..off + 12].try_into().unwrap_or([0; 4]));
                if t == NLMSG_ERROR && seq == self.seq && off + 20 <= n {
                    let code =
                        i32::from_ne_bytes(buf[off + 16..off + 20].try_into().unwrap_or([0; 4]));
                    if code == 0 {
                        return Ok(());
                    }
                    return Err(std::io::Error::from_raw_os_error(-code))
                        .with_context(|| format!("netlink: {what}"));
                }
                if len < 16 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }

    pub fn create_bridge(&mut self, name: &str) -> Result<()> {
        let mut p = ifinfomsg(0, 0, 0);
        attr(&mut p, IFLA_IFNAME, &cstr(name));
        let li = nest_start(&mut p, IFLA_LINKINFO);
        attr(&mut p, IFLA_INFO_KIND, b"bridge");
        nest_end(&mut p, li);
        self.request(
            RTM_NEWLINK,
            NLM_F_CREATE | NLM_F_EXCL,
            &p,
            &format!("creating bridge {name}"),
        )
    }

    /// A veth pair whose peer is created directly in the netns `ns_fd`.
    pub fn create_veth(
        &mut self,
        host: &str,
        peer: &str,
        ns_fd: RawFd,
        mac: [u8; 6],
    ) -> Result<()> {
        let mut p = ifinfomsg(0, 0, 0);
        attr(&mut p, IFLA_IFNAME, &cstr(host));
        let li = nest_start(&mut p, IFLA_LINKINFO);
        attr(&mut p, IFLA_INFO_KIND, b"veth");
        let data = nest_start(&mut p, IFLA_INFO_DATA);
        let peer_off = nest_start(&mut p, VETH_INFO_PEER);
        p.extend_from_slice(&ifinfomsg(0, 0, 0));
        attr(&mut p, IFLA_IFNAME, &cstr(peer));
        attr(&mut p, IFLA_NET_NS_FD, &(ns_fd as u32).to_ne_bytes());
        attr(&mut p, IFLA_ADDRESS, &mac);
        nest_end(&mut p, peer_off);
        nest_end(&mut p, data);
        nest_end(&mut p, li);
        self.request(
            RTM_NEWLINK,
            NLM_F_CREATE | NLM_F_EXCL,
            &p,
            &format!("creating veth {host}"),
        )
    }

    pub fn set_master(&mut self, dev: &str, master: &str) -> Result<()> {
        let mut p = ifinfomsg(index_of(dev)?, 0, 0);
        attr(
            &mut p,
            IFLA_MASTER,
            &(index_of(master)? as u32).to_ne_bytes(),
        );
        self.request(RTM_NEWLINK, 0, &p, &format!("attaching {dev} to {master}"))
    }

    pub fn set_up(&mut self, dev: &str) -> Result<()> {
        let p = ifinfomsg(index_of(dev)?, IFF_UP, IFF_UP);
        self.request(RTM_NEWLINK, 0, &p, &format!("setting {dev} up"))
    }

    pub fn delete_link(&mut self, dev: &str) -> Result<()> {
        let p = ifinfomsg(index_of(dev)?, 0, 0);
        self.request(RTM_DELLINK, 0, &p, &format!("deleting {dev}"))
    }

    pub fn add_addr(&mut self, dev: &str, ip: Ipv4Addr, prefix: u8) -> Result<()> {
        let mut p = vec![libc::AF_INET as u8, prefix, 0, 0];
        p.extend_from_slice(&(index_of(dev)? as u32).to_ne_bytes());
        attr(&mut p, IFA_LOCAL, &ip.octets());
        attr(&mut p, IFA_ADDRESS, &ip.octets());
        let mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        let bcast = Ipv4Addr::from(u32::from(ip) | !mask);
        attr(&mut p, IFA_BROADCAST, &bcast.octets());
        self.request(
            RTM_NEWADDR,
            NLM_F_CREATE | NLM_F_EXCL,
            &p,
            &format!("adding {ip}/{prefix} to {dev}"),
        )
    }

    pub fn add_default_route(&mut self, gw: Ipv4Addr) -> Result<()> {
        // rtmsg: family, dst_len, src_len, tos, table main, proto boot,
        // scope universe, type unicast, flags.
        let mut p = vec![libc::AF_INET as u8, 0, 0, 0, 254, 3, 0, 1];
        p.extend_from_slice(&0u32.to_ne_bytes());
        attr(&mut p, RTA_GATEWAY, &gw.octets());
        self.request(
            RTM_NEWROUTE,
            NLM_F_CREATE | NLM_F_EXCL,
            &p,
            &format!("adding default route via {gw}"),
        )
    }
}

pub fn check_ifname(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 15 || name.contains(['/', ' ', ':']) {
        bail!("invalid interface name {name:?} (1-15 characters, no '/', ':' or spaces)");
    }
    Ok(())
}
