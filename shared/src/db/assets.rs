//! The inventory: metadata of secrets, keys and certificates, never their values.

use chrono::{DateTime, Utc};
use sqlx::{FromRow, PgConnection, PgPool, Postgres, QueryBuilder};
use uuid::Uuid;

use crate::azure::keyvault::DiscoveredAsset;
use crate::domain::{AssetStatus, AssetType, ExpiryThresholds};

/// A stored asset with its vault and its derived status.
#[derive(Debug, Clone, FromRow)]
pub struct Asset {
    pub id: Uuid,
    pub vault_id: Uuid,
    pub vault_name: String,
    pub vault_uri: String,
    pub subscription_id: String,
    pub asset_type: String,
    pub name: String,
    pub version: Option<String>,
    pub azure_id: String,
    pub enabled: bool,
    pub created_on: Option<DateTime<Utc>>,
    pub updated_on: Option<DateTime<Utc>>,
    pub expires_on: Option<DateTime<Utc>>,
    pub not_before: Option<DateTime<Utc>>,
    pub content_type: Option<String>,
    pub tags: serde_json::Value,
    pub recovery_level: Option<String>,
    pub key_type: Option<String>,
    pub key_size: Option<i32>,
    pub key_curve: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    pub sans: serde_json::Value,
    pub thumbprint: Option<String>,
    pub serial_number: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub last_scan_id: Option<Uuid>,
    pub status: String,
}

/// Inserts or refreshes the given assets of one vault in one statement; returns how many rows
/// were written.
pub async fn upsert_batch(
    conn: &mut PgConnection,
    vault_id: Uuid,
    scan_id: Uuid,
    assets: &[DiscoveredAsset],
) -> Result<u64, sqlx::Error> {
    let n = assets.len();
    let mut ids = Vec::with_capacity(n);
    let mut types = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut azure_ids = Vec::with_capacity(n);
    let mut enabled = Vec::with_capacity(n);
    let mut created = Vec::with_capacity(n);
    let mut updated = Vec::with_capacity(n);
    let mut expires = Vec::with_capacity(n);
    let mut not_before = Vec::with_capacity(n);
    let mut content_types = Vec::with_capacity(n);
    let mut tags = Vec::with_capacity(n);
    let mut recovery = Vec::with_capacity(n);
    let mut key_types = Vec::with_capacity(n);
    let mut key_sizes = Vec::with_capacity(n);
    let mut curves = Vec::with_capacity(n);
    let mut subjects = Vec::with_capacity(n);
    let mut issuers = Vec::with_capacity(n);
    let mut sans = Vec::with_capacity(n);
    let mut thumbprints = Vec::with_capacity(n);
    let mut serials = Vec::with_capacity(n);
    for a in assets {
        // Time-ordered ids: new rows land at the right edge of the primary key.
        ids.push(Uuid::now_v7());
        types.push(a.asset_type.map(AssetType::as_str).unwrap_or("secret"));
        names.push(a.name.as_str());
        versions.push(a.version.as_deref());
        azure_ids.push(a.azure_id.as_str());
        enabled.push(a.enabled);
        created.push(a.created_on);
        updated.push(a.updated_on);
        expires.push(a.expires_on);
        not_before.push(a.not_before);
        content_types.push(a.content_type.as_deref());
        tags.push(serde_json::to_value(&a.tags).unwrap_or_default());
        recovery.push(a.recovery_level.as_deref());
        key_types.push(a.key_type.as_deref());
        key_sizes.push(a.key_size);
        curves.push(a.key_curve.as_deref());
        subjects.push(a.subject.as_deref());
        issuers.push(a.issuer.as_deref());
        sans.push(serde_json::Value::from(a.sans.clone()));
        thumbprints.push(a.thumbprint.as_deref());
        serials.push(a.serial_number.as_deref());
    }

    let written = sqlx::query(
        "INSERT INTO assets (id, asset_type, name, version, azure_id, enabled, created_on, \
             updated_on, expires_on, not_before, content_type, tags, recovery_level, key_type, \
             key_size, key_curve, subject, issuer, sans, thumbprint, serial_number, vault_id, \
             last_scan_id, vault_name) \
         SELECT *, $22::uuid, $23::uuid, (SELECT name FROM vaults WHERE id = $22) FROM UNNEST($1::uuid[], $2::text[], $3::text[], \
             $4::text[], $5::text[], $6::bool[], $7::timestamptz[], $8::timestamptz[], \
             $9::timestamptz[], $10::timestamptz[], $11::text[], $12::jsonb[], $13::text[], \
             $14::text[], $15::int[], $16::text[], $17::text[], $18::text[], $19::jsonb[], \
             $20::text[], $21::text[]) \
         ON CONFLICT (vault_id, asset_type, name) DO UPDATE SET \
             version = EXCLUDED.version, azure_id = EXCLUDED.azure_id, \
             enabled = EXCLUDED.enabled, created_on = EXCLUDED.created_on, \
             updated_on = EXCLUDED.updated_on, expires_on = EXCLUDED.expires_on, \
             not_before = EXCLUDED.not_before, content_type = EXCLUDED.content_type, \
             tags = EXCLUDED.tags, recovery_level = EXCLUDED.recovery_level, \
             key_type = coalesce(EXCLUDED.key_type, assets.key_type), \
             key_size = coalesce(EXCLUDED.key_size, assets.key_size), \
             key_curve = coalesce(EXCLUDED.key_curve, assets.key_curve), \
             subject = coalesce(EXCLUDED.subject, assets.subject), \
             issuer = coalesce(EXCLUDED.issuer, assets.issuer), \
             sans = EXCLUDED.sans, thumbprint = coalesce(EXCLUDED.thumbprint, assets.thumbprint), \
             serial_number = coalesce(EXCLUDED.serial_number, assets.serial_number), \
             last_seen_at = now(), last_scan_id = EXCLUDED.last_scan_id, deleted_at = NULL",
    )
    .bind(&ids)
    .bind(&types)
    .bind(&names)
    .bind(&versions)
    .bind(&azure_ids)
    .bind(&enabled)
    .bind(&created)
    .bind(&updated)
    .bind(&expires)
    .bind(&not_before)
    .bind(&content_types)
    .bind(&tags)
    .bind(&recovery)
    .bind(&key_types)
    .bind(&key_sizes)
    .bind(&curves)
    .bind(&subjects)
    .bind(&issuers)
    .bind(&sans)
    .bind(&thumbprints)
    .bind(&serials)
    .bind(vault_id)
    .bind(scan_id)
    .execute(&mut *conn)
    .await?;

    Ok(written.rows_affected())
}

/// The live assets of vault `$1`, written so that only the natural-key index can serve it.
///
/// A first scan grows `assets` from nothing in less time than autovacuum takes to analyze it.
/// With those estimates, `deleted_at IS NULL` let Postgres read one of the partial list-order
/// indexes in full for every vault (every live asset, for every vault: 50 million index
/// entries for a 100k-asset tenant). Spelled as a CASE, the condition cannot match those
/// indexes' predicate; its meaning is the same.
macro_rules! live_in_vault {
    () => {
        "vault_id = $1 AND CASE WHEN deleted_at IS NULL THEN true END"
    };
}

/// Makes the rest of the transaction plan each statement for the table as it is now, so that
/// a generic plan cached while `assets` was nearly empty (a full scan) is not kept for the
/// rest of a first scan.
pub async fn plan_for_current_size(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SET LOCAL plan_cache_mode = force_custom_plan").execute(conn).await?;
    Ok(())
}

/// Marks the live assets of a vault that a scan did not list as deleted (one statement).
/// Returns how many were marked.
pub async fn mark_missing(
    conn: &mut PgConnection,
    vault_id: Uuid,
    seen: &[DiscoveredAsset],
) -> Result<u64, sqlx::Error> {
    let types: Vec<&str> =
        seen.iter().map(|a| a.asset_type.map(AssetType::as_str).unwrap_or("secret")).collect();
    let names: Vec<&str> = seen.iter().map(|a| a.name.as_str()).collect();
    let marked = sqlx::query(concat!(
        "UPDATE assets SET deleted_at = now() WHERE ",
        live_in_vault!(),
        " AND (asset_type, name) NOT IN (SELECT * FROM UNNEST($2::text[], $3::text[]))"
    ))
    .bind(vault_id)
    .bind(&types)
    .bind(&names)
    .execute(&mut *conn)
    .await?;
    Ok(marked.rows_affected())
}

/// What a delta scan compares to decide whether an item changed.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct Fingerprint {
    pub asset_type: String,
    pub name: String,
    pub updated_on: Option<DateTime<Utc>>,
    pub thumbprint: Option<String>,
    pub enabled: bool,
    pub expires_on: Option<DateTime<Utc>>,
}

/// The fingerprints of a vault's live assets.
pub async fn fingerprints(pool: &PgPool, vault_id: Uuid) -> Result<Vec<Fingerprint>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    plan_for_current_size(&mut tx).await?;
    let found = sqlx::query_as::<_, Fingerprint>(concat!(
        "SELECT asset_type, name, updated_on, thumbprint, enabled, expires_on FROM assets \
             WHERE ",
        live_in_vault!()
    ))
    .bind(vault_id)
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(found)
}

/// Filters for listing assets.
#[derive(Debug, Clone, Default)]
pub struct AssetFilter {
    pub asset_type: Option<AssetType>,
    pub status: Option<AssetStatus>,
    /// A vault id, or a substring of the vault name (case-insensitive).
    pub vault: Option<String>,
    pub subscription: Option<String>,
    /// Only the assets of the vaults one scan covered.
    pub scan_id: Option<Uuid>,
}

/// The columns of an [`Asset`]: the live asset `a` with its vault `v` (the caller joins them)
/// and its status, derived from the expiry date and the thresholds in the query itself.
fn push_columns(q: &mut QueryBuilder<Postgres>, thresholds: ExpiryThresholds) {
    q.push(
        "a.id, a.vault_id, v.name AS vault_name, v.vault_uri, v.subscription_id, a.asset_type, \
         a.name, a.version, a.azure_id, a.enabled, a.created_on, a.updated_on, a.expires_on, \
         a.not_before, a.content_type, a.tags, a.recovery_level, a.key_type, a.key_size, \
         a.key_curve, a.subject, a.issuer, a.sans, a.thumbprint, a.serial_number, \
         a.first_seen_at, a.last_seen_at, a.last_scan_id, ",
    );
    push_status(q, thresholds);
    q.push(" AS status");
}

/// The derived status of asset `a`; [`push_filters`] states the same cases as expiry ranges.
fn push_status(q: &mut QueryBuilder<Postgres>, thresholds: ExpiryThresholds) {
    q.push(
        "CASE WHEN a.expires_on IS NULL THEN 'healthy' \
              WHEN a.expires_on <= now() THEN 'expired' \
              WHEN a.expires_on < now() + make_interval(days => ",
    );
    q.push_bind(thresholds.critical_expiry_days as i32);
    q.push(") THEN 'critical' WHEN a.expires_on < now() + make_interval(days => ");
    q.push_bind(thresholds.warning_expiry_days as i32);
    q.push(") THEN 'warning' ELSE 'healthy' END");
}

/// Pushes `FROM assets a WHERE ..`: the live assets of live vaults that match `filter`, written
/// over the asset row alone (its copy of the vault name, its expiry date), so that the list
/// order index can serve the filter, the order and the count without reading the table.
fn push_matches(
    q: &mut QueryBuilder<Postgres>,
    filter: &AssetFilter,
    thresholds: ExpiryThresholds,
) {
    // Deleted vaults are few (usually none): their ids are read once per query, which costs
    // less than an anti-join probed for every matching entry.
    q.push(
        " FROM assets a WHERE a.deleted_at IS NULL AND a.vault_id <> ALL (ARRAY( \
           SELECT id FROM vaults WHERE deleted_at IS NOT NULL))",
    );
    if let Some(t) = filter.asset_type {
        q.push(" AND a.asset_type = ").push_bind(t.as_str());
    }
    if let Some(s) = filter.status {
        // Each status as a range on expires_on, exactly the cases of `push_status`: an index
        // serves a range, while the derived status alone makes every query read everything.
        let critical = thresholds.critical_expiry_days as i32;
        let warning = thresholds.warning_expiry_days as i32;
        match s {
            AssetStatus::Expired => {
                q.push(" AND a.expires_on <= now()");
            }
            AssetStatus::Critical => {
                q.push(
                    " AND a.expires_on > now() AND a.expires_on < now() + make_interval(days => ",
                );
                q.push_bind(critical).push(")");
            }
            AssetStatus::Warning => {
                q.push(
                    " AND a.expires_on > now() AND a.expires_on >= now() + make_interval(days => ",
                );
                q.push_bind(critical).push(")");
                q.push(" AND a.expires_on < now() + make_interval(days => ");
                q.push_bind(warning).push(")");
            }
            AssetStatus::Healthy => {
                q.push(" AND (a.expires_on IS NULL OR (a.expires_on > now() AND a.expires_on >= now() + make_interval(days => ");
                q.push_bind(critical).push(")");
                q.push(" AND a.expires_on >= now() + make_interval(days => ");
                q.push_bind(warning).push(")))");
            }
        }
    }
    if let Some(v) = &filter.vault
        && let Ok(id) = Uuid::parse_str(v)
    {
        q.push(" AND a.vault_id = ").push_bind(id);
    } else if let Some(v) = &filter.vault {
        let pattern =
            format!("%{}%", v.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        q.push(" AND a.vault_name ILIKE ").push_bind(pattern);
    }
    if let Some(s) = &filter.subscription {
        q.push(" AND a.vault_id IN (SELECT id FROM vaults WHERE subscription_id = ")
            .push_bind(s.to_ascii_lowercase())
            .push(")");
    }
    if let Some(scan) = filter.scan_id {
        q.push(" AND a.vault_id IN (SELECT vault_id FROM scan_vaults WHERE scan_id = ")
            .push_bind(scan)
            .push(")");
    }
}

/// The list order: soonest expiry first, then vault name, type and name (the order of
/// `assets_list_order_idx`).
const ORDER: &str = " ORDER BY a.expires_on ASC NULLS LAST, a.vault_name, a.asset_type, a.name";

/// A page of assets matching `filter`, soonest expiry first, and the total.
///
/// The page is chosen first over the index alone (ids in list order, skipping `offset`), and
/// only its rows are then read in full.
pub async fn list(
    pool: &PgPool,
    filter: &AssetFilter,
    thresholds: ExpiryThresholds,
    limit: i64,
    offset: i64,
) -> Result<(Vec<Asset>, i64), sqlx::Error> {
    let mut q = QueryBuilder::new("SELECT ");
    push_columns(&mut q, thresholds);
    q.push(" FROM assets a JOIN vaults v ON v.id = a.vault_id WHERE a.id IN (SELECT a.id");
    push_matches(&mut q, filter, thresholds);
    q.push(ORDER).push(" LIMIT ").push_bind(limit).push(" OFFSET ").push_bind(offset);
    q.push(")").push(ORDER);
    let rows = q.build_query_as::<Asset>().fetch_all(pool).await?;

    let mut count = QueryBuilder::new("SELECT count(*)");
    push_matches(&mut count, filter, thresholds);
    let total: i64 = count.build_query_scalar().fetch_one(pool).await?;
    Ok((rows, total))
}

/// One live asset of a live vault.
pub async fn get(
    pool: &PgPool,
    id: Uuid,
    thresholds: ExpiryThresholds,
) -> Result<Option<Asset>, sqlx::Error> {
    let mut q = QueryBuilder::new("SELECT ");
    push_columns(&mut q, thresholds);
    q.push(
        " FROM assets a JOIN vaults v ON v.id = a.vault_id \
         WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL AND a.id = ",
    )
    .push_bind(id);
    q.build_query_as::<Asset>().fetch_optional(pool).await
}

/// Live asset counts by type and status, for the vaults of one scan or for everything.
pub async fn counts(
    pool: &PgPool,
    filter: &AssetFilter,
    thresholds: ExpiryThresholds,
) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    let mut q = QueryBuilder::new("SELECT a.asset_type, ");
    push_status(&mut q, thresholds);
    q.push(" AS status, count(*)");
    push_matches(&mut q, filter, thresholds);
    q.push(" GROUP BY 1, 2");
    q.build_query_as::<(String, String, i64)>().fetch_all(pool).await
}
