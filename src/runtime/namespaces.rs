//! Which namespaces a container gets, and the joins, unshares and id maps that make them.

use anyhow::{Context, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxIdMapping, LinuxNamespaceType};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

pub fn clone_flag(t: LinuxNamespaceType) -> CloneFlags {
    match t {
        LinuxNamespaceType::Mount => CloneFlags::CLONE_NEWNS,
        LinuxNamespaceType::Cgroup => CloneFlags::CLONE_NEWCGROUP,
        LinuxNamespaceType::Uts => CloneFlags::CLONE_NEWUTS,
        LinuxNamespaceType::Ipc => CloneFlags::CLONE_NEWIPC,
        LinuxNamespaceType::User => CloneFlags::CLONE_NEWUSER,
        LinuxNamespaceType::Pid => CloneFlags::CLONE_NEWPID,
        LinuxNamespaceType::Network => CloneFlags::CLONE_NEWNET,
        LinuxNamespaceType::Time => CloneFlags::from_bits_retain(libc::CLONE_NEWTIME),
    }
}

/// The namespaces of one container: those joined by path and those made new.
pub struct Plan {
    pub join: Vec<(LinuxNamespaceType, PathBuf)>,
    pub new: CloneFlags,
}

impl Plan {
    pub fn from_linux(linux: Option<&Linux>) -> Plan {
        let mut plan = Plan { join: Vec::new(), new: CloneFlags::empty() };
        let namespaces = linux
            .and_then(|l| l.namespaces().as_ref())
            .map(Vec::as_slice)
            .unwrap_or_default();
        for ns in namespaces {
            match ns.path() {
                Some(p) => plan.join.push((ns.typ(), p.clone())),
                None => plan.new |= clone_flag(ns.typ()),
            }
        }
        // The user namespace decides the privileges for joining every other one, so it goes first.
        plan.join
            .sort_by_key(|(t, _)| *t != LinuxNamespaceType::User);
        plan
    }

    pub fn has(&self, t: LinuxNamespaceType) -> bool {
        self.new.contains(clone_flag(t)) || self.join.iter().any(|(j, _)| *j == t)
    }

    pub fn new_user(&self) -> bool {
        self.new.contains(CloneFlags::CLONE_NEWUSER)
    }

    /// Joins every namespace given by path. All are opened before the first setns, since a
    /// joined mount namespace changes what the later paths mean.
    pub fn join_all(&self) -> Result<()> {
        let mut fds: Vec<(LinuxNamespaceType, OwnedFd, &PathBuf)> = Vec::new();
        for (t, path) in &self.join {
            let f = std::fs::File::open(path)
                .with_context(|| format!("open {} namespace {}", t, path.display()))?;
            fds.push((*t, OwnedFd::from(f), path));
        }
        for (t, fd, path) in &fds {
            // SAFETY: setns on an fd we own.
            if unsafe { libc::setns(fd.as_raw_fd(), clone_flag(*t).bits()) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("join {} namespace {}", t, path.display()));
            }
        }
        Ok(())
    }
}

fn map_text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Writes the uid and gid maps of the user namespace `pid` made. Done by hull, outside the
/// namespace, because only a process privileged in the parent namespace may map arbitrary ids.
pub fn write_id_maps(pid: i32, linux: &Linux) -> Result<()> {
    if let Some(maps) = linux.uid_mappings().as_ref().filter(|m| !m.is_empty()) {
        let path = format!("/proc/{pid}/uid_map");
        std::fs::write(&path, map_text(maps)).with_context(|| format!("write {path}"))?;
    }
    if let Some(maps) = linux.gid_mappings().as_ref().filter(|m| !m.is_empty()) {
        let path = format!("/proc/{pid}/gid_map");
        std::fs::write(&path, map_text(maps)).with_context(|| format!("write {path}"))?;
    }
    Ok(())
}

/// Sets the clock offsets of a fresh time namespace; must run before any process enters it.
pub fn write_time_offsets(linux: &Linux) -> Result<()> {
    let Some(offsets) = linux.time_offsets() else {
        return Ok(());
    };
    let mut text = String::new();
    for (clock, off) in offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    std::fs::write("/proc/self/timens_offsets", text).context("write /proc/self/timens_offsets")
}
