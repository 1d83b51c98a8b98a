//! Where a container's state lives (`<root>/<id>/state.json`), how it is locked, and how its
//! status is derived from the kernel rather than trusted from the file.

use anyhow::{Context, Result};
use oci_spec::runtime::Hooks;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// Errors callers (and engines parsing our messages, like go-runc) branch on.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {0:?} does not exist")]
    NotExist(String),
    #[error("container with id exists: {0}")]
    Exists(String),
    #[error("invalid container id {0:?}: only [A-Za-z0-9][A-Za-z0-9_.+-]* is allowed")]
    InvalidId(String),
    #[error("container not running")]
    NotRunning,
    #[error("container {id:?}: state.json is unreadable ({why})")]
    Corrupt { id: String, why: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What hull records about a container. The first fields are the OCI state; the rest is what
/// later commands need without re-reading a bundle that may have changed since.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    pub oci_version: String,
    pub id: String,
    pub pid: i32,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub created: String,
    pub owner: String,
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub annotations: HashMap<String, String>,
    /// Start time of `pid` in clock ticks since boot: a recycled pid has another one.
    pub start_time: u64,
    pub cgroup_path: String,
    #[serde(default)]
    pub hooks: Option<Hooks>,
    /// Whether the container has a pid namespace of its own (so killing init kills all).
    #[serde(default)]
    pub own_pid_ns: bool,
    #[serde(default)]
    pub rootless: bool,
    /// The systemd unit holding the cgroup (`--systemd-cgroup`), stopped on delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_unit: Option<crate::cgroups::systemd::UnitPath>,
}

/// The state that `hull state` prints and hooks receive on stdin.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'a str,
    pub bundle: &'a Path,
    pub rootfs: &'a Path,
    pub created: &'a str,
    pub owner: &'a str,
    #[serde(skip_serializing_if = "HashMap::is_empty")]
    pub annotations: &'a HashMap<String, String>,
}

pub fn validate_id(id: &str) -> Result<(), StateError> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.+-".contains(c));
    if first_ok && rest_ok && id.len() <= 1024 {
        Ok(())
    } else {
        Err(StateError::InvalidId(id.to_string()))
    }
}

/// A container directory held under an exclusive flock for the life of this value, so two
/// commands on one id never interleave.
pub struct Container {
    pub dir: PathBuf,
    pub state: ContainerState,
    _lock: File,
}

pub const STATE_FILE: &str = "state.json";
/// The unix socket the init waits on between create and start; present means "created".
pub const START_SOCKET: &str = "start.sock";
/// What `delete --force` needs to undo a container whose state.json was never written or is
/// unreadable, recorded by `create` before it makes any of it.
pub const INTENT_FILE: &str = "intent.json";

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    pub cgroup_path: String,
    /// The init's pid and start time, recorded only when the container has no cgroup to find
    /// its processes by (rootless without a delegated one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<(i32, u64)>,
}

/// Records the intent in a container directory, by rename: it may replace an earlier record.
pub fn write_intent(dir: &Path, intent: &Intent) -> Result<()> {
    let tmp = dir.join(".intent.json.tmp");
    let path = dir.join(INTENT_FILE);
    std::fs::write(&tmp, serde_json::to_vec(intent)?)
        .with_context(|| format!("write {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("rename to {}", path.display()))
}

/// What is left of a container without a readable state.json: its locked directory and the
/// intent record, if create got that far.
pub struct Remnant {
    pub dir: PathBuf,
    pub intent: Option<Intent>,
    _lock: File,
}

impl Remnant {
    /// The remnant of `id`, or None when its directory is gone.
    pub fn open(root: &Path, id: &str) -> Result<Option<Remnant>> {
        validate_id(id)?;
        let dir = root.join(id);
        let lock = match lock_dir(&dir, libc::LOCK_EX) {
            Ok(l) => l,
            Err(_) if !dir.exists() => return Ok(None),
            Err(e) => return Err(e),
        };
        let intent = std::fs::read(dir.join(INTENT_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        Ok(Some(Remnant {
            dir,
            intent,
            _lock: lock,
        }))
    }

    pub fn state_is_readable(&self) -> bool {
        std::fs::read(self.dir.join(STATE_FILE))
            .is_ok_and(|b| serde_json::from_slice::<ContainerState>(&b).is_ok())
    }

    pub fn remove_dir(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).with_context(|| format!("remove {}", self.dir.display()))
    }
}

/// Whether `<root>/<id>` exists and no command holds it (a create that died, not one running).
pub fn is_abandoned(root: &Path, id: &str) -> bool {
    lock_dir(&root.join(id), libc::LOCK_EX | libc::LOCK_NB).is_ok()
}

fn lock_dir(dir: &Path, how: libc::c_int) -> Result<File> {
    let f = File::open(dir).with_context(|| format!("open {}", dir.display()))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(f.as_raw_fd(), how) } != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("lock {}", dir.display()));
    }
    Ok(f)
}

/// A path for bind/connect of socket `name` in the directory open as `dir`: the real one when it
/// fits sun_path, else one through /proc/self/fd, since engines put state roots deep enough
/// (dockerd's exec-root) that `<root>/<64-hex id>/start.sock` passes the 108-byte limit.
pub fn socket_path(dir_path: &Path, dir: &File, name: &str) -> PathBuf {
    let full = dir_path.join(name);
    if full.as_os_str().len() < 100 {
        full
    } else {
        PathBuf::from(format!("/proc/self/fd/{}/{name}", dir.as_raw_fd()))
    }
}

/// Creates `<root>/<id>` atomically (mkdir fails if the id is taken) and locks it.
pub fn create_dir(root: &Path, id: &str) -> Result<(PathBuf, File)> {
    validate_id(id)?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .with_context(|| format!("create state root {}", root.display()))?;
    let dir = root.join(id);
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(StateError::Exists(id.to_string()).into())
        }
        Err(e) => return Err(e).with_context(|| format!("create {}", dir.display())),
    }
    let lock = lock_dir(&dir, libc::LOCK_EX)?;
    Ok((dir, lock))
}

impl Container {
    pub fn new(dir: PathBuf, state: ContainerState, lock: File) -> Self {
        Container {
            dir,
            state,
            _lock: lock,
        }
    }

    pub fn load(root: &Path, id: &str) -> Result<Container> {
        validate_id(id)?;
        let dir = root.join(id);
        let lock = match lock_dir(&dir, libc::LOCK_EX) {
            Ok(l) => l,
            Err(_) => return Err(StateError::NotExist(id.to_string()).into()),
        };
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StateError::NotExist(id.to_string()).into())
            }
            Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
        };
        let state = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
            id: id.to_string(),
            why: e.to_string(),
        })?;
        Ok(Container {
            dir,
            state,
            _lock: lock,
        })
    }

    /// Writes state.json by rename, so a reader never sees half a file.
    pub fn save(&self) -> Result<()> {
        let tmp = self.dir.join(".state.json.tmp");
        let path = self.dir.join(STATE_FILE);
        // One write: serde_json on an unbuffered file would issue one syscall per token.
        let bytes = serde_json::to_vec(&self.state)?;
        let mut f = File::create(&tmp).with_context(|| format!("create {}", tmp.display()))?;
        f.write_all(&bytes)
            .with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("rename to {}", path.display()))?;
        Ok(())
    }

    /// Where to bind or connect socket `name` of this container's directory.
    pub fn socket_path(&self, name: &str) -> PathBuf {
        socket_path(&self.dir, &self._lock, name)
    }

    pub fn is_alive(&self) -> bool {
        process_start_time(self.state.pid) == Some(self.state.start_time)
    }

    pub fn status(&self, frozen: impl FnOnce() -> bool) -> Status {
        if !self.is_alive() {
            Status::Stopped
        } else if self.dir.join(START_SOCKET).exists() && self.init_listens() {
            Status::Created
        } else if frozen() {
            Status::Paused
        } else {
            Status::Running
        }
    }

    /// Whether the init still waits for start, asked of the kernel: its listening socket closes
    /// when it execs, so a start that died after waking it leaves the file but no listener. A
    /// probe connection that sends nothing is harmless: the init goes back to waiting.
    fn init_listens(&self) -> bool {
        use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
        let path = self.socket_path(START_SOCKET);
        let Ok(addr) = UnixAddr::new(&path) else {
            return true;
        };
        let Ok(sock) = socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
            None,
        ) else {
            return true;
        };
        // A full backlog (EAGAIN) still means a listener; anything unexpected keeps the file's
        // word.
        !matches!(
            connect(sock.as_raw_fd(), &addr),
            Err(nix::errno::Errno::ECONNREFUSED) | Err(nix::errno::Errno::ENOENT)
        )
    }

    pub fn oci_state<'a>(&'a self, status: Status) -> OciState<'a> {
        let s = &self.state;
        OciState {
            oci_version: &s.oci_version,
            id: &s.id,
            pid: if status == Status::Stopped { 0 } else { s.pid },
            status: status.as_str(),
            bundle: &s.bundle,
            rootfs: &s.rootfs,
            created: &s.created,
            owner: &s.owner,
            annotations: &s.annotations,
        }
    }

    pub fn remove_dir(self) -> Result<()> {
        std::fs::remove_dir_all(&self.dir).with_context(|| format!("remove {}", self.dir.display()))
    }
}

/// The start time of a live (non-zombie) process, from /proc/<pid>/stat field 22.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parens: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Ids of every container directory under `root` (with a state or an intent record), sorted.
pub fn list_ids(root: &Path) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ids),
        Err(e) => return Err(e).with_context(|| format!("read {}", root.display())),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let dir = entry.path();
        // A directory with only the intent record is a create that died before state.json.
        if validate_id(&name).is_ok()
            && (dir.join(STATE_FILE).exists() || dir.join(INTENT_FILE).exists())
        {
            ids.push(name);
        }
    }
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_become_paths_are_rejected() {
        for bad in [
            "", "..", "../x", "a/b", "/abs", ".hidden", "-flag", "a b", "a\0b",
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["a", "A1", "web_1.2+3-x", "0"] {
            validate_id(good).unwrap();
        }
    }

    #[test]
    fn own_process_start_time_is_stable() {
        let me = std::process::id() as i32;
        let t = process_start_time(me).unwrap();
        assert_eq!(process_start_time(me), Some(t));
        assert_eq!(process_start_time(0), None);
    }

    #[test]
    fn a_remnant_carries_its_intent_and_is_abandoned_only_when_unlocked() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, lock) = create_dir(tmp.path(), "c1").unwrap();
        write_intent(
            &dir,
            &Intent {
                cgroup_path: "/hull/c1".into(),
                init: None,
            },
        )
        .unwrap();
        assert!(!is_abandoned(tmp.path(), "c1"));
        drop(lock);
        assert!(is_abandoned(tmp.path(), "c1"));
        assert_eq!(list_ids(tmp.path()).unwrap(), vec!["c1".to_string()]);
        let r = Remnant::open(tmp.path(), "c1").unwrap().unwrap();
        assert_eq!(r.intent.as_ref().unwrap().cgroup_path, "/hull/c1");
        assert!(!r.state_is_readable());
        std::fs::write(dir.join(STATE_FILE), "{\"ociVersion\":").unwrap();
        assert!(!r.state_is_readable());
        r.remove_dir().unwrap();
        assert!(Remnant::open(tmp.path(), "c1").unwrap().is_none());
        assert!(!is_abandoned(tmp.path(), "c1"));
    }

    #[test]
    fn create_dir_refuses_a_taken_id() {
        let tmp = tempfile::tempdir().unwrap();
        let (_dir, _lock) = create_dir(tmp.path(), "c1").unwrap();
        let err = create_dir(tmp.path(), "c1").unwrap_err();
        assert!(err.to_string().contains("exists"));
    }
}
