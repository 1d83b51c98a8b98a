//! hull: an OCI container runtime, and the library behind berth.
pub mod image;
