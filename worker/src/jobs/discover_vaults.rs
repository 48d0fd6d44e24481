//! `discover_vaults`: the first job of a scan. Lists the subscriptions in scope and their Key
//! Vaults through Resource Manager, records the vaults, and fans out one `scan_vault` job per
//! vault so a pool of workers shares the scan.

use anyhow::Context;
use apalis::prelude::Data;
use serde_json::json;
use shared::jobs::{DISCOVER_VAULTS, DiscoverVaults, SCAN_VAULT, ScanVault};
use shared::{audit, db};
use tracing::Instrument;
use uuid::Uuid;

use super::{HandlerResult, Outcome};
use crate::WorkerState;

/// Runs one `discover_vaults` task.
pub async fn handle(task: DiscoverVaults, state: Data<WorkerState>) -> HandlerResult {
    let span = tracing::info_span!("job", job.kind = "discover_vaults", job.id = %task.job_id,
        scan.id = %task.scan_id);
    let started = std::time::Instant::now();
    let result = run(&task, &state).instrument(span).await;
    super::finish(DISCOVER_VAULTS, started, result)
}

async fn run(task: &DiscoverVaults, state: &WorkerState) -> anyhow::Result<Outcome> {
    let Some(_job) = db::jobs::claim(&state.pool, task.job_id, &state.name).await? else {
        tracing::debug!("job already finished; duplicate delivery ignored");
        return Ok(Outcome::Skipped);
    };
    let mut tx = state.pool.begin().await?;
    if !db::scans::start(&mut tx, task.scan_id, "enumerating_vaults").await? {
        db::jobs::finish(&mut tx, task.job_id, Some("scan was no longer active")).await?;
        tx.commit().await?;
        return Ok(Outcome::Skipped);
    }
    let target = task.scan_id.to_string();
    audit::record(
        &mut tx,
        &state.audit_key,
        &worker_actor(state),
        "discovery.scan.started",
        Some(&target),
        json!({"job": task.job_id}),
    )
    .await?;
    tx.commit().await?;

    match enumerate(task, state).await {
        Ok(pushed) => {
            tracing::info!(vaults = pushed.len(), "scan fanned out");
            for vault_task in pushed {
                if let Err(e) = state.queues.push_scan_vault(vault_task).await {
                    // The job row stays queued; the sweeper pushes it again.
                    tracing::warn!(error = %e, "vault job not enqueued");
                }
            }
            Ok(Outcome::Succeeded)
        }
        Err(e) => {
            let message = format!("{e:#}");
            tracing::warn!(error = %message, "scan failed before reaching any vault");
            let mut tx = state.pool.begin().await?;
            db::scans::fail(&mut tx, task.scan_id, &message).await?;
            db::jobs::finish(&mut tx, task.job_id, Some(&message)).await?;
            audit::record(
                &mut tx,
                &state.audit_key,
                &worker_actor(state),
                "discovery.scan.failed",
                Some(&target),
                json!({"error": message}),
            )
            .await?;
            // A failed scan is news too, for `scan_completed` rules.
            let alerts =
                shared::jobs::record_alert_evaluation(&mut tx, Some(task.scan_id), false).await?;
            tx.commit().await?;
            if let Err(e) = state.queues.push_evaluate_alerts(alerts).await {
                tracing::warn!(error = %e, "alert evaluation recorded but not enqueued");
            }
            Ok(Outcome::Failed)
        }
    }
}

/// Lists vaults, records them and their jobs in one transaction, and returns the tasks to push.
async fn enumerate(task: &DiscoverVaults, state: &WorkerState) -> anyhow::Result<Vec<ScanVault>> {
    let scan = db::scans::get(&state.pool, task.scan_id).await?.context("scan row is missing")?;
    let arm = state.azure.arm()?;

    let visible = arm.list_subscriptions().await.context("listing subscriptions")?;
    let wanted: Vec<String> = match scan.subscriptions {
        Some(list) if !list.is_empty() => list,
        _ => {
            let registered = db::subscriptions::registered_ids(&state.pool).await?;
            if registered.is_empty() {
                visible.iter().map(|s| s.subscription_id.to_ascii_lowercase()).collect()
            } else {
                registered
            }
        }
    };

    let mut vaults = Vec::new();
    for subscription in &wanted {
        let found = arm
            .list_vaults(subscription)
            .await
            .with_context(|| format!("listing the vaults of subscription {subscription}"))?;
        vaults.extend(found.into_iter().filter(|v| v.properties.vault_uri.is_some()));
    }

    let mut tx = state.pool.begin().await?;
    db::subscriptions::upsert_discovered(&mut tx, &visible).await?;
    let stored = db::vaults::upsert_batch(&mut tx, task.scan_id, &vaults).await?;

    let vault_ids: Vec<Uuid> = stored.iter().map(|(id, _)| *id).collect();
    let job_ids: Vec<Uuid> = vault_ids.iter().map(|_| Uuid::new_v4()).collect();
    let tasks: Vec<ScanVault> = vault_ids
        .iter()
        .zip(&job_ids)
        .map(|(vault_id, job_id)| ScanVault {
            job_id: *job_id,
            scan_id: task.scan_id,
            vault_id: *vault_id,
        })
        .collect();
    let subjects: Vec<String> = vault_ids.iter().map(Uuid::to_string).collect();
    let payloads = tasks.iter().map(serde_json::to_value).collect::<Result<Vec<_>, _>>()?;

    db::jobs::insert_many(&mut tx, SCAN_VAULT, Some(task.scan_id), &job_ids, &subjects, &payloads)
        .await?;
    db::scans::add_vaults(&mut tx, task.scan_id, &vault_ids, &job_ids).await?;
    db::scans::set_vault_total(&mut tx, task.scan_id, vault_ids.len() as i32).await?;
    db::jobs::finish(&mut tx, task.job_id, None).await?;
    // With no vault to scan, the scan is finished here, so the alerts hear of it here.
    let alerts = if vault_ids.is_empty() {
        Some(shared::jobs::record_alert_evaluation(&mut tx, Some(task.scan_id), false).await?)
    } else {
        None
    };
    tx.commit().await?;
    if let Some(alerts) = alerts
        && let Err(e) = state.queues.push_evaluate_alerts(alerts).await
    {
        tracing::warn!(error = %e, "alert evaluation recorded but not enqueued");
    }
    Ok(tasks)
}

/// The audit actor of work a worker does on its own.
pub fn worker_actor(state: &WorkerState) -> audit::Actor {
    audit::Actor::system(format!("system:{}", state.name))
}
