"""
The pure composition functions: what phones send, made ready to go.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email import message_from_bytes
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from bluesync.items.email import attachments, parse_message, plain_body
from bluesync.mail import compose

DATA = Path(__file__).resolve().parent.parent / "items" / "data"
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
OWN = {"alice@example.org", "a.martin@example.org"}


def prepare(raw: bytes) -> compose.Outgoing:
    return compose.prepare(raw, address="alice@example.org", display_name="Alice Martin", own_addresses=OWN,
                           hostname="mx.example.org", now=NOW)


class PrepareTests(SynchronousTestCase):
    def test_completes_headers(self):
        """A message without From, Date and Message-ID gets them, and nothing else changes."""
        raw = b"To: bob@example.net\r\nSubject: x\r\n\r\nbody\r\n"
        outgoing = prepare(raw)
        self.assertTrue(outgoing.stored.endswith(raw))
        parsed = message_from_bytes(outgoing.stored)
        self.assertEqual(parsed["From"], "Alice Martin <alice@example.org>")
        self.assertEqual(parsed["Date"], "Wed, 04 Mar 2026 05:06:07 +0000")
        self.assertRegex(parsed["Message-ID"], r"^<[0-9a-f]{32}@mx\.example\.org>$")
        self.assertFalse(outgoing.message_id_given)
        self.assertEqual(outgoing.sender, "alice@example.org")

    def test_non_ascii_display_name(self):
        """A display name outside ASCII is written as an encoded word."""
        outgoing = compose.prepare(b"To: bob@example.net\r\n\r\nx\r\n", address="alice@example.org",
                                   display_name="Zoë Ångström", own_addresses=OWN, hostname="h", now=NOW)
        self.assertEqual(parse_message(outgoing.stored).from_, '"Zoë Ångström" <alice@example.org>')

    def test_bcc_removed_with_its_continuation_lines(self):
        """Every Bcc field, folded lines included, is gone from the transmitted form only."""
        raw = (b"From: alice@example.org\nTo: bob@example.net\nBcc: one@example.com,\n two@example.com\n"
               b"Subject: s\nbcc: three@example.com\n\nBcc: this line is body text\n")
        outgoing = prepare(raw)
        self.assertNotIn(b"one@", outgoing.transmitted)
        self.assertNotIn(b"two@", outgoing.transmitted)
        self.assertNotIn(b"three@", outgoing.transmitted)
        self.assertIn(b"\n\nBcc: this line is body text\n", outgoing.transmitted)
        self.assertIn(b" two@example.com\n", outgoing.stored)
        self.assertEqual(outgoing.recipients,
                         ("bob@example.net", "one@example.com", "two@example.com", "three@example.com"))

    def test_recipients_deduplicated(self):
        """An address in To and Cc, in any case, is one recipient; groups without members add none."""
        raw = (b"From: alice@example.org\r\nTo: Bob <bob@example.net>, friends: ;\r\n"
               b"Cc: BOB@example.net, carol@example.com\r\n\r\nx\r\n")
        self.assertEqual(prepare(raw).recipients, ("bob@example.net", "carol@example.com"))

    def test_own_addresses_accepted(self):
        """Aliases in any case, with any display name, are the account's."""
        outgoing = prepare(b"From: Boss <A.MARTIN@example.org>\r\nTo: bob@example.net\r\n\r\nx\r\n")
        self.assertEqual(outgoing.sender, "a.martin@example.org")

    def test_forged(self):
        """Another address in From, a second From address, or a foreign Sender is refused."""
        for header in (b"From: mallory@example.org", b"From: alice@example.org, mallory@example.org",
                       b"From: alice@example.org\r\nSender: mallory@example.org", b"From: undisclosed"):
            self.assertRaises(compose.ForgedSender, prepare, header + b"\r\nTo: bob@example.net\r\n\r\nx\r\n")

    def test_invalid(self):
        """Bytes that are not a message, and a message without recipients, are refused."""
        self.assertRaises(compose.InvalidMessage, prepare, b"")
        self.assertRaises(compose.InvalidMessage, prepare, b"hello world\r\n")
        self.assertRaises(compose.NoRecipients, prepare, b"Subject: x\r\n\r\nbody\r\n")
        self.assertRaises(compose.UnresolvedRecipient, prepare, b"To: Bob Smith\r\n\r\nbody\r\n")

    def test_missing_blank_line(self):
        """A body that starts without the blank line gets one, so it stays the body."""
        outgoing = prepare(b"To: bob@example.net\r\nSubject: s\r\nthe body")
        self.assertTrue(outgoing.transmitted.endswith(b"Subject: s\r\n\r\nthe body"))


ORIGINAL = (b"From: Carol <carol@example.net>\r\nTo: alice@example.org\r\nCc: dave@example.com\r\n"
            b"Subject: Plans\r\nDate: Tue, 10 Feb 2026 12:00:00 +0000\r\nMessage-ID: <p1@example.net>\r\n"
            b"Content-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
            b"Caf=E9 at noon?\r\n")


class ReplyTests(SynchronousTestCase):
    def test_plain_quote(self):
        """The original's decoded text is quoted after the reply, with an attribution line."""
        raw = compose.reply(b"To: carol@example.net\r\nSubject: Re: Plans\r\n\r\nYes!\r\n", ORIGINAL,
                            replace_mime=False)
        body = plain_body(raw)
        self.assertEqual(body, "Yes!\n\nOn Tue, 10 Feb 2026 12:00:00 +0000, Carol <carol@example.net> wrote:\n"
                               "> Café at noon?\n")
        parsed = message_from_bytes(raw)
        self.assertEqual((parsed["In-Reply-To"], parsed["References"]), ("<p1@example.net>", "<p1@example.net>"))
        self.assertEqual(parsed.get_content_charset(), "utf-8")

    def test_device_threading_kept(self):
        """Threading headers the device wrote are not duplicated."""
        raw = compose.reply(b"To: c@example.net\r\nIn-Reply-To: <own@x>\r\nReferences: <own@x>\r\n\r\nx\r\n",
                            ORIGINAL, replace_mime=True)
        parsed = message_from_bytes(raw)
        self.assertEqual(parsed.get_all("In-Reply-To"), ["<own@x>"])
        self.assertEqual(parsed.get_all("References"), ["<own@x>"])

    def test_replace_mime_leaves_body(self):
        """With ReplaceMime only threading fields are added; the device's bytes follow unchanged."""
        device = b"To: carol@example.net\r\nSubject: Re\r\n\r\nmy own quote\r\n> Caf\xc3\xa9\r\n"
        raw = compose.reply(device, ORIGINAL, replace_mime=True)
        self.assertTrue(raw.endswith(device))

    def test_message_without_text_body(self):
        """A reply that is only an attachment gets a text part carrying the quote."""
        device = (b"To: carol@example.net\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                  b"iVBORw0KGgo=\r\n")
        raw = compose.reply(device, ORIGINAL, replace_mime=False)
        parsed = message_from_bytes(raw)
        self.assertEqual(parsed.get_content_type(), "multipart/mixed")
        self.assertEqual([p.get_content_type() for p in parsed.get_payload()], ["text/plain", "image/png"])
        self.assertIn("> Café at noon?", plain_body(raw))

    def test_reply_verb(self):
        """Reply All is told from Reply by the original's other recipients."""
        outgoing = prepare(b"From: alice@example.org\r\nTo: carol@example.net\r\n\r\nx\r\n")
        self.assertEqual(compose.reply_verb(outgoing, ORIGINAL, OWN), compose.REPLY)
        outgoing = prepare(b"From: alice@example.org\r\nTo: carol@example.net, dave@example.com\r\n\r\nx\r\n")
        self.assertEqual(compose.reply_verb(outgoing, ORIGINAL, OWN), compose.REPLY_ALL)


class ForwardTests(SynchronousTestCase):
    def test_attachments_and_text(self):
        """A forward carries the original's text and every attachment, byte for byte."""
        original = (DATA / "attachments.eml").read_bytes()
        raw = compose.forward(b"To: zoe@example.net\r\nSubject: Fw\r\n\r\nFYI\r\n", original, replace_mime=False)
        self.assertEqual([(a.filename, a.data) for a in attachments(raw)],
                         [(a.filename, a.data) for a in attachments(original)])
        self.assertIn("FYI\n\n---------- Forwarded message ----------\n", plain_body(raw))
        self.assertEqual(message_from_bytes(raw)["References"], "<att-1@example.org>")
        self.assertIsNone(message_from_bytes(raw)["In-Reply-To"])

    def test_device_attachments_kept(self):
        """A forward that already has the device's own attachment keeps it before the original's."""
        device = (b"To: zoe@example.net\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=x\r\n\r\n"
                  b"--x\r\nContent-Type: text/plain\r\n\r\nmine too\r\n--x\r\nContent-Type: text/csv\r\n"
                  b"Content-Disposition: attachment; filename=mine.csv\r\n\r\na,b\r\n--x--\r\n")
        raw = compose.forward(device, (DATA / "attachments.eml").read_bytes(), replace_mime=False)
        self.assertEqual([a.filename for a in attachments(raw)],
                         ["mine.csv", "logo.png", "Rechnung März.pdf", "Original request.eml"])

    def test_single_part_original(self):
        """An original that is one attachment is forwarded as that attachment."""
        original = (b"From: carol@example.net\r\nSubject: scan\r\nContent-Type: application/pdf; name=scan.pdf\r\n"
                    b"Content-Disposition: attachment; filename=scan.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                    b"JVBERi0xLjQK\r\n")
        raw = compose.forward(b"To: zoe@example.net\r\n\r\nsee scan\r\n", original, replace_mime=False)
        (attachment,) = attachments(raw)
        self.assertEqual((attachment.filename, attachment.data), ("scan.pdf", b"%PDF-1.4\n"))


class ReportTests(SynchronousTestCase):
    def report(self, original: bytes = ORIGINAL, **kwargs) -> bytes:
        failures = [compose.Failure("x@example.net", "5.1.1", "smtp; 550 5.1.1 unknown"),
                    compose.Failure("y@example.net", "4.4.7", "")]
        return compose.delivery_report(original=original, failures=failures, recipient="alice@example.org",
                                       hostname="mx.example.org", arrival=NOW, now=NOW,
                                       remote_mta="relay.example.org", **kwargs)

    def test_rfc3464_structure(self):
        """The report is multipart/report with readable text, delivery-status and the returned message."""
        report = message_from_bytes(self.report())
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertEqual(report.get_param("report-type"), "delivery-status")
        self.assertEqual(report["Auto-Submitted"], "auto-replied")
        readable, status, returned = report.get_payload()
        self.assertIn("x@example.net: 550 5.1.1 unknown", readable.get_payload())
        self.assertIn("y@example.net: delivery was attempted for too long", readable.get_payload())
        groups = status.get_payload()
        self.assertEqual(groups[0]["Reporting-MTA"], "dns; mx.example.org")
        self.assertEqual([(g["Final-Recipient"], g["Status"], g["Action"]) for g in groups[1:]],
                         [("rfc822; x@example.net", "5.1.1", "failed"), ("rfc822; y@example.net", "4.4.7", "failed")])
        self.assertEqual(groups[1]["Remote-MTA"], "dns; relay.example.org")
        self.assertIsNone(groups[2]["Diagnostic-Code"])
        self.assertEqual(returned.get_payload()[0]["Message-ID"], "<p1@example.net>")
        self.assertEqual(parse_message(self.report()).message_class, "REPORT.IPM.Note.NDR")

    def test_large_original_returns_headers(self):
        """A large original comes back as its header only."""
        report = message_from_bytes(self.report(ORIGINAL + b"x" * 1000, include_limit=100))
        returned = report.get_payload()[2]
        self.assertEqual(returned.get_content_type(), "text/rfc822-headers")
        self.assertNotIn("xxxx", returned.get_payload())

    def test_international_recipient(self):
        """
        A non-ASCII address makes the report RFC 6533's: a
        message/global-delivery-status part naming it with the utf-8
        address type (escaping "+" as unitext), the ASCII one still rfc822;
        a message with a non-ASCII header comes back as message/global.
        """
        original = ORIGINAL.replace(b"Subject:", "Subject: Réunion".encode() + b"\r\nX-Old-Subject:", 1)
        failures = [compose.Failure("josé+tag@exemple.fr", "5.6.7", "smtp; 553 5.6.7 no SMTPUTF8"),
                    compose.Failure("x@example.net", "5.1.1", "")]
        raw = compose.delivery_report(original=original, failures=failures, recipient="alice@example.org",
                                      hostname="mx.example.org", arrival=NOW, now=NOW)
        report = message_from_bytes(raw)
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertEqual(report.get_param("report-type"), "global-delivery-status")
        readable, status, returned = report.get_payload()
        self.assertEqual(status.get_content_type(), "message/global-delivery-status")
        self.assertEqual(returned.get_content_type(), "message/global")
        # The status part is UTF-8 fields in groups separated by blank lines (RFC 6533 section 6.3).
        body = raw.split(b"Content-Type: message/global-delivery-status\r\n", 1)[1]
        body = body.split(b"\r\n\r\n", 1)[1].split(b"\r\n--", 1)[0].decode("utf-8")
        groups = [dict(line.split(": ", 1) for line in group.splitlines()) for group in body.split("\r\n\r\n")]
        self.assertEqual(groups[0]["Reporting-MTA"], "dns; mx.example.org")
        self.assertEqual([g["Final-Recipient"] for g in groups[1:] if g],
                         ["utf-8; josé\\x{2B}tag@exemple.fr", "rfc822; x@example.net"])
        self.assertEqual(groups[1]["Status"], "5.6.7")
        self.assertIn("josé+tag@exemple.fr: 553 5.6.7 no SMTPUTF8", readable.get_payload(decode=True).decode())
        self.assertEqual(parse_message(raw).message_class, "REPORT.IPM.Note.NDR")
        # ASCII addresses keep the RFC 3464 form.
        plain = message_from_bytes(self.report(original))
        self.assertEqual(plain.get_param("report-type"), "delivery-status")
        self.assertEqual(plain.get_payload()[1].get_content_type(), "message/delivery-status")
        self.assertEqual(plain.get_payload()[2].get_content_type(), "message/rfc822")

    def test_enhanced_status(self):
        """The relay's own enhanced code is used when it matches the reply's class."""
        self.assertEqual(compose.enhanced_status(550, "5.7.1 relaying denied"), "5.7.1")
        self.assertEqual(compose.enhanced_status(550, "4.7.1 odd"), "5.0.0")
        self.assertEqual(compose.enhanced_status(554, "no code here"), "5.0.0")
