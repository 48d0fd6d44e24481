//! Worker heartbeats, so `/health` can say whether any worker is alive.

use sqlx::PgPool;

/// Records that `worker_name` is alive.
pub async fn beat(pool: &PgPool, worker_name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO worker_heartbeats (worker_name) VALUES ($1) \
         ON CONFLICT (worker_name) DO UPDATE SET seen_at = now()",
    )
    .bind(worker_name)
    .execute(pool)
    .await?;
    Ok(())
}

/// Removes a worker that shut down cleanly.
pub async fn forget(pool: &PgPool, worker_name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM worker_heartbeats WHERE worker_name = $1")
        .bind(worker_name)
        .execute(pool)
        .await?;
    Ok(())
}

/// How many workers beat within the last `seconds`.
pub async fn count_recent(pool: &PgPool, seconds: i64) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM worker_heartbeats \
         WHERE seen_at > now() - make_interval(secs => $1::double precision)",
    )
    .bind(seconds as f64)
    .fetch_one(pool)
    .await
}
