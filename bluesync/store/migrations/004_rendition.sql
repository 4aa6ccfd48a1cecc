-- What serving an item needs besides its summary, prepared once when it is
-- stored (for email: the body as text and HTML, and the attachment list),
-- so a Sync does not parse every message again.  NULL: prepared on demand.
ALTER TABLE items ADD COLUMN rendition jsonb;
