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
