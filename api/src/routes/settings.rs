//! `/api/settings/*`: read every setting with its value in force and where it comes from;
//! admins change and reset them. Every change is audited with the old and new value.

use std::collections::BTreeMap;

use axum::extract::State;
use serde_json::{Map, Value, json};
use shared::audit;
use shared::settings::{self, CATEGORIES, Effective};

use crate::auth::{AdminUser, AuthUser};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path};
use crate::openapi::registry::{HistoryType, SettingKey, SettingsCategory, SettingsChange};
use crate::origin::Origin;
use crate::state::AppState;

fn known_category(category: &str) -> Result<(), ApiError> {
    if CATEGORIES.contains(&category) {
        Ok(())
    } else {
        Err(ApiError::invalid("category", format!("expected one of: {}", CATEGORIES.join(", "))))
    }
}

async fn category_view(state: &AppState, category: &str) -> Result<Vec<Effective>, ApiError> {
    let stored = settings::stored(&state.pool).await?;
    let env = |k: &str| state.config.setting_env(k);
    Ok(settings::of(category).map(|d| settings::resolve(d, &stored, &env)).collect())
}

/// The body of `GET /api/settings/all` (built as a map below; documented here).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "camelCase")]
#[expect(dead_code, reason = "documents a body the handler builds as a map")]
struct AllSettings {
    /// The licence tier in force.
    #[schema(example = "STARTER")]
    license_tier: String,
    performance: Vec<Effective>,
    features: Vec<Effective>,
    logging: Vec<Effective>,
    alert_defaults: Vec<Effective>,
    retention: Vec<Effective>,
    compliance_policy: Vec<Effective>,
    automation: Vec<Effective>,
}

/// The category path parameter.
const CATEGORY_DOC: &str = "`performance`, `features`, `logging`, `alert-defaults`, \
    `retention`, `compliance-policy` or `automation`.";

/// `GET /api/settings/all`.
#[utoipa::path(
    get,
    path = "/api/settings/all",
    tag = "settings",
    operation_id = "getAllSettings",
    summary = "Every setting, by category",
    description = "Each setting with its value in force, its default, its type and range, \
        and where the value comes from (`database`, `environment` or `default`).",
    responses((status = 200, description = "Settings by category.", body = AllSettings)),
)]
pub async fn all(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<Json<BTreeMap<String, Value>>, ApiError> {
    let stored = settings::stored(&state.pool).await?;
    let env = |k: &str| state.config.setting_env(k);
    let mut body = BTreeMap::new();
    // No licence verification exists yet, so every installation is on the free tier.
    body.insert("licenseTier".to_owned(), json!("STARTER"));
    for category in CATEGORIES {
        let entries: Vec<Effective> =
            settings::of(category).map(|d| settings::resolve(d, &stored, &env)).collect();
        body.insert(camel(category), serde_json::to_value(entries).map_err(ApiError::internal)?);
    }
    Ok(Json(body))
}

/// `alert-defaults` → `alertDefaults`, as the reference names the groups of `/all`.
fn camel(category: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in category.chars() {
        if c == '-' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `GET /api/settings/{category}`.
#[utoipa::path(
    get,
    path = "/api/settings/{category}",
    tag = "settings",
    operation_id = "getSettingsCategory",
    summary = "The settings of one category",
    params(("category" = SettingsCategory, Path, description = CATEGORY_DOC, example = "performance")),
    responses(
        (status = 200, description = "The category's settings.", body = Vec<Effective>),
        (status = 400, description = "No such category.", body = ErrorBody),
    ),
)]
pub async fn get_category(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(category): Path<String>,
) -> Result<Json<Vec<Effective>>, ApiError> {
    known_category(&category)?;
    Ok(Json(category_view(&state, &category).await?))
}

/// `PUT /api/settings/{category}`: an object of key → value; all or nothing.
#[utoipa::path(
    put,
    path = "/api/settings/{category}",
    tag = "settings",
    operation_id = "updateSettingsCategory",
    summary = "Change settings of one category",
    description = "An object of setting key to new value. Every value is validated first; \
        either all change or none does. Each change is audited with its old and new value.",
    params(("category" = SettingsCategory, Path, description = CATEGORY_DOC, example = "performance")),
    request_body(content = SettingsChange, description = "Setting key to new value.",
        example = json!({"discoveryMaxWorkers": 8})),
    responses(
        (status = 200, description = "The category's settings after the change.",
            body = Vec<Effective>),
        (status = 400, description = "No such category or key, or a value out of range; \
            `detail` names it.", body = ErrorBody),
    ),
)]
pub async fn put_category(
    State(state): State<AppState>,
    origin: Origin,
    AdminUser(user): AdminUser,
    Path(category): Path<String>,
    Json(body): Json<Map<String, Value>>,
) -> Result<Json<Vec<Effective>>, ApiError> {
    known_category(&category)?;
    if body.is_empty() {
        return Err(ApiError::invalid("body", "name at least one setting to change"));
    }
    let mut changes = Vec::new();
    for (key, value) in &body {
        let def = settings::find(&category, key).ok_or_else(|| {
            let keys: Vec<&str> = settings::of(&category).map(|d| d.key).collect();
            ApiError::invalid(
                key,
                format!("is not a {category} setting; expected one of: {}", keys.join(", ")),
            )
        })?;
        let value = def.validate(value).map_err(|why| ApiError::invalid(key, why))?;
        changes.push((def, value));
    }

    let before = category_view(&state, &category).await?;
    let old = |key: &str| before.iter().find(|e| e.key == key).map(|e| e.value.clone());
    if category == "compliance-policy" {
        let pick = |key: &str| {
            changes.iter().find(|(d, _)| d.key == key).map(|(_, v)| v.clone()).or_else(|| old(key))
        };
        let critical = pick("criticalExpiryDays").and_then(|v| v.as_i64()).unwrap_or(7);
        let warning = pick("warningExpiryDays").and_then(|v| v.as_i64()).unwrap_or(30);
        if critical >= warning {
            return Err(ApiError::invalid(
                "criticalExpiryDays",
                format!("must be less than warningExpiryDays ({critical} >= {warning})"),
            ));
        }
    }

    let mut tx = state.pool.begin().await?;
    let actor = origin.of(&user);
    for (def, value) in &changes {
        settings::put(&mut tx, &category, def.key, value, user.name()).await?;
        let target = format!("{category}.{}", def.key);
        let details =
            json!({"category": category, "key": def.key, "old": old(def.key), "new": value});
        audit::record(
            &mut tx,
            &state.audit_key,
            &actor,
            "settings.updated",
            Some(&target),
            details,
        )
        .await?;
    }
    tx.commit().await?;
    state.caches.inventory_changed();
    Ok(Json(category_view(&state, &category).await?))
}

/// `DELETE /api/settings/{category}/{key}`: back to the environment or the default.
#[utoipa::path(
    delete,
    path = "/api/settings/{category}/{key}",
    tag = "settings",
    operation_id = "resetSetting",
    summary = "Reset one setting",
    params(
        ("category" = SettingsCategory, Path, description = CATEGORY_DOC, example = "performance"),
        ("key" = SettingKey, Path, description = "The setting's key.", example = "discoveryMaxWorkers"),
    ),
    responses(
        (status = 200, description = "The setting after the reset.", body = Effective),
        (status = 400, description = "No such category.", body = ErrorBody),
        (status = 404, description = "No such setting in the category.", body = ErrorBody),
    ),
)]
pub async fn reset_key(
    State(state): State<AppState>,
    origin: Origin,
    AdminUser(user): AdminUser,
    Path((category, key)): Path<(String, String)>,
) -> Result<Json<Effective>, ApiError> {
    known_category(&category)?;
    let def = settings::find(&category, &key)
        .ok_or_else(|| ApiError::not_found(format!("setting {category}.{key}")))?;
    let before = category_view(&state, &category).await?;
    let old = before.iter().find(|e| e.key == key).map(|e| e.value.clone());

    let mut tx = state.pool.begin().await?;
    settings::reset(&mut tx, Some(&category), Some(&key)).await?;
    let target = format!("{category}.{key}");
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "settings.reset",
        Some(&target),
        json!({"category": category, "key": key, "old": old}),
    )
    .await?;
    tx.commit().await?;
    state.caches.inventory_changed();

    let stored = settings::stored(&state.pool).await?;
    let env = |k: &str| state.config.setting_env(k);
    Ok(Json(settings::resolve(def, &stored, &env)))
}

/// The body of `DELETE /api/settings/all` (built with `json!` below; documented here).
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "documents a body the handler builds with json!")]
struct SettingsReset {
    /// How many stored overrides were removed.
    removed: u64,
}

/// `DELETE /api/settings/all`: removes every stored override.
#[utoipa::path(
    delete,
    path = "/api/settings/all",
    tag = "settings",
    operation_id = "resetAllSettings",
    summary = "Reset every setting",
    responses((status = 200, description = "Every stored override is removed.",
        body = SettingsReset)),
)]
pub async fn reset_all(
    State(state): State<AppState>,
    origin: Origin,
    AdminUser(user): AdminUser,
) -> Result<Json<Value>, ApiError> {
    let mut tx = state.pool.begin().await?;
    let removed = settings::reset(&mut tx, None, None).await?;
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "settings.reset",
        Some("all"),
        json!({"removed": removed}),
    )
    .await?;
    tx.commit().await?;
    state.caches.inventory_changed();
    Ok(Json(json!({"removed": removed})))
}

/// The body of a purge: `retentionDays` overrides the retention settings for this purge.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"retentionDays": 365}))]
pub struct PurgeRequest {
    /// Delete history older than this many days (0 to 3650).
    #[schema(minimum = 0, maximum = 3650)]
    pub retention_days: Option<i64>,
}

/// The answer to a purge (built with `json!` below; documented here).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "camelCase")]
#[expect(dead_code, reason = "documents a body the handler builds with json!")]
struct PurgeOutcome {
    /// Rows deleted per history type.
    #[schema(example = json!({"audit": 120}))]
    purged: BTreeMap<String, i64>,
    /// The retention applied per history type.
    #[schema(example = json!({"audit": 365}))]
    retention_days: BTreeMap<String, i64>,
}

async fn purge_types(
    state: &AppState,
    origin: &Origin,
    user: &AuthUser,
    types: &[&str],
    days: Option<i64>,
) -> Result<Value, ApiError> {
    if let Some(d) = days
        && !(0..=3650).contains(&d)
    {
        return Err(ApiError::invalid("retentionDays", "must be a whole number from 0 to 3650"));
    }
    let stored = settings::stored(&state.pool).await?;
    let env = |k: &str| state.config.setting_env(k);
    let mut tx = state.pool.begin().await?;
    let mut purged = Map::new();
    let mut used = Map::new();
    for history_type in types {
        let days = match days {
            Some(d) => d,
            None => {
                let key = shared::retention::setting_key(history_type).unwrap_or_default();
                let def = settings::find("retention", key)
                    .ok_or_else(|| ApiError::internal(format!("no setting for {history_type}")))?;
                settings::resolve(def, &stored, &env).value.as_i64().unwrap_or(365)
            }
        };
        let n = shared::retention::purge(
            &mut tx,
            &state.audit_key,
            &origin.of(user),
            history_type,
            days,
        )
        .await?;
        purged.insert((*history_type).to_owned(), json!(n));
        used.insert((*history_type).to_owned(), json!(days));
    }
    tx.commit().await?;
    state.caches.inventory_changed();
    Ok(json!({"purged": purged, "retentionDays": used}))
}

/// `POST /api/settings/retention/purge`: every history type.
#[utoipa::path(
    post,
    path = "/api/settings/retention/purge",
    tag = "settings",
    operation_id = "purgeHistory",
    summary = "Purge old history of every type",
    description = "Deletes audit, rotation, sync and alert history older than the retention \
        settings (or `retentionDays`). A purge of audit entries anchors the chain first, so \
        verification still holds.",
    request_body(content = Option<PurgeRequest>, description = "May be empty."),
    responses(
        (status = 200, description = "Rows deleted per history type.", body = PurgeOutcome),
        (status = 400, description = "`retentionDays` is out of range.", body = ErrorBody),
    ),
)]
pub async fn purge_all(
    State(state): State<AppState>,
    origin: Origin,
    AdminUser(user): AdminUser,
    crate::extract::OptionalJson(body): crate::extract::OptionalJson<PurgeRequest>,
) -> Result<Json<Value>, ApiError> {
    let days = body.unwrap_or_default().retention_days;
    let types = shared::retention::HISTORY_TYPES;
    Ok(Json(purge_types(&state, &origin, &user, types, days).await?))
}

/// `POST /api/settings/retention/purge/{history_type}`.
#[utoipa::path(
    post,
    path = "/api/settings/retention/purge/{history_type}",
    tag = "settings",
    operation_id = "purgeHistoryType",
    summary = "Purge old history of one type",
    params(("history_type" = HistoryType, Path,
        description = "`audit`, `rotation`, `sync` or `alerts`.", example = "audit")),
    request_body(content = Option<PurgeRequest>, description = "May be empty."),
    responses(
        (status = 200, description = "Rows deleted.", body = PurgeOutcome),
        (status = 400, description = "No such history type, or `retentionDays` is out of range.",
            body = ErrorBody),
    ),
)]
pub async fn purge_one(
    State(state): State<AppState>,
    origin: Origin,
    AdminUser(user): AdminUser,
    Path(history_type): Path<String>,
    crate::extract::OptionalJson(body): crate::extract::OptionalJson<PurgeRequest>,
) -> Result<Json<Value>, ApiError> {
    let known = shared::retention::HISTORY_TYPES;
    let Some(t) = known.iter().find(|t| **t == history_type) else {
        return Err(ApiError::invalid(
            "history_type",
            format!("expected one of: {}", known.join(", ")),
        ));
    };
    let days = body.unwrap_or_default().retention_days;
    Ok(Json(purge_types(&state, &origin, &user, &[t], days).await?))
}

/// `GET /api/settings/retention/stats`: rows and oldest entry per history table.
#[utoipa::path(
    get,
    path = "/api/settings/retention/stats",
    tag = "settings",
    operation_id = "getRetentionStats",
    summary = "Rows and oldest entry per history type",
    responses((status = 200, description = "Stats by history type.",
        body = BTreeMap<String, shared::retention::TableStats>)),
)]
pub async fn retention_stats(
    State(state): State<AppState>,
    _user: AuthUser,
) -> Result<Json<Value>, ApiError> {
    let mut body = Map::new();
    for (name, stats) in shared::retention::stats(&state.pool).await? {
        body.insert(name.to_owned(), serde_json::to_value(stats).map_err(ApiError::internal)?);
    }
    Ok(Json(Value::Object(body)))
}
