import dataclasses

import treq
from twisted.internet import reactor
from twisted.web.client import HTTPConnectionPool

from bluesync.service import BluesyncService
from bluesync.store.database import DatabaseUnavailable
from tests.support import DatabaseTestCase, test_config


class ServiceTests(DatabaseTestCase):
    async def test_start_serve_stop(self):
        """The service connects, migrates, listens, serves and stops in order."""
        config = test_config(
            f"[database]\ndsn = {self.dsn}\n[server]\nlisten = tcp:0:interface=127.0.0.1\n"
            "[mail]\nlmtp_listen = tcp:0:interface=127.0.0.1\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n"
        )
        service = BluesyncService(config, reactor, exit_on_failure=False)
        service.startService()
        await service.started
        port = service.ports[0].getHost().port
        pool = HTTPConnectionPool(reactor, persistent=False)
        response = await treq.request("OPTIONS", f"http://127.0.0.1:{port}/Microsoft-Server-ActiveSync", pool=pool)
        self.assertEqual(response.code, 401)
        await response.content()
        health = await treq.get(f"http://127.0.0.1:{port}/healthz", pool=pool)
        self.assertEqual(health.code, 200)
        await health.content()
        await service.stopService()
        self.assertEqual(service.ports, [])
        self.assertIsNone(service.opened)

    async def test_unreachable_database(self):
        """An unreachable configured database fails start-up with a clear error."""
        config = test_config("[database]\ndsn = host=127.0.0.1 port=1 dbname=x connect_timeout=2\n")
        service = BluesyncService(config, reactor, exit_on_failure=False)
        service.startService()
        with self.assertRaises(DatabaseUnavailable):
            await service.started
        await service.stopService()
        self.flushLoggedErrors()

    async def test_listen_failure(self):
        """A port that cannot be bound fails start-up naming the endpoint."""
        blocker = reactor.listenTCP(0, __import__("twisted.internet.protocol", fromlist=["Factory"]).Factory(), interface="127.0.0.1")
        self.addCleanup(blocker.stopListening)
        busy = f"tcp:{blocker.getHost().port}:interface=127.0.0.1"
        config = test_config(f"[database]\ndsn = {self.dsn}\n[server]\nlisten = {busy}\n")
        service = BluesyncService(config, reactor, exit_on_failure=False)
        service.startService()
        with self.assertRaises(Exception) as raised:
            await service.started
        self.assertIn(busy, str(raised.exception))
        await service.stopService()
