//! The embedded resolver of a user-defined network: a helper process
//! (`berth __dns <network>`) on the gateway's port 53 that answers A
//! queries for container names and aliases from the network's leases and
//! forwards everything else to the asking container's `--dns` servers (its
//! lease, found by source address), else to the host's resolvers.

use anyhow::{Context, Result};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{ipam, netlink};

pub fn pid_file(root: &Path, net: &str) -> PathBuf {
    ipam::dir(root).join(format!("{net}.dns.pid"))
}

/// The recorded helper, if that pid is still a live (not zombie) `__dns` of `net`: a pid
/// reused by another process after the helper died must not be signalled as it.
pub fn running(root: &Path, net: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(root, net))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cl = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mine = cl
        .split(|b| *b == 0)
        .skip_while(|a| *a != b"__dns")
        .nth(1)
        .is_some_and(|a| a == net.as_bytes());
    (mine && crate::sys::pid_running(pid)).then_some(pid)
}

/// Starts the helper unless it runs; waits until it listens.
pub fn ensure(root: &Path, net: &ipam::Network) -> Result<()> {
    if running(root, &net.name).is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().context("finding the berth binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root")
        .arg(root)
        .arg("__dns")
        .arg(&net.name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    // SAFETY: setsid, sigemptyset, sigprocmask and signal are async-signal-safe. The mask and
    // an ignored SIGTERM would be inherited from the starter (a CLI that blocks signals to
    // handle them itself), and `stop`'s SIGTERM would then never end the helper.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting the DNS helper")?;
    // The helper prints one line once bound (or its error).
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        use std::io::BufRead;
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    if line.trim() != "ok" {
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!("DNS helper for network {}: {}", net.name, line.trim());
    }
    std::fs::write(pid_file(root, &net.name), child.id().to_string())
        .context("writing the DNS helper pid")?;
    std::mem::forget(child);
    Ok(())
}

/// Waits up to `d` for `pid` to be gone (or a zombie: it holds no socket then).
fn wait_exit(pid: i32, d: Duration) -> bool {
    let end = Instant::now() + d;
    loop {
        if !crate::sys::pid_running(pid) {
            return true;
        }
        // Our own child when stopped by the process that started it.
        let mut st = 0;
        // SAFETY: non-blocking reap of a specific pid.
        unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Ends the helper: SIGTERM, then SIGKILL if it is still there after a second, so its port
/// 53 is free when this returns (an `up` right after `down` binds the same gateway).
pub fn stop(root: &Path, net: &str) {
    if let Some(pid) = running(root, net) {
        // SAFETY: a pid we started and recorded, checked to be our helper just now.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        if !wait_exit(pid, Duration::from_secs(1)) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            wait_exit(pid, Duration::from_secs(2));
        }
    }
    let _ = std::fs::remove_file(pid_file(root, net));
}

/// The host's resolvers, or BERTH_DNS_UPSTREAM (comma-separated IPs;
/// `none` answers unknown names with NXDOMAIN without asking anyone,
/// which the tests use to keep all traffic on the machine).
fn host_upstreams() -> Vec<SocketAddr> {
    if let Ok(v) = std::env::var("BERTH_DNS_UPSTREAM") {
        return v
            .split(',')
            .filter_map(|s| s.trim().parse::<IpAddr>().ok())
            .map(|ip| SocketAddr::from((ip, 53)))
            .collect();
    }
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::from((ip, 53)))
        .collect()
}

/// Where a query from `from` goes: the `--dns` servers of the member with that address,
/// else the host's resolvers (docker's embedded DNS does the same).
fn upstreams_for(root: &Path, net: &str, from: IpAddr, host: &[SocketAddr]) -> Vec<SocketAddr> {
    let own = ipam::leases(root, net)
        .into_iter()
        .find(|(ip, _)| ip.parse::<IpAddr>().ok() == Some(from))
        .map(|(_, l)| l.dns)
        .unwrap_or_default();
    if own.is_empty() {
        return host.to_vec();
    }
    own.into_iter()
        .map(|ip| SocketAddr::from((ip, 53)))
        .collect()
}

/// Parses the question: (name lowercased, qtype, end offset).
fn question(q: &[u8]) -> Option<(String, u16, usize)> {
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let l = *q.get(i)? as usize;
        if l == 0 {
            i += 1;
            break;
        }
        if l & 0xc0 != 0 {
            return None;
        }
        labels.push(String::from_utf8_lossy(q.get(i + 1..i + 1 + l)?).to_ascii_lowercase());
        i += 1 + l;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    Some((labels.join("."), qtype, i + 4))
}

fn lookup(root: &Path, net: &str, name: &str) -> Option<Ipv4Addr> {
    let short = name.split('.').next().unwrap_or(name);
    ipam::leases(root, net).into_iter().find_map(|(ip, l)| {
        let hit = [name, short].iter().any(|n| {
            l.name == *n
                || l.aliases.iter().any(|a| a == n)
                || (n.len() == 12 && l.id.starts_with(n))
        });
        hit.then(|| ip.parse().ok()).flatten()
    })
}

fn answer(q: &[u8], end: usize, ip: Option<Ipv4Addr>, rcode: u8) -> Vec<u8> {
    let mut r = q[..end].to_vec();
    r[2] = 0x81 | (q[2] & 0x01);
    r[3] = 0x80 | rcode;
    r[4..6].copy_from_slice(&1u16.to_be_bytes());
    r[6..8].copy_from_slice(&(ip.is_some() as u16).to_be_bytes());
    r[8..12].fill(0);
    if let Some(ip) = ip {
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        r.extend_from_slice(&600u32.to_be_bytes());
        r.extend_from_slice(&4u16.to_be_bytes());
        r.extend_from_slice(&ip.octets());
    }
    r
}

/// The gateway's port 53, bound to the network's bridge (SO_BINDTODEVICE): a helper of an
/// earlier network that had the same gateway, still exiting, holds a socket bound to that
/// bridge, which is gone, so it cannot keep this one from binding.
fn bind(net: &ipam::Network) -> Result<UdpSocket> {
    use nix::sys::socket::{self as so, sockopt};
    let gw: Ipv4Addr = net.gateway.parse().context("gateway")?;
    let fd = so::socket(
        so::AddressFamily::Inet,
        so::SockType::Datagram,
        so::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .context("creating the DNS socket")?;
    so::setsockopt(
        &fd,
        sockopt::BindToDevice,
        &std::ffi::OsString::from(&net.bridge),
    )
    .with_context(|| format!("binding the DNS socket to {}", net.bridge))?;
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 53u16.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(gw).to_be(),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: a valid socket fd and a sockaddr_in of the size given.
    let r = unsafe {
        libc::bind(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            std::ptr::addr_of!(sa).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("binding {gw}:53 on {}", net.bridge));
    }
    Ok(UdpSocket::from(fd))
}

/// The network this helper serves is still the one it started for: same record (not one
/// made again under the name) and same bridge.
fn still_mine(root: &Path, start: &ipam::Network, ifindex: Option<i32>) -> bool {
    ipam::load(root, &start.name).is_ok_and(|n| n.id == start.id)
        && netlink::ifindex(&start.bridge) == ifindex
}

/// Asks `ups` in turn and relays the first answer to `from`; NXDOMAIN when none answers.
fn forward(sock: UdpSocket, ups: Vec<SocketAddr>, q: Vec<u8>, end: usize, from: SocketAddr) {
    for up in &ups {
        let any: SocketAddr = match up {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let Ok(u) = UdpSocket::bind(any) else {
            continue;
        };
        let _ = u.set_read_timeout(Some(Duration::from_secs(2)));
        if u.send_to(&q, up).is_err() {
            continue;
        }
        let mut rb = [0u8; 4096];
        if let Ok(n) = u.recv(&mut rb) {
            let _ = sock.send_to(&rb[..n], from);
            return;
        }
    }
    let _ = sock.send_to(&answer(&q, end, None, 3), from);
}

/// The hidden `__dns` subcommand: reports "ok" or the error as one line on
/// `ready` (the parent waits for it), then answers queries until killed or
/// until its network is gone.
pub fn serve(root: &Path, net_name: &str, ready: &mut dyn std::io::Write) -> i32 {
    let net = match ipam::load(root, net_name) {
        Ok(n) => n,
        Err(e) => {
            let _ = writeln!(ready, "{e:#}");
            return 1;
        }
    };
    let ifindex = netlink::ifindex(&net.bridge);
    let sock = match bind(&net) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(ready, "{e:#}");
            return 1;
        }
    };
    let _ = writeln!(ready, "ok");
    let _ = ready.flush();
    let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
    let host = host_upstreams();
    let mut checked = Instant::now();
    let mut buf = [0u8; 1500];
    loop {
        let got = sock.recv_from(&mut buf);
        // Exit once the network is gone, so a helper never outlives it; checked even while
        // queries keep coming.
        if got.is_err() || checked.elapsed() > Duration::from_secs(2) {
            if !still_mine(root, &net, ifindex) {
                return 0;
            }
            checked = Instant::now();
        }
        let Ok((n, from)) = got else { continue };
        let q = buf[..n].to_vec();
        let Some((name, qtype, end)) = question(&q) else {
            continue;
        };
        if let Some(ip) = lookup(root, net_name, &name) {
            let ip = (qtype == 1).then_some(ip);
            let _ = sock.send_to(&answer(&q, end, ip, 0), from);
            continue;
        }
        let Ok(s2) = sock.try_clone() else { continue };
        let ups = upstreams_for(root, net_name, from.ip(), &host);
        std::thread::spawn(move || forward(s2, ups, q, end, from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_members_queries_go_to_its_own_servers() {
        let tmp = tempfile::tempdir().unwrap();
        let net = ipam::Network {
            name: "n".into(),
            id: "x".into(),
            driver: "bridge".into(),
            subnet: "10.9.0.0/24".into(),
            gateway: "10.9.0.1".into(),
            bridge: "brx".into(),
            created: String::new(),
            dns: true,
            internal: false,
            ip_range: None,
            labels: Default::default(),
        };
        ipam::save(tmp.path(), &net).unwrap();
        let with = ipam::Lease {
            id: "a".into(),
            dns: vec!["192.0.2.53".parse().unwrap()],
            ..Default::default()
        };
        let (a, _) = ipam::allocate(tmp.path(), &net, with).unwrap();
        let without = ipam::Lease {
            id: "b".into(),
            ..Default::default()
        };
        let (b, _) = ipam::allocate(tmp.path(), &net, without).unwrap();
        let host: Vec<SocketAddr> = vec!["198.51.100.1:53".parse().unwrap()];
        let own = upstreams_for(tmp.path(), "n", IpAddr::V4(a), &host);
        assert_eq!(own, ["192.0.2.53:53".parse::<SocketAddr>().unwrap()]);
        assert_eq!(upstreams_for(tmp.path(), "n", IpAddr::V4(b), &host), host);
        let stranger = IpAddr::V4("10.9.0.200".parse().unwrap());
        assert_eq!(upstreams_for(tmp.path(), "n", stranger, &host), host);
    }
}
