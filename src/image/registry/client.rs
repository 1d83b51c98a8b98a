//! The registry connection: requests with authentication retried once on
//! a 401, and the manifest and blob calls of the distribution API.

use anyhow::{anyhow, bail, Context, Result};
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;

use crate::image::auth::{self, Credentials};
use crate::image::digest::Digest;
use crate::image::progress::ProgressReader;
use crate::image::reference::Reference;
use crate::image::types::*;

use super::limits::{self, error_body, read_bounded, IdleReader};

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a Path, u64, Option<&'a crate::image::progress::Task>),
}

pub struct Client {
    pub(super) agent: ureq::Agent,
    base: String,
    pub(super) domain: String,
    pub(super) creds: Option<Credentials>,
    pub(super) scopes: Vec<String>,
    pub(super) authz: Mutex<Option<String>>,
}

pub(super) fn registry_error(what: &str, status: u16, body: &str) -> anyhow::Error {
    #[derive(serde::Deserialize)]
    struct E {
        code: Option<String>,
        message: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Es {
        errors: Vec<E>,
    }
    if let Ok(es) = serde_json::from_str::<Es>(body) {
        if let Some(e) = es.errors.first() {
            return anyhow!(
                "{what}: {} ({}, HTTP {status})",
                e.message.as_deref().unwrap_or("error"),
                e.code.as_deref().unwrap_or("?")
            );
        }
    }
    anyhow!("{what}: HTTP {status}")
}

/// One line for a network failure: ureq's own Display repeats the URL and
/// the cause, so build the message from its parts.
pub(super) fn transport_error(what: &str, e: ureq::Error) -> anyhow::Error {
    match e {
        ureq::Error::Transport(t) => {
            let mut msg = format!("{what}: {}", t.kind());
            if let Some(m) = t.message() {
                msg.push_str(": ");
                msg.push_str(m);
            }
            if let Some(src) = std::error::Error::source(&t) {
                let src = src.to_string();
                if !msg.contains(&src) {
                    msg.push_str(": ");
                    msg.push_str(&src);
                }
            }
            if msg.contains("tls") || msg.contains("InvalidContentType") {
                msg.push_str(
                    " (a plain-HTTP registry? use --tls-verify=false or BERTH_INSECURE_REGISTRIES)",
                );
            }
            anyhow!(msg)
        }
        ureq::Error::Status(code, _) => anyhow!("{what}: HTTP {code}"),
    }
}

impl Client {
    pub fn new(
        root: &Path,
        r: &Reference,
        insecure: bool,
        creds: Option<Credentials>,
        scopes: Vec<String>,
    ) -> Result<Client> {
        let creds = match creds {
            Some(c) => Some(c),
            None => auth::lookup(root, &r.domain)?,
        };
        // The read and write timeouts are per socket operation: an idle
        // timeout, so big layers on slow links still finish.
        let idle = limits::idle_timeout()?;
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(limits::CONNECT)
            .timeout_read(idle)
            .timeout_write(idle)
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")))
            .build();
        let scheme = if insecure { "http" } else { "https" };
        Ok(Client {
            agent,
            base: format!("{scheme}://{}", r.registry_host()),
            domain: r.domain.clone(),
            creds,
            scopes,
            authz: Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> String {
        if path.starts_with("http://") || path.starts_with("https://") {
            path.to_string()
        } else {
            format!("{}{}", self.base, path)
        }
    }

    /// Sends a request, authenticating and retrying once on 401. Returns
    /// the response for any status; callers decide which are errors.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &Body,
    ) -> Result<ureq::Response> {
        let url = self.url(path);
        // Blob bodies are bounded by their descriptor and the idle timeout;
        // everything else is small and gets a deadline for the whole request.
        let blob_body =
            matches!(body, Body::File(..)) || (method == "GET" && path.contains("/blobs/"));
        let small = !blob_body;
        let mut tried_auth = false;
        loop {
            let mut req = self.agent.request(method, &url);
            if small {
                req = req.timeout(limits::SMALL_REQUEST);
            }
            for (k, v) in headers {
                req = req.set(k, v);
            }
            if let Some(a) = self.authz.lock().ok().and_then(|g| g.clone()) {
                req = req.set("Authorization", &a);
            }
            let res = match body {
                Body::Empty => req.call(),
                Body::Bytes(b) => req.send_bytes(b),
                Body::File(p, size, task) => {
                    let f = std::fs::File::open(p)
                        .with_context(|| format!("opening {}", p.display()))?;
                    let req = req.set("Content-Length", &size.to_string());
                    match task {
                        Some(task) => req.send(ProgressReader { inner: f, task }),
                        None => req.send(f),
                    }
                }
            };
            let resp = match res {
                Ok(r) => r,
                Err(ureq::Error::Status(_, r)) => r,
                Err(e) => return Err(transport_error(&format!("{method} {url}"), e)),
            };
            if resp.status() == 401 && !tried_auth {
                tried_auth = true;
                let ch = resp.header("WWW-Authenticate").map(str::to_string);
                self.authenticate(ch.as_deref())?;
                continue;
            }
            return Ok(resp);
        }
    }

    /// GET /v2/: checks the registry speaks the API and our credentials work.
    pub fn ping(&self) -> Result<()> {
        let r = self.send("GET", "/v2/", &[], &Body::Empty)?;
        match r.status() {
            200 => Ok(()),
            401 | 403 => bail!("{}: unauthorized: invalid username/password", self.domain),
            s => Err(registry_error(
                &format!("{}: /v2/ ping", self.domain),
                s,
                &error_body(r),
            )),
        }
    }

    /// Returns (media type, raw bytes, digest) of a manifest.
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
        shown: &str,
    ) -> Result<(String, Vec<u8>, Digest)> {
        let r = self.send(
            "GET",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Accept", MANIFEST_ACCEPT)],
            &Body::Empty,
        )?;
        if r.status() != 200 {
            let s = r.status();
            let body = error_body(r);
            if s == 404 {
                bail!("manifest for {shown} not found: manifest unknown");
            }
            return Err(registry_error(
                &format!("fetching manifest for {shown}"),
                s,
                &body,
            ));
        }
        let ct = r
            .header("Content-Type")
            .map(|c| c.split(';').next().unwrap_or("").trim().to_string());
        let body = read_bounded(r, limits::MAX_MANIFEST, &format!("manifest for {shown}"))?;
        let digest = Digest::of(&body);
        let mt = match ct {
            Some(c) if is_index(&c) || is_manifest(&c) => c,
            _ => sniff_media_type(&body)
                .ok_or_else(|| anyhow!("manifest for {shown}: unknown media type"))?,
        };
        Ok((mt, body, digest))
    }

    /// The body of blob `d`, which its descriptor says is `size` bytes. The
    /// reader stops one byte past `size`, so a registry that sends more
    /// can't fill the disk; the store's size check then refuses the blob.
    pub fn get_blob(&self, repo: &str, d: &Digest, size: u64) -> Result<impl Read + Send> {
        let r = self.send("GET", &format!("/v2/{repo}/blobs/{d}"), &[], &Body::Empty)?;
        if r.status() != 200 {
            let s = r.status();
            return Err(registry_error(
                &format!("fetching blob {d}"),
                s,
                &error_body(r),
            ));
        }
        limits::check_declared(&r, size, &format!("blob {d} (descriptor size {size})"))?;
        Ok(IdleReader(r.into_reader().take(size.saturating_add(1))))
    }

    pub fn blob_exists(&self, repo: &str, d: &Digest) -> Result<bool> {
        let r = self.send("HEAD", &format!("/v2/{repo}/blobs/{d}"), &[], &Body::Empty)?;
        Ok(r.status() == 200)
    }

    /// Tries a cross-repo mount; Ok(true) if the registry mounted it.
    pub fn mount_blob(&self, repo: &str, d: &Digest, from: &str) -> Result<bool> {
        let r = self.send(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?mount={d}&from={from}"),
            &[("Content-Length", "0")],
            &Body::Empty,
        )?;
        Ok(r.status() == 201)
    }

    /// Monolithic upload: POST to open a session, PUT the whole blob.
    pub fn upload_blob(
        &self,
        repo: &str,
        d: &Digest,
        path: &Path,
        size: u64,
        task: Option<&crate::image::progress::Task>,
    ) -> Result<()> {
        let r = self.send(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/"),
            &[("Content-Length", "0")],
            &Body::Empty,
        )?;
        if r.status() != 202 {
            let s = r.status();
            return Err(registry_error(
                &format!("starting upload of {d}"),
                s,
                &error_body(r),
            ));
        }
        let loc = r
            .header("Location")
            .ok_or_else(|| anyhow!("upload of {d}: registry sent no Location"))?
            .to_string();
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put = format!("{loc}{sep}digest={d}");
        let r = self.send(
            "PUT",
            &put,
            &[("Content-Type", "application/octet-stream")],
            &Body::File(path, size, task),
        )?;
        if r.status() != 201 {
            let s = r.status();
            return Err(registry_error(&format!("uploading {d}"), s, &error_body(r)));
        }
        Ok(())
    }

    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> Result<()> {
        let r = self.send(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media_type)],
            &Body::Bytes(body),
        )?;
        if r.status() != 201 && r.status() != 200 {
            let s = r.status();
            return Err(registry_error(
                &format!("pushing manifest {repo}:{reference}"),
                s,
                &error_body(r),
            ));
        }
        Ok(())
    }
}

pub(super) fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
