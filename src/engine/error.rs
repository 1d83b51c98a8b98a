//! The engine's typed errors. Each carries what a front end needs to pick
//! its own wording and code (the CLI: docker's messages and exit status; an
//! API: HTTP codes); `Display` is docker's wording.

use crate::network::PortInUse;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("No such container: {0}")]
    NoSuchContainer(String),
    #[error("multiple containers match ID prefix {0}")]
    AmbiguousId(String),
    #[error("Conflict. The container name \"/{name}\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name.")]
    NameConflict { name: String, id: String },
    #[error("{}", not_running(*.op, name))]
    NotRunning { name: String, op: Op },
    #[error("cannot remove container {0}: container is running: stop the container before removing or force remove")]
    IsRunning(String),
    #[error("Bind for {ip}:{port} failed: port is already allocated")]
    PortInUse { ip: String, port: u16 },
    /// Input the engine refuses (a bad option value, a conflicting pair).
    #[error("{0}")]
    Invalid(String),
    #[error("No such image: {0}")]
    NoSuchImage(String),
    /// `rmi NAME` of the last name of an image a container uses.
    #[error("conflict: unable to remove repository reference \"{reference}\" (must force) - container {container} is using its referenced image {image}")]
    ImageReferenced {
        reference: String,
        container: String,
        image: String,
    },
    /// `rmi ID` of an image a container uses (a running one's even with force, as docker).
    #[error("conflict: unable to delete {image} ({}) - image is being used by {} container {container}",
        if *.running { "cannot be forced" } else { "must be forced" },
        if *.running { "running" } else { "stopped" })]
    ImageUsed {
        image: String,
        container: String,
        running: bool,
    },
    /// `rmi ID` of an image with names in more than one repository.
    #[error("conflict: unable to delete {0} (must be forced) - image is referenced in multiple repositories")]
    ImageInRepositories(String),
    #[error("get {0}: no such volume")]
    NoSuchVolume(String),
    /// `volume rm` of a volume containers (their ids) mount.
    #[error("remove {name}: volume is in use - [{}]", .containers.join(", "))]
    VolumeInUse {
        name: String,
        containers: Vec<String>,
    },
    #[error(transparent)]
    Network(#[from] crate::network::NetworkError),
    /// The container's command does not exist (docker's exit 127).
    #[error("{0}")]
    CommandNotFound(String),
    /// The container's command exists but cannot be run (docker's exit 126).
    #[error("{0}")]
    CommandNotRunnable(String),
    /// The runtime could not create or start the container (docker's exit 125).
    #[error("{0}")]
    StartFailed(String),
    #[error(transparent)]
    Other(anyhow::Error),
}

/// The operation that needed a running container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Kill,
    Attach,
    Exec,
    Other,
}

fn not_running(op: Op, name: &str) -> String {
    match op {
        Op::Kill => format!("cannot kill container {name}: container is not running"),
        Op::Attach => format!("cannot attach to a stopped container {name}, start it first"),
        Op::Exec | Op::Other => format!("container {name} is not running"),
    }
}

impl EngineError {
    pub fn not_running(name: &str, op: Op) -> EngineError {
        EngineError::NotRunning {
            name: name.to_string(),
            op,
        }
    }
}

/// The one line a runtime's failed `create`/`start` means, out of its raw
/// log record (`time=... level=error msg="runc create failed: ...: exec: \"x\": ..."`).
pub fn runtime_message(raw: &str) -> String {
    let line = raw.trim().lines().last().unwrap_or("failed");
    let msg = match line.find("msg=\"") {
        Some(i) => {
            let body = &line[i + 5..];
            let body = body.rsplit_once('"').map_or(body, |(b, _)| b);
            body.replace("\\\"", "\"").replace("\\\\", "\\")
        }
        None => line.to_string(),
    };
    match msg.find("exec: ") {
        Some(i) => msg[i..].to_string(),
        None => msg,
    }
}

impl EngineError {
    /// A failed start classified as docker does: 127 not found, 126 not runnable, else 125.
    pub fn start_failed(msg: &str) -> EngineError {
        let m = msg.to_string();
        if m.starts_with("exec: ") {
            if m.ends_with("executable file not found in $PATH")
                || m.ends_with("no such file or directory")
            {
                return EngineError::CommandNotFound(m);
            }
            if m.ends_with("permission denied") || m.ends_with("exec format error") {
                return EngineError::CommandNotRunnable(m);
            }
        }
        EngineError::StartFailed(m)
    }

    /// The `.State.ExitCode` docker records for a start that failed with
    /// `msg`: 127 not found, 126 not runnable, 128 anything else.
    pub fn start_exit_code(msg: &str) -> i32 {
        match EngineError::start_failed(msg) {
            EngineError::CommandNotFound(_) => 127,
            EngineError::CommandNotRunnable(_) => 126,
            _ => 128,
        }
    }
}

/// Lower layers report with anyhow; typed errors they raised come back out.
impl From<anyhow::Error> for EngineError {
    fn from(e: anyhow::Error) -> EngineError {
        let e = match e.downcast::<EngineError>() {
            Ok(t) => return t,
            Err(e) => e,
        };
        let e = match e.downcast::<crate::image::store::NoSuchImage>() {
            Ok(n) => return EngineError::NoSuchImage(n.0),
            Err(e) => e,
        };
        let e = match e.downcast::<crate::network::NetworkError>() {
            Ok(n) => return EngineError::Network(n),
            Err(e) => e,
        };
        match e.downcast::<PortInUse>() {
            Ok(p) => EngineError::PortInUse {
                ip: p.ip,
                port: p.port,
            },
            Err(e) => EngineError::Other(e),
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// `bail!` for typed errors: `invalid!("...")` returns `EngineError::Invalid`.
#[macro_export]
macro_rules! invalid {
    ($($arg:tt)*) => {
        return Err($crate::engine::EngineError::Invalid(format!($($arg)*)).into())
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_errors_survive_anyhow() {
        let a: anyhow::Error = EngineError::NoSuchContainer("x".into()).into();
        assert!(matches!(
            EngineError::from(a),
            EngineError::NoSuchContainer(n) if n == "x"
        ));
        let p: anyhow::Error = PortInUse {
            ip: "0.0.0.0".into(),
            port: 80,
        }
        .into();
        assert!(matches!(
            EngineError::from(p),
            EngineError::PortInUse { port: 80, .. }
        ));
        let raw = r#"time="2026" level=error msg="runc create failed: unable to start container process: exec: \"nosuch\": executable file not found in $PATH""#;
        let m = runtime_message(raw);
        assert_eq!(m, r#"exec: "nosuch": executable file not found in $PATH"#);
        assert!(matches!(
            EngineError::start_failed(&m),
            EngineError::CommandNotFound(_)
        ));
        assert!(matches!(
            EngineError::start_failed(r#"exec: "/etc/passwd": permission denied"#),
            EngineError::CommandNotRunnable(_)
        ));
        assert!(matches!(
            EngineError::start_failed("mount failed"),
            EngineError::StartFailed(_)
        ));
        assert_eq!(EngineError::start_exit_code(&m), 127);
        assert_eq!(
            EngineError::start_exit_code(r#"exec: "/etc/passwd": permission denied"#),
            126
        );
        assert_eq!(EngineError::start_exit_code("mount failed"), 128);
        assert_eq!(
            EngineError::not_running("c", Op::Kill).to_string(),
            "cannot kill container c: container is not running"
        );
    }

    #[test]
    fn image_volume_network_errors_are_typed_with_dockers_words() {
        let e = EngineError::ImageReferenced {
            reference: "busybox".into(),
            container: "3f2a1b0c9d8e".into(),
            image: "1d34ffeaf190".into(),
        };
        assert_eq!(e.to_string(), "conflict: unable to remove repository reference \"busybox\" (must force) - container 3f2a1b0c9d8e is using its referenced image 1d34ffeaf190");
        let used = |running| EngineError::ImageUsed {
            image: "1d34ffeaf190".into(),
            container: "3f2a1b0c9d8e".into(),
            running,
        };
        assert_eq!(used(false).to_string(), "conflict: unable to delete 1d34ffeaf190 (must be forced) - image is being used by stopped container 3f2a1b0c9d8e");
        assert_eq!(used(true).to_string(), "conflict: unable to delete 1d34ffeaf190 (cannot be forced) - image is being used by running container 3f2a1b0c9d8e");
        let v = EngineError::VolumeInUse {
            name: "v".into(),
            containers: vec!["a1".into(), "b2".into()],
        };
        assert_eq!(v.to_string(), "remove v: volume is in use - [a1, b2]");
        assert_eq!(
            EngineError::NoSuchVolume("v".into()).to_string(),
            "get v: no such volume"
        );
        // A network error raised below the engine comes back out typed.
        let n: anyhow::Error = crate::network::NetworkError::InUse {
            name: "n".into(),
            id: "abc".into(),
            containers: vec!["c".into()],
        }
        .into();
        let n = EngineError::from(n.context("removing n"));
        assert!(
            matches!(&n, EngineError::Network(crate::network::NetworkError::InUse { name, .. }) if name == "n")
        );
        assert_eq!(
            n.to_string(),
            "error while removing network: network n id abc has active endpoints"
        );
        let ni: anyhow::Error = crate::image::store::NoSuchImage("web".into()).into();
        assert!(matches!(EngineError::from(ni), EngineError::NoSuchImage(n) if n == "web"));
        let nf: anyhow::Error = crate::network::NetworkError::NotFound("x".into()).into();
        assert_eq!(EngineError::from(nf).to_string(), "network x not found");
    }
}
