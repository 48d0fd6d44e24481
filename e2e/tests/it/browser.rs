//! The dashboard in a real browser: Debian's chromium, driven headless by playwright-core
//! (`e2e/browser/dashboard.mjs`), against the whole product (cloudsim, API, worker). The script
//! logs in through the form, starts a scan and waits for it, filters assets, checks what the
//! pages show against the API, checks a phone-sized screen, and logs out. Screenshots of the
//! main pages land in `<target>/dashboard-screenshots` (or `SCREENSHOT_DIR`).
//!
//! Needs `/usr/bin/chromium` (or `CHROMIUM`) and `npm ci` in `e2e/browser`; `.ci/run` provides
//! both. Setting `CERTIFYCLOUDS_SKIP_BROWSER=1` skips it, saying so.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::harness::{ADMIN_PASSWORD, TestApp};

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

#[tokio::test]
async fn the_dashboard_works_in_chromium_and_shows_what_the_api_holds() -> anyhow::Result<()> {
    if std::env::var("CERTIFYCLOUDS_SKIP_BROWSER").is_ok_and(|v| v == "1") {
        eprintln!("skipped: CERTIFYCLOUDS_SKIP_BROWSER=1");
        return Ok(());
    }
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
    if !std::path::Path::new(&chromium).is_file() {
        bail!("{chromium} is missing: apt-get install chromium (as .ci/run does)");
    }
    let script = browser_dir().join("dashboard.mjs");
    if !browser_dir().join("node_modules/playwright-core").is_dir() {
        bail!("playwright-core is missing: run `npm ci` in {}", browser_dir().display());
    }

    let app = TestApp::spawn().await?;
    let hash = api::auth::hash_password(READER_PASSWORD.into())
        .await
        .map_err(|e| anyhow::anyhow!(e.detail))?;
    shared::db::users::insert_if_absent(&app.pool, "reader", &hash, "user").await?;
    let truth = app.cloudsim.stats().await?;
    let expired = truth["expired"].as_i64().context("cloudsim stats: expired")?;
    let shots = screenshot_dir()?;

    let mut command = tokio::process::Command::new("node");
    command
        .arg(&script)
        .current_dir(browser_dir())
        .env("BASE_URL", &app.api_url)
        .env("DASHBOARD_USERNAME", "admin")
        .env("DASHBOARD_PASSWORD", ADMIN_PASSWORD)
        .env("READER_USERNAME", "reader")
        .env("READER_PASSWORD", READER_PASSWORD)
        .env("EXPECTED_EXPIRED", expired.to_string())
        .env("SCREENSHOT_DIR", &shots)
        .env("CHROMIUM", &chromium)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().context("starting node")?;
    let output = tokio::time::timeout(Duration::from_secs(300), child.wait_with_output())
        .await
        .context("the browser test did not finish within five minutes")??;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    if !output.status.success() {
        bail!("the browser test failed ({}):\n{stdout}\n{stderr}", output.status);
    }
    assert!(stdout.contains("browser: all checks passed"), "{stdout}");

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
    for name in ["login", "overview", "assets-expired", "scan", "phone-assets"] {
        let file = shots.join(format!("{name}.png"));
        let size = std::fs::metadata(&file).with_context(|| file.display().to_string())?.len();
        assert!(size > 1000, "{} is only {size} bytes", file.display());
    }
    println!("screenshots in {}", shots.display());
    app.finish().await
}
