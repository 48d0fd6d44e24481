//! `/health` (public: database, Redis, recent workers) and `/identity` (the Azure identity the
//! product holds, decoded from its token).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::azure::arm::scope_for;
use shared::azure::identity;

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;

/// Workers that beat within this many seconds count as alive.
const WORKER_FRESH_SECONDS: i64 = 30;

#[derive(Serialize)]
struct Check {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
}

impl Check {
    fn from<E: std::fmt::Display>(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => Self { status: "ok", detail: None },
            Err(e) => Self { status: "down", detail: Some(e.to_string()) },
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    version: &'static str,
    database: Check,
    redis: Check,
    workers: Workers,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Workers {
    status: &'static str,
    seen_recently: i64,
}

/// `GET /health`: 200 when Postgres and Redis answer, 503 otherwise. Workers are reported but
/// do not make the API unhealthy (it still serves reads without them).
pub async fn health(State(state): State<AppState>) -> Response {
    let database =
        sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&state.pool).await.map(|_| ());
    let mut redis = state.redis.clone();
    let ping: Result<(), redis::RedisError> =
        redis::cmd("PING").query_async::<String>(&mut redis).await.map(|_| ());
    let seen =
        shared::db::workers::count_recent(&state.pool, WORKER_FRESH_SECONDS).await.unwrap_or(0);

    let healthy = database.is_ok() && ping.is_ok();
    let body = Health {
        status: if healthy { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        database: Check::from(database),
        redis: Check::from(ping),
        workers: Workers { status: if seen > 0 { "ok" } else { "none" }, seen_recently: seen },
    };
    let code = if healthy { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, Json(body)).into_response()
}

/// The Azure identity and the cloud it belongs to.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityInfo {
    #[serde(flatten)]
    pub identity: identity::TokenIdentity,
    pub cloud: String,
    pub authority_host: String,
    pub resource_manager_endpoint: String,
}

/// `GET /identity`.
pub async fn identity(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<Json<IdentityInfo>, ApiError> {
    let unavailable = |detail: String| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "azure_unavailable", detail)
    };
    let credential = state.azure.credential().map_err(|e| unavailable(e.to_string()))?;
    let scope = scope_for(&state.config.azure.resource_manager_audience);
    let found =
        identity::current(&credential, &scope).await.map_err(|e| unavailable(e.to_string()))?;
    Ok(Json(IdentityInfo {
        identity: found,
        cloud: format!("{:?}", state.config.azure.cloud).to_ascii_lowercase(),
        authority_host: state.config.azure.authority_host.to_string(),
        resource_manager_endpoint: state.config.azure.resource_manager_endpoint.to_string(),
    }))
}

/// `GET /system/license/status` (public): tier, licensee, expiry, limits, features, validity.
pub async fn license_status(State(state): State<AppState>) -> Json<shared::licence::Status> {
    Json(state.config.licence())
}
