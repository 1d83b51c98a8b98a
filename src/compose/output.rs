//! `config`: the resolved model written back as YAML, keys in the order docker compose prints
//! them (top level: name, services, networks, volumes, secrets, configs; inside a service,
//! alphabetical).

use std::collections::BTreeMap;
use std::time::Duration;

use super::model::{
    Build, Deploy, FileObject, FileRef, FileSource, Healthcheck, Mount, MountType, Network, Port,
    Project, Resources, Service, Volume,
};
use super::node::{emit, Node, Out};

/// Values are printed with `$` escaped as `$$`, so the output is a compose file that loads
/// back to the same model.
fn s(x: impl Into<String>) -> Out {
    Out::Scalar(Node::Str(x.into().replace('$', "$$")))
}
fn i(x: i64) -> Out {
    Out::Scalar(Node::Int(x))
}
fn b(x: bool) -> Out {
    Out::Scalar(Node::Bool(x))
}
fn f(x: f64) -> Out {
    Out::Scalar(Node::Float(x))
}
fn null() -> Out {
    Out::Scalar(Node::Null)
}
fn strs(v: &[String]) -> Out {
    Out::Seq(v.iter().map(|x| s(x.as_str())).collect())
}
fn dict(m: &BTreeMap<String, String>) -> Out {
    Out::Map(m.iter().map(|(k, v)| (k.clone(), s(v.as_str()))).collect())
}
fn opt_dict(m: &BTreeMap<String, Option<String>>) -> Out {
    Out::Map(
        m.iter()
            .map(|(k, v)| (k.clone(), v.as_deref().map_or_else(null, s)))
            .collect(),
    )
}

/// Go's duration text (`1m30s`, `1h0m0s`, `500ms`), as compose prints durations.
pub fn fmt_duration(d: Duration) -> String {
    let total = d.as_secs();
    let nanos = d.subsec_nanos();
    if total == 0 {
        return match nanos {
            0 => "0s".into(),
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}µs", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let secs = total % 60;
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let (h, m) = (total / 3600, (total / 60) % 60);
    match (h, m) {
        (0, 0) => format!("{secs}{frac}s"),
        (0, m) => format!("{m}m{secs}{frac}s"),
        (h, m) => format!("{h}h{m}m{secs}{frac}s"),
    }
}

fn push<T>(out: &mut Vec<(String, Out)>, key: &str, v: &Option<T>, conv: impl Fn(&T) -> Out) {
    if let Some(v) = v {
        out.push((key.to_string(), conv(v)));
    }
}

pub fn project_yaml(p: &Project) -> String {
    emit(&project_out(p))
}

pub fn project_out(p: &Project) -> Out {
    let mut top = vec![("name".to_string(), s(p.name.as_str()))];
    top.push((
        "services".into(),
        Out::Map(
            p.services
                .iter()
                .map(|(k, v)| (k.clone(), service_out(v)))
                .collect(),
        ),
    ));
    let sections: [(&str, Vec<(String, Out)>); 4] = [
        (
            "networks",
            p.networks
                .iter()
                .map(|(k, v)| (k.clone(), network_out(v)))
                .collect(),
        ),
        (
            "volumes",
            p.volumes
                .iter()
                .map(|(k, v)| (k.clone(), volume_out(v)))
                .collect(),
        ),
        (
            "secrets",
            p.secrets
                .iter()
                .map(|(k, v)| (k.clone(), file_object_out(v)))
                .collect(),
        ),
        (
            "configs",
            p.configs
                .iter()
                .map(|(k, v)| (k.clone(), file_object_out(v)))
                .collect(),
        ),
    ];
    for (key, entries) in sections {
        if !entries.is_empty() {
            top.push((key.into(), Out::Map(entries)));
        }
    }
    Out::Map(top)
}

/// A service with its keys sorted; also the input of the config hash.
pub fn service_out(sv: &Service) -> Out {
    let mut o: Vec<(String, Out)> = Vec::new();
    push(&mut o, "image", &sv.image, |x| s(x.as_str()));
    push(&mut o, "build", &sv.build, build_out);
    push(&mut o, "command", &sv.command, |x| strs(x));
    push(&mut o, "entrypoint", &sv.entrypoint, |x| strs(x));
    if !sv.environment.is_empty() {
        o.push(("environment".into(), opt_dict(&sv.environment)));
    }
    if !sv.env_file.is_empty() {
        o.push(("env_file".into(), env_files_out(sv)));
    }
    if !sv.ports.is_empty() {
        o.push((
            "ports".into(),
            Out::Seq(sv.ports.iter().map(port_out).collect()),
        ));
    }
    let lists = [
        ("expose", &sv.expose),
        ("tmpfs", &sv.tmpfs),
        ("dns", &sv.dns),
        ("dns_search", &sv.dns_search),
        ("cap_add", &sv.cap_add),
        ("cap_drop", &sv.cap_drop),
        ("profiles", &sv.profiles),
        ("dns_opt", &sv.dns_opt),
        ("group_add", &sv.group_add),
        ("devices", &sv.devices),
        ("links", &sv.links),
        ("external_links", &sv.external_links),
    ];
    for (k, v) in lists {
        if !v.is_empty() {
            o.push((k.into(), strs(v)));
        }
    }
    if !sv.volumes.is_empty() {
        o.push((
            "volumes".into(),
            Out::Seq(sv.volumes.iter().map(mount_out).collect()),
        ));
    }
    if !sv.networks.is_empty() {
        let nets = sv.networks.iter().map(|(k, n)| {
            let mut e = Vec::new();
            if !n.aliases.is_empty() {
                e.push(("aliases".to_string(), strs(&n.aliases)));
            }
            push(&mut e, "ipv4_address", &n.ipv4_address, |x| s(x.as_str()));
            push(&mut e, "ipv6_address", &n.ipv6_address, |x| s(x.as_str()));
            (k.clone(), if e.is_empty() { null() } else { Out::Map(e) })
        });
        o.push(("networks".into(), Out::Map(nets.collect())));
    }
    push(&mut o, "network_mode", &sv.network_mode, |x| s(x.as_str()));
    if !sv.depends_on.is_empty() {
        let deps = sv.depends_on.iter().map(|(k, d)| {
            (
                k.clone(),
                Out::Map(vec![
                    ("condition".into(), s(d.condition.as_str())),
                    ("required".into(), b(d.required)),
                    ("restart".into(), b(d.restart)),
                ]),
            )
        });
        o.push(("depends_on".into(), Out::Map(deps.collect())));
    }
    push(&mut o, "healthcheck", &sv.healthcheck, healthcheck_out);
    push(&mut o, "restart", &sv.restart, |x| s(x.as_str()));
    if !sv.labels.is_empty() {
        o.push(("labels".into(), dict(&sv.labels)));
    }
    for (k, v) in [
        ("user", &sv.user),
        ("working_dir", &sv.working_dir),
        ("hostname", &sv.hostname),
        ("domainname", &sv.domainname),
        ("stop_signal", &sv.stop_signal),
        ("container_name", &sv.container_name),
        ("mac_address", &sv.mac_address),
        ("cpuset", &sv.cpuset),
        ("cgroup_parent", &sv.cgroup_parent),
        ("pid", &sv.pid),
        ("ipc", &sv.ipc),
    ] {
        push(&mut o, k, v, |x| s(x.as_str()));
    }
    if !sv.extra_hosts.is_empty() {
        let hosts = sv.extra_hosts.iter().map(|(h, ip)| s(format!("{h}={ip}")));
        o.push(("extra_hosts".into(), Out::Seq(hosts.collect())));
    }
    for (k, v) in [
        ("privileged", sv.privileged),
        ("read_only", sv.read_only),
        ("tty", sv.tty),
        ("stdin_open", sv.stdin_open),
        ("oom_kill_disable", sv.oom_kill_disable),
    ] {
        if v {
            o.push((k.into(), b(true)));
        }
    }
    if !sv.ulimits.is_empty() {
        o.push(("ulimits".into(), ulimits_out(sv)));
    }
    if !sv.sysctls.is_empty() {
        o.push(("sysctls".into(), dict(&sv.sysctls)));
    }
    push(&mut o, "init", &sv.init, |x| b(*x));
    push(&mut o, "stop_grace_period", &sv.stop_grace_period, |d| {
        s(fmt_duration(*d))
    });
    for (k, v) in [
        ("mem_limit", sv.mem_limit),
        ("mem_reservation", sv.mem_reservation),
        ("shm_size", sv.shm_size),
    ] {
        push(&mut o, k, &v, |x| i(*x as i64));
    }
    push(&mut o, "cpus", &sv.cpus, |x| f(*x));
    for (k, v) in [
        ("pids_limit", &sv.pids_limit),
        ("memswap_limit", &sv.memswap_limit),
        ("oom_score_adj", &sv.oom_score_adj),
        ("cpu_quota", &sv.cpu_quota),
        ("cpu_period", &sv.cpu_period),
    ] {
        push(&mut o, k, v, |x| i(*x));
    }
    push(&mut o, "blkio_config", &sv.blkio_weight, |w| {
        Out::Map(vec![("weight".into(), i(*w))])
    });
    push(&mut o, "deploy", &sv.deploy, deploy_out);
    if sv.replicas != 1 && sv.deploy.as_ref().and_then(|d| d.replicas).is_none() {
        o.push(("scale".into(), i(i64::from(sv.replicas))));
    }
    for (k, v) in [("secrets", &sv.secrets), ("configs", &sv.configs)] {
        if !v.is_empty() {
            o.push((k.into(), Out::Seq(v.iter().map(file_ref_out).collect())));
        }
    }
    push(&mut o, "pull_policy", &sv.pull_policy, |x| s(x.as_str()));
    o.sort_by(|a, b| a.0.cmp(&b.0));
    Out::Map(o)
}

fn env_files_out(sv: &Service) -> Out {
    let files = sv.env_file.iter().map(|e| {
        Out::Map(vec![
            ("path".into(), s(e.path.to_string_lossy())),
            ("required".into(), b(e.required)),
        ])
    });
    Out::Seq(files.collect())
}

/// A ulimit as one number when soft and hard agree, else both.
fn ulimits_out(sv: &Service) -> Out {
    let u = sv.ulimits.iter().map(|(k, u)| {
        let v = if u.soft == u.hard {
            i(u.soft)
        } else {
            Out::Map(vec![("soft".into(), i(u.soft)), ("hard".into(), i(u.hard))])
        };
        (k.clone(), v)
    });
    Out::Map(u.collect())
}

fn build_out(bd: &Build) -> Out {
    let mut o = vec![("context".to_string(), s(bd.context.to_string_lossy()))];
    let dockerfile = bd.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into());
    match &bd.dockerfile_inline {
        Some(inline) => o.push(("dockerfile_inline".into(), s(inline.as_str()))),
        None => o.push(("dockerfile".into(), s(dockerfile))),
    }
    if !bd.args.is_empty() {
        o.push(("args".into(), opt_dict(&bd.args)));
    }
    push(&mut o, "target", &bd.target, |x| s(x.as_str()));
    if !bd.labels.is_empty() {
        o.push(("labels".into(), dict(&bd.labels)));
    }
    if bd.no_cache {
        o.push(("no_cache".into(), b(true)));
    }
    if bd.pull {
        o.push(("pull".into(), b(true)));
    }
    Out::Map(o)
}

fn port_out(p: &Port) -> Out {
    let mut o = vec![("mode".to_string(), s(p.mode.as_str()))];
    push(&mut o, "host_ip", &p.host_ip, |x| s(x.as_str()));
    o.push(("target".into(), i(i64::from(p.target))));
    push(&mut o, "published", &p.published, |&(a, z)| {
        if a == z {
            s(a.to_string())
        } else {
            s(format!("{a}-{z}"))
        }
    });
    o.push(("protocol".into(), s(p.protocol.as_str())));
    push(&mut o, "name", &p.name, |x| s(x.as_str()));
    push(&mut o, "app_protocol", &p.app_protocol, |x| s(x.as_str()));
    Out::Map(o)
}

fn mount_out(m: &Mount) -> Out {
    let mut o = vec![("type".to_string(), s(m.kind.as_str()))];
    push(&mut o, "source", &m.source, |x| s(x.as_str()));
    o.push(("target".into(), s(m.target.as_str())));
    if m.read_only {
        o.push(("read_only".into(), b(true)));
    }
    match m.kind {
        MountType::Bind => {
            let mut bo = vec![("create_host_path".to_string(), b(m.create_host_path))];
            push(&mut bo, "propagation", &m.propagation, |x| s(x.as_str()));
            push(&mut bo, "selinux", &m.selinux, |c| s(c.to_string()));
            o.push(("bind".into(), Out::Map(bo)));
        }
        MountType::Volume if m.nocopy || m.subpath.is_some() => {
            let mut vo = Vec::new();
            if m.nocopy {
                vo.push(("nocopy".to_string(), b(true)));
            }
            push(&mut vo, "subpath", &m.subpath, |x| s(x.as_str()));
            o.push(("volume".into(), Out::Map(vo)));
        }
        MountType::Volume => o.push(("volume".into(), Out::Map(Vec::new()))),
        MountType::Tmpfs => {
            let mut to = Vec::new();
            push(&mut to, "size", &m.tmpfs_size, |x| i(*x as i64));
            push(&mut to, "mode", &m.tmpfs_mode, |x| i(i64::from(*x)));
            if !to.is_empty() {
                o.push(("tmpfs".into(), Out::Map(to)));
            }
        }
    }
    Out::Map(o)
}

fn healthcheck_out(h: &Healthcheck) -> Out {
    let mut o = Vec::new();
    if !h.test.is_empty() {
        o.push(("test".to_string(), strs(&h.test)));
    }
    for (k, v) in [
        ("timeout", h.timeout),
        ("interval", h.interval),
        ("start_period", h.start_period),
        ("start_interval", h.start_interval),
    ] {
        push(&mut o, k, &v, |d| s(fmt_duration(*d)));
    }
    push(&mut o, "retries", &h.retries, |x| i(*x as i64));
    if h.disable {
        o.push(("disable".into(), b(true)));
    }
    Out::Map(o)
}

fn resources_out(r: &Resources) -> Out {
    let mut o = Vec::new();
    push(&mut o, "cpus", &r.cpus, |x| f(*x));
    push(&mut o, "memory", &r.memory, |x| i(*x as i64));
    push(&mut o, "pids", &r.pids, |x| i(*x));
    Out::Map(o)
}

fn deploy_out(d: &Deploy) -> Out {
    let mut o = Vec::new();
    push(&mut o, "replicas", &d.replicas, |x| i(i64::from(*x)));
    let mut r = Vec::new();
    if d.limits != Resources::default() {
        r.push(("limits".to_string(), resources_out(&d.limits)));
    }
    if d.reservations != Resources::default() {
        r.push(("reservations".to_string(), resources_out(&d.reservations)));
    }
    if !r.is_empty() {
        o.push(("resources".into(), Out::Map(r)));
    }
    if d.restart_condition.is_some() || d.restart_max_attempts.is_some() {
        let mut rp = Vec::new();
        push(
            &mut rp,
            "condition",
            &d.restart_condition,
            |x| s(x.as_str()),
        );
        push(&mut rp, "max_attempts", &d.restart_max_attempts, |x| {
            i(*x as i64)
        });
        o.push(("restart_policy".into(), Out::Map(rp)));
    }
    Out::Map(o)
}

fn file_ref_out(r: &FileRef) -> Out {
    let mut o = vec![
        ("source".to_string(), s(r.source.as_str())),
        ("target".to_string(), s(r.target.as_str())),
    ];
    push(&mut o, "uid", &r.uid, |x| s(x.as_str()));
    push(&mut o, "gid", &r.gid, |x| s(x.as_str()));
    push(&mut o, "mode", &r.mode, |x| s(format!("0{x:o}")));
    Out::Map(o)
}

fn network_out(n: &Network) -> Out {
    let mut o = vec![("name".to_string(), s(n.name.as_str()))];
    push(&mut o, "driver", &n.driver, |x| s(x.as_str()));
    if !n.driver_opts.is_empty() {
        o.push(("driver_opts".into(), dict(&n.driver_opts)));
    }
    if !n.subnets.is_empty() {
        let cfg = n.subnets.iter().map(|sn| {
            let mut e = vec![("subnet".to_string(), s(sn.subnet.as_str()))];
            push(&mut e, "gateway", &sn.gateway, |x| s(x.as_str()));
            push(&mut e, "ip_range", &sn.ip_range, |x| s(x.as_str()));
            Out::Map(e)
        });
        o.push((
            "ipam".into(),
            Out::Map(vec![("config".into(), Out::Seq(cfg.collect()))]),
        ));
    }
    for (k, v) in [
        ("external", n.external),
        ("internal", n.internal),
        ("enable_ipv6", n.enable_ipv6),
    ] {
        if v {
            o.push((k.into(), b(true)));
        }
    }
    if !n.labels.is_empty() {
        o.push(("labels".into(), dict(&n.labels)));
    }
    Out::Map(o)
}

fn volume_out(v: &Volume) -> Out {
    let mut o = vec![("name".to_string(), s(v.name.as_str()))];
    push(&mut o, "driver", &v.driver, |x| s(x.as_str()));
    if !v.driver_opts.is_empty() {
        o.push(("driver_opts".into(), dict(&v.driver_opts)));
    }
    if v.external {
        o.push(("external".into(), b(true)));
    }
    if !v.labels.is_empty() {
        o.push(("labels".into(), dict(&v.labels)));
    }
    Out::Map(o)
}

fn file_object_out(fo: &FileObject) -> Out {
    let mut o = vec![("name".to_string(), s(fo.name.as_str()))];
    match &fo.source {
        FileSource::File(p) => o.push(("file".into(), s(p.to_string_lossy()))),
        FileSource::Environment(e) => o.push(("environment".into(), s(e.as_str()))),
        FileSource::Content(c) => o.push(("content".into(), s(c.as_str()))),
    }
    Out::Map(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(fmt_duration(Duration::from_secs(90)), "1m30s");
        assert_eq!(fmt_duration(Duration::from_secs(10)), "10s");
        assert_eq!(fmt_duration(Duration::from_secs(3600)), "1h0m0s");
        assert_eq!(fmt_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(fmt_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(fmt_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn service_keys_sorted() {
        let sv = Service {
            name: "web".into(),
            image: Some("nginx".into()),
            restart: Some("always".into()),
            command: Some(vec!["a".into()]),
            replicas: 1,
            ..Service::default()
        };
        let text = emit(&service_out(&sv));
        assert_eq!(text, "command:\n  - a\nimage: nginx\nrestart: always\n");
    }
}
