//! A pool of worker processes: they share one scan, and a worker killed mid-scan loses nothing.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};

use crate::harness::{Options, TestApp};

/// 30 vaults of 25 items: enough work to spread over workers and to kill one in the middle.
fn generated_tenant() -> String {
    json!({
        "tenantId": "11111111-2222-4333-8444-555555555555",
        "clientId": "22222222-3333-4444-8555-666666666666",
        "clientSecret": "generated-tenant-secret",
        "subscriptions": [],
        "generate": {"subscriptions": 2, "vaultsPerSubscription": 15, "secretsPerVault": 20,
                     "keysPerVault": 3, "certificatesPerVault": 2, "seed": 7}
    })
    .to_string()
}

/// Waits until `n` worker processes beat their heartbeat (they are consuming from Redis).
async fn wait_for_workers(app: &TestApp, n: i64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let alive: i64 = sqlx::query_scalar("SELECT count(*) FROM worker_heartbeats")
            .fetch_one(&app.pool)
            .await?;
        if alive >= n {
            return Ok(());
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "only {alive} workers started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn items_in(app: &TestApp, token: &str) -> anyhow::Result<i64> {
    let (_, page) = app.get(token, "/api/assets/discovery/assets?limit=1").await?;
    page["total"].as_i64().context("total")
}

async fn truth_total(app: &TestApp) -> anyhow::Result<i64> {
    let stats: Value = app.cloudsim.stats().await?;
    Ok(["secrets", "keys", "certificates"].iter().map(|f| stats[*f].as_i64().unwrap_or(0)).sum())
}

#[tokio::test]
async fn two_worker_processes_share_one_scan_and_run_each_vault_job_once() -> anyhow::Result<()> {
    let scenario = generated_tenant();
    let app = TestApp::spawn_with(Options {
        scenario: Some(&scenario),
        without_worker: true,
        ..Default::default()
    })
    .await?;
    let mut workers = vec![
        app.spawn_worker_process(&[("WORKER_CONCURRENCY", "2")])?,
        app.spawn_worker_process(&[("WORKER_CONCURRENCY", "2")])?,
    ];
    let token = app.login().await?;
    wait_for_workers(&app, 2).await?;
    // Slow every vault down a little, as real Azure is, so one process cannot finish the whole
    // scan before the other's first poll.
    let vaults: Value = app.cloudsim.vaults().await?;
    for vault in vaults.as_array().context("vaults")? {
        let name = vault["name"].as_str().context("name")?;
        app.cloudsim.fault(&json!({"target": format!("vault:{name}"), "latencyMs": 150})).await?;
    }

    let done = app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["vaultsDone"], 30);
    assert_eq!(items_in(&app, &token).await?, truth_total(&app).await?);

    let per_worker: Vec<(String, i64)> = sqlx::query_as(
        "SELECT worker, count(*) FROM jobs WHERE kind = 'scan_vault' GROUP BY worker",
    )
    .fetch_all(&app.pool)
    .await?;
    assert_eq!(per_worker.len(), 2, "both processes took vault jobs: {per_worker:?}");
    let attempts: Vec<i32> =
        sqlx::query_scalar("SELECT DISTINCT attempt FROM jobs WHERE scan_id IS NOT NULL")
            .fetch_all(&app.pool)
            .await?;
    assert_eq!(attempts, [1], "every job of the scan ran exactly once");

    for worker in &mut workers {
        worker.kill()?;
        worker.wait()?;
    }
    app.finish().await
}

#[tokio::test]
async fn a_worker_killed_mid_scan_is_replaced_and_no_vault_is_counted_twice() -> anyhow::Result<()>
{
    let scenario = generated_tenant();
    let mut app = TestApp::spawn_with(Options {
        scenario: Some(&scenario),
        without_worker: true,
        ..Default::default()
    })
    .await?;
    let mut doomed = app.spawn_worker_process(&[("WORKER_CONCURRENCY", "1")])?;
    let token = app.login().await?;
    let (_, accepted) = app.post(&token, "/api/assets/discovery/scan", &json!({})).await?;
    let scan_id = accepted["scanId"].as_str().context("scanId")?.to_owned();

    // Kill it (SIGKILL: no clean shutdown) once it is part-way through the vaults.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, status) =
            app.get(&token, &format!("/api/assets/discovery/scan/{scan_id}/status")).await?;
        let done = status["progress"]["vaultsDone"].as_i64().unwrap_or_default();
        if done >= 3 {
            anyhow::ensure!(done < 30, "the scan finished before the worker could be killed");
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the scan never progressed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    doomed.kill()?;
    doomed.wait()?;

    app.start_worker().await?;
    let done = app.wait_for_scan(&token, &scan_id).await?;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["vaultsDone"], 30, "no vault counted twice: {done}");
    assert_eq!(done["progress"]["vaultsTotal"], 30);
    assert_eq!(done["progress"]["itemsFound"].as_i64(), Some(truth_total(&app).await?));
    assert_eq!(items_in(&app, &token).await?, truth_total(&app).await?);
    let rerun: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE attempt > 1")
        .fetch_one(&app.pool)
        .await?;
    // Only the jobs apalis had handed the killed worker run again: at most its ceiling of 4.
    assert!((1..=4).contains(&rerun), "{rerun} jobs ran again");

    app.finish().await
}

/// Detail requests (one key or one certificate) the vaults answered since the log was cleared.
async fn detail_calls(app: &TestApp) -> anyhow::Result<usize> {
    let log: Value = app
        .cloudsim
        .http
        .get(format!("{}/_sim/requests/log", app.cloudsim.url))
        .send()
        .await?
        .json()
        .await?;
    let entries = log.as_array().context("request log")?;
    Ok(entries
        .iter()
        .filter(|e| e["target"].as_str().is_some_and(|t| t.starts_with("vault:")))
        .filter(|e| e["status"] == 200 && e["method"] == "GET")
        .filter(|e| {
            let path = e["path"].as_str().unwrap_or_default().trim_end_matches('/');
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            parts.len() == 2 && matches!(parts[0], "keys" | "certificates")
        })
        .count())
}

async fn clear_log(app: &TestApp) -> anyhow::Result<()> {
    let url = format!("{}/_sim/requests", app.cloudsim.url);
    anyhow::ensure!(app.cloudsim.http.delete(url).send().await?.status().is_success());
    Ok(())
}

async fn written(app: &TestApp, token: &str, scan: &Value) -> anyhow::Result<i64> {
    let id = scan["scanId"].as_str().context("scanId")?;
    let (_, results) = app.get(token, &format!("/api/assets/discovery/scan/{id}/results")).await?;
    Ok(results["vaults"]
        .as_array()
        .context("vaults")?
        .iter()
        .filter_map(|v| v["written"].as_i64())
        .sum())
}

#[tokio::test]
async fn a_delta_scan_writes_only_what_changed_and_fetches_fewer_details() -> anyhow::Result<()> {
    let scenario = generated_tenant();
    let app =
        TestApp::spawn_with(Options { scenario: Some(&scenario), ..Default::default() }).await?;
    let token = app.login().await?;

    clear_log(&app).await?;
    let full = app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    assert_eq!(full["status"], "completed", "{full}");
    let full_details = detail_calls(&app).await?;
    let everything = truth_total(&app).await?;
    assert_eq!(written(&app, &token, &full).await?, everything);

    // Change three items in cloudsim: expire a healthy secret, disable a key, renew a certificate.
    let pick =
        |kind: &str| format!("/api/assets/discovery/assets?type={kind}&status=healthy&limit=1");
    let (_, secret) = app.get(&token, &pick("secret")).await?;
    let (_, key) = app.get(&token, &pick("key")).await?;
    let (_, cert) = app.get(&token, &pick("certificate")).await?;
    for (item, kind, body) in [
        (&secret["items"][0], "secrets", json!({"expiresInDays": -1})),
        (&key["items"][0], "keys", json!({"enabled": false})),
        (&cert["items"][0], "certificates", json!({"expiresInDays": 3})),
    ] {
        let vault = item["vaultName"].as_str().context("vault")?;
        let name = item["name"].as_str().context("name")?;
        let url = format!("{}/_sim/vaults/{vault}/{kind}/{name}", app.cloudsim.url);
        let response = app.cloudsim.http.patch(url).json(&body).send().await?;
        anyhow::ensure!(response.status().is_success(), "cloudsim refused {kind} {name}");
    }

    clear_log(&app).await?;
    let delta = app.scan_to_end(&token, &json!({"mode": "delta"})).await?;
    assert_eq!(delta["status"], "completed", "{delta}");
    assert_eq!(written(&app, &token, &delta).await?, 3, "only the changed items are written");
    let delta_details = detail_calls(&app).await?;
    assert!(
        delta_details < full_details,
        "delta fetched {delta_details} details, full {full_details}"
    );
    assert_eq!(delta_details, 2, "one key and one certificate changed");

    let id = secret["items"][0]["id"].as_str().context("id")?;
    let (_, now) = app.get(&token, &format!("/api/assets/discovery/assets/{id}")).await?;
    assert_eq!(now["status"], "expired", "{now}");
    let id = key["items"][0]["id"].as_str().context("id")?;
    let (_, now) = app.get(&token, &format!("/api/assets/discovery/assets/{id}")).await?;
    assert_eq!(now["enabled"], false, "{now}");
    assert!(now["keyType"].is_string(), "details survive a delta write: {now}");
    assert_eq!(items_in(&app, &token).await?, everything);

    app.finish().await
}

#[tokio::test]
async fn a_queue_worker_dropped_from_redis_is_restarted_and_the_queue_keeps_moving()
-> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let token = app.login().await?;
    // What another worker does to one whose heartbeats stopped for too long: it drops it from
    // the queue's worker set. The dropped worker's next fetch fails.
    let client = redis::Client::open(app.config.redis_url.expose())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut dropped = Vec::new();
    for queue in [shared::jobs::DISCOVER_VAULTS, shared::jobs::SCAN_VAULT] {
        let set = shared::jobs::queue_config(&app.config.queue_prefix, queue).workers_set();
        let names: Vec<String> =
            redis::cmd("ZRANGE").arg(&set).arg(0).arg(-1).query_async(&mut conn).await?;
        anyhow::ensure!(names.len() == 1, "one worker per queue: {names:?}");
        let _: i64 = redis::cmd("ZREM").arg(&set).arg(&names[0]).query_async(&mut conn).await?;
        dropped.push((set, names[0].clone()));
    }
    let scan = app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    assert_eq!(scan["status"], "completed", "{scan}");
    for (set, old) in dropped {
        let names: Vec<String> =
            redis::cmd("ZRANGE").arg(&set).arg(0).arg(-1).query_async(&mut conn).await?;
        assert!(
            names.iter().any(|n| n != &old && n.starts_with(old.as_str())),
            "a restarted worker registered anew: {names:?}"
        );
    }
    app.finish().await
}
