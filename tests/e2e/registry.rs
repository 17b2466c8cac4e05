//! The registry through the real daemon: every method, validation, reload of hand-edited
//! files, import of both seed shapes, the audit log. Each test runs on a registry on files
//! and on one in PostgreSQL (`on_both_backends!`), but the hand edits, which are about
//! files.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use mem_e2e::postgres::Postgres;
use mem_e2e::seed::{AGGRESSIVE_RSI, CONSERVATIVE_RSI, MACD_HUNTER, sid};
use mem_e2e::trades::closed_trade;
use mem_e2e::{Daemon, describe};
use mem_protocol::events::RegistryChange;
use mem_protocol::methods::{ListStrategiesParams, SortKey, method};
use mem_protocol::registry::*;
use mem_protocol::strategy::{StrategyId, StrategyStatus};
use mem_protocol::{Access, Client, ClientError, ErrorCode, Event, Topic};
use serde_json::{Value, json};
use std::time::Duration;

/// A test run on a registry on files (`NAME::on_files`) and on one in PostgreSQL
/// (`NAME::on_postgres`, a cluster of its own): one body, the backend is the switch. The
/// function takes the daemon (`&Daemon`), or the daemon and its registry (`&OnBackend`,
/// `&mut OnBackend` to restart it).
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn on_files() {
                super::$name(&mut super::OnBackend::files()).await
            }

            #[tokio::test]
            async fn on_postgres() {
                let Some(mut on) = super::OnBackend::postgres() else {
                    return;
                };
                super::$name(&mut on).await
            }
        }
    };
}

/// A memd and where its registry is: files in its data directory, or a PostgreSQL
/// cluster of the test's own (`pg`). What the tests check of what is stored goes through
/// here, so a test body reads the same on both.
struct OnBackend {
    /// Dropped (killed) before the cluster it uses.
    daemon: Daemon,
    pg: Option<Postgres>,
}

impl std::ops::Deref for OnBackend {
    type Target = Daemon;

    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl OnBackend {
    fn files() -> OnBackend {
        OnBackend {
            daemon: Daemon::start(),
            pg: None,
        }
    }

    /// None when PostgreSQL is not installed (and not required).
    fn postgres() -> Option<OnBackend> {
        let pg = mem_e2e::postgres::registry_cluster()?;
        Some(OnBackend {
            daemon: crate::registry_postgres::daemon_on(&pg, "e2e"),
            pg: Some(pg),
        })
    }

    /// Kills memd (SIGKILL, as a crash) and starts one again on the same registry: on
    /// files, on the same data directory; in PostgreSQL, a new memd (a new data
    /// directory) on the same database, so what it shows came from there.
    fn crash_and_restart(&mut self) {
        match &self.pg {
            None => self.daemon.crash_and_restart(),
            Some(pg) => {
                self.daemon.stop_with(nix::sys::signal::Signal::SIGKILL);
                self.daemon = crate::registry_postgres::daemon_on(pg, "e2e");
            }
        }
    }

    /// A number the database answers (`SELECT count(*) ...`).
    fn count(pg: &Postgres, sql: &str) -> usize {
        let said = pg.psql("registry", sql);
        said.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{sql}: {said}"))
    }

    /// The strategies stored: metadata files, or rows of `strategies`.
    fn stored_strategies(&self) -> usize {
        match &self.pg {
            None => std::fs::read_dir(self.data_dir.join("strategy_registry/metadata"))
                .unwrap()
                .count(),
            Some(pg) => Self::count(pg, "SELECT count(*) FROM strategies"),
        }
    }

    /// The audit entries stored: lines of `audit.jsonl`, or rows of `registry_audit`.
    fn stored_audit_entries(&self) -> usize {
        match &self.pg {
            None => std::fs::read_to_string(self.data_dir.join("strategy_registry/audit.jsonl"))
                .unwrap_or_default()
                .lines()
                .count(),
            Some(pg) => Self::count(pg, "SELECT count(*) FROM registry_audit"),
        }
    }

    /// The trades of `id` stored: lines of its trade log, or its rows of
    /// `strategy_performance`.
    fn stored_trades(&self, id: StrategyId) -> usize {
        match &self.pg {
            None => std::fs::read_to_string(
                self.data_dir
                    .join(format!("strategy_registry/performance/{id}.jsonl")),
            )
            .unwrap_or_default()
            .lines()
            .count(),
            Some(pg) => Self::count(
                pg,
                &format!("SELECT count(*) FROM strategy_performance WHERE strategy_id = '{id}'"),
            ),
        }
    }

    /// The metadata document of `id` as stored: its file, or its `document` column.
    fn stored_document(&self, id: StrategyId) -> Value {
        let text = match &self.pg {
            None => std::fs::read_to_string(
                self.data_dir
                    .join(format!("strategy_registry/metadata/{id}.json")),
            )
            .unwrap(),
            Some(pg) => pg.psql(
                "registry",
                &format!("SELECT document FROM strategies WHERE strategy_id = '{id}'"),
            ),
        };
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

pub(crate) fn new_strategy(name: &str) -> Value {
    json!({
        "schema_version": "1.0.0",
        "strategy": {
            "name": name,
            "display_name": format!("Test {name}"),
            "description": "A strategy made by the end-to-end tests",
            "classification": {"category": "momentum", "sub_category": "breakout", "tags": ["test", "breakout"], "asset_classes": ["crypto"]},
            "implementation": {"language": "python", "class_name": "Breakout"},
            "parameters": {
                "lookback": {"value": 20, "type": "integer", "min": 5, "max": 200, "description": "candles"},
                "threshold": {"value": 0.02, "type": "float", "min": 0.0, "max": 0.5},
                "mode": "fast"
            },
            "performance": {"backtest": {"sharpe_ratio": 0.9, "win_rate": 0.51, "num_trades": 40}},
            "future_section": {"kept": [1, 2, 3]}
        }
    })
}

pub(crate) async fn register(client: &Client, name: &str) -> StrategyId {
    let detail = client
        .call::<method::StrategiesRegister>(RegisterParams {
            strategy: new_strategy(name),
            status: None,
        })
        .await
        .unwrap();
    detail.summary.id
}

fn code(err: &ClientError) -> Option<ErrorCode> {
    err.code()
}

/// A trade held two hours, every field the registry keeps filled (they must all come back).
fn trade(id: &str, exit: DateTime<Utc>, pnl: f64, pnl_pct: f64, mem: bool) -> TradeRecord {
    let mut trade = closed_trade(id)
        .closed_at(exit)
        .held(ChronoDuration::hours(2))
        .returning(pnl_pct)
        .pnl(pnl);
    if mem {
        trade = trade.mem_enhanced(0.05);
    }
    TradeRecord {
        confidence: Some(0.8),
        market_regime: Some("bullish".into()),
        volatility: Some(0.02),
        broker: Some("binance".into()),
        slippage: Some(0.0),
        commission: Some(0.1),
        ..trade.build()
    }
}

on_both_backends!(register_update_status_tags_and_the_audit_log);
async fn register_update_status_tags_and_the_audit_log(daemon: &OnBackend) {
    let client = daemon.client().await;
    // Kept: a dropped client closes its connection.
    let subscriber = daemon.client().await;
    let (_, mut events) = subscriber.subscribe(vec![Topic::Registry]).await.unwrap();

    let id = register(&client, "breakout_one").await;
    let added = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(added.event, Event::RegistryChanged(ref c) if c.change == RegistryChange::Added && c.strategy_id == id),
        "{added:?}"
    );
    let detail = client
        .call::<method::StrategiesGet>(mem_protocol::methods::GetStrategyParams { id })
        .await
        .unwrap();
    assert_eq!(
        detail.summary.status,
        StrategyStatus::Experimental,
        "experimental unless given"
    );
    // Stored beside the 11 built-in ones (a file each, or a row each).
    assert_eq!(daemon.stored_strategies(), 12);
    let listed = client
        .call::<method::StrategiesList>(ListStrategiesParams::default())
        .await
        .unwrap();
    assert_eq!(listed.total, 12);

    // A merge patch; members memd does not know survive the rewrite.
    let updated = client
        .call::<method::StrategiesUpdate>(UpdateParams {
            id,
            patch: json!({"display_name": "Breakout One", "classification": {"keywords": ["donchian"]}}),
            reason: Some("clearer name".into()),
        })
        .await
        .unwrap();
    assert_eq!(updated.summary.display_name, "Breakout One");
    // As stored, and as a client reads it back.
    let read = client
        .call_value("strategies.get", json!({ "id": id }))
        .await
        .unwrap()["metadata"]
        .clone();
    for document in [daemon.stored_document(id), read] {
        assert_eq!(
            document["strategy"]["future_section"],
            json!({"kept": [1, 2, 3]}),
            "{document}"
        );
        assert_eq!(
            document["strategy"]["classification"]["tags"],
            json!(["test", "breakout"]),
            "untouched members stay"
        );
    }
    let found = client
        .call::<method::StrategiesList>(ListStrategiesParams {
            query: Some("donchian".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(found.total, 1, "keywords are searched");

    let err = client
        .call::<method::StrategiesUpdate>(UpdateParams {
            id,
            patch: json!({"status": "active"}),
            reason: None,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("strategies.status"), "{err}");
    let err = client
        .call::<method::StrategiesUpdate>(UpdateParams {
            id,
            patch: json!({"classification": {"category": "Bad Category!"}}),
            reason: None,
        })
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("strategy.classification.category"),
        "{err}"
    );

    let active = client
        .call::<method::StrategiesSetStatus>(SetStatusParams {
            id,
            status: StrategyStatus::Active,
            reason: Some("ready".into()),
        })
        .await
        .unwrap();
    assert_eq!(active.summary.status, StrategyStatus::Active);
    let err = client
        .call::<method::StrategiesSetStatus>(SetStatusParams {
            id,
            status: StrategyStatus::Deprecated,
            reason: None,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("strategies.deprecate"), "{err}");

    let tagged = client
        .call::<method::StrategiesTags>(TagsParams {
            id,
            add: vec!["trend".into(), "TEST".into()],
            remove: vec!["breakout".into()],
        })
        .await
        .unwrap();
    assert_eq!(tagged.summary.tags, ["test", "trend"]);

    let log = client
        .call::<method::Audit>(AuditParams {
            id: Some(id),
            limit: None,
        })
        .await
        .unwrap();
    let actions: Vec<&str> = log.entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["register", "update", "status", "tags"]);
    let me = nix::unistd::Uid::effective().as_raw();
    assert!(
        log.entries.iter().all(|e| e.uid == Some(me)),
        "the client's uid is recorded"
    );
    assert_eq!(
        log.entries[1].changes["patch"]["display_name"], "Breakout One",
        "what changed is recorded"
    );

    // A name already taken.
    let err = client
        .call::<method::StrategiesRegister>(RegisterParams {
            strategy: new_strategy("breakout_one"),
            status: None,
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::Conflict), "{err}");
}

on_both_backends!(bad_input_is_refused_naming_the_field_and_nothing_is_written);
async fn bad_input_is_refused_naming_the_field_and_nothing_is_written(daemon: &OnBackend) {
    let client = daemon.client().await;
    let id = register(&client, "victim").await;
    let stored = (
        daemon.stored_strategies(),
        daemon.stored_audit_entries(),
        daemon.stored_document(id),
    );
    // What a client reads of the registry: every strategy, the audit, the victim.
    let seen = async || {
        let ask =
            async |method: &str, params: Value| client.call_value(method, params).await.unwrap();
        json!({
            "list": ask("strategies.list", json!({"limit": 1000})).await,
            "audit": ask("strategies.audit", json!({"limit": 100_000})).await,
            "victim": ask("strategies.get", json!({ "id": id })).await,
            "trades": ask("strategies.trades.list", json!({ "id": id })).await,
            "parameters": ask("strategies.parameters.history", json!({ "id": id })).await,
        })
    };
    let before = seen().await;

    let mut long_description = new_strategy("too_long");
    long_description["strategy"]["description"] = json!("x".repeat(20_000));
    let mut negative_trades = new_strategy("negative");
    negative_trades["strategy"]["performance"]["backtest"]["num_trades"] = json!(-5);
    let mut bad_win_rate = new_strategy("bad_win_rate");
    bad_win_rate["strategy"]["performance"]["backtest"]["win_rate"] = json!(1.7);
    let mut bad_param = new_strategy("bad_param");
    bad_param["strategy"]["parameters"]["lookback"]["value"] = json!(1000);
    let mut path_name = new_strategy("x");
    path_name["strategy"]["name"] = json!("../../etc/passwd");
    let mut huge_number = new_strategy("huge");
    huge_number["strategy"]["performance"]["backtest"]["sharpe_ratio"] = json!(1e300);
    let cases = [
        (long_description, "strategy.description"),
        (negative_trades, "strategy.performance.backtest.num_trades"),
        (bad_win_rate, "strategy.performance.backtest.win_rate"),
        (bad_param, "strategy.parameters.lookback.value"),
        (path_name, "strategy.name"),
        (huge_number, "strategy.performance.backtest.sharpe_ratio"),
        (json!("a string"), "strategy"),
        (
            json!({"strategy": {"name": "no_category"}}),
            "strategy.classification.category",
        ),
    ];
    for (document, field) in cases {
        let err = client
            .call::<method::StrategiesRegister>(RegisterParams {
                strategy: document,
                status: None,
            })
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(ErrorCode::InvalidParams), "{field}: {err}");
        assert!(
            err.to_string().contains(field),
            "{field} not named in: {err}"
        );
    }

    // Trades: an exit before its entry, NaN-free but absurd numbers, a path-like id.
    let now = Utc::now();
    let mut backwards = trade("t-back", now, 1.0, 0.01, false);
    backwards.entry_time = now + ChronoDuration::hours(1);
    let mut zero_price = trade("t-zero", now, 1.0, 0.01, false);
    zero_price.entry_price = 0.0;
    for (bad, needle) in [(backwards, "exits"), (zero_price, "entryPrice")] {
        let batch = vec![trade("t-good", now, 1.0, 0.01, false), bad];
        let err = client
            .call::<method::TradesRecord>(RecordTradesParams { id, trades: batch })
            .await
            .unwrap_err();
        assert_eq!(code(&err), Some(ErrorCode::InvalidParams), "{err}");
        assert!(
            err.to_string().contains("trades[1]") && err.to_string().contains(needle),
            "{err}"
        );
    }
    let raw = client
        .call_value(
            "strategies.trades.record",
            json!({"id": "../../../tmp/x", "trades": []}),
        )
        .await
        .unwrap_err();
    assert!(raw.to_string().contains("UUID"), "{raw}");
    let raw = client
        .call_value(
            "strategies.parameters.update",
            json!({"id": id, "name": "lookback", "value": "twenty", "reason": "x"}),
        )
        .await
        .unwrap_err();
    assert!(raw.to_string().contains("integer"), "{raw}");
    let raw = client
        .call_value(
            "strategies.mem.learned_patterns",
            json!({"id": id, "count": -1}),
        )
        .await
        .unwrap_err();
    assert!(raw.to_string().contains("count"), "{raw}");

    // Nothing was stored (no file or row written, no mutation audited, no trade kept),
    // and a client reads the registry as before.
    assert_eq!(
        (
            daemon.stored_strategies(),
            daemon.stored_audit_entries(),
            daemon.stored_document(id)
        ),
        stored,
        "no strategy stored, no mutation audited, the victim's document as it was"
    );
    assert_eq!(daemon.stored_trades(id), 0, "no trade stored");
    assert_eq!(seen().await, before);
}

on_both_backends!(list_filters_sorts_and_pages);
async fn list_filters_sorts_and_pages(daemon: &Daemon) {
    let client = daemon.client().await;
    let names = |p: ListStrategiesParams| {
        let client = &client;
        async move {
            client
                .call::<method::StrategiesList>(p)
                .await
                .unwrap()
                .strategies
                .into_iter()
                .map(|s| s.display_name.clone())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        names(ListStrategiesParams {
            sort: Some(SortKey::Sharpe),
            limit: Some(2),
            ..Default::default()
        })
        .await,
        ["Freqtrade MACD Hunter", "Freqtrade Aggressive RSI"]
    );
    assert_eq!(
        names(ListStrategiesParams {
            language: Some("freqtrade".into()),
            min_win_rate: Some(0.6),
            ..Default::default()
        })
        .await,
        ["Freqtrade Aggressive RSI", "Freqtrade Conservative RSI"]
    );
    assert_eq!(
        names(ListStrategiesParams {
            origin: Some(mem_protocol::strategy::Origin::Research),
            sub_category: Some("fx_carry".into()),
            ..Default::default()
        })
        .await,
        ["Currency Carry Trade"]
    );
    assert_eq!(
        names(ListStrategiesParams {
            tags: vec!["rsi".into(), "scalping".into()],
            ..Default::default()
        })
        .await,
        ["Freqtrade Aggressive RSI"]
    );
    assert_eq!(
        names(ListStrategiesParams {
            tags_any: vec!["vwap".into(), "mfi".into()],
            ..Default::default()
        })
        .await,
        ["MFI", "VWAP"]
    );
    assert_eq!(
        names(ListStrategiesParams {
            asset_class: Some("equities".into()),
            ..Default::default()
        })
        .await,
        [
            "Statistical Arbitrage Pairs Trading",
            "Volatility-Managed Momentum"
        ]
    );
    assert_eq!(
        names(ListStrategiesParams {
            mem_enabled: Some(false),
            ..Default::default()
        })
        .await,
        Vec::<String>::new()
    );
    let out = daemon.memctl(&[
        "strategies",
        "list",
        "--sort",
        "win-rate",
        "--limit",
        "1",
        "--json",
    ]);
    let json: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| panic!("{}", describe(&out)));
    assert_eq!(
        json["strategies"][0]["displayName"],
        "Freqtrade Aggressive RSI"
    );
}

on_both_backends!(versions_follow_semver_and_the_strategy);
async fn versions_follow_semver_and_the_strategy(daemon: &OnBackend) {
    let client = daemon.client().await;
    let id = sid(MACD_HUNTER);
    let v = client
        .call::<method::VersionsCreate>(CreateVersionParams {
            id,
            bump: Some(VersionBump::Minor),
            version: None,
            changelog: "Faster signal line".into(),
            parameters: None,
            backtest: Some(serde_json::from_value(json!({"sharpe_ratio": 1.5})).unwrap()),
            code_snapshot: Some("class MACD_Aggressive: ...".into()),
            git_hash: Some("0123abcd".into()),
            breaking_changes: Some("macd_signal renamed".into()),
            migration_notes: Some("rename the parameter in your overrides".into()),
            default_parameters: Some(
                serde_json::from_value(json!({"macd_fast": {"value": 12, "type": "integer"}}))
                    .unwrap(),
            ),
            test_coverage: Some(81.5),
            mem_improvement_pct: Some(4.2),
        })
        .await
        .unwrap();
    assert_eq!(v.version_number, "1.1.0");
    assert_eq!(v.breaking_changes.as_deref(), Some("macd_signal renamed"));
    assert_eq!(v.test_coverage, Some(81.5));
    assert_eq!(v.default_parameters["macd_fast"]["value"], 12);
    assert_eq!(
        v.validation_status,
        Some(mem_protocol::registry::VersionValidation::Pending)
    );
    assert!(v.is_active);
    // Typed-in figures are not the version's measured ones.
    assert_eq!(v.sharpe_ratio, None);
    let refused = daemon.memctl(&[
        "strategies",
        "versions",
        "create",
        MACD_HUNTER,
        "--bump",
        "patch",
        "--changelog",
        "x",
        "--test-coverage",
        "101",
    ]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("testCoverage"),
        "{}",
        describe(&refused)
    );
    let out = daemon.memctl(&[
        "strategies",
        "versions",
        "create",
        MACD_HUNTER,
        "--bump",
        "major",
        "--changelog",
        "New exits",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let list = client
        .call::<method::VersionsList>(IdParams { id })
        .await
        .unwrap();
    assert_eq!(
        list.current_version, "2.0.0",
        "the strategy's version follows"
    );
    assert_eq!(
        list.versions
            .iter()
            .map(|v| v.version_number.as_str())
            .collect::<Vec<_>>(),
        ["1.1.0", "2.0.0"]
    );
    let one = client
        .call::<method::VersionsGet>(GetVersionParams {
            id,
            version: "1.1.0".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        one.code_snapshot.as_deref(),
        Some("class MACD_Aggressive: ...")
    );
    assert_eq!(one.parameters["macd_fast"]["value"], 12);
    assert_eq!(
        one.migration_notes.as_deref(),
        Some("rename the parameter in your overrides")
    );
    assert!(!one.is_active, "2.0.0 replaced it");
    assert!(one.deprecated_at.is_some());
    assert!(list.versions[1].is_active);

    // Approval: who and when, on the version; the table says so.
    let out = daemon.memctl(&[
        "strategies",
        "versions",
        "approve",
        MACD_HUNTER,
        "2.0.0",
        "--by",
        "risk desk",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let approved = client
        .call::<method::VersionsGet>(GetVersionParams {
            id,
            version: "2.0.0".into(),
        })
        .await
        .unwrap();
    assert_eq!(approved.approved_by.as_deref(), Some("risk desk"));
    assert!(approved.approved_at.is_some());
    let table = daemon.memctl(&["strategies", "versions", "list", MACD_HUNTER]);
    let table = String::from_utf8_lossy(&table.stdout);
    let row = table
        .lines()
        .find(|l| l.trim_start().starts_with("2.0.0"))
        .unwrap_or("");
    assert!(
        row.contains("(active)") && row.contains("risk desk") && row.contains("pending"),
        "{table}"
    );

    let explicit = |version: &str| CreateVersionParams {
        id,
        bump: None,
        version: Some(version.into()),
        changelog: "x".into(),
        parameters: None,
        backtest: None,
        code_snapshot: None,
        git_hash: None,
        breaking_changes: None,
        migration_notes: None,
        default_parameters: None,
        test_coverage: None,
        mem_improvement_pct: None,
    };
    let err = client
        .call::<method::VersionsCreate>(explicit("1.5.0"))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("not above the latest version 2.0.0"),
        "{err}"
    );
    let err = client
        .call::<method::VersionsCreate>(explicit("../../x"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("semantic version"), "{err}");
    let err = client
        .call::<method::VersionsGet>(GetVersionParams {
            id,
            version: "9.9.9".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::NotFound), "{err}");
    assert_eq!(daemon.stored_document(id)["strategy"]["version"], "2.0.0");
}

on_both_backends!(trades_metrics_comparison_and_the_live_summary);
async fn trades_metrics_comparison_and_the_live_summary(daemon: &OnBackend) {
    let client = daemon.client().await;
    let id = sid(CONSERVATIVE_RSI);
    let day =
        |d: i64| "2026-11-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap() + ChronoDuration::days(d);
    let trades = vec![
        trade("t1", day(0), 40.0, 0.04, false),
        trade("t2", day(1), -20.0, -0.02, true),
        trade("t3", day(1), 10.0, 0.01, true),
        trade("t4", day(3), 30.0, 0.03, false),
    ];
    let result = client
        .call::<method::TradesRecord>(RecordTradesParams {
            id,
            trades: trades.clone(),
        })
        .await
        .unwrap();
    assert_eq!((result.recorded, result.total_trades), (4, 4));
    // The same ids again, and a repeat inside one batch: counted once.
    let again = client
        .call::<method::TradesRecord>(RecordTradesParams {
            id,
            trades: vec![
                trades[0].clone(),
                trade("t5", day(4), 5.0, 0.005, false),
                trade("t5", day(4), 5.0, 0.005, false),
            ],
        })
        .await
        .unwrap();
    assert_eq!(again.recorded, 1);
    assert_eq!(again.duplicates, ["t1", "t5"]);
    assert_eq!(again.total_trades, 5);

    let report = client
        .call::<method::Performance>(PerformanceParams {
            id,
            from: None,
            to: None,
        })
        .await
        .unwrap();
    let all = &report.all;
    assert_eq!(all.total_trades, 5);
    assert_eq!(all.wins, 4);
    assert_eq!(all.win_rate, Some(0.8));
    assert!((all.total_pnl - 65.0).abs() < 1e-9);
    assert!(
        (all.profit_factor.unwrap() - 85.0 / 20.0).abs() < 1e-9,
        "gross profit / gross loss"
    );
    assert_eq!(all.best_trade_pnl, Some(40.0));
    assert_eq!(all.worst_trade_pnl, Some(-20.0));
    assert_eq!(all.average_duration_secs, Some(7200.0));
    assert_eq!(report.mem_enhanced.total_trades, 2);
    assert_eq!(report.not_mem_enhanced.total_trades, 3);
    assert!(report.convention.contains("365"), "{}", report.convention);
    // Daily returns: 0.04, (1-0.02)*(1+0.01)-1, 0 (a day without trades), 0.03, 0.005.
    let expected_total = 1.04 * (0.98 * 1.01) * 1.0 * 1.03 * 1.005 - 1.0;
    assert!(
        (all.total_return - expected_total).abs() < 1e-12,
        "{} vs {expected_total}",
        all.total_return
    );
    let ranged = client
        .call::<method::Performance>(PerformanceParams {
            id,
            from: Some(day(1)),
            to: Some(day(2)),
        })
        .await
        .unwrap();
    assert_eq!(ranged.all.total_trades, 2);

    let listed = client
        .call::<method::TradesList>(ListTradesParams {
            id,
            from: None,
            to: None,
            limit: Some(2),
            offset: None,
        })
        .await
        .unwrap();
    assert_eq!(listed.total, 5);
    assert_eq!(
        listed
            .trades
            .iter()
            .map(|t| t.trade_id.as_str())
            .collect::<Vec<_>>(),
        ["t5", "t4"],
        "newest exit first"
    );
    assert_eq!(
        listed.trades[1].market_regime.as_deref(),
        Some("bullish"),
        "every field comes back"
    );

    let other = sid(AGGRESSIVE_RSI);
    client
        .call::<method::TradesRecord>(RecordTradesParams {
            id: other,
            trades: vec![trade("a1", day(0), -5.0, -0.005, false)],
        })
        .await
        .unwrap();
    let comparison = client
        .call::<method::Compare>(CompareParams {
            ids: vec![id, other],
            from: None,
            to: None,
        })
        .await
        .unwrap();
    assert_eq!(
        comparison
            .reports
            .iter()
            .map(|r| r.all.total_trades)
            .collect::<Vec<_>>(),
        [5, 1]
    );

    // The lifetime summary in the stored metadata catches up within a few seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let live = &daemon.stored_document(id)["strategy"]["performance"]["live_trading"];
        if live["total_trades"] == 5 {
            assert_eq!(live["live_win_rate"], json!(0.8));
            assert_eq!(live["total_pnl"], json!(65.0));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "live summary not updated: {live}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let sorted = client
        .call::<method::StrategiesList>(ListStrategiesParams {
            sort: Some(SortKey::TotalPnl),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(sorted.strategies[0].id, id);
    // memctl shows the same numbers.
    let out = daemon.memctl(&["strategies", "performance", CONSERVATIVE_RSI]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("80.0%"),
        "{}",
        describe(&out)
    );
}

on_both_backends!(trades_survive_a_restart_and_duplicates_stay_out);
async fn trades_survive_a_restart_and_duplicates_stay_out(daemon: &mut OnBackend) {
    let id = sid(MACD_HUNTER);
    let now = Utc::now();
    {
        let client = daemon.client().await;
        let batch: Vec<_> = (0..500)
            .map(|i| {
                trade(
                    &format!("r{i}"),
                    now - ChronoDuration::minutes(i),
                    1.0,
                    0.001,
                    i % 2 == 0,
                )
            })
            .collect();
        client
            .call::<method::TradesRecord>(RecordTradesParams { id, trades: batch })
            .await
            .unwrap();
    }
    daemon.crash_and_restart();
    let client = daemon.client().await;
    let again = client
        .call::<method::TradesRecord>(RecordTradesParams {
            id,
            trades: vec![
                trade("r7", now, 1.0, 0.001, false),
                trade("new", now, 1.0, 0.001, false),
            ],
        })
        .await
        .unwrap();
    assert_eq!(
        (again.recorded, again.duplicates.len(), again.total_trades),
        (1, 1, 501)
    );
    assert_eq!(daemon.stored_trades(id), 501, "each stored once");
}

on_both_backends!(parameters_are_type_checked_and_have_a_history);
async fn parameters_are_type_checked_and_have_a_history(daemon: &OnBackend) {
    let client = daemon.client().await;
    let id = register(&client, "params").await;
    let change = client
        .call::<method::ParametersUpdate>(UpdateParameterParams {
            id,
            name: "lookback".into(),
            value: json!(30),
            reason: "slower market".into(),
            changed_by: ChangedBy::MemLearning,
            is_ab_test: false,
            ab_test_group: None,
        })
        .await
        .unwrap()
        .change;
    assert_eq!(
        (change.old_value.clone(), change.new_value.clone()),
        (json!(20), json!(30))
    );
    let out = daemon.memctl(&[
        "strategies",
        "params",
        "set",
        &id.to_string(),
        "mode",
        "slow",
        "--reason",
        "test",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let cases = [
        ("lookback", json!(2), "outside the declared range 5 .. 200"),
        ("lookback", json!(25.5), "integer"),
        ("threshold", json!("high"), "float"),
        ("mode", json!(3), "same type"),
        ("nope", json!(1), "has no parameter"),
    ];
    for (name, value, needle) in cases {
        let err = client
            .call::<method::ParametersUpdate>(UpdateParameterParams {
                id,
                name: name.into(),
                value,
                reason: "x".into(),
                changed_by: ChangedBy::Manual,
                is_ab_test: false,
                ab_test_group: None,
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains(needle), "{name}: {err}");
    }
    let history = client
        .call::<method::ParametersHistory>(ParameterHistoryParams { id, name: None })
        .await
        .unwrap();
    assert_eq!(history.changes.len(), 2);
    assert_eq!(history.changes[0].changed_by, ChangedBy::MemLearning);
    assert_eq!(history.changes[1].new_value, json!("slow"));
    let only = client
        .call::<method::ParametersHistory>(ParameterHistoryParams {
            id,
            name: Some("lookback".into()),
        })
        .await
        .unwrap();
    assert_eq!(only.changes.len(), 1);
    assert_eq!(
        daemon.stored_document(id)["strategy"]["parameters"]["lookback"]["value"],
        30
    );
    assert_eq!(only.changes[0].version_id.as_deref(), Some("1.0.0"));
    assert!(only.changes[0].applied_to.is_none(), "still in force");

    // An A/B arm, from memctl; the earlier value's span ends where it begins.
    let out = daemon.memctl(&[
        "strategies",
        "params",
        "set",
        &id.to_string(),
        "lookback",
        "40",
        "--reason",
        "arm B",
        "--ab-test",
        "B",
    ]);
    assert!(out.status.success(), "{}", describe(&out));
    let refused = daemon.memctl(&[
        "strategies",
        "params",
        "set",
        &id.to_string(),
        "lookback",
        "41",
        "--reason",
        "x",
        "--ab-test",
        "B/../x",
    ]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("abTestGroup"),
        "{}",
        describe(&refused)
    );
    let lookback = client
        .call::<method::ParametersHistory>(ParameterHistoryParams {
            id,
            name: Some("lookback".into()),
        })
        .await
        .unwrap()
        .changes;
    assert_eq!(lookback.len(), 2);
    assert_eq!(lookback[0].applied_to, lookback[1].applied_from);
    assert!(lookback[1].is_ab_test);
    assert_eq!(lookback[1].ab_test_group.as_deref(), Some("B"));
    let table = daemon.memctl(&["strategies", "params", "history", &id.to_string()]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("SHARPE BEFORE") && table.contains("A/B"),
        "{table}"
    );
}

on_both_backends!(relationships_deprecation_and_mem_marks);
async fn relationships_deprecation_and_mem_marks(daemon: &Daemon) {
    let client = daemon.client().await;
    let base = sid(CONSERVATIVE_RSI);
    let enhanced = register(&client, "rsi_mem").await;
    let learned = register(&client, "rsi_learned").await;
    let marked = client
        .call::<method::MemMarkEnhanced>(MarkEnhancedParams {
            id: enhanced,
            base_id: base,
        })
        .await
        .unwrap();
    assert_eq!(
        marked.metadata.strategy.mem_integration.base_strategy_id,
        Some(base)
    );
    assert_eq!(
        marked
            .metadata
            .strategy
            .mem_integration
            .enhancement_type
            .as_deref(),
        Some("full")
    );
    let link = client
        .call::<method::StrategiesLink>(LinkParams {
            from: learned,
            to: enhanced,
            relationship: RelationshipType::DerivedFrom,
            note: None,
            similarity_score: Some(0.82),
        })
        .await
        .unwrap();
    assert_eq!(link.similarity_score, Some(0.82));
    let refused = daemon.memctl(&[
        "strategies",
        "link",
        &learned.to_string(),
        "alternative_to",
        &base.to_string(),
        "--similarity",
        "1.5",
    ]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("similarityScore"),
        "{}",
        describe(&refused)
    );
    let patterns = client
        .call::<method::MemLearnedPatterns>(LearnedPatternsParams {
            id: learned,
            count: 7,
        })
        .await
        .unwrap();
    assert_eq!(
        patterns
            .metadata
            .strategy
            .mem_integration
            .learned_patterns_count,
        7
    );

    let err = client
        .call::<method::StrategiesLink>(LinkParams {
            from: base,
            to: base,
            relationship: RelationshipType::AlternativeTo,
            note: None,
            similarity_score: None,
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("itself"), "{err}");

    let direct = client
        .call::<method::StrategiesRelated>(RelatedParams {
            id: base,
            types: vec![],
            depth: None,
        })
        .await
        .unwrap();
    assert_eq!(direct.related.len(), 1);
    assert_eq!(direct.related[0].strategy.id, enhanced);
    assert_eq!(
        direct.related[0].relationship,
        RelationshipType::MemEnhancedVersion
    );
    assert_eq!(direct.related[0].direction, Direction::Incoming);
    let two = client
        .call::<method::StrategiesRelated>(RelatedParams {
            id: base,
            types: vec![],
            depth: Some(2),
        })
        .await
        .unwrap();
    assert_eq!(
        two.related
            .iter()
            .map(|r| (r.strategy.id, r.depth))
            .collect::<Vec<_>>(),
        [(enhanced, 1), (learned, 2)]
    );

    let deprecated = client
        .call::<method::StrategiesDeprecate>(DeprecateParams {
            id: base,
            reason: "superseded by the MEM version".into(),
            date: None,
            replacement_id: Some(enhanced),
        })
        .await
        .unwrap();
    assert_eq!(deprecated.summary.status, StrategyStatus::Deprecated);
    let meta = &deprecated.metadata.strategy.metadata;
    assert_eq!(
        meta.replacement_strategy_id.as_deref(),
        Some(enhanced.to_string().as_str())
    );
    assert_eq!(
        meta.deprecation_date.as_deref(),
        Some(Utc::now().date_naive().to_string().as_str())
    );
    let replaced = client
        .call::<method::StrategiesRelated>(RelatedParams {
            id: base,
            types: vec![RelationshipType::Replaces],
            depth: None,
        })
        .await
        .unwrap();
    assert_eq!(replaced.related.len(), 1);

    let out = daemon.memctl(&[
        "strategies",
        "unlink",
        &learned.to_string(),
        "derived-from",
        &enhanced.to_string(),
    ]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("removed"),
        "{}",
        describe(&out)
    );
    let two = client
        .call::<method::StrategiesRelated>(RelatedParams {
            id: base,
            types: vec![],
            depth: Some(2),
        })
        .await
        .unwrap();
    assert!(two.related.iter().all(|r| r.strategy.id != learned));
}

on_both_backends!(import_reads_both_seed_shapes);
async fn import_reads_both_seed_shapes(daemon: &Daemon) {
    let dir = tempfile::tempdir().unwrap();
    // The seed's nested registry file, as the Python registry wrote it.
    std::fs::write(
        dir.path().join("nested.json"),
        serde_json::to_string_pretty(&json!({
            "schema_version": "1.0.0",
            "strategy": {
                "id": "12df8565-1c13-4f7c-9662-9510ddf664f4",
                "name": "volatility_managed_momentum_copy",
                "display_name": "Volatility-Managed Momentum (copy)",
                "description": "Academic momentum strategy with volatility scaling from Barroso & Santa-Clara (2015)",
                "version": "1.0.0",
                "status": "experimental",
                "classification": {"category": "momentum", "sub_category": "", "complexity": "moderate", "tags": ["momentum", "volatility_scaling", "academic", "published"], "asset_classes": []},
                "implementation": {"language": "python", "file_path": "/x/strategy1.py", "class_name": "VolatilityManagedMomentum", "entry_point": "VolatilityManagedMomentum.generate_signal", "dependencies": [], "minimum_python_version": "3.10"},
                "academic_foundation": {"paper_title": "Momentum has its moments", "year": 2015},
                "parameters": {"momentum_lookback": 252, "skip_period": 21},
                "performance": {"backtest": {"sharpe_ratio": 1.197, "win_rate": 0.472, "num_trades": 106}, "live_trading": {"start_date": null, "total_trades": 0, "live_sharpe": null, "live_win_rate": null}},
                "mem_integration": {"enabled": true, "enhancement_type": "full", "learned_patterns_count": 0, "mem_version": "baseline_1.0", "estimated_improvement": {}},
                "requirements": {}, "risk_profile": {},
                "metadata": {"created_by": "system", "created_at": "2025-10-21T05:11:50.588396Z", "last_updated": "2025-10-21T05:11:50.590601Z", "last_backtest": null, "deprecation_date": null, "replacement_strategy_id": null}
            }
        }))
        .unwrap(),
    )
    .unwrap();
    // The flat camelCase entries of the orchestration guide's API response, in one array.
    std::fs::write(
        dir.path().join("api.json"),
        serde_json::to_string(&json!([
            {"id": "aaaaaaaa-0000-4000-8000-000000000001", "name": "flat_rsi", "displayName": "Flat RSI", "description": "From the API", "category": "mean_reversion", "status": "active", "language": "freqtrade", "memEnabled": true, "sharpeRatio": 1.1, "winRate": 0.6, "isDeployed": false},
            {"name": "flat_without_id", "displayName": "No Id", "category": "carry", "language": "python"},
            {"id": MACD_HUNTER, "name": "dup", "category": "momentum", "language": "x"},
            {"name": "broken", "category": "momentum", "language": "x", "winRate": 3}
        ]))
        .unwrap(),
    )
    .unwrap();
    let out = daemon.memctl(&[
        "strategies",
        "import",
        dir.path().to_str().unwrap(),
        "--json",
    ]);
    assert!(
        !out.status.success(),
        "one document failed, so the command fails: {}",
        describe(&out)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["imported"], 3, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    let results = report["results"].as_array().unwrap();
    let error_of = |source_end: &str| {
        results
            .iter()
            .find(|r| r["source"].as_str().unwrap().ends_with(source_end))
            .unwrap()["error"]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(
        error_of("api.json[2]").contains("already registered"),
        "{report}"
    );
    assert!(
        error_of("api.json[3]").contains("strategy.performance.backtest.win_rate"),
        "{report}"
    );

    let client = daemon.client().await;
    let flat = client
        .call::<method::StrategiesGet>(mem_protocol::methods::GetStrategyParams {
            id: sid("aaaaaaaa-0000-4000-8000-000000000001"),
        })
        .await
        .unwrap();
    assert_eq!(
        (
            flat.summary.display_name.as_str(),
            flat.summary.sharpe_ratio,
            flat.summary.status
        ),
        ("Flat RSI", Some(1.1), StrategyStatus::Active)
    );
    let nested = client
        .call::<method::StrategiesGet>(mem_protocol::methods::GetStrategyParams {
            id: sid("12df8565-1c13-4f7c-9662-9510ddf664f4"),
        })
        .await
        .unwrap();
    assert_eq!(
        nested.metadata.strategy.extra.get("academic_foundation"),
        None,
        "a known member"
    );
    assert_eq!(
        nested.metadata.strategy.academic_foundation["paper_title"],
        "Momentum has its moments"
    );
    let all = client
        .call::<method::StrategiesList>(ListStrategiesParams::default())
        .await
        .unwrap();
    assert_eq!(all.total, 14);
    assert!(all.strategies.iter().any(|s| s.display_name == "No Id"));
}

async fn next_event(events: &mut mem_protocol::EventStream) -> Event {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("an event within 10 s")
        .expect("the stream is open")
        .event
}

#[tokio::test]
async fn hand_edits_are_reloaded_and_broken_ones_reported() {
    let daemon = Daemon::start();
    let client = daemon.client().await;
    let (_, mut events) = client.subscribe(vec![Topic::Registry]).await.unwrap();
    let id = sid(AGGRESSIVE_RSI);
    let path = daemon
        .data_dir
        .join(format!("strategy_registry/metadata/{id}.json"));

    // A hand edit: reloaded, announced, audited as the daemon's own reload.
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    doc["strategy"]["display_name"] = json!("Aggressive RSI (edited)");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    match next_event(&mut events).await {
        Event::RegistryChanged(c) => {
            assert_eq!((c.strategy_id, c.change), (id, RegistryChange::Updated));
            assert_eq!(c.strategy.unwrap().display_name, "Aggressive RSI (edited)");
        }
        other => panic!("expected registry.changed, got {other:?}"),
    }
    let listed = client
        .call::<method::StrategiesList>(ListStrategiesParams {
            query: Some("edited".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.total, 1);

    // A broken edit: reported, and the last good version stays listed.
    std::fs::write(
        &path,
        b"{ \"schema_version\": \"1.0.0\", \"strategy\": { oops",
    )
    .unwrap();
    match next_event(&mut events).await {
        Event::RegistryInvalid(i) => {
            assert_eq!(i.strategy_id, Some(id));
            assert!(i.problem.contains("invalid metadata"), "{}", i.problem);
        }
        other => panic!("expected registry.invalid, got {other:?}"),
    }
    let listed = client
        .call::<method::StrategiesList>(ListStrategiesParams {
            query: Some("edited".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.total, 1, "the last good version is kept");
    let status = client
        .call::<method::DaemonStatus>(mem_protocol::methods::NoParams {})
        .await
        .unwrap();
    assert_eq!(status.counts.registry_errors, 1);
    assert!(
        daemon.stderr().contains("keeping the last good version"),
        "{}",
        daemon.stderr()
    );
    // Changing it while broken is refused with the reason, not a silent overwrite.
    let err = client
        .call::<method::StrategiesTags>(TagsParams {
            id,
            add: vec!["x".into()],
            remove: vec![],
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unreadable"), "{err}");

    // Fixed by hand: reloaded.
    doc["strategy"]["display_name"] = json!("Aggressive RSI (fixed)");
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
    let fixed = next_event(&mut events).await;
    assert!(
        matches!(fixed, Event::RegistryChanged(ref c) if c.change == RegistryChange::Updated),
        "{fixed:?}"
    );
    let status = client
        .call::<method::DaemonStatus>(mem_protocol::methods::NoParams {})
        .await
        .unwrap();
    assert_eq!(status.counts.registry_errors, 0);

    // A file dropped in by another program is added; one removed is dropped.
    let mut copy = doc.clone();
    let new_id = "bbbbbbbb-0000-4000-8000-000000000002";
    copy["strategy"]["id"] = json!(new_id);
    copy["strategy"]["name"] = json!("dropped_in");
    std::fs::write(
        daemon
            .data_dir
            .join(format!("strategy_registry/metadata/{new_id}.json")),
        serde_json::to_string(&copy).unwrap(),
    )
    .unwrap();
    assert!(
        matches!(next_event(&mut events).await, Event::RegistryChanged(c) if c.change == RegistryChange::Added && c.strategy_id == sid(new_id))
    );
    std::fs::remove_file(&path).unwrap();
    assert!(
        matches!(next_event(&mut events).await, Event::RegistryChanged(c) if c.change == RegistryChange::Removed && c.strategy_id == id)
    );
    let total = client
        .call::<method::StrategiesList>(ListStrategiesParams::default())
        .await
        .unwrap()
        .total;
    assert_eq!(total, 11);

    // The daemon's own writes cause no reload event: one change, one event.
    client
        .call::<method::StrategiesTags>(TagsParams {
            id: sid(MACD_HUNTER),
            add: vec!["own".into()],
            remove: vec![],
        })
        .await
        .unwrap();
    assert!(
        matches!(next_event(&mut events).await, Event::RegistryChanged(c) if c.strategy_id == sid(MACD_HUNTER))
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(1), events.next())
            .await
            .is_err(),
        "no second event for our own write"
    );
}

on_both_backends!(view_only_clients_cannot_change_the_registry);
async fn view_only_clients_cannot_change_the_registry(daemon: &Daemon) {
    let client = daemon.view_client().await;
    assert_eq!(client.hello().access, Access::View);
    let err = client
        .call::<method::StrategiesRegister>(RegisterParams {
            strategy: new_strategy("nope"),
            status: None,
        })
        .await
        .unwrap_err();
    assert_eq!(code(&err), Some(ErrorCode::PermissionDenied), "{err}");
    assert!(err.to_string().contains("needs control access"), "{err}");
    let out = daemon.memctl(&[
        "--read-only",
        "strategies",
        "tag",
        MACD_HUNTER,
        "--add",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    // Reading works.
    client
        .call::<method::Performance>(PerformanceParams {
            id: sid(MACD_HUNTER),
            from: None,
            to: None,
        })
        .await
        .unwrap();
}
