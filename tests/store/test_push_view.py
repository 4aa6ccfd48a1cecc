from bluesync.store.folders import INBOX, USER_MAIL
from bluesync.store.syncstate import HIERARCHY
from tests.push.helpers import deliver
from tests.support import DatabaseTestCase


class PushViewTests(DatabaseTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.account = await self.store.create_account("alice@example.org", "Alice", "unused-hash")
        self.device = await self.store.devices.touch(self.account.id, "PHONE", "iPhone", "", "16.1", "Ping")
        self.inbox = await self.store.folders.by_type(self.account.id, INBOX)

    async def test_never_synced(self):
        """A device without states sees the counters and no synced modseqs."""
        view = await self.store.sync_states.push_view(self.device.id, self.account.id, [self.inbox.id])
        self.assertIsNone(view.hierarchy_state)
        self.assertEqual(view.hierarchy_modseq, await self.store.folders.hierarchy_modseq(self.account.id))
        self.assertEqual(view.folders, {self.inbox.id: (self.inbox.modseq, None)})

    async def test_newest_states(self):
        """The newest hierarchy and folder states are compared with the live counters."""
        hierarchy = await self.store.sync_states.save_next(self.device.id, HIERARCHY, None, 1, {"own": [3]})
        first = await self.store.sync_states.save_next(self.device.id, self.inbox.id, None, 0)
        await deliver(self.store, self.account.id)
        await self.store.sync_states.save_next(self.device.id, self.inbox.id, first, 1)
        await deliver(self.store, self.account.id)
        view = await self.store.sync_states.push_view(self.device.id, self.account.id, [self.inbox.id])
        self.assertEqual(view.hierarchy_state.key, hierarchy.key)
        self.assertEqual(view.hierarchy_state.state, {"own": [3]})
        self.assertEqual(view.folders, {self.inbox.id: (2, 1)})

    async def test_only_live_folders_of_the_account(self):
        """Deleted folders and other accounts' folders are left out."""
        other = await self.store.create_account("bob@example.org", "Bob", "unused-hash")
        bobs_inbox = await self.store.folders.by_type(other.id, INBOX)
        folder, _ = await self.store.folders.create(self.account.id, None, "Gone", USER_MAIL)
        await self.store.folders.delete(self.account.id, folder.id)
        view = await self.store.sync_states.push_view(
            self.device.id, self.account.id, [self.inbox.id, bobs_inbox.id, folder.id]
        )
        self.assertEqual(list(view.folders), [self.inbox.id])
