//! The one HTTP stack for Azure calls: reqwest on rustls, trusting the configured extra CA.

use crate::config::AzureConfig;

use super::AzureError;

/// Builds the client every Azure call goes through, including the SDK's pipelines.
pub fn build_client(config: &AzureConfig) -> Result<reqwest::Client, AzureError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(config.request_timeout)
        // Every vault is its own host: keep few idle connections per host, briefly, so a scan
        // of a thousand vaults does not hold a thousand idle TLS sessions.
        .pool_idle_timeout(std::time::Duration::from_secs(5))
        .pool_max_idle_per_host(2)
        .user_agent(concat!("certifyclouds/", env!("CARGO_PKG_VERSION")));

    if let Some(path) = &config.ca_bundle {
        let pem = std::fs::read(path).map_err(|e| {
            AzureError::Config(format!("AZURE_CA_BUNDLE {} cannot be read: {e}", path.display()))
        })?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
            AzureError::Config(format!("AZURE_CA_BUNDLE {} is not PEM: {e}", path.display()))
        })?;
        if certs.is_empty() {
            return Err(AzureError::Config(format!(
                "AZURE_CA_BUNDLE {} holds no certificate",
                path.display()
            )));
        }
        builder = builder.tls_certs_merge(certs);
    }

    builder.build().map_err(|e| AzureError::Config(format!("HTTP client: {e}")))
}
