//! Market data: how old the candles behind an answer are ([`Freshness`]), and refreshing
//! them from the exchange (`market.refresh`, the `data_refresh` job: [`RefreshParams`],
//! [`RefreshReport`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How old the newest candle behind an answer is. Every answer computed from candles
/// (market conditions, a prediction, a feed) carries one, so nothing acts on old data
/// without saying so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct Freshness {
    /// When the newest candle used closed (its open time plus its timeframe).
    pub as_of: DateTime<Utc>,
    /// Seconds from `asOf` to the answer (negative only with a clock ahead of ours).
    pub age_secs: i64,
    /// Older than `staleAfterSecs`: the data do not describe the market now.
    pub stale: bool,
    /// The age past which the data are stale: `[market] stale_after_candles` (3) times
    /// the timeframe.
    pub stale_after_secs: i64,
    /// The candles are the shipped demo data (ten BTC pairs of January 2018, in the data
    /// directory since the first start), not market data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub demo: bool,
}

impl Default for Freshness {
    /// Nothing known: as old as can be, stale.
    fn default() -> Self {
        Freshness {
            as_of: DateTime::<Utc>::UNIX_EPOCH,
            age_secs: i64::MAX,
            stale: true,
            stale_after_secs: 0,
            demo: false,
        }
    }
}

impl Freshness {
    /// The freshness at `now` of data whose newest candle closed at `as_of`.
    pub fn new(as_of: DateTime<Utc>, stale_after_secs: i64, now: DateTime<Utc>) -> Freshness {
        let age_secs = (now - as_of).num_seconds();
        Freshness {
            as_of,
            age_secs,
            stale: age_secs > stale_after_secs,
            stale_after_secs,
            demo: false,
        }
    }

    /// The same data seen at `now` (a client keeps the age current with its own clock).
    pub fn at(&self, now: DateTime<Utc>) -> Freshness {
        Freshness {
            demo: self.demo,
            ..Freshness::new(self.as_of, self.stale_after_secs, now)
        }
    }

    /// `8 years old, stale (demo data)`, `4 min old`.
    pub fn words(&self) -> String {
        let mut text = format!("{} old", age_words(self.age_secs));
        if self.stale {
            text.push_str(", stale");
        }
        if self.demo {
            text.push_str(" (demo data: the shipped 2018 candles)");
        }
        text
    }

    /// Why the data are stale, naming the candle: `the newest candle of ETH/BTC 1h closed
    /// 2018-01-31 23:00 UTC, 8 years ago (stale after 3 h)`.
    pub fn stale_reason(&self, pair: &str, timeframe: &str) -> String {
        format!(
            "the newest {timeframe} candle of {pair} closed {}, {} ago (stale after {}){}",
            self.as_of.format("%Y-%m-%d %H:%M UTC"),
            age_words(self.age_secs),
            age_words(self.stale_after_secs),
            if self.demo {
                "; these are the shipped 2018 demo candles"
            } else {
                ""
            }
        )
    }
}

/// An age in the largest unit that fits: `45 s`, `12 min`, `5 h`, `3 days`, `8 years`.
pub fn age_words(secs: i64) -> String {
    let s = secs.max(0);
    let plural = |n: i64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match s {
        _ if secs == i64::MAX => "unknown".into(),
        0..120 => format!("{s} s"),
        120..7_200 => format!("{} min", s / 60),
        7_200..172_800 => format!("{} h", s / 3_600),
        172_800..63_115_200 => plural(s / 86_400, "day"),
        _ => plural(s / 31_557_600, "year"),
    }
}

/// The market now, as a subscriber to `market` sees it (the snapshot's `market`, the
/// `market.changed` event): what `market.conditions` answers without params, or why it
/// cannot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct MarketState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Box<crate::recommend::ConditionsReport>>,
    /// Why there are no conditions (no candles, too few).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `market.refresh` params: refresh now, as the `data_refresh` job would, maybe fewer
/// pairs or another history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshParams {
    /// Pairs as Freqtrade names them (`ETH/USDT`); default: `[market.refresh] pairs`
    /// (the reference pair, the training pairs, every deployed bot's pairs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<String>,
    /// Default: `[market.refresh] timeframes` (the training and conditions timeframes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timeframes: Vec<String>,
    /// Days of history a pair without fresh candles gets (default `[market.refresh] days`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// Answer when the run has finished, with its record (default: at once; the record
    /// comes as `job.finished`, progress as `job.progress`).
    #[serde(default)]
    pub wait: bool,
}

/// What became of one pair and timeframe in a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RefreshStatus {
    /// Brought up to date from the candles it had (maybe none were new).
    Updated,
    /// Downloaded anew: there was no file, or its newest candle was older than the
    /// history asked for (the shipped 2018 candles), so it was replaced.
    Downloaded,
    /// The exchange or Freqtrade failed for it; the file in the market directory is as
    /// it was.
    Failed,
}

/// One pair and timeframe of a refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RefreshedPair {
    pub pair: String,
    pub timeframe: String,
    pub status: RefreshStatus,
    /// Candles the file has now that it did not have before.
    pub added: u64,
    /// Candles in the file now.
    pub candles: u64,
    /// Open time of the newest candle now in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub newest: Option<DateTime<Utc>>,
    /// The file in the market directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Why it failed: the exchange's or Freqtrade's own words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A refresh's record: the `details` of a `data_refresh` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct RefreshReport {
    /// The exchange's name, from the overrides the bots use.
    pub exchange: String,
    pub market_dir: String,
    pub days: u32,
    pub pairs: Vec<String>,
    pub timeframes: Vec<String>,
    /// One per pair and timeframe, in the order asked.
    pub results: Vec<RefreshedPair>,
    /// The whole run, and Freqtrade's part of it (its start-up is most of it).
    pub seconds: f64,
    pub freqtrade_seconds: f64,
    /// Freqtrade's start-up (Python, its configuration, the exchange's markets) until it
    /// began to download: when its log said so, to a tenth of a second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub freqtrade_startup_seconds: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn stale_past_the_multiple_of_the_timeframe() {
        let now = at("2026-12-05T12:00:00Z");
        let fresh = Freshness::new(at("2026-12-05T11:00:00Z"), 3 * 3600, now);
        assert_eq!((fresh.age_secs, fresh.stale), (3600, false));
        assert_eq!(fresh.words(), "60 min old");
        let old = Freshness::new(at("2018-02-01T00:00:00Z"), 3 * 3600, now);
        assert!(old.stale);
        assert_eq!(old.words(), "8 years old, stale");
        assert_eq!(
            old.stale_reason("ETH/BTC", "1h"),
            "the newest 1h candle of ETH/BTC closed 2018-02-01 00:00 UTC, 8 years ago (stale after 3 h)"
        );
        // The same data later: older.
        let later = fresh.at(at("2026-12-05T14:30:00Z"));
        assert_eq!((later.age_secs, later.stale), (12_600, true));
        let json = serde_json::to_value(&old).unwrap();
        assert_eq!(json["asOf"], "2018-02-01T00:00:00Z");
        assert!(json.get("demo").is_none(), "false is left out");
    }

    #[test]
    fn ages_read_in_their_unit() {
        assert_eq!(age_words(59), "59 s");
        assert_eq!(age_words(600), "10 min");
        assert_eq!(age_words(3 * 3600), "3 h");
        assert_eq!(age_words(86_400 * 3), "3 days");
        assert_eq!(age_words(86_400 * 365 * 2), "730 days");
        assert_eq!(age_words(86_400 * 800), "2 years");
        assert_eq!(age_words(i64::MAX), "unknown");
        assert_eq!(age_words(-5), "0 s");
    }
}
