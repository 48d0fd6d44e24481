//! Retention: purging history older than the configured number of days. The audit trail is
//! purged from its oldest end only, and the purge records an anchor (the HMAC of the last entry
//! it removed) so the remaining chain still verifies.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

use crate::audit::{self, Actor};

/// The history types the reference names.
pub const HISTORY_TYPES: &[&str] = &["audit", "rotation", "sync", "alerts"];

/// The retention setting of each history type.
pub fn setting_key(history_type: &str) -> Option<&'static str> {
    match history_type {
        "audit" => Some("auditRetentionDays"),
        "rotation" => Some("rotationRetentionDays"),
        "sync" => Some("syncRetentionDays"),
        "alerts" => Some("alertRetentionDays"),
        _ => None,
    }
}

/// Rows and the oldest entry of one history table.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = RetentionTableStats)]
#[serde(rename_all = "camelCase")]
pub struct TableStats {
    pub rows: i64,
    pub oldest: Option<DateTime<Utc>>,
    /// False while the feature that writes this history does not exist yet.
    pub recorded: bool,
}

/// Stats of every history type.
pub async fn stats(pool: &PgPool) -> Result<Vec<(&'static str, TableStats)>, sqlx::Error> {
    let (rows, oldest): (i64, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT count(*), min(at) FROM audit_entries").fetch_one(pool).await?;
    let mut out = vec![("audit", TableStats { rows, oldest, recorded: true })];
    let (rows, oldest): (i64, Option<DateTime<Utc>>) =
        sqlx::query_as("SELECT count(*), min(created_at) FROM alert_deliveries")
            .fetch_one(pool)
            .await?;
    for other in ["rotation", "sync"] {
        out.push((other, TableStats { rows: 0, oldest: None, recorded: false }));
    }
    out.push(("alerts", TableStats { rows, oldest, recorded: true }));
    Ok(out)
}

/// Purges one history type of everything older than `days`, inside `conn`'s transaction, and
/// audits the purge. Returns how many rows went.
pub async fn purge(
    conn: &mut PgConnection,
    audit_key: &[u8],
    actor: &Actor,
    history_type: &str,
    days: i64,
) -> Result<i64, sqlx::Error> {
    let cutoff = Utc::now() - Duration::days(days);
    let purged = match history_type {
        "audit" => purge_audit(conn, cutoff).await?,
        "alerts" => purge_alerts(conn, cutoff).await?,
        // Rotation and sync history have no tables yet: nothing to purge.
        _ => 0,
    };
    let details = serde_json::json!({"historyType": history_type, "retentionDays": days,
        "cutoff": cutoff, "purged": purged});
    audit::record(conn, audit_key, actor, "retention.purged", Some(history_type), details).await?;
    Ok(purged)
}

async fn purge_audit(conn: &mut PgConnection, cutoff: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('certifyclouds:audit-chain'))")
        .execute(&mut *conn)
        .await?;
    // Only a prefix of the chain goes: everything up to the newest entry older than the cutoff.
    let last: Option<(i64, String)> = sqlx::query_as(
        "SELECT id, hmac FROM audit_entries WHERE id = \
             (SELECT max(id) FROM audit_entries WHERE at < $1)",
    )
    .bind(cutoff)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((last_id, last_hmac)) = last else { return Ok(0) };

    sqlx::query("SELECT set_config('certifyclouds.audit_purge', 'on', true)")
        .execute(&mut *conn)
        .await?;
    let deleted = sqlx::query("DELETE FROM audit_entries WHERE id <= $1")
        .bind(last_id)
        .execute(&mut *conn)
        .await?
        .rows_affected() as i64;
    sqlx::query("SELECT set_config('certifyclouds.audit_purge', 'off', true)")
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "INSERT INTO audit_anchors (last_purged_id, last_hmac, purged) VALUES ($1, $2, $3)",
    )
    .bind(last_id)
    .bind(&last_hmac)
    .bind(deleted)
    .execute(&mut *conn)
    .await?;
    Ok(deleted)
}

/// Deliveries (with their attempts) older than the cutoff go. Events go only once they can no
/// longer recur: their asset is gone or has a newer version. An event of a still-current
/// crossing stays, since it is what stops that crossing from alerting again.
async fn purge_alerts(conn: &mut PgConnection, cutoff: DateTime<Utc>) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('certifyclouds:alerts'))")
        .execute(&mut *conn)
        .await?;
    let deliveries = sqlx::query(
        "DELETE FROM alert_deliveries d WHERE d.created_at < $1 AND d.status IN ('sent', 'failed')",
    )
    .bind(cutoff)
    .execute(&mut *conn)
    .await?
    .rows_affected() as i64;
    sqlx::query(
        "DELETE FROM alert_events e WHERE e.created_at < $1 AND e.state <> 'pending' \
           AND (e.asset_id IS NULL OR NOT EXISTS (SELECT 1 FROM assets a \
                WHERE a.id = e.asset_id AND a.deleted_at IS NULL \
                  AND a.version IS NOT DISTINCT FROM e.asset_version)) \
           AND e.scan_id IS NULL",
    )
    .bind(cutoff)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM alert_events e WHERE e.created_at < $1 AND e.state <> 'pending' \
           AND e.scan_id IS NOT NULL",
    )
    .bind(cutoff)
    .execute(&mut *conn)
    .await?;
    Ok(deliveries)
}
