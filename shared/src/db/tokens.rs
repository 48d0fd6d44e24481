//! Revoked access tokens: a logout stores the token's `jti` until it would have expired.

use chrono::{DateTime, Utc};
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
