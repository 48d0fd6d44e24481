-- Lockout counts failed logins within a window; tokens issued before tokens_valid_after are
-- refused (set when a user is deleted, demoted or given a new password).
ALTER TABLE users ADD COLUMN failed_window_start timestamptz;
ALTER TABLE users ADD COLUMN tokens_valid_after timestamptz;
