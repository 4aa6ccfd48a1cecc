"""
The draft converter: Sync ApplicationData of a 16.x draft -> the stored
RFC 5322 message, and a Change applied to a stored message.
"""

from __future__ import annotations

from datetime import datetime, timezone
from email import message_from_bytes

from lxml import etree
from twisted.trial import unittest

from bluesync import wbxml
from bluesync.items import drafts
from bluesync.items.drafts import UNCHANGED, DraftEdit, DraftError, NewAttachment, Sender
from bluesync.items.email import attachments, html_body, parse_message, plain_body

NOW = datetime(2026, 3, 4, 10, 30, tzinfo=timezone.utc)
LATER = datetime(2026, 3, 4, 11, 0, tzinfo=timezone.utc)
SENDER = Sender("alice@example.org", "Alice Müller")
PDF = b"%PDF-1.4\n" + bytes(range(256))
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 40

NAMESPACES = 'xmlns="AirSync:" xmlns:airsyncbase="AirSyncBase:" xmlns:email="Email:" xmlns:email2="Email2:"'


def application_data(inner: str, contents: dict | None = None):
    element = etree.fromstring(f"<ApplicationData {NAMESPACES}>{inner}</ApplicationData>")
    for add in element.iter("{AirSyncBase:}Add"):
        content = add.find("{AirSyncBase:}Content")
        if content is not None:
            wbxml.set_opaque(content, (contents or {})[add.findtext("{AirSyncBase:}ClientId")])
    return element


def attachment_xml(client_id="a1", name="report.pdf", method="1", extra="") -> str:
    return (f"<airsyncbase:Add><airsyncbase:ClientId>{client_id}</airsyncbase:ClientId>"
            f"<airsyncbase:DisplayName>{name}</airsyncbase:DisplayName><airsyncbase:Content/>"
            f"<airsyncbase:Method>{method}</airsyncbase:Method>{extra}</airsyncbase:Add>")


def build(edit: DraftEdit, origin: str = "7") -> drafts.Draft:
    return drafts.build(edit, sender=SENDER, now=NOW, hostname="bluesync.test", origin=origin)


def apply(raw: bytes, edit: DraftEdit, origin: str = "7", prefix: str = "3:41:") -> drafts.Draft:
    return drafts.apply(raw, edit, file_reference_prefix=prefix, sender=SENDER, now=LATER,
                        hostname="bluesync.test", origin=origin)


FULL = DraftEdit(
    to='"Bob Example" <bob@example.net>, carol@example.org',
    cc="Dan <dan@example.com>",
    bcc="Élodie <elodie@example.org>",
    subject="Réunion lundi",
    importance=2,
    body=(1, "Hello Bob,\r\nsee attached.\r\n"),
    add=(NewAttachment("a1", "Rechnung März.pdf", PDF, content_type="application/pdf"),
         NewAttachment("a2", "logo.png", PNG, content_id="logo@x", is_inline=True)),
)


class ParseEditTests(unittest.TestCase):
    def test_fields(self):
        """To, Cc, Bcc, Subject, Importance, Body and attachments are read; the rest is unchanged."""
        edit = drafts.parse_edit(application_data(
            "<email:To>bob@example.net</email:To><email2:Bcc>x@example.org</email2:Bcc>"
            "<email:Subject>Hi</email:Subject><email:Importance>0</email:Importance>"
            "<airsyncbase:Body><airsyncbase:Type>2</airsyncbase:Type><airsyncbase:Data>&lt;p&gt;x</airsyncbase:Data>"
            "</airsyncbase:Body><email:Read>1</email:Read>"
            "<airsyncbase:Attachments>" + attachment_xml(extra="<airsyncbase:ContentType>application/pdf"
                                                         "</airsyncbase:ContentType><airsyncbase:IsInline>0"
                                                         "</airsyncbase:IsInline>")
            + "<airsyncbase:Delete><airsyncbase:FileReference>3:41:2</airsyncbase:FileReference></airsyncbase:Delete>"
            "</airsyncbase:Attachments>", {"a1": PDF}))
        self.assertEqual((edit.to, edit.cc, edit.bcc, edit.subject, edit.importance, edit.body),
                         ("bob@example.net", UNCHANGED, "x@example.org", "Hi", 0, (2, "<p>x")))
        self.assertEqual(edit.add, (NewAttachment("a1", "report.pdf", PDF, 1, "application/pdf"),))
        self.assertEqual(edit.delete, ("3:41:2",))
        self.assertTrue(edit.changes_content)

    def test_empty_element_clears(self):
        """An empty Cc clears it; state-only data changes no content."""
        self.assertEqual(drafts.parse_edit(application_data("<email:Cc/>")).cc, "")
        self.assertFalse(drafts.parse_edit(application_data("<email:Read>0</email:Read>")).changes_content)

    def test_refused(self):
        """Unusable attachments, bodies and importances raise DraftError."""
        for inner, contents in (
                ("<airsyncbase:Attachments>" + attachment_xml(client_id="") + "</airsyncbase:Attachments>", {"": b""}),
                ("<airsyncbase:Attachments>" + attachment_xml(name="") + "</airsyncbase:Attachments>", {"a1": b"x"}),
                ("<airsyncbase:Attachments>" + attachment_xml(method="2") + "</airsyncbase:Attachments>", {"a1": b"x"}),
                ("<airsyncbase:Attachments>" + attachment_xml() + attachment_xml() + "</airsyncbase:Attachments>",
                 {"a1": b"x"}),
                ("<airsyncbase:Attachments><airsyncbase:Add><airsyncbase:ClientId>a1</airsyncbase:ClientId>"
                 "<airsyncbase:DisplayName>x</airsyncbase:DisplayName><airsyncbase:Method>1</airsyncbase:Method>"
                 "</airsyncbase:Add></airsyncbase:Attachments>", None),
                ("<airsyncbase:Body><airsyncbase:Type>4</airsyncbase:Type></airsyncbase:Body>", None),
                ("<email:Importance>7</email:Importance>", None)):
            with self.subTest(inner=inner):
                self.assertRaises(DraftError, drafts.parse_edit, application_data(inner, contents))


class BuildTests(unittest.TestCase):
    def test_headers(self):
        """From is the account, Date and Message-ID are set, names and subject are RFC 2047 encoded."""
        message = message_from_bytes(build(FULL).raw)
        self.assertEqual(message["From"], "=?utf-8?q?Alice_M=C3=BCller?= <alice@example.org>")
        self.assertEqual(message["To"], "Bob Example <bob@example.net>, carol@example.org")
        self.assertEqual(message["Bcc"], "=?utf-8?q?=C3=89lodie?= <elodie@example.org>")
        self.assertEqual(message["Date"], "Wed, 04 Mar 2026 10:30:00 +0000")
        self.assertRegex(message["Message-ID"], r"^<[0-9a-f]{32}@bluesync\.test>$")
        self.assertEqual(message["Importance"], "high")
        self.assertTrue(message["Subject"].isascii())

    def test_summary(self):
        """The stored draft reads back as the device wrote it, Bcc included."""
        summary = parse_message(build(FULL).raw, NOW)
        self.assertEqual(summary.subject, "Réunion lundi")
        self.assertEqual(summary.to, '"Bob Example" <bob@example.net>, carol@example.org')
        self.assertEqual(summary.cc, '"Dan" <dan@example.com>')
        self.assertEqual(summary.bcc, '"Élodie" <elodie@example.org>')
        self.assertEqual(summary.importance, 2)
        self.assertEqual(summary.from_, '"Alice Müller" <alice@example.org>')
        self.assertEqual(plain_body(build(FULL).raw), "Hello Bob,\nsee attached.\n")

    def test_attachments_numbered(self):
        """Attachments are parts 2 and 3, with name, type, content, Content-ID and inline kept."""
        draft = build(FULL)
        self.assertEqual(draft.attachments, {"a1": 2, "a2": 3})
        found = attachments(draft.raw)
        self.assertEqual([(a.index, a.filename, a.content_type, a.data, a.content_id) for a in found],
                         [(2, "Rechnung März.pdf", "application/pdf", PDF, None),
                          (3, "logo.png", "image/png", PNG, "logo@x")])

    def test_without_attachments(self):
        """A draft without attachments is a single text part; an HTML body stays HTML."""
        draft = build(DraftEdit(subject="x", body=(2, "<p>Bonjour</p>")))
        message = message_from_bytes(draft.raw)
        self.assertEqual(message.get_content_type(), "text/html")
        self.assertEqual(draft.attachments, {})
        self.assertIn("<p>Bonjour</p>", html_body(draft.raw))

    def test_embedded_message(self):
        """A Method 5 attachment is attached as message/rfc822 and listed as Method 5."""
        inner = b"From: x@example.net\r\nSubject: Forwarded\r\n\r\nOriginal text.\r\n"
        draft = build(DraftEdit(subject="fwd", add=(NewAttachment("m", "original.eml", inner, method=5),)))
        (found,) = attachments(draft.raw)
        self.assertEqual((found.content_type, found.method), ("message/rfc822", 5))
        self.assertIn(b"Original text.", found.data)

    def test_content_type_guessed(self):
        """Without ContentType the type comes from the file name."""
        draft = build(DraftEdit(add=(NewAttachment("p", "scan.pdf", PDF),)))
        self.assertEqual(attachments(draft.raw)[0].content_type, "application/pdf")


class ApplyTests(unittest.TestCase):
    def test_fields_replace(self):
        """Given fields replace, the others stay, Message-ID stays, Date moves on."""
        first = build(FULL)
        changed = apply(first.raw, DraftEdit(subject="Réunion mardi", cc=""))
        before, after = message_from_bytes(first.raw), message_from_bytes(changed.raw)
        summary = parse_message(changed.raw)
        self.assertEqual(summary.subject, "Réunion mardi")
        self.assertEqual(summary.cc, "")
        self.assertEqual(summary.to, '"Bob Example" <bob@example.net>, carol@example.org')
        self.assertEqual(summary.bcc, '"Élodie" <elodie@example.org>')
        self.assertEqual(after["Message-ID"], before["Message-ID"])
        self.assertEqual(after["Date"], "Wed, 04 Mar 2026 11:00:00 +0000")
        self.assertEqual(plain_body(changed.raw), plain_body(first.raw))
        self.assertEqual([a.data for a in attachments(changed.raw)], [PDF, PNG])
        self.assertFalse(changed.renumbered)

    def test_delete_renumbers(self):
        """Deleting the first attachment by FileReference moves the second to part 2, and says so."""
        changed = apply(build(FULL).raw, DraftEdit(delete=("3:41:2",)))
        self.assertEqual([(a.index, a.filename) for a in attachments(changed.raw)], [(2, "logo.png")])
        self.assertTrue(changed.renumbered)

    def test_delete_last_keeps_numbers(self):
        """Deleting the last attachment renumbers nothing."""
        changed = apply(build(FULL).raw, DraftEdit(delete=("3:41:3",)))
        self.assertEqual([(a.index, a.filename) for a in attachments(changed.raw)], [(2, "Rechnung März.pdf")])
        self.assertFalse(changed.renumbered)

    def test_foreign_reference_ignored(self):
        """A FileReference of another item, or naming nothing, deletes nothing."""
        changed = apply(build(FULL).raw, DraftEdit(delete=("3:40:2", "3:41:9", "junk")))
        self.assertEqual(len(attachments(changed.raw)), 2)

    def test_add_appends(self):
        """A new attachment goes after the others and its part number is returned."""
        changed = apply(build(FULL).raw, DraftEdit(add=(NewAttachment("b1", "notes.txt", b"hello"),)))
        self.assertEqual(changed.attachments, {"b1": 4})
        self.assertEqual(attachments(changed.raw)[-1].data, b"hello")

    def test_resent_add_not_doubled(self):
        """The same attachment Add from the same device again finds the first one."""
        edit = DraftEdit(add=(NewAttachment("b1", "notes.txt", b"hello"),))
        once = apply(build(FULL).raw, edit)
        twice = apply(once.raw, edit)
        self.assertEqual(twice.attachments, {"b1": 4})
        self.assertEqual(len(attachments(twice.raw)), 3)
        other_device = apply(once.raw, edit, origin="8")
        self.assertEqual(len(attachments(other_device.raw)), 4)

    def test_foreign_message(self):
        """A message not written here keeps its HTML body, threading headers and attachment."""
        raw = (
            b"From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: Re: plans\r\n"
            b"Message-ID: <orig@example.org>\r\nIn-Reply-To: <plans@example.net>\r\n"
            b"References: <plans@example.net>\r\nMIME-Version: 1.0\r\n"
            b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\n'
            b'Content-Type: multipart/alternative; boundary="b2"\r\n\r\n--b2\r\n'
            b"Content-Type: text/plain\r\n\r\nplain version\r\n--b2\r\nContent-Type: text/html\r\n\r\n"
            b"<p>html version</p>\r\n--b2--\r\n--b1\r\nContent-Type: image/png\r\n"
            b'Content-Disposition: attachment; filename="a.png"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
            b"iVBORw0KGgo=\r\n--b1--\r\n"
        )
        changed = apply(raw, DraftEdit(subject="Re: plans (v2)"))
        message = message_from_bytes(changed.raw)
        self.assertEqual((message["Message-ID"], message["In-Reply-To"], message["References"]),
                         ("<orig@example.org>", "<plans@example.net>", "<plans@example.net>"))
        self.assertIn("html version", html_body(changed.raw))
        self.assertEqual([(a.index, a.filename, a.data) for a in attachments(changed.raw)],
                         [(2, "a.png", b"\x89PNG\r\n\x1a\n")])
        self.assertTrue(changed.renumbered)


class SendableTests(unittest.TestCase):
    def test_tags_removed(self):
        """The sent form has no attachment tags and the same attachments."""
        raw = build(FULL).raw
        self.assertIn(drafts.ATTACHMENT_HEADER.encode(), raw)
        sent = drafts.sendable(raw)
        self.assertNotIn(drafts.ATTACHMENT_HEADER.encode(), sent)
        self.assertEqual([a.data for a in attachments(sent)], [PDF, PNG])
        self.assertEqual(drafts.added_by(raw, "7"), {"a1": 2, "a2": 3})
        self.assertEqual(drafts.added_by(raw, "8"), {})


class AttachmentIdsTests(unittest.TestCase):
    def test_element(self):
        """The response ApplicationData maps each ClientId to its FileReference."""
        element = drafts.attachment_ids({"a1": 2}, "3:41:")
        self.assertEqual(
            etree.tostring(element).decode(),
            '<ns0:ApplicationData xmlns:ns0="AirSync:"><ns1:Attachments xmlns:ns1="AirSyncBase:"><ns1:Attachment>'
            "<ns1:ClientId>a1</ns1:ClientId><ns1:FileReference>3:41:2</ns1:FileReference></ns1:Attachment>"
            "</ns1:Attachments></ns0:ApplicationData>")
        self.assertIsNone(drafts.attachment_ids({}, "3:41:"))
