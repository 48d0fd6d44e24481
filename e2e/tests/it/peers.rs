//! The local peers alerting talks to: the mail catcher (a real SMTP server, aiosmtpd, in the
//! Python venv) and an HTTP receiver that records webhook calls and answers as told.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

/// The venv of scripts/python-venv.sh: `$CERTIFYCLOUDS_VENV` or `<workspace>/.venv`.
fn venv_python() -> anyhow::Result<PathBuf> {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = match std::env::var_os("CERTIFYCLOUDS_VENV") {
        Some(v) if PathBuf::from(&v).is_absolute() => PathBuf::from(v),
        Some(v) => workspace.join(v),
        None => workspace.join(".venv"),
    };
    let python = venv.join("bin/python");
    if !python.is_file() {
        bail!("{} is missing: run scripts/python-venv.sh first", python.display());
    }
    Ok(python)
}

/// A running mail catcher, killed on drop.
pub struct MailCatcher {
    child: Child,
    pub smtp_port: u16,
    pub http_url: String,
    http: reqwest::Client,
}

impl Drop for MailCatcher {
    fn drop(&mut self) {
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}

impl MailCatcher {
    /// Starts tools/mailcatcher on free loopback ports; `extra` are further arguments.
    pub fn start(extra: &[&str]) -> anyhow::Result<Self> {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tools/mailcatcher/mailcatcher.py");
        let mut child = Command::new(venv_python()?)
            .arg(script)
            .args(["--smtp", "127.0.0.1:0", "--http", "127.0.0.1:0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the mail catcher")?;
        let stdout = child.stdout.take().context("mail catcher stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let parse = || -> Option<(u16, String)> {
            let rest = line.trim().strip_prefix("mailcatcher ready smtp=")?;
            let (smtp, http) = rest.split_once(" http=")?;
            Some((smtp.rsplit_once(':')?.1.parse().ok()?, http.to_owned()))
        };
        let Some((smtp_port, http_url)) = parse() else {
            let _killed = child.kill();
            bail!("the mail catcher did not start: {line:?}");
        };
        Ok(Self { child, smtp_port, http_url, http: reqwest::Client::new() })
    }

    /// The product's SMTP settings for this catcher (plain text on loopback).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SMTP_HOST", "127.0.0.1".to_owned()),
            ("SMTP_PORT", self.smtp_port.to_string()),
            ("SMTP_TLS", "none".to_owned()),
            ("SMTP_FROM_EMAIL", "CertifyClouds <alerts@certifyclouds.test>".to_owned()),
        ]
    }

    /// Every message received so far.
    pub async fn messages(&self) -> anyhow::Result<Vec<Value>> {
        let body: Value =
            self.http.get(format!("{}/api/messages", self.http_url)).send().await?.json().await?;
        Ok(body["messages"].as_array().cloned().unwrap_or_default())
    }

    /// Waits until at least `n` messages arrived (at most 60 s) and returns them all.
    pub async fn wait_for(&self, n: usize) -> anyhow::Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let messages = self.messages().await?;
            if messages.len() >= n {
                return Ok(messages);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("expected {n} messages, got {}: {messages:?}", messages.len());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Steers the next SMTP transactions (see the catcher's `/api/faults`).
    pub async fn fault(&self, fault: &Value) -> anyhow::Result<()> {
        let response =
            self.http.post(format!("{}/api/faults", self.http_url)).json(fault).send().await?;
        anyhow::ensure!(response.status().is_success(), "fault refused: {}", response.status());
        Ok(())
    }
}

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
}

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// 429 with `Retry-After: seconds`.
    TooMany {
        retry_after: u64,
    },
    /// Holds the request this long, then answers 200.
    Slow(Duration),
    /// 302 to this path on the same receiver (a client that follows it shows up there).
    Redirect(&'static str),
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    script: VecDeque<Answer>,
}

/// An HTTP receiver on loopback: records every request, answers from a script, then 200.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

impl Receiver {
    pub async fn start() -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let host = listener.local_addr()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        let app = axum::Router::new().fallback(
            move |uri: axum::http::Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let answer = {
                        let mut s = state.lock().expect("receiver lock");
                        s.received.push(Received { path: uri.path().to_owned(), headers, body });
                        s.script.pop_front()
                    };
                    match answer {
                        None | Some(Answer::Status(200)) => {
                            (StatusCode::OK, HeaderMap::new(), "ok")
                        }
                        Some(Answer::Status(code)) => (
                            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                            HeaderMap::new(),
                            "scripted failure",
                        ),
                        Some(Answer::TooMany { retry_after }) => {
                            let mut h = HeaderMap::new();
                            h.insert("retry-after", retry_after.into());
                            (StatusCode::TOO_MANY_REQUESTS, h, "slow down")
                        }
                        Some(Answer::Redirect(path)) => {
                            let mut h = HeaderMap::new();
                            let location = format!("http://{host}{path}");
                            if let Ok(value) = location.parse() {
                                h.insert("location", value);
                            }
                            (StatusCode::FOUND, h, "moved")
                        }
                        Some(Answer::Slow(wait)) => {
                            tokio::time::sleep(wait).await;
                            (StatusCode::OK, HeaderMap::new(), "late")
                        }
                    }
                }
            },
        );
        let url = format!("http://{host}");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok(Self { url, shared })
    }

    /// Queues answers for the next requests.
    pub fn script(&self, answers: &[Answer]) {
        self.shared.lock().expect("receiver lock").script.extend(answers.iter().copied());
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().expect("receiver lock").received.clone()
    }

    /// Waits until at least `n` requests arrived at `path` (at most 60 s).
    pub async fn wait_for(&self, path: &str, n: usize) -> anyhow::Result<Vec<Received>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let got: Vec<Received> =
                self.received().into_iter().filter(|r| r.path == path).collect();
            if got.len() >= n {
                return Ok(got);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("expected {n} requests at {path}, got {}", got.len());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
