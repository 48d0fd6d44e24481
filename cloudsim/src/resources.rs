//! Resource Manager surfaces that reference Key Vault (what the dependencies feature reads):
//! App Service and Function App sites with `config/appsettings/list` (Key Vault references in
//! both forms), Container Apps with `listSecrets` (`keyVaultUrl` + `identity`), API Management
//! named values (`keyVault.secretIdentifier`) and Application Gateways
//! (`sslCertificates[].properties.keyVaultSecretId`). The scenario declares them per
//! subscription; references name a vault and a secret and are rendered with the vault's real
//! cloudsim URI (a vault the scenario does not have renders as `https://{name}.vault.azure.net`).

// Helpers return Result<_, Resp>: the error arm is an answer, boxing it buys nothing.
#![expect(clippy::result_large_err, reason = "the Err arm is the HTTP answer itself")]

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use axum::http::{Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::arm::arm_error;
use crate::http::{Resp, json as json_resp};
use crate::state::{Sim, Vault, World};

/// A reference to a Key Vault secret in a scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KvRefSpec {
    /// Vault name (need not exist: a dangling reference).
    pub vault: String,
    /// Secret name (a certificate's name for its backing secret).
    pub secret: String,
    /// A version id, `current` (the secret's current version when the scenario loads), or
    /// absent (always the latest).
    pub version: Option<String>,
    /// `secretUri` (default) or `vaultName`: which `@Microsoft.KeyVault(...)` form a setting
    /// uses.
    pub form: Option<String>,
}

/// An App Service or Function App site.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteSpec {
    /// Site name (required).
    pub name: String,
    /// Resource group (default rg-{name}).
    pub resource_group: Option<String>,
    /// `app` (default) or `functionapp` (also `app,linux`, `functionapp,linux`).
    pub kind: Option<String>,
    /// Region (default westeurope).
    pub location: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// App settings in order.
    #[serde(default)]
    pub settings: Vec<SettingSpec>,
}

/// An app setting: a plain value or a Key Vault reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SettingSpec {
    /// Setting name (required).
    pub name: String,
    /// Plain value.
    pub value: Option<String>,
    /// Key Vault reference.
    pub key_vault: Option<KvRefSpec>,
}

/// A Container App.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerAppSpec {
    /// App name (required).
    pub name: String,
    /// Resource group (default rg-{name}).
    pub resource_group: Option<String>,
    /// Region (default westeurope).
    pub location: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Secrets.
    #[serde(default)]
    pub secrets: Vec<ContainerSecretSpec>,
}

/// A Container App secret: a value or a Key Vault reference with the identity that reads it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerSecretSpec {
    /// Secret name (required).
    pub name: String,
    /// Plain value.
    pub value: Option<String>,
    /// Key Vault reference.
    pub key_vault: Option<KvRefSpec>,
    /// `system` (default) or a user-assigned identity's resource id.
    pub identity: Option<String>,
}

/// An API Management service.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApimSpec {
    /// Service name (required).
    pub name: String,
    /// Resource group (default rg-{name}).
    pub resource_group: Option<String>,
    /// Region (default westeurope).
    pub location: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Named values.
    #[serde(default)]
    pub named_values: Vec<NamedValueSpec>,
}

/// An API Management named value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamedValueSpec {
    /// Resource name (required).
    pub name: String,
    /// Display name (default: the name).
    pub display_name: Option<String>,
    /// Marked secret (default: true for Key Vault ones).
    pub secret: Option<bool>,
    /// Plain value.
    pub value: Option<String>,
    /// Key Vault reference.
    pub key_vault: Option<KvRefSpec>,
}

/// An Application Gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AppGatewaySpec {
    /// Gateway name (required).
    pub name: String,
    /// Resource group (default rg-{name}).
    pub resource_group: Option<String>,
    /// Region (default westeurope).
    pub location: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// TLS certificates taken from Key Vault.
    #[serde(default)]
    pub ssl_certificates: Vec<SslCertificateSpec>,
}

/// An Application Gateway TLS certificate.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SslCertificateSpec {
    /// Certificate name on the gateway (required).
    pub name: String,
    /// The Key Vault secret (a certificate's backing secret).
    pub key_vault: KvRefSpec,
}

/// A resolved Key Vault reference.
#[derive(Debug, Clone)]
pub struct KvRef {
    /// Vault name.
    pub vault: String,
    /// Secret name.
    pub secret: String,
    /// Pinned version, if any.
    pub version: Option<String>,
    /// True for the `VaultName=..;SecretName=..` form.
    pub names_form: bool,
}

impl KvRef {
    /// The secret URI: cloudsim's vault URI when the vault exists, else the public form.
    pub fn uri(&self, world: &World) -> String {
        let base = world
            .vault(&self.vault)
            .map(Vault::base_url)
            .unwrap_or_else(|| format!("https://{}.vault.azure.net", self.vault));
        match &self.version {
            Some(v) => format!("{base}/secrets/{}/{v}", self.secret),
            None => format!("{base}/secrets/{}/", self.secret),
        }
    }

    /// The App Service reference text in the declared form.
    pub fn app_setting(&self, world: &World) -> String {
        if self.names_form {
            let version =
                self.version.as_ref().map(|v| format!(";SecretVersion={v}")).unwrap_or_default();
            format!(
                "@Microsoft.KeyVault(VaultName={};SecretName={}{version})",
                self.vault, self.secret
            )
        } else {
            format!("@Microsoft.KeyVault(SecretUri={})", self.uri(world))
        }
    }
}

/// A plain value or a Key Vault reference.
#[derive(Debug, Clone)]
pub enum Setting {
    /// Plain text.
    Plain(String),
    /// A reference.
    KeyVault(KvRef),
}

/// What kind of resource a [`Dep`] is, with its type-specific parts.
#[derive(Debug, Clone)]
pub enum DepBody {
    /// Microsoft.Web/sites.
    Site {
        /// `app`, `functionapp`, ...
        kind: String,
        /// Settings in order.
        settings: Vec<(String, Setting)>,
    },
    /// Microsoft.App/containerApps.
    ContainerApp {
        /// (name, value, identity).
        secrets: Vec<(String, Setting, String)>,
    },
    /// Microsoft.ApiManagement/service.
    Apim {
        /// (name, displayName, secret, value).
        named_values: Vec<(String, String, bool, Setting)>,
    },
    /// Microsoft.Network/applicationGateways.
    Gateway {
        /// (certificate name, reference).
        certificates: Vec<(String, KvRef)>,
    },
}

/// A resource that depends on Key Vault.
#[derive(Debug, Clone)]
pub struct Dep {
    /// Subscription GUID.
    pub subscription_id: String,
    /// Resource group.
    pub resource_group: String,
    /// Name.
    pub name: String,
    /// Region.
    pub location: String,
    /// Tags.
    pub tags: BTreeMap<String, String>,
    /// Type-specific parts.
    pub body: DepBody,
}

/// The resource types served here, as (namespace, type).
const TYPES: &[(&str, &str)] = &[
    ("Microsoft.Web", "sites"),
    ("Microsoft.App", "containerApps"),
    ("Microsoft.ApiManagement", "service"),
    ("Microsoft.Network", "applicationGateways"),
];

impl Dep {
    /// `Microsoft.Web/sites` etc.
    pub fn type_name(&self) -> &'static str {
        match self.body {
            DepBody::Site { .. } => "Microsoft.Web/sites",
            DepBody::ContainerApp { .. } => "Microsoft.App/containerApps",
            DepBody::Apim { .. } => "Microsoft.ApiManagement/service",
            DepBody::Gateway { .. } => "Microsoft.Network/applicationGateways",
        }
    }

    /// The ARM resource id.
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/{}/{}",
            self.subscription_id,
            self.resource_group,
            self.type_name(),
            self.name
        )
    }

    fn kind(&self) -> Option<&str> {
        match &self.body {
            DepBody::Site { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// Builder input: the subscription's specs.
pub struct DepSpecs<'a> {
    /// Sites.
    pub sites: &'a [SiteSpec],
    /// Container Apps.
    pub container_apps: &'a [ContainerAppSpec],
    /// API Management services.
    pub api_management: &'a [ApimSpec],
    /// Application Gateways.
    pub application_gateways: &'a [AppGatewaySpec],
}

fn resolve(r: &KvRefSpec, vaults: &[Vault]) -> Result<KvRef> {
    let names_form = match r.form.as_deref() {
        None | Some("secretUri") => false,
        Some("vaultName") => true,
        Some(other) => bail!("keyVault.form must be secretUri or vaultName, got {other}"),
    };
    let version = match r.version.as_deref() {
        Some("current") => vaults
            .iter()
            .find(|v| v.name.eq_ignore_ascii_case(&r.vault))
            .and_then(|v| v.secrets.iter().find(|s| s.name.eq_ignore_ascii_case(&r.secret)))
            .and_then(|s| s.versions.last())
            .map(|v| v.version.clone()),
        other => other.map(str::to_string),
    };
    Ok(KvRef { vault: r.vault.clone(), secret: r.secret.clone(), version, names_form })
}

fn value_of(
    name: &str,
    value: &Option<String>,
    kv: &Option<KvRefSpec>,
    vaults: &[Vault],
) -> Result<Setting> {
    match (value, kv) {
        (Some(v), None) => Ok(Setting::Plain(v.clone())),
        (None, Some(r)) => Ok(Setting::KeyVault(resolve(r, vaults)?)),
        (None, None) => Ok(Setting::Plain(String::new())),
        (Some(_), Some(_)) => bail!("{name}: give either value or keyVault, not both"),
    }
}

/// Builds one subscription's dependent resources; `vaults` are the built vaults, used to pin
/// `version: "current"`.
pub fn build(sub: &str, specs: &DepSpecs<'_>, vaults: &[Vault]) -> Result<Vec<Dep>> {
    let mut out = Vec::new();
    let rg = |r: &Option<String>, name: &str| r.clone().unwrap_or_else(|| format!("rg-{name}"));
    let loc = |l: &Option<String>| l.clone().unwrap_or_else(|| "westeurope".into());
    for s in specs.sites {
        let kind = s.kind.clone().unwrap_or_else(|| "app".into());
        if !matches!(kind.as_str(), "app" | "functionapp" | "app,linux" | "functionapp,linux") {
            bail!("site {}: kind must be app or functionapp (optionally ,linux)", s.name);
        }
        let settings = s
            .settings
            .iter()
            .map(|x| Ok((x.name.clone(), value_of(&x.name, &x.value, &x.key_vault, vaults)?)))
            .collect::<Result<Vec<_>>>()?;
        out.push(Dep {
            subscription_id: sub.to_string(),
            resource_group: rg(&s.resource_group, &s.name),
            name: s.name.clone(),
            location: loc(&s.location),
            tags: s.tags.clone(),
            body: DepBody::Site { kind, settings },
        });
    }
    for c in specs.container_apps {
        let secrets = c
            .secrets
            .iter()
            .map(|x| {
                let v = value_of(&x.name, &x.value, &x.key_vault, vaults)?;
                Ok((x.name.clone(), v, x.identity.clone().unwrap_or_else(|| "system".into())))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(Dep {
            subscription_id: sub.to_string(),
            resource_group: rg(&c.resource_group, &c.name),
            name: c.name.clone(),
            location: loc(&c.location),
            tags: c.tags.clone(),
            body: DepBody::ContainerApp { secrets },
        });
    }
    for a in specs.api_management {
        let named_values = a
            .named_values
            .iter()
            .map(|n| {
                let v = value_of(&n.name, &n.value, &n.key_vault, vaults)?;
                let secret = n.secret.unwrap_or(n.key_vault.is_some());
                let display = n.display_name.clone().unwrap_or_else(|| n.name.clone());
                Ok((n.name.clone(), display, secret, v))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(Dep {
            subscription_id: sub.to_string(),
            resource_group: rg(&a.resource_group, &a.name),
            name: a.name.clone(),
            location: loc(&a.location),
            tags: a.tags.clone(),
            body: DepBody::Apim { named_values },
        });
    }
    for g in specs.application_gateways {
        let certificates = g
            .ssl_certificates
            .iter()
            .map(|c| Ok((c.name.clone(), resolve(&c.key_vault, vaults)?)))
            .collect::<Result<Vec<_>>>()?;
        out.push(Dep {
            subscription_id: sub.to_string(),
            resource_group: rg(&g.resource_group, &g.name),
            name: g.name.clone(),
            location: loc(&g.location),
            tags: g.tags.clone(),
            body: DepBody::Gateway { certificates },
        });
    }
    Ok(out)
}

fn identity_json(sim: &Sim, d: &Dep) -> Value {
    let principal = crate::scenario::guid_for(0, &["dep-identity", &d.id()]);
    json!({"type": "SystemAssigned", "principalId": principal, "tenantId": sim.tenant_id})
}

/// The ARM representation of a resource.
pub fn resource_json(sim: &Sim, world: &World, d: &Dep) -> Value {
    let id = d.id();
    let properties = match &d.body {
        DepBody::Site { .. } => {
            let host = format!("{}.azurewebsites.net", d.name);
            json!({
                "state": "Running",
                "enabled": true,
                "hostNames": [host],
                "defaultHostName": host,
                "httpsOnly": true,
                "resourceGroup": d.resource_group,
                "serverFarmId": format!(
                    "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/serverfarms/\
                     asp-{}",
                    d.subscription_id, d.resource_group, d.name
                ),
                "keyVaultReferenceIdentity": "SystemAssigned",
            })
        }
        DepBody::ContainerApp { secrets } => json!({
            "provisioningState": "Succeeded",
            "runningStatus": "Running",
            "latestRevisionFqdn": format!("{}--rev1.azurecontainerapps.io", d.name),
            "configuration": {
                "activeRevisionsMode": "Single",
                "secrets": secrets.iter().map(|(n, v, identity)| match v {
                    Setting::KeyVault(r) => json!({
                        "name": n, "keyVaultUrl": r.uri(world), "identity": identity,
                    }),
                    Setting::Plain(_) => json!({"name": n}),
                }).collect::<Vec<_>>(),
            },
        }),
        DepBody::Apim { .. } => json!({
            "provisioningState": "Succeeded",
            "gatewayUrl": format!("https://{}.azure-api.net", d.name),
            "publisherEmail": "platform@contoso.com",
            "publisherName": "Contoso",
        }),
        DepBody::Gateway { certificates } => json!({
            "provisioningState": "Succeeded",
            "operationalState": "Running",
            "sku": {"name": "WAF_v2", "tier": "WAF_v2", "capacity": 2},
            "sslCertificates": certificates.iter().map(|(n, r)| json!({
                "name": n,
                "id": format!("{id}/sslCertificates/{n}"),
                "type": "Microsoft.Network/applicationGateways/sslCertificates",
                "properties": {"provisioningState": "Succeeded", "keyVaultSecretId": r.uri(world)},
            })).collect::<Vec<_>>(),
        }),
    };
    let mut v = json!({
        "id": id,
        "name": d.name,
        "type": d.type_name(),
        "location": d.location,
        "tags": d.tags,
        "identity": identity_json(sim, d),
        "properties": properties,
    });
    if let Some(k) = d.kind() {
        v["kind"] = json!(k);
    }
    if let DepBody::Apim { .. } = d.body {
        v["sku"] = json!({"name": "Developer", "capacity": 1});
    }
    v
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn known_type(ns: &str, ty: &str) -> bool {
    TYPES.iter().any(|(n, t)| eq(n, ns) && eq(t, ty))
}

fn type_matches(d: &Dep, ns: &str, ty: &str) -> bool {
    eq(d.type_name(), &format!("{ns}/{ty}"))
}

fn not_found(ns: &str, ty: &str, name: &str, rg: &str) -> Resp {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        &format!(
            "The Resource '{ns}/{ty}/{name}' under resource group '{rg}' was not found. For more \
             details please go to https://aka.ms/ARMResourceNotFoundFix"
        ),
    )
}

/// One page of `values` at the ARM page size, with an absolute `nextLink` carrying
/// `$skiptoken` while more remain.
fn page_body(
    sim: &Sim,
    path: &str,
    api_version: &str,
    q: &BTreeMap<String, String>,
    values: Vec<Value>,
) -> Result<Value, Resp> {
    let page = q
        .get("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|t| *t > 0)
        .unwrap_or(sim.arm_page_size)
        .min(1000);
    let start = match q.get("$skiptoken") {
        None => 0,
        Some(tok) => URL_SAFE
            .decode(tok)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("offset:").and_then(|n| n.parse::<usize>().ok()))
            .ok_or_else(|| {
                arm_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidSkipToken",
                    "The provided skip token is invalid.",
                )
            })?,
    };
    let end = (start + page).min(values.len());
    let mut body = json!({"value": values.get(start..end).unwrap_or(&[])});
    if end < values.len() {
        let mut link = format!(
            "{}{path}?api-version={api_version}&$skiptoken={}",
            sim.main_url(),
            URL_SAFE.encode(format!("offset:{end}"))
        );
        if let Some(t) = q.get("$top") {
            link.push_str(&format!("&$top={t}"));
        }
        body["nextLink"] = json!(link);
    }
    Ok(body)
}

/// Everything a route needs from the request.
pub struct Req<'a> {
    /// Method.
    pub method: &'a Method,
    /// Raw path (for nextLink).
    pub path: &'a str,
    /// Path segments.
    pub segs: &'a [&'a str],
    /// Parsed query.
    pub q: &'a BTreeMap<String, String>,
    /// The api-version sent.
    pub api_version: &'a str,
    /// Request body.
    pub body: &'a [u8],
}

/// Serves the dependency resource types and Resource Graph; `None` when the path is not one
/// of them (ARM's own routing continues).
pub fn route(sim: &Sim, world: &World, r: &Req<'_>) -> Option<Resp> {
    let s = r.segs;
    if let [p, ns, res] = s {
        if eq(p, "providers") && eq(ns, "Microsoft.ResourceGraph") && eq(res, "resources") {
            if r.method != Method::POST {
                return Some(method_not_allowed());
            }
            return Some(crate::resource_graph::query(sim, world, r.body));
        }
        return None;
    }
    let (sub, rg, rest): (&str, Option<&str>, &[&str]) = match s {
        [t, sub, p, rest @ ..] if eq(t, "subscriptions") && eq(p, "providers") => (sub, None, rest),
        [t, sub, rgs, rg, p, rest @ ..]
            if eq(t, "subscriptions") && eq(rgs, "resourceGroups") && eq(p, "providers") =>
        {
            (sub, Some(rg), rest)
        }
        _ => return None,
    };
    let (ns, ty) = match rest {
        [ns, ty, ..] if known_type(ns, ty) => (*ns, *ty),
        _ => return None,
    };
    if !world.subscriptions.iter().any(|x| eq(&x.id, sub)) {
        return Some(arm_error(
            StatusCode::NOT_FOUND,
            "SubscriptionNotFound",
            &format!("The subscription '{sub}' could not be found."),
        ));
    }
    let in_scope = |d: &&Dep| {
        eq(&d.subscription_id, sub)
            && rg.is_none_or(|g| eq(&d.resource_group, g))
            && type_matches(d, ns, ty)
    };
    let get = |name: &str| -> Result<&Dep, Resp> {
        world
            .deps
            .iter()
            .filter(in_scope)
            .find(|d| eq(&d.name, name))
            .ok_or_else(|| not_found(ns, ty, name, rg.unwrap_or("")))
    };
    let post = r.method == Method::POST;
    let resp = match (rg, &rest[2..]) {
        (_, []) if !post => {
            let values: Vec<Value> =
                world.deps.iter().filter(in_scope).map(|d| resource_json(sim, world, d)).collect();
            match page_body(sim, r.path, r.api_version, r.q, values) {
                Ok(b) => json_resp(StatusCode::OK, &b),
                Err(e) => e,
            }
        }
        (Some(_), [name]) if !post => match get(name) {
            Ok(d) => json_resp(StatusCode::OK, &resource_json(sim, world, d)),
            Err(e) => e,
        },
        (Some(_), [name, c, a, l])
            if post && eq(c, "config") && eq(a, "appsettings") && eq(l, "list") =>
        {
            match get(name) {
                Ok(d) => app_settings(world, d),
                Err(e) => e,
            }
        }
        (Some(_), [name, l]) if post && eq(l, "listSecrets") => match get(name) {
            Ok(d) => list_secrets(world, d),
            Err(e) => e,
        },
        (Some(_), [name, nv]) if !post && eq(nv, "namedValues") => match get(name) {
            Ok(d) => {
                let values = named_values(world, d, None);
                let n = values.len();
                match page_body(sim, r.path, r.api_version, r.q, values) {
                    Ok(mut b) => {
                        b["count"] = json!(n);
                        json_resp(StatusCode::OK, &b)
                    }
                    Err(e) => e,
                }
            }
            Err(e) => e,
        },
        (Some(_), [name, nv, one]) if !post && eq(nv, "namedValues") => match get(name) {
            Ok(d) => match named_values(world, d, Some(one)).into_iter().next() {
                Some(v) => json_resp(StatusCode::OK, &v),
                None => not_found(ns, &format!("{ty}/{name}/namedValues"), one, rg.unwrap_or("")),
            },
            Err(e) => e,
        },
        _ if post || r.method != Method::GET => method_not_allowed(),
        _ => arm_error(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            &format!("The resource type could not be found for path '{}'.", r.path),
        ),
    };
    Some(resp)
}

fn method_not_allowed() -> Resp {
    arm_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "cloudsim serves this resource read-only.",
    )
}

fn app_settings(world: &World, d: &Dep) -> Resp {
    let DepBody::Site { settings, .. } = &d.body else {
        return method_not_allowed();
    };
    let props: serde_json::Map<String, Value> = settings
        .iter()
        .map(|(k, v)| {
            let text = match v {
                Setting::Plain(p) => p.clone(),
                Setting::KeyVault(r) => r.app_setting(world),
            };
            (k.clone(), json!(text))
        })
        .collect();
    json_resp(
        StatusCode::OK,
        &json!({
            "id": format!("{}/config/appsettings", d.id()),
            "name": "appsettings",
            "type": "Microsoft.Web/sites/config",
            "location": d.location,
            "properties": props,
        }),
    )
}

fn list_secrets(world: &World, d: &Dep) -> Resp {
    let DepBody::ContainerApp { secrets } = &d.body else {
        return method_not_allowed();
    };
    let value: Vec<Value> = secrets
        .iter()
        .map(|(n, v, identity)| match v {
            Setting::Plain(p) => json!({"name": n, "value": p}),
            Setting::KeyVault(r) => {
                json!({"name": n, "keyVaultUrl": r.uri(world), "identity": identity})
            }
        })
        .collect();
    json_resp(StatusCode::OK, &json!({"value": value}))
}

fn named_values(world: &World, d: &Dep, only: Option<&str>) -> Vec<Value> {
    let DepBody::Apim { named_values } = &d.body else {
        return Vec::new();
    };
    named_values
        .iter()
        .filter(|(n, ..)| only.is_none_or(|o| eq(n, o)))
        .map(|(n, display, secret, v)| {
            let mut props = json!({"displayName": display, "secret": secret, "tags": []});
            match v {
                Setting::Plain(p) if !secret => props["value"] = json!(p),
                Setting::Plain(_) => {}
                Setting::KeyVault(r) => {
                    props["keyVault"] =
                        json!({"secretIdentifier": r.uri(world), "identityClientId": null});
                }
            }
            json!({
                "id": format!("{}/namedValues/{n}", d.id()),
                "type": "Microsoft.ApiManagement/service/namedValues",
                "name": n,
                "properties": props,
            })
        })
        .collect()
}

/// The generic-resource shape (`/resources` lists and Resource Graph rows share it).
pub fn generic_row(sim: &Sim, world: &World, d: &Dep) -> Value {
    let full = resource_json(sim, world, d);
    json!({
        "id": d.id(),
        "name": d.name,
        "type": d.type_name().to_lowercase(),
        "tenantId": sim.tenant_id,
        "kind": d.kind().unwrap_or(""),
        "location": d.location,
        "resourceGroup": d.resource_group.to_lowercase(),
        "subscriptionId": d.subscription_id,
        "managedBy": "",
        "sku": full.get("sku").cloned().unwrap_or(Value::Null),
        "plan": null,
        "properties": full["properties"],
        "tags": d.tags,
        "identity": full["identity"],
        "zones": null,
        "extendedLocation": null,
    })
}
