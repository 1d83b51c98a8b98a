//! A mount's `options`, parsed: mount(2) flags, propagation, filesystem data, and the mount
//! attributes (the recursive `r*` options and `[no]symfollow`) that only mount_setattr(2) can
//! apply. Also the rootfs propagation values.

use super::mountapi::{
    self, MOUNT_ATTR_ATIME_MASK, MOUNT_ATTR_NOATIME, MOUNT_ATTR_NODEV, MOUNT_ATTR_NODIRATIME,
    MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_NOSYMFOLLOW, MOUNT_ATTR_RDONLY,
    MOUNT_ATTR_RELATIME, MOUNT_ATTR_STRICTATIME,
};
use anyhow::{bail, Result};
use nix::mount::MsFlags;
use std::os::fd::RawFd;

/// Mount flags, data and attributes parsed from a mount's `options`.
#[derive(Debug)]
pub struct MountOptions {
    pub flags: MsFlags,
    pub clear: MsFlags,
    pub propagation: MsFlags,
    pub data: Vec<String>,
    pub bind: bool,
    /// Applied with mount_setattr(AT_RECURSIVE) to the mount and every mount below it.
    pub recursive: AttrChange,
    /// Applied with mount_setattr to the mount alone.
    pub single: AttrChange,
    /// The options behind `recursive` and `single`, for error messages.
    pub attr_names: Vec<String>,
}

/// MOUNT_ATTR_* flags to set and to clear.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AttrChange {
    pub set: u64,
    pub clear: u64,
}

/// How an attribute option changes the attributes.
#[derive(Clone, Copy, Debug)]
pub enum AttrKind {
    On(u64),
    Off(u64),
    /// One access-time mode (they exclude each other, so the whole mode is replaced).
    Atime(u64),
}

/// The recursive options of the runtime spec (config.md, "r*" rows). The negative access-time
/// options restore the kernel's default mode, relatime, as runc does: "atime" only means "not
/// noatime", and "norelatime"/"nostrictatime" name no mode of their own.
pub const RECURSIVE_OPTIONS: &[(&str, AttrKind)] = &[
    ("rro", AttrKind::On(MOUNT_ATTR_RDONLY)),
    ("rrw", AttrKind::Off(MOUNT_ATTR_RDONLY)),
    ("rnosuid", AttrKind::On(MOUNT_ATTR_NOSUID)),
    ("rsuid", AttrKind::Off(MOUNT_ATTR_NOSUID)),
    ("rnodev", AttrKind::On(MOUNT_ATTR_NODEV)),
    ("rdev", AttrKind::Off(MOUNT_ATTR_NODEV)),
    ("rnoexec", AttrKind::On(MOUNT_ATTR_NOEXEC)),
    ("rexec", AttrKind::Off(MOUNT_ATTR_NOEXEC)),
    ("rnodiratime", AttrKind::On(MOUNT_ATTR_NODIRATIME)),
    ("rdiratime", AttrKind::Off(MOUNT_ATTR_NODIRATIME)),
    ("rnoatime", AttrKind::Atime(MOUNT_ATTR_NOATIME)),
    ("ratime", AttrKind::Atime(MOUNT_ATTR_RELATIME)),
    ("rrelatime", AttrKind::Atime(MOUNT_ATTR_RELATIME)),
    ("rnorelatime", AttrKind::Atime(MOUNT_ATTR_RELATIME)),
    ("rstrictatime", AttrKind::Atime(MOUNT_ATTR_STRICTATIME)),
    ("rnostrictatime", AttrKind::Atime(MOUNT_ATTR_RELATIME)),
    ("rnosymfollow", AttrKind::On(MOUNT_ATTR_NOSYMFOLLOW)),
    ("rsymfollow", AttrKind::Off(MOUNT_ATTR_NOSYMFOLLOW)),
];

/// `[no]symfollow`, for the mount alone (mount(2) would silently drop MS_NOSYMFOLLOW on a
/// kernel without it; mount_setattr refuses what it does not know).
pub const SYMFOLLOW_OPTIONS: &[(&str, AttrKind)] = &[
    ("nosymfollow", AttrKind::On(MOUNT_ATTR_NOSYMFOLLOW)),
    ("symfollow", AttrKind::Off(MOUNT_ATTR_NOSYMFOLLOW)),
];

impl AttrChange {
    fn apply(&mut self, a: AttrKind) {
        match a {
            AttrKind::On(f) => {
                self.set |= f;
                self.clear &= !f;
            }
            AttrKind::Off(f) => {
                self.clear |= f;
                self.set &= !f;
            }
            AttrKind::Atime(mode) => {
                self.clear |= MOUNT_ATTR_ATIME_MASK;
                self.set = (self.set & !MOUNT_ATTR_ATIME_MASK) | mode;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == AttrChange::default()
    }

    /// Every flag the change uses, for asking the kernel whether it knows them.
    fn all_flags(table: &[(&str, AttrKind)]) -> AttrChange {
        let mut c = AttrChange::default();
        for (_, k) in table {
            match *k {
                AttrKind::On(f) | AttrKind::Off(f) => c.set |= f,
                AttrKind::Atime(_) => {
                    c.clear |= MOUNT_ATTR_ATIME_MASK;
                    c.set |= MOUNT_ATTR_NOATIME;
                }
            }
        }
        c
    }
}

fn flag_option(opt: &str) -> Option<(MsFlags, MsFlags)> {
    Some(match opt {
        "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
        "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
        "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
        "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
        "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
        "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
        "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
        "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
        "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
        "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
        "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
        "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
        "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
        "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
        "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
        "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
        "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
        "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
        "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
        "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
        "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
        "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
        "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
        "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
        _ => return None,
    })
}

/// The propagation a mount option names, if it names one.
fn propagation_option(opt: &str) -> Option<MsFlags> {
    let rec = opt.starts_with('r');
    let base = match opt.strip_prefix('r').unwrap_or(opt) {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(if rec { base | MsFlags::MS_REC } else { base })
}

fn attr_option(opt: &str) -> Option<(bool, AttrKind)> {
    if let Some((_, k)) = RECURSIVE_OPTIONS.iter().find(|(n, _)| *n == opt) {
        return Some((true, *k));
    }
    SYMFOLLOW_OPTIONS
        .iter()
        .find(|(n, _)| *n == opt)
        .map(|(_, k)| (false, *k))
}

pub fn parse_options(options: &[String]) -> MountOptions {
    let mut o = MountOptions {
        flags: MsFlags::empty(),
        clear: MsFlags::empty(),
        propagation: MsFlags::empty(),
        data: Vec::new(),
        bind: false,
        recursive: AttrChange::default(),
        single: AttrChange::default(),
        attr_names: Vec::new(),
    };
    for opt in options {
        if let Some((set, clear)) = flag_option(opt) {
            o.bind |= set.contains(MsFlags::MS_BIND);
            o.flags |= set;
            o.flags &= !clear;
            o.clear |= clear;
        } else if let Some(p) = propagation_option(opt) {
            o.propagation |= p;
        } else if let Some((recursive, attr)) = attr_option(opt) {
            if recursive {
                o.recursive.apply(attr);
            } else {
                o.single.apply(attr);
            }
            o.attr_names.push(opt.clone());
        } else {
            match opt.as_str() {
                // runc extension (copy image content into a tmpfs) that hull does not implement;
                // accepted so engine-made configs still run.
                "tmpcopyup" => {}
                // Idmapped mounts are made in the parent (see idmap.rs).
                "idmap" | "ridmap" => {}
                other => o.data.push(other.to_string()),
            }
        }
    }
    o
}

impl MountOptions {
    /// Applies the mount attributes to the mount whose root is open at `mount_root`.
    pub fn apply_attrs(&self, mount_root: RawFd) -> std::io::Result<()> {
        if !self.single.is_empty() {
            mountapi::change_attr(mount_root, self.single.set, self.single.clear, false)?;
        }
        if !self.recursive.is_empty() {
            mountapi::change_attr(mount_root, self.recursive.set, self.recursive.clear, true)?;
        }
        Ok(())
    }

    pub fn has_attrs(&self) -> bool {
        !self.single.is_empty() || !self.recursive.is_empty()
    }
}

/// Whether the kernel can apply every option of `table` (`hull features` lists them only then).
/// Without privilege to ask, the kernel version decides (mount_setattr with nosymfollow: 5.14).
pub fn attr_options_supported(table: &[(&str, AttrKind)]) -> bool {
    let all = AttrChange::all_flags(table);
    match mountapi::attrs_supported(all.set, all.clear) {
        Some(known) => known,
        None => kernel_at_least(5, 14),
    }
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(uts) = nix::sys::utsname::uname() else {
        return false;
    };
    let release = uts.release().to_string_lossy().into_owned();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next()) {
        (Some(ma), Some(mi)) => (ma, mi) >= (major, minor),
        _ => false,
    }
}

pub fn propagation_flags(name: &str) -> Result<MsFlags> {
    if name.is_empty() {
        return Ok(MsFlags::MS_SLAVE | MsFlags::MS_REC);
    }
    match propagation_option(name) {
        Some(p) => Ok(p),
        None => bail!("linux.rootfsPropagation: unknown value {name:?}"),
    }
}

/// The propagation / gets in the container's mount namespace before the rootfs is bound and
/// pivoted into: never shared (our mounts must not reach the host) and never unbindable (the
/// rootfs bind would fail with EINVAL). The configured value is set on the new root after the
/// pivot (rootfs::finalize).
pub fn pre_pivot_propagation(configured: MsFlags) -> MsFlags {
    if configured.contains(MsFlags::MS_SHARED) {
        MsFlags::MS_SLAVE | MsFlags::MS_REC
    } else if configured.contains(MsFlags::MS_UNBINDABLE) {
        // "a private mount that cannot be bind-mounted" (config-linux.md): private until then.
        MsFlags::MS_PRIVATE | MsFlags::MS_REC
    } else {
        configured | MsFlags::MS_REC
    }
}

/// statvfs's ST_NOSYMFOLLOW (glibc's value; the libc crate lacks it).
const ST_NOSYMFOLLOW: libc::c_ulong = 0x2000;

/// The flags the kernel locks on a mount (in a user namespace they cannot be cleared), which a
/// remount must therefore repeat.
pub fn locked_flags(fd: RawFd) -> MsFlags {
    // SAFETY: an all-zero statvfs is a valid value of this plain C struct.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatvfs fills the struct we own; nix's wrapper would drop ST_NOSYMFOLLOW.
    if unsafe { libc::fstatvfs(fd, &mut st) } != 0 {
        return MsFlags::empty();
    }
    let mut f = MsFlags::empty();
    for (st_flag, ms) in [
        (libc::ST_NOSUID, MsFlags::MS_NOSUID),
        (libc::ST_NODEV, MsFlags::MS_NODEV),
        (libc::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (libc::ST_RDONLY, MsFlags::MS_RDONLY),
        (libc::ST_NOATIME, MsFlags::MS_NOATIME),
        (libc::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (libc::ST_RELATIME, MsFlags::MS_RELATIME),
        // A remount without it would clear a nosymfollow set earlier.
        (
            ST_NOSYMFOLLOW,
            MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW),
        ),
    ] {
        if st.f_flag & st_flag != 0 {
            f |= ms;
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(list: &[&str]) -> MountOptions {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_become_flags_and_data() {
        let o = opts(&[
            "nosuid",
            "ro",
            "mode=755",
            "size=65536k",
            "rbind",
            "rprivate",
        ]);
        assert!(o.flags.contains(
            MsFlags::MS_NOSUID | MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC
        ));
        assert!(o.bind);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert_eq!(o.propagation, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert!(!o.has_attrs());
        let o = opts(&["ro", "rw"]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn recursive_options_become_attributes_never_data() {
        for (name, _) in RECURSIVE_OPTIONS.iter().chain(SYMFOLLOW_OPTIONS) {
            let o = opts(&[name]);
            assert!(o.data.is_empty(), "{name} passed as data");
            assert!(o.has_attrs(), "{name} changes nothing");
            assert_eq!(o.attr_names, vec![name.to_string()]);
        }
        let o = opts(&["rro", "rnoexec", "rnosuid", "rrw"]);
        assert_eq!(o.recursive.set, MOUNT_ATTR_NOEXEC | MOUNT_ATTR_NOSUID);
        assert_eq!(o.recursive.clear, MOUNT_ATTR_RDONLY);
        assert!(o.single.is_empty());
        let o = opts(&["nosymfollow"]);
        assert_eq!(o.single.set, MOUNT_ATTR_NOSYMFOLLOW);
        assert!(o.recursive.is_empty());
    }

    #[test]
    fn access_time_modes_replace_each_other() {
        let o = opts(&["rnoatime", "rstrictatime"]);
        assert_eq!(o.recursive.set, MOUNT_ATTR_STRICTATIME);
        assert_eq!(o.recursive.clear, MOUNT_ATTR_ATIME_MASK);
        let o = opts(&["rnoatime", "ratime", "rnodiratime"]);
        assert_eq!(o.recursive.set, MOUNT_ATTR_RELATIME | MOUNT_ATTR_NODIRATIME);
        assert_eq!(o.recursive.clear, MOUNT_ATTR_ATIME_MASK);
    }

    #[test]
    fn the_kernel_probe_refuses_unknown_attributes() {
        // 1 << 40 is no MOUNT_ATTR_* flag: never "supported" (None when unprivileged).
        assert_ne!(mountapi::attrs_supported(1 << 40, 0), Some(true));
    }

    #[test]
    fn rootfs_propagation_before_the_pivot_is_never_shared_or_unbindable() {
        for name in [
            "private",
            "rprivate",
            "slave",
            "rslave",
            "shared",
            "rshared",
            "unbindable",
            "runbindable",
            "",
        ] {
            let p = pre_pivot_propagation(propagation_flags(name).unwrap());
            assert!(
                !p.intersects(MsFlags::MS_SHARED | MsFlags::MS_UNBINDABLE),
                "{name}"
            );
            assert!(p.contains(MsFlags::MS_REC), "{name}");
        }
        assert!(propagation_flags("sideways").is_err());
    }
}
