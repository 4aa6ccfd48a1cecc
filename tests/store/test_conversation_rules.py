"""
Conversation rules in the store, on a real PostgreSQL: where delivery puts
a message, and what happens when the rule's folder is deleted while a
delivery waits for it.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from twisted.internet import defer, task

from bluesync.items.email import parse_message
from bluesync.mail.delivery import new_email_item
from bluesync.mail.rule_expiry import INTERVAL, RuleExpiry
from bluesync.passwords import hash_password
from bluesync.store import folders as F
from bluesync.store.outbound import Copy, Submission
from tests.push.helpers import hold_folder_deletion, until_waiting_for_lock
from tests.support import DatabaseTestCase

ROOT = (b"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: Plans\r\n"
        b"Message-ID: <root@example.net>\r\n\r\nShall we?\r\n")
REPLY = (b"From: Bob <bob@example.net>\r\nTo: alice@example.org\r\nSubject: Re: Plans\r\n"
         b"Message-ID: <reply@example.net>\r\nReferences: <root@example.net>\r\n\r\nWell?\r\n")
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


class DeliveryRuleTests(DatabaseTestCase):
    pool_size = 4

    async def _set_up(self) -> None:
        await super()._set_up()
        self.alice = await self.store.create_account("alice@example.org", "Alice", hash_password("pw"))
        self.bob = await self.store.create_account("bob@example.org", "Bob", hash_password("pw"))
        self.inbox = await self.store.folders.by_type(self.alice.id, F.INBOX)
        self.archive, _ = await self.store.folders.create(self.alice.id, None, "Archive", F.USER_MAIL)
        self.conversation = parse_message(ROOT).conversation_id
        self.assertEqual(parse_message(REPLY).conversation_id, self.conversation)
        await self.store.conversations.always_move(self.alice.id, self.conversation, self.archive.id)

    async def deliver(self, raw: bytes = REPLY) -> list[int]:
        return await self.store.items.deliver([(self.alice.id, None), (self.bob.id, None)], new_email_item(raw, NOW))

    async def folder_of(self, item_id: int) -> int:
        return (await self.store.items.get(self.alice.id, item_id, with_content=False)).folder_id

    async def test_rule_and_inbox(self):
        """The conversation goes to the rule's folder, other mail and other accounts to the Inbox."""
        alice_copy, bob_copy = await self.deliver()
        self.assertEqual(await self.folder_of(alice_copy), self.archive.id)
        bob_inbox = await self.store.folders.by_type(self.bob.id, F.INBOX)
        self.assertEqual((await self.store.items.get(self.bob.id, bob_copy)).folder_id, bob_inbox.id)
        other, _ = await self.deliver(ROOT.replace(b"Plans", b"Other").replace(b"root@", b"other@"))
        self.assertEqual(await self.folder_of(other), self.inbox.id)
        self.assertEqual(await self.store.conversations.delivery_folder(self.alice.id, self.conversation),
                         self.archive.id)
        self.assertEqual(await self.store.conversations.delivery_folder(self.alice.id, None), self.inbox.id)

    async def test_folder_deleted_meanwhile(self):
        """
        A delivery that waited for the lock of a rule's folder while it was
        being deleted stores nothing (the MTA is answered 451 and retries);
        the retry lands in the Inbox.  No copy is lost in a deleted folder.
        """
        release, deleting = await hold_folder_deletion(self.database, self.archive.id)
        delivering = defer.Deferred.fromCoroutine(self.deliver())

        await until_waiting_for_lock(self.database, "the delivery waiting for the folder lock")
        release.callback(None)
        await deleting
        with self.assertRaises(LookupError):
            await delivering
        rows = await self.database.query("SELECT account_id, folder_id FROM items")
        self.assertEqual(rows, [])
        (alice_copy, _) = await self.deliver()
        self.assertEqual(await self.folder_of(alice_copy), self.inbox.id)


class ExpiryTests(DatabaseTestCase):
    """
    Rules expire when unused: delivery and SendMail's local copies renew
    the rule that routed them (at most hourly), the purge drops the rest.
    """

    async def _set_up(self) -> None:
        await super()._set_up()
        self.alice = await self.store.create_account("alice@example.org", "Alice", hash_password("pw"))
        self.inbox = await self.store.folders.by_type(self.alice.id, F.INBOX)
        self.archive, _ = await self.store.folders.create(self.alice.id, None, "Archive", F.USER_MAIL)
        self.conversation = parse_message(ROOT).conversation_id
        await self.store.conversations.always_move(self.alice.id, self.conversation, self.archive.id)
        self.other = parse_message(ROOT.replace(b"root@", b"other@")).conversation_id
        await self.store.conversations.always_move(self.alice.id, self.other, self.archive.id)

    async def set_last_use(self, conversation: bytes, ago: timedelta) -> datetime:
        row = await self.database.query_one(
            "UPDATE conversation_rules SET updated_at = now() - %s WHERE conversation_id = %s RETURNING updated_at",
            (ago, conversation))
        return row[0]

    async def last_use(self) -> dict[bytes, datetime]:
        return {rule.conversation_id: rule.updated_at for rule in await self.store.conversations.list(self.alice.id)}

    async def test_delivery_renews_its_rule(self):
        """A message routed by a rule renews that rule only; a rule used within the hour is not rewritten."""
        old = await self.set_last_use(self.conversation, timedelta(days=20))
        untouched = await self.set_last_use(self.other, timedelta(days=20))
        await self.store.items.deliver([(self.alice.id, None)], new_email_item(REPLY, NOW))
        used = await self.last_use()
        self.assertGreater(used[self.conversation], old + timedelta(days=19))
        self.assertEqual(used[self.other], untouched)
        recent = await self.set_last_use(self.conversation, timedelta(minutes=10))
        await self.store.items.deliver([(self.alice.id, None)], new_email_item(REPLY, NOW))
        self.assertEqual((await self.last_use())[self.conversation], recent)

    async def test_delivery_elsewhere_does_not_renew(self):
        """A copy of the conversation delivered to a folder named by the caller is not the rule's doing."""
        old = await self.set_last_use(self.conversation, timedelta(days=20))
        await self.store.items.deliver([(self.alice.id, self.archive.id)], new_email_item(REPLY, NOW))
        self.assertEqual((await self.last_use())[self.conversation], old)

    async def test_sendmail_copy_renews_its_rule(self):
        """A local SendMail copy placed by the rule renews it; the sender's own copies do not."""
        old = await self.set_last_use(self.conversation, timedelta(days=20))
        item = new_email_item(REPLY, NOW)
        await self.store.outbound.submit(Submission(account_id=self.alice.id, device_id=None, client_id=None,
                                                    now=NOW, copies=(Copy(self.alice.id, self.archive.id, item),)))
        self.assertEqual((await self.last_use())[self.conversation], old)
        await self.store.outbound.submit(Submission(
            account_id=self.alice.id, device_id=None, client_id=None, now=NOW,
            copies=(Copy(self.alice.id, self.archive.id, item, follows_rule=True),)))
        self.assertGreater((await self.last_use())[self.conversation], old + timedelta(days=19))

    async def test_periodic_purge(self):
        """
        The service's loop purges at start and every hour after: a rule
        unused for conversation_rule_days goes, its next message lands in
        the Inbox; a used one stays.
        """
        await self.set_last_use(self.other, timedelta(days=31))
        await self.set_last_use(self.conversation, timedelta(days=29, hours=23, minutes=30))
        clock = task.Clock()
        clock.advance(datetime.now(timezone.utc).timestamp())
        expiry = RuleExpiry(self.store, 30, clock)
        expiry.start()
        self.addCleanup(lambda: defer.Deferred.fromCoroutine(expiry.stop()))
        await expiry._running
        self.assertEqual(list(await self.last_use()), [self.conversation])
        clock.advance(INTERVAL)
        await expiry._running
        self.assertEqual(await self.last_use(), {})
        (copy,) = await self.store.items.deliver([(self.alice.id, None)], new_email_item(REPLY, NOW))
        self.assertEqual((await self.store.items.get(self.alice.id, copy)).folder_id, self.inbox.id)

    async def test_renewed_by_move_always(self):
        """A new MoveAlways of the conversation renews its rule; 0 days keeps rules for ever."""
        old = await self.set_last_use(self.conversation, timedelta(days=40))
        await self.store.conversations.always_move(self.alice.id, self.conversation, self.archive.id)
        self.assertGreater((await self.last_use())[self.conversation], old + timedelta(days=39))
        await self.set_last_use(self.other, timedelta(days=400))
        clock = task.Clock()
        forever = RuleExpiry(self.store, 0, clock)
        forever.start()
        self.assertEqual(clock.getDelayedCalls(), [])
        self.assertEqual(await self.store.conversations.purge(datetime.now(timezone.utc) - timedelta(days=30)), 1)
        self.assertEqual(list(await self.last_use()), [self.conversation])
