//! Rows of memd's registry types: what the PostgreSQL store reads and writes. Writes take
//! a transaction ([`Tx`]), so one commit can hold a document, its versions, a parameter
//! change, a link, the audit and the notification. Reads take any executor (the pool, or
//! `&mut **tx` to read inside a transaction).
//!
//! After an error inside a transaction PostgreSQL has aborted it: roll it back (drop it).
//! Times are kept to the microsecond (PostgreSQL's precision): nanoseconds are cut off.

use super::handle::Gone;
use crate::registry::index::IndexFields;
use crate::registry::shapes;
use chrono::{DateTime, Utc};
use mem_protocol::registry::{
    AuditEntry, ChangedBy, ParameterChange, Relationship, RelationshipType, VersionBump,
    VersionRecord, VersionValidation,
};
use mem_protocol::strategy::{StrategyDocument, StrategyId};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sqlx::postgres::{PgArguments, PgExecutor, PgPool, PgRow, Postgres};
use sqlx::query::Query;
use sqlx::types::Json;
use sqlx::{Row, Transaction};
use std::sync::LazyLock;
use uuid::Uuid;

/// A transaction: every write happens in one, so several writes are one commit.
pub type Tx<'c> = Transaction<'c, Postgres>;

/// The channel other daemons listen on for the registry's changes.
pub const CHANNEL: &str = "memd_registry";

/// Why a row could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum RowError {
    /// A unique key is taken (a strategy's id or name, a version number).
    #[error("{0}")]
    Conflict(String),
    /// Someone wrote the strategy since it was read (optimistic concurrency): read again.
    #[error(
        "strategy {id} changed since it was read (expected revision {expected}, the database has {found}): read it again"
    )]
    Stale {
        id: StrategyId,
        expected: i64,
        found: i64,
    },
    #[error("strategy {0} is not in the registry's database")]
    NotFound(StrategyId),
    /// The input cannot be stored; the message names it.
    #[error("{0}")]
    Invalid(String),
    /// A stored row memd cannot read (written by another tool?); the message names it.
    #[error("{0}")]
    Corrupt(String),
    /// The database failed; `doing` says what memd was doing.
    #[error("PostgreSQL failed {doing}: {detail}")]
    Db {
        doing: String,
        detail: String,
        /// The connection failed (not the statement): the database is unreachable.
        connection: bool,
    },
    #[error(transparent)]
    Gone(#[from] Gone),
}

impl RowError {
    /// Whether the database (or memd's thread for it) is unreachable, as opposed to the
    /// request being refused: the store answers "unavailable" for these.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            RowError::Db {
                connection: true,
                ..
            } | RowError::Gone(_)
        )
    }
}

/// Maps a driver error, naming what was being done. sqlx's messages carry no password.
pub(crate) fn db(doing: impl Into<String>) -> impl FnOnce(sqlx::Error) -> RowError {
    let doing = doing.into();
    move |e| {
        // Class 08 is a connection exception; 57P01-57P03 the server shutting down or
        // starting (a fast shutdown answers 57P01 on idle connections).
        let server_going = code_of(&e).is_some_and(|(code, _)| {
            code.starts_with("08") || matches!(code.as_str(), "57P01" | "57P02" | "57P03")
        });
        let connection = server_going
            || matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::Tls(_)
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
            );
        RowError::Db {
            doing,
            detail: e.to_string(),
            connection,
        }
    }
}

/// The SQLSTATE and constraint of a database error.
pub(crate) fn code_of(e: &sqlx::Error) -> Option<(String, Option<String>)> {
    let d = e.as_database_error()?;
    Some((d.code()?.into_owned(), d.constraint().map(str::to_string)))
}

/// Begins a transaction.
pub async fn begin(pool: &PgPool) -> Result<Tx<'static>, RowError> {
    pool.begin().await.map_err(db("beginning a transaction"))
}

/// Commits a transaction; the notifications in it are delivered now.
pub async fn commit(tx: Tx<'_>) -> Result<(), RowError> {
    tx.commit().await.map_err(db("committing"))
}

fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).expect("registry types serialize")
}

/// A lowercase enum (serde's name) as text.
fn enum_text<T: Serialize>(value: &T) -> String {
    match to_json(value) {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn enum_from<T: DeserializeOwned>(
    text: &str,
    what: impl FnOnce() -> String,
) -> Result<T, RowError> {
    serde_json::from_value(Value::String(text.to_string()))
        .map_err(|_| RowError::Corrupt(format!("{}: unknown value {text:?}", what())))
}

fn get<'r, T>(row: &'r PgRow, column: &str, what: &dyn Fn() -> String) -> Result<T, RowError>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(column)
        .map_err(|e| RowError::Corrupt(format!("{}: column {column}: {e}", what())))
}

fn uid_to_db(uid: Option<u32>) -> Option<i64> {
    uid.map(i64::from)
}

fn uid_from_db(uid: Option<i64>, what: &dyn Fn() -> String) -> Result<Option<u32>, RowError> {
    uid.map(|u| {
        u32::try_from(u).map_err(|_| RowError::Corrupt(format!("{}: uid {u} is not a u32", what())))
    })
    .transpose()
}

// ---------------------------------------------------------------------------------------
// Strategies

/// One strategy as the index loads it: the text is parsed by the caller (on rayon), and
/// `revision` is its stamp.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexRow {
    pub id: StrategyId,
    pub revision: i64,
    /// Its index entry (`shapes::view::entry`, written with every document since migration
    /// 0003), or its whole document for a row written before.
    pub entry: String,
}

/// Every strategy's id, revision and document text, by id, all at once. For 100,000
/// strategies prefer [`load_index_each`]: this holds every text (about 300 MB) at once.
pub async fn load_index<'e>(ex: impl PgExecutor<'e>) -> Result<Vec<IndexRow>, RowError> {
    let mut out = Vec::new();
    load_index_each(ex, |row| {
        out.push(row);
        Ok(())
    })
    .await?;
    Ok(out)
}

/// Hands `each` every strategy's id, revision and document text, by id, as the rows
/// arrive, so a start can parse and drop them without holding every text; answers how
/// many there were. An error from `each` stops the load.
pub async fn load_index_each<'e>(
    ex: impl PgExecutor<'e>,
    mut each: impl FnMut(IndexRow) -> Result<(), RowError>,
) -> Result<usize, RowError> {
    use futures::TryStreamExt;
    let mut rows = sqlx::query(
        // A row written before migration 0003 has no entry: its document serves.
        "SELECT strategy_id, revision, COALESCE(index_entry, document::text) AS entry \
         FROM strategies ORDER BY strategy_id",
    )
    .fetch(ex);
    let mut n = 0;
    while let Some(row) = rows
        .try_next()
        .await
        .map_err(db("loading the registry's index"))?
    {
        let what = || "a strategies row".to_string();
        each(IndexRow {
            id: StrategyId(get(&row, "strategy_id", &what)?),
            revision: get(&row, "revision", &what)?,
            entry: get(&row, "entry", &what)?,
        })?;
        n += 1;
    }
    Ok(n)
}

/// One strategy's document and revision, or `None` when it is not there.
pub async fn read_document<'e>(
    ex: impl PgExecutor<'e>,
    id: StrategyId,
) -> Result<Option<(StrategyDocument, i64)>, RowError> {
    let row = sqlx::query(
        "SELECT revision, document::text AS document FROM strategies WHERE strategy_id = $1",
    )
    .bind(id.0)
    .fetch_optional(ex)
    .await
    .map_err(db(format!("reading strategy {id}")))?;
    let Some(row) = row else { return Ok(None) };
    let what = || format!("strategy {id}");
    let revision: i64 = get(&row, "revision", &what)?;
    let text: String = get(&row, "document", &what)?;
    let document = serde_json::from_str(&text).map_err(|e| {
        RowError::Corrupt(format!("strategy {id}: its document does not parse: {e}"))
    })?;
    Ok(Some((document, revision)))
}

/// The seed's flat columns, a view of the document (which stays the source of truth).
const STRATEGY_COLUMNS: [&str; 35] = [
    "strategy_id",
    "strategy_name",
    "display_name",
    "description",
    "category",
    "sub_category",
    "complexity_level",
    "language",
    "file_path",
    "class_name",
    "namespace",
    "origin",
    "academic_source",
    "learned_from_strategy_id",
    "created_by",
    "status",
    "is_mem_enhanced",
    "requires_short_selling",
    "requires_margin",
    "tags",
    "search_keywords",
    "current_version",
    "lifetime_sharpe_ratio",
    "lifetime_win_rate",
    "total_trades",
    "total_pnl",
    "mem_learning_enabled",
    "mem_learned_patterns_count",
    "created_at",
    "updated_at",
    "last_used_at",
    "deprecated_at",
    "deprecation_reason",
    "index_entry",
    "document",
];

fn nonempty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn time_of(s: Option<&str>) -> Option<DateTime<Utc>> {
    s.and_then(mem_protocol::registry::seed_time::parse)
}

fn flag(v: &Value, keys: &[&str]) -> bool {
    keys.iter()
        .any(|k| v.get(k).and_then(Value::as_bool).unwrap_or(false))
}

/// Binds the flat columns (in [`STRATEGY_COLUMNS`] order) of `doc`.
fn bind_strategy(
    q: Query<'static, Postgres, PgArguments>,
    doc: &StrategyDocument,
    now: DateTime<Utc>,
) -> Query<'static, Postgres, PgArguments> {
    let s = &doc.strategy;
    let c = &s.classification;
    let live = &s.performance.live_trading;
    let academic = match &s.academic_foundation {
        Value::String(text) => nonempty(text),
        Value::Object(map) if map.is_empty() => None,
        Value::Null => None,
        other => Some(other.to_string()),
    };
    let keywords = (!c.keywords.is_empty()).then(|| c.keywords.join(" "));
    q.bind(s.id.0)
        .bind(s.name.clone())
        .bind(if s.display_name.is_empty() {
            s.name.clone()
        } else {
            s.display_name.clone()
        })
        .bind(nonempty(&s.description))
        .bind(nonempty(&c.category))
        .bind(nonempty(&c.sub_category))
        .bind(c.complexity.clone())
        .bind(nonempty(&s.implementation.language))
        .bind(s.implementation.file_path.clone())
        .bind(s.implementation.class_name.clone())
        .bind(
            s.implementation
                .extra
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
        )
        .bind(s.origin.map(|o| enum_text(&o)))
        .bind(academic)
        .bind(s.mem_integration.base_strategy_id.map(|b| b.0))
        .bind(s.metadata.created_by.clone())
        .bind(s.status.as_str())
        .bind(s.mem_integration.base_strategy_id.is_some())
        .bind(flag(
            &s.requirements,
            &["requires_short_selling", "short_selling"],
        ))
        .bind(flag(&s.requirements, &["requires_margin", "margin"]))
        .bind(c.tags.clone())
        .bind(keywords)
        .bind(s.version.clone())
        .bind(live.live_sharpe)
        .bind(live.live_win_rate)
        .bind(i64::try_from(live.total_trades).unwrap_or(i64::MAX))
        .bind(live.total_pnl.unwrap_or(0.0))
        .bind(s.mem_integration.enabled)
        .bind(i32::try_from(s.mem_integration.learned_patterns_count).unwrap_or(i32::MAX))
        // Absent: now on insert, the row's own on update (see the SQL).
        .bind(time_of(s.metadata.created_at.as_deref()))
        .bind(time_of(s.metadata.last_updated.as_deref()).unwrap_or(now))
        .bind(time_of(s.metadata.last_used_at.as_deref()))
        .bind(time_of(s.metadata.deprecation_date.as_deref()))
        .bind(s.metadata.deprecation_reason.clone())
        .bind(shapes::view::entry(&IndexFields::of(doc)))
        .bind(Json(to_json(doc)))
}

/// A unique violation on `strategies` named for its key, or the error as it is.
fn strategy_error(e: sqlx::Error, doc: &StrategyDocument, doing: String) -> RowError {
    let s = &doc.strategy;
    match code_of(&e) {
        Some((code, constraint)) if code == "23505" => {
            if constraint.as_deref() == Some("strategies_pkey") {
                RowError::Conflict(format!("a strategy with id {} already exists", s.id))
            } else {
                RowError::Conflict(format!(
                    "a strategy named {:?} already exists (strategy {} cannot take the name)",
                    s.name, s.id
                ))
            }
        }
        // JSONB refuses \u0000 in text.
        Some((code, _)) if code == "22P05" || code == "22021" => RowError::Invalid(format!(
            "strategy {}: its document holds text PostgreSQL cannot store (a NUL character): {e}",
            s.id
        )),
        _ => db(doing)(e),
    }
}

static INSERT_STRATEGY: LazyLock<String> = LazyLock::new(|| insert_sql(""));
static SEED_STRATEGY: LazyLock<String> = LazyLock::new(|| insert_sql("ON CONFLICT DO NOTHING"));
static UPDATE_STRATEGY: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = STRATEGY_COLUMNS
        .iter()
        .enumerate()
        .skip(1)
        .map(|(i, c)| match *c {
            "created_at" => format!("{c} = COALESCE(${}, created_at)", i + 1),
            _ => format!("{c} = ${}", i + 1),
        })
        .collect();
    format!(
        "UPDATE strategies SET {}, revision = revision + 1 WHERE strategy_id = $1 AND revision = ${} RETURNING revision",
        sets.join(", "),
        STRATEGY_COLUMNS.len() + 1
    )
});

fn insert_sql(on_conflict: &str) -> String {
    let values: Vec<String> = STRATEGY_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| match *c {
            "created_at" => format!("COALESCE(${}, now())", i + 1),
            _ => format!("${}", i + 1),
        })
        .collect();
    format!(
        "INSERT INTO strategies ({}) VALUES ({}) {on_conflict} RETURNING revision",
        STRATEGY_COLUMNS.join(", "),
        values.join(", ")
    )
}

/// Inserts a new strategy at revision 1. Its id or name taken: [`RowError::Conflict`].
pub async fn insert_strategy(tx: &mut Tx<'_>, doc: &StrategyDocument) -> Result<i64, RowError> {
    bind_strategy(sqlx::query(&INSERT_STRATEGY), doc, Utc::now())
        .fetch_one(&mut **tx)
        .await
        .map(|row| row.get::<i64, _>(0))
        .map_err(|e| strategy_error(e, doc, format!("inserting strategy {}", doc.strategy.id)))
}

/// Writes `doc` over its strategy if the database still has revision `expected`, and
/// answers the new revision. Someone else wrote first: [`RowError::Stale`]; gone:
/// [`RowError::NotFound`]; renamed onto a taken name: [`RowError::Conflict`].
pub async fn update_document(
    tx: &mut Tx<'_>,
    doc: &StrategyDocument,
    expected: i64,
) -> Result<i64, RowError> {
    let id = doc.strategy.id;
    let row = bind_strategy(sqlx::query(&UPDATE_STRATEGY), doc, Utc::now())
        .bind(expected)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| strategy_error(e, doc, format!("updating strategy {id}")))?;
    if let Some(row) = row {
        return Ok(row.get(0));
    }
    let found: Option<i64> =
        sqlx::query_scalar("SELECT revision FROM strategies WHERE strategy_id = $1")
            .bind(id.0)
            .fetch_optional(&mut **tx)
            .await
            .map_err(db(format!("reading strategy {id}'s revision")))?;
    Err(match found {
        Some(found) => RowError::Stale {
            id,
            expected,
            found,
        },
        None => RowError::NotFound(id),
    })
}

/// Inserts the built-in strategies that are not there yet (by id or by name), so two
/// daemons starting on one empty database are harmless; answers how many it inserted.
pub async fn seed(tx: &mut Tx<'_>, documents: &[StrategyDocument]) -> Result<usize, RowError> {
    let now = Utc::now();
    let mut inserted = 0;
    for doc in documents {
        let row = bind_strategy(sqlx::query(&SEED_STRATEGY), doc, now)
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| strategy_error(e, doc, format!("seeding strategy {}", doc.strategy.id)))?;
        inserted += usize::from(row.is_some());
    }
    Ok(inserted)
}

/// Sends `payload` to [`CHANNEL`]'s listeners when `tx` commits (never if it rolls back).
pub async fn notify(tx: &mut Tx<'_>, payload: &str) -> Result<(), RowError> {
    // PostgreSQL's limit is 8000 bytes.
    if payload.len() >= 8000 {
        let shown: String = payload.chars().take(80).collect();
        return Err(RowError::Invalid(format!(
            "a notification is {} bytes, over PostgreSQL's 8000 ({shown:?}...)",
            payload.len()
        )));
    }
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut **tx)
        .await
        .map_err(db("notifying the registry's listeners"))?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Versions

/// Namespace of versions' ids (UUIDv5 of `"{strategy id}/{version}"`), fixed forever.
const VERSION_NAMESPACE: Uuid = Uuid::from_u128(0x9a1c_52f3_6e0d_4b7e_8f21_d4c3_b5a6_0e17);

/// A version's `version_id`: derived, so every daemon makes the same one.
pub fn version_id(strategy: StrategyId, version: &str) -> Uuid {
    use sha1::{Digest, Sha1};
    let mut hash = Sha1::new();
    hash.update(VERSION_NAMESPACE.as_bytes());
    hash.update(format!("{strategy}/{version}").as_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_sha1_bytes(bytes).into_uuid()
}

const VERSION_COLUMNS: [&str; 26] = [
    "version_id",
    "strategy_id",
    "version_number",
    "version_type",
    "code_snapshot",
    "git_commit_hash",
    "changelog",
    "breaking_changes",
    "migration_notes",
    "parameters_json",
    "default_parameters_json",
    "backtest_results_json",
    "validation_status",
    "test_coverage",
    "sharpe_ratio",
    "win_rate",
    "max_drawdown",
    "cagr",
    "mem_improvement_pct",
    "created_by",
    "created_at",
    "approved_by",
    "approved_at",
    "is_active",
    "deprecated_at",
    "extra",
];

static INSERT_VERSION: LazyLock<String> = LazyLock::new(|| version_sql("ON CONFLICT DO NOTHING"));
static UPSERT_VERSION: LazyLock<String> = LazyLock::new(|| {
    let sets: Vec<String> = VERSION_COLUMNS
        .iter()
        .skip(3)
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect();
    version_sql(&format!(
        "ON CONFLICT (strategy_id, version_number) DO UPDATE SET {}",
        sets.join(", ")
    ))
});
static SELECT_VERSIONS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {} FROM strategy_versions WHERE strategy_id = $1",
        VERSION_COLUMNS.join(", ")
    )
});

fn version_sql(on_conflict: &str) -> String {
    let values: Vec<String> = (1..=VERSION_COLUMNS.len())
        .map(|i| format!("${i}"))
        .collect();
    format!(
        "INSERT INTO strategy_versions ({}) VALUES ({}) {on_conflict} RETURNING version_id",
        VERSION_COLUMNS.join(", "),
        values.join(", ")
    )
}

fn bind_version(
    q: Query<'static, Postgres, PgArguments>,
    v: &VersionRecord,
) -> Query<'static, Postgres, PgArguments> {
    q.bind(version_id(v.strategy_id, &v.version_number))
        .bind(v.strategy_id.0)
        .bind(v.version_number.clone())
        .bind(v.version_type.map(|t| enum_text(&t)))
        .bind(v.code_snapshot.clone())
        .bind(v.git_commit_hash.clone())
        .bind(v.changelog.clone())
        .bind(v.breaking_changes.clone())
        .bind(v.migration_notes.clone())
        .bind(Json(v.parameters.clone()))
        .bind(Json(v.default_parameters.clone()))
        .bind(Json(v.backtest_results.clone()))
        .bind(v.validation_status.map(|s| enum_text(&s)))
        .bind(v.test_coverage)
        .bind(v.sharpe_ratio)
        .bind(v.win_rate)
        .bind(v.max_drawdown)
        .bind(v.cagr)
        .bind(v.mem_improvement_pct)
        .bind(v.created_by.clone())
        .bind(v.created_at)
        .bind(v.approved_by.clone())
        .bind(v.approved_at)
        .bind(v.is_active)
        .bind(v.deprecated_at)
        .bind(Json(v.extra.clone()))
}

fn version_error(e: sqlx::Error, v: &VersionRecord, doing: &str) -> RowError {
    let what = format!("version {} of strategy {}", v.version_number, v.strategy_id);
    match code_of(&e) {
        Some((code, _)) if code == "23503" => RowError::NotFound(v.strategy_id),
        Some((code, constraint)) if code == "23514" => RowError::Invalid(format!(
            "{what} cannot be stored: {} (test_coverage is 0 to 100)",
            constraint.unwrap_or_default()
        )),
        _ => db(format!("{doing} {what}"))(e),
    }
}

/// Inserts a new version; one with its number there already: [`RowError::Conflict`].
pub async fn insert_version(tx: &mut Tx<'_>, v: &VersionRecord) -> Result<(), RowError> {
    let row = bind_version(sqlx::query(&INSERT_VERSION), v)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| version_error(e, v, "inserting"))?;
    match row {
        Some(_) => Ok(()),
        None => Err(RowError::Conflict(format!(
            "version {} of strategy {} already exists",
            v.version_number, v.strategy_id
        ))),
    }
}

/// Writes a version, over the one with its number if there is one.
pub async fn upsert_version(tx: &mut Tx<'_>, v: &VersionRecord) -> Result<(), RowError> {
    bind_version(sqlx::query(&UPSERT_VERSION), v)
        .fetch_one(&mut **tx)
        .await
        .map_err(|e| version_error(e, v, "writing"))?;
    Ok(())
}

fn json_map(
    row: &PgRow,
    column: &str,
    what: &dyn Fn() -> String,
) -> Result<Map<String, Value>, RowError> {
    match get::<Json<Value>>(row, column, what)?.0 {
        Value::Object(map) => Ok(map),
        other => Err(RowError::Corrupt(format!(
            "{}: column {column} is not a JSON object: {}",
            what(),
            other.to_string().chars().take(80).collect::<String>()
        ))),
    }
}

fn version_of(row: &PgRow) -> Result<VersionRecord, RowError> {
    let strategy_id = StrategyId(get(row, "strategy_id", &|| {
        "a strategy_versions row".into()
    })?);
    let number: String = get(row, "version_number", &|| {
        format!("a version of strategy {strategy_id}")
    })?;
    let what = || format!("version {number} of strategy {strategy_id}");
    let what: &dyn Fn() -> String = &what;
    Ok(VersionRecord {
        strategy_id,
        version_type: get::<Option<String>>(row, "version_type", what)?
            .map(|t| enum_from::<VersionBump>(&t, || format!("{} version_type", what())))
            .transpose()?,
        changelog: get(row, "changelog", what)?,
        parameters: json_map(row, "parameters_json", what)?,
        backtest_results: json_map(row, "backtest_results_json", what)?,
        code_snapshot: get(row, "code_snapshot", what)?,
        git_commit_hash: get(row, "git_commit_hash", what)?,
        created_by: get(row, "created_by", what)?,
        created_at: get(row, "created_at", what)?,
        breaking_changes: get(row, "breaking_changes", what)?,
        migration_notes: get(row, "migration_notes", what)?,
        default_parameters: json_map(row, "default_parameters_json", what)?,
        validation_status: get::<Option<String>>(row, "validation_status", what)?
            .map(|t| enum_from::<VersionValidation>(&t, || format!("{} validation_status", what())))
            .transpose()?,
        test_coverage: get(row, "test_coverage", what)?,
        sharpe_ratio: get(row, "sharpe_ratio", what)?,
        win_rate: get(row, "win_rate", what)?,
        max_drawdown: get(row, "max_drawdown", what)?,
        cagr: get(row, "cagr", what)?,
        mem_improvement_pct: get(row, "mem_improvement_pct", what)?,
        approved_by: get(row, "approved_by", what)?,
        approved_at: get(row, "approved_at", what)?,
        is_active: get(row, "is_active", what)?,
        deprecated_at: get(row, "deprecated_at", what)?,
        extra: json_map(row, "extra", what)?,
        version_number: number,
    })
}

/// A strategy's versions, oldest first (by semantic version, as the files).
pub async fn read_versions<'e>(
    ex: impl PgExecutor<'e>,
    id: StrategyId,
) -> Result<Vec<VersionRecord>, RowError> {
    let rows = sqlx::query(&SELECT_VERSIONS)
        .bind(id.0)
        .fetch_all(ex)
        .await
        .map_err(db(format!("reading strategy {id}'s versions")))?;
    let mut out = rows.iter().map(version_of).collect::<Result<Vec<_>, _>>()?;
    out.sort_by_key(|v| semver::Version::parse(&v.version_number).ok());
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Parameter changes

/// The seed's `parameter_value` (the new value as text) and `parameter_type`.
fn parameter_text(value: &Value) -> (String, &'static str) {
    match value {
        Value::String(s) => (s.clone(), "string"),
        Value::Bool(b) => (b.to_string(), "boolean"),
        Value::Number(n) if n.is_f64() => (n.to_string(), "decimal"),
        Value::Number(n) => (n.to_string(), "integer"),
        other => (other.to_string(), "json"),
    }
}

/// Inserts one parameter change.
pub async fn insert_parameter_change(tx: &mut Tx<'_>, c: &ParameterChange) -> Result<(), RowError> {
    let (text, kind) = parameter_text(&c.new_value);
    sqlx::query(
        "INSERT INTO strategy_parameters (strategy_id, version_id, parameter_name, parameter_value, \
         parameter_type, old_value, new_value, applied_from, applied_to, change_reason, changed_by, \
         client_uid, before_sharpe, after_sharpe, improvement_pct, is_ab_test, ab_test_group, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
    )
    .bind(c.strategy_id.0)
    .bind(c.version_id.clone())
    .bind(c.parameter_name.clone())
    .bind(text)
    .bind(kind)
    .bind(Json(c.old_value.clone()))
    .bind(Json(c.new_value.clone()))
    .bind(c.applied_from)
    .bind(c.applied_to)
    .bind(c.change_reason.clone())
    .bind(enum_text(&c.changed_by))
    .bind(uid_to_db(c.client_uid))
    .bind(c.before_sharpe)
    .bind(c.after_sharpe)
    .bind(c.improvement_pct)
    .bind(c.is_ab_test)
    .bind(c.ab_test_group.clone())
    .bind(c.changed_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| match code_of(&e) {
        Some((code, _)) if code == "23503" => RowError::NotFound(c.strategy_id),
        _ => db(format!(
            "recording a change of parameter {:?} of strategy {}",
            c.parameter_name, c.strategy_id
        ))(e),
    })?;
    Ok(())
}

/// A strategy's parameter changes (of one parameter if `name`), oldest first.
pub async fn read_parameter_changes<'e>(
    ex: impl PgExecutor<'e>,
    id: StrategyId,
    name: Option<&str>,
) -> Result<Vec<ParameterChange>, RowError> {
    let rows = sqlx::query(
        "SELECT parameter_id, strategy_id, version_id, parameter_name, old_value, new_value, applied_from, \
         applied_to, change_reason, changed_by, client_uid, before_sharpe, after_sharpe, improvement_pct, \
         is_ab_test, ab_test_group, created_at FROM strategy_parameters \
         WHERE strategy_id = $1 AND ($2::text IS NULL OR parameter_name = $2) ORDER BY parameter_id",
    )
    .bind(id.0)
    .bind(name)
    .fetch_all(ex)
    .await
    .map_err(db(format!("reading strategy {id}'s parameter history")))?;
    rows.iter()
        .map(|row| {
            let row_id: i64 = get(row, "parameter_id", &|| "a strategy_parameters row".into())?;
            let what = || format!("parameter change {row_id} of strategy {id}");
            let what: &dyn Fn() -> String = &what;
            let changed_by: String = get(row, "changed_by", what)?;
            Ok(ParameterChange {
                strategy_id: StrategyId(get(row, "strategy_id", what)?),
                parameter_name: get(row, "parameter_name", what)?,
                old_value: get::<Json<Value>>(row, "old_value", what)?.0,
                new_value: get::<Json<Value>>(row, "new_value", what)?.0,
                change_reason: get(row, "change_reason", what)?,
                changed_by: enum_from::<ChangedBy>(&changed_by, || {
                    format!("{} changed_by", what())
                })?,
                client_uid: uid_from_db(get(row, "client_uid", what)?, what)?,
                changed_at: get(row, "created_at", what)?,
                version_id: get(row, "version_id", what)?,
                applied_from: get(row, "applied_from", what)?,
                applied_to: get(row, "applied_to", what)?,
                before_sharpe: get(row, "before_sharpe", what)?,
                after_sharpe: get(row, "after_sharpe", what)?,
                improvement_pct: get(row, "improvement_pct", what)?,
                is_ab_test: get(row, "is_ab_test", what)?,
                ab_test_group: get(row, "ab_test_group", what)?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Relationships: `from` is the subject ("from derived_from to"), so it is the seed's child
// and `to` its parent.

/// Links two strategies; answers false when that link was there already.
pub async fn link(tx: &mut Tx<'_>, r: &Relationship) -> Result<bool, RowError> {
    let kind = enum_text(&r.relationship);
    let row = sqlx::query(
        "INSERT INTO strategy_relationships (parent_strategy_id, child_strategy_id, relationship_type, \
         description, similarity_score, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT DO NOTHING RETURNING relationship_id",
    )
    .bind(r.to.0)
    .bind(r.from.0)
    .bind(&kind)
    .bind(r.note.clone())
    .bind(r.similarity_score)
    .bind(r.created_at)
    .fetch_optional(&mut **tx)
    .await
    .map_err(|e| {
        let what = format!("{} {kind} {}", r.from, r.to);
        match code_of(&e) {
            Some((code, _)) if code == "23503" => RowError::Invalid(format!(
                "cannot link {what}: one of them is not in the registry's database"
            )),
            Some((code, c)) if code == "23514" => RowError::Invalid(format!(
                "cannot link {what}: {} (a strategy cannot relate to itself; similarity is 0 to 1)",
                c.unwrap_or_default()
            )),
            _ => db(format!("linking {what}"))(e),
        }
    })?;
    Ok(row.is_some())
}

/// Removes a link; answers false when there was none.
pub async fn unlink(
    tx: &mut Tx<'_>,
    from: StrategyId,
    to: StrategyId,
    kind: RelationshipType,
) -> Result<bool, RowError> {
    let kind = enum_text(&kind);
    let done = sqlx::query(
        "DELETE FROM strategy_relationships WHERE parent_strategy_id = $1 AND child_strategy_id = $2 \
         AND relationship_type = $3",
    )
    .bind(to.0)
    .bind(from.0)
    .bind(&kind)
    .execute(&mut **tx)
    .await
    .map_err(db(format!("unlinking {from} {kind} {to}")))?;
    Ok(done.rows_affected() > 0)
}

/// Every relationship, oldest first.
pub async fn read_relationships<'e>(
    ex: impl PgExecutor<'e>,
) -> Result<Vec<Relationship>, RowError> {
    let rows = sqlx::query(
        "SELECT relationship_id, parent_strategy_id, child_strategy_id, relationship_type, description, \
         similarity_score, created_at FROM strategy_relationships ORDER BY relationship_id",
    )
    .fetch_all(ex)
    .await
    .map_err(db("reading the relationships"))?;
    rows.iter()
        .map(|row| {
            let row_id: i64 = get(row, "relationship_id", &|| {
                "a strategy_relationships row".into()
            })?;
            let what = || format!("relationship {row_id}");
            let what: &dyn Fn() -> String = &what;
            let kind: String = get(row, "relationship_type", what)?;
            Ok(Relationship {
                from: StrategyId(get(row, "child_strategy_id", what)?),
                to: StrategyId(get(row, "parent_strategy_id", what)?),
                relationship: enum_from(&kind, || format!("{} relationship_type", what()))?,
                note: get(row, "description", what)?,
                similarity_score: get(row, "similarity_score", what)?,
                created_at: get(row, "created_at", what)?,
            })
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Audit

/// Appends an audit entry, recorded by `server`.
pub async fn insert_audit(tx: &mut Tx<'_>, server: &str, a: &AuditEntry) -> Result<(), RowError> {
    sqlx::query(
        "INSERT INTO registry_audit (at, server, uid, client, action, strategy_id, details) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(a.at)
    .bind(a.server.as_deref().unwrap_or(server))
    .bind(uid_to_db(a.uid))
    .bind(a.client.clone())
    .bind(a.action.clone())
    .bind(a.strategy_id.map(|s| s.0))
    .bind(Json(a.changes.clone()))
    .execute(&mut **tx)
    .await
    .map_err(db(format!("auditing {:?}", a.action)))?;
    Ok(())
}

/// The newest `limit` audit entries (of one strategy if `id`), oldest first.
pub async fn audit_tail<'e>(
    ex: impl PgExecutor<'e>,
    id: Option<StrategyId>,
    limit: usize,
) -> Result<Vec<AuditEntry>, RowError> {
    let rows = sqlx::query(
        "SELECT audit_id, at, server, uid, client, action, strategy_id, details FROM registry_audit \
         WHERE ($1::uuid IS NULL OR strategy_id = $1) ORDER BY audit_id DESC LIMIT $2",
    )
    .bind(id.map(|s| s.0))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(ex)
    .await
    .map_err(db("reading the audit"))?;
    let mut out = rows
        .iter()
        .map(|row| {
            let row_id: i64 = get(row, "audit_id", &|| "a registry_audit row".into())?;
            let what = || format!("audit entry {row_id}");
            let what: &dyn Fn() -> String = &what;
            Ok(AuditEntry {
                at: get(row, "at", what)?,
                uid: uid_from_db(get(row, "uid", what)?, what)?,
                client: get(row, "client", what)?,
                action: get(row, "action", what)?,
                strategy_id: get::<Option<Uuid>>(row, "strategy_id", what)?.map(StrategyId),
                changes: get::<Json<Value>>(row, "details", what)?.0,
                server: Some(get(row, "server", what)?),
            })
        })
        .collect::<Result<Vec<_>, RowError>>()?;
    out.reverse();
    Ok(out)
}
