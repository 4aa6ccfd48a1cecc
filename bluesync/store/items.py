"""
The items table family: items, their tombstones, and change queries.

"What changed in a folder since modseq S" is one indexed query over live
items and tombstones, ordered by modseq, so its cost grows with the number
of changes, never with the size of the folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Iterable

import psycopg2
from psycopg2 import errors as pg_errors

from bluesync.store.changes import CHANNEL, stamp
from bluesync.store.database import Database, Transaction
from bluesync.store.fulltext import VECTOR_SQL, SearchText

ADD, CHANGE, DELETE, SOFT_DELETE = "add", "change", "delete", "softdelete"


@dataclass(frozen=True)
class NewItem:
    """
    What a delivery or a client Add stores.  C{columns} fills the searchable
    columns of the items table (subject, from_address, date_received, ...).
    """

    content_class: str
    content: bytes
    summary: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, Any] = field(default_factory=dict)
    read: bool = False
    flag: dict | None = None
    categories: tuple[str, ...] = ()
    rendition: dict | None = None
    # The words Search finds it by (items.search); None: not searchable.
    search: SearchText | None = None


# Columns a NewItem may set; anything else is a programming error.
_ITEM_COLUMNS = frozenset(
    {"subject", "from_address", "date_received", "message_id", "size", "importance",
     "has_attachments", "message_class", "conversation_id",
     # PIM items (migration 008).
     "uid", "start_time", "end_time", "complete"}
)


@dataclass(frozen=True)
class ItemFilter:
    """
    A FilterType as a condition on items (MS-ASCMD 2.2.3.68.2): mail
    received after a date, events still running after a date (a series
    that never ends always is), tasks not complete.

    Mail never leaves its filter by changing, so it is filtered out
    strictly.  An event moved into the past or a task completed does:
    L{ItemStore.changes} then reports it as a soft delete (the device may
    hold it) instead of hiding the change.
    """

    received_after: datetime | None = None
    ends_after: datetime | None = None
    incomplete_only: bool = False

    @property
    def strict(self) -> bool:
        return self.ends_after is None and not self.incomplete_only

    def condition(self, prefix: str = "") -> tuple[str, dict[str, Any]]:
        """
        A boolean SQL expression (never NULL) over the items columns, with
        its named parameters.
        """
        parts, params = [], {}
        if self.received_after is not None:
            parts.append(f"{prefix}date_received >= %(f_received)s")
            params["f_received"] = self.received_after
        if self.ends_after is not None:
            parts.append(f"({prefix}end_time IS NULL OR {prefix}end_time >= %(f_ends)s)")
            params["f_ends"] = self.ends_after
        if self.incomplete_only:
            parts.append(f"{prefix}complete IS NOT TRUE")
        return (" AND ".join(parts) or "true"), params


# The SQL types of the columns a NewItem may set.
_COLUMN_TYPES = {
    "subject": "text", "from_address": "text", "date_received": "timestamptz", "message_id": "text",
    "size": "integer", "importance": "smallint", "has_attachments": "boolean", "message_class": "text",
    "conversation_id": "bytea", "uid": "text", "start_time": "timestamptz", "end_time": "timestamptz",
    "complete": "boolean",
}


# The columns of bluesync_deliver (migration 013) after the words, in order.
_DELIVER_COLUMNS = ("subject", "from_address", "date_received", "message_id", "size", "importance",
                    "has_attachments", "message_class", "conversation_id", "uid", "start_time", "end_time",
                    "complete")
_DELIVER_SQL = (
    "SELECT * FROM bluesync_deliver(%s::bigint[], %s::bigint[], %s::text, %s::text, %s::bytea, %s::jsonb,"
    " %s::boolean, %s::jsonb, %s::text[], %s::jsonb, %s::text, %s::text, %s::text, "
    + ", ".join(f"%s::{_COLUMN_TYPES[name]}" for name in _DELIVER_COLUMNS) + ")"
)


def _runs(entries: list, item_of=lambda entry: entry) -> list[tuple[tuple[str, ...], list]]:
    """Consecutive entries whose NewItems set the same columns, with those columns."""
    runs: list[tuple[tuple[str, ...], list]] = []
    for entry in entries:
        names = tuple(item_of(entry).columns)
        if runs and runs[-1][0] == names:
            runs[-1][1].append(entry)
        else:
            runs.append((names, [entry]))
    return runs


@dataclass(frozen=True)
class Item:
    id: int
    account_id: int
    folder_id: int
    modseq: int
    created_modseq: int
    content_class: str
    summary: dict
    read: bool
    flag: dict | None
    categories: tuple[str, ...]
    last_verb: int | None
    last_verb_time: datetime | None
    date_received: datetime
    content: bytes | None = None
    rendition: dict | None = None

    @property
    def server_id(self) -> str:
        return f"{self.folder_id}:{self.id}"


_COLUMNS = (
    "id, account_id, folder_id, modseq, created_modseq, content_class, summary, read, flag,"
    " categories, last_verb, last_verb_time, date_received"
)


def _item(row, content: bytes | None = None, rendition: dict | None = None) -> Item:
    values = list(row[:13])
    values[9] = tuple(values[9] or ())
    return Item(*values, content=content, rendition=rendition)


# Selected after the item columns when the content is wanted.
_CONTENT = ", content, rendition"


def _with_content(row) -> Item:
    return _item(row, bytes(row[13]), row[14])


@dataclass(frozen=True)
class Change:
    kind: str
    item_id: int
    modseq: int
    item: Item | None = None

    def server_id(self, folder_id: int) -> str:
        return f"{folder_id}:{self.item_id}"


@dataclass(frozen=True)
class ChangeBatch:
    changes: list[Change]
    more_available: bool
    upto: int


def parse_server_id(server_id: str | None) -> tuple[int, int] | None:
    """
    (folder id, item id) of an item ServerId as we issue it, or None.
    """
    if not server_id:
        return None
    folder, sep, item = server_id.partition(":")
    if not sep or not folder.isdigit() or not item.isdigit() or len(folder) > 18 or len(item) > 18:
        return None
    return int(folder), int(item)


def _new_row(new: NewItem, origin_device: int | None = None,
             client_id: str | None = None) -> tuple[list[str], list[Any]]:
    """
    The items columns a new item sets besides its place (account, folder,
    modseqs) and its words, with their values.
    """
    unknown = set(new.columns) - _ITEM_COLUMNS
    if unknown:
        raise ValueError(f"unknown item columns {sorted(unknown)}")
    names = ["content_class", "content", "summary", "read", "flag", "categories", "origin_device", "client_id",
             "rendition", *new.columns]
    values = [new.content_class, psycopg2.Binary(new.content), json.dumps(new.summary), new.read,
              json.dumps(new.flag) if new.flag else None, list(new.categories), origin_device, client_id,
              json.dumps(new.rendition) if new.rendition is not None else None,
              *(psycopg2.Binary(v) if isinstance(v, (bytes, bytearray)) else v for v in new.columns.values())]
    return names, values


def _state_assignments(sets: list, params: list, read, flag, set_flag: bool, categories) -> None:
    """
    The SET clauses for an item's shared state (read, flag, categories),
    for the writers that change it: only what was given is assigned.
    """
    if read is not None:
        sets.append("read = %s")
        params.append(read)
    if set_flag:
        sets.append("flag = %s")
        params.append(json.dumps(flag) if flag is not None else None)
    if categories is not None:
        sets.append("categories = %s")
        params.append(list(categories))


class ItemStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, transaction: Transaction, account_id: int, folder_id: int, new: NewItem,
                     origin_device: int | None = None, client_id: str | None = None) -> int:
        """
        Store one item inside a caller's transaction; return its id.
        """
        names, values = _new_row(new, origin_device, client_id)
        (modseq,) = await stamp(transaction, account_id, folder_id)
        names = ["account_id", "folder_id", "modseq", "created_modseq", *names]
        values = [account_id, folder_id, modseq, modseq, *values]
        placeholders = ["%s"] * len(names)
        if new.search is not None:
            names.append("search")
            placeholders.append(VECTOR_SQL)
            values.extend(new.search.parameters())
        row = await transaction.query_one(
            f"INSERT INTO items ({', '.join(names)}) VALUES ({', '.join(placeholders)}) RETURNING id",
            values,
        )
        return row[0]

    async def deliver(self, targets: Iterable[tuple[int, int | None]], new: NewItem) -> list[int]:
        """
        Store one message in several (account, folder) targets, all or
        nothing: an MTA is told 250 only once every copy is committed.  A
        folder of None is the account's Inbox, or the folder a MoveAlways
        rule names for the message's conversation.  Returns the new item
        ids in the order of C{targets}.

        One statement in autocommit, so one round trip and its own
        transaction: a delivery is bound by round trips, and the five
        statements of L{insert} (plus BEGIN, NOTIFY and COMMIT) cost more
        than storing the message.  Its result arrives only once it has
        committed (PostgreSQL ends an implicit transaction before it
        reports the command complete), so the MTA's 250 still follows the
        commit.  It keeps the rules of L{stamp}: the
        folder rows are locked (in id order, so two deliveries to the same
        accounts never deadlock) and bumped, each copy is stamped with its
        folder's new modseq, and the NOTIFY is sent by the same statement,
        so on commit.  The words are turned into a vector once for all
        copies.  The statement lives in the PL/pgSQL function
        bluesync_deliver (migration 013; 015 adds renewing the MoveAlways
        rule that routed the message), which plans it once per
        connection: planning it afresh cost more than running it.  A column
        C{new} does not set takes the table's default there, as here.

        @raise MissingFolder: a target folder (or Inbox) does not exist;
            nothing is stored.
        """
        targets = list(targets)
        accounts = [account_id for account_id, _ in targets]
        if not targets:
            return []
        if len(set(accounts)) != len(accounts):
            raise ValueError("one copy per account")
        unknown = set(new.columns) - _ITEM_COLUMNS
        if unknown:
            raise ValueError(f"unknown item columns {sorted(unknown)}")
        columns = [new.columns.get(name) for name in _DELIVER_COLUMNS]
        rows = await self._database.query(
            _DELIVER_SQL,
            [accounts, [folder_id for _, folder_id in targets], CHANNEL,
             new.content_class, psycopg2.Binary(new.content), json.dumps(new.summary), new.read,
             json.dumps(new.flag) if new.flag else None, list(new.categories),
             json.dumps(new.rendition) if new.rendition is not None else None,
             *(new.search.parameters() if new.search is not None else (None, None, None)),
             *(psycopg2.Binary(v) if isinstance(v, (bytes, bytearray)) else v for v in columns)],
        )
        stored = dict(rows)
        missing = [account_id for account_id in accounts if account_id not in stored]
        if missing:
            raise MissingFolder(missing[0])
        if None in stored.values():
            raise LookupError("a target folder went away during the delivery")
        return [stored[account_id] for account_id in accounts]

    async def get(self, account_id: int, item_id: int, with_content: bool = True) -> Item | None:
        content_column = _CONTENT if with_content else ""
        row = await self._database.query_one(
            f"SELECT {_COLUMNS}{content_column} FROM items WHERE id = %s AND account_id = %s",
            (item_id, account_id),
        )
        if row is None:
            return None
        return _with_content(row) if with_content else _item(row)

    async def by_client_id(self, origin_device: int, client_id: str) -> Item | None:
        row = await self._database.query_one(
            f"SELECT {_COLUMNS} FROM items WHERE origin_device = %s AND client_id = %s",
            (origin_device, client_id),
        )
        return _item(row) if row else None

    async def release_client_id(self, origin_device: int, client_id: str) -> None:
        """
        Forget which item a device's ClientId created, so the device may
        use it again (ClientIds need only be unique within one request).
        """
        await self._database.execute(
            "UPDATE items SET client_id = NULL WHERE origin_device = %s AND client_id = %s", (origin_device, client_id)
        )

    async def by_uid(self, account_id: int, folder_id: int, uid: str) -> Item | None:
        """
        The item of a folder with this vCard / iCalendar UID (the oldest,
        should an import have stored it twice), without content.
        """
        row = await self._database.query_one(
            f"SELECT {_COLUMNS} FROM items WHERE folder_id = %s AND account_id = %s AND uid = %s ORDER BY id LIMIT 1",
            (folder_id, account_id, uid),
        )
        return _item(row) if row else None

    async def ids_by_uid(self, account_id: int, folder_id: int, uids: Iterable[str]) -> dict[str, int]:
        """
        UID -> item id of the folder's items among C{uids}.
        """
        uids = list(uids)
        if not uids:
            return {}
        rows = await self._database.query(
            "SELECT DISTINCT ON (uid) uid, id FROM items WHERE folder_id = %s AND account_id = %s"
            " AND uid = ANY(%s) ORDER BY uid, id",
            (folder_id, account_id, uids),
        )
        return dict(rows)

    async def store_batch(self, account_id: int, folder_id: int, added: list[NewItem],
                          replaced: dict[int, NewItem]) -> list[int]:
        """
        Add C{added} to a folder and give the items of C{replaced} (item id
        -> new content) their new content, in one transaction and one
        stamp: what an import does, a few hundred items at a time.  Items
        of C{replaced} that are not in the folder are skipped.  Returns
        the ids of the added items, in order.
        """
        for new in [*added, *replaced.values()]:
            unknown = set(new.columns) - _ITEM_COLUMNS
            if unknown:
                raise ValueError(f"unknown item columns {sorted(unknown)}")

        async def work(transaction: Transaction) -> list[int]:
            count = len(added) + len(replaced)
            if not count:
                return []
            modseqs = await stamp(transaction, account_id, folder_id, count)
            ids = []
            # One statement per run of items with the same columns: an
            # import is bound by round trips, not by PostgreSQL.
            position = 0
            for names, run in _runs(added):
                run_modseqs = modseqs[position:position + len(run)]
                position += len(run)
                columns = ["account_id", "folder_id", "modseq", "created_modseq", "content_class", "content",
                           "summary", "read", "categories", *names]
                params: list[Any] = []
                for new, modseq in zip(run, run_modseqs):
                    params += [account_id, folder_id, modseq, modseq, new.content_class, psycopg2.Binary(new.content),
                               json.dumps(new.summary), new.read, list(new.categories),
                               *(new.columns[name] for name in names)]
                row_sql = "(" + ", ".join(["%s"] * len(columns)) + ")"
                rows = await transaction.query(
                    f"INSERT INTO items ({', '.join(columns)}) VALUES {', '.join([row_sql] * len(run))}"
                    " RETURNING id, modseq",
                    params,
                )
                by_modseq = dict((modseq, item_id) for item_id, modseq in rows)
                ids += [by_modseq[modseq] for modseq in run_modseqs]
            for names, run in _runs(list(replaced.items()), lambda pair: pair[1]):
                run_modseqs = modseqs[position:position + len(run)]
                position += len(run)
                values = ["v.modseq", "v.content", "v.summary::jsonb",
                          *(f"v.{name}::{_COLUMN_TYPES[name]}" for name in names)]
                targets = ["modseq", "content", "summary", *names]
                params = []
                for (item_id, new), modseq in zip(run, run_modseqs):
                    params += [item_id, modseq, psycopg2.Binary(new.content), json.dumps(new.summary),
                               *(new.columns[name] for name in names)]
                row_sql = "(" + ", ".join(["%s::bigint", "%s::bigint", "%s", "%s", *["%s"] * len(names)]) + ")"
                await transaction.execute(
                    f"UPDATE items SET {', '.join(f'{t} = {v}' for t, v in zip(targets, values))}"
                    f" FROM (VALUES {', '.join([row_sql] * len(run))})"
                    f" AS v(id, modseq, content, summary{''.join(', ' + name for name in names)})"
                    " WHERE items.id = v.id AND items.folder_id = %s AND items.account_id = %s",
                    [*params, folder_id, account_id],
                )
            return ids

        return await self._database.transaction(work)

    async def folder_items(self, account_id: int, folder_id: int) -> list[Item]:
        """
        Every item of a folder with its content, oldest first (an export).
        """
        rows = await self._database.query(
            f"SELECT {_COLUMNS}{_CONTENT} FROM items WHERE account_id = %s AND folder_id = %s ORDER BY id",
            (account_id, folder_id),
        )
        return [_with_content(row) for row in rows]

    async def add_from_device(self, account_id: int, folder_id: int, new: NewItem, device_pk: int,
                              client_id: str) -> tuple[Item, bool]:
        """
        Store an item a device added with a ClientId (a Sync Add), once:
        a resent Add finds the item the first one stored.  Returns the item
        (without content) and whether it was stored now.
        """

        async def work(transaction: Transaction) -> int:
            return await self.insert(transaction, account_id, folder_id, new, device_pk, client_id)

        existing = await self.by_client_id(device_pk, client_id)
        if existing is None:
            try:
                item_id = await self._database.transaction(work)
            except pg_errors.UniqueViolation:
                # The same Add, resent while the first was being stored.
                item_id = None
            if item_id is not None:
                return await self.get(account_id, item_id, with_content=False), True
            existing = await self.by_client_id(device_pk, client_id)
        return existing, False

    async def replace_content(self, account_id: int, folder_id: int, item_id: int, new: NewItem, *,
                              expected_modseq: int | None = None, read=None, flag: dict | None = None,
                              set_flag: bool = False, categories: tuple[str, ...] | None = None) -> int | None:
        """
        Give an item new content (a draft saved again): the bytes, summary,
        rendition, searchable columns and words of C{new}, and optionally
        new shared state, stamped so the account's other devices receive
        the change.  The item keeps its id, so its ServerId.  Returns the
        new modseq, or None if the item is not in that folder.

        @param expected_modseq: the modseq the new content was derived
            from; if the item changed since, nothing is written.
        @raise ItemChanged: the item's modseq is not C{expected_modseq}.
        """
        columns = {k: v for k, v in new.columns.items() if k in _ITEM_COLUMNS}
        unknown = set(new.columns) - _ITEM_COLUMNS
        if unknown:
            raise ValueError(f"unknown item columns {sorted(unknown)}")

        async def work(transaction: Transaction) -> int | None:
            row = await transaction.query_one(
                "SELECT modseq FROM items WHERE id = %s AND folder_id = %s AND account_id = %s FOR UPDATE",
                (item_id, folder_id, account_id),
            )
            if row is None:
                return None
            if expected_modseq is not None and row[0] != expected_modseq:
                raise ItemChanged(item_id)
            (modseq,) = await stamp(transaction, account_id, folder_id)
            sets = ["modseq = %s", "content = %s", "summary = %s", "rendition = %s"]
            params: list[Any] = [modseq, psycopg2.Binary(new.content), json.dumps(new.summary),
                                 json.dumps(new.rendition) if new.rendition is not None else None]
            for name, value in columns.items():
                sets.append(f"{name} = %s")
                params.append(psycopg2.Binary(value) if isinstance(value, (bytes, bytearray)) else value)
            if new.search is not None:
                sets.append(f"search = {VECTOR_SQL}")
                params.extend(new.search.parameters())
            _state_assignments(sets, params, read, flag, set_flag, categories)
            await transaction.execute(f"UPDATE items SET {', '.join(sets)} WHERE id = %s", (*params, item_id))
            return modseq

        return await self._database.transaction(work)

    async def changes(self, account_id: int, folder_id: int, since: int, limit: int,
                      received_after: datetime | None = None, with_content: bool = True,
                      item_filter: ItemFilter | None = None, raw_if_rendered: bool = True) -> "ChangeBatch":
        """
        Up to C{limit} changes after modseq C{since}, oldest first: an item
        created after C{since} is an add, otherwise a change; tombstones are
        deletes.  C{item_filter} (FilterType; C{received_after} is the
        mail one) hides items outside it; a non-strict filter reports a
        changed item that is now outside it as a soft delete.

        One statement, so one snapshot: when the batch is complete, its
        C{upto} is the folder's counter as of that snapshot, which covers
        every change the query could see, including the filtered-out ones.
        A sync state saved at C{upto} therefore never misses a commit that
        raced with the query, and never lags behind filtered items (which
        would make a Ping fire forever).

        With C{raw_if_rendered} false, an item with a rendition comes
        without its raw content (None), unless it is a meeting message
        (its invitation is read from the raw message): serving it from the
        rendition needs nothing more, and reading, unpacking and sending a
        window of raw messages was most of the database's work in an
        initial Sync.
        """
        if item_filter is None and received_after is not None:
            item_filter = ItemFilter(received_after=received_after)
        content = "i.content, i.rendition" if with_content else "NULL::bytea, NULL::jsonb"
        if with_content and not raw_if_rendered:
            content = ("CASE WHEN i.rendition IS NULL OR i.message_class LIKE 'IPM.Schedule.Meeting%%'"
                       " THEN i.content END, i.rendition")
        params: dict[str, Any] = {"folder": folder_id, "account": account_id, "since": since, "limit": limit + 1}
        filter_clause, inside = "", "true"
        if item_filter is not None:
            inside, filter_params = item_filter.condition("i.")
            params.update(filter_params)
            if item_filter.strict:
                filter_clause = f" AND {inside}"
            else:
                # New items outside the filter are not the device's business;
                # changed ones may be on it (they were inside before).
                filter_clause = f" AND ({inside} OR i.created_modseq <= %(since)s)"
        rows = await self._database.query(
            "WITH f AS (SELECT modseq FROM folders WHERE id = %(folder)s AND account_id = %(account)s),"
            " ch AS (("
            f" SELECT i.id AS change_id, i.modseq AS change_modseq, i.created_modseq AS change_created,"
            f" false AS tomb, NOT ({inside}) AS soft,"
            f" {', '.join('i.' + c.strip() for c in _COLUMNS.split(','))}, {content}"
            " FROM items i WHERE i.account_id = %(account)s AND i.folder_id = %(folder)s"
            f" AND i.modseq > %(since)s{filter_clause}"
            " ORDER BY i.modseq LIMIT %(limit)s"
            ") UNION ALL ("
            " SELECT t.item_id, t.modseq, NULL, true, t.soft,"
            f" {', '.join(['NULL'] * 13)}, NULL, NULL"
            " FROM tombstones t WHERE t.folder_id = %(folder)s AND t.modseq > %(since)s"
            " ORDER BY t.modseq LIMIT %(limit)s))"
            " SELECT f.modseq, ch.* FROM f LEFT JOIN ch ON true ORDER BY ch.change_modseq LIMIT %(limit)s",
            params,
        )
        if not rows:
            raise LookupError(f"folder {folder_id} of account {account_id}")
        folder_modseq = rows[0][0]
        changes = []
        for row in rows:
            if row[1] is None:
                continue
            item_id, modseq, created, tomb, soft = row[1:6]
            if tomb:
                changes.append(Change(SOFT_DELETE if soft else DELETE, item_id, modseq))
            elif soft:
                # Changed out of the filter (an event moved into the past,
                # a task completed).
                changes.append(Change(SOFT_DELETE, item_id, modseq))
            else:
                item = _item(row[6:19], bytes(row[19]) if with_content and row[19] is not None else None, row[20])
                changes.append(Change(ADD if created > since else CHANGE, item_id, modseq, item))
        more = len(changes) > limit
        changes = changes[:limit]
        upto = changes[-1].modseq if more else max(folder_modseq, since)
        return ChangeBatch(changes, more, upto)

    async def update_state(self, account_id: int, folder_id: int, item_id: int, *, read=None,
                           flag: dict | None = None, set_flag: bool = False,
                           categories: tuple[str, ...] | None = None) -> int | None:
        """
        Change an item's shared state (read, flag, categories) and stamp it,
        so the account's other devices receive the change.  Returns the new
        modseq, or None if the item is not in that folder of that account.
        """

        async def work(transaction: Transaction) -> int | None:
            exists = await transaction.query_one(
                "SELECT 1 FROM items WHERE id = %s AND folder_id = %s AND account_id = %s",
                (item_id, folder_id, account_id),
            )
            if exists is None:
                return None
            (modseq,) = await stamp(transaction, account_id, folder_id)
            sets, params = ["modseq = %s"], [modseq]
            _state_assignments(sets, params, read, flag, set_flag, categories)
            await transaction.execute(f"UPDATE items SET {', '.join(sets)} WHERE id = %s", (*params, item_id))
            return modseq

        return await self._database.transaction(work)

    async def delete(self, account_id: int, folder_id: int, item_id: int) -> int | None:
        """
        Delete an item for good, leaving a tombstone; the tombstone's modseq,
        or None if there was no such item.
        """

        async def work(transaction: Transaction) -> int | None:
            row = await transaction.query_one(
                "DELETE FROM items WHERE id = %s AND folder_id = %s AND account_id = %s RETURNING id",
                (item_id, folder_id, account_id),
            )
            if row is None:
                return None
            (modseq,) = await _stamp_deleted(transaction, account_id, folder_id, [item_id])
            return modseq

        return await self._database.transaction(work)

    async def move(self, account_id: int, source_id: int, item_id: int, destination_id: int) -> tuple[int, int] | None:
        """
        Move an item to another folder of the account: a tombstone in the
        source, an add in the destination.  Returns (source tombstone
        modseq, destination modseq), or None if the item is not in source.
        The item keeps its id; its ServerId changes with its folder.
        """

        async def work(transaction: Transaction):
            row = await transaction.query_one(
                "SELECT 1 FROM items WHERE id = %s AND folder_id = %s AND account_id = %s FOR UPDATE",
                (item_id, source_id, account_id),
            )
            if row is None:
                return None
            gone, arrived = await self._relocate(transaction, account_id, [(item_id, source_id)], destination_id)
            return gone[item_id], arrived[item_id]

        return await self._database.transaction(work)

    async def get_many(self, account_id: int, item_ids: list[int], folder_id: int | None = None,
                       with_content: bool = True) -> dict[int, Item]:
        """
        The account's items among C{item_ids} (optionally only those in
        C{folder_id}), keyed by id; ids of other accounts are simply absent.
        """
        if not item_ids:
            return {}
        content_column = _CONTENT if with_content else ""
        folder_clause = " AND folder_id = %s" if folder_id is not None else ""
        params: list[Any] = [account_id, list(item_ids)]
        if folder_id is not None:
            params.append(folder_id)
        rows = await self._database.query(
            f"SELECT {_COLUMNS}{content_column} FROM items WHERE account_id = %s AND id = ANY(%s){folder_clause}",
            params,
        )
        return {row[0]: _with_content(row) if with_content else _item(row) for row in rows}

    async def count_changes(self, account_id: int, folder_id: int, since: int,
                            received_after: datetime | None = None,
                            item_filter: ItemFilter | None = None) -> int:
        """
        How many changes L{changes} would report after C{since}.
        """
        if item_filter is None and received_after is not None:
            item_filter = ItemFilter(received_after=received_after)
        params: dict[str, Any] = {"account": account_id, "folder": folder_id, "since": since}
        clause = ""
        if item_filter is not None:
            inside, filter_params = item_filter.condition()
            params.update(filter_params)
            clause = f" AND {inside}" if item_filter.strict else f" AND ({inside} OR created_modseq <= %(since)s)"
        row = await self._database.query_one(
            "SELECT count(*) FROM items WHERE account_id = %(account)s AND folder_id = %(folder)s"
            f" AND modseq > %(since)s{clause}",
            params,
        )
        tombstones = await self._database.query_one(
            "SELECT count(*) FROM tombstones t JOIN folders f ON f.id = t.folder_id AND f.account_id = %s"
            " WHERE t.folder_id = %s AND t.modseq > %s", (account_id, folder_id, since)
        )
        return row[0] + tombstones[0]

    async def ids_crossing_filter(self, account_id: int, folder_id: int, old: ItemFilter | None,
                                  new: ItemFilter | None, created_upto: int) -> tuple[list[int], list[int]]:
        """
        What a FilterType change moves, among the items that existed at
        modseq C{created_upto}: (ids inside C{old} and outside C{new}, ids
        outside C{old} and inside C{new}); None is "every item".
        """
        old_condition, old_params = (old or ItemFilter()).condition()
        new_condition, new_params = (new or ItemFilter()).condition()
        # Both filters may use the same parameter names with other values.
        old_condition = old_condition.replace("%(f_", "%(old_f_")
        params: dict[str, Any] = {"account": account_id, "folder": folder_id, "upto": created_upto,
                                  **{f"old_{k}": v for k, v in old_params.items()}, **new_params}
        rows = await self._database.query(
            f"SELECT id, {new_condition} FROM items WHERE account_id = %(account)s AND folder_id = %(folder)s"
            f" AND created_modseq <= %(upto)s AND ({old_condition}) <> ({new_condition}) ORDER BY modseq",
            params,
        )
        leaving = [item_id for item_id, inside in rows if not inside]
        entering = [item_id for item_id, inside in rows if inside]
        return leaving, entering

    async def count(self, account_id: int, folder_id: int) -> int:
        row = await self._database.query_one(
            "SELECT count(*) FROM items WHERE account_id = %s AND folder_id = %s", (account_id, folder_id)
        )
        return row[0]

    async def move_by_device(self, account_id: int, source_id: int, item_id: int, destination_id: int,
                             device_pk: int) -> tuple[int, int] | None:
        """
        L{move} for a device that has already moved its own copy (MoveItems):
        besides the tombstone and the add, both stamps are recorded as the
        device's own changes in its stored sync states of the two folders,
        in the same transaction, so the next Sync of either folder does not
        echo the move back to it (it would otherwise get an Add for a
        ServerId it already holds).  Returns (tombstone modseq, destination
        modseq), or None if the item is not in the source folder.

        @raise ItemLocked: another transaction holds the item; MoveItems
            answers Status 7 instead of queueing behind it.  (SKIP LOCKED,
            not NOWAIT: NOWAIT's lock_not_available error is an
            OperationalError, which the pool takes for a dead connection.)
        """

        async def work(transaction: Transaction):
            where = "WHERE id = %s AND folder_id = %s AND account_id = %s"
            row = await transaction.query_one(
                f"SELECT 1 FROM items {where} FOR UPDATE SKIP LOCKED", (item_id, source_id, account_id)
            )
            if row is None:
                if await transaction.query_one(f"SELECT 1 FROM items {where}", (item_id, source_id, account_id)):
                    raise ItemLocked(item_id)
                return None
            gone, arrived = await self._relocate(transaction, account_id, [(item_id, source_id)], destination_id)
            await _remember_own(transaction, device_pk, source_id, {item_id: gone[item_id]})
            await _remember_own(transaction, device_pk, destination_id, {item_id: arrived[item_id]})
            return gone[item_id], arrived[item_id]

        return await self._database.transaction(work)

    async def move_conversation(self, account_id: int, conversation_id: bytes, destination_id: int,
                                skip_folders: Iterable[int] = ()) -> tuple[int, dict[int, int]]:
        """
        Move every message of a conversation (items.conversation_id) from the
        account's live folders, except C{skip_folders} and the destination
        itself, to C{destination_id}, in one transaction.  Returns the number
        of the account's messages in the conversation (wherever they are)
        and item id -> source folder id of those moved.
        """
        skipped = set(skip_folders) | {destination_id}

        async def work(transaction: Transaction):
            rows = await transaction.query(
                "SELECT i.id, i.folder_id FROM items i JOIN folders f ON f.id = i.folder_id"
                " WHERE i.account_id = %s AND i.conversation_id = %s AND i.content_class = 'Email'"
                " AND NOT f.deleted ORDER BY i.id FOR UPDATE OF i",
                (account_id, psycopg2.Binary(conversation_id)),
            )
            moving = [(item_id, folder_id) for item_id, folder_id in rows if folder_id not in skipped]
            if moving:
                await self._relocate(transaction, account_id, moving, destination_id)
            return len(rows), dict(moving)

        return await self._database.transaction(work)

    async def _relocate(self, transaction: Transaction, account_id: int, moving: list[tuple[int, int]],
                        destination_id: int) -> tuple[dict[int, int], dict[int, int]]:
        """
        Move locked items (item id, source folder) to a folder: one stamp per
        item in its source (the tombstone) and in the destination (the add).
        Folder counters are taken in ascending folder id order, so two
        transactions moving between the same folders never deadlock.
        """
        by_source: dict[int, list[int]] = {}
        for item_id, source_id in moving:
            by_source.setdefault(source_id, []).append(item_id)
        counts = {source_id: len(ids) for source_id, ids in by_source.items()}
        counts[destination_id] = counts.get(destination_id, 0) + len(moving)
        stamps = {folder_id: await stamp(transaction, account_id, folder_id, counts[folder_id])
                  for folder_id in sorted(counts)}
        gone: dict[int, int] = {}
        for source_id, ids in by_source.items():
            modseqs = stamps[source_id][:len(ids)]
            gone.update(zip(ids, modseqs))
            await _write_tombstones(transaction, source_id, ids, modseqs)
        arrived = dict(zip((item_id for item_id, _ in moving), stamps[destination_id][-len(moving):]))
        await transaction.execute(
            "UPDATE items SET folder_id = %s, modseq = m.modseq, created_modseq = m.modseq"
            " FROM (SELECT unnest(%s::bigint[]) AS id, unnest(%s::bigint[]) AS modseq) m WHERE items.id = m.id",
            (destination_id, list(arrived), list(arrived.values())),
        )
        return gone, arrived

    async def empty_folder(self, account_id: int, folder_id: int) -> int | None:
        """
        Delete every item of a folder for good (ItemOperations
        EmptyFolderContents), in one transaction: each item leaves a
        tombstone with a modseq of its own, so every device is sent a Delete
        per item.  The folder row is locked first, so a delivery racing with
        it either is emptied too or lands after.  Returns how many items
        went, or None if the folder is not a live folder of the account.
        """

        async def work(transaction: Transaction) -> int | None:
            row = await transaction.query_one(
                "SELECT 1 FROM folders WHERE id = %s AND account_id = %s AND NOT deleted FOR UPDATE",
                (folder_id, account_id),
            )
            if row is None:
                return None
            rows = await transaction.query(
                "DELETE FROM items WHERE account_id = %s AND folder_id = %s RETURNING id", (account_id, folder_id)
            )
            if not rows:
                return 0
            ids = sorted(row[0] for row in rows)
            await _stamp_deleted(transaction, account_id, folder_id, ids)
            return len(ids)

        return await self._database.transaction(work)


class MissingFolder(LookupError):
    """
    A delivery's target folder (or Inbox) does not exist; the argument is
    its account id.
    """


class ItemLocked(Exception):
    """
    The item is locked by another transaction (MoveItems Status 7).
    """


class ItemChanged(Exception):
    """
    The item changed since the caller read it (replace_content with an
    expected modseq): read it again and redo the edit.
    """


async def _stamp_deleted(transaction: Transaction, account_id: int, folder_id: int, item_ids: list[int]) -> list[int]:
    """
    Record that items left a folder (deleted, the rows already gone): one
    stamp each, in the order given, and a tombstone at it, so each device
    holding them is sent a Delete.  Returns the modseqs.  Stamping locks
    the folder row, which orders this against any other write to it.
    """
    modseqs = await stamp(transaction, account_id, folder_id, len(item_ids))
    await _write_tombstones(transaction, folder_id, item_ids, modseqs)
    return modseqs


async def _write_tombstones(transaction: Transaction, folder_id: int, item_ids: list[int],
                            modseqs: list[int]) -> None:
    """
    One tombstone per item at its modseq, stamped by the caller: one
    statement whatever the number of items.
    """
    await transaction.execute(
        "INSERT INTO tombstones (folder_id, item_id, modseq)"
        " SELECT %s, unnest(%s::bigint[]), unnest(%s::bigint[])",
        (folder_id, item_ids, modseqs),
    )


async def _remember_own(transaction: Transaction, device_pk: int, folder_id: int, own: dict[int, int]) -> None:
    """
    Add item id -> modseq entries to the C{own} map of a device's stored
    sync states of a folder (the current and the previous key's, so a
    resent request is not echoed either): the sync engine skips a change
    whose modseq is recorded there (bluesync/sync/engine.py).
    """
    await transaction.execute(
        "UPDATE sync_states SET state = jsonb_set(state, '{own}', coalesce(state->'own', '{}'::jsonb) || %s::jsonb)"
        " WHERE device_id = %s AND collection = %s",
        (json.dumps({str(item_id): modseq for item_id, modseq in own.items()}), device_pk, folder_id),
    )
