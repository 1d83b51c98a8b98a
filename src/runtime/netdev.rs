//! `linux.netDevices` (config-linux.md "Network Devices"): host links moved into the container's
//! network namespace by hull (the parent) once the init exists, renamed to `name`, with their
//! permanent global addresses restored (a namespace move drops them) and set up. As the spec
//! says, nothing is moved back on delete: when the namespace goes, the kernel destroys virtual
//! devices and returns physical ones to the initial namespace.

use super::rtnl::{self, Rtnl, NLM_F_CREATE, NLM_F_EXCL, RTM_GETADDR, RTM_GETLINK, RTM_NEWADDR};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;

const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_NET_NS_FD: u16 = 28;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const IFA_FLAGS: u16 = 8;
const IFA_F_PERMANENT: u32 = 0x80;
/// The address flags a user sets (nodad, optimistic, homeaddress, managetempaddr,
/// noprefixroute, mcautojoin); the others are the kernel's state.
const IFA_USER_FLAGS: u32 = 0x02 | 0x04 | 0x10 | 0x100 | 0x200 | 0x400;
const RT_SCOPE_UNIVERSE: u8 = 0;
const IFF_UP: u32 = 1;

fn field(host: &str) -> String {
    format!("linux.netDevices[{host:?}]")
}

/// A valid interface name (dev_valid_name in the kernel), allowing one `%d` template.
fn check_name(name: &str, what: &str) -> Result<()> {
    if name.is_empty() || name.len() > 15 {
        bail!("{what}: {name:?} must be 1 to 15 bytes long");
    }
    if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        bail!("{what}: {name:?} is not a valid interface name");
    }
    if name.contains('%') && (name.matches('%').count() > 1 || !name.contains("%d")) {
        bail!("{what}: {name:?}: the only template allowed is one \"%d\"");
    }
    Ok(())
}

fn same_netns_as_ours(path: &std::path::Path) -> Result<bool> {
    let theirs = std::fs::metadata(path)?;
    let ours = std::fs::metadata("/proc/self/ns/net")?;
    Ok((theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino()))
}

/// Checks the config before anything is made: names, a network namespace that is not the
/// runtime's, and devices that exist in the runtime's namespace.
pub fn validate(spec: &Spec) -> Result<()> {
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let Some(devs) = linux.net_devices().as_ref().filter(|d| !d.is_empty()) else {
        return Ok(());
    };
    let netns = linux
        .namespaces()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network);
    let shared = match netns {
        None => true,
        Some(ns) => match ns.path() {
            None => false,
            Some(p) => same_netns_as_ours(p)
                .with_context(|| format!("linux.netDevices: netns {}", p.display()))?,
        },
    };
    if shared {
        bail!("linux.netDevices: the container must have a network namespace other than the runtime's");
    }
    // Asked of the kernel: /sys/class/net shows the namespace sysfs was mounted from, which
    // need not be hull's.
    let host_links = Rtnl::open()
        .and_then(|mut nl| links(&mut nl))
        .context("linux.netDevices: list the runtime's network devices")?;
    let mut targets = std::collections::HashSet::new();
    let mut keys: Vec<&String> = devs.keys().collect();
    keys.sort();
    for host in keys {
        check_name(host, &field(host))?;
        let target = devs[host].name().clone().unwrap_or_else(|| host.clone());
        check_name(&target, &format!("{}.name", field(host)))?;
        if !target.contains('%') && !targets.insert(target.clone()) {
            bail!("{}.name: {target:?} is given to two devices", field(host));
        }
        if !host_links.iter().any(|(_, n, _)| n == host) {
            bail!(
                "{}: no such network device in the runtime's network namespace",
                field(host)
            );
        }
    }
    Ok(())
}

/// One address of a link, as the kernel reported it.
struct Addr {
    family: u8,
    prefix: u8,
    flags: u32,
    attrs: Vec<(u16, Vec<u8>)>,
}

/// The permanent, global-scope addresses of link `index` (the ones the spec says to keep).
fn permanent_addrs(nl: &mut Rtnl, index: i32) -> Result<Vec<Addr>> {
    let mut out = Vec::new();
    for msg in nl.dump(RTM_GETADDR, &[0u8; 8])? {
        if msg.len() < 8 {
            continue;
        }
        let idx = i32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
        let scope = msg[3];
        let attrs = rtnl::attrs(&msg[8..]);
        let flags = attrs
            .iter()
            .find(|(t, _)| *t == IFA_FLAGS)
            .and_then(|(_, d)| d.get(..4)?.try_into().ok())
            .map_or(msg[2] as u32, u32::from_ne_bytes);
        if idx != index || scope != RT_SCOPE_UNIVERSE || flags & IFA_F_PERMANENT == 0 {
            continue;
        }
        let keep = attrs
            .into_iter()
            .filter(|(t, _)| matches!(*t, IFA_ADDRESS | IFA_LOCAL | IFA_BROADCAST))
            .map(|(t, d)| (t, d.to_vec()))
            .collect();
        out.push(Addr {
            family: msg[0],
            prefix: msg[1],
            flags: flags & IFA_USER_FLAGS,
            attrs: keep,
        });
    }
    Ok(out)
}

/// (index, name, hardware address) of every link of the namespace `nl` talks to.
fn links(nl: &mut Rtnl) -> Result<Vec<(i32, String, Vec<u8>)>> {
    let mut out = Vec::new();
    for msg in nl.dump(RTM_GETLINK, &rtnl::ifinfomsg(0, 0, 0))? {
        if msg.len() < 16 {
            continue;
        }
        let idx = i32::from_ne_bytes([msg[4], msg[5], msg[6], msg[7]]);
        let mut name = String::new();
        let mut mac = Vec::new();
        for (t, d) in rtnl::attrs(&msg[16..]) {
            match t {
                IFLA_IFNAME => name = rtnl::attr_str(d),
                IFLA_ADDRESS => mac = d.to_vec(),
                _ => {}
            }
        }
        out.push((idx, name, mac));
    }
    Ok(out)
}

/// Whether `name` is what the kernel makes of `target` (a `%d` template or an exact name).
fn matches(target: &str, name: &str) -> bool {
    match target.split_once("%d") {
        None => target == name,
        Some((pre, post)) => name
            .strip_prefix(pre)
            .and_then(|r| r.strip_suffix(post))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
    }
}

/// Moves every device of `linux.netDevices` into the network namespace of `init_pid`.
pub fn move_net_devices(spec: &Spec, init_pid: i32) -> Result<()> {
    let Some(devs) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.net_devices().as_ref())
        .filter(|d| !d.is_empty())
    else {
        return Ok(());
    };
    let ns_path = format!("/proc/{init_pid}/ns/net");
    if same_netns_as_ours(std::path::Path::new(&ns_path)).context("linux.netDevices")? {
        bail!("linux.netDevices: the container shares the runtime's network namespace");
    }
    let ns = std::fs::File::open(&ns_path)
        .with_context(|| format!("linux.netDevices: open {ns_path}"))?;
    let mut host = Rtnl::open().context("linux.netDevices")?;
    let mut inside = Rtnl::open_in(&ns).context("linux.netDevices")?;
    let mut keys: Vec<&String> = devs.keys().collect();
    keys.sort();
    for name in keys {
        let target = devs[name].name().clone().unwrap_or_else(|| name.clone());
        move_one(&mut host, &mut inside, &ns, name, &target).with_context(|| field(name))?;
    }
    Ok(())
}

fn move_one(
    host: &mut Rtnl,
    inside: &mut Rtnl,
    ns: &std::fs::File,
    name: &str,
    target: &str,
) -> Result<()> {
    let (index, _, mac) = links(host)?
        .into_iter()
        .find(|(_, n, _)| n == name)
        .context("no such network device in the runtime's network namespace")?;
    // Checked before the move: a device moved and then refused its name would be lost with
    // the namespace of the failed container.
    if !target.contains('%') && links(inside)?.iter().any(|(_, n, _)| n == target) {
        bail!("name {target:?} already exists in the container's network namespace");
    }
    let addrs = permanent_addrs(host, index)?;
    let mut req = rtnl::ifinfomsg(index, 0, 0);
    rtnl::put_attr(
        &mut req,
        IFLA_NET_NS_FD,
        &(ns.as_raw_fd() as u32).to_ne_bytes(),
    );
    let mut cname = target.as_bytes().to_vec();
    cname.push(0);
    rtnl::put_attr(&mut req, IFLA_IFNAME, &cname);
    // The kernel moves the link, then renames it in the container's namespace.
    host.request(rtnl::RTM_NEWLINK, 0, &req).map_err(|e| {
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|e| e.raw_os_error())
        {
            Some(libc::EEXIST) => anyhow::anyhow!(
                "name {target:?} already exists in the container's network namespace"
            ),
            _ => e.context(format!(
                "move into the container's network namespace as {target:?}"
            )),
        }
    })?;
    let found: Vec<_> = links(inside)?
        .into_iter()
        .filter(|(_, n, m)| matches(target, n) && (mac.is_empty() || *m == mac))
        .collect();
    let new_index = match found.as_slice() {
        [(i, _, _)] => *i,
        _ => bail!("moved as {target:?}, but cannot find it in the container's namespace"),
    };
    for a in &addrs {
        let mut req = vec![a.family, a.prefix, a.flags as u8, RT_SCOPE_UNIVERSE];
        req.extend_from_slice(&(new_index as u32).to_ne_bytes());
        for (t, d) in &a.attrs {
            rtnl::put_attr(&mut req, *t, d);
        }
        rtnl::put_attr(&mut req, IFA_FLAGS, &a.flags.to_ne_bytes());
        inside
            .request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &req)
            .context("restore an address in the container's namespace")?;
    }
    inside
        .request(
            rtnl::RTM_NEWLINK,
            0,
            &rtnl::ifinfomsg(new_index, IFF_UP, IFF_UP),
        )
        .context("set the device up in the container's namespace")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_templates() {
        assert!(matches("eth%d", "eth0") && matches("eth%d", "eth12"));
        assert!(!matches("eth%d", "eth") && !matches("eth%d", "ethx"));
        assert!(matches("ctr0", "ctr0") && !matches("ctr0", "ctr1"));
        check_name("eth%d", "f").unwrap();
        for bad in ["", "a/b", "a b", "0123456789abcdef", "%s", "a%d%d", ".."] {
            assert!(check_name(bad, "f").is_err(), "{bad:?}");
        }
    }
}
