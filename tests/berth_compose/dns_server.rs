//! A DNS server the test owns: a veth pair made by the test (a dummy interface would do, but
//! kernels without the dummy module are common in VMs) with one /32 address on one end, and a
//! UDP responder in the test process on that address's port 53 that knows one name. Reachable
//! from the host's network namespace, where a network's resolver forwards from; removed on drop.

use std::net::{Ipv4Addr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub struct TestDns {
    pub addr: Ipv4Addr,
    link: String,
    stop: Arc<AtomicBool>,
    /// Queries for the known name that reached this server.
    pub hits: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The name this server answers, and its address.
pub const NAME: &str = "only.testdns.example";
pub const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);

impl TestDns {
    /// None (SKIP printed) when the kernel makes no veth pairs.
    pub fn start(link: &str, addr: Ipv4Addr) -> Option<TestDns> {
        let _ = ip(&["link", "del", link]);
        let peer = format!("{link}p");
        if !ip(&["link", "add", link, "type", "veth", "peer", "name", &peer]) {
            eprintln!("SKIP: the kernel makes no veth pairs");
            return None;
        }
        let mut me = TestDns {
            addr,
            link: link.to_string(),
            stop: Arc::new(AtomicBool::new(false)),
            hits: Arc::new(AtomicUsize::new(0)),
            thread: None,
        };
        assert!(ip(&["addr", "add", &format!("{addr}/32"), "dev", link]));
        assert!(ip(&["link", "set", link, "up"]));
        assert!(ip(&["link", "set", &peer, "up"]));
        let sock = UdpSocket::bind((addr, 53)).expect("binding the test DNS server");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let (stop, hits) = (me.stop.clone(), me.hits.clone());
        me.thread = Some(std::thread::spawn(move || serve(sock, &stop, &hits)));
        Some(me)
    }
}

fn serve(sock: UdpSocket, stop: &AtomicBool, hits: &AtomicUsize) {
    let mut buf = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        let Ok((n, from)) = sock.recv_from(&mut buf) else {
            continue;
        };
        if let Some(r) = reply(&buf[..n], hits) {
            let _ = sock.send_to(&r, from);
        }
    }
}

/// The answer to one query: `NAME` A -> `ANSWER`, `NAME` other types -> no data, else NXDOMAIN.
fn reply(q: &[u8], hits: &AtomicUsize) -> Option<Vec<u8>> {
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let l = *q.get(i)? as usize;
        i += 1;
        if l == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(q.get(i..i + l)?).to_ascii_lowercase());
        i += l;
    }
    let qtype = u16::from_be_bytes([*q.get(i)?, *q.get(i + 1)?]);
    let end = i + 4;
    let known = labels.join(".") == NAME;
    let mut r = q.get(..end)?.to_vec();
    r[2] = 0x81 | (q[2] & 0x01);
    r[3] = if known { 0x80 } else { 0x83 };
    r[6..12].fill(0);
    if known {
        hits.fetch_add(1, Ordering::Relaxed);
    }
    if known && qtype == 1 {
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        r.extend_from_slice(&ANSWER.octets());
    }
    Some(r)
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = ip(&["link", "del", &self.link]);
    }
}
