//! The embedded resolver of a user-defined network: a helper process
//! (`berth __dns <network>`) on the gateway's port 53 that answers A
//! queries for container names and aliases from the network's leases and
//! forwards everything else to the host's resolvers.

use anyhow::{Context, Result};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::ipam;

pub fn pid_file(root: &Path, net: &str) -> PathBuf {
    ipam::dir(root).join(format!("{net}.dns.pid"))
}

pub fn running(root: &Path, net: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(pid_file(root, net))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    crate::sys::pid_alive(pid).then_some(pid)
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
    // SAFETY: setsid is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
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

pub fn stop(root: &Path, net: &str) {
    if let Some(pid) = running(root, net) {
        // SAFETY: a pid we started and recorded.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        for _ in 0..100 {
            if !crate::sys::pid_running(pid) {
                break;
            }
            // Our own child when stopped by the process that started it.
            let mut st = 0;
            // SAFETY: non-blocking reap of a specific pid.
            unsafe { libc::waitpid(pid, &mut st, libc::WNOHANG) };
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let _ = std::fs::remove_file(pid_file(root, net));
}

/// The host's resolvers, or BERTH_DNS_UPSTREAM (comma-separated IPs;
/// `none` answers unknown names with NXDOMAIN without asking anyone,
/// which the tests use to keep all traffic on the machine).
fn upstreams() -> Vec<SocketAddr> {
    if let Ok(v) = std::env::var("BERTH_DNS_UPSTREAM") {
        return v
            .split(',')
            .filter_map(|s| s.trim().parse::<Ipv4Addr>().ok())
            .map(|ip| SocketAddr::from((ip, 53)))
            .collect();
    }
    std::fs::read_to_string("/etc/resolv.conf")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("nameserver"))
        .filter_map(|s| s.trim().parse::<Ipv4Addr>().ok())
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

/// The hidden `__dns` subcommand: reports "ok" or the error as one line on
/// `ready` (the parent waits for it), then answers queries until killed.
pub fn serve(root: &Path, net_name: &str, ready: &mut dyn std::io::Write) -> i32 {
    let net = match ipam::load(root, net_name) {
        Ok(n) => n,
        Err(e) => {
            let _ = writeln!(ready, "{e:#}");
            return 1;
        }
    };
    let sock = match net
        .gateway
        .parse::<Ipv4Addr>()
        .context("gateway")
        .and_then(|gw| UdpSocket::bind((gw, 53)).context("binding port 53 on the gateway"))
    {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(ready, "{e:#}");
            return 1;
        }
    };
    let _ = writeln!(ready, "ok");
    let _ = ready.flush();
    let _ = sock.set_read_timeout(Some(Duration::from_secs(2)));
    let ups = upstreams();
    let mut buf = [0u8; 1500];
    loop {
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(_) => {
                // Exit once the network is gone, so a helper never outlives it.
                if ipam::load(root, net_name).is_err() {
                    return 0;
                }
                continue;
            }
        };
        let q = buf[..n].to_vec();
        let Some((name, qtype, end)) = question(&q) else {
            continue;
        };
        if let Some(ip) = lookup(root, net_name, &name) {
            let ip = (qtype == 1).then_some(ip);
            let _ = sock.send_to(&answer(&q, end, ip, 0), from);
            continue;
        }
        let s2 = match sock.try_clone() {
            Ok(s) => s,
            Err(_) => continue,
        };
        let ups = ups.clone();
        std::thread::spawn(move || {
            for up in &ups {
                let Ok(u) = UdpSocket::bind("0.0.0.0:0") else {
                    return;
                };
                let _ = u.set_read_timeout(Some(Duration::from_secs(2)));
                if u.send_to(&q, up).is_err() {
                    continue;
                }
                let mut rb = [0u8; 4096];
                if let Ok(n) = u.recv(&mut rb) {
                    let _ = s2.send_to(&rb[..n], from);
                    return;
                }
            }
            let _ = s2.send_to(&answer(&q, end, None, 3), from);
        });
    }
}
