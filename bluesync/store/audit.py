"""
The audit trail: every administrative action and every automatic decision
about devices and access rules, with who, what, when and why.

Entries are written by L{write} inside the transaction that makes the
change they describe, so the trail never claims a change that was rolled
back and never misses one that was committed.  They name accounts and
devices as text: the trail outlives what it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bluesync.store.database import Database, Transaction

# The actor of decisions bluesync takes by itself (autoblock, policy).
SYSTEM = "bluesync"


@dataclass(frozen=True)
class AuditEntry:
    """
    What to record.  C{actor} is "cli:<unix user>", "web:<admin name>",
    L{SYSTEM} or "device"; C{action} a dotted verb ("device.block",
    "rule.add", "device.autoblock"); C{detail} the why.
    """

    actor: str
    action: str
    account: str = ""
    device: str = ""
    detail: str = ""


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    account: str
    device: str
    detail: str


async def write(transaction: Transaction, entry: AuditEntry | None) -> None:
    """
    Record C{entry} in C{transaction} (nothing if it is None).
    """
    if entry is None:
        return
    await transaction.execute(
        "INSERT INTO audit (actor, action, account, device, detail) VALUES (%s, %s, %s, %s, %s)",
        (entry.actor, entry.action, entry.account, entry.device, entry.detail),
    )


class AuditStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def record(self, entry: AuditEntry) -> None:
        """
        Record an entry that goes with no other write (e.g. a refused login
        to the admin page is not recorded, but an admin created is).
        """

        async def work(transaction: Transaction) -> None:
            await write(transaction, entry)

        await self._database.transaction(work)

    async def list(self, since: datetime | None = None, limit: int = 1000) -> list[AuditRecord]:
        """
        The newest C{limit} entries (since C{since} if given), oldest first.
        """
        rows = await self._database.query(
            "SELECT * FROM (SELECT id, at, actor, action, account, device, detail FROM audit"
            " WHERE %s::timestamptz IS NULL OR at >= %s ORDER BY id DESC LIMIT %s) newest ORDER BY id",
            (since, since, limit),
        )
        return [AuditRecord(*row) for row in rows]
