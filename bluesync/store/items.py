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

from bluesync.store.changes import stamp
from bluesync.store.database import Database, Transaction

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


# Columns a NewItem may set; anything else is a programming error.
_ITEM_COLUMNS = frozenset(
    {"subject", "from_address", "date_received", "message_id", "size", "importance",
     "has_attachments", "message_class", "conversation_id"}
)


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

    @property
    def server_id(self) -> str:
        return f"{self.folder_id}:{self.id}"


_COLUMNS = (
    "id, account_id, folder_id, modseq, created_modseq, content_class, summary, read, flag,"
    " categories, last_verb, last_verb_time, date_received"
)


def _item(row, content: bytes | None = None) -> Item:
    values = list(row[:13])
    values[9] = tuple(values[9] or ())
    return Item(*values, content=content)


@dataclass(frozen=True)
class Change:
    kind: str
    item_id: int
    modseq: int
    item: Item | None = None

    def server_id(self, folder_id: int) -> str:
        return f"{folder_id}:{self.item_id}"


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


class ItemStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def insert(self, transaction: Transaction, account_id: int, folder_id: int, new: NewItem,
                     origin_device: int | None = None, client_id: str | None = None) -> int:
        """
        Store one item inside a caller's transaction; return its id.
        """
        (modseq,) = await stamp(transaction, account_id, folder_id)
        columns = {k: v for k, v in new.columns.items() if k in _ITEM_COLUMNS}
        unknown = set(new.columns) - _ITEM_COLUMNS
        if unknown:
            raise ValueError(f"unknown item columns {sorted(unknown)}")
        names = ["account_id", "folder_id", "modseq", "created_modseq", "content_class", "content",
                 "summary", "read", "flag", "categories", "origin_device", "client_id", *columns]
        values = [account_id, folder_id, modseq, modseq, new.content_class, psycopg2.Binary(new.content),
                  json.dumps(new.summary), new.read, json.dumps(new.flag) if new.flag else None,
                  list(new.categories), origin_device, client_id,
                  *(psycopg2.Binary(v) if isinstance(v, (bytes, bytearray)) else v for v in columns.values())]
        row = await transaction.query_one(
            f"INSERT INTO items ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))}) RETURNING id",
            values,
        )
        return row[0]

    async def deliver(self, targets: Iterable[tuple[int, int]], new: NewItem) -> list[int]:
        """
        Store one message in several (account, folder) targets, all or
        nothing: an MTA is told 250 only once every copy is committed.
        """

        async def work(transaction: Transaction) -> list[int]:
            return [await self.insert(transaction, account_id, folder_id, new) for account_id, folder_id in targets]

        return await self._database.transaction(work)

    async def get(self, account_id: int, item_id: int, with_content: bool = True) -> Item | None:
        content_column = ", content" if with_content else ""
        row = await self._database.query_one(
            f"SELECT {_COLUMNS}{content_column} FROM items WHERE id = %s AND account_id = %s",
            (item_id, account_id),
        )
        if row is None:
            return None
        return _item(row, bytes(row[13]) if with_content else None)

    async def by_client_id(self, origin_device: int, client_id: str) -> Item | None:
        row = await self._database.query_one(
            f"SELECT {_COLUMNS} FROM items WHERE origin_device = %s AND client_id = %s",
            (origin_device, client_id),
        )
        return _item(row) if row else None

    async def changes(self, account_id: int, folder_id: int, since: int, limit: int,
                      received_after: datetime | None = None, with_content: bool = True) -> list[Change]:
        """
        Up to C{limit} changes after modseq C{since}, oldest first.  An item
        created after C{since} is an add, otherwise a change; tombstones are
        deletes.  C{received_after} (FilterType) hides older items.
        """
        content_column = ", content" if with_content else ""
        date_clause = " AND date_received >= %s" if received_after is not None else ""
        params: list[Any] = [account_id, folder_id, since]
        if received_after is not None:
            params.append(received_after)
        params.append(limit)
        rows = await self._database.query(
            f"SELECT {_COLUMNS}{content_column} FROM items"
            f" WHERE account_id = %s AND folder_id = %s AND modseq > %s{date_clause}"
            f" ORDER BY modseq LIMIT %s",
            params,
        )
        tombstones = await self._database.query(
            "SELECT item_id, modseq, soft FROM tombstones WHERE folder_id = %s AND modseq > %s"
            " ORDER BY modseq LIMIT %s",
            (folder_id, since, limit),
        )
        changes = [
            Change(ADD if row[4] > since else CHANGE, row[0], row[3],
                   _item(row, bytes(row[13]) if with_content else None))
            for row in rows
        ]
        changes += [Change(SOFT_DELETE if soft else DELETE, item_id, modseq) for item_id, modseq, soft in tombstones]
        changes.sort(key=lambda change: change.modseq)
        return changes[:limit]

    async def count_changes(self, account_id: int, folder_id: int, since: int,
                            received_after: datetime | None = None) -> int:
        date_clause = " AND date_received >= %s" if received_after is not None else ""
        params: list[Any] = [account_id, folder_id, since]
        if received_after is not None:
            params.append(received_after)
        row = await self._database.query_one(
            f"SELECT count(*) FROM items WHERE account_id = %s AND folder_id = %s AND modseq > %s{date_clause}",
            params,
        )
        tombstones = await self._database.query_one(
            "SELECT count(*) FROM tombstones WHERE folder_id = %s AND modseq > %s", (folder_id, since)
        )
        return row[0] + tombstones[0]

    async def count(self, account_id: int, folder_id: int) -> int:
        row = await self._database.query_one(
            "SELECT count(*) FROM items WHERE account_id = %s AND folder_id = %s", (account_id, folder_id)
        )
        return row[0]
