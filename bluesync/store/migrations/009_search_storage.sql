-- Keep mailbox search interactive at 100,000 messages per account
-- (bench/search_bench.py).
--
-- A newest-first search either walks items_account_date and checks each
-- row's vector (cheap for a common word: a few rows give a page), or takes
-- the GIN matches and sorts their dates (cheap for a rare word); both read
-- the heap row of every candidate.  Measured on 100,000 messages:
--
-- - the vector stays inline, compressed (STORAGE MAIN): checking a row is
--   a decompression, not a TOAST lookup; counting the first 1,000 matches
--   of a common word went from 50 ms to 5 ms;
-- - the raw message, summary and rendition go out of line as soon as a row
--   passes 128 bytes (toast_tuple_target), so rows hold the vector and the
--   small columns: 1.25 KB instead of 1.7 KB a row.  Sync reads those
--   columns only for the items it sends, by id.
--
-- Both apply to rows written from now on.  The GIN pending list (fast
-- update) is scanned by every search until it is merged; 1 MB bounds that
-- scan while keeping delivery's inserts cheap.
ALTER TABLE items ALTER COLUMN search SET STORAGE MAIN;
ALTER TABLE items SET (toast_tuple_target = 128);
ALTER INDEX items_search SET (gin_pending_list_limit = 1024);
