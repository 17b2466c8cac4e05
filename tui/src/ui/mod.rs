//! The terminal UI: `memctl` run bare.
//!
//! - [`app`]: the state, and what keys and daemon updates do to it (no terminal);
//! - [`view`]: drawing the state (a pure function, snapshot-tested);
//! - [`keys`]: the keymap (what each key does where, `keys.toml`) and the help's layout;
//! - [`params`]: the Strategies view's parameter editor (its state and keys);
//! - [`native_deploy`]: the deploy dialog of a native strategy (pair, follow or replay,
//!   the candle file and how old it is);
//! - [`conn`]: the connection task, which owns the socket and reconnects.
//!
//! One `select!` loop here joins terminal input, the connection's updates, a clock tick
//! and signals; it redraws only when something changed, so an idle screen writes
//! almost nothing to an SSH link.

pub mod app;
pub mod conn;
pub mod fleet;
pub mod keys;
pub mod native_deploy;
pub mod params;
pub mod view;

#[cfg(test)]
mod tests;

use app::{App, Command, Update};
use crossterm::event::{Event as TermEvent, EventStream, KeyEventKind};
use futures::StreamExt;
use mem_protocol::Client;
use std::io::IsTerminal;
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// The clock in the header ticks once a second.
const TICK: Duration = Duration::from_secs(1);

/// Restores the terminal when dropped: on return, on error and on unwinding (the panic
/// hook of `ratatui::init` covers a panic that aborts).
struct TerminalGuard;

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// How long the loop has, after SIGTERM or SIGHUP, to end by itself before memctl exits.
const SIGNAL_GRACE: Duration = Duration::from_secs(1);

/// Ends memctl on SIGTERM or SIGHUP when the UI loop cannot. crossterm's event reader
/// (0.29, `UnixInternalEventSource::try_read`) retries a failed read of the terminal for
/// ever, without yielding, once the terminal hung up (an SSH link dropped, a tmux pane
/// killed: the read gets EIO or EOF): the loop below then never sees the signal, and
/// memctl spins on a core until killed (seen once after a test run: deaf to SIGTERM for
/// 16 minutes). This task runs on the runtime's workers, not on the loop's thread.
fn spawn_exit_on_signal() -> std::io::Result<tokio::task::JoinHandle<()>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    Ok(tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = hup.recv() => {}
        }
        // A loop that works ends memctl before this wakes.
        tokio::time::sleep(SIGNAL_GRACE).await;
        let _ = ratatui::try_restore();
        std::process::exit(0);
    }))
}

/// Runs the UI until the operator quits or a signal ends it, with the keys of `keys`.
pub async fn run(client: Client, target: conn::Target, keys: keys::Keymap) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the terminal UI needs a terminal; for scripts use a subcommand (memctl --help)"
        );
    }
    let (update_tx, mut updates) = mpsc::unbounded_channel::<Update>();
    let (command_tx, command_rx) = mpsc::unbounded_channel::<Command>();
    let connection = tokio::spawn(conn::run(target, Some(client), update_tx, command_rx));

    let mut terminal = ratatui::init();
    let _guard = TerminalGuard;
    let theme = view::Theme::from_env();
    let mut app = App::new(chrono::Utc::now());
    app.keys = keys;
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let last_resort = spawn_exit_on_signal()?;
    let mut dirty = true;
    let result = loop {
        if app.quit {
            break Ok(());
        }
        if dirty {
            terminal.draw(|frame| view::draw(frame, &app, theme))?;
            dirty = false;
        }
        let commands = tokio::select! {
            input = keys.next() => match input {
                Some(Ok(TermEvent::Key(key))) if key.kind == KeyEventKind::Press => {
                    dirty = true;
                    app.on_key(key)
                }
                Some(Ok(TermEvent::Resize(..))) => { dirty = true; vec![] }
                Some(Ok(_)) => vec![],
                Some(Err(err)) => break Err(err.into()),
                None => break Ok(()),
            },
            update = updates.recv() => match update {
                Some(update) => {
                    dirty = true;
                    let mut commands = app.on_update(update);
                    // Take what else is queued before drawing: one frame per burst.
                    while let Ok(more) = updates.try_recv() {
                        commands.extend(app.on_update(more));
                    }
                    commands
                }
                None => break Ok(()),
            },
            _ = tick.tick() => {
                dirty |= app.on_tick(chrono::Utc::now());
                vec![]
            }
            _ = term.recv() => break Ok(()),
            _ = hup.recv() => break Ok(()),
        };
        for command in commands {
            let _ = command_tx.send(command);
        }
    };
    drop(command_tx);
    connection.abort();
    last_resort.abort();
    result
}

/// The fleet's UI (`memctl --server NAME|all`): a connection task per server, each
/// reconnecting by itself; `focus` is what the screen shows first.
pub async fn run_fleet(
    servers: Vec<(String, mem_protocol::Endpoint)>,
    focus: fleet::Focus,
    read_only: bool,
    keys: keys::Keymap,
) -> anyhow::Result<()> {
    if !std::io::stdout().is_terminal() {
        anyhow::bail!(
            "the terminal UI needs a terminal; for scripts use a subcommand (memctl --help)"
        );
    }
    let (update_tx, mut updates) = mpsc::unbounded_channel::<(usize, Update)>();
    let mut command_txs = Vec::new();
    let mut topic_txs = Vec::new();
    let mut tasks = Vec::new();
    let names = servers.iter().map(|(name, _)| name.clone()).collect();
    let mut fleet = fleet::FleetApp::new(names, focus, keys, chrono::Utc::now());
    for (i, (_, endpoint)) in servers.into_iter().enumerate() {
        let (command_tx, command_rx) = mpsc::unbounded_channel::<Command>();
        let (member_tx, mut member_rx) = mpsc::unbounded_channel::<Update>();
        let (topic_tx, topics) = tokio::sync::watch::channel(fleet.topics_of(i));
        topic_txs.push(topic_tx);
        let target = conn::Target {
            endpoint,
            read_only,
            topics: Some(topics),
        };
        tasks.push(tokio::spawn(conn::run(target, None, member_tx, command_rx)));
        let tx = update_tx.clone();
        tasks.push(tokio::spawn(async move {
            while let Some(update) = member_rx.recv().await {
                if tx.send((i, update)).is_err() {
                    return;
                }
            }
        }));
        command_txs.push(command_tx);
    }
    drop(update_tx);

    let mut terminal = ratatui::init();
    let _guard = TerminalGuard;
    let theme = view::Theme::from_env();
    let mut keys = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let last_resort = spawn_exit_on_signal()?;
    let mut dirty = true;
    let result = loop {
        if fleet.quit {
            break Ok(());
        }
        if dirty {
            terminal.draw(|frame| view::fleet::draw(frame, &fleet, theme))?;
            dirty = false;
        }
        let commands = tokio::select! {
            input = keys.next() => match input {
                Some(Ok(TermEvent::Key(key))) if key.kind == KeyEventKind::Press => {
                    dirty = true;
                    fleet.on_key(key)
                }
                Some(Ok(TermEvent::Resize(..))) => { dirty = true; vec![] }
                Some(Ok(_)) => vec![],
                Some(Err(err)) => break Err(err.into()),
                None => break Ok(()),
            },
            update = updates.recv() => match update {
                Some((member, update)) => {
                    dirty |= fleet.changes_screen(member, &update);
                    let mut commands = fleet.on_update(member, update);
                    // One frame per burst, whichever servers it came from.
                    while let Ok((member, more)) = updates.try_recv() {
                        dirty |= fleet.changes_screen(member, &more);
                        commands.extend(fleet.on_update(member, more));
                    }
                    commands
                }
                None => break Ok(()),
            },
            _ = tick.tick() => {
                dirty |= fleet.on_tick(chrono::Utc::now());
                vec![]
            }
            _ = term.recv() => break Ok(()),
            _ = hup.recv() => break Ok(()),
        };
        for (member, command) in commands {
            if let Some(tx) = command_txs.get(member) {
                let _ = tx.send(command);
            }
        }
        for (member, tx) in topic_txs.iter().enumerate() {
            let wanted = fleet.topics_of(member);
            tx.send_if_modified(|topics| {
                let changed = *topics != wanted;
                *topics = wanted;
                changed
            });
        }
    };
    drop(command_txs);
    for task in tasks {
        task.abort();
    }
    last_resort.abort();
    result
}
