//! Talking to systemd (`Type=notify`): READY once the socket listens, STOPPING on
//! shutdown, and WATCHDOG pings while the daemon is healthy. Outside systemd
//! (`NOTIFY_SOCKET` unset) every call is a no-op.

use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

pub fn notify_ready(status: &str) {
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ]);
}

pub fn notify_stopping() {
    notify(&[
        sd_notify::NotifyState::Stopping,
        sd_notify::NotifyState::Status("stopping"),
    ]);
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(err) = sd_notify::notify(states) {
        warn!(%err, "cannot notify systemd");
    }
}

/// When systemd asked for a watchdog (`WatchdogSec=`), pings it at half the interval for
/// as long as `healthy` answers within that time. A daemon whose runtime or registry lock
/// hangs stops pinging, and systemd restarts it.
pub fn spawn_watchdog<F>(healthy: Arc<F>)
where
    F: Fn() -> bool + Send + Sync + 'static,
{
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let period = interval / 2;
    debug!(?interval, "systemd watchdog enabled");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period.max(Duration::from_millis(100)));
        loop {
            tick.tick().await;
            let check = healthy.clone();
            let answered =
                tokio::time::timeout(period, tokio::task::spawn_blocking(move || check())).await;
            match answered {
                Ok(Ok(true)) => notify(&[sd_notify::NotifyState::Watchdog]),
                _ => warn!("health check failed or hung; not pinging the systemd watchdog"),
            }
        }
    });
}
