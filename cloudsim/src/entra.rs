//! Entra ID (Azure AD) endpoints on the main port: the v2.0 (and v1) token endpoint for the
//! client-credentials grant, OpenID discovery documents, the JWKS, and MSAL's instance
//! discovery. Errors follow Entra's JSON shape (`error`, `error_description` with an AADSTS
//! code, `error_codes`, `trace_id`, `correlation_id`, `timestamp`, `error_uri`).

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use crate::http::{Resp, guid, json as json_resp, now, set_header};
use crate::state::Sim;
use crate::token::{Claims, TOKEN_LIFETIME};

/// Resources for which tokens can be requested (compared case-insensitively, with or without
/// a trailing slash).
const RESOURCES: &[&str] = &[
    "https://vault.azure.net",
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://graph.microsoft.com",
    "https://storage.azure.com",
    crate::devops::DEVOPS_RESOURCE,
    "00000003-0000-0000-c000-000000000000",
];

/// True when `segs` is an Entra path (`/{tenant}/oauth2/...`, discovery, keys).
pub fn is_entra_path(segs: &[String]) -> bool {
    match segs {
        [_, a, ..] if a == "oauth2" || a == "discovery" || a == "v2.0" => true,
        [_, a, ..] if a == ".well-known" => true,
        [e] if e == "error" => true,
        _ => false,
    }
}

/// True when the path is the token endpoint (the `token` fault/counter target).
pub fn is_token_path(segs: &[String]) -> bool {
    matches!(segs, [_, o, rest @ ..] if o == "oauth2" && rest.last().is_some_and(|l| l == "token"))
}

fn timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// Builds an Entra-shaped error response.
pub fn entra_error(
    sim: &Sim,
    headers: &HeaderMap,
    status: StatusCode,
    error: &str,
    code: u32,
    text: &str,
) -> Resp {
    let trace = guid();
    let correlation = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(guid);
    let ts = timestamp();
    let body = json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {ts}"
        ),
        "error_codes": [code],
        "timestamp": ts,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": format!("{}/error?code={code}", sim.main_url()),
    });
    let mut resp = json_resp(status, &body);
    entra_headers(&mut resp, headers, &trace);
    resp
}

fn entra_headers(resp: &mut Resp, headers: &HeaderMap, trace: &str) {
    set_header(resp, "cache-control", "no-store, no-cache");
    set_header(resp, "pragma", "no-cache");
    set_header(resp, "x-ms-request-id", trace);
    set_header(resp, "x-ms-ests-server", "2.1.cloudsim");
    if let Some(id) = headers.get("client-request-id").and_then(|v| v.to_str().ok()) {
        set_header(resp, "client-request-id", id);
    }
}

fn tenant_known(sim: &Sim, t: &str) -> bool {
    sim.read().tenant(t).is_some()
}

/// Handles an Entra path; `segs` must satisfy [`is_entra_path`].
pub fn handle(
    sim: &Sim,
    method: &Method,
    segs: &[String],
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Resp {
    let tenant = segs.first().cloned().unwrap_or_default();
    let rest: Vec<&str> = segs.iter().skip(1).map(String::as_str).collect();
    match (method, rest.as_slice()) {
        (&Method::POST, ["oauth2", "v2.0", "token"]) => token(sim, &tenant, headers, body, true),
        (&Method::POST, ["oauth2", "token"]) => token(sim, &tenant, headers, body, false),
        (&Method::GET, ["v2.0", ".well-known", "openid-configuration"]) => {
            openid(sim, &tenant, headers, true)
        }
        (&Method::GET, [".well-known", "openid-configuration"]) => {
            openid(sim, &tenant, headers, false)
        }
        (&Method::GET, ["discovery", "v2.0", "keys"] | ["discovery", "keys"]) => {
            json_resp(StatusCode::OK, &sim.signer.jwks(&sim.issuer()))
        }
        (&Method::GET, ["discovery", "instance"]) => instance_discovery(sim, query),
        (&Method::GET, []) if tenant == "error" => {
            let mut r = json_resp(
                StatusCode::OK,
                &json!({"help": "https://login.microsoftonline.com/error", "query": query}),
            );
            set_header(&mut r, "content-type", "application/json; charset=utf-8");
            r
        }
        _ => entra_error(
            sim,
            headers,
            StatusCode::NOT_FOUND,
            "invalid_request",
            900_561,
            "The endpoint only accepts POST requests for this path.",
        ),
    }
}

fn openid(sim: &Sim, tenant: &str, headers: &HeaderMap, v2: bool) -> Resp {
    let generic = matches!(tenant, "common" | "organizations" | "consumers");
    if !generic && !tenant_known(sim, tenant) {
        return entra_error(
            sim,
            headers,
            StatusCode::BAD_REQUEST,
            "invalid_tenant",
            90_002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud."
            ),
        );
    }
    let base = sim.main_url();
    let known = sim.read().tenant(tenant).map(|t| t.id.clone()).unwrap_or_default();
    let tid = if generic { "{tenantid}".to_string() } else { known.clone() };
    let t = if generic { tenant.to_string() } else { known };
    let (token_ep, auth_ep, keys, issuer) = if v2 {
        (
            format!("{base}/{t}/oauth2/v2.0/token"),
            format!("{base}/{t}/oauth2/v2.0/authorize"),
            format!("{base}/{t}/discovery/v2.0/keys"),
            format!("{base}/{tid}/v2.0"),
        )
    } else {
        (
            format!("{base}/{t}/oauth2/token"),
            format!("{base}/{t}/oauth2/authorize"),
            format!("{base}/{t}/discovery/keys"),
            format!("{base}/{tid}/"),
        )
    };
    let host = base.trim_start_matches("https://").to_string();
    let body = json!({
        "token_endpoint": token_ep,
        "token_endpoint_auth_methods_supported":
            ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": keys,
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer,
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": auth_ep,
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
            "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr",
            "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/{t}/kerberos"),
        "tenant_region_scope": "EU",
        "cloud_instance_name": host,
        "cloud_graph_host_name": host,
        "msgraph_host": host,
        "rbac_url": base,
    });
    json_resp(StatusCode::OK, &body)
}

fn instance_discovery(sim: &Sim, _query: &str) -> Resp {
    let base = sim.main_url();
    let host = base.trim_start_matches("https://").to_string();
    json_resp(
        StatusCode::OK,
        &json!({
            "tenant_discovery_endpoint":
                format!("{base}/{}/v2.0/.well-known/openid-configuration", sim.tenant_id),
            "api-version": "1.1",
            "metadata": [{
                "preferred_network": host,
                "preferred_cache": host,
                "aliases": [host],
            }],
        }),
    )
}

/// The resource if cloudsim issues tokens for it (case-insensitive, trailing slash ignored).
pub fn normalise_resource(r: &str) -> Option<String> {
    let trimmed = r.trim_end_matches('/');
    RESOURCES.iter().any(|k| k.eq_ignore_ascii_case(trimmed)).then(|| r.to_string())
}

fn token(sim: &Sim, tenant_name: &str, headers: &HeaderMap, body: &[u8], v2: bool) -> Resp {
    let form = crate::http::parse_query(Some(&String::from_utf8_lossy(body)));
    let err = |status: StatusCode, error: &str, code: u32, text: String| {
        entra_error(sim, headers, status, error, code, &text)
    };
    let missing = |p: &str| {
        err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900_144,
            format!("The request body must contain the following parameter: '{p}'."),
        )
    };
    if sim.read().tenant(tenant_name).is_none() {
        return err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            format!(
                "Tenant '{tenant_name}' not found. Check to make sure you have the correct tenant \
                 ID and are signing into the correct cloud. Check with your subscription \
                 administrator, this may happen if there are no active subscriptions for the \
                 tenant."
            ),
        );
    }
    let Some(grant) = form.get("grant_type") else {
        return missing("grant_type");
    };
    if grant != "client_credentials" {
        return err(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70_003,
            format!("The app requested an unsupported grant type '{grant}'."),
        );
    }
    let Some(client_id) = form.get("client_id") else {
        return missing("client_id");
    };
    let world = sim.read();
    let Some(tenant) = world.tenant(tenant_name) else {
        return err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            format!("Tenant '{tenant_name}' not found."),
        );
    };
    let Some(app) = tenant.app(client_id) else {
        return err(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant_name}'. This can happen if the application has not been installed by \
                 the administrator of the tenant or consented to by any user in the tenant. You \
                 may have sent your authentication request to the wrong tenant."
            ),
        );
    };
    let resource = if v2 {
        let Some(scope) = form.get("scope") else {
            return missing("scope");
        };
        let first = scope
            .split_whitespace()
            .find(|s| !matches!(*s, "openid" | "profile" | "offline_access" | "email"))
            .unwrap_or("");
        let Some(res) = first.strip_suffix("/.default") else {
            return err(
                StatusCode::BAD_REQUEST,
                "invalid_scope",
                1_002_012,
                format!(
                    "The provided value for scope {scope} is not valid. Client credential flows \
                     must have a scope value with /.default suffixed to the resource identifier \
                     (application ID URI)."
                ),
            );
        };
        res.to_string()
    } else {
        let Some(res) = form.get("resource") else {
            return missing("resource");
        };
        res.clone()
    };
    let Some(aud) = normalise_resource(&resource) else {
        return err(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500_011,
            format!(
                "The resource principal named {resource} was not found in the tenant named \
                 {tenant_name}. This can happen if the application has not been installed by \
                 the administrator of the tenant or consented to by any user in the tenant. You \
                 might have sent your authentication request to the wrong tenant."
            ),
        );
    };
    let t = now();
    if let Some(assertion) = form.get("client_assertion") {
        let kind = form.get("client_assertion_type").map(String::as_str);
        if let Err((code, text)) = check_assertion(sim, tenant, app, kind, assertion, t) {
            let status =
                if code == 50_027 { StatusCode::BAD_REQUEST } else { StatusCode::UNAUTHORIZED };
            let error = if code == 50_027 { "invalid_request" } else { "invalid_client" };
            return err(status, error, code, text);
        }
    } else {
        let Some(secret) = form.get("client_secret") else {
            return err(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7_000_216,
                "'client_assertion', 'client_secret' or 'request' is required for the \
                 'client_credentials' grant type."
                    .into(),
            );
        };
        match app.passwords.iter().find(|p| p.secret == *secret) {
            Some(p) if p.expired(t) => {
                return err(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7_000_222,
                    format!(
                        "The provided client secret keys for app '{}' are expired. Visit the \
                         Azure portal to create new keys for your app: \
                         https://aka.ms/NewClientSecret, or consider using certificate \
                         credentials for added security: https://aka.ms/certCreds.",
                        app.app_id
                    ),
                );
            }
            Some(_) => {}
            None => {
                return err(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7_000_215,
                    format!(
                        "Invalid client secret provided. Ensure the secret being sent in the \
                         request is the client secret value, not the client secret ID, for a \
                         secret added to app '{}'.",
                        app.app_id
                    ),
                );
            }
        }
    }
    let claims = Claims {
        aud,
        iss: sim.issuer_of(&tenant.id),
        iat: t,
        nbf: t,
        exp: t + TOKEN_LIFETIME,
        azp: app.app_id.clone(),
        appid: app.app_id.clone(),
        idtyp: "app".into(),
        oid: app.sp_object_id.clone(),
        roles: app.roles.clone(),
        sub: app.sp_object_id.clone(),
        tid: tenant.id.clone(),
        uti: guid().replace('-', "").chars().take(22).collect(),
        ver: "2.0".into(),
        xms_mirid: None,
    };
    drop(world);
    let token = match sim.signer.sign(&claims) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("signing token: {e:#}");
            return err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                90_033,
                "A transient error has occurred. Please try again.".into(),
            );
        }
    };
    let mut body: Value = json!({
        "token_type": "Bearer",
        "expires_in": TOKEN_LIFETIME - 1,
        "ext_expires_in": TOKEN_LIFETIME - 1,
        "access_token": token,
    });
    if !v2 {
        body["expires_on"] = json!((t + TOKEN_LIFETIME).to_string());
        body["not_before"] = json!(t.to_string());
        body["resource"] = json!(resource);
        body["expires_in"] = json!((TOKEN_LIFETIME - 1).to_string());
        body["ext_expires_in"] = json!((TOKEN_LIFETIME - 1).to_string());
    }
    let mut resp = json_resp(StatusCode::OK, &body);
    entra_headers(&mut resp, headers, &guid());
    resp
}

/// The assertion type of the client-assertion grant (RFC 7523).
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Header of a client assertion: which certificate signed it and how.
#[derive(serde::Deserialize)]
struct AssertionHeader {
    alg: Option<String>,
    x5t: Option<String>,
    #[serde(rename = "x5t#S256")]
    x5t_s256: Option<String>,
}

/// Claims of a client assertion.
#[derive(serde::Deserialize)]
struct AssertionClaims {
    aud: Option<Value>,
    iss: Option<String>,
    sub: Option<String>,
    /// MSAL sends fractional seconds.
    exp: Option<f64>,
    nbf: Option<f64>,
}

/// Checks a client assertion (a JWT signed with a certificate registered on the app) the way
/// Entra does; an error carries the AADSTS code and text.
fn check_assertion(
    sim: &Sim,
    tenant: &crate::directory::Tenant,
    app: &crate::directory::App,
    kind: Option<&str>,
    assertion: &str,
    now: i64,
) -> Result<(), (u32, String)> {
    use base64::Engine;
    match kind {
        None => {
            return Err((
                90_014,
                "The required field 'client_assertion_type' is missing from the credential. \
                 Ensure that you have all the necessary parameters for the login request."
                    .into(),
            ));
        }
        Some(k) if k != JWT_BEARER => {
            return Err((50_027, format!("Invalid client_assertion_type '{k}'.")));
        }
        Some(_) => {}
    }
    let malformed = || (50_027, "JWT token is invalid or malformed.".to_string());
    let mut parts = assertion.split('.');
    let header_b64 = parts.next().ok_or_else(malformed)?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header_b64.trim_end_matches('='))
        .map_err(|_| malformed())?;
    let header: AssertionHeader = serde_json::from_slice(&raw).map_err(|_| malformed())?;
    let alg = match header.alg.as_deref() {
        Some("RS256") => jsonwebtoken::Algorithm::RS256,
        Some("PS256") => jsonwebtoken::Algorithm::PS256,
        _ => return Err((700_027, "Client assertion failed signature validation.".into())),
    };
    let Some(cred) =
        app.keys.iter().find(|k| k.matches(header.x5t.as_deref(), header.x5t_s256.as_deref()))
    else {
        let used = header.x5t_s256.or(header.x5t).unwrap_or_default();
        return Err((
            700_027,
            format!(
                "The certificate with identifier used to sign the client assertion is not \
                 registered on application. [Reason - The key was not found., Thumbprint of key \
                 used by client: '{used}', Please visit the Azure Portal, Graph Explorer or \
                 directly use MS Graph to see configured keys for app Id '{}'.]",
                app.app_id
            ),
        ));
    };
    let Some((n, e)) = &cred.rsa else {
        return Err((700_027, "Client assertion failed signature validation.".into()));
    };
    let key = jsonwebtoken::DecodingKey::from_rsa_components(n, e)
        .map_err(|_| (700_027, "Client assertion failed signature validation.".to_string()))?;
    let mut v = jsonwebtoken::Validation::new(alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &v)
        .map_err(|e| {
            tracing::debug!(error = %e, "client assertion refused");
            match e.kind() {
                jsonwebtoken::errors::ErrorKind::Json(_)
                | jsonwebtoken::errors::ErrorKind::Base64(_)
                | jsonwebtoken::errors::ErrorKind::Utf8(_)
                | jsonwebtoken::errors::ErrorKind::InvalidToken => malformed(),
                _ => (700_027, "Client assertion failed signature validation.".to_string()),
            }
        })?
        .claims;
    if cred.end <= now {
        return Err((
            700_027,
            format!(
                "The certificate with identifier used to sign the client assertion is expired \
                 on application. [Reason - The key used is expired., Thumbprint of key used by \
                 client: '{}']",
                cred.thumbprint_hex()
            ),
        ));
    }
    let Some(exp) = claims.exp.map(|e| e as i64) else {
        return Err(malformed());
    };
    let nbf = claims.nbf.map(|n| n as i64).unwrap_or(now);
    if exp + 300 < now || nbf > now + 300 {
        return Err((
            700_024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, \
                 assertion valid from {}, expiry time of assertion {}.",
                crate::graph::graph_time(now),
                crate::graph::graph_time(nbf),
                crate::graph::graph_time(exp)
            ),
        ));
    }
    let same =
        |c: &Option<String>| c.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(&app.app_id));
    if !same(&claims.iss) || !same(&claims.sub) {
        return Err((
            700_021,
            "Client assertion application identifier doesn't match 'client_id' parameter. \
             Review the documentation at https://docs.microsoft.com/en-us/azure/\
             active-directory/develop/active-directory-certificate-credentials ."
                .into(),
        ));
    }
    let base = sim.main_url();
    let accepted = |a: &str| {
        let a = a.trim_end_matches('/');
        [tenant.id.as_str(), tenant.domain.as_str()].iter().any(|t| {
            [
                format!("{base}/{t}/oauth2/v2.0/token"),
                format!("{base}/{t}/oauth2/token"),
                format!("{base}/{t}/v2.0"),
            ]
            .iter()
            .any(|ok| ok.eq_ignore_ascii_case(a))
        })
    };
    let aud_ok = match &claims.aud {
        Some(Value::String(a)) => accepted(a),
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).any(accepted),
        _ => false,
    };
    if !aud_ok {
        return Err((
            700_023,
            "Client assertion audience claim does not match Realm issuer. Review the \
             documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/\
             active-directory-certificate-credentials ."
                .into(),
        ));
    }
    Ok(())
}

/// The response for an injected fault on the token endpoint.
pub fn fault_response(sim: &Sim, headers: &HeaderMap, f: &crate::faults::Fault) -> Resp {
    let code = f.status.unwrap_or(500);
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = if code == 429 || code >= 500 {
        entra_error(
            sim,
            headers,
            status,
            "temporarily_unavailable",
            90_033,
            "A transient error has occurred. Please try again.",
        )
    } else {
        entra_error(sim, headers, status, "invalid_request", 90_000, "Injected fault.")
    };
    if let Some(s) = f.retry_after {
        set_header(&mut r, "retry-after", &s.to_string());
    }
    r
}
