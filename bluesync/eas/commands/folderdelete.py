"""
FolderDelete (MS-ASCMD 2.2.1.4): delete a user folder, its subfolders and
their items.

Status values (2.2.3.177.4): 3 for a default folder (Inbox, Drafts, ...,
which cannot be deleted); 4 when ServerId is not a live folder of this
account (another account's folder id is answered exactly like an unknown
one, and so is a folder already deleted); 9 for an unknown or stale key;
10 for a request missing SyncKey or ServerId; 6 for a fault of ours.

The answer's SyncKey records the deletion as the device's own: its next
FolderSync sends no Delete for the folder or its subfolders
(L{bluesync.eas.hierarchy}); other devices get a Delete for each folder
they knew.
"""

from __future__ import annotations

from twisted.logger import Logger

from bluesync.eas import hierarchy
from bluesync.eas.context import CommandContext
from bluesync.store.folders import NoSuchFolder, SpecialFolder
from bluesync.web.rendering import Response

log = Logger()

COMMAND = "FolderDelete"

STATUS_SPECIAL = 3

_FIELDS = ("SyncKey", "ServerId")


async def handle(ctx: CommandContext) -> Response:
    return await hierarchy.guarded(ctx, COMMAND, lambda: _handle(ctx))


async def _handle(ctx: CommandContext) -> Response:
    fields = hierarchy.request_fields(ctx, COMMAND, _FIELDS, required=True)

    state = await hierarchy.load_state(ctx, fields["SyncKey"])
    folder_id = hierarchy.request_folder(fields["ServerId"])

    try:
        stamp = await ctx.server.store.folders.delete(ctx.account.id, folder_id)
    except NoSuchFolder:
        raise hierarchy.Refused(hierarchy.NO_FOLDER, f"folder {folder_id} is not a folder of the account")
    except SpecialFolder:
        raise hierarchy.Refused(STATUS_SPECIAL, f"folder {folder_id} is a default folder")
    next_state = await hierarchy.save_own_change(ctx, state, stamp)
    log.info(
        "{account} {device}: deleted folder {folder}",
        account=ctx.account.address,
        device=ctx.request.device_id,
        folder=folder_id,
    )
    return hierarchy.answer(COMMAND, hierarchy.SUCCESS, ("SyncKey", next_state.key))
