//! Job payloads and the Redis queues that carry them (apalis).
//!
//! Postgres is the truth: a job row is committed before its task is pushed here, and the task
//! carries the row's id as its apalis task id. A lost push is recovered from the row.

use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId, TaskSink};
use apalis_redis::{Config as RedisConfig, RedisStorage};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Job kind of the scan job that enumerates subscriptions and vaults.
pub const DISCOVER_VAULTS: &str = "discover_vaults";
/// Job kind of the per-vault job that lists a vault's items.
pub const SCAN_VAULT: &str = "scan_vault";

/// Job kind of a compliance evaluation over the whole inventory.
pub const EVALUATE_COMPLIANCE: &str = "evaluate_compliance";

/// Job kind of an alert evaluation (and, with `digest`, the digest run).
pub const EVALUATE_ALERTS: &str = "evaluate_alerts";

/// Job kind of sending one alert delivery.
pub const DELIVER_ALERT: &str = "deliver_alert";

/// Every queue, for depth gauges and the sweeper.
pub const KINDS: &[&str] =
    &[DISCOVER_VAULTS, SCAN_VAULT, EVALUATE_COMPLIANCE, EVALUATE_ALERTS, DELIVER_ALERT];

/// Evaluate the alert rules: after a scan (`scan_id`), hourly, and for the digest (`digest`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvaluateAlerts {
    pub job_id: Uuid,
    #[serde(default)]
    pub scan_id: Option<Uuid>,
    #[serde(default)]
    pub digest: bool,
}

/// Send one alert delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliverAlert {
    pub job_id: Uuid,
    pub delivery_id: Uuid,
}

/// Evaluate every compliance rule over the inventory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvaluateCompliance {
    pub job_id: Uuid,
}

/// Enumerate subscriptions and vaults for a scan, then fan out one job per vault.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DiscoverVaults {
    pub job_id: Uuid,
    pub scan_id: Uuid,
}

/// List the secrets, keys and certificates of one vault for a scan.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScanVault {
    pub job_id: Uuid,
    pub scan_id: Uuid,
    pub vault_id: Uuid,
}

/// How long a Redis reply may take before the call fails.
pub const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A reconnecting Redis connection for the queues and the rate limiter. redis-rs gives up on a
/// reply after 500 ms by default; a Lua fetch on a busy Redis can take longer, and each such
/// error stopped an apalis worker (see the restart policy in the worker).
pub async fn connect_redis(redis_url: &str) -> Result<ConnectionManager, redis::RedisError> {
    let client = redis::Client::open(redis_url)?;
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
        .set_connection_timeout(Some(Duration::from_secs(5)));
    client.get_connection_manager_with_config(config).await
}

/// The apalis storages of every queue, sharing one Redis connection.
#[derive(Clone)]
pub struct Queues {
    pub discover_vaults: RedisStorage<DiscoverVaults>,
    pub scan_vault: RedisStorage<ScanVault>,
    pub evaluate_compliance: RedisStorage<EvaluateCompliance>,
    pub evaluate_alerts: RedisStorage<EvaluateAlerts>,
    pub deliver_alert: RedisStorage<DeliverAlert>,
    conn: ConnectionManager,
    prefix: String,
}

/// A task could not be handed to Redis. The job row stays queued for the sweeper.
#[derive(Debug, thiserror::Error)]
#[error("could not enqueue job {job_id}: {message}")]
pub struct EnqueueError {
    pub job_id: Uuid,
    pub message: String,
}

impl Queues {
    /// Connects to Redis and names each queue under `prefix`.
    pub async fn connect(redis_url: &str, prefix: &str) -> Result<Self, redis::RedisError> {
        let conn = connect_redis(redis_url).await?;
        Ok(Self::from_connection(conn, prefix))
    }

    /// Builds the storages over an existing connection.
    pub fn from_connection(conn: ConnectionManager, prefix: &str) -> Self {
        Self {
            discover_vaults: RedisStorage::new(conn.clone())
                .with_config(queue_config(prefix, DISCOVER_VAULTS)),
            scan_vault: RedisStorage::new(conn.clone())
                .with_config(queue_config(prefix, SCAN_VAULT)),
            evaluate_compliance: RedisStorage::new(conn.clone())
                .with_config(queue_config(prefix, EVALUATE_COMPLIANCE)),
            evaluate_alerts: RedisStorage::new(conn.clone())
                .with_config(queue_config(prefix, EVALUATE_ALERTS)),
            deliver_alert: RedisStorage::new(conn.clone())
                .with_config(queue_config(prefix, DELIVER_ALERT)),
            conn,
            prefix: prefix.to_owned(),
        }
    }

    /// Pushes a compliance evaluation whose apalis id is the job row's id.
    pub async fn push_evaluate(&self, task: EvaluateCompliance) -> Result<(), EnqueueError> {
        let job_id = task.job_id;
        push(self.evaluate_compliance.clone(), job_id, task).await
    }

    /// Pushes an alert evaluation whose apalis id is the job row's id.
    pub async fn push_evaluate_alerts(&self, task: EvaluateAlerts) -> Result<(), EnqueueError> {
        push(self.evaluate_alerts.clone(), task.job_id, task).await
    }

    /// Pushes an alert delivery whose apalis id is the job row's id.
    pub async fn push_deliver_alert(&self, task: DeliverAlert) -> Result<(), EnqueueError> {
        push(self.deliver_alert.clone(), task.job_id, task).await
    }

    /// Tasks waiting per queue (ready plus scheduled), for the queue-depth gauge.
    pub async fn depths(&self) -> Result<Vec<(&'static str, i64)>, redis::RedisError> {
        let mut conn = self.conn.clone();
        let mut depths = Vec::new();
        for &kind in KINDS {
            let config = queue_config(&self.prefix, kind);
            let (ready, scheduled): (i64, i64) = redis::pipe()
                .cmd("LLEN")
                .arg(config.active_jobs_list())
                .cmd("ZCARD")
                .arg(config.scheduled_jobs_set())
                .query_async(&mut conn)
                .await?;
            depths.push((kind, ready + scheduled));
        }
        Ok(depths)
    }

    /// Renders the process's metrics in Prometheus text format, with fresh queue depths.
    pub async fn render_metrics(&self) -> String {
        match self.depths().await {
            Ok(depths) => {
                for (queue, depth) in depths {
                    metrics::gauge!(crate::metrics::QUEUE_DEPTH, "queue" => queue)
                        .set(depth as f64);
                }
            }
            Err(e) => tracing::warn!(error = %e, "queue depth could not be read from Redis"),
        }
        crate::metrics::handle().render()
    }

    /// Pushes a discover task whose apalis id is the job row's id.
    pub async fn push_discover(&self, task: DiscoverVaults) -> Result<(), EnqueueError> {
        let job_id = task.job_id;
        push(self.discover_vaults.clone(), job_id, task).await
    }

    /// Pushes a vault task whose apalis id is the job row's id.
    pub async fn push_scan_vault(&self, task: ScanVault) -> Result<(), EnqueueError> {
        let job_id = task.job_id;
        push(self.scan_vault.clone(), job_id, task).await
    }
}

/// Pushes `task` with `job_id` as its apalis id, then tells idle workers of its queue
/// ([`crate::wakeups`]). Every product push goes through here.
pub async fn push<T>(
    mut storage: RedisStorage<T>,
    job_id: Uuid,
    task: T,
) -> Result<(), EnqueueError>
where
    T: Serialize + serde::de::DeserializeOwned + Unpin + Send + Sync + 'static,
{
    let task = TaskBuilder::new(task).task_id(TaskId::from_string(job_id.to_string())).build();
    storage.push_task(task).await.map_err(|e| EnqueueError { job_id, message: e.to_string() })?;
    let channel = crate::wakeups::channel(storage.get_config());
    if let Err(e) = crate::wakeups::announce(storage.get_connection(), &channel).await {
        // The task is queued: a worker finds it at its next heartbeat poll instead.
        tracing::warn!(error = %e, job.id = %job_id, "workers were not told of a pushed task");
    }
    Ok(())
}

/// The storage settings of one queue. Workers fetch as soon as a task is pushed
/// ([`crate::wakeups`]); the heartbeat poll is the fallback for a missed notification (an idle
/// apalis worker fetches again only at its next heartbeat). Orphaned tasks come back after 10
/// missed heartbeats (10 s), which a busy but living worker does not reach. Results are not
/// kept in Redis (Postgres has them) and idempotency keys expire.
pub fn queue_config(prefix: &str, kind: &str) -> RedisConfig {
    RedisConfig::default()
        .queue(format!("{prefix}:{kind}"))
        .heartbeat_interval(Duration::from_secs(1))
        .missed_heartbeats(10)
        .persist_results(false)
        .idempotency_ttl(Some(Duration::from_secs(24 * 3600)))
}

/// Records a compliance evaluation job inside `conn`'s transaction; push the returned task
/// after commit.
pub async fn record_evaluation(
    conn: &mut sqlx::PgConnection,
) -> Result<EvaluateCompliance, sqlx::Error> {
    let task = EvaluateCompliance { job_id: Uuid::new_v4() };
    let payload = serde_json::to_value(&task).unwrap_or_default();
    crate::db::jobs::insert(conn, task.job_id, EVALUATE_COMPLIANCE, "inventory", None, &payload)
        .await?;
    Ok(task)
}

/// Records an alert evaluation job inside `conn`'s transaction; push the returned task after
/// commit.
pub async fn record_alert_evaluation(
    conn: &mut sqlx::PgConnection,
    scan_id: Option<Uuid>,
    digest: bool,
) -> Result<EvaluateAlerts, sqlx::Error> {
    let task = EvaluateAlerts { job_id: Uuid::new_v4(), scan_id, digest };
    let payload = serde_json::to_value(task).unwrap_or_default();
    let subject = if digest { "digest" } else { "rules" };
    crate::db::jobs::insert(conn, task.job_id, EVALUATE_ALERTS, subject, None, &payload).await?;
    Ok(task)
}
