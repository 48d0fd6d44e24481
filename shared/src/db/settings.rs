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
