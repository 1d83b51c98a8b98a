//! `checkpoint` and `restore` through the `criu` command line, with the external-mount and
//! namespace options runc passes over CRIU's RPC.
//!
//! CRIU runs as a child with its output in a log file, never a pipe: restored tasks could inherit
//! a pipe and keep it open forever, and a failure must come back as one clear line.

use super::state::{self, Container, ContainerState, StateError, Status};
use crate::cgroups;
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Options `checkpoint` and `restore` share (runc's names).
#[derive(Clone, Debug, Default)]
pub struct CriuOptions {
    pub criu: Option<PathBuf>,
    pub image_path: Option<PathBuf>,
    pub work_path: Option<PathBuf>,
    pub parent_path: Option<PathBuf>,
    pub leave_running: bool,
    pub tcp_established: bool,
    pub ext_unix_sk: bool,
    pub shell_job: bool,
    pub file_locks: bool,
    pub pre_dump: bool,
    pub manage_cgroups_mode: Option<String>,
    pub empty_ns: Vec<String>,
    pub lazy_pages: bool,
    pub status_fd: Option<i32>,
    /// Checkpoint only: CRIU may link open but unlinked files back (`--link-remap`).
    pub link_remap: bool,
}

/// What only `restore` takes.
#[derive(Clone, Debug, Default)]
pub struct RestoreOptions {
    pub criu: CriuOptions,
    pub bundle: PathBuf,
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub no_pivot: bool,
    pub no_subreaper: bool,
}

/// The kernel name CRIU uses for an OCI namespace type in `--empty-ns`/`--external`.
fn criu_ns_name(ns: &str) -> Result<&'static str> {
    Ok(match ns {
        "network" | "net" => "net",
        "pid" => "pid",
        "ipc" => "ipc",
        "uts" => "uts",
        "mount" | "mnt" => "mnt",
        other => bail!("--empty-ns: unsupported namespace {other:?} (only network is)"),
    })
}

fn manage_cgroups_mode(mode: &str) -> Result<&str> {
    match mode {
        "soft" | "full" | "strict" | "ignore" => Ok(mode),
        other => {
            bail!("--manage-cgroups-mode: invalid mode {other:?} (soft, full, strict or ignore)")
        }
    }
}

fn criu_binary(opts: &CriuOptions) -> PathBuf {
    opts.criu.clone().unwrap_or_else(|| PathBuf::from("criu"))
}

/// Arguments both dump and restore take from the shared flags.
fn common_args(cmd: &mut Command, opts: &CriuOptions, image: &Path, work: &Path) -> Result<()> {
    cmd.arg("-D").arg(image).arg("-W").arg(work);
    if opts.tcp_established {
        cmd.arg("--tcp-established");
    }
    if opts.ext_unix_sk {
        cmd.arg("--ext-unix-sk");
    }
    if opts.shell_job {
        cmd.arg("--shell-job");
    }
    if opts.file_locks {
        cmd.arg("--file-locks");
    }
    match &opts.manage_cgroups_mode {
        Some(mode) => {
            cmd.arg(format!("--manage-cgroups={}", manage_cgroups_mode(mode)?));
        }
        None => {
            cmd.arg("--manage-cgroups");
        }
    }
    for ns in &opts.empty_ns {
        cmd.arg("--empty-ns").arg(criu_ns_name(ns)?);
    }
    if opts.lazy_pages {
        cmd.arg("--lazy-pages");
    }
    if let Some(fd) = opts.status_fd {
        cmd.arg("--status-fd").arg(fd.to_string());
    }
    Ok(())
}

fn is_bind(m: &oci_spec::runtime::Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .as_ref()
            .is_some_and(|o| o.iter().any(|x| x == "bind" || x == "rbind"))
}

/// Bind mounts and masked files come from outside the container's mount namespace: CRIU must be
/// told they are external, keyed by their destination as runc does.
fn external_mounts(spec: &Spec, rootfs: &Path, restore: bool) -> Vec<String> {
    let mut out = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or_default() {
        if !is_bind(m) {
            continue;
        }
        let dest = m.destination().display().to_string();
        if restore {
            let src = m
                .source()
                .as_ref()
                .map(|s| s.display().to_string())
                .unwrap_or_default();
            out.push(format!("mnt[{dest}]:{src}"));
        } else {
            out.push(format!("mnt[{dest}]:{dest}"));
        }
    }
    let masked = spec
        .linux()
        .as_ref()
        .and_then(|l| l.masked_paths().clone())
        .unwrap_or_default();
    for p in masked {
        // Masked directories get a tmpfs, which CRIU dumps itself; files get /dev/null bound.
        let is_dir = rootfs.join(p.trim_start_matches('/')).is_dir();
        if !is_dir {
            out.push(format!("mnt[{p}]:/dev/null"));
        }
    }
    out
}

/// A namespace the spec joins by path (e.g. an engine-made netns) is external to the image.
fn joined_netns(spec: &Spec) -> Option<PathBuf> {
    spec.linux()
        .as_ref()?
        .namespaces()
        .as_ref()?
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)?
        .path()
        .clone()
}

fn ns_inode(path: &Path) -> Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path)
        .with_context(|| format!("stat {}", path.display()))?
        .ino())
}

/// The freezer cgroup CRIU should freeze the tree with (faster and race-free against forks).
fn freezer_dir(cgroup_path: &str) -> Option<PathBuf> {
    let rel = cgroup_path.trim_start_matches('/');
    let v1 = Path::new("/sys/fs/cgroup/freezer").join(rel);
    if v1.is_dir() {
        return Some(v1);
    }
    let v2 = Path::new("/sys/fs/cgroup").join(rel);
    v2.join("cgroup.freeze").exists().then_some(v2)
}

/// Runs CRIU with output in `<work>/<log>` and turns a failure into one line: CRIU's last
/// "Error" line, with where the full log is.
fn run_criu(mut cmd: Command, action: &str, work: &Path, log: &str) -> Result<()> {
    let log_path = work.join(log);
    cmd.arg("-o").arg(&log_path).arg("-v4");
    let out = std::fs::File::create(work.join(format!("{log}.out")))
        .with_context(|| format!("create a CRIU output file in {}", work.display()))?;
    let err = out.try_clone().context("dup the CRIU output file")?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    crate::debug!("running {cmd:?}");
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "criu {action}: criu binary {:?} not found (install criu)",
                cmd.get_program()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("run criu {action}")),
    };
    if status.success() {
        return Ok(());
    }
    let mut text = std::fs::read_to_string(&log_path).unwrap_or_default();
    text.push_str(&std::fs::read_to_string(work.join(format!("{log}.out"))).unwrap_or_default());
    let reason = last_error_line(&text).unwrap_or_else(|| format!("exited with {status}"));
    bail!(
        "criu {action} failed: {reason} (log: {})",
        log_path.display()
    )
}

/// CRIU's most telling line: the first "Error" (later ones are mostly consequences).
fn last_error_line(text: &str) -> Option<String> {
    text.lines()
        .find(|l| l.contains("Error") || l.contains("error"))
        .map(|l| {
            let l = l.trim();
            // Drop CRIU's "(00.376780) " timestamp: noise in a one-line error.
            match l.strip_prefix('(').and_then(|r| r.split_once(") ")) {
                Some((_, rest)) => rest.to_string(),
                None => l.to_string(),
            }
        })
}

fn prepare_dir(path: &Path, what: &str) -> Result<()> {
    std::fs::create_dir_all(path).with_context(|| format!("create {what} {}", path.display()))
}

/// `--parent-path` is CRIU's `--prev-images-dir`, which CRIU resolves from the image directory
/// and which must stay relative for the images to be movable (runc documents it so): an
/// absolute one is refused before anything is touched.
fn check_parent_path(opts: &CriuOptions) -> Result<()> {
    match &opts.parent_path {
        Some(p) if p.is_absolute() => bail!(
            "--parent-path: {} must be relative to the image path, not absolute",
            p.display()
        ),
        _ => Ok(()),
    }
}

/// CRIU's dump (or pre-dump) command line for the container in `st`.
fn dump_command(
    st: &ContainerState,
    spec: &Spec,
    opts: &CriuOptions,
    image: &Path,
    work: &Path,
) -> Result<Command> {
    let mut cmd = Command::new(criu_binary(opts));
    cmd.arg(if opts.pre_dump { "pre-dump" } else { "dump" });
    cmd.arg("-t").arg(st.pid.to_string());
    common_args(&mut cmd, opts, image, work)?;
    cmd.arg("--root").arg(&st.rootfs);
    if let Some(parent) = &opts.parent_path {
        cmd.arg("--prev-images-dir").arg(parent);
    }
    if opts.pre_dump || opts.parent_path.is_some() {
        cmd.arg("--track-mem");
    }
    if opts.leave_running && !opts.pre_dump {
        cmd.arg("--leave-running");
    }
    if opts.link_remap {
        cmd.arg("--link-remap");
    }
    if let Some(dir) = freezer_dir(&st.cgroup_path) {
        cmd.arg("--freeze-cgroup").arg(dir);
    }
    for ext in external_mounts(spec, &st.rootfs, false) {
        cmd.arg("--external").arg(ext);
    }
    if let Some(ns) = joined_netns(spec) {
        cmd.arg("--external")
            .arg(format!("net[{}]:extRootNetNS", ns_inode(&ns)?));
    }
    Ok(cmd)
}

pub fn checkpoint(root: &Path, id: &str, opts: &CriuOptions) -> Result<()> {
    check_parent_path(opts)?;
    let c = Container::load(root, id)?;
    match super::lifecycle::status_of(&c) {
        Status::Running | Status::Paused => {}
        Status::Created => bail!("cannot checkpoint a container that has not started"),
        Status::Stopped => return Err(StateError::NotRunning.into()),
    }
    let spec = load_spec(&c.state.bundle)?;
    let image = opts
        .image_path
        .clone()
        .unwrap_or_else(|| PathBuf::from("checkpoint"));
    let image = std::path::absolute(&image).context("--image-path")?;
    let work = match &opts.work_path {
        Some(w) => std::path::absolute(w).context("--work-path")?,
        None => image.clone(),
    };
    let cmd = dump_command(&c.state, &spec, opts, &image, &work)?;
    prepare_dir(&image, "image directory")?;
    prepare_dir(&work, "work directory")?;
    let action = if opts.pre_dump { "pre-dump" } else { "dump" };
    run_criu(cmd, action, &work, &format!("{action}.log"))?;
    // Keep the spec with the image: restore on another bundle path still finds the mounts.
    let _ = std::fs::copy(
        c.state.bundle.join("config.json"),
        image.join("config.json"),
    );
    if opts.pre_dump || opts.leave_running {
        return Ok(());
    }
    // CRIU killed the tree after a full dump; the container is gone, as with runc.
    drop(c);
    super::lifecycle::delete(root, id, true)
}

fn load_spec(bundle: &Path) -> Result<Spec> {
    let path = bundle.join("config.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    super::spec::parse(&text)
}

/// Unmounts CRIU's root bind mount and removes what a failed restore made.
struct RestoreGuard {
    criu_root: Option<PathBuf>,
    dir: Option<PathBuf>,
    cgroup: Option<Box<dyn cgroups::Cgroup>>,
}

impl Drop for RestoreGuard {
    fn drop(&mut self) {
        if let Some(r) = self.criu_root.take() {
            let _ = nix::mount::umount2(&r, nix::mount::MntFlags::MNT_DETACH);
            let _ = std::fs::remove_dir(&r);
        }
        if let Some(cg) = self.cgroup.take() {
            let _ = cg.destroy();
        }
        if let Some(d) = self.dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// Restores a checkpoint as container `id`; returns the exit code to exit with.
pub fn restore(root: &Path, id: &str, opts: &RestoreOptions) -> Result<i32> {
    let bundle = super::spec::load(&opts.bundle)?;
    let spec = bundle.spec;
    if spec.process().as_ref().and_then(|p| p.terminal()) == Some(true) && !opts.criu.shell_job {
        bail!("restore: containers with process.terminal are not supported yet (use --shell-job)");
    }
    let image = std::path::absolute(
        opts.criu
            .image_path
            .clone()
            .unwrap_or_else(|| PathBuf::from("checkpoint")),
    )
    .context("--image-path")?;
    if !image.join("inventory.img").exists() {
        bail!(
            "restore: {} holds no CRIU checkpoint (no inventory.img)",
            image.display()
        );
    }
    let work = match &opts.criu.work_path {
        Some(w) => std::path::absolute(w).context("--work-path")?,
        None => image.clone(),
    };
    prepare_dir(&work, "work directory")?;
    let linux = spec.linux().as_ref();
    let cgroup_path = cgroups::container_path(
        linux.and_then(|l| l.cgroups_path().as_deref()),
        id,
        &cgroups::own_cgroup(),
    )?;

    let (dir, lock) = state::create_dir(root, id)?;
    let mut guard = RestoreGuard {
        criu_root: None,
        dir: Some(dir.clone()),
        cgroup: None,
    };
    let cg = cgroups::open(&cgroup_path)?;
    cg.create()?;
    if let Some(res) = linux.and_then(|l| l.resources().as_ref()) {
        cg.apply(res)?;
    }
    guard.cgroup = Some(cg);

    // CRIU needs the root to be a mount point of its own, so bind the rootfs onto one.
    let criu_root = dir.join("criu-root");
    prepare_dir(&criu_root, "CRIU root")?;
    nix::mount::mount(
        Some(&bundle.rootfs),
        &criu_root,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND | nix::mount::MsFlags::MS_REC,
        None::<&str>,
    )
    .with_context(|| format!("bind {} for CRIU", bundle.rootfs.display()))?;
    guard.criu_root = Some(criu_root.clone());

    let pidfile = work.join("restore.pid");
    let _ = std::fs::remove_file(&pidfile);
    let mut cmd = Command::new(criu_binary(&opts.criu));
    cmd.arg("restore");
    common_args(&mut cmd, &opts.criu, &image, &work)?;
    cmd.arg("--root").arg(&criu_root);
    cmd.arg("--restore-detached").arg("--restore-sibling");
    cmd.arg("--pidfile").arg(&pidfile);
    cmd.arg("--cgroup-root").arg(&cgroup_path);
    for ext in external_mounts(&spec, &bundle.rootfs, true) {
        cmd.arg("--external").arg(ext);
    }
    let mut keep: Vec<OwnedFd> = Vec::new();
    if let Some(ns) = joined_netns(&spec) {
        let f = std::fs::File::open(&ns).with_context(|| format!("open {}", ns.display()))?;
        let fd: OwnedFd = f.into();
        // CRIU inherits the fd: it must survive exec.
        nix::fcntl::fcntl(
            fd.as_raw_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        )
        .context("clear close-on-exec on the netns fd")?;
        cmd.arg("--inherit-fd")
            .arg(format!("fd[{}]:extRootNetNS", fd.as_raw_fd()));
        keep.push(fd);
    }
    if !opts.detach && !opts.no_subreaper {
        // Orphans of the restored tree come to us, to be reaped.
        prctl::set_child_subreaper(true)
            .map_err(|e| anyhow::anyhow!("PR_SET_CHILD_SUBREAPER: errno {e}"))?;
    }
    let old_mask = if opts.detach {
        None
    } else {
        Some(super::supervise::block_signals()?)
    };
    run_criu(cmd, "restore", &work, "restore.log")?;
    drop(keep);

    let text = std::fs::read_to_string(&pidfile)
        .with_context(|| format!("read CRIU's pidfile {}", pidfile.display()))?;
    let pid: i32 = text
        .trim()
        .parse()
        .with_context(|| format!("CRIU's pidfile holds {text:?}"))?;
    let start_time = state::process_start_time(pid).context("restored init died at once")?;
    let st = ContainerState {
        oci_version: spec.version().clone(),
        id: id.to_string(),
        pid,
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        created: {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            crate::log::rfc3339(now.as_secs() as i64, now.subsec_nanos())
        },
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        start_time,
        cgroup_path: cgroup_path.clone(),
        hooks: spec.hooks().clone(),
        own_pid_ns: linux
            .and_then(|l| l.namespaces().as_ref())
            .is_some_and(|ns| {
                ns.iter()
                    .any(|n| n.typ() == LinuxNamespaceType::Pid && n.path().is_none())
            }),
        rootless: !nix::unistd::geteuid().is_root(),
        systemd_unit: None,
    };
    let container = Container::new(dir, st, lock);
    container.save()?;
    if let Some(p) = &opts.pid_file {
        super::create::write_pid_file(p, pid)?;
    }
    // The restored tree lives on: keep its cgroup and state; only CRIU's root bind goes.
    guard.dir = None;
    guard.cgroup = None;
    drop(guard);
    let Some(old_mask) = old_mask else {
        return Ok(0);
    };
    drop(container);
    let code = super::supervise::wait_forwarding(pid, None, old_mask)?;
    super::lifecycle::delete(root, id, true)?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_map_to_criu_names() {
        assert_eq!(criu_ns_name("network").unwrap(), "net");
        assert!(criu_ns_name("time").is_err());
        assert!(manage_cgroups_mode("soft").is_ok());
        assert!(manage_cgroups_mode("loose").is_err());
    }

    #[test]
    fn first_error_line_is_reported() {
        let log =
            "(00.0) Version\n(00.37) Error (criu/vdso.c:613): vdso: Failed\nError (x): later\n";
        assert_eq!(
            last_error_line(log).as_deref(),
            Some("Error (criu/vdso.c:613): vdso: Failed")
        );
        assert_eq!(last_error_line("all fine"), None);
    }

    fn state(rootfs: &str) -> ContainerState {
        serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "id": "c1", "pid": 4242, "bundle": "/b", "rootfs": rootfs,
            "created": "", "owner": "", "startTime": 1, "cgroupPath": "/hull-nonexistent/c1"
        }))
        .unwrap()
    }

    #[test]
    fn dump_command_carries_link_remap_and_a_relative_parent() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2", "root": {"path": "/nonexistent-rootfs"}
        }))
        .unwrap();
        let opts = CriuOptions {
            link_remap: true,
            parent_path: Some(PathBuf::from("../pre")),
            ..Default::default()
        };
        check_parent_path(&opts).unwrap();
        let st = state("/nonexistent-rootfs");
        let cmd = dump_command(&st, &spec, &opts, Path::new("/img"), Path::new("/work")).unwrap();
        let args: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(args[..3], ["dump", "-t", "4242"]);
        assert!(args.iter().any(|a| a == "--link-remap"), "{args:?}");
        let prev = args.iter().position(|a| a == "--prev-images-dir").unwrap();
        assert_eq!(args[prev + 1], "../pre");
        let without = dump_command(
            &st,
            &spec,
            &CriuOptions::default(),
            Path::new("/i"),
            Path::new("/w"),
        )
        .unwrap();
        assert!(!without.get_args().any(|a| a == "--link-remap"));
        let abs = CriuOptions {
            parent_path: Some(PathBuf::from("/abs/pre")),
            ..Default::default()
        };
        let err = check_parent_path(&abs).unwrap_err().to_string();
        assert!(err.starts_with("--parent-path: /abs/pre"), "{err}");
    }

    #[test]
    fn bind_mounts_and_masked_files_are_external() {
        let spec: Spec = serde_json::from_value(serde_json::json!({
            "ociVersion": "1.0.2",
            "root": {"path": "/nonexistent-rootfs"},
            "mounts": [
                {"destination": "/data", "source": "/srv/data", "type": "bind", "options": ["rbind"]},
                {"destination": "/proc", "source": "proc", "type": "proc"}
            ],
            "linux": {"maskedPaths": ["/proc/kcore"]}
        }))
        .unwrap();
        assert_eq!(
            external_mounts(&spec, Path::new("/nonexistent-rootfs"), false),
            vec!["mnt[/data]:/data", "mnt[/proc/kcore]:/dev/null"]
        );
        assert_eq!(
            external_mounts(&spec, Path::new("/nonexistent-rootfs"), true)[0],
            "mnt[/data]:/srv/data"
        );
    }
}
