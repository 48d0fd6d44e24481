//! Frameworks as data: each control names the rules that give evidence for it and how strong
//! that evidence is. Evidence, not certification: controls the product cannot observe say so.

use serde::Serialize;

/// How much a control's rules show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Evidence {
    /// The rules check the control itself.
    Direct,
    /// The rules check part of it.
    Supporting,
    /// Customer responsibility: nothing the product can observe.
    None,
}

/// One control.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Control {
    pub id: &'static str,
    pub title: &'static str,
    pub evidence: Evidence,
    pub rules: &'static [&'static str],
}

/// One framework.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Framework {
    pub id: &'static str,
    pub name: &'static str,
    pub controls: &'static [Control],
}

const EXPIRY_ALL: &[&str] = &["KV-EXP-SECRET", "KV-EXP-KEY", "KV-EXP-CERT"];
const LIFECYCLE: &[&str] = &["KV-EXPIRED", "KV-EXPIRING-CRITICAL", "KV-DISABLED-LINGERING"];
const STRENGTH: &[&str] = &["KV-KEY-SIZE", "KV-CERT-KEY-SIZE"];
const VAULT_PROTECT: &[&str] = &["KV-VAULT-SOFT-DELETE", "KV-VAULT-PURGE-PROTECTION"];
const ACCESS: &[&str] = &["KV-VAULT-RBAC", "KV-VAULT-PUBLIC-NETWORK"];

use Evidence::{Direct, None as NoEvidence, Supporting};

/// Every framework.
pub const FRAMEWORKS: &[Framework] = &[
    Framework {
        id: "cis-kv",
        name: "CIS Microsoft Azure Foundations: Key Vault",
        controls: &[
            Control {
                id: "CIS-KV-1",
                title: "Soft delete is enabled",
                evidence: Direct,
                rules: &["KV-VAULT-SOFT-DELETE"],
            },
            Control {
                id: "CIS-KV-2",
                title: "Purge protection is enabled",
                evidence: Direct,
                rules: &["KV-VAULT-PURGE-PROTECTION"],
            },
            Control {
                id: "CIS-KV-3",
                title: "Role-based access control is used",
                evidence: Direct,
                rules: &["KV-VAULT-RBAC"],
            },
            Control {
                id: "CIS-KV-4",
                title: "Diagnostic logging is enabled",
                evidence: NoEvidence,
                rules: &[],
            },
            Control {
                id: "CIS-KV-5",
                title: "Secrets have an expiry date",
                evidence: Direct,
                rules: &["KV-EXP-SECRET"],
            },
            Control {
                id: "CIS-KV-6",
                title: "Keys have an expiry date",
                evidence: Direct,
                rules: &["KV-EXP-KEY"],
            },
            Control {
                id: "CIS-KV-7",
                title: "Certificates have an expiry date",
                evidence: Direct,
                rules: &["KV-EXP-CERT"],
            },
        ],
    },
    Framework {
        id: "asb-v3",
        name: "Azure Security Benchmark v3",
        controls: &[
            Control {
                id: "DP-6",
                title: "Use a secure key management process",
                evidence: Supporting,
                rules: LIFECYCLE,
            },
            Control {
                id: "DP-7",
                title: "Use a secure certificate management process",
                evidence: Supporting,
                rules: &["KV-EXP-CERT", "KV-CERT-VALIDITY", "KV-CERT-KEY-SIZE"],
            },
            Control {
                id: "DP-8",
                title: "Ensure security of key and certificate repository",
                evidence: Supporting,
                rules: VAULT_PROTECT,
            },
            Control {
                id: "NS-2",
                title: "Secure cloud services with network controls",
                evidence: Direct,
                rules: &["KV-VAULT-PUBLIC-NETWORK"],
            },
            Control {
                id: "PA-7",
                title: "Follow just enough administration",
                evidence: Supporting,
                rules: &["KV-VAULT-RBAC"],
            },
        ],
    },
    Framework {
        id: "nist-800-53",
        name: "NIST SP 800-53 Rev. 5",
        controls: &[
            Control {
                id: "SC-12",
                title: "Cryptographic key establishment and management",
                evidence: Supporting,
                rules: LIFECYCLE,
            },
            Control {
                id: "SC-13",
                title: "Cryptographic protection",
                evidence: Supporting,
                rules: STRENGTH,
            },
            Control {
                id: "SC-17",
                title: "Public key infrastructure certificates",
                evidence: Supporting,
                rules: &["KV-EXP-CERT", "KV-CERT-VALIDITY"],
            },
            Control { id: "AU-2", title: "Event logging", evidence: Supporting, rules: &[] },
            Control {
                id: "AU-6",
                title: "Audit record review, analysis and reporting",
                evidence: NoEvidence,
                rules: &[],
            },
            Control {
                id: "AU-12",
                title: "Audit record generation",
                evidence: NoEvidence,
                rules: &[],
            },
        ],
    },
    Framework {
        id: "iso-27001",
        name: "ISO/IEC 27001:2013 Annex A",
        controls: &[
            Control {
                id: "A.10.1.1",
                title: "Policy on the use of cryptographic controls",
                evidence: Supporting,
                rules: STRENGTH,
            },
            Control {
                id: "A.10.1.2",
                title: "Key management",
                evidence: Supporting,
                rules: LIFECYCLE,
            },
            Control { id: "A.12.4.1", title: "Event logging", evidence: NoEvidence, rules: &[] },
        ],
    },
    Framework {
        id: "soc2",
        name: "SOC 2 Trust Services Criteria",
        controls: &[
            Control {
                id: "CC6.1",
                title: "Logical access security",
                evidence: Supporting,
                rules: ACCESS,
            },
            Control {
                id: "CC6.6",
                title: "Boundary protection",
                evidence: Supporting,
                rules: &["KV-VAULT-PUBLIC-NETWORK"],
            },
            Control {
                id: "CC6.7",
                title: "Protection of information in transmission and at rest",
                evidence: Supporting,
                rules: STRENGTH,
            },
            Control {
                id: "CC7.2",
                title: "Monitoring of system components",
                evidence: Supporting,
                rules: LIFECYCLE,
            },
            Control {
                id: "CC7.5",
                title: "Recovery from incidents",
                evidence: Supporting,
                rules: VAULT_PROTECT,
            },
        ],
    },
    Framework {
        id: "pci-dss",
        name: "PCI DSS v4.0",
        controls: &[
            Control {
                id: "3.6",
                title: "Cryptographic keys are secured",
                evidence: Supporting,
                rules: VAULT_PROTECT,
            },
            Control {
                id: "3.7",
                title: "Key management lifecycle is defined",
                evidence: Supporting,
                rules: EXPIRY_ALL,
            },
            Control {
                id: "4.2",
                title: "Strong cryptography in transmission",
                evidence: Supporting,
                rules: &["KV-CERT-KEY-SIZE", "KV-EXPIRED"],
            },
        ],
    },
    Framework {
        id: "hipaa",
        name: "HIPAA Security Rule",
        controls: &[
            Control {
                id: "164.312(a)(2)(iv)",
                title: "Encryption and decryption",
                evidence: Supporting,
                rules: STRENGTH,
            },
            Control { id: "164.312(b)", title: "Audit controls", evidence: NoEvidence, rules: &[] },
            Control {
                id: "164.312(e)(2)(ii)",
                title: "Encryption in transmission",
                evidence: Supporting,
                rules: &["KV-CERT-KEY-SIZE", "KV-EXPIRED"],
            },
        ],
    },
];

/// A framework by id.
pub fn find(id: &str) -> Option<&'static Framework> {
    FRAMEWORKS.iter().find(|f| f.id == id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_rule_a_control_names_exists() {
        for f in super::FRAMEWORKS {
            for c in f.controls {
                for r in c.rules {
                    assert!(
                        crate::compliance::rules::find(r).is_some(),
                        "{} {} names {r}",
                        f.id,
                        c.id
                    );
                }
            }
        }
    }
}
