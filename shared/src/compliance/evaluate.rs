//! One evaluation: every rule's failing targets into a temporary table (one statement per
//! rule), then violations opened, refreshed and resolved with set-based statements, and a
//! summary row for the score.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{Target, rules};
use crate::domain::ExpiryThresholds;

/// The outcome of an evaluation.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub total: i64,
    pub passed: i64,
    pub failed: i64,
    pub by_severity: BTreeMap<&'static str, i64>,
    pub by_rule: BTreeMap<&'static str, RuleOutcome>,
}

/// Checks and failures of one rule.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RuleOutcome {
    pub checked: i64,
    pub failed: i64,
}

/// Evaluates every rule inside `conn`'s transaction and records the result.
pub async fn run(
    conn: &mut PgConnection,
    thresholds: ExpiryThresholds,
) -> Result<Summary, sqlx::Error> {
    sqlx::query(
        "CREATE TEMP TABLE current_failures (rule_id text, target_id uuid, details jsonb) \
         ON COMMIT DROP",
    )
    .execute(&mut *conn)
    .await?;

    let mut by_rule = BTreeMap::new();
    let mut by_severity: BTreeMap<&'static str, i64> =
        ["critical", "high", "medium", "low"].into_iter().map(|s| (s, 0)).collect();
    let (mut total, mut failed_total) = (0, 0);
    for rule in rules::all() {
        let checked: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM ({}) AS applicable",
            rule.applicable
        )))
        .fetch_one(&mut *conn)
        .await?;
        // The rule SQL is a constant of this crate, never input.
        let failed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO current_failures SELECT $3, f.id, f.details FROM ({}) AS f(id, details)",
            rule.failing
        )))
        .bind(thresholds.critical_expiry_days as i32)
        .bind(thresholds.warning_expiry_days as i32)
        .bind(rule.id)
        .execute(&mut *conn)
        .await?
        .rows_affected() as i64;
        total += checked;
        failed_total += failed;
        *by_severity.entry(rule.severity.as_str()).or_default() += failed;
        by_rule.insert(rule.id, RuleOutcome { checked, failed });
    }

    let all = rules::all();
    let ids: Vec<&str> = all.iter().map(|r| r.id).collect();
    let severities: Vec<&str> = all.iter().map(|r| r.severity.as_str()).collect();
    let targets: Vec<&str> =
        all.iter().map(|r| if r.target == Target::Vault { "vault" } else { "asset" }).collect();
    sqlx::query(
        "INSERT INTO compliance_violations (id, rule_id, severity, target_type, target_id, details) \
         SELECT gen_random_uuid(), c.rule_id, r.severity, r.target_type, c.target_id, c.details \
         FROM current_failures c \
         JOIN UNNEST($1::text[], $2::text[], $3::text[]) AS r(rule_id, severity, target_type) \
             ON r.rule_id = c.rule_id \
         ON CONFLICT (rule_id, target_id) WHERE resolved_at IS NULL \
         DO UPDATE SET last_seen_at = now(), details = EXCLUDED.details",
    )
    .bind(&ids)
    .bind(&severities)
    .bind(&targets)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE compliance_violations v SET resolved_at = now() \
         WHERE resolved_at IS NULL AND NOT EXISTS ( \
             SELECT 1 FROM current_failures c \
             WHERE c.rule_id = v.rule_id AND c.target_id = v.target_id)",
    )
    .execute(&mut *conn)
    .await?;

    let summary =
        Summary { total, passed: total - failed_total, failed: failed_total, by_severity, by_rule };
    sqlx::query(
        "INSERT INTO compliance_evaluations (id, total, passed, failed, by_severity, by_rule) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(Uuid::new_v4())
    .bind(summary.total as i32)
    .bind(summary.passed as i32)
    .bind(summary.failed as i32)
    .bind(serde_json::to_value(&summary.by_severity).unwrap_or_default())
    .bind(serde_json::to_value(&summary.by_rule).unwrap_or_default())
    .execute(&mut *conn)
    .await?;
    Ok(summary)
}
