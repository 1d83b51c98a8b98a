//! Registry authentication: parsing a WWW-Authenticate challenge and
//! fetching a bearer token (or switching to basic auth).

use anyhow::{anyhow, bail, Context, Result};
use std::collections::BTreeSet;

use super::client::{registry_error, transport_error, urlencode, Client};
use super::limits;

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

impl Client {
    /// Acts on a 401 challenge: fetches a bearer token or switches to basic.
    pub(super) fn authenticate(&self, challenge: Option<&str>) -> Result<()> {
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
                let mut req = self.agent.get(&url).timeout(limits::SMALL_REQUEST);
                if let Some(c) = &self.creds {
                    req = req.set("Authorization", &c.basic_header());
                }
                let resp = match req.call() {
                    Ok(r) => r,
                    Err(ureq::Error::Status(code, r)) => {
                        let body = limits::error_body(r);
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
                let raw =
                    limits::read_bounded(resp, limits::MAX_TOKEN, &format!("token from {realm}"))?;
                let v: serde_json::Value = serde_json::from_slice(&raw)
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::auth::Credentials;
    use crate::image::reference::Reference;

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
