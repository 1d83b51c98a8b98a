//! Per-layer progress: indicatif bars on a terminal, plain lines otherwise
//! (so logs and tests see one line per state change, not redraw noise).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Read};
use std::sync::Mutex;

pub struct Progress {
    multi: Option<MultiProgress>,
    quiet: bool,
    out: Mutex<()>,
}

pub struct Task {
    bar: Option<ProgressBar>,
    name: String,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        let multi = (!quiet && std::io::stdout().is_terminal())
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        Progress {
            multi,
            quiet,
            out: Mutex::new(()),
        }
    }

    pub fn println(&self, msg: &str) {
        if self.quiet {
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None => {
                let _g = self.out.lock();
                println!("{msg}");
            }
        }
    }

    pub fn task(&self, name: &str, total: u64, msg: &str) -> Task {
        let bar = self.multi.as_ref().map(|m| {
            let pb = m.add(ProgressBar::new(total));
            pb.set_style(
                ProgressStyle::with_template(
                    "{prefix}: {msg:<18} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            pb.set_prefix(name.to_string());
            pb.set_message(msg.to_string());
            pb
        });
        let t = Task {
            bar,
            name: name.to_string(),
            quiet: self.quiet,
        };
        if t.bar.is_none() && !self.quiet {
            self.println(&format!("{name}: {msg}"));
        }
        t
    }
}

impl Task {
    pub fn set(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None if !self.quiet => println!("{}: {msg}", self.name),
            None => {}
        }
    }
    pub fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
    pub fn done(&self, msg: &str) {
        match &self.bar {
            Some(b) => {
                b.set_position(b.length().unwrap_or(0));
                b.finish_with_message(msg.to_string());
            }
            None if !self.quiet => println!("{}: {msg}", self.name),
            None => {}
        }
    }
    pub fn fail(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.abandon_with_message(msg.to_string()),
            None if !self.quiet => println!("{}: {msg}", self.name),
            None => {}
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
