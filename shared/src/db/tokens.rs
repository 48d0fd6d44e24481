//! Revoked access tokens: a logout stores the token's `jti` until it would have expired.

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use uuid::Uuid;

/// Revokes a token id.
pub async fn revoke(
    conn: &mut sqlx::PgConnection,
    jti: Uuid,
    expires_at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(jti)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether a token id was revoked.
pub async fn is_revoked(pool: &PgPool, jti: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM revoked_tokens WHERE jti = $1)")
        .bind(jti)
        .fetch_one(pool)
        .await
}
