//! Key Vault data plane, one listener per vault: secrets, keys and certificates (list, list
//! versions, get, policy) in the service's real wire format, with the bearer challenge,
//! api-version checks, the firewall (publicNetworkAccess Disabled), absolute `nextLink`
//! paging (optionally interleaving empty pages) and Key Vault-shaped errors.

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

/// Whether an api-version is one Key Vault accepts (7.0-7.6, 7.6-preview.*, 2025-07-01).
pub fn api_version_ok(v: &str) -> bool {
    matches!(
        v,
        "7.0" | "7.1" | "7.2" | "7.3" | "7.4" | "7.5" | "7.6" | "2025-07-01" | "2016-10-01"
    ) || v.starts_with("7.6-preview.")
        || v.starts_with("7.5-preview.")
}

/// Builds a Key Vault error body.
pub fn kv_error(status: StatusCode, code: &str, message: &str) -> Resp {
    json_resp(
        status,
        &json!({"error": {"code": code, "message": message}}),
    )
}

fn kv_error_inner(status: StatusCode, code: &str, message: &str, inner: &str) -> Resp {
    json_resp(
        status,
        &json!({"error": {"code": code, "message": message, "innererror": {"code": inner}}}),
    )
}

/// The response for an injected fault on a vault.
pub fn fault_response(f: &Fault) -> Resp {
    let status = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = match f.status {
        429 => kv_error(
            status,
            "Throttled",
            "Request was not processed because too many requests were received. Reason: \
             VaultRequestTypeLimitReached",
        ),
        401 => kv_error(
            status,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
        ),
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
        502 => kv_error(
            status,
            "BadGateway",
            "The service received an invalid response upstream.",
        ),
        503 => kv_error(
            status,
            "ServiceUnavailable",
            "The service is temporarily unavailable. Please retry the request.",
        ),
        504 => kv_error(status, "GatewayTimeout", "The operation timed out."),
        _ => kv_error(
            status,
            "Error",
            &format!("Injected fault with status {}.", f.status),
        ),
    };
    if let Some(s) = f.retry_after {
        set_header(&mut r, "retry-after", &s.to_string());
    }
    r
}

/// Adds the headers Key Vault puts on every response.
pub fn kv_headers(resp: &mut Resp, vault: &Vault, headers: &HeaderMap) {
    set_header(resp, "x-ms-request-id", &guid());
    if let Some(id) = headers
        .get("x-ms-client-request-id")
        .and_then(|v| v.to_str().ok())
    {
        set_header(resp, "x-ms-client-request-id", id);
    }
    set_header(resp, "x-ms-keyvault-service-version", SERVICE_VERSION);
    let fam = if vault.addr.is_ipv6() { "Ipv6" } else { "Ipv4" };
    let act = if vault.addr.is_ipv6() {
        "InterNetworkV6"
    } else {
        "InterNetwork"
    };
    set_header(
        resp,
        "x-ms-keyvault-network-info",
        &format!(
            "conn_type={fam};addr={};act_addr_fam={act};",
            vault.addr.ip()
        ),
    );
    set_header(resp, "x-ms-keyvault-region", &vault.location);
    set_header(resp, "content-type", crate::http::JSON_UTF8);
    set_header(resp, "cache-control", "no-cache");
    set_header(resp, "pragma", "no-cache");
    set_header(resp, "expires", "-1");
    set_header(resp, "x-content-type-options", "nosniff");
    set_header(
        resp,
        "strict-transport-security",
        "max-age=31536000;includeSubDomains",
    );
}

fn challenge(sim: &Sim) -> String {
    format!(
        "Bearer authorization=\"{}/{}\", resource=\"https://vault.azure.net\"",
        sim.main_url(),
        sim.tenant_id
    )
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
) -> Resp {
    let Some(vault) = sim.vaults.get(vi) else {
        return kv_error(StatusCode::NOT_FOUND, "NotFound", "No such vault.");
    };
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
                 supported version (2025-07-01)."
            ),
        );
    }
    if !vault.reachable() {
        return kv_error_inner(
            StatusCode::FORBIDDEN,
            "Forbidden",
            &format!(
                "Client address is not authorized and caller is not a trusted service.\r\n\
                 Client address: {}\r\nCaller: appid={};oid={};iss={}\r\nVault: {};location={}",
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
    if method != Method::GET {
        return kv_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "cloudsim's Key Vault is read-only: only GET is supported.",
        );
    }
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
    let ctx = Ctx {
        vault,
        api: &api,
        max,
        skiptoken: q.get("$skiptoken").map(String::as_str),
    };
    let segs = crate::http::segments(path);
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    match s.as_slice() {
        ["secrets"] => ctx.page("secrets", "/secrets", &vault.secrets, |x| {
            ctx.secret_item(x, None)
        }),
        ["secrets", name, "versions"] => match find(&vault.secrets, name, |x| &x.name) {
            Some(x) => {
                let items: Vec<usize> = (0..x.versions.len()).collect();
                ctx.page(
                    "secretversions",
                    &format!("/secrets/{}/versions", x.name),
                    &items,
                    |i| ctx.secret_item(x, Some(*i)),
                )
            }
            None => not_found("SecretNotFound", "secret", name),
        },
        ["secrets", name] | ["secrets", name, ""] => ctx.get_secret(name, None),
        ["secrets", name, version] => ctx.get_secret(name, Some(version)),
        ["keys"] => ctx.page("keys", "/keys", &vault.keys, |x| ctx.key_item(x, None)),
        ["keys", name, "versions"] => match find(&vault.keys, name, |x| &x.name) {
            Some(x) => {
                let items: Vec<usize> = (0..x.versions.len()).collect();
                ctx.page(
                    "keyversions",
                    &format!("/keys/{}/versions", x.name),
                    &items,
                    |i| ctx.key_item(x, Some(*i)),
                )
            }
            None => not_found("KeyNotFound", "key", name),
        },
        ["keys", name] => ctx.get_key(name, None),
        ["keys", name, version] => ctx.get_key(name, Some(version)),
        ["certificates"] => ctx.page("certificates", "/certificates", &vault.certificates, |x| {
            ctx.cert_item(x, None)
        }),
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
        ["certificates", name, version] => ctx.get_cert(name, Some(version)),
        ["deletedsecrets"] | ["deletedkeys"] | ["deletedcertificates"] => {
            json_resp(StatusCode::OK, &json!({"value": [], "nextLink": null}))
        }
        _ => kv_error(
            StatusCode::NOT_FOUND,
            "BadParameter",
            &format!("The request URI {path} is not valid for this service."),
        ),
    }
}

fn find<'a, T>(items: &'a [T], name: &str, key: impl Fn(&T) -> &String) -> Option<&'a T> {
    items.iter().find(|x| key(x).eq_ignore_ascii_case(name))
}

fn not_found(code: &str, kind: &str, id: &str) -> Resp {
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
        .encode(format!(
            "{offset:06}!{kind}/{p}!000028!9999-12-31T23:59:59.9999999Z!"
        ))
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

struct Ctx<'a> {
    vault: &'a Vault,
    api: &'a str,
    max: usize,
    skiptoken: Option<&'a str>,
}

impl Ctx<'_> {
    fn base(&self) -> String {
        self.vault.base_url()
    }

    fn page<T>(&self, kind: &str, path: &str, items: &[T], render: impl Fn(&T) -> Value) -> Resp {
        let (offset, phase) = match self.skiptoken {
            None => (
                0,
                if self.vault.empty_pages {
                    Phase::Empty
                } else {
                    Phase::Full
                },
            ),
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
            link(
                end,
                if self.vault.empty_pages {
                    Phase::Empty
                } else {
                    Phase::Full
                },
            )
        } else {
            Value::Null
        };
        json_resp(StatusCode::OK, &json!({"value": value, "nextLink": next}))
    }

    fn attrs(&self, a: &Attrs, key: bool) -> Value {
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

    fn secret_item(&self, s: &Secret, version: Option<usize>) -> Value {
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

    fn get_secret(&self, name: &str, version: Option<&str>) -> Resp {
        let Some(s) = find(&self.vault.secrets, name, |x| &x.name) else {
            return not_found("SecretNotFound", "secret", name);
        };
        let v = match version {
            None => s.versions.last(),
            Some(ver) => s
                .versions
                .iter()
                .find(|v| v.version.eq_ignore_ascii_case(ver)),
        };
        let Some(v) = v else {
            return not_found(
                "SecretNotFound",
                "secret",
                &format!("{name}/{}", version.unwrap_or("")),
            );
        };
        if !v.attrs.enabled {
            return kv_error_inner(
                StatusCode::FORBIDDEN,
                "Forbidden",
                "Operation get is not allowed on a disabled secret.",
                "SecretDisabled",
            );
        }
        let mut m = Map::new();
        m.insert("value".into(), json!(v.value));
        if let Some(ct) = &v.content_type {
            m.insert("contentType".into(), json!(ct));
        }
        m.insert(
            "id".into(),
            json!(format!("{}/secrets/{}/{}", self.base(), s.name, v.version)),
        );
        m.insert("attributes".into(), self.attrs(&v.attrs, false));
        tags_into(&mut m, &v.tags);
        if s.managed {
            m.insert(
                "kid".into(),
                json!(format!("{}/keys/{}/{}", self.base(), s.name, v.version)),
            );
            m.insert("managed".into(), json!(true));
        }
        json_resp(StatusCode::OK, &Value::Object(m))
    }

    fn key_item(&self, k: &Key, version: Option<usize>) -> Value {
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
        m.insert(
            "kid".into(),
            json!(format!("{}/keys/{}/{}", self.base(), k.name, v.version)),
        );
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

    fn get_key(&self, name: &str, version: Option<&str>) -> Resp {
        let Some(k) = find(&self.vault.keys, name, |x| &x.name) else {
            return not_found("KeyNotFound", "key", name);
        };
        let v = match version {
            None => k.versions.last(),
            Some(ver) => k
                .versions
                .iter()
                .find(|v| v.version.eq_ignore_ascii_case(ver)),
        };
        let Some(v) = v else {
            return not_found(
                "KeyNotFound",
                "key",
                &format!("{name}/{}", version.unwrap_or("")),
            );
        };
        let mut m = Map::new();
        m.insert("key".into(), self.jwk(k, v));
        m.insert("attributes".into(), self.attrs(&v.attrs, true));
        tags_into(&mut m, &v.tags);
        if k.managed {
            m.insert("managed".into(), json!(true));
        }
        json_resp(StatusCode::OK, &Value::Object(m))
    }

    fn cert_item(&self, c: &Certificate, version: Option<usize>) -> Value {
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

    fn policy_json(&self, c: &Certificate) -> Value {
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

    fn get_cert(&self, name: &str, version: Option<&str>) -> Resp {
        let Some(c) = find(&self.vault.certificates, name, |x| &x.name) else {
            return not_found("CertificateNotFound", "certificate", name);
        };
        let v = match version {
            None => c.versions.last(),
            Some(ver) => c
                .versions
                .iter()
                .find(|v| v.version.eq_ignore_ascii_case(ver)),
        };
        let Some(v) = v else {
            return not_found(
                "CertificateNotFound",
                "certificate",
                &format!("{name}/{}", version.unwrap_or("")),
            );
        };
        let b = self.base();
        let mut m = Map::new();
        m.insert(
            "id".into(),
            json!(format!("{b}/certificates/{}/{}", c.name, v.version)),
        );
        m.insert(
            "kid".into(),
            json!(format!("{b}/keys/{}/{}", c.name, v.version)),
        );
        m.insert(
            "sid".into(),
            json!(format!("{b}/secrets/{}/{}", c.name, v.version)),
        );
        m.insert("x5t".into(), json!(crate::certs::x5t(&v.der)));
        m.insert("cer".into(), json!(STANDARD.encode(&v.der)));
        m.insert("attributes".into(), self.attrs(&v.attrs, false));
        m.insert("policy".into(), self.policy_json(c));
        tags_into(&mut m, &v.tags);
        json_resp(StatusCode::OK, &Value::Object(m))
    }
}

fn tags_into(m: &mut Map<String, Value>, tags: &BTreeMap<String, String>) {
    if !tags.is_empty() {
        m.insert("tags".into(), json!(tags));
    }
}
