//! The registry in PostgreSQL, shared by two servers' daemons (issue 27): a real
//! PostgreSQL cluster of the test's own on a loopback port, two real memd pointed at it
//! by `[registry]`.

use crate::registry::{new_strategy, register};
use mem_e2e::Daemon;
use mem_e2e::deployments::total_trades;
use mem_e2e::postgres::{self, PASSWORD, Postgres};
use mem_e2e::trades::closed_trade;
use mem_protocol::events::RegistryChange;
use mem_protocol::methods::{ListStrategiesParams, method};
use mem_protocol::registry::{AuditParams, ListTradesParams, RecordTradesParams, RegisterParams};
use mem_protocol::strategy::StrategyId;
use mem_protocol::{Client, ErrorCode, Event, Topic};
use std::time::{Duration, Instant};

/// A memd whose registry is `pg`'s database, named `server` there.
pub(crate) fn daemon_on(pg: &Postgres, server: &str) -> Daemon {
    let root = tempfile::tempdir().unwrap();
    let config = pg.memd_config(root.path(), server);
    Daemon::with_config(root, &config)
}

async fn total(client: &Client) -> usize {
    client
        .call::<method::StrategiesList>(ListStrategiesParams::default())
        .await
        .unwrap()
        .total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_share_one_registry_in_postgresql() {
    let Some(mut pg) = postgres::registry_cluster() else {
        return;
    };
    let a = daemon_on(&pg, "server-a");
    let b = daemon_on(&pg, "server-b");
    let (ca, cb) = (a.client().await, b.client().await);
    // The built-in strategies, inserted once into the new database.
    assert_eq!(total(&ca).await, 11);
    assert_eq!(total(&cb).await, 11);

    // A strategy registered on a: b's subscribers hear of it within a second.
    let (_, mut b_events) = cb.subscribe(vec![Topic::Registry]).await.unwrap();
    let asked = Instant::now();
    let id = register(&ca, "shared_breakout").await;
    let heard = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let m = b_events.next().await.expect("b's events");
            if let Event::RegistryChanged(c) = m.event
                && c.strategy_id == id
            {
                return (c.change, asked.elapsed());
            }
        }
    })
    .await
    .expect("b announces a's new strategy");
    assert_eq!(heard.0, RegistryChange::Added);
    assert!(heard.1 < Duration::from_secs(1), "{:?}", heard.1);
    assert_eq!(total(&cb).await, 12);
    // b's audit says which server registered it.
    let audit = cb
        .call::<method::Audit>(AuditParams {
            id: Some(id),
            limit: None,
        })
        .await
        .unwrap();
    assert!(
        audit
            .entries
            .iter()
            .any(|e| e.action == "register" && e.server.as_deref() == Some("server-a")),
        "{audit:?}"
    );

    // Trades recorded on both: each server's metrics count them all, a trade both record
    // once.
    let record = async |client: &Client, ids: &[&str]| {
        client
            .call::<method::TradesRecord>(RecordTradesParams {
                id,
                trades: ids.iter().map(|t| closed_trade(*t).build()).collect(),
            })
            .await
            .unwrap()
            .recorded
    };
    assert_eq!(record(&ca, &["t1", "t2"]).await, 2);
    assert_eq!(record(&cb, &["t2", "t3"]).await, 1, "t2 is recorded once");
    let started = Instant::now();
    while total_trades(&ca, id).await != 3 || total_trades(&cb, id).await != 3 {
        assert!(started.elapsed() < Duration::from_secs(5), "both count 3");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // PostgreSQL stops: status says so, reads are answered from memory, a change is
    // refused naming the database; back, changes go through and reach the other server.
    pg.stop();
    let status = async |client: &Client| {
        client
            .call::<method::DaemonStatus>(Default::default())
            .await
            .unwrap()
            .registry_database
            .expect("a registry in a database")
    };
    let started = Instant::now();
    while status(&ca).await.reachable {
        assert!(started.elapsed() < Duration::from_secs(10), "a notices");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = ca
        .call::<method::StrategiesRegister>(RegisterParams {
            strategy: new_strategy("while_down"),
            status: None,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Unavailable), "{refused}");
    assert!(
        refused.to_string().contains("/registry cannot be reached"),
        "{refused}"
    );
    assert_eq!(total(&ca).await, 12, "answered from memory");
    assert_eq!(total_trades(&ca, id).await, 3);
    let said = a.memctl(&["status"]);
    let said = String::from_utf8_lossy(&said.stdout);
    assert!(said.contains("UNREACHABLE since"), "{said}");

    pg.start_server();
    let started = Instant::now();
    while !status(&ca).await.reachable || !status(&cb).await.reachable {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "both see it back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    register(&ca, "after_the_outage").await;
    let started = Instant::now();
    while total(&cb).await != 13 {
        assert!(started.elapsed() < Duration::from_secs(2), "b has it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        total_trades(&cb, id).await,
        3,
        "every acknowledged trade is there"
    );

    // The password is in no output, and --check-config names the database, not it.
    for daemon in [&a, &b] {
        assert!(!daemon.stderr().contains(PASSWORD), "{}", daemon.stderr());
    }
    let check = std::process::Command::new(mem_e2e::bin("memd"))
        .arg("--config")
        .arg(a.root.path().join("memd.toml"))
        .arg("--check-config")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        said.contains("PostgreSQL, as server server-a; password given"),
        "{said}"
    );
    assert!(!said.contains(PASSWORD), "{said}");
}

/// Everything a client can read of the registry, per strategy, as JSON: documents,
/// versions, parameter history, links and every trade.
async fn registry_as_seen(client: &Client) -> Vec<serde_json::Value> {
    let list = client
        .call_value("strategies.list", serde_json::json!({"limit": 1000}))
        .await
        .unwrap();
    let mut ids: Vec<String> = list["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut seen = Vec::new();
    for id in ids {
        let ask = async |method: &str, params: serde_json::Value| {
            client.call_value(method, params).await.unwrap()
        };
        let one = serde_json::json!({ "id": id });
        let mut trades = ask(
            "strategies.trades.list",
            serde_json::json!({"id": id, "limit": 100000}),
        )
        .await["trades"]
            .as_array()
            .unwrap()
            .clone();
        trades.sort_by_key(|t| t["tradeId"].as_str().unwrap().to_string());
        seen.push(serde_json::json!({
            "document": ask("strategies.get", one.clone()).await["metadata"],
            "versions": ask("strategies.versions.list", one.clone()).await,
            "parameters": ask("strategies.parameters.history", one.clone()).await,
            "related": ask("strategies.related", one.clone()).await,
            "trades": trades,
        }));
    }
    seen
}

/// `memctl registry migrate`: a registry on files (the built-in strategies and one with a
/// new version, a parameter change, a link and trades) copied into an empty database reads
/// the same through a memd started on it; copied from there back into files, the same
/// again. A database that holds strategies is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_files_to_postgres_and_back_keeps_every_document_and_trade() {
    let Some(pg) = postgres::registry_cluster() else {
        return;
    };
    let files = Daemon::start();
    let client = files.client().await;
    let id = register(&client, "to_migrate").await;
    let control = async |method: &str, params: serde_json::Value| {
        client.call_value(method, params).await.unwrap();
    };
    control(
        "strategies.versions.create",
        serde_json::json!({"id": id, "bump": "minor", "changelog": "wider lookback"}),
    )
    .await;
    control(
        "strategies.parameters.update",
        serde_json::json!({"id": id, "name": "lookback", "value": 30, "reason": "calmer market"}),
    )
    .await;
    control(
        "strategies.link",
        serde_json::json!({"from": id, "to": mem_e2e::seed::MACD_HUNTER, "relationship": "derived_from", "similarityScore": 0.4}),
    )
    .await;
    let trades: Vec<_> = (0..5)
        .map(|i| closed_trade(format!("m{i}")).build())
        .collect();
    client
        .call::<method::TradesRecord>(RecordTradesParams { id, trades })
        .await
        .unwrap();

    let password_file = pg.password_file(files.root.path());
    let url = pg.url_without_password("registry");
    let migrate_to_pg = || {
        files.memctl(&[
            "registry",
            "migrate",
            "--to",
            &url,
            "--password-file",
            password_file.to_str().unwrap(),
            "--server-name",
            "migrated",
            "--json",
        ])
    };
    let out = migrate_to_pg();
    assert!(out.status.success(), "{}", mem_e2e::describe(&out));
    let report: mem_protocol::registry::MigrateReport =
        serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report.strategies, 12, "{report:?}");
    assert_eq!(report.trades, 5, "{report:?}");
    assert!(
        report.versions >= 1 && report.parameter_changes >= 1,
        "{report:?}"
    );
    assert!(
        report.relationships >= 1 && report.audit_entries >= 4,
        "{report:?}"
    );
    assert_eq!(report.checksum.len(), 64);
    // What was copied: the registry as it stands (the migration first wrote the live
    // summaries of the trades just recorded into their documents, as a backup does).
    let before = registry_as_seen(&client).await;

    let on_pg = daemon_on(&pg, "on-pg");
    same(&registry_as_seen(&on_pg.client().await).await, &before);
    // Into a database that holds strategies: refused, nothing written.
    let again = migrate_to_pg();
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already holds strategies"),
        "{}",
        mem_e2e::describe(&again)
    );

    // Back into files, from the daemon on the database.
    let back_root = tempfile::tempdir().unwrap();
    let back_dir = back_root.path().join("registry");
    let out = on_pg.memctl(&[
        "registry",
        "migrate",
        "--to",
        "files",
        back_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", mem_e2e::describe(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("copied 12 strategies") && said.contains("5 trades"),
        "{said}"
    );
    let config = back_root.path().join("memd.toml");
    std::fs::write(
        &config,
        format!("registry_dir = \"{}\"\n", back_dir.display()),
    )
    .unwrap();
    let on_files = Daemon::with_config(back_root, &config);
    same(&registry_as_seen(&on_files.client().await).await, &before);
}

/// Fails naming the first place where `got` and `want` differ (a registry is long).
fn same(got: &[serde_json::Value], want: &[serde_json::Value]) {
    fn first_difference(
        a: &serde_json::Value,
        b: &serde_json::Value,
        at: String,
    ) -> Option<String> {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                keys.into_iter().find_map(|k| {
                    first_difference(
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                        format!("{at}.{k}"),
                    )
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| first_difference(p, q, format!("{at}[{i}]"))),
            _ if a == b => None,
            _ => Some(format!("{at}: {a} instead of {b}")),
        }
    }
    let got = serde_json::Value::Array(got.to_vec());
    let want = serde_json::Value::Array(want.to_vec());
    if let Some(difference) = first_difference(&got, &want, String::new()) {
        panic!("the registries differ at {difference}");
    }
}

/// `memctl backup` of a daemon whose registry is in PostgreSQL holds the registry (as a
/// registry on files, compared with the database's when it was exported): restored, a
/// memd on the restored data directory shows everything a client reads the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_daemon_on_postgresql_holds_its_registry() {
    let Some(pg) = postgres::registry_cluster() else {
        return;
    };
    let on_pg = daemon_on(&pg, "backed-up");
    let client = on_pg.client().await;
    let id = register(&client, "in_the_backup").await;
    let trades: Vec<_> = (0..3)
        .map(|i| closed_trade(format!("b{i}")).build())
        .collect();
    client
        .call::<method::TradesRecord>(RecordTradesParams { id, trades })
        .await
        .unwrap();

    let work = tempfile::tempdir().unwrap();
    let backup = work.path().join("backup");
    let out = on_pg.memctl(&["backup", backup.to_str().unwrap()]);
    assert!(out.status.success(), "{}", mem_e2e::describe(&out));
    // What was backed up: the registry as it stands once the backup wrote the live
    // summaries of the trades just recorded into their documents.
    let before = registry_as_seen(&client).await;
    let restored_root = tempfile::tempdir().unwrap();
    let restored = restored_root.path().join("data");
    let out = on_pg.memctl(&[
        "restore",
        backup.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", mem_e2e::describe(&out));
    let on_files = Daemon::start_in(
        restored_root,
        work.path().join("restored.sock"),
        restored,
        |_| {},
    );
    same(&registry_as_seen(&on_files.client().await).await, &before);
}

/// Trades a batch of the load holds (unique ids: none is ever a duplicate).
const BATCH: usize = 50;

/// One batch the load sent, and how it ended.
struct Batch {
    ids: Vec<String>,
    sent: Instant,
    answered: Instant,
    outcome: Result<usize, mem_protocol::ClientError>,
}

/// Clients recording batches of new trades to one strategy in a loop, as fast as memd
/// answers, until told to stop (or their connection is gone).
struct TradeLoad {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    batches: std::sync::Arc<std::sync::Mutex<Vec<Batch>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl TradeLoad {
    async fn start(daemon: &Daemon, id: StrategyId, clients: usize, tag: &str) -> TradeLoad {
        use std::sync::atomic::Ordering;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let batches = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for c in 0..clients {
            let client = daemon.client().await;
            let (stop, batches, tag) = (stop.clone(), batches.clone(), tag.to_string());
            tasks.push(tokio::spawn(async move {
                for n in 0.. {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let trades: Vec<_> = (0..BATCH)
                        .map(|i| closed_trade(format!("{tag}-c{c}-b{n}-t{i}")).build())
                        .collect();
                    let ids = trades.iter().map(|t| t.trade_id.clone()).collect();
                    let sent = Instant::now();
                    let outcome = client
                        .call::<method::TradesRecord>(RecordTradesParams { id, trades })
                        .await
                        .map(|r| r.recorded);
                    // No answer from memd at all (its connection is gone): this client
                    // can send no more.
                    let gone = matches!(&outcome, Err(e) if e.code().is_none());
                    batches.lock().unwrap().push(Batch {
                        ids,
                        sent,
                        answered: Instant::now(),
                        outcome,
                    });
                    if gone {
                        return;
                    }
                }
            }));
        }
        TradeLoad {
            stop,
            batches,
            tasks,
        }
    }

    /// How many batches ended as `which` says.
    fn count(&self, which: impl Fn(&Batch) -> bool) -> usize {
        self.batches
            .lock()
            .unwrap()
            .iter()
            .filter(|b| which(b))
            .count()
    }

    /// Waits (at most `within`) until `count(which)` reaches `n`.
    async fn wait_for(
        &self,
        what: &str,
        n: usize,
        within: Duration,
        which: impl Fn(&Batch) -> bool,
    ) {
        let started = Instant::now();
        while self.count(&which) < n {
            assert!(
                started.elapsed() < within,
                "timed out waiting for {n} batches {what}: {} so far",
                self.count(&which)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the clients (each after its batch in flight) and answers every batch sent.
    async fn finish(self) -> Vec<Batch> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for task in self.tasks {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("a load client ends within a minute")
                .expect("a load client does not panic");
        }
        std::mem::take(&mut *self.batches.lock().unwrap())
    }
}

/// The ids of the strategy's trades in the database (each once: checked).
fn trade_ids_in_database(pg: &Postgres, id: StrategyId) -> std::collections::HashSet<String> {
    let out = pg.psql(
        "registry",
        &format!("SELECT trade_id FROM strategy_performance WHERE strategy_id = '{id}'"),
    );
    let ids: Vec<String> = out.lines().map(str::to_string).collect();
    let set: std::collections::HashSet<String> = ids.iter().cloned().collect();
    assert_eq!(set.len(), ids.len(), "a trade id is in the database twice");
    set
}

/// The ids of the strategy's trades as memd lists them (all of them: checked).
async fn trade_ids_listed(client: &Client, id: StrategyId) -> std::collections::HashSet<String> {
    let list = client
        .call::<method::TradesList>(ListTradesParams {
            id,
            from: None,
            to: None,
            limit: Some(1_000_000),
            offset: None,
        })
        .await
        .unwrap();
    assert_eq!(list.trades.len(), list.total, "one page holds them all");
    let set: std::collections::HashSet<String> =
        list.trades.into_iter().map(|t| t.trade_id).collect();
    assert_eq!(set.len(), list.total, "a trade listed twice");
    set
}

/// What every check of a load's batches against the database shares: every acknowledged
/// batch is there whole, nothing that was never sent is, and every batch is there whole
/// or not at all (one transaction). Answers the acknowledged trades' ids.
fn check_batches(
    batches: &[Batch],
    in_db: &std::collections::HashSet<String>,
) -> std::collections::HashSet<String> {
    let mut acked = std::collections::HashSet::new();
    let mut sent = std::collections::HashSet::new();
    for b in batches {
        sent.extend(b.ids.iter().cloned());
        let there = b.ids.iter().filter(|t| in_db.contains(*t)).count();
        match &b.outcome {
            Ok(recorded) => {
                assert_eq!(*recorded, BATCH, "new ids are all recorded: {}", b.ids[0]);
                assert_eq!(
                    there,
                    BATCH,
                    "batch {} was acknowledged but {} of its trades are not in the database",
                    b.ids[0],
                    BATCH - there
                );
                acked.extend(b.ids.iter().cloned());
            }
            Err(e) => assert!(
                there == 0 || there == BATCH,
                "batch {} (refused: {e}) is in the database in part: {there} of {BATCH}",
                b.ids[0]
            ),
        }
    }
    let unsent: Vec<_> = in_db.difference(&sent).take(3).collect();
    assert!(
        unsent.is_empty(),
        "trades never sent are in the database: {unsent:?}"
    );
    acked
}

async fn registry_status(client: &Client) -> mem_protocol::methods::RegistryDatabase {
    client
        .call::<method::DaemonStatus>(Default::default())
        .await
        .unwrap()
        .registry_database
        .expect("a registry in a database")
}

/// PostgreSQL stops while three clients record batches of trades: what memd acknowledged
/// is in the database; what it refused was refused as `unavailable`, naming the database
/// (and, sent and answered while the server was down, is not there); a batch is never
/// there in part; once the server is back memd says so and records again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_stopped_during_a_load_of_trades_loses_no_acknowledged_trade() {
    let Some(mut pg) = postgres::registry_cluster() else {
        return;
    };
    let daemon = daemon_on(&pg, "server-a");
    let client = daemon.client().await;
    let id = register(&client, "under_load").await;
    let load = TradeLoad::start(&daemon, id, 3, "pgstop").await;
    load.wait_for("acknowledged", 30, Duration::from_secs(30), |b| {
        b.outcome.is_ok()
    })
    .await;

    let stopping = Instant::now();
    tokio::task::block_in_place(|| pg.stop());
    let down_from = Instant::now();
    let acked_before_the_stop = load.count(|b| b.outcome.is_ok());
    // memd notices; the clients keep sending, and are refused, for a while.
    let started = Instant::now();
    while registry_status(&client).await.reachable {
        assert!(started.elapsed() < Duration::from_secs(10), "memd notices");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    load.wait_for("refused while down", 9, Duration::from_secs(30), |b| {
        b.outcome.is_err() && b.sent >= down_from
    })
    .await;
    let down_to = Instant::now();
    tokio::task::block_in_place(|| pg.start_server());

    let started = Instant::now();
    while !registry_status(&client).await.reachable {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "memd sees it back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let back = Instant::now();
    load.wait_for(
        "acknowledged after the restart",
        9,
        Duration::from_secs(30),
        |b| b.outcome.is_ok() && b.sent >= back,
    )
    .await;
    let batches = load.finish().await;

    // Every refusal is `unavailable` and names the database; none while it was up.
    for b in &batches {
        if let Err(e) = &b.outcome {
            assert_eq!(
                e.code(),
                Some(ErrorCode::Unavailable),
                "batch {}: {e}",
                b.ids[0]
            );
            assert!(
                e.to_string().contains("/registry cannot be reached"),
                "batch {}: {e}",
                b.ids[0]
            );
            assert!(
                b.answered >= stopping,
                "batch {} refused before PostgreSQL stopped: {e}",
                b.ids[0]
            );
        }
    }
    let in_db = trade_ids_in_database(&pg, id);
    let acked = check_batches(&batches, &in_db);
    // Sent and answered while the server was down: refused, and not there.
    for b in batches
        .iter()
        .filter(|b| b.sent >= down_from && b.answered <= down_to)
    {
        assert!(
            b.outcome.is_err(),
            "batch {} was acknowledged while PostgreSQL was down",
            b.ids[0]
        );
        assert!(
            !b.ids.iter().any(|t| in_db.contains(t)),
            "batch {} was refused while PostgreSQL was down, yet it is in the database",
            b.ids[0]
        );
    }
    assert!(acked_before_the_stop >= 30, "{acked_before_the_stop}");

    // A new record goes through, and memd lists what the database holds.
    let recorded = client
        .call::<method::TradesRecord>(RecordTradesParams {
            id,
            trades: vec![closed_trade("pgstop-after").build()],
        })
        .await
        .unwrap();
    assert_eq!(recorded.recorded, 1);
    let mut in_db = trade_ids_in_database(&pg, id);
    assert!(in_db.remove("pgstop-after"));
    assert!(acked.is_subset(&in_db));
    let mut listed = trade_ids_listed(&client, id).await;
    assert!(listed.remove("pgstop-after"));
    let missing: Vec<_> = in_db.difference(&listed).take(3).collect();
    let extra: Vec<_> = listed.difference(&in_db).take(3).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "memd lists what the database holds: missing {missing:?}, extra {extra:?}"
    );
    assert_eq!(total_trades(&client, id).await as usize, in_db.len() + 1);
    eprintln!(
        "{} batches: {} acknowledged ({} before the stop), {} refused; {} trades in the database",
        batches.len(),
        batches.iter().filter(|b| b.outcome.is_ok()).count(),
        acked_before_the_stop,
        batches.iter().filter(|b| b.outcome.is_err()).count(),
        in_db.len() + 1
    );
}

/// memd is killed (SIGKILL) while three clients record batches of trades into PostgreSQL,
/// four times, after a different number of acknowledged batches: each time a new memd on
/// the same database, as the same server, lists every acknowledged trade (what the
/// database holds), the database holds nothing that was never sent and no batch in part,
/// and the new memd records (an acknowledged trade sent again is a duplicate).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_writes_loses_no_acknowledged_trade_in_postgresql() {
    let Some(pg) = postgres::registry_cluster() else {
        return;
    };
    let mut daemon = daemon_on(&pg, "server-a");
    let id = register(&daemon.client().await, "killed_under_load").await;
    let mut batches = Vec::new();
    let mut extra_trades = 0;
    for (round, acked_before_kill) in [20, 3, 11, 7].into_iter().enumerate() {
        let load = TradeLoad::start(&daemon, id, 3, &format!("kill{round}")).await;
        load.wait_for(
            "acknowledged",
            acked_before_kill,
            Duration::from_secs(30),
            |b| b.outcome.is_ok(),
        )
        .await;
        let killed_at = Instant::now();
        tokio::task::block_in_place(|| daemon.stop_with(nix::sys::signal::Signal::SIGKILL));
        let sent = load.finish().await;
        for b in &sent {
            if let Err(e) = &b.outcome {
                assert!(
                    e.code().is_none() && b.answered >= killed_at,
                    "batch {} failed otherwise than by the kill: {e}",
                    b.ids[0]
                );
            }
        }
        eprintln!(
            "round {round}: {} batches sent, {} acknowledged",
            sent.len(),
            sent.iter().filter(|b| b.outcome.is_ok()).count()
        );
        batches.extend(sent);

        let mut in_db = trade_ids_in_database(&pg, id);
        for t in 0..extra_trades {
            assert!(in_db.remove(&format!("kill-after-{t}")));
        }
        let acked = check_batches(&batches, &in_db);

        daemon = daemon_on(&pg, "server-a");
        let client = daemon.client().await;
        let mut listed = trade_ids_listed(&client, id).await;
        for t in 0..extra_trades {
            assert!(listed.remove(&format!("kill-after-{t}")));
        }
        let missing: Vec<_> = in_db.difference(&listed).take(3).collect();
        let extra: Vec<_> = listed.difference(&in_db).take(3).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "the new memd lists what the database holds: missing {missing:?}, extra {extra:?}"
        );
        assert_eq!(
            total_trades(&client, id).await as usize,
            in_db.len() + extra_trades
        );
        // It records: one new, and an acknowledged one again (a duplicate).
        let acked_one = acked.iter().next().unwrap().clone();
        let recorded = client
            .call::<method::TradesRecord>(RecordTradesParams {
                id,
                trades: vec![
                    closed_trade(format!("kill-after-{extra_trades}")).build(),
                    closed_trade(acked_one.as_str()).build(),
                ],
            })
            .await
            .unwrap();
        extra_trades += 1;
        assert_eq!(recorded.recorded, 1);
        assert_eq!(recorded.duplicates, vec![acked_one]);
        assert_eq!(
            trade_ids_in_database(&pg, id).len(),
            in_db.len() + extra_trades
        );
    }
    let acked = batches.iter().filter(|b| b.outcome.is_ok()).count();
    assert!(acked >= 41, "{acked} batches acknowledged");
}

/// A memd on `pg`'s database as `server`, whose `freqtrade` is the fake bot (cheap
/// dry-run deployments).
fn daemon_with_fake_bot_on(pg: &Postgres, server: &str) -> Daemon {
    let root = tempfile::tempdir().unwrap();
    let password_file = pg.password_file(root.path());
    let registry = format!(
        "[registry]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\nserver = \"{server}\"\n",
        pg.url_without_password("registry"),
        password_file.display()
    );
    let config = mem_e2e::fake_freqtrade_config(
        root.path(),
        serde_json::json!({ "fake_bot": {} }),
        "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3\nunresponsive_limit_secs = 3\nidle_limit_secs = 2\nmax_restarts = 2",
        &registry,
    );
    Daemon::with_config(root, &config)
}

async fn summary(client: &Client, id: StrategyId) -> mem_protocol::strategy::StrategySummary {
    let detail = client
        .call::<method::StrategiesGet>(mem_protocol::methods::GetStrategyParams { id })
        .await
        .unwrap();
    (*detail.summary).clone()
}

/// Two servers' daemons on one database: a deployment is its daemon's own. The other
/// lists none, cannot stop or acknowledge it, deploys the same strategy as a deployment of
/// its own (stopped without touching the first), and a registry change it makes reaches
/// the first daemon without restarting or changing its deployment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_on_one_daemon_is_not_touched_by_the_other() {
    use mem_e2e::deployments::{active_deployments, dry_run_on_port, stop_now};
    use mem_e2e::seed::{AGGRESSIVE_RSI, sid};
    use mem_protocol::deploy::{AcknowledgeParams, DeployedParams, DeploymentStatus};
    let Some(pg) = postgres::registry_cluster() else {
        return;
    };
    let a = daemon_with_fake_bot_on(&pg, "server-a");
    let b = daemon_with_fake_bot_on(&pg, "server-b");
    let (ca, cb) = (a.client().await, b.client().await);
    let id = sid(AGGRESSIVE_RSI);

    let on_a = ca
        .call::<method::Deploy>(dry_run_on_port(id, mem_e2e::free_port()))
        .await
        .unwrap();
    assert_eq!(on_a.status, DeploymentStatus::Running);
    let a_pid = on_a.process_id.expect("a's bot runs");
    assert!(mem_e2e::alive(a_pid));
    let a_config = std::fs::read(on_a.config_file.as_deref().unwrap()).unwrap();
    assert!(summary(&ca, id).await.is_deployed);

    // b knows nothing of it.
    assert!(active_deployments(&cb).await.is_empty());
    let all_of_b = cb
        .call::<method::Deployed>(DeployedParams { all: true })
        .await
        .unwrap();
    assert!(all_of_b.deployments.is_empty(), "{all_of_b:?}");
    assert!(!summary(&cb, id).await.is_deployed);
    let err = cb.call::<method::Stop>(stop_now(id)).await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    assert!(err.to_string().contains("is not deployed"), "{err}");
    let err = cb
        .call::<method::Acknowledge>(AcknowledgeParams {
            deployment_id: on_a.deployment_id,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NotFound), "{err}");
    assert!(mem_e2e::alive(a_pid));

    // b deploys the same strategy: a deployment of its own, a's untouched.
    let on_b = cb
        .call::<method::Deploy>(dry_run_on_port(id, mem_e2e::free_port()))
        .await
        .unwrap();
    assert_eq!(on_b.status, DeploymentStatus::Running);
    assert_ne!(on_b.deployment_id, on_a.deployment_id);
    let b_pid = on_b.process_id.expect("b's bot runs");
    assert_ne!(b_pid, a_pid);
    let listed_on_a = active_deployments(&ca).await;
    assert_eq!(listed_on_a.len(), 1, "{listed_on_a:?}");
    assert_eq!(listed_on_a[0].deployment_id, on_a.deployment_id);
    let listed_on_b = active_deployments(&cb).await;
    assert_eq!(listed_on_b.len(), 1, "{listed_on_b:?}");
    assert_eq!(listed_on_b[0].deployment_id, on_b.deployment_id);

    // b stops its own: a's runs on.
    let stopped = cb.call::<method::Stop>(stop_now(id)).await.unwrap();
    assert_eq!(stopped.deployment_id, on_b.deployment_id);
    assert_eq!(stopped.status, DeploymentStatus::Stopped);
    mem_e2e::wait_for("b's bot to be gone", Duration::from_secs(5), async || {
        !mem_e2e::alive(b_pid)
    })
    .await;
    assert!(mem_e2e::alive(a_pid), "a's bot runs on");
    let still = active_deployments(&ca).await;
    assert_eq!(still.len(), 1, "{still:?}");
    assert_eq!(still[0].deployment_id, on_a.deployment_id);
    assert_eq!(still[0].status, DeploymentStatus::Running);
    assert!(summary(&ca, id).await.is_deployed);

    // A registry change made through b reaches a; a's deployment is the same one.
    cb.call::<method::StrategiesTags>(mem_protocol::registry::TagsParams {
        id,
        add: vec!["tagged-on-b".into()],
        remove: vec![],
    })
    .await
    .unwrap();
    mem_e2e::wait_for("a to have b's tag", Duration::from_secs(5), async || {
        summary(&ca, id)
            .await
            .tags
            .iter()
            .any(|t| t == "tagged-on-b")
    })
    .await;
    let after = active_deployments(&ca).await;
    assert_eq!(after.len(), 1, "{after:?}");
    let after = &after[0];
    assert_eq!(after.deployment_id, on_a.deployment_id);
    assert_eq!(after.status, DeploymentStatus::Running);
    assert_eq!(after.process_id, Some(a_pid), "not restarted");
    assert_eq!(after.restarts, 0, "not restarted");
    assert_eq!(after.running_since, on_a.running_since, "not restarted");
    assert!(mem_e2e::alive(a_pid));
    assert_eq!(
        std::fs::read(after.config_file.as_deref().unwrap()).unwrap(),
        a_config,
        "its config is unchanged"
    );
    let stopped = ca.call::<method::Stop>(stop_now(id)).await.unwrap();
    assert_eq!(stopped.deployment_id, on_a.deployment_id);
}

/// Trades recorded through one daemon right after the database came back (while the
/// other may not listen again yet, and so may miss their notification) reach the other's
/// figures all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_recorded_right_after_the_database_is_back_reach_the_other_daemon() {
    let Some(mut pg) = postgres::registry_cluster() else {
        return;
    };
    let a = daemon_on(&pg, "server-a");
    let b = daemon_on(&pg, "server-b");
    let (ca, cb) = (a.client().await, b.client().await);
    let id = register(&ca, "after_the_outage_trades").await;
    ca.call::<method::TradesRecord>(RecordTradesParams {
        id,
        trades: vec![closed_trade("before").build()],
    })
    .await
    .unwrap();
    mem_e2e::wait_for("both count the trade", Duration::from_secs(5), async || {
        total_trades(&ca, id).await == 1 && total_trades(&cb, id).await == 1
    })
    .await;

    tokio::task::block_in_place(|| pg.stop());
    mem_e2e::wait_for("both notice", Duration::from_secs(10), async || {
        !registry_status(&ca).await.reachable && !registry_status(&cb).await.reachable
    })
    .await;
    tokio::task::block_in_place(|| pg.start_server());
    // At once, through b: refused until b reaches the database again, then recorded.
    let started = Instant::now();
    loop {
        match cb
            .call::<method::TradesRecord>(RecordTradesParams {
                id,
                trades: vec![closed_trade("right-after").build()],
            })
            .await
        {
            Ok(r) => {
                assert_eq!(r.recorded, 1);
                break;
            }
            Err(e) => {
                assert_eq!(e.code(), Some(ErrorCode::Unavailable), "{e}");
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "b records: {e}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    eprintln!("recorded through b {:?} after the start", started.elapsed());
    mem_e2e::wait_for("a counts b's trade", Duration::from_secs(10), async || {
        total_trades(&ca, id).await == 2
    })
    .await;
    assert_eq!(trade_ids_listed(&ca, id).await.len(), 2);
}

/// Two daemons record batches of trades to the same strategy at once (each hears of the
/// other's): every acknowledged trade is in the database, and once the load is over both
/// daemons list and count exactly what the database holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_recording_one_strategy_at_once_agree_with_the_database() {
    let Some(pg) = postgres::registry_cluster() else {
        return;
    };
    let a = daemon_on(&pg, "server-a");
    let b = daemon_on(&pg, "server-b");
    let (ca, cb) = (a.client().await, b.client().await);
    let id = register(&ca, "recorded_by_both").await;
    mem_e2e::wait_for(
        "b to know the strategy",
        Duration::from_secs(5),
        async || {
            cb.call::<method::StrategiesGet>(mem_protocol::methods::GetStrategyParams { id })
                .await
                .is_ok()
        },
    )
    .await;
    let on_a = TradeLoad::start(&a, id, 2, "on-a").await;
    let on_b = TradeLoad::start(&b, id, 2, "on-b").await;
    on_a.wait_for("acknowledged by a", 40, Duration::from_secs(60), |b| {
        b.outcome.is_ok()
    })
    .await;
    on_b.wait_for("acknowledged by b", 40, Duration::from_secs(60), |b| {
        b.outcome.is_ok()
    })
    .await;
    let mut batches = on_a.finish().await;
    batches.extend(on_b.finish().await);
    for b in &batches {
        assert!(
            b.outcome.is_ok(),
            "batch {}: {:?}",
            b.ids[0],
            b.outcome.as_ref().err()
        );
    }
    let in_db = trade_ids_in_database(&pg, id);
    let acked = check_batches(&batches, &in_db);
    assert_eq!(acked, in_db);
    for (name, client) in [("a", &ca), ("b", &cb)] {
        let started = Instant::now();
        loop {
            let listed = trade_ids_listed(client, id).await;
            let counted = total_trades(client, id).await as usize;
            if listed == in_db && counted == in_db.len() {
                break;
            }
            let missing: Vec<_> = in_db.difference(&listed).take(3).collect();
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{name} lists {} trades and counts {counted}, the database holds {}: missing {missing:?}",
                listed.len(),
                in_db.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
