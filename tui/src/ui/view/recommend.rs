//! The Recommendations view: the conditions, the ranked strategies, and the selected
//! one's score broken down point by point.

use super::{Theme, message, number, percent};
use crate::ui::app::{App, scored_with};
use crate::ui::keys::Action;
use mem_protocol::ErrorCode;
use mem_protocol::recommend::MetricsSource;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let v = &app.recommend;
    let [conditions, table, breakdown] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Min(4),
        Constraint::Length(9),
    ])
    .areas(area);

    draw_conditions(frame, conditions, app, theme);

    let block = Block::bordered().title(match &v.result {
        Some(Ok(r)) => format!(" {} ", r.message),
        _ => " recommendations ".into(),
    });
    let inner = block.inner(table);
    match &v.result {
        None => {
            frame.render_widget(block, table);
            message(
                frame,
                inner,
                "press t and v to choose the conditions",
                theme.dim(),
            );
        }
        Some(Err(f)) => {
            frame.render_widget(block, table);
            let hint = if f.code == Some(ErrorCode::Unavailable) {
                "\nChoose the conditions yourself: t cycles the trend, v the volatility."
            } else {
                ""
            };
            message(frame, inner, &format!("{}{hint}", f.message), theme.bad());
        }
        Some(Ok(r)) if r.recommendations.is_empty() => {
            frame.render_widget(block, table);
            message(frame, inner, &r.message, theme.dim());
        }
        Some(Ok(r)) => {
            let height = inner.height.saturating_sub(1) as usize;
            app.page.set(height);
            let offset = v.cursor.window(r.recommendations.len(), height);
            let rows = r
                .recommendations
                .iter()
                .enumerate()
                .skip(offset)
                .take(height)
                .map(|(i, rec)| {
                    let row = Row::new(vec![
                        Cell::from(format!("{:.2}", rec.confidence_score)).style(theme.bold()),
                        Cell::from(format!("{:.0}%", rec.confidence_score * 100.0)),
                        Cell::from(rec.strategy_name.clone()),
                        Cell::from(rec.category.clone()),
                        Cell::from(Line::from(number(rec.estimated_sharpe)).right_aligned()),
                        Cell::from(Line::from(percent(rec.estimated_win_rate)).right_aligned()),
                        Cell::from(match rec.metrics_source {
                            MetricsSource::Live => format!("live ({})", rec.live_trades),
                            source => crate::text::metrics_source(source).into(),
                        }),
                        Cell::from(if rec.is_deployed { "deployed" } else { "" })
                            .style(theme.good()),
                    ]);
                    if i == v.cursor.selected {
                        row.style(theme.selected())
                    } else {
                        row
                    }
                });
            let widths = [
                Constraint::Length(5),
                Constraint::Length(5),
                Constraint::Fill(3),
                Constraint::Fill(2),
                Constraint::Length(6),
                Constraint::Length(6),
                Constraint::Length(10),
                Constraint::Length(8),
            ];
            let header = Row::new([
                "SCORE", "CONF", "STRATEGY", "CATEGORY", "SHARPE", "WIN", "FIGURES", "",
            ])
            .style(theme.bold());
            frame.render_widget(Table::new(rows, widths).header(header).block(block), table);
        }
    }

    let block = Block::bordered().title(" why: the score, point by point ");
    let inner = block.inner(breakdown);
    frame.render_widget(block, breakdown);
    if let Some(rec) = v.rows().get(v.cursor.selected) {
        let mut lines: Vec<Line> = rec
            .breakdown
            .iter()
            .map(|p| {
                let style = if p.points > 0.0 {
                    theme.good()
                } else {
                    theme.dim()
                };
                Line::from(vec![
                    Span::styled(format!(" {:+.2} ", p.points), style),
                    Span::styled(format!("{:<11}", p.rule), theme.dim()),
                    Span::raw(p.detail.clone()),
                ])
            })
            .collect();
        lines.push(Line::from(vec![
            Span::styled(format!(" ={:.2} ", rec.confidence_score), theme.bold()),
            Span::raw(rec.reason.clone()),
        ]));
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    }
}

/// The conditions chosen (the keys that change them), and exactly those the scores were
/// computed with; the reasons of computed ones (cut here, in full in the messages).
fn draw_conditions(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let v = &app.recommend;
    let k = &app.keys;
    let both_computed = v.trend.is_none() && v.volatility.is_none();
    let word = |w: Option<String>| match w {
        Some(w) => w,
        None if both_computed => "computed".into(),
        None => "not chosen".into(),
    };
    let mut lines = vec![Line::from(vec![
        Span::styled(" trend ", theme.dim()),
        Span::styled(word(v.trend.map(|t| t.to_string())), theme.bold()),
        Span::styled(
            format!(" ({}) · volatility ", k.label(Action::Trend)),
            theme.dim(),
        ),
        Span::styled(word(v.volatility.map(|t| t.to_string())), theme.bold()),
        Span::styled(
            format!(
                " ({}) · {} computes both",
                k.label(Action::Volatility),
                k.label(Action::Computed)
            ),
            theme.dim(),
        ),
    ])];
    if v.loading {
        lines.push(Line::styled(" loading...", theme.dim()));
    } else if let Some(Ok(r)) = &v.result {
        let mut line = vec![
            Span::raw(" scored with "),
            Span::styled(scored_with(&v.conditions(), &r.conditions), theme.bold()),
            Span::raw(format!(" · {} candidates", r.candidates)),
        ];
        if let Some(c) = &r.conditions.computed {
            line.push(Span::raw(" · "));
            line.extend(super::freshness_spans("the", &c.freshness, app.now, theme));
        }
        lines.push(Line::from(line));
        if let Some(c) = &r.conditions.computed {
            lines.push(Line::styled(
                format!(
                    " {} · {} ({} shows it in full)",
                    c.trend_reason,
                    c.volatility_reason,
                    k.label(Action::Messages)
                ),
                theme.dim(),
            ));
        }
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" market conditions ")),
        area,
    );
}
