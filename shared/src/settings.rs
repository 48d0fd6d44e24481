//! The settings registry: every category and key the API exposes, its type, range, default and
//! the environment variable it falls back to. Precedence: a value stored through the API, then
//! the environment, then the default.

use serde::Serialize;
use serde_json::{Value, json};

/// What values a setting takes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Integer {
        min: i64,
        max: i64,
    },
    Boolean,
    Choice(&'static [&'static str]),
    /// A six-field cron expression, or `off`.
    Cron,
}

/// One setting.
#[derive(Debug, Clone, Copy)]
pub struct Definition {
    pub category: &'static str,
    pub key: &'static str,
    pub kind: Kind,
    pub default: DefaultValue,
    pub env: Option<&'static str>,
    pub description: &'static str,
}

/// A default that can be written in a `const` table.
#[derive(Debug, Clone, Copy)]
pub enum DefaultValue {
    Int(i64),
    Bool(bool),
    Text(&'static str),
}

impl DefaultValue {
    fn to_json(self) -> Value {
        match self {
            DefaultValue::Int(i) => json!(i),
            DefaultValue::Bool(b) => json!(b),
            DefaultValue::Text(t) => json!(t),
        }
    }
}

/// The categories, in the reference's order.
pub const CATEGORIES: &[&str] = &[
    "performance",
    "features",
    "logging",
    "alert-defaults",
    "retention",
    "compliance-policy",
    "automation",
];

use DefaultValue::{Bool, Int, Text};
use Kind::{Boolean, Choice, Cron, Integer};

/// Every setting.
pub const DEFINITIONS: &[Definition] = &[
    Definition {
        category: "performance",
        key: "discoveryMaxWorkers",
        kind: Integer { min: 1, max: 100 },
        default: Int(8),
        env: Some("WORKER_CONCURRENCY"),
        description: "Vault jobs one worker process runs at once.",
    },
    Definition {
        category: "performance",
        key: "discoveryScanTimeout",
        kind: Integer { min: 1, max: 86_400 },
        default: Int(300),
        env: None,
        description: "Seconds one vault may take before it is recorded as timed out.",
    },
    Definition {
        category: "performance",
        key: "deltaScanSchedule",
        kind: Cron,
        default: Text("0 0 */6 * * *"),
        env: Some("SCAN_SCHEDULE_DELTA"),
        description: "Cron (six fields, UTC) of the unattended delta scan, or off.",
    },
    Definition {
        category: "performance",
        key: "fullScanSchedule",
        kind: Cron,
        default: Text("0 30 2 * * *"),
        env: Some("SCAN_SCHEDULE_FULL"),
        description: "Cron (six fields, UTC) of the unattended full scan, or off.",
    },
    Definition {
        category: "features",
        key: "enableNotifications",
        kind: Boolean,
        default: Bool(true),
        env: None,
        description: "Send alert notifications.",
    },
    Definition {
        category: "features",
        key: "enableComplianceScanning",
        kind: Boolean,
        default: Bool(true),
        env: None,
        description: "Evaluate compliance after scans.",
    },
    Definition {
        category: "logging",
        key: "logLevel",
        kind: Choice(&["DEBUG", "INFO", "WARNING", "ERROR"]),
        default: Text("INFO"),
        env: Some("LOG_LEVEL"),
        description: "Log level of the API and the workers.",
    },
    Definition {
        category: "alert-defaults",
        key: "defaultThresholdDays",
        kind: Integer { min: 1, max: 365 },
        default: Int(30),
        env: None,
        description: "Threshold of alert rules created without one, in days.",
    },
    Definition {
        category: "retention",
        key: "auditRetentionDays",
        kind: Integer { min: 30, max: 3650 },
        default: Int(365),
        env: None,
        description: "Days audit entries are kept.",
    },
    Definition {
        category: "retention",
        key: "rotationRetentionDays",
        kind: Integer { min: 1, max: 3650 },
        default: Int(90),
        env: None,
        description: "Days rotation history is kept.",
    },
    Definition {
        category: "retention",
        key: "syncRetentionDays",
        kind: Integer { min: 1, max: 3650 },
        default: Int(90),
        env: None,
        description: "Days sync history is kept.",
    },
    Definition {
        category: "retention",
        key: "alertRetentionDays",
        kind: Integer { min: 1, max: 3650 },
        default: Int(90),
        env: None,
        description: "Days alert history is kept.",
    },
    Definition {
        category: "compliance-policy",
        key: "criticalExpiryDays",
        kind: Integer { min: 1, max: 90 },
        default: Int(7),
        env: None,
        description: "An item expiring within this many days is critical.",
    },
    Definition {
        category: "compliance-policy",
        key: "warningExpiryDays",
        kind: Integer { min: 1, max: 365 },
        default: Int(30),
        env: None,
        description: "An item expiring within this many days is a warning.",
    },
    Definition {
        category: "automation",
        key: "rotationTriggerDays",
        kind: Integer { min: 1, max: 365 },
        default: Int(30),
        env: None,
        description: "Rotate a credential this many days before it expires.",
    },
    Definition {
        category: "automation",
        key: "defaultValidityDays",
        kind: Integer { min: 1, max: 3650 },
        default: Int(365),
        env: None,
        description: "Validity of a new credential, in days.",
    },
];

/// The definition of `category.key`.
pub fn find(category: &str, key: &str) -> Option<&'static Definition> {
    DEFINITIONS.iter().find(|d| d.category == category && d.key == key)
}

/// The definitions of one category.
pub fn of(category: &str) -> impl Iterator<Item = &'static Definition> + '_ {
    DEFINITIONS.iter().filter(move |d| d.category == category)
}

impl Definition {
    /// Checks a value; the error names the allowed values or range.
    pub fn validate(&self, value: &Value) -> Result<Value, String> {
        match self.kind {
            Integer { min, max } => match value.as_i64() {
                Some(i) if (min..=max).contains(&i) => Ok(json!(i)),
                _ => Err(format!("must be a whole number from {min} to {max}")),
            },
            Boolean => {
                value.as_bool().map(Value::Bool).ok_or_else(|| "must be true or false".into())
            }
            Choice(allowed) => match value.as_str().map(str::to_ascii_uppercase) {
                Some(v) if allowed.contains(&v.as_str()) => Ok(json!(v)),
                _ => Err(format!("must be one of: {}", allowed.join(", "))),
            },
            Cron => match value.as_str() {
                Some(v) if v.trim().eq_ignore_ascii_case("off") => Ok(json!("off")),
                Some(v) => crate::config::parse_cron(v).map(|_| json!(v.trim())),
                None => Err("must be a six-field cron expression or \"off\"".into()),
            },
        }
    }

    /// The value from the environment, when it is set and valid.
    fn environment_value(&self, get: &impl Fn(&str) -> Option<String>) -> Option<Value> {
        let raw = get(self.env?)?;
        let parsed = match self.kind {
            Integer { .. } => raw.trim().parse::<i64>().ok().map(Value::from)?,
            Boolean => {
                Value::Bool(matches!(raw.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
            }
            Choice(_) | Cron => Value::String(raw),
        };
        self.validate(&parsed).ok()
    }
}

/// A setting with its value in force and where that value comes from.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Setting)]
#[serde(rename_all = "camelCase")]
pub struct Effective {
    pub key: &'static str,
    pub value: Value,
    pub default_value: Value,
    /// `database`, `environment` or `default`.
    pub source: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<&'static [&'static str]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_variable: Option<&'static str>,
    pub description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

/// A stored override.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Stored {
    pub category: String,
    pub key: String,
    pub value: Value,
    pub updated_at: chrono::DateTime<chrono::Utc>,
    pub updated_by: Option<String>,
}

/// Resolves one setting from the stored overrides and the environment.
pub fn resolve(
    def: &'static Definition,
    stored: &[Stored],
    env: &impl Fn(&str) -> Option<String>,
) -> Effective {
    let row = stored.iter().find(|s| s.category == def.category && s.key == def.key);
    let valid_row = row.and_then(|r| def.validate(&r.value).ok().map(|v| (v, r)));
    let (value, source, updated_at, updated_by) = match (valid_row, def.environment_value(env)) {
        (Some((v, r)), _) => (v, "database", Some(r.updated_at), r.updated_by.clone()),
        (None, Some(v)) => (v, "environment", None, None),
        (None, None) => (def.default.to_json(), "default", None, None),
    };
    let (kind, min, max, allowed) = match def.kind {
        Integer { min, max } => ("integer", Some(min), Some(max), None),
        Boolean => ("boolean", None, None, None),
        Choice(a) => ("choice", None, None, Some(a)),
        Cron => ("cron", None, None, None),
    };
    Effective {
        key: def.key,
        value,
        default_value: def.default.to_json(),
        source,
        kind,
        min,
        max,
        allowed,
        environment_variable: def.env,
        description: def.description,
        updated_at,
        updated_by,
    }
}

/// All stored overrides.
pub async fn stored(pool: &sqlx::PgPool) -> Result<Vec<Stored>, sqlx::Error> {
    sqlx::query_as::<_, Stored>(
        "SELECT category, key, value, updated_at, updated_by FROM settings ORDER BY category, key",
    )
    .fetch_all(pool)
    .await
}

/// The stored overrides of one category.
pub async fn stored_in(pool: &sqlx::PgPool, category: &str) -> Result<Vec<Stored>, sqlx::Error> {
    sqlx::query_as::<_, Stored>(
        "SELECT category, key, value, updated_at, updated_by FROM settings \
         WHERE category = $1 ORDER BY key",
    )
    .bind(category)
    .fetch_all(pool)
    .await
}

/// Stores an override (inside the caller's transaction, beside its audit entry).
pub async fn put(
    conn: &mut sqlx::PgConnection,
    category: &str,
    key: &str,
    value: &Value,
    by: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO settings (category, key, value, updated_by) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (category, key) DO UPDATE SET value = EXCLUDED.value, \
             updated_at = now(), updated_by = EXCLUDED.updated_by",
    )
    .bind(category)
    .bind(key)
    .bind(value)
    .bind(by)
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes overrides: one key, a category (`key` None), or all (`category` None).
pub async fn reset(
    conn: &mut sqlx::PgConnection,
    category: Option<&str>,
    key: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let removed = sqlx::query(
        "DELETE FROM settings WHERE ($1::text IS NULL OR category = $1) \
         AND ($2::text IS NULL OR key = $2)",
    )
    .bind(category)
    .bind(key)
    .execute(conn)
    .await?;
    Ok(removed.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_values_win_over_the_environment_which_wins_over_the_default() {
        let def = find("performance", "discoveryMaxWorkers").expect("defined");
        let none = |_: &str| None;
        assert_eq!(resolve(def, &[], &none).source, "default");
        let env = |k: &str| (k == "WORKER_CONCURRENCY").then(|| "3".to_owned());
        let from_env = resolve(def, &[], &env);
        assert_eq!((from_env.source, from_env.value.clone()), ("environment", json!(3)));
        let row = Stored {
            category: "performance".into(),
            key: "discoveryMaxWorkers".into(),
            value: json!(12),
            updated_at: chrono::Utc::now(),
            updated_by: Some("admin".into()),
        };
        let stored = resolve(def, &[row], &env);
        assert_eq!((stored.source, stored.value), ("database", json!(12)));
    }

    #[test]
    fn validation_names_the_range_or_choices() {
        let def = find("performance", "discoveryMaxWorkers").expect("defined");
        assert_eq!(def.validate(&json!(0)).unwrap_err(), "must be a whole number from 1 to 100");
        let level = find("logging", "logLevel").expect("defined");
        assert_eq!(level.validate(&json!("debug")).expect("valid"), json!("DEBUG"));
        assert!(level.validate(&json!("LOUD")).is_err());
    }
}
