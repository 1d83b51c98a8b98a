//! The build context (and any other source root, e.g. a stage's rootfs for `COPY --from`):
//! walking it with `.dockerignore` applied, resolving COPY/ADD sources (Go `filepath.Match`
//! wildcards, a directory copies its contents) and hashing the matched files for cache keys.
//!
//! Every open goes through openat2 `RESOLVE_IN_ROOT` from the root's fd (src/runtime/resolve.rs),
//! and entries are `lstat`ed, never followed: a symlink in the context is reported as a symlink
//! and, when named as a source, is followed only inside the root. Nothing outside the root is
//! ever read.
//!
//! Content hash (sha256, hex): over the matched files in order, one record each:
//! `dest_rel NUL kind NUL mode(octal, 07777 bits) NUL payload LF`, where payload is
//! `size NUL sha256(content)` for a file, the target for a symlink, empty for a directory.
//! Owner, mtime and hard links are left out (docker ignores them; `--chown` is part of the step
//! text), so touching a file keeps the cache, and the cached layer keeps the old mtime.

use nix::dir::Dir;
use nix::fcntl::{readlinkat, AtFlags};
use nix::sys::stat::{fstat, fstatat, FileStat, SFlag};
use sha2::{Digest as _, Sha256};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd};
use std::path::Path;

use super::config::clean_path;
use super::glob::{has_wildcards, path_match};
use super::ignore::Ignore;
use super::{BuildError, Result};
use crate::runtime::resolve::open_in_root;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the root, `/`-separated; `""` is the root itself.
    pub path: String,
    pub kind: FileKind,
    /// Permission bits including setuid/setgid/sticky (07777).
    pub mode: u32,
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
    /// Modification time (seconds, nanoseconds): COPY keeps it; not part of the hash.
    pub mtime: (i64, i64),
    /// (device, inode) when the file has several links, so a copied tree keeps hard links.
    pub link_id: Option<(u64, u64)>,
}

/// A matched source file and where it lands, relative to the destination directory (`""` is
/// the destination itself, for a copied directory). A single file copied to a destination not
/// ending in `/` is written to the destination path instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub entry: Entry,
    pub dest_rel: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub files: Vec<SourceFile>,
    /// `file` (one file), `dir` (one directory) or `multi`: docker's `created_by` prefix.
    pub kind: &'static str,
    /// Content hash, hex (see the module docs).
    pub hash: String,
}

pub struct Tree {
    root: OwnedFd,
    ignore: Ignore,
}

fn io_err(e: nix::Error) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn rel_path(rel: &str) -> &Path {
    Path::new(if rel.is_empty() { "." } else { rel })
}

impl Tree {
    /// A build context directory, filtered by its `.dockerignore`.
    pub fn open_context(dir: &Path) -> Result<Tree> {
        let mut tree = Tree::open_root(dir)?;
        let text = match tree.open_file(".dockerignore") {
            Ok(mut f) => {
                let mut s = String::new();
                f.read_to_string(&mut s).map_err(|e| {
                    BuildError::general(format!("{}/.dockerignore: {e}", dir.display()))
                })?;
                s
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
            Err(e) => {
                return Err(BuildError::general(format!(
                    "{}/.dockerignore: {e}",
                    dir.display()
                )))
            }
        };
        tree.ignore = Ignore::parse(&text)
            .map_err(|e| BuildError::general(format!("{}/.dockerignore: {e}", dir.display())))?;
        Ok(tree)
    }

    /// Any directory as a source root, unfiltered (a stage's or image's rootfs).
    pub fn open_root(dir: &Path) -> Result<Tree> {
        let root = File::open(dir)
            .map_err(|e| BuildError::general(format!("build context {}: {e}", dir.display())))?;
        let st = fstat(root.as_raw_fd())
            .map_err(|e| BuildError::general(format!("build context {}: {e}", dir.display())))?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR {
            return Err(BuildError::general(format!(
                "build context {} is not a directory",
                dir.display()
            )));
        }
        Ok(Tree {
            root: root.into(),
            ignore: Ignore::default(),
        })
    }

    /// Opens a regular file for reading, inside the root; a symlink as the last component is
    /// refused (entries are symlinks or files, never both).
    pub fn open_file(&self, rel: &str) -> io::Result<File> {
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
        let fd = open_in_root(self.root.as_raw_fd(), rel_path(rel), flags)?;
        let st = fstat(fd.as_raw_fd()).map_err(io_err)?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{rel}: not a regular file"),
            ));
        }
        Ok(File::from(fd))
    }

    /// `lstat` of a path inside the root; `None` when it does not exist or is not a file,
    /// directory or symlink.
    pub fn lstat(&self, rel: &str) -> io::Result<Option<Entry>> {
        if rel.is_empty() {
            let st = fstat(self.root.as_raw_fd()).map_err(io_err)?;
            return Ok(entry_from("", &st, None));
        }
        let (parent, name) = rel.rsplit_once('/').unwrap_or(("", rel));
        let dir = match open_in_root(
            self.root.as_raw_fd(),
            rel_path(parent),
            libc::O_PATH | libc::O_DIRECTORY,
        ) {
            Ok(d) => d,
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR)) => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let st = match fstatat(Some(dir.as_raw_fd()), name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(nix::Error::ENOENT) | Err(nix::Error::ENOTDIR) => return Ok(None),
            Err(e) => return Err(io_err(e)),
        };
        let target = if is_kind(&st, SFlag::S_IFLNK) {
            Some(link_target(
                readlinkat(Some(dir.as_raw_fd()), name).map_err(io_err)?,
            )?)
        } else {
            None
        };
        Ok(entry_from(rel, &st, target))
    }

    /// Entries below `rel` (not `rel` itself) in sorted depth-first order, `.dockerignore`
    /// applied; `max_depth` limits how many levels are listed.
    pub fn walk(&self, rel: &str, max_depth: Option<usize>) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        self.walk_into(rel, max_depth, &mut out)?;
        Ok(out)
    }

    fn walk_into(&self, rel: &str, depth: Option<usize>, out: &mut Vec<Entry>) -> io::Result<()> {
        if depth == Some(0) {
            return Ok(());
        }
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let fd = open_in_root(self.root.as_raw_fd(), rel_path(rel), flags)?;
        let mut dir = Dir::from_fd(fd.into_raw_fd()).map_err(io_err)?;
        let mut names = Vec::new();
        for e in dir.iter() {
            let e = e.map_err(io_err)?;
            let bytes = e.file_name().to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            let name = std::str::from_utf8(bytes).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{rel}/{}: file name is not UTF-8",
                        String::from_utf8_lossy(bytes)
                    ),
                )
            })?;
            names.push(name.to_string());
        }
        names.sort();
        for name in names {
            let child = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let st = fstatat(
                Some(dir.as_raw_fd()),
                name.as_str(),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(io_err)?;
            let target = if is_kind(&st, SFlag::S_IFLNK) {
                Some(link_target(
                    readlinkat(Some(dir.as_raw_fd()), name.as_str()).map_err(io_err)?,
                )?)
            } else {
                None
            };
            let Some(entry) = entry_from(&child, &st, target) else {
                continue;
            };
            let excluded = self.ignore.excluded(&child);
            let is_dir = entry.kind == FileKind::Dir;
            if !excluded {
                out.push(entry);
            }
            if is_dir && (!excluded || self.ignore.has_exceptions()) {
                self.walk_into(&child, depth.map(|d| d - 1), out)?;
            }
        }
        Ok(())
    }

    /// Follows a symlink named as a source, inside the root (absolute targets start at the root,
    /// `..` stops at it).
    fn follow(&self, rel: &str) -> io::Result<Option<Entry>> {
        let mut path = rel.to_string();
        for _ in 0..40 {
            let Some(e) = self.lstat(&path)? else {
                return Ok(None);
            };
            let FileKind::Symlink(target) = &e.kind else {
                return Ok(Some(e));
            };
            let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or("");
            let joined = if target.starts_with('/') {
                target.clone()
            } else {
                format!("/{parent}/{target}")
            };
            path = clean_path(&joined).trim_start_matches('/').to_string();
        }
        Err(io::Error::from_raw_os_error(libc::ELOOP))
    }

    /// Resolves COPY/ADD sources: errors name the Dockerfile line.
    pub fn resolve(&self, sources: &[String], instr: &str, line: usize) -> Result<Resolved> {
        let fail = |msg: String| BuildError::at(line, format!("{instr} failed: {msg}"));
        let mut files = Vec::new();
        let mut kinds = Vec::new();
        for src in sources {
            let clean = clean_path(&format!("/{src}"))
                .trim_start_matches('/')
                .to_string();
            if has_wildcards(&clean) {
                let comps: Vec<&str> = clean.split('/').collect();
                let first = comps.iter().position(|c| has_wildcards(c)).unwrap_or(0);
                let base = comps[..first].join("/");
                let candidates = self
                    .walk(&base, Some(comps.len() - first))
                    .map_err(|e| fail(format!("{src}: {e}")))?;
                let mut any = false;
                for e in candidates {
                    let hit = e.path.split('/').count() == comps.len()
                        && path_match(&clean, &e.path).map_err(|e| fail(e.to_string()))?;
                    if hit {
                        any = true;
                        let named = e.path.clone();
                        let e = self
                            .follow(&named)
                            .map_err(|e| fail(format!("{src}: {e}")))?;
                        if let Some(e) = e {
                            kinds.push(
                                self.add_source(e, &named, &mut files)
                                    .map_err(|e| fail(format!("{src}: {e}")))?,
                            );
                        }
                    }
                }
                if !any {
                    return Err(fail(format!(
                        "no source files were specified (nothing matches {src:?})"
                    )));
                }
                continue;
            }
            let missing = || {
                fail(format!("file not found in build context or excluded by .dockerignore: stat {src}: file does not exist"))
            };
            if !clean.is_empty() && self.ignore.excluded(&clean) {
                return Err(missing());
            }
            let e = self
                .follow(&clean)
                .map_err(|e| fail(format!("{src}: {e}")))?;
            let e = e.ok_or_else(missing)?;
            kinds.push(
                self.add_source(e, &clean, &mut files)
                    .map_err(|e| fail(format!("{src}: {e}")))?,
            );
        }
        let kind = match kinds.as_slice() {
            [FileKind::Dir] => "dir",
            [_] => "file",
            _ => "multi",
        };
        let hash = self
            .hash(&files)
            .map_err(|e| fail(format!("hashing sources: {e}")))?;
        Ok(Resolved { files, kind, hash })
    }

    fn add_source(
        &self,
        e: Entry,
        named: &str,
        files: &mut Vec<SourceFile>,
    ) -> io::Result<FileKind> {
        let kind = e.kind.clone();
        if e.kind != FileKind::Dir {
            let base = named.rsplit('/').next().unwrap_or(named).to_string();
            files.push(SourceFile {
                entry: e,
                dest_rel: base,
            });
            return Ok(kind);
        }
        let prefix = e.path.clone();
        let below = self.walk(&prefix, None)?;
        files.push(SourceFile {
            entry: e,
            dest_rel: String::new(),
        });
        for c in below {
            let dest_rel = if prefix.is_empty() {
                c.path.clone()
            } else {
                c.path[prefix.len() + 1..].to_string()
            };
            files.push(SourceFile { entry: c, dest_rel });
        }
        Ok(kind)
    }

    /// The content hash of matched files (see the module docs).
    pub fn hash(&self, files: &[SourceFile]) -> io::Result<String> {
        let mut h = Sha256::new();
        for f in files {
            let e = &f.entry;
            let (kind, payload) = match &e.kind {
                FileKind::Dir => ('d', String::new()),
                FileKind::Symlink(t) => ('l', t.clone()),
                FileKind::File => {
                    let mut file = self.open_file(&e.path)?;
                    let mut fh = Sha256::new();
                    io::copy(&mut file, &mut fh)?;
                    ('f', format!("{}\0{}", e.size, hex::encode(fh.finalize())))
                }
            };
            h.update(format!("{}\0{kind}\0{:o}\0{payload}\n", f.dest_rel, e.mode).as_bytes());
        }
        Ok(hex::encode(h.finalize()))
    }
}

fn is_kind(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind
}

fn link_target(t: std::ffi::OsString) -> io::Result<String> {
    t.into_string()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "symlink target is not UTF-8"))
}

fn entry_from(path: &str, st: &FileStat, target: Option<String>) -> Option<Entry> {
    let kind_is_file = is_kind(st, SFlag::S_IFREG);
    let kind = if kind_is_file {
        FileKind::File
    } else if is_kind(st, SFlag::S_IFDIR) {
        FileKind::Dir
    } else if let Some(t) = target {
        FileKind::Symlink(t)
    } else {
        // Sockets, FIFOs and devices are not part of a build context (docker skips them too).
        return None;
    };
    Some(Entry {
        path: path.to_string(),
        kind,
        mode: st.st_mode & 0o7777,
        size: st.st_size as u64,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime: (st.st_mtime, st.st_mtime_nsec),
        link_id: (st.st_nlink > 1 && kind_is_file).then_some((st.st_dev, st.st_ino)),
    })
}

#[cfg(test)]
#[path = "context_tests.rs"]
mod tests;
