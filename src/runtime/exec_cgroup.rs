//! Where an exec'd process goes in the cgroup tree: the container's own cgroup, or with runc's
//! `exec --cgroup [CONTROLLERS:]PATH` an existing sub-cgroup of it.
//!
//! As runc: on cgroup v1 a bare PATH applies to every hierarchy and `cpu,memory:PATH` to the
//! named controllers only (the others stay in the container's cgroup); on cgroup v2 there is one
//! hierarchy, so one PATH. The controller-less cgroup2 mount of a hybrid host carries no limits
//! (runc does not even join it): a bare PATH is used there only where it exists. Every target is
//! checked before anything is forked, so a bad flag is one error and leaves nothing behind.

use crate::cgroups::{self, v1, Cgroup, Layout};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

const MOUNT_ROOT: &str = "/sys/fs/cgroup";

/// The cgroup(s) an exec'd process joins.
pub enum Placement {
    Container(Box<dyn Cgroup>),
    /// Directories of existing sub-cgroups (and, for the hierarchies no `--cgroup` names, the
    /// container's own), one per hierarchy.
    Dirs(Vec<PathBuf>),
}

impl Placement {
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        match self {
            Placement::Container(cg) => cg.add_pid(pid),
            Placement::Dirs(dirs) => {
                for dir in dirs {
                    let procs = dir.join("cgroup.procs");
                    std::fs::write(&procs, pid.to_string())
                        .with_context(|| format!("--cgroup: join {}", dir.display()))?;
                }
                Ok(())
            }
        }
    }
}

/// One `--cgroup` value for a controller ("" for all), with the flag as given, for errors.
struct Sub {
    path: PathBuf,
    arg: String,
}

/// runc's parsing: `PATH` (every controller) or `c1,c2:PATH`, each controller at most once and
/// at most one bare PATH.
fn parse(args: &[String]) -> Result<BTreeMap<String, Sub>> {
    let mut subs = BTreeMap::new();
    for arg in args {
        let (ctrls, path): (Vec<&str>, &str) = match arg.split_once(':') {
            Some((c, p)) => (c.split(',').collect(), p),
            None => (vec![""], arg.as_str()),
        };
        let path = relative(arg, path)?;
        for ctrl in ctrls {
            if ctrl.is_empty() && arg.contains(':') {
                bail!("--cgroup {arg}: empty controller before \":\"");
            }
            let sub = Sub {
                path: path.clone(),
                arg: arg.clone(),
            };
            if subs.insert(ctrl.to_string(), sub).is_some() {
                if ctrl.is_empty() {
                    bail!("--cgroup: more than one PATH without a controller");
                }
                bail!("--cgroup: controller {ctrl:?} is given more than once");
            }
        }
    }
    Ok(subs)
}

/// The sub-cgroup path made relative and normalized; `..` may not climb out of the container.
fn relative(arg: &str, path: &str) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for comp in Path::new(path).components() {
        match comp {
            Component::Normal(c) => out.push(c),
            Component::ParentDir => {
                if !out.pop() {
                    bail!("--cgroup {arg}: {path:?} is outside the container's cgroup");
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok(out)
}

fn existing(dir: PathBuf, arg: &str) -> Result<PathBuf> {
    if !dir.join("cgroup.procs").exists() {
        bail!(
            "--cgroup {arg}: sub-cgroup {} does not exist (create it first)",
            dir.display()
        );
    }
    Ok(dir)
}

/// Resolves `--cgroup` values against the container's cgroup `cgroup_path` on this host.
pub fn placement(cgroup_path: &str, args: &[String]) -> Result<Placement> {
    if args.is_empty() {
        return Ok(Placement::Container(cgroups::open(cgroup_path)?));
    }
    let subs = parse(args)?;
    let root = Path::new(MOUNT_ROOT);
    let container = |mount: &Path| mount.join(cgroup_path.trim_start_matches('/'));
    if cgroups::detect(root) == Layout::Unified {
        return unified(&container(root), &subs).map(|d| Placement::Dirs(vec![d]));
    }
    let text = std::fs::read_to_string("/proc/self/mountinfo").context("read mountinfo")?;
    let (hierarchies, hybrid) = v1::parse_mountinfo(&text);
    for (ctrl, sub) in &subs {
        if !ctrl.is_empty() && !hierarchies.iter().any(|(c, _)| c.contains(ctrl)) {
            bail!(
                "--cgroup {}: no cgroup v1 controller {ctrl} is mounted on this host",
                sub.arg
            );
        }
    }
    let mut dirs = Vec::new();
    for (ctrls, mount) in &hierarchies {
        let named: Vec<&Sub> = ctrls.iter().filter_map(|c| subs.get(c)).collect();
        let sub = match named.split_first() {
            Some((first, rest)) => {
                if let Some(other) = rest.iter().find(|s| s.path != first.path) {
                    bail!(
                        "--cgroup: {} and {} name different paths for one hierarchy ({})",
                        first.arg,
                        other.arg,
                        ctrls.join(",")
                    );
                }
                Some(*first)
            }
            None => subs.get(""),
        };
        dirs.push(match sub {
            Some(s) => existing(container(mount).join(&s.path), &s.arg)?,
            None => container(mount),
        });
    }
    if let Some(mount) = hybrid {
        let own = container(&mount);
        let dir = match subs.get("") {
            Some(s) if own.join(&s.path).is_dir() => own.join(&s.path),
            _ => own,
        };
        dirs.push(dir);
    }
    Ok(Placement::Dirs(dirs))
}

/// cgroup v2: one hierarchy, so every value must name the same path.
fn unified(container: &Path, subs: &BTreeMap<String, Sub>) -> Result<PathBuf> {
    let mut all = subs.values();
    let Some(first) = all.next() else {
        return Ok(container.to_path_buf());
    };
    if let Some(other) = all.find(|s| s.path != first.path) {
        bail!(
            "--cgroup: cgroup v2 has one hierarchy, but {} and {} name different paths",
            first.arg,
            other.arg
        );
    }
    existing(container.join(&first.path), &first.arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn values_parse_like_runc() {
        let subs = parse(&strings(&["cpu,memory:a/b", "x/../y"])).unwrap();
        assert_eq!(subs["cpu"].path, Path::new("a/b"));
        assert_eq!(subs["memory"].path, Path::new("a/b"));
        assert_eq!(subs[""].path, Path::new("y"));
        assert_eq!(
            parse(&strings(&["/abs"])).unwrap()[""].path,
            Path::new("abs")
        );
        for (bad, want) in [
            (vec!["a", "b"], "more than one PATH"),
            (vec!["cpu:a", "cpu:b"], "more than once"),
            (vec![":a"], "empty controller"),
            (vec!["memory:../x"], "outside the container's cgroup"),
            (vec!["a/../../x"], "outside the container's cgroup"),
        ] {
            let err = parse(&strings(&bad)).err().map(|e| e.to_string());
            assert!(
                err.as_deref().is_some_and(|e| e.contains(want)),
                "{bad:?}: {err:?}"
            );
        }
    }
}
