//! Test harness: spawns the built `cloudsim` binary on an OS-assigned port with a fresh state
//! directory, waits for its ready line, reads `cloud.env` and offers a reqwest client that
//! trusts the simulator's CA.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::Value;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running simulator; killed and its state directory removed on drop.
pub struct Sim {
    child: Child,
    /// State directory.
    pub dir: PathBuf,
    /// Parsed cloud.env.
    pub env: BTreeMap<String, String>,
    /// Main URL without trailing slash.
    pub url: String,
    /// Client trusting ca.pem only.
    pub http: reqwest::Client,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh temporary directory path.
pub fn temp_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!("cloudsim-it-{}-{n}-{nanos}", std::process::id()))
}

impl Sim {
    /// Starts the simulator with the default scenario.
    pub async fn start() -> Result<Self> {
        Self::start_with(&[]).await
    }

    /// Starts the simulator with extra CLI arguments.
    pub async fn start_with(extra: &[&str]) -> Result<Self> {
        Self::start_in(temp_dir(), extra).await
    }

    /// Starts the simulator in a given state directory.
    pub async fn start_in(dir: PathBuf, extra: &[&str]) -> Result<Self> {
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(dir.join("stderr.log"))?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_cloudsim"))
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--state-dir")
            .arg(&dir)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .context("spawning cloudsim")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if line.starts_with("cloudsim ready ") {
                    let _ = tx.send(line.trim().to_string());
                }
                line.clear();
            }
        });
        let ready = match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
                bail!("cloudsim did not become ready; stderr:\n{log}");
            }
        };
        let url = ready.trim_start_matches("cloudsim ready ").to_string();
        let text = std::fs::read_to_string(dir.join("cloud.env")).context("reading cloud.env")?;
        let env: BTreeMap<String, String> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let ca = std::fs::read(env.get("AZURE_CA_BUNDLE").context("no AZURE_CA_BUNDLE")?)?;
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca)?])
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self { child, dir, env, url, http })
    }

    /// A cloud.env value.
    pub fn env(&self, key: &str) -> Result<&str> {
        self.env.get(key).map(String::as_str).with_context(|| format!("cloud.env lacks {key}"))
    }

    /// POSTs a token request with the given form fields.
    pub async fn token_request(
        &self,
        tenant: &str,
        form: &[(&str, &str)],
    ) -> Result<(StatusCode, Value)> {
        let resp = self
            .http
            .post(format!("{}/{tenant}/oauth2/v2.0/token", self.url))
            .form(form)
            .send()
            .await?;
        let status = resp.status();
        Ok((status, resp.json().await?))
    }

    /// Gets an access token for a scope with the cloud.env credentials.
    pub async fn token(&self, scope: &str) -> Result<String> {
        let (status, body) = self
            .token_request(
                self.env("AZURE_TENANT_ID")?,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", self.env("AZURE_CLIENT_ID")?),
                    ("client_secret", self.env("AZURE_CLIENT_SECRET")?),
                    ("scope", scope),
                ],
            )
            .await?;
        if status != StatusCode::OK {
            bail!("token request failed: {status} {body}");
        }
        Ok(body["access_token"].as_str().context("no access_token")?.to_string())
    }

    /// GETs a URL (absolute, or relative to the main URL) with an optional bearer token.
    pub async fn get(
        &self,
        url: &str,
        token: Option<&str>,
    ) -> Result<(StatusCode, HeaderMap, Value)> {
        let url = if url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{}{url}", self.url)
        };
        let mut req = self.http.get(&url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let text = resp.text().await?;
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).with_context(|| format!("GET {url}: not JSON: {text}"))?
        };
        Ok((status, headers, body))
    }

    /// Follows `nextLink` from `first` to the end, returning every page body.
    pub async fn pages(&self, first: &str, token: &str) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        let mut url = first.to_string();
        for _ in 0..10_000 {
            let (status, _, body) = self.get(&url, Some(token)).await?;
            if status != StatusCode::OK {
                bail!("GET {url}: {status} {body}");
            }
            let next = body["nextLink"].as_str().map(str::to_string);
            out.push(body);
            match next {
                Some(n) => url = n,
                None => return Ok(out),
            }
        }
        bail!("paging did not end")
    }

    /// The `/_sim/vaults` directory.
    pub async fn vaults(&self) -> Result<Vec<Value>> {
        let (_, _, body) = self.get("/_sim/vaults", None).await?;
        Ok(body.as_array().context("vaults not an array")?.clone())
    }

    /// vaultUri of a vault by name.
    pub async fn vault_uri(&self, name: &str) -> Result<String> {
        let v = self.vaults().await?;
        let v = v.iter().find(|v| v["name"] == name).with_context(|| format!("no vault {name}"))?;
        Ok(v["vaultUri"].as_str().context("no vaultUri")?.to_string())
    }
}

/// Decodes the JSON of one JWT part.
pub fn jwt_part(token: &str, index: usize) -> Result<Value> {
    use base64::Engine;
    let part = token.split('.').nth(index).context("not a JWT")?;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part)?;
    Ok(serde_json::from_slice(&raw)?)
}
