//! Logging: `tracing` to stderr (journald adds the time and unit there) and to a daily
//! rotated file under the log directory, kept for a configured number of days.

use anyhow::Context;
use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

/// Installs the global subscriber. Keep the guard alive: dropping it flushes the file.
pub fn init(level: &str, log_dir: &Path, keep_files: usize) -> anyhow::Result<WorkerGuard> {
    crate::datadir::ensure_dir(log_dir, 0o750)?;
    let filter = match std::env::var("MEMD_LOG") {
        Ok(spec) if !spec.is_empty() => EnvFilter::try_new(&spec)
            .with_context(|| format!("MEMD_LOG={spec:?} is not a valid filter"))?,
        // The cron crate logs its own bookkeeping at info ("Job creator created"); ours
        // says what ran. A plain level quiets it; an explicit filter is taken as is.
        _ if !level.contains('=') && !level.contains(',') => {
            EnvFilter::try_new(format!("{level},tokio_cron_scheduler=warn"))
                .with_context(|| format!("log.level {level:?} is not a valid filter"))?
        }
        _ => EnvFilter::try_new(level)
            .with_context(|| format!("log.level {level:?} is not a valid filter"))?,
    };
    let appender = RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix("memd")
        .filename_suffix("log")
        .max_log_files(keep_files.max(1))
        .build(log_dir)
        .with_context(|| format!("cannot open a log file in {}", log_dir.display()))?;
    let (file_writer, guard) = tracing_appender::non_blocking(appender);
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let stderr_layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false);
    let stderr_layer = if under_journald {
        stderr_layer.without_time().boxed()
    } else {
        stderr_layer.boxed()
    };
    let file_layer = fmt::layer().with_writer(file_writer).with_ansi(false);
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr_layer)
        .with(file_layer)
        .try_init()
        .ok();
    Ok(guard)
}
