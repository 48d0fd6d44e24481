//! The state every handler shares. Nothing here is per-replica but soft caches that Postgres
//! notifications keep current: the API stays stateless.

use std::sync::Arc;

use redis::aio::ConnectionManager;

use crate::cache::Caches;
use shared::azure::AzureClients;
use shared::config::Config;
use shared::jobs::Queues;
use sqlx::PgPool;

/// Shared handles: configuration, Postgres, Redis and the Azure clients.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub pool: PgPool,
    pub redis: ConnectionManager,
    pub queues: Queues,
    pub azure: Arc<AzureClients>,
    /// The HMAC key of the audit chain.
    pub audit_key: Arc<Vec<u8>>,
    /// Token checks and asset-list pages (see `cache`).
    pub caches: Arc<Caches>,
}
