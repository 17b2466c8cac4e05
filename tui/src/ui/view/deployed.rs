//! The Deployed view: the bots (an ended one with no process figures), totals per stake
//! currency, the failures nobody has acknowledged yet, and the selected bot's log,
//! following.

use super::{Theme, bytes, message, since};
use crate::ui::app::App;
use crate::ui::keys::Action;
use mem_protocol::deploy::{DeployedStrategy, DeploymentStatus};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

pub fn status_style(d: &DeployedStrategy, theme: Theme) -> Style {
    match d.status {
        DeploymentStatus::Running => theme.good(),
        DeploymentStatus::Starting | DeploymentStatus::Restarting | DeploymentStatus::Stopping => {
            theme.warn()
        }
        DeploymentStatus::Crashed | DeploymentStatus::Failed => theme.bad(),
        DeploymentStatus::Stopped => theme.dim(),
    }
}

/// `3 warn 1 err`, highlighted, or empty.
fn problems(d: &DeployedStrategy) -> String {
    match (d.warnings, d.errors) {
        (0, 0) => String::new(),
        (w, 0) => format!("{w} warn"),
        (0, e) => format!("{e} err"),
        (w, e) => format!("{w} warn {e} err"),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let rows = app.deployed.rows();
    let totals = totals_by_currency(&rows);
    let failed: Vec<&DeployedStrategy> = rows
        .iter()
        .copied()
        .filter(|d| d.needs_acknowledgement())
        .collect();
    let attention = attention_lines(&failed, app, theme);
    // Borders, the header and a row per currency's totals.
    let table_height = (rows.len() + totals.len().max(1)) as u16 + 3;
    let table_height = table_height.clamp(5, area.height / 2 + 1);
    let [table, strip, log] = Layout::vertical([
        Constraint::Length(table_height),
        Constraint::Length(attention.len() as u16),
        Constraint::Min(3),
    ])
    .areas(area);
    draw_table(frame, table, app, &rows, &totals, theme);
    frame.render_widget(Paragraph::new(attention), strip);
    draw_log(frame, log, app, theme);
}

/// What the active deployments of one currency add up to: amounts in different
/// currencies are never added together.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrencyTotal {
    /// None: not known yet (a bot not yet polled for its balance).
    pub currency: Option<String>,
    pub count: usize,
    pub open: u64,
    pub profit: f64,
    pub balance: Option<f64>,
}

/// The active deployments' totals, one per stake currency (in the order they first
/// appear); none without an active deployment.
pub fn totals_by_currency(rows: &[&DeployedStrategy]) -> Vec<CurrencyTotal> {
    let mut totals: Vec<CurrencyTotal> = Vec::new();
    for d in rows.iter().filter(|d| d.status.is_active()) {
        let currency = d.stats.stake_currency.clone();
        let i = match totals.iter().position(|t| t.currency == currency) {
            Some(i) => i,
            None => {
                totals.push(CurrencyTotal {
                    currency,
                    count: 0,
                    open: 0,
                    profit: 0.0,
                    balance: None,
                });
                totals.len() - 1
            }
        };
        let t = &mut totals[i];
        t.count += 1;
        t.open += d.stats.open_trades;
        t.profit += d.stats.profit_all;
        if let Some(b) = d.stats.balance {
            t.balance = Some(t.balance.unwrap_or(0.0) + b);
        }
    }
    totals
}

/// The failures nobody has acknowledged yet, a line each (at most three and a count).
fn attention_lines(failed: &[&DeployedStrategy], app: &App, theme: Theme) -> Vec<Line<'static>> {
    let mut lines: Vec<Line> = failed
        .iter()
        .take(3)
        .map(|d| {
            Line::from(vec![
                Span::styled(format!(" ✗ {} failed", d.strategy_name), theme.bad()),
                Span::raw(format!(
                    ": {}",
                    d.last_error.as_deref().unwrap_or("no error recorded")
                )),
            ])
        })
        .collect();
    if failed.len() > 3 {
        lines.push(Line::styled(
            format!("   and {} more failures", failed.len() - 3),
            theme.bad(),
        ));
    }
    if !lines.is_empty() {
        lines.push(Line::styled(
            format!(
                "   listed until acknowledged: select one, read its error below, press {}",
                app.keys.label(Action::Acknowledge)
            ),
            theme.dim(),
        ));
    }
    lines
}

/// A figure of the deployment's process, or "-" once it ended: its last pid may be
/// another process's by now, and an ended deployment uses no CPU.
fn live(d: &DeployedStrategy, figure: Option<String>) -> String {
    figure
        .filter(|_| d.status.is_active())
        .unwrap_or_else(|| "-".into())
}

fn draw_table(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    rows: &[&DeployedStrategy],
    totals: &[CurrencyTotal],
    theme: Theme,
) {
    let v = &app.deployed;
    let block = Block::bordered().title(format!(
        " deployed {} · {} ({} filters) ",
        rows.len(),
        v.filter().label(),
        app.keys.label(Action::Filter)
    ));
    let inner = block.inner(area);
    if rows.is_empty() {
        frame.render_widget(block, area);
        message(
            frame,
            inner,
            "No deployment here. Deploy a strategy from Strategies (2) or Recommend (4) with d.",
            theme.dim(),
        );
        return;
    }
    // The header and the totals take their rows.
    let height = (inner.height as usize).saturating_sub(1 + totals.len().max(1));
    if !v.log_focus {
        app.page.set(height);
    }
    let offset = v.cursor.window(rows.len(), height);
    // Columns that step aside on narrow screens (the name must stay readable).
    let width = area.width;
    let keep = |column: &str| match column {
        "PID" | "PORT" => width >= 120,
        "CPU" | "MEM" => width >= 90,
        _ => true,
    };
    let columns: [(&str, Constraint); 11] = [
        ("BOT", Constraint::Fill(1)),
        ("STATUS", Constraint::Length(10)),
        ("MODE", Constraint::Length(7)),
        ("PID", Constraint::Length(7)),
        ("PORT", Constraint::Length(5)),
        ("UPTIME", Constraint::Length(7)),
        ("CPU", Constraint::Length(6)),
        ("MEM", Constraint::Length(8)),
        ("OPEN", Constraint::Length(4)),
        ("PROFIT", Constraint::Length(9)),
        ("ISSUES", Constraint::Length(13)),
    ];
    let pick = |cells: Vec<Cell<'static>>| -> Row<'static> {
        Row::new(
            cells
                .into_iter()
                .zip(columns.iter())
                .filter(|(_, (name, _))| keep(name))
                .map(|(cell, _)| cell)
                .collect::<Vec<_>>(),
        )
    };
    let right = |text: String| Cell::from(Line::from(text).right_aligned());
    let mut table_rows: Vec<Row> =
        rows.iter()
            .enumerate()
            .skip(offset)
            .take(height)
            .map(|(i, d)| {
                let profit = d.stats.profit_all;
                let shown = crate::text::deployment_name(d);
                let name = if d.needs_acknowledgement() {
                    Cell::from(format!("✗ {shown}")).style(theme.bad())
                } else {
                    Cell::from(shown)
                };
                let r =
                    pick(vec![
                        name,
                        Cell::from(crate::text::deployment_status(d.status))
                            .style(status_style(d, theme)),
                        Cell::from(if d.dry_run { "dry-run" } else { "LIVE" })
                            .style(if d.dry_run { Style::new() } else { theme.bad() }),
                        Cell::from(live(d, d.process_id.map(|p| p.to_string()))),
                        Cell::from(live(d, d.port.map(|p| p.to_string()))),
                        Cell::from(live(d, d.up_since().map(|t| since(app.now, t)))),
                        right(live(d, d.cpu_percent.map(|c| format!("{c:.1}%")))),
                        right(live(d, d.rss_bytes.map(bytes))),
                        right(d.stats.open_trades.to_string()),
                        right(super::amount(profit, d.stats.stake_currency.as_deref()))
                            .style(theme.pnl(profit)),
                        Cell::from(problems(d)).style(if d.errors > 0 {
                            theme.bad()
                        } else {
                            theme.warn()
                        }),
                    ]);
                if i == v.cursor.selected {
                    r.style(theme.selected())
                } else {
                    r
                }
            })
            .collect();
    table_rows.extend(total_rows(totals, theme).into_iter().map(pick));
    let widths: Vec<Constraint> = columns
        .iter()
        .filter(|(name, _)| keep(name))
        .map(|(_, w)| *w)
        .collect();
    let header = Row::new(
        columns
            .iter()
            .filter(|(name, _)| keep(name))
            .map(|(name, _)| *name)
            .collect::<Vec<_>>(),
    )
    .style(theme.bold());
    frame.render_widget(
        Table::new(table_rows, widths).header(header).block(block),
        area,
    );
}

/// The totals: a row per currency (every column's cells; `pick` drops the hidden ones).
fn total_rows(totals: &[CurrencyTotal], theme: Theme) -> Vec<Vec<Cell<'static>>> {
    let right = |text: String| Cell::from(Line::from(text).right_aligned());
    let row = |label: String, open: u64, profit: Option<(String, f64)>, balance: String| {
        let mut cells = vec![Cell::from(label).style(theme.bold())];
        cells.extend((0..7).map(|_| Cell::from("")));
        cells.push(right(open.to_string()).style(theme.bold()));
        cells.push(match profit {
            Some((text, p)) => right(text).style(theme.pnl(p).add_modifier(Modifier::BOLD)),
            None => Cell::from(""),
        });
        cells.push(Cell::from(balance).style(theme.bold()));
        cells
    };
    if totals.is_empty() {
        return vec![row("total, 0 active".into(), 0, None, String::new())];
    }
    totals
        .iter()
        .map(|t| {
            let currency = t.currency.as_deref();
            let label = match currency {
                Some(c) => format!("total {c}, {} active", t.count),
                None => format!("total, currency unknown, {} active", t.count),
            };
            // In the currency the row's label names.
            let balance = t.balance.map_or(String::new(), |b| {
                format!("balance {}", super::balance(b, currency))
            });
            let profit = (super::amount(t.profit, currency), t.profit);
            row(label, t.open, Some(profit), balance)
        })
        .collect()
}

fn draw_log(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let v = &app.deployed;
    let Some(d) = v.selected() else {
        frame.render_widget(Block::bordered().title(" log "), area);
        return;
    };
    let k = &app.keys;
    let focus = if v.log_focus {
        format!(
            " ({}{} scroll, {} follows, {} leaves)",
            k.label(Action::Up),
            k.label(Action::Down),
            k.label_or(Action::Bottom, "G"),
            k.label(Action::Logs)
        )
    } else {
        format!(" ({} to scroll)", k.label(Action::Logs))
    };
    let following = if v.log_scroll == 0 {
        "following"
    } else {
        "scrolled back"
    };
    let block = Block::bordered()
        .title(format!(" log · {} · {following}{focus} ", d.strategy_name))
        .border_style(if v.log_focus {
            theme.accent()
        } else {
            Style::new()
        });
    let mut inner = block.inner(area);
    frame.render_widget(block, area);
    if let Some(err) = &d.last_error {
        // The whole error, wrapped (up to half the pane): it says why the bot ended.
        let text = format!("last error: {err}");
        let rows = super::wrapped_rows(&text, inner.width)
            .min(inner.height / 2)
            .max(1);
        let [error, rest] =
            Layout::vertical([Constraint::Length(rows), Constraint::Min(0)]).areas(inner);
        frame.render_widget(
            Paragraph::new(text)
                .style(theme.bad())
                .wrap(ratatui::widgets::Wrap { trim: false }),
            error,
        );
        inner = rest;
    }
    let mut lines: Vec<Line> = Vec::new();
    let height = inner.height as usize;
    if v.log_focus {
        app.page.set(height);
    }
    match v.logs.get(&d.deployment_id) {
        Some(log) if !log.is_empty() => {
            let end = log.len().saturating_sub(v.log_scroll);
            let start = end.saturating_sub(height);
            for line in log.range(start..end) {
                let style = if line.contains(" - ERROR - ") || line.contains("ERROR") {
                    theme.bad()
                } else if line.contains(" - WARNING - ") || line.contains("WARNING") {
                    theme.warn()
                } else {
                    Style::new()
                };
                lines.push(Line::styled(line.clone(), style));
            }
        }
        _ => lines.push(Line::styled("no log lines yet", theme.dim())),
    }
    frame.render_widget(Paragraph::new(lines), inner);
}
