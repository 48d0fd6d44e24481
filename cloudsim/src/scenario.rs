//! Scenario files: the JSON format describing a tenant (subscriptions, vaults, items with
//! relative dates), the embedded default demo scenario, and the builder that turns a scenario
//! into the in-memory [`crate::state`] model. See cloudsim/README.md for the format.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rcgen::{Issuer, KeyPair};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::certs::{CertInfo, LeafSpec};
use crate::state::{
    Attrs, CertPolicy, CertVersion, Certificate, DAY, Key, KeyVersion, PublicJwk, Secret,
    SecretVersion, Subscription, Vault,
};

/// The embedded default scenario (used when `--scenario` is not given).
pub const DEFAULT_SCENARIO: &str = include_str!("../scenarios/default.json");

/// Top level of a scenario file.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Scenario {
    /// Tenant GUID (default: derived from `seed`).
    pub tenant_id: Option<String>,
    /// Client (application) id of the registered app.
    pub client_id: Option<String>,
    /// Client secret of the registered app.
    pub client_secret: Option<String>,
    /// Object id of the app's service principal.
    pub service_principal_object_id: Option<String>,
    /// App roles emitted in tokens.
    #[serde(default)]
    pub roles: Vec<String>,
    /// ARM list page size (default 4).
    pub arm_page_size: Option<usize>,
    /// Seed for generated values (default 1).
    pub seed: Option<u64>,
    /// Explicit subscriptions.
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionSpec>,
    /// Optional bulk generator appended after the explicit subscriptions.
    pub generate: Option<GenerateSpec>,
    /// Further app registrations of the home tenant (Graph, client credentials).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applications: Vec<crate::directory::AppSpec>,
    /// Managed identities (default: one system-assigned identity).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub managed_identities: Vec<crate::directory::ManagedIdentitySpec>,
    /// `X-IDENTITY-HEADER` value of the App Service identity endpoint (default: derived).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity_header: Option<String>,
    /// B2C tenants (further tenants with their own apps and policy key sets).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub b2c_tenants: Vec<crate::directory::B2cTenantSpec>,
    /// Azure DevOps organisations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devops: Vec<crate::devops::OrgSpec>,
}

/// A subscription and its vaults.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SubscriptionSpec {
    /// Subscription GUID (default: derived from seed and display name).
    pub subscription_id: Option<String>,
    /// Display name.
    pub display_name: String,
    /// State (default Enabled).
    pub state: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Vaults in this subscription.
    #[serde(default)]
    pub vaults: Vec<VaultSpec>,
    /// App Service and Function App sites.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sites: Vec<crate::resources::SiteSpec>,
    /// Container Apps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub container_apps: Vec<crate::resources::ContainerAppSpec>,
    /// API Management services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_management: Vec<crate::resources::ApimSpec>,
    /// Application Gateways.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub application_gateways: Vec<crate::resources::AppGatewaySpec>,
}

/// A vault.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VaultSpec {
    /// Vault name (3-24 chars, unique).
    pub name: String,
    /// Resource group (default rg-{name}).
    pub resource_group: Option<String>,
    /// Region (default westeurope).
    pub location: Option<String>,
    /// standard (default) or premium.
    pub sku: Option<String>,
    /// RBAC authorization (default true).
    pub rbac: Option<bool>,
    /// Soft delete (default true).
    pub soft_delete: Option<bool>,
    /// Purge protection (default false).
    pub purge_protection: Option<bool>,
    /// Enabled (default) or Disabled (data plane answers 403 ForbiddenByFirewall).
    pub public_network_access: Option<String>,
    /// Interleave empty pages in list responses (default false).
    #[serde(default)]
    pub empty_pages: bool,
    /// Deny the product's identity on the data plane (403 ForbiddenByRbac, or
    /// ForbiddenByPolicy for access-policy vaults).
    #[serde(default)]
    pub deny_access: bool,
    /// Days since the vault was created (default 400).
    pub created_days_ago: Option<i64>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Explicit secrets.
    #[serde(default)]
    pub secrets: Vec<SecretSpec>,
    /// Explicit keys.
    #[serde(default)]
    pub keys: Vec<KeySpec>,
    /// Explicit certificates.
    #[serde(default)]
    pub certificates: Vec<CertSpec>,
    /// Generated items added after the explicit ones.
    pub fill: Option<FillSpec>,
}

/// Options common to every item.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemCommon {
    /// Days until expiry; negative = expired; absent/null = no expiry.
    pub expires_in_days: Option<i64>,
    /// Days since the current version was created (default 30).
    pub created_days_ago: Option<i64>,
    /// Number of older versions (default 0).
    #[serde(default)]
    pub versions: u32,
    /// Enabled (default true).
    pub enabled: Option<bool>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A secret.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretSpec {
    /// Secret name.
    pub name: String,
    /// Content type.
    pub content_type: Option<String>,
    /// Fixed value (default: random).
    pub value: Option<String>,
    /// Common options.
    #[serde(flatten)]
    pub common: ItemCommon,
}

/// A key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeySpec {
    /// Key name.
    pub name: String,
    /// RSA (default), RSA-HSM, EC or EC-HSM.
    pub kty: Option<String>,
    /// RSA size: 2048 (default), 3072, 4096.
    pub size: Option<u32>,
    /// EC curve: P-256 (default), P-384, P-521.
    pub curve: Option<String>,
    /// Key operations (default by type).
    pub key_ops: Option<Vec<String>>,
    /// Common options.
    #[serde(flatten)]
    pub common: ItemCommon,
}

/// A certificate: `source` is `system` (next real CA certificate of the machine) or
/// `generated` (a leaf issued by the cloudsim CA, or self-signed with `issuer: "Self"`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertSpec {
    /// Name (default: derived from the subject CN).
    pub name: Option<String>,
    /// system or generated (default generated).
    pub source: Option<String>,
    /// Subject for generated certificates (default CN={name}).
    pub subject: Option<String>,
    /// DNS SANs for generated certificates.
    #[serde(default)]
    pub sans: Vec<String>,
    /// Validity in months for generated certificates (default 12).
    pub validity_months: Option<i64>,
    /// Self or Unknown (default Unknown; Self makes a generated cert self-signed).
    pub issuer: Option<String>,
    /// Common options (for system certs, expiresInDays is ignored: the real notAfter is used).
    #[serde(flatten)]
    pub common: ItemCommon,
}

/// Generated items for one vault, with a fixed spread of expiry dates.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FillSpec {
    /// Number of secrets.
    #[serde(default)]
    pub secrets: usize,
    /// Number of keys.
    #[serde(default)]
    pub keys: usize,
    /// Number of generated certificates.
    #[serde(default)]
    pub certificates: usize,
    /// Number of real system CA certificates.
    #[serde(default)]
    pub system_certificates: usize,
}

/// Bulk tenant generator (for benchmarks).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GenerateSpec {
    /// Number of subscriptions.
    pub subscriptions: usize,
    /// Vaults in each subscription.
    pub vaults_per_subscription: usize,
    /// Secrets per vault.
    #[serde(default)]
    pub secrets_per_vault: usize,
    /// Keys per vault.
    #[serde(default)]
    pub keys_per_vault: usize,
    /// Generated certificates per vault.
    #[serde(default)]
    pub certificates_per_vault: usize,
    /// Seed (default: the scenario seed).
    pub seed: Option<u64>,
}

/// Inputs of the builder that are not part of the scenario.
pub struct BuildCtx<'a> {
    /// Reference time (Unix seconds).
    pub now: i64,
    /// CA that signs generated certificates.
    pub ca: &'a Issuer<'static, KeyPair>,
    /// Key of generated leaf certificates.
    pub leaf_key: &'a KeyPair,
    /// System CA certificates, sorted.
    pub system: &'a [CertInfo],
}

/// The built tenant (vault addresses are filled in once listeners are bound).
pub struct Built {
    /// Tenant GUID.
    pub tenant_id: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// Service principal object id.
    pub sp_object_id: String,
    /// Roles.
    pub roles: Vec<String>,
    /// ARM page size.
    pub arm_page_size: usize,
    /// Subscriptions.
    pub subscriptions: Vec<Subscription>,
    /// Vaults.
    pub vaults: Vec<Vault>,
    /// The scenario seed.
    pub seed: u64,
    /// Resources that reference vaults.
    pub deps: Vec<crate::resources::Dep>,
    /// Tenants (home first).
    pub tenants: Vec<crate::directory::Tenant>,
    /// Managed identities.
    pub identities: Vec<crate::directory::ManagedIdentity>,
    /// App Service identity header value.
    pub identity_header: String,
    /// Azure DevOps organisations.
    pub devops: Vec<crate::devops::Org>,
}

/// Parses a scenario from JSON text.
pub fn parse(text: &str) -> Result<Scenario> {
    serde_json::from_str(text).context("parsing scenario JSON")
}

/// A deterministic RNG for a labelled purpose.
pub(crate) fn rng_for(seed: u64, parts: &[&str]) -> StdRng {
    let mut h = sha2::Sha256::new();
    h.update(seed.to_le_bytes());
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    let out: [u8; 32] = h.finalize().into();
    StdRng::from_seed(out)
}

/// A deterministic GUID (version-4 layout) for a labelled purpose.
pub fn guid_for(seed: u64, parts: &[&str]) -> String {
    let mut b = [0u8; 16];
    rng_for(seed, parts).fill(&mut b);
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

pub(crate) fn hex_id(rng: &mut StdRng) -> String {
    let mut b = [0u8; 16];
    rng.fill(&mut b);
    hex::encode(b)
}

fn random_value(rng: &mut StdRng, len: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789~._-";
    (0..len).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect()
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    out.chars().take(90).collect::<String>().trim_end_matches('-').to_string()
}

const SECRET_WORDS: &[&str] = &[
    "db-password",
    "api-key",
    "storage-connection",
    "sp-client-secret",
    "redis-access-key",
    "jwt-signing-secret",
    "smtp-password",
    "sas-token",
    "webhook-secret",
    "sql-admin",
    "cosmos-key",
    "servicebus-connection",
];
const KEY_WORDS: &[&str] = &["cmk", "signing", "wrap", "tde", "backup", "token", "disk", "data"];
const CERT_WORDS: &[&str] =
    &["api", "portal", "login", "gateway", "mtls", "admin", "billing", "status", "cdn", "mail"];
const ITEM_EXPIRY: &[Option<i64>] = &[
    Some(-20),
    Some(-3),
    Some(2),
    Some(5),
    Some(15),
    Some(25),
    Some(60),
    Some(200),
    None,
    None,
    Some(400),
];
const CERT_EXPIRY: &[i64] = &[-20, -3, 2, 5, 15, 25, 60, 200, 365];
const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("text/plain"),
    Some("application/json"),
    Some("password"),
    Some("connection-string"),
];

fn fill_tags(i: usize, env: &str, word: &str) -> BTreeMap<String, String> {
    let mut t = BTreeMap::new();
    match i % 4 {
        1 => {
            t.insert("env".into(), env.into());
            t.insert("owner".into(), "platform-team".into());
        }
        2 => {
            t.insert("env".into(), env.into());
            t.insert("app".into(), word.into());
        }
        3 => {
            t.insert("rotation".into(), "manual".into());
        }
        _ => {}
    }
    t
}

/// Expands a vault's `fill` block into explicit item specs.
fn expand_fill(v: &mut VaultSpec, vi: usize) {
    let Some(fill) = v.fill.clone() else {
        return;
    };
    let env = v.tags.get("env").cloned().unwrap_or_else(|| "prod".to_string());
    let premium = v.sku.as_deref() == Some("premium");
    for i in 0..fill.secrets {
        let word = SECRET_WORDS[(i + vi) % SECRET_WORDS.len()];
        v.secrets.push(SecretSpec {
            name: format!("{word}-{i:02}"),
            content_type: CONTENT_TYPES[(i + vi) % CONTENT_TYPES.len()].map(str::to_string),
            value: None,
            common: ItemCommon {
                expires_in_days: ITEM_EXPIRY[(i + vi * 3) % ITEM_EXPIRY.len()],
                created_days_ago: Some(40 + ((i * 37 + vi * 11) % 300) as i64),
                versions: ((i + vi) % 3) as u32,
                enabled: Some((i * 7 + vi) % 9 != 4),
                tags: fill_tags(i, &env, word),
            },
        });
    }
    for i in 0..fill.keys {
        let word = KEY_WORDS[(i + vi) % KEY_WORDS.len()];
        let (kty, size, curve) = match (i + vi) % if premium { 8 } else { 6 } {
            0 => ("RSA", 2048, None),
            1 => ("RSA", 3072, None),
            2 => ("EC", 0, Some("P-256")),
            3 => ("RSA", 4096, None),
            4 => ("EC", 0, Some("P-384")),
            5 => ("EC", 0, Some("P-521")),
            6 => ("RSA-HSM", 2048, None),
            _ => ("EC-HSM", 0, Some("P-256")),
        };
        v.keys.push(KeySpec {
            name: format!("key-{word}-{i:02}"),
            kty: Some(kty.into()),
            size: (size > 0).then_some(size),
            curve: curve.map(str::to_string),
            key_ops: None,
            common: ItemCommon {
                expires_in_days: ITEM_EXPIRY[(i + vi * 5 + 2) % ITEM_EXPIRY.len()],
                created_days_ago: Some(45 + ((i * 29 + vi * 13) % 300) as i64),
                versions: ((i + vi + 1) % 3) as u32,
                enabled: Some((i * 5 + vi) % 8 != 6),
                tags: fill_tags(i + 1, &env, word),
            },
        });
    }
    for i in 0..fill.certificates {
        let word = CERT_WORDS[(i + vi) % CERT_WORDS.len()];
        let host = format!("{word}.{}.contoso.com", slug(&env));
        v.certificates.push(CertSpec {
            name: Some(format!("cert-{word}-{i:02}")),
            source: Some("generated".into()),
            subject: Some(format!("CN={host}, O=Contoso Ltd, C=US")),
            sans: vec![host.clone(), format!("www.{host}")],
            validity_months: Some(12),
            issuer: Some(if i % 5 == 4 { "Self" } else { "Unknown" }.into()),
            common: ItemCommon {
                expires_in_days: Some(CERT_EXPIRY[(i + vi * 2) % CERT_EXPIRY.len()]),
                created_days_ago: None,
                versions: ((i + vi) % 2) as u32,
                enabled: Some((i + vi) % 7 != 5),
                tags: fill_tags(i + 2, &env, word),
            },
        });
    }
    for i in 0..fill.system_certificates {
        v.certificates.push(CertSpec {
            name: None,
            source: Some("system".into()),
            common: ItemCommon {
                created_days_ago: Some(20 + ((i * 17 + vi * 7) % 200) as i64),
                versions: (i % 4 == 1) as u32,
                enabled: Some((i + vi) % 10 != 9),
                tags: fill_tags(i + 3, &env, "ca"),
                ..ItemCommon::default()
            },
            ..CertSpec::default()
        });
    }
}

/// Expands the `generate` block into subscription specs.
fn expand_generate(g: &GenerateSpec, seed: u64) -> Vec<SubscriptionSpec> {
    let seed = g.seed.unwrap_or(seed);
    (0..g.subscriptions)
        .map(|s| SubscriptionSpec {
            subscription_id: Some(guid_for(seed, &["gen-sub", &s.to_string()])),
            display_name: format!("Generated Subscription {s:03}"),
            state: None,
            tags: BTreeMap::new(),
            vaults: (0..g.vaults_per_subscription)
                .map(|v| VaultSpec {
                    name: format!("kv-gen-{s:03}-{v:04}"),
                    resource_group: Some(format!("rg-gen-{s:03}-{}", v % 3)),
                    location: Some(["westeurope", "eastus", "northeurope"][v % 3].into()),
                    sku: Some(if v % 4 == 3 { "premium" } else { "standard" }.into()),
                    rbac: Some(v % 2 == 0),
                    purge_protection: Some(v % 3 == 1),
                    empty_pages: v % 5 == 2,
                    tags: [("env".to_string(), "bench".to_string())].into(),
                    fill: Some(FillSpec {
                        secrets: g.secrets_per_vault,
                        keys: g.keys_per_vault,
                        certificates: g.certificates_per_vault,
                        system_certificates: 0,
                    }),
                    ..VaultSpec::default()
                })
                .collect(),
            ..SubscriptionSpec::default()
        })
        .collect()
}

fn attrs(now: i64, c: &ItemCommon, default_created: i64) -> Attrs {
    let created = now - c.created_days_ago.unwrap_or(default_created) * DAY;
    Attrs {
        enabled: c.enabled.unwrap_or(true),
        created,
        updated: created,
        nbf: None,
        exp: c.expires_in_days.map(|d| now + d * DAY),
    }
}

/// Attributes of older version `k` (1 = just before current) given the current ones.
fn older_attrs(cur: &Attrs, k: u32) -> Attrs {
    let shift = i64::from(k) * 90 * DAY;
    Attrs {
        enabled: true,
        created: cur.created - shift,
        updated: cur.created - shift,
        nbf: cur.nbf.map(|n| n - shift),
        exp: cur.exp.map(|e| e - shift),
    }
}

pub(crate) fn build_secret(seed: u64, vault: &str, s: &SecretSpec, now: i64) -> Secret {
    let mut rng = rng_for(seed, &["secret", vault, &s.name]);
    let cur = attrs(now, &s.common, 30);
    let mut versions = Vec::new();
    for k in (0..=s.common.versions).rev() {
        let a = if k == 0 { cur.clone() } else { older_attrs(&cur, k) };
        let value = match (&s.value, s.content_type.as_deref()) {
            (Some(v), _) => v.clone(),
            (None, Some("application/json")) => format!(
                "{{\"username\":\"svc-{}\",\"password\":\"{}\"}}",
                slug(&s.name),
                random_value(&mut rng, 24)
            ),
            (None, Some("connection-string")) => format!(
                "Server=tcp:{}.database.windows.net,1433;User ID=app;Password={};Encrypt=True;",
                slug(&s.name),
                random_value(&mut rng, 20)
            ),
            _ => random_value(&mut rng, 32),
        };
        versions.push(SecretVersion {
            version: hex_id(&mut rng),
            attrs: a,
            value,
            content_type: s.content_type.clone(),
            tags: s.common.tags.clone(),
        });
    }
    Secret { name: s.name.clone(), managed: false, versions }
}

pub(crate) fn default_key_ops(kty: &str) -> Vec<String> {
    let ops: &[&str] = if kty.starts_with("EC") {
        &["sign", "verify"]
    } else {
        &["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
    };
    ops.iter().map(|s| s.to_string()).collect()
}

/// A real EC public point on `curve`. The key pair is generated with aws-lc directly: rcgen's
/// `generate_for` serialises to PKCS#8 and parses it back, which checks the key with a second
/// scalar multiplication and made EC keys the largest cost of loading big scenarios.
pub(crate) fn ec_jwk(curve: &str) -> Result<PublicJwk> {
    use aws_lc_rs::signature::{self, KeyPair as _};
    let alg = match curve {
        "P-256" => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        "P-384" => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        "P-521" => &signature::ECDSA_P521_SHA512_ASN1_SIGNING,
        other => bail!("unsupported EC curve {other} (P-256, P-384, P-521)"),
    };
    let kp =
        signature::EcdsaKeyPair::generate(alg).map_err(|_| anyhow::anyhow!("generating EC key"))?;
    let raw = kp.public_key().as_ref();
    let half = (raw.len().saturating_sub(1)) / 2;
    if raw.len() < 3 {
        bail!("short EC point");
    }
    Ok(PublicJwk::Ec {
        crv: curve.to_string(),
        x: raw[1..=half].to_vec(),
        y: raw[half + 1..].to_vec(),
    })
}

pub(crate) fn rsa_jwk(rng: &mut StdRng, bits: u32) -> Result<PublicJwk> {
    if !matches!(bits, 2048 | 3072 | 4096) {
        bail!("unsupported RSA size {bits} (2048, 3072, 4096)");
    }
    let mut n = vec![0u8; (bits / 8) as usize];
    rng.fill(&mut n[..]);
    n[0] |= 0xc0;
    if let Some(last) = n.last_mut() {
        *last |= 1;
    }
    Ok(PublicJwk::Rsa { n, e: vec![1, 0, 1] })
}

pub(crate) fn build_key(seed: u64, vault: &str, k: &KeySpec, now: i64) -> Result<Key> {
    let mut rng = rng_for(seed, &["key", vault, &k.name]);
    let kty = k.kty.clone().unwrap_or_else(|| "RSA".into());
    if !matches!(kty.as_str(), "RSA" | "RSA-HSM" | "EC" | "EC-HSM") {
        bail!("key {}: unsupported kty {kty}", k.name);
    }
    let cur = attrs(now, &k.common, 30);
    let mut versions = Vec::new();
    for i in (0..=k.common.versions).rev() {
        let a = if i == 0 { cur.clone() } else { older_attrs(&cur, i) };
        let jwk = if kty.starts_with("EC") {
            ec_jwk(k.curve.as_deref().unwrap_or("P-256"))?
        } else {
            rsa_jwk(&mut rng, k.size.unwrap_or(2048))?
        };
        versions.push(KeyVersion {
            version: hex_id(&mut rng),
            attrs: a,
            kty: kty.clone(),
            key_ops: k.key_ops.clone().unwrap_or_else(|| default_key_ops(&kty)),
            jwk,
            tags: k.common.tags.clone(),
        });
    }
    Ok(Key { name: k.name.clone(), managed: false, versions, rotation_policy: None })
}

fn months_between(a: i64, b: i64) -> i64 {
    (((b - a) as f64) / (30.436_875 * DAY as f64)).round() as i64
}

fn policy_from(info: &CertInfo, issuer: &str, created: i64) -> CertPolicy {
    let (kty, crv) = match &info.jwk {
        PublicJwk::Rsa { .. } => ("RSA".to_string(), None),
        PublicJwk::Ec { crv, .. } => ("EC".to_string(), Some(crv.clone())),
    };
    CertPolicy {
        kty,
        key_size: (info.key_size > 0).then_some(info.key_size),
        crv,
        exportable: true,
        reuse_key: false,
        content_type: "application/x-pem-file".into(),
        subject: info.subject.clone(),
        sans: info.sans.clone(),
        ekus: info.ekus.clone(),
        key_usage: info.key_usage.clone(),
        validity_months: months_between(info.not_before, info.not_after).max(1),
        issuer: issuer.to_string(),
        action: if issuer == "Self" { "AutoRenew".into() } else { "EmailContacts".into() },
        created,
    }
}

/// Mutable builder context for one vault (cursor into the system CA list, name set).
pub(crate) struct VaultBuilder<'a> {
    pub(crate) ctx: &'a BuildCtx<'a>,
    pub(crate) seed: u64,
    pub(crate) system_cursor: &'a mut usize,
    pub(crate) warned_no_system: &'a mut bool,
}

impl VaultBuilder<'_> {
    fn next_system(&mut self) -> Option<CertInfo> {
        if self.ctx.system.is_empty() {
            return None;
        }
        let info = self.ctx.system[*self.system_cursor % self.ctx.system.len()].clone();
        *self.system_cursor += 1;
        Some(info)
    }

    /// Builds a certificate and its backing key and secret.
    pub(crate) fn build_cert(
        &mut self,
        vault: &str,
        c: &CertSpec,
        fallback_name: &str,
    ) -> Result<(Certificate, Key, Secret)> {
        let now = self.ctx.now;
        let source = c.source.clone().unwrap_or_else(|| "generated".into());
        let mut system = None;
        if source == "system" {
            system = self.next_system();
            if system.is_none() && !*self.warned_no_system {
                tracing::warn!(
                    "no system CA certificates found in {} or {}: generating instead",
                    crate::certs::SYSTEM_BUNDLE,
                    crate::certs::SYSTEM_DIR
                );
                *self.warned_no_system = true;
            }
        } else if source != "generated" {
            bail!("certificate source must be system or generated, got {source}");
        }
        let name = match (&c.name, &system) {
            (Some(n), _) => n.clone(),
            (None, Some(info)) => {
                let cn = info.common_name.clone().unwrap_or_else(|| info.subject.clone());
                format!("ca-{}", slug(&cn))
            }
            (None, None) => fallback_name.to_string(),
        };
        let mut rng = rng_for(self.seed, &["cert", vault, &name]);
        let issuer = c.issuer.clone().unwrap_or_else(|| "Unknown".into());
        let mut infos: Vec<(CertInfo, Attrs)> = Vec::new();
        let is_generated = system.is_none();
        let created_cur = now - c.common.created_days_ago.unwrap_or(30) * DAY;
        if let Some(info) = system {
            for k in (0..=c.common.versions).rev() {
                let created = created_cur - i64::from(k) * 60 * DAY;
                let a = Attrs {
                    enabled: if k == 0 { c.common.enabled.unwrap_or(true) } else { true },
                    created,
                    updated: created,
                    nbf: Some(info.not_before),
                    exp: Some(info.not_after),
                };
                infos.push((info.clone(), a));
            }
        } else {
            let months = c.validity_months.unwrap_or(12).max(1);
            let exp = now + c.common.expires_in_days.unwrap_or(365) * DAY;
            let validity = match c.common.created_days_ago {
                Some(d) => (exp - (now - d * DAY)).max(DAY),
                None => months * 30 * DAY + 5 * DAY,
            };
            let subject = c.subject.clone().unwrap_or_else(|| format!("CN={name}"));
            for k in (0..=c.common.versions).rev() {
                let shift = i64::from(k) * (validity - 30 * DAY).max(DAY);
                let not_after = exp - shift;
                let not_before = not_after - validity;
                let mut serial = [0u8; 16];
                rng.fill(&mut serial);
                let der = crate::certs::generate_leaf(
                    &LeafSpec {
                        subject: &subject,
                        sans: &c.sans,
                        not_before,
                        not_after,
                        self_signed: issuer == "Self",
                        serial,
                    },
                    self.ctx.leaf_key,
                    self.ctx.ca,
                )?;
                let info = crate::certs::cert_info(&der)?;
                let created = not_before.min(now);
                let a = Attrs {
                    enabled: if k == 0 { c.common.enabled.unwrap_or(true) } else { true },
                    created,
                    updated: created,
                    nbf: Some(not_before),
                    exp: Some(not_after),
                };
                infos.push((info, a));
            }
        }
        let last = infos.last().context("certificate without versions")?;
        let policy = policy_from(&last.0, &issuer, infos[0].1.created);
        let key_pem = is_generated.then(|| self.ctx.leaf_key.serialize_pem());
        let mut cert =
            Certificate { name: name.clone(), versions: Vec::new(), policy, operation: None };
        let mut key =
            Key { name: name.clone(), managed: true, versions: Vec::new(), rotation_policy: None };
        let mut secret = Secret { name: name.clone(), managed: true, versions: Vec::new() };
        for (info, a) in infos {
            let version = hex_id(&mut rng);
            let kty = match info.jwk {
                PublicJwk::Rsa { .. } => "RSA",
                PublicJwk::Ec { .. } => "EC",
            };
            let cert_pem = crate::certs::to_pem("CERTIFICATE", &info.der);
            key.versions.push(KeyVersion {
                version: version.clone(),
                attrs: a.clone(),
                kty: kty.into(),
                key_ops: default_key_ops(kty),
                jwk: info.jwk.clone(),
                tags: BTreeMap::new(),
            });
            secret.versions.push(SecretVersion {
                version: version.clone(),
                attrs: a.clone(),
                value: match &key_pem {
                    Some(k) => format!("{k}{cert_pem}"),
                    None => cert_pem,
                },
                content_type: Some(cert.policy.content_type.clone()),
                tags: BTreeMap::new(),
            });
            cert.versions.push(CertVersion {
                version,
                attrs: a,
                der: info.der,
                tags: c.common.tags.clone(),
            });
        }
        Ok((cert, key, secret))
    }
}

pub(crate) fn check_name(kind: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 127
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if !ok {
        bail!("{kind} name {name:?} must be 1-127 letters, digits or dashes");
    }
    Ok(())
}

/// Builds the tenant model from a scenario.
pub fn build(sc: &Scenario, ctx: &BuildCtx<'_>) -> Result<Built> {
    let seed = sc.seed.unwrap_or(1);
    let mut subs_spec = sc.subscriptions.clone();
    if let Some(g) = &sc.generate {
        subs_spec.extend(expand_generate(g, seed));
    }
    let mut subscriptions = Vec::new();
    let mut vaults = Vec::new();
    let mut vault_names = BTreeSet::new();
    let mut cursor = 0usize;
    let mut warned = false;
    let mut vi = 0usize;
    for s in &subs_spec {
        let sub_id =
            s.subscription_id.clone().unwrap_or_else(|| guid_for(seed, &["sub", &s.display_name]));
        subscriptions.push(Subscription {
            id: sub_id.clone(),
            display_name: s.display_name.clone(),
            state: s.state.clone().unwrap_or_else(|| "Enabled".into()),
            tags: s.tags.clone(),
        });
        for vspec in &s.vaults {
            if !vault_names.insert(vspec.name.to_lowercase()) {
                bail!("duplicate vault name {}", vspec.name);
            }
            vaults.push(build_vault(vspec, &sub_id, vi, ctx, seed, &mut cursor, &mut warned)?);
            vi += 1;
        }
    }
    let mut deps = Vec::new();
    for (s, sub) in subs_spec.iter().zip(&subscriptions) {
        let specs = crate::resources::DepSpecs {
            sites: &s.sites,
            container_apps: &s.container_apps,
            api_management: &s.api_management,
            application_gateways: &s.application_gateways,
        };
        deps.extend(crate::resources::build(&sub.id, &specs, &vaults)?);
    }
    let tenant_id = sc.tenant_id.clone().unwrap_or_else(|| guid_for(seed, &["tenant"]));
    let client_id = sc.client_id.clone().unwrap_or_else(|| guid_for(seed, &["client"]));
    let client_secret = sc
        .client_secret
        .clone()
        .unwrap_or_else(|| format!("cs~{}", random_value(&mut rng_for(seed, &["secret"]), 34)));
    let sp_object_id =
        sc.service_principal_object_id.clone().unwrap_or_else(|| guid_for(seed, &["sp"]));
    let tenants = crate::directory::build(
        &crate::directory::HomeSpec {
            tenant_id: &tenant_id,
            client_id: &client_id,
            client_secret: &client_secret,
            sp_object_id: &sp_object_id,
            roles: &sc.roles,
            applications: &sc.applications,
            b2c: &sc.b2c_tenants,
        },
        &crate::directory::DirectoryCtx { seed, now: ctx.now, ca: ctx.ca, leaf_key: ctx.leaf_key },
    )?;
    let identities = crate::directory::build_identities(
        &sc.managed_identities,
        subscriptions.first().map(|s| s.id.as_str()),
        seed,
    );
    let subs: Vec<(String, String)> =
        subscriptions.iter().map(|s| (s.id.clone(), s.display_name.clone())).collect();
    let devops = crate::devops::build(
        &sc.devops,
        &crate::devops::DevOpsCtx {
            seed,
            now: ctx.now,
            tenant_id: &tenant_id,
            client_id: &client_id,
            subscriptions: &subs,
        },
    )?;
    Ok(Built {
        devops,
        tenant_id,
        client_id,
        client_secret,
        sp_object_id,
        roles: sc.roles.clone(),
        arm_page_size: sc.arm_page_size.unwrap_or(4).max(1),
        subscriptions,
        vaults,
        seed,
        deps,
        tenants,
        identities,
        identity_header: sc
            .identity_header
            .clone()
            .unwrap_or_else(|| guid_for(seed, &["identity-header"])),
    })
}

/// Builds one vault of subscription `sub_id`; `vi` is its position in the scenario (it varies
/// the fill), `cursor` walks the system CA certificates.
pub fn build_vault(
    vspec: &VaultSpec,
    sub_id: &str,
    vi: usize,
    ctx: &BuildCtx<'_>,
    seed: u64,
    cursor: &mut usize,
    warned: &mut bool,
) -> Result<Vault> {
    let mut v = vspec.clone();
    check_name("vault", &v.name)?;
    expand_fill(&mut v, vi);
    let mut secrets = Vec::new();
    let mut keys = Vec::new();
    let mut certificates = Vec::new();
    for sp in &v.secrets {
        check_name("secret", &sp.name)?;
        secrets.push(build_secret(seed, &v.name, sp, ctx.now));
    }
    for kp in &v.keys {
        check_name("key", &kp.name)?;
        keys.push(build_key(seed, &v.name, kp, ctx.now)?);
    }
    let mut builder = VaultBuilder { ctx, seed, system_cursor: cursor, warned_no_system: warned };
    let mut cert_names = BTreeSet::new();
    for (ci, cp) in v.certificates.iter().enumerate() {
        let (mut c, mut k, mut sec) = builder.build_cert(&v.name, cp, &format!("cert-{ci:03}"))?;
        if cp.name.is_none() {
            let base = c.name.clone();
            let mut n = 2;
            while cert_names.contains(&c.name.to_lowercase()) {
                c.name = format!("{base}-{n}");
                n += 1;
            }
            k.name = c.name.clone();
            sec.name = c.name.clone();
        }
        check_name("certificate", &c.name)?;
        if !cert_names.insert(c.name.to_lowercase()) {
            bail!("vault {}: duplicate certificate {}", v.name, c.name);
        }
        certificates.push(c);
        keys.push(k);
        secrets.push(sec);
    }
    let mut seen = BTreeSet::new();
    for n in secrets.iter().map(|s| s.name.to_lowercase()) {
        if !seen.insert(n.clone()) {
            bail!("vault {}: duplicate secret name {n} (certificates own one too)", v.name);
        }
    }
    let mut seen = BTreeSet::new();
    for n in keys.iter().map(|s| s.name.to_lowercase()) {
        if !seen.insert(n.clone()) {
            bail!("vault {}: duplicate key name {n} (certificates own one too)", v.name);
        }
    }
    secrets.sort_by_key(|s| s.name.to_lowercase());
    keys.sort_by_key(|s| s.name.to_lowercase());
    certificates.sort_by_key(|s| s.name.to_lowercase());
    let pna = v.public_network_access.clone().unwrap_or_else(|| "Enabled".into());
    if !matches!(pna.as_str(), "Enabled" | "Disabled") {
        bail!("vault {}: publicNetworkAccess must be Enabled or Disabled", v.name);
    }
    let sku = v.sku.clone().unwrap_or_else(|| "standard".into());
    if !matches!(sku.as_str(), "standard" | "premium") {
        bail!("vault {}: sku must be standard or premium", v.name);
    }
    Ok(Vault {
        name: v.name.clone(),
        subscription_id: sub_id.to_string(),
        resource_group: v.resource_group.clone().unwrap_or_else(|| format!("rg-{}", v.name)),
        location: v.location.clone().unwrap_or_else(|| "westeurope".into()),
        sku,
        rbac: v.rbac.unwrap_or(true),
        soft_delete: v.soft_delete.unwrap_or(true),
        purge_protection: v.purge_protection.unwrap_or(false),
        public_network_access: pna == "Enabled",
        empty_pages: v.empty_pages,
        tags: v.tags.clone(),
        created: ctx.now - v.created_days_ago.unwrap_or(400) * DAY,
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        secrets,
        keys,
        certificates,
        deny_access: v.deny_access,
        deleted_secrets: Vec::new(),
        deleted_keys: Vec::new(),
        deleted_certificates: Vec::new(),
    })
}
