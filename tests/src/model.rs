//! The trend-reversal model through a client, for the tests that need one or two model
//! versions to be there: trained on a few days of the shipped ETH/BTC candles, quickly.

use mem_protocol::Client;
use mem_protocol::methods::method;
use mem_protocol::ml::TrainParams;
use std::time::Duration;

/// Trains a model on the last `days` days of the shipped ETH/BTC 5-minute candles;
/// answers its version (promoted or not).
pub async fn train_on_eth_btc(client: &Client, days: u32) -> String {
    client
        .call_with_timeout::<method::MlTrain>(
            TrainParams {
                pairs: vec!["ETH/BTC".into()],
                days: Some(days),
                ..Default::default()
            },
            Duration::from_secs(180),
        )
        .await
        .unwrap()
        .model
        .version
}

/// Two model versions, on 6 and 7 days of ETH/BTC; answers them, the older first.
pub async fn two_versions(client: &Client) -> Vec<String> {
    let mut versions = Vec::new();
    for days in [6, 7] {
        versions.push(train_on_eth_btc(client, days).await);
        // Version names are per second.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    versions
}
