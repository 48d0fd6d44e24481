//! Evaluation: finds what each enabled rule should alert on, records one event per crossing
//! (a unique key makes a repeat a no-op), and groups pending events into deliveries, one per
//! rule and recipient: at once for `immediate` rules, at the digest run for `digest` rules.
//!
//! All of it runs in one transaction under an advisory lock, so two workers evaluating at the
//! same moment queue each delivery once. Asset rules are one `INSERT ... SELECT` per rule over
//! the inventory, not a loop over assets.

use serde_json::json;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Scope, message};
use crate::db::alerts::{self, Delivery, Rule};
use crate::domain::{AlertType, DeliveryMode};
use crate::jobs::{DELIVER_ALERT, DeliverAlert};

/// What one evaluation did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// New events recorded.
    pub events: u64,
    /// Deliveries queued (their jobs are recorded; push the tasks after commit).
    pub deliveries: Vec<DeliverAlert>,
    /// Events nobody could be found to send to.
    pub unroutable: u64,
}

/// What started the evaluation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trigger {
    /// A scan that just finished: its outcome feeds `scan_completed` and `vault_error` rules.
    pub scan_id: Option<Uuid>,
    /// The digest run: also group the pending events of `digest` rules.
    pub digest: bool,
}

/// Evaluates every enabled rule inside `tx`; the caller commits and then pushes the tasks.
pub async fn run(tx: &mut PgConnection, trigger: Trigger) -> Result<Summary, sqlx::Error> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('certifyclouds:alerts'))")
        .execute(&mut *tx)
        .await?;
    let rules = alerts::enabled_rules(&mut *tx).await?;
    let mut summary = Summary::default();
    for rule in &rules {
        let Ok(alert_type) = rule.alert_type.parse::<AlertType>() else { continue };
        let scope: Scope = serde_json::from_value(rule.scope.clone()).unwrap_or_default();
        summary.events += match alert_type {
            AlertType::SecretExpiring | AlertType::SecretExpired => {
                record_asset_events(tx, rule, alert_type, &scope).await?
            }
            AlertType::ScanCompleted => match trigger.scan_id {
                Some(scan_id) => record_scan_event(tx, rule, scan_id).await?,
                None => 0,
            },
            AlertType::VaultError => match trigger.scan_id {
                Some(scan_id) => record_vault_error_events(tx, rule, scan_id, &scope).await?,
                None => 0,
            },
        };
    }
    for rule in &rules {
        let mode = rule.delivery_mode.parse::<DeliveryMode>().unwrap_or(DeliveryMode::Immediate);
        let (deliveries, unroutable) = group(tx, rule, mode, trigger.digest).await?;
        summary.deliveries.extend(deliveries);
        summary.unroutable += unroutable;
    }
    Ok(summary)
}

/// The recipient specs of a rule as the SQL expands them: an email rule's recipients, or one
/// empty spec standing for the webhook of the other channels.
fn recipient_specs(rule: &Rule) -> Vec<String> {
    if rule.delivery_method == "email" { rule.recipients.clone() } else { vec![String::new()] }
}

/// Expands `spec` per row: '' is the channel itself, `tag:x` the row's tag `x` if it looks
/// like an address, anything else the address as given.
const RECIPIENT_SQL: &str = "CASE WHEN spec = '' THEN NULL \
     WHEN spec LIKE 'tag:%' THEN CASE WHEN (c.tags ->> substr(spec, 5)) \
         ~ '^[^@[:space:]<>,;\"]+@[^@[:space:]<>,;\"]+\\.[^@[:space:]<>,;\"]+$' \
         THEN c.tags ->> substr(spec, 5) END \
     ELSE spec END";

/// Records events for assets inside a rule's thresholds (or past expiry).
async fn record_asset_events(
    tx: &mut PgConnection,
    rule: &Rule,
    alert_type: AlertType,
    scope: &Scope,
) -> Result<u64, sqlx::Error> {
    let types: Vec<String> = super::covered_types(None)
        .iter()
        .map(|t| t.as_str().to_owned())
        .filter(|t| rule.asset_types.as_ref().is_none_or(|l| l.is_empty() || l.contains(t)))
        .collect();
    let expired = alert_type == AlertType::SecretExpired;
    let thresholds: Vec<i32> = if expired { vec![0] } else { rule.thresholds.clone() };
    if thresholds.is_empty() {
        return Ok(0);
    }
    let vaults: Vec<String> = scope.vaults.iter().map(|v| v.to_lowercase()).collect();
    let subscriptions: Vec<String> = scope.subscriptions.iter().map(|s| s.to_lowercase()).collect();
    let tags = serde_json::to_value(&scope.tags).unwrap_or_else(|_| json!({}));
    // `crossed` is the tightest threshold the expiry lies within (0 for expired rules).
    let sql = format!(
        "WITH c AS ( \
             SELECT a.id, a.version, a.vault_id, a.asset_type, a.name, a.expires_on, a.tags, \
                    v.name AS vault_name, v.subscription_id, \
                    CASE WHEN $2 THEN 0 ELSE (SELECT min(t) FROM unnest($3::int[]) AS t \
                        WHERE a.expires_on <= now() + make_interval(days => t)) END AS crossed \
             FROM assets a JOIN vaults v ON v.id = a.vault_id \
             WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL AND a.enabled \
               AND a.expires_on IS NOT NULL \
               AND CASE WHEN $2 THEN a.expires_on <= now() \
                   ELSE a.expires_on > now() \
                        AND a.expires_on <= now() + make_interval(days => $4) END \
               AND a.asset_type = ANY($5) \
               AND (cardinality($6::text[]) = 0 OR lower(v.subscription_id) = ANY($6)) \
               AND (cardinality($7::text[]) = 0 OR lower(v.name) = ANY($7)) \
               AND a.tags @> $8::jsonb \
         ), r AS ( \
             SELECT c.*, spec, {RECIPIENT_SQL} AS recipient \
             FROM c CROSS JOIN unnest($9::text[]) AS spec \
         ) \
         INSERT INTO alert_events (id, rule_id, dedupe_key, alert_type, asset_id, asset_version, \
                                   vault_id, threshold_days, details, recipient, state) \
         SELECT gen_random_uuid(), $1, \
                concat_ws(':', $1::text, $10::text, r.id::text, coalesce(r.version, ''), \
                          r.crossed::text, CASE WHEN r.spec = '' THEN 'channel' \
                                               ELSE r.spec || '=' || coalesce(r.recipient, '') END), \
                $11, r.id, r.version, r.vault_id, r.crossed, \
                jsonb_build_object('kind', r.asset_type, 'name', r.name, 'vault', r.vault_name, \
                    'subscriptionId', r.subscription_id, \
                    'expiresOn', to_char(r.expires_on AT TIME ZONE 'UTC', \
                                         'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                    'thresholdDays', r.crossed), \
                r.recipient, \
                CASE WHEN r.spec <> '' AND r.recipient IS NULL THEN 'unroutable' \
                     ELSE 'pending' END \
         FROM r \
         ON CONFLICT (dedupe_key) DO NOTHING"
    );
    let max = thresholds.iter().copied().max().unwrap_or(0);
    let done = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(rule.id)
        .bind(expired)
        .bind(&thresholds)
        .bind(max)
        .bind(&types)
        .bind(&subscriptions)
        .bind(&vaults)
        .bind(&tags)
        .bind(recipient_specs(rule))
        .bind(&rule.delivery_method)
        .bind(alert_type.as_str())
        .execute(&mut *tx)
        .await?;
    Ok(done.rows_affected())
}

/// Records the finished scan for a `scan_completed` rule (fixed recipients only).
async fn record_scan_event(
    tx: &mut PgConnection,
    rule: &Rule,
    scan_id: Uuid,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH c AS ( \
             SELECT s.id, s.status, s.mode, s.vaults_total, s.vaults_failed, s.items_found, \
                    '{{}}'::jsonb AS tags \
             FROM scans s \
             WHERE s.id = $2 AND s.status NOT IN ('queued', 'running') \
         ), r AS ( \
             SELECT c.*, spec, CASE WHEN spec LIKE 'tag:%' THEN NULL ELSE {RECIPIENT_SQL} END \
                    AS recipient \
             FROM c CROSS JOIN unnest($3::text[]) AS spec \
         ) \
         INSERT INTO alert_events (id, rule_id, dedupe_key, alert_type, scan_id, details, \
                                   recipient, state) \
         SELECT gen_random_uuid(), $1, \
                concat_ws(':', $1::text, $4::text, 'scan', r.id::text, \
                          CASE WHEN r.spec = '' THEN 'channel' ELSE r.spec END), \
                'scan_completed', r.id, \
                jsonb_build_object('kind', 'scan', 'name', r.mode || ' scan', \
                    'detail', r.status || ': ' || r.vaults_total || ' vaults (' || \
                              r.vaults_failed || ' failed), ' || r.items_found || ' items'), \
                r.recipient, \
                CASE WHEN r.spec <> '' AND r.recipient IS NULL THEN 'unroutable' \
                     ELSE 'pending' END \
         FROM r WHERE NOT (r.spec LIKE 'tag:%') \
         ON CONFLICT (dedupe_key) DO NOTHING"
    )))
    .bind(rule.id)
    .bind(scan_id)
    .bind(recipient_specs(rule))
    .bind(&rule.delivery_method)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}

/// Records each vault a finished scan could not read, for a `vault_error` rule.
async fn record_vault_error_events(
    tx: &mut PgConnection,
    rule: &Rule,
    scan_id: Uuid,
    scope: &Scope,
) -> Result<u64, sqlx::Error> {
    let vaults: Vec<String> = scope.vaults.iter().map(|v| v.to_lowercase()).collect();
    let subscriptions: Vec<String> = scope.subscriptions.iter().map(|s| s.to_lowercase()).collect();
    let tags = serde_json::to_value(&scope.tags).unwrap_or_else(|_| json!({}));
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH c AS ( \
             SELECT v.id, v.name, v.subscription_id, v.tags, sv.error_code, sv.error_message \
             FROM scan_vaults sv JOIN vaults v ON v.id = sv.vault_id \
             JOIN scans s ON s.id = sv.scan_id \
             WHERE sv.scan_id = $2 AND sv.status = 'failed' \
               AND s.status NOT IN ('queued', 'running') \
               AND (cardinality($5::text[]) = 0 OR lower(v.subscription_id) = ANY($5)) \
               AND (cardinality($6::text[]) = 0 OR lower(v.name) = ANY($6)) \
               AND v.tags @> $7::jsonb \
         ), r AS ( \
             SELECT c.*, spec, {RECIPIENT_SQL} AS recipient \
             FROM c CROSS JOIN unnest($3::text[]) AS spec \
         ) \
         INSERT INTO alert_events (id, rule_id, dedupe_key, alert_type, vault_id, scan_id, \
                                   details, recipient, state) \
         SELECT gen_random_uuid(), $1, \
                concat_ws(':', $1::text, $4::text, 'scan', $2::text, 'vault', r.id::text, \
                          CASE WHEN r.spec = '' THEN 'channel' \
                               ELSE r.spec || '=' || coalesce(r.recipient, '') END), \
                'vault_error', r.id, $2, \
                jsonb_build_object('kind', 'vault', 'name', r.name, 'vault', r.name, \
                    'subscriptionId', r.subscription_id, \
                    'detail', coalesce(r.error_code, 'error') || \
                              coalesce(': ' || r.error_message, '')), \
                r.recipient, \
                CASE WHEN r.spec <> '' AND r.recipient IS NULL THEN 'unroutable' \
                     ELSE 'pending' END \
         FROM r \
         ON CONFLICT (dedupe_key) DO NOTHING"
    )))
    .bind(rule.id)
    .bind(scan_id)
    .bind(recipient_specs(rule))
    .bind(&rule.delivery_method)
    .bind(&subscriptions)
    .bind(&vaults)
    .bind(&tags)
    .execute(&mut *tx)
    .await?;
    Ok(done.rows_affected())
}

/// Groups a rule's pending events into one delivery per recipient (immediate rules always,
/// digest rules on the digest run), and its unroutable events into one failed delivery that
/// says why. Returns the tasks to push and the number of unroutable events.
async fn group(
    tx: &mut PgConnection,
    rule: &Rule,
    mode: DeliveryMode,
    digest_run: bool,
) -> Result<(Vec<DeliverAlert>, u64), sqlx::Error> {
    let sendable = mode == DeliveryMode::Immediate || digest_run;
    // The widest threshold crossed: every item of the message lies within it.
    let groups: Vec<(Option<String>, String, i64, Option<i32>)> = sqlx::query_as(
        "SELECT recipient, state, count(*), max(threshold_days) FROM alert_events \
         WHERE rule_id = $1 AND delivery_id IS NULL \
           AND (state = 'unroutable' OR (state = 'pending' AND $2)) \
         GROUP BY recipient, state ORDER BY recipient NULLS FIRST",
    )
    .bind(rule.id)
    .bind(sendable)
    .fetch_all(&mut *tx)
    .await?;
    let alert_type = rule.alert_type.parse::<AlertType>().unwrap_or(AlertType::SecretExpiring);
    let mut tasks = Vec::new();
    let mut unroutable = 0;
    for (recipient, state, count, widest) in groups {
        let routable = state == "pending";
        let delivery_id = Uuid::new_v4();
        let job_id = routable.then(Uuid::new_v4);
        let subject = message::subject(alert_type, count as usize, widest);
        let delivery = Delivery {
            id: delivery_id,
            rule_id: Some(rule.id),
            rule_name: rule.name.clone(),
            alert_type: rule.alert_type.clone(),
            channel: rule.delivery_method.clone(),
            mode: mode.as_str().to_owned(),
            recipient: recipient.clone(),
            status: if routable { "queued" } else { "failed" }.to_owned(),
            attempts: 0,
            error: (!routable).then(|| {
                "no recipient: the assets carry no address in the tag this rule sends to, and \
                 the rule has no fixed recipient for them"
                    .to_owned()
            }),
            subject,
            event_count: count as i32,
            job_id,
            created_at: chrono::Utc::now(),
            finished_at: (!routable).then(chrono::Utc::now),
        };
        alerts::insert_delivery(&mut *tx, &delivery).await?;
        sqlx::query(
            "UPDATE alert_events SET delivery_id = $1, \
                 state = CASE WHEN state = 'pending' THEN 'assigned' ELSE state END \
             WHERE rule_id = $2 AND delivery_id IS NULL AND state = $3 \
               AND recipient IS NOT DISTINCT FROM $4",
        )
        .bind(delivery_id)
        .bind(rule.id)
        .bind(&state)
        .bind(&recipient)
        .execute(&mut *tx)
        .await?;
        match job_id {
            Some(job_id) => {
                let task = DeliverAlert { job_id, delivery_id };
                let payload = serde_json::to_value(task).unwrap_or_default();
                let subject = delivery_id.to_string();
                crate::db::jobs::insert(&mut *tx, job_id, DELIVER_ALERT, &subject, None, &payload)
                    .await?;
                tasks.push(task);
            }
            None => unroutable += count as u64,
        }
    }
    Ok((tasks, unroutable))
}
