"""
No account can see or touch another's data, through any command.

Bob has mail delivered over the real LMTP server (with an attachment, a
meeting invitation that also put an event in his calendar), a contact, a
draft with an attachment and a folder of his own.  Alice's phone names
each of Bob's ids (all database ids, so easy to guess) in every command
that takes one (Find included), over TCP to the real Site, and each test checks that:

1. the answer is the spec's "not found / invalid" answer, and identical to
   the answer for an id that does not exist at all (compared element by
   element, the echoed ids and sync keys aside), so not even existence
   is revealed;
2. no answer carries any of Bob's content (every string of his holds
   MARK, his attachment's bytes hold PAYLOAD);
3. nothing of Bob's changed: his folders, items (content, read state,
   flags, verbs, modseqs), tombstones, conversation rules and hierarchy
   counter are exactly as before.
"""

from __future__ import annotations

import base64

from lxml import etree

from bluesync.items.email import parse_message
from bluesync.store import folders as F
from tests.eas.client import find, text
from tests.eas.mailbox import PLAIN, MailboxTestCase
from tests.eas.test_drafts import add as draft_add
from tests.eas.test_drafts import attachment_add, attachment_delete, draft_fields, file_references, responses
from tests.eas.test_drafts import sync_document as draft_sync
from tests.eas.test_find import gal_find, mailbox_find
from tests.eas.test_sendmail import compose_document, mime
from tests.mail import imipdata
from tests.mail.lmtpclient import LMTPServer

# In every string of Bob's (subjects, bodies, names, folder, attachment).
MARK = "zyxqua"
PAYLOAD = b"%PDF-1.4\nzyxpayload " + bytes(range(256)) * 4
BOB = "bob@example.org"
MISSING_FOLDER = "987654321"
MISSING_ITEM = "987654320"
MISSING_CONVERSATION = b"\x07" * 16
UID = "zyxqua-meeting@example.net"

NAMESPACES = ('xmlns="AirSync:" xmlns:airsyncbase="AirSyncBase:" xmlns:email="Email:" xmlns:email2="Email2:"'
              ' xmlns:contacts="Contacts:" xmlns:calendar="Calendar:"')
IO_HEAD = ('<ItemOperations xmlns="ItemOperations:" xmlns:airsync="AirSync:" xmlns:airsyncbase="AirSyncBase:"'
           ' xmlns:search="Search:">')


def with_attachment(subject: str, body: str, filename: str, payload: bytes, message_id: str) -> bytes:
    encoded = base64.encodebytes(payload).decode().replace("\n", "\r\n")
    return (
        f"From: Carol <carol@example.net>\r\nTo: Bob <{BOB}>\r\nSubject: {subject}\r\n"
        f"Date: Fri, 20 Nov 2026 09:00:00 +0000\r\nMessage-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="zz"\r\n\r\n'
        f"--zz\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
        f'--zz\r\nContent-Type: application/pdf; name="{filename}"\r\n'
        f'Content-Disposition: attachment; filename="{filename}"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        f"{encoded}--zz--\r\n"
    ).encode()


def plain(subject: str, to: str, message_id: str) -> bytes:
    return (
        f"From: Carol <carol@example.net>\r\nTo: {to}\r\nSubject: {subject}\r\n"
        f"Date: Fri, 20 Nov 2026 08:00:00 +0000\r\nMessage-ID: <{message_id}>\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{subject}, in the body too.\r\n"
    ).encode()


def sync_xml(collection_id: str, key: str, commands_xml: str = "", extra: str = "") -> str:
    return (f"<Sync {NAMESPACES}><Collections><Collection><SyncKey>{key}</SyncKey>"
            f"<CollectionId>{collection_id}</CollectionId>{extra}<Options>{PLAIN}</Options>"
            + (f"<Commands>{commands_xml}</Commands>" if commands_xml else "")
            + "</Collection></Collections></Sync>")


# The elements that echo an id the request named.
ECHOES = frozenset({"ServerId", "CollectionId", "SrcMsgId", "DstMsgId", "FileReference", "LongId", "RequestId",
                    "ConversationId", "Folder", "Id", "ParentId", "CalendarId", "AttachmentName"})


def shape(answer, ids) -> tuple:
    """
    What an answer says, with the ids it echoes (an element of L{ECHOES}
    whose whole text is one of C{ids}) and its sync keys put aside: two
    answers of the same shape tell nothing apart.
    """
    if answer.document is None:
        return answer.code, answer.header("Content-Type"), answer.body
    document = etree.fromstring(etree.tostring(answer.document))
    for element in document.iter():
        if not isinstance(element.tag, str):
            continue
        if etree.QName(element).localname == "SyncKey":
            element.text = "KEY"
        elif etree.QName(element).localname in ECHOES and element.text in ids:
            element.text = f"ID{ids.index(element.text)}"
    return answer.code, etree.tostring(document, encoding="unicode")


class IsolationTests(MailboxTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.lmtp = LMTPServer(self, self.store, self.config.mail)
        self.bob = await self.create_account(BOB, name="Bob Builder")
        await self.store.accounts.add_alias(BOB, "bob.private@example.org")
        self.bob_phone = await self.provisioned("BOBPHONE", user=BOB)
        folders = {t: await self.folder(t, self.bob) for t in (F.INBOX, F.DRAFTS, F.CONTACTS, F.CALENDAR)}
        self.bob_inbox, self.bob_drafts, self.bob_contacts, self.bob_calendar = folders.values()
        self.bob_folder, _ = await self.store.folders.create(self.bob.id, self.bob_inbox.id, f"{MARK} folder",
                                                             F.USER_MAIL)

        # Bob's mail, over LMTP.
        attached = with_attachment(f"{MARK} plans", f"{MARK} body", f"{MARK}.pdf", PAYLOAD, "zyx-1@example.net")
        self.bob_conversation = parse_message(attached).conversation_id
        await self.lmtp_deliver(attached, [BOB])
        await self.lmtp_deliver(plain(f"{MARK} archived", BOB, "zyx-2@example.net"), [BOB])
        invitation = imipdata.message("REQUEST", imipdata.vevent(uid=UID, summary=f"{MARK} meeting",
                                                                 attendees=(BOB,)),
                                      to=BOB, subject=f"{MARK} meeting", message_id="<zyx-3@example.net>")
        await self.lmtp_deliver(invitation, [BOB])
        by_subject = {i.summary.get("subject"): i for i in await self.store.items.folder_items(self.bob.id,
                                                                                             self.bob_inbox.id)}
        self.bob_mail = by_subject[f"{MARK} plans"]
        self.bob_invitation = by_subject[f"{MARK} meeting"]
        archived = by_subject[f"{MARK} archived"]
        await self.store.items.move(self.bob.id, self.bob_inbox.id, archived.id, self.bob_folder.id)
        self.bob_archived = f"{self.bob_folder.id}:{archived.id}"
        self.bob_attachment = f"{self.bob_mail.server_id}:{self._attachment_index()}"
        (event,) = await self.store.items.folder_items(self.bob.id, self.bob_calendar.id)
        self.bob_event = event.server_id

        # Bob's contact and draft, from his phone.
        self.bob_contact = await self._bob_contact()
        self.bob_draft, self.bob_draft_attachment = await self._bob_draft()

        # Alice: her own mail and folder, her phone's hierarchy and collections.
        await self.lmtp_deliver(plain("Lunch", "Alice <alice@example.org>", "lunch-1@example.net"),
                                ["alice@example.org"])
        self.alice_folder, _ = await self.store.folders.create(self.account.id, None, "Projects", F.USER_MAIL)
        answer = await self.client.post("FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey>'
                                                      "</FolderSync>")
        self.assert_clean(answer)
        self.hierarchy_key = text(answer.document, "//folderhierarchy:SyncKey")
        self.alice = {t: await self.folder(t) for t in (F.INBOX, F.DRAFTS, F.CONTACTS, F.CALENDAR)}
        self.keys = {}
        for folder in [*self.alice.values(), self.alice_folder]:
            key, added = await self.synced(self.client, folder)
            self.keys[folder.server_id] = key
            if folder.type == F.INBOX:
                (self.alice_mail,) = added
        self.before = await self.bob_snapshot()

    # -- fixtures ----------------------------------------------------------

    async def lmtp_deliver(self, raw: bytes, recipients) -> None:
        self.assertEqual(await self.lmtp.deliver(raw, recipients, "carol@example.net"), {})

    def _attachment_index(self) -> int:
        from bluesync.items import email

        for index in range(1, 10):
            found = email.attachment(self.bob_mail.content, index)
            if found is not None and found.data == PAYLOAD:
                return index
        raise AssertionError("the attachment of Bob's message is not found")

    async def _bob_contact(self) -> str:
        answer = await self.sync(self.bob_phone, self.bob_contacts.server_id, "0")
        key = text(answer.document, "//airsync:Collection/airsync:SyncKey")
        answer = await self.bob_phone.post("Sync", sync_xml(
            self.bob_contacts.server_id, key,
            f"<Add><ClientId>c1</ClientId><ApplicationData><contacts:FileAs>{MARK}, Dora</contacts:FileAs>"
            f"<contacts:FirstName>Dora</contacts:FirstName><contacts:LastName>{MARK}</contacts:LastName>"
            f"<contacts:Email1Address>dora@{MARK}.example</contacts:Email1Address></ApplicationData></Add>"))
        self.assertEqual(text(answer.document, "//airsync:Responses/airsync:Add/airsync:Status"), "1", answer)
        return text(answer.document, "//airsync:Responses/airsync:Add/airsync:ServerId")

    async def _bob_draft(self) -> tuple[str, str]:
        answer = await self.sync(self.bob_phone, self.bob_drafts.server_id, "0")
        key = text(answer.document, "//airsync:Collection/airsync:SyncKey")
        data = draft_fields(subject=f"{MARK} draft", text_body=f"{MARK} draft body") + (
            f"<airsyncbase:Attachments>{attachment_add('a1', f'{MARK}-draft.pdf', 'application/pdf')}"
            "</airsyncbase:Attachments>")
        answer = await self.bob_phone.post("Sync", draft_sync(self.bob_drafts.server_id, key, draft_add("d1", data),
                                                              {"a1": PAYLOAD}))
        (response,) = responses(answer, "Add")
        self.assertEqual(text(response, "airsync:Status"), "1", answer)
        return text(response, "airsync:ServerId"), file_references(response)["a1"]

    async def bob_snapshot(self) -> dict:
        """Everything of Bob's a command could change."""
        query = self.store.database.query
        bob = self.bob.id
        return {
            "account": await query("SELECT hierarchy_modseq, oof FROM accounts WHERE id = %s", (bob,)),
            "folders": await query("SELECT id, parent_id, name, type, modseq, hierarchy_modseq, deleted"
                                   " FROM folders WHERE account_id = %s ORDER BY id", (bob,)),
            "items": await query("SELECT id, folder_id, modseq, created_modseq, read, flag, categories, last_verb,"
                                 " last_verb_time, md5(content), rendition IS NULL FROM items"
                                 " WHERE account_id = %s ORDER BY id", (bob,)),
            "tombstones": await query("SELECT t.folder_id, t.item_id, t.modseq, t.soft FROM tombstones t"
                                      " JOIN folders f ON f.id = t.folder_id WHERE f.account_id = %s"
                                      " ORDER BY t.folder_id, t.modseq", (bob,)),
            "rules": await query("SELECT conversation_id, folder_id FROM conversation_rules WHERE account_id = %s",
                                 (bob,)),
            "outbound": await query("SELECT count(*) FROM outbound"),
        }

    async def assert_bob_untouched(self) -> None:
        after = await self.bob_snapshot()
        for part, rows in self.before.items():
            self.assertEqual(after[part], rows, f"Bob's {part} changed")
        self.assertEqual(len(self.before["items"]), 6)

    def assert_clean(self, answer) -> None:
        """No byte of Bob's content in an answer, raw or decoded."""
        body = answer.body.lower()
        self.assertNotIn(MARK.encode(), body, answer)
        self.assertNotIn(b"zyxpayload", body, answer)
        self.assertNotIn(base64.b64encode(PAYLOAD)[:40], answer.body, answer)
        if answer.document is not None:
            decoded = etree.tostring(answer.document, encoding="unicode").lower()
            self.assertNotIn(MARK, decoded, answer)
            self.assertNotIn(base64.b64encode(PAYLOAD).decode()[:40].lower(), decoded, answer)

    async def same_answer(self, send, foreign: tuple[str, ...], missing: tuple[str, ...]):
        """
        C{send} with Bob's ids, then with ids that exist nowhere: the
        answers must be alike, and clean.  Returns the first.
        """
        self.assertNotEqual(foreign, missing)
        answer = await send(*foreign)
        other = await send(*missing)
        self.assert_clean(answer)
        self.assert_clean(other)
        self.assertEqual(shape(answer, list(foreign)), shape(other, list(missing)))
        return answer

    async def alice_sync(self, folder, commands_xml: str, extra: str = ""):
        """One Sync of Alice's C{folder} with commands; keeps her key."""
        answer = await self.client.post("Sync", sync_xml(folder.server_id, self.keys[folder.server_id],
                                                         commands_xml, extra))
        self.assertEqual(answer.code, 200, answer)
        if answer.document is not None:
            self.keys[folder.server_id] = text(answer.document, "//airsync:Collection/airsync:SyncKey")
        return answer

    def missing_in(self, folder) -> str:
        return f"{folder.id}:{MISSING_ITEM}"

    # -- Sync --------------------------------------------------------------

    async def test_sync_foreign_collection(self):
        """A Sync of Bob's folders (to read, or to Add into them) is Status 12, as for no folder at all."""
        for folder in (self.bob_inbox, self.bob_folder, self.bob_drafts, self.bob_contacts):
            for key in ("0", self.keys[self.alice[F.INBOX].server_id]):
                answer = await self.same_answer(
                    lambda c: self.client.post("Sync", sync_xml(c, key)), (folder.server_id,), (MISSING_FOLDER,))
                self.assertEqual(text(answer.document, "//airsync:Collection/airsync:Status"), "12", answer)
        add = ("<Add><ClientId>x1</ClientId><ApplicationData><contacts:FileAs>Intruder</contacts:FileAs>"
               "</ApplicationData></Add>")
        answer = await self.same_answer(
            lambda c: self.client.post("Sync", sync_xml(c, self.keys[self.alice[F.CONTACTS].server_id], add)),
            (self.bob_contacts.server_id,), (MISSING_FOLDER,))
        self.assertEqual(text(answer.document, "//airsync:Collection/airsync:Status"), "12", answer)
        # A Sync held with Wait answers at once too.
        answer = await self.same_answer(
            lambda c: self.client.post("Sync", sync_xml(c, "0").replace("</Collections>",
                                                                        "</Collections><Wait>1</Wait>")),
            (self.bob_inbox.server_id,), (MISSING_FOLDER,))
        self.assertEqual(text(answer.document, "//airsync:Collection/airsync:Status"), "12", answer)
        await self.assert_bob_untouched()

    async def test_sync_foreign_items(self):
        """Fetch, Change and Delete of Bob's mail from Alice's Inbox: Status 8, as for no item."""
        inbox = self.alice[F.INBOX]
        change = "<ApplicationData><email:Read>1</email:Read><email:Flag><email:Status>2</email:Status>" \
                 "<email:FlagType>Follow up</email:FlagType></email:Flag></ApplicationData>"
        for kind, body, extra in (("Fetch", "", ""), ("Change", change, ""), ("Delete", "", ""),
                                  ("Delete", "", "<DeletesAsMoves>0</DeletesAsMoves>")):
            for foreign, missing in ((self.bob_mail.server_id, self.missing_in(inbox)),
                                     (f"{inbox.id}:{self.bob_mail.id}", self.missing_in(inbox)),
                                     (self.bob_mail.server_id, f"{MISSING_FOLDER}:{MISSING_ITEM}")):
                answer = await self.same_answer(
                    lambda s: self.alice_sync(inbox, f"<{kind}><ServerId>{s}</ServerId>{body}</{kind}>", extra),
                    (foreign,), (missing,))
                self.assertEqual(text(answer.document, f"//airsync:Responses/airsync:{kind}/airsync:Status"), "8",
                                 answer)
        await self.assert_bob_untouched()

    async def test_sync_foreign_contacts_and_events(self):
        """Change and Delete of Bob's contact and event from Alice's folders: Status 8."""
        cases = ((self.alice[F.CONTACTS], self.bob_contact,
                  "<ApplicationData><contacts:FirstName>Mallory</contacts:FirstName></ApplicationData>"),
                 (self.alice[F.CALENDAR], self.bob_event,
                  "<ApplicationData><calendar:Subject>Mallory</calendar:Subject></ApplicationData>"))
        for folder, server_id, data in cases:
            item = server_id.partition(":")[2]
            for kind, body in (("Fetch", ""), ("Change", data), ("Delete", "")):
                for foreign in (server_id, f"{folder.id}:{item}"):
                    answer = await self.same_answer(
                        lambda s: self.alice_sync(folder, f"<{kind}><ServerId>{s}</ServerId>{body}</{kind}>"),
                        (foreign,), (self.missing_in(folder),))
                    self.assertEqual(
                        text(answer.document, f"//airsync:Responses/airsync:{kind}/airsync:Status"), "8", answer)
        await self.assert_bob_untouched()

    async def test_drafts(self):
        """
        Bob's draft cannot be changed or sent from Alice's Drafts, and a
        FileReference to his draft's attachment deletes nothing.
        """
        drafts = self.alice[F.DRAFTS]
        item = self.bob_draft.partition(":")[2]
        data = draft_fields(subject="Hijacked", to="mallory@example.org")
        for foreign in (self.bob_draft, f"{drafts.id}:{item}"):
            for send in ("", "<email2:Send/>"):
                answer = await self.same_answer(
                    lambda s: self.client.post("Sync", draft_sync(drafts.server_id, self.keys[drafts.server_id],
                                                                  f"<Change><ServerId>{s}</ServerId><ApplicationData>"
                                                                  f"{data}</ApplicationData>{send}</Change>")),
                    (foreign,), (self.missing_in(drafts),))
                self.keys[drafts.server_id] = text(answer.document, "//airsync:Collection/airsync:SyncKey")
                (response,) = responses(answer, "Change")
                self.assertEqual(text(response, "airsync:Status"), "8", answer)
        # Alice's own draft, asked to delete Bob's draft attachment.
        answer = await self.client.post("Sync", draft_sync(drafts.server_id, self.keys[drafts.server_id],
                                                           draft_add("mine", draft_fields(subject="Mine"))))
        self.keys[drafts.server_id] = text(answer.document, "//airsync:Collection/airsync:SyncKey")
        (response,) = responses(answer, "Add")
        mine = text(response, "airsync:ServerId")
        deletion = "<airsyncbase:Attachments>{}</airsyncbase:Attachments>"

        async def delete(reference):
            answer = await self.client.post("Sync", draft_sync(
                drafts.server_id, self.keys[drafts.server_id],
                f"<Change><ServerId>{mine}</ServerId><ApplicationData>"
                f"{deletion.format(attachment_delete(reference))}</ApplicationData></Change>"))
            if answer.document is not None:
                self.keys[drafts.server_id] = text(answer.document, "//airsync:Collection/airsync:SyncKey")
            return answer

        await self.same_answer(delete, (self.bob_draft_attachment,), (f"{MISSING_FOLDER}:{MISSING_ITEM}:2",))
        await self.assert_bob_untouched()

    # -- GetItemEstimate, Ping ---------------------------------------------

    async def test_get_item_estimate(self):
        """GetItemEstimate of Bob's folder: Status 2, as for no folder."""
        key = self.keys[self.alice[F.INBOX].server_id]
        for sync_key in ("0", key):
            answer = await self.same_answer(
                lambda c: self.client.post(
                    "GetItemEstimate",
                    '<GetItemEstimate xmlns="GetItemEstimate:" xmlns:airsync="AirSync:"><Collections><Collection>'
                    f"<airsync:SyncKey>{sync_key}</airsync:SyncKey><CollectionId>{c}</CollectionId>"
                    "<airsync:Options><airsync:FilterType>0</airsync:FilterType></airsync:Options>"
                    "</Collection></Collections></GetItemEstimate>"),
                (self.bob_inbox.server_id,), (MISSING_FOLDER,))
            self.assertEqual(text(answer.document, "//getitemestimate:Response/getitemestimate:Status"), "2", answer)
        await self.assert_bob_untouched()

    async def test_ping(self):
        """A Ping watching Bob's folder is answered at once with Status 7, as for no folder."""
        answer = await self.same_answer(
            lambda c: self.client.post(
                "Ping", f'<Ping xmlns="Ping:"><HeartbeatInterval>60</HeartbeatInterval><Folders><Folder><Id>{c}</Id>'
                        "<Class>Email</Class></Folder></Folders></Ping>"),
            (self.bob_inbox.server_id,), (MISSING_FOLDER,))
        self.assertEqual(text(answer.document, "//ping:Status"), "7", answer)
        await self.assert_bob_untouched()

    # -- folders -----------------------------------------------------------

    def hierarchy(self, command: str, fields: dict):
        body = "".join(f"<{name}>{value}</{name}>" for name, value in fields.items())
        return self.client.post(command, f'<{command} xmlns="FolderHierarchy:">{body}</{command}>')

    async def test_folder_commands(self):
        """
        FolderCreate under Bob's folder (5), FolderUpdate of his folder (4)
        or of Alice's under his (5), FolderDelete of his folder (4): as
        for folders that do not exist.
        """
        key = self.hierarchy_key
        cases = (
            ("FolderCreate", lambda f: {"SyncKey": key, "ParentId": f, "DisplayName": "Mallory", "Type": "12"},
             self.bob_folder, "5"),
            ("FolderCreate", lambda f: {"SyncKey": key, "ParentId": f, "DisplayName": "Mallory", "Type": "12"},
             self.bob_inbox, "5"),
            ("FolderUpdate", lambda f: {"SyncKey": key, "ServerId": f, "ParentId": "0", "DisplayName": "Mallory"},
             self.bob_folder, "4"),
            ("FolderUpdate", lambda f: {"SyncKey": key, "ServerId": self.alice_folder.server_id, "ParentId": f,
                                        "DisplayName": "Projects"}, self.bob_folder, "5"),
            ("FolderDelete", lambda f: {"SyncKey": key, "ServerId": f}, self.bob_folder, "4"),
        )
        for command, fields, folder, status in cases:
            answer = await self.same_answer(lambda f: self.hierarchy(command, fields(f)), (folder.server_id,),
                                            (MISSING_FOLDER,))
            self.assertEqual(text(answer.document, "//folderhierarchy:Status"), status, (command, answer))
        # Alice's hierarchy still has no folder of Bob's.
        answer = await self.client.post("FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey>'
                                                      "</FolderSync>")
        self.assert_clean(answer)
        ours = {str(f.id) for f in await self.store.folders.list(self.account.id)}
        self.assertEqual(set(s.text for s in find(answer.document, "//folderhierarchy:Add/folderhierarchy:ServerId")),
                         ours)
        await self.assert_bob_untouched()

    # -- MoveItems ---------------------------------------------------------

    async def test_move_items(self):
        """Bob's item, source or destination in a MoveItems: Status 1 or 2, as for missing ones."""
        inbox, mine = self.alice[F.INBOX], self.alice_folder

        def move(source_item, source, destination):
            return self.client.post("MoveItems", f'<MoveItems xmlns="Move:"><Move><SrcMsgId>{source_item}</SrcMsgId>'
                                                 f"<SrcFldId>{source}</SrcFldId><DstFldId>{destination}</DstFldId>"
                                                 "</Move></MoveItems>")

        bob_item, nowhere = self.bob_mail.server_id, f"{MISSING_FOLDER}:{MISSING_ITEM}"
        cases = (
            # Bob's item in his folder, his folder and item, his item in Alice's folder.
            (lambda i: move(i, self.bob_inbox.id, mine.id), (bob_item,), (f"{self.bob_inbox.id}:{MISSING_ITEM}",),
             "1"),
            (lambda f, i: move(i, f, mine.id), (self.bob_inbox.server_id, bob_item), (MISSING_FOLDER, nowhere), "1"),
            (lambda i: move(i, inbox.id, mine.id), (f"{inbox.id}:{self.bob_mail.id}",), (self.missing_in(inbox),),
             "1"),
            # Alice's item into Bob's folder; Bob's item from his folder into his other folder.
            (lambda f: move(self.alice_mail, inbox.id, f), (self.bob_folder.server_id,), (MISSING_FOLDER,), "2"),
            (lambda f, i: move(i, f, self.bob_inbox.id), (self.bob_folder.server_id, self.bob_archived),
             (MISSING_FOLDER, nowhere), "1"),
        )
        for send, foreign, missing, status in cases:
            answer = await self.same_answer(send, foreign, missing)
            self.assertEqual(text(answer.document, "//move:Response/move:Status"), status, answer)
        # Alice's own message stayed where it was.
        self.assertEqual((await self.store.items.get(self.account.id, int(self.alice_mail.split(":")[1]))).folder_id,
                         inbox.id)
        await self.assert_bob_untouched()

    # -- ItemOperations, GetAttachment ---------------------------------------

    def operations(self, body: str):
        return self.client.post("ItemOperations", f"{IO_HEAD}{body}</ItemOperations>")

    async def test_item_operations_fetch(self):
        """Fetch of Bob's items by CollectionId/ServerId or LongId: Status 6, as for none."""
        inbox = self.alice[F.INBOX]
        for server_id in (self.bob_mail.server_id, self.bob_contact, self.bob_event, self.bob_draft,
                          self.bob_archived):
            folder = server_id.partition(":")[0]
            cases = (
                (lambda c, s: f"<Fetch><Store>Mailbox</Store><airsync:CollectionId>{c}</airsync:CollectionId>"
                              f"<airsync:ServerId>{s}</airsync:ServerId></Fetch>",
                 (folder, server_id), (MISSING_FOLDER, f"{MISSING_FOLDER}:{MISSING_ITEM}")),
                (lambda c, s: f"<Fetch><Store>Mailbox</Store><airsync:CollectionId>{c}</airsync:CollectionId>"
                              f"<airsync:ServerId>{s}</airsync:ServerId></Fetch>",
                 (str(inbox.id), f"{inbox.id}:{server_id.partition(':')[2]}"),
                 (str(inbox.id), self.missing_in(inbox))),
                (lambda s: f"<Fetch><Store>Mailbox</Store><search:LongId>{s}</search:LongId>"
                           f"<Options><airsync:MIMESupport>2</airsync:MIMESupport></Options></Fetch>",
                 (server_id,), (f"{MISSING_FOLDER}:{MISSING_ITEM}",)),
            )
            for build, foreign, missing in cases:
                answer = await self.same_answer(lambda *ids: self.operations(build(*ids)), foreign, missing)
                self.assertEqual(text(answer.document, "//itemoperations:Fetch/itemoperations:Status"), "6", answer)
        await self.assert_bob_untouched()

    async def test_attachments(self):
        """
        Bob's attachments (of a delivered message, of a draft) by
        FileReference: ItemOperations Status 15, GetAttachment HTTP 500,
        as for attachments that do not exist.
        """
        for reference in (self.bob_attachment, self.bob_draft_attachment):
            missing = f"{MISSING_FOLDER}:{MISSING_ITEM}:{reference.rpartition(':')[2]}"
            answer = await self.same_answer(
                lambda r: self.operations(f"<Fetch><Store>Mailbox</Store><airsyncbase:FileReference>{r}"
                                          "</airsyncbase:FileReference></Fetch>"), (reference,), (missing,))
            self.assertEqual(text(answer.document, "//itemoperations:Fetch/itemoperations:Status"), "15", answer)
            answer = await self.same_answer(
                lambda r: self.operations(f"<Fetch><Store>Mailbox</Store><airsyncbase:FileReference>{r}"
                                          "</airsyncbase:FileReference><Options><Range>0-10</Range></Options>"
                                          "</Fetch>"),
                (reference,), (missing,))
            self.assertEqual(text(answer.document, "//itemoperations:Fetch/itemoperations:Status"), "15", answer)
            for version in ("16.1", "12.1"):
                self.client.version = version
                answer = await self.same_answer(
                    lambda r: self.client.post("GetAttachment", params={"AttachmentName": r}), (reference,),
                    (missing,))
                self.assertEqual(answer.code, 500)
            self.client.version = "16.1"
        await self.assert_bob_untouched()

    async def test_empty_folder_contents(self):
        """EmptyFolderContents of Bob's folders: Status 6, and nothing of his goes."""
        for folder in (self.bob_inbox, self.bob_folder, self.bob_drafts):
            answer = await self.same_answer(
                lambda c: self.operations(f"<EmptyFolderContents><airsync:CollectionId>{c}</airsync:CollectionId>"
                                          "<Options><DeleteSubFolders/></Options></EmptyFolderContents>"),
                (folder.server_id,), (MISSING_FOLDER,))
            self.assertEqual(text(answer.document, "//itemoperations:EmptyFolderContents/itemoperations:Status"),
                             "6", answer)
        await self.assert_bob_untouched()

    async def test_conversation_move(self):
        """
        Move of Bob's conversation (MoveAlways) into Alice's folder, or of
        Alice's into Bob's folder: Status 6, no rule left behind.  In a
        conversation both have, Alice's Move and rule take her messages
        only: Bob's stay, and his later ones still reach his Inbox.
        """
        alice_conversation = parse_message(plain("Lunch", "Alice <alice@example.org>",
                                                 "lunch-1@example.net")).conversation_id

        def move(conversation: bytes, destination: str):
            return self.operations(
                f"<Move><ConversationId>{base64.b64encode(conversation).decode()}</ConversationId>"
                f"<DstFldId>{destination}</DstFldId><Options><MoveAlways/></Options></Move>")

        answer = await self.same_answer(lambda c: move(base64.b64decode(c), self.alice_folder.server_id),
                                        (base64.b64encode(self.bob_conversation).decode(),),
                                        (base64.b64encode(MISSING_CONVERSATION).decode(),))
        self.assertEqual(text(answer.document, "//itemoperations:Move/itemoperations:Status"), "6", answer)
        for destination in (self.bob_folder, self.bob_inbox):
            answer = await self.same_answer(lambda d: move(alice_conversation, d), (destination.server_id,),
                                            (MISSING_FOLDER,))
            self.assertEqual(text(answer.document, "//itemoperations:Move/itemoperations:Status"), "6", answer)
        self.assertEqual(await self.store.conversations.list(self.account.id), [])
        await self.assert_bob_untouched()
        # A conversation both have: Alice's Move takes her messages only,
        # and her rule sends only her later copies to her folder.
        def reply(number: int) -> bytes:
            return plain("Re: shared plans", f"Bob <{BOB}>, alice@example.org", f"shared-{number}@example.net"
                         ).replace(b"Message-ID:", b"References: <zyx-1@example.net>\r\nMessage-ID:")

        await self.lmtp_deliver(reply(1), ["alice@example.org"])
        answer = await move(self.bob_conversation, self.alice_folder.server_id)
        self.assertEqual(text(answer.document, "//itemoperations:Move/itemoperations:Status"), "1", answer)
        self.assertEqual(len(await self.store.items.folder_items(self.account.id, self.alice_folder.id)), 1)
        await self.assert_bob_untouched()
        await self.lmtp_deliver(reply(2), [BOB, "alice@example.org"])
        self.assertEqual(len(await self.store.items.folder_items(self.account.id, self.alice_folder.id)), 2)
        landed = [i for i in await self.store.items.folder_items(self.bob.id, self.bob_inbox.id)
                  if i.summary.get("subject") == "Re: shared plans"]
        self.assertEqual(len(landed), 1)
        self.assertEqual(await self.store.conversations.list(self.bob.id), [])

    # -- SendMail, SmartReply, SmartForward -------------------------------

    async def test_smart_reply_and_forward(self):
        """
        SmartReply/SmartForward naming Bob's message (ItemId, FolderId,
        LongId; the 12.1 query form too): 150 (HTTP 500 in 12.1), and
        nothing is sent, quoted or stamped.
        """
        numbers = iter(range(1000))
        for command in ("SmartReply", "SmartForward"):
            for source in (lambda s: {"ItemId": s}, lambda s: {"FolderId": s.partition(":")[0], "ItemId": s},
                           lambda s: {"LongId": s}):
                for foreign in (self.bob_mail.server_id, f"{self.alice[F.INBOX].id}:{self.bob_mail.id}",
                                self.bob_invitation.server_id):
                    answer = await self.same_answer(
                        lambda s: self.client.post(command, compose_document(
                            command, mime(to="alice@example.org", subject="Fwd"), client_id=f"c{next(numbers)}",
                            source=source(s), save=True)),
                        (foreign,), (f"{MISSING_FOLDER}:{MISSING_ITEM}",))
                    self.assertEqual(text(answer.document, "//composemail:Status"), "150", answer)
        old = await self.provisioned("OLDPHONE", "12.1")
        for command in ("SmartReply", "SmartForward"):
            for name in ("ItemId", "LongId"):
                answer = await self.same_answer(
                    lambda s, c: old.post(command, body=mime(to="alice@example.org", subject="Fwd"),
                                          params={name: s, "CollectionId": c, "SaveInSent": "T"},
                                          headers={"Content-Type": "message/rfc822"}),
                    (self.bob_mail.server_id, self.bob_inbox.server_id), (f"{MISSING_FOLDER}:{MISSING_ITEM}",
                                                                          MISSING_FOLDER))
                self.assertEqual(answer.code, 500, answer)
        # Nothing reached Alice (no quoted copy of Bob's message), nothing was queued.
        subjects = [i.summary.get("subject") for i in await self.store.items.folder_items(self.account.id,
                                                                                           self.alice[F.INBOX].id)]
        self.assertEqual(subjects, ["Lunch"])
        await self.assert_bob_untouched()

    # -- MeetingResponse -----------------------------------------------------

    async def test_meeting_response(self):
        """
        MeetingResponse to Bob's invitation or event (RequestId with or
        without CollectionId, LongId): Status 2, as for none; Bob's event
        and invitation stay as they were, and no reply is sent.
        """
        head = '<MeetingResponse xmlns="MeetingResponse:" xmlns:search="Search:">'
        for server_id in (self.bob_invitation.server_id, self.bob_event):
            folder = server_id.partition(":")[0]
            for response in ("1", "3"):
                cases = (
                    (lambda c, r: f"<Request><UserResponse>{response}</UserResponse><CollectionId>{c}</CollectionId>"
                                  f"<RequestId>{r}</RequestId><SendResponse/></Request>",
                     (folder, server_id), (MISSING_FOLDER, f"{MISSING_FOLDER}:{MISSING_ITEM}")),
                    (lambda r: f"<Request><UserResponse>{response}</UserResponse><RequestId>{r}</RequestId></Request>",
                     (server_id,), (f"{MISSING_FOLDER}:{MISSING_ITEM}",)),
                    (lambda r: f"<Request><UserResponse>{response}</UserResponse><search:LongId>{r}</search:LongId>"
                               "<SendResponse/></Request>",
                     (server_id,), (f"{MISSING_FOLDER}:{MISSING_ITEM}",)),
                )
                for build, foreign, missing in cases:
                    answer = await self.same_answer(
                        lambda *ids: self.client.post("MeetingResponse", f"{head}{build(*ids)}</MeetingResponse>"),
                        foreign, missing)
                    self.assertEqual(text(answer.document, "//meetingresponse:Result/meetingresponse:Status"), "2",
                                     answer)
        self.assertEqual(await self.store.items.folder_items(self.account.id, self.alice[F.CALENDAR].id), [])
        await self.assert_bob_untouched()

    # -- Search, ResolveRecipients, Settings --------------------------------

    def search(self, and_body: str, name: str = "Mailbox", query: str | None = None):
        query = query if query is not None else f"<Query><And>{and_body}</And></Query>"
        return self.client.post(
            "Search", '<Search xmlns="Search:" xmlns:airsync="AirSync:" xmlns:airsyncbase="AirSyncBase:">'
                      f"<Store><Name>{name}</Name>{query}<Options><Range>0-9</Range><DeepTraversal/>"
                      f"{PLAIN}</Options></Store></Search>")

    async def test_search(self):
        """
        A mailbox search never finds Bob's mail: his folder in the query
        is Status 11 as a missing one, his words and his conversation find
        what an unknown word or conversation finds.
        """
        for folder in (self.bob_inbox, self.bob_folder):
            answer = await self.same_answer(
                lambda c: self.search(f"<airsync:Class>Email</airsync:Class><airsync:CollectionId>{c}"
                                      "</airsync:CollectionId><FreeText>plans</FreeText>"),
                (folder.server_id,), (MISSING_FOLDER,))
            self.assertEqual(text(answer.document, "//search:Store/search:Status"), "11", answer)
        # Bob's words: the word itself is echoed nowhere, so compare whole answers.
        found = await self.search(f"<FreeText>{MARK}</FreeText>")
        none = await self.search("<FreeText>qqqwwwnothing</FreeText>")
        self.assert_clean(found)
        self.assertEqual(shape(found, []), shape(none, []))
        self.assertEqual(text(found.document, "//search:Store/search:Total"), "0", found)
        for word in ("plans", "meeting", "archived", "draft"):
            answer = await self.search(f"<FreeText>{word}</FreeText>")
            self.assert_clean(answer)
            self.assertEqual(text(answer.document, "//search:Store/search:Total"), "0", answer)
        answer = await self.same_answer(
            lambda c: self.search(f"<ConversationId>{c}</ConversationId>"),
            (base64.b64encode(self.bob_conversation).decode(),), (base64.b64encode(MISSING_CONVERSATION).decode(),))
        self.assertEqual(text(answer.document, "//search:Store/search:Total"), "0", answer)
        await self.assert_bob_untouched()

    async def test_directory(self):
        """
        GAL search and ResolveRecipients show Bob's directory entry (name,
        address) and nothing else of his; Settings and FolderSync show
        nothing of his at all.
        """
        directory = {"DisplayName", "Alias", "FirstName", "LastName", "EmailAddress", "Picture"}
        answer = await self.search("", name="GAL", query="<Query>Bob</Query>")
        self.assert_clean(answer)
        results = find(answer.document, "//search:Result/search:Properties")
        self.assertEqual([text(r, "gal:EmailAddress") for r in results], [BOB])
        self.assertLessEqual({etree.QName(c).localname for c in results[0]}, directory)
        answer = await self.client.post(
            "ResolveRecipients", '<ResolveRecipients xmlns="ResolveRecipients:"><To>bob@example.org</To>'
                                 "<To>Bob</To><To>bob.private@example.org</To></ResolveRecipients>")
        self.assert_clean(answer)
        recipients = find(answer.document, "//resolverecipients:Recipient")
        self.assertEqual({text(r, "resolverecipients:EmailAddress") for r in recipients}, {BOB})
        allowed = {"Type", "DisplayName", "EmailAddress", "Availability", "Certificates", "Picture"}
        for recipient in recipients:
            self.assertLessEqual({etree.QName(c).localname for c in recipient}, allowed)
        answer = await self.client.post(
            "Settings", '<Settings xmlns="Settings:"><Oof><Get><BodyType>Text</BodyType></Get></Oof>'
                        "<UserInformation><Get/></UserInformation></Settings>")
        self.assert_clean(answer)
        self.assertNotIn(b"bob", answer.body.lower())
        # A new phone of Alice's syncing everything she has gets nothing of Bob's.
        tablet = await self.provisioned("TABLET")
        answer = await tablet.post("FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey>'
                                                 "</FolderSync>")
        self.assert_clean(answer)
        for folder in await self.store.folders.list(self.account.id):
            answer = await self.sync(tablet, folder.server_id, "0")
            answer = await self.sync(tablet, folder.server_id, text(answer.document, "//airsync:SyncKey"))
            self.assert_clean(answer)
        await self.assert_bob_untouched()

    # -- meeting mail --------------------------------------------------------

    async def test_meeting_mail_in_the_organizer_name(self):
        """
        Alice, who knows the UID of Carol's meeting with Bob (she may be
        invited too), sends Bob a CANCEL and an updated REQUEST that name
        Carol as organizer, and herself as Carol's SENT-BY: the messages
        reach Bob's Inbox as any mail, but only Carol, or the delegate the
        stored meeting names, can change or cancel it in Bob's calendar.
        """
        before = (await self.store.items.folder_items(self.bob.id, self.bob_calendar.id))[0].content

        def meeting(method: str, sequence: int, sender: str, sent_by: str | None = None) -> bytes:
            raw = imipdata.message(method, imipdata.vevent(uid=UID, sequence=sequence, summary=f"{method} {sequence}",
                                                           start="20260311T100000", end="20260311T110000",
                                                           attendees=(BOB,)),
                                   sender=sender, to=BOB, subject="Update",
                                   message_id=f"<{method}-{sequence}@example.org>")
            if sent_by:
                raw = raw.replace(b"ORGANIZER;CN=Carol Organizer:",
                                  f'ORGANIZER;CN=Carol Organizer;SENT-BY="mailto:{sent_by}":'.encode())
            return raw

        number = 0
        for method in ("REQUEST", "CANCEL"):
            for sent_by in (None, "alice@example.org"):
                number += 1
                forged = meeting(method, 10 + number, "Alice <alice@example.org>", sent_by)
                answer = await self.client.post("SendMail", compose_document("SendMail", forged,
                                                                             client_id=f"f{number}"))
                self.assertEqual((answer.code, answer.body), (200, b""), answer)
                events = await self.store.items.folder_items(self.bob.id, self.bob_calendar.id)
                self.assertEqual([event.content for event in events], [before], (method, sent_by))
        # Carol can, and so, once Carol's update names him, can her delegate Dan.
        await self.lmtp_deliver(meeting("REQUEST", 20, "Carol <carol@example.net>", "dan@example.net"), [BOB])
        await self.lmtp_deliver(meeting("REQUEST", 21, "Dan <dan@example.net>", "dan@example.net"), [BOB])
        (event,) = await self.store.items.folder_items(self.bob.id, self.bob_calendar.id)
        self.assertIn(b"SUMMARY:REQUEST 21", event.content)
        await self.lmtp_deliver(meeting("CANCEL", 22, "Carol <carol@example.net>"), [BOB])
        self.assertEqual(await self.store.items.folder_items(self.bob.id, self.bob_calendar.id), [])

    async def test_reply_in_another_attendees_name(self):
        """
        Alice, invited to Bob's meeting with Dave, cannot answer for Dave
        by naming herself his SENT-BY: only an attendee, or the SENT-BY
        Bob's stored event names for them, changes their answer there.
        Her own answer is recorded as before.
        """
        from bluesync.mail import calendar_ingest

        uid = "bob-meeting@example.org"
        people = ("alice@example.org", "dave@example.net")
        stored = imipdata.calendar("REQUEST", imipdata.vevent(uid=uid, organizer=BOB, attendees=people))
        stored = stored.replace("METHOD:REQUEST\r\n", "").encode()
        await calendar_ingest.add_event(self.store, self.bob, self.bob_calendar, stored)

        def reply(attendee: str, partstat: str, sent_by: str | None, number: int) -> bytes:
            raw = imipdata.message("REPLY", imipdata.vevent(uid=uid, organizer=BOB, attendees=(attendee,),
                                                            partstat=partstat),
                                   sender="Alice <alice@example.org>", to=BOB, subject="Answer",
                                   message_id=f"<reply-{number}@example.org>")
            if sent_by:
                raw = raw.replace(f"RSVP=TRUE:mailto:{attendee}".encode(),
                                  f'RSVP=TRUE;SENT-BY="mailto:{sent_by}":mailto:{attendee}'.encode())
            return raw

        async def partstats() -> dict[str, str]:
            (event,) = [i for i in await self.store.items.folder_items(self.bob.id, self.bob_calendar.id)
                        if uid.encode() in i.content]
            lines = event.content.decode().replace("\r\n ", "").split("\r\n")
            return {who: next(part.partition("=")[2] for line in lines if line.startswith("ATTENDEE")
                              and line.endswith(who) for part in line.split(";") if part.startswith("PARTSTAT="))
                    for who in people}

        for number, (attendee, sent_by) in enumerate((("dave@example.net", "alice@example.org"),
                                                      ("dave@example.net", None))):
            answer = await self.client.post("SendMail", compose_document(
                "SendMail", reply(attendee, "DECLINED", sent_by, number), client_id=f"r{number}"))
            self.assertEqual((answer.code, answer.body), (200, b""), answer)
            self.assertEqual(await partstats(), {who: "NEEDS-ACTION" for who in people}, sent_by)
        answer = await self.client.post("SendMail", compose_document(
            "SendMail", reply("alice@example.org", "ACCEPTED", None, 9), client_id="r9"))
        self.assertEqual((answer.code, answer.body), (200, b""), answer)
        self.assertEqual(await partstats(), {"alice@example.org": "ACCEPTED", "dave@example.net": "NEEDS-ACTION"})

    async def test_find(self):
        """
        Find (16.1): Bob's folder as CollectionId is Status 3, as a missing
        one; his words find nothing; GAL shows only his directory entry.
        """
        search_id = "6d9c4c8e-3f0a-4bd5-9a53-0c1b2f7e9d11"
        for folder in (self.bob_inbox, self.bob_folder):
            for deep in (False, True):
                answer = await self.same_answer(
                    lambda c: self.client.post("Find", mailbox_find("plans", collection=c, deep=deep,
                                                                    search_id=search_id)),
                    (folder.server_id,), (MISSING_FOLDER,))
                self.assertIn("3", [s.text for s in find(answer.document, "//find:Status")], answer)
        for word in (MARK, "plans", "meeting", "archived", "draft"):
            answer = await self.client.post("Find", mailbox_find(word, search_id=search_id))
            self.assert_clean(answer)
            self.assertEqual(find(answer.document, "//find:Result/find:Properties"), [], answer)
        answer = await self.client.post("Find", gal_find("Bob", search_id=search_id))
        self.assert_clean(answer)
        results = find(answer.document, "//find:Result/find:Properties")
        self.assertEqual([text(r, "gal:EmailAddress") for r in results], [BOB])
        self.assertLessEqual({etree.QName(c).localname for c in results[0]},
                             {"DisplayName", "Alias", "FirstName", "LastName", "EmailAddress", "Picture"})
        await self.assert_bob_untouched()

    async def test_protocol_12_1(self):
        """The 12.1 forms (Class in Sync, GetItemEstimate's own namespace) keep to the account as well."""
        old = await self.provisioned("OLDPHONE", "12.1")
        inbox = self.alice[F.INBOX]
        key, _ = await self.synced(old, inbox)
        answer = await self.same_answer(
            lambda c: old.post("Sync", sync_xml(c, key).replace("<Options>", "<Class>Email</Class><Options>")),
            (self.bob_inbox.server_id,), (MISSING_FOLDER,))
        self.assertEqual(text(answer.document, "//airsync:Collection/airsync:Status"), "12", answer)
        answer = await self.same_answer(
            lambda c: old.post("GetItemEstimate",
                               '<GetItemEstimate xmlns="GetItemEstimate:" xmlns:airsync="AirSync:"><Collections>'
                               f"<Collection><Class>Email</Class><CollectionId>{c}</CollectionId>"
                               "<airsync:FilterType>0</airsync:FilterType>"
                               f"<airsync:SyncKey>{key}</airsync:SyncKey></Collection></Collections>"
                               "</GetItemEstimate>"),
            (self.bob_inbox.server_id,), (MISSING_FOLDER,))
        self.assertEqual(text(answer.document, "//getitemestimate:Response/getitemestimate:Status"), "2", answer)
        keys = [key]

        async def fetch(server_id):
            answer = await old.post("Sync", sync_xml(inbox.server_id, keys[-1],
                                                     f"<Fetch><ServerId>{server_id}</ServerId></Fetch>"))
            keys.append(text(answer.document, "//airsync:Collection/airsync:SyncKey"))
            return answer

        answer = await self.same_answer(fetch, (f"{inbox.id}:{self.bob_mail.id}",), (self.missing_in(inbox),))
        self.assertEqual(text(answer.document, "//airsync:Responses/airsync:Fetch/airsync:Status"), "8", answer)
        await self.assert_bob_untouched()
