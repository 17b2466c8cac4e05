//! The fleet's screen: one server's screen under a line naming every server, or the
//! all-servers views (Dashboard, Deployed, Jobs) with a SERVER column, fleet totals and
//! each server's connection. A server that is not connected has its rows greyed and its
//! state said instead of its bots' ("last seen running").

use super::deployed::{status_style, totals_by_currency};
use super::{Theme, amount, duration, since};
use crate::ui::app::{App, Connection};
use crate::ui::fleet::{AllView, FleetApp, Focus, connection_text};
use crate::ui::keys::Action;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};

fn state_style(app: &App, theme: Theme) -> Style {
    match app.connection {
        Connection::Connected => theme.good(),
        Connection::Connecting => theme.warn(),
        Connection::Disconnected { .. } => theme.bad(),
    }
}

pub fn draw(frame: &mut Frame, fleet: &FleetApp, theme: Theme) {
    let area = frame.area();
    let [bar, rest] = Layout::vertical([Constraint::Length(1), Constraint::Min(1)]).areas(area);
    draw_bar(frame, bar, fleet, theme);
    match fleet.focus {
        Focus::One(i) => super::draw_in(frame, rest, &fleet.members[i].app, theme),
        Focus::All => draw_all(frame, rest, fleet, theme),
    }
}

/// The servers, the focused one highlighted, each coloured by its connection; or the
/// switcher's prompt.
fn draw_bar(frame: &mut Frame, area: Rect, fleet: &FleetApp, theme: Theme) {
    if let Some(typed) = &fleet.switcher {
        let names: Vec<&str> = fleet.members.iter().map(|m| m.name.as_str()).collect();
        frame.render_widget(
            Line::from(vec![
                Span::styled(" server: ", theme.bold()),
                Span::raw(format!("{typed}▏")),
                Span::styled(
                    format!(
                        "  ({}, all · Enter switches, Esc cancels)",
                        names.join(", ")
                    ),
                    theme.dim(),
                ),
            ]),
            area,
        );
        return;
    }
    let mut spans = vec![Span::styled(" servers ", theme.bold())];
    for (i, m) in fleet.members.iter().enumerate() {
        let style = state_style(&m.app, theme);
        let style = if fleet.focus == Focus::One(i) {
            style.add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            style
        };
        spans.push(Span::styled(format!(" {} ", m.name), style));
        spans.push(Span::raw(" "));
    }
    let all_style = if fleet.focus == Focus::All {
        theme.selected().add_modifier(Modifier::BOLD)
    } else {
        theme.dim()
    };
    spans.push(Span::styled(" all ", all_style));
    spans.push(Span::styled("  : switches", theme.dim()));
    frame.render_widget(Line::from(spans), area);
}

fn draw_all(frame: &mut Frame, area: Rect, fleet: &FleetApp, theme: Theme) {
    let [tabs, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let keys = &fleet.keys;
    let tab = |view: AllView, action: Action, title: &str| {
        let label = format!(" {} {title} ", keys.label(action));
        if fleet.view == view {
            Span::styled(label, theme.selected().add_modifier(Modifier::BOLD))
        } else {
            Span::raw(label)
        }
    };
    let connected = fleet
        .members
        .iter()
        .filter(|m| m.app.is_connected())
        .count();
    frame.render_widget(
        Line::from(vec![
            tab(AllView::Dashboard, Action::ViewDashboard, "Dashboard"),
            tab(AllView::Deployed, Action::ViewDeployed, "Deployed"),
            tab(AllView::Jobs, Action::ViewJobs, "Jobs"),
            Span::styled(
                format!(
                    "   all servers: {} of {} connected · {} UTC",
                    connected,
                    fleet.members.len(),
                    fleet.now.format("%H:%M:%S")
                ),
                theme.dim(),
            ),
        ]),
        tabs,
    );
    match fleet.view {
        AllView::Dashboard => draw_dashboard(frame, body, fleet, theme),
        AllView::Deployed => draw_deployed(frame, body, fleet, theme),
        AllView::Jobs => draw_jobs(frame, body, fleet, theme),
    }
    // The newest message of any server, named.
    let newest = fleet
        .members
        .iter()
        .filter_map(|m| m.app.status_line.as_ref().map(|s| (m, s)))
        .max_by_key(|(_, s)| s.at);
    if let Some((m, line)) = newest {
        frame.render_widget(
            Line::from(format!(" [{}] {}", m.name, line.text)).style(theme.dim()),
            status,
        );
    }
    let hint = format!(
        " {} open · {} stop · {} restart · {} deploy · {} ack · : server · {} quit",
        keys.label(Action::Open),
        keys.label(Action::Stop),
        keys.label(Action::Restart),
        keys.label(Action::Deploy),
        keys.label(Action::Acknowledge),
        keys.label(Action::Quit),
    );
    frame.render_widget(Line::from(hint).style(theme.dim()), footer);
    if let Some(i) = fleet.dialog {
        super::draw_overlay(frame, body, &fleet.members[i].app, theme);
    }
}

fn selected(row: Row<'static>, i: usize, fleet: &FleetApp, theme: Theme) -> Row<'static> {
    if i == fleet.cursor.selected {
        row.style(theme.selected())
    } else {
        row
    }
}

/// Per server: its connection, memd's version, its bots, open trades, profit, host
/// load; then the fleet's totals (amounts in different currencies are never added).
fn draw_dashboard(frame: &mut Frame, area: Rect, fleet: &FleetApp, theme: Theme) {
    let mut all_rows = Vec::new();
    let (mut bots, mut failed, mut open) = (0usize, 0usize, 0u64);
    let mut rows = Vec::new();
    for (i, m) in fleet.members.iter().enumerate() {
        let app = &m.app;
        let deployed = app.deployed.rows();
        let active = deployed.iter().filter(|d| d.status.is_active()).count();
        let failures = deployed
            .iter()
            .filter(|d| d.needs_acknowledgement())
            .count();
        let trades: u64 = deployed
            .iter()
            .filter(|d| d.status.is_active())
            .map(|d| d.stats.open_trades)
            .sum();
        let totals = totals_by_currency(&deployed);
        let profit = totals
            .iter()
            .map(|t| amount(t.profit, t.currency.as_deref()))
            .collect::<Vec<_>>()
            .join(", ");
        if app.is_connected() {
            bots += active;
            failed += failures;
            open += trades;
            all_rows.extend(deployed);
        }
        let host = app.status.as_ref().map_or("-".to_string(), |s| {
            format!(
                "{:.0}% CPU, load {:.2}",
                s.host.cpu_percent, s.host.load_average[0]
            )
        });
        let row = Row::new(vec![
            Cell::from(m.name.clone()),
            Cell::from(connection_text(app, fleet.now)).style(state_style(app, theme)),
            Cell::from(
                app.status
                    .as_ref()
                    .map_or("-".into(), |s| s.version.clone()),
            ),
            Cell::from(active.to_string()),
            Cell::from(failures.to_string()).style(if failures > 0 {
                theme.bad()
            } else {
                Style::default()
            }),
            Cell::from(trades.to_string()),
            Cell::from(if profit.is_empty() {
                "-".into()
            } else {
                profit
            }),
            Cell::from(host),
        ]);
        let row = if app.is_connected() {
            row
        } else {
            row.style(theme.dim())
        };
        rows.push(selected(row, i, fleet, theme));
    }
    let fleet_profit = totals_by_currency(&all_rows)
        .iter()
        .map(|t| amount(t.profit, t.currency.as_deref()))
        .collect::<Vec<_>>()
        .join(", ");
    rows.push(
        Row::new(vec![
            Cell::from("fleet"),
            Cell::from(""),
            Cell::from(""),
            Cell::from(bots.to_string()),
            Cell::from(failed.to_string()),
            Cell::from(open.to_string()),
            Cell::from(if fleet_profit.is_empty() {
                "-".into()
            } else {
                fleet_profit
            }),
            Cell::from(""),
        ])
        .style(theme.bold()),
    );
    let header = Row::new([
        "SERVER",
        "CONNECTION",
        "MEMD",
        "BOTS",
        "FAILED",
        "OPEN",
        "PROFIT",
        "HOST",
    ])
    .style(theme.bold());
    let widths = [
        Constraint::Length(12),
        Constraint::Fill(2),
        Constraint::Length(8),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Fill(1),
        Constraint::Length(20),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(" Fleet · every server ")),
        area,
    );
}

/// Every server's bots, with their server; a server that is not connected shows its
/// last rows greyed, "last seen".
fn draw_deployed(frame: &mut Frame, area: Rect, fleet: &FleetApp, theme: Theme) {
    let rows: Vec<Row> = fleet
        .deployed_rows()
        .into_iter()
        .enumerate()
        .map(|(n, (i, d))| {
            let app = &fleet.members[i].app;
            let connected = app.is_connected();
            let status = crate::text::deployment_status(d.status);
            let status_cell = if connected {
                Cell::from(status.to_string()).style(status_style(d, theme))
            } else {
                Cell::from(format!("last seen {status}"))
            };
            let uptime = d.running_since.map_or("-".into(), |t| since(fleet.now, t));
            let row = Row::new(vec![
                Cell::from(fleet.members[i].name.clone()),
                Cell::from(crate::text::deployment_name(d)),
                status_cell,
                Cell::from(if d.dry_run { "dry-run" } else { "LIVE" }),
                Cell::from(d.port.map_or("-".into(), |p| p.to_string())),
                Cell::from(uptime),
                Cell::from(d.stats.open_trades.to_string()),
                Cell::from(amount(
                    d.stats.profit_all,
                    d.stats.stake_currency.as_deref(),
                )),
            ]);
            let row = if connected {
                row
            } else {
                row.style(theme.dim())
            };
            selected(row, n, fleet, theme)
        })
        .collect();
    if rows.is_empty() {
        frame.render_widget(
            Paragraph::new(" no bot runs on any connected server").block(Block::bordered()),
            area,
        );
        return;
    }
    let header = Row::new([
        "SERVER", "STRATEGY", "STATUS", "MODE", "PORT", "UP", "OPEN", "PROFIT",
    ])
    .style(theme.bold());
    let widths = [
        Constraint::Length(12),
        Constraint::Fill(2),
        Constraint::Length(22),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(9),
        Constraint::Length(5),
        Constraint::Fill(1),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(" Deployed · every server ")),
        area,
    );
}

fn draw_jobs(frame: &mut Frame, area: Rect, fleet: &FleetApp, theme: Theme) {
    let rows: Vec<Row> = fleet
        .job_rows()
        .into_iter()
        .enumerate()
        .map(|(n, (i, j))| {
            let app = &fleet.members[i].app;
            let last = j.last_run.as_ref();
            let row = Row::new(vec![
                Cell::from(fleet.members[i].name.clone()),
                Cell::from(j.name.clone()),
                Cell::from(if j.enabled { "on" } else { "off" }),
                Cell::from(last.map_or("never".into(), |r| {
                    format!("{} ago", since(fleet.now, r.started_at))
                })),
                Cell::from(last.map_or("-".into(), |r| format!("{:?}", r.outcome).to_lowercase())),
                Cell::from(j.next_run.map_or("-".into(), |t| {
                    format!(
                        "in {}",
                        duration((t - fleet.now).num_seconds().max(0) as u64)
                    )
                })),
            ]);
            let row = if app.is_connected() {
                row
            } else {
                row.style(theme.dim())
            };
            selected(row, n, fleet, theme)
        })
        .collect();
    let header =
        Row::new(["SERVER", "JOB", "ON", "LAST RUN", "RESULT", "NEXT"]).style(theme.bold());
    let widths = [
        Constraint::Length(12),
        Constraint::Length(18),
        Constraint::Length(4),
        Constraint::Length(14),
        Constraint::Length(10),
        Constraint::Fill(1),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(" Jobs · every server ")),
        area,
    );
}
