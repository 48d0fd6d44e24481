-- The scan now writes each asset's vault name itself (it has just read the vault row), so the
-- per-row lookup of migration 0009 runs only for writers that leave the column out; moving an
-- asset to another vault still refreshes it. At 100 rows per vault the lookup was about a sixth
-- of the insert's time.
DROP TRIGGER assets_copy_vault_name ON assets;
CREATE TRIGGER assets_copy_vault_name_when_missing BEFORE INSERT ON assets
    FOR EACH ROW WHEN (NEW.vault_name IS NULL)
    EXECUTE FUNCTION assets_copy_vault_name();
CREATE TRIGGER assets_copy_vault_name_on_move BEFORE UPDATE OF vault_id ON assets
    FOR EACH ROW EXECUTE FUNCTION assets_copy_vault_name();
