//! The API's token and page caches across two replicas: held entries are served from memory, and
//! every change Postgres announces (revocations, role changes, inventory writes, settings)
//! retires them on both replicas; a lost notification connection retires everything. The caches
//! live 600 s here, so only a notification (or the reconnect) can explain a fresh answer.

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};

use crate::harness::{Options, TestApp};

fn long_lived_caches() -> Vec<(&'static str, String)> {
    vec![("API_CACHE_SECONDS", "600".into()), ("API_AUTH_CACHE_SECONDS", "600".into())]
}

async fn call(
    app: &TestApp,
    method: reqwest::Method,
    base: &str,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<(u16, Value)> {
    app.send_to(base, method, token, path, body.as_ref()).await
}

async fn get(app: &TestApp, base: &str, token: &str, path: &str) -> anyhow::Result<(u16, Value)> {
    call(app, reqwest::Method::GET, base, token, path, None).await
}

/// Polls `probe` every 20 ms for up to 5 s; returns its last answer and whether `done` held.
async fn poll<F, Fut>(mut probe: F, done: impl Fn(&Value) -> bool) -> anyhow::Result<(Value, bool)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Value>>,
{
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = probe().await?;
        if done(&answer) {
            return Ok((answer, true));
        }
        if Instant::now() > deadline {
            return Ok((answer, false));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn login(app: &TestApp, username: &str, password: &str) -> anyhow::Result<String> {
    let (_, body) = app.login_as(username, password).await?;
    Ok(body["access_token"].as_str().with_context(|| format!("login: {body}"))?.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_or_role_change_on_one_replica_is_refused_by_the_other() -> anyhow::Result<()>
{
    let mut env = long_lived_caches();
    env.push(("CERTIFYCLOUDS_LICENSE_KEY", crate::users::pro_licence(30)?));
    let options = Options { without_worker: true, extra_env: env, ..Default::default() };
    let app = TestApp::spawn_with(options).await?;
    let a = app.api_url.clone();
    let b = app.start_api_replica().await?;
    let admin = app.login().await?;

    let (code, ana) = call(
        &app,
        reqwest::Method::POST,
        &a,
        &admin,
        "/auth/users",
        Some(json!({"username": "ana", "password": "a river of quiet stones", "role": "user"})),
    )
    .await?;
    assert_eq!(code, 201, "{ana}");
    let ana_id = ana["id"].as_str().context("id")?.to_owned();
    let ana_token = login(&app, "ana", "a river of quiet stones").await?;
    // Both replicas check the token and hold the answer.
    for base in [&a, &b] {
        assert_eq!(get(&app, base, &ana_token, "/auth/me").await?.0, 200);
    }
    // Superseding her tokens in a transaction that announces nothing: both replicas still
    // answer from what they hold (without the cache, this would be refused at once).
    let mut tx = app.pool.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await?;
    sqlx::query("UPDATE users SET tokens_valid_after = clock_timestamp() WHERE username = 'ana'")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    for base in [&a, &b] {
        let (code, body) = get(&app, base, &ana_token, "/auth/me").await?;
        assert_eq!(code, 200, "{base} did not answer from its cached check: {body}");
    }

    // Promoting ana on A revokes her live tokens: A refuses at once, B as soon as Postgres tells it.
    let (code, body) = call(
        &app,
        reqwest::Method::PUT,
        &a,
        &admin,
        &format!("/auth/users/{ana_id}"),
        Some(json!({"role": "admin"})),
    )
    .await?;
    assert_eq!(code, 200, "{body}");
    assert_eq!(get(&app, &a, &ana_token, "/auth/me").await?.0, 401);
    let (last, refused) = poll(
        || async { Ok(json!(get(&app, &b, &ana_token, "/auth/me").await?.0)) },
        |code| *code == json!(401),
    )
    .await?;
    assert!(refused, "replica B still accepts the superseded token (last answer {last})");

    // A logout on B: B refuses at once, A once the notification arrives.
    let second = app.login().await?;
    for base in [&a, &b] {
        assert_eq!(get(&app, base, &second, "/auth/me").await?.0, 200);
    }
    let (code, _) = call(&app, reqwest::Method::POST, &b, &second, "/auth/logout", None).await?;
    assert_eq!(code, 204);
    assert_eq!(get(&app, &b, &second, "/auth/me").await?.0, 401);
    let (last, refused) = poll(
        || async { Ok(json!(get(&app, &a, &second, "/auth/me").await?.0)) },
        |code| *code == json!(401),
    )
    .await?;
    assert!(refused, "replica A still accepts the logged-out token (last answer {last})");
    // The admin's first token was never touched.
    assert_eq!(get(&app, &b, &admin, "/auth/me").await?.0, 200);
    app.finish().await
}

/// Runs `sql` (one `$1`, the asset id) with triggers off for its transaction, so Postgres
/// announces nothing: only a cache that was not serving from memory would see it.
async fn quietly(app: &TestApp, sql: &str, id: uuid::Uuid) -> anyhow::Result<()> {
    let mut tx = app.pool.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica").execute(&mut *tx).await?;
    let changed =
        sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())).bind(id).execute(&mut *tx).await?;
    assert_eq!(changed.rows_affected(), 1);
    tx.commit().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_asset_page_follows_announced_changes_and_a_lost_listener() -> anyhow::Result<()> {
    let options = Options { extra_env: long_lived_caches(), ..Default::default() };
    let app = TestApp::spawn_with(options).await?;
    let a = app.api_url.clone();
    let b = app.start_api_replica().await?;
    let token = app.login().await?;
    let scan = app.scan_to_end(&token, &json!({"mode": "full"})).await?;
    assert_eq!(scan["status"], "completed", "{scan}");
    // The scan's last commit announced its writes; let that news arrive before filling pages.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let path = "/api/assets/discovery/assets?type=secret&limit=5";
    let first_item = |page: &Value| page["items"][0].clone();
    let (code, page) = get(&app, &a, &token, path).await?;
    assert_eq!(code, 200, "{page}");
    let item = first_item(&page);
    let id: uuid::Uuid = item["id"].as_str().context("id")?.parse()?;
    let enabled = item["enabled"].as_bool().context("enabled")?;
    assert_eq!(first_item(&get(&app, &b, &token, path).await?.1), item);

    // A change nobody announces is not seen: both replicas answer from memory.
    quietly(&app, "UPDATE assets SET enabled = NOT enabled WHERE id = $1", id).await?;
    for base in [&a, &b] {
        let held = first_item(&get(&app, base, &token, path).await?.1);
        assert_eq!(held["enabled"], json!(enabled), "{base} did not serve its cached page");
    }

    // Any announced write to assets retires the page on both replicas.
    sqlx::query("UPDATE assets SET tags = tags || '{\"cache\": \"retired\"}' WHERE id = $1")
        .bind(id)
        .execute(&app.pool)
        .await?;
    for base in [&a, &b] {
        let (last, fresh) = poll(
            || async { Ok(first_item(&get(&app, base, &token, path).await?.1)) },
            |i| i["tags"]["cache"] == "retired" && i["enabled"] == json!(!enabled),
        )
        .await?;
        assert!(fresh, "{base} kept a page the inventory change retired: {last}");
    }

    // A lost notification connection: a quiet change, then the listeners' connections are cut.
    // Each replica reconnects and retires everything it held, since it may have missed news.
    quietly(&app, "UPDATE assets SET enabled = NOT enabled WHERE id = $1", id).await?;
    let held = first_item(&get(&app, &a, &token, path).await?.1);
    assert_eq!(held["enabled"], json!(!enabled), "the quiet change was served before the cut");
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%'",
    )
    .fetch_all(&app.pool)
    .await?;
    assert_eq!(cut, vec![true, true], "one listener per replica");
    for base in [&a, &b] {
        let (last, fresh) = poll(
            || async { Ok(first_item(&get(&app, base, &token, path).await?.1)) },
            |i| i["enabled"] == json!(enabled),
        )
        .await?;
        assert!(fresh, "{base} kept serving after its listener reconnected: {last}");
    }

    // Thresholds changed through B: B's next answer and then A's count the new critical window.
    let critical = "/api/assets/discovery/assets?status=critical&limit=1";
    let before = get(&app, &a, &token, critical).await?.1["total"].clone();
    let (code, body) = call(
        &app,
        reqwest::Method::PUT,
        &b,
        &token,
        "/api/settings/compliance-policy",
        Some(json!({"criticalExpiryDays": 20})),
    )
    .await?;
    assert_eq!(code, 200, "{body}");
    let expected: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM assets a JOIN vaults v ON v.id = a.vault_id \
         WHERE a.deleted_at IS NULL AND v.deleted_at IS NULL \
           AND a.expires_on > now() AND a.expires_on < now() + interval '20 days'",
    )
    .fetch_one(&app.pool)
    .await?;
    assert_ne!(json!(expected), before, "the scenario has items between 7 and 20 days");
    assert_eq!(get(&app, &b, &token, critical).await?.1["total"], json!(expected));
    let (last, fresh) = poll(
        || async { Ok(get(&app, &a, &token, critical).await?.1["total"].clone()) },
        |total| *total == json!(expected),
    )
    .await?;
    assert!(fresh, "replica A kept the old thresholds: total {last}, expected {expected}");
    app.finish().await
}
