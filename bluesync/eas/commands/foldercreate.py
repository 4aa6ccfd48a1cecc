"""
FolderCreate (MS-ASCMD 2.2.1.3): a user folder under the root or under any
folder of the account.

Status values (2.2.3.177.3): 2 when the parent already holds a folder of
that name (compared case-insensitively, as Exchange and the phones' own
folder lists do); 3 for the Recipient Information Cache type (19), which
cannot be created; 5 when the parent is not a live folder of this account
(another account's folder id is answered exactly like an unknown one);
9 for an unknown or stale key; 10 for a request missing an element, an
empty or over-long name, or a Type that is not a user-creatable one (2-11
are default folder types: "the client attempted to create a default
folder" is a 10); 6 for a fault of ours.  On failure neither SyncKey nor
ServerId is sent (2.2.3.181.1, 2.2.3.166.2).

Type 16 (user-created Journal) is listed by 2.2.3.186.2 but refused with
10: bluesync has no Journal content class, so such a folder could never be
synced.

The answer's SyncKey names a state that records the new folder's stamp as
the device's own, so its next FolderSync does not send the folder back
(L{bluesync.eas.hierarchy}).  A resent FolderCreate whose answer was lost
finds the folder it created and gets Status 2.
"""

from __future__ import annotations

from twisted.logger import Logger

from bluesync.eas import hierarchy
from bluesync.eas.context import CommandContext
from bluesync.store.folders import (
    JOURNAL,
    USER_JOURNAL,
    USER_TYPES,
    BadParent,
    FolderExists,
)
from bluesync.web.rendering import Response

log = Logger()

COMMAND = "FolderCreate"

STATUS_EXISTS = 2
STATUS_SPECIAL_PARENT = 3

RECIPIENT_INFORMATION_CACHE = 19
CREATABLE_TYPES = USER_TYPES - {USER_JOURNAL}
_FIELDS = ("SyncKey", "ParentId", "DisplayName", "Type")


async def handle(ctx: CommandContext) -> Response:
    return await hierarchy.guarded(ctx, COMMAND, lambda: _handle(ctx))


async def _handle(ctx: CommandContext) -> Response:
    fields = hierarchy.request_fields(ctx, COMMAND, _FIELDS, required=True)
    name = hierarchy.display_name(fields)
    type_text = fields["Type"].strip()
    if not (type_text.isdigit() and len(type_text) < 4):
        raise hierarchy.Malformed(f"Type {fields['Type']!r}")
    folder_type = int(type_text)

    state = await hierarchy.load_state(ctx, fields["SyncKey"])
    if folder_type == RECIPIENT_INFORMATION_CACHE:
        raise hierarchy.Refused(STATUS_SPECIAL_PARENT, f"Type {folder_type} (Recipient Information Cache)")
    if folder_type not in CREATABLE_TYPES:
        reason = "a default folder type" if folder_type <= JOURNAL else "not a user folder type we serve"
        raise hierarchy.Malformed(f"Type {folder_type} is {reason}")
    parent = hierarchy.request_parent(fields["ParentId"])

    try:
        folder, stamp = await ctx.server.store.folders.create(ctx.account.id, parent, name, folder_type)
    except BadParent:
        raise hierarchy.Refused(hierarchy.NO_PARENT, f"parent {parent} is not a folder of the account")
    except FolderExists:
        raise hierarchy.Refused(STATUS_EXISTS, f"{name!r} exists under {fields['ParentId']}")
    next_state = await hierarchy.save_own_change(ctx, state, stamp)
    log.info(
        "{account} {device}: created folder {folder} {name!r} type {type} under {parent}",
        account=ctx.account.address,
        device=ctx.request.device_id,
        folder=folder.id,
        name=name,
        type=folder_type,
        parent=fields["ParentId"],
    )
    return hierarchy.answer(
        COMMAND, hierarchy.SUCCESS, ("SyncKey", next_state.key), ("ServerId", folder.server_id)
    )
