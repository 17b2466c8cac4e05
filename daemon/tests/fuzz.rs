//! Property-based fuzz tests of the daemon's file readers, on hostile input.
//!
//! What they prove, for inputs generated at random (and shrunk to a minimal case on
//! failure):
//!
//! - The metadata parsers of `registry::shapes` ([`shapes::parse_bytes`], [`shapes::parse`],
//!   [`shapes::to_document`] — which reads `strategies.register`/`import` params — and the
//!   start-up quick view [`shapes::view::index_fields`]), on arbitrary bytes, arbitrary JSON
//!   (flat and nested shapes) and mutations of a shipped metadata document (values
//!   replaced, members removed or added, bytes flipped or cut) never panic; every error
//!   names a field and says what is wrong; `parse` and `parse_bytes` agree; and what the
//!   full parse accepts the quick view indexes identically.
//! - The candle readers ([`candles::read_file`] for `.csv`, `.json`, `.json.gz`, `.jsongz`
//!   and `.feather`), on arbitrary bytes, generated files of every format (odd headers,
//!   odd cells, extreme numbers, nulls, every Arrow time unit and compression, several
//!   batches) and damaged ones (cut, bytes flipped, lengths overwritten — the shipped
//!   `data/market/ETH_BTC-5m.feather` among them), never panic and never allocate much
//!   more than the file could hold: the reading thread's peak of live heap bytes is
//!   measured by a counting global allocator and must stay under a bound proportional to
//!   the file's (decompressed) size. Candles read are then checked, cleaned and resampled
//!   without panicking.
//!
//! Run: `cargo test -p memd --test fuzz`. The case counts are kept small so the suite runs
//! in seconds in a debug build; to fuzz longer, set `PROPTEST_CASES` (it overrides every
//! property's count), e.g. `PROPTEST_CASES=20000 cargo test --release -p memd --test
//! fuzz`. A failure prints the shrunk input; no persistence files are written.

use arrow_array::{
    ArrayRef, Date64Array, Float32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray, TimestampMillisecondArray, TimestampNanosecondArray,
    TimestampSecondArray,
};
use arrow_ipc::CompressionType;
use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
use arrow_schema::{Field, Schema};
use memd::market::candles::{self, Candle, Timeframe};
use memd::registry::index::{IndexFields, Record};
use memd::registry::shapes;
use memd::registry::validate::FieldError;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Map, Number, Value, json};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// `cases` cases (or `PROPTEST_CASES`), bounded shrinking, no files written.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        max_shrink_iters: 1_000,
        max_shrink_time: 20_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// A global allocator that measures, per thread, the peak of live heap bytes.

struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed by this thread.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    /// The highest `LIVE` since the last [`measure`] started.
    static PEAK: Cell<isize> = const { Cell::new(0) };
    /// Inside [`measure`].
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    /// Inside the panic hook: not counted.
    static PAUSED: Cell<bool> = const { Cell::new(false) };
}

fn count(delta: isize) {
    if PAUSED.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

#[allow(unsafe_code)] // a counting allocator must implement the unsafe trait
// SAFETY: every call is forwarded to the system allocator unchanged; the counters only
// touch const-initialized thread-locals, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        count(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the peak of extra live heap bytes it reached on
/// this thread.
///
/// The reader catches arrow-ipc's panics on damaged metadata; the panic hook still runs
/// for them, and the default one (with `RUST_BACKTRACE` set) symbolizes a backtrace,
/// which takes tens of MB and seconds. So while measuring, a panic is reported on one line
/// and its report is not counted.
fn measure<T>(f: impl FnOnce() -> T) -> (T, usize) {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if MEASURING.with(Cell::get) {
                PAUSED.with(|p| p.set(true));
                eprintln!("while reading a file: {info}");
                PAUSED.with(|p| p.set(false));
            } else {
                default(info);
            }
        }));
    });
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    MEASURING.with(|m| m.set(true));
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    MEASURING.with(|m| m.set(false));
    let peak = PEAK.with(Cell::get);
    match out {
        Ok(out) => (out, (peak - start).max(0) as usize),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

// ---------------------------------------------------------------------------------------
// Metadata documents.

/// The shipped document the mutations start from, read at test time.
fn real_document_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../data/strategy_registry/metadata/4ce3a79b-c22b-4b42-9d87-3a58052a9eec.json");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

fn real_document() -> Value {
    serde_json::from_str(real_document_text()).expect("the shipped document is JSON")
}

/// The members of the flat (camelCase) shape, and the nested shape's names.
const FLAT_KEYS: &[&str] = &[
    "id",
    "name",
    "displayName",
    "description",
    "version",
    "status",
    "origin",
    "category",
    "subCategory",
    "complexity",
    "tags",
    "assetClasses",
    "keywords",
    "language",
    "filePath",
    "className",
    "entryPoint",
    "parameters",
    "memEnabled",
    "sharpeRatio",
    "winRate",
    "numTrades",
    "totalReturn",
    "maxDrawdown",
    "riskLevel",
    "createdBy",
    "isDeployed",
    "strategy",
    "schema_version",
];

/// Every key of the shipped document, and the flat shape's.
fn document_keys() -> &'static [String] {
    static KEYS: OnceLock<Vec<String>> = OnceLock::new();
    KEYS.get_or_init(|| {
        fn walk(value: &Value, out: &mut Vec<String>) {
            match value {
                Value::Object(map) => {
                    for (k, v) in map {
                        out.push(k.clone());
                        walk(v, out);
                    }
                }
                Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
                _ => {}
            }
        }
        let mut keys: Vec<String> = FLAT_KEYS.iter().map(|k| k.to_string()).collect();
        walk(&real_document(), &mut keys);
        keys.extend(
            [
                "live_trading",
                "total_trades",
                "total_pnl",
                "live_sharpe",
                "live_win_rate",
                "last_used_at",
                "base_strategy_id",
                "learned_patterns_count",
                "keywords",
            ]
            .map(String::from),
        );
        keys.sort();
        keys.dedup();
        keys
    })
}

const WORDS: &[&str] = &[
    "",
    "4ce3a79b-c22b-4b42-9d87-3a58052a9eec",
    "4ce3a79b-c22b-4b42-9d87-3a58052a9eeX",
    "active",
    "experimental",
    "archived",
    "deprecated",
    "built_in",
    "imported",
    "freqtrade",
    "rust",
    "1.0.0",
    "2.0",
    "2026-11-22T01:00:00Z",
    "low",
    "high",
    "integer",
    "\u{0}",
    "é",
];

fn arb_key() -> BoxedStrategy<String> {
    prop_oneof![
        6 => prop::sample::select(document_keys()),
        1 => "[a-z_]{0,10}",
        1 => any::<String>(),
    ]
    .boxed()
}

fn arb_number() -> BoxedStrategy<Number> {
    prop_oneof![
        3 => (-3i64..100).prop_map(Number::from),
        1 => any::<i64>().prop_map(Number::from),
        1 => any::<u64>().prop_map(Number::from),
        2 => (-2.0f64..2.0).prop_filter_map("finite", Number::from_f64),
        1 => any::<f64>().prop_filter_map("finite", Number::from_f64),
    ]
    .boxed()
}

/// A JSON value at most 4 levels deep, with the document's keys and words.
fn arb_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        2 => arb_number().prop_map(Value::Number),
        3 => prop::sample::select(WORDS).prop_map(Value::from),
        1 => any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            1 => prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            3 => prop::collection::vec((arb_key(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
    .boxed()
}

/// A document in the flat shape, its members drawn from the shapes' names.
fn arb_flat() -> BoxedStrategy<Value> {
    let value = prop_oneof![
        3 => arb_json(),
        1 => prop::collection::vec((arb_key(), arb_json()), 0..3)
            .prop_map(|members| Value::Object(members.into_iter().collect())),
    ];
    prop::collection::vec((arb_key(), value), 0..10)
        .prop_map(|members| Value::Object(members.into_iter().collect()))
        .boxed()
}

/// One edit of a JSON tree, at a node picked by index.
#[derive(Debug, Clone)]
enum Edit {
    Replace(prop::sample::Index, Value),
    Remove(prop::sample::Index),
    Insert(prop::sample::Index, String, Value),
}

fn arb_edit() -> BoxedStrategy<Edit> {
    let at = any::<prop::sample::Index>();
    prop_oneof![
        3 => (at.clone(), arb_json()).prop_map(|(i, v)| Edit::Replace(i, v)),
        2 => at.clone().prop_map(Edit::Remove),
        2 => (at, arb_key(), arb_json()).prop_map(|(i, k, v)| Edit::Insert(i, k, v)),
    ]
    .boxed()
}

/// The JSON pointers of every node of `value` (the root is "").
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                pointers(v, format!("{at}/{}", escape(k)), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                pointers(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn apply(value: &mut Value, edit: &Edit) {
    let mut all = Vec::new();
    pointers(value, String::new(), &mut all);
    let (Edit::Replace(i, _) | Edit::Remove(i) | Edit::Insert(i, _, _)) = edit;
    let at = all[i.index(all.len())].clone();
    match edit {
        Edit::Replace(_, new) => {
            if let Some(node) = value.pointer_mut(&at) {
                *node = new.clone();
            }
        }
        Edit::Remove(_) => {
            let Some((parent, last)) = at.rsplit_once('/') else {
                return;
            };
            let last = last.replace("~1", "/").replace("~0", "~");
            match value.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last);
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = last.parse::<usize>() {
                        if i < items.len() {
                            items.remove(i);
                        }
                    }
                }
                _ => {}
            }
        }
        Edit::Insert(_, key, new) => match value.pointer_mut(&at) {
            Some(Value::Object(map)) => {
                map.insert(key.clone(), new.clone());
            }
            Some(Value::Array(items)) => items.push(new.clone()),
            _ => {}
        },
    }
}

/// A byte-level edit: cut, overwrite, insert or remove.
#[derive(Debug, Clone)]
enum ByteEdit {
    Truncate(prop::sample::Index),
    Set(prop::sample::Index, u8),
    FlipBit(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Remove(prop::sample::Index, usize),
    /// Little-endian integer over 4 or 8 bytes (an Arrow length or offset), at an offset
    /// rounded down to a multiple of `align`.
    Int(prop::sample::Index, usize, i64, bool),
}

fn arb_byte_edit() -> BoxedStrategy<ByteEdit> {
    let at = any::<prop::sample::Index>();
    let big = prop_oneof![
        Just(i64::MAX),
        Just(i64::MIN),
        Just(-1i64),
        Just(0i64),
        Just(i64::from(i32::MAX)),
        Just(1i64 << 32),
        Just(1i64 << 40),
        Just(3_000_000_000i64),
        any::<i64>(),
        0..4096i64,
    ];
    prop_oneof![
        1 => at.clone().prop_map(ByteEdit::Truncate),
        3 => (at.clone(), any::<u8>()).prop_map(|(i, b)| ByteEdit::Set(i, b)),
        3 => (at.clone(), 0..8u8).prop_map(|(i, b)| ByteEdit::FlipBit(i, b)),
        1 => (at.clone(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(i, b)| ByteEdit::Insert(i, b)),
        1 => (at.clone(), 1..16usize).prop_map(|(i, n)| ByteEdit::Remove(i, n)),
        4 => (at, prop::sample::select(vec![1usize, 4, 8]), big, any::<bool>())
            .prop_map(|(i, align, v, wide)| ByteEdit::Int(i, align, v, wide)),
    ]
    .boxed()
}

fn apply_bytes(bytes: &mut Vec<u8>, edit: &ByteEdit) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match edit {
        ByteEdit::Truncate(i) => bytes.truncate(i.index(n)),
        ByteEdit::Set(i, b) => bytes[i.index(n)] = *b,
        ByteEdit::FlipBit(i, bit) => bytes[i.index(n)] ^= 1 << bit,
        ByteEdit::Insert(i, new) => {
            let at = i.index(n);
            bytes.splice(at..at, new.iter().copied());
        }
        ByteEdit::Remove(i, len) => {
            let at = i.index(n);
            bytes.drain(at..(at + len).min(n));
        }
        ByteEdit::Int(i, align, v, wide) => {
            let at = i.index(n) / align * align;
            let le = v.to_le_bytes();
            let width = if *wide { 8 } else { 4 };
            let end = (at + width).min(n);
            bytes[at..end].copy_from_slice(&le[..end - at]);
        }
    }
}

/// An error must name where the problem is and what it is.
fn check_field_error(e: &FieldError) -> Result<(), TestCaseError> {
    prop_assert!(!e.field.trim().is_empty(), "no field named: {e:?}");
    prop_assert!(!e.message.trim().is_empty(), "no message: {e:?}");
    Ok(())
}

/// Every reader of metadata bytes, on the same bytes: no panic, worded errors, and the
/// quick view agrees with the full parse whenever the full parse accepts.
fn check_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    let full = shapes::parse_bytes(bytes);
    let quick = shapes::view::index_fields(bytes);
    match &full {
        Err(e) => check_field_error(e)?,
        Ok(doc) => {
            let Ok(quick) = quick else {
                return Err(TestCaseError::fail(format!(
                    "the quick view rejects what the full parse accepts: {}",
                    quick.err().unwrap()
                )));
            };
            let quick = Record::new(quick, 1);
            let slow = Record::new(IndexFields::of(doc), 1);
            prop_assert_eq!(&quick.summary, &slow.summary);
        }
    }
    if let Ok(value) = serde_json::from_slice::<Value>(bytes) {
        check_value(value)?;
    }
    Ok(())
}

/// The value readers: no panic, worded errors, and `parse` agrees with `parse_bytes`.
fn check_value(value: Value) -> Result<(), TestCaseError> {
    match shapes::to_document(&value) {
        Ok(_) => {}
        Err(e) => check_field_error(&e)?,
    }
    let text = serde_json::to_vec(&value).unwrap();
    let from_value = shapes::parse(value);
    if let Err(e) = &from_value {
        check_field_error(e)?;
    }
    let from_bytes = shapes::parse_bytes(&text);
    if let Err(e) = &from_bytes {
        check_field_error(e)?;
    }
    // The same verdict, and the same field at fault (messages differ: from bytes they
    // carry a line and column).
    match (from_value, from_bytes) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(a), Err(b)) => prop_assert_eq!(a.field, b.field, "{} / {}", a.message, b.message),
        (a, b) => {
            return Err(TestCaseError::fail(format!(
                "parse gives {a:?} but parse_bytes gives {b:?}"
            )));
        }
    }
    Ok(())
}

/// How a metadata file begins.
const DOC_START: &[u8] = b"{\"schema_version\":\"1.0.0\",\"strategy\":{";

proptest! {
    #![proptest_config(config(1000))]

    /// Arbitrary bytes, and arbitrary bytes that start like a document.
    #[test]
    fn metadata_bytes_never_panic(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(any::<u8>(), 0..300)
                .prop_map(|tail| [DOC_START, &tail].concat()),
        ],
    ) {
        check_bytes(&bytes)?;
    }

    /// Arbitrary JSON trees, in the nested shape and the flat one.
    #[test]
    fn metadata_values_never_panic(
        value in prop_oneof![
            arb_json(),
            arb_flat(),
            arb_flat().prop_map(|s| json!({"schema_version": "1.0.0", "strategy": s})),
        ],
    ) {
        check_value(value)?;
    }

    /// The shipped document with members replaced, removed or added, here and there.
    #[test]
    fn metadata_mutations_never_panic(edits in prop::collection::vec(arb_edit(), 1..5)) {
        let mut doc = real_document();
        for edit in &edits {
            apply(&mut doc, edit);
        }
        check_bytes(&serde_json::to_vec_pretty(&doc).unwrap())?;
    }

    /// The shipped document's bytes cut, flipped or spliced.
    #[test]
    fn metadata_byte_mutations_never_panic(edits in prop::collection::vec(arb_byte_edit(), 1..4)) {
        let mut bytes = real_document_text().as_bytes().to_vec();
        for edit in &edits {
            apply_bytes(&mut bytes, edit);
        }
        check_bytes(&bytes)?;
    }

    /// The shipped document turned flat (its members lifted to the top, as the seed API's
    /// entries are), then edited.
    #[test]
    fn flat_mutations_never_panic(edits in prop::collection::vec(arb_edit(), 0..4)) {
        let doc = real_document();
        let mut flat: Map<String, Value> = doc["strategy"].as_object().unwrap().clone();
        flat.insert("sharpeRatio".into(), json!(1.2));
        flat.insert("language".into(), json!("freqtrade"));
        let mut flat = Value::Object(flat);
        for edit in &edits {
            apply(&mut flat, edit);
        }
        check_value(flat)?;
    }
}

// ---------------------------------------------------------------------------------------
// Candle files.

/// The largest number of live heap bytes reading a file of `len` bytes named `name` may
/// reach: a generous multiple of what it can hold. Deflate expands at most 1032:1, so a
/// gzip file's JSON is at most that much larger. A feather file's buffers may claim
/// 16 MiB + 256 times the file once decompressed (the reader's allowance: LZ4 expands at
/// most 255:1); the arrays and candles built from them take up to about as much again.
fn allocation_bound(name: &str, len: usize) -> usize {
    const MIB: usize = 1 << 20;
    if name.ends_with("gz") {
        16 * MIB + 64 * 1032 * len
    } else if name.ends_with(".feather") {
        16 * MIB + 3 * (16 * MIB + 256 * len)
    } else {
        16 * MIB + 64 * len
    }
}

/// Writes `bytes` to a temporary file named `name`, reads it, and checks that reading
/// neither panicked (a panic fails the property) nor allocated beyond the bound; the
/// candles read then go through `check`, `clean` and `resample`.
fn read_candles(name: &str, bytes: &[u8]) -> Result<Option<Vec<Candle>>, TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap();
    let (result, peak) = measure(|| candles::read_file(&path));
    let bound = allocation_bound(name, bytes.len());
    prop_assert!(
        peak <= bound,
        "reading a {}-byte {name} reached {peak} live heap bytes (bound {bound})",
        bytes.len(),
    );
    match result {
        Ok(candles) => {
            prop_assert!(!candles.is_empty(), "Ok with no candles");
            after_reading(&candles)?;
            Ok(Some(candles))
        }
        Err(e) => {
            let text = e.to_string();
            prop_assert!(text.len() > path.display().to_string().len() + 2, "{text}");
            Ok(None)
        }
    }
}

/// What the daemon does with candles read: check, clean, resample.
fn after_reading(candles: &[Candle]) -> Result<(), TestCaseError> {
    for tf in [Timeframe::M1, Timeframe::M5, Timeframe::W1] {
        let report = candles::check(candles, tf);
        prop_assert_eq!(report.rows, candles.len());
    }
    let (clean, report) = candles::clean(candles.to_vec());
    prop_assert_eq!(report.kept_rows, clean.len());
    prop_assert!(clean.windows(2).all(|w| w[0].ts_ms < w[1].ts_ms));
    prop_assert!(clean.iter().all(|c| c.problem().is_none()));
    for (from, to) in [
        (Timeframe::M1, Timeframe::M5),
        (Timeframe::M5, Timeframe::H1),
        (Timeframe::M5, Timeframe::W1),
    ] {
        if let Ok(out) = candles::resample(&clean, from, to) {
            prop_assert!(out.len() <= clean.len());
        }
    }
    Ok(())
}

/// Cells a CSV candle row may hold.
fn arb_cell() -> BoxedStrategy<String> {
    prop_oneof![
        4 => (1.0e-3f64..1.0e4).prop_map(|v| v.to_string()),
        2 => (1_500_000_000i64..1_700_000_000).prop_map(|s| s.to_string()),
        2 => (1_500_000_000_000i64..1_700_000_000_000).prop_map(|s| s.to_string()),
        1 => prop::sample::select(vec![
            "", " ", "NaN", "nan", "inf", "-inf", "1e400", "-1e400", "1e308", "-0", "0",
            "9223372036854775807", "-9223372036854775808", "1e19", "-1e19", "1e17", "1e-300",
            "2018-01-10T04:55:00Z", "2018-01-10 04:55:00+00:00", "2018-01-10 04:55:00",
            "2018-01-10 04:55", "2018-01-10", "+262143-12-31T23:59:59Z",
            "-262143-01-01 00:00:00", "9999-99-99", "\"1,2\"", "\"", "é", "\u{feff}date",
        ]).prop_map(String::from),
        1 => any::<f64>().prop_map(|v| v.to_string()),
        1 => any::<i64>().prop_map(|v| v.to_string()),
        1 => "[ -~]{0,8}",
    ]
    .boxed()
}

/// A CSV file: a header of (mostly) the right names in any order, then rows.
fn arb_csv() -> BoxedStrategy<Vec<u8>> {
    let names = prop::collection::vec(
        prop_oneof![
            6 => prop::sample::select(vec![
                "date", "open", "high", "low", "close", "volume",
            ]),
            1 => prop::sample::select(vec![
                "Date", " timestamp ", "TIME", "ts", "\u{feff}date", "OPEN", "extra", "",
                "\"close\"",
            ]),
        ],
        0..9,
    );
    let standard = Just(vec!["date", "open", "high", "low", "close", "volume"]);
    let header = prop_oneof![2 => standard, 1 => names];
    let rows = prop::collection::vec(prop::collection::vec(arb_cell(), 0..8), 0..12);
    (header, rows, prop::sample::select(vec!["\n", "\r\n"]))
        .prop_map(|(header, rows, eol)| {
            let mut text = header.join(",");
            for row in rows {
                text.push_str(eol);
                text.push_str(&row.join(","));
            }
            text.into_bytes()
        })
        .boxed()
}

/// Freqtrade's JSON rows, with odd members, and odd documents.
fn arb_candle_json() -> BoxedStrategy<Vec<u8>> {
    let number = prop_oneof![
        4 => (1.0e-3f64..1.0e4).prop_map(Value::from),
        2 => (1_500_000_000_000i64..1_700_000_000_000).prop_map(Value::from),
        1 => Just(Value::Null),
        1 => prop::sample::select(vec![
            1e300, -1e300, f64::MAX, f64::MIN, 9.3e18, -9.3e18, 0.0, -1.0, 1e-300,
        ]).prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => Just(Value::from("1")),
        1 => Just(json!([])),
    ];
    let row = prop_oneof![
        8 => prop::collection::vec(number.clone(), 6..=6).prop_map(Value::Array),
        1 => prop::collection::vec(number, 0..9).prop_map(Value::Array),
        1 => arb_json(),
    ];
    prop_oneof![
        8 => prop::collection::vec(row, 0..20).prop_map(|rows| serde_json::to_vec(&rows).unwrap()),
        1 => arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
    .boxed()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

proptest! {
    #![proptest_config(config(800))]

    /// CSV files, generated and then maybe damaged.
    #[test]
    fn csv_candles_never_panic(
        bytes in arb_csv(),
        edits in prop::collection::vec(arb_byte_edit(), 0..3),
    ) {
        let mut bytes = bytes;
        for edit in &edits {
            apply_bytes(&mut bytes, edit);
        }
        read_candles("x.csv", &bytes)?;
    }

    /// JSON files, plain and gzipped (under both names), generated and maybe damaged
    /// (for gzip: before or after compressing).
    #[test]
    fn json_candles_never_panic(
        bytes in arb_candle_json(),
        edits in prop::collection::vec(arb_byte_edit(), 0..3),
        damage_compressed in any::<bool>(),
    ) {
        let mut damaged = bytes.clone();
        for edit in &edits {
            apply_bytes(&mut damaged, edit);
        }
        let plain = read_candles("x.json", &damaged)?;
        let gz = if damage_compressed {
            let mut gz = gzip(&bytes);
            for edit in &edits {
                apply_bytes(&mut gz, edit);
            }
            gz
        } else {
            gzip(&damaged)
        };
        read_candles("x.json.gz", &gz)?;
        let jsongz = read_candles("X-5m.JSONGZ", &gzip(&damaged))?;
        // The same JSON reads the same, gzipped or not.
        prop_assert_eq!(
            plain.map(|c| format!("{c:?}")),
            jsongz.map(|c| format!("{c:?}"))
        );
    }

    /// Arbitrary bytes under every extension.
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..400),
        ext in prop::sample::select(candles::EXTENSIONS.to_vec()),
    ) {
        read_candles(&format!("x.{ext}"), &bytes)?;
    }
}

// ---------------------------------------------------------------------------------------
// Feather (Arrow IPC) files.

/// How a generated feather column is typed.
#[derive(Debug, Clone, Copy)]
enum Kind {
    TsS,
    TsMs,
    TsUs,
    TsNs,
    Date64,
    I64,
    I32,
    F32,
    F64,
    Utf8,
}

fn array(kind: Kind, values: &[Option<i64>]) -> ArrayRef {
    let v = values.to_vec();
    match kind {
        Kind::TsS => Arc::new(TimestampSecondArray::from(v)),
        Kind::TsMs => Arc::new(TimestampMillisecondArray::from(v).with_timezone("UTC")),
        Kind::TsUs => Arc::new(TimestampMicrosecondArray::from(v)),
        Kind::TsNs => Arc::new(TimestampNanosecondArray::from(v)),
        Kind::Date64 => Arc::new(Date64Array::from(v)),
        Kind::I64 => Arc::new(Int64Array::from(v)),
        Kind::I32 => Arc::new(Int32Array::from(
            v.iter().map(|x| x.map(|x| x as i32)).collect::<Vec<_>>(),
        )),
        Kind::F32 => Arc::new(Float32Array::from(
            v.iter()
                .map(|x| x.map(|x| x as f32 / 7.0))
                .collect::<Vec<_>>(),
        )),
        Kind::F64 => Arc::new(Float64Array::from(
            v.iter()
                .map(|x| x.map(|x| f64::from_bits(x as u64).abs().max(x as f64)))
                .collect::<Vec<_>>(),
        )),
        Kind::Utf8 => Arc::new(StringArray::from(
            v.iter()
                .map(|x| x.map(|x| x.to_string()))
                .collect::<Vec<_>>(),
        )),
    }
}

/// A generated feather file: columns (name, kind, values), batches, compression.
#[derive(Debug, Clone)]
struct Feather {
    columns: Vec<(String, Kind)>,
    rows: Vec<Vec<Option<i64>>>,
    batches: usize,
    compression: Option<CompressionType>,
}

impl Feather {
    /// The open times a reader must return, when the file is plainly good: the standard
    /// columns, times in ms (as stored), numeric prices, no nulls, every time a date.
    fn expected_times(&self) -> Option<Vec<i64>> {
        let standard = ["date", "open", "high", "low", "close", "volume"];
        let names_ok = self.columns.len() >= 6
            && self.columns[..6]
                .iter()
                .zip(standard)
                .all(|((n, _), s)| n == s)
            && self.columns[6..]
                .iter()
                .all(|(n, _)| n.starts_with("extra"));
        let time_ok = matches!(self.columns[0].1, Kind::TsMs | Kind::Date64);
        let prices_ok = self.columns[1..6]
            .iter()
            .all(|(_, k)| matches!(k, Kind::F64 | Kind::F32 | Kind::I64 | Kind::I32));
        let values_ok = self.rows.iter().all(|r| r.iter().all(Option::is_some));
        let dates_ok = self
            .rows
            .iter()
            .all(|r| chrono::DateTime::from_timestamp_millis(r[0].unwrap_or(0)).is_some());
        (names_ok && time_ok && prices_ok && values_ok && dates_ok)
            .then(|| self.rows.iter().filter_map(|r| r[0]).collect())
    }

    fn write(&self) -> Vec<u8> {
        let n = self.rows.len();
        let fields: Vec<Field> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (name, kind))| {
                let values: Vec<Option<i64>> = self.rows.iter().map(|r| r[i]).collect();
                Field::new(name, array(*kind, &values).data_type().clone(), true)
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let columns: Vec<ArrayRef> = (0..self.columns.len())
            .map(|i| {
                let values: Vec<Option<i64>> = self.rows.iter().map(|r| r[i]).collect();
                array(self.columns[i].1, &values)
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let options = IpcWriteOptions::default()
            .try_with_compression(self.compression)
            .unwrap();
        let mut out = Vec::new();
        {
            let mut writer = FileWriter::try_new_with_options(&mut out, &schema, options).unwrap();
            let per = n.div_ceil(self.batches.max(1)).max(1);
            let mut start = 0;
            while start < n {
                let len = per.min(n - start);
                writer.write(&batch.slice(start, len)).unwrap();
                start += len;
            }
            writer.finish().unwrap();
        }
        out
    }
}

fn arb_feather() -> BoxedStrategy<Feather> {
    let time_kind = prop_oneof![
        3 => Just(Kind::TsMs),
        1 => Just(Kind::TsS),
        1 => Just(Kind::TsUs),
        1 => Just(Kind::TsNs),
        1 => Just(Kind::Date64),
        1 => Just(Kind::I64),
        1 => Just(Kind::F64),
        1 => Just(Kind::Utf8),
    ];
    let value_kind = prop_oneof![
        6 => Just(Kind::F64),
        1 => Just(Kind::F32),
        1 => Just(Kind::I64),
        1 => Just(Kind::I32),
        1 => Just(Kind::Utf8),
        1 => Just(Kind::TsMs),
    ];
    let name = |standard: &'static str| {
        prop_oneof![
            8 => Just(standard.to_string()),
            1 => prop::sample::select(vec!["Date", "TS", "time", "x", "", "close", "é"])
                .prop_map(String::from),
        ]
    };
    let columns = (
        time_kind,
        prop::collection::vec(value_kind, 5..=5),
        name("date"),
        name("open"),
        name("volume"),
        0..3usize,
    )
        .prop_map(|(tk, vk, date, open, volume, extra)| {
            let mut columns = vec![
                (date, tk),
                (open, vk[0]),
                ("high".into(), vk[1]),
                ("low".into(), vk[2]),
                ("close".into(), vk[3]),
                (volume, vk[4]),
            ];
            for i in 0..extra {
                columns.push((format!("extra{i}"), Kind::Utf8));
            }
            columns
        });
    let value = prop_oneof![
        6 => (1_500_000_000_000i64..1_700_000_000_000).prop_map(Some),
        3 => (1i64..10_000).prop_map(Some),
        1 => Just(None),
        1 => prop::sample::select(vec![
            i64::MAX, i64::MIN, i64::MAX / 1000 + 1, i64::MIN / 1000 - 1, -1, 0,
            i64::from(i32::MAX) + 1,
        ]).prop_map(Some),
        1 => any::<i64>().prop_map(Some),
    ];
    (
        columns,
        prop::collection::vec(prop::collection::vec(value, 9..=9), 0..24),
        1..4usize,
        prop_oneof![
            Just(None),
            Just(Some(CompressionType::LZ4_FRAME)),
            Just(Some(CompressionType::ZSTD)),
        ],
        any::<bool>(),
    )
        .prop_map(|(columns, rows, batches, compression, plain)| Feather {
            rows: rows
                .into_iter()
                .map(|r| {
                    let mut r = r[..columns.len()].to_vec();
                    if plain {
                        // No nulls, and times that are dates: files that must read.
                        let t = 1_600_000_000_000;
                        r[0] = r[0].filter(|v| v.unsigned_abs() < 1 << 50).or(Some(t));
                        r.iter_mut().for_each(|v| *v = v.or(Some(1)));
                    }
                    r
                })
                .collect(),
            columns,
            batches,
            compression,
        })
        .boxed()
}

fn eth_btc() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let path: PathBuf =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market/ETH_BTC-5m.feather");
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

proptest! {
    #![proptest_config(config(600))]

    /// Generated feather files of every time unit, column type and compression: read
    /// without panicking, and undamaged ones with standard columns read back their rows.
    #[test]
    fn feather_generated_never_panics(feather in arb_feather()) {
        let bytes = feather.write();
        let read = read_candles("x.feather", &bytes)?;
        if let Some(times) = feather.expected_times() {
            let got: Option<Vec<i64>> = read.map(|c| c.iter().map(|c| c.ts_ms).collect());
            // No rows at all is an error (an empty file), else every row comes back.
            prop_assert_eq!(got, (!times.is_empty()).then_some(times));
        }
    }

    /// Generated feather files, damaged: cut, flipped, lengths and offsets overwritten.
    #[test]
    fn feather_damaged_never_panics(
        feather in arb_feather(),
        edits in prop::collection::vec(arb_byte_edit(), 1..4),
    ) {
        let mut bytes = feather.write();
        for edit in &edits {
            apply_bytes(&mut bytes, edit);
        }
        read_candles("x.feather", &bytes)?;
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// The shipped ETH/BTC 5m candles, damaged.
    #[test]
    fn feather_shipped_file_damaged_never_panics(
        edits in prop::collection::vec(arb_byte_edit(), 1..4),
        near_end in any::<bool>(),
    ) {
        let original = eth_btc();
        let mut bytes = original.to_vec();
        for edit in &edits {
            if near_end {
                // The footer and the last batch's metadata: where the lengths are.
                let tail = bytes.len().saturating_sub(4096);
                let mut end = bytes.split_off(tail);
                apply_bytes(&mut end, edit);
                bytes.extend_from_slice(&end);
            } else {
                apply_bytes(&mut bytes, edit);
            }
        }
        read_candles("ETH_BTC-5m.feather", &bytes)?;
    }
}
