//! The Memory, Model and Jobs views each show one daemon method's answer; here is what
//! they share: reading the answer, and saying why there is none (loading, not provided
//! by this memd, or the daemon's error; the Backtests view says it the same way).

use super::{Theme, message};
use crate::ui::app::{Failure, Panel};
use mem_protocol::ErrorCode;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::widgets::Block;
use serde::de::DeserializeOwned;

/// Why a panel has nothing to show, as a message and its style: still loading, not
/// built in this memd, or the daemon's error.
pub fn missing<T>(data: Option<&Result<T, Failure>>, theme: Theme) -> Option<(String, Style)> {
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
