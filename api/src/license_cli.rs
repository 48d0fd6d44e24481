//! `certifyclouds-api license ...`: the licence operator's tool (not for customers). `keygen`
//! makes an Ed25519 key pair; `issue` signs a licence with a private key (or the public test
//! key) and prints the token for `CERTIFYCLOUDS_LICENSE_KEY`.

use std::path::PathBuf;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use clap::{Parser, Subcommand};
use shared::licence::{self, Licence, Limits, Tier};

/// The licence commands.
#[derive(Debug, Parser)]
#[command(name = "certifyclouds-api license")]
pub struct LicenseCommand {
    #[command(subcommand)]
    pub action: Action,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Action {
    /// Print a new key pair: the private key (PKCS#8, base64) to keep secret, and the public key
    /// to build into the product as CERTIFYCLOUDS_LICENSE_PUBLIC_KEY.
    Keygen,
    /// Print a signed licence token.
    Issue {
        /// File holding the base64 PKCS#8 private key from `keygen`.
        #[arg(long, conflicts_with = "test_key")]
        private_key: Option<PathBuf>,
        /// Sign with the public test key (tests and demos only).
        #[arg(long)]
        test_key: bool,
        #[arg(long)]
        licensee: String,
        #[arg(long, default_value_t = 365)]
        days: i64,
        #[arg(long, default_value = "PRO")]
        tier: String,
        #[arg(long, default_value_t = 100)]
        subscriptions: u32,
        #[arg(long, default_value_t = 50)]
        users: u32,
        #[arg(long, default_value_t = 1000)]
        rotations_per_month: u32,
    },
}

/// Runs a licence command; the `Ok` string goes to standard output.
pub fn run(args: impl IntoIterator<Item = String>) -> Result<String, String> {
    let command = LicenseCommand::try_parse_from(args).map_err(|e| e.to_string())?;
    match command.action {
        Action::Keygen => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|e| format!("key generation failed: {e}"))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|e| e.to_string())?;
            Ok(format!(
                "private key (keep secret): {}\npublic key (CERTIFYCLOUDS_LICENSE_PUBLIC_KEY at build time): {}",
                STANDARD.encode(pkcs8.as_ref()),
                URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())
            ))
        }
        Action::Issue {
            private_key,
            test_key,
            licensee,
            days,
            tier,
            subscriptions,
            users,
            rotations_per_month,
        } => {
            let key = match (private_key, test_key) {
                (_, true) => licence::test_key()?,
                (Some(path), false) => {
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| format!("{}: {e}", path.display()))?;
                    let der =
                        STANDARD.decode(text.trim()).map_err(|e| format!("private key: {e}"))?;
                    Ed25519KeyPair::from_pkcs8(&der).map_err(|e| format!("private key: {e}"))?
                }
                (None, false) => return Err("give --private-key FILE or --test-key".to_owned()),
            };
            let tier = match tier.to_ascii_uppercase().as_str() {
                "PRO" => Tier::Pro,
                "STARTER" => Tier::Starter,
                other => return Err(format!("unknown tier {other}; use PRO or STARTER")),
            };
            let now = chrono::Utc::now();
            let licence = Licence {
                licensee,
                tier,
                issued_at: now,
                expires_at: now + chrono::Duration::days(days),
                limits: Limits {
                    subscriptions,
                    users,
                    manual_rotations_per_month: rotations_per_month,
                },
            };
            licence::issue(&key, &licence)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::run;

    #[test]
    fn an_issued_test_licence_verifies() {
        let args = ["license", "issue", "--test-key", "--licensee", "Fabrikam", "--days", "10"];
        let token = run(args.iter().map(|s| (*s).to_owned())).expect("issued");
        let keys = shared::licence::accepted_keys(true, false).expect("keys");
        let status = shared::licence::status(Some(&token), &keys, chrono::Utc::now());
        assert!(status.valid, "{status:?}");
        assert_eq!(status.licensee.as_deref(), Some("Fabrikam"));
        let keygen = run(["license", "keygen"].iter().map(|s| (*s).to_owned())).expect("keygen");
        assert!(keygen.contains("public key"));
    }
}
