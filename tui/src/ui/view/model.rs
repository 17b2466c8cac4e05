//! The Model view: every version of the trend-reversal model (`ml.history`), the
//! current one marked, and the selected one's holdout figures beside the baseline.

use super::{Theme, message};
use crate::ui::app::{App, View};
use mem_protocol::ml::{ModelHistory, ModelStatus};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let panel = app.panels.get(&View::Model);
    let block = Block::bordered().title(" Model · trend-reversal versions (memctl model train) ");
    let inner = block.inner(area);
    let Some((history, panel)) =
        super::panel::typed::<ModelHistory>(frame, area, block.clone(), panel, theme)
    else {
        return;
    };
    if history.versions.is_empty() {
        frame.render_widget(block, area);
        message(
            frame,
            inner,
            "No model yet. Train one: memctl model train (the daemon trains on <data>/market).",
            theme.dim(),
        );
        return;
    }
    let [list, detail] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
    let height = list.height.saturating_sub(3) as usize;
    app.page.set(height);
    let offset = panel.cursor.window(history.versions.len(), height);
    let rows = history
        .versions
        .iter()
        .enumerate()
        .skip(offset)
        .take(height)
        .map(|(i, v)| {
            let status = match v.status {
                ModelStatus::Current => Cell::from("current").style(theme.good()),
                ModelStatus::Retired => Cell::from("retired").style(theme.dim()),
                ModelStatus::Rejected => Cell::from("rejected").style(theme.warn()),
            };
            let row = Row::new(vec![
                Cell::from(v.version.clone()),
                status,
                Cell::from(format!("{:.4}", v.metrics.roc_auc)),
                Cell::from(format!("{:.4}", v.metrics.accuracy)),
                Cell::from(format!("{:.4}", v.metrics.baseline_accuracy)),
                Cell::from(format!("{}", v.train_rows + v.test_rows)),
                Cell::from(v.reason.clone()),
            ]);
            if i == panel.cursor.selected {
                row.style(theme.selected())
            } else {
                row
            }
        });
    let widths = [
        Constraint::Length(15),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Fill(1),
    ];
    let header = Row::new([
        "VERSION", "STATUS", "AUC", "ACCURACY", "BASELINE", "ROWS", "REASON",
    ])
    .style(theme.bold());
    frame.render_widget(Table::new(rows, widths).header(header).block(block), list);

    let Some(v) = history.versions.get(panel.cursor.selected) else {
        return;
    };
    let m = &v.metrics;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", v.version), theme.bold()),
            Span::raw(format!(
                "trained {} on {} ({}), {} training rows, {} holdout rows from {}, {:.2} s",
                v.trained_at.format("%Y-%m-%d %H:%M"),
                v.pairs.join(", "),
                v.timeframe,
                v.train_rows,
                v.test_rows,
                v.split_at.format("%Y-%m-%d %H:%M"),
                v.training_seconds
            )),
        ]),
        Line::raw(format!(
            "holdout: ROC-AUC {:.4} · accuracy {:.4} (always-no baseline {:.4}) · precision {:.3} · recall {:.3} · F1 {:.3} · log-loss {:.4} · reversals {:.1}%",
            m.roc_auc,
            m.accuracy,
            m.baseline_accuracy,
            m.precision,
            m.recall,
            m.f1_score,
            m.log_loss,
            m.base_rate * 100.0
        )),
        Line::from({
            let mut spans = vec![Span::raw(format!(
                "trained on candles up to {} ({} old) · ",
                v.data_to.format("%Y-%m-%d %H:%M UTC"),
                mem_protocol::market::age_words((app.now - v.data_to).num_seconds())
            ))];
            spans.extend(super::market_spans(app, theme));
            spans
        }),
        Line::styled(
            super::jobs::next_retrain(app).unwrap_or_else(|| "next retrain: loading...".into()),
            theme.dim(),
        ),
        Line::styled("feature importance", theme.bold()),
    ];
    let max = v
        .feature_importances
        .iter()
        .map(|(_, x)| *x)
        .fold(0.0, f64::max)
        .max(f64::EPSILON);
    for (name, x) in &v.feature_importances {
        let bar = "█".repeat(((x / max) * 30.0).round() as usize);
        lines.push(Line::from(vec![
            Span::styled(format!("  {name:<15}"), theme.dim()),
            Span::styled(bar, theme.accent()),
            Span::raw(format!(" {x:.3}")),
        ]));
    }
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::bordered().title(" selected version ")),
        detail,
    );
}
