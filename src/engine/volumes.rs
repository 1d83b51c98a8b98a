//! Named and anonymous volumes under `<root>/volumes/<name>/_data`.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

use crate::sys::{now_rfc3339, read_json, write_json};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Driver")]
    pub driver: String,
    #[serde(rename = "Mountpoint")]
    pub mountpoint: String,
    #[serde(rename = "CreatedAt")]
    pub created_at: String,
    #[serde(rename = "Labels", default)]
    pub labels: std::collections::BTreeMap<String, String>,
    #[serde(rename = "Scope")]
    pub scope: String,
    /// Set once the image content was copied in (docker does it once).
    #[serde(rename = "Populated", default)]
    pub populated: bool,
    #[serde(rename = "Anonymous", default)]
    pub anonymous: bool,
    /// The local driver's `-o type=,device=,o=`: mounted on `_data` at create.
    #[serde(rename = "Options", default)]
    pub options: std::collections::BTreeMap<String, String>,
}

/// `volume create`'s options beyond the name.
#[derive(Debug, Clone, Default)]
pub struct VolumeOptions {
    pub labels: std::collections::BTreeMap<String, String>,
    /// `type`, `device`, `o` (the local driver's keys).
    pub options: std::collections::BTreeMap<String, String>,
}

/// One `volume ls --filter key=value` (name, label, dangling, driver).
pub fn filter_matches(root: &Path, v: &Volume, f: &str) -> Result<bool> {
    let Some((k, val)) = f.split_once('=') else {
        bail!("bad format of filter (expected name=value): {f}");
    };
    Ok(match k {
        "name" => v.name.contains(val),
        "driver" => v.driver == val,
        "label" => label_matches(&v.labels, val),
        "dangling" => match val {
            "true" | "1" => users(root, &v.name).is_empty(),
            "false" | "0" => !users(root, &v.name).is_empty(),
            _ => bail!("invalid filter 'dangling={val}'"),
        },
        _ => bail!("invalid filter '{k}'"),
    })
}

/// `label=KEY` or `label=KEY=VALUE` against a label map.
pub fn label_matches(labels: &std::collections::BTreeMap<String, String>, want: &str) -> bool {
    match want.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(want),
    }
}

/// mount(2) flags among a local volume's `o=` words; the rest is fs data.
fn mount_flags(o: &str) -> (nix::mount::MsFlags, String) {
    use nix::mount::MsFlags;
    let mut flags = MsFlags::empty();
    let mut data = vec![];
    for w in o.split(',').filter(|w| !w.is_empty()) {
        match w {
            "ro" => flags |= MsFlags::MS_RDONLY,
            "nosuid" => flags |= MsFlags::MS_NOSUID,
            "nodev" => flags |= MsFlags::MS_NODEV,
            "noexec" => flags |= MsFlags::MS_NOEXEC,
            "bind" => flags |= MsFlags::MS_BIND,
            "rbind" => flags |= MsFlags::MS_BIND | MsFlags::MS_REC,
            other => data.push(other),
        }
    }
    (flags, data.join(","))
}

fn mount_options(data_dir: &Path, o: &std::collections::BTreeMap<String, String>) -> Result<()> {
    for k in o.keys() {
        if !["type", "device", "o"].contains(&k.as_str()) {
            bail!("invalid option key: {k:?} (the local driver takes type, device and o)");
        }
    }
    let (Some(device), typ) = (o.get("device"), o.get("type")) else {
        bail!("missing required option: \"device\"");
    };
    let (flags, data) = mount_flags(o.get("o").map(String::as_str).unwrap_or(""));
    let typ = typ.map(String::as_str).filter(|t| *t != "none");
    nix::mount::mount(
        Some(device.as_str()),
        data_dir,
        typ,
        flags,
        (!data.is_empty()).then_some(data.as_str()),
    )
    .with_context(|| format!("mounting {device} on {} for the volume", data_dir.display()))
}

pub fn dir(root: &Path) -> PathBuf {
    root.join("volumes")
}

fn meta(root: &Path, name: &str) -> PathBuf {
    dir(root).join(name).join("volume.json")
}

pub fn valid_name(name: &str) -> Result<()> {
    let ok = name.len() >= 2
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        bail!("invalid volume name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
    }
    Ok(())
}

pub fn get(root: &Path, name: &str) -> Result<Volume> {
    let p = meta(root, name);
    if !p.exists() {
        return Err(super::EngineError::NoSuchVolume(name.to_string()).into());
    }
    read_json(&p)
}

/// Creates the volume if missing (docker's create is idempotent).
pub fn create(root: &Path, name: &str, anonymous: bool) -> Result<Volume> {
    create_with(root, name, anonymous, &VolumeOptions::default())
}

/// `create` with labels and the local driver's mount options.
pub fn create_with(root: &Path, name: &str, anonymous: bool, o: &VolumeOptions) -> Result<Volume> {
    valid_name(name)?;
    let _l = crate::sys::lock(&root.join("volumes.lock"))?;
    if let Ok(v) = get(root, name) {
        return Ok(v);
    }
    let data = dir(root).join(name).join("_data");
    fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    if !o.options.is_empty() {
        if let Err(e) = mount_options(&data, &o.options) {
            let _ = fs::remove_dir_all(dir(root).join(name));
            return Err(e);
        }
    }
    let v = Volume {
        name: name.into(),
        driver: "local".into(),
        mountpoint: data.to_string_lossy().into_owned(),
        created_at: now_rfc3339(),
        labels: o.labels.clone(),
        scope: "local".into(),
        populated: false,
        anonymous,
        options: o.options.clone(),
    };
    write_json(&meta(root, name), &v)?;
    super::events::object(root, "volume", "create", name, &[("driver", "local")]);
    Ok(v)
}

/// `create` with labels (compose marks its volumes with its project); labels are written only
/// when the volume is new.
pub fn create_labeled(
    root: &Path,
    name: &str,
    labels: std::collections::BTreeMap<String, String>,
) -> Result<Volume> {
    let mut v = create(root, name, false)?;
    if v.labels.is_empty() && !labels.is_empty() {
        let _l = crate::sys::lock(&root.join("volumes.lock"))?;
        v.labels = labels;
        write_json(&meta(root, name), &v)?;
    }
    Ok(v)
}

pub fn list(root: &Path) -> Vec<Volume> {
    let mut v: Vec<Volume> = fs::read_dir(dir(root))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| read_json(&e.path().join("volume.json")).ok())
                .collect()
        })
        .unwrap_or_default();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    v
}

/// The ids of the containers (any state) that mount the volume.
pub fn users(root: &Path, name: &str) -> Vec<String> {
    super::container::list(root)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| {
            c.config
                .mounts
                .iter()
                .any(|m| m.typ == "volume" && m.source == name)
        })
        .map(|c| c.config.id)
        .collect()
}

pub fn remove(root: &Path, name: &str, force: bool) -> Result<()> {
    get(root, name)?;
    let u = users(root, name);
    if !u.is_empty() && !force {
        return Err(super::EngineError::VolumeInUse {
            name: name.to_string(),
            containers: u,
        }
        .into());
    }
    let d = dir(root).join(name);
    let data = d.join("_data");
    if crate::sys::is_mounted(&data) {
        nix::mount::umount2(&data, nix::mount::MntFlags::MNT_DETACH)
            .with_context(|| format!("unmounting {}", data.display()))?;
    }
    fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
    super::events::object(root, "volume", "destroy", name, &[("driver", "local")]);
    Ok(())
}

/// First use of an empty volume copies the image's content at the mount
/// point into it, as docker does (the directory's owner and mode too). The
/// mount point resolves inside the rootfs and the copy walks by fds, so an
/// image whose mount point is a link (`/data -> /etc`) copies its own files,
/// never the host's.
pub fn populate(root: &Path, name: &str, rootfs: &Path, target: &str) -> Result<()> {
    let _l = crate::sys::lock(&root.join("volumes.lock"))?;
    let mut v = get(root, name)?;
    if v.populated {
        return Ok(());
    }
    let data = PathBuf::from(&v.mountpoint);
    let empty = fs::read_dir(&data)
        .map(|mut r| r.next().is_none())
        .unwrap_or(false);
    if empty {
        let rootfd =
            fs::File::open(rootfs).with_context(|| format!("opening {}", rootfs.display()))?;
        let dir = crate::runtime::resolve::open_in_root(
            std::os::fd::AsRawFd::as_raw_fd(&rootfd),
            Path::new(target),
            libc::O_RDONLY | libc::O_DIRECTORY,
        );
        // No directory at the mount point in the image: nothing to copy.
        if let Ok(dir) = dir {
            let mut sink = super::cp_tree::DirSink::new(
                super::cp_tree::open_host_dir(&data)?,
                ".".into(),
                None,
            );
            super::cp_tree::walk_fd(dir, std::ffi::OsStr::new("."), &mut sink)
                .with_context(|| format!("copying the image's {target} into volume {name}"))?;
        }
    }
    v.populated = true;
    write_json(&meta(root, name), &v)
}

/// Removes volumes no container uses: anonymous ones, or all with `all`.
/// Returns the names removed.
pub fn prune(root: &Path, all: bool) -> Result<Vec<String>> {
    let mut gone = Vec::new();
    for v in list(root) {
        if (all || v.anonymous) && users(root, &v.name).is_empty() {
            remove(root, &v.name, false)?;
            gone.push(v.name);
        }
    }
    Ok(gone)
}
