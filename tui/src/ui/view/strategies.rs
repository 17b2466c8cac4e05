//! The Strategies view: the registry table and the selected strategy's detail.
//! Only the visible rows are built, so 10,000 strategies cost what a screenful does.
//!
//! The detail ends with the performance strip when there is room (14 rows): the
//! backtest's figures beside the live ones, and the latest measured backtest's equity
//! curve beside them (else the live P&L); the live P&L goes under the strip when both
//! curves fit. A backtest column says whether its figures were measured by memd or typed
//! into the document.

use super::backtests::{drawdown, equity_chart, signed_percent};
use super::{Theme, message, number, percent};
use crate::ui::app::{App, StrategyData, sort_label};
use crate::ui::keys::Action;
use mem_protocol::strategy::StrategySummary;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Sparkline, Table, Wrap};

/// Wide enough for the table and the detail side by side.
const SIDE_BY_SIDE: u16 = 140;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let v = &app.strategies;
    if let Some(editor) = &v.editor {
        super::params::draw(frame, area, app, editor, theme);
        return;
    }
    if v.detail_open {
        draw_detail(frame, area, app, theme);
        return;
    }
    if area.width >= SIDE_BY_SIDE {
        let [table, detail] =
            Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                .areas(area);
        draw_table(frame, table, app, theme);
        draw_detail(frame, detail, app, theme);
    } else {
        draw_table(frame, area, app, theme);
    }
}

fn title(app: &App) -> String {
    let v = &app.strategies;
    let mut t = format!(
        " strategies {}/{} · {} · by {} ",
        v.rows.len(),
        v.all.len(),
        v.filter().label(),
        if v.by_relevance() {
            "relevance"
        } else {
            sort_label(v.sort())
        }
    );
    if v.searching || !v.search.is_empty() {
        t.push_str(&format!(
            "· /{}{} ",
            v.search,
            if v.searching { "_" } else { "" }
        ));
    }
    t
}

/// Below this width the table drops the language, MEM and trades columns.
const NARROW: u16 = 110;

fn row(s: &StrategySummary, theme: Theme, narrow: bool) -> Row<'static> {
    let status_style = match s.status {
        mem_protocol::strategy::StrategyStatus::Active => theme.good(),
        mem_protocol::strategy::StrategyStatus::Deprecated => theme.warn(),
        _ => ratatui::style::Style::new(),
    };
    let pnl = s.total_pnl.unwrap_or(0.0);
    let mut cells = vec![
        Cell::from(if s.is_deployed { "●" } else { " " }).style(theme.good()),
        Cell::from(s.display_name.clone()),
        Cell::from(s.category.clone()),
        Cell::from(s.status.to_string()).style(status_style),
    ];
    if !narrow {
        cells.push(Cell::from(s.language.clone()));
        cells.push(Cell::from(if s.mem_enabled { "MEM" } else { "" }));
    }
    cells.push(Cell::from(
        Line::from(number(s.sharpe_ratio)).right_aligned(),
    ));
    cells.push(Cell::from(Line::from(percent(s.win_rate)).right_aligned()));
    if !narrow {
        cells.push(Cell::from(
            Line::from(s.live_trades.to_string()).right_aligned(),
        ));
    }
    cells.push(
        Cell::from(Line::from(s.total_pnl.map_or("-".into(), super::money)).right_aligned())
            .style(theme.pnl(pnl)),
    );
    Row::new(cells)
}

fn draw_table(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let v = &app.strategies;
    let block = Block::bordered().title(title(app));
    let inner = block.inner(area);
    let height = inner.height.saturating_sub(1) as usize; // minus the header row
    app.page.set(height);
    if v.rows.is_empty() {
        frame.render_widget(block, area);
        let text = if v.all.is_empty() {
            "The registry is empty.".to_string()
        } else {
            format!(
                "No strategy matches ({} changes the filter, {} clears the search).",
                app.keys.label(Action::Filter),
                app.keys.label_or(Action::Back, "Esc")
            )
        };
        message(frame, inner, &text, theme.dim());
        return;
    }
    let offset = v.cursor.window(v.rows.len(), height);
    let end = (offset + height).min(v.rows.len());
    let narrow = area.width < NARROW;
    let rows = v.rows[offset..end].iter().enumerate().map(|(i, &at)| {
        let r = row(&v.all[at], theme, narrow);
        if offset + i == v.cursor.selected {
            r.style(theme.selected())
        } else {
            r
        }
    });
    let (widths, header): (Vec<Constraint>, Vec<&str>) = if narrow {
        (
            vec![
                Constraint::Length(1),
                Constraint::Fill(1),
                Constraint::Length(15),
                Constraint::Length(12),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(9),
            ],
            vec!["", "STRATEGY", "CATEGORY", "STATUS", "SHARPE", "WIN", "P&L"],
        )
    } else {
        (
            vec![
                Constraint::Length(1),
                Constraint::Fill(3),
                Constraint::Fill(2),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Length(3),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(9),
            ],
            vec![
                "", "STRATEGY", "CATEGORY", "STATUS", "LANGUAGE", "MEM", "SHARPE", "WIN", "TRADES",
                "P&L",
            ],
        )
    };
    let header = Row::new(header).style(theme.bold());
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .column_spacing(1)
            .block(block),
        area,
    );
}

fn draw_detail(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let v = &app.strategies;
    let Some(selected) = v.selected() else {
        frame.render_widget(Block::bordered().title(" detail "), area);
        return;
    };
    let block = Block::bordered().title(format!(" {} ", selected.display_name));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let data = match &v.detail {
        Some((id, Ok(data))) if *id == selected.id => data,
        Some((id, Err(e))) if *id == selected.id => {
            message(
                frame,
                inner,
                &format!("cannot load the detail: {e}"),
                theme.bad(),
            );
            return;
        }
        _ => {
            message(frame, inner, "loading...", theme.dim());
            return;
        }
    };
    let live = data.equity.len() >= 2;
    let curve = data.backtest.as_deref().filter(|r| r.equity.len() >= 2);
    let strip_height = if inner.height >= 14 && inner.width >= STRIP_TABLE_WIDTH + 20 {
        STRIP_HEIGHT
    } else {
        0
    };
    // The live P&L takes the strip's chart place when no backtest curve does.
    let live_in_strip = strip_height > 0 && live && curve.is_none();
    let room = if strip_height > 0 {
        inner.height >= strip_height + 4 + 6
    } else {
        inner.height > 16
    };
    let spark_height = if live && !live_in_strip && room { 4 } else { 0 };
    let [text, strip, spark] = Layout::vertical([
        Constraint::Min(1),
        Constraint::Length(strip_height),
        Constraint::Length(spark_height),
    ])
    .areas(inner);
    let measure_key = app.keys.label(Action::Backtest);
    frame.render_widget(
        Paragraph::new(detail_lines(
            selected,
            data,
            strip_height == 0,
            &measure_key,
            theme,
        ))
        .wrap(Wrap { trim: false })
        .scroll((v.detail_scroll, 0)),
        text,
    );
    if strip_height > 0 {
        let [table, _, chart] = Layout::horizontal([
            Constraint::Length(STRIP_TABLE_WIDTH),
            Constraint::Length(1),
            Constraint::Fill(1),
        ])
        .areas(strip);
        frame.render_widget(Paragraph::new(metrics_lines(data, theme)), table);
        match curve {
            Some(result) => equity_chart(frame, chart, result, theme),
            None if live => draw_equity(frame, chart, &data.equity, theme),
            None => message(
                frame,
                chart,
                &format!("no backtest measured yet: {measure_key} queues one"),
                theme.dim(),
            ),
        }
    }
    if spark_height > 0 {
        draw_equity(frame, spark, &data.equity, theme);
    }
}

/// The performance strip's height: the figures' table (a header and eight rows).
const STRIP_HEIGHT: u16 = 9;
/// The figures' table is this wide; the chart takes the rest.
const STRIP_TABLE_WIDTH: u16 = 34;

/// The backtest's figures beside the live ones: the measured backtest's (the latest on
/// the strategy's versions) when memd ran one, else the document's typed figures.
fn metrics_lines(data: &StrategyData, theme: Theme) -> Vec<Line<'static>> {
    let typed = &data.detail.metadata.strategy.performance.backtest;
    let measured = data.backtest.as_deref().map(|r| &r.figures);
    let report = data.performance.as_ref().map(|p| &p.all);
    // Without a closed trade there is no live figure but the count.
    let live = report.filter(|m| m.total_trades > 0);
    let row = |name: &str, a: String, b: String| Line::raw(format!("  {name:<11}{a:>10}{b:>10}"));
    let dash = || "-".to_string();
    let mut lines = vec![Line::styled(
        format!(
            "{:<13}{:>10}{:>10}",
            "Metrics",
            if measured.is_some() {
                "measured"
            } else {
                "typed"
            },
            "live"
        ),
        theme.bold(),
    )];
    lines.push(row(
        "trades",
        match (measured, typed.num_trades) {
            (Some(f), _) => f.trades.to_string(),
            (None, Some(n)) => n.to_string(),
            (None, None) => dash(),
        },
        report.map_or_else(dash, |m| m.total_trades.to_string()),
    ));
    lines.push(row(
        "win rate",
        percent(measured.map(|f| f.win_rate).or(typed.win_rate)),
        percent(live.and_then(|m| m.win_rate)),
    ));
    lines.push(row(
        "profit",
        measured
            .map(|f| f.profit_pct)
            .or(typed.total_return)
            .map_or_else(dash, signed_percent),
        live.map_or_else(dash, |m| signed_percent(m.total_return)),
    ));
    lines.push(row(
        "Sharpe",
        number(measured.map_or(typed.sharpe_ratio, |f| f.sharpe)),
        number(live.and_then(|m| m.sharpe_ratio)),
    ));
    lines.push(row(
        "Sortino",
        number(measured.and_then(|f| f.sortino)),
        number(live.and_then(|m| m.sortino_ratio)),
    ));
    lines.push(row(
        "max DD",
        measured
            .map(|f| f.max_drawdown)
            .or(typed.max_drawdown)
            .map_or_else(dash, drawdown),
        live.map_or_else(dash, |m| drawdown(m.max_drawdown)),
    ));
    lines.push(row(
        "PF",
        number(measured.and_then(|f| f.profit_factor)),
        number(live.and_then(|m| m.profit_factor)),
    ));
    if let Some(m) = live {
        lines.push(Line::from(vec![
            Span::raw(format!("  {:<11}{:>10}", "P&L", "")),
            Span::styled(
                format!("{:>10}", super::money(m.total_pnl)),
                theme.pnl(m.total_pnl),
            ),
        ]));
    }
    lines
}

/// What the backtest column stands on: the measured run (version, engine, data,
/// validation), or that the figures are typed.
fn backtest_lines(data: &StrategyData, measure_key: &str, theme: Theme) -> Vec<Line<'static>> {
    let Some(r) = data.backtest.as_deref() else {
        return vec![Line::from(vec![
            Span::styled("Backtest ", theme.bold()),
            Span::styled(
                format!("not measured: the figures are typed ({measure_key} measures them)"),
                theme.dim(),
            ),
        ])];
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled("Backtest ", theme.bold()),
            Span::raw(format!(
                "measured on version {} by {} {}",
                r.version,
                crate::text::backtest_engine(r.engine),
                r.engine_version
            )),
        ]),
        Line::raw(format!("  {} {}", r.pairs.join(", "), r.timeframe)),
        Line::raw(format!(
            "  {} → {} UTC",
            r.data_from.format("%Y-%m-%d %H:%M"),
            r.data_to.format("%Y-%m-%d %H:%M")
        )),
    ];
    let passed = r.validation.status == mem_protocol::backtest::ValidationStatus::Passed;
    lines.push(Line::from(vec![
        Span::raw("  validation "),
        if passed {
            Span::styled("passed", theme.good())
        } else {
            Span::styled("failed", theme.bad())
        },
        Span::raw(format!(": {}", r.validation.reasons.join("; "))),
    ]));
    if let Some(wf) = &r.walk_forward {
        lines.push(Line::raw(format!(
            "  walk-forward of {} folds: the figures are out-of-sample",
            wf.folds.len()
        )));
    }
    lines
}

fn kv(key: &str, value: String, theme: Theme) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{key:<11}"), theme.dim()),
        Span::raw(value),
    ])
}

fn detail_lines(
    s: &StrategySummary,
    data: &StrategyData,
    with_metrics: bool,
    measure_key: &str,
    theme: Theme,
) -> Vec<Line<'static>> {
    let meta = &data.detail.metadata.strategy;
    let mut lines = vec![
        kv("id", s.id.to_string(), theme),
        kv("name", s.name.clone(), theme),
        kv(
            "version",
            format!("{} · {} · {:?}", meta.version, meta.status, s.origin).to_lowercase(),
            theme,
        ),
        kv(
            "category",
            if meta.classification.sub_category.is_empty() {
                meta.classification.category.clone()
            } else {
                format!(
                    "{} / {}",
                    meta.classification.category, meta.classification.sub_category
                )
            },
            theme,
        ),
        kv(
            "runs on",
            format!(
                "{}{}",
                meta.implementation.language,
                meta.implementation
                    .class_name
                    .as_deref()
                    .map(|c| format!(" · {c}"))
                    .unwrap_or_default()
            ),
            theme,
        ),
        kv(
            "MEM",
            if meta.mem_integration.enabled {
                "enabled".into()
            } else {
                "disabled".into()
            },
            theme,
        ),
    ];
    if let Some(risk) = &meta.risk_profile.risk_level {
        lines.push(kv("risk", risk.clone(), theme));
    }
    if !s.tags.is_empty() {
        lines.push(kv("tags", s.tags.join(", "), theme));
    }
    if !meta.description.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::raw(meta.description.clone()));
    }
    if !meta.parameters.is_empty() {
        lines.push(Line::raw(""));
        lines.push(Line::styled("Parameters", theme.bold()));
        let width = meta.parameters.keys().map(|k| k.len()).max().unwrap_or(0);
        for (k, v) in &meta.parameters {
            // A declared parameter ({value, type, min, max, ...}) shows its value and range.
            let text = match (v.get("value"), v.get("min"), v.get("max")) {
                (Some(value), Some(min), Some(max)) => {
                    format!("{} ({}..{})", compact(value), compact(min), compact(max))
                }
                (Some(value), _, _) => compact(value),
                _ => compact(v),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("  {k:<width$} "), theme.dim()),
                Span::raw(text),
            ]));
        }
    }
    lines.push(Line::raw(""));
    lines.extend(backtest_lines(data, measure_key, theme));
    if with_metrics {
        // No room for the strip: the figures are part of the text.
        lines.push(Line::raw(""));
        lines.extend(metrics_lines(data, theme));
    }
    if let Some(versions) = &data.versions {
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            format!(
                "Versions ({}, current {})",
                versions.versions.len(),
                versions.current_version
            ),
            theme.bold(),
        ));
        for v in versions.versions.iter().rev().take(5) {
            lines.push(Line::raw(format!(
                "  {:<9} {} {}",
                v.version_number,
                v.created_at.format("%Y-%m-%d"),
                v.changelog.lines().next().unwrap_or("")
            )));
        }
    }
    lines
}

fn compact(v: &serde_json::Value) -> String {
    let text = match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// The cumulative P&L after each closed trade, as a sparkline.
fn draw_equity(frame: &mut Frame, area: Rect, equity: &[f64], theme: Theme) {
    let min = equity.iter().copied().fold(f64::INFINITY, f64::min);
    let max = equity.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (max - min).max(f64::EPSILON);
    // The newest trades that fit, scaled to 0..=100.
    let width = area.width.saturating_sub(2) as usize;
    let start = equity.len().saturating_sub(width);
    let data: Vec<u64> = equity[start..]
        .iter()
        .map(|v| (((v - min) / span) * 100.0).round() as u64)
        .collect();
    let last = *equity.last().unwrap_or(&0.0);
    frame.render_widget(
        Sparkline::default()
            .data(&data)
            .max(100)
            .style(theme.pnl(last))
            .block(Block::new().title(Line::from(vec![
                Span::styled("P&L ", theme.bold().add_modifier(Modifier::BOLD)),
                Span::raw(if area.width >= 45 {
                    format!(
                        "{last:.2} over {} trades (min {min:.2}, max {max:.2})",
                        equity.len()
                    )
                } else {
                    format!("{last:.2} over {} trades", equity.len())
                }),
            ]))),
        area,
    );
}
