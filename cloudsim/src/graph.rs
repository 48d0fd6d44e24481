//! Microsoft Graph on the main port (`/v1.0/...` and `/beta/...`): applications and service
//! principals with their `passwordCredentials` and `keyCredentials`, `addPassword` /
//! `removePassword`, the organization, and B2C `trustFramework/keySets`. Lists page with
//! `$top` and an absolute `@odata.nextLink`; `$filter` understands `appId eq '…'` and
//! `displayName eq '…'`. Errors use Graph's shape (`error.code`, `error.message`,
//! `error.innerError` with `date`, `request-id`, `client-request-id`).
//!
//! Data is scoped to the tenant of the caller's token, so a token of a B2C tenant sees that
//! tenant's apps and key sets.

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use crate::directory::{App, KeyCredential, PasswordCredential, Tenant};
use crate::http::{Resp, guid, json as json_resp, now, set_header};
use crate::state::{DAY, Sim};
use crate::token::TokenError;

/// Audiences Graph accepts.
pub const GRAPH_AUDIENCES: &[&str] = &[
    "https://graph.microsoft.com",
    "https://graph.microsoft.com/",
    "00000003-0000-0000-c000-000000000000",
];

/// Graph's default page size for directory objects.
const DEFAULT_TOP: usize = 100;

/// Formats Unix seconds as Graph does (`2024-01-31T12:00:00Z`).
pub fn graph_time(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// True when the first segment is a Graph version (`v1.0` or `beta`).
pub fn is_graph_path(segs: &[String]) -> bool {
    segs.first().is_some_and(|s| s == "v1.0" || s == "beta")
}

struct Ctx<'a> {
    base: String,
    version: &'a str,
    client_request_id: String,
    request_id: String,
}

impl Ctx<'_> {
    fn error(&self, status: StatusCode, code: &str, message: &str) -> Resp {
        let date = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string();
        json_resp(
            status,
            &json!({"error": {
                "code": code,
                "message": message,
                "innerError": {
                    "date": date,
                    "request-id": self.request_id,
                    "client-request-id": self.client_request_id,
                },
            }}),
        )
    }

    fn not_found(&self, id: &str) -> Resp {
        self.error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!(
                "Resource '{id}' does not exist or one of its queried reference-property objects \
                 are not present."
            ),
        )
    }

    fn context(&self, what: &str) -> String {
        format!("https://graph.microsoft.com/{}/$metadata#{what}", self.version)
    }
}

/// Handles a Graph request; `segs` must satisfy [`is_graph_path`].
pub fn handle(
    sim: &Sim,
    method: &Method,
    segs: &[String],
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Resp {
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(guid);
    let ctx = Ctx {
        base: sim.main_url(),
        version: segs.first().map(String::as_str).unwrap_or("v1.0"),
        client_request_id: client_request_id.clone(),
        request_id: guid(),
    };
    let mut resp = route(sim, &ctx, method, &segs[1..], query, headers, body);
    set_header(&mut resp, "request-id", &ctx.request_id);
    set_header(&mut resp, "client-request-id", &client_request_id);
    set_header(
        &mut resp,
        "x-ms-ags-diagnostic",
        concat!(
            r#"{"ServerInfo":{"DataCenter":"West Europe","Slice":"E","Ring":"5","#,
            r#""ScaleUnit":"000","RoleInstance":"cloudsim"}}"#
        ),
    );
    set_header(&mut resp, "odata-version", "4.0");
    set_header(&mut resp, "cache-control", "no-cache");
    if resp.status() != StatusCode::NO_CONTENT {
        set_header(
            &mut resp,
            "content-type",
            "application/json;odata.metadata=minimal;odata.streaming=true;\
             IEEE754Compatible=false;charset=utf-8",
        );
    }
    resp
}

fn authenticate(sim: &Sim, ctx: &Ctx<'_>, headers: &HeaderMap) -> Result<String, Box<Resp>> {
    let unauthorized = |m: &str| {
        let mut r = ctx.error(StatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", m);
        set_header(
            &mut r,
            "www-authenticate",
            &format!(
                "Bearer realm=\"\", authorization_uri=\"{}/common/oauth2/authorize\", \
                 client_id=\"00000003-0000-0000-c000-000000000000\"",
                ctx.base
            ),
        );
        Box::new(r)
    };
    let Some(token) = crate::http::bearer(headers) else {
        return Err(unauthorized("Access token is empty."));
    };
    match sim.validate_any_tenant(&token, GRAPH_AUDIENCES) {
        Ok(c) => Ok(c.tid),
        Err(TokenError::Expired { .. }) => {
            Err(unauthorized("Lifetime validation failed, the token is expired."))
        }
        Err(TokenError::Audience { .. }) => {
            Err(unauthorized("Access token validation failure. Invalid audience."))
        }
        Err(TokenError::Issuer { .. }) => {
            Err(unauthorized("Access token validation failure. Invalid issuer."))
        }
        Err(TokenError::BadSignature | TokenError::NotYetValid) => {
            Err(unauthorized("Access token validation failure."))
        }
    }
}

fn route(
    sim: &Sim,
    ctx: &Ctx<'_>,
    method: &Method,
    rest: &[String],
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Resp {
    let tid = match authenticate(sim, ctx, headers) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let q = crate::http::parse_query(Some(query));
    let r: Vec<&str> = rest.iter().map(String::as_str).collect();
    let by_app_id = |seg: &str| {
        seg.strip_prefix("applications(appId='")
            .and_then(|x| x.strip_suffix("')"))
            .map(str::to_string)
    };
    match (method.as_str(), r.as_slice()) {
        ("GET", ["organization"]) => {
            let w = sim.read();
            let Some(t) = w.tenant(&tid) else {
                return ctx.not_found(&tid);
            };
            json_resp(
                StatusCode::OK,
                &json!({
                    "@odata.context": ctx.context("organization"),
                    "value": [{
                        "id": t.id,
                        "displayName": t.display_name,
                        "tenantType": if t.b2c { "AAD B2C" } else { "AAD" },
                        "verifiedDomains": [{
                            "name": t.domain, "isDefault": true, "isInitial": true,
                            "type": "Managed", "capabilities": "Email, OfficeCommunicationsOnline",
                        }],
                    }],
                }),
            )
        }
        ("GET", ["applications"]) => list(sim, ctx, &tid, &q, Kind::Applications),
        ("GET", ["servicePrincipals"]) => list(sim, ctx, &tid, &q, Kind::ServicePrincipals),
        ("GET", [one]) if by_app_id(one).is_some() => {
            let app_id = by_app_id(one).unwrap_or_default();
            get_app(sim, ctx, &tid, &q, |a| a.app_id.eq_ignore_ascii_case(&app_id), one)
        }
        ("GET", ["applications", id]) => {
            get_app(sim, ctx, &tid, &q, |a| a.object_id.eq_ignore_ascii_case(id), id)
        }
        ("GET", ["servicePrincipals", id]) => {
            let w = sim.read();
            let Some(t) = w.tenant(&tid) else {
                return ctx.not_found(id);
            };
            match t.apps.iter().find(|a| a.sp_object_id.eq_ignore_ascii_case(id)) {
                Some(a) => {
                    let mut v = select(service_principal_json(t, a), &q);
                    v["@odata.context"] = json!(ctx.context("servicePrincipals/$entity"));
                    json_resp(StatusCode::OK, &v)
                }
                None => ctx.not_found(id),
            }
        }
        ("POST", ["applications", id, "addPassword"]) => add_password(sim, ctx, &tid, id, body),
        ("POST", ["applications", id, "removePassword"]) => {
            remove_password(sim, ctx, &tid, id, body)
        }
        ("GET", ["trustFramework", "keySets"]) => key_sets(sim, ctx, &tid, None),
        ("GET", ["trustFramework", "keySets", id]) => key_sets(sim, ctx, &tid, Some(id)),
        (m, _) if m != "GET" && m != "POST" => ctx.error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target.",
        ),
        _ => ctx.error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            &format!(
                "Resource not found for the segment '{}'.",
                rest.first().map(String::as_str).unwrap_or("")
            ),
        ),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Applications,
    ServicePrincipals,
}

fn password_json(p: &PasswordCredential, secret_text: bool) -> Value {
    json!({
        "customKeyIdentifier": null,
        "displayName": p.display_name,
        "endDateTime": graph_time(p.end),
        "hint": p.hint(),
        "keyId": p.key_id,
        "secretText": if secret_text { json!(p.secret) } else { Value::Null },
        "startDateTime": graph_time(p.start),
    })
}

fn key_json(k: &KeyCredential) -> Value {
    json!({
        "customKeyIdentifier": k.thumbprint_hex(),
        "displayName": k.display_name,
        "endDateTime": graph_time(k.end),
        "key": null,
        "keyId": k.key_id,
        "startDateTime": graph_time(k.start),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    })
}

fn application_json(t: &Tenant, a: &App) -> Value {
    json!({
        "id": a.object_id,
        "deletedDateTime": null,
        "appId": a.app_id,
        "createdDateTime": graph_time(a.created),
        "description": null,
        "displayName": a.display_name,
        "identifierUris": [],
        "publisherDomain": t.domain,
        "signInAudience": "AzureADMyOrg",
        "tags": [],
        "keyCredentials": a.keys.iter().map(key_json).collect::<Vec<_>>(),
        "passwordCredentials": a.passwords.iter().map(|p| password_json(p, false))
            .collect::<Vec<_>>(),
        "requiredResourceAccess": [],
    })
}

fn service_principal_json(t: &Tenant, a: &App) -> Value {
    json!({
        "id": a.sp_object_id,
        "deletedDateTime": null,
        "accountEnabled": true,
        "appDisplayName": a.display_name,
        "appId": a.app_id,
        "appOwnerOrganizationId": t.id,
        "appRoles": [],
        "displayName": a.display_name,
        "servicePrincipalNames": [a.app_id],
        "servicePrincipalType": "Application",
        "signInAudience": "AzureADMyOrg",
        "tags": [],
        "keyCredentials": [],
        "passwordCredentials": [],
    })
}

/// Keeps only the `$select`ed properties (and `id`), as Graph does.
fn select(v: Value, q: &std::collections::BTreeMap<String, String>) -> Value {
    let Some(sel) = q.get("$select") else {
        return v;
    };
    let wanted: Vec<&str> = sel.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let Value::Object(m) = v else {
        return v;
    };
    let out: Map<String, Value> = m
        .into_iter()
        .filter(|(k, _)| k == "id" || wanted.iter().any(|w| w.eq_ignore_ascii_case(k)))
        .collect();
    Value::Object(out)
}

/// Parses the `$filter`s Graph clients use to find one app: `appId eq '…'` and
/// `displayName eq '…'` (joined by `and`). Anything else is refused as Graph refuses
/// unsupported clauses.
fn parse_filter(filter: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for clause in filter.split(" and ") {
        let clause = clause.trim();
        let Some((field, value)) = clause.split_once(" eq ") else {
            return Err(format!("Invalid filter clause: '{clause}'."));
        };
        let field = field.trim();
        if !["appId", "displayName", "id"].iter().any(|f| f.eq_ignore_ascii_case(field)) {
            return Err(format!(
                "Unsupported or invalid query filter clause specified for property '{field}' of \
                 resource 'Application'."
            ));
        }
        let value = value.trim();
        let Some(v) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) else {
            return Err(format!("Invalid filter clause: '{clause}'."));
        };
        out.push((field.to_lowercase(), v.replace("''", "'")));
    }
    Ok(out)
}

fn list(
    sim: &Sim,
    ctx: &Ctx<'_>,
    tid: &str,
    q: &std::collections::BTreeMap<String, String>,
    kind: Kind,
) -> Resp {
    let top = match q.get("$top").map(|t| t.parse::<usize>()) {
        None => DEFAULT_TOP,
        Some(Ok(t)) if (1..=999).contains(&t) => t,
        Some(_) => {
            return ctx.error(
                StatusCode::BAD_REQUEST,
                "Request_UnsupportedQuery",
                "Invalid page size specified: '$top' must be between 1 and 999.",
            );
        }
    };
    let filters = match q.get("$filter").map(|f| parse_filter(f)) {
        None => Vec::new(),
        Some(Ok(f)) => f,
        Some(Err(m)) => return ctx.error(StatusCode::BAD_REQUEST, "Request_UnsupportedQuery", &m),
    };
    let start = match q.get("$skiptoken") {
        None => 0,
        Some(tok) => match URL_SAFE_NO_PAD
            .decode(tok)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("graph:").and_then(|n| n.parse::<usize>().ok()))
        {
            Some(n) => n,
            None => {
                return ctx.error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "The specified page token value has expired and can no longer be included \
                     in your request.",
                );
            }
        },
    };
    let w = sim.read();
    let Some(t) = w.tenant(tid) else {
        return ctx.not_found(tid);
    };
    let matching: Vec<&App> = t
        .apps
        .iter()
        .filter(|a| {
            filters.iter().all(|(f, v)| match f.as_str() {
                "appid" => a.app_id.eq_ignore_ascii_case(v),
                "displayname" => a.display_name == *v,
                _ => match kind {
                    Kind::Applications => a.object_id.eq_ignore_ascii_case(v),
                    Kind::ServicePrincipals => a.sp_object_id.eq_ignore_ascii_case(v),
                },
            })
        })
        .collect();
    let end = (start + top).min(matching.len());
    let value: Vec<Value> = matching
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .map(|a| {
            let v = match kind {
                Kind::Applications => application_json(t, a),
                Kind::ServicePrincipals => service_principal_json(t, a),
            };
            select(v, q)
        })
        .collect();
    let name = match kind {
        Kind::Applications => "applications",
        Kind::ServicePrincipals => "servicePrincipals",
    };
    let mut body = json!({"@odata.context": ctx.context(name), "value": value});
    if end < matching.len() {
        let mut link = format!(
            "{}/{}/{name}?$top={top}&$skiptoken={}",
            ctx.base,
            ctx.version,
            URL_SAFE_NO_PAD.encode(format!("graph:{end}"))
        );
        for key in ["$filter", "$select"] {
            if let Some(v) = q.get(key) {
                let enc: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
                link.push_str(&format!("&{key}={enc}"));
            }
        }
        body["@odata.nextLink"] = json!(link);
    }
    json_resp(StatusCode::OK, &body)
}

fn get_app(
    sim: &Sim,
    ctx: &Ctx<'_>,
    tid: &str,
    q: &std::collections::BTreeMap<String, String>,
    pick: impl Fn(&App) -> bool,
    id: &str,
) -> Resp {
    let w = sim.read();
    let Some(t) = w.tenant(tid) else {
        return ctx.not_found(id);
    };
    match t.apps.iter().find(|a| pick(a)) {
        Some(a) => {
            let mut v = select(application_json(t, a), q);
            v["@odata.context"] = json!(ctx.context("applications/$entity"));
            json_resp(StatusCode::OK, &v)
        }
        None => ctx.not_found(id),
    }
}

fn parse_time(v: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.as_str()?).ok().map(|d| d.timestamp())
}

fn app_index(sim: &Sim, tid: &str, object_id: &str) -> Option<(usize, usize)> {
    let w = sim.read();
    let ti = w.tenants.iter().position(|t| t.id == tid)?;
    let ai = w.tenants[ti].apps.iter().position(|a| a.object_id.eq_ignore_ascii_case(object_id))?;
    Some((ti, ai))
}

/// `POST /applications/{id}/addPassword`: a new secret that works at once for the
/// client-credentials grant; `secretText` is returned only here.
fn add_password(sim: &Sim, ctx: &Ctx<'_>, tid: &str, id: &str, body: &[u8]) -> Resp {
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => {
                return ctx.error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "Unable to read JSON request payload. Please ensure Content-Type header is \
                     set and payload is of valid JSON format.",
                );
            }
        }
    };
    let spec = req.get("passwordCredential").cloned().unwrap_or_else(|| json!({}));
    let t = now();
    let start = spec.get("startDateTime").and_then(parse_time).unwrap_or(t);
    let end = spec.get("endDateTime").and_then(parse_time).unwrap_or(start + 730 * DAY);
    if end <= start {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Invalid value specified for property 'endDateTime' of resource \
             'PasswordCredential'.",
        );
    }
    let cred = PasswordCredential {
        key_id: guid(),
        display_name: spec.get("displayName").and_then(Value::as_str).map(str::to_string),
        secret: crate::directory::new_secret(),
        start,
        end,
        forced_expired: false,
    };
    let Some((ti, ai)) = app_index(sim, tid, id) else {
        return ctx.not_found(id);
    };
    let mut out = password_json(&cred, true);
    out["@odata.context"] = json!(ctx.context("microsoft.graph.passwordCredential"));
    sim.write().tenants[ti].apps[ai].passwords.push(cred);
    json_resp(StatusCode::OK, &out)
}

/// `POST /applications/{id}/removePassword`: the secret stops working at once (204).
fn remove_password(sim: &Sim, ctx: &Ctx<'_>, tid: &str, id: &str, body: &[u8]) -> Resp {
    let key_id = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("keyId").and_then(Value::as_str).map(str::to_string));
    let Some(key_id) = key_id else {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            "Missing required parameter 'keyId'.",
        );
    };
    let Some((ti, ai)) = app_index(sim, tid, id) else {
        return ctx.not_found(id);
    };
    let mut w = sim.write();
    let passwords = &mut w.tenants[ti].apps[ai].passwords;
    let before = passwords.len();
    passwords.retain(|p| !p.key_id.eq_ignore_ascii_case(&key_id));
    if passwords.len() == before {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "Request_BadRequest",
            &format!("No password credential with keyId '{key_id}' was found on the application."),
        );
    }
    let mut r = Resp::new(axum::body::Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    r
}

fn key_sets(sim: &Sim, ctx: &Ctx<'_>, tid: &str, id: Option<&str>) -> Resp {
    let w = sim.read();
    let Some(t) = w.tenant(tid) else {
        return ctx.not_found(tid);
    };
    if !t.b2c {
        return ctx.error(
            StatusCode::BAD_REQUEST,
            "AADB2C",
            "The tenant is not an Azure AD B2C tenant: trustFramework is not available.",
        );
    }
    let render = |s: &crate::directory::KeySet| {
        json!({
            "id": s.id,
            "keys": s.keys.iter().map(|k| json!({
                "k": null, "x5c": [], "x5t": null, "kty": k.kty, "use": k.use_,
                "exp": k.exp, "nbf": k.nbf, "kid": k.kid, "e": k.e, "n": k.n,
                "d": null, "p": null, "q": null, "dp": null, "dq": null, "qi": null,
            })).collect::<Vec<_>>(),
        })
    };
    match id {
        None => json_resp(
            StatusCode::OK,
            &json!({
                "@odata.context": ctx.context("trustFramework/keySets"),
                "value": t.key_sets.iter().map(render).collect::<Vec<_>>(),
            }),
        ),
        Some(id) => match t.key_sets.iter().find(|s| s.id.eq_ignore_ascii_case(id)) {
            Some(s) => {
                let mut v = render(s);
                v["@odata.context"] = json!(ctx.context("trustFramework/keySets/$entity"));
                json_resp(StatusCode::OK, &v)
            }
            None => ctx.not_found(id),
        },
    }
}

/// The response for an injected fault on Graph.
pub fn fault_response(f: &crate::faults::Fault) -> Resp {
    let code = f.status.unwrap_or(500);
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ctx =
        Ctx { base: String::new(), version: "v1.0", client_request_id: guid(), request_id: guid() };
    let (c, m) = match code {
        429 => ("TooManyRequests", "Too many requests."),
        503 => ("serviceNotAvailable", "Service unavailable."),
        _ => ("generalException", "An injected fault."),
    };
    let mut r = ctx.error(status, c, m);
    if let Some(s) = f.retry_after {
        set_header(&mut r, "retry-after", &s.to_string());
    }
    r
}
