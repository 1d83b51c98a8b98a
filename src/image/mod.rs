//! berth's image handling: references, a content-addressed OCI-layout
//! store with unpacked layer snapshots, a registry client and archives.

pub mod archive;
pub mod auth;
pub mod digest;
pub mod interrupt;
pub mod layer;
pub mod progress;
pub mod reference;
pub mod registry;
pub mod rootdir;
pub mod sizelimit;
pub mod store;
pub mod types;
