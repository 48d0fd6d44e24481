//! The queue: no-op jobs through the product's job path. Each enqueue commits a `jobs` row and
//! pushes an apalis task with the row's id onto a queue built by `shared::jobs::queue_config`;
//! a bench-only apalis worker (same storage settings and push wake-ups as the product's workers)
//! claims the row, finishes it and records when it started. Beside it, `redis-benchmark` LPUSH/RPOP on the same Redis
//! under the run's key prefix is the ceiling.

use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use apalis::prelude::{BoxDynError, Data, Monitor, WorkerBuilder, WorkerBuilderExt};
use apalis_redis::RedisStorage;
use serde::{Deserialize, Serialize};
use shared::wakeups::Wakeups;
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::api_load::percentile;
use crate::infra::{self, Database};

/// The bench's job kind (a queue of its own under the run's prefix).
const NOOP: &str = "bench_noop";
/// Concurrency of the no-op worker (the product's default `WORKER_CONCURRENCY`).
const CONCURRENCY: usize = 8;

/// The no-op task: the job row's id and when the enqueue began.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Noop {
    job_id: Uuid,
    enqueued_at_us: i64,
}

#[derive(Clone)]
struct NoopState {
    pool: sqlx::PgPool,
    started: mpsc::UnboundedSender<f64>,
    name: String,
}

/// Latency and throughput of the job path, and the Redis ceiling.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueFigure {
    pub latency_jobs: usize,
    pub latency_pacing_ms: u64,
    pub enqueue_to_start_p50_ms: f64,
    pub enqueue_to_start_p99_ms: f64,
    pub enqueue_to_start_max_ms: f64,
    pub throughput_jobs: usize,
    pub throughput_seconds: f64,
    pub jobs_per_second: f64,
    pub enqueue_only_per_second: f64,
    pub worker_concurrency: usize,
    pub redis_benchmark: Option<serde_json::Value>,
    /// The fallback, for reading: the same latency phase without push notifications, when an
    /// idle worker finds a task only at its next heartbeat poll.
    pub heartbeat_only: Option<serde_json::Value>,
    /// Jobs that did not start within 10 s (latency phase) or 30 s (throughput phase).
    pub lost_jobs: usize,
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

async fn handle(task: Noop, state: Data<NoopState>) -> Result<(), BoxDynError> {
    let latency_ms = (now_us() - task.enqueued_at_us) as f64 / 1000.0;
    let _unsent = state.started.send(latency_ms);
    if shared::db::jobs::claim(&state.pool, task.job_id, &state.name).await?.is_some() {
        let mut conn = state.pool.acquire().await?;
        shared::db::jobs::finish(&mut conn, task.job_id, None).await?;
    }
    Ok(())
}

/// Commits the job row, then pushes the task carrying its id (the product's order).
async fn enqueue(pool: &sqlx::PgPool, storage: &RedisStorage<Noop>) -> anyhow::Result<()> {
    let task = Noop { job_id: Uuid::new_v4(), enqueued_at_us: now_us() };
    let payload = serde_json::to_value(&task)?;
    let mut conn = pool.acquire().await?;
    shared::db::jobs::insert(&mut conn, task.job_id, NOOP, "noop", None, &payload).await?;
    drop(conn);
    shared::jobs::push(storage.clone(), task.job_id, task).await?;
    Ok(())
}

/// Runs `latency_jobs` paced jobs, then `throughput_jobs` as fast as 8 enqueuers can push.
pub async fn run(latency_jobs: usize, throughput_jobs: usize) -> anyhow::Result<QueueFigure> {
    let database = Database::create().await?;
    let prefix = format!("ccbench:{}", Uuid::new_v4().simple());
    let product = shared::jobs::queue_config(&prefix, NOOP);
    let result = measure(&database, &prefix, product, true, latency_jobs, throughput_jobs).await;
    let redis = if result.is_ok() { redis_benchmark(&prefix, throughput_jobs * 20) } else { None };
    let polled_prefix = format!("{prefix}:polled");
    let polled = shared::jobs::queue_config(&polled_prefix, NOOP);
    let heartbeat_only = match &result {
        Ok(_) => Some(measure(&database, &polled_prefix, polled, false, latency_jobs, 0).await),
        Err(_) => None,
    };
    let _deleted = infra::delete_redis_prefix(&prefix).await;
    database.drop_now().await?;
    let mut figure = result?;
    figure.redis_benchmark = redis;
    if let Some(heartbeat_only) = heartbeat_only {
        let f = heartbeat_only?;
        figure.heartbeat_only = Some(serde_json::json!({
            "enqueueToStartP50Ms": f.enqueue_to_start_p50_ms,
            "enqueueToStartP99Ms": f.enqueue_to_start_p99_ms,
            "jobs": f.latency_jobs,
            "lostJobs": f.lost_jobs,
        }));
    }
    Ok(figure)
}

async fn measure(
    database: &Database,
    prefix: &str,
    config: apalis_redis::Config,
    woken: bool,
    latency_jobs: usize,
    throughput_jobs: usize,
) -> anyhow::Result<QueueFigure> {
    let pool = shared::db::connect(&database.url, (CONCURRENCY * 2 + 4) as u32).await?;
    let conn = apalis_redis::connect(infra::REDIS_URL).await?;
    let storage: RedisStorage<Noop> = RedisStorage::new(conn).with_config(config);
    let finished_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = $1 AND status = 'succeeded'")
            .bind(NOOP)
            .fetch_one(&pool)
            .await?;
    let (started_tx, mut started_rx) = mpsc::unbounded_channel();
    let state =
        NoopState { pool: pool.clone(), started: started_tx, name: format!("bench-{prefix}") };
    let worker_storage = storage.clone();
    let monitor = if woken {
        let client = redis::Client::open(infra::REDIS_URL)?;
        let wakeups = Wakeups::spawn(client, prefix, &[NOOP]);
        Monitor::new().register(move |_| {
            WorkerBuilder::new(format!("{}-noop", state.name))
                .backend(wakeups.wrap(worker_storage.clone()))
                .data(state.clone())
                .concurrency(CONCURRENCY)
                .build(handle)
        })
    } else {
        Monitor::new().register(move |_| {
            WorkerBuilder::new(format!("{}-noop", state.name))
                .backend(worker_storage.clone())
                .data(state.clone())
                .concurrency(CONCURRENCY)
                .build(handle)
        })
    };
    let ctx = monitor.context();
    let running = tokio::spawn(monitor.run());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Latency: one job at a time, paced so the worker is idle when each arrives, as a scan
    // request finds it.
    let pacing = Duration::from_millis(20);
    let mut latencies = Vec::with_capacity(latency_jobs);
    let mut lost = 0;
    for _ in 0..latency_jobs {
        enqueue(&pool, &storage).await?;
        match tokio::time::timeout(Duration::from_secs(10), started_rx.recv()).await {
            Ok(latency) => latencies.push(latency.context("worker channel closed")?),
            // Counted, not fatal: a job that never starts is a finding of its own.
            Err(_) => lost += 1,
        }
        tokio::time::sleep(pacing).await;
    }
    latencies.sort_by(f64::total_cmp);

    // Throughput: 8 enqueuers push every job, the worker drains them.
    let started = Instant::now();
    let per_enqueuer = throughput_jobs.div_ceil(8);
    let enqueuers_n = if throughput_jobs == 0 { 0 } else { 8 };
    let enqueuers: Vec<_> = (0..enqueuers_n)
        .map(|_| {
            let (pool, storage) = (pool.clone(), storage.clone());
            tokio::spawn(async move {
                for _ in 0..per_enqueuer {
                    enqueue(&pool, &storage).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for enqueuer in enqueuers {
        enqueuer.await??;
    }
    let enqueued_in = started.elapsed().as_secs_f64();
    let total = per_enqueuer * enqueuers_n;
    let mut drained = 0;
    while drained < total {
        match tokio::time::timeout(Duration::from_secs(30), started_rx.recv()).await {
            Ok(_) => drained += 1,
            Err(_) => break,
        }
    }
    lost += total - drained;
    let expected = finished_before as usize + latency_jobs + total - lost;
    if let Err(e) = wait_for_finished(&pool, expected).await {
        eprintln!("bench: {e}");
    }
    let seconds = started.elapsed().as_secs_f64();

    if let Err(e) = ctx.shutdown() {
        eprintln!("bench: the no-op worker did not take the shutdown signal: {e}");
    }
    match tokio::time::timeout(Duration::from_secs(30), running).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("bench: the no-op worker stopped with: {e}"),
        Ok(Err(e)) => eprintln!("bench: the no-op worker panicked: {e}"),
        Err(_) => eprintln!("bench: the no-op worker did not stop within 30 s"),
    }
    pool.close().await;

    Ok(QueueFigure {
        latency_jobs,
        latency_pacing_ms: pacing.as_millis() as u64,
        enqueue_to_start_p50_ms: percentile(&latencies, 0.50),
        enqueue_to_start_p99_ms: percentile(&latencies, 0.99),
        enqueue_to_start_max_ms: latencies.last().copied().unwrap_or(f64::NAN),
        throughput_jobs: total,
        throughput_seconds: seconds,
        jobs_per_second: drained as f64 / seconds,
        enqueue_only_per_second: total as f64 / enqueued_in,
        worker_concurrency: CONCURRENCY,
        redis_benchmark: None,
        heartbeat_only: None,
        lost_jobs: lost,
    })
}

async fn wait_for_finished(pool: &sqlx::PgPool, jobs: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM jobs WHERE kind = $1 AND status = 'succeeded'",
        )
        .bind(NOOP)
        .fetch_one(pool)
        .await?;
        if done as usize >= jobs {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("only {done} of {jobs} no-op jobs finished");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `redis-benchmark` LPUSH then RPOP of `requests` on a list under `prefix`, 50 clients.
fn redis_benchmark(prefix: &str, requests: usize) -> Option<serde_json::Value> {
    if !infra::on_path("redis-benchmark") {
        return None;
    }
    let key = format!("{prefix}:redis-benchmark");
    let mut figures = serde_json::Map::new();
    for command in ["LPUSH", "RPOP"] {
        let mut args = vec!["-h", "127.0.0.1", "-p", "6379", "-c", "50", "-q", "--csv"];
        let n = requests.to_string();
        args.extend(["-n", n.as_str(), command, key.as_str()]);
        if command == "LPUSH" {
            args.push("x");
        }
        let output = Command::new("redis-benchmark").args(&args).output().ok()?;
        let text = String::from_utf8_lossy(&output.stdout);
        // CSV: "test","rps","avg_latency_ms","min","p50","p95","p99","max"
        let row = text.lines().find(|l| !l.starts_with("\"test\""))?;
        let cells: Vec<f64> =
            row.split(',').skip(1).filter_map(|c| c.trim_matches('"').parse().ok()).collect();
        figures.insert(
            command.to_ascii_lowercase(),
            serde_json::json!({
                "requestsPerSecond": cells.first(),
                "p50Ms": cells.get(3),
                "p99Ms": cells.get(5),
                "requests": requests,
                "clients": 50,
            }),
        );
    }
    Some(serde_json::Value::Object(figures))
}
