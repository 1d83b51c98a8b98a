//! `images` / `image ls` (filters, `--format`, one size per image id) and
//! `image import`'s arguments.

use anyhow::Result;
use clap::Args;
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;

use hull::engine::images::{self as ops, ImageFilter, ImageRow};
use hull::image::digest::Digest;

use crate::format::{self, human_ago, human_size};

#[derive(Args)]
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show all images (berth keeps no intermediate images: the same list)
    #[arg(short, long)]
    pub all: bool,
    /// Show manifest digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate IDs
    #[arg(long)]
    pub no_trunc: bool,
    /// dangling=true|false, label=KEY[=VALUE], reference=PATTERN, before=IMAGE, since=IMAGE
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Go template (`table ...`, `json`): .Repository .Tag .Digest .ID .CreatedSince
    /// .CreatedAt .Size .Labels
    #[arg(long)]
    pub format: Option<String>,
    /// Only images of this repository
    pub repository: Option<String>,
}

pub fn id_str(d: &Digest, no_trunc: bool) -> String {
    if no_trunc {
        d.to_string()
    } else {
        d.short().to_string()
    }
}

const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
];

fn fields(r: &ImageRow, no_trunc: bool) -> serde_json::Value {
    let (repo, tag) = match &r.name {
        Some(n) => (
            n.familiar_name(),
            n.tag.clone().unwrap_or_else(|| "<none>".into()),
        ),
        None => ("<none>".into(), "<none>".into()),
    };
    let created_at = r
        .created
        .as_deref()
        .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%d %H:%M:%S +0000 UTC")
                .to_string()
        })
        .unwrap_or_default();
    let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    json!({
        "Repository": repo,
        "Tag": tag,
        "Digest": r.digest.to_string(),
        "ID": id_str(&r.id, no_trunc),
        "CreatedSince": human_ago(r.created.as_deref()),
        "CreatedAt": created_at,
        "Size": human_size(r.size),
        "VirtualSize": human_size(r.size),
        "SharedSize": "N/A",
        "UniqueSize": "N/A",
        "Containers": "N/A",
        "Labels": labels.join(","),
        "Label": r.labels,
    })
}

pub fn images(root: &Path, a: ImagesArgs) -> Result<()> {
    let filters = a
        .filter
        .iter()
        .map(|f| ImageFilter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let all = ops::list(root, a.repository.as_deref(), &filters)?;
    if a.quiet {
        let mut seen = BTreeSet::new();
        for r in &all {
            if seen.insert(r.id.clone()) {
                println!("{}", id_str(&r.id, a.no_trunc));
            }
        }
        return Ok(());
    }
    let items: Vec<_> = all.iter().map(|r| fields(r, a.no_trunc)).collect();
    let fmt = match a.format.as_deref().filter(|f| *f != "table") {
        Some(f) => f.to_string(),
        None => {
            let digest = if a.digests { "\t{{.Digest}}" } else { "" };
            format!("table {{{{.Repository}}}}\t{{{{.Tag}}}}{digest}\t{{{{.ID}}}}\t{{{{.CreatedSince}}}}\t{{{{.Size}}}}")
        }
    };
    format::print_list(&fmt, &items, HEADERS)
}
