-- The first schema: users and sessions, the job ledger, scans, the inventory of subscriptions,
-- vaults and assets, and the worker heartbeat table that /health reads.
-- Forward-only: later migrations add columns and tables, they never rewrite these.

CREATE TABLE users (
    id              uuid PRIMARY KEY,
    username        text NOT NULL,
    email           text,
    password_hash   text NOT NULL,
    role            text NOT NULL CHECK (role IN ('admin', 'user')),
    failed_logins   integer NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    last_login_at   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Usernames are compared case-insensitively, so "Admin" and "admin" cannot both exist.
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

-- A logout revokes the token's jti until the token would have expired anyway.
CREATE TABLE revoked_tokens (
    jti         uuid PRIMARY KEY,
    expires_at  timestamptz NOT NULL
);

-- Settings stored by the API override environment defaults (category + key, JSON value).
CREATE TABLE settings (
    category    text NOT NULL,
    key         text NOT NULL,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    updated_by  text,
    PRIMARY KEY (category, key)
);

CREATE TABLE subscriptions (
    id              text PRIMARY KEY,           -- the Azure subscription GUID, lower case
    name            text,
    tenant_id       text,
    state           text,
    -- 'registered' rows were added through the API and narrow scans; 'discovered' rows were
    -- only seen through Resource Manager.
    source          text NOT NULL CHECK (source IN ('registered', 'discovered')),
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz
);

CREATE TABLE scans (
    id              uuid PRIMARY KEY,
    mode            text NOT NULL CHECK (mode IN ('full', 'delta', 'force')),
    status          text NOT NULL CHECK (status IN
                        ('queued', 'running', 'completed', 'completed_with_errors', 'failed',
                         'cancelled')),
    phase           text NOT NULL DEFAULT 'queued',
    requested_by    text,
    subscriptions   text[],                     -- NULL: every subscription in scope
    vaults_total    integer NOT NULL DEFAULT 0,
    vaults_done     integer NOT NULL DEFAULT 0,
    vaults_failed   integer NOT NULL DEFAULT 0,
    items_found     integer NOT NULL DEFAULT 0,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX scans_created_at_idx ON scans (created_at DESC);

-- The ledger of background work. Status endpoints read only this table and the domain rows;
-- Redis carries a copy of the work, keyed by the same id.
CREATE TABLE jobs (
    id              uuid PRIMARY KEY,
    kind            text NOT NULL,
    subject         text,
    idempotency_key text UNIQUE,
    status          text NOT NULL CHECK (status IN
                        ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempt         integer NOT NULL DEFAULT 0,
    worker          text,
    scan_id         uuid REFERENCES scans (id) ON DELETE CASCADE,
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    progress        jsonb,
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    heartbeat_at    timestamptz
);
CREATE INDEX jobs_scan_id_idx ON jobs (scan_id);
CREATE INDEX jobs_status_idx ON jobs (status) WHERE status IN ('queued', 'running');

CREATE TABLE vaults (
    id                      uuid PRIMARY KEY,
    resource_id             text NOT NULL,      -- ARM id, compared lower case
    subscription_id         text NOT NULL,
    resource_group          text NOT NULL,
    name                    text NOT NULL,
    location                text,
    vault_uri               text NOT NULL,
    tenant_id               text,
    sku                     text,
    rbac_enabled            boolean NOT NULL DEFAULT false,
    soft_delete_enabled     boolean NOT NULL DEFAULT false,
    purge_protection        boolean NOT NULL DEFAULT false,
    public_network_access   text,
    tags                    jsonb NOT NULL DEFAULT '{}'::jsonb,
    first_seen_at           timestamptz NOT NULL DEFAULT now(),
    last_seen_at            timestamptz NOT NULL DEFAULT now(),
    last_scan_id            uuid,
    deleted_at              timestamptz
);
CREATE UNIQUE INDEX vaults_resource_id_key ON vaults (lower(resource_id));

-- One row per vault per scan: the vault's outcome in that scan (and the error code on failure).
CREATE TABLE scan_vaults (
    scan_id         uuid NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    vault_id        uuid NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    job_id          uuid,
    status          text NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    error_code      text,
    error_message   text,
    secrets         integer NOT NULL DEFAULT 0,
    keys            integer NOT NULL DEFAULT 0,
    certificates    integer NOT NULL DEFAULT 0,
    started_at      timestamptz,
    finished_at     timestamptz,
    PRIMARY KEY (scan_id, vault_id)
);

-- Metadata of secrets, keys and certificates. Never a value. Status is not stored: it is
-- derived at read time from expires_on and the compliance-policy thresholds.
CREATE TABLE assets (
    id              uuid PRIMARY KEY,
    vault_id        uuid NOT NULL REFERENCES vaults (id) ON DELETE CASCADE,
    asset_type      text NOT NULL CHECK (asset_type IN ('secret', 'key', 'certificate')),
    name            text NOT NULL,
    version         text,
    azure_id        text NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    created_on      timestamptz,
    updated_on      timestamptz,
    expires_on      timestamptz,
    not_before      timestamptz,
    content_type    text,
    tags            jsonb NOT NULL DEFAULT '{}'::jsonb,
    recovery_level  text,
    key_type        text,
    key_size        integer,
    key_curve       text,
    subject         text,
    issuer          text,
    sans            jsonb NOT NULL DEFAULT '[]'::jsonb,
    thumbprint      text,
    serial_number   text,
    first_seen_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_scan_id    uuid,
    -- Items that a full scan no longer finds are marked, not dropped, so history stays intact.
    deleted_at      timestamptz
);
CREATE UNIQUE INDEX assets_natural_key ON assets (vault_id, asset_type, name);
CREATE INDEX assets_expires_on_idx ON assets (expires_on) WHERE deleted_at IS NULL;

CREATE TABLE worker_heartbeats (
    worker_name     text PRIMARY KEY,
    started_at      timestamptz NOT NULL DEFAULT now(),
    seen_at         timestamptz NOT NULL DEFAULT now()
);
