//! The whole HTTP API, property-tested from its own OpenAPI document by Schemathesis: the
//! real memd serves `[http]` on a free loopback port, Schemathesis loads
//! `/api/mem/openapi.json` (with the control token) and sends every operation generated
//! requests, valid and invalid, checking that no answer is a 5xx and that every status,
//! content type, header and body is one the document declares.
//!
//! `[freqtrade] bin` is a path that does not exist, so no generated deploy can start a
//! process: a deploy answers 400 or 404, 200 for a native strategy (paper trading inside
//! memd), or for a Freqtrade one the documented 503 "Freqtrade is not installed", which the
//! Schemathesis config written here allows for that operation only (any other 5xx anywhere
//! fails). `/api/mem/events` is left out: an endless Server-Sent Events stream. The
//! TradingView webhook is sent the webhook's secret in its URL, and alerts for MACD Hunter
//! on ETH/USDT with generated actions, prices and confidences, so that its accepted answers
//! (a decision logged; nothing forwarded: no bot) are checked too; its rate limit is set
//! out of reach.
//!
//! Needs `MEMD_TEST_SCHEMATHESIS` (the path of Schemathesis's `st`; `.ci/run` installs it
//! with `.ci/install-schemathesis`); without it the test says it is skipped, unless
//! `MEMD_REQUIRE_SCHEMATHESIS` is set. `MEMD_SCHEMATHESIS_SEED` replays a run (the seed is
//! in Schemathesis's output).

use mem_e2e::free_port;
use mem_e2e::{Daemon, alive, describe};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Generated test cases per operation: enough to find the usual mistakes, few enough that
/// the run takes well under a minute and a half on two cores.
const MAX_EXAMPLES: &str = "300";

/// Past this the run is killed and the test fails (Schemathesis hung, or the API did).
const RUN_LIMIT: Duration = Duration::from_secs(300);

/// `not_a_server_error` fails on every 5xx, documented or not; a deploy's 503 is by design
/// (no Freqtrade binary), so it is allowed there, as `st explain ST101` advises.
const CONFIG: &str = r#"[[operations]]
include-name = "POST /api/mem/strategies/{id}/deploy"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
"#;

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
                      response_schema_conformance,response_headers_conformance";

fn schemathesis() -> Option<PathBuf> {
    match std::env::var_os("MEMD_TEST_SCHEMATHESIS").filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "MEMD_TEST_SCHEMATHESIS={} is not a file",
                path.display()
            );
            Some(path)
        }
        None => {
            assert!(
                std::env::var_os("MEMD_REQUIRE_SCHEMATHESIS").is_none(),
                "MEMD_TEST_SCHEMATHESIS is not set, and MEMD_REQUIRE_SCHEMATHESIS is set"
            );
            eprintln!(
                "SKIPPED: MEMD_TEST_SCHEMATHESIS is not set (MEMD_TEST_SCHEMATHESIS=$(.ci/install-schemathesis | tail -n1))"
            );
            None
        }
    }
}

#[test]
fn every_generated_request_gets_an_answer_the_openapi_document_declares() {
    let Some(st) = schemathesis() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = root.path().join("memd.toml");
    let no_freqtrade = root.path().join("no-freqtrade/bin/freqtrade");
    std::fs::write(
        &config,
        format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n[http.tradingview]\nrate_limit_per_minute = 1000000\n[freqtrade]\nbin = {:?}\n",
            no_freqtrade.display().to_string()
        ),
    )
    .unwrap();
    let mut daemon = Daemon::with_config(root, &config);

    let token = daemon.memctl(&["http", "token"]);
    assert!(
        token.status.success(),
        "memctl http token: {}",
        describe(&token)
    );
    let token = String::from_utf8(token.stdout).unwrap().trim().to_string();
    assert!(
        !token.is_empty() && !token.contains(char::is_whitespace),
        "memctl http token printed {token:?}"
    );

    // Schemathesis works in a directory of its own (reports, caches), inside the test's.
    let work = daemon.root.path().join("schemathesis");
    std::fs::create_dir_all(&work).unwrap();
    let (out_path, err_path) = (work.join("stdout"), work.join("stderr"));
    let webhook = daemon.memctl(&["http", "token", "--webhook"]);
    assert!(webhook.status.success(), "{}", describe(&webhook));
    let webhook = String::from_utf8(webhook.stdout)
        .unwrap()
        .trim()
        .to_string();
    let st_config = work.join("schemathesis.toml");
    std::fs::write(
        &st_config,
        format!(
            "{CONFIG}\n[[operations]]\ninclude-name = \"POST /api/mem/webhooks/tradingview\"\n\
             parameters = {{ \"query.secret\" = \"{webhook}\", \"body.strategy\" = \"freqtrade_macd_hunter\", \"body.ticker\" = \"BINANCE:ETHUSDT\" }}\n"
        ),
    )
    .unwrap();
    let st_config = st_config.display().to_string();
    let schema = format!("http://127.0.0.1:{port}/api/mem/openapi.json");
    let auth = format!("Authorization: Bearer {token}");
    let mut args: Vec<&str> = vec![
        "--config-file",
        &st_config,
        "run",
        &schema,
        "--header",
        &auth,
        "--checks",
        CHECKS,
        "--exclude-path",
        "/api/mem/events",
        "--max-examples",
        MAX_EXAMPLES,
        "--request-timeout",
        "10",
        "--generation-database",
        "none",
        "--no-color",
    ];
    let seed = std::env::var("MEMD_SCHEMATHESIS_SEED").ok();
    if let Some(seed) = &seed {
        args.extend(["--seed", seed]);
    }
    let mut cmd = Command::new(&st);
    cmd.args(&args)
        .current_dir(&work)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        // Only loopback is asked: no proxy may stand in between.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost");
    for var in [
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ] {
        cmd.env_remove(var);
    }
    eprintln!(
        "running {} {}",
        st.display(),
        args.join(" ")
            .replace(&token, "<token>")
            .replace(&webhook, "<secret>")
    );
    let started = Instant::now();
    let mut child = cmd.spawn().expect("run schemathesis");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = started.elapsed();
    let output = format!(
        "--- schemathesis stdout\n{}\n--- schemathesis stderr\n{}",
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default()
    );
    eprintln!("schemathesis ran for {:.1} s", took.as_secs_f64());
    let status = status.unwrap_or_else(|| {
        panic!(
            "schemathesis did not finish within {} s:\n{output}\n--- memd stderr\n{}",
            RUN_LIMIT.as_secs(),
            daemon.stderr()
        )
    });
    assert!(
        status.success(),
        "schemathesis found answers the OpenAPI document does not declare ({status}):\n{output}"
    );
    eprintln!("{output}");

    assert!(
        alive(daemon.child.id()) && daemon.child.try_wait().unwrap().is_none(),
        "memd died under the generated requests:\n{}",
        daemon.stderr()
    );
    let stderr = daemon.stderr();
    assert!(!stderr.contains("panicked"), "memd panicked:\n{stderr}");
}
