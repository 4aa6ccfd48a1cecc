"""
The accounts table family: accounts and their aliases.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import psycopg2.errors

from bluesync.store.database import Database, Transaction


class AccountExists(Exception):
    """
    The address (or alias) is already taken.
    """


class NoSuchAccount(Exception):
    """
    No account has that address.
    """


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    address: str
    display_name: str
    password_hash: str
    disabled: bool
    created_at: datetime


_COLUMNS = "id, address, display_name, password_hash, disabled, created_at"


def normalise_address(address: str) -> str:
    return address.strip().lower()


class AccountStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(self, address: str, display_name: str, password_hash: str,
                     setup=None) -> Account:
        """
        Create an account.  C{setup}, if given, is awaited with the
        transaction and the new account so that dependent rows (default
        folders) are created atomically with it.
        """
        address = normalise_address(address)

        async def work(transaction: Transaction) -> Account:
            taken = await transaction.query_one(
                "SELECT 1 FROM account_aliases WHERE address = %s", (address,)
            )
            if taken:
                raise AccountExists(address)
            try:
                row = await transaction.query_one(
                    f"INSERT INTO accounts (address, display_name, password_hash)"
                    f" VALUES (%s, %s, %s) RETURNING {_COLUMNS}",
                    (address, display_name, password_hash),
                )
            except psycopg2.errors.UniqueViolation:
                raise AccountExists(address) from None
            account = Account(*row)
            if setup is not None:
                await setup(transaction, account)
            return account

        return await self._database.transaction(work)

    async def by_address(self, address: str) -> Account | None:
        """
        The account owning C{address}, as its main address or an alias.
        """
        address = normalise_address(address)
        row = await self._database.query_one(
            f"SELECT {_COLUMNS} FROM accounts WHERE address = %s"
            f" UNION ALL"
            f" SELECT {', '.join('a.' + c.strip() for c in _COLUMNS.split(','))}"
            f" FROM account_aliases l JOIN accounts a ON a.id = l.account_id"
            f" WHERE l.address = %s LIMIT 1",
            (address, address),
        )
        return Account(*row) if row else None

    async def by_id(self, account_id: int) -> Account | None:
        row = await self._database.query_one(
            f"SELECT {_COLUMNS} FROM accounts WHERE id = %s", (account_id,)
        )
        return Account(*row) if row else None

    async def list(self) -> list[Account]:
        rows = await self._database.query(f"SELECT {_COLUMNS} FROM accounts ORDER BY address")
        return [Account(*row) for row in rows]

    async def _update(self, address: str, assignment: str, value) -> None:
        rows = await self._database.query(
            f"UPDATE accounts SET {assignment} = %s WHERE address = %s RETURNING id",
            (value, normalise_address(address)),
        )
        if not rows:
            raise NoSuchAccount(address)

    async def set_password_hash(self, address: str, password_hash: str) -> None:
        await self._update(address, "password_hash", password_hash)

    async def set_disabled(self, address: str, disabled: bool) -> None:
        await self._update(address, "disabled", disabled)

    async def set_display_name(self, address: str, display_name: str) -> None:
        await self._update(address, "display_name", display_name)

    async def delete(self, address: str) -> None:
        rows = await self._database.query(
            "DELETE FROM accounts WHERE address = %s RETURNING id", (normalise_address(address),)
        )
        if not rows:
            raise NoSuchAccount(address)

    async def add_alias(self, address: str, alias: str) -> None:
        account = await self.by_address(address)
        if account is None or account.address != normalise_address(address):
            raise NoSuchAccount(address)
        alias = normalise_address(alias)

        async def work(transaction: Transaction) -> None:
            taken = await transaction.query_one(
                "SELECT 1 FROM accounts WHERE address = %s", (alias,)
            )
            if taken:
                raise AccountExists(alias)
            try:
                await transaction.execute(
                    "INSERT INTO account_aliases (address, account_id) VALUES (%s, %s)",
                    (alias, account.id),
                )
            except psycopg2.errors.UniqueViolation:
                raise AccountExists(alias) from None

        await self._database.transaction(work)

    async def aliases(self, account_id: int) -> list[str]:
        rows = await self._database.query(
            "SELECT address FROM account_aliases WHERE account_id = %s ORDER BY address",
            (account_id,),
        )
        return [row[0] for row in rows]

    async def oof(self, account_id: int) -> dict | None:
        """
        The out-of-office settings as stored by L{set_oof}, or None.
        """
        row = await self._database.query_one("SELECT oof FROM accounts WHERE id = %s", (account_id,))
        return row[0] if row else None

    async def set_oof(self, account_id: int, oof: dict) -> None:
        await self._database.execute(
            "UPDATE accounts SET oof = %s WHERE id = %s", (json.dumps(oof), account_id)
        )
