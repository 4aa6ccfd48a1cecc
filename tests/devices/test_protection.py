"""
Protection end to end: the per-account concurrency limit (held requests
left out), and autoblock of misbehaving devices with its expiry on a fake
clock (MS-ASHTTP 3.1.5.2.3: 503 with Retry-After).
"""

from __future__ import annotations

import time

from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase

from bluesync.config import DevicesConfig
from bluesync.devices.guard import Guard
from bluesync.push.notifier import Notifier
from bluesync.web.rendering import Response
from tests.devices.support import FOLDERSYNC_0, DeviceTestCase, ping_xml, status, sync_xml, text
from tests.push.helpers import until

FOLDERSYNC_STATUS = "folderhierarchy:Status"


class ConcurrencyTests(DeviceTestCase):
    config_text = "[devices]\nmax_concurrent_requests = 1\n"

    async def test_excess_refused_with_retry_after(self):
        """With the account's one request slot taken, the next request gets 503 and Retry-After."""
        client = self.phone()
        await self.ready(client)
        self.assertTrue(self.guard.admit(self.account.id))
        try:
            answer = await client.post("FolderSync", FOLDERSYNC_0)
        finally:
            self.guard.release(self.account.id)
        self.assertEqual(answer.code, 503)
        self.assertEqual(answer.header("retry-after"), "10")
        self.assertEqual(status(await client.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "1")

    async def test_held_ping_does_not_count(self):
        """A held Ping leaves the slot free: another phone of the account still syncs."""
        pinger = self.phone("PINGER")
        await self.ready(pinger)
        device = await self.device("PINGER")
        (modseq,) = (await self.store.folders.modseqs(self.account.id, [self.inbox.id])).values()
        await self.store.sync_states.save_next(device.id, self.inbox.id, None, modseq)
        ping = defer.ensureDeferred(pinger.post("Ping", ping_xml(900, self.inbox.id)))
        await until(lambda: self.notifier.held_count() == 1, "the Ping to be held")
        self.assertEqual(self.guard.working(self.account.id), 0)
        await self.ready(self.phone("OTHER"))
        self.assertFalse(ping.called)
        await self.admin.block(self.account.address, "PINGER")
        self.assertEqual(status(await ping, "ping:Status"), "129")


class AutoblockTests(DeviceTestCase):
    config_text = "[devices]\nautoblock_empty_syncs = 3\nautoblock_user_agents = 2\nautoblock_duration = 10m\n"

    async def _set_up(self):
        self.clock = task.Clock()
        self.clock.advance(time.time())
        await super()._set_up()

    async def looping_phone(self):
        client = self.phone()
        await self.ready(client)
        first = await client.post("Sync", sync_xml(self.inbox.server_id, "0"))
        return client, text(first.document, "//airsync:Collection/airsync:SyncKey")

    async def test_empty_syncs_autoblock_and_expiry(self):
        """A phone looping on empty Syncs is refused (503, Retry-After) until the block expires."""
        client, key = await self.looping_phone()
        for _ in range(4):
            answer = await client.post("Sync", sync_xml(self.inbox.server_id, key))
            self.assertEqual((answer.code, answer.body), (200, b""))
        refused = await client.post("FolderSync", FOLDERSYNC_0)
        self.assertEqual(refused.code, 503)
        self.assertEqual(refused.header("retry-after"), "600")
        device = await self.device()
        self.assertEqual(device.autoblock_reason, "4 Syncs with nothing to answer in a minute")
        (record,) = await self.store.audit.list()
        self.assertEqual((record.actor, record.action, record.device), ("bluesync", "device.autoblock", "PHONE1"))
        self.assertIn("4 Syncs with nothing to answer in a minute; blocked until", record.detail)
        self.assertEqual(await self.inbox_subjects(), ["Your device iPhone (PHONE1) is blocked for a while"])

        self.clock.advance(300)
        later = await client.post("FolderSync", FOLDERSYNC_0)
        self.assertEqual((later.code, later.header("retry-after")), (503, "300"))
        self.clock.advance(301)
        self.assertEqual(status(await client.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "1")

    async def test_slow_empty_syncs_are_fine(self):
        """Empty Syncs spread over more than a minute never trigger the block."""
        client, key = await self.looping_phone()
        for _ in range(8):
            self.assertEqual((await client.post("Sync", sync_xml(self.inbox.server_id, key))).code, 200)
            self.clock.advance(21)
        self.assertIsNone((await self.device()).blocked_until)

    async def test_changing_user_agent(self):
        """A device showing a third user agent within the hour is blocked; an administrator lifts the block."""
        client = self.phone(user_agent="Agent/1")
        await self.ready(client)
        client.user_agent = "Agent/2"
        self.assertEqual(status(await client.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "1")
        client.user_agent = "Agent/3"
        await client.post("FolderSync", FOLDERSYNC_0)
        self.assertEqual((await client.post("FolderSync", FOLDERSYNC_0)).code, 503)
        self.assertEqual((await self.device()).autoblock_reason, "3 different user agents in an hour")
        await self.admin.allow(self.account.address, "PHONE1", "new app version")
        self.assertEqual(status(await client.post("FolderSync", FOLDERSYNC_0), FOLDERSYNC_STATUS), "1")


class GuardTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.notifier = Notifier(self.clock)
        self.guard = Guard(DevicesConfig(max_concurrent_requests=2), self.clock, self.notifier)

    def test_limit_per_account(self):
        """Two requests of an account are admitted, the third not; another account is unaffected."""
        self.assertTrue(self.guard.admit(1))
        self.assertTrue(self.guard.admit(1))
        self.assertFalse(self.guard.admit(1))
        self.assertTrue(self.guard.admit(2))
        self.guard.release(1)
        self.assertTrue(self.guard.admit(1))

    def test_held_requests_left_out(self):
        """Requests held on the notifier do not take a slot while they wait."""
        self.assertTrue(self.guard.admit(1))
        self.assertTrue(self.guard.admit(1))
        waiting = self.notifier.wait(1, [10], 100, 60)
        self.assertTrue(self.guard.admit(1))
        self.assertFalse(self.guard.admit(1))
        self.clock.advance(60)
        self.assertTrue(waiting.called)
        self.guard.release(1)
        self.assertFalse(self.guard.admit(1))

    def test_zero_disables(self):
        """max_concurrent_requests = 0 admits everything; autoblock thresholds of 0 never block."""
        guard = Guard(DevicesConfig(max_concurrent_requests=0, autoblock_empty_syncs=0, autoblock_user_agents=0),
                      self.clock)
        self.assertTrue(all(guard.admit(1) for _ in range(100)))
        for number in range(500):
            self.assertIsNone(guard.observe(7, f"Agent/{number}", "Sync", Response(200, b"")))
