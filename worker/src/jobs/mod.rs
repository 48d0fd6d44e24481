//! One job per file, each named for what it does. Handlers are idempotent by job id: a job
//! whose row already finished is acknowledged and skipped.

pub mod discover_vaults;
pub mod scan_vault;

/// The error type apalis expects from a handler.
pub type HandlerResult = Result<(), apalis::prelude::BoxDynError>;
