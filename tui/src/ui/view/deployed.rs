//! The Deployed view: the bots, a totals row, and the selected bot's log, following.

use super::{Theme, bytes, message, since};
use crate::ui::app::{App, status_word};
use crate::ui::keys::Action;
use mem_protocol::deploy::{DeployedStrategy, DeploymentStatus};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
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
    let table_height = (rows.len() as u16 + 4).clamp(5, area.height / 2 + 1);
    let [table, log] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(3)]).areas(area);
    draw_table(frame, table, app, &rows, theme);
    draw_log(frame, log, app, theme);
}

fn draw_table(frame: &mut Frame, area: Rect, app: &App, rows: &[&DeployedStrategy], theme: Theme) {
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
    // Header and totals take two rows.
    let height = inner.height.saturating_sub(2) as usize;
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
                let r =
                    pick(vec![
                        Cell::from(d.strategy_name.clone()),
                        Cell::from(status_word(d.status)).style(status_style(d, theme)),
                        Cell::from(if d.dry_run { "dry-run" } else { "LIVE" })
                            .style(if d.dry_run { Style::new() } else { theme.bad() }),
                        Cell::from(d.process_id.map_or("-".into(), |p| p.to_string())),
                        Cell::from(d.port.map_or("-".into(), |p| p.to_string())),
                        Cell::from(d.up_since().map_or("-".into(), |t| since(app.now, t))),
                        right(d.cpu_percent.map_or("-".into(), |c| format!("{c:.1}%"))),
                        right(d.rss_bytes.map_or("-".into(), bytes)),
                        right(d.stats.open_trades.to_string()),
                        right(super::money(profit)).style(theme.pnl(profit)),
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
    let active: Vec<&&DeployedStrategy> = rows.iter().filter(|d| d.status.is_active()).collect();
    let profit: f64 = active.iter().map(|d| d.stats.profit_all).sum();
    let open: u64 = active.iter().map(|d| d.stats.open_trades).sum();
    let balance: f64 = active.iter().filter_map(|d| d.stats.balance).sum();
    table_rows.push(
        pick(vec![
            Cell::from(format!("total, {} active", active.len())),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            Cell::from(""),
            right(open.to_string()),
            right(super::money(profit)).style(theme.pnl(profit)),
            Cell::from(format!("balance {:.0}", balance + 0.0)),
        ])
        .style(theme.bold()),
    );
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
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = Vec::new();
    if let Some(err) = &d.last_error {
        lines.push(Line::styled(format!("last error: {err}"), theme.bad()));
    }
    let height = (inner.height as usize).saturating_sub(lines.len());
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
