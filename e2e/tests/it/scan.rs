//! The main job end to end: API → Postgres → Redis → worker → cloudsim → Postgres → API.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::{Value, json};
use sha1::Digest;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::harness::{Options, TestApp};

async fn total(app: &TestApp, token: &str, query: &str) -> anyhow::Result<i64> {
    let (status, body) = app.get(token, &format!("/api/assets/discovery/assets?{query}")).await?;
    assert_eq!(status, 200, "{body}");
    body["total"].as_i64().context("total")
}

/// SHA-1 thumbprint → subject of every certificate in the machine's CA bundle.
fn system_ca_subjects() -> anyhow::Result<HashMap<String, String>> {
    let pem = std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt")?;
    let mut found = HashMap::new();
    for block in pem.split("-----BEGIN CERTIFICATE-----").skip(1) {
        let b64: String = block
            .split("-----END CERTIFICATE-----")
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        let der = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, b64)?;
        if let Ok((_, cert)) = X509Certificate::from_der(&der) {
            found.insert(hex::encode_upper(sha1::Sha1::digest(&der)), cert.subject().to_string());
        }
    }
    Ok(found)
}

#[tokio::test]
async fn a_full_scan_inventories_exactly_what_the_tenant_holds() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let token = app.login().await?;
    let truth = app.cloudsim.stats().await?;

    let status = app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    assert_eq!(status["status"], "completed", "{status}");
    let vaults = truth["vaults"].as_i64().context("vaults")?;
    assert_eq!(status["progress"]["vaultsTotal"].as_i64(), Some(vaults), "{status}");
    assert_eq!(status["progress"]["vaultsDone"].as_i64(), Some(vaults), "{status}");

    for (kind, field) in [("secret", "secrets"), ("key", "keys"), ("certificate", "certificates")] {
        let expected = truth[field].as_i64().context("stat")?;
        assert_eq!(total(&app, &token, &format!("type={kind}")).await?, expected, "{kind}");
    }
    let all = ["secrets", "keys", "certificates"]
        .iter()
        .map(|f| truth[*f].as_i64().unwrap_or_default())
        .sum::<i64>();
    assert!(all >= 300, "the demo tenant should hold at least 300 items, has {all}");
    assert_eq!(total(&app, &token, "").await?, all);

    let expired = truth["expired"].as_i64().context("expired")?;
    let within7 = truth["expiringWithin7Days"].as_i64().context("7 days")?;
    let within30 = truth["expiringWithin30Days"].as_i64().context("30 days")?;
    assert_eq!(total(&app, &token, "status=expired").await?, expired);
    assert_eq!(total(&app, &token, "status=critical").await?, within7);
    assert_eq!(total(&app, &token, "status=warning").await?, within30 - within7);
    assert_eq!(total(&app, &token, "status=healthy").await?, all - expired - within30);

    let scan_id = status["scanId"].as_str().context("scanId")?;
    let (_, results) =
        app.get(&token, &format!("/api/assets/discovery/scan/{scan_id}/results")).await?;
    assert_eq!(results["total"].as_i64(), Some(all), "{results}");
    assert_eq!(results["byStatus"]["expired"].as_i64(), Some(expired), "{results}");
    assert_eq!(results["vaults"].as_array().map(Vec::len), Some(vaults as usize));

    let (_, vault_list) = app.get(&token, "/api/assets/discovery/vaults?limit=500").await?;
    assert_eq!(vault_list["total"].as_i64(), Some(vaults), "{vault_list}");
    let first = &vault_list["items"][0];
    let in_first = ["secrets", "keys", "certificates"]
        .iter()
        .map(|f| first[*f].as_i64().unwrap_or_default())
        .sum::<i64>();
    let by_id = format!("vault={}", first["id"].as_str().context("vault id")?);
    assert_eq!(total(&app, &token, &by_id).await?, in_first, "the vault filter takes an id");

    app.finish().await
}

/// The list order: soonest expiry first (no expiry last), then vault name, type and name.
fn list_key(item: &Value) -> (bool, Option<chrono::DateTime<chrono::Utc>>, String, String, String) {
    let expires = item["expiresOn"].as_str().and_then(|t| t.parse().ok());
    let text = |field: &str| item[field].as_str().unwrap_or_default().to_owned();
    (expires.is_none(), expires, text("vaultName"), text("type"), text("name"))
}

async fn ids(app: &TestApp, token: &str, query: &str) -> anyhow::Result<Vec<String>> {
    let (status, body) = app.get(token, &format!("/api/assets/discovery/assets?{query}")).await?;
    assert_eq!(status, 200, "{body}");
    let items = body["items"].as_array().context("items")?;
    Ok(items.iter().map(|i| i["id"].as_str().unwrap_or_default().to_owned()).collect())
}

#[tokio::test]
async fn pages_of_the_asset_list_follow_one_order_under_every_filter() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let token = app.login().await?;
    let status = app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    assert_eq!(status["status"], "completed", "{status}");

    let (_, everything) = app.get(&token, "/api/assets/discovery/assets?limit=500").await?;
    let items = everything["items"].as_array().context("items")?;
    assert_eq!(everything["total"].as_i64(), Some(items.len() as i64), "one page holds all");
    let keys: Vec<_> = items.iter().map(list_key).collect();
    assert!(
        keys.windows(2).all(|w| w[0] <= w[1]),
        "the list is in expiry, vault, type, name order"
    );

    // Each filter gives the same order as the whole list, page after page.
    let vault_name = items[0]["vaultName"].as_str().context("vaultName")?;
    let part = &vault_name[1..vault_name.len() - 1];
    let filters = [
        ("".to_owned(), None),
        ("type=certificate&status=critical".to_owned(), Some(("certificate", "critical"))),
        ("type=secret".to_owned(), Some(("secret", ""))),
        ("status=healthy".to_owned(), Some(("", "healthy"))),
        (format!("vault={}", part.to_uppercase()), None),
    ];
    for (filter, wanted) in filters {
        let expected: Vec<String> = items
            .iter()
            .filter(|i| match wanted {
                Some((t, s)) => {
                    (t.is_empty() || i["type"] == t) && (s.is_empty() || i["status"] == s)
                }
                None if filter.starts_with("vault=") => i["vaultName"]
                    .as_str()
                    .is_some_and(|n| n.to_lowercase().contains(&part.to_lowercase())),
                None => true,
            })
            .map(|i| i["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        assert!(!expected.is_empty(), "the demo tenant has assets for {filter:?}");
        assert_eq!(total(&app, &token, &filter).await?, expected.len() as i64, "{filter}");
        let mut paged = Vec::new();
        for offset in (0..expected.len()).step_by(7) {
            paged.extend(ids(&app, &token, &format!("{filter}&limit=7&offset={offset}")).await?);
        }
        assert_eq!(paged, expected, "pages of {filter:?}");
    }

    let (_, beyond) = app.get(&token, "/api/assets/discovery/assets?limit=5&offset=100000").await?;
    assert_eq!(beyond["items"], json!([]), "{beyond}");
    assert_eq!(beyond["total"].as_i64(), Some(items.len() as i64), "{beyond}");

    app.finish().await
}

#[tokio::test]
async fn certificate_assets_carry_the_real_ca_certificates_of_the_machine() -> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let token = app.login().await?;
    app.scan_to_end(&token, &json!({})).await?;
    let system = system_ca_subjects()?;
    assert!(!system.is_empty(), "the machine's CA bundle is empty");

    let (_, page) =
        app.get(&token, "/api/assets/discovery/assets?type=certificate&limit=500").await?;
    let mut matched = 0;
    for item in page["items"].as_array().context("items")? {
        let id = item["id"].as_str().context("id")?;
        let (status, detail) =
            app.get(&token, &format!("/api/assets/discovery/assets/{id}")).await?;
        assert_eq!(status, 200, "{detail}");
        let thumbprint = detail["thumbprint"].as_str().context("thumbprint")?;
        assert_eq!(thumbprint.len(), 40, "SHA-1 thumbprint in hex: {detail}");
        assert!(detail["issuer"].is_string() && detail["keyType"].is_string(), "{detail}");
        if let Some(subject) = system.get(thumbprint) {
            assert_eq!(detail["subject"].as_str(), Some(subject.as_str()), "{detail}");
            matched += 1;
        }
    }
    assert!(matched >= 10, "only {matched} certificates matched the machine's CA bundle");

    app.finish().await
}

#[tokio::test]
async fn a_scan_waits_in_redis_until_a_worker_takes_it() -> anyhow::Result<()> {
    let mut app =
        TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let token = app.login().await?;

    let (status, accepted) = app.post(&token, "/api/assets/discovery/scan", &json!({})).await?;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "queued");
    let scan_id = accepted["scanId"].as_str().context("scanId")?.to_owned();

    let job_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM jobs WHERE scan_id = $1")
        .bind(uuid::Uuid::parse_str(&scan_id)?)
        .fetch_one(&app.pool)
        .await?;
    let queue = shared::jobs::queue_config(&app.config.queue_prefix, shared::jobs::DISCOVER_VAULTS);
    let client = redis::Client::open(app.config.redis_url.expose())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let waiting: bool = redis::cmd("HEXISTS")
        .arg(queue.job_data_hash())
        .arg(job_id.to_string())
        .query_async(&mut conn)
        .await?;
    assert!(waiting, "the scan job should wait in Redis under its job row's id");
    let (_, before) =
        app.get(&token, &format!("/api/assets/discovery/scan/{scan_id}/status")).await?;
    assert_eq!(before["status"], "queued");

    let (status, conflict) = app.post(&token, "/api/assets/discovery/scan", &json!({})).await?;
    assert_eq!(status, 409, "{conflict}");
    assert!(conflict["detail"].as_str().unwrap_or_default().contains(&scan_id), "{conflict}");

    app.start_worker().await?;
    let done = app.wait_for_scan(&token, &scan_id).await?;
    assert_eq!(done["status"], "completed", "{done}");
    let (_, jobs) = app.get(&token, &format!("/api/assets/discovery/scan/{scan_id}/jobs")).await?;
    let kinds: Vec<&str> = jobs["items"]
        .as_array()
        .context("jobs")?
        .iter()
        .filter_map(|j| j["kind"].as_str())
        .collect();
    assert_eq!(kinds.iter().filter(|k| **k == "discover_vaults").count(), 1);
    assert_eq!(
        kinds.iter().filter(|k| **k == "scan_vault").count() as i64,
        done["progress"]["vaultsTotal"].as_i64().unwrap_or_default()
    );

    app.finish().await
}

pub fn locked_vault_scenario() -> String {
    json!({
        "tenantId": "11111111-2222-4333-8444-555555555555",
        "clientId": "22222222-3333-4444-8555-666666666666",
        "clientSecret": "locked-scenario-secret",
        "subscriptions": [{
            "subscriptionId": "33333333-4444-4555-8666-777777777777",
            "displayName": "Locked",
            "vaults": [
                {"name": "kv-open", "resourceGroup": "rg-a",
                 "secrets": [{"name": "db-password", "expiresInDays": 3},
                             {"name": "api-key", "expiresInDays": null}]},
                {"name": "kv-firewalled", "resourceGroup": "rg-a",
                 "publicNetworkAccess": "Disabled",
                 "secrets": [{"name": "hidden", "expiresInDays": 100}]}
            ]
        }]
    })
    .to_string()
}

#[tokio::test]
async fn a_vault_behind_a_firewall_is_recorded_and_the_scan_completes_with_errors()
-> anyhow::Result<()> {
    let scenario = locked_vault_scenario();
    let app =
        TestApp::spawn_with(Options { scenario: Some(&scenario), ..Default::default() }).await?;
    let token = app.login().await?;

    let status = app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    assert_eq!(status["status"], "completed_with_errors", "{status}");
    let errors = status["errors"].as_array().context("errors")?;
    assert_eq!(errors.len(), 1, "{status}");
    assert_eq!(errors[0]["vault"], "kv-firewalled");
    assert_eq!(errors[0]["code"], "ForbiddenByFirewall");

    let (_, assets) = app.get(&token, "/api/assets/discovery/assets").await?;
    let names: Vec<&str> = assets["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert_eq!(names, vec!["db-password", "api-key"], "{assets}");
    assert_eq!(assets["items"][0]["status"], "critical");

    app.finish().await
}

#[tokio::test]
async fn throttled_vaults_are_retried_until_they_answer() -> anyhow::Result<()> {
    let scenario = locked_vault_scenario();
    let app =
        TestApp::spawn_with(Options { scenario: Some(&scenario), ..Default::default() }).await?;
    let token = app.login().await?;

    for fault in [
        json!({"target": "vault:kv-open", "status": 429, "count": 2}),
        json!({"target": "arm", "status": 503, "count": 2}),
    ] {
        app.cloudsim.fault(&fault).await?;
    }

    let status = app.scan_to_end(&token, &json!({})).await?;
    assert_eq!(
        status["status"], "completed_with_errors",
        "only the firewalled vault fails: {status}"
    );
    assert_eq!(status["errors"].as_array().map(Vec::len), Some(1), "{status}");

    let served: Value = app
        .cloudsim
        .http
        .get(format!("{}/_sim/requests", app.cloudsim.url))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(served["vault:kv-open"]["429"].as_i64(), Some(2), "{served}");
    assert_eq!(served["arm"]["503"].as_i64(), Some(2), "{served}");
    assert_eq!(total(&app, &token, "type=secret").await?, 2);

    app.finish().await
}

#[tokio::test]
async fn a_job_that_redis_lost_is_pushed_again_by_the_sweeper() -> anyhow::Result<()> {
    let mut app =
        TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let token = app.login().await?;
    let (status, accepted) = app.post(&token, "/api/assets/discovery/scan", &json!({})).await?;
    assert_eq!(status, 202, "{accepted}");
    let scan_id = accepted["scanId"].as_str().context("scanId")?.to_owned();

    // Redis forgets everything under this test's prefix.
    let client = redis::Client::open(app.config.redis_url.expose())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", app.config.queue_prefix))
        .query_async(&mut conn)
        .await?;
    assert!(!keys.is_empty(), "the push left nothing in Redis");
    let _: i64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;

    let state = worker::prepare(&app.config).await?;
    let pushed = worker::sweeper::sweep(&state, std::time::Duration::ZERO).await?;
    assert_eq!(pushed, 1, "the queued scan job should be pushed again");

    app.start_worker().await?;
    let done = app.wait_for_scan(&token, &scan_id).await?;
    assert_eq!(done["status"], "completed", "{done}");
    // The follow-up compliance evaluation finishes too; then nothing is left to sweep.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE status IN ('queued', 'running')")
                .fetch_one(&app.pool)
                .await?;
        if open == 0 {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            let stuck: Vec<(String, String, i32)> = sqlx::query_as(
                "SELECT kind, status, attempt FROM jobs WHERE status IN ('queued', 'running')",
            )
            .fetch_all(&app.pool)
            .await?;
            anyhow::bail!("{open} jobs never finished: {stuck:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(worker::sweeper::sweep(&state, std::time::Duration::ZERO).await?, 0);

    app.finish().await
}

#[tokio::test]
async fn a_delta_scan_of_an_unchanged_tenant_writes_nothing_and_counts_everything()
-> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let token = app.login().await?;
    let full = app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    assert_eq!(full["status"], "completed", "{full}");
    let before = total(&app, &token, "").await?;

    let delta = app.scan_to_end(&token, &json!({"mode": "delta"})).await?;
    assert_eq!(delta["status"], "completed", "{delta}");
    assert_eq!(delta["mode"], "delta");
    assert_eq!(delta["progress"]["itemsFound"].as_i64(), Some(before), "{delta}");

    let scan_id = delta["scanId"].as_str().context("scanId")?;
    let (_, results) =
        app.get(&token, &format!("/api/assets/discovery/scan/{scan_id}/results")).await?;
    let written: i64 = results["vaults"]
        .as_array()
        .context("vaults")?
        .iter()
        .map(|v| v["written"].as_i64().unwrap_or(-1))
        .sum();
    assert_eq!(written, 0, "nothing changed, so nothing is written: {results}");
    assert_eq!(results["total"].as_i64(), Some(before));
    assert_eq!(total(&app, &token, "").await?, before, "no asset was lost");

    let full_id = full["scanId"].as_str().context("scanId")?;
    let (_, full_results) =
        app.get(&token, &format!("/api/assets/discovery/scan/{full_id}/results")).await?;
    let full_written: i64 = full_results["vaults"]
        .as_array()
        .context("vaults")?
        .iter()
        .map(|v| v["written"].as_i64().unwrap_or(0))
        .sum();
    assert_eq!(full_written, before, "a full scan writes every item");

    app.finish().await
}

#[tokio::test]
async fn a_forced_scan_supersedes_the_active_one() -> anyhow::Result<()> {
    let mut app =
        TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let token = app.login().await?;
    let (_, first) = app.post(&token, "/api/assets/discovery/scan", &json!({})).await?;
    let first_id = first["scanId"].as_str().context("scanId")?.to_owned();

    let (status, forced) =
        app.post(&token, "/api/assets/discovery/scan", &json!({"mode": "force"})).await?;
    assert_eq!(status, 202, "{forced}");
    assert_eq!(forced["mode"], "force");
    let forced_id = forced["scanId"].as_str().context("scanId")?.to_owned();

    let (_, old) =
        app.get(&token, &format!("/api/assets/discovery/scan/{first_id}/status")).await?;
    assert_eq!(old["status"], "cancelled", "{old}");
    assert_eq!(old["supersededBy"].as_str(), Some(forced_id.as_str()), "{old}");

    app.start_worker().await?;
    let done = app.wait_for_scan(&token, &forced_id).await?;
    assert_eq!(done["status"], "completed", "{done}");
    let (_, old) = app.get(&token, &format!("/api/assets/discovery/scan/{first_id}/jobs")).await?;
    assert_eq!(old["items"][0]["status"], "cancelled", "the superseded job never ran: {old}");

    app.finish().await
}

#[tokio::test]
async fn a_throttling_storm_is_waited_out_as_retry_after_asks() -> anyhow::Result<()> {
    let scenario = locked_vault_scenario();
    let app =
        TestApp::spawn_with(Options { scenario: Some(&scenario), ..Default::default() }).await?;
    let token = app.login().await?;
    for fault in [
        json!({"target": "vault:kv-open", "status": 429, "count": 3, "retryAfter": 1}),
        json!({"target": "arm", "status": 500, "rate": 0.3}),
    ] {
        app.cloudsim.fault(&fault).await?;
    }

    let status = app.scan_to_end(&token, &json!({})).await?;
    assert_eq!(status["status"], "completed_with_errors", "{status}");
    assert_eq!(status["errors"].as_array().map(Vec::len), Some(1), "only the firewall: {status}");
    assert_eq!(total(&app, &token, "type=secret").await?, 2);

    let log: Value = app
        .cloudsim
        .http
        .get(format!("{}/_sim/requests/log?target=vault:kv-open", app.cloudsim.url))
        .send()
        .await?
        .json()
        .await?;
    let entries = log.as_array().context("log")?;
    let throttled: Vec<&Value> = entries.iter().filter(|e| e["status"] == 429).collect();
    assert_eq!(throttled.len(), 3, "{log}");
    for hit in throttled {
        let at = hit["timestamp"].as_i64().context("timestamp")?;
        let retry = entries
            .iter()
            .filter(|e| e["path"] == hit["path"] && e["timestamp"].as_i64() > Some(at))
            .filter_map(|e| e["timestamp"].as_i64())
            .min()
            .context("the throttled request was never retried")?;
        assert!(retry - at >= 1000, "retried {} ms after a Retry-After of 1 s", retry - at);
    }

    app.finish().await
}

#[tokio::test]
async fn a_vault_slower_than_the_scan_timeout_is_recorded_as_timed_out() -> anyhow::Result<()> {
    let scenario = locked_vault_scenario();
    let mut app = TestApp::spawn_with(Options {
        scenario: Some(&scenario),
        without_worker: true,
        ..Default::default()
    })
    .await?;
    sqlx::query(
        "INSERT INTO settings (category, key, value) \
         VALUES ('performance', 'discoveryScanTimeout', '1'::jsonb)",
    )
    .execute(&app.pool)
    .await?;
    app.start_worker().await?;
    let fault = json!({"target": "vault:kv-open", "latencyMs": 2500});
    app.cloudsim.fault(&fault).await?;

    let token = app.login().await?;
    let status = app.scan_to_end(&token, &json!({})).await?;
    assert_eq!(status["status"], "completed_with_errors", "{status}");
    let codes: Vec<(&str, &str)> = status["errors"]
        .as_array()
        .context("errors")?
        .iter()
        .filter_map(|e| Some((e["vault"].as_str()?, e["code"].as_str()?)))
        .collect();
    assert!(codes.contains(&("kv-open", "timeout")), "{status}");
    app.finish().await
}
