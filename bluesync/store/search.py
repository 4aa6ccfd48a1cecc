"""
Search queries: a mailbox's messages by words, folder and date, and the
global address list (the accounts) by name.

Every query is keyed by the account that asks; a folder of another
account is indistinguishable from one that does not exist.  The message
vectors are written by L{bluesync.store.items.ItemStore.insert} (see
L{bluesync.store.fulltext}); the directory vector is a generated column of
the accounts table (migration 006).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bluesync.store import fulltext
from bluesync.store.database import Database

# How the total of a search is known, cheapest first:
# - a page that is not full ends the result: the total is exact, free;
# - otherwise the account's matches are counted, up to COUNT_LIMIT; past
#   it the total is "at least COUNT_LIMIT", raised to at least one past the
#   page so a client always asks for the next one (MS-ASCMD 2.2.3.184.3
#   calls Total an estimate).  Never PostgreSQL's row estimate: it comes
#   from the word statistics of every mailbox, so a search's Total would
#   tell how often other accounts' mail uses a word.
COUNT_LIMIT = 500

# How many of a device's Find searches are remembered (migration 012): a
# phone pages through one search at a time, and a few more cover a user
# going back to an earlier list.
FIND_SEARCHES_KEPT = 8


class NoSuchFolder(LookupError):
    """
    A folder to search is not one of the account's folders.
    """


@dataclass(frozen=True)
class MailboxQuery:
    """
    What a mailbox search asks for.  C{text} None means no word condition;
    a text without any word matches nothing.  An empty C{folder_ids}
    searches the whole mailbox; C{deep} adds the subfolders of the given
    ones.  Both dates are exclusive bounds on the date received.
    C{tsquery} is a condition already in C{to_tsquery} form (the Find
    command's KQL, L{bluesync.store.kql}), applied besides C{text}.
    """

    text: str | None = None
    tsquery: str | None = None
    folder_ids: tuple[int, ...] = ()
    deep: bool = False
    received_after: datetime | None = None
    received_before: datetime | None = None
    conversation_id: bytes | None = None
    content_class: str = "Email"


@dataclass(frozen=True)
class Hit:
    item_id: int
    folder_id: int

    @property
    def server_id(self) -> str:
        return f"{self.folder_id}:{self.item_id}"


@dataclass(frozen=True)
class MailboxResult:
    """
    One page of hits, newest first.  C{total} is exact below
    L{COUNT_LIMIT}; C{total_estimated} says it is an estimate.
    """

    hits: list[Hit]
    total: int
    total_estimated: bool = False


@dataclass(frozen=True)
class DirectoryEntry:
    """
    One person of the global address list.
    """

    account_id: int
    address: str
    display_name: str

    @property
    def alias(self) -> str:
        return self.address.partition("@")[0]

    @property
    def first_last(self) -> tuple[str, str] | None:
        """
        (first name, last name) when the display name shows them:
        "Alice Martin" or "Martin, Alice"; None for a single word.
        """
        name = " ".join(self.display_name.split())
        if "," in name:
            last, _, first = name.partition(",")
            first, last = first.strip(), last.strip()
            return (first, last) if first and last else None
        first, _, last = name.rpartition(" ")
        return (first, last) if first and last else None


class SearchStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def mailbox(self, account_id: int, query: MailboxQuery, offset: int, limit: int) -> MailboxResult:
        """
        The hits of C{query} from C{offset}, at most C{limit} of them,
        newest first, and how many there are in all.

        @raise NoSuchFolder: if a folder of C{query} is not the account's.
        """
        where = ["i.account_id = %(account)s", "i.content_class = %(class)s"]
        params: dict = {"account": account_id, "class": query.content_class,
                        "offset": offset, "limit": limit, "count_limit": COUNT_LIMIT}
        if query.text is not None:
            words = fulltext.words(query.text)
            if not words:
                return MailboxResult([], 0)
            where.append(f"i.search @@ to_tsquery('{fulltext.CONFIG}', %(query)s)")
            params["query"] = fulltext.tsquery(words)
        if query.tsquery is not None:
            where.append(f"i.search @@ to_tsquery('{fulltext.CONFIG}', %(tsquery)s)")
            params["tsquery"] = query.tsquery
        if query.folder_ids:
            where.append("i.folder_id = ANY(%(folders)s)")
            params["folders"] = await self._scope(account_id, query.folder_ids, query.deep)
        if query.received_after is not None:
            where.append("i.date_received > %(after)s")
            params["after"] = query.received_after
        if query.received_before is not None:
            where.append("i.date_received < %(before)s")
            params["before"] = query.received_before
        if query.conversation_id is not None:
            where.append("i.conversation_id = %(conversation)s")
            params["conversation"] = query.conversation_id
        condition = " AND ".join(where)
        rows = await self._database.query(
            f"SELECT i.id, i.folder_id FROM items i WHERE {condition}"
            " ORDER BY i.date_received DESC, i.id DESC LIMIT %(limit)s OFFSET %(offset)s",
            params,
        )
        hits = [Hit(item_id, folder_id) for item_id, folder_id in rows]
        if len(hits) < limit and (hits or offset == 0):
            # This page ends the result.
            return MailboxResult(hits, offset + len(hits))
        # At least one more after a full page; at most the offset when the
        # client paged past the end (then only a count can tell).
        known = offset + len(hits) + 1 if hits else 0
        (total,) = await self._database.query_one(
            f"SELECT count(*) FROM (SELECT 1 FROM items i WHERE {condition} LIMIT %(count_limit)s) AS matches",
            params,
        )
        if total < COUNT_LIMIT:
            return MailboxResult(hits, total)
        return MailboxResult(hits, max(total, known), True)

    async def _scope(self, account_id: int, folder_ids: tuple[int, ...], deep: bool) -> list[int]:
        """
        The live folders to search: the given ones, and with C{deep} every
        folder below them.
        """
        rows = await self._database.query(
            "SELECT id FROM folders WHERE account_id = %s AND id = ANY(%s) AND NOT deleted",
            (account_id, list(folder_ids)),
        )
        found = {row[0] for row in rows}
        missing = set(folder_ids) - found
        if missing:
            raise NoSuchFolder(sorted(missing))
        if not deep:
            return sorted(found)
        rows = await self._database.query(
            "WITH RECURSIVE tree(id) AS ("
            " SELECT unnest(%s::bigint[])"
            " UNION SELECT f.id FROM folders f JOIN tree t ON f.parent_id = t.id"
            " WHERE f.account_id = %s AND NOT f.deleted)"
            " SELECT id FROM tree",
            (sorted(found), account_id),
        )
        return sorted(row[0] for row in rows)

    async def directory(self, text: str, limit: int) -> tuple[list[DirectoryEntry], int]:
        """
        The enabled accounts whose display name or address has a word
        starting with each word of C{text} (or whose address or an alias
        starts with C{text}), by display name; at most C{limit} of them,
        and how many match in all.
        """
        words = fulltext.words(text)
        if not words:
            return [], 0
        rows = await self._database.query(
            "SELECT a.id, a.address, a.display_name, count(*) OVER () FROM accounts a"
            f" WHERE NOT a.disabled AND (a.directory @@ to_tsquery('{fulltext.CONFIG}', %(query)s)"
            " OR a.address LIKE %(prefix)s"
            " OR a.id IN (SELECT account_id FROM account_aliases WHERE address LIKE %(prefix)s))"
            " ORDER BY lower(a.display_name), a.address LIMIT %(limit)s",
            {"query": fulltext.prefix_tsquery(words), "prefix": _like_prefix(text), "limit": limit},
        )
        total = rows[0][3] if rows else 0
        return [DirectoryEntry(*row[:3]) for row in rows], total

    async def begin_find(self, device_id: int, search_id: str) -> None:
        """
        Remember that the device began the Find search C{search_id} (a
        GUID), keeping its L{FIND_SEARCHES_KEPT} most recent ones.
        """
        await self._database.execute(
            "UPDATE devices SET find_searches ="
            " (array_prepend(%(search)s::uuid, array_remove(find_searches, %(search)s::uuid)))[1:%(kept)s]"
            " WHERE id = %(device)s",
            {"search": search_id, "device": device_id, "kept": FIND_SEARCHES_KEPT},
        )

    async def find_begun(self, device_id: int, search_id: str) -> bool:
        """
        Whether the device began the Find search C{search_id} lately.
        """
        row = await self._database.query_one(
            "SELECT %(search)s::uuid = ANY(find_searches) FROM devices WHERE id = %(device)s",
            {"search": search_id, "device": device_id},
        )
        return bool(row and row[0])

    async def by_address(self, address: str) -> DirectoryEntry | None:
        """
        The enabled account owning C{address} as its address or an alias.
        """
        address = address.strip().lower()
        row = await self._database.query_one(
            "SELECT a.id, a.address, a.display_name FROM accounts a"
            " WHERE NOT a.disabled AND (a.address = %(address)s"
            " OR a.id IN (SELECT account_id FROM account_aliases WHERE address = %(address)s))"
            " LIMIT 1",
            {"address": address},
        )
        return DirectoryEntry(*row) if row else None


def _like_prefix(text: str) -> str:
    """
    A LIKE pattern for addresses starting with C{text} (stored lower-case).
    """
    escaped = text.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"
