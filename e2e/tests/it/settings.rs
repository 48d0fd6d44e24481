//! Settings: typed and validated, stored values win, changes reach a running worker, audited.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::harness::{Options, TestApp, error_code};

fn entry<'a>(list: &'a Value, key: &str) -> &'a Value {
    list.as_array().and_then(|l| l.iter().find(|e| e["key"] == key)).unwrap_or(&Value::Null)
}

/// Waits until `done` holds for the first in-process worker (the watcher runs every 2 s).
async fn until(app: &TestApp, done: impl Fn(&worker::WorkerState) -> bool) -> anyhow::Result<()> {
    let state = app.worker_states.first().context("a worker")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done(state) {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the worker never applied it");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn settings_are_typed_validated_and_listed_with_their_source() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let token = app.login().await?;

    let (status, all) = app.get(&token, "/api/settings/all").await?;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["licenseTier"], "STARTER");
    for group in [
        "performance",
        "features",
        "logging",
        "alertDefaults",
        "retention",
        "compliancePolicy",
        "automation",
    ] {
        assert!(all[group].as_array().is_some_and(|g| !g.is_empty()), "{group} missing: {all}");
    }
    let workers = entry(&all["performance"], "discoveryMaxWorkers");
    assert_eq!(workers["source"], "environment", "WORKER_CONCURRENCY is set: {workers}");
    assert_eq!(workers["value"], 4);

    for (body, field) in [
        (json!({"discoveryMaxWorkers": 0}), "discoveryMaxWorkers"),
        (json!({"discoveryScanTimeout": "soon"}), "discoveryScanTimeout"),
        (json!({"turbo": true}), "turbo"),
    ] {
        let (status, error) = app.put(&token, "/api/settings/performance", &body).await?;
        assert_eq!(status, 400, "{error}");
        assert_eq!(error_code(&error), "validation_error");
        assert!(error["detail"].as_str().unwrap_or_default().starts_with(field), "{error}");
    }
    let (status, error) = app
        .put(&token, "/api/settings/compliance-policy", &json!({"criticalExpiryDays": 40}))
        .await?;
    assert_eq!(status, 400, "critical must stay below warning: {error}");
    let (status, error) = app.get(&token, "/api/settings/nonsense").await?;
    assert_eq!(status, 400, "{error}");

    let (status, logging) =
        app.put(&token, "/api/settings/logging", &json!({"logLevel": "debug"})).await?;
    assert_eq!(status, 200, "{logging}");
    assert_eq!(entry(&logging, "logLevel")["value"], "DEBUG");
    assert_eq!(entry(&logging, "logLevel")["source"], "database");
    assert_eq!(entry(&logging, "logLevel")["updatedBy"], "admin");

    let (_, audit) = app.get(&token, "/audit/entries?event_type=settings.updated").await?;
    let details = &audit["items"][0]["details"];
    assert_eq!((details["old"].clone(), details["new"].clone()), (json!("INFO"), json!("DEBUG")));

    // A user without the admin role reads settings but cannot change them.
    let hash = api::auth::hash_password("a long enough password".into())
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    shared::db::users::insert_if_absent(&app.pool, "reader", &hash, "user").await?;
    let login: Value = app
        .http
        .post(format!("{}/auth/login", app.api_url))
        .json(&json!({"username": "reader", "password": "a long enough password"}))
        .send()
        .await?
        .json()
        .await?;
    let reader = login["access_token"].as_str().context("token")?;
    let (status, _) = app.get(reader, "/api/settings/logging").await?;
    assert_eq!(status, 200);
    let (status, error) =
        app.put(reader, "/api/settings/logging", &json!({"logLevel": "ERROR"})).await?;
    assert_eq!(status, 403, "{error}");
    assert_eq!(error_code(&error), "forbidden");
    app.finish().await
}

#[tokio::test]
async fn a_setting_changed_through_the_api_changes_a_running_worker_and_reset_restores_it()
-> anyhow::Result<()> {
    let scenario = json!({
        "tenantId": "11111111-2222-4333-8444-555555555555",
        "clientId": "22222222-3333-4444-8555-666666666666",
        "clientSecret": "settings-scenario-secret",
        "subscriptions": [{"subscriptionId": "33333333-4444-4555-8666-777777777777",
            "displayName": "One", "vaults": [{"name": "kv-slow", "resourceGroup": "rg",
            "secrets": [{"name": "s1", "expiresInDays": 100}]}]}]
    })
    .to_string();
    let app =
        TestApp::spawn_with(Options { scenario: Some(&scenario), ..Default::default() }).await?;
    let token = app.login().await?;
    let slow = json!({"target": "vault:kv-slow", "latencyMs": 2500});
    app.cloudsim.fault(&slow).await?;

    let (status, body) = app
        .put(
            &token,
            "/api/settings/performance",
            &json!({"discoveryScanTimeout": 1, "discoveryMaxWorkers": 2}),
        )
        .await?;
    assert_eq!(status, 200, "{body}");
    until(&app, |w| w.live.vault_timeout() == Duration::from_secs(1)).await?;
    until(&app, |w| w.live.limiter.size() == 2).await?;

    let status = app.scan_to_end(&token, &json!({})).await?;
    assert_eq!(status["errors"][0]["code"], "timeout", "the running worker used 1 s: {status}");

    let response = app
        .http
        .delete(format!("{}/api/settings/performance/discoveryScanTimeout", app.api_url))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    let reset: Value = response.json().await?;
    assert_eq!(reset["source"], "default", "{reset}");
    until(&app, |w| w.live.vault_timeout() == Duration::from_secs(300)).await?;

    let status = app.scan_to_end(&token, &json!({})).await?;
    assert_eq!(status["status"], "completed", "the slow vault now has time: {status}");
    app.finish().await
}
