//! A strategy's `deployment` section, typed, and the one rule that says how a strategy
//! runs.
//!
//! The section lives in the metadata document at `strategy.deployment`:
//! `{"type": "freqtrade", "strategy_name": "MACD_Aggressive", "config_file":
//! "freqtrade/configs/macd_hunter.json", "pairs": [...], "timeframe": "5m", "port": 8083,
//! "allow_live": false}` or `{"type": "native", "strategy": "rsi", "pair": "BTC/USDT",
//! "timeframe": "5m", "mode": "follow", "file": "...", "fee_rate": 0.001}`.
//!
//! Invariants:
//! - A section that does not parse, or holds a field this version does not know, is
//!   refused with the field named (`strategy.deployment.port: ...`): a typo such as
//!   `alow_live` must not silently deploy with the default.
//! - [`runner_of`] is the only place that decides between a Freqtrade bot and a native
//!   runner: the section's `type`, else the implementation's language (`freqtrade`,
//!   `rust`). Deploying, the scheduled jobs' check, parameter changes and the TUI all ask it.

use crate::deploy::FeedMode;
use crate::strategy::{StrategyMeta, StrategyStatus};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// The native strategies memd runs in-process (paper trading), by kind.
pub const NATIVE_KINDS: &[&str] = &[
    "momentum",
    "rsi",
    "macd",
    "mfi",
    "vwap",
    "volatility_managed_momentum",
];

/// How memd runs a strategy: the `deployment` section of its metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum DeploymentSpec {
    /// A Freqtrade bot process.
    Freqtrade(FreqtradeSpec),
    /// A native strategy paper-trading inside memd on a candle feed.
    Native(NativeSpec),
}

/// A Freqtrade bot's section.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreqtradeSpec {
    /// The Python class (`--strategy`); default: `implementation.class_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy_name: Option<String>,
    /// The base config, relative to the data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_file: Option<String>,
    /// The pairs whitelisted in the rendered config (default: the base config's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pairs: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeframe: Option<String>,
    /// The preferred port of the bot's API (a request's port wins; default: a free one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Whether a live (not dry-run) deploy may be asked for.
    #[serde(default)]
    pub allow_live: bool,
    /// The seed's field, kept as written: memd deploys dry-run unless a request says
    /// otherwise, whatever it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
}

/// A native runner's section; a deploy request's `native` options win over it, and
/// `[market]` fills what neither gives.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NativeSpec {
    /// One of [`NATIVE_KINDS`]; default: from the strategy's name or class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeframe: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FeedMode>,
    /// A candle file inside the market data directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The paper broker's fee per side, a fraction (0.001 = 0.1%).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_rate: Option<f64>,
}

/// A field of a section that is wrong, and why (the path is relative to the section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// `port`, `pairs[1]`, or empty for the section as a whole.
    pub field: String,
    pub message: String,
}

impl std::fmt::Display for SpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "field `{}`: {}", self.field, self.message)
        }
    }
}

fn spec_error(field: impl Into<String>, message: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        message: message.into(),
    }
}

impl DeploymentSpec {
    /// Reads a section, naming the field at fault.
    pub fn from_value(value: &Value) -> Result<DeploymentSpec, SpecError> {
        let Some(object) = value.as_object() else {
            return Err(spec_error("", "must be an object with a `type`"));
        };
        let mut rest = object.clone();
        let kind = match rest.remove("type") {
            Some(Value::String(kind)) => kind,
            Some(_) => return Err(spec_error("type", "must be \"freqtrade\" or \"native\"")),
            None => return Err(spec_error("type", "missing: \"freqtrade\" or \"native\"")),
        };
        let rest = Value::Object(rest);
        let named = |e: serde_path_to_error::Error<serde_json::Error>| {
            let path = e.path().to_string();
            spec_error(
                if path == "." { String::new() } else { path },
                e.into_inner().to_string(),
            )
        };
        let spec = match kind.as_str() {
            "freqtrade" => {
                DeploymentSpec::Freqtrade(serde_path_to_error::deserialize(rest).map_err(named)?)
            }
            "native" => {
                DeploymentSpec::Native(serde_path_to_error::deserialize(rest).map_err(named)?)
            }
            other => {
                return Err(spec_error(
                    "type",
                    format!("{other:?} is not \"freqtrade\" or \"native\""),
                ));
            }
        };
        spec.check()?;
        Ok(spec)
    }

    /// What the types cannot say: names that reach a command line or a path, ranges.
    fn check(&self) -> Result<(), SpecError> {
        match self {
            DeploymentSpec::Freqtrade(f) => {
                if let Some(class) = &f.strategy_name {
                    check_class_name(class).map_err(|m| spec_error("strategy_name", m))?;
                }
                if let Some(file) = &f.config_file {
                    check_relative_path(file).map_err(|m| spec_error("config_file", m))?;
                }
                for (i, pair) in f.pairs.iter().enumerate() {
                    check_pair(pair).map_err(|m| spec_error(format!("pairs[{i}]"), m))?;
                }
                if let Some(tf) = &f.timeframe {
                    check_timeframe_shape(tf).map_err(|m| spec_error("timeframe", m))?;
                }
                if f.port == Some(0) {
                    return Err(spec_error("port", "must be 1 to 65535"));
                }
            }
            DeploymentSpec::Native(n) => {
                if let Some(kind) = &n.strategy {
                    if native_kind(kind).is_none() {
                        return Err(spec_error(
                            "strategy",
                            format!("{kind:?} is not one of {}", NATIVE_KINDS.join(", ")),
                        ));
                    }
                }
                if let Some(pair) = &n.pair {
                    check_pair(pair).map_err(|m| spec_error("pair", m))?;
                }
                if let Some(tf) = &n.timeframe {
                    check_timeframe_shape(tf).map_err(|m| spec_error("timeframe", m))?;
                }
                if let Some(file) = &n.file {
                    check_relative_path(file).map_err(|m| spec_error("file", m))?;
                }
                if let Some(fee) = n.fee_rate {
                    if !(fee.is_finite() && (0.0..0.1).contains(&fee)) {
                        return Err(spec_error(
                            "fee_rate",
                            format!("must be a fraction from 0 to under 0.1, got {fee}"),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The pairs a Freqtrade section lists (none for a native one).
    pub fn pairs(&self) -> Vec<String> {
        match self {
            DeploymentSpec::Freqtrade(f) => f.pairs.clone(),
            DeploymentSpec::Native(_) => Vec::new(),
        }
    }
}

/// A Python class name: what `freqtrade --strategy` takes and nothing else.
fn check_class_name(class: &str) -> Result<(), String> {
    let ok = !class.is_empty()
        && class.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !class.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!("{class:?} is not a Python class name"))
    }
}

/// A file name that cannot climb out of the directory it is read from (whether an
/// absolute one is inside the data directory is the deploy's to check: only the daemon
/// knows where that is).
fn check_relative_path(path: &str) -> Result<(), String> {
    if path.trim().is_empty() || path.contains('\0') {
        return Err("must be a file name".into());
    }
    if std::path::Path::new(path)
        .components()
        .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(format!("{path:?} may not contain `..`"));
    }
    Ok(())
}

/// `BASE/QUOTE` or a futures `BASE/QUOTE:SETTLE`.
fn check_pair(pair: &str) -> Result<(), String> {
    let ok = pair.len() <= 64
        && pair.split_once('/').is_some_and(|(base, quote)| {
            !base.is_empty()
                && !quote.is_empty()
                && pair
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "/:-_.".contains(c))
        });
    if ok {
        Ok(())
    } else {
        Err(format!("{pair:?} is not a pair like BTC/USDT"))
    }
}

/// A number and a unit (`5m`, `1h`, `1d`, `1w`, `1M`): which ones a runner accepts is its
/// own business.
fn check_timeframe_shape(tf: &str) -> Result<(), String> {
    let digits = tf.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &tf[digits.len()..];
    let ok = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(unit, "s" | "m" | "h" | "d" | "w" | "M");
    if ok {
        Ok(())
    } else {
        Err(format!("{tf:?} is not a timeframe like 5m, 1h or 1d"))
    }
}

impl Serialize for DeploymentSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(tag = "type", rename_all = "lowercase")]
        enum Tagged<'a> {
            Freqtrade(&'a FreqtradeSpec),
            Native(&'a NativeSpec),
        }
        match self {
            DeploymentSpec::Freqtrade(f) => Tagged::Freqtrade(f),
            DeploymentSpec::Native(n) => Tagged::Native(n),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for DeploymentSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        DeploymentSpec::from_value(&value).map_err(serde::de::Error::custom)
    }
}

/// The native kind a name means (`rsi`, `native_rsi`, `RSI`), if any.
pub fn native_kind(name: &str) -> Option<&'static str> {
    let name = name.trim().to_ascii_lowercase();
    let bare = name.strip_prefix("native_").unwrap_or(&name);
    NATIVE_KINDS.iter().find(|k| **k == bare).copied()
}

/// The native kind of a strategy's name, else of its class name (`RSIStrategy`).
pub fn native_kind_of(name: &str, class_name: Option<&str>) -> Option<&'static str> {
    if let Some(kind) = native_kind(name) {
        return Some(kind);
    }
    let class = class_name?.trim().to_ascii_lowercase();
    Some(match class.as_str() {
        "momentumstrategy" => "momentum",
        "rsistrategy" => "rsi",
        "macdstrategy" => "macd",
        "mfistrategy" => "mfi",
        "vwapstrategy" => "vwap",
        "volatilitymanagedmomentum" | "volatilitymanagedmomentumstrategy" => {
            "volatility_managed_momentum"
        }
        _ => return None,
    })
}

/// How a strategy runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Runner {
    /// As a Freqtrade bot, with its section (an empty one when the strategy has none).
    Freqtrade(FreqtradeSpec),
    /// Natively, with its section; `kind` is `None` when neither the section nor the
    /// strategy's name or class names a native strategy.
    Native {
        kind: Option<&'static str>,
        spec: NativeSpec,
    },
    /// Not at all: no section, and a language memd does not run (`python`, ...).
    None,
}

/// The one rule: the section's `type`, else the implementation's language (`freqtrade`:
/// a bot; `rust`: native).
pub fn runner_of(strategy: &StrategyMeta) -> Runner {
    let native = |spec: NativeSpec| {
        let kind = spec.strategy.as_deref().and_then(native_kind).or_else(|| {
            native_kind_of(
                &strategy.name,
                strategy.implementation.class_name.as_deref(),
            )
        });
        Runner::Native { kind, spec }
    };
    match &strategy.deployment {
        Some(DeploymentSpec::Freqtrade(spec)) => Runner::Freqtrade(spec.clone()),
        Some(DeploymentSpec::Native(spec)) => native(spec.clone()),
        None => match strategy.implementation.language.as_str() {
            "freqtrade" => Runner::Freqtrade(FreqtradeSpec::default()),
            "rust" => native(NativeSpec::default()),
            _ => Runner::None,
        },
    }
}

/// What a deploy runs, once [`deployable`] said it can.
#[derive(Debug, Clone, PartialEq)]
pub enum RunPlan {
    Freqtrade {
        /// The Python class (`--strategy`).
        class: String,
        /// The base config, as the section names it.
        config_file: String,
        spec: FreqtradeSpec,
    },
    Native {
        kind: &'static str,
        spec: NativeSpec,
    },
}

/// Why a strategy cannot be deployed.
#[derive(Debug, Clone, PartialEq)]
pub enum NotDeployable {
    /// Deprecated or archived.
    Retired(StrategyStatus),
    /// Nothing says how to run it, or what does is incomplete.
    NoRunner(String),
}

impl std::fmt::Display for NotDeployable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotDeployable::Retired(status) => write!(f, "it is {status}"),
            NotDeployable::NoRunner(why) => f.write_str(why),
        }
    }
}

/// Whether a strategy can be deployed as it stands, and what would run: what a deploy
/// refuses and what the scheduled jobs skip a strategy for, in the same words.
pub fn deployable(strategy: &StrategyMeta) -> Result<RunPlan, NotDeployable> {
    if matches!(
        strategy.status,
        StrategyStatus::Deprecated | StrategyStatus::Archived
    ) {
        return Err(NotDeployable::Retired(strategy.status));
    }
    let no = |why: String| Err(NotDeployable::NoRunner(why));
    match runner_of(strategy) {
        Runner::Freqtrade(spec) => {
            let Some(config_file) = spec.config_file.clone() else {
                return no("its deployment section (strategy.deployment with type \"freqtrade\") names no config_file".into());
            };
            let Some(class) = spec
                .strategy_name
                .clone()
                .or_else(|| strategy.implementation.class_name.clone())
            else {
                return no("its deployment section names no strategy class (strategy_name)".into());
            };
            if let Err(m) = check_class_name(&class) {
                return no(format!(
                    "its strategy class (implementation.class_name): {m}"
                ));
            }
            Ok(RunPlan::Freqtrade {
                class,
                config_file,
                spec,
            })
        }
        Runner::Native {
            kind: Some(kind),
            spec,
        } => Ok(RunPlan::Native { kind, spec }),
        Runner::Native { kind: None, .. } => no(format!(
            "it is not one of the native strategies ({})",
            NATIVE_KINDS.join(", ")
        )),
        Runner::None => no(format!(
            "it has no deployment section (strategy.deployment with type \"freqtrade\" or \"native\"), and memd does not run its language ({:?}) by itself",
            strategy.implementation.language
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<DeploymentSpec, String> {
        DeploymentSpec::from_value(&v).map_err(|e| e.to_string())
    }

    #[test]
    fn the_seed_sections_read_and_round_trip() {
        let seed = json!({"type": "freqtrade", "strategy_name": "MACD_Aggressive", "config_file": "freqtrade/configs/macd_hunter.json", "port": 8083, "pairs": ["ETH/USDT", "BTC/USDT"], "timeframe": "5m", "dry_run": true, "allow_live": false});
        let spec = parse(seed.clone()).unwrap();
        assert_eq!(serde_json::to_value(&spec).unwrap(), seed);
        assert_eq!(spec.pairs(), vec!["ETH/USDT", "BTC/USDT"]);
        let native = json!({"type": "native", "strategy": "rsi", "pair": "BTC/USDT", "timeframe": "5m", "mode": "replay", "file": "BTC_USDT-5m.feather", "fee_rate": 0.001});
        let spec = parse(native.clone()).unwrap();
        assert_eq!(serde_json::to_value(&spec).unwrap(), native);
        assert!(spec.pairs().is_empty());
    }

    #[test]
    fn a_bad_section_is_refused_with_its_field_named() {
        for (section, wanted) in [
            (json!({"strategy_name": "X"}), "field `type`: missing"),
            (json!({"type": "docker"}), "field `type`: \"docker\""),
            (json!({"type": "freqtrade", "port": "8080"}), "field `port`"),
            (json!({"type": "freqtrade", "port": 0}), "field `port`"),
            (json!({"type": "freqtrade", "port": 70000}), "field `port`"),
            (
                json!({"type": "freqtrade", "alow_live": true}),
                "unknown field `alow_live`",
            ),
            (
                json!({"type": "freqtrade", "strategy_name": "rm -rf"}),
                "field `strategy_name`",
            ),
            (
                json!({"type": "freqtrade", "config_file": "../../etc/passwd"}),
                "field `config_file`",
            ),
            (
                json!({"type": "freqtrade", "pairs": ["BTC/USDT", "nonsense"]}),
                "field `pairs[1]`",
            ),
            (
                json!({"type": "freqtrade", "timeframe": "fast"}),
                "field `timeframe`",
            ),
            (
                json!({"type": "native", "strategy": "martingale"}),
                "field `strategy`",
            ),
            (json!({"type": "native", "mode": "loop"}), "field `mode`"),
            (
                json!({"type": "native", "fee_rate": 2.0}),
                "field `fee_rate`",
            ),
            (json!("freqtrade"), "must be an object"),
        ] {
            let err = parse(section.clone()).unwrap_err();
            assert!(err.contains(wanted), "{section}: {err}");
        }
    }

    fn meta(
        language: &str,
        name: &str,
        class: Option<&str>,
        section: Option<Value>,
    ) -> StrategyMeta {
        let mut doc = json!({"id": "4ce3a79b-c22b-4b42-9d87-3a58052a9eec", "name": name, "implementation": {"language": language}});
        if let Some(class) = class {
            doc["implementation"]["class_name"] = json!(class);
        }
        if let Some(section) = section {
            doc["deployment"] = section;
        }
        serde_json::from_value(doc).unwrap()
    }

    #[test]
    fn one_rule_says_how_a_strategy_runs() {
        let s = meta("rust", "native_rsi", Some("RSIStrategy"), None);
        assert_eq!(
            runner_of(&s),
            Runner::Native {
                kind: Some("rsi"),
                spec: NativeSpec::default()
            }
        );
        assert!(matches!(
            deployable(&s),
            Ok(RunPlan::Native { kind: "rsi", .. })
        ));
        // The section wins over the language.
        let s = meta(
            "python",
            "vmm",
            Some("VolatilityManagedMomentum"),
            Some(json!({"type": "native"})),
        );
        assert!(matches!(
            runner_of(&s),
            Runner::Native {
                kind: Some("volatility_managed_momentum"),
                ..
            }
        ));
        let s = meta("freqtrade", "x", Some("X"), None);
        assert_eq!(runner_of(&s), Runner::Freqtrade(FreqtradeSpec::default()));
        assert!(
            deployable(&s)
                .unwrap_err()
                .to_string()
                .contains("config_file")
        );
        let s = meta(
            "freqtrade",
            "x",
            Some("X"),
            Some(json!({"type": "freqtrade", "config_file": "freqtrade/configs/x.json"})),
        );
        assert!(matches!(deployable(&s), Ok(RunPlan::Freqtrade { ref class, .. }) if class == "X"));
        let s = meta(
            "freqtrade",
            "x",
            Some("x; rm -rf /"),
            Some(json!({"type": "freqtrade", "config_file": "c.json"})),
        );
        assert!(
            deployable(&s)
                .unwrap_err()
                .to_string()
                .contains("not a Python class name")
        );
        let s = meta("python", "carry", Some("CurrencyCarryTrade"), None);
        assert_eq!(runner_of(&s), Runner::None);
        assert!(
            deployable(&s)
                .unwrap_err()
                .to_string()
                .contains("no deployment section")
        );
        let s = meta("rust", "mystery", None, None);
        assert!(
            deployable(&s)
                .unwrap_err()
                .to_string()
                .contains("not one of the native strategies")
        );
        let mut s = meta("rust", "native_rsi", None, None);
        s.status = StrategyStatus::Deprecated;
        assert_eq!(deployable(&s).unwrap_err().to_string(), "it is deprecated");
    }
}
