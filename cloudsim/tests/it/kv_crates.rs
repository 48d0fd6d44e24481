//! The Key Vault crates the product uses (azure_security_keyvault_* with azure_identity)
//! drive every data-plane write against cloudsim: a new secret version, properties and tags,
//! delete, list deleted, recover, purge; create and rotate a key; create a certificate through
//! the SDK's poller. Each step is checked by reading back and in cloudsim's request log.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result, ensure};
use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, StatusCode as SdkStatus, Transport};
use azure_identity::{ClientSecretCredential, ClientSecretCredentialOptions};
use azure_security_keyvault_certificates::models::{
    CertificateClientCreateCertificateOptions, CertificatePolicy, CreateCertificateParameters,
    IssuerParameters, X509CertificateProperties,
};
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::models::{CreateKeyParameters, KeyType};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use azure_security_keyvault_secrets::models::{
    SecretAttributes, SetSecretParameters, UpdateSecretPropertiesParameters,
};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use futures::TryStreamExt;
use serde_json::json;

use crate::harness::Sim;

const VAULT: &str = "kv-rust-writes";

/// SDK options with a transport that trusts cloudsim's CA and cloudsim as the authority.
fn client_options(sim: &Sim) -> Result<ClientOptions> {
    let pem = std::fs::read(sim.env("AZURE_CA_BUNDLE")?)?;
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem)?])
        .build()?;
    let mut custom = CustomConfiguration::default();
    custom.authority_host = sim.env("AZURE_AUTHORITY_HOST")?.trim_end_matches('/').to_string();
    Ok(ClientOptions {
        transport: Some(Transport::new(Arc::new(http))),
        cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
        ..Default::default()
    })
}

fn version_of(id: Option<&String>) -> Result<String> {
    let id = id.context("no id")?;
    Ok(id.rsplit('/').next().context("no version")?.to_string())
}

/// (method, path, status) of the vault's logged requests, oldest first.
async fn vault_log(sim: &Sim) -> Result<Vec<(String, String, u64)>> {
    let (_, _, log) = sim.get(&format!("/_sim/requests/log?target=vault:{VAULT}"), None).await?;
    Ok(log
        .as_array()
        .context("log")?
        .iter()
        .filter(|e| e["status"] != 401)
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap_or("").to_string();
            (s("method"), s("path"), e["status"].as_u64().unwrap_or(0))
        })
        .collect())
}

#[tokio::test]
async fn the_key_vault_crates_write_secrets_keys_and_certificates() -> Result<()> {
    let sim = Sim::start().await?;
    let added = sim
        .http
        .post(format!("{}/_sim/vaults", sim.url))
        .json(&json!({"name": VAULT, "softDelete": true, "purgeProtection": false}))
        .send()
        .await?;
    ensure!(added.status() == 201, "adding the vault: {}", added.text().await?);
    let vault_uri = sim.vault_uri(VAULT).await?;

    let credential: Arc<dyn TokenCredential> = ClientSecretCredential::new(
        sim.env("AZURE_TENANT_ID")?,
        sim.env("AZURE_CLIENT_ID")?.to_string(),
        Secret::new(sim.env("AZURE_CLIENT_SECRET")?.to_string()),
        Some(ClientSecretCredentialOptions { client_options: client_options(&sim)? }),
    )?;
    let secrets = SecretClient::new(
        &vault_uri,
        credential.clone(),
        Some(SecretClientOptions {
            client_options: client_options(&sim)?,
            verify_challenge_resource: Some(false),
            ..Default::default()
        }),
    )?;

    // Two sets make two versions; the latest wins a get.
    let mut versions = Vec::new();
    for value in ["first-value", "second-value"] {
        let params = SetSecretParameters { value: Some(value.into()), ..Default::default() };
        let set =
            secrets.set_secret("rust-secret", params.try_into()?, None).await?.into_model()?;
        versions.push(version_of(set.id.as_ref())?);
    }
    ensure!(versions[0] != versions[1], "set did not make a new version: {versions:?}");
    let got = secrets.get_secret("rust-secret", None).await?.into_model()?;
    ensure!(got.value.as_deref() == Some("second-value"));
    ensure!(version_of(got.id.as_ref())? == versions[1]);

    // Properties and tags.
    let expires =
        time::OffsetDateTime::from_unix_timestamp(chrono::Utc::now().timestamp() + 86_400 * 30)?
            .replace_nanosecond(0)?;
    let update = UpdateSecretPropertiesParameters {
        content_type: Some("text/plain".into()),
        tags: Some(HashMap::from([("owner".to_string(), "rust".to_string())])),
        secret_attributes: Some(SecretAttributes { expires: Some(expires), ..Default::default() }),
    };
    secrets.update_secret_properties("rust-secret", update.try_into()?, None).await?;
    let got = secrets.get_secret("rust-secret", None).await?.into_model()?;
    ensure!(got.tags.as_ref().and_then(|t| t.get("owner")).map(String::as_str) == Some("rust"));
    ensure!(got.content_type.as_deref() == Some("text/plain"));
    ensure!(got.attributes.as_ref().and_then(|a| a.expires) == Some(expires));

    // Delete, list deleted, recover.
    let deleted = secrets.delete_secret("rust-secret", None).await?.into_model()?;
    ensure!(deleted.recovery_id.is_some(), "soft delete gives a recovery id");
    let err = secrets.get_secret("rust-secret", None).await.err().context("deleted secret read")?;
    ensure!(err.http_status() == Some(SdkStatus::NotFound), "{err}");
    let mut listed = Vec::new();
    let mut pager = secrets.list_deleted_secret_properties(None)?;
    while let Some(item) = pager.try_next().await? {
        listed.push(item.id.unwrap_or_default());
    }
    ensure!(listed.iter().any(|id| id.ends_with("/rust-secret")), "{listed:?}");
    secrets.recover_deleted_secret("rust-secret", None).await?;
    let back = secrets.get_secret("rust-secret", None).await?.into_model()?;
    ensure!(back.value.as_deref() == Some("second-value"));

    // Delete again and purge: gone from the deleted list too.
    secrets.delete_secret("rust-secret", None).await?;
    secrets.purge_deleted_secret("rust-secret", None).await?;
    let err = secrets.get_deleted_secret("rust-secret", None).await.err().context("purged")?;
    ensure!(err.http_status() == Some(SdkStatus::NotFound), "{err}");

    // Keys: create, then rotate to a new version.
    let keys = KeyClient::new(
        &vault_uri,
        credential.clone(),
        Some(KeyClientOptions {
            client_options: client_options(&sim)?,
            verify_challenge_resource: Some(false),
            ..Default::default()
        }),
    )?;
    let params =
        CreateKeyParameters { kty: Some(KeyType::Rsa), key_size: Some(2048), ..Default::default() };
    let created = keys.create_key("rust-key", params.try_into()?, None).await?.into_model()?;
    let first = version_of(created.key.as_ref().and_then(|k| k.kid.as_ref()))?;
    let rotated = keys.rotate_key("rust-key", None).await?.into_model()?;
    let second = version_of(rotated.key.as_ref().and_then(|k| k.kid.as_ref()))?;
    ensure!(first != second, "rotation kept the version");
    let current = keys.get_key("rust-key", None).await?.into_model()?;
    ensure!(version_of(current.key.as_ref().and_then(|k| k.kid.as_ref()))? == second);

    // Certificates: a self-signed one through the SDK's poller.
    let certificates = CertificateClient::new(
        &vault_uri,
        credential,
        Some(CertificateClientOptions {
            client_options: client_options(&sim)?,
            verify_challenge_resource: Some(false),
            ..Default::default()
        }),
    )?;
    let policy = CertificatePolicy {
        x509_certificate_properties: Some(X509CertificateProperties {
            subject: Some("CN=rust.contoso.com".into()),
            validity_in_months: Some(12),
            ..Default::default()
        }),
        issuer_parameters: Some(IssuerParameters {
            name: Some("Self".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let body =
        CreateCertificateParameters { certificate_policy: Some(policy), ..Default::default() };
    let mut options = CertificateClientCreateCertificateOptions::default();
    options.method_options.frequency = azure_core::time::Duration::seconds(1);
    let cert = certificates
        .begin_create_certificate("rust-cert", body.try_into()?, Some(options))?
        .await?
        .into_model()?;
    let der = cert.cer.context("no cer")?;
    let (_, parsed) = x509_parser::parse_x509_certificate(&der)?;
    ensure!(parsed.subject().to_string().contains("CN=rust.contoso.com"), "{}", parsed.subject());

    // The request log shows each write the crates made, with a success status.
    let log = vault_log(&sim).await?;
    let expect = [
        ("PUT", "/secrets/rust-secret", 200),
        ("PATCH", "/secrets/rust-secret/", 200),
        ("DELETE", "/secrets/rust-secret", 200),
        ("GET", "/deletedsecrets", 200),
        ("POST", "/deletedsecrets/rust-secret/recover", 200),
        ("DELETE", "/deletedsecrets/rust-secret", 204),
        ("POST", "/keys/rust-key/create", 200),
        ("POST", "/keys/rust-key/rotate", 200),
        ("POST", "/certificates/rust-cert/create", 202),
        ("GET", "/certificates/rust-cert/pending", 200),
    ];
    for (method, path, status) in expect {
        ensure!(
            log.iter().any(|(m, p, s)| m == method && p == path && *s == status),
            "no {method} {path} -> {status} in the log: {log:?}"
        );
    }
    let puts = log.iter().filter(|(m, p, _)| m == "PUT" && p == "/secrets/rust-secret").count();
    ensure!(puts == 2, "two sets, {puts} logged");

    Ok(())
}
