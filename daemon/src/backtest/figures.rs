//! A backtest's figures and equity curve from its closed trades, by Freqtrade's own
//! definitions, so that a native result and a Freqtrade result compare figure for figure.
//!
//! The definitions are those of the Freqtrade memd runs (2026.9: `freqtrade/data/metrics.py`,
//! `calculate_sharpe`, `calculate_sortino`, `calculate_calmar`, `calculate_max_drawdown`,
//! and the profit factor of `optimize_reports.py`), restated here:
//!
//! - a trade's return is its `profit_abs` over the starting balance; the period is the
//!   whole days of the data range, at least 1; the mean daily return is the returns' sum
//!   over the period;
//! - Sharpe: the mean daily return over the population standard deviation of every trade's
//!   return, times √365; Sortino: the same over the deviation of the losing trades' only;
//! - max drawdown: over the cumulative profit after each trade (closing order), the peak
//!   taken with 0 (the starting balance counts as a peak); the deepest fall in the stake
//!   currency, and that same fall over the balance at its peak (Freqtrade's
//!   `max_drawdown_account`);
//! - Calmar: the total return over the period, in percent, over that relative drawdown,
//!   times √365;
//! - profit factor: gross profit over gross loss.
//!
//! Where Freqtrade writes a placeholder (0 without trades or with an empty range, −100
//! when a ratio's denominator is 0 or undefined, a profit factor of 0 without a losing
//! trade), the figure is absent here: it measures nothing.

use mem_protocol::backtest::{BacktestFigures, EquityPoint};

/// Milliseconds in a day: the period of the ratios is counted in whole days.
const DAY_MS: i64 = 86_400_000;

/// One closed trade, as the figures need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade {
    pub entry_ms: i64,
    pub exit_ms: i64,
    /// Net profit in the stake currency (fees and slippage paid).
    pub profit_abs: f64,
    /// Profit over the trade's stake (Freqtrade's `profit_ratio`).
    pub profit_ratio: f64,
}

/// The figures of `trades` over the data range `[from_ms, to_ms]` (the first candle's
/// open, the last one's close) on an account starting with `starting_balance`.
pub fn figures(
    trades: &[Trade],
    starting_balance: f64,
    from_ms: i64,
    to_ms: i64,
) -> BacktestFigures {
    let profits = in_closing_order(trades);
    let n = profits.len();
    let wins = profits.iter().filter(|p| **p > 0.0).count() as u64;
    let losses = profits.iter().filter(|p| **p < 0.0).count() as u64;
    let profit_abs = total(profits.iter().copied());
    let gross_profit = total(profits.iter().copied().filter(|p| *p > 0.0));
    let gross_loss = total(profits.iter().copied().filter(|p| *p < 0.0));
    let drawdown = max_drawdown(&profits, starting_balance);
    // Freqtrade measures no ratio without trades or over an empty range.
    let measured = n > 0 && from_ms != to_ms;
    let days = ((to_ms - from_ms).div_euclid(DAY_MS)).max(1) as f64;
    let returns: Vec<f64> = profits.iter().map(|p| p / starting_balance).collect();
    let daily_mean = total(returns.iter().copied()) / days;
    let losing: Vec<f64> = returns.iter().copied().filter(|r| *r < 0.0).collect();
    let total_return = profit_abs / starting_balance;
    BacktestFigures {
        trades: n as u64,
        wins,
        losses,
        win_rate: if n == 0 { 0.0 } else { wins as f64 / n as f64 },
        profit_abs,
        profit_pct: total_return,
        sharpe: annualised(daily_mean, population_stdev(&returns)).filter(|_| measured),
        sortino: annualised(daily_mean, population_stdev(&losing)).filter(|_| measured),
        calmar: annualised(total_return / days * 100.0, drawdown.relative).filter(|_| measured),
        max_drawdown: drawdown.relative,
        max_drawdown_abs: drawdown.abs,
        profit_factor: (gross_loss < 0.0).then(|| gross_profit / -gross_loss),
        starting_balance,
        final_balance: starting_balance + profit_abs,
    }
}

/// The balance at the start (`from_ms`) and after each closed trade, in closing order.
pub fn equity(trades: &[Trade], starting_balance: f64, from_ms: i64) -> Vec<EquityPoint> {
    let mut sorted = trades.to_vec();
    sorted.sort_by_key(|t| t.exit_ms);
    let mut balance = starting_balance;
    let mut points = Vec::with_capacity(sorted.len() + 1);
    points.push(EquityPoint {
        ts_ms: from_ms,
        equity: balance,
    });
    for t in &sorted {
        balance += t.profit_abs;
        points.push(EquityPoint {
            ts_ms: t.exit_ms,
            equity: balance,
        });
    }
    points
}

/// The profits in the order the trades closed (ties keep their given order).
fn in_closing_order(trades: &[Trade]) -> Vec<f64> {
    let mut sorted: Vec<&Trade> = trades.iter().collect();
    sorted.sort_by_key(|t| t.exit_ms);
    sorted.iter().map(|t| t.profit_abs).collect()
}

/// A sum from +0: Rust's float `sum` starts at −0, which an empty list would keep.
fn total(values: impl Iterator<Item = f64>) -> f64 {
    values.fold(0.0, |sum, v| sum + v)
}

/// numpy's `std` (ddof 0); NaN for no value, as numpy's.
fn population_stdev(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len() as f64;
    let mean = total(values.iter().copied()) / n;
    (total(values.iter().map(|v| (v - mean).powi(2))) / n).sqrt()
}

/// `mean / denominator · √365`; None where Freqtrade writes −100 (a denominator of 0 or
/// NaN).
fn annualised(mean: f64, denominator: f64) -> Option<f64> {
    (denominator != 0.0 && !denominator.is_nan()).then(|| mean / denominator * 365f64.sqrt())
}

/// The deepest fall: in the stake currency, and over the balance at its peak.
#[derive(Debug, Default, PartialEq)]
struct Drawdown {
    abs: f64,
    relative: f64,
}

/// Freqtrade's: the peak starts at 0 (the starting balance), the deepest fall in the stake
/// currency is the one reported (its first occurrence), its relative figure taken at it.
fn max_drawdown(profits: &[f64], starting_balance: f64) -> Drawdown {
    let (mut cumulative, mut peak) = (0.0f64, 0.0f64);
    let mut deepest = Drawdown::default();
    for p in profits {
        cumulative += p;
        peak = peak.max(cumulative);
        let fall = peak - cumulative;
        if fall > deepest.abs {
            deepest = Drawdown {
                abs: fall,
                relative: fall / (starting_balance + peak),
            };
        }
    }
    deepest
}

/// Several runs' figures as one (a walk-forward's folds, whose trades memd does not
/// hold): counts and profits added up over the first run's balance, the deepest
/// drawdown; the ratios, which do not add up, are left out.
pub fn combine(runs: &[BacktestFigures]) -> BacktestFigures {
    let start = runs.first().map_or(0.0, |f| f.starting_balance);
    let trades: u64 = runs.iter().map(|f| f.trades).sum();
    let wins: u64 = runs.iter().map(|f| f.wins).sum();
    let profit: f64 = runs.iter().map(|f| f.profit_abs).sum();
    BacktestFigures {
        trades,
        wins,
        losses: runs.iter().map(|f| f.losses).sum(),
        win_rate: if trades > 0 {
            wins as f64 / trades as f64
        } else {
            0.0
        },
        profit_abs: profit,
        profit_pct: if start > 0.0 { profit / start } else { 0.0 },
        sharpe: None,
        sortino: None,
        calmar: None,
        max_drawdown: runs.iter().map(|f| f.max_drawdown).fold(0.0, f64::max),
        max_drawdown_abs: runs.iter().map(|f| f.max_drawdown_abs).fold(0.0, f64::max),
        profit_factor: None,
        starting_balance: start,
        final_balance: start + profit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = DAY_MS;

    fn trade(day: i64, profit_abs: f64) -> Trade {
        Trade {
            entry_ms: day * DAY - DAY / 2,
            exit_ms: day * DAY,
            profit_abs,
            profit_ratio: profit_abs / 1000.0,
        }
    }

    fn close(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-9 * expected.abs().max(1.0),
            "{actual} is not {expected}"
        );
    }

    /// +100, −50, +20, −30 on 1,000 over 10 days. Returns 0.1, −0.05, 0.02, −0.03: sum
    /// 0.04, daily mean 0.004, mean 0.01, deviations 0.09, −0.06, 0.01, −0.04, variance
    /// 0.0134 / 4 = 0.00335. Losing returns −0.05, −0.03: deviation 0.01. Cumulative 100,
    /// 50, 70, 40 under a peak of 100: deepest fall 60 (at the last trade), 60 / 1,100.
    /// The values agree with Freqtrade 2026.9's functions on the same trades.
    #[test]
    fn four_trades_by_hand() {
        let trades = [
            trade(1, 100.0),
            trade(2, -50.0),
            trade(3, 20.0),
            trade(4, -30.0),
        ];
        let f = figures(&trades, 1000.0, 0, 10 * DAY);
        assert_eq!((f.trades, f.wins, f.losses), (4, 2, 2));
        close(f.win_rate, 0.5);
        close(f.profit_abs, 40.0);
        close(f.profit_pct, 0.04);
        close(f.final_balance, 1040.0);
        let root365 = 365f64.sqrt();
        close(f.sharpe.unwrap(), 0.004 / 0.00335f64.sqrt() * root365); // 1.32033..
        close(f.sortino.unwrap(), 0.004 / 0.01 * root365); // 7.64198..
        close(f.max_drawdown_abs, 60.0);
        close(f.max_drawdown, 60.0 / 1100.0);
        close(
            f.calmar.unwrap(),
            0.04 / 10.0 * 100.0 / (60.0 / 1100.0) * root365,
        ); // 140.103..
        close(f.profit_factor.unwrap(), 120.0 / 80.0);
        close(f.sharpe.unwrap(), 1.320_334_647_765_313);
        close(f.sortino.unwrap(), 7.641_989_269_817_12);
        close(f.calmar.unwrap(), 140.103_136_613_313_86);
    }

    /// A first losing trade falls from the starting balance (Freqtrade 2026.9 counts it: the
    /// peak starts at 0). −100, +30, −50: cumulative −100, −70, −120; deepest 120 below the
    /// starting balance, 120 / 1,000. Only a part of a day: the period is 1 day.
    #[test]
    fn the_starting_balance_is_a_peak() {
        let trades = [
            Trade {
                entry_ms: 0,
                exit_ms: 1_000,
                profit_abs: -100.0,
                profit_ratio: -0.1,
            },
            Trade {
                entry_ms: 1_000,
                exit_ms: 2_000,
                profit_abs: 30.0,
                profit_ratio: 0.03,
            },
            Trade {
                entry_ms: 2_000,
                exit_ms: 3_000,
                profit_abs: -50.0,
                profit_ratio: -0.05,
            },
        ];
        let f = figures(&trades, 1000.0, 0, DAY / 2);
        close(f.max_drawdown_abs, 120.0);
        close(f.max_drawdown, 0.12);
        // Returns −0.1, 0.03, −0.05 over 1 day: mean −0.12; deviation of all three
        // sqrt(((−0.06)² + 0.07² + (−0.01)²)/3), of the losses 0.025.
        let sd = ((0.0036f64 + 0.0049 + 0.0001) / 3.0).sqrt();
        close(f.sharpe.unwrap(), -0.12 / sd * 365f64.sqrt());
        close(f.sortino.unwrap(), -0.12 / 0.025 * 365f64.sqrt());
        close(f.calmar.unwrap(), -0.12 * 100.0 / 0.12 * 365f64.sqrt());
        close(f.profit_factor.unwrap(), 30.0 / 150.0);
    }

    /// The deepest fall in money is the one reported, with its own relative figure, even
    /// when a smaller fall from a lower peak is deeper relatively: +0, −90 (90 / 1,000 =
    /// 0.09) then up to +1,000 and −100 (100 / 2,000 = 0.05): 100 and 0.05.
    #[test]
    fn the_deepest_fall_in_money_is_reported() {
        let trades = [
            trade(1, -90.0),
            trade(2, 1090.0),
            trade(3, -100.0),
            trade(4, 10.0),
        ];
        let f = figures(&trades, 1000.0, 0, 5 * DAY);
        close(f.max_drawdown_abs, 100.0);
        close(f.max_drawdown, 0.05);
    }

    #[test]
    fn placeholders_are_absent() {
        // No trade: nothing measured.
        let f = figures(&[], 1000.0, 0, DAY);
        assert_eq!(f.trades, 0);
        assert_eq!(f.win_rate, 0.0);
        assert_eq!(
            (f.sharpe, f.sortino, f.calmar, f.profit_factor),
            (None, None, None, None)
        );
        assert_eq!((f.max_drawdown, f.max_drawdown_abs), (0.0, 0.0));
        assert_eq!(f.final_balance, 1000.0);
        assert!(f.profit_abs.is_sign_positive() && f.profit_pct.is_sign_positive());
        // Winners only: no losing deviation, no drawdown, no profit factor (Freqtrade: −100,
        // −100, 0); the Sharpe is measured.
        let f = figures(&[trade(1, 10.0), trade(2, 30.0)], 1000.0, 0, 2 * DAY);
        assert!(f.sharpe.is_some());
        assert_eq!((f.sortino, f.calmar, f.profit_factor), (None, None, None));
        // One trade: no deviation at all.
        let f = figures(&[trade(1, -10.0)], 1000.0, 0, 2 * DAY);
        assert_eq!((f.sharpe, f.sortino), (None, None));
        close(
            f.calmar.unwrap(),
            -0.01 / 2.0 * 100.0 / 0.01 * 365f64.sqrt(),
        );
        // An empty range: no ratio (Freqtrade: 0).
        let f = figures(&[trade(1, -10.0), trade(1, 5.0)], 1000.0, DAY, DAY);
        assert_eq!((f.sharpe, f.sortino, f.calmar), (None, None, None));
        // A break-even trade is neither a win nor a loss.
        let f = figures(&[trade(1, 0.0), trade(2, 5.0)], 1000.0, 0, 2 * DAY);
        assert_eq!((f.wins, f.losses), (1, 0));
        close(f.win_rate, 0.5);
    }

    #[test]
    fn trades_count_in_closing_order() {
        // Given out of order: −50 closes after +100, so the fall is 50 from a peak of 100.
        let trades = [trade(2, -50.0), trade(1, 100.0)];
        let f = figures(&trades, 1000.0, 0, 3 * DAY);
        close(f.max_drawdown_abs, 50.0);
        close(f.max_drawdown, 50.0 / 1100.0);
        let curve = equity(&trades, 1000.0, 0);
        let points: Vec<(i64, f64)> = curve.iter().map(|p| (p.ts_ms, p.equity)).collect();
        assert_eq!(points, [(0, 1000.0), (DAY, 1100.0), (2 * DAY, 1050.0)]);
        assert_eq!(
            equity(&[], 500.0, 7),
            [EquityPoint {
                ts_ms: 7,
                equity: 500.0
            }]
        );
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Case {
        name: String,
        starting_balance: f64,
        from_ms: i64,
        to_ms: i64,
        trades: Vec<(i64, f64)>,
        freqtrade: Freqtrade,
    }

    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Freqtrade {
        sharpe: f64,
        sortino: f64,
        calmar: f64,
        max_drawdown_account: f64,
        max_drawdown_abs: f64,
        profit_factor: f64,
        profit_total: f64,
        profit_total_abs: f64,
        wins: u64,
        losses: u64,
    }

    /// Freqtrade's own functions on the same trades (tests/fixtures/backtest/README.md).
    #[test]
    fn agrees_with_freqtrade() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/backtest/reference.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let reference: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(
            reference["library"]
                .as_str()
                .unwrap()
                .starts_with("freqtrade ")
        );
        let cases: Vec<Case> = serde_json::from_value(reference["cases"].clone()).unwrap();
        assert_eq!(cases.len(), 6);
        let near = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
        for case in &cases {
            let trades: Vec<Trade> = case
                .trades
                .iter()
                .map(|&(exit_ms, profit_abs)| Trade {
                    entry_ms: exit_ms - 3_600_000,
                    exit_ms,
                    profit_abs,
                    profit_ratio: 0.0,
                })
                .collect();
            let f = figures(&trades, case.starting_balance, case.from_ms, case.to_ms);
            let ft = &case.freqtrade;
            let name = &case.name;
            // Absent where Freqtrade writes its placeholder.
            for (what, ours, theirs, placeholder) in [
                ("sharpe", f.sharpe, ft.sharpe, -100.0),
                ("sortino", f.sortino, ft.sortino, -100.0),
                ("calmar", f.calmar, ft.calmar, -100.0),
            ] {
                let expected = (theirs != placeholder).then_some(theirs);
                match (ours, expected) {
                    (Some(a), Some(b)) => assert!(near(a, b), "{name}: {what} {a} is not {b}"),
                    (a, b) => assert_eq!(a, b, "{name}: {what}"),
                }
            }
            // Freqtrade's 0 without a losing trade is a placeholder; with one, a figure.
            let factor = (ft.losses > 0).then_some(ft.profit_factor);
            match (f.profit_factor, factor) {
                (Some(a), Some(b)) => assert!(near(a, b), "{name}: profit factor {a} is not {b}"),
                (a, b) => assert_eq!(a, b, "{name}: profit factor"),
            }
            for (what, a, b) in [
                ("max drawdown", f.max_drawdown, ft.max_drawdown_account),
                ("max drawdown abs", f.max_drawdown_abs, ft.max_drawdown_abs),
                ("profit", f.profit_pct, ft.profit_total),
                ("profit abs", f.profit_abs, ft.profit_total_abs),
            ] {
                assert!(near(a, b), "{name}: {what} {a} is not {b}");
            }
            assert_eq!((f.wins, f.losses), (ft.wins, ft.losses), "{name}");
            assert_eq!(f.trades as usize, case.trades.len());
        }
    }
}
