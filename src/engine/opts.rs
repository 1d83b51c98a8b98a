//! Parsing of docker's run flags (-p, -v, --mount, --restart, sizes).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PortMap {
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
    pub proto: String,
}

impl std::fmt::Display for PortMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}->{}/{}",
            self.host_ip, self.host_port, self.container_port, self.proto
        )
    }
}

fn port(s: &str, what: &str, spec: &str) -> Result<u16> {
    s.parse::<u16>()
        .ok()
        .filter(|p| *p != 0 || what == "host")
        .with_context(|| format!("invalid {what} port {s:?} in -p {spec}"))
}

/// `[ip:][hostPort:]containerPort[/proto]`; host port 0 = pick a free one.
pub fn parse_port(spec: &str) -> Result<PortMap> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_string()),
        None => (spec, "tcp".to_string()),
    };
    if proto != "tcp" && proto != "udp" {
        bail!("invalid protocol {proto:?} in -p {spec}");
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, hp, cp) = match parts.as_slice() {
        [c] => ("0.0.0.0", "0", *c),
        [h, c] => ("0.0.0.0", *h, *c),
        [i, h, c] => (*i, *h, *c),
        _ => bail!("invalid -p {spec}: want [ip:][hostPort:]containerPort[/proto]"),
    };
    let ip = if ip.is_empty() { "0.0.0.0" } else { ip };
    ip.parse::<Ipv4Addr>()
        .with_context(|| format!("invalid host IP {ip:?} in -p {spec}"))?;
    let host_port = if hp.is_empty() {
        0
    } else {
        port(hp, "host", spec)?
    };
    Ok(PortMap {
        host_ip: ip.to_string(),
        host_port,
        container_port: port(cp, "container", spec)?,
        proto,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountSpec {
    /// bind, volume or tmpfs
    pub typ: String,
    /// Host path (bind) or volume name (volume); empty for tmpfs.
    pub source: String,
    pub target: String,
    pub readonly: bool,
    /// Anonymous volume, removed with the container by `rm -v` / `--rm`.
    #[serde(default)]
    pub anonymous: bool,
    #[serde(default)]
    pub options: Vec<String>,
}

/// `-v src:dst[:ro|rw]` or `-v dst` (anonymous volume).
pub fn parse_volume(spec: &str) -> Result<MountSpec> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [d] => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => bail!("invalid volume specification: {spec:?}"),
    };
    if !dst.starts_with('/') {
        bail!("invalid volume specification {spec:?}: destination {dst:?} is not an absolute path");
    }
    let readonly = match mode {
        "" | "rw" => false,
        "ro" => true,
        m => bail!("invalid mode {m:?} in volume specification {spec:?}"),
    };
    let typ = if src.is_empty() {
        "volume"
    } else if src.starts_with('/') || src.starts_with('.') {
        "bind"
    } else {
        "volume"
    };
    Ok(MountSpec {
        typ: typ.into(),
        source: src.into(),
        target: dst.into(),
        readonly,
        anonymous: src.is_empty(),
        options: vec![],
    })
}

/// `--mount type=bind,source=/a,target=/b,readonly`.
pub fn parse_mount(spec: &str) -> Result<MountSpec> {
    let mut m = MountSpec {
        typ: "volume".into(),
        source: String::new(),
        target: String::new(),
        readonly: false,
        anonymous: false,
        options: vec![],
    };
    for kv in spec.split(',') {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        match k {
            "type" => m.typ = v.into(),
            "source" | "src" => m.source = v.into(),
            "target" | "destination" | "dst" => m.target = v.into(),
            "readonly" | "ro" => m.readonly = v.is_empty() || v == "true" || v == "1",
            "tmpfs-size" => m.options.push(format!("size={v}")),
            "tmpfs-mode" => m.options.push(format!("mode={v}")),
            _ => bail!("unknown key {k:?} in --mount {spec}"),
        }
    }
    if !["bind", "volume", "tmpfs"].contains(&m.typ.as_str()) {
        bail!("invalid mount type {:?} in --mount {spec}", m.typ);
    }
    if !m.target.starts_with('/') {
        bail!("--mount {spec}: target must be an absolute path");
    }
    if m.typ == "bind" && m.source.is_empty() {
        bail!("--mount {spec}: bind needs a source");
    }
    m.anonymous = m.typ == "volume" && m.source.is_empty();
    Ok(m)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct RestartPolicy {
    /// no, on-failure, always, unless-stopped
    pub name: String,
    pub max_retries: u32,
}

pub fn parse_restart(s: &str) -> Result<RestartPolicy> {
    let (name, n) = s.split_once(':').unwrap_or((s, ""));
    let max_retries = if n.is_empty() {
        0
    } else {
        n.parse()
            .with_context(|| format!("invalid restart count {n:?} in --restart {s}"))?
    };
    if !["no", "on-failure", "always", "unless-stopped"].contains(&name) {
        bail!("invalid restart policy {name:?}");
    }
    if max_retries > 0 && name != "on-failure" {
        bail!("maximum retry count cannot be used with restart policy {name:?}");
    }
    Ok(RestartPolicy {
        name: name.into(),
        max_retries,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

pub fn parse_ulimit(s: &str) -> Result<Ulimit> {
    let (name, v) = s
        .split_once('=')
        .with_context(|| format!("invalid --ulimit {s:?}: want name=soft[:hard]"))?;
    let (a, b) = v.split_once(':').unwrap_or((v, v));
    let num = |x: &str| {
        x.parse::<u64>()
            .with_context(|| format!("invalid --ulimit value {x:?} in {s}"))
    };
    Ok(Ulimit {
        name: name.into(),
        soft: num(a)?,
        hard: num(b)?,
    })
}

/// docker's RAMInBytes: 512m, 1g, 100k, plain bytes.
pub fn parse_size(s: &str) -> Result<i64> {
    let l = s.to_ascii_lowercase();
    let l = l.trim_end_matches('b');
    let (num, mult) = match l.chars().last() {
        Some('k') => (&l[..l.len() - 1], 1i64 << 10),
        Some('m') => (&l[..l.len() - 1], 1 << 20),
        Some('g') => (&l[..l.len() - 1], 1 << 30),
        Some('t') => (&l[..l.len() - 1], 1 << 40),
        _ => (l, 1),
    };
    let n: f64 = num
        .parse()
        .with_context(|| format!("invalid size: {s:?}"))?;
    if n < 0.0 {
        bail!("invalid size: {s:?}");
    }
    Ok((n * mult as f64) as i64)
}

/// KEY=VALUE lines; bare KEY takes the value from berth's environment.
pub fn parse_env_file(path: &str) -> Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading --env-file {path}"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(expand_env)
        .collect())
}

pub fn expand_env(kv: &str) -> Option<String> {
    if kv.contains('=') {
        Some(kv.to_string())
    } else {
        std::env::var(kv).ok().map(|v| format!("{kv}={v}"))
    }
}

/// Merges `KEY=V` lists: later entries replace earlier keys.
pub fn merge_env(base: &[String], over: &[String]) -> Vec<String> {
    let mut out: Vec<String> = base.to_vec();
    for kv in over {
        let k = kv.split('=').next().unwrap_or(kv);
        out.retain(|e| e.split('=').next() != Some(k));
        out.push(kv.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        let p = parse_port("127.0.0.1:8080:80").unwrap();
        assert_eq!((p.host_port, p.container_port), (8080, 80));
        assert_eq!(parse_port("53/udp").unwrap().proto, "udp");
        assert!(parse_port("80:abc").is_err());
        assert!(parse_port("1.2.3:80:80").is_err());
        assert!(parse_port("80/sctp").is_err());
    }

    #[test]
    fn volumes_and_sizes() {
        assert_eq!(parse_volume("/a:/b:ro").unwrap().typ, "bind");
        assert!(parse_volume("data:/b").unwrap().typ == "volume");
        assert!(parse_volume("/b").unwrap().anonymous);
        assert!(parse_volume("a:b").is_err());
        assert_eq!(parse_size("64m").unwrap(), 64 << 20);
        assert_eq!(parse_restart("on-failure:2").unwrap().max_retries, 2);
        assert!(parse_restart("always:3").is_err());
    }
}
