//! The terminal's progress sink for pull/push: indicatif bars on a
//! terminal, plain lines otherwise (so logs and tests see one line per
//! state change, not redraw noise).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use hull::image::progress::{Sink, TaskSink};

pub struct Terminal {
    multi: Option<MultiProgress>,
    out: Arc<Mutex<bool>>,
}

/// Installs the terminal sink for this process.
pub fn install() {
    install_on(false);
}

/// The same on stderr (for `run`, whose stdout is the container's).
pub fn install_stderr() {
    install_on(true);
}

fn install_on(stderr: bool) {
    let multi = if stderr {
        std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()))
    } else {
        std::io::stdout()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()))
    };
    hull::image::progress::set_sink(Arc::new(Terminal {
        multi,
        out: Arc::new(Mutex::new(stderr)),
    }));
}

fn line(out: &Mutex<bool>, msg: &str) {
    let g = out.lock();
    if g.as_deref().is_ok_and(|stderr| *stderr) {
        let _ = writeln!(std::io::stderr().lock(), "{msg}");
    } else {
        let _ = writeln!(std::io::stdout().lock(), "{msg}");
    }
}

impl Sink for Terminal {
    fn line(&self, msg: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None => line(&self.out, msg),
        }
    }

    fn task(&self, name: &str, total: u64, msg: &str) -> Box<dyn TaskSink> {
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
        if bar.is_none() {
            line(&self.out, &format!("{name}: {msg}"));
        }
        Box::new(Task {
            bar,
            name: name.to_string(),
            out: self.out.clone(),
        })
    }
}

struct Task {
    bar: Option<ProgressBar>,
    name: String,
    out: Arc<Mutex<bool>>,
}

impl TaskSink for Task {
    fn set(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.set_message(msg.to_string()),
            None => line(&self.out, &format!("{}: {msg}", self.name)),
        }
    }
    fn inc(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }
    fn done(&self, msg: &str) {
        match &self.bar {
            Some(b) => {
                b.set_position(b.length().unwrap_or(0));
                b.finish_with_message(msg.to_string());
            }
            None => line(&self.out, &format!("{}: {msg}", self.name)),
        }
    }
    fn fail(&self, msg: &str) {
        match &self.bar {
            Some(b) => b.abandon_with_message(msg.to_string()),
            None => line(&self.out, &format!("{}: {msg}", self.name)),
        }
    }
}
