//! Trading performance metrics of a strategy, computed from its closed trades.
//!
//! # Conventions
//!
//! The ratios are computed over a series of **daily returns** built from closed trades:
//! each trade's `pnl_pct` is compounded into the UTC day of its exit
//! (`exit_ms.div_euclid(86_400_000)`), and every day between the first and the last exit
//! that has no exit counts as a return of exactly 0. Crypto markets trade every day, so
//! a year is [`PERIODS_PER_YEAR`] = 365 such days, and the risk-free rate (or required
//! return) is 0. [`CONVENTION`] says the same in one sentence; it goes out with every
//! report so that a reader knows what the numbers mean.
//!
//! Over a series of returns `r` of `n` days (`n >= 2` for the ratios):
//!
//! | function | definition | empyrical (`annualization=365`) |
//! | --- | --- | --- |
//! | [`sharpe_ratio`] | `mean(r) / std(r, ddof=1) * sqrt(365)` | `empyrical.sharpe_ratio(r, risk_free=0)` |
//! | [`sortino_ratio`] | `mean(r) * 365 / (sqrt(mean(min(r, 0)^2)) * sqrt(365))` | `empyrical.sortino_ratio(r, required_return=0)` |
//! | [`max_drawdown`] | most negative `equity / running peak - 1` of `equity = cumprod(1 + r)`, starting from a peak of 1 | `empyrical.max_drawdown(r)` |
//! | [`cagr`] | `prod(1 + r) ^ (365 / n) - 1` | `empyrical.cagr(r)` |
//! | [`annual_volatility`] | `std(r, ddof=1) * sqrt(365)` | `empyrical.annual_volatility(r)` |
//! | [`total_return`] | `prod(1 + r) - 1` | `empyrical.cum_returns_final(r)` |
//!
//! These match empyrical's definitions (Quantopian's library, as maintained in
//! `empyrical-reloaded`), and a test checks them against values that library computed
//! (`tests/fixtures/metrics/reference.json`). Where empyrical answers NaN or ±inf (too
//! few returns, zero deviation, no downside, an equity that ends below zero), the
//! functions returning an `Option` answer `None`; for no returns at all, [`max_drawdown`]
//! and [`total_return`] answer 0. A series of identical returns has a deviation of exactly 0
//! (empyrical's `sharpe_ratio` does the same), not a rounding residue of the mean.
//!
//! Per-trade figures in [`Metrics`]: wins and losses count `is_win`; the profit factor is
//! gross profit over gross loss, summed over the trades' `pnl` (positive and negative
//! respectively), and is `None` when there is no loss; durations are `exit_ms - entry_ms`.
//!
//! [`compute`] makes one pass over the trades, then one over their `(exit_ms, pnl_pct)`
//! pairs, which it copies and sorts first only when the trades are not in exit order.
//! Within a day the trades are compounded in `(exit_ms, pnl_pct)` order whatever the
//! input order, so the daily series and everything computed from it do not depend on how
//! the trades were ordered, to the last bit (sums of `pnl` may, in their last bits). Days
//! without trades are accounted for without being stored, so a long quiet span costs
//! nothing in [`compute`] (unlike [`daily_returns`], which lists them).

use std::cmp::Ordering;

/// One closed trade, reduced to what metrics need.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TradePoint {
    /// Entry time, epoch milliseconds UTC.
    pub entry_ms: i64,
    /// Exit time, epoch milliseconds UTC (>= `entry_ms`).
    pub exit_ms: i64,
    /// Profit/loss in quote currency.
    pub pnl: f64,
    /// Return of the trade as a fraction (0.04 = +4%).
    pub pnl_pct: f64,
    /// Whether the trade counts as a win.
    pub is_win: bool,
    /// Whether the trade was taken with memory enhancement.
    pub mem_enhanced: bool,
}

/// The conventions used, returned with every report so a reader knows what the numbers mean.
pub const CONVENTION: &str = "Daily returns are built from closed trades (each trade's \
pnl_pct compounded into the UTC day of its exit; days between the first and last exit \
without trades count as 0) with a risk-free rate of 0: Sharpe = mean/std(ddof=1)*sqrt(365), \
Sortino = mean*365/(sqrt(mean(min(r,0)^2))*sqrt(365)), annual volatility = \
std(ddof=1)*sqrt(365), max drawdown on the compounded equity curve starting at 1, \
total return = prod(1+r)-1, CAGR = (1+total return)^(365/day count)-1, and \
profit factor = gross profit / gross loss over the trades' pnl (empyrical's definitions \
with annualization=365).";

/// Periods per year of the daily series: crypto trades every day.
pub const PERIODS_PER_YEAR: f64 = 365.0;

/// Milliseconds in a UTC day (epoch days have no leap seconds).
const MS_PER_DAY: i64 = 86_400_000;

/// Sharpe ratio of periodic returns (risk-free 0); `None` if fewer than 2 returns or zero deviation.
pub fn sharpe_ratio(returns: &[f64], periods_per_year: f64) -> Option<f64> {
    Days::dense(returns).sharpe_ratio(periods_per_year)
}

/// Sortino ratio of periodic returns (required return 0); `None` if fewer than 2 returns or no downside.
pub fn sortino_ratio(returns: &[f64], periods_per_year: f64) -> Option<f64> {
    Days::dense(returns).sortino_ratio(periods_per_year)
}

/// Maximum drawdown of the compounded equity curve (starting at 1), as a fraction <= 0; 0 for no returns.
pub fn max_drawdown(returns: &[f64]) -> f64 {
    Days::dense(returns).max_drawdown()
}

/// Compound annual growth rate of periodic returns; `None` if empty or the equity ends below 0.
pub fn cagr(returns: &[f64], periods_per_year: f64) -> Option<f64> {
    Days::dense(returns).cagr(periods_per_year)
}

/// Compounded total return `prod(1 + r) - 1`; 0 for no returns.
pub fn total_return(returns: &[f64]) -> f64 {
    Days::dense(returns).total_return()
}

/// Annualized volatility `std(ddof=1) * sqrt(periods_per_year)`; `None` if fewer than 2 returns.
pub fn annual_volatility(returns: &[f64], periods_per_year: f64) -> Option<f64> {
    Days::dense(returns).annual_volatility(periods_per_year)
}

/// Daily returns from trades as [`CONVENTION`] says, from the first to the last exit day; trades need not be sorted.
pub fn daily_returns(trades: &[TradePoint]) -> Vec<f64> {
    let mut out = Vec::new();
    let mut next_day: Option<i64> = None;
    for_each_day(trades, is_exit_ordered(trades), |day, ret| {
        if let Some(next) = next_day {
            // Days `next..day` had no exits.
            let gap = usize::try_from(day - next).expect("gap too large for memory");
            out.resize(out.len() + gap, 0.0);
        }
        out.push(ret);
        next_day = Some(day + 1);
    });
    out
}

/// Everything `strategies.performance` reports for a set of trades (it crosses the socket,
/// so it lives in mem-protocol).
pub use mem_protocol::registry::Metrics;

/// Computes all [`Metrics`] of a set of closed trades, in any order, under [`CONVENTION`].
pub fn compute(trades: &[TradePoint]) -> Metrics {
    let Some(first) = trades.first() else {
        return Metrics {
            total_trades: 0,
            wins: 0,
            losses: 0,
            win_rate: None,
            total_pnl: 0.0,
            average_pnl: None,
            total_return: 0.0,
            profit_factor: None,
            sharpe_ratio: None,
            sortino_ratio: None,
            max_drawdown: 0.0,
            cagr: None,
            annual_volatility: None,
            average_duration_secs: None,
            best_trade_pnl: None,
            worst_trade_pnl: None,
            first_exit_ms: None,
            last_exit_ms: None,
        };
    };

    // One pass for the per-trade figures, noting whether the trades are in exit order.
    let mut wins = 0u64;
    let mut total_pnl = 0.0;
    let mut gross_profit = 0.0;
    let mut gross_loss = 0.0;
    let mut best = first.pnl;
    let mut worst = first.pnl;
    let mut duration_ms: i128 = 0;
    let mut first_exit = first.exit_ms;
    let mut last_exit = first.exit_ms;
    let mut ordered = true;
    let mut prev = first;
    for t in trades {
        wins += u64::from(t.is_win);
        total_pnl += t.pnl;
        if t.pnl > 0.0 {
            gross_profit += t.pnl;
        } else if t.pnl < 0.0 {
            gross_loss -= t.pnl;
        }
        best = best.max(t.pnl);
        worst = worst.min(t.pnl);
        duration_ms += i128::from(t.exit_ms) - i128::from(t.entry_ms);
        first_exit = first_exit.min(t.exit_ms);
        last_exit = last_exit.max(t.exit_ms);
        ordered &= exit_order(prev, t) != Ordering::Greater;
        prev = t;
    }

    // The returns of the days with exits, in day order; the other days are 0.
    let mut active = Vec::new();
    for_each_day(trades, ordered, |_, ret| active.push(ret));
    let span = last_exit.div_euclid(MS_PER_DAY) - first_exit.div_euclid(MS_PER_DAY) + 1;
    let days = Days {
        len: u64::try_from(span).expect("last exit is not before first exit"),
        active: &active,
    };

    let n = trades.len() as f64;
    Metrics {
        total_trades: trades.len() as u64,
        wins,
        losses: trades.len() as u64 - wins,
        win_rate: Some(wins as f64 / n),
        total_pnl,
        average_pnl: Some(total_pnl / n),
        total_return: days.total_return(),
        profit_factor: (gross_loss > 0.0).then(|| gross_profit / gross_loss),
        sharpe_ratio: days.sharpe_ratio(PERIODS_PER_YEAR),
        sortino_ratio: days.sortino_ratio(PERIODS_PER_YEAR),
        max_drawdown: days.max_drawdown(),
        cagr: days.cagr(PERIODS_PER_YEAR),
        annual_volatility: days.annual_volatility(PERIODS_PER_YEAR),
        average_duration_secs: Some(duration_ms as f64 / n / 1000.0),
        best_trade_pnl: Some(best),
        worst_trade_pnl: Some(worst),
        first_exit_ms: Some(first_exit),
        last_exit_ms: Some(last_exit),
    }
}

/// The order trades are compounded in within a day: by exit time, then by return.
fn exit_order(a: &TradePoint, b: &TradePoint) -> Ordering {
    pair_order(&(a.exit_ms, a.pnl_pct), &(b.exit_ms, b.pnl_pct))
}

/// [`exit_order`] on `(exit_ms, pnl_pct)` pairs; a total order, so sorting is deterministic.
fn pair_order(a: &(i64, f64), b: &(i64, f64)) -> Ordering {
    a.0.cmp(&b.0).then_with(|| a.1.total_cmp(&b.1))
}

/// Whether the trades are already in [`exit_order`].
fn is_exit_ordered(trades: &[TradePoint]) -> bool {
    trades
        .windows(2)
        .all(|w| exit_order(&w[0], &w[1]) != Ordering::Greater)
}

/// Calls `emit(day, return)` for each UTC day with exits, in day order; `ordered` says the trades are in exit order.
fn for_each_day(trades: &[TradePoint], ordered: bool, emit: impl FnMut(i64, f64)) {
    if ordered {
        fold_days(trades.iter().map(|t| (t.exit_ms, t.pnl_pct)), emit);
    } else {
        let mut pairs: Vec<(i64, f64)> = trades.iter().map(|t| (t.exit_ms, t.pnl_pct)).collect();
        pairs.sort_unstable_by(pair_order);
        fold_days(pairs.into_iter(), emit);
    }
}

/// Compounds exit-ordered `(exit_ms, pnl_pct)` pairs into one return per UTC day.
fn fold_days(pairs: impl Iterator<Item = (i64, f64)>, mut emit: impl FnMut(i64, f64)) {
    let mut current: Option<(i64, f64)> = None;
    for (exit_ms, pct) in pairs {
        let day = exit_ms.div_euclid(MS_PER_DAY);
        current = match current {
            // (1 + r)(1 + p) - 1, kept as a return so a lone trade's return stays exact.
            Some((d, r)) if d == day => Some((d, r + pct + r * pct)),
            Some((d, r)) => {
                emit(d, r);
                Some((day, pct))
            }
            None => Some((day, pct)),
        };
    }
    if let Some((d, r)) = current {
        emit(d, r);
    }
}

/// A daily series of `len` returns: `active` in order, and `len - active.len()` zeros.
///
/// Zeros move neither the equity curve nor any sum but the deviation's, so where they
/// fall does not matter and they need not be stored.
struct Days<'a> {
    len: u64,
    active: &'a [f64],
}

impl<'a> Days<'a> {
    /// All `returns`, none implicit.
    fn dense(returns: &'a [f64]) -> Self {
        Days {
            len: returns.len() as u64,
            active: returns,
        }
    }

    /// Number of implicit zero returns.
    fn zeros(&self) -> u64 {
        self.len - self.active.len() as u64
    }

    /// Arithmetic mean of all `len` returns (`len > 0`).
    fn mean(&self) -> f64 {
        self.active.iter().sum::<f64>() / self.len as f64
    }

    /// Sample standard deviation (ddof=1); exactly 0 when all returns are equal; `None` if `len < 2`.
    fn std(&self) -> Option<f64> {
        if self.len < 2 {
            return None;
        }
        let constant = if self.zeros() > 0 {
            self.active.iter().all(|&r| r == 0.0)
        } else {
            self.active.iter().all(|&r| r == self.active[0])
        };
        if constant {
            // The mean of equal values can differ from them in the last bit.
            return Some(0.0);
        }
        let mean = self.mean();
        let squares: f64 = self.active.iter().map(|&r| (r - mean) * (r - mean)).sum();
        let squares = squares + self.zeros() as f64 * mean * mean;
        Some((squares / (self.len - 1) as f64).sqrt())
    }

    /// See [`sharpe_ratio`].
    fn sharpe_ratio(&self, periods_per_year: f64) -> Option<f64> {
        let std = self.std()?;
        finite((std > 0.0).then(|| self.mean() / std * periods_per_year.sqrt())?)
    }

    /// See [`sortino_ratio`].
    fn sortino_ratio(&self, periods_per_year: f64) -> Option<f64> {
        if self.len < 2 {
            return None;
        }
        let downside: f64 = self
            .active
            .iter()
            .map(|&r| r.min(0.0) * r.min(0.0))
            .sum::<f64>();
        let downside = (downside / self.len as f64).sqrt() * periods_per_year.sqrt();
        finite((downside > 0.0).then(|| self.mean() * periods_per_year / downside)?)
    }

    /// See [`max_drawdown`].
    fn max_drawdown(&self) -> f64 {
        let mut equity = 1.0_f64;
        let mut peak = 1.0_f64;
        let mut worst = 0.0_f64;
        for &r in self.active {
            equity *= 1.0 + r;
            peak = peak.max(equity);
            worst = worst.min((equity - peak) / peak);
        }
        worst
    }

    /// See [`total_return`].
    fn total_return(&self) -> f64 {
        // (1 + t)(1 + r) - 1, kept as a return so small returns keep their precision.
        self.active.iter().fold(0.0, |t, &r| t + r + t * r)
    }

    /// See [`cagr`].
    fn cagr(&self, periods_per_year: f64) -> Option<f64> {
        if self.len == 0 {
            return None;
        }
        let years = self.len as f64 / periods_per_year;
        finite((1.0 + self.total_return()).powf(1.0 / years) - 1.0)
    }

    /// See [`annual_volatility`].
    fn annual_volatility(&self, periods_per_year: f64) -> Option<f64> {
        finite(self.std()? * periods_per_year.sqrt())
    }
}

/// `Some(x)` if `x` is finite.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z in epoch milliseconds.
    const DAY0: i64 = 1_767_225_600_000;
    const HOUR: i64 = 3_600_000;

    fn trade(exit_ms: i64, duration_ms: i64, pnl: f64, pnl_pct: f64) -> TradePoint {
        TradePoint {
            entry_ms: exit_ms - duration_ms,
            exit_ms,
            pnl,
            pnl_pct,
            is_win: pnl > 0.0,
            mem_enhanced: false,
        }
    }

    #[track_caller]
    fn assert_close(actual: f64, expected: f64, rel: f64) {
        let tol = rel * expected.abs().max(f64::MIN_POSITIVE);
        assert!(
            (actual - expected).abs() <= tol,
            "{actual} != {expected} (relative tolerance {rel})"
        );
    }

    #[track_caller]
    fn assert_some_close(actual: Option<f64>, expected: f64, rel: f64) {
        assert_close(actual.expect("expected a value"), expected, rel);
    }

    #[test]
    fn day0_is_2026_01_01_utc() {
        let t = chrono::DateTime::from_timestamp_millis(DAY0).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-01-01T00:00:00+00:00");
    }

    #[derive(serde::Deserialize)]
    struct Reference {
        library: String,
        annualization: f64,
        returns: Vec<f64>,
        sharpe_ratio: f64,
        sortino_ratio: f64,
        max_drawdown: f64,
        cagr: f64,
        annual_volatility: f64,
        total_return: f64,
    }

    /// The daily-series functions agree with empyrical (see tests/fixtures/metrics/README.md).
    #[test]
    fn matches_empyrical_reference() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/metrics/reference.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let r: Reference = serde_json::from_str(&text).unwrap();
        assert!(r.library.contains("empyrical"), "{}", r.library);
        assert_eq!(r.annualization, PERIODS_PER_YEAR);
        assert!(r.returns.len() >= 200);
        let ppy = r.annualization;
        let rel = 1e-9;
        assert_some_close(sharpe_ratio(&r.returns, ppy), r.sharpe_ratio, rel);
        assert_some_close(sortino_ratio(&r.returns, ppy), r.sortino_ratio, rel);
        assert_close(max_drawdown(&r.returns), r.max_drawdown, rel);
        assert_some_close(cagr(&r.returns, ppy), r.cagr, rel);
        assert_some_close(annual_volatility(&r.returns, ppy), r.annual_volatility, rel);
        assert_close(total_return(&r.returns), r.total_return, rel);

        // The same series as trades, one per day, with its zero days left without trades.
        let trades: Vec<TradePoint> = r
            .returns
            .iter()
            .enumerate()
            .filter(|&(_, &ret)| ret != 0.0)
            .map(|(i, &ret)| trade(DAY0 + i as i64 * MS_PER_DAY + 12 * HOUR, HOUR, ret, ret))
            .collect();
        assert!(trades.len() < r.returns.len());
        assert_eq!(daily_returns(&trades), r.returns);
        let m = compute(&trades);
        assert_some_close(m.sharpe_ratio, r.sharpe_ratio, rel);
        assert_some_close(m.sortino_ratio, r.sortino_ratio, rel);
        assert_close(m.max_drawdown, r.max_drawdown, rel);
        assert_some_close(m.cagr, r.cagr, rel);
        assert_some_close(m.annual_volatility, r.annual_volatility, rel);
        assert_close(m.total_return, r.total_return, rel);
    }

    #[test]
    fn empty_trades() {
        let m = compute(&[]);
        assert_eq!(m.total_trades, 0);
        assert_eq!(m.wins, 0);
        assert_eq!(m.losses, 0);
        assert_eq!(m.win_rate, None);
        assert_eq!(m.total_pnl, 0.0);
        assert_eq!(m.average_pnl, None);
        assert_eq!(m.total_return, 0.0);
        assert_eq!(m.profit_factor, None);
        assert_eq!(m.sharpe_ratio, None);
        assert_eq!(m.sortino_ratio, None);
        assert_eq!(m.max_drawdown, 0.0);
        assert_eq!(m.cagr, None);
        assert_eq!(m.annual_volatility, None);
        assert_eq!(m.average_duration_secs, None);
        assert_eq!(m.best_trade_pnl, None);
        assert_eq!(m.worst_trade_pnl, None);
        assert_eq!(m.first_exit_ms, None);
        assert_eq!(m.last_exit_ms, None);
        assert!(daily_returns(&[]).is_empty());
    }

    #[test]
    fn empty_and_constant_return_series() {
        assert_eq!(sharpe_ratio(&[], 365.0), None);
        assert_eq!(sortino_ratio(&[], 365.0), None);
        assert_eq!(max_drawdown(&[]), 0.0);
        assert_eq!(cagr(&[], 365.0), None);
        assert_eq!(total_return(&[]), 0.0);
        assert_eq!(annual_volatility(&[], 365.0), None);

        // Identical returns: zero deviation, even though their mean is off in the last bit.
        let same = [0.001; 10];
        assert_eq!(sharpe_ratio(&same, 365.0), None);
        assert_eq!(annual_volatility(&same, 365.0), Some(0.0));
        assert_eq!(sortino_ratio(&same, 365.0), None);
        assert_eq!(max_drawdown(&same), 0.0);

        // Equity below zero has no real growth rate.
        assert_eq!(cagr(&[-1.5, 0.1], 365.0), None);
        assert_eq!(cagr(&[-1.0, 0.1], 365.0), Some(-1.0));
        assert_eq!(max_drawdown(&[-1.0, 0.1]), -1.0);
    }

    #[test]
    fn single_trade() {
        let t = trade(DAY0 + 10 * HOUR, 2 * HOUR, 40.0, 0.04);
        let m = compute(&[t]);
        assert_eq!(m.total_trades, 1);
        assert_eq!((m.wins, m.losses), (1, 0));
        assert_eq!(m.win_rate, Some(1.0));
        assert_eq!(m.total_pnl, 40.0);
        assert_eq!(m.average_pnl, Some(40.0));
        assert_eq!(m.total_return, 0.04);
        assert_eq!(m.profit_factor, None);
        assert_eq!(m.sharpe_ratio, None);
        assert_eq!(m.sortino_ratio, None);
        assert_eq!(m.annual_volatility, None);
        assert_eq!(m.max_drawdown, 0.0);
        // One day of +4% annualizes over 365 days.
        assert_some_close(m.cagr, 1.04f64.powf(365.0) - 1.0, 1e-12);
        assert_eq!(m.average_duration_secs, Some(7200.0));
        assert_eq!(m.best_trade_pnl, Some(40.0));
        assert_eq!(m.worst_trade_pnl, Some(40.0));
        assert_eq!(m.first_exit_ms, Some(t.exit_ms));
        assert_eq!(m.last_exit_ms, Some(t.exit_ms));
        assert_eq!(daily_returns(&[t]), vec![0.04]);
    }

    #[test]
    fn all_wins() {
        let trades = [
            trade(DAY0 + HOUR, HOUR, 10.0, 0.01),
            trade(DAY0 + MS_PER_DAY + HOUR, HOUR, 30.0, 0.03),
            trade(DAY0 + 3 * MS_PER_DAY + HOUR, HOUR, 20.0, 0.02),
        ];
        let m = compute(&trades);
        assert_eq!((m.wins, m.losses), (3, 0));
        assert_eq!(m.win_rate, Some(1.0));
        assert_eq!(m.profit_factor, None, "no gross loss");
        assert_eq!(m.sortino_ratio, None, "no downside, not even the 0 gap day");
        assert!(m.sharpe_ratio.unwrap() > 0.0);
        assert_eq!(m.max_drawdown, 0.0);
    }

    /// Hand-checked: +30 (+3%), -10 (-1%), +20 (+2%) on three consecutive days.
    #[test]
    fn three_trades_by_hand() {
        let trades = [
            trade(DAY0 + 9 * HOUR, HOUR, 30.0, 0.03),
            trade(DAY0 + MS_PER_DAY + 9 * HOUR, 2 * HOUR, -10.0, -0.01),
            trade(DAY0 + 2 * MS_PER_DAY + 9 * HOUR, 3 * HOUR, 20.0, 0.02),
        ];
        let m = compute(&trades);
        assert_eq!(m.total_trades, 3);
        assert_eq!((m.wins, m.losses), (2, 1));
        assert_close(m.win_rate.unwrap(), 2.0 / 3.0, 1e-15);
        assert_eq!(m.total_pnl, 40.0);
        assert_close(m.average_pnl.unwrap(), 40.0 / 3.0, 1e-15);
        assert_eq!(m.profit_factor, Some(5.0), "(30 + 20) / 10");
        assert_eq!(m.best_trade_pnl, Some(30.0));
        assert_eq!(m.worst_trade_pnl, Some(-10.0));
        assert_eq!(
            m.average_duration_secs,
            Some(7200.0),
            "(1 h + 2 h + 3 h) / 3"
        );
        assert_eq!(m.first_exit_ms, Some(DAY0 + 9 * HOUR));
        assert_eq!(m.last_exit_ms, Some(DAY0 + 2 * MS_PER_DAY + 9 * HOUR));

        // 1.03 * 0.99 * 1.02 - 1
        assert_close(m.total_return, 0.040094, 1e-12);
        // Peak 1.03 after day 1, then 1.03 * 0.99.
        assert_close(m.max_drawdown, -0.01, 1e-12);
        // Mean 0.04/3; deviations (0.05, -0.07, 0.02)/3, so var = 0.0078/9/2 and std = sqrt(0.0039)/3.
        let sqrt365 = 365f64.sqrt();
        assert_some_close(m.sharpe_ratio, 0.04 / 0.0039f64.sqrt() * sqrt365, 1e-12);
        assert_some_close(m.annual_volatility, 0.0039f64.sqrt() / 3.0 * sqrt365, 1e-12);
        // Downside deviation sqrt(0.01^2 / 3).
        let downside = (0.0001f64 / 3.0).sqrt() * sqrt365;
        assert_some_close(m.sortino_ratio, 0.04 / 3.0 * 365.0 / downside, 1e-12);
        assert_some_close(m.cagr, 1.040094f64.powf(365.0 / 3.0) - 1.0, 1e-9);
    }

    #[test]
    fn days_with_several_trades_and_a_gap() {
        let trades = [
            // Day 0: two trades compound to 1.01 * 1.02 - 1 = 0.0302.
            trade(DAY0, HOUR, 1.0, 0.01),
            trade(DAY0 + MS_PER_DAY - 1, HOUR, 2.0, 0.02),
            // Day 1: none. Day 2: one loss, exactly at midnight.
            trade(DAY0 + 2 * MS_PER_DAY, HOUR, -1.0, -0.01),
        ];
        let daily = daily_returns(&trades);
        assert_eq!(daily.len(), 3);
        assert_close(daily[0], 0.0302, 1e-12);
        assert_eq!(daily[1], 0.0);
        assert_eq!(daily[2], -0.01);

        // compute() keeps the gap day implicit; it must agree with the dense series.
        let m = compute(&trades);
        assert_close(m.total_return, total_return(&daily), 1e-12);
        assert_close(m.max_drawdown, max_drawdown(&daily), 1e-12);
        assert_some_close(m.sharpe_ratio, sharpe_ratio(&daily, 365.0).unwrap(), 1e-12);
        assert_some_close(
            m.sortino_ratio,
            sortino_ratio(&daily, 365.0).unwrap(),
            1e-12,
        );
        assert_some_close(m.cagr, cagr(&daily, 365.0).unwrap(), 1e-12);
        assert_some_close(
            m.annual_volatility,
            annual_volatility(&daily, 365.0).unwrap(),
            1e-12,
        );
        // Mean 0.0202/3 over three days, not 0.0202/2 over the two with trades.
        let mean: f64 = (0.0302 - 0.01) / 3.0;
        let var = ((0.0302 - mean).powi(2) + mean.powi(2) + (-0.01 - mean).powi(2)) / 2.0;
        assert_some_close(m.sharpe_ratio, mean / var.sqrt() * 365f64.sqrt(), 1e-9);
    }

    #[test]
    fn days_are_utc_epoch_days_also_before_1970() {
        let trades = [
            trade(-1, 0, 1.0, 0.01),                // 1969-12-31T23:59:59.999Z
            trade(MS_PER_DAY, 0, 1.0, 0.02),        // 1970-01-02T00:00:00Z
            trade(-MS_PER_DAY - 1, 0, -1.0, -0.03), // 1969-12-30T23:59:59.999Z
        ];
        assert_eq!(daily_returns(&trades), vec![-0.03, 0.01, 0.0, 0.02]);
    }

    /// `n` deterministic pseudo-random trades about `spacing_ms` apart, some with equal exit times.
    fn synthetic(n: usize, spacing_ms: i64) -> Vec<TradePoint> {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..n)
            .map(|i| {
                let exit_ms = DAY0 + i as i64 * spacing_ms + (next() % 3) as i64 * 1000;
                let pnl_pct = ((next() % 2001) as f64 - 950.0) / 50_000.0;
                trade(
                    exit_ms,
                    (next() % 10_000_000) as i64,
                    pnl_pct * 1000.0,
                    pnl_pct,
                )
            })
            .collect()
    }

    #[test]
    fn order_of_trades_does_not_matter() {
        let mut trades = synthetic(500, 7 * HOUR / 3);
        // Ties in exit time with returns out of order.
        trades[10].exit_ms = trades[11].exit_ms;
        trades[10].pnl_pct = 0.03;
        trades[11].pnl_pct = -0.02;
        trades.sort_by_key(|t| t.exit_ms);
        let sorted = compute(&trades);
        let sorted_daily = daily_returns(&trades);

        let mut reversed = trades.clone();
        reversed.reverse();
        let mut shuffled = trades.clone();
        let mut state = 12345u64;
        for i in (1..shuffled.len()).rev() {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            shuffled.swap(i, (state >> 33) as usize % (i + 1));
        }
        for other in [reversed, shuffled] {
            assert_ne!(other, trades);
            assert_eq!(daily_returns(&other), sorted_daily);
            let mut m = compute(&other);
            // Sums of pnl depend on the order in their last bits; nothing else may.
            assert_close(m.total_pnl, sorted.total_pnl, 1e-12);
            assert_some_close(m.average_pnl, sorted.average_pnl.unwrap(), 1e-12);
            assert_some_close(m.profit_factor, sorted.profit_factor.unwrap(), 1e-12);
            m.total_pnl = sorted.total_pnl;
            m.average_pnl = sorted.average_pnl;
            m.profit_factor = sorted.profit_factor;
            assert_eq!(m, sorted);
        }
        assert_eq!(sorted.total_trades, 500);
        assert!(sorted.sharpe_ratio.is_some() && sorted.sortino_ratio.is_some());
    }

    #[test]
    fn serializes_camel_case_and_round_trips() {
        let m = compute(&synthetic(50, 7 * HOUR / 3));
        let json = serde_json::to_value(&m).unwrap();
        for key in [
            "totalTrades",
            "winRate",
            "averagePnl",
            "profitFactor",
            "sharpeRatio",
            "maxDrawdown",
            "annualVolatility",
            "averageDurationSecs",
            "bestTradePnl",
            "firstExitMs",
            "lastExitMs",
        ] {
            assert!(json.get(key).is_some(), "missing {key} in {json}");
        }
        // Through a `Value`, so no float is parsed from text.
        let back: Metrics = serde_json::from_value(json).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn a_million_trades() {
        // About 1,000 trades a day over about 1,000 days.
        let mut trades = synthetic(1_000_000, 90_000);
        // Out of exit order, as trades listed by entry time are.
        trades.swap(3, 999_000);
        let m = compute(&trades);
        assert_eq!(m.total_trades, 1_000_000);
    }
}
