//! `memctl daemon ...`: the daemon itself.

use crate::cli::print_json;
use mem_protocol::deploy::{DeployedParams, DeploymentType};
use mem_protocol::events::DaemonStopping;
use mem_protocol::methods::{NoParams, method};
use mem_protocol::{Client, ClientError};
use std::time::{Duration, Instant};

/// How long `daemon stop` waits for memd's process to end (it stops native runners and
/// saves the live summaries first).
const STOP_WAIT: Duration = Duration::from_secs(60);

/// `memctl daemon stop`: asks this socket's memd (and no other) to stop as on SIGTERM,
/// then waits until its process has ended.
pub async fn stop(client: &Client, json: bool) -> anyhow::Result<()> {
    let status = client.call::<method::DaemonStatus>(NoParams {}).await?;
    let bots = client
        .call::<method::Deployed>(DeployedParams { all: false })
        .await?
        .deployments
        .iter()
        .filter(|d| d.deployment_type == DeploymentType::Freqtrade && d.status.is_active())
        .count();
    // memd starts stopping as it answers: it may close the connection before the answer
    // has left. Its process ending is what says it stopped.
    let stopping = match client.call::<method::DaemonStop>(NoParams {}).await {
        Ok(stopping) => stopping,
        Err(ClientError::Disconnected) => DaemonStopping {
            reason: "daemon.stop (memd closed the connection as it stopped)".into(),
        },
        Err(e) => return Err(e.into()),
    };
    let pid = status.pid;
    let deadline = Instant::now() + STOP_WAIT;
    while runs(pid) {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "memd (pid {pid}) was asked to stop but still runs after {} s; its log is in {}",
                STOP_WAIT.as_secs(),
                status.log_dir
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if json {
        return print_json(&stopping);
    }
    println!("memd stopped (pid {pid})");
    if bots > 0 {
        println!(
            "its {bots} Freqtrade bot(s) keep running and are adopted again when memd starts; `memctl stop-all` before stopping memd stops them too"
        );
    }
    Ok(())
}

/// Whether process `pid` still runs (a zombie has ended).
fn runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rfind(')')
            .and_then(|i| stat[i + 2..].chars().next())
            .is_some_and(|state| state != 'Z')
    })
}
