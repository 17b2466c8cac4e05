//! The Jobs view (`jobs.list`): each scheduled job with its schedule, last result and
//! next run, and the selected job's last run in full (for a rotation: every action with
//! its reason). The Dashboard shows the same list, short.

use super::{Theme, message, since};
use crate::ui::app::{App, View};
use crate::ui::keys::Action;
use chrono::{DateTime, Utc};
use mem_protocol::jobs::{JobInfo, JobList, JobOutcome};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

fn outcome_cell(job: &JobInfo, theme: Theme) -> Cell<'static> {
    if job.running_since.is_some() {
        return Cell::from("running").style(theme.accent());
    }
    match job.last_run.as_ref().map(|r| r.outcome) {
        None => Cell::from("-").style(theme.dim()),
        Some(JobOutcome::Succeeded) => Cell::from("ok").style(theme.good()),
        Some(JobOutcome::Skipped) => Cell::from("skipped").style(theme.warn()),
        Some(JobOutcome::Missed) => Cell::from("missed").style(theme.warn()),
        Some(JobOutcome::Failed) => Cell::from("FAILED").style(theme.bad()),
    }
}

pub fn trigger_word(t: mem_protocol::jobs::JobTrigger) -> &'static str {
    match t {
        mem_protocol::jobs::JobTrigger::Schedule => "scheduled",
        mem_protocol::jobs::JobTrigger::Manual => "run by hand",
        mem_protocol::jobs::JobTrigger::CatchUp => "catch-up",
    }
}

/// A rotation's actions (in a run's details), a line each: what, which, why, and what
/// came of it.
pub fn action_lines(details: &serde_json::Value) -> Vec<String> {
    let Some(actions) = details.get("actions").and_then(|a| a.as_array()) else {
        return vec![];
    };
    actions
        .iter()
        .map(|a| {
            format!(
                "  {:<7} {:<24} {}{}",
                a["action"].as_str().unwrap_or(""),
                a["strategyName"].as_str().unwrap_or(""),
                a["reason"].as_str().unwrap_or(""),
                a["result"]
                    .as_str()
                    .map(|r| format!(" → {r}"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// "in 3h 2m" / "-" for a disabled job.
fn next_text(now: DateTime<Utc>, job: &JobInfo) -> String {
    match (job.enabled, job.next_run) {
        (false, _) => "off".into(),
        (true, Some(t)) => format!("{} (in {})", t.format("%m-%d %H:%M"), since(t, now)),
        (true, None) => "-".into(),
    }
}

fn last_text(now: DateTime<Utc>, job: &JobInfo) -> String {
    match (&job.running_since, &job.last_run) {
        (Some(t), _) => format!("since {} ago", since(now, *t)),
        (None, Some(r)) => format!("{} ago", since(now, r.started_at)),
        (None, None) => "never".into(),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let panel = app.panels.get(&View::Jobs);
    let block = Block::bordered().title(format!(
        " Jobs · scheduled work ({} runs the selected one now) ",
        app.keys.label(Action::RunJob)
    ));
    let Some((list, panel)) =
        super::panel::typed::<JobList>(frame, area, block.clone(), panel, theme)
    else {
        return;
    };
    let [top, detail] = Layout::vertical([
        Constraint::Length(list.jobs.len() as u16 + 3),
        Constraint::Min(3),
    ])
    .areas(area);
    app.page.set(list.jobs.len());
    let rows = list.jobs.iter().enumerate().map(|(i, j)| {
        let row = Row::new(vec![
            Cell::from(j.name.clone()),
            if j.enabled {
                Cell::from("on").style(theme.good())
            } else {
                Cell::from("off").style(theme.dim())
            },
            Cell::from(j.schedule.clone()),
            Cell::from(last_text(app.now, j)),
            outcome_cell(j, theme),
            Cell::from(next_text(app.now, j)),
            Cell::from(
                j.last_run
                    .as_ref()
                    .map(|r| r.summary.clone())
                    .unwrap_or_default(),
            ),
        ]);
        if i == panel.cursor.selected {
            row.style(theme.selected())
        } else {
            row
        }
    });
    let widths = [
        Constraint::Length(17),
        Constraint::Length(4),
        Constraint::Length(15),
        Constraint::Length(14),
        Constraint::Length(8),
        Constraint::Length(26),
        Constraint::Fill(1),
    ];
    let header = Row::new([
        "JOB",
        "ON",
        "CRON",
        "LAST RUN",
        "RESULT",
        "NEXT RUN (UTC)",
        "SUMMARY",
    ])
    .style(theme.bold());
    frame.render_widget(Table::new(rows, widths).header(header).block(block), top);

    let Some(job) = list.jobs.get(panel.cursor.selected) else {
        return;
    };
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", job.name), theme.bold()),
            Span::raw(job.description.clone()),
        ]),
        Line::styled(
            format!(
                "{} ({}, {}) · catch-up {}",
                job.schedule,
                job.schedule_text.trim_end_matches('.'),
                job.timezone,
                if job.catch_up {
                    "on: a run missed while memd was down runs once at start"
                } else {
                    "off"
                }
            ),
            theme.dim(),
        ),
    ];
    match &job.last_run {
        None => lines.push(Line::styled("no run recorded yet", theme.dim())),
        Some(r) => {
            let style: Style = match r.outcome {
                JobOutcome::Failed => theme.bad(),
                _ => Style::new(),
            };
            lines.push(Line::from(vec![
                Span::styled("last run ", theme.bold()),
                Span::raw(format!(
                    "{} → {} ({}): ",
                    r.started_at.format("%Y-%m-%d %H:%M:%S"),
                    r.finished_at.format("%H:%M:%S"),
                    trigger_word(r.trigger)
                )),
                Span::styled(r.summary.clone(), style),
            ]));
            lines.extend(action_lines(&r.details).into_iter().map(Line::raw));
        }
    }
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::bordered().title(" selected job (memctl jobs history NAME for every run) "),
        ),
        detail,
    );
}

/// The Dashboard's short list: each enabled job's next run and last result.
pub fn draw_short(frame: &mut Frame, area: Rect, app: &App, theme: Theme) {
    let block = Block::bordered().title(" jobs · next run ");
    let inner = block.inner(area);
    let Some((list, _)) = super::panel::typed::<JobList>(
        frame,
        area,
        block.clone(),
        app.panels.get(&View::Jobs),
        theme,
    ) else {
        return;
    };
    frame.render_widget(block, area);
    let mut jobs: Vec<&JobInfo> = list.jobs.iter().filter(|j| j.enabled).collect();
    if jobs.is_empty() {
        message(frame, inner, "no job enabled", theme.dim());
        return;
    }
    jobs.sort_by_key(|j| j.next_run);
    let rows = jobs.into_iter().map(|j| {
        Row::new(vec![
            Cell::from(j.name.clone()),
            outcome_cell(j, theme),
            Cell::from(match j.next_run {
                Some(t) => format!("in {}", since(t, app.now)),
                None => "-".into(),
            }),
        ])
    });
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(17),
                Constraint::Length(8),
                Constraint::Fill(1),
            ],
        ),
        inner,
    );
}

/// The Model view's line about the next retraining.
pub fn next_retrain(app: &App) -> Option<String> {
    let value = app.panels.get(&View::Jobs)?.data.as_ref()?.as_ref().ok()?;
    let list: JobList = serde_json::from_value(value.clone()).ok()?;
    let job = list.jobs.into_iter().find(|j| j.name == "retrain")?;
    Some(match (job.enabled, job.next_run) {
        (true, Some(t)) => format!(
            "next retrain: {} (in {}, {}){}",
            t.format("%Y-%m-%d %H:%M UTC"),
            since(t, app.now),
            job.schedule,
            job.last_run
                .map(|r| format!(" · last: {}", r.summary))
                .unwrap_or_default()
        ),
        _ => "next retrain: not scheduled ([schedule.retrain] is off)".into(),
    })
}
