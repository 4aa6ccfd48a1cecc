"""
Throttling of failed logins, for phones (HTTP Basic) and the admin page.

Three counters, each forgotten [login] window after its last failure:

- per (account, address): after failures_before_delay wrong passwords the
  pair waits before its next attempt, 1 s doubling with each further
  failure up to max_delay.  This is what a password-guessing attacker meets,
  and what a phone with a stale password meets, without touching anyone else.
- per address, whatever the account: after address_failures failures the
  address waits the same way (one address trying many accounts).
- per account, whatever the address: after account_failures failures every
  address waits, except the addresses the account logged in from
  successfully (its usual networks), so a distributed attack on one account
  never locks its real user out.

A waiting attempt is answered 503 with Retry-After before the password is
looked at (no Argon2 work for the attacker to cause, and no answer to learn
from), and it does not count as a failure: whatever the attacker does, the
wait ends when max_delay has passed since the last real failure.

State is per process and bounded; after a restart everyone starts afresh.
"""

from __future__ import annotations

from dataclasses import dataclass

from twisted.logger import Logger

from bluesync.config import LoginConfig

log = Logger()

# Most entries kept per table; beyond, the stalest go first.
MAX_ENTRIES = 100_000
# How long a successful login makes an address "usual" for an account.
USUAL_FOR = 30 * 86400.0


@dataclass
class _Failures:
    count: int = 0
    last: float = 0.0
    until: float = 0.0


class LoginThrottle:
    """
    @param clock: an C{IReactorTime}.
    """

    def __init__(self, config: LoginConfig, clock) -> None:
        self._config = config
        self._clock = clock
        self._pairs: dict[tuple[str, str], _Failures] = {}
        self._addresses: dict[str, _Failures] = {}
        self._accounts: dict[str, _Failures] = {}
        self._usual: dict[str, dict[str, float]] = {}

    def wait(self, name: str, address: str) -> float:
        """
        Seconds before C{name} may try to log in from C{address} (0: now).
        """
        now = self._clock.seconds()
        waits = [self._remaining(self._pairs.get((name, address)), now)]
        if not self._is_usual(name, address, now):
            waits.append(self._remaining(self._addresses.get(address), now))
            waits.append(self._remaining(self._accounts.get(name), now))
        return max(waits)

    def failed(self, name: str, address: str) -> float:
        """
        Count a wrong password; return the wait it starts (0 for none yet).
        """
        now = self._clock.seconds()
        config = self._config
        wait = self._count(self._pairs, (name, address), config.failures_before_delay, now)
        if wait:
            log.warn("login throttled: {name} from {address}, {seconds:.0f}s before the next try",
                     name=name, address=address, seconds=wait)
        if config.address_failures:
            waited = self._count(self._addresses, address, config.address_failures, now)
            if waited:
                log.warn("login throttled: address {address} ({count} failures over several accounts),"
                         " {seconds:.0f}s before the next try", address=address,
                         count=self._addresses[address].count, seconds=waited)
            wait = max(wait, waited)
        if config.account_failures:
            waited = self._count(self._accounts, name, config.account_failures, now)
            if waited:
                log.warn("login throttled: account {name} ({count} failures from several addresses),"
                         " {seconds:.0f}s before the next try from addresses it never logged in from",
                         name=name, count=self._accounts[name].count, seconds=waited)
            wait = max(wait, waited)
        return wait

    def succeeded(self, name: str, address: str) -> None:
        """
        A right password: forget the pair's failures, remember the address
        as one the account uses.
        """
        self._pairs.pop((name, address), None)
        usual = self._usual.get(name)
        if usual is None:
            if len(self._usual) >= MAX_ENTRIES:
                self._prune_usual()
            usual = self._usual[name] = {}
        elif address not in usual and len(usual) >= 32:
            del usual[min(usual, key=usual.get)]
        usual[address] = self._clock.seconds()

    def _count(self, table: dict, key, threshold: int, now: float) -> float:
        failures = table.get(key)
        if failures is None or failures.last <= now - self._config.window:
            if failures is None and len(table) >= MAX_ENTRIES:
                self._prune(table, now)
            failures = table[key] = _Failures()
        failures.count += 1
        failures.last = now
        if not threshold or failures.count < threshold:
            return 0.0
        delay = min(self._config.max_delay, 2.0 ** min(failures.count - threshold, 30))
        failures.until = now + delay
        return delay

    def _remaining(self, failures: _Failures | None, now: float) -> float:
        if failures is None:
            return 0.0
        return max(0.0, failures.until - now)

    def _is_usual(self, name: str, address: str, now: float) -> bool:
        seen = self._usual.get(name, {}).get(address)
        return seen is not None and seen > now - USUAL_FOR

    def _prune(self, table: dict, now: float) -> None:
        window = self._config.window
        for key, failures in list(table.items()):
            if failures.last <= now - window and failures.until <= now:
                del table[key]
        if len(table) >= MAX_ENTRIES:
            for key in sorted(table, key=lambda k: table[k].last)[: MAX_ENTRIES // 10]:
                del table[key]

    def _prune_usual(self) -> None:
        stalest = sorted(self._usual, key=lambda name: max(self._usual[name].values(), default=0.0))
        for name in stalest[: MAX_ENTRIES // 10]:
            del self._usual[name]
