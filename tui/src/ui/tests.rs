//! The UI without a terminal: keys -> commands -> state, and snapshots of every view
//! drawn on ratatui's `TestBackend` (`cargo insta review` to look at changed ones).

use super::app::*;
use super::keys::{self, ch, key};
use super::view::{self, Theme};
use chrono::{DateTime, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use mem_protocol::deploy::*;
use mem_protocol::events::Event;
use mem_protocol::methods::StatusReport;
use mem_protocol::recommend::{
    AppliedConditions, ConditionsSource, MetricsSource, Recommendation, Recommendations,
    ScorePoint, Trend, Volatility,
};
use mem_protocol::registry::{PerformanceReport, VersionList};
use mem_protocol::strategy::{StrategyDetail, StrategyDocument, StrategyId, StrategySummary};
use mem_protocol::{Access, ErrorCode};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const MACD: &str = "4ce3a79b-c22b-4b42-9d87-3a58052a9eec";
const RSI: &str = "186062cd-e0f7-45eb-b387-3067360efe34";

fn now() -> DateTime<Utc> {
    "2026-11-22T10:30:00Z".parse().unwrap()
}

fn id(s: &str) -> StrategyId {
    s.parse().unwrap()
}

fn status() -> StatusReport {
    serde_json::from_value(json!({
        "version": "0.1.0", "pid": 4242, "startedAt": "2026-11-22T08:00:00Z", "uptimeSecs": 9000,
        "dataDir": "/var/lib/memd", "registryDir": "/var/lib/memd/strategy_registry",
        "socket": "/run/memd/memd.sock", "logDir": "/var/log/memd", "mode": "system",
        "counts": {"strategies": 3, "strategiesByStatus": {"active": 2, "experimental": 1},
                   "registryErrors": 0, "connections": 2, "subscribers": 1},
        "host": {"hostname": "trader-01", "cpuCount": 2, "cpuPercent": 12.5,
                 "memoryTotalBytes": 4294967296u64, "memoryUsedBytes": 1073741824u64,
                 "loadAverage": [0.25, 0.2, 0.1]},
        "process": {"rssBytes": 31457280u64, "cpuPercent": 0.4},
        "access": "control"
    }))
    .unwrap()
}

/// The seed's MACD Hunter, as the registry keeps it.
fn macd_document() -> StrategyDocument {
    serde_json::from_str(include_str!(
        "../../../data/strategy_registry/metadata/4ce3a79b-c22b-4b42-9d87-3a58052a9eec.json"
    ))
    .unwrap()
}

fn summary(
    id_text: &str,
    name: &str,
    display: &str,
    category: &str,
    sharpe: f64,
    win: f64,
) -> StrategySummary {
    let mut s = macd_document().summary(false);
    s.id = id(id_text);
    s.name = name.into();
    s.display_name = display.into();
    s.category = category.into();
    s.sub_category = String::new(); // not the MACD Hunter's, which a search would find
    s.sharpe_ratio = Some(sharpe);
    s.win_rate = Some(win);
    s.description = format!("{display}: a {category} strategy");
    s.tags = vec![category.into()];
    s
}

fn strategies() -> Vec<Arc<StrategySummary>> {
    let mut research = summary(
        "4fdcbb3a-abea-4662-badd-a6f6886825b0",
        "volatility_managed_momentum",
        "Volatility-Managed Momentum",
        "momentum",
        1.197,
        0.472,
    );
    research.status = mem_protocol::strategy::StrategyStatus::Experimental;
    research.language = "rust".into(); // native, as the seed lists it
    let mut rsi = summary(
        RSI,
        "freqtrade_conservative_rsi",
        "Freqtrade Conservative RSI",
        "mean_reversion",
        1.15,
        0.62,
    );
    rsi.live_trades = 42;
    rsi.total_pnl = Some(-12.5);
    vec![
        Arc::new(rsi),
        Arc::new(summary(
            MACD,
            "freqtrade_macd_hunter",
            "Freqtrade MACD Hunter",
            "momentum",
            1.45,
            0.58,
        )),
        Arc::new(research),
    ]
}

fn deployment(strategy: &str, name: &str, status: DeploymentStatus) -> DeployedStrategy {
    serde_json::from_value(json!({
        "deploymentId": format!("00000000-0000-4000-8000-{}", &strategy[24..]),
        "strategyId": strategy, "strategyName": name, "deploymentType": "freqtrade",
        "processId": 31337, "port": 8083, "startedAt": "2026-11-22T10:00:00Z",
        "status": status, "dryRun": true, "configFile": "/var/lib/memd/deployments/x/config.json",
        "startedBy": "manual", "restarts": 0,
        "stats": {"openTrades": 2, "closedTrades": 5, "profitClosed": 12.5, "profitAll": 15.25,
                  "balance": 1015.25, "stakeCurrency": "USDT", "botState": "running"},
        "warnings": 3, "errors": 0, "cpuPercent": 1.5, "rssBytes": 335544320u64
    }))
    .unwrap()
}

/// An app connected to a daemon with three strategies and one running bot.
fn connected() -> App {
    let mut app = App::new(now());
    let mut strategies = strategies();
    Arc::make_mut(&mut strategies[1]).is_deployed = true;
    let commands = app.on_update(Update::Connected {
        access: Access::Control,
        status: Box::new(status()),
        strategies,
        deployed: DeployedList {
            notes: Vec::new(),
            deployments: vec![deployment(
                MACD,
                "Freqtrade MACD Hunter",
                DeploymentStatus::Running,
            )],
        },
        metrics: None,
        panels: vec![],
        queue: None,
    });
    assert!(
        commands.contains(&Command::LoadPanel(View::Memory)),
        "{commands:?}"
    );
    // The snapshot's market: the shipped demo candles, years old.
    app.on_update(Update::Market(Box::new(demo_market())));
    app
}

/// The market a fresh install shows: conditions on the shipped January 2018 candles.
fn demo_market() -> mem_protocol::market::MarketState {
    serde_json::from_value(json!({
        "conditions": {
            "pair": "ETH/BTC", "timeframe": "1h", "trend": "ranging", "volatility": "medium",
            "trendReason": "ADX 17.1 < 20: no trend", "volatilityReason": "ATR(14) is 0.9% of the close",
            "indicators": {}, "candleTsMs": 1_517_439_600_000_i64, "candles": 744,
            "freshness": {"asOf": "2018-02-01T00:00:00Z", "ageSecs": 277_000_000,
                          "stale": true, "staleAfterSecs": 10_800, "demo": true}
        }
    }))
    .unwrap()
}

/// A `jobs.list` answer as memd gives it: retraining done, a rotation that moved a bot.
fn jobs_sample() -> serde_json::Value {
    use serde_json::Value;
    let job = |name: &str,
               cron: &str,
               text: &str,
               enabled: bool,
               next: Option<&str>,
               last: Value| {
        json!({
            "name": name, "description": format!("what {name} does"), "schedule": cron,
            "scheduleText": text, "timezone": "UTC", "enabled": enabled, "catchUp": name == "retrain",
            "lastRun": last, "nextRun": next
        })
    };
    let run = |job: &str, at: &str, outcome: &str, summary: &str, details: Value| {
        json!({
            "id": format!("{job}-1"), "job": job, "trigger": "schedule", "startedAt": at,
            "finishedAt": at, "outcome": outcome, "summary": summary, "details": details
        })
    };
    json!({"jobs": [
        job("retrain", "0 0 2 * * *", "At 02:00.", true, Some("2026-11-23T02:00:00Z"),
            run("retrain", "2026-11-22T02:00:00Z", "succeeded", "trained 20261122_020004 but kept 20261121_020003: accuracy 0.8861 vs 0.8899: not 0.02 higher", Value::Null)),
        job("rotation", "0 0 3 * * *", "At 03:00.", true, Some("2026-11-23T03:00:00Z"),
            run("rotation", "2026-11-22T03:00:00Z", "succeeded", "bearish trend, medium volatility: deployed bear carry; drained trend rider",
                json!({"actions": [
                    {"action": "deploy", "strategyName": "bear carry", "confidence": 0.85, "reason": "recommended at 0.85 (>= 0.80): carry strategy suits bearish trend, Sharpe ratio above 1.0", "result": "deployment 5f0e dry-run"},
                    {"action": "drain", "strategyName": "trend rider", "confidence": 0.65, "reason": "no longer recommended enough: 0.65 < 0.80", "result": "stopped (0 open trades at the end)"}
                ]}))),
        job("regime_deploy", "0 */5 * * * *", "At every 5 minutes.", false, None, Value::Null),
        job("performance_sync", "0 * * * * *", "At every minute.", true, Some("2026-11-22T10:31:00Z"),
            run("performance_sync", "2026-11-22T10:30:00Z", "failed", "failed: 1 running bot read; MACD: the bot's trades could not be read", Value::Null)),
        job("learning", "0 30 * * * *", "At 30 minutes past the hour.", true, Some("2026-11-22T11:30:00Z"), Value::Null)
    ]})
}

fn not_built(method: &str, area: &str) -> Failure {
    Failure {
        code: Some(ErrorCode::NotImplemented),
        message: format!("`{method}` is not implemented yet (planned: {area})"),
    }
}

fn with_panels(mut app: App) -> App {
    app.on_update(Update::Panel(
        View::Memory,
        Err(not_built("mem.decisions", "MEM intelligence")),
    ));
    app.on_update(Update::Panel(View::Jobs, Ok(jobs_sample())));
    app.on_update(Update::Panel(
        View::Model,
        Err(not_built("ml.status", "trend-reversal model")),
    ));
    app
}

fn macd_data() -> StrategyData {
    let doc = macd_document();
    let performance: PerformanceReport = serde_json::from_value(json!({
        "strategyId": MACD, "strategyName": "Freqtrade MACD Hunter", "convention": "per-trade returns, 365 days",
        "all": metrics(5, 3, 12.5), "memEnhanced": metrics(0, 0, 0.0), "notMemEnhanced": metrics(5, 3, 12.5)
    }))
    .unwrap();
    let versions: VersionList = serde_json::from_value(json!({
        "strategyId": MACD, "currentVersion": "1.1.0",
        "versions": [
            {"strategy_id": MACD, "version_number": "1.0.0", "changelog": "Initial version",
             "created_by": "system", "created_at": "2025-10-21T06:30:28Z"},
            {"strategy_id": MACD, "version_number": "1.1.0", "changelog": "Faster MACD",
             "created_by": "ops", "created_at": "2026-11-01T09:00:00Z"}
        ]
    }))
    .unwrap();
    StrategyData {
        detail: StrategyDetail {
            summary: doc.summary(true).into(),
            metadata: doc.into(),
        },
        versions: Some(versions),
        performance: Some(performance),
        equity: vec![2.0, 5.5, 4.0, 9.0, 12.5],
        backtest: None,
    }
}

fn metrics(trades: u64, wins: u64, pnl: f64) -> serde_json::Value {
    json!({"totalTrades": trades, "wins": wins, "losses": trades - wins,
           "winRate": if trades > 0 { Some(wins as f64 / trades as f64) } else { None },
           "totalPnl": pnl, "averagePnl": null, "totalReturn": 0.0125, "profitFactor": null,
           "sharpeRatio": if trades > 0 { Some(1.8) } else { None }, "sortinoRatio": null,
           "maxDrawdown": -0.004, "cagr": null})
}

fn recommendations() -> Recommendations {
    let point = |rule: &str, points: f64, detail: &str| ScorePoint {
        rule: rule.into(),
        points,
        detail: detail.into(),
    };
    let rec = |sid: &str,
               name: &str,
               category: &str,
               score: f64,
               breakdown: Vec<ScorePoint>,
               reason: &str| Recommendation {
        strategy_id: id(sid),
        strategy_name: name.into(),
        category: category.into(),
        confidence_score: score,
        reason: reason.into(),
        estimated_sharpe: Some(1.45),
        estimated_win_rate: Some(0.58),
        metrics_source: MetricsSource::Backtest,
        live_trades: 0,
        is_deployed: false,
        breakdown,
    };
    Recommendations {
        conditions: AppliedConditions {
            trend: Trend::Bullish,
            volatility: Volatility::Medium,
            vix: None,
            indicators: Default::default(),
            source: ConditionsSource::Request,
            computed: None,
        },
        recommendations: vec![
            rec(
                MACD,
                "Freqtrade MACD Hunter",
                "momentum",
                0.95,
                vec![
                    point("base", 0.5, "base score"),
                    point("trend", 0.2, "momentum strategy suits bullish trend"),
                    point("sharpe", 0.15, "Sharpe ratio 1.45 > 1.0 (backtest)"),
                    point("winRate", 0.1, "win rate 58.0% > 55% (backtest)"),
                    point(
                        "volatility",
                        0.0,
                        "no category is favoured at medium volatility",
                    ),
                ],
                "momentum strategy suits bullish trend, strong Sharpe ratio (1.45), high win rate (58%); figures from the backtest",
            ),
            rec(
                RSI,
                "Freqtrade Conservative RSI",
                "mean_reversion",
                0.75,
                vec![],
                "strong Sharpe ratio (1.15)",
            ),
        ],
        candidates: 2,
        message: "MEM recommends 2 strategies for bullish trend with medium volatility".into(),
        live_metrics_min_trades: 30,
    }
}

fn render(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal
        .draw(|frame| view::draw(frame, app, Theme { color: true }))
        .unwrap();
    terminal.backend().to_string()
}

fn press(app: &mut App, keys: &[KeyEvent]) -> Vec<Command> {
    keys.iter().flat_map(|k| app.on_key(*k)).collect()
}

// ---- the state machine ----

#[test]
fn number_keys_and_tab_switch_views_and_load_their_data() {
    let mut app = connected();
    assert_eq!(app.view, View::Dashboard);
    let c = press(&mut app, &[ch('4')]);
    assert_eq!(app.view, View::Recommendations);
    assert!(matches!(c.as_slice(), [Command::Recommend(_)]), "{c:?}");
    press(&mut app, &[key(KeyCode::Tab)]);
    assert_eq!(app.view, View::Memory);
    press(&mut app, &[key(KeyCode::BackTab), key(KeyCode::BackTab)]);
    assert_eq!(app.view, View::Deployed);
    press(&mut app, &[ch('7'), key(KeyCode::Tab)]);
    assert_eq!(app.view, View::Backtests);
    press(&mut app, &[key(KeyCode::Tab)]);
    assert_eq!(app.view, View::Dashboard, "Tab wraps around");
}

#[test]
fn movement_keys_clamp_to_the_list() {
    let mut app = connected();
    press(&mut app, &[ch('2')]);
    assert_eq!(app.strategies.cursor.selected, 0);
    press(&mut app, &[ch('j'), key(KeyCode::Down)]);
    assert_eq!(app.strategies.cursor.selected, 2);
    press(&mut app, &[ch('j')]);
    assert_eq!(app.strategies.cursor.selected, 2, "stays on the last row");
    press(&mut app, &[ch('g')]);
    assert_eq!(app.strategies.cursor.selected, 0);
    press(&mut app, &[ch('G'), ch('k'), key(KeyCode::Up)]);
    assert_eq!(app.strategies.cursor.selected, 0);
    press(&mut app, &[key(KeyCode::PageDown)]);
    assert_eq!(app.strategies.cursor.selected, 2);
    press(&mut app, &[key(KeyCode::PageUp)]);
    assert_eq!(app.strategies.cursor.selected, 0);
}

#[test]
fn search_filters_as_you_type_and_esc_clears() {
    let mut app = connected();
    press(&mut app, &[ch('2'), ch('/')]);
    assert!(app.strategies.searching);
    let c = press(&mut app, &[ch('m'), ch('a'), ch('c'), ch('d')]);
    assert_eq!(app.strategies.rows.len(), 1);
    assert_eq!(app.strategies.selected().unwrap().id, id(MACD));
    assert!(c.contains(&Command::LoadDetail(id(MACD))));
    // q is text while searching, not quit.
    press(&mut app, &[ch('q')]);
    assert!(!app.quit);
    assert_eq!(app.strategies.rows.len(), 0);
    press(&mut app, &[key(KeyCode::Backspace), key(KeyCode::Enter)]);
    assert!(!app.strategies.searching);
    assert_eq!(app.strategies.search, "macd");
    press(&mut app, &[key(KeyCode::Esc)]);
    assert_eq!(app.strategies.rows.len(), 3, "Esc clears the search");
    assert!(!app.quit);
    press(&mut app, &[key(KeyCode::Esc)]);
    assert!(app.quit, "Esc at the top quits");
}

#[test]
fn filter_and_sort_cycle() {
    let mut app = connected();
    press(&mut app, &[ch('2'), ch('f')]);
    assert_eq!(app.strategies.filter(), StrategyFilter::Active);
    assert_eq!(app.strategies.rows.len(), 2);
    press(&mut app, &[ch('f'), ch('f')]);
    assert_eq!(app.strategies.filter(), StrategyFilter::Deployed);
    assert_eq!(app.strategies.rows.len(), 1);
    press(&mut app, &[ch('f'), ch('f'), ch('f'), ch('f')]);
    assert_eq!(app.strategies.filter(), StrategyFilter::All);
    press(&mut app, &[ch('o')]);
    assert_eq!(
        app.strategies.sort(),
        mem_protocol::methods::SortKey::Sharpe
    );
    let names: Vec<_> = app
        .strategies
        .rows
        .iter()
        .map(|&i| app.strategies.all[i].display_name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "Freqtrade MACD Hunter",
            "Volatility-Managed Momentum",
            "Freqtrade Conservative RSI"
        ]
    );
}

#[test]
fn deploy_asks_first_then_sends_a_dry_run_deploy() {
    let mut app = connected();
    press(&mut app, &[ch('2')]); // Conservative RSI is selected (not deployed)
    let c = press(&mut app, &[ch('d')]);
    assert!(matches!(
        app.overlay,
        Some(Overlay::Confirm(Confirm::Deploy { live: false, .. }))
    ));
    assert_eq!(
        c,
        [Command::LoadDetail(id(RSI))],
        "the dialog loads the strategy's port"
    );
    let c = press(&mut app, &[key(KeyCode::Enter)]);
    assert_eq!(
        c,
        [Command::Deploy(DeployParams {
            id: id(RSI),
            dry_run: true,
            port: None,
            parameters: None,
            native: None
        })]
    );
    assert!(app.overlay.is_none());
    assert!(app.status_line.as_ref().unwrap().text.contains("deploying"));
}

#[test]
fn a_live_deploy_needs_the_strategy_name_typed() {
    let mut app = connected();
    press(&mut app, &[ch('2'), ch('d'), key(KeyCode::Tab)]);
    assert!(matches!(
        app.overlay,
        Some(Overlay::Confirm(Confirm::Deploy { live: true, .. }))
    ));
    let c = press(&mut app, &[key(KeyCode::Enter)]);
    assert!(c.is_empty(), "nothing typed: no deploy");
    assert_eq!(app.status_line.as_ref().unwrap().tone, Tone::Error);
    assert!(app.overlay.is_some(), "the dialog stays open");
    let typed: Vec<KeyEvent> = "freqtrade_conservative_rsi".chars().map(ch).collect();
    press(&mut app, &typed);
    let c = press(&mut app, &[key(KeyCode::Enter)]);
    assert!(
        matches!(
            c.as_slice(),
            [Command::Deploy(DeployParams { dry_run: false, .. })]
        ),
        "{c:?}"
    );
}

#[test]
fn esc_cancels_a_dialog_and_says_so() {
    let mut app = connected();
    press(&mut app, &[ch('2'), ch('d')]);
    let c = press(&mut app, &[key(KeyCode::Esc)]);
    assert!(c.is_empty());
    assert!(app.overlay.is_none());
    assert!(!app.quit);
    assert_eq!(app.status_line.as_ref().unwrap().text, "cancelled");
}

#[test]
fn stop_and_restart_from_deployed_and_drain_with_tab() {
    let mut app = connected();
    press(&mut app, &[ch('3'), ch('s')]);
    assert!(matches!(
        app.overlay,
        Some(Overlay::Confirm(Confirm::Stop { drain: false, .. }))
    ));
    let c = press(&mut app, &[key(KeyCode::Tab), ch('y')]);
    assert_eq!(
        c,
        [Command::Stop(StopParams {
            id: id(MACD),
            mode: StopMode::Drain,
            deadline_secs: None
        })]
    );
    let c = press(&mut app, &[ch('r'), key(KeyCode::Enter)]);
    assert!(matches!(c.as_slice(), [Command::Restart(_)]));
}

#[test]
fn stopping_a_strategy_that_is_not_deployed_says_so() {
    let mut app = connected();
    press(&mut app, &[ch('2'), ch('s')]);
    assert!(app.overlay.is_none());
    assert_eq!(
        app.status_line.as_ref().unwrap().text,
        "Freqtrade Conservative RSI is not deployed"
    );
}

#[test]
fn read_only_sessions_get_no_dialog() {
    let mut app = connected();
    app.access = Access::View;
    for k in ['d', 's', 'r'] {
        press(&mut app, &[ch('3'), ch(k)]);
        assert!(app.overlay.is_none());
        assert!(
            app.status_line
                .as_ref()
                .unwrap()
                .text
                .starts_with("read-only session")
        );
    }
}

#[test]
fn recommendations_cycle_conditions_and_deploy_the_selection() {
    let mut app = connected();
    press(&mut app, &[ch('4')]);
    let c = press(&mut app, &[ch('t')]);
    assert_eq!(app.recommend.trend, Some(Trend::Bullish));
    assert!(
        matches!(&c[..], [Command::Recommend(m)] if m.trend == Some(Trend::Bullish) && m.volatility.is_none())
    );
    press(&mut app, &[ch('v'), ch('v')]);
    assert_eq!(app.recommend.volatility, Some(Volatility::Medium));
    app.on_update(Update::Recommendations(
        app.recommend.conditions(),
        Ok(recommendations()),
    ));
    // The best one (MACD Hunter) is deployed already: the operator is told so.
    press(&mut app, &[ch('d')]);
    assert!(app.overlay.is_none());
    assert!(
        app.status_line
            .as_ref()
            .unwrap()
            .text
            .contains("already deployed")
    );
    press(&mut app, &[ch('j'), key(KeyCode::Enter)]);
    assert!(
        matches!(&app.overlay, Some(Overlay::Confirm(Confirm::Deploy { id: i, .. })) if *i == id(RSI))
    );
    // 't' past the last word goes back to the computed conditions.
    press(
        &mut app,
        &[key(KeyCode::Esc), ch('t'), ch('t'), ch('t'), ch('t')],
    );
    assert_eq!(app.recommend.trend, None);
}

#[test]
fn a_late_answer_to_older_conditions_is_ignored() {
    let mut app = connected();
    press(&mut app, &[ch('4'), ch('t'), ch('v')]);
    let low = app.recommend.conditions();
    press(&mut app, &[ch('v')]);
    let medium = app.recommend.conditions();
    app.on_update(Update::Recommendations(medium, Ok(recommendations())));
    let mut stale = recommendations();
    stale.recommendations.clear();
    app.on_update(Update::Recommendations(low, Ok(stale)));
    assert_eq!(
        app.recommend.rows().len(),
        2,
        "the answer for `medium` stays"
    );
}

#[test]
fn events_update_the_tables() {
    let mut app = connected();
    let mut d = deployment(
        RSI,
        "Freqtrade Conservative RSI",
        DeploymentStatus::Starting,
    );
    d.deployment_id = DeploymentId::new_random();
    app.on_update(Update::Event(Box::new(Event::DeploymentChanged(Box::new(
        DeploymentChanged {
            deployment: d.clone(),
        },
    )))));
    assert_eq!(app.deployed.rows().len(), 2);
    assert!(
        app.strategies
            .all
            .iter()
            .find(|s| s.id == id(RSI))
            .unwrap()
            .is_deployed
    );
    d.status = DeploymentStatus::Failed;
    d.last_error = Some("exited with code 2".into());
    app.on_update(Update::Event(Box::new(Event::DeploymentChanged(Box::new(
        DeploymentChanged {
            deployment: d.clone(),
        },
    )))));
    // A failure stays in the default list until it is acknowledged (issue 22).
    assert_eq!(app.deployed.rows().len(), 2, "failed, not yet acknowledged");
    assert!(app.deployed.rows()[1].needs_acknowledgement());
    d.acknowledged = true;
    app.on_update(Update::Event(Box::new(Event::DeploymentChanged(Box::new(
        DeploymentChanged {
            deployment: d.clone(),
        },
    )))));
    assert_eq!(app.deployed.rows().len(), 1, "acknowledged: it leaves");
    press(&mut app, &[ch('3'), ch('f'), ch('f'), ch('f')]);
    assert_eq!(app.deployed.filter(), DeployFilter::Failed);
    assert_eq!(app.deployed.rows().len(), 1);
    app.on_update(Update::Event(Box::new(Event::BotLog(BotLog {
        deployment_id: d.deployment_id,
        strategy_id: d.strategy_id,
        lines: (0..600).map(|i| format!("line {i}")).collect(),
    }))));
    assert_eq!(app.deployed.logs[&d.deployment_id].len(), LOG_LINES_KEPT);
    assert_eq!(
        app.deployed.logs[&d.deployment_id].back().unwrap(),
        "line 599"
    );
}

/// The all-servers screen, which every server's events reach, is drawn again only for
/// what it shows (issue 26: with 50 bots a server, nearly every event is a poll that found
/// nothing new or a periodic figure); one server's screen at every update.
#[test]
fn the_all_servers_screen_is_drawn_again_only_for_what_it_shows() {
    use super::fleet::{FleetApp, Focus};
    let mut fleet = FleetApp::new(
        vec!["east".into(), "west".into()],
        Focus::All,
        keys::Keymap::default(),
        now(),
    );
    let d = deployment(MACD, "Freqtrade MACD Hunter", DeploymentStatus::Running);
    fleet.on_update(
        0,
        Update::Connected {
            access: Access::Control,
            status: Box::new(status()),
            strategies: strategies(),
            deployed: DeployedList {
                notes: Vec::new(),
                deployments: vec![d.clone()],
            },
            metrics: None,
            panels: vec![],
            queue: None,
        },
    );
    let changed = |d: &DeployedStrategy| {
        Update::Event(Box::new(Event::DeploymentChanged(Box::new(
            DeploymentChanged {
                deployment: d.clone(),
            },
        ))))
    };
    // A poll that found nothing new: its time only (the event has no CPU or memory).
    let mut polled = d.clone();
    polled.stats.polled_at = Some(now());
    polled.cpu_percent = None;
    polled.rss_bytes = None;
    assert!(!fleet.changes_screen(0, &changed(&polled)));
    let mut profit = polled.clone();
    profit.stats.profit_all += 1.0;
    assert!(fleet.changes_screen(0, &changed(&profit)));
    let mut stopped = polled.clone();
    stopped.status = DeploymentStatus::Stopped;
    assert!(fleet.changes_screen(0, &changed(&stopped)));
    // West has not told of this bot: a new row.
    assert!(fleet.changes_screen(1, &changed(&polled)));
    let usage = Update::Event(Box::new(Event::DeploymentsUsage(DeploymentsUsage {
        deployments: vec![DeploymentUsage {
            deployment_id: d.deployment_id,
            cpu_percent: 3.0,
            rss_bytes: 1 << 20,
        }],
    })));
    assert!(!fleet.changes_screen(0, &usage));
    assert!(fleet.changes_screen(0, &Update::Done(Ok("stopped".into()))));
    // The second's redraw still comes (the clock, a server's host load).
    assert!(fleet.on_tick(now() + chrono::Duration::seconds(1)));
    fleet.focus = Focus::One(0);
    assert!(fleet.changes_screen(0, &changed(&polled)));
    assert!(fleet.changes_screen(0, &usage));
}

#[test]
fn a_lost_connection_closes_dialogs_and_control_keys_say_why() {
    let mut app = connected();
    press(&mut app, &[ch('3'), ch('s')]);
    app.on_update(Update::Disconnected {
        reason: "the daemon closed the connection".into(),
        retry_in: Duration::from_secs(2),
    });
    assert!(app.overlay.is_none());
    press(&mut app, &[ch('s')]);
    assert!(
        app.status_line
            .as_ref()
            .unwrap()
            .text
            .starts_with("not connected")
    );
    // Back: the old data stay, the status line says so.
    app.on_update(Update::Connected {
        access: Access::Control,
        status: Box::new(status()),
        strategies: strategies(),
        deployed: DeployedList {
            notes: Vec::new(),
            deployments: vec![],
        },
        metrics: None,
        panels: vec![],
        queue: None,
    });
    assert_eq!(
        app.status_line.as_ref().unwrap().text,
        "reconnected to memd"
    );
}

#[test]
fn ctrl_c_quits_from_anywhere() {
    let mut app = connected();
    press(&mut app, &[ch('2'), ch('/')]);
    app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL));
    assert!(app.quit);
}

#[test]
fn the_tick_asks_for_a_redraw_only_when_the_second_changes() {
    let mut app = connected();
    assert!(!app.on_tick(now() + chrono::Duration::milliseconds(400)));
    assert!(app.on_tick(now() + chrono::Duration::milliseconds(1100)));
}

// ---- snapshots of every view ----

#[test]
fn snapshot_dashboard() {
    let app = with_panels(connected());
    insta::assert_snapshot!(render(&app, 100, 30));
}

/// A `mem.metrics` answer after a replay: decisions, latencies, a learned strategy.
fn metrics_sample() -> mem_protocol::mem::MemMetrics {
    serde_json::from_value(json!({
        "at": "2026-11-22T10:30:00Z", "uptimeSecs": 9000, "windowSecs": 3600,
        "decisionsPerHour": 42, "decisionsTotal": 120, "closed24h": 40, "wins24h": 23,
        "winRate24h": 0.575, "outcomesTotal": 118,
        "predictionLatencyMs": {"count": 42, "avg": 0.0412, "p50": 0.035, "p99": 0.21, "max": 0.3,
                                "last": 0.04, "totalCount": 120, "totalMs": 5.1},
        "enhancementTimeMs": {"count": 42, "avg": 0.183, "p50": 0.15, "p99": 1.42, "max": 2.0,
                              "last": 0.2, "totalCount": 120, "totalMs": 22.0},
        "memoryLoadMs": {"count": 1, "avg": 3.4, "p50": 3.4, "p99": 3.4, "max": 3.4, "last": 3.4,
                         "totalCount": 1, "totalMs": 3.4},
        "learnedStrategies": {"active": 2, "deprecated": 1},
        "botPolls": []
    }))
    .unwrap()
}

#[test]
fn snapshot_dashboard_with_mem_metrics() {
    let mut app = with_panels(connected());
    app.on_update(Update::Event(Box::new(Event::MemMetrics(Box::new(
        metrics_sample(),
    )))));
    insta::assert_snapshot!(render(&app, 100, 30));
    // 80x24: the figures fold into a line of the trading panel; the bots keep their rows.
    insta::assert_snapshot!("dashboard_80x24_mem_metrics", render(&app, 80, 24));
}

#[test]
fn snapshot_dashboard_with_the_risk_guard() {
    let mut app = with_panels(connected());
    let status = app.status.as_mut().unwrap();
    status.risk.limits.max_drawdown = Some(50.0);
    status.risk.limits.daily_loss = Some(20.0);
    status.risk.equity = 58.0;
    status.risk.peak = 70.0;
    status.risk.drawdown = 12.0;
    status.risk.day_loss = 3.5;
    insta::assert_snapshot!("dashboard_80x24_risk_ok", render(&app, 80, 24));
    let trip = mem_protocol::risk::RiskTrip {
        limit: mem_protocol::risk::RiskLimit::FleetDrawdown,
        figure: 55.0,
        threshold: 50.0,
        bots: Vec::new(),
        at: now(),
        message: "the fleet's drawdown 55.00 crossed [risk] max_drawdown 50.00".into(),
    };
    app.on_update(Update::Event(Box::new(Event::RiskTripped(Box::new(trip)))));
    insta::assert_snapshot!("dashboard_80x24_risk_tripped", render(&app, 80, 24));
    app.on_update(Update::Event(Box::new(Event::RiskReset(Box::new(
        mem_protocol::risk::RiskReset {
            at: now(),
            reason: Some("checked".into()),
            by: None,
            cleared: Vec::new(),
        },
    )))));
    assert!(!app.status.as_ref().unwrap().risk.tripped);
}

/// An alert as memd announces it: raised at `minute` past 10:00 today, queued for
/// Telegram and the log, each target's last result as given.
fn alert_status(
    id: &str,
    minute: u32,
    severity: &str,
    (title, text): (&str, &str),
    results: [Option<mem_protocol::alerts::DeliveryResult>; 2],
) -> mem_protocol::alerts::AlertStatus {
    let targets = ["telegram/4242", "log"]
        .into_iter()
        .zip(results)
        .map(|(target, result)| mem_protocol::alerts::AlertTargetStatus {
            target: target.into(),
            result,
            attempts: u32::from(result.is_some()),
            error: None,
        })
        .collect();
    mem_protocol::alerts::AlertStatus {
        id: id.into(),
        rule: "bot_failed".into(),
        severity: severity.into(),
        title: title.into(),
        text: text.into(),
        raised_at: format!("2026-11-22T10:{minute:02}:00Z").parse().unwrap(),
        targets,
    }
}

#[test]
fn a_raised_alert_appears_on_the_dashboard_and_follows_its_deliveries() {
    use mem_protocol::alerts::DeliveryResult::{Failed, Sent};
    let mut app = with_panels(connected());
    // The snapshot's alerts (after a restart of memd, say): the last ones sent.
    app.on_update(Update::Alerts(vec![
        alert_status(
            "a",
            1,
            "info",
            ("memd started", "memd 0.1.0 on trader-01"),
            [Some(Sent), Some(Sent)],
        ),
        alert_status(
            "b",
            5,
            "warning",
            (
                "Job data_refresh failed",
                "freqtrade download-data failed (exit status: 2)",
            ),
            [Some(Sent), Some(Sent)],
        ),
    ]));
    // Raised now: pending, then Telegram refuses (retried), the log has it.
    let failed = |results| {
        Update::Event(Box::new(Event::AlertChanged(Box::new(alert_status(
            "c",
            29,
            "critical",
            (
                "Bot Freqtrade MACD Hunter failed",
                "gave up after 2 restarts: Fatal exception\nTraceback...",
            ),
            results,
        )))))
    };
    app.on_update(failed([None, None]));
    let screen = render(&app, 100, 30);
    assert!(
        screen.contains("Bot Freqtrade MACD Hunter failed") && screen.contains("pending 0/2"),
        "{screen}"
    );
    app.on_update(failed([Some(Failed), Some(Sent)]));
    insta::assert_snapshot!("dashboard_alerts_failing", render(&app, 100, 30));
    // 80x24: the newest line still fits under the bots.
    let small = render(&app, 80, 24);
    assert!(
        small.contains("10:29 CRIT Bot Freqtrade MACD Hunter failed") && small.contains("FAILING"),
        "{small}"
    );
    // Delivered once Telegram is back: one line for the alert, sent.
    app.on_update(failed([Some(Sent), Some(Sent)]));
    let screen = render(&app, 100, 30);
    assert_eq!(screen.matches("MACD Hunter failed").count(), 1, "{screen}");
    assert!(!screen.contains("FAILING"), "{screen}");
    assert_eq!(app.alerts.len(), 3);
}

#[test]
fn snapshot_strategies_wide_with_detail() {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('2'), ch('j')]);
    app.on_update(Update::Detail(id(MACD), Ok(Box::new(macd_data()))));
    insta::assert_snapshot!(render(&app, 160, 40));
}

/// The seed's 11 strategies (data/strategy_registry), in name order, as the daemon
/// announces them.
fn seed_strategies() -> Vec<Arc<StrategySummary>> {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/strategy_registry/metadata"
    );
    let mut all: Vec<Arc<StrategySummary>> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let doc: StrategyDocument =
                serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap();
            Arc::new(doc.summary(false))
        })
        .collect();
    all.sort_by_key(|s| s.display_name.to_lowercase());
    all
}

#[test]
fn snapshot_strategies_search_rsi_ranks_words_before_letters_inside_words() {
    let mut app = App::new(now());
    app.on_update(Update::Connected {
        access: Access::Control,
        status: Box::new(status()),
        strategies: seed_strategies(),
        deployed: DeployedList {
            notes: Vec::new(),
            deployments: vec![],
        },
        metrics: None,
        panels: vec![],
        queue: None,
    });
    press(&mut app, &[ch('2'), ch('/'), ch('r'), ch('s'), ch('i')]);
    let names = |app: &App| -> Vec<String> {
        app.strategies
            .rows
            .iter()
            .map(|&i| app.strategies.all[i].display_name.clone())
            .collect()
    };
    // The word in names and tags, then in a description ("a volume-weighted RSI"), then
    // the letters inside "mean_reversion", last.
    assert_eq!(
        names(&app),
        [
            "Freqtrade Aggressive RSI",
            "Freqtrade Conservative RSI",
            "RSI",
            "MFI",
            "Statistical Arbitrage Pairs Trading",
            "VWAP"
        ]
    );
    insta::assert_snapshot!("strategies_search_rsi", render(&app, 120, 16));
    // A sort chosen wins over relevance; `o` through every sort comes back to it.
    press(&mut app, &[key(KeyCode::Enter), ch('o')]);
    assert_eq!(names(&app)[0], "Freqtrade Aggressive RSI", "by Sharpe");
    assert_eq!(names(&app)[1], "Freqtrade Conservative RSI");
    press(&mut app, &[ch('o'), ch('o'), ch('o'), ch('o')]);
    assert!(app.strategies.by_relevance());
    assert_eq!(names(&app)[3], "MFI");
}

#[test]
fn snapshot_strategies_80x24_and_open_detail() {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('2'), ch('/'), ch('m'), ch('a'), ch('c')]);
    insta::assert_snapshot!("strategies_80x24_search", render(&app, 80, 24));
    press(
        &mut app,
        &[key(KeyCode::Enter), ch('g'), key(KeyCode::Enter)],
    );
    app.on_update(Update::Detail(id(MACD), Ok(Box::new(macd_data()))));
    insta::assert_snapshot!("strategies_80x24_detail", render(&app, 80, 24));
}

#[test]
fn snapshot_deployed_with_log_and_totals() {
    let mut app = with_panels(connected());
    let d = app.deployed.all[0].clone();
    app.on_update(Update::Event(Box::new(Event::BotLog(BotLog {
        deployment_id: d.deployment_id,
        strategy_id: d.strategy_id,
        lines: vec![
            "2026-11-22 10:00:01,000 - freqtrade - INFO - Bot heartbeat".into(),
            "2026-11-22 10:00:02,000 - freqtrade.exchange - WARNING - Rate limit close".into(),
            "2026-11-22 10:00:03,000 - freqtrade.worker - ERROR - Order rejected".into(),
        ],
    }))));
    let mut failed = deployment(RSI, "Freqtrade Conservative RSI", DeploymentStatus::Failed);
    failed.errors = 2;
    failed.last_error = Some("exited with code 2 three times".into());
    app.on_update(Update::Deployed(DeployedList {
        notes: Vec::new(),
        deployments: vec![failed],
    }));
    press(&mut app, &[ch('3')]);
    insta::assert_snapshot!("deployed", render(&app, 100, 24));
    insta::assert_snapshot!("deployed_wide", render(&app, 130, 24));
    insta::assert_snapshot!("deployed_80x24", render(&app, 80, 24));
    press(&mut app, &[ch('f'), ch('f'), ch('f'), ch('l')]);
    insta::assert_snapshot!("deployed_failed_filter", render(&app, 100, 24));
}

#[test]
fn snapshot_recommendations_with_breakdown() {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('4'), ch('t'), ch('v'), ch('v')]);
    app.on_update(Update::Recommendations(
        app.recommend.conditions(),
        Ok(recommendations()),
    ));
    insta::assert_snapshot!(render(&app, 100, 30));
}

#[test]
fn snapshot_recommendations_without_computed_conditions() {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('4')]);
    app.on_update(Update::Recommendations(app.recommend.conditions(), Err(Failure {
        code: Some(ErrorCode::Unavailable),
        message: "no computed market conditions yet (market data is not configured); pass `trend` and `volatility`".into(),
    })));
    insta::assert_snapshot!(render(&app, 100, 24));
}

#[test]
fn snapshot_memory_model_jobs_before_their_subsystems() {
    let mut app = with_panels(connected());
    for (n, name) in [('5', "memory"), ('6', "model"), ('7', "jobs")] {
        press(&mut app, &[ch(n)]);
        insta::assert_snapshot!(name, render(&app, 100, 16));
    }
}

#[test]
fn snapshot_jobs_with_data() {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('7'), ch('j')]);
    insta::assert_snapshot!(render(&app, 130, 22));
}

#[test]
fn snapshot_model_with_versions() {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('6')]);
    let version = |v: &str, status: &str, auc: f64, reason: &str| {
        json!({
            "version": v, "trained_at": "2026-11-22T05:00:53Z", "status": status, "reason": reason,
            "accuracy": 0.8861, "precision": 0.4728, "recall": 0.0703, "f1_score": 0.1224,
            "roc_auc": auc, "log_loss": 0.3301, "base_rate": 0.113, "baseline_accuracy": 0.887,
            "pairs": ["ETH/BTC", "LTC/BTC"], "timeframe": "5m", "train_rows": 43709, "test_rows": 10955,
            "data_from": "2018-01-10T09:00:00Z", "data_to": "2018-01-30T02:35:00Z",
            "split_at": "2018-01-25T14:25:00Z", "training_seconds": 0.38,
            "feature_importances": [["sma_5", 0.05], ["sma_20", 0.14], ["hl_range", 0.30], ["rsi", 0.05]],
            "hyper": {"n_trees": 200}
        })
    };
    app.on_update(Update::Panel(
        View::Model,
        Ok(json!({"versions": [
            version("20261122_050145", "rejected", 0.6994, "accuracy 0.8861 vs 0.8861 for 20261122_050053 on the same holdout: not 0.02 higher"),
            version("20261122_050053", "current", 0.6994, "first model: nothing to compare with"),
        ]})),
    ));
    press(&mut app, &[ch('j')]);
    insta::assert_snapshot!(render(&app, 120, 30));
}

#[test]
fn snapshot_memory_with_decisions_updated_live() {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('5')]);
    let decision = |id: &str, outcome: serde_json::Value| {
        json!({
            "id": id, "at": "2026-11-22T10:00:00Z", "strategy": "momentum", "symbol": "BTCUSDT",
            "action": "BUY", "price": 65000.0, "base_confidence": 0.65, "confidence": 0.73,
            "ml_confidence": 0.78, "memory_confidence": 0.8, "learned_pattern": "LearnedMomentumRSICombo",
            "position_size": 0.0973, "stop_loss": -1.5, "take_profit": 2.0,
            "reasoning": "momentum BUY BTCUSDT at base confidence 0.65. ML reversal 78% bullish: confirms (78% support). Pattern match with LearnedMomentumRSICombo (80% WR). Risk: Medium (volatility 1.00%).",
            "outcome": outcome
        })
    };
    app.on_update(Update::Panel(
        View::Memory,
        Ok(json!({"decisions": [decision("d1", serde_json::Value::Null)], "unreadableLines": 0})),
    ));
    // A new decision arrives, then the first one's outcome.
    let d2: mem_protocol::mem::Decision =
        serde_json::from_value(decision("d2", serde_json::Value::Null)).unwrap();
    app.on_update(Update::Event(Box::new(Event::DecisionLogged(Box::new(d2)))));
    let d1: mem_protocol::mem::Decision = serde_json::from_value(decision(
        "d1",
        json!({"decision_id": "d1", "closed_at": "2026-11-22T10:15:00Z", "exit_price": 66200.0,
               "pnl": 500.0, "pnl_pct": 0.0077, "win": true}),
    ))
    .unwrap();
    app.on_update(Update::Event(Box::new(Event::DecisionLogged(Box::new(d1)))));
    press(&mut app, &[ch('j')]);
    insta::assert_snapshot!(render(&app, 110, 24));
}

#[test]
fn snapshot_help_overlay_control_and_read_only() {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('2'), ch('?')]);
    insta::assert_snapshot!("help_strategies", render(&app, 100, 30));
    app.access = Access::View;
    insta::assert_snapshot!("help_strategies_read_only", render(&app, 100, 30));
    press(&mut app, &[ch('x')]);
    assert!(app.overlay.is_none(), "any key closes the help");
}

#[test]
fn snapshot_deploy_confirmation_dry_run_and_live() {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('2'), ch('j')]);
    app.on_update(Update::Detail(id(MACD), Ok(Box::new(macd_data()))));
    // MACD Hunter is deployed in the fixture: pick the strategy via the Recommend view
    // would say so; here use Conservative RSI with MACD's metadata loaded elsewhere.
    press(&mut app, &[ch('k'), ch('d')]);
    insta::assert_snapshot!("confirm_deploy_dry_run", render(&app, 100, 24));
    let typed: Vec<KeyEvent> = "freqtrade_cons".chars().map(ch).collect();
    press(&mut app, &[key(KeyCode::Tab)]);
    press(&mut app, &typed);
    insta::assert_snapshot!("confirm_deploy_live", render(&app, 100, 24));
}

#[test]
fn snapshot_error_status_line() {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('3')]);
    app.on_update(Update::Done(Err(
        "deploy failed: Strategy 186062cd-e0f7-45eb-b387-3067360efe34 is already deployed".into(),
    )));
    insta::assert_snapshot!(render(&app, 100, 12));
}

#[test]
fn snapshot_disconnected_keeps_the_last_data_greyed() {
    let mut app = with_panels(connected());
    app.on_update(Update::Disconnected {
        reason: "the daemon closed the connection".into(),
        retry_in: Duration::from_secs(4),
    });
    insta::assert_snapshot!(render(&app, 100, 16));
    // Greyed: every cell of the body is drawn dim.
    let mut terminal = Terminal::new(TestBackend::new(100, 16)).unwrap();
    terminal
        .draw(|f| view::draw(f, &app, Theme { color: true }))
        .unwrap();
    let buffer = terminal.backend().buffer();
    let cell = &buffer[(10, 5)];
    assert_eq!(cell.fg, ratatui::style::Color::DarkGray);
}

#[test]
fn snapshot_too_small() {
    let app = connected();
    insta::assert_snapshot!(render(&app, 30, 6));
}

#[test]
fn no_color_draws_without_colours() {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('3')]);
    let mut terminal = Terminal::new(TestBackend::new(100, 24)).unwrap();
    terminal
        .draw(|f| view::draw(f, &app, Theme { color: false }))
        .unwrap();
    let buffer = terminal.backend().buffer();
    for cell in buffer.content() {
        assert_eq!(cell.fg, ratatui::style::Color::Reset, "{cell:?}");
        assert_eq!(cell.bg, ratatui::style::Color::Reset, "{cell:?}");
    }
}

// ---- the parameter editor ----

/// The Strategies view on MACD Hunter (detail loaded) with its parameter editor open.
fn editor_on_macd() -> App {
    let mut app = with_panels(connected());
    press(&mut app, &[ch('2'), ch('j')]);
    app.on_update(Update::Detail(id(MACD), Ok(Box::new(macd_data()))));
    let commands = press(&mut app, &[ch('p')]);
    assert_eq!(
        commands,
        vec![Command::LoadParameterHistory(id(MACD))],
        "the detail is here: only the history is asked for"
    );
    let history: mem_protocol::registry::ParameterHistory = serde_json::from_value(json!({
        "changes": [
            {"strategy_id": MACD, "parameter_name": "stoploss", "old_value": -0.1, "new_value": -0.08,
             "change_reason": "backtest of October", "changed_by": "optimisation",
             "changed_at": "2026-11-01T09:00:00Z"},
            {"strategy_id": MACD, "parameter_name": "macd_fast", "old_value": 10, "new_value": 12,
             "change_reason": "seed value", "changed_by": "manual", "changed_at": "2026-11-02T09:00:00Z"}
        ]
    }))
    .unwrap();
    app.on_update(Update::ParameterHistory(id(MACD), Ok(history)));
    app
}

#[test]
fn the_parameter_editor_sends_a_typed_value_with_its_reason() {
    let mut app = editor_on_macd();
    // Parameters in name order: macd_fast, macd_signal, macd_slow, minimal_roi, stoploss.
    press(&mut app, &[ch('G')]);
    let editor = app.strategies.editor.as_ref().unwrap();
    assert_eq!(editor.selected_row(&app).unwrap().name, "stoploss");
    // Enter edits; `q`, `j` and digits are text now, not keys.
    press(&mut app, &[key(KeyCode::Enter)]);
    let typed: Vec<KeyEvent> = "-0.05".chars().map(ch).collect();
    press(&mut app, &typed);
    // Enter with no reason moves to the reason; Enter again without one is refused.
    assert!(press(&mut app, &[key(KeyCode::Enter), key(KeyCode::Enter)]).is_empty());
    let edit = app
        .strategies
        .editor
        .as_ref()
        .unwrap()
        .edit
        .clone()
        .unwrap();
    assert!(edit.on_reason && edit.error.unwrap().contains("reason"));
    let reason: Vec<KeyEvent> = "quieter market".chars().map(ch).collect();
    press(&mut app, &reason);
    let commands = press(&mut app, &[key(KeyCode::Enter)]);
    assert_eq!(
        commands,
        vec![Command::UpdateParameter(
            mem_protocol::registry::UpdateParameterParams {
                id: id(MACD),
                name: "stoploss".into(),
                value: json!(-0.05),
                reason: "quieter market".into(),
                changed_by: mem_protocol::registry::ChangedBy::Manual,
                is_ab_test: false,
                ab_test_group: None,
            }
        )]
    );
    assert!(app.strategies.editor.as_ref().unwrap().pending);
    // A second Enter while it is on its way sends nothing.
    assert!(press(&mut app, &[key(KeyCode::Enter)]).is_empty());

    // The daemon's answer: the change and what it did; the history is asked for again.
    let update: mem_protocol::registry::ParameterUpdate = serde_json::from_value(json!({
        "strategy_id": MACD, "parameter_name": "stoploss", "old_value": -0.08, "new_value": -0.05,
        "change_reason": "quieter market", "changed_by": "manual", "changed_at": "2026-11-22T10:30:00Z",
        "applied": ["Freqtrade config key `stoploss`: deployment 00000000 config has stoploss = -0.05 and the bot was told to reload it"]
    }))
    .unwrap();
    let commands = app.on_update(Update::ParameterUpdated(id(MACD), Ok(update)));
    assert_eq!(
        commands,
        vec![
            Command::LoadParameterHistory(id(MACD)),
            Command::LoadDetail(id(MACD))
        ]
    );
    let editor = app.strategies.editor.as_ref().unwrap();
    assert!(editor.edit.is_none() && !editor.pending);
    let (tone, text) = editor.message.clone().unwrap();
    assert_eq!(tone, Tone::Success);
    assert!(
        text.starts_with("stoploss: -0.08 -> -0.05 · Freqtrade config key"),
        "{text}"
    );
    // Esc closes the editor; the Strategies table has the keys again.
    press(&mut app, &[key(KeyCode::Esc)]);
    assert!(app.strategies.editor.is_none());
    assert_eq!(app.view, View::Strategies);
    assert!(!app.quit);
}

#[test]
fn the_daemons_refusal_stays_in_the_edit_and_esc_backs_out_step_by_step() {
    let mut app = editor_on_macd();
    press(&mut app, &[ch('j'), ch('j'), key(KeyCode::Enter)]);
    let keys: Vec<KeyEvent> = "500".chars().map(ch).collect();
    press(&mut app, &keys);
    press(
        &mut app,
        &[key(KeyCode::Enter), ch('x'), key(KeyCode::Enter)],
    );
    app.on_update(Update::ParameterUpdated(
        id(MACD),
        Err(Failure {
            code: Some(ErrorCode::InvalidParams),
            message: "invalid params for `strategies.parameters.update`: value (parameter macd_slow): 500 is outside the declared range 5 .. 100: above the maximum 100".into(),
        }),
    ));
    let edit = app
        .strategies
        .editor
        .as_ref()
        .unwrap()
        .edit
        .clone()
        .unwrap();
    assert_eq!((edit.value.as_str(), edit.reason.as_str()), ("500", "x"));
    assert_eq!(
        edit.error.as_deref(),
        Some(
            "memd: value (parameter macd_slow): 500 is outside the declared range 5 .. 100: above the maximum 100"
        )
    );
    // Backspace and Tab edit the value again.
    press(&mut app, &[key(KeyCode::Tab), key(KeyCode::Backspace)]);
    assert_eq!(
        app.strategies
            .editor
            .as_ref()
            .unwrap()
            .edit
            .as_ref()
            .unwrap()
            .value,
        "50"
    );
    // Esc cancels the edit; a second Esc closes the editor (and does not quit).
    press(&mut app, &[key(KeyCode::Esc)]);
    let editor = app.strategies.editor.as_ref().unwrap();
    assert!(editor.edit.is_none());
    press(&mut app, &[key(KeyCode::Esc)]);
    assert!(app.strategies.editor.is_none() && !app.quit);
}

#[test]
fn a_read_only_session_sees_the_editor_but_cannot_edit() {
    let mut app = editor_on_macd();
    app.access = Access::View;
    assert!(press(&mut app, &[key(KeyCode::Enter)]).is_empty());
    let editor = app.strategies.editor.as_ref().unwrap();
    assert!(editor.edit.is_none());
    let (tone, text) = editor.message.clone().unwrap();
    assert_eq!(tone, Tone::Error);
    assert!(text.starts_with("read-only session"), "{text}");
    insta::assert_snapshot!("param_editor_read_only", render(&app, 100, 30));
}

#[test]
fn a_lost_connection_ends_a_pending_change() {
    let mut app = editor_on_macd();
    press(
        &mut app,
        &[key(KeyCode::Enter), ch('9'), key(KeyCode::Enter), ch('x')],
    );
    assert_eq!(press(&mut app, &[key(KeyCode::Enter)]).len(), 1);
    app.on_update(Update::Disconnected {
        reason: "gone".into(),
        retry_in: Duration::from_secs(1),
    });
    let editor = app.strategies.editor.as_ref().unwrap();
    assert!(!editor.pending);
    assert!(
        editor
            .edit
            .as_ref()
            .unwrap()
            .error
            .as_deref()
            .unwrap()
            .contains("not connected")
    );
}

#[test]
fn snapshot_parameter_editor() {
    let mut app = editor_on_macd();
    press(&mut app, &[ch('G')]);
    insta::assert_snapshot!("param_editor", render(&app, 100, 30));
    press(&mut app, &[key(KeyCode::Enter)]);
    insta::assert_snapshot!("param_editor_edit_empty", render(&app, 100, 30));
    let keys: Vec<KeyEvent> = "-0.9".chars().map(ch).collect();
    press(&mut app, &keys);
    press(&mut app, &[key(KeyCode::Enter)]);
    let keys: Vec<KeyEvent> = "cut losses sooner".chars().map(ch).collect();
    press(&mut app, &keys);
    press(&mut app, &[key(KeyCode::Enter)]);
    app.on_update(Update::ParameterUpdated(
        id(MACD),
        Err(Failure {
            code: Some(ErrorCode::InvalidParams),
            message: "invalid params for `strategies.parameters.update`: value (parameter stoploss): -0.9 is outside the declared range -0.5 .. -0.005: below the minimum -0.5".into(),
        }),
    ));
    insta::assert_snapshot!("param_editor_refused", render(&app, 100, 30));
    // 80x24 still shows the list, the selected one, and the edit.
    insta::assert_snapshot!("param_editor_80x24", render(&app, 80, 24));
    // While editing, `?` is text; from the list it is the help.
    press(&mut app, &[key(KeyCode::Esc), ch('?')]);
    insta::assert_snapshot!("param_editor_help", render(&app, 100, 30));
}

// ---- no polling: the snapshot, then the daemon's periodic events ----

/// The line of `screen` that mentions `text`.
fn line_of<'a>(screen: &'a str, text: &str) -> &'a str {
    screen.lines().find(|l| l.contains(text)).unwrap_or("")
}

#[test]
fn a_snapshot_of_every_topic_leaves_nothing_to_ask_but_todays_pnl() {
    let mut app = App::new(now());
    let decisions = json!({"decisions": [], "unreadableLines": 0});
    let history = json!({"versions": []});
    let commands = app.on_update(Update::Connected {
        access: Access::Control,
        status: Box::new(status()),
        strategies: strategies(),
        deployed: DeployedList {
            notes: Vec::new(),
            deployments: vec![deployment(
                MACD,
                "Freqtrade MACD Hunter",
                DeploymentStatus::Running,
            )],
        },
        metrics: Some(Box::new(metrics_sample())),
        panels: vec![
            (View::Memory, decisions.clone()),
            (View::Model, history),
            (View::Jobs, jobs_sample()),
        ],
        queue: Some(queue_sample()),
    });
    // No `strategies.deployed`, `mem.decisions` or `jobs.list`: the snapshot had them.
    assert_eq!(commands, [Command::LoadTodayPnl(vec![id(MACD)])]);
    assert_eq!(app.panels[&View::Memory].data, Some(Ok(decisions)));
    let screen = render(&app, 100, 30);
    assert!(screen.contains("decisions/h 42"), "{screen}");
    assert!(screen.contains("jobs · next run"), "{screen}");
    assert!(!screen.contains("loading..."), "{screen}");
}

/// A `daemon.pulse`: a busy host, 5 connections.
fn pulse_sample() -> mem_protocol::events::DaemonPulse {
    serde_json::from_value(json!({
        "uptimeSecs": 9002,
        "counts": {"strategies": 3, "strategiesByStatus": {"active": 2, "experimental": 1},
                   "registryErrors": 1, "connections": 5, "subscribers": 2},
        "host": {"hostname": "trader-01", "cpuCount": 2, "cpuPercent": 97.0,
                 "memoryTotalBytes": 4294967296u64, "memoryUsedBytes": 3221225472u64,
                 "loadAverage": [1.5, 1.0, 0.5]},
        "process": {"rssBytes": 41943040u64, "cpuPercent": 7.5}
    }))
    .unwrap()
}

#[test]
fn the_figures_change_with_the_periodic_events_alone() {
    let mut app = with_panels(connected());
    let before = render(&app, 100, 30);
    assert!(
        before.contains("memd process 0.4% CPU, 30.0M · 2 clients"),
        "{before}"
    );
    // daemon.pulse: the daemon's and the host's figures; the rest of the status stays.
    let events = [
        Event::DaemonPulse(Box::new(pulse_sample())),
        Event::MemMetrics(Box::new(metrics_sample())),
    ];
    for event in events {
        let commands = app.on_update(Update::Event(Box::new(event)));
        assert!(commands.is_empty(), "no request follows: {commands:?}");
    }
    let screen = render(&app, 100, 30);
    for (text, why) in [
        (
            "memd process 7.5% CPU, 40.0M · 5 clients",
            "the process and the clients",
        ),
        ("at 97% · load 1.50 1.00 0.50", "the host's CPU and load"),
        ("memory 3.0G / 4.0G (75%)", "the host's memory"),
        (
            "3 strategies (1 unread",
            "the counts (cut at the panel's edge)",
        ),
        ("memd 0.1.0 · pid 4242", "what the snapshot said stays"),
        ("decisions/h 42", "MEM's figures"),
    ] {
        assert!(screen.contains(text), "{why}: {text:?} in\n{screen}");
    }

    // deployments.usage: the bot's CPU and memory, kept by the deployment.changed after.
    let deployment_id = app.deployed.all[0].deployment_id;
    let usage = Event::DeploymentsUsage(DeploymentsUsage {
        deployments: vec![DeploymentUsage {
            deployment_id,
            cpu_percent: 42.5,
            rss_bytes: 200 << 20,
        }],
    });
    assert!(app.on_update(Update::Event(Box::new(usage))).is_empty());
    let mut changed = deployment(MACD, "Freqtrade MACD Hunter", DeploymentStatus::Running);
    (changed.cpu_percent, changed.rss_bytes) = (None, None);
    app.on_update(Update::Event(Box::new(Event::DeploymentChanged(Box::new(
        DeploymentChanged {
            deployment: changed,
        },
    )))));
    press(&mut app, &[ch('3')]);
    let screen = render(&app, 120, 30);
    let row = line_of(&screen, "Freqtrade MACD Hunter");
    assert!(row.contains("42.5%") && row.contains("200.0M"), "{screen}");
}

// ---- keys.toml ----

#[test]
fn keys_toml_changes_a_key_and_the_help_and_hints_follow() {
    let mut app = connected();
    app.keys = keys::Keymap::from_toml("[keys]\ndeploy = [\"D\"]\nfilter = \"F\"\nhelp = \"h\"\n")
        .unwrap();
    press(&mut app, &[ch('2')]);
    let screen = render(&app, 100, 30);
    let footer = screen.lines().last().unwrap();
    assert!(
        footer.contains(" h help ")
            && footer.contains(" F filter ")
            && footer.contains(" D deploy "),
        "{footer}"
    );
    assert!(
        line_of(&screen, "ready · ").contains("h lists the keys"),
        "{screen}"
    );
    // The old keys do nothing; `?` is not the help any more.
    press(&mut app, &[ch('d'), ch('f'), ch('?')]);
    assert!(app.overlay.is_none());
    assert_eq!(app.strategies.filter(), StrategyFilter::All);
    press(&mut app, &[ch('h')]);
    let help = render(&app, 100, 30);
    assert!(
        line_of(&help, "deploy (dry-run unless you choose live)").contains("│  D "),
        "{help}"
    );
    assert!(
        line_of(&help, "filter: all, active").contains("│  F "),
        "{help}"
    );
    // Keys not named keep their defaults.
    assert!(
        line_of(&help, "sort: name, Sharpe").contains("│  o "),
        "{help}"
    );
    press(&mut app, &[ch('x'), ch('F')]);
    assert_eq!(app.strategies.filter(), StrategyFilter::Active);
    press(
        &mut app,
        &[
            ch('f'),
            KeyEvent::new(KeyCode::Char('F'), KeyModifiers::SHIFT),
        ],
    );
    assert_eq!(app.strategies.filter(), StrategyFilter::MemEnabled);
}

#[test]
fn a_rebound_quit_is_text_in_a_search() {
    let mut app = connected();
    app.keys = keys::Keymap::from_toml("[keys]\nquit = \"z\"\n").unwrap();
    press(&mut app, &[ch('2'), ch('/'), ch('z')]);
    assert!(!app.quit, "z is typed into the search");
    assert_eq!(app.strategies.search, "z");
    press(&mut app, &[key(KeyCode::Enter), ch('z')]);
    assert!(app.quit);
}

// ---- issue 22: a trader's first ten minutes ----

const NATIVE_RSI: &str = "0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d62";

/// The seed's native RSI as the registry lists it.
fn native_summary() -> StrategySummary {
    let mut s = summary(NATIVE_RSI, "native_rsi", "RSI", "mean_reversion", 0.9, 0.55);
    s.language = "rust".into();
    s
}

/// A native deployment trading `pair` on paper, its stats in the quote currency.
fn native_deployment(status: DeploymentStatus, pair_quote: &str) -> DeployedStrategy {
    let mut d = deployment(NATIVE_RSI, "RSI", status);
    d.deployment_type = DeploymentType::Native;
    d.process_id = None;
    d.port = None;
    d.cpu_percent = None;
    d.rss_bytes = None;
    d.warnings = 0;
    d.stats.stake_currency = Some(pair_quote.into());
    d.stats.balance = Some(1000.0);
    d.stats.profit_all = 0.0123;
    d.stats.open_trades = 1;
    d
}

fn changed(app: &mut App, d: &DeployedStrategy) -> Vec<Command> {
    app.on_update(Update::Event(Box::new(Event::DeploymentChanged(Box::new(
        DeploymentChanged {
            deployment: d.clone(),
        },
    )))))
}

#[test]
fn a_failure_stays_in_the_default_lists_until_a_acknowledges_it() {
    let mut app = connected();
    // A dry-run bot that failed, one acknowledged earlier, and a stopped one.
    let mut failed = deployment(RSI, "Freqtrade Conservative RSI", DeploymentStatus::Failed);
    failed.deployment_id = DeploymentId::new_random();
    failed.last_error = Some("the bot's API never answered within 60 s".into());
    let mut old = failed.clone();
    old.deployment_id = DeploymentId::new_random();
    old.acknowledged = true;
    let mut stopped = deployment(RSI, "Freqtrade Conservative RSI", DeploymentStatus::Stopped);
    stopped.deployment_id = DeploymentId::new_random();
    for d in [&failed, &old, &stopped] {
        changed(&mut app, d);
    }
    press(&mut app, &[ch('3')]);
    let listed = |app: &App| -> Vec<DeploymentId> {
        app.deployed
            .rows()
            .iter()
            .map(|d| d.deployment_id)
            .collect()
    };
    assert_eq!(app.deployed.filter(), DeployFilter::Active);
    assert_eq!(
        listed(&app),
        [app.deployed.all[0].deployment_id, failed.deployment_id],
        "the running bot and the unacknowledged failure"
    );
    // The dry-run filter keeps the failure (it was a dry-run bot); the live one does not.
    press(&mut app, &[ch('f')]);
    assert_eq!(app.deployed.filter(), DeployFilter::DryRun);
    assert!(listed(&app).contains(&failed.deployment_id));
    press(&mut app, &[ch('f')]);
    assert_eq!(app.deployed.filter(), DeployFilter::Live);
    assert!(listed(&app).is_empty());
    press(&mut app, &[ch('f'), ch('f'), ch('f')]);
    assert_eq!(app.deployed.filter(), DeployFilter::Active);

    // `a` on the running bot: only an ended deployment can be acknowledged.
    assert!(press(&mut app, &[ch('a')]).is_empty());
    assert!(
        app.status_line
            .as_ref()
            .unwrap()
            .text
            .contains("only a deployment that ended can be acknowledged"),
        "{:?}",
        app.status_line
    );
    // On the failure: the daemon is asked.
    press(&mut app, &[ch('j')]);
    let c = press(&mut app, &[ch('a')]);
    assert_eq!(c, [Command::Acknowledge(failed.deployment_id)]);
    // Its acknowledgement comes back as a change: it leaves the default list.
    failed.acknowledged = true;
    changed(&mut app, &failed);
    assert_eq!(listed(&app), [app.deployed.all[0].deployment_id]);
    // A read-only session cannot acknowledge.
    let mut app = connected();
    app.access = Access::View;
    failed.acknowledged = false;
    changed(&mut app, &failed);
    press(&mut app, &[ch('3'), ch('j')]);
    let c = press(&mut app, &[ch('a')]);
    assert!(c.is_empty(), "{c:?}");
    assert!(app.status_line.as_ref().unwrap().text.contains("read-only"));
}

#[test]
fn a_dead_process_keeps_no_figures() {
    let mut app = connected();
    let mut d = app.deployed.all[0].clone();
    assert_eq!(d.cpu_percent, Some(1.5));
    // A change of a running bot keeps the last CPU and memory (no event carries them).
    d.cpu_percent = None;
    d.rss_bytes = None;
    changed(&mut app, &d);
    assert_eq!(app.deployed.all[0].cpu_percent, Some(1.5));
    // It failed: no figures any more, and the table says "-" for its pid, CPU, memory.
    d.status = DeploymentStatus::Failed;
    d.last_error = Some("gave up after 5 restarts".into());
    changed(&mut app, &d);
    assert_eq!(app.deployed.all[0].cpu_percent, None);
    assert_eq!(app.deployed.all[0].rss_bytes, None);
    press(&mut app, &[ch('3')]);
    let screen = render(&app, 130, 24);
    let row = line_of(&screen, "✗ Freqtrade MACD Hunter");
    assert!(!row.contains("31337") && !row.contains('%'), "{row}");
    assert!(!row.contains("320.0M") && !row.contains("8083"), "{row}");
    assert!(screen.contains("gave up after 5 restarts"), "{screen}");
}

#[test]
fn snapshot_deployed_totals_per_currency_and_a_failure() {
    let mut app = with_panels(connected());
    let mut strategies = strategies();
    strategies.push(Arc::new(native_summary()));
    app.strategies.replace_all(strategies);
    let running = native_deployment(DeploymentStatus::Running, "BTC");
    let mut failed = native_deployment(DeploymentStatus::Failed, "BTC");
    failed.deployment_id = DeploymentId::new_random();
    failed.started_at = "2026-11-22T09:00:00Z".parse().unwrap();
    failed.last_error = Some(
        "ETH_BTC-5m.feather: the file was replaced by one whose candles go back in time (2018-01-31 23:55 after 2018-02-01 00:00): the feed cannot continue from its last candle; deploy it again to start over".into(),
    );
    changed(&mut app, &running);
    changed(&mut app, &failed);
    press(&mut app, &[ch('3')]);
    let screen = render(&app, 120, 30);
    // 1015.25 USDT and 1000 BTC are never one balance.
    assert!(!screen.contains("2015"), "{screen}");
    assert!(
        line_of(&screen, "total USDT, 1 active").contains("balance 1015"),
        "{screen}"
    );
    let btc = line_of(&screen, "total BTC, 1 active");
    assert!(
        btc.contains("0.0123") && btc.contains("balance 1000"),
        "{btc}"
    );
    insta::assert_snapshot!("deployed_two_currencies_and_a_failure", screen);
    // The failure (the first row) selected: its whole error in the log pane.
    assert!(app.deployed.selected().unwrap().needs_acknowledgement());
    insta::assert_snapshot!("deployed_failure_selected_80x24", render(&app, 80, 24));
    // The Dashboard's figures, per currency too.
    app.on_update(Update::TodayPnl(vec![
        (id(MACD), 12.5),
        (id(NATIVE_RSI), 0.0042),
    ]));
    press(&mut app, &[ch('1')]);
    let screen = render(&app, 120, 30);
    assert!(
        line_of(&screen, "P&L today").contains("12.50 USDT · 0.0042 BTC"),
        "{screen}"
    );
    assert!(
        line_of(&screen, "bots profit").contains("15.25 USDT · 0.0123 BTC"),
        "{screen}"
    );
    assert!(
        line_of(&screen, "running ·").contains("1 failed"),
        "{screen}"
    );
    // The native bot closed a trade: its P&L alone is asked again (not every strategy's:
    // 50 bots were 50 calls for one trade); the others keep theirs.
    let mut traded = running.clone();
    traded.stats.closed_trades += 1;
    let commands = app.on_update(Update::Event(Box::new(Event::DeploymentChanged(Box::new(
        DeploymentChanged { deployment: traded },
    )))));
    assert_eq!(commands, [Command::LoadTodayPnl(vec![id(NATIVE_RSI)])]);
    app.on_update(Update::TodayPnl(vec![(id(NATIVE_RSI), 0.005)]));
    let screen = render(&app, 120, 30);
    assert!(
        line_of(&screen, "P&L today").contains("12.50 USDT · 0.005 BTC"),
        "{screen}"
    );
    // Past midnight UTC, the next pulse asks for every strategy's P&L of the new day.
    let pulse = || Update::Event(Box::new(Event::DaemonPulse(Box::new(pulse_sample()))));
    assert!(app.on_update(pulse()).is_empty(), "the same day");
    app.on_tick(now() + chrono::Duration::days(1));
    assert_eq!(
        app.on_update(pulse()),
        [Command::LoadTodayPnl(vec![id(NATIVE_RSI), id(MACD)])], // sorted by id
    );
    assert!(app.on_update(pulse()).is_empty(), "once a day");
}

#[test]
fn amounts_keep_the_digits_their_currency_needs() {
    use super::view::{amount, balance};
    assert_eq!(amount(15.254, Some("USDT")), "15.25");
    assert_eq!(amount(-0.0, None), "0.00");
    assert_eq!(amount(0.0123, Some("BTC")), "0.0123");
    assert_eq!(amount(0.5, Some("BTC")), "0.50");
    assert_eq!(amount(-0.000_123_4, Some("ETH")), "-0.000123");
    assert_eq!(amount(12.345_67, Some("BTC")), "12.3457");
    assert_eq!(balance(1015.25, Some("USDT")), "1015");
    assert_eq!(balance(0.25, Some("BTC")), "0.25");
}

/// `market.feed`'s answer for the seed's candles: a file whose newest candle is years old.
fn feed(pair: &str, mode: FeedMode) -> FeedInfo {
    let file = format!("{}-5m.feather", pair.replace('/', "_"));
    FeedInfo {
        pair: pair.into(),
        timeframe: "5m".into(),
        path: format!("/var/lib/memd/market/{file}"),
        file,
        mode,
        candles: 21_000,
        first_candle: Some("2017-11-14T00:00:00Z".parse().unwrap()),
        newest_candle: Some("2018-01-31T23:55:00Z".parse().unwrap()),
        modified_at: Some("2026-11-22T08:00:00Z".parse().unwrap()),
        pairs: vec!["ETH/BTC".into(), "LTC/BTC".into(), "XMR/BTC".into()],
    }
}

fn asked(pair: Option<&str>) -> FeedParams {
    FeedParams {
        id: Some(id(NATIVE_RSI)),
        pair: pair.map(str::to_string),
        timeframe: None,
        file: None,
    }
}

#[test]
fn a_native_deploy_asks_the_pair_and_the_mode_and_says_what_following_waits_for() {
    let mut app = with_panels(connected());
    let mut strategies = strategies();
    strategies.push(Arc::new(native_summary()));
    app.strategies.replace_all(strategies);
    press(&mut app, &[ch('2'), key(KeyCode::End)]);
    assert_eq!(app.strategies.selected().unwrap().id, id(NATIVE_RSI));
    let c = press(&mut app, &[ch('d')]);
    assert!(c.contains(&Command::LoadFeed(asked(None))), "{c:?}");
    let reading = render(&app, 100, 30);
    assert!(reading.contains("reading the candle file"), "{reading}");
    assert!(!reading.contains("Port"), "no port for a native strategy");
    app.on_update(Update::Feed(
        asked(None),
        Ok(feed("ETH/BTC", FeedMode::Follow)),
    ));
    let screen = render(&app, 100, 30);
    insta::assert_snapshot!("confirm_deploy_native_follow_stale", screen);
    assert!(
        screen.contains("inside memd, on paper (never live)"),
        "{screen}"
    );
    assert!(
        screen.contains("2018-01-31 23:55 UTC (8 years old)"),
        "{screen}"
    );
    assert!(
        screen.contains("follow: waits for new candles in ETH_BTC-5m.feather"),
        "{screen}"
    );
    assert!(screen.contains("never come"), "{screen}");
    assert!(
        !screen.contains("LIVE") && !screen.contains("dry-run"),
        "{screen}"
    );

    // Tab: replay, and no warning.
    press(&mut app, &[key(KeyCode::Tab)]);
    let screen = render(&app, 100, 30);
    assert!(line_of(&screen, "Feed").contains("replay"), "{screen}");
    assert!(!screen.contains("never come"), "{screen}");
    // → : the next pair, read again; a late answer for the old pair is ignored.
    let c = press(&mut app, &[key(KeyCode::Right)]);
    assert_eq!(c, [Command::LoadFeed(asked(Some("LTC/BTC")))]);
    app.on_update(Update::Feed(
        asked(None),
        Ok(feed("ETH/BTC", FeedMode::Follow)),
    ));
    assert!(render(&app, 100, 30).contains("reading the candle file"));
    app.on_update(Update::Feed(
        asked(Some("LTC/BTC")),
        Ok(feed("LTC/BTC", FeedMode::Follow)),
    ));
    // Enter deploys what the dialog showed: that file, that pair, replay, on paper.
    let c = press(&mut app, &[key(KeyCode::Enter)]);
    let [Command::Deploy(p)] = &c[..] else {
        panic!("{c:?}");
    };
    assert!(p.dry_run && p.port.is_none());
    let native = p.native.as_ref().unwrap();
    assert_eq!(native.pair.as_deref(), Some("LTC/BTC"));
    assert_eq!(native.file.as_deref(), Some("LTC_BTC-5m.feather"));
    assert_eq!(native.mode, Some(FeedMode::Replay));
    assert!(app.overlay.is_none());
}

#[test]
fn a_native_deploy_that_cannot_read_its_file_says_why_and_sends_nothing() {
    let mut app = connected();
    let mut strategies = strategies();
    strategies.push(Arc::new(native_summary()));
    app.strategies.replace_all(strategies);
    press(&mut app, &[ch('2'), key(KeyCode::End), ch('d')]);
    app.on_update(Update::Feed(
        asked(None),
        Err("no candle file for BTC/USDT 5m in /var/lib/memd/market".into()),
    ));
    assert!(render(&app, 100, 30).contains("no candle file for BTC/USDT"));
    let c = press(&mut app, &[key(KeyCode::Enter)]);
    assert!(c.is_empty(), "{c:?}");
    assert!(
        app.status_line
            .as_ref()
            .unwrap()
            .text
            .starts_with("cannot deploy: no candle file")
    );
    // A fresh candle file: following is no warning.
    let mut fresh = feed("BTC/USDT", FeedMode::Follow);
    fresh.newest_candle = Some(now() - chrono::Duration::minutes(3));
    assert!(!super::native_deploy::is_stale(&fresh, now()));
    assert!(super::native_deploy::is_stale(
        &feed("ETH/BTC", FeedMode::Follow),
        now()
    ));
}

#[test]
fn recommend_says_exactly_what_the_scores_were_computed_with() {
    let mut app = with_panels(connected());
    // `t` alone: the daemon scores the trend chosen with the default volatility.
    press(&mut app, &[ch('4'), ch('t')]);
    let asked = app.recommend.conditions();
    assert_eq!(asked.volatility, None);
    app.on_update(Update::Recommendations(asked, Ok(recommendations())));
    let screen = render(&app, 100, 30);
    insta::assert_snapshot!("recommend_trend_chosen_volatility_default", screen);
    let chooser = line_of(&screen, " trend bullish (t)");
    assert!(chooser.contains("volatility not chosen"), "{chooser}");
    assert!(!chooser.contains("computed (v)"), "{chooser}");
    assert!(
        line_of(&screen, "scored with").contains(
            "trend bullish (chosen), volatility medium (the default: no volatility chosen)"
        ),
        "{screen}"
    );

    // `c`: computed conditions, their reasons cut in the header, whole in the messages.
    press(&mut app, &[ch('c')]);
    let mut computed = recommendations();
    computed.message = "MEM recommends 2 strategies for bearish trend with low volatility".into();
    computed.conditions = AppliedConditions {
        trend: Trend::Bearish,
        volatility: Volatility::Low,
        vix: None,
        indicators: Default::default(),
        source: ConditionsSource::Computed,
        computed: Some(Box::new(mem_protocol::recommend::ConditionsReport {
            pair: "ETH/BTC".into(),
            timeframe: "1h".into(),
            trend: Trend::Bearish,
            volatility: Volatility::Low,
            trend_reason: "close 0.0924 is 1.8% below its 50-candle SMA 0.0941 and the 20-candle SMA slopes down 0.6% over 5 candles".into(),
            volatility_reason: "ATR 14 is 0.52% of the close, under the 1.0% low mark, and Bollinger width 2.1% is in its lowest quartile over 100 candles".into(),
            indicators: Default::default(),
            candle_ts_ms: 1_517_443_200_000,
            candles: 1750,
            freshness: mem_protocol::market::Freshness {
                as_of: "2018-02-01T01:00:00Z".parse().unwrap(),
                age_secs: 0,
                stale: true,
                stale_after_secs: 10_800,
                demo: true,
            },
        })),
    };
    app.on_update(Update::Recommendations(
        app.recommend.conditions(),
        Ok(computed),
    ));
    let screen = render(&app, 100, 30);
    assert!(
        line_of(&screen, "scored with")
            .contains("trend bearish, volatility low, computed from the ETH/BTC 1h candles"),
        "{screen}"
    );
    assert!(line_of(&screen, " trend computed (t)").contains("volatility computed"));
    // How old the candles are, at the screen's clock, and that they are the demo's.
    assert!(
        screen.contains("the data as of 2018-02-01 01:00 UTC, 8 years old · STALE · demo data"),
        "{screen}"
    );
    press(&mut app, &[ch('m')]);
    let screen = render(&app, 100, 30);
    insta::assert_snapshot!("messages_overlay", screen);
    assert!(screen.contains("Bollinger width 2.1%"), "{screen}");
    // Any other key closes it.
    press(&mut app, &[ch('x')]);
    assert!(app.overlay.is_none());
}

#[test]
fn an_error_leaves_the_status_line_after_ten_seconds_but_stays_in_the_messages() {
    let mut app = with_panels(connected());
    app.on_update(Update::Done(Err(
        "deploy failed: strategy 186062cd-e0f7-45eb-b387-3067360efe34 is already deployed".into(),
    )));
    assert!(app.visible_status().is_some());
    app.on_tick(now() + chrono::Duration::seconds(9));
    assert!(app.visible_status().is_some(), "still fresh");
    app.on_tick(now() + chrono::Duration::seconds(11));
    assert!(app.visible_status().is_none());
    let screen = render(&app, 100, 30);
    let status = screen.lines().nth(28).unwrap();
    assert!(
        status.contains("ready · m shows the messages (an error at 10:30:00)"),
        "{status}"
    );
    assert!(!status.contains("already deployed"), "{status}");
    // The next success replaces it at once; both are in the messages, newest first.
    app.on_update(Update::Done(Ok("stopped Freqtrade MACD Hunter".into())));
    assert!(app.visible_status().unwrap().text.starts_with("stopped"));
    press(&mut app, &[ch('m')]);
    let screen = render(&app, 100, 30);
    let newest = screen.find("stopped Freqtrade MACD Hunter").unwrap();
    let older = screen.find("already deployed").unwrap();
    assert!(newest < older, "{screen}");
    // Movement scrolls (to the older one), within the list.
    press(&mut app, &[ch('j'), ch('j'), ch('j')]);
    assert_eq!(app.overlay, Some(Overlay::Messages { scroll: 1 }));
    let screen = render(&app, 100, 30);
    let overlay: Vec<&str> = screen.lines().take(28).collect();
    assert!(
        !overlay.concat().contains("stopped Freqtrade MACD Hunter"),
        "{screen}"
    );
    assert!(overlay.concat().contains("already deployed"), "{screen}");
}

#[test]
fn the_dashboard_speaks_in_words_not_protocol_names() {
    let mut app = with_panels(connected());
    app.on_update(Update::Panel(
        View::Memory,
        Ok(json!({"decisions": [{
            "id": "d1", "at": "2026-11-22T10:05:00Z", "strategy": "native_rsi", "symbol": "ETH/BTC",
            "action": "BUY", "price": 0.0924, "base_confidence": 0.41, "confidence": 0.49,
            "ml_confidence": null, "memory_confidence": 0.59, "learned_pattern": null,
            "position_size": 0.1789, "stop_loss": -0.54, "take_profit": 0.72,
            "reasoning": "native_rsi BUY ETH/BTC at base confidence 0.41.",
            "outcome": {"decision_id": "d1", "closed_at": "2026-11-22T10:20:00Z",
                        "exit_price": 0.0929, "pnl": 0.85, "pnl_pct": 0.0047, "win": true}
        }], "unreadableLines": 0})),
    ));
    app.on_update(Update::Event(Box::new(Event::MemoryChanged(
        mem_protocol::mem::MemoryChanged {
            file: "parameter_updates.json".into(),
            applied: true,
            error: None,
            summary: Some("parameters of 1 strategies in force".into()),
        },
    ))));
    let screen = render(&app, 100, 30);
    insta::assert_snapshot!("dashboard_decisions_in_words", screen);
    let decision = line_of(&screen, "10:05");
    assert!(
        decision.contains("buy") && decision.contains("ETH/BTC") && decision.contains("+0.85"),
        "{decision}"
    );
    for protocol in [
        "mem.",
        "memory.changed",
        "base_confidence",
        "parameter_updates.json",
    ] {
        assert!(
            !screen.contains(protocol),
            "{protocol} on the Dashboard:\n{screen}"
        );
    }
    assert!(
        screen.contains("MEM's parameter adjustments updated: parameters of 1 strategies in force"),
        "{screen}"
    );
    let empty = with_panels(connected());
    let screen = render(&empty, 100, 30);
    assert!(!screen.contains("mem.metrics"), "{screen}");
    press(&mut app, &[ch('5')]);
    app.on_update(Update::Panel(
        View::Memory,
        Ok(json!({"decisions": [], "unreadableLines": 0})),
    ));
    let screen = render(&app, 100, 30);
    assert!(
        !screen.contains("mem.decide") && !screen.contains("mem.outcome"),
        "{screen}"
    );
}

#[test]
fn every_ended_deployment_has_its_row_when_none_is_active() {
    let mut app = connected();
    let mut first = app.deployed.all[0].clone();
    first.status = DeploymentStatus::Stopped;
    changed(&mut app, &first);
    let mut second = native_deployment(DeploymentStatus::Stopped, "BTC");
    second.deployment_id = DeploymentId::new_random();
    changed(&mut app, &second);
    press(&mut app, &[ch('3'), ch('f'), ch('f'), ch('f'), ch('f')]);
    assert_eq!(app.deployed.filter(), DeployFilter::All);
    let screen = render(&app, 100, 30);
    assert!(screen.contains("Freqtrade MACD Hunter  "), "{screen}");
    assert!(line_of(&screen, "│RSI ").contains("stopped"), "{screen}");
    assert!(screen.contains("total, 0 active"), "{screen}");
}

// ---- issue 24: the Backtests view, and the backtest beside the live figures ----

const RESEARCH: &str = "4fdcbb3a-abea-4662-badd-a6f6886825b0";
const RUNNING_JOB: &str = "7d1f2c3a-0b4e-4f6a-9c8d-1e2f3a4b5c01";
const QUEUED_JOB: &str = "7d1f2c3a-0b4e-4f6a-9c8d-1e2f3a4b5c02";
const PASSED_JOB: &str = "7d1f2c3a-0b4e-4f6a-9c8d-1e2f3a4b5c03";
const FAILED_JOB: &str = "7d1f2c3a-0b4e-4f6a-9c8d-1e2f3a4b5c04";
const FOLDS_JOB: &str = "7d1f2c3a-0b4e-4f6a-9c8d-1e2f3a4b5c05";

/// Backtest figures as memd measures them (ratios are fractions).
fn figures(trades: u64, wins: u64, profit_pct: f64, sharpe: f64, dd: f64) -> serde_json::Value {
    json!({
        "trades": trades, "wins": wins, "losses": trades - wins,
        "winRate": if trades > 0 { wins as f64 / trades as f64 } else { 0.0 },
        "profitAbs": profit_pct * 1000.0, "profitPct": profit_pct,
        "sharpe": sharpe, "sortino": sharpe * 1.4, "calmar": 2.0,
        "maxDrawdown": dd, "maxDrawdownAbs": dd * 1000.0, "profitFactor": 1.0 + profit_pct * 10.0,
        "startingBalance": 1000.0, "finalBalance": 1000.0 + profit_pct * 1000.0
    })
}

/// 2026-10-01 00:00 UTC.
const OCTOBER_MS: i64 = 1_790_812_800_000;

/// An equity curve of `n` daily points from `start` (ms), from 1000 to
/// `1000 * (1 + profit)`, with a dip.
fn equity_curve(start: i64, n: i64, profit: f64) -> Vec<serde_json::Value> {
    (0..n)
        .map(|i| {
            let t = i as f64 / (n - 1) as f64;
            let dip = if (n / 3..n / 2).contains(&i) {
                -25.0
            } else {
                0.0
            };
            json!({"tsMs": start + i * 86_400_000, "equity": 1000.0 + profit * 1000.0 * t + dip})
        })
        .collect()
}

/// A result as memd stores it on the version and answers it with the job.
fn backtest_result(job: &str, strategy: &str, version: &str) -> serde_json::Value {
    json!({
        "measured": true, "jobId": job, "strategyId": strategy, "version": version,
        "engine": "freqtrade", "engineVersion": "2026.9",
        "pairs": ["BTC/USDT", "ETH/USDT"], "timeframe": "5m",
        "dataFrom": "2026-10-01T00:00:00Z", "dataTo": "2026-10-31T00:00:00Z",
        "parameters": {"macd_fast": 12}, "configHash": "ab12", "strategyHash": "cd34",
        "figures": figures(42, 24, 0.0421, 1.32, 0.031),
        "equity": equity_curve(OCTOBER_MS, 31, 0.0421),
        "validation": {"status": "passed", "reasons": [
            "42 trades, at least 10 needed: met",
            "profit +4.21%, above +0.00% needed: met"
        ]},
        "finishedAt": "2026-11-22T10:20:00Z", "seconds": 48.2
    })
}

/// A walk-forward's result: two folds, out-of-sample figures that fail the validation.
fn walk_forward_result() -> serde_json::Value {
    let fold = |i: u32, from: &str, mid: &str, to: &str, ins: f64, outs: f64| {
        json!({
            "index": i, "inSampleFrom": from, "inSampleTo": mid,
            "outOfSampleFrom": mid, "outOfSampleTo": to, "parameters": {"rsi_buy": 30 + i},
            "inSample": figures(20, 12, ins, 1.6, 0.02),
            "outOfSample": figures(5, 2, outs, -0.4, 0.018)
        })
    };
    let mut r = backtest_result(FOLDS_JOB, RSI, "1.0.0");
    r["figures"] = figures(10, 4, -0.0052, -0.4, 0.018);
    // The out-of-sample folds, one after the other: 2026-09-22 to 2026-10-06.
    r["dataFrom"] = json!("2026-09-01T00:00:00Z");
    r["dataTo"] = json!("2026-10-06T00:00:00Z");
    r["equity"] = json!(equity_curve(OCTOBER_MS - 9 * 86_400_000, 15, -0.0052));
    r["validation"] = json!({"status": "failed", "reasons": [
        "10 trades out-of-sample, at least 10 needed: met",
        "profit out-of-sample -0.52%, above +0.00% needed: not met"
    ]});
    r["walkForward"] = json!({
        "folds": [
            fold(0, "2026-09-01T00:00:00Z", "2026-09-22T00:00:00Z", "2026-09-29T00:00:00Z", 0.031, -0.004),
            fold(1, "2026-09-08T00:00:00Z", "2026-09-29T00:00:00Z", "2026-10-06T00:00:00Z", 0.027, -0.0012)
        ],
        "inSample": figures(40, 24, 0.058, 1.6, 0.02),
        "outOfSample": figures(10, 4, -0.0052, -0.4, 0.018),
        "parameters": {"rsi_buy": 31}
    });
    r
}

fn queue_job(
    job: &str,
    kind: &str,
    strategy: &str,
    name: &str,
    state: &str,
    more: serde_json::Value,
) -> serde_json::Value {
    let mut j = json!({
        "id": job, "kind": kind, "strategyId": strategy, "strategy": name,
        "params": {"id": strategy}, "state": state, "queuedAt": "2026-11-22T10:00:00Z",
        "logFile": format!("/var/lib/memd/queue/{job}/job.log")
    });
    for (k, v) in more.as_object().unwrap() {
        j[k] = v.clone();
    }
    j
}

/// The queue as `queue.list` answers it: a walk-forward running (fold 2 of 2), a backtest
/// queued, then finished ones newest first: a passed backtest, a failed one, a
/// walk-forward whose out-of-sample figures failed the validation.
fn queue_sample() -> mem_protocol::backtest::QueueList {
    serde_json::from_value(json!({"parallel": 1, "jobs": [
        queue_job(RUNNING_JOB, "walk_forward", MACD, "Freqtrade MACD Hunter", "running", json!({
            "params": {"id": MACD, "walkForward": 2, "epochs": 50},
            "queuedAt": "2026-11-22T10:25:00Z", "startedAt": "2026-11-22T10:26:00Z",
            "progress": {"done": 3, "total": 4, "message": "fold 2 of 2: backtest out-of-sample"}
        })),
        queue_job(QUEUED_JOB, "backtest", RSI, "Freqtrade Conservative RSI", "queued", json!({
            "params": {"id": RSI, "days": 60, "pairs": ["BTC/USDT"]},
            "queuedAt": "2026-11-22T10:27:00Z"
        })),
        queue_job(PASSED_JOB, "backtest", MACD, "Freqtrade MACD Hunter", "succeeded", json!({
            "queuedAt": "2026-11-22T10:19:00Z", "startedAt": "2026-11-22T10:19:10Z", "finishedAt": "2026-11-22T10:20:00Z",
            "result": backtest_result(PASSED_JOB, MACD, "1.1.0")
        })),
        queue_job(FAILED_JOB, "backtest", RESEARCH, "Volatility-Managed Momentum", "failed", json!({
            "queuedAt": "2026-11-22T09:09:00Z", "startedAt": "2026-11-22T09:10:00Z", "finishedAt": "2026-11-22T09:10:05Z",
            "error": "freqtrade backtesting wrote no result (exit status 2); the last lines of its log:\n2026-11-22 09:10:04 - freqtrade - ERROR - No data found. Terminating.\n2026-11-22 09:10:05 - freqtrade - INFO - exiting"
        })),
        queue_job(FOLDS_JOB, "walk_forward", RSI, "Freqtrade Conservative RSI", "succeeded", json!({
            "params": {"id": RSI, "walkForward": 2},
            "queuedAt": "2026-11-22T07:59:30Z", "startedAt": "2026-11-22T08:00:00Z", "finishedAt": "2026-11-22T08:40:00Z",
            "result": walk_forward_result()
        }))
    ]}))
    .unwrap()
}

/// Connected to a memd whose snapshot had the queue.
fn with_queue() -> App {
    let mut app = App::new(now());
    let mut strategies = strategies();
    Arc::make_mut(&mut strategies[1]).is_deployed = true;
    app.on_update(Update::Connected {
        access: Access::Control,
        status: Box::new(status()),
        strategies,
        deployed: DeployedList {
            notes: Vec::new(),
            deployments: vec![deployment(
                MACD,
                "Freqtrade MACD Hunter",
                DeploymentStatus::Running,
            )],
        },
        metrics: None,
        panels: vec![],
        queue: Some(queue_sample()),
    });
    app.on_update(Update::Market(Box::new(demo_market())));
    app
}

fn queue_changed(app: &mut App, job: serde_json::Value) -> Vec<Command> {
    let job: mem_protocol::backtest::QueueJob = serde_json::from_value(job).unwrap();
    app.on_update(Update::Event(Box::new(Event::QueueChanged(Box::new(job)))))
}

fn selected_job(app: &App) -> &str {
    &app.backtests.selected().unwrap().id
}

#[test]
fn eight_shows_the_queue_of_the_snapshot_and_events_keep_it_current() {
    let mut app = with_queue();
    assert_eq!(
        press(&mut app, &[ch('8')]),
        [],
        "the snapshot had the queue"
    );
    assert_eq!(app.view, View::Backtests);
    assert_eq!(app.backtests.jobs().len(), 5);
    press(&mut app, &[ch('j')]);
    assert_eq!(selected_job(&app), QUEUED_JOB);
    // Progress of the running job: in place, no request, no message.
    let c = queue_changed(
        &mut app,
        queue_job(
            RUNNING_JOB,
            "walk_forward",
            MACD,
            "Freqtrade MACD Hunter",
            "running",
            json!({
                "startedAt": "2026-11-22T10:26:00Z",
                "progress": {"done": 4, "total": 4, "message": "recording the result"}
            }),
        ),
    );
    assert!(c.is_empty());
    assert_eq!(app.backtests.jobs()[0].progress.as_ref().unwrap().done, 4);
    assert!(app.status_line.is_none());
    // It ends: first of the finished ones, said on the status line; the selection stays.
    let mut result = backtest_result(RUNNING_JOB, MACD, "1.1.0");
    result["figures"] = figures(12, 7, 0.0188, 1.1, 0.02);
    queue_changed(
        &mut app,
        queue_job(
            RUNNING_JOB,
            "walk_forward",
            MACD,
            "Freqtrade MACD Hunter",
            "succeeded",
            json!({
                "startedAt": "2026-11-22T10:26:00Z", "finishedAt": "2026-11-22T10:30:00Z",
                "result": result
            }),
        ),
    );
    let ids: Vec<&str> = app.backtests.jobs().iter().map(|j| j.id.as_str()).collect();
    assert_eq!(
        ids,
        [QUEUED_JOB, RUNNING_JOB, PASSED_JOB, FAILED_JOB, FOLDS_JOB]
    );
    assert_eq!(selected_job(&app), QUEUED_JOB);
    assert_eq!(
        app.status_line.as_ref().unwrap().text,
        "walk-forward of Freqtrade MACD Hunter succeeded: 12 trades, profit +1.88%, validation passed"
    );
    // The queued one starts; a new one is queued behind it.
    queue_changed(
        &mut app,
        queue_job(
            QUEUED_JOB,
            "backtest",
            RSI,
            "Freqtrade Conservative RSI",
            "running",
            json!({
                "queuedAt": "2026-11-22T10:27:00Z", "startedAt": "2026-11-22T10:30:00Z"
            }),
        ),
    );
    queue_changed(
        &mut app,
        queue_job(
            "new",
            "backtest",
            MACD,
            "Freqtrade MACD Hunter",
            "queued",
            json!({
                "queuedAt": "2026-11-22T10:30:00Z"
            }),
        ),
    );
    let ids: Vec<&str> = app.backtests.jobs().iter().map(|j| j.id.as_str()).collect();
    assert_eq!(ids[..3], [QUEUED_JOB, "new", RUNNING_JOB]);
    // A failure's first line on the status line, whole in the view.
    queue_changed(
        &mut app,
        queue_job(
            "new",
            "backtest",
            MACD,
            "Freqtrade MACD Hunter",
            "failed",
            json!({
                "finishedAt": "2026-11-22T10:30:01Z", "error": "no candles for BTC/USDT 5m\nsee the log"
            }),
        ),
    );
    assert_eq!(
        app.status_line.as_ref().unwrap().text,
        "backtest of Freqtrade MACD Hunter failed: no candles for BTC/USDT 5m"
    );
    assert_eq!(app.status_line.as_ref().unwrap().tone, Tone::Error);
    // `u` reloads.
    assert_eq!(press(&mut app, &[ch('u')]), [Command::LoadQueue]);
}

#[test]
fn eight_asks_for_the_queue_when_the_snapshot_had_none() {
    let mut app = connected();
    assert_eq!(press(&mut app, &[ch('8')]), [Command::LoadQueue]);
    let screen = render(&app, 100, 12);
    assert!(screen.contains("loading..."), "{screen}");
    // An event before the answer is not a list yet: the answer brings every job.
    queue_changed(
        &mut app,
        queue_job(
            "x",
            "backtest",
            MACD,
            "Freqtrade MACD Hunter",
            "queued",
            json!({}),
        ),
    );
    assert!(app.backtests.queue.is_none());
    app.on_update(Update::Queue(Err(not_built("queue.list", "backtests"))));
    let screen = render(&app, 100, 12);
    assert!(screen.contains("Not available yet"), "{screen}");
    app.on_update(Update::Queue(Ok(mem_protocol::backtest::QueueList {
        jobs: vec![],
        parallel: 2,
    })));
    let screen = render(&app, 100, 12);
    assert!(
        screen.contains("The queue is empty. b on a strategy (Strategies, 2) queues a backtest"),
        "{screen}"
    );
    assert!(screen.contains("2 at a time"), "{screen}");
}

#[test]
fn c_cancels_a_queued_or_running_job_after_a_confirmation() {
    let mut app = with_queue();
    press(&mut app, &[ch('8'), ch('c')]);
    assert_eq!(
        app.overlay,
        Some(Overlay::Confirm(Confirm::CancelJob {
            id: RUNNING_JOB.into(),
            what: "walk-forward of Freqtrade MACD Hunter".into(),
            running: true,
        }))
    );
    insta::assert_snapshot!("backtests_cancel_running", render(&app, 100, 24));
    assert_eq!(
        press(&mut app, &[ch('y')]),
        [Command::CancelQueueJob(RUNNING_JOB.into())]
    );
    assert!(app.overlay.is_none());
    // Esc keeps the job, and says so in words that cannot be misread.
    press(&mut app, &[ch('j'), ch('c'), key(KeyCode::Esc)]);
    assert!(app.overlay.is_none());
    assert_eq!(
        app.status_line.as_ref().unwrap().text,
        "the backtest of Freqtrade Conservative RSI goes on"
    );
    press(&mut app, &[ch('c')]);
    assert_eq!(
        press(&mut app, &[key(KeyCode::Enter)]),
        [Command::CancelQueueJob(QUEUED_JOB.into())]
    );
    // A finished job: nothing to cancel.
    assert_eq!(press(&mut app, &[ch('j'), ch('c')]), []);
    assert!(app.overlay.is_none());
    assert_eq!(
        app.status_line.as_ref().unwrap().text,
        "the backtest of Freqtrade MACD Hunter has already ended (succeeded)"
    );
}

#[test]
fn a_read_only_session_sees_the_queue_but_cannot_cancel_or_queue() {
    let mut app = with_queue();
    app.access = Access::View;
    assert_eq!(press(&mut app, &[ch('8'), ch('c')]), []);
    assert!(app.overlay.is_none());
    assert_eq!(
        app.status_line.as_ref().unwrap().text,
        "read-only session: cancelling a job is not available"
    );
    assert_eq!(press(&mut app, &[ch('b')]), []);
    let screen = render(&app, 120, 24);
    let footer = screen.lines().last().unwrap();
    assert!(
        !footer.contains("cancel") && !footer.contains("backtest"),
        "{footer}"
    );
    assert_eq!(
        press(&mut app, &[ch('2'), ch('b')]),
        [Command::LoadDetail(id(RSI))],
        "the detail, and no backtest"
    );
    assert_eq!(
        app.status_line.as_ref().unwrap().text,
        "read-only session: queueing a backtest is not available"
    );
}

#[test]
fn b_queues_a_backtest_with_just_the_id_from_strategies_and_backtests() {
    let mut app = with_queue();
    press(&mut app, &[ch('2'), ch('j')]);
    let c = press(&mut app, &[ch('b')]);
    let params = match c.as_slice() {
        [Command::Backtest(params)] => params.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(serde_json::to_value(&params).unwrap(), json!({"id": MACD}));
    assert_eq!(
        app.status_line.as_ref().unwrap().text,
        "queueing a backtest of Freqtrade MACD Hunter..."
    );
    // From the open detail too.
    press(&mut app, &[key(KeyCode::Enter)]);
    assert!(app.strategies.detail_open);
    assert!(
        matches!(press(&mut app, &[ch('b')]).as_slice(), [Command::Backtest(p)] if p.id == id(MACD))
    );
    // In Backtests: another backtest of the selected job's strategy.
    press(&mut app, &[ch('8'), ch('G')]);
    assert_eq!(selected_job(&app), FOLDS_JOB);
    assert!(
        matches!(press(&mut app, &[ch('b')]).as_slice(), [Command::Backtest(p)] if p.id == id(RSI) && p.walk_forward.is_none())
    );
}

#[test]
fn enter_opens_the_selected_result_and_the_arrows_scroll_it() {
    let mut app = with_queue();
    press(&mut app, &[ch('8'), ch('G'), key(KeyCode::Enter)]);
    assert!(app.backtests.detail_open);
    press(&mut app, &[ch('j'), ch('j')]);
    assert_eq!(app.backtests.detail_scroll, 2);
    assert_eq!(
        selected_job(&app),
        FOLDS_JOB,
        "the arrows scroll, not select"
    );
    press(&mut app, &[ch('g'), key(KeyCode::Esc)]);
    assert!(!app.backtests.detail_open);
    assert!(!app.quit);
    press(&mut app, &[ch('k')]);
    assert_eq!(selected_job(&app), FAILED_JOB);
}

#[test]
fn snapshot_backtests_running_queued_and_finished() {
    let mut app = with_queue();
    press(&mut app, &[ch('8')]);
    // The running walk-forward selected: its progress, what was asked.
    insta::assert_snapshot!("backtests_running_wide", render(&app, 140, 30));
    insta::assert_snapshot!("backtests_running_80x24", render(&app, 80, 24));
    // The queued one: its place.
    press(&mut app, &[ch('j')]);
    insta::assert_snapshot!("backtests_queued_80x24", render(&app, 80, 24));
    // The passed backtest: figures, data, validation, the equity curve beside them.
    press(&mut app, &[ch('j')]);
    insta::assert_snapshot!("backtests_passed_wide", render(&app, 140, 30));
    insta::assert_snapshot!("backtests_passed_80x24", render(&app, 80, 24));
    // The failed one: its error whole, and the log.
    press(&mut app, &[ch('j')]);
    insta::assert_snapshot!("backtests_failed_wide", render(&app, 140, 30));
    // The walk-forward: each fold's in-sample and out-of-sample figures.
    press(&mut app, &[ch('j')]);
    insta::assert_snapshot!("backtests_walk_forward_wide", render(&app, 140, 30));
    press(&mut app, &[key(KeyCode::Enter)]);
    insta::assert_snapshot!("backtests_walk_forward_open_80x24", render(&app, 80, 24));
    press(&mut app, &[ch('?')]);
    insta::assert_snapshot!("backtests_help", render(&app, 100, 30));
}

fn macd_versions_with_backtest() -> VersionList {
    serde_json::from_value(json!({
        "strategyId": MACD, "currentVersion": "1.1.0",
        "versions": [
            {"strategy_id": MACD, "version_number": "1.0.0", "changelog": "Initial version",
             "created_by": "system", "created_at": "2025-10-21T06:30:28Z",
             "backtest_results": {"sharpe_ratio": 1.45, "win_rate": 0.58}},
            {"strategy_id": MACD, "version_number": "1.1.0", "changelog": "Faster MACD",
             "created_by": "ops", "created_at": "2026-11-01T09:00:00Z",
             "backtest_results": backtest_result(PASSED_JOB, MACD, "1.1.0")}
        ]
    }))
    .unwrap()
}

#[test]
fn the_measured_backtest_is_the_current_versions_else_the_newest_measured() {
    let mut versions = macd_versions_with_backtest();
    let r = measured_result(&versions).unwrap();
    assert_eq!(
        (r.job_id.as_str(), r.version.as_str()),
        (PASSED_JOB, "1.1.0")
    );
    assert_eq!(r.equity.len(), 31);
    // A newer version, not measured yet: the last measurement still stands, with its
    // version named.
    let mut newer = versions.versions[0].clone();
    newer.version_number = "1.2.0".into();
    versions.versions.push(newer);
    versions.current_version = "1.2.0".into();
    assert_eq!(measured_result(&versions).unwrap().version, "1.1.0");
    // Hand-typed results are not measured ones.
    versions.versions.remove(1);
    assert_eq!(measured_result(&versions), None);
}

#[test]
fn snapshot_detail_with_the_backtest_equity_curve_beside_the_figures() {
    let mut app = with_panels(with_queue());
    press(&mut app, &[ch('2'), ch('j')]);
    let mut data = macd_data();
    data.versions = Some(macd_versions_with_backtest());
    data.backtest = measured_result(data.versions.as_ref().unwrap()).map(Box::new);
    app.on_update(Update::Detail(id(MACD), Ok(Box::new(data.clone()))));
    insta::assert_snapshot!("strategies_detail_backtest_wide", render(&app, 160, 40));
    press(&mut app, &[key(KeyCode::Enter)]);
    insta::assert_snapshot!("strategies_detail_backtest_80x24", render(&app, 80, 24));
    // Not measured: the typed figures, said so, and the key that measures them.
    data.backtest = None;
    app.on_update(Update::Detail(id(MACD), Ok(Box::new(data))));
    let screen = render(&app, 80, 24);
    assert!(line_of(&screen, "Metrics").contains("typed"), "{screen}");
    press(&mut app, &[ch('j'); 14]);
    let screen = render(&app, 80, 24);
    assert!(
        screen.contains("not measured: the figures are typed (b measures them)"),
        "{screen}"
    );
}

#[test]
fn an_attached_bot_is_marked_in_the_deployed_view_and_leaves_it_when_detached() {
    let mut app = connected();
    let mut outside = deployment(RSI, "Freqtrade Conservative RSI", DeploymentStatus::Running);
    outside.deployment_id = DeploymentId::new_random();
    outside.process_id = None;
    outside.attached = Some(Attachment {
        name: "outside".into(),
        url: "http://127.0.0.1:8080".into(),
        username: "freqtrader".into(),
        allow_control: false,
    });
    changed(&mut app, &outside);
    press(&mut app, &[ch('3')]);
    let screen = render(&app, 140, 24);
    assert!(
        screen.contains("Freqtrade Conservative RSI (attached: outside)"),
        "{screen}"
    );
    // Detached: announced as stopped, it leaves the default list.
    outside.status = DeploymentStatus::Stopped;
    changed(&mut app, &outside);
    assert!(
        app.deployed
            .rows()
            .iter()
            .all(|d| d.deployment_id != outside.deployment_id)
    );
    assert!(!render(&app, 140, 24).contains("attached: outside"));
}
