-- API replicas keep two soft caches (token checks, asset-list pages). These triggers tell every
-- replica, through LISTEN/NOTIFY, that what a cache holds may have changed. They fire once per
-- statement, and Postgres folds equal notifications of one transaction into one, delivered at
-- commit: a scan writing a vault costs one notification.

CREATE FUNCTION notify_auth_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('certifyclouds_auth', '');
    RETURN NULL;
END
$$;

CREATE FUNCTION notify_inventory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('certifyclouds_inventory', '');
    RETURN NULL;
END
$$;

-- What a token check reads: the user's role, tokens_valid_after, the row itself, revocations.
CREATE TRIGGER users_notify_auth
    AFTER UPDATE OF role, tokens_valid_after OR DELETE OR TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION notify_auth_changed();
CREATE TRIGGER revoked_tokens_notify_auth
    AFTER INSERT OR TRUNCATE ON revoked_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION notify_auth_changed();

-- What an asset-list page reads: assets, their vaults and subscriptions, and the expiry
-- thresholds kept in settings.
CREATE TRIGGER assets_notify_inventory
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON assets
    FOR EACH STATEMENT EXECUTE FUNCTION notify_inventory_changed();
CREATE TRIGGER vaults_notify_inventory
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON vaults
    FOR EACH STATEMENT EXECUTE FUNCTION notify_inventory_changed();
CREATE TRIGGER subscriptions_notify_inventory
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON subscriptions
    FOR EACH STATEMENT EXECUTE FUNCTION notify_inventory_changed();
CREATE TRIGGER settings_notify_inventory
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON settings
    FOR EACH STATEMENT EXECUTE FUNCTION notify_inventory_changed();
