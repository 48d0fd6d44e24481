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
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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

/// The route table: method, path, access. The route-guard test walks it, and the OpenAPI
/// test proves it lists exactly the operations of the document, which lists exactly the routes
/// `documented()` registers.
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
    // The OpenAPI document and its browsable UI (not operations of the document itself).
    ("GET", "/openapi.json", Access::Public),
    ("GET", "/docs", Access::Public),
];

/// Routes of the table that the OpenAPI document does not list: the document and its UI.
pub const UNDOCUMENTED: &[&str] = &["/openapi.json", "/docs"];

/// All routes, as axum serves them.
pub fn router() -> Router<AppState> {
    documented().split_for_parts().0
}

/// All routes with their OpenAPI operations. Each `routes!` group is one path: the macro
/// registers every handler with the method and path of its `#[utoipa::path]` annotation, so
/// the router and the document are built from the same words. A route added with a plain
/// `.route()` would be served but undocumented; the document test then fails on the route table.
pub fn documented() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(auth::login))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::me))
        .routes(routes!(system::health))
        .routes(routes!(system::license_status))
        .routes(routes!(users::list, users::create))
        .routes(routes!(users::update, users::delete))
        .routes(routes!(users::unlock))
        .routes(routes!(system::identity))
        .routes(routes!(metrics::metrics))
        .routes(routes!(discovery::start_scan))
        .routes(routes!(discovery::scan_status))
        .routes(routes!(discovery::scan_results))
        .routes(routes!(discovery::scan_jobs))
        .routes(routes!(discovery::list_scans))
        .routes(routes!(discovery::list_assets))
        .routes(routes!(discovery::get_asset))
        .routes(routes!(discovery::list_vaults))
        .routes(routes!(compliance::get_score))
        .routes(routes!(compliance::violations))
        .routes(routes!(compliance::evaluate))
        .routes(routes!(compliance::list_frameworks))
        .routes(routes!(compliance::get_framework))
        .routes(routes!(alerts::list_rules, alerts::create_rule))
        .routes(routes!(alerts::update_rule, alerts::delete_rule))
        .routes(routes!(alerts::test_rule))
        .routes(routes!(alerts::history))
        .routes(routes!(audit::entries))
        .routes(routes!(audit::export))
        .routes(routes!(audit::verify))
        .routes(routes!(settings::all, settings::reset_all))
        .routes(routes!(settings::get_category, settings::put_category))
        .routes(routes!(settings::reset_key))
        .routes(routes!(settings::purge_all))
        .routes(routes!(settings::purge_one))
        .routes(routes!(settings::retention_stats))
        .routes(routes!(subscriptions::list, subscriptions::add))
        .routes(routes!(subscriptions::remove))
        .routes(routes!(subscriptions::test))
}
