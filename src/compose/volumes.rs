//! Service `volumes` (short `src:dst[:opts]` and long syntax) and `tmpfs`. As compose decides:
//! a source starting with `/`, `.` or `~` is a bind (relative ones resolved against the project
//! directory, `~` against HOME), anything else names a volume.

use std::path::{Component, Path, PathBuf};

use super::conv::{boolean, bytes, child, file_mode, is_extension, map, string, unsupported};
use super::model::{Mount, MountType};
use super::node::Node;
use super::ComposeError;

pub struct PathCtx<'a> {
    pub base: &'a Path,
    pub home: Option<&'a str>,
}

impl PathCtx<'_> {
    /// Absolute, lexically normalized (`./data/../x` → `<base>/x`), as compose prints them.
    pub fn resolve(&self, p: &str) -> PathBuf {
        let expanded = match (p.strip_prefix('~'), self.home) {
            (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
                PathBuf::from(format!("{home}{rest}"))
            }
            _ => PathBuf::from(p),
        };
        let joined = if expanded.is_absolute() {
            expanded
        } else {
            self.base.join(expanded)
        };
        normalize(&joined)
    }
}

pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

fn is_bind_source(s: &str) -> bool {
    s.starts_with('/') || s.starts_with('.') || s.starts_with('~')
}

pub fn parse_volumes(n: &Node, path: &str, ctx: &PathCtx) -> Result<Vec<Mount>, ComposeError> {
    let Node::Seq(items) = n else {
        return Err(ComposeError::invalid(path, "must be a list"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let p = format!("{path}[{i}]");
            match item {
                Node::Map(_) => parse_long(item, &p, ctx),
                other => parse_short(&string(other, &p)?, &p, ctx),
            }
        })
        .collect()
}

fn check_target(t: &str, path: &str) -> Result<(), ComposeError> {
    if !t.starts_with('/') {
        return Err(ComposeError::invalid(
            path,
            format!("container path {t:?} must be absolute"),
        ));
    }
    Ok(())
}

pub fn parse_short(spec: &str, path: &str, ctx: &PathCtx) -> Result<Mount, ComposeError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, target, opts) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, o] => (Some(*s), *t, Some(*o)),
        _ => {
            return Err(ComposeError::invalid(
                path,
                format!("invalid volume {spec:?}"),
            ))
        }
    };
    check_target(target, path)?;
    let mut m = match src {
        None => Mount::new(MountType::Volume, None, target.into()),
        Some("") => {
            return Err(ComposeError::invalid(
                path,
                format!("invalid volume {spec:?}"),
            ))
        }
        Some(s) if is_bind_source(s) => {
            let mut m = Mount::new(
                MountType::Bind,
                Some(ctx.resolve(s).to_string_lossy().into_owned()),
                target.into(),
            );
            // Short syntax creates a missing host directory, as docker's -v does.
            m.create_host_path = true;
            m
        }
        Some(s) => Mount::new(MountType::Volume, Some(s.into()), target.into()),
    };
    for opt in opts.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => m.read_only = true,
            "rw" => m.read_only = false,
            "z" | "Z" if m.kind == MountType::Bind => m.selinux = opt.chars().next(),
            "nocopy" if m.kind == MountType::Volume => m.nocopy = true,
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate"
                if m.kind == MountType::Bind =>
            {
                m.propagation = Some(opt.into())
            }
            // macOS consistency hints: meaningless on Linux, accepted as docker does.
            "consistent" | "cached" | "delegated" => {}
            _ => {
                return Err(ComposeError::invalid(
                    path,
                    format!("invalid volume option {opt:?} in {spec:?}"),
                ))
            }
        }
    }
    Ok(m)
}

fn parse_long(n: &Node, path: &str, ctx: &PathCtx) -> Result<Mount, ComposeError> {
    let m = map(n, path)?;
    let kind = match m.get("type") {
        Some(t) => match string(t, &child(path, "type"))?.as_str() {
            "volume" => MountType::Volume,
            "bind" => MountType::Bind,
            "tmpfs" => MountType::Tmpfs,
            other => {
                return Err(ComposeError::invalid(
                    &child(path, "type"),
                    format!("unsupported volume type {other:?}"),
                ))
            }
        },
        None => return Err(ComposeError::invalid(&child(path, "type"), "is required")),
    };
    let target = match m.get("target") {
        Some(t) => string(t, &child(path, "target"))?,
        None => return Err(ComposeError::invalid(&child(path, "target"), "is required")),
    };
    check_target(&target, &child(path, "target"))?;
    let mut out = Mount::new(kind, None, target);
    for (k, v) in m {
        let p = child(path, k);
        match (k.as_str(), kind) {
            ("type" | "target", _) => {}
            ("source", MountType::Bind) => {
                out.source = Some(ctx.resolve(&string(v, &p)?).to_string_lossy().into_owned())
            }
            ("source", MountType::Volume) => out.source = Some(string(v, &p)?),
            ("read_only", _) => out.read_only = boolean(v, &p)?,
            ("consistency", _) => {}
            ("bind", MountType::Bind) => {
                for (bk, bv) in map(v, &p)? {
                    let bp = child(&p, bk);
                    match bk.as_str() {
                        "propagation" => out.propagation = Some(string(bv, &bp)?),
                        "create_host_path" => out.create_host_path = boolean(bv, &bp)?,
                        "selinux" => match string(bv, &bp)?.as_str() {
                            "z" => out.selinux = Some('z'),
                            "Z" => out.selinux = Some('Z'),
                            o => return Err(ComposeError::invalid(&bp, format!("invalid {o:?}"))),
                        },
                        bk if is_extension(bk) => {}
                        _ => return Err(unsupported(&p, bk)),
                    }
                }
            }
            ("volume", MountType::Volume) => {
                for (vk, vv) in map(v, &p)? {
                    let vp = child(&p, vk);
                    match vk.as_str() {
                        "nocopy" => out.nocopy = boolean(vv, &vp)?,
                        "subpath" => out.subpath = Some(string(vv, &vp)?),
                        vk if is_extension(vk) => {}
                        _ => return Err(unsupported(&p, vk)),
                    }
                }
            }
            ("tmpfs", MountType::Tmpfs) => {
                for (tk, tv) in map(v, &p)? {
                    let tp = child(&p, tk);
                    match tk.as_str() {
                        "size" => out.tmpfs_size = Some(bytes(tv, &tp)?),
                        "mode" => out.tmpfs_mode = Some(file_mode(tv, &tp)?),
                        tk if is_extension(tk) => {}
                        _ => return Err(unsupported(&p, tk)),
                    }
                }
            }
            (k, _) if is_extension(k) => {}
            _ => return Err(unsupported(path, k)),
        }
    }
    if kind == MountType::Bind && out.source.is_none() {
        return Err(ComposeError::invalid(
            &child(path, "source"),
            "is required for a bind",
        ));
    }
    Ok(out)
}

/// The merge identity of a `volumes` entry: its container path.
pub fn merge_key(n: &Node) -> Option<String> {
    match n {
        Node::Map(m) => m.get("target")?.scalar_text(),
        other => {
            let s = other.scalar_text()?;
            let parts: Vec<&str> = s.split(':').collect();
            Some(match parts.as_slice() {
                [t] => t.to_string(),
                [_, t, ..] => t.to_string(),
                _ => s,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> PathCtx<'static> {
        PathCtx {
            base: Path::new("/proj"),
            home: Some("/home/u"),
        }
    }

    #[test]
    fn short_named_bind_anonymous() {
        let m = parse_short("data:/var/lib/mysql", "p", &ctx()).unwrap();
        assert_eq!(m.kind, MountType::Volume);
        assert_eq!(m.source.as_deref(), Some("data"));
        let m = parse_short("./src:/app:ro", "p", &ctx()).unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert_eq!(m.source.as_deref(), Some("/proj/src"));
        assert!(m.read_only && m.create_host_path);
        let m = parse_short("../up/x:/x:rw,Z,rshared", "p", &ctx()).unwrap();
        assert_eq!(m.source.as_deref(), Some("/up/x"));
        assert_eq!(
            (m.selinux, m.propagation.as_deref()),
            (Some('Z'), Some("rshared"))
        );
        let m = parse_short("~/cfg:/cfg", "p", &ctx()).unwrap();
        assert_eq!(m.source.as_deref(), Some("/home/u/cfg"));
        let m = parse_short("/cache", "p", &ctx()).unwrap();
        assert_eq!((m.kind, m.source), (MountType::Volume, None));
        let m = parse_short("data:/d:nocopy", "p", &ctx()).unwrap();
        assert!(m.nocopy);
    }

    #[test]
    fn short_errors() {
        assert!(parse_short("data:rel", "p", &ctx()).is_err());
        assert!(parse_short("data:/d:bogus", "p", &ctx()).is_err());
        assert!(parse_short("data:/d:z", "p", &ctx()).is_err());
        assert!(parse_short("a:/b:ro:x", "p", &ctx()).is_err());
        assert!(parse_short(":/b", "p", &ctx()).is_err());
    }

    #[test]
    fn long_syntax() {
        let n = super::super::node::parse_yaml(
            "v:\n  - type: bind\n    source: ./conf\n    target: /etc/conf\n    read_only: true\n    bind:\n      create_host_path: false\n  - type: volume\n    source: data\n    target: /data\n    volume: {nocopy: true, subpath: sub}\n  - type: tmpfs\n    target: /run\n    tmpfs: {size: 64m, mode: 1777}\n",
            "f",
        )
        .unwrap();
        let Node::Map(m) = n else { panic!() };
        let v = parse_volumes(&m["v"], "services.a.volumes", &ctx()).unwrap();
        assert_eq!(v[0].source.as_deref(), Some("/proj/conf"));
        assert!(v[0].read_only && !v[0].create_host_path);
        assert!(v[1].nocopy);
        assert_eq!(v[1].subpath.as_deref(), Some("sub"));
        assert_eq!(v[2].kind, MountType::Tmpfs);
        assert_eq!(v[2].tmpfs_size, Some(64 << 20));
        assert_eq!(v[2].tmpfs_mode, Some(0o1777));
        let n = super::super::node::parse_yaml(
            "v:\n  - type: volume\n    target: /d\n    bind: {propagation: shared}\n",
            "f",
        )
        .unwrap();
        let Node::Map(m) = n else { panic!() };
        let e = parse_volumes(&m["v"], "s.volumes", &ctx())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "s.volumes[0].bind: unsupported key");
    }

    #[test]
    fn merge_key_is_target() {
        assert_eq!(
            merge_key(&Node::Str("a:/d:ro".into())).as_deref(),
            Some("/d")
        );
        assert_eq!(merge_key(&Node::Str("/d".into())).as_deref(), Some("/d"));
    }
}
