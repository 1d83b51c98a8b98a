//! ARG semantics: global ARGs (before the first FROM) are visible only to FROM lines unless a stage
//! re-declares them; stage ARGs take the `--build-arg` value, else their default, else the global
//! value of the same name; the predefined proxy args pass to RUN without a declaration (and stay
//! out of history and cache keys); BuildKit's platform args are predefined in the global scope and
//! need `ARG NAME` inside a stage. A `--build-arg` nothing declares yields docker's warning.

use std::collections::{BTreeMap, BTreeSet};

use super::expand::process_word;
use super::{BuildError, Result};
use crate::image::types::Platform;

pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

pub fn is_proxy(name: &str) -> bool {
    PROXY_ARGS.contains(&name)
}

/// The platform the builder runs on, in OCI terms.
pub fn host_platform() -> Platform {
    let (arch, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", None),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" => ("ppc64le", None),
        other => (other, None),
    };
    Platform {
        os: "linux".to_string(),
        architecture: arch.to_string(),
        variant: variant.map(str::to_string),
    }
}

pub fn platform_string(p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{}/{}/{}", p.os, p.architecture, v),
        None => format!("{}/{}", p.os, p.architecture),
    }
}

/// TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT and the BUILD* equivalents.
pub fn platform_args(target: &Platform, build: &Platform) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (prefix, p) in [("TARGET", target), ("BUILD", build)] {
        m.insert(format!("{prefix}PLATFORM"), platform_string(p));
        m.insert(format!("{prefix}OS"), p.os.clone());
        m.insert(format!("{prefix}ARCH"), p.architecture.clone());
        m.insert(
            format!("{prefix}VARIANT"),
            p.variant.clone().unwrap_or_default(),
        );
    }
    m
}

/// The build's ARG state across stages.
#[derive(Debug, Clone)]
pub struct Args {
    build_args: BTreeMap<String, String>,
    auto: BTreeMap<String, String>,
    /// Global ARGs in declaration order with their resolved values.
    global: Vec<(String, Option<String>)>,
    used: BTreeSet<String>,
}

impl Args {
    pub fn new(build_args: BTreeMap<String, String>, auto: BTreeMap<String, String>) -> Args {
        Args {
            build_args,
            auto,
            global: Vec::new(),
            used: BTreeSet::new(),
        }
    }

    /// The value FROM lines (and global ARG defaults) see.
    pub fn global_lookup(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.global.iter().rev().find(|(n, _)| n == name) {
            return v.clone();
        }
        self.auto.get(name).cloned()
    }

    /// `ARG name[=default]` before the first FROM.
    pub fn declare_global(
        &mut self,
        name: &str,
        default: Option<&str>,
        escape: char,
        line: usize,
    ) -> Result<()> {
        let value = match self.build_args.get(name) {
            Some(v) => Some(v.clone()),
            None => match default {
                Some(d) => Some(
                    process_word(d, &|n| self.global_lookup(n), escape)
                        .map_err(|e| BuildError::at(line, e))?,
                ),
                None => self.auto.get(name).cloned(),
            },
        };
        self.used.insert(name.to_string());
        self.global.push((name.to_string(), value));
        Ok(())
    }

    /// The value a stage's `ARG name[=default]` takes; `default` is already expanded.
    pub fn stage_value(&mut self, name: &str, default: Option<String>) -> Option<String> {
        self.used.insert(name.to_string());
        if let Some(v) = self.build_args.get(name) {
            return Some(v.clone());
        }
        if default.is_some() {
            return default;
        }
        self.global_lookup(name)
    }

    /// Proxy args given with `--build-arg`: passed to RUN without a declaration.
    pub fn proxy_env(&self) -> Vec<(String, String)> {
        self.build_args
            .iter()
            .filter(|(k, _)| is_proxy(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Docker's warning for `--build-arg`s no ARG consumed (proxy args are always consumed).
    pub fn warnings(&self) -> Vec<String> {
        let unused: Vec<&str> = self
            .build_args
            .keys()
            .filter(|k| !self.used.contains(*k) && !is_proxy(k))
            .map(String::as_str)
            .collect();
        if unused.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "[Warning] One or more build-args [{}] were not consumed",
            unused.join(" ")
        )]
    }
}

/// Parses `K=V` (or `K`, taking the value from the environment as docker does; unset → skipped).
pub fn parse_build_arg(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) => Some((k.to_string(), v.to_string())),
        None => env(s).map(|v| (s.to_string(), v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(pairs: &[(&str, &str)]) -> Args {
        let ba = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let p = Platform::parse("linux/arm64/v8").unwrap();
        Args::new(ba, platform_args(&p, &host_platform()))
    }

    #[test]
    fn global_defaults_overrides_and_platform() {
        let mut a = args(&[("VERSION", "2")]);
        a.declare_global("VERSION", Some("1"), '\\', 1).unwrap();
        a.declare_global("BASE", Some("img:${VERSION}"), '\\', 2)
            .unwrap();
        a.declare_global("NONE", None, '\\', 3).unwrap();
        assert_eq!(a.global_lookup("VERSION").as_deref(), Some("2"));
        assert_eq!(a.global_lookup("BASE").as_deref(), Some("img:2"));
        assert_eq!(a.global_lookup("NONE"), None);
        assert_eq!(a.global_lookup("TARGETARCH").as_deref(), Some("arm64"));
        assert_eq!(a.global_lookup("TARGETVARIANT").as_deref(), Some("v8"));
        assert_eq!(
            a.global_lookup("TARGETPLATFORM").as_deref(),
            Some("linux/arm64/v8")
        );
        assert!(a.global_lookup("BUILDPLATFORM").is_some());
    }

    #[test]
    fn stage_values() {
        let mut a = args(&[("B", "cli")]);
        a.declare_global("G", Some("g"), '\\', 1).unwrap();
        assert_eq!(a.stage_value("G", None).as_deref(), Some("g"));
        assert_eq!(
            a.stage_value("G", Some("own".into())).as_deref(),
            Some("own")
        );
        assert_eq!(a.stage_value("B", Some("d".into())).as_deref(), Some("cli"));
        assert_eq!(a.stage_value("U", None), None);
        assert_eq!(a.stage_value("TARGETOS", None).as_deref(), Some("linux"));
    }

    #[test]
    fn unused_warning_and_proxies() {
        let mut a = args(&[
            ("USED", "1"),
            ("ZED", "1"),
            ("AAA", "2"),
            ("http_proxy", "http://p:3128"),
        ]);
        a.stage_value("USED", None);
        assert_eq!(
            a.warnings(),
            vec!["[Warning] One or more build-args [AAA ZED] were not consumed".to_string()]
        );
        assert_eq!(
            a.proxy_env(),
            vec![("http_proxy".into(), "http://p:3128".into())]
        );
        assert!(args(&[]).warnings().is_empty());
    }

    #[test]
    fn build_arg_from_environment() {
        let env = |n: &str| (n == "HOME").then(|| "/root".to_string());
        assert_eq!(
            parse_build_arg("A=b=c", &env),
            Some(("A".into(), "b=c".into()))
        );
        assert_eq!(
            parse_build_arg("HOME", &env),
            Some(("HOME".into(), "/root".into()))
        );
        assert_eq!(parse_build_arg("NOPE", &env), None);
    }
}
