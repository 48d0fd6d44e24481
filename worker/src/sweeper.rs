//! The sweeper: pushes again every job row still `queued` after a grace period, because the
//! API's push failed or Redis lost its data, and hands back running jobs whose worker stopped
//! beating (apalis usually re-enqueues those itself; this covers a Redis that lost them too).
//! Handlers claim jobs by id, so a job pushed twice runs once.

use std::time::Duration;

use shared::db;
use shared::jobs::{DISCOVER_VAULTS, DiscoverVaults, SCAN_VAULT, ScanVault};

use crate::WorkerState;

/// How long a job may sit queued before it is pushed again.
pub const GRACE: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_secs(15);
/// A worker silent this long is considered dead (it beats every 5 seconds).
pub const WORKER_STALE: Duration = Duration::from_secs(30);
/// Attempts a job gets before an orphaned run fails it for good.
pub const MAX_ATTEMPTS: i32 = 3;
const BATCH: i64 = 500;

/// Runs forever, sweeping every few seconds.
pub async fn run(state: WorkerState) {
    let mut tick = tokio::time::interval(EVERY);
    loop {
        tick.tick().await;
        match sweep(&state, GRACE).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(jobs = n, "re-enqueued jobs that were still queued"),
            Err(e) => tracing::warn!(error = format!("{e:#}"), "sweep failed"),
        }
    }
}

/// One pass over jobs queued for longer than `grace`; returns how many were pushed again.
pub async fn sweep(state: &WorkerState, grace: Duration) -> anyhow::Result<usize> {
    let (requeued, failed) =
        db::jobs::reclaim_orphans(&state.pool, WORKER_STALE.as_secs() as i64, MAX_ATTEMPTS).await?;
    if requeued > 0 || !failed.is_empty() {
        tracing::warn!(requeued, failed = failed.len(), "reclaimed jobs of workers that stopped");
    }
    for job in failed {
        if job.kind == SCAN_VAULT {
            // The vault counts as failed, so its scan can still finish.
            let task: ScanVault = serde_json::from_value(job.payload)?;
            let mut tx = state.pool.begin().await?;
            let error = Some(("worker_lost", "the worker scanning this vault stopped, repeatedly"));
            let counts = db::scans::VaultCounts::default();
            if db::scans::finish_vault(&mut tx, task.scan_id, task.vault_id, error, counts).await? {
                db::scans::record_vault_outcome(&mut tx, task.scan_id, true, 0).await?;
            }
            tx.commit().await?;
        }
    }
    let stale = db::jobs::stale_queued(&state.pool, grace.as_secs() as i64, BATCH).await?;
    let mut pushed = 0;
    for job in stale {
        let result = match job.kind.as_str() {
            DISCOVER_VAULTS => {
                let task: DiscoverVaults = serde_json::from_value(job.payload)?;
                state.queues.push_discover(task).await
            }
            SCAN_VAULT => {
                let task: ScanVault = serde_json::from_value(job.payload)?;
                state.queues.push_scan_vault(task).await
            }
            shared::jobs::EVALUATE_COMPLIANCE => {
                let task: shared::jobs::EvaluateCompliance = serde_json::from_value(job.payload)?;
                state.queues.push_evaluate(task).await
            }
            shared::jobs::EVALUATE_ALERTS => {
                let task: shared::jobs::EvaluateAlerts = serde_json::from_value(job.payload)?;
                state.queues.push_evaluate_alerts(task).await
            }
            shared::jobs::DELIVER_ALERT => {
                let task: shared::jobs::DeliverAlert = serde_json::from_value(job.payload)?;
                state.queues.push_deliver_alert(task).await
            }
            other => {
                tracing::warn!(job.id = %job.id, job.kind = other, "queued job of unknown kind");
                continue;
            }
        };
        result?;
        pushed += 1;
    }
    Ok(pushed)
}
