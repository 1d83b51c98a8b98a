//! berth's engine, daemonless: each container is a directory of JSON
//! records plus a small monitor process that owns its stdio and lifetime.
//! A library: typed options in, typed reports and `EngineError` out; no
//! flag parsing and no printing (that is `src/bin/berth/`).
//!
//! - `create`: `CreateOptions` -> a container on disk (where containers get created)
//! - `create_txn`: the atomic write of a new container dir, and the sweep of killed creates
//! - `recover`: orphaned containers (monitor killed) get a new monitor; run by the CLI first
//! - `run`: start / restart / run (spawns the monitor)
//! - `lifecycle`: stop, kill, wait, remove, pause, rename, prune
//! - `monitor`: the per-container supervisor process (`__monitor`)
//! - `query`: list with filters, inspect, port, top, stats
//! - `exec`: exec, diff; `exec_tty`: a foreground `exec -t` whose pty the caller relays;
//!   `cp`: cp to/from a container or a tar stream
//! - `images`, `networks`, `volumes`: the same for those objects
//! - `health`: the health check the monitor runs; `events`: the event log
//! - `system`: info, df, system prune; `update`: update and wait --condition
//! - `runtime`: the OCI runtime's command line, the only way to the container's cgroup
//! - `opts`: docker's flag syntax (-p, -v, --mount, --restart, ...) to typed values
//! - `hostconfig`, `spec_extra`, `etc_files`: the finer run flags, their config.json and /etc files
//! - `container`, `spec`, `rootfs`, `logs`, `attach`: records, config.json, overlay, logs, stdio
//! - `tty`: detach keys (docker's syntax and the matcher) and pty window sizes

pub mod attach;
pub mod commit;
pub mod container;
pub mod cp;
mod cp_tree;
pub mod create;
pub mod create_txn;
pub mod error;
pub mod etc_files;
pub mod events;
pub mod exec;
pub mod exec_tty;
pub mod health;
pub mod hostconfig;
pub mod images;
pub mod lifecycle;
pub mod logs;
pub mod monitor;
pub mod networks;
pub mod opts;
pub mod query;
pub mod recover;
pub mod rootfs;
pub mod run;
pub mod runtime;
pub mod spec;
pub mod spec_extra;
pub mod system;
pub mod tty;
pub mod update;
pub mod volumes;

pub use container::{Container, Health, HealthProbe, HealthStatus, Status};
pub use create::{CreateOptions, Resources};
pub use error::{EngineError, Op};
pub use exec::ExecOptions;
pub use opts::RestartPolicy;
pub use query::{Filter, Filters};
