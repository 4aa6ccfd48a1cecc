"""
Change stamps and the notifications that go with them.

Every write that changes a folder's content calls L{stamp}: it locks the
folder row, advances its counter by the number of changes and returns the
new modseqs, and queues a NOTIFY on the transaction.  Because the lock is
held until commit, modseqs in one folder commit in order: a reader that has
seen modseq M has seen everything below M.  NOTIFY is delivered on commit to
every process that LISTENs, which is how held Pings on any node wake.
"""

from __future__ import annotations

from bluesync.store.database import Transaction

CHANNEL = "bluesync"


def folder_payload(account_id: int, folder_id: int) -> str:
    return f"f {account_id} {folder_id}"


def folder_payload_sql(account: str, folder: str) -> str:
    """
    L{folder_payload} built by PostgreSQL from two SQL expressions, for a
    statement that stamps folders and notifies by itself.
    """
    return f"concat_ws(' ', 'f', {account}, {folder})"


def hierarchy_payload(account_id: int) -> str:
    return f"h {account_id}"


def device_payload(account_id: int, device_pk: int) -> str:
    return f"d {account_id} {device_pk}"


# A device holds a new request: "p" a Ping, "s" a Sync with Wait, followed
# by "<account> <device_pk> <hold sequence>".  The device's older request
# of the same kind, wherever it is held, is answered (see
# bluesync.push.notifier for the ordering rule).
HELD_PING = "p"
HELD_SYNC = "s"


def held_payload(kind: str, account_id: int, device_pk: int, sequence: int) -> str:
    return f"{kind} {account_id} {device_pk} {sequence}"


# The same payload built by PostgreSQL from the devices row being updated
# (aliased "d"), for statements that learn the sequence as they bump it.
HELD_PAYLOAD_SQL = "concat_ws(' ', %s::text, d.account_id, d.id, d.hold_seq)"


async def stamp(transaction: Transaction, account_id: int, folder_id: int, count: int = 1) -> list[int]:
    """
    Reserve C{count} consecutive modseqs in a folder; return them in order.
    """
    row = await transaction.query_one(
        "UPDATE folders SET modseq = modseq + %s WHERE id = %s AND account_id = %s RETURNING modseq",
        (count, folder_id, account_id),
    )
    if row is None:
        raise LookupError(f"folder {folder_id} of account {account_id}")
    transaction.notify(CHANNEL, folder_payload(account_id, folder_id))
    last = row[0]
    return list(range(last - count + 1, last + 1))


async def stamp_hierarchy(transaction: Transaction, account_id: int) -> int:
    row = await transaction.query_one(
        "UPDATE accounts SET hierarchy_modseq = hierarchy_modseq + 1 WHERE id = %s RETURNING hierarchy_modseq",
        (account_id,),
    )
    transaction.notify(CHANNEL, hierarchy_payload(account_id))
    return row[0]
