//! `/subscriptions`: registering narrows scans; the connection test names what is missing.

use std::collections::BTreeSet;

use anyhow::Context;
use serde_json::{Value, json};

use crate::harness::{TestApp, error_code};

#[tokio::test]
async fn a_registered_subscription_narrows_the_next_scan_to_its_vaults() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let token = app.login().await?;
    let vaults: Value = app.cloudsim.vaults().await?;
    let vaults = vaults.as_array().context("vault list")?;
    let subs: BTreeSet<&str> = vaults.iter().filter_map(|v| v["subscriptionId"].as_str()).collect();
    assert!(subs.len() >= 3, "the demo tenant has at least three subscriptions");
    let chosen = *subs.iter().next().context("a subscription")?;
    let in_chosen = vaults.iter().filter(|v| v["subscriptionId"] == chosen).count() as i64;

    let (status, body) =
        app.post(&token, "/subscriptions", &json!({"subscriptionId": "prod"})).await?;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap_or_default().starts_with("subscriptionId"), "{body}");

    let add = json!({"subscriptionId": chosen.to_uppercase(), "name": "Chosen"});
    let (status, body) = app.post(&token, "/subscriptions", &add).await?;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["subscriptionId"], chosen, "ids are kept lower case");
    assert_eq!(body["source"], "registered");
    let (status, body) = app.post(&token, "/subscriptions", &add).await?;
    assert_eq!(status, 409, "{body}");
    assert_eq!(error_code(&body), "already_registered");

    let (status, test) =
        app.post(&token, &format!("/subscriptions/{chosen}/test"), &json!({})).await?;
    assert_eq!(status, 200, "{test}");
    assert_eq!(test["ok"], true, "{test}");
    assert_eq!(test["vaults"].as_i64(), Some(in_chosen), "{test}");

    let status = app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    assert_eq!(status["progress"]["vaultsTotal"].as_i64(), Some(in_chosen), "{status}");
    let (_, listed) = app.get(&token, "/api/assets/discovery/vaults").await?;
    assert_eq!(listed["total"].as_i64(), Some(in_chosen), "{listed}");

    let (_, all) = app.get(&token, "/subscriptions").await?;
    let sources: Vec<&str> = all["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|s| s["source"].as_str())
        .collect();
    assert_eq!(sources.iter().filter(|s| **s == "registered").count(), 1, "{all}");
    let visible = app.cloudsim.stats().await?["subscriptions"].as_i64();
    assert_eq!(all["total"].as_i64(), visible, "the scan records every visible subscription");

    assert_eq!(app.delete(&token, &format!("/subscriptions/{chosen}")).await?.0, 204);
    assert_eq!(app.delete(&token, &format!("/subscriptions/{chosen}")).await?.0, 404);

    app.finish().await
}

#[tokio::test]
async fn testing_a_subscription_the_identity_cannot_see_names_what_is_missing() -> anyhow::Result<()>
{
    let app =
        TestApp::spawn_with(crate::harness::Options { without_worker: true, ..Default::default() })
            .await?;
    let token = app.login().await?;
    let unknown = "0f0f0f0f-1111-4222-8333-444444444444";
    let (status, test) =
        app.post(&token, &format!("/subscriptions/{unknown}/test"), &json!({})).await?;
    assert_eq!(status, 200, "{test}");
    assert_eq!(test["ok"], false, "{test}");
    let missing = test["missing"].as_array().context("missing")?;
    assert_eq!(missing.len(), 2, "{test}");
    assert!(missing[0].as_str().unwrap_or_default().contains("SubscriptionNotFound"), "{test}");
    app.finish().await
}
