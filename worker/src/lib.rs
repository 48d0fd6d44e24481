//! The worker process: runs jobs from Redis (apalis) and reports their outcome to Postgres.
//!
//! Each process registers one apalis worker per queue under a name unique to the process, beats
//! a heartbeat into Postgres for `/health`, and exits non-zero if every worker died, so its
//! supervisor restarts it.

pub mod jobs;
pub mod live;
pub mod metrics_server;
pub mod schedules;
pub mod sweeper;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use apalis::prelude::{Monitor, WorkerBuilder, WorkerBuilderExt};
use shared::azure::AzureClients;
use shared::config::Config;
use shared::db;
use shared::jobs::Queues;
use shared::wakeups::Wakeups;
use sqlx::PgPool;

/// What every job handler needs, shared by the workers of one process.
#[derive(Clone)]
pub struct WorkerState {
    pub pool: PgPool,
    pub azure: Arc<AzureClients>,
    pub queues: Queues,
    /// The process's unique name, recorded on the jobs it runs.
    pub name: Arc<str>,
    /// Settings applied while running: vault timeout and concurrency.
    pub live: Arc<live::Live>,
    /// The most vault jobs apalis hands this process at once; the live limit stays below it.
    pub vault_ceiling: usize,
    /// The HMAC key of the audit chain.
    pub audit_key: Arc<Vec<u8>>,
    /// Cron of the nightly retention purge.
    pub retention_schedule: Option<String>,
    /// The environment values settings fall back to.
    pub config: Arc<Config>,
}

/// How long a shutdown waits for in-flight jobs before giving up on them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// Alert deliveries one process sends at once (each mostly waits on a peer).
const DELIVERY_CONCURRENCY: usize = 4;

/// A name no other worker process shares: role, host, pid and a random suffix.
pub fn unique_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".to_owned());
    let suffix: u32 = rand::random::<u32>() % 0x10000;
    format!("worker-{host}-{}-{suffix:04x}", std::process::id())
}

/// The apalis worker name of one queue in this process: unique per process, queue and restart,
/// since a restarted worker must not reuse a name Redis may still list.
fn worker_name(process: &str, queue: &str, restarts: usize) -> String {
    if restarts == 0 {
        format!("{process}-{queue}")
    } else {
        format!("{process}-{queue}-r{restarts}")
    }
}

/// Connects to Postgres and Redis, runs migrations and builds the shared state.
pub async fn prepare(config: &Config) -> anyhow::Result<WorkerState> {
    shared::metrics::handle();
    let pool = db::connect(config.database_url.expose(), (config.worker_concurrency + 4) as u32)
        .await
        .context("connecting to Postgres (DATABASE_URL)")?;
    db::migrate(&pool).await.context("running migrations")?;
    let queues = Queues::connect(config.redis_url.expose(), &config.queue_prefix)
        .await
        .context("connecting to Redis (REDIS_URL)")?;
    let azure = AzureClients::new(&config.azure).context("building the Azure clients")?;
    let limits = db::settings::discovery_limits(&pool, config.worker_concurrency).await?;
    Ok(WorkerState {
        pool,
        azure: Arc::new(azure),
        queues,
        name: unique_name().into(),
        live: Arc::new(live::Live::new(limits.scan_timeout_seconds, limits.max_workers)),
        vault_ceiling: (limits.max_workers * 2).max(4),
        audit_key: Arc::new(shared::audit::key_from(config.secret_key.expose())),
        retention_schedule: config.retention_schedule.clone(),
        config: Arc::new(config.clone()),
    })
}

/// Runs the workers until `shutdown` resolves, then lets in-flight jobs finish (bounded).
/// Returns an error if every worker stopped on its own.
pub async fn run(
    state: WorkerState,
    config: &Config,
    log_level: Option<live::LogLevelHook>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let concurrency = state.vault_ceiling;
    let metrics = match config.worker_metrics_addr {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding WORKER_METRICS_ADDR {addr}"))?;
            Some(tokio::spawn(metrics_server::serve(listener, state.clone())))
        }
        None => None,
    };
    let stored = shared::settings::stored(&state.pool).await?;
    let active = live::schedules(&stored, &config.scan_schedules);
    let scheduler = schedules::start(&state, &active).await?;
    let watcher = tokio::spawn(live::watch(
        state.clone(),
        Arc::new(config.clone()),
        config.scan_schedules.clone(),
        scheduler.clone(),
        active,
        log_level,
    ));
    let heartbeat = tokio::spawn(beat(state.pool.clone(), state.name.clone()));
    let sweeper = tokio::spawn(sweeper::run(state.clone()));
    tracing::info!(worker.name = %state.name, concurrency, "worker started");

    let client = redis::Client::open(config.redis_url.expose()).context("REDIS_URL")?;
    let wakeups = Wakeups::spawn(client, &config.queue_prefix, shared::jobs::KINDS);
    let (discover_wake, scan_wake, compliance_wake, alerts_wake, delivery_wake) =
        (wakeups.clone(), wakeups.clone(), wakeups.clone(), wakeups.clone(), wakeups);
    let discover_state = state.clone();
    let scan_state = state.clone();
    let compliance_state = state.clone();
    let alerts_state = state.clone();
    let delivery_state = state.clone();
    let monitor = Monitor::new()
        .register(move |restarts| {
            WorkerBuilder::new(worker_name(
                &discover_state.name,
                shared::jobs::DISCOVER_VAULTS,
                restarts,
            ))
            .backend(discover_wake.wrap(discover_state.queues.discover_vaults.clone()))
            .data(discover_state.clone())
            .concurrency(2)
            .build(jobs::discover_vaults::handle)
        })
        .register(move |restarts| {
            WorkerBuilder::new(worker_name(&scan_state.name, shared::jobs::SCAN_VAULT, restarts))
                .backend(scan_wake.wrap(scan_state.queues.scan_vault.clone()))
                .data(scan_state.clone())
                .concurrency(concurrency)
                .build(jobs::scan_vault::handle)
        })
        .register(move |restarts| {
            WorkerBuilder::new(worker_name(
                &compliance_state.name,
                shared::jobs::EVALUATE_COMPLIANCE,
                restarts,
            ))
            .backend(compliance_wake.wrap(compliance_state.queues.evaluate_compliance.clone()))
            .data(compliance_state.clone())
            .concurrency(1)
            .build(jobs::evaluate_compliance::handle)
        })
        .register(move |restarts| {
            WorkerBuilder::new(worker_name(
                &alerts_state.name,
                shared::jobs::EVALUATE_ALERTS,
                restarts,
            ))
            .backend(alerts_wake.wrap(alerts_state.queues.evaluate_alerts.clone()))
            .data(alerts_state.clone())
            .concurrency(1)
            .build(jobs::evaluate_alerts::handle)
        })
        .register(move |restarts| {
            WorkerBuilder::new(worker_name(
                &delivery_state.name,
                shared::jobs::DELIVER_ALERT,
                restarts,
            ))
            .backend(delivery_wake.wrap(delivery_state.queues.deliver_alert.clone()))
            .data(delivery_state.clone())
            .concurrency(DELIVERY_CONCURRENCY)
            .build(jobs::deliver_alert::handle)
        })
        // A queue's worker stops on a backend error (Redis slow or gone, or this worker dropped
        // from the queue's worker set after missed heartbeats). Without a restart the queue would
        // go unserved while the process lives on; the restarted worker registers under a new name.
        .should_restart(|worker, error| {
            tracing::warn!(worker = worker.name(), restarts = worker.restarts(), error = %error,
                "a queue worker stopped; restarting it");
            metrics::counter!(shared::metrics::WORKER_RESTARTS).increment(1);
            true
        })
        .shutdown_timeout(SHUTDOWN_GRACE);

    let ctx = monitor.context();
    let running = monitor.run();
    tokio::pin!(running);
    let outcome = tokio::select! {
        ended = &mut running => {
            let detail = match ended {
                Ok(()) => "every worker stopped".to_owned(),
                Err(e) => e.to_string(),
            };
            Err(anyhow::anyhow!("worker process cannot continue: {detail}"))
        }
        () = shutdown => {
            tracing::info!("shutting down; waiting for in-flight jobs");
            if let Err(e) = ctx.shutdown() {
                tracing::warn!(error = %e, "shutdown signal was not delivered to every worker");
            }
            running.await.map_err(|e| anyhow::anyhow!("shutdown: {e}"))
        }
    };

    heartbeat.abort();
    sweeper.abort();
    if let Some(server) = metrics {
        server.abort();
    }
    watcher.abort();
    let mut scheduler = scheduler;
    if let Err(e) = scheduler.shutdown().await {
        tracing::warn!(error = %e, "cron scheduler did not stop cleanly");
    }
    if let Err(e) = db::workers::forget(&state.pool, &state.name).await {
        tracing::warn!(error = %e, "could not remove the worker heartbeat");
    }
    outcome
}

async fn beat(pool: PgPool, name: Arc<str>) {
    let mut tick = tokio::time::interval(HEARTBEAT_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = db::workers::beat(&pool, &name).await {
            tracing::warn!(error = %e, "worker heartbeat failed");
        }
    }
}
