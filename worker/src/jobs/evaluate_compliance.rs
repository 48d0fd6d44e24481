//! `evaluate_compliance`: runs every compliance rule over the inventory (set-based SQL), opens,
//! refreshes and resolves violations, and records the score. Enqueued after every finished scan
//! and by `POST /compliance/evaluate`.

use apalis::prelude::Data;
use serde_json::json;
use shared::jobs::{EVALUATE_COMPLIANCE, EvaluateCompliance};
use shared::{audit, compliance, db};
use tracing::Instrument;

use super::discover_vaults::worker_actor;
use super::{HandlerResult, Outcome};
use crate::WorkerState;

/// Runs one `evaluate_compliance` task.
pub async fn handle(task: EvaluateCompliance, state: Data<WorkerState>) -> HandlerResult {
    let span = tracing::info_span!("job", job.kind = EVALUATE_COMPLIANCE, job.id = %task.job_id);
    let started = std::time::Instant::now();
    let result = run(&task, &state).instrument(span).await;
    super::finish(EVALUATE_COMPLIANCE, started, result)
}

async fn run(task: &EvaluateCompliance, state: &WorkerState) -> anyhow::Result<Outcome> {
    let Some(_job) = db::jobs::claim(&state.pool, task.job_id, &state.name).await? else {
        return Ok(Outcome::Skipped);
    };
    let thresholds = db::settings::expiry_thresholds(&state.pool).await?;
    let mut tx = state.pool.begin().await?;
    // One evaluation at a time: concurrent ones would race on the open violations.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('certifyclouds:compliance'))")
        .execute(&mut *tx)
        .await?;
    let summary = compliance::evaluate::run(&mut tx, thresholds).await?;
    let details =
        json!({"total": summary.total, "passed": summary.passed, "failed": summary.failed});
    audit::record(
        &mut tx,
        &state.audit_key,
        &worker_actor(state),
        "compliance.evaluated",
        None,
        details,
    )
    .await?;
    db::jobs::finish(&mut tx, task.job_id, None).await?;
    tx.commit().await?;
    tracing::info!(total = summary.total, failed = summary.failed, "compliance evaluated");
    Ok(Outcome::Succeeded)
}
