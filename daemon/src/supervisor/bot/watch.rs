//! A running bot watched: adopted after a daemon restart when it is alive, ours and
//! answering; polled for health (a bot that exits, stops answering, or stops looping is
//! restarted with exponential backoff up to a limit, then marked failed with the reason).

use super::super::process::{same_process_alive, terminate_group};
use super::super::record::Slot;
use super::super::{Supervisor, SupervisorSettings};
use crate::freqtrade;
use mem_protocol::deploy::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

impl Supervisor {
    /// After a daemon restart: adopt a bot that is alive, ours and answering; else restart it.
    pub(in crate::supervisor) async fn adopt_or_restart(self: Arc<Self>, slot: Arc<Slot>) {
        let record = slot.record.lock().expect("slot lock").clone();
        let id = record.public.deployment_id;
        let ticks = record.bot().and_then(|b| b.pid_start_ticks);
        let alive = record
            .public
            .process_id
            .is_some_and(|pid| same_process_alive(pid, ticks));
        let answering = match record.bot_client() {
            Some(client) if alive => client.ping().await,
            _ => false,
        };
        if alive && answering {
            info!(deployment = %id, pid = ?record.public.process_id, "re-adopted a running bot");
            self.table
                .update(&slot, |r| r.public.status = DeploymentStatus::Running);
            self.supervise(slot, None);
            return;
        }
        if alive {
            // Ours but not answering: stop it rather than start a twin next to it.
            let pid = record.public.process_id.expect("alive means a pid");
            terminate_group(pid, &mut None, self.settings.stop_timeout).await;
        }
        warn!(deployment = %id, "a bot of the previous daemon is gone; restarting it");
        self.table.update(&slot, |r| {
            r.public.status = DeploymentStatus::Crashed;
            r.public.last_error = Some("not running after the daemon restarted".into());
        });
        self.supervise(slot, None);
    }

    /// Starts the supervision task of a bot.
    pub(in crate::supervisor) fn supervise(
        self: &Arc<Self>,
        slot: Arc<Slot>,
        child: Option<Child>,
    ) {
        let cancel = CancellationToken::new();
        *slot.cancel.lock().expect("cancel lock") = cancel.clone();
        let this = self.clone();
        let task_slot = slot.clone();
        let handle =
            tokio::spawn(async move { this.supervision_loop(task_slot, child, cancel).await });
        *slot.task.lock().expect("task lock") = Some(handle);
    }

    /// Watches one bot until cancelled; returns its child process (if it is ours).
    async fn supervision_loop(
        self: Arc<Self>,
        slot: Arc<Slot>,
        mut child: Option<Child>,
        cancel: CancellationToken,
    ) -> Option<Child> {
        let mut watch = Watch::default();
        let mut polls = 0u64;
        // A bot memd did not start has no process of ours: it is only polled.
        let attached = slot.record.lock().expect("slot lock").is_attached();
        loop {
            // A crashed deployment (from adoption or below) is restarted first.
            if !attached && slot.status() == DeploymentStatus::Crashed {
                match self.restart_after_crash(&slot, &cancel).await {
                    Some(new_child) => {
                        child = Some(new_child);
                        watch = Watch::default();
                    }
                    None => return child, // failed for good, or cancelled
                }
            }
            tokio::select! {
                _ = cancel.cancelled() => return child,
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
            }
            let record = slot.record.lock().expect("slot lock").clone();
            if !attached {
                let Some(pid) = record.public.process_id else {
                    continue;
                };
                let exited = match child.as_mut() {
                    Some(c) => match c.try_wait() {
                        Ok(Some(status)) => Some(format!("exited ({status})")),
                        _ => None,
                    },
                    None => {
                        (!same_process_alive(pid, record.bot().and_then(|b| b.pid_start_ticks)))
                            .then(|| "the process is gone".to_string())
                    }
                };
                if let Some(reason) = exited {
                    self.crashed(&slot, &mut child, reason).await;
                    continue;
                }
            }
            let Some(client) = record.bot_client() else {
                continue;
            };
            // One poll, timed for `mem.metrics`: health, then the stats of `poll_stats`.
            let poll_started = Instant::now();
            let p = &record.public;
            let health = client.health().await;
            if health.is_err() {
                self.metrics
                    .bot_poll_failed(p.deployment_id, p.strategy_id, &p.strategy_name);
            }
            if let Some(reason) = watch.verdict(health.ok(), &self.settings) {
                if attached {
                    self.unreachable(&slot, reason);
                } else {
                    self.crashed(&slot, &mut child, reason).await;
                }
                continue;
            }
            if !watch.answering() {
                continue;
            }
            if attached && p.status != DeploymentStatus::Running {
                info!(deployment = %p.deployment_id, "an attached bot answers again");
                self.table
                    .update(&slot, |r| r.public.status = DeploymentStatus::Running);
            }
            self.poll_stats(&slot, &client, polls).await;
            self.metrics.bot_poll(
                p.deployment_id,
                p.strategy_id,
                &p.strategy_name,
                poll_started.elapsed(),
            );
            polls += 1;
        }
    }

    /// An attached bot stopped answering or looping: shown crashed with why (once), and
    /// polled on; memd does not restart what it did not start.
    fn unreachable(&self, slot: &Slot, reason: String) {
        if slot.status() != DeploymentStatus::Running {
            return;
        }
        warn!(deployment = %slot.public().deployment_id, %reason, "an attached bot does not answer; polled until it does");
        self.table.update(slot, |r| {
            r.public.status = DeploymentStatus::Crashed;
            r.public.last_error = Some(format!(
                "{reason} (memd did not start this bot and does not restart it)"
            ));
        });
    }

    /// Marks a deployment crashed and makes sure its process is gone.
    async fn crashed(&self, slot: &Slot, child: &mut Option<Child>, reason: String) {
        let public = slot.public();
        warn!(deployment = %public.deployment_id, %reason, "bot crashed");
        if let Some(pid) = public.process_id {
            terminate_group(pid, child, self.settings.stop_timeout).await;
        }
        *child = None;
        self.table.update(slot, |r| {
            r.public.status = DeploymentStatus::Crashed;
            r.public.last_error = Some(reason);
            r.public.process_id = None;
        });
    }

    /// Waits the backoff, then starts the bot again; `None` when it gave up or was cancelled.
    async fn restart_after_crash(&self, slot: &Slot, cancel: &CancellationToken) -> Option<Child> {
        let DeployedStrategy {
            restarts,
            last_error,
            ..
        } = slot.public();
        if restarts >= self.settings.max_restarts {
            let last = last_error.unwrap_or_default();
            self.table.update(slot, |r| {
                r.public.status = DeploymentStatus::Failed;
                r.public.last_error =
                    Some(format!("gave up after {restarts} restarts; last: {last}"));
            });
            return None;
        }
        let backoff = Duration::from_secs(2u64.pow(restarts.min(6))).min(Duration::from_secs(60));
        self.table.update(slot, |r| {
            r.public.status = DeploymentStatus::Restarting;
            r.public.restarts += 1;
        });
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep(backoff) => {}
        }
        let bin =
            match freqtrade::find_binary(self.settings.freqtrade_bin.as_deref(), &self.data_dir) {
                Ok(bin) => bin,
                Err(e) => {
                    self.table.update(slot, |r| {
                        r.public.status = DeploymentStatus::Crashed;
                        r.public.last_error = Some(e);
                    });
                    return None;
                }
            };
        match self.start_process(slot, &bin).await {
            Ok(child) => {
                self.table
                    .update(slot, |r| r.public.status = DeploymentStatus::Running);
                Some(child)
            }
            Err(reason) => {
                warn!(deployment = %slot.public().deployment_id, %reason, "the restarted bot did not start");
                self.table.update(slot, |r| {
                    r.public.status = DeploymentStatus::Crashed;
                    r.public.last_error = Some(reason);
                });
                Box::pin(self.restart_after_crash(slot, cancel)).await
            }
        }
    }
}

/// A bot's health over its polls: when it last answered, and whether its loop moves.
#[derive(Default)]
struct Watch {
    unanswered_since: Option<Instant>,
    /// The bot's last loop stamp and when (on our monotonic clock) we first saw it: a bot
    /// is idle when that stamp stops moving, which a wall-clock jump cannot fake.
    last_loop: Option<(i64, Instant)>,
}

impl Watch {
    /// Takes one health answer (`None`: no answer); answers why the bot must be
    /// restarted, if it must.
    fn verdict(
        &mut self,
        health: Option<freqtrade::Health>,
        settings: &SupervisorSettings,
    ) -> Option<String> {
        let Some(health) = health else {
            let since = *self.unanswered_since.get_or_insert_with(Instant::now);
            return (since.elapsed() > settings.unresponsive_limit).then(|| {
                format!(
                    "its API has not answered for {} s",
                    since.elapsed().as_secs()
                )
            });
        };
        self.unanswered_since = None;
        let stamp = health.last_process_ts?;
        let seen_since = match self.last_loop {
            Some((seen, since)) if seen == stamp => since,
            _ => self.last_loop.insert((stamp, Instant::now())).1,
        };
        (seen_since.elapsed() > settings.idle_limit).then(|| {
            format!(
                "idle: its last loop has not moved for {} s",
                seen_since.elapsed().as_secs()
            )
        })
    }

    fn answering(&self) -> bool {
        self.unanswered_since.is_none()
    }
}
