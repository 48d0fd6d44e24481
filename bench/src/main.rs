//! `certifyclouds-bench`: the performance suite. It generates a tenant in cloudsim, times the
//! product's full scan with one and two worker processes (with and without added latency)
//! beside a raw Rust lister (the ceiling) and a Python SDK script (the alternative), loads the
//! API, times no-op jobs through the queue, reads peak memory, times a compliance and an alert
//! evaluation over the scanned inventory, and writes a Markdown and a JSON report with every
//! figure and each ratio against its target.
//!
//! `--smoke` runs a tiny tenant in about a minute (CI); it skips wrk and redis-benchmark when
//! they are not installed and never writes to bench/reports.

mod api_load;
mod ceiling;
mod evaluation;
mod infra;
mod python;
mod queue;
mod report;
mod scan;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use serde_json::{Value, json};

use crate::infra::{Cloudsim, TenantSize};
use crate::report::Ratio;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(about = "CertifyClouds benchmark suite: scan, API, queue, memory")]
struct Args {
    /// Tiny tenant and short loads, for CI; writes to target/bench-smoke unless --out is given.
    #[arg(long)]
    smoke: bool,
    /// Vaults in the generated tenant.
    #[arg(long, default_value_t = 1000)]
    vaults: usize,
    /// Items per vault (60% secrets, 20% keys, 20% certificates).
    #[arg(long, default_value_t = 100)]
    items: usize,
    /// Added per-request latency of the latency runs, ms.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Vaults the Python script lists (0: all); its rate per asset is what is compared.
    #[arg(long, default_value_t = 100)]
    python_vaults: usize,
    /// Seconds of each API load.
    #[arg(long, default_value_t = 10)]
    load_seconds: u64,
    /// Skip the half-size tenant of the memory flatness check.
    #[arg(long)]
    no_flatness: bool,
    /// Skip the perf profile of the one-worker scan.
    #[arg(long)]
    no_profile: bool,
    /// Only the API phase (one scan to fill the inventory, then the loads); for working on the
    /// API. Writes to target/bench-api unless --out is given.
    #[arg(long)]
    only_api: bool,
    /// Only the one- and two-worker scans at the added latency (and at 0 ms); for working on the
    /// scan. Writes to target/bench-scan unless --out is given.
    #[arg(long, conflicts_with = "only_api")]
    only_scan: bool,
    /// With --only-api: after the scan, start the API, write its address, token and
    /// environment to target/bench-api/hold.env and wait (up to an hour) instead of loading it,
    /// for loading by hand; stops when that file is deleted.
    #[arg(long, requires = "only_api")]
    hold: bool,
    /// Folder of latest.md and latest.json (default: bench/reports, or target/bench-smoke).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.vaults = 10;
        args.items = 20;
        args.python_vaults = 0;
        args.load_seconds = 2;
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let root = infra::repo_root();
        if args.only_api {
            root.join("target").join("bench-api")
        } else if args.only_scan {
            root.join("target").join("bench-scan")
        } else if args.smoke {
            root.join("target").join("bench-smoke")
        } else {
            root.join("bench").join("reports")
        }
    });
    let started = Instant::now();
    let report = if args.only_api {
        run_api_only(&args).await?
    } else if args.only_scan {
        run_scan_only(&args).await?
    } else {
        run(&args).await?
    };
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("latest.json"), serde_json::to_string_pretty(&report)?)?;
    std::fs::write(out.join("latest.md"), report::markdown(&report))?;
    eprintln!(
        "bench: done in {:.0} s; report in {}",
        started.elapsed().as_secs_f64(),
        out.join("latest.md").display()
    );
    Ok(())
}

fn step(what: &str) {
    eprintln!("bench: {} {what}", chrono::Utc::now().format("%H:%M:%S"));
}

async fn run(args: &Args) -> anyhow::Result<Value> {
    let size = TenantSize { vaults: args.vaults, items_per_vault: args.items };
    let mut notes: Vec<String> = Vec::new();
    let machine = report::machine_facts();

    // Memory flatness: the same one-worker scan on a tenant half the size.
    let half = if args.no_flatness {
        None
    } else {
        let half = TenantSize { vaults: (args.vaults / 2).max(1), items_per_vault: args.items };
        step(&format!("starting cloudsim with {} vaults (half tenant)", half.vaults));
        let sim = Cloudsim::start(half)?;
        step("scan: 1 worker, half tenant");
        let run = scan::run(&sim, 1, 0, false).await?;
        run.database.drop_now().await?;
        infra::delete_redis_prefix(&run.queue_prefix).await?;
        let mut figure = serde_json::to_value(&run.figure)?;
        figure["label"] = json!("half tenant");
        Some(figure)
    };

    step(&format!(
        "starting cloudsim with {} vaults x {} items",
        size.vaults, size.items_per_vault
    ));
    let sim = Cloudsim::start(size)?;
    notes.push(format!(
        "cloudsim loaded the tenant in {:.1} s; latency is added by a cloudsim latency fault on \
         every vault's data plane (tokens and Resource Manager are not delayed).",
        sim.load_seconds
    ));

    let mut ceilings = Vec::new();
    for latency in [0, args.latency_ms] {
        step(&format!("ceiling at {latency} ms"));
        ceilings.push(ceiling::run(&sim, latency).await?);
    }

    let python = if python::interpreter().is_some() {
        step("python alternative");
        match python::run(&sim, args.python_vaults).await {
            Ok(p) => Some(p),
            Err(e) => {
                notes.push(format!("the Python alternative failed: {e:#}"));
                None
            }
        }
    } else {
        notes.push("no Python venv (scripts/python-venv.sh): the alternative was not run".into());
        None
    };

    let mut scans = Vec::new();
    let mut kept = None;
    let configs = [(1, 0), (2, 0), (1, args.latency_ms), (2, args.latency_ms)];
    for (i, (workers, latency)) in configs.into_iter().enumerate() {
        step(&format!("scan: {workers} worker process(es), {latency} ms"));
        let profile = i == 0 && !args.no_profile;
        let run = scan::run(&sim, workers, latency, profile).await?;
        scans.push(run.figure.clone());
        if i == 0 {
            kept = Some(run);
        } else {
            run.database.drop_now().await?;
            infra::delete_redis_prefix(&run.queue_prefix).await?;
        }
    }
    let kept = kept.context("the first scan")?;

    step("compliance and alert evaluation, then the API under load");
    let api = api_phase(&sim, &kept, args, &mut notes).await;
    kept.database.drop_now().await?;
    infra::delete_redis_prefix(&kept.queue_prefix).await?;
    let (api, evaluation) = api.unwrap_or_else(|e| {
        notes.push(format!("the API load or the evaluations failed: {e:#}"));
        (Value::Null, Value::Null)
    });
    sim.process.stop();

    step("queue");
    let (latency_jobs, throughput_jobs) = if args.smoke { (20, 500) } else { (100, 5000) };
    let queue = match queue::run(latency_jobs, throughput_jobs).await {
        Ok(q) => Some(q),
        Err(e) => {
            notes.push(format!("the queue benchmark failed: {e:#}"));
            None
        }
    };
    if !infra::on_path("redis-benchmark") {
        notes.push("redis-benchmark is not installed: the queue ceiling was not measured".into());
    }
    if let Some(lost) = queue.as_ref().map(|q| q.lost_jobs).filter(|n| *n > 0) {
        notes.push(format!("{lost} no-op job(s) did not start within their timeout (10 s)"));
    }

    let mut scan_values: Vec<Value> =
        scans.iter().map(serde_json::to_value).collect::<Result<_, _>>()?;
    let profile = scans.first().and_then(|s| s.profile.clone());
    for s in &mut scan_values {
        s.as_object_mut().map(|o| o.remove("profile"));
    }
    if profile.is_none() && !args.no_profile {
        notes.push("perf is not usable here: no profile was taken".into());
    }
    let ratios = ratios(&scans, &ceilings, python.as_ref(), &api, queue.as_ref(), half.as_ref());
    let memory = memory(&scans, &api, half.as_ref(), size);
    if let Some(h) = half {
        scan_values.push(h);
    }
    notes.push(
        "Evaluations run before the API load, on the inventory of the first one-worker scan, with \
         one worker process; alert rules are in digest mode, so evaluating sends nothing."
            .into(),
    );
    notes.push(format!(
        "Python: `bench/python/list_tenant.py` (one thread, Microsoft's SDKs) listed {} of the \
         tenant; the comparison is per asset.",
        if args.python_vaults == 0 {
            "all vaults".to_owned()
        } else {
            format!("the first {} vaults", args.python_vaults)
        }
    ));
    notes.push(
        "The scans run on fresh databases (inserts); the API load reads the inventory of the \
         first one-worker scan."
            .into(),
    );

    Ok(json!({
        "mode": if args.smoke { "smoke" } else { "full" },
        "tenant": size.describe(),
        "latencyMs": args.latency_ms,
        "machine": machine,
        "ratios": ratios,
        "scans": scan_values,
        "ceiling": ceilings,
        "python": python,
        "api": api,
        "queue": queue,
        "memory": memory,
        "evaluation": evaluation,
        "profile": profile,
        "notes": notes,
    }))
}

/// The scans alone: one and two workers, at 0 ms and at the added latency.
async fn run_scan_only(args: &Args) -> anyhow::Result<Value> {
    let size = TenantSize { vaults: args.vaults, items_per_vault: args.items };
    step(&format!(
        "starting cloudsim with {} vaults x {} items",
        size.vaults, size.items_per_vault
    ));
    let sim = Cloudsim::start(size)?;
    let mut scans = Vec::new();
    for (workers, latency) in [(1, 0), (2, 0), (1, args.latency_ms), (2, args.latency_ms)] {
        step(&format!("scan: {workers} worker process(es), {latency} ms"));
        let run = scan::run(&sim, workers, latency, false).await?;
        scans.push(run.figure.clone());
        run.database.drop_now().await?;
        infra::delete_redis_prefix(&run.queue_prefix).await?;
    }
    sim.process.stop();
    let ratios = ratios(&scans, &[], None, &Value::Null, None, None);
    Ok(json!({
        "mode": "only-scan",
        "tenant": size.describe(),
        "latencyMs": args.latency_ms,
        "machine": report::machine_facts(),
        "ratios": ratios,
        "scans": scans,
        "notes": ["--only-scan: the four scans; no other figures"],
    }))
}

/// One scan, then the API phase alone.
async fn run_api_only(args: &Args) -> anyhow::Result<Value> {
    let size = TenantSize { vaults: args.vaults, items_per_vault: args.items };
    let mut notes = vec!["--only-api: one scan, then the API phase; no other figures".to_owned()];
    step(&format!(
        "starting cloudsim with {} vaults x {} items",
        size.vaults, size.items_per_vault
    ));
    let sim = Cloudsim::start(size)?;
    step("scan: 1 worker process, 0 ms");
    let kept = scan::run(&sim, 1, 0, false).await?;
    if args.hold {
        let vars = infra::product_env(&sim, &kept.database.url, &kept.queue_prefix);
        let api = api_load::start(&vars).await?;
        let file = infra::repo_root().join("target").join("bench-api").join("hold.env");
        std::fs::create_dir_all(file.parent().context("folder")?)?;
        let mut text = format!("API_URL={}\nTOKEN={}\n", api.url, api.token);
        for (k, v) in &vars {
            text.push_str(&format!("{k}={v}\n"));
        }
        std::fs::write(&file, text)?;
        step(&format!("holding; delete {} to stop", file.display()));
        let until = Instant::now() + std::time::Duration::from_secs(3600);
        while file.exists() && Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        api.process.stop();
        kept.database.drop_now().await?;
        infra::delete_redis_prefix(&kept.queue_prefix).await?;
        sim.process.stop();
        anyhow::bail!("held; no report written");
    }
    step("compliance and alert evaluation, then the API under load");
    let api = api_phase(&sim, &kept, args, &mut notes).await;
    kept.database.drop_now().await?;
    infra::delete_redis_prefix(&kept.queue_prefix).await?;
    sim.process.stop();
    let (api, evaluation) = api?;
    let ratios = ratios(&[], &[], None, &api, None, None);
    Ok(json!({
        "mode": "only-api",
        "tenant": size.describe(),
        "latencyMs": 0,
        "machine": report::machine_facts(),
        "ratios": ratios,
        "api": api,
        "evaluation": evaluation,
        "notes": notes,
    }))
}

async fn api_phase(
    sim: &Cloudsim,
    kept: &scan::ScanRun,
    args: &Args,
    notes: &mut Vec<String>,
) -> anyhow::Result<(Value, Value)> {
    let vars = infra::product_env(sim, &kept.database.url, &kept.queue_prefix);
    let api = api_load::start(&vars).await?;

    // First, so that `GET /compliance/score` below reads a real evaluation.
    step("compliance and alert evaluation");
    let evaluation = match evaluation::run(&api, &vars, &kept.database.url).await {
        Ok(figures) => serde_json::to_value(figures)?,
        Err(e) => {
            notes.push(format!("the evaluations failed: {e:#}"));
            Value::Null
        }
    };

    step("API under load");
    let (filtered, total) = api.filtered_path().await?;
    let mut loads = Vec::new();
    let wrk = infra::on_path("wrk");
    if !wrk {
        notes.push("wrk is not installed: only the in-process load generator ran".into());
    }
    let endpoints =
        [("filtered", filtered.as_str()), ("score", "/compliance/score"), ("health", "/health")];
    for (endpoint, path) in endpoints {
        if wrk {
            loads.push(api.wrk(endpoint, path, args.load_seconds)?);
        }
        let cap = if args.smoke { 3000 } else { 200_000 };
        loads.push(api.in_process(endpoint, path, args.load_seconds, cap).await?);
    }
    if loads.iter().any(|l| l.tool.starts_with("wrk") && l.errors > 0) {
        notes.push(
            "wrk gives up on a request after 2 s and counts it as an error, so its p99 is capped \
             at 2 s where errors show; the in-process figures have no such cap."
                .into(),
        );
    }
    let peak = infra::peak_rss_mib(api.process.pid());
    let hits = api.cache_hits().await.unwrap_or_default();
    api.process.stop();

    // The same filtered page from a replica with both caches turned off: what every request
    // costs when neither the token check nor the page is held (a cold or changing inventory).
    step("API under load, caches off");
    let mut cold_vars = vars.clone();
    cold_vars.insert("API_CACHE_SECONDS".into(), "0".into());
    cold_vars.insert("API_AUTH_CACHE_SECONDS".into(), "0".into());
    let cold = api_load::start(&cold_vars).await?;
    if wrk {
        loads.push(cold.wrk("filtered, caches off", &filtered, args.load_seconds)?);
    }
    let cap = if args.smoke { 3000 } else { 200_000 };
    loads.push(cold.in_process("filtered, caches off", &filtered, args.load_seconds, cap).await?);
    cold.process.stop();

    let load = json!({"load": loads, "peakRssMib": peak, "filteredTotal": total,
                      "filteredPath": filtered, "cacheLookups": hits});
    Ok((load, evaluation))
}

fn ratios(
    scans: &[scan::ScanFigure],
    ceilings: &[ceiling::CeilingFigure],
    python: Option<&python::PythonFigure>,
    api: &Value,
    queue: Option<&queue::QueueFigure>,
    half: Option<&Value>,
) -> Vec<Ratio> {
    let rate = |w: usize, l: bool| {
        scans
            .iter()
            .find(|s| s.workers == w && (s.latency_ms > 0) == l)
            .map(|s| s.assets_per_second)
            .unwrap_or(f64::NAN)
    };
    let mut out = Vec::new();
    if let Some(p) = python {
        out.push(Ratio::at_least(
            "scan_one_worker_vs_python",
            "one-worker scan rate / Python SDK script rate (0 ms)",
            rate(1, false) / p.assets_per_second,
            5.0,
            "x",
        ));
    }
    if let Some(c) = ceilings.first() {
        out.push(Ratio::at_least(
            "scan_one_worker_vs_ceiling",
            "one-worker scan rate / raw listing ceiling (0 ms)",
            rate(1, false) / c.assets_per_second,
            0.5,
            "x",
        ));
    }
    out.push(Ratio::at_least(
        "scan_two_workers_vs_one_latency",
        "two-worker / one-worker scan rate at the added latency",
        rate(2, true) / rate(1, true),
        1.6,
        "x",
    ));
    out.push(Ratio::at_least(
        "scan_two_workers_vs_one_no_latency",
        "two-worker / one-worker scan rate at 0 ms (no target; for reading)",
        rate(2, false) / rate(1, false),
        1.0,
        "x",
    ));
    let p99_of = |endpoint: &str| {
        let loads = api["load"].as_array().into_iter().flatten();
        let mut of = loads.filter(|l| l["endpoint"] == endpoint).peekable();
        let first = of.peek().cloned();
        of.find(|l| l["tool"].as_str().is_some_and(|t| t.starts_with("wrk")))
            .or(first)
            .and_then(|l| l["p99Ms"].as_f64())
            .unwrap_or(f64::NAN)
    };
    out.push(Ratio::below(
        "api_filtered_p99_ms",
        "p99 of the filtered, paged asset list at 64 connections",
        p99_of("filtered"),
        25.0,
        "ms",
    ));
    out.push(Ratio::below(
        "api_filtered_caches_off_p99_ms",
        "the same with the token and page caches off (for reading: every request to Postgres)",
        p99_of("filtered, caches off"),
        25.0,
        "ms",
    ));
    out.push(Ratio::below(
        "queue_enqueue_to_start_p50_ms",
        "enqueue-to-start p50 of a no-op job (idle worker)",
        queue.map(|q| q.enqueue_to_start_p50_ms).unwrap_or(f64::NAN),
        10.0,
        "ms",
    ));
    let peak = scans.first().and_then(|s| s.worker_peak_rss_mib.first().copied());
    out.push(Ratio::below(
        "worker_peak_rss_mib",
        "worker peak RSS, one-worker scan of the whole tenant",
        peak.unwrap_or(f64::NAN),
        150.0,
        "MiB",
    ));
    if let (Some(peak), Some(h)) = (peak, half) {
        let half_peak = h["workerPeakRssMib"][0].as_f64().unwrap_or(f64::NAN);
        out.push(Ratio::below(
            "worker_peak_rss_growth_when_tenant_doubles",
            "worker peak RSS (whole tenant) / (half tenant); flat means close to 1",
            peak / half_peak,
            1.2,
            "x",
        ));
    }
    out
}

fn memory(
    scans: &[scan::ScanFigure],
    api: &Value,
    half: Option<&Value>,
    size: TenantSize,
) -> Value {
    let peak = scans.first().and_then(|s| s.worker_peak_rss_mib.first().copied());
    json!({
        "workerPeakRssMibWholeTenant": peak,
        "wholeTenantAssets": size.assets(),
        "workerPeakRssMibHalfTenant": half.map(|h| h["workerPeakRssMib"][0].clone()),
        "halfTenantAssets": half.map(|h| h["expectedAssets"].clone()),
        "apiPeakRssMibUnderLoad": api["peakRssMib"],
    })
}
