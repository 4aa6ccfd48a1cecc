-- Delivery as a function: ItemStore.deliver's statement, unchanged in what
-- it does, inside PL/pgSQL so that PostgreSQL plans it once per session.
--
-- Sent as a query of its own, the statement cost 0.35-0.64 ms to plan on
-- every message (psycopg2 has no prepared statements), more than running
-- it.  PL/pgSQL keeps its statements' plans for the life of the
-- connection; a generic plan is forced because the statement's shape never
-- depends on its values (one to a few accounts, looked up by key).
--
-- Every column a NewItem may set is a parameter; NULL for one it does not
-- set takes the table's default (items, migrations 002 and 008).  The
-- conversation-rule lookup is store/conversations.py's destination_sql
-- written out (2 is folders.INBOX); keep the two alike.
--
-- It returns (account, new item id) per target, item NULL when the
-- account's folder went away while the lock was awaited, and no row for an
-- account without the folder (or Inbox): ItemStore.deliver turns both into
-- errors, and then nothing was stored.
CREATE FUNCTION bluesync_deliver(
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
        RETURNING items.account_id, items.id)
    SELECT t.account_id, a.id FROM target t LEFT JOIN added a ON a.account_id = t.account_id;
END
$$;
