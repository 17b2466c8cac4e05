//! memctl commands that change or inspect the registry beyond list and show.

use crate::RangeArgs;
use crate::cli::{number, percent, print_json, table};
use anyhow::{Context, bail};
use comfy_table::{Cell, CellAlignment};
use mem_protocol::Client;
use mem_protocol::methods::method;
use mem_protocol::registry::*;
use mem_protocol::strategy::{StrategyDetail, StrategyId, StrategyStatus};
use memctl::text;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn id(text: &str) -> anyhow::Result<StrategyId> {
    text.parse().map_err(anyhow::Error::msg)
}

/// Reads a file, or stdin for `-`.
fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        return std::io::read_to_string(std::io::stdin()).context("cannot read stdin");
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn parse_json(text: &str, source: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).with_context(|| format!("{source} is not valid JSON"))
}

/// Prints a changed strategy: one line for people, the detail for scripts.
fn changed(detail: &StrategyDetail, what: &str, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(detail);
    }
    println!(
        "{what}: {} ({})",
        detail.summary.display_name, detail.summary.id
    );
    Ok(())
}

pub async fn register(
    client: &Client,
    file: &Path,
    status: Option<StrategyStatus>,
    json: bool,
) -> anyhow::Result<()> {
    let strategy = parse_json(&read_input(file)?, &file.display().to_string())?;
    let detail = client
        .call::<method::StrategiesRegister>(RegisterParams { strategy, status })
        .await?;
    if json {
        return print_json(&detail);
    }
    println!(
        "registered {} ({}) as {}",
        detail.summary.display_name, detail.summary.id, detail.summary.status
    );
    Ok(())
}

/// The .json files of `paths` (directories are searched one level deep).
fn json_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

pub async fn import(client: &Client, paths: &[PathBuf], json: bool) -> anyhow::Result<()> {
    let mut documents = Vec::new();
    for file in json_files(paths)? {
        let source = file.display().to_string();
        let value = parse_json(&read_input(&file)?, &source)?;
        match value {
            // A JSON array: several documents in one file (an API response's `data`, say).
            Value::Array(items) => {
                for (i, document) in items.into_iter().enumerate() {
                    documents.push(ImportDocument {
                        source: format!("{source}[{i}]"),
                        document,
                    });
                }
            }
            document => documents.push(ImportDocument { source, document }),
        }
    }
    if documents.is_empty() {
        bail!(
            "no .json files found in {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let report = client
        .call::<method::Import>(ImportParams { documents })
        .await?;
    if json {
        print_json(&report)?;
    } else {
        for r in &report.results {
            match (&r.id, &r.error) {
                (Some(id), _) => println!(
                    "imported  {}  {}  ({})",
                    id,
                    r.name.as_deref().unwrap_or(""),
                    r.source
                ),
                (None, Some(error)) => println!("FAILED    {}: {error}", r.source),
                _ => {}
            }
        }
        println!("{} imported, {} failed", report.imported, report.failed);
    }
    if report.failed > 0 {
        bail!(
            "{} of {} documents were not imported",
            report.failed,
            report.results.len()
        );
    }
    Ok(())
}

pub async fn update(
    client: &Client,
    strategy: &str,
    patch: &str,
    reason: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let patch = match patch.strip_prefix('@') {
        Some(file) => parse_json(&read_input(Path::new(file))?, file)?,
        None => parse_json(patch, "--patch")?,
    };
    let detail = client
        .call::<method::StrategiesUpdate>(UpdateParams {
            id: id(strategy)?,
            patch,
            reason,
        })
        .await?;
    changed(&detail, "updated", json)
}

pub async fn deprecate(
    client: &Client,
    strategy: &str,
    reason: String,
    date: Option<chrono::NaiveDate>,
    replacement: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let replacement_id = replacement.as_deref().map(id).transpose()?;
    let detail = client
        .call::<method::StrategiesDeprecate>(DeprecateParams {
            id: id(strategy)?,
            reason,
            date,
            replacement_id,
        })
        .await?;
    changed(&detail, "deprecated", json)
}

pub async fn set_status(
    client: &Client,
    strategy: &str,
    status: StrategyStatus,
    reason: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let detail = client
        .call::<method::StrategiesSetStatus>(SetStatusParams {
            id: id(strategy)?,
            status,
            reason,
        })
        .await?;
    changed(&detail, &format!("now {status}"), json)
}

pub async fn tag(
    client: &Client,
    strategy: &str,
    add: Vec<String>,
    remove: Vec<String>,
    json: bool,
) -> anyhow::Result<()> {
    let detail = client
        .call::<method::StrategiesTags>(TagsParams {
            id: id(strategy)?,
            add,
            remove,
        })
        .await?;
    if json {
        return print_json(&detail);
    }
    println!(
        "tags of {}: {}",
        detail.summary.display_name,
        detail.summary.tags.join(", ")
    );
    Ok(())
}

fn relationship(text: &str) -> anyhow::Result<RelationshipType> {
    crate::enum_value("relationship", text)
}

/// `memctl strategies link FROM RELATIONSHIP TO`.
pub async fn link(
    client: &Client,
    (from, rel, to): (String, String, String),
    note: Option<String>,
    similarity: Option<f64>,
    json: bool,
) -> anyhow::Result<()> {
    let params = LinkParams {
        from: id(&from)?,
        to: id(&to)?,
        relationship: relationship(&rel)?,
        note,
        similarity_score: similarity,
    };
    let link = client.call::<method::StrategiesLink>(params).await?;
    if json {
        return print_json(&link);
    }
    println!("linked {} {} {}", link.from, rel, link.to);
    Ok(())
}

pub async fn unlink(
    client: &Client,
    from: &str,
    rel: &str,
    to: &str,
    json: bool,
) -> anyhow::Result<()> {
    let params = LinkParams {
        from: id(from)?,
        to: id(to)?,
        relationship: relationship(rel)?,
        note: None,
        similarity_score: None,
    };
    let result = client.call::<method::StrategiesUnlink>(params).await?;
    if json {
        return print_json(&result);
    }
    println!(
        "{}",
        if result.removed {
            "link removed"
        } else {
            "there was no such link"
        }
    );
    Ok(())
}

pub async fn related(
    client: &Client,
    strategy: &str,
    types: Vec<String>,
    depth: Option<u32>,
    json: bool,
) -> anyhow::Result<()> {
    let types = types
        .iter()
        .map(|t| relationship(t))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let list = client
        .call::<method::StrategiesRelated>(RelatedParams {
            id: id(strategy)?,
            types,
            depth,
        })
        .await?;
    if json {
        return print_json(&list);
    }
    if list.related.is_empty() {
        println!("no related strategies");
        return Ok(());
    }
    let mut t = table(&["RELATIONSHIP", "DIRECTION", "DEPTH", "ID", "NAME"]);
    for r in &list.related {
        t.add_row(vec![
            Cell::new(
                serde_json::to_value(r.relationship)?
                    .as_str()
                    .unwrap_or("?"),
            ),
            Cell::new(serde_json::to_value(r.direction)?.as_str().unwrap_or("?")),
            Cell::new(r.depth),
            Cell::new(r.strategy.id),
            Cell::new(&r.strategy.display_name),
        ]);
    }
    crate::cli::print_table(&t);
    Ok(())
}

pub async fn versions(client: &Client, strategy: &str, json: bool) -> anyhow::Result<()> {
    let list = client
        .call::<method::VersionsList>(IdParams { id: id(strategy)? })
        .await?;
    if json {
        return print_json(&list);
    }
    println!("current version {}", list.current_version);
    let mut t = table(&[
        "VERSION",
        "TYPE",
        "CREATED",
        "BY",
        "VALIDATION",
        "SHARPE",
        "WIN",
        "MAX DD",
        "CAGR",
        "APPROVED",
        "CHANGELOG",
    ]);
    for v in &list.versions {
        let version = if v.is_active {
            format!("{} (active)", v.version_number)
        } else {
            v.version_number.clone()
        };
        t.add_row(vec![
            Cell::new(version),
            Cell::new(v.version_type.map_or("-", text::version_bump)),
            Cell::new(v.created_at.format("%Y-%m-%d %H:%M")),
            Cell::new(&v.created_by),
            Cell::new(
                v.validation_status
                    .map_or("pending", text::version_validation),
            ),
            Cell::new(number(v.sharpe_ratio)).set_alignment(CellAlignment::Right),
            Cell::new(percent(v.win_rate)).set_alignment(CellAlignment::Right),
            Cell::new(percent(v.max_drawdown)).set_alignment(CellAlignment::Right),
            Cell::new(percent(v.cagr)).set_alignment(CellAlignment::Right),
            Cell::new(v.approved_by.as_deref().unwrap_or("-")),
            Cell::new(v.changelog.lines().next().unwrap_or("")),
        ]);
    }
    crate::cli::print_table(&t);
    Ok(())
}

pub async fn version(
    client: &Client,
    strategy: &str,
    version: &str,
    json: bool,
) -> anyhow::Result<()> {
    let v = client
        .call::<method::VersionsGet>(GetVersionParams {
            id: id(strategy)?,
            version: version.into(),
        })
        .await?;
    if json {
        return print_json(&v);
    }
    println!(
        "version {} of {} ({})",
        v.version_number,
        v.strategy_id,
        v.created_at.to_rfc3339()
    );
    println!(
        "by {}{}",
        v.created_by,
        v.git_commit_hash
            .as_deref()
            .map(|h| format!(", commit {h}"))
            .unwrap_or_default()
    );
    println!("\n{}\n", v.changelog);
    println!("parameters: {}", serde_json::to_string(&v.parameters)?);
    if !v.backtest_results.is_empty() {
        println!("backtest: {}", serde_json::to_string(&v.backtest_results)?);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
/// `memctl strategies versions approve`.
pub async fn approve_version(
    client: &Client,
    strategy: &str,
    version: String,
    by: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let v = client
        .call::<method::VersionsApprove>(mem_protocol::registry::ApproveVersionParams {
            id: id(strategy)?,
            version,
            by,
        })
        .await?;
    if json {
        return print_json(&v);
    }
    println!(
        "version {} of {} approved by {}",
        v.version_number,
        v.strategy_id,
        v.approved_by.as_deref().unwrap_or("?")
    );
    Ok(())
}

/// `memctl strategies versions create`.
#[derive(Debug, clap::Args)]
pub struct NewVersionArgs {
    id: String,
    #[arg(long, value_parser = ["major", "minor", "patch"])]
    bump: Option<String>,
    #[arg(long)]
    version: Option<String>,
    #[arg(long)]
    changelog: String,
    #[arg(long)]
    git_hash: Option<String>,
    /// A file whose content is kept as the code snapshot.
    #[arg(long, value_name = "FILE")]
    code: Option<PathBuf>,
    /// A JSON file of the version's parameters.
    #[arg(long, value_name = "FILE")]
    parameters: Option<PathBuf>,
    /// A JSON file of the parameters' defaults in this version's code.
    #[arg(long, value_name = "FILE")]
    default_parameters: Option<PathBuf>,
    /// What this version breaks for its users.
    #[arg(long)]
    breaking_changes: Option<String>,
    /// How to move to this version.
    #[arg(long)]
    migration_notes: Option<String>,
    /// Percent of the strategy's code its tests cover (0-100).
    #[arg(long)]
    test_coverage: Option<f64>,
    /// How much MEM improved this version over the one it enhances, in percent.
    #[arg(long)]
    mem_improvement_pct: Option<f64>,
}

/// A JSON object of parameters read from `file`.
fn parameters_file(
    file: Option<PathBuf>,
) -> anyhow::Result<Option<serde_json::Map<String, Value>>> {
    match file {
        Some(file) => match parse_json(&read_input(&file)?, &file.display().to_string())? {
            Value::Object(map) => Ok(Some(map)),
            _ => bail!("{} must hold a JSON object of parameters", file.display()),
        },
        None => Ok(None),
    }
}

pub async fn create_version(client: &Client, a: NewVersionArgs, json: bool) -> anyhow::Result<()> {
    let params = CreateVersionParams {
        id: id(&a.id)?,
        bump: a
            .bump
            .as_deref()
            .map(|b| crate::enum_value("bump", b))
            .transpose()?,
        version: a.version,
        changelog: a.changelog,
        parameters: parameters_file(a.parameters)?,
        backtest: None,
        code_snapshot: a.code.map(|f| read_input(&f)).transpose()?,
        git_hash: a.git_hash,
        breaking_changes: a.breaking_changes,
        migration_notes: a.migration_notes,
        default_parameters: parameters_file(a.default_parameters)?,
        test_coverage: a.test_coverage,
        mem_improvement_pct: a.mem_improvement_pct,
    };
    let v = client.call::<method::VersionsCreate>(params).await?;
    if json {
        return print_json(&v);
    }
    println!("created version {} of {}", v.version_number, v.strategy_id);
    Ok(())
}

pub async fn record_trades(
    client: &Client,
    strategy: &str,
    file: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let text = read_input(file)?;
    let trades: Vec<TradeRecord> = match serde_json::from_str(&text) {
        Ok(trades) => trades,
        Err(_) => text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
            .map(|(n, l)| {
                serde_json::from_str(l)
                    .with_context(|| format!("{} line {}: not a trade", file.display(), n + 1))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let result = client
        .call::<method::TradesRecord>(RecordTradesParams {
            id: id(strategy)?,
            trades,
        })
        .await?;
    if json {
        return print_json(&result);
    }
    println!(
        "recorded {} trades ({} duplicates skipped); {} in total",
        result.recorded,
        result.duplicates.len(),
        result.total_trades
    );
    Ok(())
}

pub async fn list_trades(
    client: &Client,
    strategy: &str,
    range: RangeArgs,
    limit: usize,
    offset: Option<usize>,
    json: bool,
) -> anyhow::Result<()> {
    let params = ListTradesParams {
        id: id(strategy)?,
        from: range.from,
        to: range.to,
        limit: Some(limit),
        offset,
    };
    let list = client.call::<method::TradesList>(params).await?;
    if json {
        return print_json(&list);
    }
    let mut t = table(&[
        "EXIT",
        "TRADE",
        "SYMBOL",
        "ACTION",
        "ENTRY",
        "EXIT PRICE",
        "P&L",
        "P&L %",
        "MAE / MFE",
        "SL / TP",
        "MEM",
    ]);
    let price = |p: Option<f64>| p.map_or("-".into(), text::significant);
    for tr in &list.trades {
        t.add_row(vec![
            Cell::new(tr.exit_time.format("%Y-%m-%d %H:%M")),
            Cell::new(&tr.trade_id),
            Cell::new(&tr.symbol),
            Cell::new(text::trade_action(tr.action)),
            Cell::new(text::significant(tr.entry_price)).set_alignment(CellAlignment::Right),
            Cell::new(text::significant(tr.exit_price)).set_alignment(CellAlignment::Right),
            Cell::new(format!("{:.2}", tr.pnl)).set_alignment(CellAlignment::Right),
            Cell::new(percent(Some(tr.pnl_pct))).set_alignment(CellAlignment::Right),
            Cell::new(
                match (tr.max_adverse_excursion, tr.max_favorable_excursion) {
                    (None, None) => String::new(),
                    (mae, mfe) => format!("{} / {}", percent(mae), percent(mfe)),
                },
            )
            .set_alignment(CellAlignment::Right),
            Cell::new(match (tr.stop_loss, tr.take_profit) {
                (None, None) => String::new(),
                (sl, tp) => format!("{} / {}", price(sl), price(tp)),
            })
            .set_alignment(CellAlignment::Right),
            Cell::new(if tr.mem_enhanced { "yes" } else { "" }),
        ]);
    }
    crate::cli::print_table(&t);
    println!("({} of {} trades)", list.trades.len(), list.total);
    Ok(())
}

fn metric_rows(t: &mut comfy_table::Table, label: &str, m: &Metrics) {
    let secs = |s: Option<f64>| s.map_or("-".into(), |s| format!("{:.1} h", s / 3600.0));
    t.add_row(vec![
        Cell::new(label),
        Cell::new(m.total_trades).set_alignment(CellAlignment::Right),
        Cell::new(percent(m.win_rate)).set_alignment(CellAlignment::Right),
        Cell::new(format!("{:.2}", m.total_pnl)).set_alignment(CellAlignment::Right),
        Cell::new(percent(Some(m.total_return))).set_alignment(CellAlignment::Right),
        Cell::new(number(m.profit_factor)).set_alignment(CellAlignment::Right),
        Cell::new(number(m.sharpe_ratio)).set_alignment(CellAlignment::Right),
        Cell::new(number(m.sortino_ratio)).set_alignment(CellAlignment::Right),
        Cell::new(percent(Some(m.max_drawdown))).set_alignment(CellAlignment::Right),
        Cell::new(secs(m.average_duration_secs)).set_alignment(CellAlignment::Right),
    ]);
}

const METRIC_HEADERS: [&str; 10] = [
    "",
    "TRADES",
    "WIN RATE",
    "P&L",
    "RETURN",
    "PROFIT F.",
    "SHARPE",
    "SORTINO",
    "MAX DD",
    "AVG HOLD",
];

pub async fn performance(
    client: &Client,
    strategy: &str,
    range: RangeArgs,
    json: bool,
) -> anyhow::Result<()> {
    let report = client
        .call::<method::Performance>(PerformanceParams {
            id: id(strategy)?,
            from: range.from,
            to: range.to,
        })
        .await?;
    if json {
        return print_json(&report);
    }
    println!("{} ({})", report.strategy_name, report.strategy_id);
    let mut t = table(&METRIC_HEADERS);
    metric_rows(&mut t, "all", &report.all);
    metric_rows(&mut t, "MEM-enhanced", &report.mem_enhanced);
    metric_rows(&mut t, "not enhanced", &report.not_mem_enhanced);
    crate::cli::print_table(&t);
    let m = &report.all;
    println!(
        "best trade {}, worst {}, CAGR {}",
        number(m.best_trade_pnl),
        number(m.worst_trade_pnl),
        percent(m.cagr)
    );
    println!("conventions: {}", report.convention);
    Ok(())
}

pub async fn compare(
    client: &Client,
    ids: &[String],
    range: RangeArgs,
    json: bool,
) -> anyhow::Result<()> {
    let ids = ids
        .iter()
        .map(|s| id(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let result = client
        .call::<method::Compare>(CompareParams {
            ids,
            from: range.from,
            to: range.to,
        })
        .await?;
    if json {
        return print_json(&result);
    }
    let mut t = table(&METRIC_HEADERS);
    for report in &result.reports {
        metric_rows(&mut t, &report.strategy_name, &report.all);
    }
    crate::cli::print_table(&t);
    if let Some(first) = result.reports.first() {
        println!("conventions: {}", first.convention);
    }
    Ok(())
}

/// `memctl strategies params set`.
#[derive(Debug, clap::Args)]
pub struct SetParameterArgs {
    id: String,
    name: String,
    /// A negative number is a value, not an option (`stoploss -0.05`).
    #[arg(allow_negative_numbers = true)]
    value: String,
    #[arg(long)]
    reason: String,
    /// manual, mem_learning or optimisation.
    #[arg(long, default_value = "manual")]
    by: String,
    /// This change is arm GROUP (A, B, ...) of an A/B test.
    #[arg(long, value_name = "GROUP")]
    ab_test: Option<String>,
}

pub async fn set_parameter(client: &Client, a: SetParameterArgs, json: bool) -> anyhow::Result<()> {
    let value = serde_json::from_str(&a.value).unwrap_or_else(|_| Value::from(a.value.as_str()));
    let (strategy, name, reason, by, ab_test) = (a.id, a.name, a.reason, a.by, a.ab_test);
    let changed_by = crate::enum_value("--by", &by)?;
    let update = client
        .call::<method::ParametersUpdate>(UpdateParameterParams {
            id: id(&strategy)?,
            name,
            value,
            reason,
            changed_by,
            is_ab_test: ab_test.is_some(),
            ab_test_group: ab_test,
        })
        .await?;
    if json {
        return print_json(&update);
    }
    let change = &update.change;
    println!(
        "{}: {} -> {}",
        change.parameter_name, change.old_value, change.new_value
    );
    for effect in &update.applied {
        println!("  {effect}");
    }
    Ok(())
}

pub async fn parameter_history(
    client: &Client,
    strategy: &str,
    name: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let history = client
        .call::<method::ParametersHistory>(ParameterHistoryParams {
            id: id(strategy)?,
            name,
        })
        .await?;
    if json {
        return print_json(&history);
    }
    let mut t = table(&[
        "WHEN",
        "PARAMETER",
        "FROM",
        "TO",
        "BY",
        "VERSION",
        "SHARPE BEFORE",
        "AFTER",
        "CHANGE",
        "A/B",
        "REASON",
    ]);
    for c in &history.changes {
        t.add_row(vec![
            Cell::new(c.changed_at.format("%Y-%m-%d %H:%M:%S")),
            Cell::new(&c.parameter_name),
            Cell::new(crate::cli::compact(&c.old_value)),
            Cell::new(crate::cli::compact(&c.new_value)),
            Cell::new(serde_json::to_value(c.changed_by)?.as_str().unwrap_or("?")),
            Cell::new(c.version_id.as_deref().unwrap_or("-")),
            Cell::new(number(c.before_sharpe)).set_alignment(CellAlignment::Right),
            Cell::new(number(c.after_sharpe)).set_alignment(CellAlignment::Right),
            Cell::new(
                c.improvement_pct
                    .map_or("-".into(), |p| format!("{p:+.1}%")),
            )
            .set_alignment(CellAlignment::Right),
            Cell::new(c.ab_test_group.as_deref().unwrap_or("")),
            Cell::new(&c.change_reason),
        ]);
    }
    crate::cli::print_table(&t);
    Ok(())
}

pub async fn mark_enhanced(
    client: &Client,
    strategy: &str,
    base: &str,
    json: bool,
) -> anyhow::Result<()> {
    let detail = client
        .call::<method::MemMarkEnhanced>(MarkEnhancedParams {
            id: id(strategy)?,
            base_id: id(base)?,
        })
        .await?;
    changed(&detail, "marked MEM-enhanced", json)
}

pub async fn learned_patterns(
    client: &Client,
    strategy: &str,
    count: u64,
    json: bool,
) -> anyhow::Result<()> {
    let detail = client
        .call::<method::MemLearnedPatterns>(LearnedPatternsParams {
            id: id(strategy)?,
            count,
        })
        .await?;
    changed(&detail, &format!("{count} learned patterns"), json)
}

pub async fn audit(
    client: &Client,
    strategy: Option<String>,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let params = AuditParams {
        id: strategy.as_deref().map(id).transpose()?,
        limit: Some(limit),
    };
    let log = client.call::<method::Audit>(params).await?;
    if json {
        return print_json(&log);
    }
    let mut t = table(&["WHEN", "UID", "ACTION", "STRATEGY", "CHANGES"]);
    for e in &log.entries {
        let mut changes = e.changes.to_string();
        if changes.len() > 80 {
            changes.truncate(
                changes
                    .char_indices()
                    .nth(77)
                    .map_or(changes.len(), |(i, _)| i),
            );
            changes.push_str("...");
        }
        t.add_row(vec![
            Cell::new(e.at.format("%Y-%m-%d %H:%M:%S")),
            Cell::new(e.uid.map_or("memd".into(), |u| u.to_string())),
            Cell::new(&e.action),
            Cell::new(e.strategy_id.map_or("-".into(), |i| i.to_string())),
            Cell::new(changes),
        ]);
    }
    crate::cli::print_table(&t);
    Ok(())
}

/// A migration copies every strategy and trade and reads them back: minutes for a large
/// registry.
const MIGRATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// `memctl registry migrate --to postgres://...|files DIR`.
pub async fn migrate(
    client: &Client,
    to: String,
    dir: Option<PathBuf>,
    password_file: Option<PathBuf>,
    server: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let params = if to == "files" {
        let Some(dir) = dir else {
            bail!("--to files needs the directory: memctl registry migrate --to files DIR");
        };
        if password_file.is_some() || server.is_some() {
            bail!("--password-file and --server-name are for --to postgres://...");
        }
        let dir = std::path::absolute(&dir)?;
        MigrateParams::Files {
            dir: dir.display().to_string(),
        }
    } else if to.starts_with("postgres://") || to.starts_with("postgresql://") {
        if dir.is_some() {
            bail!("a directory is for --to files; --to {to} is a database");
        }
        let password = match password_file {
            Some(file) => Some(
                std::fs::read_to_string(&file)
                    .with_context(|| format!("--password-file {}", file.display()))?
                    .trim_end_matches(['\n', '\r'])
                    .to_string(),
            ),
            None => None,
        };
        MigrateParams::Postgres {
            url: to,
            password,
            server,
        }
    } else {
        bail!("--to is postgres://USER@HOST:PORT/DATABASE or files, not {to:?}");
    };
    eprintln!("memd is copying its registry (writes wait until it is done)...");
    let report = client
        .call_with_timeout::<method::RegistryMigrate>(params, MIGRATE_TIMEOUT)
        .await?;
    if json {
        return print_json(&report);
    }
    println!(
        "copied {} strategies, {} versions, {} parameter changes, {} relationships, {} audit entries and {} trades into {} in {:.1} s",
        report.strategies,
        report.versions,
        report.parameter_changes,
        report.relationships,
        report.audit_entries,
        report.trades,
        report.target,
        report.seconds
    );
    println!(
        "read back and compared: every document and trade the same (checksum {})",
        report.checksum
    );
    println!(
        "memd still runs on its own registry; point it at the copy with [registry] in memd.toml and restart it"
    );
    Ok(())
}
