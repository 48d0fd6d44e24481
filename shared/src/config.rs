//! Process configuration, read once from the environment and validated at start-up.
//!
//! Every variable is documented once, in the README's configuration table and in
//! `.env.example`. Loading takes a lookup function so tests can build a configuration from a map
//! instead of the process environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use url::Url;

use crate::error::ConfigError;
use crate::secret::Secret;

/// Configuration shared by the API and the worker.
#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret,
    pub redis_url: Secret,
    /// Prefix of every Redis key the product writes (queues, claims); lets several
    /// installations or test runs share one Redis.
    pub queue_prefix: String,
    pub listen_addr: SocketAddr,
    pub secret_key: Secret,
    pub jwt_secret: Secret,
    pub jwt_ttl: Duration,
    /// Whether the session cookies carry `Secure` (`COOKIE_SECURE`, on unless set to false):
    /// turn it off only where the dashboard is served over plain HTTP to a host that is not
    /// `localhost`, since browsers then drop secure cookies.
    pub cookie_secure: bool,
    pub admin_username: String,
    pub admin_password: Option<Secret>,
    pub worker_concurrency: usize,
    /// Where a worker serves `/metrics` and `/health`; `None` when turned off.
    pub worker_metrics_addr: Option<SocketAddr>,
    /// A bearer token a Prometheus scraper may use for the API's `/metrics`.
    pub metrics_token: Option<Secret>,
    /// Failed logins within `lockout_window_minutes` that lock an account.
    pub lockout_threshold: i32,
    pub lockout_window_minutes: i64,
    pub lockout_duration_minutes: i64,
    /// Requests per client address per minute and per hour; logins have their own tighter limit.
    pub rate_limit_per_minute: u64,
    pub rate_limit_per_hour: u64,
    pub login_rate_limit_per_minute: u64,
    /// How long an API replica may answer a repeated asset-list page from memory
    /// (`API_CACHE_SECONDS`, 0 turns it off); Postgres notifications drop entries sooner.
    pub api_cache_seconds: u64,
    /// How long an API replica may trust a token check it made (`API_AUTH_CACHE_SECONDS`,
    /// 0 turns it off); a revocation or role change anywhere drops every entry at once.
    pub api_auth_cache_seconds: u64,
    /// The licence token (`CERTIFYCLOUDS_LICENSE_KEY`).
    pub license_key: Option<Secret>,
    /// The public keys licences are checked against.
    pub license_public_keys: Vec<Vec<u8>>,
    /// The environment values the settings fall back to (see `settings::DEFINITIONS`).
    pub settings_env: std::collections::BTreeMap<String, String>,
    /// Cron schedules of unattended scans (six fields, with seconds, UTC).
    pub scan_schedules: Vec<ScanSchedule>,
    /// Cron schedule of the nightly retention purge; `None` when turned off.
    pub retention_schedule: Option<String>,
    pub azure: AzureConfig,
    /// Alert channels, retries and schedules.
    pub alerts: AlertsConfig,
}

/// A recurring scan: a name (the claim key), a mode and a six-field cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanSchedule {
    pub name: &'static str,
    pub mode: crate::domain::ScanMode,
    pub cron: String,
}

/// Which Azure cloud the product talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloudKind {
    Public,
    China,
    UsGovernment,
    Custom,
}

/// Endpoints and credentials for Azure. A custom cloud (cloudsim, Azure Stack, a
/// TLS-inspecting proxy) names its endpoints and may add a CA bundle.
#[derive(Debug, Clone)]
pub struct AzureConfig {
    pub cloud: CloudKind,
    pub authority_host: Url,
    pub resource_manager_endpoint: Url,
    pub resource_manager_audience: String,
    pub graph_endpoint: Url,
    pub keyvault_suffix: String,
    pub ca_bundle: Option<PathBuf>,
    pub credential: CredentialSource,
    pub request_timeout: Duration,
}

/// The credential the product holds, chosen in the order DESIGN.md gives.
#[derive(Debug, Clone)]
pub enum CredentialSource {
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    ClientSecret {
        tenant_id: String,
        client_id: String,
        client_secret: Secret,
    },
    ManagedIdentity {
        client_id: Option<String>,
    },
    /// Nothing configured: the API still serves, scans fail with a clear error.
    None,
}

const MIN_SECRET_KEY_LEN: usize = 32;

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Reads configuration through `get`, which returns a variable's value if it is set.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let database_url = get("DATABASE_URL").ok_or(ConfigError::Missing("DATABASE_URL"))?;
        let redis_url = get("REDIS_URL").ok_or(ConfigError::Missing("REDIS_URL"))?;
        if !redis_url.starts_with("redis://") && !redis_url.starts_with("rediss://") {
            return Err(ConfigError::invalid("REDIS_URL", "must start with redis:// or rediss://"));
        }

        let listen_addr = get("LISTEN_ADDR")
            .unwrap_or_else(|| "0.0.0.0:8080".to_owned())
            .parse()
            .map_err(|e| ConfigError::invalid("LISTEN_ADDR", format!("{e}")))?;

        let secret_key = get("SECRET_KEY").ok_or(ConfigError::Missing("SECRET_KEY"))?;
        if secret_key.len() < MIN_SECRET_KEY_LEN {
            return Err(ConfigError::invalid(
                "SECRET_KEY",
                format!("must be at least {MIN_SECRET_KEY_LEN} characters"),
            ));
        }
        let jwt_secret = get("JWT_SECRET").unwrap_or_else(|| derive_key(&secret_key, "jwt"));

        let jwt_ttl = Duration::from_secs(parse_u64(&get, "JWT_TTL_SECONDS", 8 * 3600)?);
        let worker_concurrency = parse_u64(&get, "WORKER_CONCURRENCY", 8)? as usize;
        if worker_concurrency == 0 {
            return Err(ConfigError::invalid("WORKER_CONCURRENCY", "must be at least 1"));
        }

        Ok(Self {
            database_url: Secret::new(database_url),
            redis_url: Secret::new(redis_url),
            queue_prefix: get("QUEUE_PREFIX").unwrap_or_else(|| "certifyclouds".to_owned()),
            listen_addr,
            secret_key: Secret::new(secret_key),
            jwt_secret: Secret::new(jwt_secret),
            jwt_ttl,
            cookie_secure: match get("COOKIE_SECURE").map(|v| v.to_ascii_lowercase()).as_deref() {
                None | Some("1" | "true" | "yes") => true,
                Some("0" | "false" | "no") => false,
                Some(_) => return Err(ConfigError::invalid("COOKIE_SECURE", "use true or false")),
            },
            admin_username: get("ADMIN_USERNAME").unwrap_or_else(|| "admin".to_owned()),
            admin_password: get("ADMIN_PASSWORD").map(Secret::new),
            worker_concurrency,
            worker_metrics_addr: match get("WORKER_METRICS_ADDR").as_deref() {
                Some(v) if v.eq_ignore_ascii_case("off") => None,
                other => Some(
                    other
                        .unwrap_or("0.0.0.0:9100")
                        .parse()
                        .map_err(|e| ConfigError::invalid("WORKER_METRICS_ADDR", format!("{e}")))?,
                ),
            },
            metrics_token: get("METRICS_TOKEN").map(Secret::new),
            lockout_threshold: parse_u64(&get, "LOCKOUT_THRESHOLD", 5)?.clamp(1, 1000) as i32,
            lockout_window_minutes: parse_u64(&get, "LOCKOUT_WINDOW_MINUTES", 15)? as i64,
            lockout_duration_minutes: parse_u64(&get, "LOCKOUT_DURATION_MINUTES", 15)? as i64,
            rate_limit_per_minute: parse_u64(&get, "RATE_LIMIT_PER_MINUTE", 60)?,
            rate_limit_per_hour: parse_u64(&get, "RATE_LIMIT_PER_HOUR", 1000)?,
            login_rate_limit_per_minute: parse_u64(&get, "LOGIN_RATE_LIMIT_PER_MINUTE", 10)?,
            api_cache_seconds: parse_u64(&get, "API_CACHE_SECONDS", 5)?,
            api_auth_cache_seconds: parse_u64(&get, "API_AUTH_CACHE_SECONDS", 30)?,
            license_key: get("CERTIFYCLOUDS_LICENSE_KEY").map(Secret::new),
            license_public_keys: crate::licence::accepted_keys(
                flag(&get, "CERTIFYCLOUDS_LICENSE_TEST_KEY"),
                flag(&get, "CERTIFYCLOUDS_ALLOW_TEST_LICENSE_KEY"),
            )
            .map_err(|e| ConfigError::invalid("CERTIFYCLOUDS_LICENSE_TEST_KEY", e))?,
            settings_env: crate::settings::DEFINITIONS
                .iter()
                .filter_map(|d| d.env)
                .filter_map(|name| get(name).map(|v| (name.to_owned(), v)))
                .collect(),
            scan_schedules: scan_schedules(&get)?,
            retention_schedule: match get("RETENTION_SCHEDULE") {
                Some(v) if v.trim().eq_ignore_ascii_case("off") => None,
                other => {
                    let cron = other.unwrap_or_else(|| "0 15 3 * * *".to_owned());
                    parse_cron(&cron).map_err(|e| ConfigError::invalid("RETENTION_SCHEDULE", e))?;
                    Some(cron)
                }
            },
            azure: AzureConfig::from_lookup(&get)?,
            alerts: AlertsConfig::from_lookup(&get)?,
        })
    }
}

impl Config {
    /// The licence in force now.
    pub fn licence(&self) -> crate::licence::Status {
        crate::licence::status(
            self.license_key.as_ref().map(Secret::expose),
            &self.license_public_keys,
            chrono::Utc::now(),
        )
    }

    /// Looks up the environment value a setting falls back to.
    pub fn setting_env(&self, name: &str) -> Option<String> {
        self.settings_env.get(name).cloned()
    }
}

impl AzureConfig {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let cloud = match get("AZURE_CLOUD").as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("public") | Some("azurepublic") => CloudKind::Public,
            Some("china") | Some("azurechina") => CloudKind::China,
            Some("usgov") | Some("usgovernment") | Some("azuregovernment") => {
                CloudKind::UsGovernment
            }
            Some("custom") => CloudKind::Custom,
            Some(other) => {
                return Err(ConfigError::invalid(
                    "AZURE_CLOUD",
                    format!("unknown cloud {other:?}; use public, china, usgov or custom"),
                ));
            }
        };
        let (authority, arm, arm_audience, graph, kv_suffix) = match cloud {
            CloudKind::Public | CloudKind::Custom => (
                "https://login.microsoftonline.com/",
                "https://management.azure.com/",
                "https://management.azure.com/",
                "https://graph.microsoft.com/",
                "vault.azure.net",
            ),
            CloudKind::China => (
                "https://login.chinacloudapi.cn/",
                "https://management.chinacloudapi.cn/",
                "https://management.chinacloudapi.cn/",
                "https://microsoftgraph.chinacloudapi.cn/",
                "vault.azure.cn",
            ),
            CloudKind::UsGovernment => (
                "https://login.microsoftonline.us/",
                "https://management.usgovcloudapi.net/",
                "https://management.usgovcloudapi.net/",
                "https://graph.microsoft.us/",
                "vault.usgovcloudapi.net",
            ),
        };
        let custom = cloud == CloudKind::Custom;
        let endpoint = |name: &'static str, default: &str| -> Result<Url, ConfigError> {
            let value = match get(name) {
                Some(v) => v,
                None if custom => return Err(ConfigError::Missing(name)),
                None => default.to_owned(),
            };
            parse_https_url(name, &value)
        };

        let authority_host = endpoint("AZURE_AUTHORITY_HOST", authority)?;
        let resource_manager_endpoint = endpoint("AZURE_RESOURCE_MANAGER_ENDPOINT", arm)?;
        let graph_endpoint = match get("AZURE_GRAPH_ENDPOINT") {
            Some(v) => parse_https_url("AZURE_GRAPH_ENDPOINT", &v)?,
            None => parse_https_url("AZURE_GRAPH_ENDPOINT", graph)?,
        };
        let ca_bundle = get("AZURE_CA_BUNDLE").map(PathBuf::from);
        if let Some(path) = &ca_bundle
            && !path.is_file()
        {
            return Err(ConfigError::invalid(
                "AZURE_CA_BUNDLE",
                format!("{} is not a readable file", path.display()),
            ));
        }
        let request_timeout =
            Duration::from_secs(parse_u64(get, "AZURE_REQUEST_TIMEOUT_SECONDS", 30)?);

        Ok(Self {
            cloud,
            authority_host,
            resource_manager_endpoint,
            resource_manager_audience: get("AZURE_RESOURCE_MANAGER_AUDIENCE")
                .unwrap_or_else(|| arm_audience.to_owned()),
            graph_endpoint,
            keyvault_suffix: get("AZURE_KEYVAULT_SUFFIX").unwrap_or_else(|| kv_suffix.to_owned()),
            ca_bundle,
            credential: CredentialSource::from_lookup(get)?,
            request_timeout,
        })
    }
}

impl CredentialSource {
    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let tenant = get("AZURE_TENANT_ID");
        let client = get("AZURE_CLIENT_ID");

        if let Some(token_file) = get("AZURE_FEDERATED_TOKEN_FILE") {
            return Ok(Self::WorkloadIdentity {
                tenant_id: tenant.ok_or(ConfigError::Missing("AZURE_TENANT_ID"))?,
                client_id: client.ok_or(ConfigError::Missing("AZURE_CLIENT_ID"))?,
                token_file: PathBuf::from(token_file),
            });
        }
        if let Some(secret) = get("AZURE_CLIENT_SECRET") {
            return Ok(Self::ClientSecret {
                tenant_id: tenant.ok_or(ConfigError::Missing("AZURE_TENANT_ID"))?,
                client_id: client.ok_or(ConfigError::Missing("AZURE_CLIENT_ID"))?,
                client_secret: Secret::new(secret),
            });
        }
        let managed = get("AZURE_USE_MANAGED_IDENTITY")
            .map(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
            .unwrap_or(false);
        if managed || get("IDENTITY_ENDPOINT").is_some() {
            return Ok(Self::ManagedIdentity { client_id: client });
        }
        Ok(Self::None)
    }
}

/// How email is sent: `SMTP_HOST` and friends. Absent when `SMTP_HOST` is not set; email rules
/// then fail their deliveries with a message that says so.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: String,
    pub tls: SmtpTls,
    /// Extra roots to trust for the SMTP server's certificate (`SMTP_CA_BUNDLE`).
    pub ca_bundle: Option<PathBuf>,
}

/// `SMTP_TLS`: `starttls` (default; refuses a server without it), `tls` (implicit TLS, port 465
/// style) or `none` (plain text, for a relay on the same host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    None,
    StartTls,
    Tls,
}

/// Alerting: channels, the outbound address policy, delivery retries and schedules.
#[derive(Debug, Clone)]
pub struct AlertsConfig {
    pub smtp: Option<SmtpConfig>,
    /// PagerDuty's Events API v2 enqueue URL (`PAGERDUTY_EVENTS_URL`).
    pub pagerduty_events_url: Url,
    /// `OUTBOUND_ALLOW_PRIVATE`: lets webhooks reach loopback and private ranges (never
    /// link-local or cloud metadata addresses).
    pub allow_private_targets: bool,
    /// `OUTBOUND_ALLOW_PUBLIC` (default true): off, webhooks reach only loopback and private
    /// addresses.
    pub allow_public_targets: bool,
    /// Attempts a delivery gets before it is recorded as failed (`ALERT_MAX_ATTEMPTS`).
    pub max_attempts: u32,
    /// The first retry's delay; each further one doubles it (`ALERT_RETRY_BASE_MS`).
    pub retry_base: Duration,
    /// Time one attempt may take (`ALERT_SEND_TIMEOUT_SECONDS`).
    pub send_timeout: Duration,
    /// Cron of the alert evaluation that catches crossings due to time alone
    /// (`ALERT_EVALUATION_SCHEDULE`, hourly by default; `off` disables it).
    pub evaluation_schedule: Option<String>,
    /// Cron of the digest run (`ALERT_DIGEST_SCHEDULE`, daily at 08:00 UTC by default).
    pub digest_schedule: Option<String>,
    /// Where people reach the dashboard, for links in messages (`PUBLIC_URL`).
    pub public_url: Option<Url>,
}

impl AlertsConfig {
    /// The outbound address policy.
    pub fn outbound(&self) -> crate::net::Policy {
        crate::net::Policy {
            allow_private: self.allow_private_targets,
            allow_public: self.allow_public_targets,
        }
    }

    fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let smtp = match get("SMTP_HOST") {
            None => None,
            Some(host) => {
                let tls = match get("SMTP_TLS").as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None | Some("starttls") => SmtpTls::StartTls,
                    Some("tls") => SmtpTls::Tls,
                    Some("none") => SmtpTls::None,
                    Some(_) => {
                        return Err(ConfigError::invalid(
                            "SMTP_TLS",
                            "must be one of starttls, tls, none",
                        ));
                    }
                };
                let default_port = if tls == SmtpTls::Tls { 465 } else { 587 };
                let port = parse_u64(get, "SMTP_PORT", default_port)?;
                let port = u16::try_from(port)
                    .map_err(|_| ConfigError::invalid("SMTP_PORT", "must be a port number"))?;
                let from = get("SMTP_FROM_EMAIL").ok_or(ConfigError::Missing("SMTP_FROM_EMAIL"))?;
                Some(SmtpConfig {
                    host,
                    port,
                    username: get("SMTP_USERNAME"),
                    password: get("SMTP_PASSWORD").map(Secret::new),
                    from,
                    tls,
                    ca_bundle: get("SMTP_CA_BUNDLE").map(PathBuf::from),
                })
            }
        };
        let pagerduty_events_url = Url::parse(
            &get("PAGERDUTY_EVENTS_URL")
                .unwrap_or_else(|| "https://events.pagerduty.com/v2/enqueue".to_owned()),
        )
        .map_err(|e| ConfigError::invalid("PAGERDUTY_EVENTS_URL", e.to_string()))?;
        let schedule = |name: &'static str, default: &str| -> Result<_, ConfigError> {
            match get(name) {
                Some(v) if v.trim().eq_ignore_ascii_case("off") => Ok(None),
                other => {
                    let cron = other.unwrap_or_else(|| default.to_owned());
                    parse_cron(&cron).map_err(|e| ConfigError::invalid(name, e))?;
                    Ok(Some(cron))
                }
            }
        };
        Ok(Self {
            smtp,
            pagerduty_events_url,
            allow_private_targets: flag(get, "OUTBOUND_ALLOW_PRIVATE"),
            allow_public_targets: !get("OUTBOUND_ALLOW_PUBLIC")
                .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "0" | "false" | "no")),
            max_attempts: parse_u64(get, "ALERT_MAX_ATTEMPTS", 4)?.clamp(1, 20) as u32,
            retry_base: Duration::from_millis(parse_u64(get, "ALERT_RETRY_BASE_MS", 2000)?),
            send_timeout: Duration::from_secs(
                parse_u64(get, "ALERT_SEND_TIMEOUT_SECONDS", 15)?.max(1),
            ),
            evaluation_schedule: schedule("ALERT_EVALUATION_SCHEDULE", "0 5 * * * *")?,
            digest_schedule: schedule("ALERT_DIGEST_SCHEDULE", "0 0 8 * * *")?,
            public_url: match get("PUBLIC_URL") {
                None => None,
                Some(v) => Some(
                    Url::parse(&v)
                        .map_err(|e| ConfigError::invalid("PUBLIC_URL", e.to_string()))?,
                ),
            },
        })
    }
}

/// Derives a purpose-bound key from `SECRET_KEY`, so one secret can key JWTs, the audit chain
/// and credential encryption without reusing the same bytes.
pub fn derive_key(secret_key: &str, purpose: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"certifyclouds:");
    hasher.update(purpose.as_bytes());
    hasher.update(b":");
    hasher.update(secret_key.as_bytes());
    hex::encode(hasher.finalize())
}

/// The delta scan every six hours and the full scan daily, unless configured otherwise; `off`
/// disables one.
fn scan_schedules(get: &impl Fn(&str) -> Option<String>) -> Result<Vec<ScanSchedule>, ConfigError> {
    use crate::domain::ScanMode;
    let mut schedules = Vec::new();
    for (name, variable, mode, default) in [
        ("delta", "SCAN_SCHEDULE_DELTA", ScanMode::Delta, "0 0 */6 * * *"),
        ("full", "SCAN_SCHEDULE_FULL", ScanMode::Full, "0 30 2 * * *"),
    ] {
        let cron = get(variable).unwrap_or_else(|| default.to_owned());
        if cron.trim().eq_ignore_ascii_case("off") {
            continue;
        }
        parse_cron(&cron).map_err(|e| ConfigError::invalid(variable, e))?;
        schedules.push(ScanSchedule { name, mode, cron });
    }
    Ok(schedules)
}

/// Parses a six-field cron expression (seconds first), as the scheduler reads it.
pub fn parse_cron(expression: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .build()
        .parse(expression)
        .map_err(|e| format!("{expression:?} is not a six-field cron expression: {e}"))
}

fn flag(get: &impl Fn(&str) -> Option<String>, name: &str) -> bool {
    get(name).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

fn parse_u64(
    get: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    default: u64,
) -> Result<u64, ConfigError> {
    match get(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| ConfigError::invalid(name, "must be a whole number")),
    }
}

fn parse_https_url(name: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value).map_err(|e| ConfigError::invalid(name, e.to_string()))?;
    if url.scheme() != "https" {
        return Err(ConfigError::invalid(name, "must be an https:// URL"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        move |k| map.get(k).cloned()
    }

    const BASE: [(&str, &str); 3] = [
        ("DATABASE_URL", "postgres://localhost/x"),
        ("REDIS_URL", "redis://127.0.0.1:6379"),
        ("SECRET_KEY", "0123456789abcdef0123456789abcdef"),
    ];

    #[test]
    fn missing_secret_key_names_the_variable() {
        let err = Config::from_lookup(lookup(&BASE[..2])).unwrap_err();
        assert_eq!(err.to_string(), "SECRET_KEY must be set");
    }

    #[test]
    fn jwt_secret_falls_back_to_a_key_derived_from_secret_key() {
        let config = Config::from_lookup(lookup(&BASE)).expect("config");
        assert_eq!(config.jwt_secret.expose(), derive_key(BASE[2].1, "jwt"));
        assert_ne!(config.jwt_secret.expose(), BASE[2].1);
        assert_eq!(config.listen_addr.to_string(), "0.0.0.0:8080");
    }

    #[test]
    fn custom_cloud_requires_its_endpoints() {
        let mut pairs = BASE.to_vec();
        pairs.push(("AZURE_CLOUD", "custom"));
        let err = Config::from_lookup(lookup(&pairs)).unwrap_err();
        assert_eq!(err.to_string(), "AZURE_AUTHORITY_HOST must be set");
    }

    #[test]
    fn scan_schedules_default_to_six_hourly_delta_and_daily_full() {
        let config = Config::from_lookup(lookup(&BASE)).expect("config");
        let names: Vec<&str> = config.scan_schedules.iter().map(|s| s.name).collect();
        assert_eq!(names, ["delta", "full"]);

        let mut pairs = BASE.to_vec();
        pairs.push(("SCAN_SCHEDULE_FULL", "off"));
        pairs.push(("SCAN_SCHEDULE_DELTA", "every now and then"));
        let err = Config::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().starts_with("SCAN_SCHEDULE_DELTA is invalid"), "{err}");
    }

    #[test]
    fn plain_http_authority_is_refused() {
        let mut pairs = BASE.to_vec();
        pairs.push(("AZURE_AUTHORITY_HOST", "http://127.0.0.1:1/"));
        let err = Config::from_lookup(lookup(&pairs)).unwrap_err();
        assert!(err.to_string().contains("https"), "{err}");
    }
}
