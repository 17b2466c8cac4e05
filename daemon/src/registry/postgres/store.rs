//! [`PgStore`]: the registry's [`Store`] on PostgreSQL. Each commit is one transaction
//! (the document, its versions, a parameter change, a link, the audit lines, and a
//! notification for the other servers' daemons, delivered only if it commits); a stamp
//! is the row's `revision`, so an update over another server's change is refused as
//! stale instead of lost.
//!
//! Trades are rows too (`trade_points`, `insert_trades`, `trades_at`): the registry's
//! trade logs (`registry::trades`) hold their figures in memory and locate each by row id.
//! A start reads each strategy's index entry, not its document (`load`).

use super::rows::{self, RowError};
use super::{PgError, PgHandle};
use crate::registry::backend::{
    Commit, DocumentWrite, Health, LinkWrite, Loaded, RemoteChange, Stamp, Store, StoreError,
    VersionWrite,
};
use crate::registry::index::Record;
use crate::registry::shapes;
use chrono::Utc;
use mem_protocol::registry::{
    AuditEntry, ParameterChange, Relationship, TradeRecord, VersionRecord,
};
use mem_protocol::strategy::{StrategyDocument, StrategyId};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The registry in a PostgreSQL database, shared by every server whose memd points at it.
pub struct PgStore {
    handle: PgHandle,
    /// This server's name in the audit.
    server: String,
    /// `host:port/database`, for messages.
    target: String,
    /// This process, so that its own notifications can be told from the others'.
    origin: uuid::Uuid,
    /// Set by the queries (a lost connection: down; a success: up) and by the listener
    /// (its connection lost: down; the database answering again: up).
    health: Arc<Mutex<Health>>,
}

impl PgStore {
    /// Connects (and brings the schema up to date); `server` names this server in the
    /// audit.
    pub fn connect(url: &str, password: Option<&str>, server: &str) -> Result<PgStore, PgError> {
        let target = super::target_of(url);
        Ok(PgStore {
            handle: PgHandle::connect(url, password)?,
            server: server.to_string(),
            target,
            origin: uuid::Uuid::new_v4(),
            health: Arc::new(Mutex::new(Health::Up)),
        })
    }

    /// Inserts the built-in strategies the database does not have yet (a new database).
    pub fn seed(&self, documents: Vec<StrategyDocument>) -> Result<usize, StoreError> {
        self.run("seeding the built-in strategies", move |pool| async move {
            let mut tx = rows::begin(&pool).await?;
            let n = rows::seed(&mut tx, &documents).await?;
            rows::commit(tx).await?;
            Ok(n)
        })
    }

    /// Runs `job` on the pool's thread; a lost database marks the store down (and the
    /// next success up again).
    fn run<T, F, Fut>(&self, doing: &str, job: F) -> Result<T, StoreError>
    where
        F: FnOnce(sqlx::PgPool) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, RowError>> + Send + 'static,
        T: Send + 'static,
    {
        // Known down: a quick look first, so that a refusal does not wait for the pool's
        // 5 s to connect (the first failure does).
        let down = matches!(
            *self.health.lock().expect("health lock"),
            Health::Down { .. }
        );
        let outcome = if down && !self.reachable() {
            Err(RowError::Db {
                doing: doing.to_string(),
                detail: "no connection within 0.5 s".into(),
                connection: true,
            })
        } else {
            self.handle.rows(job)
        };
        let mut health = self.health.lock().expect("health lock");
        match outcome {
            Ok(value) => {
                *health = Health::Up;
                Ok(value)
            }
            Err(e) if e.is_unavailable() => {
                let since = match &*health {
                    Health::Down { since, .. } => *since,
                    Health::Up => Utc::now(),
                };
                *health = Health::Down {
                    since,
                    why: e.to_string(),
                };
                Err(StoreError::Unavailable(format!(
                    "the registry's database {} cannot be reached ({doing}: {e}); changes are refused until it is back",
                    self.target
                )))
            }
            Err(e) => Err(store_error(e)),
        }
    }
}

impl PgStore {
    /// Whether the database holds no strategy yet (a new one, to seed).
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        self.run("counting strategies", |pool| async move {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM strategies")
                .fetch_one(&pool)
                .await
                .map_err(rows::db("counting strategies"))?;
            Ok(n == 0)
        })
    }

    /// A strategy's trades reduced to what its log in memory holds, in the order recorded.
    pub fn trade_points(&self, id: StrategyId) -> Result<Vec<super::PointRow>, StoreError> {
        self.run("loading trades", move |pool| async move {
            super::trades::read_trade_points(&pool, id, 0).await
        })
    }

    /// Records a batch of one strategy's trades in one transaction, announcing it; the
    /// database decides which were there already.
    pub fn insert_trades(
        &self,
        id: StrategyId,
        trades: &[TradeRecord],
        now: chrono::DateTime<Utc>,
    ) -> Result<super::Inserted, StoreError> {
        let trades = trades.to_vec();
        let (server, origin) = (self.server.clone(), self.origin);
        self.run("recording trades", move |pool| async move {
            let mut tx = rows::begin(&pool).await?;
            let inserted = super::trades::insert_trades(&mut tx, id, &server, &trades, now).await?;
            if !inserted.inserted.is_empty() {
                let payload = serde_json::json!({"o": origin, "k": "trades", "id": id});
                rows::notify(&mut tx, &payload.to_string()).await?;
            }
            rows::commit(tx).await?;
            Ok(inserted)
        })
    }

    /// The trades at these rows, in that order.
    pub fn trades_at(
        &self,
        id: StrategyId,
        wanted: &[i64],
    ) -> Result<Vec<TradeRecord>, StoreError> {
        let wanted = wanted.to_vec();
        self.run("reading trades", move |pool| async move {
            let stored = super::trades::read_trades_at(&pool, id, &wanted).await?;
            Ok(stored.into_iter().map(|t| t.trade).collect())
        })
    }

    /// Whether a connection can be had within half a second.
    fn reachable(&self) -> bool {
        self.handle
            .call(|pool| async move {
                let wait = std::time::Duration::from_millis(500);
                matches!(tokio::time::timeout(wait, pool.acquire()).await, Ok(Ok(_)))
            })
            .unwrap_or(false)
    }
}

fn store_error(e: RowError) -> StoreError {
    match e {
        RowError::Conflict(message) => StoreError::Conflict(message),
        RowError::Stale { id, .. } => StoreError::Stale(id),
        RowError::NotFound(id) => StoreError::NotFound(id),
        other => StoreError::Io(anyhow::anyhow!(other.to_string())),
    }
}

/// A commit's content, owned, to travel to the pool's thread.
struct OwnedCommit {
    document: Option<(StrategyDocument, Option<i64>)>,
    versions: Vec<(VersionRecord, bool)>,
    parameter_change: Option<ParameterChange>,
    link: Option<(Relationship, bool)>,
    audit: Vec<AuditEntry>,
}

impl OwnedCommit {
    fn of(commit: &Commit<'_>) -> OwnedCommit {
        OwnedCommit {
            document: commit.document.as_ref().map(|d| match d {
                DocumentWrite::Create(doc) => ((*doc).clone(), None),
                DocumentWrite::Update { doc, expected } => ((*doc).clone(), Some(*expected as i64)),
            }),
            versions: commit
                .versions
                .iter()
                .map(|v| match v {
                    VersionWrite::New(v) => (v.clone(), true),
                    VersionWrite::Replace(v) => (v.clone(), false),
                })
                .collect(),
            parameter_change: commit.parameter_change.cloned(),
            link: commit.link.as_ref().map(|l| match l {
                LinkWrite::Link(r) => (r.clone(), true),
                LinkWrite::Unlink(r) => (r.clone(), false),
            }),
            audit: commit.audit.clone(),
        }
    }
}

impl Store for PgStore {
    fn load(&self) -> Result<Loaded, StoreError> {
        let (index, relations) = self.run("loading the registry", |pool| async move {
            let index = rows::load_index(&pool).await?;
            let relations = rows::read_relationships(&pool).await?;
            Ok((index, relations))
        })?;
        let parsed: Vec<(StrategyId, Result<Record, String>)> = index
            .into_par_iter()
            .map(|row| {
                let record = shapes::view::index_fields(row.entry.as_bytes())
                    .map_err(|e| format!("invalid metadata: {e}"))
                    .and_then(|fields| {
                        if fields.id != row.id {
                            return Err(format!(
                                "its document says id {} but the row is {}",
                                fields.id, row.id
                            ));
                        }
                        Ok(Record::new(fields, row.revision as u64))
                    });
                (row.id, record)
            })
            .collect();
        let mut records = Vec::with_capacity(parsed.len());
        let mut issues = BTreeMap::new();
        for (id, record) in parsed {
            match record {
                Ok(record) => records.push(record),
                Err(problem) => {
                    tracing::warn!(strategy_id = %id, %problem, "skipped a strategy of the registry's database");
                    issues.insert(PathBuf::from(format!("postgres:strategies/{id}")), problem);
                }
            }
        }
        Ok(Loaded {
            records,
            issues,
            relations,
        })
    }

    fn commit(&self, commit: &Commit<'_>) -> Result<Option<Stamp>, StoreError> {
        let owned = OwnedCommit::of(commit);
        let server = self.server.clone();
        let origin = self.origin;
        self.run("writing a change", move |pool| async move {
            let mut tx = rows::begin(&pool).await?;
            let mut stamp = None;
            if let Some((doc, expected)) = &owned.document {
                let revision = match expected {
                    None => rows::insert_strategy(&mut tx, doc).await?,
                    Some(expected) => rows::update_document(&mut tx, doc, *expected).await?,
                };
                stamp = Some(revision as Stamp);
                let payload = serde_json::json!({
                    "o": origin, "k": "strategy", "id": doc.strategy.id, "rev": revision,
                });
                rows::notify(&mut tx, &payload.to_string()).await?;
            }
            for (version, new) in &owned.versions {
                if *new {
                    rows::insert_version(&mut tx, version).await?;
                } else {
                    rows::upsert_version(&mut tx, version).await?;
                }
            }
            if let Some(change) = &owned.parameter_change {
                rows::insert_parameter_change(&mut tx, change).await?;
            }
            if let Some((r, link)) = &owned.link {
                if *link {
                    rows::link(&mut tx, r).await?;
                } else {
                    rows::unlink(&mut tx, r.from, r.to, r.relationship).await?;
                }
                let payload = serde_json::json!({"o": origin, "k": "relations"});
                rows::notify(&mut tx, &payload.to_string()).await?;
            }
            for entry in &owned.audit {
                rows::insert_audit(&mut tx, &server, entry).await?;
            }
            rows::commit(tx).await?;
            Ok(stamp)
        })
    }

    fn document(&self, id: StrategyId) -> Result<(StrategyDocument, Stamp), StoreError> {
        self.run("reading a strategy", move |pool| async move {
            rows::read_document(&pool, id).await
        })?
        .map(|(doc, revision)| (doc, revision as Stamp))
        .ok_or(StoreError::NotFound(id))
    }

    fn versions(&self, id: StrategyId) -> Result<Vec<VersionRecord>, StoreError> {
        self.run("reading versions", move |pool| async move {
            rows::read_versions(&pool, id).await
        })
    }

    fn parameter_changes(
        &self,
        id: StrategyId,
        name: Option<&str>,
    ) -> Result<Vec<ParameterChange>, StoreError> {
        let name = name.map(str::to_string);
        self.run("reading parameter changes", move |pool| async move {
            rows::read_parameter_changes(&pool, id, name.as_deref()).await
        })
    }

    fn audit_tail(
        &self,
        id: Option<StrategyId>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.run("reading the audit", move |pool| async move {
            rows::audit_tail(&pool, id, limit).await
        })
    }

    fn health(&self) -> Health {
        self.health.lock().expect("health lock").clone()
    }

    fn relations(&self) -> Result<Vec<Relationship>, StoreError> {
        self.run("reading relationships", |pool| async move {
            rows::read_relationships(&pool).await
        })
    }

    /// Listens on [`rows::CHANNEL`] on the pool's thread; a lost connection (which sqlx's
    /// listener makes again) may have missed notifications: a `Resync` follows it.
    fn follow(&self, changes: std::sync::mpsc::Sender<RemoteChange>) {
        let (origin, health) = (self.origin, self.health.clone());
        let started = self.handle.call(move |pool| async move {
            tokio::spawn(listen(pool, origin, health, changes));
        });
        if started.is_err() {
            tracing::warn!(
                "cannot follow the other servers' changes: the registry's PostgreSQL thread is gone"
            );
        }
    }
}

/// Forwards the other processes' notifications until `changes` is dropped.
async fn listen(
    pool: sqlx::PgPool,
    origin: uuid::Uuid,
    health: Arc<Mutex<Health>>,
    changes: std::sync::mpsc::Sender<RemoteChange>,
) {
    use sqlx::postgres::PgListener;
    let mut reconnected = false;
    loop {
        // Listening again before comparing: a change made after the comparison is then
        // heard, one made before it is found by it.
        let mut listener = loop {
            match PgListener::connect_with(&pool).await {
                Ok(mut l) => match l.listen(rows::CHANNEL).await {
                    Ok(()) => break l,
                    Err(e) => {
                        tracing::debug!(error = %e, "cannot listen for the other servers' changes yet")
                    }
                },
                Err(e) => {
                    tracing::debug!(error = %e, "cannot listen for the other servers' changes yet")
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        if reconnected {
            *health.lock().expect("health lock") = Health::Up;
            tracing::info!("the registry's database answers again; catching up");
            if changes.send(RemoteChange::Resync).is_err() {
                return;
            }
        }
        // Until the connection is lost (`Ok(None)`, or an error).
        while let Ok(Some(n)) = listener.try_recv().await {
            if let Some(change) = remote_change(n.payload(), origin)
                && changes.send(change).is_err()
            {
                return;
            }
        }
        tracing::warn!(
            "lost the registry's notifications; listening again when the database is back"
        );
        {
            let mut health = health.lock().expect("health lock");
            if *health == Health::Up {
                *health = Health::Down {
                    since: Utc::now(),
                    why: "the connection to the database was lost".into(),
                };
            }
        }
        reconnected = true;
    }
}

/// The change a notification announces, unless this process sent it.
fn remote_change(payload: &str, origin: uuid::Uuid) -> Option<RemoteChange> {
    let v: serde_json::Value = serde_json::from_str(payload).ok()?;
    if v["o"].as_str() == Some(origin.to_string().as_str()) {
        return None;
    }
    match v["k"].as_str()? {
        "strategy" => Some(RemoteChange::Strategy {
            id: serde_json::from_value(v["id"].clone()).ok()?,
            stamp: v["rev"].as_u64()?,
        }),
        "trades" => Some(RemoteChange::Trades {
            id: serde_json::from_value(v["id"].clone()).ok()?,
        }),
        "relations" => Some(RemoteChange::Relations),
        _ => None,
    }
}
