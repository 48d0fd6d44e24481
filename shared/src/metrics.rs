//! Prometheus metrics shared by the API and the worker: one process-wide recorder, the metric
//! names, and a Key Vault / Entra ID pipeline policy that counts Azure calls by surface and
//! status.

use std::sync::{Arc, OnceLock};

use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Jobs finished, by `kind` and `outcome` (`succeeded`, `failed`, `skipped`).
pub const JOBS: &str = "certifyclouds_jobs_total";
/// Job run time in seconds, by `kind`.
pub const JOB_DURATION: &str = "certifyclouds_job_duration_seconds";
/// Tasks waiting in Redis, by `queue`.
pub const QUEUE_DEPTH: &str = "certifyclouds_queue_depth";
/// Azure responses, by `surface` and HTTP `status` (`error` when none came back).
pub const AZURE_REQUESTS: &str = "certifyclouds_azure_requests_total";
/// Wall time of finished scans in seconds, by `mode` and `status`.
pub const SCAN_DURATION: &str = "certifyclouds_scan_duration_seconds";
/// Items found per finished scan, by `mode`.
pub const SCAN_ITEMS: &str = "certifyclouds_scan_items";
/// Queue workers restarted after they stopped on a backend error.
pub const WORKER_RESTARTS: &str = "certifyclouds_worker_restarts_total";
/// API requests served, by `route` and `status`.
pub const HTTP_REQUESTS: &str = "certifyclouds_http_requests_total";
/// API cache lookups, by `cache` (`token`, `page`) and `outcome` (`hit`, `miss`).
pub const API_CACHE_LOOKUPS: &str = "certifyclouds_api_cache_lookups_total";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once and returns its handle.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; this one only renders");
        }
        handle
    })
}

/// Counts one Azure response.
pub fn azure_call(surface: &'static str, status: Option<u16>) {
    let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
    metrics::counter!(AZURE_REQUESTS, "surface" => surface, "status" => status).increment(1);
}

/// An SDK pipeline policy that counts every try's response.
#[derive(Debug)]
pub struct CountAzureCalls {
    pub surface: &'static str,
}

#[async_trait::async_trait]
impl Policy for CountAzureCalls {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        let Some((first, rest)) = next.split_first() else {
            return Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "the metrics policy must not be last in the pipeline",
            ));
        };
        let response = first.send(ctx, request, rest).await;
        azure_call(self.surface, response.as_ref().ok().map(|r| u16::from(r.status())));
        response
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn recorded_counters_are_rendered() {
        let handle = super::handle();
        super::azure_call("key_vault", Some(429));
        let text = handle.render();
        assert!(
            text.contains(
                r#"certifyclouds_azure_requests_total{surface="key_vault",status="429"} 1"#
            ),
            "{text}"
        );
    }
}
