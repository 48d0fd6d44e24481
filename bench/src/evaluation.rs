//! Measure 5: compliance evaluation and alert evaluation over the scanned inventory, each as a
//! job through the product's path (a job row, an apalis task, one worker process) and timed
//! from its row: `started_at` to `finished_at` is the evaluation itself, request to finish is
//! what a user waits.
//!
//! The compliance evaluation is requested through `POST /compliance/evaluate`. Alert rules are
//! created through `POST /alerts/rules` (digest mode, so evaluating sends nothing and no SMTP
//! server is needed); the evaluation job has no route of its own (the worker records it after a
//! scan and hourly), so the bench records it the way the worker's schedule does.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::{Value, json};
use shared::jobs::Queues;
use uuid::Uuid;

use crate::api_load::Api;
use crate::infra::{self, Process};

/// One timed evaluation job.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EvaluationFigure {
    pub what: String,
    /// `finished_at - started_at` of the job row.
    pub run_seconds: f64,
    /// `started_at - created_at` of the job row: the wait in the queue.
    pub queued_seconds: f64,
    /// From the request (or the enqueue) to the job row's `finished_at`.
    pub wall_seconds: f64,
    pub status: String,
    /// What the evaluation produced, for reading (checks and violations, or alert events).
    pub produced: Value,
}

/// The alert rules the bench creates: expiring thresholds to a fixed address, expiring to the
/// owner tag of each asset, and expired.
fn rules() -> Vec<Value> {
    vec![
        json!({"name": "bench: expiring, fixed address", "alertType": "secret_expiring",
               "thresholds": [30, 14, 7], "deliveryMethod": "email", "deliveryMode": "digest",
               "recipients": ["security@bench.example"]}),
        json!({"name": "bench: expiring, owner tag", "alertType": "secret_expiring",
               "thresholds": [30, 14, 7], "deliveryMethod": "email", "deliveryMode": "digest",
               "recipients": ["tag:owner"]}),
        json!({"name": "bench: expired", "alertType": "secret_expired",
               "deliveryMethod": "email", "deliveryMode": "digest",
               "recipients": ["security@bench.example"]}),
    ]
}

/// Runs the compliance evaluation once and the alert evaluation twice (the first records the
/// events, the second finds every crossing already recorded, as an hourly run does).
pub async fn run(
    api: &Api,
    vars: &HashMap<String, String>,
    database_url: &str,
) -> anyhow::Result<Vec<EvaluationFigure>> {
    let pool = shared::db::connect(database_url, 4).await?;
    // The scan's own follow-up jobs (an evaluation of each kind) were cut short when its
    // worker was stopped; cancel them so that none runs inside the timings.
    sqlx::query(
        "UPDATE jobs SET status = 'cancelled', finished_at = now() \
         WHERE status IN ('queued', 'running')",
    )
    .execute(&pool)
    .await?;
    let worker = infra::spawn_product("certifyclouds-worker", vars)?;
    let result = measure(api, &pool, vars, &worker).await;
    worker.stop();
    pool.close().await;
    result
}

async fn measure(
    api: &Api,
    pool: &sqlx::PgPool,
    vars: &HashMap<String, String>,
    worker: &Process,
) -> anyhow::Result<Vec<EvaluationFigure>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while shared::db::workers::count_recent(pool, 30).await? < 1 {
        if Instant::now() > deadline {
            bail!("the evaluation worker did not start within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its queues register with Redis just after its first heartbeat row: let them settle, so
    // the first timing does not include the worker's start.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let http = reqwest::Client::new();
    let mut figures = Vec::new();

    let requested = Instant::now();
    let accepted: Value = http
        .post(format!("{}/compliance/evaluate", api.url))
        .bearer_auth(&api.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let job_id: Uuid = accepted["jobId"].as_str().context("jobId")?.parse()?;
    let (status, run_seconds, queued_seconds) = wait_for_job(pool, job_id, worker).await?;
    let wall_seconds = requested.elapsed().as_secs_f64();
    let score: Value = http
        .get(format!("{}/compliance/score", api.url))
        .bearer_auth(&api.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let violations: i64 =
        sqlx::query_scalar("SELECT count(*) FROM compliance_violations WHERE resolved_at IS NULL")
            .fetch_one(pool)
            .await?;
    figures.push(EvaluationFigure {
        what: "compliance evaluation (POST /compliance/evaluate)".into(),
        run_seconds,
        queued_seconds,
        wall_seconds,
        status,
        produced: json!({"checks": score.get("total"), "score": score.get("score"),
                         "openViolations": violations}),
    });

    for rule in rules() {
        http.post(format!("{}/alerts/rules", api.url))
            .bearer_auth(&api.token)
            .json(&rule)
            .send()
            .await?
            .error_for_status()
            .with_context(|| format!("creating the alert rule {}", rule["name"]))?;
    }
    let queues = Queues::connect(infra::REDIS_URL, &vars["QUEUE_PREFIX"]).await?;
    for what in ["first", "repeat"] {
        let events_before = alert_events(pool).await?;
        let requested = Instant::now();
        let mut tx = pool.begin().await?;
        let task = shared::jobs::record_alert_evaluation(&mut tx, None, false).await?;
        tx.commit().await?;
        queues.push_evaluate_alerts(task).await?;
        let (status, run_seconds, queued_seconds) = wait_for_job(pool, task.job_id, worker).await?;
        let wall_seconds = requested.elapsed().as_secs_f64();
        let events_after = alert_events(pool).await?;
        figures.push(EvaluationFigure {
            what: format!("alert evaluation, 3 rules, {what} run"),
            run_seconds,
            queued_seconds,
            wall_seconds,
            status,
            produced: json!({
                "newEvents": events_after.0 - events_before.0,
                "unroutableEvents": events_after.1 - events_before.1,
            }),
        });
    }
    Ok(figures)
}

/// Alert events recorded so far, and how many of them had no address to go to.
async fn alert_events(pool: &sqlx::PgPool) -> anyhow::Result<(i64, i64)> {
    Ok(sqlx::query_as(
        "SELECT count(*), count(*) FILTER (WHERE state = 'unroutable') FROM alert_events",
    )
    .fetch_one(pool)
    .await?)
}

/// Waits for the job row to finish; returns its status, run time and time in the queue, in
/// seconds.
async fn wait_for_job(
    pool: &sqlx::PgPool,
    job_id: Uuid,
    worker: &Process,
) -> anyhow::Result<(String, f64, f64)> {
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let row: Option<(String, Option<f64>, Option<f64>)> = sqlx::query_as(
            "SELECT status, extract(epoch FROM finished_at - started_at)::float8, \
                    extract(epoch FROM started_at - created_at)::float8 \
             FROM jobs WHERE id = $1",
        )
        .bind(job_id)
        .fetch_optional(pool)
        .await?;
        if let Some((status, run, queued)) = row
            && !matches!(status.as_str(), "queued" | "running")
        {
            return Ok((status, run.unwrap_or(f64::NAN), queued.unwrap_or(f64::NAN)));
        }
        if Instant::now() > deadline {
            bail!("job {job_id} did not finish within 30 minutes");
        }
        if infra::rss_mib(worker.pid()).is_none() {
            bail!("the evaluation worker exited");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
