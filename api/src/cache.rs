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

/// Cached token checks at most; past it, the oldest half is dropped.
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

struct Entry<T> {
    generation: u64,
    filled: Instant,
    value: T,
}

/// Per-key locks, so that one request fills an entry while the others that missed it wait.
struct Flights<K>(Mutex<HashMap<K, Arc<tokio::sync::Mutex<()>>>>);

impl<K: Hash + Eq + Clone> Flights<K> {
    fn new() -> Self {
        Self(Mutex::new(HashMap::new()))
    }

    /// The key's lock, and whether another request held it first (then that request was
    /// filling the entry, and a waiter that still misses should not fill under the lock too).
    async fn enter(&self, key: &K) -> Flight {
        let flight = {
            let mut flights = lock(&self.0);
            if flights.len() >= MAX_FLIGHTS {
                flights.retain(|_, f| Arc::strong_count(f) > 1);
            }
            flights.entry(key.clone()).or_default().clone()
        };
        match flight.clone().try_lock_owned() {
            Ok(guard) => Flight { _guard: Some(guard), waited: false },
            Err(_) => {
                drop(flight.lock_owned().await);
                Flight { _guard: None, waited: true }
            }
        }
    }
}

/// A place in a fill queue: either the lock (fill the entry while holding it), or the news that
/// another request just filled it (look again; on a miss, query without queueing).
pub struct Flight {
    _guard: Option<tokio::sync::OwnedMutexGuard<()>>,
    waited: bool,
}

impl Flight {
    /// Whether another request was filling the entry while this one waited.
    pub fn waited(&self) -> bool {
        self.waited
    }
}

/// Fill locks kept at most before the idle ones are dropped.
const MAX_FLIGHTS: usize = 4096;

/// What a caller read before querying, to file the result under.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    generation: u64,
    live: bool,
}

impl Ticket {
    /// Whether what is read under it may be kept.
    pub fn live(&self) -> bool {
        self.live
    }
}

/// The caches of one API process.
pub struct Caches {
    listening: AtomicBool,
    auth: Generation,
    inventory: Generation,
    token_ttl: Duration,
    page_ttl: Duration,
    tokens: Mutex<HashMap<Uuid, Entry<(Uuid, TokenCheck)>>>,
    pages: Mutex<HashMap<String, Entry<Bytes>>>,
    page_bytes: AtomicU64,
    thresholds: Mutex<Option<Entry<ExpiryThresholds>>>,
    token_flights: Flights<Uuid>,
    page_flights: Flights<String>,
}

impl Caches {
    /// Caches that serve nothing until [`spawn_listener`] connects.
    pub fn new(token_ttl: Duration, page_ttl: Duration) -> Self {
        Self {
            listening: AtomicBool::new(false),
            auth: Generation(AtomicU64::new(0)),
            inventory: Generation(AtomicU64::new(0)),
            token_ttl,
            page_ttl,
            tokens: Mutex::new(HashMap::new()),
            pages: Mutex::new(HashMap::new()),
            page_bytes: AtomicU64::new(0),
            thresholds: Mutex::new(None),
            token_flights: Flights::new(),
            page_flights: Flights::new(),
        }
    }

    fn live(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    fn fresh<T>(&self, entry: &Entry<T>, generation: &Generation, ttl: Duration) -> bool {
        self.live() && entry.generation == generation.current() && entry.filled.elapsed() < ttl
    }

    /// Read before a token check's query.
    pub fn token_ticket(&self) -> Ticket {
        Ticket { generation: self.auth.current(), live: self.live() && !self.token_ttl.is_zero() }
    }

    /// Read before an inventory query.
    pub fn inventory_ticket(&self) -> Ticket {
        Ticket {
            generation: self.inventory.current(),
            live: self.live() && !self.page_ttl.is_zero(),
        }
    }

    /// The check of token `jti` of user `user`, if one is held and still current.
    pub fn token(&self, user: Uuid, jti: Uuid) -> Option<TokenCheck> {
        if self.token_ttl.is_zero() {
            return None;
        }
        let held = lock(&self.tokens)
            .get(&jti)
            .filter(|e| e.value.0 == user && self.fresh(e, &self.auth, self.token_ttl))
            .map(|e| e.value.1.clone());
        count("token", held.is_some());
        held
    }

    /// Keeps a token check made under `ticket`.
    pub fn keep_token(&self, ticket: Ticket, user: Uuid, jti: Uuid, check: TokenCheck) {
        if !ticket.live {
            return;
        }
        let mut tokens = lock(&self.tokens);
        if tokens.len() >= MAX_TOKENS {
            let current = self.auth.current();
            tokens.retain(|_, e| e.generation == current && e.filled.elapsed() < self.token_ttl);
            if tokens.len() >= MAX_TOKENS {
                tokens.clear();
            }
        }
        let entry =
            Entry { generation: ticket.generation, filled: Instant::now(), value: (user, check) };
        tokens.insert(jti, entry);
    }

    /// Waits until no other request is filling the check of `jti`; hold the guard while
    /// filling it. Only for a live ticket: with the cache off, requests must not queue.
    pub async fn token_flight(&self, jti: Uuid) -> Flight {
        self.token_flights.enter(&jti).await
    }

    /// The same for page `key`.
    pub async fn page_flight(&self, key: &str) -> Flight {
        self.page_flights.enter(&key.to_owned()).await
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

    /// The body of page `key`, if one is held and still current.
    pub fn page(&self, key: &str) -> Option<Bytes> {
        if self.page_ttl.is_zero() {
            return None;
        }
        let held = lock(&self.pages)
            .get(key)
            .filter(|e| self.fresh(e, &self.inventory, self.page_ttl))
            .map(|e| e.value.clone());
        count("page", held.is_some());
        held
    }

    /// Keeps the body of page `key` read under `ticket`.
    pub fn keep_page(&self, ticket: Ticket, key: String, body: Bytes) {
        if !ticket.live || body.len() > MAX_PAGE_BYTES / 8 {
            return;
        }
        let mut pages = lock(&self.pages);
        let held = self.page_bytes.load(Ordering::Relaxed) as usize;
        if pages.len() >= MAX_PAGES || held + body.len() > MAX_PAGE_BYTES {
            let current = self.inventory.current();
            pages.retain(|_, e| e.generation == current && e.filled.elapsed() < self.page_ttl);
            let bytes = pages.values().map(|e| e.value.len()).sum::<usize>();
            if pages.len() >= MAX_PAGES / 2 || bytes + body.len() > MAX_PAGE_BYTES {
                pages.clear();
                self.page_bytes.store(0, Ordering::Relaxed);
            } else {
                self.page_bytes.store(bytes as u64, Ordering::Relaxed);
            }
        }
        self.page_bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
        let entry = Entry { generation: ticket.generation, filled: Instant::now(), value: body };
        if let Some(old) = pages.insert(key, entry) {
            self.page_bytes.fetch_sub(old.value.len() as u64, Ordering::Relaxed);
        }
    }

    /// The expiry thresholds, from memory when current, else from the settings.
    pub async fn thresholds(&self, pool: &PgPool) -> Result<ExpiryThresholds, sqlx::Error> {
        if !self.page_ttl.is_zero()
            && let Some(e) = lock(&self.thresholds).as_ref()
            && self.fresh(e, &self.inventory, self.page_ttl)
        {
            return Ok(e.value);
        }
        let ticket = self.inventory_ticket();
        let value = shared::db::settings::expiry_thresholds(pool).await?;
        if ticket.live {
            *lock(&self.thresholds) =
                Some(Entry { generation: ticket.generation, filled: Instant::now(), value });
        }
        Ok(value)
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
