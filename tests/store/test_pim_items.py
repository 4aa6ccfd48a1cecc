"""
The items store for contacts, events and tasks: FilterType per class in
the change query, what a FilterType change moves, UID lookups and the
import's batch writes.
"""

from datetime import datetime, timedelta, timezone

from bluesync.store.folders import CALENDAR, CONTACTS, TASKS
from bluesync.store.items import ADD, CHANGE, SOFT_DELETE, ItemFilter, NewItem
from tests.support import DatabaseTestCase

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)


def event(uid: str, end: datetime | None) -> NewItem:
    return NewItem("Calendar", f"BEGIN:VCALENDAR\r\nUID:{uid}\r\nEND:VCALENDAR\r\n".encode(),
                   columns={"uid": uid, "subject": uid, "end_time": end})


def task(uid: str, complete: bool) -> NewItem:
    return NewItem("Tasks", uid.encode(), columns={"uid": uid, "subject": uid, "complete": complete})


class PimItemTests(DatabaseTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.account = await self.store.create_account("alice@example.org", "Alice", "unused-hash")
        self.calendar = await self.store.folders.by_type(self.account.id, CALENDAR)
        self.tasks = await self.store.folders.by_type(self.account.id, TASKS)
        self.contacts = await self.store.folders.by_type(self.account.id, CONTACTS)

    async def add(self, folder, new: NewItem) -> int:
        (item_id,) = await self.store.items.deliver([(self.account.id, folder.id)], new)
        return item_id

    def kinds(self, batch) -> list[tuple[str, int]]:
        return [(change.kind, change.item_id) for change in batch.changes]

    async def test_calendar_filter(self):
        """Events ending before the cutoff are left out; a series without end never is."""
        cutoff = ItemFilter(ends_after=NOW - timedelta(days=14))
        old = await self.add(self.calendar, event("old", NOW - timedelta(days=30)))
        recent = await self.add(self.calendar, event("recent", NOW - timedelta(days=2)))
        endless = await self.add(self.calendar, event("endless", None))
        batch = await self.store.items.changes(self.account.id, self.calendar.id, 0, 10, item_filter=cutoff)
        self.assertEqual(self.kinds(batch), [(ADD, recent), (ADD, endless)])
        self.assertEqual(batch.upto, 3)
        self.assertEqual(await self.store.items.count_changes(self.account.id, self.calendar.id, 0,
                                                              item_filter=cutoff), 2)
        self.assertNotIn(old, [c.item_id for c in batch.changes])

    async def test_changed_out_of_filter_is_soft_deleted(self):
        """An event moved before the cutoff after the device got it comes as a soft delete."""
        cutoff = ItemFilter(ends_after=NOW - timedelta(days=14))
        item_id = await self.add(self.calendar, event("moving", NOW + timedelta(days=1)))
        await self.store.items.replace_content(self.account.id, self.calendar.id, item_id,
                                               event("moving", NOW - timedelta(days=40)))
        batch = await self.store.items.changes(self.account.id, self.calendar.id, 1, 10, item_filter=cutoff)
        self.assertEqual(self.kinds(batch), [(SOFT_DELETE, item_id)])
        self.assertIsNone(batch.changes[0].item)
        await self.store.items.replace_content(self.account.id, self.calendar.id, item_id,
                                               event("moving", NOW + timedelta(days=3)))
        batch = await self.store.items.changes(self.account.id, self.calendar.id, 2, 10, item_filter=cutoff)
        self.assertEqual(self.kinds(batch), [(CHANGE, item_id)])

    async def test_incomplete_tasks(self):
        """FilterType 8 leaves completed tasks out, and a task completed later is soft-deleted."""
        incomplete = ItemFilter(incomplete_only=True)
        done = await self.add(self.tasks, task("done", True))
        todo = await self.add(self.tasks, task("todo", False))
        batch = await self.store.items.changes(self.account.id, self.tasks.id, 0, 10, item_filter=incomplete)
        self.assertEqual(self.kinds(batch), [(ADD, todo)])
        await self.store.items.replace_content(self.account.id, self.tasks.id, todo, task("todo", True))
        batch = await self.store.items.changes(self.account.id, self.tasks.id, batch.upto, 10, item_filter=incomplete)
        self.assertEqual(self.kinds(batch), [(SOFT_DELETE, todo)])
        self.assertNotIn(done, [c.item_id for c in batch.changes])

    async def test_ids_crossing_filter(self):
        """A FilterType change moves the items inside one filter and outside the other."""
        old = await self.add(self.calendar, event("old", NOW - timedelta(days=30)))
        await self.add(self.calendar, event("recent", NOW - timedelta(days=2)))
        two_weeks = ItemFilter(ends_after=NOW - timedelta(days=14))
        month = ItemFilter(ends_after=NOW - timedelta(days=31))
        self.assertEqual(await self.store.items.ids_crossing_filter(self.account.id, self.calendar.id, two_weeks,
                                                                    None, 10), ([], [old]))
        self.assertEqual(await self.store.items.ids_crossing_filter(self.account.id, self.calendar.id, month,
                                                                    two_weeks, 10), ([old], []))
        self.assertEqual(await self.store.items.ids_crossing_filter(self.account.id, self.calendar.id, two_weeks,
                                                                    month, 1), ([], [old]))
        self.assertEqual(await self.store.items.ids_crossing_filter(self.account.id, self.calendar.id, two_weeks,
                                                                    month, 0), ([], []))

    async def test_store_batch_and_uids(self):
        """A batch adds and replaces in one stamp; UIDs find the items; ids come back in order."""
        first = await self.store.items.store_batch(self.account.id, self.contacts.id, [
            NewItem("Contacts", b"card a", columns={"uid": "a", "subject": "A"}),
            NewItem("Contacts", b"card b", columns={"uid": "b", "subject": "B"}),
            NewItem("Contacts", b"card c", columns={"uid": "c", "subject": "C", "size": 6}),
        ], {})
        self.assertEqual(len(first), 3)
        self.assertEqual(await self.store.items.ids_by_uid(self.account.id, self.contacts.id, ["a", "c", "z"]),
                         {"a": first[0], "c": first[2]})
        found = await self.store.items.by_uid(self.account.id, self.contacts.id, "b")
        self.assertEqual(found.id, first[1])
        added = await self.store.items.store_batch(
            self.account.id, self.contacts.id,
            [NewItem("Contacts", b"card d", columns={"uid": "d", "subject": "D"})],
            {first[0]: NewItem("Contacts", b"card a2", columns={"uid": "a", "subject": "A2"}),
             first[2]: NewItem("Contacts", b"card c2", columns={"uid": "c", "subject": "C2", "size": 7})},
        )
        items = {item.id: item for item in await self.store.items.folder_items(self.account.id, self.contacts.id)}
        self.assertEqual([items[i].content for i in [*first, *added]], [b"card a2", b"card b", b"card c2", b"card d"])
        self.assertEqual(sorted(item.modseq for item in items.values()), [2, 4, 5, 6])
        batch = await self.store.items.changes(self.account.id, self.contacts.id, 3, 10)
        self.assertEqual(self.kinds(batch), [(ADD, added[0]), (CHANGE, first[0]), (CHANGE, first[2])])

    async def test_release_client_id(self):
        """A released ClientId no longer names the item, so the device may use it again."""
        device = await self.store.devices.touch(self.account.id, "PHONE", "iPhone", "", "16.1", "Sync")
        item, created = await self.store.items.add_from_device(
            self.account.id, self.contacts.id, NewItem("Contacts", b"card"), device.id, "1")
        self.assertTrue(created)
        await self.store.items.release_client_id(device.id, "1")
        self.assertIsNone(await self.store.items.by_client_id(device.id, "1"))
        again, created = await self.store.items.add_from_device(
            self.account.id, self.contacts.id, NewItem("Contacts", b"other card"), device.id, "1")
        self.assertTrue(created)
        self.assertNotEqual(again.id, item.id)
