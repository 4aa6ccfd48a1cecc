"""
MoveAlways end to end: ItemOperations Move over TCP to the real Site, then
mail delivered by the real LMTP server, on a real PostgreSQL.  The
conversation's next messages land in the destination, wake Pings held on
it and reach the phone through Sync; deleting the destination ends the
rule.
"""

from __future__ import annotations

import base64

from twisted.internet import defer

from bluesync.items.email import parse_message
from bluesync.store import folders as F
from tests.eas.client import find, text
from tests.eas.mailbox import MailboxTestCase, message
from tests.eas.test_sendmail import compose_document
from tests.mail.lmtpclient import LMTPServer
from tests.push.helpers import hold_folder_deletion, until, until_waiting_for_lock

HEAD = '<ItemOperations xmlns="ItemOperations:">'


def move_request(conversation: bytes, destination: str) -> str:
    return (f"{HEAD}<Move><ConversationId>{base64.b64encode(conversation).decode()}</ConversationId>"
            f"<DstFldId>{destination}</DstFldId><Options><MoveAlways/></Options></Move></ItemOperations>")


def reply(number: int, to: str = "Alice <alice@example.org>") -> bytes:
    """A message answering <m1@example.net>, the root of the conversation."""
    return message(number, "Re: Plans", references="m1@example.net").replace(
        b"To: Alice <alice@example.org>", f"To: {to}".encode())


class ConversationRuleTests(MailboxTestCase):
    # A transaction held open, a request waiting for its lock, and the test's
    # own queries each need a connection.
    pool_size = 4

    async def _set_up(self):
        await super()._set_up()
        self.lmtp = LMTPServer(self, self.store, self.config.mail)
        self.archive, _ = await self.store.folders.create(self.account.id, None, "Archive", F.USER_MAIL)
        root = message(1, "Plans")
        self.conversation = parse_message(root).conversation_id
        await self.lmtp_deliver(root)

    async def lmtp_deliver(self, raw: bytes, recipients=("alice@example.org",)) -> None:
        self.assertEqual(await self.lmtp.deliver(raw, recipients), {})

    async def move(self, destination, client=None) -> str:
        answer = await (client or self.client).post("ItemOperations", move_request(self.conversation,
                                                                                   destination.server_id))
        self.assertEqual(answer.code, 200, answer)
        return text(find(answer.document, "//itemoperations:Response/itemoperations:Move")[0], "itemoperations:Status")

    async def subjects(self, folder, account=None) -> list[str]:
        items = await self.store.items.folder_items((account or self.account).id, folder.id)
        return [item.summary["subject"] for item in items]

    async def test_future_messages_follow(self):
        """
        After MoveAlways a reply delivered over LMTP lands in the
        destination, wakes a Ping held on it and comes with the next Sync;
        other mail still goes to the Inbox.
        """
        await self.client.post("FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>')
        self.assertEqual(await self.move(self.archive), "1")
        self.assertEqual(await self.subjects(self.archive), ["Plans"])
        key, adds = await self.synced(self.client, self.archive)
        self.assertEqual(len(adds), 1)
        ping = defer.ensureDeferred(self.client.post(
            "Ping", '<Ping xmlns="Ping:"><HeartbeatInterval>300</HeartbeatInterval><Folders><Folder>'
                    f"<Id>{self.archive.server_id}</Id><Class>Email</Class></Folder></Folders></Ping>"))
        await until(lambda: self.notifier.held_count() == 1, "a held Ping")
        await self.lmtp_deliver(reply(2))
        self.assertEqual(await self.subjects(self.archive), ["Plans", "Re: Plans"])
        self.assertEqual(await self.subjects(self.inbox), [])
        answer = await ping
        self.assertEqual(text(answer.document, "/ping:Ping/ping:Status"), "2")
        self.assertEqual([e.text for e in find(answer.document, "//ping:Folders/ping:Folder")],
                         [self.archive.server_id])
        _, adds, _ = await self.changes(self.client, self.archive, key)
        (added,) = adds
        item = await self.store.items.get(self.account.id, int(added.split(":")[1]))
        self.assertEqual((item.folder_id, item.summary["subject"]), (self.archive.id, "Re: Plans"))
        await self.lmtp_deliver(message(3, "Something else"))
        self.assertEqual(await self.subjects(self.inbox), ["Something else"])

    async def test_rule_is_per_account(self):
        """One LMTP transaction to two accounts: only the one that asked has its copy moved."""
        bob = await self.create_account("bob@example.org", "another secret", "Bob")
        bob_inbox = await self.folder(F.INBOX, bob)
        self.assertEqual(await self.move(self.archive), "1")
        await self.lmtp_deliver(reply(2), ["alice@example.org", "bob@example.org"])
        self.assertEqual(await self.subjects(self.archive), ["Plans", "Re: Plans"])
        self.assertEqual(await self.subjects(bob_inbox, bob), ["Re: Plans"])

    async def test_local_sender_follows_rule(self):
        """A reply sent with SendMail by another account of this server lands in the destination too."""
        await self.create_account("bob@example.org", "another secret", "Bob")
        bob = await self.provisioned("BOBPHONE", user="bob@example.org", password="another secret")
        self.assertEqual(await self.move(self.archive), "1")
        answer = await bob.post("SendMail", compose_document("SendMail", (
            "From: Bob <bob@example.org>\r\nTo: Alice <alice@example.org>\r\nSubject: Re: Plans\r\n"
            "In-Reply-To: <m1@example.net>\r\nReferences: <m1@example.net>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nFine by me.\r\n").encode()))
        self.assertEqual(answer.code, 200, answer)
        self.assertEqual(await self.subjects(self.archive), ["Plans", "Re: Plans"])
        self.assertEqual(await self.subjects(self.inbox), [])

    async def test_local_sender_folder_deleted_meanwhile(self):
        """
        SendMail's copy for Alice, sent while the rule's folder is being
        deleted (the delete holds its lock), is not stamped into the deleted
        folder: the submission finds it deleted under the lock, stores
        nothing, looks again and puts the copy in the Inbox; the phone is
        told it was sent.
        """
        await self.create_account("bob@example.org", "another secret", "Bob")
        bob = await self.provisioned("BOBPHONE", user="bob@example.org", password="another secret")
        self.assertEqual(await self.move(self.archive), "1")
        release, deleting = await hold_folder_deletion(self.database, self.archive.id)
        sending = defer.ensureDeferred(bob.post("SendMail", compose_document("SendMail", (
            "From: Bob <bob@example.org>\r\nTo: Alice <alice@example.org>\r\nSubject: Re: Plans\r\n"
            "In-Reply-To: <m1@example.net>\r\nReferences: <m1@example.net>\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nFine by me.\r\n").encode())))

        await until_waiting_for_lock(self.database, "the submission waiting for the folder lock")
        release.callback(None)
        await deleting
        answer = await sending
        self.assertEqual(answer.code, 200, answer)
        rows = await self.database.query(
            "SELECT folder_id, subject FROM items WHERE account_id = %s AND subject = 'Re: Plans'",
            (self.account.id,))
        self.assertEqual(rows, [(self.inbox.id, "Re: Plans")])

    async def test_later_move_replaces_rule(self):
        """A second MoveAlways of the conversation sends its future messages to the new folder."""
        projects, _ = await self.store.folders.create(self.account.id, None, "Projects", F.USER_MAIL)
        self.assertEqual(await self.move(self.archive), "1")
        self.assertEqual(await self.move(projects), "1")
        await self.lmtp_deliver(reply(2))
        self.assertEqual(await self.subjects(projects), ["Plans", "Re: Plans"])
        self.assertEqual(await self.subjects(self.archive), [])
        self.assertEqual([r.folder_id for r in await self.store.conversations.list(self.account.id)], [projects.id])

    async def test_deleted_destination_ends_rule(self):
        """FolderDelete of the destination drops the rule: the next reply lands in the Inbox."""
        self.assertEqual(await self.move(self.archive), "1")
        key = text((await self.client.post(
            "FolderSync", '<FolderSync xmlns="FolderHierarchy:"><SyncKey>0</SyncKey></FolderSync>')).document,
            "//folderhierarchy:SyncKey")
        answer = await self.client.post(
            "FolderDelete", f'<FolderDelete xmlns="FolderHierarchy:"><SyncKey>{key}</SyncKey>'
                            f"<ServerId>{self.archive.server_id}</ServerId></FolderDelete>")
        self.assertEqual(text(answer.document, "//folderhierarchy:Status"), "1")
        self.assertEqual(await self.store.conversations.list(self.account.id), [])
        await self.lmtp_deliver(reply(2))
        self.assertEqual(await self.subjects(self.inbox), ["Re: Plans"])

    async def test_unknown_conversation_keeps_no_rule(self):
        """A Move answered 6 (no such conversation) leaves no rule behind, nor changes an existing one."""
        self.assertEqual(await self.move(self.archive), "1")
        self.conversation, known = b"\x01" * 16, self.conversation
        self.assertEqual(await self.move(self.inbox), "6")
        rules = await self.store.conversations.list(self.account.id)
        self.assertEqual([(r.conversation_id, r.folder_id) for r in rules], [(known, self.archive.id)])
