//! The worker binary as a process: it refuses bad configuration, and SIGTERM stops it cleanly.

use std::process::{Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_certifyclouds-worker");

#[test]
fn a_worker_without_database_url_refuses_to_start_and_names_the_variable() -> anyhow::Result<()> {
    let output = Command::new(BIN).env_clear().output()?;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8(output.stderr)?;
    assert!(stderr.contains("DATABASE_URL must be set"), "{stderr}");
    Ok(())
}

#[tokio::test]
async fn sigterm_stops_the_worker_cleanly_and_removes_its_heartbeat() -> anyhow::Result<()> {
    let admin = sqlx::PgPool::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
    let database = format!("cc_worker_{}", uuid::Uuid::new_v4().simple());
    // The name is generated from a UUID above, never from input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"))).execute(&admin).await?;
    let url = format!("postgres://postgres@127.0.0.1:5432/{database}");

    let mut child = Command::new(BIN)
        .env_clear()
        .env("DATABASE_URL", &url)
        .env("REDIS_URL", "redis://127.0.0.1:6379")
        .env("QUEUE_PREFIX", format!("ccworker:{}", uuid::Uuid::new_v4().simple()))
        .env("SECRET_KEY", "worker-test-secret-key-long-enough-0123456")
        .env("WORKER_METRICS_ADDR", "off")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;

    // Wait until the worker announced itself in Postgres (migrations ran, workers registered).
    let pool = sqlx::PgPool::connect(&url).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let beats: Result<i64, _> =
            sqlx::query_scalar("SELECT count(*) FROM worker_heartbeats").fetch_one(&pool).await;
        if beats.is_ok_and(|n| n == 1) {
            break;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "worker never started");
        anyhow::ensure!(child.try_wait()?.is_none(), "worker exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let killed = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status()?;
    assert!(killed.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "worker ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "{status:?}");
    let beats: i64 =
        sqlx::query_scalar("SELECT count(*) FROM worker_heartbeats").fetch_one(&pool).await?;
    assert_eq!(beats, 0, "a clean shutdown removes the heartbeat");

    pool.close().await;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {database} WITH (FORCE)")))
        .execute(&admin)
        .await?;
    Ok(())
}
