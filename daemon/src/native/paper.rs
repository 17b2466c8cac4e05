//! A paper broker: long-only spot trading on candle closes, with fees and slippage, so a
//! native strategy can trade without an exchange.
//!
//! The order of calls per closed candle `c` (the broker never sees a candle twice):
//!
//! 1. `broker.on_candle(&c)`: the open position meets `c`'s range (stop, target);
//! 2. the strategy's signal on `c`;
//! 3. maybe `broker.close(c.ts_ms, c.close, ExitReason::Signal)` on a Sell, or
//!    `broker.open(c.ts_ms, c.close, ..)` on a Buy when flat.
//!
//! A position opened at `c`'s close is first checked against the next candle; the broker
//! also ignores a candle that does not come after the entry, so a repeated call cannot
//! stop a position out on the candle that opened it.
//!
//! Money: `balance` is the cash not in a position. Opening moves the stake out of it
//! (the entry fee is paid from the stake), closing moves the proceeds (exit value minus
//! the exit fee) back, so after every close `balance = starting_balance + realised_pnl`.
//! Slippage always works against us: buys fill `slippage_pct` above the price, sells
//! below it.

use crate::market::candles::Candle;
use serde::{Deserialize, Serialize};
use std::fmt;

/// How the paper fills are priced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaperSettings {
    /// Fee per side, a fraction of the traded value: 0.001 is 0.1% (a common spot taker fee).
    pub fee_rate: f64,
    /// Slippage per fill in percent: 0.05 means 0.05%.
    pub slippage_pct: f64,
    /// Cash at the start, in the quote currency.
    pub starting_balance: f64,
}

impl Default for PaperSettings {
    fn default() -> Self {
        PaperSettings {
            fee_rate: 0.001,
            slippage_pct: 0.05,
            starting_balance: 1000.0,
        }
    }
}

impl PaperSettings {
    /// Every field in a sane range; the error names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.fee_rate.is_finite() && (0.0..=0.1).contains(&self.fee_rate)) {
            return Err(format!(
                "`fee_rate` must be from 0 to 0.1 (a fraction per side: 0.001 is 0.1%), got {}",
                self.fee_rate
            ));
        }
        if !(self.slippage_pct.is_finite() && (0.0..=10.0).contains(&self.slippage_pct)) {
            return Err(format!(
                "`slippage_pct` must be from 0 to 10 (percent: 0.05 is 0.05%), got {}",
                self.slippage_pct
            ));
        }
        if !(self.starting_balance.is_finite() && self.starting_balance > 0.0) {
            return Err(format!(
                "`starting_balance` must be above 0, got {}",
                self.starting_balance
            ));
        }
        Ok(())
    }
}

/// The open long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenPosition {
    /// 1, 2, .. per broker.
    pub trade_id: u64,
    /// The MEM decision that opened it, for reporting its outcome.
    pub decision_id: Option<String>,
    pub entry_ts_ms: i64,
    /// The fill: the price plus slippage.
    pub entry_price: f64,
    /// Units bought: (stake − entry fee) / entry_price.
    pub quantity: f64,
    /// The cash committed, the entry fee included.
    pub stake: f64,
    pub stop_price: Option<f64>,
    pub target_price: Option<f64>,
    /// The (enhanced) confidence it was opened with.
    pub confidence: f64,
    pub learned_pattern: Option<String>,
    pub signature: Option<String>,
}

/// Why a position closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExitReason {
    StopLoss,
    TakeProfit,
    /// The strategy's Sell.
    Signal,
    /// The end of a replay or the deployment.
    End,
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ExitReason::StopLoss => "stop_loss",
            ExitReason::TakeProfit => "take_profit",
            ExitReason::Signal => "signal",
            ExitReason::End => "end",
        })
    }
}

/// A finished round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClosedTrade {
    pub position: OpenPosition,
    /// The open time of the candle it closed in (or the time given to `close`).
    pub exit_ts_ms: i64,
    /// The fill: the exit price minus slippage.
    pub exit_price: f64,
    /// Entry and exit fees.
    pub fees: f64,
    /// Net of both fees and slippage.
    pub pnl: f64,
    /// `pnl` as a fraction of the stake: 0.02 is +2%.
    pub pnl_pct: f64,
    pub reason: ExitReason,
}

impl ClosedTrade {
    pub fn is_win(&self) -> bool {
        self.pnl > 0.0
    }
}

/// Long-only spot paper trading, one position at a time. Its whole state serializes, so
/// a deployment resumes where it stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PaperBroker {
    settings: PaperSettings,
    /// Cash not in the position.
    balance: f64,
    position: Option<OpenPosition>,
    next_trade_id: u64,
    closed_trades: u64,
    wins: u64,
    realised_pnl: f64,
    fees_paid: f64,
}

impl PaperBroker {
    /// A broker holding `settings.starting_balance` in cash. The settings are the
    /// caller's to [`PaperSettings::validate`].
    pub fn new(settings: PaperSettings) -> Self {
        PaperBroker {
            balance: settings.starting_balance,
            settings,
            position: None,
            next_trade_id: 1,
            closed_trades: 0,
            wins: 0,
            realised_pnl: 0.0,
            fees_paid: 0.0,
        }
    }

    pub fn settings(&self) -> &PaperSettings {
        &self.settings
    }

    /// Cash not in the open position.
    pub fn balance(&self) -> f64 {
        self.balance
    }

    /// Cash plus the open position valued at `mark_price` (before exit costs).
    pub fn equity(&self, mark_price: f64) -> f64 {
        self.balance
            + self
                .position
                .as_ref()
                .map_or(0.0, |p| p.quantity * mark_price)
    }

    pub fn position(&self) -> Option<&OpenPosition> {
        self.position.as_ref()
    }

    pub fn closed_trades(&self) -> u64 {
        self.closed_trades
    }

    /// Closed trades with a positive pnl.
    pub fn wins(&self) -> u64 {
        self.wins
    }

    /// The sum of the closed trades' pnl.
    pub fn realised_pnl(&self) -> f64 {
        self.realised_pnl
    }

    /// Fees of the closed trades.
    pub fn fees_paid(&self) -> f64 {
        self.fees_paid
    }

    /// Opens a long at `price` (the candle close) plus slippage with `size_fraction` of
    /// the balance (above 1 counts as 1: spot has no leverage); stop/target given as
    /// percentages below/above the fill (e.g. 1.5 means -1.5%), a non-positive one (or a
    /// stop of 100% or more) setting none. None when a position is already open, the
    /// price is not positive or the stake would be <= 0.
    #[allow(clippy::too_many_arguments)] // one call site shape: the fields of the position
    pub fn open(
        &mut self,
        ts_ms: i64,
        price: f64,
        size_fraction: f64,
        stop_pct: Option<f64>,
        target_pct: Option<f64>,
        confidence: f64,
        decision_id: Option<String>,
        learned_pattern: Option<String>,
        signature: Option<String>,
    ) -> Option<&OpenPosition> {
        // Checked before `min`, which would turn a NaN fraction into 1.
        let sane = |v: f64| v.is_finite() && v > 0.0;
        if self.position.is_some() || !sane(price) || !sane(size_fraction) {
            return None;
        }
        let stake = self.balance * size_fraction.min(1.0);
        if !(stake.is_finite() && stake > 0.0) {
            return None;
        }
        let entry_price = price * (1.0 + self.settings.slippage_pct / 100.0);
        let entry_fee = stake * self.settings.fee_rate;
        let pct = |p: Option<f64>| p.filter(|p| p.is_finite() && *p > 0.0);
        let position = OpenPosition {
            trade_id: self.next_trade_id,
            decision_id,
            entry_ts_ms: ts_ms,
            entry_price,
            quantity: (stake - entry_fee) / entry_price,
            stake,
            stop_price: pct(stop_pct)
                .filter(|p| *p < 100.0)
                .map(|p| entry_price * (1.0 - p / 100.0)),
            target_price: pct(target_pct).map(|p| entry_price * (1.0 + p / 100.0)),
            confidence,
            learned_pattern,
            signature,
        };
        self.next_trade_id += 1;
        self.balance -= stake;
        self.position = Some(position);
        self.position.as_ref()
    }

    /// Checks the open position against a new candle: stop first (if low <= stop, exit
    /// at the stop price, or at the open if the candle opened below it — a gap), then
    /// target (high >= target: exit at the target, or the open if it gapped above). A
    /// candle touching both counts as stopped: the candle does not say which came first,
    /// and assuming the worst keeps paper results honest. Exit fills get slippage against
    /// us. Answers the closed trade; a candle not after the entry is ignored.
    pub fn on_candle(&mut self, c: &Candle) -> Option<ClosedTrade> {
        let position = self.position.as_ref()?;
        if c.ts_ms <= position.entry_ts_ms {
            return None;
        }
        if let Some(stop) = position.stop_price.filter(|stop| c.low <= *stop) {
            return self.exit(c.ts_ms, c.open.min(stop), ExitReason::StopLoss);
        }
        if let Some(target) = position.target_price.filter(|target| c.high >= *target) {
            return self.exit(c.ts_ms, c.open.max(target), ExitReason::TakeProfit);
        }
        None
    }

    /// Closes at `price` minus slippage (a sell signal, or the end of a replay). None
    /// when flat or when the price is not positive (the position stays open).
    pub fn close(&mut self, ts_ms: i64, price: f64, reason: ExitReason) -> Option<ClosedTrade> {
        if !(price.is_finite() && price > 0.0) {
            return None;
        }
        self.exit(ts_ms, price, reason)
    }

    /// Sells the whole position at `price` before slippage.
    fn exit(&mut self, ts_ms: i64, price: f64, reason: ExitReason) -> Option<ClosedTrade> {
        let position = self.position.take()?;
        let exit_price = price * (1.0 - self.settings.slippage_pct / 100.0);
        let exit_value = position.quantity * exit_price;
        let exit_fee = exit_value * self.settings.fee_rate;
        let fees = position.stake * self.settings.fee_rate + exit_fee;
        let proceeds = exit_value - exit_fee;
        let pnl = proceeds - position.stake;
        let trade = ClosedTrade {
            pnl_pct: pnl / position.stake,
            position,
            exit_ts_ms: ts_ms,
            exit_price,
            fees,
            pnl,
            reason,
        };
        self.balance += proceeds;
        self.closed_trades += 1;
        self.wins += u64::from(trade.is_win());
        self.realised_pnl += pnl;
        self.fees_paid += fees;
        Some(trade)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-9,
            "{actual} is not {expected}"
        );
    }

    fn broker(fee_rate: f64, slippage_pct: f64) -> PaperBroker {
        PaperBroker::new(PaperSettings {
            fee_rate,
            slippage_pct,
            starting_balance: 1000.0,
        })
    }

    fn open(
        b: &mut PaperBroker,
        fraction: f64,
        stop: Option<f64>,
        target: Option<f64>,
    ) -> OpenPosition {
        b.open(
            0,
            100.0,
            fraction,
            stop,
            target,
            0.7,
            Some("d1".into()),
            None,
            None,
        )
        .expect("opens")
        .clone()
    }

    fn candle(ts_ms: i64, open: f64, high: f64, low: f64, close: f64) -> Candle {
        Candle {
            ts_ms,
            open,
            high,
            low,
            close,
            volume: 1.0,
        }
    }

    #[test]
    fn fees_alone() {
        // 1% per side, no slippage: stake 500, entry fee 5, 495/100 = 4.95 units.
        let mut b = broker(0.01, 0.0);
        let p = open(&mut b, 0.5, None, None);
        assert_close(p.entry_price, 100.0);
        assert_close(p.quantity, 4.95);
        assert_close(p.stake, 500.0);
        assert_close(b.balance(), 500.0);
        // Sold at 110: 544.5, exit fee 5.445, proceeds 539.055, pnl 39.055.
        let t = b.close(60_000, 110.0, ExitReason::Signal).unwrap();
        assert_close(t.exit_price, 110.0);
        assert_close(t.fees, 10.445);
        assert_close(t.pnl, 39.055);
        assert_close(t.pnl_pct, 0.078_11);
        assert_close(b.balance(), 1039.055);
        assert_close(b.realised_pnl(), 39.055);
        assert_eq!((b.closed_trades(), b.wins()), (1, 1));
        assert!(b.position().is_none());
    }

    #[test]
    fn slippage_alone() {
        // 1% against us both ways: buy at 101, sell at 99; 1000/101 units.
        let mut b = broker(0.0, 1.0);
        let p = open(&mut b, 1.0, None, None);
        assert_close(p.entry_price, 101.0);
        assert_close(b.balance(), 0.0);
        let t = b.close(60_000, 100.0, ExitReason::End).unwrap();
        assert_close(t.exit_price, 99.0);
        assert_close(t.fees, 0.0);
        assert_close(t.pnl, 1000.0 * 99.0 / 101.0 - 1000.0); // -19.80198..
        assert_close(b.balance(), 980.198_019_801_980_2);
        assert_eq!(b.wins(), 0);
    }

    #[test]
    fn default_costs_by_hand() {
        // Defaults: 0.1% fee, 0.05% slippage, 1000 cash, all in at 100.
        let mut b = PaperBroker::new(PaperSettings::default());
        let p = open(&mut b, 1.0, Some(2.0), Some(4.0));
        assert_close(p.entry_price, 100.05);
        assert_close(p.quantity, 999.0 / 100.05); // 9.98500749..
        assert_close(p.stop_price.unwrap(), 98.049);
        assert_close(p.target_price.unwrap(), 104.052);
        // Out at 110 → 109.945; value 999·109.945/100.05 = 1097.80164917..
        let t = b.close(60_000, 110.0, ExitReason::Signal).unwrap();
        assert_close(t.exit_price, 109.945);
        assert_close(t.fees, 1.0 + 1.097_801_649_175_412_3);
        assert_close(t.pnl, 96.703_847_526_237);
        assert_close(t.pnl_pct, 0.096_703_847_526_237);
        assert_close(b.balance(), 1_096.703_847_526_237);
    }

    #[test]
    fn stop_hit_fills_at_the_stop_less_slippage() {
        let mut b = PaperBroker::new(PaperSettings::default());
        open(&mut b, 1.0, Some(2.0), Some(4.0));
        // Opens above the stop (98.049) and trades through it.
        let t = b
            .on_candle(&candle(60_000, 99.0, 99.5, 97.0, 98.5))
            .unwrap();
        assert_eq!(t.reason, ExitReason::StopLoss);
        assert_close(t.exit_price, 98.049 * 0.9995);
        // quantity·stop = 999·0.98 exactly: pnl = 999·0.98·0.9995·0.999 − 1000.
        assert_close(t.pnl, 999.0 * 0.98 * 0.9995 * 0.999 - 1000.0); // -22.448..
        assert_eq!(t.exit_ts_ms, 60_000);
    }

    #[test]
    fn gap_through_the_stop_fills_at_the_open() {
        let mut b = broker(0.0, 0.0);
        open(&mut b, 1.0, Some(2.0), None);
        let t = b
            .on_candle(&candle(60_000, 95.0, 96.0, 94.0, 95.5))
            .unwrap();
        assert_eq!(t.reason, ExitReason::StopLoss);
        assert_close(t.exit_price, 95.0);
        assert_close(t.pnl, -50.0);
    }

    #[test]
    fn target_hit_and_gap_above_it() {
        let mut b = broker(0.0, 0.0);
        open(&mut b, 1.0, Some(2.0), Some(4.0));
        // Not reached: stays open.
        assert_eq!(
            b.on_candle(&candle(60_000, 100.0, 103.9, 98.1, 103.0)),
            None
        );
        let t = b
            .on_candle(&candle(120_000, 103.0, 105.0, 102.0, 104.5))
            .unwrap();
        assert_eq!(t.reason, ExitReason::TakeProfit);
        assert_close(t.exit_price, 104.0);
        assert_close(t.pnl, 40.0);
        // A gap above the target fills at the (better) open.
        let mut b = broker(0.0, 0.0);
        open(&mut b, 1.0, None, Some(4.0));
        let t = b
            .on_candle(&candle(60_000, 106.0, 107.0, 105.0, 106.5))
            .unwrap();
        assert_close(t.exit_price, 106.0);
    }

    #[test]
    fn stop_wins_when_a_candle_touches_both() {
        let mut b = broker(0.0, 0.0);
        open(&mut b, 1.0, Some(2.0), Some(4.0));
        let t = b
            .on_candle(&candle(60_000, 100.0, 105.0, 97.0, 104.0))
            .unwrap();
        assert_eq!(t.reason, ExitReason::StopLoss);
        assert_close(t.exit_price, 98.0);
    }

    #[test]
    fn the_entry_candle_is_not_checked() {
        let mut b = broker(0.0, 0.0);
        open(&mut b, 1.0, Some(2.0), Some(4.0));
        // Same timestamp as the entry (ts 0): ignored although its low is below the stop.
        assert_eq!(b.on_candle(&candle(0, 100.0, 105.0, 90.0, 100.0)), None);
        assert!(b.position().is_some());
    }

    #[test]
    fn no_double_open_and_ids_count_up() {
        let mut b = broker(0.0, 0.0);
        assert_eq!(open(&mut b, 0.5, None, None).trade_id, 1);
        assert!(
            b.open(1, 100.0, 0.5, None, None, 0.5, None, None, None)
                .is_none()
        );
        assert_close(b.balance(), 500.0);
        b.close(2, 100.0, ExitReason::Signal).unwrap();
        assert!(b.close(3, 100.0, ExitReason::Signal).is_none());
        assert_eq!(
            b.open(4, 100.0, 0.5, None, None, 0.5, None, None, None)
                .unwrap()
                .trade_id,
            2
        );
    }

    #[test]
    fn bad_sizes_and_prices_do_not_open() {
        let mut b = broker(0.0, 0.0);
        for (price, fraction) in [
            (100.0, 0.0),
            (100.0, -1.0),
            (100.0, f64::NAN),
            (0.0, 0.5),
            (f64::NAN, 0.5),
        ] {
            assert!(
                b.open(0, price, fraction, None, None, 0.5, None, None, None)
                    .is_none()
            );
        }
        // Above 1 is all in, not leverage.
        let p = b
            .open(0, 100.0, 3.0, Some(0.0), Some(-1.0), 0.5, None, None, None)
            .unwrap();
        assert_close(p.stake, 1000.0);
        assert_eq!((p.stop_price, p.target_price), (None, None));
        assert!(b.close(1, f64::NAN, ExitReason::End).is_none());
        assert!(b.position().is_some());
    }

    #[test]
    fn settings_validate_names_the_field() {
        assert_eq!(PaperSettings::default().validate(), Ok(()));
        let bad = |s: PaperSettings| s.validate().unwrap_err();
        let d = PaperSettings::default;
        assert!(
            bad(PaperSettings {
                fee_rate: -0.1,
                ..d()
            })
            .contains("`fee_rate`")
        );
        assert!(
            bad(PaperSettings {
                slippage_pct: f64::NAN,
                ..d()
            })
            .contains("`slippage_pct`")
        );
        assert!(
            bad(PaperSettings {
                starting_balance: 0.0,
                ..d()
            })
            .contains("`starting_balance`")
        );
    }

    #[test]
    fn the_state_round_trips_through_json() {
        let mut b = PaperBroker::new(PaperSettings::default());
        open(&mut b, 0.5, Some(2.0), None);
        b.close(60_000, 101.0, ExitReason::Signal).unwrap();
        let p = b
            .open(
                120_000,
                100.0,
                0.5,
                Some(2.0),
                Some(3.0),
                0.8,
                Some("d2".into()),
                Some("pattern".into()),
                Some("sig".into()),
            )
            .unwrap()
            .clone();
        let json = serde_json::to_string(&b).unwrap();
        let mut resumed: PaperBroker = serde_json::from_str(&json).unwrap();
        assert_eq!(resumed, b);
        assert_eq!(resumed.position(), Some(&p));
        // The resumed broker behaves the same.
        let c = candle(180_000, 100.0, 110.0, 99.0, 105.0);
        assert_eq!(resumed.on_candle(&c), b.on_candle(&c));
        assert_eq!(resumed, b);
        assert_eq!(resumed.closed_trades(), 2);
        let reason: ExitReason = serde_json::from_str("\"take_profit\"").unwrap();
        assert_eq!(reason, ExitReason::TakeProfit);
        assert_eq!(ExitReason::StopLoss.to_string(), "stop_loss");
    }
}
