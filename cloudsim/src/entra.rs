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
    t.eq_ignore_ascii_case(&sim.tenant_id)
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
    let tid = if generic { "{tenantid}".to_string() } else { sim.tenant_id.clone() };
    let t = if generic { tenant.to_string() } else { sim.tenant_id.clone() };
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

fn normalise_resource(r: &str) -> Option<String> {
    let trimmed = r.trim_end_matches('/');
    RESOURCES.iter().any(|k| k.eq_ignore_ascii_case(trimmed)).then(|| r.to_string())
}

fn token(sim: &Sim, tenant: &str, headers: &HeaderMap, body: &[u8], v2: bool) -> Resp {
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
    if !tenant_known(sim, tenant) {
        return err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90_002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud. Check with your subscription \
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
    if !client_id.eq_ignore_ascii_case(&sim.client_id) {
        return err(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory \
                 '{tenant}'. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You may \
                 have sent your authentication request to the wrong tenant."
            ),
        );
    }
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
                 {tenant}. This can happen if the application has not been installed by the \
                 administrator of the tenant or consented to by any user in the tenant. You \
                 might have sent your authentication request to the wrong tenant."
            ),
        );
    };
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
    let (expected, expired) = {
        let w = sim.read();
        (w.client_secret.clone(), w.client_secret_expired)
    };
    if *secret == expected && expired {
        return err(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_222,
            format!(
                "The provided client secret keys for app '{}' are expired. Visit the Azure portal                  to create new keys for your app: https://aka.ms/NewClientSecret, or consider                  using certificate credentials for added security: https://aka.ms/certCreds.",
                sim.client_id
            ),
        );
    }
    if *secret != expected {
        return err(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7_000_215,
            format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is \
                 the client secret value, not the client secret ID, for a secret added to app \
                 '{}'.",
                sim.client_id
            ),
        );
    }
    let t = now();
    let claims = Claims {
        aud,
        iss: sim.issuer(),
        iat: t,
        nbf: t,
        exp: t + TOKEN_LIFETIME,
        azp: sim.client_id.clone(),
        appid: sim.client_id.clone(),
        idtyp: "app".into(),
        oid: sim.sp_object_id.clone(),
        roles: sim.roles.clone(),
        sub: sim.sp_object_id.clone(),
        tid: sim.tenant_id.clone(),
        uti: guid().replace('-', "").chars().take(22).collect(),
        ver: "2.0".into(),
    };
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
