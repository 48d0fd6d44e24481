//! The in-memory model of the simulated tenant: subscriptions, vaults and their secrets, keys
//! and certificates (every version), plus the ground-truth statistics served by `/_sim/stats`.
//!
//! The model is built once at start-up from a scenario and is read-only afterwards; only the
//! fault table and request counters (see [`crate::faults`]) change while serving.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::Serialize;

use crate::faults::Faults;
use crate::token::Signer;

/// Seconds in a day.
pub const DAY: i64 = 86_400;

/// Attributes shared by every Key Vault object version (Unix seconds).
#[derive(Debug, Clone)]
pub struct Attrs {
    /// Whether the version is enabled.
    pub enabled: bool,
    /// Creation time.
    pub created: i64,
    /// Last update time.
    pub updated: i64,
    /// Not-before time, if any.
    pub nbf: Option<i64>,
    /// Expiry time, if any.
    pub exp: Option<i64>,
}

/// One version of a secret.
#[derive(Debug, Clone)]
pub struct SecretVersion {
    /// 32 lowercase hex characters.
    pub version: String,
    /// Attributes of this version.
    pub attrs: Attrs,
    /// The secret value returned by GET.
    pub value: String,
    /// Optional content type.
    pub content_type: Option<String>,
    /// Tags of this version.
    pub tags: BTreeMap<String, String>,
}

/// A secret with all its versions (oldest first, the last one is current).
#[derive(Debug, Clone)]
pub struct Secret {
    /// Secret name.
    pub name: String,
    /// True for the secret that backs a certificate.
    pub managed: bool,
    /// Versions, oldest first.
    pub versions: Vec<SecretVersion>,
}

/// Public part of a key in JSON Web Key form (raw big-endian bytes).
#[derive(Debug, Clone)]
pub enum PublicJwk {
    /// RSA modulus and exponent.
    Rsa {
        /// Modulus.
        n: Vec<u8>,
        /// Public exponent.
        e: Vec<u8>,
    },
    /// EC curve point.
    Ec {
        /// Curve name as Key Vault spells it (P-256, P-384, P-521).
        crv: String,
        /// X coordinate.
        x: Vec<u8>,
        /// Y coordinate.
        y: Vec<u8>,
    },
}

/// One version of a key.
#[derive(Debug, Clone)]
pub struct KeyVersion {
    /// 32 lowercase hex characters.
    pub version: String,
    /// Attributes of this version.
    pub attrs: Attrs,
    /// Key type: RSA, RSA-HSM, EC or EC-HSM.
    pub kty: String,
    /// Permitted operations.
    pub key_ops: Vec<String>,
    /// Public key material.
    pub jwk: PublicJwk,
    /// Tags of this version.
    pub tags: BTreeMap<String, String>,
}

/// A key with all its versions (oldest first).
#[derive(Debug, Clone)]
pub struct Key {
    /// Key name.
    pub name: String,
    /// True for the key that backs a certificate.
    pub managed: bool,
    /// Versions, oldest first.
    pub versions: Vec<KeyVersion>,
}

/// A certificate policy as Key Vault reports it.
#[derive(Debug, Clone)]
pub struct CertPolicy {
    /// Key type (RSA or EC).
    pub kty: String,
    /// RSA key size or EC size in bits.
    pub key_size: Option<u32>,
    /// EC curve name.
    pub crv: Option<String>,
    /// Whether the private key is exportable.
    pub exportable: bool,
    /// Whether renewals reuse the key.
    pub reuse_key: bool,
    /// Content type of the backing secret.
    pub content_type: String,
    /// Subject distinguished name.
    pub subject: String,
    /// DNS subject alternative names.
    pub sans: Vec<String>,
    /// Extended key usage OIDs.
    pub ekus: Vec<String>,
    /// Key usage names.
    pub key_usage: Vec<String>,
    /// Validity in months.
    pub validity_months: i64,
    /// Issuer name: Self, Unknown or a configured issuer.
    pub issuer: String,
    /// Lifetime action type: AutoRenew or EmailContacts.
    pub action: String,
    /// Creation time of the policy.
    pub created: i64,
}

/// One version of a certificate.
#[derive(Debug, Clone)]
pub struct CertVersion {
    /// 32 lowercase hex characters; shared with the backing key and secret.
    pub version: String,
    /// Attributes; nbf/exp are the certificate's notBefore/notAfter.
    pub attrs: Attrs,
    /// DER encoding of the certificate.
    pub der: Vec<u8>,
    /// Tags of this version.
    pub tags: BTreeMap<String, String>,
}

/// A certificate with all its versions (oldest first) and its policy.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// Certificate name.
    pub name: String,
    /// Versions, oldest first.
    pub versions: Vec<CertVersion>,
    /// The current policy.
    pub policy: CertPolicy,
}

/// A subscription.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// Subscription GUID.
    pub id: String,
    /// Display name.
    pub display_name: String,
    /// Enabled, Disabled, Warned, PastDue or Deleted.
    pub state: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
}

/// A vault: its ARM settings, its listener and its objects.
#[derive(Debug, Clone)]
pub struct Vault {
    /// Vault name.
    pub name: String,
    /// Owning subscription GUID.
    pub subscription_id: String,
    /// Resource group name.
    pub resource_group: String,
    /// Azure region.
    pub location: String,
    /// standard or premium.
    pub sku: String,
    /// RBAC authorization instead of access policies.
    pub rbac: bool,
    /// Soft delete enabled.
    pub soft_delete: bool,
    /// Purge protection enabled.
    pub purge_protection: bool,
    /// False when publicNetworkAccess is Disabled: the data plane answers 403.
    pub public_network_access: bool,
    /// Interleave empty pages with nextLink in list responses.
    pub empty_pages: bool,
    /// Resource tags.
    pub tags: BTreeMap<String, String>,
    /// Creation time of the vault resource.
    pub created: i64,
    /// Socket address of its data-plane listener (set once bound).
    pub addr: SocketAddr,
    /// Secrets sorted by name (including certificate-backing ones).
    pub secrets: Vec<Secret>,
    /// Keys sorted by name (including certificate-backing ones).
    pub keys: Vec<Key>,
    /// Certificates sorted by name.
    pub certificates: Vec<Certificate>,
}

impl Vault {
    /// `https://127.0.0.1:{port}` without trailing slash.
    pub fn base_url(&self) -> String {
        format!("https://{}", crate::http::host_port(self.addr))
    }

    /// The ARM resource id of the vault.
    pub fn resource_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.KeyVault/vaults/{}",
            self.subscription_id, self.resource_group, self.name
        )
    }

    /// The recovery level Key Vault reports for objects in this vault.
    pub fn recovery_level(&self) -> &'static str {
        match (self.soft_delete, self.purge_protection) {
            (true, true) => "Recoverable",
            (true, false) => "Recoverable+Purgeable",
            (false, _) => "Purgeable",
        }
    }

    /// Whether the data plane can be reached at all (not firewalled).
    pub fn reachable(&self) -> bool {
        self.public_network_access
    }
}

/// The whole simulated cloud.
pub struct Sim {
    /// Tenant GUID.
    pub tenant_id: String,
    /// Application (client) id of the one registered app.
    pub client_id: String,
    /// Its client secret.
    pub client_secret: String,
    /// Object id of the app's service principal.
    pub sp_object_id: String,
    /// App roles granted to the service principal (emitted in tokens).
    pub roles: Vec<String>,
    /// ARM list page size.
    pub arm_page_size: usize,
    /// Address of the main listener.
    pub main_addr: SocketAddr,
    /// Subscriptions in scenario order.
    pub subscriptions: Vec<Subscription>,
    /// Vaults in scenario order.
    pub vaults: Vec<Vault>,
    /// Token signing key.
    pub signer: Signer,
    /// Fault table and request counters.
    pub faults: Faults,
}

impl Sim {
    /// `https://127.0.0.1:{port}` of the main listener, without trailing slash.
    pub fn main_url(&self) -> String {
        format!("https://{}", crate::http::host_port(self.main_addr))
    }

    /// The token issuer for this tenant.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.main_url(), self.tenant_id)
    }

    /// Ground-truth counts as of `now`.
    pub fn stats(&self, now: i64) -> Stats {
        let mut s = Stats {
            subscriptions: self.subscriptions.len(),
            vaults: self.vaults.len(),
            ..Stats::default()
        };
        for v in self.vaults.iter().filter(|v| v.reachable()) {
            let counts = VaultCounts::of(v);
            s.secrets += counts.secrets;
            s.keys += counts.keys;
            s.certificates += counts.certificates;
            let mut tally = |exp: Option<i64>| match exp {
                None => s.without_expiry += 1,
                Some(e) if e < now => s.expired += 1,
                Some(e) => {
                    if e < now + 7 * DAY {
                        s.expiring_within_7_days += 1;
                    }
                    if e < now + 30 * DAY {
                        s.expiring_within_30_days += 1;
                    }
                }
            };
            for x in v.secrets.iter().filter(|x| !x.managed) {
                tally(x.versions.last().and_then(|c| c.attrs.exp));
            }
            for x in v.keys.iter().filter(|x| !x.managed) {
                tally(x.versions.last().and_then(|c| c.attrs.exp));
            }
            for x in &v.certificates {
                tally(x.versions.last().and_then(|c| c.attrs.exp));
            }
        }
        s
    }
}

/// Counts of current, non-managed objects in one vault.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct VaultCounts {
    /// Secrets not backing a certificate.
    pub secrets: usize,
    /// Keys not backing a certificate.
    pub keys: usize,
    /// Certificates.
    pub certificates: usize,
}

impl VaultCounts {
    /// Counts the objects of a vault (whether reachable or not).
    pub fn of(v: &Vault) -> Self {
        Self {
            secrets: v.secrets.iter().filter(|s| !s.managed).count(),
            keys: v.keys.iter().filter(|k| !k.managed).count(),
            certificates: v.certificates.len(),
        }
    }
}

/// Ground truth served by `GET /_sim/stats`.
#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Number of subscriptions.
    pub subscriptions: usize,
    /// Number of vaults (reachable or not).
    pub vaults: usize,
    /// Current secrets in reachable vaults, excluding certificate-backing ones.
    pub secrets: usize,
    /// Current keys in reachable vaults, excluding certificate-backing ones.
    pub keys: usize,
    /// Certificates in reachable vaults.
    pub certificates: usize,
    /// Items whose exp is in the past.
    pub expired: usize,
    /// Items with now <= exp < now + 7 days.
    pub expiring_within_7_days: usize,
    /// Items with now <= exp < now + 30 days (includes the 7-day ones).
    pub expiring_within_30_days: usize,
    /// Items without exp.
    pub without_expiry: usize,
}
