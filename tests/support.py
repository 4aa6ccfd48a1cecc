"""
Test fixtures: one real embedded PostgreSQL per test run, a fresh database
per test (cloned from a migrated template, so each test starts from the
current schema in milliseconds), and the real Site on a loopback TCP port.
"""

from __future__ import annotations

import atexit
import itertools
import os
import shutil
import tempfile
from pathlib import Path

import psycopg2
import treq
from twisted.internet import defer, reactor
from twisted.trial import unittest

from bluesync.config import Config, parse_config
from bluesync.eas.context import ServerContext
from bluesync.push.listener import ChangeListener
from bluesync.push.notifier import Notifier
from bluesync.store import migrations
from bluesync.store.database import connect
from bluesync.store.embedded import EmbeddedPostgres
from bluesync.store.store import Store
from bluesync.web.site import build_site

_cluster: dict = {}
_counter = itertools.count()
TEMPLATE = "bluesync_test_template"


def cluster() -> tuple[EmbeddedPostgres, str]:
    """
    The run's embedded cluster and its admin DSN, started on first use.
    """
    if not _cluster:
        directory = Path(tempfile.mkdtemp(prefix="bluesync-test-"))
        embedded = EmbeddedPostgres(directory)
        dsn = embedded.start()
        admin_dsn = embedded.dsn("postgres")

        def stop() -> None:
            embedded.stop()
            shutil.rmtree(directory, ignore_errors=True)

        atexit.register(stop)
        _cluster.update(embedded=embedded, dsn=dsn, admin_dsn=admin_dsn, template_ready=False)
    return _cluster["embedded"], _cluster["admin_dsn"]


def dsn_for(database: str) -> str:
    embedded, _ = cluster()
    return embedded.dsn(database)


def admin_sql(*statements: str) -> None:
    _, admin_dsn = cluster()
    connection = psycopg2.connect(admin_dsn)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
    finally:
        connection.close()


def database_outage(test: unittest.TestCase, dsn: str):
    """
    Kill every session of C{dsn}'s database and refuse new ones, so the
    outage lasts until the returned function lifts it, however fast a pool
    notices and reconnects.  The test's cleanup lifts it too.
    """
    name = psycopg2.extensions.parse_dsn(dsn)["dbname"]
    admin_sql(
        f"ALTER DATABASE {name} ALLOW_CONNECTIONS false",
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'",
    )

    def lift() -> None:
        admin_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")

    test.addCleanup(lift)
    return lift


async def until_pool_reconnected(database, limit: float = 20.0) -> None:
    """
    Wait until every pooled connection is alive again, so no reconnection
    timer outlives the test that caused the outage.
    """
    from twisted.internet.task import deferLater

    waited = 0.0
    while any(c.detector.connectionIsDead for c in database._pool.connections):
        if waited >= limit:
            raise AssertionError("the pool did not reconnect")
        await deferLater(reactor, 0.25, lambda: None)
        waited += 0.25


async def _ensure_template() -> None:
    if _cluster.get("template_ready"):
        return
    admin_sql(f"DROP DATABASE IF EXISTS {TEMPLATE}", f"CREATE DATABASE {TEMPLATE}")
    database = await connect(dsn_for(TEMPLATE), 1)
    try:
        await migrations.migrate(database)
    finally:
        database.close()
    _cluster["template_ready"] = True


async def new_database(test: unittest.TestCase, template: str | None = TEMPLATE) -> str:
    """
    Create a database for C{test}, dropped when it ends; return its DSN.
    """
    cluster()
    if template == TEMPLATE:
        await _ensure_template()
    name = f"t{os.getpid()}_{next(_counter)}"
    clause = f" TEMPLATE {template}" if template else ""
    admin_sql(f"CREATE DATABASE {name}{clause}")
    test.addCleanup(admin_sql, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return dsn_for(name)


def test_config(text: str = "") -> Config:
    return parse_config(text, "<test>")


class DatabaseTestCase(unittest.TestCase):
    """
    A test with its own migrated database in C{self.store}.
    """

    pool_size = 2
    config_text = ""

    async def _set_up(self) -> None:
        self.dsn = await new_database(self)
        self.database = await connect(self.dsn, self.pool_size)
        self.addCleanup(self.database.close)
        self.store = Store(self.database)
        self.config = test_config(self.config_text)

    def setUp(self):
        return defer.Deferred.fromCoroutine(self._set_up())


class SiteTestCase(DatabaseTestCase):
    """
    The real Site listening on a loopback port, reached with treq.
    """

    async def _set_up(self) -> None:
        await super()._set_up()
        # Runs just before the pool closes: writes that requests leave
        # running (clearing ping_until after a Ping's answer) end first.
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(self.store.devices.settle()))
        # Push as in the server: a notifier fed by a LISTEN connection.
        self.notifier = Notifier(reactor)
        self.listener = ChangeListener(self.dsn, self.notifier, reactor, min_delay=0.05)
        await self.listener.start()
        self.addCleanup(self.listener.stop)
        self.addCleanup(self.notifier.stop)
        self.context = ServerContext(config=self.config, store=self.store, clock=reactor, notifier=self.notifier)
        self.site = build_site(self.context)
        self.port = reactor.listenTCP(0, self.site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base_url = f"http://127.0.0.1:{self.port.getHost().port}"
        # treq's default pool keeps connections open; close them at the end
        # so trial's dirty-reactor check stays clean.
        from twisted.web.client import HTTPConnectionPool

        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.addCleanup(self.pool.closeCachedConnections)

    async def create_account(self, address="alice@example.org", password="correct horse", name="Alice"):
        from bluesync.passwords import hash_password

        return await self.store.create_account(address, name, hash_password(password))

    def http(self, method: str, path: str, **kwargs):
        return treq.request(method, self.base_url + path, pool=self.pool, **kwargs)
