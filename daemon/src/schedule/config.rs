//! `[schedule]`: each job's cron expression, whether it runs, its catch-up policy and
//! its own settings. Everything is checked at start (and by `--check-config`), and an
//! error names the key: a typo in a cron expression must not silently disable a job.
//!
//! ```toml
//! [schedule]
//! timezone = "UTC"                 # any IANA name; cron expressions are read in it
//!
//! [schedule.retrain]
//! cron = "0 0 2 * * *"             # sec min hour day month weekday (5 fields: sec 0)
//! days = 30                        # the last N days of candles of each pair
//!
//! [schedule.backup]
//! enabled = true                   # off by default
//! dir = "/srv/memd-backups"        # default: backups/ in the data directory
//! keep = 7
//!
//! [schedule.rotation]
//! enabled = true                   # off by default
//! min_confidence = 0.8
//! max_concurrent = 1
//! keep_current = true
//! drain_deadline_secs = 300
//!
//! [schedule.retention]             # on by default, hourly
//! deployments_days = 14            # an ended deployment's directory, then its summary
//! deployment_summaries = 1000
//! queue_days = 7                   # a finished backtest's work directory
//! audit_max_bytes = 16777216       # the audit of actions, then archived (gzip)
//! alerts_history_max_bytes = 16777216
//! archives = 8                     # archives kept of each
//! model_versions = 30              # the trend-reversal model's versions kept
//! ```

use serde::Deserialize;

/// The job names, in the order `jobs.list` shows them.
pub const RETRAIN: &str = "retrain";
pub const ROTATION: &str = "rotation";
pub const REGIME_DEPLOY: &str = "regime_deploy";
pub const PERFORMANCE_SYNC: &str = "performance_sync";
pub const LEARNING: &str = "learning";
pub const DATA_REFRESH: &str = "data_refresh";
pub const BACKUP: &str = "backup";
pub const RETENTION: &str = "retention";
pub const JOB_NAMES: [&str; 8] = [
    RETRAIN,
    ROTATION,
    REGIME_DEPLOY,
    PERFORMANCE_SYNC,
    LEARNING,
    DATA_REFRESH,
    BACKUP,
    RETENTION,
];

/// `[schedule]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Default `UTC`.
    pub timezone: Option<String>,
    #[serde(default)]
    pub retrain: RetrainConfig,
    #[serde(default)]
    pub rotation: RotationConfig,
    #[serde(default)]
    pub regime_deploy: RegimeConfig,
    #[serde(default)]
    pub performance_sync: BasicJobConfig,
    #[serde(default)]
    pub learning: BasicJobConfig,
    /// The market data's refresh (what it refreshes: `[market.refresh]`).
    #[serde(default)]
    pub data_refresh: BasicJobConfig,
    #[serde(default)]
    pub backup: BackupJobConfig,
    /// What the data directory keeps, and for how long.
    #[serde(default)]
    pub retention: RetentionJobConfig,
}

/// `[schedule.retention]`: on by default, hourly. Ages are in days, fractions allowed (a
/// test's soak runs on seconds).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionJobConfig {
    pub cron: Option<String>,
    pub enabled: Option<bool>,
    pub catch_up: Option<bool>,
    /// An ended deployment's directory is removed this long after it was last written
    /// to, its summary kept (default 14).
    pub deployments_days: Option<f64>,
    /// Pruned deployments' summaries kept, newest first (default 1000).
    pub deployment_summaries: Option<usize>,
    /// A finished queue job's work directory is removed this long after it finished, its
    /// log and record kept (default 7).
    pub queue_days: Option<f64>,
    /// `audit/actions.jsonl` is archived past this size (default 16 MiB).
    pub audit_max_bytes: Option<u64>,
    /// `alerts/history.jsonl` is archived past this size (default 16 MiB).
    pub alerts_history_max_bytes: Option<u64>,
    /// Archives kept of each of those logs, newest first (default 8).
    pub archives: Option<usize>,
    /// The trend-reversal model's versions kept, newest first, besides the current one and
    /// the one a rollback goes back to (default 30: a month of daily retraining).
    pub model_versions: Option<usize>,
}

/// What the retention job keeps, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct RetentionPolicy {
    pub deployments_after: chrono::Duration,
    pub deployment_summaries: usize,
    pub queue_after: chrono::Duration,
    pub audit_max_bytes: u64,
    pub alerts_history_max_bytes: u64,
    pub archives: usize,
    pub model_versions: usize,
}

/// A fraction of days as a duration; the error names the key.
fn days(key: &str, value: Option<f64>, default: f64) -> Result<chrono::Duration, String> {
    let days = value.unwrap_or(default);
    if !(days.is_finite() && days > 0.0 && days <= 36_500.0) {
        return Err(format!(
            "[schedule.retention] {key} must be a number of days above 0 (fractions allowed), got {days}"
        ));
    }
    Ok(chrono::Duration::milliseconds((days * 86_400_000.0) as i64))
}

impl RetentionJobConfig {
    fn policy(&self) -> Result<RetentionPolicy, String> {
        let at_least_one =
            |key: &str, value: Option<usize>, default: usize| match value.unwrap_or(default) {
                0 => Err(format!("[schedule.retention] {key} must be 1 or more")),
                n => Ok(n),
            };
        let bytes = |key: &str, value: Option<u64>| match value.unwrap_or(16 << 20) {
            n if n < 1024 => Err(format!(
                "[schedule.retention] {key} must be 1024 bytes or more, got {n}"
            )),
            n => Ok(n),
        };
        Ok(RetentionPolicy {
            deployments_after: days("deployments_days", self.deployments_days, 14.0)?,
            deployment_summaries: at_least_one(
                "deployment_summaries",
                self.deployment_summaries,
                1000,
            )?,
            queue_after: days("queue_days", self.queue_days, 7.0)?,
            audit_max_bytes: bytes("audit_max_bytes", self.audit_max_bytes)?,
            alerts_history_max_bytes: bytes(
                "alerts_history_max_bytes",
                self.alerts_history_max_bytes,
            )?,
            archives: at_least_one("archives", self.archives, 8)?,
            model_versions: at_least_one("model_versions", self.model_versions, 30)?,
        })
    }
}

/// `[schedule.backup]`: off by default.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupJobConfig {
    pub cron: Option<String>,
    pub enabled: Option<bool>,
    pub catch_up: Option<bool>,
    /// Where the backups go, each in a directory of its own (`memd-backup-<time>`); an
    /// absolute path. Default: `backups/` in the data directory.
    pub dir: Option<std::path::PathBuf>,
    /// The job's backups kept, newest first (default 7).
    pub keep: Option<usize>,
    /// Also copy the market candles (default false).
    pub with_market: Option<bool>,
}

impl BackupJobConfig {
    fn policy(&self) -> Result<BackupPolicy, String> {
        if let Some(dir) = &self.dir {
            if !dir.is_absolute() {
                return Err(format!(
                    "[schedule.backup] dir must be an absolute path, got {:?}",
                    dir.display().to_string()
                ));
            }
        }
        let keep = self.keep.unwrap_or(7);
        if keep == 0 {
            return Err("[schedule.backup] keep must be 1 or more".into());
        }
        Ok(BackupPolicy {
            dir: self.dir.clone(),
            keep,
            with_market: self.with_market.unwrap_or(false),
        })
    }
}

/// What the backup job writes, and how many it keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupPolicy {
    /// None: the data directory's `backups/`.
    pub dir: Option<std::path::PathBuf>,
    pub keep: usize,
    pub with_market: bool,
}

/// A job with nothing but its schedule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicJobConfig {
    pub cron: Option<String>,
    pub enabled: Option<bool>,
    pub catch_up: Option<bool>,
}

/// `[schedule.retrain]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrainConfig {
    pub cron: Option<String>,
    pub enabled: Option<bool>,
    pub catch_up: Option<bool>,
    /// The last N days of each pair's candles (counted back from its newest candle);
    /// default 30.
    pub days: Option<u32>,
    /// Default: `[market] pairs`, else every pair found.
    #[serde(default)]
    pub pairs: Vec<String>,
}

/// `[schedule.rotation]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotationConfig {
    pub cron: Option<String>,
    pub enabled: Option<bool>,
    pub catch_up: Option<bool>,
    /// Only recommendations at or above this are deployed (default 0.8).
    pub min_confidence: Option<f64>,
    /// Keep a rotated bot whose strategy is still recommended (default true); when false
    /// only the top `max_concurrent` stay.
    pub keep_current: Option<bool>,
    /// Rotated bots at once (default 1).
    pub max_concurrent: Option<usize>,
    /// Deploy live (still only where the strategy allows it and keys are configured);
    /// default false: dry-run.
    pub allow_live: Option<bool>,
    /// How long a rotated-out bot may keep its open trades before it is stopped
    /// (default 300).
    pub drain_deadline_secs: Option<u64>,
}

/// `[schedule.regime_deploy]`: the cron says how often the conditions are looked at.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegimeConfig {
    pub cron: Option<String>,
    pub enabled: Option<bool>,
    pub catch_up: Option<bool>,
    pub min_confidence: Option<f64>,
    pub max_concurrent: Option<usize>,
    pub allow_live: Option<bool>,
    pub drain_deadline_secs: Option<u64>,
}

/// One job's schedule, resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    pub name: &'static str,
    pub description: &'static str,
    /// Six fields, with seconds.
    pub cron: String,
    /// The expression in words, made once (`jobs.list` is a hot read).
    pub schedule_text: String,
    pub enabled: bool,
    pub catch_up: bool,
}

/// How rotation (and deployment on a regime change) moves bots.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationPolicy {
    pub min_confidence: f64,
    pub keep_current: bool,
    pub max_concurrent: usize,
    pub allow_live: bool,
    pub drain_deadline_secs: u64,
}

/// `[schedule]` resolved and checked.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub timezone: chrono_tz::Tz,
    pub jobs: Vec<JobSpec>,
    pub retrain_days: u32,
    pub retrain_pairs: Vec<String>,
    pub rotation: RotationPolicy,
    pub regime: RotationPolicy,
    pub backup: BackupPolicy,
    pub retention: RetentionPolicy,
}

impl Schedule {
    pub fn job(&self, name: &str) -> Option<&JobSpec> {
        self.jobs.iter().find(|j| j.name == name)
    }
}

/// Reads a cron expression: six fields (with seconds), or the usual five (then at
/// second 0). Answers the six-field form.
pub fn parse_cron(text: &str) -> Result<(String, croner::Cron), String> {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let six = match text.split(' ').count() {
        5 => format!("0 {text}"),
        6 => text,
        n => {
            return Err(format!(
                "{text:?} has {n} fields; give 6 (sec min hour day month weekday) or 5 (min hour day month weekday)"
            ));
        }
    };
    let cron = croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(&six)
        .map_err(|e| format!("{six:?} is not a cron expression: {e}"))?;
    Ok((six, cron))
}

fn confidence(key: &str, value: Option<f64>) -> Result<f64, String> {
    let v = value.unwrap_or(0.8);
    if !(v.is_finite() && (0.5..=1.0).contains(&v)) {
        return Err(format!(
            "[schedule.{key}] min_confidence must be within 0.5 and 1 (recommendations score 0.5 to 1), got {v}"
        ));
    }
    Ok(v)
}

fn at_least_one(key: &str, value: Option<usize>) -> Result<usize, String> {
    match value.unwrap_or(1) {
        0 => Err(format!("[schedule.{key}] max_concurrent must be 1 or more")),
        n => Ok(n),
    }
}

impl ScheduleConfig {
    /// Resolves the defaults and checks every value.
    pub fn resolve(&self) -> Result<Schedule, String> {
        let timezone = match &self.timezone {
            None => chrono_tz::UTC,
            Some(name) => name.parse::<chrono_tz::Tz>().map_err(|_| {
                format!(
                    "[schedule] timezone {name:?} is not a time zone name (e.g. UTC, Europe/London)"
                )
            })?,
        };
        let spec = |name: &'static str,
                    description: &'static str,
                    cron: &Option<String>,
                    default_cron: &str,
                    enabled: Option<bool>,
                    default_enabled: bool,
                    catch_up: Option<bool>,
                    default_catch_up: bool|
         -> Result<JobSpec, String> {
            let text = cron.as_deref().unwrap_or(default_cron);
            let (cron, parsed) =
                parse_cron(text).map_err(|e| format!("[schedule.{name}] cron: {e}"))?;
            Ok(JobSpec {
                name,
                description,
                cron,
                schedule_text: parsed.describe(),
                enabled: enabled.unwrap_or(default_enabled),
                catch_up: catch_up.unwrap_or(default_catch_up),
            })
        };
        let (r, o, g) = (&self.retrain, &self.rotation, &self.regime_deploy);
        let d = &self.data_refresh;
        let b = &self.backup;
        let t = &self.retention;
        let jobs = vec![
            spec(
                RETRAIN,
                "retrain the trend-reversal model on the last days of candles; promote only if it beats the current one",
                &r.cron,
                "0 0 2 * * *",
                r.enabled,
                true,
                r.catch_up,
                true,
            )?,
            spec(
                ROTATION,
                "move rotated bots to the strategies recommended for the market now",
                &o.cron,
                "0 0 3 * * *",
                o.enabled,
                false,
                o.catch_up,
                false,
            )?,
            spec(
                REGIME_DEPLOY,
                "when the market's trend or volatility regime changes, deploy the top recommendation",
                &g.cron,
                "0 */5 * * * *",
                g.enabled,
                false,
                g.catch_up,
                false,
            )?,
            spec(
                PERFORMANCE_SYNC,
                "copy running bots' closed trades into the registry and refresh live figures",
                &self.performance_sync.cron,
                "0 * * * * *",
                self.performance_sync.enabled,
                true,
                self.performance_sync.catch_up,
                false,
            )?,
            spec(
                LEARNING,
                "the learning loop's review: flush the decision log, look for patterns in every strategy's recent trades",
                &self.learning.cron,
                "0 30 * * * *",
                self.learning.enabled,
                true,
                self.learning.catch_up,
                false,
            )?,
            spec(
                DATA_REFRESH,
                "bring the market data up to date from the exchange (Freqtrade's download-data)",
                &d.cron,
                // Just after each 5-minute candle closes.
                "10 */5 * * * *",
                d.enabled,
                false,
                d.catch_up,
                false,
            )?,
            spec(
                BACKUP,
                "back up the data directory, read the backup back against its manifest, keep the newest ones",
                &b.cron,
                "0 30 3 * * *",
                b.enabled,
                false,
                b.catch_up,
                true,
            )?,
            spec(
                RETENTION,
                "prune what the data directory keeps beyond its time: ended deployments' directories, finished backtests' work, oversized logs",
                &t.cron,
                "0 17 * * * *",
                t.enabled,
                true,
                t.catch_up,
                false,
            )?,
        ];
        let days = r.days.unwrap_or(30);
        if days == 0 {
            return Err("[schedule.retrain] days must be 1 or more".into());
        }
        Ok(Schedule {
            timezone,
            jobs,
            retrain_days: days,
            retrain_pairs: r.pairs.clone(),
            rotation: RotationPolicy {
                min_confidence: confidence("rotation", o.min_confidence)?,
                keep_current: o.keep_current.unwrap_or(true),
                max_concurrent: at_least_one("rotation", o.max_concurrent)?,
                allow_live: o.allow_live.unwrap_or(false),
                drain_deadline_secs: o.drain_deadline_secs.unwrap_or(300),
            },
            regime: RotationPolicy {
                min_confidence: confidence("regime_deploy", g.min_confidence)?,
                keep_current: true,
                max_concurrent: at_least_one("regime_deploy", g.max_concurrent)?,
                allow_live: g.allow_live.unwrap_or(false),
                drain_deadline_secs: g.drain_deadline_secs.unwrap_or(300),
            },
            backup: b.policy()?,
            retention: t.policy()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_seeds() {
        let s = ScheduleConfig::default().resolve().unwrap();
        assert_eq!(s.timezone, chrono_tz::UTC);
        let retrain = s.job(RETRAIN).unwrap();
        assert_eq!(
            (retrain.cron.as_str(), retrain.enabled, retrain.catch_up),
            ("0 0 2 * * *", true, true)
        );
        assert!(
            !s.job(ROTATION).unwrap().enabled,
            "rotation is off by default"
        );
        assert!(!s.job(REGIME_DEPLOY).unwrap().enabled);
        let refresh = s.job(DATA_REFRESH).unwrap();
        assert_eq!(
            (refresh.cron.as_str(), refresh.enabled),
            ("10 */5 * * * *", false),
            "every 5 minutes, 10 s after a candle closed; off until an exchange is chosen"
        );
        assert_eq!(s.job(PERFORMANCE_SYNC).unwrap().cron, "0 * * * * *");
        assert_eq!(s.rotation.min_confidence, 0.8);
        assert_eq!(s.rotation.max_concurrent, 1);
        assert!(s.rotation.keep_current && !s.rotation.allow_live);
        let retention = s.job(RETENTION).unwrap();
        assert_eq!(
            (retention.cron.as_str(), retention.enabled),
            ("0 17 * * * *", true),
            "hourly, on by default"
        );
        assert_eq!(s.retention.deployments_after, chrono::Duration::days(14));
        assert_eq!(s.retention.queue_after, chrono::Duration::days(7));
        assert_eq!(s.retention.audit_max_bytes, 16 << 20);
        assert_eq!(s.retention.archives, 8);
        assert_eq!(s.retention.model_versions, 30);
    }

    #[test]
    fn retention_ages_take_fractions_of_days() {
        let c: ScheduleConfig =
            toml::from_str("[retention]\ndeployments_days = 0.5\nqueue_days = 0.0001").unwrap();
        let s = c.resolve().unwrap();
        assert_eq!(s.retention.deployments_after, chrono::Duration::hours(12));
        assert_eq!(
            s.retention.queue_after,
            chrono::Duration::milliseconds(8640)
        );
        for bad in [
            "deployments_days = 0",
            "queue_days = -1",
            "archives = 0",
            "audit_max_bytes = 10",
        ] {
            let c: ScheduleConfig = toml::from_str(&format!("[retention]\n{bad}")).unwrap();
            let e = c.resolve().unwrap_err();
            let key = bad.split(' ').next().unwrap();
            assert!(e.contains(&format!("[schedule.retention] {key}")), "{e}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let err = |toml_text: &str| {
            let c: ScheduleConfig = toml::from_str(toml_text).unwrap();
            c.resolve().unwrap_err()
        };
        let e = err("[retrain]\ncron = \"0 0 25 * * *\"");
        assert!(
            e.contains("[schedule.retrain] cron") && e.contains("0 0 25"),
            "{e}"
        );
        let e = err("[rotation]\ncron = \"every day\"");
        assert!(e.contains("[schedule.rotation] cron"), "{e}");
        let e = err("timezone = \"Mars/Olympus\"");
        assert!(e.contains("Mars/Olympus"), "{e}");
        let e = err("[rotation]\nmin_confidence = 1.5");
        assert!(e.contains("min_confidence"), "{e}");
        let e = err("[regime_deploy]\nmax_concurrent = 0");
        assert!(e.contains("[schedule.regime_deploy] max_concurrent"), "{e}");
        let e = toml::from_str::<ScheduleConfig>("[rotation]\nmin_confidense = 0.9")
            .unwrap_err()
            .to_string();
        assert!(e.contains("min_confidense"), "{e}");
    }

    #[test]
    fn five_fields_run_at_second_zero() {
        assert_eq!(parse_cron("30 2 * * *").unwrap().0, "0 30 2 * * *");
        assert_eq!(parse_cron(" */1  * * * * * ").unwrap().0, "*/1 * * * * *");
        assert!(parse_cron("* * *").is_err());
    }
}
