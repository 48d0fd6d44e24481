//! `/auth/*`: log in with a username and password, log out (revoking the token), who am I.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::domain::Role;
use shared::{audit, db};

use crate::auth::{self, AuthUser, CSRF_COOKIE, SESSION_COOKIE};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::origin::Origin;
use crate::state::AppState;

/// The login body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "admin", "password": "correct horse battery staple"}))]
pub struct LoginRequest {
    #[schema(min_length = 1, pattern = "\\S")]
    pub username: String,
    #[schema(min_length = 1)]
    pub password: String,
}

/// The login answer, named as the reference names it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoginResponse {
    /// An HS256 JWT to send as `Authorization: Bearer <token>`.
    #[schema(example = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl")]
    pub access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires.
    #[schema(example = 3600)]
    pub expires_in: u64,
}

/// `POST /auth/login`. Every attempt is audited in the transaction that records it.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    operation_id = "login",
    summary = "Log in with a username and password",
    description = "Answers a bearer token and also sets the HttpOnly session cookie and the CSRF \
        cookie the dashboard uses. A wrong password, an unknown user and a locked account all \
        answer the same 401; failures count towards the lockout.",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Logged in.", body = LoginResponse,
            headers(("set-cookie" = String, description = "`cc_session` (HttpOnly) and `cc_csrf`"))),
        (status = 400, description = "The username or password is empty, or the body is malformed.",
            body = ErrorBody),
        (status = 401, description = "The username or password is wrong, or the account is locked.",
            body = ErrorBody,
            example = json!({"error": "Unauthorized",
                "detail": "the username or password is wrong", "code": "unauthorized"})),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    origin: Origin,
    Json(body): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    if body.username.trim().is_empty() {
        return Err(ApiError::invalid("username", "must not be empty"));
    }
    if body.password.is_empty() {
        return Err(ApiError::invalid("password", "must not be empty"));
    }
    let rejected = || ApiError::unauthorized("the username or password is wrong");
    let username = body.username.trim().to_owned();
    let actor = origin.actor(&username);
    let key = &state.audit_key;

    let Some(user) = db::users::find_by_username(&state.pool, &username).await? else {
        // Spend the same time as a real check, so response times do not reveal usernames.
        let _spent = auth::hash_password(body.password).await;
        let mut tx = state.pool.begin().await?;
        let details = json!({"reason": "unknown_user"});
        audit::record(&mut tx, key, &actor, "auth.login.failed", Some(&username), details).await?;
        tx.commit().await?;
        return Err(rejected());
    };
    let password_ok = auth::verify_password(body.password, user.password_hash.clone()).await?;
    let locked = user.locked_until.is_some_and(|until| until > chrono::Utc::now());
    if locked || !password_ok {
        // A locked account answers exactly like a wrong password: same words, same work.
        let mut tx = state.pool.begin().await?;
        let reason = if locked { "locked" } else { "bad_password" };
        audit::record(
            &mut tx,
            key,
            &actor,
            "auth.login.failed",
            Some(&username),
            json!({"reason": reason}),
        )
        .await?;
        if !locked {
            let config = &state.config;
            let now_locked = db::users::register_failure(
                &mut tx,
                user.id,
                config.lockout_threshold,
                config.lockout_window_minutes,
                config.lockout_duration_minutes,
            )
            .await?;
            if now_locked {
                let details = json!({"minutes": config.lockout_duration_minutes,
                    "threshold": config.lockout_threshold});
                audit::record(&mut tx, key, &actor, "auth.lockout", Some(&username), details)
                    .await?;
            }
        }
        tx.commit().await?;
        return Err(rejected());
    }
    let role: Role = user.role.parse().map_err(|e| ApiError::internal(format!("role: {e}")))?;
    let (token, claims) = auth::issue(&state, user.id, &user.username, role)?;
    let mut tx = state.pool.begin().await?;
    db::users::record_login(&mut tx, user.id).await?;
    let actor = origin.actor(&user.username);
    let details = json!({"jti": claims.jti, "role": role});
    audit::record(&mut tx, key, &actor, "auth.login.succeeded", Some(&user.username), details)
        .await?;
    tx.commit().await?;

    let ttl = state.config.jwt_ttl.as_secs();
    let csrf = auth::csrf_token(&state, claims.jti);
    let secure = if state.config.cookie_secure { "; Secure" } else { "" };
    let mut headers = HeaderMap::new();
    for cookie in [
        format!(
            "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={ttl}{secure}"
        ),
        format!("{CSRF_COOKIE}={csrf}; Path=/; SameSite=Strict; Max-Age={ttl}{secure}"),
    ] {
        let value = HeaderValue::from_str(&cookie)
            .map_err(|e| ApiError::internal(format!("cookie header: {e}")))?;
        headers.append(header::SET_COOKIE, value);
    }
    let body = LoginResponse { access_token: token, token_type: "bearer", expires_in: ttl };
    Ok((headers, Json(body)).into_response())
}

/// `POST /auth/logout`: revokes the token and clears the cookies.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    operation_id = "logout",
    summary = "Log out, revoking the token",
    responses(
        (status = 204, description = "The token is revoked and the cookies are cleared.",
            headers(("set-cookie" = String, description = "Expires `cc_session` and `cc_csrf`"))),
    ),
)]
pub async fn logout(
    State(state): State<AppState>,
    origin: Origin,
    user: AuthUser,
) -> Result<Response, ApiError> {
    let mut tx = state.pool.begin().await?;
    db::tokens::revoke(&mut tx, user.claims.jti, auth::expires_at(&user.claims)).await?;
    let details = json!({"jti": user.claims.jti});
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "auth.logout",
        Some(user.name()),
        details,
    )
    .await?;
    tx.commit().await?;
    state.caches.auth_changed();
    let mut headers = HeaderMap::new();
    let secure = if state.config.cookie_secure { "; Secure" } else { "" };
    for name in [SESSION_COOKIE, CSRF_COOKIE] {
        let cleared = format!("{name}=; Path=/; SameSite=Strict; Max-Age=0{secure}");
        let value = HeaderValue::from_str(&cleared)
            .map_err(|e| ApiError::internal(format!("cookie header: {e}")))?;
        headers.append(header::SET_COOKIE, value);
    }
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}

/// The current user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    pub id: uuid::Uuid,
    #[schema(example = "admin")]
    pub username: String,
    pub email: Option<String>,
    #[schema(value_type = Role)]
    pub role: String,
    pub last_login_at: Option<chrono::DateTime<chrono::Utc>>,
    pub token_expires_at: chrono::DateTime<chrono::Utc>,
}

/// `GET /auth/me`.
#[utoipa::path(
    get,
    path = "/auth/me",
    tag = "auth",
    operation_id = "getCurrentUser",
    summary = "Who the caller is",
    responses((status = 200, description = "The caller's user and token expiry.", body = Me)),
)]
pub async fn me(State(state): State<AppState>, user: AuthUser) -> Result<Json<Me>, ApiError> {
    let stored = db::users::find(&state.pool, user.claims.sub)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
    Ok(Json(Me {
        id: stored.id,
        username: stored.username,
        email: stored.email,
        role: stored.role,
        last_login_at: stored.last_login_at,
        token_expires_at: auth::expires_at(&user.claims),
    }))
}
