//! Wakes an idle worker the moment a task is pushed onto its queue.
//!
//! An apalis Redis worker whose last fetch came back empty fetches again only at its next
//! heartbeat, so without help a task waits up to a heartbeat before it starts (the benchmark
//! measured 179 ms at a 200 ms heartbeat). Every product push ([`crate::jobs::push`]) is
//! followed by a `PUBLISH` on the queue's channel; each worker process subscribes to the
//! channels of its queues on one dedicated pub/sub connection and hands each worker a stream
//! that fires when its queue gets a task, which apalis's `PollWith` / `StreamStrategy` turn into
//! an immediate fetch.
//!
//! apalis-redis 1.0 has the pieces but they do not fire: its push script publishes on
//! `tasks:<queue>:active:available` only for tasks it puts on the active list, and it puts every
//! task (`run_at` defaults to now) in the scheduled set instead, to be promoted by the next
//! fetch. Its `RedisStorageFactory` also finds the queue by splitting the channel on `:`, which
//! our `prefix:kind` queue names break, and its connection does not reconnect. Here the
//! subscriber reconnects with backoff, and the heartbeat poll stays as the fallback: a missed
//! notification (Redis restarting, the connection dropping) costs at most one heartbeat.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{PollWith, StreamStrategy};
use apalis_redis::{Config as RedisConfig, RedisStorage};
use futures::task::AtomicWaker;
use futures::{Stream, StreamExt};
use redis::aio::ConnectionManager;

use crate::jobs::queue_config;

/// A queue's storage that fetches as soon as its queue gets a task.
pub type WokenStorage<T> = PollWith<RedisStorage<T, ConnectionManager>, StreamStrategy<Wakeup>>;

/// The wake-up signals of one worker process, one per queue, fed by a background subscriber.
#[derive(Clone)]
pub struct Wakeups {
    by_queue: Arc<HashMap<String, Wakeup>>,
    subscriber: Arc<tokio::task::JoinHandle<()>>,
}

impl Wakeups {
    /// Subscribes (in a background task that reconnects on its own) to the push notifications
    /// of the queues `kinds` under `prefix`.
    pub fn spawn(client: redis::Client, prefix: &str, kinds: &[&str]) -> Self {
        let by_queue: HashMap<String, Wakeup> = kinds
            .iter()
            .map(|kind| (channel(&queue_config(prefix, kind)), Wakeup::new()))
            .collect();
        let by_queue = Arc::new(by_queue);
        let subscriber = tokio::spawn(subscribe(client, by_queue.clone()));
        Self { by_queue, subscriber: Arc::new(subscriber) }
    }

    /// `storage` (a queue built by [`queue_config`]) wrapped so that it fetches as soon as a
    /// task is pushed onto its queue, besides at every heartbeat.
    pub fn wrap<T>(&self, storage: RedisStorage<T, ConnectionManager>) -> WokenStorage<T> {
        // A queue outside `kinds` still works, at heartbeat latency.
        let wakeup =
            self.by_queue.get(&channel(storage.get_config())).cloned().unwrap_or_else(Wakeup::new);
        PollWith::new(storage, StreamStrategy::new(wakeup))
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        if Arc::strong_count(&self.subscriber) == 1 {
            self.subscriber.abort();
        }
    }
}

/// The channel that announces pushes onto the queue of `config`.
pub fn channel(config: &RedisConfig) -> String {
    format!("{}:pushed", config.active_jobs_list())
}

/// Tells the workers listening on `channel` that their queue has a new task.
pub async fn announce(
    conn: &mut ConnectionManager,
    channel: &str,
) -> Result<(), redis::RedisError> {
    redis::cmd("PUBLISH").arg(channel).arg(1).query_async::<i64>(conn).await?;
    Ok(())
}

/// Listens until the connection fails, then reconnects (backing off up to 5 s). After every
/// (re)connection each queue is woken once, for pushes made while no one listened.
async fn subscribe(client: redis::Client, by_queue: Arc<HashMap<String, Wakeup>>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match listen(&client, &by_queue).await {
            Ok(()) => tracing::warn!("queue notifications ended; reconnecting"),
            Err(e) => tracing::warn!(error = %e, "queue notifications unavailable; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn listen(
    client: &redis::Client,
    by_queue: &HashMap<String, Wakeup>,
) -> Result<(), redis::RedisError> {
    let mut pubsub = client.get_async_pubsub().await?;
    let channels: Vec<&str> = by_queue.keys().map(String::as_str).collect();
    pubsub.subscribe(&channels).await?;
    for wakeup in by_queue.values() {
        wakeup.signal();
    }
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        if let Some(wakeup) = by_queue.get(message.get_channel_name()) {
            wakeup.signal();
        }
    }
    Ok(())
}

#[derive(Debug)]
struct Inner {
    waker: AtomicWaker,
    pending: AtomicBool,
}

/// A stream that yields once per burst of pushes onto one queue (signals coalesce while the
/// worker is busy, so a burst costs one extra fetch, not one per task).
#[derive(Debug, Clone)]
pub struct Wakeup(Arc<Inner>);

impl Wakeup {
    fn new() -> Self {
        Self(Arc::new(Inner { waker: AtomicWaker::new(), pending: AtomicBool::new(false) }))
    }

    fn signal(&self) {
        self.0.pending.store(true, Ordering::Release);
        self.0.waker.wake();
    }
}

impl Stream for Wakeup {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let inner = &self.0;
        if !inner.pending.swap(false, Ordering::AcqRel) {
            inner.waker.register(cx.waker());
            if !inner.pending.swap(false, Ordering::AcqRel) {
                return Poll::Pending;
            }
        }
        // The worker polls this before its storage. If a fetch that read the queue before the
        // push is answered empty in this same poll, no fetch would follow the notification and
        // the task would wait for the heartbeat: ask for one more poll, which starts a fetch.
        cx.waker().wake_by_ref();
        Poll::Ready(Some(()))
    }
}
