"""
The store: one object composed of per-table-family components.

L{open_store} is shared by the server and the admin CLI, so both reach the
same database the same way (embedded when no DSN is configured), with the
migrations applied.
"""

from __future__ import annotations

from twisted.internet import threads

from bluesync.config import Config
from bluesync.store import migrations
from bluesync.store.accounts import AccountStore
from bluesync.store.admins import AdminStore
from bluesync.store.audit import AuditStore
from bluesync.store.conversations import ConversationRuleStore
from bluesync.store.database import Database, connect
from bluesync.store.devices import DeviceStore
from bluesync.store.embedded import EmbeddedPostgres
from bluesync.store.folders import FolderStore
from bluesync.store.items import ItemStore
from bluesync.store.outbound import OutboundStore
from bluesync.store.rules import RuleStore
from bluesync.store.search import SearchStore
from bluesync.store.syncstate import SyncStateStore


class Store:
    def __init__(self, database: Database) -> None:
        self.database = database
        self.accounts = AccountStore(database)
        self.folders = FolderStore(database)
        self.items = ItemStore(database)
        self.devices = DeviceStore(database)
        self.sync_states = SyncStateStore(database)
        self.search = SearchStore(database)
        self.outbound = OutboundStore(database, self.items)
        self.rules = RuleStore(database)
        self.conversations = ConversationRuleStore(database)
        self.audit = AuditStore(database)
        self.admins = AdminStore(database)

    async def create_account(self, address: str, display_name: str, password_hash: str):
        """
        Create an account with its default folders, atomically.
        """

        async def setup(transaction, account) -> None:
            await self.folders.create_defaults(transaction, account.id)

        return await self.accounts.create(address, display_name, password_hash, setup=setup)


class OpenStore:
    """
    A store plus what must be released when it closes.
    """

    def __init__(self, store: Store, embedded: EmbeddedPostgres | None) -> None:
        self.store = store
        self._embedded = embedded

    async def close(self) -> None:
        self.store.database.close()
        if self._embedded is not None:
            await threads.deferToThread(self._embedded.stop)


async def open_store(config: Config) -> OpenStore:
    """
    Start the embedded PostgreSQL if needed, connect, migrate.
    """
    embedded = None
    dsn = config.database.dsn
    if config.database.embedded:
        embedded = EmbeddedPostgres(config.server.state_dir)
        dsn = await threads.deferToThread(embedded.start)
    try:
        database = await connect(dsn, config.database.pool_size)
        try:
            await migrations.migrate(database)
        except BaseException:
            database.close()
            raise
    except BaseException:
        if embedded is not None:
            await threads.deferToThread(embedded.stop)
        raise
    return OpenStore(Store(database), embedded)
