//! Cron schedules of unattended scans. Every worker replica runs the same schedules
//! (tokio-cron-scheduler); a tick is claimed in Postgres (`schedule_ticks`, keyed by schedule
//! and fire time) in the same transaction that records the scan, so exactly one replica
//! enqueues it.
//!
//! | schedule | default (UTC) | variable | enqueues |
//! |---|---|---|---|
//! | `delta` | `0 0 */6 * * *` (every 6 hours) | `SCAN_SCHEDULE_DELTA` | a `delta` scan ([`crate::jobs::discover_vaults`]) |
//! | `full` | `0 30 2 * * *` (02:30 daily) | `SCAN_SCHEDULE_FULL` | a `full` scan |
//!
//! | `retention` | `0 15 3 * * *` (03:15 daily) | `RETENTION_SCHEDULE` | the retention purge, run in the claiming transaction |
//! | `alerts` | `0 5 * * * *` (hourly) | `ALERT_EVALUATION_SCHEDULE` | an alert evaluation ([`crate::jobs::evaluate_alerts`]) |
//! | `alert_digest` | `0 0 8 * * *` (08:00 daily) | `ALERT_DIGEST_SCHEDULE` | the digest run (an evaluation that also sends digests) |
//!
//! A scan tick missed while no worker ran is caught up once at start-up (not once per missed
//! tick).

use anyhow::Context;
use chrono::{DateTime, SubsecRound, Utc};
use shared::config::{ScanSchedule, parse_cron};
use shared::db;
use shared::scans::Requested;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::WorkerState;

/// Starts the scheduler with every configured schedule, after catching up missed ticks.
pub async fn start(
    state: &WorkerState,
    schedules: &[ScanSchedule],
) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new().await.context("creating the cron scheduler")?;
    for schedule in schedules {
        catch_up(state, schedule).await?;
        let state = state.clone();
        let schedule_for_job = schedule.clone();
        let job = Job::new_async(schedule.cron.as_str(), move |_id, _lock| {
            let state = state.clone();
            let schedule = schedule_for_job.clone();
            Box::pin(async move {
                if let Err(e) = fire(&state, &schedule, Utc::now(), "enqueued").await {
                    tracing::warn!(
                        schedule = schedule.name,
                        error = format!("{e:#}"),
                        "scheduled scan could not be recorded"
                    );
                }
            })
        })
        .with_context(|| format!("schedule {}", schedule.name))?;
        scheduler.add(job).await.context("adding a schedule")?;
    }
    if let Some(cron) = state.retention_schedule.clone() {
        let state = state.clone();
        let expression = cron.clone();
        let job = Job::new_async(expression.as_str(), move |_id, _lock| {
            let state = state.clone();
            let cron = cron.clone();
            Box::pin(async move {
                if let Err(e) = purge(&state, &cron, Utc::now()).await {
                    tracing::warn!(error = format!("{e:#}"), "retention purge failed");
                }
            })
        })
        .context("the retention schedule")?;
        scheduler.add(job).await.context("adding the retention schedule")?;
    }
    let alert_schedules = [
        (ALERTS, state.config.alerts.evaluation_schedule.clone(), false),
        (ALERT_DIGEST, state.config.alerts.digest_schedule.clone(), true),
    ];
    for (name, cron, digest) in alert_schedules {
        let Some(cron) = cron else { continue };
        catch_up_alerts(state, name, &cron, digest).await?;
        let state = state.clone();
        let expression = cron.clone();
        let job = Job::new_async(expression.as_str(), move |_id, _lock| {
            let state = state.clone();
            let cron = cron.clone();
            Box::pin(async move {
                if let Err(e) = fire_alerts(&state, name, &cron, digest, Utc::now()).await {
                    tracing::warn!(
                        schedule = name,
                        error = format!("{e:#}"),
                        "scheduled alert evaluation could not be recorded"
                    );
                }
            })
        })
        .with_context(|| format!("the {name} schedule"))?;
        scheduler.add(job).await.context("adding an alert schedule")?;
    }
    scheduler.start().await.context("starting the cron scheduler")?;
    Ok(scheduler)
}

/// Claims a retention tick and, if this replica won it, purges every history type as the
/// retention settings say, in the same transaction. Returns whether this replica ran it.
pub async fn purge(state: &WorkerState, cron: &str, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let cron_parsed = parse_cron(cron).map_err(anyhow::Error::msg)?;
    let fire_at = cron_parsed
        .find_previous_occurrence(&now.trunc_subsecs(0), true)
        .map_err(|e| anyhow::anyhow!("retention schedule: {e}"))?;
    let stored = shared::settings::stored(&state.pool).await?;
    let env = |k: &str| state.config.setting_env(k);

    let mut tx = state.pool.begin().await?;
    if !db::scans::claim_tick(&mut tx, "retention", fire_at, &state.name, "purged").await? {
        return Ok(false);
    }
    let actor = shared::audit::Actor::system("schedule:retention");
    for history_type in shared::retention::HISTORY_TYPES {
        let key = shared::retention::setting_key(history_type).unwrap_or_default();
        let Some(def) = shared::settings::find("retention", key) else { continue };
        let days = shared::settings::resolve(def, &stored, &env).value.as_i64().unwrap_or(365);
        shared::retention::purge(&mut tx, &state.audit_key, &actor, history_type, days).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// Schedule names of the alert evaluation and the digest run in `schedule_ticks`.
pub const ALERTS: &str = "alerts";
pub const ALERT_DIGEST: &str = "alert_digest";

/// Claims the alert tick at `now` and, if this replica won it, records and enqueues an alert
/// evaluation (`digest`: the digest run). Returns whether this replica claimed the tick.
pub async fn fire_alerts(
    state: &WorkerState,
    name: &'static str,
    cron: &str,
    digest: bool,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let parsed = parse_cron(cron).map_err(anyhow::Error::msg)?;
    let fire_at = parsed
        .find_previous_occurrence(&now.trunc_subsecs(0), true)
        .map_err(|e| anyhow::anyhow!("schedule {name}: {e}"))?;
    let mut tx = state.pool.begin().await?;
    if !db::scans::claim_tick(&mut tx, name, fire_at, &state.name, "enqueued").await? {
        return Ok(false);
    }
    let task = shared::jobs::record_alert_evaluation(&mut tx, None, digest).await?;
    tx.commit().await?;
    if let Err(e) = state.queues.push_evaluate_alerts(task).await {
        tracing::warn!(error = %e, "scheduled alert evaluation recorded but not enqueued");
    }
    Ok(true)
}

/// Runs a missed alert tick once at start-up (a digest must not be skipped because no worker
/// ran at 08:00).
async fn catch_up_alerts(
    state: &WorkerState,
    name: &'static str,
    cron: &str,
    digest: bool,
) -> anyhow::Result<()> {
    let parsed = parse_cron(cron).map_err(anyhow::Error::msg)?;
    let due = parsed
        .find_previous_occurrence(&Utc::now().trunc_subsecs(0), true)
        .map_err(|e| anyhow::anyhow!("schedule {name}: {e}"))?;
    let Some(last) = db::scans::last_tick(&state.pool, name).await? else {
        return Ok(());
    };
    if last < due && fire_alerts(state, name, cron, digest, due).await? {
        tracing::info!(schedule = name, missed = %due, "caught up a missed alert tick");
    }
    Ok(())
}

/// The occurrence a tick firing at `now` belongs to (the scheduler may fire a little late).
fn occurrence(schedule: &ScanSchedule, now: DateTime<Utc>) -> anyhow::Result<DateTime<Utc>> {
    let cron = parse_cron(&schedule.cron).map_err(anyhow::Error::msg)?;
    cron.find_previous_occurrence(&now.trunc_subsecs(0), true)
        .map_err(|e| anyhow::anyhow!("schedule {}: {e}", schedule.name))
}

/// Claims the tick at `now` and, if this replica won it and no scan is active, records a scan.
/// Returns whether this replica claimed the tick.
pub async fn fire(
    state: &WorkerState,
    schedule: &ScanSchedule,
    now: DateTime<Utc>,
    outcome: &str,
) -> anyhow::Result<bool> {
    let fire_at = occurrence(schedule, now)?;
    let mut tx = state.pool.begin().await?;
    if !db::scans::claim_tick(&mut tx, schedule.name, fire_at, &state.name, outcome).await? {
        return Ok(false);
    }
    let requested_by = format!("schedule:{}", schedule.name);
    let task = match shared::scans::request(&mut tx, schedule.mode, &requested_by, None).await? {
        Requested::Recorded { scan_id, task } => {
            db::scans::record_tick(&mut tx, schedule.name, fire_at, outcome, Some(scan_id)).await?;
            let details =
                serde_json::json!({"mode": schedule.mode, "tick": fire_at, "outcome": outcome});
            let target = scan_id.to_string();
            shared::audit::record(
                &mut tx,
                &state.audit_key,
                &shared::audit::Actor::system(&requested_by),
                "discovery.scan.requested",
                Some(&target),
                details,
            )
            .await?;
            Some(task)
        }
        Requested::Busy { active } => {
            tracing::info!(schedule = schedule.name, scan.id = %active,
                "scheduled scan skipped: a scan is still active");
            db::scans::record_tick(&mut tx, schedule.name, fire_at, "skipped_active", None).await?;
            None
        }
    };
    tx.commit().await?;

    if let Some(task) = task {
        tracing::info!(schedule = schedule.name, scan.id = %task.scan_id, "scheduled scan queued");
        if let Err(e) = state.queues.push_discover(task).await {
            tracing::warn!(error = %e, "scheduled scan recorded but not enqueued; the sweeper will");
        }
    }
    Ok(true)
}

/// Enqueues the latest missed tick once, if an earlier tick was claimed and the latest
/// occurrence was not (the workers were down when it fell due).
async fn catch_up(state: &WorkerState, schedule: &ScanSchedule) -> anyhow::Result<()> {
    let due = occurrence(schedule, Utc::now())?;
    let Some(last) = db::scans::last_tick(&state.pool, schedule.name).await? else {
        return Ok(());
    };
    if last < due && fire(state, schedule, due, "catch_up").await? {
        tracing::info!(schedule = schedule.name, missed = %due, "caught up a missed tick");
    }
    Ok(())
}
