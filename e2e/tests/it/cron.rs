//! Cron: every replica runs the schedules, each tick is enqueued once, a missed tick is caught
//! up once.

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;

use crate::harness::{Options, TestApp};

async fn ticks(
    app: &TestApp,
    schedule: &str,
) -> anyhow::Result<Vec<(chrono::DateTime<Utc>, String, Option<uuid::Uuid>)>> {
    Ok(sqlx::query_as(
        "SELECT fire_at, outcome, scan_id FROM schedule_ticks WHERE schedule = $1 ORDER BY fire_at",
    )
    .bind(schedule)
    .fetch_all(&app.pool)
    .await?)
}

#[tokio::test]
async fn three_replicas_enqueue_each_tick_of_a_schedule_once() -> anyhow::Result<()> {
    let mut app = TestApp::spawn_with(Options {
        without_worker: true,
        extra_env: vec![("SCAN_SCHEDULE_DELTA", "*/2 * * * * *".to_owned())],
        ..Default::default()
    })
    .await?;
    for _ in 0..3 {
        app.start_worker().await?;
    }

    // Wait for state, not time: until four ticks were claimed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while ticks(&app, "delta").await?.len() < 4 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "the schedule never fired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop_workers().await?;

    let claimed = ticks(&app, "delta").await?;
    for pair in claimed.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(gap.num_seconds() >= 2 && gap.num_seconds() % 2 == 0, "ticks {pair:?}");
    }
    let enqueued: Vec<uuid::Uuid> =
        claimed.iter().filter(|t| t.1 == "enqueued").filter_map(|t| t.2).collect();
    assert!(!enqueued.is_empty(), "no tick recorded a scan: {claimed:?}");
    let scheduled: i64 =
        sqlx::query_scalar("SELECT count(*) FROM scans WHERE requested_by = 'schedule:delta'")
            .fetch_one(&app.pool)
            .await?;
    assert_eq!(scheduled, enqueued.len() as i64, "one scan per enqueued tick, none twice");
    let modes: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT mode FROM scans").fetch_all(&app.pool).await?;
    assert_eq!(modes, ["delta"]);

    app.finish().await
}

#[tokio::test]
async fn a_tick_missed_during_downtime_is_caught_up_once() -> anyhow::Result<()> {
    let mut app = TestApp::spawn_with(Options {
        without_worker: true,
        extra_env: vec![("SCAN_SCHEDULE_FULL", "0 0 * * * *".to_owned())],
        ..Default::default()
    })
    .await?;
    // The last claimed tick was three hours ago: the workers were down since.
    let long_ago = Utc::now() - chrono::Duration::hours(3);
    sqlx::query(
        "INSERT INTO schedule_ticks (schedule, fire_at, claimed_by, outcome) \
         VALUES ('full', date_trunc('hour', $1::timestamptz), 'old-worker', 'enqueued')",
    )
    .bind(long_ago)
    .execute(&app.pool)
    .await?;

    app.start_worker().await?;
    app.start_worker().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ticks(&app, "full").await?.len() < 2 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "no catch-up happened");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let token = app.login().await?;
    let caught = ticks(&app, "full").await?;
    assert_eq!(caught.len(), 2, "one catch-up for three missed ticks: {caught:?}");
    assert_eq!(caught[1].1, "catch_up");
    let scan_id = caught[1].2.context("the catch-up recorded a scan")?;
    let done = app.wait_for_scan(&token, &scan_id.to_string()).await?;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["mode"], "full");

    app.stop_workers().await?;
    assert_eq!(ticks(&app, "full").await?.len(), 2, "stopping adds no tick");
    app.finish().await
}
