//! `GET /metrics`: the API's Prometheus metrics and the queue depths. A scraper authenticates
//! with `METRICS_TOKEN` as a bearer token; a logged-in user's token works too.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::state::AppState;

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    operation_id = "getMetrics",
    summary = "Prometheus metrics and queue depths",
    description = "A scraper sends `METRICS_TOKEN` as its bearer token; a user's token works too.",
    responses((status = 200, description = "The Prometheus text format.", body = String,
        content_type = "text/plain; version=0.0.4")),
)]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
    user: Result<AuthUser, ApiError>,
) -> Result<Response, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let scraper = match (&state.config.metrics_token, bearer) {
        (Some(expected), Some(sent)) => constant_time_eq(expected.expose(), sent),
        _ => false,
    };
    if !scraper {
        user?;
    }
    let body = state.queues.render_metrics().await;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
