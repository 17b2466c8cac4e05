//! Watching files others may edit, debounced:
//! - the registry's metadata directory: a file added, changed or removed by hand or by
//!   another program is reloaded, a broken one reported; the daemon's own atomic writes
//!   are recognised by the registry and cause nothing;
//! - `mem_knowledge/`: every change is a `memory.changed` event; a parameter or learned
//!   strategy file edited by hand is checked and applied, or reported and ignored.

use crate::registry::Registry;
use notify::RecursiveMode;
use notify_debouncer_mini::{DebounceEventResult, new_debouncer};
use std::collections::BTreeSet;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// How long changes must settle before a file is re-read (an editor writes in steps).
pub const DEBOUNCE: Duration = Duration::from_millis(250);

/// Keeps the watcher alive; dropping it stops watching.
pub struct Watcher {
    _debouncer: notify_debouncer_mini::Debouncer<notify::RecommendedWatcher>,
}

/// Watches `dir` (not recursively) and hands each debounced batch of changed paths to
/// `on_batch`, called on a blocking thread, one batch at a time.
fn watch_dir(
    dir: &Path,
    on_batch: impl FnMut(BTreeSet<PathBuf>) + Send + 'static,
) -> anyhow::Result<Watcher> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<BTreeSet<PathBuf>>();
    let mut debouncer = new_debouncer(DEBOUNCE, move |result: DebounceEventResult| match result {
        Ok(events) => {
            let _ = tx.send(events.into_iter().map(|e| e.path).collect());
        }
        Err(err) => warn!(%err, "file watching error"),
    })?;
    debouncer
        .watcher()
        .watch(dir, RecursiveMode::NonRecursive)?;
    let handler = Arc::new(std::sync::Mutex::new(on_batch));
    tokio::spawn(async move {
        while let Some(paths) = rx.recv().await {
            let handler = handler.clone();
            let _ = tokio::task::spawn_blocking(move || {
                (handler.lock().expect("watch handler lock"))(paths)
            })
            .await;
        }
    });
    Ok(Watcher {
        _debouncer: debouncer,
    })
}

/// Starts watching `registry`'s metadata directory.
pub fn watch_registry(registry: Arc<Registry>) -> anyhow::Result<Watcher> {
    let Some(files) = registry.files() else {
        anyhow::bail!("the registry is not on files: there is nothing to watch");
    };
    let dir = files.paths().metadata.clone();
    watch_dir(&dir, move |paths| {
        debug!(count = paths.len(), "metadata files changed");
        for path in paths {
            registry.reload_file(&path);
        }
    })
}

/// Starts watching the memory's directory.
pub fn watch_memory(memory: Arc<crate::mem::service::Memory>) -> anyhow::Result<Watcher> {
    let dir = memory.dir().to_path_buf();
    // Reading a file is an event too (inotify's access and close): a file counts as
    // changed only when its size, time or inode did.
    let mut seen: HashMap<String, (u64, i64, i64, u64)> = HashMap::new();
    watch_dir(&dir.clone(), move |paths| {
        // Temporary files of atomic writes come and go; only the files themselves count.
        let files: BTreeSet<String> = paths
            .iter()
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .filter(|name| !name.starts_with('.') && !name.contains(".tmp"))
            .filter(|name| {
                use std::os::unix::fs::MetadataExt;
                let Ok(m) = std::fs::metadata(dir.join(name)) else {
                    return false;
                };
                let stamp = (m.len(), m.mtime(), m.mtime_nsec(), m.ino());
                seen.insert(name.clone(), stamp) != Some(stamp)
            })
            .collect();
        for file in files {
            memory.reload(&file);
        }
    })
}
