//! `/subscriptions`: the Azure subscriptions scans cover. With none registered, scans cover
//! every subscription the product's identity can see.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use shared::azure::AzureError;
use shared::domain::SubscriptionId;
use shared::{audit, db};

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::origin::Origin;
use crate::pagination::{Page, Paging};
use crate::state::AppState;

/// A subscription as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = Subscription)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionBody {
    #[schema(example = "12345678-1234-1234-1234-123456789012")]
    pub subscription_id: String,
    pub name: Option<String>,
    pub tenant_id: Option<String>,
    pub state: Option<String>,
    /// `registered` (added through the API) or `discovered` (seen through Resource Manager).
    pub source: String,
    pub vaults: i64,
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl From<db::subscriptions::Subscription> for SubscriptionBody {
    fn from(s: db::subscriptions::Subscription) -> Self {
        Self {
            subscription_id: s.id,
            name: s.name,
            tenant_id: s.tenant_id,
            state: s.state,
            source: s.source,
            vaults: s.vaults,
            first_seen_at: s.first_seen_at,
            last_seen_at: s.last_seen_at,
        }
    }
}

/// `GET /subscriptions`.
#[utoipa::path(
    get,
    path = "/subscriptions",
    tag = "subscriptions",
    operation_id = "listSubscriptions",
    summary = "List subscriptions, registered and discovered",
    params(Paging),
    responses((status = 200, description = "A page of subscriptions.",
        body = Page<SubscriptionBody>)),
)]
pub async fn list(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<SubscriptionBody>>, ApiError> {
    let (limit, offset) = paging.validate()?;
    let (rows, total) = db::subscriptions::list(&state.pool, limit, offset).await?;
    let items = rows.into_iter().map(SubscriptionBody::from).collect();
    Ok(Json(Page { items, total, limit, offset }))
}

/// The body of `POST /subscriptions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"subscriptionId": "12345678-1234-1234-1234-123456789012",
    "name": "Production"}))]
pub struct AddSubscription {
    /// A GUID.
    #[schema(value_type = uuid::Uuid)]
    pub subscription_id: String,
    /// At most 200 characters.
    pub name: Option<String>,
}

/// `POST /subscriptions`: registers a subscription (201), or 409 if it already is.
#[utoipa::path(
    post,
    path = "/subscriptions",
    tag = "subscriptions",
    operation_id = "addSubscription",
    summary = "Register a subscription for scans",
    request_body = AddSubscription,
    responses(
        (status = 201, description = "The subscription is registered.", body = SubscriptionBody),
        (status = 400, description = "The id is not a GUID, or the name is too long.",
            body = ErrorBody),
        (status = 403, description = "The licence allows no more subscriptions \
            (`license_required`), or (session cookie) the CSRF token is wrong.", body = ErrorBody),
        (status = 409, description = "Already registered (`already_registered`).",
            body = ErrorBody),
    ),
)]
pub async fn add(
    State(state): State<AppState>,
    origin: Origin,
    user: AuthUser,
    Json(body): Json<AddSubscription>,
) -> Result<(StatusCode, Json<SubscriptionBody>), ApiError> {
    let id = SubscriptionId::parse(&body.subscription_id)
        .map_err(|e| ApiError::invalid("subscriptionId", e))?;
    let name = body.name.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if name.is_some_and(|n| n.len() > 200) {
        return Err(ApiError::invalid("name", "must be at most 200 characters"));
    }
    let mut tx = state.pool.begin().await?;
    let registered: i64 =
        sqlx::query_scalar("SELECT count(*) FROM subscriptions WHERE source = 'registered'")
            .fetch_one(&mut *tx)
            .await?;
    let limit = state.config.licence().limits.subscriptions;
    crate::licence::require_room(&state, "registered subscriptions", registered, limit)?;
    if !db::subscriptions::register(&mut tx, id.as_str(), name).await? {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "already_registered",
            format!("subscriptionId: {id} is already registered"),
        ));
    }
    let details = serde_json::json!({"name": name});
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "subscription.registered",
        Some(id.as_str()),
        details,
    )
    .await?;
    tx.commit().await?;
    state.caches.inventory_changed();
    let stored = db::subscriptions::get(&state.pool, id.as_str())
        .await?
        .ok_or_else(|| ApiError::internal("registered subscription vanished"))?;
    Ok((StatusCode::CREATED, Json(stored.into())))
}

fn parse_path(raw: &str) -> Result<SubscriptionId, ApiError> {
    SubscriptionId::parse(raw).map_err(|e| ApiError::invalid("subscription_id", e))
}

/// `DELETE /subscriptions/{subscription_id}`.
#[utoipa::path(
    delete,
    path = "/subscriptions/{subscription_id}",
    tag = "subscriptions",
    operation_id = "removeSubscription",
    summary = "Stop covering a registered subscription",
    params(("subscription_id" = uuid::Uuid, Path, description = "The subscription's GUID.",
        example = "12345678-1234-1234-1234-123456789012")),
    responses(
        (status = 204, description = "The subscription is removed."),
        (status = 404, description = "No such subscription.", body = ErrorBody),
    ),
)]
pub async fn remove(
    State(state): State<AppState>,
    origin: Origin,
    user: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_path(&raw)?;
    let mut tx = state.pool.begin().await?;
    if !db::subscriptions::remove(&mut tx, id.as_str()).await? {
        return Err(ApiError::not_found(format!("subscription {id}")));
    }
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "subscription.removed",
        Some(id.as_str()),
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    state.caches.inventory_changed();
    Ok(StatusCode::NO_CONTENT)
}

/// The outcome of a connection test.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionTest {
    pub subscription_id: String,
    pub ok: bool,
    pub can_read_subscription: bool,
    pub can_list_vaults: bool,
    pub vaults: Option<usize>,
    /// What is missing, in words an operator can act on.
    pub missing: Vec<String>,
}

/// `POST /subscriptions/{subscription_id}/test`: can the product's identity see the
/// subscription and list its vaults? Answers 200 with what is missing rather than failing.
#[utoipa::path(
    post,
    path = "/subscriptions/{subscription_id}/test",
    tag = "subscriptions",
    operation_id = "testSubscription",
    summary = "Test the product's access to a subscription",
    description = "Can the product's Azure identity read the subscription and list its Key \
        Vaults? Answers 200 with what is missing rather than failing.",
    params(("subscription_id" = uuid::Uuid, Path, description = "The subscription's GUID.",
        example = "12345678-1234-1234-1234-123456789012")),
    responses((status = 200, description = "What works and what is missing.",
        body = ConnectionTest)),
)]
pub async fn test(
    State(state): State<AppState>,
    _user: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<ConnectionTest>, ApiError> {
    let id = parse_path(&raw)?;
    let mut result = ConnectionTest {
        subscription_id: id.to_string(),
        ok: false,
        can_read_subscription: false,
        can_list_vaults: false,
        vaults: None,
        missing: Vec::new(),
    };
    let arm = match state.azure.arm() {
        Ok(arm) => arm,
        Err(e) => {
            result.missing.push(e.to_string());
            return Ok(Json(result));
        }
    };
    match arm.get_subscription(id.as_str()).await {
        Ok(_) => result.can_read_subscription = true,
        Err(e) => result.missing.push(explain("read the subscription", &e)),
    }
    match arm.list_vaults(id.as_str()).await {
        Ok(vaults) => {
            result.can_list_vaults = true;
            result.vaults = Some(vaults.len());
        }
        Err(e) => {
            result.missing.push(explain("list Key Vaults (Microsoft.KeyVault/vaults/read)", &e))
        }
    }
    result.ok = result.can_read_subscription && result.can_list_vaults;
    Ok(Json(result))
}

fn explain(action: &str, error: &AzureError) -> String {
    match error {
        AzureError::Http { status: 403, .. } => format!(
            "the identity may not {action}: grant it the Reader role on the subscription ({error})"
        ),
        AzureError::Http { status: 404, .. } => {
            format!("the identity cannot see the subscription, so it cannot {action} ({error})")
        }
        other => format!("could not {action}: {other}"),
    }
}
