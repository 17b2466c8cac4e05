//! The Memory view: MEM's decision log (`mem.decisions`), newest first, live from
//! `decision.logged` events, with the selected decision's reasoning and outcome.

use super::{Theme, message};
use crate::ui::app::{App, View};
use mem_protocol::mem::DecisionList;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let panel = app.panels.get(&View::Memory);
    let block = Block::bordered().title(" Memory · decisions, newest first (mem_knowledge/) ");
    let inner = block.inner(area);
    let Some((list, panel)) =
        super::panel::typed::<DecisionList>(frame, area, block.clone(), panel, theme)
    else {
        return;
    };
    if list.decisions.is_empty() {
        frame.render_widget(block, area);
        message(
            frame,
            inner,
            "No decision logged yet. Native strategies, TradingView alerts and scripts log one each time MEM decides on a signal; its outcome follows when the trade closes.",
            theme.dim(),
        );
        return;
    }
    let [table, detail] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area);
    let height = table.height.saturating_sub(3) as usize;
    app.page.set(height);
    let offset = panel.cursor.window(list.decisions.len(), height);
    let rows = list
        .decisions
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, d)| {
            let outcome = match &d.outcome {
                Some(o) => Cell::from(format!("{:+.2} ({:+.2}%)", o.pnl, o.pnl_pct * 100.0))
                    .style(theme.pnl(o.pnl)),
                None => Cell::from("open").style(theme.dim()),
            };
            let row = Row::new(vec![
                Cell::from(d.at.format("%m-%d %H:%M:%S").to_string()),
                Cell::from(d.strategy.clone()),
                Cell::from(crate::text::signal_action(d.action)),
                Cell::from(d.symbol.clone()),
                Cell::from(crate::text::significant(d.price)),
                Cell::from(format!("{:.2}", d.confidence)),
                Cell::from(format!("{:.4}", d.position_size)),
                outcome,
            ]);
            if i == panel.cursor.selected {
                row.style(theme.selected())
            } else {
                row
            }
        });
    let widths = [
        Constraint::Length(14),
        Constraint::Fill(2),
        Constraint::Length(5),
        Constraint::Fill(1),
        Constraint::Length(10),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(18),
    ];
    let header = Row::new([
        "TIME", "STRATEGY", "DO", "SYMBOL", "PRICE", "CONF", "SIZE", "OUTCOME",
    ])
    .style(theme.bold());
    let title = if list.unreadable_lines > 0 {
        format!(
            " Memory · decisions, newest first · {} unreadable lines skipped ",
            list.unreadable_lines
        )
    } else {
        " Memory · decisions, newest first (mem_knowledge/) ".to_string()
    };
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(title)),
        table,
    );
    let Some(d) = list.decisions.get(panel.cursor.selected) else {
        return;
    };
    let num = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", d.id), theme.dim()),
            Span::raw(format!(
                "base {:.2} · ML {} · memory {} -> {:.2}{}",
                d.base_confidence,
                num(d.ml_confidence),
                num(d.memory_confidence),
                d.confidence,
                d.learned_pattern
                    .as_deref()
                    .map(|p| format!(" · pattern {p}"))
                    .unwrap_or_default()
            )),
        ]),
        Line::raw(format!(
            "size {:.4} · stop {}% · target {}%",
            d.position_size, d.stop_loss, d.take_profit
        )),
        Line::raw(d.reasoning.clone()),
        Line::from({
            let mut spans = vec![Span::styled("ML and market state read from: ", theme.dim())];
            spans.extend(super::market_spans(app, theme));
            spans
        }),
    ];
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" selected decision ")),
        detail,
    );
}

/// The Dashboard's short list: the newest decisions, one line each, in words.
pub fn draw_short(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let block = Block::bordered().title(" MEM's decisions, newest first ");
    let inner = block.inner(area);
    let Some((list, _)) = super::panel::typed::<DecisionList>(
        frame,
        area,
        block.clone(),
        app.panels.get(&View::Memory),
        theme,
    ) else {
        return;
    };
    frame.render_widget(block, area);
    if list.decisions.is_empty() {
        message(frame, inner, "no decision yet", theme.dim());
        return;
    }
    let rows = list.decisions.iter().take(inner.height as usize).map(|d| {
        let outcome = match &d.outcome {
            Some(o) => Cell::from(format!("{:+.2}", o.pnl)).style(theme.pnl(o.pnl)),
            None => Cell::from("open").style(theme.dim()),
        };
        Row::new(vec![
            Cell::from(d.at.format("%H:%M").to_string()),
            Cell::from(format!("{:?}", d.action).to_lowercase()),
            Cell::from(d.symbol.clone()),
            Cell::from(d.strategy.clone()),
            Cell::from(format!("{:.0}%", d.confidence * 100.0)),
            outcome,
        ])
    });
    let widths = [
        Constraint::Length(5),
        Constraint::Length(4),
        Constraint::Fill(1),
        Constraint::Fill(1),
        Constraint::Length(4),
        Constraint::Length(7),
    ];
    frame.render_widget(Table::new(rows, widths), inner);
}
