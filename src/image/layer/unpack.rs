//! One tar entry at a time into the snapshot: directories, files, links,
//! devices and whiteouts, each created on an already-resolved parent fd.

use anyhow::{anyhow, bail, Context, Result};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::fsops::*;
use super::pax::pax_info;
use crate::image::sizelimit::SizeLimit;

/// Splits a tar entry name into normalized components. Leading `/` and `.`
/// are dropped (contained to the root, as tar does); `..` is refused.
fn components(raw: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for c in raw.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => bail!(
                "layer entry {:?} contains '..' and would escape the snapshot",
                String::from_utf8_lossy(raw)
            ),
            c => out.push(c.to_vec()),
        }
    }
    Ok(out)
}

fn join(cs: &[Vec<u8>]) -> Vec<u8> {
    cs.join(&b'/')
}

pub(super) struct Unpacker<'a> {
    pub(super) root: OwnedFd,
    pub(super) is_root: bool,
    pub(super) dir_times: Vec<(Vec<Vec<u8>>, i64)>,
    pub(super) limit: &'a SizeLimit,
}

impl Unpacker<'_> {
    /// Opens (creating missing directories) the directory `cs` inside root.
    fn ensure_dir(&self, cs: &[Vec<u8>]) -> Result<OwnedFd> {
        match openat2_in_root(
            self.root.as_raw_fd(),
            &join(cs),
            libc::O_PATH | libc::O_DIRECTORY,
        ) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && !cs.is_empty() => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("opening directory {:?}", String::from_utf8_lossy(&join(cs)))
                })
            }
        }
        let parent = self.ensure_dir(&cs[..cs.len() - 1])?;
        let name = cstr(&cs[cs.len() - 1])?;
        // SAFETY: valid fd and C string.
        let r = unsafe { libc::mkdirat(parent.as_raw_fd(), name.as_ptr(), 0o755) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EEXIST) {
                return Err(e).with_context(|| {
                    format!(
                        "creating directory {:?}",
                        String::from_utf8_lossy(&join(cs))
                    )
                });
            }
        }
        openat2_in_root(
            self.root.as_raw_fd(),
            &join(cs),
            libc::O_PATH | libc::O_DIRECTORY,
        )
        .with_context(|| format!("opening directory {:?}", String::from_utf8_lossy(&join(cs))))
    }

    fn lstat(parent: &OwnedFd, name: &CString) -> Option<libc::stat> {
        // SAFETY: zeroed stat is a valid out-buffer.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd, C string and out pointer.
        let r = unsafe {
            libc::fstatat(
                parent.as_raw_fd(),
                name.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        (r == 0).then_some(st)
    }

    pub(super) fn entry(&mut self, entry: &mut tar::Entry<'_, impl Read>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let cs = components(&raw)?;
        let Some((name, parents)) = cs.split_last() else {
            return Ok(()); // the root itself: the snapshot dir keeps its own mode
        };
        let parent = self.ensure_dir(parents)?;

        if let Some(target) = name.strip_prefix(b".wh.") {
            return self.whiteout(&parent, parents, target, &shown);
        }

        let cname = cstr(name)?;
        let h = entry.header().clone();
        let mode = h.mode().with_context(|| format!("bad mode in {shown:?}"))? & 0o7777;
        let pax = pax_info(entry)?;
        let uid = match pax.uid {
            Some(u) => u,
            None => h.uid().with_context(|| format!("bad uid in {shown:?}"))? as libc::uid_t,
        };
        let gid = match pax.gid {
            Some(g) => g,
            None => h.gid().with_context(|| format!("bad gid in {shown:?}"))? as libc::gid_t,
        };
        let mtime = pax.mtime.unwrap_or_else(|| h.mtime().unwrap_or(0) as i64);
        let xattrs = pax.xattrs;
        let kind = h.entry_type();
        let existing = Self::lstat(&parent, &cname);
        let is_dir = |st: &libc::stat| st.st_mode & libc::S_IFMT == libc::S_IFDIR;

        use tar::EntryType as T;
        match kind {
            T::Directory => {
                if !existing.as_ref().is_some_and(is_dir) {
                    self.remove_existing(&parent, &cname, &shown)?;
                    // SAFETY: valid fd and C string.
                    check(unsafe { libc::mkdirat(parent.as_raw_fd(), cname.as_ptr(), 0o700) })
                        .with_context(|| format!("creating directory {shown:?}"))?;
                }
                let fd = openat_nofollow(&parent, &cname, libc::O_RDONLY | libc::O_DIRECTORY)
                    .with_context(|| format!("opening directory {shown:?}"))?;
                self.chown_fd(&fd, uid, gid, &shown)?;
                // SAFETY: valid fd.
                check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })
                    .with_context(|| format!("chmod {shown:?}"))?;
                for (k, v) in &xattrs {
                    set_xattr_fd(&fd, k, v).with_context(|| format!("xattr on {shown:?}"))?;
                }
                self.dir_times.push((cs.clone(), mtime));
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                // The size in the header, sparse holes included: refused
                // before a byte is written if it would cross the limit.
                self.limit
                    .charge(entry.size(), &format!("file {shown:?}"))?;
                let f = self.write_file(&parent, &cname, entry, &shown)?;
                let fd = OwnedFd::from(f);
                self.chown_fd(&fd, uid, gid, &shown)?;
                // chmod after chown: chown clears setuid/setgid bits.
                // SAFETY: valid fd.
                check(unsafe { libc::fchmod(fd.as_raw_fd(), mode) })
                    .with_context(|| format!("chmod {shown:?}"))?;
                for (k, v) in &xattrs {
                    set_xattr_fd(&fd, k, v).with_context(|| format!("xattr on {shown:?}"))?;
                }
                set_times_at(&parent, &cname, mtime).with_context(|| format!("mtime {shown:?}"))?;
            }
            T::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| anyhow!("symlink {shown:?} has no target"))?
                    .into_owned();
                self.remove_existing(&parent, &cname, &shown)?;
                let t = cstr(&target)?;
                // SAFETY: valid fd and C strings.
                check(unsafe { libc::symlinkat(t.as_ptr(), parent.as_raw_fd(), cname.as_ptr()) })
                    .with_context(|| format!("creating symlink {shown:?}"))?;
                self.chown_at(&parent, &cname, uid, gid, &shown)?;
                for (k, v) in &xattrs {
                    set_xattr_link(&parent, &cname, k, v)
                        .with_context(|| format!("xattr on {shown:?}"))?;
                }
                set_times_at(&parent, &cname, mtime).with_context(|| format!("mtime {shown:?}"))?;
            }
            T::Link => self.hardlink(entry, &parent, &cname, &cs, &shown)?,
            T::Char | T::Block | T::Fifo => {
                self.remove_existing(&parent, &cname, &shown)?;
                let fmt = match kind {
                    T::Char => libc::S_IFCHR,
                    T::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                // SAFETY: valid fd and C string.
                check(unsafe {
                    libc::mknodat(
                        parent.as_raw_fd(),
                        cname.as_ptr(),
                        fmt | mode,
                        libc::makedev(major, minor),
                    )
                })
                .with_context(|| format!("creating device node {shown:?}"))?;
                self.chown_at(&parent, &cname, uid, gid, &shown)?;
                // SAFETY: valid fd and C string; the node was just created by us.
                check(unsafe { libc::fchmodat(parent.as_raw_fd(), cname.as_ptr(), mode, 0) })
                    .with_context(|| format!("chmod {shown:?}"))?;
                set_times_at(&parent, &cname, mtime).with_context(|| format!("mtime {shown:?}"))?;
            }
            // pax/GNU header records are consumed by the tar reader itself.
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => {}
            other => bail!("layer entry {shown:?} has unsupported type {other:?}"),
        }
        Ok(())
    }

    /// `.wh.NAME` becomes overlayfs's 0:0 char device; `.wh..wh..opq` the
    /// opaque xattr on its directory.
    fn whiteout(
        &self,
        parent: &OwnedFd,
        parents: &[Vec<u8>],
        target: &[u8],
        shown: &str,
    ) -> Result<()> {
        if target == b".wh..opq" {
            let dir = openat2_in_root(
                self.root.as_raw_fd(),
                &join(parents),
                libc::O_RDONLY | libc::O_DIRECTORY,
            )
            .with_context(|| format!("opening opaque dir for {shown:?}"))?;
            set_xattr_fd(&dir, b"trusted.overlay.opaque", b"y")
                .with_context(|| format!("marking {shown:?} opaque"))?;
            return Ok(());
        }
        if target.starts_with(b".wh.") {
            return Ok(()); // aufs metadata (.wh..wh.plnk etc.), meaningless to overlay
        }
        if target.is_empty() || target == b"." || target == b".." {
            bail!("layer entry {shown:?} is a malformed whiteout");
        }
        let t = cstr(target)?;
        self.remove_existing(parent, &t, shown)?;
        // SAFETY: valid fd and C string.
        check(unsafe {
            libc::mknodat(
                parent.as_raw_fd(),
                t.as_ptr(),
                libc::S_IFCHR,
                libc::makedev(0, 0),
            )
        })
        .with_context(|| format!("creating whiteout for {shown:?}"))?;
        Ok(())
    }

    /// A hard link to an earlier entry of this layer, both resolved inside
    /// the snapshot.
    fn hardlink(
        &self,
        entry: &tar::Entry<'_, impl Read>,
        parent: &OwnedFd,
        cname: &CString,
        cs: &[Vec<u8>],
        shown: &str,
    ) -> Result<()> {
        let target = entry
            .link_name_bytes()
            .ok_or_else(|| anyhow!("hardlink {shown:?} has no target"))?
            .into_owned();
        let tcs = components(&target).with_context(|| format!("hardlink {shown:?}"))?;
        let Some((tname, tparents)) = tcs.split_last() else {
            bail!("hardlink {shown:?} points at the snapshot root");
        };
        let tparent = openat2_in_root(
            self.root.as_raw_fd(),
            &join(tparents),
            libc::O_PATH | libc::O_DIRECTORY,
        )
        .with_context(|| {
            format!(
                "hardlink {shown:?}: target {:?} not found in this layer",
                String::from_utf8_lossy(&target)
            )
        })?;
        let tn = cstr(tname)?;
        if tcs != cs {
            self.remove_existing(parent, cname, shown)?;
        }
        // SAFETY: valid fds and C strings; flags 0 = don't follow a
        // symlink target, link the symlink itself.
        check(unsafe {
            libc::linkat(
                tparent.as_raw_fd(),
                tn.as_ptr(),
                parent.as_raw_fd(),
                cname.as_ptr(),
                0,
            )
        })
        .with_context(|| {
            format!(
                "hardlink {shown:?} -> {:?}",
                String::from_utf8_lossy(&target)
            )
        })?;
        Ok(())
    }

    /// Creates `name` fresh in `parent` and copies the entry's data into it.
    fn write_file(
        &self,
        parent: &OwnedFd,
        name: &CString,
        entry: &mut tar::Entry<'_, impl Read>,
        shown: &str,
    ) -> Result<File> {
        self.remove_existing(parent, name, shown)?;
        // SAFETY: valid fd and C string; O_EXCL|O_NOFOLLOW so a planted
        // symlink can't redirect the write.
        let fd = unsafe {
            libc::openat(
                parent.as_raw_fd(),
                name.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0o600,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("creating file {shown:?}"));
        }
        // SAFETY: fresh fd from openat.
        let mut f = File::from(unsafe { OwnedFd::from_raw_fd(fd) });
        io::copy(entry, &mut f).with_context(|| format!("writing file {shown:?}"))?;
        Ok(f)
    }

    fn chown_fd(&self, fd: &OwnedFd, uid: u32, gid: u32, shown: &str) -> Result<()> {
        if self.is_root {
            // SAFETY: valid fd.
            check(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })
                .with_context(|| format!("chown {shown:?}"))?;
        }
        Ok(())
    }

    fn chown_at(
        &self,
        parent: &OwnedFd,
        name: &CString,
        uid: u32,
        gid: u32,
        shown: &str,
    ) -> Result<()> {
        if self.is_root {
            // SAFETY: valid fd and C string.
            check(unsafe {
                libc::fchownat(
                    parent.as_raw_fd(),
                    name.as_ptr(),
                    uid,
                    gid,
                    libc::AT_SYMLINK_NOFOLLOW,
                )
            })
            .with_context(|| format!("chown {shown:?}"))?;
        }
        Ok(())
    }

    /// A later entry replaces an earlier one of the same name (tar semantics).
    fn remove_existing(&self, parent: &OwnedFd, name: &CString, shown: &str) -> Result<()> {
        if let Some(st) = Self::lstat(parent, name) {
            remove_all_at(parent, name, st.st_mode & libc::S_IFMT == libc::S_IFDIR)
                .with_context(|| format!("replacing existing {shown:?}"))?;
        }
        Ok(())
    }

    pub(super) fn finish(&self) -> Result<()> {
        for (cs, mtime) in self.dir_times.iter().rev() {
            let Some((name, parents)) = cs.split_last() else {
                continue;
            };
            let parent = openat2_in_root(
                self.root.as_raw_fd(),
                &join(parents),
                libc::O_PATH | libc::O_DIRECTORY,
            )?;
            set_times_at(&parent, &cstr(name)?, *mtime)?;
        }
        Ok(())
    }
}
