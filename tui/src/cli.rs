//! The scriptable commands: aligned tables for people, `--json` (the protocol's data) for
//! scripts.

use anyhow::Context;
use comfy_table::{Cell, CellAlignment, Table, presets};
use mem_protocol::methods::{ListStrategiesParams, NoParams, method};
use mem_protocol::strategy::{StrategyDetail, StrategyId};
use mem_protocol::{Client, ClientError};
use memctl::text;
use serde::Serialize;
use serde_json::Value;

/// The exit code for an error of a command.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<crate::jobs_cli::JobFailed>().is_some() {
        return crate::exit::DAEMON_ERROR;
    }
    match err.downcast_ref::<ClientError>() {
        Some(ClientError::Rpc(_)) => crate::exit::DAEMON_ERROR,
        Some(_) => crate::exit::UNREACHABLE,
        None => crate::exit::USAGE,
    }
}

/// One progress line: `[#####     ] 2/4 ETH/USDT 5m: 30 candles fetched`.
pub fn progress_bar(done: u64, total: u64, message: &str) -> String {
    let width = 30usize;
    let filled = if total > 0 {
        (done as usize * width / total as usize).min(width)
    } else {
        0
    };
    format!(
        "[{}{}] {done}/{total} {message}",
        "#".repeat(filled),
        " ".repeat(width - filled)
    )
}

pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A borderless table whose columns line up.
pub fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_style(presets::NOTHING)
        .set_header(headers.iter().map(Cell::new));
    table
}

/// Marks a table's lines when memctl runs for `--server all` (see [`crate::fleet_cli`]):
/// the parent reads the cells back and merges every server's rows into one table.
pub const MERGE_ENV: &str = "MEMCTL_MERGE_TABLES";
pub const MERGE_HEADER: &str = "\u{1e}memctl-table-header ";
pub const MERGE_ROW: &str = "\u{1e}memctl-table-row ";

/// Prints a table; for `--server all`, as cells the parent merges.
pub fn print_table(table: &Table) {
    if std::env::var_os(MERGE_ENV).is_none() {
        println!("{table}");
        return;
    }
    let cells =
        |row: &comfy_table::Row| -> Vec<String> { row.cell_iter().map(|c| c.content()).collect() };
    if let Some(header) = table.header() {
        println!("{MERGE_HEADER}{}", serde_json::json!(cells(header)));
    }
    for row in table.row_iter() {
        println!("{MERGE_ROW}{}", serde_json::json!(cells(row)));
    }
}

pub fn percent(ratio: Option<f64>) -> String {
    ratio.map_or("-".into(), |r| format!("{:.1}%", r * 100.0))
}

pub fn number(value: Option<f64>) -> String {
    value.map_or("-".into(), |v| format!("{v:.2}"))
}

fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// `memctl status`.
pub async fn status(client: &Client, json: bool) -> anyhow::Result<()> {
    let status = client.call::<method::DaemonStatus>(NoParams {}).await?;
    if json {
        return print_json(&status);
    }
    let by_status: Vec<String> = status
        .counts
        .strategies_by_status
        .iter()
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    let host = &status.host;
    println!(
        "memd {} (pid {}, up {}, {} mode)",
        status.version,
        status.pid,
        duration(status.uptime_secs),
        status.mode
    );
    println!("socket      {}", status.socket);
    println!("data dir    {}", status.data_dir);
    match &status.registry_database {
        None => println!("registry    {}", status.registry_dir),
        Some(db) if db.reachable => println!(
            "registry    PostgreSQL {} (as server {}): reachable",
            db.database, db.server
        ),
        Some(db) => println!(
            "registry    PostgreSQL {} (as server {}): UNREACHABLE since {} ({}): changes are refused, reads come from memory",
            db.database,
            db.server,
            db.down_since.map_or("?".into(), |t| t
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string()),
            db.problem.as_deref().unwrap_or("no reason given")
        ),
    }
    println!("logs        {}", status.log_dir);
    if let Some(config) = &status.config_file {
        println!("config      {config}");
    }
    println!(
        "strategies  {} ({}){}",
        status.counts.strategies,
        by_status.join(", "),
        match status.counts.registry_errors {
            0 => String::new(),
            n => format!(", {n} unreadable metadata files (see the daemon log)"),
        }
    );
    println!(
        "clients     {} connected, {} subscribed",
        status.counts.connections, status.counts.subscribers
    );
    println!(
        "host        {}: {} CPUs at {:.1}%, memory {} of {}, load {:.2} {:.2} {:.2}",
        host.hostname.as_deref().unwrap_or("?"),
        host.cpu_count,
        host.cpu_percent,
        bytes(host.memory_used_bytes),
        bytes(host.memory_total_bytes),
        host.load_average[0],
        host.load_average[1],
        host.load_average[2]
    );
    println!(
        "memd        {} resident, {:.1}% CPU",
        bytes(status.process.rss_bytes),
        status.process.cpu_percent
    );
    println!(
        "access      {}",
        serde_json::to_value(status.access)?.as_str().unwrap_or("?")
    );
    Ok(())
}

/// `memctl strategies list`.
pub async fn strategies_list(
    client: &Client,
    params: ListStrategiesParams,
    json: bool,
) -> anyhow::Result<()> {
    let list = client.call::<method::StrategiesList>(params).await?;
    if json {
        return print_json(&list);
    }
    if list.strategies.is_empty() {
        println!("No strategy matches (the registry holds none with these filters).");
        return Ok(());
    }
    let mut t = table(&[
        "ID", "NAME", "CATEGORY", "STATUS", "LANGUAGE", "SHARPE", "WIN RATE", "MEM",
    ]);
    for s in &list.strategies {
        t.add_row(vec![
            Cell::new(s.id),
            Cell::new(&s.display_name),
            Cell::new(&s.category),
            Cell::new(s.status),
            Cell::new(&s.language),
            Cell::new(number(s.sharpe_ratio)).set_alignment(CellAlignment::Right),
            Cell::new(percent(s.win_rate)).set_alignment(CellAlignment::Right),
            Cell::new(if s.mem_enabled { "yes" } else { "no" }),
        ]);
    }
    crate::cli::print_table(&t);
    if list.total != list.strategies.len() {
        println!(
            "({} of {} matching strategies shown)",
            list.strategies.len(),
            list.total
        );
    }
    Ok(())
}

/// `memctl strategies show ID`.
pub async fn strategies_show(client: &Client, id: &str, json: bool) -> anyhow::Result<()> {
    let id: StrategyId = id.parse().map_err(anyhow::Error::msg)?;
    let detail = client
        .call::<method::StrategiesGet>(mem_protocol::methods::GetStrategyParams { id })
        .await
        .context(format!("cannot show strategy {id}"))?;
    if json {
        return print_json(&detail);
    }
    print_detail(&detail)
}

fn print_detail(d: &StrategyDetail) -> anyhow::Result<()> {
    let s = &d.summary;
    let meta = &d.metadata.strategy;
    let bt = &meta.performance.backtest;
    println!("{} ({})", s.display_name, s.name);
    println!("id           {}", s.id);
    println!("status       {}", s.status);
    println!("version      {}", s.version);
    println!(
        "origin       {}",
        serde_json::to_value(s.origin)?.as_str().unwrap_or("?")
    );
    println!(
        "category     {}{}",
        s.category,
        if s.sub_category.is_empty() {
            String::new()
        } else {
            format!(" / {}", s.sub_category)
        }
    );
    println!("language     {}", s.language);
    if let Some(class) = &meta.implementation.class_name {
        println!("class        {class}");
    }
    println!("tags         {}", s.tags.join(", "));
    println!("risk         {}", s.risk_level.as_deref().unwrap_or("-"));
    println!(
        "MEM          {}",
        if s.mem_enabled { "enabled" } else { "disabled" }
    );
    println!(
        "backtest     Sharpe {}, win rate {}, trades {}, total return {}, max drawdown {}",
        number(bt.sharpe_ratio),
        percent(bt.win_rate),
        bt.num_trades.map_or("-".into(), |n| n.to_string()),
        percent(bt.total_return),
        percent(bt.max_drawdown)
    );
    if !s.description.is_empty() {
        println!("\n{}", s.description);
    }
    if !meta.parameters.is_empty() {
        println!();
        let mut t = table(&["PARAMETER", "VALUE", "TYPE", "RANGE", "DESCRIPTION"]);
        for (name, value) in &meta.parameters {
            let declared = value.as_object().filter(|o| o.contains_key("value"));
            let field = |key: &str| {
                declared
                    .and_then(|o| o.get(key))
                    .map(compact)
                    .unwrap_or_default()
            };
            let shown = declared.and_then(|o| o.get("value")).unwrap_or(value);
            let range = match (
                declared.and_then(|o| o.get("min")),
                declared.and_then(|o| o.get("max")),
            ) {
                (Some(lo), Some(hi)) => format!("{} .. {}", compact(lo), compact(hi)),
                _ => String::new(),
            };
            t.add_row(vec![
                Cell::new(name),
                Cell::new(compact(shown)),
                Cell::new(field("type")),
                Cell::new(range),
                Cell::new(field("description")),
            ]);
        }
        crate::cli::print_table(&t);
    }
    Ok(())
}

/// A JSON value on one line, strings without quotes.
pub fn compact(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `memctl recommend`.
pub async fn recommend(
    client: &Client,
    trend: Option<mem_protocol::recommend::Trend>,
    volatility: Option<mem_protocol::recommend::Volatility>,
    limit: Option<usize>,
    explain: bool,
    json: bool,
) -> anyhow::Result<()> {
    let params = mem_protocol::recommend::MarketConditions {
        trend,
        volatility,
        limit,
        ..Default::default()
    };
    let result = client
        .call::<method::StrategiesRecommendations>(params)
        .await?;
    if json {
        return print_json(&result);
    }
    let c = &result.conditions;
    println!(
        "{} ({} trend, {} volatility, {})",
        result.message,
        c.trend,
        c.volatility,
        match c.source {
            mem_protocol::recommend::ConditionsSource::Request => "as given",
            mem_protocol::recommend::ConditionsSource::Computed => "computed from market data",
        }
    );
    if let Some(report) = &c.computed {
        let what = format!("{} {}", report.pair, report.timeframe);
        println!("  {}", freshness_line(&report.freshness, &what));
    }
    if result.recommendations.is_empty() {
        return Ok(());
    }
    let mut t = table(&[
        "SCORE", "STRATEGY", "CATEGORY", "SHARPE", "WIN", "FROM", "ID",
    ]);
    for r in &result.recommendations {
        t.add_row(vec![
            Cell::new(format!("{:.2}", r.confidence_score)).set_alignment(CellAlignment::Right),
            Cell::new(&r.strategy_name),
            Cell::new(&r.category),
            Cell::new(number(r.estimated_sharpe)).set_alignment(CellAlignment::Right),
            Cell::new(percent(r.estimated_win_rate)).set_alignment(CellAlignment::Right),
            Cell::new(text::metrics_source(r.metrics_source)),
            Cell::new(r.strategy_id),
        ]);
    }
    crate::cli::print_table(&t);
    if explain {
        for r in &result.recommendations {
            println!();
            println!("{}: {:.2}", r.strategy_name, r.confidence_score);
            for p in &r.breakdown {
                println!("  {:+.2}  {:<10} {}", p.points, p.rule, p.detail);
            }
            println!("  reason: {}", r.reason);
        }
    }
    Ok(())
}

/// How old the candles are, and what it means when they are stale: `data as of
/// 2018-02-01 00:00 UTC, 8 years old: STALE (demo data: ...); memctl market refresh ...`.
pub fn freshness_line(f: &mem_protocol::market::Freshness, what: &str) -> String {
    let mut line = format!(
        "data as of {}, {} old",
        f.as_of.format("%Y-%m-%d %H:%M UTC"),
        mem_protocol::market::age_words(f.age_secs)
    );
    if f.stale {
        line.push_str(&format!(
            ": STALE (older than {}){}; `memctl market refresh` brings the {what} candles up to date",
            mem_protocol::market::age_words(f.stale_after_secs),
            if f.demo {
                ", demo data: the shipped January 2018 candles, not today's market"
            } else {
                ""
            }
        ));
    }
    line
}

/// `memctl market`.
pub async fn market(
    client: &Client,
    pair: Option<String>,
    timeframe: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let r = client
        .call::<method::MarketConditionsNow>(mem_protocol::recommend::ConditionsParams {
            pair,
            timeframe,
        })
        .await?;
    if json {
        return print_json(&r);
    }
    println!(
        "{} {} at {}: {} trend, {} volatility",
        r.pair,
        r.timeframe,
        chrono::DateTime::from_timestamp_millis(r.candle_ts_ms)
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default(),
        r.trend,
        r.volatility
    );
    println!(
        "  {}",
        freshness_line(&r.freshness, &format!("{} {}", r.pair, r.timeframe))
    );
    println!("  trend: {}", r.trend_reason);
    println!("  volatility: {}", r.volatility_reason);
    for (name, value) in &r.indicators {
        println!("  {name:<14} {}", text::significant(*value));
    }
    Ok(())
}

/// `memctl memory decisions`.
pub async fn decisions(
    client: &Client,
    strategy: Option<String>,
    symbol: Option<String>,
    limit: usize,
    json: bool,
) -> anyhow::Result<()> {
    let list = client
        .call::<method::MemDecisions>(mem_protocol::mem::DecisionsParams {
            strategy,
            symbol,
            limit: Some(limit),
        })
        .await?;
    if json {
        return print_json(&list);
    }
    if list.decisions.is_empty() {
        println!("no decision logged yet");
    }
    let mut t = table(&[
        "TIME", "STRATEGY", "DO", "SYMBOL", "PRICE", "CONF", "SIZE", "OUTCOME", "ID",
    ]);
    for d in &list.decisions {
        t.add_row(vec![
            Cell::new(d.at.format("%Y-%m-%d %H:%M:%S")),
            Cell::new(&d.strategy),
            Cell::new(text::signal_action(d.action)),
            Cell::new(&d.symbol),
            Cell::new(text::significant(d.price)),
            Cell::new(format!("{:.2}", d.confidence)),
            Cell::new(format!("{:.4}", d.position_size)),
            Cell::new(match &d.outcome {
                Some(o) => format!("{:+.2} ({:+.2}%)", o.pnl, o.pnl_pct * 100.0),
                None => "open".into(),
            }),
            Cell::new(&d.id),
        ]);
    }
    if !list.decisions.is_empty() {
        crate::cli::print_table(&t);
    }
    if list.unreadable_lines > 0 {
        eprintln!(
            "{} unreadable lines in decisions.jsonl were skipped",
            list.unreadable_lines
        );
    }
    Ok(())
}

/// `memctl memory parameters`.
pub async fn parameters(client: &Client, json: bool) -> anyhow::Result<()> {
    let state = client.call::<method::MemParameters>(NoParams {}).await?;
    if json {
        return print_json(&state);
    }
    if state.current.is_empty() {
        println!("the learning loop has adjusted nothing yet");
        return Ok(());
    }
    let mut t = table(&["STRATEGY", "SIZE MULTIPLIER", "CONFIDENCE THRESHOLD"]);
    for (strategy, p) in &state.current {
        t.add_row(vec![
            Cell::new(strategy),
            Cell::new(p["position_size_multiplier"].to_string()),
            Cell::new(p["confidence_threshold"].to_string()),
        ]);
    }
    crate::cli::print_table(&t);
    Ok(())
}

pub async fn rotate_memory_key(client: &Client, json: bool) -> anyhow::Result<()> {
    let rotated = client.call::<method::MemKeyRotate>(NoParams {}).await?;
    if json {
        return print_json(&rotated);
    }
    println!(
        "the memory's key was rotated: {} files ({} records) re-encrypted in {} ms; {} holds the new key",
        rotated.files, rotated.records, rotated.millis, rotated.key_file
    );
    println!(
        "backups made before keep the old key in their own copy of the key file; the new key is nowhere else: copy it somewhere safe"
    );
    Ok(())
}

pub async fn patterns(client: &Client, strategy: Option<String>, json: bool) -> anyhow::Result<()> {
    let list = client
        .call::<method::MemPatterns>(mem_protocol::mem::PatternsParams { strategy })
        .await?;
    if json {
        return print_json(&list);
    }
    if let Some(e) = &list.file_error {
        eprintln!("learned_strategies.json is not in force (a broken edit, ignored): {e}");
    }
    if list.learned.is_empty() {
        println!("no learned strategy yet (a market state seen 5 times with 70% wins becomes one)");
    } else {
        let mut t = table(&[
            "LEARNED",
            "FROM",
            "MARKET STATE",
            "EVIDENCE",
            "SINCE",
            "STATUS",
        ]);
        for l in &list.learned {
            t.add_row(vec![
                Cell::new(&l.name),
                Cell::new(&l.parent),
                Cell::new(&l.signature),
                Cell::new(format!(
                    "{}/{} ({:.0}%)",
                    l.evidence.wins,
                    l.evidence.occurrences,
                    l.evidence.win_rate * 100.0
                )),
                Cell::new(format!("{}/{} won", l.wins, l.trades)),
                Cell::new(match l.status {
                    mem_protocol::mem::LearnedStatus::Active => "active".to_string(),
                    mem_protocol::mem::LearnedStatus::Deprecated => "deprecated".to_string(),
                }),
            ]);
        }
        crate::cli::print_table(&t);
    }
    if !list.candidates.is_empty() {
        let mut t = table(&["STRATEGY", "MARKET STATE", "SEEN", "WON", "WIN RATE"]);
        for c in list.candidates.iter().take(20) {
            t.add_row(vec![
                Cell::new(&c.strategy),
                Cell::new(&c.signature),
                Cell::new(c.occurrences),
                Cell::new(c.wins),
                Cell::new(format!("{:.0}%", c.win_rate * 100.0)),
            ]);
        }
        crate::cli::print_table(&t);
    }
    Ok(())
}

/// `memctl http token [--view | --webhook]`: the token (or the webhook's secret) alone on
/// stdout; where the API listens (or that it is off) on stderr.
pub async fn http_token(
    client: &Client,
    view: bool,
    webhook: bool,
    name: Option<String>,
    json: bool,
) -> anyhow::Result<()> {
    let token = client
        .call::<method::HttpToken>(mem_protocol::http::HttpTokenParams {
            view,
            webhook,
            name,
        })
        .await?;
    if json {
        return print_json(&token);
    }
    println!("{}", token.token);
    let what = if webhook {
        "TradingView webhook secret".to_string()
    } else {
        format!("{} token", token.access)
    };
    match &token.url {
        Some(url) => eprintln!("{what} for {url}"),
        None if webhook => eprintln!(
            "{what}; the webhook is off (it needs [http] listen = \"127.0.0.1:5002\" and [http.tradingview] enabled, the default)"
        ),
        None => eprintln!(
            "{what}; the HTTP API is off (set [http] listen = \"127.0.0.1:5002\" in memd's config)"
        ),
    }
    Ok(())
}

/// `memctl http token list`: names and scopes, never a value.
pub async fn http_tokens_list(client: &Client, json: bool) -> anyhow::Result<()> {
    let list = client
        .call::<method::HttpTokensList>(mem_protocol::methods::NoParams {})
        .await?;
    print_tokens(&list, json)
}

fn print_tokens(list: &mem_protocol::http::TokenList, json: bool) -> anyhow::Result<()> {
    if json {
        return print_json(list);
    }
    let mut t = table(&["NAME", "SCOPE", "ISSUED", "NOTE"]);
    for token in &list.tokens {
        t.add_row(vec![
            token.name.clone(),
            token.scope.clone(),
            token
                .issued_at
                .map_or(String::new(), |at| at.format("%Y-%m-%d %H:%M").to_string()),
            token
                .previous_accepted_until
                .map_or(String::new(), |until| {
                    format!(
                        "the old secret accepted until {}",
                        until.format("%Y-%m-%d %H:%M:%S UTC")
                    )
                }),
        ]);
    }
    print_table(&t);
    Ok(())
}

/// `memctl http token rotate NAME`: the new value alone on stdout.
pub async fn http_tokens_rotate(
    client: &Client,
    name: String,
    grace_secs: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let token = client
        .call::<method::HttpTokensRotate>(mem_protocol::http::RotateTokenParams {
            name: name.clone(),
            grace_secs,
        })
        .await?;
    if json {
        return print_json(&token);
    }
    println!("{}", token.token);
    if token.access == "webhook" {
        eprintln!(
            "webhook rotated: the old secret is still accepted for its grace period (`memctl http token list` says until when)"
        );
    } else {
        eprintln!("{name} rotated: the old value is refused from now on");
    }
    Ok(())
}

/// `memctl http token revoke NAME`.
pub async fn http_tokens_revoke(client: &Client, name: String, json: bool) -> anyhow::Result<()> {
    let list = client
        .call::<method::HttpTokensRevoke>(mem_protocol::http::RevokeTokenParams {
            name: name.clone(),
        })
        .await?;
    if json {
        return print_json(&list);
    }
    println!("{name} revoked: refused from now on");
    Ok(())
}
