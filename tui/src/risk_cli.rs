//! `memctl risk`, `memctl risk reset [--reason TEXT]`: the risk guard over every
//! deployment (`[risk]` in memd's config).

use crate::cli::print_json;
use mem_protocol::Client;
use mem_protocol::methods::{NoParams, method};
use mem_protocol::risk::{RiskResetParams, RiskStatus};

/// `memctl risk`.
pub async fn status(client: &Client, json: bool) -> anyhow::Result<()> {
    let status = client.call::<method::RiskStatus>(NoParams {}).await?;
    if json {
        return print_json(&status);
    }
    print!("{}", render(&status));
    Ok(())
}

/// `memctl risk reset [--reason TEXT]`.
pub async fn reset(client: &Client, reason: Option<String>, json: bool) -> anyhow::Result<()> {
    let before = client.call::<method::RiskStatus>(NoParams {}).await?;
    let status = client
        .call::<method::RiskReset>(RiskResetParams { reason })
        .await?;
    if json {
        return print_json(&status);
    }
    if before.tripped {
        println!(
            "risk guard reset: {} limit(s) cleared; deploys are allowed again. Bots paused by the guard stay paused: restart one (memctl restart ID) to let it enter again.",
            before.trips.len()
        );
    } else {
        println!("risk guard reset (it was not tripped); its figures start again from now");
    }
    print!("{}", render(&status));
    Ok(())
}

/// The guard as text: its state, limits, figures and trips.
pub fn render(s: &RiskStatus) -> String {
    let mut out = format!("risk guard  {}\n", s.headline());
    let limit = |v: Option<f64>| v.map_or_else(|| "off".to_string(), |v| format!("{v:.2}"));
    out.push_str(&format!(
        "limits      max drawdown {}, daily loss {}, bot loss {}\n",
        limit(s.limits.max_drawdown),
        limit(s.limits.daily_loss),
        limit(s.limits.bot_loss)
    ));
    out.push_str(&format!(
        "fleet       equity {:.2}, peak {:.2}, drawdown {:.2}, lost today {:.2}{}\n",
        s.equity,
        s.peak,
        s.drawdown,
        s.day_loss,
        s.day.map(|d| format!(" ({d} UTC)")).unwrap_or_default()
    ));
    for trip in &s.trips {
        out.push_str(&format!(
            "tripped     {} {}: {}\n",
            trip.at.format("%Y-%m-%d %H:%M:%S"),
            trip.limit.config_key(),
            trip.message
        ));
    }
    if let Some(r) = &s.last_reset {
        out.push_str(&format!(
            "last reset  {}{}{}\n",
            r.at.format("%Y-%m-%d %H:%M:%S"),
            r.by.as_ref()
                .map(|b| format!(" by {b}"))
                .unwrap_or_default(),
            r.reason
                .as_ref()
                .map(|b| format!(": {b}"))
                .unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::risk::*;

    #[test]
    fn the_guard_reads_as_text() {
        let mut s = RiskStatus::default();
        assert!(render(&s).starts_with("risk guard  off\n"));
        s.limits.max_drawdown = Some(50.0);
        s.tripped = true;
        s.equity = 15.0;
        s.peak = 70.0;
        s.drawdown = 55.0;
        s.trips.push(RiskTrip {
            limit: RiskLimit::FleetDrawdown,
            figure: 55.0,
            threshold: 50.0,
            bots: Vec::new(),
            at: "2026-11-22T02:00:00Z".parse().unwrap(),
            message: "the fleet's drawdown 55.00 crossed [risk] max_drawdown 50.00".into(),
        });
        let text = render(&s);
        assert!(
            text.contains("TRIPPED: max drawdown 55.00 >= 50.00"),
            "{text}"
        );
        assert!(
            text.contains("max drawdown 50.00, daily loss off, bot loss off"),
            "{text}"
        );
        assert!(
            text.contains("equity 15.00, peak 70.00, drawdown 55.00"),
            "{text}"
        );
        assert!(
            text.contains("2026-11-22 02:00:00 max_drawdown: the fleet's"),
            "{text}"
        );
    }
}
