"""
The LMTP server over real sockets: a blocking client in a worker thread
(our own pipelining one, and Python's smtplib.LMTP) talks to the server on
the reactor, which stores into a real PostgreSQL.
"""

from __future__ import annotations

import re
import select
import shutil
import smtplib
import tempfile
from pathlib import Path

import psycopg2
from twisted.internet import reactor, threads
from twisted.internet.endpoints import serverFromString
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import StringTransport
from twisted.trial import unittest

from bluesync.items.email import MessageSummary
from bluesync.items.records import from_record
from bluesync.mail.lmtp import THREAD_PARSE_SIZE, LMTPFactory, parse_path
from bluesync.service import BluesyncService, StartupError
from bluesync.store.folders import INBOX
from tests.mail.lmtpclient import LMTPServer, LineClient, commands, converse_in_thread, dot_stuff
from tests.support import DatabaseTestCase, database_outage, test_config, until_pool_reconnected

PLAIN = (
    b"From: Carol <carol@example.net>\r\n"
    b"To: Alice <alice@example.org>, Bob <bob@example.org>\r\n"
    b"Subject: Lunch\r\n"
    b"Date: Tue, 14 May 2024 09:30:00 +0200\r\n"
    b"Message-ID: <lunch-1@example.net>\r\n"
    b"\r\n"
    b"Noon at the usual place?\r\n"
)

# Everything a mail system meets in the wild and must store untouched:
# raw 8-bit and UTF-8 header text, an unknown charset, broken
# quoted-printable, an unterminated multipart, dot-leading lines (which
# travel dot-stuffed), a bare LF, a 5,000-byte line, control bytes.
ODD = (
    b"From: =?iso-8859-1?q?J=F6rg?= <jorg@example.de>\r\n"
    b"To: \xc3\x89lodie <alice@example.org>\r\n"
    b"Subject: Caf\xe9 cr\xe8me \xff\r\n"
    b"Message-ID: <odd@example.org>\r\n"
    b"Content-Type: multipart/mixed; boundary=\"never-closed\"\r\n"
    b"\r\n"
    b"--never-closed\r\n"
    b"Content-Type: text/plain; charset=x-klingon\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n"
    b"\r\n"
    b".leading dot\r\n"
    b"..two dots\r\n"
    b". not the end\r\n"
    b"=E9t=E9 =ZZ broken\r\n"
    b"bare LF\nnext\r\n"
    + b"x" * 5000 + b"\r\n"
    b"\x01\x02\x7f\xfe\r\n"
)

TRACE = re.compile(
    rb"\AReturn-Path: <(?P<sender>[^>]*)>\r\n"
    rb"Received: from client\.example \(\[127\.0\.0\.1\]\)\r\n"
    rb"\tby localhost \(bluesync\) with LMTP id (?P<id>\w+);\r\n"
    rb"\t\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n\Z"
)


def codes(replies) -> list[int]:
    return [reply.code for reply in replies]


class LMTPTestCase(DatabaseTestCase):
    """
    An LMTP server on a loopback port, with accounts alice and bob.
    """

    async def _set_up(self) -> None:
        await super()._set_up()
        self.alice = await self.store.create_account("alice@example.org", "Alice", "x")
        self.bob = await self.store.create_account("bob@example.org", "Bob", "x")
        server = LMTPServer(self, self.store, self.config.mail)
        self.factory, self.port, self.address = server.factory, server.port, server.address

    async def inbox(self, account):
        return await self.store.folders.by_type(account.id, INBOX)

    async def stored(self, account) -> list[dict]:
        rows = await self.database.query(
            "SELECT i.id, i.content, i.subject, i.from_address, i.message_id, i.size,"
            " i.has_attachments, i.message_class, i.summary, i.date_received, i.folder_id"
            " FROM items i WHERE i.account_id = %s ORDER BY i.id",
            (account.id,),
        )
        names = ("id", "content", "subject", "from_address", "message_id", "size",
                 "has_attachments", "message_class", "summary", "date_received", "folder_id")
        return [dict(zip(names, (bytes(v) if isinstance(v, memoryview) else v for v in row))) for row in rows]

    def converse(self, script):
        return converse_in_thread(self.address, script)

    def assert_trace_then(self, content: bytes, message: bytes, sender: bytes) -> None:
        self.assertTrue(content.endswith(message), "the message is stored byte for byte after the trace")
        trace = TRACE.match(content[: len(content) - len(message)])
        self.assertIsNotNone(trace, content[:300])
        self.assertEqual(trace.group("sender"), sender)


class DeliveryTests(LMTPTestCase):
    async def test_one_recipient_smtplib(self):
        """Python's smtplib.LMTP delivers a message; it is stored in the Inbox after the trace fields."""

        def send():
            client = smtplib.LMTP(*self.address)
            try:
                client.ehlo("client.example")  # smtplib.LMTP sends it as LHLO
                return client.sendmail("carol@example.net", ["alice@example.org"], PLAIN)
            finally:
                client.quit()

        refused = await threads.deferToThread(send)
        self.assertEqual(refused, {})
        [item] = await self.stored(self.alice)
        self.assertEqual(item["folder_id"], (await self.inbox(self.alice)).id)
        self.assert_trace_then(item["content"], PLAIN, b"carol@example.net")
        self.assertEqual(item["subject"], "Lunch")
        self.assertEqual(item["message_id"], "<lunch-1@example.net>")
        self.assertEqual(await self.stored(self.bob), [])

    async def test_several_recipients_pipelined(self):
        """Pipelined RCPTs get one reply each, and after DATA one reply per accepted recipient."""
        script = [
            (commands("carol@example.net", ["alice@example.org", "nobody@example.org", "bob@example.org"]), 6),
            (dot_stuff(PLAIN), 2),
            (b"QUIT\r\n", 1),
        ]
        replies = await self.converse(script)
        self.assertEqual(codes(replies), [220, 250, 250, 250, 550, 250, 354, 250, 250, 221])
        self.assertIn("PIPELINING", replies[1].lines)
        self.assertIn("ENHANCEDSTATUSCODES", replies[1].lines)
        self.assertTrue(replies[4].text.startswith("5.1.1 <nobody@example.org>"))
        self.assertTrue(replies[7].text.startswith("2.0.0 <alice@example.org>"))
        self.assertTrue(replies[8].text.startswith("2.0.0 <bob@example.org>"))
        [alice_item] = await self.stored(self.alice)
        [bob_item] = await self.stored(self.bob)
        self.assertEqual(alice_item["content"], bob_item["content"])
        self.assertNotEqual(alice_item["id"], bob_item["id"])
        self.assertEqual(bob_item["folder_id"], (await self.inbox(self.bob)).id)

    async def test_two_messages_one_write(self):
        """A second transaction pipelined right behind the end of the first is answered after it, in order."""
        second = PLAIN.replace(b"Lunch", b"Dinner")
        script = [
            (commands("carol@example.net", ["alice@example.org"]), 4),
            (dot_stuff(PLAIN) + commands("carol@example.net", ["bob@example.org"], lhlo=False), 4),
            (dot_stuff(second) + b"QUIT\r\n", 2),
        ]
        replies = await self.converse(script)
        self.assertEqual(codes(replies), [220, 250, 250, 250, 354, 250, 250, 250, 354, 250, 221])
        [alice_item] = await self.stored(self.alice)
        [bob_item] = await self.stored(self.bob)
        self.assertEqual(alice_item["subject"], "Lunch")
        self.assertEqual(bob_item["subject"], "Dinner")

    async def test_alias_and_mixed_case(self):
        """An alias and odd capitalisation reach the account, and the same account gets one copy."""
        await self.store.accounts.add_alias("alice@example.org", "sales@example.org")
        recipients = ["SALES@Example.ORG", "Alice@EXAMPLE.org", "alice@example.org"]
        replies = await self.converse([
            (commands("carol@example.net", recipients), 6),
            (dot_stuff(PLAIN) + b"QUIT\r\n", 4),
        ])
        self.assertEqual(codes(replies), [220, 250, 250, 250, 250, 250, 354, 250, 250, 250, 221])
        self.assertEqual(len(await self.stored(self.alice)), 1)

    async def test_disabled_account(self):
        """A disabled account's address is refused 550 while the others are delivered."""
        await self.store.accounts.set_disabled("bob@example.org", True)
        replies = await self.converse([
            (commands("carol@example.net", ["bob@example.org", "alice@example.org"]), 5),
            (dot_stuff(PLAIN) + b"QUIT\r\n", 2),
        ])
        self.assertEqual(codes(replies), [220, 250, 250, 550, 250, 354, 250, 221])
        self.assertEqual(await self.stored(self.bob), [])
        self.assertEqual(len(await self.stored(self.alice)), 1)

    async def test_odd_message_stored_byte_exact(self):
        """8-bit headers, an unknown charset, broken MIME and dot-leading lines are stored exactly and summarised."""
        self.assertIn(b"\r\n.leading", ODD)
        replies = await self.converse([
            (commands("jorg@example.de", ["alice@example.org"]), 4),
            (dot_stuff(ODD) + b"QUIT\r\n", 2),
        ])
        self.assertEqual(codes(replies), [220, 250, 250, 250, 354, 250, 221])
        [item] = await self.stored(self.alice)
        self.assert_trace_then(item["content"], ODD, b"jorg@example.de")
        self.assertEqual(item["subject"], "Café crème ÿ")
        self.assertEqual(item["from_address"], '"Jörg" <jorg@example.de>')
        self.assertEqual(item["message_id"], "<odd@example.org>")
        self.assertEqual(item["size"], len(item["content"]))
        summary = from_record(MessageSummary, item["summary"])
        self.assertEqual(summary.to, '"Élodie" <alice@example.org>')
        self.assertEqual(summary.body_text_for_search, "")
        self.assertIn("leading dot", summary.preview_text)

    async def test_large_message(self):
        """A message large enough to be parsed in a worker thread is stored exactly and summarised."""
        large = PLAIN + b"".join(b"line %07d " % n + b"w" * 60 + b"\r\n" for n in range(THREAD_PARSE_SIZE // 60))
        self.assertGreater(len(large), THREAD_PARSE_SIZE)
        replies = await self.converse([
            (commands("carol@example.net", ["alice@example.org"]), 4),
            (dot_stuff(large) + b"QUIT\r\n", 2),
        ])
        self.assertEqual(codes(replies), [220, 250, 250, 250, 354, 250, 221])
        [item] = await self.stored(self.alice)
        self.assert_trace_then(item["content"], large, b"carol@example.net")
        self.assertEqual(item["subject"], "Lunch")

    async def test_empty_sender_and_empty_message(self):
        """The null reverse-path and an empty message body are accepted and stored."""
        replies = await self.converse([
            (commands("", ["alice@example.org"]), 4),
            (b".\r\nQUIT\r\n", 2),
        ])
        self.assertEqual(codes(replies), [220, 250, 250, 250, 354, 250, 221])
        [item] = await self.stored(self.alice)
        self.assert_trace_then(item["content"], b"", b"")

    async def test_folder_stamped_and_notified(self):
        """A delivery advances the Inbox modseq and sends NOTIFY 'f <account> <folder>' on commit."""
        listener = psycopg2.connect(self.dsn)
        self.addCleanup(listener.close)
        listener.autocommit = True
        with listener.cursor() as cursor:
            cursor.execute("LISTEN bluesync")
        before = await self.inbox(self.alice)
        replies = await self.converse([
            (commands("carol@example.net", ["alice@example.org"]), 4),
            (dot_stuff(PLAIN) + b"QUIT\r\n", 2),
        ])
        self.assertEqual(replies[-2].code, 250)

        def notifications() -> list[str]:
            payloads = []
            for _ in range(50):
                select.select([listener], [], [], 0.1)
                listener.poll()
                while listener.notifies:
                    payloads.append(listener.notifies.pop(0).payload)
                if payloads:
                    return payloads
            return payloads

        payloads = await threads.deferToThread(notifications)
        self.assertIn(f"f {self.alice.id} {before.id}", payloads)
        after = await self.inbox(self.alice)
        self.assertGreater(after.modseq, before.modseq)


class RefusalTests(LMTPTestCase):
    async def test_command_sequence(self):
        """Commands out of order, HELO/EHLO and unknown parameters get the RFC 5321 codes; the session survives."""
        script = [
            (b"MAIL FROM:<a@example.net>\r\nHELO x\r\nEHLO x\r\nLHLO\r\n", 4),
            (b"LHLO client.example\r\nRCPT TO:<alice@example.org>\r\nDATA\r\n", 3),
            (b"MAIL FROM:<a@example.net> BODY=BINARYMIME\r\nMAIL FROM:<a@example.net> RET=FULL\r\n", 2),
            (b"MAIL FROM:a@example.net\r\nMAIL FROM:<b@example.net>\r\n", 2),
            (b"RCPT TO:<nobody@example.org>\r\nRCPT TO:<alice@example.org> NOTIFY=NEVER\r\nDATA\r\n", 3),
            (b"RSET\r\nNOOP\r\nVRFY alice\r\nFROB\r\nRCPT TO:<alice@example.org>\r\nQUIT\r\n", 6),
        ]
        replies = await self.converse(script)
        self.assertEqual(codes(replies), [
            220,
            503, 500, 500, 501,
            250, 503, 503,
            555, 555,
            250, 503,
            550, 555, 503,
            250, 250, 252, 500, 503, 221,
        ])
        self.assertEqual(await self.stored(self.alice), [])

    async def test_mail_size_parameter(self):
        """MAIL FROM with SIZE= above the limit is refused 552 (RFC 1870)."""
        limit = self.config.mail.max_message_size
        replies = await self.converse([
            (b"LHLO client.example\r\n", 1),
            (f"MAIL FROM:<a@example.net> SIZE={limit + 1}\r\n".encode(), 1),
            (f"MAIL FROM:<a@example.net> SIZE={limit}\r\nQUIT\r\n".encode(), 2),
        ])
        self.assertIn(f"SIZE {limit}", replies[1].lines)
        self.assertEqual(codes(replies), [220, 250, 552, 250, 221])

    async def test_long_command_line(self):
        """A command line over the limit is answered 500 and the connection closed."""
        client = await threads.deferToThread(LineClient, self.address)
        self.addCleanup(client.close)
        await threads.deferToThread(client.reply)
        await threads.deferToThread(client.send, b"NOOP " + b"x" * 10000 + b"\r\n")
        reply = await threads.deferToThread(client.reply)
        self.assertEqual(reply.code, 500)
        self.assertTrue(await threads.deferToThread(client.closed_by_server))


class SizeLimitTests(LMTPTestCase):
    config_text = "[mail]\nmax_message_size = 4096\n"

    async def test_oversize_message(self):
        """A message over the limit gets 552 per recipient, nothing is stored, and the session goes on."""
        slightly = PLAIN + b"y" * 4096 + b"\r\n"
        far = PLAIN + (b"z" * 998 + b"\r\n") * 300
        replies = await self.converse([
            (commands("carol@example.net", ["alice@example.org", "bob@example.org"]), 5),
            (dot_stuff(slightly), 2),
            (commands("carol@example.net", ["alice@example.org"], lhlo=False), 3),
            (dot_stuff(far), 1),
            (commands("carol@example.net", ["alice@example.org"], lhlo=False), 3),
            (dot_stuff(PLAIN) + b"QUIT\r\n", 2),
        ])
        self.assertEqual(codes(replies), [
            220, 250, 250, 250, 250, 354, 552, 552,
            250, 250, 354, 552,
            250, 250, 354, 250, 221,
        ])
        self.assertTrue(replies[6].text.startswith("5.3.4"))
        [item] = await self.stored(self.alice)
        self.assert_trace_then(item["content"], PLAIN, b"carol@example.net")
        self.assertEqual(await self.stored(self.bob), [])


class DatabaseFailureTests(LMTPTestCase):
    async def test_database_down_before_data(self):
        """With the database connections killed before DATA, every recipient gets 451 and nothing is stored."""
        self.addCleanup(self.flushLoggedErrors, psycopg2.OperationalError)
        before = await self.inbox(self.alice)
        client = await threads.deferToThread(LineClient, self.address)
        self.addCleanup(client.close)

        def start():
            client.reply()
            client.send(commands("carol@example.net", ["alice@example.org", "bob@example.org"]))
            return client.replies(5)

        self.assertEqual(codes(await threads.deferToThread(start)), [250, 250, 250, 250, 354])
        lift = database_outage(self, self.dsn)

        def finish():
            client.send(dot_stuff(PLAIN))
            return client.replies(2)

        replies = await threads.deferToThread(finish)
        self.assertEqual(codes(replies), [451, 451])
        self.assertTrue(replies[0].text.startswith("4.3.0 <alice@example.org>"))
        lift()
        await self.until_database_back()
        self.assertEqual(await self.stored(self.alice), [])
        self.assertEqual(await self.stored(self.bob), [])
        self.assertEqual((await self.inbox(self.alice)).modseq, before.modseq)

    async def test_failure_on_second_copy_stores_nothing(self):
        """When storing the second recipient's copy fails, the first copy is rolled back and both get 451."""
        await self.database.execute(
            "CREATE FUNCTION fail_for_bob() RETURNS trigger AS $$ BEGIN"
            f" IF NEW.account_id = {self.bob.id} THEN RAISE EXCEPTION 'simulated disk full'; END IF;"
            " RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        await self.database.execute(
            "CREATE TRIGGER fail_for_bob BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION fail_for_bob()"
        )
        before = await self.inbox(self.alice)
        replies = await self.converse([
            (commands("carol@example.net", ["alice@example.org", "bob@example.org"]), 5),
            (dot_stuff(PLAIN) + b"QUIT\r\n", 3),
        ])
        self.assertEqual(codes(replies), [220, 250, 250, 250, 250, 354, 451, 451, 221])
        self.assertEqual(await self.stored(self.alice), [])
        self.assertEqual((await self.inbox(self.alice)).modseq, before.modseq)

    async def test_recipient_lookup_fails(self):
        """A recipient that cannot be looked up is answered 451 and the MTA may retry it."""
        self.addCleanup(self.flushLoggedErrors, psycopg2.OperationalError)
        client = await threads.deferToThread(LineClient, self.address)
        self.addCleanup(client.close)

        def start():
            client.reply()
            client.send(b"LHLO client.example\r\nMAIL FROM:<carol@example.net>\r\n")
            return client.replies(2)

        await threads.deferToThread(start)
        lift = database_outage(self, self.dsn)

        def finish():
            client.send(b"RCPT TO:<alice@example.org>\r\nDATA\r\n")
            return client.replies(2)

        self.assertEqual(codes(await threads.deferToThread(finish)), [451, 503])
        lift()
        await self.until_database_back()

    async def until_database_back(self) -> None:
        for _ in range(80):
            try:
                await self.store.accounts.by_id(self.alice.id)
                await self.store.accounts.by_id(self.alice.id)
                await until_pool_reconnected(self.database)
                return
            except Exception:
                await deferLater(reactor, 0.25, lambda: None)
        self.fail("the pool did not reconnect")


class ShutdownTests(LMTPTestCase):
    async def test_stop_closes_idle_sessions(self):
        """Stopping the factory answers an idle session 421 and closes it."""
        client = await threads.deferToThread(LineClient, self.address)
        self.addCleanup(client.close)

        def hello():
            client.reply()
            client.send(b"LHLO client.example\r\n")
            return client.reply()

        self.assertEqual((await threads.deferToThread(hello)).code, 250)
        await self.factory.stop()
        reply = await threads.deferToThread(client.reply)
        self.assertEqual(reply.code, 421)
        self.assertTrue(await threads.deferToThread(client.closed_by_server))


class TransportTests(LMTPTestCase):
    async def test_nagle_off(self):
        """TCP sessions disable Nagle, so a reply written after a database wait is not held for the client's ACK."""
        client = await threads.deferToThread(LineClient, self.address)
        self.addCleanup(client.close)
        self.assertEqual((await threads.deferToThread(client.reply)).code, 220)
        [session] = self.factory.connections
        self.assertTrue(session.transport.getTcpNoDelay())


class TimeoutTests(unittest.TestCase):
    def test_idle_session_closed(self):
        """A session idle for the RFC 5321 server timeout is told 421 and closed; activity resets the timer."""
        clock = Clock()
        factory = LMTPFactory(None, test_config().mail, clock)
        session = factory.buildProtocol(None)
        transport = StringTransport()
        session.makeConnection(transport)
        self.assertTrue(transport.value().startswith(b"220 "))
        clock.advance(session.idle_timeout - 1)
        session.dataReceived(b"NOOP\r\n")
        clock.advance(session.idle_timeout - 1)
        self.assertFalse(transport.disconnecting)
        self.assertTrue(transport.value().endswith(b"250 2.0.0 OK\r\n"))
        clock.advance(1)
        self.assertTrue(transport.value().endswith(b"\r\n421 4.4.2 Idle for too long, closing connection\r\n"))
        self.assertTrue(transport.disconnecting)


class UnixSocketTests(LMTPTestCase):
    async def test_unix_endpoint(self):
        """A unix: endpoint serves LMTP; smtplib.LMTP delivers through the socket path."""
        directory = Path(tempfile.mkdtemp(prefix="bluesync-lmtp-"))
        self.addCleanup(shutil.rmtree, directory, True)
        path = str(directory / "lmtp.sock")
        port = await serverFromString(reactor, f"unix:{path}").listen(self.factory)
        self.addCleanup(port.stopListening)

        def send():
            client = smtplib.LMTP(path)
            try:
                return client.sendmail("carol@example.net", ["Bob@Example.org"], PLAIN)
            finally:
                client.quit()

        self.assertEqual(await threads.deferToThread(send), {})
        [item] = await self.stored(self.bob)
        content = item["content"]
        self.assertTrue(content.endswith(PLAIN))
        self.assertTrue(content.startswith(b"Return-Path: <carol@example.net>\r\nReceived: from "))


class ParsePathTests(DatabaseTestCase):
    def test_forms(self):
        """Paths with brackets, without, with quotes, source routes and parameters split as RFC 5321 says."""
        self.assertEqual(parse_path(b"FROM:<a@b> SIZE=10 BODY=8BITMIME", b"FROM:"),
                         (b"a@b", [(b"SIZE", b"10"), (b"BODY", b"8BITMIME")]))
        self.assertEqual(parse_path(b"to: <A@B>", b"TO:"), (b"A@B", []))
        self.assertEqual(parse_path(b"TO:a@b", b"TO:"), (b"a@b", []))
        self.assertEqual(parse_path(b'TO:<"x>y"@b>', b"TO:"), (b'"x>y"@b', []))
        self.assertEqual(parse_path(b"TO:<@relay.example,@r2:u@b>", b"TO:"), (b"u@b", []))
        self.assertEqual(parse_path(b"FROM:<>", b"FROM:"), (b"", []))
        self.assertEqual(parse_path(b"FROM:<> SMTPUTF8", b"FROM:"), (b"", [(b"SMTPUTF8", None)]))
        self.assertIsNone(parse_path(b"TO:<a@b", b"TO:"))
        self.assertIsNone(parse_path(b"TO:<a@b>x", b"TO:"))
        self.assertIsNone(parse_path(b"FROM:<a@b>", b"TO:"))
        self.assertIsNone(parse_path(b"TO:<a\x01@b>", b"TO:"))


class ServiceTests(DatabaseTestCase):
    async def test_service_listens_and_delivers(self):
        """The service opens the configured LMTP endpoints (TCP and unix) after the database and closes them on stop."""
        directory = Path(tempfile.mkdtemp(prefix="bluesync-lmtp-"))
        self.addCleanup(shutil.rmtree, directory, True)
        socket_path = directory / "lmtp.sock"
        config = test_config(
            f"[database]\ndsn = {self.dsn}\n[server]\nlisten = tcp:0:interface=127.0.0.1\n"
            f"[mail]\nlmtp_listen = tcp:0:interface=127.0.0.1\n  unix:{socket_path}\n"
            "[admin]\nlisten = tcp:0:interface=127.0.0.1\n"
        )
        service = BluesyncService(config, reactor, exit_on_failure=False)
        service.startService()
        await service.started
        await service.opened.store.create_account("alice@example.org", "Alice", "x")
        lmtp_ports = [p for p in service.ports if isinstance(p.factory, LMTPFactory)]
        self.assertEqual(len(lmtp_ports), 2)
        address = ("127.0.0.1", lmtp_ports[0].getHost().port)

        def send(target):
            client = smtplib.LMTP(*target) if isinstance(target, tuple) else smtplib.LMTP(target)
            try:
                return client.sendmail("carol@example.net", ["alice@example.org"], PLAIN)
            finally:
                client.quit()

        self.assertEqual(await threads.deferToThread(send, address), {})
        self.assertEqual(await threads.deferToThread(send, str(socket_path)), {})
        await service.stopService()
        self.assertEqual(service.ports, [])
        rows = await self.database.query("SELECT count(*) FROM items")
        self.assertEqual(rows[0][0], 2)

    async def test_lmtp_listen_failure(self):
        """An LMTP endpoint that cannot be bound fails start-up naming the setting and endpoint."""
        from twisted.internet.protocol import Factory

        blocker = reactor.listenTCP(0, Factory(), interface="127.0.0.1")
        self.addCleanup(blocker.stopListening)
        busy = f"tcp:{blocker.getHost().port}:interface=127.0.0.1"
        config = test_config(
            f"[database]\ndsn = {self.dsn}\n[server]\nlisten = tcp:0:interface=127.0.0.1\n"
            f"[mail]\nlmtp_listen = {busy}\n"
        )
        service = BluesyncService(config, reactor, exit_on_failure=False)
        service.startService()
        with self.assertRaises(StartupError) as raised:
            await service.started
        self.assertIn("[mail] lmtp_listen", str(raised.exception))
        self.assertIn(busy, str(raised.exception))
        await service.stopService()
