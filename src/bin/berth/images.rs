//! Image commands: pull, push, images, rmi, tag, history, load, save,
//! import, login/logout, image inspect/prune. The work is in
//! `hull::engine::images` and `hull::image`; this file parses and prints.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use hull::engine::events;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use hull::engine::images as ops;
use hull::image::archive::{self, Format};
use hull::image::auth::{self, Credentials};
use hull::image::reference::Reference;
use hull::image::registry::{self, PullOptions, PushOptions};
use hull::image::sizelimit::SizeLimit;
use hull::image::store::Store;
use hull::image::types::Platform;

use crate::format::{human_ago, human_size};
pub use crate::image_list::{id_str, images, ImagesArgs};

#[derive(Args, Clone)]
pub struct TlsArgs {
    /// Require HTTPS with verified certificates (false: plain HTTP).
    #[arg(long = "tls-verify", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: Option<bool>,
}

#[derive(Subcommand)]
pub enum ImageCmd {
    /// Display detailed information on one or more images
    Inspect(crate::query::InspectArgs),
    /// Remove unused images
    Prune {
        /// Remove all images not used by a container, not just dangling ones
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation
        #[arg(short, long)]
        force: bool,
    },
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Remove one or more images
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Create an image from a root filesystem tarball
    Import(crate::build::ImportArgs),
    Pull(PullArgs),
    Push(PushArgs),
    History(HistoryArgs),
    Load(LoadArgs),
    Save(SaveArgs),
    Tag {
        source: String,
        target: String,
    },
    /// Build an image from a Dockerfile
    Build(crate::build::BuildArgs),
}

#[derive(Args)]
pub struct PullArgs {
    pub image: String,
    /// OS/ARCH[/VARIANT] to select from a multi-platform image
    #[arg(long, default_value = "linux/amd64")]
    pub platform: String,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Print only the image name
    #[arg(short, long)]
    pub quiet: bool,
    /// Parallel layer downloads
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
}

#[derive(Args)]
pub struct PushArgs {
    pub image: String,
    /// Push to this reference instead of the image's own name
    pub destination: Option<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct RmiArgs {
    /// Remove even if tagged in several repositories or in use
    #[arg(short, long)]
    pub force: bool,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct HistoryArgs {
    pub image: String,
    #[arg(long)]
    pub no_trunc: bool,
    #[arg(short, long)]
    pub quiet: bool,
    /// Show sizes in bytes and dates in RFC 3339 (default true; --human=false)
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub human: bool,
    /// Go template (`table ...`, `json`): .ID .CreatedSince .CreatedAt .CreatedBy .Size .Comment
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(Args)]
pub struct LoadArgs {
    /// Read from this file instead of stdin
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    #[arg(short, long)]
    pub quiet: bool,
    /// Refuse an archive that unpacks to more than this (e.g. 8g; default 32g or $BERTH_MAX_SIZE)
    #[arg(long)]
    pub max_size: Option<String>,
}

#[derive(Args)]
pub struct SaveArgs {
    /// Write to this file instead of stdout
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// docker-archive or oci-archive
    #[arg(long, default_value = "docker-archive")]
    pub format: String,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args)]
pub struct LoginArgs {
    pub server: Option<String>,
    #[arg(short, long)]
    pub username: Option<String>,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// Runs an image command.
pub fn dispatch(root: &Path, cmd: ImageCmd) -> Result<()> {
    match cmd {
        ImageCmd::Pull(a) => pull(root, a),
        ImageCmd::Push(a) => push(root, a),
        ImageCmd::Ls(a) => images(root, a),
        ImageCmd::Rm(a) => rmi(root, a),
        ImageCmd::Tag { source, target } => Ok(ops::tag(root, &source, &target)?),
        ImageCmd::History(a) => history(root, a),
        ImageCmd::Load(a) => load(root, a),
        ImageCmd::Save(a) => save(root, a),
        ImageCmd::Inspect(a) => crate::query::inspect(root, a.of("image")).map(|_| ()),
        ImageCmd::Prune { all, force } => prune(root, all, force),
        ImageCmd::Import(a) => crate::build::import(root, a),
        ImageCmd::Build(a) => crate::build::build(root, a),
    }
}

pub fn pull(root: &Path, a: PullArgs) -> Result<()> {
    let r = Reference::parse(&a.image)?;
    let platform = Platform::parse(&a.platform)?;
    let store = Store::open(root)?;
    let opts = PullOptions {
        platform,
        insecure: registry::is_insecure(root, &r.domain, a.tls.tls_verify),
        quiet: a.quiet,
        jobs: a.jobs,
    };
    registry::pull(&store, &r, &opts)?;
    events::object(
        root,
        "image",
        "pull",
        &r.to_string(),
        &[("name", &r.to_string())],
    );
    println!("{r}");
    Ok(())
}

pub fn push(root: &Path, a: PushArgs) -> Result<()> {
    let store = Store::open(root)?;
    let (dest, img) = ops::push_target(&store, &a.image, a.destination.as_deref())?;
    let opts = PushOptions {
        insecure: registry::is_insecure(root, &dest.domain, a.tls.tls_verify),
        quiet: a.quiet,
    };
    registry::push(&store, &img, &dest, &opts)?;
    Ok(())
}

pub fn rmi(root: &Path, a: RmiArgs) -> Result<()> {
    for (what, text) in ops::remove(root, &a.images, a.force)? {
        println!("{what}: {text}");
    }
    Ok(())
}

pub fn history(root: &Path, a: HistoryArgs) -> Result<()> {
    let (id, rows) = ops::history(root, &a.image)?;
    if a.quiet {
        println!("{}", id_str(&id, a.no_trunc));
        return Ok(());
    }
    let items: Vec<_> = rows
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            let by = if !a.no_trunc && r.created_by.chars().count() > 45 {
                format!("{}…", r.created_by.chars().take(44).collect::<String>())
            } else {
                r.created_by
            };
            serde_json::json!({
                "ID": if i == 0 { id_str(&id, a.no_trunc) } else { "<missing>".into() },
                "CreatedSince": if a.human { human_ago(r.created.as_deref()) } else { r.created.clone().unwrap_or_default() },
                "CreatedAt": r.created.clone().unwrap_or_default(),
                "CreatedBy": by,
                "Size": if a.human { human_size(r.size) } else { r.size.to_string() },
                "Comment": r.comment,
            })
        })
        .collect();
    let fmt = a
        .format
        .as_deref()
        .filter(|f| *f != "table")
        .unwrap_or("table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}");
    crate::format::print_list(
        fmt,
        &items,
        &[
            ("ID", "IMAGE"),
            ("CreatedSince", "CREATED"),
            ("CreatedBy", "CREATED BY"),
        ],
    )
}

pub fn load(root: &Path, a: LoadArgs) -> Result<()> {
    let limit = SizeLimit::from_flag_or_env(a.max_size.as_deref())?;
    let store = Store::open(root)?;
    let lines = match &a.input {
        Some(p) => {
            let f = std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            archive::load(&store, f, &p.display().to_string(), &limit)?
        }
        None => {
            if std::io::stdin().is_terminal() {
                bail!("requested load from stdin, but stdin is a terminal (use -i FILE)");
            }
            archive::load(&store, std::io::stdin().lock(), "stdin", &limit)?
        }
    };
    for l in lines {
        let what = l.rsplit(": ").next().unwrap_or(&l);
        events::object(root, "image", "load", what, &[]);
        println!("{l}");
    }
    Ok(())
}

pub fn save(root: &Path, a: SaveArgs) -> Result<()> {
    let format = match a.format.as_str() {
        "docker-archive" | "docker" => Format::Docker,
        "oci-archive" | "oci" => Format::Oci,
        f => bail!("unknown --format {f:?} (docker-archive or oci-archive)"),
    };
    let store = Store::open(root)?;
    let mut imgs = Vec::new();
    for n in &a.images {
        imgs.push(store.lookup(n)?);
        events::object(root, "image", "save", n, &[("name", n)]);
    }
    match &a.output {
        Some(p) => Ok(ops::save_to_file(&store, &imgs, format, p)?),
        None => {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write an archive to a terminal (use -o FILE)");
            }
            archive::save(&store, &imgs, format, std::io::stdout().lock())
        }
    }
}

pub fn login(root: &Path, a: LoginArgs) -> Result<()> {
    let domain = ops::server_domain(a.server.as_deref());
    let username = a
        .username
        .clone()
        .ok_or_else(|| anyhow!("login to {domain}: --username is required"))?;
    let password = if a.password_stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading password from stdin")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        a.password.clone().ok_or_else(|| {
            anyhow!("login to {domain}: --password or --password-stdin is required")
        })?
    };
    let creds = Credentials { username, password };
    let insecure = registry::is_insecure(root, &domain, a.tls.tls_verify);
    registry::login_check(root, &domain, insecure, &creds)
        .with_context(|| format!("login to {domain}"))?;
    auth::save(root, &domain, &creds)?;
    println!("Login Succeeded");
    Ok(())
}

pub fn logout(root: &Path, server: Option<&str>) -> Result<()> {
    let domain = ops::server_domain(server);
    if auth::remove(root, &domain)? {
        println!("Removing login credentials for {domain}");
    } else {
        println!("Not logged in to {domain}");
    }
    Ok(())
}

pub fn prune(root: &Path, all: bool, force: bool) -> Result<()> {
    let what = if all {
        "This will remove all images without at least one container associated to them."
    } else {
        "This will remove all dangling images."
    };
    if !force && !crate::format::confirm(what)? {
        return Ok(());
    }
    let r = ops::prune(root, all)?;
    if !r.deleted.is_empty() {
        println!("Deleted Images:");
        for v in &r.deleted {
            println!("deleted: {v}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(r.reclaimed));
    Ok(())
}
