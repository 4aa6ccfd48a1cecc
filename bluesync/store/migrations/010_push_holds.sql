-- Held requests across processes.
--
-- hold_seq orders the held requests (Ping, Sync with Wait) of one device
-- wherever they are held: holding one bumps it in the UPDATE that also
-- NOTIFYs it, so the row lock serialises the bumps and PostgreSQL delivers
-- the notifications in that order.  A process holding the device's older
-- request ends it when it hears of a higher number, and never because of a
-- lower one that arrives late (bluesync.push.notifier).
ALTER TABLE devices ADD COLUMN hold_seq bigint NOT NULL DEFAULT 0;

-- What a Ping compares, as a function so that each session plans the
-- statement once: when thousands of held Pings wake together, planning it
-- afresh for each cost more than running it.  Row 0 is the account's
-- hierarchy counter with the device's newest hierarchy state; then one row
-- per watched live folder with the modseq of the device's newest state for
-- it (NULL if it never synced it).  See SyncStateStore.push_view.
CREATE FUNCTION push_view(p_device bigint, p_account bigint, p_folders bigint[])
RETURNS TABLE (collection bigint, modseq bigint, synced bigint, epoch text, counter integer, state jsonb)
LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
        SELECT 0::bigint, a.hierarchy_modseq, h.modseq, h.epoch, h.counter, h.state FROM accounts a
        LEFT JOIN LATERAL (SELECT s.modseq, s.epoch, s.counter, s.state FROM sync_states s
            WHERE s.device_id = p_device AND s.collection = 0 ORDER BY s.counter DESC LIMIT 1) h ON true
        WHERE a.id = p_account
        UNION ALL
        SELECT f.id, f.modseq, l.modseq, NULL, NULL, NULL FROM folders f
        LEFT JOIN LATERAL (SELECT s.modseq FROM sync_states s
            WHERE s.device_id = p_device AND s.collection = f.id ORDER BY s.counter DESC LIMIT 1) l ON true
        WHERE f.account_id = p_account AND f.id = ANY (p_folders) AND NOT f.deleted;
END
$$;
