//! Bad input gets a 4xx in the documented error shape, and nothing is written.

use serde_json::json;

use crate::harness::{Options, TestApp, error_code};

#[tokio::test]
async fn malformed_or_invalid_requests_get_400_with_the_error_shape() -> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let token = app.login().await?;

    let response = app
        .http
        .post(format!("{}/api/assets/discovery/scan", app.api_url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"mode\": ")
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(&response.json().await?), "malformed_json");

    let response = app
        .http
        .post(format!("{}/api/assets/discovery/scan", app.api_url))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body("{\"mode\": \"delta\"}")
        .send()
        .await?;
    assert_eq!(response.status(), 415);
    assert_eq!(error_code(&response.json().await?), "unsupported_media_type");

    let unauthenticated = app.http.get(format!("{}/auth/me", app.api_url)).send().await?;
    assert_eq!(unauthenticated.status(), 401);
    assert!(unauthenticated.headers().contains_key("www-authenticate"));

    let (status, body) =
        app.post(&token, "/api/assets/discovery/scan", &json!({"mode": "quick"})).await?;
    assert_eq!(status, 400, "{body}");
    assert_eq!(error_code(&body), "validation_error");
    assert!(body["detail"].as_str().unwrap_or_default().starts_with("mode:"), "{body}");

    let (status, body) = app
        .post(&token, "/api/assets/discovery/scan", &json!({"subscriptions": ["production"]}))
        .await?;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap_or_default().contains("subscriptions[0]"), "{body}");

    for path in [
        "/api/assets/discovery/assets?type=password",
        "/api/assets/discovery/assets?status=fine",
        "/api/assets/discovery/assets?limit=0",
        "/api/assets/discovery/assets?limit=501",
        "/api/assets/discovery/assets?offset=-1",
        "/api/assets/discovery/assets?subscription=nope",
        "/api/assets/discovery/scans?limit=ten",
        "/api/assets/discovery/scan/not-a-uuid/status",
        "/api/assets/discovery/assets/42",
    ] {
        let (status, body) = app.get(&token, path).await?;
        assert_eq!(status, 400, "{path}: {body}");
        error_code(&body);
    }

    let (status, body) = app.get(&token, "/api/nothing-here").await?;
    assert_eq!(status, 404, "{body}");
    assert_eq!(error_code(&body), "unknown_route");
    let (status, body) = app
        .get(&token, "/api/assets/discovery/scan/6f1c0f8e-0000-4000-8000-000000000009/status")
        .await?;
    assert_eq!(status, 404, "{body}");
    assert_eq!(error_code(&body), "not_found");

    let (_, scans) = app.get(&token, "/api/assets/discovery/scans").await?;
    assert_eq!(scans["total"], 0, "a refused request must not record a scan: {scans}");

    app.finish().await
}

/// Input Postgres cannot hold (NUL in text, years before 4713 BC) once reached the database and
/// answered 500. It is refused as a validation error naming the field.
#[tokio::test]
async fn nul_characters_odd_dates_and_non_object_bodies_are_refused_as_bad_requests()
-> anyhow::Result<()> {
    let app = TestApp::spawn_with(Options { without_worker: true, ..Default::default() }).await?;
    let token = app.login().await?;

    for path in [
        "/audit/entries?actor=%00",
        "/audit/entries?event_type=auth.login%00",
        "/audit/export?actor=a%00b",
        "/api/assets/discovery/assets?vault=%00",
    ] {
        let (status, body) = app.get(&token, path).await?;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(error_code(&body), "invalid_query", "{path}");
    }

    // Dates outside 0000-9999 (chrono reads -9999-01-01; Postgres cannot store it).
    for path in [
        "/audit/entries?start_date=-9999-01-01",
        "/audit/export?end_date=-4800-01-01",
        "/audit/entries?start_date=%2B10000-01-01T00:00:00Z",
    ] {
        let (status, body) = app.get(&token, path).await?;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(error_code(&body), "validation_error", "{path}");
    }
    let (status, body) = app.get(&token, "/audit/entries?start_date=0001-01-01").await?;
    assert_eq!(status, 200, "{body}");

    let cases = [
        (
            "/subscriptions",
            json!({"subscriptionId": "12345678-1234-1234-1234-123456789012",
            "name": "prod\u{0}"}),
            "name:",
        ),
        ("/auth/login", json!({"username": "ad\u{0}min", "password": "x"}), "username:"),
        ("/api/assets/discovery/scan", json!({"subscriptions": ["\u{0}"]}), "subscriptions[0]:"),
        ("/api/assets/discovery/scan", json!([null, null]), "body:"),
        ("/auth/login", json!(["admin", "password"]), "body:"),
    ];
    for (path, body, field) in cases {
        let (status, answer) = app.post(&token, path, &body).await?;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(error_code(&answer), "validation_error", "{path}");
        let detail = answer["detail"].as_str().unwrap_or_default();
        assert!(detail.starts_with(field), "{path}: {detail}");
    }

    // An empty or `null` scan body still means "the defaults".
    let (status, body) = app.post(&token, "/api/assets/discovery/scan", &json!(null)).await?;
    assert_eq!(status, 202, "{body}");
    let (status, body) = app.get(&token, "/subscriptions").await?;
    assert_eq!((status, body["total"].as_i64()), (200, Some(0)), "{body}");
    app.finish().await
}
