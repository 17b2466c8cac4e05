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
use mem_protocol::registry::{AuditParams, RecordTradesParams, RegisterParams};
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
