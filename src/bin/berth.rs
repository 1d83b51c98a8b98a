//! berth: a docker-like CLI on top of hull. This file handles the image
//! commands; the store, registry client and archives live in `hull::image`.

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use std::collections::BTreeSet;
use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use hull::image::archive::{self, Format};
use hull::image::auth::{self, Credentials};
use hull::image::digest::Digest;
use hull::image::reference::Reference;
use hull::image::registry::{self, PullOptions, PushOptions};
use hull::image::sizelimit::SizeLimit;
use hull::image::store::{image_in_use, Entry, Image, Store, DEFAULT_ROOT};
use hull::image::types::Platform;

#[derive(Parser)]
#[command(
    name = "berth",
    version,
    about = "A docker-like container tool built on hull"
)]
struct Cli {
    /// Where images, snapshots and containers are kept.
    #[arg(long, global = true, default_value = DEFAULT_ROOT)]
    root: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Args, Clone)]
struct TlsArgs {
    /// Require HTTPS with verified certificates (false: plain HTTP).
    #[arg(long = "tls-verify", num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    tls_verify: Option<bool>,
}

// Parsed once per process; boxing would only obscure the dispatch.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Cmd {
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag { source: String, target: String },
    /// Show the history of an image
    History(HistoryArgs),
    /// Load images from a tar archive (docker-archive or OCI)
    Load(LoadArgs),
    /// Save images to a tar archive
    Save(SaveArgs),
    /// Create an image from a root filesystem tarball
    Import {
        /// Tarball path, or - for stdin
        file: String,
        /// REPOSITORY[:TAG] to name the image
        reference: Option<String>,
        /// Refuse a tarball that unpacks to more than this (e.g. 8g; default 32g or $BERTH_MAX_SIZE)
        #[arg(long)]
        max_size: Option<String>,
    },
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out from a registry
    Logout { server: Option<String> },
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(hull::network::cli::NetworkCmd),
    #[command(flatten)]
    Containers(hull::engine::cli::Cmd),
    #[command(name = "__dns", hide = true)]
    Dns { network: String },
}

#[derive(Subcommand)]
enum ImageCmd {
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
}

#[derive(Args)]
struct PullArgs {
    image: String,
    /// OS/ARCH[/VARIANT] to select from a multi-platform image
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
    #[command(flatten)]
    tls: TlsArgs,
    /// Print only the image name
    #[arg(short, long)]
    quiet: bool,
    /// Parallel layer downloads
    #[arg(long, default_value_t = 4)]
    jobs: usize,
}

#[derive(Args)]
struct PushArgs {
    image: String,
    /// Push to this reference instead of the image's own name
    destination: Option<String>,
    #[command(flatten)]
    tls: TlsArgs,
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct ImagesArgs {
    /// Only show image IDs
    #[arg(short, long)]
    quiet: bool,
    /// Show manifest digests
    #[arg(long)]
    digests: bool,
    /// Don't truncate IDs
    #[arg(long)]
    no_trunc: bool,
    /// Only images of this repository
    repository: Option<String>,
}

#[derive(Args)]
struct RmiArgs {
    /// Remove even if tagged in several repositories or in use
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
struct HistoryArgs {
    image: String,
    #[arg(long)]
    no_trunc: bool,
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Args)]
struct LoadArgs {
    /// Read from this file instead of stdin
    #[arg(short, long)]
    input: Option<PathBuf>,
    #[arg(short, long)]
    quiet: bool,
    /// Refuse an archive that unpacks to more than this (e.g. 8g; default 32g or $BERTH_MAX_SIZE)
    #[arg(long)]
    max_size: Option<String>,
}

#[derive(Args)]
struct SaveArgs {
    /// Write to this file instead of stdout
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// docker-archive or oci-archive
    #[arg(long, default_value = "docker-archive")]
    format: String,
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(Args)]
struct LoginArgs {
    server: Option<String>,
    #[arg(short, long)]
    username: Option<String>,
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from stdin
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    tls: TlsArgs,
}

fn main() {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // One line: the context chain joined, as the team guide asks.
            eprintln!("Error: {}", format!("{e:#}").replace('\n', " "));
            std::process::exit(1);
        }
    }
}

fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Network(n) => {
            let root = Store::open(&cli.root)?.root().to_path_buf();
            hull::network::cli::dispatch(&root, n)
        }
        Cmd::Containers(hull::engine::cli::Cmd::Inspect { format, names })
            if !names
                .iter()
                .all(|n| hull::engine::container::find(&cli.root, n).is_ok()) =>
        {
            // docker's inspect falls back to images for names that are not containers.
            let store = Store::open(&cli.root)?;
            if names.iter().all(|n| store.lookup(n).is_ok()) && format.is_none() {
                inspect(&cli.root, &names)?;
                return Ok(0);
            }
            let root = store.root().to_path_buf();
            hull::engine::cli::dispatch(&root, hull::engine::cli::Cmd::Inspect { format, names })
        }
        Cmd::Containers(c) => {
            let root = Store::open(&cli.root)?.root().to_path_buf();
            hull::engine::cli::dispatch(&root, c)
        }
        Cmd::Dns { network } => Ok(hull::network::dns::serve(&cli.root, &network)),
        other => run_image(cli.root, other).map(|_| 0),
    }
}

fn run_image(root: PathBuf, cmd: Cmd) -> Result<()> {
    match cmd {
        Cmd::Pull(a) | Cmd::Image(ImageCmd::Pull(a)) => pull(&root, a),
        Cmd::Push(a) | Cmd::Image(ImageCmd::Push(a)) => push(&root, a),
        Cmd::Images(a) | Cmd::Image(ImageCmd::Ls(a)) => images(&root, a),
        Cmd::Rmi(a) | Cmd::Image(ImageCmd::Rm(a)) => rmi(&root, a),
        Cmd::Tag { source, target } | Cmd::Image(ImageCmd::Tag { source, target }) => {
            let s = Store::open(&root)?;
            let (_, img) = s.lookup(&source)?;
            let t = Reference::parse(&target)?;
            if t.tag.is_none() {
                bail!("tag target {target:?} must not be a digest reference");
            }
            s.set_ref(Some(&t), &img.manifest_desc)
        }
        Cmd::History(a) | Cmd::Image(ImageCmd::History(a)) => history(&root, a),
        Cmd::Load(a) | Cmd::Image(ImageCmd::Load(a)) => load(&root, a),
        Cmd::Save(a) | Cmd::Image(ImageCmd::Save(a)) => save(&root, a),
        Cmd::Import {
            file,
            reference,
            max_size,
        } => import(&root, &file, reference.as_deref(), max_size.as_deref()),
        Cmd::Login(a) => login(&root, a),
        Cmd::Logout { server } => {
            let domain = server_domain(server.as_deref());
            if auth::remove(&root, &domain)? {
                println!("Removing login credentials for {domain}");
            } else {
                println!("Not logged in to {domain}");
            }
            Ok(())
        }
        Cmd::Image(ImageCmd::Inspect { images }) => inspect(&root, &images),
        Cmd::Image(ImageCmd::Prune { all, force: _ }) => prune(&root, all),
        Cmd::Network(_) | Cmd::Containers(_) | Cmd::Dns { .. } => unreachable!("dispatched in run"),
    }
}

fn pull(root: &std::path::Path, a: PullArgs) -> Result<()> {
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

fn push(root: &std::path::Path, a: PushArgs) -> Result<()> {
    let store = Store::open(root)?;
    let (name, img) = store.lookup(&a.image)?;
    let dest = match &a.destination {
        Some(d) => Reference::parse(d)?,
        None => match name {
            Some(n) => n,
            None => bail!(
                "{}: push needs a name; tag the image or give a destination",
                a.image
            ),
        },
    };
    if dest.digest.is_some() {
        bail!("push destination {dest} must be a tag, not a digest");
    }
    let opts = PushOptions {
        insecure: registry::is_insecure(root, &dest.domain, a.tls.tls_verify),
        quiet: a.quiet,
    };
    registry::push(&store, &img, &dest, &opts)?;
    Ok(())
}

/// docker's units.HumanSize: decimal units, 4 significant digits.
fn human_size(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 1000.0 {
        0
    } else if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.digits$}");
    let s = if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    };
    format!("{s}{}", units[i])
}

fn human_ago(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()) else {
        return "N/A".into();
    };
    let secs = (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
        .num_seconds()
        .max(0);
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86400);
    let s = if secs < 1 {
        "Less than a second".to_string()
    } else if secs == 1 {
        "1 second".to_string()
    } else if secs < 60 {
        format!("{secs} seconds")
    } else if m == 1 {
        "About a minute".into()
    } else if m < 60 {
        format!("{m} minutes")
    } else if h == 1 {
        "About an hour".into()
    } else if h < 48 {
        format!("{h} hours")
    } else if d < 14 {
        format!("{d} days")
    } else if d < 60 {
        format!("{} weeks", d / 7)
    } else if d < 730 {
        format!("{} months", d / 30)
    } else {
        format!("{} years", d / 365)
    };
    format!("{s} ago")
}

fn print_table(rows: &[Vec<String>]) {
    let cols = rows.first().map(|r| r.len()).unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = std::io::stdout().lock();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == cols {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[c]));
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

fn id_str(d: &Digest, no_trunc: bool) -> String {
    if no_trunc {
        d.to_string()
    } else {
        d.short().to_string()
    }
}

fn images(root: &std::path::Path, a: ImagesArgs) -> Result<()> {
    let store = Store::open(root)?;
    let mut all = store.images()?;
    all.sort_by(|(_, x), (_, y)| y.config.created.cmp(&x.config.created));
    if let Some(repo) = &a.repository {
        let want = Reference::parse(repo)?;
        all.retain(|(e, _)| {
            e.name
                .as_ref()
                .is_some_and(|n| n.full_name() == want.full_name())
        });
    }
    if a.quiet {
        let mut seen = BTreeSet::new();
        for (_, img) in &all {
            if seen.insert(img.id().clone()) {
                println!("{}", id_str(img.id(), a.no_trunc));
            }
        }
        return Ok(());
    }
    let mut rows = vec![];
    let mut head = vec!["REPOSITORY".to_string(), "TAG".into()];
    if a.digests {
        head.push("DIGEST".into());
    }
    head.extend(["IMAGE ID".into(), "CREATED".into(), "SIZE".into()]);
    rows.push(head);
    for (e, img) in &all {
        let (repo, tag) = match &e.name {
            Some(n) => (
                n.familiar_name(),
                n.tag.clone().unwrap_or_else(|| "<none>".into()),
            ),
            None => ("<none>".into(), "<none>".into()),
        };
        let mut row = vec![repo, tag];
        if a.digests {
            row.push(e.desc.digest.to_string());
        }
        row.extend([
            id_str(img.id(), a.no_trunc),
            human_ago(img.config.created.as_deref()),
            human_size(img.size()),
        ]);
        rows.push(row);
    }
    print_table(&rows);
    Ok(())
}

fn rmi(root: &std::path::Path, a: RmiArgs) -> Result<()> {
    let store = Store::open(root)?;
    let mut deleted_any = false;
    for arg in &a.images {
        let (name, img) = store.lookup(arg)?;
        let entries = store.entries()?;
        let id = img.id().clone();
        let same_image: Vec<&Entry> = entries
            .iter()
            .filter(|e| store.load_image(&e.desc).is_ok_and(|i| i.id() == &id))
            .collect();
        let in_use = image_in_use(&store, &id);
        match &name {
            Some(n) => {
                let last = same_image.len() <= 1;
                if last && in_use && !a.force {
                    bail!(
                        "conflict: unable to remove {arg}: image {} is in use by a container",
                        id.short()
                    );
                }
                let s = n.to_string();
                store.untag(|d| {
                    d.annotations.get(hull::image::types::ANNOTATION_REF_NAME) == Some(&s)
                })?;
                println!(
                    "Untagged: {}:{}",
                    n.familiar_name(),
                    n.tag.as_deref().unwrap_or("latest")
                );
                if last {
                    println!("Deleted: {id}");
                    deleted_any = true;
                }
            }
            None => {
                let names: BTreeSet<String> = same_image
                    .iter()
                    .filter_map(|e| e.name.as_ref().map(|n| n.full_name()))
                    .collect();
                if names.len() > 1 && !a.force {
                    bail!(
                        "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                        id.short()
                    );
                }
                if in_use && !a.force {
                    bail!("conflict: unable to delete {} (must be forced) - image is in use by a container", id.short());
                }
                let digests: BTreeSet<Digest> =
                    same_image.iter().map(|e| e.desc.digest.clone()).collect();
                let gone = store.untag(|d| digests.contains(&d.digest))?;
                for g in gone {
                    if let Some(n) = g
                        .annotations
                        .get(hull::image::types::ANNOTATION_REF_NAME)
                        .and_then(|n| Reference::parse(n).ok())
                        .filter(|n| n.tag.is_some())
                    {
                        println!(
                            "Untagged: {}:{}",
                            n.familiar_name(),
                            n.tag.as_deref().unwrap_or("latest")
                        );
                    }
                }
                println!("Deleted: {id}");
                deleted_any = true;
            }
        }
    }
    if deleted_any {
        store.gc()?;
    }
    Ok(())
}

fn inspect(root: &std::path::Path, names: &[String]) -> Result<()> {
    let store = Store::open(root)?;
    let entries = store.images()?;
    let mut out = Vec::new();
    for n in names {
        let (_, img) = store.lookup(n)?;
        let mine: Vec<&(Entry, Image)> =
            entries.iter().filter(|(_, i)| i.id() == img.id()).collect();
        let tags: Vec<String> = mine
            .iter()
            .filter_map(|(e, _)| e.name.as_ref())
            .filter(|r| r.tag.is_some())
            .map(|r| {
                format!(
                    "{}:{}",
                    r.familiar_name(),
                    r.tag.as_deref().unwrap_or("latest")
                )
            })
            .collect();
        let digests: BTreeSet<String> = mine
            .iter()
            .filter_map(|(e, _)| {
                e.name
                    .as_ref()
                    .map(|r| format!("{}@{}", r.familiar_name(), e.desc.digest))
            })
            .collect();
        let chains = img.chain_ids();
        let lower: Vec<String> = chains
            .iter()
            .rev()
            .map(|c| store.snapshot_dir(c).display().to_string())
            .collect();
        let cfg: serde_json::Value =
            serde_json::from_slice(&img.config_raw).context("parsing image config")?;
        out.push(serde_json::json!({
            "Id": img.id().to_string(),
            "RepoTags": tags,
            "RepoDigests": digests,
            "Created": img.config.created,
            "Author": img.config.author.clone().unwrap_or_default(),
            "Architecture": img.config.architecture,
            "Os": img.config.os,
            "Config": cfg.get("config").cloned().unwrap_or(serde_json::Value::Null),
            "Size": img.size(),
            "Manifest": {
                "Digest": img.manifest_desc.digest.to_string(),
                "MediaType": img.manifest_desc.media_type,
            },
            "GraphDriver": {"Name": "overlay", "Data": {"LowerDir": lower.join(":")}},
            "RootFS": {"Type": "layers", "Layers": img.config.rootfs.diff_ids},
        }));
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn history(root: &std::path::Path, a: HistoryArgs) -> Result<()> {
    let store = Store::open(root)?;
    let (_, img) = store.lookup(&a.image)?;
    let mut layer_sizes = img.manifest.layers.iter().map(|l| l.size);
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let hist = if img.config.history.is_empty() {
        img.manifest
            .layers
            .iter()
            .map(|_| hull::image::types::History::default())
            .collect()
    } else {
        img.config.history.clone()
    };
    for h in &hist {
        let size = if h.empty_layer == Some(true) {
            0
        } else {
            layer_sizes.next().unwrap_or(0)
        };
        rows.push((
            human_ago(h.created.as_deref()),
            h.created_by.clone().unwrap_or_default(),
            human_size(size),
            h.comment.clone().unwrap_or_default(),
        ));
    }
    rows.reverse();
    if a.quiet {
        println!("{}", id_str(img.id(), a.no_trunc));
        return Ok(());
    }
    let mut table = vec![vec![
        "IMAGE".to_string(),
        "CREATED".into(),
        "CREATED BY".into(),
        "SIZE".into(),
        "COMMENT".into(),
    ]];
    for (i, (c, by, s, com)) in rows.into_iter().enumerate() {
        let id = if i == 0 {
            id_str(img.id(), a.no_trunc)
        } else {
            "<missing>".into()
        };
        let by = if !a.no_trunc && by.chars().count() > 45 {
            format!("{}…", by.chars().take(44).collect::<String>())
        } else {
            by
        };
        table.push(vec![id, c, by, s, com]);
    }
    print_table(&table);
    Ok(())
}

fn import(
    root: &std::path::Path,
    file: &str,
    reference: Option<&str>,
    max_size: Option<&str>,
) -> Result<()> {
    let name = reference.map(Reference::parse).transpose()?;
    let limit = SizeLimit::from_flag_or_env(max_size)?;
    let store = Store::open(root)?;
    let img = if file == "-" {
        archive::import(
            &store,
            std::io::stdin().lock(),
            "stdin",
            name.as_ref(),
            &limit,
        )?
    } else {
        let f = std::fs::File::open(file).with_context(|| format!("opening {file}"))?;
        archive::import(&store, f, file, name.as_ref(), &limit)?
    };
    println!("{}", img.id());
    Ok(())
}

fn load(root: &std::path::Path, a: LoadArgs) -> Result<()> {
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

fn save(root: &std::path::Path, a: SaveArgs) -> Result<()> {
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
        Some(p) => {
            // Write beside the target and rename, so a failed save leaves no partial file.
            let tmp = p.with_file_name(format!(
                ".{}.berth-tmp",
                p.file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            let res = (|| -> Result<()> {
                let f = std::fs::File::create(&tmp)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                archive::save(&store, &imgs, format, std::io::BufWriter::new(f))?;
                std::fs::rename(&tmp, p).with_context(|| format!("writing {}", p.display()))
            })();
            if res.is_err() {
                let _ = std::fs::remove_file(&tmp);
            }
            res
        }
        None => {
            if std::io::stdout().is_terminal() {
                bail!("refusing to write an archive to a terminal (use -o FILE)");
            }
            archive::save(&store, &imgs, format, std::io::stdout().lock())
        }
    }
}

fn server_domain(s: Option<&str>) -> String {
    let s = s.unwrap_or("docker.io");
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let s = s.split('/').next().unwrap_or(s);
    match s {
        "index.docker.io" | "registry-1.docker.io" | "" => "docker.io".into(),
        other => other.to_string(),
    }
}

fn login(root: &std::path::Path, a: LoginArgs) -> Result<()> {
    let domain = server_domain(a.server.as_deref());
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

fn prune(root: &std::path::Path, all: bool) -> Result<()> {
    let store = Store::open(root)?;
    let entries = store.images()?;
    let named: BTreeSet<Digest> = entries
        .iter()
        .filter(|(e, _)| e.name.is_some())
        .map(|(_, i)| i.id().clone())
        .collect();
    let mut victims = BTreeSet::new();
    for (_, img) in &entries {
        let dangling = !named.contains(img.id());
        if (all || dangling) && !image_in_use(&store, img.id()) {
            victims.insert(img.id().clone());
        }
    }
    let digests: BTreeSet<Digest> = entries
        .iter()
        .filter(|(_, i)| victims.contains(i.id()))
        .map(|(e, _)| e.desc.digest.clone())
        .collect();
    store.untag(|d| digests.contains(&d.digest))?;
    let freed = store.gc()?;
    if !victims.is_empty() {
        println!("Deleted Images:");
        for v in &victims {
            println!("deleted: {v}");
        }
        println!();
    }
    println!("Total reclaimed space: {}", human_size(freed));
    Ok(())
}
