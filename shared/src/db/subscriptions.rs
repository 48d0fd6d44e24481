//! Azure subscriptions: registered through the API, or discovered through Resource Manager.

use sqlx::{PgConnection, PgPool};

use crate::azure::arm::ArmSubscription;

/// The ids of subscriptions registered through the API; scans cover these when there are any.
pub async fn registered_ids(pool: &PgPool) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT id FROM subscriptions WHERE source = 'registered' ORDER BY id")
        .fetch_all(pool)
        .await
}

/// Records subscriptions seen through Resource Manager in one statement, keeping the source of
/// rows that were registered.
pub async fn upsert_discovered(
    conn: &mut PgConnection,
    subscriptions: &[ArmSubscription],
) -> Result<(), sqlx::Error> {
    let ids: Vec<String> =
        subscriptions.iter().map(|s| s.subscription_id.to_ascii_lowercase()).collect();
    let names: Vec<Option<String>> = subscriptions.iter().map(|s| s.display_name.clone()).collect();
    let tenants: Vec<Option<String>> = subscriptions.iter().map(|s| s.tenant_id.clone()).collect();
    let states: Vec<Option<String>> = subscriptions.iter().map(|s| s.state.clone()).collect();
    sqlx::query(
        "INSERT INTO subscriptions (id, name, tenant_id, state, source, last_seen_at) \
         SELECT i, n, t, s, 'discovered', now() \
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS u(i, n, t, s) \
         ON CONFLICT (id) DO UPDATE SET name = coalesce(subscriptions.name, EXCLUDED.name), \
             tenant_id = EXCLUDED.tenant_id, state = EXCLUDED.state, last_seen_at = now()",
    )
    .bind(&ids)
    .bind(&names)
    .bind(&tenants)
    .bind(&states)
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored subscription.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Subscription {
    pub id: String,
    pub name: Option<String>,
    pub tenant_id: Option<String>,
    pub state: Option<String>,
    pub source: String,
    pub first_seen_at: chrono::DateTime<chrono::Utc>,
    pub last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    pub vaults: i64,
}

/// Every subscription with its live vault count, and the total.
pub async fn list(
    pool: &PgPool,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Subscription>, i64), sqlx::Error> {
    let rows = sqlx::query_as::<_, Subscription>(
        "SELECT s.id, s.name, s.tenant_id, s.state, s.source, s.first_seen_at, s.last_seen_at, \
                count(v.id) AS vaults \
         FROM subscriptions s \
         LEFT JOIN vaults v ON v.subscription_id = s.id AND v.deleted_at IS NULL \
         GROUP BY s.id ORDER BY s.source DESC, s.name NULLS LAST, s.id LIMIT $1 OFFSET $2",
    )
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar("SELECT count(*) FROM subscriptions").fetch_one(pool).await?;
    Ok((rows, total))
}

/// One subscription.
pub async fn get(pool: &PgPool, id: &str) -> Result<Option<Subscription>, sqlx::Error> {
    sqlx::query_as::<_, Subscription>(
        "SELECT s.id, s.name, s.tenant_id, s.state, s.source, s.first_seen_at, s.last_seen_at, \
                (SELECT count(*) FROM vaults v \
                 WHERE v.subscription_id = s.id AND v.deleted_at IS NULL) AS vaults \
         FROM subscriptions s WHERE s.id = $1",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// Registers a subscription. Returns false if it was already registered; a subscription only
/// discovered so far becomes registered.
pub async fn register(
    conn: &mut PgConnection,
    id: &str,
    name: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let changed = sqlx::query(
        "INSERT INTO subscriptions (id, name, source) VALUES ($1, $2, 'registered') \
         ON CONFLICT (id) DO UPDATE SET source = 'registered', \
             name = coalesce(EXCLUDED.name, subscriptions.name) \
         WHERE subscriptions.source <> 'registered'",
    )
    .bind(id)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(changed.rows_affected() == 1)
}

/// Removes a subscription from the product (its vaults and assets stay as history until the
/// next scan marks them). Returns whether it existed.
pub async fn remove(conn: &mut PgConnection, id: &str) -> Result<bool, sqlx::Error> {
    let deleted =
        sqlx::query("DELETE FROM subscriptions WHERE id = $1").bind(id).execute(conn).await?;
    Ok(deleted.rows_affected() == 1)
}
