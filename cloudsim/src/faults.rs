//! Fault injection, Key Vault throttling, request counters and the request log.
//!
//! A fault makes requests to a target (`vault:<name>`, `arm` or `token`) answer a given status,
//! wait (`latencyMs`), or lose their connection (`drop`, or status 0): the next `count`
//! requests, or each request with probability `rate`. Throttling counts requests per vault in
//! fixed windows and answers 429 `Throttled` over the limit, as Key Vault does. Counters and the
//! log record every served request so tests can prove that clients retried.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A pending fault.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fault {
    /// Target: `vault:<name>`, `arm` or `token`.
    pub target: String,
    /// HTTP status to answer; 0 drops the connection. Absent: only `latencyMs` applies.
    #[serde(default)]
    pub status: Option<u16>,
    /// How many requests it applies to. Default: 1 for a status or drop, unlimited for a
    /// rate or latency-only fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Probability (0..1) that a request is hit; absent means every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Seconds for a Retry-After header (none when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Delay before answering, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Close the connection without answering.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop: bool,
}

impl Fault {
    /// Fills in the default count and normalises `status: 0` to `drop`.
    pub fn normalised(mut self) -> Self {
        if self.status == Some(0) {
            self.status = None;
            self.drop = true;
        }
        let hits = self.status.is_some() || self.drop;
        if self.count.is_none() && self.rate.is_none() && hits {
            self.count = Some(1);
        }
        self
    }

    /// Checks the fields; an error message for the admin API otherwise.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = self.status
            && !(400..=599).contains(&s)
        {
            return Err("status must be 400-599 (or 0 to drop the connection)".into());
        }
        if let Some(r) = self.rate
            && !(0.0..=1.0).contains(&r)
        {
            return Err("rate must be between 0 and 1".into());
        }
        if self.status.is_none() && !self.drop && self.latency_ms.is_none() {
            return Err("a fault needs status, drop or latencyMs".into());
        }
        Ok(())
    }
}

/// What a fault does to one request.
#[derive(Debug, Clone, Default)]
pub struct Hit {
    /// Wait this long first.
    pub latency_ms: u64,
    /// Then answer with this fault's status (when it has one).
    pub answer: Option<Fault>,
    /// Or close the connection.
    pub drop: bool,
}

/// One served request, as `GET /_sim/requests/log` returns it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Milliseconds since the Unix epoch when the request arrived.
    pub timestamp: i64,
    /// `vault:<name>`, `arm`, `token` or `entra`.
    pub target: String,
    /// HTTP method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Query string without `?` (empty when none).
    pub query: String,
    /// Status answered; 0 when the connection was dropped.
    pub status: u16,
}

/// Entries kept in the request log (the oldest are dropped first).
pub const LOG_CAPACITY: usize = 100_000;

#[derive(Default)]
struct Inner {
    faults: BTreeMap<String, Fault>,
    counters: BTreeMap<String, BTreeMap<String, u64>>,
    log: VecDeque<LogEntry>,
}

/// The fault table, counters and log, shared by every listener.
#[derive(Default)]
pub struct Faults {
    inner: Mutex<Inner>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Installs (or replaces) the fault for its target.
    pub fn set(&self, f: Fault) {
        self.lock().faults.insert(f.target.clone(), f);
    }

    /// Removes all faults.
    pub fn clear(&self) {
        self.lock().faults.clear();
    }

    /// Decides what the target's fault (if any) does to the next request.
    pub fn take(&self, target: &str) -> Option<Hit> {
        let mut inner = self.lock();
        let f = inner.faults.get_mut(target)?;
        if f.count == Some(0) {
            inner.faults.remove(target);
            return None;
        }
        if let Some(rate) = f.rate
            && !rand::rng().random_bool(rate.clamp(0.0, 1.0))
        {
            return None;
        }
        if let Some(c) = f.count.as_mut() {
            *c -= 1;
        }
        let hit = Hit {
            latency_ms: f.latency_ms.unwrap_or(0),
            answer: f.status.is_some().then(|| f.clone()),
            drop: f.drop,
        };
        if f.count == Some(0) {
            inner.faults.remove(target);
        }
        Some(hit)
    }

    /// Pending faults.
    pub fn list(&self) -> Vec<Fault> {
        self.lock().faults.values().cloned().collect()
    }

    /// Counts one served request and appends it to the log.
    pub fn record(&self, target: &str, method: &str, path: &str, query: &str, status: u16) {
        let mut inner = self.lock();
        *inner
            .counters
            .entry(target.to_string())
            .or_default()
            .entry(status.to_string())
            .or_default() += 1;
        if inner.log.len() >= LOG_CAPACITY {
            inner.log.pop_front();
        }
        inner.log.push_back(LogEntry {
            timestamp: chrono::Utc::now().timestamp_millis(),
            target: target.to_string(),
            method: method.to_string(),
            path: path.to_string(),
            query: query.to_string(),
            status,
        });
    }

    /// Snapshot of the counters.
    pub fn counters(&self) -> BTreeMap<String, BTreeMap<String, u64>> {
        self.lock().counters.clone()
    }

    /// The log, oldest first, optionally only one target's entries.
    pub fn log(&self, target: Option<&str>) -> Vec<LogEntry> {
        self.lock().log.iter().filter(|e| target.is_none_or(|t| e.target == t)).cloned().collect()
    }

    /// Resets the counters and the log.
    pub fn reset_counters(&self) {
        let mut inner = self.lock();
        inner.counters.clear();
        inner.log.clear();
    }
}

/// Key Vault's documented limit for secret and vault transactions per vault and region.
pub const KEY_VAULT_LIMIT: u32 = 4000;
/// Key Vault's throttling window in seconds.
pub const KEY_VAULT_WINDOW_S: u64 = 10;

/// Throttling settings for one vault (or every vault, `*`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThrottleRule {
    /// `*` (default) or a vault name.
    #[serde(default = "star")]
    pub vault: String,
    /// Requests allowed per window.
    pub limit: u32,
    /// Window length in seconds (default 10).
    #[serde(default = "window")]
    pub window_seconds: u64,
    /// Retry-After on throttled responses: a number of seconds, `true` (default: the seconds
    /// left in the window) or `false`/`null` (no header).
    #[serde(default = "retry_default")]
    pub retry_after: Value,
}

fn star() -> String {
    "*".into()
}

fn window() -> u64 {
    KEY_VAULT_WINDOW_S
}

fn retry_default() -> Value {
    Value::Bool(true)
}

impl ThrottleRule {
    /// Key Vault's own limit, applied to every vault by default.
    pub fn key_vault_default() -> Self {
        Self {
            vault: star(),
            limit: KEY_VAULT_LIMIT,
            window_seconds: KEY_VAULT_WINDOW_S,
            retry_after: retry_default(),
        }
    }

    /// Checks the fields; an error message for the admin API otherwise.
    pub fn validate(&self) -> Result<(), String> {
        if self.window_seconds == 0 {
            return Err("windowSeconds must be at least 1".into());
        }
        match &self.retry_after {
            Value::Bool(_) | Value::Null => Ok(()),
            Value::Number(n) if n.as_u64().is_some() => Ok(()),
            _ => Err("retryAfter must be seconds, true, false or null".into()),
        }
    }
}

#[derive(Default)]
struct ThrottleInner {
    rules: BTreeMap<String, ThrottleRule>,
    windows: BTreeMap<String, (i64, u32)>,
}

/// Per-vault fixed-window throttling.
pub struct Throttle {
    inner: Mutex<ThrottleInner>,
}

impl Default for Throttle {
    fn default() -> Self {
        let t = Self { inner: Mutex::new(ThrottleInner::default()) };
        t.reset();
        t
    }
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, ThrottleInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Back to Key Vault's default limit for every vault, with fresh windows.
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.rules.clear();
        inner.windows.clear();
        inner.rules.insert(star(), ThrottleRule::key_vault_default());
    }

    /// Installs a rule (replacing the one for the same vault) and restarts its windows.
    pub fn set(&self, rule: ThrottleRule) {
        let mut inner = self.lock();
        if rule.vault == "*" {
            inner.windows.clear();
        } else {
            inner.windows.remove(&rule.vault.to_lowercase());
        }
        inner.rules.insert(rule.vault.clone(), rule);
    }

    /// The rules in force.
    pub fn rules(&self) -> Vec<ThrottleRule> {
        self.lock().rules.values().cloned().collect()
    }

    /// Counts a request to `vault` at `now_ms`. Over the limit it returns the Retry-After
    /// seconds to send (`Some(None)` for no header).
    pub fn check(&self, vault: &str, now_ms: i64) -> Option<Option<u64>> {
        let mut inner = self.lock();
        let rule = inner
            .rules
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(vault))
            .or_else(|| inner.rules.get_key_value("*"))
            .map(|(_, r)| r.clone())?;
        let window_ms = i64::try_from(rule.window_seconds.saturating_mul(1000)).ok()?;
        let entry = inner.windows.entry(vault.to_lowercase()).or_insert((now_ms, 0));
        if now_ms - entry.0 >= window_ms {
            *entry = (now_ms, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        if entry.1 <= rule.limit {
            return None;
        }
        let left_ms = u64::try_from((entry.0 + window_ms - now_ms).max(0)).unwrap_or(0);
        Some(match rule.retry_after {
            Value::Number(n) => n.as_u64(),
            Value::Bool(true) => Some(left_ms.div_ceil(1000).max(1)),
            _ => None,
        })
    }
}
