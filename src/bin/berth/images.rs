//! Image commands: pull, push, images, rmi, tag, history, load, save,
//! import, login/logout, image inspect/prune. The work is in
//! `hull::engine::images` and `hull::image`; this file parses and prints.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use std::collections::BTreeSet;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use hull::engine::images as ops;
use hull::image::archive::{self, Format};
use hull::image::auth::{self, Credentials};
use hull::image::digest::Digest;
use hull::image::reference::Reference;
use hull::image::registry::{self, PullOptions, PushOptions};
use hull::image::sizelimit::SizeLimit;
use hull::image::store::Store;
use hull::image::types::Platform;

use crate::format::{human_ago, human_size, print_table};

#[derive(Args, Clone)]
pub struct TlsArgs {
    /// Require HTTPS with verified certificates (false: plain HTTP).
    #[arg(long = "tls-verify", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub tls_verify: Option<bool>,
}

#[derive(Subcommand)]
pub enum ImageCmd {
    /// Display detailed information on one or more images
    Inspect {
        images: Vec<String>,
    },
    /// Remove unused images
    Prune {
        /// Remove all images not used by a container, not just dangling ones
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation (berth never prompts)
        #[arg(short, long)]
        force: bool,
    },
    /// List images
    Ls(ImagesArgs),
    /// Remove one or more images
    Rm(RmiArgs),
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
pub struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Show manifest digests
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate IDs
    #[arg(long)]
    pub no_trunc: bool,
    /// Only images of this repository
    pub repository: Option<String>,
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
        ImageCmd::Inspect { images } => inspect(root, &images),
        ImageCmd::Prune { all, force: _ } => prune(root, all),
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

fn id_str(d: &Digest, no_trunc: bool) -> String {
    if no_trunc {
        d.to_string()
    } else {
        d.short().to_string()
    }
}

pub fn images(root: &Path, a: ImagesArgs) -> Result<()> {
    let all = ops::list(root, a.repository.as_deref())?;
    if a.quiet {
        let mut seen = BTreeSet::new();
        for r in &all {
            if seen.insert(r.id.clone()) {
                println!("{}", id_str(&r.id, a.no_trunc));
            }
        }
        return Ok(());
    }
    let mut head = vec!["REPOSITORY".to_string(), "TAG".into()];
    if a.digests {
        head.push("DIGEST".into());
    }
    head.extend(["IMAGE ID".into(), "CREATED".into(), "SIZE".into()]);
    let mut rows = vec![head];
    for r in &all {
        let (repo, tag) = match &r.name {
            Some(n) => (
                n.familiar_name(),
                n.tag.clone().unwrap_or_else(|| "<none>".into()),
            ),
            None => ("<none>".into(), "<none>".into()),
        };
        let mut row = vec![repo, tag];
        if a.digests {
            row.push(r.digest.to_string());
        }
        row.extend([
            id_str(&r.id, a.no_trunc),
            human_ago(r.created.as_deref()),
            human_size(r.size),
        ]);
        rows.push(row);
    }
    print_table(&rows);
    Ok(())
}

pub fn rmi(root: &Path, a: RmiArgs) -> Result<()> {
    for (what, text) in ops::remove(root, &a.images, a.force)? {
        println!("{what}: {text}");
    }
    Ok(())
}

pub fn inspect(root: &Path, names: &[String]) -> Result<()> {
    let out = ops::inspect(root, names)?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

pub fn history(root: &Path, a: HistoryArgs) -> Result<()> {
    let (id, rows) = ops::history(root, &a.image)?;
    if a.quiet {
        println!("{}", id_str(&id, a.no_trunc));
        return Ok(());
    }
    let mut table = vec![vec![
        "IMAGE".to_string(),
        "CREATED".into(),
        "CREATED BY".into(),
        "SIZE".into(),
        "COMMENT".into(),
    ]];
    for (i, r) in rows.into_iter().enumerate() {
        let id = if i == 0 {
            id_str(&id, a.no_trunc)
        } else {
            "<missing>".into()
        };
        let by = if !a.no_trunc && r.created_by.chars().count() > 45 {
            format!("{}…", r.created_by.chars().take(44).collect::<String>())
        } else {
            r.created_by
        };
        table.push(vec![
            id,
            human_ago(r.created.as_deref()),
            by,
            human_size(r.size),
            r.comment,
        ]);
    }
    print_table(&table);
    Ok(())
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

pub fn prune(root: &Path, all: bool) -> Result<()> {
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
