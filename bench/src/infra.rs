//! What every benchmark stands on: a cloudsim process with a generated tenant, a Postgres
//! database and a Redis key prefix of the run's own, product processes started from the
//! workspace binaries, and readings of a process's peak memory and CPU time from `/proc`.
//!
//! Everything started here is stopped by `Drop` (processes are killed by their id, the
//! database dropped, the Redis keys under the prefix deleted), so a failed run leaves nothing.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use uuid::Uuid;

/// The Postgres server every run creates its database on.
pub const ADMIN_DB_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// The Redis every run uses, under a key prefix of its own.
pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A fresh folder under the system temp dir.
    pub fn new(tag: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("cc-bench-{tag}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("bench: could not remove {}: {e}", self.0.display());
        }
    }
}

/// A child process killed (by its id) and reaped on drop.
pub struct Process {
    pub child: Child,
    pub name: String,
}

impl Process {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the process now and waits for it.
    pub fn stop(mut self) {
        self.kill();
    }

    fn kill(&mut self) {
        if let Ok(None) = self.child.try_wait()
            && let Err(e) = self.child.kill()
        {
            eprintln!("bench: could not stop {}: {e}", self.name);
        }
        let _reaped = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A binary of the workspace, beside this one (target/<profile>/), or from `<NAME>_BIN`.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let variable = format!("{}_BIN", name.to_ascii_uppercase().replace('-', "_"));
    if let Ok(path) = std::env::var(variable) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let path = exe.parent().context("bench binary path")?.join(name);
    if !path.is_file() {
        bail!(
            "{} is missing: build it beside the bench (cargo build [--release] -p \
             certifyclouds-bench -p certifyclouds-worker -p certifyclouds-api -p cloudsim)",
            path.display()
        );
    }
    Ok(path)
}

/// The size of a generated tenant.
#[derive(Debug, Clone, Copy)]
pub struct TenantSize {
    pub vaults: usize,
    pub items_per_vault: usize,
}

impl TenantSize {
    /// The scenario: about 100 vaults per subscription; items 60% secrets, 20% keys and 20%
    /// certificates (a fifth certificates, each with its backing key and secret).
    pub fn scenario(&self) -> Value {
        let per_sub = self.vaults.min(100);
        let subscriptions = self.vaults.div_ceil(per_sub.max(1));
        let certificates = self.items_per_vault / 5;
        let keys = self.items_per_vault / 5;
        let secrets = self.items_per_vault - certificates - keys;
        json!({"generate": {
            "subscriptions": subscriptions, "vaultsPerSubscription": per_sub,
            "secretsPerVault": secrets, "keysPerVault": keys,
            "certificatesPerVault": certificates, "seed": 42
        }})
    }

    /// The tenant as the report shows it.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::json!({"vaults": self.vaults, "itemsPerVault": self.items_per_vault,
            "assets": self.assets(), "split": "60% secrets, 20% keys, 20% certificates"})
    }

    /// Vaults times items.
    pub fn assets(&self) -> usize {
        self.vaults * self.items_per_vault
    }
}

/// A running cloudsim with its environment (`cloud.env`) and an admin client.
pub struct Cloudsim {
    pub process: Process,
    pub url: String,
    pub env: HashMap<String, String>,
    pub http: reqwest::Client,
    pub ca_pem: Vec<u8>,
    pub load_seconds: f64,
    _dir: TempDir,
}

impl Cloudsim {
    /// Starts cloudsim with a generated tenant and waits for its ready line.
    pub fn start(size: TenantSize) -> anyhow::Result<Self> {
        let dir = TempDir::new("sim")?;
        let scenario = dir.0.join("scenario.json");
        std::fs::write(&scenario, size.scenario().to_string())?;
        let started = Instant::now();
        let mut child = Command::new(workspace_binary("cloudsim")?)
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(&dir.0)
            .arg("--scenario")
            .arg(&scenario)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting cloudsim")?;
        let stdout = child.stdout.take().context("cloudsim stdout")?;
        let process = Process { child, name: "cloudsim".into() };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("cloudsim ready ") else {
            bail!("cloudsim did not become ready: {line:?}");
        };
        let load_seconds = started.elapsed().as_secs_f64();

        let env: HashMap<String, String> = std::fs::read_to_string(dir.0.join("cloud.env"))?
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let ca_pem = std::fs::read(env.get("AZURE_CA_BUNDLE").context("CA bundle")?)?;
        let http = reqwest::Client::builder()
            .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&ca_pem)?)
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self { process, url: url.to_owned(), env, http, ca_pem, load_seconds, _dir: dir })
    }

    /// `GET /_sim/<path>` as JSON.
    pub async fn admin_get(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.http.get(format!("{}/_sim/{path}", self.url)).send().await?;
        Ok(response.error_for_status()?.json().await?)
    }

    /// Clears the request counters and the request log.
    pub async fn reset_requests(&self) -> anyhow::Result<()> {
        self.http.delete(format!("{}/_sim/requests", self.url)).send().await?.error_for_status()?;
        Ok(())
    }

    /// Requests served since the last reset, in total and by target kind (vault, arm, token).
    pub async fn requests(&self) -> anyhow::Result<Value> {
        let counters = self.admin_get("requests").await?;
        let mut by_kind: HashMap<String, u64> = HashMap::new();
        let mut non_2xx = 0;
        let mut total = 0;
        for (target, statuses) in counters.as_object().into_iter().flatten() {
            let kind = target.split(':').next().unwrap_or(target).to_owned();
            for (status, n) in statuses.as_object().into_iter().flatten() {
                let n = n.as_u64().unwrap_or(0);
                total += n;
                *by_kind.entry(kind.clone()).or_default() += n;
                if !status.starts_with('2') {
                    non_2xx += n;
                }
            }
        }
        Ok(json!({"total": total, "byTarget": by_kind, "non2xx": non_2xx}))
    }

    /// Adds `latency_ms` before every data-plane request of every vault (0 clears the faults).
    pub async fn set_vault_latency(&self, latency_ms: u64) -> anyhow::Result<()> {
        self.http.delete(format!("{}/_sim/faults", self.url)).send().await?.error_for_status()?;
        if latency_ms == 0 {
            return Ok(());
        }
        let vaults = self.admin_get("vaults").await?;
        let names: Vec<String> = vaults
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v["name"].as_str().map(str::to_owned))
            .collect();
        let posts = names.iter().map(|name| {
            self.http
                .post(format!("{}/_sim/faults", self.url))
                .json(&json!({"target": format!("vault:{name}"), "latencyMs": latency_ms}))
                .send()
        });
        let results = futures::future::join_all(posts).await;
        for result in results {
            result?.error_for_status()?;
        }
        Ok(())
    }
}

/// A Postgres database of the run's own, dropped on `drop_now` (or leaked with a warning).
pub struct Database {
    pub name: String,
    pub url: String,
    dropped: bool,
}

impl Database {
    /// Creates `cc_bench_<random>` and runs the product's migrations on it.
    pub async fn create() -> anyhow::Result<Self> {
        let name = format!("cc_bench_{}", Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(ADMIN_DB_URL).await.context("Postgres (admin)")?;
        // The name is generated from a UUID above, never from input.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await?;
        admin.close().await;
        let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
        let pool = shared::db::connect(&url, 2).await?;
        shared::db::migrate(&pool).await?;
        pool.close().await;
        Ok(Self { name, url, dropped: false })
    }

    /// Drops the database, closing whatever is still connected.
    pub async fn drop_now(mut self) -> anyhow::Result<()> {
        let admin = sqlx::PgPool::connect(ADMIN_DB_URL).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        )))
        .execute(&admin)
        .await?;
        self.dropped = true;
        Ok(())
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if !self.dropped {
            eprintln!("bench: database {} was not dropped; drop it by hand", self.name);
        }
    }
}

/// Deletes every Redis key under `prefix`.
pub async fn delete_redis_prefix(prefix: &str) -> anyhow::Result<u64> {
    let client = redis::Client::open(REDIS_URL)?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// The product's environment for one run: cloudsim's variables plus database, Redis prefix and
/// quiet defaults (no schedules, no metrics listener).
pub fn product_env(
    sim: &Cloudsim,
    database_url: &str,
    queue_prefix: &str,
) -> HashMap<String, String> {
    let mut vars = sim.env.clone();
    vars.insert("DATABASE_URL".into(), database_url.into());
    vars.insert("REDIS_URL".into(), REDIS_URL.into());
    vars.insert("QUEUE_PREFIX".into(), queue_prefix.into());
    vars.insert("SECRET_KEY".into(), "bench-secret-key-that-is-long-enough-0123".into());
    vars.insert("ADMIN_PASSWORD".into(), BENCH_PASSWORD.into());
    vars.insert("SCAN_SCHEDULE_DELTA".into(), "off".into());
    vars.insert("SCAN_SCHEDULE_FULL".into(), "off".into());
    vars.insert("WORKER_METRICS_ADDR".into(), "off".into());
    vars.insert("RETENTION_SCHEDULE".into(), "off".into());
    // The load test is one client hammering on purpose: lift the per-address limits (each
    // request still pays the limiter's Redis round trip).
    for limit in ["RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_PER_HOUR", "LOGIN_RATE_LIMIT_PER_MINUTE"] {
        vars.insert(limit.into(), "1000000000".into());
    }
    vars.insert("RUST_LOG".into(), "warn".into());
    // For experiments: `BENCH_SET_<NAME>=value` in the bench's environment sets <NAME> for the
    // product (for example BENCH_SET_WORKER_CONCURRENCY=16).
    for (name, value) in std::env::vars() {
        if let Some(name) = name.strip_prefix("BENCH_SET_") {
            vars.insert(name.to_owned(), value);
        }
    }
    vars
}

/// The bootstrap admin's password in bench databases.
pub const BENCH_PASSWORD: &str = "bench password that nobody types";

/// Starts a workspace binary with exactly `vars` (plus PATH).
pub fn spawn_product(binary: &str, vars: &HashMap<String, String>) -> anyhow::Result<Process> {
    let mut command = Command::new(workspace_binary(binary)?);
    command.env_clear().envs(vars).stdout(Stdio::null()).stderr(Stdio::null());
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    let child = command.spawn().with_context(|| format!("starting {binary}"))?;
    Ok(Process { child, name: binary.to_owned() })
}

/// A free loopback port (bound, read, released).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Peak resident set size (`VmHWM`) of a process, in MiB.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    status_field_kib(pid, "VmHWM:").map(|kib| kib as f64 / 1024.0)
}

/// Current resident set size (`VmRSS`) of a process, in MiB.
pub fn rss_mib(pid: u32) -> Option<f64> {
    status_field_kib(pid, "VmRSS:").map(|kib| kib as f64 / 1024.0)
}

fn status_field_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time a process has used, in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces: fields count from after its closing parenthesis.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// CPU seconds of every process whose command name is `comm` (e.g. the Postgres backends).
pub fn cpu_seconds_of_comm(comm: &str) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == comm)
        })
        .filter_map(cpu_seconds)
        .sum()
}

/// Whether a program is on PATH.
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
        .unwrap_or(false)
}

/// The output of a command, or `None` when it cannot run.
pub fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).stderr(Stdio::null()).output().ok()?;
    Some(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The repository root (the parent of this crate's folder).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}
