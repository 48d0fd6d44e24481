//! Authentication: every guarded route refuses a missing, tampered, expired or revoked token.

use anyhow::Context;
use api::routes::{Access, ROUTES};
use serde_json::json;

use crate::harness::{TestApp, error_code};

fn concrete(path: &str) -> String {
    path.replace("{scan_id}", "6f1c0f8e-0000-4000-8000-000000000001")
        .replace("{asset_id}", "6f1c0f8e-0000-4000-8000-000000000002")
        .replace("{subscription_id}", "6f1c0f8e-0000-4000-8000-000000000003")
        .replace("{category}", "performance")
        .replace("{key}", "discoveryMaxWorkers")
        .replace("{history_type}", "audit")
        .replace("{user_id}", "6f1c0f8e-0000-4000-8000-000000000004")
        .replace("{framework_id}", "cis-kv")
}

/// A request of the route table's method, with an empty JSON body where one is expected.
fn request_for(app: &TestApp, method: &str, url: &str) -> anyhow::Result<reqwest::RequestBuilder> {
    Ok(match method {
        "GET" => app.http.get(url),
        "POST" => app.http.post(url).json(&json!({})),
        "PUT" => app.http.put(url).json(&json!({})),
        "DELETE" => app.http.delete(url),
        other => anyhow::bail!("unexpected method {other}"),
    })
}

#[tokio::test]
async fn every_guarded_route_answers_401_without_a_token() -> anyhow::Result<()> {
    let app =
        TestApp::spawn_with(crate::harness::Options { without_worker: true, ..Default::default() })
            .await?;
    let mut guarded = 0;
    for (method, path, access) in ROUTES {
        if *access == Access::Public {
            continue;
        }
        let url = format!("{}{}", app.api_url, concrete(path));
        let request = request_for(&app, method, &url)?;
        let response = request.send().await?;
        assert_eq!(response.status(), 401, "{method} {path}");
        let body: serde_json::Value = response.json().await?;
        assert_eq!(error_code(&body), "unauthorized", "{method} {path}");
        guarded += 1;
    }
    assert!(guarded >= 10, "the route table lists {guarded} guarded routes");

    // A user without the admin role is refused every admin route.
    let hash = api::auth::hash_password("a long enough password".into())
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    shared::db::users::insert_if_absent(&app.pool, "reader", &hash, "user").await?;
    let login: serde_json::Value = app
        .http
        .post(format!("{}/auth/login", app.api_url))
        .json(&json!({"username": "reader", "password": "a long enough password"}))
        .send()
        .await?
        .json()
        .await?;
    let reader = login["access_token"].as_str().context("token")?;
    let mut admin_only = 0;
    for (method, path, access) in ROUTES {
        if *access != Access::Admin {
            continue;
        }
        let url = format!("{}{}", app.api_url, concrete(path));
        let request = request_for(&app, method, &url)?;
        let response = request.bearer_auth(reader).send().await?;
        assert_eq!(response.status(), 403, "{method} {path} as a user");
        admin_only += 1;
    }
    assert!(admin_only >= 8, "{admin_only} admin routes");

    let (status, health) = app.get("", "/health").await?;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["database"]["status"], "ok");
    assert_eq!(health["redis"]["status"], "ok");
    app.finish().await
}

#[tokio::test]
async fn a_tampered_or_expired_or_revoked_token_is_refused() -> anyhow::Result<()> {
    let app =
        TestApp::spawn_with(crate::harness::Options { without_worker: true, ..Default::default() })
            .await?;
    let token = app.login().await?;
    let (status, me) = app.get(&token, "/auth/me").await?;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "admin");
    assert_eq!(me["role"], "admin");

    // Flip one character of the signature.
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 2;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let (status, body) = app.get(&String::from_utf8(tampered)?, "/auth/me").await?;
    assert_eq!(status, 401, "{body}");
    assert_eq!(error_code(&body), "unauthorized");

    // A token signed with the right key but already expired.
    let claims = json!({
        "sub": me["id"], "name": "admin", "role": "admin",
        "jti": "6f1c0f8e-0000-4000-8000-000000000003",
        "iat": chrono::Utc::now().timestamp() - 7200,
        "exp": chrono::Utc::now().timestamp() - 3600,
    });
    let key = jsonwebtoken::EncodingKey::from_secret(app.config.jwt_secret.expose().as_bytes())?;
    let expired = jsonwebtoken::encode(&jsonwebtoken::Header::default(), &claims, &key)?;
    let (status, body) = app.get(&expired, "/auth/me").await?;
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].as_str().context("detail")?.contains("expired"), "{body}");

    // A wrong password is refused with the same shape.
    let response = app
        .http
        .post(format!("{}/auth/login", app.api_url))
        .json(&json!({"username": "admin", "password": "wrong"}))
        .send()
        .await?;
    assert_eq!(response.status(), 401);

    // Logout revokes the token.
    let response =
        app.http.post(format!("{}/auth/logout", app.api_url)).bearer_auth(&token).send().await?;
    assert_eq!(response.status(), 204);
    let (status, body) = app.get(&token, "/auth/me").await?;
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].as_str().context("detail")?.contains("revoked"), "{body}");

    app.finish().await
}

#[tokio::test]
async fn identity_reports_the_service_principal_cloudsim_issued() -> anyhow::Result<()> {
    let app =
        TestApp::spawn_with(crate::harness::Options { without_worker: true, ..Default::default() })
            .await?;
    let token = app.login().await?;
    let (status, identity) = app.get(&token, "/identity").await?;
    assert_eq!(status, 200, "{identity}");
    assert_eq!(
        identity["tenantId"].as_str(),
        app.cloudsim.env.get("AZURE_TENANT_ID").map(String::as_str)
    );
    assert_eq!(
        identity["applicationId"].as_str(),
        app.cloudsim.env.get("AZURE_CLIENT_ID").map(String::as_str)
    );
    assert_eq!(identity["identityType"], "app");
    assert!(identity["objectId"].is_string(), "{identity}");
    app.finish().await
}
