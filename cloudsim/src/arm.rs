//! Azure Resource Manager on the main port: tenants, subscriptions, and Microsoft.KeyVault
//! vaults (list by subscription or resource group with `$skiptoken` paging, and get). Requests
//! need a cloudsim-signed bearer token for the management audience; errors use ARM's
//! `{"error":{"code","message"}}` shape.

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use serde_json::{Value, json};

use crate::http::{Resp, guid, json as json_resp, now, set_header};
use crate::state::{Sim, Vault};
use crate::token::TokenError;

/// Audiences accepted by ARM.
pub const ARM_AUDIENCES: &[&str] = &[
    "https://management.azure.com",
    "https://management.azure.com/",
    "https://management.core.windows.net",
    "https://management.core.windows.net/",
];

/// Builds an ARM error response.
pub fn arm_error(status: StatusCode, code: &str, message: &str) -> Resp {
    json_resp(status, &json!({"error": {"code": code, "message": message}}))
}

/// Adds the headers ARM puts on every response.
pub fn arm_headers(resp: &mut Resp, headers: &HeaderMap) {
    let corr = headers
        .get("x-ms-correlation-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(guid);
    set_header(resp, "x-ms-request-id", &guid());
    set_header(resp, "x-ms-correlation-request-id", &corr);
    set_header(
        resp,
        "x-ms-routing-request-id",
        &format!("WESTEUROPE:{}:{}", chrono::Utc::now().format("%Y%m%dT%H%M%SZ"), guid()),
    );
    set_header(resp, "x-ms-ratelimit-remaining-subscription-reads", "11999");
    set_header(resp, "x-ms-ratelimit-remaining-tenant-reads", "11999");
    set_header(resp, "cache-control", "no-cache");
    set_header(resp, "pragma", "no-cache");
    set_header(resp, "expires", "-1");
    set_header(resp, "x-content-type-options", "nosniff");
    set_header(resp, "strict-transport-security", "max-age=31536000; includeSubDomains");
    if let Some(id) = headers.get("x-ms-client-request-id").and_then(|v| v.to_str().ok()) {
        set_header(resp, "x-ms-client-request-id", id);
    }
}

fn unauthorized(sim: &Sim, code: &str, message: &str, desc: &str) -> Resp {
    let mut r = arm_error(StatusCode::UNAUTHORIZED, code, message);
    set_header(
        &mut r,
        "www-authenticate",
        &format!(
            "Bearer authorization_uri=\"{}/{}\", error=\"invalid_token\", \
             error_description=\"{desc}\"",
            sim.main_url(),
            sim.tenant_id
        ),
    );
    r
}

fn authenticate(sim: &Sim, headers: &HeaderMap) -> Result<(), Box<Resp>> {
    let Some(token) = crate::http::bearer(headers) else {
        return Err(Box::new(unauthorized(
            sim,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
            "The authentication failed because of missing 'Authorization' header.",
        )));
    };
    let t = now();
    match sim.signer.validate(&token, ARM_AUDIENCES, &sim.issuer(), &sim.tenant_id, t) {
        Ok(_) => Ok(()),
        Err(TokenError::Expired { exp }) => {
            let fmt = |s: i64| {
                chrono::DateTime::from_timestamp(s, 0)
                    .map(|d| d.format("%m/%d/%Y %H:%M:%S").to_string())
                    .unwrap_or_default()
            };
            Err(Box::new(unauthorized(
                sim,
                "ExpiredAuthenticationToken",
                &format!(
                    "The access token expiry UTC time '{}' is earlier than current UTC time '{}'.",
                    fmt(exp),
                    fmt(t)
                ),
                "The access token has expired.",
            )))
        }
        Err(TokenError::Audience { found }) => Err(Box::new(unauthorized(
            sim,
            "InvalidAuthenticationToken",
            &format!(
                "The access token has been obtained for wrong audience or resource '{found}'. It \
                 should exactly match with one of the allowed audiences \
                 'https://management.core.windows.net/','https://management.core.windows.net',\
                 'https://management.azure.com/','https://management.azure.com'."
            ),
            "The access token has been obtained for wrong audience or resource.",
        ))),
        Err(TokenError::Issuer { found }) => Err(Box::new(unauthorized(
            sim,
            "InvalidAuthenticationTokenTenant",
            &format!(
                "The access token is from the wrong issuer '{found}'. It must match the tenant \
                 '{}/{}/' associated with this subscription.",
                sim.main_url(),
                sim.tenant_id
            ),
            "The access token is from the wrong issuer.",
        ))),
        Err(_) => Err(Box::new(unauthorized(
            sim,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
            "The access token signature is invalid.",
        ))),
    }
}

fn subscription_json(sim: &Sim, s: &crate::state::Subscription) -> Value {
    json!({
        "id": format!("/subscriptions/{}", s.id),
        "authorizationSource": "RoleBased",
        "managedByTenants": [],
        "tags": s.tags,
        "subscriptionId": s.id,
        "tenantId": sim.tenant_id,
        "displayName": s.display_name,
        "state": s.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    })
}

fn iso(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

/// The ARM representation of a vault.
pub fn vault_json(sim: &Sim, v: &Vault) -> Value {
    let policies = if v.rbac {
        json!([])
    } else {
        json!([{
            "tenantId": sim.tenant_id,
            "objectId": sim.sp_object_id,
            "permissions": {
                "keys": ["Get", "List"],
                "secrets": ["Get", "List"],
                "certificates": ["Get", "List", "GetIssuers", "ListIssuers"],
            },
        }])
    };
    let mut props = json!({
        "sku": {"family": "A", "name": v.sku},
        "tenantId": sim.tenant_id,
        "accessPolicies": policies,
        "enabledForDeployment": false,
        "enabledForDiskEncryption": false,
        "enabledForTemplateDeployment": false,
        "enableSoftDelete": v.soft_delete,
        "softDeleteRetentionInDays": 90,
        "enableRbacAuthorization": v.rbac,
        "vaultUri": format!("{}/", v.base_url()),
        "provisioningState": "Succeeded",
        "publicNetworkAccess": if v.public_network_access { "Enabled" } else { "Disabled" },
        "networkAcls": {
            "bypass": "AzureServices",
            "defaultAction": if v.public_network_access { "Allow" } else { "Deny" },
            "ipRules": [],
            "virtualNetworkRules": [],
        },
    });
    if v.purge_protection {
        props["enablePurgeProtection"] = json!(true);
    }
    json!({
        "id": v.resource_id(),
        "name": v.name,
        "type": "Microsoft.KeyVault/vaults",
        "location": v.location,
        "tags": v.tags,
        "systemData": {
            "createdBy": sim.client_id,
            "createdByType": "Application",
            "createdAt": iso(v.created),
            "lastModifiedBy": sim.client_id,
            "lastModifiedByType": "Application",
            "lastModifiedAt": iso(v.created),
        },
        "properties": props,
    })
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn sub_not_found(id: &str) -> Resp {
    arm_error(
        StatusCode::NOT_FOUND,
        "SubscriptionNotFound",
        &format!("The subscription '{id}' could not be found."),
    )
}

/// Handles an ARM request (anything on the main port that is not Entra or `/_sim`).
pub fn handle(
    sim: &Sim,
    method: &Method,
    path: &str,
    segs: &[String],
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Resp {
    let mut resp = route(sim, method, path, segs, query, headers, body);
    arm_headers(&mut resp, headers);
    resp
}

fn route(
    sim: &Sim,
    method: &Method,
    path: &str,
    segs: &[String],
    query: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Resp {
    if let Err(r) = authenticate(sim, headers) {
        return *r;
    }
    let q = crate::http::parse_query(Some(query));
    let Some(api_version) = q.get("api-version").cloned() else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    };
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    {
        let world = sim.read();
        let req = crate::resources::Req {
            method,
            path,
            segs: &s,
            q: &q,
            api_version: &api_version,
            body,
        };
        if let Some(resp) = crate::resources::route(sim, &world, &req) {
            return resp;
        }
    }
    if method != Method::GET {
        return arm_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "cloudsim's Resource Manager is read-only: only GET is supported.",
        );
    }
    let world = sim.read();
    let world = &*world;
    match s.as_slice() {
        [t] if eq(t, "tenants") => json_resp(
            StatusCode::OK,
            &json!({"value": [{
                "id": format!("/tenants/{}", sim.tenant_id),
                "tenantId": sim.tenant_id,
                "tenantCategory": "Home",
                "displayName": "Contoso (cloudsim)",
                "defaultDomain": "contoso.onmicrosoft.com",
                "domains": ["contoso.onmicrosoft.com"],
                "tenantType": "AAD",
            }]}),
        ),
        [t] if eq(t, "subscriptions") => {
            let value: Vec<Value> =
                world.subscriptions.iter().map(|s| subscription_json(sim, s)).collect();
            let n = value.len();
            json_resp(
                StatusCode::OK,
                &json!({"value": value, "count": {"type": "Total", "value": n}}),
            )
        }
        [t, id] if eq(t, "subscriptions") => match find_sub(world, id) {
            Some(sub) => json_resp(StatusCode::OK, &subscription_json(sim, sub)),
            None => sub_not_found(id),
        },
        [t, id, p, ns, ty] if eq(t, "subscriptions") && eq(p, "providers") => {
            let Some(sub) = find_sub(world, id) else {
                return sub_not_found(id);
            };
            if !eq(ns, "Microsoft.KeyVault") || !eq(ty, "vaults") {
                return no_resource_type(ns, ty);
            }
            let vaults: Vec<&Vault> =
                world.vaults.iter().filter(|v| v.subscription_id == sub.id).collect();
            list_vaults(sim, path, &api_version, &q, &vaults)
        }
        [t, id, r] if eq(t, "subscriptions") && eq(r, "resources") => {
            let Some(sub) = find_sub(world, id) else {
                return sub_not_found(id);
            };
            let vaults: Vec<&Vault> = world
                .vaults
                .iter()
                .filter(|v| v.subscription_id == sub.id && resource_filter(&q, v))
                .collect();
            list_resources(sim, path, &api_version, &q, &vaults)
        }
        [t, id, rgs, rg, r]
            if eq(t, "subscriptions") && eq(rgs, "resourceGroups") && eq(r, "resources") =>
        {
            let Some(sub) = find_sub(world, id) else {
                return sub_not_found(id);
            };
            if !world
                .vaults
                .iter()
                .any(|v| v.subscription_id == sub.id && eq(&v.resource_group, rg))
            {
                return rg_not_found(rg);
            }
            let vaults: Vec<&Vault> = world
                .vaults
                .iter()
                .filter(|v| {
                    v.subscription_id == sub.id
                        && eq(&v.resource_group, rg)
                        && resource_filter(&q, v)
                })
                .collect();
            list_resources(sim, path, &api_version, &q, &vaults)
        }
        [t, id, rgs, rg, p, ns, ty]
            if eq(t, "subscriptions") && eq(rgs, "resourceGroups") && eq(p, "providers") =>
        {
            let Some(sub) = find_sub(world, id) else {
                return sub_not_found(id);
            };
            if !eq(ns, "Microsoft.KeyVault") || !eq(ty, "vaults") {
                return no_resource_type(ns, ty);
            }
            let vaults: Vec<&Vault> = world
                .vaults
                .iter()
                .filter(|v| v.subscription_id == sub.id && eq(&v.resource_group, rg))
                .collect();
            if vaults.is_empty()
                && !world
                    .vaults
                    .iter()
                    .any(|v| v.subscription_id == sub.id && eq(&v.resource_group, rg))
            {
                return rg_not_found(rg);
            }
            list_vaults(sim, path, &api_version, &q, &vaults)
        }
        [t, id, rgs, rg, p, ns, ty, name]
            if eq(t, "subscriptions") && eq(rgs, "resourceGroups") && eq(p, "providers") =>
        {
            let Some(sub) = find_sub(world, id) else {
                return sub_not_found(id);
            };
            if !eq(ns, "Microsoft.KeyVault") || !eq(ty, "vaults") {
                return no_resource_type(ns, ty);
            }
            if !world
                .vaults
                .iter()
                .any(|v| v.subscription_id == sub.id && eq(&v.resource_group, rg))
            {
                return rg_not_found(rg);
            }
            match world.vaults.iter().find(|v| {
                v.subscription_id == sub.id && eq(&v.resource_group, rg) && eq(&v.name, name)
            }) {
                Some(v) => json_resp(StatusCode::OK, &vault_json(sim, v)),
                None => arm_error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFound",
                    &format!(
                        "The Resource 'Microsoft.KeyVault/vaults/{name}' under resource group \
                         '{rg}' was not found. For more details please go to \
                         https://aka.ms/ARMResourceNotFoundFix"
                    ),
                ),
            }
        }
        _ => arm_error(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            &format!("The resource type could not be found for path '{path}'."),
        ),
    }
}

fn find_sub<'a>(
    world: &'a crate::state::World,
    id: &str,
) -> Option<&'a crate::state::Subscription> {
    world.subscriptions.iter().find(|s| eq(&s.id, id))
}

fn rg_not_found(rg: &str) -> Resp {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceGroupNotFound",
        &format!("Resource group '{rg}' could not be found."),
    )
}

fn no_resource_type(ns: &str, ty: &str) -> Resp {
    arm_error(
        StatusCode::NOT_FOUND,
        "InvalidResourceType",
        &format!("The resource type '{ty}' could not be found in the namespace '{ns}'."),
    )
}

/// Whether a vault passes the generic resource list's `$filter` (only `resourceType eq '…'`
/// clauses joined by `and` are understood; anything else matches).
fn resource_filter(q: &std::collections::BTreeMap<String, String>, _v: &Vault) -> bool {
    let Some(filter) = q.get("$filter") else {
        return true;
    };
    filter
        .split(" and ")
        .filter_map(|clause| {
            let (field, value) = clause.split_once(" eq ")?;
            eq(field.trim(), "resourceType").then(|| value.trim().trim_matches('\'').to_string())
        })
        .all(|ty| eq(&ty, "Microsoft.KeyVault/vaults"))
}

/// The generic resource shape (`GET /subscriptions/{sub}/resources`).
fn generic_resource(v: &Vault) -> Value {
    json!({
        "id": v.resource_id(),
        "name": v.name,
        "type": "Microsoft.KeyVault/vaults",
        "location": v.location,
        "tags": v.tags,
    })
}

fn list_resources(
    sim: &Sim,
    path: &str,
    api_version: &str,
    q: &std::collections::BTreeMap<String, String>,
    vaults: &[&Vault],
) -> Resp {
    paged(sim, path, api_version, q, vaults, generic_resource)
}

fn list_vaults(
    sim: &Sim,
    path: &str,
    api_version: &str,
    q: &std::collections::BTreeMap<String, String>,
    vaults: &[&Vault],
) -> Resp {
    paged(sim, path, api_version, q, vaults, |v| vault_json(sim, v))
}

fn paged(
    sim: &Sim,
    path: &str,
    api_version: &str,
    q: &std::collections::BTreeMap<String, String>,
    vaults: &[&Vault],
    render: impl Fn(&Vault) -> Value,
) -> Resp {
    let top = q
        .get("$top")
        .or_else(|| q.get("top"))
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|t| *t > 0);
    let page = top.unwrap_or(sim.arm_page_size).min(1000);
    let start = match q.get("$skiptoken") {
        None => 0,
        Some(tok) => {
            let name = URL_SAFE
                .decode(tok)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            match vaults.iter().position(|v| eq(&v.name, &name)) {
                Some(p) => p,
                None => {
                    return arm_error(
                        StatusCode::BAD_REQUEST,
                        "InvalidSkipToken",
                        "The provided skip token is invalid.",
                    );
                }
            }
        }
    };
    let end = (start + page).min(vaults.len());
    let value: Vec<Value> = vaults[start..end].iter().map(|v| render(v)).collect();
    let mut body = json!({"value": value});
    if end < vaults.len() {
        let mut link = format!(
            "{}{}?api-version={}&$skiptoken={}",
            sim.main_url(),
            path,
            api_version,
            URL_SAFE.encode(vaults[end].name.as_bytes())
        );
        if let Some(t) = top {
            link.push_str(&format!("&$top={t}"));
        }
        if let Some(f) = q.get("$filter") {
            let enc: String = url::form_urlencoded::byte_serialize(f.as_bytes()).collect();
            link.push_str(&format!("&$filter={enc}"));
        }
        body["nextLink"] = json!(link);
    }
    json_resp(StatusCode::OK, &body)
}

/// The response for an injected fault on ARM.
pub fn fault_response(sim: &Sim, f: &crate::faults::Fault) -> Resp {
    let code = f.status.unwrap_or(500);
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let tracking = guid();
    let ts = crate::http::timestamp_7();
    let mut r = match code {
        429 => arm_error(
            status,
            "SubscriptionRequestsThrottled",
            &format!(
                "Number of 'read' requests for subscription actor '{}' exceeded. Please try \
                 again after '{}' seconds after additional '0' requests.",
                sim.sp_object_id,
                f.retry_after.unwrap_or(5)
            ),
        ),
        500 => arm_error(
            status,
            "InternalServerError",
            &format!(
                "Encountered internal server error. Diagnostic information: timestamp '{ts}', \
                 tracking id '{tracking}', request correlation id '{tracking}'."
            ),
        ),
        502 => arm_error(status, "BadGateway", "The gateway received an invalid response."),
        503 => arm_error(
            status,
            "ServiceUnavailable",
            "The server (leader) is currently unable to handle the request.",
        ),
        504 => arm_error(
            status,
            "GatewayTimeout",
            "The gateway did not receive a response from 'Microsoft.KeyVault' within the \
             specified time period.",
        ),
        _ => arm_error(status, "InjectedFault", &format!("Injected fault with status {code}.")),
    };
    if let Some(s) = f.retry_after {
        set_header(&mut r, "retry-after", &s.to_string());
    }
    r
}
