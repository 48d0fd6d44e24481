//! `scan_vault`: lists one vault's secrets, keys and certificates (metadata only), writes them
//! in one statement, and adds the vault's outcome to its scan. A vault that fails is recorded
//! with Azure's error code; it does not fail the scan.

use apalis::prelude::Data;
use shared::azure::AzureError;
use shared::azure::keyvault::DiscoveredAsset;
use shared::db;
use shared::db::scans::VaultCounts;
use shared::domain::AssetType;
use shared::jobs::ScanVault;
use tracing::Instrument;

use super::HandlerResult;
use crate::WorkerState;

/// Runs one `scan_vault` task.
pub async fn handle(task: ScanVault, state: Data<WorkerState>) -> HandlerResult {
    let span = tracing::info_span!("job", job.kind = "scan_vault", job.id = %task.job_id,
        scan.id = %task.scan_id, vault.id = %task.vault_id);
    run(&task, &state)
        .instrument(span)
        .await
        .map_err(Into::into)
}

async fn run(task: &ScanVault, state: &WorkerState) -> anyhow::Result<()> {
    let Some(_job) = db::jobs::claim(&state.pool, task.job_id, &state.name).await? else {
        tracing::debug!("job already finished; duplicate delivery ignored");
        return Ok(());
    };
    db::scans::start_vault(&state.pool, task.scan_id, task.vault_id).await?;

    let started = std::time::Instant::now();
    let outcome = match tokio::time::timeout(state.vault_timeout, list_vault(task, state)).await {
        Ok(result) => result,
        Err(_) => Err(AzureError::Transport {
            surface: "Key Vault",
            message: format!("vault scan exceeded {} s", state.vault_timeout.as_secs()),
        }),
    };

    let mut tx = state.pool.begin().await?;
    match outcome {
        Ok(assets) => {
            db::assets::replace_for_vault(&mut tx, task.vault_id, task.scan_id, &assets).await?;
            let counts = count(&assets);
            if db::scans::finish_vault(&mut tx, task.scan_id, task.vault_id, None, counts).await? {
                db::scans::record_vault_outcome(&mut tx, task.scan_id, false, assets.len() as i32)
                    .await?;
            }
            db::jobs::finish(&mut tx, task.job_id, None).await?;
            tracing::info!(
                items = assets.len(),
                duration_ms = started.elapsed().as_millis() as u64,
                "vault scanned"
            );
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
                db::scans::record_vault_outcome(&mut tx, task.scan_id, true, 0).await?;
            }
            db::jobs::finish(&mut tx, task.job_id, Some(&message)).await?;
            tracing::warn!(vault_error = %code, error = %message, "vault could not be scanned");
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn list_vault(
    task: &ScanVault,
    state: &WorkerState,
) -> Result<Vec<DiscoveredAsset>, AzureError> {
    let (_name, uri) = db::vaults::uri_of(&state.pool, task.vault_id)
        .await
        .map_err(|e| AzureError::Config(format!("vault lookup: {e}")))?
        .ok_or_else(|| AzureError::Config("vault row is missing".to_owned()))?;
    let client = state.azure.vault(&uri)?;

    let (secrets, keys, certificates) = tokio::try_join!(
        client.list_secrets(),
        client.list_keys(true),
        client.list_certificates(true),
    )?;
    let mut all = secrets;
    all.extend(keys);
    all.extend(certificates);
    Ok(all)
}

fn count(assets: &[DiscoveredAsset]) -> VaultCounts {
    let of = |t: AssetType| assets.iter().filter(|a| a.asset_type == Some(t)).count() as i32;
    VaultCounts {
        secrets: of(AssetType::Secret),
        keys: of(AssetType::Key),
        certificates: of(AssetType::Certificate),
    }
}
