//! pax extended headers: xattrs and numbers that don't fit ustar fields.

use anyhow::{Context, Result};
use std::io::Read;

/// What pax extended headers override: xattrs, and numbers too large for
/// the ustar fields (Go's archive/tar writes big uids this way).
pub(super) struct PaxInfo {
    pub(super) xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) uid: Option<u32>,
    pub(super) gid: Option<u32>,
    pub(super) mtime: Option<i64>,
}

pub(super) fn pax_info(entry: &mut tar::Entry<'_, impl Read>) -> Result<PaxInfo> {
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
