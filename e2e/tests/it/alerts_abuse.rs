//! Alerts against a hostile or unlucky world: input built to break headers, the database or
//! the outbound policy; webhook URLs whose tokens must not leak into answers, history, audit or
//! debug logs; redirects; deliveries whose rule is deleted or whose notifications are switched
//! off while they wait; two evaluations at once; SMTP servers that refuse for good or for now.

use anyhow::Context;
use serde_json::{Value, json};
use shared::alerts::evaluate::{self, Summary, Trigger};

use crate::alerts::{create_rule, wait_for_jobs};
use crate::harness::{Options, TestApp, error_code};
use crate::peers::{Answer, MailCatcher, Receiver};

/// `base` with the fields of `patch` set (or replaced).
fn patched(base: &Value, patch: Value) -> Value {
    let mut out = base.clone();
    for (k, v) in patch.as_object().into_iter().flatten() {
        out[k] = v.clone();
    }
    out
}

async fn count(app: &TestApp, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(&app.pool).await?)
}

/// One evaluation in its own transaction, as a worker runs it.
async fn evaluate_once(pool: &sqlx::PgPool) -> anyhow::Result<Summary> {
    let mut tx = pool.begin().await?;
    let summary = evaluate::run(&mut tx, Trigger::default()).await?;
    tx.commit().await?;
    Ok(summary)
}

/// The history entries of the rule named `name`.
async fn history_of(app: &TestApp, token: &str, name: &str) -> anyhow::Result<Vec<Value>> {
    let (status, history) = app.get(token, "/alerts/history?limit=500").await?;
    anyhow::ensure!(status == 200, "history: {status} {history}");
    Ok(history["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["ruleName"] == name)
        .cloned()
        .collect())
}

#[tokio::test]
async fn hostile_rule_input_is_refused_with_a_400_and_nothing_is_half_written() -> anyhow::Result<()>
{
    let app = TestApp::spawn_with(Options {
        without_worker: true,
        extra_env: vec![("OUTBOUND_ALLOW_PRIVATE", "false".to_owned())],
        ..Options::default()
    })
    .await?;
    let token = app.login().await?;
    let base = json!({"name": "ok", "alertType": "secret_expired", "deliveryMethod": "email",
        "recipients": ["ops@company.example"]});
    let many: Vec<String> = (0..51).map(|i| format!("u{i}@company.example")).collect();
    let huge: Vec<&str> = vec!["ops@company.example"; 50_000];
    let hook = |url: &str| {
        json!({"name": "ssrf", "alertType": "secret_expired", "deliveryMethod": "slack",
            "webhookUrl": url})
    };
    let cases = [
        // Names: NUL used to reach Postgres and answer 500; line breaks and bidi overrides
        // would land in every message.
        (patched(&base, json!({"name": "nul\u{0}byte"})), "name"),
        (patched(&base, json!({"name": "evil\r\nBcc: victim@evil.example"})), "name"),
        (patched(&base, json!({"name": "invoice \u{202e}fdp.exe"})), "name"),
        // Recipients: header injection, NUL, and addresses lettre refuses to put in a header.
        (
            patched(&base, json!({"recipients": ["ops@company.example\r\nBcc: v@evil.example"]})),
            "recipients",
        ),
        (patched(&base, json!({"recipients": ["a\u{0}b@company.example"]})), "recipients"),
        (patched(&base, json!({"recipients": ["a(b)@company.example"]})), "recipients"),
        (patched(&base, json!({"recipients": ["ops@-company.example"]})), "recipients"),
        (patched(&base, json!({"recipients": ["tag:own\r\ner"]})), "recipients"),
        (patched(&base, json!({"recipients": many})), "recipients"),
        (patched(&base, json!({"recipients": huge})), "recipients"),
        // Scope entries: NUL in JSON used to answer 500 too.
        (patched(&base, json!({"scope": {"vaults": ["v\u{0}"]}})), "scope.vaults"),
        (patched(&base, json!({"scope": {"tags": {"own\u{0}er": "x"}}})), "scope.tags"),
        (patched(&base, json!({"scope": {"subscriptions": ["s".repeat(300)]}})), "scope"),
        // Internal addresses in every spelling, and a DNS name that resolves to one.
        (hook("http://2130706433/hook"), "webhookUrl"),
        (hook("http://0x7f.1/hook"), "webhookUrl"),
        (hook("http://[::ffff:127.0.0.1]/hook"), "webhookUrl"),
        (hook("http://[::ffff:169.254.169.254]/latest/meta-data"), "webhookUrl"),
        (hook("http://[::127.0.0.1]/hook"), "webhookUrl"),
        (hook("http://[64:ff9b::a9fe:a9fe]/latest/meta-data"), "webhookUrl"),
        (hook("http://[2002:a9fe:a9fe::]/latest/meta-data"), "webhookUrl"),
        (hook("http://168.63.129.16/machine?comp=goalstate"), "webhookUrl"),
        (hook("http://localhost:9/hook"), "webhookUrl"),
    ];
    for (body, field) in &cases {
        let (status, error) = app.post(&token, "/alerts/rules", body).await?;
        let shown: String = body.to_string().chars().take(160).collect();
        assert_eq!(status, 400, "{shown} -> {error}");
        assert_eq!(error_code(&error), "validation_error", "{error}");
        let detail = error["detail"].as_str().unwrap_or_default();
        assert!(detail.starts_with(field), "{shown}: {error}");
    }
    assert_eq!(count(&app, "SELECT count(*) FROM alert_rules").await?, 0);
    let audited = "SELECT count(*) FROM audit_entries WHERE event_type LIKE 'alert.%'";
    assert_eq!(count(&app, audited).await?, 0, "no audit entry for a refused change");

    // A body over the limit is 413 in the error shape, not a 400.
    let (status, error) = app
        .post(&token, "/alerts/rules", &patched(&base, json!({"name": "x".repeat(3 << 20)})))
        .await?;
    assert_eq!((status, error_code(&error).as_str()), (413, "payload_too_large"), "{error}");

    // Unicode and emoji are fine, and come back as given.
    let name = "Owners 🔔 名前 – échéances";
    let id = create_rule(&app, &token, &patched(&base, json!({"name": name}))).await?;
    let (_, list) = app.get(&token, "/alerts/rules").await?;
    assert_eq!(list["items"][0]["name"], name, "{list}");

    // A refused update leaves the rule as it was.
    let before: chrono::DateTime<chrono::Utc> =
        sqlx::query_scalar("SELECT updated_at FROM alert_rules").fetch_one(&app.pool).await?;
    let (status, error) = app
        .put(
            &token,
            &format!("/alerts/rules/{id}"),
            &json!({"name": "renamed", "deliveryMethod": "slack"}),
        )
        .await?;
    assert_eq!(status, 400, "email -> slack without a URL: {error}");
    assert!(error["detail"].as_str().unwrap_or_default().starts_with("webhookUrl"), "{error}");
    let (name_now, after): (String, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT name, updated_at FROM alert_rules").fetch_one(&app.pool).await?;
    assert_eq!((name_now.as_str(), after), (name, before));

    // History (and audit) filters: years Postgres cannot store used to answer 500.
    for (query, field) in [
        ("/alerts/history?start_date=-10000-01-01", "start_date"),
        ("/alerts/history?end_date=%2B99999-01-01", "end_date"),
        ("/alerts/history?start_date=10000-01-01T00:00:00Z", "start_date"),
        ("/audit/entries?start_date=-10000-01-01", "start_date"),
        ("/alerts/history?start_date=2026-12-05&end_date=2026-12-04", "end_date"),
        ("/alerts/history?start_date=2026-02-30", "start_date"),
        ("/alerts/history?limit=501", "limit"),
        ("/alerts/history?limit=0", "limit"),
        ("/alerts/history?offset=-1", "offset"),
        ("/alerts/history?status=SENT", "status"),
        ("/alerts/history?rule_id=nope", "rule_id"),
    ] {
        let (status, error) = app.get(&token, query).await?;
        assert_eq!(status, 400, "{query}: {error}");
        assert_eq!(error_code(&error), "validation_error", "{query}: {error}");
        assert!(error["detail"].as_str().unwrap_or_default().starts_with(field), "{error}");
    }
    let (status, error) = app.get(&token, "/alerts/history?limit=99999999999999999999").await?;
    assert_eq!((status, error_code(&error).as_str()), (400, "invalid_query"));
    let (status, page) = app.get(&token, "/alerts/history?offset=9223372036854775807").await?;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["items"], json!([]));
    app.finish().await
}

#[tokio::test]
async fn webhook_tokens_and_signing_secrets_never_reach_answers_history_audit_or_debug_logs()
-> anyhow::Result<()> {
    const SECRET: &str = "signing-secret-not-for-logs";
    let receiver = Receiver::start().await?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?;
    let closed_port = closed.local_addr()?.port();
    drop(closed);
    let app = TestApp::spawn_with(Options { without_worker: true, ..Options::default() }).await?;
    let token = app.login().await?;

    create_rule(
        &app,
        &token,
        &json!({"name": "Hook", "alertType": "scan_completed", "deliveryMethod": "webhook",
            "webhookUrl": format!("{}/hooks/T1/B2/url-token-hook", receiver.url),
            "signingSecret": SECRET}),
    )
    .await?;
    let closed = create_rule(
        &app,
        &token,
        &json!({"name": "Closed", "alertType": "scan_completed", "deliveryMethod": "slack",
            "webhookUrl": format!("http://127.0.0.1:{closed_port}/services/T1/B2/url-token-closed")}),
    )
    .await?;
    let moved = create_rule(
        &app,
        &token,
        &json!({"name": "Moved", "alertType": "scan_completed", "deliveryMethod": "teams",
            "webhookUrl": format!("{}/redirect/url-token-moved", receiver.url)}),
    )
    .await?;

    // Switching channels: slack -> webhook keeps the URL but needs a signing secret.
    let path = format!("/alerts/rules/{closed}");
    let (status, error) = app.put(&token, &path, &json!({"deliveryMethod": "webhook"})).await?;
    assert_eq!(status, 400, "{error}");
    assert!(error["detail"].as_str().unwrap_or_default().starts_with("signingSecret"), "{error}");
    let (status, switched) = app
        .put(&token, &path, &json!({"deliveryMethod": "webhook", "signingSecret": SECRET}))
        .await?;
    assert_eq!(status, 200, "{switched}");
    assert_eq!(
        switched["channel"],
        json!({"configured": true, "host": "127.0.0.1", "signed": true})
    );
    let (status, back) = app.put(&token, &path, &json!({"deliveryMethod": "slack"})).await?;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["channel"]["signed"], false, "slack drops the signing secret: {back}");

    // A refused connection: reqwest's error names the whole URL, which must not come back.
    let (status, outcome) =
        app.post(&token, &format!("/alerts/rules/{closed}/test"), &json!({})).await?;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["status"], "failed");
    let error = outcome["results"][0]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("request to 127.0.0.1 failed"), "{outcome}");
    assert!(!outcome.to_string().contains("url-token"), "{outcome}");

    // A redirect is an answer, not an instruction: one request, nothing at the new place.
    receiver.script(&[Answer::Redirect("/followed")]);
    let (_, outcome) = app.post(&token, &format!("/alerts/rules/{moved}/test"), &json!({})).await?;
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert_eq!(outcome["results"][0]["responseCode"], 302, "{outcome}");
    let calls = receiver.received();
    assert_eq!(calls.len(), 1, "{:?}", calls.iter().map(|c| &c.path).collect::<Vec<_>>());
    assert_eq!(calls[0].path, "/redirect/url-token-moved");
    let (status, _) =
        app.put(&token, &format!("/alerts/rules/{moved}"), &json!({"enabled": false})).await?;
    assert_eq!(status, 200);

    // The worker at debug level delivers through the webhook (a 500, then accepted) and fails
    // the closed one after its retries; its whole output is kept.
    let log = std::env::temp_dir().join(format!("cc-worker-{}.log", uuid::Uuid::new_v4()));
    receiver.script(&[Answer::Status(500)]);
    let mut worker =
        app.spawn_worker_process_logged(&[("RUST_LOG", "debug"), ("LOG_LEVEL", "DEBUG")], &log)?;
    let (status, accepted) = app.post(&token, "/api/assets/discovery/scan", &json!({})).await?;
    assert_eq!(status, 202, "{accepted}");
    let scan = accepted["scanId"].as_str().context("scanId")?.to_owned();
    app.wait_for_scan(&token, &scan).await?;
    let calls = receiver.wait_for("/hooks/T1/B2/url-token-hook", 2).await?;
    assert_eq!(
        calls[1].header("x-certifyclouds-delivery"),
        calls[0].header("x-certifyclouds-delivery")
    );
    wait_for_jobs(&app, "deliver_alert", 2).await?;
    worker.kill()?;
    worker.wait()?;
    let output = std::fs::read_to_string(&log)?;
    std::fs::remove_file(&log)?;
    assert!(output.contains(" DEBUG "), "the worker logged at debug level");
    assert!(output.contains("alert delivered"), "the webhook delivery is in the log");
    assert!(output.contains("will retry"), "the failed attempts are in the log");
    for leak in ["url-token", SECRET] {
        let line = output.lines().find(|l| l.contains(leak));
        assert!(line.is_none(), "{leak} is in the worker log: {line:?}");
    }

    // Nor anywhere the API answers, nor in the jobs table.
    let hook_entries = history_of(&app, &token, "Hook").await?;
    assert_eq!(hook_entries.len(), 1, "{hook_entries:?}");
    assert_eq!(hook_entries[0]["status"], "sent");
    let closed_entries = history_of(&app, &token, "Closed").await?;
    assert!(
        closed_entries.iter().any(|e| e["status"] == "failed" && e["deliveryMode"] == "immediate")
    );
    for path in ["/alerts/rules", "/alerts/history?limit=500", "/audit/entries?limit=500"] {
        let (status, body) = app.get(&token, path).await?;
        assert_eq!(status, 200);
        let text = body.to_string();
        assert!(!text.contains("url-token") && !text.contains(SECRET), "{path} leaks: {text}");
    }
    let job_errors: Vec<Option<String>> =
        sqlx::query_scalar("SELECT error FROM jobs").fetch_all(&app.pool).await?;
    assert!(job_errors.iter().flatten().all(|e| !e.contains("url-token")), "{job_errors:?}");
    app.finish().await
}

#[tokio::test]
async fn queued_deliveries_fail_saying_why_when_their_rule_is_deleted_or_notifications_are_off()
-> anyhow::Result<()> {
    let mail = MailCatcher::start(&[])?;
    let mut app =
        TestApp::spawn_with(Options { extra_env: mail.env(), ..Options::default() }).await?;
    let token = app.login().await?;
    app.scan_to_end(&token, &json!({})).await?;
    wait_for_jobs(&app, "evaluate_alerts", 1).await?;
    app.stop_workers().await?;

    let doomed = create_rule(
        &app,
        &token,
        &json!({"name": "Doomed", "alertType": "secret_expired", "deliveryMethod": "email",
            "recipients": ["doomed@company.example"]}),
    )
    .await?;
    create_rule(
        &app,
        &token,
        &json!({"name": "Kept", "alertType": "secret_expired", "deliveryMethod": "email",
            "recipients": ["kept@company.example", "kept2@company.example"]}),
    )
    .await?;

    // Two evaluations at once: the advisory lock lets one group the events; the other finds
    // them taken. Three deliveries in all, one per recipient.
    let (a, b) = tokio::join!(evaluate_once(&app.pool), evaluate_once(&app.pool));
    let (a, b) = (a?, b?);
    let mut sizes = [a.deliveries.len(), b.deliveries.len()];
    sizes.sort_unstable();
    assert_eq!(sizes, [0, 3], "one evaluation queues everything, the other nothing");
    assert!(a.events.min(b.events) == 0 && a.events.max(b.events) > 0, "{a:?} {b:?}");
    assert_eq!(count(&app, "SELECT count(*) FROM alert_deliveries").await?, 3);

    // The rule goes while its delivery waits in the queue.
    let response = app
        .http
        .delete(format!("{}/alerts/rules/{doomed}", app.api_url))
        .bearer_auth(&token)
        .send()
        .await?;
    assert_eq!(response.status(), 204);
    app.start_worker().await?;
    let queues = app.worker_states.last().context("worker")?.queues.clone();
    for task in a.deliveries.into_iter().chain(b.deliveries) {
        queues.push_deliver_alert(task).await?;
    }
    wait_for_jobs(&app, "deliver_alert", 3).await?;
    let messages = mail.wait_for(2).await?;
    let mut to: Vec<&str> = messages.iter().filter_map(|m| m["rcptTos"][0].as_str()).collect();
    to.sort_unstable();
    assert_eq!(to, ["kept2@company.example", "kept@company.example"]);
    let entries = history_of(&app, &token, "Doomed").await?;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["status"], "failed");
    assert_eq!(entries[0]["attempts"], 1);
    assert_eq!(entries[0]["ruleId"], Value::Null);
    let error = entries[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("rule was deleted"), "{error}");

    // Notifications are switched off while a delivery waits: it fails, saying so.
    app.stop_workers().await?;
    create_rule(
        &app,
        &token,
        &json!({"name": "Later", "alertType": "secret_expired", "deliveryMethod": "email",
            "recipients": ["later@company.example"]}),
    )
    .await?;
    let later = evaluate_once(&app.pool).await?;
    assert_eq!(later.deliveries.len(), 1);
    let (status, body) =
        app.put(&token, "/api/settings/features", &json!({"enableNotifications": false})).await?;
    assert_eq!(status, 200, "{body}");
    app.start_worker().await?;
    let queues = app.worker_states.last().context("worker")?.queues.clone();
    for task in later.deliveries {
        queues.push_deliver_alert(task).await?;
    }
    wait_for_jobs(&app, "deliver_alert", 4).await?;
    let entries = history_of(&app, &token, "Later").await?;
    assert_eq!(entries[0]["status"], "failed", "{entries:?}");
    let error = entries[0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("notifications are turned off"), "{error}");

    // And a scan finished while they are off alerts nobody.
    create_rule(
        &app,
        &token,
        &json!({"name": "Scans", "alertType": "scan_completed", "deliveryMethod": "email",
            "recipients": ["scans@company.example"]}),
    )
    .await?;
    let evaluations =
        count(&app, "SELECT count(*) FROM jobs WHERE kind = 'evaluate_alerts'").await?;
    app.scan_to_end(&token, &json!({})).await?;
    wait_for_jobs(&app, "evaluate_alerts", evaluations + 1).await?;
    assert_eq!(count(&app, "SELECT count(*) FROM alert_deliveries").await?, 4);
    assert_eq!(mail.messages().await?.len(), 2, "nothing sent while notifications are off");
    app.finish().await
}

#[tokio::test]
async fn an_smtp_refusal_for_good_is_one_attempt_and_a_refusal_for_now_is_retried()
-> anyhow::Result<()> {
    let mail = MailCatcher::start(&[])?;
    let app = TestApp::spawn_with(Options { extra_env: mail.env(), ..Options::default() }).await?;
    let token = app.login().await?;
    create_rule(
        &app,
        &token,
        &json!({"name": "Scans", "alertType": "scan_completed", "deliveryMethod": "email",
            "recipients": ["ops@company.example"]}),
    )
    .await?;

    mail.fault(&json!({"rejectNext": 1, "code": 550})).await?;
    app.scan_to_end(&token, &json!({})).await?;
    wait_for_jobs(&app, "deliver_alert", 1).await?;
    let entries = history_of(&app, &token, "Scans").await?;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["status"], "failed");
    assert_eq!(entries[0]["attempts"], 1, "5xx is permanent: {}", entries[0]);
    assert_eq!(entries[0]["attemptLog"][0]["responseCode"], 550);
    let error = entries[0]["error"].as_str().unwrap_or_default();
    assert_eq!(error.matches("mailcatcher fault").count(), 1, "said once: {error}");

    mail.fault(&json!({"rejectNext": 2, "code": 451})).await?;
    app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    wait_for_jobs(&app, "deliver_alert", 2).await?;
    let entries = history_of(&app, &token, "Scans").await?;
    let retried = entries.iter().find(|e| e["status"] == "sent").context("a sent delivery")?;
    let log: Vec<(String, i64)> = retried["attemptLog"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["status"].as_str().unwrap_or_default().to_owned(),
                a["responseCode"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    let expected = [("retrying", 451), ("retrying", 451), ("sent", 250)];
    let expected: Vec<(String, i64)> =
        expected.iter().map(|(s, c)| ((*s).to_owned(), *c)).collect();
    assert_eq!(log, expected, "{retried}");
    assert_eq!(mail.messages().await?.len(), 1);
    app.finish().await
}
