-- Cron ticks claimed by a worker replica. Every replica runs the same schedules; the primary
-- key makes exactly one of them enqueue the work of a tick, in the same transaction that
-- records the scan and its job.
CREATE TABLE schedule_ticks (
    schedule    text NOT NULL,
    fire_at     timestamptz NOT NULL,
    claimed_by  text NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT now(),
    -- 'enqueued' (a scan was recorded), 'skipped_active' (a scan was already running),
    -- 'catch_up' (enqueued at start-up for a tick missed during downtime).
    outcome     text NOT NULL,
    scan_id     uuid REFERENCES scans (id) ON DELETE SET NULL,
    PRIMARY KEY (schedule, fire_at)
);
