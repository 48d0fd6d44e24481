//! Settings that take effect in a running worker: the watcher re-reads them every few seconds
//! and applies the vault concurrency, the vault timeout, the log level and the scan schedules.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use shared::config::ScanSchedule;
use shared::domain::ScanMode;
use shared::settings;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::WorkerState;

/// How often the watcher reads the settings.
pub const EVERY: Duration = Duration::from_secs(2);

/// Applies a log level (`DEBUG`, `INFO`, `WARNING`, `ERROR`) to the process's logger.
pub type LogLevelHook = shared::logging::LevelHook;

/// A concurrency limit that can be resized while jobs hold permits.
#[derive(Debug)]
pub struct Limiter {
    semaphore: Arc<Semaphore>,
    size: AtomicUsize,
}

impl Limiter {
    /// A limiter of `size` permits.
    pub fn new(size: usize) -> Self {
        Self { semaphore: Arc::new(Semaphore::new(size)), size: AtomicUsize::new(size) }
    }

    /// Waits for a permit.
    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.semaphore.clone().acquire_owned().await.ok()
    }

    /// The current limit.
    pub fn size(&self) -> usize {
        self.size.load(Ordering::SeqCst)
    }

    /// Changes the limit; a smaller limit takes effect as running jobs finish.
    pub fn resize(&self, size: usize) {
        let current = self.size.swap(size, Ordering::SeqCst);
        if size > current {
            self.semaphore.add_permits(size - current);
        } else if size < current {
            let surplus = current - size;
            let forgotten = self.semaphore.forget_permits(surplus);
            if forgotten < surplus {
                let semaphore = self.semaphore.clone();
                let remaining = (surplus - forgotten) as u32;
                tokio::spawn(async move {
                    if let Ok(permits) = semaphore.acquire_many_owned(remaining).await {
                        permits.forget();
                    }
                });
            }
        }
    }
}

/// The live values the handlers read.
#[derive(Debug)]
pub struct Live {
    pub vault_timeout_seconds: AtomicU64,
    pub limiter: Limiter,
}

impl Live {
    /// Starting values.
    pub fn new(timeout_seconds: u64, concurrency: usize) -> Self {
        Self {
            vault_timeout_seconds: AtomicU64::new(timeout_seconds),
            limiter: Limiter::new(concurrency),
        }
    }

    /// The vault timeout in force.
    pub fn vault_timeout(&self) -> Duration {
        Duration::from_secs(self.vault_timeout_seconds.load(Ordering::SeqCst))
    }
}

/// The schedules in force: stored settings, then the configuration the process started with.
pub fn schedules(stored: &[settings::Stored], configured: &[ScanSchedule]) -> Vec<ScanSchedule> {
    let mut out = Vec::new();
    for (name, key, mode) in [
        ("delta", "deltaScanSchedule", ScanMode::Delta),
        ("full", "fullScanSchedule", ScanMode::Full),
    ] {
        let row = stored.iter().find(|s| s.category == "performance" && s.key == key);
        let cron = match row.and_then(|r| r.value.as_str()) {
            Some(v) => Some(v.to_owned()),
            None => configured.iter().find(|s| s.name == name).map(|s| s.cron.clone()),
        };
        if let Some(cron) = cron.filter(|c| !c.eq_ignore_ascii_case("off")) {
            out.push(ScanSchedule { name, mode, cron });
        }
    }
    out
}

/// Re-reads the settings forever and applies what changed.
pub async fn watch(
    state: WorkerState,
    config: std::sync::Arc<shared::config::Config>,
    configured: Vec<ScanSchedule>,
    mut scheduler: tokio_cron_scheduler::JobScheduler,
    mut active: Vec<ScanSchedule>,
    log_level: Option<LogLevelHook>,
) {
    let mut tick = tokio::time::interval(EVERY);
    let mut level: Option<String> = None;
    let env = |k: &str| config.setting_env(k);
    loop {
        tick.tick().await;
        let stored = match settings::stored(&state.pool).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "settings could not be read; keeping the current ones");
                continue;
            }
        };
        let value = |key: &str| {
            settings::find("performance", key).map(|d| settings::resolve(d, &stored, &env).value)
        };
        if let Some(Value::Number(n)) = value("discoveryScanTimeout")
            && let Some(seconds) = n.as_u64()
        {
            state.live.vault_timeout_seconds.store(seconds, Ordering::SeqCst);
        }
        if let Some(Value::Number(n)) = value("discoveryMaxWorkers")
            && let Some(workers) = n.as_u64()
        {
            let workers = workers as usize;
            if workers != state.live.limiter.size() {
                tracing::info!(vault_jobs = workers, "vault concurrency changed");
                state.live.limiter.resize(workers);
            }
        }
        if let (Some(hook), Some(def)) = (&log_level, settings::find("logging", "logLevel")) {
            let effective = settings::resolve(def, &stored, &env);
            let wanted = effective.value.as_str().map(str::to_owned);
            if effective.source != "default" && wanted != level {
                if let Some(w) = &wanted {
                    hook(w);
                }
                level = wanted;
            }
        }
        let wanted = schedules(&stored, &configured);
        if wanted != active {
            tracing::info!("scan schedules changed; restarting the scheduler");
            if let Err(e) = scheduler.shutdown().await {
                tracing::warn!(error = %e, "old scheduler did not stop cleanly");
            }
            match crate::schedules::start(&state, &wanted).await {
                Ok(next) => {
                    scheduler = next;
                    active = wanted;
                }
                Err(e) => tracing::warn!(error = format!("{e:#}"), "new schedules not started"),
            }
        }
    }
}
