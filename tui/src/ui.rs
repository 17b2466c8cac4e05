//! The terminal UI. For now one live screen: the daemon's status and the registry,
//! updated from the daemon's events. The full UI (views, deploy and stop keys, logs)
//! builds on this loop.

use crossterm::event::{Event as TermEvent, EventStream, KeyCode, KeyEventKind, KeyModifiers};
use futures::StreamExt;
use mem_protocol::events::{Event, RegistryChange};
use mem_protocol::methods::{NoParams, StatusReport, method};
use mem_protocol::strategy::StrategySummary;
use mem_protocol::{Client, Topic};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table};
use ratatui::{DefaultTerminal, Frame};
use std::io::IsTerminal;
use std::time::Duration;

/// What the screen shows.
struct Screen {
    status: StatusReport,
    strategies: Vec<std::sync::Arc<StrategySummary>>,
    /// Set when the daemon went away.
    gone: Option<String>,
}

/// Runs the UI until the operator quits.
pub async fn run(client: Client) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the terminal UI needs a terminal; for scripts use a subcommand (memctl --help)"
        );
    }
    let (subscribed, mut events) = client
        .subscribe(vec![Topic::Daemon, Topic::Registry])
        .await?;
    let mut screen = Screen {
        status: subscribed
            .snapshot
            .daemon
            .expect("asked for the daemon topic"),
        strategies: subscribed.snapshot.strategies.unwrap_or_default(),
        gone: None,
    };
    let mut terminal = ratatui::init(); // also restores the terminal on panic
    let result = event_loop(&mut terminal, &client, &mut screen, &mut events).await;
    ratatui::restore();
    result
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    client: &Client,
    screen: &mut Screen,
    events: &mut mem_protocol::EventStream,
) -> anyhow::Result<()> {
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut dirty = true;
    loop {
        if dirty {
            terminal.draw(|frame| draw(frame, screen))?;
            dirty = false;
        }
        tokio::select! {
            key = keys.next() => match key {
                Some(Ok(TermEvent::Key(key))) if key.kind == KeyEventKind::Press => {
                    let ctrl_c = key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
                    if ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                        return Ok(());
                    }
                }
                Some(Ok(TermEvent::Resize(..))) => dirty = true,
                Some(Err(err)) => return Err(err.into()),
                None => return Ok(()),
                _ => {}
            },
            event = events.next(), if screen.gone.is_none() => {
                match event {
                    Some(message) => apply(screen, message.event),
                    None => screen.gone = Some("the daemon closed the connection".into()),
                }
                dirty = true;
            }
            _ = tick.tick(), if screen.gone.is_none() => {
                if let Ok(status) = client.call::<method::DaemonStatus>(NoParams {}).await {
                    if status != screen.status {
                        screen.status = status;
                        dirty = true;
                    }
                }
            }
        }
    }
}

fn apply(screen: &mut Screen, event: Event) {
    match event {
        Event::DaemonStopping(stopping) => {
            screen.gone = Some(format!("the daemon is stopping ({})", stopping.reason))
        }
        Event::RegistryChanged(changed) => {
            screen.strategies.retain(|s| s.id != changed.strategy_id);
            if changed.change != RegistryChange::Removed {
                if let Some(strategy) = changed.strategy {
                    screen.strategies.push(std::sync::Arc::new(*strategy));
                }
            }
            screen
                .strategies
                .sort_by_key(|s| s.display_name.to_lowercase());
        }
        // The full UI shows these (status line, Deployed view, log pane).
        Event::RegistryInvalid(_) | Event::DeploymentChanged(_) | Event::BotLog(_) => {}
    }
}

fn draw(frame: &mut Frame, screen: &Screen) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(4),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let s = &screen.status;
    let state = match &screen.gone {
        Some(why) => format!("DISCONNECTED: {why}"),
        None => format!("up {} s · clients {}", s.uptime_secs, s.counts.connections),
    };
    let header_text = vec![
        Line::from(format!(
            "memd {} · pid {} · {} mode · {} access · {state}",
            s.version,
            s.pid,
            s.mode,
            format!("{:?}", s.access).to_lowercase()
        )),
        Line::from(format!(
            "host {} · {} CPUs {:.0}% · load {:.2} · socket {}",
            s.host.hostname.as_deref().unwrap_or("?"),
            s.host.cpu_count,
            s.host.cpu_percent,
            s.host.load_average[0],
            s.socket
        )),
    ];
    frame.render_widget(
        Paragraph::new(header_text).block(Block::bordered().title(" memctl ")),
        header,
    );

    let rows = screen.strategies.iter().map(|st| {
        Row::new(vec![
            Cell::from(st.display_name.clone()),
            Cell::from(st.category.clone()),
            Cell::from(st.status.to_string()),
            Cell::from(st.language.clone()),
            Cell::from(st.sharpe_ratio.map_or("-".into(), |v| format!("{v:.2}"))),
            Cell::from(
                st.win_rate
                    .map_or("-".into(), |v| format!("{:.0}%", v * 100.0)),
            ),
        ])
    });
    let widths = [
        Constraint::Fill(3),
        Constraint::Fill(2),
        Constraint::Length(12),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(8),
    ];
    let table = Table::new(rows, widths)
        .header(
            Row::new([
                "STRATEGY", "CATEGORY", "STATUS", "LANGUAGE", "SHARPE", "WIN",
            ])
            .style(Style::new().add_modifier(Modifier::BOLD)),
        )
        .block(Block::bordered().title(format!(" strategies ({}) ", screen.strategies.len())));
    frame.render_widget(table, body);
    frame.render_widget(
        Paragraph::new(
            "q quit · this is the first screen of the UI; views, deploy and logs are not built yet",
        ),
        footer,
    );
}
