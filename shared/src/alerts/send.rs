//! The channels: email over SMTP (lettre, rustls) and HTTP webhooks (reqwest, behind the
//! outbound address policy of [`crate::net`]). A send reports whether it may be retried: SMTP
//! 4xx replies, HTTP 408, 429 and 5xx, timeouts and refused connections are transient; the rest
//! are not, and retrying them would only repeat the same answer.

use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::{Mailbox, MultiPart, header};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use sha2::Sha256;

use super::ChannelTarget;
use super::message::Message;
use crate::config::{AlertsConfig, SmtpConfig, SmtpTls};
use crate::domain::DeliveryMethod;

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The peer accepted the message; `code` is its HTTP status or SMTP reply code.
    Sent { code: Option<i32> },
    /// Worth another attempt, after `retry_after` if the peer said so.
    Transient { error: String, code: Option<i32>, retry_after: Option<Duration> },
    /// Another attempt would get the same answer.
    Permanent { error: String, code: Option<i32> },
}

/// Header names of the generic webhook.
pub const SIGNATURE_HEADER: &str = "x-certifyclouds-signature";
pub const TIMESTAMP_HEADER: &str = "x-certifyclouds-timestamp";
pub const DELIVERY_HEADER: &str = "x-certifyclouds-delivery";

/// Sends `message` through `method`. `recipient` is the address for email and unused otherwise.
pub async fn send(
    config: &AlertsConfig,
    method: DeliveryMethod,
    target: &ChannelTarget,
    recipient: Option<&str>,
    message: &Message,
) -> Outcome {
    match method {
        DeliveryMethod::Email => match (&config.smtp, recipient) {
            (None, _) => Outcome::Permanent {
                error: "email is not configured: set SMTP_HOST and SMTP_FROM_EMAIL".into(),
                code: None,
            },
            (_, None) => {
                Outcome::Permanent { error: "the delivery has no recipient".into(), code: None }
            }
            (Some(smtp), Some(to)) => email(smtp, config.send_timeout, to, message).await,
        },
        DeliveryMethod::Slack => {
            post_json(config, target.url.as_deref(), &message.slack(), message, None).await
        }
        DeliveryMethod::Teams => {
            post_json(config, target.url.as_deref(), &message.teams(), message, None).await
        }
        DeliveryMethod::PagerDuty => match target.routing_key.as_deref() {
            None => Outcome::Permanent { error: "the rule has no routing key".into(), code: None },
            Some(key) => {
                let url = config.pagerduty_events_url.as_str();
                post_json(config, Some(url), &message.pagerduty(key), message, None).await
            }
        },
        DeliveryMethod::Webhook => {
            let secret = target.signing_secret.as_deref();
            if secret.is_none() {
                return Outcome::Permanent {
                    error: "the rule has no signing secret".into(),
                    code: None,
                };
            }
            post_json(config, target.url.as_deref(), &message.webhook(), message, secret).await
        }
    }
}

/// The signature of a webhook body: hex HMAC-SHA256, keyed by the signing secret, over
/// `"{timestamp}.{body}"`, sent as `sha256=<hex>`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

async fn post_json(
    config: &AlertsConfig,
    url: Option<&str>,
    body: &serde_json::Value,
    message: &Message,
    signing_secret: Option<&str>,
) -> Outcome {
    let Some(url) = url else {
        return Outcome::Permanent { error: "the rule has no webhook URL".into(), code: None };
    };
    let checked = match crate::net::check(url, config.outbound()).await {
        Ok(checked) => checked,
        Err(refused) => return Outcome::Permanent { error: refused.to_string(), code: None },
    };
    let client = match crate::net::client_for(&checked, config.send_timeout) {
        Ok(client) => client,
        Err(e) => return Outcome::Permanent { error: format!("HTTP client: {e}"), code: None },
    };
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut request = client
        .post(checked.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(DELIVERY_HEADER, message.delivery_id.to_string());
    if let Some(secret) = signing_secret {
        let timestamp = chrono::Utc::now().timestamp();
        request = request
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, signature(secret, timestamp, &bytes));
    }
    let response = match request.body(bytes).send().await {
        Ok(response) => response,
        Err(e) => {
            // reqwest names the URL in its errors; the URL may carry a token.
            let e = e.without_url();
            let what = if e.is_timeout() { "timed out" } else { "failed" };
            // The URL may carry a token (Slack, Teams), and reqwest's errors print it: name
            // only the host. The error goes to the history, the audit log and the logs.
            let e = e.without_url();
            return Outcome::Transient {
                error: format!("request to {} {what}: {}", checked.host, error_chain(&e)),
                code: None,
                retry_after: None,
            };
        }
    };
    let status = response.status();
    let code = Some(i32::from(status.as_u16()));
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s.min(300)));
    if status.is_success() {
        return Outcome::Sent { code };
    }
    let snippet = snippet_of(response).await;
    let error = format!("{} answered {status}: {snippet}", checked.host);
    if status.as_u16() == 408 || status.as_u16() == 429 || status.is_server_error() {
        Outcome::Transient { error, code, retry_after }
    } else {
        Outcome::Permanent { error, code }
    }
}

/// The start of an error answer, for the history: at most 200 characters, read from at most
/// the first few KiB, so a peer answering with an endless body costs neither memory nor the
/// rest of the timeout.
async fn snippet_of(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < 4096 {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes).chars().take(200).collect()
}

/// An error and its sources, each once: some errors (lettre's) already print their source.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

async fn email(smtp: &SmtpConfig, timeout: Duration, to: &str, message: &Message) -> Outcome {
    let built = (|| -> Result<lettre::Message, String> {
        let from: Mailbox =
            smtp.from.parse().map_err(|e| format!("SMTP_FROM_EMAIL {:?}: {e}", smtp.from))?;
        let to: Mailbox = to.parse().map_err(|e| format!("recipient {to:?}: {e}"))?;
        lettre::Message::builder()
            .from(from)
            .to(to)
            .subject(message.email_subject())
            .message_id(Some(format!("<{}@certifyclouds>", message.delivery_id)))
            .header(header::MIME_VERSION_1_0)
            .multipart(MultiPart::alternative_plain_html(
                message.email_text(),
                message.email_html(),
            ))
            .map_err(|e| format!("building the message: {e}"))
    })();
    let email = match built {
        Ok(email) => email,
        Err(error) => return Outcome::Permanent { error, code: None },
    };
    let transport = match transport(smtp, timeout) {
        Ok(transport) => transport,
        Err(error) => return Outcome::Permanent { error, code: None },
    };
    match transport.send(email).await {
        Ok(response) => Outcome::Sent { code: Some(i32::from(u16::from(response.code()))) },
        Err(e) => {
            let code = e.status().map(|c| i32::from(u16::from(c)));
            let error = format!("SMTP {}:{}: {}", smtp.host, smtp.port, error_chain(&e));
            if e.is_permanent() {
                Outcome::Permanent { error, code }
            } else {
                // Transient replies, timeouts and connection failures.
                Outcome::Transient { error, code, retry_after: None }
            }
        }
    }
}

fn transport(
    smtp: &SmtpConfig,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let tls_parameters = || -> Result<TlsParameters, String> {
        let mut builder = TlsParameters::builder(smtp.host.clone());
        if let Some(path) = &smtp.ca_bundle {
            let pem = std::fs::read(path)
                .map_err(|e| format!("SMTP_CA_BUNDLE {}: {e}", path.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|e| format!("SMTP_CA_BUNDLE {}: {e}", path.display()))?;
            builder = builder.add_root_certificate(cert);
        }
        builder.build_rustls().map_err(|e| format!("SMTP TLS: {e}"))
    };
    let tls = match smtp.tls {
        SmtpTls::None => Tls::None,
        SmtpTls::StartTls => Tls::Required(tls_parameters()?),
        SmtpTls::Tls => Tls::Wrapper(tls_parameters()?),
    };
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.expose().to_owned()));
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_config(send_timeout: Duration) -> AlertsConfig {
        AlertsConfig {
            smtp: None,
            pagerduty_events_url: "https://events.pagerduty.example/v2/enqueue".parse().unwrap(),
            allow_private_targets: true,
            allow_public_targets: false,
            max_attempts: 1,
            retry_base: Duration::from_millis(10),
            send_timeout,
            evaluation_schedule: None,
            digest_schedule: None,
            public_url: None,
        }
    }

    fn test_message() -> Message {
        Message {
            delivery_id: uuid::Uuid::new_v4(),
            rule_name: "r".into(),
            alert_type: crate::domain::AlertType::ScanCompleted,
            subject: "s".into(),
            items: Vec::new(),
            more: 0,
            test: true,
            link: None,
            generated_at: chrono::Utc::now(),
        }
    }

    #[tokio::test]
    async fn an_endless_error_body_is_cut_short_not_read_to_the_timeout() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0; 65536];
            let _read = socket.read(&mut request).await;
            let head = "HTTP/1.1 500 Internal Server Error\r\ntransfer-encoding: chunked\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            let chunk = format!("{:x}\r\n{}\r\n", 65536, "x".repeat(65536));
            while socket.write_all(chunk.as_bytes()).await.is_ok() {}
        });
        let target = ChannelTarget {
            url: Some(format!("http://127.0.0.1:{port}/hook")),
            ..ChannelTarget::default()
        };
        let config = test_config(Duration::from_secs(3));
        let outcome = send(&config, DeliveryMethod::Slack, &target, None, &test_message()).await;
        let Outcome::Transient { error, code, .. } = outcome else { panic!("{outcome:?}") };
        assert_eq!(code, Some(500));
        // Reading the whole body would end in the timeout, with nothing to show.
        let shown = error.split(": ").nth(1).unwrap_or_default();
        assert_eq!(shown, "x".repeat(200), "{error}");
    }

    #[tokio::test]
    async fn a_failed_webhook_call_names_the_host_and_never_the_url() {
        // A port nothing listens on: the connection is refused, and reqwest's error would
        // print the whole URL, token included.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let config = test_config(Duration::from_secs(5));
        let target = ChannelTarget {
            url: Some(format!("http://127.0.0.1:{port}/services/T1/B2/the-url-token")),
            ..ChannelTarget::default()
        };
        let outcome = send(&config, DeliveryMethod::Slack, &target, None, &test_message()).await;
        let Outcome::Transient { error, .. } = outcome else { panic!("{outcome:?}") };
        assert!(error.starts_with("request to 127.0.0.1 failed"), "{error}");
        assert!(!error.contains("the-url-token") && !error.contains("/services"), "{error}");
    }

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let a = signature("s3cret", 1_700_000_000, b"{\"a\":1}");
        assert!(a.starts_with("sha256="));
        assert_eq!(a.len(), "sha256=".len() + 64);
        assert_ne!(a, signature("s3cret", 1_700_000_001, b"{\"a\":1}"));
        assert_ne!(a, signature("s3cret", 1_700_000_000, b"{\"a\":2}"));
        assert_ne!(a, signature("other", 1_700_000_000, b"{\"a\":1}"));
        assert_eq!(a, signature("s3cret", 1_700_000_000, b"{\"a\":1}"));
    }
}
