//! One job per file, each named for what it does. Handlers are idempotent by job id: a job
//! whose row already finished is acknowledged and skipped.

pub mod deliver_alert;
pub mod discover_vaults;
pub mod evaluate_alerts;
pub mod evaluate_compliance;
pub mod scan_vault;

/// The error type apalis expects from a handler.
pub type HandlerResult = Result<(), apalis::prelude::BoxDynError>;

/// How a job run ended, for the jobs metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed,
    /// A duplicate or cancelled delivery that did nothing.
    Skipped,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Succeeded => "succeeded",
            Outcome::Failed => "failed",
            Outcome::Skipped => "skipped",
        }
    }
}

/// Records a job run in the metrics and turns its result into what apalis expects.
pub fn finish(
    kind: &'static str,
    started: std::time::Instant,
    result: anyhow::Result<Outcome>,
) -> HandlerResult {
    let outcome = match &result {
        Ok(outcome) => outcome.label(),
        Err(_) => "error",
    };
    metrics::counter!(shared::metrics::JOBS, "kind" => kind, "outcome" => outcome).increment(1);
    metrics::histogram!(shared::metrics::JOB_DURATION, "kind" => kind)
        .record(started.elapsed().as_secs_f64());
    result.map(|_| ()).map_err(Into::into)
}
