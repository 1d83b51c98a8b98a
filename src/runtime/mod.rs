//! The OCI runtime: from a bundle to a running container and back.

pub mod cgroup_cmds;
pub mod checkpoint;
pub mod console;
pub mod create;
pub mod exec;
pub mod exec_cgroup;
pub mod fds;
pub mod features;
pub mod finish;
pub mod hooks;
pub mod idmap;
pub mod init;
pub mod lifecycle;
pub mod mount_opts;
pub mod mountapi;
pub mod namespaces;
pub mod process;
pub mod resolve;
pub mod rootfs;
pub mod sealed;
pub mod spec;
pub mod state;
pub mod supervise;
pub mod sync;
pub mod template;
