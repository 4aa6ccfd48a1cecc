"""
The sync engine against the real store.
"""

from datetime import datetime, timezone

from twisted.internet import task

from bluesync.mail.delivery import deliver
from bluesync.store.folders import INBOX
from bluesync.sync.engine import SyncEngine
from tests.mail.test_delivery import MESSAGE
from tests.support import DatabaseTestCase

RECEIVED = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)


class CollectTests(DatabaseTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.account = await self.store.create_account("alice@example.org", "Alice", "unused-hash")
        self.device = await self.store.devices.touch(self.account.id, "DEV1", "iPhone", "ua", "16.1", "Sync")
        self.engine = SyncEngine(self.store, task.Clock())

    async def inbox(self):
        return await self.store.folders.by_type(self.account.id, INBOX)

    async def test_up_to_date_state_reads_no_items(self):
        """
        A state at the folder's counter is answered from the folder row
        alone: the items are not read.  (An item written without a stamp,
        which no writer does, shows that they are not.)
        """
        await deliver(self.store, [self.account], MESSAGE, RECEIVED)
        folder = await self.inbox()
        state = await self.engine.begin(self.device.id, folder, 0)
        batch = await self.engine.collect(self.account.id, folder, state, 10, 0, folder_is_current=True)
        self.assertEqual(len(batch.changes), 1)
        state = await self.engine.advance(state, folder, batch, 0)
        self.assertEqual(state.modseq, folder.modseq)
        await self.database.execute(
            "INSERT INTO items (account_id, folder_id, modseq, created_modseq, content_class, content)"
            " VALUES (%s, %s, %s, %s, 'Email', '')", (self.account.id, folder.id, folder.modseq + 1, folder.modseq + 1))
        batch = await self.engine.collect(self.account.id, folder, state, 10, 0, folder_is_current=True)
        self.assertEqual((batch.changes, batch.more_available, batch.upto), ([], False, state.modseq))

    async def test_stamped_change_found(self):
        """A change stamps the folder, so a state behind the folder's counter gets it."""
        folder = await self.inbox()
        state = await self.engine.begin(self.device.id, folder, 0)
        [item_id] = await deliver(self.store, [self.account], MESSAGE, RECEIVED)
        batch = await self.engine.collect(self.account.id, await self.inbox(), state, 10, 0, folder_is_current=True)
        self.assertEqual([change.item_id for change in batch.changes], [item_id])

    async def test_folder_read_before_a_write_is_not_trusted(self):
        """
        A folder read before a write of the same request (a device's own
        Add) is stale: the changes are asked for, and the state moves past
        the write.
        """
        folder = await self.inbox()
        state = await self.engine.begin(self.device.id, folder, 0)
        [item_id] = await deliver(self.store, [self.account], MESSAGE, RECEIVED)
        batch = await self.engine.collect(self.account.id, folder, state, 10, 0)
        self.assertEqual([change.item_id for change in batch.changes], [item_id])
        self.assertEqual(batch.upto, (await self.inbox()).modseq)
