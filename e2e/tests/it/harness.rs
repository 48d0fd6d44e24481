//! `TestApp`: a cloudsim, a migrated database of its own, an API bound on port 0 and, when
//! asked, an in-process worker; plus helpers to call the API as a logged-in user.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use shared::config::Config;
use uuid::Uuid;

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";
const ADMIN_DB_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A running cloudsim process, killed on drop.
pub struct Cloudsim {
    child: Child,
    pub url: String,
    pub env: HashMap<String, String>,
    pub http: reqwest::Client,
    _dir: TempDir,
}

impl Drop for Cloudsim {
    fn drop(&mut self) {
        if let Err(e) = self.child.kill() {
            eprintln!("cloudsim was already gone: {e}");
        }
        let _reaped = self.child.wait();
    }
}

/// A folder removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    fn new(tag: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!("cc-{tag}-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("could not remove {}: {e}", self.0.display());
        }
    }
}

/// A binary of the workspace: from `<NAME>_BIN` if set, else beside the test binary. Test
/// binaries live in target/<profile>/deps; cargo builds the cloudsim and worker binaries into
/// target/<profile> because those crates have integration tests of their own.
pub fn workspace_binary(name: &str) -> anyhow::Result<PathBuf> {
    let variable = format!("{}_BIN", name.to_ascii_uppercase().replace('-', "_"));
    if let Ok(path) = std::env::var(variable) {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let profile_dir = exe.parent().and_then(|d| d.parent()).context("test binary path")?;
    let path = profile_dir.join(name);
    if !path.is_file() {
        bail!("{} is missing: run the workspace tests (cargo test --workspace)", path.display());
    }
    Ok(path)
}

fn cloudsim_binary() -> anyhow::Result<PathBuf> {
    workspace_binary("cloudsim")
}

impl Cloudsim {
    /// Starts cloudsim on a free port with the given scenario (or the embedded default) and
    /// waits for its ready line.
    pub fn start(scenario: Option<&str>) -> anyhow::Result<Self> {
        let dir = TempDir::new("sim")?;
        let mut command = Command::new(cloudsim_binary()?);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--state-dir"])
            .arg(&dir.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(json) = scenario {
            let file = dir.0.join("scenario.json");
            std::fs::write(&file, json)?;
            command.arg("--scenario").arg(file);
        }
        let mut child = command.spawn().context("starting cloudsim")?;
        let stdout = child.stdout.take().context("cloudsim stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let Some(url) = line.trim().strip_prefix("cloudsim ready ") else {
            let _killed = child.kill();
            bail!("cloudsim did not become ready: {line:?}");
        };

        let env: HashMap<String, String> = std::fs::read_to_string(dir.0.join("cloud.env"))?
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let ca = std::fs::read(env.get("AZURE_CA_BUNDLE").context("CA bundle")?)?;
        let http = reqwest::Client::builder()
            .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&ca)?)
            .build()?;
        Ok(Self { child, url: url.to_owned(), env, http, _dir: dir })
    }

    /// Installs a fault through cloudsim's admin API (`POST /_sim/faults`).
    pub async fn fault(&self, fault: &serde_json::Value) -> anyhow::Result<()> {
        let url = format!("{}/_sim/faults", self.url);
        let response = self.http.post(url).json(fault).send().await?;
        anyhow::ensure!(response.status().is_success(), "fault refused: {}", response.status());
        Ok(())
    }

    /// `GET /_sim/stats`.
    pub async fn stats(&self) -> anyhow::Result<Value> {
        Ok(self.http.get(format!("{}/_sim/stats", self.url)).send().await?.json().await?)
    }

    /// cloudsim's vaults as its admin API lists them (`GET /_sim/vaults`).
    pub async fn vaults(&self) -> anyhow::Result<Value> {
        Ok(self.http.get(format!("{}/_sim/vaults", self.url)).send().await?.json().await?)
    }
}

/// The product under test.
pub struct TestApp {
    pub api_url: String,
    pub http: reqwest::Client,
    pub cloudsim: Cloudsim,
    pub config: Config,
    /// The environment the product was configured from, for worker processes.
    pub vars: HashMap<String, String>,
    pub database: String,
    pub pool: sqlx::PgPool,
    workers: Vec<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>)>,
    /// The state of each in-process worker, so tests can watch live settings arrive.
    pub worker_states: Vec<worker::WorkerState>,
}

/// How a test wants its app.
#[derive(Default)]
pub struct Options<'a> {
    pub scenario: Option<&'a str>,
    pub without_worker: bool,
    pub extra_env: Vec<(&'a str, String)>,
}

impl TestApp {
    /// An app with a worker and the default scenario.
    pub async fn spawn() -> anyhow::Result<Self> {
        Self::spawn_with(Options::default()).await
    }

    /// An app as `options` describe.
    pub async fn spawn_with(options: Options<'_>) -> anyhow::Result<Self> {
        let cloudsim = Cloudsim::start(options.scenario)?;

        let database = format!("cc_test_{}", Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(ADMIN_DB_URL).await.context("Postgres for tests")?;
        // The name is generated from a UUID above, never from input.
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}")))
            .execute(&admin)
            .await?;
        admin.close().await;
        let database_url = format!("postgres://postgres@127.0.0.1:5432/{database}");

        let mut vars: HashMap<String, String> = cloudsim.env.clone();
        vars.insert("DATABASE_URL".into(), database_url.clone());
        vars.insert("REDIS_URL".into(), REDIS_URL.into());
        vars.insert("QUEUE_PREFIX".into(), format!("cctest:{}", Uuid::new_v4().simple()));
        vars.insert("SECRET_KEY".into(), "test-secret-key-that-is-long-enough-0123".into());
        vars.insert("ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into());
        vars.insert("WORKER_CONCURRENCY".into(), "4".into());
        // No unattended scans unless a test asks for them.
        vars.insert("SCAN_SCHEDULE_DELTA".into(), "off".into());
        vars.insert("SCAN_SCHEDULE_FULL".into(), "off".into());
        vars.insert("WORKER_METRICS_ADDR".into(), "off".into());
        vars.insert("RETENTION_SCHEDULE".into(), "off".into());
        vars.insert("ALERT_EVALUATION_SCHEDULE".into(), "off".into());
        vars.insert("ALERT_DIGEST_SCHEDULE".into(), "off".into());
        // Alert peers are on loopback; retries are quick so failure tests stay short.
        vars.insert("OUTBOUND_ALLOW_PRIVATE".into(), "true".into());
        // ... and only they: no test (nor the hostile client) can reach a public address, and
        // PagerDuty's default endpoint is replaced by a closed loopback port.
        vars.insert("OUTBOUND_ALLOW_PUBLIC".into(), "false".into());
        vars.insert("PAGERDUTY_EVENTS_URL".into(), "http://127.0.0.1:9/v2/enqueue".into());
        vars.insert("ALERT_RETRY_BASE_MS".into(), "200".into());
        vars.insert("ALERT_SEND_TIMEOUT_SECONDS".into(), "5".into());
        // Tests poll often; the rate-limit test sets its own limits.
        for limit in ["RATE_LIMIT_PER_MINUTE", "RATE_LIMIT_PER_HOUR", "LOGIN_RATE_LIMIT_PER_MINUTE"]
        {
            vars.insert(limit.into(), "1000000".into());
        }
        vars.insert("CERTIFYCLOUDS_LICENSE_TEST_KEY".into(), "true".into());
        vars.insert("METRICS_TOKEN".into(), "scraper-token-for-tests".into());
        for (k, v) in options.extra_env {
            vars.insert(k.to_owned(), v);
        }
        let config = Config::from_lookup(|k| vars.get(k).cloned())?;
        let vars_for_processes = vars.clone();

        let state = api::prepare(config.clone()).await?;
        let pool = state.pool.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let api_url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(api::serve(listener, state, std::future::pending()));

        let mut app = Self {
            api_url,
            http: reqwest::Client::new(),
            cloudsim,
            config,
            vars: vars_for_processes,
            database,
            pool,
            workers: Vec::new(),
            worker_states: Vec::new(),
        };
        if !options.without_worker {
            app.start_worker().await?;
        }
        Ok(app)
    }

    /// Starts one more API replica on this app's database and Redis, with caches and a
    /// notification listener of its own, and returns its base URL.
    pub async fn start_api_replica(&self) -> anyhow::Result<String> {
        let state = api::prepare(self.config.clone()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tokio::spawn(api::serve(listener, state, std::future::pending()));
        Ok(url)
    }

    /// Starts one more in-process worker (a replica with its own name and scheduler).
    pub async fn start_worker(&mut self) -> anyhow::Result<()> {
        let state = worker::prepare(&self.config).await?;
        self.worker_states.push(state.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let config = self.config.clone();
        let task = tokio::spawn(async move {
            let stop = async move {
                let _signal = stopped.await;
            };
            worker::run(state, &config, None, stop).await
        });
        self.workers.push((stop, task));
        Ok(())
    }

    /// Stops the worker and drops the test database.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        self.stop_workers().await?;
        self.pool.close().await;
        let admin = sqlx::PgPool::connect(ADMIN_DB_URL).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.database
        )))
        .execute(&admin)
        .await?;
        Ok(())
    }

    /// Starts a worker as a separate `certifyclouds-worker` process with this app's environment
    /// and `extra` on top.
    pub fn spawn_worker_process(&self, extra: &[(&str, &str)]) -> anyhow::Result<Child> {
        let mut command = Command::new(workspace_binary("certifyclouds-worker")?);
        command.env_clear().envs(&self.vars).stdout(Stdio::null()).stderr(Stdio::null());
        if let Ok(path) = std::env::var("PATH") {
            command.env("PATH", path);
        }
        for (k, v) in extra {
            command.env(k, v);
        }
        Ok(command.spawn()?)
    }

    /// Like [`Self::spawn_worker_process`], with standard output and error written to `log`.
    pub fn spawn_worker_process_logged(
        &self,
        extra: &[(&str, &str)],
        log: &std::path::Path,
    ) -> anyhow::Result<Child> {
        let out = std::fs::File::create(log)?;
        let mut command = Command::new(workspace_binary("certifyclouds-worker")?);
        command.env_clear().envs(&self.vars).stdout(out.try_clone()?).stderr(out);
        if let Ok(path) = std::env::var("PATH") {
            command.env("PATH", path);
        }
        for (k, v) in extra {
            command.env(k, v);
        }
        Ok(command.spawn()?)
    }

    /// Stops every in-process worker, waiting for each to finish its shutdown.
    pub async fn stop_workers(&mut self) -> anyhow::Result<()> {
        for (stop, task) in self.workers.drain(..) {
            let _sent = stop.send(());
            tokio::time::timeout(Duration::from_secs(40), task).await???;
        }
        Ok(())
    }

    /// Logs in as the bootstrap admin and returns the bearer token.
    pub async fn login(&self) -> anyhow::Result<String> {
        let (status, body) = self.login_as("admin", ADMIN_PASSWORD).await?;
        if status != 200 {
            bail!("login failed: {status} {body}");
        }
        Ok(body["access_token"].as_str().context("access_token")?.to_owned())
    }

    /// Logs in as `username`; returns the status and the JSON body.
    pub async fn login_as(&self, username: &str, password: &str) -> anyhow::Result<(u16, Value)> {
        let response = self
            .http
            .post(format!("{}/auth/login", self.api_url))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// Sends `method` to `base` + `path` with a token and an optional JSON body; returns the
    /// status and the JSON body (`Null` when there is none). `base` is this app's API or a
    /// replica's.
    pub async fn send_to(
        &self,
        base: &str,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self.http.request(method, format!("{base}{path}")).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    /// [`Self::send_to`] this app's API.
    pub async fn send(
        &self,
        method: reqwest::Method,
        token: &str,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        self.send_to(&self.api_url, method, token, path, body).await
    }

    /// GET with a token; returns the status and the JSON body.
    pub async fn get(&self, token: &str, path: &str) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::GET, token, path, None).await
    }

    /// POST JSON with a token; returns the status and the JSON body.
    pub async fn post(
        &self,
        token: &str,
        path: &str,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::POST, token, path, Some(body)).await
    }

    /// PUT JSON with a token; returns the status and the JSON body.
    pub async fn put(&self, token: &str, path: &str, body: &Value) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::PUT, token, path, Some(body)).await
    }

    /// DELETE with a token; returns the status and the JSON body.
    pub async fn delete(&self, token: &str, path: &str) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::DELETE, token, path, None).await
    }

    /// Starts a scan and polls its status until it stops changing.
    pub async fn scan_to_end(&self, token: &str, body: &Value) -> anyhow::Result<Value> {
        let (status, accepted) = self.post(token, "/api/assets/discovery/scan", body).await?;
        if status != 202 {
            bail!("scan was not accepted: {status} {accepted}");
        }
        let scan_id = accepted["scanId"].as_str().context("scanId")?.to_owned();
        self.wait_for_scan(token, &scan_id).await
    }

    /// Polls a scan's status endpoint until the scan is terminal (at most two minutes).
    pub async fn wait_for_scan(&self, token: &str, scan_id: &str) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let (_, status) =
                self.get(token, &format!("/api/assets/discovery/scan/{scan_id}/status")).await?;
            let state = status["status"].as_str().unwrap_or_default();
            if !matches!(state, "queued" | "running") {
                return Ok(status);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("scan {scan_id} did not finish: {status}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Asserts the documented error shape and returns the body's `code`.
pub fn error_code(body: &Value) -> String {
    assert!(body["error"].is_string(), "no error phrase in {body}");
    assert!(body["detail"].is_string(), "no detail in {body}");
    body["code"].as_str().unwrap_or_else(|| panic!("no code in {body}")).to_owned()
}
