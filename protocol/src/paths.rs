//! Where the socket is, agreed on by the daemon and its clients.
//!
//! A system daemon (under systemd) listens on `/run/memd/memd.sock`; a user daemon on
//! `$XDG_RUNTIME_DIR/memd/memd.sock`, or `/tmp/memd-$UID/memd.sock` when the session has no
//! runtime directory (root over SSH on a minimal server, containers). `--socket` and
//! `MEMD_SOCKET` override both.

use std::path::PathBuf;

/// The socket of the system service.
pub fn system_socket_path() -> PathBuf {
    PathBuf::from("/run/memd/memd.sock")
}

/// The socket of a user daemon for the calling user.
pub fn user_socket_path() -> PathBuf {
    user_runtime_dir().join("memd.sock")
}

/// The directory holding a user daemon's socket (created 0750 by the daemon).
pub fn user_runtime_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("memd"),
        _ => PathBuf::from(format!("/tmp/memd-{}", nix::unistd::getuid())),
    }
}

/// Where a client looks when told nothing: the user daemon's socket if one exists, then
/// the system daemon's, else the user path (so the error names the socket a user daemon
/// would use).
pub fn default_client_socket() -> PathBuf {
    let user = user_socket_path();
    if user.exists() {
        return user;
    }
    let system = system_socket_path();
    if system.exists() {
        return system;
    }
    user
}
