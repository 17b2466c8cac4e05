//! The dashboard in the browser (issue 29), read-only: `/dashboard` served by the HTTP
//! listener (off with the API, on with it).
//!
//! - Signing in: the login form posts one of the daemon's HTTP tokens; it comes back as a
//!   cookie marked HttpOnly (the page's script never sees it) and SameSite=Strict (no
//!   other site's page sends it), never in a URL. The cookie opens `GET` requests only,
//!   at view level whatever the token: a cookie is sent by the browser on its own, so it
//!   must not be able to change anything.
//! - Everything the page uses is served from here (no CDN, no external font), written by
//!   hand: `dashboard/*.html`, `app.js`, `app.css`, compiled into memd. A strict
//!   Content-Security-Policy allows scripts, styles and connections from this server
//!   only, and no inline script.

use super::HttpState;
use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use mem_protocol::methods::Access;
use serde::Deserialize;

/// The session cookie's name.
pub const COOKIE: &str = "memd_dashboard";
/// How long a sign-in lasts (the browser forgets the cookie after).
const SESSION_SECS: u64 = 12 * 3600;

const INDEX: &str = include_str!("dashboard/index.html");
const LOGIN: &str = include_str!("dashboard/login.html");
const APP_JS: &str = include_str!("dashboard/app.js");
const APP_CSS: &str = include_str!("dashboard/app.css");

/// What every dashboard response carries: scripts, styles, images and connections from
/// this server only, no inline script, no framing, no referrer, no caching of pages.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn routes() -> Router<HttpState> {
    Router::new()
        .route("/dashboard", get(page))
        .route("/dashboard/login", post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/app.js", get(app_js))
        .route("/dashboard/app.css", get(app_css))
        .route("/favicon.ico", get(no_icon))
}

/// Browsers ask for an icon on their own: none, said without an error.
async fn no_icon() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// The token in a request's session cookie, if it has one.
pub fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

/// The access a request's cookie gives: view, for a `GET` with a known token's cookie.
pub fn cookie_access(
    state: &HttpState,
    method: &axum::http::Method,
    headers: &HeaderMap,
) -> Option<Access> {
    if method != axum::http::Method::GET {
        return None;
    }
    let token = session_token(headers)?;
    state.tokens.access_of(token).map(|_| Access::View)
}

/// A dashboard response: its content type and the security headers.
fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

const HTML: &str = "text/html; charset=utf-8";

/// The login form, with what went wrong when there is something to say.
fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let error = error.map_or(String::new(), |e| {
        format!("<p class=\"error\" role=\"alert\">{e}</p>")
    });
    respond(status, HTML, LOGIN.replace("<!--ERROR-->", &error))
}

/// `GET /dashboard`: the page for a signed-in browser, the login form (401) otherwise.
async fn page(State(state): State<HttpState>, headers: HeaderMap) -> Response {
    match session_token(&headers) {
        Some(token) if state.tokens.access_of(token).is_some() => {
            respond(StatusCode::OK, HTML, INDEX.into())
        }
        Some(_) => login_page(
            StatusCode::UNAUTHORIZED,
            Some(
                "Your session's token is no longer one of this daemon's (rotated or revoked): sign in again.",
            ),
        ),
        None => login_page(StatusCode::UNAUTHORIZED, None),
    }
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// `POST /dashboard/login`: a known token becomes the session cookie (then to the page);
/// another is refused with the form again.
async fn login(State(state): State<HttpState>, Form(form): Form<LoginForm>) -> Response {
    let token = form.token.trim();
    if state.tokens.access_of(token).is_none() {
        return login_page(
            StatusCode::UNAUTHORIZED,
            Some("That is not one of this daemon's tokens (memctl http token list names them)."),
        );
    }
    let cookie =
        format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_SECS}");
    let mut response = respond(StatusCode::SEE_OTHER, HTML, String::new());
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static("/dashboard"));
    match HeaderValue::from_str(&cookie) {
        Ok(value) => {
            headers.insert(header::SET_COOKIE, value);
            response
        }
        // A token memd issued is hex; anything else never matched above.
        Err(_) => login_page(
            StatusCode::BAD_REQUEST,
            Some("That token cannot be kept in a cookie."),
        ),
    }
}

/// `POST /dashboard/logout`: the cookie is forgotten.
async fn logout() -> Response {
    let mut response = respond(StatusCode::SEE_OTHER, HTML, String::new());
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static("/dashboard"));
    headers.insert(
        header::SET_COOKIE,
        HeaderValue::from_static("memd_dashboard=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0"),
    );
    response
}

async fn app_js() -> Response {
    respond(
        StatusCode::OK,
        "text/javascript; charset=utf-8",
        APP_JS.into(),
    )
}

async fn app_css() -> Response {
    respond(StatusCode::OK, "text/css; charset=utf-8", APP_CSS.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; memd_dashboard=abc; b=2"),
        );
        assert_eq!(session_token(&headers), Some("abc"));
        let mut empty = HeaderMap::new();
        empty.insert(header::COOKIE, HeaderValue::from_static("memd_dashboard="));
        assert_eq!(session_token(&empty), None);
        assert_eq!(session_token(&HeaderMap::new()), None);
    }

    #[test]
    fn the_pages_use_nothing_from_elsewhere_and_no_inline_script() {
        for page in [INDEX, LOGIN] {
            assert!(
                !page.contains("http://") && !page.contains("https://"),
                "{page}"
            );
            assert!(
                !page.contains("<script>") && !page.contains("onclick"),
                "{page}"
            );
            assert!(!page.contains("style="), "{page}");
        }
        assert!(!APP_JS.contains("http") && !APP_CSS.contains("http"));
        assert!(INDEX.len() + LOGIN.len() + APP_JS.len() + APP_CSS.len() < 300 * 1024);
    }
}
