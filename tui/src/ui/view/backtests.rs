//! The Backtests view (`queue.list`, kept current by `queue.changed` events): the queue
//! (running jobs with their progress, queued ones in order, finished ones newest first
//! with their figures or error) and the selected job in full: what was asked, its
//! progress or error, and a result's figures, data, validation, a walk-forward's folds and
//! the equity curve. [`equity_chart`] draws that curve for the strategy detail too.
//!
//! Ratios are fractions on the wire (0.58 is 58%); a drawdown is shown as a fall (`-3.1%`)
//! whichever sign its source gives it.

use super::{Theme, message, since};
use crate::text;
use crate::ui::app::App;
use crate::ui::keys::Action;
use mem_protocol::backtest::{
    BacktestFigures, BacktestParams, BacktestResult, QueueJob, QueueJobState, QueueList,
    ValidationStatus,
};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Cell, Chart, Dataset, GraphType, Paragraph, Row, Table, Wrap};

/// Below this width the table drops the WHAT column (the detail names the kind).
const NARROW: u16 = 100;
/// The figures' table is this wide; a chart goes beside it when the rest is wide enough.
const FIGURES_WIDTH: u16 = 78;
const CHART_MIN_WIDTH: u16 = 30;

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let v = &app.backtests;
    let list = match &v.queue {
        Some(Ok(list)) => list,
        other => {
            let block = Block::bordered().title(" Backtests · the queue ");
            let inner = block.inner(area);
            frame.render_widget(block, area);
            if let Some((text, style)) = super::panel::missing(other.as_ref(), theme) {
                message(frame, inner, &text, style);
            }
            return;
        }
    };
    if v.detail_open {
        if let Some(job) = v.selected() {
            draw_job(frame, area, list, job, v.detail_scroll, theme);
            return;
        }
    }
    let title = format!(
        " Backtests · the queue, {} at a time ({} on a strategy queues one) ",
        list.parallel,
        app.keys.label(Action::Backtest)
    );
    if list.jobs.is_empty() {
        let block = Block::bordered().title(title);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        message(
            frame,
            inner,
            &format!(
                "The queue is empty. {} on a strategy (Strategies, {}) queues a backtest of it; \
                 memctl backtest ID does from a shell, with a range, pairs or a walk-forward.",
                app.keys.label(Action::Backtest),
                app.keys.label(Action::ViewStrategies)
            ),
            theme.dim(),
        );
        return;
    }
    let table_height = (list.jobs.len() as u16 + 3).clamp(5, (area.height / 2).max(5));
    let [top, detail] =
        Layout::vertical([Constraint::Length(table_height), Constraint::Min(3)]).areas(area);
    draw_table(frame, top, app, list, title, theme);
    if let Some(job) = v.selected() {
        draw_job(frame, detail, list, job, 0, theme);
    }
}

fn draw_table(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    list: &QueueList,
    title: String,
    theme: Theme,
) {
    let v = &app.backtests;
    let block = Block::bordered().title(title);
    let height = block.inner(area).height.saturating_sub(1) as usize;
    app.page.set(height);
    let offset = v.cursor.window(list.jobs.len(), height);
    let narrow = area.width < NARROW;
    let mut queued = 0;
    let rows: Vec<Row> = list
        .jobs
        .iter()
        .enumerate()
        .map(|(i, job)| {
            if job.state == QueueJobState::Queued {
                queued += 1;
            }
            (i, job, queued)
        })
        .skip(offset)
        .take(height)
        .map(|(i, job, place)| {
            let mut cells = vec![state_cell(job.state, theme)];
            if !narrow {
                cells.push(Cell::from(text::queue_kind(job.kind)));
            }
            cells.push(Cell::from(job.strategy.clone()));
            cells.push(Cell::from(when(app, job)));
            cells.push(Cell::from(outcome_line(job, place, theme)));
            let row = Row::new(cells);
            if i == v.cursor.selected {
                row.style(theme.selected())
            } else {
                row
            }
        })
        .collect();
    let (widths, header) = if narrow {
        (
            vec![
                Constraint::Length(11),
                Constraint::Fill(2),
                Constraint::Length(10),
                Constraint::Fill(3),
            ],
            vec!["STATE", "STRATEGY", "WHEN", "PROGRESS / RESULT"],
        )
    } else {
        (
            vec![
                Constraint::Length(11),
                Constraint::Length(12),
                Constraint::Fill(1),
                Constraint::Length(12),
                Constraint::Fill(2),
            ],
            vec!["STATE", "WHAT", "STRATEGY", "WHEN", "PROGRESS / RESULT"],
        )
    };
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header).style(theme.bold()))
            .block(block),
        area,
    );
}

fn state_style(state: QueueJobState, theme: Theme) -> Style {
    match state {
        QueueJobState::Running => theme.accent(),
        QueueJobState::Queued => Style::new(),
        QueueJobState::Succeeded => theme.good(),
        QueueJobState::Failed => theme.bad(),
        QueueJobState::Cancelled | QueueJobState::Interrupted => theme.warn(),
    }
}

fn state_cell(state: QueueJobState, theme: Theme) -> Cell<'static> {
    let word = match state {
        QueueJobState::Failed => "FAILED".to_string(),
        other => text::queue_state(other).to_string(),
    };
    Cell::from(word).style(state_style(state, theme))
}

/// How long it has run, waited, or since it ended.
fn when(app: &App, job: &QueueJob) -> String {
    match job.state {
        QueueJobState::Running => format!(
            "for {}",
            since(app.now, job.started_at.unwrap_or(job.queued_at))
        ),
        QueueJobState::Queued => format!("{} ago", since(app.now, job.queued_at)),
        _ => format!(
            "{} ago",
            since(app.now, job.finished_at.unwrap_or(job.queued_at))
        ),
    }
}

/// `██████░░░░ 3/5`: a bar of `width` cells.
pub fn progress_bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total > 0 {
        ((done.min(total) as usize * width) / total as usize).min(width)
    } else {
        0
    };
    format!(
        "{}{} {done}/{total}",
        "█".repeat(filled),
        "░".repeat(width - filled)
    )
}

/// The table's last column: a running job's progress, a queued one's place, a finished
/// one's trades, profit and validation, or its error's first line.
fn outcome_line(job: &QueueJob, place: usize, theme: Theme) -> Line<'static> {
    match (job.state, &job.progress, &job.result, &job.error) {
        (QueueJobState::Running, Some(p), _, _) => Line::from(vec![
            Span::styled(progress_bar(p.done, p.total, 10), theme.accent()),
            Span::raw(format!(" {}", p.message)),
        ]),
        (QueueJobState::Running, None, _, _) => Line::styled("starting...", theme.dim()),
        (QueueJobState::Queued, ..) => Line::styled(format!("#{place} in line"), theme.dim()),
        (_, _, Some(r), _) => {
            let f = &r.figures;
            Line::from(vec![
                Span::raw(format!("{} trades  ", f.trades)),
                Span::styled(signed_percent(f.profit_pct), theme.pnl(f.profit_pct)),
                Span::raw("  "),
                validation_span(r.validation.status, theme),
            ])
        }
        (state, _, None, Some(e)) => Line::styled(
            e.lines().next().unwrap_or_default().to_string(),
            match state {
                QueueJobState::Failed => theme.bad(),
                _ => theme.warn(),
            },
        ),
        _ => Line::raw(""),
    }
}

fn validation_span(status: ValidationStatus, theme: Theme) -> Span<'static> {
    match status {
        ValidationStatus::Passed => Span::styled("validation ✓", theme.good()),
        ValidationStatus::Failed => Span::styled("validation ✗", theme.bad()),
    }
}

/// `+4.21%`.
pub fn signed_percent(ratio: f64) -> String {
    format!("{:+.2}%", ratio * 100.0 + 0.0)
}

/// A drawdown as a fall: `-3.1%` (a source may give it positive or negative).
pub fn drawdown(ratio: f64) -> String {
    format!("{:.1}%", -ratio.abs() * 100.0 + 0.0)
}

fn ratio(v: Option<f64>) -> String {
    super::number(v)
}

/// The header of [`figures_line`]'s table.
fn figures_header(label: &str) -> String {
    format!(
        "{label:<24}{:>7}{:>7}{:>9}{:>7}{:>8}{:>8}{:>6}",
        "trades", "win", "profit", "Sharpe", "Sortino", "max DD", "PF"
    )
}

/// One row of figures: trades, win rate, profit, Sharpe, Sortino, max drawdown, profit
/// factor.
fn figures_line(label: &str, f: &BacktestFigures, theme: Theme) -> Line<'static> {
    Line::from(vec![
        Span::raw(format!(
            "{label:<24}{:>7}{:>7}",
            f.trades,
            format!("{:.1}%", f.win_rate * 100.0)
        )),
        Span::styled(
            format!("{:>9}", signed_percent(f.profit_pct)),
            theme.pnl(f.profit_pct),
        ),
        Span::raw(format!(
            "{:>7}{:>8}{:>8}{:>6}",
            ratio(f.sharpe),
            ratio(f.sortino),
            drawdown(f.max_drawdown),
            ratio(f.profit_factor)
        )),
    ])
}

/// What was asked: the range, the walk-forward, the pairs, MEM.
fn asked_words(p: &BacktestParams) -> String {
    let mut parts = vec![match (&p.days, &p.timerange) {
        (Some(days), _) => format!("the last {days} days"),
        (None, Some(range)) => format!("timerange {range}"),
        (None, None) => "the default range ([backtest] days)".to_string(),
    }];
    match p.walk_forward {
        Some(0) => parts.push("walk-forward, the default folds".into()),
        Some(n) => parts.push(format!("walk-forward, {n} folds")),
        None => {}
    }
    if let Some(epochs) = p.epochs {
        parts.push(format!("{epochs} trials per fold"));
    }
    match &p.pairs {
        Some(pairs) => parts.push(pairs.join(", ")),
        None => parts.push("the strategy's pairs".into()),
    }
    if p.through_mem {
        parts.push("through MEM".into());
    }
    parts.join(" · ")
}

fn kv(key: &str, value: impl Into<String>, theme: Theme) -> Line<'static> {
    Line::from(vec![
        Span::styled(format!("{key:<10}"), theme.dim()),
        Span::raw(value.into()),
    ])
}

/// The selected job in full, as lines: where it is (its state and times), its progress,
/// place in line or error, its result; then what was asked and where its log is.
fn job_lines(list: &QueueList, job: &QueueJob, theme: Theme) -> Vec<Line<'static>> {
    // One line at 80 columns: minutes here, the duration to the second.
    let mut times = format!("queued {}", job.queued_at.format("%Y-%m-%d %H:%M"));
    match (job.started_at, job.finished_at) {
        (Some(start), Some(end)) => times.push_str(&format!(
            " · ran {} → {} ({})",
            start.format("%H:%M"),
            end.format("%H:%M"),
            since(end, start)
        )),
        (Some(start), None) => times.push_str(&format!(" · started {}", start.format("%H:%M"))),
        (None, Some(end)) => times.push_str(&format!(" · ended {}", end.format("%H:%M"))),
        (None, None) => {}
    }
    let mut lines = vec![Line::from(vec![
        Span::styled(format!("{:<10}", "state"), theme.dim()),
        Span::styled(
            text::queue_state(job.state).to_string(),
            state_style(job.state, theme),
        ),
        Span::styled(format!(" · {times}"), theme.dim()),
    ])];
    match job.state {
        QueueJobState::Running => lines.push(match &job.progress {
            Some(p) => Line::from(vec![
                Span::styled(format!("{:<10}", "progress"), theme.dim()),
                Span::styled(progress_bar(p.done, p.total, 30), theme.accent()),
                Span::raw(format!(" {}", p.message)),
            ]),
            None => kv("progress", "starting", theme),
        }),
        QueueJobState::Queued => {
            let running = list
                .jobs
                .iter()
                .filter(|j| j.state == QueueJobState::Running)
                .count();
            let before = list
                .jobs
                .iter()
                .take_while(|j| j.id != job.id)
                .filter(|j| j.state == QueueJobState::Queued)
                .count();
            lines.push(kv(
                "waiting",
                format!(
                    "{before} queued before it, {running} running, {} at a time ([queue] parallel)",
                    list.parallel
                ),
                theme,
            ));
        }
        _ => {}
    }
    if let Some(error) = &job.error {
        let style = match job.state {
            QueueJobState::Failed => theme.bad(),
            _ => theme.warn(),
        };
        lines.push(Line::raw(""));
        lines.extend(error.lines().map(|l| Line::styled(l.to_string(), style)));
    }
    if let Some(result) = &job.result {
        lines.push(Line::raw(""));
        lines.extend(result_lines(result, theme));
    }
    lines.push(Line::raw(""));
    lines.push(kv("asked", asked_words(&job.params), theme));
    lines.push(kv("job", job.id.clone(), theme));
    lines.push(kv("log", job.log_file.clone(), theme));
    lines
}

/// A result: what was measured, the figures (a walk-forward's per fold), the validation.
pub fn result_lines(r: &BacktestResult, theme: Theme) -> Vec<Line<'static>> {
    let mut lines = vec![
        kv(
            "measured",
            format!(
                "version {} · {} {} · {:.1} s",
                r.version,
                text::backtest_engine(r.engine),
                r.engine_version,
                r.seconds
            ),
            theme,
        ),
        kv(
            "data",
            format!(
                "{} {} · {} → {} UTC",
                r.pairs.join(", "),
                r.timeframe,
                r.data_from.format("%Y-%m-%d %H:%M"),
                r.data_to.format("%Y-%m-%d %H:%M")
            ),
            theme,
        ),
        Line::raw(""),
    ];
    match &r.walk_forward {
        None => {
            lines.push(Line::styled(figures_header("Figures"), theme.bold()));
            lines.push(figures_line("whole range", &r.figures, theme));
        }
        Some(wf) => {
            lines.push(Line::styled(
                figures_header("Walk-forward folds"),
                theme.bold(),
            ));
            for fold in &wf.folds {
                let dates = |a: chrono::DateTime<chrono::Utc>, b: chrono::DateTime<chrono::Utc>| {
                    format!("{}→{}", a.format("%m-%d"), b.format("%m-%d"))
                };
                lines.push(figures_line(
                    &format!(
                        "{:<2} in  {}",
                        fold.index + 1,
                        dates(fold.in_sample_from, fold.in_sample_to)
                    ),
                    &fold.in_sample,
                    theme,
                ));
                lines.push(figures_line(
                    &format!(
                        "   out {}",
                        dates(fold.out_of_sample_from, fold.out_of_sample_to)
                    ),
                    &fold.out_of_sample,
                    theme,
                ));
            }
            lines.push(figures_line("all in-sample", &wf.in_sample, theme));
            lines.push(figures_line("all out-of-sample", &wf.out_of_sample, theme));
        }
    }
    lines.push(Line::raw(""));
    let passed = r.validation.status == ValidationStatus::Passed;
    lines.push(Line::from(vec![
        Span::styled("validation ", theme.bold()),
        Span::styled(
            text::validation_status(r.validation.status),
            if passed { theme.good() } else { theme.bad() },
        ),
    ]));
    lines.extend(
        r.validation
            .reasons
            .iter()
            .map(|reason| Line::raw(format!("  {reason}"))),
    );
    lines
}

/// The selected job, in `area`: its lines, scrolled, and its equity curve beside them
/// (wide) or under them (tall), when it has one.
fn draw_job(
    frame: &mut Frame,
    area: Rect,
    list: &QueueList,
    job: &QueueJob,
    scroll: u16,
    theme: Theme,
) {
    let block = Block::bordered().title(format!(
        " {} of {} ",
        text::queue_kind(job.kind),
        job.strategy
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let lines = job_lines(list, job, theme);
    let curve = job.result.as_deref().filter(|r| r.equity.len() >= 2);
    let (text_area, chart_area) = match curve {
        Some(_) if inner.width > FIGURES_WIDTH + CHART_MIN_WIDTH => {
            let [t, _, c] = Layout::horizontal([
                Constraint::Length(FIGURES_WIDTH),
                Constraint::Length(1),
                Constraint::Fill(1),
            ])
            .areas(inner);
            (t, Some(c))
        }
        Some(_) if inner.height >= 16 => {
            let [t, c] = Layout::vertical([Constraint::Min(6), Constraint::Length(8)]).areas(inner);
            (t, Some(c))
        }
        _ => (inner, None),
    };
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        text_area,
    );
    if let (Some(result), Some(chart)) = (curve, chart_area) {
        equity_chart(frame, chart, result, theme);
    }
}

/// A backtest's equity curve as a line chart: the balance over the data's dates, its
/// first and last balance and the profit in the title.
pub fn equity_chart(frame: &mut Frame, area: Rect, r: &BacktestResult, theme: Theme) {
    let (Some(first), Some(last)) = (r.equity.first(), r.equity.last()) else {
        return;
    };
    let points: Vec<(f64, f64)> = r
        .equity
        .iter()
        .map(|p| (p.ts_ms as f64, p.equity))
        .collect();
    let min = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let (low, high) = if max > min {
        (min, max)
    } else {
        (min - 1.0, max + 1.0)
    };
    let (x0, x1) = (first.ts_ms as f64, (last.ts_ms.max(first.ts_ms + 1)) as f64);
    let date = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let change = last.equity - first.equity;
    let ratio = if first.equity.abs() > f64::EPSILON {
        change / first.equity
    } else {
        0.0
    };
    // "backtest equity 1000 → 1042 (+4.21%)", without "backtest" in a narrow chart.
    let name = if area.width >= 40 {
        "backtest equity "
    } else {
        "equity "
    };
    let title = Line::from(vec![
        Span::styled(name, theme.bold()),
        Span::raw(format!(
            "{} → {} ",
            super::balance(first.equity, None),
            super::balance(last.equity, None)
        )),
        Span::styled(format!("({})", signed_percent(ratio)), theme.pnl(change)),
    ]);
    let dataset = Dataset::default()
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(theme.pnl(change))
        .data(&points);
    frame.render_widget(
        Chart::new(vec![dataset])
            .block(Block::new().title(title))
            .x_axis(
                Axis::default()
                    .bounds([x0, x1])
                    .labels([date(first.ts_ms), date(last.ts_ms)])
                    .style(theme.dim()),
            )
            .y_axis(
                Axis::default()
                    .bounds([low, high])
                    .labels([super::balance(low, None), super::balance(high, None)])
                    .style(theme.dim()),
            ),
        area,
    );
}
