//! Key Vaults as Resource Manager describes them.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool};
use uuid::Uuid;

use crate::azure::arm::ArmVault;

/// A stored vault with its live asset counts.
#[derive(Debug, Clone, FromRow)]
pub struct Vault {
    pub id: Uuid,
    pub resource_id: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub name: String,
    pub location: Option<String>,
    pub vault_uri: String,
    pub tenant_id: Option<String>,
    pub sku: Option<String>,
    pub rbac_enabled: bool,
    pub soft_delete_enabled: bool,
    pub purge_protection: bool,
    pub public_network_access: Option<String>,
    pub tags: serde_json::Value,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub last_scan_id: Option<Uuid>,
    pub secrets: i64,
    pub keys: i64,
    pub certificates: i64,
}

/// Inserts or refreshes vaults found by a scan in one statement; returns `(id, vault_uri)` in
/// the order given. Vaults without a `vaultUri` are skipped by the caller.
pub async fn upsert_batch(
    conn: &mut PgConnection,
    scan_id: Uuid,
    vaults: &[ArmVault],
) -> Result<Vec<(Uuid, String)>, sqlx::Error> {
    let mut ids = Vec::with_capacity(vaults.len());
    let mut resource_ids = Vec::new();
    let mut subs = Vec::new();
    let mut groups = Vec::new();
    let mut names = Vec::new();
    let mut locations = Vec::new();
    let mut uris = Vec::new();
    let mut tenants = Vec::new();
    let mut skus = Vec::new();
    let mut rbac = Vec::new();
    let mut soft_delete = Vec::new();
    let mut purge = Vec::new();
    let mut public_access = Vec::new();
    let mut tags = Vec::new();
    for vault in vaults {
        let (sub, rg) = vault.scope().unwrap_or_default();
        let p = &vault.properties;
        ids.push(Uuid::new_v4());
        resource_ids.push(vault.id.clone());
        subs.push(sub);
        groups.push(rg);
        names.push(vault.name.clone());
        locations.push(vault.location.clone());
        uris.push(p.vault_uri.clone().unwrap_or_default());
        tenants.push(p.tenant_id.clone());
        skus.push(p.sku.as_ref().and_then(|s| s.name.clone()));
        rbac.push(p.enable_rbac_authorization.unwrap_or(false));
        // Soft delete is on unless Azure says otherwise (it can no longer be turned off).
        soft_delete.push(p.enable_soft_delete.unwrap_or(true));
        purge.push(p.enable_purge_protection.unwrap_or(false));
        public_access.push(p.public_network_access.clone());
        tags.push(serde_json::Value::Object(vault.tags.clone()));
    }

    let rows: Vec<(String, Uuid, String)> = sqlx::query_as(
        "INSERT INTO vaults (id, resource_id, subscription_id, resource_group, name, location, \
             vault_uri, tenant_id, sku, rbac_enabled, soft_delete_enabled, purge_protection, \
             public_network_access, tags, last_scan_id) \
         SELECT *, $15::uuid FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], \
             $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::bool[], \
             $11::bool[], $12::bool[], $13::text[], $14::jsonb[]) \
         ON CONFLICT ((lower(resource_id))) DO UPDATE SET \
             subscription_id = EXCLUDED.subscription_id, resource_group = EXCLUDED.resource_group, \
             name = EXCLUDED.name, location = EXCLUDED.location, vault_uri = EXCLUDED.vault_uri, \
             tenant_id = EXCLUDED.tenant_id, sku = EXCLUDED.sku, \
             rbac_enabled = EXCLUDED.rbac_enabled, \
             soft_delete_enabled = EXCLUDED.soft_delete_enabled, \
             purge_protection = EXCLUDED.purge_protection, \
             public_network_access = EXCLUDED.public_network_access, tags = EXCLUDED.tags, \
             last_seen_at = now(), last_scan_id = EXCLUDED.last_scan_id, deleted_at = NULL \
         RETURNING lower(resource_id), id, vault_uri",
    )
    .bind(&ids)
    .bind(&resource_ids)
    .bind(&subs)
    .bind(&groups)
    .bind(&names)
    .bind(&locations)
    .bind(&uris)
    .bind(&tenants)
    .bind(&skus)
    .bind(&rbac)
    .bind(&soft_delete)
    .bind(&purge)
    .bind(&public_access)
    .bind(&tags)
    .bind(scan_id)
    .fetch_all(&mut *conn)
    .await?;

    // RETURNING has no guaranteed order: match rows back to the input by resource id.
    let by_id: std::collections::HashMap<String, (Uuid, String)> =
        rows.into_iter().map(|(rid, id, uri)| (rid, (id, uri))).collect();
    Ok(resource_ids
        .iter()
        .filter_map(|rid| by_id.get(&rid.to_ascii_lowercase()).cloned())
        .collect())
}

/// One vault's URI, by id.
pub async fn uri_of(pool: &PgPool, id: Uuid) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT name, vault_uri FROM vaults WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await
}

/// Vaults still present, with their live asset counts, and the total.
pub async fn list(
    pool: &PgPool,
    subscription: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Vault>, i64), sqlx::Error> {
    let rows = sqlx::query_as::<_, Vault>(
        "SELECT v.id, v.resource_id, v.subscription_id, v.resource_group, v.name, v.location, \
                v.vault_uri, v.tenant_id, v.sku, v.rbac_enabled, v.soft_delete_enabled, \
                v.purge_protection, v.public_network_access, v.tags, v.first_seen_at, \
                v.last_seen_at, v.last_scan_id, \
                count(a.id) FILTER (WHERE a.asset_type = 'secret') AS secrets, \
                count(a.id) FILTER (WHERE a.asset_type = 'key') AS keys, \
                count(a.id) FILTER (WHERE a.asset_type = 'certificate') AS certificates \
         FROM vaults v \
         LEFT JOIN assets a ON a.vault_id = v.id AND a.deleted_at IS NULL \
         WHERE v.deleted_at IS NULL AND ($1::text IS NULL OR v.subscription_id = $1) \
         GROUP BY v.id ORDER BY v.name, v.id LIMIT $2 OFFSET $3",
    )
    .bind(subscription)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await?;
    let total = sqlx::query_scalar(
        "SELECT count(*) FROM vaults \
         WHERE deleted_at IS NULL AND ($1::text IS NULL OR subscription_id = $1)",
    )
    .bind(subscription)
    .fetch_one(pool)
    .await?;
    Ok((rows, total))
}
