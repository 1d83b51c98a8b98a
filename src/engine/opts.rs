//! Parsing of docker's run flags (-p, -v, --mount, --restart, --cpus, -e,
//! sizes) into the typed values `CreateOptions` holds. Front ends (the CLI,
//! a compose file reader) call these; none of them knows about clap.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;

pub use crate::network::PortMap;

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
    /// `-v /host:/x` makes a missing host directory (docker's -v; `--mount` refuses).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub create_source: bool,
}

/// A `-v` source that is not an absolute path names a volume: docker's rule and
/// message (a relative host path is never resolved against the caller's cwd).
fn check_volume_source(src: &str) -> Result<()> {
    let mut chars = src.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        bail!("create {src}: {src:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path");
    }
    Ok(())
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
    } else if src.starts_with('/') {
        "bind"
    } else {
        check_volume_source(src)?;
        "volume"
    };
    Ok(MountSpec {
        typ: typ.into(),
        source: src.into(),
        target: dst.into(),
        readonly,
        anonymous: src.is_empty(),
        options: vec![],
        create_source: typ == "bind",
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
        create_source: false,
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

/// docker's restart policies. Stored as `{"name", "max_retries"}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(from = "RestartRecord", into = "RestartRecord")]
pub enum RestartPolicy {
    #[default]
    No,
    /// Restart after a non-zero exit; 0 retries = no limit.
    OnFailure(u32),
    Always,
    UnlessStopped,
}

#[derive(Serialize, Deserialize, Default)]
struct RestartRecord {
    name: String,
    #[serde(default)]
    max_retries: u32,
}

impl From<RestartRecord> for RestartPolicy {
    fn from(r: RestartRecord) -> RestartPolicy {
        match r.name.as_str() {
            "on-failure" => RestartPolicy::OnFailure(r.max_retries),
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            _ => RestartPolicy::No,
        }
    }
}

impl From<RestartPolicy> for RestartRecord {
    fn from(p: RestartPolicy) -> RestartRecord {
        RestartRecord {
            name: p.name().to_string(),
            max_retries: p.max_retries(),
        }
    }
}

impl RestartPolicy {
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "no",
            RestartPolicy::OnFailure(_) => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }

    pub fn max_retries(self) -> u32 {
        match self {
            RestartPolicy::OnFailure(n) => n,
            _ => 0,
        }
    }

    /// The monitor's decision after the container exited with `code`,
    /// having been restarted `restarts` times; `stopped`: a user asked it to stop.
    pub fn should_restart(self, code: i32, restarts: u32, stopped: bool) -> bool {
        if stopped {
            return false;
        }
        match self {
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure(max) => code != 0 && (max == 0 || restarts < max),
            RestartPolicy::No => false,
        }
    }
}

pub fn parse_restart(s: &str) -> Result<RestartPolicy> {
    let (name, n) = s.split_once(':').unwrap_or((s, ""));
    let max_retries: u32 = if n.is_empty() {
        0
    } else {
        n.parse()
            .with_context(|| format!("invalid restart count {n:?} in --restart {s}"))?
    };
    if max_retries > 0 && name != "on-failure" && ["always", "unless-stopped", "no"].contains(&name)
    {
        bail!("maximum retry count cannot be used with restart policy {name:?}");
    }
    Ok(match name {
        "no" => RestartPolicy::No,
        "on-failure" => RestartPolicy::OnFailure(max_retries),
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        _ => bail!("invalid restart policy {name:?}"),
    })
}

/// `--cpus`: a positive number of CPUs (docker refuses negatives and NaN).
pub fn parse_cpus(s: &str) -> Result<f64> {
    let v: f64 = s
        .trim()
        .parse()
        .with_context(|| format!("invalid argument {s:?} for --cpus: not a number"))?;
    if !v.is_finite() || v < 0.0 {
        bail!(
            "invalid argument {s:?} for --cpus: range of CPUs is from 0.01 to the number of CPUs"
        );
    }
    Ok(v)
}

/// `--tmpfs /dst[:opts]`.
pub fn parse_tmpfs(spec: &str) -> Result<MountSpec> {
    let (dst, o) = spec.split_once(':').unwrap_or((spec, ""));
    if !dst.starts_with('/') {
        bail!("invalid --tmpfs {spec:?}: {dst:?} is not an absolute path");
    }
    Ok(MountSpec {
        typ: "tmpfs".into(),
        source: String::new(),
        target: dst.into(),
        readonly: false,
        anonymous: false,
        options: o
            .split(',')
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        create_source: false,
    })
}

/// `-e KEY=VALUE` / `-e KEY` (taken from berth's environment; dropped if unset).
/// An empty key (`-e =value`) is refused, as docker does.
pub fn parse_env(kv: &str) -> Result<Option<String>> {
    if kv.is_empty() || kv.starts_with('=') {
        bail!("invalid environment variable: {kv:?} (empty name)");
    }
    Ok(expand_env(kv))
}

/// `--security-opt`: the seccomp profile (a path or "unconfined"), if any.
pub fn parse_security_opts(opts: &[String]) -> Result<Option<String>> {
    let mut seccomp = None;
    for s in opts {
        match s.split_once(['=', ':']) {
            Some(("seccomp", v)) => {
                if v != "unconfined" && !std::path::Path::new(v).exists() {
                    bail!("opening seccomp profile {v}: no such file");
                }
                seccomp = Some(v.to_string());
            }
            Some(("no-new-privileges", _)) | Some(("label", _)) | Some(("apparmor", _)) => {}
            _ => bail!("invalid --security-opt: {s:?}"),
        }
    }
    Ok(seccomp)
}

/// `--log-opt max-size=SIZE,max-file=N` for the json-file log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogOptions {
    pub max_size: Option<u64>,
    pub max_file: u32,
}

impl Default for LogOptions {
    fn default() -> Self {
        LogOptions {
            max_size: None,
            max_file: 1,
        }
    }
}

pub fn parse_log_opts(opts: &[String]) -> Result<LogOptions> {
    let mut l = LogOptions::default();
    for o in opts {
        match o.split_once('=') {
            Some(("max-size", v)) => l.max_size = Some(parse_size(v)? as u64),
            Some(("max-file", v)) => {
                l.max_file = v
                    .parse()
                    .with_context(|| format!("invalid --log-opt {o}"))?
            }
            _ => bail!("unknown log opt {o:?}"),
        }
    }
    Ok(l)
}

/// `--label k=v` / `--label k`.
pub fn parse_label(l: &str) -> (String, String) {
    let (k, v) = l.split_once('=').unwrap_or((l, ""));
    (k.to_string(), v.to_string())
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

/// The non-empty, non-comment lines of a `--env-file`/`--label-file`, trimmed.
pub fn file_lines(path: &str, flag: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {flag} {path}"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect())
}

/// KEY=VALUE lines; bare KEY takes the value from berth's environment.
pub fn parse_env_file(path: &str) -> Result<Vec<String>> {
    Ok(file_lines(path, "--env-file")?
        .iter()
        .map(|l| parse_env(l).with_context(|| format!("in --env-file {path}")))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
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
        assert_eq!(parse_restart("on-failure:2").unwrap().max_retries(), 2);
        assert!(parse_restart("always:3").is_err());
    }

    #[test]
    fn ports_more() {
        let p = parse_port("8080:80").unwrap();
        assert_eq!(p.host_ip, "0.0.0.0");
        assert_eq!(p.to_string(), "0.0.0.0:8080->80/tcp");
        assert_eq!(parse_port("80").unwrap().host_port, 0);
        assert_eq!(parse_port("127.0.0.1::80").unwrap().host_port, 0);
        assert!(parse_port("0").is_err());
        assert!(parse_port("1:2:3:4").is_err());
        assert!(parse_port("70000:80").is_err());
    }

    #[test]
    fn volumes_more() {
        let e = parse_volume("../../etc:/x").unwrap_err().to_string();
        assert!(
            e.contains("includes invalid characters for a local volume name"),
            "{e}"
        );
        assert!(parse_volume("./d:/x:rw").is_err());
        assert!(parse_volume("/missing:/x").unwrap().create_source);
        assert!(parse_volume("/a:/b:rx").is_err());
        assert!(parse_volume("/a:/b:ro:x").is_err());
        let m = parse_mount("type=bind,source=/a,target=/b,readonly").unwrap();
        assert_eq!((m.typ.as_str(), m.readonly), ("bind", true));
        let m = parse_mount("type=tmpfs,dst=/t,tmpfs-size=1m").unwrap();
        assert_eq!(m.options, vec!["size=1m".to_string()]);
        assert!(parse_mount("type=volume,target=/v").unwrap().anonymous);
        assert!(parse_mount("type=bind,target=/b").is_err());
        assert!(parse_mount("type=nfs,target=/b").is_err());
        assert!(parse_mount("type=bind,src=/a,target=rel").is_err());
        assert!(parse_mount("type=bind,src=/a,dst=/b,bogus=1").is_err());
        assert_eq!(
            parse_tmpfs("/run:size=1m").unwrap().options,
            vec!["size=1m"]
        );
        assert!(parse_tmpfs("run").is_err());
    }

    #[test]
    fn restart_policies() {
        assert_eq!(parse_restart("no").unwrap(), RestartPolicy::No);
        assert_eq!(parse_restart("always").unwrap(), RestartPolicy::Always);
        assert_eq!(
            parse_restart("on-failure").unwrap(),
            RestartPolicy::OnFailure(0)
        );
        assert!(parse_restart("sometimes").is_err());
        assert!(parse_restart("on-failure:x").is_err());
        let r = serde_json::to_value(RestartPolicy::OnFailure(3)).unwrap();
        assert_eq!(
            r,
            serde_json::json!({"name": "on-failure", "max_retries": 3})
        );
        let back: RestartPolicy = serde_json::from_value(r).unwrap();
        assert_eq!(back, RestartPolicy::OnFailure(3));
    }

    #[test]
    fn restart_decisions() {
        use RestartPolicy::*;
        assert!(!No.should_restart(1, 0, false));
        assert!(Always.should_restart(0, 9, false));
        assert!(!Always.should_restart(1, 0, true));
        assert!(UnlessStopped.should_restart(0, 0, false));
        assert!(OnFailure(0).should_restart(1, 100, false));
        assert!(!OnFailure(0).should_restart(0, 0, false));
        assert!(OnFailure(2).should_restart(1, 1, false));
        assert!(!OnFailure(2).should_restart(1, 2, false));
    }

    #[test]
    fn cpus_env_sizes() {
        assert_eq!(parse_cpus("1.5").unwrap(), 1.5);
        assert!(parse_cpus("-1").is_err());
        assert!(parse_cpus("NaN").is_err());
        assert!(parse_cpus("two").is_err());
        assert!(parse_env("=value").is_err());
        assert!(parse_env("").is_err());
        assert_eq!(parse_env("A=1").unwrap().as_deref(), Some("A=1"));
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert!(parse_size("-5m").is_err());
        assert!(parse_size("lots").is_err());
        assert_eq!(
            merge_env(&["A=1".into(), "B=2".into()], &["A=3".into()]),
            vec!["B=2".to_string(), "A=3".to_string()]
        );
        assert!(parse_ulimit("nofile=10:20").is_ok());
        assert!(parse_ulimit("nofile").is_err());
        assert_eq!(parse_label("a=b=c"), ("a".into(), "b=c".into()));
    }
}
