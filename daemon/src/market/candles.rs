//! Candles (OHLCV) from Freqtrade's data directory, in every format it writes, and from CSV.
//!
//! [`read_file`] picks the reader by the file's extension:
//!
//! - `.feather`: an Apache Arrow IPC file (feather v2) as pandas `to_feather` / pyarrow
//!   write it, uncompressed, LZ4 (what Freqtrade writes) or zstd compressed. Columns `date`
//!   (a timestamp in s, ms, µs or ns; tz-naive values are taken as UTC), `open`, `high`,
//!   `low`, `close`, `volume` (float64; float32 and integers are accepted too).
//! - `.json`: a JSON array of arrays `[ts_ms, open, high, low, close, volume]`.
//! - `.json.gz` (also `.jsongz`): the same, gzipped.
//! - `.csv`: a header row, then one candle a row. Header names are matched ignoring case;
//!   the time column is `date`, `timestamp`, `time` or `ts` and holds epoch seconds or
//!   milliseconds (told apart by magnitude; micro- and nanoseconds too), RFC 3339
//!   (`2018-01-10T04:55:00Z`, `2018-01-10 04:55:00+00:00`) or `YYYY-MM-DD HH:MM:SS` (UTC).
//!   `open`, `high`, `low`, `close`, `volume` are required; other columns are ignored.
//!
//! A missing value (JSON `null`, an empty CSV cell, an Arrow null) is read as NaN, so that
//! [`check`] reports the row and [`clean`] drops it. A file with no candles is an error.
//!
//! Invariants: readers return the rows in file order, unchecked. After [`clean`] the candles
//! are sorted strictly ascending by open time (no two share a timestamp) and every one is
//! valid (see [`Candle::problem`]). [`resample`] expects that.
//!
//! [`find_pair_file`] and [`list_pairs`] know Freqtrade's layout: spot pairs in
//! `{data_dir}/{BASE}_{QUOTE}-{timeframe}.{ext}`, futures pairs in
//! `{data_dir}/futures/{BASE}_{QUOTE}_{SETTLE}-{timeframe}-futures.{ext}`.

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Date64Type, Float32Type, Float64Type, Int32Type, Int64Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType,
};
use arrow_array::{Array, ArrayRef};
use arrow_ipc::reader::FileReader;
use arrow_schema::{ArrowError, DataType, TimeUnit};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::fmt;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// One candle: prices and volume over `[ts_ms, ts_ms + timeframe)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Candle {
    /// The candle's open time, epoch milliseconds, UTC.
    pub ts_ms: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

impl Candle {
    /// Why this candle cannot be used, or `None` if it is fine: a price or the volume that is
    /// NaN or infinite, a price that is not positive, a negative volume, or a high or low
    /// that does not bound the other prices. Zero volume is fine.
    pub fn problem(&self) -> Option<String> {
        let fields = [
            ("open", self.open),
            ("high", self.high),
            ("low", self.low),
            ("close", self.close),
            ("volume", self.volume),
        ];
        for (name, value) in fields {
            if !value.is_finite() {
                return Some(format!("{name} is {value}"));
            }
        }
        for (name, value) in &fields[..4] {
            if *value <= 0.0 {
                return Some(format!("{name} is not positive ({value})"));
            }
        }
        if self.volume < 0.0 {
            return Some(format!("volume is negative ({})", self.volume));
        }
        if self.high < self.low {
            return Some(format!("high {} is below low {}", self.high, self.low));
        }
        if self.high < self.open.max(self.close) {
            return Some(format!("high {} is below open or close", self.high));
        }
        if self.low > self.open.min(self.close) {
            return Some(format!("low {} is above open or close", self.low));
        }
        None
    }
}

/// A candle length, as Freqtrade spells it ("1m" … "1w").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Timeframe {
    M1,
    M3,
    M5,
    M15,
    M30,
    H1,
    H2,
    H4,
    H6,
    H8,
    H12,
    D1,
    D3,
    W1,
}

impl Timeframe {
    /// Every timeframe, shortest first.
    pub const ALL: [Timeframe; 14] = [
        Self::M1,
        Self::M3,
        Self::M5,
        Self::M15,
        Self::M30,
        Self::H1,
        Self::H2,
        Self::H4,
        Self::H6,
        Self::H8,
        Self::H12,
        Self::D1,
        Self::D3,
        Self::W1,
    ];

    /// Freqtrade's name for it, e.g. "5m".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::M1 => "1m",
            Self::M3 => "3m",
            Self::M5 => "5m",
            Self::M15 => "15m",
            Self::M30 => "30m",
            Self::H1 => "1h",
            Self::H2 => "2h",
            Self::H4 => "4h",
            Self::H6 => "6h",
            Self::H8 => "8h",
            Self::H12 => "12h",
            Self::D1 => "1d",
            Self::D3 => "3d",
            Self::W1 => "1w",
        }
    }

    /// The length in minutes.
    pub fn minutes(self) -> i64 {
        match self {
            Self::M1 => 1,
            Self::M3 => 3,
            Self::M5 => 5,
            Self::M15 => 15,
            Self::M30 => 30,
            Self::H1 => 60,
            Self::H2 => 120,
            Self::H4 => 240,
            Self::H6 => 360,
            Self::H8 => 480,
            Self::H12 => 720,
            Self::D1 => 1440,
            Self::D3 => 3 * 1440,
            Self::W1 => 7 * 1440,
        }
    }

    /// The length in milliseconds.
    pub fn millis(self) -> i64 {
        self.minutes() * 60_000
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Timeframe {
    type Err = ParseTimeframeError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == wanted)
            .ok_or_else(|| ParseTimeframeError {
                input: s.to_string(),
            })
    }
}

impl TryFrom<String> for Timeframe {
    type Error = ParseTimeframeError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Timeframe> for String {
    fn from(t: Timeframe) -> String {
        t.as_str().to_string()
    }
}

/// A string that is not one of the [`Timeframe`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown timeframe `{input}`; accepted: {}", accepted_timeframes())]
pub struct ParseTimeframeError {
    /// What was given.
    pub input: String,
}

fn accepted_timeframes() -> String {
    let names: Vec<&str> = Timeframe::ALL.iter().map(|t| t.as_str()).collect();
    names.join(", ")
}

/// The file extensions [`read_file`] reads, in the order [`find_pair_file`] tries them.
pub const EXTENSIONS: [&str; 5] = ["feather", "json.gz", "jsongz", "json", "csv"];

/// Names accepted for the time column of a CSV or feather file (ignoring case).
const TIME_COLUMNS: [&str; 4] = ["date", "timestamp", "time", "ts"];

/// Why candles could not be read, found or resampled.
#[derive(Debug, thiserror::Error)]
pub enum CandleError {
    /// The file could not be read at all.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file holds no candles.
    #[error("{path}: empty file: no candles in it")]
    Empty { path: PathBuf },
    /// The extension is none of [`EXTENSIONS`].
    #[error("{path}: unsupported file type; supported: .feather, .json, .json.gz (.jsongz), .csv")]
    UnsupportedExtension { path: PathBuf },
    /// Not JSON, or not an array of rows.
    #[error(
        "{path}: not JSON candle data ([[ts_ms, open, high, low, close, volume], ...]): {source}"
    )]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    /// A row that cannot be read; rows count from 1, the CSV header not counted.
    #[error("{path}: row {row}: {reason}")]
    BadRow {
        path: PathBuf,
        row: usize,
        reason: String,
    },
    /// A required column is missing.
    #[error("{path}: missing column `{column}` (columns found: {})", found.join(", "))]
    MissingColumn {
        path: PathBuf,
        column: String,
        found: Vec<String>,
    },
    /// A feather column has a type this module does not read.
    #[error("{path}: column `{column}` has type {found}; expected {expected}")]
    ColumnType {
        path: PathBuf,
        column: String,
        found: String,
        expected: &'static str,
    },
    /// The CSV reader failed (bad quoting, rows of different lengths, bad UTF-8).
    #[error("{path}: bad CSV: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    /// Not an Arrow IPC (feather v2) file, or a damaged one.
    #[error("{path}: cannot read as Arrow IPC (feather v2): {source}")]
    Arrow { path: PathBuf, source: ArrowError },
    /// No file for the pair and timeframe.
    #[error(
        "no {timeframe} candles for `{pair}` in {dir}; tried: {}",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        pair: String,
        timeframe: Timeframe,
        dir: PathBuf,
        tried: Vec<PathBuf>,
    },
    /// The pair is not written like "BTC/USDT" or "XRP/USDT:USDT".
    #[error("`{pair}` is not a pair like BTC/USDT (spot) or XRP/USDT:USDT (futures)")]
    BadPair { pair: String },
    /// The timeframes or the candles do not allow resampling.
    #[error("cannot resample {from} to {to}: {reason}")]
    Resample {
        from: Timeframe,
        to: Timeframe,
        reason: String,
    },
}

/// Reads a candle file, choosing the format by its extension (see the module docs).
pub fn read_file(path: &Path) -> Result<Vec<Candle>, CandleError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let Some(ext) = EXTENSIONS
        .into_iter()
        .find(|ext| name.strip_suffix(ext).is_some_and(|s| s.ends_with('.')))
    else {
        return Err(CandleError::UnsupportedExtension { path: path.into() });
    };
    let io = |source| CandleError::Io {
        path: path.into(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(CandleError::Empty { path: path.into() });
    }
    let candles = match ext {
        "feather" => read_feather(path, bytes)?,
        "json" => read_json(path, &bytes)?,
        "json.gz" | "jsongz" => {
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_end(&mut text)
                .map_err(io)?;
            read_json(path, &text)?
        }
        _ => read_csv(path, &bytes)?,
    };
    if candles.is_empty() {
        return Err(CandleError::Empty { path: path.into() });
    }
    Ok(candles)
}

/// One row of Freqtrade's JSON: `[ts_ms, open, high, low, close, volume]`; `null` is NaN.
type JsonRow = (
    f64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Option<f64>,
);

fn read_json(path: &Path, text: &[u8]) -> Result<Vec<Candle>, CandleError> {
    let json = |source| CandleError::Json {
        path: path.into(),
        source,
    };
    // Split into rows first, so that an error names the row.
    let rows: Vec<&RawValue> = serde_json::from_slice(text).map_err(json)?;
    rows.iter()
        .enumerate()
        .map(|(i, raw)| {
            let bad = |reason: String| CandleError::BadRow {
                path: path.into(),
                row: i + 1,
                reason,
            };
            let (ts, open, high, low, close, volume): JsonRow = serde_json::from_str(raw.get())
                .map_err(|e| {
                    bad(format!(
                        "expected [ts_ms, open, high, low, close, volume]: {e}"
                    ))
                })?;
            if !ts.is_finite() {
                return Err(bad(format!("timestamp is {ts}")));
            }
            let Some(ts_ms) = date_ms(ts.round() as i64) else {
                return Err(bad(format!("timestamp {ts} is out of range")));
            };
            let nan = f64::NAN;
            Ok(Candle {
                ts_ms,
                open: open.unwrap_or(nan),
                high: high.unwrap_or(nan),
                low: low.unwrap_or(nan),
                close: close.unwrap_or(nan),
                volume: volume.unwrap_or(nan),
            })
        })
        .collect()
}

/// Finds each wanted column (names compared ignoring case): for the first entry, any of the
/// time column's names.
fn column_indices(path: &Path, names: &[String]) -> Result<[usize; 6], CandleError> {
    let find = |wanted: &[&str], label: &str| {
        names
            .iter()
            .position(|n| wanted.iter().any(|w| n.trim().eq_ignore_ascii_case(w)))
            .ok_or_else(|| CandleError::MissingColumn {
                path: path.into(),
                column: label.to_string(),
                found: names.to_vec(),
            })
    };
    Ok([
        find(&TIME_COLUMNS, "date (or timestamp, time, ts)")?,
        find(&["open"], "open")?,
        find(&["high"], "high")?,
        find(&["low"], "low")?,
        find(&["close"], "close")?,
        find(&["volume"], "volume")?,
    ])
}

fn read_csv(path: &Path, bytes: &[u8]) -> Result<Vec<Candle>, CandleError> {
    let csv_err = |source| CandleError::Csv {
        path: path.into(),
        source,
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let names: Vec<String> = reader
        .headers()
        .map_err(csv_err)?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_string())
        .collect();
    let [time, open, high, low, close, volume] = column_indices(path, &names)?;
    let mut candles = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(csv_err)?;
        let bad = |reason: String| CandleError::BadRow {
            path: path.into(),
            row: i + 1,
            reason,
        };
        let cell = |col: usize| record.get(col).unwrap_or("");
        let number = |col: usize| -> Result<f64, CandleError> {
            let text = cell(col);
            if text.is_empty() {
                return Ok(f64::NAN);
            }
            text.parse()
                .map_err(|_| bad(format!("column `{}`: `{text}` is not a number", names[col])))
        };
        candles.push(Candle {
            ts_ms: parse_time(cell(time))
                .map_err(|reason| bad(format!("column `{}`: {reason}", names[time])))?,
            open: number(open)?,
            high: number(high)?,
            low: number(low)?,
            close: number(close)?,
            volume: number(volume)?,
        });
    }
    Ok(candles)
}

/// `ms` if it is a date (chrono's range: about 262,000 years either side of 1970), else
/// `None`. Every reader checks open times with this: a time outside is corrupt data, and
/// would overflow the arithmetic of [`check`] and [`resample`] (`i64::MAX - i64::MIN`).
fn date_ms(ms: i64) -> Option<i64> {
    DateTime::from_timestamp_millis(ms).map(|_| ms)
}

/// Epoch milliseconds from a number of seconds, milliseconds, microseconds or nanoseconds,
/// told apart by magnitude (seconds up to the year 5138, milliseconds from 1973 on).
fn epoch_to_ms(n: f64) -> i64 {
    let ms = match n.abs() {
        a if a < 1e11 => n * 1e3,
        a if a < 1e14 => n,
        a if a < 1e17 => n / 1e3,
        _ => n / 1e6,
    };
    ms.round() as i64
}

/// A CSV time cell as epoch milliseconds (UTC).
fn parse_time(text: &str) -> Result<i64, String> {
    if text.is_empty() {
        return Err("no time".into());
    }
    if let Ok(n) = text.parse::<f64>() {
        return if n.is_finite() {
            date_ms(epoch_to_ms(n)).ok_or_else(|| format!("time `{text}` is out of range"))
        } else {
            Err(format!("time `{text}` is not finite"))
        };
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis());
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(t.and_utc().timestamp_millis());
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis());
    }
    Err(format!(
        "cannot read time `{text}`: expected epoch seconds or milliseconds, \
         RFC 3339, or YYYY-MM-DD HH:MM:SS (UTC)"
    ))
}

fn read_feather(path: &Path, bytes: Vec<u8>) -> Result<Vec<Candle>, CandleError> {
    let arrow = |source| CandleError::Arrow {
        path: path.into(),
        source,
    };
    check_ipc_layout(&bytes).map_err(arrow)?;
    // arrow-ipc also panics on damaged metadata its flatbuffer verifier lets through (a
    // float of unknown precision, a list without its child, ...: `convert::fb_to_schema`
    // alone holds dozens of `panic!` and `unwrap`). A damaged file is an error to report,
    // not a reason to kill the thread; nothing from the failed read is kept.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| arrow_candles(path, bytes)))
        .unwrap_or_else(|panic| {
            let why = panic
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("a panic");
            Err(arrow(ArrowError::ParseError(format!(
                "damaged metadata (arrow-ipc: {why})"
            ))))
        })
}

/// The candles of an Arrow IPC file whose layout [`check_ipc_layout`] accepted.
fn arrow_candles(path: &Path, bytes: Vec<u8>) -> Result<Vec<Candle>, CandleError> {
    let arrow = |source| CandleError::Arrow {
        path: path.into(),
        source,
    };
    let reader = FileReader::try_new(Cursor::new(bytes), None).map_err(arrow)?;
    let schema = reader.schema();
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let [time, open, high, low, close, volume] = column_indices(path, &names)?;
    let mut candles = Vec::new();
    for batch in reader {
        let batch = batch.map_err(arrow)?;
        let first_row = candles.len() + 1;
        let ts = timestamps_ms(path, &names[time], batch.column(time), first_row)?;
        let [o, h, l, c, v] = [open, high, low, close, volume]
            .map(|col| floats(path, &names[col], batch.column(col)));
        let (o, h, l, c, v) = (o?, h?, l?, c?, v?);
        candles.extend((0..batch.num_rows()).map(|i| Candle {
            ts_ms: ts[i],
            open: o[i],
            high: h[i],
            low: l[i],
            close: c[i],
            volume: v[i],
        }));
    }
    Ok(candles)
}

/// How much larger than its compressed bytes an Arrow IPC buffer can get once
/// decompressed: LZ4 frames reach at most 255:1 (a match grows by 255 bytes per input byte),
/// zstd at most 32,768:1 (an RLE block: 4 bytes for 128 KiB).
fn max_expansion(codec: arrow_ipc::CompressionType) -> Option<u64> {
    match codec {
        arrow_ipc::CompressionType::LZ4_FRAME => Some(256),
        arrow_ipc::CompressionType::ZSTD => Some(32_768),
        _ => None, // arrow-ipc rejects other codecs itself
    }
}

/// What the buffers of a feather file may add up to once decompressed, beyond 256 times
/// the file's size: far above real candles (2-5:1; a constant column compresses further,
/// but 16 MiB is 350,000 rows of six such columns), far below an allocation that hurts.
const DECOMPRESSED_ALLOWANCE: u64 = 16 << 20;

/// Checks the lengths and offsets of an Arrow IPC file that arrow-ipc's `FileReader`
/// trusts, before it sees them. arrow-ipc allocates whatever they claim up front (the
/// footer's length, each block's, each compressed buffer's uncompressed length, for which
/// it calls `Vec::with_capacity`), so a 300-byte file could claim terabytes and abort the
/// process; and it panics on some offsets past the end (`slice_with_length`) and negative
/// lengths (`to_usize().unwrap()`). What is checked here: the footer lies within the file
/// and has a schema and whole metadata; every block lies within the file; every buffer of
/// a batch lies within its block's body; no compressed buffer claims more than its codec
/// can expand it to, and all of them together no more than 256 times the file plus
/// [`DECOMPRESSED_ALLOWANCE`]. Anything else wrong is left to arrow-ipc, which reports it.
fn check_ipc_layout(bytes: &[u8]) -> Result<(), ArrowError> {
    let bad = |what: String| Err(ArrowError::ParseError(what));
    let len = bytes.len();
    let Some(trailer) = len.checked_sub(10).map(|at| &bytes[at..]) else {
        return Ok(()); // too short for a footer: arrow-ipc says so
    };
    let footer_len = i32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let Ok(footer_len) = usize::try_from(footer_len) else {
        return Ok(()); // arrow-ipc rejects a negative length
    };
    if footer_len > len - 10 {
        return bad(format!(
            "the footer claims {footer_len} bytes in a file of {len}"
        ));
    }
    let footer = arrow_ipc::root_as_footer(&bytes[len - 10 - footer_len..len - 10])
        .map_err(|e| ArrowError::ParseError(format!("Unable to get root as footer: {e:?}")))?;
    if footer.schema().is_none() {
        return bad("the footer holds no schema".into());
    }
    let whole = |kv: arrow_ipc::KeyValue<'_>| kv.key().is_some() && kv.value().is_some();
    if !footer.custom_metadata().into_iter().flatten().all(whole) {
        return bad("the footer's metadata has an entry without a key or value".into());
    }
    let mut allowance = (len as u64)
        .saturating_mul(256)
        .saturating_add(DECOMPRESSED_ALLOWANCE);
    let blocks = footer.dictionaries().into_iter().flatten();
    for (n, block) in blocks
        .chain(footer.recordBatches().into_iter().flatten())
        .enumerate()
    {
        let (offset, meta, body) = (block.offset(), block.metaDataLength(), block.bodyLength());
        let range = usize::try_from(offset).ok().and_then(|start| {
            let meta = usize::try_from(meta).ok().filter(|m| *m >= 8)?;
            let end = start
                .checked_add(meta)?
                .checked_add(usize::try_from(body).ok()?)?;
            (end <= len).then_some((start, start + meta, end))
        });
        let Some((start, body_start, end)) = range else {
            return bad(format!(
                "block {n} (at {offset}, {meta} bytes of metadata, {body} of data) \
                 does not fit in the file ({len} bytes)"
            ));
        };
        let block_bytes = &bytes[start..end];
        let prefix = if block_bytes[..4] == [0xff; 4] { 8 } else { 4 };
        let Ok(message) = arrow_ipc::root_as_message(&block_bytes[prefix..]) else {
            continue; // arrow-ipc reports it
        };
        let batch = message
            .header_as_record_batch()
            .or_else(|| message.header_as_dictionary_batch()?.data());
        let Some(batch) = batch else { continue };
        let data = &bytes[body_start..end];
        let expansion = match batch.compression() {
            None => None,
            Some(c) => match max_expansion(c.codec()) {
                Some(ratio) => Some(ratio),
                None => continue,
            },
        };
        for buffer in batch.buffers().into_iter().flatten() {
            let (at, size) = (buffer.offset(), buffer.length());
            let Some(buf) = usize::try_from(at).ok().and_then(|at| {
                let end = at.checked_add(usize::try_from(size).ok()?)?;
                data.get(at..end)
            }) else {
                return bad(format!(
                    "block {n}: a buffer (at {at}, {size} bytes) does not fit in its {} \
                     bytes of data",
                    data.len()
                ));
            };
            let Some(ratio) = expansion else { continue };
            let (Some(head), Some(compressed)) = (buf.get(..8), buf.get(8..)) else {
                continue; // empty, or too short for its length: arrow-ipc reports it
            };
            let claimed = i64::from_le_bytes(head.try_into().expect("8 bytes"));
            let Ok(claimed) = u64::try_from(claimed) else {
                continue; // -1: stored uncompressed; other negatives: arrow-ipc reports them
            };
            if claimed > ratio.saturating_mul(compressed.len() as u64) {
                return bad(format!(
                    "block {n}: a buffer claims {claimed} bytes once decompressed, more than \
                     its {} compressed bytes can hold",
                    compressed.len()
                ));
            }
            let Some(left) = allowance.checked_sub(claimed) else {
                return bad(format!(
                    "the buffers claim more than {} bytes once decompressed, too many for a \
                     file of {len} bytes",
                    (len as u64).saturating_mul(256) + DECOMPRESSED_ALLOWANCE
                ));
            };
            allowance = left;
        }
    }
    Ok(())
}

/// An Arrow time column as epoch milliseconds; `first_row` numbers its first row in errors.
fn timestamps_ms(
    path: &Path,
    name: &str,
    column: &ArrayRef,
    first_row: usize,
) -> Result<Vec<i64>, CandleError> {
    use TimeUnit::*;
    /// Stored value to epoch ms, `None` on overflow.
    type ToMs = fn(i64) -> Option<i64>;
    let (values, to_ms): (Vec<Option<i64>>, ToMs) = match column.data_type() {
        DataType::Timestamp(Second, _) => (ints::<TimestampSecondType>(column), |t| {
            t.checked_mul(1_000)
        }),
        DataType::Timestamp(Millisecond, _) => (ints::<TimestampMillisecondType>(column), Some),
        DataType::Timestamp(Microsecond, _) => (ints::<TimestampMicrosecondType>(column), |t| {
            Some(t.div_euclid(1_000))
        }),
        DataType::Timestamp(Nanosecond, _) => (ints::<TimestampNanosecondType>(column), |t| {
            Some(t.div_euclid(1_000_000))
        }),
        DataType::Date64 => (ints::<Date64Type>(column), Some),
        DataType::Int64 => (ints::<Int64Type>(column), |t| Some(epoch_to_ms(t as f64))),
        other => {
            return Err(CandleError::ColumnType {
                path: path.into(),
                column: name.into(),
                found: other.to_string(),
                expected: "a timestamp (or int64 epoch time)",
            });
        }
    };
    values
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let bad = |reason: String| CandleError::BadRow {
                path: path.into(),
                row: first_row + i,
                reason,
            };
            let t = t.ok_or_else(|| bad(format!("column `{name}` is null")))?;
            to_ms(t)
                .and_then(date_ms)
                .ok_or_else(|| bad(format!("column `{name}`: time {t} is out of range")))
        })
        .collect()
}

/// The values of an i64-based Arrow column of type `T`.
fn ints<T: ArrowPrimitiveType<Native = i64>>(column: &ArrayRef) -> Vec<Option<i64>> {
    column.as_primitive::<T>().iter().collect()
}

/// An Arrow number column as f64, nulls as NaN.
fn floats(path: &Path, name: &str, column: &ArrayRef) -> Result<Vec<f64>, CandleError> {
    let nan = f64::NAN;
    Ok(match column.data_type() {
        DataType::Float64 => {
            let array = column.as_primitive::<Float64Type>();
            if array.null_count() == 0 {
                array.values().to_vec()
            } else {
                array.iter().map(|v| v.unwrap_or(nan)).collect()
            }
        }
        DataType::Float32 => column
            .as_primitive::<Float32Type>()
            .iter()
            .map(|v| v.map_or(nan, f64::from))
            .collect(),
        DataType::Int64 => column
            .as_primitive::<Int64Type>()
            .iter()
            .map(|v| v.map_or(nan, |v| v as f64))
            .collect(),
        DataType::Int32 => column
            .as_primitive::<Int32Type>()
            .iter()
            .map(|v| v.map_or(nan, f64::from))
            .collect(),
        other => {
            return Err(CandleError::ColumnType {
                path: path.into(),
                column: name.into(),
                found: other.to_string(),
                expected: "float64 (or float32, int64, int32)",
            });
        }
    })
}

/// Freqtrade's file name for a pair: "BTC/USDT" -> "BTC_USDT", "XRP/USDT:USDT" ->
/// "XRP_USDT_USDT" (each of `/ .@$+:` and space becomes `_`).
pub fn pair_to_filename(pair: &str) -> String {
    pair.chars()
        .map(|c| if "/ .@$+:".contains(c) { '_' } else { c })
        .collect()
}

/// Finds the candle file of `pair` ("BTC/USDT" for spot, "XRP/USDT:USDT" for futures) in a
/// Freqtrade data directory, trying the extensions in the order of [`EXTENSIONS`].
pub fn find_pair_file(
    data_dir: &Path,
    pair: &str,
    timeframe: Timeframe,
) -> Result<PathBuf, CandleError> {
    let well_formed = pair.split_once('/').is_some_and(|(base, quote)| {
        !base.is_empty() && !quote.is_empty() && !quote.starts_with(':')
    });
    if !well_formed {
        return Err(CandleError::BadPair { pair: pair.into() });
    }
    let name = pair_to_filename(pair);
    let (dir, stem) = if pair.contains(':') {
        (
            data_dir.join("futures"),
            format!("{name}-{timeframe}-futures"),
        )
    } else {
        (data_dir.to_path_buf(), format!("{name}-{timeframe}"))
    };
    let tried: Vec<PathBuf> = EXTENSIONS
        .iter()
        .map(|ext| dir.join(format!("{stem}.{ext}")))
        .collect();
    match tried.iter().find(|p| p.is_file()) {
        Some(found) => Ok(found.clone()),
        None => Err(CandleError::NotFound {
            pair: pair.into(),
            timeframe,
            dir: data_dir.into(),
            tried,
        }),
    }
}

/// [`find_pair_file`] then [`read_file`].
pub fn read_pair(
    data_dir: &Path,
    pair: &str,
    timeframe: Timeframe,
) -> Result<Vec<Candle>, CandleError> {
    read_file(&find_pair_file(data_dir, pair, timeframe)?)
}

/// The pairs with `timeframe` candles in a Freqtrade data directory, spot ("BTC/USDT") and
/// futures ("XRP/USDT:USDT"), sorted, each once. Unreadable directories count as empty.
pub fn list_pairs(data_dir: &Path, timeframe: Timeframe) -> Vec<String> {
    let mut pairs = Vec::new();
    let layouts = [
        (data_dir.to_path_buf(), format!("-{timeframe}"), false),
        (
            data_dir.join("futures"),
            format!("-{timeframe}-futures"),
            true,
        ),
    ];
    for (dir, suffix, futures) in layouts {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let file_name = entry.file_name();
            let Some(file_name) = file_name.to_str() else {
                continue;
            };
            let stem = EXTENSIONS.iter().find_map(|ext| {
                file_name
                    .strip_suffix(ext)
                    .and_then(|s| s.strip_suffix('.'))
                    .and_then(|s| s.strip_suffix(suffix.as_str()))
            });
            if let Some(pair) = stem.and_then(|s| pair_from_filename(s, futures)) {
                pairs.push(pair);
            }
        }
    }
    pairs.sort();
    pairs.dedup();
    pairs
}

/// Undoes [`pair_to_filename`] as Freqtrade does: the first `_` is the `/`, and for futures
/// the next one is the `:`.
fn pair_from_filename(stem: &str, futures: bool) -> Option<String> {
    let (base, rest) = stem.split_once('_')?;
    if base.is_empty() || rest.is_empty() {
        return None;
    }
    if !futures {
        return Some(format!("{base}/{rest}"));
    }
    let (quote, settle) = rest.split_once('_')?;
    (!quote.is_empty() && !settle.is_empty()).then(|| format!("{base}/{quote}:{settle}"))
}

/// A run of missing candles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The open time of the last candle before the gap.
    pub after_ts_ms: i64,
    /// How many candles of the timeframe are missing.
    pub missing_candles: i64,
}

/// What [`check`] found in a series of candles. Row indexes count from 0.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataReport {
    /// Rows checked.
    pub rows: usize,
    /// The earliest open time.
    pub first_ts_ms: Option<i64>,
    /// The latest open time.
    pub last_ts_ms: Option<i64>,
    /// Missing candles between the distinct timestamps, in time order.
    pub gaps: Vec<Gap>,
    /// Timestamps that occur more than once, each listed once, ascending.
    pub duplicates: Vec<i64>,
    /// Rows whose time is before the previous row's.
    pub out_of_order: Vec<usize>,
    /// Rows that fail [`Candle::problem`], with the reason.
    pub invalid: Vec<(usize, String)>,
    /// Rows whose open time is not a multiple of the timeframe (wrong timeframe or data).
    pub misaligned: Vec<usize>,
    /// Rows with zero volume (valid, but worth knowing).
    pub zero_volume: usize,
}

impl DataReport {
    /// The candles missing in all the gaps.
    pub fn missing_candles(&self) -> i64 {
        self.gaps.iter().map(|g| g.missing_candles).sum()
    }
}

/// Checks candles of `timeframe` for gaps, duplicates, order, invalid rows and alignment.
pub fn check(candles: &[Candle], timeframe: Timeframe) -> DataReport {
    let step = timeframe.millis();
    let mut report = DataReport {
        rows: candles.len(),
        ..DataReport::default()
    };
    for (i, c) in candles.iter().enumerate() {
        if let Some(reason) = c.problem() {
            report.invalid.push((i, reason));
        }
        if c.volume == 0.0 {
            report.zero_volume += 1;
        }
        if i > 0 && c.ts_ms < candles[i - 1].ts_ms {
            report.out_of_order.push(i);
        }
        if c.ts_ms.rem_euclid(step) != 0 {
            report.misaligned.push(i);
        }
    }
    let mut times: Vec<i64> = candles.iter().map(|c| c.ts_ms).collect();
    times.sort_unstable();
    for pair in times.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a == b {
            if report.duplicates.last() != Some(&a) {
                report.duplicates.push(a);
            }
        } else if b - a > step {
            report.gaps.push(Gap {
                after_ts_ms: a,
                missing_candles: (b - a - 1) / step,
            });
        }
    }
    report.first_ts_ms = times.first().copied();
    report.last_ts_ms = times.last().copied();
    report
}

/// What [`clean`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CleanReport {
    /// Rows given.
    pub input_rows: usize,
    /// Rows returned.
    pub kept_rows: usize,
    /// Whether the rows had to be sorted.
    pub reordered: bool,
    /// The open time of each row dropped because a later row had the same time.
    pub duplicates_dropped: Vec<i64>,
    /// The open time of each invalid row dropped, with the reason.
    pub invalid_dropped: Vec<(i64, String)>,
}

/// Drops invalid rows (see [`Candle::problem`]), sorts by open time, and of rows sharing
/// an open time keeps the last one in the input. The result is sorted strictly ascending.
pub fn clean(candles: Vec<Candle>) -> (Vec<Candle>, CleanReport) {
    let mut report = CleanReport {
        input_rows: candles.len(),
        reordered: candles.windows(2).any(|w| w[1].ts_ms < w[0].ts_ms),
        ..CleanReport::default()
    };
    let mut valid: Vec<Candle> = Vec::with_capacity(candles.len());
    for c in candles {
        match c.problem() {
            Some(reason) => report.invalid_dropped.push((c.ts_ms, reason)),
            None => valid.push(c),
        }
    }
    valid.sort_by_key(|c| c.ts_ms); // stable: rows sharing a time stay in input order
    let mut kept: Vec<Candle> = Vec::with_capacity(valid.len());
    for c in valid {
        match kept.last_mut() {
            Some(last) if last.ts_ms == c.ts_ms => {
                report.duplicates_dropped.push(c.ts_ms);
                *last = c;
            }
            _ => kept.push(c),
        }
    }
    report.kept_rows = kept.len();
    (kept, report)
}

/// Merges `from` candles into `to` candles, which must be a whole multiple of `from`.
///
/// Buckets start at epoch multiples of `to` (`ts - ts % to`), as pandas and Freqtrade do for
/// timeframes up to a day; so 3d and 1w buckets are epoch-aligned too (1w buckets start on
/// Thursdays, 00:00 UTC). Open is the first candle's, high the highest, low the lowest,
/// close the last's, volume the sum. Every bucket holding at least one candle is emitted,
/// so a bucket that is only partly covered (a gap, or the still-forming last bucket)
/// appears built from the candles it has: drop it yourself if you need complete ones.
/// The input must be sorted strictly ascending (as [`clean`] leaves it).
pub fn resample(
    candles: &[Candle],
    from: Timeframe,
    to: Timeframe,
) -> Result<Vec<Candle>, CandleError> {
    let fail = |reason: String| CandleError::Resample { from, to, reason };
    let bucket = to.millis();
    if bucket < from.millis() || bucket % from.millis() != 0 {
        return Err(fail(format!("{to} is not a whole multiple of {from}")));
    }
    let mut out: Vec<Candle> =
        Vec::with_capacity(candles.len() / (bucket / from.millis()) as usize + 1);
    for (i, c) in candles.iter().enumerate() {
        if i > 0 && c.ts_ms <= candles[i - 1].ts_ms {
            return Err(fail(format!(
                "row {i} is not after the row before it; sort and deduplicate with clean() first"
            )));
        }
        let start = c.ts_ms - c.ts_ms.rem_euclid(bucket);
        match out.last_mut() {
            Some(b) if b.ts_ms == start => {
                b.high = b.high.max(c.high);
                b.low = b.low.min(c.low);
                b.close = c.close;
                b.volume += c.volume;
            }
            _ => out.push(Candle { ts_ms: start, ..*c }),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/candles")
    }

    fn spot() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market")
    }

    fn read(path: PathBuf) -> Vec<Candle> {
        read_file(&path).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Epoch ms of a UTC time written "YYYY-MM-DD HH:MM".
    fn ms(text: &str) -> i64 {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
            .timestamp_millis()
    }

    /// Writes `contents` to a temporary file named `name`.
    fn temp_file(name: &str, contents: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::File::create(&path)
            .unwrap()
            .write_all(contents)
            .unwrap();
        (dir, path)
    }

    fn candle(ts_ms: i64, price: f64, volume: f64) -> Candle {
        Candle {
            ts_ms,
            open: price,
            high: price,
            low: price,
            close: price,
            volume,
        }
    }

    #[test]
    fn timeframes_parse_and_print() {
        for t in Timeframe::ALL {
            assert_eq!(t.as_str().parse::<Timeframe>().unwrap(), t);
            assert_eq!(t.to_string(), t.as_str());
        }
        assert_eq!(Timeframe::M5.millis(), 300_000);
        assert_eq!(Timeframe::W1.millis(), 604_800_000);
        assert_eq!(serde_json::to_string(&Timeframe::H4).unwrap(), "\"4h\"");
        assert_eq!(
            serde_json::from_str::<Timeframe>("\"12h\"").unwrap(),
            Timeframe::H12
        );
    }

    #[test]
    fn unknown_timeframe_is_named_with_the_accepted_ones() {
        let err = "7m".parse::<Timeframe>().unwrap_err().to_string();
        assert!(err.contains("`7m`"), "{err}");
        assert!(
            err.contains("1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w"),
            "{err}"
        );
        assert!("1M".parse::<Timeframe>().is_err());
        assert!(serde_json::from_str::<Timeframe>("\"8m\"").is_err());
    }

    #[test]
    fn json_1m() {
        let candles = read(fixtures().join("UNITTEST_BTC-1m.json"));
        assert_eq!(candles.len(), 13_681);
        assert_eq!(
            candles[0],
            Candle {
                ts_ms: 1_509_836_520_000,
                open: 0.00162008,
                high: 0.00162008,
                low: 0.00162008,
                close: 0.00162008,
                volume: 108.14853839,
            }
        );
        assert_eq!(candles.last().unwrap().ts_ms, 1_510_700_340_000);
        let report = check(&candles, Timeframe::M1);
        assert_eq!(report.rows, 13_681);
        assert_eq!(report.first_ts_ms, Some(1_509_836_520_000));
        assert_eq!(report.last_ts_ms, Some(1_510_700_340_000));
        assert_eq!(report.gaps.len(), 538);
        assert_eq!(report.missing_candles(), 717);
        assert!(report.duplicates.is_empty());
        assert!(report.out_of_order.is_empty());
        assert!(report.invalid.is_empty(), "{:?}", &report.invalid[..1]);
        assert!(report.misaligned.is_empty());
    }

    #[test]
    fn json_and_json_gz_hold_the_same_candles() {
        let json = read(fixtures().join("UNITTEST_BTC-1m.json"));
        let gz = read(fixtures().join("UNITTEST_BTC-8m.json.gz"));
        assert_eq!(json, gz);
    }

    #[test]
    fn feather_30m() {
        let candles = read(fixtures().join("UNITTEST_BTC-30m.feather"));
        let report = check(&candles, Timeframe::M30);
        assert_eq!(report.rows, 1_920);
        assert_eq!(report.first_ts_ms, Some(ms("2017-12-03 13:00")));
        assert_eq!(report.last_ts_ms, Some(ms("2018-01-12 12:30")));
        assert_eq!(candles[0].ts_ms, ms("2017-12-03 13:00"));
        assert!(report.gaps.is_empty());
        assert!(report.invalid.is_empty() && report.duplicates.is_empty());
        assert!(report.out_of_order.is_empty() && report.misaligned.is_empty());
    }

    #[test]
    fn feather_5m_with_gaps() {
        let candles = read(fixtures().join("XRP_ETH-5m.feather"));
        let report = check(&candles, Timeframe::M5);
        assert_eq!(report.rows, 706);
        assert_eq!(report.first_ts_ms, Some(ms("2019-10-11 00:00")));
        assert_eq!(report.last_ts_ms, Some(ms("2019-10-13 11:15")));
        assert_eq!(report.gaps.len(), 6);
        assert!(report.invalid.is_empty());
    }

    #[test]
    fn futures_feather_and_json_gz_are_equal() {
        let dir = fixtures().join("futures");
        let feather = read(dir.join("XRP_USDT_USDT-1h-futures.feather"));
        let gz = read(dir.join("XRP_USDT_USDT-1h-futures.json.gz"));
        assert_eq!(feather.len(), 100);
        assert_eq!(gz.len(), 100);
        // The same candles, but 10 of the 500 numbers differ in their last bit: the files
        // were written by different float formatters (pandas reading them sees the same).
        let mut differ = 0;
        for (f, g) in feather.iter().zip(&gz) {
            assert_eq!(f.ts_ms, g.ts_ms);
            for (a, b) in [
                (f.open, g.open),
                (f.high, g.high),
                (f.low, g.low),
                (f.close, g.close),
                (f.volume, g.volume),
            ] {
                assert!((a - b).abs() <= f64::EPSILON * b.abs(), "{f:?} {g:?}");
                differ += usize::from(a != b);
            }
        }
        assert_eq!(differ, 10);
        assert_eq!(feather[0].ts_ms, ms("2021-11-17 01:00"));
        assert_eq!(feather[99].ts_ms, ms("2021-11-21 04:00"));
        assert!(check(&feather, Timeframe::H1).gaps.is_empty());
    }

    #[test]
    fn spot_data_directory() {
        let eth = read(spot().join("ETH_BTC-5m.feather"));
        let report = check(&eth, Timeframe::M5);
        assert_eq!(report.rows, 5_760);
        assert!(report.gaps.is_empty());
        let closes = eth.iter().map(|c| c.close);
        let min = closes.clone().fold(f64::INFINITY, f64::min);
        let max = closes.fold(f64::NEG_INFINITY, f64::max);
        assert_eq!((min, max), (0.083, 0.10599966));

        let ada = check(&read(spot().join("ADA_BTC-5m.feather")), Timeframe::M5);
        assert_eq!((ada.rows, ada.gaps.len()), (5_720, 5));

        let pairs = list_pairs(&spot(), Timeframe::M5);
        assert_eq!(pairs.len(), 10, "{pairs:?}");
        assert_eq!(pairs[0], "ADA/BTC");
        assert!(pairs.contains(&"ETH/BTC".to_string()));
        for pair in &pairs {
            let candles = read_pair(&spot(), pair, Timeframe::M5).unwrap();
            let report = check(&candles, Timeframe::M5);
            assert!(
                report.invalid.is_empty() && report.duplicates.is_empty(),
                "{pair}"
            );
            assert!(report.out_of_order.is_empty(), "{pair}");
        }
        assert!(list_pairs(&spot(), Timeframe::H1).is_empty());
    }

    #[test]
    fn finds_pair_files_in_freqtrade_layout() {
        let dir = fixtures();
        let path = find_pair_file(&dir, "XRP/USDT:USDT", Timeframe::H1).unwrap();
        assert_eq!(path, dir.join("futures/XRP_USDT_USDT-1h-futures.feather"));
        let path = find_pair_file(&dir, "UNITTEST/BTC", Timeframe::M1).unwrap();
        assert_eq!(path, dir.join("UNITTEST_BTC-1m.json"));
        assert_eq!(
            read_pair(&dir, "XRP/ETH", Timeframe::M5).unwrap().len(),
            706
        );

        let err = find_pair_file(&dir, "XRP/USDT:USDT", Timeframe::M5).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`XRP/USDT:USDT`") && text.contains("5m"),
            "{text}"
        );
        assert!(text.contains(&dir.display().to_string()), "{text}");
        for ext in EXTENSIONS {
            assert!(
                text.contains(&format!("XRP_USDT_USDT-5m-futures.{ext}")),
                "{text}"
            );
        }
        match err {
            CandleError::NotFound { tried, .. } => assert_eq!(tried.len(), EXTENSIONS.len()),
            other => panic!("{other}"),
        }
        assert!(matches!(
            find_pair_file(&dir, "BTCUSDT", Timeframe::M5),
            Err(CandleError::BadPair { .. })
        ));

        assert_eq!(list_pairs(&dir, Timeframe::H1), ["XRP/USDT:USDT"]);
        assert_eq!(list_pairs(&dir, Timeframe::M5), ["XRP/ETH"]);
        assert_eq!(list_pairs(&dir, Timeframe::M1), ["UNITTEST/BTC"]);
    }

    #[test]
    fn resample_1m_to_5m() {
        let one = read(fixtures().join("UNITTEST_BTC-1m.json"));
        let five = resample(&one, Timeframe::M1, Timeframe::M5).unwrap();
        assert_eq!(five.len(), 2_877);
        // The first buckets, worked out by hand from the 1m rows (the first bucket starts
        // at 00:00 but its first candle is 00:02).
        let expected = [
            [
                1_509_836_400_000.0,
                0.00162008,
                0.00162008,
                0.00161,
                0.00161,
                426.87118687,
            ],
            [
                1_509_836_700_000.0,
                0.00161,
                0.00162,
                0.00160345,
                0.00160345,
                97.8769216,
            ],
            [
                1_509_837_000_000.0,
                0.00161902,
                0.00161902,
                0.00161902,
                0.00161902,
                6.34875668,
            ],
        ];
        for (got, want) in five.iter().zip(expected) {
            assert_eq!(got.ts_ms, want[0] as i64);
            assert_eq!(
                [got.open, got.high, got.low, got.close],
                [want[1], want[2], want[3], want[4]]
            );
            assert!((got.volume - want[5]).abs() < 1e-9, "{got:?}");
        }
        // And every bucket against its 1m rows.
        for b in &five {
            let rows: Vec<&Candle> = one
                .iter()
                .filter(|c| c.ts_ms >= b.ts_ms && c.ts_ms < b.ts_ms + 300_000)
                .collect();
            assert_eq!(b.open, rows[0].open);
            assert_eq!(b.close, rows[rows.len() - 1].close);
            assert_eq!(b.high, rows.iter().map(|c| c.high).fold(f64::MIN, f64::max));
            assert_eq!(b.low, rows.iter().map(|c| c.low).fold(f64::MAX, f64::min));
        }
        let volume_in: f64 = one.iter().map(|c| c.volume).sum();
        let volume_out: f64 = five.iter().map(|c| c.volume).sum();
        assert!((volume_in - volume_out).abs() < 1e-6 * volume_in);
    }

    #[test]
    fn resample_5m_to_1h() {
        let eth = read(spot().join("ETH_BTC-5m.feather"));
        let hours = resample(&eth, Timeframe::M5, Timeframe::H1).unwrap();
        // 04:55 on the first day to 04:50 twenty days later: a partial first bucket, 479
        // full ones, a partial last one (pandas agrees: 481).
        assert_eq!(hours.len(), 481);
        assert_eq!(hours[0].ts_ms, ms("2018-01-10 04:00"));
        assert_eq!(hours[0].volume, eth[0].volume);
        assert_eq!(hours[480].ts_ms, ms("2018-01-30 04:00"));
        assert_eq!(hours[1].open, 0.09946999000000001);
        assert_eq!(hours[1].low, 0.095);

        let xrp = read(fixtures().join("XRP_ETH-5m.feather"));
        assert_eq!(
            resample(&xrp, Timeframe::M5, Timeframe::H1).unwrap().len(),
            60
        );
        let same = resample(&xrp, Timeframe::M5, Timeframe::M5).unwrap();
        assert_eq!(same, xrp);
    }

    #[test]
    fn resample_refuses_bad_timeframes_and_unsorted_input() {
        let err = resample(&[], Timeframe::M5, Timeframe::M3)
            .unwrap_err()
            .to_string();
        assert!(err.contains("3m is not a whole multiple of 5m"), "{err}");
        assert!(resample(&[], Timeframe::H1, Timeframe::M5).is_err());
        assert!(resample(&[], Timeframe::H4, Timeframe::H6).is_err());
        let unsorted = [candle(120_000, 1.0, 1.0), candle(60_000, 1.0, 1.0)];
        let err = resample(&unsorted, Timeframe::M1, Timeframe::M5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("clean()"), "{err}");
    }

    #[test]
    fn csv_with_epoch_times() {
        let text = "Timestamp,Open,High,Low,Close,Volume,extra\n\
                    1515560100000,1.0,2.0,0.5,1.5,10,x\n\
                    1515560400000,1.5,2.5,1.0,2.0,0,y\n";
        let (_dir, path) = temp_file("a.csv", text.as_bytes());
        let candles = read_file(&path).unwrap();
        assert_eq!(
            candles,
            [
                Candle {
                    ts_ms: 1_515_560_100_000,
                    open: 1.0,
                    high: 2.0,
                    low: 0.5,
                    close: 1.5,
                    volume: 10.0
                },
                Candle {
                    ts_ms: 1_515_560_400_000,
                    open: 1.5,
                    high: 2.5,
                    low: 1.0,
                    close: 2.0,
                    volume: 0.0
                },
            ]
        );
        let report = check(&candles, Timeframe::M5);
        assert_eq!(report.zero_volume, 1);
        assert!(report.invalid.is_empty());

        let seconds = "ts,open,high,low,close,volume\n1515560100,1,2,0.5,1.5,10\n";
        let (_dir, path) = temp_file("b.csv", seconds.as_bytes());
        assert_eq!(read_file(&path).unwrap()[0].ts_ms, 1_515_560_100_000);
    }

    #[test]
    fn csv_with_text_dates() {
        let text = "date,open,high,low,close,volume\n\
                    2018-01-10 04:55:00,1,2,0.5,1.5,10\n\
                    2018-01-10T05:00:00Z,1,2,0.5,1.5,10\n\
                    2018-01-10 05:05:00+00:00,1,2,0.5,1.5,10\n\
                    2018-01-10T07:10:00+02:00,1,2,0.5,1.5,10\n\
                    2018-01-10 05:15:00.000,1,2,0.5,1.5,10\n";
        let (_dir, path) = temp_file("dates.CSV", text.as_bytes());
        let times: Vec<i64> = read_file(&path).unwrap().iter().map(|c| c.ts_ms).collect();
        let start = ms("2018-01-10 04:55");
        assert_eq!(times, [0, 1, 2, 3, 4].map(|i| start + i * 300_000));

        let bad = "date,open,high,low,close,volume\n\
                   2018-01-10 04:55:00,1,2,0.5,1.5,10\n\
                   yesterday,1,2,0.5,1.5,10\n";
        let (_dir, path) = temp_file("bad.csv", bad.as_bytes());
        let err = read_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("row 2") && err.contains("`yesterday`"),
            "{err}"
        );
    }

    #[test]
    fn csv_missing_close_is_named() {
        let text = "date,open,high,low,volume\n1515560100000,1,2,0.5,10\n";
        let (_dir, path) = temp_file("no_close.csv", text.as_bytes());
        let err = read_file(&path).unwrap_err();
        assert!(matches!(&err, CandleError::MissingColumn { column, .. } if column == "close"));
        let text = err.to_string();
        assert!(
            text.contains("missing column `close`") && text.contains("no_close.csv"),
            "{text}"
        );
    }

    #[test]
    fn csv_bad_number_names_row_and_column() {
        let text = "date,open,high,low,close,volume\n\
                    1515560100000,1,2,0.5,1.5,10\n\
                    1515560400000,1,2,0.5,abc,10\n";
        let (_dir, path) = temp_file("n.csv", text.as_bytes());
        let err = read_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("row 2") && err.contains("`close`") && err.contains("`abc`"),
            "{err}"
        );
    }

    #[test]
    fn empty_files_are_errors() {
        for name in ["e.json", "e.csv", "e.feather", "e.json.gz"] {
            let (_dir, path) = temp_file(name, b"");
            let err = read_file(&path).unwrap_err();
            assert!(matches!(err, CandleError::Empty { .. }), "{name}: {err}");
            assert!(err.to_string().contains("empty file"), "{err}");
        }
        let (_dir, path) = temp_file("e.json", b"[]\n");
        assert!(matches!(read_file(&path), Err(CandleError::Empty { .. })));
        let (_dir, path) = temp_file("e.csv", b"date,open,high,low,close,volume\n");
        assert!(matches!(read_file(&path), Err(CandleError::Empty { .. })));
    }

    #[test]
    fn truncated_or_garbage_json_is_an_error() {
        let (_dir, path) = temp_file(
            "t.json",
            b"[[1515560100000, 1.0, 2.0, 0.5, 1.5, 10.0], [151556",
        );
        let err = read_file(&path).unwrap_err();
        assert!(matches!(err, CandleError::Json { .. }), "{err}");
        assert!(err.to_string().contains("t.json"), "{err}");

        let (_dir, path) = temp_file("g.json", b"hello");
        assert!(matches!(read_file(&path), Err(CandleError::Json { .. })));

        let short = b"[[1515560100000, 1.0, 2.0, 0.5, 1.5, 10.0], [1515560400000, 1.0, 2.0]]";
        let (_dir, path) = temp_file("s.json", short);
        let err = read_file(&path).unwrap_err().to_string();
        assert!(err.contains("row 2"), "{err}");

        let (_dir, path) = temp_file("z.json.gz", b"not gzip at all");
        assert!(matches!(read_file(&path), Err(CandleError::Io { .. })));
        let (_dir, path) = temp_file("f.feather", b"not arrow");
        assert!(matches!(read_file(&path), Err(CandleError::Arrow { .. })));
    }

    #[test]
    fn nan_price_is_reported_and_cleaned() {
        let json = b"[[1515560100000, 1.0, 2.0, 0.5, 1.5, 10.0],\
                     [1515560400000, 1.0, 2.0, 0.5, null, 10.0]]";
        let (_dir, path) = temp_file("nan.json", json);
        let candles = read_file(&path).unwrap();
        assert!(candles[1].close.is_nan());
        let report = check(&candles, Timeframe::M5);
        assert_eq!(report.invalid.len(), 1);
        assert_eq!(report.invalid[0].0, 1);
        assert!(
            report.invalid[0].1.contains("close is NaN"),
            "{:?}",
            report.invalid
        );

        let csv = "date,open,high,low,close,volume\n1515560100000,1,2,0.5,NaN,10\n";
        let (_dir, path) = temp_file("nan.csv", csv.as_bytes());
        let report = check(&read_file(&path).unwrap(), Timeframe::M5);
        assert_eq!(report.invalid.len(), 1);

        let (cleaned, done) = clean(candles);
        assert_eq!(cleaned.len(), 1);
        assert_eq!(done.invalid_dropped.len(), 1);
        assert_eq!(done.invalid_dropped[0].0, 1_515_560_400_000);
    }

    #[test]
    fn unknown_extension_lists_supported_ones() {
        let (_dir, path) = temp_file("BTC_USDT-5m.parquet", b"PAR1");
        let err = read_file(&path).unwrap_err();
        assert!(matches!(err, CandleError::UnsupportedExtension { .. }));
        let text = err.to_string();
        assert!(
            text.contains("BTC_USDT-5m.parquet")
                && text.contains(".feather")
                && text.contains(".csv"),
            "{text}"
        );
        assert!(read_file(Path::new("candles")).is_err());
    }

    #[test]
    fn check_and_clean_find_and_fix_problems() {
        let step = 60_000;
        let mut bad = candle(4 * step, 1.0, 1.0);
        bad.high = 0.5; // below low
        let candles = vec![
            candle(0, 1.0, 1.0),
            candle(2 * step, 2.0, 0.0),
            candle(step, 3.0, 1.0),     // out of order
            candle(2 * step, 4.0, 1.0), // duplicate time: this one is kept
            bad,
            candle(10 * step + 5, 5.0, 1.0), // misaligned, after a gap
        ];
        let report = check(&candles, Timeframe::M1);
        assert_eq!(report.rows, 6);
        assert_eq!(report.first_ts_ms, Some(0));
        assert_eq!(report.last_ts_ms, Some(10 * step + 5));
        assert_eq!(report.out_of_order, [2]);
        assert_eq!(report.duplicates, [2 * step]);
        assert_eq!(report.invalid.len(), 1);
        assert_eq!(report.invalid[0].0, 4);
        assert!(report.invalid[0].1.contains("below low"));
        assert_eq!(report.misaligned, [5]);
        assert_eq!(report.zero_volume, 1);
        assert_eq!(
            report.gaps,
            [
                Gap {
                    after_ts_ms: 2 * step,
                    missing_candles: 1
                },
                Gap {
                    after_ts_ms: 4 * step,
                    missing_candles: 6
                },
            ]
        );

        let (cleaned, done) = clean(candles);
        let times: Vec<i64> = cleaned.iter().map(|c| c.ts_ms).collect();
        assert_eq!(times, [0, step, 2 * step, 10 * step + 5]);
        assert_eq!(cleaned[2].open, 4.0);
        assert!(done.reordered);
        assert_eq!(done.duplicates_dropped, [2 * step]);
        assert_eq!(done.invalid_dropped.len(), 1);
        assert_eq!((done.input_rows, done.kept_rows), (6, 4));
        assert!(check(&cleaned, Timeframe::M1).out_of_order.is_empty());
        assert_eq!(check(&[], Timeframe::M1), DataReport::default());
    }

    /// Feather files written here with every time unit and compression pyarrow may use.
    #[test]
    fn feather_time_units_and_compressions() {
        use arrow_array::{
            Float64Array, RecordBatch, TimestampMicrosecondArray, TimestampMillisecondArray,
        };
        use arrow_ipc::CompressionType;
        use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
        use arrow_schema::{Field, Schema};
        use std::sync::Arc;

        let want = read(fixtures().join("XRP_ETH-5m.feather"));
        let column = |f: fn(&Candle) -> f64| -> ArrayRef {
            Arc::new(Float64Array::from_iter_values(want.iter().map(f)))
        };
        let times_ms = want.iter().map(|c| c.ts_ms);
        let time_columns: [ArrayRef; 2] = [
            Arc::new(
                TimestampMillisecondArray::from_iter_values(times_ms.clone()).with_timezone("UTC"),
            ),
            Arc::new(TimestampMicrosecondArray::from_iter_values(
                times_ms.map(|t| t * 1000),
            )),
        ];
        for time in time_columns {
            for compression in [
                None,
                Some(CompressionType::LZ4_FRAME),
                Some(CompressionType::ZSTD),
            ] {
                let mut fields = vec![Field::new("date", time.data_type().clone(), false)];
                fields.extend(
                    ["open", "high", "low", "close", "volume"]
                        .map(|n| Field::new(n, DataType::Float64, false)),
                );
                let schema = Arc::new(Schema::new(fields));
                let columns = vec![
                    time.clone(),
                    column(|c| c.open),
                    column(|c| c.high),
                    column(|c| c.low),
                    column(|c| c.close),
                    column(|c| c.volume),
                ];
                let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
                let options = IpcWriteOptions::default()
                    .try_with_compression(compression)
                    .unwrap();
                let (_dir, path) = temp_file("w.feather", b"");
                let file = std::fs::File::create(&path).unwrap();
                let mut writer = FileWriter::try_new_with_options(file, &schema, options).unwrap();
                writer.write(&batch.slice(0, 300)).unwrap();
                writer.write(&batch.slice(300, want.len() - 300)).unwrap();
                writer.finish().unwrap();
                assert_eq!(read(path), want, "{:?} {compression:?}", time.data_type());
            }
        }
    }

    /// A small feather file, LZ4-compressed as Freqtrade writes them: one candle (all
    /// prices 1) per time in `times`, stored as given in `unit` (seconds or milliseconds).
    fn small_feather(times: &[i64], unit: TimeUnit) -> Vec<u8> {
        use arrow_array::{Float64Array, RecordBatch, TimestampMillisecondArray};
        use arrow_ipc::CompressionType;
        use arrow_ipc::writer::{FileWriter, IpcWriteOptions};
        use arrow_schema::{Field, Schema};
        use std::sync::Arc;

        let time: ArrayRef = match unit {
            TimeUnit::Second => Arc::new(arrow_array::TimestampSecondArray::from(times.to_vec())),
            _ => Arc::new(TimestampMillisecondArray::from(times.to_vec())),
        };
        let price: ArrayRef = Arc::new(Float64Array::from(vec![1.0; times.len()]));
        let mut fields = vec![Field::new("date", time.data_type().clone(), false)];
        fields.extend(
            ["open", "high", "low", "close", "volume"]
                .map(|n| Field::new(n, DataType::Float64, false)),
        );
        let schema = Arc::new(Schema::new(fields));
        let mut columns = vec![time];
        columns.extend(std::iter::repeat_n(price, 5));
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let options = IpcWriteOptions::default()
            .try_with_compression(Some(CompressionType::LZ4_FRAME))
            .unwrap();
        let mut out = Vec::new();
        let mut writer = FileWriter::try_new_with_options(&mut out, &schema, options).unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        drop(writer);
        out
    }

    /// Where the footer of an Arrow IPC file is, and its first record batch's block.
    fn footer_and_block(bytes: &[u8]) -> (std::ops::Range<usize>, arrow_ipc::Block) {
        let len = bytes.len();
        let footer_len = i32::from_le_bytes(bytes[len - 10..len - 6].try_into().unwrap());
        let footer = len - 10 - footer_len as usize..len - 10;
        let block = arrow_ipc::root_as_footer(&bytes[footer.clone()])
            .unwrap()
            .recordBatches()
            .unwrap()
            .get(0);
        (footer, *block)
    }

    fn read_bytes(name: &str, bytes: &[u8]) -> Result<Vec<Candle>, CandleError> {
        let (_dir, path) = temp_file(name, bytes);
        read_file(&path)
    }

    /// Found by `daemon/tests/fuzz.rs`: arrow-ipc reserves a compressed buffer's claimed
    /// uncompressed length up front (`Vec::with_capacity`), so one changed length prefix in
    /// a small LZ4 file asked for a terabyte and aborted the process ("memory allocation of
    /// 1099511627776 bytes failed").
    #[test]
    fn a_compressed_buffer_cannot_claim_a_terabyte() {
        let t0 = ms("2024-01-01 00:00");
        let mut bytes = small_feather(&[t0, t0 + 300_000, t0 + 600_000], TimeUnit::Millisecond);
        assert_eq!(read_bytes("ok.feather", &bytes).unwrap().len(), 3);
        let (_, block) = footer_and_block(&bytes);
        let start = block.offset() as usize;
        let meta = &bytes[start + 8..start + block.metaDataLength() as usize];
        let batch = arrow_ipc::root_as_message(meta)
            .unwrap()
            .header_as_record_batch()
            .unwrap();
        assert!(batch.compression().is_some());
        let values = batch.buffers().unwrap().get(1); // the time column's values
        let at = start + block.metaDataLength() as usize + values.offset() as usize;
        bytes[at..at + 8].copy_from_slice(&(1i64 << 40).to_le_bytes());
        let err = read_bytes("claims.feather", &bytes)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("claims 1099511627776 bytes once decompressed"),
            "{err}"
        );
    }

    /// The other lengths arrow-ipc trusts: the footer's (it reserved up to 2 GiB before
    /// finding the file shorter) and a block's (a negative one panicked in
    /// `to_usize().unwrap()`).
    #[test]
    fn footer_and_block_lengths_must_fit_in_the_file() {
        let t0 = ms("2024-01-01 00:00");
        let original = small_feather(&[t0, t0 + 300_000], TimeUnit::Millisecond);
        let len = original.len();
        let mut bytes = original.clone();
        bytes[len - 10..len - 6].copy_from_slice(&i32::MAX.to_le_bytes());
        let err = read_bytes("footer.feather", &bytes)
            .unwrap_err()
            .to_string();
        assert!(err.contains("the footer claims 2147483647 bytes"), "{err}");

        // The Block struct in the footer: offset (i64), metadata length (i32, padded), body
        // length (i64).
        let (footer, block) = footer_and_block(&original);
        let mut pattern = block.offset().to_le_bytes().to_vec();
        pattern.extend_from_slice(&block.metaDataLength().to_le_bytes());
        pattern.extend_from_slice(&[0; 4]);
        pattern.extend_from_slice(&block.bodyLength().to_le_bytes());
        let at = footer.start
            + original[footer]
                .windows(pattern.len())
                .position(|w| w == pattern)
                .expect("the block in the footer");
        for body in [-1i64, i64::MAX, 1 << 40] {
            let mut bytes = original.clone();
            bytes[at + 16..at + 24].copy_from_slice(&body.to_le_bytes());
            let err = read_bytes("block.feather", &bytes).unwrap_err().to_string();
            assert!(err.contains("does not fit in the file"), "{body}: {err}");
        }
    }

    /// Every single-byte change of a feather file's footer and batch metadata reads or
    /// fails cleanly: arrow-ipc's own panics on damaged metadata (found by
    /// `daemon/tests/fuzz.rs`: "FloatingPoint type with precision of <UNKNOWN 8194> not
    /// supported") become errors.
    #[test]
    fn damaged_metadata_is_an_error_not_a_panic() {
        let t0 = ms("2024-01-01 00:00");
        let original = small_feather(&[t0, t0 + 300_000], TimeUnit::Millisecond);
        let (footer, block) = footer_and_block(&original);
        let meta =
            block.offset() as usize..(block.offset() + block.metaDataLength() as i64) as usize;
        let (_dir, path) = temp_file("d.feather", b"");
        let mut arrow_panics = 0;
        for at in footer.chain(meta) {
            for value in [0x00, 0x02, 0x7f, 0x80, 0xff] {
                let mut bytes = original.clone();
                bytes[at] = value;
                std::fs::write(&path, &bytes).unwrap();
                if let Err(e) = read_file(&path) {
                    arrow_panics += usize::from(e.to_string().contains("(arrow-ipc: "));
                }
            }
        }
        assert!(
            arrow_panics > 0,
            "no arrow-ipc panic caught: the sweep lost its point"
        );
    }

    /// Found by `daemon/tests/fuzz.rs`: a time that is no date (seconds near `i64::MAX` in
    /// feather overflowed `t * 1000`; JSON's ±1e300 saturated to `i64::MIN`/`MAX`, and then
    /// `check` overflowed computing the gap between them) is a bad row.
    #[test]
    fn times_beyond_dates_are_bad_rows() {
        let feather = small_feather(&[1_600_000_000, i64::MAX / 100], TimeUnit::Second);
        let err = read_bytes("s.feather", &feather).unwrap_err().to_string();
        assert!(
            err.contains("row 2") && err.contains("out of range"),
            "{err}"
        );

        let json = b"[[-9.3e18, 1, 1, 1, 1, 1], [9.3e18, 1, 1, 1, 1, 1]]";
        let err = read_bytes("t.json", json).unwrap_err().to_string();
        assert!(
            err.contains("row 1") && err.contains("out of range"),
            "{err}"
        );

        let csv = b"date,open,high,low,close,volume\n1e300,1,1,1,1,1\n";
        let err = read_bytes("t.csv", csv).unwrap_err().to_string();
        assert!(
            err.contains("row 1") && err.contains("out of range"),
            "{err}"
        );

        // The extremes that are dates still read.
        let max = DateTime::<chrono::Utc>::MAX_UTC.timestamp_millis();
        let json = format!("[[{}, 1, 1, 1, 1, 1], [{max}, 1, 1, 1, 1, 1]]", -max + 1);
        let candles = read_bytes("e.json", json.as_bytes()).unwrap();
        assert_eq!(candles[1].ts_ms, max);
        assert_eq!(check(&candles, Timeframe::M5).rows, 2);
    }
}
