//! Integration tests: run the real `cloudsim` binary and talk to it over HTTPS like an Azure
//! client would (Entra token endpoint, Resource Manager, Key Vault data plane, admin API).

mod dependencies;
mod harness;
mod kv_crates;
mod managed_identity;
mod python_sdk;

use anyhow::{Context, Result, ensure};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use harness::{Sim, jwt_part};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha1::Digest;

const VAULT_SCOPE: &str = "https://vault.azure.net/.default";
const ARM_SCOPE: &str = "https://management.azure.com//.default";
const KV_API: &str = "7.5";
const ARM_API: &str = "2023-07-01";

#[tokio::test]
async fn cloud_env_is_sourceable_and_names_the_running_simulator() -> Result<()> {
    let sim = Sim::start().await?;
    let text = std::fs::read_to_string(sim.dir.join("cloud.env"))?;
    for line in text.lines() {
        let (k, v) = line.split_once('=').context("line without =")?;
        ensure!(!k.is_empty() && !v.contains(' ') && !v.contains('"'), "bad line {line}");
    }
    for key in [
        "AZURE_CLOUD",
        "AZURE_TENANT_ID",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
        "AZURE_AUTHORITY_HOST",
        "AZURE_RESOURCE_MANAGER_ENDPOINT",
        "AZURE_RESOURCE_MANAGER_AUDIENCE",
        "AZURE_KEYVAULT_AUDIENCE",
        "AZURE_GRAPH_ENDPOINT",
        "AZURE_CA_BUNDLE",
        "CLOUDSIM_URL",
    ] {
        sim.env(key)?;
    }
    ensure!(sim.env("AZURE_CLOUD")? == "custom");
    ensure!(sim.env("CLOUDSIM_URL")? == sim.url);
    ensure!(sim.env("AZURE_AUTHORITY_HOST")? == format!("{}/", sim.url));
    ensure!(std::path::Path::new(sim.env("AZURE_CA_BUNDLE")?).is_absolute());
    Ok(())
}

#[tokio::test]
async fn a_client_with_the_right_secret_gets_an_rs256_token_for_the_requested_resource()
-> Result<()> {
    let sim = Sim::start().await?;
    let tenant = sim.env("AZURE_TENANT_ID")?.to_string();
    let (status, body) = sim
        .token_request(
            &tenant,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", sim.env("AZURE_CLIENT_ID")?),
                ("client_secret", sim.env("AZURE_CLIENT_SECRET")?),
                ("scope", VAULT_SCOPE),
            ],
        )
        .await?;
    ensure!(status == StatusCode::OK, "{status} {body}");
    ensure!(body["token_type"] == "Bearer");
    ensure!(body["expires_in"] == 3599 && body["ext_expires_in"] == 3599);
    let token = body["access_token"].as_str().context("no token")?;
    let header = jwt_part(token, 0)?;
    ensure!(header["alg"] == "RS256" && header["typ"] == "JWT", "{header}");
    let claims = jwt_part(token, 1)?;
    ensure!(claims["aud"] == "https://vault.azure.net", "{claims}");
    ensure!(claims["iss"] == format!("{}/{tenant}/v2.0", sim.url));
    ensure!(claims["tid"] == tenant.as_str());
    ensure!(claims["appid"] == sim.env("AZURE_CLIENT_ID")? && claims["azp"] == claims["appid"]);
    ensure!(claims["sub"] == claims["oid"] && claims["idtyp"] == "app" && claims["ver"] == "2.0");
    let exp = claims["exp"].as_i64().context("exp")?;
    let iat = claims["iat"].as_i64().context("iat")?;
    ensure!(exp - iat == 3600);
    let (_, _, jwks) = sim.get(&format!("/{tenant}/discovery/v2.0/keys"), None).await?;
    ensure!(jwks["keys"][0]["kid"] == header["kid"], "{jwks}");
    ensure!(jwks["keys"][0]["kty"] == "RSA" && jwks["keys"][0]["use"] == "sig");
    let n = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["n"].as_str().context("n")?)?;
    ensure!(n.len() == 256);
    let (status, _, oidc) =
        sim.get(&format!("/{tenant}/v2.0/.well-known/openid-configuration"), None).await?;
    ensure!(status == StatusCode::OK);
    ensure!(oidc["token_endpoint"] == format!("{}/{tenant}/oauth2/v2.0/token", sim.url));
    ensure!(oidc["issuer"] == claims["iss"]);
    ensure!(oidc["jwks_uri"] == format!("{}/{tenant}/discovery/v2.0/keys", sim.url));
    // The double-slash ARM scope keeps its trailing slash in the audience, as Entra does.
    let arm = sim.token(ARM_SCOPE).await?;
    ensure!(jwt_part(&arm, 1)?["aud"] == "https://management.azure.com/");
    Ok(())
}

#[tokio::test]
async fn a_wrong_client_secret_is_refused_with_aadsts7000215_in_entra_shape() -> Result<()> {
    let sim = Sim::start().await?;
    let (status, body) = sim
        .token_request(
            sim.env("AZURE_TENANT_ID")?,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", sim.env("AZURE_CLIENT_ID")?),
                ("client_secret", "not-the-secret"),
                ("scope", VAULT_SCOPE),
            ],
        )
        .await?;
    ensure!(status == StatusCode::UNAUTHORIZED, "{status}");
    ensure!(body["error"] == "invalid_client", "{body}");
    ensure!(body["error_codes"] == json!([7000215]));
    let desc = body["error_description"].as_str().context("description")?;
    ensure!(desc.starts_with("AADSTS7000215: Invalid client secret provided."), "{desc}");
    let trace = body["trace_id"].as_str().context("trace_id")?;
    let corr = body["correlation_id"].as_str().context("correlation_id")?;
    ensure!(desc.contains(&format!("Trace ID: {trace}")));
    ensure!(desc.contains(&format!("Correlation ID: {corr}")));
    ensure!(desc.contains("Timestamp: "));
    ensure!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
    ensure!(body["error_uri"] == format!("{}/error?code=7000215", sim.url));
    Ok(())
}

/// (tenant, form, expected status, expected error, expected AADSTS code)
type TokenCase<'a> = (String, Vec<(&'a str, &'a str)>, StatusCode, &'a str, u64);

#[tokio::test]
async fn unknown_clients_tenants_grants_and_scopes_get_their_aadsts_codes() -> Result<()> {
    let sim = Sim::start().await?;
    let tenant = sim.env("AZURE_TENANT_ID")?.to_string();
    let client = sim.env("AZURE_CLIENT_ID")?.to_string();
    let secret = sim.env("AZURE_CLIENT_SECRET")?.to_string();
    let cases: Vec<TokenCase> = vec![
        (
            tenant.clone(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", "00000000-0000-0000-0000-000000000001"),
                ("client_secret", &secret),
                ("scope", VAULT_SCOPE),
            ],
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
        ),
        (
            "11111111-2222-3333-4444-555555555555".into(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client),
                ("client_secret", &secret),
                ("scope", VAULT_SCOPE),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
        ),
        (
            tenant.clone(),
            vec![("grant_type", "password"), ("client_id", &client), ("scope", VAULT_SCOPE)],
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
        ),
        (
            tenant.clone(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client),
                ("client_secret", &secret),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
        ),
        (
            tenant.clone(),
            vec![
                ("grant_type", "client_credentials"),
                ("client_id", &client),
                ("client_secret", &secret),
                ("scope", "https://vault.azure.net/secrets.read"),
            ],
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
        ),
    ];
    for (t, form, want_status, want_error, want_code) in cases {
        let (status, body) = sim.token_request(&t, &form).await?;
        ensure!(status == want_status, "{form:?}: {status} {body}");
        ensure!(body["error"] == want_error, "{form:?}: {body}");
        ensure!(body["error_codes"] == json!([want_code]), "{form:?}: {body}");
        let desc = body["error_description"].as_str().context("description")?;
        ensure!(desc.starts_with(&format!("AADSTS{want_code}: ")), "{desc}");
    }
    Ok(())
}

#[tokio::test]
async fn arm_lists_subscriptions_and_pages_vaults_through_next_link() -> Result<()> {
    let sim = Sim::start().await?;
    let token = sim.token(ARM_SCOPE).await?;
    let (status, headers, subs) =
        sim.get("/subscriptions?api-version=2022-12-01", Some(&token)).await?;
    ensure!(status == StatusCode::OK, "{status} {subs}");
    ensure!(headers.contains_key("x-ms-request-id"));
    ensure!(headers.contains_key("x-ms-correlation-request-id"));
    ensure!(headers.contains_key("x-ms-ratelimit-remaining-subscription-reads"));
    let list = subs["value"].as_array().context("value")?;
    ensure!(list.len() >= 3 && subs["count"] == json!({"type": "Total", "value": list.len()}));
    for s in list {
        ensure!(
            s["id"] == format!("/subscriptions/{}", s["subscriptionId"].as_str().unwrap_or(""))
        );
        ensure!(s["tenantId"] == sim.env("AZURE_TENANT_ID")? && s["state"] == "Enabled");
        ensure!(s["authorizationSource"] == "RoleBased");
    }
    let mut total = 0;
    let mut paged = false;
    let mut first_vault = None;
    for s in list {
        let sub = s["subscriptionId"].as_str().context("id")?;
        let url = format!(
            "/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults?api-version={ARM_API}"
        );
        let pages = sim.pages(&url, &token).await?;
        paged |= pages.len() > 1;
        for p in &pages {
            let vaults = p["value"].as_array().context("value")?;
            ensure!(vaults.len() <= 4, "page larger than armPageSize");
            for v in vaults {
                ensure!(v["type"] == "Microsoft.KeyVault/vaults");
                let uri = v["properties"]["vaultUri"].as_str().context("vaultUri")?;
                ensure!(uri.starts_with("https://127.0.0.1:") && uri.ends_with('/'), "{uri}");
                first_vault.get_or_insert_with(|| v.clone());
            }
            total += vaults.len();
        }
    }
    ensure!(paged, "no subscription needed a second page");
    ensure!(total == 10, "found {total} vaults");
    let v = first_vault.context("no vault")?;
    let id = v["id"].as_str().context("id")?;
    let (status, _, got) = sim.get(&format!("{id}?api-version={ARM_API}"), Some(&token)).await?;
    ensure!(status == StatusCode::OK && got == v, "{status} {got}");
    // $top overrides the page size and survives into nextLink.
    let sub = list[0]["subscriptionId"].as_str().context("id")?;
    let url = format!(
        "/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults?api-version={ARM_API}&$top=2"
    );
    let pages = sim.pages(&url, &token).await?;
    ensure!(pages.iter().all(|p| p["value"].as_array().is_some_and(|a| a.len() <= 2)));
    ensure!(pages.len() >= 2);
    // Errors in ARM shape.
    let (status, _, body) = sim
        .get(
            &format!(
                "/subscriptions/{}/providers/Microsoft.KeyVault/vaults?api-version={ARM_API}",
                "99999999-9999-9999-9999-999999999999"
            ),
            Some(&token),
        )
        .await?;
    ensure!(status == StatusCode::NOT_FOUND && body["error"]["code"] == "SubscriptionNotFound");
    let (status, _, body) = sim.get("/subscriptions", Some(&token)).await?;
    ensure!(
        status == StatusCode::BAD_REQUEST && body["error"]["code"] == "MissingApiVersionParameter"
    );
    let (status, headers, body) = sim.get("/subscriptions?api-version=2022-12-01", None).await?;
    ensure!(status == StatusCode::UNAUTHORIZED && body["error"]["code"] == "AuthenticationFailed");
    ensure!(
        headers
            .get("www-authenticate")
            .is_some_and(|h| { h.to_str().unwrap_or("").starts_with("Bearer authorization_uri=") })
    );
    let vault_token = sim.token(VAULT_SCOPE).await?;
    let (status, _, body) =
        sim.get("/subscriptions?api-version=2022-12-01", Some(&vault_token)).await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED && body["error"]["code"] == "InvalidAuthenticationToken"
    );
    let (status, _, body) = sim
        .get(
            &format!(
                "/subscriptions/{sub}/resourceGroups/rg-payments-prod/providers/\
                 Microsoft.KeyVault/vaults/nope?api-version={ARM_API}"
            ),
            Some(&token),
        )
        .await?;
    ensure!(
        status == StatusCode::NOT_FOUND && body["error"]["code"] == "ResourceNotFound",
        "{body}"
    );
    Ok(())
}

#[tokio::test]
async fn key_vault_challenges_an_anonymous_request_with_the_authority_and_resource() -> Result<()> {
    let sim = Sim::start().await?;
    let vault = sim.vault_uri("kv-prod-web").await?;
    let resp = sim
        .http
        .get(format!("{vault}secrets?api-version={KV_API}"))
        .header("x-ms-client-request-id", "c0ffee00-0000-4000-8000-000000000001")
        .send()
        .await?;
    ensure!(resp.status() == StatusCode::UNAUTHORIZED);
    let h = resp.headers().clone();
    let want = format!(
        "Bearer authorization=\"{}/{}\", resource=\"https://vault.azure.net\"",
        sim.url,
        sim.env("AZURE_TENANT_ID")?
    );
    ensure!(h.get("www-authenticate").and_then(|v| v.to_str().ok()) == Some(want.as_str()));
    ensure!(
        h.get("x-ms-client-request-id").and_then(|v| v.to_str().ok())
            == Some("c0ffee00-0000-4000-8000-000000000001")
    );
    ensure!(h.contains_key("x-ms-request-id") && h.contains_key("x-ms-keyvault-service-version"));
    ensure!(
        h.get("x-ms-keyvault-network-info").and_then(|v| v.to_str().ok())
            == Some("conn_type=Ipv4;addr=127.0.0.1;act_addr_fam=InterNetwork;")
    );
    ensure!(
        h.get("content-type").and_then(|v| v.to_str().ok())
            == Some("application/json; charset=utf-8")
    );
    let body: Value = resp.json().await?;
    ensure!(
        body == json!({"error": {
            "code": "Unauthorized",
            "message": "AKV10000: Request is missing a Bearer or PoP token."
        }})
    );
    // A management token is refused too, and so is a bad api-version.
    let arm = sim.token(ARM_SCOPE).await?;
    let (status, _, body) =
        sim.get(&format!("{vault}secrets?api-version={KV_API}"), Some(&arm)).await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED && body["error"]["code"] == "Unauthorized",
        "{body}"
    );
    let token = sim.token(VAULT_SCOPE).await?;
    let (status, _, body) =
        sim.get(&format!("{vault}secrets?api-version=6.0"), Some(&token)).await?;
    ensure!(status == StatusCode::BAD_REQUEST && body["error"]["code"] == "BadParameter");
    let (status, _, body) = sim
        .get(&format!("{vault}secrets/does-not-exist?api-version={KV_API}"), Some(&token))
        .await?;
    ensure!(status == StatusCode::NOT_FOUND && body["error"]["code"] == "SecretNotFound", "{body}");
    Ok(())
}

#[tokio::test]
async fn secret_listing_pages_to_the_end_through_empty_pages() -> Result<()> {
    let sim = Sim::start().await?;
    let token = sim.token(VAULT_SCOPE).await?;
    let vaults = sim.vaults().await?;
    let v = vaults
        .iter()
        .find(|v| v["emptyPages"] == true && v["reachable"] == true)
        .context("no emptyPages vault")?;
    let uri = v["vaultUri"].as_str().context("uri")?;
    let pages =
        sim.pages(&format!("{uri}secrets?api-version={KV_API}&maxresults=5"), &token).await?;
    let empties =
        pages.iter().filter(|p| p["value"].as_array().is_some_and(|a| a.is_empty())).count();
    ensure!(empties >= 2, "expected interleaved empty pages, got {empties}");
    for p in &pages[..pages.len() - 1] {
        let next = p["nextLink"].as_str().context("nextLink")?;
        ensure!(
            next.starts_with(&format!("{uri}secrets?api-version={KV_API}&$skiptoken=")),
            "{next}"
        );
        ensure!(next.ends_with("&maxresults=5"));
    }
    ensure!(pages.last().is_some_and(|p| p["nextLink"].is_null()));
    let items: Vec<&Value> =
        pages.iter().flat_map(|p| p["value"].as_array().into_iter().flatten()).collect();
    let managed = items.iter().filter(|i| i["managed"] == true).count();
    let plain = items.len() - managed;
    ensure!(plain as u64 == v["counts"]["secrets"].as_u64().context("count")?);
    ensure!(managed as u64 == v["counts"]["certificates"].as_u64().context("count")?);
    let mut ids: Vec<&str> = items.iter().filter_map(|i| i["id"].as_str()).collect();
    ids.dedup();
    ensure!(ids.len() == items.len(), "duplicate items across pages");
    // A secret's value and versions.
    let name = items[0]["id"].as_str().context("id")?.rsplit('/').next().context("name")?;
    let version_pages =
        sim.pages(&format!("{uri}secrets/{name}/versions?api-version={KV_API}"), &token).await?;
    let versions: Vec<&Value> =
        version_pages.iter().flat_map(|p| p["value"].as_array().into_iter().flatten()).collect();
    ensure!(!versions.is_empty());
    let (status, _, got) =
        sim.get(&format!("{uri}secrets/{name}/?api-version={KV_API}"), Some(&token)).await?;
    if status == StatusCode::OK {
        ensure!(got["value"].as_str().is_some_and(|s| !s.is_empty()));
        let id = got["id"].as_str().context("id")?;
        ensure!(
            id.starts_with(&format!("{uri}secrets/{name}/"))
                && id.len() == format!("{uri}secrets/{name}/").len() + 32
        );
        ensure!(versions.iter().any(|x| x["id"] == id));
    }
    Ok(())
}

#[tokio::test]
async fn a_certificate_cer_hashes_to_its_x5t_and_links_its_key_and_secret() -> Result<()> {
    let sim = Sim::start().await?;
    let token = sim.token(VAULT_SCOPE).await?;
    let uri = sim.vault_uri("kv-prod-payments").await?;
    let pages = sim.pages(&format!("{uri}certificates?api-version={KV_API}"), &token).await?;
    let items: Vec<&Value> =
        pages.iter().flat_map(|p| p["value"].as_array().into_iter().flatten()).collect();
    ensure!(items.len() >= 5);
    for item in items {
        let id = item["id"].as_str().context("id")?;
        let (status, _, cert) =
            sim.get(&format!("{id}?api-version={KV_API}"), Some(&token)).await?;
        ensure!(status == StatusCode::OK, "{cert}");
        let der = STANDARD.decode(cert["cer"].as_str().context("cer")?)?;
        let x5t = URL_SAFE_NO_PAD.encode(sha1::Sha1::digest(&der));
        ensure!(cert["x5t"] == x5t && item["x5t"] == x5t, "x5t mismatch for {id}");
        let version =
            cert["id"].as_str().context("id")?.rsplit('/').next().context("v")?.to_string();
        let name = id.rsplit('/').next().context("name")?;
        ensure!(cert["kid"] == format!("{uri}keys/{name}/{version}"));
        ensure!(cert["sid"] == format!("{uri}secrets/{name}/{version}"));
        ensure!(cert["policy"]["id"] == format!("{uri}certificates/{name}/policy"));
        ensure!(cert["attributes"]["exp"].is_i64() && cert["attributes"]["nbf"].is_i64());
        let (status, _, key) =
            sim.get(&format!("{uri}keys/{name}?api-version={KV_API}"), Some(&token)).await?;
        ensure!(status == StatusCode::OK && key["managed"] == true, "{key}");
        ensure!(key["key"]["kid"] == cert["kid"]);
        let (status, _, policy) = sim
            .get(&format!("{uri}certificates/{name}/policy?api-version={KV_API}"), Some(&token))
            .await?;
        ensure!(status == StatusCode::OK && policy == cert["policy"]);
    }
    Ok(())
}

#[tokio::test]
async fn keys_carry_public_material_of_the_declared_size() -> Result<()> {
    let sim = Sim::start().await?;
    let token = sim.token(VAULT_SCOPE).await?;
    let uri = sim.vault_uri("kv-prod-payments").await?;
    let pages = sim.pages(&format!("{uri}keys?api-version={KV_API}"), &token).await?;
    let mut seen_rsa = false;
    let mut seen_ec = false;
    for item in pages.iter().flat_map(|p| p["value"].as_array().into_iter().flatten()) {
        let kid = item["kid"].as_str().context("kid")?;
        let (status, _, key) =
            sim.get(&format!("{kid}?api-version={KV_API}"), Some(&token)).await?;
        ensure!(status == StatusCode::OK);
        ensure!(key["attributes"]["exportable"] == false);
        let jwk = &key["key"];
        match jwk["kty"].as_str().context("kty")? {
            "RSA" | "RSA-HSM" => {
                let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().context("n")?)?;
                ensure!([256, 384, 512].contains(&n.len()) && n[0] & 0x80 != 0, "n {}", n.len());
                ensure!(jwk["e"] == "AQAB");
                seen_rsa = true;
            }
            "EC" | "EC-HSM" => {
                let size = match jwk["crv"].as_str().context("crv")? {
                    "P-256" => 32,
                    "P-384" => 48,
                    "P-521" => 66,
                    other => anyhow::bail!("curve {other}"),
                };
                ensure!(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().context("x")?)?.len() == size);
                ensure!(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().context("y")?)?.len() == size);
                seen_ec = true;
            }
            other => anyhow::bail!("kty {other}"),
        }
    }
    ensure!(seen_rsa && seen_ec);
    Ok(())
}

#[derive(Default, Debug, PartialEq)]
struct Tally {
    secrets: u64,
    keys: u64,
    certificates: u64,
    expired: u64,
    within7: u64,
    within30: u64,
    without: u64,
}

impl Tally {
    fn add_exp(&mut self, exp: Option<i64>, now: i64) {
        match exp {
            None => self.without += 1,
            Some(e) if e < now => self.expired += 1,
            Some(e) => {
                if e < now + 7 * 86_400 {
                    self.within7 += 1;
                }
                if e < now + 30 * 86_400 {
                    self.within30 += 1;
                }
            }
        }
    }
}

#[tokio::test]
async fn stats_totals_equal_what_paging_through_every_vault_finds() -> Result<()> {
    let sim = Sim::start().await?;
    let arm = sim.token(ARM_SCOPE).await?;
    let kv = sim.token(VAULT_SCOPE).await?;
    let now = chrono_now();
    let mut tally = Tally::default();
    let mut vault_count = 0;
    let mut forbidden = 0;
    let mut firewalled = 0;
    let (_, _, subs) = sim.get("/subscriptions?api-version=2022-12-01", Some(&arm)).await?;
    for s in subs["value"].as_array().context("subs")? {
        let sub = s["subscriptionId"].as_str().context("id")?;
        let pages = sim
            .pages(
                &format!(
                    "/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults?api-version={ARM_API}"
                ),
                &arm,
            )
            .await?;
        for v in pages.iter().flat_map(|p| p["value"].as_array().into_iter().flatten()) {
            vault_count += 1;
            if v["properties"]["publicNetworkAccess"] == "Disabled" {
                firewalled += 1;
            }
            let uri = v["properties"]["vaultUri"].as_str().context("uri")?;
            let (status, _, body) =
                sim.get(&format!("{uri}secrets?api-version={KV_API}"), Some(&kv)).await?;
            if status == StatusCode::FORBIDDEN {
                ensure!(body["error"]["innererror"]["code"] == "ForbiddenByFirewall", "{body}");
                ensure!(v["properties"]["publicNetworkAccess"] == "Disabled");
                forbidden += 1;
                continue;
            }
            for (coll, field) in [("secrets", 0), ("keys", 1), ("certificates", 2)] {
                let pages = sim.pages(&format!("{uri}{coll}?api-version={KV_API}"), &kv).await?;
                for item in pages.iter().flat_map(|p| p["value"].as_array().into_iter().flatten()) {
                    if item["managed"] == true {
                        continue;
                    }
                    match field {
                        0 => tally.secrets += 1,
                        1 => tally.keys += 1,
                        _ => tally.certificates += 1,
                    }
                    tally.add_exp(item["attributes"]["exp"].as_i64(), now);
                }
            }
        }
    }
    ensure!(forbidden == firewalled, "only firewalled vaults refuse the data plane");
    let (_, _, stats) = sim.get("/_sim/stats", None).await?;
    let want = Tally {
        secrets: stats["secrets"].as_u64().context("secrets")?,
        keys: stats["keys"].as_u64().context("keys")?,
        certificates: stats["certificates"].as_u64().context("certificates")?,
        expired: stats["expired"].as_u64().context("expired")?,
        within7: stats["expiringWithin7Days"].as_u64().context("7")?,
        within30: stats["expiringWithin30Days"].as_u64().context("30")?,
        without: stats["withoutExpiry"].as_u64().context("without")?,
    };
    ensure!(tally == want, "paged {tally:?} but stats say {want:?}");
    ensure!(
        stats["vaults"] == vault_count
            && stats["subscriptions"] == subs["value"].as_array().map(|a| a.len()).unwrap_or(0)
    );
    ensure!(tally.secrets + tally.keys + tally.certificates >= 300);
    ensure!(
        tally.expired > 0
            && tally.within7 > 0
            && tally.within30 > tally.within7
            && tally.without > 0
    );
    ensure!(tally.certificates >= 40);
    Ok(())
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[tokio::test]
async fn an_injected_429_is_answered_then_the_vault_recovers() -> Result<()> {
    let sim = Sim::start().await?;
    let token = sim.token(VAULT_SCOPE).await?;
    let uri = sim.vault_uri("kv-prod-web").await?;
    let resp = sim
        .http
        .post(format!("{}/_sim/faults", sim.url))
        .json(&json!({"target": "vault:kv-prod-web", "status": 429, "count": 2, "retryAfter": 1}))
        .send()
        .await?;
    ensure!(resp.status().is_success());
    let url = format!("{uri}secrets?api-version={KV_API}");
    for _ in 0..2 {
        let (status, headers, body) = sim.get(&url, Some(&token)).await?;
        ensure!(status == StatusCode::TOO_MANY_REQUESTS, "{status}");
        ensure!(body["error"]["code"] == "Throttled");
        ensure!(headers.get("retry-after").and_then(|v| v.to_str().ok()) == Some("1"));
    }
    let (status, _, _) = sim.get(&url, Some(&token)).await?;
    ensure!(status == StatusCode::OK);
    // A 503 on ARM without retryAfter carries no Retry-After header, and clears on DELETE.
    let arm = sim.token(ARM_SCOPE).await?;
    sim.http
        .post(format!("{}/_sim/faults", sim.url))
        .json(&json!({"target": "arm", "status": 503, "count": 5}))
        .send()
        .await?
        .error_for_status()?;
    let (status, headers, body) =
        sim.get("/subscriptions?api-version=2022-12-01", Some(&arm)).await?;
    ensure!(status == StatusCode::SERVICE_UNAVAILABLE && !headers.contains_key("retry-after"));
    ensure!(body["error"]["code"] == "ServiceUnavailable");
    sim.http.delete(format!("{}/_sim/faults", sim.url)).send().await?.error_for_status()?;
    let (status, _, _) = sim.get("/subscriptions?api-version=2022-12-01", Some(&arm)).await?;
    ensure!(status == StatusCode::OK);
    let (_, _, counters) = sim.get("/_sim/requests", None).await?;
    ensure!(counters["vault:kv-prod-web"]["429"] == 2, "{counters}");
    ensure!(counters["vault:kv-prod-web"]["200"] == 1, "{counters}");
    ensure!(counters["arm"]["503"] == 1 && counters["arm"]["200"] == 1, "{counters}");
    ensure!(counters["token"]["200"] == 2, "{counters}");
    Ok(())
}

#[tokio::test]
async fn a_restart_with_the_same_state_dir_keeps_the_ca_and_signing_key() -> Result<()> {
    let dir = harness::temp_dir();
    let keep = harness::temp_dir();
    let first = Sim::start_in(dir.clone(), &[]).await?;
    let ca1 = std::fs::read(first.dir.join("ca.pem"))?;
    let key1 = std::fs::read(first.dir.join("token-key.pem"))?;
    let token = first.token(VAULT_SCOPE).await?;
    std::fs::create_dir_all(&keep)?;
    for f in ["ca.pem", "ca-key.pem", "token-key.pem", "leaf-key.pem"] {
        std::fs::copy(first.dir.join(f), keep.join(f))?;
    }
    drop(first);
    let second = Sim::start_in(keep, &[]).await?;
    ensure!(std::fs::read(second.dir.join("ca.pem"))? == ca1);
    ensure!(std::fs::read(second.dir.join("token-key.pem"))? == key1);
    // Same signing key, so the key id is stable; a fresh token works against the new vaults.
    let fresh = second.token(VAULT_SCOPE).await?;
    let uri = second.vault_uri("kv-prod-web").await?;
    let (status, _, _) =
        second.get(&format!("{uri}keys?api-version={KV_API}"), Some(&fresh)).await?;
    ensure!(status == StatusCode::OK);
    ensure!(jwt_part(&token, 0)?["kid"] == jwt_part(&fresh, 0)?["kid"]);
    Ok(())
}

#[tokio::test]
async fn a_generate_block_builds_a_tenant_of_the_requested_size() -> Result<()> {
    let file = harness::temp_dir().with_extension("json");
    std::fs::write(
        &file,
        json!({
            "armPageSize": 2,
            "generate": {
                "subscriptions": 2,
                "vaultsPerSubscription": 3,
                "secretsPerVault": 5,
                "keysPerVault": 2,
                "certificatesPerVault": 1,
                "seed": 7
            }
        })
        .to_string(),
    )?;
    let path = file.to_string_lossy().to_string();
    let sim = Sim::start_with(&["--scenario", &path]).await?;
    let (_, _, stats) = sim.get("/_sim/stats", None).await?;
    std::fs::remove_file(&file)?;
    ensure!(stats["subscriptions"] == 2 && stats["vaults"] == 6, "{stats}");
    ensure!(stats["secrets"] == 30 && stats["keys"] == 12 && stats["certificates"] == 6, "{stats}");
    let arm = sim.token(ARM_SCOPE).await?;
    let (_, _, subs) = sim.get("/subscriptions?api-version=2022-12-01", Some(&arm)).await?;
    let sub = subs["value"][0]["subscriptionId"].as_str().context("sub")?;
    let pages = sim
        .pages(
            &format!(
                "/subscriptions/{sub}/providers/Microsoft.KeyVault/vaults?api-version={ARM_API}"
            ),
            &arm,
        )
        .await?;
    ensure!(pages.len() == 2, "3 vaults with armPageSize 2 should take 2 pages");
    Ok(())
}

#[tokio::test]
async fn cloudsim_generate_writes_a_scenario_that_serves_the_requested_size() -> Result<()> {
    let dir = harness::temp_dir();
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("generated.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_cloudsim"))
        .args(["generate", "--vaults", "6", "--items-per-vault", "20", "--seed", "9", "--out"])
        .arg(&file)
        .status()?;
    ensure!(status.success(), "cloudsim generate failed: {status}");
    let scenario: Value = serde_json::from_str(&std::fs::read_to_string(&file)?)?;
    ensure!(scenario["generate"]["secretsPerVault"] == 15, "{scenario}");
    let path = file.to_string_lossy().to_string();
    let sim = Sim::start_with(&["--scenario", &path]).await?;
    let (_, _, stats) = sim.get("/_sim/stats", None).await?;
    ensure!(stats["vaults"] == 6 && stats["secrets"] == 90, "{stats}");
    ensure!(stats["keys"] == 24 && stats["certificates"] == 6, "{stats}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
