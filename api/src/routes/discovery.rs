//! `/api/assets/discovery/*`: start a scan, follow it, and read the inventory it built.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::db::assets::{Asset, AssetFilter};
use shared::domain::{AssetStatus, AssetType, JobStatus, ScanMode, ScanStatus, SubscriptionId};
use shared::scans::Requested;
use shared::{audit, db};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, OptionalJson, Path, Query};
use crate::origin::Origin;
use crate::pagination::{Page, Paging};
use crate::state::AppState;

/// The body of `POST /scan`; every field is optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"mode": "delta", "subscriptions": ["12345678-1234-1234-1234-123456789012"]}))]
pub struct ScanRequest {
    /// `full` when absent.
    #[schema(value_type = Option<ScanMode>)]
    pub mode: Option<String>,
    /// Subscription ids (GUIDs) to cover; absent or empty covers every known subscription.
    #[schema(value_type = Option<Vec<Uuid>>)]
    pub subscriptions: Option<Vec<String>>,
}

/// The answer to a scan request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanAccepted {
    pub scan_id: Uuid,
    /// Always `queued`.
    #[schema(example = "queued")]
    pub status: &'static str,
    pub mode: ScanMode,
}

/// `POST /api/assets/discovery/scan`: records the scan and its first job, commits, then
/// enqueues. A second `full` or `delta` request while a scan is active answers 409.
#[utoipa::path(
    post,
    path = "/api/assets/discovery/scan",
    tag = "discovery",
    operation_id = "startScan",
    summary = "Start a discovery scan",
    description = "Records the scan and enqueues it; follow it with the status endpoint. \
        The body is optional. A `force` scan supersedes an active one.",
    request_body(content = Option<ScanRequest>, description = "Mode and subscriptions; may be empty."),
    responses(
        (status = 202, description = "The scan is queued.", body = ScanAccepted),
        (status = 409, description = "A scan is active (`scan_in_progress`); wait, or ask for \
            `force`.", body = ErrorBody),
    ),
)]
pub async fn start_scan(
    State(state): State<AppState>,
    origin: Origin,
    user: AuthUser,
    OptionalJson(body): OptionalJson<ScanRequest>,
) -> Result<(StatusCode, Json<ScanAccepted>), ApiError> {
    let body = body.unwrap_or_default();
    let mode = match body.mode.as_deref() {
        None => ScanMode::Full,
        Some(m) => m.parse::<ScanMode>().map_err(|e| ApiError::invalid("mode", e))?,
    };
    let subscriptions = match body.subscriptions {
        None => None,
        Some(list) if list.is_empty() => None,
        Some(list) => Some(
            list.iter()
                .enumerate()
                .map(|(i, s)| {
                    SubscriptionId::parse(s)
                        .map(String::from)
                        .map_err(|e| ApiError::invalid(&format!("subscriptions[{i}]"), e))
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };

    let mut tx = state.pool.begin().await?;
    let requested =
        shared::scans::request(&mut tx, mode, user.name(), subscriptions.as_deref()).await?;
    let (scan_id, task) = match requested {
        Requested::Recorded { scan_id, task } => (scan_id, task),
        Requested::Busy { active } => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "scan_in_progress",
                format!("scan {active} is still active; wait for it or request mode \"force\""),
            ));
        }
    };
    let details = serde_json::json!({"mode": mode, "subscriptions": subscriptions});
    let target = scan_id.to_string();
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "discovery.scan.requested",
        Some(&target),
        details,
    )
    .await?;
    tx.commit().await?;

    if let Err(e) = state.queues.push_discover(task).await {
        // The rows are committed: the worker's sweeper re-pushes queued jobs.
        tracing::warn!(error = %e, scan.id = %scan_id, "scan recorded but not yet enqueued");
    }
    Ok((StatusCode::ACCEPTED, Json(ScanAccepted { scan_id, status: "queued", mode })))
}

/// Progress of a scan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ScanProgress)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    pub vaults_done: i32,
    pub vaults_total: i32,
    pub vaults_failed: i32,
    pub items_found: i32,
    pub percent: f64,
}

/// A vault that could not be scanned.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ScanVaultError)]
#[serde(rename_all = "camelCase")]
pub struct VaultError {
    pub vault_id: Uuid,
    pub vault: String,
    pub code: String,
    pub message: Option<String>,
}

/// The status of a scan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Scan)]
#[serde(rename_all = "camelCase")]
pub struct ScanStatusBody {
    pub scan_id: Uuid,
    #[schema(value_type = ScanStatus)]
    pub status: String,
    #[schema(value_type = ScanMode)]
    pub mode: String,
    /// What the scan is doing now, such as `enumerating` or `scanning`.
    pub phase: String,
    pub progress: Progress,
    pub errors: Vec<VaultError>,
    pub error: Option<String>,
    pub requested_by: Option<String>,
    pub subscriptions: Option<Vec<String>>,
    pub superseded_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

async fn load_scan(state: &AppState, scan_id: Uuid) -> Result<db::scans::Scan, ApiError> {
    db::scans::get(&state.pool, scan_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("scan {scan_id}")))
}

fn status_body(scan: db::scans::Scan, errors: Vec<VaultError>) -> ScanStatusBody {
    let percent = if scan.vaults_total > 0 {
        (f64::from(scan.vaults_done) * 1000.0 / f64::from(scan.vaults_total)).round() / 10.0
    } else if scan.status == "completed" {
        100.0
    } else {
        0.0
    };
    ScanStatusBody {
        scan_id: scan.id,
        status: scan.status,
        mode: scan.mode,
        phase: scan.phase,
        progress: Progress {
            vaults_done: scan.vaults_done,
            vaults_total: scan.vaults_total,
            vaults_failed: scan.vaults_failed,
            items_found: scan.items_found,
            percent,
        },
        errors,
        error: scan.error,
        requested_by: scan.requested_by,
        subscriptions: scan.subscriptions,
        superseded_by: scan.superseded_by,
        created_at: scan.created_at,
        started_at: scan.started_at,
        finished_at: scan.finished_at,
    }
}

/// `GET /scan/{scan_id}/status`.
#[utoipa::path(
    get,
    path = "/api/assets/discovery/scan/{scan_id}/status",
    tag = "discovery",
    operation_id = "getScanStatus",
    summary = "A scan's status and progress",
    params(("scan_id" = Uuid, Path, description = "The scan's id.")),
    responses(
        (status = 200, description = "Status, progress and failed vaults.", body = ScanStatusBody),
        (status = 404, description = "No such scan.", body = ErrorBody),
    ),
)]
pub async fn scan_status(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(scan_id): Path<Uuid>,
) -> Result<Json<ScanStatusBody>, ApiError> {
    let scan = load_scan(&state, scan_id).await?;
    let errors = db::scans::vault_outcomes(&state.pool, scan_id)
        .await?
        .into_iter()
        .filter(|v| v.status == "failed")
        .map(|v| VaultError {
            vault_id: v.vault_id,
            vault: v.vault_name,
            code: v.error_code.unwrap_or_default(),
            message: v.error_message,
        })
        .collect();
    Ok(Json(status_body(scan, errors)))
}

/// A vault's outcome in a scan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ScanVaultOutcome)]
#[serde(rename_all = "camelCase")]
pub struct VaultOutcome {
    pub vault_id: Uuid,
    pub name: String,
    pub subscription_id: String,
    pub status: String,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub secrets: i32,
    pub keys: i32,
    pub certificates: i32,
    /// Asset rows the vault job wrote (in delta mode, only the changed items).
    pub written: i32,
}

/// What a scan found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanResults {
    pub scan_id: Uuid,
    pub status: String,
    pub total: i64,
    /// Items found per type, as recorded when each vault finished.
    pub by_type: BTreeMap<&'static str, i64>,
    /// Live status of the inventory of the scanned vaults, derived now.
    pub by_status: BTreeMap<&'static str, i64>,
    pub vaults: Vec<VaultOutcome>,
}

/// `GET /scan/{scan_id}/results`.
#[utoipa::path(
    get,
    path = "/api/assets/discovery/scan/{scan_id}/results",
    tag = "discovery",
    operation_id = "getScanResults",
    summary = "What a scan found",
    params(("scan_id" = Uuid, Path, description = "The scan's id.")),
    responses(
        (status = 200, description = "Counts by type and status, and each vault's outcome.",
            body = ScanResults),
        (status = 404, description = "No such scan.", body = ErrorBody),
    ),
)]
pub async fn scan_results(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(scan_id): Path<Uuid>,
) -> Result<Json<ScanResults>, ApiError> {
    let scan = load_scan(&state, scan_id).await?;
    let outcomes = db::scans::vault_outcomes(&state.pool, scan_id).await?;

    let mut by_type: BTreeMap<&'static str, i64> =
        AssetType::ALL.iter().map(|t| (t.as_str(), 0)).collect();
    for v in &outcomes {
        *by_type.entry(AssetType::Secret.as_str()).or_default() += i64::from(v.secrets);
        *by_type.entry(AssetType::Key.as_str()).or_default() += i64::from(v.keys);
        *by_type.entry(AssetType::Certificate.as_str()).or_default() += i64::from(v.certificates);
    }

    let thresholds = db::settings::expiry_thresholds(&state.pool).await?;
    let filter = AssetFilter { scan_id: Some(scan_id), ..Default::default() };
    let mut by_status: BTreeMap<&'static str, i64> =
        AssetStatus::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for (_type, status, n) in db::assets::counts(&state.pool, &filter, thresholds).await? {
        if let Ok(s) = status.parse::<AssetStatus>() {
            *by_status.entry(s.as_str()).or_default() += n;
        }
    }

    Ok(Json(ScanResults {
        scan_id,
        status: scan.status,
        total: by_type.values().sum(),
        by_type,
        by_status,
        vaults: outcomes
            .into_iter()
            .map(|v| VaultOutcome {
                vault_id: v.vault_id,
                name: v.vault_name,
                subscription_id: v.subscription_id,
                status: v.status,
                error_code: v.error_code,
                error_message: v.error_message,
                secrets: v.secrets,
                keys: v.keys,
                certificates: v.certificates,
                written: v.written,
            })
            .collect(),
    }))
}

/// A job of a scan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Job)]
#[serde(rename_all = "camelCase")]
pub struct JobBody {
    pub job_id: Uuid,
    /// What the job does, such as `discover` or `scan_vault`.
    pub kind: String,
    pub subject: Option<String>,
    #[schema(value_type = JobStatus)]
    pub status: String,
    pub attempt: i32,
    pub worker: Option<String>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// `GET /scan/{scan_id}/jobs`.
#[utoipa::path(
    get,
    path = "/api/assets/discovery/scan/{scan_id}/jobs",
    tag = "discovery",
    operation_id = "listScanJobs",
    summary = "The jobs of a scan",
    params(("scan_id" = Uuid, Path, description = "The scan's id."), Paging),
    responses(
        (status = 200, description = "A page of the scan's jobs.", body = Page<JobBody>),
        (status = 404, description = "No such scan.", body = ErrorBody),
    ),
)]
pub async fn scan_jobs(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(scan_id): Path<Uuid>,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<JobBody>>, ApiError> {
    let (limit, offset) = paging.validate()?;
    load_scan(&state, scan_id).await?;
    let (jobs, total) = db::jobs::list_for_scan(&state.pool, scan_id, limit, offset).await?;
    let items = jobs
        .into_iter()
        .map(|j| JobBody {
            job_id: j.id,
            kind: j.kind,
            subject: j.subject,
            status: j.status,
            attempt: j.attempt,
            worker: j.worker,
            error: j.error,
            created_at: j.created_at,
            started_at: j.started_at,
            finished_at: j.finished_at,
        })
        .collect();
    Ok(Json(Page { items, total, limit, offset }))
}

/// `GET /scans`.
#[utoipa::path(
    get,
    path = "/api/assets/discovery/scans",
    tag = "discovery",
    operation_id = "listScans",
    summary = "List scans, newest first",
    params(Paging),
    responses((status = 200, description = "A page of scans.", body = Page<ScanStatusBody>)),
)]
pub async fn list_scans(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<ScanStatusBody>>, ApiError> {
    let (limit, offset) = paging.validate()?;
    let (scans, total) = db::scans::list(&state.pool, limit, offset).await?;
    let items = scans.into_iter().map(|s| status_body(s, Vec::new())).collect();
    Ok(Json(Page { items, total, limit, offset }))
}

/// Filters of `GET /assets`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AssetQuery {
    /// Only assets of this type.
    #[serde(rename = "type")]
    pub asset_type: Option<AssetType>,
    /// Only assets in this expiry status, derived now from the compliance-policy thresholds.
    pub status: Option<AssetStatus>,
    /// Only assets of vaults whose name contains this text.
    pub vault: Option<String>,
    /// Only assets of this subscription (a GUID).
    #[param(value_type = Option<Uuid>, example = "12345678-1234-1234-1234-123456789012")]
    pub subscription: Option<String>,
    /// Page size: 1 to 500, 50 when absent.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Items to skip.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// An asset in a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssetSummary {
    pub id: Uuid,
    #[serde(rename = "type")]
    #[schema(value_type = AssetType)]
    pub asset_type: String,
    #[schema(example = "api-key")]
    pub name: String,
    pub version: Option<String>,
    #[schema(value_type = AssetStatus)]
    pub status: String,
    pub enabled: bool,
    pub expires_on: Option<DateTime<Utc>>,
    pub days_until_expiry: Option<i64>,
    pub vault_id: Uuid,
    pub vault_name: String,
    pub subscription_id: String,
    pub content_type: Option<String>,
    #[schema(value_type = BTreeMap<String, String>)]
    pub tags: serde_json::Value,
    pub updated_on: Option<DateTime<Utc>>,
    pub last_seen_at: DateTime<Utc>,
}

impl From<&Asset> for AssetSummary {
    fn from(a: &Asset) -> Self {
        Self {
            id: a.id,
            asset_type: a.asset_type.clone(),
            name: a.name.clone(),
            version: a.version.clone(),
            status: a.status.clone(),
            enabled: a.enabled,
            expires_on: a.expires_on,
            days_until_expiry: a.expires_on.map(|e| (e - Utc::now()).num_days()),
            vault_id: a.vault_id,
            vault_name: a.vault_name.clone(),
            subscription_id: a.subscription_id.clone(),
            content_type: a.content_type.clone(),
            tags: a.tags.clone(),
            updated_on: a.updated_on,
            last_seen_at: a.last_seen_at,
        }
    }
}

/// `GET /assets`.
#[utoipa::path(
    get,
    path = "/api/assets/discovery/assets",
    tag = "discovery",
    operation_id = "listAssets",
    summary = "List the inventory: secrets, keys and certificates",
    description = "Metadata only: values are never read. Sorted by expiry, soonest first.",
    params(AssetQuery),
    responses((status = 200, description = "A page of assets.", body = Page<AssetSummary>)),
)]
pub async fn list_assets(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(query): Query<AssetQuery>,
) -> Result<Response, ApiError> {
    let (limit, offset) = Paging { limit: query.limit, offset: query.offset }.validate()?;
    let subscription = query
        .subscription
        .as_deref()
        .map(|s| SubscriptionId::parse(s).map_err(|e| ApiError::invalid("subscription", e)))
        .transpose()?;
    let filter = AssetFilter {
        asset_type: query.asset_type,
        status: query.status,
        vault: query.vault.filter(|v| !v.is_empty()),
        subscription: subscription.map(String::from),
        scan_id: None,
    };
    // Every input of the page is in the key; the thresholds and the clock are covered by the
    // inventory generation and the cache's time-to-live.
    let key = format!("{filter:?} {limit} {offset}");
    let body = state
        .caches
        .page(key, || async {
            let thresholds = state.caches.thresholds(&state.pool).await?;
            let (assets, total) =
                db::assets::list(&state.pool, &filter, thresholds, limit, offset).await?;
            let items = assets.iter().map(AssetSummary::from).collect();
            let body = serde_json::to_vec(&Page { items, total, limit, offset })
                .map_err(|e| ApiError::internal(format!("encoding the page: {e}")))?;
            Ok::<_, ApiError>(Bytes::from(body))
        })
        .await?;
    Ok(json_bytes(body))
}

/// A JSON body that is already encoded.
fn json_bytes(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response()
}

/// Every metadata field of one asset.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AssetDetail {
    #[serde(flatten)]
    pub summary: AssetSummary,
    pub azure_id: String,
    pub vault_uri: String,
    pub created_on: Option<DateTime<Utc>>,
    pub not_before: Option<DateTime<Utc>>,
    pub recovery_level: Option<String>,
    pub key_type: Option<String>,
    pub key_size: Option<i32>,
    pub key_curve: Option<String>,
    pub subject: Option<String>,
    pub issuer: Option<String>,
    /// Subject alternative names of a certificate.
    #[schema(value_type = Vec<String>)]
    pub sans: serde_json::Value,
    pub thumbprint: Option<String>,
    pub serial_number: Option<String>,
    pub first_seen_at: DateTime<Utc>,
    pub last_scan_id: Option<Uuid>,
}

/// `GET /assets/{asset_id}`.
#[utoipa::path(
    get,
    path = "/api/assets/discovery/assets/{asset_id}",
    tag = "discovery",
    operation_id = "getAsset",
    summary = "One asset with its certificate or key details",
    params(("asset_id" = Uuid, Path, description = "The asset's id.")),
    responses(
        (status = 200, description = "The asset.", body = AssetDetail),
        (status = 404, description = "No such asset.", body = ErrorBody),
    ),
)]
pub async fn get_asset(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(asset_id): Path<Uuid>,
) -> Result<Json<AssetDetail>, ApiError> {
    let thresholds = db::settings::expiry_thresholds(&state.pool).await?;
    let a = db::assets::get(&state.pool, asset_id, thresholds)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("asset {asset_id}")))?;
    Ok(Json(AssetDetail {
        summary: AssetSummary::from(&a),
        azure_id: a.azure_id,
        vault_uri: a.vault_uri,
        created_on: a.created_on,
        not_before: a.not_before,
        recovery_level: a.recovery_level,
        key_type: a.key_type,
        key_size: a.key_size,
        key_curve: a.key_curve,
        subject: a.subject,
        issuer: a.issuer,
        sans: a.sans,
        thumbprint: a.thumbprint,
        serial_number: a.serial_number,
        first_seen_at: a.first_seen_at,
        last_scan_id: a.last_scan_id,
    }))
}

/// Filters of `GET /vaults`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VaultQuery {
    /// Only vaults of this subscription (a GUID).
    #[param(value_type = Option<Uuid>, example = "12345678-1234-1234-1234-123456789012")]
    pub subscription: Option<String>,
    /// Page size: 1 to 500, 50 when absent.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Items to skip.
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// A vault in the inventory.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Vault)]
#[serde(rename_all = "camelCase")]
pub struct VaultBody {
    pub id: Uuid,
    pub name: String,
    pub resource_id: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub location: Option<String>,
    pub vault_uri: String,
    pub tenant_id: Option<String>,
    pub sku: Option<String>,
    pub rbac_enabled: bool,
    pub soft_delete_enabled: bool,
    pub purge_protection: bool,
    pub public_network_access: Option<String>,
    #[schema(value_type = BTreeMap<String, String>)]
    pub tags: serde_json::Value,
    pub secrets: i64,
    pub keys: i64,
    pub certificates: i64,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub last_scan_id: Option<Uuid>,
}

/// `GET /vaults`.
#[utoipa::path(
    get,
    path = "/api/assets/discovery/vaults",
    tag = "discovery",
    operation_id = "listVaults",
    summary = "List the Key Vaults found",
    params(VaultQuery),
    responses((status = 200, description = "A page of vaults with item counts.",
        body = Page<VaultBody>)),
)]
pub async fn list_vaults(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(query): Query<VaultQuery>,
) -> Result<Json<Page<VaultBody>>, ApiError> {
    let (limit, offset) = Paging { limit: query.limit, offset: query.offset }.validate()?;
    let subscription = query
        .subscription
        .as_deref()
        .map(|s| SubscriptionId::parse(s).map_err(|e| ApiError::invalid("subscription", e)))
        .transpose()?;
    let (vaults, total) =
        db::vaults::list(&state.pool, subscription.as_ref().map(|s| s.as_str()), limit, offset)
            .await?;
    let items = vaults
        .into_iter()
        .map(|v| VaultBody {
            id: v.id,
            name: v.name,
            resource_id: v.resource_id,
            subscription_id: v.subscription_id,
            resource_group: v.resource_group,
            location: v.location,
            vault_uri: v.vault_uri,
            tenant_id: v.tenant_id,
            sku: v.sku,
            rbac_enabled: v.rbac_enabled,
            soft_delete_enabled: v.soft_delete_enabled,
            purge_protection: v.purge_protection,
            public_network_access: v.public_network_access,
            tags: v.tags,
            secrets: v.secrets,
            keys: v.keys,
            certificates: v.certificates,
            first_seen_at: v.first_seen_at,
            last_seen_at: v.last_seen_at,
            last_scan_id: v.last_scan_id,
        })
        .collect();
    Ok(Json(Page { items, total, limit, offset }))
}
