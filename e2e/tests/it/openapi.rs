//! The OpenAPI document as clients meet it: served at `/openapi.json` with its UI at `/docs`,
//! and held to its word by schemathesis, a hostile client that reads the committed document and
//! sends generated (valid and invalid) requests to a live API, with a token and without one.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::harness::{TestApp, error_code};

/// The workspace root (e2e's parent folder).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// `$CERTIFYCLOUDS_VENV` (relative paths are relative to the workspace) or `<workspace>/.venv`,
/// as scripts/python-venv.sh makes it.
fn venv() -> PathBuf {
    match std::env::var_os("CERTIFYCLOUDS_VENV") {
        Some(v) if !v.is_empty() => workspace().join(v),
        _ => workspace().join(".venv"),
    }
}

#[tokio::test]
async fn the_document_and_its_ui_are_served_without_a_token() -> anyhow::Result<()> {
    let app =
        TestApp::spawn_with(crate::harness::Options { without_worker: true, ..Default::default() })
            .await?;

    let response = app.http.get(format!("{}/openapi.json", app.api_url)).send().await?;
    assert_eq!(response.status(), 200);
    let served: Value = response.json().await?;
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(workspace().join("api/openapi.json"))?)?;
    assert!(served == committed, "/openapi.json differs from the committed api/openapi.json");

    // The UI: its page, its script and the initializer pointing at the document, all served
    // from the binary.
    let page = app.http.get(format!("{}/docs/", app.api_url)).send().await?;
    assert_eq!(page.status(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .context("no CSP on /docs/")?
        .to_owned();
    assert_eq!(csp, api::openapi::DOCS_CSP);
    assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe"), "{csp}");
    let html = page.text().await?;
    assert!(html.contains("swagger-ui-bundle.js"), "{html}");
    assert!(!html.contains("<script>"), "an inline script would need a weaker CSP: {html}");
    let script = app.http.get(format!("{}/docs/swagger-ui-bundle.js", app.api_url)).send().await?;
    assert_eq!(script.status(), 200);
    assert!(script.bytes().await?.len() > 100_000, "the Swagger UI bundle is missing");
    let init = app.http.get(format!("{}/docs/swagger-initializer.js", app.api_url)).send().await?;
    let init = init.text().await?;
    assert!(init.contains("/openapi.json"), "{init}");
    assert!(!init.contains("petstore"), "{init}");

    // Unknown paths under /docs keep the one error shape.
    let (status, body) = app.get("", "/docs/no-such-asset.js").await?;
    assert_eq!(status, 404, "{body}");
    assert_eq!(error_code(&body), "unknown_route");

    // The rest of the API keeps its stricter policy.
    let health = app.http.get(format!("{}/health", app.api_url)).send().await?;
    let csp = health.headers().get("content-security-policy").context("no CSP on /health")?;
    assert_eq!(csp, "default-src 'self'; frame-ancestors 'none'");
    app.finish().await
}

/// The schemathesis executable of the venv; the test fails, saying how to make it, without it.
fn schemathesis_executable() -> anyhow::Result<PathBuf> {
    let executable = venv().join("bin").join("schemathesis");
    if !executable.is_file() {
        bail!(
            "the hostile-client test needs schemathesis, but {} does not exist: run \
             scripts/python-venv.sh (it installs e2e/schemathesis/requirements.txt into {})",
            executable.display(),
            venv().display()
        );
    }
    Ok(executable)
}

/// Runs schemathesis against the app with the committed document and fails on any finding.
/// `CC_SCHEMATHESIS_ARGS` adds arguments, for a closer look at one operation.
async fn schemathesis(
    app: &TestApp,
    asset_id: &str,
    token: Option<&str>,
    extra: &[&str],
) -> anyhow::Result<()> {
    let executable = schemathesis_executable()?;
    let work = std::env::temp_dir().join(format!("cc-schemathesis-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&work)?;
    let mut command = tokio::process::Command::new(&executable);
    command
        .arg("--config-file")
        .arg(workspace().join("e2e/schemathesis/schemathesis.toml"))
        .arg("run")
        .arg(workspace().join("api/openapi.json"))
        .args(["--url", &app.api_url])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
            // Examples from the document, boundary values, then random valid and invalid
            // requests. The stateful phase is left out: the runs below order the calls that
            // could revoke the token themselves.
            "--phases",
            "examples,coverage,fuzzing",
            "--mode",
            "all",
            "--seed",
            "20261204",
            "--generation-database",
            "none",
            // One worker: the venv's CPython 3.11.7 can fail parsing code in two threads at
            // once ("AST constructor recursion depth mismatch"), a runtime error of the tool.
            "--workers",
            "1",
            "--request-timeout",
            "30",
            "--no-color",
        ])
        .args(extra)
        .args(std::env::var("CC_SCHEMATHESIS_ARGS").unwrap_or_default().split_whitespace())
        .current_dir(&work)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("CC_ASSET_ID", asset_id)
        .kill_on_drop(true);
    if let Some(token) = token {
        command.args(["--header", &format!("Authorization: Bearer {token}")]);
    }
    let started = Instant::now();
    let out = command.output().await.with_context(|| format!("running {}", executable.display()));
    let removed = std::fs::remove_dir_all(&work);
    let out = out?;
    removed.with_context(|| format!("removing {}", work.display()))?;

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let who = if token.is_some() { "with the admin's token" } else { "without a token" };
    println!("schemathesis {who} ({:.0} s):\n{stdout}", started.elapsed().as_secs_f64());
    if !out.status.success() {
        bail!("schemathesis {who} found problems ({}):\n{stdout}\n{stderr}", out.status);
    }
    Ok(())
}

#[tokio::test]
async fn schemathesis_finds_every_answer_documented_with_and_without_a_token() -> anyhow::Result<()>
{
    schemathesis_executable()?;
    // PRO, so that user management is exercised beyond the licence refusal.
    let licence = crate::users::pro_licence(30)?;
    let app = TestApp::spawn_with(crate::harness::Options {
        extra_env: vec![("CERTIFYCLOUDS_LICENSE_KEY", licence)],
        ..Default::default()
    })
    .await?;
    let token = app.login().await?;

    // Give the hostile client an inventory to read back: a finished scan, an evaluation, a
    // second user, and a certificate's id.
    let scan = app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    assert_eq!(scan["status"], "completed", "{scan}");
    let (status, certificates) =
        app.get(&token, "/api/assets/discovery/assets?type=certificate&limit=1").await?;
    assert_eq!(status, 200, "{certificates}");
    let asset_id = certificates["items"][0]["id"].as_str().context("a certificate")?.to_owned();
    let (status, body) = app.post(&token, "/compliance/evaluate", &json!({})).await?;
    assert_eq!(status, 202, "{body}");
    let reader =
        json!({"username": "reader", "password": "a long enough passphrase", "role": "user"});
    let (status, body) = app.post(&token, "/auth/users", &reader).await?;
    assert_eq!(status, 201, "{body}");

    // Everything but the two calls that can revoke the admin's token: logging out, and
    // changing a user's password (schemathesis reuses ids it has seen, the admin's included).
    let revoking = ["--exclude-operation-id", "logout", "--exclude-operation-id", "updateUser"];
    schemathesis(
        &app,
        &asset_id,
        Some(&token),
        &[&revoking[..], &["--max-examples", "25"]].concat(),
    )
    .await?;
    let (status, me) = app.get(&token, "/auth/me").await?;
    assert_eq!(status, 200, "the first run revoked the token: {me}");
    assert_eq!(me["role"], "admin");

    // Then those two, last; after them the token may be revoked (401 is documented).
    let only = ["--include-operation-id", "updateUser", "--include-operation-id", "logout"];
    schemathesis(&app, &asset_id, Some(&token), &[&only[..], &["--max-examples", "25"]].concat())
        .await?;

    // Without a token nearly every operation stops at 401, so fewer examples reach as far.
    schemathesis(&app, &asset_id, None, &["--max-examples", "10"]).await?;
    app.finish().await
}
