//! The strategy registry: every strategy's metadata, versions, parameter history,
//! relationships, closed trades and the metrics computed from them, and the audit log.
//!
//! What is kept goes through a [`backend::Store`] (today [`files::FileStore`]); this
//! module checks, locks, keeps the index and announces.
//!
//! Invariants:
//! - A strategy id is a UUID and nothing else reaches a path; version strings are
//!   checked as semver before they name a file.
//! - Metadata files are rewritten whole and atomically; log files only grow by whole
//!   lines, fsynced before the caller is answered. A crash leaves either the old or the
//!   new file, and never loses an acknowledged trade.
//! - Members of a document this version does not know are kept on rewrite.
//! - Every mutation is validated first (nothing is written when any field is wrong),
//!   then written, then appended to `audit.jsonl` with the caller's uid, then announced
//!   as a `registry.changed` event.
//! - One writer at a time (`writer` lock) for metadata; readers use the in-memory
//!   [`index::Index`] and never wait on the disk.
//! - Every change to a file of the registry happens under the `gate`, held shared by the
//!   writers and exclusively by [`Registry::with_writes_paused`] (a backup): while it is
//!   held, no file of the registry changes.

pub mod backend;
pub mod config;
pub mod files;
pub mod index;
pub mod metrics;
mod migrate;
pub mod outbox;
pub mod postgres;
pub mod shapes;
pub mod store;
pub mod trades;
pub mod validate;

use crate::bus::EventBus;
use backend::{
    Commit, DocumentWrite, LinkWrite, RemoteChange, Stamp, Store, StoreError, VersionWrite,
};
use chrono::{DateTime, Utc};
use files::FileStore;
use index::{Index, Record};
use mem_protocol::events::{RegistryChange, RegistryChanged, RegistryInvalid};
use mem_protocol::methods::{ListStrategiesParams, StrategyList};
use mem_protocol::registry::*;
use mem_protocol::strategy::{
    StrategyDetail, StrategyDocument, StrategyId, StrategyStatus, StrategySummary,
};
use mem_protocol::{ErrorCode, Event, RpcError};
use rayon::prelude::*;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use tracing::{info, warn};
use validate::FieldError;

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("strategy {0} not found in registry")]
    NotFound(StrategyId),
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Invalid(FieldError),
    #[error("{0}")]
    Conflict(String),
    /// The store cannot be reached (a database that is down; files never are).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0:#}")]
    Io(anyhow::Error),
}

impl RegistryError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        RegistryError::Invalid(FieldError {
            field: field.into(),
            message: message.into(),
        })
    }

    /// The protocol error for `method`.
    pub fn into_rpc(self, method: &str) -> RpcError {
        match self {
            RegistryError::NotFound(id) => {
                RpcError::not_found(format!("strategy {id} not found in registry"))
                    .with_data(json!({ "id": id }))
            }
            RegistryError::Missing(what) => RpcError::not_found(what),
            RegistryError::Invalid(e) => RpcError::invalid_params(method, e),
            RegistryError::Conflict(what) => RpcError::new(ErrorCode::Conflict, what),
            RegistryError::Unavailable(what) => RpcError::new(ErrorCode::Unavailable, what),
            RegistryError::Io(e) => RpcError::internal(format!("{e:#}")),
        }
    }
}

impl From<anyhow::Error> for RegistryError {
    fn from(e: anyhow::Error) -> Self {
        // The trade logs answer anyhow errors, and on PostgreSQL their store's errors are
        // in them: keep those errors' kind, so that a trade recorded while the database is
        // down is refused as `unavailable` (try again later), as every other change is,
        // rather than as an internal error.
        match e.downcast::<StoreError>() {
            Ok(e) => e.into(),
            Err(e) => RegistryError::Io(e),
        }
    }
}

impl From<StoreError> for RegistryError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(id) => RegistryError::NotFound(id),
            StoreError::Unavailable(why) => RegistryError::Unavailable(why),
            StoreError::Stale(id) => RegistryError::Conflict(format!(
                "strategy {id} was changed meanwhile; read it again and retry"
            )),
            StoreError::Conflict(what) => RegistryError::Conflict(what),
            StoreError::Io(e) => RegistryError::Io(e),
        }
    }
}

impl From<FieldError> for RegistryError {
    fn from(e: FieldError) -> Self {
        RegistryError::Invalid(e)
    }
}

type Result<T> = std::result::Result<T, RegistryError>;

/// What a mutation writes besides its document, collected by its closure and written in
/// the same commit, only once the document is valid (nothing is left behind when it is not).
#[derive(Default)]
struct Pending {
    versions: Vec<VersionWrite>,
    parameter_change: Option<ParameterChange>,
    /// A link made with the change (checked like `strategies.link`; no-op if it exists).
    link: Option<LinkParams>,
}

/// Who asked for a change, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// `None` for the daemon itself (a reload, a summary refresh).
    pub uid: Option<u32>,
    /// The client's name from `hello` (shared: every request of a connection carries it).
    pub client: Option<Arc<str>>,
}

/// `performance.backtest.measured` is memd's to write: a client's figures are typed in,
/// not measured.
fn refuse_measured(doc: &StrategyDocument) -> Result<()> {
    if doc.strategy.performance.backtest.measured.is_some() {
        return Err(measured_refused("strategy.performance.backtest.measured"));
    }
    Ok(())
}

fn measured_refused(field: &str) -> RegistryError {
    RegistryError::invalid(
        field,
        "is written by memd when one of its backtests passes (memctl backtest ID); remove it",
    )
}

/// A metadata file that cannot be used, and why.
#[derive(Debug, Clone)]
pub struct LoadIssue {
    pub path: PathBuf,
    pub problem: String,
}

/// The registry. All methods are synchronous (they may touch the disk): call them from a
/// blocking task.
pub struct Registry {
    store: Arc<dyn Store>,
    /// The same store when it is files, for what only files have (paths, hand edits).
    files: Option<Arc<FileStore>>,
    index: RwLock<Index>,
    issues: Mutex<BTreeMap<PathBuf, String>>,
    writer: Mutex<()>,
    /// Held shared by every change to a file, exclusively while writes are paused.
    gate: RwLock<()>,
    trades: trades::TradeStore,
    /// Every relationship (the store holds them; memory answers).
    relations: RwLock<Vec<Relationship>>,
    bus: Arc<EventBus>,
    /// Strategies whose live summary in the metadata is behind their trade log.
    dirty_live: Mutex<HashSet<StrategyId>>,
    /// Documents read for `strategies.get`, with the content hash of the file they came
    /// from: while the index still holds that hash, the document is answered without the
    /// disk (a rewrite or a reload changes the hash).
    documents: Mutex<HashMap<StrategyId, (u64, Arc<StrategyDocument>)>>,
    /// Counts the announced changes: a reader that polls (a native deployment, once a
    /// candle) compares it with the count it last saw before it reads anything.
    generation: AtomicU64,
    /// Which strategies are deployed (the supervisor's to say): read into every summary
    /// that leaves the registry (`isDeployed`), never stored in the index.
    deployed: Arc<dyn DeploymentView>,
    /// memd's own trades refused while the store was unreachable, to record again.
    outbox: outbox::Outbox,
}

/// What the registry asks of the deployments: whether a strategy has an active one.
pub trait DeploymentView: Send + Sync {
    fn is_deployed(&self, id: StrategyId) -> bool;
    /// Whether any strategy is deployed (most reads need look no further).
    fn any(&self) -> bool;
}

/// The view of a registry without deployments (tools, tests, benches).
struct NothingDeployed;

impl DeploymentView for NothingDeployed {
    fn is_deployed(&self, _: StrategyId) -> bool {
        false
    }
    fn any(&self) -> bool {
        false
    }
}

/// Documents kept for `strategies.get` at most; past it the cache starts over.
const CACHED_DOCUMENTS: usize = 4096;

/// Who a caller is, in words: the user's name (from the uid), else the client's name.
fn caller_name(caller: &Caller) -> String {
    caller
        .uid
        .and_then(|uid| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
        })
        .map(|u| u.name)
        .or_else(|| caller.client.as_deref().map(String::from))
        .unwrap_or_else(|| "memd".into())
}

fn audit_entry(
    caller: &Caller,
    action: &str,
    id: Option<StrategyId>,
    changes: Value,
) -> AuditEntry {
    AuditEntry {
        at: micros_now(),
        uid: caller.uid,
        client: caller.client.as_deref().map(String::from),
        action: action.into(),
        strategy_id: id,
        changes,
        server: None,
    }
}

/// Parses a version string strictly (it becomes a file name).
fn parse_version(field: &str, version: &str) -> Result<semver::Version> {
    semver::Version::parse(version).map_err(|e| {
        RegistryError::invalid(
            field,
            format!("{version:?} is not a semantic version (like 1.2.0): {e}"),
        )
    })
}

/// A return over `from..to`, compounded to a year; none over less than a day.
fn cagr(total_return: f64, from: DateTime<Utc>, to: DateTime<Utc>) -> Option<f64> {
    let days = (to - from).num_seconds() as f64 / 86_400.0;
    if days < 1.0 || total_return <= -1.0 || !total_return.is_finite() {
        return None;
    }
    let rate = (1.0 + total_return).powf(365.25 / days) - 1.0;
    rate.is_finite().then_some(rate)
}

/// Now, to the microsecond: what a database keeps, so a registry copied between backends
/// reads the same.
fn micros_now() -> DateTime<Utc> {
    chrono::SubsecRound::trunc_subsecs(Utc::now(), 6)
}

fn now_text(now: DateTime<Utc>) -> String {
    now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl Registry {
    /// Opens the registry at `root` (creating its directories) and loads every strategy;
    /// nothing is deployed.
    pub fn open(root: &Path, bus: Arc<EventBus>) -> anyhow::Result<Registry> {
        Self::open_with(root, bus, Arc::new(NothingDeployed))
    }

    /// [`Registry::open`], with the view of what is deployed.
    pub fn open_with(
        root: &Path,
        bus: Arc<EventBus>,
        deployed: Arc<dyn DeploymentView>,
    ) -> anyhow::Result<Registry> {
        let files = Arc::new(FileStore::open(root)?);
        let trades = trades::TradeStore::new(files.paths().clone());
        Self::on_store(files.clone(), Some(files), trades, bus, deployed)
    }

    /// The registry in a PostgreSQL database, its trades included.
    pub fn open_postgres(
        store: postgres::PgStore,
        bus: Arc<EventBus>,
        deployed: Arc<dyn DeploymentView>,
    ) -> anyhow::Result<Registry> {
        let store = Arc::new(store);
        let trades = trades::TradeStore::on_rows(store.clone());
        Self::on_store(store, None, trades, bus, deployed)
    }

    fn on_store(
        store: Arc<dyn Store>,
        files: Option<Arc<FileStore>>,
        trades: trades::TradeStore,
        bus: Arc<EventBus>,
        deployed: Arc<dyn DeploymentView>,
    ) -> anyhow::Result<Registry> {
        let loaded = store.load()?;
        Ok(Registry {
            trades,
            store,
            files,
            index: RwLock::new(Index::from_records(loaded.records)),
            issues: Mutex::new(loaded.issues),
            writer: Mutex::new(()),
            gate: RwLock::new(()),
            relations: RwLock::new(loaded.relations),
            bus,
            dirty_live: Mutex::new(HashSet::new()),
            documents: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            deployed,
            outbox: outbox::Outbox::default(),
        })
    }

    /// Applies what other servers' daemons write to a shared store, on a thread of its
    /// own, for as long as the registry lives (a store of this server's alone sends
    /// nothing and the thread ends at once).
    pub fn follow_remote(self: &Arc<Self>) {
        let (tx, rx) = std::sync::mpsc::channel();
        self.store.follow(tx);
        let registry = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("memd-registry-remote".into())
            .spawn(move || {
                while let Ok(change) = rx.recv() {
                    let Some(registry) = registry.upgrade() else {
                        return;
                    };
                    registry.apply_remote(change);
                }
            });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start following the other servers' changes");
        }
    }

    /// Brings memory up to what another server wrote: its index record, its cached
    /// document, the relationships; announced as if it were a change made here.
    pub fn apply_remote(&self, change: RemoteChange) {
        match change {
            RemoteChange::Strategy { id, stamp } => {
                let known = self
                    .index
                    .read()
                    .expect("index lock")
                    .get(id)
                    .map(|r| r.content_hash);
                if known.is_some_and(|k| k >= stamp) {
                    return;
                }
                match self.store.document(id) {
                    Ok((doc, stamp)) => self.apply_remote_document(doc, stamp),
                    Err(StoreError::NotFound(_)) => {
                        if self.index.write().expect("index lock").remove(id).is_some() {
                            self.documents.lock().expect("documents lock").remove(&id);
                            self.announce(id, RegistryChange::Removed, None);
                        }
                    }
                    Err(e) => {
                        warn!(%id, error = %e, "cannot read a strategy another server changed")
                    }
                }
            }
            RemoteChange::Trades { id } => self.trades.forget(id),
            RemoteChange::Relations => match self.store.relations() {
                Ok(all) => *self.relations.write().expect("relations lock") = all,
                Err(e) => warn!(error = %e, "cannot read the relationships another server changed"),
            },
            RemoteChange::Resync => self.resync(),
        }
    }

    fn apply_remote_document(&self, doc: StrategyDocument, stamp: Stamp) {
        let id = doc.strategy.id;
        let record = Record::from_doc(&doc, stamp);
        let summary = self.shown((*record.summary).clone());
        {
            let mut index = self.index.write().expect("index lock");
            // A change made here meanwhile is newer: keep it.
            if index.get(id).is_some_and(|r| r.content_hash >= stamp) {
                return;
            }
            let added = index.upsert(record);
            drop(index);
            self.documents.lock().expect("documents lock").remove(&id);
            let change = if added {
                RegistryChange::Added
            } else {
                RegistryChange::Updated
            };
            self.announce(id, change, Some(summary));
        }
    }

    /// After notifications may have been missed: every strategy whose stamp moved is read
    /// again, those gone are dropped, the relationships are read again, and the trade logs
    /// at their next use.
    fn resync(&self) {
        // Trades have no stamp to compare: a batch another server recorded while this one
        // did not listen (right after the database came back) would be missing from the
        // log in memory, and from the strategy's figures, until the next notification of
        // its trades. The logs are read again at their next use.
        self.trades.forget_all();
        let loaded = match self.store.load() {
            Ok(loaded) => loaded,
            Err(e) => {
                warn!(error = %e, "cannot compare the registry with its store");
                return;
            }
        };
        let present: HashSet<StrategyId> = loaded.records.iter().map(|r| r.summary.id).collect();
        for record in loaded.records {
            let id = record.summary.id;
            let stamp = record.content_hash;
            let known = self
                .index
                .read()
                .expect("index lock")
                .get(id)
                .map(|r| r.content_hash);
            if known.is_none_or(|k| k < stamp)
                && let Ok((doc, stamp)) = self.store.document(id)
            {
                self.apply_remote_document(doc, stamp);
            }
        }
        let gone: Vec<StrategyId> = self
            .index
            .read()
            .expect("index lock")
            .records()
            .iter()
            .map(Record::id)
            .filter(|id| !present.contains(id))
            .collect();
        for id in gone {
            self.index.write().expect("index lock").remove(id);
            self.documents.lock().expect("documents lock").remove(&id);
            self.announce(id, RegistryChange::Removed, None);
        }
        *self.relations.write().expect("relations lock") = loaded.relations;
    }

    /// Whether the store can be reached (files always can).
    pub fn health(&self) -> backend::Health {
        self.store.health()
    }

    /// The file store, when the registry is on files (backup, the watcher, hand edits).
    pub fn files(&self) -> Option<&FileStore> {
        self.files.as_deref()
    }

    /// The shared hold a change to the registry's files takes (never nested: a second
    /// shared hold could wait behind a queued exclusive one).
    fn writing(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().expect("registry gate")
    }

    /// Runs `f` while no file of the registry changes: the writes under way finish first,
    /// new ones wait until `f` returns. The live-trading summaries in the metadata are
    /// first brought up to date with the trade logs, so that files copied by `f` agree.
    pub fn with_writes_paused<T>(&self, f: impl FnOnce() -> T) -> T {
        let _paused = self.gate.write().expect("registry gate");
        self.flush_live_summaries_ungated();
        f()
    }

    pub fn len(&self) -> usize {
        self.index.read().expect("index lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Debug builds only: takes the index's write lock and never gives it back, as a
    /// writer stuck on a dead disk would. For the watchdog test.
    #[cfg(debug_assertions)]
    pub fn debug_hang_forever(&self) -> ! {
        let _held = self.index.write().expect("index lock");
        loop {
            std::thread::park();
        }
    }

    /// Metadata files that cannot be used right now.
    pub fn issues(&self) -> Vec<LoadIssue> {
        self.issues
            .lock()
            .expect("issues lock")
            .iter()
            .map(|(path, problem)| LoadIssue {
                path: path.clone(),
                problem: problem.clone(),
            })
            .collect()
    }

    /// Every strategy's list entry (shared, so this is a few pointer copies).
    pub fn summaries(&self) -> Vec<Arc<StrategySummary>> {
        let mut all: Vec<Arc<StrategySummary>> = self
            .index
            .read()
            .expect("index lock")
            .records()
            .iter()
            .map(|r| r.summary.clone())
            .collect();
        self.show_deployed(&mut all);
        all
    }

    /// Sets `isDeployed` on the summaries of deployed strategies (copying only those).
    fn show_deployed(&self, summaries: &mut [Arc<StrategySummary>]) {
        if !self.deployed.any() {
            return;
        }
        for s in summaries {
            if self.deployed.is_deployed(s.id) {
                Arc::make_mut(s).is_deployed = true;
            }
        }
    }

    /// A summary as it leaves the registry (with `isDeployed`).
    fn shown(&self, mut summary: StrategySummary) -> StrategySummary {
        summary.is_deployed = self.deployed.is_deployed(summary.id);
        summary
    }

    pub fn count_by_status(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for r in self.index.read().expect("index lock").records() {
            *counts.entry(r.summary.status.to_string()).or_insert(0) += 1;
        }
        counts
    }

    pub fn list(&self, params: &ListStrategiesParams) -> StrategyList {
        if params
            .query
            .as_deref()
            .is_some_and(|q| !q.trim().is_empty())
            && self.index.read().expect("index lock").has_dirty_chunks()
        {
            self.index.write().expect("index lock").refresh_chunks();
        }
        let mut list = self.index.read().expect("index lock").list(params);
        self.show_deployed(&mut list.strategies);
        list
    }

    pub fn summary(&self, id: StrategyId) -> Option<StrategySummary> {
        let summary = self
            .index
            .read()
            .expect("index lock")
            .get(id)
            .map(|r| (*r.summary).clone())?;
        Some(self.shown(summary))
    }

    fn exists(&self, id: StrategyId) -> Result<()> {
        if self.index.read().expect("index lock").get(id).is_some() {
            Ok(())
        } else {
            Err(RegistryError::NotFound(id))
        }
    }

    /// The strategy with this name, if any (names are unique).
    fn named(&self, name: &str) -> Option<StrategyId> {
        self.index
            .read()
            .expect("index lock")
            .records()
            .iter()
            .find(|r| r.summary.name == name)
            .map(|r| r.id())
    }

    /// A strategy named in a request's `field` (a replacement, a base, a link's end) must exist.
    fn referenced(&self, field: &str, id: StrategyId) -> Result<()> {
        self.exists(id).map_err(|_| {
            RegistryError::invalid(field, format!("strategy {id} not found in registry"))
        })
    }

    /// The document and the stamp of what it was read from.
    fn read_document_hashed(&self, id: StrategyId) -> Result<(StrategyDocument, u64)> {
        self.exists(id)?;
        Ok(self.store.document(id)?)
    }

    /// One strategy in full.
    pub fn get(&self, id: StrategyId) -> Result<StrategyDetail> {
        if let Some(detail) = self.get_cached(id) {
            return Ok(detail);
        }
        let (doc, hash) = self.read_document_hashed(id)?;
        let record_hash = self
            .index
            .read()
            .expect("index lock")
            .get(id)
            .map(|r| r.content_hash);
        if record_hash == Some(hash) {
            let mut documents = self.documents.lock().expect("documents lock");
            if documents.len() >= CACHED_DOCUMENTS {
                documents.clear();
            }
            documents.insert(id, (hash, Arc::new(doc.clone())));
        }
        let summary = self.summary(id).ok_or(RegistryError::NotFound(id))?;
        Ok(StrategyDetail {
            summary: Arc::new(summary),
            metadata: Arc::new(doc),
        })
    }

    /// How many changes the registry has announced: unchanged means no strategy changed
    /// (one atomic load, cheap enough to call on every candle).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// A strategy's `parameters` object as it stands.
    pub fn parameters(&self, id: StrategyId) -> Result<serde_json::Map<String, Value>> {
        Ok(self.get(id)?.metadata.strategy.parameters.clone())
    }

    /// One strategy in full if its document is in memory and current, without the disk:
    /// callable from an async task. Shares the cached summary and document, copies neither.
    pub fn get_cached(&self, id: StrategyId) -> Option<StrategyDetail> {
        let index = self.index.read().expect("index lock");
        let record = index.get(id)?;
        let documents = self.documents.lock().expect("documents lock");
        let (hash, doc) = documents.get(&id)?;
        if *hash != record.content_hash {
            return None;
        }
        let mut summary = [record.summary.clone()];
        self.show_deployed(&mut summary);
        let [summary] = summary;
        Some(StrategyDetail {
            summary,
            metadata: doc.clone(),
        })
    }

    /// Writes one audit entry on its own.
    fn audit(
        &self,
        caller: &Caller,
        action: &str,
        id: Option<StrategyId>,
        changes: Value,
    ) -> Result<()> {
        self.store.commit(&Commit {
            audit: vec![audit_entry(caller, action, id, changes)],
            ..Commit::default()
        })?;
        Ok(())
    }

    /// Reads, changes, checks, writes, indexes, audits and announces one document.
    /// `change` returns what to record in the audit log (`None`: not a client's mutation).
    fn mutate(
        &self,
        id: StrategyId,
        caller: &Caller,
        action: &str,
        change: impl FnOnce(&mut StrategyDocument, &mut Pending) -> Result<Option<Value>>,
    ) -> Result<StrategyDetail> {
        let _writing = self.writing();
        self.mutate_ungated(id, caller, action, change)
    }

    /// [`Registry::mutate`] for a caller that holds the gate.
    fn mutate_ungated(
        &self,
        id: StrategyId,
        caller: &Caller,
        action: &str,
        change: impl FnOnce(&mut StrategyDocument, &mut Pending) -> Result<Option<Value>>,
    ) -> Result<StrategyDetail> {
        let _writer = self.writer.lock().expect("writer lock");
        let (mut doc, stamp) = self.read_document_hashed(id)?;
        let mut pending = Pending::default();
        let audit = change(&mut doc, &mut pending)?;
        doc.strategy.metadata.last_updated = Some(now_text(Utc::now()));
        validate::document(&doc)?;
        let size = store::document_bytes(&doc).len();
        if size > validate::MAX_DOCUMENT_BYTES {
            return Err(RegistryError::invalid(
                "strategy",
                format!(
                    "the document would be {size} bytes; the limit is {}",
                    validate::MAX_DOCUMENT_BYTES
                ),
            ));
        }
        for write in &pending.versions {
            let (VersionWrite::New(v) | VersionWrite::Replace(v)) = write;
            parse_version("version", &v.version_number)?;
        }
        let mut audit: Vec<AuditEntry> = audit
            .map(|changes| audit_entry(caller, action, Some(id), changes))
            .into_iter()
            .collect();
        let link = match pending.link {
            Some(params) => {
                self.check_link(&params)?;
                self.new_link(params, caller, &mut audit)
            }
            None => None,
        };
        let stamp = self
            .store
            .commit(&Commit {
                document: Some(DocumentWrite::Update {
                    doc: &doc,
                    expected: stamp,
                }),
                versions: pending.versions,
                parameter_change: pending.parameter_change.as_ref(),
                link: link.clone().map(LinkWrite::Link),
                audit,
            })?
            .expect("a document write has a stamp");
        if let Some(link) = link {
            self.relations.write().expect("relations lock").push(link);
        }
        let record = Record::from_doc(&doc, stamp);
        let summary = self.shown((*record.summary).clone());
        self.index.write().expect("index lock").upsert(record);
        self.announce(id, RegistryChange::Updated, Some(summary.clone()));
        Ok(StrategyDetail {
            summary: Arc::new(summary),
            metadata: Arc::new(doc),
        })
    }

    fn announce(&self, id: StrategyId, change: RegistryChange, summary: Option<StrategySummary>) {
        self.generation.fetch_add(1, Ordering::Release);
        self.bus.publish(Event::RegistryChanged(RegistryChanged {
            strategy_id: id,
            change,
            strategy: summary.map(|s| Box::new(self.shown(s))),
        }));
    }

    /// Writes a new strategy (its id must be free, its name unique).
    fn create(
        &self,
        mut doc: StrategyDocument,
        caller: &Caller,
        action: &str,
        source: Value,
    ) -> Result<StrategyDetail> {
        let now = now_text(Utc::now());
        let meta = &mut doc.strategy.metadata;
        meta.created_at.get_or_insert_with(|| now.clone());
        meta.last_updated = Some(now);
        if meta.created_by.is_none() {
            meta.created_by = Some(
                caller
                    .client
                    .as_deref()
                    .map(String::from)
                    .unwrap_or_else(|| caller.uid.map_or("memd".into(), |u| format!("uid {u}"))),
            );
        }
        validate::document(&doc)?;
        let size = store::document_bytes(&doc).len();
        if size > validate::MAX_DOCUMENT_BYTES {
            return Err(RegistryError::invalid(
                "strategy",
                format!(
                    "the document is {size} bytes; the limit is {}",
                    validate::MAX_DOCUMENT_BYTES
                ),
            ));
        }
        let id = doc.strategy.id;
        let _writing = self.writing();
        let _writer = self.writer.lock().expect("writer lock");
        {
            let index = self.index.read().expect("index lock");
            if index.get(id).is_some() {
                return Err(RegistryError::Conflict(format!(
                    "strategy {id} is already registered"
                )));
            }
        }
        if let Some(other) = self.named(&doc.strategy.name) {
            return Err(RegistryError::Conflict(format!(
                "a strategy named {:?} is already registered ({other})",
                doc.strategy.name
            )));
        }
        let stamp = self
            .store
            .commit(&Commit {
                document: Some(DocumentWrite::Create(&doc)),
                audit: vec![audit_entry(
                    caller,
                    action,
                    Some(id),
                    json!({ "name": doc.strategy.name, "source": source }),
                )],
                ..Commit::default()
            })?
            .expect("a document write has a stamp");
        let record = Record::from_doc(&doc, stamp);
        let summary = self.shown((*record.summary).clone());
        self.index.write().expect("index lock").upsert(record);
        self.announce(id, RegistryChange::Added, Some(summary.clone()));
        Ok(StrategyDetail {
            summary: Arc::new(summary),
            metadata: Arc::new(doc),
        })
    }

    /// `strategies.register`.
    pub fn register(&self, params: RegisterParams, caller: &Caller) -> Result<StrategyDetail> {
        let (mut doc, _) = shapes::to_document(&params.strategy)?;
        refuse_measured(&doc)?;
        doc.strategy.id = StrategyId::new_random();
        if let Some(status) = params.status {
            doc.strategy.status = status;
        }
        self.create(doc, caller, "register", json!("strategies.register"))
    }

    /// `strategies.import`: each document on its own; one bad document does not stop the others.
    pub fn import(&self, params: ImportParams, caller: &Caller) -> ImportReport {
        let mut results = Vec::new();
        for item in params.documents {
            let outcome = shapes::to_document(&item.document)
                .map_err(RegistryError::from)
                .and_then(|(mut doc, had_id)| {
                    // Measured elsewhere (another registry's versions): not here.
                    doc.strategy.performance.backtest.measured = None;
                    if !had_id {
                        doc.strategy.id = StrategyId::new_random();
                    }
                    self.create(doc, caller, "import", json!(item.source))
                });
            results.push(match outcome {
                Ok(detail) => ImportResult {
                    source: item.source,
                    id: Some(detail.summary.id),
                    name: Some(detail.summary.name.clone()),
                    error: None,
                },
                Err(e) => ImportResult {
                    source: item.source,
                    id: None,
                    name: None,
                    error: Some(e.to_string()),
                },
            });
        }
        let failed = results.iter().filter(|r| r.error.is_some()).count();
        ImportReport {
            imported: results.len() - failed,
            failed,
            results,
        }
    }

    /// `strategies.update`: a merge patch over the `strategy` object.
    pub fn update(&self, params: UpdateParams, caller: &Caller) -> Result<StrategyDetail> {
        let Some(patch) = params.patch.as_object() else {
            return Err(RegistryError::invalid(
                "patch",
                "must be a JSON object (a merge patch over the strategy)",
            ));
        };
        if patch.contains_key("id") {
            return Err(RegistryError::invalid(
                "patch.id",
                "a strategy's id never changes",
            ));
        }
        if patch.contains_key("status") {
            return Err(RegistryError::invalid(
                "patch.status",
                "use strategies.status or strategies.deprecate to change the status",
            ));
        }
        if patch.is_empty() {
            return Err(RegistryError::invalid(
                "patch",
                "is empty: nothing to change",
            ));
        }
        if let Some(reason) = &params.reason {
            validate_text("reason", reason, 2_000)?;
        }
        if patch
            .get("performance")
            .and_then(|p| p.get("backtest"))
            .and_then(|b| b.as_object())
            .is_some_and(|b| b.contains_key("measured"))
        {
            return Err(measured_refused("patch.performance.backtest.measured"));
        }
        let patch_value = params.patch.clone();
        self.mutate(params.id, caller, "update", |doc, _| {
            let measured = doc.strategy.performance.backtest.measured.take();
            let mut value = serde_json::to_value(&doc.strategy).map_err(anyhow::Error::from)?;
            json_patch::merge(&mut value, &patch_value);
            doc.strategy = serde_path_to_error::deserialize(value).map_err(|e| {
                RegistryError::invalid(format!("strategy.{}", e.path()), e.into_inner().to_string())
            })?;
            doc.strategy.performance.backtest.measured = measured;
            if let Some(other) = self.named(&doc.strategy.name).filter(|&o| o != params.id) {
                return Err(RegistryError::Conflict(format!(
                    "a strategy named {:?} is already registered ({other})",
                    doc.strategy.name
                )));
            }
            Ok(Some(
                json!({ "patch": patch_value, "reason": params.reason }),
            ))
        })
    }

    /// `strategies.status` (not to deprecated: that needs `strategies.deprecate`).
    pub fn set_status(&self, params: SetStatusParams, caller: &Caller) -> Result<StrategyDetail> {
        if params.status == StrategyStatus::Deprecated {
            return Err(RegistryError::invalid(
                "status",
                "use strategies.deprecate, which records a reason and a date",
            ));
        }
        if let Some(reason) = &params.reason {
            validate_text("reason", reason, 2_000)?;
        }
        self.mutate(params.id, caller, "status", |doc, _| {
            let old = doc.strategy.status;
            doc.strategy.status = params.status;
            if old == StrategyStatus::Deprecated {
                doc.strategy.metadata.deprecation_date = None;
                doc.strategy.metadata.deprecation_reason = None;
            }
            Ok(Some(
                json!({ "from": old, "to": params.status, "reason": params.reason }),
            ))
        })
    }

    /// `strategies.deprecate`.
    pub fn deprecate(&self, params: DeprecateParams, caller: &Caller) -> Result<StrategyDetail> {
        validate_text("reason", &params.reason, 2_000)?;
        if params.reason.trim().is_empty() {
            return Err(RegistryError::invalid(
                "reason",
                "must say why the strategy is deprecated",
            ));
        }
        if let Some(replacement) = params.replacement_id {
            if replacement == params.id {
                return Err(RegistryError::invalid(
                    "replacementId",
                    "a strategy cannot replace itself",
                ));
            }
            self.referenced("replacementId", replacement)?;
        }
        let date = params.date.unwrap_or_else(|| Utc::now().date_naive());
        // The status and its link are one commit.
        self.mutate(params.id, caller, "deprecate", |doc, pending| {
            let old = doc.strategy.status;
            doc.strategy.status = StrategyStatus::Deprecated;
            let meta = &mut doc.strategy.metadata;
            meta.deprecation_date = Some(date.to_string());
            meta.deprecation_reason = Some(params.reason.clone());
            meta.replacement_strategy_id = params.replacement_id.map(|r| r.to_string());
            pending.link = params.replacement_id.map(|replacement| LinkParams {
                from: replacement,
                to: params.id,
                relationship: RelationshipType::Replaces,
                note: Some(params.reason.clone()),
                similarity_score: None,
            });
            Ok(Some(json!({ "from": old, "reason": params.reason, "date": date, "replacementId": params.replacement_id })))
        })
    }

    /// `strategies.tags`.
    pub fn tags(&self, params: TagsParams, caller: &Caller) -> Result<StrategyDetail> {
        if params.add.is_empty() && params.remove.is_empty() {
            return Err(RegistryError::invalid(
                "add",
                "give tags to add or to remove",
            ));
        }
        self.mutate(params.id, caller, "tags", |doc, _| {
            let tags = &mut doc.strategy.classification.tags;
            let before = tags.clone();
            tags.retain(|t| !params.remove.iter().any(|r| r.eq_ignore_ascii_case(t)));
            for tag in &params.add {
                if !tags.iter().any(|t| t.eq_ignore_ascii_case(tag)) {
                    tags.push(tag.clone());
                }
            }
            Ok(Some(json!({ "before": before, "after": tags.clone() })))
        })
    }

    /// `strategies.mem.mark_enhanced`: `id` is the MEM-enhanced version of `base_id`.
    pub fn mark_enhanced(
        &self,
        params: MarkEnhancedParams,
        caller: &Caller,
    ) -> Result<StrategyDetail> {
        if params.id == params.base_id {
            return Err(RegistryError::invalid(
                "baseId",
                "a strategy cannot be the MEM-enhanced version of itself",
            ));
        }
        self.referenced("baseId", params.base_id)?;
        // The flag and its link are one commit.
        self.mutate(params.id, caller, "mem.mark_enhanced", |doc, pending| {
            let mem = &mut doc.strategy.mem_integration;
            mem.enabled = true;
            mem.enhancement_type = Some("full".into());
            mem.base_strategy_id = Some(params.base_id);
            pending.link = Some(LinkParams {
                from: params.id,
                to: params.base_id,
                relationship: RelationshipType::MemEnhancedVersion,
                note: None,
                similarity_score: None,
            });
            Ok(Some(json!({ "baseId": params.base_id })))
        })
    }

    /// `strategies.mem.learned_patterns`.
    pub fn learned_patterns(
        &self,
        params: LearnedPatternsParams,
        caller: &Caller,
    ) -> Result<StrategyDetail> {
        self.mutate(params.id, caller, "mem.learned_patterns", |doc, _| {
            let old = doc.strategy.mem_integration.learned_patterns_count;
            doc.strategy.mem_integration.learned_patterns_count = params.count;
            Ok(Some(json!({ "from": old, "to": params.count })))
        })
    }

    /// `strategies.link`.
    pub fn link(&self, params: LinkParams, caller: &Caller) -> Result<Relationship> {
        let _writing = self.writing();
        self.check_link(&params)?;
        let _writer = self.writer.lock().expect("writer lock");
        let mut audit = Vec::new();
        let Some(link) = self.new_link(params.clone(), caller, &mut audit) else {
            // Linking the same pair twice is a no-op that answers the first link.
            return Ok(self
                .find_link(params.from, params.to, params.relationship)
                .expect("found by new_link"));
        };
        self.store.commit(&Commit {
            link: Some(LinkWrite::Link(link.clone())),
            audit,
            ..Commit::default()
        })?;
        self.relations
            .write()
            .expect("relations lock")
            .push(link.clone());
        Ok(link)
    }

    /// What `strategies.link` checks of a link.
    fn check_link(&self, params: &LinkParams) -> Result<()> {
        if params.from == params.to {
            return Err(RegistryError::invalid(
                "to",
                "a strategy cannot be linked to itself",
            ));
        }
        self.referenced("from", params.from)?;
        self.referenced("to", params.to)?;
        if let Some(note) = &params.note {
            validate_text("note", note, 2_000)?;
        }
        if let Some(s) = params.similarity_score.filter(|s| !(0.0..=1.0).contains(s)) {
            return Err(RegistryError::invalid(
                "similarityScore",
                format!("is from 0 (unlike) to 1 (the same), got {s}"),
            ));
        }
        Ok(())
    }

    /// The link to write, with its audit entry, unless it exists (under the writer's lock).
    fn new_link(
        &self,
        params: LinkParams,
        caller: &Caller,
        audit: &mut Vec<AuditEntry>,
    ) -> Option<Relationship> {
        if self
            .find_link(params.from, params.to, params.relationship)
            .is_some()
        {
            return None;
        }
        let link = Relationship {
            from: params.from,
            to: params.to,
            relationship: params.relationship,
            note: params.note,
            similarity_score: params.similarity_score,
            created_at: micros_now(),
        };
        audit.push(audit_entry(
            caller,
            "link",
            Some(link.from),
            json!({ "to": link.to, "relationship": link.relationship, "similarityScore": link.similarity_score }),
        ));
        Some(link)
    }

    fn find_link(
        &self,
        from: StrategyId,
        to: StrategyId,
        relationship: RelationshipType,
    ) -> Option<Relationship> {
        self.relations
            .read()
            .expect("relations lock")
            .iter()
            .find(|r| r.from == from && r.to == to && r.relationship == relationship)
            .cloned()
    }

    /// Every link touching `id`.
    fn links_touching(&self, id: StrategyId) -> Vec<Relationship> {
        self.relations
            .read()
            .expect("relations lock")
            .iter()
            .filter(|r| r.from == id || r.to == id)
            .cloned()
            .collect()
    }

    /// `strategies.unlink`.
    pub fn unlink(&self, params: LinkParams, caller: &Caller) -> Result<Unlinked> {
        let _writing = self.writing();
        let _writer = self.writer.lock().expect("writer lock");
        let Some(existing) = self.find_link(params.from, params.to, params.relationship) else {
            return Ok(Unlinked { removed: false });
        };
        self.store.commit(&Commit {
            link: Some(LinkWrite::Unlink(existing)),
            audit: vec![audit_entry(
                caller,
                "unlink",
                Some(params.from),
                json!({ "to": params.to, "relationship": params.relationship }),
            )],
            ..Commit::default()
        })?;
        self.relations.write().expect("relations lock").retain(|r| {
            !(r.from == params.from && r.to == params.to && r.relationship == params.relationship)
        });
        Ok(Unlinked { removed: true })
    }

    /// `strategies.related`: breadth-first over links in both directions.
    pub fn related(&self, params: RelatedParams) -> Result<RelatedList> {
        self.exists(params.id)?;
        let depth_limit = params.depth.unwrap_or(1);
        if !(1..=10).contains(&depth_limit) {
            return Err(RegistryError::invalid(
                "depth",
                format!("is {depth_limit}; it must be between 1 and 10"),
            ));
        }
        let mut seen = HashSet::from([params.id]);
        let mut queue = VecDeque::from([(params.id, 0u32)]);
        let mut related = Vec::new();
        while let Some((current, depth)) = queue.pop_front() {
            if depth >= depth_limit {
                continue;
            }
            for link in self.links_touching(current) {
                if !params.types.is_empty() && !params.types.contains(&link.relationship) {
                    continue;
                }
                let (other, direction) = if link.from == current {
                    (link.to, Direction::Outgoing)
                } else {
                    (link.from, Direction::Incoming)
                };
                if !seen.insert(other) {
                    continue;
                }
                if let Some(strategy) = self.summary(other) {
                    related.push(RelatedStrategy {
                        relationship: link.relationship,
                        direction,
                        depth: depth + 1,
                        via: current,
                        strategy,
                    });
                    queue.push_back((other, depth + 1));
                }
            }
        }
        Ok(RelatedList {
            strategy_id: params.id,
            related,
        })
    }

    /// A backtest memd ran: the whole result on the version it measured (its file made
    /// when the version had none), and, when it passed validation, the figures a
    /// recommendation uses (`performance.backtest.measured`) with the seed's members
    /// (`sharpe_ratio`, `win_rate`, `num_trades`, `total_return`, `max_drawdown`).
    pub fn record_backtest(
        &self,
        result: &mem_protocol::backtest::BacktestResult,
    ) -> Result<StrategyDetail> {
        use mem_protocol::backtest::ValidationStatus;
        let caller = Caller {
            uid: None,
            client: Some("memd backtest".into()),
        };
        let results = match serde_json::to_value(result).map_err(anyhow::Error::from)? {
            Value::Object(map) => map,
            _ => unreachable!("a result serializes to an object"),
        };
        let passed = result.validation.status == ValidationStatus::Passed;
        self.mutate(result.strategy_id, &caller, "backtest", |doc, pending| {
            let existing = self
                .store
                .versions(result.strategy_id)?
                .into_iter()
                .find(|v| v.version_number == result.version);
            let mut record = existing.unwrap_or_else(|| VersionRecord {
                is_active: result.version == doc.strategy.version,
                ..VersionRecord::new(
                    result.strategy_id,
                    result.version.clone(),
                    "recorded by memd with its first backtest".into(),
                    doc.strategy.parameters.clone(),
                    "memd".into(),
                )
            });
            record.backtest_results = results.clone();
            let f = &result.figures;
            record.validation_status = Some(if passed {
                VersionValidation::Passed
            } else {
                VersionValidation::Failed
            });
            record.sharpe_ratio = f.sharpe;
            record.win_rate = Some(f.win_rate);
            record.max_drawdown = Some(f.max_drawdown);
            record.cagr = cagr(f.profit_pct, result.data_from, result.data_to);
            // Written loose by memd before these fields were typed.
            for key in ["validation_status", "sharpe_ratio", "win_rate", "max_drawdown"] {
                record.extra.remove(key);
            }
            pending.versions.push(VersionWrite::Replace(record));
            doc.strategy.metadata.last_backtest = Some(now_text(result.finished_at));
            if passed {
                let b = &mut doc.strategy.performance.backtest;
                b.sharpe_ratio = f.sharpe;
                b.win_rate = Some(f.win_rate);
                b.num_trades = Some(f.trades);
                b.total_return = Some(f.profit_pct);
                b.max_drawdown = Some(f.max_drawdown);
                b.measured = Some(mem_protocol::strategy::MeasuredBacktest {
                    job_id: result.job_id.clone(),
                    version: result.version.clone(),
                    engine: result.engine,
                    pairs: result.pairs.clone(),
                    timeframe: result.timeframe.clone(),
                    data_from: result.data_from,
                    data_to: result.data_to,
                    trades: f.trades,
                    sharpe_ratio: f.sharpe,
                    win_rate: f.win_rate,
                    max_drawdown: f.max_drawdown,
                    total_return: f.profit_pct,
                    finished_at: result.finished_at,
                });
            }
            Ok(Some(json!({
                "job": result.job_id, "version": result.version, "validation": result.validation.status,
                "trades": f.trades, "sharpe": f.sharpe, "winRate": f.win_rate,
            })))
        })
    }

    /// `strategies.versions.create`.
    pub fn create_version(
        &self,
        params: CreateVersionParams,
        caller: &Caller,
    ) -> Result<VersionRecord> {
        validate_text("changelog", &params.changelog, 20_000)?;
        for (field, text) in [
            ("breakingChanges", &params.breaking_changes),
            ("migrationNotes", &params.migration_notes),
        ] {
            if let Some(text) = text {
                validate_text(field, text, 20_000)?;
            }
        }
        if let Some(c) = params.test_coverage.filter(|c| !(0.0..=100.0).contains(c)) {
            return Err(RegistryError::invalid(
                "testCoverage",
                format!("is a percentage from 0 to 100, got {c}"),
            ));
        }
        if let Some(m) = params
            .mem_improvement_pct
            .filter(|m| !m.is_finite() || m.abs() > 1e6)
        {
            return Err(RegistryError::invalid(
                "memImprovementPct",
                format!("must be a finite percentage, got {m}"),
            ));
        }
        if let Some(defaults) = &params.default_parameters {
            for (name, value) in defaults {
                validate::parameter_declaration(name, value).map_err(|e| {
                    RegistryError::invalid(format!("defaultParameters.{name}"), e.message)
                })?;
            }
        }
        if params.changelog.trim().is_empty() {
            return Err(RegistryError::invalid("changelog", "must say what changed"));
        }
        if let Some(hash) = &params.git_hash {
            if !(7..=64).contains(&hash.len()) || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(RegistryError::invalid(
                    "gitHash",
                    format!("{hash:?} is not a git commit hash (7 to 64 hex digits)"),
                ));
            }
        }
        if let Some(code) = &params.code_snapshot {
            if code.len() > 512 * 1024 {
                return Err(RegistryError::invalid(
                    "codeSnapshot",
                    format!("is {} bytes; the limit is {}", code.len(), 512 * 1024),
                ));
            }
        }
        if let Some(parameters) = &params.parameters {
            for (name, value) in parameters {
                validate::parameter_declaration(name, value)?;
            }
        }
        let existing = self.store.versions(params.id)?;
        let mut created = None;
        self.mutate(params.id, caller, "versions.create", |doc, pending| {
            let current = parse_version("version", &doc.strategy.version)?;
            let latest = existing.iter().filter_map(|v| semver::Version::parse(&v.version_number).ok()).max().map_or(current.clone(), |v| v.max(current.clone()));
            let (version, version_type) = match (&params.version, params.bump) {
                (Some(_), Some(_)) => return Err(RegistryError::invalid("version", "give either `version` or `bump`, not both")),
                (None, None) => return Err(RegistryError::invalid("bump", "give `bump` (major, minor, patch) or an explicit `version`")),
                (None, Some(bump)) => (bumped(&latest, bump), Some(bump)),
                (Some(text), None) => {
                    let v = parse_version("version", text)?;
                    if v <= latest {
                        return Err(RegistryError::invalid("version", format!("{v} is not above the latest version {latest}")));
                    }
                    let kind = if v.major != latest.major { VersionBump::Major } else if v.minor != latest.minor { VersionBump::Minor } else { VersionBump::Patch };
                    (v, Some(kind))
                }
            };
            let record = VersionRecord {
                version_type,
                backtest_results: params.backtest.clone().unwrap_or_default(),
                code_snapshot: params.code_snapshot.clone(),
                git_commit_hash: params.git_hash.clone(),
                breaking_changes: params.breaking_changes.clone(),
                migration_notes: params.migration_notes.clone(),
                default_parameters: params.default_parameters.clone().unwrap_or_default(),
                test_coverage: params.test_coverage,
                mem_improvement_pct: params.mem_improvement_pct,
                is_active: true,
                ..VersionRecord::new(
                    params.id,
                    version.to_string(),
                    params.changelog.clone(),
                    params.parameters.clone().unwrap_or_else(|| doc.strategy.parameters.clone()),
                    caller.client.as_deref().map(String::from).unwrap_or_else(|| caller.uid.map_or("memd".into(), |u| format!("uid {u}"))),
                )
            };
            let mut versions = vec![VersionWrite::New(record.clone())];
            // The version it replaces is no longer the one that runs.
            for mut older in existing.iter().filter(|v| v.is_active).cloned() {
                older.is_active = false;
                older.deprecated_at = Some(record.created_at);
                versions.push(VersionWrite::Replace(older));
            }
            pending.versions = versions;
            doc.strategy.version = record.version_number.clone();
            if let Some(parameters) = &params.parameters {
                doc.strategy.parameters = parameters.clone();
            }
            let audit = json!({ "version": record.version_number, "type": version_type, "changelog": params.changelog });
            created = Some(record);
            Ok(Some(audit))
        })?;
        Ok(created.expect("set by the mutation"))
    }

    /// `strategies.versions.list`.
    pub fn versions(&self, id: StrategyId) -> Result<VersionList> {
        let current = self
            .index
            .read()
            .expect("index lock")
            .get(id)
            .map(|r| r.summary.version.clone())
            .ok_or(RegistryError::NotFound(id))?;
        let mut versions = self.store.versions(id)?;
        // Versions written before memd kept `is_active`: the current one is.
        if !versions.iter().any(|v| v.is_active) {
            for v in versions.iter_mut().filter(|v| v.version_number == current) {
                v.is_active = true;
            }
        }
        Ok(VersionList {
            strategy_id: id,
            current_version: current,
            versions,
        })
    }

    /// `strategies.versions.approve`: records who approved a version, and when.
    pub fn approve_version(
        &self,
        params: ApproveVersionParams,
        caller: &Caller,
    ) -> Result<VersionRecord> {
        let by = match &params.by {
            Some(by) => {
                validate_text("by", by, 128)?;
                by.clone()
            }
            None => caller_name(caller),
        };
        let mut record = self.version(GetVersionParams {
            id: params.id,
            version: params.version.clone(),
        })?;
        let _writing = self.writing();
        record.approved_by = Some(by.clone());
        record.approved_at = Some(micros_now());
        self.store.commit(&Commit {
            versions: vec![VersionWrite::Replace(record.clone())],
            audit: vec![audit_entry(
                caller,
                "versions.approve",
                Some(params.id),
                json!({ "version": record.version_number, "by": by }),
            )],
            ..Commit::default()
        })?;
        Ok(record)
    }

    /// `strategies.versions.get`.
    pub fn version(&self, params: GetVersionParams) -> Result<VersionRecord> {
        self.exists(params.id)?;
        let wanted = parse_version("version", &params.version)?;
        self.store
            .versions(params.id)?
            .into_iter()
            .find(|v| semver::Version::parse(&v.version_number).ok().as_ref() == Some(&wanted))
            .ok_or_else(|| {
                RegistryError::Missing(format!("strategy {} has no version {wanted}", params.id))
            })
    }

    /// `strategies.parameters.update`.
    pub fn update_parameter(
        &self,
        params: UpdateParameterParams,
        caller: &Caller,
    ) -> Result<ParameterChange> {
        validate_text("reason", &params.reason, 2_000)?;
        if params.reason.trim().is_empty() {
            return Err(RegistryError::invalid(
                "reason",
                "must say why the parameter changes",
            ));
        }
        match (&params.ab_test_group, params.is_ab_test) {
            (Some(group), _)
                if group.is_empty()
                    || group.len() > 8
                    || !group.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                return Err(RegistryError::invalid(
                    "abTestGroup",
                    format!("{group:?}: an A/B arm is 1 to 8 letters or digits (A, B, C...)"),
                ));
            }
            (Some(_), false) => {
                return Err(RegistryError::invalid(
                    "abTestGroup",
                    "is given only with isAbTest",
                ));
            }
            (None, true) => {
                return Err(RegistryError::invalid(
                    "abTestGroup",
                    "say which arm (A, B...) this change is",
                ));
            }
            _ => {}
        }
        let mut change = None;
        self.mutate(params.id, caller, "parameters.update", |doc, pending| {
            let names: Vec<String> = doc.strategy.parameters.keys().cloned().collect();
            let Some(slot) = doc.strategy.parameters.get_mut(&params.name) else {
                return Err(RegistryError::invalid("name", format!("strategy has no parameter {:?}; it has: {}", params.name, names.join(", "))));
            };
            let field = format!("value (parameter {})", params.name);
            let declared = slot.as_object().filter(|o| o.contains_key("value") && o.contains_key("type")).is_some();
            let old = if declared {
                let decl = slot.as_object_mut().expect("checked");
                let kind = decl["type"].as_str().unwrap_or("").to_string();
                let min = decl.get("min").and_then(Value::as_f64);
                let max = decl.get("max").and_then(Value::as_f64);
                validate::check_value(&field, &kind, min, max, &params.value)?;
                std::mem::replace(decl.get_mut("value").expect("checked"), params.value.clone())
            } else {
                if !same_json_type(slot, &params.value) {
                    return Err(RegistryError::invalid(field, format!("{} is not of the same type as the current value {}", params.value, slot)));
                }
                std::mem::replace(slot, params.value.clone())
            };
            check_runnable(doc, &params.name, &params.value, &old, &field)?;
            let record = ParameterChange {
                version_id: Some(doc.strategy.version.clone()),
                is_ab_test: params.is_ab_test,
                ab_test_group: params.ab_test_group.clone(),
                ..ParameterChange::new(
                    params.id,
                    params.name.clone(),
                    old.clone(),
                    params.value.clone(),
                    params.reason.clone(),
                    params.changed_by,
                    caller.uid,
                )
            };
            pending.parameter_change = Some(record.clone());
            change = Some(record);
            Ok(Some(json!({ "parameter": params.name, "from": old, "to": params.value, "reason": params.reason, "changedBy": params.changed_by })))
        })?;
        Ok(change.expect("set by the mutation"))
    }

    /// Records a change made outside the strategy's declared parameters (the learning
    /// loop's position-size multiplier and confidence threshold) in its parameter history.
    pub fn record_parameter_change(
        &self,
        mut change: ParameterChange,
        caller: &Caller,
    ) -> Result<()> {
        self.exists(change.strategy_id)?;
        if change.version_id.is_none() {
            change.version_id = self.summary(change.strategy_id).map(|s| s.version);
        }
        let _writing = self.writing();
        self.store.commit(&Commit {
            parameter_change: Some(&change),
            audit: vec![audit_entry(
                caller,
                "parameters.record",
                Some(change.strategy_id),
                json!({ "parameter": change.parameter_name, "from": change.old_value, "to": change.new_value, "reason": change.change_reason, "changedBy": change.changed_by }),
            )],
            ..Commit::default()
        })?;
        Ok(())
    }

    /// `strategies.parameters.history`.
    pub fn parameter_history(&self, params: ParameterHistoryParams) -> Result<ParameterHistory> {
        self.exists(params.id)?;
        let mut changes = self
            .store
            .parameter_changes(params.id, params.name.as_deref())?;
        self.measure_changes(params.id, &mut changes)?;
        Ok(ParameterHistory { changes })
    }

    /// Fills in each change's span (until the next change of the same parameter) and its
    /// measured effect: the Sharpe of the strategy's trades closed in the 30 days before
    /// it and while it was in force (none with fewer than two days of trades).
    fn measure_changes(&self, id: StrategyId, changes: &mut [ParameterChange]) -> Result<()> {
        const BEFORE_MS: i64 = 30 * 86_400_000;
        for i in 0..changes.len() {
            let next = changes[i + 1..]
                .iter()
                .find(|c| c.parameter_name == changes[i].parameter_name)
                .map(|c| c.applied_from.unwrap_or(c.changed_at));
            let c = &mut changes[i];
            c.applied_from.get_or_insert(c.changed_at);
            c.applied_to = next;
        }
        if changes.is_empty() || !self.trades.may_have_trades(id) {
            return Ok(());
        }
        let log = self.trades.log(id)?;
        let log = log.lock().expect("trade log lock");
        for c in changes.iter_mut() {
            let from = c.applied_from.unwrap_or(c.changed_at).timestamp_millis();
            let to = c.applied_to.map(|t| t.timestamp_millis());
            let sharpe =
                |a: i64, b: Option<i64>| metrics::compute(&log.points_in(Some(a), b)).sharpe_ratio;
            c.before_sharpe = sharpe(from - BEFORE_MS, Some(from));
            c.after_sharpe = sharpe(from, to);
            c.improvement_pct = match (c.before_sharpe, c.after_sharpe) {
                (Some(b), Some(a)) if b.abs() > 1e-12 => Some((a - b) / b.abs() * 100.0),
                _ => None,
            };
        }
        Ok(())
    }

    /// `strategies.trades.record`: all trades are checked first; nothing is written when
    /// one is wrong. The answer comes after the new lines are on disk.
    pub fn record_trades(
        &self,
        params: RecordTradesParams,
        caller: &Caller,
    ) -> Result<RecordedTrades> {
        self.exists(params.id)?;
        if params.trades.len() > validate::MAX_TRADES_PER_BATCH {
            return Err(RegistryError::invalid(
                "trades",
                format!(
                    "{} trades in one call; the limit is {}",
                    params.trades.len(),
                    validate::MAX_TRADES_PER_BATCH
                ),
            ));
        }
        for (i, trade) in params.trades.iter().enumerate() {
            validate::trade(i, trade)?;
        }
        self.check_trade_versions(&params)?;
        let _writing = self.writing();
        let log = self.trades.log(params.id)?;
        let (duplicates, totals) = {
            let mut log = log.lock().expect("trade log lock");
            let duplicates = log.append(&params.trades, Utc::now())?;
            (duplicates, log.totals())
        };
        let recorded = params.trades.len() - duplicates.len();
        if recorded > 0 {
            let last_used = totals
                .last_exit_ms
                .and_then(DateTime::from_timestamp_millis)
                .map(now_text);
            self.index.write().expect("index lock").set_live(
                params.id,
                totals.trades,
                totals.total_pnl,
                last_used,
            );
            self.dirty_live
                .lock()
                .expect("dirty lock")
                .insert(params.id);
            self.audit(
                caller,
                "trades.record",
                Some(params.id),
                json!({ "recorded": recorded, "duplicates": duplicates.len() }),
            )?;
        }
        Ok(RecordedTrades {
            recorded,
            duplicates,
            total_trades: totals.trades,
        })
    }

    /// Records trades memd itself made (a learned strategy's, a native runner's). Refused
    /// because the store cannot be reached, they wait in the outbox and are recorded when
    /// it answers again ([`Registry::retry_own_trades`]): answered `None`.
    pub fn record_own_trades(
        &self,
        params: RecordTradesParams,
        caller: &Caller,
    ) -> Result<Option<RecordedTrades>> {
        let RecordTradesParams { id, trades } = params;
        match self.record_trades(
            RecordTradesParams {
                id,
                trades: trades.clone(),
            },
            caller,
        ) {
            Err(RegistryError::Unavailable(why)) => {
                let count = trades.len();
                let by = caller.client.as_deref().unwrap_or("memd").to_string();
                self.outbox.keep(outbox::Held { id, by, trades })?;
                warn!(strategy_id = %id, trades = count, %why, "the registry cannot take memd's trades now: kept to record them when it can");
                Ok(None)
            }
            other => other.map(Some),
        }
    }

    /// Keeps memd's own refused trades in `file` (and records those a previous memd left
    /// there at the next retry).
    pub fn keep_own_trades_in(&self, file: &Path) -> anyhow::Result<()> {
        let found = self.outbox.keep_in(file)?;
        if found > 0 {
            info!(batches = found, file = %file.display(), "found memd's trades the registry could not take before: recording them");
        }
        Ok(())
    }

    /// How many of memd's own trades wait for the store.
    pub fn own_trades_waiting(&self) -> usize {
        self.outbox.trades()
    }

    /// Records what waits in the outbox, while the store takes it. A batch refused for
    /// another reason than an unreachable store (its strategy deleted meanwhile) can never
    /// be recorded: it is dropped with a warning.
    pub fn retry_own_trades(&self) {
        let recorded = self.outbox.retry(|held| {
            let caller = Caller {
                uid: None,
                client: Some(held.by.as_str().into()),
            };
            let params = RecordTradesParams {
                id: held.id,
                trades: held.trades.clone(),
            };
            match self.record_trades(params, &caller) {
                Ok(_) => true,
                Err(RegistryError::Unavailable(_)) => false,
                Err(e) => {
                    warn!(strategy_id = %held.id, trades = held.trades.len(), error = %e, "dropped memd's trades the registry refused");
                    true
                }
            }
        });
        match recorded {
            Ok(0) => {}
            Ok(n) => info!(
                trades = n,
                "recorded memd's trades the registry could not take before"
            ),
            Err(e) => warn!(error = %format!("{e:#}"), "cannot rewrite the trade outbox"),
        }
    }

    /// A trade that names the version it ran (`versionId`) names one of the strategy's
    /// (its history's, or its current one).
    fn check_trade_versions(&self, params: &RecordTradesParams) -> Result<()> {
        let named: BTreeSet<&str> = params
            .trades
            .iter()
            .filter_map(|t| t.version_id.as_deref())
            .collect();
        if named.is_empty() {
            return Ok(());
        }
        let list = self.versions(params.id)?;
        let known: BTreeSet<String> = list
            .versions
            .into_iter()
            .map(|v| v.version_number)
            .chain([list.current_version])
            .collect();
        for (i, trade) in params.trades.iter().enumerate() {
            if let Some(v) = trade.version_id.as_deref().filter(|v| !known.contains(*v)) {
                return Err(RegistryError::invalid(
                    format!("trades[{i}].versionId"),
                    format!(
                        "strategy {} has no version {v:?} (its versions: {})",
                        params.id,
                        known.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `strategies.trades.list`.
    pub fn list_trades(&self, params: ListTradesParams) -> Result<TradeList> {
        self.exists(params.id)?;
        let log = self.trades.log(params.id)?;
        let log = log.lock().expect("trade log lock");
        let (trades, total) = log.list(
            params.from.map(|t| t.timestamp_millis()),
            params.to.map(|t| t.timestamp_millis()),
            params.offset.unwrap_or(0),
            params.limit.unwrap_or(1000),
        )?;
        Ok(TradeList { trades, total })
    }

    /// `strategies.performance`.
    pub fn performance(&self, params: PerformanceParams) -> Result<PerformanceReport> {
        let name = self
            .index
            .read()
            .expect("index lock")
            .get(params.id)
            .map(|r| r.summary.display_name.clone())
            .ok_or(RegistryError::NotFound(params.id))?;
        if let (Some(from), Some(to)) = (params.from, params.to) {
            if to < from {
                return Err(RegistryError::invalid(
                    "to",
                    "the range ends before it starts",
                ));
            }
        }
        let points = {
            let log = self.trades.log(params.id)?;
            let log = log.lock().expect("trade log lock");
            log.points_in(
                params.from.map(|t| t.timestamp_millis()),
                params.to.map(|t| t.timestamp_millis()),
            )
        };
        let (mem, other): (Vec<_>, Vec<_>) = points.iter().partition(|p| p.mem_enhanced);
        Ok(PerformanceReport {
            strategy_id: params.id,
            strategy_name: name,
            from: params.from,
            to: params.to,
            convention: metrics::CONVENTION.to_string(),
            all: metrics::compute(&points),
            mem_enhanced: metrics::compute(&mem),
            not_mem_enhanced: metrics::compute(&other),
        })
    }

    /// `strategies.compare`.
    pub fn compare(&self, params: CompareParams) -> Result<Comparison> {
        if params.ids.is_empty() || params.ids.len() > 50 {
            return Err(RegistryError::invalid("ids", "give 1 to 50 strategy ids"));
        }
        let reports = params
            .ids
            .iter()
            .map(|&id| {
                self.performance(PerformanceParams {
                    id,
                    from: params.from,
                    to: params.to,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Comparison { reports })
    }

    /// `strategies.audit`.
    pub fn audit_tail(&self, params: AuditParams) -> Result<AuditLog> {
        let limit = params.limit.unwrap_or(100).min(10_000);
        Ok(AuditLog {
            entries: self.store.audit_tail(params.id, limit)?,
        })
    }

    /// Writes the live-trading summary of strategies that traded since the last call into
    /// their metadata (`performance.live_trading`, `metadata.last_used_at`).
    pub fn flush_live_summaries(&self) {
        let _writing = self.writing();
        self.flush_live_summaries_ungated();
    }

    /// [`Registry::flush_live_summaries`] for a caller that holds the gate.
    fn flush_live_summaries_ungated(&self) {
        let dirty: Vec<StrategyId> = self
            .dirty_live
            .lock()
            .expect("dirty lock")
            .drain()
            .collect();
        for id in dirty {
            let result = self
                .trades
                .log(id)
                .map_err(RegistryError::from)
                .and_then(|log| {
                    // Computed in place under the lock (one pass over the points; no
                    // allocation of their size when they are in exit order, as trades
                    // recorded while they close are). A copy to compute outside the lock
                    // was an allocation as large as the log every 2 s, which kept growing
                    // malloc's heap around it while a strategy traded.
                    let (m, totals) = {
                        let log = log.lock().expect("trade log lock");
                        (metrics::compute(&log.points), log.totals())
                    };
                    self.mutate_ungated(id, &Caller::default(), "live summary", |doc, _| {
                        let live = &mut doc.strategy.performance.live_trading;
                        live.total_trades = m.total_trades;
                        live.live_sharpe = m.sharpe_ratio;
                        live.live_win_rate = m.win_rate;
                        live.total_pnl = Some(m.total_pnl);
                        live.start_date = totals
                            .first_exit_ms
                            .and_then(DateTime::from_timestamp_millis)
                            .map(|t| t.date_naive().to_string());
                        doc.strategy.metadata.last_used_at = totals
                            .last_exit_ms
                            .and_then(DateTime::from_timestamp_millis)
                            .map(now_text);
                        Ok(None)
                    })
                });
            if let Err(e) = result {
                warn!(%id, error = %e, "cannot update the live summary");
                // The database away, or another server's write first: the next flush
                // tries again.
                if matches!(
                    e,
                    RegistryError::Unavailable(_) | RegistryError::Conflict(_)
                ) {
                    self.dirty_live.lock().expect("dirty lock").insert(id);
                }
            }
        }
    }

    /// Checks every metadata file in full (the start-up load only read what the index
    /// needs). A file that fails is dropped from the lists and reported like a broken hand
    /// edit. Returns how many files were checked and how many failed.
    pub fn validate_all(&self) -> (usize, usize) {
        let Some(file_store) = self.files() else {
            return (0, 0);
        };
        let files: Vec<PathBuf> = match file_store.metadata_files() {
            Ok(files) => files,
            Err(e) => {
                warn!(error = %e, "cannot list the metadata directory to check it");
                return (0, 0);
            }
        };
        let failures: Vec<(PathBuf, String)> = files
            .par_iter()
            .filter_map(|p| {
                file_store
                    .check_file(p)
                    .err()
                    .map(|problem| (p.clone(), problem))
            })
            .collect();
        for (path, problem) in &failures {
            let _writer = self.writer.lock().expect("writer lock");
            let id = path
                .file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<StrategyId>().ok());
            // Checked again under the lock: a client may have fixed it meanwhile.
            if file_store.check_file(path).is_ok() {
                continue;
            }
            if let Some(id) = id {
                if self.index.write().expect("index lock").remove(id).is_some() {
                    self.announce(id, RegistryChange::Removed, None);
                }
            }
            self.report_invalid(path, problem.clone(), id);
        }
        (files.len(), failures.len())
    }

    /// Re-reads a metadata file that changed on disk (the `watch` module calls this).
    /// Our own writes are recognised by their content hash and ignored.
    pub fn reload_file(&self, path: &Path) {
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return;
        };
        if name.starts_with('.') || !name.ends_with(".json") {
            return;
        }
        let Some(file_store) = self.files() else {
            return;
        };
        let _writing = self.writing(); // a reload is audited
        let _writer = self.writer.lock().expect("writer lock");
        let stem = name.trim_end_matches(".json");
        let Ok(id) = stem.parse::<StrategyId>() else {
            self.report_invalid(
                path,
                "not a metadata file: names must be {uuid}.json".into(),
                None,
            );
            return;
        };
        // Changed by hand: `strategies.get` reads the file again (and reports it if broken).
        self.documents.lock().expect("documents lock").remove(&id);
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.issues.lock().expect("issues lock").remove(path);
                if self.index.write().expect("index lock").remove(id).is_some() {
                    info!(%id, file = %path.display(), "metadata file removed; strategy dropped from the registry");
                    let _ = self.audit(
                        &Caller::default(),
                        "file removed",
                        Some(id),
                        json!({ "file": path.display().to_string() }),
                    );
                    self.announce(id, RegistryChange::Removed, None);
                }
                return;
            }
            Err(e) => {
                self.report_invalid(path, format!("cannot read: {e}"), Some(id));
                return;
            }
        };
        let hash = store::content_hash(&bytes);
        if self
            .index
            .read()
            .expect("index lock")
            .get(id)
            .is_some_and(|r| r.content_hash == hash)
        {
            self.issues.lock().expect("issues lock").remove(path);
            return;
        }
        match file_store.read_changed(path) {
            Ok(record) => {
                self.issues.lock().expect("issues lock").remove(path);
                let summary = (*record.summary).clone();
                let added = self.index.write().expect("index lock").upsert(record);
                info!(%id, file = %path.display(), "metadata file changed on disk; reloaded");
                let _ = self.audit(
                    &Caller::default(),
                    "file reloaded",
                    Some(id),
                    json!({ "file": path.display().to_string() }),
                );
                self.announce(
                    id,
                    if added {
                        RegistryChange::Added
                    } else {
                        RegistryChange::Updated
                    },
                    Some(summary),
                );
            }
            Err(problem) => self.report_invalid(path, problem, Some(id)),
        }
    }

    fn report_invalid(&self, path: &Path, problem: String, id: Option<StrategyId>) {
        let previous = self
            .issues
            .lock()
            .expect("issues lock")
            .insert(path.to_path_buf(), problem.clone());
        if previous.as_deref() == Some(problem.as_str()) {
            return; // already reported: the watcher saw the same broken file again
        }
        warn!(file = %path.display(), %problem, "a metadata file changed on disk is unusable; keeping the last good version");
        self.bus.publish(Event::RegistryInvalid(RegistryInvalid {
            path: path.display().to_string(),
            problem,
            strategy_id: id,
        }));
    }
}

fn validate_text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(RegistryError::invalid(
            field,
            format!(
                "is {} characters long; the limit is {max}",
                value.chars().count()
            ),
        ));
    }
    Ok(())
}

fn bumped(v: &semver::Version, bump: VersionBump) -> semver::Version {
    match bump {
        VersionBump::Major => semver::Version::new(v.major + 1, 0, 0),
        VersionBump::Minor => semver::Version::new(v.major, v.minor + 1, 0),
        VersionBump::Patch => semver::Version::new(v.major, v.minor, v.patch + 1),
    }
}

/// A changed parameter (`value`, replacing `old`, already in `doc`) must leave the
/// strategy runnable: a native strategy that built before must still build (its own
/// checks: MACD's fast period below its slow one, ...), and a Freqtrade config key must
/// hold what Freqtrade's config accepts.
fn check_runnable(
    doc: &StrategyDocument,
    name: &str,
    value: &Value,
    old: &Value,
    field: &str,
) -> Result<()> {
    use mem_protocol::deploy_spec::{Runner, runner_of};
    match runner_of(&doc.strategy) {
        Runner::Native {
            kind: Some(kind), ..
        } => {
            let after = crate::native::strategies::build(kind, &doc.strategy.parameters);
            if let Err(problem) = after {
                let mut before = doc.strategy.parameters.clone();
                if let Some(slot) = before.get_mut(name) {
                    match slot.as_object_mut().and_then(|d| d.get_mut("value")) {
                        Some(v) => *v = old.clone(),
                        None => *slot = old.clone(),
                    }
                }
                if crate::native::strategies::build(kind, &before).is_ok() {
                    return Err(RegistryError::invalid(
                        field,
                        format!("the native {kind} strategy cannot run with it: {problem}"),
                    ));
                }
            }
        }
        Runner::Freqtrade(_) => {
            crate::freqtrade::check_config_parameter(name, value)
                .map_err(|problem| RegistryError::invalid(field, problem))?;
        }
        Runner::Native { kind: None, .. } | Runner::None => {}
    }
    Ok(())
}

fn same_json_type(a: &Value, b: &Value) -> bool {
    std::mem::discriminant(a) == std::mem::discriminant(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::methods::SortKey;

    fn seeded() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().unwrap();
        crate::datadir::seed_registry(dir.path()).unwrap();
        let registry = Registry::open(dir.path(), Arc::new(EventBus::new(64))).unwrap();
        (dir, registry)
    }

    /// The built-in strategies in a registry on files, or in a PostgreSQL database of its
    /// own (a real cluster, started for the test): the same test runs on both.
    struct Fixture {
        registry: Registry,
        dir: tempfile::TempDir,
        pg: Option<mem_e2e::postgres::Postgres>,
    }

    impl Fixture {
        fn files() -> Fixture {
            let (dir, registry) = seeded();
            Fixture {
                registry,
                dir,
                pg: None,
            }
        }

        /// None when PostgreSQL is not installed (and not required).
        fn postgres() -> Option<Fixture> {
            let pg = postgres::tests::cluster()?;
            let dir = tempfile::tempdir().unwrap();
            let store = Self::store(&pg);
            assert!(store.is_empty().unwrap());
            let builtin = crate::datadir::builtin_strategies().unwrap();
            assert_eq!(store.seed(builtin).unwrap(), 11);
            assert!(!store.is_empty().unwrap());
            let registry = Registry::open_postgres(
                store,
                Arc::new(EventBus::new(64)),
                Arc::new(NothingDeployed),
            )
            .unwrap();
            Some(Fixture {
                registry,
                dir,
                pg: Some(pg),
            })
        }

        fn store(pg: &mem_e2e::postgres::Postgres) -> postgres::PgStore {
            postgres::PgStore::connect(
                &pg.url_without_password("registry"),
                Some(mem_e2e::postgres::PASSWORD),
                "test-server",
            )
            .unwrap()
        }

        /// The same registry opened again, as after a restart.
        fn reopen(&self) -> Registry {
            let bus = Arc::new(EventBus::new(64));
            match &self.pg {
                None => Registry::open(self.dir.path(), bus).unwrap(),
                Some(pg) => {
                    Registry::open_postgres(Self::store(pg), bus, Arc::new(NothingDeployed))
                        .unwrap()
                }
            }
        }
    }

    /// A test run on a registry on files (`NAME::on_files`) and on PostgreSQL
    /// (`NAME::on_postgres`): `$f` is its [`Fixture`].
    macro_rules! on_both_backends {
        ($(#[$meta:meta])* fn $name:ident($f:ident) $body:block) => {
            $(#[$meta])*
            mod $name {
                use super::*;

                fn run($f: Fixture) $body

                #[test]
                fn on_files() {
                    run(Fixture::files())
                }

                #[test]
                fn on_postgres() {
                    if let Some(f) = Fixture::postgres() {
                        run(f)
                    }
                }
            }
        };
    }

    fn names(registry: &Registry, p: ListStrategiesParams) -> Vec<String> {
        registry
            .list(&p)
            .strategies
            .into_iter()
            .map(|s| s.display_name.clone())
            .collect()
    }

    #[test]
    fn get_answers_from_memory_only_what_the_file_still_says() {
        let (_dir, registry) = seeded();
        let id = registry.list(&ListStrategiesParams::default()).strategies[0].id;
        assert!(registry.get_cached(id).is_none(), "nothing read yet");
        let first = registry.get(id).unwrap();
        let cached = registry.get_cached(id).expect("kept after a read");
        assert_eq!(
            serde_json::to_value(&cached).unwrap(),
            serde_json::to_value(&first).unwrap()
        );

        // A write through the registry: the cached document is no longer current.
        let tagged = TagsParams {
            id,
            add: vec!["cached-or-not".into()],
            remove: vec![],
        };
        registry.tags(tagged, &Caller::default()).unwrap();
        assert!(registry.get_cached(id).is_none());
        let text = serde_json::to_string(&registry.get(id).unwrap()).unwrap();
        assert!(text.contains("cached-or-not"), "{text}");

        // A hand edit (the watcher calls reload_file), then a broken one: the file rules.
        let path = registry.files().unwrap().paths().metadata_file(id);
        let edited = std::fs::read_to_string(&path)
            .unwrap()
            .replace("cached-or-not", "edited-by-hand");
        std::fs::write(&path, edited).unwrap();
        registry.reload_file(&path);
        let text = serde_json::to_string(&registry.get(id).unwrap()).unwrap();
        assert!(text.contains("edited-by-hand"), "{text}");
        std::fs::write(&path, "{ broken").unwrap();
        registry.reload_file(&path);
        assert!(registry.get_cached(id).is_none());
        let err = registry.get(id).unwrap_err().to_string();
        assert!(err.contains("unreadable"), "{err}");
    }

    on_both_backends! {
    /// A parameter change's effect is measured from the trades: the 30 days before it and
    /// the span it was in force (until the next change of the same parameter).
    fn a_parameter_changes_effect_is_measured_from_the_trades_around_it(f) {
        let registry = &f.registry;
        let caller = Caller::default();
        let id = registry.list(&ListStrategiesParams::default()).strategies[0].id;
        let t0 = DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let day = chrono::Duration::days(1);
        // Ten days of small, uneven gains before; ten of larger, steadier ones after.
        let trades: Vec<TradeRecord> = (0..20)
            .map(|i| {
                let exit = t0 + day * (i - 10) + chrono::Duration::hours(12);
                let pct = if i < 10 {
                    [0.002, -0.003, 0.004, -0.001][i as usize % 4]
                } else {
                    [0.006, 0.004, 0.005][i as usize % 3]
                };
                TradeRecord {
                    trade_id: format!("t{i}"),
                    symbol: "BTC/USDT".into(),
                    entry_price: 100.0,
                    exit_price: 100.0 * (1.0 + pct),
                    entry_time: exit - chrono::Duration::hours(1),
                    exit_time: exit,
                    pnl: pct * 1000.0,
                    pnl_pct: pct,
                    ..TradeRecord::default()
                }
            })
            .collect();
        registry
            .record_trades(RecordTradesParams { id, trades }, &caller)
            .unwrap();
        let mut change = ParameterChange::new(
            id,
            "stoploss".into(),
            json!(-0.1),
            json!(-0.05),
            "tighter".into(),
            ChangedBy::Manual,
            None,
        );
        change.changed_at = t0;
        change.applied_from = Some(t0);
        registry.record_parameter_change(change, &caller).unwrap();
        let history = registry
            .parameter_history(ParameterHistoryParams { id, name: None })
            .unwrap();
        let c = &history.changes[0];
        let (before, after) = (
            c.before_sharpe.expect("before"),
            c.after_sharpe.expect("after"),
        );
        assert!(after > before, "{before} -> {after}");
        let pct = c.improvement_pct.expect("improvement");
        assert!((pct - (after - before) / before.abs() * 100.0).abs() < 1e-9);
        assert_eq!(
            c.version_id.as_deref(),
            Some(registry.versions(id).unwrap().current_version.as_str())
        );
    }
    }

    on_both_backends! {
    /// A trade in the seed's shape, with the seed's SQL columns, is stored and returned
    /// whole; one naming a version the strategy does not have is refused with its name.
    fn seed_shaped_trades_keep_every_column_and_name_a_version_of_theirs(f) {
        let registry = &f.registry;
        let caller = Caller::default();
        let id = registry.list(&ListStrategiesParams::default()).strategies[0].id;
        let version = registry.versions(id).unwrap().current_version;
        let trade = |trade_id: &str, version_id: &str| -> TradeRecord {
            serde_json::from_value(json!({
                "trade_id": trade_id, "symbol": "BTC/USDT", "signal_action": "BUY",
                "signal_confidence": 0.8, "entry_price": 100.0, "exit_price": 103.0,
                "entry_timestamp": "2026-03-01T10:00:00.250000", "exit_timestamp": "2026-03-01T12:00:00",
                "pnl": 3.0, "pnl_pct": 0.03, "is_win": true, "was_mem_enhanced": true,
                "version_id": version_id, "max_adverse_excursion": -0.01,
                "max_favorable_excursion": 0.04, "stop_loss": 95.0, "take_profit": 104.0,
                "mem_reasoning": "oversold, trend turning", "volume_ratio": 1.7
            }))
            .unwrap()
        };
        let err = registry
            .record_trades(
                RecordTradesParams {
                    id,
                    trades: vec![trade("t-1", "9.9.9")],
                },
                &caller,
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trades[0].versionId") && err.contains("9.9.9"),
            "{err}"
        );
        registry
            .record_trades(
                RecordTradesParams {
                    id,
                    trades: vec![trade("t-1", &version)],
                },
                &caller,
            )
            .unwrap();
        let listed = registry
            .list_trades(ListTradesParams {
                id,
                from: None,
                to: None,
                limit: None,
                offset: None,
            })
            .unwrap();
        let t = &listed.trades[0];
        assert_eq!(t.version_id.as_deref(), Some(version.as_str()));
        assert_eq!(t.duration_seconds, Some(7199), "filled in from the times");
        assert_eq!(
            (t.max_adverse_excursion, t.max_favorable_excursion),
            (Some(-0.01), Some(0.04))
        );
        assert_eq!((t.stop_loss, t.take_profit), (Some(95.0), Some(104.0)));
        assert_eq!(t.mem_reasoning.as_deref(), Some("oversold, trend turning"));
        assert_eq!(t.volume_ratio, Some(1.7));
        assert!(t.mem_enhanced);
    }
    }

    on_both_backends! {
    /// A backtest memd ran is kept on the version it measured; when it passed, its figures
    /// are the ones a recommendation uses, and no client can write them.
    fn a_backtest_is_recorded_on_its_version_and_only_memd_writes_measured_figures(f) {
        use mem_protocol::backtest::{
            BacktestEngine, BacktestResult, Validation, ValidationStatus,
        };
        let registry = &f.registry;
        let caller = Caller::default();
        let id = registry.list(&ListStrategiesParams::default()).strategies[0].id;
        let mut result: BacktestResult = serde_json::from_value(json!({
            "measured": true, "jobId": "job-1", "strategyId": id, "version": "1.0.0",
            "engine": "native", "engineVersion": "0.1.0", "pairs": ["ETH/BTC"], "timeframe": "5m",
            "dataFrom": "2018-01-10T04:55:00Z", "dataTo": "2018-01-30T04:55:00Z",
            "parameters": {}, "configHash": "c", "strategyHash": "s",
            "figures": {"trades": 12, "wins": 8, "losses": 4, "winRate": 0.6667, "profitAbs": 31.0,
                "profitPct": 0.031, "sharpe": 1.8, "maxDrawdown": 0.02, "maxDrawdownAbs": 20.0,
                "startingBalance": 1000.0, "finalBalance": 1031.0},
            "equity": [], "validation": {"status": "failed", "reasons": ["12 trades, at least 30 needed"]},
            "finishedAt": "2026-12-05T08:00:00Z", "seconds": 0.1
        }))
        .unwrap();
        // Failed validation: on the version, not in the figures a recommendation reads.
        registry.record_backtest(&result).unwrap();
        let version = registry
            .version(GetVersionParams {
                id,
                version: "1.0.0".into(),
            })
            .unwrap();
        assert_eq!(version.backtest_results["jobId"], "job-1");
        assert_eq!(version.validation_status, Some(VersionValidation::Failed));
        assert_eq!(version.sharpe_ratio, Some(1.8));
        // 3.1% over 20 days, compounded to a year.
        let cagr = version.cagr.expect("cagr");
        assert!(
            (cagr - (1.031f64.powf(365.25 / 20.0) - 1.0)).abs() < 1e-9,
            "{cagr}"
        );
        assert!(registry.get(id).unwrap().summary.measured.is_none());
        result.validation = Validation {
            status: ValidationStatus::Passed,
            reasons: vec![],
        };
        result.job_id = "job-2".into();
        let detail = registry.record_backtest(&result).unwrap();
        let measured = detail.summary.measured.clone().expect("measured");
        assert_eq!(
            (measured.job_id.as_str(), measured.engine),
            ("job-2", BacktestEngine::Native)
        );
        assert_eq!(detail.summary.sharpe_ratio, Some(1.8));
        // Read back as the index reads files at start.
        let reopened = f.reopen();
        assert_eq!(
            reopened
                .get(id)
                .unwrap()
                .summary
                .measured
                .as_ref()
                .unwrap()
                .job_id,
            "job-2"
        );
        // Clients cannot write measured figures, on any way in; an update keeps memd's.
        let mut doc = serde_json::to_value(&*registry.get(id).unwrap().metadata).unwrap();
        doc["strategy"]["name"] = json!("copy_of_it");
        let err = registry
            .register(
                RegisterParams {
                    strategy: doc.clone(),
                    status: None,
                },
                &caller,
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("performance.backtest.measured"), "{err}");
        let patch = json!({"performance": {"backtest": {"measured": null}}});
        let err = registry
            .update(
                UpdateParams {
                    id,
                    patch,
                    reason: None,
                },
                &caller,
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("patch.performance.backtest.measured"), "{err}");
        let typed = json!({"performance": {"backtest": {"sharpe_ratio": 9.9}}});
        let updated = registry
            .update(
                UpdateParams {
                    id,
                    patch: typed,
                    reason: None,
                },
                &caller,
            )
            .unwrap();
        assert_eq!(
            updated.summary.measured.as_ref().unwrap().sharpe_ratio,
            Some(1.8)
        );
    }
    }

    /// A strategy's deployment section is checked on every way into the registry, the
    /// field at fault named: registration, update, import and a hand edit.
    #[test]
    fn a_bad_deployment_section_is_refused_on_every_way_in() {
        let (_dir, registry) = seeded();
        let caller = Caller::default();
        let doc = |section: Value| {
            json!({"strategy": {
                "name": "sectioned", "classification": {"category": "momentum"},
                "implementation": {"language": "freqtrade", "class_name": "X"},
                "deployment": section
            }})
        };
        let err = registry
            .register(
                RegisterParams {
                    strategy: doc(json!({"type": "freqtrade", "port": "8080"})),
                    status: None,
                },
                &caller,
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("strategy.deployment") && err.contains("field `port`"),
            "{err}"
        );
        let good = json!({"type": "freqtrade", "config_file": "freqtrade/configs/x.json"});
        let id = registry
            .register(
                RegisterParams {
                    strategy: doc(good),
                    status: None,
                },
                &caller,
            )
            .unwrap()
            .summary
            .id;
        let err = registry
            .update(
                UpdateParams {
                    id,
                    patch: json!({"deployment": {"alow_live": true}}),
                    reason: None,
                },
                &caller,
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `alow_live`"), "{err}");
        let report = registry.import(
            ImportParams {
                documents: vec![ImportDocument {
                    source: "bad.json".into(),
                    document: doc(json!({"type": "native", "strategy": "martingale"})),
                }],
            },
            &caller,
        );
        assert_eq!(report.failed, 1);
        let err = report.results[0].error.clone().unwrap_or_default();
        assert!(
            err.contains("field `strategy`") && err.contains("martingale"),
            "{err}"
        );
        // By hand: refused, reported with the field, the last good version kept.
        let path = registry.files().unwrap().paths().metadata_file(id);
        let edited = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"config_file\"", "\"config_fiel\"");
        std::fs::write(&path, edited).unwrap();
        registry.reload_file(&path);
        let issues = registry.issues();
        let issue = issues.iter().find(|i| i.path == path).expect("reported");
        assert!(issue.problem.contains("config_fiel"), "{}", issue.problem);
        assert_eq!(registry.summary(id).unwrap().name, "sectioned");
    }

    #[test]
    fn reading_trades_creates_no_file_and_the_first_record_does() {
        let (_dir, registry) = seeded();
        let id = registry.list(&ListStrategiesParams::default()).strategies[0].id;
        let file = registry.files().unwrap().paths().trades_file(id);
        let _ = std::fs::remove_file(&file);
        let listed = || {
            registry
                .list_trades(ListTradesParams {
                    id,
                    from: None,
                    to: None,
                    limit: None,
                    offset: None,
                })
                .unwrap()
        };
        let counted = || {
            let all = PerformanceParams {
                id,
                from: None,
                to: None,
            };
            registry.performance(all).unwrap().all.total_trades
        };
        let (trades_before, count_before) = (listed().total, counted());
        assert!(!file.exists(), "a read created {}", file.display());

        let trade = mem_e2e::trades::closed_trade("lazy-1")
            .closed_at(Utc::now())
            .build();
        let recorded = registry
            .record_trades(
                RecordTradesParams {
                    id,
                    trades: vec![trade],
                },
                &Caller::default(),
            )
            .unwrap();
        assert_eq!(recorded.recorded, 1);
        assert!(file.exists());
        let after = listed();
        assert_eq!(after.total, trades_before + 1);
        assert_eq!(after.trades[0].trade_id, "lazy-1");
        assert_eq!(counted(), count_before + 1);
    }

    on_both_backends! {
    fn default_data_has_the_eleven_seed_strategies(f) {
        let registry = &f.registry;
        assert_eq!(registry.len(), 11, "issues: {:?}", registry.issues());
        assert!(registry.issues().is_empty());
    }
    }

    on_both_backends! {
    fn filters_sorts_and_pages(f) {
        let registry = &f.registry;
        assert_eq!(
            names(
                registry,
                ListStrategiesParams {
                    tag: Some("FREQTRADE".into()),
                    min_sharpe: Some(1.2),
                    ..Default::default()
                }
            ),
            ["Freqtrade Aggressive RSI", "Freqtrade MACD Hunter"]
        );
        assert_eq!(
            names(
                registry,
                ListStrategiesParams {
                    tags_any: vec!["carry".into(), "cointegration".into()],
                    ..Default::default()
                }
            ),
            [
                "Currency Carry Trade",
                "Statistical Arbitrage Pairs Trading"
            ]
        );
        assert_eq!(
            names(
                registry,
                ListStrategiesParams {
                    sort: Some(SortKey::Sharpe),
                    limit: Some(3),
                    ..Default::default()
                }
            ),
            [
                "Freqtrade MACD Hunter",
                "Freqtrade Aggressive RSI",
                "Volatility-Managed Momentum"
            ]
        );
        assert_eq!(
            names(
                registry,
                ListStrategiesParams {
                    min_win_rate: Some(0.6),
                    sort: Some(SortKey::WinRate),
                    ..Default::default()
                }
            ),
            ["Freqtrade Aggressive RSI", "Freqtrade Conservative RSI"]
        );
        assert_eq!(
            names(
                registry,
                ListStrategiesParams {
                    query: Some("macd hunter".into()),
                    ..Default::default()
                }
            ),
            ["Freqtrade MACD Hunter"]
        );
        assert_eq!(
            names(
                registry,
                ListStrategiesParams {
                    asset_class: Some("FX".into()),
                    ..Default::default()
                }
            ),
            ["Currency Carry Trade"]
        );
        let page = registry.list(&ListStrategiesParams {
            limit: Some(2),
            offset: Some(10),
            ..Default::default()
        });
        assert_eq!((page.total, page.strategies.len()), (11, 1));
        // Paging through a sorted list visits every strategy once.
        let mut seen = Vec::new();
        for offset in (0..11).step_by(4) {
            let p = ListStrategiesParams {
                sort: Some(SortKey::Sharpe),
                limit: Some(4),
                offset: Some(offset),
                ..Default::default()
            };
            seen.extend(registry.list(&p).strategies.into_iter().map(|s| s.id));
        }
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 11);
    }
    }

    #[test]
    fn bad_files_are_reported_and_skipped() {
        let dir = tempfile::tempdir().unwrap();
        crate::datadir::seed_registry(dir.path()).unwrap();
        let meta = dir.path().join("metadata");
        std::fs::write(meta.join("notes.txt"), "x").unwrap();
        std::fs::write(
            meta.join("00000000-0000-4000-8000-000000000000.json"),
            "{ torn",
        )
        .unwrap();
        std::fs::copy(
            meta.join("4ce3a79b-c22b-4b42-9d87-3a58052a9eec.json"),
            meta.join("11111111-1111-4111-8111-111111111111.json"),
        )
        .unwrap();
        let registry = Registry::open(dir.path(), Arc::new(EventBus::new(64))).unwrap();
        assert_eq!(registry.len(), 11);
        let problems: Vec<_> = registry.issues().into_iter().map(|i| i.problem).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("invalid metadata")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("{uuid}.json")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("holds strategy")),
            "{problems:?}"
        );
    }

    fn set(registry: &Registry, id: &str, name: &str, value: Value) -> Result<ParameterChange> {
        registry.update_parameter(
            UpdateParameterParams {
                id: id.parse().unwrap(),
                name: name.into(),
                value,
                reason: "tuning".into(),
                changed_by: ChangedBy::Manual,
                is_ab_test: false,
                ab_test_group: None,
            },
            &Caller::default(),
        )
    }

    on_both_backends! {
    fn parameter_changes_are_held_to_their_bounds_and_their_runner(f) {
        const RSI: &str = "0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d62";
        const MACD: &str = "0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d63";
        const HUNTER: &str = "4ce3a79b-c22b-4b42-9d87-3a58052a9eec";
        let registry = &f.registry;
        let message = |r: Result<ParameterChange>| r.unwrap_err().into_rpc("m").message;
        // Each bound is named with the parameter.
        let e = message(set(registry, RSI, "oversold", json!(60)));
        assert!(
            e.contains("parameter oversold")
                && e.contains("outside the declared range 1 .. 50: above the maximum 50"),
            "{e}"
        );
        let e = message(set(registry, RSI, "period", json!(1)));
        assert!(
            e.contains("parameter period") && e.contains("below the minimum 2"),
            "{e}"
        );
        let e = message(set(registry, RSI, "period", json!(14.5)));
        assert!(e.contains("integer"), "{e}");
        // Within bounds but not runnable: the native strategy's own rule.
        let e = message(set(registry, MACD, "fast_period", json!(40)));
        assert!(
            e.contains("the native macd strategy cannot run with it")
                && e.contains("must be below `slow_period`"),
            "{e}"
        );
        // A Freqtrade config key is checked as Freqtrade would.
        let e = message(set(registry, HUNTER, "minimal_roi", json!({"soon": 0.1})));
        assert!(e.contains("minimal_roi") && e.contains("minutes"), "{e}");
        let e = message(set(registry, HUNTER, "stoploss", json!(-0.9)));
        assert!(e.contains("below the minimum -0.5"), "{e}");
        assert!(
            registry
                .parameter_history(ParameterHistoryParams {
                    id: RSI.parse().unwrap(),
                    name: None
                })
                .unwrap()
                .changes
                .is_empty(),
            "nothing refused is recorded"
        );

        // A good change is written, recorded and counted.
        let before = registry.generation();
        let change = set(registry, RSI, "oversold", json!(25)).unwrap();
        assert_eq!((change.old_value, change.new_value), (json!(30), json!(25)));
        assert!(registry.generation() > before);
        let params = registry.parameters(RSI.parse().unwrap()).unwrap();
        assert_eq!(params["oversold"]["value"], json!(25));
        let history = registry
            .parameter_history(ParameterHistoryParams {
                id: RSI.parse().unwrap(),
                name: Some("oversold".into()),
            })
            .unwrap();
        assert_eq!(history.changes.len(), 1);
        assert_eq!(history.changes[0].change_reason, "tuning");
        set(registry, HUNTER, "stoploss", json!(-0.05)).unwrap();
        set(
            registry,
            HUNTER,
            "minimal_roi",
            json!({"0": 0.1, "30": 0.02}),
        )
        .unwrap();
    }
    }

    #[test]
    fn the_background_check_drops_what_the_quick_load_let_through() {
        let dir = tempfile::tempdir().unwrap();
        crate::datadir::seed_registry(dir.path()).unwrap();
        let path = dir
            .path()
            .join("metadata/4ce3a79b-c22b-4b42-9d87-3a58052a9eec.json");
        let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        doc["strategy"]["performance"]["backtest"]["num_trades"] = json!(-3);
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        let bus = Arc::new(EventBus::new(64));
        let registry = Registry::open(dir.path(), bus.clone()).unwrap();
        assert_eq!(
            registry.len(),
            11,
            "the quick load reads only the index fields"
        );
        let (mut rx, _) = bus.subscribe();
        assert_eq!(registry.validate_all(), (11, 1));
        assert_eq!(registry.len(), 10);
        let problems: Vec<_> = registry.issues().into_iter().map(|i| i.problem).collect();
        assert!(problems[0].contains("num_trades"), "{problems:?}");
        let removed = rx.try_recv().unwrap();
        assert!(
            std::str::from_utf8(&removed.line)
                .unwrap()
                .contains("removed")
        );
        let invalid = rx.try_recv().unwrap();
        assert!(
            std::str::from_utf8(&invalid.line)
                .unwrap()
                .contains("registry.invalid")
        );
    }

    #[test]
    fn a_change_whose_document_fails_validation_writes_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        crate::datadir::seed_registry(dir.path()).unwrap();
        let id = "4ce3a79b-c22b-4b42-9d87-3a58052a9eec";
        let path = dir.path().join(format!("metadata/{id}.json"));
        // A hand edit the quick load lets through: every rewrite of it fails validation.
        let mut doc: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        doc["strategy"]["name"] = json!("macd/hunter");
        std::fs::write(&path, serde_json::to_vec(&doc).unwrap()).unwrap();
        let registry = Registry::open(dir.path(), Arc::new(EventBus::new(64))).unwrap();
        let audit_before = registry
            .audit_tail(AuditParams::default())
            .unwrap()
            .entries
            .len();

        let params: CreateVersionParams = serde_json::from_value(
            json!({ "id": id, "bump": "patch", "changelog": "tighter stops" }),
        )
        .unwrap();
        let err = registry
            .create_version(params, &Caller::default())
            .unwrap_err();
        assert!(err.to_string().contains("strategy.name"), "{err}");
        assert!(
            !dir.path().join(format!("versions/{id}")).exists(),
            "no version file is left behind"
        );
        assert!(
            registry
                .versions(id.parse().unwrap())
                .unwrap()
                .versions
                .is_empty()
        );

        let err = set(&registry, id, "macd_fast", json!(13)).unwrap_err();
        assert!(err.to_string().contains("strategy.name"), "{err}");
        let history = registry
            .parameter_history(ParameterHistoryParams {
                id: id.parse().unwrap(),
                name: None,
            })
            .unwrap();
        assert!(
            history.changes.is_empty(),
            "no parameter line is left behind"
        );
        assert_eq!(
            registry
                .audit_tail(AuditParams::default())
                .unwrap()
                .entries
                .len(),
            audit_before
        );
    }

    on_both_backends! {
    fn a_rename_onto_another_strategys_name_is_refused(f) {
        let registry = &f.registry;
        let all = registry.summaries();
        let (a, b) = (&all[0], &all[1]);
        let rename = |name: &str| {
            registry.update(
                UpdateParams {
                    id: a.id,
                    patch: json!({ "name": name }),
                    reason: None,
                },
                &Caller::default(),
            )
        };
        let err = rename(&b.name).unwrap_err();
        assert!(matches!(err, RegistryError::Conflict(_)), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains(&b.name) && message.contains(&b.id.to_string()),
            "{message}"
        );
        assert_eq!(registry.summary(a.id).unwrap().name, a.name, "unchanged");
        // Its own name, or a free one, is fine.
        rename(&a.name).unwrap();
        rename("a_name_nobody_has").unwrap();
        assert_eq!(registry.summary(a.id).unwrap().name, "a_name_nobody_has");
    }
    }

    /// Two servers' daemons on one database: what one writes reaches the other's memory
    /// and its subscribers by PostgreSQL's notifications, within a second; its own writes
    /// are not applied twice.
    #[test]
    fn two_registries_on_one_database_follow_each_others_changes() {
        let Some(fixture) = Fixture::postgres() else {
            return;
        };
        let a = Arc::new(fixture.reopen());
        a.follow_remote();
        let b_bus = Arc::new(EventBus::new(256));
        let b = Arc::new(
            Registry::open_postgres(
                Fixture::store(fixture.pg.as_ref().unwrap()),
                b_bus.clone(),
                Arc::new(NothingDeployed),
            )
            .unwrap(),
        );
        b.follow_remote();
        let (mut b_events, _) = b_bus.subscribe();
        let within = |what: &str, ok: &dyn Fn() -> bool| {
            let started = std::time::Instant::now();
            while !ok() {
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(2),
                    "{what} within 2 s"
                );
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            started.elapsed()
        };
        let all = a.summaries();
        let (x, y) = (all[0].id, all[1].id);
        // Give the listener its moment to LISTEN before the first write.
        std::thread::sleep(std::time::Duration::from_millis(300));

        a.tags(
            TagsParams {
                id: x,
                add: vec!["shared-db".into()],
                remove: vec![],
            },
            &Caller::default(),
        )
        .unwrap();
        let took = within("b's index has a's tag", &|| {
            b.summary(x).unwrap().tags.iter().any(|t| t == "shared-db")
        });
        assert!(took < std::time::Duration::from_secs(1), "{took:?}");
        assert_eq!(
            b.get(x).unwrap().summary.tags,
            a.get(x).unwrap().summary.tags
        );
        let line = b_events.try_recv().expect("b announced it");
        assert!(
            std::str::from_utf8(&line.line)
                .unwrap()
                .contains("registry.changed")
        );

        a.link(
            LinkParams {
                from: x,
                to: y,
                relationship: RelationshipType::Replaces,
                note: None,
                similarity_score: Some(0.5),
            },
            &Caller::default(),
        )
        .unwrap();
        within("b has a's link", &|| {
            b.related(RelatedParams {
                id: x,
                types: vec![],
                depth: None,
            })
            .unwrap()
            .related
            .iter()
            .any(|r| r.strategy.id == y)
        });

        // Trades a records are in b's metrics, and one both record is counted once.
        let trade = |id: &str| -> TradeRecord {
            serde_json::from_value(json!({
                "tradeId": id, "symbol": "ETH/BTC", "action": "BUY", "entryPrice": 1.0,
                "exitPrice": 1.1, "entryTime": "2026-12-01T10:00:00Z",
                "exitTime": "2026-12-01T11:00:00Z", "pnl": 10.0, "pnlPct": 0.1
            }))
            .unwrap()
        };
        let record = |r: &Registry, ids: &[&str]| {
            r.record_trades(
                RecordTradesParams {
                    id: x,
                    trades: ids.iter().map(|i| trade(i)).collect(),
                },
                &Caller::default(),
            )
            .unwrap()
            .recorded
        };
        let trades_of = |r: &Registry| {
            r.performance(PerformanceParams {
                id: x,
                from: None,
                to: None,
            })
            .unwrap()
            .all
            .total_trades
        };
        assert_eq!(trades_of(&b), 0, "b's log loaded before a records");
        assert_eq!(record(&a, &["t1", "t2"]), 2);
        within("b's metrics count a's trades", &|| trades_of(&b) == 2);
        assert_eq!(record(&b, &["t2", "t3"]), 1, "t2 is a's already");
        within("a counts b's", &|| trades_of(&a) == 3);

        // b's own change: applied once, by b itself (its notification is its own).
        b.tags(
            TagsParams {
                id: y,
                add: vec!["from-b".into()],
                remove: vec![],
            },
            &Caller::default(),
        )
        .unwrap();
        within("a has b's tag", &|| {
            a.summary(y).unwrap().tags.iter().any(|t| t == "from-b")
        });
        std::thread::sleep(std::time::Duration::from_millis(300));
        let mut announced = 0;
        while let Ok(line) = b_events.try_recv() {
            let text = std::str::from_utf8(&line.line).unwrap();
            announced +=
                usize::from(text.contains("registry.changed") && text.contains(&y.to_string()));
        }
        assert_eq!(announced, 1, "b announced its own change once");
    }

    /// PostgreSQL down: lists, summaries and documents already read are answered from
    /// memory, a change is refused naming the database (nothing half-written) and the
    /// store says since when it is down; back up, changes go through again.
    #[test]
    fn while_the_database_is_down_reads_are_answered_and_changes_refused() {
        let Some(mut fixture) = Fixture::postgres() else {
            return;
        };
        let registry = &fixture.registry;
        let id = registry.summaries()[0].id;
        let before = registry.get(id).unwrap();
        let tag = |name: &str| {
            registry.tags(
                TagsParams {
                    id,
                    add: vec![name.into()],
                    remove: vec![],
                },
                &Caller::default(),
            )
        };
        fixture.pg.as_mut().unwrap().stop();

        let started = std::time::Instant::now();
        let err = tag("while-down").unwrap_err();
        let refused_after = started.elapsed();
        assert!(matches!(err, RegistryError::Unavailable(_)), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("/registry cannot be reached") && message.contains("refused"),
            "{message}"
        );
        assert!(!message.contains(mem_e2e::postgres::PASSWORD), "{message}");
        eprintln!("a change refused {refused_after:?} after the database went down");
        // Known down: the next refusal does not wait for the pool.
        let started = std::time::Instant::now();
        assert!(matches!(
            tag("again").unwrap_err(),
            RegistryError::Unavailable(_)
        ));
        let again = started.elapsed();
        assert!(again < std::time::Duration::from_secs(2), "{again:?}");
        // Trades too: their log's error keeps its kind (it was an internal error).
        let err = registry
            .record_trades(
                RecordTradesParams {
                    id,
                    trades: vec![mem_e2e::trades::closed_trade("while-down").build()],
                },
                &Caller::default(),
            )
            .unwrap_err();
        assert!(matches!(err, RegistryError::Unavailable(_)), "{err:?}");
        assert!(matches!(
            registry.store.health(),
            backend::Health::Down { .. }
        ));
        assert_eq!(registry.list(&ListStrategiesParams::default()).total, 11);
        assert_eq!(registry.summary(id).unwrap().tags, before.summary.tags);
        let cached = registry.get_cached(id).expect("the document read before");
        assert_eq!(cached.metadata.strategy.id, id);
        // memd's own trades (a native runner's) wait in the outbox, kept in its file.
        let outbox = fixture.dir.path().join("trade-outbox.jsonl");
        registry.keep_own_trades_in(&outbox).unwrap();
        let own = |ids: &[&str]| RecordTradesParams {
            id,
            trades: ids
                .iter()
                .map(|t| mem_e2e::trades::closed_trade(*t).build())
                .collect(),
        };
        let runner = Caller {
            uid: None,
            client: Some("memd native deployment".into()),
        };
        assert!(
            registry
                .record_own_trades(own(&["own-1", "own-2"]), &runner)
                .unwrap()
                .is_none()
        );
        assert!(
            registry
                .record_own_trades(own(&["own-3"]), &runner)
                .unwrap()
                .is_none()
        );
        assert_eq!(registry.own_trades_waiting(), 3);
        registry.retry_own_trades();
        assert_eq!(
            registry.own_trades_waiting(),
            3,
            "still down: still waiting"
        );
        assert_eq!(std::fs::read_to_string(&outbox).unwrap().lines().count(), 2);

        fixture.pg.as_mut().unwrap().start_server();
        let detail = tag("after").unwrap();
        assert!(detail.summary.tags.iter().any(|t| t == "after"));
        assert!(!detail.summary.tags.iter().any(|t| t == "while-down"));
        assert_eq!(registry.store.health(), backend::Health::Up);
        registry.retry_own_trades();
        assert_eq!(registry.own_trades_waiting(), 0);
        assert_eq!(std::fs::read_to_string(&outbox).unwrap(), "");
        let recorded: Vec<String> = registry
            .list_trades(ListTradesParams {
                id,
                from: None,
                to: None,
                limit: None,
                offset: None,
            })
            .unwrap()
            .trades
            .into_iter()
            .map(|t| t.trade_id)
            .collect();
        for t in ["own-1", "own-2", "own-3"] {
            assert!(recorded.iter().any(|r| r == t), "{t} in {recorded:?}");
        }
        // Recorded as the runner's, in the shared audit.
        let audit = registry
            .audit_tail(AuditParams {
                limit: Some(5),
                ..AuditParams::default()
            })
            .unwrap();
        assert!(
            audit.entries.iter().any(|e| e.action == "trades.record"
                && e.client.as_deref() == Some("memd native deployment")),
            "{audit:?}"
        );
    }
}
