//! The one HTTP stack for Azure calls: reqwest on rustls, trusting the configured extra CA.

use crate::config::AzureConfig;

use super::AzureError;

/// Builds the client every Azure call goes through, including the SDK's pipelines.
pub fn build_client(config: &AzureConfig) -> Result<reqwest::Client, AzureError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .timeout(config.request_timeout)
        // Every vault is its own host, scanned once per scan in well under a second. Keep as
        // many idle connections per host as one vault scan uses at once, so its detail requests
        // reuse them instead of opening a TLS session each (with 2, TLS handshakes were the
        // largest item of the scan's profile), but only briefly, so that idle sessions of
        // finished vaults do not pile up (peak memory stays flat with the tenant's size).
        .pool_idle_timeout(std::time::Duration::from_secs(1))
        .pool_max_idle_per_host(super::keyvault::REQUESTS_PER_VAULT)
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
