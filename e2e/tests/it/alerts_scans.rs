//! Scan-level alerts: `vault_error` names each vault a scan could not read, and
//! `scan_completed` reports every finished scan, including one of a tenant without vaults.

use serde_json::json;

use crate::alerts::create_rule;
use crate::harness::{Options, TestApp};

#[tokio::test]
async fn scan_reports_and_vault_errors_reach_their_rules_even_for_an_empty_tenant()
-> anyhow::Result<()> {
    let hooks = crate::peers::Receiver::start().await?;
    let scenario = crate::scan::locked_vault_scenario();
    let app =
        TestApp::spawn_with(Options { scenario: Some(&scenario), ..Options::default() }).await?;
    let token = app.login().await?;
    for (name, alert_type, path) in
        [("errors", "vault_error", "/errors"), ("report", "scan_completed", "/report")]
    {
        create_rule(
            &app,
            &token,
            &json!({"name": name, "alertType": alert_type,
                "deliveryMethod": "slack", "webhookUrl": format!("{}{path}", hooks.url)}),
        )
        .await?;
    }
    let scan = app.scan_to_end(&token, &json!({})).await?;
    assert_eq!(scan["status"], "completed_with_errors");
    let errors = hooks.wait_for("/errors", 1).await?;
    let text =
        errors[0].json()["blocks"][2]["text"]["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains("kv-firewalled") && text.contains("ForbiddenByFirewall"), "{text}");
    let report = hooks.wait_for("/report", 1).await?;
    let text =
        report[0].json()["blocks"][2]["text"]["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains("completed_with_errors"), "{text}");
    app.finish().await?;

    // A tenant without vaults: the scan ends at discovery, and its report still goes out.
    let empty = json!({"tenantId": "11111111-2222-4333-8444-555555555555",
        "clientId": "22222222-3333-4444-8555-666666666666", "clientSecret": "empty-tenant-secret",
        "subscriptions": [{"subscriptionId": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee",
            "displayName": "Empty", "vaults": []}]})
    .to_string();
    let hooks = crate::peers::Receiver::start().await?;
    let app = TestApp::spawn_with(Options { scenario: Some(&empty), ..Options::default() }).await?;
    let token = app.login().await?;
    create_rule(
        &app,
        &token,
        &json!({"name": "report", "alertType": "scan_completed",
            "deliveryMethod": "slack", "webhookUrl": format!("{}/report", hooks.url)}),
    )
    .await?;
    let scan = app.scan_to_end(&token, &json!({})).await?;
    assert_eq!(scan["status"], "completed", "{scan}");
    let report = hooks.wait_for("/report", 1).await?;
    let text =
        report[0].json()["blocks"][2]["text"]["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains("completed: 0 vaults"), "{text}");
    app.finish().await
}
