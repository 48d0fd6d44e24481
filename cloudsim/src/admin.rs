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
        None => matches!(target, "arm" | "token").then(|| target.to_string()),
    }
}

fn add_fault(sim: &Sim, body: &[u8]) -> Result<Resp, Resp> {
    let f: Fault = parse::<Fault>(body)?.normalised();
    f.validate().map_err(|e| bad(&e))?;
    let Some(target) = canonical_target(&sim.read(), &f.target) else {
        return Err(bad(&format!(
            "unknown target {:?}: use \"arm\", \"token\" or \"vault:<name>\"",
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
    json_resp(
        StatusCode::OK,
        &json!({
            "tenantId": sim.tenant_id,
            "clientId": sim.client_id,
            "clientSecret": w.client_secret,
            "clientSecretExpired": w.client_secret_expired,
        }),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AppChange {
    client_secret: Option<String>,
    client_secret_expired: Option<bool>,
}

fn set_app(sim: &Sim, body: &[u8]) -> Result<Resp, Resp> {
    let change: AppChange = parse(body)?;
    {
        let mut w = sim.write();
        if let Some(s) = change.client_secret {
            if s.is_empty() {
                return Err(bad("clientSecret must not be empty"));
            }
            w.client_secret = s;
        }
        if let Some(e) = change.client_secret_expired {
            w.client_secret_expired = e;
        }
    }
    Ok(app_json(sim))
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
