//! Every rule, by family.

mod crypto;
mod expiry;
mod vault;

use super::Rule;

/// All rules.
pub fn all() -> Vec<&'static Rule> {
    expiry::RULES.iter().chain(vault::RULES).chain(crypto::RULES).collect()
}

/// A rule by id.
pub fn find(id: &str) -> Option<&'static Rule> {
    all().into_iter().find(|r| r.id == id)
}
