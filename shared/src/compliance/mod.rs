//! Compliance: rules are code (one module per family), frameworks are data mapping their
//! controls to rules. An evaluation is set-based SQL over the inventory: each rule is one
//! statement that selects its failing targets, so 100k assets evaluate in a few statements.

pub mod evaluate;
pub mod frameworks;
pub mod rules;

use serde::Serialize;

/// How bad a failed check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }
}

/// What a rule checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Vault,
    Secret,
    Key,
    Certificate,
}

/// One rule. `applicable` selects the ids of the targets it checks; `failing` selects the ids
/// (and a `details` jsonb) of those that fail. Both may use `$1` (critical days) and `$2`
/// (warning days).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    pub id: &'static str,
    pub title: &'static str,
    pub severity: Severity,
    pub target: Target,
    pub remedy: &'static str,
    #[serde(skip)]
    pub applicable: &'static str,
    #[serde(skip)]
    pub failing: &'static str,
}
