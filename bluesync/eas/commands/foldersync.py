"""
FolderSync (MS-ASCMD 2.2.1.5): the folder hierarchy, in full for SyncKey 0
and as Adds, Updates and Deletes since a state otherwise.  The state and
the echo rule are described in L{bluesync.eas.hierarchy}.

SyncKey 0 resets the hierarchy only.  MS-ASCMD 3.1.5.3 lets a client repeat
the initial FolderSync at any point and says existing ServerIds do not
change when it does; nothing in MS-ASCMD ties the collections' Sync keys to
the hierarchy key (Sync's own reset is its SyncKey 0, and Status 12 is for a
hierarchy that really changed).  Our ServerIds are database ids, stable for
the life of a folder, so every item sync key a device holds still names the
same folder after a hierarchy reset, and we keep them all: the reset costs
one read of the folder list and one state write, and the device goes on
syncing items from where it was.  This matters because Gmail for Android
(late 2025 builds) sends FolderSync 0 on every pull-to-refresh; a server
that drops item states on it (as some Z-Push versions did) makes the phone
download every message again each time.  A device that wants its items
again says so per collection with Sync SyncKey 0.

Status values (2.2.3.177.5): 9 for an unknown, stale or empty key (the
device goes back to 0), 10 for a request without the FolderSync root or its
SyncKey, 6 for a fault of ours.  When nothing changed and the state needs
no update, the same key is returned and nothing is written.
"""

from __future__ import annotations

from lxml import etree
from twisted.logger import Logger

from bluesync.eas import hierarchy
from bluesync.eas.context import CommandContext
from bluesync.eas.responses import wbxml_response
from bluesync.store.syncstate import HIERARCHY
from bluesync.web.rendering import Response

log = Logger()

COMMAND = "FolderSync"


async def handle(ctx: CommandContext) -> Response:
    return await hierarchy.guarded(ctx, COMMAND, lambda: _handle(ctx))


async def _handle(ctx: CommandContext) -> Response:
    key = hierarchy.request_fields(ctx, COMMAND, ("SyncKey",))["SyncKey"]
    if key is None:
        raise hierarchy.Malformed("no SyncKey")
    folders = ctx.server.store.folders
    sync_states = ctx.server.store.sync_states
    account_id = ctx.account.id

    if key == "0":
        modseq, live = await folders.hierarchy_snapshot(account_id)
        state = await sync_states.save_next(ctx.device.id, HIERARCHY, None, modseq, {"own": []})
        changes = [hierarchy.HierarchyChange(hierarchy.ADD, folder) for folder in live]
        log.info(
            "{account} {device}: FolderSync 0, {count} folders",
            account=ctx.account.address,
            device=ctx.request.device_id,
            count=len(changes),
        )
        return _answer(state.key, hierarchy.parents_first(changes))

    state = await hierarchy.load_state(ctx, key)
    own = hierarchy.own_stamps(state)
    modseq, changed = await folders.hierarchy_snapshot(account_id, since=state.modseq)
    changes = hierarchy.changes_since(state.modseq, own, changed)
    next_modseq, next_own = hierarchy.compact(max(modseq, state.modseq), own)
    if not changes and next_modseq == state.modseq and next_own == own:
        return _answer(state.key, changes)
    next_state = await sync_states.save_next(ctx.device.id, HIERARCHY, state, next_modseq, {"own": next_own})
    return _answer(next_state.key, changes)


def _answer(key: str, changes: list[hierarchy.HierarchyChange]) -> Response:
    """
    Status, SyncKey, Changes (Count, then the changes): MS-ASCMD 2.2.3.76.
    """
    root = etree.Element(hierarchy.q(COMMAND))
    etree.SubElement(root, hierarchy.q("Status")).text = str(hierarchy.SUCCESS)
    etree.SubElement(root, hierarchy.q("SyncKey")).text = key
    container = etree.SubElement(root, hierarchy.q("Changes"))
    etree.SubElement(container, hierarchy.q("Count")).text = str(len(changes))
    for change in changes:
        hierarchy.change_element(container, change)
    return wbxml_response(root)
