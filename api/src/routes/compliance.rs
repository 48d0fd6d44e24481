//! `/compliance/*`: the score of the latest evaluation, open violations with their remedy, the
//! frameworks and their controls, and on-demand evaluation (a job).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::audit;
use shared::compliance::frameworks::Evidence;
use shared::compliance::{Severity, frameworks, rules};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::origin::Origin;
use crate::pagination::{Page, Paging};
use crate::state::AppState;

#[derive(sqlx::FromRow)]
struct Evaluation {
    evaluated_at: DateTime<Utc>,
    total: i32,
    passed: i32,
    failed: i32,
    by_severity: Value,
    by_rule: Value,
}

async fn latest(state: &AppState) -> Result<Option<Evaluation>, ApiError> {
    Ok(sqlx::query_as::<_, Evaluation>(
        "SELECT evaluated_at, total, passed, failed, by_severity, by_rule \
         FROM compliance_evaluations ORDER BY evaluated_at DESC LIMIT 1",
    )
    .fetch_optional(&state.pool)
    .await?)
}

fn score(passed: i64, total: i64) -> f64 {
    if total == 0 { 100.0 } else { (passed as f64 * 1000.0 / total as f64).round() / 10.0 }
}

/// The body of `GET /compliance/score` (built with `json!` below; documented here).
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"score": 87.5, "passed": 42, "failed": 6, "total": 48,
    "bySeverity": {"critical": 0, "high": 2, "medium": 3, "low": 1},
    "evaluatedAt": "2026-12-01T06:00:00Z"}))]
#[expect(dead_code, reason = "documents a body the handler builds with json!")]
struct ComplianceScore {
    /// Percent of passed checks, one decimal; `null` before the first evaluation.
    score: Option<f64>,
    passed: i64,
    failed: i64,
    total: i64,
    /// Failed checks per severity.
    #[schema(rename = "bySeverity")]
    by_severity: BTreeMap<Severity, i64>,
    #[schema(rename = "evaluatedAt")]
    evaluated_at: Option<DateTime<Utc>>,
}

/// `GET /compliance/score`: the share of passed checks in the latest evaluation.
#[utoipa::path(
    get,
    path = "/compliance/score",
    tag = "compliance",
    operation_id = "getComplianceScore",
    summary = "The compliance score of the latest evaluation",
    responses((status = 200, description = "Score and counts.", body = ComplianceScore)),
)]
pub async fn get_score(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let Some(e) = latest(&state).await? else {
        return Ok(Json(json!({"score": null, "passed": 0, "failed": 0, "total": 0,
            "bySeverity": {"critical": 0, "high": 0, "medium": 0, "low": 0}, "evaluatedAt": null})));
    };
    Ok(Json(json!({
        "score": score(i64::from(e.passed), i64::from(e.total)),
        "passed": e.passed,
        "failed": e.failed,
        "total": e.total,
        "bySeverity": e.by_severity,
        "evaluatedAt": e.evaluated_at,
    })))
}

/// The body of `POST /compliance/evaluate` (built with `json!` below; documented here).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "documents a body the handler builds with json!")]
struct EvaluationAccepted {
    #[schema(rename = "jobId")]
    job_id: Uuid,
    /// Always `queued`.
    #[schema(example = "queued")]
    status: String,
}

/// `POST /compliance/evaluate`: records an evaluation job and enqueues it.
#[utoipa::path(
    post,
    path = "/compliance/evaluate",
    tag = "compliance",
    operation_id = "evaluateCompliance",
    summary = "Evaluate compliance now",
    responses((status = 202, description = "The evaluation job is queued.",
        body = EvaluationAccepted)),
)]
pub async fn evaluate(
    State(state): State<AppState>,
    origin: Origin,
    user: AuthUser,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut tx = state.pool.begin().await?;
    let task = shared::jobs::record_evaluation(&mut tx).await?;
    let target = task.job_id.to_string();
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "compliance.evaluation.requested",
        Some(&target),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    let job_id = task.job_id;
    if let Err(e) = state.queues.push_evaluate(task).await {
        tracing::warn!(error = %e, "evaluation recorded but not enqueued; the sweeper will");
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"jobId": job_id, "status": "queued"}))))
}

/// Filters of the violation list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ViolationQuery {
    /// Only violations of this severity.
    #[param(value_type = Option<Severity>)]
    pub severity: Option<String>,
    /// Only violations of rules this framework maps, by framework id.
    #[param(value_type = Option<crate::openapi::registry::FrameworkId>, example = "cis-kv")]
    pub framework: Option<String>,
    /// Page size: 1 to 500, 50 when absent.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Items to skip.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// An open violation.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    pub id: Uuid,
    #[schema(example = "KV-VAULT-PURGE-PROTECTION")]
    pub rule_id: String,
    #[schema(value_type = Severity)]
    pub severity: String,
    /// `vault`, `secret`, `key` or `certificate`.
    pub target_type: String,
    pub target_id: Uuid,
    pub target_name: Option<String>,
    pub vault_name: Option<String>,
    /// What the rule saw, such as the expiry date.
    #[schema(value_type = Object)]
    pub details: Value,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub title: &'static str,
    #[sqlx(skip)]
    pub remedy: &'static str,
}

/// `GET /compliance/violations`.
#[utoipa::path(
    get,
    path = "/compliance/violations",
    tag = "compliance",
    operation_id = "listViolations",
    summary = "Open violations with their remedy, most severe first",
    params(ViolationQuery),
    responses((status = 200, description = "A page of open violations.", body = Page<Violation>)),
)]
pub async fn violations(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(query): Query<ViolationQuery>,
) -> Result<Json<Page<Violation>>, ApiError> {
    let (limit, offset) = Paging { limit: query.limit, offset: query.offset }.validate()?;
    if let Some(s) = &query.severity
        && !["critical", "high", "medium", "low"].contains(&s.as_str())
    {
        return Err(ApiError::invalid("severity", "expected one of: critical, high, medium, low"));
    }
    let rule_ids: Option<Vec<String>> = match &query.framework {
        None => None,
        Some(id) => {
            let f = frameworks::find(id).ok_or_else(|| {
                let known: Vec<&str> = frameworks::FRAMEWORKS.iter().map(|f| f.id).collect();
                ApiError::invalid("framework", format!("expected one of: {}", known.join(", ")))
            })?;
            Some(f.controls.iter().flat_map(|c| c.rules.iter().map(|r| (*r).to_owned())).collect())
        }
    };
    let rows = sqlx::query_as::<_, Violation>(
        "SELECT v.id, v.rule_id, v.severity, v.target_type, v.target_id, \
                coalesce(a.name, vv.name) AS target_name, coalesce(av.name, vv.name) AS vault_name, \
                v.details, v.first_seen_at, v.last_seen_at \
         FROM compliance_violations v \
         LEFT JOIN assets a ON v.target_type = 'asset' AND a.id = v.target_id \
         LEFT JOIN vaults av ON av.id = a.vault_id \
         LEFT JOIN vaults vv ON v.target_type = 'vault' AND vv.id = v.target_id \
         WHERE v.resolved_at IS NULL AND ($1::text IS NULL OR v.severity = $1) \
           AND ($2::text[] IS NULL OR v.rule_id = ANY($2)) \
         ORDER BY CASE v.severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2 \
                  ELSE 3 END, v.first_seen_at, v.id \
         LIMIT $3 OFFSET $4",
    )
    .bind(&query.severity)
    .bind(&rule_ids)
    .bind(limit)
    .bind(offset)
    .fetch_all(&state.pool)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM compliance_violations WHERE resolved_at IS NULL \
         AND ($1::text IS NULL OR severity = $1) AND ($2::text[] IS NULL OR rule_id = ANY($2))",
    )
    .bind(&query.severity)
    .bind(&rule_ids)
    .fetch_one(&state.pool)
    .await?;
    let items = rows
        .into_iter()
        .map(|mut v| {
            if let Some(rule) = rules::find(&v.rule_id) {
                v.title = rule.title;
                v.remedy = rule.remedy;
            }
            v
        })
        .collect();
    Ok(Json(Page { items, total, limit, offset }))
}

fn control_counts(by_rule: Option<&Value>, rules: &[&str]) -> (i64, i64) {
    let mut checked = 0;
    let mut failed = 0;
    for r in rules {
        if let Some(outcome) = by_rule.and_then(|b| b.get(*r)) {
            checked += outcome["checked"].as_i64().unwrap_or(0);
            failed += outcome["failed"].as_i64().unwrap_or(0);
        }
    }
    (checked - failed, failed)
}

/// A framework in the list (built with `json!` below; documented here).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "documents a body the handler builds with json!")]
struct FrameworkSummary {
    #[schema(example = "cis-kv")]
    id: String,
    name: String,
    /// How many controls the framework has.
    controls: i64,
    /// Passed and failed checks of the rules its controls map, in the latest evaluation.
    passed: i64,
    failed: i64,
    score: f64,
}

/// The body of `GET /compliance/frameworks`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "documents a body the handler builds with json!")]
struct FrameworkList {
    items: Vec<FrameworkSummary>,
    total: i64,
}

/// `GET /compliance/frameworks`.
#[utoipa::path(
    get,
    path = "/compliance/frameworks",
    tag = "compliance",
    operation_id = "listFrameworks",
    summary = "The frameworks and their scores",
    responses((status = 200, description = "Every framework.", body = FrameworkList)),
)]
pub async fn list_frameworks(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let latest = latest(&state).await?;
    let by_rule = latest.as_ref().map(|e| &e.by_rule);
    let items: Vec<Value> = frameworks::FRAMEWORKS
        .iter()
        .map(|f| {
            let rules: Vec<&str> =
                f.controls.iter().flat_map(|c| c.rules.iter().copied()).collect();
            let (passed, failed) = control_counts(by_rule, &rules);
            json!({"id": f.id, "name": f.name, "controls": f.controls.len(),
                "passed": passed, "failed": failed, "score": score(passed, passed + failed)})
        })
        .collect();
    Ok(Json(json!({"items": items, "total": items.len()})))
}

/// A rule a control maps (built with `json!` below; documented here).
#[derive(utoipa::ToSchema)]
#[schema(as = ComplianceRule)]
#[expect(dead_code, reason = "documents a body the handler builds with json!")]
struct RuleBody {
    id: String,
    title: String,
    severity: Severity,
    remedy: String,
}

/// A control of a framework.
#[derive(utoipa::ToSchema)]
#[schema(as = FrameworkControl)]
#[expect(dead_code, reason = "documents a body the handler builds with json!")]
struct ControlBody {
    id: String,
    title: String,
    /// How much the rules show of the control.
    evidence: Evidence,
    rules: Vec<RuleBody>,
    passed: i64,
    failed: i64,
}

/// The body of `GET /compliance/frameworks/{framework_id}`.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "documents a body the handler builds with json!")]
struct FrameworkDetail {
    id: String,
    name: String,
    controls: Vec<ControlBody>,
    #[schema(rename = "evaluatedAt")]
    evaluated_at: Option<DateTime<Utc>>,
}

/// `GET /compliance/frameworks/{framework_id}`.
#[utoipa::path(
    get,
    path = "/compliance/frameworks/{framework_id}",
    tag = "compliance",
    operation_id = "getFramework",
    summary = "A framework's controls, their rules and outcomes",
    params(("framework_id" = crate::openapi::registry::FrameworkId, Path,
        description = "The framework's id.", example = "cis-kv")),
    responses(
        (status = 200, description = "The framework.", body = FrameworkDetail),
        (status = 404, description = "No such framework.", body = ErrorBody),
    ),
)]
pub async fn get_framework(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let f = frameworks::find(&id).ok_or_else(|| ApiError::not_found(format!("framework {id}")))?;
    let latest = latest(&state).await?;
    let by_rule = latest.as_ref().map(|e| &e.by_rule);
    let controls: Vec<Value> = f
        .controls
        .iter()
        .map(|c| {
            let (passed, failed) = control_counts(by_rule, c.rules);
            let rules: Vec<Value> = c
                .rules
                .iter()
                .filter_map(|r| rules::find(r))
                .map(|r| json!({"id": r.id, "title": r.title, "severity": r.severity, "remedy": r.remedy}))
                .collect();
            json!({"id": c.id, "title": c.title, "evidence": c.evidence, "rules": rules,
                "passed": passed, "failed": failed})
        })
        .collect();
    Ok(Json(json!({"id": f.id, "name": f.name, "controls": controls,
        "evaluatedAt": latest.map(|e| e.evaluated_at)})))
}
