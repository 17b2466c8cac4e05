//! `memctl alerts test [CHANNEL]` and `memctl alerts history`: memd's alerts (Telegram, a
//! webhook, its log). Channels are named by kind and chat id: no token or URL is printed.

use crate::cli::{print_json, table};
use mem_protocol::Client;
use mem_protocol::alerts::{AlertsHistoryParams, AlertsTestParams, DeliveryResult};
use mem_protocol::methods::method;

/// Queues a test alert to `channel` (or every channel).
pub async fn test(client: &Client, channel: Option<String>, json: bool) -> anyhow::Result<()> {
    let r = client
        .call::<method::AlertsTest>(AlertsTestParams { channel })
        .await?;
    if json {
        return print_json(&r);
    }
    println!(
        "test alert {} queued for {}; `memctl alerts history` says how it went",
        r.alert_id,
        r.targets.join(", ")
    );
    Ok(())
}

/// The newest deliveries: when, where, what became of them.
pub async fn history(client: &Client, limit: Option<usize>, json: bool) -> anyhow::Result<()> {
    let h = client
        .call::<method::AlertsHistory>(AlertsHistoryParams { limit })
        .await?;
    if json {
        return print_json(&h);
    }
    if h.deliveries.is_empty() {
        println!("no alert sent yet");
    }
    let mut t = table(&["AT", "RULE", "SEVERITY", "TO", "RESULT", "TITLE"]);
    for d in &h.deliveries {
        let result = match d.result {
            DeliveryResult::Sent => "sent".to_string(),
            DeliveryResult::Failed => format!(
                "failed (try {}): {}",
                d.attempt,
                d.error.as_deref().unwrap_or("")
            ),
            DeliveryResult::GivenUp => "given up".to_string(),
        };
        t.add_row(vec![
            d.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            d.rule.clone(),
            d.severity.clone(),
            d.target.clone(),
            result,
            d.title.clone(),
        ]);
    }
    if !h.deliveries.is_empty() {
        crate::cli::print_table(&t);
    }
    if h.pending > 0 {
        println!("{} deliveries waiting in the outbox", h.pending);
    }
    Ok(())
}
