"""
FolderSync, FolderCreate, FolderUpdate and FolderDelete end to end: real
WBXML over TCP to the real Site on a fresh PostgreSQL database.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync.eas import hierarchy
from bluesync.eas.commands import COMMANDS
from bluesync.store.folders import DEFAULT_FOLDERS
from tests.eas.client import EASClient, find, text
from tests.support import SiteTestCase

SPEC_FOLDERSYNC = Path(__file__).parent.parent / "wbxml" / "data" / "foldersync_request.wbxml"

ALICE = ("alice@example.org", "correct horse")
BOB = ("bob@example.org", "battery staple")


def status(answer) -> int:
    """The Status of a FolderHierarchy answer, whatever the command."""
    assert answer.code == 200, answer
    return int(text(answer.document, "folderhierarchy:Status"))


def changes(answer) -> list[tuple]:
    """(kind, ServerId, ParentId, DisplayName, Type) of each change, in order."""
    found = []
    for element in find(answer.document, "folderhierarchy:Changes/*"):
        kind = etree.QName(element).localname
        if kind == "Count":
            continue
        found.append(
            (
                kind,
                text(element, "folderhierarchy:ServerId"),
                text(element, "folderhierarchy:ParentId"),
                text(element, "folderhierarchy:DisplayName"),
                text(element, "folderhierarchy:Type"),
            )
        )
    return found


def element(name: str, value) -> str:
    return "" if value is None else f"<{name}>{escape(str(value))}</{name}>"


class FolderTestCase(SiteTestCase):
    async def _set_up(self) -> None:
        await super()._set_up()
        self.account = await self.create_account(*ALICE)
        self.phone = await self.device("PHONE1")
        self.tablet = await self.device("TABLET1")

    async def device(self, device_id: str, user=ALICE) -> EASClient:
        client = EASClient(self.base_url, *user, device_id=device_id, pool=self.pool)
        if "Provision" in COMMANDS:
            await client.provision()
        return client

    async def folder_sync(self, client: EASClient, key: str | None):
        document = f'<FolderSync xmlns="FolderHierarchy:">{element("SyncKey", key)}</FolderSync>'
        return await client.post("FolderSync", document)

    async def initial_key(self, client: EASClient) -> str:
        answer = await self.folder_sync(client, "0")
        self.assertEqual(status(answer), 1)
        return text(answer.document, "folderhierarchy:SyncKey")

    async def create(self, client, key, name, parent="0", folder_type=12):
        return await client.post(
            "FolderCreate",
            '<FolderCreate xmlns="FolderHierarchy:">'
            + element("SyncKey", key)
            + element("ParentId", parent)
            + element("DisplayName", name)
            + element("Type", folder_type)
            + "</FolderCreate>",
        )

    async def update(self, client, key, server_id, name, parent="0"):
        return await client.post(
            "FolderUpdate",
            '<FolderUpdate xmlns="FolderHierarchy:">'
            + element("SyncKey", key)
            + element("ServerId", server_id)
            + element("ParentId", parent)
            + element("DisplayName", name)
            + "</FolderUpdate>",
        )

    async def delete(self, client, key, server_id):
        return await client.post(
            "FolderDelete",
            '<FolderDelete xmlns="FolderHierarchy:">'
            + element("SyncKey", key)
            + element("ServerId", server_id)
            + "</FolderDelete>",
        )

    async def created(self, client, key, name, parent="0", folder_type=12) -> tuple[str, str]:
        """Create a folder that must succeed; return (its ServerId, the new key)."""
        answer = await self.create(client, key, name, parent, folder_type)
        self.assertEqual(status(answer), 1, answer)
        return text(answer.document, "folderhierarchy:ServerId"), text(answer.document, "folderhierarchy:SyncKey")

    async def inbox_id(self) -> str:
        return str((await self.store.folders.by_type(self.account.id, 2)).id)

    def assertFailed(self, answer, expected: int) -> None:
        """A failure Status, and neither SyncKey nor ServerId (MS-ASCMD 2.2.3.181.1)."""
        self.assertEqual(status(answer), expected, answer)
        self.assertEqual(find(answer.document, "folderhierarchy:SyncKey"), [])
        self.assertEqual(find(answer.document, "folderhierarchy:ServerId"), [])


class FolderSyncTests(FolderTestCase):
    async def test_initial_lists_default_folders(self):
        """SyncKey 0 lists the ten default folders at the root with their types and database ids."""
        answer = await self.folder_sync(self.phone, "0")
        self.assertEqual(status(answer), 1)
        self.assertTrue(text(answer.document, "folderhierarchy:SyncKey"))
        self.assertEqual(text(answer.document, "folderhierarchy:Changes/folderhierarchy:Count"), "10")
        stored = {folder.name: folder for folder in await self.store.folders.list(self.account.id)}
        expected = [("Add", str(stored[name].id), "0", name, str(folder_type)) for folder_type, name in DEFAULT_FOLDERS]
        self.assertEqual(sorted(changes(answer)), sorted(expected))

    async def test_spec_example_bytes(self):
        """The MS-ASCMD FolderSync request, as raw WBXML bytes, gets the full hierarchy."""
        answer = await self.phone.post("FolderSync", body=SPEC_FOLDERSYNC.read_bytes())
        self.assertEqual(status(answer), 1)
        self.assertEqual(len(changes(answer)), 10)
        self.assertEqual({change[0] for change in changes(answer)}, {"Add"})

    async def test_no_changes_keeps_key(self):
        """An incremental FolderSync with nothing new has Count 0 and the same key."""
        key = await self.initial_key(self.phone)
        answer = await self.folder_sync(self.phone, key)
        self.assertEqual(status(answer), 1)
        self.assertEqual(text(answer.document, "folderhierarchy:Changes/folderhierarchy:Count"), "0")
        self.assertEqual(text(answer.document, "folderhierarchy:SyncKey"), key)

    async def test_unknown_key_is_status_9(self):
        """Garbage, empty and another device's keys are answered Status 9."""
        tablet_key = await self.initial_key(self.tablet)
        await self.initial_key(self.phone)
        for key in ("garbage", "", "1", "deadbeef99", tablet_key):
            answer = await self.folder_sync(self.phone, key)
            self.assertFailed(answer, 9)

    async def test_malformed_is_status_10(self):
        """No SyncKey, another command's document or no body at all is Status 10."""
        self.assertFailed(await self.folder_sync(self.phone, None), 10)
        wrong_root = await self.phone.post(
            "FolderSync", '<FolderDelete xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderDelete>'
        )
        self.assertFailed(wrong_root, 10)
        self.assertFailed(await self.phone.post("FolderSync"), 10)
        twice = await self.phone.post(
            "FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey><SyncKey>0</SyncKey></FolderSync>'
        )
        self.assertFailed(twice, 10)

    async def test_reset_keeps_server_ids_and_item_states(self):
        """SyncKey 0 again returns the same ServerIds and leaves the collections' sync states alone."""
        first = await self.folder_sync(self.phone, "0")
        old_key = text(first.document, "folderhierarchy:SyncKey")
        device = await self.store.devices.get(self.account.id, "PHONE1")
        inbox = int(await self.inbox_id())
        item_state = await self.store.sync_states.save_next(device.id, inbox, None, 0, {})
        second = await self.folder_sync(self.phone, "0")
        self.assertEqual(status(second), 1)
        self.assertEqual(sorted(changes(second)), sorted(changes(first)))
        kept = await self.store.sync_states.get(device.id, inbox, item_state.key)
        self.assertEqual(kept.key, item_state.key)
        # The hierarchy itself did start over: the key before the reset is gone.
        self.assertFailed(await self.folder_sync(self.phone, old_key), 9)

    async def test_resend_previous_key(self):
        """Resending the previous key (answer lost) returns the same changes and key again."""
        key = await self.initial_key(self.tablet)
        phone_key = await self.initial_key(self.phone)
        await self.created(self.phone, phone_key, "Projects")
        first = await self.folder_sync(self.tablet, key)
        again = await self.folder_sync(self.tablet, key)
        self.assertEqual(len(changes(first)), 1)
        self.assertEqual(changes(again), changes(first))
        next_key = text(again.document, "folderhierarchy:SyncKey")
        self.assertEqual(next_key, text(first.document, "folderhierarchy:SyncKey"))
        self.assertNotEqual(next_key, key)
        settled = await self.folder_sync(self.tablet, next_key)
        self.assertEqual(changes(settled), [])
        # Using the new key acknowledged it: the old one is gone.
        self.assertFailed(await self.folder_sync(self.tablet, key), 9)

    async def test_parents_before_children(self):
        """A new parent renamed after its child was created is still sent before the child."""
        tablet_key = await self.initial_key(self.tablet)
        key = await self.initial_key(self.phone)
        parent, key = await self.created(self.phone, key, "Clients")
        child, key = await self.created(self.phone, key, "Acme", parent)
        renamed = await self.update(self.phone, key, parent, "Customers")
        self.assertEqual(status(renamed), 1)
        answer = await self.folder_sync(self.tablet, tablet_key)
        self.assertEqual(
            changes(answer),
            [("Add", parent, "0", "Customers", "12"), ("Add", child, parent, "Acme", "12")],
        )

    async def test_created_and_deleted_since_is_not_sent(self):
        """A folder created and deleted since the device's state never reaches it."""
        tablet_key = await self.initial_key(self.tablet)
        key = await self.initial_key(self.phone)
        server_id, key = await self.created(self.phone, key, "Ephemeral")
        self.assertEqual(status(await self.delete(self.phone, key, server_id)), 1)
        answer = await self.folder_sync(self.tablet, tablet_key)
        self.assertEqual(status(answer), 1)
        self.assertEqual(changes(answer), [])

    async def test_server_fault_is_status_6(self):
        """A fault of ours (the folders table gone) is Status 6 with the traceback logged."""
        key = await self.initial_key(self.phone)
        await self.database.execute("ALTER TABLE folders RENAME TO folders_gone")
        self.assertFailed(await self.folder_sync(self.phone, "0"), 6)
        self.assertFailed(await self.create(self.phone, key, "Anything"), 6)
        self.assertEqual(len(self.flushLoggedErrors()), 2)


class FolderCreateTests(FolderTestCase):
    async def test_reaches_other_devices_not_its_creator(self):
        """A created folder is an Add for another device and is not echoed to the device that made it."""
        tablet_key = await self.initial_key(self.tablet)
        key = await self.initial_key(self.phone)
        server_id, key = await self.created(self.phone, key, "Receipts")
        self.assertEqual(str((await self.store.folders.get(self.account.id, int(server_id))).id), server_id)
        tablet = await self.folder_sync(self.tablet, tablet_key)
        self.assertEqual(changes(tablet), [("Add", server_id, "0", "Receipts", "12")])
        phone = await self.folder_sync(self.phone, key)
        self.assertEqual(status(phone), 1)
        self.assertEqual(changes(phone), [])

    async def test_interleaved_changes(self):
        """Another device's change made before this device's own still reaches it; its own does not."""
        phone_key = await self.initial_key(self.phone)
        tablet_key = await self.initial_key(self.tablet)
        tablet_folder, tablet_key = await self.created(self.tablet, tablet_key, "From tablet", folder_type=13)
        phone_folder, phone_key = await self.created(self.phone, phone_key, "From phone", folder_type=14)
        phone = await self.folder_sync(self.phone, phone_key)
        self.assertEqual(changes(phone), [("Add", tablet_folder, "0", "From tablet", "13")])
        tablet = await self.folder_sync(self.tablet, tablet_key)
        self.assertEqual(changes(tablet), [("Add", phone_folder, "0", "From phone", "14")])
        # Both are now settled.
        for client, answer in ((self.phone, phone), (self.tablet, tablet)):
            settled = await self.folder_sync(client, text(answer.document, "folderhierarchy:SyncKey"))
            self.assertEqual(changes(settled), [])

    async def test_subfolder_and_user_types(self):
        """Every served user type can be created, under the root or under a default folder."""
        tablet_key = await self.initial_key(self.tablet)
        key = await self.initial_key(self.phone)
        inbox = await self.inbox_id()
        made = []
        for folder_type in (1, 12, 13, 14, 15, 17):
            server_id, key = await self.created(self.phone, key, f"Type {folder_type}", inbox, folder_type)
            made.append(("Add", server_id, inbox, f"Type {folder_type}", str(folder_type)))
        self.assertEqual(changes(await self.folder_sync(self.tablet, tablet_key)), made)

    async def test_status_codes(self):
        """Name taken 2, Recipient Information Cache 3, no parent 5, bad key 9, malformed 10."""
        key = await self.initial_key(self.phone)
        _, key = await self.created(self.phone, key, "Taken")
        self.assertFailed(await self.create(self.phone, key, "TAKEN"), 2)
        self.assertFailed(await self.create(self.phone, key, "Cache", folder_type=19), 3)
        for parent in ("999999", "nope", "-1"):
            self.assertFailed(await self.create(self.phone, key, "Orphan", parent), 5)
        for bad_key in ("0", "bogus", "", None):
            self.assertFailed(await self.create(self.phone, bad_key, "Keyless"), 9 if bad_key is not None else 10)
        self.assertFailed(await self.create(self.phone, key, None), 10)
        self.assertFailed(await self.create(self.phone, key, ""), 10)
        self.assertFailed(await self.create(self.phone, key, "   "), 10)
        self.assertFailed(await self.create(self.phone, key, "x" * 256), 10)
        self.assertFailed(await self.create(self.phone, key, "No parent", None), 10)
        for folder_type in (None, "mail", 0, 2, 6, 11, 16, 18, 20, 300):
            self.assertFailed(await self.create(self.phone, key, "Typed", folder_type=folder_type), 10)
        # The refusals changed nothing: the key still works and has nothing new.
        answer = await self.folder_sync(self.phone, key)
        self.assertEqual(changes(answer), [])
        names = [folder.name for folder in await self.store.folders.list(self.account.id)]
        self.assertEqual(len(names), 11)

    async def test_other_accounts_parent_is_not_found(self):
        """Another account's folder as parent is Status 5, as for a folder that does not exist."""
        bob = await self.create_account(*BOB)
        bob_inbox = (await self.store.folders.by_type(bob.id, 2)).id
        key = await self.initial_key(self.phone)
        self.assertFailed(await self.create(self.phone, key, "Intruder", str(bob_inbox)), 5)
        self.assertEqual([f.name for f in await self.store.folders.list(bob.id) if not f.system], [])


class FolderUpdateTests(FolderTestCase):
    async def test_rename_and_move_are_updates_for_others(self):
        """A rename, then a move under Inbox, reach another device as Updates, not the device that made them."""
        key = await self.initial_key(self.phone)
        server_id, key = await self.created(self.phone, key, "Old name")
        tablet_key = await self.initial_key(self.tablet)
        renamed = await self.update(self.phone, key, server_id, "New name")
        self.assertEqual(status(renamed), 1)
        key = text(renamed.document, "folderhierarchy:SyncKey")
        tablet = await self.folder_sync(self.tablet, tablet_key)
        self.assertEqual(changes(tablet), [("Update", server_id, "0", "New name", "12")])
        inbox = await self.inbox_id()
        moved = await self.update(self.phone, key, server_id, "New name", inbox)
        self.assertEqual(status(moved), 1)
        key = text(moved.document, "folderhierarchy:SyncKey")
        tablet = await self.folder_sync(self.tablet, text(tablet.document, "folderhierarchy:SyncKey"))
        self.assertEqual(changes(tablet), [("Update", server_id, inbox, "New name", "12")])
        self.assertEqual(changes(await self.folder_sync(self.phone, key)), [])

    async def test_change_by_another_device_after_own_create(self):
        """A folder this device created and another device renamed reaches it as an Update."""
        key = await self.initial_key(self.phone)
        server_id, key = await self.created(self.phone, key, "Mine")
        tablet_key = await self.initial_key(self.tablet)
        self.assertEqual(status(await self.update(self.tablet, tablet_key, server_id, "Renamed elsewhere")), 1)
        answer = await self.folder_sync(self.phone, key)
        self.assertEqual(changes(answer), [("Update", server_id, "0", "Renamed elsewhere", "12")])

    async def test_status_codes(self):
        """Special folder or name taken 2, no folder 4, no parent 5, bad key 9, malformed or cyclic 10."""
        key = await self.initial_key(self.phone)
        target, key = await self.created(self.phone, key, "Target")
        _, key = await self.created(self.phone, key, "Other")
        child, key = await self.created(self.phone, key, "Child", target)
        inbox = await self.inbox_id()
        self.assertFailed(await self.update(self.phone, key, inbox, "Renamed inbox"), 2)
        self.assertFailed(await self.update(self.phone, key, target, "other"), 2)
        for server_id in ("999999", "nope", ""):
            self.assertFailed(await self.update(self.phone, key, server_id, "Ghost"), 4)
        for parent in ("999999", "nope"):
            self.assertFailed(await self.update(self.phone, key, target, "Target", parent), 5)
        self.assertFailed(await self.update(self.phone, "bogus", target, "Target"), 9)
        self.assertFailed(await self.update(self.phone, None, target, "Target"), 10)
        self.assertFailed(await self.update(self.phone, key, target, ""), 10)
        self.assertFailed(await self.update(self.phone, key, target, "Target", None), 10)
        self.assertFailed(await self.update(self.phone, key, target, "Target", target), 10)
        self.assertFailed(await self.update(self.phone, key, target, "Target", child), 10)
        folder = await self.store.folders.get(self.account.id, int(target))
        self.assertEqual((folder.name, folder.parent_id), ("Target", None))

    async def test_other_accounts_folder_is_not_found(self):
        """Another account's folder is Status 4 to rename and Status 5 as a new parent, and stays as it was."""
        bob = await self.create_account(*BOB)
        bob_phone = await self.device("BOBPHONE", BOB)
        bob_folder, _ = await self.created(bob_phone, await self.initial_key(bob_phone), "Bob's")
        key = await self.initial_key(self.phone)
        mine, key = await self.created(self.phone, key, "Mine")
        self.assertFailed(await self.update(self.phone, key, bob_folder, "Stolen"), 4)
        self.assertFailed(await self.update(self.phone, key, mine, "Mine", bob_folder), 5)
        self.assertEqual((await self.store.folders.get(bob.id, int(bob_folder))).name, "Bob's")


class FolderDeleteTests(FolderTestCase):
    async def test_delete_reaches_others_child_first(self):
        """Deleting a folder sends Deletes (subfolder first) to another device that knew them, none to its maker."""
        key = await self.initial_key(self.phone)
        parent, key = await self.created(self.phone, key, "Archive")
        child, key = await self.created(self.phone, key, "2024", parent)
        tablet_key = await self.initial_key(self.tablet)
        answer = await self.delete(self.phone, key, parent)
        self.assertEqual(status(answer), 1)
        key = text(answer.document, "folderhierarchy:SyncKey")
        tablet = await self.folder_sync(self.tablet, tablet_key)
        self.assertEqual(changes(tablet), [("Delete", child, None, None, None), ("Delete", parent, None, None, None)])
        self.assertEqual(changes(await self.folder_sync(self.phone, key)), [])
        self.assertIsNone(await self.store.folders.get(self.account.id, int(child)))
        again = await self.folder_sync(self.tablet, "0")
        self.assertNotIn(parent, [change[1] for change in changes(again)])

    async def test_status_codes(self):
        """Special folder 3, missing or already deleted 4, bad key 9, malformed 10."""
        key = await self.initial_key(self.phone)
        gone, key = await self.created(self.phone, key, "Gone")
        answer = await self.delete(self.phone, key, gone)
        self.assertEqual(status(answer), 1)
        key = text(answer.document, "folderhierarchy:SyncKey")
        for folder in await self.store.folders.list(self.account.id):
            self.assertFailed(await self.delete(self.phone, key, folder.server_id), 3)
        for server_id in (gone, "999999", "nope", ""):
            self.assertFailed(await self.delete(self.phone, key, server_id), 4)
        self.assertFailed(await self.delete(self.phone, "bogus", gone), 9)
        self.assertFailed(await self.delete(self.phone, None, gone), 10)
        self.assertFailed(await self.delete(self.phone, key, None), 10)
        self.assertEqual(len(await self.store.folders.list(self.account.id)), 10)

    async def test_other_accounts_folder_is_not_found(self):
        """Another account's folder is Status 4 to delete and survives."""
        bob = await self.create_account(*BOB)
        bob_phone = await self.device("BOBPHONE", BOB)
        bob_folder, _ = await self.created(bob_phone, await self.initial_key(bob_phone), "Bob's")
        key = await self.initial_key(self.phone)
        self.assertFailed(await self.delete(self.phone, key, bob_folder), 4)
        self.assertIsNotNone(await self.store.folders.get(bob.id, int(bob_folder)))


class HierarchyStateTests(SynchronousTestCase):
    def test_compact_folds_contiguous_own_stamps(self):
        """Own stamps continuing the modseq fold into it; gaps keep the rest; old ones go."""
        self.assertEqual(hierarchy.compact(5, [6, 7, 9, 3]), (7, [9]))
        self.assertEqual(hierarchy.compact(5, [8]), (5, [8]))
        self.assertEqual(hierarchy.compact(5, []), (5, []))

    def test_unseen_changes(self):
        """Only stamps above the modseq that are not the device's own count as unseen."""
        self.assertFalse(hierarchy.unseen_changes(5, [], 5))
        self.assertFalse(hierarchy.unseen_changes(5, [6, 7], 7))
        self.assertTrue(hierarchy.unseen_changes(5, [7], 7))
        self.assertTrue(hierarchy.unseen_changes(5, [6], 8))


class HierarchyPendingTests(FolderTestCase):
    async def test_pending_after_other_devices_change_only(self):
        """FolderSync is pending before the first one and after another device's change, not after one's own."""
        store, account = self.store, self.account.id
        phone_key = await self.initial_key(self.phone)
        # A refused FolderSync records the tablet without giving it a state.
        self.assertFailed(await self.folder_sync(self.tablet, "bogus"), 9)
        phone = (await self.store.devices.get(account, "PHONE1")).id
        tablet = (await self.store.devices.get(account, "TABLET1")).id
        self.assertTrue(await hierarchy.hierarchy_pending(store, account, tablet))
        self.assertFalse(await hierarchy.hierarchy_pending(store, account, phone))
        _, phone_key = await self.created(self.phone, phone_key, "Own change")
        self.assertFalse(await hierarchy.hierarchy_pending(store, account, phone))
        tablet_key = await self.initial_key(self.tablet)
        await self.created(self.tablet, tablet_key, "Someone else's")
        self.assertTrue(await hierarchy.hierarchy_pending(store, account, phone))
        await self.folder_sync(self.phone, phone_key)
        self.assertFalse(await hierarchy.hierarchy_pending(store, account, phone))
