from bluesync.store.accounts import AccountExists, NoSuchAccount
from tests.support import DatabaseTestCase


class AccountStoreTests(DatabaseTestCase):
    async def test_create_and_lookup(self):
        """Addresses are stored lower-case and found case-insensitively."""
        account = await self.store.create_account("Alice@Example.ORG", "Alice", "hash")
        self.assertEqual(account.address, "alice@example.org")
        found = await self.store.accounts.by_address("ALICE@example.org")
        self.assertEqual(found, account)

    async def test_duplicate(self):
        """A second account with the same address is refused."""
        await self.store.create_account("a@example.org", "", "h")
        with self.assertRaises(AccountExists):
            await self.store.create_account("A@example.org", "", "h")

    async def test_alias(self):
        """An alias finds its account; it cannot collide with an address."""
        account = await self.store.create_account("a@example.org", "", "h")
        await self.store.create_account("b@example.org", "", "h")
        await self.store.accounts.add_alias("a@example.org", "Sales@Example.org")
        self.assertEqual((await self.store.accounts.by_address("sales@example.org")).id, account.id)
        with self.assertRaises(AccountExists):
            await self.store.accounts.add_alias("a@example.org", "b@example.org")
        with self.assertRaises(AccountExists):
            await self.store.create_account("sales@example.org", "", "h")

    async def test_update_and_delete(self):
        """Disable, password and delete act on the named account only."""
        await self.store.create_account("a@example.org", "", "h")
        await self.store.create_account("b@example.org", "", "h")
        await self.store.accounts.set_disabled("a@example.org", True)
        await self.store.accounts.set_password_hash("a@example.org", "h2")
        a = await self.store.accounts.by_address("a@example.org")
        self.assertEqual((a.disabled, a.password_hash), (True, "h2"))
        self.assertFalse((await self.store.accounts.by_address("b@example.org")).disabled)
        await self.store.accounts.delete("a@example.org")
        self.assertIsNone(await self.store.accounts.by_address("a@example.org"))
        with self.assertRaises(NoSuchAccount):
            await self.store.accounts.delete("a@example.org")
