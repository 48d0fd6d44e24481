//! The admin API under `/_sim` on the main port (no authentication): ground-truth statistics,
//! the vault directory, fault injection, throttling, the app's credential, request counters and
//! log, reset, and mutations (add vaults, add or change items). See cloudsim/README.md.

// Handlers return Result<Resp, Resp>: both arms are answers, so boxing the error buys nothing.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::faults::{Fault, ThrottleRule};
use crate::http::{Resp, json as json_resp, now};
use crate::scenario::{BuildCtx, CertSpec, KeySpec, SecretSpec, VaultSpec};
use crate::state::{DAY, Sim, Vault, VaultCounts, World};

/// Serialises vault additions (each binds a port, then joins the world).
static ADD_LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ENDPOINTS: &[&str] = &[
    "GET /_sim/health",
    "GET /_sim/stats",
    "GET|POST /_sim/vaults",
    "PATCH /_sim/vaults/{name}",
    "POST /_sim/vaults/{name}/secrets|keys|certificates",
    "PATCH /_sim/vaults/{name}/secrets|keys|certificates/{item}",
    "POST /_sim/vaults/{name}/secrets|keys|certificates/{item}/expire",
    "GET|POST|DELETE /_sim/faults",
    "GET|POST|DELETE /_sim/throttle",
    "GET|POST /_sim/app",
    "GET /_sim/apps",
    "POST /_sim/apps/{appId}/passwordCredentials|keyCredentials",
    "POST /_sim/apps/{appId}/credentials/{keyId}/expire",
    "GET|DELETE /_sim/requests",
    "GET /_sim/requests/log",
    "POST /_sim/reset",
];

fn bad(msg: &str) -> Resp {
    json_resp(StatusCode::BAD_REQUEST, &json!({"error": msg}))
}

fn missing(what: &str) -> Resp {
    json_resp(StatusCode::NOT_FOUND, &json!({"error": format!("no {what}")}))
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Resp> {
    serde_json::from_slice(body).map_err(|e| bad(&format!("invalid JSON: {e}")))
}

fn vault_entry(v: &Vault) -> Value {
    json!({
        "name": v.name,
        "subscriptionId": v.subscription_id,
        "resourceGroup": v.resource_group,
        "location": v.location,
        "vaultUri": format!("{}/", v.base_url()),
        "port": v.addr.port(),
        "reachable": v.reachable(),
        "denyAccess": v.deny_access,
        "emptyPages": v.empty_pages,
        "rbac": v.rbac,
        "softDelete": v.soft_delete,
        "purgeProtection": v.purge_protection,
        "counts": VaultCounts::of(v),
    })
}

/// Handles `/_sim/...`; `rest` are the segments after `_sim`.
pub async fn handle(
    sim: &Arc<Sim>,
    method: &Method,
    rest: &[String],
    query: &str,
    body: &[u8],
) -> Resp {
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    let out = match (method.as_str(), r.as_slice()) {
        ("GET", ["health"]) => Ok(json_resp(StatusCode::OK, &json!({"status": "ok"}))),
        ("GET", ["stats"]) => Ok(json_resp(StatusCode::OK, &json!(sim.stats(now())))),
        ("GET", ["vaults"]) => {
            let list: Vec<Value> = sim.read().vaults.iter().map(vault_entry).collect();
            Ok(json_resp(StatusCode::OK, &json!(list)))
        }
        ("POST", ["vaults"]) => add_vault(sim, body).await,
        ("PATCH", ["vaults", name]) => patch_vault(sim, name, body),
        ("POST", ["vaults", name, kind]) => add_item(sim, name, kind, body),
        ("PATCH", ["vaults", name, kind, item]) => change_item(sim, name, kind, item, body, false),
        ("POST", ["vaults", name, kind, item, "expire"]) => {
            change_item(sim, name, kind, item, body, true)
        }
        ("GET", ["faults"]) => Ok(json_resp(StatusCode::OK, &json!(sim.faults.list()))),
        ("POST", ["faults"]) => add_fault(sim, body),
        ("DELETE", ["faults"]) => {
            sim.faults.clear();
            Ok(json_resp(StatusCode::OK, &json!({"cleared": true})))
        }
        ("GET", ["throttle"]) => Ok(json_resp(StatusCode::OK, &json!(sim.throttle.rules()))),
        ("POST", ["throttle"]) => set_throttle(sim, body),
        ("DELETE", ["throttle"]) => {
            sim.throttle.reset();
            Ok(json_resp(StatusCode::OK, &json!(sim.throttle.rules())))
        }
        ("GET", ["app"]) => Ok(app_json(sim)),
        ("POST", ["app"]) => set_app(sim, body),
        ("GET", ["apps"]) => Ok(apps_json(sim)),
        ("POST", ["apps", app, "passwordCredentials"]) => add_app_password(sim, app, body),
        ("POST", ["apps", app, "keyCredentials"]) => add_app_certificate(sim, app, body),
        ("POST", ["apps", app, "credentials", key, "expire"]) => {
            expire_app_credential(sim, app, key, body)
        }
        ("GET", ["requests"]) => Ok(json_resp(StatusCode::OK, &json!(sim.faults.counters()))),
        ("GET", ["requests", "log"]) => {
            let q = crate::http::parse_query(Some(query));
            let log = sim.faults.log(q.get("target").map(String::as_str));
            Ok(json_resp(StatusCode::OK, &json!(log)))
        }
        ("DELETE", ["requests"]) => {
            sim.faults.reset_counters();
            Ok(json_resp(StatusCode::OK, &json!({"cleared": true})))
        }
        ("POST", ["reset"]) => {
            sim.reset();
            Ok(json_resp(StatusCode::OK, &json!({"reset": true})))
        }
        _ => Ok(json_resp(
            StatusCode::NOT_FOUND,
            &json!({"error": "unknown admin endpoint", "endpoints": ENDPOINTS}),
        )),
    };
    out.unwrap_or_else(|e| e)
}

fn canonical_target(world: &World, target: &str) -> Option<String> {
    match target.strip_prefix("vault:") {
        Some(name) => world.vault(name).map(|v| format!("vault:{}", v.name)),
        None => matches!(target, "arm" | "token" | "identity" | "graph" | "devops")
            .then(|| target.to_string()),
    }
}

fn add_fault(sim: &Sim, body: &[u8]) -> Result<Resp, Resp> {
    let f: Fault = parse::<Fault>(body)?.normalised();
    f.validate().map_err(|e| bad(&e))?;
    let Some(target) = canonical_target(&sim.read(), &f.target) else {
        return Err(bad(&format!(
            "unknown target {:?}: use \"arm\", \"token\", \"identity\", \"graph\", \"devops\" \
             or \"vault:<name>\"",
            f.target
        )));
    };
    let f = Fault { target, ..f };
    sim.faults.set(f.clone());
    Ok(json_resp(StatusCode::CREATED, &json!(f)))
}

fn set_throttle(sim: &Sim, body: &[u8]) -> Result<Resp, Resp> {
    let mut rule: ThrottleRule = parse(body)?;
    rule.validate().map_err(|e| bad(&e))?;
    if rule.vault != "*" {
        let w = sim.read();
        let v =
            w.vault(&rule.vault).ok_or_else(|| bad(&format!("unknown vault {:?}", rule.vault)))?;
        rule.vault = v.name.clone();
    }
    sim.throttle.set(rule);
    Ok(json_resp(StatusCode::OK, &json!(sim.throttle.rules())))
}

fn app_json(sim: &Sim) -> Resp {
    let w = sim.read();
    let app = w.primary_app();
    let first = &app.passwords[0];
    json_resp(
        StatusCode::OK,
        &json!({
            "tenantId": sim.tenant_id,
            "clientId": sim.client_id,
            "clientSecret": first.secret,
            "clientSecretExpired": first.forced_expired,
        }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppChange {
    client_secret: Option<String>,
    client_secret_expired: Option<bool>,
}

/// Changes the product app's first client secret (its text, or a forced expiry).
fn set_app(sim: &Sim, body: &[u8]) -> Result<Resp, Resp> {
    let change: AppChange = parse(body)?;
    {
        let mut w = sim.write();
        let first = &mut w.tenants[0].apps[0].passwords[0];
        if let Some(s) = change.client_secret {
            if s.is_empty() {
                return Err(bad("clientSecret must not be empty"));
            }
            first.secret = s;
        }
        if let Some(e) = change.client_secret_expired {
            first.forced_expired = e;
        }
    }
    Ok(app_json(sim))
}

/// Lists every tenant's app registrations with their credentials (secret texts included:
/// this is the simulator's ground truth, not Graph).
fn apps_json(sim: &Sim) -> Resp {
    let w = sim.read();
    let t = now();
    let tenants: Vec<Value> = w
        .tenants
        .iter()
        .map(|tenant| {
            let apps: Vec<Value> = tenant
                .apps
                .iter()
                .map(|a| {
                    json!({
                        "appId": a.app_id,
                        "objectId": a.object_id,
                        "servicePrincipalObjectId": a.sp_object_id,
                        "displayName": a.display_name,
                        "passwordCredentials": a.passwords.iter().map(|p| json!({
                            "keyId": p.key_id,
                            "displayName": p.display_name,
                            "secret": p.secret,
                            "startDateTime": crate::graph::graph_time(p.start),
                            "endDateTime": crate::graph::graph_time(p.end),
                            "expired": p.expired(t),
                        })).collect::<Vec<_>>(),
                        "keyCredentials": a.keys.iter().map(|k| json!({
                            "keyId": k.key_id,
                            "displayName": k.display_name,
                            "thumbprint": k.thumbprint_hex(),
                            "startDateTime": crate::graph::graph_time(k.start),
                            "endDateTime": crate::graph::graph_time(k.end),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({"tenantId": tenant.id, "domain": tenant.domain, "b2c": tenant.b2c, "apps": apps})
        })
        .collect();
    json_resp(StatusCode::OK, &json!(tenants))
}

/// Finds an app by application id in any tenant: (tenant index, app index).
fn find_app(w: &World, app_id: &str) -> Option<(usize, usize)> {
    w.tenants.iter().enumerate().find_map(|(ti, t)| {
        t.apps.iter().position(|a| a.app_id.eq_ignore_ascii_case(app_id)).map(|ai| (ti, ai))
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewPassword {
    secret: Option<String>,
    display_name: Option<String>,
    expires_in_days: Option<i64>,
}

/// `POST /_sim/apps/{appId}/passwordCredentials`: adds a client secret (201 with its text).
fn add_app_password(sim: &Sim, app_id: &str, body: &[u8]) -> Result<Resp, Resp> {
    let spec: NewPassword = parse(body)?;
    let t = now();
    let cred = crate::directory::PasswordCredential {
        key_id: crate::http::guid(),
        display_name: spec.display_name,
        secret: spec.secret.unwrap_or_else(crate::directory::new_secret),
        start: t,
        end: t + spec.expires_in_days.unwrap_or(365) * DAY,
        forced_expired: false,
    };
    let mut w = sim.write();
    let (ti, ai) = find_app(&w, app_id).ok_or_else(|| missing("such app"))?;
    let out = json!({
        "keyId": cred.key_id,
        "secret": cred.secret,
        "endDateTime": crate::graph::graph_time(cred.end),
    });
    w.tenants[ti].apps[ai].passwords.push(cred);
    Ok(json_resp(StatusCode::CREATED, &out))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct NewKeyCredential {
    certificate_pem: String,
    display_name: Option<String>,
}

/// `POST /_sim/apps/{appId}/keyCredentials`: registers a certificate (PEM) for the app.
fn add_app_certificate(sim: &Sim, app_id: &str, body: &[u8]) -> Result<Resp, Resp> {
    let spec: NewKeyCredential = parse(body)?;
    let der = crate::certs::pem_blocks(&spec.certificate_pem)
        .into_iter()
        .next()
        .ok_or_else(|| bad("certificatePem holds no CERTIFICATE block"))?;
    let cred =
        crate::directory::KeyCredential::from_der(crate::http::guid(), spec.display_name, der)
            .map_err(|e| bad(&format!("certificatePem: {e:#}")))?;
    let out = json!({"keyId": cred.key_id, "thumbprint": cred.thumbprint_hex()});
    let mut w = sim.write();
    let (ti, ai) = find_app(&w, app_id).ok_or_else(|| missing("such app"))?;
    w.tenants[ti].apps[ai].keys.push(cred);
    Ok(json_resp(StatusCode::CREATED, &out))
}

/// `POST /_sim/apps/{appId}/credentials/{keyId}/expire`: the secret or certificate ends now
/// (or in the body's `expiresInDays`).
fn expire_app_credential(sim: &Sim, app_id: &str, key_id: &str, body: &[u8]) -> Result<Resp, Resp> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct Expire {
        expires_in_days: Option<i64>,
    }
    let spec: Expire =
        if body.is_empty() { Expire { expires_in_days: None } } else { parse(body)? };
    let t = now();
    let end = spec.expires_in_days.map(|d| t + d * DAY).unwrap_or(t - 1);
    let mut w = sim.write();
    let (ti, ai) = find_app(&w, app_id).ok_or_else(|| missing("such app"))?;
    let app = &mut w.tenants[ti].apps[ai];
    if let Some(p) = app.passwords.iter_mut().find(|p| p.key_id.eq_ignore_ascii_case(key_id)) {
        p.end = end;
    } else if let Some(k) = app.keys.iter_mut().find(|k| k.key_id.eq_ignore_ascii_case(key_id)) {
        k.end = end;
    } else {
        return Err(missing("such credential"));
    }
    Ok(json_resp(
        StatusCode::OK,
        &json!({"keyId": key_id, "endDateTime": crate::graph::graph_time(end)}),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct VaultPatch {
    deny_access: Option<bool>,
    public_network_access: Option<String>,
    empty_pages: Option<bool>,
    purge_protection: Option<bool>,
}

fn patch_vault(sim: &Sim, name: &str, body: &[u8]) -> Result<Resp, Resp> {
    let p: VaultPatch = parse(body)?;
    let mut w = sim.write();
    let i = w.vault_index(name).ok_or_else(|| missing("such vault"))?;
    let v = &mut w.vaults[i];
    if let Some(d) = p.deny_access {
        v.deny_access = d;
    }
    if let Some(pna) = p.public_network_access {
        v.public_network_access = match pna.as_str() {
            "Enabled" => true,
            "Disabled" => false,
            _ => return Err(bad("publicNetworkAccess must be Enabled or Disabled")),
        };
    }
    if let Some(e) = p.empty_pages {
        v.empty_pages = e;
    }
    if let Some(pp) = p.purge_protection {
        if v.purge_protection && !pp {
            return Err(bad("purge protection cannot be turned off once enabled"));
        }
        v.purge_protection = pp;
    }
    Ok(json_resp(StatusCode::OK, &vault_entry(v)))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NewVault {
    subscription_id: Option<String>,
    #[serde(flatten)]
    spec: VaultSpec,
}

async fn add_vault(sim: &Arc<Sim>, body: &[u8]) -> Result<Resp, Resp> {
    let req: NewVault = parse(body)?;
    let _guard = ADD_LOCK.lock().await;
    let (sub_id, index) = {
        let w = sim.read();
        if w.vault(&req.spec.name).is_some() {
            return Err(json_resp(
                StatusCode::CONFLICT,
                &json!({"error": format!("vault {} already exists", req.spec.name)}),
            ));
        }
        let sub = match &req.subscription_id {
            Some(id) => w.subscriptions.iter().find(|s| s.id.eq_ignore_ascii_case(id)),
            None => w.subscriptions.first(),
        };
        let sub = sub.ok_or_else(|| bad("unknown subscriptionId"))?;
        (sub.id.clone(), w.vaults.len())
    };
    let m = &sim.material;
    let ctx = BuildCtx { now: now(), ca: &m.ca, leaf_key: &m.leaf_key, system: &m.system };
    let (mut cursor, mut warned) = (index * 7, true);
    let mut vault = crate::scenario::build_vault(
        &req.spec,
        &sub_id,
        index,
        &ctx,
        m.seed,
        &mut cursor,
        &mut warned,
    )
    .map_err(|e| bad(&format!("{e:#}")))?;
    let (addr, task) =
        crate::server::spawn_vault(sim, index, sim.main_addr.ip()).await.map_err(|e| {
            json_resp(StatusCode::INTERNAL_SERVER_ERROR, &json!({"error": format!("{e:#}")}))
        })?;
    vault.addr = addr;
    let entry = vault_entry(&vault);
    sim.write().vaults.push(vault);
    sim.runtime.lock().unwrap_or_else(|p| p.into_inner()).added.push(task);
    tracing::info!(vault = %req.spec.name, %addr, "vault added");
    Ok(json_resp(StatusCode::CREATED, &entry))
}

fn item_summary(kind: &str, name: &str, a: &crate::state::Attrs, version: &str) -> Resp {
    json_resp(
        StatusCode::OK,
        &json!({
            "kind": kind,
            "name": name,
            "version": version,
            "enabled": a.enabled,
            "created": a.created,
            "updated": a.updated,
            "exp": a.exp,
        }),
    )
}

fn fresh_version() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Adds an item, or a new current version when it exists (scenario item JSON).
fn add_item(sim: &Sim, vault_name: &str, kind: &str, body: &[u8]) -> Result<Resp, Resp> {
    let t = now();
    let seed = sim.material.seed;
    let mut w = sim.write();
    let vi = w.vault_index(vault_name).ok_or_else(|| missing("such vault"))?;
    let vault = &mut w.vaults[vi];
    match kind {
        "secrets" => {
            let spec: SecretSpec = parse(body)?;
            crate::scenario::check_name("secret", &spec.name).map_err(|e| bad(&e.to_string()))?;
            let mut built = crate::scenario::build_secret(seed, &vault.name, &spec, t);
            let existing =
                vault.secrets.iter_mut().find(|s| s.name.eq_ignore_ascii_case(&spec.name));
            let (name, cur) = match existing {
                Some(s) if s.managed => return Err(bad("that secret backs a certificate")),
                Some(s) => {
                    let mut v = built.versions.pop().ok_or_else(|| bad("no version"))?;
                    v.version = fresh_version();
                    v.attrs.created = t;
                    v.attrs.updated = t;
                    s.versions.push(v);
                    (s.name.clone(), s.versions.last().cloned())
                }
                None => {
                    for v in &mut built.versions {
                        v.version = fresh_version();
                    }
                    let name = built.name.clone();
                    let cur = built.versions.last().cloned();
                    vault.secrets.push(built);
                    vault.secrets.sort_by_key(|s| s.name.to_lowercase());
                    (name, cur)
                }
            };
            let cur = cur.ok_or_else(|| bad("no version"))?;
            Ok(item_summary("secret", &name, &cur.attrs, &cur.version))
        }
        "keys" => {
            let spec: KeySpec = parse(body)?;
            crate::scenario::check_name("key", &spec.name).map_err(|e| bad(&e.to_string()))?;
            let mut built = crate::scenario::build_key(seed, &vault.name, &spec, t)
                .map_err(|e| bad(&format!("{e:#}")))?;
            let existing = vault.keys.iter_mut().find(|k| k.name.eq_ignore_ascii_case(&spec.name));
            let (name, cur) = match existing {
                Some(k) if k.managed => return Err(bad("that key backs a certificate")),
                Some(k) => {
                    let mut v = built.versions.pop().ok_or_else(|| bad("no version"))?;
                    v.version = fresh_version();
                    v.attrs.created = t;
                    v.attrs.updated = t;
                    k.versions.push(v);
                    (k.name.clone(), k.versions.last().cloned())
                }
                None => {
                    for v in &mut built.versions {
                        v.version = fresh_version();
                    }
                    let name = built.name.clone();
                    let cur = built.versions.last().cloned();
                    vault.keys.push(built);
                    vault.keys.sort_by_key(|k| k.name.to_lowercase());
                    (name, cur)
                }
            };
            let cur = cur.ok_or_else(|| bad("no version"))?;
            Ok(item_summary("key", &name, &cur.attrs, &cur.version))
        }
        "certificates" => {
            let spec: CertSpec = parse(body)?;
            add_certificate(sim, vault, &spec, t)
        }
        _ => Err(missing("such item kind (secrets, keys, certificates)")),
    }
}

fn add_certificate(sim: &Sim, vault: &mut Vault, spec: &CertSpec, t: i64) -> Result<Resp, Resp> {
    let m = &sim.material;
    let ctx = BuildCtx { now: t, ca: &m.ca, leaf_key: &m.leaf_key, system: &m.system };
    let (mut cursor, mut warned) = (vault.certificates.len(), true);
    let mut builder = crate::scenario::VaultBuilder {
        ctx: &ctx,
        seed: m.seed ^ u64::try_from(t).unwrap_or(0),
        system_cursor: &mut cursor,
        warned_no_system: &mut warned,
    };
    let (mut c, mut k, mut s) =
        builder.build_cert(&vault.name, spec, "cert-added").map_err(|e| bad(&format!("{e:#}")))?;
    crate::scenario::check_name("certificate", &c.name).map_err(|e| bad(&e.to_string()))?;
    let unmanaged_clash =
        vault.secrets.iter().any(|x| x.name.eq_ignore_ascii_case(&c.name) && !x.managed)
            || vault.keys.iter().any(|x| x.name.eq_ignore_ascii_case(&c.name) && !x.managed);
    if unmanaged_clash {
        return Err(bad("a secret or key of that name exists and does not back a certificate"));
    }
    let name = c.name.clone();
    match vault.certificates.iter().position(|x| x.name.eq_ignore_ascii_case(&name)) {
        Some(ci) => {
            let (Some(mut cv), Some(mut kv), Some(mut sv)) =
                (c.versions.pop(), k.versions.pop(), s.versions.pop())
            else {
                return Err(bad("no version"));
            };
            let version = fresh_version();
            cv.version = version.clone();
            kv.version = version.clone();
            sv.version = version;
            for a in [&mut cv.attrs, &mut kv.attrs, &mut sv.attrs] {
                a.created = t;
                a.updated = t;
            }
            vault.certificates[ci].versions.push(cv);
            vault.certificates[ci].policy = c.policy;
            if let Some(key) = vault.keys.iter_mut().find(|x| x.name == vault.certificates[ci].name)
            {
                key.versions.push(kv);
            }
            let cname = vault.certificates[ci].name.clone();
            if let Some(sec) = vault.secrets.iter_mut().find(|x| x.name == cname) {
                sec.versions.push(sv);
            }
        }
        None => {
            for i in 0..c.versions.len() {
                let version = fresh_version();
                c.versions[i].version = version.clone();
                k.versions[i].version = version.clone();
                s.versions[i].version = version;
            }
            vault.certificates.push(c);
            vault.keys.push(k);
            vault.secrets.push(s);
            vault.certificates.sort_by_key(|x| x.name.to_lowercase());
            vault.keys.sort_by_key(|x| x.name.to_lowercase());
            vault.secrets.sort_by_key(|x| x.name.to_lowercase());
        }
    }
    let c = vault
        .certificates
        .iter()
        .find(|x| x.name.eq_ignore_ascii_case(&name))
        .and_then(|c| c.versions.last())
        .ok_or_else(|| bad("no version"))?;
    Ok(item_summary("certificate", &name, &c.attrs, &c.version))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ItemChange {
    /// Days from now; null removes the expiry.
    #[serde(default, deserialize_with = "present")]
    expires_in_days: Option<Option<i64>>,
    enabled: Option<bool>,
    tags: Option<std::collections::BTreeMap<String, String>>,
    content_type: Option<String>,
    value: Option<String>,
}

/// Distinguishes an absent field (None) from `null` (Some(None)).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(d).map(Some)
}

/// Changes the current version of an item in place (its `updated` moves to now). `expire`
/// sets the expiry to one second ago unless the body says otherwise. A certificate whose expiry
/// changes gets a new version, since its notAfter is part of the certificate.
fn change_item(
    sim: &Sim,
    vault_name: &str,
    kind: &str,
    item: &str,
    body: &[u8],
    expire: bool,
) -> Result<Resp, Resp> {
    let mut change: ItemChange =
        if body.iter().all(u8::is_ascii_whitespace) { ItemChange::default() } else { parse(body)? };
    let t = now();
    let exp = match change.expires_in_days {
        Some(Some(d)) => Some(Some(t + d * DAY)),
        Some(None) => Some(None),
        None if expire => Some(Some(t - 1)),
        None => None,
    };
    let mut w = sim.write();
    let vi = w.vault_index(vault_name).ok_or_else(|| missing("such vault"))?;
    let vault = &mut w.vaults[vi];
    let apply = |a: &mut crate::state::Attrs, enabled: Option<bool>| {
        if let Some(e) = exp {
            a.exp = e;
        }
        if let Some(e) = enabled {
            a.enabled = e;
        }
        a.updated = t;
    };
    match kind {
        "secrets" => {
            let s = vault
                .secrets
                .iter_mut()
                .find(|s| s.name.eq_ignore_ascii_case(item))
                .ok_or_else(|| missing("such secret"))?;
            let v = s.versions.last_mut().ok_or_else(|| missing("version"))?;
            apply(&mut v.attrs, change.enabled);
            if let Some(tags) = change.tags.take() {
                v.tags = tags;
            }
            if let Some(ct) = change.content_type.take() {
                v.content_type = Some(ct);
            }
            if let Some(val) = change.value.take() {
                v.value = val;
            }
            Ok(item_summary("secret", &s.name, &v.attrs, &v.version))
        }
        "keys" => {
            let k = vault
                .keys
                .iter_mut()
                .find(|k| k.name.eq_ignore_ascii_case(item))
                .ok_or_else(|| missing("such key"))?;
            let v = k.versions.last_mut().ok_or_else(|| missing("version"))?;
            apply(&mut v.attrs, change.enabled);
            if let Some(tags) = change.tags.take() {
                v.tags = tags;
            }
            Ok(item_summary("key", &k.name, &v.attrs, &v.version))
        }
        "certificates" => {
            let ci = vault
                .certificates
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(item))
                .ok_or_else(|| missing("such certificate"))?;
            if let Some(new_exp) = exp {
                let c = &vault.certificates[ci];
                let cur = c.versions.last().ok_or_else(|| missing("version"))?;
                let policy = c.policy.clone();
                let tags = change.tags.clone().unwrap_or_else(|| cur.tags.clone());
                let enabled = change.enabled.unwrap_or(cur.attrs.enabled);
                let not_after = new_exp.unwrap_or(t + 3650 * DAY);
                let name = c.name.clone();
                let attrs = crate::kv_write::AttrsIn {
                    enabled: Some(enabled),
                    nbf: None,
                    exp: Some(not_after),
                };
                let self_signed = policy.issuer.eq_ignore_ascii_case("self");
                let policy = crate::state::CertPolicy {
                    issuer: if self_signed { "Self".into() } else { policy.issuer },
                    ..policy
                };
                crate::kv_write::issue_cert(sim, vault, &name, policy, Some(&attrs), tags, t)
                    .map_err(|e| bad(&e))?;
                let c = &vault.certificates[ci];
                let v = c.versions.last().ok_or_else(|| missing("version"))?;
                return Ok(item_summary("certificate", &c.name, &v.attrs, &v.version));
            }
            let c = &mut vault.certificates[ci];
            let v = c.versions.last_mut().ok_or_else(|| missing("version"))?;
            apply(&mut v.attrs, change.enabled);
            if let Some(tags) = change.tags.take() {
                v.tags = tags;
            }
            Ok(item_summary("certificate", &c.name, &v.attrs, &v.version))
        }
        _ => Err(missing("such item kind (secrets, keys, certificates)")),
    }
}
