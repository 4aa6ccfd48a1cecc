-- The collections and options of a device's last full Sync request, so an
-- empty Sync (14.0+) or a Partial one can reuse them (MS-ASCMD 2.2.3.124).
ALTER TABLE devices ADD COLUMN last_sync jsonb;
