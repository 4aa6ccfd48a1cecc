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
from bluesync.store.folders import BadParent, FolderExists, NoSuchFolder, ParentCycle, SpecialFolder
from bluesync.web.rendering import Response

log = Logger()

COMMAND = "FolderUpdate"

STATUS_EXISTS_OR_SPECIAL = 2

_FIELDS = ("SyncKey", "ServerId", "ParentId", "DisplayName")


async def handle(ctx: CommandContext) -> Response:
    return await hierarchy.guarded(ctx, COMMAND, lambda: _handle(ctx))


async def _handle(ctx: CommandContext) -> Response:
    fields = hierarchy.request_fields(ctx, COMMAND, _FIELDS, required=True)
    name = hierarchy.display_name(fields)

    state = await hierarchy.load_state(ctx, fields["SyncKey"])
    folder_id = hierarchy.request_folder(fields["ServerId"])
    parent = hierarchy.request_parent(fields["ParentId"])

    try:
        folder, stamp = await ctx.server.store.folders.update(ctx.account.id, folder_id, parent, name)
    except NoSuchFolder:
        raise hierarchy.Refused(hierarchy.NO_FOLDER, f"folder {folder_id} is not a folder of the account")
    except SpecialFolder:
        raise hierarchy.Refused(STATUS_EXISTS_OR_SPECIAL, f"folder {folder_id} is a default folder")
    except ParentCycle:
        raise hierarchy.Malformed(f"folder {folder_id} cannot move under {parent}, its own subtree")
    except BadParent:
        raise hierarchy.Refused(hierarchy.NO_PARENT, f"parent {parent} is not a folder of the account")
    except FolderExists:
        raise hierarchy.Refused(STATUS_EXISTS_OR_SPECIAL, f"{name!r} exists under {fields['ParentId']}")
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
