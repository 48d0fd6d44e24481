//! The audit trail: written with each change, chained, verifiable, exported.

use anyhow::Context;
use serde_json::{Value, json};

use crate::harness::{Options, TestApp, error_code};

async fn events(app: &TestApp, token: &str, query: &str) -> anyhow::Result<Vec<String>> {
    let (status, page) = app.get(token, &format!("/audit/entries?limit=500&{query}")).await?;
    anyhow::ensure!(status == 200, "{page}");
    Ok(page["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter_map(|e| e["eventType"].as_str().map(str::to_owned))
        .collect())
}

#[tokio::test]
async fn logins_scans_and_subscription_changes_are_audited_and_the_chain_verifies()
-> anyhow::Result<()> {
    let app = TestApp::spawn().await?;
    let refused = app
        .http
        .post(format!("{}/auth/login", app.api_url))
        .header("user-agent", "audit-test/1.0")
        .json(&json!({"username": "admin", "password": "not the password"}))
        .send()
        .await?;
    assert_eq!(refused.status(), 401);
    let token = app.login().await?;
    let done = app.scan_to_end(&token, &json!({})).await?;
    let scan_id = done["scanId"].as_str().context("scanId")?;
    let sub = json!({"subscriptionId": "0f0f0f0f-1111-4222-8333-444444444444"});
    let (status, body) = app.post(&token, "/subscriptions", &sub).await?;
    assert_eq!(status, 201, "{body}");

    let all = events(&app, &token, "").await?;
    for expected in [
        "auth.login.failed",
        "auth.login.succeeded",
        "discovery.scan.requested",
        "discovery.scan.started",
        "discovery.scan.completed",
        "subscription.registered",
    ] {
        assert!(all.iter().any(|e| e == expected), "{expected} missing from {all:?}");
    }
    assert_eq!(events(&app, &token, "event_type=auth").await?.len(), 2, "prefix filter");
    let by_admin = events(&app, &token, "actor=admin").await?;
    assert!(by_admin.iter().all(|e| !e.starts_with("discovery.scan.started")), "{by_admin:?}");

    let (_, page) = app.get(&token, "/audit/entries?event_type=auth.login.failed").await?;
    let failed = &page["items"][0];
    assert_eq!(failed["actor"], "admin");
    assert_eq!(failed["userAgent"], "audit-test/1.0");
    assert_eq!(failed["sourceIp"], "127.0.0.1");
    assert_eq!(failed["details"]["reason"], "bad_password");
    let (_, page) = app.get(&token, "/audit/entries?event_type=discovery.scan.completed").await?;
    assert_eq!(page["items"][0]["target"].as_str(), Some(scan_id));

    let (status, verdict) = app.get(&token, "/audit/verify").await?;
    assert_eq!(status, 200, "{verdict}");
    assert_eq!(verdict["valid"], true, "{verdict}");
    // The compliance evaluation that follows the scan may add its entry meanwhile.
    assert!(verdict["checked"].as_i64() >= Some(all.len() as i64), "{verdict}");

    let (status, body) = app.get(&token, "/audit/entries?start_date=yesterday").await?;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap_or_default().starts_with("start_date"), "{body}");
    app.finish().await
}

#[tokio::test]
async fn an_edited_or_removed_entry_is_named_by_verify() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let token = app.login().await?;
    for i in 0..4 {
        let sub = json!({"subscriptionId": format!("0f0f0f0f-1111-4222-8333-44444444444{i}")});
        app.post(&token, "/subscriptions", &sub).await?;
    }
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM audit_entries ORDER BY id").fetch_all(&app.pool).await?;
    assert!(ids.len() >= 5, "{ids:?}");

    // Entries are append-only, even for the database owner.
    let refused = sqlx::query("UPDATE audit_entries SET actor = 'mallory' WHERE id = $1")
        .bind(ids[2])
        .execute(&app.pool)
        .await;
    assert!(refused.is_err(), "an update went through");

    // An attacker with the rights to switch the guard off edits one entry.
    let mut tx = app.pool.begin().await?;
    sqlx::query("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE audit_entries SET actor = 'mallory' WHERE id = $1")
        .bind(ids[2])
        .execute(&mut *tx)
        .await?;
    sqlx::query("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let (_, verdict) = app.get(&token, "/audit/verify").await?;
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert_eq!(verdict["firstBreak"]["entryId"].as_i64(), Some(ids[2]), "{verdict}");
    assert!(verdict["firstBreak"]["reason"].as_str().unwrap_or_default().contains("edited"));

    // Put it back, then remove another entry instead: the next one no longer links.
    let mut tx = app.pool.begin().await?;
    sqlx::query("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only")
        .execute(&mut *tx)
        .await?;
    sqlx::query("UPDATE audit_entries SET actor = 'admin' WHERE id = $1")
        .bind(ids[2])
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM audit_entries WHERE id = $1").bind(ids[3]).execute(&mut *tx).await?;
    sqlx::query("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let (_, verdict) = app.get(&token, "/audit/verify").await?;
    assert_eq!(verdict["firstBreak"]["entryId"].as_i64(), Some(ids[4]), "{verdict}");
    assert!(verdict["firstBreak"]["reason"].as_str().unwrap_or_default().contains("removed"));
    app.finish().await
}

#[tokio::test]
async fn a_change_whose_audit_entry_cannot_be_written_does_not_happen() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let token = app.login().await?;
    sqlx::query(
        "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ \
         BEGIN RAISE EXCEPTION 'audit storage is read-only for this test'; END; \
         $$ LANGUAGE plpgsql",
    )
    .execute(&app.pool)
    .await?;
    sqlx::query(
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries \
         FOR EACH ROW EXECUTE FUNCTION refuse_audit()",
    )
    .execute(&app.pool)
    .await?;

    let sub = json!({"subscriptionId": "0f0f0f0f-1111-4222-8333-444444444444"});
    let (status, body) = app.post(&token, "/subscriptions", &sub).await?;
    assert_eq!(status, 500, "{body}");
    assert_eq!(error_code(&body), "internal_error");
    assert!(!body["detail"].as_str().unwrap_or_default().contains("read-only"), "no internals");
    let (_, subs) = app.get(&token, "/subscriptions").await?;
    assert_eq!(subs["total"], 0, "the change was rolled back with its audit entry: {subs}");

    let (status, body) = app.post(&token, "/api/assets/discovery/scan", &json!({})).await?;
    assert_eq!(status, 500, "{body}");
    let (_, scans) = app.get(&token, "/api/assets/discovery/scans").await?;
    assert_eq!(scans["total"], 0, "{scans}");
    app.finish().await
}

#[tokio::test]
async fn exports_carry_every_matching_entry_and_the_chain_head() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let token = app.login().await?;
    for i in 0..3 {
        let sub = json!({"subscriptionId": format!("0f0f0f0f-1111-4222-8333-44444444444{i}"),
                         "name": format!("=cmd|' /C calc'!A{i}")});
        app.post(&token, "/subscriptions", &sub).await?;
    }
    let (_, verdict) = app.get(&token, "/audit/verify").await?;
    let head = verdict["head"].as_str().context("head")?.to_owned();
    let count = verdict["checked"].as_i64().context("checked")?;

    let get = |format: &str| {
        app.http
            .get(format!("{}/audit/export?format={format}", app.api_url))
            .bearer_auth(&token)
            .send()
    };
    let json_export: Value = get("json").await?.json().await?;
    assert_eq!(json_export["manifest"]["chainHead"].as_str(), Some(head.as_str()));
    assert_eq!(json_export["entries"].as_array().map(Vec::len), Some(count as usize));

    let csv = get("csv").await?.text().await?;
    assert!(csv.contains(&head), "the CSV names the chain head");
    assert_eq!(
        csv.lines().filter(|l| l.starts_with(|c: char| c.is_ascii_digit())).count() as i64,
        count
    );
    assert!(!csv.contains(",=cmd"), "a formula cell reached the CSV unguarded:\n{csv}");

    let pdf = get("pdf").await?;
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    let bytes = pdf.bytes().await?;
    assert!(bytes.starts_with(b"%PDF-"));
    let dir = std::env::temp_dir().join(format!("cc-pdf-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("audit.pdf");
    std::fs::write(&file, &bytes)?;
    let text = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&file)
        .arg("-")
        .output()
        .context("pdftotext (poppler-utils) is needed for this test")?;
    assert!(text.status.success(), "pdftotext refused the file: {text:?}");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("CertifyClouds audit report"), "{text}");
    let entries_line = text.lines().find(|l| l.trim_start().starts_with("Entries"));
    assert_eq!(
        entries_line.and_then(|l| l.split_whitespace().nth(1)),
        Some(count.to_string().as_str()),
        "{text}"
    );
    let rows = text.lines().filter(|l| l.contains("subscription.registered")).count();
    assert_eq!(rows, 3, "{text}");
    assert!(text.contains("Page 1 of"), "{text}");
    std::fs::remove_dir_all(&dir)?;
    app.finish().await
}

#[tokio::test]
async fn a_retention_purge_keeps_the_remaining_chain_verifiable() -> anyhow::Result<()> {
    let mut app =
        TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let token = app.login().await?;
    for i in 0..3 {
        let sub = json!({"subscriptionId": format!("0f0f0f0f-1111-4222-8333-44444444444{i}")});
        app.post(&token, "/subscriptions", &sub).await?;
    }
    let (_, before) = app.get(&token, "/api/settings/retention/stats").await?;
    let rows = before["audit"]["rows"].as_i64().context("rows")?;
    assert!(rows >= 4, "{before}");
    assert_eq!(before["rotation"]["recorded"], false, "no rotation history exists yet");

    let (status, body) =
        app.post(&token, "/api/settings/retention/purge/bogus", &json!({})).await?;
    assert_eq!(status, 400, "{body}");
    let (status, purged) = app
        .post(&token, "/api/settings/retention/purge/audit", &json!({"retentionDays": 0}))
        .await?;
    assert_eq!(status, 200, "{purged}");
    assert_eq!(purged["purged"]["audit"].as_i64(), Some(rows), "{purged}");

    let (_, after) = app.get(&token, "/api/settings/retention/stats").await?;
    assert_eq!(after["audit"]["rows"], 1, "only the purge's own entry remains: {after}");
    let (_, verdict) = app.get(&token, "/audit/verify").await?;
    assert_eq!(verdict["valid"], true, "{verdict}");
    app.login().await?;
    let (_, verdict) = app.get(&token, "/audit/verify").await?;
    assert_eq!((verdict["valid"].clone(), verdict["checked"].clone()), (json!(true), json!(2)));

    // The nightly purge: two replicas fire the same tick, one runs it, and it keeps what the
    // retention settings (365 days) still cover.
    app.start_worker().await?;
    app.start_worker().await?;
    let now = chrono::Utc::now();
    let ran: Vec<bool> = purge_from_both_replicas(&app, now).await?;
    assert_eq!(ran.iter().filter(|r| **r).count(), 1, "{ran:?}");
    let (_, last) = app.get(&token, "/audit/entries?event_type=retention.purged&limit=500").await?;
    let nightly: Vec<&Value> = last["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|e| e["actor"] == "schedule:retention")
        .collect();
    assert_eq!(nightly.len(), 4, "one purge entry per history type: {last}");
    assert!(nightly.iter().all(|e| e["details"]["purged"] == 0), "nothing is a year old");
    let (_, verdict) = app.get(&token, "/audit/verify").await?;
    assert_eq!(verdict["valid"], true, "{verdict}");
    app.finish().await
}

async fn purge_from_both_replicas(
    app: &TestApp,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<Vec<bool>> {
    let cron = "0 15 3 * * *";
    let (a, b) = tokio::join!(
        worker::schedules::purge(&app.worker_states[0], cron, now),
        worker::schedules::purge(&app.worker_states[1], cron, now),
    );
    Ok(vec![a?, b?])
}
