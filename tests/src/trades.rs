//! Closed trades (`mem_protocol::registry::TradeRecord`) for the tests and the load tools:
//! [`closed_trade`], a builder with sensible defaults, so that a test states only what
//! matters to it (the other fields by struct update on what it builds).

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
        }
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
}
