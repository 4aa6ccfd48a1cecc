import psycopg2.extensions
from twisted.internet import reactor
from twisted.logger import globalLogPublisher

from bluesync.push import notifier as push
from bluesync.push.listener import ChangeListener
from bluesync.push.notifier import Notifier
from bluesync.store.database import DatabaseUnavailable
from bluesync.store.folders import USER_MAIL
from tests.push.helpers import deliver, until
from tests.support import DatabaseTestCase, admin_sql


class ListenerTests(DatabaseTestCase):
    async def _set_up(self):
        await super()._set_up()
        # Created before LISTEN starts, so its own notification cannot
        # arrive later and wake a test's waiter.
        self.account = await self.store.create_account("alice@example.org", "Alice", "unused-hash")
        self.notifier = Notifier(reactor)
        self.addCleanup(self.notifier.stop)
        self.listener = ChangeListener(self.dsn, self.notifier, reactor, min_delay=0.05)
        await self.listener.start()
        self.addCleanup(self.listener.stop)

    async def test_delivery_wakes(self):
        """A committed delivery reaches a waiter on the Inbox through LISTEN/NOTIFY."""
        inbox = (await self.store.folders.list(self.account.id))[0]
        waiting = self.notifier.wait(self.account.id, [inbox.id], 1, 600)
        await deliver(self.store, self.account.id)
        wakeup = await waiting
        self.assertEqual((wakeup.reason, wakeup.folders), (push.CHANGED, frozenset({inbox.id})))

    async def test_hierarchy_wakes(self):
        """Creating a folder wakes the account's waiters with a hierarchy change."""
        waiting = self.notifier.wait(self.account.id, [1], 1, 600)
        await self.store.folders.create(self.account.id, None, "Projects", USER_MAIL)
        wakeup = await waiting
        self.assertTrue(wakeup.hierarchy)

    async def test_rolled_back_write_is_silent(self):
        """A write that rolls back sends nothing: the waiter stays held."""
        inbox = (await self.store.folders.list(self.account.id))[0]
        waiting = self.notifier.wait(self.account.id, [inbox.id], 1, 600)

        async def work(transaction):
            from bluesync.store.changes import stamp

            await stamp(transaction, self.account.id, inbox.id)
            raise RuntimeError("roll back")

        with self.assertRaises(RuntimeError):
            await self.database.transaction(work)
        # A later committed change proves the listener was listening all along.
        other = await self.store.folders.by_type(self.account.id, USER_MAIL)
        marker = self.notifier.wait(self.account.id, [other.id], 2, 600)
        async def bump(transaction):
            from bluesync.store.changes import stamp

            await stamp(transaction, self.account.id, other.id)

        await self.database.transaction(bump)
        await marker
        self.assertFalse(waiting.called)
        self.assertEqual(self.notifier.held_count(), 1)

    async def test_reconnect_rechecks(self):
        """After its backend is killed the listener reconnects and fires every waiter with RECHECK."""
        inbox = (await self.store.folders.list(self.account.id))[0]
        first_pid = self.listener.backend_pid
        waiting = self.notifier.wait(self.account.id, [inbox.id], 1, 600)
        admin_sql(f"SELECT pg_terminate_backend({first_pid})")
        await until(lambda: self.listener.generation == 2, "the listener to reconnect")
        self.assertNotEqual(self.listener.backend_pid, first_pid)
        self.assertEqual((await waiting).reason, push.RECHECK)
        # And it listens again.
        again = self.notifier.wait(self.account.id, [inbox.id], 1, 600)
        await deliver(self.store, self.account.id)
        self.assertEqual((await again).reason, push.CHANGED)

    async def test_backoff_while_refused(self):
        """While the database refuses connections the listener keeps retrying, then recovers."""
        name = psycopg2.extensions.parse_dsn(self.dsn)["dbname"]
        failures = []

        def observe(event):
            if "cannot reconnect the LISTEN" in (event.get("log_format") or ""):
                failures.append(event["delay"])

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        self.addCleanup(admin_sql, f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        waiting = self.notifier.wait(self.account.id, [1], 1, 600)
        admin_sql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false",
                  f"SELECT pg_terminate_backend({self.listener.backend_pid})")
        await until(lambda: len(failures) >= 2, "two refused reconnections")
        self.assertFalse(self.listener.listening)
        self.assertFalse(waiting.called)
        self.assertGreater(failures[1], failures[0])
        admin_sql(f"ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true")
        await until(lambda: self.listener.listening, "the listener to reconnect")
        self.assertEqual((await waiting).reason, push.RECHECK)

    async def test_start_fails_cleanly(self):
        """A database that cannot be reached at start is a DatabaseUnavailable naming no password."""
        listener = ChangeListener("host=127.0.0.1 port=1 password=secret connect_timeout=2", Notifier(reactor))
        with self.assertRaises(DatabaseUnavailable) as caught:
            await listener.start()
        self.assertNotIn("secret", str(caught.exception))
        self.assertFalse(listener.listening)
