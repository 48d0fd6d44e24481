//! Managed-identity token endpoints on the main port: the App Service style endpoint
//! (`IDENTITY_ENDPOINT` = `{main}/msi/token`, guarded by `X-IDENTITY-HEADER`, api-version
//! 2019-08-01) and the IMDS path (`/metadata/identity/oauth2/token`, guarded by
//! `Metadata: true`, api-version 2018-02-01). Both answer `expires_on` as a string of Unix
//! seconds, as Azure does and as the Rust SDK requires.

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::json;

use crate::directory::ManagedIdentity;
use crate::http::{Resp, guid, json as json_resp, now, set_header};
use crate::state::Sim;
use crate::token::{Claims, TOKEN_LIFETIME};

/// True for `/msi/token` and `/metadata/identity/oauth2/token`.
pub fn is_identity_path(segs: &[String]) -> bool {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    matches!(s.as_slice(), ["msi", "token"] | ["metadata", "identity", "oauth2", "token"])
}

/// Handles a managed-identity token request.
pub fn handle(
    sim: &Sim,
    method: &Method,
    segs: &[String],
    query: &str,
    headers: &HeaderMap,
) -> Resp {
    let imds = segs.first().is_some_and(|s| s == "metadata");
    let q = crate::http::parse_query(Some(query));
    let err = |status: StatusCode, error: &str, desc: &str| {
        if imds {
            json_resp(status, &json!({"error": error, "error_description": desc}))
        } else {
            json_resp(
                status,
                &json!({"statusCode": status.as_u16(), "message": desc, "correlationId": guid()}),
            )
        }
    };
    if method != Method::GET && !(imds && method == Method::POST) {
        return err(StatusCode::METHOD_NOT_ALLOWED, "invalid_request", "Only GET is supported.");
    }
    if imds {
        let ok = headers
            .get("metadata")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if !ok {
            return err(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "Required metadata header not specified",
            );
        }
    } else {
        match headers.get("x-identity-header").and_then(|v| v.to_str().ok()) {
            None => {
                return err(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "The X-IDENTITY-HEADER header is required.",
                );
            }
            Some(v) if v != sim.identity_header => {
                return err(
                    StatusCode::UNAUTHORIZED,
                    "invalid_request",
                    "The X-IDENTITY-HEADER header does not match.",
                );
            }
            Some(_) => {}
        }
    }
    if !q.contains_key("api-version") {
        return err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'api-version' is missing",
        );
    }
    let Some(resource) = q.get("resource").cloned() else {
        return err(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Required query variable 'resource' is missing",
        );
    };
    let Some(aud) = crate::entra::normalise_resource(&resource) else {
        return err(
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            &format!("AADSTS500011: The resource principal named {resource} was not found."),
        );
    };
    let Some(mi) = select(sim, &q) else {
        return err(StatusCode::BAD_REQUEST, "invalid_request", "Identity not found");
    };
    let t = now();
    let claims = Claims {
        aud,
        iss: sim.issuer(),
        iat: t,
        nbf: t,
        exp: t + TOKEN_LIFETIME,
        azp: mi.client_id.clone(),
        appid: mi.client_id.clone(),
        idtyp: "app".into(),
        oid: mi.principal_id.clone(),
        roles: Vec::new(),
        sub: mi.principal_id.clone(),
        tid: sim.tenant_id.clone(),
        uti: guid().replace('-', "").chars().take(22).collect(),
        ver: "2.0".into(),
        xms_mirid: Some(mi.resource_id.clone()),
    };
    let token = match sim.signer.sign(&claims) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("signing managed-identity token: {e:#}");
            return err(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "Signing failed.");
        }
    };
    let exp = (t + TOKEN_LIFETIME).to_string();
    let body = if imds {
        json!({
            "access_token": token,
            "refresh_token": "",
            "expires_in": (TOKEN_LIFETIME - 1).to_string(),
            "expires_on": exp,
            "ext_expires_in": (TOKEN_LIFETIME - 1).to_string(),
            "not_before": t.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": mi.client_id,
        })
    } else {
        json!({
            "access_token": token,
            "expires_on": exp,
            "resource": resource,
            "token_type": "Bearer",
            "client_id": mi.client_id,
        })
    };
    let mut resp = json_resp(StatusCode::OK, &body);
    set_header(&mut resp, "x-ms-request-id", &guid());
    resp
}

/// The identity a request asks for: `client_id`, `object_id` / `principal_id`, or
/// `mi_res_id` / `msi_res_id`; without any, the first (system-assigned) identity.
fn select<'a>(
    sim: &'a Sim,
    q: &std::collections::BTreeMap<String, String>,
) -> Option<&'a ManagedIdentity> {
    let eq = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    if let Some(c) = q.get("client_id") {
        return sim.identities.iter().find(|m| eq(&m.client_id, c));
    }
    if let Some(o) = q.get("object_id").or_else(|| q.get("principal_id")) {
        return sim.identities.iter().find(|m| eq(&m.principal_id, o));
    }
    if let Some(r) = q.get("mi_res_id").or_else(|| q.get("msi_res_id")) {
        return sim.identities.iter().find(|m| eq(&m.resource_id, r));
    }
    sim.identities.first()
}
