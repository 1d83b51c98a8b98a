//! Loading and validating a bundle's config.json, with errors that name the field at fault.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// The namespace type names of config-linux.md, the only ones hull accepts.
const NAMESPACE_TYPES: &[&str] = &[
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
];

/// A loaded bundle: the parsed spec plus the absolute paths derived from it.
pub struct Bundle {
    pub dir: PathBuf,
    pub rootfs: PathBuf,
    pub spec: Spec,
    /// The idmap of each mount, by index (empty when no mount is idmapped).
    pub idmaps: Vec<Option<crate::runtime::idmap::MountIdmap>>,
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
    let idmaps = crate::runtime::idmap::from_config(&text)?;
    Ok(Bundle {
        dir,
        rootfs,
        spec,
        idmaps,
    })
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
    let invalid = |e: serde_json::Error| {
        anyhow::anyhow!(
            "invalid config at line {} column {}: {}",
            e.line(),
            e.column(),
            e
        )
    };
    if let Some(value) = without_empty_affinity(&value) {
        // Only here is the config re-read from the value (its positions are lost).
        return serde_json::from_value(value).map_err(|e| anyhow::anyhow!("invalid config: {e}"));
    }
    serde_json::from_str(text).map_err(invalid)
}

/// An empty execCPUAffinity list means "unchanged" (config.md), but oci-spec refuses "":
/// the config without those entries, when it has any.
fn without_empty_affinity(value: &serde_json::Value) -> Option<serde_json::Value> {
    let a = value.pointer("/process/execCPUAffinity")?.as_object()?;
    let empty = |k: &str| {
        a.get(k)
            .and_then(|v| v.as_str())
            .is_some_and(|s| s.trim().is_empty())
    };
    if !empty("initial") && !empty("final") {
        return None;
    }
    let mut value = value.clone();
    if let Some(a) = value
        .pointer_mut("/process/execCPUAffinity")
        .and_then(|a| a.as_object_mut())
    {
        a.retain(|_, v| !v.as_str().is_some_and(|s| s.trim().is_empty()));
    }
    Some(value)
}

fn precheck(value: &serde_json::Value) -> Result<()> {
    let version = value
        .get("ociVersion")
        .and_then(|v| v.as_str())
        .context("ociVersion: missing")?;
    check_version(version)?;
    if let Some(namespaces) = value
        .pointer("/linux/namespaces")
        .and_then(|v| v.as_array())
    {
        for (i, ns) in namespaces.iter().enumerate() {
            let typ = ns.get("type").and_then(|t| t.as_str()).unwrap_or("");
            if !NAMESPACE_TYPES.contains(&typ) {
                bail!("linux.namespaces[{i}].type: unknown namespace type {typ:?}");
            }
        }
    }
    precheck_extras(value)
}

/// The 1.2/1.3 fields serde would refuse vaguely: checked on the raw value to name them.
fn precheck_extras(value: &serde_json::Value) -> Result<()> {
    use crate::runtime::mempolicy::{FLAGS, MODES};
    if let Some(mp) = value.pointer("/linux/memoryPolicy") {
        match mp.get("mode").and_then(|m| m.as_str()) {
            Some(m) if MODES.contains(&m) => {}
            Some(m) => bail!("linux.memoryPolicy.mode: unknown mode {m:?}"),
            None => bail!("linux.memoryPolicy.mode: missing"),
        }
        for (i, f) in mp
            .get("flags")
            .and_then(|f| f.as_array())
            .into_iter()
            .flatten()
            .enumerate()
        {
            if !f.as_str().is_some_and(|f| FLAGS.contains(&f)) {
                bail!("linux.memoryPolicy.flags[{i}]: unknown flag {f}");
            }
        }
    }
    if let Some(a) = value.pointer("/process/execCPUAffinity") {
        for k in ["initial", "final"] {
            match a.get(k) {
                None | Some(serde_json::Value::Null) => {}
                Some(serde_json::Value::String(s)) if s.trim().is_empty() => {}
                Some(serde_json::Value::String(s)) => {
                    crate::runtime::idlist::parse(s, nix::sched::CpuSet::count() as u32)
                        .with_context(|| format!("process.execCPUAffinity.{k}"))?;
                }
                Some(other) => bail!("process.execCPUAffinity.{k}: {other} is not a string"),
            }
        }
    }
    crate::runtime::rdt::validate(value)
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
    // Checked before the linux section, which a config may lack.
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if m.destination()
            .components()
            .any(|c| c == Component::ParentDir)
        {
            bail!(
                "mounts[{i}].destination: {:?} must not contain \"..\"",
                m.destination().display()
            );
        }
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
                format!(
                    "linux.namespaces[{i}].path: {} ({})",
                    path.display(),
                    ns.typ()
                )
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
    if let Some(p) = linux.memory_policy() {
        crate::runtime::mempolicy::parse(p)?;
    }
    crate::runtime::netdev::validate(spec)?;
    crate::runtime::rdt::require_resctrl(spec)?;
    if let Some(sysctl) = linux.sysctl() {
        for key in sysctl.keys() {
            if key.is_empty()
                || key.contains('/')
                || key.split('.').any(|p| p.is_empty() || p == "..")
            {
                bail!("linux.sysctl: invalid key {key:?}");
            }
            check_sysctl_namespace(key, namespaces)?;
        }
    }
    Ok(())
}

/// A sysctl is written through the container's /proc/sys, so one that is not in a namespace of
/// the container's own would change the host: refuse it, as runc does.
fn check_sysctl_namespace(
    key: &str,
    namespaces: &[oci_spec::runtime::LinuxNamespace],
) -> Result<()> {
    let find = |t: LinuxNamespaceType| namespaces.iter().find(|n| n.typ() == t);
    const IPC: &[&str] = &[
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    ];
    if IPC.contains(&key) || key.starts_with("fs.mqueue.") {
        if find(LinuxNamespaceType::Ipc).is_none() {
            bail!("linux.sysctl: {key}: not allowed in the host's ipc namespace");
        }
        return Ok(());
    }
    if key.starts_with("net.") {
        let host = match find(LinuxNamespaceType::Network) {
            None => true,
            Some(ns) => match ns.path() {
                None => false,
                Some(path) => {
                    use std::os::unix::fs::MetadataExt;
                    let theirs = std::fs::metadata(path).with_context(|| {
                        format!("linux.sysctl: {key}: netns {}", path.display())
                    })?;
                    let ours = std::fs::metadata("/proc/self/ns/net")
                        .context("linux.sysctl: stat /proc/self/ns/net")?;
                    (theirs.dev(), theirs.ino()) == (ours.dev(), ours.ino())
                }
            },
        };
        if host {
            bail!("linux.sysctl: {key}: not allowed in the host's network namespace");
        }
        return Ok(());
    }
    if find(LinuxNamespaceType::Uts).is_some() {
        match key {
            "kernel.domainname" => return Ok(()),
            "kernel.hostname" => bail!("linux.sysctl: {key}: conflicts with the hostname field"),
            _ => {}
        }
    }
    bail!("linux.sysctl: {key}: not in a separate kernel namespace")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal(extra: &str) -> String {
        format!(
            r#"{{"ociVersion":"1.2.0","root":{{"path":"rootfs"}},"process":{{"args":["sh"],"cwd":"/","user":{{"uid":0,"gid":0}}}}{extra}}}"#
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
        let err = parse(&minimal(
            r#","linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}"#,
        ))
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "linux.namespaces[1].type: unknown namespace type \"bogus\""
        );
    }

    #[test]
    fn duplicate_namespaces_and_orphan_mappings_are_rejected() {
        let spec = parse(&minimal(
            r#","linux":{"namespaces":[{"type":"pid"},{"type":"pid"}]}"#,
        ))
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
        let spec = parse(&minimal(
            r#","mounts":[{"destination":"/a/../../etc","type":"tmpfs"}]"#,
        ))
        .unwrap();
        assert!(format!("{:#}", validate(&spec).unwrap_err()).contains("mounts[0].destination"));
    }
}
