//! Writes the dataset `ml.train` trains on as CSV, so that reference tools
//! (`tools/ml_reference.py`) see exactly the daemon's rows, labels and split.
//!
//! Pairs: every pair with 5m candles in the market directory (the daemon's default when
//! no pairs are configured). Rows come from `ml::train::load`, the split from
//! `ml::train::split`: `train.csv` holds the training rows (purged rows left out) and
//! `test.csv` the holdout, each in the order of its index vector. Columns: `ts` (open
//! time of the row's candle, epoch ms), the 12 features, `label` (0/1). Floats are
//! written with `{:?}`, the shortest text that reads back as the same f64.
//!
//! ```text
//! cargo run --release -p memd --example export_dataset -- [MARKET_DIR] [OUT_DIR]
//! ```
//! (defaults: `data/market` of this repository, `/tmp/mldata`).

use mem_protocol::ml::FEATURE_NAMES;
use memd::market::candles::{Timeframe, list_pairs};
use memd::ml::train::{Dataset, load, split};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

fn write_csv(path: &Path, data: &Dataset, idx: &[usize]) -> std::io::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    writeln!(out, "ts,{},label", FEATURE_NAMES.join(","))?;
    for &i in idx {
        write!(out, "{}", data.ts[i])?;
        for x in &data.rows[i] {
            write!(out, ",{x:?}")?;
        }
        writeln!(out, ",{}", data.labels[i])?;
    }
    out.flush()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let market = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/market"));
    let out_dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/mldata"));

    let timeframe = Timeframe::M5;
    let pairs = list_pairs(&market, timeframe);
    if pairs.is_empty() {
        return Err(format!("no {timeframe} candles in {}", market.display()).into());
    }
    let data = load(&market, &pairs, timeframe, &mut |_, _, _| {})?;
    let (train, test, split_ts, purged) = split(&data);

    std::fs::create_dir_all(&out_dir)?;
    write_csv(&out_dir.join("train.csv"), &data, &train)?;
    write_csv(&out_dir.join("test.csv"), &data, &test)?;

    for note in &data.notes {
        eprintln!("{note}");
    }
    let positives = |idx: &[usize]| idx.iter().filter(|&&i| data.labels[i] == 1).count();
    eprintln!(
        "{} pairs ({}), {} candles, {} rows: train {} ({} positive), test {} ({} positive), \
         {purged} purged, split at ts {split_ts}; written to {}",
        pairs.len(),
        pairs.join(", "),
        data.candles,
        data.rows.len(),
        train.len(),
        positives(&train),
        test.len(),
        positives(&test),
        out_dir.display()
    );
    Ok(())
}
