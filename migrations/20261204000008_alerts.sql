-- Alerting: rules, the crossings they detect (events), and the messages that carry them
-- (deliveries, with one row per attempt).
--
-- Once-only delivery rests on `alert_events.dedupe_key`: a threshold crossing of one asset
-- version, for one rule and channel, can be recorded once, whoever evaluates it and however
-- often. An event is handed to exactly one delivery (`delivery_id`, set in the transaction that
-- creates the delivery), and a delivery is sent by one job whose row is claimed by id.

CREATE TABLE alert_rules (
    id              uuid PRIMARY KEY,
    name            text NOT NULL,
    alert_type      text NOT NULL CHECK (alert_type IN
                        ('secret_expiring', 'secret_expired', 'scan_completed', 'vault_error')),
    -- Escalation thresholds in days, largest first; empty for types without thresholds.
    thresholds      integer[] NOT NULL DEFAULT '{}',
    -- NULL: secrets, keys and certificates alike.
    asset_types     text[],
    delivery_method text NOT NULL CHECK (delivery_method IN
                        ('email', 'slack', 'teams', 'pagerduty', 'webhook')),
    delivery_mode   text NOT NULL CHECK (delivery_mode IN ('immediate', 'digest')),
    -- Email addresses, or `tag:<name>` for the address in an asset's tag.
    recipients      text[] NOT NULL DEFAULT '{}',
    -- {"subscriptions": [...], "vaults": [...], "tags": {...}}; empty: everything.
    scope           jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The webhook URL or PagerDuty routing key and the signing secret, sealed with a key derived
    -- from SECRET_KEY (AES-256-GCM). Never returned.
    channel_sealed  text,
    -- What the API shows of the channel (the URL's host), so a user can tell rules apart.
    channel_hint    text,
    enabled         boolean NOT NULL DEFAULT true,
    created_by      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alert_deliveries (
    id              uuid PRIMARY KEY,
    rule_id         uuid REFERENCES alert_rules (id) ON DELETE SET NULL,
    rule_name       text NOT NULL,
    alert_type      text NOT NULL,
    channel         text NOT NULL,
    mode            text NOT NULL CHECK (mode IN ('immediate', 'digest', 'test')),
    -- The email address, or NULL for webhook channels and for events nobody could be found for.
    recipient       text,
    status          text NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    error           text,
    subject         text NOT NULL,
    event_count     integer NOT NULL DEFAULT 0,
    job_id          uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz
);
CREATE INDEX alert_deliveries_created_at_idx ON alert_deliveries (created_at DESC);

CREATE TABLE alert_delivery_attempts (
    delivery_id     uuid NOT NULL REFERENCES alert_deliveries (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    worker          text,
    status          text NOT NULL CHECK (status IN ('sending', 'sent', 'failed', 'retrying')),
    error           text,
    -- The HTTP status or SMTP reply code the peer answered, when it answered.
    response_code   integer,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE alert_events (
    id              uuid PRIMARY KEY,
    rule_id         uuid NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    dedupe_key      text NOT NULL UNIQUE,
    alert_type      text NOT NULL,
    asset_id        uuid REFERENCES assets (id) ON DELETE SET NULL,
    asset_version   text,
    vault_id        uuid REFERENCES vaults (id) ON DELETE SET NULL,
    scan_id         uuid,
    threshold_days  integer,
    -- What the message says about the event (names, expiry, scan figures), frozen when found.
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- The address the event goes to; NULL for webhook channels.
    recipient       text,
    -- pending: waiting for a digest (or an immediate delivery being created); assigned: part of
    -- a delivery; unroutable: no recipient could be found.
    state           text NOT NULL CHECK (state IN ('pending', 'assigned', 'unroutable')),
    delivery_id     uuid REFERENCES alert_deliveries (id) ON DELETE SET NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_events_pending_idx ON alert_events (rule_id) WHERE state = 'pending';
CREATE INDEX alert_events_delivery_idx ON alert_events (delivery_id);
