//! The keymap: every key binding of the terminal UI in one table, [`ACTIONS`] (each
//! action's name in `keys.toml`, its default keys, the contexts it applies in, and whether
//! it can be rebound). The handlers ask [`Keymap::action`] what a key does; the help
//! overlay and the bottom key hints are laid out by [`HELP`] and show each action's keys
//! from the same [`Keymap`], so the keys on screen are the keys that work.
//!
//! `keys.toml` in memctl's config directory (`$XDG_CONFIG_HOME/memctl/keys.toml`, else
//! `~/.config/memctl/keys.toml`) replaces the keys of the actions it names, everywhere
//! they apply:
//!
//! ```toml
//! [keys]
//! deploy = ["D"]
//! stop = ["s", "x"]
//! up = ["up", "k", "ctrl-p"]
//! quit = "ctrl-q"        # one key may go without the brackets
//! ```
//!
//! A key is one character (`d`, `G`, `?`, `/`) or a name: `enter`, `esc`, `tab`,
//! `shift-tab`, `backspace`, `delete`, `insert`, `up`, `down`, `left`, `right`, `home`,
//! `end`, `pgup`, `pgdn`, `space`, `f1`-`f12`; `ctrl-` or `alt-` before either (`ctrl-c`).
//! The keys of dialogs and text fields (Enter, Esc, Tab, `y`, Backspace) are fixed.
//!
//! Invariants, checked when the file is read (memctl refuses to start otherwise, naming
//! the entry): every name is an action that can be rebound, every key parses, every
//! action keeps at least one key, and no key does two things in one context. In a text
//! field (a search, a parameter's value, a live deployment's name) a plain character is
//! text before it is a binding.

use super::app::View;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

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

/// A character typed into a text field.
pub fn typed_char(k: &Key) -> Option<char> {
    match k.code {
        KeyCode::Char(c)
            if !k
                .modifiers
                .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
        {
            Some(c)
        }
        _ => None,
    }
}

/// Backspace in a text field.
pub fn is_backspace(k: &Key) -> bool {
    k.code == KeyCode::Backspace
}

/// What a key does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Quit,
    Help,
    /// Back out of a pane, or quit from the top.
    Back,
    ViewDashboard,
    ViewStrategies,
    ViewDeployed,
    ViewRecommend,
    ViewMemory,
    ViewModel,
    ViewJobs,
    ViewBacktests,
    NextView,
    PrevView,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    /// The selection's next step: a bot in Deployed, a strategy's detail, a log pane, a
    /// recommendation's deployment, a parameter's edit.
    Open,
    Logs,
    Search,
    Filter,
    Sort,
    Params,
    Deploy,
    Stop,
    Restart,
    Trend,
    Volatility,
    Computed,
    Reload,
    RunJob,
    /// Queue a backtest of the selected strategy with the default params (Strategies,
    /// Backtests).
    Backtest,
    /// Cancel the selected queued or running job (Backtests).
    CancelJob,
    /// A failed deployment's failure has been read (Deployed).
    Acknowledge,
    /// The recent messages, in full.
    Messages,
    /// Dialogs and text fields (fixed keys).
    Confirm,
    Cancel,
    /// Dry-run or live, now or drain (a dialog's Tab).
    Toggle,
    /// `y`: confirms a stop or a restart.
    Yes,
    /// The previous or next choice in a dialog (a native strategy's pair).
    PrevChoice,
    NextChoice,
    /// A parameter's value or its reason (the edit's Tab and arrows).
    SwitchField,
}

/// Where a key is read: a view, or what has the keys over it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    Dashboard,
    Strategies,
    Deployed,
    Recommend,
    /// The Memory and Model views.
    Panel,
    Jobs,
    Backtests,
    /// The parameter editor, moving between parameters.
    Editor,
    /// The parameter editor, typing a value or a reason.
    Edit,
    /// The Strategies view, typing a search.
    Search,
    /// A confirmation dialog.
    Dialog,
}

impl Context {
    pub const ALL: [Context; 11] = [
        Context::Dashboard,
        Context::Strategies,
        Context::Deployed,
        Context::Recommend,
        Context::Panel,
        Context::Jobs,
        Context::Backtests,
        Context::Editor,
        Context::Edit,
        Context::Search,
        Context::Dialog,
    ];

    /// A view's own context.
    pub fn of_view(view: View) -> Context {
        match view {
            View::Dashboard => Context::Dashboard,
            View::Strategies => Context::Strategies,
            View::Deployed => Context::Deployed,
            View::Recommendations => Context::Recommend,
            View::Memory | View::Model => Context::Panel,
            View::Jobs => Context::Jobs,
            View::Backtests => Context::Backtests,
        }
    }

    /// How an error message names it.
    fn describe(self) -> &'static str {
        match self {
            Context::Dashboard => "the Dashboard view",
            Context::Strategies => "the Strategies view",
            Context::Deployed => "the Deployed view",
            Context::Recommend => "the Recommend view",
            Context::Panel => "the Memory and Model views",
            Context::Jobs => "the Jobs view",
            Context::Backtests => "the Backtests view",
            Context::Editor => "the parameter editor",
            Context::Edit => "a parameter's edit",
            Context::Search => "the search",
            Context::Dialog => "a confirmation dialog",
        }
    }
}

/// One action of the table.
#[derive(Debug)]
pub struct ActionInfo {
    pub action: Action,
    /// Its name in `keys.toml`.
    pub name: &'static str,
    /// Its keys unless `keys.toml` says otherwise (as `keys.toml` writes them); the first
    /// is the one the key hints show.
    pub keys: &'static [&'static str],
    /// Where it applies.
    pub contexts: &'static [Context],
    /// A dialog's or a text field's key: not rebound by `keys.toml`.
    pub fixed: bool,
}

use Action as A;
use Context as C;

/// Every view, and the parameter editor (which lets the help and the view keys through).
const VIEWS_AND_EDITOR: &[Context] = &[
    C::Dashboard,
    C::Strategies,
    C::Deployed,
    C::Recommend,
    C::Panel,
    C::Jobs,
    C::Backtests,
    C::Editor,
];
/// Up and Down also leave a search (as arrows: a typed `j` is text).
const MOVING: &[Context] = &[
    C::Dashboard,
    C::Strategies,
    C::Deployed,
    C::Recommend,
    C::Panel,
    C::Jobs,
    C::Backtests,
    C::Editor,
    C::Search,
];
const TEXT_AND_DIALOG: &[Context] = &[C::Dialog, C::Edit, C::Search];

const fn a(
    action: Action,
    name: &'static str,
    keys: &'static [&'static str],
    contexts: &'static [Context],
) -> ActionInfo {
    ActionInfo {
        action,
        name,
        keys,
        contexts,
        fixed: false,
    }
}

const fn fixed(
    action: Action,
    name: &'static str,
    keys: &'static [&'static str],
    contexts: &'static [Context],
) -> ActionInfo {
    ActionInfo {
        action,
        name,
        keys,
        contexts,
        fixed: true,
    }
}

/// The keymap's table: every action, its defaults and where it applies.
#[rustfmt::skip]
pub const ACTIONS: &[ActionInfo] = &[
    a(A::Quit,           "quit",            &["ctrl-c"],       &Context::ALL),
    a(A::Help,           "help",            &["?"],            VIEWS_AND_EDITOR),
    a(A::Back,           "back",            &["q", "esc"],     VIEWS_AND_EDITOR),
    a(A::ViewDashboard,  "view_dashboard",  &["1"],            VIEWS_AND_EDITOR),
    a(A::ViewStrategies, "view_strategies", &["2"],            VIEWS_AND_EDITOR),
    a(A::ViewDeployed,   "view_deployed",   &["3"],            VIEWS_AND_EDITOR),
    a(A::ViewRecommend,  "view_recommend",  &["4"],            VIEWS_AND_EDITOR),
    a(A::ViewMemory,     "view_memory",     &["5"],            VIEWS_AND_EDITOR),
    a(A::ViewModel,      "view_model",      &["6"],            VIEWS_AND_EDITOR),
    a(A::ViewJobs,       "view_jobs",       &["7"],            VIEWS_AND_EDITOR),
    a(A::ViewBacktests,  "view_backtests",  &["8"],            VIEWS_AND_EDITOR),
    a(A::NextView,       "next_view",       &["tab"],          VIEWS_AND_EDITOR),
    a(A::PrevView,       "prev_view",       &["shift-tab"],    VIEWS_AND_EDITOR),
    a(A::Up,             "up",              &["up", "k"],      MOVING),
    a(A::Down,           "down",            &["down", "j"],    MOVING),
    a(A::PageUp,         "page_up",         &["pgup"],         VIEWS_AND_EDITOR),
    a(A::PageDown,       "page_down",       &["pgdn"],         VIEWS_AND_EDITOR),
    a(A::Top,            "top",             &["home", "g"],    VIEWS_AND_EDITOR),
    a(A::Bottom,         "bottom",          &["end", "G"],     VIEWS_AND_EDITOR),
    a(A::Open,           "open",            &["enter"],
        &[C::Dashboard, C::Strategies, C::Deployed, C::Recommend, C::Backtests, C::Editor]),
    a(A::Logs,           "logs",            &["l"],            &[C::Dashboard, C::Strategies,
                                                                   C::Deployed]),
    a(A::Search,         "search",          &["/"],            &[C::Strategies]),
    a(A::Filter,         "filter",          &["f"],            &[C::Strategies, C::Deployed]),
    a(A::Sort,           "sort",            &["o"],            &[C::Strategies]),
    a(A::Params,         "params",          &["p"],            &[C::Strategies]),
    a(A::Deploy,         "deploy",          &["d"],            &[C::Strategies, C::Deployed,
                                                                   C::Recommend]),
    a(A::Stop,           "stop",            &["s"],            &[C::Strategies, C::Deployed]),
    a(A::Restart,        "restart",         &["r"],            &[C::Strategies, C::Deployed]),
    a(A::Trend,          "trend",           &["t"],            &[C::Recommend]),
    a(A::Volatility,     "volatility",      &["v"],            &[C::Recommend]),
    a(A::Computed,       "computed",        &["c"],            &[C::Recommend]),
    a(A::Reload,         "reload",          &["u", "R"],       &[C::Panel, C::Jobs,
                                                                   C::Backtests]),
    a(A::RunJob,         "run_job",         &["x"],            &[C::Jobs]),
    a(A::Backtest,       "backtest",        &["b"],            &[C::Strategies, C::Backtests]),
    a(A::CancelJob,      "cancel_job",      &["c"],            &[C::Backtests]),
    a(A::Acknowledge,    "acknowledge",     &["a"],            &[C::Deployed]),
    a(A::Messages,       "messages",        &["m"],            VIEWS_AND_EDITOR),
    fixed(A::Confirm,    "confirm",         &["enter"],        TEXT_AND_DIALOG),
    fixed(A::Cancel,     "cancel",          &["esc"],          TEXT_AND_DIALOG),
    fixed(A::Toggle,     "toggle",          &["tab"],          &[C::Dialog]),
    fixed(A::Yes,        "yes",             &["y"],            &[C::Dialog]),
    fixed(A::PrevChoice, "prev_choice",     &["left"],         &[C::Dialog]),
    fixed(A::NextChoice, "next_choice",     &["right"],        &[C::Dialog]),
    fixed(A::SwitchField, "switch_field",   &["tab", "up", "down"], &[C::Edit]),
];

impl Action {
    pub fn info(self) -> &'static ActionInfo {
        ACTIONS
            .iter()
            .find(|i| i.action == self)
            .expect("every action is in the table")
    }

    /// The view a view key switches to.
    pub fn view(self) -> Option<View> {
        Some(match self {
            Action::ViewDashboard => View::Dashboard,
            Action::ViewStrategies => View::Strategies,
            Action::ViewDeployed => View::Deployed,
            Action::ViewRecommend => View::Recommendations,
            Action::ViewMemory => View::Memory,
            Action::ViewModel => View::Model,
            Action::ViewJobs => View::Jobs,
            Action::ViewBacktests => View::Backtests,
            _ => return None,
        })
    }
}

/// A key as bindings name it: its code, and Ctrl and Alt. Shift is part of the character
/// (`G`) or of the code (Shift-Tab); other keys match with any Shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    code: KeyCode,
    ctrl: bool,
    alt: bool,
}

/// Names of the keys that are not characters, as `keys.toml` writes them (lowercase; the
/// first of a code is the one error messages list).
const NAMED: &[(&str, KeyCode)] = &[
    ("enter", KeyCode::Enter),
    ("return", KeyCode::Enter),
    ("esc", KeyCode::Esc),
    ("escape", KeyCode::Esc),
    ("tab", KeyCode::Tab),
    ("shift-tab", KeyCode::BackTab),
    ("backtab", KeyCode::BackTab),
    ("backspace", KeyCode::Backspace),
    ("delete", KeyCode::Delete),
    ("del", KeyCode::Delete),
    ("insert", KeyCode::Insert),
    ("ins", KeyCode::Insert),
    ("up", KeyCode::Up),
    ("down", KeyCode::Down),
    ("left", KeyCode::Left),
    ("right", KeyCode::Right),
    ("home", KeyCode::Home),
    ("end", KeyCode::End),
    ("pgup", KeyCode::PageUp),
    ("pageup", KeyCode::PageUp),
    ("pgdn", KeyCode::PageDown),
    ("pagedown", KeyCode::PageDown),
    ("space", KeyCode::Char(' ')),
];

impl KeySpec {
    /// Reads a key as `keys.toml` writes it.
    pub fn parse(text: &str) -> Result<KeySpec, String> {
        let mut spec = KeySpec {
            code: KeyCode::Null,
            ctrl: false,
            alt: false,
        };
        let mut rest = text;
        loop {
            let lower = rest.to_ascii_lowercase();
            if rest.chars().count() > 1 && lower.starts_with("ctrl-") {
                spec.ctrl = true;
                rest = &rest[5..];
            } else if rest.chars().count() > 1 && lower.starts_with("alt-") {
                spec.alt = true;
                rest = &rest[4..];
            } else {
                break;
            }
        }
        let mut chars = rest.chars();
        spec.code = match (chars.next(), chars.next()) {
            (Some(c), None) => KeyCode::Char(c),
            _ => {
                let lower = rest.to_ascii_lowercase();
                let f = lower
                    .strip_prefix('f')
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|n| (1..=12).contains(n));
                match (NAMED.iter().find(|(name, _)| *name == lower), f) {
                    (Some((_, code)), _) => *code,
                    (None, Some(n)) => KeyCode::F(n),
                    (None, None) if lower.starts_with("shift-") => {
                        return Err(format!(
                            "`{text}` is not a key: write a capital letter for Shift (`G`); of the others only `shift-tab` is told apart"
                        ));
                    }
                    (None, None) => {
                        return Err(format!(
                            "`{text}` is not a key: one character, or one of {}, f1-f12, each maybe after ctrl- or alt-",
                            key_names()
                        ));
                    }
                }
            }
        };
        Ok(spec)
    }

    /// The key a press is, as bindings name it.
    pub fn of(key: &Key) -> KeySpec {
        KeySpec {
            code: key.code,
            ctrl: key.modifiers.contains(KeyModifiers::CONTROL),
            alt: key.modifiers.contains(KeyModifiers::ALT),
        }
    }

    /// How the help and the hints write it: `↑`, `PgUp`, `Enter`, `Shift-Tab`, `Ctrl-C`, `d`.
    pub fn name(&self) -> String {
        let base = match self.code {
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Backspace => "Backspace".into(),
            KeyCode::Delete => "Del".into(),
            KeyCode::Insert => "Ins".into(),
            KeyCode::F(n) => format!("F{n}"),
            KeyCode::Char(' ') => "Space".into(),
            // Ctrl-C, as keyboards label it; Ctrl with a capital is Ctrl-Shift.
            KeyCode::Char(c) if self.ctrl && c.is_ascii_lowercase() => {
                c.to_ascii_uppercase().to_string()
            }
            KeyCode::Char(c) if self.ctrl && c.is_ascii_uppercase() => format!("Shift-{c}"),
            KeyCode::Char(c) => c.to_string(),
            other => format!("{other:?}"),
        };
        let mut name = String::new();
        if self.ctrl {
            name.push_str("Ctrl-");
        }
        if self.alt {
            name.push_str("Alt-");
        }
        name.push_str(&base);
        name
    }
}

/// The key names error messages list.
fn key_names() -> String {
    let mut names: Vec<&str> = Vec::new();
    for (name, code) in NAMED {
        if !NAMED
            .iter()
            .take_while(|(n, _)| n != name)
            .any(|(_, c)| c == code)
        {
            names.push(name);
        }
    }
    names.join(", ")
}

/// A section of the help (and of the key hints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// "Everywhere": the keys of every view.
    Everywhere,
    /// A view's own keys.
    View(Context),
    /// The parameter editor.
    Editor,
    /// Typing a parameter's value or reason (hints only).
    Edit,
    /// Typing a search (hints only).
    Search,
    /// In a confirmation dialog.
    Dialog,
}

/// One line of the help: some actions, what they do, and maybe their key hint.
#[derive(Debug)]
pub struct HelpRow {
    pub section: Section,
    pub actions: &'static [Action],
    /// How the help writes their keys while they have their default keys (`↑↓ j k`);
    /// otherwise, and when None, every key's name. A row without actions shows only it.
    pub label: Option<&'static str>,
    /// What they do; `{name}` is replaced by the first key of the action of that name,
    /// `{name:Key}` by `Key` while it is one of the action's keys.
    pub what: &'static str,
    /// Hidden in a read-only session.
    pub control: bool,
    /// Its key hint at the bottom of the screen.
    pub hint: Option<Hint>,
}

/// A key hint: its place among the section's hints, its word, and how it writes the key
/// while the actions have their default keys (else the first key of the first action).
#[derive(Debug)]
pub struct Hint {
    pub rank: u8,
    pub word: &'static str,
    pub label: Option<&'static str>,
}

const fn row(section: Section, actions: &'static [Action], what: &'static str) -> HelpRow {
    HelpRow {
        section,
        actions,
        label: None,
        what,
        control: false,
        hint: None,
    }
}

impl HelpRow {
    const fn label(mut self, label: &'static str) -> Self {
        self.label = Some(label);
        self
    }

    const fn control(mut self) -> Self {
        self.control = true;
        self
    }

    const fn hint(mut self, rank: u8, word: &'static str) -> Self {
        self.hint = Some(Hint {
            rank,
            word,
            label: None,
        });
        self
    }

    const fn hint_as(mut self, rank: u8, word: &'static str, label: &'static str) -> Self {
        self.hint = Some(Hint {
            rank,
            word,
            label: Some(label),
        });
        self
    }
}

/// The view keys, in tab order.
const VIEW_KEYS: &[Action] = &[
    A::ViewDashboard,
    A::ViewStrategies,
    A::ViewDeployed,
    A::ViewRecommend,
    A::ViewMemory,
    A::ViewModel,
    A::ViewJobs,
    A::ViewBacktests,
];

/// The view keys and Tab, Shift-Tab: one line of the help.
const VIEW_SWITCH: &[Action] = &[
    A::ViewDashboard,
    A::ViewStrategies,
    A::ViewDeployed,
    A::ViewRecommend,
    A::ViewMemory,
    A::ViewModel,
    A::ViewJobs,
    A::ViewBacktests,
    A::NextView,
    A::PrevView,
];

use Section as S;

/// The layout of the help overlay and the key hints, section by section.
#[rustfmt::skip]
pub const HELP: &[HelpRow] = &[
    row(S::Everywhere, VIEW_SWITCH, "switch view ({next_view} / {prev_view}: next / previous)")
        .label("1-8"),
    row(S::Everywhere, &[A::Up, A::Down], "move").label("↑↓ j k"),
    row(S::Everywhere, &[A::Top, A::Bottom], "first / last").label("g G"),
    row(S::Everywhere, &[A::PageUp, A::PageDown], "page up / down"),
    row(S::Everywhere, &[A::Help], "this help (any key closes it)"),
    row(S::Everywhere, &[A::Back], "back, or quit from the top ({quit} quits)"),
    row(S::Everywhere, &[A::Messages], "recent messages and errors in full ({up}{down} scroll)"),

    row(S::View(C::Dashboard), &[A::Open], "open the selected bot in Deployed").hint(0, "bot"),
    row(S::View(C::Dashboard), &[A::Logs], "the selected bot's log").hint(1, "log"),

    row(S::View(C::Strategies), &[A::Search], "search (Enter keeps it, Esc clears it)")
        .hint(0, "search"),
    row(S::View(C::Strategies), &[A::Filter], "filter: all, active, MEM-enabled, deployed, ...")
        .hint(1, "filter"),
    row(S::View(C::Strategies), &[A::Sort], "sort: name, Sharpe, win rate, P&L, last used")
        .hint(2, "sort"),
    row(S::View(C::Strategies), &[A::Open], "detail: metadata, parameters, versions, metrics")
        .hint(3, "detail"),
    row(S::View(C::Strategies), &[A::Params], "parameters: bounds, history; {open} edits one")
        .hint(6, "params"),
    row(S::View(C::Strategies), &[A::Deploy], "deploy (dry-run unless you choose live)")
        .control().hint(4, "deploy"),
    row(S::View(C::Strategies), &[A::Stop, A::Restart], "stop / restart its bot")
        .label("s r").control().hint_as(5, "stop", "s"),
    row(S::View(C::Strategies), &[A::Logs], "its bot's log"),
    row(S::View(C::Strategies), &[A::Backtest],
        "measure it: queue a backtest ({view_backtests} shows the queue)")
        .control(),

    row(S::View(C::Deployed), &[A::Filter],
        "filter: active (and failures not acknowledged), dry-run, live, failed, all")
        .hint(0, "filter"),
    row(S::View(C::Deployed), &[A::Logs, A::Open],
        "focus the log pane ({up}{down} scroll, {bottom:G} follow)").hint(1, "log"),
    row(S::View(C::Deployed), &[A::Stop], "stop (Tab in the dialog: drain open trades first)")
        .control().hint(2, "stop"),
    row(S::View(C::Deployed), &[A::Restart], "restart").control().hint(3, "restart"),
    row(S::View(C::Deployed), &[A::Deploy], "deploy the strategy again").control(),
    row(S::View(C::Deployed), &[A::Acknowledge],
        "acknowledge the selected failure: it leaves the default list").control().hint(4, "ack"),

    row(S::View(C::Recommend), &[A::Trend], "trend: bullish, bearish, ranging, neutral, computed")
        .hint(0, "trend"),
    row(S::View(C::Recommend), &[A::Volatility], "volatility: low, medium, high, computed")
        .hint(1, "volatility"),
    row(S::View(C::Recommend), &[A::Computed], "use the daemon's computed market conditions")
        .hint(2, "computed"),
    row(S::View(C::Recommend), &[A::Deploy, A::Open], "deploy the selected strategy")
        .control().hint(3, "deploy"),

    row(S::View(C::Panel), &[A::Reload], "reload").label("u").hint(0, "reload"),
    row(S::View(C::Jobs), &[A::Reload], "reload").label("u").hint(0, "reload"),
    row(S::View(C::Jobs), &[A::RunJob], "run the selected job now").control().hint(1, "run now"),

    row(S::View(C::Backtests), &[A::Open],
        "the selected job's result, whole screen ({up}{down} scroll)")
        .hint(0, "result"),
    row(S::View(C::Backtests), &[A::CancelJob], "cancel the selected queued or running job")
        .control().hint(1, "cancel"),
    row(S::View(C::Backtests), &[A::Backtest],
        "queue another backtest of the selected job's strategy").control().hint(2, "backtest"),
    row(S::View(C::Backtests), &[A::Reload], "reload").label("u").hint(3, "reload"),

    row(S::Editor, &[A::Up, A::Down], "pick a parameter")
        .label("↑↓ j k").hint_as(0, "pick", "↑↓"),
    row(S::Editor, &[A::Open], "edit it: type the value, Enter, the reason, Enter sends")
        .control().hint(1, "edit"),
    row(S::Editor, &[A::SwitchField], "while editing: switch between value and reason")
        .label("Tab ↑↓").control(),
    row(S::Editor, &[A::Back, A::Cancel], "cancel the edit, or close the editor")
        .label("Esc").hint_as(2, "close", "Esc"),

    row(S::Edit, &[], "").label("type").hint(0, "value, reason"),
    row(S::Edit, &[A::SwitchField], "").hint_as(1, "switch", "Tab"),
    row(S::Edit, &[A::Confirm], "").hint(2, "next / send"),
    row(S::Edit, &[A::Cancel], "").hint(3, "cancel"),

    row(S::Search, &[], "").label("type").hint(0, "to search"),
    row(S::Search, &[A::Confirm], "").hint(1, "keep"),
    row(S::Search, &[A::Cancel], "").hint(2, "clear"),

    row(S::Dialog, &[A::Confirm, A::Yes], "confirm ({yes} also confirms a stop or restart)")
        .label("Enter"),
    row(S::Dialog, &[A::Toggle], "switch dry-run/live, follow/replay, or stop now/drain"),
    row(S::Dialog, &[A::PrevChoice, A::NextChoice], "a native strategy's pair: previous / next")
        .label("← →"),
    row(S::Dialog, &[A::Cancel], "cancel"),
];

/// The keys in force: the table's defaults with `keys.toml`'s replacements.
#[derive(Debug, Clone)]
pub struct Keymap {
    /// Each action's keys, the first the one hints show.
    keys: HashMap<Action, Vec<KeySpec>>,
    /// The actions `keys.toml` gave other keys (their curated labels no longer hold).
    replaced: HashSet<Action>,
    /// What each key does in each context.
    lookup: HashMap<(Context, KeySpec), Action>,
}

impl Default for Keymap {
    fn default() -> Keymap {
        Keymap::with(&BTreeMap::new()).expect("the default keys are a valid keymap")
    }
}

/// `keys.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    #[serde(default)]
    keys: BTreeMap<String, OneOrMore>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMore {
    One(String),
    More(Vec<String>),
}

impl Keymap {
    /// The defaults with `replace` (action name -> its keys, as `keys.toml` writes them).
    /// An error names the entry at fault.
    pub fn with(replace: &BTreeMap<String, Vec<String>>) -> Result<Keymap, String> {
        let mut keys = HashMap::new();
        for info in ACTIONS {
            let parsed = info
                .keys
                .iter()
                .map(|k| KeySpec::parse(k).map_err(|e| format!("default of `{}`: {e}", info.name)))
                .collect::<Result<Vec<_>, _>>()?;
            keys.insert(info.action, parsed);
        }
        let mut replaced = HashSet::new();
        for (name, given) in replace {
            let Some(info) = ACTIONS.iter().find(|i| i.name == name) else {
                return Err(format!(
                    "[keys] `{name}` is not an action; the actions are {}",
                    ACTIONS
                        .iter()
                        .filter(|i| !i.fixed)
                        .map(|i| i.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            };
            if info.fixed {
                return Err(format!(
                    "[keys] `{name}`: the keys of dialogs and text fields (Enter, Esc, Tab, y) are fixed"
                ));
            }
            if given.is_empty() {
                return Err(format!("[keys] `{name}`: give at least one key"));
            }
            let mut specs: Vec<KeySpec> = Vec::new();
            for text in given {
                let spec = KeySpec::parse(text).map_err(|e| format!("[keys] `{name}`: {e}"))?;
                if !specs.contains(&spec) {
                    specs.push(spec);
                }
            }
            keys.insert(info.action, specs);
            replaced.insert(info.action);
        }
        let mut lookup: HashMap<(Context, KeySpec), Action> = HashMap::new();
        for info in ACTIONS {
            for &context in info.contexts {
                for &spec in &keys[&info.action] {
                    if let Some(other) = lookup.insert((context, spec), info.action) {
                        // Name the entry of the file that made the clash.
                        let (entry, clash) = if replaced.contains(&info.action) {
                            (info.name, other.info().name)
                        } else {
                            (other.info().name, info.name)
                        };
                        return Err(format!(
                            "[keys] `{entry}`: `{}` is also `{clash}` in {}",
                            spec.name(),
                            context.describe()
                        ));
                    }
                }
            }
        }
        Ok(Keymap {
            keys,
            replaced,
            lookup,
        })
    }

    /// Reads `keys.toml`'s text.
    pub fn from_toml(text: &str) -> Result<Keymap, String> {
        let file: KeysFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let replace = file
            .keys
            .into_iter()
            .map(|(name, keys)| {
                let keys = match keys {
                    OneOrMore::One(k) => vec![k],
                    OneOrMore::More(ks) => ks,
                };
                (name, keys)
            })
            .collect();
        Keymap::with(&replace)
    }

    /// The keymap of memctl's `keys.toml` ([`config_path`]), or the defaults without one.
    /// The error says which file and which entry.
    pub fn load() -> Result<Keymap, String> {
        match config_path() {
            Some(path) => Keymap::load_from(&path),
            None => Ok(Keymap::default()),
        }
    }

    /// The keymap of the file at `path`, or the defaults if there is none.
    pub fn load_from(path: &Path) -> Result<Keymap, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Keymap::from_toml(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Keymap::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// What `key` does in `context`. A key with Ctrl or Alt that is not bound as such
    /// does what the plain key does, unless it is a character (Ctrl-J is not `j`).
    pub fn action(&self, context: Context, key: &Key) -> Option<Action> {
        let spec = KeySpec::of(key);
        self.lookup.get(&(context, spec)).copied().or_else(|| {
            let plain = KeySpec {
                ctrl: false,
                alt: false,
                ..spec
            };
            let modified = spec != plain && !matches!(spec.code, KeyCode::Char(_));
            modified
                .then(|| self.lookup.get(&(context, plain)).copied())
                .flatten()
        })
    }

    /// The keys of `action`, first the one hints show.
    pub fn keys(&self, action: Action) -> &[KeySpec] {
        &self.keys[&action]
    }

    /// Whether `action` has its default keys.
    pub fn is_default(&self, action: Action) -> bool {
        !self.replaced.contains(&action)
    }

    /// The name of `action`'s first key (`f`, `Enter`).
    pub fn label(&self, action: Action) -> String {
        self.keys(action)
            .first()
            .map(KeySpec::name)
            .unwrap_or_default()
    }

    /// `preferred` (a key's name, `Esc`) if it is one of `action`'s keys, else its first
    /// key's name: the text that says "Esc closes" keeps saying so while Esc closes.
    pub fn label_or(&self, action: Action, preferred: &str) -> String {
        if self.keys(action).iter().any(|k| k.name() == preferred) {
            preferred.to_string()
        } else {
            self.label(action)
        }
    }

    /// The view keys as the hints write them: `1-8`, or each view's first key.
    pub fn views_label(&self) -> String {
        if VIEW_KEYS.iter().all(|a| self.is_default(*a)) {
            "1-8".into()
        } else {
            VIEW_KEYS
                .iter()
                .map(|a| self.label(*a))
                .collect::<Vec<_>>()
                .join(" ")
        }
    }

    fn row_is_default(&self, row: &HelpRow) -> bool {
        row.actions.iter().all(|a| self.is_default(*a))
    }

    /// A help row's keys: its label while its actions have their defaults, else every key.
    pub fn help_label(&self, row: &HelpRow) -> String {
        match row.label {
            Some(label) if self.row_is_default(row) => label.to_string(),
            _ => row
                .actions
                .iter()
                .flat_map(|a| self.keys(*a))
                .map(KeySpec::name)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// A row's key hint label: the hint's (or the row's) label while the actions have their
    /// defaults, else the first key of the first action.
    pub fn hint_label(&self, row: &HelpRow) -> String {
        let curated = row.hint.as_ref().and_then(|h| h.label);
        match (curated, row.actions.first()) {
            (Some(label), _) if self.row_is_default(row) => label.to_string(),
            (_, Some(first)) => self.label(*first),
            (None, None) => row.label.unwrap_or_default().to_string(),
            (Some(label), None) => label.to_string(),
        }
    }

    /// A row's `what` with its `{name}` and `{name:Key}` replaced (see [`HelpRow::what`]).
    pub fn text(&self, template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let inner = &rest[open + 1..open + close];
            let (name, preferred) = inner.split_once(':').unwrap_or((inner, ""));
            match ACTIONS.iter().find(|i| i.name == name) {
                Some(info) if preferred.is_empty() => out.push_str(&self.label(info.action)),
                Some(info) => out.push_str(&self.label_or(info.action, preferred)),
                None => out.push_str(&rest[open..=open + close]),
            }
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// Where memctl reads `keys.toml`: in its config directory ([`crate::config_dir`]).
pub fn config_path() -> Option<PathBuf> {
    crate::config_dir().map(|d| d.join("keys.toml"))
}

/// The rows of one section, in order.
pub fn rows(section: Section) -> impl Iterator<Item = &'static HelpRow> {
    HELP.iter().filter(move |r| r.section == section)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(text: &str) -> Result<Keymap, String> {
        Keymap::from_toml(text)
    }

    #[test]
    fn the_table_lists_every_action_once_with_keys_that_parse() {
        let mut seen = HashSet::new();
        for info in ACTIONS {
            assert!(seen.insert(info.action), "{:?} twice", info.action);
            assert!(
                !info.keys.is_empty() && !info.contexts.is_empty(),
                "{}",
                info.name
            );
            for k in info.keys {
                KeySpec::parse(k).unwrap();
            }
        }
        let names: HashSet<&str> = ACTIONS.iter().map(|i| i.name).collect();
        assert_eq!(names.len(), ACTIONS.len(), "names are unique");
        // The defaults build (no key does two things anywhere).
        let _ = Keymap::default();
    }

    /// The help and the handlers cannot disagree: every action that works somewhere is
    /// in the help (or the key hints) of that place (its view's section, the editor's, the
    /// dialog's, or "Everywhere"), and every row lists only actions of its place.
    #[test]
    fn the_help_lists_each_action_where_it_works() {
        let sections_of = |c: Context| -> Vec<Section> {
            match c {
                Context::Editor => vec![Section::Editor, Section::Everywhere],
                // Typing: the editor's help, and the hints under the edit.
                Context::Edit => vec![Section::Edit, Section::Editor],
                Context::Search => vec![Section::Search, Section::Everywhere],
                Context::Dialog => vec![Section::Dialog],
                view => vec![Section::View(view), Section::Everywhere],
            }
        };
        for info in ACTIONS {
            if info.action == Action::Quit {
                continue; // "back, or quit from the top (Ctrl-C quits)"
            }
            for &context in info.contexts {
                let listed = sections_of(context)
                    .into_iter()
                    .flat_map(rows)
                    .any(|r| r.actions.contains(&info.action));
                assert!(listed, "{} is not in the help of {context:?}", info.name);
            }
        }
        let keys = Keymap::default();
        for r in HELP {
            let rendered = keys.text(r.what);
            assert!(!rendered.contains('{'), "{rendered}");
            if r.section == Section::Everywhere {
                continue;
            }
            for a in r.actions {
                let contexts = a.info().contexts;
                let fits = match r.section {
                    Section::View(c) => contexts.contains(&c),
                    Section::Editor => {
                        contexts.contains(&Context::Editor) || contexts.contains(&Context::Edit)
                    }
                    Section::Edit => contexts.contains(&Context::Edit),
                    Section::Search => contexts.contains(&Context::Search),
                    Section::Dialog => contexts.contains(&Context::Dialog),
                    Section::Everywhere => true,
                };
                assert!(
                    fits,
                    "{a:?} is listed in {:?} where it does nothing",
                    r.section
                );
            }
        }
    }

    #[test]
    fn the_default_keys_are_the_keys_of_before() {
        let keys = Keymap::default();
        let press =
            |context, code, modifiers| keys.action(context, &KeyEvent::new(code, modifiers));
        let none = KeyModifiers::NONE;
        use KeyCode::*;
        assert_eq!(
            press(C::Dialog, Char('c'), KeyModifiers::CONTROL),
            Some(A::Quit)
        );
        assert_eq!(
            press(C::Strategies, Char('c'), KeyModifiers::CONTROL),
            Some(A::Quit)
        );
        assert_eq!(
            press(C::Strategies, Char('G'), KeyModifiers::SHIFT),
            Some(A::Bottom)
        );
        assert_eq!(
            press(C::Strategies, Down, KeyModifiers::CONTROL),
            Some(A::Down)
        );
        assert_eq!(press(C::Strategies, Char('j'), KeyModifiers::CONTROL), None);
        assert_eq!(
            press(C::Strategies, BackTab, KeyModifiers::SHIFT),
            Some(A::PrevView)
        );
        assert_eq!(
            press(C::Jobs, Char('R'), KeyModifiers::SHIFT),
            Some(A::Reload)
        );
        assert_eq!(press(C::Jobs, Char('x'), none), Some(A::RunJob));
        assert_eq!(press(C::Deployed, Char('x'), none), None);
        assert_eq!(press(C::Recommend, Enter, none), Some(A::Open));
        assert_eq!(press(C::Dialog, Char('y'), none), Some(A::Yes));
        assert_eq!(
            press(C::Dialog, Char('q'), none),
            None,
            "q is not back in a dialog"
        );
        assert_eq!(press(C::Edit, Up, none), Some(A::SwitchField));
        assert_eq!(press(C::Search, Down, none), Some(A::Down));
        // The labels of the help as they were written by hand.
        let label = |section, i: usize| keys.help_label(rows(section).nth(i).unwrap());
        assert_eq!(label(S::Everywhere, 0), "1-8");
        assert_eq!(label(S::Everywhere, 3), "PgUp PgDn");
        assert_eq!(label(S::Everywhere, 5), "q Esc");
        assert_eq!(label(S::View(C::Deployed), 1), "l Enter");
        assert_eq!(label(S::View(C::Recommend), 3), "d Enter");
        assert_eq!(
            keys.text(rows(S::Everywhere).nth(5).unwrap().what),
            "back, or quit from the top (Ctrl-C quits)"
        );
        assert_eq!(
            keys.text(rows(S::View(C::Deployed)).nth(1).unwrap().what),
            "focus the log pane (↑↓ scroll, G follow)"
        );
    }

    #[test]
    fn acknowledge_messages_and_a_dialogs_choices_have_their_keys() {
        let keys = Keymap::default();
        let none = KeyModifiers::NONE;
        let press = |context, code| keys.action(context, &KeyEvent::new(code, none));
        assert_eq!(press(C::Deployed, KeyCode::Char('a')), Some(A::Acknowledge));
        assert_eq!(press(C::Strategies, KeyCode::Char('a')), None);
        for context in [C::Dashboard, C::Deployed, C::Recommend, C::Jobs, C::Editor] {
            assert_eq!(press(context, KeyCode::Char('m')), Some(A::Messages));
        }
        assert_eq!(
            press(C::Search, KeyCode::Char('m')),
            None,
            "text in a search"
        );
        assert_eq!(press(C::Dialog, KeyCode::Left), Some(A::PrevChoice));
        assert_eq!(press(C::Dialog, KeyCode::Right), Some(A::NextChoice));
        let keys = with("[keys]\nacknowledge = \"A\"\nmessages = \"M\"\n").unwrap();
        assert_eq!(
            keys.action(C::Deployed, &ch('A')),
            Some(A::Acknowledge),
            "rebound like any view key"
        );
        assert!(
            with("[keys]\nnext_choice = \"n\"\n").is_err(),
            "a dialog's keys are fixed"
        );
    }

    #[test]
    fn keys_are_read_as_the_file_writes_them() {
        let parse = |t: &str| KeySpec::parse(t).map(|k| k.name());
        assert_eq!(parse("ctrl-c").unwrap(), "Ctrl-C");
        assert_eq!(parse("Ctrl-Alt-x").unwrap(), "Ctrl-Alt-X");
        assert_eq!(parse("shift-tab").unwrap(), "Shift-Tab");
        assert_eq!(parse("PgDn").unwrap(), "PgDn");
        assert_eq!(parse("f5").unwrap(), "F5");
        assert_eq!(parse("-").unwrap(), "-");
        assert_eq!(parse("space").unwrap(), "Space");
        assert!(parse("shift-x").unwrap_err().contains("capital"));
        let err = parse("ctl-d").unwrap_err();
        assert!(
            err.contains("`ctl-d` is not a key") && err.contains("pgup"),
            "{err}"
        );
        assert!(parse("f13").is_err());
    }

    #[test]
    fn an_override_replaces_the_keys_everywhere_and_the_help_follows() {
        let keys =
            with("[keys]\ndeploy = [\"D\"]\nstop = [\"s\", \"x\"]\nquit = \"ctrl-q\"\n").unwrap();
        let d = |c| keys.action(c, &ch('d'));
        assert_eq!(d(C::Strategies), None);
        assert_eq!(keys.action(C::Recommend, &ch('D')), Some(A::Deploy));
        assert_eq!(keys.action(C::Deployed, &ch('x')), Some(A::Stop));
        assert_eq!(keys.action(C::Jobs, &ch('x')), Some(A::RunJob));
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(keys.action(C::Dialog, &ctrl('q')), Some(A::Quit));
        assert_eq!(keys.action(C::Dialog, &ctrl('c')), None);
        let row = rows(S::View(C::Recommend)).nth(3).unwrap();
        assert_eq!(keys.help_label(row), "D Enter");
        assert_eq!(keys.hint_label(row), "D");
        assert_eq!(
            keys.text(rows(S::Everywhere).nth(5).unwrap().what),
            "back, or quit from the top (Ctrl-Q quits)"
        );
    }

    #[test]
    fn a_bad_file_is_refused_naming_the_entry() {
        let err = |text: &str| with(text).unwrap_err();
        let e = err("[keys]\ndepoly = [\"d\"]\n");
        assert!(
            e.contains("`depoly` is not an action") && e.contains("deploy"),
            "{e}"
        );
        let e = err("[keys]\ndeploy = [\"ctl-d\"]\n");
        assert!(
            e.starts_with("[keys] `deploy`: `ctl-d` is not a key"),
            "{e}"
        );
        let e = err("[keys]\nstop = [\"f\"]\n");
        assert_eq!(
            e,
            "[keys] `stop`: `f` is also `filter` in the Strategies view"
        );
        let e = err("[keys]\nsearch = [\"enter\"]\n");
        assert_eq!(
            e,
            "[keys] `search`: `Enter` is also `open` in the Strategies view"
        );
        let e = err("[keys]\nconfirm = [\"c\"]\n");
        assert!(e.contains("`confirm`: the keys of dialogs"), "{e}");
        let e = err("[keys]\ndeploy = []\n");
        assert!(e.contains("`deploy`: give at least one key"), "{e}");
        let e = err("[key]\ndeploy = [\"d\"]\n");
        assert!(e.contains("unknown field `key`"), "{e}");
        let e = err("[keys]\ndeploy = 4\n");
        assert!(e.contains("deploy"), "{e}");
    }

    #[test]
    fn a_keys_file_is_read_from_its_path_and_errors_name_it() {
        let dir = std::env::temp_dir().join(format!("memctl-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("keys.toml");
        assert!(Keymap::load_from(&path).is_ok(), "no file: the defaults");
        std::fs::write(&path, "[keys]\nsort = [\"O\"]\n").unwrap();
        let keys = Keymap::load_from(&path).unwrap();
        assert_eq!(keys.action(C::Strategies, &ch('O')), Some(A::Sort));
        std::fs::write(&path, "[keys]\nsort = [\"f\"]\n").unwrap();
        let e = Keymap::load_from(&path).unwrap_err();
        assert!(
            e.starts_with(&format!("{}: [keys] `sort`", path.display())),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
