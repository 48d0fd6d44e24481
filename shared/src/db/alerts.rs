//! Alert rules, deliveries and their attempts.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

/// A stored alert rule. `channel_sealed` stays inside the process: it is never serialised.
#[derive(Debug, Clone, FromRow)]
pub struct Rule {
    pub id: Uuid,
    pub name: String,
    pub alert_type: String,
    pub thresholds: Vec<i32>,
    pub asset_types: Option<Vec<String>>,
    pub delivery_method: String,
    pub delivery_mode: String,
    pub recipients: Vec<String>,
    pub scope: serde_json::Value,
    pub channel_sealed: Option<String>,
    pub channel_hint: Option<String>,
    pub enabled: bool,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const RULE_COLUMNS: &str = "id, name, alert_type, thresholds, asset_types, delivery_method, \
     delivery_mode, recipients, scope, channel_sealed, channel_hint, enabled, created_by, \
     created_at, updated_at";

/// A page of rules, oldest first, and their total.
pub async fn list_rules(
    pool: &PgPool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Rule>, i64), sqlx::Error> {
    let rules = sqlx::query_as::<_, Rule>(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules ORDER BY created_at, id LIMIT $1 OFFSET $2"
    )))
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_rules").fetch_one(pool).await?;
    Ok((rules, total))
}

/// The enabled rules, oldest first.
pub async fn enabled_rules(conn: &mut PgConnection) -> Result<Vec<Rule>, sqlx::Error> {
    sqlx::query_as::<_, Rule>(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules WHERE enabled ORDER BY created_at, id"
    )))
    .fetch_all(conn)
    .await
}

/// One rule.
pub async fn get_rule(conn: &mut PgConnection, id: Uuid) -> Result<Option<Rule>, sqlx::Error> {
    sqlx::query_as::<_, Rule>(sqlx::AssertSqlSafe(format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Inserts or replaces a rule (every column but the creation fields), returning it.
pub async fn upsert_rule(conn: &mut PgConnection, rule: &Rule) -> Result<Rule, sqlx::Error> {
    sqlx::query_as::<_, Rule>(sqlx::AssertSqlSafe(format!(
        "INSERT INTO alert_rules ({RULE_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now(), now()) \
         ON CONFLICT (id) DO UPDATE SET name = $2, alert_type = $3, thresholds = $4, \
             asset_types = $5, delivery_method = $6, delivery_mode = $7, recipients = $8, \
             scope = $9, channel_sealed = $10, channel_hint = $11, enabled = $12, \
             updated_at = now() \
         RETURNING {RULE_COLUMNS}"
    )))
    .bind(rule.id)
    .bind(&rule.name)
    .bind(&rule.alert_type)
    .bind(&rule.thresholds)
    .bind(&rule.asset_types)
    .bind(&rule.delivery_method)
    .bind(&rule.delivery_mode)
    .bind(&rule.recipients)
    .bind(&rule.scope)
    .bind(&rule.channel_sealed)
    .bind(&rule.channel_hint)
    .bind(rule.enabled)
    .bind(&rule.created_by)
    .fetch_one(conn)
    .await
}

/// Deletes a rule; its events go with it, its deliveries stay in the history.
pub async fn delete_rule(conn: &mut PgConnection, id: Uuid) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM alert_rules WHERE id = $1").bind(id).execute(conn).await?;
    Ok(done.rows_affected() > 0)
}

/// A delivery: one message to one recipient (or one webhook).
#[derive(Debug, Clone, FromRow)]
pub struct Delivery {
    pub id: Uuid,
    pub rule_id: Option<Uuid>,
    pub rule_name: String,
    pub alert_type: String,
    pub channel: String,
    pub mode: String,
    pub recipient: Option<String>,
    pub status: String,
    pub attempts: i32,
    pub error: Option<String>,
    pub subject: String,
    pub event_count: i32,
    pub job_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

const DELIVERY_COLUMNS: &str = "id, rule_id, rule_name, alert_type, channel, mode, recipient, \
     status, attempts, error, subject, event_count, job_id, created_at, finished_at";

/// Records a delivery.
pub async fn insert_delivery(conn: &mut PgConnection, d: &Delivery) -> Result<(), sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO alert_deliveries ({DELIVERY_COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now(), $14)"
    )))
    .bind(d.id)
    .bind(d.rule_id)
    .bind(&d.rule_name)
    .bind(&d.alert_type)
    .bind(&d.channel)
    .bind(&d.mode)
    .bind(&d.recipient)
    .bind(&d.status)
    .bind(d.attempts)
    .bind(&d.error)
    .bind(&d.subject)
    .bind(d.event_count)
    .bind(d.job_id)
    .bind(d.finished_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// One delivery.
pub async fn get_delivery(pool: &PgPool, id: Uuid) -> Result<Option<Delivery>, sqlx::Error> {
    sqlx::query_as::<_, Delivery>(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Filters of the history.
#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
    pub status: Option<String>,
    pub rule_id: Option<Uuid>,
}

/// Deliveries newest first, with their total.
pub async fn history(
    pool: &PgPool,
    filter: &HistoryFilter,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Delivery>, i64), sqlx::Error> {
    let condition = "($1::timestamptz IS NULL OR created_at >= $1) \
         AND ($2::timestamptz IS NULL OR created_at <= $2) \
         AND ($3::text IS NULL OR status = $3) AND ($4::uuid IS NULL OR rule_id = $4)";
    let rows = sqlx::query_as::<_, Delivery>(sqlx::AssertSqlSafe(format!(
        "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries WHERE {condition} \
         ORDER BY created_at DESC, id LIMIT $5 OFFSET $6"
    )))
    .bind(filter.start)
    .bind(filter.end)
    .bind(&filter.status)
    .bind(filter.rule_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM alert_deliveries WHERE {condition}"
    )))
    .bind(filter.start)
    .bind(filter.end)
    .bind(&filter.status)
    .bind(filter.rule_id)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}

/// One attempt of a delivery.
#[derive(Debug, Clone, FromRow)]
pub struct Attempt {
    pub delivery_id: Uuid,
    pub attempt: i32,
    pub worker: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub response_code: Option<i32>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The attempts of the given deliveries, in order.
pub async fn attempts_of(pool: &PgPool, ids: &[Uuid]) -> Result<Vec<Attempt>, sqlx::Error> {
    sqlx::query_as::<_, Attempt>(
        "SELECT delivery_id, attempt, worker, status, error, response_code, started_at, \
                finished_at \
         FROM alert_delivery_attempts WHERE delivery_id = ANY($1) ORDER BY delivery_id, attempt",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
}

/// Starts the next attempt of a queued or interrupted delivery and returns its number, or
/// `None` when the delivery already ended. An attempt left `sending` by a worker that stopped
/// is closed as failed first: whether its message arrived is unknown, and the history says so.
pub async fn start_attempt(
    pool: &PgPool,
    id: Uuid,
    worker: &str,
) -> Result<Option<i32>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM alert_deliveries WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if !matches!(status.as_deref(), Some("queued" | "sending")) {
        return Ok(None);
    }
    sqlx::query(
        "UPDATE alert_delivery_attempts SET status = 'failed', finished_at = now(), \
             error = 'the worker stopped during this attempt; the message may not have been sent' \
         WHERE delivery_id = $1 AND status = 'sending'",
    )
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let attempt: i32 = sqlx::query_scalar(
        "UPDATE alert_deliveries SET status = 'sending', attempts = attempts + 1 \
         WHERE id = $1 RETURNING attempts",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO alert_delivery_attempts (delivery_id, attempt, worker, status) \
         VALUES ($1, $2, $3, 'sending')",
    )
    .bind(id)
    .bind(attempt)
    .bind(worker)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Some(attempt))
}

/// Closes an attempt; `final_status` (`sent` or `failed`) also ends the delivery, `None` leaves
/// it for another attempt.
pub async fn finish_attempt(
    conn: &mut PgConnection,
    id: Uuid,
    attempt: i32,
    attempt_status: &str,
    error: Option<&str>,
    response_code: Option<i32>,
    final_status: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE alert_delivery_attempts SET status = $3, error = $4, response_code = $5, \
             finished_at = now() \
         WHERE delivery_id = $1 AND attempt = $2",
    )
    .bind(id)
    .bind(attempt)
    .bind(attempt_status)
    .bind(error)
    .bind(response_code)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE alert_deliveries SET error = $2, \
             status = coalesce($3, status), \
             finished_at = CASE WHEN $3::text IS NULL THEN finished_at ELSE now() END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(error)
    .bind(final_status)
    .execute(conn)
    .await?;
    Ok(())
}

/// The frozen details of a delivery's events, soonest expiry first.
pub async fn event_details(
    pool: &PgPool,
    delivery_id: Uuid,
    limit: i64,
) -> Result<(Vec<serde_json::Value>, i64), sqlx::Error> {
    let rows: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT details FROM alert_events WHERE delivery_id = $1 \
         ORDER BY details->>'expiresOn' NULLS LAST, details->>'name' LIMIT $2",
    )
    .bind(delivery_id)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_events WHERE delivery_id = $1")
        .bind(delivery_id)
        .fetch_one(pool)
        .await?;
    Ok((rows, total))
}
