//! Key Vault data plane, one listener per vault: secrets, keys and certificates (list, list
//! versions, get, policy, deleted items) in the service's real wire format, with the bearer
//! challenge, api-version checks, the firewall (publicNetworkAccess Disabled), access denial
//! (RBAC or access policy), absolute `nextLink` paging (optionally interleaving empty pages) and
//! Key Vault-shaped errors. Writes live in [`crate::kv_write`].

use std::collections::BTreeMap;

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use crate::faults::Fault;
use crate::http::{Resp, guid, json as json_resp, now, set_header};
use crate::state::{
    Attrs, CertPolicy, Certificate, Key, KeyVersion, PublicJwk, Secret, Sim, Vault,
};
use crate::token::TokenError;

/// Audience Key Vault accepts.
pub const VAULT_AUDIENCES: &[&str] = &["https://vault.azure.net", "https://vault.azure.net/"];
/// Value of the x-ms-keyvault-service-version header.
pub const SERVICE_VERSION: &str = "1.9.2523.1";
const DEFAULT_MAX: usize = 25;
const NOT_FOUND_HELP: &str = "If you recently deleted this {kind} you may be able to recover it \
    using the correct recovery command. For help resolving this issue, please see \
    https://go.microsoft.com/fwlink/?linkid=2125182";

/// Whether an api-version is one Key Vault accepts (2016-10-01, 7.0-7.6, 7.x previews,
/// 2025-07-01 and 2026-04-01).
pub fn api_version_ok(v: &str) -> bool {
    matches!(
        v,
        "7.0"
            | "7.1"
            | "7.2"
            | "7.3"
            | "7.4"
            | "7.5"
            | "7.6"
            | "2025-07-01"
            | "2026-04-01"
            | "2016-10-01"
    ) || v.starts_with("7.6-preview.")
        || v.starts_with("7.5-preview.")
}

/// What the response headers need to know about a vault.
#[derive(Debug, Clone)]
pub struct VaultInfo {
    /// Vault name.
    pub name: String,
    /// Region.
    pub location: String,
    /// Listener address.
    pub addr: std::net::SocketAddr,
}

impl VaultInfo {
    /// The header facts of a vault.
    pub fn of(v: &Vault) -> Self {
        Self { name: v.name.clone(), location: v.location.clone(), addr: v.addr }
    }
}

const THROTTLED: &str = "Request was not processed because too many requests were received. \
    Reason: VaultRequestTypeLimitReached";

/// The 429 Key Vault answers over its request limit, with an optional Retry-After.
pub fn throttled(retry_after: Option<u64>) -> Resp {
    let mut r = kv_error(StatusCode::TOO_MANY_REQUESTS, "Throttled", THROTTLED);
    if let Some(s) = retry_after {
        set_header(&mut r, "retry-after", &s.to_string());
    }
    r
}

/// Builds a Key Vault error body.
pub fn kv_error(status: StatusCode, code: &str, message: &str) -> Resp {
    json_resp(status, &json!({"error": {"code": code, "message": message}}))
}

/// Builds a Key Vault error body with an `innererror` code.
pub fn kv_error_inner(status: StatusCode, code: &str, message: &str, inner: &str) -> Resp {
    json_resp(
        status,
        &json!({"error": {"code": code, "message": message, "innererror": {"code": inner}}}),
    )
}

/// The response for an injected fault on a vault.
pub fn fault_response(f: &Fault) -> Resp {
    let code = f.status.unwrap_or(500);
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = match code {
        429 => kv_error(status, "Throttled", THROTTLED),
        401 => {
            kv_error(status, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
        }
        403 => kv_error_inner(
            status,
            "Forbidden",
            "Caller is not authorized to perform action on resource.",
            "ForbiddenByRbac",
        ),
        404 => kv_error(status, "NotFound", "The requested resource was not found."),
        500 => kv_error(
            status,
            "InternalServerError",
            "An unexpected error occurred while processing the request.",
        ),
        502 => kv_error(status, "BadGateway", "The service received an invalid response upstream."),
        503 => kv_error(
            status,
            "ServiceUnavailable",
            "The service is temporarily unavailable. Please retry the request.",
        ),
        504 => kv_error(status, "GatewayTimeout", "The operation timed out."),
        _ => kv_error(status, "Error", &format!("Injected fault with status {code}.")),
    };
    if let Some(s) = f.retry_after {
        set_header(&mut r, "retry-after", &s.to_string());
    }
    r
}

/// Adds the headers Key Vault puts on every response.
pub fn kv_headers(resp: &mut Resp, vault: &VaultInfo, headers: &HeaderMap) {
    set_header(resp, "x-ms-request-id", &guid());
    if let Some(id) = headers.get("x-ms-client-request-id").and_then(|v| v.to_str().ok()) {
        set_header(resp, "x-ms-client-request-id", id);
    }
    set_header(resp, "x-ms-keyvault-service-version", SERVICE_VERSION);
    let fam = if vault.addr.is_ipv6() { "Ipv6" } else { "Ipv4" };
    let act = if vault.addr.is_ipv6() { "InterNetworkV6" } else { "InterNetwork" };
    set_header(
        resp,
        "x-ms-keyvault-network-info",
        &format!("conn_type={fam};addr={};act_addr_fam={act};", vault.addr.ip()),
    );
    set_header(resp, "x-ms-keyvault-region", &vault.location);
    if resp.status() != StatusCode::NO_CONTENT {
        set_header(resp, "content-type", crate::http::JSON_UTF8);
    }
    set_header(resp, "cache-control", "no-cache");
    set_header(resp, "pragma", "no-cache");
    set_header(resp, "expires", "-1");
    set_header(resp, "x-content-type-options", "nosniff");
    set_header(resp, "strict-transport-security", "max-age=31536000;includeSubDomains");
}

fn challenge(sim: &Sim) -> String {
    format!(
        "Bearer authorization=\"{}/{}\", resource=\"https://vault.azure.net\"",
        sim.main_url(),
        sim.tenant_id
    )
}

/// The Key Vault permission family and verb a request needs (for denial messages).
fn permission(method: &Method, segs: &[&str]) -> (&'static str, &'static str, &'static str) {
    let family = match segs.first().copied().unwrap_or("") {
        "keys" | "deletedkeys" => "keys",
        "certificates" | "deletedcertificates" => "certificates",
        _ => "secrets",
    };
    let deleted = segs.first().is_some_and(|s| s.starts_with("deleted"));
    let (verb, action) = match (method.as_str(), segs.len(), deleted) {
        ("GET", 1, _) => ("list", "readMetadata/action"),
        ("GET", _, _) if segs.last() == Some(&"versions") => ("list", "readMetadata/action"),
        ("GET", _, true) => ("get", "readMetadata/action"),
        ("GET", _, false) if family == "secrets" => ("get", "getSecret/action"),
        ("GET", _, false) => ("get", "read/action"),
        ("DELETE", _, true) => ("purge", "delete"),
        ("DELETE", _, false) => ("delete", "delete"),
        ("POST", _, true) => ("recover", "recover/action"),
        ("POST", _, _) if segs.last() == Some(&"rotate") => ("rotate", "rotate/action"),
        ("POST", _, _) => ("create", "create/action"),
        ("PUT", _, _) if family == "secrets" => ("set", "setSecret/action"),
        _ => ("update", "update/action"),
    };
    (family, verb, action)
}

fn denied(
    sim: &Sim,
    vault: &Vault,
    claims: &crate::token::Claims,
    method: &Method,
    path: &str,
) -> Resp {
    let segs = crate::http::segments(path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (family, verb, action) = permission(method, &s);
    let caller = format!("appid={};oid={};iss={}", claims.appid, claims.oid, claims.iss);
    if vault.rbac {
        let item = segs.get(1).map(|n| format!("/{family}/{n}")).unwrap_or_default();
        kv_error_inner(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "Caller is not authorized to perform action on resource.\r\nIf role assignments, \
                 deny assignments or role definitions were changed recently, please observe \
                 propagation time.\r\nCaller: {caller}\r\nAction: \
                 'Microsoft.KeyVault/vaults/{family}/{action}'\r\nResource: '{}{item}'\r\n\
                 Assignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \
                 \r\nVault: {};location={}\r\n",
                vault.resource_id().to_lowercase(),
                vault.name,
                vault.location
            ),
            "ForbiddenByRbac",
        )
    } else {
        let _ = sim;
        kv_error_inner(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "The user, group or application '{caller}' does not have {family} {verb} \
                 permission on key vault '{};location={}'. For help resolving this issue, please \
                 see https://go.microsoft.com/fwlink/?linkid=2125287",
                vault.name, vault.location
            ),
            "ForbiddenByPolicy",
        )
    }
}

fn unauthorized(sim: &Sim, message: &str) -> Resp {
    let mut r = kv_error(StatusCode::UNAUTHORIZED, "Unauthorized", message);
    set_header(&mut r, "www-authenticate", &challenge(sim));
    r
}

/// Handles one data-plane request for vault `vi`.
pub fn handle(
    sim: &Sim,
    vi: usize,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Resp {
    let Some(token) = crate::http::bearer(headers) else {
        return unauthorized(sim, "AKV10000: Request is missing a Bearer or PoP token.");
    };
    let claims = match sim.signer.validate(
        &token,
        VAULT_AUDIENCES,
        &sim.issuer(),
        &sim.tenant_id,
        now(),
    ) {
        Ok(c) => c,
        Err(TokenError::Audience { found }) => {
            return unauthorized(
                sim,
                &format!(
                    "AKV10022: Invalid audience. Expected https://vault.azure.net, found: {found}."
                ),
            );
        }
        Err(TokenError::Expired { .. }) => return unauthorized(sim, "AKV10035: Token expired."),
        Err(TokenError::Issuer { found }) => {
            return unauthorized(
                sim,
                &format!(
                    "AKV10032: Invalid issuer. Expected one of {}, found: {found}.",
                    sim.issuer()
                ),
            );
        }
        Err(TokenError::NotYetValid) => return unauthorized(sim, "AKV10036: Token not yet valid."),
        Err(TokenError::BadSignature) => {
            return unauthorized(sim, "AKV10021: Invalid token signature.");
        }
    };
    let q = crate::http::parse_query(Some(query));
    let Some(api) = q.get("api-version").cloned() else {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request URI contains an invalid or missing api-version parameter.",
        );
    };
    if !api_version_ok(&api) {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            &format!(
                "The specified version ({api}) is not recognized. Consider using the latest \
                 supported version (2026-04-01)."
            ),
        );
    }
    {
        let world = sim.read();
        let Some(vault) = world.vaults.get(vi) else {
            return kv_error(StatusCode::NOT_FOUND, "NotFound", "No such vault.");
        };
        if !vault.reachable() {
            return kv_error_inner(
                StatusCode::FORBIDDEN,
                "Forbidden",
                &format!(
                    "Client address is not authorized and caller is not a trusted service.\r\n\
                     Client address: {}\r\nCaller: appid={};oid={};iss={}\r\nVault: \
                     {};location={}",
                    vault.addr.ip(),
                    claims.appid,
                    claims.oid,
                    claims.iss,
                    vault.name,
                    vault.location
                ),
                "ForbiddenByFirewall",
            );
        }
        if vault.deny_access {
            return denied(sim, vault, &claims, method, path);
        }
    }
    if *method != Method::GET {
        return crate::kv_write::handle(sim, vi, method, path, &api, body);
    }
    let world = sim.read();
    let Some(vault) = world.vaults.get(vi) else {
        return kv_error(StatusCode::NOT_FOUND, "NotFound", "No such vault.");
    };
    let max = match q.get("maxresults") {
        None => DEFAULT_MAX,
        Some(m) => match m.parse::<usize>() {
            Ok(n) if (1..=25).contains(&n) => n,
            _ => {
                return kv_error(
                    StatusCode::BAD_REQUEST,
                    "BadParameter",
                    &format!("Invalid maxresults value '{m}'. It must be between 1 and 25."),
                );
            }
        },
    };
    let ctx = Ctx { vault, api: &api, max, skiptoken: q.get("$skiptoken").map(String::as_str) };
    let segs = crate::http::segments(path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["secrets"] => {
            ctx.page("secrets", "/secrets", &vault.secrets, |x| ctx.secret_item(x, None))
        }
        ["secrets", name, "versions"] => match find(&vault.secrets, name, |x| &x.name) {
            Some(x) => {
                let items: Vec<usize> = (0..x.versions.len()).collect();
                ctx.page("secretversions", &format!("/secrets/{}/versions", x.name), &items, |i| {
                    ctx.secret_item(x, Some(*i))
                })
            }
            None => not_found("SecretNotFound", "secret", name),
        },
        ["secrets", name] | ["secrets", name, ""] => ctx.get_secret(name, None),
        ["secrets", name, version] => ctx.get_secret(name, Some(version)),
        ["keys"] => ctx.page("keys", "/keys", &vault.keys, |x| ctx.key_item(x, None)),
        ["keys", name, "versions"] => match find(&vault.keys, name, |x| &x.name) {
            Some(x) => {
                let items: Vec<usize> = (0..x.versions.len()).collect();
                ctx.page("keyversions", &format!("/keys/{}/versions", x.name), &items, |i| {
                    ctx.key_item(x, Some(*i))
                })
            }
            None => not_found("KeyNotFound", "key", name),
        },
        ["keys", name] => ctx.get_key(name, None),
        ["keys", name, "rotationpolicy"] => match find(&vault.keys, name, |x| &x.name) {
            Some(k) => json_resp(StatusCode::OK, &ctx.rotation_policy(k)),
            None => not_found("KeyNotFound", "key", name),
        },
        ["keys", name, version] => ctx.get_key(name, Some(version)),
        ["certificates"] => ctx
            .page("certificates", "/certificates", &vault.certificates, |x| ctx.cert_item(x, None)),
        ["certificates", name, "versions"] => match find(&vault.certificates, name, |x| &x.name) {
            Some(x) => {
                let items: Vec<usize> = (0..x.versions.len()).collect();
                ctx.page(
                    "certificateversions",
                    &format!("/certificates/{}/versions", x.name),
                    &items,
                    |i| ctx.cert_item(x, Some(*i)),
                )
            }
            None => not_found("CertificateNotFound", "certificate", name),
        },
        ["certificates", name, "policy"] => match find(&vault.certificates, name, |x| &x.name) {
            Some(x) => json_resp(StatusCode::OK, &ctx.policy_json(x)),
            None => not_found("CertificateNotFound", "certificate", name),
        },
        ["certificates", name] => ctx.get_cert(name, None),
        ["certificates", name, "pending"] => match find(&vault.certificates, name, |x| &x.name) {
            Some(c) => match &c.operation {
                Some(op) => json_resp(StatusCode::OK, op),
                None => kv_error(
                    StatusCode::NOT_FOUND,
                    "PendingCertificateNotFound",
                    &format!("Pending certificate not found: {}", c.name),
                ),
            },
            None => not_found("CertificateNotFound", "certificate", name),
        },
        ["certificates", name, version] => ctx.get_cert(name, Some(version)),
        ["deletedsecrets"] => {
            ctx.page("deletedsecrets", "/deletedsecrets", &vault.deleted_secrets, |d| {
                ctx.deleted(
                    ctx.secret_item(&d.item, None),
                    &d.item.name,
                    "deletedsecrets",
                    d.deleted,
                )
            })
        }
        ["deletedsecrets", name] => match find(&vault.deleted_secrets, name, |d| &d.item.name) {
            Some(d) => json_resp(
                StatusCode::OK,
                &ctx.deleted(
                    ctx.secret_bundle(&d.item, d.item.versions.len() - 1, false),
                    &d.item.name,
                    "deletedsecrets",
                    d.deleted,
                ),
            ),
            None => deleted_not_found("SecretNotFound", "Secret", name),
        },
        ["deletedkeys"] => ctx.page("deletedkeys", "/deletedkeys", &vault.deleted_keys, |d| {
            ctx.deleted(ctx.key_item(&d.item, None), &d.item.name, "deletedkeys", d.deleted)
        }),
        ["deletedkeys", name] => match find(&vault.deleted_keys, name, |d| &d.item.name) {
            Some(d) => json_resp(
                StatusCode::OK,
                &ctx.deleted(
                    ctx.key_bundle(&d.item, d.item.versions.len() - 1),
                    &d.item.name,
                    "deletedkeys",
                    d.deleted,
                ),
            ),
            None => deleted_not_found("KeyNotFound", "Key", name),
        },
        ["deletedcertificates"] => ctx.page(
            "deletedcertificates",
            "/deletedcertificates",
            &vault.deleted_certificates,
            |d| {
                ctx.deleted(
                    ctx.cert_item(&d.item.0, None),
                    &d.item.0.name,
                    "deletedcertificates",
                    d.deleted,
                )
            },
        ),
        ["deletedcertificates", name] => {
            match find(&vault.deleted_certificates, name, |d| &d.item.0.name) {
                Some(d) => json_resp(
                    StatusCode::OK,
                    &ctx.deleted(
                        ctx.cert_bundle(&d.item.0, d.item.0.versions.len() - 1),
                        &d.item.0.name,
                        "deletedcertificates",
                        d.deleted,
                    ),
                ),
                None => deleted_not_found("CertificateNotFound", "Certificate", name),
            }
        }

        _ => kv_error(
            StatusCode::NOT_FOUND,
            "BadParameter",
            &format!("The request URI {path} is not valid for this service."),
        ),
    }
}

/// The item whose name matches (case-insensitive, as Key Vault compares names).
pub fn find<'a, T>(items: &'a [T], name: &str, key: impl Fn(&T) -> &String) -> Option<&'a T> {
    items.iter().find(|x| key(x).eq_ignore_ascii_case(name))
}

/// 404 for a deleted item that is not in the vault's deleted list.
pub fn deleted_not_found(code: &str, kind: &str, name: &str) -> Resp {
    kv_error(StatusCode::NOT_FOUND, code, &format!("Deleted {kind} not found: {name}"))
}

/// Key Vault's 404 for a missing secret, key or certificate.
pub fn not_found(code: &str, kind: &str, id: &str) -> Resp {
    let an = if kind == "key" {
        "A key"
    } else if kind == "secret" {
        "A secret"
    } else {
        "A certificate"
    };
    kv_error(
        StatusCode::NOT_FOUND,
        code,
        &format!(
            "{an} with (name/id) {id} was not found in this key vault. {}",
            NOT_FOUND_HELP.replace("{kind}", kind)
        ),
    )
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Empty,
    Full,
}

fn encode_token(kind: &str, offset: usize, phase: Phase) -> String {
    let p = if phase == Phase::Empty { "E" } else { "F" };
    let marker = STANDARD
        .encode(format!("{offset:06}!{kind}/{p}!000028!9999-12-31T23:59:59.9999999Z!"))
        .replace('=', "-");
    let inner = json!({
        "NextMarker": format!("2!{}!{marker}", marker.len()),
        "TargetLocation": 0,
    });
    URL_SAFE_NO_PAD.encode(inner.to_string())
}

fn decode_token(kind: &str, tok: &str) -> Option<(usize, Phase)> {
    let raw = URL_SAFE_NO_PAD.decode(tok.trim_end_matches('=')).ok()?;
    let v: Value = serde_json::from_slice(&raw).ok()?;
    let nm = v.get("NextMarker")?.as_str()?;
    let marker = nm.splitn(3, '!').nth(2)?;
    let text = String::from_utf8(STANDARD.decode(marker.replace('-', "=")).ok()?).ok()?;
    let mut parts = text.split('!');
    let offset = parts.next()?.parse().ok()?;
    let (k, p) = parts.next()?.split_once('/')?;
    if k != kind {
        return None;
    }
    Some((offset, if p == "E" { Phase::Empty } else { Phase::Full }))
}

/// Renders a vault's objects in Key Vault's wire format.
pub struct Ctx<'a> {
    /// The vault.
    pub vault: &'a Vault,
    /// api-version of the request (carried into nextLink).
    pub api: &'a str,
    /// Page size.
    pub max: usize,
    /// `$skiptoken` of the request.
    pub skiptoken: Option<&'a str>,
}

impl Ctx<'_> {
    fn base(&self) -> String {
        self.vault.base_url()
    }

    fn page<T>(&self, kind: &str, path: &str, items: &[T], render: impl Fn(&T) -> Value) -> Resp {
        let (offset, phase) = match self.skiptoken {
            None => (0, if self.vault.empty_pages { Phase::Empty } else { Phase::Full }),
            Some(t) => match decode_token(kind, t) {
                Some(x) => x,
                None => {
                    return kv_error(
                        StatusCode::BAD_REQUEST,
                        "BadParameter",
                        "The $skiptoken parameter is invalid.",
                    );
                }
            },
        };
        let link = |off: usize, ph: Phase| {
            Value::String(format!(
                "{}{}?api-version={}&$skiptoken={}&maxresults={}",
                self.base(),
                path,
                self.api,
                encode_token(kind, off, ph),
                self.max
            ))
        };
        if phase == Phase::Empty {
            return json_resp(
                StatusCode::OK,
                &json!({"value": [], "nextLink": link(offset, Phase::Full)}),
            );
        }
        let start = offset.min(items.len());
        let end = (start + self.max).min(items.len());
        let value: Vec<Value> = items[start..end].iter().map(render).collect();
        let next = if end < items.len() {
            link(end, if self.vault.empty_pages { Phase::Empty } else { Phase::Full })
        } else {
            Value::Null
        };
        json_resp(StatusCode::OK, &json!({"value": value, "nextLink": next}))
    }

    /// The `attributes` object of one version.
    pub fn attrs(&self, a: &Attrs, key: bool) -> Value {
        let mut m = Map::new();
        m.insert("enabled".into(), json!(a.enabled));
        if let Some(n) = a.nbf {
            m.insert("nbf".into(), json!(n));
        }
        if let Some(e) = a.exp {
            m.insert("exp".into(), json!(e));
        }
        m.insert("created".into(), json!(a.created));
        m.insert("updated".into(), json!(a.updated));
        m.insert("recoveryLevel".into(), json!(self.vault.recovery_level()));
        if self.vault.soft_delete {
            m.insert("recoverableDays".into(), json!(90));
        }
        if key {
            m.insert("exportable".into(), json!(false));
        }
        Value::Object(m)
    }

    /// A secret list item (current version when `version` is None).
    pub fn secret_item(&self, s: &Secret, version: Option<usize>) -> Value {
        let v = match version {
            Some(i) => &s.versions[i],
            None => &s.versions[s.versions.len() - 1],
        };
        let mut m = Map::new();
        let url = match version {
            Some(_) => format!("{}/secrets/{}/{}", self.base(), s.name, v.version),
            None => format!("{}/secrets/{}", self.base(), s.name),
        };
        m.insert("id".into(), json!(url));
        m.insert("attributes".into(), self.attrs(&v.attrs, false));
        tags_into(&mut m, &v.tags);
        if let Some(ct) = &v.content_type {
            m.insert("contentType".into(), json!(ct));
        }
        if s.managed {
            m.insert("managed".into(), json!(true));
        }
        Value::Object(m)
    }

    /// A SecretBundle of version `i`, with or without its value.
    pub fn secret_bundle(&self, s: &Secret, i: usize, with_value: bool) -> Value {
        let v = &s.versions[i];
        let mut m = Map::new();
        if with_value {
            m.insert("value".into(), json!(v.value));
        }
        if let Some(ct) = &v.content_type {
            m.insert("contentType".into(), json!(ct));
        }
        m.insert("id".into(), json!(format!("{}/secrets/{}/{}", self.base(), s.name, v.version)));
        m.insert("attributes".into(), self.attrs(&v.attrs, false));
        tags_into(&mut m, &v.tags);
        if s.managed {
            m.insert("kid".into(), json!(format!("{}/keys/{}/{}", self.base(), s.name, v.version)));
            m.insert("managed".into(), json!(true));
        }
        Value::Object(m)
    }

    fn get_secret(&self, name: &str, version: Option<&str>) -> Resp {
        let Some(s) = find(&self.vault.secrets, name, |x| &x.name) else {
            return not_found("SecretNotFound", "secret", name);
        };
        let Some(i) = version_index(&s.versions, version, |v| &v.version) else {
            return not_found(
                "SecretNotFound",
                "secret",
                &format!("{name}/{}", version.unwrap_or("")),
            );
        };
        if !s.versions[i].attrs.enabled {
            return kv_error_inner(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Operation get is not allowed on a disabled secret.",
                "SecretDisabled",
            );
        }
        json_resp(StatusCode::OK, &self.secret_bundle(s, i, true))
    }

    /// A key list item (current version when `version` is None).
    pub fn key_item(&self, k: &Key, version: Option<usize>) -> Value {
        let v = match version {
            Some(i) => &k.versions[i],
            None => &k.versions[k.versions.len() - 1],
        };
        let mut m = Map::new();
        let url = match version {
            Some(_) => format!("{}/keys/{}/{}", self.base(), k.name, v.version),
            None => format!("{}/keys/{}", self.base(), k.name),
        };
        m.insert("kid".into(), json!(url));
        m.insert("attributes".into(), self.attrs(&v.attrs, true));
        tags_into(&mut m, &v.tags);
        if k.managed {
            m.insert("managed".into(), json!(true));
        }
        Value::Object(m)
    }

    fn jwk(&self, k: &Key, v: &KeyVersion) -> Value {
        let mut m = Map::new();
        m.insert("kid".into(), json!(format!("{}/keys/{}/{}", self.base(), k.name, v.version)));
        m.insert("kty".into(), json!(v.kty));
        m.insert("key_ops".into(), json!(v.key_ops));
        match &v.jwk {
            PublicJwk::Rsa { n, e } => {
                m.insert("n".into(), json!(URL_SAFE_NO_PAD.encode(n)));
                m.insert("e".into(), json!(URL_SAFE_NO_PAD.encode(e)));
            }
            PublicJwk::Ec { crv, x, y } => {
                m.insert("crv".into(), json!(crv));
                m.insert("x".into(), json!(URL_SAFE_NO_PAD.encode(x)));
                m.insert("y".into(), json!(URL_SAFE_NO_PAD.encode(y)));
            }
        }
        Value::Object(m)
    }

    /// A KeyBundle of version `i`.
    pub fn key_bundle(&self, k: &Key, i: usize) -> Value {
        let v = &k.versions[i];
        let mut m = Map::new();
        m.insert("key".into(), self.jwk(k, v));
        m.insert("attributes".into(), self.attrs(&v.attrs, true));
        tags_into(&mut m, &v.tags);
        if k.managed {
            m.insert("managed".into(), json!(true));
        }
        Value::Object(m)
    }

    fn get_key(&self, name: &str, version: Option<&str>) -> Resp {
        let Some(k) = find(&self.vault.keys, name, |x| &x.name) else {
            return not_found("KeyNotFound", "key", name);
        };
        let Some(i) = version_index(&k.versions, version, |v| &v.version) else {
            return not_found("KeyNotFound", "key", &format!("{name}/{}", version.unwrap_or("")));
        };
        json_resp(StatusCode::OK, &self.key_bundle(k, i))
    }

    /// A key's rotation policy: the one set, or Key Vault's default (notify 30 days before
    /// expiry).
    pub fn rotation_policy(&self, k: &Key) -> Value {
        let id = format!("{}/keys/{}/rotationpolicy", self.base(), k.name);
        match &k.rotation_policy {
            Some(p) => {
                let mut p = p.clone();
                p["id"] = json!(id);
                p
            }
            None => json!({
                "id": id,
                "lifetimeActions": [{
                    "trigger": {"timeBeforeExpiry": "P30D"},
                    "action": {"type": "Notify"},
                }],
                "attributes": {},
            }),
        }
    }

    /// A certificate list item (current version when `version` is None).
    pub fn cert_item(&self, c: &Certificate, version: Option<usize>) -> Value {
        let v = match version {
            Some(i) => &c.versions[i],
            None => &c.versions[c.versions.len() - 1],
        };
        let mut m = Map::new();
        let url = match version {
            Some(_) => format!("{}/certificates/{}/{}", self.base(), c.name, v.version),
            None => format!("{}/certificates/{}", self.base(), c.name),
        };
        m.insert("id".into(), json!(url));
        m.insert("x5t".into(), json!(crate::certs::x5t(&v.der)));
        m.insert("attributes".into(), self.attrs(&v.attrs, false));
        tags_into(&mut m, &v.tags);
        m.insert("subject".into(), json!(""));
        Value::Object(m)
    }

    /// A certificate's policy.
    pub fn policy_json(&self, c: &Certificate) -> Value {
        let p: &CertPolicy = &c.policy;
        let mut key_props = Map::new();
        key_props.insert("exportable".into(), json!(p.exportable));
        key_props.insert("kty".into(), json!(p.kty));
        if let Some(s) = p.key_size {
            key_props.insert("key_size".into(), json!(s));
        }
        if let Some(crv) = &p.crv {
            key_props.insert("crv".into(), json!(crv));
        }
        key_props.insert("reuse_key".into(), json!(p.reuse_key));
        let mut x509 = Map::new();
        x509.insert("subject".into(), json!(p.subject));
        if !p.sans.is_empty() {
            x509.insert("sans".into(), json!({"dns_names": p.sans}));
        }
        x509.insert("ekus".into(), json!(p.ekus));
        x509.insert("key_usage".into(), json!(p.key_usage));
        x509.insert("validity_months".into(), json!(p.validity_months));
        let trigger = if p.action == "AutoRenew" {
            json!({"lifetime_percentage": 80})
        } else {
            json!({"days_before_expiry": 30})
        };
        json!({
            "id": format!("{}/certificates/{}/policy", self.base(), c.name),
            "key_props": Value::Object(key_props),
            "secret_props": {"contentType": p.content_type},
            "x509_props": Value::Object(x509),
            "lifetime_actions": [{"trigger": trigger, "action": {"action_type": p.action}}],
            "issuer": {"name": p.issuer},
            "attributes": {"enabled": true, "created": p.created, "updated": p.created},
        })
    }

    /// A CertificateBundle of version `i`.
    pub fn cert_bundle(&self, c: &Certificate, i: usize) -> Value {
        let v = &c.versions[i];
        let b = self.base();
        let mut m = Map::new();
        m.insert("id".into(), json!(format!("{b}/certificates/{}/{}", c.name, v.version)));
        m.insert("kid".into(), json!(format!("{b}/keys/{}/{}", c.name, v.version)));
        m.insert("sid".into(), json!(format!("{b}/secrets/{}/{}", c.name, v.version)));
        m.insert("x5t".into(), json!(crate::certs::x5t(&v.der)));
        m.insert("cer".into(), json!(STANDARD.encode(&v.der)));
        m.insert("attributes".into(), self.attrs(&v.attrs, false));
        m.insert("policy".into(), self.policy_json(c));
        tags_into(&mut m, &v.tags);
        Value::Object(m)
    }

    fn get_cert(&self, name: &str, version: Option<&str>) -> Resp {
        let Some(c) = find(&self.vault.certificates, name, |x| &x.name) else {
            return not_found("CertificateNotFound", "certificate", name);
        };
        let Some(i) = version_index(&c.versions, version, |v| &v.version) else {
            return not_found(
                "CertificateNotFound",
                "certificate",
                &format!("{name}/{}", version.unwrap_or("")),
            );
        };
        json_resp(StatusCode::OK, &self.cert_bundle(c, i))
    }

    /// Adds the deleted-item fields (`recoveryId`, `deletedDate`, `scheduledPurgeDate`) to an
    /// item or bundle; without soft delete there is nothing to recover and they are left out.
    pub fn deleted(&self, mut item: Value, name: &str, collection: &str, deleted: i64) -> Value {
        if self.vault.soft_delete {
            item["recoveryId"] = json!(format!("{}/{collection}/{name}", self.base()));
            item["deletedDate"] = json!(deleted);
            item["scheduledPurgeDate"] = json!(deleted + 90 * crate::state::DAY);
        }
        item
    }
}

/// The index of the requested version (the last one when `version` is None or empty).
pub fn version_index<T>(
    versions: &[T],
    version: Option<&str>,
    id: impl Fn(&T) -> &String,
) -> Option<usize> {
    match version {
        None | Some("") => versions.len().checked_sub(1),
        Some(ver) => versions.iter().position(|v| id(v).eq_ignore_ascii_case(ver)),
    }
}

/// Adds `tags` to a JSON object unless empty.
pub fn tags_into(m: &mut Map<String, Value>, tags: &BTreeMap<String, String>) {
    if !tags.is_empty() {
        m.insert("tags".into(), json!(tags));
    }
}
