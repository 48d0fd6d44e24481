//! Every route of the API in one list that reads like the API reference, each with the access
//! it needs. Handlers live in one module per resource.

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod compliance;
pub mod discovery;
pub mod metrics;
pub mod settings;
pub mod subscriptions;
pub mod system;
pub mod users;

use axum::Router;
use axum::routing::{delete, get, post, put};

use crate::state::AppState;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No token needed (the reference marks these as public).
    Public,
    /// Any logged-in user.
    User,
    /// Admins only.
    Admin,
}

/// The route table: method, path, access. `router()` is built from the same handlers; the
/// route-guard test walks this table.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("POST", "/auth/login", Access::Public),
    ("POST", "/auth/logout", Access::User),
    ("GET", "/auth/me", Access::User),
    ("GET", "/health", Access::Public),
    ("GET", "/system/license/status", Access::Public),
    ("GET", "/auth/users", Access::Admin),
    ("POST", "/auth/users", Access::Admin),
    ("PUT", "/auth/users/{user_id}", Access::Admin),
    ("DELETE", "/auth/users/{user_id}", Access::Admin),
    ("POST", "/auth/users/{user_id}/unlock", Access::Admin),
    ("GET", "/identity", Access::User),
    ("GET", "/metrics", Access::User),
    ("POST", "/api/assets/discovery/scan", Access::User),
    ("GET", "/api/assets/discovery/scan/{scan_id}/status", Access::User),
    ("GET", "/api/assets/discovery/scan/{scan_id}/results", Access::User),
    ("GET", "/api/assets/discovery/scan/{scan_id}/jobs", Access::User),
    ("GET", "/api/assets/discovery/scans", Access::User),
    ("GET", "/api/assets/discovery/assets", Access::User),
    ("GET", "/api/assets/discovery/assets/{asset_id}", Access::User),
    ("GET", "/api/assets/discovery/vaults", Access::User),
    ("GET", "/compliance/score", Access::User),
    ("GET", "/compliance/violations", Access::User),
    ("POST", "/compliance/evaluate", Access::User),
    ("GET", "/compliance/frameworks", Access::User),
    ("GET", "/compliance/frameworks/{framework_id}", Access::User),
    ("GET", "/alerts/rules", Access::User),
    ("POST", "/alerts/rules", Access::User),
    ("PUT", "/alerts/rules/{rule_id}", Access::User),
    ("DELETE", "/alerts/rules/{rule_id}", Access::User),
    ("POST", "/alerts/rules/{rule_id}/test", Access::User),
    ("GET", "/alerts/history", Access::User),
    ("GET", "/audit/entries", Access::User),
    ("GET", "/audit/export", Access::User),
    ("GET", "/audit/verify", Access::User),
    ("GET", "/api/settings/all", Access::User),
    ("DELETE", "/api/settings/all", Access::Admin),
    ("POST", "/api/settings/retention/purge", Access::Admin),
    ("POST", "/api/settings/retention/purge/{history_type}", Access::Admin),
    ("GET", "/api/settings/retention/stats", Access::User),
    ("GET", "/api/settings/{category}", Access::User),
    ("PUT", "/api/settings/{category}", Access::Admin),
    ("DELETE", "/api/settings/{category}/{key}", Access::Admin),
    ("GET", "/subscriptions", Access::User),
    ("POST", "/subscriptions", Access::User),
    ("DELETE", "/subscriptions/{subscription_id}", Access::User),
    ("POST", "/subscriptions/{subscription_id}/test", Access::User),
];

/// All routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/me", get(auth::me))
        .route("/health", get(system::health))
        .route("/system/license/status", get(system::license_status))
        .route("/auth/users", get(users::list).post(users::create))
        .route("/auth/users/{user_id}", put(users::update).delete(users::delete))
        .route("/auth/users/{user_id}/unlock", post(users::unlock))
        .route("/identity", get(system::identity))
        .route("/metrics", get(metrics::metrics))
        .route("/api/assets/discovery/scan", post(discovery::start_scan))
        .route("/api/assets/discovery/scan/{scan_id}/status", get(discovery::scan_status))
        .route("/api/assets/discovery/scan/{scan_id}/results", get(discovery::scan_results))
        .route("/api/assets/discovery/scan/{scan_id}/jobs", get(discovery::scan_jobs))
        .route("/api/assets/discovery/scans", get(discovery::list_scans))
        .route("/api/assets/discovery/assets", get(discovery::list_assets))
        .route("/api/assets/discovery/assets/{asset_id}", get(discovery::get_asset))
        .route("/api/assets/discovery/vaults", get(discovery::list_vaults))
        .route("/compliance/score", get(compliance::get_score))
        .route("/compliance/violations", get(compliance::violations))
        .route("/compliance/evaluate", post(compliance::evaluate))
        .route("/compliance/frameworks", get(compliance::list_frameworks))
        .route("/compliance/frameworks/{framework_id}", get(compliance::get_framework))
        .route("/alerts/rules", get(alerts::list_rules).post(alerts::create_rule))
        .route("/alerts/rules/{rule_id}", put(alerts::update_rule).delete(alerts::delete_rule))
        .route("/alerts/rules/{rule_id}/test", post(alerts::test_rule))
        .route("/alerts/history", get(alerts::history))
        .route("/audit/entries", get(audit::entries))
        .route("/audit/export", get(audit::export))
        .route("/audit/verify", get(audit::verify))
        .route("/api/settings/all", get(settings::all).delete(settings::reset_all))
        .route("/api/settings/{category}", get(settings::get_category).put(settings::put_category))
        .route("/api/settings/{category}/{key}", delete(settings::reset_key))
        .route("/api/settings/retention/purge", post(settings::purge_all))
        .route("/api/settings/retention/purge/{history_type}", post(settings::purge_one))
        .route("/api/settings/retention/stats", get(settings::retention_stats))
        .route("/subscriptions", get(subscriptions::list).post(subscriptions::add))
        .route("/subscriptions/{subscription_id}", delete(subscriptions::remove))
        .route("/subscriptions/{subscription_id}/test", post(subscriptions::test))
}
