"""
The connection pool, and the one way the rest of the store talks SQL.

txpostgres gives non-blocking psycopg2 connections.  Each pooled connection
carries a dead-connection detector, so a PostgreSQL restart costs the
requests in flight at that moment (they fail and are answered 503 by the web
layer) and the pool reconnects by itself with backoff.

Writes that must wake held requests queue a notification on the
L{Transaction}; it is sent with C{pg_notify} inside the same transaction, so
PostgreSQL delivers it on commit and never for a rolled-back change.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Sequence, TypeVar

import psycopg2
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from txpostgres import reconnection, txpostgres

log = Logger()

T = TypeVar("T")


class DatabaseUnavailable(Exception):
    """
    PostgreSQL could not be reached; the message says where and why.
    """


# What a caller sees while PostgreSQL is unreachable: answer 503, not 500.
DATABASE_DOWN = (
    DatabaseUnavailable,
    psycopg2.OperationalError,
    psycopg2.InterfaceError,
    reconnection.ConnectionDead,
)


# SQLSTATEs that mean the server ended the session (class 08: connection
# exceptions; 57P01-57P03: shutdown, crash, cannot connect now).
_DEAD_STATES = ("57P01", "57P02", "57P03")


def _is_dead(failure) -> bool:
    """
    Whether an error means the connection is gone and must be reopened.
    A deadlock, a lock timeout or a cancelled statement is also an
    OperationalError, but the connection is fine: reconnecting for those
    would fail the next request on it with a 503.
    """
    if failure.check(txpostgres.RollbackFailed, psycopg2.InterfaceError):
        return True
    if not failure.check(psycopg2.OperationalError):
        return False
    code = getattr(failure.value, "pgcode", None)
    return code is None or code.startswith("08") or code in _DEAD_STATES


class _ReconnectingConnection(txpostgres.Connection):
    def __init__(self, reactor=None, cooperator=None):
        detector = reconnection.DeadConnectionDetector(deathChecker=_is_dead, reactor=reactor)
        super().__init__(reactor, cooperator, detector=detector)


class _Pool(txpostgres.ConnectionPool):
    connectionFactory = _ReconnectingConnection


class Transaction:
    """
    The cursor of one transaction, with coroutine methods.
    """

    def __init__(self, cursor) -> None:
        self._cursor = cursor
        self._notifications: dict[tuple[str, str], None] = {}

    async def execute(self, sql: str, params: Sequence[Any] | dict | None = None) -> int:
        """
        Run a statement; return the number of rows it touched.
        """
        await self._cursor.execute(sql, params)
        return self._cursor.rowcount

    async def query(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[tuple]:
        await self._cursor.execute(sql, params)
        return self._cursor.fetchall()

    async def query_one(self, sql: str, params: Sequence[Any] | dict | None = None) -> tuple | None:
        rows = await self.query(sql, params)
        return rows[0] if rows else None

    def notify(self, channel: str, payload: str) -> None:
        """
        Queue a NOTIFY for commit; duplicates within one transaction are
        coalesced, as PostgreSQL would do anyway.
        """
        self._notifications[(channel, payload)] = None

    async def _send_notifications(self) -> None:
        for channel, payload in self._notifications:
            await self._cursor.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def _detached(running: Deferred) -> Deferred:
    """
    C{running}'s result, in a Deferred whose cancellation leaves C{running}
    alone.  A request whose client goes away cancels what it awaits; a
    txpostgres query cannot be cancelled that way (its canceller raises
    _CancelInProgress out of Deferred.cancel, and the awaiting coroutine is
    never told), and a transaction must end in its own COMMIT or ROLLBACK.
    So the canceller gets CancelledError at once, while the statement runs
    to its end and its connection goes back to the pool.
    """
    outer: Deferred = Deferred()

    def forward(result):
        if not outer.called:
            if isinstance(result, Failure):
                outer.errback(result)
            else:
                outer.callback(result)
        elif isinstance(result, Failure):
            log.debug("statement abandoned by its caller failed: {error}", error=result.getErrorMessage())

    running.addBoth(forward)
    return outer


class Database:
    """
    A started pool.  Queries outside a transaction run in autocommit.
    """

    def __init__(self, pool: txpostgres.ConnectionPool, dsn: str) -> None:
        self._pool = pool
        self.dsn = dsn

    async def query(self, sql: str, params: Sequence[Any] | dict | None = None) -> list[tuple]:
        return await _detached(self._pool.runQuery(sql, params))

    async def query_one(self, sql: str, params: Sequence[Any] | dict | None = None) -> tuple | None:
        rows = await self.query(sql, params)
        return rows[0] if rows else None

    async def execute(self, sql: str, params: Sequence[Any] | dict | None = None) -> None:
        await _detached(self._pool.runOperation(sql, params))

    async def transaction(self, work: Callable[[Transaction], Awaitable[T]]) -> T:
        """
        Run C{work} in one transaction: committed if it returns, rolled back
        if it raises.
        """

        def interaction(cursor) -> Deferred:
            async def run() -> T:
                transaction = Transaction(cursor)
                result = await work(transaction)
                await transaction._send_notifications()
                return result

            return Deferred.fromCoroutine(run())

        return await _detached(self._pool.runInteraction(interaction))

    def pool_usage(self) -> tuple[int, int, int]:
        """
        (connections, connections running a query, queries waiting for
        one), read from the pool's semaphore for /metrics.
        """
        semaphore = self._pool._semaphore
        return semaphore.limit, semaphore.limit - semaphore.tokens, len(semaphore.waiting)

    def close(self) -> None:
        self._pool.close()


async def connect(dsn: str, size: int) -> Database:
    """
    Open C{size} connections to C{dsn}.

    @raise DatabaseUnavailable: if PostgreSQL cannot be reached, with a
        message fit for an administrator (the password is never shown).
    """
    pool = _Pool(None, dsn, min=size)
    try:
        await pool.start()
    except Exception as e:
        pool.close()
        reason = e.subFailure.value if hasattr(e, "subFailure") else e
        if isinstance(reason, psycopg2.Error):
            reason = str(reason).strip().splitlines()[0]
        raise DatabaseUnavailable(f"cannot connect to PostgreSQL ({safe_dsn(dsn)}): {reason}") from None
    return Database(pool, dsn)


def safe_dsn(dsn: str) -> str:
    """
    The DSN with any password masked, for logs and error messages.
    """
    try:
        params = psycopg2.extensions.parse_dsn(dsn)
    except psycopg2.Error:
        return "<unparsable DSN>"
    if "password" in params:
        params["password"] = "***"
    return " ".join(f"{key}={value}" for key, value in sorted(params.items()))
