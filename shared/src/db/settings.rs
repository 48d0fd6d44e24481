//! The stored settings that the inventory and discovery read, resolved through the settings
//! registry (`crate::settings`) so a stored value is validated the same way everywhere.

use sqlx::PgPool;

use crate::domain::ExpiryThresholds;
use crate::settings::{self, Stored};

/// The stored value of `category.key` if it is valid, else `default`.
fn int_or(stored: &[Stored], category: &str, key: &str, default: i64) -> i64 {
    let valid = settings::find(category, key).and_then(|def| {
        stored
            .iter()
            .find(|s| s.category == category && s.key == key)
            .and_then(|s| def.validate(&s.value).ok())
    });
    valid.and_then(|v| v.as_i64()).unwrap_or(default)
}

/// The compliance-policy thresholds in force (one query).
pub async fn expiry_thresholds(pool: &PgPool) -> Result<ExpiryThresholds, sqlx::Error> {
    let stored = settings::stored_in(pool, "compliance-policy").await?;
    let defaults = ExpiryThresholds::default();
    Ok(ExpiryThresholds {
        critical_expiry_days: int_or(
            &stored,
            "compliance-policy",
            "criticalExpiryDays",
            defaults.critical_expiry_days,
        ),
        warning_expiry_days: int_or(
            &stored,
            "compliance-policy",
            "warningExpiryDays",
            defaults.warning_expiry_days,
        ),
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
    let stored = settings::stored(pool).await?;
    Ok(DiscoveryLimits {
        max_workers: int_or(&stored, "performance", "discoveryMaxWorkers", default_workers as i64)
            as usize,
        scan_timeout_seconds: int_or(&stored, "performance", "discoveryScanTimeout", 300) as u64,
    })
}

/// The stored value of a boolean setting if it is valid, else its default.
fn bool_or(stored: &[Stored], category: &str, key: &str, default: bool) -> bool {
    let valid = settings::find(category, key).and_then(|def| {
        stored
            .iter()
            .find(|s| s.category == category && s.key == key)
            .and_then(|s| def.validate(&s.value).ok())
    });
    valid.and_then(|v| v.as_bool()).unwrap_or(default)
}

/// Whether alert notifications are on (`features.enableNotifications`).
pub async fn notifications_enabled(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let stored = settings::stored(pool).await?;
    Ok(bool_or(&stored, "features", "enableNotifications", true))
}

/// The threshold of alert rules created without one (`alert-defaults.defaultThresholdDays`).
pub async fn default_threshold_days(pool: &PgPool) -> Result<i64, sqlx::Error> {
    let stored = settings::stored(pool).await?;
    Ok(int_or(&stored, "alert-defaults", "defaultThresholdDays", 30))
}
