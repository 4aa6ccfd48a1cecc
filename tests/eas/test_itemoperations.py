"""
ItemOperations and GetAttachment end to end: WBXML (and multipart bodies)
over TCP to the real Site, on a real PostgreSQL, with mail stored as LMTP
delivery stores it.
"""

import base64
import struct
from urllib.parse import quote

from bluesync import wbxml
from bluesync.items.email import parse_message
from bluesync.store import folders as F
from tests.eas.client import find, text, xml
from tests.eas.mailbox import DATA, MailboxTestCase, message

LOGO = (DATA / "logo.png").read_bytes()
INVOICE = (DATA / "invoice.pdf").read_bytes()
ATTACHMENTS = (DATA / "attachments.eml").read_bytes()
# Part indexes of the attachments in attachments.eml (FileReference suffixes).
LOGO_PART, INVOICE_PART = 5, 6

HEAD = '<ItemOperations xmlns="ItemOperations:" xmlns:airsync="AirSync:" xmlns:airsyncbase="AirSyncBase:"' \
       ' xmlns:search="Search:" xmlns:email="Email:" xmlns:documentlibrary="DocumentLibrary:">'
MULTIPART = {"MS-ASAcceptMultiPart": "T"}


def operations(*body: str) -> str:
    return HEAD + "".join(body) + "</ItemOperations>"


def attachment_fetch(reference: str, options: str = "") -> str:
    return (f"<Fetch><Store>Mailbox</Store><airsyncbase:FileReference>{reference}</airsyncbase:FileReference>"
            f"{options}</Fetch>")


def item_fetch(collection_id: str, server_id: str, options: str = "") -> str:
    return (f"<Fetch><Store>Mailbox</Store><airsync:CollectionId>{collection_id}</airsync:CollectionId>"
            f"<airsync:ServerId>{server_id}</airsync:ServerId>{options}</Fetch>")


def split_multipart(body: bytes) -> list[bytes]:
    """
    An independent reading of MS-ASCMD 2.2.1.10.1.1: a little-endian part
    count, (offset, length) pairs counted from the start, then the parts.
    """
    (count,) = struct.unpack_from("<i", body, 0)
    parts = []
    for number in range(count):
        offset, length = struct.unpack_from("<ii", body, 4 + 8 * number)
        assert 4 + 8 * count <= offset and offset + length <= len(body), (offset, length, len(body))
        parts.append(body[offset:offset + length])
    return parts


def fetches(document):
    return find(document, "/itemoperations:ItemOperations/itemoperations:Response/itemoperations:Fetch")


def status(element) -> str:
    return text(element, "itemoperations:Status")


class ItemOperationsTestCase(MailboxTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.item = await self.deliver(ATTACHMENTS)
        self.server_id = f"{self.inbox.id}:{self.item}"

    def reference(self, part: int) -> str:
        return f"{self.server_id}:{part}"

    async def post(self, *body: str, client=None):
        answer = await (client or self.client).post("ItemOperations", operations(*body))
        self.assertEqual(answer.code, 200, answer)
        return answer


class AttachmentFetchTests(ItemOperationsTestCase):
    async def test_inline(self):
        """Both attachments come back byte for byte, base64 in Data, with their content types."""
        answer = await self.post(attachment_fetch(self.reference(LOGO_PART)),
                                 attachment_fetch(self.reference(INVOICE_PART)))
        self.assertEqual(answer.header("content-type"), "application/vnd.ms-sync.wbxml")
        self.assertEqual(text(answer.document, "/itemoperations:ItemOperations/itemoperations:Status"), "1")
        logo, invoice = fetches(answer.document)
        for fetch, reference, content_type, data in (
                (logo, self.reference(LOGO_PART), "image/png", LOGO),
                (invoice, self.reference(INVOICE_PART), "application/pdf", INVOICE)):
            self.assertEqual(status(fetch), "1")
            self.assertEqual(text(fetch, "airsyncbase:FileReference"), reference)
            self.assertEqual(text(fetch, "itemoperations:Properties/airsyncbase:ContentType"), content_type)
            self.assertEqual(base64.b64decode(text(fetch, "itemoperations:Properties/itemoperations:Data")), data)

    async def test_range(self):
        """A Range returns exactly that slice, with the Range sent and the Total size."""
        answer = await self.post(
            attachment_fetch(self.reference(INVOICE_PART), "<Options><Range>0-9</Range></Options>"),
            attachment_fetch(self.reference(INVOICE_PART), "<Options><Range>100-199</Range></Options>"),
            attachment_fetch(self.reference(INVOICE_PART), "<Options><Range>400-100000</Range></Options>"),
        )
        got = [(text(f, "itemoperations:Properties/itemoperations:Range"),
                text(f, "itemoperations:Properties/itemoperations:Total"),
                base64.b64decode(text(f, "itemoperations:Properties/itemoperations:Data")))
               for f in fetches(answer.document)]
        total = str(len(INVOICE))
        self.assertEqual(got, [
            ("0-9", total, INVOICE[:10]),
            ("100-199", total, INVOICE[100:200]),
            (f"400-{len(INVOICE) - 1}", total, INVOICE[400:]),
        ])

    async def test_bad_range(self):
        """A Range past the end, reversed or unreadable is Status 8, without data."""
        size = len(INVOICE)
        answer = await self.post(*(
            attachment_fetch(self.reference(INVOICE_PART), f"<Options><Range>{r}</Range></Options>")
            for r in (f"{size}-{size + 10}", "20-10", "ten-twenty")
        ))
        self.assertEqual([status(f) for f in fetches(answer.document)], ["8", "8", "8"])
        self.assertEqual(find(answer.document, "//itemoperations:Data"), [])

    async def test_unknown_reference(self):
        """A FileReference naming nothing of ours is Status 15; an empty one too."""
        answer = await self.post(
            attachment_fetch(f"{self.server_id}:99"),
            attachment_fetch(f"{self.inbox.id}:999999:5"),
            attachment_fetch("not-a-reference"),
            attachment_fetch(""),
        )
        self.assertEqual([status(f) for f in fetches(answer.document)], ["15"] * 4)

    async def test_foreign_reference_like_missing(self):
        """Another account's attachment is answered exactly like a missing one."""
        bob = await self.create_account("bob@example.org", "another secret", "Bob")
        bob_inbox = await self.folder(F.INBOX, bob)
        bob_item = await self.deliver(ATTACHMENTS, account=bob, folder=bob_inbox)
        foreign = await self.post(attachment_fetch(f"{bob_inbox.id}:{bob_item}:{LOGO_PART}"))
        missing = await self.post(attachment_fetch(f"{bob_inbox.id}:{bob_item + 1000}:{LOGO_PART}"))
        self.assertEqual(status(fetches(foreign.document)[0]), "15")
        self.assertEqual(foreign.body.replace(str(bob_item).encode(), b"X"),
                         missing.body.replace(str(bob_item + 1000).encode(), b"X"))
        self.assertNotIn(base64.b64encode(LOGO)[:20], foreign.body)

    async def test_document_library(self):
        """A Document Library fetch is refused with Status 9, the rest of the request still served."""
        answer = await self.post(
            "<Fetch><Store>Document Library</Store><documentlibrary:LinkId>\\\\server\\share\\file.txt"
            "</documentlibrary:LinkId></Fetch>",
            attachment_fetch(self.reference(LOGO_PART)),
        )
        library, logo = fetches(answer.document)
        self.assertEqual(status(library), "9")
        self.assertEqual(text(library, "documentlibrary:LinkId"), "\\\\server\\share\\file.txt")
        self.assertEqual(status(logo), "1")


class MultipartTests(ItemOperationsTestCase):
    async def post_multipart(self, *body: str) -> list[bytes]:
        """
        POST with MS-ASAcceptMultiPart: T; the parts of the answer.  Sent
        without EASClient.post, whose answer would take a body starting
        with a part count of 3 for WBXML.
        """
        client = self.client
        query = (f"Cmd=ItemOperations&User={client.user}&DeviceId={client.device_id}"
                 f"&DeviceType={client.device_type}")
        response = await self.http("POST", f"/Microsoft-Server-ActiveSync?{query}",
                                   headers=client._headers(MULTIPART), data=wbxml.encode(xml(operations(*body))))
        self.assertEqual(response.code, 200)
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/vnd.ms-sync.multipart"])
        return split_multipart(await response.content())

    async def test_attachments(self):
        """With MS-ASAcceptMultiPart the bytes travel as parts named by Part, not in Data."""
        parts = await self.post_multipart(attachment_fetch(self.reference(LOGO_PART)),
                                          attachment_fetch(self.reference(INVOICE_PART),
                                                           "<Options><Range>5-104</Range></Options>"))
        self.assertEqual(len(parts), 3)
        document = wbxml.decode(parts[0])
        self.assertEqual(find(document, "//itemoperations:Data"), [])
        logo, invoice = fetches(document)
        self.assertEqual([status(logo), status(invoice)], ["1", "1"])
        logo_part = int(text(logo, "itemoperations:Properties/itemoperations:Part"))
        invoice_part = int(text(invoice, "itemoperations:Properties/itemoperations:Part"))
        self.assertEqual(parts[logo_part], LOGO)
        self.assertEqual(parts[invoice_part], INVOICE[5:105])
        self.assertEqual(text(invoice, "itemoperations:Properties/itemoperations:Range"), "5-104")

    async def test_item_body(self):
        """A fetched item's body moves to a part; airsyncbase:Body holds its Part index."""
        options = ("<Options><airsyncbase:BodyPreference><airsyncbase:Type>2</airsyncbase:Type>"
                   "</airsyncbase:BodyPreference></Options>")
        parts = await self.post_multipart(item_fetch(self.inbox.server_id, self.server_id, options))
        self.assertEqual(len(parts), 2)
        (fetch,) = fetches(wbxml.decode(parts[0]))
        body = find(fetch, "itemoperations:Properties/airsyncbase:Body")[0]
        self.assertEqual(find(body, "airsyncbase:Data"), [])
        self.assertEqual(text(body, "itemoperations:Part"), "1")
        self.assertIn(b'<img src="cid:logo@example.org"', parts[1])
        self.assertEqual(text(body, "airsyncbase:EstimatedDataSize"), str(len(parts[1])))

    async def test_base64_query_flag(self):
        """The AcceptMultiPart flag of a base64 query line (MS-ASHTTP 2.2.1.1.1.1.3) asks for multipart too."""
        client = await self.provisioned("B64DE001")
        line = (bytes([161, 19]) + struct.pack("<H", 0x0409) + bytes([4]) + bytes.fromhex("B64DE001")
                + bytes([4]) + struct.pack("<I", int(client.policy_key)) + bytes([6]) + b"iPhone"
                + bytes([7, 1, 0x02]))
        request = wbxml.encode(xml(operations(attachment_fetch(self.reference(LOGO_PART)))))
        response = await self.http(
            "POST", "/Microsoft-Server-ActiveSync?" + quote(base64.b64encode(line).decode(), safe=""),
            headers=client._headers(None), data=request,
        )
        self.assertEqual(response.headers.getRawHeaders("content-type"), ["application/vnd.ms-sync.multipart"])
        parts = split_multipart(await response.content())
        self.assertEqual(parts[1:], [LOGO])

    async def test_failure_still_multipart(self):
        """A multipart request whose fetch fails gets a one-part body with the status."""
        parts = await self.post_multipart(attachment_fetch(f"{self.server_id}:99"))
        self.assertEqual(len(parts), 1)
        self.assertEqual(status(fetches(wbxml.decode(parts[0]))[0]), "15")


class ItemFetchTests(ItemOperationsTestCase):
    async def test_with_body_preference(self):
        """An item comes back in Properties, its body in the preferred type and truncation."""
        options = ("<Options><airsyncbase:BodyPreference><airsyncbase:Type>2</airsyncbase:Type>"
                   "<airsyncbase:TruncationSize>20</airsyncbase:TruncationSize></airsyncbase:BodyPreference>"
                   "</Options>")
        answer = await self.post(item_fetch(self.inbox.server_id, self.server_id, options))
        (fetch,) = fetches(answer.document)
        self.assertEqual(status(fetch), "1")
        self.assertEqual([child.tag for child in fetch][:4], [
            "{ItemOperations:}Status", "{AirSync:}CollectionId", "{AirSync:}ServerId", "{AirSync:}Class"])
        self.assertEqual(text(fetch, "airsync:ServerId"), self.server_id)
        self.assertEqual(text(fetch, "airsync:Class"), "Email")
        properties = find(fetch, "itemoperations:Properties")[0]
        self.assertEqual(text(properties, "email:Subject"), "Invoice and logo")
        self.assertEqual(text(properties, "airsyncbase:Body/airsyncbase:Type"), "2")
        self.assertEqual(text(properties, "airsyncbase:Body/airsyncbase:Truncated"), "1")
        self.assertEqual(len(text(properties, "airsyncbase:Body/airsyncbase:Data").encode()), 20)
        references = [text(a, "airsyncbase:FileReference") for a in find(properties, "//airsyncbase:Attachment")]
        self.assertEqual(references, [self.reference(LOGO_PART), self.reference(INVOICE_PART),
                                      self.reference(7)])

    async def test_mime(self):
        """MIMESupport 2 with Type 4 returns the whole message as MIME."""
        options = ("<Options><airsync:MIMESupport>2</airsync:MIMESupport><airsyncbase:BodyPreference>"
                   "<airsyncbase:Type>4</airsyncbase:Type></airsyncbase:BodyPreference></Options>")
        answer = await self.post(item_fetch(self.inbox.server_id, self.server_id, options))
        data = text(answer.document, "//itemoperations:Properties/airsyncbase:Body/airsyncbase:Data")
        self.assertEqual(text(answer.document, "//itemoperations:Properties/airsyncbase:Body/airsyncbase:Type"),
                         "4")
        self.assertIn("Subject: Invoice and logo", data)
        self.assertIn("iVBORw0KGgoAAAANSUhEUgAAAAQAAAADCAIAAAA7ljmRAAAAKklEQVR4nA3HMQEAMAzDMAMriMAp", data)

    async def test_long_id(self):
        """A Search result's LongId fetches the item, answered under that LongId."""
        answer = await self.post(f"<Fetch><Store>Mailbox</Store><search:LongId>{self.server_id}</search:LongId>"
                                 "</Fetch>")
        (fetch,) = fetches(answer.document)
        self.assertEqual(status(fetch), "1")
        self.assertEqual(text(fetch, "search:LongId"), self.server_id)
        self.assertEqual(text(fetch, "itemoperations:Properties/email:Subject"), "Invoice and logo")

    async def test_schema(self):
        """A Schema restricts the properties returned to the ones it names."""
        options = "<Options><Schema><email:Subject/><email:From/></Schema></Options>"
        answer = await self.post(item_fetch(self.inbox.server_id, self.server_id, options))
        properties = find(answer.document, "//itemoperations:Properties")[0]
        self.assertEqual([child.tag for child in properties], ["{Email:}From", "{Email:}Subject"])

    async def test_body_part(self):
        """BodyPartPreference (14.1+) adds an HTML BodyPart with its status after the Body."""
        options = ("<Options><airsyncbase:BodyPreference><airsyncbase:Type>1</airsyncbase:Type>"
                   "</airsyncbase:BodyPreference><airsyncbase:BodyPartPreference><airsyncbase:Type>2"
                   "</airsyncbase:Type><airsyncbase:Preview>10</airsyncbase:Preview>"
                   "</airsyncbase:BodyPartPreference></Options>")
        answer = await self.post(item_fetch(self.inbox.server_id, self.server_id, options))
        properties = find(answer.document, "//itemoperations:Properties")[0]
        tags = [child.tag for child in properties]
        self.assertEqual(tags[tags.index("{AirSyncBase:}Body") + 1], "{AirSyncBase:}BodyPart")
        self.assertEqual(text(properties, "airsyncbase:BodyPart/airsyncbase:Status"), "1")
        self.assertEqual(text(properties, "airsyncbase:BodyPart/airsyncbase:Type"), "2")
        self.assertIn("<img", text(properties, "airsyncbase:BodyPart/airsyncbase:Data"))
        self.assertEqual(text(properties, "airsyncbase:Body/airsyncbase:Type"), "1")

    async def test_not_found(self):
        """A missing item, a ServerId outside its CollectionId or a foreign item is Status 6."""
        bob = await self.create_account("bob@example.org", "another secret", "Bob")
        bob_inbox = await self.folder(F.INBOX, bob)
        bob_item = await self.deliver(ATTACHMENTS, account=bob, folder=bob_inbox)
        answer = await self.post(
            item_fetch(self.inbox.server_id, f"{self.inbox.id}:999999"),
            item_fetch(self.trash.server_id, self.server_id),
            item_fetch(bob_inbox.server_id, f"{bob_inbox.id}:{bob_item}"),
        )
        got = fetches(answer.document)
        self.assertEqual([status(f) for f in got], ["6", "6", "6"])
        self.assertEqual(find(answer.document, "//itemoperations:Properties"), [])
        self.assertNotIn(b"Invoice", answer.body)

    async def test_protocol_errors(self):
        """A Fetch without Store or target, with two targets or a bad option is Status 2; a bad document is global 2."""
        answer = await self.post(
            f"<Fetch><airsyncbase:FileReference>{self.reference(LOGO_PART)}</airsyncbase:FileReference></Fetch>",
            "<Fetch><Store>Mailbox</Store></Fetch>",
            f"<Fetch><Store>Mailbox</Store><airsync:ServerId>{self.server_id}</airsync:ServerId>"
            f"<airsyncbase:FileReference>{self.reference(LOGO_PART)}</airsyncbase:FileReference></Fetch>",
            item_fetch(self.inbox.server_id, self.server_id,
                       "<Options><airsyncbase:BodyPreference><airsyncbase:Type>x</airsyncbase:Type>"
                       "</airsyncbase:BodyPreference></Options>"),
            f"<Fetch><Store/><airsync:ServerId>{self.server_id}</airsync:ServerId></Fetch>",
        )
        self.assertEqual([status(f) for f in fetches(answer.document)], ["2"] * 5)
        wrong = await self.client.post("ItemOperations", '<Sync xmlns="AirSync:"/>')
        self.assertEqual(text(wrong.document, "/itemoperations:ItemOperations/itemoperations:Status"), "2")
        self.assertEqual(find(wrong.document, "//itemoperations:Response"), [])
        unknown = await self.post("<Schema/>")
        self.assertEqual(text(unknown.document, "/itemoperations:ItemOperations/itemoperations:Status"), "2")


class EmptyFolderContentsTests(ItemOperationsTestCase):
    async def test_deleted_items(self):
        """Emptying Deleted Items deletes everything in it, and other devices get a Delete for each item."""
        trashed = [await self.deliver(message(n), folder=self.trash) for n in range(3)]
        other = await self.provisioned("DEVICEB")
        key, adds = await self.synced(other, self.trash)
        self.assertEqual(len(adds), 3)
        answer = await self.post("<EmptyFolderContents><airsync:CollectionId>"
                                 f"{self.trash.server_id}</airsync:CollectionId></EmptyFolderContents>")
        (result,) = find(answer.document, "//itemoperations:EmptyFolderContents")
        self.assertEqual((status(result), text(result, "airsync:CollectionId")), ("1", self.trash.server_id))
        self.assertEqual(await self.store.items.count(self.account.id, self.trash.id), 0)
        self.assertEqual(await self.store.items.count(self.account.id, self.inbox.id), 1)
        _, adds, deletes = await self.changes(other, self.trash, key)
        self.assertEqual(sorted(deletes), sorted(f"{self.trash.id}:{i}" for i in trashed))

    async def test_subfolders(self):
        """DeleteSubFolders removes the user folders below; without it they stay, emptied or not."""
        junk = await self.store.folders.by_type(self.account.id, F.USER_MAIL)
        kept, _ = await self.store.folders.create(self.account.id, junk.id, "Kept", F.USER_MAIL)
        await self.deliver(message(1), folder=kept)
        await self.deliver(message(2), folder=junk)
        request = (f"<EmptyFolderContents><airsync:CollectionId>{junk.server_id}</airsync:CollectionId>"
                   "{options}</EmptyFolderContents>")
        await self.post(request.format(options=""))
        self.assertIsNotNone(await self.store.folders.get(self.account.id, kept.id))
        self.assertEqual(await self.store.items.count(self.account.id, kept.id), 1)
        self.assertEqual(await self.store.items.count(self.account.id, junk.id), 0)
        answer = await self.post(request.format(options="<Options><DeleteSubFolders/></Options>"))
        self.assertEqual(status(find(answer.document, "//itemoperations:EmptyFolderContents")[0]), "1")
        self.assertIsNone(await self.store.folders.get(self.account.id, kept.id))
        self.assertIsNotNone(await self.store.folders.get(self.account.id, junk.id))

    async def test_unknown_folder(self):
        """An unknown or foreign folder is Status 6 and nothing is deleted; no CollectionId is Status 2."""
        bob = await self.create_account("bob@example.org", "another secret", "Bob")
        bob_inbox = await self.folder(F.INBOX, bob)
        await self.deliver(message(1), account=bob, folder=bob_inbox)
        answer = await self.post(
            f"<EmptyFolderContents><airsync:CollectionId>{bob_inbox.server_id}</airsync:CollectionId>"
            "</EmptyFolderContents>",
            "<EmptyFolderContents><airsync:CollectionId>999999</airsync:CollectionId></EmptyFolderContents>",
            "<EmptyFolderContents/>",
        )
        got = [status(e) for e in find(answer.document, "//itemoperations:EmptyFolderContents")]
        self.assertEqual(got, ["6", "6", "2"])
        self.assertEqual(await self.store.items.count(bob.id, bob_inbox.id), 1)


class ConversationMoveTests(MailboxTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.archive, _ = await self.store.folders.create(self.account.id, None, "Archive", F.USER_MAIL)
        self.projects, _ = await self.store.folders.create(self.account.id, None, "Projects", F.USER_MAIL)
        self.sent = await self.folder(F.SENT_ITEMS)
        root = message(1, "Plans")
        self.conversation = parse_message(root).conversation_id
        self.root = await self.deliver(root)
        self.reply = await self.deliver(message(2, "Re: Plans", references="m1@example.net"), folder=self.projects)
        self.sent_reply = await self.deliver(message(3, "Re: Plans", references="m1@example.net"),
                                             folder=self.sent)
        self.unrelated = await self.deliver(message(4, "Other"))

    def request(self, conversation: bytes, destination: str, options="<Options><MoveAlways/></Options>") -> str:
        return operations(f"<Move><ConversationId>{base64.b64encode(conversation).decode()}</ConversationId>"
                          f"<DstFldId>{destination}</DstFldId>{options}</Move>")

    async def move(self, conversation: bytes, destination: str, **kwargs):
        answer = await self.client.post("ItemOperations", self.request(conversation, destination, **kwargs))
        self.assertEqual(answer.code, 200, answer)
        (result,) = find(answer.document, "//itemoperations:Response/itemoperations:Move")
        return result

    async def test_moves_conversation_but_sent(self):
        """Every message of the conversation but those in Sent Items moves; the conversation id is echoed."""
        other = await self.provisioned("DEVICEB")
        inbox_key, _ = await self.synced(other, self.inbox)
        archive_key, _ = await self.synced(other, self.archive)
        result = await self.move(self.conversation, self.archive.server_id)
        self.assertEqual(status(result), "1")
        self.assertEqual(wbxml.opaque(find(result, "itemoperations:ConversationId")[0]), self.conversation)
        folders = {i: (await self.store.items.get(self.account.id, i)).folder_id
                   for i in (self.root, self.reply, self.sent_reply, self.unrelated)}
        self.assertEqual(folders, {self.root: self.archive.id, self.reply: self.archive.id,
                                   self.sent_reply: self.sent.id, self.unrelated: self.inbox.id})
        _, adds, deletes = await self.changes(other, self.inbox, inbox_key)
        self.assertEqual(deletes, [f"{self.inbox.id}:{self.root}"])
        _, adds, _ = await self.changes(other, self.archive, archive_key)
        self.assertEqual(sorted(adds), sorted([f"{self.archive.id}:{self.root}", f"{self.archive.id}:{self.reply}"]))

    async def test_statuses(self):
        """No MoveAlways is 155, an unknown conversation or folder 6, a calendar destination 156."""
        calendar = await self.folder(F.CALENDAR)
        self.assertEqual(status(await self.move(self.conversation, self.archive.server_id, options="")), "155")
        self.assertEqual(status(await self.move(b"\x00" * 16, self.archive.server_id)), "6")
        self.assertEqual(status(await self.move(self.conversation, "999999")), "6")
        self.assertEqual(status(await self.move(self.conversation, calendar.server_id)), "156")
        self.assertEqual((await self.store.items.get(self.account.id, self.root)).folder_id, self.inbox.id)

    async def test_foreign_conversation(self):
        """Another account's messages of the same conversation never move."""
        bob = await self.create_account("bob@example.org", "another secret", "Bob")
        bob_inbox = await self.folder(F.INBOX, bob)
        bob_copy = await self.deliver(message(1, "Plans"), account=bob, folder=bob_inbox)
        bob_client = await self.provisioned("BOBPHONE", user="bob@example.org", password="another secret")
        answer = await bob_client.post("ItemOperations", self.request(self.conversation, self.archive.server_id))
        self.assertEqual(status(find(answer.document, "//itemoperations:Move")[0]), "6")
        self.assertEqual((await self.store.items.get(bob.id, bob_copy)).folder_id, bob_inbox.id)
        self.assertEqual((await self.store.items.get(self.account.id, self.root)).folder_id, self.inbox.id)

    async def test_not_in_12_1(self):
        """Move is a 14.0 operation: a 12.1 request with one is a protocol error."""
        old = await self.provisioned("OLDPHONE", "12.1")
        answer = await old.post("ItemOperations", self.request(self.conversation, self.archive.server_id))
        self.assertEqual(text(answer.document, "/itemoperations:ItemOperations/itemoperations:Status"), "2")
        self.assertEqual((await self.store.items.get(self.account.id, self.root)).folder_id, self.inbox.id)


class GetAttachmentTests(MailboxTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.old = await self.provisioned("OLDPHONE", "12.1")
        self.item = await self.deliver(ATTACHMENTS)

    async def get(self, name: str | None):
        params = {"AttachmentName": quote(name, safe="")} if name is not None else {}
        return await self.old.post("GetAttachment", params=params)

    async def test_bytes_and_type(self):
        """The attachment's bytes are the body, with its Content-Type."""
        for part, data, content_type in ((LOGO_PART, LOGO, "image/png"), (INVOICE_PART, INVOICE, "application/pdf")):
            answer = await self.get(f"{self.inbox.id}:{self.item}:{part}")
            self.assertEqual((answer.code, answer.header("content-type")), (200, content_type))
            self.assertEqual(answer.body, data)

    async def test_missing(self):
        """A deleted or foreign attachment is HTTP 500 (2.2.1.8); no AttachmentName is 400."""
        bob = await self.create_account("bob@example.org", "another secret", "Bob")
        bob_inbox = await self.folder(F.INBOX, bob)
        bob_item = await self.deliver(ATTACHMENTS, account=bob, folder=bob_inbox)
        foreign = await self.get(f"{bob_inbox.id}:{bob_item}:{LOGO_PART}")
        missing = await self.get(f"{self.inbox.id}:{self.item}:99")
        self.assertEqual((foreign.code, missing.code), (500, 500))
        self.assertNotEqual(foreign.body, LOGO)
        self.assertEqual((await self.get(None)).code, 400)
        self.assertEqual((await self.get("garbage")).code, 400)


class PimFetchTests(MailboxTestCase):
    async def test_contact(self):
        """A contact is fetched in its own class, with its fields in Properties."""
        contacts = await self.folder(F.CONTACTS)
        server_id = await self.add_contact(contacts)
        answer = await self.client.post("ItemOperations", operations(item_fetch(contacts.server_id, server_id)))
        (fetch,) = fetches(answer.document)
        self.assertEqual((status(fetch), text(fetch, "airsync:Class")), ("1", "Contacts"))
        self.assertEqual(text(fetch, "itemoperations:Properties/contacts:FileAs"), "Martin, Anna")
        self.assertEqual(text(fetch, "itemoperations:Properties/contacts:Email1Address"), "anna@example.fr")
