//! Where the registry keeps its state: the [`Store`] trait, so that files
//! ([`super::files::FileStore`]) and PostgreSQL can both hold it.
//!
//! [`super::Registry`] keeps all checking, locking, the index, the audit's wording and the
//! announcing; a store only writes and reads. Reads that memory holds (lists, searches,
//! summaries, relationships, loaded trade logs) never reach the store.

use super::index::Record;
use chrono::{DateTime, Utc};
use mem_protocol::registry::{AuditEntry, ParameterChange, Relationship, VersionRecord};
use mem_protocol::strategy::{StrategyDocument, StrategyId};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Which state of a document a record was made from: files hash the bytes, a database
/// counts revisions. An update names the stamp it read, so a store that is shared can
/// refuse a write over a change it has not seen ([`StoreError::Stale`]).
pub type Stamp = u64;

/// Everything one change writes, written together: all-or-nothing where the store can
/// (a database transaction); files write it in this order and stop at the first failure.
#[derive(Default)]
pub struct Commit<'a> {
    pub document: Option<DocumentWrite<'a>>,
    pub versions: Vec<VersionWrite>,
    pub parameter_change: Option<&'a ParameterChange>,
    pub link: Option<LinkWrite>,
    /// In the order they happened (deprecate and mark_enhanced write two).
    pub audit: Vec<AuditEntry>,
}

pub enum DocumentWrite<'a> {
    /// A new strategy: a store that already holds its id refuses it ([`StoreError::Conflict`]).
    Create(&'a StrategyDocument),
    /// A changed strategy, read at `expected`.
    Update {
        doc: &'a StrategyDocument,
        expected: Stamp,
    },
}

pub enum VersionWrite {
    /// A version that must not exist yet ([`StoreError::Conflict`] if it does).
    New(VersionRecord),
    /// A version written over the one there (approved, measured, no longer active).
    Replace(VersionRecord),
}

pub enum LinkWrite {
    Link(Relationship),
    Unlink(Relationship),
}

/// What a store holds at start: every usable strategy's index record, what it could not
/// use (by where it is, and why), and every relationship.
pub struct Loaded {
    pub records: Vec<Record>,
    pub issues: BTreeMap<PathBuf, String>,
    pub relations: Vec<Relationship>,
}

/// Whether the store can be reached (files always can).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Up,
    Down { since: DateTime<Utc>, why: String },
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("strategy {0} not found in registry")]
    NotFound(StrategyId),
    /// The store cannot be reached: the words say which, since when, and what still works.
    #[error("{0}")]
    Unavailable(String),
    /// Someone else changed the document since it was read (shared stores only).
    #[error("strategy {0} was changed meanwhile")]
    Stale(StrategyId),
    #[error("{0}")]
    Conflict(String),
    #[error("{0:#}")]
    Io(anyhow::Error),
}

impl From<anyhow::Error> for StoreError {
    fn from(e: anyhow::Error) -> Self {
        StoreError::Io(e)
    }
}

/// What another server's daemon changed in a store they share (its notification).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteChange {
    /// A strategy was written at this stamp.
    Strategy { id: StrategyId, stamp: Stamp },
    /// A strategy's trades were recorded (its live summary follows as a `Strategy`).
    Trades { id: StrategyId },
    /// A relationship was made or removed.
    Relations,
    /// Notifications may have been missed (the connection was lost): compare everything.
    Resync,
}

/// The registry's persistence. Synchronous, so any thread can call it (a blocking task,
/// a native runner's thread, a test); object-safe, so the registry holds `Arc<dyn Store>`.
pub trait Store: Send + Sync {
    /// Everything the registry keeps in memory, read once at start.
    fn load(&self) -> Result<Loaded, StoreError>;
    /// Writes one change; returns the document's new stamp when it wrote one.
    fn commit(&self, commit: &Commit<'_>) -> Result<Option<Stamp>, StoreError>;
    /// A strategy's document and its stamp (memory caches only some documents).
    fn document(&self, id: StrategyId) -> Result<(StrategyDocument, Stamp), StoreError>;
    /// Every version of a strategy, oldest first.
    fn versions(&self, id: StrategyId) -> Result<Vec<VersionRecord>, StoreError>;
    /// A strategy's parameter changes (of one parameter if `name`), oldest first.
    fn parameter_changes(
        &self,
        id: StrategyId,
        name: Option<&str>,
    ) -> Result<Vec<ParameterChange>, StoreError>;
    /// The newest `limit` audit entries (of one strategy if `id`), oldest first.
    fn audit_tail(
        &self,
        id: Option<StrategyId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    fn health(&self) -> Health;
    /// Every relationship (read again after another server changed them).
    fn relations(&self) -> Result<Vec<Relationship>, StoreError>;
    /// Sends `changes` what other servers' daemons write to a shared store, from now on
    /// (a store of this server's alone sends nothing).
    fn follow(&self, changes: std::sync::mpsc::Sender<RemoteChange>) {
        drop(changes);
    }
}
