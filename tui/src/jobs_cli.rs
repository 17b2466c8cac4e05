//! `memctl jobs`: the scheduled jobs, running one now, and their history.

use crate::cli::{print_json, table};
use chrono::{DateTime, Utc};
use comfy_table::Cell;
use mem_protocol::Client;
use mem_protocol::jobs::{JobHistoryParams, JobOutcome, JobRun, RunJobParams};
use mem_protocol::methods::{NoParams, method};
use std::time::Duration;

/// A retraining can take minutes; a rotation waits for drains.
const RUN_TIMEOUT: Duration = Duration::from_secs(3600);

fn when(t: Option<DateTime<Utc>>) -> String {
    t.map_or("-".into(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string())
}

pub fn outcome_word(o: JobOutcome) -> &'static str {
    match o {
        JobOutcome::Succeeded => "ok",
        JobOutcome::Skipped => "skipped",
        JobOutcome::Failed => "FAILED",
        JobOutcome::Missed => "missed",
    }
}

/// A job run that ended in failure (exit code 1, like a daemon error).
#[derive(Debug, thiserror::Error)]
#[error("job {0} failed")]
pub struct JobFailed(pub String);

/// `memctl jobs`.
pub async fn list(client: &Client, json: bool) -> anyhow::Result<()> {
    let list = client.call::<method::JobsList>(NoParams {}).await?;
    if json {
        return print_json(&list);
    }
    let mut t = table(&[
        "JOB",
        "ON",
        "SCHEDULE",
        "LAST RUN",
        "RESULT",
        "NEXT RUN (UTC)",
    ]);
    for j in &list.jobs {
        let last = j.last_run.as_ref();
        t.add_row(vec![
            Cell::new(&j.name),
            Cell::new(if j.enabled { "yes" } else { "no" }),
            Cell::new(format!("{} ({})", j.schedule, j.schedule_text)),
            Cell::new(match j.running_since {
                Some(since) => format!("running since {}", when(Some(since))),
                None => when(last.map(|r| r.started_at)),
            }),
            Cell::new(last.map_or("-".to_string(), |r| {
                format!("{}: {}", outcome_word(r.outcome), r.summary)
            })),
            Cell::new(when(j.next_run)),
        ]);
    }
    crate::cli::print_table(&t);
    if let Some(tz) = list.jobs.first().map(|j| &j.timezone) {
        println!("cron expressions are read in {tz}; times shown in UTC");
    }
    Ok(())
}

fn print_run(r: &JobRun) {
    println!(
        "{} {} ({}, {} -> {}, {:.1} s): {}",
        r.job,
        outcome_word(r.outcome),
        memctl::ui::view::jobs::trigger_word(r.trigger),
        r.started_at.format("%Y-%m-%d %H:%M:%S"),
        r.finished_at.format("%H:%M:%S"),
        (r.finished_at - r.started_at).num_milliseconds() as f64 / 1000.0,
        r.summary
    );
    for line in memctl::ui::view::jobs::action_lines(&r.details) {
        println!("{line}");
    }
}

/// `memctl jobs run NAME`: waits for the run unless `--no-wait`; a failed run exits 1.
pub async fn run(client: &Client, name: String, no_wait: bool, json: bool) -> anyhow::Result<()> {
    if !no_wait && !json {
        eprintln!("running {name}... (memctl jobs history {name} shows it later too)");
    }
    let result = client
        .call_with_timeout::<method::JobsRun>(
            RunJobParams {
                name: name.clone(),
                wait: !no_wait,
            },
            RUN_TIMEOUT,
        )
        .await?;
    if json {
        print_json(&result)?;
    } else if let Some(r) = &result.run {
        print_run(r);
    } else {
        println!(
            "{name} started (run {}); see memctl jobs history {name}",
            result.id
        );
    }
    match result.run.map(|r| r.outcome) {
        Some(JobOutcome::Failed) => Err(JobFailed(name).into()),
        _ => Ok(()),
    }
}

/// `memctl jobs history [NAME]`.
pub async fn history(
    client: &Client,
    name: Option<String>,
    limit: Option<usize>,
    json: bool,
) -> anyhow::Result<()> {
    let h = client
        .call::<method::JobsHistory>(JobHistoryParams { name, limit })
        .await?;
    if json {
        return print_json(&h);
    }
    if h.runs.is_empty() {
        println!("no run recorded yet");
    }
    for r in &h.runs {
        print_run(r);
        if let Some(e) = &r.error {
            if !r.summary.contains(e.as_str()) {
                println!("  error: {e}");
            }
        }
    }
    Ok(())
}
