//! Licences: an offline-verifiable token signed with Ed25519, `base64url(payload).base64url(sig)`.
//! No network call is ever made. Without a valid licence an installation runs on the STARTER
//! tier; an expired PRO licence falls back to STARTER without losing data.
//!
//! Keys: the production public key is built into the binary from the build-time variable
//! `CERTIFYCLOUDS_LICENSE_PUBLIC_KEY` (base64url of the 32 raw bytes). Tests and the demo sign
//! with a test key whose private seed is public (below); it is selected by
//! `CERTIFYCLOUDS_LICENSE_TEST_KEY=true`, which release builds refuse unless
//! `CERTIFYCLOUDS_ALLOW_TEST_LICENSE_KEY=true` is set too.

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The seed of the test key pair. Public on purpose: licences it signs are for tests and demos.
pub const TEST_SEED: [u8; 32] = *b"certifyclouds-test-licence-seed!";

/// The production public key, if this build was given one.
const PRODUCTION_KEY: Option<&str> = option_env!("CERTIFYCLOUDS_LICENSE_PUBLIC_KEY");

/// The licence tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Tier {
    Starter,
    Pro,
}

/// What a tier allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    pub subscriptions: u32,
    pub users: u32,
    pub manual_rotations_per_month: u32,
}

/// The STARTER tier's limits.
pub const STARTER_LIMITS: Limits =
    Limits { subscriptions: 4, users: 1, manual_rotations_per_month: 0 };

/// Features PRO adds.
pub const PRO_FEATURES: &[&str] = &["rotation", "sync", "dependencies", "sso", "users", "b2c"];
/// Features every tier has.
pub const BASE_FEATURES: &[&str] = &["discovery", "compliance", "alerts", "audit"];

/// The signed payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Licence {
    pub licensee: String,
    pub tier: Tier,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub limits: Limits,
}

/// What `/system/license/status` reports.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = LicenceStatus)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub tier: Tier,
    pub valid: bool,
    /// Why the licence is not in force, when it is not.
    pub reason: Option<String>,
    pub licensee: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub limits: Limits,
    pub features: Vec<&'static str>,
}

impl Status {
    /// Whether `feature` is enabled.
    pub fn allows(&self, feature: &str) -> bool {
        self.features.contains(&feature)
    }
}

/// The test key pair.
pub fn test_key() -> Result<Ed25519KeyPair, String> {
    Ed25519KeyPair::from_seed_unchecked(&TEST_SEED).map_err(|e| format!("test key: {e}"))
}

/// Signs a licence with `key`.
pub fn issue(key: &Ed25519KeyPair, licence: &Licence) -> Result<String, String> {
    let payload = serde_json::to_vec(licence).map_err(|e| e.to_string())?;
    let signature = key.sign(&payload);
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&payload),
        URL_SAFE_NO_PAD.encode(signature.as_ref())
    ))
}

/// Checks a token's signature against `public_keys` and decodes it (expiry is not judged here).
pub fn verify(token: &str, public_keys: &[Vec<u8>]) -> Result<Licence, String> {
    let (payload, signature) =
        token.trim().split_once('.').ok_or("the licence is not a signed token")?;
    let payload =
        URL_SAFE_NO_PAD.decode(payload).map_err(|_| "the licence payload is not base64url")?;
    let signature =
        URL_SAFE_NO_PAD.decode(signature).map_err(|_| "the licence signature is not base64url")?;
    let signed = public_keys
        .iter()
        .any(|k| UnparsedPublicKey::new(&ED25519, k).verify(&payload, &signature).is_ok());
    if !signed {
        return Err("the licence signature does not verify: it was altered or not issued for \
                    this product"
            .to_owned());
    }
    serde_json::from_slice(&payload).map_err(|e| format!("the licence payload is unreadable: {e}"))
}

/// The public keys this process accepts, or an error when test keys are asked for where they
/// are not allowed.
pub fn accepted_keys(use_test_key: bool, allow_test_key: bool) -> Result<Vec<Vec<u8>>, String> {
    let mut keys = Vec::new();
    if let Some(encoded) = PRODUCTION_KEY
        && let Ok(raw) = URL_SAFE_NO_PAD.decode(encoded)
    {
        keys.push(raw);
    }
    if use_test_key {
        if !cfg!(debug_assertions) && !allow_test_key {
            return Err("CERTIFYCLOUDS_LICENSE_TEST_KEY is refused in a release build unless \
                        CERTIFYCLOUDS_ALLOW_TEST_LICENSE_KEY=true"
                .to_owned());
        }
        keys.push(test_key()?.public_key().as_ref().to_vec());
    }
    Ok(keys)
}

/// The status of an installation given its licence token (if any) and accepted keys.
pub fn status(token: Option<&str>, public_keys: &[Vec<u8>], now: DateTime<Utc>) -> Status {
    let starter = |reason: Option<String>| Status {
        tier: Tier::Starter,
        valid: false,
        reason,
        licensee: None,
        expires_at: None,
        limits: STARTER_LIMITS,
        features: BASE_FEATURES.to_vec(),
    };
    let Some(token) = token else {
        return starter(Some("no licence is installed (CERTIFYCLOUDS_LICENSE_KEY)".to_owned()));
    };
    match verify(token, public_keys) {
        Err(reason) => starter(Some(reason)),
        Ok(licence) if licence.expires_at <= now => {
            let mut s = starter(Some(format!("the licence expired at {}", licence.expires_at)));
            s.licensee = Some(licence.licensee);
            s.expires_at = Some(licence.expires_at);
            s
        }
        Ok(licence) => {
            let mut features = BASE_FEATURES.to_vec();
            if licence.tier == Tier::Pro {
                features.extend_from_slice(PRO_FEATURES);
            }
            Status {
                tier: licence.tier,
                valid: true,
                reason: None,
                licensee: Some(licence.licensee),
                expires_at: Some(licence.expires_at),
                limits: licence.limits,
                features,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pro(days: i64) -> Licence {
        Licence {
            licensee: "Contoso".into(),
            tier: Tier::Pro,
            issued_at: Utc::now(),
            expires_at: Utc::now() + chrono::Duration::days(days),
            limits: Limits { subscriptions: 100, users: 50, manual_rotations_per_month: 500 },
        }
    }

    #[test]
    fn a_signed_pro_licence_is_valid_and_a_tampered_one_is_not() {
        let key = test_key().expect("key");
        let keys = accepted_keys(true, false).expect("debug builds accept the test key");
        let token = issue(&key, &pro(30)).expect("issued");
        let s = status(Some(&token), &keys, Utc::now());
        assert!(s.valid && s.tier == Tier::Pro && s.allows("users"), "{s:?}");

        let (payload, sig) = token.split_once('.').expect("two parts");
        let mut bytes = URL_SAFE_NO_PAD.decode(payload).expect("b64");
        let text = String::from_utf8(bytes.clone()).expect("utf8").replace("Contoso", "Fabrikm");
        bytes = text.into_bytes();
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(bytes));
        let s = status(Some(&forged), &keys, Utc::now());
        assert!(!s.valid && s.tier == Tier::Starter, "{s:?}");
        assert!(s.reason.unwrap_or_default().contains("signature"));
    }

    #[test]
    fn an_expired_pro_licence_falls_back_to_starter() {
        let key = test_key().expect("key");
        let keys = accepted_keys(true, false).expect("keys");
        let token = issue(&key, &pro(-1)).expect("issued");
        let s = status(Some(&token), &keys, Utc::now());
        assert_eq!((s.tier, s.valid), (Tier::Starter, false));
        assert_eq!(s.limits, STARTER_LIMITS);
        assert!(s.reason.unwrap_or_default().contains("expired"));
    }
}
