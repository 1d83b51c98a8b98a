//! berth's nftables table: NAT for its bridges and published ports kept
//! as map elements, so that adding or removing a container's ports is one
//! element change and never needs rule handles. One table per berth root
//! (`berth` for the default root) so that roots never step on each other.

use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::PortMap;

pub fn table_name(root: &Path) -> String {
    if root == Path::new(crate::image::store::DEFAULT_ROOT) {
        return "berth".into();
    }
    format!("berth_{}", super::owner::root_tag(root))
}

/// Whether this root's table registers `bridge`.
pub fn lists_bridge(root: &Path, bridge: &str) -> bool {
    Command::new("nft")
        .args(["list", "set", "ip", &table_name(root), "bridges"])
        .stderr(Stdio::null())
        .output()
        .map(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout).contains(&format!("\"{bridge}\""))
        })
        .unwrap_or(false)
}

pub fn nft(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft (install nftables)")?;
    if let Some(mut i) = child.stdin.take() {
        i.write_all(script.as_bytes()).context("writing to nft")?;
    }
    let out = child.wait_with_output().context("waiting for nft")?;
    if !out.status.success() {
        let e = String::from_utf8_lossy(&out.stderr);
        bail!(
            "nft: {}",
            e.lines()
                .find(|l| l.starts_with("Error"))
                .unwrap_or(e.trim())
        );
    }
    Ok(())
}

pub fn table_exists(t: &str) -> bool {
    Command::new("nft")
        .args(["list", "table", "ip", t])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Creates the table (once) and registers a bridge and its subnet.
pub fn add_bridge(root: &Path, bridge: &str, subnet: &str) -> Result<()> {
    let t = table_name(root);
    let mut s = String::new();
    if !table_exists(&t) {
        s.push_str(&format!(
            r#"table ip {t} {{
  set bridges {{ type ifname; }}
  set nets {{ type ipv4_addr; flags interval; }}
  map pub_ip {{ type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }}
  map pub_any {{ type inet_proto . inet_service : ipv4_addr . inet_service; }}
  chain prerouting {{ type nat hook prerouting priority dstnat; policy accept;
    fib daddr type local dnat ip to meta l4proto . th dport map @pub_any
    dnat ip to ip daddr . meta l4proto . th dport map @pub_ip
  }}
  chain output {{ type nat hook output priority -100; policy accept;
    fib daddr type local dnat ip to meta l4proto . th dport map @pub_any
    dnat ip to ip daddr . meta l4proto . th dport map @pub_ip
  }}
  chain postrouting {{ type nat hook postrouting priority srcnat; policy accept;
    oifname @bridges fib saddr type local masquerade
    ip saddr @nets oifname != @bridges masquerade
  }}
}}
"#
        ));
    }
    s.push_str(&format!("add element ip {t} bridges {{ \"{bridge}\" }}\n"));
    s.push_str(&format!("add element ip {t} nets {{ {subnet} }}\n"));
    nft(&s)
}

/// Unregisters a bridge; drops the whole table with the last one.
pub fn remove_bridge(root: &Path, bridge: &str, subnet: &str, last: bool) {
    let t = table_name(root);
    if !table_exists(&t) {
        return;
    }
    if last {
        let _ = nft(&format!("delete table ip {t}\n"));
        return;
    }
    let _ = nft(&format!(
        "delete element ip {t} bridges {{ \"{bridge}\" }}\n"
    ));
    let _ = nft(&format!("delete element ip {t} nets {{ {subnet} }}\n"));
}

fn element(p: &PortMap, ip: &str) -> (String, String) {
    if p.host_ip == "0.0.0.0" {
        (
            "pub_any".into(),
            format!(
                "{} . {} : {ip} . {}",
                p.proto, p.host_port, p.container_port
            ),
        )
    } else {
        (
            "pub_ip".into(),
            format!(
                "{} . {} . {} : {ip} . {}",
                p.host_ip, p.proto, p.host_port, p.container_port
            ),
        )
    }
}

pub fn publish(root: &Path, ports: &[PortMap], ip: &str) -> Result<()> {
    if ports.is_empty() {
        return Ok(());
    }
    let t = table_name(root);
    let mut s = String::new();
    for p in ports {
        let (map, e) = element(p, ip);
        s.push_str(&format!("add element ip {t} {map} {{ {e} }}\n"));
    }
    nft(&s).context("publishing ports")
}

pub fn unpublish(root: &Path, ports: &[PortMap]) {
    let t = table_name(root);
    for p in ports {
        let (map, e) = element(p, "0.0.0.0");
        let key = e.split(" : ").next().unwrap_or("");
        let _ = nft(&format!("delete element ip {t} {map} {{ {key} }}\n"));
    }
}
