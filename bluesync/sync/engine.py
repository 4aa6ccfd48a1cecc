"""
The sync engine: which changes a device gets next for one collection, and
the state that records it.  It knows nothing of HTTP, WBXML or EAS field
names; eas/commands/sync.py turns its results into a response.

A sync state is "everything in the folder up to modseq M has been offered",
plus three small things kept in its state dict:

- C{filter}: the FilterType the device synced with, so a change of filter
  can be answered (SoftDelete what fell out, Add what came in) instead of
  forcing a full resync;
- C{own}: item id -> modseq of changes this device made itself and that the
  state does not cover yet; they are not echoed back to it;
- C{backlog}: adds and soft deletes owed after a filter change, sent before
  ordinary changes;
- C{supported}: the Supported element of the initial Sync (MS-ASCMD
  2.2.3.179), kept for the whole epoch: which contact and calendar
  elements the device manages (the others are ghosted).

Because modseqs in a folder are unique and commit in order, "changes after
M" ordered by modseq and cut at a window boundary is exact: the next state
is the modseq of the last change offered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from bluesync.store.folders import Folder
from bluesync.store.items import ADD, CHANGE, SOFT_DELETE, Change, ItemFilter
from bluesync.store.syncstate import SyncState

# MS-ASCMD 2.2.3.68.2: FilterType -> how far back items are synced.
FILTER_DAYS: dict[int, int | None] = {0: None, 1: 1, 2: 3, 3: 7, 4: 14, 5: 31, 6: 92, 7: 183}
# FilterType 8 (incomplete tasks) is a Tasks filter, not a date one.
INCOMPLETE_TASKS = 8


def filter_cutoff(filter_type: int, now: datetime) -> datetime | None:
    days = FILTER_DAYS.get(filter_type)
    if days is None:
        return None
    return now - timedelta(days=days)


def item_filter(content_class: str, filter_type: int, now: datetime) -> ItemFilter | None:
    """
    The items a FilterType keeps, per class (MS-ASCMD 2.2.3.68.2): mail
    received since the cutoff; events whose last occurrence ends after it
    (a series without end always); with 8, tasks not complete.  Contacts
    and notes are never filtered, nor is a value a class does not define.
    """
    if content_class == "Tasks":
        return ItemFilter(incomplete_only=True) if filter_type == INCOMPLETE_TASKS else None
    cutoff = filter_cutoff(filter_type, now)
    if cutoff is None:
        return None
    if content_class == "Email":
        return ItemFilter(received_after=cutoff)
    if content_class == "Calendar":
        return ItemFilter(ends_after=cutoff)
    return None


@dataclass
class Batch:
    """
    What one Sync response offers for a collection.
    """

    changes: list[Change] = field(default_factory=list)
    more_available: bool = False
    upto: int = 0
    backlog: list = field(default_factory=list)


class SyncEngine:
    def __init__(self, store, clock) -> None:
        self._store = store
        self._clock = clock

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.seconds(), timezone.utc)

    async def begin(self, device_pk: int, folder: Folder, filter_type: int, extra: dict | None = None) -> SyncState:
        """
        SyncKey 0: a new epoch whose first state offers nothing yet (the
        device asks again with the new key to get the items).  C{extra}
        is kept in the epoch's states (C{supported}).
        """
        return await self._store.sync_states.save_next(
            device_pk, folder.id, None, 0, {"filter": filter_type, **(extra or {})}
        )

    async def resolve(self, device_pk: int, folder: Folder, key: str) -> SyncState | None:
        return await self._store.sync_states.get(device_pk, folder.id, key)

    async def open(self, account_id: int, device_pk: int, folder_id: int | None,
                   key: str) -> tuple[Folder | None, SyncState | None]:
        """
        The account's folder and the state C{key} names in it (None for
        either that does not exist), read together in one round trip.
        """
        return await self._store.sync_states.in_folder(account_id, device_pk, folder_id, key)

    async def collect(self, account_id: int, folder: Folder, state: SyncState, window: int,
                      filter_type: int, with_content: bool = True, raw_if_rendered: bool = True,
                      folder_is_current: bool = False) -> Batch:
        """
        The next changes for the device, at most C{window} of them (see
        L{ItemStore.changes} for C{raw_if_rendered}).  C{folder_is_current}:
        C{folder} was read after the request's own writes to it, so its
        modseq says whether anything changed after the state.
        """
        now = self.now()
        backlog = list(state.state.get("backlog", ()))
        previous_filter = state.state.get("filter", filter_type)
        if previous_filter != filter_type and state.counter > 1:
            backlog += await self._filter_backlog(account_id, folder, state, previous_filter, filter_type, now)
        batch = Batch(upto=state.modseq)
        if backlog:
            taken, backlog = backlog[:window], backlog[window:]
            items = await self._store.items.get_many(
                account_id, [item_id for _, item_id in taken], folder.id, with_content
            )
            for kind, item_id in taken:
                if kind == SOFT_DELETE:
                    batch.changes.append(Change(SOFT_DELETE, item_id, state.modseq))
                elif item_id in items:
                    batch.changes.append(Change(ADD, item_id, items[item_id].modseq, items[item_id]))
            batch.backlog = backlog
            if backlog:
                batch.more_available = True
                return batch
            window -= len(taken)
            if window <= 0:
                batch.more_available = True
                return batch
        if folder_is_current and folder.modseq <= state.modseq:
            # Every change stamps the folder: nothing happened after the
            # state as of the folder's reading, so there is nothing to ask
            # (most Syncs end here).  What commits after that reading is
            # found by the next Sync, as if it had committed after the
            # changes query; its NOTIFY wakes the device for it.  (After
            # the device's own writes the full query runs: its upto moves
            # the state past them.)
            return batch
        own = {int(k): v for k, v in state.state.get("own", {}).items()}
        found = await self._store.items.changes(
            account_id, folder.id, state.modseq, window, with_content=with_content,
            item_filter=item_filter(folder.content_class, filter_type, now), raw_if_rendered=raw_if_rendered,
        )
        for change in found.changes:
            mine = own.get(change.item_id)
            if mine == change.modseq:
                continue
            if change.kind == ADD and mine is not None and change.item is not None \
                    and mine == change.item.created_modseq:
                # The device moved this item here itself and already holds
                # it under this ServerId; what changed since is a Change.
                change = Change(CHANGE, change.item_id, change.modseq, change.item)
            batch.changes.append(change)
        batch.more_available = found.more_available
        batch.upto = found.upto
        return batch

    async def _filter_backlog(self, account_id, folder, state, old, new, now) -> list:
        """
        What a FilterType change owes the device: items now outside the
        filter are soft-deleted, items newly inside it are added.
        """
        old_filter = item_filter(folder.content_class, old, now)
        new_filter = item_filter(folder.content_class, new, now)
        if old_filter == new_filter:
            return []
        leaving, entering = await self._store.items.ids_crossing_filter(
            account_id, folder.id, old_filter, new_filter, state.modseq
        )
        return [[SOFT_DELETE, item_id] for item_id in leaving] + [[ADD, item_id] for item_id in entering]

    async def advance(self, state: SyncState, folder: Folder, batch: Batch, filter_type: int,
                      own: dict[int, int] | None = None, extra: dict | None = None) -> SyncState:
        """
        Save the state after C{batch} was offered, with the changes this
        device just made (C{own}) remembered so they are not echoed.
        """
        remembered = {int(k): v for k, v in state.state.get("own", {}).items()}
        remembered.update(own or {})
        remembered = {k: v for k, v in remembered.items() if v > batch.upto}
        new_state = {"filter": filter_type, **(extra or {})}
        if "supported" in state.state:
            new_state["supported"] = state.state["supported"]
        if remembered:
            new_state["own"] = {str(k): v for k, v in remembered.items()}
        if batch.backlog:
            new_state["backlog"] = batch.backlog
        return await self._store.sync_states.save_next(
            state.device_pk, folder.id, state, batch.upto, new_state
        )

    async def estimate(self, account_id: int, folder: Folder, state: SyncState, filter_type: int) -> int:
        count = await self._store.items.count_changes(
            account_id, folder.id, state.modseq, item_filter=item_filter(folder.content_class, filter_type, self.now())
        )
        return count + len(state.state.get("backlog", ()))


__all__ = ["Batch", "SyncEngine", "filter_cutoff", "item_filter", "FILTER_DAYS", "INCOMPLETE_TASKS", "ADD", "CHANGE"]
