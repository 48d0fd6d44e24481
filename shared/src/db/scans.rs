//! Discovery scans: the row the API creates, the worker advances and status endpoints read.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::ScanMode;

/// A stored scan.
#[derive(Debug, Clone, FromRow)]
pub struct Scan {
    pub id: Uuid,
    pub mode: String,
    pub status: String,
    pub phase: String,
    pub requested_by: Option<String>,
    pub subscriptions: Option<Vec<String>>,
    pub vaults_total: i32,
    pub vaults_done: i32,
    pub vaults_failed: i32,
    pub items_found: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub superseded_by: Option<Uuid>,
}

/// Records a queued scan.
pub async fn insert(
    conn: &mut PgConnection,
    id: Uuid,
    mode: ScanMode,
    requested_by: Option<&str>,
    subscriptions: Option<&[String]>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO scans (id, mode, status, requested_by, subscriptions) \
         VALUES ($1, $2, 'queued', $3, $4)",
    )
    .bind(id)
    .bind(mode.as_str())
    .bind(requested_by)
    .bind(subscriptions)
    .execute(conn)
    .await?;
    Ok(())
}

/// The id of a scan still queued or running, if any.
pub async fn find_active(conn: &mut PgConnection) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT id FROM scans WHERE status IN ('queued', 'running') \
         ORDER BY created_at DESC LIMIT 1",
    )
    .fetch_optional(conn)
    .await
}

/// One scan.
pub async fn get(pool: &PgPool, id: Uuid) -> Result<Option<Scan>, sqlx::Error> {
    sqlx::query_as::<_, Scan>("SELECT * FROM scans WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// A page of scans, newest first, and the total.
pub async fn list(pool: &PgPool, limit: i64, offset: i64) -> Result<(Vec<Scan>, i64), sqlx::Error> {
    let rows = sqlx::query_as::<_, Scan>(
        "SELECT * FROM scans ORDER BY created_at DESC, id LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar("SELECT count(*) FROM scans").fetch_one(pool).await?;
    Ok((rows, total))
}

/// Moves a queued scan to running in `phase`. Returns false when the scan is already terminal.
pub async fn start(conn: &mut PgConnection, id: Uuid, phase: &str) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE scans SET status = 'running', phase = $2, started_at = coalesce(started_at, now()) \
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id)
    .bind(phase)
    .execute(conn)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// Sets how many vaults the scan covers; with none, the scan completes at once.
pub async fn set_vault_total(
    conn: &mut PgConnection,
    id: Uuid,
    total: i32,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scans SET vaults_total = $2, \
             phase = CASE WHEN $2 = 0 THEN 'done' ELSE 'scanning_vaults' END, \
             status = CASE WHEN $2 = 0 THEN 'completed' ELSE status END, \
             finished_at = CASE WHEN $2 = 0 THEN now() ELSE finished_at END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(total)
    .execute(conn)
    .await?;
    Ok(())
}

/// Adds one finished vault to the scan's progress and, when it was the last, finishes the scan
/// (`completed`, or `completed_with_errors` if any vault failed). Returns the new status.
pub async fn record_vault_outcome(
    conn: &mut PgConnection,
    id: Uuid,
    failed: bool,
    items: i32,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE scans SET \
             vaults_done = vaults_done + 1, \
             vaults_failed = vaults_failed + $2, \
             items_found = items_found + $3, \
             status = CASE WHEN vaults_done + 1 >= vaults_total THEN \
                 CASE WHEN vaults_failed + $2 > 0 THEN 'completed_with_errors' ELSE 'completed' END \
                 ELSE status END, \
             phase = CASE WHEN vaults_done + 1 >= vaults_total THEN 'done' ELSE phase END, \
             finished_at = CASE WHEN vaults_done + 1 >= vaults_total THEN now() \
                 ELSE finished_at END \
         WHERE id = $1 AND status = 'running' \
         RETURNING status",
    )
    .bind(id)
    .bind(i32::from(failed))
    .bind(items)
    .fetch_optional(conn)
    .await
}

/// Marks a scan failed as a whole (it could not even enumerate its vaults).
pub async fn fail(conn: &mut PgConnection, id: Uuid, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scans SET status = 'failed', phase = 'done', error = $2, finished_at = now() \
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id)
    .bind(error)
    .execute(conn)
    .await?;
    Ok(())
}

/// A vault's outcome within one scan.
#[derive(Debug, Clone, FromRow)]
pub struct ScanVault {
    pub vault_id: Uuid,
    pub vault_name: String,
    pub subscription_id: String,
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub secrets: i32,
    pub keys: i32,
    pub certificates: i32,
    pub written: i32,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Each vault's outcome in a scan.
pub async fn vault_outcomes(pool: &PgPool, scan_id: Uuid) -> Result<Vec<ScanVault>, sqlx::Error> {
    sqlx::query_as::<_, ScanVault>(
        "SELECT sv.vault_id, v.name AS vault_name, v.subscription_id, sv.status, sv.error_code, \
                sv.error_message, sv.secrets, sv.keys, sv.certificates, sv.written, sv.started_at, \
                sv.finished_at \
         FROM scan_vaults sv JOIN vaults v ON v.id = sv.vault_id \
         WHERE sv.scan_id = $1 ORDER BY v.name",
    )
    .bind(scan_id)
    .fetch_all(pool)
    .await
}

/// Adds pending vault rows for a scan (one statement for all of them).
pub async fn add_vaults(
    conn: &mut PgConnection,
    scan_id: Uuid,
    vault_ids: &[Uuid],
    job_ids: &[Uuid],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO scan_vaults (scan_id, vault_id, job_id, status) \
         SELECT $1, v, j, 'pending' FROM UNNEST($2::uuid[], $3::uuid[]) AS t(v, j) \
         ON CONFLICT (scan_id, vault_id) DO NOTHING",
    )
    .bind(scan_id)
    .bind(vault_ids)
    .bind(job_ids)
    .execute(conn)
    .await?;
    Ok(())
}

/// The counts a vault reported.
#[derive(Debug, Clone, Copy, Default)]
pub struct VaultCounts {
    pub secrets: i32,
    pub keys: i32,
    pub certificates: i32,
    /// Asset rows written (a delta scan writes only what changed).
    pub written: i32,
}

/// Records a vault's final outcome in a scan, once. Returns false if it was already recorded
/// (a duplicate delivery), so the caller does not count the vault twice.
pub async fn finish_vault(
    conn: &mut PgConnection,
    scan_id: Uuid,
    vault_id: Uuid,
    error: Option<(&str, &str)>,
    counts: VaultCounts,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE scan_vaults SET status = $3, error_code = $4, error_message = $5, \
             secrets = $6, keys = $7, certificates = $8, written = $9, finished_at = now(), \
             started_at = coalesce(started_at, now()) \
         WHERE scan_id = $1 AND vault_id = $2 AND status IN ('pending', 'running')",
    )
    .bind(scan_id)
    .bind(vault_id)
    .bind(if error.is_some() { "failed" } else { "succeeded" })
    .bind(error.map(|e| e.0))
    .bind(error.map(|e| e.1))
    .bind(counts.secrets)
    .bind(counts.keys)
    .bind(counts.certificates)
    .bind(counts.written)
    .execute(conn)
    .await?;
    Ok(updated.rows_affected() == 1)
}

/// Marks a vault as being scanned.
pub async fn start_vault(pool: &PgPool, scan_id: Uuid, vault_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE scan_vaults SET status = 'running', started_at = coalesce(started_at, now()) \
         WHERE scan_id = $1 AND vault_id = $2 AND status = 'pending'",
    )
    .bind(scan_id)
    .bind(vault_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Cancels an active scan because a forced scan supersedes it, with its unfinished jobs.
/// Returns whether the scan was still active.
pub async fn supersede(conn: &mut PgConnection, id: Uuid, by: Uuid) -> Result<bool, sqlx::Error> {
    let cancelled = sqlx::query(
        "UPDATE scans SET status = 'cancelled', phase = 'done', finished_at = now(), \
             superseded_by = $2, error = 'superseded by forced scan ' || $2::text \
         WHERE id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id)
    .bind(by)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE jobs SET status = 'cancelled', finished_at = now(), error = 'scan superseded' \
         WHERE scan_id = $1 AND status IN ('queued', 'running')",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(cancelled.rows_affected() == 1)
}

/// Claims a cron tick for this replica: true if no replica claimed it before.
pub async fn claim_tick(
    conn: &mut PgConnection,
    schedule: &str,
    fire_at: DateTime<Utc>,
    worker: &str,
    outcome: &str,
) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO schedule_ticks (schedule, fire_at, claimed_by, outcome) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (schedule, fire_at) DO NOTHING",
    )
    .bind(schedule)
    .bind(fire_at)
    .bind(worker)
    .bind(outcome)
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Records what a claimed tick did.
pub async fn record_tick(
    conn: &mut PgConnection,
    schedule: &str,
    fire_at: DateTime<Utc>,
    outcome: &str,
    scan_id: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE schedule_ticks SET outcome = $3, scan_id = $4 WHERE schedule = $1 AND fire_at = $2",
    )
    .bind(schedule)
    .bind(fire_at)
    .bind(outcome)
    .bind(scan_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// The latest tick any replica claimed for a schedule.
pub async fn last_tick(
    pool: &PgPool,
    schedule: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("SELECT max(fire_at) FROM schedule_ticks WHERE schedule = $1")
        .bind(schedule)
        .fetch_one(pool)
        .await
}
