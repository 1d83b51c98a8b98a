//! Several berth roots on one host (issue 15): each root's default bridge gets its own name and
//! subnet (as its nftables table already has its own name), and a bridge records which root
//! made it in its interface alias (`/sys/class/net/<br>/ifalias`), so that one root never
//! reuses nor deletes another root's bridge.

use anyhow::{bail, Result};
use sha2::{Digest, Sha256};
use std::net::Ipv4Addr;
use std::path::Path;

use super::ipam;

const ALIAS_PREFIX: &str = "berth root ";

fn is_default_root(root: &Path) -> bool {
    root == Path::new(crate::image::store::DEFAULT_ROOT)
}

/// Eight hex digits of the root's path: its nft table, bridge name and subnet come from it.
pub fn root_tag(root: &Path) -> String {
    let h = Sha256::digest(root.to_string_lossy().as_bytes());
    hex::encode(h)[..8].to_string()
}

/// The default bridge's name: `berth0` for the default root, `berth-<tag>` for others.
pub fn default_bridge(root: &Path) -> String {
    if is_default_root(root) {
        "berth0".into()
    } else {
        format!("berth-{}", root_tag(root))
    }
}

/// The default bridge's subnet: 172.30.0.0/16 for the default root; for others a /24 of
/// 172.31.0.0/16 picked from the root's tag, skipping subnets routed on the host (other roots'
/// bridges among them).
pub fn default_subnet(root: &Path) -> Result<String> {
    if is_default_root(root) {
        return Ok("172.30.0.0/16".into());
    }
    let routes = ipam::host_routes();
    let start = u8::from_str_radix(&root_tag(root)[..2], 16).unwrap_or(0);
    for i in 0..=255u8 {
        let c = start.wrapping_add(i);
        let cand = (Ipv4Addr::new(172, 31, c, 0), 24);
        if !routes.iter().any(|r| ipam::overlaps(*r, cand)) {
            return Ok(format!("172.31.{c}.0/24"));
        }
    }
    bail!(
        "no free /24 left in 172.31.0.0/16 for this root's default bridge; set BERTH_BRIDGE_SUBNET"
    )
}

fn alias_path(bridge: &str) -> String {
    format!("/sys/class/net/{bridge}/ifalias")
}

/// The root recorded on an existing bridge ("" when none is).
fn owner(bridge: &str) -> String {
    std::fs::read_to_string(alias_path(bridge))
        .unwrap_or_default()
        .trim()
        .strip_prefix(ALIAS_PREFIX)
        .unwrap_or("")
        .to_string()
}

/// Marks a bridge this root just made (or one of its own from before aliases) as this root's.
pub fn claim(root: &Path, bridge: &str) -> Result<()> {
    let p = alias_path(bridge);
    std::fs::write(&p, format!("{ALIAS_PREFIX}{}", root.display()))
        .map_err(|e| anyhow::anyhow!("writing {p}: {e}"))
}

/// Whether an existing bridge is this root's: its alias names the root, or (bridges made before
/// aliases) it has no alias and this root's nft table lists it.
pub fn is_mine(root: &Path, bridge: &str) -> bool {
    let o = owner(bridge);
    if o.is_empty() {
        return super::nft::lists_bridge(root, bridge);
    }
    Path::new(&o) == root
}

/// Refuses an existing bridge that is not this root's, naming its owner.
pub fn check_existing(root: &Path, bridge: &str) -> Result<()> {
    if is_mine(root, bridge) {
        if owner(bridge).is_empty() {
            claim(root, bridge)?;
        }
        return Ok(());
    }
    match owner(bridge) {
        o if !o.is_empty() => bail!(
            "bridge {bridge} belongs to berth root {o}: give this root its own bridge (BERTH_BRIDGE, BERTH_BRIDGE_SUBNET)"
        ),
        _ => bail!(
            "bridge {bridge} exists on the host and is not this berth root's: remove it or set BERTH_BRIDGE"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_root_names() {
        assert_eq!(default_bridge(Path::new("/var/lib/berth")), "berth0");
        let b = default_bridge(Path::new("/tmp/other"));
        assert!(b.starts_with("berth-") && b.len() <= 15, "{b}");
        assert_ne!(b, default_bridge(Path::new("/tmp/other2")));
        assert_eq!(
            default_subnet(Path::new("/var/lib/berth")).unwrap(),
            "172.30.0.0/16"
        );
    }
}
