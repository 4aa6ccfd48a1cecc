-- Contacts, calendar, tasks and notes (issue 7): what the sync and the
-- import need of a PIM item besides its stored vCard / iCalendar.
--
-- uid         the vCard or iCalendar UID: import de-duplication, and a 16.x
--             calendar Add that names an event already in the folder
--             (ClientUid, MS-ASCAL 2.2.2.13).
-- start_time  an event's first start (UTC).
-- end_time    the end of an event's last occurrence; NULL for a series
--             that never ends.  Calendar FilterType keeps events with
--             end_time NULL or after the cutoff.
-- complete    a task's completion: Tasks FilterType 8 keeps the others.
ALTER TABLE items ADD COLUMN uid text;
ALTER TABLE items ADD COLUMN start_time timestamptz;
ALTER TABLE items ADD COLUMN end_time timestamptz;
ALTER TABLE items ADD COLUMN complete boolean;

CREATE INDEX items_uid ON items (folder_id, uid) WHERE uid IS NOT NULL;
