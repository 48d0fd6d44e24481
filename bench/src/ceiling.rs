//! The ceiling: a minimal Key Vault lister over reqwest that does the product's full-scan work
//! (tokens, subscriptions and vaults through Resource Manager, every list page of secrets, keys
//! and certificates, a get of every key and certificate) as fast as it can, and writes nothing.
//!
//! It parses only what it needs from the JSON; the gap between this and the product is what
//! the product spends on the SDK, X.509 parsing, Postgres and the queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::infra::Cloudsim;

/// Vaults listed at once.
const VAULT_CONCURRENCY: usize = 32;
/// Detail gets at once within one vault.
const DETAIL_CONCURRENCY: usize = 8;
const KV_API: &str = "7.5";

/// One ceiling run.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CeilingFigure {
    pub latency_ms: u64,
    pub vaults: usize,
    pub assets: u64,
    pub wall_seconds: f64,
    pub assets_per_second: f64,
    pub requests: Value,
    pub vault_concurrency: usize,
    pub detail_concurrency: usize,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    value: Vec<Value>,
    #[serde(rename = "nextLink")]
    next_link: Option<String>,
}

struct Lister {
    http: reqwest::Client,
    vault_token: String,
    assets: AtomicU64,
}

/// Lists the tenant of `sim` with added vault latency `latency_ms`.
pub async fn run(sim: &Cloudsim, latency_ms: u64) -> anyhow::Result<CeilingFigure> {
    sim.set_vault_latency(latency_ms).await?;
    sim.reset_requests().await?;
    let http = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&sim.ca_pem)?)
        .pool_max_idle_per_host(DETAIL_CONCURRENCY * 2)
        .build()?;
    let env = |k: &str| sim.env.get(k).cloned().with_context(|| format!("{k} in cloud.env"));
    let started = Instant::now();

    let arm_token = token(&http, sim, "https://management.azure.com/.default").await?;
    let vault_token = token(&http, sim, "https://vault.azure.net/.default").await?;
    let arm = env("AZURE_RESOURCE_MANAGER_ENDPOINT")?;
    let arm = arm.trim_end_matches('/');
    let subs =
        list_all(&http, &arm_token, format!("{arm}/subscriptions?api-version=2022-12-01")).await?;
    let mut vault_uris = Vec::new();
    for sub in subs {
        let id = sub["subscriptionId"].as_str().context("subscriptionId")?;
        let url = format!(
            "{arm}/subscriptions/{id}/providers/Microsoft.KeyVault/vaults?api-version=2023-07-01"
        );
        for vault in list_all(&http, &arm_token, url).await? {
            let uri = vault["properties"]["vaultUri"].as_str().context("vaultUri")?;
            vault_uris.push(uri.trim_end_matches('/').to_owned());
        }
    }

    let lister = Arc::new(Lister { http, vault_token, assets: AtomicU64::new(0) });
    let vaults = vault_uris.len();
    futures::stream::iter(vault_uris.into_iter().map(|uri| {
        let lister = lister.clone();
        async move { lister.vault(&uri).await }
    }))
    .buffer_unordered(VAULT_CONCURRENCY)
    .try_collect::<Vec<()>>()
    .await?;
    let wall = started.elapsed().as_secs_f64();
    let assets = lister.assets.load(Ordering::Relaxed);
    let requests = sim.requests().await?;
    sim.set_vault_latency(0).await?;

    Ok(CeilingFigure {
        latency_ms,
        vaults,
        assets,
        wall_seconds: wall,
        assets_per_second: assets as f64 / wall,
        requests,
        vault_concurrency: VAULT_CONCURRENCY,
        detail_concurrency: DETAIL_CONCURRENCY,
    })
}

async fn token(http: &reqwest::Client, sim: &Cloudsim, scope: &str) -> anyhow::Result<String> {
    let get = |k: &str| sim.env.get(k).cloned().with_context(|| format!("{k} in cloud.env"));
    let authority = get("AZURE_AUTHORITY_HOST")?;
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        authority.trim_end_matches('/'),
        get("AZURE_TENANT_ID")?
    );
    let form = [
        ("grant_type", "client_credentials".to_owned()),
        ("client_id", get("AZURE_CLIENT_ID")?),
        ("client_secret", get("AZURE_CLIENT_SECRET")?),
        ("scope", scope.to_owned()),
    ];
    let body: Value = http.post(url).form(&form).send().await?.error_for_status()?.json().await?;
    Ok(body["access_token"].as_str().context("access_token")?.to_owned())
}

/// Follows `nextLink` to the end (pages may be empty while a `nextLink` continues).
async fn list_all(
    http: &reqwest::Client,
    token: &str,
    first: String,
) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut next = Some(first);
    while let Some(url) = next {
        let page: Page =
            http.get(url).bearer_auth(token).send().await?.error_for_status()?.json().await?;
        items.extend(page.value);
        next = page.next_link.filter(|l| !l.is_empty());
    }
    Ok(items)
}

impl Lister {
    async fn vault(&self, uri: &str) -> anyhow::Result<()> {
        let list = |kind: &str| {
            let url = format!("{uri}/{kind}?api-version={KV_API}&maxresults=25");
            list_all(&self.http, &self.vault_token, url)
        };
        let (secrets, keys, certificates) =
            tokio::try_join!(list("secrets"), list("keys"), list("certificates"))?;
        let unmanaged = |items: Vec<Value>| -> Vec<Value> {
            items.into_iter().filter(|i| i["managed"].as_bool() != Some(true)).collect()
        };
        let secrets = unmanaged(secrets).len() as u64;
        let keys = unmanaged(keys);
        let details: Vec<String> = keys
            .iter()
            .chain(certificates.iter())
            // Key list items carry `kid`, certificate list items `id`.
            .filter_map(|item| item["kid"].as_str().or(item["id"].as_str()).map(str::to_owned))
            .collect();
        let fetched = futures::stream::iter(details.into_iter().map(|id| async move {
            let url = format!("{id}?api-version={KV_API}");
            let response = self.http.get(url).bearer_auth(&self.vault_token).send().await?;
            let body: Value = response.error_for_status()?.json().await?;
            anyhow::Ok(u64::from(body.is_object()))
        }))
        .buffer_unordered(DETAIL_CONCURRENCY)
        .try_fold(0, |n, one| async move { Ok(n + one) })
        .await?;
        self.assets.fetch_add(secrets + fetched, Ordering::Relaxed);
        Ok(())
    }
}
