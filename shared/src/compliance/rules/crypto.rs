//! Cryptographic strength: RSA keys and certificates of at least 2048 bits, and a validity
//! that is not longer than 13 months for certificates.

use crate::compliance::{Rule, Severity, Target};

/// The rules of this family.
pub const RULES: &[Rule] = &[
    Rule {
        id: "KV-KEY-SIZE",
        title: "RSA keys are at least 2048 bits",
        severity: Severity::High,
        target: Target::Key,
        remedy: "Create a new key version of at least 2048 (better 3072) bits.",
        applicable: "SELECT a.id FROM assets a WHERE a.deleted_at IS NULL \
            AND a.asset_type = 'key' AND a.key_type LIKE 'RSA%'",
        failing: "SELECT a.id, jsonb_build_object('keySize', a.key_size) FROM assets a \
            WHERE a.deleted_at IS NULL AND a.asset_type = 'key' AND a.key_type LIKE 'RSA%' \
              AND coalesce(a.key_size, 0) < 2048",
    },
    Rule {
        id: "KV-CERT-KEY-SIZE",
        title: "Certificates with RSA keys use at least 2048 bits",
        severity: Severity::High,
        target: Target::Certificate,
        remedy: "Reissue the certificate with a key of at least 2048 bits.",
        applicable: "SELECT a.id FROM assets a WHERE a.deleted_at IS NULL \
            AND a.asset_type = 'certificate' AND a.key_type = 'RSA'",
        failing: "SELECT a.id, jsonb_build_object('keySize', a.key_size) FROM assets a \
            WHERE a.deleted_at IS NULL AND a.asset_type = 'certificate' AND a.key_type = 'RSA' \
              AND coalesce(a.key_size, 0) < 2048",
    },
    Rule {
        id: "KV-CERT-VALIDITY",
        title: "Certificates are valid for at most 398 days",
        severity: Severity::Low,
        target: Target::Certificate,
        remedy: "Issue certificates with a validity of 398 days or less and renew them sooner.",
        applicable: "SELECT a.id FROM assets a WHERE a.deleted_at IS NULL \
            AND a.asset_type = 'certificate' AND a.not_before IS NOT NULL \
            AND a.expires_on IS NOT NULL",
        failing: "SELECT a.id, jsonb_build_object('validityDays', \
                extract(day FROM a.expires_on - a.not_before)::int) FROM assets a \
            WHERE a.deleted_at IS NULL AND a.asset_type = 'certificate' \
              AND a.expires_on - a.not_before > interval '398 days'",
    },
];
