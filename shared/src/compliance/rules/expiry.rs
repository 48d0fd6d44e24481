//! Expiry rules: items without an expiry date, expired, expiring within the critical or warning
//! window, and disabled items left to linger.

use crate::compliance::{Rule, Severity, Target};

macro_rules! of_type {
    ($t:literal) => {
        concat!(
            "SELECT a.id FROM assets a JOIN vaults v ON v.id = a.vault_id \
            WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL AND a.asset_type = '",
            $t,
            "'"
        )
    };
}

macro_rules! expiry_set {
    ($id:literal, $t:literal, $target:expr, $title:literal) => {
        Rule {
            id: $id,
            title: $title,
            severity: Severity::Medium,
            target: $target,
            remedy: "Set an expiry date, so the item is rotated before it is forgotten.",
            applicable: of_type!($t),
            failing: concat!(
                "SELECT a.id, '{}'::jsonb FROM assets a JOIN vaults v ON v.id = a.vault_id \
                WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL AND a.asset_type = '",
                $t,
                "' AND a.enabled AND a.expires_on IS NULL"
            ),
        }
    };
}

/// The rules of this family.
pub const RULES: &[Rule] = &[
    expiry_set!("KV-EXP-SECRET", "secret", Target::Secret, "Secrets have an expiry date"),
    expiry_set!("KV-EXP-KEY", "key", Target::Key, "Keys have an expiry date"),
    expiry_set!(
        "KV-EXP-CERT",
        "certificate",
        Target::Certificate,
        "Certificates have an expiry date"
    ),
    Rule {
        id: "KV-EXPIRED",
        title: "No enabled item has expired",
        severity: Severity::Critical,
        target: Target::Secret,
        remedy: "Rotate the item, or disable it if nothing uses it any more.",
        applicable: "SELECT a.id FROM assets a JOIN vaults v ON v.id = a.vault_id \
            WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL",
        failing: "SELECT a.id, jsonb_build_object('expiresOn', a.expires_on) \
            FROM assets a JOIN vaults v ON v.id = a.vault_id \
            WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL AND a.enabled \
              AND a.expires_on <= now()",
    },
    Rule {
        id: "KV-EXPIRING-CRITICAL",
        title: "No item expires within the critical window",
        severity: Severity::High,
        target: Target::Secret,
        remedy: "Rotate now: the item expires within the critical window.",
        applicable: "SELECT a.id FROM assets a JOIN vaults v ON v.id = a.vault_id \
            WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL",
        failing: "SELECT a.id, jsonb_build_object('expiresOn', a.expires_on) \
            FROM assets a JOIN vaults v ON v.id = a.vault_id \
            WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL AND a.enabled \
              AND a.expires_on > now() AND a.expires_on < now() + make_interval(days => $1)",
    },
    Rule {
        id: "KV-EXPIRING-WARNING",
        title: "No item expires within the warning window",
        severity: Severity::Low,
        target: Target::Secret,
        remedy: "Plan the rotation: the item expires within the warning window.",
        applicable: "SELECT a.id FROM assets a JOIN vaults v ON v.id = a.vault_id \
            WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL",
        failing: "SELECT a.id, jsonb_build_object('expiresOn', a.expires_on) \
            FROM assets a JOIN vaults v ON v.id = a.vault_id \
            WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL AND a.enabled \
              AND a.expires_on >= now() + make_interval(days => $1) \
              AND a.expires_on < now() + make_interval(days => $2)",
    },
    Rule {
        id: "KV-DISABLED-LINGERING",
        title: "Disabled items are not kept unexpired",
        severity: Severity::Low,
        target: Target::Secret,
        remedy: "Delete the disabled item, or give it an expiry date.",
        applicable: "SELECT a.id FROM assets a JOIN vaults v ON v.id = a.vault_id \
            WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL AND NOT a.enabled",
        failing: "SELECT a.id, '{}'::jsonb FROM assets a JOIN vaults v ON v.id = a.vault_id \
            WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL AND NOT a.enabled \
              AND (a.expires_on IS NULL OR a.expires_on > now())",
    },
];
