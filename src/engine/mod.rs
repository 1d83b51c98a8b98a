//! berth's containers, daemonless: each container is a directory of JSON
//! records plus a small monitor process that owns its stdio and lifetime.

pub mod attach;
pub mod cli;
pub mod container;
pub mod fsutil;
pub mod logs;
pub mod monitor;
pub mod opts;
pub mod rootfs;
pub mod runtime;
pub mod spec;
pub mod volumes;
