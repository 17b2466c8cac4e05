//! `memctl bridge`: this server's memd socket on stdin and stdout, for a memctl on
//! another machine that runs `ssh -T THIS-SERVER memctl bridge` (see `mem_protocol::ssh`).
//!
//! The bytes pass unread: the daemon does the handshake, and its peer check sees this
//! process, so the SSH user's access applies. The bridge ends when either side closes.
//! With no daemon on the socket it says so on stderr and exits with
//! [`BRIDGE_NO_DAEMON`], which the far memctl shows as "memd not running there".

use mem_protocol::ssh::BRIDGE_NO_DAEMON;
use std::path::Path;
use std::process::ExitCode;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;

pub async fn run(socket: &Path) -> ExitCode {
    let stream = match UnixStream::connect(socket).await {
        Ok(stream) => stream,
        Err(e) => {
            eprintln!(
                "memctl bridge: no memd is answering at {} ({e})",
                socket.display()
            );
            return ExitCode::from(BRIDGE_NO_DAEMON as u8);
        }
    };
    let (mut from_daemon, mut to_daemon) = stream.into_split();
    let mut stdin = tokio::io::stdin();
    let mut stdout = tokio::io::stdout();
    let upstream = async {
        let copied = tokio::io::copy(&mut stdin, &mut to_daemon).await;
        let _ = to_daemon.shutdown().await;
        copied
    };
    let downstream = async {
        // Flushed after each read: an event must not wait in a buffer.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            use tokio::io::AsyncReadExt;
            let n = from_daemon.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(());
            }
            stdout.write_all(&buf[..n]).await?;
            stdout.flush().await?;
        }
    };
    // Whichever side closes first ends the session: the daemon went away, or the far
    // memctl did (its ssh closed our stdin).
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
    // Exit now: the runtime would otherwise wait, at its shutdown, for the blocking read
    // of stdin that only the far side's closing ends, keeping the SSH session (and the
    // far memctl's view of a daemon that is gone) open.
    std::process::exit(0)
}
