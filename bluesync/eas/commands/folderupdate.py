"""
FolderUpdate (MS-ASCMD 2.2.1.6): rename and/or move a user folder.

Status values (2.2.3.177.6): 2 for a default folder (they cannot be renamed
or moved) or when the target parent already holds a folder of that name;
4 when ServerId is not a live folder of this account (another account's
folder id is answered exactly like an unknown one); 5 when the new parent
is not; 9 for an unknown or stale key; 10 for a request missing an element
(SyncKey included, as 2.2.3.181.1 requires), an empty or over-long name,
or a move of a folder under itself or one of its own subfolders (a
semantic error: no such tree can exist); 6 for a fault of ours.  Status 3
(the Recipient Information Cache) cannot arise: we have none.

The answer's SyncKey records the change as the device's own, so its next
FolderSync does not send it back (L{bluesync.eas.hierarchy}).
"""

from __future__ import annotations

from twisted.logger import Logger

from bluesync.eas import hierarchy
from bluesync.eas.context import CommandContext
from bluesync.store.folders import BadParent, FolderExists, NoSuchFolder, ParentCycle, SpecialFolder, parse_server_id
from bluesync.web.rendering import Response

log = Logger()

COMMAND = "FolderUpdate"

STATUS_EXISTS_OR_SPECIAL = 2
STATUS_NO_FOLDER = 4
STATUS_NO_PARENT = 5

_FIELDS = ("SyncKey", "ServerId", "ParentId", "DisplayName")


async def handle(ctx: CommandContext) -> Response:
    return await hierarchy.guarded(ctx, COMMAND, lambda: _handle(ctx))


async def _handle(ctx: CommandContext) -> Response:
    try:
        fields = hierarchy.request_fields(ctx, COMMAND, _FIELDS, required=True)
    except hierarchy.Malformed as e:
        return hierarchy.malformed(ctx, COMMAND, str(e))
    name = fields["DisplayName"]
    if not hierarchy.valid_name(name):
        return hierarchy.malformed(ctx, COMMAND, f"unusable DisplayName {name!r}")

    state = await hierarchy.load_state(ctx, fields["SyncKey"], COMMAND)
    if state is None:
        return hierarchy.answer(COMMAND, hierarchy.INVALID_SYNC_KEY)
    folder_id = parse_server_id(fields["ServerId"])
    if folder_id is None:
        hierarchy.refused(ctx, COMMAND, f"ServerId {fields['ServerId']!r} names no folder")
        return hierarchy.answer(COMMAND, STATUS_NO_FOLDER)
    parent = hierarchy.parent_id(fields["ParentId"])
    if parent is False:
        hierarchy.refused(ctx, COMMAND, f"ParentId {fields['ParentId']!r} names no folder")
        return hierarchy.answer(COMMAND, STATUS_NO_PARENT)

    try:
        folder, stamp = await ctx.server.store.folders.update(ctx.account.id, folder_id, parent, name)
    except NoSuchFolder:
        hierarchy.refused(ctx, COMMAND, f"folder {folder_id} is not a folder of the account")
        return hierarchy.answer(COMMAND, STATUS_NO_FOLDER)
    except SpecialFolder:
        hierarchy.refused(ctx, COMMAND, f"folder {folder_id} is a default folder")
        return hierarchy.answer(COMMAND, STATUS_EXISTS_OR_SPECIAL)
    except ParentCycle:
        return hierarchy.malformed(ctx, COMMAND, f"folder {folder_id} cannot move under {parent}, its own subtree")
    except BadParent:
        hierarchy.refused(ctx, COMMAND, f"parent {parent} is not a folder of the account")
        return hierarchy.answer(COMMAND, STATUS_NO_PARENT)
    except FolderExists:
        hierarchy.refused(ctx, COMMAND, f"{name!r} exists under {fields['ParentId']}")
        return hierarchy.answer(COMMAND, STATUS_EXISTS_OR_SPECIAL)
    next_state = await hierarchy.save_own_change(ctx, state, stamp)
    log.info(
        "{account} {device}: folder {folder} is now {name!r} under {parent}",
        account=ctx.account.address,
        device=ctx.request.device_id,
        folder=folder.id,
        name=name,
        parent=fields["ParentId"],
    )
    return hierarchy.answer(COMMAND, hierarchy.SUCCESS, ("SyncKey", next_state.key))
