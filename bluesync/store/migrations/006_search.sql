-- Full-text search (MS-ASCMD 2.2.1.16 Search, 2.2.1.15 ResolveRecipients).
--
-- Mailboxes are multilingual, so no stemming: the 'simple' configuration
-- (lower-casing, no stop words), with accents folded by unaccent where the
-- server has it (the embedded PostgreSQL does; a managed one may refuse
-- CREATE EXTENSION, and search then stays accent-sensitive).
--
-- ASCII punctuation is turned into spaces before parsing, here and in
-- bluesync/store/fulltext.py alike, so "alice@example.org" is indexed as
-- alice, example, org and "e-mail" as e, mail: a phone user typing "alice"
-- finds her, and the query side splits words the same way.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS unaccent;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'unaccent is not available (%); search will be accent-sensitive', SQLERRM;
END
$$;

CREATE TEXT SEARCH CONFIGURATION bluesync_search (COPY = simple);

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent') THEN
        ALTER TEXT SEARCH CONFIGURATION bluesync_search
            ALTER MAPPING FOR word, hword, hword_part, numword, numhword, hword_numpart
            WITH unaccent, simple;
    END IF;
END
$$;

-- The vector of a message: subject weighted A, sender and recipients B,
-- body text C.  Written by ItemStore.insert from NewItem.search; NULL for
-- items that are not searchable (other content classes).
ALTER TABLE items ADD COLUMN search tsvector;

-- Backfill what the rows already hold.  The body text of messages stored
-- before this migration is not in the database (only the raw message is),
-- so older mail is found by subject and people only.
UPDATE items SET search =
    setweight(to_tsvector('bluesync_search',
        translate(subject, '!"#$%&''()*+,-./:;<=>?@[\]^_`{|}~', '                                ')), 'A')
    || setweight(to_tsvector('bluesync_search',
        translate(from_address || ' ' || coalesce(summary->>'to', '') || ' ' || coalesce(summary->>'cc', ''),
                  '!"#$%&''()*+,-./:;<=>?@[\]^_`{|}~', '                                ')), 'B')
    || setweight(to_tsvector('bluesync_search',
        translate(coalesce(summary->>'body_text_for_search', ''),
                  '!"#$%&''()*+,-./:;<=>?@[\]^_`{|}~', '                                ')), 'C')
WHERE content_class = 'Email';

-- One GIN index per account-and-words: with btree_gin the account id is a
-- key of the same index, so a word common across a large installation is
-- intersected with one account's posting list instead of being fetched for
-- everyone.  Without btree_gin the index holds the words only.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS btree_gin;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'btree_gin is not available (%); the search index holds words only', SQLERRM;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'btree_gin') THEN
        CREATE INDEX items_search ON items USING gin (account_id, search);
    ELSE
        CREATE INDEX items_search ON items USING gin (search);
    END IF;
END
$$;

-- Newest first across the whole mailbox: when a word is so common that most
-- of the mailbox matches, walking this index and checking each row beats
-- collecting every match and sorting.
CREATE INDEX items_account_date ON items (account_id, date_received);

-- The global address list (Search Store "GAL", ResolveRecipients): display
-- name and address, matched by word prefix.
ALTER TABLE accounts ADD COLUMN directory tsvector GENERATED ALWAYS AS (
    to_tsvector('bluesync_search'::regconfig,
        translate(display_name || ' ' || address,
                  '!"#$%&''()*+,-./:;<=>?@[\]^_`{|}~', '                                '))
) STORED;
CREATE INDEX accounts_directory ON accounts USING gin (directory);
