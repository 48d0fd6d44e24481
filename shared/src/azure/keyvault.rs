//! The Key Vault data plane through the official SDK: list secrets, keys and certificates
//! (metadata only, never values) and fetch the details a listing lacks.

use std::collections::HashMap;
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_security_keyvault_certificates::{CertificateClient, CertificateClientOptions};
use azure_security_keyvault_keys::{KeyClient, KeyClientOptions};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};

use crate::config::{AzureConfig, CloudKind};
use crate::domain::AssetType;

use super::{AzureError, credential, x509};

const SURFACE: &str = "Key Vault";

/// How many detail requests run at once against one vault.
const DETAIL_CONCURRENCY: usize = 4;

/// Requests one vault scan can have in flight: the three listings and the key and certificate
/// details beside them.
pub const REQUESTS_PER_VAULT: usize = 3 + 2 * DETAIL_CONCURRENCY;

/// The metadata of one secret, key or certificate as the scan found it.
#[derive(Debug, Clone, Default)]
pub struct DiscoveredAsset {
    pub asset_type: Option<AssetType>,
    pub name: String,
    pub version: Option<String>,
    pub azure_id: String,
    pub enabled: bool,
    pub created_on: Option<DateTime<Utc>>,
    pub updated_on: Option<DateTime<Utc>>,
    pub expires_on: Option<DateTime<Utc>>,
    pub not_before: Option<DateTime<Utc>>,
    pub content_type: Option<String>,
    pub tags: HashMap<String, String>,
    pub recovery_level: Option<String>,
    pub key_type: Option<String>,
    pub key_size: Option<i32>,
    pub key_curve: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub sans: Vec<String>,
    pub thumbprint: Option<String>,
    pub serial_number: Option<String>,
}

/// The three data-plane clients of one vault.
pub struct VaultClient {
    secrets: SecretClient,
    keys: KeyClient,
    certificates: CertificateClient,
}

impl VaultClient {
    /// Clients for the vault at `vault_uri`, sharing the product's HTTP stack and credential.
    pub fn new(
        config: &AzureConfig,
        http: &reqwest::Client,
        credential: Arc<dyn TokenCredential>,
        vault_uri: &str,
    ) -> Result<Self, AzureError> {
        // The SDK checks that the challenge's resource matches the vault's host. Vaults of a
        // custom cloud live outside the public suffix, so the check only applies elsewhere.
        let verify = config.cloud != CloudKind::Custom;
        let options = || credential::client_options(config, http, "key_vault");
        let bad = |e: azure_core::Error| AzureError::Config(format!("vault {vault_uri}: {e}"));

        let secrets = SecretClient::new(
            vault_uri,
            credential.clone(),
            Some(SecretClientOptions {
                client_options: options(),
                verify_challenge_resource: Some(verify),
                ..Default::default()
            }),
        )
        .map_err(bad)?;
        let keys = KeyClient::new(
            vault_uri,
            credential.clone(),
            Some(KeyClientOptions {
                client_options: options(),
                verify_challenge_resource: Some(verify),
                ..Default::default()
            }),
        )
        .map_err(bad)?;
        let certificates = CertificateClient::new(
            vault_uri,
            credential,
            Some(CertificateClientOptions {
                client_options: options(),
                verify_challenge_resource: Some(verify),
                ..Default::default()
            }),
        )
        .map_err(bad)?;
        Ok(Self { secrets, keys, certificates })
    }

    /// Every secret, without the ones that back a certificate (they belong to it).
    pub async fn list_secrets(&self) -> Result<Vec<DiscoveredAsset>, AzureError> {
        let mut pages = self.secrets.list_secret_properties(None).map_err(sdk)?.into_pages();
        let mut found = Vec::new();
        while let Some(page) = pages.try_next().await.map_err(sdk)? {
            for item in page.into_model().map_err(sdk)?.value {
                if item.managed == Some(true) {
                    continue;
                }
                let Some(id) = item.id else { continue };
                let attributes = item.attributes.unwrap_or_default();
                found.push(DiscoveredAsset {
                    asset_type: Some(AssetType::Secret),
                    name: name_of(&id),
                    version: version_of(&id),
                    enabled: attributes.enabled.unwrap_or(true),
                    created_on: attributes.created.map(to_chrono),
                    updated_on: attributes.updated.map(to_chrono),
                    expires_on: attributes.expires.map(to_chrono),
                    not_before: attributes.not_before.map(to_chrono),
                    recovery_level: attributes.recovery_level.map(|l| l.to_string()),
                    content_type: item.content_type,
                    tags: item.tags.unwrap_or_default(),
                    azure_id: id,
                    ..Default::default()
                });
            }
        }
        Ok(found)
    }

    /// Every key without the ones backing a certificate; with `details`, each key's type and
    /// size are fetched too (the listing lacks them).
    pub async fn list_keys(&self, details: bool) -> Result<Vec<DiscoveredAsset>, AzureError> {
        let mut pages = self.keys.list_key_properties(None).map_err(sdk)?.into_pages();
        let mut found = Vec::new();
        while let Some(page) = pages.try_next().await.map_err(sdk)? {
            for item in page.into_model().map_err(sdk)?.value {
                if item.managed == Some(true) {
                    continue;
                }
                let Some(id) = item.kid else { continue };
                let attributes = item.attributes.unwrap_or_default();
                found.push(DiscoveredAsset {
                    asset_type: Some(AssetType::Key),
                    name: name_of(&id),
                    version: version_of(&id),
                    enabled: attributes.enabled.unwrap_or(true),
                    created_on: attributes.created.map(to_chrono),
                    updated_on: attributes.updated.map(to_chrono),
                    expires_on: attributes.expires.map(to_chrono),
                    not_before: attributes.not_before.map(to_chrono),
                    recovery_level: attributes.recovery_level.map(|l| l.to_string()),
                    tags: item.tags.unwrap_or_default(),
                    azure_id: id,
                    ..Default::default()
                });
            }
        }
        if details { self.with_key_details(found).await } else { Ok(found) }
    }

    /// Fetches each key's type and size (one request per key, a few at a time).
    pub async fn with_key_details(
        &self,
        keys: Vec<DiscoveredAsset>,
    ) -> Result<Vec<DiscoveredAsset>, AzureError> {
        futures::stream::iter(keys.into_iter().map(|asset| self.key_details(asset)))
            .buffer_unordered(DETAIL_CONCURRENCY)
            .try_collect()
            .await
    }

    async fn key_details(&self, mut asset: DiscoveredAsset) -> Result<DiscoveredAsset, AzureError> {
        let key =
            self.keys.get_key(&asset.name, None).await.map_err(sdk)?.into_model().map_err(sdk)?;
        if let Some(jwk) = key.key {
            if let Some(kid) = &jwk.kid {
                asset.version = version_of(kid);
            }
            asset.key_type = jwk.kty.map(|k| k.to_string());
            asset.key_curve = jwk.crv.map(|c| c.to_string());
            asset.key_size = match (&jwk.n, &asset.key_curve) {
                (Some(n), _) => Some(modulus_bits(n)),
                (None, Some(curve)) => curve_bits(curve),
                (None, None) => None,
            };
        }
        Ok(asset)
    }

    /// Every certificate; with `details`, each one's DER is fetched and parsed for subject,
    /// issuer, SANs, key and thumbprint.
    pub async fn list_certificates(
        &self,
        details: bool,
    ) -> Result<Vec<DiscoveredAsset>, AzureError> {
        let mut pages =
            self.certificates.list_certificate_properties(None).map_err(sdk)?.into_pages();
        let mut found = Vec::new();
        while let Some(page) = pages.try_next().await.map_err(sdk)? {
            for item in page.into_model().map_err(sdk)?.value {
                let Some(id) = item.id else { continue };
                let attributes = item.attributes.unwrap_or_default();
                found.push(DiscoveredAsset {
                    asset_type: Some(AssetType::Certificate),
                    name: name_of(&id),
                    version: version_of(&id),
                    enabled: attributes.enabled.unwrap_or(true),
                    created_on: attributes.created.map(to_chrono),
                    updated_on: attributes.updated.map(to_chrono),
                    expires_on: attributes.expires.map(to_chrono),
                    not_before: attributes.not_before.map(to_chrono),
                    recovery_level: attributes.recovery_level.map(|l| l.to_string()),
                    tags: item.tags.unwrap_or_default(),
                    thumbprint: item.x509_thumbprint.map(hex::encode_upper),
                    azure_id: id,
                    ..Default::default()
                });
            }
        }
        if details { self.with_certificate_details(found).await } else { Ok(found) }
    }

    /// Fetches and parses each certificate's DER (one request per certificate).
    pub async fn with_certificate_details(
        &self,
        certificates: Vec<DiscoveredAsset>,
    ) -> Result<Vec<DiscoveredAsset>, AzureError> {
        let fetches = certificates.into_iter().map(|asset| self.certificate_details(asset));
        futures::stream::iter(fetches).buffer_unordered(DETAIL_CONCURRENCY).try_collect().await
    }

    async fn certificate_details(
        &self,
        mut asset: DiscoveredAsset,
    ) -> Result<DiscoveredAsset, AzureError> {
        let cert = self
            .certificates
            .get_certificate(&asset.name, None)
            .await
            .map_err(sdk)?
            .into_model()
            .map_err(sdk)?;
        if let Some(id) = &cert.id {
            asset.version = version_of(id);
        }
        if let Some(der) = cert.cer.as_deref() {
            let info = x509::parse(der).map_err(|message| AzureError::Decode {
                surface: SURFACE,
                message: format!("certificate {}: {message}", asset.name),
            })?;
            asset.subject = Some(info.subject);
            asset.issuer = Some(info.issuer);
            asset.sans = info.sans;
            asset.key_type = info.key_type;
            asset.key_size = info.key_size;
            asset.key_curve = info.key_curve;
            asset.thumbprint = Some(info.thumbprint);
            asset.serial_number = Some(info.serial_number);
            asset.not_before = asset.not_before.or(info.not_before);
            asset.expires_on = asset.expires_on.or(info.not_after);
        }
        Ok(asset)
    }
}

fn sdk(err: azure_core::Error) -> AzureError {
    AzureError::from_sdk(SURFACE, err)
}

fn to_chrono(t: time::OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.unix_timestamp(), 0).unwrap_or_default()
}

/// `https://v.vault.azure.net/secrets/name[/version]` → `name`.
fn name_of(id: &str) -> String {
    id_segments(id).into_iter().nth(1).unwrap_or_default()
}

fn version_of(id: &str) -> Option<String> {
    id_segments(id).into_iter().nth(2).filter(|v| !v.is_empty())
}

fn id_segments(id: &str) -> Vec<String> {
    let path = url::Url::parse(id).map(|u| u.path().to_owned()).unwrap_or_default();
    path.trim_matches('/').split('/').map(str::to_owned).collect()
}

fn modulus_bits(n: &[u8]) -> i32 {
    let trimmed = n.iter().skip_while(|b| **b == 0).count();
    (trimmed * 8) as i32
}

fn curve_bits(curve: &str) -> Option<i32> {
    match curve {
        "P-256" | "P-256K" => Some(256),
        "P-384" => Some(384),
        "P-521" => Some(521),
        _ => None,
    }
}
