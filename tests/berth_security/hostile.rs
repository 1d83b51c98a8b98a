//! A registry on 127.0.0.1 that misbehaves on purpose: it serves manifests
//! and blobs from memory, each path with a chosen behaviour. Bounded: at
//! most 64 connections, junk of at most `MAX_JUNK` bytes, stalls of at
//! most 30 s; every connection is closed after one response.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MAX_JUNK: usize = 256 << 20;

#[derive(Clone)]
pub enum Serve {
    /// 200 with the right Content-Length.
    Normal(Vec<u8>),
    /// The bytes and then `extra` bytes of junk, close-delimited (no
    /// Content-Length), as a registry that never stops would.
    Longer(Vec<u8>, usize),
    /// A Content-Length of `claimed`, then up to `sent` bytes of junk.
    Claims { claimed: u64, sent: usize },
    /// The right Content-Length, the first `n` bytes, then silence for `secs`.
    Stall(Vec<u8>, usize, u64),
}

pub struct Hostile {
    pub addr: String,
    routes: Arc<Mutex<HashMap<String, Serve>>>,
    /// Responses the client stopped reading before the server had sent them all.
    pub cut_short: Arc<AtomicUsize>,
}

fn junk(c: &mut TcpStream, n: usize) -> bool {
    let chunk = vec![b' '; 64 << 10];
    let mut left = n.min(MAX_JUNK);
    while left > 0 {
        let k = left.min(chunk.len());
        if c.write_all(&chunk[..k]).is_err() {
            return false;
        }
        left -= k;
    }
    true
}

fn respond(mut c: TcpStream, path: &str, serve: Option<Serve>, cut_short: &AtomicUsize) {
    let ct = if path.contains("/manifests/") {
        "application/vnd.oci.image.manifest.v1+json"
    } else {
        "application/octet-stream"
    };
    let head = |len: Option<u64>| {
        let cl = len
            .map(|n| format!("Content-Length: {n}\r\n"))
            .unwrap_or_default();
        format!("HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\n{cl}Connection: close\r\n\r\n")
    };
    let complete = match serve {
        None => {
            let body = r#"{"errors":[{"code":"NAME_UNKNOWN","message":"not here"}]}"#;
            let r = format!(
                "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            c.write_all(r.as_bytes()).is_ok()
        }
        Some(Serve::Normal(b)) => {
            c.write_all(head(Some(b.len() as u64)).as_bytes()).is_ok() && c.write_all(&b).is_ok()
        }
        Some(Serve::Longer(b, extra)) => {
            c.write_all(head(None).as_bytes()).is_ok()
                && c.write_all(&b).is_ok()
                && junk(&mut c, extra)
        }
        Some(Serve::Claims { claimed, sent }) => {
            c.write_all(head(Some(claimed)).as_bytes()).is_ok() && junk(&mut c, sent)
        }
        Some(Serve::Stall(b, n, secs)) => {
            let _ = c.write_all(head(Some(b.len() as u64)).as_bytes());
            let _ = c.write_all(&b[..n.min(b.len())]);
            let _ = c.flush();
            std::thread::sleep(Duration::from_secs(secs.min(30)));
            false
        }
    };
    if !complete {
        cut_short.fetch_add(1, Ordering::SeqCst);
    }
}

fn handle(c: TcpStream, routes: &Mutex<HashMap<String, Serve>>, cut_short: &AtomicUsize) {
    let Ok(rc) = c.try_clone() else { return };
    let _ = c.set_read_timeout(Some(Duration::from_secs(10)));
    let mut r = BufReader::new(rc);
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
            break;
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let serve = if path == "/v2/" {
        Some(Serve::Normal(b"{}".to_vec()))
    } else {
        routes.lock().ok().and_then(|m| m.get(&path).cloned())
    };
    respond(c, &path, serve, cut_short);
}

impl Hostile {
    pub fn start() -> Hostile {
        let l = TcpListener::bind("127.0.0.1:0").expect("binding the hostile registry");
        let addr = l.local_addr().expect("local addr").to_string();
        let routes: Arc<Mutex<HashMap<String, Serve>>> = Arc::default();
        let cut_short = Arc::new(AtomicUsize::new(0));
        let (r2, c2) = (routes.clone(), cut_short.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().take(64) {
                let Ok(c) = conn else { return };
                let (r3, c3) = (r2.clone(), c2.clone());
                std::thread::spawn(move || handle(c, &r3, &c3));
            }
        });
        Hostile {
            addr,
            routes,
            cut_short,
        }
    }

    pub fn route(&self, path: &str, s: Serve) {
        self.routes
            .lock()
            .expect("routes")
            .insert(path.to_string(), s);
    }

    pub fn blob_path(repo: &str, hex: &str) -> String {
        format!("/v2/{repo}/blobs/sha256:{hex}")
    }

    /// Serves an image `repo:1` made of `blobs` (hex, bytes) and `manifest`.
    pub fn image(&self, repo: &str, blobs: &[(String, Vec<u8>)], manifest: &[u8]) -> String {
        for (hex, data) in blobs {
            self.route(&Self::blob_path(repo, hex), Serve::Normal(data.clone()));
        }
        self.route(
            &format!("/v2/{repo}/manifests/1"),
            Serve::Normal(manifest.to_vec()),
        );
        format!("{}/{repo}:1", self.addr)
    }
}

/// An image of gzip `layers` whose config lists `diff_ids` (honest or
/// not): (blobs as (hex, bytes): layers, then config; manifest bytes).
pub fn image(layers: &[Vec<u8>], diff_ids: &[String]) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
    use super::berth_common::sha256_hex;
    let mut blobs = Vec::new();
    let mut descs = Vec::new();
    for gz in layers {
        let d = sha256_hex(gz);
        descs.push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": format!("sha256:{d}"),
            "size": gz.len(),
        }));
        blobs.push((d, gz.clone()));
    }
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("json");
    let cd = sha256_hex(&config);
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{cd}"), "size": config.len()},
        "layers": descs,
    }))
    .expect("json");
    blobs.push((cd, config));
    (blobs, manifest)
}
