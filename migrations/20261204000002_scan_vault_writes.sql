-- How many asset rows a vault job wrote: a delta scan writes only what changed, and this
-- column is how the product (and its tests) can tell.
ALTER TABLE scan_vaults ADD COLUMN written integer NOT NULL DEFAULT 0;

-- Which scan superseded a cancelled one (mode "force").
ALTER TABLE scans ADD COLUMN superseded_by uuid;
