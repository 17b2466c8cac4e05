//! memctl commands for deployments.

use crate::cli::{print_json, table};
use anyhow::Context;
use comfy_table::{Cell, CellAlignment};
use mem_protocol::deploy::*;
use mem_protocol::methods::method;
use mem_protocol::strategy::StrategyId;
use mem_protocol::{Client, Event, Topic};
use memctl::text;
use std::time::Duration;

/// Deploying waits for the bot's API (Freqtrade takes a few seconds to start).
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(120);
/// A drain waits for open trades to close.
const STOP_TIMEOUT: Duration = Duration::from_secs(3600);

fn id(text: &str) -> anyhow::Result<StrategyId> {
    text.parse().map_err(anyhow::Error::msg)
}

/// A strategy id, or the name of an attached bot (`memctl attach NAME`): its strategy.
async fn strategy_or_attached(client: &Client, text: &str) -> anyhow::Result<StrategyId> {
    if let Ok(id) = text.parse() {
        return Ok(id);
    }
    let list = client
        .call::<method::Deployed>(DeployedParams { all: false })
        .await?;
    list.deployments
        .iter()
        .find(|d| d.attached_name() == Some(text))
        .map(|d| d.strategy_id)
        .ok_or_else(|| {
            anyhow::anyhow!("{text:?} is neither a strategy id nor the name of an attached bot")
        })
}

/// The commands of bots memd did not start (flattened into memctl's own).
#[derive(Debug, clap::Subcommand)]
pub enum AttachCommand {
    /// Watch a Freqtrade bot memd did not start: its status, profit and closed trades are
    /// synced like a deployed bot's; memd never stops or restarts it.
    Attach(AttachArgs),
    /// Stop watching an attached bot (it runs on).
    Detach {
        /// The name it was attached as (or its deployment id).
        name: String,
    },
}

/// `memctl attach` or `memctl detach`.
pub async fn attachment(client: &Client, command: AttachCommand, json: bool) -> anyhow::Result<()> {
    match command {
        AttachCommand::Attach(a) => attach(client, a, json).await,
        AttachCommand::Detach { name } => detach(client, &name, json).await,
    }
}

/// `memctl attach NAME --url URL --user U --password-file F`.
#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    /// A name for the bot (letters, digits, `-`, `_`, `.`): what `memctl detach` takes.
    name: String,
    /// Its REST API (`http://127.0.0.1:8080`): its api_server's address and port.
    #[arg(long)]
    url: String,
    /// Its api_server.username.
    #[arg(long)]
    user: String,
    /// A file holding its api_server.password (0600); the daemon reads it, the password
    /// never crosses the socket.
    #[arg(long, value_name = "FILE")]
    password_file: std::path::PathBuf,
    /// The registry strategy its trades are recorded under (default: the one that runs
    /// the bot's Freqtrade strategy class).
    #[arg(long, value_name = "ID")]
    strategy: Option<String>,
    /// Let memd send it stopentry (the risk guard, Telegram) and forward signals to it;
    /// never a stop or restart.
    #[arg(long)]
    allow_control: bool,
}

/// `memctl attach`: the password file's path made absolute here (the daemon's working
/// directory is not the caller's).
pub async fn attach(client: &Client, a: AttachArgs, json: bool) -> anyhow::Result<()> {
    let password_file = std::path::absolute(&a.password_file)
        .with_context(|| format!("--password-file {}", a.password_file.display()))?;
    let params = AttachParams {
        name: a.name,
        url: a.url,
        username: a.user,
        password_file: password_file.display().to_string(),
        strategy: a.strategy.as_deref().map(id).transpose()?,
        allow_control: a.allow_control,
    };
    let d = client.call::<method::Attach>(params).await?;
    if json {
        return print_json(&d);
    }
    let attached = d.attached.as_ref().expect("an attached deployment");
    println!(
        "attached {} at {} as {}: {}",
        attached.name,
        attached.url,
        d.strategy_name,
        describe(&d)
    );
    println!(
        "memd reads its status and trades{}; `memctl detach {}` stops watching it",
        if attached.allow_control {
            " and may send it stopentry"
        } else {
            ""
        },
        attached.name
    );
    Ok(())
}

/// `memctl detach NAME`.
pub async fn detach(client: &Client, name: &str, json: bool) -> anyhow::Result<()> {
    let d = client
        .call::<method::Detach>(DetachParams {
            name: name.to_string(),
        })
        .await?;
    if json {
        return print_json(&d);
    }
    println!(
        "detached {name} ({}, deployment {}): no longer watched; the bot runs on",
        d.strategy_name, d.deployment_id
    );
    Ok(())
}

fn mode(drain: bool) -> StopMode {
    if drain {
        StopMode::Drain
    } else {
        StopMode::Now
    }
}

/// `NAME (ID): running, pid 4242, port 8083, dry-run` (a pid and a port when it has them).
fn describe(d: &DeployedStrategy) -> String {
    let mut text = format!(
        "{} ({}): {}",
        d.strategy_name,
        d.strategy_id,
        text::deployment_status(d.status)
    );
    if let Some(a) = &d.attached {
        text.push_str(&format!(", attached as {} ({})", a.name, a.url));
    }
    if let Some(pid) = d.process_id {
        text.push_str(&format!(", pid {pid}"));
    }
    if let Some(port) = d.port {
        text.push_str(&format!(", port {port}"));
    }
    text.push_str(if d.dry_run { ", dry-run" } else { ", LIVE" });
    text
}

/// What `memctl stop` says: `stopped NAME (ID)`, and the status only when it is not
/// "stopped" (a bot that failed while stopping).
fn stopped(d: &DeployedStrategy) -> String {
    let mut text = format!("stopped {} ({})", d.strategy_name, d.strategy_id);
    if d.status != DeploymentStatus::Stopped {
        text.push_str(&format!(": {}", text::deployment_status(d.status)));
    }
    text
}

pub async fn deploy(
    client: &Client,
    strategy: &str,
    live: bool,
    port: Option<u16>,
    native: Option<NativeOptions>,
    json: bool,
) -> anyhow::Result<()> {
    let params = DeployParams {
        id: id(strategy)?,
        dry_run: !live,
        port,
        parameters: None,
        native,
    };
    let d = client
        .call_with_timeout::<method::Deploy>(params, DEPLOY_TIMEOUT)
        .await?;
    if json {
        return print_json(&d);
    }
    println!("deployed {}", describe(&d));
    if let Some(config) = &d.config_file {
        match d.deployment_type {
            DeploymentType::Native => println!("candles {config}"),
            DeploymentType::Freqtrade => println!("config {config}"),
        }
    }
    Ok(())
}

pub async fn stop(
    client: &Client,
    strategy: &str,
    drain: bool,
    deadline: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let params = StopParams {
        id: strategy_or_attached(client, strategy).await?,
        mode: mode(drain),
        deadline_secs: deadline,
    };
    let d = client
        .call_with_timeout::<method::Stop>(params, STOP_TIMEOUT)
        .await?;
    if json {
        return print_json(&d);
    }
    println!("{}", stopped(&d));
    Ok(())
}

pub async fn restart(client: &Client, strategy: &str, json: bool) -> anyhow::Result<()> {
    let params = StopParams {
        id: strategy_or_attached(client, strategy).await?,
        mode: StopMode::Now,
        deadline_secs: None,
    };
    let d = client
        .call_with_timeout::<method::Restart>(params, DEPLOY_TIMEOUT)
        .await?;
    if json {
        return print_json(&d);
    }
    println!("restarted {}", describe(&d));
    Ok(())
}

pub async fn stop_all(
    client: &Client,
    drain: bool,
    deadline: Option<u64>,
    json: bool,
) -> anyhow::Result<()> {
    let list = client
        .call_with_timeout::<method::StopAll>(
            StopAllParams {
                mode: mode(drain),
                deadline_secs: deadline,
            },
            STOP_TIMEOUT,
        )
        .await?;
    if json {
        return print_json(&list);
    }
    println!("stopped {} deployments", list.deployments.len());
    for note in &list.notes {
        println!("{note}");
    }
    Ok(())
}

/// How long it has run since its process or runner last started (`-` when it does not
/// run): not the time since it was deployed, which counts the daemon's downtime too.
fn uptime(d: &DeployedStrategy) -> String {
    let Some(since) = d.up_since() else {
        return "-".into();
    };
    let secs = (chrono::Utc::now() - since).num_seconds().max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86400 => format!("{}h {}m", s / 3600, s / 60 % 60),
        s => format!("{}d {}h", s / 86400, s / 3600 % 24),
    }
}

/// `memctl deployed`: what runs, and the failures nobody has acknowledged yet (`all`:
/// every deployment remembered).
pub async fn deployed(client: &Client, all: bool, json: bool) -> anyhow::Result<()> {
    let mut list = client
        .call::<method::Deployed>(DeployedParams { all: true })
        .await?;
    list.deployments.retain(|d| all || d.shown_by_default());
    if json {
        return print_json(&list);
    }
    if list.deployments.is_empty() {
        println!("Nothing is deployed.");
        return Ok(());
    }
    let mut t = table(&[
        "STRATEGY", "STATUS", "MODE", "PID", "PORT", "UP", "CPU", "MEM", "OPEN", "CLOSED",
        "PROFIT", "WARN", "ERR",
    ]);
    for d in &list.deployments {
        let right = |s: String| Cell::new(s).set_alignment(CellAlignment::Right);
        t.add_row(vec![
            Cell::new(text::deployment_name(d)),
            Cell::new(text::deployment_status(d.status)),
            Cell::new(if d.dry_run { "dry-run" } else { "LIVE" }),
            right(live(d, d.process_id.map(|p| p.to_string()))),
            right(d.port.map_or("-".into(), |p| p.to_string())),
            right(uptime(d)),
            right(d.cpu_percent.map_or("-".into(), |c| format!("{c:.1}%"))),
            right(
                d.rss_bytes
                    .map_or("-".into(), |b| format!("{} MiB", b >> 20)),
            ),
            right(d.stats.open_trades.to_string()),
            right(d.stats.closed_trades.to_string()),
            right(format!(
                "{} {}",
                memctl::ui::view::amount(d.stats.profit_all, d.stats.stake_currency.as_deref()),
                d.stats.stake_currency.as_deref().unwrap_or("")
            )),
            right(d.warnings.to_string()),
            right(d.errors.to_string()),
        ]);
    }
    crate::cli::print_table(&t);
    let noted = |d: &&DeployedStrategy| d.last_error.is_some() && !d.needs_acknowledgement();
    for d in list.deployments.iter().filter(noted) {
        println!(
            "{}: {}",
            d.strategy_name,
            d.last_error.as_deref().unwrap_or("")
        );
    }
    print_unacknowledged(&list.deployments);
    Ok(())
}

/// A figure of a deployment's process, or "-" once it ended (its pid may be another's).
fn live(d: &DeployedStrategy, figure: Option<String>) -> String {
    figure
        .filter(|_| d.status.is_active())
        .unwrap_or_else(|| "-".into())
}

/// The failures nobody has acknowledged, each with the command that does.
fn print_unacknowledged(deployments: &[DeployedStrategy]) {
    let failed: Vec<&DeployedStrategy> = deployments
        .iter()
        .filter(|d| d.needs_acknowledgement())
        .collect();
    if failed.is_empty() {
        return;
    }
    println!();
    for d in &failed {
        println!(
            "{} failed (deployment {}, started {}): {}",
            d.strategy_name,
            d.deployment_id,
            d.started_at.format("%Y-%m-%d %H:%M UTC"),
            d.last_error.as_deref().unwrap_or("no error recorded")
        );
    }
    println!(
        "Listed until acknowledged: memctl ack {}",
        failed
            .iter()
            .map(|d| d.deployment_id.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// `memctl ack ID...`: each deployment id, or each failed deployment (not yet
/// acknowledged) of a strategy id, acknowledged.
pub async fn acknowledge(client: &Client, ids: &[String], json: bool) -> anyhow::Result<()> {
    let known = client
        .call::<method::Deployed>(DeployedParams { all: true })
        .await?
        .deployments;
    let mut targets: Vec<DeploymentId> = Vec::new();
    for text in ids {
        let uuid = text
            .parse::<DeploymentId>()
            .map_err(|_| anyhow::anyhow!("{text:?} is not a deployment or strategy id"))?
            .0;
        let of_strategy: Vec<DeploymentId> = known
            .iter()
            .filter(|d| d.strategy_id.0 == uuid && d.needs_acknowledgement())
            .map(|d| d.deployment_id)
            .collect();
        if known.iter().any(|d| d.deployment_id.0 == uuid) {
            targets.push(DeploymentId(uuid));
        } else if known.iter().any(|d| d.strategy_id.0 == uuid) {
            if of_strategy.is_empty() {
                anyhow::bail!("strategy {text} has no failed deployment to acknowledge");
            }
            targets.extend(of_strategy);
        } else {
            // The daemon says it knows no such deployment.
            targets.push(DeploymentId(uuid));
        }
    }
    let mut done = Vec::new();
    for deployment_id in targets {
        done.push(
            client
                .call::<method::Acknowledge>(AcknowledgeParams { deployment_id })
                .await?,
        );
    }
    if json {
        return print_json(&done);
    }
    for d in &done {
        println!(
            "acknowledged {} (deployment {}, {}){}",
            d.strategy_name,
            d.deployment_id,
            format!("{:?}", d.status).to_lowercase(),
            d.last_error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

pub async fn logs(
    client: &Client,
    strategy: &str,
    lines: usize,
    follow: bool,
) -> anyhow::Result<()> {
    let strategy = strategy_or_attached(client, strategy).await?;
    // Subscribe first, so no line falls between the tail and the stream.
    let events = if follow {
        Some(client.subscribe(vec![Topic::Logs, Topic::Daemon]).await?.1)
    } else {
        None
    };
    let tail = client
        .call::<method::Logs>(LogsParams {
            id: strategy,
            lines: Some(lines),
        })
        .await?;
    for line in &tail.lines {
        println!("{line}");
    }
    let Some(mut events) = events else {
        return Ok(());
    };
    while let Some(message) = events.next().await {
        match message.event {
            Event::BotLog(log) if log.strategy_id == strategy => {
                for line in log.lines {
                    println!("{line}");
                }
            }
            Event::DaemonStopping(s) => {
                anyhow::bail!("the daemon stopped ({})", s.reason);
            }
            _ => {}
        }
    }
    Err(anyhow::anyhow!("the daemon closed the connection")).context("following the log")
}
