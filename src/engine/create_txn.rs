//! Atomic container creation (issue 15): a container's directory is built as
//! `<root>/containers/.creating-<id>` and renamed to `<id>` only once complete, so a `create` or
//! `run` killed at any moment leaves either nothing listable or a whole container. What a killed
//! create leaves (the staging directory and the anonymous volumes it named) is swept by the next
//! command that takes the containers lock: every create holds that lock from its checks to the
//! rename, so a staging directory seen under the lock belongs to a dead create. A create makes
//! no mount, netns, veth, nft element or lease (the monitor does, after the rename).

use anyhow::Context;
use std::fs;
use std::path::{Path, PathBuf};

use super::container::{self, Config, Container};
use super::error::Result;
use super::{rootfs, spec, volumes};
use crate::sys as fsutil;

const STAGING: &str = ".creating-";

/// Where the container whose final directory is `dir` is built.
pub fn staging(dir: &Path) -> PathBuf {
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dir.with_file_name(format!("{STAGING}{id}"))
}

type ResolvedMount = (String, String, bool, String, Vec<String>);

/// Writes the container directory under its staging name and renames it into place; on failure
/// removes it and its anonymous volumes. `c.dir` is the final directory (the bundle names it).
pub fn write(root: &Path, mut c: Container, lowerdirs: &[PathBuf]) -> Result<Container> {
    let dir = c.dir.clone();
    let tmp = staging(&dir);
    let res = (|| -> anyhow::Result<()> {
        fs::create_dir_all(tmp.join("bundle/rootfs"))
            .with_context(|| format!("creating {}", tmp.display()))?;
        for m in c.config.mounts.iter_mut() {
            if m.typ == "volume" && m.anonymous {
                m.source = fsutil::random_id();
            }
        }
        // First on disk: the anonymous volumes' names, for a sweep after a kill.
        fsutil::write_json(&tmp.join("config.json"), &c.config)?;
        let mut resolved: Vec<ResolvedMount> = Vec::new();
        for m in &c.config.mounts {
            if m.typ == "volume" {
                let v = volumes::create(root, &m.source, m.anonymous)?;
                resolved.push((
                    "bind".into(),
                    v.mountpoint,
                    m.readonly,
                    m.target.clone(),
                    vec![],
                ));
            } else {
                resolved.push((
                    m.typ.clone(),
                    m.source.clone(),
                    m.readonly,
                    m.target.clone(),
                    m.options.clone(),
                ));
            }
        }
        let cfg = &c.config;
        fs::write(tmp.join("image-id"), &cfg.image_id).context("writing image-id")?;
        let lowers: Vec<String> = lowerdirs
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        fs::write(rootfs::lowerdirs_path(&tmp), lowers.join("\n")).context("writing lowerdirs")?;
        fs::write(tmp.join("hostname"), format!("{}\n", cfg.hostname))
            .context("writing hostname")?;
        fs::write(tmp.join("hosts"), "127.0.0.1\tlocalhost\n").context("writing hosts")?;
        fs::write(
            tmp.join("resolv.conf"),
            super::etc_files::resolv_conf(root, &cfg.network, &cfg.host),
        )
        .context("writing resolv.conf")?;
        let netns = super::create::netns_for(root, cfg)?;
        // Built from the staged files (it binds those that exist), then pointed at their
        // final place.
        let mut spec = spec::build(cfg, &tmp, lowerdirs, netns, &resolved)?;
        super::spec_extra::apply(&mut spec, root, cfg, lowerdirs)?;
        rebase_sources(&mut spec, &tmp, &dir);
        fsutil::write_json(&tmp.join("bundle/config.json"), &spec)?;
        fsutil::write_json(&tmp.join("state.json"), &c.state)?;
        fs::rename(&tmp, &dir)
            .with_context(|| format!("renaming {} to {}", tmp.display(), dir.display()))?;
        Ok(())
    })();
    if let Err(e) = res {
        remove_staged(root, &tmp, &c.config);
        return Err(e.into());
    }
    Ok(c)
}

/// Mount sources under `from` moved to `to`.
fn rebase_sources(spec: &mut oci_spec::runtime::Spec, from: &Path, to: &Path) {
    for m in spec.mounts_mut().iter_mut().flatten() {
        let rebased = m
            .source()
            .as_ref()
            .and_then(|src| src.strip_prefix(from).ok())
            .map(|rest| to.join(rest));
        if rebased.is_some() {
            m.set_source(rebased);
        }
    }
}

fn remove_staged(root: &Path, tmp: &Path, cfg: &Config) {
    for m in &cfg.mounts {
        if m.anonymous && volumes::valid_name(&m.source).is_ok() {
            // A create killed inside `volumes::create` leaves a directory without its record,
            // which `volumes::remove` does not know.
            if volumes::remove(root, &m.source, true).is_err() {
                let _ = fs::remove_dir_all(volumes::dir(root).join(&m.source));
            }
        }
    }
    let _ = fs::remove_dir_all(tmp);
}

/// Removes what creates killed midway left; the caller holds the containers lock. Returns how
/// many it removed.
pub fn sweep_locked(root: &Path) -> usize {
    let Ok(rd) = fs::read_dir(container::containers_dir(root)) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        if !e.file_name().to_string_lossy().starts_with(STAGING) {
            continue;
        }
        let cfg: Config = fsutil::read_json(&e.path().join("config.json")).unwrap_or_default();
        remove_staged(root, &e.path(), &cfg);
        n += 1;
    }
    n
}

/// `sweep_locked` under the containers lock.
pub fn sweep(root: &Path) -> Result<usize> {
    let _l = fsutil::lock(&container::lock_path(root))?;
    Ok(sweep_locked(root))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staging_is_a_hidden_sibling() {
        let d = Path::new("/r/containers/abc");
        assert_eq!(staging(d), Path::new("/r/containers/.creating-abc"));
        let mut spec: oci_spec::runtime::Spec =
            serde_json::from_value(serde_json::json!({"mounts": [
                {"destination": "/etc/hosts", "source": "/r/containers/.creating-abc/hosts"},
                {"destination": "/v", "source": "/v/_data"},
                {"destination": "/t", "type": "tmpfs"}
            ]}))
            .unwrap();
        rebase_sources(&mut spec, &staging(d), d);
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(v["mounts"][0]["source"], "/r/containers/abc/hosts");
        assert_eq!(v["mounts"][1]["source"], "/v/_data");
        assert!(v["mounts"][2].get("source").is_none());
    }
}
