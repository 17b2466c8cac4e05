//! The persistent queue alerts are delivered from: `<data>/alerts/outbox.jsonl`.
//!
//! Invariants:
//! - an alert is on disk (`fdatasync`) before anyone is told it was raised: one raised
//!   just before a crash is sent after the restart;
//! - a line `{"raise": alert, "targets": [...]}` queues an alert for each target, a line
//!   `{"done": id, "target": t}` ends it for one (sent, or given up); what was raised and
//!   is not done is pending, in the order it was raised;
//! - the file is rewritten with only what is pending when it is opened (so it does not
//!   grow forever); it is written through [`linelog`](crate::linelog) (whole lines, a torn
//!   last line cut).

use super::rules::Alert;
use crate::linelog::{Durability, LineLog};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::path::Path;

/// One line of the outbox.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Line {
    Raise {
        raise: Box<Alert>,
        targets: Vec<String>,
    },
    Done {
        done: String,
        target: String,
    },
}

/// An alert waiting for one target.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub alert: Alert,
    pub target: String,
}

/// The queue, on disk and in memory.
pub struct Outbox {
    log: LineLog,
    pending: VecDeque<Pending>,
}

impl Outbox {
    /// Opens (or creates) the outbox at `path`, keeping only what is still pending.
    pub fn open(path: &Path) -> std::io::Result<Outbox> {
        let mut pending: VecDeque<Pending> = VecDeque::new();
        {
            let lines: Vec<Line> = crate::linelog::read_json(path)?;
            for line in lines {
                match line {
                    Line::Raise { raise, targets } => {
                        pending.extend(targets.into_iter().map(|target| Pending {
                            alert: (*raise).clone(),
                            target,
                        }))
                    }
                    Line::Done { done, target } => {
                        pending.retain(|p| !(p.alert.id == done && p.target == target))
                    }
                }
            }
        }
        Ok(Outbox {
            log: rewrite(path, &pending)?,
            pending,
        })
    }

    /// Rewrites the file with what is pending: the lines of alerts delivered everywhere
    /// are dropped (at open, and by the retention job: a daemon up for months would
    /// otherwise keep every alert it ever sent). Answers the bytes it holds now.
    pub fn compact(&mut self) -> std::io::Result<u64> {
        let path = self.log.path().to_path_buf();
        self.log = rewrite(&path, &self.pending)?;
        Ok(std::fs::metadata(&path)?.len())
    }

    /// Queues `alert` for each of `targets`, on disk first.
    pub fn raise(&mut self, alert: Alert, targets: Vec<String>) -> std::io::Result<()> {
        self.raise_all(&[(alert, targets)])
    }

    /// Queues each alert for its targets: a line each, written and synced together.
    pub fn raise_all(&mut self, alerts: &[(Alert, Vec<String>)]) -> std::io::Result<()> {
        let lines: Vec<Line> = alerts
            .iter()
            .map(|(alert, targets)| Line::Raise {
                raise: Box::new(alert.clone()),
                targets: targets.clone(),
            })
            .collect();
        self.append_all(&lines)?;
        for (alert, targets) in alerts {
            self.pending.extend(targets.iter().map(|target| Pending {
                alert: alert.clone(),
                target: target.clone(),
            }));
        }
        Ok(())
    }

    /// The oldest alert waiting for `target`.
    pub fn next_for(&self, target: &str) -> Option<Pending> {
        self.pending.iter().find(|p| p.target == target).cloned()
    }

    /// The oldest `max` alerts waiting for `target`, oldest first.
    pub fn waiting_for(&self, target: &str, max: usize) -> Vec<Pending> {
        self.pending
            .iter()
            .filter(|p| p.target == target)
            .take(max)
            .cloned()
            .collect()
    }

    /// Every delivery that waits, oldest first.
    pub fn pending(&self) -> impl Iterator<Item = &Pending> {
        self.pending.iter()
    }

    /// How many deliveries wait.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// `ids` are done for `target` (sent, or given up): a line each, written and synced
    /// together.
    pub fn done(&mut self, ids: &[&str], target: &str) -> std::io::Result<()> {
        self.pending
            .retain(|p| !(p.target == target && ids.contains(&p.alert.id.as_str())));
        let lines: Vec<Line> = ids
            .iter()
            .map(|id| Line::Done {
                done: id.to_string(),
                target: target.to_string(),
            })
            .collect();
        self.append_all(&lines)
    }

    fn append_all(&mut self, lines: &[Line]) -> std::io::Result<()> {
        let mut text = Vec::new();
        for line in lines {
            serde_json::to_writer(&mut text, line).map_err(std::io::Error::other)?;
            text.push(b'\n');
        }
        self.log.append(&text, Durability::Sync).map(drop)
    }
}

/// Writes `pending` whole to a new file, renamed over the one at `path`; answers the
/// log open on it.
fn rewrite(path: &Path, pending: &VecDeque<Pending>) -> std::io::Result<LineLog> {
    let fresh = path.with_extension("jsonl.new");
    let _ = std::fs::remove_file(&fresh);
    let mut rewritten = LineLog::open(&fresh, 0o600)?;
    let mut text = Vec::new();
    for p in pending {
        let line = Line::Raise {
            raise: Box::new(p.alert.clone()),
            targets: vec![p.target.clone()],
        };
        serde_json::to_writer(&mut text, &line).map_err(std::io::Error::other)?;
        text.push(b'\n');
    }
    rewritten.append(&text, Durability::Sync)?;
    std::fs::rename(&fresh, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    drop(rewritten);
    LineLog::open(path, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::rules::{Rule, Severity};

    fn alert(id: &str) -> Alert {
        Alert {
            id: id.into(),
            rule: Rule::BotFailed,
            severity: Severity::Critical,
            key: "k".into(),
            title: "t".into(),
            text: "x".into(),
            raised_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn what_was_raised_and_not_done_survives_a_reopen_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let mut o = Outbox::open(&path).unwrap();
        let targets = || vec!["log".to_string(), "webhook".to_string()];
        o.raise(alert("a"), targets()).unwrap();
        o.raise(alert("b"), targets()).unwrap();
        o.done(&["a"], "log").unwrap();
        o.done(&["a"], "webhook").unwrap();
        o.done(&["b"], "log").unwrap();
        drop(o);
        let o = Outbox::open(&path).unwrap();
        assert_eq!(o.len(), 1);
        assert_eq!(o.next_for("webhook").unwrap().alert.id, "b");
        assert!(o.next_for("log").is_none());
        let lines = std::fs::read_to_string(&path).unwrap();
        assert_eq!(lines.lines().count(), 1, "compacted: {lines}");
    }

    #[test]
    fn a_running_outbox_is_compacted_to_what_is_pending_and_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let mut o = Outbox::open(&path).unwrap();
        for i in 0..50 {
            let id = format!("sent{i}");
            o.raise(alert(&id), vec!["log".into()]).unwrap();
            o.done(&[id.as_str()], "log").unwrap();
        }
        o.raise(alert("waiting"), vec!["webhook".into()]).unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        let after = o.compact().unwrap();
        assert!(after * 20 < before, "{before} -> {after}");
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
        // Appends go on to the new file; a reopen sees the same.
        o.raise(alert("later"), vec!["webhook".into()]).unwrap();
        drop(o);
        let o = Outbox::open(&path).unwrap();
        let ids: Vec<String> = o.pending().map(|p| p.alert.id.clone()).collect();
        assert_eq!(ids, ["waiting", "later"]);
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.jsonl");
        let mut o = Outbox::open(&path).unwrap();
        o.raise(alert("a"), vec!["log".into()]).unwrap();
        drop(o);
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{\"raise\": {\"id\"").unwrap();
        let o = Outbox::open(&path).unwrap();
        assert_eq!(o.len(), 1);
    }
}
