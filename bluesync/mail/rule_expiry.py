"""
The periodic purge of unused conversation rules (MoveAlways, [mail]
conversation_rule_days; see bluesync/store/conversations.py).

A LoopingCall on the reactor, hourly, one DELETE each time: expiry counts
in days, so an hour late costs nothing, and no request pays for it.  Every
process sharing the database runs it; the DELETEs are idempotent.  A
failed run (the database down) is logged and the next one tries again:
a LoopingCall whose call fails would otherwise stop for good.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from twisted.internet import defer
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

log = Logger()

INTERVAL = 3600.0


class RuleExpiry:
    def __init__(self, store, days: int, clock) -> None:
        self.store = store
        self.days = days
        self.clock = clock
        self._loop: LoopingCall | None = None
        self._running: defer.Deferred | None = None

    def start(self) -> None:
        """
        Purge now, then every INTERVAL seconds; nothing when rules are kept
        for ever (0 days).
        """
        if self.days <= 0:
            return
        self._loop = LoopingCall(self._run)
        self._loop.clock = self.clock
        self._loop.start(INTERVAL, now=True)

    async def stop(self) -> None:
        """
        Stop the loop and let a purge in flight finish before the database closes.
        """
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._running is not None:
            await self._running

    def _run(self) -> defer.Deferred:
        self._running = defer.Deferred.fromCoroutine(self.purge())
        self._running.addErrback(lambda failure: log.failure(
            "conversation rules: purge failed; trying again in {interval}s", failure, interval=INTERVAL))
        return self._running

    async def purge(self) -> int:
        now = datetime.fromtimestamp(self.clock.seconds(), timezone.utc)
        purged = await self.store.conversations.purge(now - timedelta(days=self.days))
        if purged:
            log.info("conversation rules: {count} unused for {days} days deleted", count=purged, days=self.days)
        return purged
