"""
Sync states: what a device has been sent, named by its sync key.

A key is an 8-character epoch followed by a counter ("3f9a0c1e7").  Key 0
(or an unknown key) starts a new epoch, so a key issued before a reset can
never match a state issued after it.  Saving state N+1 keeps state N, so a
device that resends key N (its last answer was lost) is answered again from
the same point; using key N+1 acknowledges that answer and drops N.

collection is a folder id, or L{HIERARCHY} for FolderSync.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from bluesync.store.database import Database, Transaction
from bluesync.store.folders import Folder, qualified_columns

HIERARCHY = 0
_EPOCH_LENGTH = 8


@dataclass(frozen=True)
class SyncState:
    device_pk: int
    collection: int
    epoch: str
    counter: int
    modseq: int
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.epoch}{self.counter}"


@dataclass(frozen=True)
class PushView:
    """
    See L{SyncStateStore.push_view}.  C{folders} maps each watched folder
    that is a live folder of the account to (its modseq, the modseq of the
    device's newest state for it, or None if the device never synced it).
    """

    hierarchy_modseq: int
    hierarchy_state: SyncState | None
    folders: dict[int, tuple[int, int | None]]


def parse_key(key: str | None) -> tuple[str, int] | None:
    if not key or len(key) <= _EPOCH_LENGTH or len(key) > 64:
        return None
    epoch, counter = key[:_EPOCH_LENGTH], key[_EPOCH_LENGTH:]
    if not counter.isdigit() or len(counter) > 9:
        return None
    return epoch, int(counter)


class SyncStateStore:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def get(self, device_pk: int, collection: int, key: str) -> SyncState | None:
        """
        The state named by C{key}, if it is the current or the previous one.
        Using the current key acknowledges it: older states are dropped.
        """
        parsed = parse_key(key)
        if parsed is None:
            return None
        epoch, counter = parsed
        row = await self._database.query_one(
            "SELECT modseq, state, (SELECT max(counter) FROM sync_states WHERE device_id = %s AND collection = %s),"
            " (SELECT min(counter) FROM sync_states WHERE device_id = %s AND collection = %s)"
            " FROM sync_states WHERE device_id = %s AND collection = %s AND counter = %s AND epoch = %s",
            (device_pk, collection, device_pk, collection, device_pk, collection, counter, epoch),
        )
        if row is None:
            return None
        return await self._acknowledged(device_pk, collection, epoch, counter, *row)

    async def in_folder(self, account_id: int, device_pk: int, folder_id: int | None,
                        key: str) -> tuple[Folder | None, SyncState | None]:
        """
        The account's live folder C{folder_id} and the state C{key} names
        in it (as L{get}), in one statement: what every Sync of a
        collection reads first, and all that a Sync with nothing new
        reads besides its account and device.
        """
        if folder_id is None:
            return None, None
        parsed = parse_key(key)
        epoch, counter = parsed if parsed is not None else ("", -1)
        row = await self._database.query_one(
            f"SELECT {qualified_columns('f')}, s.modseq, s.state, k.latest, k.oldest FROM folders f"
            " LEFT JOIN sync_states s ON s.device_id = %(device)s AND s.collection = f.id"
            "  AND s.counter = %(counter)s AND s.epoch = %(epoch)s"
            " CROSS JOIN (SELECT max(counter) AS latest, min(counter) AS oldest FROM sync_states"
            "  WHERE device_id = %(device)s AND collection = %(folder)s) k"
            " WHERE f.id = %(folder)s AND f.account_id = %(account)s AND NOT f.deleted",
            {"device": device_pk, "account": account_id, "folder": folder_id, "counter": counter, "epoch": epoch},
        )
        if row is None:
            return None, None
        folder = Folder(*row[:-4])
        if row[-4] is None:
            return folder, None
        return folder, await self._acknowledged(device_pk, folder_id, epoch, counter, *row[-4:])

    async def _acknowledged(self, device_pk: int, collection: int, epoch: str, counter: int, modseq: int,
                            state: dict, latest: int, oldest: int) -> SyncState:
        """
        The state read for a key; using the current key drops the older ones.
        """
        if counter == latest and oldest < counter:
            await self._database.execute(
                "DELETE FROM sync_states WHERE device_id = %s AND collection = %s AND counter < %s",
                (device_pk, collection, counter),
            )
        return SyncState(device_pk, collection, epoch, counter, modseq, state)

    async def save_next(self, device_pk: int, collection: int, previous: SyncState | None,
                        modseq: int, state: dict[str, Any] | None = None) -> SyncState:
        """
        Store the state that follows C{previous} (or the first state of a new
        epoch) and return it.  A state already stored after C{previous} (an
        answer the device never got) is replaced.
        """
        if previous is None:
            epoch, counter = secrets.token_hex(_EPOCH_LENGTH // 2), 1
        else:
            epoch, counter = previous.epoch, previous.counter + 1
        state = state or {}

        async def work(transaction: Transaction) -> None:
            if previous is None:
                await transaction.execute(
                    "DELETE FROM sync_states WHERE device_id = %s AND collection = %s", (device_pk, collection)
                )
            else:
                await transaction.execute(
                    "DELETE FROM sync_states WHERE device_id = %s AND collection = %s AND counter >= %s",
                    (device_pk, collection, counter),
                )
            await transaction.execute(
                "INSERT INTO sync_states (device_id, collection, epoch, counter, modseq, state)"
                " VALUES (%s, %s, %s, %s, %s, %s)",
                (device_pk, collection, epoch, counter, modseq, json.dumps(state)),
            )

        await self._database.transaction(work)
        return SyncState(device_pk, collection, epoch, counter, modseq, state)

    async def advance_in_place(self, state: SyncState, modseq: int) -> None:
        """
        Move a state's modseq forward without issuing a new key: only for
        changes the device is never sent (outside its filter, or its own).
        """
        await self._database.execute(
            "UPDATE sync_states SET modseq = greatest(modseq, %s)"
            " WHERE device_id = %s AND collection = %s AND counter = %s AND epoch = %s",
            (modseq, state.device_pk, state.collection, state.counter, state.epoch),
        )

    async def latest(self, device_pk: int, collections: list[int]) -> dict[int, SyncState]:
        """
        The newest state of each collection (what Ping compares against).
        """
        rows = await self._database.query(
            "SELECT DISTINCT ON (collection) collection, epoch, counter, modseq, state FROM sync_states"
            " WHERE device_id = %s AND collection = ANY(%s) ORDER BY collection, counter DESC",
            (device_pk, list(collections)),
        )
        return {row[0]: SyncState(device_pk, row[0], row[1], row[2], row[3], row[4]) for row in rows}

    async def push_view(self, device_pk: int, account_id: int, folder_ids: list[int]) -> PushView:
        """
        What Ping compares, in one statement and one snapshot: the account's
        hierarchy counter with the device's newest hierarchy state, and each
        watched live folder's modseq with the device's newest state for it.
        One round trip matters when thousands of held Pings wake at once, and
        so does planning: the statement is the SQL function push_view
        (migration 010), whose plan each session keeps.
        """
        rows = await self._database.query(
            "SELECT * FROM push_view(%s, %s, %s::bigint[])", (device_pk, account_id, list(folder_ids))
        )
        hierarchy_modseq, hierarchy_state, folders = 0, None, {}
        for collection, modseq, synced, epoch, counter, state in rows:
            if collection == HIERARCHY:
                hierarchy_modseq = modseq
                if synced is not None:
                    hierarchy_state = SyncState(device_pk, HIERARCHY, epoch, counter, synced, state)
            else:
                folders[collection] = (modseq, synced)
        return PushView(hierarchy_modseq, hierarchy_state, folders)

    async def forget(self, device_pk: int, collection: int | None = None) -> None:
        """
        Drop a device's states (all, or one collection's): its next request
        with an old key is told to start over.
        """
        if collection is None:
            await self._database.execute("DELETE FROM sync_states WHERE device_id = %s", (device_pk,))
        else:
            await self._database.execute(
                "DELETE FROM sync_states WHERE device_id = %s AND collection = %s", (device_pk, collection)
            )
