"""
What the change query reads for a Sync window: a message served from its
rendition comes without its raw bytes when the device cannot be sent MIME.
"""

from datetime import datetime, timezone

from bluesync.mail.delivery import deliver, new_email_item
from bluesync.store.folders import CONTACTS, INBOX
from bluesync.store.items import NewItem
from tests.mail.test_delivery import MESSAGE
from tests.support import DatabaseTestCase

RECEIVED = datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc)


class RawContentTests(DatabaseTestCase):
    async def _set_up(self):
        await super()._set_up()
        self.account = await self.store.create_account("alice@example.org", "Alice", "unused-hash")
        self.inbox = await self.store.folders.by_type(self.account.id, INBOX)

    async def items(self, folder, **kwargs):
        batch = await self.store.items.changes(self.account.id, folder.id, 0, 10, **kwargs)
        return [change.item for change in batch.changes]

    async def test_rendered_message_without_raw(self):
        """A delivered message has a rendition: asked so, the query leaves its raw bytes out."""
        await deliver(self.store, [self.account], MESSAGE, RECEIVED)
        [item] = await self.items(self.inbox, raw_if_rendered=False)
        self.assertIsNone(item.content)
        self.assertIn("The report is attached.", item.rendition["plain"])
        [item] = await self.items(self.inbox)
        self.assertEqual(item.content, MESSAGE)

    async def test_meeting_message_keeps_raw(self):
        """A meeting message is served with its invitation, read from the raw message."""
        new = new_email_item(MESSAGE, RECEIVED)
        meeting = NewItem(new.content_class, new.content, new.summary,
                          {**new.columns, "message_class": "IPM.Schedule.Meeting.Request"},
                          rendition=new.rendition, search=new.search)
        await self.store.items.deliver([(self.account.id, self.inbox.id)], meeting)
        [item] = await self.items(self.inbox, raw_if_rendered=False)
        self.assertEqual(item.content, MESSAGE)

    async def test_item_without_rendition_keeps_raw(self):
        """A contact (no rendition) is served from its vCard."""
        contacts = await self.store.folders.by_type(self.account.id, CONTACTS)
        card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bob\r\nEND:VCARD\r\n"
        await self.store.items.deliver([(self.account.id, contacts.id)], NewItem("Contacts", card))
        [item] = await self.items(contacts, raw_if_rendered=False)
        self.assertEqual(item.content, card)
