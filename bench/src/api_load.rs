//! The API under load: a `certifyclouds-api` process over the scanned inventory, loaded on
//! loopback by wrk (when installed) and by a small in-process load generator, each bounded in
//! time; the API's peak memory comes from `/proc`.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use serde_json::Value;

use crate::infra::{self, Process};

/// Connections (wrk) and concurrent clients (in-process).
pub const CONNECTIONS: usize = 64;

/// One endpoint under one load generator.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LoadFigure {
    pub tool: String,
    pub endpoint: String,
    pub path: String,
    pub connections: usize,
    pub seconds: f64,
    pub requests: u64,
    pub errors: u64,
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// A running API process and a token for it.
pub struct Api {
    pub process: Process,
    pub url: String,
    pub token: String,
}

/// Starts the API on a free loopback port and logs in as the bootstrap admin.
pub async fn start(vars: &HashMap<String, String>) -> anyhow::Result<Api> {
    let port = infra::free_port()?;
    let mut vars = vars.clone();
    vars.insert("LISTEN_ADDR".into(), format!("127.0.0.1:{port}"));
    let process = infra::spawn_product("certifyclouds-api", &vars)?;
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if http.get(format!("{url}/health")).send().await.is_ok() {
            break;
        }
        if Instant::now() > deadline {
            bail!("the API did not answer /health within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let login = serde_json::json!({"username": "admin", "password": infra::BENCH_PASSWORD});
    let response = http.post(format!("{url}/auth/login")).json(&login).send().await?;
    let body: Value = response.error_for_status()?.json().await?;
    let token = body["access_token"].as_str().context("access_token")?.to_owned();
    Ok(Api { process, url, token })
}

impl Api {
    /// The filtered, paged list path: certificates in `critical` status, a page from the middle.
    pub async fn filtered_path(&self) -> anyhow::Result<(String, i64)> {
        let base = "/api/assets/discovery/assets?type=certificate&status=critical";
        let first: Value = reqwest::Client::new()
            .get(format!("{}{base}&limit=1", self.url))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let total = first["total"].as_i64().unwrap_or(0);
        let offset = (total / 2 / 50 * 50).min(1000);
        Ok((format!("{base}&limit=50&offset={offset}"), total))
    }

    /// The API's cache lookups so far, by cache and outcome, from its `/metrics`.
    pub async fn cache_hits(&self) -> anyhow::Result<HashMap<String, f64>> {
        let text = reqwest::Client::new()
            .get(format!("{}/metrics", self.url))
            .bearer_auth(&self.token)
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?;
        let mut out = HashMap::new();
        for line in text.lines().filter(|l| l.starts_with("certifyclouds_api_cache_lookups_total{"))
        {
            let Some((labels, value)) = line.rsplit_once(' ') else { continue };
            let label = |name: &str| {
                labels.split(&format!("{name}=\"")).nth(1)?.split('"').next().map(str::to_owned)
            };
            if let (Some(cache), Some(outcome), Ok(n)) =
                (label("cache"), label("outcome"), value.parse::<f64>())
            {
                out.insert(format!("{cache} {outcome}"), n);
            }
        }
        Ok(out)
    }

    /// Loads `path` with wrk for `seconds`.
    pub fn wrk(&self, endpoint: &str, path: &str, seconds: u64) -> anyhow::Result<LoadFigure> {
        let output = Command::new("wrk")
            .args(["-t2", &format!("-c{CONNECTIONS}"), &format!("-d{seconds}s"), "--latency"])
            .args(["-H", &format!("Authorization: Bearer {}", self.token)])
            .arg(format!("{}{path}", self.url))
            .output()
            .context("running wrk")?;
        let text = String::from_utf8_lossy(&output.stdout);
        parse_wrk(&text, endpoint, path, seconds)
            .with_context(|| format!("reading wrk's output: {text}"))
    }

    /// Loads `path` with 64 in-process clients for `seconds` (at most `max_requests`).
    pub async fn in_process(
        &self,
        endpoint: &str,
        path: &str,
        seconds: u64,
        max_requests: u64,
    ) -> anyhow::Result<LoadFigure> {
        let http = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build()?;
        let url = Arc::new(format!("{}{path}", self.url));
        let token = Arc::new(self.token.clone());
        let started = Instant::now();
        let deadline = started + Duration::from_secs(seconds);
        let per_client = max_requests / CONNECTIONS as u64 + 1;
        let tasks: Vec<_> = (0..CONNECTIONS)
            .map(|_| {
                let (http, url, token) = (http.clone(), url.clone(), token.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut errors = 0u64;
                    for _ in 0..per_client {
                        if Instant::now() > deadline {
                            break;
                        }
                        let sent = Instant::now();
                        let ok =
                            match http.get(url.as_str()).bearer_auth(token.as_str()).send().await {
                                Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                                Err(_) => false,
                            };
                        latencies.push(sent.elapsed().as_secs_f64() * 1000.0);
                        errors += u64::from(!ok);
                    }
                    (latencies, errors)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut errors = 0;
        for task in tasks {
            let (l, e) = task.await?;
            latencies.extend(l);
            errors += e;
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_by(f64::total_cmp);
        Ok(LoadFigure {
            tool: "in-process (reqwest, 64 clients)".into(),
            endpoint: endpoint.into(),
            path: path.into(),
            connections: CONNECTIONS,
            seconds: elapsed,
            requests: latencies.len() as u64,
            errors,
            requests_per_second: latencies.len() as f64 / elapsed,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
        })
    }
}

/// The `q` quantile of sorted values (nearest rank); NaN when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64) * q).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn parse_wrk(text: &str, endpoint: &str, path: &str, seconds: u64) -> Option<LoadFigure> {
    let mut p50 = None;
    let mut p99 = None;
    let mut requests = None;
    let mut rate = None;
    let mut errors = 0;
    for line in text.lines().map(str::trim) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["50%", value] => p50 = duration_ms(value),
            ["99%", value] => p99 = duration_ms(value),
            [n, "requests", "in", ..] => requests = n.parse().ok(),
            ["Requests/sec:", value] => rate = value.parse().ok(),
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>().unwrap_or(0),
            _ => {}
        }
        if let Some(rest) = line.strip_prefix("Socket errors:") {
            errors += rest
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    Some(LoadFigure {
        tool: "wrk -t2".into(),
        endpoint: endpoint.into(),
        path: path.into(),
        connections: CONNECTIONS,
        seconds: seconds as f64,
        requests: requests?,
        errors,
        requests_per_second: rate?,
        p50_ms: p50?,
        p99_ms: p99?,
    })
}

fn duration_ms(value: &str) -> Option<f64> {
    let split = value.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().ok()?;
    match unit {
        "us" => Some(number / 1000.0),
        "ms" => Some(number),
        "s" => Some(number * 1000.0),
        "m" => Some(number * 60_000.0),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read() {
        let text = "Running 5s test @ http://127.0.0.1:1/health\n  2 threads and 64 connections\n  \
            Latency Distribution\n     50%  530.00us\n     75%    1.00ms\n     99%    4.20ms\n  \
            81234 requests in 5.00s, 10.00MB read\n  Non-2xx or 3xx responses: 3\n\
            Requests/sec:  16246.80\nTransfer/sec:      2.00MB\n";
        let figure = parse_wrk(text, "health", "/health", 5).expect("parsed");
        assert_eq!(figure.requests, 81234);
        assert_eq!(figure.errors, 3);
        assert!((figure.p50_ms - 0.53).abs() < 1e-9);
        assert!((figure.p99_ms - 4.2).abs() < 1e-9);
        assert!((figure.requests_per_second - 16246.8).abs() < 1e-9);
    }

    #[test]
    fn percentile_uses_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 0.5), 50.0);
        assert_eq!(percentile(&values, 0.99), 99.0);
    }
}
