"""
The outbound table family: mail submitted by devices, and the ClientIds
that make a resent submission harmless.

A submission is one transaction: the ClientId, the copies delivered to
local accounts, the Sent Items copy, the reply state of the original
message and the queue row for the relay all commit together or not at all.
So a device that is told "sent" never loses its message, and a device that
is told "failed" can send again without leaving half of it behind.

The relay is attempted with the queue row locked (SELECT ... FOR UPDATE
SKIP LOCKED) for the whole SMTP exchange, and its outcome is recorded in
that same transaction: several processes sharing the database never send
one message twice, and a process that dies mid-exchange releases the row
(the connection closes) for the next attempt.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Awaitable, Callable

import psycopg2

from bluesync.store.changes import stamp
from bluesync.store.conversations import touch_rule_sql
from bluesync.store.database import Database, Transaction
from bluesync.store.items import ItemStore, NewItem

QUEUED, SENT, FAILED = "queued", "sent", "failed"


class DuplicateSubmission(Exception):
    """
    The device already submitted a message with this ClientId.
    """


@dataclass(frozen=True)
class Copy:
    """
    One message stored in one folder as part of a submission or attempt.
    """

    account_id: int
    folder_id: int
    item: NewItem
    # The folder is where the account's MoveAlways rule for the item's
    # conversation sent it (or the Inbox, there being none): the
    # submission renews that rule, as delivery does (conversations.py).
    follows_rule: bool = False


class FolderGone(LookupError):
    """
    A copy's folder was deleted while the submission waited for its lock
    (a MoveAlways destination): nothing was stored; look the folder up again.
    """


@dataclass(frozen=True)
class Verb:
    """
    Email2:LastVerbExecuted and LastVerbExecutionTime for an original
    message (MS-ASEMAIL 2.2.2.44, 2.2.2.45): 1 reply, 2 reply all, 3 forward.
    """

    account_id: int
    item_id: int
    verb: int
    when: datetime


@dataclass(frozen=True)
class Submission:
    account_id: int
    device_id: int | None
    client_id: str | None
    now: datetime
    copies: tuple[Copy, ...] = ()
    verb: Verb | None = None
    # For the relay; no row is queued when there are no recipients.
    sender: str = ""
    recipients: tuple[str, ...] = ()
    message: bytes = b""


@dataclass(frozen=True)
class QueuedMessage:
    id: int
    account_id: int
    sender: str
    recipients: tuple[str, ...]
    message: bytes
    attempts: int
    created_at: datetime
    next_attempt_at: datetime


@dataclass(frozen=True)
class AttemptResult:
    """
    What one attempt achieved.  C{failed} holds the recipients that failed
    for good, each a dict with recipient, status (RFC 3463) and diagnostic;
    C{pending} those to try again at C{next_attempt_at}.
    """

    delivered: tuple[str, ...] = ()
    failed: tuple[dict, ...] = ()
    pending: tuple[str, ...] = ()
    error: str = ""
    next_attempt_at: datetime | None = None
    report: Copy | None = None


@dataclass(frozen=True)
class OutboundRow:
    id: int
    account_id: int
    sender: str
    recipients: tuple[str, ...]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    last_error: str
    state: str
    delivered: tuple[str, ...]
    failed: list = field(default_factory=list)


_ROW = ("id, account_id, sender, recipients, attempts, created_at, next_attempt_at, last_error, state,"
        " delivered, failed")


def _row(row) -> OutboundRow:
    values = list(row)
    values[3] = tuple(values[3])
    values[9] = tuple(values[9])
    return OutboundRow(*values)


class OutboundStore:
    def __init__(self, database: Database, items: ItemStore) -> None:
        self._database = database
        self._items = items

    async def client_id_used(self, device_id: int, client_id: str) -> bool:
        row = await self._database.query_one(
            "SELECT 1 FROM submitted_client_ids WHERE device_id = %s AND client_id = %s",
            (device_id, client_id),
        )
        return row is not None

    async def submit(self, submission: Submission) -> int | None:
        """
        Store everything a submission writes, atomically; return the queue
        row's id, or None when nothing goes to the relay.

        @raise DuplicateSubmission: the device's ClientId was used before
            (nothing is written).
        """

        async def work(transaction: Transaction) -> int | None:
            if submission.client_id is not None and submission.device_id is not None:
                claimed = await transaction.query_one(
                    "INSERT INTO submitted_client_ids (device_id, client_id) VALUES (%s, %s)"
                    " ON CONFLICT DO NOTHING RETURNING 1",
                    (submission.device_id, submission.client_id),
                )
                if claimed is None:
                    raise DuplicateSubmission(submission.client_id)
            await self._lock_folders(transaction, submission)
            for copy in submission.copies:
                await self._items.insert(transaction, copy.account_id, copy.folder_id, copy.item)
                if copy.follows_rule:
                    await transaction.execute(touch_rule_sql("%s", "%s", "%s"), (
                        copy.account_id, psycopg2.Binary(copy.item.columns.get("conversation_id") or b""),
                        copy.folder_id))
            if submission.verb is not None:
                await self._set_verb(transaction, submission.verb)
            if not submission.recipients:
                return None
            row = await transaction.query_one(
                "INSERT INTO outbound (account_id, sender, recipients, message, created_at, next_attempt_at)"
                " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                (submission.account_id, submission.sender, list(submission.recipients),
                 psycopg2.Binary(submission.message), submission.now, submission.now),
            )
            return row[0]

        return await self._database.transaction(work)

    async def _lock_folders(self, transaction: Transaction, submission: Submission) -> None:
        """
        Take the row locks of every folder this submission stamps, in id
        order, before stamping any: two accounts writing to each other's
        folders at once then queue behind each other instead of deadlocking.

        @raise FolderGone: a copy's folder is deleted, seen once its lock is
            ours.  The folder was looked up before this transaction (a
            MoveAlways rule's, which may be deleted meanwhile); a copy
            stamped there would be acknowledged and never seen.  LMTP
            delivery re-checks the same way (bluesync_deliver).
        """
        folder_ids = {copy.folder_id for copy in submission.copies}
        if submission.verb is not None:
            row = await transaction.query_one(
                "SELECT folder_id FROM items WHERE id = %s AND account_id = %s",
                (submission.verb.item_id, submission.verb.account_id),
            )
            if row is not None:
                folder_ids.add(row[0])
        if folder_ids:
            rows = await transaction.query(
                "SELECT id, deleted FROM folders WHERE id = ANY(%s) ORDER BY id FOR UPDATE", (sorted(folder_ids),)
            )
            live = {folder_id for folder_id, deleted in rows if not deleted}
            gone = {copy.folder_id for copy in submission.copies} - live
            if gone:
                raise FolderGone(min(gone))

    async def _set_verb(self, transaction: Transaction, verb: Verb) -> None:
        row = await transaction.query_one(
            "SELECT folder_id FROM items WHERE id = %s AND account_id = %s FOR UPDATE",
            (verb.item_id, verb.account_id),
        )
        if row is None:
            # Deleted meanwhile: the message is still sent.
            return
        (modseq,) = await stamp(transaction, verb.account_id, row[0])
        await transaction.execute(
            "UPDATE items SET last_verb = %s, last_verb_time = %s, modseq = %s WHERE id = %s",
            (verb.verb, verb.when, modseq, verb.item_id),
        )

    async def queued_count(self) -> int:
        """
        How many messages wait for the relay, on every process (/metrics).
        """
        row = await self._database.query_one("SELECT count(*) FROM outbound WHERE state = %s", (QUEUED,))
        return row[0]

    async def next_due(self) -> datetime | None:
        """
        When the earliest queued message not being sent right now is due.
        Rows another process holds are skipped: it reschedules them itself.
        """
        row = await self._database.query_one(
            "SELECT next_attempt_at FROM outbound WHERE state = %s"
            " ORDER BY next_attempt_at LIMIT 1 FOR UPDATE SKIP LOCKED",
            (QUEUED,),
        )
        return row[0] if row else None

    async def attempt(self, now: datetime,
                      send: Callable[[QueuedMessage], Awaitable[AttemptResult]]) -> bool:
        """
        Claim a message due at C{now} (never tried ones first, then the
        earliest due), await C{send(message)}
        with its row locked, and record the result (and store its report)
        in the same transaction.  False if nothing was due.  If C{send}
        raises, nothing is recorded and the message stays due.
        """

        async def work(transaction: Transaction) -> bool:
            row = await transaction.query_one(
                "SELECT id, account_id, sender, recipients, message, attempts, created_at, next_attempt_at"
                " FROM outbound WHERE state = %s AND next_attempt_at <= %s"
                " ORDER BY attempts > 0, next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
                (QUEUED, now),
            )
            if row is None:
                return False
            message = QueuedMessage(row[0], row[1], row[2], tuple(row[3]), bytes(row[4]), row[5], row[6], row[7])
            result = await send(message)
            await self._record(transaction, message, result)
            return True

        return await self._database.transaction(work)

    async def _record(self, transaction: Transaction, message: QueuedMessage, result: AttemptResult) -> None:
        if result.report is not None:
            copy = result.report
            await self._items.insert(transaction, copy.account_id, copy.folder_id, copy.item)
        done = not result.pending
        state = QUEUED
        if done:
            state = FAILED if result.failed else SENT
        await transaction.execute(
            "UPDATE outbound SET attempts = attempts + 1, recipients = %s,"
            " delivered = delivered || %s::text[], failed = failed || %s::jsonb,"
            " last_error = %s, state = %s, next_attempt_at = coalesce(%s, next_attempt_at),"
            " message = CASE WHEN %s THEN ''::bytea ELSE message END"
            " WHERE id = %s",
            (list(result.pending), list(result.delivered), json.dumps(list(result.failed)),
             result.error, state, result.next_attempt_at, done, message.id),
        )

    async def get(self, outbound_id: int) -> OutboundRow | None:
        row = await self._database.query_one(f"SELECT {_ROW} FROM outbound WHERE id = %s", (outbound_id,))
        return _row(row) if row else None

    async def list(self, account_id: int | None = None) -> list[OutboundRow]:
        if account_id is None:
            rows = await self._database.query(f"SELECT {_ROW} FROM outbound ORDER BY id")
        else:
            rows = await self._database.query(
                f"SELECT {_ROW} FROM outbound WHERE account_id = %s ORDER BY id", (account_id,)
            )
        return [_row(row) for row in rows]

    async def purge(self, before: datetime) -> int:
        """
        Forget finished messages created before C{before}, and ClientIds
        older than that: a phone retries within minutes, not weeks.
        """

        async def work(transaction: Transaction) -> int:
            count = await transaction.execute(
                "DELETE FROM outbound WHERE state <> %s AND created_at < %s", (QUEUED, before)
            )
            await transaction.execute("DELETE FROM submitted_client_ids WHERE created_at < %s", (before,))
            return count

        return await self._database.transaction(work)
