"""
The LISTEN side of change notification: one dedicated PostgreSQL
connection per process feeding the L{Notifier}.

Every store write that bumps a folder, the hierarchy or a device queues a
NOTIFY in its own transaction (L{bluesync.store.changes}); PostgreSQL
delivers it on commit to every connection that LISTENs, so a held Ping
wakes the same way whether the change came from LMTP, another device, the
admin CLI or another bluesync process on the same database.

The connection is outside the pool: a pooled connection runs other
queries and would hold notifications until it is idle, and LISTEN belongs
to one session.  It is always registered as a reader with the reactor, so
a notification is dispatched as soon as its bytes arrive.

PostgreSQL does not queue notifications for a session that is gone, so
after the connection drops (a database restart, a failover,
pg_terminate_backend) anything committed in between is unknown to us.  The
listener reconnects with exponential backoff and, once LISTEN is active
again, fires every waiter with RECHECK: each held request re-reads the
store and answers only if something changed, or waits again.
"""

from __future__ import annotations

import psycopg2
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from txpostgres import txpostgres

from bluesync.push.notifier import Notifier, sync_key
from bluesync.store.changes import CHANNEL, HELD_PING, HELD_SYNC
from bluesync.store.database import DatabaseUnavailable, safe_dsn

log = Logger()

# Over TCP, keepalives make a silently vanished server (a network partition,
# a crashed host) look like a dropped connection within about two minutes
# instead of never.  Ignored on Unix sockets, where the kernel knows.
_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 60, "keepalives_interval": 10, "keepalives_count": 6}


def dispatch(notifier: Notifier, payload: str) -> None:
    """
    Apply one notification payload ("f <account> <folder>", "h <account>",
    "d <account> <device_pk>", "p|s <account> <device_pk> <hold sequence>",
    see L{bluesync.store.changes}).  A payload we
    cannot read is logged and ignored: it may come from a newer bluesync
    sharing the database.
    """
    kind, _, rest = payload.partition(" ")
    try:
        numbers = [int(part) for part in rest.split()]
    except ValueError:
        numbers = []
    if kind == "f" and len(numbers) == 2:
        notifier.notify_folder(numbers[0], numbers[1])
    elif kind == "h" and len(numbers) == 1:
        notifier.notify_hierarchy(numbers[0])
    elif kind == "d" and len(numbers) == 2:
        notifier.notify_device(numbers[0], numbers[1])
    elif kind == HELD_PING and len(numbers) == 3:
        notifier.notify_held(numbers[0], numbers[1], numbers[2])
    elif kind == HELD_SYNC and len(numbers) == 3:
        notifier.notify_held(numbers[0], sync_key(numbers[1]), numbers[2])
    else:
        log.warn("ignoring unknown change notification {payload!r}", payload=payload)


class _ListenConnection(txpostgres.Connection):
    """
    A txpostgres connection that reports its own death once.

    txpostgres notices a dropped idle connection when the reactor says the
    socket is readable and psycopg2's poll() raises; without a detector that
    exception would escape to the reactor as an unhandled error.  Here it
    becomes a call to C{on_lost}.
    """

    def __init__(self, reactor) -> None:
        super().__init__(reactor)
        self.on_lost = None

    def doRead(self) -> None:
        try:
            super().doRead()
        except psycopg2.Error:
            self._report(Failure())

    def connectionLost(self, reason) -> None:
        super().connectionLost(reason)
        self._report(reason)

    def _report(self, reason) -> None:
        callback, self.on_lost = self.on_lost, None
        if callback is not None:
            callback(self, reason)


class ChangeListener:
    """
    Keeps one connection LISTENing on L{CHANNEL} and feeds C{notifier}.

    @param min_delay: first reconnection delay in seconds; it doubles after
        each failed attempt, up to C{max_delay}.
    """

    def __init__(self, dsn: str, notifier: Notifier, reactor=None, *,
                 min_delay: float = 0.5, max_delay: float = 30.0) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self._dsn = dsn
        self._notifier = notifier
        self._reactor = reactor
        self._min_delay = min_delay
        self._max_delay = max_delay
        self._connection: _ListenConnection | None = None
        self._retry = None
        self._attempt: Deferred | None = None
        self._stopping = False
        # The PostgreSQL backend serving the LISTEN (for diagnostics and
        # for tests that kill it), and how many times LISTEN was set up.
        self.backend_pid: int | None = None
        self.generation = 0

    @property
    def listening(self) -> bool:
        return self._connection is not None

    async def start(self) -> None:
        """
        Connect and LISTEN.

        @raise DatabaseUnavailable: if the first connection fails; later
            losses are repaired in the background.
        """
        try:
            await self._connect()
        except psycopg2.Error as e:
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise DatabaseUnavailable(
                f"cannot LISTEN on PostgreSQL ({safe_dsn(self._dsn)}): {reason}"
            ) from None

    async def stop(self) -> None:
        self._stopping = True
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        # A reconnection under way closes its connection when it completes.
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.on_lost = None
            connection.close()

    async def _connect(self) -> None:
        connection = _ListenConnection(self._reactor)
        try:
            await connection.connect(self._dsn, **_KEEPALIVES)
            connection.addNotifyObserver(self._received)
            await connection.runOperation(f"LISTEN {CHANNEL}")
            rows = await connection.runQuery("SELECT pg_backend_pid()")
        except BaseException:
            if connection._connection is not None:
                connection.close()
            raise
        if self._stopping:
            connection.close()
            return
        connection.on_lost = self._lost
        self._connection = connection
        self.backend_pid = rows[0][0]
        self.generation += 1

    def _received(self, notify) -> None:
        if notify.channel == CHANNEL:
            dispatch(self._notifier, notify.payload)

    def _lost(self, connection: _ListenConnection, reason) -> None:
        if connection is not self._connection:
            return
        self._connection = None
        connection.close()
        if self._stopping:
            return
        log.warn(
            "LISTEN connection to PostgreSQL lost ({reason}); reconnecting, "
            "{held} held requests will re-check the store",
            reason=_reason(reason),
            held=self._notifier.held_count(),
        )
        self._schedule(self._min_delay)

    def _schedule(self, delay: float) -> None:
        self._retry = self._reactor.callLater(delay, self._reconnect, delay)

    def _reconnect(self, delay: float) -> None:
        self._retry = None
        self._attempt = Deferred.fromCoroutine(self._connect())
        self._attempt.addCallbacks(self._restored, self._attempt_failed, errbackArgs=(delay,))

    def _restored(self, _) -> None:
        self._attempt = None
        if self._stopping:
            return
        rechecked = self._notifier.recheck_all()
        log.info(
            "LISTEN connection to PostgreSQL restored (backend {pid}); "
            "{count} held requests re-check the store",
            pid=self.backend_pid,
            count=rechecked,
        )

    def _attempt_failed(self, failure, delay: float) -> None:
        self._attempt = None
        if self._stopping:
            return
        delay = min(delay * 2, self._max_delay)
        log.warn(
            "cannot reconnect the LISTEN connection ({reason}); next try in {delay:.1f}s",
            reason=_reason(failure),
            delay=delay,
        )
        self._schedule(delay)


def _reason(failure) -> str:
    text = str(failure.value).strip() if failure is not None else ""
    return text.splitlines()[0] if text else type(failure.value).__name__
