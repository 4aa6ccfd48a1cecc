"""
Final delivery into the store: the item a message becomes, and the
all-or-nothing write of its copies.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from bluesync.items.email import MessageSummary, parse_message
from bluesync.items.records import from_record
from bluesync.mail.delivery import NoInbox, deliver, new_email_item, summary_record
from bluesync.store.folders import INBOX
from bluesync.store.items import MissingFolder, NewItem
from tests.support import DatabaseTestCase

RECEIVED = datetime(2024, 5, 14, 7, 31, 2, tzinfo=timezone.utc)

MESSAGE = (
    b"From: =?utf-8?Q?Z=C3=BCrich_Office?= <office@example.ch>\r\n"
    b"To: Alice <alice@example.org>\r\n"
    b"Subject: Quarterly report\r\n"
    b"Date: Tue, 14 May 2024 09:30:00 +0200\r\n"
    b"Message-ID: <report-7@example.ch>\r\n"
    b"Importance: high\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"b\"\r\n"
    b"\r\n"
    b"--b\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"The report is attached.\r\n"
    b"--b\r\n"
    b"Content-Type: application/pdf; name=\"q2.pdf\"\r\n"
    b"Content-Disposition: attachment; filename=\"q2.pdf\"\r\n"
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"JVBERi0xLjQK\r\n"
    b"--b--\r\n"
)


class NewEmailItemTests(DatabaseTestCase):
    def test_columns(self):
        """The searchable columns come from the parsed summary, the content is the raw bytes."""
        item = new_email_item(MESSAGE, RECEIVED)
        summary = parse_message(MESSAGE, RECEIVED)
        self.assertEqual(item.content_class, "Email")
        self.assertIs(item.content, MESSAGE)
        self.assertEqual(item.columns, {
            "subject": "Quarterly report",
            "from_address": summary.from_,
            "date_received": RECEIVED,
            "message_id": "<report-7@example.ch>",
            "size": len(MESSAGE),
            "importance": 2,
            "has_attachments": True,
            "message_class": summary.message_class,
            "conversation_id": summary.conversation_id,
        })
        self.assertIn("Zürich Office", item.columns["from_address"])

    def test_summary_round_trip(self):
        """from_record rebuilds the MessageSummary, every field but the search text intact."""
        item = new_email_item(MESSAGE, RECEIVED)
        summary = parse_message(MESSAGE, RECEIVED)
        self.assertTrue(summary.body_text_for_search)
        self.assertEqual(from_record(MessageSummary, item.summary),
                         dataclasses.replace(summary, body_text_for_search=""))

    def test_unstorable_text_cleaned(self):
        """NUL characters and lone surrogates, which PostgreSQL refuses, are removed from the record."""
        summary = dataclasses.replace(parse_message(MESSAGE, RECEIVED), subject="a\x00b\udcff",
                                      recipients=("x\x00@example.org",))
        record = summary_record(summary)
        self.assertEqual(record["subject"], "ab?")
        self.assertEqual(record["recipients"], ["x@example.org"])


class DeliverTests(DatabaseTestCase):
    async def _set_up(self) -> None:
        await super()._set_up()
        self.alice = await self.store.create_account("alice@example.org", "Alice", "x")
        self.bob = await self.store.create_account("bob@example.org", "Bob", "x")

    async def inbox(self, account):
        return await self.store.folders.by_type(account.id, INBOX)

    async def test_one_copy_per_account(self):
        """Each distinct account gets one copy in its Inbox, byte for byte, in first-seen order."""
        ids = await deliver(self.store, [self.bob, self.alice, self.bob], MESSAGE, RECEIVED)
        self.assertEqual(len(ids), 2)
        bob_item = await self.store.items.get(self.bob.id, ids[0])
        alice_item = await self.store.items.get(self.alice.id, ids[1])
        self.assertEqual(bob_item.content, MESSAGE)
        self.assertEqual(alice_item.content, MESSAGE)
        self.assertEqual(alice_item.folder_id, (await self.inbox(self.alice)).id)
        self.assertEqual(alice_item.date_received, RECEIVED)
        self.assertFalse(alice_item.read)
        self.assertEqual(from_record(MessageSummary, alice_item.summary).subject, "Quarterly report")
        self.assertEqual(await self.store.items.count(self.bob.id, bob_item.folder_id), 1)

    async def test_stamps_inbox(self):
        """Delivery advances the Inbox modseq and stamps the new item with it."""
        before = await self.inbox(self.alice)
        [item_id] = await deliver(self.store, [self.alice], MESSAGE, RECEIVED)
        after = await self.inbox(self.alice)
        item = await self.store.items.get(self.alice.id, item_id, with_content=False)
        self.assertEqual(after.modseq, before.modseq + 1)
        self.assertEqual(item.modseq, after.modseq)

    async def test_no_inbox_stores_nothing(self):
        """An account without an Inbox fails the delivery before anything is written for the others."""
        await self.database.execute("UPDATE folders SET deleted = true WHERE account_id = %s AND type = %s",
                                    (self.bob.id, INBOX))
        with self.assertRaises(NoInbox):
            await deliver(self.store, [self.alice, self.bob], MESSAGE, RECEIVED)
        inbox = await self.inbox(self.alice)
        self.assertEqual(await self.store.items.count(self.alice.id, inbox.id), 0)

    async def test_unstorable_text_delivered(self):
        """A record with NUL and surrogates cleaned is accepted by PostgreSQL's jsonb."""
        summary = dataclasses.replace(parse_message(MESSAGE, RECEIVED), subject="a\x00b\udcff")
        item = NewItem(content_class="Email", content=MESSAGE, summary=summary_record(summary))
        inbox = await self.inbox(self.alice)
        [item_id] = await self.store.items.deliver([(self.alice.id, inbox.id)], item)
        stored = await self.store.items.get(self.alice.id, item_id)
        self.assertEqual(stored.summary["subject"], "ab?")

    async def test_no_inbox_stamps_nothing(self):
        """
        The failed delivery names the account without an Inbox and leaves
        the others' Inbox counters where they were: no Sync or Ping sees a
        change that was never stored.
        """
        await self.database.execute("UPDATE folders SET deleted = true WHERE account_id = %s AND type = %s",
                                    (self.bob.id, INBOX))
        before = await self.inbox(self.alice)
        with self.assertRaises(NoInbox) as raised:
            await deliver(self.store, [self.alice, self.bob], MESSAGE, RECEIVED)
        self.assertEqual(str(raised.exception), "bob@example.org")
        self.assertEqual((await self.inbox(self.alice)).modseq, before.modseq)

    async def test_every_copy_searchable(self):
        """Each recipient's copy carries the words: subject, people and body."""
        ids = await deliver(self.store, [self.alice, self.bob], MESSAGE, RECEIVED)
        rows = await self.database.query(
            "SELECT id FROM items WHERE search @@ to_tsquery('bluesync_search', 'quarterly & zurich & attached')"
            " ORDER BY id")
        self.assertEqual([row[0] for row in rows], sorted(ids))

    async def test_into_given_folder(self):
        """A target folder given by id is stamped and receives the copy, whatever its type."""
        junk = next(f for f in await self.store.folders.list(self.alice.id) if f.name == "Junk Email")
        [item_id] = await self.store.items.deliver([(self.alice.id, junk.id)], new_email_item(MESSAGE, RECEIVED))
        item = await self.store.items.get(self.alice.id, item_id, with_content=False)
        after = await self.store.folders.get(self.alice.id, junk.id)
        self.assertEqual((item.folder_id, item.modseq), (junk.id, after.modseq))
        self.assertEqual(await self.store.items.count(self.alice.id, (await self.inbox(self.alice)).id), 0)

    async def test_folder_of_another_account_refused(self):
        """A folder id of another account is no target: nothing is stored."""
        bobs_inbox = await self.inbox(self.bob)
        with self.assertRaises(MissingFolder):
            await self.store.items.deliver([(self.alice.id, bobs_inbox.id)], new_email_item(MESSAGE, RECEIVED))
        self.assertEqual(await self.store.items.count(self.bob.id, bobs_inbox.id), 0)
        self.assertEqual((await self.inbox(self.bob)).modseq, bobs_inbox.modseq)
