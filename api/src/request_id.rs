//! A request id per request: generated (or taken from a sane `x-request-id`), echoed in the
//! response header, carried by the request span and quoted in internal error answers.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, if called within one.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// Middleware: assigns the id, opens the request span and logs one completion event.
pub async fn layer(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!("request", request.id = %id, http.method = %request.method(),
        http.route = %route);
    let started = std::time::Instant::now();

    let mut response =
        REQUEST_ID.scope(id.clone(), next.run(request).instrument(span.clone())).await;
    metrics::counter!(shared::metrics::HTTP_REQUESTS, "route" => route.clone(),
        "status" => response.status().as_u16().to_string())
    .increment(1);
    span.in_scope(|| {
        tracing::info!(
            http.status = response.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "request served"
        );
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
