//! `scan_vault`: lists one vault's secrets, keys and certificates (metadata only), writes them
//! in one statement, and adds the vault's outcome to its scan. A vault that fails is recorded
//! with Azure's error code; it does not fail the scan.
//!
//! Modes: `full` and `force` fetch details of every key and certificate and write every item;
//! `delta` lists everything but fetches details and writes rows only for items whose `updated`
//! time, thumbprint, enabled flag or expiry changed since the last scan.

use std::collections::HashMap;

use apalis::prelude::Data;
use serde_json::json;
use shared::azure::AzureError;
use shared::azure::keyvault::{DiscoveredAsset, VaultClient};
use shared::db::assets::Fingerprint;
use shared::db::scans::VaultCounts;
use shared::domain::{AssetType, ScanMode};
use shared::jobs::{SCAN_VAULT, ScanVault};
use shared::{audit, db};
use tracing::Instrument;
use uuid::Uuid;

use super::discover_vaults::worker_actor;
use super::{HandlerResult, Outcome};
use crate::WorkerState;

/// Runs one `scan_vault` task.
pub async fn handle(task: ScanVault, state: Data<WorkerState>) -> HandlerResult {
    let span = tracing::info_span!("job", job.kind = "scan_vault", job.id = %task.job_id,
        scan.id = %task.scan_id, vault.id = %task.vault_id);
    let started = std::time::Instant::now();
    let result = run(&task, &state).instrument(span).await;
    super::finish(SCAN_VAULT, started, result)
}

/// What one vault scan found and what it needs to write.
struct VaultScan {
    /// Everything the vault lists (for counts and deletion marks).
    listed: Vec<DiscoveredAsset>,
    /// In delta mode, only the items to write (the changed ones); `None` writes all of them.
    changed: Option<Vec<DiscoveredAsset>>,
}

impl VaultScan {
    fn to_write(&self) -> &[DiscoveredAsset] {
        self.changed.as_deref().unwrap_or(&self.listed)
    }
}

async fn run(task: &ScanVault, state: &WorkerState) -> anyhow::Result<Outcome> {
    let Some(_job) = db::jobs::claim(&state.pool, task.job_id, &state.name).await? else {
        tracing::debug!("job already finished or cancelled; delivery ignored");
        return Ok(Outcome::Skipped);
    };
    // The live `discoveryMaxWorkers` limit, below the apalis ceiling.
    let _permit = state.live.limiter.acquire().await;
    let Some(scan) = db::scans::get(&state.pool, task.scan_id).await? else {
        anyhow::bail!("scan row is missing");
    };
    let mode: ScanMode = scan.mode.parse()?;
    db::scans::start_vault(&state.pool, task.scan_id, task.vault_id).await?;

    let started = std::time::Instant::now();
    let outcome = match tokio::time::timeout(
        state.live.vault_timeout(),
        scan_vault(task.vault_id, state, mode),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(AzureError::Timeout { seconds: state.live.vault_timeout().as_secs() }),
    };

    let mut tx = state.pool.begin().await?;
    db::assets::plan_for_current_size(&mut tx).await?;
    let mut scan_status = None;
    let result = match outcome {
        Ok(found) => {
            let written =
                db::assets::upsert_batch(&mut tx, task.vault_id, task.scan_id, found.to_write())
                    .await?;
            db::assets::mark_missing(&mut tx, task.vault_id, &found.listed).await?;
            let counts = count(&found.listed, written as i32);
            let items = found.listed.len() as i32;
            if db::scans::finish_vault(&mut tx, task.scan_id, task.vault_id, None, counts).await? {
                scan_status =
                    db::scans::record_vault_outcome(&mut tx, task.scan_id, false, items).await?;
            }
            db::jobs::finish(&mut tx, task.job_id, None).await?;
            tracing::info!(items, written, mode = %mode,
                duration_ms = started.elapsed().as_millis() as u64, "vault scanned");
            Outcome::Succeeded
        }
        Err(error) => {
            let code = error.code();
            let message = error.to_string();
            let recorded = db::scans::finish_vault(
                &mut tx,
                task.scan_id,
                task.vault_id,
                Some((&code, &message)),
                VaultCounts::default(),
            )
            .await?;
            if recorded {
                scan_status =
                    db::scans::record_vault_outcome(&mut tx, task.scan_id, true, 0).await?;
                let target = task.vault_id.to_string();
                let details = json!({"scan": task.scan_id, "code": code, "error": message});
                audit::record(
                    &mut tx,
                    &state.audit_key,
                    &worker_actor(state),
                    "discovery.vault.failed",
                    Some(&target),
                    details,
                )
                .await?;
            }
            db::jobs::finish(&mut tx, task.job_id, Some(&message)).await?;
            tracing::warn!(vault_error = %code, error = %message, "vault could not be scanned");
            Outcome::Failed
        }
    };
    let mut evaluation = None;
    let mut alerts = None;
    if let Some(status) = scan_status.as_deref().filter(|s| *s != "running") {
        // A finished scan is followed by a compliance evaluation of the new inventory and an
        // alert evaluation that knows which scan finished.
        evaluation = Some(shared::jobs::record_evaluation(&mut tx).await?);
        alerts =
            Some(shared::jobs::record_alert_evaluation(&mut tx, Some(task.scan_id), false).await?);
        let target = task.scan_id.to_string();
        audit::record(
            &mut tx,
            &state.audit_key,
            &worker_actor(state),
            "discovery.scan.completed",
            Some(&target),
            json!({"status": status}),
        )
        .await?;
    }
    tx.commit().await?;

    if let Some(evaluation) = evaluation
        && let Err(e) = state.queues.push_evaluate(evaluation).await
    {
        tracing::warn!(error = %e, "compliance evaluation recorded but not enqueued");
    }
    if let Some(alerts) = alerts
        && let Err(e) = state.queues.push_evaluate_alerts(alerts).await
    {
        tracing::warn!(error = %e, "alert evaluation recorded but not enqueued");
    }
    if scan_status.as_deref().is_some_and(|s| s != "running") {
        record_finished_scan(state, task.scan_id).await?;
    }
    Ok(result)
}

/// Records the duration and size of a scan this job finished.
async fn record_finished_scan(state: &WorkerState, scan_id: Uuid) -> anyhow::Result<()> {
    let Some(scan) = db::scans::get(&state.pool, scan_id).await? else {
        return Ok(());
    };
    if let (Some(started), Some(finished)) = (scan.started_at, scan.finished_at) {
        let seconds = (finished - started).num_milliseconds() as f64 / 1000.0;
        metrics::histogram!(shared::metrics::SCAN_DURATION, "mode" => scan.mode.clone(),
            "status" => scan.status.clone())
        .record(seconds);
    }
    metrics::histogram!(shared::metrics::SCAN_ITEMS, "mode" => scan.mode.clone())
        .record(f64::from(scan.items_found));
    tracing::info!(status = %scan.status, items = scan.items_found, vaults = scan.vaults_total,
        "scan finished");
    Ok(())
}

async fn scan_vault(
    vault_id: Uuid,
    state: &WorkerState,
    mode: ScanMode,
) -> Result<VaultScan, AzureError> {
    let (_name, uri) = db::vaults::uri_of(&state.pool, vault_id)
        .await
        .map_err(|e| AzureError::Config(format!("vault lookup: {e}")))?
        .ok_or_else(|| AzureError::Config("vault row is missing".to_owned()))?;
    let client = state.azure.vault(&uri)?;

    match mode {
        ScanMode::Full | ScanMode::Force => {
            let (secrets, keys, certificates) = tokio::try_join!(
                client.list_secrets(),
                client.list_keys(true),
                client.list_certificates(true),
            )?;
            let mut all = secrets;
            all.extend(keys);
            all.extend(certificates);
            Ok(VaultScan { listed: all, changed: None })
        }
        ScanMode::Delta => {
            let known = db::assets::fingerprints(&state.pool, vault_id)
                .await
                .map_err(|e| AzureError::Config(format!("reading the last scan: {e}")))?;
            delta(&client, known).await
        }
    }
}

/// Lists without details, then fetches details only for what changed.
async fn delta(client: &VaultClient, known: Vec<Fingerprint>) -> Result<VaultScan, AzureError> {
    let known: HashMap<(String, String), Fingerprint> =
        known.into_iter().map(|f| ((f.asset_type.clone(), f.name.clone()), f)).collect();
    let changed = |a: &DiscoveredAsset| {
        let key =
            (a.asset_type.map(AssetType::as_str).unwrap_or_default().to_owned(), a.name.clone());
        match known.get(&key) {
            None => true,
            Some(f) => {
                f.updated_on != a.updated_on
                    || f.enabled != a.enabled
                    || f.expires_on != a.expires_on
                    || (a.thumbprint.is_some() && f.thumbprint != a.thumbprint)
            }
        }
    };

    let (secrets, keys, certificates) = tokio::try_join!(
        client.list_secrets(),
        client.list_keys(false),
        client.list_certificates(false),
    )?;
    let (new_keys, same_keys): (Vec<_>, Vec<_>) = keys.into_iter().partition(|a| changed(a));
    let (new_certs, same_certs): (Vec<_>, Vec<_>) =
        certificates.into_iter().partition(|a| changed(a));
    let (new_keys, new_certs) = tokio::try_join!(
        client.with_key_details(new_keys),
        client.with_certificate_details(new_certs),
    )?;

    let mut changed_items: Vec<DiscoveredAsset> =
        secrets.iter().filter(|a| changed(a)).cloned().collect();
    changed_items.extend(new_keys.iter().cloned());
    changed_items.extend(new_certs.iter().cloned());

    let mut listed = secrets;
    listed.extend(new_keys);
    listed.extend(same_keys);
    listed.extend(new_certs);
    listed.extend(same_certs);
    Ok(VaultScan { listed, changed: Some(changed_items) })
}

fn count(assets: &[DiscoveredAsset], written: i32) -> VaultCounts {
    let of = |t: AssetType| assets.iter().filter(|a| a.asset_type == Some(t)).count() as i32;
    VaultCounts {
        secrets: of(AssetType::Secret),
        keys: of(AssetType::Key),
        certificates: of(AssetType::Certificate),
        written,
    }
}
