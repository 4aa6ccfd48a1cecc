"""
Push across processes: a real `twistd bluesync` on the test database holds
the Ping, and this process writes to the database like a second bluesync.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
from pathlib import Path

from twisted.internet import defer, reactor
from twisted.internet.protocol import ProcessProtocol
from twisted.web.client import HTTPConnectionPool

from bluesync.passwords import hash_password
from bluesync.store.folders import INBOX
from tests.eas.client import EASClient, text
from tests.push.helpers import deliver, until, until_stored
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
        self.server = _Server()
        self.process = reactor.spawnProcess(
            self.server, twistd, [twistd, "-n", "--pidfile=", "bluesync", "--config", str(config)],
            env=os.environ.copy(), path=str(directory),
        )

        async def stop():
            if not self.server.ended.called:
                self.process.signalProcess("KILL")
                await self.server.ended

        self.addCleanup(lambda: defer.ensureDeferred(stop()))
        await until(lambda: b"phones connect to" in self.server.output or self.server.ended.called,
                    "twistd to start", 90)
        self.assertFalse(self.server.ended.called, self.server.output.decode(errors="replace"))
        return f"http://127.0.0.1:{port}"

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
