//! Settings stored by the API, which take precedence over environment defaults.

use serde::de::DeserializeOwned;
use sqlx::PgPool;

use crate::domain::ExpiryThresholds;

/// One stored value, if any.
pub async fn get<T: DeserializeOwned>(
    pool: &PgPool,
    category: &str,
    key: &str,
) -> Result<Option<T>, sqlx::Error> {
    let value: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT value FROM settings WHERE category = $1 AND key = $2")
            .bind(category)
            .bind(key)
            .fetch_optional(pool)
            .await?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// The compliance-policy thresholds in force.
pub async fn expiry_thresholds(pool: &PgPool) -> Result<ExpiryThresholds, sqlx::Error> {
    let defaults = ExpiryThresholds::default();
    Ok(ExpiryThresholds {
        critical_expiry_days: get(pool, "compliance-policy", "criticalExpiryDays")
            .await?
            .unwrap_or(defaults.critical_expiry_days),
        warning_expiry_days: get(pool, "compliance-policy", "warningExpiryDays")
            .await?
            .unwrap_or(defaults.warning_expiry_days),
    })
}

/// The performance settings discovery honours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryLimits {
    /// Vault jobs one worker process runs at once.
    pub max_workers: usize,
    /// Upper bound on one vault job, in seconds.
    pub scan_timeout_seconds: u64,
}

/// `discoveryMaxWorkers` and `discoveryScanTimeout` as stored, else `default_workers` and 300 s.
pub async fn discovery_limits(
    pool: &PgPool,
    default_workers: usize,
) -> Result<DiscoveryLimits, sqlx::Error> {
    let workers: Option<u64> = get(pool, "performance", "discoveryMaxWorkers").await?;
    let timeout: Option<u64> = get(pool, "performance", "discoveryScanTimeout").await?;
    Ok(DiscoveryLimits {
        max_workers: workers.filter(|w| *w > 0).map_or(default_workers, |w| w as usize),
        scan_timeout_seconds: timeout.filter(|t| *t > 0).unwrap_or(300),
    })
}
