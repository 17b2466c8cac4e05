//! The registry in PostgreSQL (issue 27, `[registry] backend = "postgres"`): the seed's
//! schema (`daemon/migrations`, applied at start with sqlx's versioned migrations),
//! connecting, a synchronous handle on the pool ([`PgHandle`]), the rows of memd's
//! registry types ([`rows`], [`trades`]) and the registry's store on them ([`PgStore`]).
//!
//! A database whose schema is newer than this memd (a migration it does not know was
//! applied) is refused: reading it could misread what a newer memd wrote. Passwords come
//! from a file and never reach an error message or the log.

mod handle;
pub mod rows;
mod store;
#[cfg(test)]
mod tests_rows;
pub mod trades;

pub use handle::{Gone, PgHandle};
pub use rows::{IndexRow, RowError, Tx};
pub use store::PgStore;
pub use trades::{Inserted, PointRow, StoredTrade};

use sqlx::migrate::{MigrateError, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use std::str::FromStr;
use std::time::Duration;

/// The schema's migrations, built into memd.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Why the database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("bad PostgreSQL URL: {0}")]
    Url(String),
    #[error("cannot connect to PostgreSQL at {target}: {detail}")]
    Connect { target: String, detail: String },
    #[error(
        "the database's registry schema is at migration {found}, newer than this memd knows (up to {known}): upgrade memd before pointing it at this database"
    )]
    Newer { found: i64, known: i64 },
    #[error("cannot migrate the registry schema: {0}")]
    Migrate(String),
    #[error("cannot start memd's PostgreSQL thread: {0}")]
    Runtime(String),
}

/// The newest migration this memd has.
pub fn known_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// `host:port/database` of a URL, for messages (no user, no password).
fn target(options: &PgConnectOptions) -> String {
    format!(
        "{}:{}/{}",
        options.get_host(),
        options.get_port(),
        options.get_database().unwrap_or("")
    )
}

/// `value` as PostgreSQL's JSONB gives it back: a negative zero reads back as zero (its
/// numeric type has no sign for zero); every other number keeps its digits. A copy into a
/// database compares what it wrote with this, not with the original.
pub fn as_jsonb_keeps<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
    fn unsign(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Number(n)
                if n.as_f64() == Some(0.0) && n.to_string().starts_with('-') =>
            {
                *v = serde_json::json!(0.0);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(unsign),
            serde_json::Value::Object(map) => map.values_mut().for_each(unsign),
            _ => {}
        }
    }
    let mut json = serde_json::to_value(value).expect("registry types serialize");
    unsign(&mut json);
    serde_json::from_value(json).expect("registry types read back what they wrote")
}

/// `host:port/database` of a URL, for messages; the URL itself when it does not parse
/// (it holds no password: the config refuses one in it).
pub fn target_of(url: &str) -> String {
    PgConnectOptions::from_str(url).map_or_else(|_| url.to_string(), |o| target(&o))
}

/// Connects to `url` (its password, if any, replaced by `password`), then brings the
/// schema up to date.
pub async fn connect(url: &str, password: Option<&str>) -> Result<PgPool, PgError> {
    let mut options = PgConnectOptions::from_str(url)
        .map_err(|e| PgError::Url(without_password(&e.to_string(), password)))?;
    if let Some(password) = password {
        options = options.password(password);
    }
    let target = target(&options);
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await
        .map_err(|e| PgError::Connect {
            target: target.clone(),
            detail: without_password(&e.to_string(), password),
        })?;
    migrate(&pool).await?;
    Ok(pool)
}

/// Applies the migrations this memd has and the database lacks.
pub async fn migrate(pool: &PgPool) -> Result<(), PgError> {
    match MIGRATOR.run(pool).await {
        Ok(()) => Ok(()),
        Err(MigrateError::VersionMissing(found)) => Err(PgError::Newer {
            found,
            known: known_version(),
        }),
        Err(e) => Err(PgError::Migrate(e.to_string())),
    }
}

/// `text` with every occurrence of the password masked (a driver may echo a URL).
fn without_password(text: &str, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() => text.replace(p, "***"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mem_e2e::postgres::{self, PASSWORD, Postgres};

    /// A cluster of the test's own with a `registry` database (or skipped).
    pub(crate) fn cluster() -> Option<Postgres> {
        postgres::registry_cluster()
    }

    /// The seed's five tables, with the seed's columns, and memd's audit; applying the
    /// migrations again changes nothing.
    #[tokio::test]
    async fn the_seeds_schema_is_made_once() {
        let Some(pg) = cluster() else { return };
        let pool = connect(&pg.url_without_password("registry"), Some(PASSWORD))
            .await
            .unwrap();
        migrate(&pool).await.unwrap();
        let columns = |table: &str| {
            pg.psql(
                "registry",
                &format!(
                    "SELECT string_agg(column_name, ',' ORDER BY column_name) FROM information_schema.columns WHERE table_name = '{table}'"
                ),
            )
        };
        let versions = columns("strategy_versions");
        for column in [
            "breaking_changes",
            "migration_notes",
            "default_parameters_json",
            "validation_status",
            "test_coverage",
            "sharpe_ratio",
            "win_rate",
            "max_drawdown",
            "cagr",
            "mem_improvement_pct",
            "approved_by",
            "approved_at",
            "is_active",
            "deprecated_at",
        ] {
            assert!(
                versions.contains(column),
                "strategy_versions.{column}: {versions}"
            );
        }
        let trades = columns("strategy_performance");
        for column in [
            "version_id",
            "duration_seconds",
            "max_adverse_excursion",
            "max_favorable_excursion",
            "stop_loss",
            "take_profit",
            "mem_reasoning",
            "volume_ratio",
            "signal_action",
            "entry_timestamp",
            "was_mem_enhanced",
            "pnl_percentage",
        ] {
            assert!(
                trades.contains(column),
                "strategy_performance.{column}: {trades}"
            );
        }
        let parameters = columns("strategy_parameters");
        for column in [
            "version_id",
            "applied_from",
            "applied_to",
            "before_sharpe",
            "after_sharpe",
            "improvement_pct",
            "is_ab_test",
            "ab_test_group",
        ] {
            assert!(
                parameters.contains(column),
                "strategy_parameters.{column}: {parameters}"
            );
        }
        assert!(columns("strategy_relationships").contains("similarity_score"));
        assert!(columns("strategies").contains("tags"));
        assert!(columns("registry_audit").contains("server"));
        let gin = pg.psql(
            "registry",
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'strategies_tags'",
        );
        assert!(gin.contains("USING gin"), "{gin}");
    }

    /// A database a newer memd migrated is refused, naming both versions.
    #[tokio::test]
    async fn a_database_newer_than_this_memd_is_refused() {
        let Some(pg) = cluster() else { return };
        let url = pg.url_without_password("registry");
        connect(&url, Some(PASSWORD)).await.unwrap();
        pg.psql(
            "registry",
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (9999, 'from the future', true, '\\x00', 0)",
        );
        let err = connect(&url, Some(PASSWORD)).await.unwrap_err();
        assert!(matches!(err, PgError::Newer { found: 9999, .. }), "{err}");
        assert!(err.to_string().contains("upgrade memd"), "{err}");
    }

    /// A wrong password is said so, and the password given appears nowhere.
    #[tokio::test]
    async fn a_refused_login_names_the_server_not_the_password() {
        let Some(pg) = cluster() else { return };
        let wrong = "not-the-password-4242";
        let err = connect(&pg.url_without_password("registry"), Some(wrong))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("127.0.0.1:{}/registry", pg.port)),
            "{err}"
        );
        assert!(err.contains("password authentication failed"), "{err}");
        assert!(!err.contains(wrong), "{err}");
    }
}
