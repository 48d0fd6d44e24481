//! `certifyclouds-api`: the HTTP API. `certifyclouds-api openapi` prints the OpenAPI document;
//! `certifyclouds-api license ...` issues and checks licences.

use std::process::ExitCode;

use shared::config::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("openapi") {
        // The document as committed at api/openapi.json; needs no configuration.
        print!("{}", api::openapi::document_json());
        return ExitCode::SUCCESS;
    }
    if args.get(1).map(String::as_str) == Some("license") {
        return match api::license_cli::run(args.into_iter().skip(1)) {
            Ok(out) => {
                println!("{out}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        };
    }
    let log_level = shared::logging::init();

    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("certifyclouds-api: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let result = async {
        let addr = config.listen_addr;
        let state = api::prepare(config).await?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("binding LISTEN_ADDR {addr}: {e}"))?;
        tracing::info!(listen.addr = %addr, "API listening");
        api::spawn_settings_watcher(&state, log_level);
        api::serve(listener, state, shutdown_signal()).await
    }
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "API stopped");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the API");
            let _ignored = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
