//! A blocking client for the OCI distribution API: ping, anonymous /
//! bearer-token / basic auth, manifests, blobs, pull and push.
//!
//! Plain HTTP is used only for registries marked insecure (`--tls-verify=false`,
//! `BERTH_INSECURE_REGISTRIES=host:port,…` or one host per line in
//! `<root>/registries.conf`); everything else is HTTPS.

use anyhow::{anyhow, bail, Context, Result};
use std::collections::{BTreeSet, VecDeque};
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use super::auth::{self, Credentials};
use super::digest::Digest;
use super::progress::{Progress, ProgressReader};
use super::reference::Reference;
use super::store::{Image, Store, Txn};
use super::types::*;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";

/// Whether `domain` should be reached over plain HTTP.
pub fn is_insecure(root: &Path, domain: &str, flag_tls_verify: Option<bool>) -> bool {
    if flag_tls_verify == Some(false) {
        return true;
    }
    if flag_tls_verify == Some(true) {
        return false;
    }
    let listed = |s: &str| {
        s.split([',', '\n', ' '])
            .map(str::trim)
            .any(|h| !h.is_empty() && !h.starts_with('#') && h == domain)
    };
    if std::env::var("BERTH_INSECURE_REGISTRIES").is_ok_and(|v| listed(&v)) {
        return true;
    }
    std::fs::read_to_string(root.join("registries.conf")).is_ok_and(|s| listed(&s))
}

#[derive(Debug, Clone)]
struct Challenge {
    scheme: String,
    params: Vec<(String, String)>,
}

/// Parses `Bearer realm="…",service="…",scope="…"`.
fn parse_challenge(h: &str) -> Option<Challenge> {
    let h = h.trim();
    let (scheme, rest) = h.split_once(' ').unwrap_or((h, ""));
    let mut params = Vec::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (k, after) = s.split_once('=')?;
        let after = after.trim_start();
        let (v, remaining) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"')?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.push((k.trim().to_ascii_lowercase(), v));
        s = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    File(&'a Path, u64, Option<&'a super::progress::Task>),
}

pub struct Client {
    agent: ureq::Agent,
    base: String,
    domain: String,
    creds: Option<Credentials>,
    scopes: Vec<String>,
    authz: Mutex<Option<String>>,
}

fn registry_error(what: &str, status: u16, body: &str) -> anyhow::Error {
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
fn transport_error(what: &str, e: ureq::Error) -> anyhow::Error {
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
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(30))
            .timeout_read(Duration::from_secs(300))
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

    /// Acts on a 401 challenge: fetches a bearer token or switches to basic.
    fn authenticate(&self, challenge: Option<&str>) -> Result<()> {
        let Some(ch) = challenge.and_then(parse_challenge) else {
            bail!(
                "{}: authentication required but no usable WWW-Authenticate challenge",
                self.domain
            );
        };
        let header = match ch.scheme.as_str() {
            "basic" => match &self.creds {
                Some(c) => c.basic_header(),
                None => bail!(
                    "{}: authentication required (run `berth login {}`)",
                    self.domain,
                    self.domain
                ),
            },
            "bearer" => {
                let get = |k: &str| {
                    ch.params
                        .iter()
                        .find(|(pk, _)| pk == k)
                        .map(|(_, v)| v.clone())
                };
                let realm = get("realm")
                    .ok_or_else(|| anyhow!("{}: bearer challenge without realm", self.domain))?;
                let mut url = realm.clone();
                let mut q = Vec::new();
                if let Some(svc) = get("service") {
                    q.push(format!("service={}", urlencode(&svc)));
                }
                let mut scopes: BTreeSet<String> = self.scopes.iter().cloned().collect();
                if let Some(s) = get("scope") {
                    scopes.insert(s);
                }
                for s in scopes {
                    q.push(format!("scope={}", urlencode(&s)));
                }
                if !q.is_empty() {
                    url.push(if url.contains('?') { '&' } else { '?' });
                    url.push_str(&q.join("&"));
                }
                let mut req = self.agent.get(&url);
                if let Some(c) = &self.creds {
                    req = req.set("Authorization", &c.basic_header());
                }
                let resp = match req.call() {
                    Ok(r) => r,
                    Err(ureq::Error::Status(code, r)) => {
                        let body = r.into_string().unwrap_or_default();
                        if code == 401 || code == 403 {
                            bail!(
                                "{}: token request denied: invalid username/password?",
                                self.domain
                            );
                        }
                        return Err(registry_error(&format!("token from {realm}"), code, &body));
                    }
                    Err(e) => {
                        return Err(transport_error(&format!("fetching token from {realm}"), e))
                    }
                };
                let v: serde_json::Value = serde_json::from_reader(resp.into_reader())
                    .with_context(|| format!("parsing token response from {realm}"))?;
                let tok = v
                    .get("token")
                    .or_else(|| v.get("access_token"))
                    .and_then(|t| t.as_str())
                    .ok_or_else(|| anyhow!("token response from {realm} has no token"))?;
                format!("Bearer {tok}")
            }
            other => bail!("{}: unsupported auth scheme {other:?}", self.domain),
        };
        if let Ok(mut g) = self.authz.lock() {
            *g = Some(header);
        }
        Ok(())
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
        let mut tried_auth = false;
        loop {
            let mut req = self.agent.request(method, &url);
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
                &r.into_string().unwrap_or_default(),
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
            let body = r.into_string().unwrap_or_default();
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
        let mut body = Vec::new();
        r.into_reader()
            .take(32 << 20)
            .read_to_end(&mut body)
            .with_context(|| format!("reading manifest for {shown}"))?;
        let digest = Digest::of(&body);
        let mt = match ct {
            Some(c) if is_index(&c) || is_manifest(&c) => c,
            _ => sniff_media_type(&body)
                .ok_or_else(|| anyhow!("manifest for {shown}: unknown media type"))?,
        };
        Ok((mt, body, digest))
    }

    pub fn get_blob(&self, repo: &str, d: &Digest) -> Result<ureq::Response> {
        let r = self.send("GET", &format!("/v2/{repo}/blobs/{d}"), &[], &Body::Empty)?;
        if r.status() != 200 {
            let s = r.status();
            return Err(registry_error(
                &format!("fetching blob {d}"),
                s,
                &r.into_string().unwrap_or_default(),
            ));
        }
        Ok(r)
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
        task: Option<&super::progress::Task>,
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
                &r.into_string().unwrap_or_default(),
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
            return Err(registry_error(
                &format!("uploading {d}"),
                s,
                &r.into_string().unwrap_or_default(),
            ));
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
                &r.into_string().unwrap_or_default(),
            ));
        }
        Ok(())
    }
}

fn urlencode(s: &str) -> String {
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

pub struct PullOptions {
    pub platform: Platform,
    pub insecure: bool,
    pub quiet: bool,
    pub jobs: usize,
}

fn short(d: &Digest) -> String {
    d.short().to_string()
}

/// Pulls `r` into the store and unpacks its layers. Returns the image.
pub fn pull(store: &Store, r: &Reference, opts: &PullOptions) -> Result<Image> {
    let _lock = store.lock_shared()?;
    let shown = r.to_string();
    let client = Client::new(
        store.root(),
        r,
        opts.insecure,
        None,
        vec![format!("repository:{}:pull", r.repo)],
    )?;
    let progress = Progress::new(opts.quiet);
    let txn = Txn::new(store);
    if let Some(t) = &r.tag {
        progress.println(&format!("{t}: Pulling from {}", r.repo));
    } else {
        progress.println(&format!("Pulling {shown}"));
    }
    let (mut mt, mut body, top_digest) = client.get_manifest(&r.repo, &r.manifest_ref(), &shown)?;
    if let Some(want) = &r.digest {
        if &top_digest != want {
            bail!("manifest for {shown}: registry sent content with digest {top_digest}");
        }
    }
    let mut digest = top_digest.clone();
    if is_index(&mt) {
        let idx: Index =
            serde_json::from_slice(&body).with_context(|| format!("parsing index for {shown}"))?;
        let chosen = idx
            .manifests
            .iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.matches(&opts.platform))
            })
            .ok_or_else(|| {
                let avail: Vec<String> = idx
                    .manifests
                    .iter()
                    .filter_map(|m| m.platform.as_ref())
                    .map(|p| format!("{}/{}", p.os, p.architecture))
                    .collect();
                anyhow!(
                    "{shown}: no image for platform {}/{} (available: {})",
                    opts.platform.os,
                    opts.platform.architecture,
                    avail.join(", ")
                )
            })?;
        let (m2, b2, d2) = client.get_manifest(&r.repo, &chosen.digest.to_string(), &shown)?;
        if d2 != chosen.digest {
            bail!(
                "manifest {} for {shown}: registry sent content with digest {d2}",
                chosen.digest
            );
        }
        (mt, body, digest) = (m2, b2, d2);
    }
    if !is_manifest(&mt) {
        bail!("{shown}: unsupported manifest media type {mt:?}");
    }
    let manifest: Manifest = serde_json::from_slice(&body)
        .with_context(|| format!("parsing manifest {digest} for {shown}"))?;

    // Config first: its diff_ids name the snapshots.
    let cfg_d = &manifest.config.digest;
    if !store.has_blob(cfg_d) {
        let resp = client.get_blob(&r.repo, cfg_d)?;
        txn.ingest(resp.into_reader(), Some(cfg_d), Some(manifest.config.size))
            .with_context(|| format!("pulling config of {shown}"))?;
    }
    let config_raw = store.read_blob(cfg_d)?;
    let config: ImageConfig = serde_json::from_slice(&config_raw)
        .with_context(|| format!("parsing image config {cfg_d}"))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        bail!(
            "{shown}: manifest has {} layers but config {cfg_d} lists {} diff_ids",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        );
    }
    let chains = chain_ids(&config.rootfs.diff_ids);

    let queue: Mutex<VecDeque<usize>> = Mutex::new((0..manifest.layers.len()).collect());
    let errors: Mutex<Vec<anyhow::Error>> = Mutex::new(Vec::new());
    let workers = opts.jobs.max(1).min(manifest.layers.len().max(1));
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let Some(i) = queue.lock().ok().and_then(|mut q| q.pop_front()) else {
                    return;
                };
                if errors.lock().map(|e| !e.is_empty()).unwrap_or(true) {
                    return;
                }
                let l = &manifest.layers[i];
                let res = (|| -> Result<()> {
                    let snap = store.snapshot_dir(&chains[i]);
                    if store.has_blob(&l.digest) && snap.is_dir() {
                        progress.task(&short(&l.digest), l.size, "Already exists");
                        return Ok(());
                    }
                    let task = progress.task(&short(&l.digest), l.size, "Pulling fs layer");
                    if !store.has_blob(&l.digest) {
                        task.set("Downloading");
                        let resp = client
                            .get_blob(&r.repo, &l.digest)
                            .inspect_err(|_| task.fail("Failed"))?;
                        let reader = ProgressReader {
                            inner: resp.into_reader(),
                            task: &task,
                        };
                        txn.ingest(reader, Some(&l.digest), Some(l.size))
                            .inspect_err(|_| task.fail("Failed"))?;
                        task.set("Download complete");
                    }
                    task.set("Extracting");
                    txn.unpack_snapshot(&l.digest, &config.rootfs.diff_ids[i], &chains[i])
                        .inspect_err(|_| task.fail("Failed"))?;
                    task.done("Pull complete");
                    Ok(())
                })();
                if let Err(e) = res {
                    if let Ok(mut v) = errors.lock() {
                        v.push(e);
                    }
                }
            });
        }
    });
    if let Some(e) = errors
        .into_inner()
        .ok()
        .and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)))
    {
        return Err(e.context(format!("pulling {shown}")));
    }

    // Only now, with every blob and snapshot complete, does the image get a name.
    let stored = txn.write_blob(&body)?;
    if stored != digest {
        bail!("internal: manifest digest changed while storing");
    }
    let desc = Descriptor {
        media_type: mt,
        digest: digest.clone(),
        size: body.len() as u64,
        platform: None,
        annotations: Default::default(),
    };
    store.set_ref(Some(r), &desc)?;
    txn.commit();
    progress.println(&format!("Digest: {top_digest}"));
    progress.println(&format!("Status: Downloaded image for {shown}"));
    store.load_image(&desc)
}

pub struct PushOptions {
    pub insecure: bool,
    pub quiet: bool,
}

/// Pushes local image `img` to `dest`. Blobs the registry already has are
/// skipped; blobs that a sibling repository on the same registry has are
/// mounted instead of uploaded.
pub fn push(store: &Store, img: &Image, dest: &Reference, opts: &PushOptions) -> Result<Digest> {
    let _lock = store.lock_shared()?;
    // Repositories on the same registry that hold this image's blobs.
    let mut mount_from: Vec<(String, BTreeSet<Digest>)> = Vec::new();
    for (e, other) in store.images()? {
        if let Some(n) = e.name {
            if n.domain == dest.domain && n.repo != dest.repo {
                let blobs: BTreeSet<Digest> = other
                    .manifest
                    .layers
                    .iter()
                    .map(|l| l.digest.clone())
                    .collect();
                mount_from.push((n.repo.clone(), blobs));
            }
        }
    }
    let mut scopes = vec![format!("repository:{}:pull,push", dest.repo)];
    for (repo, _) in &mount_from {
        scopes.push(format!("repository:{repo}:pull"));
    }
    let client = Client::new(store.root(), dest, opts.insecure, None, scopes)?;
    client.ping()?;
    let progress = Progress::new(opts.quiet);
    progress.println(&format!(
        "The push refers to repository [{}]",
        dest.full_name()
    ));
    let mut blobs: Vec<&Descriptor> = img.manifest.layers.iter().collect();
    blobs.push(&img.manifest.config);
    for b in blobs {
        let task = progress.task(&short(&b.digest), b.size, "Preparing");
        if client.blob_exists(&dest.repo, &b.digest)? {
            task.done("Layer already exists");
            continue;
        }
        let from = mount_from.iter().find(|(_, set)| set.contains(&b.digest));
        if let Some((repo, _)) = from {
            if client.mount_blob(&dest.repo, &b.digest, repo)? {
                task.done(&format!("Mounted from {repo}"));
                continue;
            }
        }
        task.set("Pushing");
        let path = store.blob_path(&b.digest);
        client
            .upload_blob(&dest.repo, &b.digest, &path, b.size, Some(&task))
            .inspect_err(|_| task.fail("Failed"))?;
        task.done("Pushed");
    }
    let raw = store.read_blob(&img.manifest_desc.digest)?;
    let tag = dest.manifest_ref();
    client.put_manifest(&dest.repo, &tag, &img.manifest_desc.media_type, &raw)?;
    let d = Digest::of(&raw);
    progress.println(&format!("{tag}: digest: {d} size: {}", raw.len()));
    Ok(d)
}

/// Checks credentials against a registry (used by `berth login`).
pub fn login_check(root: &Path, domain: &str, insecure: bool, creds: &Credentials) -> Result<()> {
    let r = Reference {
        domain: domain.to_string(),
        repo: "library/x".into(),
        tag: None,
        digest: None,
    };
    let c = Client::new(root, &r, insecure, Some(creds.clone()), vec![])?;
    c.ping()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    type RequestLog = Arc<Mutex<Vec<(String, String)>>>;

    /// A tiny HTTP/1.1 server that demands a bearer token the way Docker
    /// Hub does, and records (path, Authorization) of every request.
    fn token_server(user_pass: Option<&'static str>) -> (String, RequestLog) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (log2, addr2) = (log.clone(), addr.clone());
        std::thread::spawn(move || {
            for conn in l.incoming().take(8) {
                let Ok(mut c) = conn else { return };
                let mut r = BufReader::new(c.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut authz = String::new();
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = h
                            .strip_prefix("Authorization: ")
                            .or_else(|| h.strip_prefix("authorization: "))
                        {
                            authz = v.trim().to_string();
                        }
                    }
                    log2.lock().unwrap().push((path.clone(), authz.clone()));
                    let expected_basic = user_pass.map(|up| {
                        use base64::Engine;
                        format!(
                            "Basic {}",
                            base64::engine::general_purpose::STANDARD.encode(up)
                        )
                    });
                    let (status, extra, body) = if path.starts_with("/token") {
                        if expected_basic.is_some_and(|b| b != authz) {
                            ("401 Unauthorized", String::new(), "{}".to_string())
                        } else {
                            ("200 OK", String::new(), r#"{"token":"T1"}"#.to_string())
                        }
                    } else if authz == "Bearer T1" {
                        ("200 OK", String::new(), "{}".to_string())
                    } else {
                        (
                            "401 Unauthorized",
                            format!(
                                "WWW-Authenticate: Bearer realm=\"http://{addr2}/token\",service=\"svc\",scope=\"repository:a/b:pull\"\r\n"
                            ),
                            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_string(),
                        )
                    };
                    let resp = format!(
                        "HTTP/1.1 {status}\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if c.write_all(resp.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        (addr, log)
    }

    fn client_for(addr: &str, creds: Option<Credentials>) -> Client {
        let r = Reference::parse(&format!("{addr}/a/b:1")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        Client::new(
            dir.path(),
            &r,
            true,
            creds,
            vec!["repository:a/b:pull".into()],
        )
        .unwrap()
    }

    #[test]
    fn bearer_token_anonymous() {
        let (addr, log) = token_server(None);
        client_for(&addr, None).ping().unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log[0], ("/v2/".to_string(), String::new()));
        assert_eq!(
            log[1].0,
            "/token?service=svc&scope=repository%3Aa%2Fb%3Apull"
        );
        assert_eq!(
            log[1].1, "",
            "anonymous token request must not send credentials"
        );
        assert_eq!(log[2], ("/v2/".to_string(), "Bearer T1".to_string()));
    }

    #[test]
    fn bearer_token_with_credentials() {
        let (addr, log) = token_server(Some("bob:pw"));
        let good = Credentials {
            username: "bob".into(),
            password: "pw".into(),
        };
        client_for(&addr, Some(good.clone())).ping().unwrap();
        assert_eq!(log.lock().unwrap()[1].1, good.basic_header());
        let bad = Credentials {
            username: "bob".into(),
            password: "nope".into(),
        };
        let e = client_for(&addr, Some(bad)).ping().unwrap_err();
        assert!(
            format!("{e:#}").contains("invalid username/password"),
            "{e:#}"
        );
    }

    #[test]
    fn challenge_parsing() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(
            c.params[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(c.params[2].1, "repository:library/busybox:pull");
        let c = parse_challenge(r#"Basic realm="Registry Realm""#).unwrap();
        assert_eq!(c.scheme, "basic");
    }
}
