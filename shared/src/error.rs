//! Error types and where each belongs.
//!
//! - Library code in this crate returns a `thiserror` enum per concern: [`ConfigError`] for
//!   start-up configuration, [`crate::azure::AzureError`] for calls to Azure, and `sqlx::Error`
//!   unchanged for database access (the callers map constraint names to client errors).
//! - Jobs and binaries use `anyhow` with `.context()` on each step.
//! - The API has one error type (`api::error::ApiError`) that renders the documented JSON shape;
//!   internal errors are logged once there and answered with a generic detail.

/// A configuration value is missing or malformed. The message names the variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} must be set")]
    Missing(&'static str),
    #[error("{name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

impl ConfigError {
    /// Shorthand for an invalid value.
    pub fn invalid(name: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid { name, reason: reason.into() }
    }
}
