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
    let page = http
        .get(format!("{base}/dashboard"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
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
    let deployed = http
        .get(format!("{base}/api/mem/strategies/deployed"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
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
    let page = http
        .get(format!("{base}/dashboard"))
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
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
