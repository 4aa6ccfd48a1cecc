"""
SendMail, SmartReply and SmartForward end to end: requests over TCP to the
real Site, the real store, and a real SMTP relay on a loopback port that
the outbound queue delivers to.  Retry times run on a task.Clock.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import datetime, timezone
from email import message_from_bytes
from email.message import Message

from twisted.internet import reactor, task
from twisted.logger import formatEvent, globalLogPublisher

from bluesync import wbxml
from bluesync.eas.context import ServerContext
from bluesync.items.email import attachments, plain_body
from bluesync.mail.delivery import new_email_item
from bluesync.mail.outbound import OutboundQueue
from bluesync.store import folders as F
from bluesync.web.site import build_site
from tests.eas.client import EASClient, find, text, xml
from tests.eas.mailbox import DATA, sync_request
from tests.mail.smtprelay import Relay
from tests.support import SiteTestCase

PASSWORD = "correct horse"
ORIGINAL = (
    "From: Carol Example <carol@example.net>\r\nTo: Alice <alice@example.org>, dave@example.com\r\n"
    "Subject: Lunch?\r\nDate: Tue, 10 Feb 2026 12:00:00 +0000\r\nMessage-ID: <lunch-1@example.net>\r\n"
    "References: <plans-0@example.net>\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\nShall we meet at noon?\r\nSecond line.\r\n"
).encode()


_hashes: list[str] = []


def password_hash() -> str:
    """PASSWORD hashed once per run: argon2 takes most of a second."""
    if not _hashes:
        from bluesync.passwords import hash_password

        _hashes.append(hash_password(PASSWORD))
    return _hashes[0]


def mime(to: str = "bob@example.org", subject: str = "Hi", body: str = "Hello Bob.", extra: str = "",
         sender: str = "Alice <alice@example.org>") -> bytes:
    from_line = f"From: {sender}\r\n" if sender else ""
    return (
        f"{from_line}To: {to}\r\n{extra}Subject: {subject}\r\nMIME-Version: 1.0\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    ).encode()


def compose_document(command: str, message: bytes, client_id: str | None = "c1", save: bool = False,
                     replace_mime: bool = False, source: dict | None = None, extra: str = ""):
    """A ComposeMail request; the encoder sends Mime as OPAQUE (the 16.x form)."""
    parts = [f'<{command} xmlns="ComposeMail:">']
    if client_id is not None:
        parts.append(f"<ClientId>{client_id}</ClientId>")
    if source is not None:
        parts.append("<Source>" + "".join(f"<{k}>{v}</{k}>" for k, v in source.items()) + "</Source>")
    if save:
        parts.append("<SaveInSentItems/>")
    if replace_mime:
        parts.append("<ReplaceMime/>")
    parts.append(extra + f"<Mime/></{command}>")
    document = xml("".join(parts))
    wbxml.set_opaque(document.find("{ComposeMail:}Mime"), message)
    return document


def inline_send_mail(client_id: str, message: bytes, save: bool = False) -> bytes:
    """
    SendMail WBXML with Mime as an inline string, as 14.x phones send it
    (the encoder would send OPAQUE): ComposeMail is code page 21.
    """
    body = b"\x03\x01\x6a\x00\x00\x15\x45"
    body += b"\x51\x03" + client_id.encode() + b"\x00\x01"
    if save:
        body += b"\x08"
    body += b"\x50\x03" + message + b"\x00\x01"
    return body + b"\x01"


class SendMailTestCase(SiteTestCase):
    pool_size = 4
    # The commands' clock; None: the task.Clock the queue runs on.
    context_clock = None

    async def _set_up(self) -> None:
        await super()._set_up()
        self.clock = task.Clock()
        self.clock.advance(int(time.time()))
        self.relay = Relay(reactor)
        await self.relay.start()
        self.addCleanup(self.relay.stop)
        self.serve(self.mail_settings())
        self.alice = await self.store.create_account("alice@example.org", "Alice Martin", password_hash())
        self.bob = await self.store.create_account("bob@example.org", "Bob", password_hash())
        await self.store.accounts.add_alias("alice@example.org", "a.martin@example.org")
        self.client = await self.provisioned("alice@example.org", "PHONEA")

    def mail_settings(self, **changes):
        mail = dataclasses.replace(
            self.config.mail, relay_host="127.0.0.1", relay_port=self.relay.port, relay_starttls="no",
            hostname="bluesync.test", retry_delays=(60.0,), give_up_after=3600.0, relay_timeout=20.0,
        )
        return dataclasses.replace(mail, **changes)

    def serve(self, mail) -> None:
        """The Site again, with a queue for C{mail} settings in its context."""
        self.config = dataclasses.replace(self.config, mail=mail)
        self.queue = OutboundQueue(self.store, mail, reactor, self.clock)
        self.addCleanup(self.queue.stop)
        context = ServerContext(config=self.config, store=self.store, clock=self.context_clock or self.clock,
                                notifier=self.notifier, outbound=self.queue)
        port = reactor.listenTCP(0, build_site(context), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.base_url = f"http://127.0.0.1:{port.getHost().port}"

    async def provisioned(self, user: str, device_id: str, version: str = "16.1") -> EASClient:
        client = EASClient(self.base_url, user, PASSWORD, device_id=device_id, version=version, pool=self.pool)
        await client.provision()
        return client

    async def folder(self, account, folder_type: int):
        return await self.store.folders.by_type(account.id, folder_type)

    async def stored(self, account, folder_type: int = F.INBOX) -> list[bytes]:
        folder = await self.folder(account, folder_type)
        batch = await self.store.items.changes(account.id, folder.id, 0, 100)
        return [change.item.content for change in batch.changes]

    async def deliver(self, raw: bytes, account=None) -> int:
        account = account or self.alice
        inbox = await self.folder(account, F.INBOX)
        (item_id,) = await self.store.items.deliver([(account.id, inbox.id)],
                                                    new_email_item(raw, datetime.now(timezone.utc)))
        return item_id

    async def relayed(self) -> list:
        await self.queue.idle()
        return self.relay.messages

    async def sync(self, client, folder, key: str):
        answer = await client.post("Sync", sync_request(folder.server_id, key))
        self.assertEqual(answer.code, 200, answer)
        return answer

    def assertStatus(self, answer, command: str, status: int) -> None:
        self.assertEqual(answer.code, 200, answer)
        self.assertEqual(text(answer.document, f"/composemail:{command}/composemail:Status"), str(status), answer)

    def assertSent(self, answer) -> None:
        self.assertEqual((answer.code, answer.body), (200, b""), answer)


def _parsed(data: bytes) -> Message:
    return message_from_bytes(data)


class SendMailTests(SendMailTestCase):
    async def test_local_recipient_inline_mime(self):
        """14.1 SendMail with an inline-string Mime lands in the local recipient's Inbox, seen by their Sync."""
        client = await self.provisioned("alice@example.org", "PHONE141", "14.1")
        answer = await client.post("SendMail", body=inline_send_mail("m-1", mime(body="Lunch at one?")))
        self.assertSent(answer)
        bob = await self.provisioned("bob@example.org", "BOBPHONE")
        inbox = await self.folder(self.bob, F.INBOX)
        first = await self.sync(bob, inbox, "0")
        answer = await self.sync(bob, inbox, text(first.document, "//airsync:SyncKey"))
        (add,) = find(answer.document, "//airsync:Add/airsync:ApplicationData")
        self.assertEqual(text(add, "email:Subject"), "Hi")
        self.assertEqual(text(add, "email:From"), '"Alice" <alice@example.org>')
        self.assertIn("Lunch at one?", text(add, "airsyncbase:Body/airsyncbase:Data"))
        self.assertEqual(await self.relayed(), [])
        self.assertEqual(await self.stored(self.alice, F.SENT_ITEMS), [])

    async def test_external_recipient_bcc_stripped(self):
        """16.1 SendMail (opaque Mime) to other domains reaches the relay without Bcc, the Sent copy keeps it."""
        message = mime(to="Zoe <zoe@example.net>", extra="Cc: yann@example.com\r\nBcc: Xavier <xavier@example.com>\r\n")
        answer = await self.client.post("SendMail", compose_document("SendMail", message, save=True))
        self.assertSent(answer)
        (received,) = await self.relayed()
        self.assertEqual(received.mail_from, "alice@example.org")
        self.assertEqual(set(received.recipients), {"zoe@example.net", "yann@example.com", "xavier@example.com"})
        sent = _parsed(received.data)
        self.assertIsNone(sent["Bcc"])
        self.assertNotIn(b"xavier", received.data.lower())
        self.assertEqual(sent["From"], "Alice <alice@example.org>")
        self.assertTrue(sent["Message-ID"].endswith("@bluesync.test>"))
        self.assertIsNotNone(sent["Date"])
        (copy,) = await self.stored(self.alice, F.SENT_ITEMS)
        self.assertEqual(_parsed(copy)["Bcc"], "Xavier <xavier@example.com>")
        self.assertEqual(_parsed(copy)["Message-ID"], sent["Message-ID"])
        self.assertEqual(await self.stored(self.bob), [])

    async def test_sent_items_copy_is_read_and_synced(self):
        """SaveInSentItems puts a read copy in Sent Items, which the device syncs."""
        answer = await self.client.post("SendMail", compose_document("SendMail", mime(), save=True))
        self.assertSent(answer)
        sent = await self.folder(self.alice, F.SENT_ITEMS)
        first = await self.sync(self.client, sent, "0")
        answer = await self.sync(self.client, sent, text(first.document, "//airsync:SyncKey"))
        (add,) = find(answer.document, "//airsync:Add/airsync:ApplicationData")
        self.assertEqual((text(add, "email:Subject"), text(add, "email:Read")), ("Hi", "1"))
        self.assertEqual(text(add, "email:To"), "bob@example.org")

    async def test_rfc822_form(self):
        """12.1 SendMail: the MIME body with SaveInSent=T reaches a local and an external recipient."""
        client = await self.provisioned("alice@example.org", "PHONE121", "12.1")
        message = mime(to="bob@example.org, zoe@example.net")
        answer = await client.post("SendMail", body=message, params={"SaveInSent": "T"},
                                   headers={"Content-Type": "message/rfc822"})
        self.assertSent(answer)
        self.assertEqual(len(await self.stored(self.bob)), 1)
        self.assertEqual([m.recipients for m in await self.relayed()], [("zoe@example.net",)])
        self.assertEqual(len(await self.stored(self.alice, F.SENT_ITEMS)), 1)

    async def test_resent_client_id(self):
        """The same ClientId again is answered 118 and sends nothing more."""
        document = compose_document("SendMail", mime(to="bob@example.org, zoe@example.net"), client_id="42")
        self.assertSent(await self.client.post("SendMail", document))
        self.assertStatus(await self.client.post("SendMail", document), "SendMail", 118)
        self.assertEqual(len(await self.relayed()), 1)
        self.assertEqual(len(await self.stored(self.bob)), 1)
        other = await self.provisioned("alice@example.org", "PHONEB")
        self.assertSent(await other.post("SendMail", document))
        self.assertEqual(len(await self.stored(self.bob)), 2)

    async def test_resent_rfc822_message_id(self):
        """12.1 has no ClientId: the same Message-ID resent is answered 200 and sent once."""
        client = await self.provisioned("alice@example.org", "PHONE121", "12.1")
        message = mime(extra="Message-ID: <once@example.org>\r\n")
        for _ in range(2):
            answer = await client.post("SendMail", body=message, headers={"Content-Type": "message/rfc822"})
            self.assertSent(answer)
        self.assertEqual(len(await self.stored(self.bob)), 1)

    async def test_alias_and_display_name(self):
        """A From with an alias or another display name of the account is sent as written."""
        message = mime(sender="Dr. A. Martin <A.Martin@example.org>")
        self.assertSent(await self.client.post("SendMail", compose_document("SendMail", message)))
        (delivered,) = await self.stored(self.bob)
        self.assertEqual(_parsed(delivered)["From"], "Dr. A. Martin <A.Martin@example.org>")

    async def test_missing_from(self):
        """A message without From gets the account's name and address."""
        self.assertSent(await self.client.post("SendMail", compose_document("SendMail", mime(sender=""))))
        (delivered,) = await self.stored(self.bob)
        self.assertEqual(_parsed(delivered)["From"], "Alice Martin <alice@example.org>")

    async def test_forged_from(self):
        """A From the account does not own is refused with 130 (403 in 12.1) and nothing is sent."""
        forged = mime(to="bob@example.org, zoe@example.net", sender="Boss <ceo@example.org>")
        self.assertStatus(await self.client.post("SendMail", compose_document("SendMail", forged)), "SendMail", 130)
        client = await self.provisioned("alice@example.org", "PHONE121", "12.1")
        answer = await client.post("SendMail", body=forged, headers={"Content-Type": "message/rfc822"})
        self.assertEqual(answer.code, 403)
        self.assertEqual(await self.stored(self.bob), [])
        self.assertEqual(await self.relayed(), [])

    async def test_forged_sender_header(self):
        """A Sender header naming someone else is refused like a forged From."""
        forged = mime(extra="Sender: ceo@example.org\r\n")
        self.assertStatus(await self.client.post("SendMail", compose_document("SendMail", forged)), "SendMail", 130)

    async def test_bad_requests(self):
        """Missing Mime, unreadable MIME, no recipients and AccountId get their status codes."""
        cases = [
            (xml('<SendMail xmlns="ComposeMail:"><ClientId>1</ClientId></SendMail>'), 103),
            (compose_document("SendMail", b"\x00\x01 not a message", client_id="2"), 107),
            (compose_document("SendMail", mime(to="undisclosed-recipients:;"), client_id="3"), 119),
            (compose_document("SendMail", mime(to="bob at home"), client_id="4"), 116),
            (compose_document("SendMail", mime(), client_id="5", extra="<AccountId>7</AccountId>"), 166),
            (xml('<SmartReply xmlns="ComposeMail:"><ClientId>6</ClientId></SmartReply>'), 103),
        ]
        for document, status in cases:
            self.assertStatus(await self.client.post("SendMail", document), "SendMail", status)
        self.assertEqual(await self.stored(self.bob), [])

    async def test_local_delivery_wakes_ping(self):
        """A held Ping of the recipient's Inbox answers 2 when the message arrives."""
        bob = await self.provisioned("bob@example.org", "BOBPHONE")
        folders = await bob.post("FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>')
        self.assertEqual(folders.code, 200)
        inbox = await self.folder(self.bob, F.INBOX)
        first = await self.sync(bob, inbox, "0")
        await self.sync(bob, inbox, text(first.document, "//airsync:SyncKey"))
        ping = bob.post("Ping", '<Ping xmlns="Ping:"><HeartbeatInterval>300</HeartbeatInterval><Folders><Folder>'
                        f"<Id>{inbox.server_id}</Id><Class>Email</Class></Folder></Folders></Ping>")
        self.assertSent(await self.client.post("SendMail", compose_document("SendMail", mime())))
        answer = await ping
        self.assertEqual(text(answer.document, "/ping:Ping/ping:Status"), "2")
        self.assertEqual(text(answer.document, "//ping:Folder"), inbox.server_id)


class RelayTests(SendMailTestCase):
    async def test_no_relay(self):
        """Without a relay, mail to other domains gets 120 and nothing is stored, so a later retry works."""
        self.serve(self.mail_settings(relay_host=""))
        self.client = await self.provisioned("alice@example.org", "PHONEA")
        events = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        document = compose_document("SendMail", mime(to="bob@example.org, zoe@example.net"), save=True)
        self.assertStatus(await self.client.post("SendMail", document), "SendMail", 120)
        self.assertTrue(any("[mail] relay_host" in formatEvent(e) for e in events))
        self.assertEqual(await self.stored(self.bob), [])
        self.assertEqual(await self.stored(self.alice, F.SENT_ITEMS), [])
        self.assertEqual(await self.store.outbound.list(), [])
        client121 = await self.provisioned("alice@example.org", "PHONE121", "12.1")
        answer = await client121.post("SendMail", body=mime(to="zoe@example.net"),
                                      headers={"Content-Type": "message/rfc822"})
        self.assertEqual(answer.code, 500)
        self.serve(self.mail_settings())
        self.client.base_url = self.base_url
        self.assertSent(await self.client.post("SendMail", document))
        self.assertEqual(len(await self.relayed()), 1)
        self.assertEqual(len(await self.stored(self.bob)), 1)

    async def test_no_relay_local_only(self):
        """Without a relay, mail between local accounts still flows."""
        self.serve(self.mail_settings(relay_host=""))
        self.client = await self.provisioned("alice@example.org", "PHONEA")
        self.assertSent(await self.client.post("SendMail", compose_document("SendMail", mime())))
        self.assertEqual(len(await self.stored(self.bob)), 1)

    async def test_relay_down_then_up(self):
        """A message accepted while the relay is down is delivered exactly once when it returns."""
        await self.relay.stop()
        self.assertSent(await self.client.post("SendMail", compose_document("SendMail", mime(to="zoe@example.net"))))
        await self.queue.idle()
        (row,) = await self.store.outbound.list(self.alice.id)
        self.assertEqual((row.state, row.attempts), ("queued", 1))
        await self.relay.start()
        for _ in range(4):
            self.clock.advance(60)
            await self.queue.idle()
        self.assertEqual([m.recipients for m in self.relay.messages], [("zoe@example.net",)])
        (row,) = await self.store.outbound.list(self.alice.id)
        self.assertEqual(row.state, "sent")

    async def test_permanent_failure_report(self):
        """A 5xx from the relay puts a non-delivery report in the sender's Inbox, which the phone syncs."""
        self.relay.rcpt_replies["nobody@example.net"] = (550, "5.1.1 user unknown")
        document = compose_document("SendMail", mime(to="nobody@example.net, zoe@example.net", subject="Party"))
        self.assertSent(await self.client.post("SendMail", document))
        self.assertEqual([m.recipients for m in await self.relayed()], [("zoe@example.net",)])
        inbox = await self.folder(self.alice, F.INBOX)
        first = await self.sync(self.client, inbox, "0")
        answer = await self.sync(self.client, inbox, text(first.document, "//airsync:SyncKey"))
        (add,) = find(answer.document, "//airsync:Add/airsync:ApplicationData")
        self.assertEqual(text(add, "email:MessageClass"), "REPORT.IPM.Note.NDR")
        self.assertEqual(text(add, "email:Subject"), "Undeliverable: Party")
        body = text(add, "airsyncbase:Body/airsyncbase:Data")
        self.assertIn("nobody@example.net", body)
        self.assertNotIn("zoe@example.net", body)

    async def test_disabled_local_recipient(self):
        """A disabled local account gets nothing; the sender gets a report naming it."""
        await self.store.accounts.set_disabled("bob@example.org", True)
        self.assertSent(await self.client.post("SendMail", compose_document("SendMail", mime())))
        self.assertEqual(await self.stored(self.bob), [])
        (report,) = await self.stored(self.alice)
        self.assertIn(b"Final-Recipient: rfc822; bob@example.org", report)
        self.assertIn(b"Status: 5.2.1", report)


class SmartReplyTests(SendMailTestCase):
    async def _set_up(self) -> None:
        await super()._set_up()
        self.original = await self.deliver(ORIGINAL)
        self.inbox = await self.folder(self.alice, F.INBOX)
        self.server_id = f"{self.inbox.id}:{self.original}"

    async def test_quotes_original_and_sets_verb(self):
        """SmartReply quotes the original, threads it, and another device sees LastVerbExecuted 1."""
        other = await self.provisioned("alice@example.org", "TABLET")
        first = await self.sync(other, self.inbox, "0")
        synced = await self.sync(other, self.inbox, text(first.document, "//airsync:SyncKey"))
        key = text(synced.document, "//airsync:SyncKey")
        reply = mime(to="carol@example.net", subject="Re: Lunch?", body="Yes, noon works.")
        document = compose_document("SmartReply", reply, source={"FolderId": self.inbox.id, "ItemId": self.server_id})
        self.assertSent(await self.client.post("SmartReply", document))
        (received,) = await self.relayed()
        sent = _parsed(received.data)
        self.assertEqual(sent["In-Reply-To"], "<lunch-1@example.net>")
        self.assertEqual(sent["References"], "<plans-0@example.net> <lunch-1@example.net>")
        body = plain_body(received.data)
        self.assertIn("Yes, noon works.", body)
        self.assertIn("> Shall we meet at noon?", body)
        self.assertIn("> Second line.", body)
        self.assertIn("Carol Example", body)
        self.assertLess(body.index("Yes, noon works."), body.index("> Shall we meet"))
        answer = await self.sync(other, self.inbox, key)
        (change,) = find(answer.document, "//airsync:Change")
        self.assertEqual(text(change, "airsync:ServerId"), self.server_id)
        self.assertEqual(text(change, "airsync:ApplicationData/email2:LastVerbExecuted"), "1")
        self.assertIsNotNone(text(change, "airsync:ApplicationData/email2:LastVerbExecutionTime"))
        item = await self.store.items.get(self.alice.id, self.original, with_content=False)
        self.assertEqual(item.last_verb, 1)

    async def test_reply_all_verb(self):
        """A reply that also goes to the original's other recipients is Reply All (verb 2)."""
        reply = mime(to="carol@example.net", extra="Cc: dave@example.com\r\n", subject="Re: Lunch?")
        document = compose_document("SmartReply", reply, source={"ItemId": self.server_id})
        self.assertSent(await self.client.post("SmartReply", document))
        item = await self.store.items.get(self.alice.id, self.original, with_content=False)
        self.assertEqual(item.last_verb, 2)

    async def test_replace_mime(self):
        """With ReplaceMime the device's message goes as written, without a second quote."""
        reply = mime(to="carol@example.net", body="Yes.\r\n\r\n> Shall we meet at noon?")
        document = compose_document("SmartReply", reply, replace_mime=True, source={"ItemId": self.server_id})
        self.assertSent(await self.client.post("SmartReply", document))
        (received,) = await self.relayed()
        self.assertEqual(plain_body(received.data).count("Shall we meet"), 1)
        self.assertEqual(_parsed(received.data)["In-Reply-To"], "<lunch-1@example.net>")

    async def test_html_reply(self):
        """An HTML reply gets the original quoted in a blockquote inside its body."""
        reply = (
            "From: alice@example.org\r\nTo: carol@example.net\r\nSubject: Re: Lunch?\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/alternative; boundary="b"\r\n\r\n--b\r\n'
            "Content-Type: text/plain; charset=utf-8\r\n\r\nSure.\r\n--b\r\n"
            "Content-Type: text/html; charset=utf-8\r\n\r\n<html><body><p>Sure.</p></body></html>\r\n--b--\r\n"
        ).encode()
        document = compose_document("SmartReply", reply, source={"ItemId": self.server_id})
        self.assertSent(await self.client.post("SmartReply", document))
        (received,) = await self.relayed()
        sent = _parsed(received.data)
        plain, markup = [part.get_payload(decode=True).decode() for part in sent.get_payload()]
        self.assertIn("> Shall we meet at noon?", plain)
        self.assertRegex(markup, r"(?s)<p>Sure\.</p>.*<blockquote[^>]*>.*Shall we meet at noon\?.*</blockquote>"
                                 r".*</body></html>")

    async def test_unknown_original(self):
        """A source that is not the account's item gets 150 (500 in 12.1)."""
        other = await self.deliver(ORIGINAL, account=self.bob)
        bob_inbox = await self.folder(self.bob, F.INBOX)
        for item_id in (f"{bob_inbox.id}:{other}", "999:999", "garbage"):
            document = compose_document("SmartReply", mime(to="carol@example.net"), client_id=item_id,
                                        source={"ItemId": item_id})
            self.assertStatus(await self.client.post("SmartReply", document), "SmartReply", 150)
        client = await self.provisioned("alice@example.org", "PHONE121", "12.1")
        answer = await client.post("SmartReply", body=mime(to="carol@example.net"),
                                   params={"ItemId": "999:999", "CollectionId": "999"},
                                   headers={"Content-Type": "message/rfc822"})
        self.assertEqual(answer.code, 500)
        self.assertEqual(await self.relayed(), [])

    async def test_rfc822_form(self):
        """12.1 SmartReply names the original in the query string and gets the quote too."""
        client = await self.provisioned("alice@example.org", "PHONE121", "12.1")
        answer = await client.post("SmartReply", body=mime(to="carol@example.net", body="Noon it is."),
                                   params={"ItemId": self.server_id, "CollectionId": self.inbox.id},
                                   headers={"Content-Type": "message/rfc822"})
        self.assertSent(answer)
        (received,) = await self.relayed()
        self.assertIn("> Shall we meet at noon?", plain_body(received.data))
        item = await self.store.items.get(self.alice.id, self.original, with_content=False)
        self.assertEqual(item.last_verb, 1)


class SmartForwardTests(SendMailTestCase):
    async def _set_up(self) -> None:
        await super()._set_up()
        self.original = await self.deliver((DATA / "attachments.eml").read_bytes())
        self.inbox = await self.folder(self.alice, F.INBOX)
        self.server_id = f"{self.inbox.id}:{self.original}"

    async def test_carries_attachments(self):
        """SmartForward sends the original's text and attachments; the original gets verb 3."""
        message = mime(to="zoe@example.net", subject="Fw: Invoice", body="See the invoice below.")
        document = compose_document("SmartForward", message, save=True, source={"ItemId": self.server_id})
        self.assertSent(await self.client.post("SmartForward", document))
        (received,) = await self.relayed()
        names = [a.filename for a in attachments(received.data)]
        self.assertEqual(names, ["logo.png", "Rechnung März.pdf", "Original request.eml"])
        original_pdf = [a for a in attachments((DATA / "attachments.eml").read_bytes()) if a.filename.endswith(".pdf")]
        sent_pdf = [a for a in attachments(received.data) if a.filename.endswith(".pdf")]
        self.assertEqual(sent_pdf[0].data, original_pdf[0].data)
        body = plain_body(received.data)
        self.assertIn("See the invoice below.", body)
        self.assertIn("Forwarded message", body)
        self.assertIn("Here is the invoice.", body)
        (copy,) = await self.stored(self.alice, F.SENT_ITEMS)
        self.assertEqual(len(attachments(copy)), 3)
        item = await self.store.items.get(self.alice.id, self.original, with_content=False)
        self.assertEqual(item.last_verb, 3)

    async def test_replace_mime(self):
        """With ReplaceMime the original's attachments are not added."""
        message = mime(to="zoe@example.net", subject="Fw: Invoice", body="Just the text.")
        document = compose_document("SmartForward", message, replace_mime=True, source={"ItemId": self.server_id})
        self.assertSent(await self.client.post("SmartForward", document))
        (received,) = await self.relayed()
        self.assertEqual(attachments(received.data), [])
        self.assertEqual(plain_body(received.data).strip(), "Just the text.")
        item = await self.store.items.get(self.alice.id, self.original, with_content=False)
        self.assertEqual(item.last_verb, 3)

    async def test_local_forward(self):
        """A forward to a local account arrives with the attachments in its Inbox."""
        document = compose_document("SmartForward", mime(subject="Fw: Invoice"), source={"LongId": self.server_id})
        self.assertSent(await self.client.post("SmartForward", document))
        (delivered,) = await self.stored(self.bob)
        self.assertEqual(len(attachments(delivered)), 3)
        self.assertEqual(await self.relayed(), [])


class LargeMessageTests(SendMailTestCase):
    context_clock = reactor

    async def test_large_forward(self):
        """A forward of megabytes is composed off the reactor thread and arrives whole."""
        payload = bytes(range(256)) * 4096
        import base64

        encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
        original = (b"From: carol@example.net\r\nTo: alice@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
                    b"Content-Type: multipart/mixed; boundary=z\r\n\r\n--z\r\nContent-Type: text/plain\r\n\r\n"
                    b"Big file.\r\n--z\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Disposition: attachment; filename=big.bin\r\nContent-Transfer-Encoding: base64\r\n\r\n"
                    + encoded + b"--z--\r\n")
        item_id = await self.deliver(original)
        inbox = await self.folder(self.alice, F.INBOX)
        document = compose_document("SmartForward", mime(subject="Fw: big"), source={"ItemId": f"{inbox.id}:{item_id}"})
        self.assertSent(await self.client.post("SmartForward", document))
        (delivered,) = await self.stored(self.bob)
        (attachment,) = attachments(delivered)
        self.assertEqual((attachment.filename, attachment.data), ("big.bin", payload))


class OptionsTests(SendMailTestCase):
    async def test_advertised(self):
        """OPTIONS lists the three commands."""
        response = await self.http("OPTIONS", "/Microsoft-Server-ActiveSync", headers={
            "Authorization": [self.client._headers(None)["Authorization"][0]]})
        listed = response.headers.getRawHeaders("ms-asprotocolcommands")[0].split(",")
        self.assertTrue({"SendMail", "SmartReply", "SmartForward"} <= set(listed))

    def http(self, method, path, **kwargs):
        import treq

        return treq.request(method, self.base_url + path, pool=self.pool, **kwargs)
