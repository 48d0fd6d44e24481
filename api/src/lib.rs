//! The API process: authenticates, validates, reads Postgres, records jobs and enqueues them.
//! It holds no state of its own beyond soft caches that Postgres notifications keep current
//! (`cache`), so any number of replicas can run behind a load balancer.

pub mod auth;
pub mod cache;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod licence;
pub mod license_cli;
pub mod openapi;
pub mod origin;
pub mod pagination;
pub mod password;
pub mod pdf;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod state;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use shared::azure::AzureClients;
use shared::config::Config;
use shared::db;
use shared::jobs::Queues;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::ApiError;
pub use crate::state::AppState;

/// Connects to Postgres and Redis, runs migrations, builds the Azure clients and makes sure the
/// bootstrap admin exists.
pub async fn prepare(config: Config) -> anyhow::Result<AppState> {
    let pool = db::connect(config.database_url.expose(), 20)
        .await
        .context("connecting to Postgres (DATABASE_URL)")?;
    db::migrate(&pool).await.context("running migrations")?;
    let redis = shared::jobs::connect_redis(config.redis_url.expose())
        .await
        .context("connecting to Redis (REDIS_URL)")?;
    let queues = Queues::from_connection(redis.clone(), &config.queue_prefix);
    let azure = AzureClients::new(&config.azure).context("building the Azure clients")?;

    shared::metrics::handle();
    let audit_key = Arc::new(shared::audit::key_from(config.secret_key.expose()));
    let caches = Arc::new(cache::Caches::new(
        std::time::Duration::from_secs(config.api_auth_cache_seconds),
        std::time::Duration::from_secs(config.api_cache_seconds),
    ));
    cache::spawn_listener(pool.clone(), caches.clone());
    let state = AppState {
        config: Arc::new(config),
        pool,
        redis,
        queues,
        azure: Arc::new(azure),
        audit_key,
        caches,
    };
    bootstrap_admin(&state).await?;
    Ok(state)
}

/// Creates the admin user named by `ADMIN_USERNAME` on first start. Without `ADMIN_PASSWORD` a
/// random password is generated and printed once, on standard output, never logged.
async fn bootstrap_admin(state: &AppState) -> anyhow::Result<()> {
    let username = &state.config.admin_username;
    if db::users::find_by_username(&state.pool, username).await?.is_some() {
        return Ok(());
    }
    let (password, generated) = match &state.config.admin_password {
        Some(p) => {
            password::check("ADMIN_PASSWORD", p.expose(), username)
                .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            (p.expose().to_owned(), false)
        }
        None => {
            let bytes: [u8; 18] = rand::random();
            (bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(), true)
        }
    };
    let hash = auth::hash_password(password.clone())
        .await
        .map_err(|e| anyhow::anyhow!("hashing the admin password: {}", e.detail))?;
    let created = db::users::insert_if_absent(&state.pool, username, &hash, "admin").await?;
    if created && generated {
        println!("certifyclouds-api: created admin user {username:?} with password {password}");
        println!("certifyclouds-api: this password is shown once; set ADMIN_PASSWORD to choose it");
    }
    Ok(())
}

/// The application: every route, the dashboard, the OpenAPI document and its UI, the
/// error-shaped fallbacks, request ids and security headers.
pub fn app(state: AppState) -> Router {
    let security_headers = [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("content-security-policy", "default-src 'self'; frame-ancestors 'none'"),
        ("strict-transport-security", "max-age=31536000; includeSubDomains"),
        ("cache-control", "no-store"),
    ];
    let (routes, doc) = routes::documented().split_for_parts();
    let mut router = routes
        .merge(openapi::ui(openapi::finish(doc)))
        .merge(dashboard::router())
        .fallback(error::unknown_route)
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not accept that method",
            )
        })
        .layer(axum::middleware::from_fn_with_state(state.clone(), rate_limit::layer))
        .with_state(state);
    for (name, value) in security_headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        ));
    }
    router.layer(axum::middleware::from_fn(request_id::layer))
}

/// Serves until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let service = app(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown).await.context("serving")
}

/// Applies the `logging.logLevel` setting to this API process while it runs.
pub fn spawn_settings_watcher(state: &AppState, hook: shared::logging::LevelHook) {
    let pool = state.pool.clone();
    let config = state.config.clone();
    tokio::spawn(async move {
        let mut applied: Option<String> = None;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tick.tick().await;
            let Some(def) = shared::settings::find("logging", "logLevel") else { return };
            let stored = match shared::settings::stored(&pool).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "settings could not be read");
                    continue;
                }
            };
            let env = |k: &str| config.setting_env(k);
            let effective = shared::settings::resolve(def, &stored, &env);
            let wanted = effective.value.as_str().map(str::to_owned);
            if effective.source != "default" && wanted != applied {
                if let Some(level) = &wanted {
                    hook(level);
                }
                applied = wanted;
            }
        }
    });
}
