//! The 11 strategies every new data directory is seeded with
//! (`data/strategy_registry/metadata/*.json`): their ids by name, and the preferred API
//! ports of the three Freqtrade ones, which the tests that deploy them there take turns at.

use mem_protocol::strategy::StrategyId;

/// `freqtrade_macd_hunter`, "Freqtrade MACD Hunter": Freqtrade, momentum, port 8083.
pub const MACD_HUNTER: &str = "4ce3a79b-c22b-4b42-9d87-3a58052a9eec";
/// `freqtrade_conservative_rsi`, "Freqtrade Conservative RSI": Freqtrade, port 8082.
pub const CONSERVATIVE_RSI: &str = "186062cd-e0f7-45eb-b387-3067360efe34";
/// `freqtrade_aggressive_rsi`, "Freqtrade Aggressive RSI": Freqtrade, port 8084.
pub const AGGRESSIVE_RSI: &str = "8a778f7f-37b5-4eae-9fca-e7cb383b048a";
/// `native_momentum`, "Momentum": runs inside memd.
pub const NATIVE_MOMENTUM: &str = "0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d61";
/// `native_rsi`, "RSI": runs inside memd.
pub const NATIVE_RSI: &str = "0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d62";
/// `native_macd`, "MACD": runs inside memd.
pub const NATIVE_MACD: &str = "0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d63";
/// `native_mfi`, "MFI": runs inside memd.
pub const NATIVE_MFI: &str = "0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d64";
/// `native_vwap`, "VWAP": runs inside memd.
pub const NATIVE_VWAP: &str = "0b3c5d1e-6f7a-4b8c-9d0e-1f2a3b4c5d65";
/// `volatility_managed_momentum`, "Volatility-Managed Momentum": research, runs inside memd.
pub const VOLATILITY_MANAGED_MOMENTUM: &str = "4fdcbb3a-abea-4662-badd-a6f6886825b0";
/// `currency_carry_trade`, "Currency Carry Trade": research, not deployable.
pub const CURRENCY_CARRY_TRADE: &str = "937cc1a3-f286-435f-8d5a-e0cdba43e5fe";
/// `statistical_arbitrage_pairs`, "Statistical Arbitrage Pairs Trading": research.
pub const STATISTICAL_ARBITRAGE_PAIRS: &str = "d88418c6-1b46-491e-997b-1062d4e276bd";

/// Every seed strategy: its registry name and id.
pub const ALL: [(&str, &str); 11] = [
    ("freqtrade_macd_hunter", MACD_HUNTER),
    ("freqtrade_conservative_rsi", CONSERVATIVE_RSI),
    ("freqtrade_aggressive_rsi", AGGRESSIVE_RSI),
    ("native_momentum", NATIVE_MOMENTUM),
    ("native_rsi", NATIVE_RSI),
    ("native_macd", NATIVE_MACD),
    ("native_mfi", NATIVE_MFI),
    ("native_vwap", NATIVE_VWAP),
    ("volatility_managed_momentum", VOLATILITY_MANAGED_MOMENTUM),
    ("currency_carry_trade", CURRENCY_CARRY_TRADE),
    ("statistical_arbitrage_pairs", STATISTICAL_ARBITRAGE_PAIRS),
];

/// A strategy id from its text (one of the constants above, or one a test made).
pub fn sid(id: &str) -> StrategyId {
    id.parse()
        .unwrap_or_else(|e| panic!("{id:?} is not a strategy id: {e}"))
}

/// The right to the Freqtrade seed strategies' preferred API ports (8082 to 8084), while
/// the value lives.
pub type PreferredPorts = tokio::sync::MutexGuard<'static, ()>;

/// Waits for the seed bots' preferred ports. A deploy without a port (`port: None`,
/// `memctl deploy` without `--port`, the HTTP API's deploy, the terminal UI) puts a seed
/// Freqtrade bot on its strategy's port, and the daemons of the e2e tests share the
/// machine's ports: a test that does so, or binds one of these ports itself, holds this
/// while it deploys. Take it before starting the daemons that deploy: locals drop in
/// reverse order, so it is given back after they and their bots are gone.
pub async fn preferred_ports() -> PreferredPorts {
    static PORTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    PORTS.lock().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The constants name the files the daemon seeds from, and every one of them.
    #[test]
    fn every_seed_file_is_named_here_with_its_id() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data/strategy_registry/metadata");
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let doc: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
            let (name, id) = (&doc["strategy"]["name"], &doc["strategy"]["id"]);
            found.push((
                name.as_str().unwrap().to_string(),
                id.as_str().unwrap().to_string(),
            ));
        }
        found.sort();
        let mut named: Vec<(String, String)> = ALL
            .iter()
            .map(|(name, id)| (name.to_string(), id.to_string()))
            .collect();
        named.sort();
        assert_eq!(found, named);
        for (_, id) in ALL {
            sid(id);
        }
    }
}
