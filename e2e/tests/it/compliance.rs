//! Compliance: a scan is followed by an evaluation whose score matches a count made here from
//! the inventory; violations resolve when their cause goes away, and history is kept.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::harness::{Options, TestApp};

fn scenario() -> String {
    json!({
        "tenantId": "11111111-2222-4333-8444-555555555555",
        "clientId": "22222222-3333-4444-8555-666666666666",
        "clientSecret": "compliance-scenario-secret",
        "subscriptions": [{"subscriptionId": "33333333-4444-4555-8666-777777777777",
            "displayName": "One", "vaults": [
                {"name": "kv-strict", "resourceGroup": "rg", "rbac": true, "purgeProtection": true,
                 "publicNetworkAccess": "Enabled",
                 "secrets": [{"name": "db-password", "expiresInDays": 3},
                             {"name": "api-key"}]},
                {"name": "kv-loose", "resourceGroup": "rg", "rbac": false,
                 "secrets": [{"name": "old-token", "expiresInDays": 200}]}
            ]}]
    })
    .to_string()
}

/// Waits for an evaluation newer than `after`.
async fn evaluated_after(app: &TestApp, token: &str, after: &Value) -> anyhow::Result<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, score) = app.get(token, "/compliance/score").await?;
        if !score["evaluatedAt"].is_null() && &score["evaluatedAt"] != after {
            return Ok(score);
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no evaluation ran: {score}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_scan_is_scored_and_violations_resolve_when_fixed() -> anyhow::Result<()> {
    let scenario = scenario();
    let app =
        TestApp::spawn_with(Options { scenario: Some(&scenario), ..Default::default() }).await?;
    let token = app.login().await?;
    app.scan_to_end(&token, &json!({})).await?;
    let score = evaluated_after(&app, &token, &Value::Null).await?;

    // Count the expected checks from the inventory the API serves.
    let (_, vaults) = app.get(&token, "/api/assets/discovery/vaults").await?;
    let vaults = vaults["items"].as_array().context("vaults")?.clone();
    let vault_failures: i64 = vaults
        .iter()
        .map(|v| {
            i64::from(v["softDeleteEnabled"] != true)
                + i64::from(v["purgeProtection"] != true)
                + i64::from(v["rbacEnabled"] != true)
                + i64::from(v["publicNetworkAccess"] != "Disabled")
        })
        .sum();
    let (_, secrets) = app.get(&token, "/api/assets/discovery/assets?type=secret").await?;
    let secrets = secrets["items"].as_array().context("secrets")?.clone();
    let n = secrets.len() as i64;
    let no_expiry = secrets.iter().filter(|s| s["expiresOn"].is_null()).count() as i64;
    let critical = secrets.iter().filter(|s| s["status"] == "critical").count() as i64;
    let warning = secrets.iter().filter(|s| s["status"] == "warning").count() as i64;
    // 4 vault rules per vault; expiry set, expired, critical and warning windows per secret.
    let expected_total = 4 * vaults.len() as i64 + 4 * n;
    let expected_failed = vault_failures + no_expiry + critical + warning;
    assert_eq!(score["total"].as_i64(), Some(expected_total), "{score}");
    assert_eq!(score["failed"].as_i64(), Some(expected_failed), "{score}");
    assert_eq!(score["passed"].as_i64(), Some(expected_total - expected_failed));
    let expected_score =
        ((expected_total - expected_failed) as f64 * 1000.0 / expected_total as f64).round() / 10.0;
    assert_eq!(score["score"].as_f64(), Some(expected_score));
    assert_eq!(
        score["bySeverity"]["high"].as_i64(),
        Some(critical + vaults.iter().filter(|v| v["softDeleteEnabled"] != true).count() as i64),
        "{score}"
    );

    let (_, open) = app.get(&token, "/compliance/violations?severity=high").await?;
    let item = open["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|v| v["ruleId"] == "KV-EXPIRING-CRITICAL")
        .cloned()
        .context("the critical secret")?;
    assert_eq!(item["targetName"], "db-password");
    assert_eq!(item["vaultName"], "kv-strict");
    assert!(item["remedy"].as_str().is_some_and(|r| !r.is_empty()));
    let (code, body) = app.get(&token, "/compliance/violations?framework=bogus").await?;
    assert_eq!(code, 400, "{body}");
    let (_, cis) = app.get(&token, "/compliance/violations?framework=cis-kv").await?;
    assert!(
        cis["items"]
            .as_array()
            .context("items")?
            .iter()
            .all(|v| v["ruleId"] != "KV-EXPIRING-CRITICAL"),
        "not a CIS control: {cis}"
    );

    let (_, frameworks) = app.get(&token, "/compliance/frameworks").await?;
    assert_eq!(frameworks["total"], 7, "{frameworks}");
    let (_, detail) = app.get(&token, "/compliance/frameworks/cis-kv").await?;
    let cis5 = detail["controls"]
        .as_array()
        .context("controls")?
        .iter()
        .find(|c| c["id"] == "CIS-KV-5")
        .cloned()
        .context("CIS-KV-5")?;
    assert_eq!(cis5["failed"].as_i64(), Some(no_expiry), "{cis5}");
    let cis4 = detail["controls"]
        .as_array()
        .context("controls")?
        .iter()
        .find(|c| c["id"] == "CIS-KV-4")
        .cloned()
        .context("CIS-KV-4")?;
    assert_eq!(cis4["evidence"], "none", "diagnostic logs are the customer's to show");

    // Fix the cause in Azure: the next scan's evaluation resolves the violation.
    let url = format!("{}/_sim/vaults/kv-strict/secrets/db-password", app.cloudsim.url);
    let fixed = app.cloudsim.http.patch(url).json(&json!({"expiresInDays": 200})).send().await?;
    assert!(fixed.status().is_success());
    app.scan_to_end(&token, &json!({"mode": "delta"})).await?;
    let after = evaluated_after(&app, &token, &score["evaluatedAt"]).await?;
    assert_eq!(after["failed"].as_i64(), Some(expected_failed - 1), "{after}");
    let (_, open) = app.get(&token, "/compliance/violations").await?;
    assert!(
        open["items"]
            .as_array()
            .context("items")?
            .iter()
            .all(|v| v["ruleId"] != "KV-EXPIRING-CRITICAL"),
        "{open}"
    );
    let resolved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM compliance_violations WHERE rule_id = 'KV-EXPIRING-CRITICAL' \
         AND resolved_at IS NOT NULL",
    )
    .fetch_one(&app.pool)
    .await?;
    assert_eq!(resolved, 1, "the resolved violation is kept as history");

    let (code, job) = app.post(&token, "/compliance/evaluate", &json!({})).await?;
    assert_eq!(code, 202, "{job}");
    assert!(job["jobId"].is_string());
    evaluated_after(&app, &token, &after["evaluatedAt"]).await?;
    app.finish().await
}
