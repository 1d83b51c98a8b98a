//! `cp` between a container's filesystem and the host, or a tar stream.
//!
//! Paths inside the container are resolved with openat2(RESOLVE_IN_ROOT)
//! against the mounted rootfs, so `..` and symlinks (absolute ones included)
//! stay inside it, as the container sees them. The copy then goes through
//! `/proc/self/fd/N` of the resolved directory, never the raw path again.

use anyhow::Context;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use super::container::{self, Container};
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

    /// The host path through which the container's `path` is read.
    fn source(&self, cpath: &str, follow: bool) -> anyhow::Result<(OwnedFd, PathBuf)> {
        let p = Path::new(cpath);
        let not_found = || {
            anyhow::anyhow!(
                "Could not find the file {cpath} in container {}",
                self.c.config.name
            )
        };
        if follow {
            // The kernel's name for what the in-root lookup reached: a
            // path under the rootfs, with every symlink already resolved.
            let fd = self.open(p, 0).map_err(|_| not_found())?;
            let real = std::fs::read_link(fd_path(&fd)).map_err(|_| not_found())?;
            if !real.starts_with(self.c.rootfs()) {
                return Err(not_found());
            }
            return Ok((fd, real));
        }
        let (dir, name) = self.parent_and_name(p).map_err(|_| not_found())?;
        let path = match name {
            Some(n) => fd_path(&dir).join(n),
            None => fd_path(&dir),
        };
        if std::fs::symlink_metadata(&path).is_err() {
            return Err(not_found());
        }
        Ok((dir, path))
    }
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

fn to_host(root: &Path, cname: &str, cpath: &str, host: &Path, o: CpOptions) -> Result<()> {
    let m = Mounted::new(root, cname)?;
    let (_fd, from) = m.source(cpath, o.follow)?;
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
    crate::sys::copy_tree_owned(&from, &to, (!o.archive).then_some(me))?;
    Ok(())
}

fn to_container(root: &Path, host: &Path, cname: &str, cpath: &str, o: CpOptions) -> Result<()> {
    let from = if o.follow {
        std::fs::canonicalize(host).ok()
    } else {
        Some(host.to_path_buf())
    };
    let Some(from) = from.filter(|f| std::fs::symlink_metadata(f).is_ok()) else {
        crate::invalid!("no such file or directory: {}", host.display());
    };
    let m = Mounted::new(root, cname)?;
    let p = Path::new(cpath);
    let name = file_name_of(host)?;
    let (_fd, to) = match m.open(p, libc::O_DIRECTORY) {
        Ok(dir) => {
            let t = target_in(&fd_path(&dir), true, &name);
            (dir, t)
        }
        Err(_) => {
            let (dir, last) = m.parent_and_name(p).map_err(|_| {
                anyhow::anyhow!(
                    "Could not find the file {} in container {cname}",
                    p.parent().unwrap_or(p).display()
                )
            })?;
            let t = fd_path(&dir).join(last.unwrap_or_default());
            (dir, t)
        }
    };
    crate::sys::copy_tree_owned(&from, &to, (!o.archive).then_some((0, 0)))?;
    Ok(())
}

/// The source as a tar on `out`, named by its last component (docker's).
fn to_tar(root: &Path, cname: &str, cpath: &str, o: CpOptions, out: &mut dyn Write) -> Result<()> {
    let m = Mounted::new(root, cname)?;
    let (_fd, from) = m.source(cpath, o.follow)?;
    let name = file_name_of(Path::new(cpath))?;
    let mut b = tar::Builder::new(out);
    b.follow_symlinks(false);
    let md = std::fs::symlink_metadata(&from).context("reading the source")?;
    let res = if md.is_dir() {
        b.append_dir_all(&name, &from)
    } else {
        b.append_path_with_name(&from, &name)
    };
    res.and_then(|_| b.finish())
        .context("writing the tar stream")?;
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
