//! Key Vault data-plane writes: set secrets, create and rotate keys, create certificates
//! (self-signed or signed by the cloudsim CA), update attributes and tags, delete, recover and
//! purge (honouring soft delete and purge protection), and key rotation policies. Bodies and
//! responses follow the Key Vault REST API; the caller has already authenticated the request.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::http::{Resp, guid, json as json_resp, now};
use crate::keyvault::{Ctx, deleted_not_found, find, kv_error, not_found, version_index};
use crate::state::{
    Attrs, CertPolicy, CertVersion, Certificate, DAY, Deleted, Key, KeyVersion, PublicJwk, Secret,
    SecretVersion, Sim, Vault,
};

/// `attributes` in request bodies (Unix seconds).
#[derive(Debug, Default, Deserialize)]
pub struct AttrsIn {
    /// Enabled.
    pub enabled: Option<bool>,
    /// Not before.
    pub nbf: Option<i64>,
    /// Expiry.
    pub exp: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecretSet {
    value: Option<String>,
    content_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    attributes: Option<AttrsIn>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemUpdate {
    content_type: Option<String>,
    tags: Option<BTreeMap<String, String>>,
    attributes: Option<AttrsIn>,
    key_ops: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
struct KeyCreate {
    kty: Option<String>,
    key_size: Option<u32>,
    crv: Option<String>,
    key_ops: Option<Vec<String>>,
    attributes: Option<AttrsIn>,
    tags: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct CertCreate {
    policy: Option<Value>,
    attributes: Option<AttrsIn>,
    tags: Option<BTreeMap<String, String>>,
}

fn bad(message: &str) -> Resp {
    kv_error(StatusCode::BAD_REQUEST, "BadParameter", message)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Resp>> {
    serde_json::from_slice(body).map_err(|e| Box::new(bad(&format!("Invalid request body: {e}"))))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 127
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn invalid_name(name: &str) -> Resp {
    bad(&format!(
        "The request URI contains an invalid name: {name}. Names may only contain alphanumeric \
         characters and dashes."
    ))
}

fn new_version() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn fresh_attrs(a: Option<&AttrsIn>, t: i64) -> Attrs {
    Attrs {
        enabled: a.and_then(|a| a.enabled).unwrap_or(true),
        created: t,
        updated: t,
        nbf: a.and_then(|a| a.nbf),
        exp: a.and_then(|a| a.exp),
    }
}

fn apply_attrs(target: &mut Attrs, a: Option<&AttrsIn>, t: i64) {
    if let Some(a) = a {
        if let Some(e) = a.enabled {
            target.enabled = e;
        }
        if a.nbf.is_some() {
            target.nbf = a.nbf;
        }
        if a.exp.is_some() {
            target.exp = a.exp;
        }
    }
    target.updated = t;
}

fn managed(op: &str, kind: &str, name: &str) -> Resp {
    kv_error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!(
            "Operation {op} is not allowed on {kind} {name} because it backs a certificate. Use \
             the certificate operations instead."
        ),
    )
}

fn deleted_conflict(kind: &str, name: &str) -> Resp {
    kv_error(
        StatusCode::CONFLICT,
        "Conflict",
        &format!(
            "{kind} {name} is currently in a deleted but recoverable state, and its name cannot be \
             reused; in this state, the {} can only be recovered or purged.",
            kind.to_lowercase()
        ),
    )
}

fn purge_protected(vault: &Vault) -> Resp {
    kv_error(
        StatusCode::FORBIDDEN,
        "Forbidden",
        &format!(
            "Operation \"purge\" is not allowed because purge protection is enabled for this \
             vault. Key Vault service will automatically purge it after the retention period has \
             passed.\r\nVault: {};location={}",
            vault.name, vault.location
        ),
    )
}

fn method_not_allowed(method: &Method, path: &str) -> Resp {
    kv_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        &format!("The requested method {method} is not allowed for {path}."),
    )
}

fn insert_sorted<T>(items: &mut Vec<T>, item: T, name: impl Fn(&T) -> String) {
    let key = name(&item).to_lowercase();
    let at = items.iter().position(|x| name(x).to_lowercase() > key).unwrap_or(items.len());
    items.insert(at, item);
}

fn position<T>(items: &[T], name: &str, key: impl Fn(&T) -> &String) -> Option<usize> {
    items.iter().position(|x| key(x).eq_ignore_ascii_case(name))
}

/// Handles a non-GET data-plane request for vault `vi`.
pub fn handle(sim: &Sim, vi: usize, method: &Method, path: &str, api: &str, body: &[u8]) -> Resp {
    let segs = crate::http::segments(path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let mut world = sim.write();
    let Some(vault) = world.vaults.get_mut(vi) else {
        return kv_error(StatusCode::NOT_FOUND, "NotFound", "No such vault.");
    };
    let t = now();
    let out = match (method.as_str(), s.as_slice()) {
        ("PUT", ["secrets", name]) => set_secret(vault, name, body, t),
        ("PATCH", ["secrets", name]) => update_secret(vault, name, None, body, t),
        ("PATCH", ["secrets", name, version]) => update_secret(vault, name, Some(version), body, t),
        ("DELETE", ["secrets", name]) => delete_secret(vault, name, t),
        ("POST", ["deletedsecrets", name, "recover"]) => recover_secret(vault, name),
        ("DELETE", ["deletedsecrets", name]) => purge(vault, "secret", name),
        ("POST" | "PUT", ["keys", name, "create"]) => create_key(sim, vault, name, body, t),
        ("PATCH", ["keys", name]) => update_key(vault, name, None, body, t),
        ("PATCH", ["keys", name, version]) => update_key(vault, name, Some(version), body, t),
        ("DELETE", ["keys", name]) => delete_key(vault, name, t),
        ("POST", ["keys", name, "rotate"]) => rotate_key(sim, vault, name, t),
        ("PUT", ["keys", name, "rotationpolicy"]) => set_rotation_policy(vault, name, body, t),
        ("POST", ["deletedkeys", name, "recover"]) => recover_key(vault, name),
        ("DELETE", ["deletedkeys", name]) => purge(vault, "key", name),
        ("POST", ["certificates", name, "create"]) => create_cert(sim, vault, name, body, t),
        ("PATCH", ["certificates", name]) => update_cert(vault, name, None, body, t),
        ("PATCH", ["certificates", name, version]) => {
            update_cert(vault, name, Some(version), body, t)
        }
        ("DELETE", ["certificates", name]) => delete_cert(vault, name, t),
        ("POST", ["deletedcertificates", name, "recover"]) => recover_cert(vault, name),
        ("DELETE", ["deletedcertificates", name]) => purge(vault, "certificate", name),
        _ => Err(Box::new(method_not_allowed(method, path))),
    };
    let rendered = match out {
        Err(r) => return *r,
        Ok(Render::NoContent) => {
            let mut r = Resp::new(axum::body::Body::empty());
            *r.status_mut() = StatusCode::NO_CONTENT;
            return r;
        }
        Ok(r) => r,
    };
    let ctx = Ctx { vault, api, max: 25, skiptoken: None };
    render(&ctx, rendered)
}

/// What to answer once the vault is changed.
enum Render {
    Secret(String, bool),
    Key(String),
    Cert(String),
    CertOperation(String, StatusCode),
    DeletedSecret(Secret, i64),
    DeletedKey(Key, i64),
    DeletedCert(Certificate, i64),
    RotationPolicy(String),
    SecretOnly(Secret),
    KeyOnly(Key),
    CertOnly(Certificate),
    NoContent,
}

type Out = Result<Render, Box<Resp>>;

fn render(ctx: &Ctx<'_>, r: Render) -> Resp {
    let v = ctx.vault;
    let body = match r {
        Render::Secret(name, with_value) => find(&v.secrets, &name, |x| &x.name)
            .map(|s| ctx.secret_bundle(s, s.versions.len() - 1, with_value)),
        Render::Key(name) => {
            find(&v.keys, &name, |x| &x.name).map(|k| ctx.key_bundle(k, k.versions.len() - 1))
        }
        Render::Cert(name) => find(&v.certificates, &name, |x| &x.name)
            .map(|c| ctx.cert_bundle(c, c.versions.len() - 1)),
        Render::CertOperation(name, status) => {
            return match find(&v.certificates, &name, |x| &x.name).and_then(|c| c.operation.clone())
            {
                Some(op) => json_resp(status, &in_progress(op)),
                None => not_found("CertificateNotFound", "certificate", &name),
            };
        }
        Render::DeletedSecret(s, at) => Some(ctx.deleted(
            ctx.secret_bundle(&s, s.versions.len() - 1, false),
            &s.name,
            "deletedsecrets",
            at,
        )),
        Render::DeletedKey(k, at) => {
            Some(ctx.deleted(ctx.key_bundle(&k, k.versions.len() - 1), &k.name, "deletedkeys", at))
        }
        Render::DeletedCert(c, at) => Some(ctx.deleted(
            ctx.cert_bundle(&c, c.versions.len() - 1),
            &c.name,
            "deletedcertificates",
            at,
        )),
        Render::RotationPolicy(name) => {
            find(&v.keys, &name, |x| &x.name).map(|k| ctx.rotation_policy(k))
        }
        Render::SecretOnly(s) => Some(ctx.secret_bundle(&s, 0, false)),
        Render::KeyOnly(k) => Some(ctx.key_bundle(&k, 0)),
        Render::CertOnly(c) => Some(ctx.cert_bundle(&c, 0)),
        Render::NoContent => None,
    };
    match body {
        Some(b) => json_resp(StatusCode::OK, &b),
        None => kv_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "The item vanished while answering.",
        ),
    }
}

fn set_secret(vault: &mut Vault, name: &str, body: &[u8], t: i64) -> Out {
    if !valid_name(name) {
        return Err(Box::new(invalid_name(name)));
    }
    let req: SecretSet = parse(body)?;
    let Some(value) = req.value else {
        return Err(Box::new(bad("Property 'value' is required.")));
    };
    if find(&vault.deleted_secrets, name, |d| &d.item.name).is_some() {
        return Err(Box::new(deleted_conflict("Secret", name)));
    }
    let version = SecretVersion {
        version: new_version(),
        attrs: fresh_attrs(req.attributes.as_ref(), t),
        value,
        content_type: req.content_type,
        tags: req.tags.unwrap_or_default(),
    };
    match position(&vault.secrets, name, |x| &x.name) {
        Some(i) if vault.secrets[i].managed => {
            return Err(Box::new(managed("set", "secret", name)));
        }
        Some(i) => vault.secrets[i].versions.push(version),
        None => insert_sorted(
            &mut vault.secrets,
            Secret { name: name.to_string(), managed: false, versions: vec![version] },
            |s| s.name.clone(),
        ),
    }
    Ok(Render::Secret(name.to_string(), true))
}

fn update_secret(vault: &mut Vault, name: &str, version: Option<&str>, body: &[u8], t: i64) -> Out {
    let req: ItemUpdate = parse(body)?;
    let Some(s) = vault.secrets.iter_mut().find(|x| x.name.eq_ignore_ascii_case(name)) else {
        return Err(Box::new(not_found("SecretNotFound", "secret", name)));
    };
    let Some(i) = version_index(&s.versions, version, |v| &v.version) else {
        return Err(Box::new(not_found("SecretNotFound", "secret", name)));
    };
    let v = &mut s.versions[i];
    apply_attrs(&mut v.attrs, req.attributes.as_ref(), t);
    if let Some(ct) = req.content_type {
        v.content_type = Some(ct);
    }
    if let Some(tags) = req.tags {
        v.tags = tags;
    }
    // Answer with the updated version, which need not be the current one.
    let version = v.version.clone();
    let mut copy = s.clone();
    copy.versions.retain(|x| x.version == version);
    Ok(Render::SecretOnly(copy))
}

fn delete_secret(vault: &mut Vault, name: &str, t: i64) -> Out {
    let Some(i) = position(&vault.secrets, name, |x| &x.name) else {
        return Err(Box::new(not_found("SecretNotFound", "secret", name)));
    };
    if vault.secrets[i].managed {
        return Err(Box::new(managed("delete", "secret", name)));
    }
    let s = vault.secrets.remove(i);
    if vault.soft_delete {
        vault.deleted_secrets.push(Deleted { item: s.clone(), deleted: t });
    }
    Ok(Render::DeletedSecret(s, t))
}

fn recover_secret(vault: &mut Vault, name: &str) -> Out {
    let Some(i) = position(&vault.deleted_secrets, name, |d| &d.item.name) else {
        return Err(Box::new(deleted_not_found("SecretNotFound", "Secret", name)));
    };
    let d = vault.deleted_secrets.remove(i);
    let name = d.item.name.clone();
    insert_sorted(&mut vault.secrets, d.item, |s| s.name.clone());
    Ok(Render::Secret(name, false))
}

fn purge(vault: &mut Vault, kind: &str, name: &str) -> Out {
    let found = match kind {
        "secret" => position(&vault.deleted_secrets, name, |d| &d.item.name),
        "key" => position(&vault.deleted_keys, name, |d| &d.item.name),
        _ => position(&vault.deleted_certificates, name, |d| &d.item.0.name),
    };
    let Some(i) = found else {
        let (code, title) = match kind {
            "secret" => ("SecretNotFound", "Secret"),
            "key" => ("KeyNotFound", "Key"),
            _ => ("CertificateNotFound", "Certificate"),
        };
        return Err(Box::new(deleted_not_found(code, title, name)));
    };
    if vault.purge_protection {
        return Err(Box::new(purge_protected(vault)));
    }
    match kind {
        "secret" => {
            vault.deleted_secrets.remove(i);
        }
        "key" => {
            vault.deleted_keys.remove(i);
        }
        _ => {
            vault.deleted_certificates.remove(i);
        }
    }
    Ok(Render::NoContent)
}

fn key_material(
    sim: &Sim,
    vault: &str,
    name: &str,
    version: &str,
    kty: &str,
    size: Option<u32>,
    crv: Option<&str>,
) -> Result<PublicJwk, Box<Resp>> {
    if kty.starts_with("EC") {
        crate::scenario::ec_jwk(crv.unwrap_or("P-256")).map_err(|e| Box::new(bad(&e.to_string())))
    } else {
        let mut rng = crate::scenario::rng_for(sim.material.seed, &["key", vault, name, version]);
        crate::scenario::rsa_jwk(&mut rng, size.unwrap_or(2048))
            .map_err(|e| Box::new(bad(&e.to_string())))
    }
}

fn create_key(sim: &Sim, vault: &mut Vault, name: &str, body: &[u8], t: i64) -> Out {
    if !valid_name(name) {
        return Err(Box::new(invalid_name(name)));
    }
    let req: KeyCreate = parse(body)?;
    let Some(kty) = req.kty else {
        return Err(Box::new(bad("Property 'kty' is required.")));
    };
    if !matches!(kty.as_str(), "RSA" | "RSA-HSM" | "EC" | "EC-HSM") {
        return Err(Box::new(bad(&format!(
            "Invalid key type {kty}: this vault supports RSA, RSA-HSM, EC and EC-HSM."
        ))));
    }
    if kty.ends_with("-HSM") && vault.sku != "premium" {
        return Err(Box::new(bad(&format!("Key type {kty} requires a premium vault."))));
    }
    if find(&vault.deleted_keys, name, |d| &d.item.name).is_some() {
        return Err(Box::new(deleted_conflict("Key", name)));
    }
    let version = new_version();
    let jwk =
        key_material(sim, &vault.name, name, &version, &kty, req.key_size, req.crv.as_deref())?;
    let kv = KeyVersion {
        version,
        attrs: fresh_attrs(req.attributes.as_ref(), t),
        key_ops: req.key_ops.unwrap_or_else(|| crate::scenario::default_key_ops(&kty)),
        kty,
        jwk,
        tags: req.tags.unwrap_or_default(),
    };
    match position(&vault.keys, name, |x| &x.name) {
        Some(i) if vault.keys[i].managed => return Err(Box::new(managed("create", "key", name))),
        Some(i) => vault.keys[i].versions.push(kv),
        None => insert_sorted(
            &mut vault.keys,
            Key {
                name: name.to_string(),
                managed: false,
                versions: vec![kv],
                rotation_policy: None,
            },
            |k| k.name.clone(),
        ),
    }
    Ok(Render::Key(name.to_string()))
}

fn update_key(vault: &mut Vault, name: &str, version: Option<&str>, body: &[u8], t: i64) -> Out {
    let req: ItemUpdate = parse(body)?;
    let Some(k) = vault.keys.iter_mut().find(|x| x.name.eq_ignore_ascii_case(name)) else {
        return Err(Box::new(not_found("KeyNotFound", "key", name)));
    };
    let Some(i) = version_index(&k.versions, version, |v| &v.version) else {
        return Err(Box::new(not_found("KeyNotFound", "key", name)));
    };
    let v = &mut k.versions[i];
    apply_attrs(&mut v.attrs, req.attributes.as_ref(), t);
    if let Some(ops) = req.key_ops {
        v.key_ops = ops;
    }
    if let Some(tags) = req.tags {
        v.tags = tags;
    }
    let mut copy = k.clone();
    let version = copy.versions[i].version.clone();
    copy.versions.retain(|x| x.version == version);
    Ok(Render::KeyOnly(copy))
}

fn delete_key(vault: &mut Vault, name: &str, t: i64) -> Out {
    let Some(i) = position(&vault.keys, name, |x| &x.name) else {
        return Err(Box::new(not_found("KeyNotFound", "key", name)));
    };
    if vault.keys[i].managed {
        return Err(Box::new(managed("delete", "key", name)));
    }
    let k = vault.keys.remove(i);
    if vault.soft_delete {
        vault.deleted_keys.push(Deleted { item: k.clone(), deleted: t });
    }
    Ok(Render::DeletedKey(k, t))
}

fn recover_key(vault: &mut Vault, name: &str) -> Out {
    let Some(i) = position(&vault.deleted_keys, name, |d| &d.item.name) else {
        return Err(Box::new(deleted_not_found("KeyNotFound", "Key", name)));
    };
    let d = vault.deleted_keys.remove(i);
    let name = d.item.name.clone();
    insert_sorted(&mut vault.keys, d.item, |k| k.name.clone());
    Ok(Render::Key(name))
}

/// Days in an ISO 8601 duration such as P90D, P3M, P1Y or P1Y6M (months count 30 days).
pub fn duration_days(d: &str) -> Option<i64> {
    let rest = d.strip_prefix('P')?;
    let (mut total, mut num) = (0i64, String::new());
    for c in rest.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        total += match c {
            'Y' => n * 365,
            'M' => n * 30,
            'W' => n * 7,
            'D' => n,
            _ => return None,
        };
    }
    num.is_empty().then_some(total)
}

fn rotate_key(sim: &Sim, vault: &mut Vault, name: &str, t: i64) -> Out {
    let vault_name = vault.name.clone();
    let Some(k) = vault.keys.iter_mut().find(|x| x.name.eq_ignore_ascii_case(name)) else {
        return Err(Box::new(not_found("KeyNotFound", "key", name)));
    };
    if k.managed {
        return Err(Box::new(managed("rotate", "key", name)));
    }
    let Some(cur) = k.versions.last().cloned() else {
        return Err(Box::new(not_found("KeyNotFound", "key", name)));
    };
    let version = new_version();
    let (size, crv) = match &cur.jwk {
        PublicJwk::Rsa { n, .. } => (u32::try_from(n.len() * 8).ok(), None),
        PublicJwk::Ec { crv, .. } => (None, Some(crv.clone())),
    };
    let jwk = key_material(sim, &vault_name, &k.name, &version, &cur.kty, size, crv.as_deref())?;
    let exp = k
        .rotation_policy
        .as_ref()
        .and_then(|p| p["attributes"]["expiryTime"].as_str())
        .and_then(duration_days)
        .map(|d| t + d * DAY);
    k.versions.push(KeyVersion {
        version,
        attrs: Attrs { enabled: true, created: t, updated: t, nbf: None, exp },
        kty: cur.kty,
        key_ops: cur.key_ops,
        jwk,
        tags: cur.tags,
    });
    Ok(Render::Key(k.name.clone()))
}

fn set_rotation_policy(vault: &mut Vault, name: &str, body: &[u8], t: i64) -> Out {
    let req: Value = parse(body)?;
    let Some(k) = vault.keys.iter_mut().find(|x| x.name.eq_ignore_ascii_case(name)) else {
        return Err(Box::new(not_found("KeyNotFound", "key", name)));
    };
    let actions = req["lifetimeActions"].as_array().cloned().unwrap_or_default();
    for a in &actions {
        let ty = a["action"]["type"].as_str().unwrap_or("");
        if !ty.eq_ignore_ascii_case("rotate") && !ty.eq_ignore_ascii_case("notify") {
            return Err(Box::new(bad(&format!(
                "Invalid lifetime action type '{ty}': use Rotate or Notify."
            ))));
        }
        let trigger = &a["trigger"];
        for field in ["timeAfterCreate", "timeBeforeExpiry"] {
            if let Some(d) = trigger[field].as_str()
                && duration_days(d).is_none()
            {
                return Err(Box::new(bad(&format!("Invalid ISO 8601 duration '{d}' in {field}."))));
            }
        }
    }
    let created =
        k.rotation_policy.as_ref().and_then(|p| p["attributes"]["created"].as_i64()).unwrap_or(t);
    let mut attributes = json!({"created": created, "updated": t});
    if let Some(e) = req["attributes"]["expiryTime"].as_str() {
        if duration_days(e).is_none() {
            return Err(Box::new(bad(&format!("Invalid ISO 8601 duration '{e}' in expiryTime."))));
        }
        attributes["expiryTime"] = json!(e);
    }
    k.rotation_policy = Some(json!({"lifetimeActions": actions, "attributes": attributes}));
    Ok(Render::RotationPolicy(k.name.clone()))
}

fn policy_from_request(p: &Value, name: &str, t: i64) -> CertPolicy {
    let x509 = &p["x509_props"];
    let str_list = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let issuer = p["issuer"]["name"].as_str().unwrap_or("Self").to_string();
    let ekus = str_list(&x509["ekus"]);
    let key_usage = str_list(&x509["key_usage"]);
    CertPolicy {
        kty: "RSA".into(),
        key_size: Some(2048),
        crv: None,
        exportable: p["key_props"]["exportable"].as_bool().unwrap_or(true),
        reuse_key: p["key_props"]["reuse_key"].as_bool().unwrap_or(false),
        content_type: p["secret_props"]["contentType"]
            .as_str()
            .unwrap_or("application/x-pkcs12")
            .to_string(),
        subject: x509["subject"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("CN={name}")),
        sans: str_list(&x509["sans"]["dns_names"]),
        ekus: if ekus.is_empty() {
            vec!["1.3.6.1.5.5.7.3.1".into(), "1.3.6.1.5.5.7.3.2".into()]
        } else {
            ekus
        },
        key_usage: if key_usage.is_empty() {
            vec!["digitalSignature".into(), "keyEncipherment".into()]
        } else {
            key_usage
        },
        validity_months: x509["validity_months"].as_i64().unwrap_or(12).max(1),
        action: if issuer.eq_ignore_ascii_case("self") {
            "AutoRenew".into()
        } else {
            "EmailContacts".into()
        },
        issuer,
        created: t,
    }
}

/// Issues a new certificate version (and the backing key and secret) under `policy`.
pub fn issue_cert(
    sim: &Sim,
    vault: &mut Vault,
    name: &str,
    policy: CertPolicy,
    attrs: Option<&AttrsIn>,
    tags: BTreeMap<String, String>,
    t: i64,
) -> Result<(), String> {
    let validity = policy.validity_months * 30 * DAY;
    let not_after = attrs.and_then(|a| a.exp).unwrap_or(t + validity);
    let not_before = (not_after - validity).min(t - 300);
    let mut serial = [0u8; 16];
    serial[..16].copy_from_slice(&uuid::Uuid::new_v4().into_bytes());
    let der = crate::certs::generate_leaf(
        &crate::certs::LeafSpec {
            subject: &policy.subject,
            sans: &policy.sans,
            not_before,
            not_after,
            self_signed: policy.issuer.eq_ignore_ascii_case("self"),
            serial,
        },
        &sim.material.leaf_key,
        &sim.material.ca,
    )
    .map_err(|e| e.to_string())?;
    let info = crate::certs::cert_info(&der).map_err(|e| e.to_string())?;
    let version = new_version();
    let a = Attrs {
        enabled: attrs.and_then(|a| a.enabled).unwrap_or(true),
        created: t,
        updated: t,
        nbf: Some(info.not_before),
        exp: Some(info.not_after),
    };
    let pem = format!(
        "{}{}",
        sim.material.leaf_key.serialize_pem(),
        crate::certs::to_pem("CERTIFICATE", &der)
    );
    let key_version = KeyVersion {
        version: version.clone(),
        attrs: a.clone(),
        kty: "RSA".into(),
        key_ops: crate::scenario::default_key_ops("RSA"),
        jwk: info.jwk.clone(),
        tags: BTreeMap::new(),
    };
    let secret_version = SecretVersion {
        version: version.clone(),
        attrs: a.clone(),
        value: pem,
        content_type: Some(policy.content_type.clone()),
        tags: BTreeMap::new(),
    };
    let cert_version = CertVersion { version, attrs: a, der, tags };
    match position(&vault.keys, name, |k| &k.name) {
        Some(i) => vault.keys[i].versions.push(key_version),
        None => insert_sorted(
            &mut vault.keys,
            Key {
                name: name.to_string(),
                managed: true,
                versions: vec![key_version],
                rotation_policy: None,
            },
            |k| k.name.clone(),
        ),
    }
    match position(&vault.secrets, name, |s| &s.name) {
        Some(i) => vault.secrets[i].versions.push(secret_version),
        None => insert_sorted(
            &mut vault.secrets,
            Secret { name: name.to_string(), managed: true, versions: vec![secret_version] },
            |s| s.name.clone(),
        ),
    }
    match position(&vault.certificates, name, |c| &c.name) {
        Some(i) => {
            vault.certificates[i].versions.push(cert_version);
            vault.certificates[i].policy = policy;
        }
        None => insert_sorted(
            &mut vault.certificates,
            Certificate {
                name: name.to_string(),
                versions: vec![cert_version],
                policy,
                operation: None,
            },
            |c| c.name.clone(),
        ),
    }
    Ok(())
}

fn create_cert(sim: &Sim, vault: &mut Vault, name: &str, body: &[u8], t: i64) -> Out {
    if !valid_name(name) {
        return Err(Box::new(invalid_name(name)));
    }
    let req: CertCreate = parse(body)?;
    if find(&vault.deleted_certificates, name, |d| &d.item.0.name).is_some() {
        return Err(Box::new(deleted_conflict("Certificate", name)));
    }
    let secret_taken =
        vault.secrets.iter().any(|s| s.name.eq_ignore_ascii_case(name) && !s.managed);
    let key_taken = vault.keys.iter().any(|k| k.name.eq_ignore_ascii_case(name) && !k.managed);
    if secret_taken || key_taken {
        return Err(Box::new(kv_error(
            StatusCode::CONFLICT,
            "Conflict",
            &format!("A secret or key named {name} already exists and is not managed."),
        )));
    }
    let existing = find(&vault.certificates, name, |c| &c.name).map(|c| c.policy.clone());
    let policy = match (&req.policy, existing) {
        (Some(p), _) => policy_from_request(p, name, t),
        (None, Some(p)) => p,
        (None, None) => {
            return Err(Box::new(bad("Property 'policy' is required.")));
        }
    };
    if policy.issuer.eq_ignore_ascii_case("unknown") {
        return Err(Box::new(bad(
            "cloudsim issues certificates only for issuer Self or a named issuer; issuer \
             Unknown (create a CSR, then merge) is not implemented.",
        )));
    }
    let issuer = policy.issuer.clone();
    issue_cert(sim, vault, name, policy, req.attributes.as_ref(), req.tags.unwrap_or_default(), t)
        .map_err(|e| {
            Box::new(kv_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", &e))
        })?;
    let base = vault.base_url();
    let Some(c) = vault.certificates.iter_mut().find(|c| c.name.eq_ignore_ascii_case(name)) else {
        return Err(Box::new(not_found("CertificateNotFound", "certificate", name)));
    };
    c.operation = Some(json!({
        "id": format!("{base}/certificates/{}/pending", c.name),
        "issuer": {"name": issuer},
        "cancellation_requested": false,
        "status": "completed",
        "target": format!("{base}/certificates/{}", c.name),
        "request_id": guid().replace('-', ""),
    }));
    Ok(Render::CertOperation(c.name.clone(), StatusCode::ACCEPTED))
}

/// The create answer: Key Vault reports the operation `inProgress` first (SDK pollers rely on
/// it) and `completed` from `/pending` once issued, which in cloudsim is at once.
fn in_progress(mut op: Value) -> Value {
    op["status"] = json!("inProgress");
    if let Some(m) = op.as_object_mut() {
        m.remove("target");
    }
    op
}

fn update_cert(vault: &mut Vault, name: &str, version: Option<&str>, body: &[u8], t: i64) -> Out {
    let req: ItemUpdate = parse(body)?;
    let Some(c) = vault.certificates.iter_mut().find(|x| x.name.eq_ignore_ascii_case(name)) else {
        return Err(Box::new(not_found("CertificateNotFound", "certificate", name)));
    };
    let Some(i) = version_index(&c.versions, version, |v| &v.version) else {
        return Err(Box::new(not_found("CertificateNotFound", "certificate", name)));
    };
    let v = &mut c.versions[i];
    apply_attrs(&mut v.attrs, req.attributes.as_ref(), t);
    if let Some(tags) = req.tags {
        v.tags = tags;
    }
    let mut copy = c.clone();
    let version = copy.versions[i].version.clone();
    copy.versions.retain(|x| x.version == version);
    Ok(Render::CertOnly(copy))
}

fn delete_cert(vault: &mut Vault, name: &str, t: i64) -> Out {
    let Some(i) = position(&vault.certificates, name, |x| &x.name) else {
        return Err(Box::new(not_found("CertificateNotFound", "certificate", name)));
    };
    let c = vault.certificates.remove(i);
    let k = position(&vault.keys, &c.name, |x| &x.name).map(|i| vault.keys.remove(i));
    let s = position(&vault.secrets, &c.name, |x| &x.name).map(|i| vault.secrets.remove(i));
    if vault.soft_delete
        && let (Some(k), Some(s)) = (k, s)
    {
        vault.deleted_certificates.push(Deleted { item: (c.clone(), k, s), deleted: t });
    }
    Ok(Render::DeletedCert(c, t))
}

fn recover_cert(vault: &mut Vault, name: &str) -> Out {
    let Some(i) = position(&vault.deleted_certificates, name, |d| &d.item.0.name) else {
        return Err(Box::new(deleted_not_found("CertificateNotFound", "Certificate", name)));
    };
    let (c, k, s) = vault.deleted_certificates.remove(i).item;
    let name = c.name.clone();
    insert_sorted(&mut vault.certificates, c, |x| x.name.clone());
    insert_sorted(&mut vault.keys, k, |x| x.name.clone());
    insert_sorted(&mut vault.secrets, s, |x| x.name.clone());
    Ok(Render::Cert(name))
}
