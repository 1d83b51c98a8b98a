//! One service's tree → `Service`. Every key is matched explicitly: a key berth does not
//! support is an error naming it, never silently dropped.

use std::collections::BTreeMap;

use super::conv::{
    boolean, bytes, child, dict, dict_strings, duration, float, int, is_extension, list, map,
    string, string_or_list, uint, unsupported,
};
use super::interpolate::Env;
use super::model::{EnvFile, PullPolicy, Service, Ulimit};
use super::node::Node;
use super::parts::{
    parse_build, parse_depends_on, parse_deploy, parse_file_refs, parse_healthcheck, parse_networks,
};
use super::ports::parse_ports;
use super::volumes::{parse_volumes, PathCtx};
use super::{dotenv, ComposeError};

pub struct Ctx<'a> {
    pub paths: PathCtx<'a>,
    pub env: &'a Env,
}

pub fn parse_service(name: &str, n: &Node, path: &str, ctx: &Ctx) -> Result<Service, ComposeError> {
    let m = map(n, path)?;
    let mut s = Service {
        name: name.to_string(),
        replicas: 1,
        ..Service::default()
    };
    let mut scale = None;
    let mut environment = BTreeMap::new();
    for (k, v) in m {
        let p = child(path, k);
        match k.as_str() {
            "image" => s.image = Some(string(v, &p)?),
            "build" => s.build = Some(parse_build(v, &p, &ctx.paths)?),
            "command" => s.command = command(v, &p)?,
            "entrypoint" => s.entrypoint = command(v, &p)?,
            "environment" => environment = dict(v, &p)?,
            "env_file" => s.env_file = env_files(v, &p, &ctx.paths)?,
            "ports" => s.ports = parse_ports(v, &p)?,
            "expose" => s.expose = string_or_list(v, &p)?,
            "volumes" => s.volumes = parse_volumes(v, &p, &ctx.paths)?,
            "tmpfs" => s.tmpfs = string_or_list(v, &p)?,
            "networks" => s.networks = parse_networks(v, &p)?,
            "network_mode" => s.network_mode = Some(string(v, &p)?),
            "depends_on" => s.depends_on = parse_depends_on(v, &p)?,
            "healthcheck" => s.healthcheck = Some(parse_healthcheck(v, &p)?),
            "restart" => s.restart = Some(restart(v, &p)?),
            "labels" => s.labels = dict_strings(v, &p)?,
            "user" => s.user = Some(string(v, &p)?),
            "working_dir" => s.working_dir = Some(string(v, &p)?),
            "hostname" => s.hostname = Some(string(v, &p)?),
            "domainname" => s.domainname = Some(string(v, &p)?),
            "extra_hosts" => s.extra_hosts = extra_hosts(v, &p)?,
            "dns" => s.dns = string_or_list(v, &p)?,
            "dns_search" => s.dns_search = string_or_list(v, &p)?,
            "cap_add" => s.cap_add = list(v, &p)?,
            "cap_drop" => s.cap_drop = list(v, &p)?,
            "privileged" => s.privileged = boolean(v, &p)?,
            "read_only" => s.read_only = boolean(v, &p)?,
            "tty" => s.tty = boolean(v, &p)?,
            "stdin_open" => s.stdin_open = boolean(v, &p)?,
            "ulimits" => s.ulimits = ulimits(v, &p)?,
            "sysctls" => s.sysctls = dict_strings(v, &p)?,
            "init" => s.init = Some(boolean(v, &p)?),
            "stop_signal" => s.stop_signal = Some(string(v, &p)?),
            "stop_grace_period" => s.stop_grace_period = Some(duration(v, &p)?),
            "mem_limit" => s.mem_limit = Some(bytes(v, &p)?),
            "mem_reservation" => s.mem_reservation = Some(bytes(v, &p)?),
            "shm_size" => s.shm_size = Some(bytes(v, &p)?),
            "cpus" => s.cpus = Some(float(v, &p)?),
            "pids_limit" => s.pids_limit = Some(int(v, &p)?),
            "deploy" => s.deploy = Some(parse_deploy(v, &p)?),
            "scale" => scale = Some(uint::<u32>(v, &p)?),
            "secrets" => s.secrets = parse_file_refs(v, &p, "/run/secrets/")?,
            "configs" => s.configs = parse_file_refs(v, &p, "/")?,
            "container_name" => s.container_name = Some(string(v, &p)?),
            "pull_policy" => s.pull_policy = Some(pull_policy(v, &p)?),
            "profiles" => s.profiles = list(v, &p)?,
            "dns_opt" => s.dns_opt = string_or_list(v, &p)?,
            "group_add" => s.group_add = list(v, &p)?,
            "devices" => s.devices = list(v, &p)?,
            "links" => s.links = list(v, &p)?,
            "external_links" => s.external_links = list(v, &p)?,
            "mac_address" => s.mac_address = Some(string(v, &p)?),
            "cpuset" => s.cpuset = Some(string(v, &p)?),
            "cgroup_parent" => s.cgroup_parent = Some(string(v, &p)?),
            "pid" => s.pid = Some(string(v, &p)?),
            "ipc" => s.ipc = Some(string(v, &p)?),
            "memswap_limit" => s.memswap_limit = Some(memswap(v, &p)?),
            "oom_kill_disable" => s.oom_kill_disable = boolean(v, &p)?,
            "oom_score_adj" => s.oom_score_adj = Some(int(v, &p)?),
            "cpu_quota" => s.cpu_quota = Some(int(v, &p)?),
            "cpu_period" => s.cpu_period = Some(int(v, &p)?),
            "blkio_config" => s.blkio_weight = blkio_weight(v, &p)?,
            k if is_extension(k) => {}
            _ => return Err(unsupported(path, k)),
        }
    }
    s.replicas = match (scale, s.deploy.as_ref().and_then(|d| d.replicas)) {
        (Some(a), Some(b)) if a != b => {
            return Err(ComposeError::invalid(
                path,
                format!("scale ({a}) and deploy.replicas ({b}) differ"),
            ))
        }
        (Some(a), _) | (None, Some(a)) => a,
        (None, None) => 1,
    };
    s.environment = resolve_environment(&s.env_file, environment, path, ctx)?;
    Ok(s)
}

/// A string is split as a shell would split words (quotes, backslashes; no expansion), as
/// compose does; a list is taken as is. `null` or `[]` leaves the image's value.
fn command(n: &Node, path: &str) -> Result<Option<Vec<String>>, ComposeError> {
    match n {
        Node::Null => Ok(None),
        Node::Seq(_) => Ok(Some(list(n, path)?)),
        other => {
            let s = string(other, path)?;
            shell_words::split(&s)
                .map(Some)
                .map_err(|e| ComposeError::invalid(path, format!("cannot split {s:?}: {e}")))
        }
    }
}

fn env_files(n: &Node, path: &str, paths: &PathCtx) -> Result<Vec<EnvFile>, ComposeError> {
    let items = match n {
        Node::Seq(items) => items.clone(),
        other => vec![other.clone()],
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let (file, required) = match item {
            Node::Map(m) => {
                let mut file = None;
                let mut required = true;
                for (k, v) in m {
                    let kp = child(&p, k);
                    match k.as_str() {
                        "path" => file = Some(string(v, &kp)?),
                        "required" => required = boolean(v, &kp)?,
                        "format" if string(v, &kp)? == "raw" => {
                            return Err(ComposeError::invalid(&kp, "format raw is not supported"))
                        }
                        "format" => {}
                        k if is_extension(k) => {}
                        _ => return Err(unsupported(&p, k)),
                    }
                }
                let file =
                    file.ok_or_else(|| ComposeError::invalid(&child(&p, "path"), "is required"))?;
                (file, required)
            }
            other => (string(other, &p)?, true),
        };
        out.push(EnvFile {
            path: paths.resolve(&file),
            required,
        });
    }
    Ok(out)
}

/// The container environment: env_file entries, then `environment` over them; a key without a
/// value takes the project environment's value, or stays unset.
fn resolve_environment(
    files: &[EnvFile],
    explicit: BTreeMap<String, Option<String>>,
    path: &str,
    ctx: &Ctx,
) -> Result<BTreeMap<String, Option<String>>, ComposeError> {
    let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
    let lookup = |k: &str| ctx.env.get(k).cloned();
    for f in files {
        let text = match std::fs::read_to_string(&f.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !f.required => continue,
            Err(e) => {
                return Err(ComposeError::invalid(
                    &child(path, "env_file"),
                    format!("{}: {e}", f.path.display()),
                ))
            }
        };
        for (k, v) in dotenv::parse(&text, &f.path.to_string_lossy(), &lookup)? {
            out.insert(k, Some(v));
        }
    }
    for (k, v) in explicit {
        let v = v.or_else(|| lookup(&k));
        out.insert(k, v);
    }
    Ok(out)
}

fn restart(n: &Node, path: &str) -> Result<String, ComposeError> {
    let s = match n {
        // `restart: no` unquoted is a string in YAML 1.2, but `false` is a boolean.
        Node::Bool(false) => "no".to_string(),
        other => string(other, path)?,
    };
    let ok = match s.split_once(':') {
        Some(("on-failure", n)) => n.parse::<u32>().is_ok(),
        Some(_) => false,
        None => matches!(
            s.as_str(),
            "no" | "always" | "on-failure" | "unless-stopped"
        ),
    };
    if !ok {
        return Err(ComposeError::invalid(
            path,
            format!("invalid restart policy {s:?} (no, always, on-failure[:N], unless-stopped)"),
        ));
    }
    Ok(s)
}

/// `memswap_limit`: a size, or -1 for unlimited swap.
fn memswap(n: &Node, path: &str) -> Result<i64, ComposeError> {
    if matches!(int(n, path), Ok(-1)) {
        return Ok(-1);
    }
    let b = bytes(n, path)?;
    i64::try_from(b).map_err(|_| ComposeError::invalid(path, format!("{b} is too large")))
}

/// `blkio_config`: only `weight` has an engine setting; the per-device weights and the
/// bps/iops limits are refused by key.
fn blkio_weight(n: &Node, path: &str) -> Result<Option<i64>, ComposeError> {
    let mut weight = None;
    for (k, v) in map(n, path)? {
        match k.as_str() {
            "weight" => weight = Some(int(v, &child(path, k))?),
            k if is_extension(k) => {}
            _ => return Err(unsupported(path, k)),
        }
    }
    Ok(weight)
}

fn extra_hosts(n: &Node, path: &str) -> Result<Vec<(String, String)>, ComposeError> {
    let mut out = Vec::new();
    match n {
        Node::Map(m) => {
            for (k, v) in m {
                for ip in string_or_list(v, &child(path, k))? {
                    out.push((k.clone(), ip));
                }
            }
        }
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{path}[{i}]");
                let s = string(item, &p)?;
                // `host=ip` (compose ≥ 2.24) or docker's `host:ip`; IPv6 addresses hold colons.
                let pair = s.split_once('=').or_else(|| s.split_once(':'));
                let (h, ip) = pair.ok_or_else(|| {
                    ComposeError::invalid(&p, format!("invalid extra host {s:?} (host=ip)"))
                })?;
                out.push((h.to_string(), ip.trim_matches(['[', ']']).to_string()));
            }
        }
        other => {
            return Err(ComposeError::invalid(
                path,
                format!("must be a list or mapping, found {}", other.kind()),
            ))
        }
    }
    Ok(out)
}

fn ulimits(n: &Node, path: &str) -> Result<BTreeMap<String, Ulimit>, ComposeError> {
    let mut out = BTreeMap::new();
    for (k, v) in map(n, path)? {
        let p = child(path, k);
        let u = match v {
            Node::Map(m) => {
                let mut soft = None;
                let mut hard = None;
                for (lk, lv) in m {
                    match lk.as_str() {
                        "soft" => soft = Some(int(lv, &child(&p, lk))?),
                        "hard" => hard = Some(int(lv, &child(&p, lk))?),
                        lk if is_extension(lk) => {}
                        _ => return Err(unsupported(&p, lk)),
                    }
                }
                match (soft, hard) {
                    (Some(soft), Some(hard)) if soft <= hard => Ulimit { soft, hard },
                    (Some(_), Some(_)) => {
                        return Err(ComposeError::invalid(&p, "soft limit exceeds hard limit"))
                    }
                    _ => return Err(ComposeError::invalid(&p, "needs both soft and hard")),
                }
            }
            other => {
                let x = int(other, &p)?;
                Ulimit { soft: x, hard: x }
            }
        };
        out.insert(k.clone(), u);
    }
    Ok(out)
}

fn pull_policy(n: &Node, path: &str) -> Result<PullPolicy, ComposeError> {
    let s = string(n, path)?;
    Ok(match s.as_str() {
        "always" => PullPolicy::Always,
        "never" => PullPolicy::Never,
        "missing" | "if_not_present" => PullPolicy::Missing,
        "build" => PullPolicy::Build,
        _ => {
            return Err(ComposeError::invalid(
                path,
                format!("invalid pull_policy {s:?} (always, never, missing, build)"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::node::parse_yaml;
    use std::path::Path;

    fn svc(yaml: &str) -> Result<Service, ComposeError> {
        let env: Env = [("FROM_ENV".to_string(), "e".to_string())].into();
        let ctx = Ctx {
            paths: PathCtx {
                base: Path::new("/p"),
                home: None,
            },
            env: &env,
        };
        parse_service("web", &parse_yaml(yaml, "f")?, "services.web", &ctx)
    }

    #[test]
    fn commands() {
        let s = svc("command: sh -c 'echo \"a b\"; exit 3'\nentrypoint: [\"/bin/tini\", \"--\"]\n")
            .unwrap();
        assert_eq!(s.command.unwrap(), vec!["sh", "-c", "echo \"a b\"; exit 3"]);
        assert_eq!(s.entrypoint.unwrap(), vec!["/bin/tini", "--"]);
        assert!(svc("command: \"echo 'open\"\n").is_err());
    }

    #[test]
    fn environment_forms() {
        let s = svc("environment:\n  - A=1\n  - FROM_ENV\n  - MISSING\n  - B=x=y\n").unwrap();
        assert_eq!(s.environment["A"].as_deref(), Some("1"));
        assert_eq!(s.environment["FROM_ENV"].as_deref(), Some("e"));
        assert_eq!(s.environment["MISSING"], None);
        assert_eq!(s.environment["B"].as_deref(), Some("x=y"));
        let s = svc("environment:\n  N: 3\n  T: true\n  FROM_ENV:\n").unwrap();
        assert_eq!(s.environment["N"].as_deref(), Some("3"));
        assert_eq!(s.environment["T"].as_deref(), Some("true"));
        assert_eq!(s.environment["FROM_ENV"].as_deref(), Some("e"));
    }

    #[test]
    fn unsupported_keys_are_named() {
        let e = svc("image: a\nfoo: 1\n").unwrap_err().to_string();
        assert_eq!(e, "services.web.foo: unsupported key");
        let e = svc("image: a\nlogging: {driver: x}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "services.web.logging: unsupported key");
        let e = svc("image: a\nhealthcheck: {test: x, bogus: 1}\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "services.web.healthcheck.bogus: unsupported key");
        assert!(svc("image: a\nx-note: whatever\n").is_ok());
    }

    #[test]
    fn host_config_keys() {
        let s = svc("image: a\nmemswap_limit: -1\nblkio_config: {weight: 300}\npid: host\ndns_opt: ndots:2\ngroup_add: [audio]\noom_kill_disable: true\ncpu_period: 50000\n").unwrap();
        assert_eq!(s.memswap_limit, Some(-1));
        assert_eq!(s.blkio_weight, Some(300));
        assert_eq!(s.pid.as_deref(), Some("host"));
        assert_eq!(s.dns_opt, ["ndots:2"]);
        assert_eq!(s.group_add, ["audio"]);
        assert!(s.oom_kill_disable);
        assert_eq!(s.cpu_period, Some(50000));
        assert_eq!(
            svc("image: a\nmemswap_limit: 1g\n").unwrap().memswap_limit,
            Some(1 << 30)
        );
        let e = svc("image: a\nblkio_config: {device_read_bps: []}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "services.web.blkio_config.device_read_bps: unsupported key"
        );
    }

    #[test]
    fn scalars_and_limits() {
        let s = svc("image: a\nrestart: on-failure:3\nmem_limit: 512m\ncpus: \"1.5\"\nulimits:\n  nproc: 65535\n  nofile: {soft: 1024, hard: 2048}\nstop_grace_period: 1m30s\nprivileged: true\nextra_hosts: [\"db=10.0.0.2\", \"v6:[::1]\"]\n").unwrap();
        assert_eq!(s.restart.as_deref(), Some("on-failure:3"));
        assert_eq!(s.mem_limit, Some(512 << 20));
        assert_eq!(s.cpus, Some(1.5));
        assert_eq!(
            s.ulimits["nproc"],
            Ulimit {
                soft: 65535,
                hard: 65535
            }
        );
        assert_eq!(
            s.ulimits["nofile"],
            Ulimit {
                soft: 1024,
                hard: 2048
            }
        );
        assert_eq!(
            s.stop_grace_period,
            Some(std::time::Duration::from_secs(90))
        );
        assert!(s.privileged);
        assert_eq!(s.extra_hosts[0], ("db".into(), "10.0.0.2".into()));
        assert_eq!(s.extra_hosts[1], ("v6".into(), "::1".into()));
        assert_eq!(svc("restart: no\n").unwrap().restart.as_deref(), Some("no"));
        assert!(svc("restart: sometimes\n").is_err());
        assert!(svc("ulimits: {nofile: {soft: 3, hard: 2}}\n").is_err());
    }

    #[test]
    fn restart_policy_from_deploy() {
        let s =
            svc("image: a\ndeploy: {restart_policy: {condition: on-failure, max_attempts: 4}}\n");
        assert_eq!(s.unwrap().restart_policy(), "on-failure:4");
        let s = svc("image: a\ndeploy: {restart_policy: {condition: any}}\n").unwrap();
        assert_eq!(s.restart_policy(), "always");
        let s = svc("image: a\nrestart: unless-stopped\n").unwrap();
        assert_eq!(s.restart_policy(), "unless-stopped");
    }

    #[test]
    fn replicas_from_scale_or_deploy() {
        assert_eq!(svc("image: a\n").unwrap().replicas, 1);
        assert_eq!(svc("scale: 2\n").unwrap().replicas, 2);
        assert_eq!(svc("deploy: {replicas: 3}\n").unwrap().replicas, 3);
        assert!(svc("scale: 2\ndeploy: {replicas: 3}\n").is_err());
    }

    #[test]
    fn env_file_loaded_under_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("web.env"), "A=from_file\nB=file\n").unwrap();
        let env = Env::new();
        let ctx = Ctx {
            paths: PathCtx {
                base: dir.path(),
                home: None,
            },
            env: &env,
        };
        let n = parse_yaml(
            "env_file: [web.env, {path: none.env, required: false}]\nenvironment: {B: explicit}\n",
            "f",
        )
        .unwrap();
        let s = parse_service("web", &n, "services.web", &ctx).unwrap();
        assert_eq!(s.environment["A"].as_deref(), Some("from_file"));
        assert_eq!(s.environment["B"].as_deref(), Some("explicit"));
        let n = parse_yaml("env_file: missing.env\n", "f").unwrap();
        let e = parse_service("web", &n, "services.web", &ctx)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("services.web.env_file: "), "{e}");
    }
}
