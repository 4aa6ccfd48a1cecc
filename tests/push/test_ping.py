"""
Ping end to end: the real Site over TCP, a provisioned device with real
FolderSync state, held requests woken through PostgreSQL LISTEN/NOTIFY.
"""

from __future__ import annotations

import gc
from datetime import datetime, timedelta, timezone

import psycopg2
import psycopg2.extensions
from twisted.internet import defer, reactor
from twisted.web import server
from twisted.web.client import ResponseNeverReceived

from bluesync.eas.context import ServerContext
from bluesync.mail.delivery import new_email_item
from bluesync.push.listener import ChangeListener
from bluesync.push.notifier import Notifier, sync_key
from bluesync.store.changes import CHANNEL, device_payload, stamp
from bluesync.store.database import connect
from bluesync.store.folders import CONTACTS, INBOX, USER_MAIL
from bluesync.store.items import NewItem
from bluesync.store.store import Store
from bluesync.web.site import build_site
from tests.eas.client import EASClient, find, text
from tests.eas.test_sync import message, sync_request
from tests.push.helpers import deliver, until, until_stored
from tests.support import SiteTestCase, admin_sql

PASSWORD = "correct horse"


def ping_xml(heartbeat: int | None, folders=(), folder_class: str = "Email") -> str:
    parts = ['<Ping xmlns="Ping:">']
    if heartbeat is not None:
        parts.append(f"<HeartbeatInterval>{heartbeat}</HeartbeatInterval>")
    if folders:
        parts.append("<Folders>")
        for folder in folders:
            parts.append(f"<Folder><Id>{folder}</Id><Class>{folder_class}</Class></Folder>")
        parts.append("</Folders>")
    parts.append("</Ping>")
    return "".join(parts)


def status(answer) -> int:
    if answer.code != 200 or answer.document is None:
        raise AssertionError(f"not a Ping answer: {answer!r}")
    return int(text(answer.document, "/ping:Ping/ping:Status"))


def changed_folders(answer) -> list[str]:
    return [element.text for element in find(answer.document, "/ping:Ping/ping:Folders/ping:Folder")]


class PingTestCase(SiteTestCase):
    """
    A provisioned device that has run FolderSync and holds a sync state for
    its Inbox at the Inbox's current modseq (what a Sync leaves behind).
    """

    config_text = "[push]\nmin_heartbeat = 1\nmax_heartbeat = 900\nmax_folders = 3\n"
    timeout = 60

    async def _set_up(self) -> None:
        await super()._set_up()
        self.account = await self.create_account(password=PASSWORD)
        self.client = await self.device("PINGDEVICE1")
        self.device_row = await self.store.devices.get(self.account.id, "PINGDEVICE1")
        self.inbox = await self.store.folders.by_type(self.account.id, INBOX)
        await self.synced(self.device_row, self.inbox.id)

    async def device(self, device_id: str) -> EASClient:
        client = EASClient(self.base_url, self.account.address, PASSWORD, device_id=device_id, pool=self.pool)
        await client.provision()
        answer = await client.post("FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>')
        self.assertEqual(text(answer.document, "/folderhierarchy:FolderSync/folderhierarchy:Status"), "1")
        return client

    async def synced(self, device, folder_id: int) -> None:
        """
        Record that C{device} has synced C{folder_id} up to now, as a Sync
        answer would.
        """
        (modseq,) = (await self.store.folders.modseqs(self.account.id, [folder_id])).values()
        latest = await self.store.sync_states.latest(device.id, [folder_id])
        await self.store.sync_states.save_next(device.id, folder_id, latest.get(folder_id), modseq)

    def ping(self, document, client: EASClient | None = None) -> defer.Deferred:
        return defer.ensureDeferred((client or self.client).post("Ping", document))

    async def held(self, count: int = 1) -> None:
        await until(lambda: self.notifier.held_count() == count, f"{count} held Pings")


class PingWakeTests(PingTestCase):
    async def test_delivery_wakes(self):
        """A message delivered to the Inbox answers a held Ping with Status 2 naming it."""
        answer = self.ping(ping_xml(300, [self.inbox.id]))
        await self.held()
        await deliver(self.store, self.account.id)
        answer = await answer
        self.assertEqual(status(answer), 2)
        self.assertEqual(changed_folders(answer), [str(self.inbox.id)])
        self.assertEqual(self.notifier.held_count(), 0)

    async def test_heartbeat_expires(self):
        """With no change, the Ping is answered Status 1 when its heartbeat ends."""
        answer = await self.ping(ping_xml(1, [self.inbox.id]))
        self.assertEqual(status(answer), 1)
        self.assertEqual(changed_folders(answer), [])
        self.assertEqual(self.notifier.held_count(), 0)

    async def test_change_before_ping(self):
        """A change between the last Sync and the Ping is answered at once, not missed."""
        await deliver(self.store, self.account.id)
        answer = await self.ping(ping_xml(900, [self.inbox.id]))
        self.assertEqual(status(answer), 2)
        self.assertEqual(changed_folders(answer), [str(self.inbox.id)])

    async def test_never_synced_folder(self):
        """A watched folder the device never synced counts as changed, so the device syncs it."""
        contacts = await self.store.folders.by_type(self.account.id, CONTACTS)
        answer = await self.ping(ping_xml(900, [self.inbox.id, contacts.id]))
        self.assertEqual(status(answer), 2)
        self.assertEqual(changed_folders(answer), [str(contacts.id)])

    async def test_only_changed_folders_listed(self):
        """Status 2 lists the watched folders with unseen changes, in request order."""
        junk = await self.store.folders.by_type(self.account.id, USER_MAIL)
        await self.synced(self.device_row, junk.id)
        answer = self.ping(ping_xml(300, [junk.id, self.inbox.id]))
        await self.held()
        await deliver(self.store, self.account.id)
        self.assertEqual(changed_folders(await answer), [str(self.inbox.id)])

    async def test_change_from_other_device(self):
        """Another device of the account marking a message read wakes this device's Ping."""
        item_id = await deliver(self.store, self.account.id)
        await self.synced(self.device_row, self.inbox.id)
        await self.device("PINGDEVICE2")
        answer = self.ping(ping_xml(300, [self.inbox.id]))
        await self.held()
        # What the other device's Sync <Change><Read>1</Read> does in the store.
        await self.store.items.update_state(self.account.id, self.inbox.id, item_id, read=True)
        answer = await answer
        self.assertEqual((status(answer), changed_folders(answer)), (2, [str(self.inbox.id)]))

    async def test_own_sync_is_not_a_change(self):
        """A wake-up for a change the device has already synced keeps the Ping held."""
        junk = await self.store.folders.by_type(self.account.id, USER_MAIL)
        await self.synced(self.device_row, junk.id)
        answer = self.ping(ping_xml(300, [self.inbox.id, junk.id]))
        await self.held()

        async def own_change(transaction):
            # A change and the device's state covering it, committed
            # together: the notification arrives, but there is nothing new.
            (modseq,) = await stamp(transaction, self.account.id, self.inbox.id)
            await transaction.execute(
                "UPDATE sync_states SET modseq = %s WHERE device_id = %s AND collection = %s",
                (modseq, self.device_row.id, self.inbox.id),
            )

        await self.database.transaction(own_change)
        # Notifications arrive in commit order: the Inbox hint is handled
        # first, and only the Junk delivery is news.
        await self.store.items.deliver([(self.account.id, junk.id)], NewItem("Email", b"Subject: x\r\n\r\nx"))
        answer = await answer
        self.assertEqual((status(answer), changed_folders(answer)), (2, [str(junk.id)]))


class PingHierarchyTests(PingTestCase):
    async def test_folder_created_while_held(self):
        """A folder created while a Ping is held answers it with Status 7."""
        answer = self.ping(ping_xml(300, [self.inbox.id]))
        await self.held()
        await self.store.folders.create(self.account.id, None, "Projects", USER_MAIL)
        self.assertEqual(status(await answer), 7)

    async def test_hierarchy_stale_at_start(self):
        """A hierarchy change the device has not fetched is Status 7 at once."""
        await self.store.folders.create(self.account.id, None, "Projects", USER_MAIL)
        self.assertEqual(status(await self.ping(ping_xml(900, [self.inbox.id]))), 7)

    async def test_folder_create_by_the_device_itself(self):
        """The device's own FolderCreate is not a hierarchy change for its next Ping."""
        sync_key = text(
            (await self.client.post(
                "FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>'
            )).document,
            "/folderhierarchy:FolderSync/folderhierarchy:SyncKey",
        )
        created = await self.client.post(
            "FolderCreate",
            f'<FolderCreate xmlns="FolderHierarchy:"><SyncKey>{sync_key}</SyncKey><ParentId>0</ParentId>'
            "<DisplayName>Mine</DisplayName><Type>12</Type></FolderCreate>",
        )
        self.assertEqual(text(created.document, "/folderhierarchy:FolderCreate/folderhierarchy:Status"), "1")
        self.assertEqual(status(await self.ping(ping_xml(1, [self.inbox.id]))), 1)

    async def test_no_foldersync(self):
        """A device that never ran FolderSync is asked for one (Status 7)."""
        await self.store.sync_states.forget(self.device_row.id)
        self.assertEqual(status(await self.ping(ping_xml(900, [self.inbox.id]))), 7)

    async def test_foreign_folders(self):
        """A folder of another account, a deleted one or a malformed Id is Status 7."""
        other = await self.create_account("bob@example.org", PASSWORD, "Bob")
        bobs_inbox = await self.store.folders.by_type(other.id, INBOX)
        for folder in (bobs_inbox.id, 999999, "not-a-folder"):
            answer = await self.ping(ping_xml(900, [folder]))
            self.assertEqual(status(answer), 7, folder)
        device = await self.store.devices.get(self.account.id, "PINGDEVICE1")
        self.assertIsNone(device.ping_folders)


class PingRequestTests(PingTestCase):
    async def test_heartbeat_out_of_range(self):
        """Heartbeats outside [push] bounds get Status 5 with the nearest limit."""
        for heartbeat, limit in ((0, "1"), (901, "900")):
            answer = await self.ping(ping_xml(heartbeat, [self.inbox.id]))
            self.assertEqual(status(answer), 5)
            self.assertEqual(text(answer.document, "/ping:Ping/ping:HeartbeatInterval"), limit)

    async def test_too_many_folders(self):
        """More folders than max_folders gets Status 6 with MaxFolders."""
        folders = [folder.id for folder in await self.store.folders.list(self.account.id)][:4]
        answer = await self.ping(ping_xml(300, folders))
        self.assertEqual(status(answer), 6)
        self.assertEqual(text(answer.document, "/ping:Ping/ping:MaxFolders"), "3")

    async def test_syntax_errors(self):
        """Malformed requests get Status 4."""
        bad = (
            ping_xml(300, [self.inbox.id, self.inbox.id]),
            '<Ping xmlns="Ping:"><HeartbeatInterval>soon</HeartbeatInterval></Ping>',
            '<Ping xmlns="Ping:"><HeartbeatInterval>60</HeartbeatInterval><Folders/></Ping>',
            '<Ping xmlns="Ping:"><Folders><Folder><Class>Email</Class></Folder></Folders></Ping>',
            '<Ping xmlns="Ping:"><HeartbeatInterval>60</HeartbeatInterval>'
            '<HeartbeatInterval>60</HeartbeatInterval></Ping>',
            '<Sync xmlns="AirSync:"/>',
        )
        for document in bad:
            self.assertEqual(status(await self.ping(document)), 4, document)

    async def test_nothing_to_reuse(self):
        """An empty or partial Ping with nothing remembered gets Status 3."""
        for document in (None, ping_xml(60), ping_xml(None, [self.inbox.id])):
            self.assertEqual(status(await self.ping(document)), 3)

    async def test_empty_ping_reuses_parameters(self):
        """An empty Ping reuses the last Ping's heartbeat and folders, stored with the device."""
        await deliver(self.store, self.account.id)
        first = await self.ping(ping_xml(300, [self.inbox.id]))
        self.assertEqual(status(first), 2)
        device = await self.store.devices.get(self.account.id, "PINGDEVICE1")
        self.assertEqual((device.ping_heartbeat, device.ping_folders), (300, [self.inbox.id]))
        await self.synced(self.device_row, self.inbox.id)
        answer = self.ping(None)
        await self.held()
        await deliver(self.store, self.account.id)
        answer = await answer
        self.assertEqual((status(answer), changed_folders(answer)), (2, [str(self.inbox.id)]))

    async def test_partial_ping(self):
        """A Ping with only a HeartbeatInterval keeps the remembered folders."""
        await self.store.devices.set_ping(self.device_row.id, 300, [self.inbox.id])
        self.assertEqual(status(await self.ping(ping_xml(1))), 1)
        device = await self.store.devices.get(self.account.id, "PINGDEVICE1")
        self.assertEqual((device.ping_heartbeat, device.ping_folders), (1, [self.inbox.id]))


class PingHoldingTests(PingTestCase):
    async def test_superseded(self):
        """A new Ping from the same device answers the held one (Status 1) and takes its place."""
        first = self.ping(ping_xml(300, [self.inbox.id]))
        await self.held()
        second = self.ping(ping_xml(300, [self.inbox.id]))
        self.assertEqual(status(await first), 1)
        await self.held()
        await deliver(self.store, self.account.id)
        self.assertEqual(status(await second), 2)

    async def test_devices_held_side_by_side(self):
        """Two devices of one account each hold a Ping and both wake."""
        other = await self.device("PINGDEVICE2")
        other_row = await self.store.devices.get(self.account.id, "PINGDEVICE2")
        await self.synced(other_row, self.inbox.id)
        first = self.ping(ping_xml(300, [self.inbox.id]))
        second = self.ping(ping_xml(300, [self.inbox.id]), other)
        await self.held(2)
        await deliver(self.store, self.account.id)
        self.assertEqual([status(await first), status(await second)], [2, 2])

    async def test_disconnect_frees_waiter(self):
        """A client that goes away frees its waiter at once."""
        answer = self.ping(ping_xml(300, [self.inbox.id]))
        await self.held()
        answer.cancel()
        with self.assertRaises(ResponseNeverReceived):
            await answer
        await until(lambda: self.notifier.held_count() == 0, "the waiter to go")

    async def test_device_notification(self):
        """A device notification (wipe requested) ends the held Ping with the access check's answer."""
        answer = self.ping(ping_xml(300, [self.inbox.id]))
        await self.held()
        await self.store.devices.request_wipe(self.device_row.id)
        await self.database.execute(
            "SELECT pg_notify(%s, %s)", (CHANNEL, device_payload(self.account.id, self.device_row.id))
        )
        # MS-ASCMD 2.2.2: common status 140, RemoteWipeRequested, in the Ping root.
        self.assertEqual(status(await answer), 140)

    async def test_change_during_listen_outage(self):
        """A change committed while the LISTEN connection is down still answers the held Ping."""
        name = psycopg2.extensions.parse_dsn(self.dsn)["dbname"]
        self.addCleanup(admin_sql, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        answer = self.ping(ping_xml(300, [self.inbox.id]))
        await self.held()
        admin_sql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false",
                  f"SELECT pg_terminate_backend({self.listener.backend_pid})")
        await until(lambda: not self.listener.listening, "the listener to notice")
        await deliver(self.store, self.account.id)
        # The notification went nowhere: the Ping is still held.
        self.assertFalse(answer.called)
        self.assertEqual(self.notifier.held_count(), 1)
        admin_sql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        answer = await answer
        self.assertEqual((status(answer), changed_folders(answer)), (2, [str(self.inbox.id)]))

    async def test_recheck_without_change_keeps_holding(self):
        """A LISTEN reconnection with nothing new re-checks and keeps the Ping held."""
        answer = self.ping(ping_xml(300, [self.inbox.id]))
        await self.held()
        generation = self.listener.generation
        admin_sql(f"SELECT pg_terminate_backend({self.listener.backend_pid})")
        await until(lambda: self.listener.generation > generation, "the listener to reconnect")
        await self.held()
        self.assertFalse(answer.called)
        await deliver(self.store, self.account.id)
        self.assertEqual(status(await answer), 2)


class PingReleaseTests(PingTestCase):
    async def ping_until(self, device_id: str = "PINGDEVICE1"):
        return (await self.store.devices.get(self.account.id, device_id)).ping_until

    async def test_answered_before_ping_until_is_cleared(self):
        """A woken Ping is answered even while clearing devices.ping_until has to wait for the row."""
        answer = self.ping(ping_xml(300, [self.inbox.id]))
        await until_stored(lambda: self._is_recorded(), "ping_until to be written")
        locker = psycopg2.connect(self.dsn)
        self.addCleanup(locker.close)
        with locker.cursor() as cursor:
            cursor.execute("SELECT 1 FROM devices WHERE id = %s FOR UPDATE", (self.device_row.id,))
        await deliver(self.store, self.account.id)
        self.assertEqual(status(await answer), 2)
        self.assertIsNotNone(await self.ping_until())
        locker.rollback()
        await self.store.devices.settle()
        self.assertIsNone(await self.ping_until())

    async def _is_recorded(self) -> bool:
        return await self.ping_until() is not None

    async def test_clears_batched_and_newer_pings_kept(self):
        """Clears queued together are all written; a device whose newer Ping recorded its own end keeps it."""
        other = await self.store.devices.touch(self.account.id, "PINGDEVICE2", "iPhone", "", "16.1", "Ping")
        first = datetime(2031, 1, 1, tzinfo=timezone.utc)
        newer = first + timedelta(minutes=5)
        await self.store.devices.ping_held(self.device_row.id, first)
        await self.store.devices.ping_held(other.id, newer)
        self.store.devices.ping_released(self.device_row.id, first)
        self.store.devices.ping_released(other.id, first)
        await self.store.devices.settle()
        self.assertIsNone(await self.ping_until())
        self.assertEqual(await self.ping_until("PINGDEVICE2"), newer)

    async def test_held_request_keeps_no_credentials(self):
        """A held Ping's HTTP request no longer carries its Authorization header, query or body."""
        answer = self.ping(ping_xml(300, [self.inbox.id]))
        await self.held()
        (request,) = [r for r in gc.get_objects()
                      if isinstance(r, server.Request) and b"Cmd=Ping" in (getattr(r, "uri", b"") or b"")
                      and not r.finished and not getattr(r, "_disconnected", False)]
        self.assertIsNone(request.requestHeaders.getRawHeaders(b"authorization"))
        self.assertEqual(request.requestHeaders.getRawHeaders(b"user-agent"), [b"Apple-iPhone15C2/2301.341"])
        self.assertEqual((request.args, request.content), ({}, None))
        await deliver(self.store, self.account.id)
        self.assertEqual(status(await answer), 2)


def lock_waiters(observer) -> int:
    """
    How many sessions of the test database wait for a lock, read on
    C{observer} (an autocommit psycopg2 connection).
    """
    with observer.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                       " AND wait_event_type = 'Lock'")
        return cursor.fetchone()[0]


class BackToBackTests(PingTestCase):
    """
    Two Pings of one device arriving back to back on one process: the one
    that arrived last stays held, whatever order their announcements reach
    the database in.
    """

    pool_size = 4

    async def hold_seq(self) -> int:
        (sequence,) = await self.database.query_one("SELECT hold_seq FROM devices WHERE id = %s",
                                                    (self.device_row.id,))
        return sequence

    async def test_older_ping_slowed_announces_nothing(self):
        """A Ping ended by a newer one while it was still reading the store does not announce itself after it."""
        await self.store.devices.set_ping(self.device_row.id, 200, [self.inbox.id])
        locker = psycopg2.connect(self.dsn)
        self.addCleanup(locker.close)
        observer = psycopg2.connect(self.dsn)
        observer.autocommit = True
        self.addCleanup(observer.close)
        with locker.cursor() as cursor:
            cursor.execute("SELECT 1 FROM devices WHERE id = %s FOR UPDATE", (self.device_row.id,))
        # New parameters: the older Ping writes them before it is held, and
        # that write waits for the row.
        older = self.ping(ping_xml(300, [self.inbox.id]))
        await until(lambda: lock_waiters(observer) == 1, "the older Ping to wait for the row")
        # The remembered parameters: the newer Ping goes straight to its
        # announcement, which queues behind the older Ping's write.
        newer = self.ping(ping_xml(200, [self.inbox.id]))
        await until(lambda: lock_waiters(observer) == 2, "the newer Ping's announcement to wait for the row")
        locker.rollback()
        self.assertEqual(status(await older), 1)
        await self.store.devices.settle()
        self.assertFalse(newer.called)
        self.assertEqual(await self.hold_seq(), 1)
        self.assertEqual(self.notifier.held_sequence(self.device_row.id), 1)
        await deliver(self.store, self.account.id)
        self.assertEqual(status(await newer), 2)

    async def test_two_pings_back_to_back(self):
        """Of two Pings sent together one ends with Status 1 and the other stays held, numbered last."""
        pings = [self.ping(ping_xml(300, [self.inbox.id])) for _ in range(2)]
        await until(lambda: any(ping.called for ping in pings), "one Ping to end")
        await self.store.devices.settle()
        ended = [ping for ping in pings if ping.called]
        self.assertEqual(len(ended), 1)
        self.assertEqual(status(await ended[0]), 1)
        (held,) = [ping for ping in pings if not ping.called]
        self.assertEqual(self.notifier.held_sequence(self.device_row.id), await self.hold_seq())
        await deliver(self.store, self.account.id)
        self.assertEqual(status(await held), 2)

    async def test_announcements_of_a_device_sent_one_after_the_other(self):
        """A device's second announcement is not sent while its first waits for the row, so they commit in order."""
        devices = self.store.devices
        device_pk = self.device_row.id
        locker = psycopg2.connect(self.dsn)
        self.addCleanup(locker.close)
        observer = psycopg2.connect(self.dsn)
        observer.autocommit = True
        self.addCleanup(observer.close)
        with locker.cursor() as cursor:
            cursor.execute("SELECT 1 FROM devices WHERE id = %s FOR UPDATE", (device_pk,))
        first = devices.in_background(devices.ping_held(device_pk, datetime(2031, 1, 1, tzinfo=timezone.utc)))
        await until(lambda: lock_waiters(observer) == 1, "the first announcement to wait for the row")
        second = devices.in_background(devices.sync_held(device_pk))
        # Sent after the second announcement was made, waiting for the same row.
        other = devices.in_background(devices.set_ping(device_pk, 200, [self.inbox.id]))
        await until(lambda: lock_waiters(observer) >= 2, "another write to wait for the row")
        with observer.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                           " AND state = 'active' AND query LIKE '%%hold_seq%%' AND pid <> pg_backend_pid()")
            self.assertEqual(cursor.fetchone()[0], 1)
        locker.rollback()
        self.assertEqual([await first, await second], [1, 2])
        await other
        self.assertEqual(await devices.newest_hold(device_pk, "p"), 1)
        self.assertEqual(await devices.newest_hold(device_pk, "s"), 2)


class TwoProcessTests(PingTestCase):
    async def second_server(self) -> tuple[EASClient, Notifier]:
        """
        Another server on the same database, with its own pool, notifier
        and LISTEN connection; and the test's phone as its client.
        """
        database = await connect(self.dsn, 2)
        self.addCleanup(database.close)
        other_store = Store(database)
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(other_store.devices.settle()))
        other_notifier = Notifier(reactor)
        other_listener = ChangeListener(self.dsn, other_notifier, reactor)
        await other_listener.start()
        self.addCleanup(other_listener.stop)
        self.addCleanup(other_notifier.stop)
        site = build_site(ServerContext(config=self.config, store=other_store, clock=reactor, notifier=other_notifier))
        port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        client = EASClient(f"http://127.0.0.1:{port.getHost().port}", self.account.address, PASSWORD,
                           device_id="PINGDEVICE1", pool=self.pool)
        client.policy_key = self.client.policy_key
        return client, other_notifier

    async def test_other_process_delivery(self):
        """A Ping held by one server is answered when another server's store delivers the mail."""
        client, other_notifier = await self.second_server()
        answer = defer.ensureDeferred(client.post("Ping", ping_xml(300, [self.inbox.id])))
        await until(lambda: other_notifier.held_count() == 1, "the Ping held on the second server")
        self.assertEqual(self.notifier.held_count(), 0)
        # Delivered through the first server's pool and store.
        await deliver(self.store, self.account.id)
        answer = await answer
        self.assertEqual((status(answer), changed_folders(answer)), (2, [str(self.inbox.id)]))

    async def test_newer_ping_held_while_notifications_were_lost(self):
        """A Ping superseded on another server while this one's LISTEN connection was down ends when it reconnects."""
        client, other_notifier = await self.second_server()
        older = self.ping(ping_xml(300, [self.inbox.id]))
        await until(lambda: self.notifier.held_sequence(self.device_row.id) is not None, "the first Ping announced")
        name = psycopg2.extensions.parse_dsn(self.dsn)["dbname"]
        self.addCleanup(admin_sql, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        admin_sql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false",
                  f"SELECT pg_terminate_backend({self.listener.backend_pid})")
        await until(lambda: not self.listener.listening, "the listener to notice")
        newer = defer.ensureDeferred(client.post("Ping", ping_xml(300, [self.inbox.id])))
        await until(lambda: other_notifier.held_sequence(self.device_row.id) is not None,
                    "the second Ping announced")
        # Its announcement went nowhere here: the first Ping is still held.
        self.assertFalse(older.called)
        admin_sql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        self.assertEqual(status(await older), 1)
        self.assertFalse(newer.called)
        await deliver(self.store, self.account.id)
        self.assertEqual(status(await newer), 2)

    async def test_newer_sync_wait_held_while_notifications_were_lost(self):
        """A Sync wait superseded on another server while this one's LISTEN connection was down ends at the re-check."""
        client, other_notifier = await self.second_server()
        initial = await self.client.post("Sync", sync_request(str(self.inbox.id), "0"))
        key = text(initial.document, "//airsync:Collection/airsync:SyncKey")
        request = sync_request(str(self.inbox.id), key).replace(
            "</Collections>", "</Collections><HeartbeatInterval>300</HeartbeatInterval>")
        waits = sync_key(self.device_row.id)
        older = defer.ensureDeferred(self.client.post("Sync", request))
        await until(lambda: self.notifier.held_sequence(waits) is not None, "the first Sync wait announced")
        name = psycopg2.extensions.parse_dsn(self.dsn)["dbname"]
        self.addCleanup(admin_sql, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        admin_sql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false",
                  f"SELECT pg_terminate_backend({self.listener.backend_pid})")
        await until(lambda: not self.listener.listening, "the listener to notice")
        newer = defer.ensureDeferred(client.post("Sync", request))
        await until(lambda: other_notifier.held_sequence(waits) is not None, "the second Sync wait announced")
        # Its announcement went nowhere here: the first Sync wait is still held.
        self.assertFalse(older.called)
        admin_sql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        answer = await older
        # Nothing new: the empty answer of a Sync wait that ends (MS-ASCMD 2.2.1.21).
        self.assertEqual((answer.code, answer.body), (200, b""))
        self.assertEqual(self.notifier.held_count(), 0)
        self.assertFalse(newer.called)
        item = new_email_item(message(1, "after the outage"), datetime.now(timezone.utc))
        await self.store.items.deliver([(self.account.id, self.inbox.id)], item)
        answer = await newer
        self.assertEqual(text(answer.document, "//airsync:Add/airsync:ApplicationData/email:Subject"),
                         "after the outage")

    async def test_two_pings_back_to_back_on_two_servers(self):
        """Of two Pings sent together to two servers, the one numbered last stays held and the other ends."""
        client, other_notifier = await self.second_server()
        pings = [self.ping(ping_xml(300, [self.inbox.id])),
                 defer.ensureDeferred(client.post("Ping", ping_xml(300, [self.inbox.id])))]
        await until(lambda: any(ping.called for ping in pings), "one Ping to end")
        (sequence,) = await self.database.query_one("SELECT hold_seq FROM devices WHERE id = %s",
                                                    (self.device_row.id,))
        self.assertEqual(sequence, 2)
        ended = [ping for ping in pings if ping.called]
        self.assertEqual(len(ended), 1)
        self.assertEqual(status(await ended[0]), 1)
        (held,) = [ping for ping in pings if not ping.called]
        holder = self.notifier if held is pings[0] else other_notifier
        self.assertEqual(holder.held_sequence(self.device_row.id), 2)
        self.assertEqual(self.notifier.held_count() + other_notifier.held_count(), 1)
        await deliver(self.store, self.account.id)
        self.assertEqual(status(await held), 2)
