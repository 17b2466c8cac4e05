//! The audit of actions (issue 28): what memctl does to a real memd (a deploy and a stop
//! of a bot, a job run, a view token, a deploy refused) is recorded with the caller, the
//! outcome and no secret, read back with `memctl audit` and its filters.

use mem_e2e::seed::AGGRESSIVE_RSI;
use mem_e2e::{Daemon, describe, free_port};
use mem_protocol::audit::{ActionLog, ActionOutcome};
use sha2::Digest;

fn audit(daemon: &Daemon, args: &[&str]) -> ActionLog {
    let mut all = vec!["audit", "--json"];
    all.extend_from_slice(args);
    let out = daemon.memctl(&all);
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn ok(out: std::process::Output) -> std::process::Output {
    assert!(out.status.success(), "{}", describe(&out));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memctls_actions_are_audited_with_caller_outcome_and_no_secret() {
    let daemon = Daemon::with_fake_freqtrade(serde_json::json!({}), "");
    let port = free_port().to_string();
    ok(daemon.memctl(&["deploy", AGGRESSIVE_RSI, "--port", &port]));
    ok(daemon.memctl(&["stop", AGGRESSIVE_RSI]));
    ok(daemon.memctl(&["jobs", "run", "learning"]));
    let token = ok(daemon.memctl(&["http", "token", "--view"]));
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    let refused = daemon.memctl(&["deploy", "00000000-0000-4000-8000-000000000000"]);
    assert!(!refused.status.success());

    let mut log = audit(&daemon, &[]);
    // memd's own start first: its version and its config file's SHA-256 (memd reads its
    // config only at start: each start is where a changed config takes effect).
    let start = log.entries.remove(0);
    assert_eq!(start.action, "daemon.start", "{start:?}");
    assert_eq!(start.client.as_deref(), Some("memd"), "{start:?}");
    assert_eq!(start.params["version"], env!("CARGO_PKG_VERSION"));
    let config = start.params["configFile"]
        .as_str()
        .expect("the config file");
    let sha: String = sha2::Sha256::digest(std::fs::read(config).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(start.params["configSha256"], sha, "{start:?}");
    let actions: Vec<(&str, ActionOutcome)> = log
        .entries
        .iter()
        .map(|e| (e.action.as_str(), e.outcome))
        .collect();
    assert_eq!(
        actions,
        vec![
            ("strategies.deploy", ActionOutcome::Ok),
            ("strategies.stop", ActionOutcome::Ok),
            ("jobs.run", ActionOutcome::Ok),
            ("http.token", ActionOutcome::Ok),
            ("strategies.deploy", ActionOutcome::Failed),
        ],
        "{log:#?}"
    );
    let me = nix::unistd::getuid().as_raw();
    for entry in &log.entries {
        assert_eq!(entry.uid, Some(me), "{entry:?}");
        assert!(
            entry
                .client
                .as_deref()
                .is_some_and(|c| c.starts_with("memctl ")),
            "{entry:?}"
        );
    }
    let deploy = &log.entries[0];
    assert_eq!(deploy.params["id"], AGGRESSIVE_RSI);
    assert_eq!(log.entries[2].params["name"], "learning");
    let failed = &log.entries[4];
    assert!(
        failed.error.as_deref().unwrap_or("").contains("not found"),
        "{failed:?}"
    );
    // The token issued is in no audit line.
    let file = std::fs::read_to_string(daemon.data_dir.join("audit/actions.jsonl")).unwrap();
    assert!(!file.contains(&token), "the view token is in the audit");

    // The filters.
    let deploys = audit(&daemon, &["--action", "strategies.deploy"]);
    assert_eq!(deploys.entries.len(), 2);
    assert_eq!(audit(&daemon, &["--since", "1h"]).entries.len(), 6);
    assert!(
        audit(&daemon, &["--since", "2099-01-01"])
            .entries
            .is_empty()
    );
    assert_eq!(
        audit(&daemon, &["--limit", "1"]).entries[0].outcome,
        ActionOutcome::Failed
    );
    // A table for people.
    let table = ok(daemon.memctl(&["audit"]));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("strategies.stop") && text.contains(&format!("uid {me} (memctl ")),
        "{text}"
    );

    // A stop is recorded with its reason.
    let mut daemon = daemon;
    daemon.stop_with(nix::sys::signal::Signal::SIGTERM);
    let file = std::fs::read_to_string(daemon.data_dir.join("audit/actions.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(file.lines().last().unwrap()).unwrap();
    assert_eq!(last["action"], "daemon.shutdown", "{last}");
    assert_eq!(last["params"]["reason"], "SIGTERM", "{last}");
    assert_eq!(last["client"], "memd", "{last}");
}
