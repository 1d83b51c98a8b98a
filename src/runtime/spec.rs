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
    if let Some(value) = without_empty_affinity(&value) {
        // Only here is the config read from the value (its positions are lost).
        return serde_path_to_error::deserialize(value)
            .map_err(|e| anyhow::anyhow!("{}: {}", e.path(), e.inner()));
    }
    // The path tracker names the field a type error is in (`process.user.uid: invalid type…`);
    // serde_json alone gives only where in the text.
    let mut de = serde_json::Deserializer::from_str(text);
    let spec: Spec = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let inner = e.inner();
        let path = match e.path().to_string() {
            p if p == "." => "config".to_string(),
            p => p,
        };
        anyhow::anyhow!(
            "{path}: {} (line {} column {})",
            strip_position(&inner.to_string()),
            inner.line(),
            inner.column()
        )
    })?;
    Ok(spec)
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

/// serde_json appends " at line L column C" to its messages; the caller states it once.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at line ") {
        Some(i) => &msg[..i],
        None => msg,
    }
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

pub fn validate(spec: &Spec) -> Result<()> {
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
    check_process_strings(process)?;
    if let Some(hooks) = spec.hooks() {
        check_hooks(hooks)?;
    }
    // Checked before the linux section, which a config may lack.
    for (i, m) in spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let dest = m.destination();
        if dest.as_os_str().is_empty() {
            bail!("mounts[{i}].destination: must not be empty (it would cover the root)");
        }
        if !dest.is_absolute() {
            bail!(
                "mounts[{i}].destination: {:?} must be an absolute path",
                dest.display()
            );
        }
        if no_nul(dest.as_os_str().as_encoded_bytes()).is_err() {
            bail!("mounts[{i}].destination: contains a NUL byte");
        }
        if dest.components().any(|c| c == Component::ParentDir) {
            bail!(
                "mounts[{i}].destination: {:?} must not contain \"..\"",
                m.destination().display()
            );
        }
    }
    let own_mountns = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().as_ref())
        .is_some_and(|ns| ns.iter().any(|n| n.typ() == LinuxNamespaceType::Mount));
    if !own_mountns {
        check_without_mount_namespace(spec)?;
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
            check_namespace_file(path, ns.typ())
                .with_context(|| format!("linux.namespaces[{i}].path: {}", path.display()))?;
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

/// Without a mount namespace of its own the container shares the caller's mount table, and the
/// rootfs is only chroot'ed into (rootfs.rs): what would mount over the root itself or under
/// the caller's /proc is refused, as runc refuses masked and read-only paths there.
fn check_without_mount_namespace(spec: &Spec) -> Result<()> {
    const WHY: &str = "needs a mount namespace (linux.namespaces has none, so the container \
                       would share the caller's mount table)";
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        bail!("root.readonly: {WHY}");
    }
    let Some(linux) = spec.linux() else {
        return Ok(());
    };
    if linux.masked_paths().as_ref().is_some_and(|p| !p.is_empty()) {
        bail!("linux.maskedPaths: {WHY}");
    }
    if linux
        .readonly_paths()
        .as_ref()
        .is_some_and(|p| !p.is_empty())
    {
        bail!("linux.readonlyPaths: {WHY}");
    }
    if linux.rootfs_propagation().is_some() {
        bail!("linux.rootfsPropagation: {WHY}");
    }
    Ok(())
}

fn no_nul(b: &[u8]) -> Result<()> {
    if b.contains(&0) {
        bail!("contains a NUL byte");
    }
    Ok(())
}

/// Arguments and environment become C strings at exec: a NUL would cut them short (the Rust
/// conversion fails and left them empty), and an entry without `=` is no variable at all.
fn check_process_strings(process: &oci_spec::runtime::Process) -> Result<()> {
    for (i, a) in process
        .args()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        no_nul(a.as_bytes()).with_context(|| format!("process.args[{i}]"))?;
    }
    check_env("process.env", process.env().as_deref().unwrap_or_default())?;
    no_nul(process.cwd().as_os_str().as_encoded_bytes()).context("process.cwd")?;
    Ok(())
}

fn check_env(field: &str, env: &[String]) -> Result<()> {
    for (i, e) in env.iter().enumerate() {
        no_nul(e.as_bytes()).with_context(|| format!("{field}[{i}]"))?;
        match e.split_once('=') {
            Some((k, _)) if !k.is_empty() => {}
            Some(_) => bail!("{field}[{i}]: {e:?} has an empty name"),
            None => bail!("{field}[{i}]: {e:?} is not NAME=VALUE"),
        }
    }
    Ok(())
}

fn check_hooks(hooks: &oci_spec::runtime::Hooks) -> Result<()> {
    #[allow(deprecated)]
    let kinds = [
        ("prestart", hooks.prestart()),
        ("createRuntime", hooks.create_runtime()),
        ("createContainer", hooks.create_container()),
        ("startContainer", hooks.start_container()),
        ("poststart", hooks.poststart()),
        ("poststop", hooks.poststop()),
    ];
    for (kind, list) in kinds {
        for (i, h) in list.as_deref().unwrap_or_default().iter().enumerate() {
            let field = format!("hooks.{kind}[{i}]");
            if let Some(t) = h.timeout() {
                if t <= 0 {
                    bail!("{field}.timeout: {t} must be greater than zero");
                }
            }
            no_nul(h.path().as_os_str().as_encoded_bytes())
                .with_context(|| format!("{field}.path"))?;
            for (j, a) in h.args().as_deref().unwrap_or_default().iter().enumerate() {
                no_nul(a.as_bytes()).with_context(|| format!("{field}.args[{j}]"))?;
            }
            check_env(
                &format!("{field}.env"),
                h.env().as_deref().unwrap_or_default(),
            )?;
        }
    }
    Ok(())
}

nix::ioctl_none!(ns_get_nstype, 0xb7, 0x3);
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// A namespace path must be a namespace file of the named type: joining anything else fails
/// later, in the forked child, with an error that no longer says which field was wrong.
fn check_namespace_file(path: &Path, typ: LinuxNamespaceType) -> Result<()> {
    use nix::fcntl::{open, OFlag};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // O_PATH first: opening a FIFO or a device to look at it could block or act on it.
    let fd = open(
        path,
        OFlag::O_PATH | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(std::io::Error::from)?;
    // SAFETY: open returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let fs = nix::sys::statfs::fstatfs(&fd).map_err(std::io::Error::from)?;
    if fs.filesystem_type().0 as i64 != NSFS_MAGIC {
        bail!("not a namespace file (like /proc/<pid>/ns/...)");
    }
    let reopened = std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns a value.
    let got = unsafe { ns_get_nstype(reopened.as_raw_fd()) }.map_err(std::io::Error::from)?;
    let want = crate::runtime::namespaces::clone_flag(typ).bits();
    if got != want {
        let of_type = |bits: i32| {
            NAMESPACE_TYPES
                .iter()
                .copied()
                .find(|n| {
                    serde_json::from_value::<LinuxNamespaceType>(serde_json::json!(n))
                        .is_ok_and(|t| crate::runtime::namespaces::clone_flag(t).bits() == bits)
                })
                .unwrap_or("unknown")
        };
        bail!(
            "is a namespace of type {}, not {}",
            of_type(got),
            of_type(want)
        );
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
    fn root_level_mount_work_without_a_mount_namespace_is_rejected() {
        for (extra, field) in [
            (
                r#","linux":{"maskedPaths":["/proc/kcore"]}"#,
                "linux.maskedPaths",
            ),
            (
                r#","linux":{"readonlyPaths":["/proc/sys"]}"#,
                "linux.readonlyPaths",
            ),
            (
                r#","linux":{"rootfsPropagation":"private"}"#,
                "linux.rootfsPropagation",
            ),
        ] {
            let spec = parse(&minimal(extra)).unwrap();
            let err = format!("{:#}", validate(&spec).unwrap_err());
            assert!(err.starts_with(field), "{err}");
            let with_ns = extra.replace(
                r#""linux":{"#,
                r#""linux":{"namespaces":[{"type":"mount"}],"#,
            );
            validate(&parse(&minimal(&with_ns)).unwrap()).unwrap();
        }
        let spec =
            parse(&minimal("").replace(r#""rootfs"}"#, r#""rootfs","readonly":true}"#)).unwrap();
        assert!(format!("{:#}", validate(&spec).unwrap_err()).starts_with("root.readonly"));
        // Every other namespace type may be left out.
        validate(&parse(&minimal(r#","linux":{"namespaces":[]}"#)).unwrap()).unwrap();
    }

    #[test]
    fn parent_dir_in_mount_destination_is_rejected() {
        let spec = parse(&minimal(
            r#","mounts":[{"destination":"/a/../../etc","type":"tmpfs"}]"#,
        ))
        .unwrap();
        assert!(format!("{:#}", validate(&spec).unwrap_err()).contains("mounts[0].destination"));
    }
    fn invalid(extra: &str) -> String {
        let spec = parse(&minimal(extra)).unwrap();
        format!("{:#}", validate(&spec).unwrap_err())
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let err = parse(&minimal("").replace(r#""uid":0"#, r#""uid":"root""#)).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.starts_with("process.user.uid: invalid type"), "{msg}");
        assert!(msg.contains("line 1 column"), "{msg}");
        let err = parse(&minimal(
            r#","mounts":[{"destination":"/a"},{"destination":7}]"#,
        ))
        .unwrap_err();
        assert!(
            format!("{err:#}").starts_with("mounts[1].destination: "),
            "{err:#}"
        );
        let err = parse(r#"{"ociVersion":"1.2.0","hostname":"x","root":7}"#).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("root: invalid type"),
            "{err:#}"
        );
        let err = parse(r#"{"ociVersion":"1.2.0","process":{"args":["sh"]}}"#).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("process: missing field"),
            "{err:#}"
        );
    }

    #[test]
    fn nul_bytes_env_without_equals_and_bad_hook_timeouts() {
        let base = minimal("");
        let spec = parse(&base.replace(r#"["sh"]"#, r#"["sh","a\u0000b"]"#)).unwrap();
        assert_eq!(
            format!("{:#}", validate(&spec).unwrap_err()),
            "process.args[1]: contains a NUL byte"
        );
        let with_env = |env: &str| base.replace(r#""cwd""#, &format!(r#""env":{env},"cwd""#));
        let spec = parse(&with_env(r#"["A=1","B\u0000=2"]"#)).unwrap();
        assert!(format!("{:#}", validate(&spec).unwrap_err()).starts_with("process.env[1]: "));
        let spec = parse(&with_env(r#"["A=1","B=2","C=3","NOEQUALS"]"#)).unwrap();
        assert_eq!(
            format!("{:#}", validate(&spec).unwrap_err()),
            "process.env[3]: \"NOEQUALS\" is not NAME=VALUE"
        );
        let spec = parse(&with_env(r#"["=x"]"#)).unwrap();
        assert!(format!("{:#}", validate(&spec).unwrap_err()).contains("empty name"));
        let msg = invalid(r#","hooks":{"poststop":[{"path":"/bin/true","timeout":-1}]}"#);
        assert_eq!(
            msg,
            "hooks.poststop[0].timeout: -1 must be greater than zero"
        );
    }

    #[test]
    fn empty_and_relative_mount_destinations_are_rejected() {
        let msg = invalid(r#","mounts":[{"destination":"","type":"tmpfs"}]"#);
        assert!(
            msg.starts_with("mounts[0].destination: must not be empty"),
            "{msg}"
        );
        let msg = invalid(r#","mounts":[{"destination":"/a"},{"destination":"tmp"}]"#);
        assert!(
            msg.starts_with("mounts[1].destination: \"tmp\" must be an absolute"),
            "{msg}"
        );
    }

    #[test]
    fn namespace_paths_must_be_namespaces_of_their_type() {
        let msg =
            invalid(r#","linux":{"namespaces":[{"type":"network","path":"/proc/self/ns/ipc"}]}"#);
        assert_eq!(
            msg,
            "linux.namespaces[0].path: /proc/self/ns/ipc: is a namespace of type ipc, not network"
        );
        let msg = invalid(r#","linux":{"namespaces":[{"type":"ipc","path":"/etc/hostname"}]}"#);
        assert!(msg.contains("not a namespace file"), "{msg}");
        let ok = parse(&minimal(
            r#","linux":{"namespaces":[{"type":"network","path":"/proc/self/ns/net"}]}"#,
        ))
        .unwrap();
        validate(&ok).unwrap();
    }
}
