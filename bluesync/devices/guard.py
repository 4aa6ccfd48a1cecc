"""
Per-process protection of the server from its own phones: a limit on the
requests of one account served at the same time, and the detection of
misbehaving devices for autoblock.

Concurrency.  Each account may have C{max_concurrent_requests} requests in
progress; the next one is answered 503 with Retry-After (MS-ASHTTP
3.1.5.2.3).  Held requests (Pings, Syncs with Wait) do not count: they cost
a notifier entry and nothing else, and a user whose ten phones each hold a
Ping must still be able to sync.  The guard asks the notifier how many of
the account's requests it holds instead of being told by each command, so
no command has to remember to say it is waiting.

Misbehaviour.  A device whose Syncs come back with nothing more than
C{autoblock_empty_syncs} times in a minute (a client stuck in a loop), or
that shows more than C{autoblock_user_agents} user agents in an hour (a
client whose identity keeps changing, or several apps sharing one
DeviceId), is reported so the caller blocks it for C{autoblock_duration}.

The counts live in this process.  Behind a load balancer spreading one
account over several processes, each process enforces the limits on its
share; the block itself is stored, so every process honours it.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from bluesync.config import DevicesConfig

# Seconds suggested to a phone refused for concurrency.
BUSY_RETRY_AFTER = 10

_MINUTE = 60.0
_HOUR = 3600.0


@dataclass
class _DeviceHistory:
    empty_syncs: deque = field(default_factory=deque)
    user_agents: dict = field(default_factory=dict)
    last: float = 0.0


class Guard:
    """
    @param clock: an C{IReactorTime}.
    @param notifier: the push notifier, asked how many requests of an
        account it holds (None: nothing is ever held).
    """

    def __init__(self, config: DevicesConfig, clock, notifier=None) -> None:
        self._config = config
        self._clock = clock
        self._notifier = notifier
        self._in_flight: dict[int, int] = {}
        self._devices: dict[int, _DeviceHistory] = {}
        self._observed = 0

    # Concurrency

    def admit(self, account_id: int) -> bool:
        """
        Count a request of the account in, unless the account already has
        as many working requests as it may.  Every admitted request must be
        L{release}d.
        """
        limit = self._config.max_concurrent_requests
        in_flight = self._in_flight.get(account_id, 0)
        if limit and in_flight - self._held(account_id) >= limit:
            return False
        self._in_flight[account_id] = in_flight + 1
        return True

    def release(self, account_id: int) -> None:
        remaining = self._in_flight.get(account_id, 0) - 1
        if remaining > 0:
            self._in_flight[account_id] = remaining
        else:
            self._in_flight.pop(account_id, None)

    def working(self, account_id: int) -> int:
        """
        Requests of the account in progress and not held.
        """
        return self._in_flight.get(account_id, 0) - self._held(account_id)

    def _held(self, account_id: int) -> int:
        if self._notifier is None:
            return 0
        return self._notifier.held_for_account(account_id)

    # Misbehaviour

    def observe(self, device_pk: int, user_agent: str, command: str, response) -> str | None:
        """
        Note one answered request; return why the device should be blocked,
        or None.
        """
        now = self._clock.seconds()
        history = self._devices.get(device_pk)
        if history is None:
            history = self._devices[device_pk] = _DeviceHistory()
        history.last = now
        self._observed += 1
        if self._observed % 1000 == 0:
            self._forget_idle(now)
        reason = None
        limit = self._config.autoblock_empty_syncs
        if limit and command == "Sync" and response.code == 200 and not response.body:
            syncs = history.empty_syncs
            syncs.append(now)
            while syncs and syncs[0] <= now - _MINUTE:
                syncs.popleft()
            if len(syncs) > limit:
                reason = f"{len(syncs)} Syncs with nothing to answer in a minute"
        limit = self._config.autoblock_user_agents
        if limit and user_agent:
            agents = history.user_agents
            agents[user_agent] = now
            for agent, seen in list(agents.items()):
                if seen <= now - _HOUR:
                    del agents[agent]
            if len(agents) > limit:
                reason = f"{len(agents)} different user agents in an hour"
        if reason is not None:
            # Counting starts again after the block.
            del self._devices[device_pk]
        return reason

    def _forget_idle(self, now: float) -> None:
        for device_pk, history in list(self._devices.items()):
            if history.last <= now - _HOUR:
                del self._devices[device_pk]
