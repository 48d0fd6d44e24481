//! The Rust SDK's `ManagedIdentityCredential` (App Service flavour) against cloudsim's
//! identity endpoint, then a Key Vault read with that token. The credential reads
//! `IDENTITY_ENDPOINT` / `IDENTITY_HEADER` from the process environment, so the test re-runs
//! itself (this test binary, this test only) as a child with those variables set instead of
//! changing its own environment under other running tests. The child does the reading.

use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use azure_core::credentials::TokenCredential;
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{ManagedIdentityCredential, ManagedIdentityCredentialOptions};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};

use crate::harness::Sim;

const SELF: &str = "managed_identity::the_rust_managed_identity_credential_gets_tokens_from_the_app_service_endpoint";

#[tokio::test]
async fn the_rust_managed_identity_credential_gets_tokens_from_the_app_service_endpoint()
-> Result<()> {
    if std::env::var_os("CLOUDSIM_TEST_CA").is_some() {
        return read_a_vault_as_the_managed_identity().await;
    }
    let sim = Sim::start().await?;
    let vault = sim.vault_uri("kv-prod-web").await?;
    let out = std::process::Command::new(std::env::current_exe()?)
        .args(["--exact", SELF, "--nocapture"])
        .env("IDENTITY_ENDPOINT", sim.env("CLOUDSIM_IDENTITY_ENDPOINT")?)
        .env("IDENTITY_HEADER", sim.env("CLOUDSIM_IDENTITY_HEADER")?)
        .env("CLOUDSIM_TEST_CA", sim.env("AZURE_CA_BUNDLE")?)
        .env("CLOUDSIM_TEST_VAULT", &vault)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success() && stdout.contains("1 passed"),
        "child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (_, _, log) = sim.get("/_sim/requests/log?target=identity", None).await?;
    let hits = log.as_array().context("log")?;
    ensure!(hits.iter().any(|e| e["path"] == "/msi/token" && e["status"] == 200), "{log}");

    Ok(())
}

/// The child's part: the identity variables are set in its environment.
async fn read_a_vault_as_the_managed_identity() -> Result<()> {
    let ca = std::env::var("CLOUDSIM_TEST_CA")?;
    let vault = std::env::var("CLOUDSIM_TEST_VAULT")?;
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&std::fs::read(ca)?)?])
        .build()?;
    let options = || ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        ..Default::default()
    };
    let credential: Arc<dyn TokenCredential> =
        ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
            client_options: options(),
            ..Default::default()
        }))?;
    let token = credential.get_token(&["https://vault.azure.net/.default"], None).await?;
    ensure!(token.expires_on > time::OffsetDateTime::now_utc(), "expiry in the past");

    let secrets = SecretClient::new(
        &vault,
        credential,
        Some(SecretClientOptions {
            client_options: options(),
            verify_challenge_resource: Some(false),
            ..Default::default()
        }),
    )?;
    let secret = secrets.get_secret("cdn-origin-token", None).await?.into_model()?;
    ensure!(secret.value.is_some_and(|v| !v.is_empty()));

    Ok(())
}
