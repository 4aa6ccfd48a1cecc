"""
/metrics on the admin listener: what a Prometheus scrape reads after real
traffic (ActiveSync over HTTP, a held Ping, LMTP deliveries, a queued
message), that the phones' listener does not serve it, and that a database
outage leaves it answering.
"""

from __future__ import annotations

import re

import treq
from twisted.internet import reactor
from twisted.internet.task import deferLater

from bluesync.push.notifier import discard
from bluesync.web.admin import build_admin_site
from tests.mail.lmtpclient import LMTPServer, commands, converse_in_thread, dot_stuff
from tests.push.helpers import deliver
from tests.push.test_ping import PingTestCase, ping_xml, status
from tests.support import database_outage, until_pool_reconnected

_SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-z_]+)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict:
    """
    The samples of an exposition: {(name, frozenset of label pairs): value}.
    Every line must be a comment or a well-formed sample.
    """
    samples = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise AssertionError(f"not a sample line: {line!r}")
        name, labels, value = match.groups()
        samples[(name, frozenset(_LABEL.findall(labels or "")))] = float(value)
    return samples


def sample(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)


class MetricsTests(PingTestCase):
    async def _set_up(self) -> None:
        await super()._set_up()
        self.admin_port = reactor.listenTCP(0, build_admin_site(self.context), interface="127.0.0.1")
        self.addCleanup(self.admin_port.stopListening)
        self.admin_url = f"http://127.0.0.1:{self.admin_port.getHost().port}"

    async def scrape(self) -> dict:
        response = await treq.get(self.admin_url + "/metrics", pool=self.pool)
        body = (await response.content()).decode("utf-8")
        self.assertEqual(response.code, 200, body)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["text/plain; version=0.0.4; charset=utf-8"])
        return parse(body)

    async def test_requests_and_held(self):
        """
        Answered ActiveSync requests are counted by command and status, and
        held Pings and Sync waits are shown while held.
        """
        before = await self.scrape()
        options = await self.http("OPTIONS", "/Microsoft-Server-ActiveSync",
                                  headers=self.client._headers(None))
        self.assertEqual(options.code, 200)
        await options.content()
        malformed = await self.http("POST", "/Microsoft-Server-ActiveSync?Cmd=Sync",
                                    headers=self.client._headers(None))
        self.assertEqual(malformed.code, 400)
        await malformed.content()

        ping = self.ping(ping_xml(300, [self.inbox.id]))
        await self.held()
        sync_wait = self.notifier.wait(self.account.id, [self.inbox.id], ("sync", self.device_row.id), 60)
        try:
            held = await self.scrape()
        finally:
            discard(sync_wait)
        self.assertEqual(sample(held, "bluesync_held_requests", kind="ping"), 1)
        self.assertEqual(sample(held, "bluesync_held_requests", kind="sync"), 1)
        await deliver(self.store, self.account.id)
        self.assertEqual(status(await ping), 2)

        after = await self.scrape()
        for labels in ({"command": "OPTIONS", "code": 200}, {"command": "unknown", "code": 400},
                       {"command": "Ping", "code": 200}):
            self.assertEqual(sample(after, "bluesync_eas_requests_total", **labels)
                             - sample(before, "bluesync_eas_requests_total", **labels), 1, labels)
        self.assertEqual(sample(after, "bluesync_held_requests", kind="ping"), 0)
        self.assertEqual(sample(after, "bluesync_held_requests", kind="sync"), 0)

    async def test_lmtp_queue_pool_memory(self):
        """
        LMTP recipients delivered and refused, the outbound queue's depth,
        the pool and the resident memory.
        """
        lmtp = LMTPServer(self, self.store, self.config.mail)
        before = await self.scrape()
        self.assertEqual(sample(before, "bluesync_outbound_queued"), 0)
        message = b"From: bob@example.net\r\nSubject: hi\r\n\r\nHello.\r\n"
        replies = await converse_in_thread(lmtp.address, [
            (commands("bob@example.net", ["alice@example.org", "nobody@example.org"]), 5),
            (dot_stuff(message), 1),
            (b"QUIT\r\n", 1),
        ])
        self.assertEqual([reply.code for reply in replies], [220, 250, 250, 250, 550, 354, 250, 221])
        await self.database.execute(
            "INSERT INTO outbound (account_id, sender, recipients, message, created_at, next_attempt_at)"
            " VALUES (%s, 'alice@example.org', '{x@example.net}', 'm', now(), now() + interval '1 hour')",
            (self.account.id,),
        )

        after = await self.scrape()
        for result, delta in (("delivered", 1), ("refused", 1), ("deferred", 0)):
            self.assertEqual(sample(after, "bluesync_lmtp_recipients_total", result=result)
                             - sample(before, "bluesync_lmtp_recipients_total", result=result), delta, result)
        self.assertEqual(sample(after, "bluesync_outbound_queued"), 1)
        self.assertEqual(sample(after, "bluesync_database_up"), 1)
        self.assertEqual(sample(after, "bluesync_database_pool_connections"), self.pool_size)
        # The scrape's own count query has returned its connection.
        self.assertEqual(sample(after, "bluesync_database_pool_in_use"), 0)
        self.assertGreater(sample(after, "process_resident_memory_bytes"), 10 * 1024 * 1024)

    async def test_not_public(self):
        """The phones' listener does not serve /metrics."""
        response = await self.http("GET", "/metrics")
        self.assertEqual(response.code, 404)
        await response.content()

    async def test_database_down(self):
        """While PostgreSQL is away, /metrics still answers, saying so; then recovers."""
        import psycopg2

        # txpostgres logs the lost connections it notices while idle.
        self.addCleanup(self.flushLoggedErrors, psycopg2.OperationalError)
        lift = database_outage(self, self.dsn)
        for _ in range(40):
            down = await self.scrape()
            if sample(down, "bluesync_database_up") == 0:
                break
            await deferLater(reactor, 0.1, lambda: None)
        lift()
        self.assertEqual(sample(down, "bluesync_database_up"), 0)
        self.assertNotIn(("bluesync_outbound_queued", frozenset()), down)
        self.assertIn(("bluesync_held_requests", frozenset({("kind", "ping")})), down)
        await until_pool_reconnected(self.database)
        up = await self.scrape()
        self.assertEqual(sample(up, "bluesync_database_up"), 1)
        self.assertEqual(sample(up, "bluesync_outbound_queued"), 0)
