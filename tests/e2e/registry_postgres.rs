//! The registry in PostgreSQL, shared by two servers' daemons (issue 27): a real
//! PostgreSQL cluster of the test's own on a loopback port, two real memd pointed at it
//! by `[registry]`.

use crate::registry::{new_strategy, register};
use mem_e2e::Daemon;
use mem_e2e::postgres::{self, PASSWORD, Postgres};
use mem_e2e::trades::closed_trade;
use mem_protocol::events::RegistryChange;
use mem_protocol::methods::{ListStrategiesParams, method};
use mem_protocol::registry::{AuditParams, PerformanceParams, RecordTradesParams, RegisterParams};
use mem_protocol::{Client, ErrorCode, Event, Topic};
use std::time::{Duration, Instant};

/// A memd whose registry is `pg`'s database, named `server` there.
pub(crate) fn daemon_on(pg: &Postgres, server: &str) -> Daemon {
    let root = tempfile::tempdir().unwrap();
    let password_file = pg.password_file(root.path());
    let config = root.path().join("memd.toml");
    std::fs::write(
        &config,
        format!(
            "[registry]\nbackend = \"postgres\"\nurl = \"{}\"\npassword_file = \"{}\"\nserver = \"{server}\"\n",
            pg.url_without_password("registry"),
            password_file.display()
        ),
    )
    .unwrap();
    Daemon::with_config(root, &config)
}

async fn total(client: &Client) -> usize {
    client
        .call::<method::StrategiesList>(ListStrategiesParams::default())
        .await
        .unwrap()
        .total
}

async fn trades_of(client: &Client, id: mem_protocol::strategy::StrategyId) -> u64 {
    client
        .call::<method::Performance>(PerformanceParams {
            id,
            from: None,
            to: None,
        })
        .await
        .unwrap()
        .all
        .total_trades
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
    while trades_of(&ca, id).await != 3 || trades_of(&cb, id).await != 3 {
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
    assert_eq!(trades_of(&ca, id).await, 3);
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
        trades_of(&cb, id).await,
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
