//! `evaluate_alerts`: records the events every enabled alert rule finds and queues their
//! deliveries (see `shared::alerts::evaluate`). Enqueued after every finished scan (with its
//! id, for `scan_completed` and `vault_error` rules), on the hourly schedule (crossings due to
//! time alone) and by the digest schedule (`digest`: also sends what digest rules collected).

use apalis::prelude::Data;
use shared::alerts::evaluate::{self, Trigger};
use shared::db;
use shared::jobs::{EVALUATE_ALERTS, EvaluateAlerts};
use tracing::Instrument;

use super::{HandlerResult, Outcome};
use crate::WorkerState;

/// Runs one `evaluate_alerts` task.
pub async fn handle(task: EvaluateAlerts, state: Data<WorkerState>) -> HandlerResult {
    let span = tracing::info_span!("job", job.kind = EVALUATE_ALERTS, job.id = %task.job_id);
    let started = std::time::Instant::now();
    let result = run(&task, &state).instrument(span).await;
    super::finish(EVALUATE_ALERTS, started, result)
}

async fn run(task: &EvaluateAlerts, state: &WorkerState) -> anyhow::Result<Outcome> {
    let Some(_job) = db::jobs::claim(&state.pool, task.job_id, &state.name).await? else {
        return Ok(Outcome::Skipped);
    };
    if !db::settings::notifications_enabled(&state.pool).await? {
        let mut tx = state.pool.begin().await?;
        db::jobs::finish(&mut tx, task.job_id, None).await?;
        tx.commit().await?;
        tracing::info!("alert evaluation skipped: notifications are turned off");
        return Ok(Outcome::Skipped);
    }
    let mut tx = state.pool.begin().await?;
    let trigger = Trigger { scan_id: task.scan_id, digest: task.digest };
    let summary = evaluate::run(&mut tx, trigger).await?;
    db::jobs::finish(&mut tx, task.job_id, None).await?;
    tx.commit().await?;
    tracing::info!(
        events = summary.events,
        deliveries = summary.deliveries.len(),
        unroutable = summary.unroutable,
        digest = task.digest,
        "alerts evaluated"
    );
    for delivery in summary.deliveries {
        if let Err(e) = state.queues.push_deliver_alert(delivery).await {
            tracing::warn!(error = %e, "alert delivery recorded but not enqueued; the sweeper will");
        }
    }
    Ok(Outcome::Succeeded)
}
