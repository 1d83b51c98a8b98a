//! `cp` between a container's filesystem and the host, or a tar stream.
//!
//! Paths inside the container are resolved with openat2(RESOLVE_IN_ROOT)
//! against the mounted rootfs, so `..` and symlinks (absolute ones included)
//! stay inside it, as the container sees them. Below that first path the copy
//! walks by directory fds only (cp_tree.rs), so a link the container swaps in
//! mid-copy is never followed.

use anyhow::Context;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use super::container::{self, Container};
use super::cp_tree::{self, DirSink, TarSink};
use super::error::Result;
use super::rootfs;
use crate::image::sizelimit::SizeLimit;
use crate::runtime::resolve::{fd_path, open_in_root};

/// `cp`'s flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpOptions {
    /// `-a`: keep the source's uid/gid (otherwise files belong to the
    /// container's root, or to the caller when copied out).
    pub archive: bool,
    /// `-L`: follow a symlink given as the source.
    pub follow: bool,
}

/// One side of a `cp`.
#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Host(PathBuf),
    Container(String, String),
    /// `-`: a tar stream on stdin/stdout.
    Stream,
}

impl Endpoint {
    /// `CONTAINER:PATH`, `-` or a host path (absolute or starting with `.`
    /// stays a host path even with a colon in it, as docker's).
    pub fn parse(s: &str) -> Endpoint {
        if s == "-" {
            return Endpoint::Stream;
        }
        match split_cp_arg(s) {
            Some((c, p)) => Endpoint::Container(c, p),
            None => Endpoint::Host(PathBuf::from(s)),
        }
    }
}

/// `CONTAINER:PATH` as `cp` writes it (None for a host path).
pub fn split_cp_arg(s: &str) -> Option<(String, String)> {
    if s.starts_with('/') || s.starts_with('.') {
        return None;
    }
    s.split_once(':')
        .map(|(a, b)| (a.to_string(), b.to_string()))
}

/// The container's rootfs, mounted for the copy (stopped containers too) and
/// unmounted afterwards if it was not mounted before.
struct Mounted {
    c: Container,
    was_mounted: bool,
    root: OwnedFd,
}

impl Mounted {
    fn new(root: &Path, name: &str) -> Result<Mounted> {
        let c = container::find(root, name)?;
        let was_mounted = rootfs::is_mounted(&c.rootfs());
        rootfs::mount_rootfs(&c.dir)?;
        let m = Mounted {
            root: OwnedFd::from(
                std::fs::File::open(c.rootfs())
                    .with_context(|| format!("opening {}", c.rootfs().display()))?,
            ),
            c,
            was_mounted,
        };
        Ok(m)
    }

    /// An O_PATH fd of `path` inside the rootfs, following symlinks inside it.
    fn open(&self, path: &Path, flags: i32) -> std::io::Result<OwnedFd> {
        open_in_root(self.root.as_raw_fd(), path, libc::O_PATH | flags)
    }

    /// `(fd of the parent directory, last component)`; the component is
    /// looked up in that directory without following it. A path ending in
    /// `/`, `.` or `..` names the directory itself.
    fn parent_and_name(&self, path: &Path) -> std::io::Result<(OwnedFd, Option<PathBuf>)> {
        match path.components().next_back() {
            Some(Component::Normal(n)) => {
                let parent = path.parent().unwrap_or(Path::new("/"));
                Ok((
                    self.open(parent, libc::O_DIRECTORY)?,
                    Some(PathBuf::from(n)),
                ))
            }
            _ => Ok((self.open(path, libc::O_DIRECTORY)?, None)),
        }
    }

    /// The container's `cpath` as a copy source: the entry itself (a link stays a link), or
    /// with `follow` what it points at, resolved inside the rootfs.
    fn source(&self, cpath: &str, follow: bool) -> anyhow::Result<Source> {
        let p = Path::new(cpath);
        let not_found = || {
            anyhow::anyhow!(
                "Could not find the file {cpath} in container {}",
                self.c.config.name
            )
        };
        if follow {
            return open_followed(|f| self.open(p, f)).map_err(|_| not_found());
        }
        let (dir, name) = self.parent_and_name(p).map_err(|_| not_found())?;
        let name = name.map_or_else(|| OsString::from("."), PathBuf::into_os_string);
        let exists = nix::sys::stat::fstatat(
            Some(dir.as_raw_fd()),
            name.as_os_str(),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        if exists.is_err() {
            return Err(not_found());
        }
        Ok(Source::At(dir, name))
    }
}

/// Where a copy reads from.
enum Source {
    /// The entry `name` of a directory, not followed.
    At(OwnedFd, OsString),
    /// An opened file or directory (`-L`'s target).
    Open(OwnedFd),
}

impl Source {
    fn walk(self, name: &Path, sink: &mut dyn cp_tree::Sink) -> anyhow::Result<()> {
        match self {
            Source::At(dir, n) => cp_tree::walk_at(dir.as_raw_fd(), &n, sink),
            Source::Open(fd) => cp_tree::walk_fd(fd, name.as_os_str(), sink),
        }
    }
}

/// What `open(O_PATH)` reaches, reopened for reading: a directory through
/// itself, a regular file through its fd (the inode already reached, not the
/// path again); anything else is not copied and reads as missing.
fn open_followed(open: impl Fn(i32) -> std::io::Result<OwnedFd>) -> std::io::Result<Source> {
    use nix::sys::stat::SFlag;
    let fd = open(0)?;
    let st = nix::sys::stat::fstat(fd.as_raw_fd())?;
    let reopened = match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
        SFlag::S_IFDIR => nix::fcntl::openat(
            Some(fd.as_raw_fd()),
            ".",
            nix::fcntl::OFlag::O_RDONLY
                | nix::fcntl::OFlag::O_DIRECTORY
                | nix::fcntl::OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        // SAFETY: the fd was just opened and nothing else owns it.
        .map(|r| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r) })?,
        SFlag::S_IFREG => OwnedFd::from(std::fs::File::open(fd_path(&fd))?),
        _ => return Err(std::io::ErrorKind::Unsupported.into()),
    };
    Ok(Source::Open(reopened))
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if !self.was_mounted {
            rootfs::unmount_rootfs(&self.c.dir);
        }
    }
}

fn file_name_of(p: &Path) -> anyhow::Result<PathBuf> {
    match p.file_name() {
        Some(n) => Ok(PathBuf::from(n)),
        None => Ok(std::fs::canonicalize(p)
            .ok()
            .and_then(|c| c.file_name().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."))),
    }
}

/// docker's target rule: into an existing directory under the source's
/// name, else to the path itself (whose parent must exist).
fn target_in(dir: &Path, exists_as_dir: bool, src_name: &Path) -> PathBuf {
    if exists_as_dir {
        dir.join(src_name)
    } else {
        dir.to_path_buf()
    }
}

/// `cp SRC DST` with at most one side in a container; `-` streams a tar.
pub fn cp(
    root: &Path,
    src: &Endpoint,
    dst: &Endpoint,
    o: CpOptions,
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
) -> Result<()> {
    match (src, dst) {
        (Endpoint::Container(c, p), Endpoint::Host(h)) => to_host(root, c, p, h, o),
        (Endpoint::Host(h), Endpoint::Container(c, p)) => to_container(root, h, c, p, o),
        (Endpoint::Container(c, p), Endpoint::Stream) => to_tar(root, c, p, o, stdout),
        (Endpoint::Stream, Endpoint::Container(c, p)) => from_tar(root, stdin, c, p),
        _ => crate::invalid!("copying between containers or between host paths is not supported; use CONTAINER:PATH on one side"),
    }
}

/// The host side of a copy out: `(parent directory fd, name)` of `to`.
fn host_target(to: &Path) -> anyhow::Result<(OwnedFd, OsString)> {
    let name = to
        .file_name()
        .map_or_else(|| OsString::from("."), |n| n.to_os_string());
    Ok((
        cp_tree::open_host_dir(to.parent().unwrap_or(Path::new("/")))?,
        name,
    ))
}

fn to_host(root: &Path, cname: &str, cpath: &str, host: &Path, o: CpOptions) -> Result<()> {
    let m = Mounted::new(root, cname)?;
    let src = m.source(cpath, o.follow)?;
    let name = file_name_of(Path::new(cpath))?;
    let to = target_in(host, host.is_dir(), &name);
    if !to
        .parent()
        .is_none_or(|p| p.as_os_str().is_empty() || p.is_dir())
    {
        crate::invalid!("no such directory: {}", host.display());
    }
    // SAFETY: no preconditions.
    let me = unsafe { (libc::getuid(), libc::getgid()) };
    let (dir, to_name) = host_target(&to)?;
    let mut sink = DirSink::new(dir, to_name, (!o.archive).then_some(me));
    src.walk(&name, &mut sink)?;
    Ok(())
}

fn to_container(root: &Path, host: &Path, cname: &str, cpath: &str, o: CpOptions) -> Result<()> {
    if std::fs::symlink_metadata(host).is_err() {
        crate::invalid!("no such file or directory: {}", host.display());
    }
    let src = if o.follow {
        open_followed(|f| {
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_PATH | f)
                .open(host)
                .map(OwnedFd::from)
        })
    } else {
        host_target(host)
            .map_err(std::io::Error::other)
            .map(|(d, n)| Source::At(d, n))
    };
    let Ok(src) = src else {
        crate::invalid!("no such file or directory: {}", host.display());
    };
    let m = Mounted::new(root, cname)?;
    let p = Path::new(cpath);
    let name = file_name_of(host)?;
    let (dir, to_name) = match m.open(p, libc::O_DIRECTORY) {
        Ok(dir) => (dir, name.clone().into_os_string()),
        Err(_) => {
            let missing = || {
                anyhow::anyhow!(
                    "Could not find the file {} in container {cname}",
                    p.parent().unwrap_or(p).display()
                )
            };
            let (dir, last) = m.parent_and_name(p).map_err(|_| missing())?;
            (dir, last.ok_or_else(missing)?.into_os_string())
        }
    };
    let mut sink = DirSink::new(dir, to_name, (!o.archive).then_some((0, 0)));
    src.walk(&name, &mut sink)?;
    Ok(())
}

/// The source as a tar on `out`, named by its last component (docker's).
fn to_tar(root: &Path, cname: &str, cpath: &str, o: CpOptions, out: &mut dyn Write) -> Result<()> {
    let m = Mounted::new(root, cname)?;
    let src = m.source(cpath, o.follow)?;
    let name = file_name_of(Path::new(cpath))?;
    let mut sink = TarSink::new(out, name.clone().into_os_string());
    src.walk(&name, &mut sink)?;
    sink.finish()?;
    Ok(())
}

/// A tar from `input` unpacked into the container's directory `cpath`, with
/// the layer unpacker (every entry resolved inside the rootfs, sizes bounded).
fn from_tar(root: &Path, input: &mut dyn Read, cname: &str, cpath: &str) -> Result<()> {
    let m = Mounted::new(root, cname)?;
    let dir = match m.open(Path::new(cpath), libc::O_DIRECTORY) {
        Ok(d) => d,
        Err(_) => {
            if let Err(e) = m.open(Path::new(cpath), 0) {
                return Err(anyhow::anyhow!(
                    "Could not find the file {cpath} in container {cname}: {e}"
                )
                .into());
            }
            crate::invalid!(
                "destination {cname}:{cpath} must be a directory when copying from a tar stream"
            );
        }
    };
    let limit = SizeLimit::from_flag_or_env(None)?;
    // An O_PATH fd cannot be a directory to unpack into; reopen it by its fd path.
    crate::image::layer::unpack_layer(input, &fd_path(&dir), &limit)
        .with_context(|| format!("extracting into {cname}:{cpath}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            Endpoint::parse("web:/etc/x"),
            Endpoint::Container("web".into(), "/etc/x".into())
        );
        assert_eq!(Endpoint::parse("-"), Endpoint::Stream);
        assert_eq!(
            Endpoint::parse("/tmp/a:b"),
            Endpoint::Host("/tmp/a:b".into())
        );
        assert_eq!(Endpoint::parse("./a:b"), Endpoint::Host("./a:b".into()));
        assert_eq!(Endpoint::parse("plain"), Endpoint::Host("plain".into()));
    }
}
