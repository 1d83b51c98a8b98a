//! Service `ports`: short syntax `[host_ip:][host_port[-end]:]container_port[-end][/proto]`
//! (ranges expanded one entry per port, as compose does) and the long syntax mapping.

use super::conv::{child, int, is_extension, map, string, unsupported};
use super::model::{Port, Protocol};
use super::node::Node;
use super::ComposeError;

pub fn parse_ports(n: &Node, path: &str) -> Result<Vec<Port>, ComposeError> {
    let Node::Seq(items) = n else {
        return Err(ComposeError::invalid(path, "must be a list"));
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = format!("{path}[{i}]");
        match item {
            Node::Map(_) => out.push(parse_long(item, &p)?),
            other => out.extend(parse_short(&string(other, &p)?, &p)?),
        }
    }
    Ok(out)
}

fn protocol(s: &str, path: &str) -> Result<Protocol, ComposeError> {
    match s.to_ascii_lowercase().as_str() {
        "tcp" => Ok(Protocol::Tcp),
        "udp" => Ok(Protocol::Udp),
        "sctp" => Ok(Protocol::Sctp),
        _ => Err(ComposeError::invalid(
            path,
            format!("unknown protocol {s:?}"),
        )),
    }
}

fn range(s: &str, path: &str, whole: &str) -> Result<(u16, u16), ComposeError> {
    let bad = || ComposeError::invalid(path, format!("invalid port {whole:?}"));
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a.trim().parse().map_err(|_| bad())?;
    let b: u16 = b.trim().parse().map_err(|_| bad())?;
    if b < a {
        return Err(bad());
    }
    Ok((a, b))
}

pub fn parse_short(spec: &str, path: &str) -> Result<Vec<Port>, ComposeError> {
    let (body, proto) = match spec.rsplit_once('/') {
        Some((b, p)) => (b, protocol(p, path)?),
        None => (spec, Protocol::Tcp),
    };
    // An IPv6 host address is bracketed: `[::1]:8080:80`.
    let (host_ip, rest) = if let Some(r) = body.strip_prefix('[') {
        let (ip, after) = r
            .split_once(']')
            .ok_or_else(|| ComposeError::invalid(path, format!("invalid port {spec:?}")))?;
        let after = after
            .strip_prefix(':')
            .ok_or_else(|| ComposeError::invalid(path, format!("invalid port {spec:?}")))?;
        (Some(ip.to_string()), after.to_string())
    } else {
        let parts: Vec<&str> = body.split(':').collect();
        match parts.len() {
            1 | 2 => (None, body.to_string()),
            3 => (
                Some(parts[0].to_string()),
                format!("{}:{}", parts[1], parts[2]),
            ),
            _ => {
                return Err(ComposeError::invalid(
                    path,
                    format!("invalid port {spec:?}"),
                ))
            }
        }
    };
    let (host, container) = match rest.split_once(':') {
        Some((h, c)) => (Some(h), c),
        None => (None, rest.as_str()),
    };
    let host_ip = host_ip.filter(|ip| !ip.is_empty());
    let (c0, c1) = range(container, path, spec)?;
    let host = match host.filter(|h| !h.is_empty()) {
        Some(h) => Some(range(h, path, spec)?),
        None => None,
    };
    let port = |target, published| Port {
        name: None,
        target,
        published,
        host_ip: host_ip.clone(),
        protocol: proto,
        mode: "ingress".into(),
        app_protocol: None,
    };
    let count = c1 - c0;
    match host {
        None => Ok((c0..=c1).map(|t| port(t, None)).collect()),
        // One container port on a host range: any free host port of the range.
        Some(h) if count == 0 => Ok(vec![port(c0, Some(h))]),
        Some((h0, h1)) if h1 - h0 == count => Ok((0..=count)
            .map(|k| port(c0 + k, Some((h0 + k, h0 + k))))
            .collect()),
        Some(_) => Err(ComposeError::invalid(
            path,
            format!(
                "port ranges don't match in {spec:?}: host and container ranges differ in size"
            ),
        )),
    }
}

fn parse_long(n: &Node, path: &str) -> Result<Port, ComposeError> {
    let m = map(n, path)?;
    let mut port = Port {
        name: None,
        target: 0,
        published: None,
        host_ip: None,
        protocol: Protocol::Tcp,
        mode: "ingress".into(),
        app_protocol: None,
    };
    let mut has_target = false;
    for (k, v) in m {
        let p = child(path, k);
        match k.as_str() {
            "target" => {
                port.target = u16::try_from(int(v, &p)?)
                    .map_err(|_| ComposeError::invalid(&p, "port out of range"))?;
                has_target = true;
            }
            "published" => {
                let s = string(v, &p)?;
                if !s.is_empty() {
                    port.published = Some(range(&s, &p, &s)?);
                }
            }
            "host_ip" => port.host_ip = Some(string(v, &p)?),
            "protocol" => port.protocol = protocol(&string(v, &p)?, &p)?,
            "mode" => {
                let mode = string(v, &p)?;
                if mode != "host" && mode != "ingress" {
                    return Err(ComposeError::invalid(&p, format!("unknown mode {mode:?}")));
                }
                port.mode = mode;
            }
            "name" => port.name = Some(string(v, &p)?),
            "app_protocol" => port.app_protocol = Some(string(v, &p)?),
            k if is_extension(k) => {}
            _ => return Err(unsupported(path, k)),
        }
    }
    if !has_target {
        return Err(ComposeError::invalid(&child(path, "target"), "is required"));
    }
    Ok(port)
}

/// The merge identity of a `ports` entry: {ip, target, published, protocol}.
pub fn merge_key(n: &Node) -> Option<String> {
    let ports = match n {
        Node::Map(_) => vec![parse_long(n, "").ok()?],
        other => parse_short(&other.scalar_text()?, "").ok()?,
    };
    let p = ports.first()?;
    Some(format!(
        "{}|{}|{:?}|{}|{}",
        p.host_ip.clone().unwrap_or_default(),
        p.target,
        p.published,
        p.protocol.as_str(),
        ports.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Port {
        let v = parse_short(s, "p").unwrap();
        assert_eq!(v.len(), 1, "{s}");
        v.into_iter().next().unwrap()
    }

    #[test]
    fn short_forms() {
        let p = one("80");
        assert_eq!(
            (p.target, p.published, p.protocol),
            (80, None, Protocol::Tcp)
        );
        let p = one("8080:80");
        assert_eq!((p.target, p.published), (80, Some((8080, 8080))));
        let p = one("127.0.0.1:8080:80/udp");
        assert_eq!(p.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(p.protocol, Protocol::Udp);
        let p = one("127.0.0.1::80");
        assert_eq!(
            (p.host_ip.as_deref(), p.published),
            (Some("127.0.0.1"), None)
        );
        let p = one("[::1]:8080:80");
        assert_eq!(p.host_ip.as_deref(), Some("::1"));
        let p = one("9000-9010:80");
        assert_eq!(p.published, Some((9000, 9010)));
    }

    #[test]
    fn ranges_expand() {
        let v = parse_short("8080-8082:80-82", "p").unwrap();
        let pairs: Vec<_> = v.iter().map(|p| (p.published, p.target)).collect();
        assert_eq!(
            pairs,
            vec![
                (Some((8080, 8080)), 80),
                (Some((8081, 8081)), 81),
                (Some((8082, 8082)), 82)
            ]
        );
        assert_eq!(parse_short("3000-3001", "p").unwrap().len(), 2);
    }

    #[test]
    fn mismatched_ranges_and_garbage() {
        let e = parse_short("8080-8081:80-82", "services.web.ports[0]")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("services.web.ports[0]: port ranges don't match"),
            "{e}"
        );
        assert!(parse_short("8080:80-81", "p").is_err());
        assert!(parse_short("http", "p").is_err());
        assert!(parse_short("70000", "p").is_err());
        assert!(parse_short("80/icmp", "p").is_err());
        assert!(parse_short("1:2:3:4", "p").is_err());
    }

    #[test]
    fn long_syntax() {
        let n = super::super::node::parse_yaml(
            "ports:\n  - target: 80\n    published: \"8080\"\n    host_ip: 0.0.0.0\n    protocol: udp\n    mode: host\n  - 443:443\n",
            "f",
        )
        .unwrap();
        let Node::Map(m) = n else { panic!() };
        let ports = parse_ports(&m["ports"], "services.web.ports").unwrap();
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].published, Some((8080, 8080)));
        assert_eq!(ports[0].mode, "host");
        assert_eq!(ports[0].protocol, Protocol::Udp);
        assert_eq!(ports[1].target, 443);
        let n = super::super::node::parse_yaml("p:\n  - published: 80\n", "f").unwrap();
        let Node::Map(m) = n else { panic!() };
        let e = parse_ports(&m["p"], "s.ports").unwrap_err().to_string();
        assert_eq!(e, "s.ports[0].target: is required");
        let n = super::super::node::parse_yaml("p:\n  - target: 80\n    bogus: 1\n", "f").unwrap();
        let Node::Map(m) = n else { panic!() };
        let e = parse_ports(&m["p"], "s.ports").unwrap_err().to_string();
        assert_eq!(e, "s.ports[0].bogus: unsupported key");
    }

    #[test]
    fn merge_keys_identify_same_port() {
        assert_eq!(
            merge_key(&Node::Str("8080:80".into())),
            merge_key(&Node::Str("8080:80/tcp".into()))
        );
        assert_ne!(
            merge_key(&Node::Str("8080:80".into())),
            merge_key(&Node::Str("8081:80".into()))
        );
    }
}
