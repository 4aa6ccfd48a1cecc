from twisted.internet import defer

from tests.push.helpers import until_stored
from tests.support import DatabaseTestCase


class CancelTests(DatabaseTestCase):
    """
    A request whose client goes away cancels the coroutine awaiting the
    store; that must end the wait at once and leave the pool usable.
    """

    async def test_cancel_query(self):
        """Cancelling a running query gives CancelledError at once; the pool keeps working."""
        running = defer.ensureDeferred(self.database.query("SELECT pg_sleep(0.5)"))
        running.cancel()
        self.failureResultOf(running, defer.CancelledError)
        rows = await defer.gatherResults(
            [defer.ensureDeferred(self.database.query("SELECT %s::int", (n,))) for n in range(4)]
        )
        self.assertEqual(rows, [[(n,)] for n in range(4)])
        await until_stored(self.asleep_done, "the abandoned query to end")

    async def asleep_done(self) -> bool:
        (count,) = await self.database.query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND state = 'active' AND query LIKE 'SELECT pg_sleep%%'"
        )
        return count == 0

    async def test_cancelled_transaction_completes(self):
        """A cancelled transaction still ends with its own COMMIT, not half-way."""
        account = await self.store.create_account("alice@example.org", "Alice", "unused-hash")

        async def work(transaction):
            await transaction.execute("SELECT pg_sleep(0.3)")
            await transaction.execute("UPDATE accounts SET display_name = 'Renamed' WHERE id = %s", (account.id,))

        running = defer.ensureDeferred(self.database.transaction(work))
        running.cancel()
        self.failureResultOf(running, defer.CancelledError)

        async def renamed():
            (name,) = await self.database.query_one("SELECT display_name FROM accounts WHERE id = %s", (account.id,))
            return name == "Renamed"

        await until_stored(renamed, "the transaction to commit")
