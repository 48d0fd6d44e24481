//! Rate limiting per client address, counted in Redis so every API replica shares the budget:
//! `RATE_LIMIT_PER_MINUTE` and `RATE_LIMIT_PER_HOUR` for all routes but `/health` and
//! `/metrics`, and `LOGIN_RATE_LIMIT_PER_MINUTE` for `POST /auth/login`. Over the limit the
//! answer is 429 with `Retry-After`. If Redis cannot be reached the request is let through
//! (and logged): availability wins over throttling.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;

/// Counts the request in a fixed window; returns the seconds until the window ends when the
/// count is over `limit`.
async fn over(
    state: &AppState,
    scope: &str,
    client: &str,
    window_seconds: u64,
    limit: u64,
) -> Result<Option<u64>, redis::RedisError> {
    let now = chrono::Utc::now().timestamp() as u64;
    let window = now / window_seconds;
    let key = format!("{}:ratelimit:{scope}:{client}:{window}", state.config.queue_prefix);
    let mut conn = state.redis.clone();
    let (count,): (u64,) = redis::pipe()
        .atomic()
        .cmd("INCR")
        .arg(&key)
        .cmd("EXPIRE")
        .arg(&key)
        .arg(window_seconds * 2)
        .ignore()
        .query_async(&mut conn)
        .await?;
    Ok((count > limit).then(|| (window + 1) * window_seconds - now))
}

/// Middleware.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let path = request.uri().path();
    if path == "/health" || path == "/metrics" {
        return next.run(request).await;
    }
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    let login = request.method() == Method::POST && path == "/auth/login";
    let config = &state.config;

    let mut checks = vec![
        ("minute", 60, config.rate_limit_per_minute),
        ("hour", 3600, config.rate_limit_per_hour),
    ];
    if login {
        checks.push(("login", 60, config.login_rate_limit_per_minute));
    }
    for (scope, window, limit) in checks {
        match over(&state, scope, &client, window, limit).await {
            Ok(None) => {}
            Ok(Some(retry_after)) => {
                let detail = format!(
                    "more than {limit} requests per {} from this address; retry in {retry_after} s",
                    if window == 60 { "minute" } else { "hour" }
                );
                let mut response =
                    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail)
                        .into_response();
                if let Ok(value) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return response;
            }
            Err(e) => {
                tracing::warn!(error = %e, "rate limit not checked: Redis did not answer");
                break;
            }
        }
    }
    next.run(request).await
}
