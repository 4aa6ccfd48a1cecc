from twisted.internet import defer

from bluesync.store import migrations
from bluesync.store.database import DatabaseUnavailable, connect
from tests.support import DatabaseTestCase, new_database


class MigrationTests(DatabaseTestCase):
    def setUp(self):
        return defer.Deferred.fromCoroutine(self._empty())

    async def _empty(self):
        self.dsn = await new_database(self, template=None)
        self.database = await connect(self.dsn, 1)
        self.addCleanup(self.database.close)

    async def test_empty_database(self):
        """Every migration applies to an empty database, in order."""
        applied = await migrations.migrate(self.database)
        names = [m.name for m in migrations.available_migrations()]
        self.assertEqual(applied, names)
        self.assertEqual(await migrations.schema_version(self.database), len(names))
        rows = await self.database.query("SELECT to_regclass('accounts') IS NOT NULL")
        self.assertEqual(rows, [(True,)])

    async def test_rerun(self):
        """A second run on a migrated database applies nothing."""
        await migrations.migrate(self.database)
        self.assertEqual(await migrations.migrate(self.database), [])

    async def test_newer_schema_refused(self):
        """A database migrated by a newer bluesync is refused with a clear message."""
        await migrations.migrate(self.database)
        await self.database.execute("INSERT INTO schema_version (version, name) VALUES (999, '999_future.sql')")
        with self.assertRaises(migrations.SchemaError) as raised:
            await migrations.migrate(self.database)
        self.assertIn("999", str(raised.exception))

    async def test_concurrent(self):
        """Two processes migrating at once apply each migration once."""
        other = await connect(self.dsn, 1)
        self.addCleanup(other.close)
        first, second = await defer.gatherResults(
            [
                defer.Deferred.fromCoroutine(migrations.migrate(self.database)),
                defer.Deferred.fromCoroutine(migrations.migrate(other)),
            ]
        )
        self.assertEqual(sorted([len(first), len(second)])[0], 0)
        rows = await self.database.query("SELECT count(*) FROM schema_version")
        self.assertEqual(rows[0][0], len(migrations.available_migrations()))


class ConnectTests(DatabaseTestCase):
    async def test_unreachable(self):
        """An unreachable server gives DatabaseUnavailable without the password."""
        with self.assertRaises(DatabaseUnavailable) as raised:
            await connect("host=127.0.0.1 port=1 dbname=x user=u password=hunter2 connect_timeout=2", 1)
        self.assertIn("port=1", str(raised.exception))
        self.assertNotIn("hunter2", str(raised.exception))


class DeadConnectionTests(DatabaseTestCase):
    pool_size = 1

    async def test_statement_error_keeps_connection(self):
        """A lock timeout is an error for its caller only: the connection stays usable."""
        import psycopg2

        await self.store.create_account("a@example.org", "", "h")
        holder = psycopg2.connect(self.dsn)
        self.addCleanup(holder.close)
        cursor = holder.cursor()
        cursor.execute("SELECT id FROM accounts FOR UPDATE")

        async def blocked(transaction):
            await transaction.execute("SET LOCAL lock_timeout = 50")
            await transaction.execute("SELECT id FROM accounts FOR UPDATE")

        with self.assertRaises(psycopg2.errors.LockNotAvailable):
            await self.database.transaction(blocked)
        holder.rollback()
        self.assertEqual(await self.database.query("SELECT 1"), [(1,)])
