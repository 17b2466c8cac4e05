//! Drawing: a pure function of the [`App`] state onto a ratatui frame. The frame is the
//! header (daemon, connection, clock), the view tabs, the view's body, the status line
//! (the last action's outcome) and the view's key hints; overlays (help, confirmation)
//! are drawn over the body. The hints and the help are laid out by `keys::HELP` and show
//! the keys of the app's keymap: what they say is what the keys do.

pub mod backtests;
mod dashboard;
pub mod deployed;
pub mod fleet;
pub mod jobs;
mod memory;
mod model;
mod native_deploy;
mod panel;
mod params;
mod recommend;
mod strategies;

use super::app::{App, Confirm, Connection, Overlay, Tone, View};
use super::keys::{self, Action, Context, HelpRow, Section};
use super::native_deploy::DeployRunner;
use chrono::{DateTime, Utc};
use mem_protocol::Access;
use mem_protocol::deploy_spec::DeploymentSpec;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

/// The smallest screen the full layout is drawn for; below it, one line says so.
pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;

/// Styles, with or without colour (`NO_COLOR`).
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    /// Colour unless `NO_COLOR` is set to something (https://no-color.org).
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }

    fn fg(self, color: Color) -> Style {
        if self.color {
            Style::new().fg(color)
        } else {
            Style::new()
        }
    }

    pub fn bold(self) -> Style {
        Style::new().add_modifier(Modifier::BOLD)
    }

    pub fn dim(self) -> Style {
        if self.color {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new().add_modifier(Modifier::DIM)
        }
    }

    pub fn selected(self) -> Style {
        Style::new().add_modifier(Modifier::REVERSED)
    }

    pub fn good(self) -> Style {
        self.fg(Color::Green)
    }

    pub fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }

    pub fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }

    pub fn accent(self) -> Style {
        self.fg(Color::Cyan)
    }

    /// Green for a gain, red for a loss.
    pub fn pnl(self, value: f64) -> Style {
        if value > 0.0 {
            self.good()
        } else if value < 0.0 {
            self.fg(Color::Red)
        } else {
            Style::new()
        }
    }

    fn tone(self, tone: Tone) -> Style {
        match tone {
            Tone::Info => self.accent(),
            Tone::Success => self.good(),
            Tone::Error => self.bad(),
        }
    }
}

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App, theme: Theme) {
    draw_in(frame, frame.area(), app, theme);
}

/// [`draw`] in `area` (the fleet's screen keeps a line above it for the servers).
pub fn draw_in(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        frame.render_widget(
            Paragraph::new(format!(
                "memctl needs at least {MIN_WIDTH}x{MIN_HEIGHT} (this is {}x{}); {} quits",
                area.width,
                area.height,
                app.keys.label(Action::Back)
            ))
            .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let [header, tabs, body, status, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, app, theme);
    draw_tabs(frame, tabs, app, theme);
    match app.view {
        View::Dashboard => dashboard::draw(frame, body, app, theme),
        View::Strategies => strategies::draw(frame, body, app, theme),
        View::Deployed => deployed::draw(frame, body, app, theme),
        View::Recommendations => recommend::draw(frame, body, app, theme),
        View::Model => model::draw(frame, body, app, theme),
        View::Memory => memory::draw(frame, body, app, theme),
        View::Jobs => jobs::draw(frame, body, app, theme),
        View::Backtests => backtests::draw(frame, body, app, theme),
    }
    if !app.is_connected() {
        // The last data stay on screen, greyed: they may be stale.
        frame.buffer_mut().set_style(body, theme.dim());
    }
    draw_status(frame, status, app, theme);
    draw_footer(frame, footer, app, theme);
    draw_overlay(frame, body, app, theme);
}

/// The app's dialog, help or messages over `body`, if one is open.
pub fn draw_overlay(frame: &mut Frame, body: Rect, app: &App, theme: Theme) {
    match &app.overlay {
        Some(Overlay::Help) => draw_help(frame, body, app, theme),
        Some(Overlay::Messages { scroll }) => draw_messages(frame, body, app, *scroll, theme),
        Some(Overlay::Confirm(confirm)) => draw_confirm(frame, body, app, confirm, theme),
        None => {}
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let mut spans = vec![Span::styled(" memctl ", theme.bold())];
    // The risk guard tripped comes first: the header is cut on the right at 80 columns.
    let risk = app.status.as_ref().map(|s| &s.risk);
    if risk.is_some_and(|r| r.tripped) {
        spans.push(Span::styled("RISK TRIPPED ", theme.bad()));
    }
    match &app.status {
        Some(s) => spans.push(Span::raw(format!(
            "memd {} · pid {} · {} · up {} ",
            s.version,
            s.pid,
            s.mode,
            duration((app.now - s.started_at).num_seconds().max(0) as u64)
        ))),
        None => spans.push(Span::raw("memd ")),
    }
    match &app.connection {
        Connection::Connecting => spans.push(Span::styled("· connecting...", theme.warn())),
        Connection::Connected => spans.push(Span::styled("· connected", theme.good())),
        Connection::Disconnected { reason, retry_at } => {
            let secs = (*retry_at - app.now).num_seconds().max(0);
            spans.push(Span::styled(
                format!("· DISCONNECTED, retry in {secs} s: {reason}"),
                theme.bad(),
            ));
        }
    }
    if app.access == Access::View {
        spans.push(Span::styled(" · read-only", theme.warn()));
    }
    // The risk guard, when it is on and not tripped.
    if risk.is_some_and(|r| !r.tripped && r.enabled()) {
        spans.push(Span::styled(" · risk ok", theme.dim()));
    }
    let clock = format!("  {} UTC ", app.now.format("%H:%M:%S"));
    let [left, right] =
        Layout::horizontal([Constraint::Min(1), Constraint::Length(clock.len() as u16)])
            .areas(area);
    frame.render_widget(Line::from(spans), left);
    frame.render_widget(Line::from(clock).style(theme.dim()), right);
}

fn draw_tabs(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    // Eight full titles take 92 columns: at 80, the shorter ones.
    let full: usize = View::ALL.iter().map(|v| v.title().len() + 4).sum();
    let short = full > area.width as usize;
    let mut spans = Vec::new();
    for (i, view) in View::ALL.iter().enumerate() {
        let title = if short {
            view.short_title()
        } else {
            view.title()
        };
        let label = format!(" {} {title} ", i + 1);
        spans.push(if *view == app.view {
            Span::styled(label, theme.selected().add_modifier(Modifier::BOLD))
        } else {
            Span::raw(label)
        });
    }
    frame.render_widget(Line::from(spans), area);
}

fn draw_status(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let line = match (app.visible_status(), &app.status_line) {
        (Some(s), _) => Line::from(vec![
            Span::styled(format!(" {} ", s.at.format("%H:%M:%S")), theme.dim()),
            Span::styled(s.text.clone(), theme.tone(s.tone)),
        ]),
        // An error that has had its time: the messages overlay keeps it.
        (None, Some(old)) => Line::from(Span::styled(
            format!(
                " ready · {} shows the messages (an error at {})",
                app.keys.label(Action::Messages),
                old.at.format("%H:%M:%S")
            ),
            theme.dim(),
        )),
        (None, None) => Line::from(Span::styled(
            format!(
                " ready · {} lists the keys of this view",
                app.keys.label(Action::Help)
            ),
            theme.dim(),
        )),
    };
    frame.render_widget(line, area);
}

/// The recent messages in full (the status line shows one, cut at the screen's width),
/// newest first, wrapped.
fn draw_messages(frame: &mut Frame, body: Rect, app: &App, scroll: usize, theme: Theme) {
    let k = &app.keys;
    let title = format!(
        " messages, newest first ({}{} scroll, any other key closes) ",
        k.label(Action::Up),
        k.label(Action::Down)
    );
    let mut lines: Vec<Line> = app
        .messages
        .iter()
        .rev()
        .skip(scroll)
        .map(|m| {
            Line::from(vec![
                Span::styled(format!("{} ", m.at.format("%H:%M:%S")), theme.dim()),
                Span::styled(m.text.clone(), theme.tone(m.tone)),
            ])
        })
        .collect();
    if app.messages.is_empty() {
        lines.push(Line::styled("no message yet", theme.dim()));
    }
    let area = body;
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title)),
        area,
    );
}

/// The section of the help whose hints the footer shows now.
fn hint_section(app: &App) -> Section {
    match app.key_context() {
        // A dialog is drawn over its view, whose hints stay.
        Context::Dialog => Section::View(Context::of_view(app.view)),
        Context::Editor => Section::Editor,
        Context::Edit => Section::Edit,
        Context::Search => Section::Search,
        view => Section::View(view),
    }
}

/// The view's main keys, always visible: a newcomer needs no manual.
fn draw_footer(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let control = app.access == Access::Control;
    let section = hint_section(app);
    let mut hinted: Vec<(&HelpRow, u8)> = keys::rows(section)
        .filter_map(|row| row.hint.as_ref().map(|h| (row, h.rank)))
        .filter(|(row, _)| control || !row.control)
        .collect();
    hinted.sort_by_key(|(_, rank)| *rank);
    let bold = theme.accent().add_modifier(Modifier::BOLD);
    // While a parameter is edited, `?`, `q` and digits are text: only the edit's keys.
    let typing = section == Section::Edit;
    let mut spans = if typing {
        vec![Span::raw("")]
    } else {
        vec![
            Span::styled(format!(" {}", app.keys.label(Action::Help)), bold),
            Span::raw(" help "),
            Span::styled(format!(" {}", app.keys.label(Action::Back)), bold),
            Span::raw(" quit "),
        ]
    };
    for (row, _) in hinted {
        let word = row.hint.as_ref().map_or("", |h| h.word);
        spans.push(Span::styled(format!(" {}", app.keys.hint_label(row)), bold));
        spans.push(Span::raw(format!(" {word} ")));
    }
    if !typing {
        spans.push(Span::styled(format!(" {}", app.keys.views_label()), bold));
        spans.push(Span::raw(" views"));
    }
    frame.render_widget(Line::from(spans), area);
}

/// A rectangle of `width` x `height` centred in `area` (clipped to it).
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

/// A section's lines of the help: each row's keys, then what they do.
fn help_lines(section: Section, app: &App, theme: Theme, out: &mut Vec<Line<'static>>) {
    for row in keys::rows(section) {
        if row.control && app.access != Access::Control {
            continue;
        }
        out.push(Line::from(vec![
            Span::styled(
                format!("  {:<11}", app.keys.help_label(row)),
                theme.accent().add_modifier(Modifier::BOLD),
            ),
            Span::raw(app.keys.text(row.what)),
        ]));
    }
}

fn draw_help(frame: &mut Frame, body: Rect, app: &App, theme: Theme) {
    let mut lines = Vec::new();
    let editor = app.view == View::Strategies && app.strategies.editor.is_some();
    if editor {
        lines.push(Line::styled("Parameter editor", theme.bold()));
        help_lines(Section::Editor, app, theme, &mut lines);
    } else {
        lines.push(Line::styled(
            format!("{} view", app.view.title()),
            theme.bold(),
        ));
        help_lines(
            Section::View(Context::of_view(app.view)),
            app,
            theme,
            &mut lines,
        );
    }
    lines.push(Line::styled("Everywhere", theme.bold()));
    help_lines(Section::Everywhere, app, theme, &mut lines);
    if app.access == Access::Control && !editor {
        lines.push(Line::styled("In a confirmation dialog", theme.bold()));
        help_lines(Section::Dialog, app, theme, &mut lines);
    } else if app.access != Access::Control {
        lines.push(Line::styled(
            "Read-only session: deploys, stops, backtests and edits are hidden.",
            theme.warn(),
        ));
    }
    let area = centered(body, 72, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" keys (any key closes) ")),
        area,
    );
}

fn draw_confirm(frame: &mut Frame, body: Rect, app: &App, confirm: &Confirm, theme: Theme) {
    let mut lines: Vec<Line> = Vec::new();
    let title;
    match confirm {
        Confirm::Deploy {
            id,
            display_name,
            runner: DeployRunner::Native(choice),
            ..
        } => {
            title = " deploy a native strategy ";
            lines = native_deploy::lines(app, *id, display_name, choice, theme);
        }
        Confirm::Deploy {
            id,
            display_name,
            name,
            live,
            typed,
            ..
        } => {
            title = " deploy ";
            let port = app
                .strategies
                .detail
                .as_ref()
                .filter(|(d, _)| d == id)
                .and_then(|(_, r)| r.as_ref().ok())
                .and_then(|d| match &d.detail.metadata.strategy.deployment {
                    Some(DeploymentSpec::Freqtrade(spec)) => spec.port,
                    _ => None,
                });
            lines.push(Line::from(vec![
                Span::raw("Strategy  "),
                Span::styled(display_name.clone(), theme.bold()),
            ]));
            lines.push(Line::from(format!("Id        {id}")));
            lines.push(Line::from(vec![
                Span::raw("Mode      "),
                if *live {
                    Span::styled("LIVE: real orders with real money", theme.bad())
                } else {
                    Span::styled("dry-run (simulated orders)", theme.good())
                },
                Span::styled("   Tab switches", theme.dim()),
            ]));
            lines.push(Line::from(format!(
                "Port      {}",
                match port {
                    Some(p) => format!("{p} (from the strategy's deployment block)"),
                    None => "the strategy's, else a free one".into(),
                }
            )));
            lines.push(Line::raw(""));
            if *live {
                lines.push(Line::from(format!(
                    "Type `{name}` to confirm a live deployment:"
                )));
                lines.push(Line::from(vec![
                    Span::raw("> "),
                    Span::styled(typed.clone(), theme.bold()),
                    Span::styled("_", theme.dim()),
                ]));
                lines.push(Line::styled(
                    "Enter deploys live · Esc cancels",
                    theme.dim(),
                ));
            } else {
                lines.push(Line::styled("Enter deploys · Esc cancels", theme.dim()));
            }
        }
        Confirm::Stop {
            id,
            display_name,
            drain,
        } => {
            title = " stop ";
            lines.push(Line::from(vec![
                Span::raw("Stop      "),
                Span::styled(display_name.clone(), theme.bold()),
            ]));
            lines.push(Line::from(format!("Id        {id}")));
            lines.push(Line::from(vec![
                Span::raw("How       "),
                Span::raw(if *drain {
                    "drain: no new entries, wait for open trades, then stop"
                } else {
                    "now: stop the bot at once"
                }),
                Span::styled("   Tab switches", theme.dim()),
            ]));
            lines.push(Line::raw(""));
            lines.push(Line::styled("Enter or y stops · Esc cancels", theme.dim()));
        }
        Confirm::Restart { id, display_name } => {
            title = " restart ";
            lines.push(Line::from(vec![
                Span::raw("Restart   "),
                Span::styled(display_name.clone(), theme.bold()),
            ]));
            lines.push(Line::from(format!("Id        {id}")));
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                "Enter or y restarts · Esc cancels",
                theme.dim(),
            ));
        }
        Confirm::CancelJob { id, what, running } => {
            title = " cancel a job ";
            lines.push(Line::from(vec![
                Span::raw("Cancel    "),
                Span::styled(what.clone(), theme.bold()),
            ]));
            lines.push(Line::from(format!("Job       {id}")));
            lines.push(Line::raw(if *running {
                "It is running: its processes are ended, its work is lost."
            } else {
                "It is queued: it leaves the queue before it starts."
            }));
            lines.push(Line::raw(""));
            lines.push(Line::styled(
                "Enter or y cancels the job · Esc keeps it",
                theme.dim(),
            ));
        }
    }
    // Long lines wrap: the dialog is as tall as its wrapped lines.
    let rows: u16 = lines.iter().map(|l| wrapped_rows(&l.to_string(), 74)).sum();
    let area = centered(body, 76, rows + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(title).border_style(theme.warn())),
        area,
    );
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// How old candles are, seen at `now`, in a line: `ETH/BTC 1h data as of 2018-02-01
/// 00:00 UTC, 8 years old · STALE · demo data: the shipped January 2018 candles
/// (memctl market refresh)`; fresh data are plain, stale ones marked.
pub fn freshness_spans(
    what: &str,
    f: &mem_protocol::market::Freshness,
    now: DateTime<Utc>,
    theme: Theme,
) -> Vec<Span<'static>> {
    let f = f.at(now);
    let mut spans = vec![Span::raw(format!(
        "{what} data as of {}, {} old",
        f.as_of.format("%Y-%m-%d %H:%M UTC"),
        mem_protocol::market::age_words(f.age_secs)
    ))];
    if f.stale {
        spans.push(Span::styled(" · STALE", theme.bad()));
    }
    if f.demo {
        spans.push(Span::styled(
            " · demo data: the shipped January 2018 candles",
            theme.warn(),
        ));
    }
    if f.stale {
        spans.push(Span::styled(" (memctl market refresh)", theme.dim()));
    }
    spans
}

/// The market data's age as the views show it (the reference pair's conditions
/// candles), or why it is not known.
pub fn market_spans(app: &App, theme: Theme) -> Vec<Span<'static>> {
    match &app.market {
        Some(mem_protocol::market::MarketState {
            conditions: Some(c),
            ..
        }) => freshness_spans(
            &format!("market: {} {}", c.pair, c.timeframe),
            &c.freshness,
            app.now,
            theme,
        ),
        Some(mem_protocol::market::MarketState { error: Some(e), .. }) => {
            vec![Span::styled(format!("market data: {e}"), theme.warn())]
        }
        _ => vec![Span::styled("market data: not known yet", theme.dim())],
    }
}

pub fn since(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    duration((now - then).num_seconds().max(0) as u64)
}

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "K", "M", "G", "T"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n}B")
    } else {
        format!("{value:.1}{}", UNITS[unit])
    }
}

/// Two decimals, without a negative zero (an empty float sum is -0.0).
pub fn money(v: f64) -> String {
    format!("{:.2}", v + 0.0)
}

/// An amount in `currency`: two decimals for a fiat-like one (USD, USDT, EUR, ...) or
/// an unknown one; for a coin (BTC, ETH) the digits that matter, as 0.01 BTC does
/// (up to six decimals under 1, four under 100, never fewer than two).
pub fn amount(v: f64, currency: Option<&str>) -> String {
    const FIAT_LIKE: &[&str] = &[
        "USD", "USDT", "USDC", "BUSD", "TUSD", "FDUSD", "DAI", "EUR", "GBP", "JPY",
    ];
    let decimals = match currency {
        None => return money(v),
        Some(c) if FIAT_LIKE.contains(&c.to_ascii_uppercase().as_str()) => return money(v),
        Some(_) if v.abs() >= 100.0 => 2,
        Some(_) if v.abs() >= 1.0 => 4,
        Some(_) => 6,
    };
    let text = format!("{:.*}", decimals, v + 0.0);
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, ""));
    let kept = fraction.trim_end_matches('0');
    let kept = if kept.len() < 2 { &fraction[..2] } else { kept };
    format!("{whole}.{kept}")
}

/// A balance in `currency`, as wide as the Deployed table's column allows.
pub fn balance(v: f64, currency: Option<&str>) -> String {
    if v.abs() >= 100.0 {
        format!("{:.0}", v + 0.0)
    } else {
        amount(v, currency)
    }
}

pub fn number(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.2}"))
}

pub fn percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.1}%", v * 100.0))
}

/// A one-line message in the middle of an area (empty lists, loading, errors).
pub fn message(frame: &mut Frame, area: Rect, text: &str, style: Style) {
    frame.render_widget(
        Paragraph::new(text.to_string())
            .style(style)
            .wrap(Wrap { trim: true }),
        area,
    );
}

/// How many rows `text` takes wrapped at word boundaries in `width` columns.
pub fn wrapped_rows(text: &str, width: u16) -> u16 {
    let width = width.max(1) as usize;
    let mut rows = 1usize;
    let mut used = 0usize;
    for word in text.split(' ') {
        let len = word.chars().count();
        let need = if used == 0 { len } else { used + 1 + len };
        if need <= width {
            used = need;
        } else {
            rows += 1 + len.saturating_sub(1) / width;
            used = len % width;
            if used == 0 && len > 0 {
                used = width;
            }
        }
    }
    rows.min(u16::MAX as usize) as u16
}
