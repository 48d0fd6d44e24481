//! Vault configuration rules.

use crate::compliance::{Rule, Severity, Target};

const VAULTS: &str = "SELECT id FROM vaults WHERE deleted_at IS NULL";

/// The rules of this family.
pub const RULES: &[Rule] = &[
    Rule {
        id: "KV-VAULT-SOFT-DELETE",
        title: "Vaults have soft delete enabled",
        severity: Severity::High,
        target: Target::Vault,
        remedy: "Enable soft delete so deleted items can be recovered.",
        applicable: VAULTS,
        failing: "SELECT id, '{}'::jsonb FROM vaults WHERE deleted_at IS NULL \
            AND NOT soft_delete_enabled",
    },
    Rule {
        id: "KV-VAULT-PURGE-PROTECTION",
        title: "Vaults have purge protection enabled",
        severity: Severity::Medium,
        target: Target::Vault,
        remedy: "Enable purge protection so nobody can purge items before retention ends.",
        applicable: VAULTS,
        failing: "SELECT id, '{}'::jsonb FROM vaults WHERE deleted_at IS NULL \
            AND NOT purge_protection",
    },
    Rule {
        id: "KV-VAULT-RBAC",
        title: "Vaults use Azure RBAC for data-plane access",
        severity: Severity::Medium,
        target: Target::Vault,
        remedy: "Switch the vault's permission model to Azure role-based access control.",
        applicable: VAULTS,
        failing: "SELECT id, '{}'::jsonb FROM vaults WHERE deleted_at IS NULL \
            AND NOT rbac_enabled",
    },
    Rule {
        id: "KV-VAULT-PUBLIC-NETWORK",
        title: "Vaults do not accept traffic from every network",
        severity: Severity::Medium,
        target: Target::Vault,
        remedy: "Disable public network access or restrict it with a firewall and private endpoints.",
        applicable: VAULTS,
        failing: "SELECT id, jsonb_build_object('publicNetworkAccess', public_network_access) \
            FROM vaults WHERE deleted_at IS NULL \
            AND coalesce(public_network_access, 'Enabled') = 'Enabled'",
    },
];
