"""
8BITMIME and SMTPUTF8 in the outbound queue, against a real SMTP relay on
a loopback port that offers them or not (tests/mail/smtprelay.py, strict
about what it did not offer), on a real PostgreSQL.
"""

from __future__ import annotations

from email import message_from_bytes
from email import policy as email_policy

from twisted.internet import reactor
from twisted.trial.unittest import SynchronousTestCase

from bluesync.mail.transmission import plan
from tests.mail.smtprelay import Relay
from tests.mail.test_outbound import QueueTestCase, _delivery_status


def message(subject: str = "Hello", to: str = "bob@example.net", body: str = "Hello there.\r\n",
            display: str = "Alice") -> bytes:
    return (
        f"From: {display} <alice@example.org>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        "Date: Mon, 02 Feb 2026 10:00:00 +0000\r\nMessage-ID: <ext-1@example.org>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body
    ).encode("utf-8")


TEXT = "Café crème, déjà vu.\r\n.A line starting with a dot, and trailing space \r\n"
HTML = "<p>Ελληνικά και русский текст, по-прежнему</p>\r\n"
LOGO = bytes(range(256)) * 4


def multipart() -> bytes:
    """Two 8-bit text parts and an 8-bit binary attachment, as a careless client sends them."""
    return (
        "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Menu\r\n"
        "Message-ID: <ext-2@example.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="outer"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
        "--outer\r\n"
        'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n'
        "--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
        + TEXT + "--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + HTML + "--inner--\r\n"
        "--outer\r\nContent-Type: image/x-test\r\nContent-Disposition: attachment; filename=logo.bin\r\n"
        "Content-Transfer-Encoding: binary\r\n\r\n"
    ).encode("utf-8") + LOGO + b"\r\n--outer--\r\n"


def parsed(data: bytes):
    return message_from_bytes(data, policy=email_policy.default)


class ExtensionTestCase(QueueTestCase):
    extensions: tuple[str, ...] = ()

    def make_relay(self) -> Relay:
        return Relay(reactor, extensions=self.extensions)

    async def send(self, raw: bytes, recipients=("bob@example.net",), sender: str | None = None):
        """Queue and run one message; its row after the attempt."""
        from bluesync.store.outbound import Submission

        outbound_id = await self.store.outbound.submit(Submission(
            account_id=self.account.id, device_id=None, client_id=None, now=self.now(),
            sender=sender or "alice@example.org", recipients=tuple(recipients), message=raw,
        ))
        await self.run_queue()
        return await self.store.outbound.get(outbound_id)


class EightBitRelayTests(ExtensionTestCase):
    """A relay offering 8BITMIME but not SMTPUTF8, like many MTAs."""

    extensions = ("8BITMIME",)

    async def test_8bit_body_declared(self):
        """An 8-bit body goes as stored, declared BODY=8BITMIME."""
        raw = message(body=TEXT)
        row = await self.send(raw)
        (received,) = self.relay.messages
        self.assertEqual((received.data, received.parameters), (raw, ("BODY=8BITMIME",)))
        self.assertEqual(row.state, "sent")

    async def test_ascii_declares_nothing(self):
        """A 7-bit message comes with no MAIL FROM parameter."""
        raw = message().replace(b"8bit", b"7bit")
        await self.send(raw)
        (received,) = self.relay.messages
        self.assertEqual((received.data, received.parameters), (raw, ()))

    async def test_idn_domain_needs_no_smtputf8(self):
        """A non-ASCII domain with an ASCII local part is sent as its A-label, header included."""
        row = await self.send(message(to="Bob <bob@exémple.fr>", body=TEXT), ["bob@exémple.fr"])
        (received,) = self.relay.messages
        self.assertEqual(received.recipients, ("bob@xn--exmple-cva.fr",))
        self.assertEqual(received.parameters, ("BODY=8BITMIME",))
        self.assertIn(b"\r\nTo: Bob <bob@xn--exmple-cva.fr>\r\n", received.data)
        self.assertEqual((row.state, row.delivered), ("sent", ("bob@exémple.fr",)))

    async def test_utf8_address_fails_alone(self):
        """
        Without SMTPUTF8 only the address that needs it fails (5.6.7, with a
        report); the others get the message with its header fields
        downgraded to ASCII.
        """
        raw = message(subject="Déjeuner", to="Bob <bob@example.net>, José <josé@exemple.fr>", body=TEXT)
        row = await self.send(raw, ["bob@example.net", "josé@exemple.fr"])
        (received,) = self.relay.messages
        self.assertEqual(received.recipients, ("bob@example.net",))
        self.assertEqual(received.parameters, ("BODY=8BITMIME",))
        head, _, body = received.data.partition(b"\r\n\r\n")
        self.assertTrue(head.isascii(), head)
        self.assertEqual(body, TEXT.encode())
        sent = parsed(received.data)
        self.assertEqual(sent["Subject"], "Déjeuner")
        # RFC 6857: the address the relay cannot carry stays readable.
        self.assertIn("josé@exemple.fr", str(sent["To"]))
        self.assertEqual(sent["To"].addresses[0].addr_spec, "bob@example.net")
        self.assertEqual((row.state, row.delivered), ("failed", ("bob@example.net",)))
        self.assertEqual(row.failed[0]["status"], "5.6.7")
        (report,) = await self.inbox_messages()
        # RFC 6533: the utf-8 address type, in a message/global-delivery-status part.
        self.assertIn("Final-Recipient: utf-8; josé@exemple.fr\r\nAction: failed\r\nStatus: 5.6.7".encode(),
                      report)
        self.assertIn(b"\r\nContent-Type: message/global-delivery-status\r\n", report)
        self.assertNotIn(b"Final-Recipient: rfc822; bob@example.net", report)

    async def test_utf8_sender_fails_every_recipient(self):
        """A sender address that needs SMTPUTF8 cannot go to this relay: nothing is sent, one report."""
        row = await self.send(message(), ["bob@example.net", "carol@example.com"], sender="josé@example.org")
        self.assertEqual(self.relay.messages, [])
        self.assertEqual(row.state, "failed")
        self.assertEqual({f["status"] for f in row.failed}, {"5.6.7"})
        (report,) = await self.inbox_messages()
        self.assertEqual(set(_delivery_status(report)), {"bob@example.net", "carol@example.com"})


class SevenBitRelayTests(ExtensionTestCase):
    """A relay offering neither: it must never receive 8-bit data (RFC 6152)."""

    async def test_8bit_parts_reencoded(self):
        """Every 8-bit part is re-encoded; the recipient reads exactly what was written."""
        row = await self.send(multipart())
        self.assertEqual(row.state, "sent")
        (received,) = self.relay.messages
        self.assertEqual(received.parameters, ())
        self.assertTrue(received.data.isascii())
        sent = parsed(received.data)
        self.assertEqual(sent["Content-Transfer-Encoding"], "7bit")
        text, html, logo = [part for part in sent.walk() if not part.is_multipart()]
        original = [part for part in parsed(multipart()).walk() if not part.is_multipart()]
        self.assertEqual([text.get_content(), html.get_content(), logo.get_content()],
                         [part.get_content() for part in original])
        self.assertEqual(text.get_content()[:20], TEXT[:20])
        self.assertEqual(logo.get_content(), LOGO)
        self.assertEqual([part["Content-Transfer-Encoding"] for part in (text, html, logo)],
                         ["quoted-printable", "base64", "base64"])
        self.assertEqual(logo.get_filename(), "logo.bin")

    async def test_utf8_headers_downgraded(self):
        """UTF-8 header fields become encoded words and RFC 2231 parameters; nothing is declared."""
        raw = (
            "From: José Ñúñez <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Crème brûlée\r\n"
            "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            'Content-Disposition: inline; filename="reçu.txt"\r\n\r\nMerci.\r\n'
        ).encode("utf-8")
        await self.send(raw)
        (received,) = self.relay.messages
        self.assertEqual(received.parameters, ())
        self.assertTrue(received.data.isascii(), received.data)
        sent = parsed(received.data)
        self.assertEqual(sent["Subject"], "Crème brûlée")
        self.assertEqual(sent["From"].addresses[0].display_name, "José Ñúñez")
        self.assertEqual(sent["From"].addresses[0].addr_spec, "alice@example.org")
        self.assertEqual(sent.get_filename(), "reçu.txt")
        self.assertEqual(sent.get_content(), "Merci.\r\n")


class UTF8RelayTests(ExtensionTestCase):
    """A relay offering both (Postfix 3 with smtputf8_enable, Exim with SMTPUTF8)."""

    extensions = ("8BITMIME", "SMTPUTF8")

    async def test_utf8_address_delivered(self):
        """An address with a non-ASCII local part goes under SMTPUTF8, as UTF-8, message untouched."""
        raw = message(subject="Déjeuner", to="José <josé@exemple.fr>", body=TEXT)
        row = await self.send(raw, ["josé@exemple.fr", "bob@example.net"])
        (received,) = self.relay.messages
        self.assertEqual(received.recipients, ("josé@exemple.fr", "bob@example.net"))
        self.assertEqual(received.parameters, ("BODY=8BITMIME", "SMTPUTF8"))
        self.assertEqual(received.data, raw)
        self.assertEqual((row.state, set(row.delivered)), ("sent", {"josé@exemple.fr", "bob@example.net"}))
        self.assertEqual(await self.inbox_messages(), [])

    async def test_utf8_header_declared(self):
        """UTF-8 in a header field alone is declared SMTPUTF8 too (RFC 6532)."""
        raw = message(subject="Déjeuner", body="ASCII body.\r\n")
        await self.send(raw)
        (received,) = self.relay.messages
        self.assertEqual(received.parameters, ("BODY=8BITMIME", "SMTPUTF8"))
        self.assertEqual(received.data, raw)

    async def test_ascii_declares_nothing(self):
        """An all-ASCII message is sent without either parameter."""
        raw = message().replace(b"8bit", b"7bit")
        await self.send(raw)
        self.assertEqual(self.relay.messages[0].parameters, ())


class PlanTests(SynchronousTestCase):
    """What cannot be set up on a loopback relay: malformed input."""

    def test_invalid_idn_fails_for_good(self):
        """A domain that is no valid IDN fails that recipient with 5.1.3, the others go."""
        result = plan("alice@example.org", ["bob@exa\u00admple..fr", "carol@example.com"], message(),
                      frozenset())
        self.assertEqual(list(result.recipients), ["carol@example.com"])
        self.assertEqual(result.refused["bob@exa\u00admple..fr"][1][:5], "5.1.3")

    def test_unchanged_when_nothing_is_needed(self):
        """The bytes are passed on as they are when the relay takes them."""
        raw = multipart()
        self.assertIs(plan("alice@example.org", ["bob@example.net"], raw, frozenset({"8BITMIME"})).data, raw)
