//! Requesting a scan: the one place that records a scan and its first job, used by the API
//! (on demand) and by the worker's cron schedules.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::db;
use crate::domain::ScanMode;
use crate::jobs::{DISCOVER_VAULTS, DiscoverVaults};

/// What a scan request led to.
#[derive(Debug)]
pub enum Requested {
    /// The scan and its job are recorded; push the task after the transaction commits.
    Recorded { scan_id: Uuid, task: DiscoverVaults },
    /// Another scan is active and the mode does not supersede it.
    Busy { active: Uuid },
}

/// Records a scan and its `discover_vaults` job inside `tx`. One scan runs at a time: a
/// transaction-scoped advisory lock makes the check and the insert atomic across replicas. A
/// `force` request cancels the active scan instead of giving way to it.
pub async fn request(
    tx: &mut PgConnection,
    mode: ScanMode,
    requested_by: &str,
    subscriptions: Option<&[String]>,
) -> Result<Requested, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('certifyclouds:scan-start'))")
        .execute(&mut *tx)
        .await?;

    let scan_id = Uuid::new_v4();
    if let Some(active) = db::scans::find_active(&mut *tx).await? {
        if mode != ScanMode::Force {
            return Ok(Requested::Busy { active });
        }
        db::scans::supersede(&mut *tx, active, scan_id).await?;
    }

    let task = DiscoverVaults { job_id: Uuid::new_v4(), scan_id };
    let payload = serde_json::to_value(&task).unwrap_or_default();
    db::scans::insert(&mut *tx, scan_id, mode, Some(requested_by), subscriptions).await?;
    db::jobs::insert(
        &mut *tx,
        task.job_id,
        DISCOVER_VAULTS,
        &scan_id.to_string(),
        Some(scan_id),
        &payload,
    )
    .await?;
    Ok(Requested::Recorded { scan_id, task })
}
