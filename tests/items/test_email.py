"""
Tests for L{bluesync.items.email} and L{bluesync.items.mime}.
"""

import base64
import dataclasses
import hashlib
from datetime import datetime, timezone
from pathlib import Path

from hypothesis import given, settings, strategies as st
from lxml import etree
from twisted.trial.unittest import SynchronousTestCase

from bluesync import wbxml
from bluesync.items import mime
from bluesync.items.email import (
    BodyPreference,
    Flag,
    ItemState,
    MIME_TRUNCATION_SIZES,
    application_data,
    attachment,
    attachments,
    change_data,
    html_body,
    invitation,
    parse_message,
    plain_body,
    truncate_utf8,
)

DATA = Path(__file__).parent / "data"
RECEIVED = datetime(2024, 6, 1, 12, 0, tzinfo=timezone.utc)
PREFIX = "7:42:"


def load(name: str) -> bytes:
    return (DATA / name).read_bytes()


def names(element) -> list[str]:
    """Child tags as "Page:Name" strings, for order assertions."""
    return [child.tag[1:].replace("}", "") for child in element]


def flatten(element) -> list[tuple[str, str]]:
    """Every element's tag and text, in document order."""
    return [(node.tag, node.text or "") for node in element.iter()]


def child(element, page: str, name: str):
    found = element.find(f"{{{page}:}}{name}")
    if found is None:
        raise AssertionError(f"no {page}:{name} in {names(element)}")
    return found


def serve(raw: bytes, version: str = "14.1", *, state: ItemState = ItemState(),
          summary=None, **kwargs):
    summary = summary or parse_message(raw, RECEIVED)
    kwargs.setdefault("file_reference_prefix", PREFIX)
    return application_data(raw, summary, state, version=version, **kwargs)


def body_of(data) -> dict[str, str | None]:
    body = child(data, "AirSyncBase", "Body")
    return {name.split(":")[1]: el.text for name, el in zip(names(body), body)}


def plain_message(text: str, charset: str = "utf-8") -> bytes:
    return (b"From: a@example.org\r\nTo: b@example.com\r\nSubject: t\r\n"
            b"Date: Mon, 03 Jun 2024 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/plain; charset=" + charset.encode() +
            b"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text.encode(charset))


class ParseMessageTests(SynchronousTestCase):
    """
    L{parse_message} summarises a stored message.
    """

    def test_plain(self):
        """Addresses, subject, ids, importance and text of a plain reply."""
        summary = parse_message(load("plain.eml"), RECEIVED)
        self.assertEqual(summary.subject, "Re: Quarterly report")
        self.assertEqual(summary.from_, '"Alice Martin" <alice@example.org>')
        self.assertEqual(summary.to, '"Bob Durand" <bob@example.com>, carol@example.com')
        self.assertEqual(summary.cc, '"Martin, Dave" <Dave.Martin@Example.NET>')
        self.assertEqual(summary.reply_to, '"Team" <team@example.org>')
        self.assertEqual(summary.display_to, "Bob Durand; carol@example.com")
        self.assertEqual(summary.date, datetime(2024, 5, 14, 7, 30, tzinfo=timezone.utc))
        self.assertEqual(summary.received, RECEIVED)
        self.assertEqual(summary.message_id, "<reply-2@example.org>")
        self.assertEqual(summary.in_reply_to, "<reply-1@example.com>")
        self.assertEqual(summary.references, ("<root-0@example.org>", "<reply-1@example.com>"))
        self.assertEqual(summary.thread_topic, "Quarterly report")
        self.assertEqual(summary.importance, 2)
        self.assertEqual(summary.size, len(load("plain.eml")))
        self.assertEqual(summary.message_class, "IPM.Note")
        self.assertEqual(summary.content_class, "urn:content-classes:message")
        self.assertEqual(summary.internet_cpid, 65001)
        self.assertEqual(summary.native_body_type, 1)
        self.assertFalse(summary.has_attachments)
        self.assertEqual(summary.preview_text,
                         "Hi Bob, The numbers look good: revenue is up 12 % — "
                         "see the attached summary. Café at 10? Alice")
        self.assertIn("Café at 10?\n\nAlice", summary.body_text_for_search)

    def test_recipients(self):
        """Recipients are the bare lower-case To, Cc and Bcc addresses."""
        summary = parse_message(load("plain.eml"), RECEIVED)
        self.assertEqual(summary.recipients, ("bob@example.com", "carol@example.com",
                                              "dave.martin@example.net", "hidden@example.com"))
        self.assertEqual(summary.bcc, "hidden@example.com")

    def test_receivedFromHeader(self):
        """Without a delivery time the newest Received header gives it."""
        summary = parse_message(load("plain.eml"))
        self.assertEqual(summary.received, datetime(2024, 5, 14, 7, 31, 2, tzinfo=timezone.utc))

    def test_rfc2047Iso88591(self):
        """ISO-8859-1 Q-encoded words and a quoted-printable HTML body."""
        summary = parse_message(load("html_only.eml"), RECEIVED)
        self.assertEqual(summary.subject, "Présentation des nouveautés")
        self.assertEqual(summary.from_, '"Françoise Léger" <francoise@example.fr>')
        self.assertEqual(summary.importance, 0)
        self.assertEqual(summary.native_body_type, 2)
        self.assertEqual(summary.internet_cpid, 28591)
        self.assertTrue(summary.preview_text.startswith(
            "Présentation Bonjour à tous, voici les nouveautés : - Premier point"))
        self.assertNotIn("alert", summary.body_text_for_search)

    def test_rfc2047Utf8(self):
        """UTF-8 B-encoded words, an emoji included."""
        summary = parse_message(load("alternative.eml"), RECEIVED)
        self.assertEqual(summary.subject, "Meeting ✅ moved")
        self.assertEqual(summary.from_, '"Zoë Kruger" <zoe@example.de>')
        self.assertEqual(summary.thread_topic, "Meeting moved")
        self.assertEqual(summary.native_body_type, 2)
        self.assertEqual(summary.body_text_for_search,
                         "Hello Bob,\n\nThe meeting moved to Friday.\n\nRegards,\nZoë\n")

    def test_shiftJis(self):
        """Shift_JIS and ISO-2022-JP words, a Shift_JIS 8-bit body."""
        summary = parse_message(load("shift_jis.eml"), RECEIVED)
        self.assertEqual(summary.subject, "会議の件について")
        self.assertEqual(summary.from_, '"山田" <yamada@example.jp>')
        self.assertEqual(summary.internet_cpid, 932)
        self.assertEqual(summary.preview_text, "田中様 お世話になっております。 明日の会議は10時からです。")

    def test_eightBitUtf8Headers(self):
        """Raw UTF-8 bytes in headers are decoded as UTF-8."""
        summary = parse_message(load("eightbit_headers.eml"), RECEIVED)
        self.assertEqual(summary.subject, "Grüße aus München")
        self.assertEqual(summary.from_, '"Jürgen Müller" <juergen@example.de>')

    def test_eightBitLatin1Headers(self):
        """Raw non-UTF-8 header bytes fall back to the message charset."""
        summary = parse_message(load("eightbit_latin1.eml"), RECEIVED)
        self.assertEqual(summary.subject, "Café crème")
        self.assertEqual(summary.from_, '"René Dupont" <rene@example.fr>')
        self.assertEqual(summary.body_text_for_search, "Un café crème, s'il vous plaît.\n")

    def test_eightBitHeadersInMessageCharset(self):
        """
        Raw header bytes in a charset Windows-1252 would misread (KOI8-R)
        are read in the message's charset, in the Subject and in an
        address's name, beside ASCII headers that never need it.
        """
        raw = ("From: \u0418\u0432\u0430\u043d <ivan@example.ru>\r\nTo: Bob <bob@example.com>\r\n"
               "Subject: \u041f\u0440\u0438\u0432\u0435\u0442\r\nMIME-Version: 1.0\r\n"
               "Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
               "\u0422\u0435\u043a\u0441\u0442\r\n").encode("koi8-r")
        summary = parse_message(raw, RECEIVED)
        self.assertEqual(summary.subject, "\u041f\u0440\u0438\u0432\u0435\u0442")
        self.assertEqual(summary.from_, '"\u0418\u0432\u0430\u043d" <ivan@example.ru>')
        self.assertEqual(summary.to, '"Bob" <bob@example.com>')

    def test_noDateNoFrom(self):
        """Missing headers give empty fields and the delivery time."""
        summary = parse_message(load("no_date_from.eml"), RECEIVED)
        self.assertEqual(summary.from_, "")
        self.assertEqual(summary.message_id, "")
        self.assertEqual(summary.date, RECEIVED)
        self.assertEqual(summary.subject, "brokencafé")
        self.assertEqual(summary.internet_cpid, 20127)
        self.assertEqual(summary.body_text_for_search, "body without headers worth mentioning\n")

    def test_garbageDate(self):
        """An unparsable Date falls back to the delivery time."""
        summary = parse_message(load("broken_multipart.eml"), RECEIVED)
        self.assertEqual(summary.date, RECEIVED)

    def test_brokenMultipart(self):
        """A multipart without its closing boundary keeps its parts."""
        raw = load("broken_multipart.eml")
        summary = parse_message(raw, RECEIVED)
        self.assertEqual(summary.body_text_for_search, "The first part is fine.")
        self.assertTrue(summary.has_attachments)
        found = attachment(raw, 2)
        self.assertEqual(found.filename, "data.bin")
        self.assertEqual(found.data, bytes(range(10)))

    def test_multipartWithoutBoundary(self):
        """A multipart type without a boundary is read as text."""
        raw = (b"Subject: x\r\nContent-Type: multipart/mixed\r\n\r\n"
               b"just some text\r\n")
        summary = parse_message(raw, RECEIVED)
        self.assertEqual(summary.body_text_for_search, "just some text\n")
        self.assertEqual(attachments(raw), [])

    def test_unknownCharset(self):
        """A body in an unknown charset is read as UTF-8, else Windows-1252."""
        self.assertEqual(parse_message(plain_message("naïve", "utf-8").replace(
            b"charset=utf-8", b"charset=x-bogus"), RECEIVED).body_text_for_search, "naïve")
        raw = plain_message("naïve", "latin-1").replace(b"charset=latin-1", b"charset=x-bogus")
        self.assertEqual(parse_message(raw, RECEIVED).body_text_for_search, "naïve")

    def test_importanceHeaders(self):
        """Importance, X-Priority and X-MSMail-Priority map to 0, 1, 2."""
        base = b"Subject: x\r\n%s\r\n\r\nbody\r\n"
        cases = [(b"Importance: Low", 0), (b"Importance: normal", 1),
                 (b"X-Priority: 1 (Highest)", 2), (b"X-Priority: 3", 1),
                 (b"X-MSMail-Priority: High", 2), (b"X-Other: 1", 1)]
        for header, expected in cases:
            self.assertEqual(parse_message(base % header, RECEIVED).importance, expected, header)

    def test_senderDiffersFromFrom(self):
        """A Sender other than the From address is kept; the same one is not."""
        raw = load("plain.eml").replace(b"Subject:", b"Sender: Secretary <sec@example.org>\r\nSubject:")
        self.assertEqual(parse_message(raw, RECEIVED).sender, '"Secretary" <sec@example.org>')
        raw = load("plain.eml").replace(b"Subject:", b"Sender: alice@EXAMPLE.org\r\nSubject:")
        self.assertEqual(parse_message(raw, RECEIVED).sender, "")

    def test_cpidMapping(self):
        """Common charsets map to their Windows code page ids."""
        for charset, cpid in [("iso-8859-15", 28605), ("windows-1251", 1251),
                              ("koi8-r", 20866), ("big5", 950), ("euc-kr", 51949),
                              ("gb2312", 936), ("iso-2022-jp", 50220), ("us-ascii", 20127)]:
            raw = plain_message("x", "utf-8").replace(b"charset=utf-8", b"charset=" + charset.encode())
            self.assertEqual(parse_message(raw, RECEIVED).internet_cpid, cpid, charset)


class MessageClassTests(SynchronousTestCase):
    """
    Message and content classes come from the MIME structure.
    """

    def test_invitation(self):
        """An iMIP REQUEST is a meeting request, a calendar message."""
        summary = parse_message(load("invite.eml"), RECEIVED)
        self.assertEqual(summary.message_class, "IPM.Schedule.Meeting.Request")
        self.assertEqual(summary.content_class, "urn:content-classes:calendarmessage")
        self.assertFalse(summary.has_attachments)

    def test_cancellation(self):
        """An iMIP CANCEL is a cancelled meeting."""
        raw = load("invite.eml").replace(b"REQUEST", b"CANCEL")
        self.assertEqual(parse_message(raw, RECEIVED).message_class, "IPM.Schedule.Meeting.Canceled")

    def test_reply(self):
        """An iMIP REPLY maps PARTSTAT to the response class."""
        raw = load("invite.eml").replace(b"REQUEST", b"REPLY").replace(b"NEEDS-ACTION", b"ACCEPTED")
        self.assertEqual(parse_message(raw, RECEIVED).message_class, "IPM.Schedule.Meeting.Resp.Pos")
        raw = raw.replace(b"ACCEPTED", b"DECLINED")
        self.assertEqual(parse_message(raw, RECEIVED).message_class, "IPM.Schedule.Meeting.Resp.Neg")

    def test_methodFromCalendarText(self):
        """Without a method parameter the METHOD line is read."""
        raw = load("invite.eml").replace(b"; method=REQUEST", b"")
        self.assertEqual(parse_message(raw, RECEIVED).message_class, "IPM.Schedule.Meeting.Request")

    def test_ndr(self):
        """A failed delivery-status report is an NDR."""
        summary = parse_message(load("ndr.eml"), RECEIVED)
        self.assertEqual(summary.message_class, "REPORT.IPM.Note.NDR")
        self.assertIn("550 5.1.1 User unknown", summary.body_text_for_search)

    def test_deliveryReport(self):
        """A delivered delivery-status report is a DR."""
        raw = load("ndr.eml").replace(b"Action: failed", b"Action: delivered")
        self.assertEqual(parse_message(raw, RECEIVED).message_class, "REPORT.IPM.Note.DR")

    def test_readReceipt(self):
        """A disposition notification is a read report."""
        raw = (b"Subject: Read: x\r\nContent-Type: multipart/report; "
               b"report-type=disposition-notification; boundary=b\r\n\r\n--b\r\n"
               b"Content-Type: text/plain\r\n\r\nYour message was read.\r\n--b\r\n"
               b"Content-Type: message/disposition-notification\r\n\r\n"
               b"Final-Recipient: rfc822;bob@example.com\r\n"
               b"Disposition: manual-action/MDN-sent-manually; displayed\r\n\r\n--b--\r\n")
        self.assertEqual(parse_message(raw, RECEIVED).message_class, "REPORT.IPM.Note.IPNRN")

    def test_clearSigned(self):
        """multipart/signed with a PKCS#7 signature is clear-signed S/MIME."""
        summary = parse_message(load("smime_signed.eml"), RECEIVED)
        self.assertEqual(summary.message_class, "IPM.Note.SMIME.MultipartSigned")
        self.assertEqual(summary.body_text_for_search, "This message is signed.\n")

    def test_opaqueSmime(self):
        """application/pkcs7-mime is S/MIME, itself one attachment."""
        raw = (b"From: a@example.org\r\nSubject: secret\r\nMIME-Version: 1.0\r\n"
               b"Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n"
               b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(b"\x30\x80cms"))
        summary = parse_message(raw, RECEIVED)
        self.assertEqual(summary.message_class, "IPM.Note.SMIME")
        [only] = attachments(raw)
        self.assertEqual((only.index, only.filename, only.data), (0, "smime.p7m", b"\x30\x80cms"))


class ConversationTests(SynchronousTestCase):
    """
    ConversationId and ConversationIndex rules.
    """

    def test_idFromReferencesRoot(self):
        """The id is the MD5 of the first References id."""
        summary = parse_message(load("plain.eml"), RECEIVED)
        self.assertEqual(summary.conversation_id,
                         hashlib.md5(b"message-id:<root-0@example.org>").digest())

    def test_rootJoinsItsReplies(self):
        """The root message, by its own Message-ID, gets its replies' id."""
        root = (b"Message-ID: <ROOT-0@example.org>\r\nSubject: Quarterly report\r\n\r\nx\r\n")
        reply = parse_message(load("plain.eml"), RECEIVED)
        self.assertEqual(parse_message(root, RECEIVED).conversation_id, reply.conversation_id)

    def test_idFromInReplyTo(self):
        """Without References, In-Reply-To names the root."""
        raw = b"In-Reply-To: <p@x>\r\nMessage-ID: <c@x>\r\n\r\nx\r\n"
        self.assertEqual(parse_message(raw, RECEIVED).conversation_id,
                         hashlib.md5(b"message-id:<p@x>").digest())

    def test_idFromThreadIndex(self):
        """Without any message id, the Thread-Index GUID is the id."""
        raw = load("alternative.eml").replace(b"Message-ID: <alt-1@example.de>\r\n", b"")
        self.assertEqual(parse_message(raw, RECEIVED).conversation_id, bytes(range(16)))

    def test_idFromTopic(self):
        """Without ids or Thread-Index, the normalised topic decides."""
        first = parse_message(b"Subject: Lunch  plans\r\n\r\nx\r\n", RECEIVED)
        second = parse_message(b"Subject: RE: Fwd: lunch plans\r\n\r\ny\r\n", RECEIVED)
        self.assertEqual(first.conversation_id, second.conversation_id)
        self.assertEqual(len(first.conversation_id), 16)
        self.assertEqual(second.thread_topic, "lunch plans")

    def test_indexFromThreadIndex(self):
        """Thread-Index gives its time bytes and response levels."""
        summary = parse_message(load("alternative.eml"), RECEIVED)
        self.assertEqual(summary.conversation_index, bytes.fromhex("DAA5D087120000001234"))

    def test_indexFromDate(self):
        """Without Thread-Index, the index is FILETIME bits 63..24 of the date."""
        summary = parse_message(load("plain.eml"), RECEIVED)
        seconds = int(datetime(2024, 5, 14, 7, 30, tzinfo=timezone.utc).timestamp())
        filetime = (seconds + 11_644_473_600) * 10_000_000
        self.assertEqual(summary.conversation_index, (filetime >> 24).to_bytes(5, "big"))


class HeaderDecodingTests(SynchronousTestCase):
    """
    L{mime.decode_rfc2047} and L{mime.decode_bytes} are lenient.
    """

    def test_splitMultibyteCharacter(self):
        """A character split across adjacent encoded words is rejoined."""
        euro = "€".encode()
        value = "=?utf-8?B?%s?= =?utf-8?B?%s?=" % (base64.b64encode(euro[:2]).decode(),
                                                  base64.b64encode(euro[2:]).decode())
        self.assertEqual(mime.decode_rfc2047(value), "€")

    def test_badPadding(self):
        """Base64 without padding still decodes."""
        self.assertEqual(mime.decode_rfc2047("=?utf-8?B?Y2Fmw6k?="), "café")

    def test_qEncoding(self):
        """Q encoding: underscores are spaces, =XX are bytes."""
        self.assertEqual(mime.decode_rfc2047("Re: =?iso-8859-1?q?caf=E9_cr=E8me?= ok"),
                         "Re: café crème ok")

    def test_languageSuffix(self):
        """An RFC 2231 language suffix on the charset is ignored."""
        self.assertEqual(mime.decode_rfc2047("=?UTF-8*fr?Q?=C3=A9t=C3=A9?="), "été")

    def test_unknownCharset(self):
        """An unknown charset is tried as UTF-8, then Windows-1252."""
        self.assertEqual(mime.decode_rfc2047("=?x-foo?Q?=E2=82=AC?="), "€")
        self.assertEqual(mime.decode_rfc2047("=?x-foo?Q?=80?="), "€")

    def test_nonTextCodecs(self):
        """Codec names that are not text encodings are not used."""
        self.assertIsNone(mime.lookup_charset("zlib"))
        self.assertIsNone(mime.lookup_charset("unicode_escape"))
        self.assertEqual(mime.decode_bytes(b"caf\xe9", "base64"), "café")

    def test_undecodableBytes(self):
        """Bytes a declared charset cannot decode become U+FFFD."""
        self.assertEqual(mime.decode_bytes(b"a\xffb", "utf-8"), "a\ufffdb")


class ApplicationDataTests(SynchronousTestCase):
    """
    L{application_data} builds the email ApplicationData per version.
    """

    V12 = ["Email:To", "Email:Cc", "Email:From", "Email:Subject", "Email:ReplyTo",
           "Email:DateReceived", "Email:DisplayTo", "Email:ThreadTopic",
           "Email:Importance", "Email:Read", "AirSyncBase:Body", "Email:MessageClass",
           "Email:InternetCPID", "Email:Flag", "Email:ContentClass",
           "AirSyncBase:NativeBodyType"]
    V14 = V12 + ["Email2:ConversationId", "Email2:ConversationIndex", "Email:Categories"]

    def test_order121(self):
        """12.1 has no Email2 elements and no Categories."""
        data = serve(load("plain.eml"), "12.1")
        self.assertEqual(data.tag, "{AirSync:}ApplicationData")
        self.assertEqual(names(data), self.V12)

    def test_order141(self):
        """14.1 adds the conversation elements and Categories."""
        self.assertEqual(names(serve(load("plain.eml"), "14.1")), self.V14)

    def test_order161(self):
        """16.1 adds Email2:IsDraft."""
        data = serve(load("plain.eml"), "16.1")
        self.assertEqual(names(data), self.V14 + ["Email2:IsDraft"])
        self.assertEqual(child(data, "Email2", "IsDraft").text, "0")

    def test_fullOrder141(self):
        """Attachments, reply state, Bcc flag, Sender and categories in place."""
        raw = load("attachments.eml").replace(b"Subject:", b"Sender: sec@example.org\r\nSubject:")
        state = ItemState(read=True, flag=Flag(), categories=("Work", "Blue"),
                          last_verb_executed=2,
                          last_verb_time=datetime(2024, 5, 20, 8, 1, 2, 345000, tzinfo=timezone.utc))
        data = serve(raw, "14.1", state=state, received_as_bcc=True)
        self.assertEqual(names(data), [
            "Email:To", "Email:From", "Email:Subject", "Email:DateReceived",
            "Email:DisplayTo", "Email:ThreadTopic", "Email:Importance", "Email:Read",
            "AirSyncBase:Attachments", "AirSyncBase:Body", "Email:MessageClass",
            "Email:InternetCPID", "Email:Flag", "Email:ContentClass",
            "AirSyncBase:NativeBodyType", "Email2:ConversationId",
            "Email2:ConversationIndex", "Email2:LastVerbExecuted",
            "Email2:LastVerbExecutionTime", "Email2:ReceivedAsBcc", "Email2:Sender",
            "Email:Categories"])
        self.assertEqual(child(data, "Email2", "LastVerbExecuted").text, "2")
        self.assertEqual(child(data, "Email2", "LastVerbExecutionTime").text, "2024-05-20T08:01:02.345Z")
        self.assertEqual(child(data, "Email2", "ReceivedAsBcc").text, "1")
        self.assertEqual(child(data, "Email2", "Sender").text, "sec@example.org")
        self.assertEqual([c.text for c in child(data, "Email", "Categories")], ["Work", "Blue"])
        self.assertEqual(child(data, "Email", "Read").text, "1")

    def test_values(self):
        """Header fields, dates and classes are sent as the spec shows them."""
        data = serve(load("plain.eml"), "14.1")
        self.assertEqual(child(data, "Email", "To").text,
                         '"Bob Durand" <bob@example.com>, carol@example.com')
        self.assertEqual(child(data, "Email", "From").text, '"Alice Martin" <alice@example.org>')
        self.assertEqual(child(data, "Email", "Subject").text, "Re: Quarterly report")
        self.assertEqual(child(data, "Email", "ReplyTo").text, '"Team" <team@example.org>')
        self.assertEqual(child(data, "Email", "DateReceived").text, "2024-06-01T12:00:00.000Z")
        self.assertEqual(child(data, "Email", "DisplayTo").text, "Bob Durand; carol@example.com")
        self.assertEqual(child(data, "Email", "ThreadTopic").text, "Quarterly report")
        self.assertEqual(child(data, "Email", "Importance").text, "2")
        self.assertEqual(child(data, "Email", "Read").text, "0")
        self.assertEqual(child(data, "Email", "MessageClass").text, "IPM.Note")
        self.assertEqual(child(data, "Email", "InternetCPID").text, "65001")
        self.assertEqual(child(data, "Email", "ContentClass").text, "urn:content-classes:message")
        self.assertEqual(child(data, "AirSyncBase", "NativeBodyType").text, "1")
        self.assertEqual(len(child(data, "Email", "Flag")), 0)
        self.assertEqual(len(child(data, "Email", "Categories")), 0)

    def test_opaqueConversationElements(self):
        """Conversation id and index travel as base64 of their bytes."""
        summary = parse_message(load("plain.eml"), RECEIVED)
        data = serve(load("plain.eml"), "14.1", summary=summary)
        self.assertEqual(wbxml.opaque(child(data, "Email2", "ConversationId")), summary.conversation_id)
        self.assertEqual(wbxml.opaque(child(data, "Email2", "ConversationIndex")), summary.conversation_index)

    def test_missingHeadersOmitted(self):
        """A message without From or Subject has no such elements."""
        data = serve(load("no_date_from.eml"), "14.1")
        self.assertNotIn("Email:From", names(data))
        self.assertIn("Email:Subject", names(data))
        raw = b"To: b@example.com\r\n\r\nbody\r\n"
        self.assertNotIn("Email:Subject", names(serve(raw)))

    def test_draft161(self):
        """A 16.1 draft says IsDraft 1 and carries its Bcc after Cc."""
        data = serve(load("plain.eml"), "16.1", is_draft=True)
        self.assertEqual(names(data)[:3], ["Email:To", "Email:Cc", "Email2:Bcc"])
        self.assertEqual(child(data, "Email2", "Bcc").text, "hidden@example.com")
        self.assertEqual(child(data, "Email2", "IsDraft").text, "1")

    def test_draftBefore16(self):
        """Before 16.0 a draft gets neither Bcc nor IsDraft."""
        data = serve(load("plain.eml"), "14.1", is_draft=True)
        self.assertNotIn("Email2:Bcc", names(data))
        self.assertNotIn("Email2:IsDraft", names(data))

    def test_meetingRequestHook(self):
        """A MeetingRequest element from the calendar side follows MessageClass."""
        meeting = etree.Element("{Email:}MeetingRequest")
        data = serve(load("invite.eml"), "14.1", meeting_request=meeting)
        position = names(data).index("Email:MessageClass")
        self.assertIs(data[position + 1], meeting)
        self.assertEqual(child(data, "Email", "MessageClass").text, "IPM.Schedule.Meeting.Request")
        self.assertEqual(child(data, "Email", "ContentClass").text, "urn:content-classes:calendarmessage")

    def test_flag(self):
        """A set flag has its children in the MS-ASEMAIL order."""
        moment = datetime(2024, 6, 3, 9, 0, tzinfo=timezone.utc)
        flag = Flag(status=1, flag_type="Follow up", subject="Call back",
                    date_completed=moment, complete_time=moment, start_date=moment,
                    due_date=moment, utc_start_date=moment, utc_due_date=moment,
                    reminder_set=True, reminder_time=moment, ordinal_date=moment,
                    sub_ordinal_date="5555555")
        element = child(serve(load("plain.eml"), state=ItemState(flag=flag)), "Email", "Flag")
        self.assertEqual(names(element), [
            "Tasks:Subject", "Email:Status", "Email:FlagType", "Tasks:DateCompleted",
            "Email:CompleteTime", "Tasks:StartDate", "Tasks:DueDate", "Tasks:UtcStartDate",
            "Tasks:UtcDueDate", "Tasks:ReminderSet", "Tasks:ReminderTime",
            "Tasks:OrdinalDate", "Tasks:SubOrdinalDate"])
        self.assertEqual(element[1].text, "1")
        self.assertEqual(element[3].text, "2024-06-03T09:00:00.000Z")
        self.assertEqual(element[9].text, "1")

    def test_badVersion(self):
        """A version that is not one raises ValueError."""
        self.assertRaises(ValueError, serve, load("plain.eml"), "banana")


class AttachmentTests(SynchronousTestCase):
    """
    Attachments are listed with FileReferences and fetched byte for byte.
    """

    def test_listed(self):
        """Inline image, PDF and attached message, in walk order."""
        data = serve(load("attachments.eml"), "14.1")
        listed = child(data, "AirSyncBase", "Attachments")
        rows = [{name.split(":")[1]: el.text for name, el in zip(names(a), a)} for a in listed]
        self.assertEqual(rows, [
            {"DisplayName": "logo.png", "FileReference": "7:42:5", "Method": "1",
             "EstimatedDataSize": str(len(load("logo.png"))), "ContentId": "logo@example.org",
             "IsInline": "1"},
            {"DisplayName": "Rechnung März.pdf", "FileReference": "7:42:6", "Method": "1",
             "EstimatedDataSize": str(len(load("invoice.pdf"))),
             "ContentLocation": "https://files.example.org/invoice.pdf", "IsInline": "0"},
            {"DisplayName": "Original request.eml", "FileReference": "7:42:7", "Method": "5",
             "EstimatedDataSize": str(len(attachment(load("attachments.eml"), 7).data)),
             "IsInline": "0"},
        ])
        self.assertEqual(names(listed[0]), [
            "AirSyncBase:DisplayName", "AirSyncBase:FileReference", "AirSyncBase:Method",
            "AirSyncBase:EstimatedDataSize", "AirSyncBase:ContentId", "AirSyncBase:IsInline"])

    def test_fetchByteExact(self):
        """Fetching by index returns the original file bytes."""
        raw = load("attachments.eml")
        logo = attachment(raw, 5)
        self.assertEqual((logo.content_type, logo.filename), ("image/png", "logo.png"))
        self.assertEqual(logo.data, load("logo.png"))
        pdf = attachment(raw, 6)
        self.assertEqual(pdf.content_type, "application/pdf")
        self.assertEqual(pdf.data, load("invoice.pdf"))

    def test_fetchEmbeddedMessage(self):
        """An attached message is returned as message bytes."""
        message = attachment(load("attachments.eml"), 7)
        self.assertEqual(message.content_type, "message/rfc822")
        self.assertTrue(message.data.startswith(b"From: carol@example.com\n"))
        self.assertIn(b"Please send the invoice.", message.data)

    def test_sizeWithoutDecoding(self):
        """The listed size, computed without decoding, is the decoded size."""
        for path in sorted(DATA.glob("*.eml")):
            raw = path.read_bytes()
            listed = mime.analyse(mime.parse_bytes(raw), with_data=False).attachments
            self.assertEqual([(a.index, a.size) for a in listed],
                             [(a.index, len(a.data)) for a in attachments(raw)], path.name)
            self.assertEqual({a.data for a in listed} - {b""}, set(), path.name)

    def test_nonAttachmentIndexes(self):
        """Body parts, containers and unknown indexes are not attachments."""
        raw = load("attachments.eml")
        for index in (0, 1, 3, 4, 8, -1, 10**6):
            self.assertIsNone(attachment(raw, index), index)

    def test_hasAttachmentsIgnoresInline(self):
        """Only non-inline attachments make has_attachments true."""
        raw = load("attachments.eml")
        self.assertTrue(parse_message(raw, RECEIVED).has_attachments)
        inline_only = raw.split(b"--outer\nContent-Type: application/pdf")[0] + b"--outer--\n"
        self.assertFalse(parse_message(inline_only, RECEIVED).has_attachments)
        self.assertEqual([a.index for a in attachments(inline_only)], [5])

    def test_reportParts(self):
        """An NDR lists its delivery status and returned headers."""
        listed = attachments(load("ndr.eml"))
        self.assertEqual([(a.index, a.filename, a.content_type) for a in listed], [
            (2, "details.txt", "message/delivery-status"),
            (3, "headers.txt", "text/rfc822-headers")])
        self.assertIn(b"Action: failed", listed[0].data)

    def test_signature(self):
        """A clear-signed message lists its signature."""
        [signature] = attachments(load("smime_signed.eml"))
        self.assertEqual((signature.index, signature.filename), (2, "smime.p7s"))
        self.assertEqual(signature.data, bytes(range(48, 248)))

    def test_invitationPartHidden(self):
        """The iMIP part of an invitation is no attachment but is offered to the calendar."""
        raw = load("invite.eml")
        self.assertEqual(attachments(raw), [])
        self.assertNotIn("AirSyncBase:Attachments", names(serve(raw)))
        self.assertIn("METHOD:REQUEST", invitation(raw))
        self.assertIn("SUMMARY:Project kickoff", invitation(raw))
        self.assertIsNone(invitation(load("plain.eml")))

    def test_pathInFilename(self):
        """Path components are stripped from file names."""
        raw = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\r\n--b\r\n"
               b"Content-Type: text/plain; name=\"..\\\\..\\\\evil.txt\"\r\n"
               b"Content-Disposition: attachment; filename=\"../../etc/passwd\"\r\n\r\nx\r\n--b--\r\n")
        [found] = attachments(raw)
        self.assertEqual(found.filename, "passwd")

    def test_defaultName(self):
        """An unnamed attachment gets a name from its index and type."""
        raw = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\r\n--b\r\n"
               b"Content-Type: image/jpeg\r\nContent-Transfer-Encoding: base64\r\n\r\n/9j/\r\n--b--\r\n")
        [found] = attachments(raw)
        self.assertEqual((found.filename, found.data), ("attachment2.jpg", b"\xff\xd8\xff"))


class BodyTests(SynchronousTestCase):
    """
    Body type choice, conversion and truncation.
    """

    def test_defaultPlain(self):
        """Without preferences the body is whole plain text."""
        body = body_of(serve(load("plain.eml")))
        self.assertEqual(body["Type"], "1")
        self.assertTrue(body["Data"].startswith("Hi Bob,\r\n\r\nThe numbers"))
        self.assertEqual(body["EstimatedDataSize"], str(len(body["Data"].encode())))
        self.assertNotIn("Truncated", body)

    def test_htmlAsked(self):
        """An HTML message asked as HTML sends its HTML."""
        body = body_of(serve(load("alternative.eml"), body_preferences=[BodyPreference(2)]))
        self.assertEqual(body["Type"], "2")
        self.assertIn("<b>Friday</b>", body["Data"])

    def test_htmlOnlyAsPlain(self):
        """An HTML-only message asked as plain gets converted text."""
        data = serve(load("html_only.eml"), body_preferences=[BodyPreference(1)])
        body = body_of(data)
        self.assertEqual(body["Type"], "1")
        self.assertEqual(body["Data"].split("\r\n")[:5], [
            "Présentation", "", "Bonjour à tous, voici les nouveautés :", "",
            "- Premier point"])
        self.assertIn("Lisez la suite <https://example.org/news?id=1&lang=fr>.", body["Data"])
        self.assertIn("Café & crème <gratuit>", body["Data"])
        self.assertEqual(child(data, "AirSyncBase", "NativeBodyType").text, "2")

    def test_plainAsHtml(self):
        """A plain message asked as HTML gets escaped HTML."""
        raw = plain_message("1 < 2 & 3\nnext line\n")
        body = body_of(serve(raw, body_preferences=[BodyPreference(2)]))
        self.assertEqual(body["Type"], "2")
        self.assertIn("<body>1 &lt; 2 &amp; 3<br>\r\nnext line<br>\r\n</body>", body["Data"])

    def test_rtfServedAsPlain(self):
        """RTF is not offered: the body comes as plain text."""
        body = body_of(serve(load("plain.eml"), body_preferences=[BodyPreference(3)]))
        self.assertEqual(body["Type"], "1")

    def test_truncationAtCharacterBoundary(self):
        """TruncationSize counts UTF-8 bytes and never splits a character."""
        raw = plain_message("€€€€")   # 3 bytes each, then CR LF
        body = body_of(serve(raw, body_preferences=[BodyPreference(1, truncation_size=8)]))
        self.assertEqual(body["Data"], "€€")
        self.assertEqual(body["Truncated"], "1")
        self.assertEqual(body["EstimatedDataSize"], "12")
        body = body_of(serve(raw, body_preferences=[BodyPreference(1, truncation_size=9)]))
        self.assertEqual(body["Data"], "€€€")

    def test_truncateUtf8(self):
        """Four-byte characters are kept whole or dropped whole."""
        self.assertEqual(truncate_utf8("a𝄞b", 4), ("a", True))
        self.assertEqual(truncate_utf8("a𝄞b", 5), ("a𝄞", True))
        self.assertEqual(truncate_utf8("a𝄞b", 6), ("a𝄞b", False))
        self.assertEqual(truncate_utf8("é", 0), ("", True))

    def test_notTruncatedWhenItFits(self):
        """A body within TruncationSize is whole, with no Truncated."""
        body = body_of(serve(plain_message("short"), body_preferences=[BodyPreference(1, 1000)]))
        self.assertEqual(body["Data"], "short")
        self.assertNotIn("Truncated", body)

    def test_allOrNoneFallsToNextPreference(self):
        """AllOrNone passes over a type that would be cut."""
        prefs = [BodyPreference(2, truncation_size=50, all_or_none=True), BodyPreference(1, 5000)]
        body = body_of(serve(load("alternative.eml"), body_preferences=prefs))
        self.assertEqual(body["Type"], "1")
        self.assertNotIn("Truncated", body)
        self.assertIn("The meeting moved to Friday.", body["Data"])

    def test_allOrNoneWithoutAlternative(self):
        """With no other preference, the body comes without Data, Truncated."""
        prefs = [BodyPreference(2, truncation_size=50, all_or_none=True)]
        body = body_of(serve(load("alternative.eml"), body_preferences=prefs))
        self.assertEqual(body["Type"], "2")
        self.assertEqual(body["Truncated"], "1")
        self.assertNotIn("Data", body)
        full = body_of(serve(load("alternative.eml"), body_preferences=[BodyPreference(2)]))
        self.assertEqual(body["EstimatedDataSize"], full["EstimatedDataSize"])

    def test_allOrNoneWhenItFits(self):
        """AllOrNone with a body that fits sends it whole."""
        prefs = [BodyPreference(1, truncation_size=5000, all_or_none=True)]
        body = body_of(serve(load("plain.eml"), body_preferences=prefs))
        self.assertEqual(body["Type"], "1")
        self.assertIn("Alice", body["Data"])

    def test_preview(self):
        """14.0+ sends Preview after Data; 12.1 never."""
        prefs = [BodyPreference(2, truncation_size=100, preview=20)]
        data = serve(load("plain.eml"), "14.1", body_preferences=prefs)
        body = child(data, "AirSyncBase", "Body")
        self.assertEqual(names(body), ["AirSyncBase:Type", "AirSyncBase:EstimatedDataSize",
                                       "AirSyncBase:Truncated", "AirSyncBase:Data",
                                       "AirSyncBase:Preview"])
        self.assertEqual(body[-1].text, "Hi Bob, The numbers ")
        data = serve(load("plain.eml"), "12.1", body_preferences=prefs)
        self.assertNotIn("AirSyncBase:Preview", names(child(data, "AirSyncBase", "Body")))

    def test_mimeNeedsMimeSupport(self):
        """Type 4 is skipped unless MIMESupport allows it."""
        prefs = [BodyPreference(4), BodyPreference(1)]
        self.assertEqual(body_of(serve(load("plain.eml"), body_preferences=prefs))["Type"], "1")
        self.assertEqual(body_of(serve(load("plain.eml"), body_preferences=prefs,
                                       mime_support=1))["Type"], "1")
        body = body_of(serve(load("plain.eml"), body_preferences=prefs, mime_support=2))
        self.assertEqual(body["Type"], "4")
        self.assertEqual(body["Data"], load("plain.eml").decode("utf-8"))
        self.assertEqual(body["EstimatedDataSize"], str(len(load("plain.eml"))))

    def test_mimeForSmimeOnly(self):
        """MIMESupport 1 sends MIME for S/MIME messages, unchanged."""
        raw = load("smime_signed.eml")
        body = body_of(serve(raw, body_preferences=[BodyPreference(4)], mime_support=1))
        self.assertEqual(body["Type"], "4")
        self.assertEqual(body["Data"].encode(), raw)

    def test_mimeTruncation(self):
        """MIMETruncation codes limit a MIME body; 0 sends no Data."""
        self.assertEqual(MIME_TRUNCATION_SIZES, {0: 0, 1: 4096, 2: 5120, 3: 7168, 4: 10240,
                                                 5: 20480, 6: 51200, 7: 102400, 8: None})
        raw = plain_message("x" * 6000)
        prefs = [BodyPreference(4)]
        body = body_of(serve(raw, "12.1", body_preferences=prefs, mime_support=2, mime_truncation=1))
        self.assertEqual(len(body["Data"]), 4096)
        self.assertEqual(body["Truncated"], "1")
        self.assertEqual(body["EstimatedDataSize"], str(len(raw)))
        body = body_of(serve(raw, "12.1", body_preferences=prefs, mime_support=2, mime_truncation=0))
        self.assertEqual(body["Truncated"], "1")
        self.assertNotIn("Data", body)
        body = body_of(serve(raw, "12.1", body_preferences=prefs, mime_support=2, mime_truncation=8))
        self.assertEqual(body["Data"].encode(), raw)

    def test_truncationSizeOverridesMimeTruncation(self):
        """A TruncationSize on the type-4 preference wins over MIMETruncation."""
        raw = plain_message("x" * 6000)
        body = body_of(serve(raw, body_preferences=[BodyPreference(4, truncation_size=100)],
                             mime_support=2, mime_truncation=8))
        self.assertEqual(len(body["Data"]), 100)

    def test_mimeOfNonUtf8Message(self):
        """A non-UTF-8 8-bit message is re-encoded, its text unchanged."""
        raw = load("eightbit_latin1.eml")
        body = body_of(serve(raw, body_preferences=[BodyPreference(4)], mime_support=2))
        data = body["Data"].encode("utf-8")
        self.assertTrue(data.isascii() or b"Caf\xc3\xa9" in data)
        again = parse_message(data, RECEIVED)
        self.assertEqual(again.subject, "Café crème")
        self.assertEqual(again.from_, '"René Dupont" <rene@example.fr>')
        self.assertEqual(again.body_text_for_search, "Un café crème, s'il vous plaît.\n")

    def test_mimeTextShiftJis(self):
        """A Shift_JIS 8-bit body survives the MIME re-encoding."""
        text = mime.mime_text(load("shift_jis.eml"))
        self.assertEqual(plain_body(text.encode("utf-8")).replace("\r\n", "\n"),
                         "田中様\n\nお世話になっております。\n明日の会議は10時からです。\n")

    def test_controlCharactersDropped(self):
        """Characters XML cannot carry are dropped from the body."""
        body = body_of(serve(plain_message("a\x00b\x0cc\x1bd")))
        self.assertEqual(body["Data"], "abcd")

    def test_controlCharactersDroppedFromFields(self):
        """
        A stored summary field with characters XML cannot carry (a control
        character, an unpaired surrogate) is served without them, and the
        fields beside it are untouched.
        """
        raw = plain_message("hello")
        summary = dataclasses.replace(parse_message(raw, RECEIVED), subject="a\x1bb\udcffc",
                                      thread_topic="t\x00opic", display_to="Bob")
        data = serve(raw, summary=summary)
        self.assertEqual(child(data, "Email", "Subject").text, "abc")
        self.assertEqual(child(data, "Email", "ThreadTopic").text, "topic")
        self.assertEqual(child(data, "Email", "DisplayTo").text, "Bob")
        wbxml.encode(data)

    def test_bodyHelpers(self):
        """plain_body and html_body serve other modules."""
        self.assertEqual(plain_body(load("alternative.eml")),
                         "Hello Bob,\n\nThe meeting moved to Friday.\n\nRegards,\nZoë\n")
        self.assertIn("<b>Friday</b>", html_body(load("alternative.eml")))
        self.assertIn("Café at 10?<br>", html_body(load("plain.eml")))

    def test_mixedInlineText(self):
        """Inline text parts after the first continue the body."""
        raw = (b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
               b"Content-Type: text/plain\r\n\r\nfirst\r\n--b\r\n"
               b"Content-Type: text/plain\r\n\r\nfooter\r\n--b--\r\n")
        self.assertEqual(plain_body(raw), "first\nfooter")
        self.assertEqual(attachments(raw), [])


class ChangeDataTests(SynchronousTestCase):
    """
    L{change_data} carries the mutable state only.
    """

    def test_order121(self):
        """12.1: Read and Flag."""
        data = change_data(ItemState(read=True), version="12.1")
        self.assertEqual(names(data), ["Email:Read", "Email:Flag"])
        self.assertEqual(data[0].text, "1")

    def test_order141(self):
        """14.1: reply state and Categories as well."""
        state = ItemState(read=False, flag=Flag(status=2, flag_type="Follow up"),
                          categories=("Red",), last_verb_executed=3,
                          last_verb_time=datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
        data = change_data(state, version="14.1")
        self.assertEqual(names(data), ["Email:Read", "Email:Flag", "Email2:LastVerbExecuted",
                                       "Email2:LastVerbExecutionTime", "Email:Categories"])
        self.assertEqual(names(data[1]), ["Email:Status", "Email:FlagType"])
        self.assertEqual(data[3].text, "2024-01-02T03:04:05.000Z")
        self.assertEqual([c.text for c in data[4]], ["Red"])

    def test_clearedCategories(self):
        """No categories is an empty Categories element."""
        data = change_data(ItemState(), version="16.1")
        self.assertEqual(len(child(data, "Email", "Categories")), 0)


class CodecTests(SynchronousTestCase):
    """
    The trees use only elements the WBXML code pages define for the version.
    """

    def assertDefinedFor(self, element, version):
        for node in element.iter():
            tag = wbxml.tag_for(node.tag)
            self.assertIsNotNone(tag, node.tag)
            self.assertIn(version, tag.versions, node.tag)

    def test_everyMessageEveryVersion(self):
        """All test messages encode, and every element exists in its version."""
        state = ItemState(read=True, flag=Flag(utc_due_date=RECEIVED), categories=("A",),
                          last_verb_executed=1, last_verb_time=RECEIVED)
        prefs = [BodyPreference(4), BodyPreference(2, 200, preview=100)]
        for path in sorted(DATA.glob("*.eml")):
            raw = path.read_bytes()
            for version in ("12.1", "14.0", "14.1", "16.0", "16.1"):
                for mime_support in (0, 2):
                    data = serve(raw, version, state=state, body_preferences=prefs,
                                 mime_support=mime_support, received_as_bcc=True, is_draft=True)
                    self.assertDefinedFor(data, version)
                    decoded = wbxml.decode(wbxml.encode(data))
                    self.assertEqual(flatten(decoded), flatten(data), (path.name, version))
            self.assertDefinedFor(change_data(state, version="12.1"), "12.1")


# A message-like byte strategy: header lines built from real names and
# arbitrary values, then an arbitrary body, possibly multipart.
_HEADER_NAMES = st.sampled_from([
    b"From", b"To", b"Cc", b"Subject", b"Date", b"Message-ID", b"References",
    b"In-Reply-To", b"Content-Type", b"Content-Transfer-Encoding",
    b"Content-Disposition", b"Thread-Index", b"Importance", b"X-Priority", b"Sender"])
_HEADER_VALUES = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b" ").replace(b"\r", b" ")),
    st.sampled_from([b"multipart/mixed; boundary=b", b"text/html; charset=bogus",
                     b"=?utf-8?B?w6k?= =?x?Q?=FF?=", b"<a@b> <c@d>", b"base64",
                     b"message/rfc822", b"attachment; filename*=utf-8''%FF%FE",
                     b"multipart/alternative; boundary=b", b"text/calendar; method=REQUEST"]))
_MESSAGES = st.builds(
    lambda headers, body: b"".join(n + b": " + v + b"\r\n" for n, v in headers) + b"\r\n" + body,
    st.lists(st.tuples(_HEADER_NAMES, _HEADER_VALUES), max_size=12),
    st.one_of(st.binary(max_size=400), st.lists(st.one_of(
        st.just(b"--b\r\n"), st.just(b"--b--\r\n"), st.just(b"\r\n"),
        st.just(b"Content-Type: text/plain; charset=utf-8\r\n"),
        st.just(b"Content-Transfer-Encoding: base64\r\n"),
        st.binary(max_size=40)), max_size=20).map(b"".join)))


class RobustnessTests(SynchronousTestCase):
    """
    Nothing raises on hostile input.
    """

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=3000))
    def test_parseRandomBytes(self, raw):
        """parse_message returns a summary for any bytes."""
        summary = parse_message(raw, RECEIVED)
        self.assertEqual(summary.size, len(raw))
        self.assertEqual(len(summary.conversation_id), 16)
        self.assertLessEqual(len(summary.preview_text), 255)

    @settings(max_examples=200, deadline=None)
    @given(_MESSAGES)
    def test_serveMessageLikeBytes(self, raw):
        """Mail-shaped garbage parses, serves and encodes as WBXML."""
        summary = parse_message(raw, RECEIVED)
        data = application_data(raw, summary, ItemState(), version="16.1",
                                body_preferences=[BodyPreference(4, 300), BodyPreference(1, 100)],
                                mime_support=2, file_reference_prefix=PREFIX)
        wbxml.encode(data)
        for found in attachments(raw):
            self.assertEqual(attachment(raw, found.index), found)
