//! The default scenario's resources that reference Key Vault (sites, Container Apps, API
//! Management, Application Gateways): every reference names a secret that exists in a default
//! vault, except the few that are dangling (or disabled) on purpose.

use std::collections::BTreeSet;

use anyhow::{Context, Result, ensure};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::Sim;

const ARM_SCOPE: &str = "https://management.azure.com/.default";
const PROD: &str = "0b7f4c2e-6d1a-4e3b-9f5c-2a8d7e6b1c01";
const STAGING: &str = "4c1e9a7d-2b3f-4d6e-8a5b-9c0d1e2f3a02";

async fn post(sim: &Sim, path: &str, token: &str, body: &Value) -> Result<Value> {
    let resp =
        sim.http.post(format!("{}{path}", sim.url)).bearer_auth(token).json(body).send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    ensure!(status == StatusCode::OK, "POST {path}: {status} {text}");
    Ok(serde_json::from_str(&text)?)
}

/// (vault URI or name, secret, version) of a secret URI or an app-setting reference.
fn parse_reference(text: &str) -> Option<(String, String, Option<String>)> {
    let inner = text.strip_prefix("@Microsoft.KeyVault(").and_then(|t| t.strip_suffix(')'));
    match inner {
        Some(r) if r.starts_with("SecretUri=") => parse_reference(&r["SecretUri=".len()..]),
        Some(r) => {
            let field = |k: &str| {
                r.split(';').find_map(|p| p.strip_prefix(&format!("{k}=")).map(str::to_string))
            };
            Some((field("VaultName")?, field("SecretName")?, field("SecretVersion")))
        }
        None => {
            let (base, rest) = text.split_once("/secrets/")?;
            let mut parts = rest.split('/');
            let name = parts.next()?.to_string();
            let version = parts.next().filter(|v| !v.is_empty()).map(str::to_string);
            Some((base.to_string(), name, version))
        }
    }
}

#[tokio::test]
async fn default_scenario_vault_references_resolve_except_the_dangling_ones() -> Result<()> {
    let sim = Sim::start().await?;
    let arm = sim.token(ARM_SCOPE).await?;
    let kv = sim.token("https://vault.azure.net/.default").await?;
    let mut refs = Vec::new();

    let query = "Resources | where type in~ ('microsoft.web/sites', 'microsoft.app/containerapps', \
                 'microsoft.apimanagement/service', 'microsoft.network/applicationgateways')";
    let rg_api = "/providers/Microsoft.ResourceGraph/resources?api-version=2022-10-01";
    let rows = post(&sim, rg_api, &arm, &json!({"query": query, "subscriptions": [PROD, STAGING]}))
        .await?;
    ensure!(rows["totalRecords"] == 9, "{rows}");
    for row in rows["data"].as_array().context("data")? {
        let id = row["id"].as_str().context("id")?;
        match row["type"].as_str().context("type")? {
            "microsoft.web/sites" => {
                let settings = post(
                    &sim,
                    &format!("{id}/config/appsettings/list?api-version=2023-12-01"),
                    &arm,
                    &json!({}),
                )
                .await?;
                for v in settings["properties"].as_object().context("properties")?.values() {
                    let v = v.as_str().context("setting")?;
                    if v.starts_with("@Microsoft.KeyVault(") {
                        refs.push(parse_reference(v).context("reference")?);
                    }
                }
            }
            "microsoft.app/containerapps" => {
                for s in
                    row["properties"]["configuration"]["secrets"].as_array().context("secrets")?
                {
                    if let Some(u) = s["keyVaultUrl"].as_str() {
                        refs.push(parse_reference(u).context("keyVaultUrl")?);
                    }
                }
            }
            "microsoft.network/applicationgateways" => {
                for c in row["properties"]["sslCertificates"].as_array().context("certs")? {
                    let u = c["properties"]["keyVaultSecretId"].as_str().context("secret id")?;
                    refs.push(parse_reference(u).context("keyVaultSecretId")?);
                }
            }
            _ => {
                let (status, _, values) = sim
                    .get(&format!("{id}/namedValues?api-version=2022-08-01"), Some(&arm))
                    .await?;
                ensure!(status == StatusCode::OK, "{values}");
                for nv in values["value"].as_array().context("value")? {
                    if let Some(u) = nv["properties"]["keyVault"]["secretIdentifier"].as_str() {
                        refs.push(parse_reference(u).context("secretIdentifier")?);
                    }
                }
            }
        }
    }
    ensure!(refs.len() >= 15, "only {} references", refs.len());

    let vaults = sim.vaults().await?;
    let mut dangling = BTreeSet::new();
    let mut disabled = BTreeSet::new();
    for (vault, secret, version) in &refs {
        let base = if vault.starts_with("https://") {
            vault.clone()
        } else {
            let found = vaults.iter().find(|v| v["name"] == vault.as_str());
            found
                .and_then(|v| v["vaultUri"].as_str())
                .unwrap_or("")
                .trim_end_matches('/')
                .to_string()
        };
        if !base.starts_with("https://127.0.0.1:") {
            dangling.insert(format!("{vault}/{secret}"));
            continue;
        }
        let url =
            format!("{base}/secrets/{secret}/{}?api-version=7.5", version.as_deref().unwrap_or(""));
        let (status, _, body) = sim.get(&url, Some(&kv)).await?;
        match status {
            StatusCode::OK => ensure!(body["value"].is_string(), "{url}: {body}"),
            StatusCode::NOT_FOUND => {
                dangling.insert(format!("{vault}/{secret}"));
            }
            StatusCode::FORBIDDEN if body["error"]["innererror"]["code"] == "SecretDisabled" => {
                disabled.insert(secret.clone());
            }
            other => anyhow::bail!("{url}: {other} {body}"),
        }
    }
    let expected: BTreeSet<String> = [
        "https://kv-prod-legacy.vault.azure.net/partner-key".to_string(),
        format!(
            "{}/session-key-retired",
            sim.vault_uri("kv-prod-web").await?.trim_end_matches('/')
        ),
    ]
    .into();
    ensure!(dangling == expected, "dangling references: {dangling:?}");
    ensure!(disabled == ["legacy-ftp-password".to_string()].into(), "disabled: {disabled:?}");

    Ok(())
}
