//! The dashboard's server side: public static pages under a strict policy, and the session
//! cookie the login sets, with the CSRF token that guards every change made with it.

use anyhow::Context;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

use crate::harness::{ADMIN_PASSWORD, Options, TestApp, error_code};

/// The `Set-Cookie` headers of a response, by cookie name.
fn set_cookies(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split_once('=').map(|(name, _)| (name.to_owned(), v.to_owned())))
        .collect()
}

/// The value of a cookie in a `Set-Cookie` header.
fn value_of(set_cookie: &str) -> &str {
    set_cookie.split(';').next().and_then(|pair| pair.split_once('=')).map_or("", |(_, v)| v)
}

/// A browser-like session: the session and CSRF cookie values from a login.
struct Session {
    /// The `Cookie` header a browser would send.
    cookie: String,
    token: String,
    csrf: String,
    set_cookies: Vec<(String, String)>,
}

async fn cookie_login(app: &TestApp) -> anyhow::Result<Session> {
    let response = app
        .http
        .post(format!("{}/auth/login", app.api_url))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await?;
    anyhow::ensure!(response.status() == 200, "login: {}", response.status());
    let set_cookies = set_cookies(response.headers());
    let find = |name: &str| {
        set_cookies.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).context("cookie")
    };
    let session = find("cc_session")?;
    let csrf = find("cc_csrf")?;
    Ok(Session {
        cookie: format!("cc_session={}; cc_csrf={}", value_of(&session), value_of(&csrf)),
        token: value_of(&session).to_owned(),
        csrf: value_of(&csrf).to_owned(),
        set_cookies,
    })
}

async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

#[tokio::test]
async fn the_session_cookie_reads_and_changes_only_with_its_csrf_token() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let session = cookie_login(&app).await?;

    // The cookies: the session is HttpOnly, both are SameSite=Strict and Secure by default.
    let attributes = |name: &str| -> String {
        let header = session.set_cookies.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        header.cloned().unwrap_or_default().to_ascii_lowercase()
    };
    for name in ["cc_session", "cc_csrf"] {
        let a = attributes(name);
        assert!(a.contains("samesite=strict") && a.contains("; secure"), "{name}: {a}");
        assert!(a.contains("path=/") && a.contains("max-age=28800"), "{name}: {a}");
    }
    assert!(attributes("cc_session").contains("httponly"));
    assert!(
        !attributes("cc_csrf").contains("httponly"),
        "the page script must read the CSRF token"
    );

    // Reads need only the cookie.
    let url = |path: &str| format!("{}{path}", app.api_url);
    let (status, me) =
        send(app.http.get(url("/auth/me")).header("cookie", &session.cookie)).await?;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["username"], "admin");
    let (status, body) =
        send(app.http.get(url("/api/assets/discovery/assets")).header("cookie", &session.cookie))
            .await?;
    assert_eq!(status, 200, "{body}");

    // A change with the cookie but no token, a wrong token, or another session's token: 403.
    let other = cookie_login(&app).await?;
    assert_ne!(other.csrf, session.csrf, "each session has its own token");
    let scan =
        || app.http.post(url("/api/assets/discovery/scan")).header("cookie", &session.cookie);
    for token in [None, Some("00ff"), Some("not hex"), Some(other.csrf.as_str())] {
        let mut request = scan().json(&json!({"mode": "full"}));
        if let Some(t) = token {
            request = request.header("x-csrf-token", t);
        }
        let (status, body) = send(request).await?;
        assert_eq!(status, 403, "token {token:?}: {body}");
        assert_eq!(error_code(&body), "forbidden", "{body}");
        assert!(body["detail"].as_str().unwrap_or_default().contains("x-csrf-token"), "{body}");
    }
    // The double-submitted cookie alone proves nothing: a planted cc_csrf must match the session.
    let planted = format!("cc_session={}; cc_csrf=00ff", session.token);
    let (status, body) = send(
        app.http
            .post(url("/api/assets/discovery/scan"))
            .header("cookie", planted)
            .header("x-csrf-token", "00ff")
            .json(&json!({"mode": "full"})),
    )
    .await?;
    assert_eq!(status, 403, "{body}");
    let (_, scans) = app.get(&app.login().await?, "/api/assets/discovery/scans").await?;
    assert_eq!(scans["total"], 0, "a refused change must not record anything: {scans}");

    // With the session's own token, the change goes through.
    let (status, body) =
        send(scan().header("x-csrf-token", &session.csrf).json(&json!({"mode": "full"}))).await?;
    assert_eq!(status, 202, "{body}");
    assert!(body["scanId"].is_string(), "{body}");

    // Bearer clients need no CSRF token, even when a cookie rides along.
    let token = app.login().await?;
    let (status, body) = send(
        app.http
            .post(url("/compliance/evaluate"))
            .bearer_auth(&token)
            .header("cookie", "cc_csrf=x"),
    )
    .await?;
    assert_eq!(status, 202, "{body}");

    // Logout with the cookie needs the token too, then clears both cookies and revokes.
    let logout = || app.http.post(url("/auth/logout")).header("cookie", &session.cookie);
    let (status, body) = send(logout()).await?;
    assert_eq!(status, 403, "{body}");
    let response = logout().header("x-csrf-token", &session.csrf).send().await?;
    assert_eq!(response.status(), 204);
    let cleared = set_cookies(response.headers());
    for name in ["cc_session", "cc_csrf"] {
        let header = cleared.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let header = header.with_context(|| format!("{name} is cleared"))?;
        assert!(value_of(header).is_empty() && header.contains("Max-Age=0"), "{header}");
    }
    let (status, body) =
        send(app.http.get(url("/auth/me")).header("cookie", &session.cookie)).await?;
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].as_str().unwrap_or_default().contains("revoked"), "{body}");
    // The other session lives on.
    let (status, _) = send(app.http.get(url("/auth/me")).header("cookie", &other.cookie)).await?;
    assert_eq!(status, 200);

    app.finish().await
}

#[tokio::test]
async fn cookie_secure_false_drops_the_secure_attribute() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options {
        without_worker: true,
        extra_env: vec![("COOKIE_SECURE", "false".into())],
        ..Default::default()
    })
    .await?;
    let session = cookie_login(&app).await?;
    for (name, header) in &session.set_cookies {
        assert!(!header.to_ascii_lowercase().contains("secure"), "{name}: {header}");
        assert!(header.contains("SameSite=Strict"), "{name}: {header}");
    }
    app.finish().await
}

#[tokio::test]
async fn dashboard_pages_are_public_the_same_for_everyone_and_under_a_strict_policy()
-> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let session = cookie_login(&app).await?;

    let response = http.get(format!("{}/", app.api_url)).send().await?;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/ui/");

    let pages = [
        ("/ui/", "text/html"),
        ("/ui/login", "text/html"),
        ("/ui/assets", "text/html"),
        ("/ui/assets/6f1c0f8e-0000-4000-8000-000000000002", "text/html"),
        ("/ui/settings", "text/html"),
        ("/ui/static/app.css", "text/css"),
        ("/ui/static/js/app.js", "text/javascript"),
        ("/ui/static/js/pages/assets.js", "text/javascript"),
    ];
    for (path, content_type) in pages {
        let url = format!("{}{path}", app.api_url);
        let anonymous = http.get(&url).send().await?;
        assert_eq!(anonymous.status(), 200, "{path}");
        let headers = anonymous.headers().clone();
        let header = |name: &str| {
            headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
        };
        assert!(header("content-type").starts_with(content_type), "{path}");
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "require-trusted-types-for 'script'",
        ] {
            assert!(csp.contains(directive), "{path}: {directive} missing from {csp}");
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "no-referrer", "{path}");
        assert!(header("strict-transport-security").starts_with("max-age="), "{path}");
        let anonymous = anonymous.bytes().await?;

        // The same bytes for a signed-in caller: the files carry no data of their own.
        let signed_in = http.get(&url).header("cookie", &session.cookie).send().await?;
        assert_eq!(signed_in.bytes().await?, anonymous, "{path} differs with a session");
    }

    let html = http.get(format!("{}/ui/", app.api_url)).send().await?.text().await?;
    assert!(html.contains("<script type=\"module\" src=\"/ui/static/js/app.js\">"), "{html}");
    assert!(!html.contains("http://") && !html.contains("https://"), "no outside resource");

    for path in ["/ui/static/nope.js", "/ui/static/../Cargo.toml", "/ui/nowhere", "/ui/assets/a/b"]
    {
        let response = http.get(format!("{}{path}", app.api_url)).send().await?;
        assert_eq!(response.status(), 404, "{path}");
        error_code(&response.json().await?);
    }
    app.finish().await
}
