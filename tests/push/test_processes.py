"""
Push across processes: real `twistd bluesync` processes on the test
database hold the Pings, and this process writes to the database like
another bluesync.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.internet.protocol import ProcessProtocol
from twisted.web.client import HTTPConnectionPool

from bluesync.mail.delivery import new_email_item
from bluesync.passwords import hash_password
from bluesync.store.folders import INBOX
from tests.eas.client import EASClient, text
from tests.push.helpers import deliver, until, until_stored
from tests.eas.test_sync import message, sync_request
from tests.push.test_ping import changed_folders, ping_xml, status
from tests.support import DatabaseTestCase


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server(ProcessProtocol):
    def __init__(self) -> None:
        self.output = b""
        self.ended = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.output += data

    errReceived = outReceived

    def processEnded(self, reason) -> None:
        self.ended.callback(reason.value)


class TwistdProcessTests(DatabaseTestCase):
    timeout = 120

    async def start_server(self) -> str:
        directory = Path(tempfile.mkdtemp(prefix="bluesync-push-"))
        port = _free_port()
        config = directory / "bluesync.ini"
        config.write_text(
            f"[server]\nlisten = tcp:{port}:interface=127.0.0.1\nstate_dir = {directory}\n"
            f"[database]\ndsn = {self.dsn}\npool_size = 2\n"
            f"[mail]\nlmtp_listen = tcp:{_free_port()}:interface=127.0.0.1\n"
            f"[admin]\nlisten = tcp:{_free_port()}:interface=127.0.0.1\n"
        )
        twistd = os.path.join(os.path.dirname(sys.executable), "twistd")
        self.server = server = _Server()
        self.process = process = reactor.spawnProcess(
            server, twistd, [twistd, "-n", "--pidfile=", "bluesync", "--config", str(config)],
            env=os.environ.copy(), path=str(directory),
        )

        async def stop():
            if not server.ended.called:
                process.signalProcess("KILL")
                await server.ended

        self.addCleanup(lambda: defer.ensureDeferred(stop()))
        await until(lambda: b"phones connect to" in server.output or server.ended.called, "twistd to start", 90)
        self.assertFalse(server.ended.called, server.output.decode(errors="replace"))
        return f"http://127.0.0.1:{port}"

    async def phone(self, url: str, account, device_id: str, policy_key: int | None = None) -> EASClient:
        """
        A client of C{url}: provisioned and past FolderSync, or, given the
        policy key of an earlier client, the same phone reconnecting there.
        """
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        client = EASClient(url, account.address, "pw", device_id=device_id, pool=pool)
        if policy_key is not None:
            client.policy_key = policy_key
            return client
        await client.provision()
        folder_sync = await client.post(
            "FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'
        )
        self.assertEqual(text(folder_sync.document, "//folderhierarchy:Status"), "1")
        return client

    async def hold_sequence(self, account, device_id: str) -> int:
        (sequence,) = await self.database.query_one(
            "SELECT hold_seq FROM devices WHERE account_id = %s AND device_id = %s", (account.id, device_id)
        )
        return sequence

    async def two_servers(self) -> tuple[str, str]:
        first = await self.start_server()
        second = await self.start_server()
        return first, second

    async def test_new_ping_on_another_process_ends_the_older(self):
        """A phone reconnecting to another process: its new Ping answers the older one held elsewhere, and stays held."""
        first_url, second_url = await self.two_servers()
        account = await self.store.create_account("alice@example.org", "Alice", hash_password("pw"))
        inbox = await self.store.folders.by_type(account.id, INBOX)
        first = await self.phone(first_url, account, "NATPHONE")
        device = await self.store.devices.get(account.id, "NATPHONE")
        await self.store.sync_states.save_next(device.id, inbox.id, None, inbox.modseq)

        older = defer.ensureDeferred(first.post("Ping", ping_xml(600, [inbox.id])))
        await until_stored(lambda: self._sequence_is(account, "NATPHONE", 1), "the first Ping announced")
        self.assertFalse(older.called)
        second = await self.phone(second_url, account, "NATPHONE", first.policy_key)
        newer = defer.ensureDeferred(second.post("Ping", ping_xml(600, [inbox.id])))
        self.assertEqual(status(await older), 1)
        self.assertEqual(await self.hold_sequence(account, "NATPHONE"), 2)
        self.assertFalse(newer.called)
        # Still held on the second process, not ended by its own announcement.
        await deliver(self.store, account.id)
        answer = await newer
        self.assertEqual((status(answer), changed_folders(answer)), (2, [str(inbox.id)]))

    async def test_new_sync_wait_on_another_process_ends_the_older(self):
        """A Sync with Wait held by one process is answered when the phone's next one is held by another."""
        first_url, second_url = await self.two_servers()
        account = await self.store.create_account("alice@example.org", "Alice", hash_password("pw"))
        inbox = await self.store.folders.by_type(account.id, INBOX)
        first = await self.phone(first_url, account, "NATPHONE")
        initial = await first.post("Sync", sync_request(str(inbox.id), "0"))
        key = text(initial.document, "//airsync:Collection/airsync:SyncKey")
        request = sync_request(str(inbox.id), key).replace(
            "</Collections>", "</Collections><HeartbeatInterval>600</HeartbeatInterval>")

        older = defer.ensureDeferred(first.post("Sync", request))
        await until_stored(lambda: self._sequence_is(account, "NATPHONE", 1), "the first Sync wait announced")
        second = await self.phone(second_url, account, "NATPHONE", first.policy_key)
        newer = defer.ensureDeferred(second.post("Sync", request))
        answer = await older
        # Nothing new: the empty answer of a Sync wait that ends (MS-ASCMD 2.2.1.21).
        self.assertEqual((answer.code, answer.body), (200, b""))
        await until_stored(lambda: self._sequence_is(account, "NATPHONE", 2), "the second Sync wait announced")
        self.assertFalse(newer.called)
        item = new_email_item(message(1, "after the reconnection"), datetime.now(timezone.utc))
        await self.store.items.deliver([(account.id, inbox.id)], item)
        answer = await newer
        self.assertEqual(text(answer.document, "//airsync:Add/airsync:ApplicationData/email:Subject"),
                         "after the reconnection")

    async def _sequence_is(self, account, device_id: str, sequence: int) -> bool:
        return await self.hold_sequence(account, device_id) == sequence

    async def test_held_in_twistd_woken_from_here_and_answered_at_sigterm(self):
        """A Ping held by a twistd process wakes on this process's delivery, and SIGTERM answers the next one."""
        url = await self.start_server()
        account = await self.store.create_account("alice@example.org", "Alice", hash_password("pw"))
        inbox = await self.store.folders.by_type(account.id, INBOX)
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        client = EASClient(url, account.address, "pw", device_id="TWISTDPHONE", pool=pool)
        await client.provision()
        folder_sync = await client.post(
            "FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'
        )
        self.assertEqual(text(folder_sync.document, "//folderhierarchy:Status"), "1")
        device = await self.store.devices.get(account.id, "TWISTDPHONE")
        await self.store.sync_states.save_next(device.id, inbox.id, None, inbox.modseq)

        async def held(heartbeat):
            row = await self.store.devices.get(account.id, "TWISTDPHONE")
            return row.ping_heartbeat == heartbeat

        answer = defer.ensureDeferred(client.post("Ping", ping_xml(600, [inbox.id])))
        await until_stored(lambda: held(600), "the Ping held by twistd")
        await deliver(self.store, account.id)
        answer = await answer
        self.assertEqual((status(answer), changed_folders(answer)), (2, [str(inbox.id)]))

        (modseq,) = (await self.store.folders.modseqs(account.id, [inbox.id])).values()
        latest = await self.store.sync_states.latest(device.id, [inbox.id])
        await self.store.sync_states.save_next(device.id, inbox.id, latest[inbox.id], modseq)
        second = defer.ensureDeferred(client.post("Ping", ping_xml(601, [inbox.id])))
        await until_stored(lambda: held(601), "the second Ping held by twistd")
        self.process.signalProcess(signal.SIGTERM)
        self.assertEqual(status(await second), 1)
        await self.server.ended
        self.assertIn(b"answered 1 held requests", self.server.output)
