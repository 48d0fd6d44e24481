//! The `cloudsim` binary: a thin wrapper around [`cloudsim::cli::run`].

fn main() -> std::process::ExitCode {
    match cloudsim::cli::run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloudsim: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
