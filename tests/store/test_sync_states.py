"""
Sync states read together with their folder (SyncStateStore.in_folder),
the one statement a Sync of a collection starts with.
"""

from bluesync.store.folders import INBOX
from tests.support import DatabaseTestCase


class InFolderTests(DatabaseTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.alice = await self.store.create_account("alice@example.org", "Alice", "unused-hash")
        self.bob = await self.store.create_account("bob@example.org", "Bob", "unused-hash")
        self.device = await self.store.devices.touch(self.alice.id, "DEV1", "iPhone", "ua", "16.1", "Sync")
        self.inbox = await self.store.folders.by_type(self.alice.id, INBOX)
        self.states = self.store.sync_states

    async def counters(self) -> list[int]:
        rows = await self.database.query(
            "SELECT counter FROM sync_states WHERE device_id = %s AND collection = %s ORDER BY counter",
            (self.device.id, self.inbox.id))
        return [row[0] for row in rows]

    async def test_folder_and_state(self):
        """The folder as folders.get reads it and the state as get reads it."""
        first = await self.states.save_next(self.device.id, self.inbox.id, None, 7, {"filter": 3})
        folder, state = await self.states.in_folder(self.alice.id, self.device.id, self.inbox.id, first.key)
        self.assertEqual(folder, await self.store.folders.get(self.alice.id, self.inbox.id))
        self.assertEqual(state, first)

    async def test_unknown_key(self):
        """A key that names no state, or is no key at all, still finds the folder."""
        await self.states.save_next(self.device.id, self.inbox.id, None, 7)
        for key in ("deadbeef9", "0", "", "x" * 80):
            folder, state = await self.states.in_folder(self.alice.id, self.device.id, self.inbox.id, key)
            self.assertEqual((folder.id, state), (self.inbox.id, None))

    async def test_other_accounts_folder(self):
        """Another account's folder, a deleted one or no id: neither folder nor state."""
        first = await self.states.save_next(self.device.id, self.inbox.id, None, 7)
        bobs = await self.store.folders.by_type(self.bob.id, INBOX)
        self.assertEqual(await self.states.in_folder(self.alice.id, self.device.id, bobs.id, first.key), (None, None))
        self.assertEqual(await self.states.in_folder(self.alice.id, self.device.id, None, first.key), (None, None))
        await self.database.execute("UPDATE folders SET deleted = true WHERE id = %s", (self.inbox.id,))
        self.assertEqual(await self.states.in_folder(self.alice.id, self.device.id, self.inbox.id, first.key),
                         (None, None))

    async def test_current_key_acknowledges(self):
        """
        The previous key still reads its state (its answer may have been
        lost); using the current key drops the older states.
        """
        first = await self.states.save_next(self.device.id, self.inbox.id, None, 7)
        second = await self.states.save_next(self.device.id, self.inbox.id, first, 9)
        _, state = await self.states.in_folder(self.alice.id, self.device.id, self.inbox.id, first.key)
        self.assertEqual(state, first)
        self.assertEqual(await self.counters(), [1, 2])
        _, state = await self.states.in_folder(self.alice.id, self.device.id, self.inbox.id, second.key)
        self.assertEqual(state, second)
        self.assertEqual(await self.counters(), [2])
