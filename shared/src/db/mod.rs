//! Database access, one module per aggregate. Queries are checked at run time
//! (`sqlx::query_as` with `FromRow`); writes for bulk work are set-based (`UNNEST`).

pub mod alerts;
pub mod assets;
pub mod jobs;
pub mod scans;
pub mod settings;
pub mod subscriptions;
pub mod tokens;
pub mod users;
pub mod vaults;
pub mod workers;

use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// The migrations embedded from `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Opens a pool.
pub async fn connect(url: &str, max_connections: u32) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect(url)
        .await
}

/// Runs pending migrations. sqlx takes a Postgres advisory lock for the duration, so API and
/// worker replicas that start together apply each migration exactly once.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// The Postgres error code of a unique violation, mapped to 409 by the API.
pub const UNIQUE_VIOLATION: &str = "23505";

/// Whether `err` is a unique violation of `constraint`.
pub fn is_unique_violation(err: &sqlx::Error, constraint: &str) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.code().as_deref() == Some(UNIQUE_VIOLATION) && db.constraint() == Some(constraint)
        }
        _ => false,
    }
}
