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

/// Bytes read from the end of `decisions.jsonl` per lookup: a few thousand decisions.
const TAIL_BYTES: u64 = 4 << 20;

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
    /// Appends are serialised so lines never interleave.
    write: Mutex<()>,
}

/// Appends whole lines; after a torn last line (a crash mid-write) it first ends that
/// line, so the torn one stays alone and unreadable and the new ones are whole.
fn append(path: &Path, text: &str) -> std::io::Result<()> {
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
    f.write_all(text.as_bytes())?;
    f.sync_data()
}

fn stamp(at: DateTime<Utc>) -> String {
    at.format("[%Y-%m-%d %H:%M:%S]").to_string()
}

impl MemoryStore {
    pub fn open(data_dir: &Path) -> std::io::Result<MemoryStore> {
        let dir = data_dir.join("mem_knowledge");
        std::fs::create_dir_all(&dir)?;
        Ok(MemoryStore {
            dir,
            write: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Logs a decision in both files.
    pub fn record_decision(&self, d: &mem_protocol::mem::Decision) -> std::io::Result<()> {
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
        append(&self.dir.join("core_memory_updates.txt"), &text)?;
        let mut line =
            serde_json::to_string(&Entry::Decision(Box::new(d.clone()))).expect("serializes");
        line.push('\n');
        append(&self.dir.join("decisions.jsonl"), &line)
    }

    /// Logs a closed trade's outcome in both files.
    pub fn record_outcome(&self, o: &mem_protocol::mem::Outcome) -> std::io::Result<()> {
        let _guard = self.write.lock().expect("memory write lock");
        let t = stamp(o.closed_at);
        let text = format!(
            "{t} CLOSED - Exit: {} - P&L: {:+} ({:+.2}%) - Decision: {}\n",
            o.exit_price,
            o.pnl,
            o.pnl_pct * 100.0,
            o.decision_id
        );
        append(&self.dir.join("core_memory_updates.txt"), &text)?;
        let mut line = serde_json::to_string(&Entry::Outcome(o.clone())).expect("serializes");
        line.push('\n');
        append(&self.dir.join("decisions.jsonl"), &line)
    }

    /// The decisions in the file's tail, oldest first, each with its outcome if one was
    /// recorded; unreadable lines are counted, not fatal.
    pub fn tail(&self) -> std::io::Result<(Vec<mem_protocol::mem::Decision>, usize)> {
        let path = self.dir.join("decisions.jsonl");
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
