//! Closed trades (`mem_protocol::registry::TradeRecord`) for the tests, the benches and
//! the load tools: [`closed_trade`], a builder with sensible defaults, so that a test states
//! only what matters to it (the other fields by struct update on what it builds), and
//! [`RandomTrades`], realistic random trades, the same on every run.

use crate::random::Lcg;
use chrono::{DateTime, Duration, TimeZone, Utc};
use mem_protocol::registry::{TradeAction, TradeRecord};

/// A closed trade with id `id`: by default a BUY of BTC/USDT on 5-minute candles with a
/// signal confidence of 0.7, entered at 65,000, held an hour, closed on 2026-11-20 at
/// 12:00 UTC with a return of +0.15% on a stake of 1,000 (a P&L of 1.5); not MEM-enhanced,
/// no regime, broker or costs.
pub fn closed_trade(id: impl Into<String>) -> TradeBuilder {
    TradeBuilder {
        id: id.into(),
        entry_price: 65_000.0,
        pnl_pct: 0.0015,
        pnl: None,
        exit_time: Utc.with_ymd_and_hms(2026, 11, 20, 12, 0, 0).unwrap(),
        held: Duration::hours(1),
        mem_boost: None,
    }
}

/// What [`closed_trade`] builds; the prices, times and P&L follow from one another.
#[derive(Debug, Clone)]
pub struct TradeBuilder {
    id: String,
    entry_price: f64,
    pnl_pct: f64,
    pnl: Option<f64>,
    exit_time: DateTime<Utc>,
    held: Duration,
    mem_boost: Option<f64>,
}

/// The stake a built trade's P&L is a share of, unless [`TradeBuilder::pnl`] says.
const STAKE: f64 = 1_000.0;

impl TradeBuilder {
    /// Closed at `exit` (and opened the holding time before).
    pub fn closed_at(mut self, exit: DateTime<Utc>) -> Self {
        self.exit_time = exit;
        self
    }

    /// Held this long before it closed.
    pub fn held(mut self, held: Duration) -> Self {
        self.held = held;
        self
    }

    /// Entered at `price`; the exit price follows from the return.
    pub fn entry_price(mut self, price: f64) -> Self {
        self.entry_price = price;
        self
    }

    /// Returning `pnl_pct` (0.01 is +1%): the exit price and the P&L on the stake follow.
    pub fn returning(mut self, pnl_pct: f64) -> Self {
        self.pnl_pct = pnl_pct;
        self
    }

    /// The P&L in the quote currency, when it is not the return on a stake of 1,000.
    pub fn pnl(mut self, pnl: f64) -> Self {
        self.pnl = Some(pnl);
        self
    }

    /// Made by a MEM decision that raised the signal's confidence by `boost`.
    pub fn mem_enhanced(mut self, boost: f64) -> Self {
        self.mem_boost = Some(boost);
        self
    }

    pub fn build(self) -> TradeRecord {
        TradeRecord {
            trade_id: self.id,
            symbol: "BTC/USDT".into(),
            timeframe: Some("5m".into()),
            action: TradeAction::Buy,
            confidence: Some(0.7),
            entry_price: self.entry_price,
            exit_price: self.entry_price * (1.0 + self.pnl_pct),
            entry_time: self.exit_time - self.held,
            exit_time: self.exit_time,
            pnl: self.pnl.unwrap_or(self.pnl_pct * STAKE),
            pnl_pct: self.pnl_pct,
            is_win: None,
            mem_enhanced: self.mem_boost.is_some(),
            mem_confidence_boost: self.mem_boost,
            learned_pattern: None,
            market_regime: None,
            volatility: None,
            broker: None,
            slippage: None,
            commission: None,
            ..TradeRecord::default()
        }
    }
}

/// Realistic closed trades, the same for the same seed, as the registry bench records a
/// million of (BENCHMARKS.md: 482 bytes a line in a performance log) and the load tools
/// send: eight symbols at early-2023 prices (crypto, a stock, a currency pair), BUY 55% of
/// the time, moves of -1.9% to +2.1% (a slight edge), a notional of 500 to 10,000, held 5
/// minutes to 6 hours, 30% MEM-enhanced (half of those with a learned pattern), every
/// optional field of the seed's TradePerformance filled.
#[derive(Debug, Clone)]
pub struct RandomTrades {
    rng: Lcg,
}

const SYMBOLS: &[(&str, f64)] = &[
    ("BTC/USDT", 43_000.0),
    ("ETH/USDT", 2_300.0),
    ("SOL/USDT", 95.0),
    ("BNB/USDT", 310.0),
    ("XRP/USDT", 0.62),
    ("ADA/USDT", 0.51),
    ("AAPL", 189.0),
    ("EUR/USD", 1.09),
];
const TIMEFRAMES: &[&str] = &["5m", "15m", "1h", "4h"];
const PATTERNS: &[&str] = &[
    "rsi_divergence_v2",
    "volume_spike_reversal",
    "macd_cross_confirmed",
    "range_breakout_retest",
];
const REGIMES: &[&str] = &["trending", "ranging", "volatile", "quiet"];

impl RandomTrades {
    pub fn new(seed: u64) -> RandomTrades {
        RandomTrades {
            rng: Lcg::new(seed),
        }
    }

    /// The `n`th trade, with id `id`: exits are one every 90 s from 2023-01-01 (each up to
    /// a minute late), so a million trades span about 2.9 years of daily returns.
    pub fn trade(&mut self, id: String, n: u64) -> TradeRecord {
        self.make(id, |rng| {
            Utc.with_ymd_and_hms(2023, 1, 1, 0, 0, 0).unwrap()
                + Duration::seconds(90 * n as i64 + rng.below(60) as i64)
        })
    }

    /// A trade with id `id` that closed at `exit_time` (a load that records trades as
    /// they close gives the time it is).
    pub fn trade_closed_at(&mut self, id: String, exit_time: DateTime<Utc>) -> TradeRecord {
        self.make(id, |_| exit_time)
    }

    fn make(
        &mut self,
        id: String,
        exit_time: impl FnOnce(&mut Lcg) -> DateTime<Utc>,
    ) -> TradeRecord {
        // The order of the draws makes the trades: the registry bench's figures were taken
        // with this one.
        let rng = &mut self.rng;
        let (symbol, base) = *rng.pick(SYMBOLS);
        let action = if rng.chance(0.55) {
            TradeAction::Buy
        } else {
            TradeAction::Sell
        };
        let entry_price = round_to(base * (0.8 + 0.4 * rng.unit()), 6);
        let move_pct = (rng.unit() - 0.47) * 0.04; // a slight edge
        let exit_price = round_to(entry_price * (1.0 + move_pct), 6);
        let direction = if action == TradeAction::Buy {
            1.0
        } else {
            -1.0
        };
        let pnl_pct = round_to(direction * (exit_price - entry_price) / entry_price, 6);
        let notional = 500.0 + 9_500.0 * rng.unit();
        let pnl = round_to(notional * pnl_pct, 2);
        let exit_time = exit_time(rng);
        let entry_time = exit_time - Duration::seconds(300 + rng.below(6 * 3600) as i64);
        let mem_enhanced = rng.chance(0.3);
        TradeRecord {
            trade_id: id,
            symbol: symbol.to_string(),
            timeframe: Some(rng.pick(TIMEFRAMES).to_string()),
            action,
            confidence: Some(round_to(0.5 + 0.45 * rng.unit(), 3)),
            entry_price,
            exit_price,
            entry_time,
            exit_time,
            pnl,
            pnl_pct,
            is_win: Some(pnl > 0.0),
            mem_enhanced,
            mem_confidence_boost: mem_enhanced.then(|| round_to(0.2 * rng.unit(), 3)),
            learned_pattern: (mem_enhanced && rng.chance(0.5))
                .then(|| rng.pick(PATTERNS).to_string()),
            market_regime: Some(rng.pick(REGIMES).to_string()),
            volatility: Some(round_to(0.01 + 0.2 * rng.unit(), 4)),
            broker: Some("binance".to_string()),
            slippage: Some(round_to(0.0005 * rng.unit(), 6)),
            commission: Some(round_to(notional * 0.001, 4)),
            // The seed's SQL columns stay empty: the figures of BENCHMARKS.md were
            // measured on lines without them.
            ..TradeRecord::default()
        }
    }
}

fn round_to(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// Gives strategy `id` live figures, as its own trades would: `wins` trades of +3% and
/// `losses` of -1%, one a day up to yesterday (a Sharpe ratio well above 1; the win rate
/// `wins / (wins + losses)`), then waits until its list entry carries them (the live
/// summary is written every 2 s). Recommendations use live figures from 30 trades: the
/// way a test has measured figures without a backtest.
pub async fn record_live_figures(
    client: &mem_protocol::Client,
    id: mem_protocol::strategy::StrategyId,
    wins: usize,
    losses: usize,
) {
    use mem_protocol::methods::method;
    let yesterday = Utc::now() - Duration::days(1);
    let n = wins + losses;
    let trades = (0..n)
        .map(|i| {
            // Losses spread among the wins, so that no stretch of days is all one kind.
            let win = i * wins / n != (i + 1) * wins / n;
            closed_trade(format!("live-{id}-{i}"))
                .closed_at(yesterday - Duration::days(i as i64))
                .returning(if win { 0.03 } else { -0.01 })
                .build()
        })
        .collect();
    client
        .call::<method::TradesRecord>(mem_protocol::registry::RecordTradesParams { id, trades })
        .await
        .expect("record the live trades");
    let started = std::time::Instant::now();
    loop {
        let detail = client
            .call::<method::StrategiesGet>(mem_protocol::methods::GetStrategyParams { id })
            .await
            .expect("the strategy");
        if detail.summary.live_trades >= n as u64 && detail.summary.live_sharpe_ratio.is_some() {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the live summary of {id} never showed {n} trades: {:?}",
            detail.summary
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_trade_is_consistent_and_says_what_it_was_told() {
        let exit = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let t = closed_trade("t1")
            .closed_at(exit)
            .held(Duration::hours(2))
            .returning(0.04)
            .build();
        assert_eq!(t.trade_id, "t1");
        assert_eq!(
            (t.entry_time, t.exit_time),
            (exit - Duration::hours(2), exit)
        );
        assert_eq!(t.exit_price, 65_000.0 * (1.0 + 0.04));
        assert_eq!((t.pnl, t.pnl_pct), (40.0, 0.04));
        let t = closed_trade("t2").pnl(-3.0).mem_enhanced(0.05).build();
        assert_eq!((t.pnl, t.pnl_pct), (-3.0, 0.0015));
        assert_eq!((t.mem_enhanced, t.mem_confidence_boost), (true, Some(0.05)));
    }

    #[test]
    fn random_trades_are_the_same_for_a_seed_and_valid() {
        let mut a = RandomTrades::new(7);
        let mut b = RandomTrades::new(7);
        for n in 0..1_000 {
            let (x, y) = (a.trade(format!("t{n}"), n), b.trade(format!("t{n}"), n));
            assert_eq!(x, y);
            assert!(x.entry_time < x.exit_time && x.entry_price > 0.0 && x.exit_price > 0.0);
            assert_eq!(x.is_win, Some(x.pnl > 0.0));
        }
        let now = Utc::now();
        assert_eq!(a.trade_closed_at("late".into(), now).exit_time, now);
    }
}
