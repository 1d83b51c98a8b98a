//! A compose service to the engine's `CreateOptions`. Settings berth's engine cannot apply are
//! errors naming the key (`services.web.ports[0].protocol sctp: not supported by berth's
//! engine`), never dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{OpError, Result};
use crate::compose::model::{FileSource, Mount, MountType, Port, Project, Protocol, Service};
use crate::compose::naming::{container_labels, container_name, service_image};
use crate::engine::opts::{self, MountSpec, Ulimit};
use crate::engine::CreateOptions;
use crate::image::types::HealthConfig;
use crate::network::{NetworkMode, PortMap};

fn unsupported(service: &str, key: &str) -> OpError {
    OpError::Failed(format!(
        "services.{service}.{key}: not supported by berth's engine"
    ))
}

/// Keys the model types but berth's engine has no setting for.
fn refuse_unsupported(s: &Service) -> Result<()> {
    if s.deploy
        .as_ref()
        .is_some_and(|d| d.reservations.cpus.is_some())
    {
        return Err(unsupported(&s.name, "deploy.resources.reservations.cpus"));
    }
    Ok(())
}

fn port_maps(s: &Service) -> Result<Vec<PortMap>> {
    let mut out = Vec::new();
    for (i, p) in s.ports.iter().enumerate() {
        out.push(port_map(s, i, p)?);
    }
    Ok(out)
}

fn port_map(s: &Service, i: usize, p: &Port) -> Result<PortMap> {
    if p.protocol == Protocol::Sctp {
        return Err(unsupported(&s.name, &format!("ports[{i}].protocol sctp")));
    }
    if p.mode != "ingress" && p.mode != "host" {
        return Err(OpError::Failed(format!(
            "services.{}.ports[{i}].mode: unknown mode {:?}",
            s.name, p.mode
        )));
    }
    Ok(PortMap {
        host_ip: p.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into()),
        // A host range for one container port: docker takes the first free one; berth the first.
        host_port: p.published.map(|r| r.0).unwrap_or(0),
        container_port: p.target,
        proto: p.protocol.as_str().into(),
    })
}

fn mount(p: &Project, s: &Service, i: usize, m: &Mount) -> Result<MountSpec> {
    let key = format!("volumes[{i}]");
    for (what, used) in [
        ("propagation", m.propagation.is_some()),
        ("selinux", m.selinux.is_some()),
        ("subpath", m.subpath.is_some()),
        ("nocopy", m.nocopy),
    ] {
        if used {
            return Err(unsupported(&s.name, &format!("{key}.{what}")));
        }
    }
    let (source, anonymous) = match (m.kind, &m.source) {
        (MountType::Volume, Some(v)) => match p.volumes.get(v) {
            Some(vol) => (vol.name.clone(), false),
            None => (v.clone(), false),
        },
        (MountType::Volume, None) => (String::new(), true),
        (MountType::Bind, Some(path)) => {
            if m.create_host_path && !Path::new(path).exists() {
                std::fs::create_dir_all(path).map_err(|e| {
                    OpError::Failed(format!("services.{}.{key}: creating {path}: {e}", s.name))
                })?;
            }
            (path.clone(), false)
        }
        (MountType::Bind, None) => {
            return Err(OpError::Failed(format!(
                "services.{}.{key}: a bind mount needs a source",
                s.name
            )))
        }
        (MountType::Tmpfs, _) => (String::new(), false),
    };
    let mut options = Vec::new();
    if let Some(size) = m.tmpfs_size {
        options.push(format!("size={size}"));
    }
    if let Some(mode) = m.tmpfs_mode {
        options.push(format!("mode={mode:o}"));
    }
    Ok(MountSpec {
        typ: m.kind.as_str().into(),
        source,
        target: m.target.clone(),
        readonly: m.read_only,
        anonymous,
        options,
        create_source: false,
    })
}

/// Where secrets and configs given as values (not files) are written to be bind-mounted.
pub fn objects_dir(root: &Path, project: &str) -> PathBuf {
    root.join("compose").join(project)
}

/// Secrets and configs become read-only bind mounts of their file (or of a file holding their
/// value).
fn file_mounts(root: &Path, p: &Project, s: &Service) -> Result<Vec<MountSpec>> {
    let mut out = Vec::new();
    for (what, refs, objects) in [
        ("secrets", &s.secrets, &p.secrets),
        ("configs", &s.configs, &p.configs),
    ] {
        for (i, r) in refs.iter().enumerate() {
            if r.uid.is_some() || r.gid.is_some() || r.mode.is_some() {
                return Err(unsupported(&s.name, &format!("{what}[{i}].uid/gid/mode")));
            }
            let Some(obj) = objects.get(&r.source) else {
                return Err(OpError::Failed(format!(
                    "services.{}.{what}[{i}]: undefined {what} {:?}",
                    s.name, r.source
                )));
            };
            let source = match &obj.source {
                FileSource::File(f) => f.clone(),
                FileSource::Environment(_) | FileSource::Content(_) => {
                    let value = match &obj.source {
                        FileSource::Content(c) => c.clone(),
                        FileSource::Environment(v) => std::env::var(v).unwrap_or_default(),
                        FileSource::File(_) => String::new(),
                    };
                    let dir = objects_dir(root, &p.name).join(what);
                    std::fs::create_dir_all(&dir)
                        .map_err(|e| OpError::Failed(format!("creating {}: {e}", dir.display())))?;
                    let f = dir.join(&r.source);
                    std::fs::write(&f, value)
                        .map_err(|e| OpError::Failed(format!("writing {}: {e}", f.display())))?;
                    f
                }
            };
            out.push(MountSpec {
                typ: "bind".into(),
                source: source.to_string_lossy().into_owned(),
                target: r.target.clone(),
                readonly: true,
                anonymous: false,
                options: vec![],
                create_source: false,
            });
        }
    }
    Ok(out)
}

fn nanos(d: Option<std::time::Duration>) -> i64 {
    d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// compose's `healthcheck:` as the engine's health config; `disable` as `--no-healthcheck`.
fn health(s: &Service, o: &mut CreateOptions) {
    let Some(h) = &s.healthcheck else { return };
    if h.disable || h.test.first().map(String::as_str) == Some("NONE") {
        o.no_healthcheck = true;
        return;
    }
    o.healthcheck = Some(HealthConfig {
        test: h.test.clone(),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        start_period: nanos(h.start_period),
        start_interval: nanos(h.start_interval),
        retries: h.retries.map(|r| r as i64).unwrap_or(0),
    });
}

/// The network a service joins first (the engine's `--network`) and the ones connected after
/// create, by engine name; `network_mode` instead when set.
pub fn networks(p: &Project, s: &Service) -> Result<(NetworkMode, Vec<String>)> {
    if let Some(mode) = &s.network_mode {
        let m = match mode.strip_prefix("service:") {
            Some(other) => {
                let o = p.services.get(other).ok_or_else(|| {
                    OpError::Failed(format!(
                        "services.{}.network_mode: no such service {other:?}",
                        s.name
                    ))
                })?;
                NetworkMode::Container(container_name(&p.name, o, 1))
            }
            None => NetworkMode::parse(mode),
        };
        return Ok((m, vec![]));
    }
    let mut names = Vec::new();
    for key in s.networks.keys() {
        let net = p.networks.get(key).ok_or_else(|| {
            OpError::Failed(format!(
                "services.{}.networks.{key}: undefined network",
                s.name
            ))
        })?;
        names.push(net.name.clone());
    }
    if names.is_empty() {
        return Ok((NetworkMode::None, vec![]));
    }
    let first = names.remove(0);
    Ok((NetworkMode::User(first), names))
}

/// The create options of container `number` of service `s`. `name` overrides the
/// conventional name (one-off containers).
pub fn create_options(
    root: &Path,
    p: &Project,
    s: &Service,
    number: u32,
    oneoff: Option<&str>,
) -> Result<CreateOptions> {
    refuse_unsupported(s)?;
    let mut o = CreateOptions {
        image: service_image(&p.name, s),
        name: Some(match oneoff {
            Some(n) => n.to_string(),
            None => container_name(&p.name, s, number),
        }),
        labels: container_labels(p, s, number, oneoff.is_some()),
        ..CreateOptions::default()
    };
    let mut command = s.command.clone().unwrap_or_default();
    if let Some(ep) = &s.entrypoint {
        // The engine takes one ENTRYPOINT word; the others lead the command, which is what
        // the process sees either way.
        match ep.split_first() {
            Some((first, rest)) => {
                o.entrypoint = Some(first.clone());
                command.splice(0..0, rest.iter().cloned());
            }
            None => o.entrypoint = Some(String::new()),
        }
    }
    o.command = command;
    o.env = s
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();
    o.ports = port_maps(s)?;
    for (i, m) in s.volumes.iter().enumerate() {
        o.mounts.push(mount(p, s, i, m)?);
    }
    for t in &s.tmpfs {
        o.mounts.push(
            opts::parse_tmpfs(t)
                .map_err(|e| OpError::Failed(format!("services.{}.tmpfs: {e:#}", s.name)))?,
        );
    }
    o.mounts.extend(file_mounts(root, p, s)?);
    let (mode, _) = networks(p, s)?;
    if mode.is_user_defined() {
        let mut aliases = vec![s.name.clone()];
        for sn in s.networks.values() {
            aliases.extend(sn.aliases.iter().cloned());
        }
        aliases.dedup();
        o.network_aliases = aliases;
    }
    o.network = mode;
    o.hostname = s.hostname.clone();
    o.host = super::hostcfg::host_config(p, s)?;
    o.workdir = s.working_dir.clone();
    o.user = s.user.clone();
    o.tty = s.tty;
    o.interactive = s.stdin_open;
    o.resources.memory = s.memory_limit().map(|m| m as i64);
    o.resources.cpus = s.cpu_limit();
    o.resources.pids_limit = s.pids();
    o.resources.ulimits = s
        .ulimits
        .iter()
        .map(|(name, u)| Ulimit {
            name: name.clone(),
            soft: u.soft.max(0) as u64,
            hard: u.hard.max(0) as u64,
        })
        .collect();
    o.cap_add = s.cap_add.clone();
    o.cap_drop = s.cap_drop.clone();
    o.privileged = s.privileged;
    o.read_only = s.read_only;
    o.init = s.init.unwrap_or(false);
    o.stop_signal = s.stop_signal.clone();
    o.stop_timeout = s.stop_grace_period.map(|d| d.as_secs());
    o.restart = if oneoff.is_some() {
        opts::RestartPolicy::No
    } else {
        opts::parse_restart(&s.restart_policy())
            .map_err(|e| OpError::Failed(format!("services.{}.restart: {e:#}", s.name)))?
    };
    health(s, &mut o);
    Ok(o)
}

/// Labels by key, for reports.
pub fn label<'a>(labels: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    labels.get(key).map(String::as_str).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::{Healthcheck, ServiceNetwork};

    fn project() -> Project {
        let mut p = Project {
            name: "app".into(),
            ..Project::default()
        };
        p.networks.insert(
            "default".into(),
            crate::compose::model::Network {
                name: "app_default".into(),
                ..Default::default()
            },
        );
        p
    }

    fn svc() -> Service {
        let mut s = Service {
            name: "web".into(),
            image: Some("busybox".into()),
            replicas: 1,
            ..Service::default()
        };
        s.networks.insert(
            "default".into(),
            ServiceNetwork {
                aliases: vec!["www".into()],
                ..Default::default()
            },
        );
        s
    }

    #[test]
    fn entrypoint_list_leads_the_command() {
        let mut s = svc();
        s.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
        s.command = Some(vec!["echo hi".into()]);
        let o = create_options(Path::new("/nonexistent"), &project(), &s, 2, None).unwrap();
        assert_eq!(o.entrypoint.as_deref(), Some("/bin/sh"));
        assert_eq!(o.command, ["-c", "echo hi"]);
        assert_eq!(o.name.as_deref(), Some("app-web-2"));
        assert_eq!(o.network, NetworkMode::User("app_default".into()));
        assert_eq!(o.network_aliases, ["web", "www"]);
        s.entrypoint = Some(vec![]);
        let o = create_options(Path::new("/x"), &project(), &s, 1, None).unwrap();
        assert_eq!(o.entrypoint.as_deref(), Some(""));
    }

    #[test]
    fn health_and_restart_map_to_the_engine() {
        let mut s = svc();
        s.restart = Some("on-failure:3".into());
        s.healthcheck = Some(Healthcheck {
            test: vec!["CMD".into(), "true".into()],
            interval: Some(std::time::Duration::from_secs(2)),
            retries: Some(4),
            ..Default::default()
        });
        let o = create_options(Path::new("/x"), &project(), &s, 1, None).unwrap();
        assert_eq!(o.restart, opts::RestartPolicy::OnFailure(3));
        let h = o.healthcheck.unwrap();
        assert_eq!((h.interval, h.retries), (2_000_000_000, 4));
        s.healthcheck = Some(Healthcheck {
            disable: true,
            ..Default::default()
        });
        let o = create_options(Path::new("/x"), &project(), &s, 1, Some("app-web-run-1")).unwrap();
        assert!(o.no_healthcheck && o.restart == opts::RestartPolicy::No);
    }

    #[test]
    fn host_config_keys_map_with_run_checks() {
        let mut s = svc();
        s.extra_hosts = vec![("a".into(), "1.2.3.4".into())];
        s.dns = vec!["10.0.0.53".into()];
        s.sysctls.insert("net.ipv4.ip_forward".into(), "1".into());
        s.pid = Some("host".into());
        s.networks.get_mut("default").unwrap().ipv4_address = Some("10.0.0.5".into());
        let o = create_options(Path::new("/x"), &project(), &s, 1, None).unwrap();
        assert_eq!(o.host.extra_hosts, [("a".into(), "1.2.3.4".into())]);
        assert_eq!(
            o.host.dns,
            ["10.0.0.53".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(o.host.pid, crate::engine::hostconfig::NsMode::Host);
        assert_eq!(o.host.ip, Some("10.0.0.5".parse().unwrap()));
        let mut p = project();
        p.services.insert(
            "db".into(),
            Service {
                name: "db".into(),
                ..svc()
            },
        );
        s.links = vec!["db:database".into()];
        s.pid = Some("service:db".into());
        let o = create_options(Path::new("/x"), &p, &s, 1, None).unwrap();
        assert_eq!(o.host.links, [("app-db-1".into(), "database".into())]);
        assert_eq!(
            o.host.pid,
            crate::engine::hostconfig::NsMode::Container("app-db-1".into())
        );
        assert!(crate::compose::order::dependencies(&s).contains("db"));
        let err = |s: &Service| {
            create_options(Path::new("/x"), &project(), s, 1, None)
                .unwrap_err()
                .to_string()
        };
        let mut bad = svc();
        bad.dns = vec!["1.1.1.1".into(), "nope".into()];
        assert!(
            err(&bad).starts_with("services.web.dns[1]: "),
            "{}",
            err(&bad)
        );
        let mut bad = svc();
        bad.sysctls.insert("vm.swappiness".into(), "1".into());
        assert!(err(&bad).starts_with("services.web.sysctls.vm.swappiness: "));
        let mut bad = svc();
        bad.ipc = Some("service:nope".into());
        assert!(err(&bad).starts_with("services.web.ipc: no such service"));
        let mut bad = svc();
        bad.oom_score_adj = Some(5000);
        assert!(err(&bad).contains("oom score adj"), "{}", err(&bad));
        let mut bad = svc();
        bad.networks.get_mut("default").unwrap().ipv6_address = Some("fd00::5".into());
        assert_eq!(
            err(&bad),
            "services.web.networks.default.ipv6_address: not supported by berth's engine"
        );
    }

    #[test]
    fn a_fixed_address_on_every_network() {
        use crate::compose::ops::hostcfg::fixed_ips;
        let mut s = svc();
        s.networks.get_mut("default").unwrap().ipv4_address = Some("10.0.0.5".into());
        s.networks.insert("mid".into(), ServiceNetwork::default());
        s.networks.insert(
            "zback".into(),
            ServiceNetwork {
                ipv4_address: Some("10.1.0.6".into()),
                ..Default::default()
            },
        );
        let ips = fixed_ips(&s).unwrap();
        assert_eq!(
            ips,
            [
                Some("10.0.0.5".parse().unwrap()),
                None,
                Some("10.1.0.6".parse().unwrap())
            ]
        );
        s.networks.get_mut("zback").unwrap().ipv4_address = Some("10.1.0".into());
        assert_eq!(
            fixed_ips(&s).unwrap_err().to_string(),
            "services.web.networks.zback.ipv4_address: \"10.1.0\" is not an IPv4 address"
        );
        s.networks.get_mut("zback").unwrap().ipv4_address = None;
        s.network_mode = Some("host".into());
        assert!(fixed_ips(&s)
            .unwrap_err()
            .to_string()
            .starts_with("services.web.networks.default.ipv4_address: "));
    }
}
