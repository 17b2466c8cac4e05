//! Watching the registry's metadata directory: a file added, changed or removed by hand
//! or by another program is reloaded (debounced), a broken one reported. The daemon's
//! own atomic writes are recognised by the registry and cause nothing.

use crate::registry::Registry;
use notify::RecursiveMode;
use notify_debouncer_mini::{DebounceEventResult, new_debouncer};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// How long changes must settle before a file is re-read (an editor writes in steps).
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Keeps the watcher alive; dropping it stops watching.
pub struct Watcher {
    _debouncer: notify_debouncer_mini::Debouncer<notify::RecommendedWatcher>,
}

/// Starts watching `registry`'s metadata directory.
pub fn watch_registry(registry: Arc<Registry>) -> anyhow::Result<Watcher> {
    let dir = registry.paths().metadata.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<BTreeSet<PathBuf>>();
    let mut debouncer = new_debouncer(DEBOUNCE, move |result: DebounceEventResult| match result {
        Ok(events) => {
            let _ = tx.send(events.into_iter().map(|e| e.path).collect());
        }
        Err(err) => warn!(%err, "file watching error"),
    })?;
    debouncer
        .watcher()
        .watch(&dir, RecursiveMode::NonRecursive)?;
    tokio::spawn(async move {
        while let Some(paths) = rx.recv().await {
            let registry = registry.clone();
            debug!(count = paths.len(), "metadata files changed");
            let _ = tokio::task::spawn_blocking(move || {
                for path in paths {
                    registry.reload_file(&path);
                }
            })
            .await;
        }
    });
    Ok(Watcher {
        _debouncer: debouncer,
    })
}
