-- Conversation rules expire when unused ([mail] conversation_rule_days):
-- delivery now renews the rule that routed a message.
--
-- bluesync_deliver (013) as it was, plus one CTE: when a copy whose folder
-- was not given lands in the folder the account's rule for the message's
-- conversation names, the rule's updated_at is set to now().  It writes
-- only when a rule matched and was last renewed over an hour ago (expiry
-- counts in days), so a busy conversation costs one row version an hour
-- and mail without a rule costs one index probe per copy.  SKIP LOCKED: a
-- MoveAlways renewing the rule, or a FolderDelete removing it, holds its
-- row; delivery never waits for either.
--
-- No index on updated_at: the table holds one row per MoveAlways, the
-- hourly purge reads it whole, and renewals stay HOT updates.
CREATE OR REPLACE FUNCTION bluesync_deliver(
    p_accounts bigint[], p_folders bigint[], p_channel text,
    p_content_class text, p_content bytea, p_summary jsonb, p_read boolean, p_flag jsonb,
    p_categories text[], p_rendition jsonb,
    p_title text, p_people text, p_body text,
    p_subject text, p_from_address text, p_date_received timestamptz, p_message_id text,
    p_size integer, p_importance smallint, p_has_attachments boolean, p_message_class text,
    p_conversation_id bytea, p_uid text, p_start_time timestamptz, p_end_time timestamptz,
    p_complete boolean
) RETURNS TABLE (delivered_account bigint, delivered_item bigint)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    words tsvector;
BEGIN
    -- Once for all copies, and before any folder lock is taken.
    IF p_title IS NOT NULL THEN
        words := setweight(to_tsvector('bluesync_search', p_title), 'A')
              || setweight(to_tsvector('bluesync_search', p_people), 'B')
              || setweight(to_tsvector('bluesync_search', p_body), 'C');
    END IF;
    RETURN QUERY
    WITH wanted AS (SELECT * FROM unnest(p_accounts, p_folders) AS w(account_id, folder_id)),
    -- A folder of NULL: the account's first live Inbox, unless a MoveAlways
    -- rule sends the message's conversation to a live folder of its own.
    target AS (SELECT w.account_id, f.id FROM wanted w CROSS JOIN LATERAL (
        SELECT id FROM folders f
        WHERE f.account_id = w.account_id AND (f.id = w.folder_id
            OR w.folder_id IS NULL AND NOT f.deleted AND (f.type = 2
            OR f.id = (SELECT r.folder_id FROM conversation_rules r
                       JOIN folders rf ON rf.id = r.folder_id AND rf.account_id = r.account_id
                       WHERE r.account_id = w.account_id AND r.conversation_id = p_conversation_id
                       AND NOT rf.deleted)))
        ORDER BY f.type = 2, f.id LIMIT 1) f),
    -- NOT deleted again once the lock is ours: a folder deleted while this
    -- waited for it takes no copy, and then none is stored.
    locked AS (SELECT folders.id FROM folders WHERE folders.id IN (SELECT target.id FROM target)
        AND NOT folders.deleted ORDER BY folders.id FOR UPDATE),
    stamped AS (UPDATE folders f SET modseq = f.modseq + 1 FROM locked l
        WHERE f.id = l.id AND (SELECT count(*) FROM locked) = cardinality(p_accounts)
        RETURNING f.id, f.account_id, f.modseq, pg_notify(p_channel, concat_ws(' ', 'f', f.account_id, f.id))),
    added AS (INSERT INTO items (account_id, folder_id, modseq, created_modseq, content_class, content,
            summary, read, flag, categories, rendition, search, subject, from_address, date_received,
            message_id, size, importance, has_attachments, message_class, conversation_id, uid,
            start_time, end_time, complete)
        SELECT s.account_id, s.id, s.modseq, s.modseq, p_content_class, p_content,
            coalesce(p_summary, '{}'), coalesce(p_read, false), p_flag, coalesce(p_categories, '{}'),
            p_rendition, words, coalesce(p_subject, ''), coalesce(p_from_address, ''),
            coalesce(p_date_received, now()), coalesce(p_message_id, ''), coalesce(p_size, 0),
            coalesce(p_importance, 1), coalesce(p_has_attachments, false), coalesce(p_message_class, ''),
            p_conversation_id, p_uid, p_start_time, p_end_time, p_complete
        FROM stamped s
        RETURNING items.account_id, items.id),
    -- A copy that went where the account's rule for the conversation says
    -- (its folder chosen here, not given) renews the rule, at most hourly;
    -- a rule locked by a MoveAlways or FolderDelete is theirs to settle.
    -- conversations.py's touch_rule_sql written out: keep the two alike.
    renewed AS (UPDATE conversation_rules SET updated_at = now()
        WHERE p_conversation_id IS NOT NULL AND (account_id, conversation_id) IN (
            SELECT r.account_id, r.conversation_id FROM conversation_rules r
            JOIN stamped s ON s.account_id = r.account_id AND s.id = r.folder_id
            JOIN wanted w ON w.account_id = r.account_id AND w.folder_id IS NULL
            WHERE r.conversation_id = p_conversation_id AND r.updated_at < now() - interval '1 hour'
            FOR UPDATE OF r SKIP LOCKED))
    SELECT t.account_id, a.id FROM target t LEFT JOIN added a ON a.account_id = t.account_id;
END
$$;
