//! `GET /metrics`: MEM's figures (`mem.metrics`, see [`crate::metrics`]) in Prometheus'
//! text exposition format 0.0.4, for a server-monitoring stack to scrape.
//!
//! Behind the bearer token like every other endpoint: Prometheus sends one with
//! `authorization: {credentials_file: ...}` in its scrape config (docs/http-api.md shows it), and
//! a view-only token (`memctl http token --view`) is enough.

use super::HttpState;
use super::api::ApiError;
use crate::metrics::PROMETHEUS_CONTENT_TYPE;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// MEM metrics for Prometheus.
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses(
        (status = 200, description = "MEM metrics in Prometheus' text exposition format 0.0.4: decisions in the last hour, prediction, enhancement and memory-load latency (summaries in seconds), win rate over 24 h, learned strategies by status, each bot's poll latency", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = "No or unknown token", body = ApiError),
    ))]
pub async fn metrics(State(state): State<HttpState>) -> Response {
    let text = crate::handlers::prometheus_metrics(&state.daemon);
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], text).into_response()
}

#[cfg(test)]
mod tests {
    /// The content type the document declares is the one the handler sends.
    #[test]
    fn the_document_declares_the_content_type_sent() {
        let doc = serde_json::to_value(super::super::api::openapi()).unwrap();
        let content = &doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"];
        assert!(
            content
                .get(crate::metrics::PROMETHEUS_CONTENT_TYPE)
                .is_some(),
            "{content}"
        );
    }
}
