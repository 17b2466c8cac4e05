//! The decision memory in `mem_knowledge/`:
//! - `core_memory_updates.txt`, the human log in the seed's line format:
//!   `[YYYY-MM-DD HH:MM:SS] Strategy: X - Decision: BUY BTCUSDT @ 65000 - Confidence: 0.85`,
//!   then `Entry:` and, when the trade ends, `CLOSED - Exit: ... - P&L: ...` lines;
//! - `decisions.jsonl`, the same structured: one `decision` line per decision and one
//!   `outcome` line when its trade closes (appended, never rewritten).
//!
//! Both are created 0600 and are [`crate::linelog`]s: whole lines appended, a torn last
//! line (a crash mid-write) cut before the next append and never read. Reads take only
//! the tail they need.
//!
//! With `[mem.encryption] encrypt = true` every append is one encrypted record, a line of its own
//! ([`super::crypt`]); [`MemoryStore::open_at_rest`] checks the key against the files at
//! start and converts the directory when `encrypt` changed. The rest of the daemon sees
//! the same lines either way.

use super::archive::{self, Limits, Log};
use super::crypt::{self, AtRestSettings, Codec, Key};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};

/// Bytes read from the end of `decisions.jsonl` at start: some 30,000 decisions.
const TAIL_BYTES: u64 = 16 << 20;

/// Whether an append waits for the disk. The socket's `mem.decide` answers after its lines
/// are on disk; a native replay writes thousands a second and syncs in batches
/// ([`MemoryStore::sync`]), so a crash loses at most the last batch of a replay that can
/// be run again.
pub use crate::linelog::Durability;

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
    /// When the logs are archived, and for how long archives are kept.
    limits: Limits,
    /// When each log's first record was written (text log, decisions), for its age.
    started: Mutex<[Option<DateTime<Utc>>; 2]>,
    /// Held while archives are compressed or deleted (a thread of its own), and by what
    /// must see the files still: a key rotation, a backup's copy. Taken before `write`.
    tidying: Arc<Mutex<()>>,
    /// The threads tidying archives, joined when the store is dropped (a stop waits for a
    /// compression under way rather than leave it to the next start).
    tidy_threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Plain, or the key the files are encrypted with (replaced by a key rotation).
    codec: RwLock<Codec>,
    /// Appends are serialised so lines never interleave.
    write: Mutex<()>,
    /// Synced decisions written at the same moment share one sync of each file.
    group: GroupSync,
}

impl Drop for MemoryStore {
    fn drop(&mut self) {
        for thread in self
            .tidy_threads
            .get_mut()
            .expect("memory tidy threads lock")
            .drain(..)
        {
            let _ = thread.join();
        }
    }
}

/// A group commit: a synced append waits until a sync that started after it has ended;
/// the appends of many callers at once are made durable by one `fdatasync` of each file
/// (fifty bots deciding at one candle close wait for a few syncs, not a hundred in a row).
#[derive(Default)]
struct GroupSync {
    /// Appends written so far (counted under the write lock, once written).
    appended: AtomicU64,
    state: Mutex<SyncState>,
    finished: Condvar,
}

#[derive(Default)]
struct SyncState {
    /// Every append up to this count is on disk.
    synced: u64,
    /// A sync is under way.
    running: bool,
}

/// Appends whole lines to a memory file (0600), by the [`crate::linelog`] rules.
fn append(path: &Path, text: &[u8], durability: Durability) -> std::io::Result<()> {
    crate::linelog::append(path, 0o600, text, durability)
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
    /// Opens `data_dir/mem_knowledge` as `[mem.encryption]` says: finds (or, for a directory with
    /// nothing encrypted yet, creates) the key, checks it decrypts every encrypted file,
    /// and converts the files that are not as `encrypt` wants (see [`prepare`]). A missing
    /// or wrong key is an error naming the file and where the key came from.
    /// The logs' archives are tidied (compressed, the old ones deleted) before it answers.
    pub fn open_at_rest(
        data_dir: &Path,
        limits: Limits,
        at_rest: &AtRestSettings,
    ) -> std::io::Result<MemoryStore> {
        let dir = data_dir.join("mem_knowledge");
        std::fs::create_dir_all(&dir)?;
        let codec = prepare(&dir, at_rest).map_err(std::io::Error::other)?;
        let tidied = archive::tidy(&dir, &limits, Utc::now())?;
        if tidied != archive::Tidied::default() {
            tracing::info!(
                compressed = tidied.compressed,
                deleted = tidied.deleted,
                "the memory's log archives were tidied"
            );
        }
        let started = [archive::TEXT, archive::DECISIONS]
            .map(|log| first_record_at(&dir.join(log.file), log, &codec));
        Ok(MemoryStore {
            dir,
            limits,
            started: Mutex::new(started),
            tidying: Arc::default(),
            tidy_threads: Mutex::default(),
            codec: RwLock::new(codec),
            write: Mutex::new(()),
            group: GroupSync::default(),
        })
    }

    /// How the files are read and written.
    pub fn codec(&self) -> Codec {
        self.codec.read().expect("memory codec lock").clone()
    }

    /// A whole document of the directory (`parameter_updates.json`,
    /// `learned_strategies.json`), decrypted; `None` when absent.
    pub fn read_doc(&self, name: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .codec()
            .read_doc(&self.dir.join(name), name)?
            .map(|(bytes, _)| bytes))
    }

    /// Writes a whole document atomically (0600), encrypted when the memory is.
    pub fn write_doc(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        self.codec().write_doc(&self.dir.join(name), name, bytes)
    }

    /// An encrypted memory's document written in plain text by hand (and applied): it is
    /// encrypted now. Answers whether it was.
    pub fn seal_plain_doc(&self, name: &str) -> Result<bool, String> {
        let codec = self.codec();
        if !codec.is_encrypted() {
            return Ok(false);
        }
        match codec.read_doc(&self.dir.join(name), name)? {
            Some((bytes, true)) => {
                self.write_doc(name, &bytes).map_err(|e| format!("{e:#}"))?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Re-encrypts every memory file with a new key, then makes it the key (the steps and
    /// why each may be cut short: [`crypt`]'s module comment). Appends wait meanwhile; the
    /// caller holds what else writes the files (the service's state lock).
    pub fn rotate_key(&self) -> Result<KeyRotated, String> {
        let _tidying = self.tidying.lock().expect("memory tidying lock");
        let _guard = self.write.lock().expect("memory write lock");
        let old = self.codec();
        let key_file = match old.key_source() {
            None => {
                return Err("the memory is not encrypted ([mem.encryption] encrypt is off): there is no key to rotate".into());
            }
            Some(crypt::KeySource::Credential(path)) => {
                return Err(format!(
                    "the memory's key is the systemd credential {} ({}): memd cannot replace it. Stop memd, decrypt (encrypt = false), start and stop it, put the new key in the credential, then set encrypt = true",
                    crypt::CREDENTIAL,
                    path.display()
                ));
            }
            Some(crypt::KeySource::File(path)) => path.clone(),
        };
        // Lines waiting for a group sync are rewritten with the rest: durable first.
        let dir_error = |e: std::io::Error| format!("{}: {e}", self.dir.display());
        sync_file(&self.dir.join(TEXT_LOG)).map_err(dir_error)?;
        sync_file(&self.dir.join(DECISIONS)).map_err(dir_error)?;
        let next = crypt::next_key_path(&key_file);
        match std::fs::remove_file(&next) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot remove {}: {e}", next.display()));
            }
            _ => {}
        }
        // Named by where it will be: the codec outlives the rename.
        let new = Codec::encrypted(crypt::create_key(&next)?.moved_to(&key_file));
        let files = memory_files(&self.dir).map_err(dir_error)?;
        let mut records = 0;
        for (done, f) in files.iter().enumerate() {
            records += convert(f, &old, &new)?;
            stall_for_a_fault_test(done + 1);
        }
        crypt::install_next_key(&key_file)?;
        *self.codec.write().expect("memory codec lock") = new;
        Ok(KeyRotated {
            key_file,
            files: files.len(),
            records,
        })
    }

    /// Runs `f` while no line can be appended (a backup's copy).
    pub fn with_appends_paused<T>(&self, f: impl FnOnce() -> T) -> T {
        let _tidying = self.tidying.lock().expect("memory tidying lock");
        let _guard = self.write.lock().expect("memory write lock");
        f()
    }

    /// Flushes batched appends to disk.
    pub fn sync(&self) -> std::io::Result<()> {
        let _guard = self.write.lock().expect("memory write lock");
        sync_file(&self.dir.join(TEXT_LOG))?;
        sync_file(&self.dir.join(DECISIONS))
    }

    /// Makes every line appended so far durable, sharing the sync with the callers that
    /// wait at the same time (see [`GroupSync`]).
    pub fn sync_appended(&self) -> std::io::Result<()> {
        let mine = self.group.appended.load(Ordering::Acquire);
        let mut state = self.group.state.lock().expect("memory sync lock");
        loop {
            if state.synced >= mine {
                return Ok(());
            }
            if state.running {
                state = self.group.finished.wait(state).expect("memory sync lock");
                continue;
            }
            state.running = true;
            let upto = self.group.appended.load(Ordering::Acquire);
            drop(state);
            let synced = sync_file(&self.dir.join(TEXT_LOG))
                .and_then(|()| sync_file(&self.dir.join(DECISIONS)));
            state = self.group.state.lock().expect("memory sync lock");
            state.running = false;
            if synced.is_ok() {
                state.synced = state.synced.max(upto);
            }
            self.group.finished.notify_all();
            synced?;
        }
    }

    /// Counts an append written (under the write lock), for [`Self::sync_appended`].
    fn appended(&self) {
        self.group.appended.fetch_add(1, Ordering::Release);
    }

    /// Appends to the human log (archived first when it is due).
    fn append_text(&self, text: &str, durability: Durability) -> std::io::Result<()> {
        self.archive_if_due(archive::TEXT, Utc::now())?;
        append(
            &self.dir.join(TEXT_LOG),
            &self.codec().seal(TEXT_LOG, text.as_bytes()),
            durability,
        )
    }

    /// Appends a line to `decisions.jsonl` (archived first when it is due).
    fn append_entry(&self, entry: &Entry, durability: Durability) -> std::io::Result<()> {
        self.archive_if_due(archive::DECISIONS, Utc::now())?;
        let mut line = serde_json::to_string(entry).expect("serializes");
        line.push('\n');
        append(
            &self.dir.join(DECISIONS),
            &self.codec().seal(DECISIONS, line.as_bytes()),
            durability,
        )
    }

    /// Archives `log` when it has passed its size or its age (the caller holds the write
    /// lock), then compresses and prunes the archives on a thread of their own.
    fn archive_if_due(&self, log: Log, now: DateTime<Utc>) -> std::io::Result<()> {
        let path = self.dir.join(log.file);
        let slot = usize::from(log == archive::DECISIONS);
        let mut started = self.started.lock().expect("memory log ages lock");
        let Ok(meta) = std::fs::metadata(&path) else {
            started[slot] = Some(now); // the log starts with this append
            return Ok(());
        };
        let too_old = match (self.limits.max_age, started[slot]) {
            (Some(max_age), Some(at)) => now - at >= max_age,
            _ => false,
        };
        if meta.len() == 0 || (meta.len() < self.limits.max_bytes(log) && !too_old) {
            started[slot].get_or_insert(now);
            return Ok(());
        }
        // Lines waiting for a group sync go with the archive: make them durable first.
        sync_file(&path)?;
        let archived = archive::archive_now(&self.dir, log, now)?;
        started[slot] = Some(now);
        tracing::info!(archive = %archived.display(), bytes = meta.len(), too_old, "a memory log reached its size or age limit; archived");
        let (dir, limits, tidying) = (self.dir.clone(), self.limits.clone(), self.tidying.clone());
        let mut threads = self.tidy_threads.lock().expect("memory tidy threads lock");
        threads.retain(|t| !t.is_finished());
        let thread = std::thread::Builder::new()
            .name("memory-archives".into())
            .spawn(move || {
                let _tidying = tidying.lock().expect("memory tidying lock");
                match archive::tidy(&dir, &limits, Utc::now()) {
                    Ok(done) => tracing::info!(compressed = done.compressed, deleted = done.deleted, "the memory's log archives were tidied"),
                    Err(e) => tracing::warn!(error = %e, dir = %dir.display(), "cannot tidy the memory's log archives; tried again at the next archive or start"),
                }
            })?;
        threads.push(thread);
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Logs a decision in both files; a synced one through the group sync.
    pub fn record_decision(
        &self,
        d: &mem_protocol::mem::Decision,
        durability: Durability,
    ) -> std::io::Result<()> {
        self.append_decision(d)?;
        match durability {
            Durability::Sync => self.sync_appended(),
            Durability::Batched => Ok(()),
        }
    }

    /// Writes a decision's lines in both files, not synced: [`Self::sync_appended`] makes
    /// them durable (the memory does so once its own lock is released).
    pub fn append_decision(&self, d: &mem_protocol::mem::Decision) -> std::io::Result<()> {
        let durability = Durability::Batched;
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
        self.append_entry(&Entry::Decision(Box::new(d.clone())), durability)?;
        self.appended();
        Ok(())
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
        self.append_entry(&Entry::Outcome(o.clone()), durability)
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
        let _tidying = self.tidying.lock().expect("memory tidying lock");
        let path = self.dir.join(DECISIONS);
        // Encrypted records are base64 and a nonce and tag longer: read as many.
        let codec = self.codec();
        let tail = if codec.is_encrypted() {
            TAIL_BYTES * 3 / 2
        } else {
            TAIL_BYTES
        };
        let mut bytes = crate::linelog::read_tail(&path, tail)?;
        // A log archived lately is short: the window is filled from the newest archives.
        for older in archive::DECISIONS.archives(&self.dir)?.iter().rev() {
            let room = tail.saturating_sub(bytes.len() as u64);
            if room == 0 {
                break;
            }
            let mut before = archive::tail_of(&older.path, room)?;
            before.append(&mut bytes);
            bytes = before;
        }
        let lines = crate::linelog::lines(&bytes);
        let (mut decisions, mut bad) = (Vec::new(), 0);
        let mut index = std::collections::HashMap::new();
        for line in lines {
            // A line on disk: a plain line, or an encrypted record of whole lines.
            let Ok(record) = codec.open(DECISIONS, line) else {
                bad += 1;
                continue;
            };
            let mut pieces: Vec<&[u8]> = record.split(|b| *b == b'\n').collect();
            if pieces.len() > 1 && pieces.last().is_some_and(|p| p.is_empty()) {
                pieces.pop();
            }
            for piece in pieces {
                let entry = std::str::from_utf8(piece)
                    .ok()
                    .and_then(|t| serde_json::from_str::<Entry>(t.trim_end_matches('\r')).ok());
                match entry {
                    Some(Entry::Decision(d)) => {
                        index.insert(d.id.clone(), decisions.len());
                        decisions.push(*d);
                    }
                    Some(Entry::Outcome(o)) => {
                        if let Some(&i) = index.get(&o.decision_id) {
                            let d: &mut mem_protocol::mem::Decision = &mut decisions[i];
                            d.outcome = Some(o);
                        }
                    }
                    None => bad += 1,
                }
            }
        }
        Ok((decisions, bad))
    }
}

/// How a file of `mem_knowledge/` is written: appended records or one whole document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Lines,
    Document,
}

/// A non-empty file of `mem_knowledge/`: its path, the kind its records are bound to,
/// its shape, and whether its first line is an encrypted record.
struct Found {
    path: PathBuf,
    kind: &'static str,
    shape: Shape,
    sealed: bool,
}

/// The memory's non-empty files: the two logs, their archives, the documents.
fn memory_files(dir: &Path) -> std::io::Result<Vec<Found>> {
    let mut files = vec![
        (dir.join(DECISIONS), DECISIONS, Shape::Lines),
        (dir.join(TEXT_LOG), TEXT_LOG, Shape::Lines),
        (
            dir.join(super::learning::PARAMETERS_FILE),
            super::learning::PARAMETERS_FILE,
            Shape::Document,
        ),
        (
            dir.join(super::patterns::LEARNED_FILE),
            super::patterns::LEARNED_FILE,
            Shape::Document,
        ),
    ];
    for log in [archive::DECISIONS, archive::TEXT] {
        files.extend(
            log.archives(dir)?
                .into_iter()
                .map(|a| (a.path, log.file, Shape::Lines)),
        );
    }
    let mut found = Vec::new();
    for (path, kind, shape) in files {
        let file = match archive::reader(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mut first = Vec::new();
        file.take(64).read_until(b'\n', &mut first)?;
        if first.is_empty() {
            continue;
        }
        found.push(Found {
            path,
            kind,
            shape,
            sealed: crypt::is_sealed(&first),
        });
    }
    Ok(found)
}

/// When `log`'s first record was written, if it says (the start of its age).
fn first_record_at(path: &Path, log: Log, codec: &Codec) -> Option<DateTime<Utc>> {
    let mut first = Vec::new();
    archive::reader(path)
        .ok()?
        .take(1 << 20)
        .read_until(b'\n', &mut first)
        .ok()?;
    let record = codec.open(log.file, first.trim_ascii_end()).ok()?;
    archive::first_record_at(&record)
}

/// What a key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotated {
    pub key_file: PathBuf,
    /// Memory files re-encrypted.
    pub files: usize,
    /// Records (lines, documents) in them.
    pub records: usize,
}

/// Fault injection for the crash test of a key rotation: with
/// `MEMD_FAULT_STALL_KEY_ROTATION=N` in memd's environment a rotation stops for good
/// after re-encrypting N files (the test then kills memd). Unset in any real run.
fn stall_for_a_fault_test(files_done: usize) {
    let stall_after = std::env::var("MEMD_FAULT_STALL_KEY_ROTATION")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    if stall_after == Some(files_done) {
        tracing::warn!(
            files_done,
            "fault injection (MEMD_FAULT_STALL_KEY_ROTATION): the key rotation stalls here"
        );
        loop {
            std::thread::park();
        }
    }
}

/// A key rotation cut short (`{key_file}.next` on disk): every file still under the old
/// key is re-encrypted with the new one, which then becomes the key. Answers its codec.
fn finish_rotation(found: &[Found], old: Key, new: Key, key_file: &Path) -> Result<Codec, String> {
    let (old, new) = (
        Codec::encrypted(old),
        Codec::encrypted(new.moved_to(key_file)),
    );
    for f in found.iter().filter(|f| f.sealed) {
        if verify(f, &new).is_err() {
            verify(f, &old)?;
            convert(f, &old, &new)?;
        }
    }
    crypt::install_next_key(key_file)?;
    tracing::warn!(key_file = %key_file.display(), "a key rotation cut short by a stop was finished: the memory is under the new key");
    Ok(new)
}

/// Lines of an encrypted log tried against the key at start: a torn record (a crash
/// mid-append) may be one of them, so the key is wrong only when none decrypts.
const CHECKED_LINES: usize = 16;

/// Checks that `reader` decrypts an encrypted file (its document, or one of its first
/// complete lines).
fn verify(f: &Found, reader: &Codec) -> Result<(), String> {
    let io = |e: std::io::Error| format!("{}: {e}", f.path.display());
    let mut file = archive::reader(&f.path).map_err(io)?;
    if f.shape == Shape::Document {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io)?;
        return reader
            .open(f.kind, &bytes)
            .map(drop)
            .map_err(|e| reader.describe(&f.path, e));
    }
    let mut failure = None;
    for _ in 0..CHECKED_LINES {
        let mut line = Vec::new();
        file.read_until(b'\n', &mut line).map_err(io)?;
        if line.pop() != Some(b'\n') {
            break; // the end, or an unfinished (torn) last line
        }
        if !crypt::is_sealed(&line) {
            continue;
        }
        match reader.open(f.kind, &line) {
            Ok(_) => return Ok(()),
            Err(e) => failure = failure.or(Some(e)),
        }
    }
    match failure {
        Some(crypt::OpenError::Damaged) => Err(reader.describe(&f.path, crypt::OpenError::Auth)),
        Some(e) => Err(reader.describe(&f.path, e)),
        None => Ok(()),
    }
}

/// Rewrites a file as `target` wants it (encrypted or plain), atomically: a log line by
/// line (a line that cannot be read stays as it is, to be skipped like before), a
/// document whole. Answers the lines rewritten.
fn convert(f: &Found, reader: &Codec, target: &Codec) -> Result<usize, String> {
    let io = |e: std::io::Error| format!("cannot convert {}: {e}", f.path.display());
    if f.shape == Shape::Document {
        let (bytes, _) = reader
            .read_doc(&f.path, f.kind)?
            .ok_or_else(|| format!("{} vanished", f.path.display()))?;
        target
            .write_doc(&f.path, f.kind, &bytes)
            .map_err(|e| format!("{e:#}"))?;
        return Ok(1);
    }
    let name = f.path.file_name().expect("a file name").to_string_lossy();
    let tmp = f
        .path
        .with_file_name(format!(".{name}.tmp-{}", std::process::id()));
    let written = (|| -> std::io::Result<usize> {
        let mut input = archive::reader(&f.path)?;
        let mut out = archive::Writer::create(&tmp, archive::is_gz(&f.path))?;
        let mut count = 0;
        let mut line = Vec::new();
        loop {
            line.clear();
            if input.read_until(b'\n', &mut line)? == 0 {
                break;
            }
            if line.last() != Some(&b'\n') {
                break; // a torn last line: never read, and cut, as the next append would
            }
            let bare = &line[..line.len() - 1];
            let plain = match reader.open(f.kind, bare) {
                Ok(p) if crypt::is_sealed(bare) => {
                    let mut p = p.into_owned();
                    if p.last() != Some(&b'\n') {
                        p.push(b'\n');
                    }
                    p
                }
                Ok(_) => line.clone(),
                Err(_) => {
                    out.write_all(&line)?; // unreadable either way
                    continue;
                }
            };
            out.write_all(&target.seal(f.kind, &plain))?;
            count += 1;
        }
        out.finish()?;
        std::fs::rename(&tmp, &f.path)?;
        std::fs::File::open(f.path.parent().expect("a directory"))?.sync_all()?;
        Ok(count)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io)
}

/// Makes `mem_knowledge/` what `at_rest` asks, and answers how to read and write it:
/// - the key: the systemd credential or `key_file`, looked for when `encrypt` is on or a
///   file is encrypted; with `encrypt` on and no key, a new one is written to `key_file`
///   only if nothing is encrypted yet (else: an error, the files need their key);
/// - every encrypted file must decrypt with it: else "cannot decrypt (wrong key?)";
/// - files not as `encrypt` wants (plain ones when turned on, encrypted ones when turned
///   off) are rewritten, each atomically, and logged.
pub fn prepare(dir: &Path, at_rest: &AtRestSettings) -> Result<Codec, String> {
    let found = memory_files(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let first_sealed = found.iter().find(|f| f.sealed);
    let key = if at_rest.encrypt || first_sealed.is_some() {
        crypt::find_key(at_rest)?
    } else {
        None
    };
    let missing = || {
        format!(
            "{} does not exist and there is no systemd credential {} in $CREDENTIALS_DIRECTORY",
            at_rest.key_file.display(),
            crypt::CREDENTIAL
        )
    };
    let key = match (key, first_sealed) {
        (Some(key), _) => Some(key),
        (None, Some(f)) if at_rest.encrypt => {
            return Err(format!(
                "{}: encrypted, but the memory's key is missing: {}",
                f.path.display(),
                missing()
            ));
        }
        (None, Some(f)) => {
            return Err(format!(
                "{}: encrypted, and [mem.encryption] encrypt is off: no key to decrypt it with ({}); set encrypt = true with the key, or restore the key to decrypt the memory",
                f.path.display(),
                missing()
            ));
        }
        (None, None) if at_rest.encrypt => {
            let key = crypt::create_key(&at_rest.key_file)?;
            tracing::info!(
                key_file = %at_rest.key_file.display(),
                "[mem.encryption] encrypt: created a new key for the memory; keep a copy elsewhere: without it the memory cannot be read"
            );
            Some(key)
        }
        (None, None) => None,
    };
    let reader = match key {
        Some(key) => match key.source().clone() {
            crypt::KeySource::File(key_file) => match crypt::unfinished_rotation_key(&key_file)? {
                Some(new) => finish_rotation(&found, key, new, &key_file)?,
                None => Codec::encrypted(key),
            },
            crypt::KeySource::Credential(_) => Codec::encrypted(key),
        },
        None => Codec::plain(),
    };
    for f in found.iter().filter(|f| f.sealed) {
        verify(f, &reader)?;
    }
    let target = if at_rest.encrypt {
        reader.clone()
    } else {
        Codec::plain()
    };
    for f in found.iter().filter(|f| f.sealed != at_rest.encrypt) {
        let lines = convert(f, &reader, &target)?;
        tracing::info!(
            file = %f.path.display(),
            lines,
            "{}",
            if at_rest.encrypt {
                "[mem.encryption] encrypt: a plain memory file was encrypted"
            } else {
                "[mem.encryption] encrypt is off: an encrypted memory file was decrypted"
            }
        );
    }
    if let Some(source) = target.key_source() {
        tracing::info!(key = %source, "the memory is encrypted at rest");
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mem_protocol::mem::{Decision, Outcome, SignalAction};
    use std::os::unix::fs::PermissionsExt;

    fn decision(n: usize) -> Decision {
        Decision {
            id: format!("d{n}"),
            at: "2026-11-22T10:00:00Z".parse().unwrap(),
            strategy: "momentum_secret".into(),
            symbol: "BTCUSDT".into(),
            action: SignalAction::Buy,
            price: 65000.0 + n as f64,
            base_confidence: 0.7,
            confidence: 0.85,
            ml_confidence: Some(0.8),
            memory_confidence: None,
            learned_pattern: None,
            position_size: 0.1,
            stop_loss: 2.0,
            take_profit: 4.0,
            reasoning: "a reason".into(),
            signature: None,
            model_version: None,
            observed: false,
            source: None,
            outcome: None,
        }
    }

    fn outcome(n: usize) -> Outcome {
        Outcome {
            decision_id: format!("d{n}"),
            closed_at: "2026-11-22T11:00:00Z".parse().unwrap(),
            exit_price: 66000.0,
            pnl: 10.0,
            pnl_pct: 0.01,
            win: true,
            exit_reason: None,
            duration_secs: None,
        }
    }

    fn encrypted(data: &Path) -> AtRestSettings {
        AtRestSettings {
            encrypt: true,
            key_file: data.join("memory.key"),
        }
    }

    fn open(data: &Path, at_rest: &AtRestSettings) -> std::io::Result<MemoryStore> {
        MemoryStore::open_at_rest(data, Limits::default(), at_rest)
    }

    fn write_some(store: &MemoryStore) {
        for n in 0..3 {
            store
                .record_decision(&decision(n), Durability::Sync)
                .unwrap();
        }
        store
            .record_outcome(&outcome(1), &["a lesson".into()], Durability::Batched)
            .unwrap();
        store.record_lessons(&["another lesson".into()]).unwrap();
        store.sync().unwrap();
    }

    fn check_read(store: &MemoryStore) {
        let (decisions, bad) = store.tail().unwrap();
        assert_eq!(bad, 0);
        assert_eq!(decisions.len(), 3);
        assert_eq!(decisions[2], decision(2));
        assert_eq!(decisions[1].outcome, Some(outcome(1)));
    }

    /// A file's text (an archive's decompressed).
    fn text(path: &Path) -> String {
        let mut text = String::new();
        archive::reader(path)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[test]
    fn synced_decisions_made_at_once_share_syncs_and_all_land() {
        let data = tempfile::tempdir().unwrap();
        let store =
            std::sync::Arc::new(open(data.path(), &AtRestSettings::plain(data.path())).unwrap());
        let threads: Vec<_> = (0..16)
            .map(|n| {
                let store = store.clone();
                std::thread::spawn(move || store.record_decision(&decision(n), Durability::Sync))
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let state = store.group.state.lock().unwrap();
        assert_eq!(state.synced, 16, "every append is known synced");
        assert!(!state.running);
        drop(state);
        let (decisions, torn) = store.tail().unwrap();
        assert_eq!((decisions.len(), torn), (16, 0));
    }

    #[test]
    fn plain_and_encrypted_round_trip() {
        let plain = tempfile::tempdir().unwrap();
        let store = open(plain.path(), &AtRestSettings::plain(plain.path())).unwrap();
        write_some(&store);
        check_read(&store);
        assert!(text(&store.dir().join(TEXT_LOG)).contains("Decision: BUY BTCUSDT"));
        assert!(!plain.path().join("memory.key").exists());

        let data = tempfile::tempdir().unwrap();
        let store = open(data.path(), &encrypted(data.path())).unwrap();
        let key = data.path().join("memory.key");
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        write_some(&store);
        check_read(&store);
        for file in [TEXT_LOG, DECISIONS] {
            let on_disk = text(&store.dir().join(file));
            for fragment in [
                "momentum_secret",
                "BTCUSDT",
                "Decision:",
                "{\"kind\"",
                "lesson",
            ] {
                assert!(!on_disk.contains(fragment), "{file} holds {fragment}");
            }
            assert!(on_disk.lines().all(|l| l.starts_with("enc1:")), "{on_disk}");
        }
        // Again, with the key it made.
        check_read(&open(data.path(), &encrypted(data.path())).unwrap());
        // Documents: one record.
        store
            .write_doc("parameter_updates.json", b"{\"x\": 1}")
            .unwrap();
        let on_disk = text(&store.dir().join("parameter_updates.json"));
        assert!(on_disk.starts_with("enc1:") && !on_disk.contains("\"x\""));
        assert_eq!(
            store.read_doc("parameter_updates.json").unwrap().unwrap(),
            b"{\"x\": 1}"
        );
        let updates =
            crate::mem::learning::ParameterUpdates::with_codec(store.dir(), store.codec());
        assert_eq!(updates.history().unwrap(), serde_json::json!({"x": 1}));
    }

    #[test]
    fn a_torn_encrypted_last_line_is_cut_and_appends_go_on() {
        let data = tempfile::tempdir().unwrap();
        let store = open(data.path(), &encrypted(data.path())).unwrap();
        write_some(&store);
        // A crash in the middle of the next record.
        let path = store.dir().join(DECISIONS);
        let sealed = store
            .codec()
            .seal(DECISIONS, b"{\"kind\":\"decision\"}\n")
            .into_owned();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, &sealed[..sealed.len() / 2]).unwrap();
        drop(f);
        let store = open(data.path(), &encrypted(data.path())).unwrap();
        let (decisions, bad) = store.tail().unwrap();
        assert_eq!((decisions.len(), bad), (3, 0), "a torn tail is not read");
        store
            .record_decision(&decision(3), Durability::Sync)
            .unwrap();
        let (decisions, bad) = store.tail().unwrap();
        assert_eq!((decisions.len(), bad), (4, 0), "the torn tail was cut");
        assert_eq!(decisions[3], decision(3));
        // A file that is one torn record: cut to nothing, then the new record.
        let data = tempfile::tempdir().unwrap();
        let store = open(data.path(), &encrypted(data.path())).unwrap();
        let path = store.dir().join(DECISIONS);
        std::fs::write(&path, &sealed[..sealed.len() / 2]).unwrap();
        store
            .record_decision(&decision(0), Durability::Sync)
            .unwrap();
        let store = open(data.path(), &encrypted(data.path())).unwrap();
        assert_eq!(store.tail().unwrap(), (vec![decision(0)], 0));
    }

    #[test]
    fn a_wrong_or_missing_key_is_an_error_naming_the_file() {
        let data = tempfile::tempdir().unwrap();
        write_some(&open(data.path(), &encrypted(data.path())).unwrap());
        let other = data.path().join("other.key");
        crypt::create_key(&other).unwrap();
        let err = open(
            data.path(),
            &AtRestSettings {
                encrypt: true,
                key_file: other.clone(),
            },
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("mem_knowledge/decisions.jsonl")
                && err.contains("cannot decrypt")
                && err.contains(&other.display().to_string())
                && err.contains("wrong key"),
            "{err}"
        );
        // No key at all: an error, and no new key over encrypted data.
        let gone = data.path().join("gone.key");
        let err = open(
            data.path(),
            &AtRestSettings {
                encrypt: true,
                key_file: gone.clone(),
            },
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("encrypted") && err.contains(&gone.display().to_string()),
            "{err}"
        );
        assert!(!gone.exists());
        // A key file others can read.
        let key = data.path().join("memory.key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = open(data.path(), &encrypted(data.path()))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("0640") && err.contains("memory.key"), "{err}");
    }

    #[test]
    fn turning_encryption_on_and_off_converts_the_directory() {
        let data = tempfile::tempdir().unwrap();
        let store = open(data.path(), &AtRestSettings::plain(data.path())).unwrap();
        write_some(&store);
        store.write_doc("learned_strategies.json", b"{}").unwrap();
        std::fs::write(
            store
                .dir()
                .join("core_memory_updates.20260101T000000.000.txt"),
            "[2026-01-01 00:00:00] Strategy: momentum_secret - archived\n",
        )
        .unwrap();
        let plain_log = text(&store.dir().join(TEXT_LOG));

        let store = open(data.path(), &encrypted(data.path())).unwrap();
        check_read(&store);
        for entry in std::fs::read_dir(store.dir()).unwrap() {
            let path = entry.unwrap().path();
            let on_disk = text(&path);
            assert!(on_disk.starts_with("enc1:"), "{}", path.display());
            assert!(!on_disk.contains("momentum_secret"), "{}", path.display());
        }
        assert_eq!(
            store.read_doc("learned_strategies.json").unwrap().unwrap(),
            b"{}"
        );

        // Encrypted files with encryption off: decrypted with the key still there.
        let store = open(data.path(), &AtRestSettings::plain(data.path())).unwrap();
        check_read(&store);
        assert_eq!(text(&store.dir().join(TEXT_LOG)), plain_log);
        assert_eq!(text(&store.dir().join("learned_strategies.json")), "{}");

        // Without the key, encrypted files cannot be read: an error, not a silent skip.
        let store = open(data.path(), &encrypted(data.path())).unwrap();
        drop(store);
        std::fs::remove_file(data.path().join("memory.key")).unwrap();
        let err = open(data.path(), &AtRestSettings::plain(data.path()))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("encrypt is off"), "{err}");
    }

    /// An encrypted memory with each kind of file: both logs, an archive, a document.
    fn encrypted_memory(data: &Path) -> MemoryStore {
        let store = open(data, &encrypted(data)).unwrap();
        write_some(&store);
        store
            .write_doc("learned_strategies.json", b"{\"a\": 1}")
            .unwrap();
        std::fs::write(
            store
                .dir()
                .join("core_memory_updates.20260101T000000.000.txt"),
            store
                .codec()
                .seal(TEXT_LOG, b"[2026-01-01 00:00:00] archived\n"),
        )
        .unwrap();
        store
    }

    fn key_of(data: &Path) -> Vec<u8> {
        std::fs::read(data.join("memory.key")).unwrap()
    }

    #[test]
    fn a_key_rotation_re_encrypts_every_file_and_the_old_key_reads_none() {
        let data = tempfile::tempdir().unwrap();
        let store = encrypted_memory(data.path());
        let old_key = key_of(data.path());
        let old_codec = store.codec();

        let rotated = store.rotate_key().unwrap();
        assert_eq!(
            (rotated.files, rotated.key_file.clone()),
            (4, data.path().join("memory.key"))
        );
        assert_ne!(key_of(data.path()), old_key);
        assert!(!crypt::next_key_path(&rotated.key_file).exists());
        assert_eq!(
            std::fs::metadata(&rotated.key_file)
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        // The running store reads and appends with the new key; a new one opens with it.
        check_read(&store);
        store
            .record_lessons(&["after the rotation".into()])
            .unwrap();
        for found in memory_files(store.dir()).unwrap() {
            assert!(
                verify(&found, &store.codec()).is_ok(),
                "{}",
                found.path.display()
            );
            assert!(
                verify(&found, &old_codec).is_err(),
                "{}",
                found.path.display()
            );
        }
        drop(store);
        let store = open(data.path(), &encrypted(data.path())).unwrap();
        check_read(&store);
        assert_eq!(
            store.read_doc("learned_strategies.json").unwrap().unwrap(),
            b"{\"a\": 1}"
        );
        assert!(text(&store.dir().join(TEXT_LOG)).starts_with("enc1:"));

        // Nothing to rotate in a plain memory.
        let plain = tempfile::tempdir().unwrap();
        let store = open(plain.path(), &AtRestSettings::plain(plain.path())).unwrap();
        let err = store.rotate_key().unwrap_err();
        assert!(err.contains("not encrypted"), "{err}");
    }

    /// A rotation stopped after any number of files (memd killed): the next start finishes
    /// it, and the memory reads as before under the new key.
    #[test]
    fn a_key_rotation_cut_short_after_any_file_is_finished_at_the_next_start() {
        for cut_after in 0..=4 {
            let data = tempfile::tempdir().unwrap();
            let store = encrypted_memory(data.path());
            let old = store.codec();
            let key_file = data.path().join("memory.key");
            let next = crypt::next_key_path(&key_file);
            // The rotation's steps as `rotate_key` takes them, stopped after `cut_after` files.
            let new = Codec::encrypted(crypt::create_key(&next).unwrap());
            let files = memory_files(store.dir()).unwrap();
            assert_eq!(files.len(), 4);
            for f in files.iter().take(cut_after) {
                convert(f, &old, &new).unwrap();
            }
            drop(store);
            let new_key = std::fs::read(&next).unwrap();

            let store = open(data.path(), &encrypted(data.path())).unwrap();
            check_read(&store);
            assert_eq!(key_of(data.path()), new_key, "cut after {cut_after} files");
            assert!(!next.exists());
            for found in memory_files(store.dir()).unwrap() {
                assert!(verify(&found, &new).is_ok(), "{}", found.path.display());
            }
        }
        // Cut short while the new key was being written: nothing was re-encrypted yet.
        let data = tempfile::tempdir().unwrap();
        let store = encrypted_memory(data.path());
        let old_key = key_of(data.path());
        drop(store);
        let next = crypt::next_key_path(&data.path().join("memory.key"));
        std::fs::write(&next, "0123").unwrap();
        let store = open(data.path(), &encrypted(data.path())).unwrap();
        check_read(&store);
        assert_eq!(key_of(data.path()), old_key);
        assert!(!next.exists());
    }

    /// Past its size, and past its age, each log is archived and compressed; the archives
    /// past their keep are deleted; a restart loads the same decisions as before, their
    /// outcomes joined across an archive's edge.
    #[test]
    fn logs_are_archived_by_size_and_age_and_the_start_loads_the_same_window() {
        let data = tempfile::tempdir().unwrap();
        let limits = Limits {
            text_max_bytes: 4096,
            decisions_max_bytes: 4096,
            max_age: Some(chrono::Duration::days(1)),
            keep: Some(chrono::Duration::days(30)),
        };
        let open_small =
            || MemoryStore::open_at_rest(data.path(), limits.clone(), &encrypted(data.path()));
        let store = open_small().unwrap();
        for n in 0..40 {
            store
                .record_decision(&decision(n), Durability::Batched)
                .unwrap();
            if n > 0 {
                store
                    .record_outcome(&outcome(n - 1), &[], Durability::Batched)
                    .unwrap();
            }
        }
        store.sync().unwrap();
        drop(store);
        let store = open_small().unwrap(); // the start tidies what a thread may still do
        let dir = store.dir().to_path_buf();
        let decision_archives = archive::DECISIONS.archives(&dir).unwrap();
        assert!(decision_archives.len() >= 5, "{decision_archives:?}");
        assert!(decision_archives.iter().all(|a| a.compressed));
        assert!(!archive::TEXT.archives(&dir).unwrap().is_empty());
        assert!(std::fs::metadata(dir.join(DECISIONS)).unwrap().len() < 4096 + 2048);
        let (decisions, bad) = store.tail().unwrap();
        assert_eq!(bad, 0);
        assert_eq!(decisions.len(), 40);
        assert_eq!(decisions.iter().filter(|d| d.outcome.is_some()).count(), 39);
        assert_eq!(decisions[7], {
            let mut d = decision(7);
            d.outcome = Some(outcome(7));
            d
        });

        // By age: a log whose first record is older than a day is archived at the next
        // append, however small.
        store.record_lessons(&["small".into()]).unwrap();
        let before = archive::TEXT.archives(&dir).unwrap().len();
        store.started.lock().unwrap()[0] = Some(Utc::now() - chrono::Duration::days(2));
        store.record_lessons(&["a day later".into()]).unwrap();
        assert_eq!(archive::TEXT.archives(&dir).unwrap().len(), before + 1);
        let log = text(&dir.join(TEXT_LOG));
        assert_eq!(log.lines().count(), 1, "{log}");
        let record = store
            .codec()
            .open(TEXT_LOG, log.trim_end().as_bytes())
            .unwrap()
            .into_owned();
        assert!(
            String::from_utf8(record)
                .unwrap()
                .contains("LEARNED: a day later")
        );

        // Past the keep: deleted at the next pass.
        let month_ago = Utc::now() - chrono::Duration::days(31);
        let old = archive::DECISIONS.archive_path(&dir, month_ago);
        std::fs::copy(&decision_archives[0].path, &old).unwrap();
        drop(store);
        let store = open_small().unwrap();
        assert!(!old.exists());
        assert!(!dir.join(format!("{}.gz", old.display())).exists());
        assert_eq!(store.tail().unwrap().0.len(), 40);
    }
}
