"""
The EAS commands bluesync implements, one module each, in one explicit table.

A handler is C{async def handle(ctx: CommandContext) -> Response}.  Only
commands listed here are advertised by OPTIONS and dispatched; any other
MS-ASHTTP command is answered 501.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from bluesync.eas.commands import foldercreate, folderdelete, foldersync, folderupdate, getitemestimate, sync
from bluesync.eas.commands import ping, provision, settings
from bluesync.eas.commands import getattachment, itemoperations, meetingresponse, moveitems
from bluesync.eas.commands import resolverecipients, search
from bluesync.eas.commands import sendmail, smartforward, smartreply

COMMANDS: dict[str, Callable[..., Awaitable]] = {
    "Sync": sync.handle,
    "GetItemEstimate": getitemestimate.handle,
    "FolderSync": foldersync.handle,
    "FolderCreate": foldercreate.handle,
    "FolderUpdate": folderupdate.handle,
    "FolderDelete": folderdelete.handle,
    "Provision": provision.handle,
    "Settings": settings.handle,
    "Ping": ping.handle,
    "MoveItems": moveitems.handle,
    "ItemOperations": itemoperations.handle,
    "GetAttachment": getattachment.handle,
    "Search": search.handle,
    "ResolveRecipients": resolverecipients.handle,
    "SendMail": sendmail.handle,
    "SmartReply": smartreply.handle,
    "SmartForward": smartforward.handle,
    "MeetingResponse": meetingresponse.handle,
}
