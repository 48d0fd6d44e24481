//! Domain types that parse their input once, so handlers and jobs never re-validate.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

/// Declares a string-backed enum with its wire names, `FromStr`, `Display` and serde.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:tt),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used on the wire and in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($wire => Ok($name::$variant),)+
                    _ => Err(UnknownValue {
                        expected: &[$($wire),+],
                    }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// A string that is not one of a type's wire names.
#[derive(Debug, Clone, thiserror::Error)]
#[error("expected one of: {}", expected.join(", "))]
pub struct UnknownValue {
    pub expected: &'static [&'static str],
}

wire_enum!(
    /// The kind of Key Vault object an asset is.
    AssetType { Secret => "secret", Key => "key", Certificate => "certificate" }
);

wire_enum!(
    /// Expiry status, derived at read time from the expiry date and the policy thresholds.
    AssetStatus {
        Healthy => "healthy",
        Warning => "warning",
        Critical => "critical",
        Expired => "expired",
    }
);

wire_enum!(
    /// How much work a discovery scan does; see DESIGN.md "Discovery".
    ScanMode { Full => "full", Delta => "delta", Force => "force" }
);

wire_enum!(
    /// Lifecycle of a scan.
    ScanStatus {
        Queued => "queued",
        Running => "running",
        Completed => "completed",
        CompletedWithErrors => "completed_with_errors",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

wire_enum!(
    /// Lifecycle of a job row.
    JobStatus {
        Queued => "queued",
        Running => "running",
        Succeeded => "succeeded",
        Failed => "failed",
        Cancelled => "cancelled",
    }
);

wire_enum!(
    /// What a user may do: `admin` changes settings, users and credentials; `user` reads
    /// everything, runs scans and manages alert rules.
    Role { Admin => "admin", User => "user" }
);

wire_enum!(
    /// What an alert rule watches for.
    AlertType {
        SecretExpiring => "secret_expiring",
        SecretExpired => "secret_expired",
        ScanCompleted => "scan_completed",
        VaultError => "vault_error",
    }
);

wire_enum!(
    /// The channel an alert rule delivers through.
    DeliveryMethod {
        Email => "email",
        Slack => "slack",
        Teams => "teams",
        PagerDuty => "pagerduty",
        Webhook => "webhook",
    }
);

wire_enum!(
    /// `immediate`: a message right after the evaluation that found something; `digest`: one
    /// message per recipient per digest run.
    DeliveryMode { Immediate => "immediate", Digest => "digest" }
);

wire_enum!(
    /// Lifecycle of an alert delivery.
    DeliveryStatus {
        Queued => "queued",
        Sending => "sending",
        Sent => "sent",
        Failed => "failed",
    }
);

impl ScanStatus {
    /// Whether the scan has stopped changing.
    pub fn is_terminal(self) -> bool {
        !matches!(self, ScanStatus::Queued | ScanStatus::Running)
    }
}

/// The compliance-policy thresholds that turn an expiry date into a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpiryThresholds {
    pub critical_expiry_days: i64,
    pub warning_expiry_days: i64,
}

impl Default for ExpiryThresholds {
    fn default() -> Self {
        Self { critical_expiry_days: 7, warning_expiry_days: 30 }
    }
}

impl ExpiryThresholds {
    /// The status of an item expiring at `expires_on`, seen at `now`. Items without an expiry
    /// date are healthy here; compliance rules judge the missing date separately.
    pub fn status_of(&self, expires_on: Option<DateTime<Utc>>, now: DateTime<Utc>) -> AssetStatus {
        let Some(expires_on) = expires_on else {
            return AssetStatus::Healthy;
        };
        if expires_on <= now {
            AssetStatus::Expired
        } else if expires_on < now + Duration::days(self.critical_expiry_days) {
            AssetStatus::Critical
        } else if expires_on < now + Duration::days(self.warning_expiry_days) {
            AssetStatus::Warning
        } else {
            AssetStatus::Healthy
        }
    }
}

/// An Azure subscription id: a GUID, kept lower case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SubscriptionId(String);

impl SubscriptionId {
    /// Parses a GUID in its 8-4-4-4-12 form.
    pub fn parse(value: &str) -> Result<Self, InvalidSubscriptionId> {
        uuid::Uuid::try_parse(value)
            .ok()
            .filter(|_| value.len() == 36)
            .map(|u| Self(u.hyphenated().to_string()))
            .ok_or(InvalidSubscriptionId)
    }

    /// The GUID as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A subscription id that is not a GUID.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("a subscription id is a GUID like 12345678-1234-1234-1234-123456789012")]
pub struct InvalidSubscriptionId;

impl TryFrom<String> for SubscriptionId {
    type Error = InvalidSubscriptionId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SubscriptionId> for String {
    fn from(value: SubscriptionId) -> Self {
        value.0
    }
}

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The OpenAPI schema of a wire enum lists its wire names (a `literal` macro fragment once
    /// hid them from utoipa, which then documented the Rust variant names).
    fn schema_values<T: utoipa::PartialSchema>() -> serde_json::Value {
        serde_json::to_value(T::schema()).unwrap_or_default()["enum"].clone()
    }

    #[test]
    fn schemas_name_the_wire_values() {
        fn wire<T: Copy + fmt::Display>(all: &[T]) -> serde_json::Value {
            all.iter().map(|v| v.to_string()).collect()
        }
        assert_eq!(schema_values::<AssetType>(), wire(AssetType::ALL));
        assert_eq!(schema_values::<AssetStatus>(), wire(AssetStatus::ALL));
        assert_eq!(schema_values::<ScanMode>(), wire(ScanMode::ALL));
        assert_eq!(schema_values::<ScanStatus>(), wire(ScanStatus::ALL));
        assert_eq!(schema_values::<JobStatus>(), wire(JobStatus::ALL));
        assert_eq!(schema_values::<Role>(), wire(Role::ALL));
        assert_eq!(schema_values::<ScanStatus>()[3], "completed_with_errors");
    }

    #[test]
    fn status_follows_the_thresholds() {
        let now = Utc::now();
        let t = ExpiryThresholds::default();
        assert_eq!(t.status_of(None, now), AssetStatus::Healthy);
        assert_eq!(t.status_of(Some(now - Duration::days(1)), now), AssetStatus::Expired);
        assert_eq!(t.status_of(Some(now + Duration::days(3)), now), AssetStatus::Critical);
        assert_eq!(t.status_of(Some(now + Duration::days(20)), now), AssetStatus::Warning);
        assert_eq!(t.status_of(Some(now + Duration::days(90)), now), AssetStatus::Healthy);
    }

    #[test]
    fn subscription_ids_are_guids_kept_lower_case() {
        let id = SubscriptionId::parse("ABCDEF01-1234-1234-1234-123456789012").expect("guid");
        assert_eq!(id.as_str(), "abcdef01-1234-1234-1234-123456789012");
        assert!(SubscriptionId::parse("prod").is_err());
        assert!(SubscriptionId::parse("abcdef0112341234123412345678901a").is_err());
    }

    #[test]
    fn unknown_mode_lists_the_accepted_ones() {
        let err = "quick".parse::<ScanMode>().unwrap_err();
        assert_eq!(err.to_string(), "expected one of: full, delta, force");
    }
}
