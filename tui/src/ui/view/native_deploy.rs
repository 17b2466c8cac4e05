//! The deploy dialog of a native strategy: the pair (← →), follow or replay (Tab), the
//! candle file it will read with its newest candle's age, and a plain warning when
//! following would wait for candles that may never come.

use super::Theme;
use crate::ui::app::App;
use crate::ui::keys::Action;
use crate::ui::native_deploy::{NativeChoice, age_words, is_stale, mode_word};
use mem_protocol::deploy::{FeedInfo, FeedMode};
use mem_protocol::strategy::StrategyId;
use ratatui::text::{Line, Span};

/// The dialog's lines.
pub fn lines(
    app: &App,
    id: StrategyId,
    display_name: &str,
    choice: &NativeChoice,
    theme: Theme,
) -> Vec<Line<'static>> {
    let k = &app.keys;
    let mode = choice.mode();
    let mut lines = vec![
        Line::from(vec![
            Span::raw("Strategy  "),
            Span::styled(display_name.to_string(), theme.bold()),
        ]),
        Line::from(format!("Id        {id}")),
        Line::from(vec![
            Span::raw("Runs      "),
            Span::styled("inside memd, on paper (never live)", theme.good()),
        ]),
    ];
    let feed = match &choice.feed {
        None => {
            lines.push(Line::from(format!(
                "Pair      {}",
                choice.pair.as_deref().unwrap_or("the strategy's")
            )));
            lines.push(Line::styled(
                "Candles   reading the candle file...",
                theme.dim(),
            ));
            lines.push(Line::raw(""));
            lines.push(Line::styled("Esc cancels", theme.dim()));
            return lines;
        }
        Some(Err(e)) => {
            lines.push(Line::from(format!(
                "Pair      {}",
                choice.pair.as_deref().unwrap_or("the strategy's")
            )));
            lines.push(Line::styled(format!("Candles   {e}"), theme.bad()));
            lines.push(Line::raw(""));
            lines.push(Line::styled("Esc cancels", theme.dim()));
            return lines;
        }
        Some(Ok(feed)) => feed,
    };
    lines.push(Line::from(vec![
        Span::raw("Pair      "),
        Span::styled(feed.pair.clone(), theme.bold()),
        Span::styled(
            format!(
                "   {} {} picks ({} pairs with {} candles)",
                k.label_or(Action::PrevChoice, "←"),
                k.label_or(Action::NextChoice, "→"),
                feed.pairs.len(),
                feed.timeframe
            ),
            theme.dim(),
        ),
    ]));
    lines.push(Line::from(vec![
        Span::raw("Feed      "),
        Span::styled(mode_word(mode), theme.bold()),
        Span::raw(match mode {
            FeedMode::Follow => ": trade the candles appended to the file",
            FeedMode::Replay => ": trade the file's candles once, then stop",
        }),
        Span::styled("   Tab switches", theme.dim()),
    ]));
    lines.push(Line::from(format!(
        "Candles   {}: {} candles{}",
        feed.file,
        feed.candles,
        span_of(feed)
    )));
    let stale = is_stale(feed, app.now);
    if let Some(newest) = feed.newest_candle {
        lines.push(Line::from(vec![
            Span::raw("Newest    "),
            Span::styled(
                format!(
                    "{} ({} old)",
                    newest.format("%Y-%m-%d %H:%M UTC"),
                    age_words(app.now, newest)
                ),
                if stale { theme.warn() } else { theme.good() },
            ),
        ]));
    }
    lines.push(Line::raw(""));
    if mode == FeedMode::Follow && stale {
        lines.push(Line::styled(
            format!(
                "follow: waits for new candles in {}; its newest candle is {} old and nothing has appended to it since. The deployment may wait for candles that never come. Tab: replay its history instead.",
                feed.file,
                feed.newest_candle
                    .map_or("of no age".into(), |t| age_words(app.now, t))
            ),
            theme.warn(),
        ));
        lines.push(Line::raw(""));
    }
    lines.push(Line::styled(
        "Enter deploys (paper) · Esc cancels",
        theme.dim(),
    ));
    lines
}

/// `, 2017-11-14 .. 2018-01-31` when the file has candles.
fn span_of(feed: &FeedInfo) -> String {
    match (feed.first_candle, feed.newest_candle) {
        (Some(first), Some(last)) => format!(
            ", {} .. {}",
            first.format("%Y-%m-%d"),
            last.format("%Y-%m-%d")
        ),
        _ => String::new(),
    }
}
