//! Where pull/push progress goes: a `Sink` the front end installs (berth's
//! CLI: bars on a terminal, plain lines otherwise; an API server could send
//! JSON events). The library itself never prints; with no sink installed, or
//! quiet, progress is dropped.

use std::io::Read;
use std::sync::{Arc, OnceLock};

/// A progress consumer.
pub trait Sink: Send + Sync {
    /// A status line ("Digest: ...").
    fn line(&self, msg: &str);
    /// A unit of work (one layer) of `total` bytes, starting in state `msg`.
    fn task(&self, name: &str, total: u64, msg: &str) -> Box<dyn TaskSink>;
}

/// One layer's progress.
pub trait TaskSink: Send + Sync {
    fn set(&self, msg: &str);
    fn inc(&self, bytes: u64);
    fn done(&self, msg: &str);
    fn fail(&self, msg: &str);
}

static SINK: OnceLock<Arc<dyn Sink>> = OnceLock::new();

/// Installs the process's progress sink (first call wins).
pub fn set_sink(s: Arc<dyn Sink>) {
    let _ = SINK.set(s);
}

pub struct Progress {
    sink: Option<Arc<dyn Sink>>,
}

pub struct Task {
    inner: Option<Box<dyn TaskSink>>,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            sink: if quiet { None } else { SINK.get().cloned() },
        }
    }

    pub fn println(&self, msg: &str) {
        if let Some(s) = &self.sink {
            s.line(msg);
        }
    }

    pub fn task(&self, name: &str, total: u64, msg: &str) -> Task {
        Task {
            inner: self.sink.as_ref().map(|s| s.task(name, total, msg)),
        }
    }
}

impl Task {
    pub fn set(&self, msg: &str) {
        if let Some(t) = &self.inner {
            t.set(msg);
        }
    }
    pub fn inc(&self, n: u64) {
        if let Some(t) = &self.inner {
            t.inc(n);
        }
    }
    pub fn done(&self, msg: &str) {
        if let Some(t) = &self.inner {
            t.done(msg);
        }
    }
    pub fn fail(&self, msg: &str) {
        if let Some(t) = &self.inner {
            t.fail(msg);
        }
    }
}

/// Counts bytes read into a task's bar.
pub struct ProgressReader<'a, R> {
    pub inner: R,
    pub task: &'a Task,
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.task.inc(n as u64);
        Ok(n)
    }
}
