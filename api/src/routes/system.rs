//! `/health` (public: database, Redis, recent workers) and `/identity` (the Azure identity the
//! product holds, decoded from its token).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shared::azure::arm::scope_for;
use shared::azure::identity;

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::state::AppState;

/// Workers that beat within this many seconds count as alive.
const WORKER_FRESH_SECONDS: i64 = 30;

/// One dependency's state.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = HealthDependency)]
struct Check {
    /// `ok` or `down`.
    #[schema(example = "ok")]
    status: &'static str,
    /// Why it is down.
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

/// The API's health.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct Health {
    /// `ok` when Postgres and Redis answer, `degraded` otherwise.
    #[schema(example = "ok")]
    status: &'static str,
    #[schema(example = "0.1.0")]
    version: &'static str,
    database: Check,
    redis: Check,
    workers: Workers,
}

/// Workers seen recently.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = HealthWorkers)]
#[serde(rename_all = "camelCase")]
struct Workers {
    /// `ok` when a worker beat in the last 30 seconds, `none` otherwise.
    #[schema(example = "ok")]
    status: &'static str,
    seen_recently: i64,
}

/// `GET /health`: 200 when Postgres and Redis answer, 503 otherwise. Workers are reported but
/// do not make the API unhealthy (it still serves reads without them).
#[utoipa::path(
    get,
    path = "/health",
    tag = "system",
    operation_id = "getHealth",
    summary = "Health of the API and its dependencies",
    responses(
        (status = 200, description = "Postgres and Redis answer.", body = Health),
        (status = 503, description = "Postgres or Redis does not answer.", body = Health),
    ),
)]
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
#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IdentityInfo {
    #[serde(flatten)]
    pub identity: identity::TokenIdentity,
    /// `public`, `china`, `usgovernment` or `custom`.
    #[schema(example = "public")]
    pub cloud: String,
    pub authority_host: String,
    pub resource_manager_endpoint: String,
}

/// `GET /identity`.
#[utoipa::path(
    get,
    path = "/identity",
    tag = "system",
    operation_id = "getIdentity",
    summary = "The Azure identity the product holds",
    description = "Gets a Resource Manager token with the configured credential and decodes \
        its claims: tenant, object id, application id and identity type.",
    responses(
        (status = 200, description = "The identity and its cloud.", body = IdentityInfo),
        (status = 503, description = "No credential is configured, or Azure refused a token \
            (`azure_unavailable`).", body = ErrorBody),
    ),
)]
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
#[utoipa::path(
    get,
    path = "/system/license/status",
    tag = "system",
    operation_id = "getLicenseStatus",
    summary = "The licence in force",
    responses((status = 200, description = "Tier, validity, limits and features.",
        body = shared::licence::Status)),
)]
pub async fn license_status(State(state): State<AppState>) -> Json<shared::licence::Status> {
    Json(state.config.licence())
}
