-- The searches a device began with the Find command (MS-ASCMD 2.2.1.2).
--
-- A client must start each search, named by its SearchId, at Range 0
-- (2.2.3.143.1), and may then page on with the same SearchId; a request
-- for a later page of a search it never began is answered StartWithRangeZero
-- (2.2.3.177.2).  The device's few most recent SearchIds are enough to tell
-- the two apart, on every bluesync process sharing the database; results
-- are recomputed for every page, so nothing else of a search is kept.
ALTER TABLE devices ADD COLUMN find_searches uuid[] NOT NULL DEFAULT '{}';
