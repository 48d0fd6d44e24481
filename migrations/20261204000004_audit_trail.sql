-- The audit trail: append-only and chained. Each entry carries an HMAC (keyed from SECRET_KEY)
-- over its content and the previous entry's HMAC, so a verification proves nothing was edited
-- or removed. Entries are written in the same transaction as the change they record.
CREATE TABLE audit_entries (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    source_ip   text,
    user_agent  text,
    event_type  text NOT NULL,
    target      text,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hmac   text NOT NULL,
    hmac        text NOT NULL
);
CREATE INDEX audit_entries_at_idx ON audit_entries (at);
CREATE INDEX audit_entries_event_type_idx ON audit_entries (event_type);

-- Where a retention purge cut the chain: verification starts from the last anchor.
CREATE TABLE audit_anchors (
    id              bigserial PRIMARY KEY,
    cut_at          timestamptz NOT NULL DEFAULT now(),
    -- Entries with ids up to this one were purged...
    last_purged_id  bigint NOT NULL,
    -- ...and this was the HMAC of that last purged entry, which the next entry chains to.
    last_hmac       text NOT NULL,
    purged          bigint NOT NULL
);

-- Append-only: rows can be neither changed nor deleted, except by the retention purge, which
-- sets certifyclouds.audit_purge for its own transaction.
CREATE FUNCTION audit_entries_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('certifyclouds.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_entries_append_only
    BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_entries_guard();
