//! The risk guard over every deployment (`risk.status`, `risk.reset`, the `risk.tripped`
//! and `risk.reset` events, `daemon.status`'s `risk`).
//!
//! Figures are in the bots' stake currency, summed over the Freqtrade bots the supervisor
//! polls: a bot's figure is its profit of all trades (open ones at the current rate); a
//! bot that stopped keeps its last figure in the fleet's equity, so a stop is no loss.

use crate::deploy::DeploymentId;
use crate::strategy::StrategyId;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

/// Which limit was crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RiskLimit {
    /// `[risk] max_drawdown`: the fleet's equity fell this far below its peak.
    FleetDrawdown,
    /// `[risk] daily_loss`: the fleet lost this much since 00:00 UTC.
    DailyLoss,
    /// `[risk] bot_loss`: one bot lost this much (since it started, or the last reset).
    BotLoss,
    /// The guard's saved state could not be read: it starts tripped rather than forget a
    /// trip (the unreadable file is kept aside).
    StateUnreadable,
}

impl RiskLimit {
    /// Whether crossing it affects every bot (else only the bot that crossed it).
    pub fn is_fleet_wide(self) -> bool {
        !matches!(self, RiskLimit::BotLoss)
    }

    /// Its name in the config's `[risk]` table.
    pub fn config_key(self) -> &'static str {
        match self {
            RiskLimit::FleetDrawdown => "max_drawdown",
            RiskLimit::DailyLoss => "daily_loss",
            RiskLimit::BotLoss => "bot_loss",
            RiskLimit::StateUnreadable => "state",
        }
    }
}

/// `[risk]`: each limit in the stake currency; none set, the guard is off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RiskLimits {
    // No `default` here: a missing member is `None` all the same, and a JSON array is
    // refused (with `default` on every member serde would take `[]` for a struct).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_drawdown: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily_loss: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bot_loss: Option<f64>,
}

impl RiskLimits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.max_drawdown.is_some() || self.daily_loss.is_some() || self.bot_loss.is_some()
    }
}

/// A bot a trip affects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RiskBot {
    pub deployment_id: DeploymentId,
    pub strategy_id: StrategyId,
    pub strategy_name: String,
}

/// A limit crossed: `risk.tripped`'s data, one of `risk.status`'s `trips`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RiskTrip {
    pub limit: RiskLimit,
    /// The drawdown or loss that crossed it (a positive amount).
    pub figure: f64,
    /// The limit.
    pub threshold: f64,
    /// The bots told to stop entering: every active bot for a fleet limit, the one bot
    /// for `bot_loss`.
    pub bots: Vec<RiskBot>,
    pub at: DateTime<Utc>,
    /// For people: what was crossed and what it did.
    pub message: String,
}

/// `risk.reset` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RiskResetParams {
    /// Why (kept with the reset, in the log and the event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `risk.reset` event data: the guard was cleared by an operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RiskReset {
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who (the caller's client name or uid), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    /// The trips it cleared.
    pub cleared: Vec<RiskTrip>,
}

/// `risk.status` result (and `daemon.status`'s `risk`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RiskStatus {
    /// The limits configured (none: the guard is off).
    pub limits: RiskLimits,
    /// Whether a limit was crossed and not reset: deploys are refused (all of them, or the
    /// tripped bots' strategies only for `bot_loss`) and the affected bots enter nothing.
    pub tripped: bool,
    /// The limits crossed since the last reset, oldest first.
    #[serde(default)]
    pub trips: Vec<RiskTrip>,
    /// The fleet's equity: the sum of the bots' figures since the last reset.
    pub equity: f64,
    /// Its highest value since the last reset.
    pub peak: f64,
    /// `peak - equity`.
    pub drawdown: f64,
    /// The UTC day the daily loss counts in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<NaiveDate>,
    /// Lost since the day began (negative: gained).
    pub day_loss: f64,
    /// The last reset, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_reset: Option<RiskResetInfo>,
}

/// When and why the guard was last reset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RiskResetInfo {
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl RiskStatus {
    /// Whether the guard watches anything.
    pub fn enabled(&self) -> bool {
        self.limits.any() || self.tripped
    }

    /// One line for people: `off`, `ok`, or the first trip.
    pub fn headline(&self) -> String {
        match self.trips.first() {
            Some(trip) => format!(
                "TRIPPED: {} {:.2} >= {:.2}{}",
                trip.limit.config_key().replace('_', " "),
                trip.figure,
                trip.threshold,
                if self.trips.len() > 1 {
                    format!(" (+{} more)", self.trips.len() - 1)
                } else {
                    String::new()
                }
            ),
            None if self.limits.any() => "ok".into(),
            None => "off".into(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample_trip() -> RiskTrip {
        RiskTrip {
            limit: RiskLimit::FleetDrawdown,
            figure: 55.0,
            threshold: 50.0,
            bots: vec![RiskBot {
                deployment_id: DeploymentId::new_random(),
                strategy_id: crate::strategy::tests::sample_summary().id,
                strategy_name: "Freqtrade Aggressive RSI".into(),
            }],
            at: "2026-11-22T02:00:00Z".parse().unwrap(),
            message: "the fleet's drawdown 55.00 crossed [risk] max_drawdown 50.00".into(),
        }
    }

    #[test]
    fn the_headline_says_off_ok_or_the_first_trip() {
        let mut status = RiskStatus::default();
        assert_eq!(status.headline(), "off");
        assert!(!status.enabled());
        status.limits.daily_loss = Some(20.0);
        assert_eq!(status.headline(), "ok");
        status.tripped = true;
        status.trips = vec![sample_trip(), sample_trip()];
        assert_eq!(
            status.headline(),
            "TRIPPED: max drawdown 55.00 >= 50.00 (+1 more)"
        );
        let json = serde_json::to_value(sample_trip()).unwrap();
        assert_eq!(json["limit"], "fleet_drawdown");
        assert!(json["bots"][0]["deploymentId"].is_string());
    }
}
