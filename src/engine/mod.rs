//! berth's engine, daemonless: each container is a directory of JSON
//! records plus a small monitor process that owns its stdio and lifetime.
//! A library: typed options in, typed reports and `EngineError` out; no
//! flag parsing and no printing (that is `src/bin/berth/`).
//!
//! - `create`: `CreateOptions` -> a container on disk (where containers get created)
//! - `run`: start / restart / run (spawns the monitor)
//! - `lifecycle`: stop, kill, wait, remove, pause, rename, prune
//! - `monitor`: the per-container supervisor process (`__monitor`)
//! - `query`: list with filters, inspect, port, top, stats
//! - `exec`: exec, cp, diff
//! - `images`, `networks`, `volumes`: the same for those objects
//! - `health`: the health check the monitor runs; `events`: the event log
//! - `runtime`: the OCI runtime's command line, the only way to the container's cgroup
//! - `opts`: docker's flag syntax (-p, -v, --mount, --restart, ...) to typed values
//! - `container`, `spec`, `rootfs`, `logs`, `attach`: records, config.json, overlay, logs, stdio

pub mod attach;
pub mod commit;
pub mod container;
pub mod create;
pub mod error;
pub mod events;
pub mod exec;
pub mod health;
pub mod images;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod networks;
pub mod opts;
pub mod query;
pub mod rootfs;
pub mod run;
pub mod runtime;
pub mod spec;
pub mod volumes;

pub use container::{Container, Health, HealthProbe, HealthStatus, Status};
pub use create::{CreateOptions, Resources};
pub use error::{EngineError, Op};
pub use exec::ExecOptions;
pub use opts::RestartPolicy;
pub use query::{Filter, Filters};
