//! Deploying, finding and stopping strategies through a client, the way most e2e tests
//! do: the requests' usual parameters, and the lookups they repeat.

use mem_protocol::Client;
use mem_protocol::deploy::{DeployParams, DeployedParams, DeployedStrategy, StopMode, StopParams};
use mem_protocol::methods::method;
use mem_protocol::registry::{ListTradesParams, PerformanceParams, TradeRecord};
use mem_protocol::strategy::StrategyId;

/// A dry-run deploy of `id` with its registry parameters, a Freqtrade one on its
/// strategy's preferred port (see `crate::seed::preferred_ports`); other choices by struct
/// update (`DeployParams { native: Some(...), ..dry_run(id) }`).
pub fn dry_run(id: StrategyId) -> DeployParams {
    DeployParams {
        id,
        dry_run: true,
        port: None,
        parameters: None,
        native: None,
    }
}

/// Registers the strategy document `doc` and deploys it in dry-run with its registry
/// parameters (the load tools' bots): the deployment.
pub async fn register_and_deploy(client: &Client, doc: serde_json::Value) -> DeployedStrategy {
    let detail = client
        .call::<method::StrategiesRegister>(mem_protocol::registry::RegisterParams {
            strategy: doc,
            status: None,
        })
        .await
        .expect("register the strategy");
    client
        .call::<method::Deploy>(dry_run(detail.summary.id))
        .await
        .expect("deploy the strategy")
}

/// A dry-run deploy of `id` on `port` (tests run in parallel: each asks for its own).
pub fn dry_run_on_port(id: StrategyId, port: u16) -> DeployParams {
    DeployParams {
        port: Some(port),
        ..dry_run(id)
    }
}

/// Stop `id`'s deployment now (no drain).
pub fn stop_now(id: StrategyId) -> StopParams {
    StopParams {
        id,
        mode: StopMode::Now,
        deadline_secs: None,
    }
}

/// The deployments that have not ended (running, or starting, or stopping).
pub async fn active_deployments(client: &Client) -> Vec<DeployedStrategy> {
    client
        .call::<method::Deployed>(DeployedParams { all: false })
        .await
        .unwrap()
        .deployments
}

/// The strategy's active deployment, if it has one.
pub async fn active_deployment(client: &Client, id: StrategyId) -> Option<DeployedStrategy> {
    active_deployments(client)
        .await
        .into_iter()
        .find(|d| d.strategy_id == id)
}

/// The strategy's newest deployment, ended or not.
pub async fn newest_deployment(client: &Client, id: StrategyId) -> Option<DeployedStrategy> {
    client
        .call::<method::Deployed>(DeployedParams { all: true })
        .await
        .unwrap()
        .deployments
        .into_iter()
        .filter(|d| d.strategy_id == id)
        .max_by_key(|d| d.started_at)
}

/// How many closed trades the registry has for the strategy, over all time.
/// Every trade the registry holds for a strategy, as `strategies.trades.list` gives them
/// (one page: checked).
pub async fn all_trades(client: &Client, id: StrategyId) -> Vec<TradeRecord> {
    let list = client
        .call::<method::TradesList>(ListTradesParams {
            id,
            from: None,
            to: None,
            limit: Some(1_000_000),
            offset: None,
        })
        .await
        .unwrap();
    assert_eq!(list.trades.len(), list.total, "one page holds them all");
    list.trades
}

pub async fn total_trades(client: &Client, id: StrategyId) -> u64 {
    client
        .call::<method::Performance>(PerformanceParams {
            id,
            from: None,
            to: None,
        })
        .await
        .unwrap()
        .all
        .total_trades
}
