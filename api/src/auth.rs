//! Authentication: Argon2id password hashes, HS256 JWTs with a `jti` that logout revokes, and
//! the extractors that guard routes. A token comes from `Authorization: Bearer` or from the
//! HttpOnly session cookie the login sets for the dashboard; with the cookie, mutations must
//! also carry the CSRF token in an `x-csrf-token` header. That token is an HMAC of the session's
//! `jti`, handed to the page in a cookie its script can read: a cross-site page can neither read
//! it nor compute it, and a cookie planted by a sibling host does not match the session.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Method, header};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use shared::domain::Role;
use uuid::Uuid;

use crate::error::ApiError;
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "cc_session";
/// Name of the CSRF cookie (readable by the dashboard's script, unlike the session cookie).
pub const CSRF_COOKIE: &str = "cc_csrf";

/// The CSRF token of a session: HMAC-SHA256 of its `jti` under a key derived from `SECRET_KEY`.
pub fn csrf_token(state: &AppState, jti: Uuid) -> String {
    let key = csrf_key(state);
    hex::encode(aws_lc_rs::hmac::sign(&key, jti.as_bytes()).as_ref())
}

fn csrf_key(state: &AppState) -> aws_lc_rs::hmac::Key {
    let derived = shared::config::derive_key(state.config.secret_key.expose(), "csrf");
    aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, derived.as_bytes())
}

/// Whether `sent` is the session's CSRF token, compared in constant time.
fn csrf_matches(state: &AppState, jti: Uuid, sent: &str) -> bool {
    let Ok(tag) = hex::decode(sent) else { return false };
    aws_lc_rs::hmac::verify(&csrf_key(state), jti.as_bytes(), &tag).is_ok()
}

/// The claims of a product token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub name: String,
    pub role: Role,
    pub jti: Uuid,
    pub iat: i64,
    /// Issue time in milliseconds, compared with the user's `tokens_valid_after`.
    #[serde(default)]
    pub iat_ms: i64,
    pub exp: i64,
}

/// Signs a token for a user.
pub fn issue(
    state: &AppState,
    user_id: Uuid,
    name: &str,
    role: Role,
) -> Result<(String, Claims), ApiError> {
    let now = Utc::now();
    let claims = Claims {
        sub: user_id,
        name: name.to_owned(),
        role,
        jti: Uuid::new_v4(),
        iat: now.timestamp(),
        iat_ms: now.timestamp_millis(),
        exp: now.timestamp() + state.config.jwt_ttl.as_secs() as i64,
    };
    let key = EncodingKey::from_secret(state.config.jwt_secret.expose().as_bytes())
        .map_err(|e| ApiError::internal(format!("signing key: {e}")))?;
    let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key)
        .map_err(|e| ApiError::internal(format!("signing a token: {e}")))?;
    Ok((token, claims))
}

fn verify(state: &AppState, token: &str) -> Result<Claims, ApiError> {
    let key = DecodingKey::from_secret(state.config.jwt_secret.expose().as_bytes())
        .map_err(|e| ApiError::internal(format!("verifying key: {e}")))?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "sub", "iat"]);
    jsonwebtoken::decode::<Claims>(token, &key, &validation).map(|data| data.claims).map_err(|e| {
        match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => {
                ApiError::unauthorized("the token has expired; log in again")
            }
            _ => ApiError::unauthorized("the token is not valid"),
        }
    })
}

/// Hashes a password with Argon2id (on a blocking thread: it is deliberately slow).
pub async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
            .map_err(|e| ApiError::internal(format!("salt: {e}")))?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::internal(format!("hashing: {e}")))
    })
    .await
    .map_err(|e| ApiError::internal(format!("hashing task: {e}")))?
}

/// Checks a password against a stored hash.
pub async fn verify_password(password: String, hash: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash)
            .map_err(|e| ApiError::internal(format!("stored hash: {e}")))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
    })
    .await
    .map_err(|e| ApiError::internal(format!("verify task: {e}")))?
}

/// An authenticated caller. Extracting it rejects with 401 when the token is missing,
/// tampered with, expired or revoked.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub claims: Claims,
}

impl AuthUser {
    /// The caller's display name, for audit and `requested_by`.
    pub fn name(&self) -> &str {
        &self.claims.name
    }

    /// Requires the admin role.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.claims.role == Role::Admin {
            Ok(())
        } else {
            Err(ApiError::forbidden("this action needs the admin role"))
        }
    }
}

fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
                    .ok_or_else(|| ApiError::unauthorized("use Authorization: Bearer <token>"))
            })
            .transpose()?;

        let (token, from_cookie) = match bearer {
            Some(t) => (t.trim().to_owned(), false),
            None => match cookie(parts, SESSION_COOKIE) {
                Some(t) => (t.to_owned(), true),
                None => return Err(ApiError::unauthorized("authentication is required")),
            },
        };
        let claims = verify(state, &token)?;
        let check = state
            .caches
            .token_check(claims.sub, claims.jti, || {
                shared::db::users::token_check(&state.pool, claims.sub, claims.jti)
            })
            .await?
            .ok_or_else(|| ApiError::unauthorized("the user no longer exists"))?;
        let superseded =
            check.tokens_valid_after.is_some_and(|after| claims.iat_ms < after.timestamp_millis());
        if check.revoked || superseded {
            return Err(ApiError::unauthorized("the token was revoked; log in again"));
        }
        // Checked only once the session is known to be live, so a stale cookie reads as 401.
        if from_cookie && !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
            if !sent.is_some_and(|t| csrf_matches(state, claims.jti, t)) {
                return Err(ApiError::forbidden(
                    "with the session cookie, this request needs the x-csrf-token header \
                     (the value of the cc_csrf cookie)",
                ));
            }
        }
        // The role in force is the stored one: a demotion takes effect at once.
        let mut claims = claims;
        claims.role = check.role.parse().map_err(|e| ApiError::internal(format!("role: {e}")))?;
        Ok(Self { claims })
    }
}

/// The expiry of a token, for revocation.
pub fn expires_at(claims: &Claims) -> DateTime<Utc> {
    DateTime::from_timestamp(claims.exp, 0).unwrap_or_else(Utc::now)
}

/// An authenticated admin: extracting it answers 403 for any other role, before the request
/// body is even read.
#[derive(Debug, Clone)]
pub struct AdminUser(pub AuthUser);

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        user.require_admin()?;
        Ok(Self(user))
    }
}
