//! Process logging: `RUST_LOG` (or `LOG_LEVEL`) at start-up, and a hook that changes the level
//! while running, for the `logging.logLevel` setting.

use std::sync::Arc;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, reload};

/// Changes the level of a running process (`DEBUG`, `INFO`, `WARNING`, `ERROR`).
pub type LevelHook = Arc<dyn Fn(&str) + Send + Sync>;

/// The filter for a product log level: our crates at that level, chatty libraries quieter.
pub fn filter_for(level: &str) -> EnvFilter {
    let ours = match level.to_ascii_uppercase().as_str() {
        "DEBUG" => "debug",
        "WARNING" | "WARN" => "warn",
        "ERROR" => "error",
        _ => "info",
    };
    EnvFilter::new(format!("{ours},sqlx=warn,azure_core=warn,hyper=warn,apalis=warn"))
}

/// Installs the subscriber; returns the hook that changes its level.
pub fn init() -> LevelHook {
    let initial = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        filter_for(&std::env::var("LOG_LEVEL").unwrap_or_else(|_| "INFO".to_owned()))
    });
    let (filter, handle) = reload::Layer::new(initial);
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    tracing_subscriber::registry().with(filter).with(fmt).init();
    Arc::new(move |level: &str| {
        if let Err(e) = handle.reload(filter_for(level)) {
            tracing::warn!(error = %e, "log level not changed");
        } else {
            tracing::info!(level, "log level changed");
        }
    })
}
