//! Users, roles, lockout, rate limits and licence tiers.

use anyhow::Context;
use serde_json::{Value, json};
use shared::licence::{self, Licence, Limits, Tier};

use crate::harness::{Options, TestApp, error_code};

pub(crate) fn pro_licence(days: i64) -> anyhow::Result<String> {
    let key = licence::test_key().map_err(anyhow::Error::msg)?;
    let now = chrono::Utc::now();
    let licence = Licence {
        licensee: "Contoso Security".into(),
        tier: Tier::Pro,
        issued_at: now,
        expires_at: now + chrono::Duration::days(days),
        limits: Limits { subscriptions: 50, users: 10, manual_rotations_per_month: 100 },
    };
    licence::issue(&key, &licence).map_err(anyhow::Error::msg)
}

#[tokio::test]
async fn starter_refuses_pro_features_and_a_pro_licence_allows_them() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let token = app.login().await?;
    let status: Value =
        app.http.get(format!("{}/system/license/status", app.api_url)).send().await?.json().await?;
    assert_eq!((status["tier"].clone(), status["valid"].clone()), (json!("STARTER"), json!(false)));
    assert_eq!(status["limits"]["subscriptions"], 4);

    let new_user = json!({"username": "analyst", "password": "a river of quiet stones"});
    let (code, body) = app.post(&token, "/auth/users", &new_user).await?;
    assert_eq!(code, 403, "{body}");
    assert_eq!(error_code(&body), "license_required");
    assert!(body["detail"].as_str().unwrap_or_default().contains("PRO"), "{body}");
    for i in 0..4 {
        let sub = json!({"subscriptionId": format!("0f0f0f0f-1111-4222-8333-44444444444{i}")});
        let (code, body) = app.post(&token, "/subscriptions", &sub).await?;
        assert_eq!(code, 201, "{body}");
    }
    let fifth = json!({"subscriptionId": "0f0f0f0f-1111-4222-8333-444444444449"});
    let (code, body) = app.post(&token, "/subscriptions", &fifth).await?;
    assert_eq!(code, 403, "the fifth subscription on STARTER: {body}");
    assert_eq!(error_code(&body), "license_required");
    app.finish().await?;

    let pro = TestApp::spawn_with(Options {
        without_worker: true,
        extra_env: vec![("CERTIFYCLOUDS_LICENSE_KEY", pro_licence(30)?)],
        ..Default::default()
    })
    .await?;
    let token = pro.login().await?;
    let status: Value =
        pro.http.get(format!("{}/system/license/status", pro.api_url)).send().await?.json().await?;
    assert_eq!((status["tier"].clone(), status["valid"].clone()), (json!("PRO"), json!(true)));
    assert_eq!(status["licensee"], "Contoso Security");
    for i in 0..5 {
        let sub = json!({"subscriptionId": format!("0f0f0f0f-1111-4222-8333-44444444444{i}")});
        let (code, body) = pro.post(&token, "/subscriptions", &sub).await?;
        assert_eq!(code, 201, "{body}");
    }
    let (code, body) = pro.post(&token, "/auth/users", &new_user).await?;
    assert_eq!(code, 201, "{body}");
    assert!(body.get("passwordHash").is_none() && !body.to_string().contains("argon2"));
    pro.finish().await?;

    // An altered licence and an expired one are reported invalid and fall back to STARTER.
    let mut forged = pro_licence(30)?;
    forged.insert(3, 'x');
    for token in [forged, pro_licence(-1)?] {
        let app = TestApp::spawn_with(Options {
            without_worker: true,
            extra_env: vec![("CERTIFYCLOUDS_LICENSE_KEY", token)],
            ..Default::default()
        })
        .await?;
        let status: Value = app
            .http
            .get(format!("{}/system/license/status", app.api_url))
            .send()
            .await?
            .json()
            .await?;
        assert_eq!(
            (status["tier"].clone(), status["valid"].clone()),
            (json!("STARTER"), json!(false))
        );
        assert!(status["reason"].is_string(), "{status}");
        app.finish().await?;
    }
    Ok(())
}

#[tokio::test]
async fn roles_are_enforced_and_role_or_password_changes_revoke_tokens() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options {
        without_worker: true,
        extra_env: vec![("CERTIFYCLOUDS_LICENSE_KEY", pro_licence(30)?)],
        ..Default::default()
    })
    .await?;
    let admin = app.login().await?;
    let (_, me) = app.get(&admin, "/auth/me").await?;
    let admin_id = me["id"].as_str().context("id")?.to_owned();

    for (body, field) in [
        (json!({"username": "ana", "password": "short"}), "password"),
        (json!({"username": "ana", "password": "password12345"}), "password"),
        (json!({"username": "a", "password": "a river of quiet stones"}), "username"),
        (json!({"username": "ana", "password": "a river of quiet stones", "role": "root"}), "role"),
    ] {
        let (code, error) = app.post(&admin, "/auth/users", &body).await?;
        assert_eq!(code, 400, "{error}");
        assert!(error["detail"].as_str().unwrap_or_default().starts_with(field), "{error}");
    }
    let (code, ana) = app.post(&admin, "/auth/users",
        &json!({"username": "ana", "email": "ana@contoso.com", "password": "a river of quiet stones"})).await?;
    assert_eq!(code, 201, "{ana}");
    let ana_id = ana["id"].as_str().context("id")?.to_owned();
    let (code, _) = app
        .post(&admin, "/auth/users", &json!({"username": "ANA", "password": "another quiet river"}))
        .await?;
    assert_eq!(code, 409, "usernames are unique, ignoring case");

    let (_, login) = app.login_as("ana", "a river of quiet stones").await?;
    let ana_token = login["access_token"].as_str().context("token")?.to_owned();
    let (code, _) = app.get(&ana_token, "/api/assets/discovery/assets").await?;
    assert_eq!(code, 200, "a user reads the inventory");
    for (method, path) in [
        (reqwest::Method::GET, "/auth/users".to_owned()),
        (reqwest::Method::DELETE, format!("/auth/users/{admin_id}")),
    ] {
        let (code, body) = app.send(method, &ana_token, &path, None).await?;
        assert_eq!(code, 403, "{path}: {body}");
    }

    // Promote ana: her old token (issued as a user) is revoked; a new login works as admin.
    let (code, body) = app
        .send(
            reqwest::Method::PUT,
            &admin,
            &format!("/auth/users/{ana_id}"),
            Some(&json!({"role": "admin"})),
        )
        .await?;
    assert_eq!(code, 200, "{body}");
    let (code, _) = app.get(&ana_token, "/auth/me").await?;
    assert_eq!(code, 401, "a role change revokes live tokens");
    let (_, login) = app.login_as("ana", "a river of quiet stones").await?;
    let ana_admin = login["access_token"].as_str().context("token")?.to_owned();
    let (code, _) = app.get(&ana_admin, "/auth/users").await?;
    assert_eq!(code, 200);

    // Nobody changes their own role; the last admin stays.
    let (code, body) = app
        .send(
            reqwest::Method::PUT,
            &ana_admin,
            &format!("/auth/users/{ana_id}"),
            Some(&json!({"role": "user"})),
        )
        .await?;
    assert_eq!(code, 403, "{body}");
    let (code, _) =
        app.send(reqwest::Method::DELETE, &admin, &format!("/auth/users/{ana_id}"), None).await?;
    assert_eq!(code, 204);
    let (code, _) = app.get(&ana_admin, "/auth/me").await?;
    assert_eq!(code, 401, "a deleted user's token is refused");
    let (code, body) =
        app.send(reqwest::Method::DELETE, &admin, &format!("/auth/users/{admin_id}"), None).await?;
    assert_eq!(code, 409, "{body}");
    assert_eq!(error_code(&body), "last_admin");

    // A new password revokes the old tokens.
    let (code, _) = app
        .send(
            reqwest::Method::PUT,
            &admin,
            &format!("/auth/users/{admin_id}"),
            Some(&json!({"password": "an entirely new passphrase"})),
        )
        .await?;
    assert_eq!(code, 200);
    let (code, _) = app.get(&admin, "/auth/me").await?;
    assert_eq!(code, 401);
    let (code, _) = app.login_as("admin", "an entirely new passphrase").await?;
    assert_eq!(code, 200);

    let (_, admin2) = app.login_as("admin", "an entirely new passphrase").await?;
    let admin2 = admin2["access_token"].as_str().context("token")?.to_owned();
    let (_, audit) = app.get(&admin2, "/audit/entries?event_type=user&limit=100").await?;
    let kinds: Vec<&str> = audit["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|e| e["eventType"].as_str())
        .collect();
    for kind in ["user.created", "user.updated", "user.deleted"] {
        assert!(kinds.contains(&kind), "{kind} missing: {kinds:?}");
    }
    app.finish().await
}

#[tokio::test]
async fn repeated_failures_lock_an_account_without_saying_so_until_an_admin_unlocks_it()
-> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options {
        without_worker: true,
        extra_env: vec![
            ("CERTIFYCLOUDS_LICENSE_KEY", pro_licence(30)?),
            ("LOCKOUT_THRESHOLD", "3".to_owned()),
        ],
        ..Default::default()
    })
    .await?;
    let admin = app.login().await?;
    let (_, bob) = app
        .post(
            &admin,
            "/auth/users",
            &json!({"username": "bob", "password": "bob's long passphrase"}),
        )
        .await?;
    let bob_id = bob["id"].as_str().context("id")?.to_owned();

    let (_, wrong) = app.login_as("bob", "not it at all").await?;
    for _ in 0..2 {
        app.login_as("bob", "not it at all").await?;
    }
    let (code, locked) = app.login_as("bob", "bob's long passphrase").await?;
    assert_eq!(code, 401, "the right password is refused while locked");
    assert_eq!(locked, wrong, "a locked account answers like a wrong password");
    let (_, unknown) = app.login_as("nobody-here", "whatever it is").await?;
    assert_eq!(unknown, wrong, "an unknown account answers the same too");

    let (_, users) = app.get(&admin, "/auth/users").await?;
    let listed =
        users.as_array().context("users")?.iter().find(|u| u["username"] == "bob").cloned();
    assert_eq!(listed.context("bob")?["locked"], true);
    let (_, audit) = app.get(&admin, "/audit/entries?event_type=auth.lockout").await?;
    assert_eq!(audit["total"], 1, "{audit}");

    let (code, _) = app.post(&admin, &format!("/auth/users/{bob_id}/unlock"), &json!({})).await?;
    assert_eq!(code, 200);
    let (code, _) = app.login_as("bob", "bob's long passphrase").await?;
    assert_eq!(code, 200, "unlocked");
    app.finish().await
}

#[tokio::test]
async fn logins_beyond_the_rate_limit_get_429_with_retry_after() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options {
        without_worker: true,
        extra_env: vec![("LOGIN_RATE_LIMIT_PER_MINUTE", "3".to_owned())],
        ..Default::default()
    })
    .await?;
    let mut last = None;
    for _ in 0..4 {
        let response = app
            .http
            .post(format!("{}/auth/login", app.api_url))
            .json(&json!({"username": "admin", "password": "wrong guess"}))
            .send()
            .await?;
        last = Some(response);
    }
    let response = last.context("a response")?;
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&retry), "{retry}");
    let body: Value = response.json().await?;
    assert_eq!(error_code(&body), "rate_limited");
    let (code, _) = app.get("", "/health").await?;
    assert_eq!(code, 200, "health is never rate limited");
    app.finish().await
}
