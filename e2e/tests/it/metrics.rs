//! `/metrics` on the API and the worker, in Prometheus text format.

use anyhow::Context;
use serde_json::json;

use crate::harness::TestApp;

/// The value of the first sample whose line starts with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines().find(|l| l.starts_with(prefix))?.rsplit(' ').next()?.parse().ok()
}

#[tokio::test]
async fn metrics_count_jobs_azure_calls_and_queue_depth() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let token = app.login().await?;
    let done = app.scan_to_end(&token, &json!({})).await?;
    let vaults = done["progress"]["vaultsTotal"].as_f64().context("vaults")?;

    let anonymous = app.http.get(format!("{}/metrics", app.api_url)).send().await?;
    assert_eq!(anonymous.status(), 401);
    let scraped = app
        .http
        .get(format!("{}/metrics", app.api_url))
        .bearer_auth("scraper-token-for-tests")
        .send()
        .await?;
    assert_eq!(scraped.status(), 200);
    let text = scraped.text().await?;

    let jobs = sample(&text, r#"certifyclouds_jobs_total{kind="scan_vault",outcome="succeeded"}"#)
        .with_context(|| format!("no scan_vault job counter in {} bytes: {text:?}", text.len()))?;
    assert!(jobs >= vaults, "{jobs} < {vaults}\n{text}");
    assert!(
        sample(&text, r#"certifyclouds_azure_requests_total{surface="key_vault",status="200"}"#)
            .is_some_and(|n| n >= vaults),
        "{text}"
    );
    assert!(
        sample(&text, r#"certifyclouds_azure_requests_total{surface="key_vault",status="401"}"#)
            .is_some(),
        "the SDK's first, unauthenticated request meets the challenge: {text}"
    );
    assert!(
        sample(
            &text,
            r#"certifyclouds_azure_requests_total{surface="resource_manager",status="200"}"#
        )
        .is_some(),
        "{text}"
    );
    assert_eq!(sample(&text, r#"certifyclouds_queue_depth{queue="scan_vault"}"#), Some(0.0));
    assert!(text.contains("certifyclouds_scan_duration_seconds"), "{text}");
    assert!(text.contains("certifyclouds_http_requests_total"), "{text}");

    // The worker serves the same registry on its own port.
    let state = worker::prepare(&app.config).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(worker::metrics_server::serve(listener, state));
    let text = app.http.get(format!("http://{addr}/metrics")).send().await?.text().await?;
    assert!(text.contains("certifyclouds_jobs_total"), "{text}");
    assert!(text.contains(r#"certifyclouds_queue_depth{queue="discover_vaults"}"#), "{text}");
    server.abort();

    app.finish().await
}
