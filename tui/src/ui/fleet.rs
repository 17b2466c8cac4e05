//! The terminal UI over a fleet (`memctl --server NAME|all`): one [`App`] per server,
//! each fed by its own connection task, and what the screen is focused on: one server
//! (its App, whole, as `memctl` alone shows it) or all of them.
//!
//! The all-servers views (Dashboard, Deployed, Jobs) read every server's App and draw
//! its rows with a SERVER column. An action on a row is handed to the App of the row's
//! server, which opens its own confirmation (the same dialogs as one server's): its
//! commands go to that server's connection only. A server whose connection is down
//! keeps its last rows, greyed, and reconnects by itself; the others go on.

use super::app::{App, Command, Connection, Cursor, Update, View};
use super::keys::{self, Action, Context, Key, Keymap};
use chrono::{DateTime, Utc};
use mem_protocol::deploy::DeployedStrategy;
use mem_protocol::jobs::{JobInfo, JobList};
use mem_protocol::{Event, Topic};

/// One server of the fleet.
#[derive(Debug)]
pub struct Member {
    pub name: String,
    pub app: App,
}

/// What the screen shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// One server's App, as `memctl` alone shows it.
    One(usize),
    /// Every server at once.
    All,
}

/// The all-servers views.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllView {
    Dashboard,
    Deployed,
    Jobs,
}

/// The fleet's UI state.
#[derive(Debug)]
pub struct FleetApp {
    pub members: Vec<Member>,
    pub focus: Focus,
    pub view: AllView,
    /// The selected row of the all-servers Deployed or Jobs view.
    pub cursor: Cursor,
    /// `:` typed: the server name being typed (Enter switches, Esc cancels).
    pub switcher: Option<String>,
    /// The server whose dialog, opened from the all-servers view, has the keys.
    pub dialog: Option<usize>,
    pub keys: Keymap,
    pub now: DateTime<Utc>,
    pub quit: bool,
}

/// A server's connection, in the words the all-servers views show.
pub fn connection_text(app: &App, now: DateTime<Utc>) -> String {
    match &app.connection {
        Connection::Connecting => "connecting".into(),
        Connection::Connected => "connected".into(),
        Connection::Disconnected { reason, retry_at } => {
            let secs = (*retry_at - now).num_seconds().max(0);
            format!("{reason}; reconnecting in {secs} s")
        }
    }
}

impl FleetApp {
    /// `names` in the fleet's order, focused on `focus`.
    pub fn new(names: Vec<String>, focus: Focus, keys: Keymap, now: DateTime<Utc>) -> FleetApp {
        let members = names
            .into_iter()
            .map(|name| {
                let mut app = App::new(now);
                app.keys = keys.clone();
                Member { name, app }
            })
            .collect();
        FleetApp {
            members,
            focus,
            view: AllView::Dashboard,
            cursor: Cursor::default(),
            switcher: None,
            dialog: None,
            keys,
            now,
            quit: false,
        }
    }

    /// Every server's active deployments (failed ones not yet acknowledged included), in
    /// the fleet's order: `(server, deployment)`.
    pub fn deployed_rows(&self) -> Vec<(usize, &DeployedStrategy)> {
        self.members
            .iter()
            .enumerate()
            .flat_map(|(i, m)| m.app.deployed.rows().into_iter().map(move |d| (i, d)))
            .collect()
    }

    /// Every server's jobs (those whose list has come): `(server, job)`.
    pub fn job_rows(&self) -> Vec<(usize, JobInfo)> {
        let mut out = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            let list = m
                .app
                .panels
                .get(&View::Jobs)
                .and_then(|p| p.data.as_ref())
                .and_then(|d| d.as_ref().ok())
                .and_then(|v| serde_json::from_value::<JobList>(v.clone()).ok());
            if let Some(list) = list {
                out.extend(list.jobs.into_iter().map(|j| (i, j)));
            }
        }
        out
    }

    fn rows_len(&self) -> usize {
        match self.view {
            AllView::Dashboard => self.members.len(),
            AllView::Deployed => self.deployed_rows().len(),
            AllView::Jobs => self.job_rows().len(),
        }
    }

    /// The index of the server named `name`.
    pub fn find(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }

    /// The topics server `member`'s session subscribes to: every one for the server on
    /// screen; the others leave out what no all-servers view shows and costs the most on
    /// an idle session (bots' log lines, MEM's figures every 2 s: with 50 bots, 11 of the
    /// 22 KB/s an SSH session carried). Focusing a server subscribes it anew, at once.
    pub fn topics_of(&self, member: usize) -> Vec<Topic> {
        if self.focus == Focus::One(member) {
            Topic::ALL.to_vec()
        } else {
            Topic::ALL
                .into_iter()
                .filter(|t| !matches!(t, Topic::Logs | Topic::Memory))
                .collect()
        }
    }

    /// Whether server `member`'s update may change what the screen shows, before it is
    /// applied. One server's screen is drawn again at every update, as `memctl` alone
    /// does. The all-servers screen, which every server's events reach (with 50 bots, 20
    /// to 30 a second each, nearly all of them a bot's poll that found nothing new or a
    /// periodic figure), is drawn again only for what it shows; it is also drawn every
    /// second (its clock, [`FleetApp::on_tick`]), which shows a server's new host load.
    pub fn changes_screen(&self, member: usize, update: &Update) -> bool {
        if self.focus != Focus::All || self.dialog.is_some() || self.switcher.is_some() {
            return true;
        }
        let Update::Event(event) = update else {
            return true;
        };
        match event.as_ref() {
            // MEM's figures, bots' logs and their CPU and memory: not in these views.
            Event::MemMetrics(_) | Event::BotLog(_) | Event::DeploymentsUsage(_) => false,
            // The host's load, drawn by the next second's frame.
            Event::DaemonPulse(_) => false,
            Event::DeploymentChanged(changed) => {
                let new = &changed.deployment;
                let old = self.members.get(member).and_then(|m| {
                    m.app
                        .deployed
                        .all
                        .iter()
                        .find(|d| d.deployment_id == new.deployment_id)
                });
                // A poll that changed nothing but its time (and the CPU and memory, which
                // the event does not carry) changes no row.
                !old.is_some_and(|old| {
                    let mut old = old.clone();
                    old.stats.polled_at = new.stats.polled_at;
                    old.cpu_percent = new.cpu_percent;
                    old.rss_bytes = new.rss_bytes;
                    old == *new
                })
            }
            _ => true,
        }
    }

    /// A connection's news for server `member`.
    pub fn on_update(&mut self, member: usize, update: Update) -> Vec<(usize, Command)> {
        let Some(m) = self.members.get_mut(member) else {
            return vec![];
        };
        let mut commands = m.app.on_update(update);
        // The all-servers Jobs view needs each server's jobs, which come as a panel.
        if self.focus == Focus::All && self.view == AllView::Jobs && m.app.is_connected() {
            let has_jobs = m
                .app
                .panels
                .get(&View::Jobs)
                .is_some_and(|p| p.data.is_some());
            if !has_jobs
                && !commands
                    .iter()
                    .any(|c| matches!(c, Command::LoadPanel(View::Jobs)))
            {
                commands.push(Command::LoadPanel(View::Jobs));
            }
        }
        commands.into_iter().map(|c| (member, c)).collect()
    }

    pub fn on_tick(&mut self, now: DateTime<Utc>) -> bool {
        self.now = now;
        let mut changed = false;
        for m in &mut self.members {
            changed |= m.app.on_tick(now);
        }
        // The all-servers screen counts down each server's reconnection.
        changed || self.focus == Focus::All
    }

    /// A key: the switcher's, an open dialog's, the focused server's, or the
    /// all-servers view's.
    pub fn on_key(&mut self, key: Key) -> Vec<(usize, Command)> {
        if let Some(typed) = self.switcher.as_mut() {
            let action = self.keys.action(Context::Edit, &key);
            match action {
                Some(Action::Confirm) => {
                    let name = self.switcher.take().unwrap_or_default();
                    return self.switch_to(name.trim());
                }
                Some(Action::Cancel) => self.switcher = None,
                _ => {
                    if let Some(c) = keys::typed_char(&key) {
                        typed.push(c);
                    } else if keys::is_backspace(&key) {
                        typed.pop();
                    }
                }
            }
            return vec![];
        }
        if let Some(member) = self.dialog {
            let app = &mut self.members[member].app;
            let commands = app.on_key(key);
            app.quit = false; // quitting is the fleet's, not a dialog's
            if app.overlay.is_none() {
                self.dialog = None;
            }
            return commands.into_iter().map(|c| (member, c)).collect();
        }
        if keys::typed_char(&key) == Some(':') && !self.typing() {
            self.switcher = Some(String::new());
            return vec![];
        }
        match self.focus {
            Focus::One(i) => {
                let app = &mut self.members[i].app;
                let commands = app.on_key(key);
                if app.quit {
                    self.quit = true;
                }
                commands.into_iter().map(|c| (i, c)).collect()
            }
            Focus::All => self.on_all_key(key),
        }
    }

    /// Whether the focused server's App is reading text (a search, a parameter).
    fn typing(&self) -> bool {
        match self.focus {
            Focus::One(i) => {
                let app = &self.members[i].app;
                app.overlay.is_some()
                    || (app.view == View::Strategies
                        && (app.strategies.searching || app.strategies.editor.is_some()))
            }
            Focus::All => false,
        }
    }

    /// `:` NAME Enter: focus that server, or `all`.
    fn switch_to(&mut self, name: &str) -> Vec<(usize, Command)> {
        if name == "all" {
            self.focus = Focus::All;
            return self.entered_all_view();
        }
        match self.find(name) {
            Some(i) => {
                self.focus = Focus::One(i);
                vec![]
            }
            None => {
                let known: Vec<String> = self.members.iter().map(|m| m.name.clone()).collect();
                if let Focus::One(i) = self.focus {
                    self.members[i].app.say(
                        super::app::Tone::Error,
                        format!("no server {name:?}; known: {}, all", known.join(", ")),
                    );
                }
                vec![]
            }
        }
    }

    /// Asks each server for what the all-servers view shows that its snapshot lacks.
    fn entered_all_view(&mut self) -> Vec<(usize, Command)> {
        self.cursor = Cursor::default();
        if self.view != AllView::Jobs {
            return vec![];
        }
        self.members
            .iter()
            .enumerate()
            .filter(|(_, m)| m.app.is_connected())
            .map(|(i, _)| (i, Command::LoadPanel(View::Jobs)))
            .collect()
    }

    fn on_all_key(&mut self, key: Key) -> Vec<(usize, Command)> {
        let context = match self.view {
            AllView::Dashboard => Context::Dashboard,
            AllView::Deployed => Context::Deployed,
            AllView::Jobs => Context::Jobs,
        };
        // The fleet's Dashboard also takes the deploy key (it asks which server).
        let action = self.keys.action(context, &key).or_else(|| {
            self.keys
                .action(Context::Deployed, &key)
                .filter(|a| self.view == AllView::Dashboard && *a == Action::Deploy)
        });
        let view = match action {
            Some(Action::Quit) | Some(Action::Back) => {
                self.quit = true;
                return vec![];
            }
            Some(Action::ViewDashboard) => Some(AllView::Dashboard),
            Some(Action::ViewDeployed) => Some(AllView::Deployed),
            Some(Action::ViewJobs) => Some(AllView::Jobs),
            Some(Action::NextView) | Some(Action::PrevView) => Some(match (self.view, action) {
                (AllView::Dashboard, Some(Action::NextView)) => AllView::Deployed,
                (AllView::Deployed, Some(Action::NextView)) => AllView::Jobs,
                (AllView::Jobs, Some(Action::NextView)) => AllView::Dashboard,
                (AllView::Dashboard, _) => AllView::Jobs,
                (AllView::Deployed, _) => AllView::Dashboard,
                (AllView::Jobs, _) => AllView::Deployed,
            }),
            _ => None,
        };
        if let Some(view) = view {
            self.view = view;
            return self.entered_all_view();
        }
        let len = self.rows_len();
        if self.cursor.on_action(action, len, 10) {
            return vec![];
        }
        match (self.view, action) {
            // Enter on a server, a bot or a job: that server, on that view.
            (AllView::Dashboard, Some(Action::Open)) => {
                if self.cursor.selected < self.members.len() {
                    self.focus = Focus::One(self.cursor.selected);
                }
                vec![]
            }
            (AllView::Deployed, Some(Action::Open)) => {
                if let Some((i, id)) = self.selected_deployment() {
                    self.focus = Focus::One(i);
                    let app = &mut self.members[i].app;
                    app.view = View::Deployed;
                    app.select_deployment(id);
                }
                vec![]
            }
            (
                AllView::Deployed,
                Some(a @ (Action::Stop | Action::Restart | Action::Deploy | Action::Acknowledge)),
            ) => {
                let Some((i, id)) = self.selected_deployment() else {
                    return vec![];
                };
                let app = &mut self.members[i].app;
                app.view = View::Deployed;
                app.select_deployment(id);
                let commands = if a == Action::Deploy {
                    app.deploy_selected_again()
                } else {
                    app.on_deployed_action(Some(a))
                };
                if app.overlay.is_some() {
                    self.dialog = Some(i);
                }
                commands.into_iter().map(|c| (i, c)).collect()
            }
            (AllView::Dashboard, Some(Action::Deploy)) => {
                // Which server is not obvious here: ask.
                self.switcher = Some(String::new());
                vec![]
            }
            (AllView::Jobs, Some(Action::RunJob)) => {
                let rows = self.job_rows();
                let Some((i, job)) = rows.get(self.cursor.selected) else {
                    return vec![];
                };
                let (i, name) = (*i, job.name.clone());
                let app = &mut self.members[i].app;
                if app.is_connected() {
                    vec![(i, Command::RunJob(name))]
                } else {
                    vec![]
                }
            }
            _ => vec![],
        }
    }

    fn selected_deployment(&self) -> Option<(usize, mem_protocol::deploy::DeploymentId)> {
        self.deployed_rows()
            .get(self.cursor.selected)
            .map(|(i, d)| (*i, d.deployment_id))
    }
}
