//! Service sub-objects: build, depends_on, deploy, healthcheck, networks, secrets/configs.

use std::collections::BTreeMap;

use super::conv::{
    boolean, bytes, child, dict, dict_strings, duration, file_mode, float, int, is_extension, list,
    map, string, uint, unsupported,
};
use super::model::{
    Build, Condition, Dependency, Deploy, FileRef, Healthcheck, Resources, ServiceNetwork,
};
use super::node::Node;
use super::volumes::PathCtx;
use super::ComposeError;

pub fn parse_build(n: &Node, path: &str, paths: &PathCtx) -> Result<Build, ComposeError> {
    let mut b = Build::default();
    let mut context = ".".to_string();
    match n {
        Node::Map(m) => {
            for (k, v) in m {
                let p = child(path, k);
                match k.as_str() {
                    "context" => context = string(v, &p)?,
                    "dockerfile" => b.dockerfile = Some(string(v, &p)?),
                    "dockerfile_inline" => b.dockerfile_inline = Some(string(v, &p)?),
                    "args" => b.args = dict(v, &p)?,
                    "target" => b.target = Some(string(v, &p)?),
                    "labels" => b.labels = dict_strings(v, &p)?,
                    "no_cache" => b.no_cache = boolean(v, &p)?,
                    "pull" => b.pull = boolean(v, &p)?,
                    k if is_extension(k) => {}
                    _ => return Err(unsupported(path, k)),
                }
            }
        }
        other => context = string(other, path)?,
    }
    if context.contains("://") || context.starts_with("git@") {
        return Err(ComposeError::invalid(
            &child(path, "context"),
            format!("remote build context {context:?} is not supported"),
        ));
    }
    b.context = paths.resolve(&context);
    Ok(b)
}

pub fn parse_depends_on(
    n: &Node,
    path: &str,
) -> Result<BTreeMap<String, Dependency>, ComposeError> {
    let mut out = BTreeMap::new();
    let started = Dependency {
        condition: Condition::Started,
        restart: false,
        required: true,
    };
    match n {
        Node::Seq(_) => {
            for name in list(n, path)? {
                out.insert(name, started.clone());
            }
        }
        Node::Map(m) => {
            for (name, v) in m {
                let p = child(path, name);
                let mut d = started.clone();
                for (k, kv) in map(v, &p)? {
                    let kp = child(&p, k);
                    match k.as_str() {
                        "condition" => {
                            d.condition = match string(kv, &kp)?.as_str() {
                                "service_started" => Condition::Started,
                                "service_healthy" => Condition::Healthy,
                                "service_completed_successfully" => {
                                    Condition::CompletedSuccessfully
                                }
                                other => {
                                    return Err(ComposeError::invalid(
                                        &kp,
                                        format!("unknown condition {other:?}"),
                                    ))
                                }
                            }
                        }
                        "restart" => d.restart = boolean(kv, &kp)?,
                        "required" => d.required = boolean(kv, &kp)?,
                        k if is_extension(k) => {}
                        _ => return Err(unsupported(&p, k)),
                    }
                }
                out.insert(name.clone(), d);
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

pub fn parse_healthcheck(n: &Node, path: &str) -> Result<Healthcheck, ComposeError> {
    let mut h = Healthcheck::default();
    for (k, v) in map(n, path)? {
        let p = child(path, k);
        match k.as_str() {
            "test" => {
                h.test = match v {
                    Node::Seq(_) => {
                        let t = list(v, &p)?;
                        match t.first().map(String::as_str) {
                            Some("CMD" | "CMD-SHELL" | "NONE") => t,
                            _ => {
                                return Err(ComposeError::invalid(
                                    &p,
                                    "a list must start with CMD, CMD-SHELL or NONE",
                                ))
                            }
                        }
                    }
                    other => vec!["CMD-SHELL".into(), string(other, &p)?],
                }
            }
            "interval" => h.interval = Some(duration(v, &p)?),
            "timeout" => h.timeout = Some(duration(v, &p)?),
            "start_period" => h.start_period = Some(duration(v, &p)?),
            "start_interval" => h.start_interval = Some(duration(v, &p)?),
            "retries" => h.retries = Some(uint(v, &p)?),
            "disable" => h.disable = boolean(v, &p)?,
            k if is_extension(k) => {}
            _ => return Err(unsupported(path, k)),
        }
    }
    if h.test.first().map(String::as_str) == Some("NONE") {
        h.disable = true;
    }
    if h.disable {
        h.test = vec!["NONE".into()];
    }
    Ok(h)
}

pub fn parse_deploy(n: &Node, path: &str) -> Result<Deploy, ComposeError> {
    let mut d = Deploy::default();
    for (k, v) in map(n, path)? {
        let p = child(path, k);
        match k.as_str() {
            "replicas" => d.replicas = Some(uint(v, &p)?),
            "mode" => {
                let mode = string(v, &p)?;
                if mode != "replicated" {
                    return Err(ComposeError::invalid(
                        &p,
                        format!("mode {mode:?} is not supported (replicated only)"),
                    ));
                }
            }
            "resources" => {
                for (rk, rv) in map(v, &p)? {
                    let rp = child(&p, rk);
                    match rk.as_str() {
                        "limits" => d.limits = resources(rv, &rp)?,
                        "reservations" => d.reservations = resources(rv, &rp)?,
                        rk if is_extension(rk) => {}
                        _ => return Err(unsupported(&p, rk)),
                    }
                }
            }
            "restart_policy" => {
                for (rk, rv) in map(v, &p)? {
                    let rp = child(&p, rk);
                    match rk.as_str() {
                        "condition" => {
                            let c = string(rv, &rp)?;
                            if !matches!(c.as_str(), "none" | "on-failure" | "any") {
                                return Err(ComposeError::invalid(
                                    &rp,
                                    format!("invalid condition {c:?} (none, on-failure, any)"),
                                ));
                            }
                            d.restart_condition = Some(c);
                        }
                        "max_attempts" => d.restart_max_attempts = Some(uint(rv, &rp)?),
                        rk if is_extension(rk) => {}
                        _ => return Err(unsupported(&p, rk)),
                    }
                }
            }
            k if is_extension(k) => {}
            _ => return Err(unsupported(path, k)),
        }
    }
    Ok(d)
}

fn resources(n: &Node, path: &str) -> Result<Resources, ComposeError> {
    let mut r = Resources::default();
    for (k, v) in map(n, path)? {
        let p = child(path, k);
        match k.as_str() {
            "cpus" => r.cpus = Some(float(v, &p)?),
            "memory" => r.memory = Some(bytes(v, &p)?),
            "pids" => r.pids = Some(int(v, &p)?),
            k if is_extension(k) => {}
            _ => return Err(unsupported(path, k)),
        }
    }
    Ok(r)
}

pub fn parse_networks(
    n: &Node,
    path: &str,
) -> Result<BTreeMap<String, ServiceNetwork>, ComposeError> {
    let mut out = BTreeMap::new();
    match n {
        Node::Seq(_) => {
            for name in list(n, path)? {
                out.insert(name, ServiceNetwork::default());
            }
        }
        Node::Map(m) => {
            for (name, v) in m {
                let p = child(path, name);
                let mut sn = ServiceNetwork::default();
                if !matches!(v, Node::Null) {
                    for (k, kv) in map(v, &p)? {
                        let kp = child(&p, k);
                        match k.as_str() {
                            "aliases" => sn.aliases = list(kv, &kp)?,
                            "ipv4_address" => sn.ipv4_address = Some(string(kv, &kp)?),
                            "ipv6_address" => sn.ipv6_address = Some(string(kv, &kp)?),
                            k if is_extension(k) => {}
                            _ => return Err(unsupported(&p, k)),
                        }
                    }
                }
                out.insert(name.clone(), sn);
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

/// Service `secrets`/`configs`: `- name` or `- {source, target, uid, gid, mode}`. A relative
/// target lands under `default_dir`.
pub fn parse_file_refs(
    n: &Node,
    path: &str,
    default_dir: &str,
) -> Result<Vec<FileRef>, ComposeError> {
    let Node::Seq(items) = n else {
        return Err(ComposeError::invalid(path, "must be a list"));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        let mut r = FileRef {
            source: String::new(),
            target: String::new(),
            uid: None,
            gid: None,
            mode: None,
        };
        match item {
            Node::Map(m) => {
                for (k, v) in m {
                    let kp = child(&p, k);
                    match k.as_str() {
                        "source" => r.source = string(v, &kp)?,
                        "target" => r.target = string(v, &kp)?,
                        "uid" => r.uid = Some(string(v, &kp)?),
                        "gid" => r.gid = Some(string(v, &kp)?),
                        "mode" => r.mode = Some(file_mode(v, &kp)?),
                        k if is_extension(k) => {}
                        _ => return Err(unsupported(&p, k)),
                    }
                }
                if r.source.is_empty() {
                    return Err(ComposeError::invalid(&child(&p, "source"), "is required"));
                }
            }
            other => r.source = string(other, &p)?,
        }
        if r.target.is_empty() {
            r.target = r.source.clone();
        }
        if !r.target.starts_with('/') {
            r.target = format!("{default_dir}{}", r.target);
        }
        out.push(r);
    }
    Ok(out)
}

/// The merge identity of a `secrets`/`configs` entry: its target (or source when implied).
pub fn file_ref_merge_key(n: &Node) -> Option<String> {
    match n {
        Node::Map(m) => m
            .get("target")
            .or_else(|| m.get("source"))
            .and_then(Node::scalar_text),
        other => other.scalar_text(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::node::parse_yaml;
    use std::path::Path;
    use std::time::Duration;

    fn node(y: &str) -> Node {
        let Node::Map(mut m) = parse_yaml(y, "f").unwrap() else {
            panic!()
        };
        m.remove("v").unwrap()
    }

    #[test]
    fn build_forms() {
        let ctx = PathCtx {
            base: Path::new("/p"),
            home: None,
        };
        let b = parse_build(&node("v: ./web\n"), "b", &ctx).unwrap();
        assert_eq!(b.context, Path::new("/p/web"));
        let b = parse_build(
            &node("v: {context: app, dockerfile: Dockerfile.dev, args: [V=1, W], target: dev}\n"),
            "b",
            &ctx,
        )
        .unwrap();
        assert_eq!(b.context, Path::new("/p/app"));
        assert_eq!(b.dockerfile.as_deref(), Some("Dockerfile.dev"));
        assert_eq!(b.args["V"].as_deref(), Some("1"));
        assert_eq!(b.args["W"], None);
        assert_eq!(b.target.as_deref(), Some("dev"));
        let e = parse_build(
            &node("v: {context: ., ssh: [default]}\n"),
            "services.a.build",
            &ctx,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "services.a.build.ssh: unsupported key");
        assert!(parse_build(&node("v: https://x/y.git\n"), "b", &ctx).is_err());
    }

    #[test]
    fn depends_on_forms() {
        let d = parse_depends_on(&node("v: [db, cache]\n"), "d").unwrap();
        assert_eq!(d["db"].condition, Condition::Started);
        assert!(d["db"].required);
        let d = parse_depends_on(
            &node("v:\n  db: {condition: service_healthy, restart: true}\n  m: {condition: service_completed_successfully, required: false}\n"),
            "d",
        )
        .unwrap();
        assert_eq!(d["db"].condition, Condition::Healthy);
        assert!(d["db"].restart);
        assert_eq!(d["m"].condition, Condition::CompletedSuccessfully);
        assert!(!d["m"].required);
        assert!(parse_depends_on(&node("v: {db: {condition: up}}\n"), "d").is_err());
    }

    #[test]
    fn healthcheck_forms() {
        let h = parse_healthcheck(
            &node("v: {test: \"curl -f localhost\", interval: 1m30s, timeout: 10s, retries: 3, start_period: 40s, start_interval: 5s}\n"),
            "h",
        )
        .unwrap();
        assert_eq!(h.test, vec!["CMD-SHELL", "curl -f localhost"]);
        assert_eq!(h.interval, Some(Duration::from_secs(90)));
        assert_eq!(h.retries, Some(3));
        assert_eq!(h.start_interval, Some(Duration::from_secs(5)));
        let h = parse_healthcheck(&node("v: {test: [CMD, mysqladmin, ping]}\n"), "h").unwrap();
        assert_eq!(h.test, vec!["CMD", "mysqladmin", "ping"]);
        let h = parse_healthcheck(&node("v: {disable: true}\n"), "h").unwrap();
        assert_eq!((h.disable, h.test), (true, vec!["NONE".to_string()]));
        assert!(parse_healthcheck(&node("v: {test: [curl]}\n"), "h").is_err());
    }

    #[test]
    fn deploy_and_networks_and_refs() {
        let d = parse_deploy(
            &node("v: {replicas: 3, resources: {limits: {cpus: '0.5', memory: 256M, pids: 100}}, restart_policy: {condition: on-failure, max_attempts: 2}}\n"),
            "d",
        )
        .unwrap();
        assert_eq!(d.replicas, Some(3));
        assert_eq!(d.limits.cpus, Some(0.5));
        assert_eq!(d.limits.memory, Some(256 << 20));
        assert_eq!(d.restart_max_attempts, Some(2));
        assert!(parse_deploy(&node("v: {placement: {}}\n"), "d").is_err());
        let n = parse_networks(
            &node("v: {front: {aliases: [web], ipv4_address: 172.20.0.5}, back: null}\n"),
            "n",
        )
        .unwrap();
        assert_eq!(n["front"].aliases, vec!["web"]);
        assert_eq!(n["front"].ipv4_address.as_deref(), Some("172.20.0.5"));
        assert_eq!(n["back"], ServiceNetwork::default());
        let r = parse_file_refs(
            &node("v: [db_pw, {source: key, target: /k, mode: 0400}]\n"),
            "s",
            "/run/secrets/",
        )
        .unwrap();
        assert_eq!(r[0].target, "/run/secrets/db_pw");
        assert_eq!((r[1].target.as_str(), r[1].mode), ("/k", Some(0o400)));
    }
}
