-- Lists filter by type and expiry status and sort by expiry: this index serves both, so a
-- filtered page need not read the whole inventory (the benchmark's filtered list did).
CREATE INDEX assets_type_expires_on_idx ON assets (asset_type, expires_on)
    WHERE deleted_at IS NULL;
