//! The sweeper: pushes again every job row still `queued` after a grace period, because the
//! API's push failed or Redis lost its data. Handlers claim jobs by id, so a job pushed twice
//! runs once.

use std::time::Duration;

use shared::db;
use shared::jobs::{DISCOVER_VAULTS, DiscoverVaults, SCAN_VAULT, ScanVault};

use crate::WorkerState;

/// How long a job may sit queued before it is pushed again.
pub const GRACE: Duration = Duration::from_secs(30);
const EVERY: Duration = Duration::from_secs(15);
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
