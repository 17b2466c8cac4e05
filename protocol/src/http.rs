//! The HTTP API's tokens and the TradingView webhook's secret, handed out over the socket
//! (`memctl http token`).

use serde::{Deserialize, Serialize};

/// `http.token` params.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HttpTokenParams {
    /// Issue a new view-only token (for a dashboard) instead of showing the control one.
    #[serde(default)]
    pub view: bool,
    /// Show the TradingView webhook's secret (for the alert's `secret` or the URL's
    /// `?secret=`) instead of a bearer token; not with `view`.
    #[serde(default)]
    pub webhook: bool,
    /// With `view`: the new token's name (default `view-N`), for `http.tokens.rotate` and
    /// `.revoke`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// One credential of the HTTP API, as `http.tokens.list` shows it: never its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenInfo {
    /// `control`, `webhook`, or a view token's name.
    pub name: String,
    /// `control`, `view` or `webhook`.
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<chrono::DateTime<chrono::Utc>>,
    /// After a rotation of the webhook's secret: the old one is accepted until then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_accepted_until: Option<chrono::DateTime<chrono::Utc>>,
}

/// `http.tokens.list` and `http.tokens.revoke` result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenList {
    pub tokens: Vec<TokenInfo>,
}

/// `http.tokens.rotate` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RotateTokenParams {
    /// `control`, `webhook`, or a view token's name.
    pub name: String,
    /// For the webhook's secret: how long the old one is still accepted (default 3,600 s,
    /// time to change the alerts that carry it; 0: refused at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_secs: Option<u64>,
}

/// `http.tokens.revoke` params.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RevokeTokenParams {
    /// A view token's name.
    pub name: String,
}

/// A bearer token for the HTTP API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpToken {
    pub token: String,
    /// `control`, `view`, or `webhook` (the TradingView webhook's secret).
    pub access: String,
    /// The API's base URL when the listener is on (`[http] listen`); for the webhook's
    /// secret, the webhook's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}
