"""
Administrators of the admin web page: a name and an Argon2id hash, apart
from the mail accounts (an administrator need not have a mailbox, and a
mailbox password must never open the console).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg2.errors

from bluesync.store import audit
from bluesync.store.audit import AuditEntry
from bluesync.store.database import Database, Transaction


class AdminExists(Exception):
    pass


@dataclass(frozen=True)
class Admin:
    name: str
    password_hash: str
    created_at: datetime


class AdminStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, name: str, password_hash: str, entry: AuditEntry | None = None) -> Admin:
        async def work(transaction: Transaction) -> Admin:
            try:
                row = await transaction.query_one(
                    "INSERT INTO admins (name, password_hash) VALUES (%s, %s)"
                    " RETURNING name, password_hash, created_at",
                    (name, password_hash),
                )
            except psycopg2.errors.UniqueViolation:
                raise AdminExists(name) from None
            await audit.write(transaction, entry)
            return Admin(*row)

        return await self._database.transaction(work)

    async def set_password_hash(self, name: str, password_hash: str, entry: AuditEntry | None = None) -> bool:
        async def work(transaction: Transaction) -> bool:
            touched = await transaction.execute(
                "UPDATE admins SET password_hash = %s WHERE name = %s", (password_hash, name)
            )
            if touched:
                await audit.write(transaction, entry)
            return bool(touched)

        return await self._database.transaction(work)

    async def delete(self, name: str, entry: AuditEntry | None = None) -> bool:
        async def work(transaction: Transaction) -> bool:
            touched = await transaction.execute("DELETE FROM admins WHERE name = %s", (name,))
            if touched:
                await audit.write(transaction, entry)
            return bool(touched)

        return await self._database.transaction(work)

    async def get(self, name: str) -> Admin | None:
        row = await self._database.query_one(
            "SELECT name, password_hash, created_at FROM admins WHERE name = %s", (name,)
        )
        return Admin(*row) if row else None

    async def list(self) -> list[Admin]:
        rows = await self._database.query("SELECT name, password_hash, created_at FROM admins ORDER BY name")
        return [Admin(*row) for row in rows]
