//! Idmapped bind mounts (`mounts[i].uidMappings`/`gidMappings`, options `idmap`/`ridmap`).
//!
//! The kernel allows an idmapping only to a process privileged over the filesystem's own user
//! namespace (the host's, for ext4), which the container init is not once it sits in a user
//! namespace. So, as runc does, hull makes each idmapped mount here, in the parent, as a detached
//! mount (open_tree + mount_setattr with MOUNT_ATTR_IDMAP), and the init only moves it into place
//! (move_mount) by fd.

use super::mountapi;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxIdMapping;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// The idmap of one config mount, read from config.json (oci-spec's Mount does not carry it).
#[derive(Debug, Clone)]
pub struct MountIdmap {
    pub uid: Vec<LinuxIdMapping>,
    pub gid: Vec<LinuxIdMapping>,
    pub recursive: bool,
    /// MOUNT_ATTR_* flags from the mount's options (ro, nosuid, nodev, noexec).
    pub attrs: u64,
}

/// The idmap of each mount, by index, from config.json text; errors name the field.
pub fn from_config(text: &str) -> Result<Vec<Option<MountIdmap>>> {
    // Most configs have no idmapped mount: skip the second parse for them.
    if !text.contains("idmap") && !text.contains("Mappings") {
        return Ok(Vec::new());
    }
    let v: serde_json::Value = serde_json::from_str(text)?;
    let mut out = Vec::new();
    for (i, m) in v["mounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let opts: Vec<&str> = m["options"]
            .as_array()
            .map(|a| a.iter().filter_map(|o| o.as_str()).collect())
            .unwrap_or_default();
        let has_opt = opts.iter().any(|o| *o == "idmap" || *o == "ridmap");
        let maps = |key: &str| -> Result<Vec<LinuxIdMapping>> {
            match m.get(key) {
                None | Some(serde_json::Value::Null) => Ok(Vec::new()),
                Some(v) => {
                    serde_json::from_value(v.clone()).with_context(|| format!("mounts[{i}].{key}"))
                }
            }
        };
        let (uid, gid) = (maps("uidMappings")?, maps("gidMappings")?);
        if uid.is_empty() && gid.is_empty() && !has_opt {
            out.push(None);
            continue;
        }
        if uid.is_empty() || gid.is_empty() {
            bail!("mounts[{i}]: an idmapped mount needs both uidMappings and gidMappings");
        }
        let bind = m["type"] == "bind" || opts.iter().any(|o| *o == "bind" || *o == "rbind");
        if !bind {
            bail!("mounts[{i}]: only bind mounts can be idmapped");
        }
        let recursive = opts.iter().any(|o| *o == "rbind" || *o == "ridmap");
        let attrs = opts.iter().fold(0u64, |a, o| {
            a | match *o {
                "ro" => mountapi::MOUNT_ATTR_RDONLY,
                "nosuid" => mountapi::MOUNT_ATTR_NOSUID,
                "nodev" => mountapi::MOUNT_ATTR_NODEV,
                "noexec" => mountapi::MOUNT_ATTR_NOEXEC,
                _ => 0,
            }
        });
        out.push(Some(MountIdmap {
            uid,
            gid,
            recursive,
            attrs,
        }));
    }
    Ok(out)
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// A user namespace holding `idmap`, kept by fd: a child unshares it and waits until its maps
/// are written and the namespace is opened, then is killed.
fn userns_for(idmap: &MountIdmap) -> Result<OwnedFd> {
    let (parent, child) = std::os::unix::net::UnixStream::pair().context("socketpair")?;
    // SAFETY: single-threaded; the child only unshares, signals, and waits to be killed.
    let pid = match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Child => {
            drop(parent);
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            let mut c = &child;
            let _ = std::io::Write::write_all(&mut c, if ok { b"k" } else { b"e" });
            // SAFETY: pause until killed; never return into hull.
            unsafe {
                libc::pause();
                libc::_exit(0)
            }
        }
        nix::unistd::ForkResult::Parent { child: pid } => pid.as_raw(),
    };
    drop(child);
    let result = (|| -> Result<OwnedFd> {
        let mut byte = [0u8; 1];
        let mut p = &parent;
        std::io::Read::read_exact(&mut p, &mut byte).context("wait for the idmap namespace")?;
        if byte[0] != b'k' {
            bail!("unshare a user namespace for an idmapped mount");
        }
        for (file, maps) in [("uid_map", &idmap.uid), ("gid_map", &idmap.gid)] {
            let path = format!("/proc/{pid}/{file}");
            std::fs::write(&path, map_text(maps)).with_context(|| format!("write {path}"))?;
        }
        let ns =
            File::open(format!("/proc/{pid}/ns/user")).context("open the idmap user namespace")?;
        Ok(OwnedFd::from(ns))
    })();
    // SAFETY: our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, std::ptr::null_mut(), 0);
    }
    result
}

/// Makes the detached idmapped mount of `source`.
pub fn prepare(source: &Path, idmap: &MountIdmap) -> Result<OwnedFd> {
    let userns = userns_for(idmap)?;
    let tree = mountapi::clone_tree(source, idmap.recursive)
        .with_context(|| format!("open_tree {}", source.display()))?;
    mountapi::set_attr(
        &tree,
        mountapi::MOUNT_ATTR_IDMAP | idmap.attrs,
        Some(userns.as_raw_fd()),
        idmap.recursive,
    )
    .with_context(|| {
        format!(
            "idmap {} (does its filesystem support idmapped mounts?)",
            source.display()
        )
    })?;
    Ok(tree)
}

/// Prepares every idmapped mount of a config: (mount index, detached mount fd).
pub fn prepare_all(
    spec: &oci_spec::runtime::Spec,
    idmaps: &[Option<MountIdmap>],
    bundle: &Path,
) -> Result<Vec<(usize, OwnedFd)>> {
    let mut out = Vec::new();
    let mounts = spec.mounts().as_deref().unwrap_or_default();
    for (i, idmap) in idmaps.iter().enumerate() {
        let (Some(idmap), Some(m)) = (idmap, mounts.get(i)) else {
            continue;
        };
        let src = m
            .source()
            .as_ref()
            .with_context(|| format!("mounts[{i}].source: an idmapped mount needs one"))?;
        let src: PathBuf = if src.is_absolute() {
            src.clone()
        } else {
            bundle.join(src)
        };
        out.push((
            i,
            prepare(&src, idmap).with_context(|| format!("mounts[{i}]"))?,
        ));
    }
    Ok(out)
}

/// Moves a prepared detached mount onto `target` (an O_PATH fd inside the rootfs).
pub fn attach(tree: RawFd, target: RawFd) -> Result<()> {
    mountapi::move_onto(tree, target).context("move the idmapped mount into place")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idmaps_are_read_per_mount_and_checked() {
        let text = r#"{"mounts":[
            {"destination":"/a","type":"bind","source":"/x","options":["rbind"],
             "uidMappings":[{"containerID":0,"hostID":1000,"size":1}],
             "gidMappings":[{"containerID":0,"hostID":1000,"size":1}]},
            {"destination":"/proc","type":"proc","source":"proc"}]}"#;
        let m = from_config(text).unwrap();
        assert!(m[0].as_ref().unwrap().recursive);
        assert!(m[1].is_none());
        let bad = text.replace(
            r#""type":"bind","source":"/x","options":["rbind"],"#,
            r#""type":"tmpfs","#,
        );
        assert!(from_config(&bad)
            .unwrap_err()
            .to_string()
            .contains("only bind mounts"));
        let half = r#"{"mounts":[{"destination":"/a","type":"bind","source":"/x","uidMappings":[{"containerID":0,"hostID":1,"size":1}]}]}"#;
        assert!(from_config(half).unwrap_err().to_string().contains("both"));
    }
}
