"""
Guards the store keeps by itself, whatever its callers pass: a
conversation rule only ever names a live folder of its account, and a
search's Total counts only the account's own mail.
"""

from __future__ import annotations

from datetime import datetime, timezone

from bluesync.mail.delivery import new_email_item
from bluesync.passwords import hash_password
from bluesync.store import folders as F
from bluesync.store import fulltext
from bluesync.store.folders import NoSuchFolder
from bluesync.store.search import MailboxQuery
from tests.eas.mailbox import message
from tests.support import DatabaseTestCase

CONVERSATION = b"\x01" * 16


class ConversationRuleIsolationTests(DatabaseTestCase):
    async def _set_up(self):
        await super()._set_up()
        secret = hash_password("x")
        self.alice = await self.store.create_account("alice@example.org", "Alice", secret)
        self.bob = await self.store.create_account("bob@example.org", "Bob", secret)
        self.bob_folder, _ = await self.store.folders.create(self.bob.id, None, "Bob's", F.USER_MAIL)

    async def test_foreign_folder_refused(self):
        """A rule naming another account's folder is refused and not written; an earlier rule stays."""
        mine, _ = await self.store.folders.create(self.alice.id, None, "Mine", F.USER_MAIL)
        await self.store.conversations.always_move(self.alice.id, CONVERSATION, mine.id)
        with self.assertRaises(NoSuchFolder):
            await self.store.conversations.always_move(self.alice.id, CONVERSATION, self.bob_folder.id)
        (rule,) = await self.store.conversations.list(self.alice.id)
        self.assertEqual(rule.folder_id, mine.id)
        inbox = await self.store.folders.by_type(self.alice.id, F.INBOX)
        self.assertEqual(await self.store.conversations.delivery_folder(self.alice.id, CONVERSATION), mine.id)
        await self.store.folders.delete(self.alice.id, mine.id)
        self.assertEqual(await self.store.conversations.delivery_folder(self.alice.id, CONVERSATION), inbox.id)

    async def test_foreign_rule_is_never_followed(self):
        """
        Should a row name another account's folder all the same, delivery
        and the local copies of SendMail use the Inbox, never that folder.
        """
        raw = message(1, "Plans")
        item = new_email_item(raw, datetime.now(timezone.utc))
        conversation = item.columns["conversation_id"]
        await self.store.database.execute(
            "INSERT INTO conversation_rules (account_id, conversation_id, folder_id) VALUES (%s, %s, %s)",
            (self.alice.id, conversation, self.bob_folder.id),
        )
        inbox = await self.store.folders.by_type(self.alice.id, F.INBOX)
        self.assertEqual(await self.store.conversations.delivery_folder(self.alice.id, conversation), inbox.id)
        self.assertIsNone(await self.store.conversations.destination(self.alice.id, conversation))
        (item_id,) = await self.store.items.deliver([(self.alice.id, None)], item)
        self.assertEqual((await self.store.items.get(self.alice.id, item_id)).folder_id, inbox.id)
        self.assertEqual(await self.store.items.count(self.bob.id, self.bob_folder.id), 0)

    async def test_restore_after_the_folder_went(self):
        """Putting back a rule whose folder is gone leaves no rule."""
        mine, _ = await self.store.folders.create(self.alice.id, None, "Mine", F.USER_MAIL)
        other, _ = await self.store.folders.create(self.alice.id, None, "Other", F.USER_MAIL)
        await self.store.conversations.always_move(self.alice.id, CONVERSATION, mine.id)
        replaced = await self.store.conversations.always_move(self.alice.id, CONVERSATION, other.id)
        await self.store.folders.delete(self.alice.id, mine.id)
        await self.store.conversations.restore(self.alice.id, CONVERSATION, replaced)
        self.assertEqual(await self.store.conversations.list(self.alice.id), [])


class SearchTotalIsolationTests(DatabaseTestCase):
    """
    A search's Total must not come from PostgreSQL's row estimate: the
    planner takes a word's frequency from the statistics of every mailbox,
    so the Total told Alice how much of Bob's mail holds a word.
    """

    async def _set_up(self):
        await super()._set_up()
        secret = hash_password("x")
        self.alice = await self.store.create_account("alice@example.org", "Alice", secret)
        self.bob = await self.store.create_account("bob@example.org", "Bob", secret)
        # 3,000 messages each; Bob's all say "zyxsecret", eleven of Alice's do.
        await self.bulk(self.bob, 3000, "zyxsecret")
        await self.bulk(self.alice, 2989, "lunch")
        await self.bulk(self.alice, 11, "zyxsecret")
        await self.database.execute("ANALYZE items")

    async def bulk(self, account, count: int, word: str) -> None:
        inbox = await self.store.folders.by_type(account.id, F.INBOX)
        await self.database.execute(
            "INSERT INTO items (account_id, folder_id, modseq, created_modseq, content_class, content, summary,"
            " date_received, search) SELECT %s, %s, g, g, 'Email', 'x', '{}', now() - g * interval '1 minute',"
            f" to_tsvector('{fulltext.CONFIG}', %s || ' filler' || g) FROM generate_series(1, %s) g",
            (account.id, inbox.id, word, count),
        )

    async def test_total_is_the_accounts_own(self):
        """A full page and a page past the end both tell Alice's eleven, exactly."""
        query = MailboxQuery("zyxsecret")
        first = await self.store.search.mailbox(self.alice.id, query, 0, 10)
        past = await self.store.search.mailbox(self.alice.id, query, 50, 10)
        self.assertEqual((len(first.hits), first.total, first.total_estimated), (10, 11, False))
        self.assertEqual((past.hits, past.total, past.total_estimated), ([], 11, False))
        nothing = await self.store.search.mailbox(self.alice.id, MailboxQuery("qqqnothing"), 50, 10)
        self.assertEqual((nothing.total, nothing.total_estimated), (0, False))


class ChangeCountIsolationTests(DatabaseTestCase):
    async def test_count_changes_keeps_to_the_account(self):
        """Bob's deletions are no change of Alice's, whichever folder id she names."""
        secret = hash_password("x")
        alice = await self.store.create_account("alice@example.org", "Alice", secret)
        bob = await self.store.create_account("bob@example.org", "Bob", secret)
        inbox = await self.store.folders.by_type(bob.id, F.INBOX)
        item = new_email_item(message(1, "Plans"), datetime.now(timezone.utc))
        (item_id,) = await self.store.items.deliver([(bob.id, None)], item)
        await self.store.items.delete(bob.id, inbox.id, item_id)
        self.assertEqual(await self.store.items.count_changes(bob.id, inbox.id, 0), 1)
        self.assertEqual(await self.store.items.count_changes(alice.id, inbox.id, 0), 0)
