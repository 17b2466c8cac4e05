//! The Dashboard: the market data's age (demo or stale data said first), daemon and host
//! health, the bots at a glance, today's P&L, MEM's figures, the newest alerts and
//! whether they reached their channels, the last decisions and the next jobs. It is the
//! first screen: it speaks of decisions and figures, never of the protocol's method or
//! event names.

use super::{Theme, bytes, message, since};
use crate::ui::app::App;
use crate::ui::keys::Action;
use mem_protocol::alerts::AlertProgress;
use mem_protocol::mem::MemMetrics;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

/// Below this body height MEM's figures fold into one line of the trading panel, so the
/// bots keep their rows (80x24 leaves 20).
const MEM_PANEL_MIN_HEIGHT: u16 = 24;

/// Rows of alerts shown at most; the panel gives the bots what they need first.
const ALERT_ROWS: usize = 5;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let [market, area] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
    frame.render_widget(Paragraph::new(market_line(app, theme)), market);
    let mem_panel = area.height >= MEM_PANEL_MIN_HEIGHT;
    let fixed = 6 + 6 + if mem_panel { 4 } else { 0 };
    // What is left is the bots' (their rows first) and the alerts' (at least one line).
    let free = area.height.saturating_sub(fixed);
    let bots_need = 3 + app.deployed.rows().len().max(1) as u16;
    let alert_rows = app.alerts.len().clamp(1, ALERT_ROWS) as u16;
    let alerts_height = if free >= 4 + 3 {
        free.saturating_sub(bots_need)
            .clamp(3, 2 + alert_rows)
            .min(free - 4)
    } else {
        0
    };
    // Only the panels drawn take part in the layout (a short screen squeezes them all).
    let mut constraints = vec![Constraint::Length(6)];
    if mem_panel {
        constraints.push(Constraint::Length(4));
    }
    constraints.push(Constraint::Min(4));
    if alerts_height > 0 {
        constraints.push(Constraint::Length(alerts_height));
    }
    constraints.push(Constraint::Length(6));
    let areas = Layout::vertical(constraints).split(area);
    let mut next = areas.iter().copied();
    let mut take = |drawn: bool| {
        if drawn {
            next.next().unwrap_or_default()
        } else {
            Rect::default()
        }
    };
    let (top, mem, bots, alerts, bottom) = (
        take(true),
        take(mem_panel),
        take(true),
        take(alerts_height > 0),
        take(true),
    );
    let [health, money] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(top);
    draw_health(frame, health, app, theme);
    draw_money(frame, money, app, theme, !mem_panel);
    if mem_panel {
        draw_mem(frame, mem, app, theme);
    }
    draw_bots(frame, bots, app, theme);
    if alerts_height > 0 {
        draw_alerts(frame, alerts, app, theme);
    }
    let [decisions, jobs] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(bottom);
    super::memory::draw_short(frame, decisions, app, theme);
    super::jobs::draw_short(frame, jobs, app, theme);
}

/// The newest alerts, newest first: when, how urgent, what, and whether it reached every
/// channel (`sent`), is being retried (`FAILING`), waits (`pending`) or was given up.
fn draw_alerts(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let block = Block::bordered().title(" alerts, newest first · memctl alerts history ");
    let inner = block.inner(area);
    if app.alerts.is_empty() {
        frame.render_widget(block, area);
        message(
            frame,
            inner,
            "No alert yet (their channels: [alerts] in memd.toml).",
            theme.dim(),
        );
        return;
    }
    let today = app.now.date_naive();
    let rows = app
        .alerts
        .iter()
        .rev()
        .take(inner.height as usize)
        .map(|a| {
            let when = if a.raised_at.date_naive() == today {
                a.raised_at.format("%H:%M").to_string()
            } else {
                a.raised_at.format("%m-%d").to_string()
            };
            let (severity, style) = match a.severity.as_str() {
                "critical" => ("CRIT", theme.bad()),
                "warning" => ("warn", theme.warn()),
                _ => ("info", theme.dim()),
            };
            let (sent, all) = a.sent_of();
            let (state, state_style) = match a.progress() {
                AlertProgress::Sent => ("sent".to_string(), theme.good()),
                AlertProgress::Pending => (format!("pending {sent}/{all}"), theme.dim()),
                AlertProgress::Failing => (format!("FAILING {sent}/{all}"), theme.bad()),
                AlertProgress::GivenUp => (format!("given up {sent}/{all}"), theme.bad()),
            };
            let text = a.text.lines().next().unwrap_or_default();
            let what = if text.is_empty() {
                a.title.clone()
            } else {
                format!("{}: {text}", a.title)
            };
            Row::new(vec![
                Cell::from(when),
                Cell::from(severity).style(style),
                Cell::from(what),
                Cell::from(state).style(state_style),
            ])
        });
    let widths = [
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Fill(1),
        Constraint::Length(13),
    ];
    frame.render_widget(Table::new(rows, widths).block(block), area);
}

/// The market in one line, what matters first: `market: DEMO DATA, 8 years old (stale):
/// the shipped January 2018 candles · ETH/BTC 1h ranging, medium · memctl market refresh`.
fn market_line(app: &App, theme: Theme) -> Line<'static> {
    let Some(state) = &app.market else {
        return Line::styled(" market: not known yet", theme.dim());
    };
    let Some(c) = &state.conditions else {
        let why = state.error.as_deref().unwrap_or("no conditions");
        return Line::styled(format!(" market: {why}"), theme.warn());
    };
    let f = c.freshness.at(app.now);
    let age = mem_protocol::market::age_words(f.age_secs);
    let what = format!("{} {} {}, {}", c.pair, c.timeframe, c.trend, c.volatility);
    let (head, style) = match (f.demo, f.stale) {
        (true, _) => (
            format!(" market: DEMO DATA, {age} old (stale): the shipped January 2018 candles"),
            theme.bad(),
        ),
        (false, true) => (format!(" market: STALE, {age} old"), theme.bad()),
        (false, false) => (format!(" market: {age} old"), theme.good()),
    };
    let mut spans = vec![Span::styled(head, style), Span::raw(format!(" · {what}"))];
    if f.stale {
        spans.push(Span::styled(" · memctl market refresh", theme.dim()));
    }
    Line::from(spans)
}

fn draw_health(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let block = Block::bordered().title(" daemon and host ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(s) = &app.status else {
        message(frame, inner, "waiting for memd...", theme.dim());
        return;
    };
    let h = &s.host;
    let mem_pct = if h.memory_total_bytes > 0 {
        h.memory_used_bytes as f64 / h.memory_total_bytes as f64 * 100.0
    } else {
        0.0
    };
    let cpu_style = if h.cpu_percent > 90.0 {
        theme.bad()
    } else {
        ratatui::style::Style::new()
    };
    let mut first = format!(
        "memd {} · pid {} · up {} · {} strategies",
        s.version,
        s.pid,
        since(app.now, s.started_at),
        s.counts.strategies
    );
    if s.counts.registry_errors > 0 {
        first.push_str(&format!(" ({} unreadable)", s.counts.registry_errors));
    }
    let lines = vec![
        Line::raw(first),
        Line::raw(format!(
            "memd process {:.1}% CPU, {} · {} client{}",
            s.process.cpu_percent,
            bytes(s.process.rss_bytes),
            s.counts.connections,
            if s.counts.connections == 1 { "" } else { "s" }
        )),
        Line::from(vec![
            Span::raw(format!(
                "{}: {} CPUs at ",
                h.hostname.as_deref().unwrap_or("host"),
                h.cpu_count
            )),
            Span::styled(format!("{:.0}%", h.cpu_percent), cpu_style),
            Span::raw(format!(
                " · load {:.2} {:.2} {:.2}",
                h.load_average[0], h.load_average[1], h.load_average[2]
            )),
        ]),
        Line::raw(format!(
            "memory {} / {} ({mem_pct:.0}%) · {}",
            bytes(h.memory_used_bytes),
            bytes(h.memory_total_bytes),
            s.data_dir
        )),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Milliseconds with the digits that matter.
fn ms(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v < 1.0 => format!("{v:.3} ms"),
        Some(v) if v < 100.0 => format!("{v:.2} ms"),
        Some(v) => format!("{v:.0} ms"),
    }
}

fn win_rate(m: &MemMetrics) -> String {
    match m.win_rate_24h {
        Some(rate) => format!("{:.0}% ({}/{})", rate * 100.0, m.wins_24h, m.closed_24h),
        None => "-".into(),
    }
}

/// MEM's figures: decisions per hour, enhancement and prediction latency, win rate over
/// 24 h, learned strategies.
fn draw_mem(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let block = Block::bordered().title(" MEM · last hour ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(m) = &app.metrics else {
        message(
            frame,
            inner,
            "no figures yet: memd sends them every few seconds",
            theme.dim(),
        );
        return;
    };
    let (e, p) = (&m.enhancement_time_ms, &m.prediction_latency_ms);
    let lines = vec![
        Line::raw(format!(
            "decisions/h {} · win rate 24h {} · learned {} active, {} deprecated",
            m.decisions_per_hour,
            win_rate(m),
            m.learned_strategies.active,
            m.learned_strategies.deprecated
        )),
        Line::raw(format!(
            "enhancement avg {}, p99 {} · ML prediction avg {}, p99 {}",
            ms(e.avg),
            ms(e.p99),
            ms(p.avg),
            ms(p.p99)
        )),
    ];
    frame.render_widget(Paragraph::new(lines), inner);
}

fn draw_money(frame: &mut Frame, area: Rect, app: &App, theme: Theme, mem_line: bool) {
    let block = Block::bordered().title(" trading ");
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let active: Vec<_> = app
        .deployed
        .all
        .iter()
        .filter(|d| d.status.is_active())
        .collect();
    let live = active.iter().filter(|d| !d.dry_run).count();
    // Amounts in different currencies are never added.
    let profit = super::deployed::totals_by_currency(&active);
    let open: u64 = active.iter().map(|d| d.stats.open_trades).sum();
    // Crashed (a restart is due) or failed and not yet acknowledged.
    let failed = app
        .deployed
        .all
        .iter()
        .filter(|d| {
            d.needs_acknowledgement() || d.status == mem_protocol::deploy::DeploymentStatus::Crashed
        })
        .count();
    let mut today = vec![Span::raw("P&L today   ")];
    match app.today_pnl_by_currency() {
        Some(amounts) => today.extend(amount_spans(&amounts, theme)),
        None => today.push(Span::styled("-", theme.dim())),
    }
    today.push(Span::styled(" (closed, UTC)", theme.dim()));
    let mut bots = vec![Span::raw("bots profit ")];
    let amounts: Vec<(Option<String>, f64)> = profit
        .iter()
        .map(|t| (t.currency.clone(), t.profit))
        .collect();
    bots.extend(amount_spans(&amounts, theme));
    bots.push(Span::raw(format!(" · {open} open trades")));
    let mut lines = vec![
        Line::from(today),
        Line::from(bots),
        Line::from(vec![
            Span::raw(format!("{} running · {live} live · ", active.len())),
            Span::styled(
                format!("{failed} failed"),
                if failed > 0 { theme.bad() } else { theme.dim() },
            ),
        ]),
    ];
    if let Some(risk) = risk_line(app, theme) {
        lines.push(risk);
    }
    if let Some(m) = app.metrics.as_ref().filter(|_| mem_line) {
        // A short screen: MEM's figures in one line.
        lines.push(Line::raw(format!(
            "MEM {}/h p99 {} win {}",
            m.decisions_per_hour,
            ms(m.enhancement_time_ms.p99),
            m.win_rate_24h
                .map_or("-".into(), |r| format!("{:.0}%", r * 100.0))
        )));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// The risk guard in one line, when it is on: `risk ok · drawdown 12.00/50.00` or
/// `TRIPPED max_drawdown 55/50 · memctl risk reset` (the first limit crossed).
fn risk_line(app: &App, theme: Theme) -> Option<Line<'static>> {
    let risk = &app.status.as_ref()?.risk;
    if let Some(trip) = risk.trips.first().filter(|_| risk.tripped) {
        return Some(Line::from(vec![
            Span::styled(
                format!(
                    "TRIPPED {} {:.0}/{:.0}",
                    trip.limit.config_key(),
                    trip.figure,
                    trip.threshold
                ),
                theme.bad(),
            ),
            Span::styled(" · memctl risk reset", theme.dim()),
        ]));
    }
    if !risk.enabled() {
        return None;
    }
    let l = &risk.limits;
    let mut parts = Vec::new();
    if let Some(max) = l.max_drawdown {
        parts.push(format!("drawdown {:.2}/{max:.2}", risk.drawdown));
    }
    if let Some(max) = l.daily_loss {
        parts.push(format!("today {:.2}/{max:.2}", risk.day_loss.max(0.0)));
    }
    if let Some(max) = l.bot_loss {
        parts.push(format!("bot {max:.2}"));
    }
    Some(Line::from(vec![
        Span::styled("risk ok", theme.good()),
        Span::raw(format!(" · {}", parts.join(" · "))),
    ]))
}

/// `15.25 USDT · -0.01 BTC`, each amount coloured by its sign; `0.00` for none.
fn amount_spans(amounts: &[(Option<String>, f64)], theme: Theme) -> Vec<Span<'static>> {
    if amounts.is_empty() {
        return vec![Span::styled(super::money(0.0), theme.pnl(0.0))];
    }
    let mut spans = Vec::new();
    for (i, (currency, amount)) in amounts.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" · "));
        }
        let text = match currency {
            Some(c) => format!("{} {c}", super::amount(*amount, Some(c))),
            None => super::money(*amount),
        };
        spans.push(Span::styled(text, theme.pnl(*amount)));
    }
    spans
}

fn draw_bots(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let rows = app.deployed.rows();
    let block = Block::bordered().title(format!(
        " bots ({}) · {} opens Deployed ",
        rows.len(),
        app.keys.label(Action::Open)
    ));
    let inner = block.inner(area);
    if rows.is_empty() {
        frame.render_widget(block, area);
        let k = &app.keys;
        let text = format!(
            "No bot is running. Find a strategy in Recommend ({}) or Strategies ({}) and press {}.",
            k.label(Action::ViewRecommend),
            k.label(Action::ViewStrategies),
            k.label(Action::Deploy)
        );
        message(frame, inner, &text, theme.dim());
        return;
    }
    let height = inner.height.saturating_sub(1) as usize;
    app.page.set(height);
    let v = &app.deployed;
    let offset = v.cursor.window(rows.len(), height);
    let table_rows = rows
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, d)| {
            let profit = d.stats.profit_all;
            let row = Row::new(vec![
                Cell::from(crate::text::deployment_name(d)),
                Cell::from(crate::text::deployment_status(d.status))
                    .style(super::deployed::status_style(d, theme)),
                Cell::from(if d.dry_run { "dry-run" } else { "LIVE" }),
                Cell::from(d.up_since().map_or("-".into(), |t| since(app.now, t))),
                Cell::from(d.stats.open_trades.to_string()),
                Cell::from(super::money(profit)).style(theme.pnl(profit)),
                Cell::from(match (d.warnings, d.errors) {
                    (0, 0) => String::new(),
                    (w, e) => format!("{w} warn {e} err"),
                })
                .style(if d.errors > 0 {
                    theme.bad()
                } else {
                    theme.warn()
                }),
            ]);
            if i == v.cursor.selected {
                row.style(theme.selected())
            } else {
                row
            }
        });
    let widths = [
        Constraint::Fill(3),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(9),
        Constraint::Fill(1),
    ];
    let header = Row::new([
        "BOT", "STATUS", "MODE", "UPTIME", "OPEN", "PROFIT", "ISSUES",
    ])
    .style(theme.bold());
    frame.render_widget(
        Table::new(table_rows, widths).header(header).block(block),
        area,
    );
}
