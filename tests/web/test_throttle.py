"""
Failed-login throttling: the counters on a fake clock, and end to end
through the real Site, with client addresses given by X-Forwarded-For
from a trusted proxy.
"""

from __future__ import annotations

import base64
import dataclasses

from twisted.internet import reactor, task
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from bluesync.config import LoginConfig
from bluesync.web.site import build_site
from bluesync.web.throttle import LoginThrottle
from tests.support import SiteTestCase

CONFIG = LoginConfig(failures_before_delay=3, max_delay=60, address_failures=4, account_failures=5, window=3600)


class LoginThrottleTests(SynchronousTestCase):
    def setUp(self):
        self.clock = task.Clock()
        self.throttle = LoginThrottle(CONFIG, self.clock)

    def fail(self, name, address, times=1):
        for _ in range(times):
            self.assertEqual(self.throttle.wait(name, address), 0)
            self.throttle.failed(name, address)

    def test_pair_delay_doubles_up_to_the_cap(self):
        """After 3 failures the pair waits 1 s, then 2, 4, ... never more than max_delay."""
        self.throttle = LoginThrottle(dataclasses.replace(CONFIG, address_failures=0, account_failures=0),
                                      self.clock)
        self.fail("alice", "198.51.100.7", 2)
        self.assertEqual(self.throttle.failed("alice", "198.51.100.7"), 1)
        waits = []
        for _ in range(10):
            wait = self.throttle.wait("alice", "198.51.100.7")
            waits.append(wait)
            self.clock.advance(wait)
            self.throttle.failed("alice", "198.51.100.7")
        self.assertEqual(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60, 60])
        # Other addresses of the account are not affected.
        self.assertEqual(self.throttle.wait("alice", "203.0.113.5"), 0)

    def test_success_clears_the_pair(self):
        """A right password forgets the pair's failures."""
        self.fail("alice", "198.51.100.7", 2)
        self.throttle.succeeded("alice", "198.51.100.7")
        self.fail("alice", "198.51.100.7", 2)
        self.assertEqual(self.throttle.wait("alice", "198.51.100.7"), 0)

    def test_failures_are_forgotten_after_the_window(self):
        """Failures older than the window do not count."""
        self.fail("alice", "198.51.100.7", 2)
        self.clock.advance(3601)
        self.fail("alice", "198.51.100.7", 2)
        self.assertEqual(self.throttle.wait("alice", "198.51.100.7"), 0)

    def test_account_attack_spares_usual_addresses(self):
        """Failures from many addresses throttle the account everywhere except where it logged in before."""
        self.throttle.succeeded("alice", "203.0.113.5")
        for number in range(5):
            self.fail("alice", f"198.51.100.{number}")
        self.assertEqual(self.throttle.wait("alice", "192.0.2.9"), 1)
        self.assertEqual(self.throttle.wait("alice", "203.0.113.5"), 0)
        self.assertEqual(self.throttle.wait("bob", "192.0.2.9"), 0)

    def test_address_trying_many_accounts(self):
        """One address failing on many accounts waits for all of them, except accounts it logged in to."""
        self.throttle.succeeded("carol", "198.51.100.7")
        for name in ("a", "b", "c", "d"):
            self.fail(name, "198.51.100.7")
        self.assertEqual(self.throttle.wait("e", "198.51.100.7"), 1)
        self.assertEqual(self.throttle.wait("carol", "198.51.100.7"), 0)
        self.assertEqual(self.throttle.wait("e", "203.0.113.5"), 0)

    def test_waiting_attempts_do_not_extend_the_wait(self):
        """Attempts refused while waiting are not failures: the wait ends on time whatever the attacker does."""
        self.fail("alice", "198.51.100.7", 3)
        for _ in range(100):
            self.assertGreater(self.throttle.wait("alice", "198.51.100.7"), 0)
        self.clock.advance(1)
        self.assertEqual(self.throttle.wait("alice", "198.51.100.7"), 0)


class ThrottledSiteTests(SiteTestCase):
    config_text = (
        "[login]\nfailures_before_delay = 3\nmax_delay = 60\naddress_failures = 4\naccount_failures = 5\n"
        "trusted_proxies = 127.0.0.1\n"
    )

    async def _set_up(self):
        await super()._set_up()
        self.clock = task.Clock()
        self.context = dataclasses.replace(self.context, clock=self.clock)
        self.port = reactor.listenTCP(0, build_site(self.context), interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base_url = f"http://127.0.0.1:{self.port.getHost().port}"
        await self.create_account()
        self.events = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    async def login(self, password: str, address: str):
        token = base64.b64encode(f"alice@example.org:{password}".encode()).decode()
        response = await self.http("OPTIONS", "/Microsoft-Server-ActiveSync", headers={
            "Authorization": [f"Basic {token}"], "X-Forwarded-For": [address]})
        await response.content()
        retry = response.headers.getRawHeaders("retry-after")
        return response.code, retry[0] if retry else None

    async def test_guessing_is_throttled_not_the_user(self):
        """Three wrong passwords make that address wait (503, Retry-After), with a log line; the user's
        usual address keeps working."""
        self.assertEqual(await self.login("correct horse", "203.0.113.5"), (200, None))
        for _ in range(3):
            self.assertEqual(await self.login("guess", "198.51.100.7"), (401, None))
        self.assertEqual(await self.login("correct horse", "198.51.100.7"), (503, "1"))
        self.assertEqual(await self.login("correct horse", "203.0.113.5"), (200, None))
        logged = [event for event in self.events if event.get("log_format", "").startswith("login throttled")]
        self.assertEqual(len(logged), 1)
        self.assertEqual((logged[0]["name"], logged[0]["address"]), ("alice@example.org", "198.51.100.7"))
        self.clock.advance(1)
        self.assertEqual(await self.login("correct horse", "198.51.100.7"), (200, None))

    async def test_distributed_attack_spares_the_usual_address(self):
        """Failures spread over many addresses throttle new addresses of the account, not its usual one."""
        self.assertEqual(await self.login("correct horse", "203.0.113.5"), (200, None))
        for number in range(5):
            self.assertEqual((await self.login("guess", f"198.51.100.{number}"))[0], 401)
        self.assertEqual(await self.login("correct horse", "192.0.2.9"), (503, "1"))
        self.assertEqual(await self.login("correct horse", "203.0.113.5"), (200, None))
