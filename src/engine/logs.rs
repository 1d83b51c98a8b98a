//! docker's json-file log driver: one JSON object per line, rotated by
//! size into `<file>.1 .. <file>.N-1`.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

#[derive(Serialize, Deserialize)]
pub struct Line {
    pub log: String,
    pub stream: String,
    pub time: String,
}

pub struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: Option<u64>,
    max_file: u32,
    /// Partial lines per stream, flushed on newline as docker does.
    pending: [Vec<u8>; 2],
}

impl Writer {
    pub fn open(path: &Path, max_size: Option<u64>, max_file: u32) -> Result<Writer> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening log {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_file: max_file.max(1),
            pending: [Vec::new(), Vec::new()],
        })
    }

    pub fn write(&mut self, stream: usize, data: &[u8]) {
        self.pending[stream].extend_from_slice(data);
        while let Some(i) = self.pending[stream].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending[stream].drain(..=i).collect();
            self.emit(stream, &line);
        }
        // Bound memory for output without newlines.
        if self.pending[stream].len() > 16 * 1024 {
            let line = std::mem::take(&mut self.pending[stream]);
            self.emit(stream, &line);
        }
    }

    pub fn flush(&mut self) {
        for s in 0..2 {
            if !self.pending[s].is_empty() {
                let line = std::mem::take(&mut self.pending[s]);
                self.emit(s, &line);
            }
        }
    }

    fn emit(&mut self, stream: usize, line: &[u8]) {
        let rec = Line {
            log: String::from_utf8_lossy(line).into_owned(),
            stream: if stream == 0 { "stdout" } else { "stderr" }.into(),
            time: crate::sys::now_rfc3339(),
        };
        let Ok(mut enc) = serde_json::to_vec(&rec) else {
            return;
        };
        enc.push(b'\n');
        if let Some(max) = self.max_size {
            if self.size > 0 && self.size + enc.len() as u64 > max {
                self.rotate();
            }
        }
        if self.file.write_all(&enc).is_ok() {
            self.size += enc.len() as u64;
        }
    }

    fn rotate(&mut self) {
        let name = |i: u32| PathBuf::from(format!("{}.{i}", self.path.display()));
        if self.max_file > 1 {
            for i in (1..self.max_file - 1).rev() {
                let _ = fs::rename(name(i), name(i + 1));
            }
            let _ = fs::rename(&self.path, name(1));
        }
        if let Ok(f) = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)
        {
            self.file = f;
            self.size = 0;
        }
    }
}

/// Rotated files first (oldest first), then the live one.
/// `logs` of a container whose log driver keeps nothing fails as docker's does.
pub fn check_readable(c: &super::container::Container) -> Result<()> {
    if c.config.host.log_driver == super::hostconfig::LogDriver::None {
        anyhow::bail!("configured logging driver does not support reading");
    }
    Ok(())
}

pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for i in (1..100).rev() {
        let p = PathBuf::from(format!("{}.{i}", path.display()));
        if p.exists() {
            v.push(p);
        }
    }
    v.push(path.to_path_buf());
    v
}

/// `logs [--tail N] [-f]`: hands each record to `emit`; `running` is
/// polled to know when to stop following.
pub fn show(
    path: &Path,
    tail: Option<usize>,
    follow: bool,
    running: &dyn Fn() -> bool,
    emit: &mut dyn FnMut(&Line),
) -> Result<()> {
    let mut lines: Vec<Line> = Vec::new();
    for f in files(path) {
        let Ok(fh) = File::open(&f) else { continue };
        for l in BufReader::new(fh).lines().map_while(|l| l.ok()) {
            if let Ok(rec) = serde_json::from_str::<Line>(&l) {
                lines.push(rec);
            }
        }
    }
    let skip = tail.map(|n| lines.len().saturating_sub(n)).unwrap_or(0);
    for l in &lines[skip..] {
        emit(l);
    }
    if !follow {
        return Ok(());
    }
    let mut f = File::open(path).with_context(|| format!("opening log {}", path.display()))?;
    let mut pos = f.seek(SeekFrom::End(0)).unwrap_or(0);
    let mut partial = String::new();
    loop {
        let alive = running();
        let len = fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len < pos {
            // Rotated: the live file was recreated.
            if let Ok(nf) = File::open(path) {
                f = nf;
            }
            pos = 0;
        }
        if len > pos {
            f.seek(SeekFrom::Start(pos)).ok();
            let mut r = BufReader::new(&f);
            let mut buf = String::new();
            while r.read_line(&mut buf).unwrap_or(0) > 0 {
                pos += buf.len() as u64;
                partial.push_str(&buf);
                if partial.ends_with('\n') {
                    if let Ok(rec) = serde_json::from_str::<Line>(partial.trim_end()) {
                        emit(&rec);
                    }
                    partial.clear();
                }
                buf.clear();
            }
        } else if !alive {
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
