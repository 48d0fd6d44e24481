//! The credential chain: workload identity, then a client secret, then managed identity.
//! The Rust SDK has no environment or default credential, so the chain is built here from the
//! variables DESIGN.md names.

use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret, TokenCredential};
use azure_core::http::{ClientOptions, Transport};
use azure_identity::{
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential, WorkloadIdentityCredentialOptions,
};

use crate::config::{AzureConfig, CredentialSource};

use super::AzureError;

/// SDK client options that use our HTTP stack and the configured authority, and count each
/// response under `surface` in the metrics.
pub fn client_options(
    config: &AzureConfig,
    http: &reqwest::Client,
    surface: &'static str,
) -> ClientOptions {
    let mut custom = CustomConfiguration::default();
    custom.authority_host = config.authority_host.as_str().trim_end_matches('/').to_owned();
    ClientOptions {
        transport: Some(Transport::new(Arc::new(http.clone()))),
        cloud: Some(Arc::new(CloudConfiguration::Custom(custom))),
        per_try_policies: vec![Arc::new(crate::metrics::CountAzureCalls { surface })],
        ..Default::default()
    }
}

/// Builds the configured credential, or `None` when nothing is configured.
pub fn build(
    config: &AzureConfig,
    http: &reqwest::Client,
) -> Result<Option<Arc<dyn TokenCredential>>, AzureError> {
    let options = || client_options(config, http, "entra_id");
    let failed = |e: azure_core::Error| AzureError::Config(e.to_string());

    let credential: Arc<dyn TokenCredential> = match &config.credential {
        CredentialSource::WorkloadIdentity { tenant_id, client_id, token_file } => {
            WorkloadIdentityCredential::new(Some(WorkloadIdentityCredentialOptions {
                credential_options: ClientAssertionCredentialOptions { client_options: options() },
                client_id: Some(client_id.clone()),
                tenant_id: Some(tenant_id.clone()),
                token_file_path: Some(token_file.clone()),
            }))
            .map_err(failed)?
        }
        CredentialSource::ClientSecret { tenant_id, client_id, client_secret } => {
            ClientSecretCredential::new(
                tenant_id,
                client_id.clone(),
                Secret::new(client_secret.expose().to_owned()),
                Some(ClientSecretCredentialOptions { client_options: options() }),
            )
            .map_err(failed)?
        }
        CredentialSource::ManagedIdentity { client_id } => {
            ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                client_options: options(),
            }))
            .map_err(failed)?
        }
        CredentialSource::None => return Ok(None),
    };
    Ok(Some(credential))
}
