//! The product's full scan, timed: N `certifyclouds-worker` processes on a fresh database, a
//! scan requested through the product's own path (`shared::scans::request`, commit, push), and
//! the wall time until the scan row is terminal. Requests come from cloudsim's counters; peak
//! memory and CPU time from `/proc` of the worker processes.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use shared::domain::ScanMode;
use shared::jobs::Queues;
use shared::scans::Requested;
use uuid::Uuid;

use crate::infra::{self, Cloudsim, Database, Process};

/// One timed scan.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScanFigure {
    pub workers: usize,
    pub latency_ms: u64,
    pub vaults: i32,
    pub vaults_failed: i32,
    pub assets: i64,
    pub expected_assets: i64,
    pub status: String,
    pub wall_seconds: f64,
    pub assets_per_second: f64,
    pub requests: serde_json::Value,
    /// Peak RSS of each worker process, MiB.
    pub worker_peak_rss_mib: Vec<f64>,
    /// CPU seconds used by the workers, cloudsim and Postgres during the scan.
    pub cpu_seconds: serde_json::Value,
    pub profile: Option<String>,
}

/// The finished scan and what was left running for the next phase.
pub struct ScanRun {
    pub figure: ScanFigure,
    /// The database holding the scanned inventory (the caller drops it).
    pub database: Database,
    pub queue_prefix: String,
}

/// Runs one full scan of the tenant in `sim` with `workers` worker processes.
pub async fn run(
    sim: &Cloudsim,
    workers: usize,
    latency_ms: u64,
    profile: bool,
) -> anyhow::Result<ScanRun> {
    let database = Database::create().await?;
    let queue_prefix = format!("ccbench:{}", Uuid::new_v4().simple());
    let result = scan(sim, &database, &queue_prefix, workers, latency_ms, profile).await;
    match result {
        Ok(figure) => Ok(ScanRun { figure, database, queue_prefix }),
        Err(e) => {
            let _dropped = database.drop_now().await;
            let _deleted = infra::delete_redis_prefix(&queue_prefix).await;
            Err(e)
        }
    }
}

async fn scan(
    sim: &Cloudsim,
    database: &Database,
    queue_prefix: &str,
    workers: usize,
    latency_ms: u64,
    profile: bool,
) -> anyhow::Result<ScanFigure> {
    let vars = infra::product_env(sim, &database.url, queue_prefix);
    let pool = shared::db::connect(&database.url, 4).await?;
    let processes: Vec<Process> = (0..workers)
        .map(|_| infra::spawn_product("certifyclouds-worker", &vars))
        .collect::<anyhow::Result<_>>()?;
    wait_for_workers(&pool, workers).await?;

    sim.set_vault_latency(latency_ms).await?;
    sim.reset_requests().await?;
    let stats = sim.admin_get("stats").await?;
    let expected = ["secrets", "keys", "certificates"]
        .iter()
        .map(|k| stats[k].as_i64().unwrap_or(0))
        .sum::<i64>();
    let cpu_before = cpu_snapshot(sim, &processes);
    let perf = if profile { start_perf(&processes) } else { None };

    let started = Instant::now();
    let queues = Queues::connect(infra::REDIS_URL, queue_prefix).await?;
    let mut tx = pool.begin().await?;
    let Requested::Recorded { scan_id, task } =
        shared::scans::request(&mut tx, ScanMode::Full, "bench", None).await?
    else {
        bail!("a scan is already active in a fresh database");
    };
    tx.commit().await?;
    queues.push_discover(task).await?;
    let scan = wait_for_scan(&pool, scan_id, &processes).await?;
    let wall = started.elapsed().as_secs_f64();

    let cpu_after = cpu_snapshot(sim, &processes);
    let profile = match perf {
        Some(perf) => finish_perf(perf),
        None => None,
    };
    let requests = sim.requests().await?;
    let worker_peak_rss_mib =
        processes.iter().filter_map(|p| infra::peak_rss_mib(p.pid())).collect();
    let assets: i64 = sqlx::query_scalar("SELECT count(*) FROM assets WHERE deleted_at IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap_or(i64::from(scan.items_found));
    for process in processes {
        process.stop();
    }
    sim.set_vault_latency(0).await?;
    pool.close().await;

    let cpu = |i: usize| cpu_after[i] - cpu_before[i];
    Ok(ScanFigure {
        workers,
        latency_ms,
        vaults: scan.vaults_total,
        vaults_failed: scan.vaults_failed,
        assets,
        expected_assets: expected,
        status: scan.status,
        wall_seconds: wall,
        assets_per_second: assets as f64 / wall,
        requests,
        worker_peak_rss_mib,
        cpu_seconds: serde_json::json!({"workers": cpu(0), "cloudsim": cpu(1), "postgres": cpu(2)}),
        profile,
    })
}

/// CPU seconds so far of the workers (summed), cloudsim and every Postgres process.
fn cpu_snapshot(sim: &Cloudsim, processes: &[Process]) -> [f64; 3] {
    let workers = processes.iter().filter_map(|p| infra::cpu_seconds(p.pid())).sum();
    let cloudsim = infra::cpu_seconds(sim.process.pid()).unwrap_or(0.0);
    [workers, cloudsim, infra::cpu_seconds_of_comm("postgres")]
}

async fn wait_for_workers(pool: &sqlx::PgPool, workers: usize) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while shared::db::workers::count_recent(pool, 30).await? < workers as i64 {
        if Instant::now() > deadline {
            bail!("{workers} worker processes did not start within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn wait_for_scan(
    pool: &sqlx::PgPool,
    scan_id: Uuid,
    processes: &[Process],
) -> anyhow::Result<shared::db::scans::Scan> {
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        let scan = shared::db::scans::get(pool, scan_id).await?.context("scan row")?;
        if !matches!(scan.status.as_str(), "queued" | "running") {
            return Ok(scan);
        }
        if Instant::now() > deadline {
            bail!("scan {scan_id} did not finish within an hour: {}", scan.status);
        }
        for p in processes {
            if infra::rss_mib(p.pid()).is_none() {
                bail!("worker process {} exited during the scan", p.pid());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Perf {
    process: Process,
    data: infra::TempDir,
}

/// Samples the first worker with `perf record` when perf is usable here.
fn start_perf(processes: &[Process]) -> Option<Perf> {
    let first = processes.first()?;
    let usable = std::process::Command::new("perf")
        .args(["stat", "-e", "instructions", "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        return None;
    }
    let data = infra::TempDir::new("perf").ok()?;
    let child = std::process::Command::new("perf")
        .args(["record", "-F", "199", "-g", "-o"])
        .arg(data.0.join("perf.data"))
        .args(["-p", &first.pid().to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    Some(Perf { process: Process { child, name: "perf".into() }, data })
}

/// Stops perf (SIGINT, so it writes its file) and returns the top of its report.
fn finish_perf(perf: Perf) -> Option<String> {
    let pid = perf.process.pid().to_string();
    let _interrupted = std::process::Command::new("kill").args(["-INT", &pid]).status();
    let mut process = perf.process;
    let _waited = process.child.wait();
    let file = perf.data.0.join("perf.data");
    let output = std::process::Command::new("perf")
        .args(["report", "--stdio", "--no-children", "--percent-limit", "1.5", "-g", "none"])
        .args(["--sort", "dso,symbol", "-i"])
        .arg(&file)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .take(25)
        .map(|l| {
            let mut words: Vec<&str> = l.split_whitespace().collect();
            while words.last() == Some(&"-") {
                words.pop();
            }
            words.join(" ")
        })
        .collect();
    Some(lines.join("\n"))
}
