//! Runs the Python conformance suite (cloudsim/conformance: Microsoft's Azure SDKs for Python
//! against a cloudsim it starts itself) from `cargo test`. The virtual environment comes from
//! scripts/python-venv.sh; without it the test fails and says so.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The workspace root (cloudsim's parent folder).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `$CERTIFYCLOUDS_VENV` (relative paths are relative to the workspace) or `<workspace>/.venv`.
fn venv() -> PathBuf {
    match std::env::var_os("CERTIFYCLOUDS_VENV") {
        Some(v) if !v.is_empty() => workspace().join(v),
        _ => workspace().join(".venv"),
    }
}

#[test]
fn microsofts_python_sdk_accepts_cloudsim() -> Result<()> {
    let root = workspace();
    let python = venv().join("bin").join("python");
    if !python.is_file() {
        bail!(
            "the Python conformance suite needs its virtual environment, but {} does not exist: \
             run scripts/python-venv.sh (it creates {} with Microsoft's Azure SDKs for Python)",
            python.display(),
            venv().display()
        );
    }
    let out = Command::new(&python)
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "cloudsim/conformance"])
        .current_dir(&root)
        .env("CLOUDSIM_BIN", env!("CARGO_BIN_EXE_cloudsim"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    if !out.status.success() {
        bail!(
            "pytest cloudsim/conformance failed ({}); if imports fail, run scripts/python-venv.sh\
             \n{stdout}\n{stderr}",
            out.status
        );
    }
    Ok(())
}
