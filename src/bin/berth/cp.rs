//! `cp SRC DST`: CONTAINER:PATH on one side, a host path or `-` (a tar
//! stream on stdin/stdout) on the other.

use anyhow::Result;
use clap::Args;
use std::path::Path;

use hull::engine::cp::{self, CpOptions, Endpoint};

#[derive(Args)]
pub struct CpArgs {
    /// Archive mode: keep uid/gid of the source
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow a symlink given as SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// CONTAINER:SRC_PATH, a host path, or - (a tar on stdin)
    pub src: String,
    /// CONTAINER:DEST_PATH, a host path, or - (a tar on stdout)
    pub dst: String,
}

pub fn cp(root: &Path, a: CpArgs) -> Result<i32> {
    let o = CpOptions {
        archive: a.archive,
        follow: a.follow_link,
    };
    let mut stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    cp::cp(
        root,
        &Endpoint::parse(&a.src),
        &Endpoint::parse(&a.dst),
        o,
        &mut stdin,
        &mut stdout,
    )?;
    Ok(0)
}
