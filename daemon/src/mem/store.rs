//! The decision memory in `mem_knowledge/`:
//! - `core_memory_updates.txt`, the human log in the seed's line format:
//!   `[YYYY-MM-DD HH:MM:SS] Strategy: X - Decision: BUY BTCUSDT @ 65000 - Confidence: 0.85`,
//!   then `Entry:` and, when the trade ends, `CLOSED - Exit: ... - P&L: ...` lines;
//! - `decisions.jsonl`, the same structured: one `decision` line per decision and one
//!   `outcome` line when its trade closes (appended, never rewritten).
//!
//! Both are created 0600 and appended whole lines at a time; a torn last line (a crash
//! mid-write) is skipped on read. Reads take only the tail they need.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Bytes read from the end of `decisions.jsonl` at start: some 30,000 decisions.
const TAIL_BYTES: u64 = 16 << 20;

/// The human log is archived when it passes this size (`[mem] text_log_max_bytes`).
pub const DEFAULT_TEXT_LOG_MAX_BYTES: u64 = 64 << 20;

/// Whether an append waits for the disk. The socket's `mem.decide` answers after its lines
/// are on disk; a native replay writes thousands a second and syncs in batches
/// ([`MemoryStore::sync`]), so a crash loses at most the last batch of a replay that can
/// be run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    Sync,
    Batched,
}

pub const TEXT_LOG: &str = "core_memory_updates.txt";
pub const DECISIONS: &str = "decisions.jsonl";

/// One line of `decisions.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    Decision(Box<mem_protocol::mem::Decision>),
    Outcome(mem_protocol::mem::Outcome),
}

/// `mem_knowledge/`.
pub struct MemoryStore {
    dir: PathBuf,
    text_log_max_bytes: u64,
    /// Appends are serialised so lines never interleave.
    write: Mutex<()>,
}

/// Appends whole lines; after a torn last line (a crash mid-write) it first ends that
/// line, so the torn one stays alone and unreadable and the new ones are whole.
fn append(path: &Path, text: &str, durability: Durability) -> std::io::Result<()> {
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let len = f.metadata()?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))?;
        f.read_exact(&mut last)?;
        if last[0] != b'\n' {
            f.write_all(b"\n")?;
        }
    }
    let before = f.metadata()?.len();
    let written = f
        .write_all(text.as_bytes())
        .and_then(|()| match durability {
            Durability::Sync => f.sync_data(),
            Durability::Batched => Ok(()),
        });
    if written.is_err() {
        // A full disk wrote part of it: cut back, so no half line stays.
        let _ = f.set_len(before);
    }
    written
}

fn sync_file(path: &Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(f) => f.sync_data(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("[%Y-%m-%d %H:%M:%S]").to_string()
}

impl MemoryStore {
    pub fn open(data_dir: &Path, text_log_max_bytes: u64) -> std::io::Result<MemoryStore> {
        let dir = data_dir.join("mem_knowledge");
        std::fs::create_dir_all(&dir)?;
        Ok(MemoryStore {
            dir,
            text_log_max_bytes,
            write: Mutex::new(()),
        })
    }

    /// Flushes batched appends to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        let _guard = self.write.lock().expect("memory write lock");
        sync_file(&self.dir.join(TEXT_LOG))?;
        sync_file(&self.dir.join(DECISIONS))
    }

    /// Appends to the human log, first archiving it as
    /// `core_memory_updates.{YYYYMMDDTHHMMSS}.txt` when it has grown past its limit.
    fn append_text(&self, text: &str, durability: Durability) -> std::io::Result<()> {
        let path = self.dir.join(TEXT_LOG);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() >= self.text_log_max_bytes) {
            let stamp = Utc::now().format("%Y%m%dT%H%M%S%.3f");
            let archive = self.dir.join(format!("core_memory_updates.{stamp}.txt"));
            std::fs::rename(&path, &archive)?;
            tracing::info!(archive = %archive.display(), "the decision log reached its size limit; archived");
        }
        append(&path, text, durability)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Logs a decision in both files.
    pub fn record_decision(
        &self,
        d: &mem_protocol::mem::Decision,
        durability: Durability,
    ) -> std::io::Result<()> {
        let _guard = self.write.lock().expect("memory write lock");
        let t = stamp(d.at);
        let mut text = format!(
            "{t} Strategy: {} - Decision: {:?} {} @ {} - Confidence: {:.2}\n",
            d.strategy, d.action, d.symbol, d.price, d.confidence
        )
        .replace("Buy ", "BUY ")
        .replace("Sell ", "SELL ")
        .replace("Hold ", "HOLD ");
        text.push_str(&format!(
            "{t} Confidence: {:.2} - ML_Pred: {} - Historical: {}\n",
            d.confidence,
            d.ml_confidence.map_or("-".into(), |v| format!("{v:.2}")),
            d.memory_confidence
                .map_or("-".into(), |v| format!("{v:.2}")),
        ));
        text.push_str(&format!(
            "{t} Entry: {} - Size: {} - Stop: {}% - Target: {}%\n",
            d.price, d.position_size, d.stop_loss, d.take_profit
        ));
        self.append_text(&text, durability)?;
        let mut line =
            serde_json::to_string(&Entry::Decision(Box::new(d.clone()))).expect("serializes");
        line.push('\n');
        append(&self.dir.join(DECISIONS), &line, durability)
    }

    /// Logs a closed trade's outcome in both files.
    pub fn record_outcome(
        &self,
        o: &mem_protocol::mem::Outcome,
        learned: &[String],
        durability: Durability,
    ) -> std::io::Result<()> {
        let _guard = self.write.lock().expect("memory write lock");
        let t = stamp(o.closed_at);
        let mut text = format!(
            "{t} CLOSED - Exit: {} - P&L: {:+} ({:+.2}%) - Decision: {}\n",
            o.exit_price,
            o.pnl,
            o.pnl_pct * 100.0,
            o.decision_id
        );
        for lesson in learned {
            text.push_str(&format!("{t} LEARNED: {lesson}\n"));
        }
        self.append_text(&text, durability)?;
        let mut line = serde_json::to_string(&Entry::Outcome(o.clone())).expect("serializes");
        line.push('\n');
        append(&self.dir.join(DECISIONS), &line, durability)
    }

    /// Logs lessons learned outside a trade's outcome (the periodic review) in the text
    /// log, synced.
    pub fn record_lessons(&self, lessons: &[String]) -> std::io::Result<()> {
        let _guard = self.write.lock().expect("memory write lock");
        let t = stamp(chrono::Utc::now());
        let text: String = lessons
            .iter()
            .map(|l| format!("{t} LEARNED: {l}\n"))
            .collect();
        self.append_text(&text, Durability::Sync)
    }

    /// The decisions in the file's tail, oldest first, each with its outcome if one was
    /// recorded; unreadable lines are counted, not fatal.
    pub fn tail(&self) -> std::io::Result<(Vec<mem_protocol::mem::Decision>, usize)> {
        let path = self.dir.join(DECISIONS);
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((vec![], 0)),
            Err(e) => return Err(e),
        };
        let len = file.metadata()?.len();
        let start = len.saturating_sub(TAIL_BYTES);
        file.seek(SeekFrom::Start(start))?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let mut lines = text.lines();
        if start > 0 {
            lines.next(); // a partial first line
        }
        let (mut decisions, mut bad) = (Vec::new(), 0);
        let mut index = std::collections::HashMap::new();
        for line in lines {
            match serde_json::from_str::<Entry>(line) {
                Ok(Entry::Decision(d)) => {
                    index.insert(d.id.clone(), decisions.len());
                    decisions.push(*d);
                }
                Ok(Entry::Outcome(o)) => {
                    if let Some(&i) = index.get(&o.decision_id) {
                        let d: &mut mem_protocol::mem::Decision = &mut decisions[i];
                        d.outcome = Some(o);
                    }
                }
                Err(_) => bad += 1,
            }
        }
        Ok((decisions, bad))
    }
}
