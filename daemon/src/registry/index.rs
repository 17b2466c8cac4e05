//! The in-memory index of the registry: one compact [`Record`] per strategy, enough to
//! filter, sort, search and list without touching the disk. The full document stays in
//! its file and is read when one strategy is asked for.
//!
//! Search lowercases once, at indexing time: each record keeps one haystack of its name,
//! display name, description, tags and keywords, scanned with `memchr::memmem`.

use mem_protocol::methods::{ListStrategiesParams, SortKey, SortOrder, StrategyList};
use mem_protocol::strategy::{
    Origin, StrategyDocument, StrategyId, StrategyStatus, StrategySummary,
};
use memchr::memmem;
use std::cmp::Ordering;
use std::collections::HashMap;

/// What the index keeps of one strategy.
#[derive(Debug, Clone)]
pub struct Record {
    pub id: StrategyId,
    pub name: Box<str>,
    pub display_name: Box<str>,
    pub description: Box<str>,
    pub category: Box<str>,
    pub sub_category: Box<str>,
    pub language: Box<str>,
    pub status: StrategyStatus,
    pub origin: Origin,
    pub version: Box<str>,
    pub tags: Box<[Box<str>]>,
    pub asset_classes: Box<[Box<str>]>,
    pub mem_enabled: bool,
    pub sharpe: Option<f64>,
    pub win_rate: Option<f64>,
    pub risk_level: Option<Box<str>>,
    pub live_trades: u64,
    pub total_pnl: Option<f64>,
    pub last_used_at: Option<Box<str>>,
    /// Lowercased name, display name, description, tags and keywords, space separated.
    haystack: Box<str>,
    /// Hash of the file's bytes as last read or written, to tell our own writes from
    /// edits made by someone else.
    pub content_hash: u64,
}

fn boxed(s: &str) -> Box<str> {
    s.into()
}

impl Record {
    /// The record of a document whose file bytes hash to `content_hash`.
    pub fn from_doc(doc: &StrategyDocument, content_hash: u64) -> Record {
        let s = &doc.strategy;
        let c = &s.classification;
        let mut haystack =
            String::with_capacity(s.name.len() + s.display_name.len() + s.description.len() + 64);
        for part in [
            s.name.as_str(),
            s.display_name.as_str(),
            s.description.as_str(),
        ] {
            haystack.push_str(part);
            haystack.push(' ');
        }
        for word in c.tags.iter().chain(&c.keywords) {
            haystack.push_str(word);
            haystack.push(' ');
        }
        Record {
            id: s.id,
            name: boxed(&s.name),
            display_name: boxed(if s.display_name.is_empty() {
                &s.name
            } else {
                &s.display_name
            }),
            description: boxed(&s.description),
            category: boxed(&c.category),
            sub_category: boxed(&c.sub_category),
            language: boxed(&s.implementation.language),
            status: s.status,
            origin: s.origin.unwrap_or(Origin::Imported),
            version: boxed(&s.version),
            tags: c.tags.iter().map(|t| boxed(t)).collect(),
            asset_classes: c.asset_classes.iter().map(|t| boxed(t)).collect(),
            mem_enabled: s.mem_integration.enabled,
            sharpe: s.performance.backtest.sharpe_ratio,
            win_rate: s.performance.backtest.win_rate,
            risk_level: s.risk_profile.risk_level.as_deref().map(boxed),
            live_trades: s.performance.live_trading.total_trades,
            total_pnl: s.performance.live_trading.total_pnl,
            last_used_at: s.metadata.last_used_at.as_deref().map(boxed),
            haystack: haystack.to_lowercase().into_boxed_str(),
            content_hash,
        }
    }

    /// The flat list entry.
    pub fn summary(&self) -> StrategySummary {
        StrategySummary {
            id: self.id,
            name: self.name.to_string(),
            display_name: self.display_name.to_string(),
            description: self.description.to_string(),
            category: self.category.to_string(),
            sub_category: self.sub_category.to_string(),
            status: self.status,
            language: self.language.to_string(),
            origin: self.origin,
            version: self.version.to_string(),
            tags: self.tags.iter().map(|t| t.to_string()).collect(),
            mem_enabled: self.mem_enabled,
            sharpe_ratio: self.sharpe,
            win_rate: self.win_rate,
            risk_level: self.risk_level.as_deref().map(str::to_string),
            live_trades: self.live_trades,
            total_pnl: self.total_pnl,
            last_used_at: self.last_used_at.as_deref().map(str::to_string),
            is_deployed: false,
        }
    }
}

/// All records, by id, in a vector for fast scans.
#[derive(Debug, Default)]
pub struct Index {
    records: Vec<Record>,
    position: HashMap<StrategyId, usize>,
}

impl Index {
    pub fn from_records(records: Vec<Record>) -> Index {
        let position = records.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        Index { records, position }
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

    pub fn get_mut(&mut self, id: StrategyId) -> Option<&mut Record> {
        self.position.get(&id).map(|&i| &mut self.records[i])
    }

    pub fn records(&self) -> &[Record] {
        &self.records
    }

    /// Adds or replaces a record; returns true when it was new.
    pub fn upsert(&mut self, record: Record) -> bool {
        match self.position.get(&record.id) {
            Some(&i) => {
                self.records[i] = record;
                false
            }
            None => {
                self.position.insert(record.id, self.records.len());
                self.records.push(record);
                true
            }
        }
    }

    /// Removes a record; returns it if it was there.
    pub fn remove(&mut self, id: StrategyId) -> Option<Record> {
        let i = self.position.remove(&id)?;
        let removed = self.records.swap_remove(i);
        if let Some(moved) = self.records.get(i) {
            self.position.insert(moved.id, i);
        }
        Some(removed)
    }

    /// Strategies matching every filter, sorted, paged.
    pub fn list(&self, params: &ListStrategiesParams) -> StrategyList {
        let filter = Filter::new(params);
        let mut matches: Vec<&Record> = self.records.iter().filter(|r| filter.matches(r)).collect();
        let total = matches.len();
        let key = params.sort.unwrap_or(SortKey::Name);
        let descending = match params.order {
            Some(order) => order == SortOrder::Desc,
            None => key != SortKey::Name,
        };
        let compare = |a: &&Record, b: &&Record| compare_records(a, b, key, descending);
        let offset = params.offset.unwrap_or(0).min(total);
        let end = params
            .limit
            .map_or(total, |limit| offset.saturating_add(limit).min(total));
        // Only the first `end` need to be in order: select them, then sort just those.
        if end < total && end > 0 {
            matches.select_nth_unstable_by(end - 1, compare);
            matches.truncate(end);
        }
        matches.sort_unstable_by(compare);
        let strategies = matches[offset..end.min(matches.len())]
            .iter()
            .map(|r| r.summary())
            .collect();
        StrategyList { strategies, total }
    }
}

/// Orders two records by `key`; records without a value go last in both directions; ties
/// break by name then id so that paging is stable.
fn compare_records(a: &Record, b: &Record, key: SortKey, descending: bool) -> Ordering {
    fn by_option<T: PartialOrd>(a: Option<T>, b: Option<T>, descending: bool) -> Ordering {
        match (a, b) {
            (Some(x), Some(y)) => {
                let o = x.partial_cmp(&y).unwrap_or(Ordering::Equal);
                if descending { o.reverse() } else { o }
            }
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
    }
    let primary = match key {
        SortKey::Name => {
            let o = cmp_ignore_case(&a.display_name, &b.display_name);
            if descending { o.reverse() } else { o }
        }
        SortKey::Sharpe => by_option(a.sharpe, b.sharpe, descending),
        SortKey::WinRate => by_option(a.win_rate, b.win_rate, descending),
        SortKey::TotalPnl => by_option(a.total_pnl, b.total_pnl, descending),
        SortKey::LastUsed => by_option(
            a.last_used_at.as_deref(),
            b.last_used_at.as_deref(),
            descending,
        ),
    };
    primary
        .then_with(|| cmp_ignore_case(&a.display_name, &b.display_name))
        .then_with(|| a.id.cmp(&b.id))
}

fn cmp_ignore_case(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// The filters of one `strategies.list` call, prepared once.
struct Filter<'a> {
    params: &'a ListStrategiesParams,
    category: Option<String>,
    sub_category: Option<String>,
    language: Option<String>,
    asset_class: Option<String>,
    all_tags: Vec<String>,
    any_tags: Vec<String>,
    words: Vec<memmem::Finder<'static>>,
}

impl<'a> Filter<'a> {
    fn new(params: &'a ListStrategiesParams) -> Self {
        let lower = |s: &Option<String>| s.as_deref().map(str::to_lowercase);
        let mut all_tags: Vec<String> = params.tags.iter().map(|t| t.to_lowercase()).collect();
        all_tags.extend(lower(&params.tag));
        Filter {
            params,
            category: lower(&params.category),
            sub_category: lower(&params.sub_category),
            language: lower(&params.language),
            asset_class: lower(&params.asset_class),
            all_tags,
            any_tags: params.tags_any.iter().map(|t| t.to_lowercase()).collect(),
            words: params
                .query
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(|w| memmem::Finder::new(w.to_lowercase().as_bytes()).into_owned())
                .collect(),
        }
    }

    fn matches(&self, r: &Record) -> bool {
        let p = self.params;
        let eq = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| have.eq_ignore_ascii_case(w))
        };
        let has_tag = |tag: &str| r.tags.iter().any(|t| t.eq_ignore_ascii_case(tag));
        eq(&self.category, &r.category)
            && eq(&self.sub_category, &r.sub_category)
            && eq(&self.language, &r.language)
            && p.status.is_none_or(|s| s == r.status)
            && p.origin.is_none_or(|o| o == r.origin)
            && p.mem_enabled.is_none_or(|m| m == r.mem_enabled)
            && p.min_sharpe
                .is_none_or(|min| r.sharpe.is_some_and(|v| v >= min))
            && p.min_win_rate
                .is_none_or(|min| r.win_rate.is_some_and(|v| v >= min))
            && self
                .asset_class
                .as_deref()
                .is_none_or(|a| r.asset_classes.iter().any(|c| c.eq_ignore_ascii_case(a)))
            && self.all_tags.iter().all(|t| has_tag(t))
            && (self.any_tags.is_empty() || self.any_tags.iter().any(|t| has_tag(t)))
            && self
                .words
                .iter()
                .all(|w| w.find(r.haystack.as_bytes()).is_some())
    }
}
