//! Unpacking layer tarballs into snapshot directories.
//!
//! Every path is resolved relative to a directory fd of the snapshot root
//! with openat2(RESOLVE_IN_ROOT), and the last component is created with
//! *at() calls on the parent fd, so neither `..`, absolute paths nor
//! symlinks planted by earlier entries can make a write land outside the
//! snapshot. Whiteouts are converted to overlayfs form.

use anyhow::{anyhow, bail, Context, Result};
use std::ffi::CString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use super::digest::{Digest, HashReader};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn cstr(s: &[u8]) -> Result<CString> {
    CString::new(s).map_err(|_| anyhow!("path contains a NUL byte"))
}

fn openat2_in_root(root: RawFd, path: &[u8], flags: i32) -> io::Result<OwnedFd> {
    let p = CString::new(if path.is_empty() { b"." } else { path })
        .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: pointers are valid for the duration of the call; the kernel
    // copies `how` and the path.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root,
            p.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the syscall returned a fresh fd that we now own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn check(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Wraps `r` in the right decompressor, chosen by magic bytes.
pub fn decompress<'a, R: Read + 'a>(r: R) -> Result<Box<dyn Read + 'a>> {
    let mut br = BufReader::with_capacity(256 * 1024, r);
    let head = br.fill_buf().context("reading layer header")?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::bufread::MultiGzDecoder::new(br)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let dec = ruzstd::decoding::StreamingDecoder::new(br)
            .map_err(|e| anyhow!("bad zstd stream: {e}"))?;
        Ok(Box::new(dec))
    } else {
        Ok(Box::new(br))
    }
}

/// Which compression a blob uses, by its magic bytes.
pub fn sniff_compression(head: &[u8]) -> &'static str {
    if head.starts_with(&[0x1f, 0x8b]) {
        "gzip"
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        "zstd"
    } else {
        "none"
    }
}

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

struct Unpacker {
    root: OwnedFd,
    is_root: bool,
    dir_times: Vec<(Vec<Vec<u8>>, i64)>,
}

impl Unpacker {
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

    fn entry(&mut self, entry: &mut tar::Entry<'_, impl Read>) -> Result<()> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let cs = components(&raw)?;
        let Some((name, parents)) = cs.split_last() else {
            return Ok(()); // the root itself: the snapshot dir keeps its own mode
        };
        let parent = self.ensure_dir(parents)?;

        if let Some(target) = name.strip_prefix(b".wh.") {
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
            self.remove_existing(&parent, &t, &shown)?;
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
            return Ok(());
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
                self.remove_existing(&parent, &cname, &shown)?;
                // SAFETY: valid fd and C string; O_EXCL|O_NOFOLLOW so a planted
                // symlink can't redirect the write.
                let fd = unsafe {
                    libc::openat(
                        parent.as_raw_fd(),
                        cname.as_ptr(),
                        libc::O_WRONLY
                            | libc::O_CREAT
                            | libc::O_EXCL
                            | libc::O_NOFOLLOW
                            | libc::O_CLOEXEC,
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
            T::Link => {
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
                    self.remove_existing(&parent, &cname, &shown)?;
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
            }
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

    fn finish(&self) -> Result<()> {
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

fn openat_nofollow(parent: &OwnedFd, name: &CString, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: valid fd and C string.
    let fd = unsafe {
        libc::openat(
            parent.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn remove_all_at(parent: &OwnedFd, name: &CString, is_dir: bool) -> io::Result<()> {
    if !is_dir {
        // SAFETY: valid fd and C string.
        return check(unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), 0) });
    }
    let dfd = openat_nofollow(parent, name, libc::O_RDONLY | libc::O_DIRECTORY)?;
    let dup = dfd.try_clone()?;
    let mut dir = nix::dir::Dir::from_fd(std::os::fd::IntoRawFd::into_raw_fd(dup))
        .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
    let mut children = Vec::new();
    for ent in dir.iter() {
        let ent = ent.map_err(|e| io::Error::from_raw_os_error(e as i32))?;
        let n = ent.file_name().to_bytes();
        if n == b"." || n == b".." {
            continue;
        }
        children.push((
            CString::from(ent.file_name()),
            ent.file_type() == Some(nix::dir::Type::Directory),
        ));
    }
    for (c, d) in children {
        remove_all_at(&dfd, &c, d)?;
    }
    // SAFETY: valid fd and C string.
    check(unsafe { libc::unlinkat(parent.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
}

fn set_times_at(parent: &OwnedFd, name: &CString, mtime: i64) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let times = [ts, ts];
    // SAFETY: valid fd, C string and two timespecs.
    check(unsafe {
        libc::utimensat(
            parent.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

fn set_xattr_fd(fd: &OwnedFd, key: &[u8], val: &[u8]) -> io::Result<()> {
    let k = CString::new(key).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid fd, C string and buffer.
    check(unsafe {
        libc::fsetxattr(
            fd.as_raw_fd(),
            k.as_ptr(),
            val.as_ptr() as *const libc::c_void,
            val.len(),
            0,
        )
    })
}

fn set_xattr_link(parent: &OwnedFd, name: &CString, key: &[u8], val: &[u8]) -> io::Result<()> {
    // lsetxattr needs a path; going through the already-resolved parent fd
    // keeps it contained, and lsetxattr never follows the final symlink.
    let mut p = format!("/proc/self/fd/{}/", parent.as_raw_fd()).into_bytes();
    p.extend_from_slice(name.as_bytes());
    let p = CString::new(p).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let k = CString::new(key).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid C strings and buffer.
    check(unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            k.as_ptr(),
            val.as_ptr() as *const libc::c_void,
            val.len(),
            0,
        )
    })
}

/// What pax extended headers override: xattrs, and numbers too large for
/// the ustar fields (Go's archive/tar writes big uids this way).
struct PaxInfo {
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    uid: Option<u32>,
    gid: Option<u32>,
    mtime: Option<i64>,
}

fn pax_info(entry: &mut tar::Entry<'_, impl Read>) -> Result<PaxInfo> {
    let mut out = PaxInfo {
        xattrs: Vec::new(),
        uid: None,
        gid: None,
        mtime: None,
    };
    if let Some(exts) = entry.pax_extensions().context("reading pax headers")? {
        for ext in exts {
            let ext = ext.context("reading pax header")?;
            let key = ext.key_bytes();
            let val = || String::from_utf8_lossy(ext.value_bytes()).into_owned();
            if let Some(k) = key.strip_prefix(b"SCHILY.xattr.") {
                out.xattrs.push((k.to_vec(), ext.value_bytes().to_vec()));
            } else if key == b"uid" {
                out.uid = Some(
                    val()
                        .trim()
                        .parse()
                        .with_context(|| format!("bad pax uid {:?}", val()))?,
                );
            } else if key == b"gid" {
                out.gid = Some(
                    val()
                        .trim()
                        .parse()
                        .with_context(|| format!("bad pax gid {:?}", val()))?,
                );
            } else if key == b"mtime" {
                let v = val();
                let secs = v.trim().split('.').next().unwrap_or("0");
                out.mtime = Some(
                    secs.parse()
                        .with_context(|| format!("bad pax mtime {v:?}"))?,
                );
            }
        }
    }
    Ok(out)
}

/// Unpacks a (possibly compressed) layer tarball into `dest`, which must be
/// an existing directory. Returns the DiffID: the digest of the
/// uncompressed tar stream.
pub fn unpack_layer<R: Read>(reader: R, dest: &Path) -> Result<Digest> {
    let root =
        File::open(dest).with_context(|| format!("opening snapshot dir {}", dest.display()))?;
    let mut u = Unpacker {
        root: OwnedFd::from(root),
        // SAFETY: geteuid has no preconditions.
        is_root: unsafe { libc::geteuid() } == 0,
        dir_times: Vec::new(),
    };
    let mut hr = HashReader::new(decompress(reader)?);
    {
        let mut ar = tar::Archive::new(&mut hr);
        for e in ar.entries().context("reading layer tar")? {
            let mut e = e.context("reading layer tar entry (truncated or corrupt archive?)")?;
            u.entry(&mut e)?;
        }
    }
    // The DiffID covers the whole stream, including end-of-archive padding.
    io::copy(&mut hr, &mut io::sink()).context("reading end of layer tar")?;
    u.finish()?;
    Ok(hr.finish().0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    fn hdr(path: &str, kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(1_600_000_000);
        h.set_uid(0);
        h.set_gid(0);
        // set_path refuses `..`; write the raw name so hostile cases are real.
        let name = &mut h.as_old_mut().name;
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        h
    }

    enum E<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Sym(&'a str, &'a str),
        Hard(&'a str, &'a str),
    }

    fn build(entries: &[E]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            match e {
                E::File(p, data) => {
                    let h = hdr(p, tar::EntryType::Regular, data.len() as u64);
                    b.append(&h, *data).unwrap();
                }
                E::Dir(p) => b
                    .append(&hdr(p, tar::EntryType::Directory, 0), io::empty())
                    .unwrap(),
                E::Sym(p, t) | E::Hard(p, t) => {
                    let kind = if matches!(e, E::Sym(..)) {
                        tar::EntryType::Symlink
                    } else {
                        tar::EntryType::Link
                    };
                    let mut h = hdr(p, kind, 0);
                    let ln = &mut h.as_old_mut().linkname;
                    ln[..t.len()].copy_from_slice(t.as_bytes());
                    h.set_cksum();
                    b.append(&h, io::empty()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    struct Sandbox {
        _t: tempfile::TempDir,
        root: std::path::PathBuf,
        outside: std::path::PathBuf,
    }

    fn sandbox() -> Sandbox {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("snap");
        let outside = t.path().join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        Sandbox {
            _t: t,
            root,
            outside,
        }
    }

    fn outside_is_empty(s: &Sandbox) -> bool {
        std::fs::read_dir(&s.outside).unwrap().next().is_none()
            && std::fs::read_dir(s.root.parent().unwrap()).unwrap().count() == 2
    }

    #[test]
    fn dotdot_is_rejected() {
        let s = sandbox();
        let tar = build(&[E::File("../outside/pwned", b"x")]);
        let err = unpack_layer(&tar[..], &s.root).unwrap_err();
        assert!(format!("{err:#}").contains("'..'"), "{err:#}");
        assert!(outside_is_empty(&s));
    }

    #[test]
    fn absolute_path_is_contained() {
        let s = sandbox();
        let abs = format!("{}/pwned", s.outside.display());
        let tar = build(&[E::File(&abs, b"x")]);
        unpack_layer(&tar[..], &s.root).unwrap();
        assert!(outside_is_empty(&s));
        let inside = s.root.join(abs.trim_start_matches('/'));
        assert_eq!(std::fs::read(inside).unwrap(), b"x");
    }

    #[test]
    fn write_through_planted_absolute_symlink_is_contained() {
        let s = sandbox();
        let target = s.outside.display().to_string();
        let tar = build(&[E::Sym("evil", &target), E::File("evil/pwned", b"x")]);
        // Either contained under root/<target> or refused; never outside.
        let r = unpack_layer(&tar[..], &s.root);
        assert!(outside_is_empty(&s), "escaped: {r:?}");
        if r.is_ok() {
            let inside = s.root.join(target.trim_start_matches('/')).join("pwned");
            assert_eq!(std::fs::read(inside).unwrap(), b"x");
        }
    }

    #[test]
    fn write_through_planted_relative_symlink_is_contained() {
        let s = sandbox();
        let tar = build(&[
            E::Dir("a"),
            E::Sym("a/up", "../../outside"),
            E::File("a/up/pwned", b"x"),
        ]);
        let r = unpack_layer(&tar[..], &s.root);
        assert!(outside_is_empty(&s), "escaped: {r:?}");
    }

    #[test]
    fn overwrite_planted_symlink_replaces_link_not_target() {
        let s = sandbox();
        let victim = s.outside.join("victim");
        std::fs::write(&victim, b"orig").unwrap();
        let tar = build(&[E::Sym("f", victim.to_str().unwrap()), E::File("f", b"new")]);
        unpack_layer(&tar[..], &s.root).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"orig");
        assert_eq!(std::fs::read(s.root.join("f")).unwrap(), b"new");
    }

    #[test]
    fn hardlink_outside_is_rejected_or_contained() {
        let s = sandbox();
        let victim = s.outside.join("victim");
        std::fs::write(&victim, b"secret").unwrap();
        let tar = build(&[E::Hard("l", "../outside/victim")]);
        assert!(unpack_layer(&tar[..], &s.root).is_err());
        let tar = build(&[E::Hard("l", victim.to_str().unwrap())]);
        assert!(unpack_layer(&tar[..], &s.root).is_err());
        assert!(!s.root.join("l").exists());
        // Through a planted symlink dir: resolves inside root, so target missing.
        let tar = build(&[
            E::Sym("d", s.outside.to_str().unwrap()),
            E::Hard("l2", "d/victim"),
        ]);
        assert!(unpack_layer(&tar[..], &s.root).is_err());
        assert_eq!(std::fs::metadata(&victim).unwrap().nlink(), 1);
    }

    #[test]
    fn whiteouts_become_overlay_form() {
        let s = sandbox();
        let tar = build(&[
            E::Dir("etc"),
            E::File("etc/.wh.passwd", b""),
            E::Dir("opq"),
            E::File("opq/.wh..wh..opq", b""),
            E::File("opq/keep", b"k"),
        ]);
        unpack_layer(&tar[..], &s.root).unwrap();
        let m = std::fs::symlink_metadata(s.root.join("etc/passwd")).unwrap();
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), 0);
        assert!(!s.root.join("etc/.wh.passwd").exists());
        let p = CString::new(s.root.join("opq").as_os_str().as_bytes()).unwrap();
        let mut buf = [0u8; 8];
        // SAFETY: valid C strings and buffer.
        let n = unsafe {
            libc::getxattr(
                p.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        };
        assert_eq!(n, 1, "opaque xattr missing");
        assert_eq!(buf[0], b'y');
        assert!(!s.root.join("opq/.wh..wh..opq").exists());
    }

    #[test]
    fn hardlinks_symlinks_modes_mtimes() {
        let s = sandbox();
        let tar = build(&[
            E::Dir("d"),
            E::File("d/a", b"hello"),
            E::Hard("d/b", "d/a"),
            E::Sym("d/s", "a"),
        ]);
        let diff = unpack_layer(&tar[..], &s.root).unwrap();
        assert_eq!(diff, Digest::of(&tar));
        let a = std::fs::metadata(s.root.join("d/a")).unwrap();
        assert_eq!(a.nlink(), 2);
        assert_eq!(a.mode() & 0o7777, 0o644);
        assert_eq!(a.mtime(), 1_600_000_000);
        assert_eq!(
            std::fs::read_link(s.root.join("d/s")).unwrap(),
            Path::new("a")
        );
        assert_eq!(
            std::fs::metadata(s.root.join("d")).unwrap().mtime(),
            1_600_000_000
        );
    }

    #[test]
    fn gzip_layers_are_detected() {
        let s = sandbox();
        let tar = build(&[E::File("x", b"1")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        let diff = unpack_layer(&gz[..], &s.root).unwrap();
        assert_eq!(diff, Digest::of(&tar));
        assert_eq!(std::fs::read(s.root.join("x")).unwrap(), b"1");
    }

    #[test]
    fn devices_ownership_xattrs_and_zstd() {
        let s = sandbox();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = hdr("null", tar::EntryType::Char, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_mode(0o666);
        h.set_cksum();
        b.append(&h, io::empty()).unwrap();
        b.append(&hdr("fifo", tar::EntryType::Fifo, 0), io::empty())
            .unwrap();
        // pax record carrying an xattr, then the file it applies to.
        let rec = |k: &str, v: &str| {
            let body = format!(" {k}={v}\n");
            let mut n = body.len() + 1;
            while format!("{n}{body}").len() != n {
                n += 1;
            }
            format!("{n}{body}")
        };
        let pax = rec("SCHILY.xattr.user.berth", "yes") + &rec("uid", "3000000");
        b.append(
            &hdr("pax", tar::EntryType::XHeader, pax.len() as u64),
            pax.as_bytes(),
        )
        .unwrap();
        let mut h = hdr("owned", tar::EntryType::Regular, 2);
        h.set_uid(1234);
        h.set_gid(5678);
        h.set_mode(0o4750);
        h.set_cksum();
        b.append(&h, &b"hi"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let zst = ruzstd::encoding::compress_to_vec(
            &tar[..],
            ruzstd::encoding::CompressionLevel::Fastest,
        );
        assert_eq!(sniff_compression(&zst), "zstd");
        let diff = unpack_layer(&zst[..], &s.root).unwrap();
        assert_eq!(diff, Digest::of(&tar));
        let null = std::fs::symlink_metadata(s.root.join("null")).unwrap();
        assert!(null.file_type().is_char_device());
        assert_eq!(null.rdev(), libc::makedev(1, 3));
        assert!(std::fs::symlink_metadata(s.root.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());
        let owned = std::fs::metadata(s.root.join("owned")).unwrap();
        assert_eq!(
            (owned.uid(), owned.gid()),
            (3_000_000, 5678),
            "pax uid ignored"
        );
        assert_eq!(owned.mode() & 0o7777, 0o4750, "setuid lost to chown");
        let p = CString::new(s.root.join("owned").as_os_str().as_bytes()).unwrap();
        let mut buf = [0u8; 8];
        // SAFETY: valid C strings and buffer.
        let n = unsafe {
            libc::getxattr(
                p.as_ptr(),
                c"user.berth".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        assert_eq!(&buf[..n.max(0) as usize], b"yes");
    }

    #[test]
    fn truncated_layer_is_an_error() {
        let s = sandbox();
        let tar = build(&[E::File("x", &[7u8; 4000])]);
        assert!(unpack_layer(&tar[..1000], &s.root).is_err());
    }
}
