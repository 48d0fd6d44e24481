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
    let ids: Vec<String> = subscriptions
        .iter()
        .map(|s| s.subscription_id.to_ascii_lowercase())
        .collect();
    let names: Vec<Option<String>> = subscriptions
        .iter()
        .map(|s| s.display_name.clone())
        .collect();
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
