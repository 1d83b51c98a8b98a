//! Top-level `networks`, `volumes`, `secrets`, `configs`.

use std::collections::BTreeMap;

use super::conv::{boolean, child, dict_strings, is_extension, map, string, unsupported};
use super::model::{FileObject, FileSource, Network, Subnet, Volume};
use super::naming;
use super::node::Node;
use super::volumes::PathCtx;
use super::ComposeError;

/// `external: true` objects keep their name as is; others get `<project>_<key>` unless `name:`.
fn engine_name(project: &str, key: &str, name: Option<String>, external: bool) -> String {
    match name {
        Some(n) => n,
        None if external => key.to_string(),
        None => naming::scoped_name(project, key),
    }
}

/// A top-level entry: its key, and its body (`None` for `key:` with nothing).
type Entry<'a> = (&'a String, Option<&'a BTreeMap<String, Node>>);

fn entries<'a>(n: &'a Node, path: &str) -> Result<Vec<Entry<'a>>, ComposeError> {
    let mut out = Vec::new();
    for (k, v) in map(n, path)? {
        if is_extension(k) {
            continue;
        }
        match v {
            Node::Null => out.push((k, None)),
            other => out.push((k, Some(map(other, &child(path, k))?))),
        }
    }
    Ok(out)
}

pub fn parse_networks(
    n: &Node,
    path: &str,
    project: &str,
) -> Result<BTreeMap<String, Network>, ComposeError> {
    let mut out = BTreeMap::new();
    for (key, body) in entries(n, path)? {
        let p = child(path, key);
        let mut net = Network::default();
        let mut name = None;
        for (k, v) in body.into_iter().flatten() {
            let kp = child(&p, k);
            match k.as_str() {
                "name" => name = Some(string(v, &kp)?),
                "external" => net.external = boolean(v, &kp)?,
                "driver" => {
                    let d = string(v, &kp)?;
                    if d != "bridge" {
                        return Err(ComposeError::invalid(
                            &kp,
                            format!("driver {d:?} is not supported (bridge only)"),
                        ));
                    }
                    net.driver = Some(d);
                }
                "driver_opts" => net.driver_opts = dict_strings(v, &kp)?,
                "ipam" => net.subnets = ipam(v, &kp)?,
                "internal" => net.internal = boolean(v, &kp)?,
                "enable_ipv6" => net.enable_ipv6 = boolean(v, &kp)?,
                "labels" => net.labels = dict_strings(v, &kp)?,
                // Swarm overlay flag: meaningless without swarm, harmless to accept.
                "attachable" => {
                    boolean(v, &kp)?;
                }
                k if is_extension(k) => {}
                _ => return Err(unsupported(&p, k)),
            }
        }
        net.name = engine_name(project, key, name, net.external);
        out.insert(key.clone(), net);
    }
    Ok(out)
}

fn ipam(n: &Node, path: &str) -> Result<Vec<Subnet>, ComposeError> {
    let mut subnets = Vec::new();
    for (k, v) in map(n, path)? {
        let p = child(path, k);
        match k.as_str() {
            "driver" => {
                let d = string(v, &p)?;
                if d != "default" {
                    return Err(ComposeError::invalid(
                        &p,
                        format!("ipam driver {d:?} is not supported"),
                    ));
                }
            }
            "config" => {
                let Node::Seq(items) = v else {
                    return Err(ComposeError::invalid(&p, "must be a list"));
                };
                for (i, item) in items.iter().enumerate() {
                    let ip = format!("{p}[{i}]");
                    let mut s = Subnet::default();
                    for (ck, cv) in map(item, &ip)? {
                        let cp = child(&ip, ck);
                        match ck.as_str() {
                            "subnet" => s.subnet = string(cv, &cp)?,
                            "gateway" => s.gateway = Some(string(cv, &cp)?),
                            "ip_range" => s.ip_range = Some(string(cv, &cp)?),
                            ck if is_extension(ck) => {}
                            _ => return Err(unsupported(&ip, ck)),
                        }
                    }
                    if s.subnet.is_empty() {
                        return Err(ComposeError::invalid(&child(&ip, "subnet"), "is required"));
                    }
                    subnets.push(s);
                }
            }
            k if is_extension(k) => {}
            _ => return Err(unsupported(path, k)),
        }
    }
    Ok(subnets)
}

pub fn parse_volumes(
    n: &Node,
    path: &str,
    project: &str,
) -> Result<BTreeMap<String, Volume>, ComposeError> {
    let mut out = BTreeMap::new();
    for (key, body) in entries(n, path)? {
        let p = child(path, key);
        let mut vol = Volume::default();
        let mut name = None;
        for (k, v) in body.into_iter().flatten() {
            let kp = child(&p, k);
            match k.as_str() {
                "name" => name = Some(string(v, &kp)?),
                "external" => vol.external = boolean(v, &kp)?,
                "driver" => {
                    let d = string(v, &kp)?;
                    if d != "local" {
                        return Err(ComposeError::invalid(
                            &kp,
                            format!("driver {d:?} is not supported (local only)"),
                        ));
                    }
                    vol.driver = Some(d);
                }
                "driver_opts" => vol.driver_opts = dict_strings(v, &kp)?,
                "labels" => vol.labels = dict_strings(v, &kp)?,
                k if is_extension(k) => {}
                _ => return Err(unsupported(&p, k)),
            }
        }
        vol.name = engine_name(project, key, name, vol.external);
        out.insert(key.clone(), vol);
    }
    Ok(out)
}

/// Secrets (`file`, `environment`) and configs (also `content`). External ones live in a swarm,
/// which berth has not.
pub fn parse_file_objects(
    n: &Node,
    path: &str,
    project: &str,
    paths: &PathCtx,
    allow_content: bool,
) -> Result<BTreeMap<String, FileObject>, ComposeError> {
    let mut out = BTreeMap::new();
    for (key, body) in entries(n, path)? {
        let p = child(path, key);
        let mut source = None;
        let mut name = None;
        for (k, v) in body.into_iter().flatten() {
            let kp = child(&p, k);
            match k.as_str() {
                "name" => name = Some(string(v, &kp)?),
                "file" => source = Some(FileSource::File(paths.resolve(&string(v, &kp)?))),
                "environment" => source = Some(FileSource::Environment(string(v, &kp)?)),
                "content" if allow_content => source = Some(FileSource::Content(string(v, &kp)?)),
                k if is_extension(k) => {}
                _ => return Err(unsupported(&p, k)),
            }
        }
        let source = source.ok_or_else(|| {
            ComposeError::invalid(&p, "needs one of file, environment or content")
        })?;
        out.insert(
            key.clone(),
            FileObject {
                name: engine_name(project, key, name, false),
                source,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::node::parse_yaml;
    use std::path::Path;

    fn node(y: &str) -> Node {
        let Node::Map(mut m) = parse_yaml(y, "f").unwrap() else {
            panic!()
        };
        m.remove("v").unwrap()
    }

    #[test]
    fn networks() {
        let n = parse_networks(
            &node("v:\n  front:\n  back:\n    driver: bridge\n    ipam: {config: [{subnet: 172.28.0.0/16, gateway: 172.28.0.1}]}\n  ext: {external: true}\n  named: {name: custom}\n"),
            "networks",
            "app",
        )
        .unwrap();
        assert_eq!(n["front"].name, "app_front");
        assert_eq!(n["back"].subnets[0].subnet, "172.28.0.0/16");
        assert_eq!(n["ext"].name, "ext");
        assert!(n["ext"].external);
        assert_eq!(n["named"].name, "custom");
        let e = parse_networks(&node("v: {o: {driver: overlay}}\n"), "networks", "app")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("networks.o.driver: driver \"overlay\""),
            "{e}"
        );
    }

    #[test]
    fn volumes() {
        let v = parse_volumes(
            &node("v: {db-data: null, old: {external: true, name: legacy}, x-skip: 1}\n"),
            "volumes",
            "app",
        )
        .unwrap();
        assert_eq!(v["db-data"].name, "app_db-data");
        assert_eq!(v["old"].name, "legacy");
        assert!(!v.contains_key("x-skip"));
        let e = parse_volumes(&node("v: {d: {size: 1}}\n"), "volumes", "app")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "volumes.d.size: unsupported key");
    }

    #[test]
    fn secrets_and_configs() {
        let ctx = PathCtx {
            base: Path::new("/p"),
            home: None,
        };
        let s = parse_file_objects(
            &node("v: {pw: {file: ./pw.txt}, tok: {environment: TOKEN}}\n"),
            "secrets",
            "app",
            &ctx,
            false,
        )
        .unwrap();
        assert_eq!(s["pw"].source, FileSource::File("/p/pw.txt".into()));
        assert_eq!(s["pw"].name, "app_pw");
        assert_eq!(s["tok"].source, FileSource::Environment("TOKEN".into()));
        let e = parse_file_objects(
            &node("v: {x: {content: a}}\n"),
            "secrets",
            "app",
            &ctx,
            false,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "secrets.x.content: unsupported key");
        let e = parse_file_objects(
            &node("v: {x: {external: true}}\n"),
            "configs",
            "app",
            &ctx,
            true,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(e, "configs.x.external: unsupported key");
        let c = parse_file_objects(
            &node("v: {c: {content: hi}}\n"),
            "configs",
            "app",
            &ctx,
            true,
        )
        .unwrap();
        assert_eq!(c["c"].source, FileSource::Content("hi".into()));
    }
}
