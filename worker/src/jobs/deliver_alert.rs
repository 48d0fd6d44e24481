//! `deliver_alert`: sends one delivery through its rule's channel, with bounded retries inside
//! the job (backoff doubling from `ALERT_RETRY_BASE_MS`, or the peer's `Retry-After`), and
//! records every attempt. Apalis does not retry it again: a permanent failure ends it. A
//! delivery whose rule was deleted, or that comes up while notifications are off, fails at
//! once and says why.
//!
//! Once only: the delivery row is claimed by id and moves to `sent` in the transaction that
//! closes the attempt, so a second worker, a redelivered task or a restart finds it finished.
//! What cannot be known is whether a message reached the peer when the worker died between
//! the peer's acceptance and that commit; the next attempt then sends it again, with the same
//! Message-ID (email) or delivery header (webhooks), so the receiver can tell.

use std::time::Duration;

use apalis::prelude::Data;
use chrono::Utc;
use shared::alerts::message::{self, Item, Message};
use shared::alerts::send::{self, Outcome as Sent};
use shared::alerts::{CHANNEL_SEAL_PURPOSE, ChannelTarget};
use shared::crypto::Sealer;
use shared::db;
use shared::db::alerts::Delivery;
use shared::domain::{AlertType, DeliveryMethod};
use shared::jobs::{DELIVER_ALERT, DeliverAlert};
use tracing::Instrument;

use super::{HandlerResult, Outcome};
use crate::WorkerState;

/// Runs one `deliver_alert` task.
pub async fn handle(task: DeliverAlert, state: Data<WorkerState>) -> HandlerResult {
    let span = tracing::info_span!("job", job.kind = DELIVER_ALERT, job.id = %task.job_id,
        delivery.id = %task.delivery_id);
    let started = std::time::Instant::now();
    let result = run(&task, &state).instrument(span).await;
    super::finish(DELIVER_ALERT, started, result)
}

async fn run(task: &DeliverAlert, state: &WorkerState) -> anyhow::Result<Outcome> {
    let Some(_job) = db::jobs::claim(&state.pool, task.job_id, &state.name).await? else {
        return Ok(Outcome::Skipped);
    };
    let Some(delivery) = db::alerts::get_delivery(&state.pool, task.delivery_id).await? else {
        finish_job(state, task, Some("the delivery no longer exists")).await?;
        return Ok(Outcome::Skipped);
    };
    let config = &state.config.alerts;
    let prepared = prepare(state, &delivery).await;
    loop {
        let Some(attempt) =
            db::alerts::start_attempt(&state.pool, delivery.id, &state.name).await?
        else {
            // Already sent or failed: a duplicate task.
            finish_job(state, task, None).await?;
            return Ok(Outcome::Skipped);
        };
        let outcome = match &prepared {
            Ok((method, target, message)) => {
                send::send(config, *method, target, delivery.recipient.as_deref(), message).await
            }
            Err(error) => Sent::Permanent { error: error.clone(), code: None },
        };
        let last = attempt >= config.max_attempts as i32;
        let mut tx = state.pool.begin().await?;
        let (result, wait) = match &outcome {
            Sent::Sent { code } => {
                db::alerts::finish_attempt(
                    &mut tx,
                    delivery.id,
                    attempt,
                    "sent",
                    None,
                    *code,
                    Some("sent"),
                )
                .await?;
                (Some(Outcome::Succeeded), None)
            }
            Sent::Permanent { error, code } => {
                db::alerts::finish_attempt(
                    &mut tx,
                    delivery.id,
                    attempt,
                    "failed",
                    Some(error),
                    *code,
                    Some("failed"),
                )
                .await?;
                (Some(Outcome::Failed), None)
            }
            Sent::Transient { error, code, .. } if last => {
                let error = format!("gave up after {attempt} attempts: {error}");
                db::alerts::finish_attempt(
                    &mut tx,
                    delivery.id,
                    attempt,
                    "failed",
                    Some(&error),
                    *code,
                    Some("failed"),
                )
                .await?;
                (Some(Outcome::Failed), None)
            }
            Sent::Transient { error, code, retry_after } => {
                db::alerts::finish_attempt(
                    &mut tx,
                    delivery.id,
                    attempt,
                    "retrying",
                    Some(error),
                    *code,
                    None,
                )
                .await?;
                let backoff = config.retry_base.saturating_mul(1 << (attempt - 1).clamp(0, 10));
                (None, Some(retry_after.unwrap_or(backoff).min(Duration::from_secs(300))))
            }
        };
        if let Some(result) = result {
            let error = match &outcome {
                Sent::Sent { .. } => None,
                Sent::Permanent { error, .. } | Sent::Transient { error, .. } => {
                    Some(error.as_str())
                }
            };
            db::jobs::finish(&mut tx, task.job_id, error).await?;
            tx.commit().await?;
            log_outcome(&delivery, attempt, &outcome);
            return Ok(result);
        }
        tx.commit().await?;
        log_outcome(&delivery, attempt, &outcome);
        if let Some(wait) = wait {
            tokio::time::sleep(wait).await;
        }
    }
}

fn log_outcome(delivery: &Delivery, attempt: i32, outcome: &Sent) {
    match outcome {
        Sent::Sent { code } => tracing::info!(channel = %delivery.channel, attempt, ?code,
            events = delivery.event_count, "alert delivered"),
        Sent::Transient { error, .. } => tracing::warn!(channel = %delivery.channel, attempt,
            error = %error, "alert delivery failed; will retry if attempts remain"),
        Sent::Permanent { error, .. } => tracing::warn!(channel = %delivery.channel, attempt,
            error = %error, "alert delivery failed for good"),
    }
}

async fn finish_job(
    state: &WorkerState,
    task: &DeliverAlert,
    error: Option<&str>,
) -> anyhow::Result<()> {
    let mut tx = state.pool.begin().await?;
    db::jobs::finish(&mut tx, task.job_id, error).await?;
    tx.commit().await?;
    Ok(())
}

/// Builds the message and opens the channel credentials. An error here is permanent: so is
/// the notifications switch being off when the delivery's turn comes (it was queued before the
/// switch; sending it later would surprise whoever turned alerts off).
async fn prepare(
    state: &WorkerState,
    delivery: &Delivery,
) -> Result<(DeliveryMethod, ChannelTarget, Message), String> {
    if !db::settings::notifications_enabled(&state.pool).await.map_err(|e| e.to_string())? {
        return Err("notifications are turned off (features.enableNotifications); the alert \
                    was not sent"
            .to_owned());
    }
    let method: DeliveryMethod =
        delivery.channel.parse().map_err(|e| format!("channel {}: {e}", delivery.channel))?;
    let alert_type: AlertType =
        delivery.alert_type.parse().map_err(|e| format!("type {}: {e}", delivery.alert_type))?;
    let target = match delivery.rule_id {
        None => return Err("the rule was deleted before its alert was sent".to_owned()),
        Some(rule_id) => {
            let mut conn = state.pool.acquire().await.map_err(|e| e.to_string())?;
            let rule = db::alerts::get_rule(&mut conn, rule_id).await.map_err(|e| e.to_string())?;
            let Some(rule) = rule else {
                return Err("the rule was deleted before its alert was sent".to_owned());
            };
            open_target(state, rule.channel_sealed.as_deref())?
        }
    };
    let (details, total) =
        db::alerts::event_details(&state.pool, delivery.id, message::MAX_LISTED as i64)
            .await
            .map_err(|e| e.to_string())?;
    let items: Vec<Item> =
        details.into_iter().filter_map(|d| serde_json::from_value(d).ok()).collect();
    let more = (total as usize).saturating_sub(items.len());
    let message = Message {
        delivery_id: delivery.id,
        rule_name: delivery.rule_name.clone(),
        alert_type,
        subject: delivery.subject.clone(),
        items,
        more,
        test: false,
        link: state.config.alerts.public_url.as_ref().map(|u| u.to_string()),
        generated_at: Utc::now(),
    };
    Ok((method, target, message))
}

/// Opens a rule's sealed channel credentials.
pub fn open_target(state: &WorkerState, sealed: Option<&str>) -> Result<ChannelTarget, String> {
    match sealed {
        None => Ok(ChannelTarget::default()),
        Some(sealed) => {
            let sealer = Sealer::new(state.config.secret_key.expose(), CHANNEL_SEAL_PURPOSE);
            let plain = sealer.open(sealed).map_err(|e| e.to_string())?;
            serde_json::from_str(&plain).map_err(|e| format!("stored channel settings: {e}"))
        }
    }
}
