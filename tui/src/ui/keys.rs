//! Keys: pure predicates over key events, and the help text of each view (the keymap as
//! data, so the help overlay lists exactly what the handlers do).

use super::app::View;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

/// A key press.
pub type Key = KeyEvent;

/// A plain key (tests).
#[cfg(test)]
pub fn key(code: KeyCode) -> Key {
    KeyEvent::new(code, KeyModifiers::NONE)
}

/// A plain character key (tests).
#[cfg(test)]
pub fn ch(c: char) -> Key {
    key(KeyCode::Char(c))
}

fn plain(k: &Key) -> bool {
    !k.modifiers
        .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
}

pub fn is_char(k: &Key, c: char) -> bool {
    plain(k) && k.code == KeyCode::Char(c)
}

/// Ctrl-C: raw mode delivers it as a key.
pub fn is_interrupt(k: &Key) -> bool {
    k.modifiers.contains(KeyModifiers::CONTROL) && k.code == KeyCode::Char('c')
}

pub fn is_up(k: &Key) -> bool {
    k.code == KeyCode::Up || is_char(k, 'k')
}

pub fn is_down(k: &Key) -> bool {
    k.code == KeyCode::Down || is_char(k, 'j')
}

pub fn is_page_up(k: &Key) -> bool {
    k.code == KeyCode::PageUp
}

pub fn is_page_down(k: &Key) -> bool {
    k.code == KeyCode::PageDown
}

pub fn is_top(k: &Key) -> bool {
    k.code == KeyCode::Home || is_char(k, 'g')
}

pub fn is_bottom(k: &Key) -> bool {
    k.code == KeyCode::End || is_char(k, 'G')
}

pub fn is_enter(k: &Key) -> bool {
    k.code == KeyCode::Enter
}

pub fn is_help(k: &Key) -> bool {
    is_char(k, '?')
}

/// `q` or Esc: back out of a pane, or quit.
pub fn is_back(k: &Key) -> bool {
    k.code == KeyCode::Esc || is_char(k, 'q')
}

/// Esc (or `n`) in a dialog.
pub fn is_cancel(k: &Key) -> bool {
    k.code == KeyCode::Esc
}

pub fn is_confirm(k: &Key) -> bool {
    k.code == KeyCode::Enter
}

pub fn is_yes(k: &Key) -> bool {
    is_char(k, 'y')
}

/// Tab inside a dialog: switch the option (dry-run/live, now/drain).
pub fn is_toggle(k: &Key) -> bool {
    k.code == KeyCode::Tab
}

/// The Up or Down arrow (not `j`/`k`, which a text field takes as letters).
pub fn is_arrow_up_down(k: &Key) -> bool {
    matches!(k.code, KeyCode::Up | KeyCode::Down)
}

pub fn is_backspace(k: &Key) -> bool {
    k.code == KeyCode::Backspace
}

pub fn is_next_view(k: &Key) -> bool {
    k.code == KeyCode::Tab
}

pub fn is_prev_view(k: &Key) -> bool {
    k.code == KeyCode::BackTab
}

/// `1`..`7`: the view at that position (0-based).
pub fn view_number(k: &Key) -> Option<usize> {
    match k.code {
        KeyCode::Char(c @ '1'..='9') if plain(k) => Some(c as usize - '1' as usize),
        _ => None,
    }
}

/// A character typed into a text field.
pub fn typed_char(k: &Key) -> Option<char> {
    match k.code {
        KeyCode::Char(c) if plain(k) => Some(c),
        _ => None,
    }
}

/// One line of the help overlay.
pub struct HelpEntry {
    pub keys: &'static str,
    pub what: &'static str,
    /// Hidden in a read-only session.
    pub control: bool,
}

const fn h(keys: &'static str, what: &'static str) -> HelpEntry {
    HelpEntry {
        keys,
        what,
        control: false,
    }
}

const fn c(keys: &'static str, what: &'static str) -> HelpEntry {
    HelpEntry {
        keys,
        what,
        control: true,
    }
}

/// Keys that work in every view.
pub const GLOBAL: &[HelpEntry] = &[
    h("1-7", "switch view (Tab / Shift-Tab: next / previous)"),
    h("↑↓ j k", "move"),
    h("g G", "first / last"),
    h("PgUp PgDn", "page up / down"),
    h("?", "this help (any key closes it)"),
    h("q Esc", "back, or quit from the top (Ctrl-C quits)"),
];

const DASHBOARD: &[HelpEntry] = &[
    h("Enter", "open the selected bot in Deployed"),
    h("l", "the selected bot's log"),
];
const STRATEGIES: &[HelpEntry] = &[
    h("/", "search (Enter keeps it, Esc clears it)"),
    h("f", "filter: all, active, MEM-enabled, deployed, ..."),
    h("o", "sort: name, Sharpe, win rate, P&L, last used"),
    h("Enter", "detail: metadata, parameters, versions, metrics"),
    h("p", "parameters: bounds, history; Enter edits one"),
    c("d", "deploy (dry-run unless you choose live)"),
    c("s", "stop its bot"),
    c("r", "restart its bot"),
    h("l", "its bot's log"),
];
const DEPLOYED: &[HelpEntry] = &[
    h("f", "filter: active, dry-run, live, failed, all"),
    h("l Enter", "focus the log pane (↑↓ scroll, G follow)"),
    c("s", "stop (Tab in the dialog: drain open trades first)"),
    c("r", "restart"),
    c("d", "deploy the strategy again"),
];
const RECOMMEND: &[HelpEntry] = &[
    h("t", "trend: bullish, bearish, ranging, neutral, computed"),
    h("v", "volatility: low, medium, high, computed"),
    h("c", "use the daemon's computed market conditions"),
    c("d Enter", "deploy the selected strategy"),
];
const PANEL: &[HelpEntry] = &[h("u", "reload")];
const JOBS: &[HelpEntry] = &[h("u", "reload"), c("x", "run the selected job now")];

/// The keys of one view.
pub fn help(view: View) -> &'static [HelpEntry] {
    match view {
        View::Dashboard => DASHBOARD,
        View::Strategies => STRATEGIES,
        View::Deployed => DEPLOYED,
        View::Recommendations => RECOMMEND,
        View::Memory | View::Model => PANEL,
        View::Jobs => JOBS,
    }
}

/// The keys of the parameter editor (`p` in the Strategies view).
pub const PARAM_EDITOR: &[HelpEntry] = &[
    h("↑↓ j k", "pick a parameter"),
    c(
        "Enter",
        "edit it: type the value, Enter, the reason, Enter sends",
    ),
    c("Tab ↑↓", "while editing: switch between value and reason"),
    h("Esc", "cancel the edit, or close the editor"),
];

/// The keys of the confirmation dialogs.
pub const DIALOG: &[HelpEntry] = &[
    h("Enter", "confirm (y also confirms a stop or restart)"),
    h("Tab", "switch dry-run/live, or stop now/drain"),
    h("Esc", "cancel"),
];
