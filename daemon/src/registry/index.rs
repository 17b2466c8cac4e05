//! The in-memory index of the registry: what lists, filters, sorts and searches need,
//! without touching the disk. The full document stays in its file.
//!
//! Layout, chosen for 100,000 strategies (see docs/benchmarks/history.md):
//! - `records[i]`: the strategy's list entry, built once and shared (`Arc`), so a page of
//!   results is a few pointer copies;
//! - `keys[i]`: compact filter and sort keys (interned lowercase words, plain numbers), so
//!   a filter scans a few megabytes instead of chasing strings;
//! - `name_order`/`name_rank`: strategies in display-name order, kept up to date on every
//!   change, so a name sort is a walk and ties break on one integer;
//! - `chunks`: the lowercase search text of 1,024 strategies per buffer, scanned with
//!   `memchr::memmem` at full speed; a changed strategy rebuilds only its chunk.
//!
//! Search semantics: `mem_protocol::search`, the rule the terminal UI follows too. Every
//! query word must occur (case-insensitively) in the name, display name, tags, category,
//! sub-category, description or keywords; a word of a name or tag ranks first, a letter
//! run inside another word last. Without a sort key, a search lists best matches first.

use mem_protocol::methods::{ListStrategiesParams, SortKey, SortOrder, StrategyList};
use mem_protocol::search;
use mem_protocol::strategy::{
    Origin, StrategyDocument, StrategyId, StrategyStatus, StrategySummary,
};
use memchr::memmem;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

/// Strategies per search-text buffer.
const CHUNK: usize = 1024;

/// The fields of a strategy the index needs, borrowed from a document or from a file's
/// bytes (start-up reads only these; see `registry::load_index_record`).
#[derive(Debug, Clone)]
pub struct IndexFields<'a> {
    pub id: StrategyId,
    pub name: Cow<'a, str>,
    pub display_name: Cow<'a, str>,
    pub description: Cow<'a, str>,
    pub version: Cow<'a, str>,
    pub status: StrategyStatus,
    pub origin: Option<Origin>,
    pub category: Cow<'a, str>,
    pub sub_category: Cow<'a, str>,
    pub tags: Vec<Cow<'a, str>>,
    pub asset_classes: Vec<Cow<'a, str>>,
    pub keywords: Vec<Cow<'a, str>>,
    pub language: Cow<'a, str>,
    pub mem_enabled: bool,
    pub sharpe: Option<f64>,
    pub win_rate: Option<f64>,
    pub measured: Option<mem_protocol::strategy::MeasuredBacktest>,
    pub risk_level: Option<Cow<'a, str>>,
    pub live_trades: u64,
    pub total_pnl: Option<f64>,
    pub live_sharpe: Option<f64>,
    pub live_win_rate: Option<f64>,
    pub last_used_at: Option<Cow<'a, str>>,
}

impl<'a> IndexFields<'a> {
    /// The fields of a parsed document.
    pub fn of(doc: &'a StrategyDocument) -> IndexFields<'a> {
        let s = &doc.strategy;
        let c = &s.classification;
        let b = |v: &'a String| Cow::Borrowed(v.as_str());
        IndexFields {
            id: s.id,
            name: b(&s.name),
            display_name: b(&s.display_name),
            description: b(&s.description),
            version: b(&s.version),
            status: s.status,
            origin: s.origin,
            category: b(&c.category),
            sub_category: b(&c.sub_category),
            tags: c.tags.iter().map(b).collect(),
            asset_classes: c.asset_classes.iter().map(b).collect(),
            keywords: c.keywords.iter().map(b).collect(),
            language: b(&s.implementation.language),
            mem_enabled: s.mem_integration.enabled,
            sharpe: s.performance.backtest.sharpe_ratio,
            win_rate: s.performance.backtest.win_rate,
            measured: s.performance.backtest.measured.clone(),
            risk_level: s.risk_profile.risk_level.as_ref().map(b),
            live_trades: s.performance.live_trading.total_trades,
            total_pnl: s.performance.live_trading.total_pnl,
            live_sharpe: s.performance.live_trading.live_sharpe,
            live_win_rate: s.performance.live_trading.live_win_rate,
            last_used_at: s.metadata.last_used_at.as_ref().map(b),
        }
    }
}

/// What the index keeps of one strategy, besides its compact keys.
#[derive(Debug, Clone)]
pub struct Record {
    /// The list entry, shared with every list result that includes it.
    pub summary: Arc<StrategySummary>,
    /// Extra search words (not part of the list entry).
    keywords: Box<[Box<str>]>,
    asset_classes: Box<[Box<str>]>,
    /// Lowercase display name, the name order's key.
    sort_name: Box<str>,
    /// Hash of the file's bytes as last read or written, to tell our own writes from
    /// edits made by someone else.
    pub content_hash: u64,
}

impl Record {
    pub fn new(f: IndexFields<'_>, content_hash: u64) -> Record {
        let display_name = if f.display_name.is_empty() {
            f.name.to_string()
        } else {
            f.display_name.to_string()
        };
        let boxed = |v: &[Cow<'_, str>]| v.iter().map(|t| Box::<str>::from(&**t)).collect();
        let summary = StrategySummary {
            id: f.id,
            name: f.name.to_string(),
            display_name,
            description: f.description.to_string(),
            category: f.category.to_string(),
            sub_category: f.sub_category.to_string(),
            status: f.status,
            language: f.language.to_string(),
            origin: f.origin.unwrap_or(Origin::Imported),
            version: f.version.to_string(),
            tags: f.tags.iter().map(|t| t.to_string()).collect(),
            mem_enabled: f.mem_enabled,
            sharpe_ratio: f.sharpe,
            win_rate: f.win_rate,
            risk_level: f.risk_level.as_deref().map(str::to_string),
            live_trades: f.live_trades,
            total_pnl: f.total_pnl,
            live_sharpe_ratio: f.live_sharpe,
            live_win_rate: f.live_win_rate,
            last_used_at: f.last_used_at.as_deref().map(str::to_string),
            is_deployed: false,
            measured: f.measured.map(Box::new),
        };
        Record {
            sort_name: summary.display_name.to_lowercase().into_boxed_str(),
            summary: Arc::new(summary),
            keywords: boxed(&f.keywords),
            asset_classes: boxed(&f.asset_classes),
            content_hash,
        }
    }

    /// Appends this record's search text (`mem_protocol::search::push_search_text`, with
    /// the keywords the list entry lacks).
    fn push_search_text(&self, out: &mut Vec<u8>) {
        search::push_search_text(out, &self.summary, self.keywords.iter().map(|k| &**k));
    }

    /// The record of a parsed document whose file bytes hash to `content_hash`.
    pub fn from_doc(doc: &StrategyDocument, content_hash: u64) -> Record {
        Record::new(IndexFields::of(doc), content_hash)
    }

    pub fn id(&self) -> StrategyId {
        self.summary.id
    }

    /// The search words beside the list entry (keywords, asset classes).
    #[cfg(test)]
    pub fn search_words(&self) -> (&[Box<str>], &[Box<str>]) {
        (&self.keywords, &self.asset_classes)
    }
}

/// Lowercase words (categories, languages, tags, ...) as small integers.
#[derive(Debug, Default)]
struct Interner {
    ids: HashMap<Box<str>, u32>,
}

impl Interner {
    fn intern(&mut self, word: &str) -> u32 {
        if !word
            .bytes()
            .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
        {
            if let Some(&id) = self.ids.get(word) {
                return id; // the usual case: a known lowercase word, no allocation
            }
        }
        let lower = word.to_lowercase();
        let next = self.ids.len() as u32;
        *self.ids.entry(lower.into_boxed_str()).or_insert(next)
    }

    /// The id of a word already seen; `None` means no strategy can carry it.
    fn find(&self, word: &str) -> Option<u32> {
        self.ids.get(word.to_lowercase().as_str()).copied()
    }
}

/// Compact filter and sort keys of one record.
#[derive(Debug, Clone)]
struct Keys {
    category: u32,
    sub_category: u32,
    language: u32,
    status: StrategyStatus,
    origin: Origin,
    mem_enabled: bool,
    /// NaN when absent.
    sharpe: f64,
    win_rate: f64,
    total_pnl: f64,
    /// Epoch ms; `i64::MIN` when absent.
    last_used: i64,
    tags: Box<[u32]>,
    asset_classes: Box<[u32]>,
}

/// One buffer of search text for `CHUNK` consecutive records, each ended by `\n`.
#[derive(Debug, Default)]
struct TextChunk {
    text: Vec<u8>,
    /// Where each record's text starts in `text`.
    starts: Vec<u32>,
    /// Where each record's second group of fields starts in `text` (after
    /// `search::SECONDARY`).
    secondary: Vec<u32>,
    dirty: bool,
}

impl TextChunk {
    /// The best score of `finder`'s word in record `local`, whose first occurrence is at
    /// `at` and whose text ends at `end`.
    fn best(&self, finder: &memmem::Finder<'_>, mut at: usize, end: usize, local: usize) -> u16 {
        let len = finder.needle().len();
        let secondary = self.secondary[local] as usize;
        let mut best = 0;
        loop {
            best = best.max(search::occurrence_score(&self.text, at, len, secondary));
            if best == search::BEST {
                return best;
            }
            match finder.find(&self.text[at + 1..end]) {
                Some(next) => at += 1 + next,
                None => return best,
            }
        }
    }
}

/// All records, with their keys, name order and search text.
#[derive(Debug, Default)]
pub struct Index {
    records: Vec<Record>,
    keys: Vec<Keys>,
    position: HashMap<StrategyId, usize>,
    interner: Interner,
    /// Record indices in (display name, id) order.
    name_order: Vec<u32>,
    /// `name_rank[i]` is where record `i` stands in `name_order`.
    name_rank: Vec<u32>,
    chunks: Vec<TextChunk>,
}

fn nan_if_none(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

impl Index {
    pub fn from_records(records: Vec<Record>) -> Index {
        let mut index = Index::default();
        for record in records {
            let keys = index.keys_of(&record);
            index.position.insert(record.id(), index.records.len());
            index.records.push(record);
            index.keys.push(keys);
        }
        let mut order: Vec<u32> = (0..index.records.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| index.name_cmp(a as usize, b as usize));
        index.name_rank = vec![0; order.len()];
        for (rank, &i) in order.iter().enumerate() {
            index.name_rank[i as usize] = rank as u32;
        }
        index.name_order = order;
        index.chunks = (0..index.records.len().div_ceil(CHUNK))
            .map(|_| TextChunk {
                dirty: true,
                ..Default::default()
            })
            .collect();
        index
    }

    fn keys_of(&mut self, r: &Record) -> Keys {
        let s = &r.summary;
        Keys {
            category: self.interner.intern(&s.category),
            sub_category: self.interner.intern(&s.sub_category),
            language: self.interner.intern(&s.language),
            status: s.status,
            origin: s.origin,
            mem_enabled: s.mem_enabled,
            sharpe: nan_if_none(s.sharpe_ratio),
            win_rate: nan_if_none(s.win_rate),
            total_pnl: nan_if_none(s.total_pnl),
            last_used: s
                .last_used_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map_or(i64::MIN, |t| t.timestamp_millis()),
            tags: s.tags.iter().map(|t| self.interner.intern(t)).collect(),
            asset_classes: r
                .asset_classes
                .iter()
                .map(|t| self.interner.intern(t))
                .collect(),
        }
    }

    fn name_cmp(&self, a: usize, b: usize) -> Ordering {
        let (ra, rb) = (&self.records[a], &self.records[b]);
        ra.sort_name
            .cmp(&rb.sort_name)
            .then_with(|| ra.id().cmp(&rb.id()))
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn get(&self, id: StrategyId) -> Option<&Record> {
        self.position.get(&id).map(|&i| &self.records[i])
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Changes a record's live-trading figures (after trades are recorded).
    pub fn set_live(
        &mut self,
        id: StrategyId,
        trades: u64,
        total_pnl: f64,
        last_used_at: Option<String>,
    ) {
        let Some(&i) = self.position.get(&id) else {
            return;
        };
        let mut summary = (*self.records[i].summary).clone();
        summary.live_trades = trades;
        summary.total_pnl = Some(total_pnl);
        summary.last_used_at = last_used_at;
        let keys = &mut self.keys[i];
        keys.total_pnl = total_pnl;
        keys.last_used = summary
            .last_used_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(i64::MIN, |t| t.timestamp_millis());
        self.records[i].summary = Arc::new(summary);
    }

    /// Adds or replaces a record; returns true when it was new.
    pub fn upsert(&mut self, record: Record) -> bool {
        let keys = self.keys_of(&record);
        match self.position.get(&record.id()).copied() {
            Some(i) => {
                let renamed = self.records[i].sort_name != record.sort_name;
                if renamed {
                    self.unrank(i);
                }
                self.records[i] = record;
                self.keys[i] = keys;
                if renamed {
                    self.rank(i);
                }
                self.mark_dirty(i);
                false
            }
            None => {
                let i = self.records.len();
                self.position.insert(record.id(), i);
                self.records.push(record);
                self.keys.push(keys);
                self.name_rank.push(0);
                self.rank(i);
                if self.chunks.len() < self.records.len().div_ceil(CHUNK) {
                    self.chunks.push(TextChunk::default());
                }
                self.mark_dirty(i);
                true
            }
        }
    }

    /// Removes a record; returns it if it was there.
    pub fn remove(&mut self, id: StrategyId) -> Option<Record> {
        let i = self.position.remove(&id)?;
        self.unrank(i);
        let last = self.records.len() - 1;
        let removed = self.records.swap_remove(i);
        self.keys.swap_remove(i);
        if i != last {
            // The last record moved to `i`: point its name-order entry there.
            let rank = self.name_rank[last];
            self.name_order[rank as usize] = i as u32;
            self.name_rank[i] = rank;
            self.position.insert(self.records[i].id(), i);
            self.mark_dirty(i);
        }
        self.name_rank.truncate(last);
        self.mark_dirty(last);
        self.chunks.truncate(self.records.len().div_ceil(CHUNK));
        Some(removed)
    }

    /// Puts record `i` into the name order.
    fn rank(&mut self, i: usize) {
        let pos = self
            .name_order
            .partition_point(|&j| self.name_cmp(j as usize, i) == Ordering::Less);
        self.name_order.insert(pos, i as u32);
        for (rank, &j) in self.name_order.iter().enumerate().skip(pos) {
            self.name_rank[j as usize] = rank as u32;
        }
    }

    /// Takes record `i` out of the name order.
    fn unrank(&mut self, i: usize) {
        let pos = self.name_rank[i] as usize;
        self.name_order.remove(pos);
        for (rank, &j) in self.name_order.iter().enumerate().skip(pos) {
            self.name_rank[j as usize] = rank as u32;
        }
    }

    fn mark_dirty(&mut self, i: usize) {
        if let Some(chunk) = self.chunks.get_mut(i / CHUNK) {
            chunk.dirty = true;
        }
    }

    /// Whether some search text is behind its records (call `refresh_chunks` first).
    pub fn has_dirty_chunks(&self) -> bool {
        self.chunks.iter().any(|c| c.dirty)
    }

    /// Rebuilds the search text of chunks changed since the last search.
    pub fn refresh_chunks(&mut self) {
        for (c, chunk) in self.chunks.iter_mut().enumerate() {
            if !chunk.dirty {
                continue;
            }
            chunk.text.clear();
            chunk.starts.clear();
            chunk.secondary.clear();
            for record in self.records.iter().skip(c * CHUNK).take(CHUNK) {
                let start = chunk.text.len();
                chunk.starts.push(start as u32);
                record.push_search_text(&mut chunk.text);
                let secondary = memchr::memchr(search::SECONDARY, &chunk.text[start..])
                    .map_or(chunk.text.len(), |at| start + at + 1);
                chunk.secondary.push(secondary as u32);
                chunk.text.push(b'\n');
            }
            chunk.dirty = false;
        }
    }

    /// The records that contain every word, with their scores (`mem_protocol::search`),
    /// in record order; `None` when there are no words. The longest word (likely the
    /// rarest) is looked for in the whole text, each other only in the records found so
    /// far.
    fn search(&self, words: &[String]) -> Option<Vec<(u32, u32)>> {
        let mut words: Vec<&String> = words.iter().collect();
        words.sort_by_key(|w| std::cmp::Reverse(w.len()));
        let (first, rest) = words.split_first()?;
        let mut found = self.search_word(first);
        for word in rest {
            let finder = memmem::Finder::new(word.as_bytes());
            found.retain_mut(|(i, score)| {
                let chunk = &self.chunks[*i as usize / CHUNK];
                let local = *i as usize % CHUNK;
                let start = chunk.starts[local] as usize;
                let end = chunk
                    .starts
                    .get(local + 1)
                    .map_or(chunk.text.len(), |&s| s as usize);
                match finder.find(&chunk.text[start..end]) {
                    Some(at) => {
                        *score += u32::from(chunk.best(&finder, start + at, end, local));
                        true
                    }
                    None => false,
                }
            });
        }
        Some(found)
    }

    /// The records that contain `word`, each with its best occurrence's score, in record
    /// order.
    fn search_word(&self, word: &str) -> Vec<(u32, u32)> {
        let finder = memmem::Finder::new(word.as_bytes());
        let mut found = Vec::new();
        for (c, chunk) in self.chunks.iter().enumerate() {
            let text = &chunk.text[..];
            let mut from = 0usize;
            while let Some(at) = finder.find(&text[from..]).map(|f| from + f) {
                let local = chunk.starts.partition_point(|&s| s as usize <= at) - 1;
                let end = chunk
                    .starts
                    .get(local + 1)
                    .map_or(text.len(), |&s| s as usize);
                let best = chunk.best(&finder, at, end, local);
                found.push(((c * CHUNK + local) as u32, u32::from(best)));
                // On to the next record.
                from = end;
                if from >= text.len() {
                    break;
                }
            }
        }
        found
    }

    /// Strategies matching every filter, sorted, paged: with a query and no sort key,
    /// best matches first (ties in name order). Searching needs the text refreshed first
    /// (`refresh_chunks`) when `has_dirty_chunks`.
    pub fn list(&self, params: &ListStrategiesParams) -> StrategyList {
        let words = search::query_words(params.query.as_deref().unwrap_or(""));
        let Some(filter) = Filter::new(params, &self.interner) else {
            return StrategyList {
                strategies: Vec::new(),
                total: 0,
            };
        };
        let hits = self.search(&words);
        let relevance = hits.is_some() && params.sort.is_none();
        let key = params.sort.unwrap_or(SortKey::Name);
        let descending = match params.order {
            Some(order) => order == SortOrder::Desc,
            None => relevance || key != SortKey::Name,
        };
        let offset = params.offset.unwrap_or(0);
        let limit = params.limit.unwrap_or(usize::MAX);
        let page = |indices: &mut dyn Iterator<Item = usize>| -> Vec<Arc<StrategySummary>> {
            indices
                .skip(offset)
                .take(limit)
                .map(|i| self.records[i].summary.clone())
                .collect()
        };
        if key == SortKey::Name && !relevance {
            // Walk the name order: no sort at all.
            let mut found = None;
            if let Some(hits) = &hits {
                let mut bits = vec![0u64; self.records.len().div_ceil(64)];
                for &(i, _) in hits {
                    bits[i as usize / 64] |= 1 << (i % 64);
                }
                found = Some(bits);
            }
            let matches = |&i: &usize| {
                found
                    .as_ref()
                    .is_none_or(|b| b[i / 64] & (1 << (i % 64)) != 0)
                    && filter.matches(&self.keys[i])
            };
            let order = self.name_order.iter().map(|&i| i as usize);
            let mut selected: Vec<usize> = if descending {
                order.rev().filter(matches).collect()
            } else {
                order.filter(matches).collect()
            };
            let total = selected.len();
            let strategies = page(&mut selected.drain(..));
            return StrategyList { strategies, total };
        }
        let value = |i: usize, score: u32| -> f64 {
            let k = &self.keys[i];
            match key {
                _ if relevance => f64::from(score),
                SortKey::Sharpe => k.sharpe,
                SortKey::WinRate => k.win_rate,
                SortKey::TotalPnl => k.total_pnl,
                SortKey::LastUsed => {
                    if k.last_used == i64::MIN {
                        f64::NAN
                    } else {
                        k.last_used as f64
                    }
                }
                SortKey::Name => unreachable!("handled above"),
            }
        };
        let row = |(i, score): (usize, u32)| (value(i, score), self.name_rank[i], i as u32);
        let kept = |&(i, _): &(usize, u32)| filter.matches(&self.keys[i]);
        let mut selected: Vec<(f64, u32, u32)> = match &hits {
            Some(hits) => hits
                .iter()
                .map(|&(i, score)| (i as usize, score))
                .filter(kept)
                .map(row)
                .collect(),
            None => (0..self.records.len())
                .map(|i| (i, 0))
                .filter(kept)
                .map(row)
                .collect(),
        };
        let total = selected.len();
        // Missing values last in both directions; ties by name.
        let compare = |a: &(f64, u32, u32), b: &(f64, u32, u32)| -> Ordering {
            let by_value = match (a.0.is_nan(), b.0.is_nan()) {
                (false, false) => {
                    let o = a.0.partial_cmp(&b.0).unwrap_or(Ordering::Equal);
                    if descending { o.reverse() } else { o }
                }
                (false, true) => Ordering::Less,
                (true, false) => Ordering::Greater,
                (true, true) => Ordering::Equal,
            };
            by_value.then(a.1.cmp(&b.1))
        };
        let end = offset.saturating_add(limit).min(total);
        if end == 0 {
            return StrategyList {
                strategies: Vec::new(),
                total,
            };
        }
        if end < total {
            selected.select_nth_unstable_by(end - 1, compare);
            selected.truncate(end);
        }
        selected.sort_unstable_by(compare);
        let strategies = page(&mut selected.iter().map(|&(_, _, i)| i as usize));
        StrategyList { strategies, total }
    }
}

/// The filters of one `strategies.list` call, as interned ids.
struct Filter<'a> {
    params: &'a ListStrategiesParams,
    category: Option<u32>,
    sub_category: Option<u32>,
    language: Option<u32>,
    asset_class: Option<u32>,
    all_tags: Vec<u32>,
    any_tags: Vec<u32>,
}

impl<'a> Filter<'a> {
    /// `None` when a wanted word is carried by no strategy: nothing can match.
    fn new(params: &'a ListStrategiesParams, interner: &Interner) -> Option<Filter<'a>> {
        let want = |v: &Option<String>| -> Option<Option<u32>> {
            match v {
                None => Some(None),
                Some(word) => interner.find(word).map(Some),
            }
        };
        let mut all_tags = Vec::new();
        for tag in params.tags.iter().chain(params.tag.iter()) {
            all_tags.push(interner.find(tag)?);
        }
        let any_tags: Vec<u32> = params
            .tags_any
            .iter()
            .filter_map(|t| interner.find(t))
            .collect();
        if !params.tags_any.is_empty() && any_tags.is_empty() {
            return None;
        }
        Some(Filter {
            params,
            category: want(&params.category)?,
            sub_category: want(&params.sub_category)?,
            language: want(&params.language)?,
            asset_class: want(&params.asset_class)?,
            all_tags,
            any_tags,
        })
    }

    fn matches(&self, k: &Keys) -> bool {
        let p = self.params;
        self.category.is_none_or(|c| c == k.category)
            && self.sub_category.is_none_or(|c| c == k.sub_category)
            && self.language.is_none_or(|c| c == k.language)
            && p.status.is_none_or(|s| s == k.status)
            && p.origin.is_none_or(|o| o == k.origin)
            && p.mem_enabled.is_none_or(|m| m == k.mem_enabled)
            && p.min_sharpe.is_none_or(|min| k.sharpe >= min)
            && p.min_win_rate.is_none_or(|min| k.win_rate >= min)
            && self
                .asset_class
                .is_none_or(|a| k.asset_classes.contains(&a))
            && self.all_tags.iter().all(|t| k.tags.contains(t))
            && (self.any_tags.is_empty() || self.any_tags.iter().any(|t| k.tags.contains(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(id: u32, name: &str, sharpe: Option<f64>) -> StrategyDocument {
        serde_json::from_value(json!({
            "schema_version": "1.0.0",
            "strategy": {
                "id": format!("00000000-0000-4000-8000-{id:012}"),
                "name": name,
                "display_name": name,
                "classification": {"category": "momentum", "tags": ["t"]},
                "implementation": {"language": "rust"},
                "performance": {"backtest": {"sharpe_ratio": sharpe}}
            }
        }))
        .unwrap()
    }

    fn names(index: &mut Index, p: ListStrategiesParams) -> Vec<String> {
        index.refresh_chunks();
        index
            .list(&p)
            .strategies
            .iter()
            .map(|s| s.display_name.clone())
            .collect()
    }

    #[test]
    fn name_order_survives_inserts_renames_and_removals() {
        let mut index = Index::from_records(vec![
            Record::from_doc(&doc(1, "b", None), 0),
            Record::from_doc(&doc(2, "d", Some(1.0)), 0),
        ]);
        index.upsert(Record::from_doc(&doc(3, "a", Some(2.0)), 0));
        index.upsert(Record::from_doc(&doc(4, "c", None), 0));
        assert_eq!(
            names(&mut index, ListStrategiesParams::default()),
            ["a", "b", "c", "d"]
        );
        index.upsert(Record::from_doc(&doc(1, "e", Some(0.5)), 0)); // rename b -> e
        assert_eq!(
            names(&mut index, ListStrategiesParams::default()),
            ["a", "c", "d", "e"]
        );
        index.remove(doc(3, "a", None).strategy.id);
        assert_eq!(
            names(&mut index, ListStrategiesParams::default()),
            ["c", "d", "e"]
        );
        let by_sharpe = ListStrategiesParams {
            sort: Some(SortKey::Sharpe),
            ..Default::default()
        };
        assert_eq!(
            names(&mut index, by_sharpe),
            ["d", "e", "c"],
            "missing values last"
        );
        let search = ListStrategiesParams {
            query: Some("E".into()),
            ..Default::default()
        };
        // e by its name first; c and d only by the letter inside their category
        // (momentum), last.
        assert_eq!(
            names(&mut index, search),
            ["e", "c", "d"],
            "search text follows renames"
        );
        let old_name = ListStrategiesParams {
            query: Some("b".into()),
            ..Default::default()
        };
        assert!(
            names(&mut index, old_name).is_empty(),
            "the old name is gone"
        );
        let desc = ListStrategiesParams {
            order: Some(SortOrder::Desc),
            limit: Some(2),
            offset: Some(1),
            ..Default::default()
        };
        let list = index.list(&desc);
        assert_eq!(list.total, 3);
        assert_eq!(
            list.strategies
                .iter()
                .map(|s| s.display_name.as_str())
                .collect::<Vec<_>>(),
            ["d", "c"]
        );
    }

    /// The seed's 11 strategies (data/strategy_registry).
    fn seed_index() -> Index {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/strategy_registry/metadata"
        );
        let records = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let bytes = std::fs::read(e.unwrap().path()).unwrap();
                Record::from_doc(&serde_json::from_slice(&bytes).unwrap(), 0)
            })
            .collect();
        let mut index = Index::from_records(records);
        index.refresh_chunks();
        index
    }

    fn query(text: &str) -> ListStrategiesParams {
        ListStrategiesParams {
            query: Some(text.into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_search_lists_word_matches_first_and_letters_inside_words_last() {
        let mut index = seed_index();
        let rsi = [
            "Freqtrade Aggressive RSI",
            "Freqtrade Conservative RSI",
            "RSI",
            "MFI",
            "Statistical Arbitrage Pairs Trading",
            "VWAP",
        ];
        assert_eq!(names(&mut index, query("rsi")), rsi);
        // The same order as the rule the terminal UI follows, score for score.
        let words = search::query_words("rsi");
        let mut by_rule: Vec<(u32, String)> = index
            .records()
            .iter()
            .filter_map(|r| {
                let score = search::score(&search::search_text(&r.summary), &words)?;
                Some((score, r.summary.display_name.clone()))
            })
            .collect();
        by_rule.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        assert_eq!(
            by_rule.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
            rsi
        );
        // Paged: the best first.
        let page = ListStrategiesParams {
            limit: Some(2),
            offset: Some(2),
            ..query("RSI")
        };
        let list = index.list(&page);
        assert_eq!(list.total, 6);
        assert_eq!(list.strategies[0].display_name, "RSI");
        assert_eq!(list.strategies[1].display_name, "MFI");
        // A sort key asked for wins over relevance; so does name order.
        let by_sharpe = ListStrategiesParams {
            sort: Some(SortKey::Sharpe),
            ..query("rsi")
        };
        assert_eq!(names(&mut index, by_sharpe)[0], "Freqtrade Aggressive RSI");
        let by_name = ListStrategiesParams {
            sort: Some(SortKey::Name),
            ..query("rsi")
        };
        assert_eq!(
            names(&mut index, by_name),
            [
                "Freqtrade Aggressive RSI",
                "Freqtrade Conservative RSI",
                "MFI",
                "RSI",
                "Statistical Arbitrage Pairs Trading",
                "VWAP"
            ]
        );
        // Filters still apply; two words must both occur.
        let native = ListStrategiesParams {
            language: Some("rust".into()),
            ..query("rsi")
        };
        assert_eq!(names(&mut index, native), ["RSI", "MFI", "VWAP"]);
        assert_eq!(
            names(&mut index, query("macd momentum")),
            ["Freqtrade MACD Hunter", "MACD"]
        );
        assert!(names(&mut index, query("rsi kalman")).is_empty());
    }

    #[test]
    fn search_spans_chunks_and_unknown_words_match_nothing() {
        let records: Vec<Record> = (0..3000)
            .map(|i| Record::from_doc(&doc(i, &format!("s{i:05}"), None), 0))
            .collect();
        let mut index = Index::from_records(records);
        let hit = ListStrategiesParams {
            query: Some("s02999".into()),
            ..Default::default()
        };
        assert_eq!(names(&mut index, hit), ["s02999"]);
        // Two words, the second looked for only in the records the first found.
        let both = ListStrategiesParams {
            query: Some("t s02999".into()),
            ..Default::default()
        };
        assert_eq!(names(&mut index, both), ["s02999"]);
        let many_of_both = ListStrategiesParams {
            query: Some("momentum s01".into()),
            ..Default::default()
        };
        assert_eq!(index.list(&many_of_both).total, 1000);
        let many = ListStrategiesParams {
            query: Some("s01".into()),
            limit: Some(3),
            ..Default::default()
        };
        index.refresh_chunks();
        let list = index.list(&many);
        assert_eq!(list.total, 1000);
        let none = ListStrategiesParams {
            category: Some("nope".into()),
            ..Default::default()
        };
        assert_eq!(index.list(&none).total, 0);
        index.remove(doc(2999, "", None).strategy.id);
        index.refresh_chunks();
        assert_eq!(
            index
                .list(&ListStrategiesParams {
                    query: Some("s02999".into()),
                    ..Default::default()
                })
                .total,
            0
        );
        assert_eq!(
            index
                .list(&ListStrategiesParams {
                    query: Some("s02998".into()),
                    ..Default::default()
                })
                .total,
            1
        );
    }
}
