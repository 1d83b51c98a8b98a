//! The last steps of the container process before exec: rlimits, user and groups, capabilities,
//! no_new_privs, the executable lookup and the fds it may keep.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Capabilities, LinuxCapabilities, PosixRlimit, Process};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

pub fn set_rlimits(rlimits: &[PosixRlimit]) -> Result<()> {
    for rl in rlimits {
        let name = serde_json::to_value(rl.typ())?
            .as_str()
            .unwrap_or_default()
            .to_string();
        let res = rlimit_resource(&name)
            .with_context(|| format!("process.rlimits: unknown type {name}"))?;
        let lim = libc::rlimit {
            rlim_cur: rl.soft(),
            rlim_max: rl.hard(),
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(std::io::Error::last_os_error()).with_context(|| {
                format!(
                    "process.rlimits: set {name} to soft {} hard {}",
                    rl.soft(),
                    rl.hard()
                )
            });
        }
    }
    Ok(())
}

/// The capabilities this kernel knows, from /proc/sys/kernel/cap_last_cap: one read instead of a
/// prctl probe per capability (caps::runtime::thread_all_supported), once per process.
fn supported_caps() -> &'static HashSet<caps::Capability> {
    static SUPPORTED: std::sync::OnceLock<HashSet<caps::Capability>> = std::sync::OnceLock::new();
    SUPPORTED.get_or_init(|| {
        match std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse::<u8>().ok())
        {
            Some(last) => caps::all()
                .into_iter()
                .filter(|c| c.index() <= last)
                .collect(),
            None => caps::runtime::thread_all_supported(),
        }
    })
}

fn to_caps(set: Option<&Capabilities>, field: &str) -> Result<HashSet<caps::Capability>> {
    let supported = supported_caps();
    let mut out = HashSet::new();
    for cap in set.into_iter().flatten() {
        let name = serde_json::to_value(cap)?;
        let name = name.as_str().unwrap_or_default();
        let c = caps::Capability::from_str(name).map_err(|_| {
            anyhow::anyhow!("process.capabilities.{field}: unknown capability {name}")
        })?;
        // A capability newer than the running kernel cannot be granted; runc skips it too.
        if supported.contains(&c) {
            out.insert(c);
        } else {
            crate::warn!(
                "process.capabilities.{field}: {name} is not supported by this kernel, skipped"
            );
        }
    }
    Ok(out)
}

/// Drops the bounding set now (it needs CAP_SETPCAP, which the user switch may take away).
pub fn drop_bounding(capabilities: Option<&LinuxCapabilities>) -> Result<()> {
    let keep = to_caps(capabilities.and_then(|c| c.bounding().as_ref()), "bounding")?;
    for cap in supported_caps() {
        if !keep.contains(cap) {
            // SAFETY: prctl with integer arguments only.
            if unsafe {
                libc::prctl(
                    libc::PR_CAPBSET_DROP,
                    libc::c_ulong::from(cap.index()),
                    0,
                    0,
                    0,
                )
            } != 0
            {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("drop {cap} from the bounding set"));
            }
        }
    }
    Ok(())
}

/// Switches to the configured user, keeping capabilities across the uid change, then sets the
/// effective, permitted, inheritable and ambient sets. `hold_sys_admin` keeps CAP_SYS_ADMIN
/// effective and permitted on top, for a seccomp filter loaded later without no_new_privs
/// (see finish.rs: execve drops it).
pub fn set_user_and_caps(process: &Process, hold_sys_admin: bool) -> Result<()> {
    let user = process.user();
    let caps_cfg = process.capabilities().as_ref();
    prctl::set_keep_capabilities(true)
        .map_err(|e| anyhow::anyhow!("prctl(PR_SET_KEEPCAPS): errno {e}"))?;
    let mut groups: Vec<libc::gid_t> = user.additional_gids().clone().unwrap_or_default();
    groups.dedup();
    // SAFETY: setgroups reads the slice we own. It fails with EPERM in a user namespace whose
    // setgroups is denied; that is fine only when no groups were asked for.
    if unsafe { libc::setgroups(groups.len(), groups.as_ptr()) } != 0 {
        let err = std::io::Error::last_os_error();
        if !groups.is_empty() || err.raw_os_error() != Some(libc::EPERM) {
            return Err(err).context("process.user.additionalGids: setgroups");
        }
    }
    let (uid, gid) = (user.uid(), user.gid());
    let g = nix::unistd::Gid::from_raw(gid);
    nix::unistd::setresgid(g, g, g)
        .map_err(std::io::Error::from)
        .with_context(|| format!("process.user.gid: setresgid({gid})"))?;
    let u = nix::unistd::Uid::from_raw(uid);
    nix::unistd::setresuid(u, u, u)
        .map_err(std::io::Error::from)
        .with_context(|| format!("process.user.uid: setresuid({uid})"))?;
    prctl::set_keep_capabilities(false)
        .map_err(|e| anyhow::anyhow!("prctl(PR_SET_KEEPCAPS): errno {e}"))?;
    // Unset means 0022, as with runc, never the umask of whoever ran hull.
    let umask = user.umask().unwrap_or(0o022);
    // SAFETY: umask cannot fail.
    unsafe { libc::umask(umask as libc::mode_t) };
    let get = |f: fn(&LinuxCapabilities) -> &Option<Capabilities>, name| {
        to_caps(caps_cfg.and_then(|c| f(c).as_ref()), name)
    };
    let mut permitted = get(LinuxCapabilities::permitted, "permitted")?;
    let mut effective = get(LinuxCapabilities::effective, "effective")?;
    if hold_sys_admin {
        permitted.insert(caps::Capability::CAP_SYS_ADMIN);
        effective.insert(caps::Capability::CAP_SYS_ADMIN);
    }
    let inheritable = get(LinuxCapabilities::inheritable, "inheritable")?;
    let ambient = get(LinuxCapabilities::ambient, "ambient")?;
    capset(&effective, &permitted, &inheritable)?;
    // An ambient capability must be permitted and inheritable; the kernel refuses others, and
    // runc skips them with a warning rather than failing the container.
    for cap in ambient {
        if let Err(e) = caps::raise(None, caps::CapSet::Ambient, cap) {
            crate::warn!("process.capabilities.ambient: cannot raise {cap}: {e}");
        }
    }
    if process.no_new_privileges() == Some(true) {
        prctl::set_no_new_privileges(true)
            .map_err(|e| anyhow::anyhow!("prctl(PR_SET_NO_NEW_PRIVS): errno {e}"))?;
    }
    Ok(())
}

fn mask(set: &HashSet<caps::Capability>) -> u64 {
    set.iter().fold(0u64, |m, c| m | c.bitmask())
}

/// Sets the effective, permitted and inheritable sets in one capset(2): set one at a time, the
/// kernel would refuse a permitted set smaller than the current effective one.
fn capset(
    effective: &HashSet<caps::Capability>,
    permitted: &HashSet<caps::Capability>,
    inheritable: &HashSet<caps::Capability>,
) -> Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let (e, p, i) = (mask(effective), mask(permitted), mask(inheritable));
    let header = Header {
        version: 0x2008_0522,
        pid: 0,
    };
    let data = [
        Data {
            effective: e as u32,
            permitted: p as u32,
            inheritable: i as u32,
        },
        Data {
            effective: (e >> 32) as u32,
            permitted: (p >> 32) as u32,
            inheritable: (i >> 32) as u32,
        },
    ];
    // SAFETY: capset reads the header and the two data structs we own.
    if unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error()).context("process.capabilities: capset");
    }
    Ok(())
}

/// Finds `arg0` the way execvp would, in the container's PATH, so a missing program is reported
/// at create time with Go's wording, as engines expect from runc.
pub fn find_executable(arg0: &str, env: &[String]) -> Result<PathBuf> {
    let check = |p: &Path| -> std::io::Result<()> {
        let meta = std::fs::metadata(p)?;
        use std::os::unix::fs::PermissionsExt;
        if meta.is_dir() || meta.permissions().mode() & 0o111 == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(())
    };
    if arg0.contains('/') {
        return match check(Path::new(arg0)) {
            Ok(()) => Ok(PathBuf::from(arg0)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("exec: {arg0:?}: no such file or directory")
            }
            Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
                bail!("exec: {arg0:?}: permission denied")
            }
            Err(e) => bail!("exec: {arg0:?}: {e}"),
        };
    }
    let path = env
        .iter()
        .find_map(|kv| kv.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = Path::new(dir).join(arg0);
        if check(&candidate).is_ok() {
            return Ok(candidate);
        }
    }
    bail!("exec: {arg0:?}: executable file not found in $PATH")
}

/// Marks every fd from 3 up close-on-exec, then clears the flag on the preserved fds that were
/// really open when hull started (a gap in the range must not pass one of hull's own fds).
pub fn prepare_fds(preserved: &[i32]) -> Result<()> {
    let first = 3u32;
    // SAFETY: close_range with CLOEXEC only flips flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if ret != 0 {
        return Err(std::io::Error::last_os_error()).context("close_range");
    }
    for &fd in preserved {
        // SAFETY: F_SETFD on an fd that was open at startup.
        unsafe { libc::fcntl(fd, libc::F_SETFD, 0) };
    }
    Ok(())
}

/// Closes every fd the container must not see, keeping stdio, the preserved ones and `keep`.
/// Run early in the init so an fd inherited from hull's caller (a host directory, say) cannot
/// be reached through /proc/self/fd while the process still runs as hull (CVE-2024-21626).
/// close_range over the gaps between the kept fds needs no /proc (a rootfs may have none);
/// listing /proc/self/fd is the fallback for kernels before 5.9.
pub fn close_inherited_fds(preserved: &[i32], keep: &[i32]) -> Result<()> {
    let mut kept: Vec<u32> = preserved
        .iter()
        .chain(keep)
        .filter_map(|&fd| u32::try_from(fd).ok())
        .filter(|&fd| fd > 2)
        .collect();
    kept.sort_unstable();
    kept.dedup();
    let mut first = 3u32;
    let mut ranges = Vec::new();
    for &k in &kept {
        if k > first {
            ranges.push((first, k - 1));
        }
        first = k + 1;
    }
    ranges.push((first, u32::MAX));
    for (lo, hi) in ranges {
        // SAFETY: closes fds this process does not use any more; the kept ones are outside.
        if unsafe { libc::syscall(libc::SYS_close_range, lo, hi, 0) } != 0 {
            return close_listed_fds(preserved, keep);
        }
    }
    Ok(())
}

fn close_listed_fds(preserved: &[i32], keep: &[i32]) -> Result<()> {
    let mut to_close = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd").context("read /proc/self/fd")? {
        let entry = entry?;
        if let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() {
            if fd > 2 && !preserved.contains(&fd) && !keep.contains(&fd) {
                to_close.push(fd);
            }
        }
    }
    for fd in to_close {
        // SAFETY: closing fds this process does not use any more (the read_dir fd is gone).
        unsafe { libc::close(fd) };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executable_lookup_uses_the_container_path_and_go_wording() {
        let env = vec!["PATH=/nonexistent:/bin:/usr/bin".to_string()];
        assert!(find_executable("sh", &env).is_ok());
        let err = find_executable("/bin/nope", &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "exec: \"/bin/nope\": no such file or directory"
        );
        let err = find_executable("nope-nope", &env).unwrap_err();
        assert!(err
            .to_string()
            .contains("executable file not found in $PATH"));
    }

    #[test]
    fn rlimit_names_map_to_resources() {
        assert_eq!(rlimit_resource("RLIMIT_NOFILE"), Some(libc::RLIMIT_NOFILE));
        assert_eq!(rlimit_resource("RLIMIT_BOGUS"), None);
    }
}
