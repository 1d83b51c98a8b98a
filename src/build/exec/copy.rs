//! COPY and ADD into a step's mounted rootfs: context files, a stage's or image's files, inline
//! heredoc files, ADD's local archives (extracted with the contained layer unpacker) and ADD's
//! downloads. Copied files, directories and symlinks keep their sources' mtimes, and files that
//! are hard links of each other in the source stay hard links, as with docker.

use anyhow::{Context, Result};
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use super::write::RootWriter;
use crate::build::context::{FileKind, Resolved, SourceFile, Tree};
use crate::build::plan::CopyStep;
use crate::image::layer::unpack_layer;
use crate::image::sizelimit::SizeLimit;
use crate::runtime::resolve::fd_path;

/// A file ADD downloaded: where it is and the name it lands under in a directory.
pub struct Download {
    pub path: PathBuf,
    pub name: String,
}

/// Where the sources come from: the root they are read in and whether their owners are kept
/// (`--from`; context files belong to root, as with docker).
pub struct Source<'a> {
    pub tree: &'a Tree,
    pub resolved: Option<&'a Resolved>,
    pub keep_owner: bool,
}

fn join(dir: &str, rel: &str) -> String {
    let d = dir.trim_end_matches('/');
    match (d.is_empty(), rel.is_empty()) {
        (_, true) if d.is_empty() => "/".into(),
        (_, true) => d.into(),
        (true, false) => format!("/{rel}"),
        (false, false) => format!("{d}/{rel}"),
    }
}

/// Looks like a tar (possibly gzip/zstd-compressed): what ADD extracts.
fn is_archive(f: &mut File) -> bool {
    let mut head = [0u8; 512];
    let n = f.read(&mut head).unwrap_or(0);
    let _ = f.rewind();
    let h = &head[..n];
    h.starts_with(&[0x1f, 0x8b])
        || h.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || (n >= 262 && &h[257..262] == b"ustar")
}

pub fn apply(
    w: &RootWriter,
    c: &CopyStep,
    src: &Source<'_>,
    downloads: &[Download],
    limit: &SizeLimit,
) -> Result<()> {
    let dest = c.dest.as_str();
    let single_dir = src.resolved.is_some_and(|r| r.kind == "dir");
    let into_dir = dest.ends_with('/') || single_dir || w.is_dir(dest);
    for inline in &c.inline {
        let target = if into_dir {
            join(dest, &inline.name)
        } else {
            dest.to_string()
        };
        w.file(&target, 0o644, 0, 0, &mut inline.content.as_bytes())?;
    }
    for d in downloads {
        let target = if into_dir {
            join(dest, &d.name)
        } else {
            dest.to_string()
        };
        let mut f = File::open(&d.path).with_context(|| format!("opening {}", d.path.display()))?;
        w.file(&target, 0o600, 0, 0, &mut f)?;
    }
    let Some(resolved) = src.resolved else {
        return Ok(());
    };
    let mut done = Copied::default();
    for sf in &resolved.files {
        copy_one(w, c, src, sf, into_dir, limit, &mut done)?;
    }
    // Directories last: writing into a directory changes its mtime.
    for (dir, mtime) in done.dirs.iter().rev() {
        w.set_mtime(dir, *mtime)?;
    }
    Ok(())
}

/// What a COPY wrote so far: the first target of every multiply-linked source inode, and the
/// directories whose mtimes are set once their contents are in.
#[derive(Default)]
struct Copied {
    links: HashMap<(u64, u64), String>,
    dirs: Vec<(String, (i64, i64))>,
}

fn copy_one(
    w: &RootWriter,
    c: &CopyStep,
    src: &Source<'_>,
    sf: &SourceFile,
    into_dir: bool,
    limit: &SizeLimit,
    done: &mut Copied,
) -> Result<()> {
    let e = &sf.entry;
    let target = if into_dir {
        join(&c.dest, &sf.dest_rel)
    } else {
        c.dest.clone()
    };
    let (uid, gid) = if src.keep_owner {
        (e.uid, e.gid)
    } else {
        (0, 0)
    };
    match &e.kind {
        FileKind::Dir => {
            w.dir(&target, e.mode, uid, gid)?;
            done.dirs.push((target, e.mtime));
            Ok(())
        }
        FileKind::Symlink(t) => {
            w.symlink(&target, t, uid, gid)?;
            w.set_mtime(&target, e.mtime)
        }
        FileKind::File => {
            let mut f = src
                .tree
                .open_file(&e.path)
                .with_context(|| format!("opening {}", e.path))?;
            if c.add && is_archive(&mut f) {
                let dir = if into_dir {
                    join(&c.dest, "")
                } else {
                    target.clone()
                };
                let fd = w.mkdir_all(&dir)?;
                unpack_layer(f, &fd_path(&fd), limit)
                    .with_context(|| format!("ADD: extracting {} into {dir}", e.path))?;
                return Ok(());
            }
            if let Some(first) = e.link_id.and_then(|id| done.links.get(&id)) {
                return w.hard_link(first, &target);
            }
            w.file(&target, e.mode, uid, gid, &mut f)?;
            w.set_mtime(&target, e.mtime)?;
            if let Some(id) = e.link_id {
                done.links.insert(id, target);
            }
            Ok(())
        }
    }
}

/// The name a download gets in a destination directory: the URL's last path segment.
pub fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    let name = after_host.rsplit('/').next().unwrap_or("");
    if name.is_empty() {
        "index.html".into()
    } else {
        name.into()
    }
}

/// Downloads `url` into `dest` with a timeout and at most `limit` bytes; returns the content
/// hash (hex sha256).
pub fn download(url: &str, dest: &Path, limit: &SizeLimit) -> Result<String> {
    use sha2::{Digest as _, Sha256};
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(30))
        .timeout(std::time::Duration::from_secs(600))
        .build();
    let resp = agent
        .get(url)
        .call()
        .with_context(|| format!("ADD {url}: download failed"))?;
    let mut r = resp.into_reader().take(limit.max().saturating_add(1));
    let mut f = File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let n = r
            .read(&mut buf)
            .with_context(|| format!("ADD {url}: download failed"))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limit.max() {
            anyhow::bail!(
                "ADD {url}: larger than the size limit of {} bytes",
                limit.max()
            );
        }
        h.update(&buf[..n]);
        std::io::Write::write_all(&mut f, &buf[..n])
            .with_context(|| format!("writing {}", dest.display()))?;
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_joins() {
        assert_eq!(url_file_name("https://h/a/b.tar.gz?x=1"), "b.tar.gz");
        assert_eq!(url_file_name("http://h/"), "index.html");
        assert_eq!(url_file_name("http://h"), "index.html");
        assert_eq!(join("/app/", "x/y"), "/app/x/y");
        assert_eq!(join("/", "x"), "/x");
        assert_eq!(join("/app/", ""), "/app");
        assert_eq!(join("/", ""), "/");
    }
}
