//! The dashboard's pages over real HTTP (issue 29, the server's part): the login form
//! without a session, a token kept in an HttpOnly, SameSite=Strict cookie, never in a
//! URL; the cookie opens reads only; a strict Content-Security-Policy on every page; a
//! revoked token's session ends.

use mem_e2e::{fake_freqtrade_config, http_token, start_with_http};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

fn assert_strict_csp(response: &reqwest::Response) {
    let csp = response
        .headers()
        .get(CONTENT_SECURITY_POLICY)
        .expect("a Content-Security-Policy")
        .to_str()
        .unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{csp}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_signs_in_with_a_token_kept_in_an_httponly_cookie() {
    let (daemon, base) = start_with_http(|dir, http| {
        fake_freqtrade_config(
            dir,
            json!({"fake_bot": {}}),
            "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3",
            http,
        )
    });
    let control = http_token(&daemon, &[]);
    let board = http_token(&daemon, &["--view", "--name", "board"]);
    let http = client();

    // No session: the login form, refused, with the policy.
    let page = http.get(format!("{base}/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert_strict_csp(&page);
    let text = page.text().await.unwrap();
    assert!(
        text.contains("<form method=\"post\" action=\"/dashboard/login\""),
        "{text}"
    );

    // A wrong token: the form again, saying so.
    let form = |token: &str| format!("token={token}");
    let wrong = http
        .post(format!("{base}/dashboard/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&"0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    assert!(
        wrong
            .text()
            .await
            .unwrap()
            .contains("not one of this daemon's tokens")
    );

    // The view token: a cookie the page's script cannot read, sent to this site only.
    let signed_in = http
        .post(format!("{base}/dashboard/login"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form(&board))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()[LOCATION], "/dashboard");
    let cookie = signed_in.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    assert_eq!(session, format!("memd_dashboard={board}"));

    // With it: the page, its script and style, and the API's reads.
    let get_with_session = |path: &'static str| {
        let request = http.get(format!("{base}{path}")).header(COOKIE, &session);
        async move { request.send().await.unwrap() }
    };
    let page = get_with_session("/dashboard").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert_strict_csp(&page);
    let html = page.text().await.unwrap();
    assert!(html.contains("<script src=\"/dashboard/app.js\" defer></script>"));
    assert!(!html.contains(&board), "the token is not in the page");
    for (asset, kind) in [("app.js", "text/javascript"), ("app.css", "text/css")] {
        let response = http
            .get(format!("{base}/dashboard/{asset}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{asset}");
        assert!(
            response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with(kind),
            "{asset}"
        );
    }
    let deployed = get_with_session("/api/mem/strategies/deployed").await;
    assert_eq!(deployed.status(), StatusCode::OK);

    // A cookie never changes anything, even the control token's.
    let control_session = format!("memd_dashboard={control}");
    let deploy = http
        .post(format!(
            "{base}/api/mem/strategies/{}/deploy",
            mem_e2e::seed::AGGRESSIVE_RSI
        ))
        .header(COOKIE, &control_session)
        .send()
        .await
        .unwrap();
    assert_eq!(deploy.status(), StatusCode::UNAUTHORIZED);

    // The token revoked: the session ends, saying why.
    let out = daemon.memctl(&["http", "token", "revoke", "board"]);
    assert!(out.status.success(), "{}", mem_e2e::describe(&out));
    let page = get_with_session("/dashboard").await;
    assert_eq!(page.status(), StatusCode::UNAUTHORIZED);
    assert!(page.text().await.unwrap().contains("sign in again"));

    // Signing out forgets the cookie; no token reached the daemon's log.
    let out = http
        .post(format!("{base}/dashboard/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let log = daemon.stderr();
    assert!(
        !log.contains(&board) && !log.contains(&control),
        "a token in the log"
    );
}

/// The Python with Playwright (`MEMD_TEST_PLAYWRIGHT`, tools/test-all installs it) and
/// Debian's chromium; without them the browser test says it is skipped, unless
/// `MEMD_REQUIRE_BROWSER` says it must run (test-all).
fn playwright() -> Option<String> {
    let python = std::env::var("MEMD_TEST_PLAYWRIGHT")
        .ok()
        .filter(|p| !p.is_empty());
    let ready = python.is_some() && std::path::Path::new("/usr/bin/chromium").exists();
    if !ready {
        assert!(
            std::env::var_os("MEMD_REQUIRE_BROWSER").is_none(),
            "the browser test is required here (MEMD_REQUIRE_BROWSER) but MEMD_TEST_PLAYWRIGHT or /usr/bin/chromium is missing: .ci/install-playwright, apt-get install chromium"
        );
        eprintln!("skipped: no MEMD_TEST_PLAYWRIGHT or no /usr/bin/chromium");
        return None;
    }
    python
}

/// In a real browser (Debian's headless Chromium driven by Playwright), at a phone's
/// width: refused without a session, signed in with a view token, both running bots
/// shown and the stream live, the cookie out of the script's reach, no console error,
/// an injected inline script blocked by the policy; a screenshot kept as an artefact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_browser_signs_in_and_sees_both_bots_live() {
    let Some(python) = playwright() else {
        return;
    };
    let (daemon, base) = start_with_http(|dir, http| {
        fake_freqtrade_config(
            dir,
            json!({"fake_bot": {"closed_trades": 2}}),
            "poll_interval_secs = 0.3\nready_timeout_secs = 10\nstop_timeout_secs = 3",
            http,
        )
    });
    let client = daemon.client().await;
    let mut names = Vec::new();
    for id in [mem_e2e::seed::AGGRESSIVE_RSI, mem_e2e::seed::MACD_HUNTER] {
        let d = client
            .call::<mem_protocol::methods::method::Deploy>(mem_e2e::deployments::dry_run_on_port(
                mem_e2e::seed::sid(id),
                mem_e2e::free_port(),
            ))
            .await
            .unwrap();
        names.push(d.strategy_name);
    }
    let board = http_token(&daemon, &["--view", "--name", "browser"]);
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/dashboard_browser.py");
    let mut args = vec![
        script.display().to_string(),
        base.clone(),
        board.clone(),
        shot.display().to_string(),
    ];
    args.extend(names.iter().cloned());
    let out = tokio::process::Command::new(&python)
        .args(&args)
        .output()
        .await
        .expect("run the browser script");
    assert!(out.status.success(), "{}", mem_e2e::describe(&out));
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", mem_e2e::describe(&out)));

    assert_eq!(result["without_session_status"], 401, "{result}");
    assert_eq!(result["login_form"], true, "{result}");
    let rows = result["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{result}");
    for name in &names {
        assert!(
            rows.iter()
                .any(|r| r.as_str().unwrap().contains(name.as_str())),
            "{name} in {result}"
        );
    }
    assert_eq!(result["cookie_visible_to_script"], false, "{result}");
    assert_eq!(
        result["console_errors_before_injection"],
        json!([]),
        "the signed-in page's console errors: {result}"
    );
    assert_eq!(
        result["injected_script_ran"], false,
        "the CSP let an inline script run: {result}"
    );
    let png = std::fs::read(&shot).expect("the screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 5_000,
        "{}",
        shot.display()
    );
    eprintln!("screenshot: {}", shot.display());
}
