"""
bluesync-admin conversation list and delete, run as a separate process
against a test database, as an administrator runs them; what they show and
remove is what delivery follows.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import tempfile

from twisted.internet import threads

from bluesync.items.email import parse_message
from bluesync.mail.delivery import new_email_item
from bluesync.passwords import hash_password
from bluesync.store import folders as F
from tests.store.test_conversation_rules import NOW, REPLY, ROOT
from tests.support import DatabaseTestCase


class ConversationCommandTests(DatabaseTestCase):
    async def _set_up(self) -> None:
        await super()._set_up()
        directory = tempfile.mkdtemp(prefix="bluesync-cli-")
        self.config_path = os.path.join(directory, "bluesync.ini")
        with open(self.config_path, "w") as f:
            f.write(f"[database]\ndsn = {self.dsn}\npool_size = 1\n")
        self.alice = await self.store.create_account("alice@example.org", "Alice", hash_password("pw"))
        self.inbox = await self.store.folders.by_type(self.alice.id, F.INBOX)
        self.archive, _ = await self.store.folders.create(self.alice.id, None, "Archive", F.USER_MAIL)
        self.conversation = parse_message(ROOT).conversation_id
        await self.store.conversations.always_move(self.alice.id, self.conversation, self.archive.id)

    def cli(self, *args):
        return threads.deferToThread(
            subprocess.run, [sys.executable, "-m", "bluesync.admin.cli", "--config", self.config_path, *args],
            capture_output=True, text=True, timeout=120)

    async def test_list_and_delete(self):
        """list shows the rule with its folder; delete ends it, and the next reply lands in the Inbox."""
        listed = await self.cli("conversation", "list", "Alice@example.org")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        header, row = listed.stdout.splitlines()
        self.assertEqual(header.split("\t"), ["conversation_id", "folder_id", "folder", "last_used"])
        fields = row.split("\t")
        self.assertEqual(fields[:3], [self.conversation.hex(), str(self.archive.id), "Archive"])
        deleted = await self.cli("conversation", "delete", "alice@example.org", fields[0])
        self.assertEqual(deleted.returncode, 0, deleted.stderr)
        self.assertEqual(await self.store.conversations.list(self.alice.id), [])
        (copy,) = await self.store.items.deliver([(self.alice.id, None)], new_email_item(REPLY, NOW))
        self.assertEqual((await self.store.items.get(self.alice.id, copy)).folder_id, self.inbox.id)
        again = await self.cli("conversation", "delete", "alice@example.org", fields[0])
        self.assertEqual(again.returncode, 1)
        self.assertIn("no rule", again.stderr)

    async def test_base64_id_and_errors(self):
        """The phone's base64 form is accepted; unknown accounts and bad ids are refused, nothing deleted."""
        bob = await self.cli("conversation", "list", "bob@example.org")
        self.assertEqual((bob.returncode, bob.stderr.strip()), (1, "bluesync-admin: no account bob@example.org"))
        bad = await self.cli("conversation", "delete", "alice@example.org", "not-an-id!")
        self.assertEqual(bad.returncode, 1)
        self.assertEqual(len(await self.store.conversations.list(self.alice.id)), 1)
        encoded = base64.b64encode(self.conversation).decode()
        deleted = await self.cli("conversation", "delete", "alice@example.org", encoded)
        self.assertEqual(deleted.returncode, 0, deleted.stderr)
        self.assertEqual(await self.store.conversations.list(self.alice.id), [])
