//! Users of the product and their password hashes.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

/// A stored user.
#[derive(Debug, Clone, FromRow)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub email: Option<String>,
    pub password_hash: String,
    pub role: String,
    pub failed_logins: i32,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_login_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub failed_window_start: Option<DateTime<Utc>>,
    pub tokens_valid_after: Option<DateTime<Utc>>,
}

/// Finds a user by name, ignoring case.
pub async fn find_by_username(pool: &PgPool, username: &str) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>("SELECT * FROM users WHERE lower(username) = lower($1)")
        .bind(username)
        .fetch_optional(pool)
        .await
}

/// Finds a user by id.
pub async fn find(pool: &PgPool, id: Uuid) -> Result<Option<User>, sqlx::Error> {
    sqlx::query_as::<_, User>("SELECT * FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Creates the bootstrap admin unless a user of that name exists. Returns whether it was made.
pub async fn insert_if_absent(
    pool: &PgPool,
    username: &str,
    password_hash: &str,
    role: &str,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO users (id, username, password_hash, role) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (lower(username)) DO NOTHING",
    )
    .bind(Uuid::new_v4())
    .bind(username)
    .bind(password_hash)
    .bind(role)
    .execute(pool)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// Records a successful login.
pub async fn record_login(conn: &mut PgConnection, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET last_login_at = now(), failed_logins = 0, failed_window_start = NULL \
         WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// What the authentication check needs to know about a token's user.
#[derive(Debug, Clone, FromRow)]
pub struct TokenCheck {
    pub role: String,
    pub tokens_valid_after: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// The user's current role and revocations, or `None` if the user no longer exists.
pub async fn token_check(
    pool: &PgPool,
    user_id: Uuid,
    jti: Uuid,
) -> Result<Option<TokenCheck>, sqlx::Error> {
    sqlx::query_as::<_, TokenCheck>(
        "SELECT role, tokens_valid_after, \
                EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $2) AS revoked \
         FROM users WHERE id = $1",
    )
    .bind(user_id)
    .bind(jti)
    .fetch_optional(pool)
    .await
}

/// Counts a failed login in the lockout window and locks the account at `threshold`.
/// Returns whether this failure locked it.
pub async fn register_failure(
    conn: &mut PgConnection,
    id: Uuid,
    threshold: i32,
    window_minutes: i64,
    lock_minutes: i64,
) -> Result<bool, sqlx::Error> {
    let locked: bool = sqlx::query_scalar(
        "UPDATE users SET \
             failed_logins = CASE WHEN failed_window_start IS NULL \
                 OR failed_window_start < now() - make_interval(mins => $3::int) \
                 THEN 1 ELSE failed_logins + 1 END, \
             failed_window_start = CASE WHEN failed_window_start IS NULL \
                 OR failed_window_start < now() - make_interval(mins => $3::int) \
                 THEN now() ELSE failed_window_start END \
         WHERE id = $1 \
         RETURNING failed_logins >= $2",
    )
    .bind(id)
    .bind(threshold)
    .bind(window_minutes as i32)
    .fetch_one(&mut *conn)
    .await?;
    if locked {
        sqlx::query(
            "UPDATE users SET locked_until = now() + make_interval(mins => $2::int), \
                 failed_logins = 0, failed_window_start = NULL WHERE id = $1",
        )
        .bind(id)
        .bind(lock_minutes as i32)
        .execute(&mut *conn)
        .await?;
    }
    Ok(locked)
}

/// Every user, oldest first.
pub async fn list(pool: &PgPool) -> Result<Vec<User>, sqlx::Error> {
    sqlx::query_as::<_, User>("SELECT * FROM users ORDER BY created_at, username")
        .fetch_all(pool)
        .await
}

/// How many users exist, and how many are admins.
pub async fn counts(conn: &mut PgConnection) -> Result<(i64, i64), sqlx::Error> {
    sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE role = 'admin') FROM users")
        .fetch_one(conn)
        .await
}

/// Creates a user.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    username: &str,
    email: Option<&str>,
    password_hash: &str,
    role: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO users (id, username, email, password_hash, role) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(username)
    .bind(email)
    .bind(password_hash)
    .bind(role)
    .execute(conn)
    .await?;
    Ok(())
}

/// Changes a user; a new role or password also revokes the user's live tokens.
pub async fn update(
    conn: &mut PgConnection,
    id: Uuid,
    email: Option<Option<&str>>,
    role: Option<&str>,
    password_hash: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE users SET \
             email = CASE WHEN $2 THEN $3 ELSE email END, \
             role = coalesce($4, role), \
             password_hash = coalesce($5, password_hash), \
             tokens_valid_after = CASE WHEN ($4 IS NOT NULL AND $4 <> role) OR $5 IS NOT NULL \
                 THEN clock_timestamp() ELSE tokens_valid_after END, \
             updated_at = now() \
         WHERE id = $1",
    )
    .bind(id)
    .bind(email.is_some())
    .bind(email.flatten())
    .bind(role)
    .bind(password_hash)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a user. Returns whether it existed.
pub async fn delete(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query("DELETE FROM users WHERE id = $1").bind(id).execute(conn).await?;
    Ok(deleted.rows_affected() == 1)
}

/// Lifts a lockout.
pub async fn unlock(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "UPDATE users SET locked_until = NULL, failed_logins = 0, failed_window_start = NULL \
         WHERE id = $1",
    )
    .bind(id)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}
