//! The deployment record and the table of deployments, persisted in
//! `deployments/state.json`.
//!
//! Invariants:
//! - One [`DeploymentRecord`] per deployment; what differs between a Freqtrade bot memd
//!   started, a bot it only watches (attached) and a native runner is one enum,
//!   [`RunnerRecord`]: a native record holds no bot credentials, an attached one only the
//!   path of its password file (the password is read from it into memory, never saved).
//! - What memd may do to a deployment's process is [`DeploymentRecord::refusal`]'s
//!   answer: an attached bot is never stopped or restarted; `stopentry` and forwarded
//!   signals reach it only when the operator allowed them.
//! - `state.json` (0600: it holds the bots' API credentials) is rewritten atomically on
//!   every change of what must survive a restart (status, pid, sync cursor, a native
//!   runner's progress); observed figures (stats) are only announced.
//! - Its shape is the one earlier versions wrote (flat: `public`, `credentials`, `dir`,
//!   `strategy_class`, `pid_start_ticks`, `last_synced_trade`, `native`), so an upgraded
//!   daemon re-adopts the bots of the previous one.
//! - Which strategies have an active deployment is derived here, on every status change,
//!   into [`ActiveStrategies`]: the registry reads it for `isDeployed`, nobody else
//!   writes it.

use crate::bus::EventBus;
use crate::freqtrade::{BotClient, Credentials};
use crate::native::runner::NativeSaved;
use chrono::{DateTime, Utc};
use mem_protocol::deploy::{DeployedStrategy, DeploymentChanged, DeploymentId, DeploymentStatus};
use mem_protocol::strategy::StrategyId;
use mem_protocol::{ErrorCode, Event, RpcError};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tokio::process::Child;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Ended deployments kept (in memory, `state.json` and `strategies.deployed {all}`); their
/// directories (logs, rendered config) stay on disk.
pub const KEEP_ENDED: usize = 200;

/// One deployment, as `state.json` keeps it.
#[derive(Debug, Clone)]
pub struct DeploymentRecord {
    /// What clients see.
    pub public: DeployedStrategy,
    /// `deployments/{id}/`: its config, log and database.
    pub dir: PathBuf,
    pub runner: RunnerRecord,
}

/// What only one kind of runner has.
#[derive(Debug, Clone)]
pub enum RunnerRecord {
    Freqtrade(BotRecord),
    /// The feed, paper broker and progress of a native runner.
    Native(Box<NativeSaved>),
    /// A Freqtrade bot memd did not start (`deployments.attach`): watched and synced,
    /// never started, stopped or restarted. Its name, URL, user and whether control is
    /// allowed are public ([`DeployedStrategy::attached`]).
    Attached(AttachedRecord),
}

/// An attached bot's own part of its record.
#[derive(Clone)]
pub struct AttachedRecord {
    /// The file its API password is read from (at attach and at each daemon start).
    pub password_file: PathBuf,
    /// The password read from it: in memory only (`state.json` keeps the path).
    pub password: String,
    /// The newest Freqtrade trade id already copied to the registry.
    pub last_synced_trade: i64,
}

impl std::fmt::Debug for AttachedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachedRecord")
            .field("password_file", &self.password_file)
            .field("password", &"<redacted>")
            .field("last_synced_trade", &self.last_synced_trade)
            .finish()
    }
}

/// Something memd may do to a deployment's process, asked of
/// [`DeploymentRecord::refusal`] before it is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stop it (now or drained), or stop it with every other (`stop_all`).
    Stop,
    Restart,
    /// No new entries (Telegram's `/stopentry`, the risk guard's pause).
    StopEntry,
    /// A TradingView alert forwarded as a forced entry or exit.
    Signal,
}

/// A Freqtrade bot's own part of its record.
#[derive(Debug, Clone)]
pub struct BotRecord {
    /// Its API's generated credentials.
    pub credentials: Credentials,
    /// The Python class it runs.
    pub strategy_class: String,
    /// Process start time (clock ticks after boot): a pid alone can be reused.
    pub pid_start_ticks: Option<u64>,
    /// The newest Freqtrade trade id already copied to the registry.
    pub last_synced_trade: i64,
    /// The credential rendered into its config (`memd.credential`) with which its
    /// strategy's memd mixin asks MEM (`Access::Bot`); none for a bot deployed by a memd
    /// from before the mixin.
    pub mem_credential: Option<String>,
    /// Trades memd opened for a decision it had logged (a forwarded TradingView alert),
    /// by the bot's trade id: the trade sync closes that decision when the trade closes.
    pub forwarded: BTreeMap<i64, String>,
}

impl DeploymentRecord {
    /// The deployment's log: Freqtrade's, or the native runner's (an attached bot writes
    /// its log where its operator put it: none is here).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(match self.runner {
            RunnerRecord::Native(_) => "native.log",
            RunnerRecord::Freqtrade(_) | RunnerRecord::Attached(_) => "freqtrade.log",
        })
    }

    /// The bot's part, for a Freqtrade deployment memd started.
    pub fn bot(&self) -> Option<&BotRecord> {
        match &self.runner {
            RunnerRecord::Freqtrade(bot) => Some(bot),
            RunnerRecord::Native(_) | RunnerRecord::Attached(_) => None,
        }
    }

    /// Whether it is a bot memd did not start.
    pub fn is_attached(&self) -> bool {
        matches!(self.runner, RunnerRecord::Attached(_))
    }

    /// A client of the bot's API: a Freqtrade deployment's with a port, or an attached
    /// bot's at its URL.
    pub fn bot_client(&self) -> Option<BotClient> {
        match &self.runner {
            RunnerRecord::Freqtrade(bot) => {
                Some(BotClient::new(self.public.port?, &bot.credentials))
            }
            RunnerRecord::Attached(a) => {
                let public = self.public.attached.as_ref()?;
                BotClient::at(&public.url, &public.username, &a.password).ok()
            }
            RunnerRecord::Native(_) => None,
        }
    }

    /// The newest Freqtrade trade id already in the registry (0: none; a native runner
    /// records its own trades).
    pub fn last_synced_trade(&self) -> i64 {
        match &self.runner {
            RunnerRecord::Freqtrade(bot) => bot.last_synced_trade,
            RunnerRecord::Attached(a) => a.last_synced_trade,
            RunnerRecord::Native(_) => 0,
        }
    }

    /// Moves the sync cursor (a bot's, memd's or attached) to `newest`.
    pub fn set_last_synced_trade(&mut self, newest: i64) {
        match &mut self.runner {
            RunnerRecord::Freqtrade(bot) => {
                bot.last_synced_trade = newest;
                bot.forwarded.retain(|trade, _| *trade > newest);
            }
            RunnerRecord::Attached(a) => a.last_synced_trade = newest,
            RunnerRecord::Native(_) => {}
        }
    }

    /// Why memd must not do `control` to this deployment's process, if it must not: an
    /// attached bot is its operator's, never stopped or restarted by memd; `stopentry` and
    /// forced entries or exits reach it only when attached with control allowed (its
    /// config is never rewritten: a registry parameter is recorded only). Deployments memd
    /// started take everything.
    pub fn refusal(&self, control: Control) -> Option<String> {
        let attached = self.public.attached.as_ref()?;
        let (name, id) = (&attached.name, self.public.deployment_id);
        match control {
            Control::Stop | Control::Restart => Some(format!(
                "memd did not start this bot ({name}, deployment {id}, {}): it does not {} it; `memctl detach {name}` stops watching it",
                attached.url,
                if control == Control::Stop {
                    "stop"
                } else {
                    "restart"
                }
            )),
            Control::StopEntry | Control::Signal if !attached.allow_control => Some(format!(
                "memd did not start this bot ({name}, deployment {id}) and was not allowed to control it: attach it with --allow-control for stopentry or forwarded signals"
            )),
            Control::StopEntry | Control::Signal => None,
        }
    }

    /// Keeps `runningSince` with a change of status from `before`: set (to `now`) when
    /// the deployment comes to run, cleared when its process or runner is gone; kept
    /// while it runs on (a bot re-adopted after a daemon restart was running all along).
    /// A runner started again without a change of status (a native runner resumed by a
    /// restarted daemon) sets it itself.
    pub fn follow_status(&mut self, before: DeploymentStatus, now: DateTime<Utc>) {
        let p = &mut self.public;
        match p.status {
            DeploymentStatus::Running if before != DeploymentStatus::Running => {
                p.running_since = Some(now);
            }
            DeploymentStatus::Running | DeploymentStatus::Stopping => {}
            DeploymentStatus::Starting
            | DeploymentStatus::Stopped
            | DeploymentStatus::Crashed
            | DeploymentStatus::Restarting
            | DeploymentStatus::Failed => p.running_since = None,
        }
    }
}

/// The on-disk shape, written from borrows (a save copies no record).
#[derive(Serialize)]
struct RecordRef<'a> {
    public: &'a DeployedStrategy,
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials: Option<&'a Credentials>,
    dir: &'a Path,
    #[serde(skip_serializing_if = "str::is_empty")]
    strategy_class: &'a str,
    pid_start_ticks: Option<u64>,
    last_synced_trade: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    mem_credential: Option<&'a str>,
    #[serde(skip_serializing_if = "is_empty")]
    forwarded: Option<&'a BTreeMap<i64, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    native: Option<&'a NativeSaved>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attached: Option<AttachedFile>,
}

/// An attached bot's part on disk: the path of its password file, never the password.
#[derive(Serialize, Deserialize)]
struct AttachedFile {
    password_file: PathBuf,
}

/// The on-disk shape, read (earlier versions gave native records credentials too).
#[derive(Deserialize)]
struct RecordFile {
    public: DeployedStrategy,
    #[serde(default)]
    credentials: Option<Credentials>,
    dir: PathBuf,
    #[serde(default)]
    strategy_class: String,
    #[serde(default)]
    pid_start_ticks: Option<u64>,
    #[serde(default)]
    last_synced_trade: i64,
    #[serde(default)]
    mem_credential: Option<String>,
    #[serde(default)]
    forwarded: BTreeMap<i64, String>,
    #[serde(default)]
    native: Option<NativeSaved>,
    #[serde(default)]
    attached: Option<AttachedFile>,
}

fn is_empty(forwarded: &Option<&BTreeMap<i64, String>>) -> bool {
    forwarded.is_none_or(|f| f.is_empty())
}

impl Serialize for DeploymentRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (bot, native, attached) = match &self.runner {
            RunnerRecord::Freqtrade(bot) => (Some(bot), None, None),
            RunnerRecord::Native(native) => (None, Some(&**native), None),
            RunnerRecord::Attached(a) => (None, None, Some(a)),
        };
        RecordRef {
            public: &self.public,
            credentials: bot.map(|b| &b.credentials),
            dir: &self.dir,
            strategy_class: bot.map_or("", |b| b.strategy_class.as_str()),
            pid_start_ticks: bot.and_then(|b| b.pid_start_ticks),
            last_synced_trade: self.last_synced_trade(),
            mem_credential: bot.and_then(|b| b.mem_credential.as_deref()),
            forwarded: bot.map(|b| &b.forwarded),
            native,
            attached: attached.map(|a| AttachedFile {
                password_file: a.password_file.clone(),
            }),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for DeploymentRecord {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let f = RecordFile::deserialize(d)?;
        let runner = match (f.native, f.credentials) {
            (Some(native), _) => RunnerRecord::Native(Box::new(native)),
            (None, _) if f.attached.is_some() => RunnerRecord::Attached(AttachedRecord {
                password_file: f.attached.expect("checked").password_file,
                // Read again by the supervisor as it resumes the deployment.
                password: String::new(),
                last_synced_trade: f.last_synced_trade,
            }),
            (None, Some(credentials)) => RunnerRecord::Freqtrade(BotRecord {
                credentials,
                strategy_class: f.strategy_class,
                pid_start_ticks: f.pid_start_ticks,
                last_synced_trade: f.last_synced_trade,
                mem_credential: f.mem_credential,
                forwarded: f.forwarded,
            }),
            (None, None) => {
                return Err(serde::de::Error::custom(format!(
                    "deployment {}: a Freqtrade deployment without its credentials",
                    f.public.deployment_id
                )));
            }
        };
        Ok(DeploymentRecord {
            public: f.public,
            dir: f.dir,
            runner,
        })
    }
}

/// The strategies that have an active deployment: written by the supervisor's table on
/// every status change, read by the registry for `isDeployed`.
#[derive(Debug, Default)]
pub struct ActiveStrategies(RwLock<HashSet<StrategyId>>);

impl ActiveStrategies {
    pub fn contains(&self, id: StrategyId) -> bool {
        self.0.read().expect("active strategies lock").contains(&id)
    }

    fn set(&self, ids: HashSet<StrategyId>) {
        *self.0.write().expect("active strategies lock") = ids;
    }
}

impl crate::registry::DeploymentView for ActiveStrategies {
    fn is_deployed(&self, id: StrategyId) -> bool {
        self.contains(id)
    }

    fn any(&self) -> bool {
        !self.0.read().expect("active strategies lock").is_empty()
    }
}

/// One deployment in memory: its record and the handles of its supervision.
pub struct Slot {
    pub record: Mutex<DeploymentRecord>,
    /// Stops the supervision task.
    pub cancel: Mutex<CancellationToken>,
    /// The supervision task; it hands back the child process (if it is ours) when it ends.
    pub task: Mutex<Option<tokio::task::JoinHandle<Option<Child>>>>,
    /// One stop or restart at a time.
    pub op: tokio::sync::Mutex<()>,
}

impl Slot {
    /// What clients see of it now.
    pub fn public(&self) -> DeployedStrategy {
        self.record.lock().expect("slot lock").public.clone()
    }

    /// Its status now.
    pub fn status(&self) -> DeploymentStatus {
        self.record.lock().expect("slot lock").public.status
    }

    fn is_active(&self) -> bool {
        self.status().is_active()
    }
}

/// Every deployment the daemon knows, and `state.json`.
pub struct Deployments {
    root: PathBuf,
    slots: Mutex<BTreeMap<DeploymentId, Arc<Slot>>>,
    /// Held while `state.json` is written, and while a backup copies it.
    save_lock: Mutex<()>,
    bus: Arc<EventBus>,
    active: Arc<ActiveStrategies>,
}

impl Deployments {
    /// The table under `root` (`deployments/`), empty until [`Deployments::add`]s.
    pub fn new(root: PathBuf, bus: Arc<EventBus>, active: Arc<ActiveStrategies>) -> Self {
        Deployments {
            root,
            slots: Mutex::new(BTreeMap::new()),
            save_lock: Mutex::new(()),
            bus,
            active,
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn state_path(&self) -> PathBuf {
        self.root.join("state.json")
    }

    /// Reads `state.json`; an unreadable one is moved aside (named in the log) and the
    /// daemon starts with no deployments.
    pub fn load(&self) -> Vec<DeploymentRecord> {
        let path = self.state_path();
        let Ok(bytes) = std::fs::read(&path) else {
            return Vec::new();
        };
        match serde_json::from_slice::<Vec<DeploymentRecord>>(&bytes) {
            Ok(records) => records,
            Err(e) => {
                let aside = self.root.join(format!(
                    "state.json.unreadable-{}",
                    Utc::now().format("%Y%m%dT%H%M%S")
                ));
                let _ = std::fs::rename(&path, &aside);
                warn!(error = %e, moved_to = %aside.display(), "deployments/state.json is unreadable; moved aside, starting with no deployments");
                Vec::new()
            }
        }
    }

    /// Registers a deployment (not yet saved or started).
    pub fn add(&self, record: DeploymentRecord) -> Arc<Slot> {
        let id = record.public.deployment_id;
        let slot = Arc::new(Slot {
            record: Mutex::new(record),
            cancel: Mutex::new(CancellationToken::new()),
            task: Mutex::new(None),
            op: tokio::sync::Mutex::new(()),
        });
        self.slots
            .lock()
            .expect("slots lock")
            .insert(id, slot.clone());
        slot
    }

    /// Forgets a deployment (a detached bot): saved, and no longer counted as active.
    pub fn remove(&self, id: DeploymentId) {
        self.slots.lock().expect("slots lock").remove(&id);
        self.save();
        self.derive_active();
    }

    /// Runs `f` while `state.json` is not rewritten: a save under way finishes first, the
    /// next waits until `f` returns (a backup copies the deployments meanwhile).
    pub fn with_saves_paused<T>(&self, f: impl FnOnce() -> T) -> T {
        let _paused = self.save_lock.lock().expect("save lock");
        f()
    }

    /// Writes `state.json` atomically (0600), keeping only the newest [`KEEP_ENDED`]
    /// ended deployments (a daemon up for months deploys thousands).
    pub fn save(&self) {
        let _guard = self.save_lock.lock().expect("save lock");
        let mut slots = self.slots.lock().expect("slots lock");
        forget_oldest_ended(&mut slots);
        let all: Vec<Arc<Slot>> = slots.values().cloned().collect();
        drop(slots);
        let bytes = serde_json::to_vec_pretty(&EachRecord(&all)).expect("state serializes");
        if let Err(e) = crate::datadir::write_atomic(&self.state_path(), &bytes, 0o600) {
            warn!(error = %e, "cannot save deployments/state.json");
        }
    }

    /// Changes what is persisted (status, pid, ...): saved, then announced. A change of
    /// status keeps `runningSince` with it ([`DeploymentRecord::follow_status`]).
    pub fn update(&self, slot: &Slot, change: impl FnOnce(&mut DeploymentRecord)) {
        {
            let mut record = slot.record.lock().expect("slot lock");
            let before = record.public.status;
            change(&mut record);
            record.follow_status(before, Utc::now());
        }
        self.save();
        self.derive_active();
        self.announce(slot);
    }

    /// Changes what is only observed (stats): not saved; announced only when more than
    /// the poll's time moved (a bot's every poll, 5 s apart, that found nothing new would
    /// otherwise be a `deployment.changed` to every subscriber: with 50 bots, 8 KB/s of a
    /// fleet's SSH session).
    pub fn refresh(&self, slot: &Slot, change: impl FnOnce(&mut DeploymentRecord)) {
        let changed = {
            let mut record = slot.record.lock().expect("slot lock");
            let before = record.public.clone();
            change(&mut record);
            !same_but_poll_time(&before, &record.public)
        };
        if changed {
            self.announce(slot);
        }
    }

    /// Changes what must survive a restart but nobody watches (a sync cursor): saved,
    /// not announced.
    pub fn save_quietly(&self, slot: &Slot, change: impl FnOnce(&mut DeploymentRecord)) {
        change(&mut slot.record.lock().expect("slot lock"));
        self.save();
    }

    fn announce(&self, slot: &Slot) {
        self.publish(Event::DeploymentChanged(Box::new(DeploymentChanged {
            deployment: slot.public(),
        })));
    }

    /// Publishes an event of the deployments (a change, a bot's new log lines).
    pub fn publish(&self, event: Event) {
        self.bus.publish(event);
    }

    /// Recomputes which strategies have an active deployment.
    pub fn derive_active(&self) {
        let ids = self
            .slots
            .lock()
            .expect("slots lock")
            .values()
            .filter_map(|s| {
                let r = s.record.lock().expect("slot lock");
                r.public.status.is_active().then_some(r.public.strategy_id)
            })
            .collect();
        self.active.set(ids);
    }

    /// Every slot (`active_only`: those that hold or will hold a process).
    pub fn slots(&self, active_only: bool) -> Vec<Arc<Slot>> {
        self.slots
            .lock()
            .expect("slots lock")
            .values()
            .filter(|s| !active_only || s.is_active())
            .cloned()
            .collect()
    }

    /// `deployments.acknowledge`: a person has seen that a deployment ended; it leaves
    /// the default lists. Saved (it stays acknowledged after a restart) and announced. A
    /// deployment that is still active is refused, naming it; acknowledging twice
    /// changes nothing.
    pub fn acknowledge(&self, id: DeploymentId) -> Result<DeployedStrategy, RpcError> {
        let slot = self
            .slot(id)
            .ok_or_else(|| RpcError::not_found(format!("no deployment {id} is remembered")))?;
        let d = slot.public();
        if d.status.is_active() {
            return Err(RpcError::new(
                ErrorCode::Conflict,
                format!(
                    "deployment {id} ({}) is {}: only a deployment that ended can be acknowledged; stop it first",
                    d.strategy_name,
                    format!("{:?}", d.status).to_lowercase()
                ),
            ));
        }
        if !d.acknowledged {
            self.update(&slot, |r| r.public.acknowledged = true);
            info!(deployment = %id, strategy = %d.strategy_id, "acknowledged");
        }
        Ok(slot.public())
    }

    /// One deployment, active or ended, by its id.
    pub fn slot(&self, id: DeploymentId) -> Option<Arc<Slot>> {
        self.slots.lock().expect("slots lock").get(&id).cloned()
    }

    /// The strategy's active deployment, if it has one.
    pub fn active_of(&self, strategy: StrategyId) -> Option<Arc<Slot>> {
        self.slots
            .lock()
            .expect("slots lock")
            .values()
            .find(|s| {
                let r = s.record.lock().expect("slot lock");
                r.public.strategy_id == strategy && r.public.status.is_active()
            })
            .cloned()
    }

    /// The strategy's newest deployment, active or not.
    pub fn newest_of(&self, strategy: StrategyId) -> Option<Arc<Slot>> {
        self.slots
            .lock()
            .expect("slots lock")
            .values()
            .filter(|s| s.record.lock().expect("slot lock").public.strategy_id == strategy)
            .max_by_key(|s| s.record.lock().expect("slot lock").public.started_at)
            .cloned()
    }

    /// The ports active deployments hold.
    pub fn taken_ports(&self) -> Vec<u16> {
        self.slots(true)
            .iter()
            .filter_map(|s| s.record.lock().expect("slot lock").public.port)
            .collect()
    }
}

/// Drops the oldest ended deployments beyond [`KEEP_ENDED`].
fn forget_oldest_ended(slots: &mut BTreeMap<DeploymentId, Arc<Slot>>) {
    let ended: Vec<(DateTime<Utc>, DeploymentId)> = slots
        .iter()
        .filter_map(|(id, slot)| {
            let r = slot.record.lock().expect("slot lock");
            (!r.public.status.is_active()).then_some((r.public.started_at, *id))
        })
        .collect();
    for id in oldest_beyond(ended, KEEP_ENDED) {
        slots.remove(&id);
    }
}

/// The ids of all but the `keep` newest (by start time).
fn oldest_beyond(mut ended: Vec<(DateTime<Utc>, DeploymentId)>, keep: usize) -> Vec<DeploymentId> {
    if ended.len() <= keep {
        return Vec::new();
    }
    ended.sort();
    let drop = ended.len() - keep;
    ended.into_iter().take(drop).map(|(_, id)| id).collect()
}

/// The slots' records as one JSON array, each serialized under its own lock: a save (one
/// per status change) copies none of them, where a copy of up to [`KEEP_ENDED`] + active
/// deployments was thousands of small allocations each time.
struct EachRecord<'a>(&'a [Arc<Slot>]);

impl Serialize for EachRecord<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.0.len()))?;
        for slot in self.0 {
            seq.serialize_element(&*slot.record.lock().expect("slot lock"))?;
        }
        seq.end()
    }
}

/// Whether two states of a deployment differ in nothing but when it was last polled.
fn same_but_poll_time(a: &DeployedStrategy, b: &DeployedStrategy) -> bool {
    let mut a = a.clone();
    a.stats.polled_at = b.stats.polled_at;
    a == *b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_newest_ended_deployments_are_kept() {
        let start = Utc::now();
        let ended: Vec<(DateTime<Utc>, DeploymentId)> = (0..5)
            .map(|i| {
                (
                    start + chrono::Duration::seconds(i),
                    DeploymentId::new_random(),
                )
            })
            .collect();
        assert!(oldest_beyond(ended.clone(), 5).is_empty());
        let mut shuffled = ended.clone();
        shuffled.reverse();
        assert_eq!(oldest_beyond(shuffled, 3), vec![ended[0].1, ended[1].1]);
    }

    /// A table on a temporary directory holding the two records of [`EARLIER_STATE`], the
    /// bot ended in failure.
    fn table_with_a_failed_bot(root: &Path) -> (Deployments, Arc<EventBus>) {
        let bus = Arc::new(EventBus::new(16));
        let table = Deployments::new(
            root.to_path_buf(),
            bus.clone(),
            Arc::new(ActiveStrategies::default()),
        );
        let mut records: Vec<DeploymentRecord> = serde_json::from_str(EARLIER_STATE).unwrap();
        records[0].public.status = DeploymentStatus::Failed;
        records[0].public.last_error = Some("gave up after 5 restarts".into());
        for record in records {
            table.add(record);
        }
        table.save();
        (table, bus)
    }

    #[test]
    fn a_poll_that_found_nothing_new_is_not_announced() {
        let dir = tempfile::tempdir().unwrap();
        let (table, bus) = table_with_a_failed_bot(dir.path());
        let native: DeploymentId = "7a2b3c4d-5e6f-4a70-8b9c-0d1e2f3a4b5c".parse().unwrap();
        let slot = table.slot(native).unwrap();
        let (mut events, _) = bus.subscribe();
        let polled = |r: &mut DeploymentRecord| r.public.stats.polled_at = Some(Utc::now());
        table.refresh(&slot, polled);
        assert!(events.try_recv().is_err(), "only the poll's time moved");
        assert!(
            slot.public().stats.polled_at.is_some(),
            "kept, for those who ask"
        );

        table.refresh(&slot, |r| {
            polled(r);
            r.public.stats.closed_trades += 1;
        });
        let announced = events.try_recv().expect("deployment.changed");
        assert!(
            std::str::from_utf8(&announced.line)
                .unwrap()
                .contains("deployment.changed")
        );
    }

    #[test]
    fn an_acknowledgement_is_announced_saved_and_refused_for_an_active_deployment() {
        let dir = tempfile::tempdir().unwrap();
        let (table, bus) = table_with_a_failed_bot(dir.path());
        let bot: DeploymentId = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b".parse().unwrap();
        let native: DeploymentId = "7a2b3c4d-5e6f-4a70-8b9c-0d1e2f3a4b5c".parse().unwrap();
        let failed = table.slot(bot).unwrap().public();
        assert!(failed.needs_acknowledgement() && failed.shown_by_default());

        // Still running: refused, the deployment and its state named.
        let err = table.acknowledge(native).unwrap_err();
        assert_eq!(err.code, ErrorCode::Conflict);
        assert!(
            err.message.contains(&native.to_string())
                && err.message.contains("Native RSI")
                && err.message.contains("is running"),
            "{}",
            err.message
        );
        assert!(!table.slot(native).unwrap().public().acknowledged);
        let unknown = DeploymentId::new_random();
        let err = table.acknowledge(unknown).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
        assert!(
            err.message.contains(&unknown.to_string()),
            "{}",
            err.message
        );

        let (mut events, _) = bus.subscribe();
        let d = table.acknowledge(bot).unwrap();
        assert!(d.acknowledged && !d.shown_by_default());
        assert_eq!(d.last_error.as_deref(), Some("gave up after 5 restarts"));
        let announced = events.try_recv().expect("deployment.changed");
        let line = std::str::from_utf8(&announced.line).unwrap();
        assert!(
            line.contains("deployment.changed") && line.contains("\"acknowledged\":true"),
            "{line}"
        );
        // Twice: the same answer, nothing announced.
        assert_eq!(table.acknowledge(bot).unwrap(), d);
        assert!(events.try_recv().is_err());

        // A new daemon reads it back acknowledged.
        let again = Deployments::new(
            dir.path().to_path_buf(),
            bus.clone(),
            Arc::new(ActiveStrategies::default()),
        );
        let loaded = again.load();
        let bot_record = loaded
            .iter()
            .find(|r| r.public.deployment_id == bot)
            .unwrap();
        assert!(bot_record.public.acknowledged);
        assert!(
            !loaded
                .iter()
                .find(|r| r.public.deployment_id == native)
                .unwrap()
                .public
                .acknowledged
        );
    }

    /// `state.json` as the version before the typed records wrote it: a bot and a native
    /// runner (which then carried generated credentials too). An upgraded daemon must read
    /// both, and write them back readable.
    const EARLIER_STATE: &str = include_str!("../../tests/fixtures/state-before-records.json");

    #[test]
    fn the_state_of_earlier_versions_still_loads() {
        let records: Vec<DeploymentRecord> = serde_json::from_str(EARLIER_STATE).unwrap();
        assert_eq!(records.len(), 2);
        let bot = records[0].bot().expect("a Freqtrade record");
        assert_eq!(bot.strategy_class, "MACD_Aggressive");
        assert_eq!(bot.pid_start_ticks, Some(123456));
        assert_eq!(bot.last_synced_trade, 7);
        assert_eq!(bot.credentials.username, "memd-1a2b3c4d");
        assert!(records[0].bot_client().is_some());
        assert!(records[0].log_path().ends_with("freqtrade.log"));
        let RunnerRecord::Native(native) = &records[1].runner else {
            panic!("a native record");
        };
        assert_eq!(native.kind, "rsi");
        assert!(
            records[1].bot().is_none(),
            "no credentials on a native record"
        );
        assert!(records[1].log_path().ends_with("native.log"));
        // Written back and read again: the same records; the native one without credentials.
        let written = serde_json::to_string(&records).unwrap();
        let again: Vec<DeploymentRecord> = serde_json::from_str(&written).unwrap();
        assert_eq!(serde_json::to_string(&again).unwrap(), written);
        let raw: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert!(raw[1].get("credentials").is_none());
        assert_eq!(raw[0]["credentials"]["username"], "memd-1a2b3c4d");
    }

    /// An attached bot's record, as `deployments.attach` makes it.
    fn attached_record(allow_control: bool) -> DeploymentRecord {
        let mut records: Vec<DeploymentRecord> = serde_json::from_str(EARLIER_STATE).unwrap();
        let mut r = records.remove(0);
        r.public.process_id = None;
        r.public.config_file = None;
        r.public.attached = Some(mem_protocol::deploy::Attachment {
            name: "outside".into(),
            url: "http://127.0.0.1:8080".into(),
            username: "freqtrader".into(),
            allow_control,
        });
        r.runner = RunnerRecord::Attached(AttachedRecord {
            password_file: "/etc/memd/outside.password".into(),
            password: "never-saved-secret".into(),
            last_synced_trade: 0,
        });
        r
    }

    #[test]
    fn an_attached_record_is_saved_without_its_password_and_read_back() {
        let mut r = attached_record(true);
        r.set_last_synced_trade(12);
        assert!(format!("{r:?}").contains("<redacted>"));
        assert!(!format!("{r:?}").contains("never-saved-secret"));
        let written = serde_json::to_string(&r).unwrap();
        assert!(!written.contains("never-saved-secret"), "{written}");
        assert!(!written.contains("credentials"), "{written}");
        let raw: serde_json::Value = serde_json::from_str(&written).unwrap();
        assert_eq!(
            raw["attached"]["password_file"],
            "/etc/memd/outside.password"
        );
        assert_eq!(raw["public"]["attached"]["name"], "outside");
        assert_eq!(raw["last_synced_trade"], 12);

        let again: DeploymentRecord = serde_json::from_str(&written).unwrap();
        assert!(again.is_attached() && again.bot().is_none());
        assert_eq!(again.last_synced_trade(), 12);
        let RunnerRecord::Attached(a) = &again.runner else {
            panic!("an attached record");
        };
        assert_eq!(a.password, "", "read again from its file at start");
        assert_eq!(a.password_file, Path::new("/etc/memd/outside.password"));
        assert_eq!(again.public.attached, r.public.attached);
        let client = r.bot_client().expect("a client at its URL");
        assert_eq!(client.base(), "http://127.0.0.1:8080/api/v1");

        // Through the table and state.json, as a daemon restart reads it.
        let dir = tempfile::tempdir().unwrap();
        let bus = Arc::new(EventBus::new(16));
        let active = Arc::new(ActiveStrategies::default());
        let table = Deployments::new(dir.path().to_path_buf(), bus.clone(), active.clone());
        table.add(r.clone());
        table.save();
        table.derive_active();
        assert!(
            active.contains(r.public.strategy_id),
            "attached bots are deployed"
        );
        let state = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
        assert!(!state.contains("never-saved-secret"));
        let loaded = Deployments::new(dir.path().to_path_buf(), bus, active.clone()).load();
        assert_eq!(loaded.len(), 1);
        assert!(loaded[0].is_attached());
        table.remove(r.public.deployment_id);
        assert!(!active.contains(r.public.strategy_id), "detached");
        let state = std::fs::read_to_string(dir.path().join("state.json")).unwrap();
        assert_eq!(state.trim(), "[]");
    }

    #[test]
    fn memd_never_stops_an_attached_bot_and_pauses_it_only_when_allowed() {
        let watched = attached_record(false);
        for control in [Control::Stop, Control::Restart] {
            let why = watched.refusal(control).expect("refused");
            assert!(
                why.contains("memd did not start this bot")
                    && why.contains("memctl detach outside"),
                "{why}"
            );
            assert!(
                attached_record(true).refusal(control).is_some(),
                "even with control"
            );
        }
        for control in [Control::StopEntry, Control::Signal] {
            let why = watched
                .refusal(control)
                .expect("refused without --allow-control");
            assert!(why.contains("--allow-control"), "{why}");
            assert_eq!(attached_record(true).refusal(control), None);
        }
        // memd's own deployments take everything.
        let records: Vec<DeploymentRecord> = serde_json::from_str(EARLIER_STATE).unwrap();
        for r in &records {
            for control in [
                Control::Stop,
                Control::Restart,
                Control::StopEntry,
                Control::Signal,
            ] {
                assert_eq!(r.refusal(control), None);
            }
        }
    }

    #[test]
    fn running_since_follows_the_status_and_not_the_daemons_restarts() {
        let mut records: Vec<DeploymentRecord> = serde_json::from_str(EARLIER_STATE).unwrap();
        let mut bot = records.remove(0);
        assert_eq!(bot.public.running_since, None, "earlier records have none");
        let t = |s: i64| {
            "2026-11-22T01:00:00Z".parse::<DateTime<Utc>>().unwrap() + chrono::Duration::seconds(s)
        };
        let to = |record: &mut DeploymentRecord, status, at| {
            let before = record.public.status;
            record.public.status = status;
            record.follow_status(before, at);
            record.public.running_since
        };
        use DeploymentStatus::*;
        assert_eq!(to(&mut bot, Starting, t(0)), None);
        assert_eq!(to(&mut bot, Running, t(5)), Some(t(5)), "ready: it runs");
        // Re-adopted after a daemon restart: it ran all along.
        assert_eq!(to(&mut bot, Running, t(500)), Some(t(5)));
        assert_eq!(to(&mut bot, Crashed, t(600)), None);
        assert_eq!(to(&mut bot, Restarting, t(601)), None);
        assert_eq!(to(&mut bot, Running, t(610)), Some(t(610)), "a new process");
        assert_eq!(to(&mut bot, Stopping, t(700)), Some(t(610)));
        assert_eq!(to(&mut bot, Stopped, t(701)), None);
        // Saved and read back with the record.
        to(&mut bot, Running, t(800));
        let again: DeploymentRecord =
            serde_json::from_str(&serde_json::to_string(&bot).unwrap()).unwrap();
        assert_eq!(again.public.running_since, Some(t(800)));
    }
}
