//! Alerts end to end: rules through the API, evaluation after scans, real mail through the mail
//! catcher (aiosmtpd), webhooks against a local receiver, retries, once-only delivery across a
//! killed worker and repeated digests.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use shared::alerts::send::signature;

use crate::harness::{Options, TestApp, error_code};
use crate::peers::{Answer, MailCatcher, Receiver};

pub(crate) async fn create_rule(
    app: &TestApp,
    token: &str,
    body: &Value,
) -> anyhow::Result<String> {
    let (status, rule) = app.post(token, "/alerts/rules", body).await?;
    anyhow::ensure!(status == 201, "rule not created: {status} {rule}");
    Ok(rule["id"].as_str().context("rule id")?.to_owned())
}

/// Waits until every job of `kind` has finished and at least `min` exist.
pub(crate) async fn wait_for_jobs(app: &TestApp, kind: &str, min: i64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let (total, open): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(*) FILTER (WHERE status IN ('queued', 'running')) \
             FROM jobs WHERE kind = $1",
        )
        .bind(kind)
        .fetch_one(&app.pool)
        .await?;
        if total >= min && open == 0 {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            let jobs: Vec<(String, String, Option<String>)> =
                sqlx::query_as("SELECT kind, status, error FROM jobs ORDER BY created_at")
                    .fetch_all(&app.pool)
                    .await?;
            let deliveries: Vec<(String, String, i32)> =
                sqlx::query_as("SELECT rule_name, status, attempts FROM alert_deliveries")
                    .fetch_all(&app.pool)
                    .await?;
            anyhow::bail!("{kind} jobs did not finish: jobs {jobs:?}, deliveries {deliveries:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the digest as its schedule would, at tick `at`.
async fn run_digest(app: &TestApp, at: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
    let state = app.worker_states.first().context("an in-process worker")?;
    let claimed = worker::schedules::fire_alerts(
        state,
        worker::schedules::ALERT_DIGEST,
        "0 0 8 * * *",
        true,
        at,
    )
    .await?;
    anyhow::ensure!(claimed, "the digest tick was not claimed");
    Ok(())
}

/// Ground truth straight from cloudsim's Key Vault data plane (not through the product):
/// `(kind, name, vault)` of every enabled, unmanaged item expiring within `days` days.
async fn expiring_in_cloudsim(app: &TestApp, days: i64) -> anyhow::Result<BTreeSet<String>> {
    let env = &app.cloudsim.env;
    let token_url =
        format!("{}{}/oauth2/v2.0/token", env["AZURE_AUTHORITY_HOST"], env["AZURE_TENANT_ID"]);
    let token: Value = app
        .cloudsim
        .http
        .post(token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", env["AZURE_CLIENT_ID"].as_str()),
            ("client_secret", env["AZURE_CLIENT_SECRET"].as_str()),
            ("scope", "https://vault.azure.net/.default"),
        ])
        .send()
        .await?
        .json()
        .await?;
    let bearer = token["access_token"].as_str().context("vault token")?.to_owned();
    let vaults: Value = app.cloudsim.vaults().await?;
    let now = chrono::Utc::now().timestamp();
    let mut out = BTreeSet::new();
    for vault in vaults.as_array().context("vault list")? {
        let name = vault["name"].as_str().unwrap_or_default();
        let base = vault["vaultUri"].as_str().unwrap_or_default();
        for (collection, kind) in
            [("secrets", "secret"), ("keys", "key"), ("certificates", "certificate")]
        {
            let mut next = Some(format!("{base}{collection}?api-version=7.5"));
            while let Some(url) = next {
                let page: Value = app
                    .cloudsim
                    .http
                    .get(&url)
                    .bearer_auth(&bearer)
                    .send()
                    .await?
                    .error_for_status()?
                    .json()
                    .await?;
                for item in page["value"].as_array().into_iter().flatten() {
                    let attrs = &item["attributes"];
                    let exp = attrs["exp"].as_i64();
                    let enabled = attrs["enabled"].as_bool().unwrap_or(true);
                    let managed = item["managed"].as_bool().unwrap_or(false);
                    let id = item["id"].as_str().or(item["kid"].as_str()).unwrap_or_default();
                    let item_name = id.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
                    if let Some(exp) = exp
                        && enabled
                        && !managed
                        && exp > now
                        && exp <= now + days * 86_400
                    {
                        out.insert(format!("{kind} {item_name} in vault {name}"));
                    }
                }
                next = page["nextLink"].as_str().map(str::to_owned);
            }
        }
    }
    Ok(out)
}

/// The `kind name in vault v` lines of an alert email's text part.
fn listed(message: &Value) -> BTreeSet<String> {
    message["text"]
        .as_str()
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("- "))
        .filter_map(|l| l.split(" — ").next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn alert_rules_are_validated_and_their_channel_secrets_never_leave() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options { without_worker: true, ..Options::default() }).await?;
    let token = app.login().await?;

    // The reference's example, then a partial update as in the reference.
    let id = create_rule(
        &app,
        &token,
        &json!({"name": "Expiring Secrets Alert", "alertType": "secret_expiring",
            "thresholdDays": 30, "deliveryMethod": "email", "deliveryMode": "digest",
            "recipients": ["team@company.example"], "enabled": true}),
    )
    .await?;
    let (status, updated) = app
        .put(
            &token,
            &format!("/alerts/rules/{id}"),
            &json!({"thresholdDays": 14, "enabled": false}),
        )
        .await?;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["thresholdDays"], 14);
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["deliveryMode"], "digest");
    assert_eq!(updated["recipients"], json!(["team@company.example"]));

    // Without a threshold, the alert-defaults setting applies.
    let (status, _) = app
        .put(&token, "/api/settings/alert-defaults", &json!({"defaultThresholdDays": 21}))
        .await?;
    assert_eq!(status, 200);
    let (status, defaulted) = app
        .post(
            &token,
            "/alerts/rules",
            &json!({"name": "Certs", "alertType": "secret_expiring",
            "deliveryMethod": "email", "recipients": ["tag:owner", "pki@company.example"],
            "assetTypes": ["certificate"], "thresholds": [7, 21, 1]}),
        )
        .await?;
    assert_eq!(status, 201, "{defaulted}");
    assert_eq!(defaulted["thresholds"], json!([21, 7, 1]));
    let (_, plain) = app
        .post(
            &token,
            "/alerts/rules",
            &json!({"name": "Default threshold",
            "alertType": "secret_expiring", "deliveryMethod": "email",
            "recipients": ["a@company.example"]}),
        )
        .await?;
    assert_eq!(plain["thresholdDays"], 21, "{plain}");
    assert_eq!(plain["deliveryMode"], "immediate");

    // Bad input: a 400 in the error shape that names the field, and nothing stored.
    let receiver = "http://127.0.0.1:9/hook";
    for (body, field) in [
        (
            json!({"name": "x", "alertType": "secret_expiring", "deliveryMethod": "email"}),
            "recipients",
        ),
        (
            json!({"name": "x", "alertType": "nope", "deliveryMethod": "email", "recipients": ["a@b.example"]}),
            "alertType",
        ),
        (
            json!({"name": "x", "alertType": "secret_expiring", "deliveryMethod": "fax"}),
            "deliveryMethod",
        ),
        (
            json!({"name": "x", "alertType": "secret_expiring", "deliveryMethod": "email", "recipients": ["not-an-address"]}),
            "recipients",
        ),
        (
            json!({"name": "x", "alertType": "secret_expiring", "deliveryMethod": "slack"}),
            "webhookUrl",
        ),
        (
            json!({"name": "x", "alertType": "scan_completed", "deliveryMethod": "webhook", "webhookUrl": receiver}),
            "signingSecret",
        ),
        (
            json!({"name": "x", "alertType": "scan_completed", "thresholdDays": 3, "deliveryMethod": "email", "recipients": ["a@b.example"]}),
            "thresholdDays",
        ),
        (
            json!({"name": "x", "alertType": "scan_completed", "deliveryMethod": "email", "recipients": ["tag:owner"]}),
            "recipients",
        ),
        (
            json!({"name": "x", "alertType": "secret_expiring", "thresholdDays": 0, "deliveryMethod": "email", "recipients": ["a@b.example"]}),
            "thresholdDays",
        ),
        (
            json!({"name": "x", "alertType": "secret_expiring", "deliveryMethod": "slack", "webhookUrl": "http://169.254.169.254/latest/meta-data"}),
            "webhookUrl",
        ),
        (
            json!({"name": "x", "alertType": "secret_expiring", "deliveryMethod": "slack", "webhookUrl": "file:///etc/passwd"}),
            "webhookUrl",
        ),
        (
            json!({"name": "x", "alertType": "secret_expiring", "deliveryMethod": "pagerduty", "routingKey": "bad key!"}),
            "routingKey",
        ),
        (
            json!({"alertType": "secret_expiring", "deliveryMethod": "email", "recipients": ["a@b.example"]}),
            "name",
        ),
        (
            json!({"name": "x", "alertType": "secret_expiring", "deliveryMethod": "email", "recipients": ["a@b.example"], "surprise": 1}),
            "surprise",
        ),
    ] {
        let (status, error) = app.post(&token, "/alerts/rules", &body).await?;
        assert_eq!(status, 400, "{body} -> {error}");
        assert_eq!(error_code(&error), "validation_error", "{error}");
        assert!(error["detail"].as_str().unwrap_or_default().contains(field), "{body}: {error}");
    }
    let (_, list) = app.get(&token, "/alerts/rules").await?;
    assert_eq!(list["total"], 3, "only the valid rules were stored: {list}");
    let (_, page) = app.get(&token, "/alerts/rules?limit=1&offset=1").await?;
    assert_eq!((page["total"].clone(), page["limit"].clone()), (json!(3), json!(1)), "{page}");
    assert_eq!(page["items"][0]["name"], "Certs", "oldest first: {page}");

    // A Slack webhook URL carries a token: it is sealed, and only its host is shown.
    let hook = "http://127.0.0.1:9/services/T0001/B0002/very-secret-token";
    let (status, slack) = app
        .post(
            &token,
            "/alerts/rules",
            &json!({"name": "Slack", "alertType": "secret_expired",
            "deliveryMethod": "slack", "webhookUrl": hook}),
        )
        .await?;
    assert_eq!(status, 201, "{slack}");
    assert_eq!(slack["channel"], json!({"configured": true, "host": "127.0.0.1", "signed": false}));
    let (_, list) = app.get(&token, "/alerts/rules").await?;
    assert!(!list.to_string().contains("very-secret-token"), "{list}");
    // Nothing listens on port 9: the failure is reported without the URL's token.
    let slack_id = slack["id"].as_str().context("id")?;
    let (status, outcome) =
        app.post(&token, &format!("/alerts/rules/{slack_id}/test"), &json!({})).await?;
    assert_eq!(status, 200);
    assert_eq!(outcome["status"], "failed", "{outcome}");
    let error = outcome["results"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("127.0.0.1"), "{error}");
    assert!(!outcome.to_string().contains("very-secret-token"), "{outcome}");
    let (_, history) = app.get(&token, "/alerts/history").await?;
    assert!(!history.to_string().contains("very-secret-token"), "{history}");
    let stored: String =
        sqlx::query_scalar("SELECT channel_sealed FROM alert_rules WHERE name = 'Slack'")
            .fetch_one(&app.pool)
            .await?;
    assert!(stored.starts_with("v1.") && !stored.contains("very-secret-token"));
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT details::text FROM audit_entries WHERE event_type LIKE 'alert.rule.%'",
    )
    .fetch_all(&app.pool)
    .await?;
    assert_eq!(audit.len(), 6, "created x4, updated x1, tested x1: {audit:?}");
    assert!(audit.iter().all(|d| !d.contains("very-secret-token")));

    // Unknown ids and bad ids.
    let missing = uuid::Uuid::new_v4();
    let (status, error) = app.put(&token, &format!("/alerts/rules/{missing}"), &json!({})).await?;
    assert_eq!((status, error_code(&error).as_str()), (404, "not_found"));
    let (status, error) = app.post(&token, "/alerts/rules/not-a-uuid/test", &json!({})).await?;
    assert_eq!((status, error_code(&error).as_str()), (400, "validation_error"));
    assert_eq!(app.delete(&token, &format!("/alerts/rules/{id}")).await?.0, 204);
    assert_eq!(app.delete(&token, &format!("/alerts/rules/{id}")).await?.0, 404);
    let (status, error) = app.get(&token, "/alerts/history?status=lost").await?;
    assert_eq!((status, error_code(&error).as_str()), (400, "validation_error"));
    app.finish().await
}

#[tokio::test]
async fn a_digest_lists_exactly_the_assets_inside_the_threshold_and_runs_once() -> anyhow::Result<()>
{
    let mail = MailCatcher::start(&[])?;
    let app = TestApp::spawn_with(Options { extra_env: mail.env(), ..Options::default() }).await?;
    let token = app.login().await?;
    create_rule(
        &app,
        &token,
        &json!({"name": "Monthly expiry digest", "alertType": "secret_expiring",
            "thresholdDays": 30, "deliveryMethod": "email", "deliveryMode": "digest",
            "recipients": ["team@company.example", "security@company.example"]}),
    )
    .await?;
    let scan = app.scan_to_end(&token, &json!({})).await?;
    assert_eq!(scan["status"], "completed", "{scan}");
    wait_for_jobs(&app, "evaluate_alerts", 1).await?;
    assert!(mail.messages().await?.is_empty(), "a digest rule sends nothing before the digest");

    let truth = expiring_in_cloudsim(&app, 30).await?;
    assert!(
        truth.len() > 50,
        "the demo tenant has many items expiring within 30 days: {}",
        truth.len()
    );

    run_digest(&app, chrono::Utc::now()).await?;
    wait_for_jobs(&app, "deliver_alert", 2).await?;
    let messages = mail.wait_for(2).await?;
    assert_eq!(messages.len(), 2, "one message per recipient");
    let mut recipients: Vec<String> =
        messages.iter().map(|m| m["rcptTos"][0].as_str().unwrap_or_default().to_owned()).collect();
    recipients.sort();
    assert_eq!(recipients, ["security@company.example", "team@company.example"]);
    for message in &messages {
        assert_eq!(listed(message), truth, "the digest lists exactly the assets inside 30 days");
        assert_eq!(message["contentType"], "multipart/alternative");
        let html = message["html"].as_str().unwrap_or_default();
        assert!(html.contains("width=device-width"), "readable on a phone");
        let subject = message["subject"].as_str().unwrap_or_default();
        assert!(
            subject.contains(&format!("{} Key Vault items expire within", truth.len())),
            "{subject}"
        );
    }

    // A second digest run, and an evaluation after another scan, send nothing new.
    run_digest(&app, chrono::Utc::now() + chrono::Duration::days(1)).await?;
    app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    wait_for_jobs(&app, "evaluate_alerts", 3).await?;
    wait_for_jobs(&app, "deliver_alert", 2).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mail.messages().await?.len(), 2, "each crossing is sent once");

    let (_, history) = app.get(&token, "/alerts/history?status=sent").await?;
    assert_eq!(history["total"], 2, "{history}");
    let entry = &history["items"][0];
    assert_eq!(entry["deliveryMode"], "digest");
    assert_eq!(entry["eventCount"], truth.len());
    assert_eq!(entry["attemptLog"][0]["status"], "sent");
    assert_eq!(entry["attemptLog"][0]["responseCode"], 250);
    app.finish().await
}

#[tokio::test]
async fn immediate_alerts_escalate_per_threshold_and_reach_the_owner_tag() -> anyhow::Result<()> {
    let mail = MailCatcher::start(&[])?;
    let app = TestApp::spawn_with(Options { extra_env: mail.env(), ..Options::default() }).await?;
    let token = app.login().await?;
    let sim = &app.cloudsim;
    let owner = "payments-oncall@contoso.example";
    let response = sim
        .http
        .patch(format!("{}/_sim/vaults/kv-prod-payments/secrets/stripe-api-key", sim.url))
        .json(&json!({"tags": {"owner": owner}}))
        .send()
        .await?;
    assert!(response.status().is_success());
    let response = sim
        .http
        .post(format!("{}/_sim/vaults/kv-prod-payments/secrets", sim.url))
        .json(
            &json!({"name": "webhook-signing-key", "expiresInDays": 20, "tags": {"owner": owner}}),
        )
        .send()
        .await?;
    assert!(response.status().is_success(), "{}", response.text().await?);

    create_rule(
        &app,
        &token,
        &json!({"name": "Owners hear first", "alertType": "secret_expiring",
            "thresholds": [30, 7], "assetTypes": ["secret"], "deliveryMethod": "email",
            "recipients": ["tag:owner"], "scope": {"vaults": ["kv-prod-payments"]}}),
    )
    .await?;
    app.scan_to_end(&token, &json!({})).await?;
    wait_for_jobs(&app, "evaluate_alerts", 1).await?;
    let messages = mail.wait_for(1).await?;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["rcptTos"], json!([owner]));
    // One at 7 days and one at 30: the subject states the widest, which holds for both.
    let subject = messages[0]["subject"].as_str().unwrap_or_default();
    assert!(subject.contains("2 Key Vault items expire within 30 days"), "{subject}");
    let first = listed(&messages[0]);
    assert_eq!(
        first,
        BTreeSet::from([
            "secret stripe-api-key in vault kv-prod-payments".to_owned(),
            "secret webhook-signing-key in vault kv-prod-payments".to_owned(),
        ])
    );
    // Other secrets of the vault inside 30 days have no address in their owner tag: recorded
    // as a failed delivery that says why, not sent anywhere.
    let (_, failed) = app.get(&token, "/alerts/history?status=failed").await?;
    for item in failed["items"].as_array().into_iter().flatten() {
        assert!(item["recipient"].is_null());
        assert!(item["error"].as_str().unwrap_or_default().starts_with("no recipient"), "{item}");
        assert!(item["attemptLog"].as_array().is_some_and(Vec::is_empty), "never attempted");
    }

    // The new secret moves inside 7 days: one more alert, for it alone, at the 7-day threshold.
    let response = sim
        .http
        .patch(format!("{}/_sim/vaults/kv-prod-payments/secrets/webhook-signing-key", sim.url))
        .json(&json!({"expiresInDays": 3}))
        .send()
        .await?;
    assert!(response.status().is_success());
    app.scan_to_end(&token, &json!({"mode": "delta"})).await?;
    wait_for_jobs(&app, "evaluate_alerts", 2).await?;
    let messages = mail.wait_for(2).await?;
    assert_eq!(
        listed(&messages[1]),
        BTreeSet::from(["secret webhook-signing-key in vault kv-prod-payments".to_owned()])
    );
    assert!(messages[1]["subject"].as_str().unwrap_or_default().contains("within 7 days"));
    // Three days from the change, seen a moment later: 2 whole days left, as the API counts.
    assert!(messages[1]["text"].as_str().unwrap_or_default().contains("expires in 2 days"));

    // Nothing crossed since: another scan sends nothing.
    app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    wait_for_jobs(&app, "evaluate_alerts", 3).await?;
    wait_for_jobs(&app, "deliver_alert", 2).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mail.messages().await?.len(), 2);
    app.finish().await
}

#[tokio::test]
async fn webhooks_are_signed_shaped_per_channel_and_retried_within_bounds() -> anyhow::Result<()> {
    let flaky = Receiver::start().await?;
    let ok = Receiver::start().await?;
    let down = Receiver::start().await?;
    let slow = Receiver::start().await?;
    let app = TestApp::spawn_with(Options {
        extra_env: vec![
            ("PAGERDUTY_EVENTS_URL", format!("{}/v2/enqueue", ok.url)),
            ("ALERT_MAX_ATTEMPTS", "3".to_owned()),
            ("ALERT_SEND_TIMEOUT_SECONDS", "1".to_owned()),
        ],
        ..Options::default()
    })
    .await?;
    let token = app.login().await?;
    let secret = "a-signing-secret-of-some-length";
    flaky.script(&[Answer::TooMany { retry_after: 1 }, Answer::Status(500)]);
    down.script(&[Answer::Status(503), Answer::Status(502), Answer::Status(500)]);
    slow.script(&[Answer::Slow(Duration::from_secs(3))]);
    let scan_rule = |name: &str, method: &str, extra: Value| {
        let mut body =
            json!({"name": name, "alertType": "scan_completed", "deliveryMethod": method});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        body
    };
    for body in [
        scan_rule(
            "signed",
            "webhook",
            json!({"webhookUrl": format!("{}/hook", flaky.url), "signingSecret": secret}),
        ),
        scan_rule("slack", "slack", json!({"webhookUrl": format!("{}/slack", ok.url)})),
        scan_rule("teams", "teams", json!({"webhookUrl": format!("{}/teams", ok.url)})),
        scan_rule("pager", "pagerduty", json!({"routingKey": "R0UT1NGKEY0123456789abcdef012345"})),
        scan_rule(
            "down",
            "webhook",
            json!({"webhookUrl": format!("{}/down", down.url), "signingSecret": secret}),
        ),
        scan_rule(
            "slow",
            "webhook",
            json!({"webhookUrl": format!("{}/slow", slow.url), "signingSecret": secret}),
        ),
    ] {
        create_rule(&app, &token, &body).await?;
    }
    let scan = app.scan_to_end(&token, &json!({})).await?;
    let scan_id = scan["scanId"].as_str().or(scan["id"].as_str()).unwrap_or_default().to_owned();
    wait_for_jobs(&app, "evaluate_alerts", 1).await?;
    wait_for_jobs(&app, "deliver_alert", 6).await?;

    // The signed webhook: 429 (Retry-After), 500, then accepted; every body signed.
    let calls = flaky.wait_for("/hook", 3).await?;
    assert_eq!(calls.len(), 3);
    for call in &calls {
        let timestamp: i64 =
            call.header("x-certifyclouds-timestamp").context("timestamp")?.parse()?;
        assert_eq!(
            call.header("x-certifyclouds-signature"),
            Some(signature(secret, timestamp, &call.body))
        );
        assert_eq!(call.header("content-type").as_deref(), Some("application/json"));
        let body = call.json();
        assert_eq!(body["alertType"], "scan_completed");
        assert_eq!(body["test"], false);
        assert!(body["items"][0]["detail"].as_str().unwrap_or_default().starts_with("completed"));
    }
    let delivery = calls[0].header("x-certifyclouds-delivery").context("delivery id")?;
    assert!(
        calls.iter().all(|c| c.header("x-certifyclouds-delivery").as_deref() == Some(&delivery))
    );
    assert!(!scan_id.is_empty());

    // Channel shapes.
    let slack = ok.wait_for("/slack", 1).await?;
    assert!(slack[0].json()["blocks"].is_array() && slack[0].json()["text"].is_string());
    let teams = ok.wait_for("/teams", 1).await?;
    let card = &teams[0].json()["attachments"][0];
    assert_eq!(card["contentType"], "application/vnd.microsoft.card.adaptive");
    assert_eq!(card["content"]["type"], "AdaptiveCard");
    let pager = ok.wait_for("/v2/enqueue", 1).await?;
    let event = pager[0].json();
    assert_eq!(event["routing_key"], "R0UT1NGKEY0123456789abcdef012345");
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(event["payload"]["source"], "certifyclouds");

    // The history records every attempt.
    let (_, history) = app.get(&token, "/alerts/history?limit=50").await?;
    let by_rule = |name: &str| -> Value {
        history["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["ruleName"] == name).cloned())
            .unwrap_or(Value::Null)
    };
    let signed = by_rule("signed");
    assert_eq!(signed["status"], "sent", "{signed}");
    let codes: Vec<Value> = signed["attemptLog"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["responseCode"].clone())
        .collect();
    assert_eq!(codes, [json!(429), json!(500), json!(200)]);
    let statuses: Vec<Value> = signed["attemptLog"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| a["status"].clone())
        .collect();
    assert_eq!(statuses, [json!("retrying"), json!("retrying"), json!("sent")]);

    let down_entry = by_rule("down");
    assert_eq!(down_entry["status"], "failed", "{down_entry}");
    assert_eq!(down_entry["attempts"], 3, "bounded by ALERT_MAX_ATTEMPTS");
    assert!(
        down_entry["error"].as_str().unwrap_or_default().starts_with("gave up after 3 attempts")
    );
    assert_eq!(down.received().len(), 3);

    let slow_entry = by_rule("slow");
    assert_eq!(slow_entry["status"], "sent", "{slow_entry}");
    let first = &slow_entry["attemptLog"][0];
    assert_eq!(first["status"], "retrying");
    assert!(first["error"].as_str().unwrap_or_default().contains("timed out"), "{first}");
    app.finish().await
}

#[tokio::test]
async fn a_rule_test_sends_a_marked_message_and_reports_the_outcome() -> anyhow::Result<()> {
    let mail = MailCatcher::start(&[])?;
    let down = Receiver::start().await?;
    let app = TestApp::spawn_with(Options {
        extra_env: mail.env(),
        without_worker: true,
        ..Options::default()
    })
    .await?;
    let token = app.login().await?;
    let email = create_rule(
        &app,
        &token,
        &json!({"name": "Owners", "alertType": "secret_expiring", "deliveryMethod": "email",
            "recipients": ["tag:owner", "oncall@company.example"]}),
    )
    .await?;
    let (status, outcome) =
        app.post(&token, &format!("/alerts/rules/{email}/test"), &json!({})).await?;
    assert_eq!(status, 200, "{outcome}");
    assert_eq!(outcome["status"], "sent", "{outcome}");
    assert_eq!(outcome["results"].as_array().map(Vec::len), Some(1), "tag recipients are skipped");
    let messages = mail.wait_for(1).await?;
    assert_eq!(messages[0]["rcptTos"], json!(["oncall@company.example"]));
    assert!(
        messages[0]["subject"].as_str().unwrap_or_default().starts_with("[CertifyClouds TEST]")
    );
    assert!(messages[0]["text"].as_str().unwrap_or_default().contains("This is a test message"));

    down.script(&[Answer::Status(500)]);
    let hook = create_rule(
        &app,
        &token,
        &json!({"name": "Hook", "alertType": "vault_error", "deliveryMethod": "webhook",
            "webhookUrl": format!("{}/in", down.url), "signingSecret": "0123456789abcdef"}),
    )
    .await?;
    let (status, outcome) =
        app.post(&token, &format!("/alerts/rules/{hook}/test"), &json!({})).await?;
    assert_eq!(status, 200);
    assert_eq!(outcome["status"], "failed");
    assert_eq!(outcome["results"][0]["responseCode"], 500);
    assert!(down.received()[0].json()["test"] == true);

    // Only tag recipients: nothing to test against.
    let tags_only = create_rule(
        &app,
        &token,
        &json!({"name": "Tags", "alertType": "secret_expired", "deliveryMethod": "email",
            "recipients": ["tag:owner"]}),
    )
    .await?;
    let (status, error) =
        app.post(&token, &format!("/alerts/rules/{tags_only}/test"), &json!({})).await?;
    assert_eq!((status, error_code(&error).as_str()), (409, "no_fixed_recipient"));

    let (_, history) = app.get(&token, "/alerts/history?status=failed").await?;
    assert_eq!(history["total"], 1);
    assert_eq!(history["items"][0]["deliveryMode"], "test");
    let (_, history) = app.get(&token, "/alerts/history").await?;
    assert_eq!(history["total"], 2);
    app.finish().await
}

#[tokio::test]
async fn killing_a_worker_during_delivery_still_sends_the_alert_once() -> anyhow::Result<()> {
    let mail = MailCatcher::start(&[])?;
    let mut app = TestApp::spawn_with(Options {
        extra_env: mail.env(),
        without_worker: true,
        ..Options::default()
    })
    .await?;
    let token = app.login().await?;
    create_rule(
        &app,
        &token,
        &json!({"name": "Scan report", "alertType": "scan_completed", "deliveryMethod": "email",
            "recipients": ["ops@company.example"]}),
    )
    .await?;
    // The SMTP server hangs at RCPT, so the worker is caught mid-delivery.
    mail.fault(&json!({"delayRcpt": 30})).await?;
    let mut doomed = app.spawn_worker_process(&[])?;
    let (status, accepted) = app.post(&token, "/api/assets/discovery/scan", &json!({})).await?;
    assert_eq!(status, 202, "{accepted}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let sending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM alert_deliveries WHERE status = 'sending'")
                .fetch_one(&app.pool)
                .await?;
        if sending == 1 {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    doomed.kill()?;
    doomed.wait()?;
    mail.fault(&json!({})).await?;

    app.start_worker().await?;
    let messages = mail.wait_for(1).await?;
    wait_for_jobs(&app, "deliver_alert", 1).await?;
    // Running the digest twice afterwards sends nothing more either.
    run_digest(&app, chrono::Utc::now()).await?;
    run_digest(&app, chrono::Utc::now() + chrono::Duration::days(1)).await?;
    wait_for_jobs(&app, "evaluate_alerts", 3).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(mail.messages().await?.len(), 1, "sent once: {messages:?}");

    let (_, history) = app.get(&token, "/alerts/history").await?;
    assert_eq!(history["total"], 1);
    let entry = &history["items"][0];
    assert_eq!(entry["status"], "sent");
    let log = entry["attemptLog"].as_array().context("attempts")?;
    assert_eq!(log.len(), 2, "{entry}");
    assert_eq!(log[0]["status"], "failed");
    assert!(log[0]["error"].as_str().unwrap_or_default().contains("worker stopped"));
    assert_eq!(log[1]["status"], "sent");
    app.finish().await
}
