//! The parameter editor (`p` in the Strategies view): the parameters as a table, then the
//! selected one's description, what a change does, and its history, newest first; at the
//! bottom the edit (new value, reason) and the daemon's answer.

use super::{Theme, message};
use crate::ui::app::{App, Tone};
use crate::ui::keys::Action;
use crate::ui::params::{ParamEditor, ParamRow, effect_note, range, rows, show};
use mem_protocol::Access;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

/// Characters of a value shown in the table and the history.
const VALUE_WIDTH: usize = 40;

fn clip(text: String, width: usize) -> String {
    if text.chars().count() > width {
        let cut: String = text.chars().take(width.saturating_sub(3)).collect();
        format!("{cut}...")
    } else {
        text
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, editor: &ParamEditor, theme: Theme) {
    let block = Block::bordered().title(format!(" parameters · {} ", editor.display_name));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let doc = match &app.strategies.detail {
        Some((id, Ok(data))) if *id == editor.strategy => &data.detail.metadata,
        Some((id, Err(e))) if *id == editor.strategy => {
            message(
                frame,
                inner,
                &format!("cannot load the strategy: {e}"),
                theme.bad(),
            );
            return;
        }
        _ => {
            message(frame, inner, "loading...", theme.dim());
            return;
        }
    };
    let all = rows(doc);
    if all.is_empty() {
        let close = app.keys.label_or(Action::Back, "Esc");
        let text = format!("This strategy declares no parameters ({close} closes).");
        message(frame, inner, &text, theme.dim());
        return;
    }
    let edit_height = if editor.edit.is_some() { 4 } else { 1 };
    let table_height = (all.len() as u16 + 1).min((inner.height / 2).max(3));
    let [table, detail, edit] = Layout::vertical([
        Constraint::Length(table_height),
        Constraint::Min(1),
        Constraint::Length(edit_height),
    ])
    .areas(inner);
    let selected = editor.cursor.selected.min(all.len() - 1);
    draw_table(frame, table, app, editor, &all, selected, theme);
    let row = &all[selected];
    draw_detail(
        frame,
        detail,
        editor,
        row,
        &effect_note(doc, &row.name),
        theme,
    );
    draw_edit(frame, edit, app, editor, row, theme);
}

fn draw_table(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    editor: &ParamEditor,
    all: &[ParamRow],
    selected: usize,
    theme: Theme,
) {
    let height = area.height.saturating_sub(1) as usize;
    app.page.set(height);
    let offset = editor.cursor.window(all.len(), height);
    let rows = all
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, r)| {
            let row = Row::new(vec![
                Cell::from(r.name.clone()),
                Cell::from(r.kind.clone()),
                Cell::from(clip(show(&r.value), VALUE_WIDTH)),
                Cell::from(range(r)),
            ]);
            if i == selected {
                row.style(theme.selected())
            } else {
                row
            }
        });
    let widths = [
        Constraint::Fill(2),
        Constraint::Length(8),
        Constraint::Fill(3),
        Constraint::Fill(2),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(vec!["PARAMETER", "TYPE", "VALUE", "RANGE"]).style(theme.bold()))
            .column_spacing(1),
        area,
    );
}

fn draw_detail(
    frame: &mut Frame,
    area: Rect,
    editor: &ParamEditor,
    row: &ParamRow,
    note: &str,
    theme: Theme,
) {
    let mut lines = vec![
        Line::raw(""),
        Line::from(vec![
            Span::styled(row.name.clone(), theme.bold()),
            Span::styled(
                format!(
                    " · {} · range {} · now {}",
                    row.kind,
                    range(row),
                    show(&row.value)
                ),
                theme.dim(),
            ),
        ]),
    ];
    if let Some(d) = &row.description {
        lines.push(Line::raw(d.clone()));
    }
    lines.push(Line::styled(note.to_string(), theme.accent()));
    if let Some((tone, text)) = &editor.message {
        let style = match tone {
            Tone::Success => theme.good(),
            Tone::Error => theme.bad(),
            Tone::Info => theme.accent(),
        };
        lines.push(Line::styled(text.clone(), style));
    }
    match &editor.history {
        None => lines.push(Line::styled("history: loading...", theme.dim())),
        Some(Err(e)) => lines.push(Line::styled(format!("history: {e}"), theme.bad())),
        Some(Ok(h)) => {
            let changes: Vec<_> = h
                .changes
                .iter()
                .filter(|c| c.parameter_name == row.name)
                .collect();
            lines.push(Line::styled(
                format!("History ({})", changes.len()),
                theme.bold(),
            ));
            if changes.is_empty() {
                lines.push(Line::styled("  never changed", theme.dim()));
            }
            for c in changes.iter().rev() {
                let by = serde_json::to_value(c.changed_by)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("  {} ", c.changed_at.format("%Y-%m-%d %H:%M")),
                        theme.dim(),
                    ),
                    Span::raw(format!(
                        "{} -> {}",
                        clip(show(&c.old_value), VALUE_WIDTH / 2),
                        clip(show(&c.new_value), VALUE_WIDTH / 2)
                    )),
                    Span::styled(format!("  {by}: "), theme.dim()),
                    Span::raw(c.change_reason.clone()),
                ]));
            }
        }
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
}

fn draw_edit(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    editor: &ParamEditor,
    row: &ParamRow,
    theme: Theme,
) {
    let Some(edit) = &editor.edit else {
        let close = app.keys.label_or(Action::Back, "Esc");
        let hint = if app.access == Access::Control {
            format!(
                "{} edits the selected parameter · {close} closes",
                app.keys.label(Action::Open)
            )
        } else {
            format!("read-only session: you can look, not change · {close} closes")
        };
        frame.render_widget(Line::styled(hint, theme.dim()), area);
        return;
    };
    let field = |label: &str, text: &str, focused: bool| {
        let mut spans = vec![
            Span::styled(format!("{label:<10} > "), theme.dim()),
            Span::styled(text.to_string(), theme.bold()),
        ];
        if focused {
            spans.push(Span::styled("_", theme.accent()));
        }
        Line::from(spans)
    };
    let mut value = field("New value", &edit.value, !edit.on_reason);
    if edit.value.is_empty() {
        value.spans.push(Span::styled(
            format!(
                "  {} {}, now {}",
                row.kind,
                range(row),
                clip(show(&row.value), VALUE_WIDTH)
            ),
            theme.dim(),
        ));
    }
    let last = match (&edit.error, editor.pending) {
        (_, true) => Line::styled("sending...", theme.accent()),
        (Some(e), _) => Line::styled(e.clone(), theme.bad()),
        (None, _) => Line::styled(
            if edit.on_reason {
                "Enter sends · Tab back to the value · Esc cancels"
            } else {
                "Enter, then the reason · Esc cancels"
            },
            theme.dim(),
        ),
    };
    frame.render_widget(
        Paragraph::new(vec![
            value,
            field("Reason", &edit.reason, edit.on_reason),
            last,
        ])
        .wrap(Wrap { trim: false }),
        area,
    );
}
