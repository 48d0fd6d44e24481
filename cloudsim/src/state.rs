//! The in-memory model of the simulated tenant: subscriptions, vaults and their secrets, keys
//! and certificates (every version), plus the ground-truth statistics served by `/_sim/stats`.
//!
//! The model is built at start-up from a scenario. The mutable part ([`World`]: vaults, items,
//! the app's credential) sits behind a lock so that the data plane's writes and the admin API's
//! mutations can change it; [`Sim::reset`] restores the state the scenario built.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rcgen::{Issuer, KeyPair};
use serde::Serialize;

use crate::certs::CertInfo;
use crate::faults::{Faults, Throttle};
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
    /// Rotation policy set with PUT /keys/{name}/rotationpolicy (Key Vault's JSON shape).
    pub rotation_policy: Option<serde_json::Value>,
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
    /// The CertificateOperation of the last create (served at `/certificates/{name}/pending`).
    pub operation: Option<serde_json::Value>,
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
    /// The product's identity is denied on the data plane (403 ForbiddenByRbac on RBAC vaults,
    /// ForbiddenByPolicy on access-policy vaults).
    pub deny_access: bool,
    /// Soft-deleted secrets (not backing a certificate).
    pub deleted_secrets: Vec<Deleted<Secret>>,
    /// Soft-deleted keys (not backing a certificate).
    pub deleted_keys: Vec<Deleted<Key>>,
    /// Soft-deleted certificates with their backing key and secret.
    pub deleted_certificates: Vec<Deleted<(Certificate, Key, Secret)>>,
}

/// A soft-deleted item and when it was deleted (Unix seconds).
#[derive(Debug, Clone)]
pub struct Deleted<T> {
    /// The item as it was when deleted.
    pub item: T,
    /// Deletion time.
    pub deleted: i64,
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

    /// Whether a scanner with the product's identity can read the vault's items.
    pub fn readable(&self) -> bool {
        self.public_network_access && !self.deny_access
    }
}

/// The mutable part of the simulated cloud.
#[derive(Debug, Clone)]
pub struct World {
    /// Tenants: the home tenant first (its first app is the product's identity), then B2C.
    pub tenants: Vec<crate::directory::Tenant>,
    /// Subscriptions in scenario order.
    pub subscriptions: Vec<Subscription>,
    /// Vaults in scenario order, then vaults added through the admin API.
    pub vaults: Vec<Vault>,
    /// Resources that reference vaults (sites, container apps, APIM, gateways).
    pub deps: Vec<crate::resources::Dep>,
}

impl World {
    /// The home tenant.
    pub fn home(&self) -> &crate::directory::Tenant {
        &self.tenants[0]
    }

    /// The tenant named by GUID or domain.
    pub fn tenant(&self, name: &str) -> Option<&crate::directory::Tenant> {
        self.tenants.iter().find(|t| t.is(name))
    }

    /// The product's own app registration (the home tenant's first app).
    pub fn primary_app(&self) -> &crate::directory::App {
        &self.tenants[0].apps[0]
    }

    /// The vault of that name (case-insensitive).
    pub fn vault(&self, name: &str) -> Option<&Vault> {
        self.vaults.iter().find(|v| v.name.eq_ignore_ascii_case(name))
    }

    /// The index of the vault of that name (case-insensitive).
    pub fn vault_index(&self, name: &str) -> Option<usize> {
        self.vaults.iter().position(|v| v.name.eq_ignore_ascii_case(name))
    }

    /// Ground-truth counts as of `now`.
    pub fn stats(&self, now: i64) -> Stats {
        let mut s = Stats {
            subscriptions: self.subscriptions.len(),
            vaults: self.vaults.len(),
            ..Stats::default()
        };
        for v in self.vaults.iter().filter(|v| v.readable()) {
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

/// What the admin API needs to build items and vaults at run time.
pub struct Material {
    /// Seed of the scenario.
    pub seed: u64,
    /// CA that signs generated certificates.
    pub ca: Issuer<'static, KeyPair>,
    /// Key of generated leaf certificates.
    pub leaf_key: KeyPair,
    /// System CA certificates, sorted.
    pub system: Vec<CertInfo>,
}

/// Listener tasks of vaults added at run time (aborted on reset).
#[derive(Default)]
pub struct Runtime {
    /// TLS acceptor shared by every port.
    pub acceptor: Option<tokio_rustls::TlsAcceptor>,
    /// Tasks serving vaults added through the admin API.
    pub added: Vec<tokio::task::JoinHandle<()>>,
}

/// The whole simulated cloud.
pub struct Sim {
    /// Tenant GUID.
    pub tenant_id: String,
    /// Application (client) id of the one registered app.
    pub client_id: String,
    /// Object id of the app's service principal.
    pub sp_object_id: String,
    /// App roles granted to the service principal (emitted in tokens).
    pub roles: Vec<String>,
    /// ARM list page size.
    pub arm_page_size: usize,
    /// Address of the main listener.
    pub main_addr: SocketAddr,
    /// Token signing key.
    pub signer: Signer,
    /// Fault table, request counters and the request log.
    pub faults: Faults,
    /// Key Vault throttling (per vault, per window).
    pub throttle: Throttle,
    /// The mutable world.
    pub world: RwLock<World>,
    /// The world as the scenario built it (restored by [`Sim::reset`]).
    pub initial: World,
    /// Keys and certificates for items built at run time.
    pub material: Material,
    /// Listener tasks of added vaults.
    pub runtime: Mutex<Runtime>,
    /// Managed identities served on the App Service and IMDS endpoints (first: default).
    pub identities: Vec<crate::directory::ManagedIdentity>,
    /// The value App Service clients must send in `X-IDENTITY-HEADER`.
    pub identity_header: String,
    /// Azure DevOps organisations (read-only).
    pub devops: Vec<crate::devops::Org>,
}

impl Sim {
    /// `https://127.0.0.1:{port}` of the main listener, without trailing slash.
    pub fn main_url(&self) -> String {
        format!("https://{}", crate::http::host_port(self.main_addr))
    }

    /// The token issuer for this tenant.
    pub fn issuer(&self) -> String {
        self.issuer_of(&self.tenant_id)
    }

    /// The token issuer for any tenant GUID (home or B2C).
    pub fn issuer_of(&self, tenant_id: &str) -> String {
        format!("{}/{}/v2.0", self.main_url(), tenant_id)
    }

    /// Validates a token of any tenant cloudsim knows (Graph and Azure DevOps accept them).
    pub fn validate_any_tenant(
        &self,
        token: &str,
        audiences: &[&str],
    ) -> Result<crate::token::Claims, crate::token::TokenError> {
        let w = self.read();
        let ok = |c: &crate::token::Claims| {
            w.tenant(&c.tid).is_some_and(|t| t.id == c.tid && c.iss == self.issuer_of(&t.id))
        };
        self.signer.validate_with(token, audiences, &ok, crate::http::now())
    }

    /// Read access to the world (a poisoned lock is recovered).
    pub fn read(&self) -> RwLockReadGuard<'_, World> {
        self.world.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Write access to the world (a poisoned lock is recovered).
    pub fn write(&self) -> RwLockWriteGuard<'_, World> {
        self.world.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Ground-truth counts as of `now`.
    pub fn stats(&self, now: i64) -> Stats {
        self.read().stats(now)
    }

    /// Restores the scenario's world, clears faults, throttling state, counters and the log,
    /// and stops the listeners of vaults added at run time.
    pub fn reset(&self) {
        *self.write() = self.initial.clone();
        self.faults.clear();
        self.faults.reset_counters();
        self.throttle.reset();
        let mut rt = self.runtime.lock().unwrap_or_else(|p| p.into_inner());
        for task in rt.added.drain(..) {
            task.abort();
        }
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
