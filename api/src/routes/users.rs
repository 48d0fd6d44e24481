//! `/auth/users`: admins manage users. Creating users beyond the first needs PRO. The last
//! admin cannot be deleted or demoted, nobody changes their own role, and a new role or password
//! revokes the user's live tokens. Every action is audited.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::domain::Role;
use shared::{audit, db};
use uuid::Uuid;

use crate::auth::{self, AdminUser};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path};
use crate::origin::Origin;
use crate::state::AppState;
use crate::{licence, password};

/// A user as the API shows it (never the hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = User)]
#[serde(rename_all = "camelCase")]
pub struct UserBody {
    pub id: Uuid,
    #[schema(example = "alice")]
    pub username: String,
    #[schema(example = "alice@example.com")]
    pub email: Option<String>,
    #[schema(value_type = Role)]
    pub role: String,
    /// Whether failed logins have locked the account right now.
    pub locked: bool,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

impl From<db::users::User> for UserBody {
    fn from(u: db::users::User) -> Self {
        Self {
            id: u.id,
            locked: u.locked_until.is_some_and(|t| t > Utc::now()),
            username: u.username,
            email: u.email,
            role: u.role,
            locked_until: u.locked_until,
            last_login_at: u.last_login_at,
            created_at: u.created_at,
        }
    }
}

/// `GET /auth/users`.
#[utoipa::path(
    get,
    path = "/auth/users",
    tag = "users",
    operation_id = "listUsers",
    summary = "List users",
    responses((status = 200, description = "Every user.", body = Vec<UserBody>)),
)]
pub async fn list(
    State(state): State<AppState>,
    _admin: AdminUser,
) -> Result<Json<Vec<UserBody>>, ApiError> {
    Ok(Json(db::users::list(&state.pool).await?.into_iter().map(UserBody::from).collect()))
}

/// The body of `POST /auth/users`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "alice", "email": "alice@example.com",
    "password": "a long and unusual passphrase", "role": "user"}))]
pub struct NewUser {
    /// 3 to 64 letters, digits, dots, dashes, underscores or `@`.
    #[schema(pattern = "^[A-Za-z0-9._@-]{3,64}$")]
    pub username: String,
    pub email: Option<String>,
    /// 12 to 128 characters, not a common password and not the username.
    #[schema(min_length = 12, max_length = 128)]
    pub password: String,
    /// `user` when absent.
    #[schema(value_type = Option<Role>)]
    pub role: Option<String>,
}

fn check_username(name: &str) -> Result<(), ApiError> {
    let ok_chars = name.chars().all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if !(3..=64).contains(&name.len()) || !ok_chars {
        return Err(ApiError::invalid(
            "username",
            "3 to 64 letters, digits, dots, dashes, underscores or @",
        ));
    }
    Ok(())
}

fn check_email(email: &str) -> Result<(), ApiError> {
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(a, d)| !a.is_empty() && d.contains('.'));
    if valid { Ok(()) } else { Err(ApiError::invalid("email", "is not an email address")) }
}

fn parse_role(raw: &str) -> Result<Role, ApiError> {
    raw.parse().map_err(|e| ApiError::invalid("role", e))
}

/// `POST /auth/users`.
#[utoipa::path(
    post,
    path = "/auth/users",
    tag = "users",
    operation_id = "createUser",
    summary = "Create a user",
    description = "Users beyond the first need the PRO tier.",
    request_body = NewUser,
    responses(
        (status = 201, description = "The user was created.", body = UserBody),
        (status = 400, description = "A field fails validation; `detail` names it.",
            body = ErrorBody),
        (status = 403, description = "The caller is not an admin, or the licence allows no \
            more users (`license_required`).", body = ErrorBody),
        (status = 409, description = "The username is taken (`conflict`).", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    origin: Origin,
    AdminUser(user): AdminUser,
    Json(body): Json<NewUser>,
) -> Result<(StatusCode, Json<UserBody>), ApiError> {
    let username = body.username.trim().to_owned();
    check_username(&username)?;
    if let Some(email) = &body.email {
        check_email(email)?;
    }
    let role = parse_role(body.role.as_deref().unwrap_or("user"))?;
    password::check("password", &body.password, &username)?;
    let status = licence::require_feature(&state, "users")?;

    let hash = auth::hash_password(body.password).await?;
    let id = Uuid::new_v4();
    let mut tx = state.pool.begin().await?;
    let (users, _) = db::users::counts(&mut tx).await?;
    licence::require_room(&state, "users", users, status.limits.users)?;
    let inserted =
        db::users::insert(&mut tx, id, &username, body.email.as_deref(), &hash, role.as_str())
            .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e, "users_username_key") => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "username: is already taken",
            ));
        }
        other => other?,
    }
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "user.created",
        Some(&username),
        json!({"id": id, "role": role, "email": body.email}),
    )
    .await?;
    tx.commit().await?;
    let created = db::users::find(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::internal("user vanished"))?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// The body of `PUT /auth/users/{user_id}`; absent fields stay as they are.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "admin"}))]
pub struct UserChange {
    /// A new address, or `null` to remove it.
    #[serde(default, deserialize_with = "double_option::deserialize")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// A new role; nobody changes their own, and the last admin stays one.
    #[schema(value_type = Option<Role>)]
    pub role: Option<String>,
    /// A new password (12 to 128 characters); it revokes the user's live tokens.
    #[schema(min_length = 12, max_length = 128)]
    pub password: Option<String>,
}

/// Tells an absent field from an explicit `null`.
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(d).map(Some)
    }
}

async fn target(state: &AppState, id: Uuid) -> Result<db::users::User, ApiError> {
    db::users::find(&state.pool, id).await?.ok_or_else(|| ApiError::not_found(format!("user {id}")))
}

/// `PUT /auth/users/{user_id}`.
#[utoipa::path(
    put,
    path = "/auth/users/{user_id}",
    tag = "users",
    operation_id = "updateUser",
    summary = "Change a user's email, role or password",
    params(("user_id" = Uuid, Path, description = "The user's id.")),
    request_body = UserChange,
    responses(
        (status = 200, description = "The user as changed.", body = UserBody),
        (status = 400, description = "A field fails validation; `detail` names it.",
            body = ErrorBody),
        (status = 403, description = "The caller is not an admin, or tried to change their \
            own role.", body = ErrorBody),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 409, description = "The change would demote the last admin (`last_admin`).",
            body = ErrorBody),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    origin: Origin,
    AdminUser(user): AdminUser,
    Path(id): Path<Uuid>,
    Json(body): Json<UserChange>,
) -> Result<Json<UserBody>, ApiError> {
    let existing = target(&state, id).await?;
    if let Some(Some(email)) = &body.email {
        check_email(email)?;
    }
    let role = body.role.as_deref().map(parse_role).transpose()?;
    if let Some(role) = role
        && id == user.claims.sub
        && role.as_str() != existing.role
    {
        return Err(ApiError::forbidden("nobody changes their own role"));
    }
    let hash = match body.password {
        Some(p) => {
            password::check("password", &p, &existing.username)?;
            Some(auth::hash_password(p).await?)
        }
        None => None,
    };

    let mut tx = state.pool.begin().await?;
    if role == Some(Role::User) && existing.role == "admin" {
        let (_, admins) = db::users::counts(&mut tx).await?;
        if admins <= 1 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "last_admin",
                "role: the last admin cannot be demoted",
            ));
        }
    }
    let email = body.email.as_ref().map(|e| e.as_deref());
    db::users::update(&mut tx, id, email, role.map(Role::as_str), hash.as_deref()).await?;
    let details = json!({"role": {"old": existing.role, "new": role}, "emailChanged": body.email.is_some(),
        "passwordChanged": hash.is_some()});
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "user.updated",
        Some(&existing.username),
        details,
    )
    .await?;
    tx.commit().await?;
    state.caches.auth_changed();
    Ok(Json(target(&state, id).await?.into()))
}

/// `DELETE /auth/users/{user_id}`.
#[utoipa::path(
    delete,
    path = "/auth/users/{user_id}",
    tag = "users",
    operation_id = "deleteUser",
    summary = "Delete a user",
    params(("user_id" = Uuid, Path, description = "The user's id.")),
    responses(
        (status = 204, description = "The user is gone."),
        (status = 404, description = "No such user.", body = ErrorBody),
        (status = 409, description = "The user is the last admin (`last_admin`).",
            body = ErrorBody),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    origin: Origin,
    AdminUser(user): AdminUser,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let existing = target(&state, id).await?;
    let mut tx = state.pool.begin().await?;
    if existing.role == "admin" {
        let (_, admins) = db::users::counts(&mut tx).await?;
        if admins <= 1 {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "last_admin",
                "the last admin cannot be deleted",
            ));
        }
    }
    db::users::delete(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "user.deleted",
        Some(&existing.username),
        json!({"id": id}),
    )
    .await?;
    tx.commit().await?;
    state.caches.auth_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /auth/users/{user_id}/unlock`.
#[utoipa::path(
    post,
    path = "/auth/users/{user_id}/unlock",
    tag = "users",
    operation_id = "unlockUser",
    summary = "Lift a lockout",
    params(("user_id" = Uuid, Path, description = "The user's id.")),
    responses(
        (status = 200, description = "The user, unlocked.", body = UserBody),
        (status = 404, description = "No such user.", body = ErrorBody),
    ),
)]
pub async fn unlock(
    State(state): State<AppState>,
    origin: Origin,
    AdminUser(user): AdminUser,
    Path(id): Path<Uuid>,
) -> Result<Json<UserBody>, ApiError> {
    let existing = target(&state, id).await?;
    let mut tx = state.pool.begin().await?;
    db::users::unlock(&mut tx, id).await?;
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "user.unlocked",
        Some(&existing.username),
        json!({"id": id}),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(target(&state, id).await?.into()))
}
