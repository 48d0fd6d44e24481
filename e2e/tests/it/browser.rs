//! The dashboard in a real browser: Debian's chromium, driven headless by playwright-core
//! (`e2e/browser/*.mjs`), against the whole product (cloudsim, API, worker). `dashboard.mjs`
//! logs in through the form, starts a scan and waits for it, filters assets, checks what the
//! pages show against the API, checks a phone-sized screen, and logs out. `alerts.mjs` creates,
//! edits, tests and deletes an email rule through the alerts pages, with the mail catcher behind
//! the SMTP settings, and filters the delivery history. Screenshots of the pages land in
//! `<target>/dashboard-screenshots` (or `SCREENSHOT_DIR`).
//!
//! Needs `/usr/bin/chromium` (or `CHROMIUM`) and `npm ci` in `e2e/browser`; `.ci/run` provides
//! both. Setting `CERTIFYCLOUDS_SKIP_BROWSER=1` skips it, saying so.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::harness::{ADMIN_PASSWORD, Options, TestApp};
use crate::peers::MailCatcher;

const READER_PASSWORD: &str = "a reader's long enough password";

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// `<target>/dashboard-screenshots`: test binaries live in `<target>/<profile>/deps`.
fn screenshot_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("SCREENSHOT_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe()?;
    let target = exe.ancestors().nth(3).context("test binary path")?;
    Ok(target.join("dashboard-screenshots"))
}

/// The chromium to drive, or `None` when the browser tests are skipped on purpose. Fails when
/// the browser or playwright-core is missing, saying how to get them.
fn chromium() -> anyhow::Result<Option<String>> {
    if std::env::var("CERTIFYCLOUDS_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("skipped: CERTIFYCLOUDS_SKIP_BROWSER=1");
        return Ok(None);
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if !std::path::Path::new(&chromium).is_file() {
        bail!("{chromium} is missing: apt-get install chromium (as .ci/run does)");
    }
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        bail!("playwright-core is missing: run `npm ci` in {}", browser_dir().display());
    }
    Ok(Some(chromium))
}

/// Runs `e2e/browser/<script>` with `vars` (and the chromium) in its environment, prints its
/// steps, and fails unless it exits cleanly after its last check.
async fn run_script(chromium: &str, script: &str, vars: &[(&str, String)]) -> anyhow::Result<()> {
    let mut command = tokio::process::Command::new("node");
    command
        .arg(browser_dir().join(script))
        .current_dir(browser_dir())
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .env("CHROMIUM", chromium)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().context("starting node")?;
    let output = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .with_context(|| format!("{script} did not finish within five minutes"))??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    if !output.status.success() {
        bail!("{script} failed ({}):\n{stdout}\n{stderr}", output.status);
    }
    assert!(stdout.contains("browser: all checks passed"), "{stdout}");
    Ok(())
}

/// Asserts that each named screenshot was written and holds a picture.
fn assert_screenshots(shots: &std::path::Path, names: &[&str]) -> anyhow::Result<()> {
    for name in names {
        let file = shots.join(format!("{name}.png"));
        let size = std::fs::metadata(&file).with_context(|| file.display().to_string())?.len();
        assert!(size > 1000, "{} is only {size} bytes", file.display());
    }
    println!("screenshots in {}", shots.display());
    Ok(())
}

#[tokio::test]
async fn the_dashboard_works_in_chromium_and_shows_what_the_api_holds() -> anyhow::Result<()> {
    let Some(chromium) = chromium()? else { return Ok(()) };
    let app = TestApp::spawn().await?;
    let hash = api::auth::hash_password(READER_PASSWORD.into())
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    shared::db::users::insert_if_absent(&app.pool, "reader", &hash, "user").await?;
    let truth = app.cloudsim.stats().await?;
    let expired = truth["expired"].as_i64().context("cloudsim stats: expired")?;
    let shots = screenshot_dir()?;

    run_script(
        &chromium,
        "dashboard.mjs",
        &[
            ("BASE_URL", app.api_url.clone()),
            ("DASHBOARD_USERNAME", "admin".to_owned()),
            ("DASHBOARD_PASSWORD", ADMIN_PASSWORD.to_owned()),
            ("READER_USERNAME", "reader".to_owned()),
            ("READER_PASSWORD", READER_PASSWORD.to_owned()),
            ("EXPECTED_EXPIRED", expired.to_string()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    )
    .await?;

    // What the browser did is on the record, made through the session cookie.
    let token = app.login().await?;
    let (_, scans) = app.get(&token, "/api/assets/discovery/scans").await?;
    assert_eq!(scans["total"], 1, "the browser started one scan: {scans}");
    assert_eq!(scans["items"][0]["status"], "completed", "{scans}");
    let (_, logouts) = app.get(&token, "/audit/entries?event_type=auth.logout").await?;
    let by_browser = logouts["items"].as_array().into_iter().flatten().any(|e| {
        e["actor"] == "admin"
            && e["userAgent"].as_str().is_some_and(|ua| ua.contains("HeadlessChrome"))
    });
    assert!(by_browser, "the browser's logout is audited: {logouts}");
    assert_screenshots(&shots, &["login", "overview", "assets-expired", "scan", "phone-assets"])?;
    app.finish().await
}

#[tokio::test]
async fn alert_rules_are_created_tested_and_deleted_from_the_dashboard() -> anyhow::Result<()> {
    let Some(chromium) = chromium()? else { return Ok(()) };
    let mail = MailCatcher::start(&[])?;
    let app = TestApp::spawn_with(Options {
        extra_env: mail.env(),
        without_worker: true,
        ..Options::default()
    })
    .await?;
    let shots = screenshot_dir()?;
    run_script(
        &chromium,
        "alerts.mjs",
        &[
            ("BASE_URL", app.api_url.clone()),
            ("DASHBOARD_USERNAME", "admin".to_owned()),
            ("DASHBOARD_PASSWORD", ADMIN_PASSWORD.to_owned()),
            ("MAILCATCHER_URL", mail.http_url.clone()),
            ("SCREENSHOT_DIR", shots.display().to_string()),
        ],
    )
    .await?;

    // The catcher holds exactly the two accepted test messages; the audit log has the browser's
    // changes, none of them with a credential (an email rule has none, so check the shape).
    let inbox = mail.messages().await?;
    assert_eq!(inbox.len(), 2, "{inbox:?}");
    let token = app.login().await?;
    let (_, audit) = app.get(&token, "/audit/entries?limit=100").await?;
    let kinds: Vec<&str> = audit["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["eventType"].as_str())
        .filter(|k| k.starts_with("alert.rule."))
        .collect();
    for kind in
        ["alert.rule.created", "alert.rule.updated", "alert.rule.tested", "alert.rule.deleted"]
    {
        assert!(kinds.contains(&kind), "{kind} is audited: {kinds:?}");
    }
    assert_screenshots(
        &shots,
        &[
            "alerts-new-rule",
            "alerts-rules",
            "alerts-test-sent",
            "alerts-test-failed",
            "alerts-history-sent",
            "alerts-history-failed",
            "alerts-history",
            "phone-alerts-history",
        ],
    )?;
    app.finish().await
}
