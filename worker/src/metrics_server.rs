//! The worker's own small HTTP server: `GET /metrics` (Prometheus text) and `GET /health`.

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::WorkerState;

/// Serves until the task is aborted.
pub async fn serve(listener: tokio::net::TcpListener, state: WorkerState) {
    shared::metrics::handle();
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(|| async { "ok" }))
        .with_state(state);
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!(error = %e, "the worker's metrics server stopped");
    }
}

async fn metrics(State(state): State<WorkerState>) -> String {
    state.queues.render_metrics().await
}
