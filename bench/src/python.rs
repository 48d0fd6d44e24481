//! The alternative: `bench/python/list_tenant.py` (Microsoft's Python SDKs, one thread) run
//! from the project's venv (`${CERTIFYCLOUDS_VENV:-.venv}`) against the same cloudsim.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;

use crate::infra::{self, Cloudsim};

/// One run of the Python lister.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PythonFigure {
    pub vaults: u64,
    pub assets: u64,
    pub wall_seconds: f64,
    pub assets_per_second: f64,
    pub requests: Value,
}

/// The venv's interpreter, if the venv exists.
pub fn interpreter() -> Option<PathBuf> {
    let venv = std::env::var("CERTIFYCLOUDS_VENV").unwrap_or_else(|_| ".venv".to_owned());
    let venv = PathBuf::from(venv);
    let venv = if venv.is_absolute() { venv } else { infra::repo_root().join(venv) };
    let python = venv.join("bin").join("python");
    python.is_file().then_some(python)
}

/// Lists up to `max_vaults` vaults of `sim` (0: all) with the Python SDKs.
pub async fn run(sim: &Cloudsim, max_vaults: usize) -> anyhow::Result<PythonFigure> {
    let python = interpreter().context("no Python venv: run scripts/python-venv.sh")?;
    let script = infra::repo_root().join("bench").join("python").join("list_tenant.py");
    sim.set_vault_latency(0).await?;
    sim.reset_requests().await?;
    let envs = sim.env.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(["--max-vaults", &max_vaults.to_string()])
            .envs(envs)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
    })
    .await??;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: String = stderr.lines().rev().take(8).collect::<Vec<_>>().join(" | ");
        bail!("list_tenant.py failed: {tail}");
    }
    let line = String::from_utf8_lossy(&output.stdout);
    let result: Value = serde_json::from_str(line.trim()).context("list_tenant.py output")?;
    let assets = result["assets"].as_u64().unwrap_or(0);
    let seconds = result["seconds"].as_f64().unwrap_or(f64::NAN);
    Ok(PythonFigure {
        vaults: result["vaults"].as_u64().unwrap_or(0),
        assets,
        wall_seconds: seconds,
        assets_per_second: assets as f64 / seconds,
        requests: sim.requests().await?,
    })
}
