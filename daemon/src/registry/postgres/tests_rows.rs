//! The rows against a real PostgreSQL: what is read back is what was written.

use super::rows::{self, RowError};
use super::tests::cluster;
use super::trades::{self, Inserted};
use super::{PgHandle, connect};
use crate::registry::index::Record;
use chrono::{DateTime, Duration, SubsecRound, TimeZone, Utc};
use mem_e2e::postgres::{PASSWORD, Postgres};
use mem_e2e::trades::{RandomTrades, closed_trade};
use mem_protocol::registry::{
    AuditEntry, ChangedBy, ParameterChange, Relationship, RelationshipType, VersionBump,
    VersionRecord, VersionValidation,
};
use mem_protocol::strategy::{StrategyDocument, StrategyId};
use serde_json::{Value, json};
use sqlx::postgres::{PgListener, PgPool};
use std::time::Instant;

async fn pool(pg: &Postgres) -> PgPool {
    connect(&pg.url_without_password("registry"), Some(PASSWORD))
        .await
        .unwrap()
}

/// A time PostgreSQL keeps exactly (microseconds).
fn at(seconds: i64) -> DateTime<Utc> {
    (Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap()
        + Duration::seconds(seconds)
        + Duration::nanoseconds(123_456_000))
    .trunc_subsecs(6)
}

/// A document with every part filled and unknown members at each level.
fn document(id: StrategyId, name: &str) -> StrategyDocument {
    serde_json::from_value(json!({
        "schema_version": "1.0.0",
        "from_another_tool": {"kept": [1, 2.5, "three", null]},
        "strategy": {
            "id": id,
            "name": name,
            "display_name": "Round Trip",
            "description": "A strategy for the row tests",
            "version": "1.2.0",
            "status": "active",
            "origin": "research",
            "unknown_member": true,
            "classification": {
                "category": "momentum",
                "sub_category": "breakout",
                "complexity": "simple",
                "tags": ["a", "b"],
                "asset_classes": ["crypto"],
                "keywords": ["alpha", "beta"],
                "custom": {"x": 1}
            },
            "implementation": {
                "language": "rust",
                "file_path": "strategies/rt.rs",
                "class_name": "RoundTrip",
                "namespace": "memd.rt",
                "dependencies": ["ta"],
                "extra_impl": "kept"
            },
            "academic_foundation": {"paper": "Jegadeesh and Titman 1993"},
            "parameters": {
                "period": {"value": 14, "type": "integer", "min": 2, "max": 50},
                "flat": 0.1,
                "big": 100000.0
            },
            "performance": {
                "backtest": {"sharpe_ratio": 1.4, "win_rate": 0.55, "note": "kept"},
                "live_trading": {
                    "total_trades": 12,
                    "start_date": "2026-11-01",
                    "live_sharpe": 0.9,
                    "live_win_rate": 0.5,
                    "total_pnl": 42.5,
                    "other": 1
                }
            },
            "mem_integration": {
                "enabled": true,
                "learned_patterns_count": 3,
                "base_strategy_id": "0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d61"
            },
            "requirements": {"requires_margin": true, "minimum_capital": 100},
            "risk_profile": {"risk_level": "medium", "max_leverage": 2},
            "metadata": {
                "created_by": "tester",
                "created_at": "2026-11-01T10:00:00Z",
                "last_updated": "2026-11-02T10:00:00Z",
                "last_used_at": "2026-11-03T10:00:00Z",
                "deprecation_reason": "none yet",
                "unknown_meta": "kept"
            }
        }
    }))
    .unwrap()
}

/// The built-in strategies memd ships (data/strategy_registry/metadata).
fn built_ins() -> Vec<StrategyDocument> {
    let dir = crate::datadir::DEFAULT_DATA
        .get_dir("strategy_registry/metadata")
        .unwrap();
    dir.files()
        .map(|f| serde_json::from_slice(f.contents()).unwrap())
        .collect()
}

/// The handle answers from plain threads (several at once), from inside another
/// runtime's async code (where `block_on` would panic), and stops when dropped.
#[test]
fn the_handle_answers_from_any_thread_even_inside_a_runtime() {
    let Some(pg) = cluster() else { return };
    let handle = PgHandle::connect(&pg.url_without_password("registry"), Some(PASSWORD)).unwrap();
    let handle = std::sync::Arc::new(handle);
    let answers: Vec<i32> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let handle = handle.clone();
                s.spawn(move || {
                    handle
                        .call(move |pool| async move {
                            sqlx::query_scalar::<_, i32>("SELECT $1 + 40")
                                .bind(i)
                                .fetch_one(&pool)
                                .await
                                .unwrap()
                        })
                        .unwrap()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(answers, [40, 41, 42, 43]);
    for flavor in ["current_thread", "multi_thread"] {
        let runtime = if flavor == "current_thread" {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
        } else {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap()
        };
        let inner = handle.clone();
        let n = runtime.block_on(async move {
            tokio::spawn(async move {
                inner
                    .call(|pool| async move {
                        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM strategies")
                            .fetch_one(&pool)
                            .await
                    })
                    .unwrap()
                    .unwrap()
            })
            .await
            .unwrap()
        });
        assert_eq!(n, 0, "{flavor}");
    }
    // Rows through the handle: errors come back as values.
    let id = StrategyId::new_random();
    let missing = handle
        .rows(move |pool| async move { rows::read_document(&pool, id).await })
        .unwrap();
    assert!(missing.is_none());
    let handle = std::sync::Arc::into_inner(handle).unwrap();
    drop(handle);
}

/// While the server is down a call answers "unavailable" (not a refusal), within the
/// pool's acquire timeout; once it is back the same handle answers again.
#[test]
fn a_stopped_server_is_unavailable_until_it_is_back() {
    let Some(mut pg) = cluster() else { return };
    let handle = PgHandle::connect(&pg.url_without_password("registry"), Some(PASSWORD)).unwrap();
    let read = |handle: &PgHandle| {
        let id = StrategyId::new_random();
        handle.rows(move |pool| async move { rows::read_document(&pool, id).await })
    };
    assert!(read(&handle).unwrap().is_none());
    pg.stop();
    for _ in 0..2 {
        let started = Instant::now();
        let err = read(&handle).unwrap_err();
        assert!(err.is_unavailable(), "{err:?}");
        assert!(err.to_string().contains("reading strategy"), "{err}");
        assert!(!err.to_string().contains(PASSWORD), "{err}");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(7),
            "{err}"
        );
        println!("down: answered in {:?}: {err}", started.elapsed());
    }
    pg.start_server();
    assert!(read(&handle).unwrap().is_none());
}

/// A wrong password is refused at connect, naming the server and not the password.
#[test]
fn a_handle_that_cannot_connect_says_where() {
    let Some(pg) = cluster() else { return };
    let wrong = "wrong-password-7777";
    let err = PgHandle::connect(&pg.url_without_password("registry"), Some(wrong))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{}/registry", pg.port)),
        "{err}"
    );
    assert!(!err.contains(wrong), "{err}");
}

/// JSONB keeps no negative zero: a document reads back as `as_jsonb_keeps` says, which a
/// migration compares its copy with (a registry on files found -0.0 in a document).
#[tokio::test]
async fn a_negative_zero_reads_back_as_jsonb_keeps_it() {
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    let mut doc = document(StrategyId::new_random(), "signed_zero");
    doc.strategy.performance.backtest.sharpe_ratio = Some(-0.0);
    doc.extra
        .insert("zeros".into(), json!([-0.0, 0.0, -1.5, {"z": -0.0}]));
    let mut tx = rows::begin(&pool).await.unwrap();
    rows::insert_strategy(&mut tx, &doc).await.unwrap();
    rows::commit(tx).await.unwrap();
    let (back, _) = rows::read_document(&pool, doc.strategy.id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(
        serde_json::to_string(&back).unwrap(),
        serde_json::to_string(&doc).unwrap()
    );
    let expected = super::as_jsonb_keeps(&doc);
    assert_eq!(
        serde_json::to_string(&back).unwrap(),
        serde_json::to_string(&expected).unwrap()
    );
    assert_eq!(back.extra["zeros"], json!([0.0, 0.0, -1.5, {"z": 0.0}]));
}

/// A document reads back as written (unknown members kept), the flat columns show it,
/// and optimistic concurrency refuses a write on a stale revision.
#[tokio::test]
async fn documents_round_trip_and_stale_or_taken_writes_are_refused() {
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    let id = StrategyId::new_random();
    let doc = document(id, "round_trip");
    let mut tx = rows::begin(&pool).await.unwrap();
    assert_eq!(rows::insert_strategy(&mut tx, &doc).await.unwrap(), 1);
    rows::commit(tx).await.unwrap();

    let (back, revision) = rows::read_document(&pool, id).await.unwrap().unwrap();
    assert_eq!(back, doc);
    assert_eq!(revision, 1);
    assert!(back.extra.contains_key("from_another_tool"));
    assert!(back.strategy.extra.contains_key("unknown_member"));
    let index = rows::load_index(&pool).await.unwrap();
    assert_eq!(index.len(), 1);
    assert_eq!((index[0].id, index[0].revision), (id, 1));
    // The index reads the entry, which indexes as the document does.
    let entry = crate::registry::shapes::view::index_fields(index[0].entry.as_bytes()).unwrap();
    assert_eq!(
        Record::new(entry, 1).summary,
        Record::from_doc(&doc, 1).summary
    );
    let mut streamed = Vec::new();
    let n = rows::load_index_each(&pool, |row| {
        streamed.push(row);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!((n, streamed), (1, index));
    // A row from before migration 0003 (no entry) is indexed from its document.
    pg.psql("registry", "UPDATE strategies SET index_entry = NULL");
    let old = rows::load_index(&pool).await.unwrap();
    let parsed: StrategyDocument = serde_json::from_str(&old[0].entry).unwrap();
    assert_eq!(parsed, doc);

    // Text PostgreSQL cannot store (NUL) is refused naming the strategy.
    let mut nul = document(StrategyId::new_random(), "nul");
    nul.strategy.description = "a\0b".into();
    let mut tx = rows::begin(&pool).await.unwrap();
    let err = rows::insert_strategy(&mut tx, &nul).await.unwrap_err();
    assert!(
        matches!(&err, RowError::Invalid(m) if m.contains(&nul.strategy.id.to_string())),
        "{err:?}"
    );
    drop(tx);

    let flat = pg.psql(
        "registry",
        &format!(
            "SELECT strategy_name, display_name, category, sub_category, complexity_level, language, \
             file_path, class_name, namespace, origin, academic_source IS NOT NULL, learned_from_strategy_id, \
             created_by, status, is_mem_enhanced, requires_short_selling, requires_margin, tags, \
             search_keywords, current_version, lifetime_sharpe_ratio, lifetime_win_rate, total_trades, \
             total_pnl, mem_learning_enabled, mem_learned_patterns_count, created_at, updated_at, \
             last_used_at, deprecation_reason FROM strategies WHERE strategy_id = '{id}'"
        ),
    );
    assert_eq!(
        flat.trim(),
        "round_trip|Round Trip|momentum|breakout|simple|rust|strategies/rt.rs|RoundTrip|memd.rt|research|t|\
         0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d61|tester|active|t|f|t|{a,b}|alpha beta|1.2.0|0.9|0.5|12|42.5|t|3|\
         2026-11-01 10:00:00+00|2026-11-02 10:00:00+00|2026-11-03 10:00:00+00|none yet"
    );

    // An update on the revision read: the next revision.
    let mut changed = doc.clone();
    changed.strategy.description = "changed".into();
    changed
        .strategy
        .extra
        .insert("added_later".into(), json!({"deep": [true]}));
    let mut tx = rows::begin(&pool).await.unwrap();
    assert_eq!(
        rows::update_document(&mut tx, &changed, 1).await.unwrap(),
        2
    );
    rows::commit(tx).await.unwrap();
    assert_eq!(
        rows::read_document(&pool, id).await.unwrap().unwrap(),
        (changed.clone(), 2)
    );
    // A document without a creation time keeps the row's.
    let mut undated = changed.clone();
    undated.strategy.metadata.created_at = None;
    let mut tx = rows::begin(&pool).await.unwrap();
    assert_eq!(
        rows::update_document(&mut tx, &undated, 2).await.unwrap(),
        3
    );
    assert_eq!(
        rows::update_document(&mut tx, &changed, 3).await.unwrap(),
        4
    );
    rows::commit(tx).await.unwrap();
    assert_eq!(
        pg.psql(
            "registry",
            &format!("SELECT created_at FROM strategies WHERE strategy_id = '{id}'")
        )
        .trim(),
        "2026-11-01 10:00:00+00"
    );

    // Another writer read revision 1 too: refused, nothing changed.
    let mut tx = rows::begin(&pool).await.unwrap();
    let err = rows::update_document(&mut tx, &doc, 1).await.unwrap_err();
    assert!(
        matches!(err, RowError::Stale { id: i, expected: 1, found: 4 } if i == id),
        "{err}"
    );
    assert!(err.to_string().contains(&id.to_string()), "{err}");
    drop(tx);
    assert_eq!(
        rows::read_document(&pool, id).await.unwrap().unwrap(),
        (changed.clone(), 4)
    );

    // Not there at all.
    let missing = document(StrategyId::new_random(), "nowhere");
    let mut tx = rows::begin(&pool).await.unwrap();
    let err = rows::update_document(&mut tx, &missing, 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RowError::NotFound(i) if i == missing.strategy.id),
        "{err}"
    );
    drop(tx);

    // The same id again, or another strategy with the same name: conflicts naming them.
    let mut tx = rows::begin(&pool).await.unwrap();
    let err = rows::insert_strategy(&mut tx, &document(id, "other_name"))
        .await
        .unwrap_err();
    assert!(matches!(err, RowError::Conflict(_)), "{err}");
    assert!(err.to_string().contains(&id.to_string()), "{err}");
    drop(tx);
    let other = StrategyId::new_random();
    let mut tx = rows::begin(&pool).await.unwrap();
    let err = rows::insert_strategy(&mut tx, &document(other, "round_trip"))
        .await
        .unwrap_err();
    assert!(matches!(err, RowError::Conflict(_)), "{err}");
    assert!(err.to_string().contains("\"round_trip\""), "{err}");
    drop(tx);

    // A rename onto a taken name.
    let mut tx = rows::begin(&pool).await.unwrap();
    rows::insert_strategy(&mut tx, &document(other, "second"))
        .await
        .unwrap();
    rows::commit(tx).await.unwrap();
    let mut tx = rows::begin(&pool).await.unwrap();
    let err = rows::update_document(&mut tx, &document(other, "round_trip"), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RowError::Conflict(m) if m.contains("\"round_trip\"")),
        "{err}"
    );
    drop(tx);
    assert_eq!(rows::load_index(&pool).await.unwrap().len(), 2);
}

/// Seeding inserts the built-in strategies once, whoever seeds next.
#[tokio::test]
async fn seeding_twice_inserts_once() {
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    let docs = built_ins();
    assert_eq!(docs.len(), 11);
    let mut tx = rows::begin(&pool).await.unwrap();
    assert_eq!(rows::seed(&mut tx, &docs).await.unwrap(), 11);
    rows::commit(tx).await.unwrap();
    let mut tx = rows::begin(&pool).await.unwrap();
    assert_eq!(rows::seed(&mut tx, &docs).await.unwrap(), 0);
    rows::commit(tx).await.unwrap();
    for doc in &docs {
        let (back, revision) = rows::read_document(&pool, doc.strategy.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&back, doc);
        assert_eq!(revision, 1);
    }
}

fn full_version(id: StrategyId, number: &str) -> VersionRecord {
    let mut v = VersionRecord::new(
        id,
        number.into(),
        "faster exits".into(),
        serde_json::from_value(json!({"period": 14, "flat": 0.5})).unwrap(),
        "alice".into(),
    );
    v.created_at = at(0);
    v.version_type = Some(VersionBump::Minor);
    v.backtest_results = serde_json::from_value(json!({"sharpe": 1.2, "trades": 40})).unwrap();
    v.code_snapshot = Some("fn main() {}".into());
    v.git_commit_hash = Some("abc123".into());
    v.breaking_changes = Some("renamed period".into());
    v.migration_notes = Some("use period".into());
    v.default_parameters = serde_json::from_value(json!({"period": 10})).unwrap();
    v.validation_status = Some(VersionValidation::Passed);
    v.test_coverage = Some(87.5);
    v.sharpe_ratio = Some(1.2);
    v.win_rate = Some(0.6);
    v.max_drawdown = Some(0.1);
    v.cagr = Some(0.25);
    v.mem_improvement_pct = Some(4.5);
    v.approved_by = Some("bob".into());
    v.approved_at = Some(at(60));
    v.is_active = true;
    v.deprecated_at = Some(at(120));
    v.extra = serde_json::from_value(json!({"unknown": {"kept": true}})).unwrap();
    v
}

async fn inserted_strategy(pool: &PgPool, name: &str) -> StrategyId {
    let id = StrategyId::new_random();
    let mut tx = rows::begin(pool).await.unwrap();
    rows::insert_strategy(&mut tx, &document(id, name))
        .await
        .unwrap();
    rows::commit(tx).await.unwrap();
    id
}

/// Versions keep every seed column, a missing validation status stays missing, a version
/// number is taken once, and a rewrite replaces it; ids are derived.
#[tokio::test]
async fn versions_round_trip_with_every_column() {
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    let id = inserted_strategy(&pool, "versioned").await;
    let full = full_version(id, "1.10.0");
    let mut bare = VersionRecord::new(
        id,
        "1.2.0".into(),
        "first".into(),
        Default::default(),
        "memd".into(),
    );
    bare.created_at = at(-60);
    bare.validation_status = None;
    let mut tx = rows::begin(&pool).await.unwrap();
    rows::insert_version(&mut tx, &full).await.unwrap();
    rows::insert_version(&mut tx, &bare).await.unwrap();
    rows::commit(tx).await.unwrap();
    // Oldest first by semantic version (1.2.0 before 1.10.0).
    assert_eq!(
        rows::read_versions(&pool, id).await.unwrap(),
        vec![bare.clone(), full.clone()]
    );
    assert_eq!(
        pg.psql(
            "registry",
            &format!("SELECT version_id FROM strategy_versions WHERE version_number = '1.10.0' AND strategy_id = '{id}'")
        )
        .trim(),
        rows::version_id(id, "1.10.0").to_string()
    );
    assert_ne!(
        rows::version_id(id, "1.10.0"),
        rows::version_id(id, "1.2.0")
    );

    let mut tx = rows::begin(&pool).await.unwrap();
    let err = rows::insert_version(&mut tx, &bare).await.unwrap_err();
    assert!(
        matches!(&err, RowError::Conflict(m) if m.contains("1.2.0") && m.contains(&id.to_string())),
        "{err}"
    );
    drop(tx);

    let mut replaced = bare.clone();
    replaced.validation_status = Some(VersionValidation::Failed);
    replaced.sharpe_ratio = Some(-0.3);
    replaced.is_active = true;
    let mut tx = rows::begin(&pool).await.unwrap();
    rows::upsert_version(&mut tx, &replaced).await.unwrap();
    rows::commit(tx).await.unwrap();
    assert_eq!(
        rows::read_versions(&pool, id).await.unwrap(),
        vec![replaced, full]
    );

    // A version of a strategy that is not there.
    let mut tx = rows::begin(&pool).await.unwrap();
    let ghost = StrategyId::new_random();
    let err = rows::insert_version(&mut tx, &full_version(ghost, "1.0.0"))
        .await
        .unwrap_err();
    assert!(matches!(err, RowError::NotFound(g) if g == ghost), "{err}");
}

/// Parameter changes read back whole, oldest first, all or one parameter's.
#[tokio::test]
async fn parameter_changes_round_trip() {
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    let id = inserted_strategy(&pool, "tuned").await;
    let first = ParameterChange {
        strategy_id: id,
        parameter_name: "period".into(),
        old_value: json!(14),
        new_value: json!(21),
        change_reason: "slower".into(),
        changed_by: ChangedBy::Manual,
        client_uid: Some(4_294_967_294),
        changed_at: at(0),
        version_id: Some("1.0.0".into()),
        applied_from: None,
        applied_to: None,
        before_sharpe: None,
        after_sharpe: None,
        improvement_pct: None,
        is_ab_test: false,
        ab_test_group: None,
    };
    let second = ParameterChange {
        parameter_name: "mode".into(),
        old_value: Value::Null,
        new_value: json!({"kind": "fast", "levels": [1, 2]}),
        changed_by: ChangedBy::MemLearning,
        client_uid: None,
        changed_at: at(10),
        version_id: None,
        applied_from: Some(at(10)),
        applied_to: Some(at(20)),
        before_sharpe: Some(0.8),
        after_sharpe: Some(1.1),
        improvement_pct: Some(37.5),
        is_ab_test: true,
        ab_test_group: Some("B".into()),
        ..first.clone()
    };
    let third = ParameterChange {
        new_value: json!(28),
        old_value: json!(21),
        changed_by: ChangedBy::Optimisation,
        changed_at: at(30),
        ..first.clone()
    };
    let mut tx = rows::begin(&pool).await.unwrap();
    for c in [&first, &second, &third] {
        rows::insert_parameter_change(&mut tx, c).await.unwrap();
    }
    rows::commit(tx).await.unwrap();
    assert_eq!(
        rows::read_parameter_changes(&pool, id, None).await.unwrap(),
        vec![first.clone(), second.clone(), third.clone()]
    );
    assert_eq!(
        rows::read_parameter_changes(&pool, id, Some("period"))
            .await
            .unwrap(),
        vec![first, third]
    );
    assert!(
        rows::read_parameter_changes(&pool, id, Some("none"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        pg.psql(
            "registry",
            "SELECT parameter_value || ':' || parameter_type FROM strategy_parameters ORDER BY parameter_id"
        )
        .trim(),
        "21:integer\n{\"kind\":\"fast\",\"levels\":[1,2]}:json\n28:integer"
    );
}

/// Links are made once and removed once; `from` is the seed's child.
#[tokio::test]
async fn relationships_link_and_unlink() {
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    let a = inserted_strategy(&pool, "a").await;
    let b = inserted_strategy(&pool, "b").await;
    let derived = Relationship {
        from: a,
        to: b,
        relationship: RelationshipType::DerivedFrom,
        note: Some("forked".into()),
        similarity_score: Some(0.75),
        created_at: at(0),
    };
    let replaces = Relationship {
        from: b,
        to: a,
        relationship: RelationshipType::Replaces,
        note: None,
        similarity_score: None,
        created_at: at(5),
    };
    let mut tx = rows::begin(&pool).await.unwrap();
    assert!(rows::link(&mut tx, &derived).await.unwrap());
    assert!(!rows::link(&mut tx, &derived).await.unwrap());
    assert!(rows::link(&mut tx, &replaces).await.unwrap());
    rows::commit(tx).await.unwrap();
    assert_eq!(
        rows::read_relationships(&pool).await.unwrap(),
        vec![derived.clone(), replaces.clone()]
    );
    assert_eq!(
        pg.psql(
            "registry",
            "SELECT child_strategy_id || ' ' || relationship_type || ' ' || parent_strategy_id FROM strategy_relationships ORDER BY relationship_id LIMIT 1"
        )
        .trim(),
        format!("{a} derived_from {b}")
    );
    let mut tx = rows::begin(&pool).await.unwrap();
    assert!(
        rows::unlink(&mut tx, a, b, RelationshipType::DerivedFrom)
            .await
            .unwrap()
    );
    assert!(
        !rows::unlink(&mut tx, a, b, RelationshipType::DerivedFrom)
            .await
            .unwrap()
    );
    rows::commit(tx).await.unwrap();
    assert_eq!(
        rows::read_relationships(&pool).await.unwrap(),
        vec![replaces]
    );

    let mut tx = rows::begin(&pool).await.unwrap();
    let err = rows::link(&mut tx, &Relationship { to: a, ..derived })
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RowError::Invalid(m) if m.contains(&a.to_string())),
        "{err}"
    );
}

/// The audit's tail: newest N, oldest first, of all or of one strategy; the server kept.
#[tokio::test]
async fn the_audit_tail() {
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    let a = StrategyId::new_random();
    let b = StrategyId::new_random();
    let entries: Vec<AuditEntry> = (0..6)
        .map(|i| AuditEntry {
            at: at(i),
            uid: (i % 2 == 0).then_some(1000 + i as u32),
            client: (i == 1).then(|| "memctl".to_string()),
            action: format!("action {i}"),
            strategy_id: match i {
                0 | 2 | 4 => Some(a),
                5 => None,
                _ => Some(b),
            },
            changes: match i {
                3 => Value::Null,
                _ => json!({"i": i, "patch": [{"op": "replace"}]}),
            },
            // Read back with the server that wrote it.
            server: Some("host-a".into()),
        })
        .collect();
    let mut tx = rows::begin(&pool).await.unwrap();
    for e in &entries {
        rows::insert_audit(&mut tx, "host-a", e).await.unwrap();
    }
    rows::commit(tx).await.unwrap();
    assert_eq!(rows::audit_tail(&pool, None, 100).await.unwrap(), entries);
    assert_eq!(
        rows::audit_tail(&pool, None, 2).await.unwrap(),
        entries[4..]
    );
    assert_eq!(
        rows::audit_tail(&pool, Some(a), 2).await.unwrap(),
        vec![entries[2].clone(), entries[4].clone()]
    );
    assert_eq!(
        rows::audit_tail(&pool, Some(b), 10).await.unwrap(),
        vec![entries[1].clone(), entries[3].clone()]
    );
    assert_eq!(
        pg.psql("registry", "SELECT DISTINCT server FROM registry_audit")
            .trim(),
        "host-a"
    );
}

/// Trades read back with every column; duplicates (across batches and within one) are
/// named and not inserted; a bad trade is named.
#[tokio::test]
async fn trades_round_trip_and_duplicates_stay_out() {
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    let id = inserted_strategy(&pool, "trader").await;
    let mut random = RandomTrades::new(7);
    let mut full = random.trade("t-1".into(), 1);
    full.version_id = Some("1.2.0".into());
    full.duration_seconds = Some(1234);
    full.max_adverse_excursion = Some(-0.02);
    full.max_favorable_excursion = Some(0.03);
    full.stop_loss = Some(40_000.0);
    full.take_profit = Some(50_000.0);
    full.mem_reasoning = Some("pattern held".into());
    full.volume_ratio = Some(1.7);
    full.learned_pattern = Some("rsi_divergence_v2".into());
    full.mem_enhanced = true;
    full.mem_confidence_boost = Some(0.1);
    let bare = closed_trade("t-2").returning(-0.01).build();
    let now = at(0);
    let mut tx = rows::begin(&pool).await.unwrap();
    let first = trades::insert_trades(&mut tx, id, "host-a", &[full.clone(), bare.clone()], now)
        .await
        .unwrap();
    rows::commit(tx).await.unwrap();
    assert_eq!(first.duplicates, Vec::<String>::new());
    assert_eq!(
        first
            .inserted
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>(),
        ["t-1", "t-2"]
    );

    let third = closed_trade("t-3").build();
    let mut tx = rows::begin(&pool).await.unwrap();
    let second = trades::insert_trades(
        &mut tx,
        id,
        "host-b",
        &[bare.clone(), third.clone(), third.clone()],
        now,
    )
    .await
    .unwrap();
    rows::commit(tx).await.unwrap();
    assert_eq!(second.duplicates, ["t-2", "t-3"]);
    assert_eq!(second.inserted.len(), 1);
    assert_eq!(second.inserted[0].0, "t-3");

    let back = trades::read_trades(&pool, id, 0).await.unwrap();
    // As the file log: is_win and the duration are filled in when absent.
    let mut bare_back = bare.clone();
    bare_back.is_win = Some(false);
    bare_back.duration_seconds = Some(3600);
    let mut third_back = third.clone();
    third_back.is_win = Some(true);
    third_back.duration_seconds = Some(3600);
    assert_eq!(
        back.iter().map(|s| s.trade.clone()).collect::<Vec<_>>(),
        vec![full, bare_back, third_back.clone()]
    );
    let after = trades::read_trades(&pool, id, first.inserted[1].1)
        .await
        .unwrap();
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].trade, third_back);
    assert_eq!(after[0].performance_id, second.inserted[0].1);
    // A page located by row ids, in the order asked; a row not there is left out.
    let page = trades::read_trades_at(
        &pool,
        id,
        &[back[2].performance_id, back[0].performance_id, 999_999],
    )
    .await
    .unwrap();
    assert_eq!(page, vec![back[2].clone(), back[0].clone()]);
    assert!(
        trades::read_trades_at(&pool, StrategyId::new_random(), &[back[0].performance_id])
            .await
            .unwrap()
            .is_empty()
    );
    // What a log loads on first use: the points and ids, as the file log reduces them.
    let points = trades::read_trade_points(&pool, id, 0).await.unwrap();
    assert_eq!(points.len(), 3);
    for (p, s) in points.iter().zip(&back) {
        assert_eq!(
            (p.performance_id, &p.trade_id),
            (s.performance_id, &s.trade.trade_id)
        );
        assert_eq!(
            p.point,
            crate::registry::metrics::TradePoint {
                entry_ms: s.trade.entry_time.timestamp_millis(),
                exit_ms: s.trade.exit_time.timestamp_millis(),
                pnl: s.trade.pnl,
                pnl_pct: s.trade.pnl_pct,
                is_win: s.trade.is_win.unwrap(),
                mem_enhanced: s.trade.mem_enhanced,
            }
        );
    }
    assert_eq!(
        trades::read_trade_points(&pool, id, back[1].performance_id)
            .await
            .unwrap(),
        points[2..]
    );
    assert_eq!(
        pg.psql(
            "registry",
            "SELECT string_agg(recorded_by, ',' ORDER BY performance_id) FROM strategy_performance"
        )
        .trim(),
        "host-a,host-a,host-b"
    );

    // A trade that exits before it enters is named; nothing of its batch is stored.
    let mut backwards = closed_trade("t-4").build();
    backwards.exit_time = backwards.entry_time - Duration::seconds(1);
    let mut tx = rows::begin(&pool).await.unwrap();
    let err = trades::insert_trades(
        &mut tx,
        id,
        "host-a",
        &[closed_trade("t-5").build(), backwards],
        now,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, RowError::Invalid(m) if m.contains("\"t-4\"")),
        "{err}"
    );
    drop(tx);
    assert_eq!(trades::read_trades(&pool, id, 0).await.unwrap().len(), 3);
    assert_eq!(
        trades::insert_trades(&mut rows::begin(&pool).await.unwrap(), id, "x", &[], now)
            .await
            .unwrap(),
        Inserted::default()
    );
}

/// COPY gives what UNNEST gives: the same trades back, the same duplicates, text with
/// COPY's separators and an empty string (not NULL) intact, two batches in one commit.
#[tokio::test]
async fn copy_and_unnest_record_the_same() {
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    let by_unnest = inserted_strategy(&pool, "unnest").await;
    let by_copy = inserted_strategy(&pool, "copy").await;
    let mut random = RandomTrades::new(3);
    let mut batch: Vec<_> = (0..500u64)
        .map(|n| random.trade(format!("r-{n}"), n))
        .collect();
    let mut odd = closed_trade("odd\tid\\with\nseparators").build();
    odd.broker = Some(String::new());
    odd.mem_reasoning = Some("line one\r\nline two \\N not null".into());
    odd.version_id = Some("1.0.0".into());
    odd.volume_ratio = Some(1e-7);
    odd.stop_loss = Some(1e300);
    batch.push(odd);
    batch.push(batch[3].clone());
    let again = vec![batch[0].clone(), closed_trade("late").build()];
    let now = Utc::now();
    let mut answers = Vec::new();
    for (id, copy) in [(by_unnest, false), (by_copy, true)] {
        let mut tx = rows::begin(&pool).await.unwrap();
        let mut got = Vec::new();
        for b in [&batch, &again] {
            let answer = if copy {
                trades::insert_trades_copy(&mut tx, id, "host", b, now).await
            } else {
                trades::insert_trades(&mut tx, id, "host", b, now).await
            }
            .unwrap();
            got.push((
                answer
                    .inserted
                    .into_iter()
                    .map(|(t, _)| t)
                    .collect::<Vec<_>>(),
                answer.duplicates,
            ));
        }
        rows::commit(tx).await.unwrap();
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][0].1, [batch[3].trade_id.clone()]);
    assert_eq!(answers[0][1].1, [batch[0].trade_id.clone()]);
    let read = |id| {
        let pool = pool.clone();
        async move {
            trades::read_trades(&pool, id, 0)
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.trade)
                .collect::<Vec<_>>()
        }
    };
    let (a, b) = (read(by_unnest).await, read(by_copy).await);
    assert_eq!(a.len(), 502);
    assert_eq!(a, b);
    assert_eq!(a[500].broker.as_deref(), Some(""));
    assert_eq!(a[500].trade_id, "odd\tid\\with\nseparators");
    // Durations are filled in from the times, as the file log does.
    let mut expected = batch[..500].to_vec();
    for t in &mut expected {
        t.duration_seconds = Some((t.exit_time - t.entry_time).num_seconds());
    }
    assert!(
        a[..500] == expected[..],
        "the random trades differ once stored"
    );
}

/// Whether the listener hears nothing for 300 ms.
async fn quiet(listener: &mut PgListener) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(300), listener.recv())
        .await
        .is_err()
}

/// A notification reaches a listener only when its transaction commits.
#[tokio::test]
async fn a_notification_is_heard_only_after_commit() {
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    let mut listener = PgListener::connect_with(&pool).await.unwrap();
    listener.listen(rows::CHANNEL).await.unwrap();
    let mut tx = rows::begin(&pool).await.unwrap();
    rows::notify(&mut tx, r#"{"k":"rolled back"}"#)
        .await
        .unwrap();
    drop(tx);
    let mut tx = rows::begin(&pool).await.unwrap();
    let payload = r#"{"o":"a","k":"strategy","rev":2}"#;
    rows::notify(&mut tx, payload).await.unwrap();
    assert!(quiet(&mut listener).await, "heard before the commit");
    rows::commit(tx).await.unwrap();
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("heard nothing after the commit")
        .unwrap();
    assert_eq!(heard.channel(), rows::CHANNEL);
    assert_eq!(heard.payload(), payload);
    assert!(quiet(&mut listener).await, "the rolled back one was heard");

    let mut tx = rows::begin(&pool).await.unwrap();
    let err = rows::notify(&mut tx, &"x".repeat(8000)).await.unwrap_err();
    assert!(
        matches!(&err, RowError::Invalid(m) if m.contains("8000 bytes")),
        "{err}"
    );
}

/// Measures (prints) recording 100,000 trades in batches of 2,000, one commit each, on a
/// cluster that syncs every commit to disk (PostgreSQL's defaults, not the tests' fsync
/// off): durable as a trader's database is.
#[tokio::test]
async fn measure_recording_100k_trades() {
    let Some(pg) = cluster() else { return };
    let pg = pg.durable();
    let pool = pool(&pg).await;
    let id = inserted_strategy(&pool, "load").await;
    let mut random = RandomTrades::new(42);
    let all: Vec<_> = (0..100_000u64)
        .map(|n| random.trade(format!("load-{n}"), n))
        .collect();
    let now = Utc::now();
    let started = Instant::now();
    let mut inserted = 0;
    for batch in all.chunks(2_000) {
        let mut tx = rows::begin(&pool).await.unwrap();
        inserted += trades::insert_trades(&mut tx, id, "bench", batch, now)
            .await
            .unwrap()
            .inserted
            .len();
        rows::commit(tx).await.unwrap();
    }
    let took = started.elapsed();
    assert_eq!(inserted, 100_000);
    let by_copy = inserted_strategy(&pool, "load by copy").await;
    let started = Instant::now();
    let mut copied = 0;
    for batch in all.chunks(2_000) {
        let mut tx = rows::begin(&pool).await.unwrap();
        copied += trades::insert_trades_copy(&mut tx, by_copy, "bench", batch, now)
            .await
            .unwrap()
            .inserted
            .len();
        rows::commit(tx).await.unwrap();
    }
    let took_copy = started.elapsed();
    assert_eq!(copied, 100_000);
    let started = Instant::now();
    let back = trades::read_trades(&pool, id, 0).await.unwrap();
    let read = started.elapsed();
    assert_eq!(back.len(), 100_000);
    let started = Instant::now();
    let points = trades::read_trade_points(&pool, id, 0).await.unwrap();
    let read_points = started.elapsed();
    assert_eq!(points.len(), 100_000);
    println!(
        "PG trades: 100,000 recorded by COPY in batches of 2,000 in {:.2} s = {:.0} trades/s",
        took_copy.as_secs_f64(),
        100_000.0 / took_copy.as_secs_f64()
    );
    println!(
        "PG trades: 100,000 recorded by UNNEST in batches of 2,000 in {:.2} s = {:.0} trades/s; read back whole in {:.2} s = {:.0} trades/s, as points in {:.2} s = {:.0} trades/s (fsync on: every commit synced)",
        took.as_secs_f64(),
        100_000.0 / took.as_secs_f64(),
        read.as_secs_f64(),
        100_000.0 / read.as_secs_f64(),
        read_points.as_secs_f64(),
        100_000.0 / read_points.as_secs_f64()
    );
}

/// Measures (prints) loading the index of 100,000 strategies as a start does
/// (`PgStore::load`: every row's index entry over the socket, parsed on rayon, and the
/// relationships), beside fetching the whole documents, which a start read before
/// migration 0003. Ignored: about 40 s in a debug build
/// (`cargo test --release -p memd --lib measure_loading -- --ignored --nocapture`).
#[tokio::test]
#[ignore = "a measure: run with --release --ignored --nocapture"]
async fn measure_loading_100k_strategies() {
    use crate::registry::backend::Store;
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    // The largest built-in document, copied 100,000 times with its own id and name.
    let template = built_ins()
        .into_iter()
        .max_by_key(|d| serde_json::to_vec(d).unwrap().len())
        .unwrap();
    let mut tx = rows::begin(&pool).await.unwrap();
    rows::insert_strategy(&mut tx, &template).await.unwrap();
    rows::commit(tx).await.unwrap();
    let rename = |column: &str| {
        format!(
            "jsonb_set(jsonb_set(t.{column}, '{{strategy,id}}', to_jsonb(g.u::text)), '{{strategy,name}}', to_jsonb('gen_' || g.i))"
        )
    };
    pg.psql(
        "registry",
        &format!(
            "INSERT INTO strategies (strategy_id, strategy_name, display_name, status, current_version, \
             created_at, updated_at, document, index_entry) \
             SELECT g.u, 'gen_' || g.i, 'Gen', 'active', '1.0.0', now(), now(), {}, {}::text \
             FROM (SELECT gen_random_uuid() AS u, i FROM generate_series(1, 99999) i) g, \
             (SELECT document, index_entry::jsonb AS entry FROM strategies WHERE strategy_id = '{}') t",
            rename("document"),
            rename("entry"),
            template.strategy.id
        ),
    );
    pg.psql("registry", "VACUUM ANALYZE strategies");
    let store = super::PgStore::connect(
        &pg.url_without_password("registry"),
        Some(PASSWORD),
        "measure",
    )
    .unwrap();
    let mut loads = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let loaded = store.load().unwrap();
        loads.push(started.elapsed().as_secs_f64());
        assert_eq!((loaded.records.len(), loaded.issues.len()), (100_000, 0));
    }
    let entries: usize = rows::load_index(&pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.entry.len())
        .sum();
    // What a start read before: the whole documents, as text.
    let started = Instant::now();
    let documents: Vec<(uuid::Uuid, i64, String)> = sqlx::query_as(
        "SELECT strategy_id, revision, document::text FROM strategies ORDER BY strategy_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let fetched_documents = started.elapsed();
    let bytes: usize = documents.iter().map(|d| d.2.len()).sum();
    println!(
        "PG index: 100,000 strategies: PgStore::load (index entries, {:.0} MB, {} B each, parsed into the index) in {} s; \
         the whole documents ({:.0} MB, {} B each) fetched alone in {:.2} s",
        entries as f64 / 1e6,
        entries / 100_000,
        loads
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(" / "),
        bytes as f64 / 1e6,
        bytes / 100_000,
        fetched_documents.as_secs_f64()
    );
}

/// A strategy's trade log on rows (what `strategies.trades.record` appends to): of a
/// trade id a batch repeats, the first copy is recorded (it was none, though reported
/// recorded), and every trade kept is its own point and its own row.
#[tokio::test]
async fn a_trade_log_on_rows_keeps_the_first_of_an_id_a_batch_repeats() {
    let Some(pg) = cluster() else { return };
    let pool = pool(&pg).await;
    let id = inserted_strategy(&pool, "repeats").await;
    let store = super::PgStore::connect(
        &pg.url_without_password("registry"),
        Some(PASSWORD),
        "repeats",
    )
    .unwrap();
    let logs = crate::registry::trades::TradeStore::on_rows(std::sync::Arc::new(store));
    let trade = |trade_id: &str, pnl: f64| closed_trade(trade_id).pnl(pnl).build();
    let pnls = |log: &crate::registry::trades::TradeLog| {
        log.points.iter().map(|p| p.pnl).collect::<Vec<_>>()
    };
    {
        let log = logs.log(id).unwrap();
        let mut log = log.lock().unwrap();
        let duplicates = log
            .append(&[trade("x", 1.0), trade("y", 2.0), trade("x", 1.0)], at(0))
            .unwrap();
        assert_eq!(duplicates, ["x"]);
        assert_eq!(pnls(&log), [1.0, 2.0]);
        // One there already, and a new one twice.
        let duplicates = log
            .append(&[trade("y", 2.0), trade("z", 3.0), trade("z", 3.0)], at(1))
            .unwrap();
        assert_eq!(duplicates, ["y", "z"]);
        assert_eq!(pnls(&log), [1.0, 2.0, 3.0]);
    }
    assert_eq!(
        pg.psql(
            "registry",
            &format!(
                "SELECT string_agg(trade_id || '=' || pnl, ',' ORDER BY performance_id) \
                 FROM strategy_performance WHERE strategy_id = '{id}'"
            )
        )
        .trim(),
        "x=1,y=2,z=3"
    );
    // Loaded again from the rows: the same points.
    logs.forget(id);
    assert_eq!(
        pnls(&logs.log(id).unwrap().lock().unwrap()),
        [1.0, 2.0, 3.0]
    );
}
