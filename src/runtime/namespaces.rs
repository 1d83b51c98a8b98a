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
    /// A root to chroot into after the joins: for exec into a container without a mount
    /// namespace of its own, whose init chroot'ed into its rootfs in ours (`/proc/<init>/root`).
    /// A joined mount namespace sets the root itself.
    pub enter_root: Option<PathBuf>,
}

impl Plan {
    pub fn from_linux(linux: Option<&Linux>) -> Plan {
        let mut plan = Plan {
            join: Vec::new(),
            new: CloneFlags::empty(),
            enter_root: None,
        };
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

    /// Joins every namespace given by path, then enters `enter_root`. All are opened before the
    /// first setns, since a joined mount namespace changes what the later paths mean.
    pub fn join_all(&self) -> Result<()> {
        let mut fds: Vec<(LinuxNamespaceType, OwnedFd, &PathBuf)> = Vec::new();
        for (t, path) in &self.join {
            let f = std::fs::File::open(path)
                .with_context(|| format!("open {} namespace {}", t, path.display()))?;
            fds.push((*t, OwnedFd::from(f), path));
        }
        let root = match &self.enter_root {
            Some(path) => Some((
                super::resolve::openat2(
                    libc::AT_FDCWD,
                    path,
                    libc::O_PATH | libc::O_DIRECTORY,
                    0,
                    0,
                )
                .with_context(|| format!("open the container's root {}", path.display()))?,
                path,
            )),
            None => None,
        };
        for (t, fd, path) in &fds {
            // SAFETY: setns on an fd we own.
            if unsafe { libc::setns(fd.as_raw_fd(), clone_flag(*t).bits()) } != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("join {} namespace {}", t, path.display()));
            }
        }
        if let Some((fd, path)) = root {
            nix::unistd::fchdir(fd.as_raw_fd())
                .and_then(|()| nix::unistd::chroot("."))
                .and_then(|()| nix::unistd::chdir("/"))
                .with_context(|| format!("enter the container's root {}", path.display()))?;
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
/// Unprivileged, hull may map only its own ids directly (after denying setgroups, for gid_map);
/// anything wider goes through the setuid newuidmap/newgidmap helpers, which check
/// /etc/subuid and /etc/subgid.
pub fn write_id_maps(pid: i32, linux: &Linux) -> Result<()> {
    let root = nix::unistd::geteuid().is_root();
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    if let Some(maps) = linux.uid_mappings().as_ref().filter(|m| !m.is_empty()) {
        write_map(
            pid,
            "uid_map",
            "newuidmap",
            maps,
            root || is_self_map(maps, uid),
        )?;
    }
    if let Some(maps) = linux.gid_mappings().as_ref().filter(|m| !m.is_empty()) {
        let direct = root || is_self_map(maps, gid);
        if !root && direct {
            let path = format!("/proc/{pid}/setgroups");
            std::fs::write(&path, "deny").with_context(|| format!("write {path}"))?;
        }
        write_map(pid, "gid_map", "newgidmap", maps, direct)?;
    }
    Ok(())
}

fn is_self_map(maps: &[LinuxIdMapping], id: u32) -> bool {
    matches!(maps, [m] if m.size() == 1 && m.host_id() == id)
}

fn write_map(
    pid: i32,
    file: &str,
    helper: &str,
    maps: &[LinuxIdMapping],
    direct: bool,
) -> Result<()> {
    if direct {
        let path = format!("/proc/{pid}/{file}");
        return std::fs::write(&path, map_text(maps)).with_context(|| format!("write {path}"));
    }
    let mut cmd = std::process::Command::new(helper);
    cmd.arg(pid.to_string());
    for m in maps {
        cmd.args([
            m.container_id().to_string(),
            m.host_id().to_string(),
            m.size().to_string(),
        ]);
    }
    let out = cmd.output().with_context(|| {
        format!("linux.{file}: mapping more than your own id needs {helper} (package uidmap)")
    })?;
    if !out.status.success() {
        anyhow::bail!(
            "linux.{file}: {helper} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
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

/// Forks with CLONE_PARENT: the child is the caller's sibling, so it lands in the pid namespace
/// the caller joined or made while being hull's own child (hull or the engine's shim reaps it).
/// Returns 0 in the child, as fork does.
pub fn clone_sibling() -> std::io::Result<i32> {
    // SAFETY: raw clone without a new stack behaves like fork; hull is single-threaded here.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(pid as i32)
}

/// Forks straight into the cgroup whose directory fd is `cgroup` (clone3 with
/// CLONE_INTO_CGROUP): the child never runs a moment outside its limits, and no write to
/// cgroup.procs is needed. Returns 0 in the child, as fork does.
pub fn clone_into_cgroup(cgroup: std::os::fd::RawFd) -> std::io::Result<i32> {
    #[repr(C)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup as u64,
    };
    // SAFETY: clone3 without a stack behaves like fork; hull is single-threaded here.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(pid as i32)
}
