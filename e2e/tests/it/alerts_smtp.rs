//! Email over a TLS-protected, authenticating SMTP server: STARTTLS with the server's CA
//! trusted through `SMTP_CA_BUNDLE`, AUTH with `SMTP_USERNAME` / `SMTP_PASSWORD`, and the
//! failures an operator must be told about (an untrusted certificate, wrong credentials).

use std::path::Path;

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use serde_json::{Value, json};

use crate::alerts::create_rule;
use crate::harness::{Options, TestApp};
use crate::peers::MailCatcher;

/// Writes a CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it (`server.pem`,
/// leaf then CA, and `server-key.pem`) into `dir`.
fn write_certificates(dir: &Path) -> anyhow::Result<()> {
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.clone().self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![SanType::IpAddress([127, 0, 0, 1].into())];
    let leaf = params.signed_by(&key, &issuer)?;
    std::fs::write(dir.join("ca.pem"), ca.pem())?;
    std::fs::write(dir.join("server.pem"), format!("{}{}", leaf.pem(), ca.pem()))?;
    std::fs::write(dir.join("server-key.pem"), key.serialize_pem())?;
    Ok(())
}

/// Sends a rule test through an app configured with `smtp` on top of the catcher's address.
async fn test_send(mail: &MailCatcher, smtp: &[(&'static str, String)]) -> anyhow::Result<Value> {
    let mut env: Vec<(&str, String)> =
        mail.env().into_iter().filter(|(k, _)| *k != "SMTP_TLS").collect();
    env.extend(smtp.iter().cloned());
    let app =
        TestApp::spawn_with(Options { extra_env: env, without_worker: true, ..Options::default() })
            .await?;
    let token = app.login().await?;
    let id = create_rule(
        &app,
        &token,
        &json!({"name": "TLS mail", "alertType": "secret_expired",
            "deliveryMethod": "email", "recipients": ["ops@company.example"]}),
    )
    .await?;
    let (status, outcome) =
        app.post(&token, &format!("/alerts/rules/{id}/test"), &json!({})).await?;
    anyhow::ensure!(status == 200, "{outcome}");
    app.finish().await?;
    Ok(outcome)
}

#[tokio::test]
async fn email_goes_over_starttls_with_auth_and_tls_or_auth_failures_are_reported()
-> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("cc-smtp-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    write_certificates(&dir)?;
    let cert = dir.join("server.pem");
    let key = dir.join("server-key.pem");
    let ca = dir.join("ca.pem").display().to_string();
    let mail = MailCatcher::start(&[
        "--starttls-cert",
        cert.to_str().context("path")?,
        "--starttls-key",
        key.to_str().context("path")?,
        "--auth",
        "alerts:s3cret-smtp-password",
    ])?;

    let trusted = [
        ("SMTP_TLS", "starttls".to_owned()),
        ("SMTP_CA_BUNDLE", ca.clone()),
        ("SMTP_USERNAME", "alerts".to_owned()),
        ("SMTP_PASSWORD", "s3cret-smtp-password".to_owned()),
    ];
    let sent = test_send(&mail, &trusted).await?;
    assert_eq!(sent["status"], "sent", "{sent}");
    let messages = mail.wait_for(1).await?;
    assert_eq!(messages[0]["rcptTos"], json!(["ops@company.example"]));
    assert!(messages[0]["subject"].as_str().unwrap_or_default().contains("TEST"));

    // The server's certificate is not trusted without the CA bundle: refused, and said so.
    let untrusted = [
        ("SMTP_TLS", "starttls".to_owned()),
        ("SMTP_USERNAME", "alerts".to_owned()),
        ("SMTP_PASSWORD", "s3cret-smtp-password".to_owned()),
    ];
    let refused = test_send(&mail, &untrusted).await?;
    assert_eq!(refused["status"], "failed", "{refused}");
    let error = refused["results"][0]["error"].as_str().unwrap_or_default().to_lowercase();
    assert!(error.contains("certificate") || error.contains("tls"), "{error}");

    // Wrong credentials: the server's 535, reported with its code.
    let wrong = [
        ("SMTP_TLS", "starttls".to_owned()),
        ("SMTP_CA_BUNDLE", ca),
        ("SMTP_USERNAME", "alerts".to_owned()),
        ("SMTP_PASSWORD", "not-the-password".to_owned()),
    ];
    let denied = test_send(&mail, &wrong).await?;
    assert_eq!(denied["status"], "failed", "{denied}");
    assert_eq!(denied["results"][0]["responseCode"], 535, "{denied}");
    assert!(!denied.to_string().contains("not-the-password"), "no password in the answer");
    assert_eq!(mail.messages().await?.len(), 1, "only the trusted, authenticated send arrived");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
