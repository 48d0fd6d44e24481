//! Clients for Azure: the credential chain, Resource Manager (a thin typed client over
//! reqwest), the Key Vault data plane (the official SDK crates) and certificate parsing.
//!
//! Every client is built from [`AzureConfig`](crate::config::AzureConfig): endpoints are
//! configuration, so the public cloud, sovereign clouds and custom clouds take the same paths.

pub mod arm;
pub mod credential;
pub mod error;
pub mod http;
pub mod identity;
pub mod keyvault;
pub mod x509;

pub use error::AzureError;

use std::sync::Arc;

use azure_core::credentials::TokenCredential;

use crate::config::AzureConfig;

/// Everything a process needs to call Azure: one HTTP stack, one credential.
#[derive(Clone)]
pub struct AzureClients {
    pub config: AzureConfig,
    pub http: reqwest::Client,
    pub credential: Option<Arc<dyn TokenCredential>>,
}

impl AzureClients {
    /// Builds the HTTP client (trusting the configured extra CA) and the credential.
    pub fn new(config: &AzureConfig) -> Result<Self, AzureError> {
        let http = http::build_client(config)?;
        let credential = credential::build(config, &http)?;
        Ok(Self { config: config.clone(), http, credential })
    }

    /// The credential, or a clear error when none is configured.
    pub fn credential(&self) -> Result<Arc<dyn TokenCredential>, AzureError> {
        self.credential.clone().ok_or(AzureError::NoCredential)
    }

    /// A Resource Manager client.
    pub fn arm(&self) -> Result<arm::ArmClient, AzureError> {
        Ok(arm::ArmClient::new(&self.config, self.http.clone(), self.credential()?))
    }

    /// Key Vault data-plane clients for one vault.
    pub fn vault(&self, vault_uri: &str) -> Result<keyvault::VaultClient, AzureError> {
        keyvault::VaultClient::new(&self.config, &self.http, self.credential()?, vault_uri)
    }
}
