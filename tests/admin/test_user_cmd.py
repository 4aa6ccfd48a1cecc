"""
bluesync-admin user ..., run as a separate process against a test database
named by a configuration file, exactly as an administrator runs it.
"""

import os
import subprocess
import sys
import tempfile

from twisted.internet import threads

from bluesync.passwords import verify_password
from tests.support import DatabaseTestCase


class UserCommandTests(DatabaseTestCase):
    async def _set_up(self):
        await super()._set_up()
        directory = tempfile.mkdtemp(prefix="bluesync-cli-")
        self.config_path = os.path.join(directory, "bluesync.ini")
        with open(self.config_path, "w") as f:
            f.write(f"[database]\ndsn = {self.dsn}\npool_size = 1\n")

    def admin(self, *args, stdin=""):
        return threads.deferToThread(
            subprocess.run,
            [sys.executable, "-m", "bluesync.admin.cli", "--config", self.config_path, *args],
            input=stdin, capture_output=True, text=True, timeout=120,
        )

    async def test_add_and_list(self):
        """user add stores an Argon2 hash; user list shows the account."""
        result = await self.admin("user", "add", "Alice@Example.org", "--name", "Alice Martin", "--password-stdin",
                                  stdin="a long secret\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        account = await self.store.accounts.by_address("alice@example.org")
        self.assertEqual(account.display_name, "Alice Martin")
        self.assertTrue(account.password_hash.startswith("$argon2id$"))
        self.assertTrue(verify_password(account.password_hash, "a long secret"))
        listing = await self.admin("user", "list")
        self.assertIn("alice@example.org\tAlice Martin\tactive", listing.stdout)

    async def test_refusals(self):
        """Duplicates, bad addresses and short passwords fail with one line and exit 1."""
        await self.admin("user", "add", "a@example.org", "--password-stdin", stdin="a long secret\n")
        for args, stdin, message in (
            (("user", "add", "a@example.org", "--password-stdin"), "a long secret\n", "already exists"),
            (("user", "add", "not-an-address", "--password-stdin"), "a long secret\n", "not an email address"),
            (("user", "add", "b@example.org", "--password-stdin"), "short\n", "at least 8"),
            (("user", "passwd", "nobody@example.org", "--password-stdin"), "a long secret\n", "no account"),
            (("user", "disable", "nobody@example.org"), "", "no account"),
        ):
            result = await self.admin(*args, stdin=stdin)
            self.assertEqual(result.returncode, 1, args)
            self.assertIn(message, result.stderr)
            self.assertNotIn("Traceback", result.stderr)

    async def test_passwd_disable_enable_delete_alias(self):
        """passwd, disable, enable, alias and delete change the stored account."""
        await self.admin("user", "add", "a@example.org", "--password-stdin", stdin="a long secret\n")
        result = await self.admin("user", "passwd", "a@example.org", "--password-stdin", stdin="another secret\n")
        self.assertEqual(result.returncode, 0, result.stderr)
        account = await self.store.accounts.by_address("a@example.org")
        self.assertTrue(verify_password(account.password_hash, "another secret"))
        await self.admin("user", "disable", "a@example.org")
        self.assertTrue((await self.store.accounts.by_address("a@example.org")).disabled)
        await self.admin("user", "enable", "a@example.org")
        self.assertFalse((await self.store.accounts.by_address("a@example.org")).disabled)
        result = await self.admin("user", "alias", "a@example.org", "sales@example.org")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual((await self.store.accounts.by_address("sales@example.org")).address, "a@example.org")
        refused = await self.admin("user", "delete", "a@example.org")
        self.assertEqual(refused.returncode, 1)
        self.assertIsNotNone(await self.store.accounts.by_address("a@example.org"))
        result = await self.admin("user", "delete", "a@example.org", "--yes")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIsNone(await self.store.accounts.by_address("a@example.org"))

    async def test_bad_config(self):
        """A bad configuration file is reported in one line."""
        with open(self.config_path, "w") as f:
            f.write("[database]\npool_size = lots\n")
        result = await self.admin("user", "list")
        self.assertEqual(result.returncode, 2)
        self.assertIn("[database] pool_size", result.stderr)
