//! Command-line interface: `cloudsim serve ...` and `cloudsim default-scenario`.

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
        Command::Serve {
            listen,
            state_dir,
            scenario,
            vault_port_base,
        } => {
            init_tracing();
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?;
            rt.block_on(crate::server::serve(crate::server::ServeOptions {
                listen,
                state_dir,
                scenario,
                vault_port_base,
            }))
        }
    }
}
