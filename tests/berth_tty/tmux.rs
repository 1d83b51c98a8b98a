//! A private tmux server (its own socket in a tempdir) with one session
//! running `sh`: the tests type into a real pty and read the screen. The
//! server is killed on drop, failing test or not.

use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::berth_common::ctr::Env;
use crate::berth_common::BERTH;

pub struct Tmux {
    sock: PathBuf,
    name: String,
    _dir: tempfile::TempDir,
}

impl Tmux {
    /// A session of `cols`x`rows` whose shell has `berth` on hand as `$B`
    /// (with the test's root and network env).
    pub fn start(e: &Env, cols: u16, rows: u16) -> Tmux {
        let dir = tempfile::Builder::new()
            .prefix("berth-tmux-")
            .tempdir()
            .expect("tempdir");
        let t = Tmux {
            sock: dir.path().join("sock"),
            name: format!("berth-tty-{}-{}", std::process::id(), e.idx),
            _dir: dir,
        };
        let b = format!("{BERTH} --root {}", e.root.to_str().expect("utf8 root"));
        let out = t
            .cmd()
            .args(["new-session", "-d", "-s", &t.name])
            .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
            .args(["-e", &format!("B={b}")])
            .args(["-e", &format!("BERTH_BRIDGE={}", e.bridge())])
            .args(["-e", &format!("BERTH_BRIDGE_SUBNET={}", e.subnet())])
            .args(["-e", "BERTH_DNS_UPSTREAM=none"])
            .args(["sh"])
            .output()
            .expect("tmux new-session");
        assert!(out.status.success(), "tmux: {out:?}");
        t.tmux(&["set-option", "-t", &t.name, "status", "off"]);
        // Typed before the prompt, a line would share the prompt's line.
        t.wait_for("#");
        t
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("tmux");
        c.arg("-S").arg(&self.sock);
        c
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = self.cmd().args(args).output().expect("tmux");
        assert!(out.status.success(), "tmux {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types a line and Enter.
    pub fn line(&self, text: &str) {
        self.tmux(&["send-keys", "-t", &self.name, "-l", text]);
        self.tmux(&["send-keys", "-t", &self.name, "Enter"]);
    }

    /// Sends tmux key names (`C-p`, `C-c`, `x`, ...).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.name];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-J", "-S", "-200", "-t", &self.name])
    }

    /// Waits until the screen has `needle` `count` times; the screen.
    pub fn wait_for_n(&self, needle: &str, count: usize) -> String {
        self.within(needle, count, Duration::from_secs(20))
            .unwrap_or_else(|s| panic!("no {needle:?} (x{count}) on screen:\n{s}"))
    }

    /// The screen once it has `needle` `count` times, or Err(screen) after `limit`.
    pub fn within(&self, needle: &str, count: usize, limit: Duration) -> Result<String, String> {
        let end = Instant::now() + limit;
        loop {
            let s = self.screen();
            if s.matches(needle).count() >= count {
                return Ok(s);
            }
            if Instant::now() > end {
                return Err(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn wait_for(&self, needle: &str) -> String {
        self.wait_for_n(needle, 1)
    }

    /// Resizes the window (and so the pane: the status line is off), and
    /// waits until tmux applied it to the pane's pty (it does so later, from
    /// its event loop).
    pub fn resize(&self, cols: u16, rows: u16) {
        self.tmux(&[
            "resize-window",
            "-t",
            &self.name,
            "-x",
            &cols.to_string(),
            "-y",
            &rows.to_string(),
        ]);
        let tty = self.tmux(&["display-message", "-p", "-t", &self.name, "#{pane_tty}"]);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOCTTY)
            .open(tty.trim())
            .expect("opening the pane's tty");
        let end = Instant::now() + Duration::from_secs(10);
        while hull::engine::tty::window_size(f.as_fd()) != Some((rows, cols)) {
            assert!(Instant::now() < end, "tmux did not resize the pane's pty");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The pane's size as `stty size` prints it: "rows cols".
    pub fn pane_size(&self) -> String {
        self.tmux(&[
            "display-message",
            "-p",
            "-t",
            &self.name,
            "#{pane_height} #{pane_width}",
        ])
        .trim()
        .to_string()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd().args(["kill-server"]).output();
    }
}
