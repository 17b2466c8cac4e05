//! Reaching a daemon on another server: `ssh -T DEST memctl bridge`.
//!
//! The remote `memctl bridge` copies its stdin and stdout to and from memd's socket
//! there, so the protocol runs unchanged over SSH's stdio: no port is opened, and the
//! daemon's peer check sees the SSH user (a view-only user stays view-only). SSH's own
//! configuration (keys, `~/.ssh/config`, jump hosts, ControlMaster) applies as it is;
//! memctl only adds `BatchMode` (never a password prompt inside the terminal UI), a
//! connect timeout and keep-alives (a dead link is noticed within a minute).
//!
//! When the session ends before the handshake, ssh's exit status and last stderr line
//! say why: [`SshFailure`].

use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};

/// The bridge's exit status when no daemon answers on the remote socket.
pub const BRIDGE_NO_DAEMON: i32 = 3;

/// A daemon reached over SSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEndpoint {
    /// What `ssh` is given: `user@host`, a `Host` alias of `~/.ssh/config`, ...
    pub destination: String,
    /// memd's socket on that server (default: the bridge's own default there).
    pub socket: Option<PathBuf>,
    /// Extra `ssh` arguments placed before the destination (`-p 2222`, `-F FILE`, ...).
    pub ssh_options: Vec<String>,
    /// The remote command that runs the bridge (default `memctl`).
    pub remote_memctl: Option<String>,
}

/// Why an SSH session ended before memd answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SshFailure {
    /// The server refused our keys (or the host key did not match).
    AuthenticationRefused,
    /// ssh could not reach the server (refused, timed out, no such host).
    Unreachable,
    /// SSH worked but no memd answers on the server's socket.
    MemdNotRunning,
    /// SSH worked but the server has no `memctl` to run the bridge.
    BridgeMissing,
    /// `ssh` itself could not be started here.
    NoSshClient,
    /// Anything else (the detail says what ssh said).
    Other,
}

impl fmt::Display for SshFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SshFailure::AuthenticationRefused => "authentication refused",
            SshFailure::Unreachable => "unreachable",
            SshFailure::MemdNotRunning => "memd not running there",
            SshFailure::BridgeMissing => "no memctl there",
            SshFailure::NoSshClient => "no ssh client here",
            SshFailure::Other => "ssh failed",
        })
    }
}

/// A running `ssh ... memctl bridge`: its pipes, and the child (killed when dropped).
pub struct SshSession {
    pub child: Child,
    pub stdin: ChildStdin,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

impl SshEndpoint {
    /// The arguments given to `ssh`.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-T",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "ServerAliveInterval=15",
            "-o",
            "ServerAliveCountMax=3",
        ]
        .map(String::from)
        .into();
        args.extend(self.ssh_options.iter().cloned());
        args.push(self.destination.clone());
        // The remote command is one string run by the remote user's shell.
        let mut remote = vec![
            shell_quote(self.remote_memctl.as_deref().unwrap_or("memctl")),
            "bridge".to_string(),
        ];
        if let Some(socket) = &self.socket {
            remote.push("--socket".into());
            remote.push(shell_quote(&socket.to_string_lossy()));
        }
        args.push(remote.join(" "));
        args
    }

    /// Starts `ssh` (the program named by `MEMCTL_SSH`, else `ssh`).
    pub fn spawn(&self) -> std::io::Result<SshSession> {
        let program = std::env::var_os("MEMCTL_SSH").unwrap_or_else(|| "ssh".into());
        let mut child = Command::new(program)
            .args(self.ssh_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        Ok(SshSession {
            child,
            stdin,
            stdout,
            stderr,
        })
    }
}

/// What ssh said when the session ended: the failure and ssh's (or the bridge's) last
/// line on stderr. Waits for the process to exit.
pub async fn ended(mut child: Child, mut stderr: ChildStderr) -> (SshFailure, String) {
    let mut text = String::new();
    let _ = stderr.read_to_string(&mut text).await;
    let code = child.wait().await.ok().and_then(|s| s.code());
    let detail = text
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("")
        .to_string();
    (classify(code, &text), detail)
}

/// Reads ssh's exit status and stderr: 255 is ssh's own failure, anything else the
/// remote command's.
pub fn classify(code: Option<i32>, stderr: &str) -> SshFailure {
    match code {
        Some(255) => {
            let s = stderr.to_ascii_lowercase();
            if s.contains("permission denied")
                || s.contains("host key verification failed")
                || s.contains("too many authentication failures")
            {
                SshFailure::AuthenticationRefused
            } else if s.contains("connection refused")
                || s.contains("timed out")
                || s.contains("could not resolve")
                || s.contains("no route to host")
                || s.contains("network is unreachable")
            {
                SshFailure::Unreachable
            } else {
                SshFailure::Other
            }
        }
        Some(BRIDGE_NO_DAEMON) => SshFailure::MemdNotRunning,
        Some(126) | Some(127) => SshFailure::BridgeMissing,
        _ => SshFailure::Other,
    }
}

/// Quotes `text` for a POSIX shell (the remote user's shell reads the command). A
/// leading `~/` stays unquoted so that it means the remote user's home.
fn shell_quote(text: &str) -> String {
    if let Some(rest) = text.strip_prefix("~/") {
        return format!("~/{}", shell_quote(rest));
    }
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:@%,".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_remote_command_is_quoted_for_the_remote_shell() {
        let endpoint = SshEndpoint {
            destination: "trader@web1".into(),
            socket: Some(PathBuf::from("/srv/memd data/memd.sock")),
            ssh_options: vec!["-p".into(), "2222".into()],
            remote_memctl: None,
        };
        let args = endpoint.ssh_args();
        assert_eq!(args[0], "-T");
        assert!(args.contains(&"BatchMode=yes".to_string()));
        let n = args.len();
        assert_eq!(&args[n - 4..n - 1], ["-p", "2222", "trader@web1"]);
        assert_eq!(
            args[n - 1],
            "memctl bridge --socket '/srv/memd data/memd.sock'"
        );
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("~/.cargo/bin/memctl"), "~/.cargo/bin/memctl");
        assert_eq!(shell_quote("~/my bin/memctl"), "~/'my bin/memctl'");
    }

    #[test]
    fn ssh_failures_are_told_apart() {
        assert_eq!(
            classify(
                Some(255),
                "trader@127.0.0.1: Permission denied (publickey)."
            ),
            SshFailure::AuthenticationRefused
        );
        assert_eq!(
            classify(
                Some(255),
                "ssh: connect to host 127.0.0.1 port 1: Connection refused"
            ),
            SshFailure::Unreachable
        );
        assert_eq!(
            classify(Some(3), "memctl bridge: no memd is answering"),
            SshFailure::MemdNotRunning
        );
        assert_eq!(
            classify(Some(127), "sh: memctl: not found"),
            SshFailure::BridgeMissing
        );
    }
}
