"""
Drafts through Sync (16.x) end to end: WBXML over TCP to the real Site and
the real store.  One phone writes drafts, a second phone of the same
account watches them change.
"""

from __future__ import annotations

import base64

from lxml import etree

from bluesync import wbxml
from bluesync.items.email import attachments, parse_message
from bluesync.store import folders as F
from tests.eas.client import find, text, xml
from tests.eas.mailbox import PLAIN, MailboxTestCase

INVOICE = b"%PDF-1.4\n" + bytes(range(256)) * 8
PHOTO = b"\x89PNG\r\n\x1a\n" + b"\x00pixels" * 50

NAMESPACES = ('xmlns="AirSync:" xmlns:airsyncbase="AirSyncBase:" xmlns:email="Email:" xmlns:email2="Email2:"'
              ' xmlns:itemoperations="ItemOperations:"')


def attachment_add(client_id: str, name: str, content_type: str = "", inline: bool = False,
                   content_id: str = "") -> str:
    return (
        f"<airsyncbase:Add><airsyncbase:ClientId>{client_id}</airsyncbase:ClientId>"
        f"<airsyncbase:DisplayName>{name}</airsyncbase:DisplayName><airsyncbase:Content/>"
        "<airsyncbase:Method>1</airsyncbase:Method>"
        + (f"<airsyncbase:ContentType>{content_type}</airsyncbase:ContentType>" if content_type else "")
        + (f"<airsyncbase:ContentId>{content_id}</airsyncbase:ContentId>" if content_id else "")
        + ("<airsyncbase:IsInline>1</airsyncbase:IsInline>" if inline else "")
        + "</airsyncbase:Add>"
    )


def attachment_delete(reference: str) -> str:
    return (f"<airsyncbase:Delete><airsyncbase:FileReference>{reference}</airsyncbase:FileReference>"
            "</airsyncbase:Delete>")


def body(text_value: str, body_type: int = 1) -> str:
    return (f"<airsyncbase:Body><airsyncbase:Type>{body_type}</airsyncbase:Type>"
            f"<airsyncbase:Data>{text_value}</airsyncbase:Data></airsyncbase:Body>")


def draft_fields(subject="Quarterly figures", to="Bob Example &lt;bob@example.net&gt;",
                 bcc="Boss &lt;boss@example.org&gt;", text_body="Numbers attached.", extra="") -> str:
    return (f"<email:To>{to}</email:To><email2:Bcc>{bcc}</email2:Bcc><email:Subject>{subject}</email:Subject>"
            f"<email:Importance>2</email:Importance>{body(text_body)}{extra}")


def add(client_id: str, data: str, send: bool = False) -> str:
    return (f"<Add><ClientId>{client_id}</ClientId><ApplicationData>{data}</ApplicationData>"
            + ("<email2:Send/>" if send else "") + "</Add>")


def change(server_id: str, data: str, send: bool = False) -> str:
    return (f"<Change><ServerId>{server_id}</ServerId><ApplicationData>{data}</ApplicationData>"
            + ("<email2:Send/>" if send else "") + "</Change>")


def sync_document(collection_id: str, key: str, commands: str = "", contents: dict | None = None):
    """
    A Sync request; C{contents} gives the bytes of each attachment Add by
    its ClientId (airsyncbase:Content is opaque).
    """
    document = xml(
        f"<Sync {NAMESPACES}><Collections><Collection><SyncKey>{key}</SyncKey>"
        f"<CollectionId>{collection_id}</CollectionId><Options>{PLAIN}</Options>"
        + (f"<Commands>{commands}</Commands>" if commands else "")
        + "</Collection></Collections></Sync>"
    )
    for element in document.iter("{AirSyncBase:}Add"):
        client_id = element.findtext("{AirSyncBase:}ClientId")
        wbxml.set_opaque(element.find("{AirSyncBase:}Content"), (contents or {})[client_id])
    return document


def responses(answer, kind: str):
    return find(answer.document, f"//airsync:Responses/airsync:{kind}")


def file_references(response) -> dict[str, str]:
    return {text(a, "airsyncbase:ClientId"): text(a, "airsyncbase:FileReference")
            for a in find(response, "airsync:ApplicationData/airsyncbase:Attachments/airsyncbase:Attachment")}


def key_of(answer) -> str:
    return text(answer.document, "//airsync:Collection/airsync:SyncKey")


class DraftsTestCase(MailboxTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.drafts = await self.folder(F.DRAFTS)
        self.tablet = await self.provisioned("TABLETB")

    async def post(self, client, key: str, commands: str = "", contents: dict | None = None, folder=None):
        answer = await client.post("Sync", sync_document((folder or self.drafts).server_id, key, commands, contents))
        self.assertEqual(answer.code, 200, answer)
        return answer

    async def first_key(self, client, folder=None) -> str:
        return key_of(await self.post(client, "0", folder=folder))

    async def create(self, client_id="d1", fields=None, attachments_xml=None, contents=None, send=False):
        """
        The phone's first Sync of Drafts with one Add; (answer, ServerId,
        the phone's new key).
        """
        key = await self.first_key(self.client)
        extra = attachments_xml if attachments_xml is not None else attachment_add("att1", "Rechnung März.pdf",
                                                                                   "application/pdf")
        data = (fields or draft_fields()) + (f"<airsyncbase:Attachments>{extra}</airsyncbase:Attachments>"
                                             if extra else "")
        answer = await self.post(self.client, key, add(client_id, data, send),
                                 contents if contents is not None else {"att1": INVOICE})
        (response,) = responses(answer, "Add")
        return answer, text(response, "airsync:ServerId"), key

    async def watch(self):
        """The tablet's Drafts from scratch: (key, Add ApplicationData by ServerId)."""
        key = await self.first_key(self.tablet)
        answer = await self.post(self.tablet, key)
        adds = {text(a, "airsync:ServerId"): a.find("{AirSync:}ApplicationData")
                for a in find(answer.document, "//airsync:Commands/airsync:Add")}
        return key_of(answer), adds

    async def stored(self, folder=None) -> list:
        folder = folder or self.drafts
        batch = await self.store.items.changes(self.account.id, folder.id, 0, 100)
        return [c.item for c in batch.changes if c.item is not None]


class DraftAddTests(DraftsTestCase):
    async def test_add_maps_attachment(self):
        """An Add is answered ClientId, ServerId, Status 1 and the attachment's ClientId -> FileReference."""
        answer, server_id, _ = await self.create()
        (response,) = responses(answer, "Add")
        self.assertEqual([etree.QName(e).localname for e in response],
                         ["ClientId", "ServerId", "Status", "ApplicationData"])
        self.assertEqual(text(response, "airsync:ClientId"), "d1")
        self.assertEqual(text(response, "airsync:Status"), "1")
        self.assertTrue(server_id.startswith(f"{self.drafts.id}:"))
        self.assertEqual(file_references(response), {"att1": f"{server_id}:2"})
        self.assertEqual(find(answer.document, "//airsync:Commands"), [])

    async def test_other_device_sees_draft(self):
        """The tablet gets the draft with IsDraft 1, the Bcc, the subject and the attachment listed."""
        _, server_id, _ = await self.create()
        _, adds = await self.watch()
        data = adds[server_id]
        self.assertEqual(text(data, "email2:IsDraft"), "1")
        self.assertEqual(text(data, "email2:Bcc"), '"Boss" <boss@example.org>')
        self.assertEqual(text(data, "email:To"), '"Bob Example" <bob@example.net>')
        self.assertEqual(text(data, "email:From"), '"Alice" <alice@example.org>')
        self.assertEqual(text(data, "email:Subject"), "Quarterly figures")
        self.assertEqual(text(data, "email:Importance"), "2")
        self.assertEqual(text(data, "email:Read"), "1")
        self.assertIn("Numbers attached.", text(data, "airsyncbase:Body/airsyncbase:Data"))
        (attachment,) = find(data, "airsyncbase:Attachments/airsyncbase:Attachment")
        self.assertEqual(text(attachment, "airsyncbase:DisplayName"), "Rechnung März.pdf")
        self.assertEqual(text(attachment, "airsyncbase:FileReference"), f"{server_id}:2")
        self.assertEqual(text(attachment, "airsyncbase:EstimatedDataSize"), str(len(INVOICE)))

    async def test_file_reference_fetches_content(self):
        """The FileReference returned for the attachment fetches the bytes the phone sent."""
        _, server_id, _ = await self.create()
        answer = await self.client.post("ItemOperations", xml(
            f'<ItemOperations xmlns="ItemOperations:" xmlns:airsyncbase="AirSyncBase:"><Fetch><Store>Mailbox</Store>'
            f"<airsyncbase:FileReference>{server_id}:2</airsyncbase:FileReference></Fetch></ItemOperations>"))
        data = text(answer.document, "//itemoperations:Fetch/itemoperations:Properties/itemoperations:Data")
        self.assertEqual(base64.b64decode(data), INVOICE)

    async def test_large_attachment(self):
        """A draft with a 2 MB attachment (written off the reactor thread) keeps every byte of it."""
        big = bytes(range(256)) * 8192
        await self.create(attachments_xml=attachment_add("big", "big.bin"), contents={"big": big})
        (item,) = await self.stored()
        self.assertEqual([(a.index, a.data) for a in attachments(item.content)], [(2, big)])

    async def test_resend_same_server_id(self):
        """The same Add sent again (its answer was lost) gets the same ServerId and mapping, no second draft."""
        first, server_id, key = await self.create()
        again = await self.post(self.client, key, add("d1", draft_fields() + "<airsyncbase:Attachments>"
                                                      + attachment_add("att1", "Rechnung März.pdf")
                                                      + "</airsyncbase:Attachments>"), {"att1": INVOICE})
        (response,) = responses(again, "Add")
        self.assertEqual(text(response, "airsync:ServerId"), server_id)
        self.assertEqual(text(response, "airsync:Status"), "1")
        self.assertEqual(file_references(response), {"att1": f"{server_id}:2"})
        self.assertEqual(len(await self.stored()), 1)
        self.assertEqual(server_ids_of(again, "Add"), [])

    async def test_add_outside_drafts_refused(self):
        """An email Add to the Inbox is Status 6 (MS-ASCMD 2.2.3.7.2) and stores nothing."""
        key = await self.first_key(self.client, self.inbox)
        answer = await self.post(self.client, key, add("x1", draft_fields()), folder=self.inbox)
        (response,) = responses(answer, "Add")
        self.assertEqual(text(response, "airsync:Status"), "6")
        self.assertIsNone(text(response, "airsync:ServerId"))
        self.assertEqual(await self.store.items.count(self.account.id, self.inbox.id), 0)

    async def test_add_on_14_1_refused(self):
        """A 14.1 device cannot write drafts: Status 6, nothing stored."""
        old = await self.provisioned("OLDPHONE", "14.1")
        key = await self.first_key(old)
        answer = await self.post(old, key, add("o1", "<email:To>bob@example.net</email:To>"
                                                     "<email:Subject>Old</email:Subject>"))
        (response,) = responses(answer, "Add")
        self.assertEqual(text(response, "airsync:Status"), "6")
        self.assertEqual(await self.stored(), [])

    async def test_bad_body_type_refused(self):
        """A draft body given as MIME (Type 4) is Status 6."""
        key = await self.first_key(self.client)
        answer = await self.post(self.client, key, add("m1", "<email:Subject>x</email:Subject>" + body("x", 4)))
        self.assertEqual(text(responses(answer, "Add")[0], "airsync:Status"), "6")
        self.assertEqual(await self.stored(), [])

    async def test_html_draft_with_inline_image(self):
        """An HTML draft with an inline image keeps the image inline with its Content-ID."""
        fields = draft_fields(extra="").replace(body("Numbers attached."),
                                                body("&lt;p&gt;Look &lt;img src=\"cid:pic@x\"&gt;&lt;/p&gt;", 2))
        _, server_id, _ = await self.create(fields=fields, attachments_xml=attachment_add(
            "img", "photo.png", "image/png", inline=True, content_id="pic@x"), contents={"img": PHOTO})
        (item,) = await self.stored()
        (found,) = attachments(item.content)
        self.assertEqual((found.filename, found.content_id, found.is_inline, found.data),
                         ("photo.png", "pic@x", True, PHOTO))
        self.assertEqual(parse_message(item.content).native_body_type, 2)


def server_ids_of(answer, kind: str) -> list[str]:
    return [text(e, "airsync:ServerId") for e in find(answer.document, f"//airsync:Commands/airsync:{kind}")]


class DraftChangeTests(DraftsTestCase):
    async def test_change_reaches_other_device(self):
        """A new subject and a removed attachment reach the tablet as a Change carrying the whole draft."""
        answer, server_id, _ = await self.create()
        tablet_key, _ = await self.watch()
        data = ("<email:Subject>Final figures</email:Subject><airsyncbase:Attachments>"
                + attachment_delete(f"{server_id}:2") + "</airsyncbase:Attachments>")
        changed = await self.post(self.client, key_of(answer), change(server_id, data))
        self.assertEqual(responses(changed, "Change"), [])
        self.assertEqual(server_ids_of(changed, "Change"), [])
        seen = await self.post(self.tablet, tablet_key)
        (command,) = find(seen.document, "//airsync:Commands/airsync:Change")
        self.assertEqual(text(command, "airsync:ServerId"), server_id)
        self.assertEqual(text(command, "airsync:ApplicationData/email:Subject"), "Final figures")
        self.assertEqual(text(command, "airsync:ApplicationData/email:To"), '"Bob Example" <bob@example.net>')
        self.assertEqual(text(command, "airsync:ApplicationData/email2:IsDraft"), "1")
        self.assertEqual(find(command, "airsync:ApplicationData/airsyncbase:Attachments"), [])
        (item,) = await self.stored()
        self.assertEqual(attachments(item.content), [])

    async def test_change_adding_attachment_answered(self):
        """A Change that adds an attachment is answered with its ClientId -> FileReference."""
        answer, server_id, _ = await self.create()
        data = "<airsyncbase:Attachments>" + attachment_add("att2", "photo.png") + "</airsyncbase:Attachments>"
        changed = await self.post(self.client, key_of(answer), change(server_id, data), {"att2": PHOTO})
        (response,) = responses(changed, "Change")
        self.assertEqual([etree.QName(e).localname for e in response], ["ServerId", "Status", "ApplicationData"])
        self.assertEqual(text(response, "airsync:Status"), "1")
        self.assertEqual(file_references(response), {"att2": f"{server_id}:3"})
        self.assertEqual([a.filename for a in attachments((await self.stored())[0].content)],
                         ["Rechnung März.pdf", "photo.png"])

    async def test_renumbered_draft_sent_back(self):
        """Removing the first of two attachments sends the phone the draft with the second one's new FileReference."""
        contents = {"att1": INVOICE, "att2": PHOTO}
        answer, server_id, _ = await self.create(
            attachments_xml=attachment_add("att1", "a.pdf") + attachment_add("att2", "b.png"), contents=contents)
        self.assertEqual(file_references(responses(answer, "Add")[0]),
                         {"att1": f"{server_id}:2", "att2": f"{server_id}:3"})
        data = "<airsyncbase:Attachments>" + attachment_delete(f"{server_id}:2") + "</airsyncbase:Attachments>"
        changed = await self.post(self.client, key_of(answer), change(server_id, data))
        (command,) = find(changed.document, "//airsync:Commands/airsync:Change")
        (attachment,) = find(command, "airsync:ApplicationData/airsyncbase:Attachments/airsyncbase:Attachment")
        self.assertEqual((text(attachment, "airsyncbase:DisplayName"), text(attachment, "airsyncbase:FileReference")),
                         ("b.png", f"{server_id}:2"))

    async def test_resent_change_deletes_once(self):
        """A resent Change does not delete again the attachment that took the removed one's FileReference."""
        contents = {"att1": INVOICE, "att2": PHOTO}
        answer, server_id, _ = await self.create(
            attachments_xml=attachment_add("att1", "a.pdf") + attachment_add("att2", "b.png"), contents=contents)
        data = "<airsyncbase:Attachments>" + attachment_delete(f"{server_id}:2") + "</airsyncbase:Attachments>"
        await self.post(self.client, key_of(answer), change(server_id, data))
        await self.post(self.client, key_of(answer), change(server_id, data))
        (item,) = await self.stored()
        self.assertEqual([a.filename for a in attachments(item.content)], ["b.png"])

    async def test_change_read_flag_only(self):
        """A Change of Read alone keeps the content and reaches the tablet."""
        answer, server_id, _ = await self.create()
        (before,) = await self.stored()
        tablet_key, _ = await self.watch()
        await self.post(self.client, key_of(answer), change(server_id, "<email:Read>0</email:Read>"))
        (after,) = await self.stored()
        self.assertEqual((after.content, after.read), (before.content, False))
        seen = await self.post(self.tablet, tablet_key)
        self.assertEqual(text(seen.document, "//airsync:Commands/airsync:Change/airsync:ApplicationData/email:Read"),
                         "0")

    async def test_change_unknown_draft(self):
        """A Change of a draft that does not exist is Status 8."""
        key = await self.first_key(self.client)
        unknown = change(f"{self.drafts.id}:999999", "<email:Subject>x</email:Subject>")
        answer = await self.post(self.client, key, unknown)
        self.assertEqual(text(responses(answer, "Change")[0], "airsync:Status"), "8")

    async def test_delete_reaches_other_device(self):
        """A deleted draft leaves Drafts and the tablet is told."""
        answer, server_id, _ = await self.create()
        tablet_key, _ = await self.watch()
        await self.post(self.client, key_of(answer), f"<Delete><ServerId>{server_id}</ServerId></Delete>")
        seen = await self.post(self.tablet, tablet_key)
        self.assertEqual(server_ids_of(seen, "Delete"), [server_id])
        self.assertEqual(await self.stored(), [])


class DraftSendTests(DraftsTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.bob = await self.create_account("bob@example.org", "bob's secret", "Bob")
        self.carol = await self.create_account("carol@example.org", "carol's secret", "Carol")

    async def inbox_of(self, account) -> list[bytes]:
        inbox = await self.store.folders.by_type(account.id, F.INBOX)
        batch = await self.store.items.changes(account.id, inbox.id, 0, 100)
        return [c.item.content for c in batch.changes if c.item is not None]

    async def test_add_and_send(self):
        """Add with Send delivers to the local To and Bcc, keeps a Sent copy with Bcc, and the draft leaves Drafts."""
        fields = draft_fields(to="Bob &lt;bob@example.org&gt;", bcc="carol@example.org")
        answer, server_id, _ = await self.create(fields=fields, send=True)
        (response,) = responses(answer, "Add")
        self.assertEqual(text(response, "airsync:Status"), "1")
        self.assertEqual(server_ids_of(answer, "Delete"), [server_id])
        self.assertEqual(await self.stored(), [])
        (received,) = await self.inbox_of(self.bob)
        self.assertEqual(await self.inbox_of(self.carol), [received])
        summary = parse_message(received)
        self.assertEqual((summary.subject, summary.bcc), ("Quarterly figures", ""))
        self.assertEqual(summary.from_, '"Alice" <alice@example.org>')
        self.assertNotIn(b"X-Bluesync-Attachment", received)
        self.assertNotIn(b"carol@", received)
        self.assertEqual([a.data for a in attachments(received)], [INVOICE])
        (sent,) = await self.stored(await self.folder(F.SENT_ITEMS))
        self.assertEqual(parse_message(sent.content).bcc, "carol@example.org")
        self.assertTrue(sent.read)

    async def test_change_and_send(self):
        """A Change with Send sends the changed draft; the tablet is told the draft is gone."""
        answer, server_id, _ = await self.create(fields=draft_fields(to="bob@example.org", bcc=""))
        tablet_key, _ = await self.watch()
        sent = await self.post(self.client, key_of(answer),
                               change(server_id, "<email:Subject>Final</email:Subject>", send=True))
        self.assertEqual(responses(sent, "Change"), [])
        self.assertEqual(server_ids_of(sent, "Delete"), [server_id])
        (received,) = await self.inbox_of(self.bob)
        self.assertEqual(parse_message(received).subject, "Final")
        seen = await self.post(self.tablet, tablet_key)
        self.assertEqual(server_ids_of(seen, "Delete"), [server_id])

    async def test_resent_send_sends_once(self):
        """The same Change with Send, resent after its answer was lost, is Status 1 and sends nothing more."""
        answer, server_id, _ = await self.create(fields=draft_fields(to="bob@example.org", bcc=""))
        command = change(server_id, "<email:Subject>Final</email:Subject>", send=True)
        await self.post(self.client, key_of(answer), command)
        again = await self.post(self.client, key_of(answer), command)
        self.assertEqual(responses(again, "Change"), [])
        self.assertEqual(len(await self.inbox_of(self.bob)), 1)

    async def test_resent_add_and_send_sends_once(self):
        """An Add with Send resent after its answer was lost is Status 1 and neither stores nor sends again."""
        fields = draft_fields(to="bob@example.org", bcc="")
        _, _, key = await self.create(fields=fields, send=True)
        again = await self.post(self.client, key, add("d1", fields, send=True))
        self.assertEqual(text(responses(again, "Add")[0], "airsync:Status"), "1")
        self.assertEqual(len(await self.inbox_of(self.bob)), 1)
        self.assertEqual(await self.stored(), [])

    async def test_send_without_recipient(self):
        """Add with Send and no recipient is Status 6 and stores nothing."""
        answer, server_id, _ = await self.create(fields=draft_fields(to="", bcc=""), send=True)
        self.assertEqual(text(responses(answer, "Add")[0], "airsync:Status"), "6")
        self.assertIsNone(server_id)
        self.assertEqual(await self.stored(), [])

    async def test_send_without_relay_keeps_draft(self):
        """Mail for another domain with no relay is Status 5; the draft stays in Drafts, nothing is in Sent Items."""
        answer, server_id, _ = await self.create(fields=draft_fields(to="zoe@example.net", bcc=""), send=True)
        (response,) = responses(answer, "Add")
        self.assertEqual(text(response, "airsync:Status"), "5")
        (draft,) = await self.stored()
        self.assertEqual(f"{self.drafts.id}:{draft.id}", server_id)
        self.assertEqual(await self.stored(await self.folder(F.SENT_ITEMS)), [])
