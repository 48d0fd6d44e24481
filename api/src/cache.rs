//! Soft, per-replica caches of two things every dashboard view asks for again and again: the
//! token check behind each authenticated request, and asset-list pages (with the expiry
//! thresholds they are computed with).
//!
//! They stay correct across replicas through Postgres: triggers (migration 0010) send
//! `certifyclouds_auth` when a user's role or revocations change and
//! `certifyclouds_inventory` when assets, vaults, subscriptions or settings change. Each replica
//! listens on both; a notification moves that cache to a new generation, and an entry filled in
//! an older generation is never served again. Nothing is served while the listener is not
//! connected, and a reconnect starts a new generation, since notifications sent meanwhile are
//! lost. Entries also expire after a time-to-live (`API_CACHE_SECONDS`, `API_AUTH_CACHE_SECONDS`),
//! which bounds how far a page's expiry statuses may lag the clock.
//!
//! An entry filled from a read that began before a change committed is filed under the
//! generation read before the query, so the change's notification retires it. Requests that miss
//! the same entry at once wait for one of them to fill it (one query, not one per request).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use shared::db::users::TokenCheck;
use shared::domain::ExpiryThresholds;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use uuid::Uuid;

/// The channel the auth triggers notify.
pub const AUTH_CHANNEL: &str = "certifyclouds_auth";
/// The channel the inventory triggers notify.
pub const INVENTORY_CHANNEL: &str = "certifyclouds_inventory";

/// Cached token checks at most.
const MAX_TOKENS: usize = 10_000;
/// Cached pages at most, and their bytes at most.
const MAX_PAGES: usize = 512;
const MAX_PAGE_BYTES: usize = 32 << 20;

/// A counter moved on by every notification of one channel.
struct Generation(AtomicU64);

impl Generation {
    fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
    fn advance(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

struct Entry<V> {
    generation: u64,
    filled: Instant,
    value: V,
}

struct Held<K, V> {
    entries: HashMap<K, Entry<V>>,
    /// The summed weight of the entries.
    weight: usize,
}

/// One cache: entries filed under the generation of their channel, a time-to-live, bounds on
/// count and weight, and per-key fill locks, so that requests missing the same entry at once
/// make one query (a request that waited and still misses queries alone, without queueing).
struct Store<K, V> {
    ttl: Duration,
    max_entries: usize,
    max_weight: usize,
    weigh: fn(&V) -> usize,
    name: &'static str,
    held: Mutex<Held<K, V>>,
    flights: Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>,
}

impl<K: Hash + Eq + Clone, V: Clone> Store<K, V> {
    fn new(name: &'static str, ttl: Duration, max_entries: usize, max_weight: usize) -> Self {
        Self::weighed(name, ttl, max_entries, max_weight, |_| 0)
    }

    fn weighed(
        name: &'static str,
        ttl: Duration,
        max_entries: usize,
        max_weight: usize,
        weigh: fn(&V) -> usize,
    ) -> Self {
        Self {
            ttl,
            max_entries,
            max_weight,
            weigh,
            name,
            held: Mutex::new(Held { entries: HashMap::new(), weight: 0 }),
            flights: Mutex::new(HashMap::new()),
        }
    }

    fn held(&self, key: &K, generation: u64) -> Option<V> {
        lock(&self.held)
            .entries
            .get(key)
            .filter(|e| e.generation == generation && e.filled.elapsed() < self.ttl)
            .map(|e| e.value.clone())
    }

    /// The value of `key` from memory when `live` and current in `generation`'s channel, else
    /// from `fill` (kept when it is `Some`).
    async fn get_or_fill<E, Fut>(
        &self,
        generation: &Generation,
        live: bool,
        key: K,
        fill: impl FnOnce() -> Fut,
    ) -> Result<Option<V>, E>
    where
        Fut: std::future::Future<Output = Result<Option<V>, E>>,
    {
        if !live || self.ttl.is_zero() {
            return fill().await;
        }
        if let Some(value) = self.held(&key, generation.current()) {
            count(self.name, true);
            return Ok(Some(value));
        }
        let flight = {
            let mut flights = lock(&self.flights);
            if flights.len() >= MAX_FLIGHTS {
                flights.retain(|_, f| Arc::strong_count(f) > 1);
            }
            flights.entry(key.clone()).or_default().clone()
        };
        let _filling = match flight.clone().try_lock_owned() {
            Ok(guard) => Some(guard),
            Err(_) => {
                drop(flight.lock_owned().await);
                if let Some(value) = self.held(&key, generation.current()) {
                    count(self.name, true);
                    return Ok(Some(value));
                }
                None
            }
        };
        count(self.name, false);
        // Read before the query: a change committed meanwhile retires what the query returns.
        let filed_under = generation.current();
        let value = fill().await?;
        if let Some(value) = &value {
            self.keep(filed_under, generation.current(), key, value.clone());
        }
        Ok(value)
    }

    fn keep(&self, filed_under: u64, current: u64, key: K, value: V) {
        let weight = (self.weigh)(&value);
        if weight > self.max_weight / 8 {
            return;
        }
        let mut held = lock(&self.held);
        if held.entries.len() >= self.max_entries || held.weight + weight > self.max_weight {
            held.entries.retain(|_, e| e.generation == current && e.filled.elapsed() < self.ttl);
            held.weight = held.entries.values().map(|e| (self.weigh)(&e.value)).sum();
            if held.entries.len() >= self.max_entries / 2 || held.weight + weight > self.max_weight
            {
                held.entries.clear();
                held.weight = 0;
            }
        }
        held.weight += weight;
        let entry = Entry { generation: filed_under, filled: Instant::now(), value };
        if let Some(old) = held.entries.insert(key, entry) {
            held.weight -= (self.weigh)(&old.value);
        }
    }
}

/// Fill locks kept at most before the idle ones are dropped.
const MAX_FLIGHTS: usize = 4096;

/// The caches of one API process.
pub struct Caches {
    listening: AtomicBool,
    auth: Generation,
    inventory: Generation,
    /// Token checks by (user, jti).
    tokens: Store<(Uuid, Uuid), TokenCheck>,
    /// Encoded asset-list pages by their query.
    pages: Store<String, Bytes>,
    thresholds: Store<(), ExpiryThresholds>,
}

impl Caches {
    /// Caches that serve nothing until [`spawn_listener`] connects.
    pub fn new(token_ttl: Duration, page_ttl: Duration) -> Self {
        Self {
            listening: AtomicBool::new(false),
            auth: Generation(AtomicU64::new(0)),
            inventory: Generation(AtomicU64::new(0)),
            tokens: Store::new("token", token_ttl, MAX_TOKENS, usize::MAX),
            pages: Store::weighed("page", page_ttl, MAX_PAGES, MAX_PAGE_BYTES, Bytes::len),
            thresholds: Store::new("thresholds", page_ttl, 1, usize::MAX),
        }
    }

    fn live(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// The check of token `jti` of user `user`: from memory when current, else from `fill`
    /// (`None`: the user no longer exists, which is not kept).
    pub async fn token_check<E, Fut>(
        &self,
        user: Uuid,
        jti: Uuid,
        fill: impl FnOnce() -> Fut,
    ) -> Result<Option<TokenCheck>, E>
    where
        Fut: std::future::Future<Output = Result<Option<TokenCheck>, E>>,
    {
        self.tokens.get_or_fill(&self.auth, self.live(), (user, jti), fill).await
    }

    /// The encoded page `key`: from memory when current, else from `fill`.
    pub async fn page<E, Fut>(&self, key: String, fill: impl FnOnce() -> Fut) -> Result<Bytes, E>
    where
        Fut: std::future::Future<Output = Result<Bytes, E>>,
    {
        let fill = || async { fill().await.map(Some) };
        let page = self.pages.get_or_fill(&self.inventory, self.live(), key, fill).await?;
        Ok(page.unwrap_or_default())
    }

    /// The expiry thresholds, from memory when current, else from the settings.
    pub async fn thresholds(&self, pool: &PgPool) -> Result<ExpiryThresholds, sqlx::Error> {
        let fill = || async { shared::db::settings::expiry_thresholds(pool).await.map(Some) };
        let held = self.thresholds.get_or_fill(&self.inventory, self.live(), (), fill).await?;
        Ok(held.unwrap_or_default())
    }

    /// Forgets every token check at once; for the replica that made a revocation, which must not
    /// wait for its own notification.
    pub fn auth_changed(&self) {
        self.auth.advance();
    }

    /// Forgets every page and the thresholds at once; for the replica that changed settings or
    /// subscriptions, so its own next answer shows the change.
    pub fn inventory_changed(&self) {
        self.inventory.advance();
    }

    /// Retires everything: notifications may have been missed.
    fn retire_all(&self) {
        self.auth.advance();
        self.inventory.advance();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave a map half-updated in a way that matters:
    // entries are whole values.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn count(cache: &'static str, hit: bool) {
    let outcome = if hit { "hit" } else { "miss" };
    metrics::counter!(shared::metrics::API_CACHE_LOOKUPS, "cache" => cache, "outcome" => outcome)
        .increment(1);
}

/// How often the listener sends itself a notification, and how long it waits for the echo
/// before it takes its connection for dead (a half-open connection reports no error).
const HEARTBEAT: Duration = Duration::from_secs(2);
const HEARTBEAT_LOST: Duration = Duration::from_secs(5);

/// Why the listener stopped listening.
#[derive(Debug)]
enum Lost {
    Postgres(sqlx::Error),
    Dropped,
    Silent,
}

impl std::fmt::Display for Lost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Postgres(e) => write!(f, "{e}"),
            Self::Dropped => f.write_str("the connection dropped"),
            Self::Silent => write!(f, "no heartbeat echo for {} s", HEARTBEAT_LOST.as_secs()),
        }
    }
}

/// Listens for the triggers' notifications for as long as the process runs, reconnecting after
/// a failure. Until it listens, and whenever its connection is lost or goes silent, the caches
/// serve nothing and everything held is retired.
pub fn spawn_listener(pool: PgPool, caches: Arc<Caches>) {
    tokio::spawn(async move {
        // Its own heartbeat channel, so that only its own echoes prove its connection alive.
        let heartbeat = format!("certifyclouds_heartbeat_{}", Uuid::new_v4().simple());
        let mut backoff = Duration::from_millis(200);
        loop {
            let lost = listen(&pool, &caches, &heartbeat, &mut backoff).await;
            caches.listening.store(false, Ordering::Release);
            caches.retire_all();
            tracing::warn!(error = %lost, retry_in_ms = backoff.as_millis() as u64,
                "cache notifications lost; caches off until the listener reconnects");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    });
}

async fn listen(pool: &PgPool, caches: &Caches, heartbeat: &str, backoff: &mut Duration) -> Lost {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(l) => l,
        Err(e) => return Lost::Postgres(e),
    };
    // A lost connection must surface here, not be mended inside `try_recv` while the caches
    // keep serving what they can no longer know is current.
    listener.eager_reconnect(false);
    if let Err(e) = listener.listen_all([AUTH_CHANNEL, INVENTORY_CHANNEL, heartbeat]).await {
        return Lost::Postgres(e);
    }
    // The listener receives in a task of its own (a receive is never cut short by the
    // heartbeat's timer); the task ends with its connection.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let receiver = tokio::spawn(async move {
        loop {
            let received = listener.try_recv().await;
            let last = !matches!(received, Ok(Some(_)));
            if tx.send(received).is_err() || last {
                return;
            }
        }
    });
    let _stop = AbortOnDrop(receiver);

    caches.retire_all();
    caches.listening.store(true, Ordering::Release);
    *backoff = Duration::from_millis(200);
    tracing::debug!("listening for cache notifications");
    let mut echoed = Instant::now();
    let mut beat = tokio::time::interval(HEARTBEAT);
    loop {
        tokio::select! {
            received = rx.recv() => match received {
                Some(Ok(Some(n))) if n.channel() == AUTH_CHANNEL => caches.auth.advance(),
                Some(Ok(Some(n))) if n.channel() == INVENTORY_CHANNEL => caches.inventory.advance(),
                Some(Ok(Some(n))) if n.channel() == heartbeat => echoed = Instant::now(),
                Some(Ok(Some(_))) => {}
                Some(Ok(None)) | None => return Lost::Dropped,
                Some(Err(e)) => return Lost::Postgres(e),
            },
            _ = beat.tick() => {
                if echoed.elapsed() > HEARTBEAT_LOST {
                    return Lost::Silent;
                }
                // Sent through the pool: the echo proves the listener's connection receives.
                let sent = sqlx::query("SELECT pg_notify($1, '')").bind(heartbeat).execute(pool);
                if let Ok(Err(e)) = tokio::time::timeout(HEARTBEAT, sent).await {
                    tracing::debug!(error = %e, "cache heartbeat not sent");
                }
            }
        }
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
