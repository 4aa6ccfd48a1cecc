"""
Access decisions end to end: the unknown-device policy, access rules,
administrators' decisions, the device limit, and held Pings ended at once
by a decision, with what each protocol version sees (MS-ASCMD 2.2.2,
MS-ASHTTP 2.2.2.1.1).
"""

from __future__ import annotations

import time

from twisted.internet import defer

from tests.devices.support import (
    FOLDERSYNC_0,
    OUTLOOK_UA,
    SETTINGS_GET,
    DeviceTestCase,
    ping_xml,
    status,
    sync_xml,
    text,
)
from tests.push.helpers import deliver

PROVISION_STATUS = "provision:Status"
FOLDERSYNC_STATUS = "folderhierarchy:Status"


async def until(condition, what: str, poll=None, limit: float = 20.0) -> None:
    """
    Wait on the real reactor for C{condition()}, running C{poll()} (a
    coroutine function that refreshes what it reads) before each look.
    """
    from twisted.internet import reactor, task

    waited = 0.0
    while True:
        if poll is not None:
            await poll()
        if condition():
            return
        if waited >= limit:
            raise AssertionError(f"gave up waiting for {what}")
        await task.deferLater(reactor, 0.05, lambda: None)
        waited += 0.05


class AllowPolicyTests(DeviceTestCase):
    async def test_new_device_syncs(self):
        """With unknown_device = allow (the default) a new phone provisions and syncs at once, and nobody is told."""
        await self.ready(self.phone())
        device = await self.device()
        self.assertEqual((device.access, device.access_reason), ("allowed", "policy"))
        self.assertEqual(await self.inbox_subjects(), [])


class QuarantinePolicyTests(DeviceTestCase):
    config_text = "[policy]\nunknown_device = quarantine\n"

    async def test_new_device_quarantined(self):
        """A new 16.1 phone may provision, then gets 129 for everything else; its owner gets one email."""
        client = self.phone()
        await client.provision()
        answer = await client.post("FolderSync", FOLDERSYNC_0)
        self.assertEqual(answer.document.tag, "{FolderHierarchy:}FolderSync")
        self.assertEqual(status(answer, FOLDERSYNC_STATUS), "129")
        self.assertEqual(status(await client.post("Settings", SETTINGS_GET), "settings:Status"), "129")
        device = await self.device()
        self.assertEqual((device.access, device.access_reason), ("quarantined", "policy"))
        subjects = await self.inbox_subjects()
        self.assertEqual(subjects, ["Your device iPhone (PHONE1) is waiting for approval"])
        item = (await self.store.items.folder_items(self.account.id, self.inbox.id))[0]
        self.assertIn(b"Device ID: PHONE1", item.content)
        self.assertIn(b"Access state: quarantined (policy)", item.content)

    async def test_12_1_gets_403(self):
        """12.1 has no common status codes: a quarantined phone gets HTTP 403."""
        client = self.phone(version="12.1")
        await client.provision()
        self.assertEqual((await client.post("FolderSync", FOLDERSYNC_0)).code, 403)

    async def test_quarantine_then_allow(self):
        """An administrator's allow reaches the phone on its next request; the owner was told once."""
        client = self.phone("PHONE1", "14.1")
        await client.provision()
        self.assertEqual(status(await client.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "129")
        message = await self.admin.allow(self.account.address, "PHONE1", "known phone")
        self.assertEqual(message, "PHONE1 of alice@example.org is allowed")
        self.assertEqual(status(await client.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "1")
        self.assertEqual(len(await self.inbox_subjects()), 1)
        self.assertIn(("test:admin", "device.allow", "PHONE1"), await self.audit_actions())

    async def test_rule_allows_a_family(self):
        """An allow rule lets matching new phones through the quarantine policy; others stay quarantined."""
        await self.admin.add_rule("DeviceType", "iphone", "allow")
        await self.ready(self.phone("IPHONE"))
        android = self.phone("ANDROID", device_type="SAMSUNGSMS918B", user_agent="Android-SAMSUNG/14")
        await android.provision()
        self.assertEqual(status(await android.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "129")


class BlockPolicyTests(DeviceTestCase):
    config_text = "[policy]\nunknown_device = block\n"

    async def test_new_device_blocked(self):
        """A blocked new phone is refused even Provision: 129 in the Provision response on 14.1, 403 on 12.1."""
        answer = await self.phone("MODERN", "14.1").post(
            "Provision", '<Provision xmlns="Provision:"><Policies><Policy><PolicyType>'
            "MS-EAS-Provisioning-WBXML</PolicyType></Policy></Policies></Provision>")
        self.assertEqual(answer.document.tag, "{Provision:}Provision")
        self.assertEqual(status(answer, PROVISION_STATUS), "129")
        self.assertEqual((await self.phone("LEGACY", "12.1").post("Provision", None)).code, 403)
        self.assertEqual(sorted(await self.inbox_subjects()),
                         ["Your device iPhone (LEGACY) is blocked", "Your device iPhone (MODERN) is blocked"])


class RuleTests(DeviceTestCase):
    async def test_block_outlook_user_agent(self):
        """A rule blocking the Outlook app's user agent refuses it and no other phone; deleting it lets it back."""
        outlook = self.phone("OUTLOOK", user_agent=OUTLOOK_UA, device_type="Outlook")
        await self.ready(outlook)
        iphone = self.phone("IPHONE")
        await self.ready(iphone)
        rule = await self.admin.add_rule("useragent", "Outlook-iOS-Android/*", "block", reason="cloud relay")
        self.assertEqual(status(await outlook.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "129")
        self.assertEqual(status(await iphone.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "1")
        self.assertEqual((await self.device("OUTLOOK")).rule_id, rule.id)
        self.assertIn("Your device Outlook (OUTLOOK) is blocked", await self.inbox_subjects())
        await self.admin.delete_rule(rule.id)
        self.assertEqual(status(await outlook.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "1")
        actions = [(record.action, record.detail) for record in await self.store.audit.list()]
        self.assertIn(("rule.add", f"rule {rule.id}: block UserAgent 'Outlook-iOS-Android/*' (priority 10):"
                                   " cloud relay"), actions)
        self.assertIn(("rule.delete", f"rule {rule.id}: block UserAgent 'Outlook-iOS-Android/*' (priority 10)"),
                      actions)

    async def test_wildcards_are_literal_otherwise(self):
        """* and ? are the only wildcards: % and _ in a pattern match themselves."""
        await self.admin.add_rule("DeviceModel", "SM_S%", "block")
        await self.admin.add_rule("DeviceType", "i?hone", "quarantine")
        await self.ready(self.phone("ANDROID", device_type="Android"))
        device = await self.device("ANDROID")
        self.assertIsNone(device.rule_action)
        await self.phone("IPHONE").provision()
        self.assertEqual((await self.device("IPHONE")).rule_action, "quarantined")

    async def test_first_rule_in_priority_order_decides(self):
        """Rules are tried in priority order: an allow before a catch-all block lets its devices through."""
        await self.admin.add_rule("DeviceType", "*", "block")
        await self.admin.add_rule("DeviceType", "iPhone", "allow", priority=1)
        await self.ready(self.phone("IPHONE"))
        other = self.phone("OTHER", device_type="WindowsMail")
        self.assertEqual(status(await other.post("Provision", None), PROVISION_STATUS), "129")

    async def test_device_decision_overrides_rules(self):
        """An administrator's allow for one device beats a rule that blocks its kind."""
        await self.admin.add_rule("UserAgent", "Outlook*", "block")
        outlook = self.phone("OUTLOOK", user_agent=OUTLOOK_UA)
        self.assertEqual(status(await outlook.post("Provision", None), PROVISION_STATUS), "129")
        await self.admin.allow(self.account.address, "OUTLOOK")
        await self.ready(outlook)

    async def test_bad_rules_refused(self):
        """An unknown field or action, or an empty pattern, is refused with a message."""
        from bluesync.devices.actions import ActionError

        for field, pattern, action, message in (
            ("Colour", "*", "block", "unknown field 'Colour'"),
            ("UserAgent", "*", "destroy", "unknown action 'destroy'"),
            ("UserAgent", "  ", "block", "the pattern is empty"),
        ):
            error = await self.assertFailure(defer.ensureDeferred(self.admin.add_rule(field, pattern, action)),
                                             ActionError)
            self.assertIn(message, str(error))
        self.assertEqual(await self.store.rules.list(), [])


class HeldPingTests(DeviceTestCase):
    async def hold(self, client):
        await self.ready(client)
        device = await self.device(client.device_id)
        (modseq,) = (await self.store.folders.modseqs(self.account.id, [self.inbox.id])).values()
        await self.store.sync_states.save_next(device.id, self.inbox.id, None, modseq)
        answer = defer.ensureDeferred(client.post("Ping", ping_xml(900, self.inbox.id)))
        await until(lambda: self.notifier.held_count() == 1, "the Ping to be held")
        self.assertFalse(answer.called)
        return answer

    async def test_block_ends_held_ping(self):
        """Blocking a device answers its held Ping at once with 129, through NOTIFY and the listener."""
        answer = await self.hold(self.phone())
        await self.admin.block(self.account.address, "PHONE1", "lost")
        answer = await answer
        self.assertEqual(answer.document.tag, "{Ping:}Ping")
        self.assertEqual(status(answer, "ping:Status"), "129")

    async def test_rule_ends_held_ping(self):
        """A new rule that blocks a device answers its held Ping at once."""
        answer = await self.hold(self.phone("OUTLOOK", user_agent=OUTLOOK_UA))
        await self.admin.add_rule("UserAgent", "outlook-ios-android/*", "block")
        self.assertEqual(status(await answer, "ping:Status"), "129")

    async def test_held_ping_recorded(self):
        """While a Ping is held the device row says until when; an early answer clears it."""
        answer = await self.hold(self.phone())
        await until(lambda: self._ping_until is not None, "ping_until to be written", poll=self._read_ping_until)
        self.assertGreater(self._ping_until.timestamp(), time.time() + 800)
        await deliver(self.store, self.account.id)
        self.assertEqual(status(await answer, "ping:Status"), "2")
        await until(lambda: self._ping_until is None, "ping_until to be cleared", poll=self._read_ping_until)

    _ping_until = None

    async def _read_ping_until(self):
        self._ping_until = (await self.device()).ping_until

    async def test_block_ends_held_sync_wait(self):
        """A Sync held by Wait ends at once when its device is blocked; the next request is refused."""
        client = self.phone()
        await self.ready(client)
        first = await client.post("Sync", sync_xml(self.inbox.server_id, "0"))
        key = text(first.document, "//airsync:Collection/airsync:SyncKey")
        held = defer.ensureDeferred(client.post("Sync", (
            '<Sync xmlns="AirSync:"><Collections><Collection>'
            f"<SyncKey>{key}</SyncKey><CollectionId>{self.inbox.server_id}</CollectionId>"
            "</Collection></Collections><Wait>30</Wait></Sync>")))
        await until(lambda: self.notifier.held_count() == 1, "the Sync to be held")
        await self.admin.block(self.account.address, "PHONE1")
        self.assertEqual((await held).code, 200)
        refused = await client.post("Sync", sync_xml(self.inbox.server_id, key))
        self.assertEqual(status(refused, "airsync:Status"), "129")

    async def test_12_1_ping_ends_with_403(self):
        """A 12.1 phone's held Ping ends with HTTP 403 when it is quarantined."""
        answer = await self.hold(self.phone(version="12.1"))
        await self.admin.quarantine(self.account.address, "PHONE1")
        self.assertEqual((await answer).code, 403)


class DeviceLimitTests(DeviceTestCase):
    config_text = "[devices]\nmax_devices_per_account = 2\n"

    async def test_limit(self):
        """A partnership beyond the limit is refused (177 on 14.1+, 403 on 12.1) and not created."""
        one = self.phone("ONE")
        await self.ready(one)
        await self.ready(self.phone("TWO", "12.1"))
        answer = await self.phone("THREE", "14.1").post("Provision", None)
        self.assertEqual(status(answer, PROVISION_STATUS), "177")
        self.assertEqual((await self.phone("FOUR", "12.1").post("Provision", None)).code, 403)
        self.assertEqual(await self.store.devices.count(self.account.id), 2)
        # Known devices go on as before.
        self.assertEqual(status(await one.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "1")
        await self.admin.remove(self.account.address, "TWO")
        await self.ready(self.phone("THREE", "14.1"))
