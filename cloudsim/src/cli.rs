//! Command-line interface: `cloudsim serve ...`, `cloudsim default-scenario` and
//! `cloudsim generate ...`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Local, faithful simulation of Azure (Entra ID, Resource Manager, Key Vault) over HTTPS.
#[derive(Debug, Parser)]
#[command(name = "cloudsim", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve Entra ID, Resource Manager and the admin API on ADDR, and one port per vault.
    Serve {
        /// Main listener address, e.g. 127.0.0.1:8443 (port 0: OS-assigned).
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// State directory: CA, signing keys and cloud.env.
        #[arg(long)]
        state_dir: PathBuf,
        /// Scenario JSON file (default: the embedded demo scenario).
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// First vault port; vaults get N, N+1, ... (default: OS-assigned).
        #[arg(long)]
        vault_port_base: Option<u16>,
    },
    /// Print the embedded default scenario JSON to stdout.
    DefaultScenario,
    /// Write a scenario of any size (a `generate` block) from a seed.
    Generate {
        /// Number of vaults.
        #[arg(long)]
        vaults: usize,
        /// Items per vault (75% secrets, 20% keys, 5% certificates).
        #[arg(long)]
        items_per_vault: usize,
        /// Seed for names, values and GUIDs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Subscriptions (must divide --vaults; default: about 100 vaults each).
        #[arg(long)]
        subscriptions: Option<usize>,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// The scenario `cloudsim generate` writes.
pub fn generated_scenario(
    vaults: usize,
    items_per_vault: usize,
    seed: u64,
    subscriptions: Option<usize>,
) -> Result<crate::scenario::Scenario> {
    let subs = match subscriptions {
        Some(0) => anyhow::bail!("--subscriptions must be at least 1"),
        Some(s) if !vaults.is_multiple_of(s) => {
            anyhow::bail!("--subscriptions must divide --vaults")
        }
        Some(s) => s,
        None => (1..=vaults.max(1))
            .find(|d| vaults.is_multiple_of(*d) && vaults / d <= 100)
            .unwrap_or(1),
    };
    let certificates = items_per_vault / 20;
    let keys = items_per_vault / 5;
    Ok(crate::scenario::Scenario {
        seed: Some(seed),
        generate: Some(crate::scenario::GenerateSpec {
            subscriptions: if vaults == 0 { 0 } else { subs },
            vaults_per_subscription: vaults / subs.max(1),
            secrets_per_vault: items_per_vault - certificates - keys,
            keys_per_vault: keys,
            certificates_per_vault: certificates,
            seed: Some(seed),
        }),
        ..crate::scenario::Scenario::default()
    })
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Parses the command line and runs it.
pub fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::DefaultScenario => {
            print!("{}", crate::scenario::DEFAULT_SCENARIO);
            Ok(())
        }
        Command::Generate { vaults, items_per_vault, seed, subscriptions, out } => {
            let sc = generated_scenario(vaults, items_per_vault, seed, subscriptions)?;
            let text = format!("{}\n", serde_json::to_string_pretty(&sc)?);
            match out {
                Some(p) => crate::server::write_atomic(&p, &text),
                None => {
                    print!("{text}");
                    Ok(())
                }
            }
        }
        Command::Serve { listen, state_dir, scenario, vault_port_base } => {
            init_tracing();
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(crate::server::serve(crate::server::ServeOptions {
                listen,
                state_dir,
                scenario,
                vault_port_base,
            }))
        }
    }
}
