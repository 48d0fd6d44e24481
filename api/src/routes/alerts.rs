//! `/alerts`: rules (what to watch, whom to tell, how), a test send per rule, and the history
//! of deliveries with every attempt. Evaluation and delivery run in the worker; only the test
//! send runs here, because its caller waits for the outcome.
//!
//! Channel credentials (webhook URLs, routing keys, signing secrets) are write-only: they are
//! sealed in the rule row and the API shows only the webhook's host.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shared::alerts::message::Message;
use shared::alerts::{self, CHANNEL_SEAL_PURPOSE, ChannelTarget, Recipient, Scope, send};
use shared::crypto::Sealer;
use shared::db::alerts::{Delivery, HistoryFilter, Rule};
use shared::domain::{AlertType, AssetType, DeliveryMethod, DeliveryMode, DeliveryStatus};
use shared::{audit, db};
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::origin::Origin;
use crate::pagination::{Page, Paging};
use crate::routes::audit::parse_bound;
use crate::state::AppState;

/// What the API shows of a rule's channel.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ChannelBody {
    /// Whether the channel's URL or key is stored.
    pub configured: bool,
    /// The webhook's host, so rules can be told apart without showing the secret URL.
    pub host: Option<String>,
    /// Whether a signing secret is stored (generic webhooks).
    pub signed: bool,
}

/// A rule as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RuleBody {
    pub id: Uuid,
    pub name: String,
    pub alert_type: String,
    /// The widest threshold (the first alert), or null for types without thresholds.
    pub threshold_days: Option<i32>,
    /// Every escalation threshold, largest first.
    pub thresholds: Vec<i32>,
    pub asset_types: Option<Vec<String>>,
    pub delivery_method: String,
    pub delivery_mode: String,
    pub recipients: Vec<String>,
    pub scope: serde_json::Value,
    pub channel: ChannelBody,
    pub enabled: bool,
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn body_of(rule: Rule, target: &ChannelTarget) -> RuleBody {
    RuleBody {
        id: rule.id,
        name: rule.name,
        alert_type: rule.alert_type,
        threshold_days: rule.thresholds.first().copied(),
        thresholds: rule.thresholds,
        asset_types: rule.asset_types,
        delivery_method: rule.delivery_method,
        delivery_mode: rule.delivery_mode,
        recipients: rule.recipients,
        scope: rule.scope,
        channel: ChannelBody {
            configured: target.url.is_some() || target.routing_key.is_some(),
            host: rule.channel_hint,
            signed: target.signing_secret.is_some(),
        },
        enabled: rule.enabled,
        created_by: rule.created_by,
        created_at: rule.created_at,
        updated_at: rule.updated_at,
    }
}

/// The body of `POST /alerts/rules` and (every field optional) `PUT /alerts/rules/{rule_id}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"name": "Expiring Secrets Alert", "alertType": "secret_expiring",
    "thresholdDays": 30, "deliveryMethod": "email", "deliveryMode": "digest",
    "recipients": ["team@company.com"], "enabled": true}))]
pub struct RuleInput {
    /// 1 to 200 characters; required on create.
    pub name: Option<String>,
    /// Required on create.
    #[schema(value_type = Option<AlertType>)]
    pub alert_type: Option<String>,
    /// One threshold in days (1 to 365); `secret_expiring` only.
    pub threshold_days: Option<i64>,
    /// Escalation thresholds in days, instead of `thresholdDays`.
    pub thresholds: Option<Vec<i64>>,
    /// Narrows `secret_expiring` and `secret_expired` rules.
    #[schema(value_type = Option<Vec<AssetType>>)]
    pub asset_types: Option<Vec<String>>,
    /// Required on create.
    #[schema(value_type = Option<DeliveryMethod>)]
    pub delivery_method: Option<String>,
    /// `immediate` (default) or `digest`.
    #[schema(value_type = Option<DeliveryMode>)]
    pub delivery_mode: Option<String>,
    /// Email rules: addresses or `tag:<name>`.
    pub recipients: Option<Vec<String>>,
    pub scope: Option<Scope>,
    /// Slack, Teams and webhook rules. Write-only.
    pub webhook_url: Option<String>,
    /// PagerDuty rules. Write-only.
    pub routing_key: Option<String>,
    /// Webhook rules: 16 to 512 characters. Write-only.
    pub signing_secret: Option<String>,
    pub enabled: Option<bool>,
}

fn sealer(state: &AppState) -> Sealer {
    Sealer::new(state.config.secret_key.expose(), CHANNEL_SEAL_PURPOSE)
}

fn open_target(state: &AppState, rule: &Rule) -> Result<ChannelTarget, ApiError> {
    match &rule.channel_sealed {
        None => Ok(ChannelTarget::default()),
        Some(sealed) => {
            let plain = sealer(state).open(sealed).map_err(ApiError::internal)?;
            serde_json::from_str(&plain).map_err(ApiError::internal)
        }
    }
}

/// Applies `input` over `base` (a new rule or the stored one) and validates the result.
async fn apply(
    state: &AppState,
    base: Rule,
    mut target: ChannelTarget,
    input: RuleInput,
) -> Result<(Rule, ChannelTarget), ApiError> {
    let mut rule = base;
    if let Some(name) = input.name {
        let name = name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(ApiError::invalid("name", "must be 1 to 200 characters"));
        }
        if !alerts::is_plain_text(&name) {
            return Err(ApiError::invalid(
                "name",
                "must not contain control characters (line breaks, NUL) or bidirectional \
                 overrides",
            ));
        }
        rule.name = name;
    }
    if rule.name.is_empty() {
        return Err(ApiError::invalid("name", "is required"));
    }
    let type_changed = input.alert_type.is_some();
    if let Some(raw) = input.alert_type {
        let parsed: AlertType = raw.parse().map_err(|e| ApiError::invalid("alertType", e))?;
        rule.alert_type = parsed.as_str().to_owned();
    }
    let alert_type: AlertType =
        rule.alert_type.parse().map_err(|e| ApiError::invalid("alertType", e))?;

    // Thresholds: only expiring rules have them; a rule created without one gets the
    // alert-defaults setting.
    let given = match (input.thresholds, input.threshold_days) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "thresholdDays",
                "give either thresholdDays or thresholds, not both",
            ));
        }
        (Some(list), None) => Some(("thresholds", list)),
        (None, Some(days)) => Some(("thresholdDays", vec![days])),
        (None, None) => None,
    };
    match (alert_type, given) {
        (AlertType::SecretExpiring, Some((field, list))) => {
            let list =
                alerts::normalise_thresholds(&list).map_err(|e| ApiError::invalid(field, e))?;
            if list.is_empty() {
                return Err(ApiError::invalid(field, "needs at least one threshold"));
            }
            rule.thresholds = list;
        }
        (AlertType::SecretExpiring, None) if rule.thresholds.is_empty() => {
            let days = db::settings::default_threshold_days(&state.pool).await?;
            rule.thresholds = vec![days as i32];
        }
        (AlertType::SecretExpiring, None) => {}
        (other, Some((field, _))) => {
            return Err(ApiError::invalid(
                field,
                format!("{other} rules have no thresholds; they alert on every occurrence"),
            ));
        }
        (_, None) => rule.thresholds.clear(),
    }

    if let Some(types) = input.asset_types {
        if !alerts::watches_assets(alert_type) {
            return Err(ApiError::invalid(
                "assetTypes",
                format!("{alert_type} rules watch no assets"),
            ));
        }
        let mut parsed = Vec::new();
        for t in &types {
            let t: AssetType = t.parse().map_err(|e| ApiError::invalid("assetTypes", e))?;
            if !parsed.contains(&t.as_str().to_owned()) {
                parsed.push(t.as_str().to_owned());
            }
        }
        rule.asset_types = (!parsed.is_empty()).then_some(parsed);
    } else if type_changed && !alerts::watches_assets(alert_type) {
        rule.asset_types = None;
    }

    if let Some(scope) = input.scope {
        if scope.subscriptions.len() + scope.vaults.len() + scope.tags.len() > 200 {
            return Err(ApiError::invalid("scope", "at most 200 entries"));
        }
        let bad = |s: &String| s.is_empty() || s.len() > 256 || !alerts::is_plain_text(s);
        if scope.tags.keys().chain(scope.tags.values()).any(bad) {
            return Err(ApiError::invalid(
                "scope.tags",
                "names and values are 1 to 256 characters, without control characters",
            ));
        }
        for (field, list) in
            [("scope.subscriptions", &scope.subscriptions), ("scope.vaults", &scope.vaults)]
        {
            if list.iter().any(bad) {
                return Err(ApiError::invalid(
                    field,
                    "entries are 1 to 256 characters, without control characters",
                ));
            }
        }
        rule.scope = serde_json::to_value(scope).map_err(ApiError::internal)?;
    }

    let method_changed = input.delivery_method.is_some();
    if let Some(raw) = input.delivery_method {
        let parsed: DeliveryMethod =
            raw.parse().map_err(|e| ApiError::invalid("deliveryMethod", e))?;
        rule.delivery_method = parsed.as_str().to_owned();
    }
    let method: DeliveryMethod =
        rule.delivery_method.parse().map_err(|e| ApiError::invalid("deliveryMethod", e))?;
    if let Some(raw) = input.delivery_mode {
        let parsed: DeliveryMode = raw.parse().map_err(|e| ApiError::invalid("deliveryMode", e))?;
        rule.delivery_mode = parsed.as_str().to_owned();
    }
    if let Some(enabled) = input.enabled {
        rule.enabled = enabled;
    }

    if let Some(recipients) = input.recipients {
        if recipients.len() > alerts::MAX_RECIPIENTS {
            return Err(ApiError::invalid(
                "recipients",
                format!("at most {} recipients", alerts::MAX_RECIPIENTS),
            ));
        }
        let mut list = Vec::new();
        for raw in &recipients {
            Recipient::parse(raw).map_err(|e| ApiError::invalid("recipients", e))?;
            let value = raw.trim().to_owned();
            if !list.contains(&value) {
                list.push(value);
            }
        }
        rule.recipients = list;
    } else if method_changed && method != DeliveryMethod::Email {
        rule.recipients.clear();
    }

    // The channel: new credentials replace the stored ones; switching channels drops the ones
    // the new channel does not use.
    if method_changed {
        match method {
            DeliveryMethod::Email => target = ChannelTarget::default(),
            DeliveryMethod::PagerDuty => {
                target.url = None;
                target.signing_secret = None;
            }
            DeliveryMethod::Slack | DeliveryMethod::Teams => {
                target.routing_key = None;
                target.signing_secret = None;
            }
            DeliveryMethod::Webhook => target.routing_key = None,
        }
    }
    if let Some(url) = input.webhook_url {
        if matches!(method, DeliveryMethod::Email | DeliveryMethod::PagerDuty) {
            return Err(ApiError::invalid("webhookUrl", format!("{method} rules have no webhook")));
        }
        let checked = shared::net::check(&url, state.config.alerts.outbound())
            .await
            .map_err(|e| ApiError::invalid("webhookUrl", e))?;
        rule.channel_hint = Some(checked.host.clone());
        target.url = Some(checked.url.to_string());
    }
    if let Some(key) = input.routing_key {
        if method != DeliveryMethod::PagerDuty {
            return Err(ApiError::invalid("routingKey", "only PagerDuty rules have a routing key"));
        }
        let key = key.trim().to_owned();
        if key.is_empty() || key.len() > 128 || !key.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ApiError::invalid("routingKey", "must be 1 to 128 letters and digits"));
        }
        rule.channel_hint = Some(
            state.config.alerts.pagerduty_events_url.host_str().unwrap_or_default().to_owned(),
        );
        target.routing_key = Some(key);
    }
    if let Some(secret) = input.signing_secret {
        if method != DeliveryMethod::Webhook {
            return Err(ApiError::invalid("signingSecret", "only webhook rules are signed"));
        }
        if secret.len() < 16 || secret.len() > 512 {
            return Err(ApiError::invalid("signingSecret", "must be 16 to 512 characters"));
        }
        target.signing_secret = Some(secret);
    }
    if method == DeliveryMethod::Email {
        rule.channel_hint = None;
    }

    // What each channel needs.
    let missing = match method {
        DeliveryMethod::Email => rule.recipients.is_empty(),
        DeliveryMethod::Slack | DeliveryMethod::Teams => target.url.is_none(),
        DeliveryMethod::PagerDuty => target.routing_key.is_none(),
        DeliveryMethod::Webhook => target.url.is_none() || target.signing_secret.is_none(),
    };
    if missing {
        let field = match method {
            DeliveryMethod::Email => "recipients",
            DeliveryMethod::PagerDuty => "routingKey",
            DeliveryMethod::Webhook if target.url.is_some() => "signingSecret",
            _ => "webhookUrl",
        };
        return Err(ApiError::invalid(
            field,
            format!("{method} rules need {}", alerts::channel_requirements(method)),
        ));
    }
    if method != DeliveryMethod::Email && !rule.recipients.is_empty() {
        return Err(ApiError::invalid(
            "recipients",
            format!("{method} rules post to their webhook; recipients apply to email rules"),
        ));
    }
    if method == DeliveryMethod::Email
        && !alerts::watches_assets(alert_type)
        && rule.recipients.iter().all(|r| r.starts_with("tag:"))
    {
        return Err(ApiError::invalid(
            "recipients",
            format!("{alert_type} rules concern no asset, so tag recipients cannot be resolved"),
        ));
    }
    rule.channel_sealed = if target.url.is_none()
        && target.routing_key.is_none()
        && target.signing_secret.is_none()
    {
        None
    } else {
        Some(sealer(state).seal(&serde_json::to_string(&target).map_err(ApiError::internal)?))
    };
    Ok((rule, target))
}

/// The audit details of a rule: its settings without credentials.
fn audit_details(rule: &Rule) -> serde_json::Value {
    json!({
        "name": rule.name, "alertType": rule.alert_type, "thresholds": rule.thresholds,
        "deliveryMethod": rule.delivery_method, "deliveryMode": rule.delivery_mode,
        "recipients": rule.recipients, "scope": rule.scope, "enabled": rule.enabled,
        "channelHost": rule.channel_hint,
    })
}

/// `GET /alerts/rules`.
#[utoipa::path(
    get,
    path = "/alerts/rules",
    tag = "alerts",
    operation_id = "listAlertRules",
    summary = "List alert rules, oldest first",
    params(Paging),
    responses((status = 200, description = "A page of rules.", body = Page<RuleBody>)),
)]
pub async fn list_rules(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<RuleBody>>, ApiError> {
    let (limit, offset) = paging.validate()?;
    let (rules, total) = db::alerts::list_rules(&state.pool, limit, offset).await?;
    let mut items = Vec::with_capacity(rules.len());
    for rule in rules {
        let target = open_target(&state, &rule)?;
        items.push(body_of(rule, &target));
    }
    Ok(Json(Page { items, total, limit, offset }))
}

/// `POST /alerts/rules`: 201 with the rule.
#[utoipa::path(
    post,
    path = "/alerts/rules",
    tag = "alerts",
    operation_id = "createAlertRule",
    summary = "Create an alert rule",
    request_body = RuleInput,
    responses(
        (status = 201, description = "The rule.", body = RuleBody),
        (status = 400, description = "A field is missing or invalid; the detail names it.",
            body = ErrorBody),
    ),
)]
pub async fn create_rule(
    State(state): State<AppState>,
    origin: Origin,
    user: AuthUser,
    Json(input): Json<RuleInput>,
) -> Result<(StatusCode, Json<RuleBody>), ApiError> {
    for (field, present) in [
        ("name", input.name.is_some()),
        ("alertType", input.alert_type.is_some()),
        ("deliveryMethod", input.delivery_method.is_some()),
    ] {
        if !present {
            return Err(ApiError::invalid(field, "is required"));
        }
    }
    let base = Rule {
        id: Uuid::new_v4(),
        name: String::new(),
        alert_type: String::new(),
        thresholds: Vec::new(),
        asset_types: None,
        delivery_method: String::new(),
        delivery_mode: DeliveryMode::Immediate.as_str().to_owned(),
        recipients: Vec::new(),
        scope: json!({}),
        channel_sealed: None,
        channel_hint: None,
        enabled: true,
        created_by: Some(user.name().to_owned()),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    };
    let (rule, target) = apply(&state, base, ChannelTarget::default(), input).await?;
    let mut tx = state.pool.begin().await?;
    let stored = db::alerts::upsert_rule(&mut tx, &rule).await?;
    let id = stored.id.to_string();
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "alert.rule.created",
        Some(&id),
        audit_details(&stored),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(body_of(stored, &target))))
}

fn parse_rule_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::invalid("rule_id", "must be a UUID"))
}

/// `PUT /alerts/rules/{rule_id}`: changes the given fields.
#[utoipa::path(
    put,
    path = "/alerts/rules/{rule_id}",
    tag = "alerts",
    operation_id = "updateAlertRule",
    summary = "Change an alert rule (only the fields given)",
    params(("rule_id" = uuid::Uuid, Path, description = "The rule's id.")),
    request_body = RuleInput,
    responses(
        (status = 200, description = "The rule.", body = RuleBody),
        (status = 400, description = "A field is invalid; the detail names it.", body = ErrorBody),
        (status = 404, description = "No such rule.", body = ErrorBody),
    ),
)]
pub async fn update_rule(
    State(state): State<AppState>,
    origin: Origin,
    user: AuthUser,
    Path(raw): Path<String>,
    Json(input): Json<RuleInput>,
) -> Result<Json<RuleBody>, ApiError> {
    let id = parse_rule_id(&raw)?;
    let mut conn = state.pool.acquire().await?;
    let existing = db::alerts::get_rule(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert rule {id}")))?;
    drop(conn);
    let target = open_target(&state, &existing)?;
    let (rule, target) = apply(&state, existing, target, input).await?;
    let mut tx = state.pool.begin().await?;
    let stored = db::alerts::upsert_rule(&mut tx, &rule).await?;
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "alert.rule.updated",
        Some(&raw),
        audit_details(&stored),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(body_of(stored, &target)))
}

/// `DELETE /alerts/rules/{rule_id}`: 204. Its deliveries stay in the history.
#[utoipa::path(
    delete,
    path = "/alerts/rules/{rule_id}",
    tag = "alerts",
    operation_id = "deleteAlertRule",
    summary = "Delete an alert rule (its history stays)",
    params(("rule_id" = uuid::Uuid, Path, description = "The rule's id.")),
    responses(
        (status = 204, description = "Deleted."),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such rule.", body = ErrorBody),
    ),
)]
pub async fn delete_rule(
    State(state): State<AppState>,
    origin: Origin,
    user: AuthUser,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_rule_id(&raw)?;
    let mut tx = state.pool.begin().await?;
    if !db::alerts::delete_rule(&mut tx, id).await? {
        return Err(ApiError::not_found(format!("alert rule {id}")));
    }
    audit::record(
        &mut tx,
        &state.audit_key,
        &origin.of(&user),
        "alert.rule.deleted",
        Some(&raw),
        json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The outcome of a test send to one recipient (or the rule's webhook).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    pub delivery_id: Uuid,
    pub recipient: Option<String>,
    pub status: String,
    pub error: Option<String>,
    pub response_code: Option<i32>,
}

/// The body of a rule test.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestOutcome {
    pub rule_id: Uuid,
    pub delivery_method: String,
    /// `sent` when every send succeeded, else `failed`.
    pub status: String,
    pub results: Vec<TestResult>,
}

/// `POST /alerts/rules/{rule_id}/test`: sends a message marked as a test through the rule's
/// channel now, records it in the history, and answers with the outcome (200 either way).
#[utoipa::path(
    post,
    path = "/alerts/rules/{rule_id}/test",
    tag = "alerts",
    operation_id = "testAlertRule",
    summary = "Send a test message through the rule's channel",
    params(("rule_id" = uuid::Uuid, Path, description = "The rule's id.")),
    responses(
        (status = 200, description = "What each send did (sent or failed, with the peer's code).",
            body = TestOutcome),
        (status = 400, description = "The id is not a UUID.", body = ErrorBody),
        (status = 404, description = "No such rule.", body = ErrorBody),
        (status = 409, description = "Only tag recipients: nobody to test against \
            (`no_fixed_recipient`).", body = ErrorBody),
    ),
)]
pub async fn test_rule(
    State(state): State<AppState>,
    origin: Origin,
    user: AuthUser,
    Path(raw): Path<String>,
) -> Result<Json<TestOutcome>, ApiError> {
    let id = parse_rule_id(&raw)?;
    let mut conn = state.pool.acquire().await?;
    let rule = db::alerts::get_rule(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert rule {id}")))?;
    drop(conn);
    let target = open_target(&state, &rule)?;
    let method: DeliveryMethod = rule.delivery_method.parse().map_err(ApiError::internal)?;
    let alert_type: AlertType = rule.alert_type.parse().map_err(ApiError::internal)?;
    let recipients: Vec<Option<String>> = if method == DeliveryMethod::Email {
        let fixed: Vec<Option<String>> = rule
            .recipients
            .iter()
            .filter(|r| !r.starts_with("tag:"))
            .map(|r| Some(r.clone()))
            .collect();
        if fixed.is_empty() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no_fixed_recipient",
                "the rule sends only to tag recipients, which are resolved per asset; add a \
                 fixed address to test it",
            ));
        }
        fixed
    } else {
        vec![None]
    };
    let config = &state.config.alerts;
    let mut results = Vec::new();
    for recipient in recipients {
        let delivery_id = Uuid::new_v4();
        let subject = format!("Test of the alert rule \"{}\"", rule.name);
        let msg = Message {
            delivery_id,
            rule_name: rule.name.clone(),
            alert_type,
            subject: subject.clone(),
            items: Vec::new(),
            more: 0,
            test: true,
            link: config.public_url.as_ref().map(|u| u.to_string()),
            generated_at: Utc::now(),
        };
        let started = Utc::now();
        let outcome = send::send(config, method, &target, recipient.as_deref(), &msg).await;
        let (status, error, code) = match outcome {
            send::Outcome::Sent { code } => (DeliveryStatus::Sent, None, code),
            send::Outcome::Transient { error, code, .. }
            | send::Outcome::Permanent { error, code } => {
                (DeliveryStatus::Failed, Some(error), code)
            }
        };
        let delivery = Delivery {
            id: delivery_id,
            rule_id: Some(rule.id),
            rule_name: rule.name.clone(),
            alert_type: rule.alert_type.clone(),
            channel: rule.delivery_method.clone(),
            mode: "test".to_owned(),
            recipient: recipient.clone(),
            status: status.as_str().to_owned(),
            attempts: 1,
            error: error.clone(),
            subject: subject.clone(),
            event_count: 0,
            job_id: None,
            created_at: started,
            finished_at: Some(Utc::now()),
        };
        let mut tx = state.pool.begin().await?;
        db::alerts::insert_delivery(&mut tx, &delivery).await?;
        sqlx::query(
            "INSERT INTO alert_delivery_attempts (delivery_id, attempt, worker, status, error, \
                 response_code, started_at, finished_at) \
             VALUES ($1, 1, 'api', $2, $3, $4, $5, now())",
        )
        .bind(delivery_id)
        .bind(status.as_str())
        .bind(&error)
        .bind(code)
        .bind(started)
        .execute(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            &state.audit_key,
            &origin.of(&user),
            "alert.rule.tested",
            Some(&raw),
            json!({"recipient": recipient, "status": status.as_str(),
                "error": error}),
        )
        .await?;
        tx.commit().await?;
        results.push(TestResult {
            delivery_id,
            recipient,
            status: status.as_str().to_owned(),
            error,
            response_code: code,
        });
    }
    let all_sent = results.iter().all(|r| r.status == "sent");
    Ok(Json(TestOutcome {
        rule_id: rule.id,
        delivery_method: rule.delivery_method,
        status: if all_sent { "sent" } else { "failed" }.to_owned(),
        results,
    }))
}

/// The filters of `GET /alerts/history`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// From this date (`2026-01-31`) or time (RFC 3339).
    pub start_date: Option<String>,
    /// Up to this date (inclusive) or time.
    pub end_date: Option<String>,
    #[param(value_type = Option<DeliveryStatus>)]
    pub status: Option<String>,
    #[param(value_type = Option<uuid::Uuid>)]
    pub rule_id: Option<String>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// One attempt of a delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptBody {
    pub attempt: i32,
    pub status: String,
    pub error: Option<String>,
    pub response_code: Option<i32>,
    pub worker: Option<String>,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// A delivery in the history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryBody {
    pub id: Uuid,
    pub rule_id: Option<Uuid>,
    pub rule_name: String,
    pub alert_type: String,
    pub delivery_method: String,
    /// `immediate`, `digest` or `test`.
    pub delivery_mode: String,
    pub recipient: Option<String>,
    pub status: String,
    pub subject: String,
    pub event_count: i32,
    pub attempts: i32,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub attempt_log: Vec<AttemptBody>,
}

/// `GET /alerts/history`: deliveries newest first, each with its attempts.
#[utoipa::path(
    get,
    path = "/alerts/history",
    tag = "alerts",
    operation_id = "listAlertHistory",
    summary = "Alert deliveries, newest first, with every attempt",
    params(HistoryQuery),
    responses(
        (status = 200, description = "A page of deliveries.", body = Page<HistoryBody>),
        (status = 400, description = "A filter is invalid; the detail names it.", body = ErrorBody),
    ),
)]
pub async fn history(
    State(state): State<AppState>,
    _user: AuthUser,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Page<HistoryBody>>, ApiError> {
    let (limit, offset) = Paging { limit: query.limit, offset: query.offset }.validate()?;
    let start =
        query.start_date.as_deref().map(|v| parse_bound("start_date", v, false)).transpose()?;
    let end = query.end_date.as_deref().map(|v| parse_bound("end_date", v, true)).transpose()?;
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        return Err(ApiError::invalid("end_date", "must be after start_date"));
    }
    let status = match query.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.parse::<DeliveryStatus>()
                .map_err(|e| ApiError::invalid("status", e))?
                .as_str()
                .to_owned(),
        ),
    };
    let rule_id = query.rule_id.as_deref().map(parse_rule_id).transpose()?;
    let filter = HistoryFilter { start, end, status, rule_id };
    let (rows, total) = db::alerts::history(&state.pool, &filter, limit, offset).await?;
    let ids: Vec<Uuid> = rows.iter().map(|d| d.id).collect();
    let mut attempts = db::alerts::attempts_of(&state.pool, &ids).await?;
    let items = rows
        .into_iter()
        .map(|d| {
            let log = attempts
                .extract_if(.., |a| a.delivery_id == d.id)
                .map(|a| AttemptBody {
                    attempt: a.attempt,
                    status: a.status,
                    error: a.error,
                    response_code: a.response_code,
                    worker: a.worker,
                    started_at: a.started_at,
                    finished_at: a.finished_at,
                })
                .collect();
            HistoryBody {
                id: d.id,
                rule_id: d.rule_id,
                rule_name: d.rule_name,
                alert_type: d.alert_type,
                delivery_method: d.channel,
                delivery_mode: d.mode,
                recipient: d.recipient,
                status: d.status,
                subject: d.subject,
                event_count: d.event_count,
                attempts: d.attempts,
                error: d.error,
                created_at: d.created_at,
                finished_at: d.finished_at,
                attempt_log: log,
            }
        })
        .collect();
    Ok(Json(Page { items, total, limit, offset }))
}
