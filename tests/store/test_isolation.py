"""
The store's own guard on conversation rules: a rule only ever names a
live folder of its account, whatever a caller passes.
"""

from __future__ import annotations

from datetime import datetime, timezone

from bluesync.mail.delivery import new_email_item
from bluesync.passwords import hash_password
from bluesync.store import folders as F
from bluesync.store.folders import NoSuchFolder
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
