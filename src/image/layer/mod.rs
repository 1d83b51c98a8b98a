//! Unpacking layer tarballs into snapshot directories.
//!
//! Every path is resolved relative to a directory fd of the snapshot root
//! with openat2(RESOLVE_IN_ROOT), and the last component is created with
//! *at() calls on the parent fd, so neither `..`, absolute paths nor
//! symlinks planted by earlier entries can make a write land outside the
//! snapshot. Whiteouts are converted to overlayfs form.

mod fsops;
mod pax;
#[cfg(test)]
mod tests;
mod unpack;
mod write;

pub use write::{write_layer, write_layer_file, write_tar, WrittenLayer};

use anyhow::{anyhow, Context, Result};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::path::Path;

use super::digest::{Digest, HashReader};
use super::sizelimit::SizeLimit;
use unpack::Unpacker;

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

/// Unpacks a (possibly compressed) layer tarball into `dest`, which must be
/// an existing directory. Returns the DiffID: the digest of the
/// uncompressed tar stream.
/// Every file's size (sparse holes included) is charged to `limit` before
/// it is written, and the uncompressed stream may not be longer than it.
pub fn unpack_layer<R: Read>(reader: R, dest: &Path, limit: &SizeLimit) -> Result<Digest> {
    let root =
        File::open(dest).with_context(|| format!("opening snapshot dir {}", dest.display()))?;
    let mut u = Unpacker {
        root: OwnedFd::from(root),
        // SAFETY: geteuid has no preconditions.
        is_root: unsafe { libc::geteuid() } == 0,
        dir_times: Vec::new(),
        limit,
    };
    let mut hr = HashReader::new(limit.reader(decompress(reader)?, "uncompressed layer"));
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

/// The DiffID of a (possibly compressed) layer blob, without unpacking it;
/// the uncompressed stream is bounded by `limit` as in `unpack_layer`.
pub fn diff_id_of<R: Read>(reader: R, limit: &SizeLimit) -> Result<Digest> {
    let mut hr = HashReader::new(limit.reader(decompress(reader)?, "uncompressed layer"));
    io::copy(&mut hr, &mut io::sink()).context("reading layer")?;
    Ok(hr.finish().0)
}
