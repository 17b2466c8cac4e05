//! Trades memd itself made (a learned strategy's paper trades, a native runner's trades)
//! that the registry refused because its store could not be reached (a database that is
//! down): kept in a file of the data directory and recorded again once the store answers,
//! so an outage loses none of them. A Freqtrade bot's trades need no outbox: the bot keeps
//! them and its sync reads them again.
//!
//! Recording again is safe: the registry ignores a trade id it already has (a batch whose
//! commit was acknowledged by the database but not to memd is not counted twice).

use crate::linelog::{self, Durability};
use mem_protocol::registry::TradeRecord;
use mem_protocol::strategy::StrategyId;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The outbox file's mode (the registry's logs' own).
const MODE: u32 = 0o640;

/// One refused batch of one strategy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub id: StrategyId,
    /// Which part of memd made them (the audit's client when they are recorded).
    pub by: String,
    pub trades: Vec<TradeRecord>,
}

/// The batches waiting, in memory and (once [`Outbox::keep_in`] named it) in a file, one
/// JSON line a batch.
#[derive(Default)]
pub struct Outbox {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    file: Option<PathBuf>,
    held: Vec<Held>,
}

impl Outbox {
    /// Keeps the batches in `file` from now on, after the ones it already holds (left by a
    /// memd that stopped before it could record them). A torn last line (a crash during
    /// its write, never acknowledged as kept) is left out, as `linelog` reads.
    pub fn keep_in(&self, file: &Path) -> anyhow::Result<usize> {
        let mut found: Vec<Held> = linelog::read_json(file)?;
        let mut state = self.state.lock().expect("outbox lock");
        let kept = found.len();
        found.append(&mut state.held);
        state.held = found;
        state.file = Some(file.to_path_buf());
        write_all(file, &state.held)?;
        Ok(kept)
    }

    /// Keeps a refused batch (on disk before this returns, when there is a file) until
    /// [`Outbox::retry`] records it.
    pub fn keep(&self, held: Held) -> anyhow::Result<()> {
        let mut state = self.state.lock().expect("outbox lock");
        if let Some(file) = &state.file {
            let mut line = serde_json::to_vec(&held)?;
            line.push(b'\n');
            linelog::append(file, MODE, &line, Durability::Sync)?;
        }
        state.held.push(held);
        Ok(())
    }

    /// How many trades wait.
    pub fn trades(&self) -> usize {
        let state = self.state.lock().expect("outbox lock");
        state.held.iter().map(|h| h.trades.len()).sum()
    }

    /// Offers every batch to `record`, in the order they were kept, and keeps those it
    /// refuses (stopping at the first: the store is still down). Answers how many trades
    /// were handed over.
    pub fn retry(&self, mut record: impl FnMut(&Held) -> bool) -> anyhow::Result<usize> {
        let mut state = self.state.lock().expect("outbox lock");
        if state.held.is_empty() {
            return Ok(0);
        }
        let mut done = 0;
        let mut taken = 0;
        for held in &state.held {
            if !record(held) {
                break;
            }
            done += 1;
            taken += held.trades.len();
        }
        if done > 0 {
            state.held.drain(..done);
            if let Some(file) = &state.file {
                write_all(file, &state.held)?;
            }
        }
        Ok(taken)
    }
}

/// Replaces `file` with `held` (a temporary file renamed over it: a crash leaves the old
/// or the new, whole).
fn write_all(file: &Path, held: &[Held]) -> anyhow::Result<()> {
    let mut text = Vec::new();
    for h in held {
        serde_json::to_writer(&mut text, h)?;
        text.push(b'\n');
    }
    crate::datadir::write_atomic(file, &text, MODE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(id: u128, n: usize) -> Held {
        Held {
            id: StrategyId(uuid::Uuid::from_u128(id)),
            by: "memd native deployment".into(),
            trades: (0..n)
                .map(|i| TradeRecord {
                    trade_id: format!("t{id}-{i}"),
                    ..TradeRecord::default()
                })
                .collect(),
        }
    }

    #[test]
    fn batches_wait_in_their_file_until_recorded_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("outbox.jsonl");
        let outbox = Outbox::default();
        // One refused before the file was named is kept in it too.
        outbox.keep(batch(1, 2)).unwrap();
        assert_eq!(outbox.keep_in(&file).unwrap(), 0);
        outbox.keep(batch(2, 3)).unwrap();
        outbox.keep(batch(3, 1)).unwrap();
        assert_eq!(outbox.trades(), 6);

        // A memd started after a crash finds them, and a torn last line is skipped.
        let mut bytes = std::fs::read(&file).unwrap();
        bytes.extend_from_slice(b"{\"id\": \"00000000-");
        std::fs::write(&file, bytes).unwrap();
        let after_crash = Outbox::default();
        assert_eq!(after_crash.keep_in(&file).unwrap(), 3);

        // The store still down at the second batch: the first is gone, the rest wait.
        let mut offered = Vec::new();
        let taken = after_crash
            .retry(|h| {
                offered.push(h.id);
                offered.len() < 2
            })
            .unwrap();
        assert_eq!(taken, 2);
        assert_eq!(offered, vec![batch(1, 0).id, batch(2, 0).id]);
        assert_eq!(after_crash.trades(), 4);
        let again = Outbox::default();
        assert_eq!(again.keep_in(&file).unwrap(), 2);

        assert_eq!(after_crash.retry(|_| true).unwrap(), 4);
        assert_eq!(after_crash.trades(), 0);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "");
    }
}
