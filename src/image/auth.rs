//! Registry credentials in docker's config.json format
//! (`{"auths": {"host": {"auth": base64("user:pass")}}}`).
//!
//! `berth login` writes `<root>/auth.json`; lookups try that first, then
//! `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`.

use anyhow::{Context, Result};
use base64::Engine;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

use super::store::write_atomic;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl Credentials {
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// docker keeps Docker Hub credentials under its legacy index URL.
fn keys_for(domain: &str) -> Vec<String> {
    if domain == "docker.io" || domain == "registry-1.docker.io" || domain == "index.docker.io" {
        vec![
            "https://index.docker.io/v1/".into(),
            "docker.io".into(),
            "registry-1.docker.io".into(),
            "index.docker.io".into(),
        ]
    } else {
        vec![
            domain.to_string(),
            format!("https://{domain}"),
            format!("http://{domain}"),
        ]
    }
}

pub fn auth_file(root: &Path) -> PathBuf {
    root.join("auth.json")
}

fn docker_config() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(d).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

fn read_json(p: &Path) -> Result<Option<Value>> {
    match std::fs::read(p) {
        Ok(data) => Ok(Some(
            serde_json::from_slice(&data).with_context(|| format!("parsing {}", p.display()))?,
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
    }
}

fn from_file(p: &Path, domain: &str) -> Result<Option<Credentials>> {
    let Some(v) = read_json(p)? else {
        return Ok(None);
    };
    for k in keys_for(domain) {
        let Some(entry) = v.get("auths").and_then(|a| a.get(&k)) else {
            continue;
        };
        if let Some(a) = entry.get("auth").and_then(|a| a.as_str()) {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(a.trim())
                .with_context(|| format!("{}: bad base64 in auths.{k:?}.auth", p.display()))?;
            let raw = String::from_utf8_lossy(&raw).into_owned();
            if let Some((u, pw)) = raw.split_once(':') {
                return Ok(Some(Credentials {
                    username: u.to_string(),
                    password: pw.to_string(),
                }));
            }
        }
        if let (Some(u), Some(pw)) = (
            entry.get("username").and_then(|x| x.as_str()),
            entry.get("password").and_then(|x| x.as_str()),
        ) {
            return Ok(Some(Credentials {
                username: u.into(),
                password: pw.into(),
            }));
        }
    }
    Ok(None)
}

pub fn lookup(root: &Path, domain: &str) -> Result<Option<Credentials>> {
    if let Some(c) = from_file(&auth_file(root), domain)? {
        return Ok(Some(c));
    }
    match docker_config() {
        Some(p) => from_file(&p, domain),
        None => Ok(None),
    }
}

pub fn save(root: &Path, domain: &str, c: &Credentials) -> Result<()> {
    let p = auth_file(root);
    let mut v = read_json(&p)?.unwrap_or_else(|| json!({}));
    let key = keys_for(domain).remove(0);
    let raw = format!("{}:{}", c.username, c.password);
    let enc = base64::engine::general_purpose::STANDARD.encode(raw);
    if !v.get("auths").is_some_and(|a| a.is_object()) {
        v["auths"] = json!({});
    }
    v["auths"][key] = json!({ "auth": enc });
    super::rootdir::ensure(root)?;
    write_atomic(&p, &serde_json::to_vec_pretty(&v)?)?;
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .with_context(|| format!("chmod {}", p.display()))?;
    Ok(())
}

/// Returns whether anything was removed.
pub fn remove(root: &Path, domain: &str) -> Result<bool> {
    let p = auth_file(root);
    let Some(mut v) = read_json(&p)? else {
        return Ok(false);
    };
    let mut removed = false;
    if let Some(a) = v.get_mut("auths").and_then(|a| a.as_object_mut()) {
        for k in keys_for(domain) {
            removed |= a.remove(&k).is_some();
        }
    }
    if removed {
        write_atomic(&p, &serde_json::to_vec_pretty(&v)?)?;
    }
    Ok(removed)
}
