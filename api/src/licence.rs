//! Licence checks for routes: PRO features answer 403 `license_required` on STARTER.

use axum::http::StatusCode;
use shared::licence::Status;

use crate::error::ApiError;
use crate::state::AppState;

/// Refuses unless the licence in force enables `feature`.
pub fn require_feature(state: &AppState, feature: &str) -> Result<Status, ApiError> {
    let status = state.config.licence();
    if status.allows(feature) {
        return Ok(status);
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "license_required",
        format!(
            "{feature} needs the PRO tier; this installation runs on {:?}{}",
            status.tier,
            status.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
        )
        .replace("Starter", "STARTER")
        .replace("Pro", "PRO"),
    ))
}

/// Refuses when `current` already reaches the tier's limit of `what`.
pub fn require_room(
    state: &AppState,
    what: &str,
    current: i64,
    limit: u32,
) -> Result<(), ApiError> {
    if current < i64::from(limit) {
        return Ok(());
    }
    let tier = state.config.licence().tier;
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "license_required",
        format!("the {tier:?} tier allows {limit} {what}; a PRO licence allows more")
            .replace("Starter", "STARTER")
            .replace("Pro", "PRO"),
    ))
}
