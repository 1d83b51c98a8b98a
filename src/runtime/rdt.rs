//! `linux.intelRdt` (config-linux.md "IntelRdt"): the container's init joins a resctrl group.
//!
//! Without a mounted resctrl filesystem the spec requires an error, given here at validation
//! so nothing is created. With one, the group is `closID` (or the container id), created when a
//! schema is given, checked against an existing group's schemata, and removed on delete only
//! when hull created it under the container's id.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// Where resctrl is mounted in the runtime's mount namespace, if it is.
pub fn resctrl_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    info.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        let point = pre.split(' ').nth(4)?;
        (post.split(' ').next()? == "resctrl").then(|| PathBuf::from(point))
    })
}

/// The intelRdt object as config.json has it: oci-spec 0.8 lacks `schemata` (1.2.1) and
/// `enableMonitoring` (1.3), which must not be ignored.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IntelRdt {
    #[serde(rename = "closID")]
    clos_id: Option<String>,
    l3_cache_schema: Option<String>,
    mem_bw_schema: Option<String>,
    schemata: Option<Vec<String>>,
    enable_monitoring: Option<bool>,
}

fn from_config(config: &serde_json::Value) -> Result<Option<IntelRdt>> {
    match config.pointer("/linux/intelRdt") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| anyhow::anyhow!("linux.intelRdt: {e}")),
    }
}

fn check(rdt: &IntelRdt) -> Result<()> {
    if let Some(c) = &rdt.clos_id {
        if c != "/" && (c.is_empty() || c == "." || c == ".." || c.contains(['/', '\n'])) {
            bail!("linux.intelRdt.closID: {c:?} is not a valid group name");
        }
    }
    if let Some(s) = &rdt.l3_cache_schema {
        if s.contains('\n') {
            bail!("linux.intelRdt.l3CacheSchema: must not contain newlines");
        }
    }
    if let Some(s) = &rdt.mem_bw_schema {
        if !s.starts_with("MB:") || s.contains('\n') {
            bail!("linux.intelRdt.memBwSchema: must start with \"MB:\" and have no newlines");
        }
    }
    if rdt.schemata.iter().flatten().any(|l| l.contains('\n')) {
        bail!("linux.intelRdt.schemata: lines must not contain newlines");
    }
    if rdt.enable_monitoring == Some(true) {
        bail!("linux.intelRdt.enableMonitoring: not supported by hull");
    }
    Ok(())
}

/// Checks the fields of `linux.intelRdt` in the raw config.
pub fn validate(config: &serde_json::Value) -> Result<()> {
    match from_config(config)? {
        Some(rdt) => check(&rdt),
        None => Ok(()),
    }
}

/// The spec's "MUST generate an error" without resctrl, before anything is created.
pub fn require_resctrl(spec: &Spec) -> Result<()> {
    if spec
        .linux()
        .as_ref()
        .and_then(|l| l.intel_rdt().as_ref())
        .is_some()
        && resctrl_mount().is_none()
    {
        bail!("linux.intelRdt: no resctrl filesystem is mounted in the runtime's mount namespace (the host has no Intel RDT support, or it is not mounted)");
    }
    Ok(())
}

fn config_of(bundle: &Path) -> Result<serde_json::Value> {
    let text = std::fs::read_to_string(bundle.join("config.json"))
        .with_context(|| format!("read {}", bundle.join("config.json").display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// The lines to write to `schemata`, in the spec's order.
fn schema_lines(rdt: &IntelRdt) -> Vec<String> {
    let mut lines: Vec<String> = rdt.l3_cache_schema.iter().cloned().collect();
    lines.extend(rdt.mem_bw_schema.iter().cloned());
    lines.extend(rdt.schemata.iter().flatten().cloned());
    lines
}

/// Where the state dir records a group hull made, for delete (the config may be gone by then).
const MADE_FILE: &str = "resctrl-group";

/// Puts `pid` (the init) into the container's resctrl group. Called with the bundle's
/// config only when `linux.intelRdt` is set; a group made here is removed again on error, and
/// recorded in `state_dir` for delete when it was made under the container's id.
pub fn join(spec: &Spec, bundle: &Path, id: &str, pid: i32, state_dir: &Path) -> Result<()> {
    if spec
        .linux()
        .as_ref()
        .and_then(|l| l.intel_rdt().as_ref())
        .is_none()
    {
        return Ok(());
    }
    let Some(rdt) = from_config(&config_of(bundle)?)? else {
        return Ok(());
    };
    let mount = resctrl_mount().context("linux.intelRdt: resctrl is not mounted")?;
    let group = match rdt.clos_id.as_deref() {
        Some("/") => mount.clone(),
        Some(c) => mount.join(c),
        None => mount.join(id),
    };
    let lines = schema_lines(&rdt);
    let mut made = false;
    if !group.exists() {
        if rdt.clos_id.is_some() && lines.is_empty() {
            bail!(
                "linux.intelRdt.closID: no resctrl group {}",
                group.display()
            );
        }
        std::fs::create_dir(&group)
            .with_context(|| format!("linux.intelRdt: create {}", group.display()))?;
        made = true;
    }
    let res = (|| -> Result<()> {
        if made || rdt.clos_id.is_none() {
            for l in &lines {
                std::fs::write(group.join("schemata"), format!("{l}\n"))
                    .with_context(|| format!("linux.intelRdt: write {l:?} to schemata"))?;
            }
        } else if !lines.is_empty() {
            let have = std::fs::read_to_string(group.join("schemata"))
                .with_context(|| format!("linux.intelRdt: read {}/schemata", group.display()))?;
            let have: Vec<String> = have.lines().map(|l| l.replace(' ', "")).collect();
            for l in &lines {
                if !have.iter().any(|h| *h == l.replace(' ', "")) {
                    bail!(
                        "linux.intelRdt: existing group {} has a different schema than {l:?}",
                        group.display()
                    );
                }
            }
        }
        std::fs::write(group.join("tasks"), pid.to_string()).with_context(|| {
            format!("linux.intelRdt: add the init to {}/tasks", group.display())
        })?;
        if made && rdt.clos_id.is_none() {
            std::fs::write(
                state_dir.join(MADE_FILE),
                group.as_os_str().as_encoded_bytes(),
            )
            .context("linux.intelRdt: record the group")?;
        }
        Ok(())
    })();
    if res.is_err() && made {
        let _ = std::fs::remove_dir(&group);
    }
    res
}

/// On delete: removes the group hull made under the container's id (never a `closID`). One
/// failed open when there is none.
pub fn remove(state_dir: &Path) {
    if let Ok(group) = std::fs::read(state_dir.join(MADE_FILE)) {
        use std::os::unix::ffi::OsStrExt;
        let _ = std::fs::remove_dir(std::ffi::OsStr::from_bytes(&group));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked_and_ordered() {
        let rdt = |v: serde_json::Value| {
            from_config(&serde_json::json!({"linux": {"intelRdt": v}}))
                .unwrap()
                .unwrap()
        };
        let r = rdt(
            serde_json::json!({"closID": "g", "schemata": ["L2:0=f"], "memBwSchema": "MB:0=20", "l3CacheSchema": "L3:0=7f0"}),
        );
        check(&r).unwrap();
        assert_eq!(schema_lines(&r), ["L3:0=7f0", "MB:0=20", "L2:0=f"]);
        let e = |v| format!("{:#}", check(&rdt(v)).unwrap_err());
        assert!(e(serde_json::json!({"memBwSchema": "L3:0=1"}))
            .starts_with("linux.intelRdt.memBwSchema"));
        assert!(e(serde_json::json!({"closID": "../x"})).starts_with("linux.intelRdt.closID"));
        assert!(e(serde_json::json!({"enableMonitoring": true}))
            .starts_with("linux.intelRdt.enableMonitoring"));
    }
}
