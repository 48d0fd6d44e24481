//! `certifyclouds-worker`: runs scans and other background jobs.

use std::process::ExitCode;

use shared::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let log_level = shared::logging::init();

    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("certifyclouds-worker: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = async {
        let state = worker::prepare(&config).await?;
        worker::run(state, &config, Some(log_level), shutdown_signal()).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "worker stopped");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the worker");
            let _ignored = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
