//! The Memory, Model and Jobs views: each shows one daemon method's answer, a list and
//! the selected item in full. Until the daemon provides the method, the view says so
//! with the daemon's own message.

use super::{Theme, message};
use crate::ui::app::{App, Failure, Panel, View, panel_items};
use mem_protocol::ErrorCode;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, List, ListItem, Paragraph, Wrap};
use serde::de::DeserializeOwned;
use serde_json::Value;

fn what(view: View) -> &'static str {
    match view {
        View::Memory => "decisions, parameters, learned strategies",
        View::Model => "trend-reversal model, retrains",
        View::Jobs => "scheduled jobs: last result, next run",
        _ => "",
    }
}

/// One line for an item: its name-like members first, then the rest, compactly.
pub fn item_line(item: &Value) -> String {
    match item {
        Value::Object(map) => map
            .get_key_value("name")
            .into_iter()
            .chain(map.iter().filter(|(k, _)| *k != "name"))
            .filter(|(_, v)| !v.is_object() && !v.is_array())
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join(" · "),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Why a panel has nothing to show, as a message and its style: still loading, not
/// built in this memd, or the daemon's error.
pub fn missing(data: Option<&Result<Value, Failure>>, theme: Theme) -> Option<(String, Style)> {
    match data {
        None => Some(("loading...".into(), theme.dim())),
        Some(Err(f)) if f.code == Some(ErrorCode::NotImplemented) => Some((
            format!(
                "Not available yet: this memd does not provide it.\nmemd said: {}",
                f.message
            ),
            theme.dim(),
        )),
        Some(Err(f)) => Some((format!("memd said: {}", f.message), theme.bad())),
        Some(Ok(_)) => None,
    }
}

/// A panel's answer read as `T`; otherwise draws why there is none inside `block` (in
/// `area`) and returns None.
pub fn typed<'a, T: DeserializeOwned>(
    frame: &mut Frame,
    area: Rect,
    block: Block,
    panel: Option<&'a Panel>,
    theme: Theme,
) -> Option<(T, &'a Panel)> {
    let inner = block.inner(area);
    let data = panel.and_then(|p| p.data.as_ref());
    let problem = match missing(data, theme) {
        Some(problem) => problem,
        None => match serde_json::from_value(data?.as_ref().ok()?.clone()) {
            Ok(value) => return Some((value, panel?)),
            Err(e) => (format!("unexpected answer: {e}"), theme.bad()),
        },
    };
    frame.render_widget(block, area);
    message(frame, inner, &problem.0, problem.1);
    None
}

/// Draws a panel's data in `area` (also used by the Dashboard for a short list).
pub fn draw_panel(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    view: View,
    panel: Option<&Panel>,
    theme: Theme,
) {
    let block = Block::bordered().title(format!(" {} · {} ", view.title(), what(view)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let data = panel.and_then(|p| p.data.as_ref());
    if let Some((text, style)) = missing(data, theme) {
        message(frame, inner, &text, style);
        return;
    }
    let Some(panel) = panel else { return };
    match &panel.data {
        None | Some(Err(_)) => {}
        Some(Ok(value)) => {
            let items = panel_items(value);
            if items.is_empty() {
                message(frame, inner, "nothing yet", theme.dim());
                return;
            }
            let [list, detail] =
                Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)])
                    .areas(inner);
            let height = list.height as usize;
            if app.view == view {
                app.page.set(height);
            }
            let offset = panel.cursor.window(items.len(), height);
            let lines: Vec<ListItem> = items
                .iter()
                .enumerate()
                .skip(offset)
                .take(height)
                .map(|(i, item)| {
                    let line = ListItem::new(item_line(item));
                    if i == panel.cursor.selected && app.view == view {
                        line.style(theme.selected())
                    } else {
                        line
                    }
                })
                .collect();
            frame.render_widget(List::new(lines), list);
            if let Some(item) = items.get(panel.cursor.selected) {
                let text = serde_json::to_string_pretty(item).unwrap_or_default();
                frame.render_widget(
                    Paragraph::new(
                        text.lines()
                            .map(|l| Line::raw(l.to_string()))
                            .collect::<Vec<_>>(),
                    )
                    .wrap(Wrap { trim: false })
                    .block(Block::new().title(Line::styled("selected", theme.bold()))),
                    detail,
                );
            }
        }
    }
}
