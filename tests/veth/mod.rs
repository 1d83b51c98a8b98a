//! A veth pair the test makes in the host's network namespace, with names unique to the test
//! process, deleted on drop even when the test panics (one end is enough: the peer goes too).
#![allow(dead_code)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

pub struct Veth {
    pub a: String,
    pub b: String,
}

fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

pub fn exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

impl Veth {
    /// A fresh pair, or None (with the SKIP reason printed) when the kernel cannot make one.
    /// `ip` (iproute2) is a dependency hack/deps.sh installs: its absence is a failure.
    pub fn new() -> Option<Veth> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "hx{}n{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let v = Veth {
            a: format!("{tag}a"),
            b: format!("{tag}b"),
        };
        let out = Command::new("ip")
            .args(["link", "add", &v.a, "type", "veth", "peer", "name", &v.b])
            .output()
            .expect("run ip (iproute2, installed by hack/deps.sh)");
        if !out.status.success() {
            eprintln!(
                "SKIP: the kernel has no veth support ({})",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(v)
    }

    pub fn addr(&self, cidr: &str, extra: &[&str]) {
        let mut args = vec!["addr", "add", cidr, "dev", &self.a];
        args.extend_from_slice(extra);
        assert!(ip(&args), "ip {args:?}");
    }

    /// Waits until both ends are gone from the host (namespace teardown is asynchronous).
    pub fn gone_from_host(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while exists(&self.a) || exists(&self.b) {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        for n in [&self.a, &self.b] {
            if exists(n) {
                ip(&["link", "del", n]);
            }
        }
    }
}
