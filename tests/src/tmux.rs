//! A real terminal for the real `memctl`: a tmux server of the test's own (`-S`), one
//! session running memctl, keys sent with `send-keys`, the screen read with
//! `capture-pane`. The server is killed when the value is dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Whether tmux is installed (`.ci/run` installs it).
pub fn available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// One tmux server with one session.
pub struct Tmux {
    socket: PathBuf,
    pub session: String,
}

impl Tmux {
    /// Starts `command` (a shell command line) in a `width` x `height` terminal, with
    /// `env` set. When the program exits, the shell prints `[exited N]` on the terminal
    /// as the program left it, and stays.
    pub fn start(dir: &Path, command: &str, width: u16, height: u16, env: &[(&str, &str)]) -> Tmux {
        // A fresh socket each time: a server being killed may still hold the last one.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmux = Tmux {
            socket: dir.join(format!("tmux-{n}.sock")),
            session: "memctl".into(),
        };
        let mut args: Vec<String> = vec![
            "-f".into(),
            "/dev/null".into(),
            "new-session".into(),
            "-d".into(),
            "-s".into(),
            tmux.session.clone(),
            "-x".into(),
            width.to_string(),
            "-y".into(),
            height.to_string(),
        ];
        for (k, v) in env {
            args.push("-e".into());
            args.push(format!("{k}={v}"));
        }
        args.push(format!("{command}; echo \"[exited $?]\"; sleep 600"));
        let out = tmux.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "tmux new-session: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }

    /// Sends keys in tmux's notation (`Enter`, `Escape`, `Tab`, `q`, ...), one by one.
    pub fn keys(&self, keys: &[&str]) {
        for key in keys {
            let out = self.run(&["send-keys", "-t", &self.session, key]);
            assert!(
                out.status.success(),
                "send-keys {key}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    /// Types text literally.
    pub fn type_text(&self, text: &str) {
        let out = self.run(&["send-keys", "-t", &self.session, "-l", text]);
        assert!(out.status.success());
    }

    /// The screen as text.
    pub fn screen(&self) -> String {
        let out = self.run(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text`; returns the screen. Panics with the last screen.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> String {
        self.wait_until(text, timeout, |screen| screen.contains(text))
    }

    /// Waits until `check` holds for the screen.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let screen = self.screen();
            if check(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the screen did not show {what:?} within {timeout:?}; it shows:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The program's exit status, once it has exited (the shell's `[exited N]` line).
    pub fn exit_status(&self) -> Option<i32> {
        let screen = self.screen();
        let at = screen.find("[exited ")?;
        screen[at + 8..].split(']').next()?.trim().parse().ok()
    }

    /// The pid of the program (the pane's shell's child).
    pub fn program_pid(&self) -> u32 {
        let out = self.run(&["display-message", "-p", "-t", &self.session, "#{pane_pid}"]);
        let shell: u32 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("pane pid");
        let children = std::fs::read_to_string(format!("/proc/{shell}/task/{shell}/children"))
            .unwrap_or_default();
        children
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(shell)
    }

    /// Copies everything the program writes to the terminal, from now on, to `path`.
    pub fn record_output(&self, path: &Path) {
        let out = self.run(&[
            "pipe-pane",
            "-o",
            "-t",
            &self.session,
            &format!("cat >> '{}'", path.display()),
        ]);
        assert!(out.status.success());
    }

    /// Changes the terminal size.
    pub fn resize(&self, width: u16, height: u16) {
        self.run(&[
            "resize-window",
            "-t",
            &self.session,
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}
