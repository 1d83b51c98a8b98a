//! hull: an OCI container runtime, and the library behind berth.

pub mod build;
pub mod cgroups;
pub mod compose;
pub mod engine;
pub mod image;
pub mod log;
pub mod network;
pub mod runtime;
pub mod seccomp;
pub mod sys;
