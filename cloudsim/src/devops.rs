//! Azure DevOps REST on the main port, with organisations as the first path segment (where
//! real Azure DevOps has `https://dev.azure.com/{org}`): projects, service endpoints (Azure
//! Resource Manager connections with their service principal and subscription) and variable
//! groups (plain ones and Key Vault linked ones). Lists page with `$top`, a
//! `continuationToken` query parameter and the `x-ms-continuationtoken` response header.
//!
//! Authentication is a bearer Entra token for Azure DevOps' resource id (any tenant cloudsim
//! knows) or a PAT in basic auth. As the real service does, a wrong PAT is answered with
//! `203 Non-Authoritative Information` and an HTML sign-in page rather than a 401.

#![expect(clippy::result_large_err, reason = "the Err arm is the HTTP answer itself")]

use std::collections::BTreeMap;

use axum::http::{HeaderMap, Method, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::http::{Resp, guid, json as json_resp, set_header};
use crate::scenario::guid_for;
use crate::state::{DAY, Sim};

/// The resource (application id) of Azure DevOps, the audience of its Entra tokens.
pub const DEVOPS_RESOURCE: &str = "499b84ac-1321-427f-aa17-267ca6975798";

/// An organisation in a scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrgSpec {
    /// Organisation name (required).
    pub name: String,
    /// Personal access tokens accepted in basic auth (default: one derived from the seed).
    #[serde(default)]
    pub pats: Vec<String>,
    /// Projects.
    #[serde(default)]
    pub projects: Vec<ProjectSpec>,
}

/// A project.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectSpec {
    /// Project name (required).
    pub name: String,
    /// Project GUID (default: derived).
    pub id: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Service endpoints (service connections).
    #[serde(default)]
    pub service_endpoints: Vec<EndpointSpec>,
    /// Variable groups.
    #[serde(default)]
    pub variable_groups: Vec<VariableGroupSpec>,
}

/// An Azure Resource Manager service endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointSpec {
    /// Endpoint name (required, unique in the project).
    pub name: String,
    /// Endpoint GUID (default: derived).
    pub id: Option<String>,
    /// Subscription GUID (default: the scenario's first subscription).
    pub subscription_id: Option<String>,
    /// Subscription display name (default: the subscription's).
    pub subscription_name: Option<String>,
    /// Application id of the service principal (default: the product's client id).
    pub service_principal_id: Option<String>,
    /// Tenant GUID (default: the home tenant).
    pub tenant_id: Option<String>,
    /// `ServicePrincipal` (default) or `WorkloadIdentityFederation`.
    pub scheme: Option<String>,
}

/// A variable group: plain variables, or linked to a vault through a service endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VariableGroupSpec {
    /// Group name (required).
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Plain variables.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
    /// Names of secret variables (their values are never returned).
    #[serde(default)]
    pub secret_variables: Vec<String>,
    /// Key Vault link.
    pub key_vault: Option<KeyVaultLinkSpec>,
}

/// The Key Vault link of a variable group.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KeyVaultLinkSpec {
    /// Vault name (required).
    pub vault: String,
    /// Name of the project's service endpoint that reads it (required).
    pub service_endpoint: String,
    /// Secret names mapped into the group.
    #[serde(default)]
    pub secrets: Vec<String>,
}

/// A built organisation.
#[derive(Debug, Clone)]
pub struct Org {
    /// Name.
    pub name: String,
    /// Accepted PATs.
    pub pats: Vec<String>,
    /// Projects.
    pub projects: Vec<Project>,
}

/// A built project.
#[derive(Debug, Clone)]
pub struct Project {
    /// GUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Service endpoints as Azure DevOps renders them.
    pub endpoints: Vec<Value>,
    /// Variable groups as Azure DevOps renders them (the `url` is added when served).
    pub groups: Vec<Value>,
}

/// What the builder needs from the rest of the scenario.
pub struct DevOpsCtx<'a> {
    /// Seed.
    pub seed: u64,
    /// Reference time.
    pub now: i64,
    /// Home tenant GUID.
    pub tenant_id: &'a str,
    /// The product's client id.
    pub client_id: &'a str,
    /// (id, display name) of every subscription.
    pub subscriptions: &'a [(String, String)],
}

fn ado_time(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
        .unwrap_or_default()
}

fn identity_ref(seed: u64) -> Value {
    json!({
        "displayName": "Contoso Build Admin",
        "id": guid_for(seed, &["ado-user"]),
        "uniqueName": "build-admin@contoso.com",
    })
}

/// Builds the organisations of a scenario.
pub fn build(specs: &[OrgSpec], ctx: &DevOpsCtx<'_>) -> anyhow::Result<Vec<Org>> {
    let mut orgs = Vec::new();
    for o in specs {
        let pats = if o.pats.is_empty() {
            vec![format!("cloudsimpat{}", guid_for(ctx.seed, &["pat", &o.name]).replace('-', ""))]
        } else {
            o.pats.clone()
        };
        let mut projects = Vec::new();
        for p in &o.projects {
            let pid =
                p.id.clone()
                    .unwrap_or_else(|| guid_for(ctx.seed, &["ado-project", &o.name, &p.name]));
            let project_ref = json!({"id": pid, "name": p.name});
            let mut endpoints = Vec::new();
            for e in &p.service_endpoints {
                let (sub_id, sub_name) = match &e.subscription_id {
                    Some(id) => {
                        let name =
                            ctx.subscriptions.iter().find(|(s, _)| s == id).map(|(_, n)| n.clone());
                        (id.clone(), e.subscription_name.clone().or(name).unwrap_or_default())
                    }
                    None => ctx.subscriptions.first().cloned().unwrap_or_default(),
                };
                let scheme = e.scheme.clone().unwrap_or_else(|| "ServicePrincipal".into());
                if !matches!(scheme.as_str(), "ServicePrincipal" | "WorkloadIdentityFederation") {
                    anyhow::bail!(
                        "endpoint {}: scheme must be ServicePrincipal or \
                         WorkloadIdentityFederation",
                        e.name
                    );
                }
                let mut params = json!({
                    "tenantid": e.tenant_id.clone().unwrap_or_else(|| ctx.tenant_id.to_string()),
                    "serviceprincipalid": e
                        .service_principal_id
                        .clone()
                        .unwrap_or_else(|| ctx.client_id.to_string()),
                });
                if scheme == "ServicePrincipal" {
                    params["authenticationType"] = json!("spnKey");
                    params["serviceprincipalkey"] = Value::Null;
                } else {
                    params["workloadIdentityFederationIssuer"] =
                        json!("https://vstoken.dev.azure.com/cloudsim");
                    params["workloadIdentityFederationSubject"] =
                        json!(format!("sc://{}/{}/{}", o.name, p.name, e.name));
                }
                let id = e.id.clone().unwrap_or_else(|| {
                    guid_for(ctx.seed, &["ado-endpoint", &o.name, &p.name, &e.name])
                });
                endpoints.push(json!({
                    "data": {
                        "environment": "AzureCloud",
                        "scopeLevel": "Subscription",
                        "subscriptionId": sub_id,
                        "subscriptionName": sub_name,
                        "creationMode": "Manual",
                    },
                    "id": id,
                    "name": e.name,
                    "type": "azurerm",
                    "url": "https://management.azure.com/",
                    "createdBy": identity_ref(ctx.seed),
                    "description": "",
                    "authorization": {"parameters": params, "scheme": scheme},
                    "isShared": false,
                    "isReady": true,
                    "owner": "Library",
                    "serviceEndpointProjectReferences": [
                        {"projectReference": project_ref, "name": e.name, "description": ""}
                    ],
                }));
            }
            let mut groups = Vec::new();
            for (gi, g) in p.variable_groups.iter().enumerate() {
                let mut vars = Map::new();
                for (k, v) in &g.variables {
                    vars.insert(k.clone(), json!({"value": v}));
                }
                for k in &g.secret_variables {
                    vars.insert(k.clone(), json!({"isSecret": true, "value": null}));
                }
                let created = ado_time(ctx.now - (90 + gi as i64) * DAY);
                let mut group = json!({
                    "id": gi + 1,
                    "type": "Vsts",
                    "name": g.name,
                    "description": g.description.clone().unwrap_or_default(),
                    "createdBy": identity_ref(ctx.seed),
                    "createdOn": created,
                    "modifiedBy": identity_ref(ctx.seed),
                    "modifiedOn": created,
                    "isShared": false,
                    "variableGroupProjectReferences": [
                        {"projectReference": project_ref, "name": g.name, "description": ""}
                    ],
                });
                if let Some(kv) = &g.key_vault {
                    let endpoint = endpoints
                        .iter()
                        .find(|e| e["name"] == kv.service_endpoint.as_str())
                        .ok_or_else(|| {
                            anyhow::anyhow!(
                                "variable group {}: no service endpoint {}",
                                g.name,
                                kv.service_endpoint
                            )
                        })?;
                    group["type"] = json!("AzureKeyVault");
                    group["providerData"] = json!({
                        "serviceEndpointId": endpoint["id"],
                        "vault": kv.vault,
                        "lastRefreshedOn": ado_time(ctx.now - DAY),
                    });
                    for s in &kv.secrets {
                        vars.insert(
                            s.clone(),
                            json!({
                                "enabled": true, "contentType": "", "value": null,
                                "isSecret": true, "expires": null,
                            }),
                        );
                    }
                }
                group["variables"] = Value::Object(vars);
                groups.push(group);
            }
            projects.push(Project {
                id: pid,
                name: p.name.clone(),
                description: p.description.clone().unwrap_or_default(),
                endpoints,
                groups,
            });
        }
        orgs.push(Org { name: o.name.clone(), pats, projects });
    }
    Ok(orgs)
}

/// True for `/{org}/_apis/...` and `/{org}/{project}/_apis/...`.
pub fn is_devops_path(segs: &[String]) -> bool {
    segs.get(1).is_some_and(|s| s == "_apis") || segs.get(2).is_some_and(|s| s == "_apis")
}

/// Azure DevOps' error body.
fn ado_error(status: StatusCode, type_key: &str, message: &str) -> Resp {
    json_resp(
        status,
        &json!({
            "$id": "1",
            "innerException": null,
            "message": message,
            "typeName": format!(
                "Microsoft.TeamFoundation.Core.WebApi.{type_key}, \
                 Microsoft.TeamFoundation.Core.WebApi"
            ),
            "typeKey": type_key,
            "errorCode": 0,
            "eventId": 3000,
        }),
    )
}

enum Auth {
    Ok,
    Missing,
    BadPat,
    BadToken,
}

fn authenticate(sim: &Sim, org: &Org, headers: &HeaderMap) -> Auth {
    let Some(raw) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
        return Auth::Missing;
    };
    let (scheme, value) = raw.split_once(' ').unwrap_or((raw, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = STANDARD.decode(value.trim()).ok().and_then(|b| String::from_utf8(b).ok());
        let pat = decoded.as_deref().and_then(|d| d.split_once(':')).map(|(_, p)| p.to_string());
        return match pat {
            Some(p) if org.pats.contains(&p) => Auth::Ok,
            _ => Auth::BadPat,
        };
    }
    if scheme.eq_ignore_ascii_case("bearer") {
        let audiences = [DEVOPS_RESOURCE, "https://app.vssps.visualstudio.com"];
        return match sim.validate_any_tenant(value.trim(), &audiences) {
            Ok(_) => Auth::Ok,
            Err(_) => Auth::BadToken,
        };
    }
    Auth::Missing
}

/// Handles an Azure DevOps request; `segs` must satisfy [`is_devops_path`].
pub fn handle(
    sim: &Sim,
    method: &Method,
    segs: &[String],
    query: &str,
    headers: &HeaderMap,
) -> Resp {
    let mut resp = route(sim, method, segs, query, headers);
    set_header(&mut resp, "activityid", &guid());
    set_header(&mut resp, "x-vss-e2eid", &guid());
    set_header(&mut resp, "x-tfs-processid", &guid());
    resp
}

fn route(sim: &Sim, method: &Method, segs: &[String], query: &str, headers: &HeaderMap) -> Resp {
    let Some(org) = sim.devops.iter().find(|o| o.name.eq_ignore_ascii_case(&segs[0])) else {
        return ado_error(
            StatusCode::NOT_FOUND,
            "OrganizationNotFoundException",
            &format!("VS800075: The organization '{}' could not be found.", segs[0]),
        );
    };
    match authenticate(sim, org, headers) {
        Auth::Ok => {}
        Auth::BadPat => {
            let mut r = Resp::new(axum::body::Body::from(
                "<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head>\
                 <body>Sign in to your account</body></html>",
            ));
            *r.status_mut() = StatusCode::NON_AUTHORITATIVE_INFORMATION;
            set_header(&mut r, "content-type", "text/html; charset=utf-8");
            return r;
        }
        Auth::Missing | Auth::BadToken => {
            let mut r = ado_error(
                StatusCode::UNAUTHORIZED,
                "UnauthorizedRequestException",
                "TF400813: The user '' is not authorized to access this resource.",
            );
            set_header(
                &mut r,
                "www-authenticate",
                &format!(
                    "Bearer authorization_uri={}/{}, Basic realm=\"{}/\"",
                    sim.main_url(),
                    sim.tenant_id,
                    sim.main_url()
                ),
            );
            return r;
        }
    }
    if method != Method::GET {
        return ado_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "VssMethodNotAllowedException",
            "cloudsim's Azure DevOps is read-only: only GET is supported.",
        );
    }
    let q = crate::http::parse_query(Some(query));
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let base = format!("{}/{}", sim.main_url(), org.name);
    let project_json = |p: &Project| {
        json!({
            "id": p.id,
            "name": p.name,
            "description": p.description,
            "url": format!("{base}/_apis/projects/{}", p.id),
            "state": "wellFormed",
            "revision": 11,
            "visibility": "private",
            "lastUpdateTime": ado_time(crate::http::now() - 30 * DAY),
        })
    };
    let find_project = |name: &str| -> Result<&Project, Resp> {
        org.projects
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name) || p.id.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                ado_error(
                    StatusCode::NOT_FOUND,
                    "ProjectDoesNotExistWithNameException",
                    &format!(
                        "TF200016: The following project does not exist: {name}. Verify that the \
                         name of the project is correct and that the project exists on the \
                         specified Azure DevOps Server."
                    ),
                )
            })
    };
    match s.as_slice() {
        [_, "_apis", "projects"] => {
            let all: Vec<Value> = org.projects.iter().map(project_json).collect();
            paged(all, &q)
        }
        [_, "_apis", "projects", id] => match find_project(id) {
            Ok(p) => json_resp(StatusCode::OK, &project_json(p)),
            Err(e) => e,
        },
        [_, project, "_apis", "serviceendpoint", "endpoints", rest @ ..] => {
            let p = match find_project(project) {
                Ok(p) => p,
                Err(e) => return e,
            };
            match rest {
                [] => {
                    let names: Option<Vec<String>> = q
                        .get("endpointNames")
                        .map(|n| n.split(',').map(|x| x.trim().to_lowercase()).collect());
                    let value: Vec<Value> = p
                        .endpoints
                        .iter()
                        .filter(|e| {
                            names.as_ref().is_none_or(|n| {
                                n.contains(&e["name"].as_str().unwrap_or("").to_lowercase())
                            })
                        })
                        .filter(|e| q.get("type").is_none_or(|t| e["type"] == t.as_str()))
                        .cloned()
                        .collect();
                    json_resp(StatusCode::OK, &json!({"count": value.len(), "value": value}))
                }
                [id] => match p.endpoints.iter().find(|e| e["id"] == *id) {
                    Some(e) => json_resp(StatusCode::OK, e),
                    // An unknown id gets 200 with `null`, as Azure DevOps is reported to
                    // answer (not verified against the service).
                    None => json_resp(StatusCode::OK, &Value::Null),
                },
                _ => not_found(),
            }
        }
        [_, project, "_apis", "distributedtask", "variablegroups", rest @ ..] => {
            let p = match find_project(project) {
                Ok(p) => p,
                Err(e) => return e,
            };
            match rest {
                [] => {
                    let name = q.get("groupName").map(|n| n.to_lowercase());
                    let matching: Vec<Value> = p
                        .groups
                        .iter()
                        .filter(|g| {
                            name.as_ref().is_none_or(|n| {
                                wildcard(n, &g["name"].as_str().unwrap_or("").to_lowercase())
                            })
                        })
                        .cloned()
                        .collect();
                    paged(matching, &q)
                }
                [id] => {
                    match p.groups.iter().find(|g| id.parse::<u64>().is_ok_and(|n| g["id"] == n)) {
                        Some(g) => json_resp(StatusCode::OK, g),
                        None => ado_error(
                            StatusCode::NOT_FOUND,
                            "VariableGroupNotFoundException",
                            &format!("Variable group with id {id} does not exist."),
                        ),
                    }
                }
                _ => not_found(),
            }
        }
        _ => not_found(),
    }
}

fn not_found() -> Resp {
    ado_error(
        StatusCode::NOT_FOUND,
        "ApiResourceNotFoundException",
        "The requested REST API resource was not found on cloudsim's Azure DevOps.",
    )
}

/// `groupName` accepts `*` wildcards.
fn wildcard(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head) && {
                let rest = &text[head.len()..];
                (0..=rest.len()).any(|i| rest.is_char_boundary(i) && wildcard(tail, &rest[i..]))
            }
        }
    }
}

/// `$top` (default 100) and `continuationToken` (the offset); the next token goes in the
/// `x-ms-continuationtoken` header, as Azure DevOps does.
fn paged(all: Vec<Value>, q: &BTreeMap<String, String>) -> Resp {
    let top = q.get("$top").and_then(|t| t.parse::<usize>().ok()).filter(|t| *t > 0).unwrap_or(100);
    let start = q.get("continuationToken").and_then(|t| t.parse::<usize>().ok()).unwrap_or(0);
    let end = (start + top).min(all.len());
    let value: Vec<Value> = all.get(start..end).map(<[Value]>::to_vec).unwrap_or_default();
    let mut r = json_resp(StatusCode::OK, &json!({"count": value.len(), "value": value}));
    if end < all.len() {
        set_header(&mut r, "x-ms-continuationtoken", &end.to_string());
    }
    r
}
