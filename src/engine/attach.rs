//! The attach protocol between berth clients and a container's monitor,
//! over `<container>/attach.sock`. Frames are `[kind u8][len u32 BE][data]`.
//! Monitor to client: 1 stdout, 2 stderr, 3 exit code (decimal text).
//! Client to monitor: 0 stdin data, 1 stdin closed, 2 window size (rows, cols u16 BE).

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const EXIT: u8 = 3;
pub const STDIN: u8 = 0;
pub const STDIN_EOF: u8 = 1;
pub const RESIZE: u8 = 2;

pub fn write_frame(w: &mut impl Write, kind: u8, data: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(5 + data.len());
    buf.push(kind);
    buf.extend_from_slice(&(data.len() as u32).to_be_bytes());
    buf.extend_from_slice(data);
    w.write_all(&buf)
}

pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut h = [0u8; 5];
    match r.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
    let mut data = vec![0u8; len];
    r.read_exact(&mut data)?;
    Ok(Some((h[0], data)))
}

pub fn connect(sock: &Path) -> Result<UnixStream> {
    let short = crate::sys::sock_path(sock)?;
    UnixStream::connect(&short.path).with_context(|| format!("attaching to {}", sock.display()))
}
