//! The deploy dialog of a native strategy: it asks what matters for one (the pair,
//! follow or replay), shows the candle file the deployment will read and how old its
//! newest candle is, and says plainly when following would wait for candles that may
//! never come. A Freqtrade strategy keeps the dialog of a bot (dry-run or live, a port).
//!
//! How a strategy runs is [`runner_of`]'s answer on its metadata; until the detail is
//! loaded the summary's language decides (`rust`: native), and the detail corrects it.
//! The file, its newest candle and the pairs with candles come from the daemon
//! (`market.feed`), resolved as a deploy resolves them; the deploy then names that file.

use super::app::{App, Command, Confirm, Overlay, Tone};
use super::keys::Action;
use chrono::{DateTime, Utc};
use mem_protocol::deploy::{DeployParams, FeedInfo, FeedMode, FeedParams, NativeOptions};
use mem_protocol::deploy_spec::{Runner, runner_of};
use mem_protocol::strategy::{StrategyId, StrategySummary};

/// How the strategy in a deploy dialog runs, as far as the dialog knows.
#[derive(Debug, Clone, PartialEq)]
pub enum DeployRunner {
    /// A Freqtrade bot (or a strategy memd cannot run: the daemon says why).
    Bot,
    Native(Box<NativeChoice>),
}

/// What the operator picks for a native deployment, and what the daemon said of the
/// candle file.
#[derive(Debug, Clone, PartialEq)]
pub struct NativeChoice {
    /// The pair asked for; None: the strategy's, else the daemon's reference pair.
    pub pair: Option<String>,
    /// Picked with Tab; None: the strategy's (the feed's default).
    pub mode: Option<FeedMode>,
    /// `market.feed`'s answer for `pair`; None while it is on its way.
    pub feed: Option<Result<FeedInfo, String>>,
}

impl NativeChoice {
    /// The mode the deploy will use.
    pub fn mode(&self) -> FeedMode {
        let default = match &self.feed {
            Some(Ok(f)) => f.mode,
            _ => FeedMode::Follow,
        };
        self.mode.unwrap_or(default)
    }
}

/// The runner a strategy's summary suggests (its detail may say otherwise).
pub fn runner_of_summary(s: &StrategySummary) -> DeployRunner {
    if s.language == "rust" {
        DeployRunner::Native(Box::new(NativeChoice {
            pair: None,
            mode: None,
            feed: None,
        }))
    } else {
        DeployRunner::Bot
    }
}

/// The command that asks the daemon about a native deployment's feed.
pub fn load_feed(id: StrategyId, pair: Option<String>) -> Command {
    Command::LoadFeed(FeedParams {
        id: Some(id),
        pair,
        timeframe: None,
        file: None,
    })
}

/// How old a candle is, in words: `8 years`, `3 days`, `5 hours`, `12 minutes`.
pub fn age_words(now: DateTime<Utc>, then: DateTime<Utc>) -> String {
    let secs = (now - then).num_seconds().max(0);
    let (n, unit) = match secs {
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s if s < 86_400 * 365 => (s / 86_400, "day"),
        s => (s / (86_400 * 365), "year"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// A timeframe's length in minutes (`5m`, `1h`, `1d`, `1w`).
fn timeframe_minutes(tf: &str) -> Option<i64> {
    let digits = tf.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: i64 = digits.parse().ok()?;
    Some(match &tf[digits.len()..] {
        "m" => n,
        "h" => n * 60,
        "d" => n * 1440,
        "w" => n * 10_080,
        _ => return None,
    })
}

/// Whether nothing has appended to the file for a while: its newest candle is older
/// than three of its candles, and a quarter of an hour.
pub fn is_stale(feed: &FeedInfo, now: DateTime<Utc>) -> bool {
    let Some(newest) = feed.newest_candle else {
        return true;
    };
    let candle = timeframe_minutes(&feed.timeframe).unwrap_or(5);
    let limit = chrono::Duration::minutes((candle * 4).max(15));
    now - newest > limit
}

impl App {
    /// Opens the deploy dialog of `s`: a native strategy's asks for its feed.
    pub(crate) fn open_deploy_dialog(&mut self, s: &StrategySummary) -> Vec<Command> {
        let known = match &self.strategies.detail {
            Some((id, Ok(data))) if *id == s.id => {
                Some(runner_from(runner_of(&data.detail.metadata.strategy), None))
            }
            _ => None,
        };
        let runner = known.clone().unwrap_or_else(|| runner_of_summary(s));
        let mut commands = Vec::new();
        if let DeployRunner::Native(_) = runner {
            commands.push(load_feed(s.id, None));
        }
        if known.is_none() {
            // The dialog shows the strategy's port (or corrects its runner) once its
            // metadata is here.
            commands.push(Command::LoadDetail(s.id));
        }
        self.overlay = Some(Overlay::Confirm(Confirm::Deploy {
            id: s.id,
            display_name: s.display_name.clone(),
            name: s.name.clone(),
            live: false,
            typed: String::new(),
            runner,
        }));
        commands
    }

    /// A strategy's detail arrived: an open deploy dialog of it learns how it runs.
    pub(crate) fn deploy_dialog_detail(&mut self, id: StrategyId) -> Vec<Command> {
        let Some((_, Ok(data))) = self.strategies.detail.as_ref().filter(|(d, _)| *d == id) else {
            return vec![];
        };
        let actual = runner_of(&data.detail.metadata.strategy);
        let Some(Overlay::Confirm(Confirm::Deploy {
            id: open, runner, ..
        })) = self.overlay.as_mut()
        else {
            return vec![];
        };
        if *open != id {
            return vec![];
        }
        let was_native = matches!(runner, DeployRunner::Native(_));
        let now_native = matches!(actual, Runner::Native { .. });
        if was_native == now_native {
            return vec![];
        }
        *runner = runner_from(actual, None);
        if now_native {
            vec![load_feed(id, None)]
        } else {
            vec![]
        }
    }

    /// `market.feed`'s answer: the open dialog takes it if it asked for it.
    pub(crate) fn on_feed(&mut self, asked: FeedParams, result: Result<FeedInfo, String>) {
        if let Some(Overlay::Confirm(Confirm::Deploy {
            id,
            runner: DeployRunner::Native(choice),
            ..
        })) = self.overlay.as_mut()
        {
            if asked.id == Some(*id) && asked.pair == choice.pair {
                choice.feed = Some(result);
            }
        }
    }

    /// A key in a native strategy's deploy dialog; false: not one of its own.
    pub(crate) fn on_native_dialog_key(
        &mut self,
        id: StrategyId,
        display_name: &str,
        choice: &mut NativeChoice,
        action: Option<Action>,
        commands: &mut Vec<Command>,
    ) -> bool {
        match action {
            Some(Action::Toggle) => {
                choice.mode = Some(match choice.mode() {
                    FeedMode::Follow => FeedMode::Replay,
                    FeedMode::Replay => FeedMode::Follow,
                });
            }
            Some(Action::PrevChoice | Action::NextChoice) => {
                let Some(Ok(feed)) = &choice.feed else {
                    return true; // the pairs are on their way
                };
                let pairs = &feed.pairs;
                if pairs.is_empty() {
                    return true;
                }
                let at = pairs.iter().position(|p| *p == feed.pair).unwrap_or(0);
                let next = if action == Some(Action::NextChoice) {
                    (at + 1) % pairs.len()
                } else {
                    (at + pairs.len() - 1) % pairs.len()
                };
                choice.pair = Some(pairs[next].clone());
                choice.feed = None;
                commands.push(load_feed(id, choice.pair.clone()));
            }
            Some(Action::Confirm) => match &choice.feed {
                Some(Ok(feed)) => {
                    let mode = choice.mode();
                    self.say(
                        Tone::Info,
                        format!(
                            "deploying {display_name} on paper: {} {} {}...",
                            mode_word(mode),
                            feed.pair,
                            feed.file
                        ),
                    );
                    commands.push(Command::Deploy(DeployParams {
                        id,
                        dry_run: true,
                        port: None,
                        parameters: None,
                        native: Some(NativeOptions {
                            pair: Some(feed.pair.clone()),
                            timeframe: Some(feed.timeframe.clone()),
                            file: Some(feed.file.clone()),
                            mode: Some(mode),
                            speed: None,
                            starting_balance: None,
                        }),
                    }));
                }
                Some(Err(e)) => self.say(Tone::Error, format!("cannot deploy: {e}")),
                None => self.say(Tone::Info, "reading the candle file..."),
            },
            _ => return false,
        }
        true
    }
}

/// `follow` / `replay`.
pub fn mode_word(mode: FeedMode) -> &'static str {
    match mode {
        FeedMode::Follow => "follow",
        FeedMode::Replay => "replay",
    }
}

fn runner_from(runner: Runner, pair: Option<String>) -> DeployRunner {
    match runner {
        Runner::Native { .. } => DeployRunner::Native(Box::new(NativeChoice {
            pair,
            mode: None,
            feed: None,
        })),
        _ => DeployRunner::Bot,
    }
}
