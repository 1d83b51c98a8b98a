//! Loading and validating a bundle's config.json, with errors that name the field at fault.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// The namespace type names of config-linux.md, the only ones hull accepts.
const NAMESPACE_TYPES: &[&str] = &["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"];

/// A loaded bundle: the parsed spec plus the absolute paths derived from it.
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
}

pub fn load(bundle_dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(bundle_dir)
        .with_context(|| format!("bundle {}", bundle_dir.display()))?;
    let config_path = dir.join("config.json");
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("read {}", config_path.display()))?;
    let spec = parse(&text).with_context(|| format!("{}", config_path.display()))?;
    let root = spec
        .root()
        .as_ref()
        .context("root: missing (the bundle must name its root filesystem)")?;
    let rootfs = dir.join(root.path());
    let meta = std::fs::metadata(&rootfs)
        .with_context(|| format!("root.path: rootfs {}", rootfs.display()))?;
    if !meta.is_dir() {
        bail!("root.path: rootfs {} is not a directory", rootfs.display());
    }
    let rootfs = std::fs::canonicalize(&rootfs)
        .with_context(|| format!("root.path: rootfs {}", rootfs.display()))?;
    validate(&spec)?;
    crate::runtime::resolve::check_mount_destinations(&rootfs, &spec)?;
    Ok(Bundle { dir, rootfs, spec })
}

/// Parses config.json text: syntax errors carry line and column, and the fields serde would
/// report vaguely are checked first so the message names them.
pub fn parse(text: &str) -> Result<Spec> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "invalid JSON at line {} column {}: {}",
            e.line(),
            e.column(),
            e
        )
    })?;
    precheck(&value)?;
    let spec: Spec = serde_json::from_str(text).map_err(|e| {
        anyhow::anyhow!(
            "invalid config at line {} column {}: {}",
            e.line(),
            e.column(),
            e
        )
    })?;
    Ok(spec)
}

fn precheck(value: &serde_json::Value) -> Result<()> {
    let version = value
        .get("ociVersion")
        .and_then(|v| v.as_str())
        .context("ociVersion: missing")?;
    check_version(version)?;
    if let Some(namespaces) = value.pointer("/linux/namespaces").and_then(|v| v.as_array()) {
        for (i, ns) in namespaces.iter().enumerate() {
            let typ = ns.get("type").and_then(|t| t.as_str()).unwrap_or("");
            if !NAMESPACE_TYPES.contains(&typ) {
                bail!("linux.namespaces[{i}].type: unknown namespace type {typ:?}");
            }
        }
    }
    Ok(())
}

fn check_version(version: &str) -> Result<()> {
    let mut parts = version.splitn(3, '.');
    let nums: Vec<Option<u64>> = (0..3)
        .map(|_| {
            parts.next().and_then(|p| {
                // SemVer allows a pre-release or build suffix on the patch number.
                let digits: String = p.chars().take_while(|c| c.is_ascii_digit()).collect();
                digits.parse().ok()
            })
        })
        .collect();
    match nums.as_slice() {
        [Some(1), Some(_), Some(_)] => Ok(()),
        [Some(_), Some(_), Some(_)] => {
            bail!("ociVersion: {version:?} is not supported (hull supports 1.x)")
        }
        _ => bail!("ociVersion: {version:?} is not a SemVer version"),
    }
}

fn validate(spec: &Spec) -> Result<()> {
    let process = spec
        .process()
        .as_ref()
        .context("process: missing (nothing to run)")?;
    match process.args() {
        Some(args) if !args.is_empty() && !args[0].is_empty() => {}
        _ => bail!("process.args: must name the program to run"),
    }
    if !process.cwd().is_absolute() {
        bail!(
            "process.cwd: {:?} must be an absolute path",
            process.cwd().display()
        );
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    let namespaces = linux.namespaces().as_deref().unwrap_or_default();
    for (i, ns) in namespaces.iter().enumerate() {
        if !seen.insert(ns.typ()) {
            bail!("linux.namespaces[{i}]: namespace {} given twice", ns.typ());
        }
        if let Some(path) = ns.path() {
            std::fs::metadata(path).with_context(|| {
                format!("linux.namespaces[{i}].path: {} ({})", path.display(), ns.typ())
            })?;
        }
    }
    let has = |t: LinuxNamespaceType| seen.contains(&t);
    let maps = linux.uid_mappings().as_ref().is_some_and(|m| !m.is_empty())
        || linux.gid_mappings().as_ref().is_some_and(|m| !m.is_empty());
    if maps && !has(LinuxNamespaceType::User) {
        bail!("linux.uidMappings: mappings given without a user namespace");
    }
    if linux.time_offsets().is_some() && !has(LinuxNamespaceType::Time) {
        bail!("linux.timeOffsets: offsets given without a time namespace");
    }
    if spec.hostname().is_some() && !has(LinuxNamespaceType::Uts) {
        bail!("hostname: setting it needs a new uts namespace");
    }
    if let Some(offsets) = linux.time_offsets() {
        for clock in offsets.keys() {
            if clock != "monotonic" && clock != "boottime" {
                bail!("linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)");
            }
        }
    }
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            if key.is_empty() || key.contains('/') || key.split('.').any(|p| p.is_empty() || p == "..")
            {
                bail!("linux.sysctl: invalid key {key:?}");
            }
        }
    }
    for (i, m) in spec.mounts().as_deref().unwrap_or_default().iter().enumerate() {
        if m.destination().components().any(|c| c == Component::ParentDir) {
            bail!(
                "mounts[{i}].destination: {:?} must not contain \"..\"",
                m.destination().display()
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(extra: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.2.0","root":{{"path":"rootfs"}},"process":{{"args":["sh"],"cwd":"/"}}{extra}}}"#
        )
    }

    #[test]
    fn syntax_errors_give_line_and_column() {
        let err = parse("{\n  \"ociVersion\": \"1.0.0\",,\n}").unwrap_err();
        assert!(format!("{err:#}").contains("line 2 column"), "{err:#}");
    }

    #[test]
    fn unsupported_and_malformed_versions_are_rejected() {
        let err = parse(&minimal("").replace("1.2.0", "2.0.0")).unwrap_err();
        assert!(format!("{err:#}").contains("ociVersion"), "{err:#}");
        let err = parse(&minimal("").replace("1.2.0", "one")).unwrap_err();
        assert!(format!("{err:#}").contains("SemVer"), "{err:#}");
        parse(&minimal("").replace("1.2.0", "1.0.2-dev")).unwrap();
    }

    #[test]
    fn unknown_namespace_type_names_the_field() {
        let err = parse(&minimal(r#","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}"#))
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "linux.namespaces[1].type: unknown namespace type \"bogus\""
        );
    }

    #[test]
    fn duplicate_namespaces_and_orphan_mappings_are_rejected() {
        let spec = parse(&minimal(r#","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}"#))
            .unwrap();
        assert!(format!("{:#}", validate(&spec).unwrap_err()).contains("given twice"));
        let spec = parse(&minimal(
            r#","linux":{"uidMappings":[{"containerID":0,"hostID":1000,"size":1}]}"#,
        ))
        .unwrap();
        assert!(format!("{:#}", validate(&spec).unwrap_err()).contains("uidMappings"));
    }

    #[test]
    fn parent_dir_in_mount_destination_is_rejected() {
        let spec = parse(&minimal(r#","mounts":[{"destination":"/a/../../etc","type":"tmpfs"}]"#))
            .unwrap();
        assert!(format!("{:#}", validate(&spec).unwrap_err()).contains("mounts[0].destination"));
    }
}
