//! A blocking client for the OCI distribution API: ping, anonymous /
//! bearer-token / basic auth, manifests, blobs, pull and push.
//!
//! Plain HTTP is used only for registries marked insecure (`--tls-verify=false`,
//! `BERTH_INSECURE_REGISTRIES=host:port,…` or one host per line in
//! `<root>/registries.conf`); everything else is HTTPS.

mod client;
pub mod limits;
mod pull;
mod push;
mod token;

use std::path::Path;

pub use client::{Body, Client};
pub use pull::{pull, PullOptions};
pub use push::{login_check, push, PushOptions};

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
