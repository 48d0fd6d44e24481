//! A thin typed client for the parts of Azure Resource Manager the product reads.
//!
//! There is no official Rust crate for Resource Manager, so this is reqwest plus the models we
//! need. Lists follow `nextLink` to the end; 429 and 5xx are retried with exponential backoff
//! and jitter, honouring `Retry-After` when Azure sends it.

use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use rand::Rng;
use reqwest::StatusCode;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::config::AzureConfig;

use super::AzureError;
use super::error::parse_error_body;

const SURFACE: &str = "Resource Manager";
const SUBSCRIPTIONS_API: &str = "2022-12-01";
const KEYVAULT_API: &str = "2023-07-01";

/// How often and how long to retry a call that Azure throttled or failed transiently.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1`: `Retry-After` if given, else exponential backoff
    /// with full jitter.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(after) = retry_after {
            return after.min(self.max_delay);
        }
        let ceiling =
            self.base_delay.saturating_mul(2u32.saturating_pow(attempt)).min(self.max_delay);
        let jitter = rand::rng().random_range(0.5..=1.0);
        ceiling.mul_f64(jitter)
    }
}

/// A subscription as Resource Manager lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmSubscription {
    pub subscription_id: String,
    pub display_name: Option<String>,
    pub tenant_id: Option<String>,
    pub state: Option<String>,
}

/// A Key Vault resource.
#[derive(Debug, Clone, Deserialize)]
pub struct ArmVault {
    pub id: String,
    pub name: String,
    pub location: Option<String>,
    #[serde(default)]
    pub tags: serde_json::Map<String, serde_json::Value>,
    pub properties: ArmVaultProperties,
}

/// The properties of a Key Vault that matter for inventory and compliance.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArmVaultProperties {
    pub vault_uri: Option<String>,
    pub tenant_id: Option<String>,
    pub sku: Option<ArmSku>,
    pub enable_rbac_authorization: Option<bool>,
    pub enable_soft_delete: Option<bool>,
    pub enable_purge_protection: Option<bool>,
    pub public_network_access: Option<String>,
}

/// A vault's pricing tier.
#[derive(Debug, Clone, Deserialize)]
pub struct ArmSku {
    pub name: Option<String>,
}

impl ArmVault {
    /// The subscription and resource group parsed from the resource id.
    pub fn scope(&self) -> Option<(String, String)> {
        let parts: Vec<&str> = self.id.split('/').collect();
        let sub = parts.iter().position(|p| p.eq_ignore_ascii_case("subscriptions"))?;
        let rg = parts.iter().position(|p| p.eq_ignore_ascii_case("resourceGroups"))?;
        Some((parts.get(sub + 1)?.to_ascii_lowercase(), (*parts.get(rg + 1)?).to_owned()))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page<T> {
    #[serde(default = "Vec::new")]
    value: Vec<T>,
    next_link: Option<String>,
}

/// Resource Manager, reached with a token from the product's credential.
#[derive(Clone)]
pub struct ArmClient {
    http: reqwest::Client,
    endpoint: Url,
    scope: String,
    credential: Arc<dyn TokenCredential>,
    retry: RetryPolicy,
}

impl ArmClient {
    /// A client for the configured Resource Manager endpoint.
    pub fn new(
        config: &AzureConfig,
        http: reqwest::Client,
        credential: Arc<dyn TokenCredential>,
    ) -> Self {
        Self {
            http,
            endpoint: config.resource_manager_endpoint.clone(),
            scope: scope_for(&config.resource_manager_audience),
            credential,
            retry: RetryPolicy::default(),
        }
    }

    /// Replaces the retry policy (tests shorten it).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The OAuth scope of Resource Manager.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Every subscription the identity can see.
    pub async fn list_subscriptions(&self) -> Result<Vec<ArmSubscription>, AzureError> {
        self.list_all(&format!("subscriptions?api-version={SUBSCRIPTIONS_API}")).await
    }

    /// One subscription, or a 404 error.
    pub async fn get_subscription(&self, id: &str) -> Result<ArmSubscription, AzureError> {
        self.get_json(self.url(&format!("subscriptions/{id}?api-version={SUBSCRIPTIONS_API}"))?)
            .await
    }

    /// Every Key Vault in a subscription.
    pub async fn list_vaults(&self, subscription_id: &str) -> Result<Vec<ArmVault>, AzureError> {
        self.list_all(&format!(
            "subscriptions/{subscription_id}/providers/Microsoft.KeyVault/vaults?\
             api-version={KEYVAULT_API}"
        ))
        .await
    }

    async fn list_all<T: DeserializeOwned>(&self, first: &str) -> Result<Vec<T>, AzureError> {
        let mut items = Vec::new();
        let mut next = Some(self.url(first)?);
        while let Some(url) = next.take() {
            let page: Page<T> = self.get_json(url).await?;
            items.extend(page.value);
            next = match page.next_link.filter(|l| !l.is_empty()) {
                Some(link) => Some(self.endpoint.join(&link).map_err(|e| AzureError::Decode {
                    surface: SURFACE,
                    message: format!("nextLink {link:?}: {e}"),
                })?),
                None => None,
            };
        }
        Ok(items)
    }

    fn url(&self, path: &str) -> Result<Url, AzureError> {
        self.endpoint
            .join(path)
            .map_err(|e| AzureError::Config(format!("Resource Manager URL {path}: {e}")))
    }

    async fn get_json<T: DeserializeOwned>(&self, url: Url) -> Result<T, AzureError> {
        let mut attempt = 0;
        loop {
            let token = self
                .credential
                .get_token(&[self.scope.as_str()], None)
                .await
                .map_err(|e| AzureError::Credential(e.to_string()))?;
            let sent = self
                .http
                .get(url.clone())
                .bearer_auth(token.token.secret())
                .header("accept", "application/json")
                .send()
                .await;

            crate::metrics::azure_call(
                "resource_manager",
                sent.as_ref().ok().map(|r| r.status().as_u16()),
            );
            let (retryable, error, retry_after) = match sent {
                Ok(response) if response.status().is_success() => {
                    let bytes = response.bytes().await.map_err(|e| AzureError::Transport {
                        surface: SURFACE,
                        message: e.to_string(),
                    })?;
                    return serde_json::from_slice(&bytes).map_err(|e| AzureError::Decode {
                        surface: SURFACE,
                        message: e.to_string(),
                    });
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = retry_after(&response);
                    let body = response.bytes().await.unwrap_or_default();
                    let (code, message) = parse_error_body(&body)
                        .unwrap_or_else(|| (format!("http_{}", status.as_u16()), String::new()));
                    let retryable =
                        status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error();
                    let error = AzureError::Http {
                        surface: SURFACE,
                        status: status.as_u16(),
                        code,
                        message,
                    };
                    (retryable, error, retry_after)
                }
                Err(e) => {
                    let error = AzureError::Transport { surface: SURFACE, message: e.to_string() };
                    (true, error, None)
                }
            };

            attempt += 1;
            if !retryable || attempt >= self.retry.max_attempts {
                return Err(error);
            }
            let pause = self.retry.delay(attempt - 1, retry_after);
            tracing::debug!(attempt, pause_ms = pause.as_millis() as u64, %error,
                "Resource Manager call will be retried");
            tokio::time::sleep(pause).await;
        }
    }
}

/// `https://management.azure.com/` → `https://management.azure.com/.default`.
pub fn scope_for(audience: &str) -> String {
    format!("{}/.default", audience.trim_end_matches('/'))
}

fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let value = response.headers().get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_over_backoff_and_backoff_grows() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert!(policy.delay(0, None) <= Duration::from_millis(250));
        assert!(policy.delay(3, None) >= Duration::from_millis(1000));
        assert!(policy.delay(20, None) <= Duration::from_secs(30));
    }

    #[test]
    fn scope_is_the_audience_with_default_appended() {
        assert_eq!(
            scope_for("https://management.azure.com/"),
            "https://management.azure.com/.default"
        );
    }
}
