"""
The folders table family: the folder hierarchy of each account.

Folder ids are global, so every query is also keyed by the account: a folder
of another account is indistinguishable from one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg2 import errors as pg_errors

from bluesync.store.changes import stamp_hierarchy
from bluesync.store.database import Database, Transaction

# MS-ASCMD 2.2.3.186.3: folder types.
USER_GENERIC = 1
INBOX = 2
DRAFTS = 3
DELETED_ITEMS = 4
SENT_ITEMS = 5
OUTBOX = 6
TASKS = 7
CALENDAR = 8
CONTACTS = 9
NOTES = 10
JOURNAL = 11
USER_MAIL = 12
USER_CALENDAR = 13
USER_CONTACTS = 14
USER_TASKS = 15
USER_JOURNAL = 16
USER_NOTES = 17

CONTENT_CLASS = {
    USER_GENERIC: "Email",
    INBOX: "Email",
    DRAFTS: "Email",
    DELETED_ITEMS: "Email",
    SENT_ITEMS: "Email",
    OUTBOX: "Email",
    USER_MAIL: "Email",
    TASKS: "Tasks",
    USER_TASKS: "Tasks",
    CALENDAR: "Calendar",
    USER_CALENDAR: "Calendar",
    CONTACTS: "Contacts",
    USER_CONTACTS: "Contacts",
    NOTES: "Notes",
    USER_NOTES: "Notes",
    JOURNAL: "Journal",
    USER_JOURNAL: "Journal",
}

# The folders every account has (Android 5 resets the account if Drafts or
# Outbox is missing).  They cannot be renamed or deleted.
DEFAULT_FOLDERS = (
    (INBOX, "Inbox"),
    (DRAFTS, "Drafts"),
    (DELETED_ITEMS, "Deleted Items"),
    (SENT_ITEMS, "Sent Items"),
    (OUTBOX, "Outbox"),
    (USER_MAIL, "Junk Email"),
    (TASKS, "Tasks"),
    (CALENDAR, "Calendar"),
    (CONTACTS, "Contacts"),
    (NOTES, "Notes"),
)
# Which user-creatable types FolderCreate accepts.
USER_TYPES = frozenset({USER_GENERIC, USER_MAIL, USER_CALENDAR, USER_CONTACTS, USER_TASKS, USER_JOURNAL, USER_NOTES})


@dataclass(frozen=True)
class Folder:
    id: int
    account_id: int
    parent_id: int | None
    name: str
    type: int
    content_class: str
    modseq: int
    hierarchy_modseq: int
    created_hierarchy_modseq: int
    system: bool
    deleted: bool

    @property
    def server_id(self) -> str:
        return str(self.id)

    @property
    def special(self) -> bool:
        """
        A default folder: cannot be renamed, moved or deleted.
        """
        return self.system


_COLUMNS = (
    "id, account_id, parent_id, name, type, content_class, modseq,"
    " hierarchy_modseq, created_hierarchy_modseq, system, deleted"
)


def qualified_columns(alias: str) -> str:
    """
    The columns a L{Folder} is built from, qualified by a table alias, for
    a statement of another table family that reads a folder beside its rows.
    """
    return ", ".join(f"{alias}.{column.strip()}" for column in _COLUMNS.split(","))


class FolderError(Exception):
    pass


class FolderExists(FolderError):
    pass


class NoSuchFolder(FolderError):
    pass


class SpecialFolder(FolderError):
    pass


class BadParent(FolderError):
    pass


class ParentCycle(BadParent):
    """
    The new parent is the folder itself or one of its descendants.
    """


def parse_server_id(server_id: str | None) -> int | None:
    """
    A folder ServerId as we issue it, or None if it cannot be one.
    """
    if server_id is None or not server_id.isdigit() or len(server_id) > 18:
        return None
    return int(server_id)


class FolderStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create_defaults(self, transaction: Transaction, account_id: int) -> None:
        modseq = await stamp_hierarchy(transaction, account_id)
        for folder_type, name in DEFAULT_FOLDERS:
            await transaction.execute(
                "INSERT INTO folders (account_id, name, type, content_class, hierarchy_modseq,"
                " created_hierarchy_modseq, system) VALUES (%s, %s, %s, %s, %s, %s, true)",
                (account_id, name, folder_type, CONTENT_CLASS[folder_type], modseq, modseq),
            )

    async def list(self, account_id: int, include_deleted: bool = False) -> list[Folder]:
        rows = await self._database.query(
            f"SELECT {_COLUMNS} FROM folders WHERE account_id = %s"
            + ("" if include_deleted else " AND NOT deleted")
            + " ORDER BY id",
            (account_id,),
        )
        return [Folder(*row) for row in rows]

    async def get(self, account_id: int, folder_id: int | None) -> Folder | None:
        if folder_id is None:
            return None
        row = await self._database.query_one(
            f"SELECT {_COLUMNS} FROM folders WHERE id = %s AND account_id = %s AND NOT deleted",
            (folder_id, account_id),
        )
        return Folder(*row) if row else None

    async def by_type(self, account_id: int, folder_type: int) -> Folder | None:
        row = await self._database.query_one(
            f"SELECT {_COLUMNS} FROM folders WHERE account_id = %s AND type = %s AND NOT deleted"
            " ORDER BY id LIMIT 1",
            (account_id, folder_type),
        )
        return Folder(*row) if row else None

    async def modseqs(self, account_id: int, folder_ids: list[int]) -> dict[int, int]:
        """
        Current content counters of the account's live folders among C{folder_ids}.
        """
        if not folder_ids:
            return {}
        rows = await self._database.query(
            "SELECT id, modseq FROM folders WHERE account_id = %s AND id = ANY(%s) AND NOT deleted",
            (account_id, list(folder_ids)),
        )
        return dict(rows)

    async def hierarchy_modseq(self, account_id: int) -> int:
        row = await self._database.query_one(
            "SELECT hierarchy_modseq FROM accounts WHERE id = %s", (account_id,)
        )
        return row[0] if row else 0

    async def hierarchy_changes(self, account_id: int, since: int) -> list[Folder]:
        """
        Folders created, changed or deleted after hierarchy modseq C{since}.
        """
        rows = await self._database.query(
            f"SELECT {_COLUMNS} FROM folders WHERE account_id = %s AND hierarchy_modseq > %s"
            " ORDER BY hierarchy_modseq, id",
            (account_id, since),
        )
        return [Folder(*row) for row in rows]

    async def hierarchy_snapshot(self, account_id: int, since: int | None = None) -> tuple[int, list[Folder]]:
        """
        The account's hierarchy modseq and, read in the same snapshot, its
        live folders (C{since} None) or every folder stamped after C{since}
        (deleted ones included).  One statement, so the modseq covers exactly
        the folders returned: a FolderSync state built from it neither skips
        nor repeats a change that commits meanwhile.
        """
        condition = "NOT f.deleted" if since is None else "f.hierarchy_modseq > %s"
        params = (account_id,) if since is None else (since, account_id)
        rows = await self._database.query(
            "SELECT a.hierarchy_modseq, "
            + ", ".join(f"f.{column.strip()}" for column in _COLUMNS.split(","))
            + f" FROM accounts a LEFT JOIN folders f ON f.account_id = a.id AND {condition}"
            " WHERE a.id = %s ORDER BY f.hierarchy_modseq, f.id",
            params,
        )
        if not rows:
            return 0, []
        return rows[0][0], [Folder(*row[1:]) for row in rows if row[1] is not None]

    async def create(self, account_id: int, parent_id: int | None, name: str, folder_type: int) -> tuple[Folder, int]:
        """
        Create a user folder; return it and the new hierarchy modseq.
        """

        async def work(transaction: Transaction):
            await self._check_parent(transaction, account_id, parent_id)
            modseq = await stamp_hierarchy(transaction, account_id)
            await self._check_name(transaction, account_id, parent_id, name, None)
            row = await transaction.query_one(
                "INSERT INTO folders (account_id, parent_id, name, type, content_class,"
                " hierarchy_modseq, created_hierarchy_modseq) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                f" RETURNING {_COLUMNS}",
                (account_id, parent_id, name, folder_type, CONTENT_CLASS[folder_type], modseq, modseq),
            )
            return Folder(*row), modseq

        return await self._unique_name(work, name)

    async def update(self, account_id: int, folder_id: int, parent_id: int | None, name: str) -> tuple[Folder, int]:
        """
        Rename and/or move a user folder.
        """

        async def work(transaction: Transaction):
            folder = await self._locked(transaction, account_id, folder_id)
            if folder.special:
                raise SpecialFolder(folder_id)
            await self._check_parent(transaction, account_id, parent_id)
            if parent_id is not None and await self._is_descendant(transaction, parent_id, folder_id):
                raise ParentCycle(parent_id)
            modseq = await stamp_hierarchy(transaction, account_id)
            await self._check_name(transaction, account_id, parent_id, name, folder_id)
            row = await transaction.query_one(
                f"UPDATE folders SET parent_id = %s, name = %s, hierarchy_modseq = %s WHERE id = %s"
                f" RETURNING {_COLUMNS}",
                (parent_id, name, modseq, folder_id),
            )
            return Folder(*row), modseq

        return await self._unique_name(work, name)

    async def _unique_name(self, work, name: str):
        """
        Run C{work}.  The account row lock taken by stamp_hierarchy already
        makes L{_check_name} see a competing writer's folder; should a name
        still reach the unique index, the answer is the same: it exists.
        """
        try:
            return await self._database.transaction(work)
        except pg_errors.UniqueViolation:
            raise FolderExists(name) from None

    async def delete(self, account_id: int, folder_id: int) -> int:
        """
        Delete a user folder and everything below it; return the new
        hierarchy modseq.  The rows stay as deleted markers for FolderSync;
        their items and the conversation rules naming them go.
        """

        async def work(transaction: Transaction):
            folder = await self._locked(transaction, account_id, folder_id)
            if folder.special:
                raise SpecialFolder(folder_id)
            modseq = await stamp_hierarchy(transaction, account_id)
            await transaction.execute(
                "WITH RECURSIVE tree(id) AS ("
                " SELECT %s::bigint UNION ALL"
                " SELECT f.id FROM folders f JOIN tree t ON f.parent_id = t.id WHERE NOT f.deleted)"
                " UPDATE folders SET deleted = true, hierarchy_modseq = %s WHERE id IN (SELECT id FROM tree)",
                (folder_id, modseq),
            )
            await transaction.execute(
                "DELETE FROM items WHERE account_id = %s AND folder_id IN"
                " (SELECT id FROM folders WHERE account_id = %s AND deleted)",
                (account_id, account_id),
            )
            # MoveAlways rules into these folders end: the conversations'
            # new messages go to the Inbox again (store/conversations.py).
            await transaction.execute(
                "DELETE FROM conversation_rules WHERE account_id = %s AND folder_id IN"
                " (SELECT id FROM folders WHERE account_id = %s AND deleted)",
                (account_id, account_id),
            )
            return modseq

        return await self._database.transaction(work)

    async def _locked(self, transaction: Transaction, account_id: int, folder_id: int) -> Folder:
        row = await transaction.query_one(
            f"SELECT {_COLUMNS} FROM folders WHERE id = %s AND account_id = %s AND NOT deleted FOR UPDATE",
            (folder_id, account_id),
        )
        if row is None:
            raise NoSuchFolder(folder_id)
        return Folder(*row)

    async def _check_parent(self, transaction: Transaction, account_id: int, parent_id: int | None) -> None:
        if parent_id is None:
            return
        row = await transaction.query_one(
            "SELECT 1 FROM folders WHERE id = %s AND account_id = %s AND NOT deleted", (parent_id, account_id)
        )
        if row is None:
            raise BadParent(parent_id)

    async def _check_name(self, transaction, account_id, parent_id, name, exclude) -> None:
        row = await transaction.query_one(
            "SELECT 1 FROM folders WHERE account_id = %s AND coalesce(parent_id, 0) = %s"
            " AND lower(name) = lower(%s) AND NOT deleted AND id <> %s",
            (account_id, parent_id or 0, name, exclude or 0),
        )
        if row is not None:
            raise FolderExists(name)

    async def _is_descendant(self, transaction, candidate: int, ancestor: int) -> bool:
        row = await transaction.query_one(
            "WITH RECURSIVE up(id, parent_id) AS ("
            " SELECT id, parent_id FROM folders WHERE id = %s UNION ALL"
            " SELECT f.id, f.parent_id FROM folders f JOIN up ON f.id = up.parent_id)"
            " SELECT 1 FROM up WHERE id = %s",
            (candidate, ancestor),
        )
        return row is not None
