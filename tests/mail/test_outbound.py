"""
The outbound queue against a real SMTP relay on a loopback port, on a real
PostgreSQL.  Retry times run on a task.Clock; connections are real.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone
from email import message_from_bytes

from twisted.internet import defer, reactor, task
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from bluesync.config import ConfigError, parse_config
from bluesync.mail.outbound import OutboundQueue, _DataFile, wire_data
from bluesync.store import folders as F
from bluesync.store.database import connect
from bluesync.store.outbound import Submission
from bluesync.store.store import Store
from tests.mail.smtprelay import Relay, self_signed
from tests.support import DatabaseTestCase


def outgoing(subject: str = "Hello", body: str = "Hello there.\r\n", to: str = "bob@example.net") -> bytes:
    return (
        f"From: Alice <alice@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "Date: Mon, 02 Feb 2026 10:00:00 +0000\r\nMessage-ID: <out-1@example.org>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body
    ).encode()


class QueueTestCase(DatabaseTestCase):
    pool_size = 4
    starttls = "no"

    async def _set_up(self) -> None:
        await super()._set_up()
        from bluesync.passwords import hash_password

        self.account = await self.store.create_account("alice@example.org", "Alice", hash_password("pw"))
        self.inbox = await self.store.folders.by_type(self.account.id, F.INBOX)
        self.clock = task.Clock()
        self.clock.advance(int(time.time()))
        self.relay = self.make_relay()
        await self.relay.start()
        self.addCleanup(self.relay.stop)
        self.queue = self.make_queue(self.store)

    def make_relay(self) -> Relay:
        return Relay(reactor)

    def mail_config(self, **changes):
        mail = dataclasses.replace(
            self.config.mail, relay_host="127.0.0.1", relay_port=self.relay.port, relay_starttls=self.starttls,
            hostname="bluesync.test", retry_delays=(60.0, 300.0), give_up_after=3600.0, relay_timeout=20.0,
        )
        return dataclasses.replace(mail, **changes)

    def make_queue(self, store, **changes) -> OutboundQueue:
        queue = OutboundQueue(store, self.mail_config(**changes), reactor, self.clock)
        self.addCleanup(queue.stop)
        return queue

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds(), timezone.utc)

    async def submit(self, recipients=("bob@example.net",), message: bytes | None = None, store=None) -> int:
        store = store or self.store
        return await store.outbound.submit(Submission(
            account_id=self.account.id, device_id=None, client_id=None, now=self.now(),
            sender="alice@example.org", recipients=tuple(recipients), message=message or outgoing(),
        ))

    async def run_queue(self, queue=None) -> None:
        queue = queue or self.queue
        queue.wake()
        await queue.idle()

    async def advance(self, seconds: float, queue=None) -> None:
        self.clock.advance(seconds)
        await (queue or self.queue).idle()

    async def inbox_messages(self) -> list[bytes]:
        items = await self.store.items.changes(self.account.id, self.inbox.id, 0, 100)
        return [change.item.content for change in items.changes]


class DeliveryTests(QueueTestCase):
    async def test_relayed(self):
        """A queued message reaches the relay with its envelope and exact bytes; the row is done."""
        outbound_id = await self.submit(["bob@example.net", "carol@example.com"])
        await self.run_queue()
        (received,) = self.relay.messages
        self.assertEqual(received.mail_from, "alice@example.org")
        self.assertEqual(received.recipients, ("bob@example.net", "carol@example.com"))
        self.assertEqual(received.data, outgoing())
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual((row.state, row.attempts, row.recipients), ("sent", 1, ()))
        self.assertEqual(set(row.delivered), {"bob@example.net", "carol@example.com"})

    async def test_dot_lines_on_chunk_boundaries(self):
        """Lines starting with a dot arrive intact, also where a 16 KB chunk of the SMTP client starts."""
        head = wire_data(outgoing(body=""))
        lines = []
        size = len(head)
        for boundary in (16384, 32768, 49152):
            lines.append("x" * (boundary - size - 1) + "\r\n")
            lines.append(".dot at a chunk start\r\n")
            size = boundary + len(".dot at a chunk start\n")
        lines.append(".\r\nafter a lone dot\r\n")
        message = outgoing(body="".join(lines))
        data = wire_data(message)
        self.assertEqual([data[b:b + 4] for b in (16384, 32768, 49152)], [b".dot"] * 3)
        await self.submit(message=message)
        await self.run_queue()
        self.assertEqual(self.relay.messages[0].data, message)

    def test_data_file_never_ends_a_chunk_after_a_line_end(self):
        """The chunks the SMTP client stuffs separately never split a line end from what follows."""
        data = wire_data(b"a\r\n.b\r\n\r\n..c\r\nd")
        for size in range(1, len(data) + 1):
            stream = _DataFile(data)
            chunks = []
            while chunk := stream.read(size):
                chunks.append(chunk)
            self.assertEqual(b"".join(chunks), data)
            self.assertTrue(all(not c.endswith(b"\n") for c in chunks[:-1]), (size, chunks))

    async def test_resumes_on_start(self):
        """A message queued while no queue ran is sent when one starts."""
        await self.submit()
        self.assertEqual(self.relay.messages, [])
        await self.queue.start()
        await self.queue.idle()
        self.assertEqual(len(self.relay.messages), 1)


class PurgeTests(QueueTestCase):
    async def test_old_finished_rows_forgotten(self):
        """A run forgets finished rows and ClientIds older than 30 days, never a queued message."""
        from datetime import timedelta

        old = self.now() - timedelta(days=40)
        finished = await self.store.outbound.submit(Submission(
            account_id=self.account.id, device_id=None, client_id=None, now=old,
            sender="alice@example.org", recipients=("bob@example.net",), message=outgoing()))
        await self.run_queue()
        self.assertEqual((await self.store.outbound.get(finished)).state, "sent")
        self.relay.rcpt_replies["carol@example.com"] = (451, "later")
        waiting = await self.store.outbound.submit(Submission(
            account_id=self.account.id, device_id=None, client_id=None, now=old,
            sender="alice@example.org", recipients=("carol@example.com",), message=outgoing()))
        device = await self.store.devices.touch(self.account.id, "PHONE", "iPhone", "", "16.1", "SendMail")
        await self.store.outbound.submit(Submission(
            account_id=self.account.id, device_id=device.id, client_id="c-1", now=old))
        await self.database.execute("UPDATE submitted_client_ids SET created_at = %s", (old,))
        queue = self.make_queue(self.store, give_up_after=100 * 86400.0)
        await self.run_queue(queue)
        self.assertIsNone(await self.store.outbound.get(finished))
        self.assertEqual((await self.store.outbound.get(waiting)).state, "queued")
        self.assertFalse(await self.store.outbound.client_id_used(device.id, "c-1"))


class RetryTests(QueueTestCase):
    async def test_relay_down_then_up(self):
        """While the relay is down nothing is lost; once it is back the message goes exactly once."""
        await self.relay.stop()
        outbound_id = await self.submit()
        await self.run_queue()
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual((row.state, row.attempts), ("queued", 1))
        self.assertIn("connect", row.last_error.lower())
        await self.relay.start()
        await self.advance(59)
        self.assertEqual(self.relay.messages, [])
        await self.advance(1)
        self.assertEqual(len(self.relay.messages), 1)
        for _ in range(5):
            await self.advance(3600)
        self.assertEqual(len(self.relay.messages), 1)
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual((row.state, row.attempts), ("sent", 2))

    async def test_new_message_not_held_behind_backoff(self):
        """A message queued after the relay returns goes at once, though an older one still waits its turn."""
        await self.relay.stop()
        await self.submit(message=outgoing(subject="older"))
        await self.run_queue()
        await self.relay.start()
        await self.submit(message=outgoing(subject="newer"))
        await self.run_queue()
        self.assertEqual([message_from_bytes(m.data)["Subject"] for m in self.relay.messages], ["newer"])
        await self.advance(60)
        self.assertEqual([message_from_bytes(m.data)["Subject"] for m in self.relay.messages], ["newer", "older"])

    async def test_fresh_messages_first(self):
        """A message never tried is claimed before retries that are due earlier."""
        from datetime import timedelta

        from bluesync.store.outbound import AttemptResult

        now = self.now()
        older = await self.store.outbound.submit(Submission(
            account_id=self.account.id, device_id=None, client_id=None, now=now - timedelta(minutes=10),
            sender="alice@example.org", recipients=("bob@example.net",), message=outgoing()))

        async def defer_it(message):
            return AttemptResult(pending=message.recipients, error="down",
                                 next_attempt_at=now - timedelta(minutes=5))

        self.assertTrue(await self.store.outbound.attempt(now - timedelta(minutes=10), defer_it))
        newer = await self.submit()
        claimed = []

        async def record(message):
            claimed.append(message.id)
            return AttemptResult(delivered=message.recipients)

        while await self.store.outbound.attempt(now, record):
            pass
        self.assertEqual(claimed, [newer, older])

    async def test_backoff_follows_the_schedule(self):
        """Attempts come after 60 s, then every 300 s (the last delay repeats)."""
        await self.relay.stop()
        outbound_id = await self.submit()
        await self.run_queue()
        expected = [(60, 2), (299, 2), (1, 3), (299, 3), (1, 4)]
        for seconds, attempts in expected:
            await self.advance(seconds)
            row = await self.store.outbound.get(outbound_id)
            self.assertEqual(row.attempts, attempts, seconds)

    async def test_temporary_recipient_failure(self):
        """A 4xx recipient is retried alone; the others are delivered at once and only once."""
        self.relay.rcpt_replies["carol@example.com"] = (451, "4.2.1 mailbox busy")
        outbound_id = await self.submit(["bob@example.net", "carol@example.com"])
        await self.run_queue()
        self.assertEqual([m.recipients for m in self.relay.messages], [("bob@example.net",)])
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual((row.state, row.recipients), ("queued", ("carol@example.com",)))
        del self.relay.rcpt_replies["carol@example.com"]
        await self.advance(60)
        self.assertEqual([m.recipients for m in self.relay.messages],
                         [("bob@example.net",), ("carol@example.com",)])
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual(row.state, "sent")
        self.assertEqual(await self.inbox_messages(), [])

    async def test_temporary_data_failure(self):
        """A 4xx answer to the data keeps every recipient queued."""
        self.relay.data_reply = (452, "4.3.1 insufficient storage")
        outbound_id = await self.submit()
        await self.run_queue()
        self.assertEqual(self.relay.messages, [])
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual((row.state, row.recipients), ("queued", ("bob@example.net",)))
        self.assertIn("452", row.last_error)
        self.relay.data_reply = None
        await self.advance(60)
        self.assertEqual(len(self.relay.messages), 1)

    async def test_gives_up_with_a_report(self):
        """Past give_up_after the sender gets an RFC 3464 report with status 4.4.7."""
        self.relay.rcpt_replies["bob@example.net"] = (450, "4.2.0 try later")
        outbound_id = await self.submit()
        await self.run_queue()
        for _ in range(20):
            await self.advance(300)
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual(row.state, "failed")
        self.assertEqual(row.failed[0]["status"], "4.4.7")
        (report,) = await self.inbox_messages()
        status = _delivery_status(report)
        self.assertEqual(status["bob@example.net"]["status"], "4.4.7")
        self.assertIn("450", status["bob@example.net"]["diagnostic-code"])


def _delivery_status(raw: bytes) -> dict[str, dict[str, str]]:
    """Per-recipient fields of the message/delivery-status part of a report."""
    message = message_from_bytes(raw)
    assert message.get_content_type() == "multipart/report", message.get_content_type()
    assert message.get_param("report-type") == "delivery-status"
    readable, status, returned = message.get_payload()
    assert readable.get_content_type() == "text/plain"
    assert status.get_content_type() == "message/delivery-status"
    groups = status.get_payload()
    recipients = {}
    for group in groups[1:]:
        fields = {k.lower(): v for k, v in group.items()}
        recipients[fields["final-recipient"].split(";", 1)[1].strip()] = fields
    assert groups[0]["Reporting-MTA"] == "dns; bluesync.test", groups[0].items()
    return recipients


class FailureTests(QueueTestCase):
    async def test_permanent_recipient_failure(self):
        """A 5xx recipient gets a report for that recipient only; the others are delivered."""
        self.relay.rcpt_replies["nobody@example.net"] = (550, "5.1.1 no such user")
        outbound_id = await self.submit(["bob@example.net", "nobody@example.net"])
        await self.run_queue()
        self.assertEqual([m.recipients for m in self.relay.messages], [("bob@example.net",)])
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual((row.state, row.delivered), ("failed", ("bob@example.net",)))
        (report,) = await self.inbox_messages()
        status = _delivery_status(report)
        self.assertEqual(list(status), ["nobody@example.net"])
        self.assertEqual(status["nobody@example.net"]["status"], "5.1.1")
        self.assertEqual(status["nobody@example.net"]["action"], "failed")
        self.assertIn("550", status["nobody@example.net"]["diagnostic-code"])
        returned = message_from_bytes(report).get_payload()[2]
        self.assertEqual(returned.get_content_type(), "message/rfc822")
        self.assertEqual(returned.get_payload()[0]["Message-ID"], "<out-1@example.org>")
        items = await self.store.items.changes(self.account.id, self.inbox.id, 0, 10)
        self.assertEqual(items.changes[0].item.summary["message_class"], "REPORT.IPM.Note.NDR")

    async def test_permanent_data_failure(self):
        """A 5xx answer to the data fails every recipient, with one report."""
        self.relay.data_reply = (554, "5.7.1 message refused")
        await self.submit(["bob@example.net", "carol@example.com"])
        await self.run_queue()
        (report,) = await self.inbox_messages()
        status = _delivery_status(report)
        self.assertEqual(set(status), {"bob@example.net", "carol@example.com"})
        self.assertEqual({s["status"] for s in status.values()}, {"5.7.1"})

    async def test_sender_refused(self):
        """A 5xx answer to MAIL FROM fails the message for every recipient."""
        self.relay.mail_reply = (553, "sender not allowed")
        outbound_id = await self.submit()
        await self.run_queue()
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual((row.state, row.failed[0]["status"]), ("failed", "5.0.0"))
        self.assertEqual(len(await self.inbox_messages()), 1)

    async def test_no_relay_configured(self):
        """Without relay_host nothing is sent or lost, and the error names the setting."""
        queue = self.make_queue(self.store, relay_host="")
        outbound_id = await self.submit()
        await self.run_queue(queue)
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual(row.state, "queued")
        self.assertIn("[mail] relay_host", row.last_error)
        self.assertEqual(self.relay.messages, [])


class SharedDatabaseTests(QueueTestCase):
    async def test_two_processes_send_each_message_once(self):
        """Two queues on one database, both woken, relay each message exactly once."""
        other_database = await connect(self.dsn, 4)
        self.addCleanup(other_database.close)
        other = self.make_queue(Store(other_database))
        for number in range(12):
            await self.submit(message=outgoing(subject=f"Message {number}"))
        self.queue.wake()
        other.wake()
        await defer.gatherResults([self.queue.idle(), other.idle()])
        subjects = sorted(message_from_bytes(m.data)["Subject"] for m in self.relay.messages)
        self.assertEqual(subjects, sorted(f"Message {n}" for n in range(12)))
        rows = await self.store.outbound.list(self.account.id)
        self.assertEqual({row.state for row in rows}, {"sent"})
        self.assertEqual({row.attempts for row in rows}, {1})


class AuthTests(QueueTestCase):
    def make_relay(self) -> Relay:
        return Relay(reactor, credentials=("submit", "s3cret-Pa55"))

    async def test_authenticated(self):
        """With relay_username set the queue logs in before sending."""
        self.queue = self.make_queue(self.store, relay_username="submit", relay_password="s3cret-Pa55")
        await self.submit()
        await self.run_queue()
        self.assertEqual([m.user for m in self.relay.messages], ["submit"])

    async def test_wrong_password_is_retried_and_never_logged(self):
        """A refused login keeps the message queued, and the password appears in no log or row."""
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        queue = self.make_queue(self.store, relay_username="submit", relay_password="wrong-Pa55word")
        outbound_id = await self.submit()
        await self.run_queue(queue)
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual(row.state, "queued")
        self.assertIn("535", row.last_error)
        from twisted.logger import formatEvent

        text = "\n".join(formatEvent(e) + repr(e) for e in events)
        self.assertIn("deferred", text)
        self.assertNotIn("wrong-Pa55word", text + row.last_error)
        self.assertNotIn("d3JvbmctUGE1NXdvcmQ", text)
        self.assertEqual(self.relay.messages, [])

    async def test_unauthenticated_refused(self):
        """Without credentials the relay's refusal of the sender fails the message with a report."""
        await self.submit()
        await self.run_queue()
        self.assertEqual(self.relay.messages, [])
        self.assertEqual(len(await self.inbox_messages()), 1)


class TLSTests(QueueTestCase):
    starttls = "opportunistic"

    def make_relay(self) -> Relay:
        self.server_tls, self.certificate = self_signed("localhost")
        return Relay(reactor, tls_context=self.server_tls)

    async def test_opportunistic(self):
        """Opportunistic STARTTLS encrypts even to a relay with a self-signed certificate."""
        await self.submit()
        await self.run_queue()
        self.assertEqual([m.tls for m in self.relay.messages], [True])

    async def test_required_and_trusted(self):
        """Required STARTTLS sends when the certificate matches relay_host and is trusted."""
        queue = OutboundQueue(self.store, self.mail_config(relay_host="localhost", relay_starttls="required"),
                              reactor, self.clock, trust_root=self.certificate)
        self.addCleanup(queue.stop)
        await self.submit()
        await self.run_queue(queue)
        self.assertEqual([m.tls for m in self.relay.messages], [True])

    async def test_required_and_untrusted(self):
        """Required STARTTLS refuses an unverifiable relay: nothing is sent, the message waits."""
        queue = self.make_queue(self.store, relay_host="localhost", relay_starttls="required")
        outbound_id = await self.submit()
        await self.run_queue(queue)
        self.assertEqual(self.relay.messages, [])
        row = await self.store.outbound.get(outbound_id)
        self.assertEqual(row.state, "queued")


class PlainRelayTLSTests(QueueTestCase):
    async def test_required_without_starttls(self):
        """Required STARTTLS with a relay that does not offer it sends nothing."""
        queue = self.make_queue(self.store, relay_starttls="required")
        outbound_id = await self.submit()
        await self.run_queue(queue)
        self.assertEqual(self.relay.messages, [])
        self.assertEqual((await self.store.outbound.get(outbound_id)).state, "queued")


class MailConfigTests(SynchronousTestCase):
    def test_durations(self):
        """Retry delays and the give-up time take s, m, h and d units."""
        mail = parse_config("[mail]\nretry_delays = 30s, 5m 1h\ngive_up_after = 2d\nrelay_timeout = 90\n").mail
        self.assertEqual(mail.retry_delays, (30.0, 300.0, 3600.0))
        self.assertEqual((mail.give_up_after, mail.relay_timeout), (172800.0, 90.0))

    def test_bad_duration(self):
        """A duration that is not one names the setting."""
        for text in ("retry_delays = soon", "retry_delays =", "give_up_after = -1h", "relay_timeout = 0"):
            error = self.assertRaises(ConfigError, parse_config, f"[mail]\n{text}\n", "f.ini")
            self.assertIn(f"[mail] {text.split()[0]}", str(error))

    def test_password_not_in_repr(self):
        """The relay password never shows in a printed configuration."""
        config = parse_config("[mail]\nrelay_password = hunter2-secret\n")
        self.assertEqual(config.mail.relay_password, "hunter2-secret")
        self.assertNotIn("hunter2-secret", repr(config))
