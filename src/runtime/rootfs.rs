//! Building the container's root filesystem: config mounts, /dev, pivot_root, masked and
//! read-only paths. Runs in the container init, inside its own mount namespace, or, when the
//! config has none, in the caller's (see `prepare`).
//!
//! Every target inside the rootfs is opened with openat2(RESOLVE_IN_ROOT) and mounted through its
//! fd, so no symlink in the rootfs can send a mount to the host.

use super::mount_opts::{locked_flags, pre_pivot_propagation};
pub use super::mount_opts::{parse_options, propagation_flags, MountOptions};
use super::resolve::{fd_path, is_procfs, mkdir_all_in_root, mkfile_in_root, open_in_root};
use anyhow::{bail, Context, Result};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, Mount, Spec};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

fn mnt(
    src: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> nix::Result<()> {
    mount(src, target, fstype, flags, data)
}

/// Everything the init needs to know to build the rootfs.
pub struct RootfsContext<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub in_userns: bool,
    pub new_cgroupns: bool,
    pub cgroup_path: &'a str,
    pub idmapped: &'a [(usize, OwnedFd)],
    /// The container has a mount namespace of its own (new or joined). Without one, the spec
    /// says it shares the caller's: see `prepare`.
    pub own_mountns: bool,
}

/// Prepares the rootfs before pivot_root: propagation, the rootfs bind, every config mount and
/// /dev. Returns the rootfs dir fd.
///
/// Without a mount namespace of its own the container shares the caller's (config-linux.md:
/// an absent namespace type is inherited). Then, as crun does, / keeps its propagation and
/// the rootfs is not bound onto itself (both would change the caller's mount table), the
/// config mounts are made in the caller's namespace (where they stay, as with runc and crun),
/// and `pivot` falls back to chroot, since pivot_root would swap the caller's own root.
/// spec.rs refuses what would need a mount of the root itself (read-only root, masked and
/// read-only paths, rootfsPropagation), as runc does for masked and read-only paths.
pub fn prepare(ctx: &RootfsContext) -> Result<OwnedFd> {
    let linux = ctx.spec.linux().as_ref();
    let prop = propagation_flags(
        linux
            .and_then(|l| l.rootfs_propagation().as_deref())
            .unwrap_or(""),
    )?;
    if ctx.own_mountns {
        // Keep our mounts from reaching the host, whatever the host's / propagation is.
        mnt(
            None,
            Path::new("/"),
            None,
            pre_pivot_propagation(prop),
            None,
        )
        .context("set the propagation of / before the rootfs bind")?;
        // pivot_root needs the new root to be a mount point.
        mnt(
            Some(ctx.rootfs),
            ctx.rootfs,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None,
        )
        .with_context(|| format!("bind rootfs {}", ctx.rootfs.display()))?;
    }
    let root = super::resolve::openat2(
        libc::AT_FDCWD,
        ctx.rootfs,
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    )
    .with_context(|| format!("open rootfs {}", ctx.rootfs.display()))?;

    // As runc: the default devices go into /dev unless /dev is the host's, bound in.
    let mut dev_from_host = false;
    for (i, m) in ctx
        .spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let opts = parse_options(m.options().as_deref().unwrap_or_default());
        if m.destination() == Path::new("/dev") {
            dev_from_host = m.typ().as_deref() == Some("bind") || opts.bind;
        }
        let res = match ctx.idmapped.iter().find(|(j, _)| *j == i) {
            Some((_, tree)) => mount_idmapped(root.as_raw_fd(), m, tree),
            None => mount_one(ctx, root.as_raw_fd(), m, &opts),
        };
        res.with_context(|| format!("mounts[{i}] {}", m.destination().display()))?;
        if opts.has_attrs() {
            let dest = Path::new("/").join(m.destination());
            let top = open_in_root(root.as_raw_fd(), &dest, libc::O_PATH)
                .with_context(|| format!("mounts[{i}] {}", dest.display()))?;
            opts.apply_attrs(top.as_raw_fd()).with_context(|| {
                format!(
                    "mounts[{i}].options: {} on {}: mount_setattr",
                    opts.attr_names.join(","),
                    dest.display()
                )
            })?;
        }
    }
    if !dev_from_host {
        create_devices(ctx, root.as_raw_fd(), &default_devices()).context("default devices")?;
        dev_symlinks(root.as_raw_fd())?;
    }
    if let Some(devices) = linux.and_then(|l| l.devices().as_ref()) {
        for (i, dev) in devices.iter().enumerate() {
            create_devices(ctx, root.as_raw_fd(), std::slice::from_ref(dev))
                .with_context(|| format!("linux.devices[{i}] {}", dev.path().display()))?;
        }
    }
    Ok(root)
}

fn mount_one(ctx: &RootfsContext, root: RawFd, m: &Mount, opts: &MountOptions) -> Result<()> {
    let typ = m.typ().as_deref().unwrap_or("");
    let dest = Path::new("/").join(m.destination());
    if opts.bind || typ == "bind" {
        return mount_bind(root, m, &dest, opts);
    }
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(ctx, root, &dest, opts);
    }
    let target =
        mkdir_all_in_root(root, &dest).with_context(|| format!("create {}", dest.display()))?;
    if typ == "proc" || typ == "sysfs" {
        // procfs and sysfs must land on a real directory of the rootfs (CVE-2019-16884): the
        // fd we hold is one, whatever symlinks were on the way.
        let meta = std::fs::metadata(fd_path(&target))?;
        if !meta.is_dir() {
            bail!("{} is not a directory", dest.display());
        }
    }
    let data = opts.data.join(",");
    let src = m.source().clone().unwrap_or_else(|| PathBuf::from(typ));
    let flags = opts.flags & !MsFlags::MS_REMOUNT;
    let res = mnt(
        Some(&src),
        &fd_path(&target),
        Some(typ),
        flags,
        (!data.is_empty()).then_some(data.as_str()),
    );
    if let Err(e) = res {
        // A new sysfs needs a network namespace of our own; in a user namespace without one,
        // bind the host's read-only instead, as runc does for rootless containers.
        if typ == "sysfs" && (e == nix::Error::EPERM || e == nix::Error::EACCES) && ctx.in_userns {
            mnt(
                Some(Path::new("/sys")),
                &fd_path(&target),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .context("bind /sys")?;
        } else {
            return Err(e).with_context(|| format!("mount {typ} on {}", dest.display()));
        }
    }
    if !opts.propagation.is_empty() {
        let top = open_in_root(root, &dest, libc::O_PATH)?;
        mnt(None, &fd_path(&top), None, opts.propagation, None)
            .with_context(|| format!("set propagation of {}", dest.display()))?;
    }
    Ok(())
}

fn mount_idmapped(root: RawFd, m: &Mount, tree: &OwnedFd) -> Result<()> {
    let dest = Path::new("/").join(m.destination());
    let meta = std::fs::metadata(fd_path(tree))?;
    let target = if meta.is_dir() {
        mkdir_all_in_root(root, &dest)
    } else {
        mkfile_in_root(root, &dest)
    }
    .with_context(|| format!("create {}", dest.display()))?;
    super::idmap::attach(tree.as_raw_fd(), target.as_raw_fd())
}

fn mount_bind(root: RawFd, m: &Mount, dest: &Path, opts: &MountOptions) -> Result<()> {
    let src = m
        .source()
        .as_ref()
        .context("source: a bind mount needs one")?;
    let meta = std::fs::metadata(src).with_context(|| format!("source {}", src.display()))?;
    let target = if meta.is_dir() {
        mkdir_all_in_root(root, dest)
    } else {
        mkfile_in_root(root, dest)
    }
    .with_context(|| format!("create {}", dest.display()))?;
    let bind_flags = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    mnt(Some(src), &fd_path(&target), None, bind_flags, None)
        .with_context(|| format!("bind {} on {}", src.display(), dest.display()))?;
    // The fd we hold is the directory under the new mount: reopen to reach the mount itself.
    let top = open_in_root(root, dest, libc::O_PATH)?;
    let extra = opts.flags
        & (MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC
            | MsFlags::MS_NOATIME
            | MsFlags::MS_NODIRATIME
            | MsFlags::MS_RELATIME
            | MsFlags::MS_STRICTATIME
            | MsFlags::MS_SYNCHRONOUS
            | MsFlags::MS_DIRSYNC);
    if !extra.is_empty() {
        let flags = (locked_flags(top.as_raw_fd()) & !opts.clear) | extra;
        mnt(
            None,
            &fd_path(&top),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
            None,
        )
        .with_context(|| format!("remount {} with {:?}", dest.display(), extra))?;
    }
    if !opts.propagation.is_empty() {
        mnt(None, &fd_path(&top), None, opts.propagation, None)
            .with_context(|| format!("set propagation of {}", dest.display()))?;
    }
    Ok(())
}

fn mount_cgroup(ctx: &RootfsContext, root: RawFd, dest: &Path, opts: &MountOptions) -> Result<()> {
    let target = mkdir_all_in_root(root, dest)?;
    let flags = opts.flags & !MsFlags::MS_REMOUNT;
    if crate::cgroups::detect(Path::new("/sys/fs/cgroup")) == crate::cgroups::Layout::Unified {
        if ctx.new_cgroupns {
            mnt(
                Some(Path::new("cgroup2")),
                &fd_path(&target),
                Some("cgroup2"),
                flags,
                None,
            )
            .context("mount cgroup2")?;
        } else {
            let host = Path::new("/sys/fs/cgroup").join(ctx.cgroup_path.trim_start_matches('/'));
            mnt(
                Some(&host),
                &fd_path(&target),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .with_context(|| format!("bind {}", host.display()))?;
        }
        return Ok(());
    }
    // v1: a tmpfs holding one mount per hierarchy, as runc lays it out.
    mnt(
        Some(Path::new("tmpfs")),
        &fd_path(&target),
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755"),
    )
    .context("mount tmpfs for cgroup v1 hierarchies")?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")?;
    let (hierarchies, _) = crate::cgroups::v1::parse_mountinfo(&mountinfo);
    let mut seen = std::collections::HashSet::new();
    let mut comounted = Vec::new();
    for (ctrls, mount_point) in hierarchies {
        // Only the host's own hierarchies, once each: a /sys bound into the rootfs earlier shows
        // them again under the rootfs, where the tmpfs above now hides them.
        if mount_point.starts_with(ctx.rootfs) || !seen.insert(ctrls.clone()) {
            continue;
        }
        let name = mount_point
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| ctrls.join(","));
        if name.contains(',') {
            comounted.push(name.clone());
        }
        let sub = dest.join(&name);
        let sub_fd = mkdir_all_in_root(root, &sub)?;
        let res = if ctx.new_cgroupns {
            mnt(
                Some(Path::new("cgroup")),
                &fd_path(&sub_fd),
                Some("cgroup"),
                flags,
                Some(&ctrls.join(",")),
            )
        } else {
            let host = mount_point.join(ctx.cgroup_path.trim_start_matches('/'));
            mnt(
                Some(&host),
                &fd_path(&sub_fd),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
        };
        res.with_context(|| format!("mount cgroup {} on {}", ctrls.join(","), sub.display()))?;
        if flags.contains(MsFlags::MS_RDONLY) {
            let top = open_in_root(root, &sub, libc::O_PATH)?;
            let f = locked_flags(top.as_raw_fd()) | MsFlags::MS_RDONLY;
            let _ = mnt(
                None,
                &fd_path(&top),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | f,
                None,
            );
        }
    }
    // Symlinks for comounted controllers (cpu -> cpu,cpuacct), as on the host and as runc
    // makes them: programs read /sys/fs/cgroup/cpu/cpu.shares.
    let dir = open_in_root(root, dest, libc::O_PATH | libc::O_DIRECTORY)?;
    for name in &comounted {
        for ctrl in name.split(',').filter(|c| *c != name) {
            symlink_at(&dir, name, ctrl)
                .with_context(|| format!("symlink {}/{ctrl}", dest.display()))?;
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        let top = open_in_root(root, dest, libc::O_PATH)?;
        let f = locked_flags(top.as_raw_fd()) | MsFlags::MS_RDONLY;
        mnt(
            None,
            &fd_path(&top),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | f,
            None,
        )
        .context("remount cgroup tmpfs read-only")?;
    }
    Ok(())
}

fn default_devices() -> Vec<LinuxDevice> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|(name, major, minor)| {
        serde_json::from_value(serde_json::json!({
            "path": format!("/dev/{name}"), "type": "c", "major": major, "minor": minor,
            "fileMode": 0o666, "uid": 0, "gid": 0
        }))
        .expect("static device table is valid")
    })
    .collect()
}

fn create_devices(ctx: &RootfsContext, root: RawFd, devices: &[LinuxDevice]) -> Result<()> {
    for dev in devices {
        let path = dev.path();
        if !path.starts_with("/dev") {
            bail!("linux.devices: {} is not under /dev", path.display());
        }
        if ctx.in_userns {
            // mknod is not allowed in a user namespace: bind the host's node instead.
            let target =
                mkfile_in_root(root, path).with_context(|| format!("create {}", path.display()))?;
            mnt(Some(path), &fd_path(&target), None, MsFlags::MS_BIND, None)
                .with_context(|| format!("bind device {}", path.display()))?;
            continue;
        }
        let parent = mkdir_all_in_root(root, path.parent().unwrap_or(Path::new("/dev")))?;
        let name = path
            .file_name()
            .context("linux.devices: path has no file name")?;
        let cname = std::ffi::CString::new(name.as_encoded_bytes())?;
        let kind = match dev.typ() {
            LinuxDeviceType::C | LinuxDeviceType::U => libc::S_IFCHR,
            LinuxDeviceType::B => libc::S_IFBLK,
            LinuxDeviceType::P => libc::S_IFIFO,
            LinuxDeviceType::A => bail!(
                "linux.devices: {}: type \"a\" is not a device node",
                path.display()
            ),
        };
        let mode = dev.file_mode().unwrap_or(0o666) & 0o7777;
        let rdev = libc::makedev(dev.major() as u32, dev.minor() as u32);
        // SAFETY: plain syscalls on a dir fd we own and a valid C string; the name has no slash.
        unsafe {
            libc::unlinkat(parent.as_raw_fd(), cname.as_ptr(), 0);
            if libc::mknodat(parent.as_raw_fd(), cname.as_ptr(), kind | mode, rdev) != 0 {
                return Err(std::io::Error::last_os_error())
                    .with_context(|| format!("mknod {}", path.display()));
            }
            // mknod honours the umask; the config's mode must win.
            let fd = open_in_root(root, path, libc::O_PATH | libc::O_NOFOLLOW)?;
            let p = std::ffi::CString::new(fd_path(&fd).as_os_str().as_encoded_bytes())?;
            libc::chmod(p.as_ptr(), mode);
            libc::chown(p.as_ptr(), dev.uid().unwrap_or(0), dev.gid().unwrap_or(0));
        }
    }
    Ok(())
}

fn dev_symlinks(root: RawFd) -> Result<()> {
    let dev = open_in_root(root, Path::new("/dev"), libc::O_PATH | libc::O_DIRECTORY)?;
    let mut links = vec![
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    if open_in_root(root, Path::new("/dev/pts/ptmx"), libc::O_PATH).is_ok() {
        links.push(("pts/ptmx", "ptmx"));
    }
    for (target, name) in links {
        symlink_at(&dev, target, name).with_context(|| format!("symlink /dev/{name}"))?;
    }
    Ok(())
}

/// Makes `name` in `dir` a symlink to `target`; a name already there is left as it is.
fn symlink_at(dir: &OwnedFd, target: &str, name: &str) -> Result<()> {
    let t = std::ffi::CString::new(target)?;
    let n = std::ffi::CString::new(name)?;
    // SAFETY: symlinkat with valid C strings into a dir fd we own.
    if unsafe { libc::symlinkat(t.as_ptr(), dir.as_raw_fd(), n.as_ptr()) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EEXIST) {
            return Err(err.into());
        }
    }
    Ok(())
}

/// Binds the pty slave onto /dev/console. Whatever the image put there (a symlink to a procfs
/// file or to /etc/passwd, say) is removed first and the bind goes onto a fresh file opened
/// without following links, so the pty lands on /dev/console and nowhere else (CVE-2025-52565).
pub fn mount_console(root: RawFd, slave: &OwnedFd) -> Result<()> {
    let dev = mkdir_all_in_root(root, Path::new("/dev")).context("create /dev")?;
    // SAFETY: unlinkat on a dir fd we own with a static name; a missing file, a directory or a
    // mount point in the way is left for the checks below.
    unsafe { libc::unlinkat(dev.as_raw_fd(), c"console".as_ptr(), 0) };
    drop(mkfile_in_root(root, Path::new("/dev/console")).context("create /dev/console")?);
    let target = open_in_root(
        root,
        Path::new("/dev/console"),
        libc::O_PATH | libc::O_NOFOLLOW,
    )
    .context("open /dev/console")?;
    let st = nix::sys::stat::fstat(target.as_raw_fd())
        .map_err(std::io::Error::from)
        .context("stat /dev/console")?;
    let kind = st.st_mode & libc::S_IFMT;
    if kind != libc::S_IFREG && kind != libc::S_IFCHR {
        bail!("/dev/console is not a regular file or a device");
    }
    mnt(
        Some(&fd_path(slave)),
        &fd_path(&target),
        None,
        MsFlags::MS_BIND,
        None,
    )
    .context("bind the pty on /dev/console")
}

/// Makes the rootfs the new /: pivot_root, or MS_MOVE and chroot with `--no-pivot`, or a plain
/// chroot in the caller's mount namespace (no mount namespace of the container's own), where
/// pivot_root would move the caller's root and MS_MOVE the caller's mount, as crun does.
pub fn pivot(rootfs: &Path, no_pivot: bool, own_mountns: bool) -> Result<()> {
    nix::unistd::chdir(rootfs).with_context(|| format!("chdir {}", rootfs.display()))?;
    if !own_mountns {
        nix::unistd::chroot(".").context("chroot into the rootfs")?;
    } else if no_pivot {
        mnt(Some(rootfs), Path::new("/"), None, MsFlags::MS_MOVE, None)
            .context("move rootfs to /")?;
        nix::unistd::chroot(".").context("chroot into the rootfs")?;
    } else {
        let old_root = std::fs::File::open("/").context("open old /")?;
        nix::unistd::pivot_root(".", ".").context("pivot_root")?;
        // The old root is now stacked under the new one; detach it without letting the unmount
        // propagate back to the host.
        nix::unistd::fchdir(old_root.as_raw_fd()).context("fchdir old root")?;
        mnt(
            None,
            Path::new("."),
            None,
            MsFlags::MS_SLAVE | MsFlags::MS_REC,
            None,
        )
        .context("make old root a slave")?;
        umount2(".", MntFlags::MNT_DETACH).context("detach old root")?;
    }
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}

/// After pivot: masked and read-only paths, a read-only root, the final root propagation.
pub fn finalize(spec: &Spec) -> Result<()> {
    let root = super::resolve::openat2(
        libc::AT_FDCWD,
        Path::new("/"),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        0,
    )?;
    let root = root.as_raw_fd();
    let linux = spec.linux().as_ref();
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        readonly_path(root, Path::new(p)).with_context(|| format!("linux.readonlyPaths: {p}"))?;
    }
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        mask_path(root, Path::new(p)).with_context(|| format!("linux.maskedPaths: {p}"))?;
    }
    if spec
        .root()
        .as_ref()
        .is_some_and(|r| r.readonly() == Some(true))
    {
        let top = open_in_root(root, Path::new("/"), libc::O_PATH)?;
        let flags = locked_flags(top.as_raw_fd()) | MsFlags::MS_RDONLY;
        mnt(
            None,
            Path::new("/"),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
            None,
        )
        .context("root.readonly: remount / read-only")?;
    }
    if let Some(p) = linux.and_then(|l| l.rootfs_propagation().as_deref()) {
        mnt(None, Path::new("/"), None, propagation_flags(p)?, None)
            .context("linux.rootfsPropagation")?;
    }
    Ok(())
}

fn readonly_path(root: RawFd, path: &Path) -> Result<()> {
    let fd = match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    mnt(
        Some(&fd_path(&fd)),
        &fd_path(&fd),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    )
    .context("bind onto itself")?;
    let top = open_in_root(root, path, libc::O_PATH)?;
    let flags = locked_flags(top.as_raw_fd()) | MsFlags::MS_RDONLY;
    mnt(
        None,
        &fd_path(&top),
        None,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_REC | flags,
        None,
    )
    .context("remount read-only")?;
    Ok(())
}

fn mask_path(root: RawFd, path: &Path) -> Result<()> {
    let fd = match open_in_root(root, path, libc::O_PATH) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let meta = std::fs::metadata(fd_path(&fd))?;
    if meta.is_dir() {
        mnt(
            Some(Path::new("tmpfs")),
            &fd_path(&fd),
            Some("tmpfs"),
            MsFlags::MS_RDONLY,
            Some("size=0k"),
        )
        .context("mount an empty read-only tmpfs")?;
        return Ok(());
    }
    // The /dev/null bound over a masked file must really be the null device: a container that
    // swapped it for a symlink to a host file must not get that file bound instead (CVE-2025-31133).
    let null = open_in_root(
        root,
        Path::new("/dev/null"),
        libc::O_PATH | libc::O_NOFOLLOW,
    )
    .context("open /dev/null")?;
    let nm = std::fs::metadata(fd_path(&null))?;
    use std::os::unix::fs::MetadataExt;
    if !nm.file_type().is_char_device() || nm.rdev() != libc::makedev(1, 3) {
        bail!("/dev/null in the container is not the null device");
    }
    mnt(
        Some(&fd_path(&null)),
        &fd_path(&fd),
        None,
        MsFlags::MS_BIND,
        None,
    )
    .context("bind /dev/null over it")?;
    Ok(())
}

/// Writes `linux.sysctl` through /proc/sys, refusing a target that is not on procfs.
pub fn write_sysctls(spec: &Spec) -> Result<()> {
    let Some(sysctl) = spec.linux().as_ref().and_then(|l| l.sysctl().as_ref()) else {
        return Ok(());
    };
    for (key, value) in sysctl {
        let path = PathBuf::from("/proc/sys").join(key.replace('.', "/"));
        let proc_root = super::resolve::openat2(
            libc::AT_FDCWD,
            Path::new("/"),
            libc::O_PATH | libc::O_DIRECTORY,
            0,
            0,
        )?;
        let fd = open_in_root(proc_root.as_raw_fd(), &path, libc::O_WRONLY)
            .with_context(|| format!("linux.sysctl: {key}: open {}", path.display()))?;
        if !is_procfs(&fd) {
            bail!("linux.sysctl: {key}: {} is not on procfs", path.display());
        }
        let mut f = std::fs::File::from(fd);
        use std::io::Write;
        f.write_all(value.as_bytes())
            .with_context(|| format!("linux.sysctl: {key}: write {value:?}"))?;
    }
    Ok(())
}
