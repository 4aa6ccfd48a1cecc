"""
Remote wipe (full and account-only), its cancellation, sync state reset and
partnership removal, as an administrator runs them, end to end over TCP
(MS-ASPROV 3.2.5.1.2, MS-ASCMD 2.2.3.177.5 and 2.2.3.177.17).
"""

from __future__ import annotations

from datetime import datetime, timezone

from twisted.internet import defer

from bluesync.devices.actions import ActionError
from bluesync.mail.delivery import new_email_item
from tests.devices.support import FOLDERSYNC_0, DeviceTestCase, find, ping_xml, status, sync_xml, text
from tests.eas.test_provision import initial_request, wipe_acknowledgement
from tests.push.helpers import until

FOLDERSYNC_STATUS = "folderhierarchy:Status"


def foldersync(key: str) -> str:
    return f'<FolderSync xmlns="FolderHierarchy:"><SyncKey>{key}</SyncKey></FolderSync>'


def children(element) -> list[str]:
    return [child.tag.split("}")[1] for child in element]


class WipeTests(DeviceTestCase):
    async def hold_ping(self, client):
        device = await self.device(client.device_id)
        (modseq,) = (await self.store.folders.modseqs(self.account.id, [self.inbox.id])).values()
        await self.store.sync_states.save_next(device.id, self.inbox.id, None, modseq)
        answer = defer.ensureDeferred(client.post("Ping", ping_xml(900, self.inbox.id)))
        await until(lambda: self.notifier.held_count() == 1, "the Ping to be held")
        return answer

    async def test_wipe_acknowledge_reconnect(self):
        """A wipe ends the held Ping with 140; Provision wipes; the acknowledged phone is wiped again on return."""
        client = self.phone(version="14.1")
        await self.ready(client)
        ping = await self.hold_ping(client)
        message = await self.admin.wipe(self.account.address, "PHONE1", "stolen")
        self.assertIn("remote wipe of PHONE1 of alice@example.org requested", message)
        self.assertEqual(status(await ping, "ping:Status"), "140")

        directive = await client.post("Provision")
        self.assertEqual(children(directive.document), ["Status", "RemoteWipe"])
        done = await client.post("Provision", wipe_acknowledgement("1"))
        self.assertEqual(status(done, "provision:Status"), "1")
        self.assertEqual((await self.device()).wipe, "wiped")

        # The phone is set up again: wiped again, whatever it asks.
        client.policy_key = None
        self.assertEqual(children((await client.post("Provision", initial_request())).document),
                         ["Status", "RemoteWipe"])
        self.assertEqual(status(await client.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "140")
        error = await self.assertFailure(
            defer.ensureDeferred(self.admin.cancel_wipe(self.account.address, "PHONE1")), ActionError)
        self.assertIn("already acknowledged the wipe", str(error))

        self.assertEqual(await self.inbox_subjects(), ["Your device iPhone (PHONE1) will be wiped",
                                                       "Your device iPhone (PHONE1) was wiped"])
        actions = await self.audit_actions()
        self.assertEqual(actions, [("test:admin", "device.wipe", "PHONE1"),
                                   ("device", "device.wipe-acknowledged", "PHONE1")])

        # Only removing the partnership ends it: the phone is then a new device.
        await self.admin.remove(self.account.address, "PHONE1")
        await self.ready(client)
        self.assertEqual((await self.device()).wipe, "none")

    async def test_account_only_wipe_16_1(self):
        """16.1: AccountOnlyRemoteWipe, acknowledged, and asked again on return; never a full wipe."""
        client = self.phone(version="16.1")
        await self.ready(client)
        message = await self.admin.account_wipe(self.account.address, "PHONE1")
        self.assertNotIn("cannot express it", message)
        self.assertEqual(status(await client.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "140")
        directive = await client.post("Provision")
        self.assertEqual(children(directive.document), ["Status", "AccountOnlyRemoteWipe"])
        await client.post("Provision", wipe_acknowledgement("1", "AccountOnlyRemoteWipe"))
        self.assertEqual((await self.device()).wipe, "wiped_account")
        again = await client.post("Provision", initial_request())
        self.assertEqual(children(again.document), ["Status", "AccountOnlyRemoteWipe"])
        self.assertEqual(await self.inbox_subjects(), [
            "Your account will be removed from your device iPhone (PHONE1)",
            "Your account was removed from your device iPhone (PHONE1)",
        ])

    async def test_account_only_wipe_before_16_1_warns(self):
        """An account-only wipe of a 14.1 phone is recorded with a warning; the phone is refused (403)."""
        client = self.phone(version="14.1")
        await self.ready(client)
        message = await self.admin.account_wipe(self.account.address, "PHONE1")
        self.assertIn("speaks ActiveSync 14.1, which cannot express it", message)
        self.assertEqual((await client.post("FolderSync", FOLDERSYNC_0)).code, 403)

    async def test_cancel_wipe(self):
        """A wipe cancelled before the phone acknowledged it never happens; the phone syncs on."""
        client = self.phone()
        key = await self.ready(client)
        await self.admin.wipe(self.account.address, "PHONE1")
        await self.admin.cancel_wipe(self.account.address, "PHONE1", "found it")
        answer = await client.post("FolderSync", foldersync(key))
        self.assertEqual(status(answer, FOLDERSYNC_STATUS), "1")
        error = await self.assertFailure(
            defer.ensureDeferred(self.admin.cancel_wipe(self.account.address, "PHONE1")), ActionError)
        self.assertEqual(str(error), "no wipe of PHONE1 of alice@example.org is pending")
        self.assertEqual([(a, d) for _, a, d in await self.audit_actions()],
                         [("device.wipe", "PHONE1"), ("device.cancel-wipe", "PHONE1")])
        self.assertEqual((await self.store.audit.list())[-1].detail, "found it")


class ResetTests(DeviceTestCase):
    async def deliver(self, count: int) -> None:
        for number in range(count):
            raw = (f"From: bob@example.net\r\nTo: alice@example.org\r\nSubject: Message {number}\r\n"
                   f"Message-ID: <r{number}@example.net>\r\n\r\nHello {number}.\r\n").encode()
            await self.store.items.deliver([(self.account.id, self.inbox.id)],
                                           new_email_item(raw, datetime.now(timezone.utc)))

    async def full_sync(self, client) -> tuple[str, list[str]]:
        first = await client.post("Sync", sync_xml(self.inbox.server_id, "0"))
        key = text(first.document, "//airsync:Collection/airsync:SyncKey")
        answer = await client.post("Sync", sync_xml(self.inbox.server_id, key))
        ids = [text(add, "airsync:ServerId") for add in find(answer.document, "//airsync:Commands/airsync:Add")]
        return text(answer.document, "//airsync:Collection/airsync:SyncKey"), ids

    async def test_reset_resyncs_and_loses_nothing(self):
        """After a reset: FolderSync 9, Sync 3, a held Ping 7; the phone starts over and gets every message."""
        await self.deliver(3)
        client = self.phone()
        hierarchy_key = await self.ready(client)
        sync_key, before = await self.full_sync(client)
        self.assertEqual(len(before), 3)
        answer = defer.ensureDeferred(client.post("Ping", ping_xml(900, self.inbox.id)))
        await until(lambda: self.notifier.held_count() == 1, "the Ping to be held")

        message = await self.admin.reset(self.account.address, "PHONE1", "stuck phone")
        self.assertIn("resynchronises its folders", message)
        # MS-ASCMD 2.2.3.177.11: 7, "the folder hierarchy is out of date".
        self.assertEqual(status(await answer, "ping:Status"), "7")
        # 2.2.3.177.5: 9, an invalid synchronization key: back to 0.
        self.assertEqual(status(await client.post("FolderSync", foldersync(hierarchy_key)), FOLDERSYNC_STATUS), "9")
        # 2.2.3.177.17: 3, an invalid synchronization key: back to 0.
        stale = await client.post("Sync", sync_xml(self.inbox.server_id, sync_key))
        self.assertEqual(text(stale.document, "//airsync:Collection/airsync:Status"), "3")

        self.assertEqual(status(await client.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "1")
        _, after = await self.full_sync(client)
        self.assertEqual(sorted(after), sorted(before))
        self.assertEqual(len(await self.inbox_subjects()), 3)
        self.assertIn(("test:admin", "device.reset", "PHONE1"), await self.audit_actions())


class RemoveTests(DeviceTestCase):
    config_text = "[policy]\nunknown_device = quarantine\n"

    async def test_remove(self):
        """Removing a partnership deletes its state; the phone comes back as a new, quarantined device."""
        client = self.phone()
        await client.provision()
        await self.admin.allow(self.account.address, "PHONE1")
        key = await self.ready(client)
        device = await self.device()
        self.assertTrue(await self.store.sync_states.latest(device.id, [0]))

        await self.admin.remove(self.account.address, "PHONE1", "sold")
        self.assertIsNone(await self.device())
        self.assertEqual(await self.store.sync_states.latest(device.id, [0]), {})
        # A new partnership, under the policy: quarantined.
        self.assertEqual(status(await client.post("FolderSync", foldersync(key)), FOLDERSYNC_STATUS), "129")
        again = await self.device()
        self.assertNotEqual(again.id, device.id)
        self.assertEqual((again.access, again.access_reason), ("quarantined", "policy"))
        self.assertIn(("test:admin", "device.remove", "PHONE1"), await self.audit_actions())
