//! What an enhancement reads from a symbol's candles, read once per candle file.
//!
//! `mem.enhance` and `mem.decide` look up, for a symbol the caller gives no figures for,
//! the model's prediction, the market conditions (the volatility) and the market-state
//! signature: three reads of the pair's candle file and a few thousand indicator updates,
//! about 2 ms. Fifty bots entering at the same candle close ask for the same few symbols
//! at once; this keeps each symbol's inputs until its candle file changes (its length and
//! modification time), a file of the market directory is replaced (its modification time:
//! a refresh writes whole files and renames them; the conditions may read a coarser file
//! of their own), the served model changes, or they are [`MAX_AGE`] old, and lets one
//! caller compute them while the others of the same symbol wait for its result.

use crate::market::candles;
use crate::metrics::Metrics;
use crate::ml::service::MlService;
use mem_protocol::mem::SignalAction;
use mem_protocol::ml::{PredictParams, Prediction};
use mem_protocol::recommend::{ConditionsParams, ConditionsReport};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Inputs older than this are read again even when nothing says they changed (a coarser
/// candle file appended to in place).
pub const MAX_AGE: Duration = Duration::from_secs(60);

/// A symbol's inputs, as its candles gave them.
#[derive(Debug, Clone)]
pub struct MarketInputs {
    /// The served model's prediction on the symbol's latest candles.
    pub prediction: Option<Prediction>,
    /// The market conditions on the symbol (its volatility is the enhancement's).
    pub conditions: Option<ConditionsReport>,
    /// The market-state signature for a BUY, a SELL and a HOLD.
    signatures: [Option<String>; 3],
}

impl MarketInputs {
    /// The market-state signature for a signal of `action`.
    pub fn signature(&self, action: SignalAction) -> Option<String> {
        self.signatures[slot(action)].clone()
    }
}

fn slot(action: SignalAction) -> usize {
    match action {
        SignalAction::Buy => 0,
        SignalAction::Sell => 1,
        SignalAction::Hold => 2,
    }
}

/// What says a symbol's inputs are still those of its candles.
#[derive(Debug, Clone, PartialEq)]
struct Stamp {
    file: Option<(u64, SystemTime)>,
    dir: Option<SystemTime>,
    model: Option<String>,
}

struct Entry {
    stamp: Stamp,
    read_at: Instant,
    inputs: Arc<MarketInputs>,
}

/// The inputs of every symbol asked for, each behind a lock of its own.
#[derive(Default)]
pub struct InputsCache {
    symbols: Mutex<HashMap<String, Arc<Mutex<Option<Entry>>>>>,
}

impl InputsCache {
    /// `symbol`'s kept inputs when they still stand, without waiting or reading anything
    /// but the stamps (`None`: [`Self::get`] must read them, on a thread that may block).
    pub fn fresh(&self, ml: &MlService, symbol: &str) -> Option<Arc<MarketInputs>> {
        let slot = self
            .symbols
            .lock()
            .expect("inputs cache lock")
            .get(symbol)?
            .clone();
        let entry = slot.try_lock().ok()?;
        let e = entry.as_ref()?;
        (e.stamp == stamp(ml, symbol) && e.read_at.elapsed() < MAX_AGE).then(|| e.inputs.clone())
    }

    /// `symbol`'s inputs: kept ones while they stand, else read now (the prediction's
    /// time recorded in `metrics`).
    pub fn get(
        &self,
        ml: &MlService,
        symbol: &str,
        reference_volatility_pct: f64,
        metrics: &Metrics,
    ) -> Arc<MarketInputs> {
        let slot = {
            let mut symbols = self.symbols.lock().expect("inputs cache lock");
            if symbols.len() > 10_000 {
                symbols.clear();
            }
            symbols.entry(symbol.to_string()).or_default().clone()
        };
        let mut entry = slot.lock().expect("symbol inputs lock");
        let stamp = stamp(ml, symbol);
        if let Some(e) = entry.as_ref() {
            if e.stamp == stamp && e.read_at.elapsed() < MAX_AGE {
                return e.inputs.clone();
            }
        }
        let inputs = Arc::new(read(ml, symbol, reference_volatility_pct, metrics));
        *entry = Some(Entry {
            stamp,
            read_at: Instant::now(),
            inputs: inputs.clone(),
        });
        inputs
    }
}

/// What the symbol's inputs stand on now: its candle file, the market directory, the model.
fn stamp(ml: &MlService, symbol: &str) -> Stamp {
    Stamp {
        file: candles::find_pair_file(ml.market_dir(), symbol, ml.timeframe())
            .ok()
            .and_then(|path| std::fs::metadata(path).ok())
            .and_then(|m| Some((m.len(), m.modified().ok()?))),
        dir: std::fs::metadata(ml.market_dir())
            .and_then(|m| m.modified())
            .ok(),
        model: ml.serving_model().map(|(version, _)| version),
    }
}

/// Reads a symbol's inputs from its candles and the served model.
fn read(
    ml: &MlService,
    symbol: &str,
    reference_volatility_pct: f64,
    metrics: &Metrics,
) -> MarketInputs {
    let asked = Instant::now();
    let prediction = ml
        .predict(PredictParams {
            symbol: Some(symbol.to_string()),
            ..Default::default()
        })
        .ok();
    // Only predictions a model made count (none without a model or candles).
    if prediction.is_some() {
        metrics.prediction.record(asked.elapsed());
    }
    let conditions = ml
        .conditions(ConditionsParams {
            pair: Some(symbol.to_string()),
            timeframe: None,
        })
        .ok();
    let signatures = match ml.recent_candles(symbol) {
        Some(candles) => {
            [SignalAction::Buy, SignalAction::Sell, SignalAction::Hold].map(|action| {
                super::patterns::signature_of_candles(action, &candles, reference_volatility_pct)
            })
        }
        None => [None, None, None],
    };
    MarketInputs {
        prediction,
        conditions,
        signatures,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{MarketConfig, ModelConfig};

    #[test]
    fn a_symbols_inputs_are_read_once_until_its_candle_file_changes() {
        let data = tempfile::tempdir().unwrap();
        let market = data.path().join("market");
        std::fs::create_dir_all(&market).unwrap();
        let shipped = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../data/market/ETH_BTC-5m.feather"
        );
        let file = market.join("ETH_BTC-5m.feather");
        std::fs::copy(shipped, &file).unwrap();
        let ml = MlService::open(
            data.path(),
            &MarketConfig::default(),
            &ModelConfig::default(),
            Arc::new(crate::bus::EventBus::new(16)),
        )
        .unwrap();
        let metrics = Metrics::new();
        let cache = InputsCache::default();
        let first = cache.get(&ml, "ETH/BTC", 1.0, &metrics);
        assert!(first.conditions.is_some(), "read from the candles");
        assert!(
            first
                .signature(SignalAction::Buy)
                .is_some_and(|s| s.starts_with("BUY|"))
        );
        assert!(
            first
                .signature(SignalAction::Sell)
                .is_some_and(|s| s.starts_with("SELL|"))
        );
        assert!(first.prediction.is_none(), "no model yet");
        assert!(
            Arc::ptr_eq(&first, &cache.get(&ml, "ETH/BTC", 1.0, &metrics)),
            "kept"
        );
        assert!(Arc::ptr_eq(&first, &cache.fresh(&ml, "ETH/BTC").unwrap()));
        assert!(cache.fresh(&ml, "LTC/BTC").is_none(), "never read");
        // The file rewritten (a refresh): read again.
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..]).unwrap();
        let times = std::fs::File::options().write(true).open(&file).unwrap();
        times
            .set_modified(SystemTime::now() + Duration::from_secs(1))
            .unwrap();
        let again = cache.get(&ml, "ETH/BTC", 1.0, &metrics);
        assert!(!Arc::ptr_eq(&first, &again), "read again");
        // Another file of the directory replaced (a refresh renames whole files): again.
        let coarser = market.join("ETH_BTC-1h.feather.tmp");
        std::fs::write(&coarser, b"x").unwrap();
        std::fs::rename(&coarser, market.join("ETH_BTC-1h.json")).unwrap();
        let dir = std::fs::File::open(&market).unwrap();
        dir.set_modified(SystemTime::now() + Duration::from_secs(2))
            .unwrap();
        assert!(!Arc::ptr_eq(
            &again,
            &cache.get(&ml, "ETH/BTC", 1.0, &metrics)
        ));
        // A symbol without candles: nothing, and no error.
        let none = cache.get(&ml, "DOGE/USDT", 1.0, &metrics);
        assert!(none.conditions.is_none() && none.signature(SignalAction::Buy).is_none());
    }
}
