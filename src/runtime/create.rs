//! `create`: from a bundle to a container init waiting for `start`.
//!
//! hull (the parent) forks an intermediate child that joins and unshares namespaces; that child
//! clones the container init with CLONE_PARENT, so the init is hull's own child (the caller, or
//! containerd's shim as subreaper, reaps it) and is pid 1 of a new pid namespace. No re-exec.

use super::init::{self, InitArgs};
use super::namespaces::{self, Plan};
use super::spec::{self, Bundle};
use super::state::{self, Container, ContainerState, START_SOCKET};
use super::sync::{self, Channel, Msg};
use crate::cgroups::{self, Cgroup};
use anyhow::{bail, Context, Result};
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

pub struct CreateOptions {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    /// An already connected console socket (used by `run` to receive the pty itself).
    pub console_fd: Option<RawFd>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    /// `--systemd-cgroup`: the cgroup is a systemd unit (cgroups/systemd.rs).
    pub systemd_cgroup: bool,
}

/// A container that `create` made; the init pid is a child of this process.
pub struct Created {
    pub container: Container,
    pub init_pid: i32,
}

/// Undoes a half-made container on any error: kill what was forked, remove the cgroup and the
/// state dir. Disarmed once the container is complete.
struct Cleanup {
    dir: Option<PathBuf>,
    cgroup: Option<Box<dyn Cgroup>>,
    pids: Vec<i32>,
    /// The poststop hooks and the state they get: the spec has a failed create continue with
    /// destroying the container and then the poststop hooks.
    poststop: Option<(Vec<oci_spec::runtime::Hook>, String)>,
    armed: bool,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        for &pid in &self.pids {
            // SAFETY: these are our own children; kill then reap them.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
        if let Some(cg) = &self.cgroup {
            for pid in cg.pids().unwrap_or_default() {
                // SAFETY: anything left in the cgroup we just made is ours.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            let _ = cg.destroy();
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((hooks, state)) = &self.poststop {
            super::hooks::run_warning("poststop", Some(hooks), state);
        }
    }
}

pub fn create(opts: &CreateOptions) -> Result<Created> {
    state::validate_id(&opts.id)?;
    if opts.root.join(&opts.id).exists() {
        return Err(state::StateError::Exists(opts.id.clone()).into());
    }
    let Bundle {
        dir: bundle,
        rootfs,
        spec,
        idmaps,
    } = spec::load(&opts.bundle)?;
    let linux = spec.linux().as_ref();
    let plan = Plan::from_linux(linux);
    let (unit, cgroup_path) = cgroup_of(opts, linux)?;
    let terminal = spec.process().as_ref().and_then(|p| p.terminal()) == Some(true);
    let console = console(opts, terminal)?;

    let idmapped = super::idmap::prepare_all(&spec, &idmaps, &bundle)?;
    let (dir, lock) = state::create_dir(&opts.root, &opts.id)?;
    let mut cleanup = Cleanup {
        dir: Some(dir.clone()),
        cgroup: None,
        pids: Vec::new(),
        poststop: spec
            .hooks()
            .as_ref()
            .and_then(|h| h.poststop().clone())
            .map(|hooks| (hooks, hook_state(&spec, &opts.id, &bundle, "stopped", 0))),
        armed: true,
    };
    // Before the cgroup exists: a create killed from here on leaves what delete needs to find it.
    state::write_intent(
        &dir,
        &state::Intent {
            cgroup_path: cgroup_path.clone(),
            init: None,
        },
    )?;
    // LISTEN_FDS come first (3..), then --preserve-fds, as runc passes them.
    let listen_fds = super::fds::listen_fds_from_env();
    let preserved = super::fds::preserved(listen_fds + opts.preserve_fds);
    let (parent_end, child_end) = sync::pair()?;
    let start_listener = UnixListener::bind(state::socket_path(&dir, &lock, START_SOCKET))
        .with_context(|| format!("listen on {}", dir.join(START_SOCKET).display()))?;
    let log_fd = crate::log::file_fd();

    let init_args = InitArgs {
        id: &opts.id,
        spec: &spec,
        bundle: &bundle,
        rootfs: &rootfs,
        channel: &child_end,
        start_listener: &start_listener,
        console_socket: console,
        preserved_fds: &preserved,
        listen_fds,
        no_pivot: opts.no_pivot,
        no_new_keyring: opts.no_new_keyring,
        new_userns: plan.new_user()
            || plan
                .join
                .iter()
                .any(|(t, _)| *t == LinuxNamespaceType::User),
        new_cgroupns: plan.new.contains(CloneFlags::CLONE_NEWCGROUP),
        new_mountns: plan.has(LinuxNamespaceType::Mount),
        cgroup_path: &cgroup_path,
        log_fd,
        idmapped: &idmapped,
    };

    let resources = linux.and_then(|l| l.resources().as_ref());
    // Registered before create(), so a half-made cgroup is removed on error too.
    let cg = cleanup.cgroup.insert(match &unit {
        Some(u) => Box::new(cgroups::systemd::SystemdCgroup::new(u.clone())?),
        None => cgroups::open(&cgroup_path)?,
    });
    let Forked {
        pid: forked,
        early,
        mut use_cgroup,
        placed,
    } = fork_child(&**cg, resources)?;
    if forked == 0 {
        drop(parent_end);
        intermediate_child(&plan, linux, &init_args)
    }
    let intermediate = forked;
    drop(child_end);
    cleanup.pids.push(intermediate);
    // The child makes its namespaces while we make the cgroup; it waits for Go only before the
    // cgroup namespace and the init, which must both start inside the cgroup.
    if plan.new_user() {
        map_ids(&parent_end, linux)?;
    }
    if !early {
        use_cgroup = setup_cgroup(&**cg, resources)?;
    }
    if use_cgroup && !placed {
        cg.add_pid(intermediate)?;
    }
    parent_end.send(&Msg::Go)?;

    let init = Init {
        chan: &parent_end,
        spec: &spec,
        id: &opts.id,
        bundle: &bundle,
        dir: &dir,
        cgroup_path: &cgroup_path,
        use_cgroup,
        intermediate,
    };
    let init_pid = init.wait(&mut cleanup)?;
    super::rdt::join(&spec, &bundle, &opts.id, init_pid, &dir)?;
    drop(start_listener);
    if let Some(fd) = console.filter(|_| opts.console_fd.is_none()) {
        // SAFETY: our copy of the connected console socket; the init has its own.
        unsafe { libc::close(fd) };
    }

    let state = ContainerState {
        pid: init_pid,
        start_time: state::process_start_time(init_pid)
            .context("container init died during create")?,
        cgroup_path: cgroup_path.clone(),
        systemd_unit: unit,
        own_pid_ns: plan.new.contains(CloneFlags::CLONE_NEWPID),
        ..initial_state(&spec, &opts.id, &bundle, &rootfs)
    };
    let container = Container::new(dir, state, lock);
    container.save()?;
    if let Some(pid_file) = &opts.pid_file {
        write_pid_file(pid_file, init_pid)?;
    }
    cleanup.armed = false;
    Ok(Created {
        container,
        init_pid,
    })
}

/// The systemd unit (with `--systemd-cgroup`) and the cgroup path of the container.
fn cgroup_of(
    opts: &CreateOptions,
    linux: Option<&oci_spec::runtime::Linux>,
) -> Result<(Option<cgroups::systemd::UnitPath>, String)> {
    let cgroups_path = linux.and_then(|l| l.cgroups_path().as_deref());
    let unit = match opts.systemd_cgroup {
        true => Some(cgroups::systemd::parse_path(
            cgroups_path,
            &opts.id,
            !nix::unistd::geteuid().is_root(),
        )?),
        false => None,
    };
    let cgroup_path = match &unit {
        Some(u) => u.cgroup_path()?,
        None => cgroups::container_path(cgroups_path, &opts.id, &cgroups::own_cgroup())?,
    };
    Ok((unit, cgroup_path))
}

/// Writes the id maps of the user namespace the child made, when it asks.
fn map_ids(chan: &Channel, linux: Option<&oci_spec::runtime::Linux>) -> Result<()> {
    match chan.recv()? {
        Msg::MapIds { pid } => {
            namespaces::write_id_maps(pid, linux.context("linux: missing")?)?;
            chan.send(&Msg::Ack)
        }
        Msg::Error { msg } => bail!("{msg}"),
        other => bail!("init channel: expected MapIds, got {other:?}"),
    }
}

/// The console socket the init sends its pty to, when the process has a terminal.
fn console(opts: &CreateOptions, terminal: bool) -> Result<Option<RawFd>> {
    Ok(match (&opts.console_socket, opts.console_fd, terminal) {
        (_, Some(fd), true) => Some(fd),
        (Some(path), None, true) => {
            let s = UnixStream::connect(path)
                .with_context(|| format!("--console-socket {}", path.display()))?;
            Some(std::os::fd::IntoRawFd::into_raw_fd(s))
        }
        (None, None, true) => bail!("process.terminal is true but no --console-socket was given"),
        _ => None,
    })
}

/// The state a hook reads on its stdin.
fn hook_state(spec: &Spec, id: &str, bundle: &Path, status: &str, pid: i32) -> String {
    serde_json::json!({
        "ociVersion": spec.version(), "id": id, "status": status, "pid": pid,
        "bundle": bundle, "annotations": spec.annotations().clone().unwrap_or_default(),
    })
    .to_string()
}

/// The container's state.json fields that come from the bundle alone.
fn initial_state(spec: &Spec, id: &str, bundle: &Path, rootfs: &Path) -> ContainerState {
    ContainerState {
        oci_version: spec.version().clone(),
        id: id.to_string(),
        pid: 0,
        bundle: bundle.to_path_buf(),
        rootfs: rootfs.to_path_buf(),
        created: now_rfc3339(),
        owner: String::new(),
        annotations: spec.annotations().clone().unwrap_or_default(),
        start_time: 0,
        cgroup_path: String::new(),
        systemd_unit: None,
        hooks: spec.hooks().clone(),
        own_pid_ns: false,
        rootless: !nix::unistd::geteuid().is_root(),
    }
}

/// The intermediate child as forked: its pid (0 in the child), whether the cgroup was set up
/// before the fork (`early`), whether the container has one, and whether the child was born in
/// it.
struct Forked {
    pid: i32,
    early: bool,
    use_cgroup: bool,
    placed: bool,
}

/// Where the hierarchy allows it (v2), the cgroup is made first and the child is born in it
/// (clone3 CLONE_INTO_CGROUP). Elsewhere the child is forked first, makes its namespaces while
/// the parent makes the cgroup, and is moved in afterwards.
fn fork_child(
    cg: &dyn Cgroup,
    resources: Option<&oci_spec::runtime::LinuxResources>,
) -> Result<Forked> {
    let early = cg.can_clone_into();
    let mut use_cgroup = false;
    let mut into = None;
    if early {
        use_cgroup = setup_cgroup(cg, resources)?;
        into = cg.clone_into_fd().filter(|_| use_cgroup);
    }
    let mut placed = false;
    let pid = match &into {
        Some(fd) => match namespaces::clone_into_cgroup(fd.as_raw_fd()) {
            Ok(pid) => {
                placed = true;
                pid
            }
            Err(e) => {
                crate::debug!("clone3 into the cgroup refused ({e}); forking and moving instead");
                plain_fork()?
            }
        },
        None => plain_fork()?,
    };
    Ok(Forked {
        pid,
        early,
        use_cgroup,
        placed,
    })
}

/// The parent's side of the init channel after Go, up to Ready.
struct Init<'a> {
    chan: &'a Channel,
    spec: &'a Spec,
    id: &'a str,
    bundle: &'a Path,
    dir: &'a Path,
    cgroup_path: &'a str,
    use_cgroup: bool,
    intermediate: i32,
}

impl Init<'_> {
    /// Runs the create hooks when the init asks and returns its pid once it is ready.
    fn wait(&self, cleanup: &mut Cleanup) -> Result<i32> {
        let (spec, intermediate) = (self.spec, self.intermediate);
        let state_for_hooks = |pid: i32| hook_state(spec, self.id, self.bundle, "creating", pid);
        let mut init_pid = 0;
        // The init and the intermediate child share the channel: the init can report Hooks or Ready
        // before the intermediate reports its pid, and those must wait for the pid.
        let mut deferred: Option<Msg> = None;
        loop {
            let msg = match deferred.take_if(|_| init_pid != 0) {
                Some(m) => m,
                None => self.chan.recv()?,
            };
            match msg {
                m @ (Msg::Hooks | Msg::Ready) if init_pid == 0 => {
                    deferred = Some(m);
                }
                Msg::InitPid { pid } => {
                    init_pid = pid;
                    if !self.use_cgroup {
                        // No cgroup to find it by: delete needs the init itself.
                        state::write_intent(
                            self.dir,
                            &state::Intent {
                                cgroup_path: self.cgroup_path.to_string(),
                                init: state::process_start_time(pid).map(|t| (pid, t)),
                            },
                        )?;
                    }
                    cleanup.pids.insert(0, pid);
                    // SAFETY: reaping the intermediate child, which exits right after this message.
                    unsafe { libc::waitpid(intermediate, std::ptr::null_mut(), 0) };
                    cleanup.pids.retain(|&p| p != intermediate);
                    super::netdev::move_net_devices(spec, pid)?;
                }
                Msg::Hooks => {
                    let hooks = spec.hooks().as_ref();
                    #[allow(deprecated)]
                    let prestart = hooks.and_then(|h| h.prestart().as_ref());
                    super::hooks::run("prestart", prestart, &state_for_hooks(init_pid))?;
                    super::hooks::run(
                        "createRuntime",
                        hooks.and_then(|h| h.create_runtime().as_ref()),
                        &state_for_hooks(init_pid),
                    )?;
                    self.chan.send(&Msg::Ack)?;
                }
                Msg::Ready => break,
                Msg::Error { msg } => bail!("{msg}"),
                other => bail!("init channel: unexpected {other:?}"),
            }
        }
        if init_pid == 0 {
            bail!("container init reported ready before its pid");
        }
        Ok(init_pid)
    }
}

/// Creates the cgroup and writes its limits; returns whether the container has one. A rootless
/// container gets a cgroup only where one was delegated to the user; without one it runs
/// unlimited, as with runc, unless the config asks for limits.
fn setup_cgroup(
    cg: &dyn Cgroup,
    resources: Option<&oci_spec::runtime::LinuxResources>,
) -> Result<bool> {
    match cg.create() {
        Ok(()) => {}
        Err(e) if !nix::unistd::geteuid().is_root() => {
            if resources.is_some_and(has_limits) {
                return Err(e.context(
                    "linux.resources: rootless, and no cgroup is delegated to this user",
                ));
            }
            crate::debug!("rootless: running without a cgroup ({e:#})");
            return Ok(false);
        }
        Err(e) => return Err(e),
    }
    if let Some(res) = resources {
        cg.apply(res)?;
    }
    Ok(true)
}

fn plain_fork() -> Result<i32> {
    // SAFETY: hull is single-threaded here, so the child may run arbitrary code after fork.
    match unsafe { nix::unistd::fork() }.context("fork")? {
        nix::unistd::ForkResult::Child => Ok(0),
        nix::unistd::ForkResult::Parent { child } => Ok(child.as_raw()),
    }
}

/// Whether resources ask for any limit (an empty object, or devices rules alone, as rootless
/// specs carry, do not need a cgroup).
fn has_limits(r: &oci_spec::runtime::LinuxResources) -> bool {
    r.memory().is_some()
        || r.cpu().is_some()
        || r.pids().is_some()
        || r.block_io().is_some()
        || r.hugepage_limits().as_ref().is_some_and(|h| !h.is_empty())
        || r.network().is_some()
        || r.rdma().as_ref().is_some_and(|m| !m.is_empty())
        || r.unified().as_ref().is_some_and(|m| !m.is_empty())
}

fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::log::rfc3339(now.as_secs() as i64, now.subsec_nanos())
}

/// Writes the pid file by rename, as runc does, so a reader never sees an empty file.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let tmp = path.with_file_name(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, pid.to_string())
        .with_context(|| format!("--pid-file: write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("--pid-file: rename to {}", path.display()))
}

/// The intermediate child: namespaces in, then clone the init and leave.
fn intermediate_child(plan: &Plan, linux: Option<&oci_spec::runtime::Linux>, args: &InitArgs) -> ! {
    let chan: &Channel = args.channel;
    let res = (|| -> Result<()> {
        plan.join_all()?;
        if plan
            .join
            .iter()
            .any(|(t, _)| *t == LinuxNamespaceType::User)
        {
            // Host root is unmapped in a joined user namespace: files it created would fail
            // with EOVERFLOW. Become that namespace's root, as for a new one.
            // SAFETY: plain credential syscalls.
            unsafe {
                if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error())
                        .context("become root in the joined user namespace (is 0 mapped?)");
                }
            }
        }
        if plan.new_user() {
            nix::sched::unshare(CloneFlags::CLONE_NEWUSER).context("unshare user namespace")?;
            chan.send(&Msg::MapIds {
                pid: std::process::id() as i32,
            })?;
            chan.expect(Msg::Ack)?;
            // Become the namespace's root so the init owns what it creates.
            // SAFETY: plain credential syscalls.
            unsafe {
                if libc::setresgid(0, 0, 0) != 0 || libc::setresuid(0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error())
                        .context("become root in the user namespace (is 0 mapped?)");
                }
            }
        }
        if args.new_userns {
            // The uid change made us non-dumpable, which leaves /proc/self owned by the host's
            // root, unmapped here: writing the time offsets would be refused. The init turns
            // dumpable off again itself.
            prctl::set_dumpable(true)
                .map_err(|e| anyhow::anyhow!("prctl(PR_SET_DUMPABLE): errno {e}"))?;
        }
        let rest = plan.new - CloneFlags::CLONE_NEWUSER - CloneFlags::CLONE_NEWCGROUP;
        nix::sched::unshare(rest).with_context(|| format!("unshare namespaces {rest:?}"))?;
        if rest.contains(CloneFlags::from_bits_retain(libc::CLONE_NEWTIME)) {
            if let Some(l) = linux {
                namespaces::write_time_offsets(l)?;
            }
        }
        // The cgroup namespace is rooted where we are when it is made: after hull placed us.
        chan.expect(Msg::Go)?;
        if plan.new.contains(CloneFlags::CLONE_NEWCGROUP) {
            nix::sched::unshare(CloneFlags::CLONE_NEWCGROUP).context("unshare cgroup namespace")?;
        }
        let pid = namespaces::clone_sibling().context("clone the container init")?;
        if pid == 0 {
            init::run(args);
        }
        chan.send(&Msg::InitPid { pid })?;
        Ok(())
    })();
    chan.exit_child(res, 1)
}
