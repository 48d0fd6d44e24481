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

/// A fixed-window budget: its name in the key, the window length and the requests allowed.
type Check = (&'static str, u64, u64);

/// Counts the request in every window of `checks` (one Redis round trip for all of them);
/// returns the first exceeded window and the seconds until it ends.
async fn over(
    state: &AppState,
    client: &str,
    checks: &[Check],
) -> Result<Option<(Check, u64)>, redis::RedisError> {
    let now = chrono::Utc::now().timestamp() as u64;
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (scope, window_seconds, _) in checks {
        let window = now / window_seconds;
        let key = format!("{}:ratelimit:{scope}:{client}:{window}", state.config.queue_prefix);
        pipe.cmd("INCR").arg(&key).cmd("EXPIRE").arg(&key).arg(window_seconds * 2).ignore();
    }
    let mut conn = state.redis.clone();
    let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
    Ok(checks.iter().zip(counts).find(|((_, _, limit), count)| count > limit).map(|(&check, _)| {
        let window_seconds = check.1;
        (check, (now / window_seconds + 1) * window_seconds - now)
    }))
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

    let mut checks: Vec<Check> = vec![
        ("minute", 60, config.rate_limit_per_minute),
        ("hour", 3600, config.rate_limit_per_hour),
    ];
    if login {
        checks.push(("login", 60, config.login_rate_limit_per_minute));
    }
    match over(&state, &client, &checks).await {
        Ok(None) => {}
        Ok(Some(((_, window, limit), retry_after))) => {
            let detail = format!(
                "more than {limit} requests per {} from this address; retry in {retry_after} s",
                if window == 60 { "minute" } else { "hour" }
            );
            let mut response = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail)
                .into_response();
            if let Ok(value) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return response;
        }
        Err(e) => {
            tracing::warn!(error = %e, "rate limit not checked: Redis did not answer");
        }
    }
    next.run(request).await
}
