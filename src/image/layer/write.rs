//! Writing a layer tarball from a directory in overlayfs upper-dir form (a container's or a
//! build step's upper dir, or a snapshot): the inverse of the unpacker's whiteout conversion.
//! A 0:0 character device becomes an empty `.wh.<name>` file, a directory marked
//! `trusted.overlay.opaque=y` gets a `.wh..wh..opq` entry. Entries are sorted by name and mtimes
//! kept, so the same tree always gives the same DiffID.
//!
//! The directory is walked with `lstat` and files are opened with `O_NOFOLLOW`: the tree was
//! written by a container, so a symlink in it is archived as a symlink and never followed.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::image::digest::{Digest, HashWriter};

const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What a written layer is: its compressed digest and size, and its DiffID.
#[derive(Debug, Clone)]
pub struct WrittenLayer {
    pub digest: Digest,
    pub size: u64,
    pub diff_id: Digest,
}

/// Tars `dir` (upper-dir form) into `out` gzip-compressed, hashing the uncompressed stream (the
/// DiffID) and the compressed one (the blob digest) on the way: one pass, nothing held in memory.
pub fn write_layer<W: Write>(dir: &Path, out: W) -> Result<(W, WrittenLayer)> {
    let blob = HashWriter::new(out);
    let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::fast());
    let mut tb = tar::Builder::new(HashWriter::new(gz));
    tb.mode(tar::HeaderMode::Complete);
    let mut w = Walker {
        links: HashMap::new(),
    };
    w.dir(&mut tb, dir, Path::new(""))?;
    let raw = tb.into_inner().context("finishing layer tar")?;
    let (gz, diff_id, _) = raw.finish();
    let blob = gz.finish().context("finishing layer compression")?;
    let (out, digest, size) = blob.finish();
    Ok((
        out,
        WrittenLayer {
            digest,
            size,
            diff_id,
        },
    ))
}

struct Walker {
    /// (dev, ino) of files with several links -> the first name archived.
    links: HashMap<(u64, u64), PathBuf>,
}

fn header_for(md: &fs::Metadata, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(md.mode() & 0o7777);
    h.set_uid(md.uid() as u64);
    h.set_gid(md.gid() as u64);
    h.set_mtime(md.mtime().max(0) as u64);
    h.set_size(0);
    h
}

fn is_whiteout(md: &fs::Metadata) -> bool {
    md.file_type().is_char_device() && md.rdev() == 0
}

fn is_opaque(p: &Path) -> bool {
    matches!(xattr_get(p, OPAQUE_XATTR), Some(v) if v == b"y")
}

fn xattr_get(p: &Path, name: &str) -> Option<Vec<u8>> {
    let cp = std::ffi::CString::new(p.as_os_str().as_bytes()).ok()?;
    let cn = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid C strings and a buffer of the size given.
    let n =
        unsafe { libc::lgetxattr(cp.as_ptr(), cn.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return None;
    }
    buf.truncate(n as usize);
    Some(buf)
}

impl Walker {
    fn dir<W: Write>(&mut self, tb: &mut tar::Builder<W>, dir: &Path, rel: &Path) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .with_context(|| format!("listing {}", dir.display()))?;
        names.sort();
        if !rel.as_os_str().is_empty() && is_opaque(dir) {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_size(0);
            tb.append_data(&mut h, rel.join(".wh..wh..opq"), io::empty())
                .with_context(|| format!("archiving {}", rel.display()))?;
        }
        for name in names {
            self.entry(tb, &dir.join(&name), &rel.join(&name))?;
        }
        Ok(())
    }

    fn entry<W: Write>(&mut self, tb: &mut tar::Builder<W>, p: &Path, rel: &Path) -> Result<()> {
        let md = fs::symlink_metadata(p).with_context(|| format!("stat {}", p.display()))?;
        let ft = md.file_type();
        let ctx = || format!("archiving {}", rel.display());
        if is_whiteout(&md) {
            let mut name = std::ffi::OsString::from(".wh.");
            name.push(rel.file_name().unwrap_or_default());
            let wh = rel.with_file_name(name);
            let mut h = header_for(&md, tar::EntryType::Regular);
            h.set_mode(0o644);
            return tb.append_data(&mut h, wh, io::empty()).with_context(ctx);
        }
        if ft.is_dir() {
            let mut h = header_for(&md, tar::EntryType::Directory);
            tb.append_data(&mut h, rel, io::empty()).with_context(ctx)?;
            return self.dir(tb, p, rel);
        }
        if ft.is_symlink() {
            let target = fs::read_link(p).with_context(|| format!("readlink {}", p.display()))?;
            let mut h = header_for(&md, tar::EntryType::Symlink);
            return tb.append_link(&mut h, rel, target).with_context(ctx);
        }
        if md.nlink() > 1 && !ft.is_dir() {
            let key = (md.dev(), md.ino());
            if let Some(first) = self.links.get(&key) {
                let mut h = header_for(&md, tar::EntryType::Link);
                return tb.append_link(&mut h, rel, first).with_context(ctx);
            }
            self.links.insert(key, rel.to_path_buf());
        }
        if ft.is_file() {
            let f = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(p)
                .with_context(|| format!("opening {}", p.display()))?;
            let mut h = header_for(&md, tar::EntryType::Regular);
            h.set_size(md.len());
            return tb
                .append_data(&mut h, rel, io::Read::take(f, md.len()))
                .with_context(ctx);
        }
        let kind = if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else if ft.is_fifo() {
            tar::EntryType::Fifo
        } else {
            return Ok(()); // sockets are not archived (as tar does)
        };
        let mut h = header_for(&md, kind);
        let rdev = md.rdev();
        h.set_device_major(libc::major(rdev)).with_context(ctx)?;
        h.set_device_minor(libc::minor(rdev)).with_context(ctx)?;
        tb.append_data(&mut h, rel, io::empty()).with_context(ctx)
    }
}

/// A plain (uncompressed) tar of `dir` into `out` (`export`); whiteouts are skipped by callers
/// that pass a merged rootfs, which has none.
pub fn write_tar<W: Write>(dir: &Path, out: W) -> Result<W> {
    let mut tb = tar::Builder::new(out);
    tb.mode(tar::HeaderMode::Complete);
    let mut w = Walker {
        links: HashMap::new(),
    };
    w.dir(&mut tb, dir, Path::new(""))?;
    tb.into_inner().context("finishing tar")
}

/// Writes the layer of `dir` to the file `path`.
pub fn write_layer_file(dir: &Path, path: &Path) -> Result<WrittenLayer> {
    let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let (bw, l) = write_layer(dir, io::BufWriter::with_capacity(256 * 1024, f))?;
    bw.into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::sizelimit::SizeLimit;
    use std::os::unix::fs::symlink;

    #[test]
    fn round_trips_through_unpack_with_whiteouts() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP: whiteouts (mknod 0:0) and trusted xattrs need root");
            return;
        }
        let t = tempfile::tempdir().unwrap();
        let up = t.path().join("up");
        fs::create_dir_all(up.join("d/sub")).unwrap();
        fs::create_dir_all(up.join("opq")).unwrap();
        fs::write(up.join("d/sub/f"), b"hello").unwrap();
        fs::hard_link(up.join("d/sub/f"), up.join("d/hl")).unwrap();
        symlink("../../etc/passwd", up.join("d/ln")).unwrap();
        nix::sys::stat::mknod(
            &up.join("gone"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        let p = std::ffi::CString::new(up.join("opq").as_os_str().as_bytes()).unwrap();
        // SAFETY: valid C strings and value buffer.
        let r = unsafe {
            libc::setxattr(
                p.as_ptr(),
                c"trusted.overlay.opaque".as_ptr(),
                b"y".as_ptr().cast(),
                1,
                0,
            )
        };
        assert_eq!(r, 0);
        let blob = t.path().join("layer.tgz");
        let l = write_layer_file(&up, &blob).unwrap();
        let again = write_layer_file(&up, &t.path().join("again.tgz")).unwrap();
        assert_eq!(l.diff_id, again.diff_id, "deterministic");
        assert_eq!(l.size, fs::metadata(&blob).unwrap().len());
        assert_eq!(l.digest, Digest::of(&fs::read(&blob).unwrap()));
        // The tar has docker's whiteout names.
        let mut names = Vec::new();
        let f = File::open(&blob).unwrap();
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
        for e in ar.entries().unwrap() {
            names.push(e.unwrap().path().unwrap().to_string_lossy().into_owned());
        }
        assert!(names.contains(&".wh.gone".to_string()), "{names:?}");
        assert!(names.contains(&"opq/.wh..wh..opq".to_string()), "{names:?}");
        // Unpacked again: the same upper-dir form.
        let out = t.path().join("out");
        fs::create_dir(&out).unwrap();
        let limit = SizeLimit::from_flag_or_env(None).unwrap();
        let d =
            crate::image::layer::unpack_layer(File::open(&blob).unwrap(), &out, &limit).unwrap();
        assert_eq!(d, l.diff_id);
        assert_eq!(fs::read(out.join("d/sub/f")).unwrap(), b"hello");
        assert_eq!(
            fs::metadata(out.join("d/hl")).unwrap().ino(),
            fs::metadata(out.join("d/sub/f")).unwrap().ino()
        );
        assert_eq!(
            fs::read_link(out.join("d/ln")).unwrap(),
            Path::new("../../etc/passwd")
        );
        let md = fs::symlink_metadata(out.join("gone")).unwrap();
        assert!(is_whiteout(&md));
        assert!(is_opaque(&out.join("opq")));
    }
}
