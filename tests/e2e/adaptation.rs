//! MEM's parameter adaptation by regime (the seed's ParameterAdapter) through the real
//! daemon: a decision in a choppy market has its stops tightened with the rule named, the
//! change of regime is an adjustment of `parameter_updates.json`, and once the strategy's
//! next 20 trades have closed, every adjustment's `impact` says what followed.

use mem_e2e::Daemon;
use mem_protocol::Client;
use mem_protocol::mem::*;
use mem_protocol::methods::{NoParams, method};
use mem_protocol::recommend::Trend;
use serde_json::Value;

const STRATEGY: &str = "regime_e2e";

/// One decision on hand-made conditions, closed at once with `pnl_pct`.
async fn decide_and_close(client: &Client, trend: Trend, adx: f64, pnl_pct: f64) -> Decision {
    let decision = client
        .call::<method::MemDecide>(DecideParams {
            enhance: EnhanceParams {
                signal: BaseSignal {
                    strategy: STRATEGY.into(),
                    symbol: "XYZ/USDT".into(),
                    action: SignalAction::Buy,
                    confidence: 0.7,
                },
                ml_confidence: Some(0.6),
                ml_direction: Some("bullish".into()),
                pattern: None,
                volatility_pct: Some(1.0),
                signature: Some("BUY|e2e".into()),
                trend: Some(trend),
                adx: Some(adx),
            },
            price: 100.0,
            id: None,
        })
        .await
        .unwrap();
    client
        .call::<method::MemOutcome>(OutcomeParams {
            decision_id: decision.id.clone(),
            exit_price: 100.0 * (1.0 + pnl_pct),
            pnl: pnl_pct * 100.0,
            pnl_pct,
            closed_at: None,
            exit_reason: None,
        })
        .await
        .unwrap();
    decision
}

/// The adjustments of `parameter_updates.json` for the test's strategy.
async fn adjustments(client: &Client) -> Vec<Value> {
    let state = client
        .call::<method::MemParameters>(NoParams {})
        .await
        .unwrap();
    state
        .history
        .as_object()
        .unwrap()
        .values()
        .filter_map(|day| day["adjustments"].as_array())
        .flatten()
        .filter(|a| a["strategy"] == STRATEGY)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_regime_change_is_an_adjustment_whose_impact_is_filled_in_after_20_trades() {
    let daemon = Daemon::start();
    let client = daemon.client().await;

    // 20 losing trades with no regime rule (a neutral, weak trend).
    for _ in 0..20 {
        let d = decide_and_close(&client, Trend::Neutral, 12.0, -0.01).await;
        assert!(!d.reasoning.contains("Regime:"), "{}", d.reasoning);
    }
    // The market turns choppy: stops tightened (x0.8 of 1.5 x ATR 1%), the rule named.
    let choppy = decide_and_close(&client, Trend::Ranging, 14.0, 0.02).await;
    assert!(
        choppy
            .reasoning
            .contains("Regime: choppy (ranging, ADX 14.0)"),
        "{}",
        choppy.reasoning
    );
    assert!(
        (choppy.stop_loss - -1.2).abs() < 1e-9,
        "{}",
        choppy.stop_loss
    );
    let regime: Vec<Value> = adjustments(&client)
        .await
        .into_iter()
        .filter(|a| a["parameter"] == "regime_adaptation")
        .collect();
    assert_eq!(regime.len(), 1, "{regime:?}");
    assert_eq!(regime[0]["triggered_by"], "parameter_adapter");
    assert_eq!(regime[0]["before"]["win_rate"], 0.0);
    assert!(regime[0]["impact"].is_null(), "{:?}", regime[0]);

    // 19 more winning trades in the same regime: no new regime adjustment, and the impact
    // waits for its 20th trade.
    for _ in 0..18 {
        decide_and_close(&client, Trend::Ranging, 14.0, 0.02).await;
    }
    let waiting = adjustments(&client).await;
    assert!(
        waiting
            .iter()
            .filter(|a| a["parameter"] == "regime_adaptation")
            .all(|a| a["impact"].is_null()),
        "{waiting:?}"
    );
    decide_and_close(&client, Trend::Ranging, 14.0, 0.02).await;

    let all = adjustments(&client).await;
    let regime: Vec<&Value> = all
        .iter()
        .filter(|a| a["parameter"] == "regime_adaptation")
        .collect();
    assert_eq!(regime.len(), 1, "{all:?}");
    let impact = regime[0]["impact"].as_str().expect("impact filled in");
    assert!(
        impact.starts_with("Win rate improved from 0% to 100%"),
        "{impact}"
    );
    assert_eq!(regime[0]["after"]["trades"], 20);
    // The performance monitor's adjustment after the 20 losses has its impact too.
    let monitor: Vec<&Value> = all
        .iter()
        .filter(|a| a["triggered_by"] == "performance_monitor")
        .collect();
    assert!(!monitor.is_empty(), "{all:?}");
    assert!(
        monitor[0]["impact"]
            .as_str()
            .is_some_and(|i| i.contains("to 100%")),
        "{:?}",
        monitor[0]
    );
}
