from twisted.internet import defer, reactor
from twisted.web.client import HTTPConnectionPool

from bluesync.passwords import hash_password
from bluesync.service import BluesyncService
from bluesync.store.folders import INBOX
from tests.eas.client import EASClient, text
from tests.push.helpers import until
from tests.push.test_ping import ping_xml, status
from tests.support import DatabaseTestCase, test_config


class ShutdownTests(DatabaseTestCase):
    timeout = 60

    async def test_stop_answers_held_pings(self):
        """Stopping the service answers every held Ping with Status 1 before the database closes."""
        config = test_config(
            f"[database]\ndsn = {self.dsn}\n[server]\nlisten = tcp:0:interface=127.0.0.1\n"
            "[mail]\nlmtp_listen = tcp:0:interface=127.0.0.1\n[admin]\nlisten = tcp:0:interface=127.0.0.1\n"
        )
        service = BluesyncService(config, reactor, exit_on_failure=False)
        service.startService()
        await service.started
        stopped = False

        async def stop():
            if not stopped:
                await service.stopService()

        self.addCleanup(lambda: defer.ensureDeferred(stop()))
        store = service.context.store
        notifier = service.context.notifier
        account = await store.create_account("alice@example.org", "Alice", hash_password("pw"))
        inbox = await store.folders.by_type(account.id, INBOX)
        pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(pool.closeCachedConnections)
        url = f"http://127.0.0.1:{service.ports[0].getHost().port}"
        answers = []
        for number in range(3):
            client = EASClient(url, account.address, "pw", device_id=f"PHONE{number}", pool=pool)
            await client.provision()
            folder_sync = await client.post(
                "FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'
            )
            self.assertEqual(text(folder_sync.document, "//folderhierarchy:Status"), "1")
            device = await store.devices.get(account.id, client.device_id)
            await store.sync_states.save_next(device.id, inbox.id, None, inbox.modseq)
            answers.append(defer.ensureDeferred(client.post("Ping", ping_xml(3000, [inbox.id]))))
        await until(lambda: notifier.held_count() == 3, "three held Pings")
        await service.stopService()
        stopped = True
        self.assertIsNone(service.opened)
        for answer in answers:
            self.assertEqual(status(await answer), 1)
