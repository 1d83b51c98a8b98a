//! Writing COPY/ADD results into a step's mounted rootfs. Every path is resolved with openat2
//! `RESOLVE_IN_ROOT` from the rootfs fd and the last component is made with *at() calls on the
//! parent's fd, so a symlink in the image cannot send a write outside it.

use anyhow::{anyhow, Context, Result};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::runtime::resolve::{mkdir_all_in_root, mkdir_all_in_root_then, open_in_root};

pub struct RootWriter {
    pub root: OwnedFd,
    /// `--chown`, resolved.
    pub owner: Option<(u32, u32)>,
    /// `--chmod`.
    pub chmod: Option<u32>,
}

fn check(r: libc::c_int, what: &str) -> Result<()> {
    if r < 0 {
        return Err(io::Error::last_os_error()).with_context(|| what.to_string());
    }
    Ok(())
}

fn split(path: &str) -> Result<(&str, CString)> {
    let p = path.trim_end_matches('/');
    let (parent, name) = p.rsplit_once('/').unwrap_or(("", p));
    if name.is_empty() || name == "." || name == ".." {
        return Err(anyhow!("invalid destination {path:?}"));
    }
    let c = CString::new(name).map_err(|_| anyhow!("{path:?} contains a NUL byte"))?;
    Ok((if parent.is_empty() { "/" } else { parent }, c))
}

impl RootWriter {
    pub fn open(root: &Path) -> Result<RootWriter> {
        let f = File::open(root).with_context(|| format!("opening {}", root.display()))?;
        Ok(RootWriter {
            root: f.into(),
            owner: None,
            chmod: None,
        })
    }

    /// A directory fd for `path` inside the root, creating missing directories (0755, root).
    pub fn mkdir_all(&self, path: &str) -> Result<OwnedFd> {
        mkdir_all_in_root(self.root.as_raw_fd(), Path::new(path))
            .with_context(|| format!("creating directory {path}"))?;
        open_in_root(
            self.root.as_raw_fd(),
            Path::new(path),
            libc::O_RDONLY | libc::O_DIRECTORY,
        )
        .with_context(|| format!("opening directory {path}"))
    }

    /// Whether `path` is a directory inside the root (following symlinks inside it).
    pub fn is_dir(&self, path: &str) -> bool {
        open_in_root(
            self.root.as_raw_fd(),
            Path::new(path),
            libc::O_PATH | libc::O_DIRECTORY,
        )
        .is_ok()
    }

    fn owner_of(&self, uid: u32, gid: u32) -> (u32, u32) {
        self.owner.unwrap_or((uid, gid))
    }

    /// Makes `path` a directory with `mode` (`--chmod` wins) owned as `--chown` says, else
    /// `uid:gid`.
    pub fn dir(&self, path: &str, mode: u32, uid: u32, gid: u32) -> Result<()> {
        let fd = self.mkdir_all(path)?;
        let (u, g) = self.owner_of(uid, gid);
        // SAFETY: valid fd.
        check(unsafe { libc::fchown(fd.as_raw_fd(), u, g) }, path)?;
        let mode = self.chmod.unwrap_or(mode);
        // SAFETY: valid fd.
        check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) }, path)
    }

    /// Replaces whatever non-directory is at `name` in `parent`.
    fn clear(parent: &OwnedFd, name: &CString) {
        // SAFETY: valid fd and C string; a directory is left alone (EISDIR).
        unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), 0) };
    }

    pub fn file(
        &self,
        path: &str,
        mode: u32,
        uid: u32,
        gid: u32,
        src: &mut dyn Read,
    ) -> Result<()> {
        let (parent, name) = split(path)?;
        let pfd = self.mkdir_all(parent)?;
        Self::clear(&pfd, &name);
        // SAFETY: valid fd and C string; O_EXCL|O_NOFOLLOW never follows a planted link.
        let fd = unsafe {
            libc::openat(
                pfd.as_raw_fd(),
                name.as_ptr(),
                libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600,
            )
        };
        check(fd, path)?;
        // SAFETY: a fresh fd we own.
        let mut f = unsafe { File::from_raw_fd(fd) };
        io::copy(src, &mut f).with_context(|| format!("writing {path}"))?;
        let (u, g) = self.owner_of(uid, gid);
        // SAFETY: valid fd.
        check(unsafe { libc::fchown(f.as_raw_fd(), u, g) }, path)?;
        let mode = self.chmod.unwrap_or(mode);
        // SAFETY: valid fd.
        check(unsafe { libc::fchmod(f.as_raw_fd(), mode) }, path)
    }

    pub fn symlink(&self, path: &str, target: &str, uid: u32, gid: u32) -> Result<()> {
        let (parent, name) = split(path)?;
        let pfd = self.mkdir_all(parent)?;
        Self::clear(&pfd, &name);
        let t = CString::new(target).map_err(|_| anyhow!("{target:?} contains a NUL byte"))?;
        // SAFETY: valid fd and C strings.
        let r = unsafe { libc::symlinkat(t.as_ptr(), pfd.as_raw_fd(), name.as_ptr()) };
        check(r, path)?;
        let (u, g) = self.owner_of(uid, gid);
        // SAFETY: valid fd and C string; the link itself, never its target.
        check(
            unsafe {
                libc::fchownat(
                    pfd.as_raw_fd(),
                    name.as_ptr(),
                    u,
                    g,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            },
            path,
        )
    }

    /// Reads a small file of the root (e.g. /etc/passwd), if it exists.
    pub fn read_small(&self, path: &str) -> Option<String> {
        let fd = open_in_root(
            self.root.as_raw_fd(),
            Path::new(path),
            libc::O_RDONLY | libc::O_NOFOLLOW,
        )
        .ok()?;
        let mut s = String::new();
        File::from(fd).take(16 << 20).read_to_string(&mut s).ok()?;
        Some(s)
    }

    /// `--chown=user[:group]` against the image's /etc/passwd and /etc/group.
    pub fn resolve_owner(&self, spec: &str) -> Result<(u32, u32)> {
        self.resolve_user(spec)
            .map_err(|e| anyhow!("--chown={spec}: {e}"))
    }

    /// `user[:group]` (names or ids) to uid:gid against the image's /etc/passwd and
    /// /etc/group, as BuildKit does for `--chown` and WORKDIR: a numeric user without a group
    /// is `uid:uid`, a named one gets its primary group.
    pub fn resolve_user(&self, spec: &str) -> std::result::Result<(u32, u32), String> {
        let (user, group) = match spec.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (spec, None),
        };
        // passwd: name:x:uid:gid:…, group: name:x:gid:members; the third and fourth fields.
        let lookup = |file: &str, name: &str| -> Option<(u32, u32)> {
            let text = self.read_small(file)?;
            text.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                if f.len() < 3 || f[0] != name {
                    return None;
                }
                let third = f[2].parse().ok()?;
                Some((
                    third,
                    f.get(3).and_then(|g| g.parse().ok()).unwrap_or(third),
                ))
            })
        };
        let (uid, primary) = match user.parse::<u32>() {
            Ok(n) => (n, n),
            Err(_) => {
                lookup("/etc/passwd", user).ok_or_else(|| format!("unable to find user {user}"))?
            }
        };
        let gid = match group {
            None => primary,
            Some(g) => match g.parse::<u32>() {
                Ok(n) => n,
                Err(_) => lookup("/etc/group", g)
                    .map(|(gid, _)| gid)
                    .ok_or_else(|| format!("unable to find group {g}"))?,
            },
        };
        Ok((uid, gid))
    }

    /// Like `mkdir_all`, but every directory it creates is 0755 and owned by `owner` (WORKDIR
    /// under a USER, as BuildKit does); directories that exist are left as they are.
    pub fn mkdir_all_owned(&self, path: &str, owner: (u32, u32)) -> Result<()> {
        let made = &mut |parent: RawFd, name: &CString| -> io::Result<()> {
            // SAFETY: valid fd and C string; O_NOFOLLOW: the directory just made, never a link
            // planted in its place.
            let fd = unsafe {
                libc::openat(
                    parent,
                    name.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: a fresh fd we own.
            let dir = unsafe { OwnedFd::from_raw_fd(fd) };
            // SAFETY: valid fd; then 0755 whatever the umask.
            let ok = unsafe {
                libc::fchown(dir.as_raw_fd(), owner.0, owner.1) == 0
                    && libc::fchmod(dir.as_raw_fd(), 0o755) == 0
            };
            if ok {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        mkdir_all_in_root_then(self.root.as_raw_fd(), Path::new(path), made)
            .with_context(|| format!("creating directory {path}"))?;
        Ok(())
    }

    /// The parent directory (resolved in the root) and last component of `path`.
    fn parent_of(&self, path: &str) -> Result<(OwnedFd, CString)> {
        let (parent, name) = split(path)?;
        let fd = open_in_root(
            self.root.as_raw_fd(),
            Path::new(parent),
            libc::O_PATH | libc::O_DIRECTORY,
        )
        .with_context(|| format!("opening directory {parent}"))?;
        Ok((fd, name))
    }

    /// Sets the access and modification times of `path` itself (a symlink is not followed) to
    /// `mtime` (seconds, nanoseconds): COPY keeps its sources' mtimes, as docker does. The
    /// root directory itself is left alone.
    pub fn set_mtime(&self, path: &str, mtime: (i64, i64)) -> Result<()> {
        if path.trim_matches('/').is_empty() {
            return Ok(());
        }
        let (pfd, name) = self.parent_of(path)?;
        let t = libc::timespec {
            tv_sec: mtime.0 as libc::time_t,
            tv_nsec: mtime.1 as _,
        };
        let times = [t, t];
        // SAFETY: valid fd, C string and a two-element timespec array.
        let r = unsafe {
            libc::utimensat(
                pfd.as_raw_fd(),
                name.as_ptr(),
                times.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        check(r, path)
    }

    /// Makes `path` a hard link to `existing` (a file this step wrote): a hard-linked pair in
    /// a copied tree stays one inode, as with docker.
    pub fn hard_link(&self, existing: &str, path: &str) -> Result<()> {
        let (old_dir, old_name) = self.parent_of(existing)?;
        let (parent, name) = split(path)?;
        let pfd = self.mkdir_all(parent)?;
        Self::clear(&pfd, &name);
        // SAFETY: valid fds and C strings; flags 0: a symlink at `existing` is linked itself,
        // never followed.
        let r = unsafe {
            libc::linkat(
                old_dir.as_raw_fd(),
                old_name.as_ptr(),
                pfd.as_raw_fd(),
                name.as_ptr(),
                0,
            )
        };
        check(r, path)
    }
}
