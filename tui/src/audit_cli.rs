//! `memctl audit`: what was done to the daemon (deploys, stops, jobs, tokens, backups,
//! ...), by whom, and how it ended.

use crate::cli::{print_json, print_table, table};
use anyhow::bail;
use chrono::{DateTime, NaiveDate, Utc};
use mem_protocol::Client;
use mem_protocol::audit::{ActionOutcome, ActionsParams};
use mem_protocol::methods::method;

/// `--since`: a time (RFC 3339), a day (`2026-12-01`, from its midnight UTC), or how long
/// ago (`90m`, `24h`, `7d`).
pub fn parse_since(text: &str, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if seconds > 0 && n >= 0 => Ok(now - chrono::Duration::seconds(n * seconds)),
        _ => bail!(
            "--since {text:?}: give a time (2026-12-05T10:00:00Z), a day (2026-12-05) or how long ago (90m, 24h, 7d)"
        ),
    }
}

/// Prints the actions, oldest first.
pub async fn actions(
    client: &Client,
    since: Option<&str>,
    action: Option<String>,
    limit: Option<usize>,
    json: bool,
) -> anyhow::Result<()> {
    let since = since.map(|s| parse_since(s, Utc::now())).transpose()?;
    let log = client
        .call::<method::AuditActions>(ActionsParams {
            since,
            action,
            limit,
        })
        .await?;
    if json {
        return print_json(&log);
    }
    if log.entries.is_empty() {
        println!("no action recorded");
        return Ok(());
    }
    let mut t = table(&["AT", "ACTION", "BY", "OUTCOME", "PARAMS"]);
    for e in &log.entries {
        let by = match (e.uid, &e.client) {
            (Some(uid), Some(client)) => format!("uid {uid} ({client})"),
            (Some(uid), None) => format!("uid {uid}"),
            (None, Some(client)) => client.clone(),
            (None, None) => "memd".into(),
        };
        let outcome = match e.outcome {
            ActionOutcome::Ok => "ok".to_string(),
            ActionOutcome::Failed => format!("failed: {}", e.error.as_deref().unwrap_or("")),
        };
        let params = e
            .params
            .iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(" ");
        t.add_row(vec![
            e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            e.action.clone(),
            by,
            outcome,
            params,
        ]);
    }
    print_table(&t);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_a_time_a_day_or_how_long_ago() {
        let now = DateTime::parse_from_rfc3339("2026-12-05T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| parse_since(s, now).unwrap().to_rfc3339();
        assert_eq!(at("2026-12-05T10:00:00Z"), "2026-12-05T10:00:00+00:00");
        assert_eq!(at("2026-12-01"), "2026-12-01T00:00:00+00:00");
        assert_eq!(at("90m"), "2026-12-05T10:30:00+00:00");
        assert_eq!(at("7d"), "2026-11-28T12:00:00+00:00");
        let err = parse_since("yesterday", now).unwrap_err().to_string();
        assert!(err.contains("\"yesterday\""), "{err}");
    }
}
