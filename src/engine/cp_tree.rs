//! `cp`'s tree copy through directory fds only.
//!
//! A running container can swap any directory below a `cp` source or target for a symlink while
//! the copy runs. Walking by path (even below a `/proc/self/fd/N` prefix) would follow such a
//! link out of the rootfs, so every entry is reached relative to its parent's fd: reads open
//! with `O_NOFOLLOW` (a swapped-in link fails the open, it is never followed), writes go through
//! `mkdirat`, `openat(O_CREAT|O_EXCL|O_NOFOLLOW)` and `symlinkat` in the target directory's fd. An
//! existing link where a directory or file is copied is replaced, as docker's untar does, never
//! written through.

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, OFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// Each level holds a source and a target fd: deeper trees would run out of fds (and stack)
/// part way, so they are refused with a clear error instead.
const MAX_DEPTH: usize = 256;

/// Where the walk sends what it reads. Entries arrive in order: `enter` a directory, its
/// entries, then `leave` it.
pub trait Sink {
    fn enter(&mut self, name: &OsStr, st: &FileStat) -> Result<()>;
    fn leave(&mut self, st: &FileStat) -> Result<()>;
    fn file(&mut self, name: &OsStr, st: &FileStat, data: &mut File) -> Result<()>;
    fn symlink(&mut self, name: &OsStr, st: &FileStat, target: &OsStr) -> Result<()>;
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

fn shown(name: &OsStr) -> std::borrow::Cow<'_, str> {
    name.to_string_lossy()
}

/// Sends the entry `name` of directory `dir` to `sink`; a symlink is sent as a link, never
/// followed. `name` may be `.` for the directory itself.
pub fn walk_at(dir: RawFd, name: &OsStr, sink: &mut dyn Sink) -> Result<()> {
    walk_entry(dir, name, sink, 0)
}

/// Sends an already opened file or directory (`cp -L`'s resolved source) to `sink` under
/// `name`; below it nothing is followed.
pub fn walk_fd(fd: OwnedFd, name: &OsStr, sink: &mut dyn Sink) -> Result<()> {
    let st = fstat(fd.as_raw_fd()).with_context(|| format!("reading {}", shown(name)))?;
    match kind(&st) {
        SFlag::S_IFDIR => walk_dir(fd, name, &st, sink, 0),
        SFlag::S_IFREG => sink.file(name, &st, &mut File::from(fd)),
        // Device nodes, fifos and sockets are not worth carrying over.
        _ => Ok(()),
    }
}

fn walk_entry(dir: RawFd, name: &OsStr, sink: &mut dyn Sink, depth: usize) -> Result<()> {
    let st = fstatat(Some(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
        .with_context(|| format!("reading {}", shown(name)))?;
    let open = |extra: OFlag| {
        openat(
            Some(dir),
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | extra,
            Mode::empty(),
        )
        .map(owned)
        .with_context(|| format!("opening {} (changed during the copy?)", shown(name)))
    };
    match kind(&st) {
        SFlag::S_IFLNK => {
            let target =
                readlinkat(Some(dir), name).with_context(|| format!("reading {}", shown(name)))?;
            sink.symlink(name, &st, &target)
        }
        SFlag::S_IFDIR => walk_dir(open(OFlag::O_DIRECTORY)?, name, &st, sink, depth),
        SFlag::S_IFREG => {
            // O_NONBLOCK: a fifo swapped in after the stat must not hang the open.
            let fd = open(OFlag::O_NONBLOCK)?;
            let st = fstat(fd.as_raw_fd()).with_context(|| format!("reading {}", shown(name)))?;
            if kind(&st) != SFlag::S_IFREG {
                bail!("{} changed during the copy", shown(name));
            }
            sink.file(name, &st, &mut File::from(fd))
        }
        _ => Ok(()),
    }
}

fn walk_dir(
    fd: OwnedFd,
    name: &OsStr,
    st: &FileStat,
    sink: &mut dyn Sink,
    depth: usize,
) -> Result<()> {
    if depth >= MAX_DEPTH {
        bail!(
            "{}: directories nested deeper than {MAX_DEPTH}",
            shown(name)
        );
    }
    sink.enter(name, st)?;
    let raw = fd.as_raw_fd();
    // The directory stream gets its own fd so that `raw` stays valid for the lookups below.
    let dup = nix::unistd::dup(raw).context("duplicating a directory fd")?;
    let mut d = nix::dir::Dir::from_fd(dup).context("listing a directory")?;
    let mut names: Vec<OsString> = Vec::new();
    for e in d.iter() {
        let e = e.with_context(|| format!("listing {}", shown(name)))?;
        let n = OsStr::from_bytes(e.file_name().to_bytes());
        if n != "." && n != ".." {
            names.push(n.to_os_string());
        }
    }
    drop(d);
    for n in names {
        walk_entry(raw, &n, sink, depth + 1)?;
    }
    sink.leave(st)
}

/// Writes the walk into a directory: the top entry becomes `name` in `dir`, the rest below it.
/// `owner` replaces the source's uid/gid when set (`cp` without `-a`).
pub struct DirSink {
    stack: Vec<OwnedFd>,
    top: Option<OsString>,
    owner: Option<(u32, u32)>,
}

impl DirSink {
    pub fn new(dir: OwnedFd, name: OsString, owner: Option<(u32, u32)>) -> DirSink {
        DirSink {
            stack: vec![dir],
            top: Some(name),
            owner,
        }
    }

    fn parent(&self) -> Result<RawFd> {
        match self.stack.last() {
            Some(fd) => Ok(fd.as_raw_fd()),
            None => bail!("copy: entry outside the target"),
        }
    }

    /// The name to write: the target's own for the first entry, the source's below.
    fn target(&mut self, name: &OsStr) -> OsString {
        self.top.take().unwrap_or_else(|| name.to_os_string())
    }

    fn ids(&self, st: &FileStat) -> (Option<Uid>, Option<Gid>) {
        let (u, g) = self.owner.unwrap_or((st.st_uid, st.st_gid));
        (Some(Uid::from_raw(u)), Some(Gid::from_raw(g)))
    }

    /// Makes room for a non-directory: what is there goes unless it is a directory.
    fn clear(&self, dir: RawFd, name: &OsStr) -> Result<()> {
        let old = fstatat(Some(dir), name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
            .with_context(|| format!("reading {}", shown(name)))?;
        if kind(&old) == SFlag::S_IFDIR {
            bail!(
                "cannot overwrite directory {} with non-directory",
                shown(name)
            );
        }
        unlinkat(Some(dir), name, UnlinkatFlags::NoRemoveDir)
            .with_context(|| format!("replacing {}", shown(name)))
    }

    /// Sets mode and owner on an open fd: chown first, since it clears set-id bits.
    fn finish(&self, fd: RawFd, st: &FileStat, name: &OsStr) -> Result<()> {
        let (u, g) = self.ids(st);
        // Best effort, as before: a target filesystem may refuse foreign ids.
        let _ = fchown(fd, u, g);
        fchmod(fd, Mode::from_bits_truncate(st.st_mode & 0o7777))
            .with_context(|| format!("chmod {}", shown(name)))
    }
}

impl Sink for DirSink {
    fn enter(&mut self, name: &OsStr, _st: &FileStat) -> Result<()> {
        let dir = self.parent()?;
        let t = self.target(name);
        match mkdirat(Some(dir), t.as_os_str(), Mode::from_bits_truncate(0o700)) {
            Ok(()) => {}
            Err(Errno::EEXIST) => {
                let old = fstatat(
                    Some(dir),
                    t.as_os_str(),
                    nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
                )
                .with_context(|| format!("reading {}", shown(&t)))?;
                if kind(&old) != SFlag::S_IFDIR {
                    // docker's untar: a link (or file) where a directory goes is replaced.
                    self.clear(dir, &t)?;
                    mkdirat(Some(dir), t.as_os_str(), Mode::from_bits_truncate(0o700))
                        .with_context(|| format!("creating {}", shown(&t)))?;
                }
            }
            Err(e) => return Err(e).with_context(|| format!("creating {}", shown(&t))),
        }
        let fd = openat(
            Some(dir),
            t.as_os_str(),
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("opening {} (changed during the copy?)", shown(&t)))?;
        self.stack.push(owned(fd));
        Ok(())
    }

    fn leave(&mut self, st: &FileStat) -> Result<()> {
        let Some(fd) = self.stack.pop() else {
            bail!("copy: unbalanced directory walk");
        };
        self.finish(fd.as_raw_fd(), st, OsStr::new("directory"))
    }

    fn file(&mut self, name: &OsStr, st: &FileStat, data: &mut File) -> Result<()> {
        let dir = self.parent()?;
        let t = self.target(name);
        let create = || {
            openat(
                Some(dir),
                t.as_os_str(),
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
        };
        let fd = match create() {
            Err(Errno::EEXIST) => {
                self.clear(dir, &t)?;
                create()
            }
            r => r,
        }
        .with_context(|| format!("creating {}", shown(&t)))?;
        let mut out = File::from(owned(fd));
        std::io::copy(data, &mut out).with_context(|| format!("copying {}", shown(&t)))?;
        self.finish(out.as_raw_fd(), st, &t)
    }

    fn symlink(&mut self, name: &OsStr, st: &FileStat, target: &OsStr) -> Result<()> {
        let dir = self.parent()?;
        let t = self.target(name);
        let make = || symlinkat(target, Some(dir), t.as_os_str());
        match make() {
            Err(Errno::EEXIST) => {
                self.clear(dir, &t)?;
                make()
            }
            r => r,
        }
        .with_context(|| format!("creating link {}", shown(&t)))?;
        let (u, g) = self.ids(st);
        let _ = fchownat(
            Some(dir),
            t.as_os_str(),
            u,
            g,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        );
        Ok(())
    }
}

/// Writes the walk as a tar stream (`cp CONTAINER:PATH -`), owners and modes kept.
/// The top entry is named `top` (the source's last component, docker's).
pub struct TarSink<W: std::io::Write> {
    b: tar::Builder<W>,
    path: PathBuf,
    top: Option<OsString>,
}

impl<W: std::io::Write> TarSink<W> {
    pub fn new(out: W, top: OsString) -> TarSink<W> {
        TarSink {
            b: tar::Builder::new(out),
            path: PathBuf::new(),
            top: Some(top),
        }
    }

    fn entry(&mut self, name: &OsStr) -> PathBuf {
        let n = self.top.take().unwrap_or_else(|| name.to_os_string());
        self.path.join(n)
    }

    pub fn finish(mut self) -> Result<()> {
        self.b.finish().context("writing the tar stream")
    }

    fn header(st: &FileStat, t: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(t);
        h.set_mode(st.st_mode & 0o7777);
        h.set_uid(u64::from(st.st_uid));
        h.set_gid(u64::from(st.st_gid));
        h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
        h.set_size(size);
        h
    }
}

impl<W: std::io::Write> Sink for TarSink<W> {
    fn enter(&mut self, name: &OsStr, st: &FileStat) -> Result<()> {
        self.path = self.entry(name);
        let mut h = Self::header(st, tar::EntryType::Directory, 0);
        self.b
            .append_data(&mut h, &self.path, std::io::empty())
            .context("writing the tar stream")
    }

    fn leave(&mut self, _st: &FileStat) -> Result<()> {
        self.path.pop();
        Ok(())
    }

    fn file(&mut self, name: &OsStr, st: &FileStat, data: &mut File) -> Result<()> {
        let size = u64::try_from(st.st_size).unwrap_or(0);
        let mut h = Self::header(st, tar::EntryType::Regular, size);
        // The header's size is what was stat'ed: a file that grows meanwhile is cut there and
        // one that shrinks is padded with zeros, so the stream stays a valid tar.
        let body = std::io::Read::take(
            std::io::Read::chain(std::io::Read::take(data, size), std::io::repeat(0)),
            size,
        );
        let p = self.entry(name);
        self.b
            .append_data(&mut h, p, body)
            .context("writing the tar stream")
    }

    fn symlink(&mut self, name: &OsStr, st: &FileStat, target: &OsStr) -> Result<()> {
        // The target goes in byte for byte: tar's `append_link` normalizes it (`/` became
        // `//`). One longer than the header's 100 bytes goes first as GNU's `K` entry.
        let t = target.as_bytes();
        let mut h = Self::header(st, tar::EntryType::Symlink, 0);
        if t.len() > 100 {
            let mut k = tar::Header::new_gnu();
            k.as_old_mut().name[..13].copy_from_slice(b"././@LongLink");
            k.set_entry_type(tar::EntryType::GNULongLink);
            k.set_mode(0o644);
            k.set_size(t.len() as u64 + 1);
            k.set_cksum();
            self.b
                .append(&k, std::io::Read::chain(t, &[0u8][..]))
                .context("writing the tar stream")?;
        }
        h.set_link_name_literal(&t[..t.len().min(100)])
            .context("writing the tar stream")?;
        let p = self.entry(name);
        self.b
            .append_data(&mut h, p, std::io::empty())
            .context("writing the tar stream")
    }
}

/// An fd for `dir`'s directory on the host (the caller's own side of a `cp`).
pub fn open_host_dir(dir: &std::path::Path) -> Result<OwnedFd> {
    let d = if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    };
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(d)
        .with_context(|| format!("opening {}", d.display()))?;
    Ok(OwnedFd::from(f))
}
