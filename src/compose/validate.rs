//! Checks across the whole project, after every service is typed: references to services,
//! networks, volumes, secrets and configs exist; no dependency cycle; build contexts exist;
//! settings that cannot work together are refused.

use super::conv::child;
use super::model::{FileSource, MountType, Project, Service};
use super::order::find_cycle;
use super::ComposeError;

pub fn validate(p: &mut Project) -> Result<(), ComposeError> {
    let names: Vec<String> = p.services.keys().cloned().collect();
    for (name, s) in p.services.iter_mut() {
        let path = child("services", name);
        // A `required: false` dependency on a service that does not exist is dropped.
        s.depends_on
            .retain(|d, dep| dep.required || names.iter().any(|n| n == d));
        for d in s.depends_on.keys() {
            if !names.contains(d) {
                return Err(ComposeError::invalid(
                    &child(&child(&path, "depends_on"), d),
                    format!("depends on undefined service {d:?}"),
                ));
            }
        }
    }
    for (name, s) in &p.services {
        check_service(p, name, s)?;
    }
    for (what, objects) in [("secrets", &p.secrets), ("configs", &p.configs)] {
        for (key, o) in objects {
            if let FileSource::File(f) = &o.source {
                if !f.is_file() {
                    return Err(ComposeError::invalid(
                        &format!("{what}.{key}.file"),
                        format!("{} does not exist", f.display()),
                    ));
                }
            }
        }
    }
    if let Some(cycle) = find_cycle(&p.services) {
        return Err(ComposeError::invalid(
            "services",
            format!("dependency cycle: {}", cycle.join(" -> ")),
        ));
    }
    Ok(())
}

fn check_service(p: &Project, name: &str, s: &Service) -> Result<(), ComposeError> {
    let path = child("services", name);
    if s.image.is_none() && s.build.is_none() {
        return Err(ComposeError::invalid(&path, "has neither image nor build"));
    }
    if let Some(b) = &s.build {
        if !b.context.is_dir() {
            return Err(ComposeError::invalid(
                &child(&child(&path, "build"), "context"),
                format!("build context {} is not a directory", b.context.display()),
            ));
        }
    }
    if s.container_name.is_some() && s.replicas > 1 {
        return Err(ComposeError::invalid(
            &child(&path, "container_name"),
            format!(
                "a fixed container name cannot be used with {} replicas",
                s.replicas
            ),
        ));
    }
    if let Some(d) = &s.deploy {
        let pairs = [
            (
                "mem_limit",
                s.mem_limit.map(|v| v as f64),
                d.limits.memory.map(|v| v as f64),
            ),
            ("cpus", s.cpus, d.limits.cpus),
            (
                "pids_limit",
                s.pids_limit.map(|v| v as f64),
                d.limits.pids.map(|v| v as f64),
            ),
        ];
        for (key, direct, deploy) in pairs {
            if let (Some(a), Some(b)) = (direct, deploy) {
                if a != b {
                    return Err(ComposeError::invalid(
                        &child(&path, key),
                        "differs from the value in deploy.resources.limits",
                    ));
                }
            }
        }
    }
    if let Some(mode) = &s.network_mode {
        if !s.networks.is_empty() {
            return Err(ComposeError::invalid(
                &child(&path, "network_mode"),
                "cannot be combined with networks",
            ));
        }
        match mode.split_once(':') {
            Some(("service", other)) if !p.services.contains_key(other) => {
                return Err(ComposeError::invalid(
                    &child(&path, "network_mode"),
                    format!("refers to undefined service {other:?}"),
                ))
            }
            Some(("service" | "container", _)) => {}
            None if matches!(mode.as_str(), "host" | "none" | "bridge") => {}
            _ => {
                return Err(ComposeError::invalid(
                    &child(&path, "network_mode"),
                    format!("unsupported network mode {mode:?}"),
                ))
            }
        }
    }
    for net in s.networks.keys() {
        if !p.networks.contains_key(net) {
            return Err(ComposeError::invalid(
                &child(&child(&path, "networks"), net),
                format!("refers to undefined network {net:?}"),
            ));
        }
    }
    for (i, m) in s.volumes.iter().enumerate() {
        if m.kind != MountType::Volume {
            continue;
        }
        if let Some(src) = &m.source {
            if !p.volumes.contains_key(src) {
                return Err(ComposeError::invalid(
                    &format!("{path}.volumes[{i}]"),
                    format!("named volume {src:?} is not declared in the top-level volumes"),
                ));
            }
        }
    }
    for (what, refs, defined) in [
        ("secrets", &s.secrets, &p.secrets),
        ("configs", &s.configs, &p.configs),
    ] {
        for (i, r) in refs.iter().enumerate() {
            if !defined.contains_key(&r.source) {
                return Err(ComposeError::invalid(
                    &format!("{path}.{what}[{i}]"),
                    format!(
                        "refers to undefined {} {:?}",
                        &what[..what.len() - 1],
                        r.source
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Splits services by profile: enabled are those without profiles, with an active one (`*`
/// activates all), or named in `targets` (whose profiles then become active, as in compose).
/// An enabled service requiring a disabled one is an error.
pub fn apply_profiles(
    p: &mut Project,
    profiles: &[String],
    targets: &[String],
) -> Result<(), ComposeError> {
    let mut active: Vec<String> = profiles.to_vec();
    for t in targets {
        match p.services.get(t) {
            Some(s) => active.extend(s.profiles.iter().cloned()),
            None => return Err(ComposeError::NotFound(format!("no such service: {t}"))),
        }
    }
    let all = active.iter().any(|a| a == "*");
    let enabled = |name: &str, s: &Service| {
        s.profiles.is_empty()
            || all
            || targets.iter().any(|t| t == name)
            || s.profiles.iter().any(|x| active.contains(x))
    };
    let (on, off): (Vec<_>, Vec<_>) = std::mem::take(&mut p.services)
        .into_iter()
        .partition(|(n, s)| enabled(n, s));
    p.services = on.into_iter().collect();
    p.disabled_services = off.into_iter().collect();
    for (name, s) in p.services.iter_mut() {
        s.depends_on
            .retain(|d, dep| dep.required || !p.disabled_services.contains_key(d));
        for d in s.depends_on.keys() {
            if let Some(off) = p.disabled_services.get(d) {
                return Err(ComposeError::invalid(
                    &format!("services.{name}.depends_on.{d}"),
                    format!(
                        "service {d:?} is disabled: enable profile {}",
                        off.profiles.join(" or ")
                    ),
                ));
            }
        }
    }
    Ok(())
}
