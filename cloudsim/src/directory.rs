//! The directory side of the simulated cloud: tenants (the home tenant and B2C tenants), their
//! app registrations with password and certificate credentials, B2C policy key sets, and the
//! managed identities served on the App Service and IMDS endpoints. Graph serves this model,
//! and the token endpoint checks credentials against it.
//!
//! The scenario's top-level `clientId` / `clientSecret` become the home tenant's first app, so
//! the product's own identity is an ordinary app registration (Graph lists it, `addPassword`
//! works on it).

use anyhow::{Context, Result, bail};
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha1::Digest;

use crate::scenario::{guid_for, rng_for};
use crate::state::DAY;

/// An app registration in a scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppSpec {
    /// Display name (required, unique within its tenant).
    pub display_name: String,
    /// Application (client) id (default: derived from seed and display name).
    pub app_id: Option<String>,
    /// Object id of the application (default: derived).
    pub object_id: Option<String>,
    /// Object id of its service principal (default: derived).
    pub service_principal_object_id: Option<String>,
    /// Days since the registration was created (default 400).
    pub created_days_ago: Option<i64>,
    /// App roles put in its tokens.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Client secrets.
    #[serde(default)]
    pub password_credentials: Vec<PasswordSpec>,
    /// Certificates.
    #[serde(default)]
    pub key_credentials: Vec<KeyCredentialSpec>,
}

/// A client secret of an app.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordSpec {
    /// Display name.
    pub display_name: Option<String>,
    /// The secret text (default: derived from seed).
    pub secret: Option<String>,
    /// Key id GUID (default: derived).
    pub key_id: Option<String>,
    /// Days since it became valid (default 30).
    pub start_days_ago: Option<i64>,
    /// Days until it expires; negative = expired (default 365).
    pub expires_in_days: Option<i64>,
}

/// A certificate credential of an app.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyCredentialSpec {
    /// Display name (default CN={app display name}).
    pub display_name: Option<String>,
    /// Key id GUID (default: derived).
    pub key_id: Option<String>,
    /// PEM certificate (default: a leaf issued by the cloudsim CA with its leaf key).
    pub certificate_pem: Option<String>,
    /// Days since it became valid, for generated certificates (default 30).
    pub start_days_ago: Option<i64>,
    /// Days until it expires, for generated certificates (default 365).
    pub expires_in_days: Option<i64>,
}

/// A managed identity (App Service / IMDS token endpoints).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedIdentitySpec {
    /// Name of the user-assigned identity resource; absent for the system-assigned one.
    pub name: Option<String>,
    /// Client id (default: derived).
    pub client_id: Option<String>,
    /// Principal (object) id (default: derived).
    pub principal_id: Option<String>,
    /// ARM resource id (default: a user-assigned identity id under the first subscription,
    /// or a site id for the system-assigned one).
    pub resource_id: Option<String>,
}

/// A B2C tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct B2cTenantSpec {
    /// Domain, e.g. contosob2c.onmicrosoft.com (required).
    pub domain: String,
    /// Tenant GUID (default: derived).
    pub tenant_id: Option<String>,
    /// Display name (default: the domain's first label).
    pub display_name: Option<String>,
    /// App registrations (default: one "B2C management" app with a secret).
    #[serde(default)]
    pub applications: Vec<AppSpec>,
    /// trustFramework policy key sets.
    #[serde(default)]
    pub key_sets: Vec<KeySetSpec>,
}

/// A B2C policy key set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeySetSpec {
    /// Key set id, e.g. B2C_1A_TokenSigningKeyContainer (required).
    pub id: String,
    /// Keys of the set (default: one signing key).
    #[serde(default)]
    pub keys: Vec<TrustKeySpec>,
}

/// A key of a B2C key set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrustKeySpec {
    /// sig (default) or enc.
    #[serde(rename = "use")]
    pub use_: Option<String>,
    /// RSA (default) or oct.
    pub kty: Option<String>,
    /// Days since it became valid (default 30).
    pub start_days_ago: Option<i64>,
    /// Days until it expires; absent = no expiry.
    pub expires_in_days: Option<i64>,
}

/// A client secret.
#[derive(Debug, Clone)]
pub struct PasswordCredential {
    /// Key id GUID.
    pub key_id: String,
    /// Display name.
    pub display_name: Option<String>,
    /// The secret text (never returned by Graph after creation).
    pub secret: String,
    /// Valid from (Unix seconds).
    pub start: i64,
    /// Valid until (Unix seconds).
    pub end: i64,
    /// Forced expiry through `/_sim/app` (AADSTS7000222 whatever `end` says).
    pub forced_expired: bool,
}

impl PasswordCredential {
    /// Whether the secret no longer works at `now`.
    pub fn expired(&self, now: i64) -> bool {
        self.forced_expired || self.end <= now
    }

    /// The first three characters, as Graph's `hint`.
    pub fn hint(&self) -> String {
        self.secret.chars().take(3).collect()
    }
}

/// A certificate credential.
#[derive(Debug, Clone)]
pub struct KeyCredential {
    /// Key id GUID.
    pub key_id: String,
    /// Display name.
    pub display_name: String,
    /// DER of the certificate.
    pub der: Vec<u8>,
    /// notBefore (Unix seconds).
    pub start: i64,
    /// notAfter (Unix seconds).
    pub end: i64,
    /// Public key (base64url modulus and exponent) when RSA.
    pub rsa: Option<(String, String)>,
}

impl KeyCredential {
    /// Parses a certificate into a credential.
    pub fn from_der(key_id: String, display_name: Option<String>, der: Vec<u8>) -> Result<Self> {
        use base64::Engine;
        let info = crate::certs::cert_info(&der)?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let rsa = match &info.jwk {
            crate::state::PublicJwk::Rsa { n, e } => Some((b64.encode(n), b64.encode(e))),
            crate::state::PublicJwk::Ec { .. } => None,
        };
        Ok(Self {
            key_id,
            display_name: display_name.unwrap_or_else(|| info.subject.clone()),
            start: info.not_before,
            end: info.not_after,
            der,
            rsa,
        })
    }

    /// Uppercase hex SHA-1 thumbprint (Graph's `customKeyIdentifier`).
    pub fn thumbprint_hex(&self) -> String {
        hex::encode_upper(sha1::Sha1::digest(&self.der))
    }

    /// Whether a JWT `x5t` (base64url SHA-1) or `x5t#S256` (base64url SHA-256) names it.
    pub fn matches(&self, x5t: Option<&str>, x5t_s256: Option<&str>) -> bool {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let sha1 = b64.encode(sha1::Sha1::digest(&self.der));
        let sha256 = b64.encode(sha2::Sha256::digest(&self.der));
        x5t.is_some_and(|t| t.trim_end_matches('=') == sha1)
            || x5t_s256.is_some_and(|t| t.trim_end_matches('=') == sha256)
    }
}

/// An app registration and its service principal.
#[derive(Debug, Clone)]
pub struct App {
    /// Object id of the application.
    pub object_id: String,
    /// Application (client) id.
    pub app_id: String,
    /// Display name.
    pub display_name: String,
    /// Object id of the service principal.
    pub sp_object_id: String,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Roles put in tokens.
    pub roles: Vec<String>,
    /// Client secrets.
    pub passwords: Vec<PasswordCredential>,
    /// Certificates.
    pub keys: Vec<KeyCredential>,
}

/// One key of a B2C key set (public parts only, as Graph returns them).
#[derive(Debug, Clone)]
pub struct TrustKey {
    /// Key id.
    pub kid: String,
    /// sig or enc.
    pub use_: String,
    /// RSA or oct.
    pub kty: String,
    /// Base64url modulus (RSA).
    pub n: Option<String>,
    /// Base64url exponent (RSA).
    pub e: Option<String>,
    /// Not before (Unix seconds).
    pub nbf: i64,
    /// Expiry (Unix seconds), if any.
    pub exp: Option<i64>,
}

/// A B2C trustFramework key set.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// Key set id.
    pub id: String,
    /// Its keys.
    pub keys: Vec<TrustKey>,
}

/// A tenant: the home tenant or a B2C tenant.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Tenant GUID.
    pub id: String,
    /// Initial domain.
    pub domain: String,
    /// Display name.
    pub display_name: String,
    /// True for B2C tenants.
    pub b2c: bool,
    /// App registrations; in the home tenant the first one is the product's identity.
    pub apps: Vec<App>,
    /// trustFramework key sets (B2C only).
    pub key_sets: Vec<KeySet>,
}

impl Tenant {
    /// The app with that application id (case-insensitive).
    pub fn app(&self, app_id: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.app_id.eq_ignore_ascii_case(app_id))
    }

    /// Whether `name` (GUID or domain) names this tenant.
    pub fn is(&self, name: &str) -> bool {
        self.id.eq_ignore_ascii_case(name) || self.domain.eq_ignore_ascii_case(name)
    }
}

/// A managed identity.
#[derive(Debug, Clone)]
pub struct ManagedIdentity {
    /// Resource name (None: system-assigned).
    pub name: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Principal (object) id.
    pub principal_id: String,
    /// ARM resource id.
    pub resource_id: String,
}

/// What the directory builder needs besides the scenario.
pub struct DirectoryCtx<'a> {
    /// Scenario seed.
    pub seed: u64,
    /// Reference time.
    pub now: i64,
    /// CA that signs generated certificates.
    pub ca: &'a rcgen::Issuer<'static, rcgen::KeyPair>,
    /// Key of generated certificates.
    pub leaf_key: &'a rcgen::KeyPair,
}

/// The home tenant's identity as the scenario's top level describes it.
pub struct HomeSpec<'a> {
    /// Tenant GUID.
    pub tenant_id: &'a str,
    /// The product's client id.
    pub client_id: &'a str,
    /// The product's client secret.
    pub client_secret: &'a str,
    /// Its service principal's object id.
    pub sp_object_id: &'a str,
    /// Its roles.
    pub roles: &'a [String],
    /// Further app registrations.
    pub applications: &'a [AppSpec],
    /// B2C tenants.
    pub b2c: &'a [B2cTenantSpec],
}

/// A fresh random secret in Entra's style (40 characters with a `~`).
pub fn new_secret() -> String {
    let mut rng = rand::rng();
    secret_from(&mut rng)
}

fn secret_from(rng: &mut impl Rng) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
    let mut s: String = (0..3).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect();
    s.push_str("8Q~");
    s.extend((0..34).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char));
    s
}

fn build_app(spec: &AppSpec, tenant: &str, ctx: &DirectoryCtx<'_>) -> Result<App> {
    let label = |what: &str| guid_for(ctx.seed, &["app", tenant, &spec.display_name, what]);
    let created = ctx.now - spec.created_days_ago.unwrap_or(400) * DAY;
    let mut passwords = Vec::new();
    for (i, p) in spec.password_credentials.iter().enumerate() {
        let n = i.to_string();
        let mut rng = rng_for(ctx.seed, &["app-secret", tenant, &spec.display_name, &n]);
        passwords.push(PasswordCredential {
            key_id: p.key_id.clone().unwrap_or_else(|| label(&format!("pw-{n}"))),
            display_name: p.display_name.clone(),
            secret: p.secret.clone().unwrap_or_else(|| secret_from(&mut rng)),
            start: ctx.now - p.start_days_ago.unwrap_or(30) * DAY,
            end: ctx.now + p.expires_in_days.unwrap_or(365) * DAY,
            forced_expired: false,
        });
    }
    let mut keys = Vec::new();
    for (i, k) in spec.key_credentials.iter().enumerate() {
        let n = i.to_string();
        let key_id = k.key_id.clone().unwrap_or_else(|| label(&format!("key-{n}")));
        let der = match &k.certificate_pem {
            Some(pem) => crate::certs::pem_blocks(pem)
                .into_iter()
                .next()
                .with_context(|| format!("app {}: certificatePem holds no CERTIFICATE", n))?,
            None => {
                let mut serial = [0u8; 16];
                rng_for(ctx.seed, &["app-cert", tenant, &spec.display_name, &n]).fill(&mut serial);
                let subject = format!("CN={}", spec.display_name);
                crate::certs::generate_leaf(
                    &crate::certs::LeafSpec {
                        subject: &subject,
                        sans: &[],
                        not_before: ctx.now - k.start_days_ago.unwrap_or(30) * DAY,
                        not_after: ctx.now + k.expires_in_days.unwrap_or(365) * DAY,
                        self_signed: false,
                        serial,
                    },
                    ctx.leaf_key,
                    ctx.ca,
                )?
            }
        };
        keys.push(KeyCredential::from_der(key_id, k.display_name.clone(), der)?);
    }
    Ok(App {
        object_id: spec.object_id.clone().unwrap_or_else(|| label("object")),
        app_id: spec.app_id.clone().unwrap_or_else(|| label("appid")),
        display_name: spec.display_name.clone(),
        sp_object_id: spec.service_principal_object_id.clone().unwrap_or_else(|| label("sp")),
        created,
        roles: spec.roles.clone(),
        passwords,
        keys,
    })
}

fn build_key_set(spec: &KeySetSpec, tenant: &str, ctx: &DirectoryCtx<'_>) -> KeySet {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let defaults = [TrustKeySpec::default()];
    let keys = if spec.keys.is_empty() { &defaults[..] } else { &spec.keys[..] };
    let keys = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let mut rng = rng_for(ctx.seed, &["b2c-key", tenant, &spec.id, &i.to_string()]);
            let kty = k.kty.clone().unwrap_or_else(|| "RSA".into());
            let (n, e) = if kty == "RSA" {
                let mut n = vec![0u8; 256];
                rng.fill(&mut n[..]);
                n[0] |= 0xc0;
                n[255] |= 1;
                (Some(b64.encode(&n)), Some("AQAB".to_string()))
            } else {
                (None, None)
            };
            TrustKey {
                kid: format!("{}-{}", spec.id.trim_start_matches("B2C_1A_"), i + 1),
                use_: k.use_.clone().unwrap_or_else(|| "sig".into()),
                kty,
                n,
                e,
                nbf: ctx.now - k.start_days_ago.unwrap_or(30) * DAY,
                exp: k.expires_in_days.map(|d| ctx.now + d * DAY),
            }
        })
        .collect();
    KeySet { id: spec.id.clone(), keys }
}

/// Builds the home tenant (product app first, then the scenario's apps) and the B2C tenants.
pub fn build(home: &HomeSpec<'_>, ctx: &DirectoryCtx<'_>) -> Result<Vec<Tenant>> {
    let primary = App {
        object_id: guid_for(ctx.seed, &["app-object", home.client_id]),
        app_id: home.client_id.to_string(),
        display_name: "CertifyClouds".into(),
        sp_object_id: home.sp_object_id.to_string(),
        created: ctx.now - 400 * DAY,
        roles: home.roles.to_vec(),
        passwords: vec![PasswordCredential {
            key_id: guid_for(ctx.seed, &["app-key", home.client_id]),
            display_name: Some("cloudsim".into()),
            secret: home.client_secret.to_string(),
            start: ctx.now - 30 * DAY,
            end: ctx.now + 365 * DAY,
            forced_expired: false,
        }],
        keys: Vec::new(),
    };
    let mut apps = vec![primary];
    for a in home.applications {
        apps.push(build_app(a, home.tenant_id, ctx)?);
    }
    check_unique(&apps, "home tenant")?;
    let mut tenants = vec![Tenant {
        id: home.tenant_id.to_string(),
        domain: "contoso.onmicrosoft.com".into(),
        display_name: "Contoso (cloudsim)".into(),
        b2c: false,
        apps,
        key_sets: Vec::new(),
    }];
    for b in home.b2c {
        let id = b.tenant_id.clone().unwrap_or_else(|| guid_for(ctx.seed, &["b2c", &b.domain]));
        let default_app = [AppSpec {
            display_name: "B2C management".into(),
            password_credentials: vec![PasswordSpec::default()],
            ..AppSpec::default()
        }];
        let specs = if b.applications.is_empty() { &default_app[..] } else { &b.applications[..] };
        let apps = specs.iter().map(|a| build_app(a, &id, ctx)).collect::<Result<Vec<_>>>()?;
        check_unique(&apps, &b.domain)?;
        if tenants.iter().any(|t| t.is(&id) || t.is(&b.domain)) {
            bail!("duplicate tenant {}", b.domain);
        }
        tenants.push(Tenant {
            display_name: b
                .display_name
                .clone()
                .unwrap_or_else(|| b.domain.split('.').next().unwrap_or("").to_string()),
            domain: b.domain.clone(),
            b2c: true,
            key_sets: b.key_sets.iter().map(|k| build_key_set(k, &id, ctx)).collect(),
            apps,
            id,
        });
    }
    Ok(tenants)
}

fn check_unique(apps: &[App], tenant: &str) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for a in apps {
        if !seen.insert(a.app_id.to_lowercase()) {
            bail!("{tenant}: duplicate appId {}", a.app_id);
        }
    }
    Ok(())
}

/// Builds the managed identities (default: one system-assigned identity).
pub fn build_identities(
    specs: &[ManagedIdentitySpec],
    first_subscription: Option<&str>,
    seed: u64,
) -> Vec<ManagedIdentity> {
    let sub = first_subscription.unwrap_or("00000000-0000-0000-0000-000000000000");
    let defaults = [ManagedIdentitySpec::default()];
    let specs = if specs.is_empty() { &defaults[..] } else { specs };
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let label = s.name.clone().unwrap_or_else(|| format!("system-{i}"));
            let resource_id = s.resource_id.clone().unwrap_or_else(|| match &s.name {
                Some(n) => format!(
                    "/subscriptions/{sub}/resourceGroups/rg-identities/providers/\
                     Microsoft.ManagedIdentity/userAssignedIdentities/{n}"
                ),
                None => format!(
                    "/subscriptions/{sub}/resourceGroups/rg-certifyclouds/providers/\
                     Microsoft.Web/sites/certifyclouds"
                ),
            });
            ManagedIdentity {
                name: s.name.clone(),
                client_id: s.client_id.clone().unwrap_or_else(|| guid_for(seed, &["mi", &label])),
                principal_id: s
                    .principal_id
                    .clone()
                    .unwrap_or_else(|| guid_for(seed, &["mi-principal", &label])),
                resource_id,
            }
        })
        .collect()
}
